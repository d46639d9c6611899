/* maxpool2d / avgpool2d(x[B,C,H,W]) -> [B,C,H',W'], H' = floor((H + 2*pad - k) / stride) + 1.
 * Padding counts as -inf for max and as zero (included in the divisor) for average, as PyTorch's
 * defaults; pad may be at most half the kernel, as there, so every window holds a real element.
 * Max picks the first maximum of its window in row-major order (PyTorch's tie rule); a NaN in the
 * window wins (the last one, as PyTorch), so NaNs propagate.
 * Backward (made by autodiff; attr.kernel, stride, pad copied from the forward node):
 *   maxpool2d_dx(x, dy) -> x's shape: dy routed to each window's argmax, recomputed from x;
 *   avgpool2d_dx(dy) -> attr.to = x's shape: dy / (kh*kw) spread over each window's real elements. */
#include <math.h>

#include "autodiff/ad.h"
#include "ops/op.h"

static int infer_pool(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *x = snc_node_in(g, n, 0);
  char sx[64];
  if (snc_require_f32(g, n, 0, err)) return -1;
  if (x->shape.rank != 4 || !(x->flags & SNC_NF_BATCHED))
    return snc_node_errorf(g, n, err, "input '%s' has shape %s; %s needs [B,channels,height,width]", x->name,
                           SNC_SHAPE_STR(g, x->id, sx), snc_op_name(n->op));
  int64_t out[2];
  for (int d = 0; d < 2; d++) {
    const snc_attrs *a = &n->attr;
    if (a->kernel[d] < 1 || a->stride[d] < 1) return snc_node_errorf(g, n, err, "kernel and stride must be at least 1");
    if (a->pad[d] < 0 || 2 * a->pad[d] > a->kernel[d])
      return snc_node_errorf(g, n, err, "padding %d must be between 0 and half the kernel (%d)", a->pad[d],
                             a->kernel[d]);
    int64_t in = x->shape.dim[2 + d] + 2 * a->pad[d];
    if (a->kernel[d] > in)
      return snc_node_errorf(g, n, err, "kernel %dx%d larger than input %lldx%lld", a->kernel[0], a->kernel[1],
                             (long long)x->shape.dim[2], (long long)x->shape.dim[3]);
    out[d] = (in - a->kernel[d]) / a->stride[d] + 1;
  }
  n->shape = (snc_shape){4, {x->shape.dim[0], x->shape.dim[1], out[0], out[1]}};
  n->dtype = SNC_F32;
  n->flags |= SNC_NF_BATCHED;
  return 0;
}

/* Backward rows are made only by autodiff from a valid pool: dy must be the pooled shape of `to`. */
static void assert_pooled(const snc_attrs *a, const snc_shape *to, int to_batched, const snc_node *dy) {
  SNC_ASSERT(dy->dtype == SNC_F32 && dy->shape.rank == 4 && (dy->flags & SNC_NF_BATCHED));
  SNC_ASSERT(to->rank == 4 && to_batched && to->dim[0] == dy->shape.dim[0] && to->dim[1] == dy->shape.dim[1]);
  for (int d = 0; d < 2; d++) {
    SNC_ASSERT(a->kernel[d] >= 1 && a->stride[d] >= 1 && a->pad[d] >= 0 && 2 * a->pad[d] <= a->kernel[d]);
    SNC_ASSERT((to->dim[2 + d] + 2 * a->pad[d] - a->kernel[d]) / a->stride[d] + 1 == dy->shape.dim[2 + d]);
  }
}

static int infer_maxpool2d_dx(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *x = snc_node_in(g, n, 0), *dy = snc_node_in(g, n, 1);
  (void)err;
  SNC_ASSERT(x->dtype == SNC_F32);
  assert_pooled(&n->attr, &x->shape, (x->flags & SNC_NF_BATCHED) != 0, dy);
  n->shape = x->shape;
  n->dtype = SNC_F32;
  n->flags |= SNC_NF_BATCHED;
  return 0;
}

static int infer_avgpool2d_dx(snc_graph *g, snc_node *n, snc_error *err) {
  (void)err;
  assert_pooled(&n->attr, &n->attr.to, n->attr.to_batched, snc_node_in(g, n, 0));
  n->shape = n->attr.to;
  n->dtype = SNC_F32;
  n->flags |= SNC_NF_BATCHED;
  return 0;
}

static int64_t flops_pool(const snc_graph *g, const snc_node *n) {
  (void)g;
  return snc_shape_numel(&n->shape) * n->attr.kernel[0] * n->attr.kernel[1];
}

/* One operation per (dy element, window tap): the argmax scan or the spread. */
static int64_t flops_pool_dx(const snc_graph *g, const snc_node *n) {
  const snc_node *dy = snc_node_in(g, n, n->ninputs - 1);
  return snc_shape_numel(&dy->shape) * n->attr.kernel[0] * n->attr.kernel[1];
}

/* --- reference kernels --- */
/* Geometry shared by the kernels: x plane H x W, pooled plane OH x OW, planes = nb * channels. */
typedef struct pool_geom {
  int64_t planes, H, W, OH, OW;
  int kh, kw, s0, s1, p0, p1;
} pool_geom;

static pool_geom geom(const snc_shape *x, const snc_shape *y, const snc_attrs *a, const snc_kctx *ctx) {
  return (pool_geom){ctx->nb * x->dim[1], x->dim[2], x->dim[3], y->dim[2], y->dim[3],
                     a->kernel[0], a->kernel[1], a->stride[0], a->stride[1], a->pad[0], a->pad[1]};
}

/* Index within the plane of window (i,j)'s maximum: the first maximum in row-major order, or a NaN. */
static int64_t window_argmax(const float *x, const pool_geom *m, int64_t i, int64_t j) {
  int64_t best = -1;
  for (int p = 0; p < m->kh; p++) {
    int64_t h = i * m->s0 - m->p0 + p;
    if (h < 0 || h >= m->H) continue; /* padding: -inf never wins */
    for (int q = 0; q < m->kw; q++) {
      int64_t v = j * m->s1 - m->p1 + q;
      if (v < 0 || v >= m->W) continue;
      int64_t k = h * m->W + v;
      if (best < 0 || x[k] > x[best] || isnan(x[k])) best = k;
    }
  }
  SNC_ASSERT(best >= 0); /* pad <= kernel/2 leaves a real element in every window */
  return best;
}

static void ref_maxpool2d(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  pool_geom m = geom(&snc_node_in(g, n, 0)->shape, &n->shape, &n->attr, ctx);
  const float *x = in[0];
  float *y = out;
  for (int64_t c = 0; c < m.planes; c++, x += m.H * m.W)
    for (int64_t i = 0; i < m.OH; i++)
      for (int64_t j = 0; j < m.OW; j++) *y++ = x[window_argmax(x, &m, i, j)];
}

static void ref_avgpool2d(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  pool_geom m = geom(&snc_node_in(g, n, 0)->shape, &n->shape, &n->attr, ctx);
  const float *x = in[0];
  float *y = out;
  for (int64_t c = 0; c < m.planes; c++, x += m.H * m.W)
    for (int64_t i = 0; i < m.OH; i++)
      for (int64_t j = 0; j < m.OW; j++) {
        double s = 0;
        for (int p = 0; p < m.kh; p++) {
          int64_t h = i * m.s0 - m.p0 + p;
          if (h < 0 || h >= m.H) continue; /* padding: zero, still counted in the divisor */
          for (int q = 0; q < m.kw; q++) {
            int64_t v = j * m.s1 - m.p1 + q;
            if (v >= 0 && v < m.W) s += x[h * m.W + v];
          }
        }
        *y++ = (float)(s / (m.kh * m.kw));
      }
}

/* Scatter in window order: windows overlap when stride < kernel, so an element may collect several. */
static void ref_maxpool2d_dx(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  pool_geom m = geom(&n->shape, &snc_node_in(g, n, 1)->shape, &n->attr, ctx);
  const float *x = in[0], *dy = in[1];
  float *dx = out;
  for (int64_t k = 0; k < m.planes * m.H * m.W; k++) dx[k] = 0;
  for (int64_t c = 0; c < m.planes; c++, x += m.H * m.W, dx += m.H * m.W)
    for (int64_t i = 0; i < m.OH; i++)
      for (int64_t j = 0; j < m.OW; j++) dx[window_argmax(x, &m, i, j)] += *dy++;
}

static void ref_avgpool2d_dx(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  pool_geom m = geom(&n->shape, &snc_node_in(g, n, 0)->shape, &n->attr, ctx);
  const float *dy = in[0];
  float *dx = out;
  for (int64_t k = 0; k < m.planes * m.H * m.W; k++) dx[k] = 0;
  for (int64_t c = 0; c < m.planes; c++, dx += m.H * m.W)
    for (int64_t i = 0; i < m.OH; i++)
      for (int64_t j = 0; j < m.OW; j++) {
        float d = *dy++ / (float)(m.kh * m.kw);
        for (int p = 0; p < m.kh; p++) {
          int64_t h = i * m.s0 - m.p0 + p;
          if (h < 0 || h >= m.H) continue;
          for (int q = 0; q < m.kw; q++) {
            int64_t v = j * m.s1 - m.p1 + q;
            if (v >= 0 && v < m.W) dx[h * m.W + v] += d;
          }
        }
      }
}

/* --- gradient rules --- */
static int grad_maxpool2d(snc_ad *ad, const snc_node *n, int gout) {
  if (!snc_ad_needs(ad, n->inputs[0])) return 0;
  int ins[2] = {n->inputs[0], gout};
  snc_ad_accum(ad, n->inputs[0], snc_ad_node(ad, SNC_OP_MAXPOOL2D_DX, n, "x", ins, 2, &n->attr));
  return 0;
}

static int grad_avgpool2d(snc_ad *ad, const snc_node *n, int gout) {
  if (!snc_ad_needs(ad, n->inputs[0])) return 0;
  snc_attrs a = snc_ad_shape_of(ad, n->inputs[0]);
  for (int d = 0; d < 2; d++) {
    a.kernel[d] = n->attr.kernel[d];
    a.stride[d] = n->attr.stride[d];
    a.pad[d] = n->attr.pad[d];
  }
  snc_ad_accum(ad, n->inputs[0], snc_ad_node(ad, SNC_OP_AVGPOOL2D_DX, n, "x", &gout, 1, &a));
  return 0;
}

/* Overlapping windows with padding: every element of the 7x6 plane is in one window or more. */
static int ex_maxpool2d(snc_graph *g) {
  int x = snc_example_input(g, 3, (int64_t[]){2, 7, 6}, SNC_F32);
  return snc_example_op(g, SNC_OP_MAXPOOL2D, &x, 1, (snc_attrs){.kernel = {3, 3}, .stride = {2, 2}, .pad = {1, 1}});
}

/* The 2x2 windows of stride 2 leave the last row of the 5-row plane out (a zero gradient there). */
static int ex_avgpool2d(snc_graph *g) {
  int x = snc_example_input(g, 3, (int64_t[]){2, 5, 6}, SNC_F32);
  return snc_example_op(g, SNC_OP_AVGPOOL2D, &x, 1, (snc_attrs){.kernel = {2, 2}, .stride = {2, 2}});
}

const snc_op_info snc_op_maxpool2d = {.name = "maxpool2d", .min_inputs = 1, .max_inputs = 1, .infer = infer_pool,
                                      .flops = flops_pool, .ref = ref_maxpool2d, .grad = grad_maxpool2d,
                                      .example = ex_maxpool2d, .emit = snc_cg_emit_pool};
const snc_op_info snc_op_avgpool2d = {.name = "avgpool2d", .min_inputs = 1, .max_inputs = 1, .infer = infer_pool,
                                      .flops = flops_pool, .ref = ref_avgpool2d, .grad = grad_avgpool2d,
                                      .example = ex_avgpool2d, .emit = snc_cg_emit_pool};
const snc_op_info snc_op_maxpool2d_dx = {.name = "maxpool2d_dx", .min_inputs = 2, .max_inputs = 2,
                                         .infer = infer_maxpool2d_dx, .flops = flops_pool_dx, .ref = ref_maxpool2d_dx, .emit = snc_cg_emit_pool};
const snc_op_info snc_op_avgpool2d_dx = {.name = "avgpool2d_dx", .min_inputs = 1, .max_inputs = 1,
                                         .infer = infer_avgpool2d_dx, .flops = flops_pool_dx, .ref = ref_avgpool2d_dx, .emit = snc_cg_emit_pool};
