/* Optimizer updates against hand-computed values, and autodiff's bookkeeping: sharing accumulates,
 * ops without gradient rules are refused all at once, the loss must depend on a parameter. */
#include <math.h>
#include <string.h>

#include "gradcheck.h"
#include "ops/op.h"
#include "testutil.h"

/* loss = sum(p * p): gradient 2p. */
static snc_graph *square_model(snc_optim_kind opt, float lr, float wd, float momentum, int nesterov) {
  snc_graph *g = snc_graph_new("sq", "sq");
  g->batch = 1;
  g->train = (snc_train_cfg){.optimizer = opt, .lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = wd,
                             .momentum = momentum, .nesterov = nesterov, .epochs = 1, .batch_size = 1, .seed = 1};
  snc_error err = {0};
  int p = snc_graph_param(g, "p", &(snc_shape){1, {3}}, (snc_init){SNC_INIT_ZEROS, 0, 0}, SNC_NF_TRAINABLE,
                          (snc_loc){"sq", 1, 1}, &err);
  int m = snc_example_op(g, SNC_OP_MUL, (int[]){p, p}, 2, (snc_attrs){0});
  g->loss = snc_example_op(g, SNC_OP_SUM, &m, 1, (snc_attrs){0});
  g->nforward = g->nnodes;
  CU_ASSERT_EQUAL(snc_autodiff(g, 0, &err), 0);
  return g;
}

static void run_steps(snc_graph *g, const float *p0, int steps, float *p_out) {
  snc_error err = {0};
  snc_exec *ex = snc_exec_new(g, &err);
  int p = snc_graph_find(g, "p");
  snc_exec_init_params(ex, 1);
  memcpy(snc_exec_buf(ex, p), p0, 3 * sizeof(float));
  for (int s = 1; s <= steps; s++) {
    snc_kctx ctx = {.nb = 1, .seed = 1, .step = s, .training = 1, .lr_scale = 1};
    snc_exec_run(ex, SNC_RUN_STEP, &ctx);
  }
  memcpy(p_out, snc_exec_buf(ex, p), 3 * sizeof(float));
  snc_exec_free(ex);
}

static void test_adam(void) {
  /* Step 1: m = 0.1 g, v = 0.001 g^2, m^ = g, v^ = g^2: p -= lr * g / (|g| + eps) = lr * sign(g).
   * Step 2 from p1 (g2 = 2 p1): m = 0.09 g1 + 0.1 g2, v = 0.000999 g1^2 + 0.001 g2^2,
   * m^ = m / 0.19, v^ = v / 0.001999. Values below computed by hand with those formulas. */
  const float p0[3] = {1.0f, -2.0f, 0.5f};
  float p[3];
  snc_graph *g = square_model(SNC_OPT_ADAM, 0.1f, 0, 0, 0);
  run_steps(g, p0, 1, p);
  CU_ASSERT_DOUBLE_EQUAL(p[0], 0.9, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(p[1], -1.9, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(p[2], 0.4, 1e-6);
  run_steps(g, p0, 2, p);
  for (int i = 0; i < 3; i++) {
    double g1 = 2 * p0[i], p1 = p0[i] - 0.1 * (g1 > 0 ? 1 : -1), g2 = 2 * p1;
    double m = 0.09 * g1 + 0.1 * g2, v = 0.999 * 0.001 * g1 * g1 + 0.001 * g2 * g2;
    double want = p1 - 0.1 * (m / 0.19) / (sqrt(v / (1 - 0.999 * 0.999)) + 1e-8);
    CU_ASSERT_DOUBLE_EQUAL(p[i], want, 1e-5);
  }
  snc_graph_free(g);
  /* weight decay adds wd * p to the gradient (PyTorch's Adam, not AdamW): step 1 is still lr*sign */
  g = square_model(SNC_OPT_ADAM, 0.1f, 0.5f, 0, 0);
  run_steps(g, p0, 1, p);
  CU_ASSERT_DOUBLE_EQUAL(p[1], -1.9, 1e-6);
  snc_graph_free(g);
}

static void test_sgd(void) {
  const float p0[3] = {1.0f, -2.0f, 0.5f};
  float p[3];
  /* plain: p1 = p0 - 0.1 * 2 p0 = 0.8 p0 */
  snc_graph *g = square_model(SNC_OPT_SGD, 0.1f, 0, 0, 0);
  run_steps(g, p0, 1, p);
  for (int i = 0; i < 3; i++) CU_ASSERT_DOUBLE_EQUAL(p[i], 0.8 * p0[i], 1e-6);
  snc_graph_free(g);
  /* momentum 0.9, wd 0.1: g = 2p + 0.1p = 2.1p; buf1 = g1; p1 = p0 - lr g1;
   * g2 = 2.1 p1; buf2 = 0.9 buf1 + g2; p2 = p1 - lr buf2 */
  g = square_model(SNC_OPT_SGD, 0.1f, 0.1f, 0.9f, 0);
  run_steps(g, p0, 2, p);
  for (int i = 0; i < 3; i++) {
    double g1 = 2.1 * p0[i], p1 = p0[i] - 0.1 * g1, g2 = 2.1 * p1, b2 = 0.9 * g1 + g2;
    CU_ASSERT_DOUBLE_EQUAL(p[i], p1 - 0.1 * b2, 1e-6);
  }
  snc_graph_free(g);
  /* nesterov: step uses g + momentum * buf */
  g = square_model(SNC_OPT_SGD, 0.1f, 0, 0.9f, 1);
  run_steps(g, p0, 1, p);
  for (int i = 0; i < 3; i++) CU_ASSERT_DOUBLE_EQUAL(p[i], p0[i] - 0.1 * (2 * p0[i] * 1.9), 1e-6);
  snc_graph_free(g);
}

static void test_shared_parameter_accumulates(void) {
  /* y = p*x + p*x' with one p: dL/dp sums both uses */
  snc_graph *g = snc_graph_new("share", "share");
  g->batch = 2;
  snc_error err = {0};
  int x = snc_example_input(g, 1, (int64_t[]){3}, SNC_F32), x2 = snc_example_input(g, 1, (int64_t[]){3}, SNC_F32);
  int w = snc_example_param(g, 2, (int64_t[]){2, 3});
  int a = snc_example_op(g, SNC_OP_TANH, &x, 1, (snc_attrs){0});
  int y1 = snc_example_op(g, SNC_OP_MUL, (int[]){a, x2}, 2, (snc_attrs){0});
  int y2 = snc_example_op(g, SNC_OP_MUL, (int[]){a, x}, 2, (snc_attrs){0});
  int s = snc_example_op(g, SNC_OP_ADD, (int[]){y1, y2}, 2, (snc_attrs){0});
  g->loss = snc_example_op(g, SNC_OP_SUM, &s, 1, (snc_attrs){0});
  (void)w;
  g->nforward = g->nnodes;
  CU_ASSERT_EQUAL(snc_autodiff(g, SNC_AD_INPUTS | SNC_AD_NO_UPDATES, &err), 0);
  /* a = tanh(x) is used twice and x is used twice: their gradients are sums */
  CU_ASSERT_EQUAL(g->nodes[g->nodes[x]->grad]->op, SNC_OP_ADD);
  snc_exec *ex = snc_exec_new(g, &err);
  snc_exec_init_params(ex, 3);
  gc_fill_inputs(g, ex, 4);
  snc_kctx ctx = {.nb = 2, .seed = 1, .step = 1, .training = 1, .lr_scale = 1};
  int bad, n = gc_check(g, ex, &ctx, 10, 1e-3, 2e-3, 1e-2, &bad);
  CU_ASSERT(n >= 6);
  CU_ASSERT_EQUAL(bad, 0);
  snc_exec_free(ex);
  snc_graph_free(g);
}

static void test_refusals(void) {
  snc_error err = {0};
  /* no loss */
  snc_graph *g = snc_graph_new("t", "t.yaml");
  snc_example_input(g, 1, (int64_t[]){3}, SNC_F32);
  g->nforward = g->nnodes;
  CU_ASSERT_EQUAL(snc_autodiff(g, 0, &err), -1);
  CU_ASSERT_STRING_EQUAL(err.msg, "t.yaml: the model has no loss; nothing to differentiate");
  snc_graph_free(g);
  /* a loss that depends on no parameter */
  g = snc_graph_new("t", "t.yaml");
  int x = snc_example_input(g, 1, (int64_t[]){3}, SNC_F32);
  g->loss = snc_example_op(g, SNC_OP_SUM, &x, 1, (snc_attrs){0});
  g->nforward = g->nnodes;
  CU_ASSERT_EQUAL(snc_autodiff(g, 0, &err), -1);
  CU_ASSERT_STRING_EQUAL(err.msg, "t.yaml: the loss does not depend on any trainable parameter");
  snc_graph_free(g);
  /* ops without gradient rules on the path, all named at once */
  g = snc_graph_new("t", "t.yaml");
  g->batch = 2;
  x = snc_example_input(g, 1, (int64_t[]){3}, SNC_F32);
  int p = snc_example_param(g, 1, (int64_t[]){3});
  int dy = snc_example_input(g, 1, (int64_t[]){3}, SNC_F32);
  int pb = snc_example_op(g, SNC_OP_SUM, &p, 1, (snc_attrs){0});
  (void)pb;
  int t1 = snc_example_op(g, SNC_OP_TANH_DX, (int[]){x, dy}, 2, (snc_attrs){0});
  int t2 = snc_example_op(g, SNC_OP_RELU_DX, (int[]){t1, dy}, 2, (snc_attrs){0});
  int t3 = snc_example_op(g, SNC_OP_TANH_DX, (int[]){t2, dy}, 2, (snc_attrs){0});
  int s = snc_example_op(g, SNC_OP_SUM, &t3, 1, (snc_attrs){0});
  int tot = snc_example_op(g, SNC_OP_ADD, (int[]){s, pb}, 2, (snc_attrs){0});
  g->loss = tot;
  g->nforward = g->nnodes;
  /* x does not need a gradient: make it depend on p by building t1 from a parameter path */
  g->nodes[t1]->inputs[0] = x;
  CU_ASSERT_EQUAL(snc_autodiff(g, SNC_AD_INPUTS, &err), -1);
  CU_ASSERT_STRING_EQUAL(err.msg, "t.yaml: cannot train: no gradient rule for tanh_dx, relu_dx");
  snc_graph_free(g);
}

static void register_tests(void) {
  SNC_SUITE("optimizers and autodiff", {"adam", test_adam}, {"sgd", test_sgd},
            {"shared use accumulates", test_shared_parameter_accumulates}, {"refusals", test_refusals});
}
SNC_TEST_MAIN(register_tests)
