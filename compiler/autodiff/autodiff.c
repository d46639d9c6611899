/* Reverse-mode autodiff: walks the forward graph from the loss back, calls each op's gradient rule,
 * sums contributions, and appends one optimizer update per trainable parameter. */
#include "autodiff/ad.h"
#include "snc/autodiff.h"

#include <string.h>

typedef struct contrib {
  int grad;
  struct contrib *next;
} contrib;

struct snc_ad {
  snc_graph *g;
  unsigned char *needs; /* per forward node */
  contrib **grads;      /* per forward node: contributions, in the order they were made */
  snc_loc loc;
};

int snc_ad_needs(const snc_ad *ad, int id) { return id < ad->g->nforward && ad->needs[id]; }
snc_graph *snc_ad_graph(snc_ad *ad) { return ad->g; }

snc_attrs snc_ad_shape_of(const snc_ad *ad, int id) {
  snc_attrs a = {0};
  a.to = ad->g->nodes[id]->shape;
  a.to_batched = (ad->g->nodes[id]->flags & SNC_NF_BATCHED) != 0;
  return a;
}

int snc_ad_node(snc_ad *ad, snc_opcode op, const snc_node *fwd, const char *what, const int *ins, int nin,
                const snc_attrs *a) {
  snc_error err = {0};
  const char *name = snc_arena_printf(&ad->g->arena, "%s.d%s", fwd->name, what);
  for (int k = 2; snc_graph_find(ad->g, name) >= 0; k++) name = snc_arena_printf(&ad->g->arena, "%s.d%s%d", fwd->name, what, k);
  int id = snc_graph_add(ad->g, op, name, ins, nin, a, fwd->loc, &err);
  if (id < 0) {
    fprintf(stderr, "snc: internal error: gradient of %s: %s\n", fwd->name, err.msg);
    SNC_ASSERT(id >= 0);
  }
  return id;
}

void snc_ad_accum(snc_ad *ad, int id, int grad) {
  SNC_ASSERT(id < ad->g->nforward);
  contrib *c = snc_arena_alloc(&ad->g->arena, sizeof *c), **tail = &ad->grads[id];
  while (*tail) tail = &(*tail)->next;
  c->grad = grad;
  *tail = c; /* appended: the sum below keeps the order contributions were made in */
}

/* The gradient of node id: its single contribution, or their sum in a fixed order. */
static int total(snc_ad *ad, int id) {
  contrib *c = ad->grads[id];
  int ins[64], n = 0;
  if (!c) return -1;
  if (!c->next) return c->grad;
  for (; c; c = c->next) {
    if (n == 64) { /* fold long lists in chunks to stay within one node's arity */
      ins[0] = snc_ad_node(ad, SNC_OP_ADD, ad->g->nodes[id], "sum", ins, n, NULL);
      n = 1;
    }
    ins[n++] = c->grad;
  }
  return snc_ad_node(ad, SNC_OP_ADD, ad->g->nodes[id], "sum", ins, n, NULL);
}

static int add_state(snc_ad *ad, const snc_node *p, const char *what) {
  snc_error err = {0};
  const char *name = snc_arena_printf(&ad->g->arena, "%s.%s", p->name, what);
  int id = snc_graph_param(ad->g, name, &p->shape, (snc_init){SNC_INIT_ZEROS, 0, 0}, 0, p->loc, &err);
  SNC_ASSERT(id >= 0);
  return id;
}

static void add_update(snc_ad *ad, int pid) {
  snc_graph *g = ad->g;
  const snc_train_cfg *t = &g->train;
  snc_node *p = g->nodes[pid];
  snc_attrs a = {0};
  a.lr = t->lr;
  a.weight_decay = t->weight_decay;
  if (t->optimizer == SNC_OPT_ADAM) {
    a.beta1 = t->beta1;
    a.beta2 = t->beta2;
    a.eps = t->eps;
    int ins[4] = {pid, p->grad, add_state(ad, p, "adam_m"), add_state(ad, p, "adam_v")};
    snc_ad_node(ad, SNC_OP_ADAM, p, "adam", ins, 4, &a);
  } else {
    a.momentum = t->momentum;
    a.nesterov = t->nesterov;
    int ins[3] = {pid, p->grad, add_state(ad, p, "momentum")};
    snc_ad_node(ad, SNC_OP_SGD, p, "sgd", ins, 3, &a);
  }
}

int snc_autodiff(snc_graph *g, unsigned flags, snc_error *err) {
  if (g->loss < 0) return snc_errorf(err, "%s: the model has no loss; nothing to differentiate", g->file);
  SNC_ASSERT(g->nforward == g->nnodes);
  int n = g->nforward, rc = -1;
  snc_ad ad = {g, calloc((size_t)n, 1), calloc((size_t)n, sizeof(contrib *)), g->nodes[g->loss]->loc};
  unsigned char *reach = calloc((size_t)n, 1);
  if (!ad.needs || !ad.grads || !reach) {
    snc_errorf(err, "%s: out of memory in autodiff", g->file);
    goto cleanup;
  }
  /* needs: depends on a trainable parameter; reach: the loss depends on it */
  for (int i = 0; i < n; i++) {
    const snc_node *nd = g->nodes[i];
    ad.needs[i] = (nd->flags & SNC_NF_TRAINABLE) || ((flags & SNC_AD_INPUTS) && nd->op == SNC_OP_INPUT);
    for (int k = 0; k < nd->ninputs; k++) ad.needs[i] |= ad.needs[nd->inputs[k]];
    if (nd->dtype != SNC_F32) ad.needs[i] = 0;
  }
  reach[g->loss] = 1;
  for (int i = g->loss; i >= 0; i--)
    if (reach[i])
      for (int k = 0; k < g->nodes[i]->ninputs; k++) reach[g->nodes[i]->inputs[k]] = 1;
  for (int i = 0; i < n; i++) ad.needs[i] &= reach[i];

  /* every op on the way needs a gradient rule; name them all at once */
  char missing[512] = "";
  for (int i = 0; i < n; i++) {
    const snc_node *nd = g->nodes[i];
    if (!ad.needs[i] || nd->op == SNC_OP_PARAM || nd->op == SNC_OP_INPUT || snc_op(nd->op)->grad) continue;
    if (!strstr(missing, snc_op_name(nd->op))) {
      if (missing[0]) strncat(missing, ", ", sizeof missing - strlen(missing) - 1);
      strncat(missing, snc_op_name(nd->op), sizeof missing - strlen(missing) - 1);
    }
  }
  if (missing[0]) {
    snc_errorf(err, "%s: cannot train: no gradient rule for %s", g->file, missing);
    goto cleanup;
  }
  if (!ad.needs[g->loss]) {
    snc_errorf(err, "%s: the loss does not depend on any trainable parameter", g->file);
    goto cleanup;
  }

  float one = 1.0f;
  int seed = snc_graph_const(g, "loss.dseed", &(snc_shape){0, {0}}, &one, ad.loc, err);
  if (seed < 0) goto cleanup;
  snc_ad_accum(&ad, g->loss, seed);
  for (int i = g->loss; i >= 0; i--) {
    if (!ad.needs[i]) continue;
    int gi = total(&ad, i);
    if (gi < 0) continue; /* needed in general but no path carried a gradient here */
    snc_node *nd = g->nodes[i];
    if (nd->op == SNC_OP_PARAM || nd->op == SNC_OP_INPUT) nd->grad = gi;
    else if (snc_op(nd->op)->grad(&ad, nd, gi)) goto cleanup;
  }
  for (int i = 0; i < n && !(flags & SNC_AD_NO_UPDATES); i++)
    if ((g->nodes[i]->flags & SNC_NF_TRAINABLE) && g->nodes[i]->grad >= 0) add_update(&ad, i);
  rc = snc_graph_verify(g, err);
cleanup:
  free(ad.needs);
  free(ad.grads);
  free(reach);
  return rc;
}
