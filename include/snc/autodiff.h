/* Reverse-mode autodiff on the layer graph: appends backward nodes and optimizer updates.
 *
 *   snc_graph *g = snc_model_load(...);
 *   if (snc_autodiff(g, 0, &err) != 0) { ... }   // g now holds forward, backward and update nodes
 *   // g->nodes[p]->grad is the gradient node of each trainable parameter p
 *
 * Autodiff builds nodes; it does not compute. Gradients of a tensor with several users (weight
 * sharing, a tensor read twice) are summed in a fixed order. Losses are not differentiated with
 * respect to their targets. A model needing an op without a gradient rule is refused, naming all
 * such ops at once. Nodes [0, g->nforward) stay the forward graph. */
#ifndef SNC_AUTODIFF_H
#define SNC_AUTODIFF_H
#include "snc/ir.h"

enum {
  SNC_AD_INPUTS = 1u << 0, /* also differentiate with respect to float inputs (their ->grad; no update) */
  SNC_AD_NO_UPDATES = 1u << 1, /* gradients only, no optimizer nodes */
};
int snc_autodiff(snc_graph *g, unsigned flags, snc_error *err);

#endif
