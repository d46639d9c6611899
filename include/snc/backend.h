/* Backends: what executes a graph (runtime/backend/). One interface, two implementations: the
 * reference executor (plain C, snc/exec.h) and the generated code under the JIT (snc/jit_backend.h);
 * plus modules read back from bitcode (snc/compiled.h) and kernel profiles (snc/profile.h).
 *
 *   snc_backend *be = snc_backend_new("jit", g, &err);   // or "ref"; g must outlive be
 *   memcpy(be->buf(be, input_node), batch, bytes);
 *   be->init_params(be, seed);
 *   be->run(be, SNC_RUN_STEP, &ctx);                     // forward, backward, updates
 *   be->free(be);                                        // frees its buffers and code, not g
 *
 * The training loop (snc/train.h) and the study drive backends; nothing here knows of them. */
#ifndef SNC_BACKEND_H
#define SNC_BACKEND_H
#include <stdint.h>

#include "snc/exec.h"
#include "snc/ir.h"
#include "snc/kernel.h"

/* A backend holds one buffer per node the runtime reads or writes (inputs, parameters and state,
 * losses, outputs and their targets) and runs the forward graph or the whole training step. */
typedef struct snc_backend snc_backend;
struct snc_backend {
  const char *name;                                        /* "ref" */
  void *(*buf)(snc_backend *b, int node);                  /* the node's buffer, g->batch rows if batched */
  void (*init_params)(snc_backend *b, uint64_t seed);      /* parameters from their init specs, state zeroed */
  void (*run)(snc_backend *b, snc_run_kind kind, const snc_kctx *ctx);
  void (*free)(snc_backend *b);                            /* frees b and everything it owns, not the graph */
};

/* The reference executor as a backend. g must outlive it. */
snc_backend *snc_backend_ref_new(const snc_graph *g, snc_error *err);
/* A backend by name ("ref"); an unknown name is an error listing the known ones. */
snc_backend *snc_backend_new(const char *name, const snc_graph *g, snc_error *err);

#endif
