/* The reference executor: runs a graph node by node with the plain-C kernels of the op table.
 * It is the oracle every test of generated code compares against; it is written for clarity, with
 * one buffer per node, not for speed.
 *
 *   snc_exec *ex = snc_exec_new(g, &err);          // g: after snc_autodiff to train, or forward only
 *   snc_exec_init_params(ex, seed);                 // parameters from their init specs, state zeroed
 *   memcpy(snc_exec_buf(ex, input_id), batch, bytes);
 *   snc_kctx ctx = {.nb = 100, .seed = 1, .step = 1, .training = 1, .lr_scale = 1};
 *   snc_exec_run(ex, SNC_RUN_STEP, &ctx);           // forward, backward, optimizer updates
 *   float loss = *(float *)snc_exec_buf(ex, g->loss);
 *   snc_exec_free(ex);                              // frees the buffers; g stays the caller's
 *
 * The executor keeps a pointer to g, which must outlive it. */
#ifndef SNC_EXEC_H
#define SNC_EXEC_H
#include "snc/ir.h"
#include "snc/kernel.h"
#include "snc/rng.h" /* snc_name_hash */

typedef struct snc_exec snc_exec;

typedef enum {
  SNC_RUN_FORWARD, /* nodes [0, g->nforward): evaluation (ctx->training 0) or a training forward */
  SNC_RUN_STEP,    /* every node: forward, backward and updates */
  SNC_RUN_GRAD,    /* the step up to its updates (snc_graph_first_update): forward and backward */
  SNC_RUN_APPLY,   /* the updates alone, from the gradients in place (data-parallel training) */
} snc_run_kind;

snc_exec *snc_exec_new(const snc_graph *g, snc_error *err);
void snc_exec_free(snc_exec *ex);
void *snc_exec_buf(snc_exec *ex, int node);
/* Draws every parameter from its init spec (each from its own stream derived from seed and the
 * parameter's name, so sharing and graph order do not change the draws); zeroes optimizer state;
 * constants hold their values. */
void snc_exec_init_params(snc_exec *ex, uint64_t seed);
void snc_exec_run(snc_exec *ex, snc_run_kind kind, const snc_kctx *ctx);
/* Runs one node (tests use it to check single kernels). */
void snc_exec_node(snc_exec *ex, int node, const snc_kctx *ctx);

/* Fills n floats from an init spec with the given stream (PyTorch's distributions, snc's RNG). */
void snc_init_fill(float *dst, int64_t n, snc_init init, uint64_t seed);

#endif
