/* Every op's shape rule, driven by the op table: each opcode must have a case here (a test fails
 * when an op is added without one). A case builds a small graph, adds the op and compares the
 * inferred shape; refusal cases check the message names the problem. */
#include <string.h>

#include "ops/op.h"
#include "snc/ir.h"
#include "testutil.h"

static snc_loc L = {"t.yaml", 1, 1};

static snc_shape S(int rank, int64_t a, int64_t b, int64_t c, int64_t d) { return (snc_shape){rank, {a, b, c, d}}; }

static snc_graph *G(void) {
  snc_graph *g = snc_graph_new("t", "t.yaml");
  g->batch = 8;
  return g;
}

/* per-sample input shape (batch 8 is prepended) */
static int in(snc_graph *g, const char *name, snc_dtype dt, snc_shape s) {
  snc_error err = {0};
  int id = snc_graph_input(g, name, dt, &s, L, &err);
  CU_ASSERT_FATAL(id >= 0);
  return id;
}

static int par(snc_graph *g, const char *name, snc_shape s) {
  snc_error err = {0};
  int id = snc_graph_param(g, name, &s, (snc_init){SNC_INIT_ZEROS, 0, 0}, SNC_NF_TRAINABLE, L, &err);
  CU_ASSERT_FATAL(id >= 0);
  return id;
}

static int covered[SNC_OP_COUNT];

/* Adds op and checks the result shape equals want (batched as given). */
static void expect_shape(snc_graph *g, snc_opcode op, const int *ins, int n, snc_attrs a, snc_shape want, int batched) {
  snc_error err = {0};
  char name[32];
  snprintf(name, sizeof name, "n%d", g->nnodes);
  int id = snc_graph_add(g, op, name, ins, n, &a, L, &err);
  if (id < 0) fprintf(stderr, "\n%s: %s\n", snc_op_name(op), err.msg);
  CU_ASSERT_FATAL(id >= 0);
  const snc_node *nd = g->nodes[id];
  char s1[64], s2[64];
  if (!snc_shape_eq(&nd->shape, &want))
    fprintf(stderr, "\n%s: got %s want %s\n", snc_op_name(op), snc_shape_str(&nd->shape, 0, s1, 64), snc_shape_str(&want, 0, s2, 64));
  CU_ASSERT(snc_shape_eq(&nd->shape, &want));
  CU_ASSERT_EQUAL(!!(nd->flags & SNC_NF_BATCHED), batched);
  CU_ASSERT_EQUAL(snc_graph_verify(g, &err), 0);
  covered[op] = 1;
}

static void expect_error(snc_graph *g, snc_opcode op, const int *ins, int n, snc_attrs a, const char *needle) {
  snc_error err = {0};
  int before = g->nnodes;
  CU_ASSERT_EQUAL(snc_graph_add(g, op, "bad", ins, n, &a, L, &err), -1);
  CU_ASSERT_EQUAL(g->nnodes, before); /* nothing half-built stays in the graph */
  if (!strstr(err.msg, needle)) fprintf(stderr, "\n%s: message '%s' lacks '%s'\n", snc_op_name(op), err.msg, needle);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, needle));
  CU_ASSERT(strncmp(err.msg, "t.yaml:1:1: ", 12) == 0);
}

static void test_leaves(void) {
  snc_graph *g = G();
  int x = in(g, "x", SNC_F32, S(2, 3, 4, 0, 0));
  CU_ASSERT(snc_shape_eq(&g->nodes[x]->shape, &(snc_shape){3, {8, 3, 4}}));
  int p = par(g, "p", S(2, 5, 6, 0, 0));
  CU_ASSERT(!(g->nodes[p]->flags & SNC_NF_BATCHED));
  snc_error err = {0};
  snc_shape other = S(1, 5, 0, 0, 0);
  CU_ASSERT_EQUAL(snc_graph_param(g, "p", &other, (snc_init){0}, SNC_NF_TRAINABLE, L, &err), -1); /* shared, shape differs */
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "would be [5] here but was created as [5,6]"));
  CU_ASSERT_EQUAL(snc_graph_param(g, "p", &(snc_shape){2, {5, 6}}, (snc_init){0}, SNC_NF_TRAINABLE, L, &err), p);
  covered[SNC_OP_INPUT] = covered[SNC_OP_PARAM] = 1;
  /* const nodes are made by later passes; the leaf rule keeps the stored shape */
  covered[SNC_OP_CONST] = 1;
  snc_graph_free(g);
}

static void test_conv_pool(void) {
  snc_graph *g = G();
  int x = in(g, "x", SNC_F32, S(3, 3, 14, 12, 0)), w = par(g, "w", S(4, 16, 3, 5, 3)), b = par(g, "b", S(1, 16, 0, 0, 0));
  /* H' = (14 + 2*1 - 5)/2 + 1 = 6, W' = (12 - 3)/1 + 1 = 10 */
  expect_shape(g, SNC_OP_CONV2D, (int[]){x, w, b}, 3, (snc_attrs){.stride = {2, 1}, .pad = {1, 0}}, S(4, 8, 16, 6, 10), 1);
  expect_shape(g, SNC_OP_CONV2D, (int[]){x, w}, 2, (snc_attrs){.stride = {1, 1}}, S(4, 8, 16, 10, 10), 1);
  int w2 = par(g, "w2", S(4, 16, 2, 3, 3));
  expect_error(g, SNC_OP_CONV2D, (int[]){x, w2}, 2, (snc_attrs){.stride = {1, 1}}, "expects 2 input channels but input 'x' [B,3,14,12] has 3");
  int big = par(g, "big", S(4, 4, 3, 15, 3));
  expect_error(g, SNC_OP_CONV2D, (int[]){x, big}, 2, (snc_attrs){.stride = {1, 1}}, "kernel 15x3 larger than input 14x12");
  int flat = in(g, "flat", SNC_F32, S(1, 10, 0, 0, 0));
  expect_error(g, SNC_OP_CONV2D, (int[]){flat, w}, 2, (snc_attrs){.stride = {1, 1}}, "conv2d needs [B,channels,height,width]");

  /* pools: floor((14 + 0 - 3)/2) + 1 = 6, floor((12 - 3)/2) + 1 = 5 */
  expect_shape(g, SNC_OP_MAXPOOL2D, &x, 1, (snc_attrs){.kernel = {3, 3}, .stride = {2, 2}}, S(4, 8, 3, 6, 5), 1);
  expect_shape(g, SNC_OP_AVGPOOL2D, &x, 1, (snc_attrs){.kernel = {2, 2}, .stride = {2, 2}, .pad = {1, 1}}, S(4, 8, 3, 8, 7), 1);
  expect_error(g, SNC_OP_MAXPOOL2D, &x, 1, (snc_attrs){.kernel = {2, 2}, .stride = {2, 2}, .pad = {2, 0}}, "padding 2 must be between 0 and half the kernel");
  expect_error(g, SNC_OP_AVGPOOL2D, &x, 1, (snc_attrs){.kernel = {20, 2}, .stride = {1, 1}}, "kernel 20x2 larger than input 14x12");
  snc_graph_free(g);
}

static void test_linear(void) {
  snc_graph *g = G();
  int x = in(g, "x", SNC_F32, S(1, 20, 0, 0, 0)), w = par(g, "w", S(2, 7, 20, 0, 0)), b = par(g, "b", S(1, 7, 0, 0, 0));
  expect_shape(g, SNC_OP_LINEAR, (int[]){x, w, b}, 3, (snc_attrs){0}, S(2, 8, 7, 0, 0), 1);
  expect_shape(g, SNC_OP_LINEAR, (int[]){x, w}, 2, (snc_attrs){0}, S(2, 8, 7, 0, 0), 1);
  int w2 = par(g, "w2", S(2, 7, 21, 0, 0)), img = in(g, "img", SNC_F32, S(3, 1, 4, 5, 0));
  expect_error(g, SNC_OP_LINEAR, (int[]){x, w2}, 2, (snc_attrs){0}, "expects 21 features but input 'x' [B,20] has 20");
  expect_error(g, SNC_OP_LINEAR, (int[]){img, w}, 2, (snc_attrs){0}, "(add a flatten layer)");
  snc_graph_free(g);
}

static void test_elementwise(void) {
  snc_graph *g = G();
  int x = in(g, "x", SNC_F32, S(2, 3, 5, 0, 0)), y = in(g, "y", SNC_F32, S(2, 3, 5, 0, 0));
  int z = in(g, "z", SNC_F32, S(2, 5, 3, 0, 0)), lab = in(g, "lab", SNC_I32, S(0, 0, 0, 0, 0));
  /* every one-input elementwise forward op of the table (dropout below: it needs p) */
  int nunary = 0;
  for (int op = 0; op < SNC_OP_COUNT; op++) {
    const snc_op_info *info = snc_op(op);
    if (info->emit != snc_cg_emit_elementwise || info->max_inputs != 1 || !info->grad || op == SNC_OP_DROPOUT) continue;
    expect_shape(g, op, &x, 1, (snc_attrs){.alpha = 0.1f}, S(3, 8, 3, 5, 0), 1);
    expect_error(g, op, &lab, 1, (snc_attrs){0}, "input 'lab' is int32");
    nunary++;
  }
  CU_ASSERT(nunary >= 7); /* at least tanh relu leaky_relu elu sigmoid scale square */
  expect_shape(g, SNC_OP_DROPOUT, &x, 1, (snc_attrs){.p = 0.3f}, S(3, 8, 3, 5, 0), 1);
  expect_error(g, SNC_OP_DROPOUT, &x, 1, (snc_attrs){.p = 1.0f}, "dropout probability 1 must be in [0, 1)");
  expect_shape(g, SNC_OP_ADD, (int[]){x, y, x}, 3, (snc_attrs){0}, S(3, 8, 3, 5, 0), 1);
  expect_shape(g, SNC_OP_MUL, (int[]){x, y}, 2, (snc_attrs){0}, S(3, 8, 3, 5, 0), 1);
  expect_error(g, SNC_OP_ADD, (int[]){x, z}, 2, (snc_attrs){0}, "input 'x' has shape [B,3,5] but input 'z' has [B,5,3]");
  expect_error(g, SNC_OP_MUL, (int[]){x, z}, 2, (snc_attrs){0}, "but input 'z' has [B,5,3]");
  /* an operand without a batch broadcasts when it has the other's per-sample shape, in either place */
  int m = par(g, "m", S(2, 3, 5, 0, 0)), m2 = par(g, "m2", S(2, 5, 3, 0, 0));
  expect_shape(g, SNC_OP_MUL, (int[]){x, m}, 2, (snc_attrs){0}, S(3, 8, 3, 5, 0), 1);
  expect_shape(g, SNC_OP_MUL, (int[]){m, x}, 2, (snc_attrs){0}, S(3, 8, 3, 5, 0), 1);
  expect_shape(g, SNC_OP_MUL, (int[]){m, m}, 2, (snc_attrs){0}, S(2, 3, 5, 0, 0), 0);
  expect_error(g, SNC_OP_MUL, (int[]){x, m2}, 2, (snc_attrs){0},
               "input 'x' has shape [B,3,5] but input 'm2' has [5,3]; an operand without a batch must have the other's per-sample shape");
  expect_error(g, SNC_OP_ADD, (int[]){x, m}, 2, (snc_attrs){0}, "input 'x' has shape [B,3,5] but input 'm' has [3,5]");
  expect_shape(g, SNC_OP_SOFTMAX, &x, 1, (snc_attrs){.axis = 2}, S(3, 8, 3, 5, 0), 1);
  expect_shape(g, SNC_OP_LOG_SOFTMAX, &x, 1, (snc_attrs){.axis = 1}, S(3, 8, 3, 5, 0), 1);
  expect_error(g, SNC_OP_SOFTMAX, &x, 1, (snc_attrs){.axis = 0}, "axis 0 is not a feature axis");
  snc_graph_free(g);
}

static void test_batchnorm(void) {
  snc_graph *g = G();
  int x = in(g, "x", SNC_F32, S(3, 4, 5, 5, 0)), f = in(g, "f", SNC_F32, S(1, 4, 0, 0, 0));
  int p[4], q;
  const char *names[] = {"g", "b", "m", "v"};
  for (int i = 0; i < 4; i++) p[i] = par(g, names[i], S(1, 4, 0, 0, 0));
  q = par(g, "q", S(1, 3, 0, 0, 0));
  snc_attrs a = {.eps = 1e-5f, .momentum = 0.1f};
  expect_shape(g, SNC_OP_BATCHNORM, (int[]){x, p[0], p[1], p[2], p[3]}, 5, a, S(4, 8, 4, 5, 5), 1);
  expect_shape(g, SNC_OP_BATCHNORM, (int[]){f, p[0], p[1], p[2], p[3]}, 5, a, S(2, 8, 4, 0, 0), 1);
  expect_error(g, SNC_OP_BATCHNORM, (int[]){x, q, p[1], p[2], p[3]}, 5, a, "parameter 'q' has 3 channels but input 'x' has 4");
  expect_error(g, SNC_OP_BATCHNORM, (int[]){x, p[0], p[1], p[2], p[3]}, 5, (snc_attrs){.eps = 0, .momentum = 0.1f}, "eps 0 must be positive");
  snc_graph_free(g);
}

static void test_data_movement(void) {
  snc_graph *g = G();
  int x = in(g, "x", SNC_F32, S(3, 2, 14, 14, 0)), y = in(g, "y", SNC_F32, S(3, 3, 14, 14, 0));
  int lab = in(g, "lab", SNC_I32, S(1, 2, 0, 0, 0));
  expect_shape(g, SNC_OP_RESHAPE, &x, 1, (snc_attrs){.to = {1, {-1}}}, S(2, 8, 392, 0, 0), 1);
  expect_shape(g, SNC_OP_RESHAPE, &x, 1, (snc_attrs){.to = {2, {28, -1}}}, S(3, 8, 28, 14, 0), 1);
  expect_error(g, SNC_OP_RESHAPE, &x, 1, (snc_attrs){.to = {2, {5, -1}}}, "cannot reshape input 'x' [B,2,14,14] (392 values per sample)");
  expect_shape(g, SNC_OP_CONCAT, (int[]){x, y}, 2, (snc_attrs){.axis = 1}, S(4, 8, 5, 14, 14), 1);
  expect_error(g, SNC_OP_CONCAT, (int[]){x, y}, 2, (snc_attrs){.axis = 2}, "input 'x' has shape [B,2,14,14] but input 'y' has [B,3,14,14]");
  expect_shape(g, SNC_OP_SLICE, &x, 1, (snc_attrs){.axis = 1, .start = 1, .len = 1}, S(4, 8, 1, 14, 14), 1);
  expect_error(g, SNC_OP_SLICE, &x, 1, (snc_attrs){.axis = 1, .start = 2, .len = 1}, "index 2 is out of range for axis 1");
  expect_shape(g, SNC_OP_ONE_HOT, &lab, 1, (snc_attrs){.classes = 10}, S(3, 8, 2, 10, 0), 1);
  expect_error(g, SNC_OP_ONE_HOT, &x, 1, (snc_attrs){.classes = 10}, "one_hot needs int32 labels");
  snc_graph_free(g);
}

static void test_losses(void) {
  snc_graph *g = G();
  int p = in(g, "p", SNC_F32, S(1, 10, 0, 0, 0)), t = in(g, "t", SNC_F32, S(1, 10, 0, 0, 0));
  int t2 = in(g, "t2", SNC_F32, S(1, 2, 0, 0, 0)), lab = in(g, "lab", SNC_I32, S(0, 0, 0, 0, 0));
  expect_shape(g, SNC_OP_BCE, (int[]){p, t}, 2, (snc_attrs){0}, S(0, 0, 0, 0, 0), 0);
  expect_shape(g, SNC_OP_BCE_LOGITS, (int[]){p, t}, 2, (snc_attrs){0}, S(0, 0, 0, 0, 0), 0);
  expect_error(g, SNC_OP_BCE, (int[]){p, t2}, 2, (snc_attrs){0}, "prediction 'p' has shape [B,10] but target 't2' has [B,2]");
  expect_shape(g, SNC_OP_CROSS_ENTROPY, (int[]){p, lab}, 2, (snc_attrs){0}, S(0, 0, 0, 0, 0), 0);
  expect_error(g, SNC_OP_CROSS_ENTROPY, (int[]){p, t}, 2, (snc_attrs){0}, "must be int32 class labels");
  expect_shape(g, SNC_OP_SUM, &p, 1, (snc_attrs){0}, S(0, 0, 0, 0, 0), 0);
  expect_error(g, SNC_OP_SUM, &lab, 1, (snc_attrs){0}, "input 'lab' is int32");
  snc_graph_free(g);
}

static void test_products_reductions(void) {
  snc_graph *g = G();
  int a = in(g, "a", SNC_F32, S(1, 10, 0, 0, 0)), b = in(g, "b", SNC_F32, S(1, 7, 0, 0, 0));
  int c = in(g, "c", SNC_F32, S(2, 2, 3, 0, 0)), lab = in(g, "lab", SNC_I32, S(1, 10, 0, 0, 0));
  int big = in(g, "big", SNC_F32, S(4, 2, 2, 2, 2)), p = par(g, "p", S(1, 10, 0, 0, 0));
  expect_shape(g, SNC_OP_OUTER, (int[]){a, b}, 2, (snc_attrs){0}, S(3, 8, 10, 7, 0), 1);
  expect_shape(g, SNC_OP_OUTER, (int[]){c, a}, 2, (snc_attrs){0}, S(4, 8, 2, 3, 10), 1);
  expect_error(g, SNC_OP_OUTER, (int[]){a, p}, 2, (snc_attrs){0}, "input 'p' [10] must be batched with at least one feature axis");
  expect_error(g, SNC_OP_OUTER, (int[]){a, lab}, 2, (snc_attrs){0}, "input 'lab' is int32");
  expect_error(g, SNC_OP_OUTER, (int[]){big, c}, 2, (snc_attrs){0}, "give more than 6 dimensions");
  /* reduce_sum: axes [axis, axis + len) leave the shape; the batch stays */
  expect_shape(g, SNC_OP_REDUCE_SUM, &c, 1, (snc_attrs){.axis = 1, .len = 2}, S(1, 8, 0, 0, 0), 1);
  expect_shape(g, SNC_OP_REDUCE_SUM, &c, 1, (snc_attrs){.axis = 2, .len = 1}, S(2, 8, 2, 0, 0), 1);
  expect_shape(g, SNC_OP_REDUCE_SUM, &big, 1, (snc_attrs){.axis = 2, .len = 2}, S(3, 8, 2, 2, 0), 1);
  expect_error(g, SNC_OP_REDUCE_SUM, &c, 1, (snc_attrs){.axis = 0, .len = 1}, "axes 0..0 are not feature axes of input 'c' [B,2,3]");
  expect_error(g, SNC_OP_REDUCE_SUM, &c, 1, (snc_attrs){.axis = 2, .len = 2}, "axes 2..3 are not feature axes");
  expect_error(g, SNC_OP_REDUCE_SUM, &p, 1, (snc_attrs){.axis = 1, .len = 1}, "input 'p' [10] has no batch");
  expect_error(g, SNC_OP_REDUCE_SUM, &lab, 1, (snc_attrs){.axis = 1, .len = 1}, "input 'lab' is int32");
  snc_graph_free(g);
}

/* Forward ops are covered here; backward and update ops (made only by autodiff) are shape-checked in
 * test_grad, where every gradient must have its tensor's shape and the verifier re-runs each rule. */
static void test_every_op_covered(void) {
  for (int op = 0; op < SNC_OP_CONV2D_DX; op++) {
    if (!covered[op]) fprintf(stderr, "\nop '%s' has no shape test\n", snc_op_name(op));
    CU_ASSERT(covered[op]);
  }
}

static void test_lookup(void) {
  for (int op = 0; op < SNC_OP_COUNT; op++) CU_ASSERT_EQUAL(snc_op_lookup(snc_op_name(op)), op);
  CU_ASSERT_EQUAL(snc_op_lookup("no_such_op"), -1);
}

static void register_tests(void) {
  SNC_SUITE("shape rules", {"leaves", test_leaves}, {"conv2d and pools", test_conv_pool}, {"linear", test_linear},
            {"elementwise", test_elementwise}, {"batchnorm", test_batchnorm}, {"data movement", test_data_movement},
            {"losses", test_losses}, {"outer, reduce_sum", test_products_reductions},
            {"every op covered", test_every_op_covered}, {"names", test_lookup});
}
SNC_TEST_MAIN(register_tests)
