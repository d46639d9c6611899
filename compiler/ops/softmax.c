/* softmax / log_softmax along attr.axis (resolved to a non-negative axis by the front end).
 *   softmax(x)_c = exp(x_c - max) / sum_k exp(x_k - max)          (max over the axis: stable)
 *   log_softmax(x)_c = x_c - max - log(sum_k exp(x_k - max))
 * Backward, both from the output y (shape of y, attr.axis copied):
 *   softmax_dx(y, dy)     = y * (dy - sum_axis(dy * y));
 *   log_softmax_dx(y, dy) = dy - exp(y) * sum_axis(dy). */
#include <math.h>

#include "autodiff/ad.h"
#include "ops/op.h"

static int infer_softmax(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *x = snc_node_in(g, n, 0);
  if (snc_infer_same_as_input(g, n, err)) return -1;
  int first = (x->flags & SNC_NF_BATCHED) ? 1 : 0;
  if (n->attr.axis < first || n->attr.axis >= x->shape.rank)
    return snc_node_errorf(g, n, err, "axis %d is not a feature axis of a rank-%d input", n->attr.axis,
                           x->shape.rank);
  return 0;
}

/* (y, dy): made by autodiff from a valid forward node, so a mismatch is a broken invariant. */
static int infer_softmax_dx(snc_graph *g, snc_node *n, snc_error *err) {
  SNC_ASSERT(snc_shape_eq(&snc_node_in(g, n, 0)->shape, &snc_node_in(g, n, 1)->shape));
  return infer_softmax(g, n, err);
}

static int64_t flops_softmax(const snc_graph *g, const snc_node *n) {
  (void)g;
  return 4 * snc_shape_numel(&n->shape);
}

/* The elements in use seen as [outer, c, inner] around attr.axis. */
static void axis_split(const snc_node *n, const snc_kctx *ctx, int64_t *outer, int64_t *c, int64_t *inner) {
  int ax = n->attr.axis;
  *c = n->shape.dim[ax];
  *inner = 1;
  for (int i = ax + 1; i < n->shape.rank; i++) *inner *= n->shape.dim[i];
  *outer = *c * *inner > 0 ? snc_kernel_numel(n, ctx) / (*c * *inner) : 0;
}

static void ref_softmax(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  (void)g;
  const float *x = in[0];
  float *y = out;
  int64_t outer, c, inner;
  axis_split(n, ctx, &outer, &c, &inner);
  int log_form = n->op == SNC_OP_LOG_SOFTMAX;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      const float *xr = x + o * c * inner + i;
      float *yr = y + o * c * inner + i;
      float mx = xr[0];
      for (int64_t k = 1; k < c; k++) mx = xr[k * inner] > mx ? xr[k * inner] : mx;
      double s = 0;
      for (int64_t k = 0; k < c; k++) s += exp((double)xr[k * inner] - mx);
      double ls = log(s);
      for (int64_t k = 0; k < c; k++) {
        double d = (double)xr[k * inner] - mx;
        yr[k * inner] = (float)(log_form ? d - ls : exp(d) / s);
      }
    }
}

static void ref_softmax_dx(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  (void)g;
  const float *y = in[0], *dy = in[1];
  float *dx = out;
  int64_t outer, c, inner;
  axis_split(n, ctx, &outer, &c, &inner);
  int log_form = n->op == SNC_OP_LOG_SOFTMAX_DX;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      int64_t base = o * c * inner + i;
      double s = 0; /* log form: sum dy; plain form: sum dy * y */
      for (int64_t k = 0; k < c; k++) {
        int64_t j = base + k * inner;
        s += log_form ? (double)dy[j] : (double)dy[j] * y[j];
      }
      for (int64_t k = 0; k < c; k++) {
        int64_t j = base + k * inner;
        dx[j] = (float)(log_form ? dy[j] - exp((double)y[j]) * s : y[j] * (dy[j] - s));
      }
    }
}

static int grad_softmax(snc_ad *ad, const snc_node *n, int gout) {
  snc_opcode op = n->op == SNC_OP_SOFTMAX ? SNC_OP_SOFTMAX_DX : SNC_OP_LOG_SOFTMAX_DX;
  int ins[2] = {n->id, gout};
  if (snc_ad_needs(ad, n->inputs[0])) snc_ad_accum(ad, n->inputs[0], snc_ad_node(ad, op, n, "x", ins, 2, &n->attr));
  return 0;
}

static int example_softmax(snc_graph *g, snc_opcode op, int axis) {
  int x = snc_example_input(g, 2, (int64_t[]){3, 4}, SNC_F32);
  return snc_example_op(g, op, &x, 1, (snc_attrs){.axis = axis});
}
static int ex_softmax(snc_graph *g) { return example_softmax(g, SNC_OP_SOFTMAX, 2); }
static int ex_log_softmax(snc_graph *g) { return example_softmax(g, SNC_OP_LOG_SOFTMAX, 1); }

const snc_op_info snc_op_softmax = {"softmax", 1, 1, infer_softmax, flops_softmax, ref_softmax, grad_softmax, ex_softmax, .emit = snc_cg_emit_softmax};
const snc_op_info snc_op_log_softmax = {"log_softmax", 1, 1, infer_softmax, flops_softmax, ref_softmax, grad_softmax,
                                        ex_log_softmax, .emit = snc_cg_emit_softmax};
const snc_op_info snc_op_softmax_dx = {"softmax_dx", 2, 2, infer_softmax_dx, flops_softmax, ref_softmax_dx, NULL, NULL, .emit = snc_cg_emit_softmax};
const snc_op_info snc_op_log_softmax_dx = {"log_softmax_dx", 2, 2, infer_softmax_dx, flops_softmax, ref_softmax_dx,
                                           NULL, NULL, .emit = snc_cg_emit_softmax};
