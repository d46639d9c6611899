/* Reference kernels of the conv, pool and linear families on hand-computed values (each also checked
 * against PyTorch 1.13), and the batch contract: with nb < batch, rows beyond nb are left untouched
 * and weight gradients sum over the first nb rows only. Gradients in general are checked by
 * test_grad against finite differences. */
#include <math.h>
#include <string.h>

#include "ops/op.h"
#include "snc/backend.h"
#include "testutil.h"

static const snc_loc L = {"t.yaml", 1, 1};

static snc_graph *G(int batch) {
  snc_graph *g = snc_graph_new("t", "t.yaml");
  g->batch = batch;
  return g;
}

/* A batched input of per-sample shape (rank dims). */
static int in(snc_graph *g, int rank, int64_t a, int64_t b, int64_t c) {
  snc_shape s = {rank, {a, b, c}};
  snc_error err = {0};
  char name[16];
  snprintf(name, sizeof name, "in%d", g->nnodes);
  int id = snc_graph_input(g, name, SNC_F32, &s, L, &err);
  CU_ASSERT_FATAL(id >= 0);
  return id;
}

static int par(snc_graph *g, int rank, int64_t a, int64_t b, int64_t c, int64_t d) {
  snc_shape s = {rank, {a, b, c, d}};
  snc_error err = {0};
  char name[16];
  snprintf(name, sizeof name, "p%d", g->nnodes);
  int id = snc_graph_param(g, name, &s, (snc_init){SNC_INIT_ZEROS, 0, 0}, SNC_NF_TRAINABLE, L, &err);
  CU_ASSERT_FATAL(id >= 0);
  return id;
}

static int op(snc_graph *g, snc_opcode o, const int *ins, int n, snc_attrs a) {
  snc_error err = {0};
  char name[32];
  snprintf(name, sizeof name, "%s%d", snc_op_name(o), g->nnodes);
  int id = snc_graph_add(g, o, name, ins, n, &a, L, &err);
  if (id < 0) fprintf(stderr, "\n%s\n", err.msg);
  CU_ASSERT_FATAL(id >= 0);
  return id;
}

/* attrs of a backward op producing node id's shape, with the forward op's window attrs. */
static snc_attrs to_of(const snc_graph *g, int id, snc_attrs a) {
  a.to = g->nodes[id]->shape;
  a.to_batched = (g->nodes[id]->flags & SNC_NF_BATCHED) != 0;
  return a;
}

static void set(snc_exec *ex, int id, const float *v, size_t n) { memcpy(snc_exec_buf(ex, id), v, n * sizeof *v); }

static void expect(snc_exec *ex, const snc_graph *g, int id, const float *want, int64_t n) {
  const float *got = snc_exec_buf(ex, id);
  for (int64_t i = 0; i < n; i++) {
    if (fabsf(got[i] - want[i]) > 1e-5f * (1 + fabsf(want[i])))
      fprintf(stderr, "\n  %s[%lld]: got %g want %g\n", g->nodes[id]->name, (long long)i, got[i], want[i]);
    CU_ASSERT_DOUBLE_EQUAL(got[i], want[i], 1e-5 * (1 + fabs(want[i])));
  }
}

#define N(a) (sizeof(a) / sizeof *(a))
static const snc_kctx ONE = {.nb = 1, .seed = 1, .step = 1, .training = 1, .lr_scale = 1};

/* x = 1..16 as a 4x4 plane; kernel 3x3, padding 1, stride 2 -> 2x2. Output (i,j) reads rows
 * 2i-1..2i+1 and columns 2j-1..2j+1; e.g. (0,0) = w[1][1]*1 + w[1][2]*2 + w[2][1]*5 + w[2][2]*6
 * = 1 + 0 + 5 + 6 = 12, plus the bias 0.5. */
static const float conv_x[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const float conv_w[9] = {1, 0, -1, 2, 1, 0, 0, 1, 1};

static void test_conv2d(void) {
  snc_graph *g = G(1);
  int x = in(g, 3, 1, 4, 4), w = par(g, 4, 1, 1, 3, 3), b = par(g, 1, 1, 0, 0, 0);
  snc_attrs a = {.stride = {2, 2}, .pad = {1, 1}};
  int y = op(g, SNC_OP_CONV2D, (int[]){x, w, b}, 3, a);
  int dy = in(g, 3, 1, 2, 2);
  int dx = op(g, SNC_OP_CONV2D_DX, (int[]){dy, w}, 2, to_of(g, x, a));
  int dw = op(g, SNC_OP_CONV2D_DW, (int[]){x, dy}, 2, (snc_attrs){.kernel = {3, 3}, .stride = {2, 2}, .pad = {1, 1}});
  snc_error err = {0};
  snc_exec *ex = snc_exec_new(g, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
  set(ex, x, conv_x, 16);
  set(ex, w, conv_w, 9);
  set(ex, b, (float[]){0.5f}, 1);
  set(ex, dy, (float[]){1, 2, 3, 4}, 4);
  snc_exec_node(ex, y, &ONE);
  expect(ex, g, y, (float[]){12.5f, 22.5f, 30.5f, 60.5f}, 4);
  /* dx[h][v] = sum of dy(i,j) w[h-2i+1][v-2j+1]; dw[p][q] = sum of dy(i,j) x[2i-1+p][2j-1+q] */
  snc_exec_node(ex, dx, &ONE);
  expect(ex, g, dx, (float[]){1, 4, 2, 0, 1, 2, 2, -2, 3, 8, 4, 0, 3, 3, 4, 4}, 16);
  snc_exec_node(ex, dw, &ONE);
  expect(ex, g, dw, (float[]){24, 43, 50, 44, 78, 88, 68, 118, 128}, 9);
  snc_exec_free(ex);
  snc_graph_free(g);
}

/* Kernel 3, stride 2, padding 1 on a 4x4 plane -> 2x2. Every window has a tie for its maximum:
 * (0,0) sees only real values -2 -1 / -3 -1 (padding is -inf, so the max is -1, not 0) and picks
 * x[0][1] over x[1][1]; (0,1) picks x[0][2] over x[0][3]; (1,0) and (1,1) both pick x[2][1]. */
static void test_maxpool2d(void) {
  snc_graph *g = G(1);
  snc_attrs a = {.kernel = {3, 3}, .stride = {2, 2}, .pad = {1, 1}};
  int x = in(g, 3, 1, 4, 4), y = op(g, SNC_OP_MAXPOOL2D, &x, 1, a), dy = in(g, 3, 1, 2, 2);
  int dx = op(g, SNC_OP_MAXPOOL2D_DX, (int[]){x, dy}, 2, a);
  snc_error err = {0};
  snc_exec *ex = snc_exec_new(g, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
  set(ex, x, (float[]){-2, -1, 5, 5, -3, -1, 0, 2, 1, 4, 3, 4, 0, 4, -7, 1}, 16);
  set(ex, dy, (float[]){1, 10, 100, 1000}, 4);
  snc_exec_node(ex, y, &ONE);
  expect(ex, g, y, (float[]){-1, 5, 4, 4}, 4);
  snc_exec_node(ex, dx, &ONE);
  expect(ex, g, dx, (float[]){0, 1, 10, 0, 0, 0, 0, 0, 0, 1100, 0, 0, 0, 0, 0, 0}, 16);
  snc_exec_free(ex);
  snc_graph_free(g);
}

/* Kernel 2, stride 2, padding 1 on x = 1..9 (3x3) -> 2x2; the divisor is always 4, padding included:
 * (0,0) = 1/4, (0,1) = (2+3)/4, (1,0) = (4+7)/4, (1,1) = (5+6+8+9)/4. */
static void test_avgpool2d(void) {
  snc_graph *g = G(1);
  snc_attrs a = {.kernel = {2, 2}, .stride = {2, 2}, .pad = {1, 1}};
  int x = in(g, 3, 1, 3, 3), y = op(g, SNC_OP_AVGPOOL2D, &x, 1, a), dy = in(g, 3, 1, 2, 2);
  int dx = op(g, SNC_OP_AVGPOOL2D_DX, &dy, 1, to_of(g, x, a));
  snc_error err = {0};
  snc_exec *ex = snc_exec_new(g, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
  set(ex, x, (float[]){1, 2, 3, 4, 5, 6, 7, 8, 9}, 9);
  set(ex, dy, (float[]){4, 8, 12, 16}, 4);
  snc_exec_node(ex, y, &ONE);
  expect(ex, g, y, (float[]){0.25f, 1.25f, 2.75f, 7}, 4);
  snc_exec_node(ex, dx, &ONE); /* dy / 4 to each real element of the window */
  expect(ex, g, dx, (float[]){1, 2, 2, 3, 4, 4, 3, 4, 4}, 9);
  snc_exec_free(ex);
  snc_graph_free(g);
}

/* y = x w^T + b: row 0 (1,2,3) gives 1-3+0.25 and 0.5+4+3-1; row 1 (-1,0,2) gives -1-2+0.25 and
 * -0.5+2-1. */
static void test_linear(void) {
  snc_graph *g = G(2);
  int x = in(g, 1, 3, 0, 0), w = par(g, 2, 2, 3, 0, 0), b = par(g, 1, 2, 0, 0, 0);
  int y = op(g, SNC_OP_LINEAR, (int[]){x, w, b}, 3, (snc_attrs){0});
  int dy = in(g, 1, 2, 0, 0);
  int dx = op(g, SNC_OP_LINEAR_DX, (int[]){dy, w}, 2, (snc_attrs){0});
  int dw = op(g, SNC_OP_LINEAR_DW, (int[]){dy, x}, 2, (snc_attrs){0});
  snc_error err = {0};
  snc_exec *ex = snc_exec_new(g, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
  set(ex, x, (float[]){1, 2, 3, -1, 0, 2}, 6);
  set(ex, w, (float[]){1, 0, -1, 0.5f, 2, 1}, 6);
  set(ex, b, (float[]){0.25f, -1}, 2);
  set(ex, dy, (float[]){1, -1, 2, 0.5f}, 4);
  snc_kctx ctx = ONE;
  ctx.nb = 2;
  snc_exec_node(ex, y, &ctx);
  expect(ex, g, y, (float[]){-1.75f, 6.5f, -2.75f, 0.5f}, 4);
  snc_exec_node(ex, dx, &ctx); /* dy w */
  expect(ex, g, dx, (float[]){0.5f, -2, -2, 2.25f, 1, -1.5f}, 6);
  snc_exec_node(ex, dw, &ctx); /* dy^T x */
  expect(ex, g, dw, (float[]){-1, 2, 7, -1.5f, -2, -2}, 6);
  snc_exec_free(ex);
  snc_graph_free(g);
}

/* --- the batch contract --- */
#define SENTINEL 12345.0f

static void fill(snc_exec *ex, const snc_graph *g, int id, float base) {
  float *p = snc_exec_buf(ex, id);
  for (int64_t i = 0, e = snc_shape_numel(&g->nodes[id]->shape); i < e; i++) p[i] = base + (float)((i * 7) % 11) / 8;
}

/* Every batched node after the leaves: rows from nb on must still hold the sentinel. */
static void expect_rows_untouched(snc_exec *ex, const snc_graph *g, int first, int64_t nb) {
  for (int id = first; id < g->nnodes; id++) {
    const snc_node *n = g->nodes[id];
    if (!(n->flags & SNC_NF_BATCHED) || n->op == SNC_OP_INPUT) continue;
    const float *p = snc_exec_buf(ex, id);
    int64_t row = snc_shape_numel(&n->shape) / n->shape.dim[0], bad = 0;
    for (int64_t i = nb * row; i < n->shape.dim[0] * row; i++) bad += p[i] != SENTINEL;
    for (int64_t i = 0; i < nb * row; i++) bad += p[i] == SENTINEL; /* and rows in use were written */
    if (bad) fprintf(stderr, "\n  %s: %lld entries wrong for nb %lld\n", n->name, (long long)bad, (long long)nb);
    CU_ASSERT_EQUAL(bad, 0);
  }
}

/* Weight gradients with nb = 2 of batch 3 must equal those of nb = 3 with row 2 of dy zeroed (row 2
 * of x holds large values, so reading it would show). */
static void test_partial_batch(void) {
  snc_graph *g = G(3);
  snc_attrs ca = {.stride = {2, 1}, .pad = {1, 0}}, pa = {.kernel = {3, 3}, .stride = {2, 2}, .pad = {1, 1}};
  int x = in(g, 3, 2, 7, 6), w = par(g, 4, 3, 2, 3, 2), b = par(g, 1, 3, 0, 0, 0);
  int f = in(g, 1, 5, 0, 0), lw = par(g, 2, 4, 5, 0, 0), lb = par(g, 1, 4, 0, 0, 0);
  int first = g->nnodes;
  int y = op(g, SNC_OP_CONV2D, (int[]){x, w, b}, 3, ca);
  int cdy = in(g, 3, 3, 4, 5);
  int cdx = op(g, SNC_OP_CONV2D_DX, (int[]){cdy, w}, 2, to_of(g, x, ca));
  int cdw = op(g, SNC_OP_CONV2D_DW, (int[]){x, cdy}, 2, (snc_attrs){.kernel = {3, 2}, .stride = {2, 1}, .pad = {1, 0}});
  int mp = op(g, SNC_OP_MAXPOOL2D, &x, 1, pa), ap = op(g, SNC_OP_AVGPOOL2D, &x, 1, pa);
  int pdy = in(g, 3, 2, 4, 3);
  int mdx = op(g, SNC_OP_MAXPOOL2D_DX, (int[]){x, pdy}, 2, pa);
  int adx = op(g, SNC_OP_AVGPOOL2D_DX, &pdy, 1, to_of(g, x, pa));
  int ly = op(g, SNC_OP_LINEAR, (int[]){f, lw, lb}, 3, (snc_attrs){0});
  int ldy = in(g, 1, 4, 0, 0);
  int ldx = op(g, SNC_OP_LINEAR_DX, (int[]){ldy, lw}, 2, (snc_attrs){0});
  int ldw = op(g, SNC_OP_LINEAR_DW, (int[]){ldy, f}, 2, (snc_attrs){0});
  (void)y, (void)cdx, (void)mp, (void)ap, (void)mdx, (void)adx, (void)ly, (void)ldx;
  snc_error err = {0};
  snc_exec *ex = snc_exec_new(g, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
  for (int id = 0; id < first; id++) fill(ex, g, id, -0.5f);
  fill(ex, g, cdy, -0.25f);
  fill(ex, g, pdy, -0.75f);
  fill(ex, g, ldy, 0.1f);
  for (int id = first; id < g->nnodes; id++) /* outputs and row 2 of every batched input */
    if (g->nodes[id]->op != SNC_OP_INPUT) {
      float *p = snc_exec_buf(ex, id);
      for (int64_t i = 0, e = snc_shape_numel(&g->nodes[id]->shape); i < e; i++) p[i] = SENTINEL;
    }
  int inputs[] = {x, f, cdy, pdy, ldy};
  for (size_t k = 0; k < N(inputs); k++) {
    const snc_node *n = g->nodes[inputs[k]];
    int64_t row = snc_shape_numel(&n->shape) / 3;
    float *p = snc_exec_buf(ex, inputs[k]);
    for (int64_t i = 2 * row; i < 3 * row; i++) p[i] = 1000.0f;
  }
  snc_kctx two = ONE;
  two.nb = 2;
  for (int id = first; id < g->nnodes; id++) snc_exec_node(ex, id, &two);
  expect_rows_untouched(ex, g, first, 2);

  float want_c[36], want_l[20];
  memcpy(want_c, snc_exec_buf(ex, cdw), sizeof want_c);
  memcpy(want_l, snc_exec_buf(ex, ldw), sizeof want_l);
  CU_ASSERT_EQUAL(snc_shape_numel(&g->nodes[cdw]->shape), 36);
  CU_ASSERT_EQUAL(snc_shape_numel(&g->nodes[ldw]->shape), 20);
  int dys[] = {cdy, ldy};
  for (size_t k = 0; k < N(dys); k++) {
    int64_t row = snc_shape_numel(&g->nodes[dys[k]]->shape) / 3;
    float *p = snc_exec_buf(ex, dys[k]);
    for (int64_t i = 2 * row; i < 3 * row; i++) p[i] = 0;
  }
  snc_kctx three = ONE;
  three.nb = 3;
  snc_exec_node(ex, cdw, &three);
  snc_exec_node(ex, ldw, &three);
  expect(ex, g, cdw, want_c, 36);
  expect(ex, g, ldw, want_l, 20);
  /* and the sums are not trivially zero */
  double s = 0;
  for (int i = 0; i < 36; i++) s += fabsf(want_c[i]);
  CU_ASSERT(s > 1);
  snc_exec_free(ex);
  snc_graph_free(g);
}

static void register_tests(void) {
  SNC_SUITE("conv, pool and linear kernels", {"conv2d stride 2 padding 1", test_conv2d},
            {"maxpool2d ties and padding", test_maxpool2d}, {"avgpool2d padding in the divisor", test_avgpool2d},
            {"linear", test_linear}, {"rows beyond nb", test_partial_batch});
}
SNC_TEST_MAIN(register_tests)
