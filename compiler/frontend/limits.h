/* The limits of a model file, in one place (docs/robustness.md, "Limits"). Each is checked before
 * the work it bounds: the byte size and the YAML structure (nesting, node count, documents, NUL
 * bytes) by a pass over libyaml's events before the document is loaded (scan.c), the sections'
 * counts as they are read. libyaml's scanner costs O(depth) per token (it walks the stack of
 * possible simple keys, one per open flow collection), so a file nesting 100,000 flow sequences
 * took 77 s; the event pass stops at the first collection past the limit. */
#ifndef SNC_FRONTEND_LIMITS_H
#define SNC_FRONTEND_LIMITS_H

#define SNC_YAML_MAX_BYTES (16 << 20) /* a model file (or an imported ONNX model's text); the largest shipped model is 7 kB */
#define SNC_YAML_MAX_DEPTH 64         /* nested sequences and mappings */
#define SNC_YAML_MAX_NODES 500000     /* scalars, sequences, mappings and aliases of the document */
#define SNC_FE_MAX_SWITCHES 1024      /* entries of `switches` */
#define SNC_FE_MAX_NODES 100000       /* nodes of the forward graph, network calls expanded */

#endif
