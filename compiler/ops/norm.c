/* batchnorm(x[B,C] or [B,C,H,W], gamma[C], beta[C], running_mean[C], running_var[C]) -> shape of x.
 * Training normalises with the batch statistics (biased variance) and updates the running ones with
 * attr.momentum (PyTorch's convention, unbiased variance in the running estimate); evaluation uses
 * the running statistics. attr.eps is added to the variance. */
#include "ops/op.h"

static int infer_batchnorm(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *x = snc_node_in(g, n, 0);
  char sx[64];
  if (snc_require_f32(g, n, 0, err)) return -1;
  if ((x->shape.rank != 2 && x->shape.rank != 4) || !(x->flags & SNC_NF_BATCHED))
    return snc_node_errorf(g, n, err, "input '%s' has shape %s; batchnorm needs [B,C] or [B,C,H,W]", x->name,
                           SNC_SHAPE_STR(g, x->id, sx));
  for (int k = 1; k < 5; k++) {
    const snc_node *p = snc_node_in(g, n, k);
    SNC_ASSERT(p->shape.rank == 1);
    if (p->shape.dim[0] != x->shape.dim[1])
      return snc_node_errorf(g, n, err, "parameter '%s' has %lld channels but input '%s' has %lld", p->name,
                             (long long)p->shape.dim[0], x->name, (long long)x->shape.dim[1]);
  }
  if (!(n->attr.eps > 0.0f)) return snc_node_errorf(g, n, err, "eps %g must be positive", n->attr.eps);
  if (!(n->attr.momentum >= 0.0f && n->attr.momentum <= 1.0f))
    return snc_node_errorf(g, n, err, "momentum %g must be in [0, 1]", n->attr.momentum);
  return snc_infer_same_as_input(g, n, err);
}

static int64_t flops_batchnorm(const snc_graph *g, const snc_node *n) {
  (void)g;
  return 6 * snc_shape_numel(&n->shape);
}

const snc_op_info snc_op_batchnorm = {"batchnorm", 5, 5, infer_batchnorm, flops_batchnorm};
