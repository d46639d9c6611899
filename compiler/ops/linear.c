/* linear(x[B,K], w[O,K], b[O]?) -> [B,O]: y = x w^T + b, PyTorch's Linear layout. */
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

static int64_t flops_linear(const snc_graph *g, const snc_node *n) {
  const snc_node *w = snc_node_in(g, n, 1);
  return snc_shape_numel(&n->shape) * (2 * w->shape.dim[1] + (n->ninputs == 3));
}

const snc_op_info snc_op_linear = {"linear", 2, 3, infer_linear, flops_linear};
