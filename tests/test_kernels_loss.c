/* Reference kernels of the softmax, loss, norm and shape families against hand-computed values.
 *
 * Every expected constant below was computed with PyTorch 1.13 (/usr/bin/python3; torch.softmax,
 * torch.log_softmax, F.binary_cross_entropy, F.binary_cross_entropy_with_logits, F.cross_entropy,
 * F.batch_norm, each with reduction 'mean' and .backward() for the gradients) on the same inputs,
 * printed to 9 significant digits, unless a comment says it is exact arithmetic. */
#include <math.h>
#include <string.h>

#include "snc/backend.h"
#include "snc/ir.h"
#include "testutil.h"

static snc_loc L = {"t.yaml", 1, 1};

static snc_graph *G(int batch) {
  snc_graph *g = snc_graph_new("t", "t.yaml");
  g->batch = batch;
  return g;
}

static int in(snc_graph *g, snc_dtype dt, int rank, const int64_t *dims) {
  snc_shape s = {rank, {0}};
  for (int i = 0; i < rank; i++) s.dim[i] = dims[i];
  char name[16];
  snprintf(name, sizeof name, "in%d", g->nnodes);
  snc_error err = {0};
  int id = snc_graph_input(g, name, dt, &s, L, &err);
  CU_ASSERT_FATAL(id >= 0);
  return id;
}

static int state(snc_graph *g, int64_t c) {
  char name[16];
  snprintf(name, sizeof name, "p%d", g->nnodes);
  snc_error err = {0};
  int id = snc_graph_param(g, name, &(snc_shape){1, {c}}, (snc_init){SNC_INIT_ZEROS, 0, 0}, 0, L, &err);
  CU_ASSERT_FATAL(id >= 0);
  return id;
}

static int scalar(snc_graph *g, float v) {
  char name[16];
  snprintf(name, sizeof name, "c%d", g->nnodes);
  snc_error err = {0};
  int id = snc_graph_const(g, name, &(snc_shape){0, {0}}, &v, L, &err);
  CU_ASSERT_FATAL(id >= 0);
  return id;
}

static int op(snc_graph *g, snc_opcode o, const int *ins, int n, snc_attrs a) {
  char name[32];
  snprintf(name, sizeof name, "%s%d", snc_op_name(o), g->nnodes);
  snc_error err = {0};
  int id = snc_graph_add(g, o, name, ins, n, &a, L, &err);
  if (id < 0) fprintf(stderr, "\n%s\n", err.msg);
  CU_ASSERT_FATAL(id >= 0);
  return id;
}

static snc_exec *E(snc_graph *g) {
  snc_error err = {0};
  g->nforward = g->nnodes;
  CU_ASSERT_EQUAL_FATAL(snc_graph_verify(g, &err), 0);
  snc_exec *ex = snc_exec_new(g, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
  return ex;
}

static void set(snc_exec *ex, int id, const void *v, size_t n) { memcpy(snc_exec_buf(ex, id), v, n * 4); }

/* |got - want| <= 1e-6 + rtol |want| elementwise */
static void expect(snc_exec *ex, int id, const double *want, int n, double rtol, const char *what) {
  const float *got = snc_exec_buf(ex, id);
  for (int i = 0; i < n; i++) {
    int ok = fabs(got[i] - want[i]) <= 1e-6 + rtol * fabs(want[i]);
    if (!ok) fprintf(stderr, "\n  %s[%d]: got %.9g want %.9g\n", what, i, got[i], want[i]);
    CU_ASSERT(ok);
  }
}

#define CTX(n) ((snc_kctx){.nb = (n), .seed = 1, .step = 1, .training = 1, .lr_scale = 1})
#define NELEM(a) (int)(sizeof(a) / sizeof(a)[0])

static void test_softmax(void) {
  snc_graph *g = G(2);
  int x = in(g, SNC_F32, 1, (int64_t[]){3}), x2 = in(g, SNC_F32, 2, (int64_t[]){3, 2});
  int s = op(g, SNC_OP_SOFTMAX, &x, 1, (snc_attrs){.axis = 1});
  int ls = op(g, SNC_OP_LOG_SOFTMAX, &x2, 1, (snc_attrs){.axis = 1}); /* a middle axis: stride 2 */
  snc_exec *ex = E(g);
  /* the second row is the first plus 1000: max subtraction keeps it finite and equal */
  set(ex, x, (float[]){1, 2, 3, 1000, 1001, 1002}, 6);
  set(ex, x2, (float[]){0.5f, -1, 1.5f, 2, -0.25f, 0, 3, 1, 2, 1, 1, 1}, 12);
  snc_kctx ctx = CTX(2);
  snc_exec_node(ex, s, &ctx);
  snc_exec_node(ex, ls, &ctx);
  expect(ex, s, (double[]){0.0900305733, 0.244728476, 0.665240943, 0.0900305733, 0.244728476, 0.665240943}, 6, 1e-6,
         "softmax");
  expect(ex, ls,
         (double[]){-1.43285549, -3.16984606, -0.432855487, -0.169846043, -2.18285561, -2.16984606, -0.407605946,
                    -1.09861231, -1.40760589, -1.09861231, -2.40760589, -1.09861231},
         12, 1e-6, "log_softmax");
  snc_exec_free(ex);
  snc_graph_free(g);
}

/* p and t as [2,2]; the first row has p = 0 with t = 1 and p = 1 with t = 0: each log is clamped at
 * -100, so those terms are 100 each and the mean is (200 - 0.5 log .3 - 0.5 log .7 - log .8) / 4. */
static void test_bce(void) {
  snc_graph *g = G(2);
  int p = in(g, SNC_F32, 1, (int64_t[]){2}), t = in(g, SNC_F32, 1, (int64_t[]){2}), t2 = in(g, SNC_F32, 1, (int64_t[]){2});
  int l = op(g, SNC_OP_BCE, (int[]){p, t}, 2, (snc_attrs){0}), l2 = op(g, SNC_OP_BCE, (int[]){p, t2}, 2, (snc_attrs){0});
  int one = scalar(g, 1.0f);
  int d = op(g, SNC_OP_BCE_DX, (int[]){p, t, one}, 3, (snc_attrs){0});
  int d2 = op(g, SNC_OP_BCE_DX, (int[]){p, t2, one}, 3, (snc_attrs){0});
  snc_exec *ex = E(g);
  set(ex, p, (float[]){0, 1, 0.3f, 0.8f}, 4);
  set(ex, t, (float[]){1, 0, 0.5f, 1}, 4);
  set(ex, t2, (float[]){0, 1, 0.5f, 1}, 4); /* p = t at the ends: zero loss, zero gradient there */
  snc_kctx ctx = CTX(2);
  for (int id = l; id <= d2; id++) snc_exec_node(ex, id, &ctx);
  expect(ex, l, (double[]){50.2508659}, 1, 1e-6, "bce");
  expect(ex, l2, (double[]){0.25086686}, 1, 1e-6, "bce exact ends");
  /* torch's backward: (p - t) / max((1-p) p, 1e-12) / 4: -/+ 2.5e11 where p is 0 or 1 */
  expect(ex, d, (double[]){-249999999000.0, 249999999000.0, -0.238095209, -0.3125}, 4, 1e-6, "bce_dx");
  expect(ex, d2, (double[]){0, 0, -0.238095209, -0.3125}, 4, 1e-6, "bce_dx exact ends");
  snc_exec_free(ex);
  snc_graph_free(g);
}

static void test_bce_logits(void) {
  snc_graph *g = G(2);
  int z = in(g, SNC_F32, 1, (int64_t[]){2}), t = in(g, SNC_F32, 1, (int64_t[]){2});
  int l = op(g, SNC_OP_BCE_LOGITS, (int[]){z, t}, 2, (snc_attrs){0});
  int d = op(g, SNC_OP_BCE_LOGITS_DX, (int[]){z, t, scalar(g, 1.0f)}, 3, (snc_attrs){0});
  snc_exec *ex = E(g);
  /* |z| = 100 would overflow exp(-z) in the naive form; 30 with t = 1 is ~1e-13 */
  set(ex, z, (float[]){100, -100, 30, -0.5f}, 4);
  set(ex, t, (float[]){0, 1, 1, 0.25f}, 4);
  snc_kctx ctx = CTX(2);
  snc_exec_node(ex, l, &ctx);
  snc_exec_node(ex, d, &ctx);
  expect(ex, l, (double[]){50.1497688}, 1, 1e-6, "bce_logits");
  expect(ex, d, (double[]){0.25, -0.25, 0.0, 0.0318851694}, 4, 1e-6, "bce_logits_dx");
  snc_exec_free(ex);
  snc_graph_free(g);
}

static void test_cross_entropy(void) {
  snc_graph *g = G(3);
  int z = in(g, SNC_F32, 1, (int64_t[]){4}), lab = in(g, SNC_I32, 0, NULL);
  int l = op(g, SNC_OP_CROSS_ENTROPY, (int[]){z, lab}, 2, (snc_attrs){0});
  int d = op(g, SNC_OP_CROSS_ENTROPY_DX, (int[]){z, lab, scalar(g, 1.0f)}, 3, (snc_attrs){0});
  snc_exec *ex = E(g);
  set(ex, z, (float[]){1, 2, 0.5f, -1, 0, 0, 0, 0, 3, -2, 1, 50}, 12);
  set(ex, lab, (int32_t[]){2, 0, 3}, 3);
  snc_kctx ctx = CTX(3);
  snc_exec_node(ex, l, &ctx);
  snc_exec_node(ex, d, &ctx);
  expect(ex, l, (double[]){1.12715876}, 1, 1e-6, "cross_entropy");
  expect(ex, d,
         (double[]){0.0747359395, 0.203153357, -0.288003713, 0.0101144109, -0.25, 0.0833333358, 0.0833333358,
                    0.0833333358, 1.29133264e-21, 8.70093068e-24, 1.74762857e-22, 0.0},
         12, 1e-6, "cross_entropy_dx");
  /* an out-of-range label (7, -1) is never read through: the row adds 0 and the mean still divides
   * by nb: (1.99518192 + 0) / 3 from torch's per-row losses (reduction 'none'); its gradient row is 0 */
  set(ex, lab, (int32_t[]){2, 7, 3}, 3);
  snc_exec_node(ex, l, &ctx);
  expect(ex, l, (double[]){0.665060639}, 1, 1e-6, "cross_entropy, label out of range");
  set(ex, lab, (int32_t[]){2, -1, 3}, 3);
  snc_exec_node(ex, d, &ctx);
  expect(ex, d, (double[]){0.0747359395, 0.203153357, -0.288003713, 0.0101144109, 0, 0, 0, 0}, 8, 1e-6,
         "cross_entropy_dx, label out of range");
  snc_exec_free(ex);
  snc_graph_free(g);
}

/* x [2,2,2,2], gamma (1.5, -0.5), beta (0.1, 0.2), running mean (0.5, -1), var (2, 0.5),
 * momentum 0.1, eps 1e-5. Batch 3 with nb 2: the third row holds NaN and must not be read. */
static void test_batchnorm(void) {
  snc_graph *g = G(3);
  int x = in(g, SNC_F32, 3, (int64_t[]){2, 2, 2});
  int gm = state(g, 2), bt = state(g, 2), rm = state(g, 2), rv = state(g, 2);
  int y = op(g, SNC_OP_BATCHNORM, (int[]){x, gm, bt, rm, rv}, 5, (snc_attrs){.eps = 1e-5f, .momentum = 0.1f});
  CU_ASSERT(g->nodes[y]->flags & SNC_NF_EFFECT);
  snc_exec *ex = E(g);
  float xv[24] = {0.5f, -1, 2, 0.25f, 1, 1.5f, -0.5f, 3, -2, 0, 1, 0.75f, 2.5f, -1.25f, 0.5f, 0};
  for (int i = 16; i < 24; i++) xv[i] = NAN;
  set(ex, x, xv, 24);
  set(ex, gm, (float[]){1.5f, -0.5f}, 2);
  set(ex, bt, (float[]){0.1f, 0.2f}, 2);
  set(ex, rm, (float[]){0.5f, -1}, 2);
  set(ex, rv, (float[]){2, 0.5f}, 2);
  snc_kctx ctx = CTX(2);
  snc_exec_node(ex, y, &ctx);
  expect(ex, y,
         (double[]){0.507342577, -1.44790161, 2.46258664, 0.181468517, 0.142691433, -0.0406959355, 0.69285357,
                    -0.590858042, -2.75139785, -0.144405514, 1.15909064, 0.833216548, -0.407470673, 0.967934608,
                    0.326078802, 0.509466171},
         16, 1e-5, "batchnorm training");
  /* running_var takes the unbiased batch variance (8 values per channel: factor 8/7) */
  expect(ex, rm, (double[]){0.46875, -0.815624952}, 2, 1e-6, "running_mean");
  expect(ex, rv, (double[]){1.95133924, 0.662388384}, 2, 1e-6, "running_var");
  /* evaluation with the updated running statistics; they stay as they are */
  ctx.training = 0;
  snc_exec_node(ex, y, &ctx);
  expect(ex, y,
         (double[]){0.133556277, -1.47714496, 1.74425745, -0.134893924, -0.915415049, -1.22258615, 0.00609827042,
                    -2.14409947, -2.55094576, -0.403344125, 0.670456648, 0.402006477, -1.83692837, 0.46685493,
                    -0.608243942, -0.301072836},
         16, 1e-5, "batchnorm evaluation");
  expect(ex, rm, (double[]){0.46875, -0.815624952}, 2, 1e-6, "running_mean after evaluation");
  expect(ex, rv, (double[]){1.95133924, 0.662388384}, 2, 1e-6, "running_var after evaluation");
  snc_exec_free(ex);
  snc_graph_free(g);
}

/* exact arithmetic: indicator rows; an out-of-range label gives a row of zeros */
static void test_one_hot(void) {
  snc_graph *g = G(5);
  int lab = in(g, SNC_I32, 0, NULL);
  int y = op(g, SNC_OP_ONE_HOT, &lab, 1, (snc_attrs){.classes = 4});
  snc_exec *ex = E(g);
  set(ex, lab, (int32_t[]){2, 0, 3, 7, -1}, 5);
  snc_kctx ctx = CTX(5);
  snc_exec_node(ex, y, &ctx);
  expect(ex, y, (double[]){0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, 20, 0, "one_hot");
  snc_exec_free(ex);
  snc_graph_free(g);
}

/* exact arithmetic: element copies */
static void test_concat_slice(void) {
  snc_graph *g = G(2);
  int a = in(g, SNC_F32, 2, (int64_t[]){1, 2}), b = in(g, SNC_F32, 2, (int64_t[]){2, 2});
  int c = op(g, SNC_OP_CONCAT, (int[]){a, b}, 2, (snc_attrs){.axis = 1});      /* [2,3,2] */
  int s = op(g, SNC_OP_SLICE, &c, 1, (snc_attrs){.axis = 1, .start = 1, .len = 1}); /* [2,1,2] */
  int s2 = op(g, SNC_OP_SLICE, &c, 1, (snc_attrs){.axis = 2, .start = 1, .len = 1}); /* [2,3,1] */
  snc_attrs da = {.axis = 1, .start = 1, .len = 1, .to = g->nodes[c]->shape, .to_batched = 1};
  int dx = op(g, SNC_OP_SLICE_DX, &s, 1, da); /* back to [2,3,2] */
  int r = op(g, SNC_OP_RESHAPE, &c, 1, (snc_attrs){.to = {1, {-1}}});
  snc_exec *ex = E(g);
  set(ex, a, (float[]){1, 2, 3, 4}, 4);
  set(ex, b, (float[]){10, 11, 12, 13, 20, 21, 22, 23}, 8);
  snc_kctx ctx = CTX(2);
  for (int id = c; id <= r; id++) snc_exec_node(ex, id, &ctx);
  expect(ex, c, (double[]){1, 2, 10, 11, 12, 13, 3, 4, 20, 21, 22, 23}, 12, 0, "concat");
  expect(ex, s, (double[]){10, 11, 20, 21}, 4, 0, "slice axis 1");
  expect(ex, s2, (double[]){2, 11, 13, 4, 21, 23}, 6, 0, "slice axis 2");
  expect(ex, dx, (double[]){0, 0, 10, 11, 0, 0, 0, 0, 20, 21, 0, 0}, 12, 0, "slice_dx");
  expect(ex, r, (double[]){1, 2, 10, 11, 12, 13, 3, 4, 20, 21, 22, 23}, 12, 0, "reshape");
  snc_exec_free(ex);
  snc_graph_free(g);
}

/* Batch 4 with nb 2: the losses average over the 2 rows in use only; the unused rows hold NaN and
 * labels out of range, which must not be read. Expected: the batch-2 values above and, for
 * cross_entropy, torch on the first two rows of test_cross_entropy's logits. */
static void test_losses_use_nb_rows(void) {
  snc_graph *g = G(4);
  int p = in(g, SNC_F32, 1, (int64_t[]){2}), t = in(g, SNC_F32, 1, (int64_t[]){2});
  int z = in(g, SNC_F32, 1, (int64_t[]){2}), tz = in(g, SNC_F32, 1, (int64_t[]){2});
  int zc = in(g, SNC_F32, 1, (int64_t[]){4}), lab = in(g, SNC_I32, 0, NULL);
  int l1 = op(g, SNC_OP_BCE, (int[]){p, t}, 2, (snc_attrs){0});
  int l2 = op(g, SNC_OP_BCE_LOGITS, (int[]){z, tz}, 2, (snc_attrs){0});
  int l3 = op(g, SNC_OP_CROSS_ENTROPY, (int[]){zc, lab}, 2, (snc_attrs){0});
  int one = scalar(g, 1.0f);
  int d1 = op(g, SNC_OP_BCE_DX, (int[]){p, t, one}, 3, (snc_attrs){0});
  int d2 = op(g, SNC_OP_BCE_LOGITS_DX, (int[]){z, tz, one}, 3, (snc_attrs){0});
  int d3 = op(g, SNC_OP_CROSS_ENTROPY_DX, (int[]){zc, lab, one}, 3, (snc_attrs){0});
  snc_exec *ex = E(g);
  set(ex, p, (float[]){0, 1, 0.3f, 0.8f, NAN, NAN, NAN, NAN}, 8);
  set(ex, t, (float[]){1, 0, 0.5f, 1, NAN, NAN, NAN, NAN}, 8);
  set(ex, z, (float[]){100, -100, 30, -0.5f, NAN, NAN, NAN, NAN}, 8);
  set(ex, tz, (float[]){0, 1, 1, 0.25f, NAN, NAN, NAN, NAN}, 8);
  float zv[16] = {1, 2, 0.5f, -1, 0, 0, 0, 0};
  for (int i = 8; i < 16; i++) zv[i] = NAN;
  set(ex, zc, zv, 16);
  set(ex, lab, (int32_t[]){2, 0, 99, -5}, 4);
  snc_kctx ctx = CTX(2);
  for (int id = l1; id <= d3; id++) snc_exec_node(ex, id, &ctx);
  expect(ex, l1, (double[]){50.2508659}, 1, 1e-6, "bce, nb 2 of 4");
  expect(ex, l2, (double[]){50.1497688}, 1, 1e-6, "bce_logits, nb 2 of 4");
  expect(ex, l3, (double[]){1.6907382}, 1, 1e-6, "cross_entropy, nb 2 of 4");
  expect(ex, d1, (double[]){-249999999000.0, 249999999000.0, -0.238095209, -0.3125}, 4, 1e-6, "bce_dx, nb 2 of 4");
  expect(ex, d2, (double[]){0.25, -0.25, 0.0, 0.0318851694}, 4, 1e-6, "bce_logits_dx, nb 2 of 4");
  /* torch on the first two rows: the gradient is 1.5 times test_cross_entropy's (1/2 instead of 1/3) */
  expect(ex, d3,
         (double[]){0.0747359395 * 1.5, 0.203153357 * 1.5, -0.288003713 * 1.5, 0.0101144109 * 1.5, -0.375, 0.125,
                    0.125, 0.125},
         8, 1e-6, "cross_entropy_dx, nb 2 of 4");
  snc_exec_free(ex);
  snc_graph_free(g);
}

static void register_tests(void) {
  SNC_SUITE("loss, softmax, norm and shape kernels", {"softmax and log_softmax", test_softmax}, {"bce", test_bce},
            {"bce_logits", test_bce_logits}, {"cross_entropy", test_cross_entropy}, {"batchnorm", test_batchnorm},
            {"one_hot", test_one_hot}, {"concat, slice, slice_dx, reshape", test_concat_slice},
            {"losses average over nb rows", test_losses_use_nb_rows});
}
SNC_TEST_MAIN(register_tests)
