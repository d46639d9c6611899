/* Losses, each a scalar mean (PyTorch's reduction='mean'):
 *   bce(p, t): -mean(t log p + (1-t) log(1-p)) over every element, log clamped at -100 as PyTorch;
 *   bce_logits(z, t): the same on sigmoid(z), computed stably;
 *   cross_entropy(z[B,C], labels int32[B]): -mean_b log_softmax(z_b)[label_b]. */
#include "ops/op.h"

static int scalar_out(snc_node *n) {
  n->shape = (snc_shape){0, {0}};
  n->dtype = SNC_F32;
  n->flags &= ~SNC_NF_BATCHED;
  return 0;
}

static int infer_bce(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *p = snc_node_in(g, n, 0), *t = snc_node_in(g, n, 1);
  char sp[64], st[64];
  if (snc_require_f32(g, n, 0, err) || snc_require_f32(g, n, 1, err)) return -1;
  if (!snc_shape_eq(&p->shape, &t->shape))
    return snc_node_errorf(g, n, err, "prediction '%s' has shape %s but target '%s' has %s", p->name,
                           SNC_SHAPE_STR(g, p->id, sp), t->name, SNC_SHAPE_STR(g, t->id, st));
  return scalar_out(n);
}

static int infer_cross_entropy(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *z = snc_node_in(g, n, 0), *t = snc_node_in(g, n, 1);
  char sz[64], st[64];
  if (snc_require_f32(g, n, 0, err)) return -1;
  if (z->shape.rank != 2 || !(z->flags & SNC_NF_BATCHED))
    return snc_node_errorf(g, n, err, "logits '%s' have shape %s; cross_entropy needs [B,classes]", z->name,
                           SNC_SHAPE_STR(g, z->id, sz));
  if (t->dtype != SNC_I32 || t->shape.rank != 1 || t->shape.dim[0] != z->shape.dim[0])
    return snc_node_errorf(g, n, err, "target '%s' %s must be int32 class labels of shape [B]", t->name,
                           SNC_SHAPE_STR(g, t->id, st));
  return scalar_out(n);
}

static int64_t flops_loss(const snc_graph *g, const snc_node *n) {
  return 4 * snc_shape_numel(&snc_node_in(g, n, 0)->shape);
}

const snc_op_info snc_op_bce = {"bce", 2, 2, infer_bce, flops_loss};
const snc_op_info snc_op_bce_logits = {"bce_logits", 2, 2, infer_bce, flops_loss};
const snc_op_info snc_op_cross_entropy = {"cross_entropy", 2, 2, infer_cross_entropy, flops_loss};
