/* The IR verifier: structural invariants every pass must keep. Runs after building and, in debug
 * builds, after every pass. A failure here is a compiler bug, reported as an error (not an abort)
 * so tools can print it with the model's name. */
#include "ops/op.h"

#include <string.h>

int snc_graph_verify(const snc_graph *g, snc_error *err) {
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *n = g->nodes[i];
    if (!n || n->id != i) return snc_errorf(err, "%s: verifier: node %d has id %d", g->file, i, n ? n->id : -1);
    if (n->op < 0 || n->op >= SNC_OP_COUNT) return snc_errorf(err, "%s: verifier: node %d has no op", g->file, i);
    const snc_op_info *info = snc_op(n->op);
    if (n->ninputs < info->min_inputs || (info->max_inputs >= 0 && n->ninputs > info->max_inputs))
      return snc_node_errorf(g, n, err, "verifier: %d inputs, op takes %d..%d", n->ninputs, info->min_inputs,
                             info->max_inputs);
    for (int k = 0; k < n->ninputs; k++)
      if (n->inputs[k] < 0 || n->inputs[k] >= i)
        return snc_node_errorf(g, n, err, "verifier: input %d is node %d, not an earlier node", k, n->inputs[k]);
    if (!n->name || !n->name[0]) return snc_node_errorf(g, n, err, "verifier: node %d has no name", i);
    int same = snc_graph_find(g, n->name); /* the name index holds one node per name */
    if (same != i) return snc_node_errorf(g, n, err, "verifier: name also used by node %d", same);
    if ((n->flags & SNC_NF_TRAINABLE) && n->op != SNC_OP_PARAM)
      return snc_node_errorf(g, n, err, "verifier: only parameters are trainable");
    if (n->shape.rank < 0 || n->shape.rank > SNC_MAX_DIMS)
      return snc_node_errorf(g, n, err, "verifier: rank %d", n->shape.rank);
    if ((n->flags & SNC_NF_BATCHED) && (n->shape.rank < 1 || n->shape.dim[0] != g->batch))
      return snc_node_errorf(g, n, err, "verifier: batched but dim 0 is not the batch %d", g->batch);
    /* The shape rule must reproduce the stored shape. */
    snc_node copy = *n;
    snc_graph *mg = (snc_graph *)g; /* infer only reads the graph */
    copy.flags &= SNC_NF_TRAINABLE | SNC_NF_LOSS | (n->ninputs ? 0 : SNC_NF_BATCHED);
    if (info->infer(mg, &copy, err)) return -1;
    if (!snc_shape_eq(&copy.shape, &n->shape) || copy.dtype != n->dtype ||
        (copy.flags & SNC_NF_BATCHED) != (n->flags & SNC_NF_BATCHED))
      return snc_node_errorf(g, n, err, "verifier: stored shape differs from the shape rule's");
    if ((n->flags & SNC_NF_LOSS) && (n->shape.rank != 0 || n->dtype != SNC_F32))
      return snc_node_errorf(g, n, err, "verifier: a loss must be a float scalar");
  }
  if (g->loss >= g->nnodes) return snc_errorf(err, "%s: verifier: loss node %d out of range", g->file, g->loss);
  if (g->loss >= 0 && g->nodes[g->loss]->shape.rank != 0)
    return snc_errorf(err, "%s: verifier: total loss is not a scalar", g->file);
  for (int o = 0; o < g->noutputs; o++) {
    const snc_output *out = &g->outputs[o];
    if (out->node < 0 || out->node >= g->nnodes || out->target < 0 || out->target >= g->nnodes)
      return snc_errorf(err, "%s: verifier: output '%s' refers to a missing node", g->file, out->name);
  }
  return 0;
}
