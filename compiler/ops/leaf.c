/* Leaves: graph inputs, parameters and constants. Their shapes are set when they are created. */
#include "ops/op.h"

static int infer_leaf(snc_graph *g, snc_node *n, snc_error *err) {
  (void)g;
  (void)err;
  SNC_ASSERT(n->shape.rank >= 0 && n->shape.rank <= SNC_MAX_DIMS);
  return 0;
}

const snc_op_info snc_op_input = {"input", 0, 0, infer_leaf, snc_flops_zero, NULL, NULL, NULL, NULL};
const snc_op_info snc_op_param = {"param", 0, 0, infer_leaf, snc_flops_zero, NULL, NULL, NULL, NULL};
const snc_op_info snc_op_const = {"const", 0, 0, infer_leaf, snc_flops_zero, NULL, NULL, NULL, NULL};
