/* ONNX models in and out: an ONNX graph becomes text in snc's model language plus its weights, and a
 * snc graph with its parameter values becomes an ONNX file (docs/onnx.md).
 *
 *   snc_error err = {0};
 *   snc_onnx_model m;
 *   if (snc_onnx_import("model.onnx", NULL, &m, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
 *   fwrite(m.yaml, 1, m.yaml_len, stdout);                     // readable, editable YAML
 *   snc_graph *g = snc_model_load_text(m.yaml, m.yaml_len, "model.onnx", NULL, 0, &err);
 *   for (int i = 0; i < m.nweights; i++) use(m.weights[i].name, m.weights[i].data); // "Conv_0.weight"
 *   snc_onnx_model_free(&m);                                   // frees the text, names and weights
 *   ...
 *   snc_onnx_tensor v[] = {{"conv1.weight", 4, {32, 1, 3, 3}, w}, ...};  // every PARAM the graph reads
 *   if (snc_onnx_export(g, v, nv, "out.onnx", &err) != 0) ...            // v stays the caller's
 *   snc_graph_free(g);
 *
 * Import keeps the graph's meaning and nothing else: every node maps to layers of the model language
 * (so snc's own shape rules check the result when the text is loaded), initializers become weights
 * named as snc names parameters (<layer>.weight, <layer>.bias, <layer>.running_mean, ...). Errors
 * name the file and the node: "model.onnx: node 'Conv_3' (Conv): group=2 is not supported".
 * Export writes the evaluation graph (dropout in inference mode, batch norm on running statistics)
 * through the atomic file writer. Neither function keeps a pointer to its arguments. */
#ifndef SNC_ONNX_H
#define SNC_ONNX_H
#include <stddef.h>
#include <stdint.h>

#include "snc/error.h"
#include "snc/frontend.h"
#include "snc/ir.h"

typedef struct snc_onnx_tensor {
  const char *name; /* import: owned by the snc_onnx_model; export: the caller's */
  int ndim;
  int64_t dims[SNC_MAX_DIMS];
  float *data; /* row-major; import: owned by the snc_onnx_model; export: read only */
} snc_onnx_tensor;

typedef struct snc_onnx_options {
  int batch;         /* training.batch_size of the text; 0: a fixed batch axis of the file, else 100 */
  const char *train; /* NULL, or "mnist_digits": also write a label input, a cross-entropy loss, an
                        accuracy output, training and data sections (one [1,14,14] input, one [n] output);
                        "auto": that when the shapes fit, else nothing (snc_onnx_load_any) */
} snc_onnx_options;

typedef struct snc_onnx_model {
  char *yaml;              /* NUL-terminated model text, yaml_len bytes */
  size_t yaml_len;
  char *name;              /* the model's name (from the file name) */
  snc_onnx_tensor *weights; /* nweights tensors, in graph order */
  int nweights;
  int opset;               /* the file's default-domain opset */
  char **results;          /* the layers computing the graph's outputs, in the file's order */
  int nresults;
} snc_onnx_model;

/* Reads path (at most 1 GiB) and converts it; o may be NULL. On failure m is empty and err names the
 * file (and the node). */
int snc_onnx_import(const char *path, const snc_onnx_options *o, snc_onnx_model *m, snc_error *err);
/* Same from bytes in memory; `name` stands for the file in messages and gives the model's name. */
int snc_onnx_import_mem(const void *data, size_t len, const char *name, const snc_onnx_options *o,
                        snc_onnx_model *m, snc_error *err);
void snc_onnx_model_free(snc_onnx_model *m); /* m may be empty (zeroed) */

/* Whether path names an ONNX file (ends in ".onnx"). */
int snc_onnx_is_path(const char *path);
/* snc_model_load for any model file: a .onnx file is imported in memory (train "auto") and its text
 * loaded (m, when not NULL, receives the import, weights included; the caller frees it); other paths
 * go to snc_model_load_batch, which itself sends .onnx paths here, so every tool takes them. */
snc_graph *snc_onnx_load_any(const char *path, const snc_override *sets, int nsets, int batch,
                             snc_onnx_model *m, snc_error *err);

/* The results of a model: forward nodes (not parameters, constants or inputs) whose value some user
 * wants, i.e. the predictions of the `outputs:` section and every node that feeds no other forward
 * node but losses, leaving out losses and whatever derives from int32 inputs only (labels). Writes at
 * most max ids in graph order to ids and returns how many there are. */
int snc_graph_results(const snc_graph *g, int *ids, int max);

/* Writes the evaluation graph of g (its forward nodes that feed a result, see snc_graph_results) as an
 * ONNX model (opset 13) to path, atomically. values holds every parameter the graph reads, by node
 * name, with the node's shape; constants come from the graph. An op without an ONNX form is an error
 * naming the node. */
int snc_onnx_export(const snc_graph *g, const snc_onnx_tensor *values, int nvalues, const char *path,
                    snc_error *err);

#endif
