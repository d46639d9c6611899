/* Elementwise ops: activations, dropout and scale (one input), add and mul (same shapes).
 *   tanh, relu, sigmoid; leaky_relu (attr.alpha = negative slope); elu (attr.alpha);
 *   dropout (attr.p = probability of zeroing, survivors scaled by 1/(1-p), identity when evaluating);
 *   scale (y = attr.alpha * x); add (n-ary sum); mul (product of two). */
#include "ops/op.h"

static int infer_dropout(snc_graph *g, snc_node *n, snc_error *err) {
  if (!(n->attr.p >= 0.0f && n->attr.p < 1.0f))
    return snc_node_errorf(g, n, err, "dropout probability %g must be in [0, 1)", n->attr.p);
  return snc_infer_same_as_input(g, n, err);
}

static int infer_same_shapes(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *a = snc_node_in(g, n, 0);
  char sa[64], sb[64];
  for (int k = 1; k < n->ninputs; k++) {
    const snc_node *b = snc_node_in(g, n, k);
    if (!snc_shape_eq(&a->shape, &b->shape) || (a->flags & SNC_NF_BATCHED) != (b->flags & SNC_NF_BATCHED))
      return snc_node_errorf(g, n, err, "input '%s' has shape %s but input '%s' has %s", a->name,
                             SNC_SHAPE_STR(g, a->id, sa), b->name, SNC_SHAPE_STR(g, b->id, sb));
  }
  return snc_infer_same_as_input(g, n, err);
}

const snc_op_info snc_op_tanh = {"tanh", 1, 1, snc_infer_same_as_input, snc_flops_numel};
const snc_op_info snc_op_relu = {"relu", 1, 1, snc_infer_same_as_input, snc_flops_numel};
const snc_op_info snc_op_leaky_relu = {"leaky_relu", 1, 1, snc_infer_same_as_input, snc_flops_numel};
const snc_op_info snc_op_elu = {"elu", 1, 1, snc_infer_same_as_input, snc_flops_numel};
const snc_op_info snc_op_sigmoid = {"sigmoid", 1, 1, snc_infer_same_as_input, snc_flops_numel};
const snc_op_info snc_op_dropout = {"dropout", 1, 1, infer_dropout, snc_flops_numel};
const snc_op_info snc_op_scale = {"scale", 1, 1, snc_infer_same_as_input, snc_flops_numel};
const snc_op_info snc_op_add = {"add", 2, -1, infer_same_shapes, snc_flops_numel};
const snc_op_info snc_op_mul = {"mul", 2, 2, infer_same_shapes, snc_flops_numel};
