/* conv2d(x[B,C,H,W], w[O,C,kh,kw], b[O]?) -> [B,O,H',W'], H' = (H + 2*pad - kh) / stride + 1.
 * Cross-correlation with zero padding, as PyTorch's Conv2d. attr.kernel is taken from w.
 * Backward (made by autodiff; attr.stride and attr.pad copied from the forward node):
 *   conv2d_dx(dy[B,O,H',W'], w[O,C,kh,kw]) -> attr.to = x's shape [B,C,H,W];
 *   conv2d_dw(x[B,C,H,W], dy[B,O,H',W']) -> [O,C,kh,kw] (attr.kernel), summed over the nb rows in use;
 *   the bias gradient is reduce's bias_grad(dy). */
#include "autodiff/ad.h"
#include "ops/op.h"

static int infer_conv2d(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *x = snc_node_in(g, n, 0), *w = snc_node_in(g, n, 1);
  char sx[64], sw[64];
  if (snc_require_f32(g, n, 0, err)) return -1;
  if (x->shape.rank != 4 || !(x->flags & SNC_NF_BATCHED))
    return snc_node_errorf(g, n, err, "input '%s' has shape %s; conv2d needs [B,channels,height,width]",
                           x->name, SNC_SHAPE_STR(g, x->id, sx));
  SNC_ASSERT(w->shape.rank == 4);
  if (w->shape.dim[1] != x->shape.dim[1])
    return snc_node_errorf(g, n, err, "weight '%s' %s expects %lld input channels but input '%s' %s has %lld",
                           w->name, SNC_SHAPE_STR(g, w->id, sw), (long long)w->shape.dim[1], x->name,
                           SNC_SHAPE_STR(g, x->id, sx), (long long)x->shape.dim[1]);
  if (n->ninputs == 3) {
    const snc_node *b = snc_node_in(g, n, 2);
    SNC_ASSERT(b->shape.rank == 1 && b->shape.dim[0] == w->shape.dim[0]);
  }
  n->attr.kernel[0] = (int)w->shape.dim[2];
  n->attr.kernel[1] = (int)w->shape.dim[3];
  int64_t out[2];
  for (int d = 0; d < 2; d++) {
    int64_t in = x->shape.dim[2 + d] + 2 * n->attr.pad[d];
    if (n->attr.stride[d] < 1) return snc_node_errorf(g, n, err, "stride must be at least 1");
    if (n->attr.pad[d] < 0) return snc_node_errorf(g, n, err, "padding must not be negative");
    if (n->attr.kernel[d] > in)
      return snc_node_errorf(g, n, err, "kernel %dx%d larger than input %lldx%lld (padding %d)",
                             n->attr.kernel[0], n->attr.kernel[1], (long long)x->shape.dim[2],
                             (long long)x->shape.dim[3], n->attr.pad[d]);
    out[d] = (in - n->attr.kernel[d]) / n->attr.stride[d] + 1;
  }
  n->shape = (snc_shape){4, {x->shape.dim[0], w->shape.dim[0], out[0], out[1]}};
  n->dtype = SNC_F32;
  n->flags |= SNC_NF_BATCHED;
  return 0;
}

/* The output size along d of a convolution of input size `in` under attrs a. */
static int64_t conv_out(const snc_attrs *a, int d, int64_t in) {
  return (in + 2 * a->pad[d] - a->kernel[d]) / a->stride[d] + 1;
}

/* Backward rows are made only by autodiff from a valid conv2d: their rules assert invariants. */
static int infer_conv2d_dx(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *dy = snc_node_in(g, n, 0), *w = snc_node_in(g, n, 1);
  const snc_shape *to = &n->attr.to;
  (void)err;
  SNC_ASSERT(dy->dtype == SNC_F32 && w->dtype == SNC_F32);
  SNC_ASSERT(dy->shape.rank == 4 && (dy->flags & SNC_NF_BATCHED) && w->shape.rank == 4);
  SNC_ASSERT(to->rank == 4 && n->attr.to_batched && to->dim[0] == dy->shape.dim[0]);
  SNC_ASSERT(dy->shape.dim[1] == w->shape.dim[0] && to->dim[1] == w->shape.dim[1]);
  n->attr.kernel[0] = (int)w->shape.dim[2];
  n->attr.kernel[1] = (int)w->shape.dim[3];
  for (int d = 0; d < 2; d++) {
    SNC_ASSERT(n->attr.stride[d] >= 1 && n->attr.pad[d] >= 0);
    SNC_ASSERT(conv_out(&n->attr, d, to->dim[2 + d]) == dy->shape.dim[2 + d]);
  }
  n->shape = *to;
  n->dtype = SNC_F32;
  n->flags |= SNC_NF_BATCHED;
  return 0;
}

static int infer_conv2d_dw(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *x = snc_node_in(g, n, 0), *dy = snc_node_in(g, n, 1);
  const snc_attrs *a = &n->attr;
  (void)err;
  SNC_ASSERT(x->dtype == SNC_F32 && dy->dtype == SNC_F32);
  SNC_ASSERT(x->shape.rank == 4 && (x->flags & SNC_NF_BATCHED));
  SNC_ASSERT(dy->shape.rank == 4 && (dy->flags & SNC_NF_BATCHED) && dy->shape.dim[0] == x->shape.dim[0]);
  for (int d = 0; d < 2; d++) {
    SNC_ASSERT(a->kernel[d] >= 1 && a->stride[d] >= 1 && a->pad[d] >= 0);
    SNC_ASSERT(conv_out(a, d, x->shape.dim[2 + d]) == dy->shape.dim[2 + d]);
  }
  n->shape = (snc_shape){4, {dy->shape.dim[1], x->shape.dim[1], a->kernel[0], a->kernel[1]}};
  n->dtype = SNC_F32;
  n->flags &= ~SNC_NF_BATCHED;
  return 0;
}

static int64_t flops_conv2d(const snc_graph *g, const snc_node *n) {
  const snc_node *w = snc_node_in(g, n, 1);
  int64_t per_out = 2 * w->shape.dim[1] * w->shape.dim[2] * w->shape.dim[3] + (n->ninputs == 3);
  return snc_shape_numel(&n->shape) * per_out;
}

/* Both backward ops do one multiply-add per (dy element, input channel, kernel tap). */
static int64_t flops_conv2d_bwd(const snc_graph *g, const snc_node *n) {
  const snc_node *dy = snc_node_in(g, n, n->op == SNC_OP_CONV2D_DX ? 0 : 1);
  int64_t c = n->shape.dim[1]; /* input channels: dx is [B,C,H,W], dw is [O,C,kh,kw] */
  return 2 * snc_shape_numel(&dy->shape) * c * n->attr.kernel[0] * n->attr.kernel[1];
}

/* --- reference kernels --- */
/* y[r,o,i,j] = b[o] + sum_{c,p,q} x[r,c,i*s0-p0+p, j*s1-p1+q] w[o,c,p,q], out-of-range x reading 0. */
static void ref_conv2d(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  const snc_node *xn = snc_node_in(g, n, 0);
  const float *x = in[0], *w = in[1], *b = n->ninputs == 3 ? in[2] : NULL;
  float *y = out;
  const int64_t C = xn->shape.dim[1], H = xn->shape.dim[2], W = xn->shape.dim[3];
  const int64_t O = n->shape.dim[1], OH = n->shape.dim[2], OW = n->shape.dim[3];
  const int kh = n->attr.kernel[0], kw = n->attr.kernel[1];
  const int s0 = n->attr.stride[0], s1 = n->attr.stride[1], p0 = n->attr.pad[0], p1 = n->attr.pad[1];
  for (int64_t r = 0; r < ctx->nb; r++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t i = 0; i < OH; i++)
        for (int64_t j = 0; j < OW; j++) {
          double s = 0;
          for (int64_t c = 0; c < C; c++)
            for (int p = 0; p < kh; p++) {
              int64_t h = i * s0 - p0 + p;
              if (h < 0 || h >= H) continue;
              for (int q = 0; q < kw; q++) {
                int64_t v = j * s1 - p1 + q;
                if (v < 0 || v >= W) continue;
                s += (double)x[((r * C + c) * H + h) * W + v] * w[((o * C + c) * kh + p) * kw + q];
              }
            }
          if (b) s += b[o];
          y[((r * O + o) * OH + i) * OW + j] = (float)s;
        }
}

/* dx[r,c,h,v] = sum over (o,p,q) with h = i*s0-p0+p, v = j*s1-p1+q for an output (i,j) of
 * dy[r,o,i,j] w[o,c,p,q]: a gather, so each dx element is one sum in a fixed order. */
static void ref_conv2d_dx(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  const snc_node *dyn = snc_node_in(g, n, 0);
  const float *dy = in[0], *w = in[1];
  float *dx = out;
  const int64_t C = n->shape.dim[1], H = n->shape.dim[2], W = n->shape.dim[3];
  const int64_t O = dyn->shape.dim[1], OH = dyn->shape.dim[2], OW = dyn->shape.dim[3];
  const int kh = n->attr.kernel[0], kw = n->attr.kernel[1];
  const int s0 = n->attr.stride[0], s1 = n->attr.stride[1], p0 = n->attr.pad[0], p1 = n->attr.pad[1];
  for (int64_t r = 0; r < ctx->nb; r++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t v = 0; v < W; v++) {
          double s = 0;
          for (int64_t o = 0; o < O; o++)
            for (int p = 0; p < kh; p++) {
              int64_t ti = h + p0 - p; /* = i * s0 */
              if (ti < 0 || ti % s0 || ti / s0 >= OH) continue;
              for (int q = 0; q < kw; q++) {
                int64_t tj = v + p1 - q;
                if (tj < 0 || tj % s1 || tj / s1 >= OW) continue;
                s += (double)dy[((r * O + o) * OH + ti / s0) * OW + tj / s1] * w[((o * C + c) * kh + p) * kw + q];
              }
            }
          dx[((r * C + c) * H + h) * W + v] = (float)s;
        }
}

/* dw[o,c,p,q] = sum over the nb rows and outputs (i,j) of dy[r,o,i,j] x[r,c,i*s0-p0+p, j*s1-p1+q]. */
static void ref_conv2d_dw(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  const snc_node *xn = snc_node_in(g, n, 0), *dyn = snc_node_in(g, n, 1);
  const float *x = in[0], *dy = in[1];
  float *dw = out;
  const int64_t C = xn->shape.dim[1], H = xn->shape.dim[2], W = xn->shape.dim[3];
  const int64_t O = dyn->shape.dim[1], OH = dyn->shape.dim[2], OW = dyn->shape.dim[3];
  const int kh = n->attr.kernel[0], kw = n->attr.kernel[1];
  const int s0 = n->attr.stride[0], s1 = n->attr.stride[1], p0 = n->attr.pad[0], p1 = n->attr.pad[1];
  for (int64_t o = 0; o < O; o++)
    for (int64_t c = 0; c < C; c++)
      for (int p = 0; p < kh; p++)
        for (int q = 0; q < kw; q++) {
          double s = 0;
          for (int64_t r = 0; r < ctx->nb; r++)
            for (int64_t i = 0; i < OH; i++) {
              int64_t h = i * s0 - p0 + p;
              if (h < 0 || h >= H) continue;
              for (int64_t j = 0; j < OW; j++) {
                int64_t v = j * s1 - p1 + q;
                if (v < 0 || v >= W) continue;
                s += (double)dy[((r * O + o) * OH + i) * OW + j] * x[((r * C + c) * H + h) * W + v];
              }
            }
          dw[((o * C + c) * kh + p) * kw + q] = (float)s;
        }
}

/* --- gradient rule --- */
static int grad_conv2d(snc_ad *ad, const snc_node *n, int gout) {
  if (snc_ad_needs(ad, n->inputs[0])) {
    snc_attrs a = snc_ad_shape_of(ad, n->inputs[0]);
    for (int d = 0; d < 2; d++) {
      a.stride[d] = n->attr.stride[d];
      a.pad[d] = n->attr.pad[d];
    }
    int ins[2] = {gout, n->inputs[1]};
    snc_ad_accum(ad, n->inputs[0], snc_ad_node(ad, SNC_OP_CONV2D_DX, n, "x", ins, 2, &a));
  }
  if (snc_ad_needs(ad, n->inputs[1])) {
    snc_attrs a = {0};
    for (int d = 0; d < 2; d++) {
      a.kernel[d] = n->attr.kernel[d];
      a.stride[d] = n->attr.stride[d];
      a.pad[d] = n->attr.pad[d];
    }
    int ins[2] = {n->inputs[0], gout};
    snc_ad_accum(ad, n->inputs[1], snc_ad_node(ad, SNC_OP_CONV2D_DW, n, "w", ins, 2, &a));
  }
  if (n->ninputs == 3 && snc_ad_needs(ad, n->inputs[2]))
    snc_ad_accum(ad, n->inputs[2], snc_ad_node(ad, SNC_OP_BIAS_GRAD, n, "b", &gout, 1, NULL));
  return 0;
}

/* Stride and padding differ per axis, the kernel is not square and does not tile the input. */
static int ex_conv2d(snc_graph *g) {
  int x = snc_example_input(g, 3, (int64_t[]){2, 7, 6}, SNC_F32);
  int w = snc_example_param(g, 4, (int64_t[]){3, 2, 3, 2});
  int b = snc_example_param(g, 1, (int64_t[]){3});
  return snc_example_op(g, SNC_OP_CONV2D, (int[]){x, w, b}, 3, (snc_attrs){.stride = {2, 1}, .pad = {1, 0}});
}

const snc_op_info snc_op_conv2d = {.name = "conv2d", .min_inputs = 2, .max_inputs = 3, .infer = infer_conv2d,
                                   .flops = flops_conv2d, .ref = ref_conv2d, .grad = grad_conv2d,
                                   .example = ex_conv2d, .emit = snc_cg_emit_conv};
const snc_op_info snc_op_conv2d_dx = {.name = "conv2d_dx", .min_inputs = 2, .max_inputs = 2,
                                      .infer = infer_conv2d_dx, .flops = flops_conv2d_bwd, .ref = ref_conv2d_dx, .emit = snc_cg_emit_conv};
const snc_op_info snc_op_conv2d_dw = {.name = "conv2d_dw", .min_inputs = 2, .max_inputs = 2,
                                      .infer = infer_conv2d_dw, .flops = flops_conv2d_bwd, .ref = ref_conv2d_dw, .emit = snc_cg_emit_conv};
