/* Finite-difference gradient checks, driven by the op table: every op with a gradient rule has an
 * example (its row's `example`), and this test differentiates loss = sum(op(x) * r) for random r
 * with respect to every float input and parameter of the example.
 *
 * Tolerance: central differences in float32 with eps = 1e-3. The loss sums up to a few hundred
 * products of O(1) values; float rounding of each term (~6e-8 relative) divided by 2*eps gives an
 * error of about 1e-4 at most, and truncation is O(eps^2) = 1e-6: atol 2e-3, rtol 1e-2 is well above
 * both yet far below any real gradient error (a wrong sign, factor or index is O(1)). */
#include "gradcheck.h"
#include "ops/op.h"
#include "testutil.h"

static void check_op(snc_opcode op) {
  const snc_op_info *info = snc_op(op);
  snc_graph *g = snc_graph_new(info->name, "example");
  g->batch = 3;
  int y = info->example(g);
  const snc_node *yn = g->nodes[y];
  snc_error err = {0};
  if (yn->shape.rank == 0) {
    g->loss = y;
  } else {
    int64_t dims[SNC_MAX_DIMS];
    int b = (yn->flags & SNC_NF_BATCHED) ? 1 : 0;
    for (int i = b; i < yn->shape.rank; i++) dims[i - b] = yn->shape.dim[i];
    int r = snc_example_input(g, yn->shape.rank - b, dims, SNC_F32);
    CU_ASSERT_FATAL(b == 1); /* forward ops on batched inputs give batched outputs */
    int m = snc_example_op(g, SNC_OP_MUL, (int[]){y, r}, 2, (snc_attrs){0});
    g->loss = snc_example_op(g, SNC_OP_SUM, &m, 1, (snc_attrs){0});
  }
  g->nforward = g->nnodes;
  if (snc_autodiff(g, SNC_AD_INPUTS | SNC_AD_NO_UPDATES, &err)) fprintf(stderr, "\n%s: %s\n", info->name, err.msg);
  CU_ASSERT_FATAL(err.msg[0] == 0);
  snc_exec *ex = snc_exec_new(g, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
  snc_exec_init_params(ex, 11);
  gc_fill_inputs(g, ex, 5);
  snc_kctx ctx = {.nb = 3, .seed = 9, .step = 1, .training = 1, .lr_scale = 1};
  int bad, n = gc_check(g, ex, &ctx, 40, 1e-3, 2e-3, 1e-2, &bad);
  if (bad) fprintf(stderr, "  op %s: %d of %d gradient entries differ\n", info->name, bad, n);
  CU_ASSERT(n > 0);
  CU_ASSERT_EQUAL(bad, 0);
  /* a smaller last batch: the same gradients over its rows */
  snc_kctx small = ctx;
  small.nb = 2;
  n = gc_check(g, ex, &small, 40, 1e-3, 2e-3, 1e-2, &bad);
  CU_ASSERT_EQUAL(bad, 0);
  snc_exec_free(ex);
  snc_graph_free(g);
}

static void test_every_op(void) {
  int tested = 0;
  for (int op = 0; op < SNC_OP_COUNT; op++) {
    const snc_op_info *info = snc_op(op);
    if (!info->grad) continue;
    /* an op with a gradient rule must come with an example to check it on */
    if (!info->example) fprintf(stderr, "\nop %s has a gradient rule but no example\n", info->name);
    CU_ASSERT_PTR_NOT_NULL(info->example);
    if (!info->example) continue;
    check_op(op);
    tested++;
  }
  fprintf(stderr, "(%d ops) ", tested);
  CU_ASSERT(tested >= 10);
}

static void test_forward_ops_have_gradients(void) {
  /* every forward op that takes float inputs is differentiable, except one_hot (int labels) */
  for (int op = SNC_OP_CONV2D; op <= SNC_OP_CROSS_ENTROPY; op++) {
    if (op == SNC_OP_ONE_HOT) continue;
    if (!snc_op(op)->grad) fprintf(stderr, "\nop %s has no gradient rule\n", snc_op_name(op));
    CU_ASSERT_PTR_NOT_NULL(snc_op(op)->grad);
  }
}

static void register_tests(void) {
  SNC_SUITE("gradients", {"every op against finite differences", test_every_op},
            {"forward ops have gradient rules", test_forward_ops_have_gradients});
}
SNC_TEST_MAIN(register_tests)
