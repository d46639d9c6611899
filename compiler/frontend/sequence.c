/* Sequences of layer items: names, `from` references, `if` conditions, and network calls with or
 * without shared parameters. */
#include "frontend/fe.h"
#include "frontend/limits.h"

#include <ctype.h>
#include <string.h>

static const char *const common_keys[] = {"name", "from", "if", "share", "weight"};

static int valid_name(const char *s) {
  if (!s || !(isalpha((unsigned char)*s) || *s == '_')) return 0;
  for (; *s; s++)
    if (!(isalnum((unsigned char)*s) || *s == '_')) return 0;
  return 1;
}

/* Splits an item into its type key/options and common keys; *type_node is the type's scalar. */
static int split_item(snc_fe *fe, yaml_node_t *item, int losses, yaml_node_t **type_node, yaml_node_t **opts) {
  *type_node = NULL;
  *opts = NULL;
  if (item->type == YAML_SCALAR_NODE) {
    *type_node = item;
    return 0;
  }
  if (item->type != YAML_MAPPING_NODE)
    return snc_fe_error(fe, item, "a layer is a type name (- tanh) or a mapping (- conv2d: {filters: 32, kernel: 3})");
  for (yaml_node_pair_t *p = item->data.mapping.pairs.start; p < item->data.mapping.pairs.top; p++) {
    yaml_node_t *k = snc_fe_node(fe, p->key);
    const char *s = snc_fe_scalar(k);
    if (!s) return snc_fe_error(fe, k, "layer keys must be plain names");
    int common = 0;
    for (size_t i = 0; i < sizeof common_keys / sizeof *common_keys; i++) common |= !strcmp(s, common_keys[i]);
    if (common) {
      if (!strcmp(s, "weight") && !losses) return snc_fe_error(fe, k, "'weight' is only for loss terms (under 'losses')");
      for (yaml_node_pair_t *q = item->data.mapping.pairs.start; q < p; q++)
        if (!strcmp(snc_fe_scalar(snc_fe_node(fe, q->key)), s)) return snc_fe_error(fe, k, "key '%s' appears twice", s);
      continue;
    }
    if (*type_node)
      return snc_fe_error(fe, k, "layer has two types, '%s' and '%s'; put each in its own item",
                          snc_fe_scalar(*type_node), s);
    *type_node = k;
    yaml_node_t *v = snc_fe_node(fe, p->value);
    if (!snc_fe_is_null(v)) *opts = v;
  }
  if (!*type_node) return snc_fe_error(fe, item, "layer has no type (for example conv2d, linear, tanh)");
  return 0;
}

static int unknown_type(snc_fe *fe, yaml_node_t *at, const char *type) {
  const char *names[64];
  int n = 0;
  while (n < 64 && snc_fe_layer_type_name(n)) names[n] = snc_fe_layer_type_name(n), n++;
  for (size_t i = 0; i < sizeof common_keys / sizeof *common_keys && n < 64; i++) names[n++] = common_keys[i];
  const char *hint = snc_fe_suggest(type, names, n);
  if (hint) return snc_fe_error(fe, at, "unknown layer type '%s' (did you mean '%s'?)", type, hint);
  return snc_fe_error(fe, at, "unknown layer type '%s'", type);
}

/* Resolves a `from` name in scope sc. Names of later items in the same sequence are cycles. */
static int resolve(snc_fe *fe, const snc_scope *sc, yaml_node_t *ref, yaml_node_t *seq, int pos) {
  const char *name = snc_fe_scalar(ref);
  if (!name || !*name) return snc_fe_error(fe, ref, "'from' takes a layer or input name, or a list of them");
  if (sc->input >= 0 && !strcmp(name, "input")) return sc->input;
  const char *full = snc_arena_printf(&fe->g->arena, "%s%s", sc->prefix, name);
  int id = snc_fe_lookup(fe, full);
  if (id >= 0) return id;
  id = snc_fe_lookup(fe, name); /* constants are visible inside networks too */
  if (id >= 0 && fe->g->nodes[id]->op == SNC_OP_CONST) return id;
  /* later in this sequence? */
  yaml_node_item_t *items = seq->data.sequence.items.start;
  int count = (int)(seq->data.sequence.items.top - items);
  for (int i = pos; i < count; i++) {
    yaml_node_t *it = snc_fe_node(fe, items[i]);
    const char *other = snc_fe_scalar(snc_fe_get(fe, it, "name", NULL));
    if (other && !strcmp(other, name))
      return snc_fe_error(fe, ref, "'%s' is defined later (line %d); a layer may only use earlier ones, so this would be a cycle",
                          name, (int)it->start_mark.line + 1);
  }
  const char *cands[256];
  int n = 0;
  size_t plen = strlen(sc->prefix);
  for (int i = 0; i < fe->naliases && n < 255; i++) {
    const char *a = fe->aliases[i].name;
    if (!strncmp(a, sc->prefix, plen) && !strchr(a + plen, '.')) cands[n++] = a + plen;
  }
  if (sc->input >= 0) cands[n++] = "input";
  const char *hint = snc_fe_suggest(name, cands, n);
  if (hint) return snc_fe_error(fe, ref, "unknown layer or input '%s' (did you mean '%s'?)", name, hint);
  return snc_fe_error(fe, ref, "unknown layer or input '%s'", name);
}

static int layer_item(snc_fe *fe, yaml_node_t *seq, int pos, const snc_scope *sc, int losses, int *prev) {
  yaml_node_t *item = snc_fe_node(fe, seq->data.sequence.items.start[pos]), *type_node, *opts;
  if (split_item(fe, item, losses, &type_node, &opts)) return -1;
  const char *type = snc_fe_scalar(type_node);
  if (!type) return snc_fe_error(fe, type_node, "a layer is a type name or a mapping");
  const layer_def *def = snc_fe_layer_def(type);
  if (!def) return unknown_type(fe, type_node, type);
  if (def->loss != losses)
    return snc_fe_error(fe, type_node, losses ? "'%s' is not a loss (losses are bce, bce_logits, cross_entropy)"
                                              : "'%s' is a loss; put it under 'losses'", type);
  layer_ctx c = {.fe = fe, .sc = sc, .item = item, .type_node = type_node, .opts = opts, .loc = snc_fe_loc(fe, type_node)};
  if (fe->g->nnodes >= SNC_FE_MAX_NODES) /* network calls multiply: a few lines can ask for 10^16 layers */
    return snc_fe_error(fe, type_node, "more than %d graph nodes (network calls expanded), the limit of a model",
                        SNC_FE_MAX_NODES);
  if (!strcmp(type, "call")) {
    if (!opts || !snc_fe_scalar(opts)) return snc_fe_error(fe, type_node, "call takes a network name: call: branch");
  } else if (opts) {
    char what[64];
    snprintf(what, sizeof what, "%s options", type);
    if (snc_fe_expect_map(fe, opts, what) || snc_fe_check_keys(fe, opts, what, def->keys)) return -1;
  }
  yaml_node_t *name_node = item->type == YAML_MAPPING_NODE ? snc_fe_get(fe, item, "name", NULL) : NULL;
  if (name_node) {
    c.local = snc_fe_scalar(name_node);
    if (!valid_name(c.local))
      return snc_fe_error(fe, name_node, "name '%s' must be letters, digits and _ (no dots), not starting with a digit",
                          c.local ? c.local : "(a list)");
  } else {
    c.local = snc_arena_printf(&fe->g->arena, "%s_%d", type, pos + 1);
  }
  c.full = snc_arena_printf(&fe->g->arena, "%s%s", sc->prefix, c.local);
  if (snc_fe_lookup(fe, c.full) >= 0 || snc_graph_find(fe->g, c.full) >= 0)
    return snc_fe_error(fe, name_node ? name_node : item, "name '%s' is already used", c.local);
  yaml_node_t *share = snc_fe_get(fe, item, "share", NULL);
  if (share && strcmp(type, "call"))
    return snc_fe_error(fe, share, "'share' is only for 'call' layers");

  yaml_node_t *cond = snc_fe_get(fe, item, "if", NULL);
  int on = 1;
  if (cond && snc_fe_condition(fe, cond, &on)) return -1;

  yaml_node_t *from = snc_fe_get(fe, item, "from", NULL);
  if (from && from->type == YAML_SEQUENCE_NODE) {
    for (yaml_node_item_t *it = from->data.sequence.items.start; it < from->data.sequence.items.top; it++) {
      if (c.nin == 16) return snc_fe_error(fe, from, "at most 16 inputs");
      if ((c.in[c.nin++] = resolve(fe, sc, snc_fe_node(fe, *it), seq, pos + 1)) < 0) return -1;
    }
  } else if (from) {
    if ((c.in[c.nin++] = resolve(fe, sc, from, seq, pos + 1)) < 0) return -1;
  } else if (*prev >= 0) {
    c.in[c.nin++] = *prev;
  } else {
    return snc_fe_error(fe, item, "layer '%s' needs 'from': nothing comes before it", c.local);
  }
  if (c.nin < def->min_in || c.nin > def->max_in) {
    if (def->min_in == def->max_in)
      return snc_fe_error(fe, from ? from : item, "%s takes %d input%s, got %d", type, def->min_in,
                          def->min_in == 1 ? "" : "s", c.nin);
    return snc_fe_error(fe, from ? from : item, "%s takes %d to %d inputs, got %d", type, def->min_in, def->max_in, c.nin);
  }
  if (!on) { /* switched off: the layer passes its input through (a loss term is dropped) */
    if (!losses) snc_fe_alias(fe, c.full, c.in[0]);
    return 0;
  }
  int id = def->lower(&c);
  if (id < 0) return -1;
  if (losses) {
    double w;
    if (snc_fe_opt_float(fe, item, "weight", 0, 1e6, 1.0, &w)) return -1;
    fe->g->nodes[id]->weight = (float)w;
  }
  snc_fe_alias(fe, c.full, id);
  *prev = id;
  return 0;
}

int snc_fe_layers(snc_fe *fe, yaml_node_t *seq, const snc_scope *sc, int losses, int *last) {
  if (!seq || seq->type != YAML_SEQUENCE_NODE)
    return snc_fe_error(fe, seq, "expected a list of layers (lines starting with '- ')");
  int prev = sc->input, count = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
  if (count == 0) return snc_fe_error(fe, seq, "the list of layers is empty");
  for (int i = 0; i < count; i++)
    if (layer_item(fe, seq, i, sc, losses, &prev)) return -1;
  *last = prev;
  return 0;
}

static const char *instance_name(const void *ctx, int i) {
  const snc_fe *fe = ctx;
  return i < fe->ninstances ? fe->instances[i].name : NULL;
}

static const char *instance_params(snc_fe *fe, const char *name) {
  int i = snc_strmap_get(&fe->instance_index, name, instance_name, fe);
  return i >= 0 ? fe->instances[i].param_prefix : NULL;
}

static const char *network_name(const void *ctx, int i) {
  const snc_fe *fe = ctx;
  return snc_fe_scalar(snc_fe_node((snc_fe *)fe, fe->networks->data.mapping.pairs.start[i].key));
}

/* The body of network `net`, or NULL: by a hash of the `networks` keys, built at the first call (a
 * scan per call was quadratic: 25,000 networks called once each took 7 s). The first of two equal
 * keys wins, as in snc_fe_get. */
static yaml_node_t *network_body(snc_fe *fe, const char *net) {
  if (!fe->networks) return NULL;
  yaml_node_pair_t *pairs = fe->networks->data.mapping.pairs.start;
  int n = (int)(fe->networks->data.mapping.pairs.top - pairs);
  if (!fe->networks_indexed++)
    for (int i = n - 1; i >= 0; i--)
      if (network_name(fe, i)) snc_strmap_put(&fe->network_index, network_name(fe, i), i, network_name, fe);
  int i = snc_strmap_get(&fe->network_index, net, network_name, fe);
  return i >= 0 ? snc_fe_node(fe, pairs[i].value) : NULL;
}

int snc_fe_call(layer_ctx *c) {
  snc_fe *fe = c->fe;
  const char *net = snc_fe_scalar(c->opts);
  yaml_node_t *body = network_body(fe, net);
  if (!body) {
    const char *names[64];
    int n = 0;
    if (fe->networks)
      for (yaml_node_pair_t *p = fe->networks->data.mapping.pairs.start; p < fe->networks->data.mapping.pairs.top && n < 64; p++)
        names[n++] = snc_fe_scalar(snc_fe_node(fe, p->key));
    const char *hint = snc_fe_suggest(net, names, n);
    return snc_fe_error(fe, c->opts, "unknown network '%s'%s%s%s", net, hint ? " (did you mean '" : "",
                        hint ? hint : "", hint ? "'?)" : "");
  }
  for (int i = 0; i < fe->depth; i++)
    if (!strcmp(fe->call_stack[i], net))
      return snc_fe_error(fe, c->opts, "network '%s' calls itself (through '%s')", net, fe->call_stack[fe->depth - 1]);
  if (fe->depth == 16) return snc_fe_error(fe, c->opts, "networks nested more than 16 deep");

  /* Parameters: this instance's own, or those of the instance named by `share` when it applies. */
  const char *params = snc_arena_printf(&fe->g->arena, "%s%s.", c->sc->param_prefix, c->local);
  yaml_node_t *share = snc_fe_get(fe, c->item, "share", NULL);
  if (share) {
    yaml_node_t *with = share, *cond = NULL;
    if (share->type == YAML_MAPPING_NODE) {
      if (snc_fe_check_keys(fe, share, "share", (const char *const[]){"with", "if", NULL})) return -1;
      with = snc_fe_get(fe, share, "with", NULL);
      cond = snc_fe_get(fe, share, "if", NULL);
      if (!with) return snc_fe_error(fe, share, "share needs 'with': the instance whose parameters to use");
    }
    int on = 1;
    if (cond && snc_fe_condition(fe, cond, &on)) return -1;
    const char *other = snc_fe_scalar(with);
    const char *full = other ? snc_arena_printf(&fe->g->arena, "%s%s", c->sc->prefix, other) : NULL;
    const char *pp = full ? instance_params(fe, full) : NULL;
    if (!pp) return snc_fe_error(fe, with, "share: '%s' is not an earlier call of a network", other ? other : "(list)");
    if (on) params = pp;
  }

  if (snc_fe_expect_map(fe, body, "a network") ||
      snc_fe_check_keys(fe, body, "network", (const char *const[]){"input", "output", "layers", "doc", NULL}))
    return -1;
  yaml_node_t *in_shape = snc_fe_get(fe, body, "input", NULL);
  const snc_node *x = fe->g->nodes[c->in[0]];
  if (in_shape) {
    int ok = in_shape->type == YAML_SEQUENCE_NODE;
    int rank = ok ? (int)(in_shape->data.sequence.items.top - in_shape->data.sequence.items.start) : 0;
    int b = (x->flags & SNC_NF_BATCHED) ? 1 : 0;
    if (!ok) return snc_fe_error(fe, in_shape, "network input must be a list of per-sample dimensions");
    ok = rank + b == x->shape.rank;
    for (int i = 0; i < rank && ok; i++) {
      long long d;
      if (snc_fe_int(fe, snc_fe_node(fe, in_shape->data.sequence.items.start[i]), "dimension", 1, 1 << 30, &d)) return -1;
      ok = d == x->shape.dim[b + i];
    }
    if (!ok) {
      char s[64];
      return snc_fe_error(fe, c->type_node, "network '%s' expects input shape declared at line %d, but '%s' is %s", net,
                          (int)in_shape->start_mark.line + 1, x->name,
                          snc_shape_str(&x->shape, x->flags & SNC_NF_BATCHED, s, sizeof s));
    }
  }
  yaml_node_t *layers = snc_fe_get(fe, body, "layers", NULL);
  if (!layers) return snc_fe_error(fe, body, "network '%s' needs 'layers'", net);
  snc_scope sub = {snc_arena_printf(&fe->g->arena, "%s.", c->full), params, c->in[0]};
  fe->call_stack[fe->depth++] = net;
  int last, rc = snc_fe_layers(fe, layers, &sub, 0, &last);
  fe->depth--;
  if (rc) return -1;
  yaml_node_t *out = snc_fe_get(fe, body, "output", NULL);
  if (out) {
    const char *o = snc_fe_scalar(out);
    last = o ? snc_fe_lookup(fe, snc_arena_printf(&fe->g->arena, "%s%s", sub.prefix, o)) : -1;
    if (last < 0) return snc_fe_error(fe, out, "network output '%s' is not one of its layers", o ? o : "(list)");
  }
  /* remember the instance for later `share: {with: ...}` */
  if (fe->ninstances == fe->cap_instances) { /* doubling: growing by one copied O(n^2) bytes (24 GB, 91_network_bomb) */
    fe->cap_instances = fe->cap_instances ? 2 * fe->cap_instances : 16;
    void *grown = snc_arena_alloc(&fe->g->arena, (size_t)fe->cap_instances * sizeof *fe->instances);
    if (fe->ninstances) memcpy(grown, fe->instances, (size_t)fe->ninstances * sizeof *fe->instances);
    fe->instances = grown; /* the old block stays in the arena until the graph is freed */
  }
  fe->instances[fe->ninstances].name = c->full;
  fe->instances[fe->ninstances].param_prefix = params;
  fe->ninstances++;
  snc_strmap_put(&fe->instance_index, c->full, fe->ninstances - 1, instance_name, fe);
  return last;
}
