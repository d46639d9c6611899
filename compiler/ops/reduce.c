/* Reductions.
 *   sum(x) -> [] : the sum of every element in use (all nb rows when batched);
 *   sum_dx(dy[]) -> attr.to : dy broadcast to the input's shape;
 *   bias_grad(dy[B,C,...]) -> [C] : the sum over every dimension but 1 (bias gradients). */
#include "autodiff/ad.h"
#include "ops/op.h"

static int infer_sum(snc_graph *g, snc_node *n, snc_error *err) {
  if (snc_require_f32(g, n, 0, err)) return -1;
  n->shape = (snc_shape){0, {0}};
  n->dtype = SNC_F32;
  n->flags &= ~SNC_NF_BATCHED;
  return 0;
}

static int infer_sum_dx(snc_graph *g, snc_node *n, snc_error *err) {
  (void)g;
  (void)err;
  SNC_ASSERT(snc_node_in(g, n, 0)->shape.rank == 0);
  n->shape = n->attr.to;
  n->dtype = SNC_F32;
  if (n->attr.to_batched) n->flags |= SNC_NF_BATCHED;
  else n->flags &= ~SNC_NF_BATCHED;
  return 0;
}

static int infer_bias_grad(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *dy = snc_node_in(g, n, 0);
  if (snc_require_f32(g, n, 0, err)) return -1;
  SNC_ASSERT(dy->shape.rank >= 2 && (dy->flags & SNC_NF_BATCHED));
  n->shape = (snc_shape){1, {dy->shape.dim[1]}};
  n->dtype = SNC_F32;
  n->flags &= ~SNC_NF_BATCHED;
  return 0;
}

static void ref_sum(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  const float *x = in[0];
  double s = 0;
  for (int64_t i = 0, e = snc_kernel_numel(snc_node_in(g, n, 0), ctx); i < e; i++) s += x[i];
  *(float *)out = (float)s;
}

static void ref_sum_dx(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  (void)g;
  float d = *(const float *)in[0], *y = out;
  for (int64_t i = 0, e = snc_kernel_numel(n, ctx); i < e; i++) y[i] = d;
}

static void ref_bias_grad(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  const snc_node *dy = snc_node_in(g, n, 0);
  const float *d = in[0];
  float *b = out;
  int64_t c = dy->shape.dim[1], inner = snc_shape_numel(&dy->shape) / (dy->shape.dim[0] * c);
  for (int64_t j = 0; j < c; j++) {
    double s = 0;
    for (int64_t r = 0; r < ctx->nb; r++)
      for (int64_t i = 0; i < inner; i++) s += d[(r * c + j) * inner + i];
    b[j] = (float)s;
  }
}

static int grad_sum(snc_ad *ad, const snc_node *n, int gout) {
  if (!snc_ad_needs(ad, n->inputs[0])) return 0;
  snc_attrs a = snc_ad_shape_of(ad, n->inputs[0]);
  snc_ad_accum(ad, n->inputs[0], snc_ad_node(ad, SNC_OP_SUM_DX, n, "x", &gout, 1, &a));
  return 0;
}

static int ex_sum(snc_graph *g) {
  int x = snc_example_input(g, 2, (int64_t[]){3, 4}, SNC_F32);
  return snc_example_op(g, SNC_OP_SUM, &x, 1, (snc_attrs){0});
}

static int64_t flops_in0(const snc_graph *g, const snc_node *n) { return snc_shape_numel(&snc_node_in(g, n, 0)->shape); }

const snc_op_info snc_op_sum = {"sum", 1, 1, infer_sum, flops_in0, ref_sum, grad_sum, ex_sum};
const snc_op_info snc_op_sum_dx = {"sum_dx", 1, 1, infer_sum_dx, snc_flops_zero, ref_sum_dx, NULL, NULL};
const snc_op_info snc_op_bias_grad = {"bias_grad", 1, 1, infer_bias_grad, flops_in0, ref_bias_grad, NULL, NULL};
