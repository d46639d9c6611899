/* Helpers the gradient rules in compiler/ops use to build backward nodes. */
#ifndef SNC_AUTODIFF_AD_H
#define SNC_AUTODIFF_AD_H
#include "ops/op.h"

/* Does node `id` need a gradient (it depends on a trainable parameter and reaches the loss)? */
int snc_ad_needs(const snc_ad *ad, int id);
/* Adds a backward node for forward node `fwd`, named "<fwd>.d<what>". Its shape rule must accept
 * it: a failure is a broken invariant of the rule that called it. */
int snc_ad_node(snc_ad *ad, snc_opcode op, const snc_node *fwd, const char *what, const int *ins, int nin,
                const snc_attrs *a);
/* Records `grad` as one contribution to the gradient of node `id`. */
void snc_ad_accum(snc_ad *ad, int id, int grad);
snc_graph *snc_ad_graph(snc_ad *ad);
/* attrs whose `to` is node id's full shape (for backward ops that produce an input's shape). */
snc_attrs snc_ad_shape_of(const snc_ad *ad, int id);

#endif
