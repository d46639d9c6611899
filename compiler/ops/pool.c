/* maxpool2d / avgpool2d(x[B,C,H,W]) -> [B,C,H',W'], H' = floor((H + 2*pad - k) / stride) + 1.
 * Padding counts as -inf for max and as zero (included in the divisor) for average, as PyTorch's
 * defaults; pad may be at most half the kernel, as there. */
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

static int64_t flops_pool(const snc_graph *g, const snc_node *n) {
  (void)g;
  return snc_shape_numel(&n->shape) * n->attr.kernel[0] * n->attr.kernel[1];
}

const snc_op_info snc_op_maxpool2d = {"maxpool2d", 1, 1, infer_pool, flops_pool};
const snc_op_info snc_op_avgpool2d = {"avgpool2d", 1, 1, infer_pool, flops_pool};
