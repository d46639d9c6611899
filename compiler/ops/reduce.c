/* Reductions.
 *   sum(x) -> [] : the sum of every element in use (all nb rows when batched);
 *   sum_dx(dy[]) -> attr.to : dy broadcast to the input's shape;
 *   bias_grad(dy[B,C,...]) -> [C] : the sum over every dimension but 1 (bias gradients);
 *   reduce_sum(x[B,...]) : the sum over the feature axes [attr.axis, attr.axis + attr.len), which
 *     disappear from the shape; the batch stays (every feature axis: [B,...] -> [B]);
 *   reduce_sum_dx(dy) -> attr.to : dy repeated along the reduced axes;
 *   batch_sum(x[B,...]) -> [...] : the sum over the nb rows in use (the gradient of an operand without
 *     a batch that was broadcast over it, e.g. a parameter in mul). */
#include <string.h>

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

/* x's per-sample shape around the reduced axes: [outer][red][inner] */
static void reduce_split(const snc_shape *x, int axis, int len, int64_t *outer, int64_t *red, int64_t *inner) {
  *outer = *red = *inner = 1;
  for (int i = 1; i < x->rank; i++) {
    if (i < axis) *outer *= x->dim[i];
    else if (i < axis + len) *red *= x->dim[i];
    else *inner *= x->dim[i];
  }
}

static int infer_reduce_sum(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *x = snc_node_in(g, n, 0);
  char sx[64];
  if (snc_require_f32(g, n, 0, err)) return -1;
  if (!(x->flags & SNC_NF_BATCHED))
    return snc_node_errorf(g, n, err, "input '%s' %s has no batch; reduce_sum sums feature axes of a batched tensor",
                           x->name, SNC_SHAPE_STR(g, x->id, sx));
  int a = n->attr.axis, l = n->attr.len;
  if (a < 1 || l < 1 || a + l > x->shape.rank)
    return snc_node_errorf(g, n, err, "axes %d..%d are not feature axes of input '%s' %s", a, a + l - 1, x->name,
                           SNC_SHAPE_STR(g, x->id, sx));
  snc_shape s = {0, {0}};
  for (int i = 0; i < x->shape.rank; i++)
    if (i < a || i >= a + l) s.dim[s.rank++] = x->shape.dim[i];
  n->shape = s;
  n->dtype = SNC_F32;
  n->flags |= SNC_NF_BATCHED;
  return 0;
}

static int infer_reduce_sum_dx(snc_graph *g, snc_node *n, snc_error *err) {
  (void)err;
  const snc_node *dy = snc_node_in(g, n, 0);
  SNC_ASSERT((dy->flags & SNC_NF_BATCHED) && n->attr.to_batched && n->attr.axis >= 1);
  SNC_ASSERT(dy->shape.rank == n->attr.to.rank - n->attr.len);
  n->shape = n->attr.to;
  n->dtype = SNC_F32;
  n->flags |= SNC_NF_BATCHED;
  return 0;
}

static int infer_batch_sum(snc_graph *g, snc_node *n, snc_error *err) {
  (void)err;
  const snc_node *x = snc_node_in(g, n, 0);
  SNC_ASSERT((x->flags & SNC_NF_BATCHED) && x->dtype == SNC_F32);
  n->shape.rank = x->shape.rank - 1;
  for (int i = 1; i < x->shape.rank; i++) n->shape.dim[i - 1] = x->shape.dim[i];
  n->dtype = SNC_F32;
  n->flags &= ~SNC_NF_BATCHED;
  return 0;
}

/* reduce_sum: out[r][o][i] = sum_k x[r][o][k][i], k in order, in float */
static void ref_reduce_sum(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  const float *x = in[0];
  float *y = out;
  int64_t O, R, I;
  reduce_split(&snc_node_in(g, n, 0)->shape, n->attr.axis, n->attr.len, &O, &R, &I);
  for (int64_t r = 0; r < ctx->nb; r++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t i = 0; i < I; i++) {
        float s = 0;
        for (int64_t k = 0; k < R; k++) s += x[((r * O + o) * R + k) * I + i];
        y[(r * O + o) * I + i] = s;
      }
}

static void ref_reduce_sum_dx(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  (void)g;
  const float *dy = in[0];
  float *dx = out;
  int64_t O, R, I;
  reduce_split(&n->shape, n->attr.axis, n->attr.len, &O, &R, &I);
  for (int64_t r = 0; r < ctx->nb; r++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t k = 0; k < R; k++)
        for (int64_t i = 0; i < I; i++) dx[((r * O + o) * R + k) * I + i] = dy[(r * O + o) * I + i];
}

static void ref_batch_sum(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  (void)g;
  const float *x = in[0];
  float *y = out;
  int64_t F = snc_shape_numel(&n->shape);
  for (int64_t f = 0; f < F; f++) {
    double s = 0;
    for (int64_t r = 0; r < ctx->nb; r++) s += x[r * F + f];
    y[f] = (float)s;
  }
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

static int grad_reduce_sum(snc_ad *ad, const snc_node *n, int gout) {
  if (!snc_ad_needs(ad, n->inputs[0])) return 0;
  snc_attrs a = snc_ad_shape_of(ad, n->inputs[0]);
  a.axis = n->attr.axis;
  a.len = n->attr.len;
  snc_ad_accum(ad, n->inputs[0], snc_ad_node(ad, SNC_OP_REDUCE_SUM_DX, n, "x", &gout, 1, &a));
  return 0;
}

/* a middle axis of [B,3,2,4] -> [B,3,4] (outer, reduced and inner parts all longer than 1) */
static int ex_reduce_sum(snc_graph *g) {
  int x = snc_example_input(g, 3, (int64_t[]){3, 2, 4}, SNC_F32);
  return snc_example_op(g, SNC_OP_REDUCE_SUM, &x, 1, (snc_attrs){.axis = 2, .len = 1});
}

static int ex_sum(snc_graph *g) {
  int x = snc_example_input(g, 2, (int64_t[]){3, 4}, SNC_F32);
  return snc_example_op(g, SNC_OP_SUM, &x, 1, (snc_attrs){0});
}

static int64_t flops_in0(const snc_graph *g, const snc_node *n) { return snc_shape_numel(&snc_node_in(g, n, 0)->shape); }

const snc_op_info snc_op_sum = {"sum", 1, 1, infer_sum, flops_in0, ref_sum, grad_sum, ex_sum, .emit = snc_cg_emit_reduce};
const snc_op_info snc_op_sum_dx = {"sum_dx", 1, 1, infer_sum_dx, snc_flops_zero, ref_sum_dx, NULL, NULL, .emit = snc_cg_emit_reduce};
const snc_op_info snc_op_bias_grad = {"bias_grad", 1, 1, infer_bias_grad, flops_in0, ref_bias_grad, NULL, NULL, .emit = snc_cg_emit_reduce};
const snc_op_info snc_op_reduce_sum = {"reduce_sum", 1, 1, infer_reduce_sum, flops_in0, ref_reduce_sum, grad_reduce_sum, ex_reduce_sum, .emit = snc_cg_emit_reduce};
const snc_op_info snc_op_reduce_sum_dx = {"reduce_sum_dx", 1, 1, infer_reduce_sum_dx, snc_flops_zero, ref_reduce_sum_dx, NULL, NULL, .emit = snc_cg_emit_reduce};
const snc_op_info snc_op_batch_sum = {"batch_sum", 1, 1, infer_batch_sum, flops_in0, ref_batch_sum, NULL, NULL, .emit = snc_cg_emit_reduce};
