/* Generated code against the reference executor on whole training steps (shared by test programs). */
#ifndef SNC_TEST_CODEGEN_CHECK_H
#define SNC_TEST_CODEGEN_CHECK_H
#include "codegen_util.h"
#include "gradcheck.h"
#include "ops/op.h"

/* loss = sum(y * r) for a random r, then the backward pass for inputs and parameters */
static inline snc_graph *cgu_with_loss(snc_graph *g, int y, const char *name) {
  const snc_node *yn = g->nodes[y];
  if (yn->shape.rank == 0) {
    g->loss = y;
  } else {
    int64_t dims[SNC_MAX_DIMS];
    for (int i = 1; i < yn->shape.rank; i++) dims[i - 1] = yn->shape.dim[i];
    int r = snc_example_input(g, yn->shape.rank - 1, dims, SNC_F32);
    int m = snc_example_op(g, SNC_OP_MUL, (int[]){y, r}, 2, (snc_attrs){0});
    g->loss = snc_example_op(g, SNC_OP_SUM, &m, 1, (snc_attrs){0});
  }
  g->nforward = g->nnodes;
  snc_error err = {0};
  if (snc_autodiff(g, SNC_AD_INPUTS | SNC_AD_NO_UPDATES, &err)) {
    fprintf(stderr, "\n%s: %s\n", name, err.msg);
    snc_graph_free(g);
    return NULL;
  }
  return g;
}

/* Runs the graph's step in the reference executor and in generated code r (built by cgu_build with
 * the given flags; nb is a run-time argument, so one build serves every batch size) and compares
 * every node that has a buffer (with fusion, the nodes computed inside a chain have none). */
static inline int cgu_run_both(snc_graph *g, cg_run *rp, int64_t nb, int nthreads) {
  snc_error err = {0};
  snc_exec *ex = snc_exec_new(g, &err);
  snc_exec_init_params(ex, 11);
  gc_fill_inputs(g, ex, 5);
  snc_kctx ctx = {.nb = nb, .seed = 9, .step = 3, .training = 1, .lr_scale = 1};
  cg_run r = *rp;
  /* the arena starts as NaN bytes, not as the previous run left it: a kernel that read memory no
   * kernel wrote, or skipped a write, would show */
  memset(r.arena, 0xff, (size_t)r.p->layout.arena_bytes);
  cgu_copy_params(&r, ex, g); /* before the reference step changes state (batchnorm statistics) */
  snc_exec_run(ex, SNC_RUN_STEP, &ctx);
  const void *ins[64];
  for (int k = 0; k < r.p->ninputs; k++) ins[k] = snc_exec_buf(ex, r.p->inputs[k]);
  snc_step_args a = {.inputs = ins, .nb = nb, .seed = 9, .step = 3, .lr_scale = 1, .nthreads = nthreads};
  r.train(r.arena, &a);
  int bad = 0;
  {
    float *buf = malloc((size_t)r.p->layout.unplanned_bytes + 64);
    for (int i = 0; i < g->nnodes; i++) {
      const snc_node *n = g->nodes[i];
      if (n->op == SNC_OP_ADAM || n->op == SNC_OP_SGD || r.p->layout.offset[i] < 0) continue;
      int64_t e = snc_kernel_numel(n, &ctx);
      int b;
      if (r.p->layout.compact && r.p->layout.compact[i]) /* the argmax of each window, not the activation */
        b = cgu_compact_check(&r, g, i, nb, snc_exec_buf(ex, i), 0);
      else {
        cgu_read(&r, g, i, nb, buf);
        b = cgu_compare(n->name, buf, snc_exec_buf(ex, i), e, 1e-4, 2e-5);
      }
      if (b) fprintf(stderr, "\n  %s (%s): %d of %lld differ\n", n->name, snc_op_name(n->op), b, (long long)e);
      bad += b;
    }
    free(buf);
  }
  snc_exec_free(ex);
  return bad;
}

#endif
