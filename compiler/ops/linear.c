/* linear(x[B,K], w[O,K], b[O]?) -> [B,O]: y = x w^T + b, PyTorch's Linear layout.
 * Backward (made by autodiff):
 *   linear_dx(dy[B,O], w[O,K]) -> [B,K]: dx = dy w;
 *   linear_dw(dy[B,O], x[B,K]) -> [O,K]: dw = dy^T x over the nb rows in use;
 *   the bias gradient is reduce's bias_grad(dy). */
#include "autodiff/ad.h"
#include "ops/op.h"

static int infer_linear(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *x = snc_node_in(g, n, 0), *w = snc_node_in(g, n, 1);
  char sx[64], sw[64];
  if (snc_require_f32(g, n, 0, err)) return -1;
  if (x->shape.rank != 2 || !(x->flags & SNC_NF_BATCHED))
    return snc_node_errorf(g, n, err, "input '%s' has shape %s; linear needs [B,features] (add a flatten layer)",
                           x->name, SNC_SHAPE_STR(g, x->id, sx));
  SNC_ASSERT(w->shape.rank == 2);
  if (w->shape.dim[1] != x->shape.dim[1])
    return snc_node_errorf(g, n, err, "weight '%s' %s expects %lld features but input '%s' %s has %lld", w->name,
                           SNC_SHAPE_STR(g, w->id, sw), (long long)w->shape.dim[1], x->name,
                           SNC_SHAPE_STR(g, x->id, sx), (long long)x->shape.dim[1]);
  n->shape = (snc_shape){2, {x->shape.dim[0], w->shape.dim[0]}};
  n->dtype = SNC_F32;
  n->flags |= SNC_NF_BATCHED;
  return 0;
}

/* Backward rows are made only by autodiff from a valid linear: their rules assert invariants. */
static int infer_linear_dx(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *dy = snc_node_in(g, n, 0), *w = snc_node_in(g, n, 1);
  (void)err;
  SNC_ASSERT(dy->dtype == SNC_F32 && w->dtype == SNC_F32);
  SNC_ASSERT(dy->shape.rank == 2 && (dy->flags & SNC_NF_BATCHED) && w->shape.rank == 2);
  SNC_ASSERT(dy->shape.dim[1] == w->shape.dim[0]);
  n->shape = (snc_shape){2, {dy->shape.dim[0], w->shape.dim[1]}};
  n->dtype = SNC_F32;
  n->flags |= SNC_NF_BATCHED;
  return 0;
}

static int infer_linear_dw(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *dy = snc_node_in(g, n, 0), *x = snc_node_in(g, n, 1);
  (void)err;
  SNC_ASSERT(dy->dtype == SNC_F32 && x->dtype == SNC_F32);
  SNC_ASSERT(dy->shape.rank == 2 && (dy->flags & SNC_NF_BATCHED));
  SNC_ASSERT(x->shape.rank == 2 && (x->flags & SNC_NF_BATCHED) && x->shape.dim[0] == dy->shape.dim[0]);
  n->shape = (snc_shape){2, {dy->shape.dim[1], x->shape.dim[1]}};
  n->dtype = SNC_F32;
  n->flags &= ~SNC_NF_BATCHED;
  return 0;
}

static int64_t flops_linear(const snc_graph *g, const snc_node *n) {
  const snc_node *w = snc_node_in(g, n, 1);
  return snc_shape_numel(&n->shape) * (2 * w->shape.dim[1] + (n->ninputs == 3));
}

/* Both backward ops are one B x O x K product: one multiply-add per (row, output, feature). */
static int64_t flops_linear_bwd(const snc_graph *g, const snc_node *n) {
  const snc_node *dy = snc_node_in(g, n, 0);
  return 2 * snc_shape_numel(&dy->shape) * n->shape.dim[1];
}

/* --- reference kernels --- */
static void ref_linear(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  const float *x = in[0], *w = in[1], *b = n->ninputs == 3 ? in[2] : NULL;
  float *y = out;
  const int64_t K = snc_node_in(g, n, 0)->shape.dim[1], O = n->shape.dim[1];
  for (int64_t r = 0; r < ctx->nb; r++)
    for (int64_t o = 0; o < O; o++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++) s += (double)x[r * K + k] * w[o * K + k];
      if (b) s += b[o];
      y[r * O + o] = (float)s;
    }
}

static void ref_linear_dx(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  const float *dy = in[0], *w = in[1];
  float *dx = out;
  const int64_t O = snc_node_in(g, n, 0)->shape.dim[1], K = n->shape.dim[1];
  for (int64_t r = 0; r < ctx->nb; r++)
    for (int64_t k = 0; k < K; k++) {
      double s = 0;
      for (int64_t o = 0; o < O; o++) s += (double)dy[r * O + o] * w[o * K + k];
      dx[r * K + k] = (float)s;
    }
}

static void ref_linear_dw(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  (void)g;
  const float *dy = in[0], *x = in[1];
  float *dw = out;
  const int64_t O = n->shape.dim[0], K = n->shape.dim[1];
  for (int64_t o = 0; o < O; o++)
    for (int64_t k = 0; k < K; k++) {
      double s = 0;
      for (int64_t r = 0; r < ctx->nb; r++) s += (double)dy[r * O + o] * x[r * K + k];
      dw[o * K + k] = (float)s;
    }
}

/* --- gradient rule --- */
static int grad_linear(snc_ad *ad, const snc_node *n, int gout) {
  if (snc_ad_needs(ad, n->inputs[0]))
    snc_ad_accum(ad, n->inputs[0], snc_ad_node(ad, SNC_OP_LINEAR_DX, n, "x", (int[]){gout, n->inputs[1]}, 2, NULL));
  if (snc_ad_needs(ad, n->inputs[1]))
    snc_ad_accum(ad, n->inputs[1], snc_ad_node(ad, SNC_OP_LINEAR_DW, n, "w", (int[]){gout, n->inputs[0]}, 2, NULL));
  if (n->ninputs == 3 && snc_ad_needs(ad, n->inputs[2]))
    snc_ad_accum(ad, n->inputs[2], snc_ad_node(ad, SNC_OP_BIAS_GRAD, n, "b", &gout, 1, NULL));
  return 0;
}

static int ex_linear(snc_graph *g) {
  int x = snc_example_input(g, 1, (int64_t[]){6}, SNC_F32);
  int w = snc_example_param(g, 2, (int64_t[]){4, 6});
  int b = snc_example_param(g, 1, (int64_t[]){4});
  return snc_example_op(g, SNC_OP_LINEAR, (int[]){x, w, b}, 3, (snc_attrs){0});
}

const snc_op_info snc_op_linear = {.name = "linear", .min_inputs = 2, .max_inputs = 3, .infer = infer_linear,
                                   .flops = flops_linear, .ref = ref_linear, .grad = grad_linear,
                                   .example = ex_linear, .emit = snc_cg_emit_conv};
const snc_op_info snc_op_linear_dx = {.name = "linear_dx", .min_inputs = 2, .max_inputs = 2,
                                      .infer = infer_linear_dx, .flops = flops_linear_bwd, .ref = ref_linear_dx, .emit = snc_cg_emit_conv};
const snc_op_info snc_op_linear_dw = {.name = "linear_dw", .min_inputs = 2, .max_inputs = 2,
                                      .infer = infer_linear_dw, .flops = flops_linear_bwd, .ref = ref_linear_dw, .emit = snc_cg_emit_conv};
