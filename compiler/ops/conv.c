/* conv2d(x[B,C,H,W], w[O,C,kh,kw], b[O]?) -> [B,O,H',W'], H' = (H + 2*pad - kh) / stride + 1.
 * Cross-correlation with zero padding, as PyTorch's Conv2d. attr.kernel is taken from w. */
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

static int64_t flops_conv2d(const snc_graph *g, const snc_node *n) {
  const snc_node *w = snc_node_in(g, n, 1);
  int64_t per_out = 2 * w->shape.dim[1] * w->shape.dim[2] * w->shape.dim[3] + (n->ninputs == 3);
  return snc_shape_numel(&n->shape) * per_out;
}

const snc_op_info snc_op_conv2d = {"conv2d", 2, 3, infer_conv2d, flops_conv2d};
