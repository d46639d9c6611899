/* softmax / log_softmax along attr.axis (resolved to a non-negative axis by the front end). */
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

static int64_t flops_softmax(const snc_graph *g, const snc_node *n) {
  (void)g;
  return 4 * snc_shape_numel(&n->shape);
}

const snc_op_info snc_op_softmax = {"softmax", 1, 1, infer_softmax, flops_softmax};
const snc_op_info snc_op_log_softmax = {"log_softmax", 1, 1, infer_softmax, flops_softmax};
