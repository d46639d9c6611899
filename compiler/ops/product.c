/* Products of batched tensors.
 *   outer(a[B,...A], b[B,...C]) -> [B,...A,...C] : y[r][i][j] = a[r][i] b[r][j] per sample r, with i
 *     running over a's n = numel(A) and j over b's m = numel(C) features (the joint distribution of
 *     two independent categorical outputs, for example);
 * Backward, dy the gradient of the outer product, made by autodiff:
 *   outer_dx(dy, b), attr.axis 0 -> a's shape : da[r][i] = sum_j dy[r][i][j] b[r][j];
 *   outer_dx(dy, a), attr.axis 1 -> b's shape : db[r][j] = sum_i dy[r][i][j] a[r][i].
 * Sums run in index order, in float. */
#include "autodiff/ad.h"
#include "ops/op.h"

static int64_t per_sample(const snc_node *x) { return snc_shape_numel(&x->shape) / x->shape.dim[0]; }

static int infer_outer(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *a = snc_node_in(g, n, 0), *b = snc_node_in(g, n, 1);
  char sa[64], sb[64];
  if (snc_require_f32(g, n, 0, err) || snc_require_f32(g, n, 1, err)) return -1;
  for (int k = 0; k < 2; k++) {
    const snc_node *x = k ? b : a;
    if (!(x->flags & SNC_NF_BATCHED) || x->shape.rank < 2)
      return snc_node_errorf(g, n, err, "input '%s' %s must be batched with at least one feature axis, like [B,n]",
                             x->name, SNC_SHAPE_STR(g, x->id, sa));
  }
  if (a->shape.rank + b->shape.rank - 1 > SNC_MAX_DIMS)
    return snc_node_errorf(g, n, err, "inputs '%s' %s and '%s' %s give more than %d dimensions", a->name,
                           SNC_SHAPE_STR(g, a->id, sa), b->name, SNC_SHAPE_STR(g, b->id, sb), SNC_MAX_DIMS);
  snc_shape s = a->shape;
  for (int i = 1; i < b->shape.rank; i++) s.dim[s.rank++] = b->shape.dim[i];
  n->shape = s;
  n->dtype = SNC_F32;
  n->flags |= SNC_NF_BATCHED;
  return 0;
}

static int infer_outer_dx(snc_graph *g, snc_node *n, snc_error *err) {
  (void)err;
  const snc_node *dy = snc_node_in(g, n, 0), *o = snc_node_in(g, n, 1);
  SNC_ASSERT((dy->flags & SNC_NF_BATCHED) && (o->flags & SNC_NF_BATCHED) && n->attr.to_batched);
  SNC_ASSERT(per_sample(dy) == per_sample(o) * (snc_shape_numel(&n->attr.to) / n->attr.to.dim[0]));
  n->shape = n->attr.to;
  n->dtype = SNC_F32;
  n->flags |= SNC_NF_BATCHED;
  return 0;
}

static int64_t flops_outer(const snc_graph *g, const snc_node *n) {
  (void)g;
  return snc_shape_numel(&n->shape);
}

static int64_t flops_outer_dx(const snc_graph *g, const snc_node *n) {
  return 2 * snc_shape_numel(&snc_node_in(g, n, 0)->shape);
}

static void ref_outer(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  const float *a = in[0], *b = in[1];
  float *y = out;
  int64_t na = per_sample(snc_node_in(g, n, 0)), mb = per_sample(snc_node_in(g, n, 1));
  for (int64_t r = 0; r < ctx->nb; r++)
    for (int64_t i = 0; i < na; i++)
      for (int64_t j = 0; j < mb; j++) y[(r * na + i) * mb + j] = a[r * na + i] * b[r * mb + j];
}

static void ref_outer_dx(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  const float *dy = in[0], *o = in[1];
  float *dx = out;
  int64_t no = per_sample(snc_node_in(g, n, 1)), nx = per_sample(n);
  int first = n->attr.axis == 0; /* dx is the first factor: dy is [nx][no], else [no][nx] */
  for (int64_t r = 0; r < ctx->nb; r++)
    for (int64_t i = 0; i < nx; i++) {
      float s = 0;
      for (int64_t j = 0; j < no; j++)
        s += dy[r * nx * no + (first ? i * no + j : j * nx + i)] * o[r * no + j];
      dx[r * nx + i] = s;
    }
}

static int grad_outer(snc_ad *ad, const snc_node *n, int gout) {
  for (int k = 0; k < 2; k++)
    if (snc_ad_needs(ad, n->inputs[k])) {
      snc_attrs a = snc_ad_shape_of(ad, n->inputs[k]);
      a.axis = k;
      int ins[2] = {gout, n->inputs[1 - k]};
      snc_ad_accum(ad, n->inputs[k], snc_ad_node(ad, SNC_OP_OUTER_DX, n, k ? "b" : "a", ins, 2, &a));
    }
  return 0;
}

static int ex_outer(snc_graph *g) {
  int a = snc_example_input(g, 1, (int64_t[]){3}, SNC_F32);
  int b = snc_example_input(g, 2, (int64_t[]){2, 2}, SNC_F32);
  return snc_example_op(g, SNC_OP_OUTER, (int[]){a, b}, 2, (snc_attrs){0});
}

const snc_op_info snc_op_outer = {"outer", 2, 2, infer_outer, flops_outer, ref_outer, grad_outer, ex_outer, .emit = snc_cg_emit_product};
const snc_op_info snc_op_outer_dx = {"outer_dx", 2, 2, infer_outer_dx, flops_outer_dx, ref_outer_dx, NULL, NULL, .emit = snc_cg_emit_product};
