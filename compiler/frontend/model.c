/* Top-level sections of a model file: model, switches, training, data, inputs, networks, graph,
 * losses, outputs. Sections are read by name, so their order in the file does not matter. */
#include "frontend/fe.h"
#include "frontend/limits.h"
#include "snc/onnx.h"

#include <errno.h>
#include <string.h>

static const char *const top_keys[] = {"model", "doc", "switches", "training", "data", "inputs", "constants",
                                       "networks", "graph", "losses", "outputs", NULL};

/* Streams each data generator provides (per-sample shapes); inputs bind to them by name. */
typedef struct stream_def {
  const char *name;
  snc_dtype dtype;
  int rank;
  int64_t dim[3];
} stream_def;
static const struct {
  const char *name;
  stream_def streams[4];
} generators[] = {
    {"mnist_pairs", {{"pair", SNC_F32, 3, {2, 14, 14}}, {"target", SNC_I32, 0, {0}}, {"classes", SNC_I32, 1, {2}}, {0}}},
    {"mnist_digits", {{"image", SNC_F32, 3, {1, 14, 14}}, {"label", SNC_I32, 0, {0}}, {0}}},
};
enum { NGEN = sizeof generators / sizeof generators[0] };

int snc_override_parse(char *arg, snc_override *o, snc_error *err) {
  char *eq = strchr(arg, '=');
  if (!eq || eq == arg || !eq[1]) return snc_errorf(err, "--set: expected name=value, got '%s'", arg);
  *eq = 0;
  o->key = arg;
  o->value = eq + 1;
  return 0;
}

static int parse_switches(snc_fe *fe, yaml_node_t *m, const snc_override *sets, int nsets) {
  snc_graph *g = fe->g;
  if (m) {
    if (snc_fe_expect_map(fe, m, "switches")) return -1;
    int n = (int)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
    if (n > SNC_FE_MAX_SWITCHES) /* each is looked up by a scan: bounded, so is the scan */
      return snc_fe_error(fe, snc_fe_node(fe, m->data.mapping.pairs.start[SNC_FE_MAX_SWITCHES].key),
                          "more than %d switches", SNC_FE_MAX_SWITCHES);
    g->switches = snc_arena_alloc(&g->arena, (size_t)(n ? n : 1) * sizeof *g->switches);
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
      yaml_node_t *k = snc_fe_node(fe, p->key), *v = snc_fe_node(fe, p->value);
      const char *name = snc_fe_scalar(k), *val = snc_fe_scalar(v);
      if (!name || !*name) return snc_fe_error(fe, k, "switch names must be plain names");
      if (snc_fe_switch(fe, name)) return snc_fe_error(fe, k, "switch '%s' is declared twice", name);
      snc_switch *s = &g->switches[g->nswitches];
      int b;
      double d;
      s->name = snc_arena_strdup(&g->arena, name);
      if (val && snc_fe_bool(fe, v, "switch", &b) == 0 && strcmp(val, "0") && strcmp(val, "1")) {
        s->is_bool = 1;
        s->value = b;
      } else if (val && snc_fe_float(fe, v, "switch", -1e30, 1e30, &d) == 0) {
        s->value = d;
      } else {
        return snc_fe_error(fe, v, "switch '%s' needs a default of true, false or a number", name);
      }
      g->nswitches++;
    }
  }
  for (int i = 0; i < nsets; i++) {
    snc_switch *s = snc_fe_switch(fe, sets[i].key);
    if (!s) {
      const char *names[64];
      int n = 0;
      for (int j = 0; j < g->nswitches && n < 64; j++) names[n++] = g->switches[j].name;
      const char *hint = snc_fe_suggest(sets[i].key, names, n);
      if (hint) return snc_errorf(fe->err, "--set %s: %s has no switch '%s' (did you mean '%s'?)", sets[i].key, fe->file,
                                  sets[i].key, hint);
      return snc_errorf(fe->err, "--set %s: %s has no switch '%s'%s", sets[i].key, fe->file, sets[i].key,
                        n ? "" : " (it declares no switches)");
    }
    yaml_node_t fake = {0};
    fake.type = YAML_SCALAR_NODE;
    fake.data.scalar.value = (yaml_char_t *)sets[i].value;
    fake.data.scalar.length = strlen(sets[i].value);
    int b;
    double d;
    snc_error tmp;
    snc_error *keep = fe->err;
    fe->err = &tmp;
    int bad = s->is_bool ? snc_fe_bool(fe, &fake, "", &b) : snc_fe_float(fe, &fake, "", -1e30, 1e30, &d);
    fe->err = keep;
    if (bad)
      return snc_errorf(fe->err, "--set %s=%s: switch '%s' takes %s", sets[i].key, sets[i].value, s->name,
                        s->is_bool ? "true or false" : "a number");
    s->value = s->is_bool ? b : d;
    s->overridden = 1;
  }
  return 0;
}

/* schedule: constant (the default) or onecycle, as a name or {type: onecycle, pct_start: 0.3,
 * div_factor: 25, final_div_factor: 1e4, anneal: cos} (PyTorch's OneCycleLR; lr is its max_lr). */
static int parse_schedule(snc_fe *fe, yaml_node_t *v) {
  snc_train_cfg *t = &fe->g->train;
  double d;
  if (!v) return 0;
  yaml_node_t *type = v->type == YAML_MAPPING_NODE ? snc_fe_get(fe, v, "type", NULL) : v;
  const char *s = snc_fe_scalar(type);
  if (!type) return snc_fe_error(fe, v, "schedule needs 'type' (constant or onecycle)");
  if (s && !strcmp(s, "constant")) {
    t->schedule = SNC_SCHED_CONSTANT;
    if (v->type == YAML_MAPPING_NODE && snc_fe_check_keys(fe, v, "constant schedule", (const char *const[]){"type", NULL}))
      return -1;
    return 0;
  }
  if (!s || strcmp(s, "onecycle"))
    return snc_fe_error(fe, type, "schedule type must be constant or onecycle, got '%s'", s ? s : "(not a name)");
  t->schedule = SNC_SCHED_ONECYCLE;
  if (v->type != YAML_MAPPING_NODE) return 0;
  if (snc_fe_check_keys(fe, v, "onecycle schedule",
                        (const char *const[]){"type", "pct_start", "div_factor", "final_div_factor", "anneal", NULL}))
    return -1;
  if (snc_fe_opt_float(fe, v, "pct_start", 0, 1, 0.3, &d)) return -1;
  t->pct_start = (float)d;
  if (snc_fe_opt_float(fe, v, "div_factor", 1, 1e9, 25, &d)) return -1;
  t->div_factor = (float)d;
  if (snc_fe_opt_float(fe, v, "final_div_factor", 1, 1e12, 1e4, &d)) return -1;
  t->final_div_factor = (float)d;
  yaml_node_t *an = snc_fe_get(fe, v, "anneal", NULL);
  if (an) {
    const char *a = snc_fe_scalar(an);
    if (!a || (strcmp(a, "cos") && strcmp(a, "linear")))
      return snc_fe_error(fe, an, "anneal must be cos or linear, got '%s'", a ? a : "(not a name)");
    t->anneal_linear = !strcmp(a, "linear");
  }
  return 0;
}

/* augment: {shift: s, rotate: deg, scale: f, elastic: px, grid: n}: training images move by a
 * random offset in [-s, s] per axis (zero fill), and with rotate or scale turn by up to +-deg degrees
 * and scale by 1 +- f, with elastic warp by a smooth field of up to +-px pixels interpolated from an
 * n x n grid of random displacements (bilinear). At least one of shift, rotate, scale, elastic. */
static int parse_augment(snc_fe *fe, yaml_node_t *v) {
  long long s;
  double d;
  if (!v) return 0;
  if (snc_fe_expect_map(fe, v, "augment") ||
      snc_fe_check_keys(fe, v, "augment", (const char *const[]){"shift", "rotate", "scale", "elastic", "grid", NULL}))
    return -1;
  if (!snc_fe_get(fe, v, "shift", NULL) && !snc_fe_get(fe, v, "rotate", NULL) && !snc_fe_get(fe, v, "scale", NULL) &&
      !snc_fe_get(fe, v, "elastic", NULL))
    return snc_fe_error(fe, v,
                        "augment needs 'shift' (pixels, like shift: 1), 'rotate' (degrees), 'scale' or 'elastic' (pixels)");
  if (snc_fe_opt_int(fe, v, "shift", 0, 4, 0, &s)) return -1;
  fe->g->train.augment_shift = (int)s;
  if (snc_fe_opt_float(fe, v, "rotate", 0, 45, 0, &d)) return -1;
  fe->g->train.augment_rotate = (float)d;
  if (snc_fe_opt_float(fe, v, "scale", 0, 0.5, 0, &d)) return -1;
  fe->g->train.augment_scale = (float)d;
  if (snc_fe_opt_float(fe, v, "elastic", 0, 4, 0, &d)) return -1;
  fe->g->train.augment_elastic = (float)d;
  yaml_node_t *gn = snc_fe_get(fe, v, "grid", NULL);
  if (gn && !(fe->g->train.augment_elastic > 0))
    return snc_fe_error(fe, gn, "augment: 'grid' sets the control points of 'elastic', which is not given");
  if (snc_fe_opt_int(fe, v, "grid", 2, 8, 3, &s)) return -1;
  fe->g->train.augment_grid = (int)s;
  fe->augment = v;
  return 0;
}

static int parse_training(snc_fe *fe, yaml_node_t *m) {
  snc_train_cfg *t = &fe->g->train;
  long long v;
  double d;
  *t = (snc_train_cfg){.optimizer = SNC_OPT_ADAM, .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .epochs = 25,
                       .batch_size = 100, .seed = 1, .pct_start = 0.3f, .div_factor = 25, .final_div_factor = 1e4f};
  fe->g->batch = t->batch_size;
  if (!m) return 0;
  if (snc_fe_expect_map(fe, m, "training") ||
      snc_fe_check_keys(fe, m, "training",
                        (const char *const[]){"optimizer", "lr", "betas", "eps", "weight_decay", "momentum",
                                              "nesterov", "epochs", "batch_size", "seed", "schedule", "augment", NULL}))
    return -1;
  yaml_node_t *opt = snc_fe_get(fe, m, "optimizer", NULL);
  if (opt) {
    const char *s = snc_fe_scalar(opt);
    if (s && !strcmp(s, "adam")) t->optimizer = SNC_OPT_ADAM;
    else if (s && !strcmp(s, "sgd")) t->optimizer = SNC_OPT_SGD;
    else return snc_fe_error(fe, opt, "optimizer must be adam or sgd, got '%s'", s ? s : "(not a name)");
  }
  if (snc_fe_opt_float(fe, m, "lr", 0, 1e3, t->optimizer == SNC_OPT_ADAM ? 1e-3 : 1e-2, &d)) return -1;
  t->lr = (float)d;
  yaml_node_t *betas = snc_fe_get(fe, m, "betas", NULL);
  if (betas) {
    double b1, b2;
    if (betas->type != YAML_SEQUENCE_NODE || betas->data.sequence.items.top - betas->data.sequence.items.start != 2)
      return snc_fe_error(fe, betas, "betas must be a list of two numbers, like [0.9, 0.999]");
    if (snc_fe_float(fe, snc_fe_node(fe, betas->data.sequence.items.start[0]), "beta1", 0, 0.999999, &b1) ||
        snc_fe_float(fe, snc_fe_node(fe, betas->data.sequence.items.start[1]), "beta2", 0, 0.999999999, &b2))
      return -1;
    t->beta1 = (float)b1;
    t->beta2 = (float)b2;
  }
  if (snc_fe_opt_float(fe, m, "eps", 0, 1, 1e-8, &d)) return -1;
  t->eps = (float)d;
  if (snc_fe_opt_float(fe, m, "weight_decay", 0, 1e3, 0, &d)) return -1;
  t->weight_decay = (float)d;
  if (snc_fe_opt_float(fe, m, "momentum", 0, 0.999999, 0, &d)) return -1;
  t->momentum = (float)d;
  if (snc_fe_opt_bool(fe, m, "nesterov", 0, &t->nesterov)) return -1;
  if (snc_fe_opt_int(fe, m, "epochs", 1, 1000000, 25, &v)) return -1;
  t->epochs = (int)v;
  if (snc_fe_opt_int(fe, m, "batch_size", 1, 1 << 20, 100, &v)) return -1;
  t->batch_size = (int)v;
  if (snc_fe_opt_int(fe, m, "seed", 0, INT64_MAX, 1, &v)) return -1;
  t->seed = (uint64_t)v;
  if (t->optimizer == SNC_OPT_ADAM && snc_fe_get(fe, m, "momentum", NULL))
    return snc_fe_error(fe, snc_fe_get(fe, m, "momentum", NULL), "momentum is for sgd; adam uses betas");
  if (fe->batch > 0) t->batch_size = fe->batch; /* snc_model_load_batch */
  fe->g->batch = t->batch_size;
  return parse_schedule(fe, snc_fe_get(fe, m, "schedule", NULL)) || parse_augment(fe, snc_fe_get(fe, m, "augment", NULL));
}

static int parse_data(snc_fe *fe, yaml_node_t *m) {
  snc_data_cfg *d = &fe->g->data;
  long long v;
  if (!m) return 0;
  if (snc_fe_expect_map(fe, m, "data") ||
      snc_fe_check_keys(fe, m, "data", (const char *const[]){"generator", "train", "test", "dataset", "standardize", NULL}))
    return -1;
  yaml_node_t *gen = snc_fe_get(fe, m, "generator", NULL);
  if (!gen) return snc_fe_error(fe, m, "data needs 'generator' (mnist_pairs or mnist_digits)");
  if (snc_fe_str(fe, gen, "generator", &d->generator)) return -1;
  int found = 0;
  for (int i = 0; i < NGEN; i++) found |= !strcmp(generators[i].name, d->generator);
  if (!found) {
    const char *names[NGEN];
    for (int i = 0; i < NGEN; i++) names[i] = generators[i].name;
    const char *hint = snc_fe_suggest(d->generator, names, NGEN);
    if (hint) return snc_fe_error(fe, gen, "unknown generator '%s' (did you mean '%s'?)", d->generator, hint);
    return snc_fe_error(fe, gen, "unknown generator '%s' (expected mnist_pairs or mnist_digits)", d->generator);
  }
  if (snc_fe_opt_int(fe, m, "train", 1, 10000000, 1000, &v)) return -1;
  d->train_size = (int)v;
  if (snc_fe_opt_int(fe, m, "test", 1, 10000000, 1000, &v)) return -1;
  d->test_size = (int)v;
  yaml_node_t *ds = snc_fe_get(fe, m, "dataset", NULL);
  if (ds) {
    if (snc_fe_str(fe, ds, "dataset", &d->dataset)) return -1;
    if (!strcmp(d->dataset, "bundled")) d->dataset = NULL;
  }
  return snc_fe_opt_bool(fe, m, "standardize", 1, &d->standardize);
}

static const stream_def *find_stream(const char *gen, const char *name) {
  for (int i = 0; i < NGEN; i++)
    if (gen && !strcmp(generators[i].name, gen))
      for (const stream_def *s = generators[i].streams; s->name; s++)
        if (!strcmp(s->name, name)) return s;
  return NULL;
}

static int parse_inputs(snc_fe *fe, yaml_node_t *root, yaml_node_t *m) {
  if (!m) return snc_fe_error(fe, root, "the model has no 'inputs' section");
  if (snc_fe_expect_map(fe, m, "inputs")) return -1;
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *k = snc_fe_node(fe, p->key), *v = snc_fe_node(fe, p->value);
    const char *name = snc_fe_scalar(k), *source;
    if (!name || !*name || strchr(name, '.')) return snc_fe_error(fe, k, "input names must be plain names");
    if (snc_fe_expect_map(fe, v, "an input") ||
        snc_fe_check_keys(fe, v, "input", (const char *const[]){"shape", "dtype", "source", NULL}))
      return -1;
    yaml_node_t *shape = snc_fe_get(fe, v, "shape", NULL), *dt = snc_fe_get(fe, v, "dtype", NULL);
    if (!shape || shape->type != YAML_SEQUENCE_NODE)
      return snc_fe_error(fe, shape ? shape : v, "input '%s' needs 'shape', a list of per-sample dimensions", name);
    snc_shape s = {0};
    for (yaml_node_item_t *it = shape->data.sequence.items.start; it < shape->data.sequence.items.top; it++) {
      long long d;
      if (s.rank == SNC_MAX_DIMS - 1) return snc_fe_error(fe, shape, "input '%s' has too many dimensions", name);
      if (snc_fe_int(fe, snc_fe_node(fe, *it), "dimension", 1, 1 << 30, &d)) return -1;
      s.dim[s.rank++] = d;
    }
    snc_dtype dtype = SNC_F32;
    if (dt) {
      const char *ds = snc_fe_scalar(dt);
      if (ds && !strcmp(ds, "int32")) dtype = SNC_I32;
      else if (!ds || strcmp(ds, "float32")) return snc_fe_error(fe, dt, "dtype must be float32 or int32");
    }
    int id = snc_graph_input(fe->g, name, dtype, &s, snc_fe_loc(fe, k), fe->err);
    if (id < 0) return -1;
    yaml_node_t *src = snc_fe_get(fe, v, "source", NULL);
    source = name;
    if (src && snc_fe_str(fe, src, "source", &source)) return -1;
    fe->g->nodes[id]->source = snc_arena_strdup(&fe->g->arena, source);
    snc_fe_alias(fe, name, id);
    if (fe->g->data.generator) {
      const stream_def *sd = find_stream(fe->g->data.generator, source);
      int ok = sd && sd->dtype == dtype && sd->rank == s.rank;
      for (int i = 0; ok && i < s.rank; i++) ok = sd->dim[i] == s.dim[i];
      if (!sd) return snc_fe_error(fe, src ? src : k, "generator '%s' has no stream '%s'", fe->g->data.generator, source);
      if (!ok) {
        char want[64];
        snc_shape ws = {sd->rank, {sd->dim[0], sd->dim[1], sd->dim[2]}};
        return snc_fe_error(fe, shape, "input '%s': generator '%s' provides %s %s per sample", name,
                            fe->g->data.generator, sd->dtype == SNC_F32 ? "float32" : "int32",
                            snc_shape_str(&ws, 0, want, sizeof want));
      }
    }
  }
  return 0;
}

/* augmentation shifts images: float inputs of per-sample shape [C,H,W]; there must be one */
static int check_augment(snc_fe *fe) {
  const snc_train_cfg *t = &fe->g->train;
  if (!t->augment_shift && !(t->augment_rotate > 0) && !(t->augment_scale > 0) && !(t->augment_elastic > 0)) return 0;
  for (int i = 0; i < fe->g->nnodes; i++) {
    const snc_node *n = fe->g->nodes[i];
    if (n->op == SNC_OP_INPUT && n->dtype == SNC_F32 && n->shape.rank == 4) return 0;
  }
  return snc_fe_error(fe, fe->augment, "augment: %s needs an image input (float32, per-sample shape [C,H,W])",
                      t->augment_shift          ? "shift"
                      : t->augment_rotate > 0   ? "rotate"
                      : t->augment_scale > 0    ? "scale"
                                                : "elastic");
}

static int parse_outputs(snc_fe *fe, yaml_node_t *m) {
  snc_graph *g = fe->g;
  if (!m) return 0;
  if (snc_fe_expect_map(fe, m, "outputs")) return -1;
  int n = (int)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
  g->outputs = snc_arena_alloc(&g->arena, (size_t)(n ? n : 1) * sizeof *g->outputs);
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *k = snc_fe_node(fe, p->key), *v = snc_fe_node(fe, p->value);
    if (snc_fe_expect_map(fe, v, "an output") ||
        snc_fe_check_keys(fe, v, "output", (const char *const[]){"from", "target", NULL}))
      return -1;
    snc_output *o = &g->outputs[g->noutputs];
    if (!snc_fe_scalar(k)) return snc_fe_error(fe, k, "output names must be plain names");
    o->name = snc_arena_strdup(&g->arena, snc_fe_scalar(k));
    const char *names[2] = {"from", "target"};
    int *ids[2] = {&o->node, &o->target};
    for (int i = 0; i < 2; i++) {
      yaml_node_t *r = snc_fe_get(fe, v, names[i], NULL);
      const char *s = snc_fe_scalar(r);
      if (!r) return snc_fe_error(fe, v, "output '%s' needs '%s'", o->name, names[i]);
      if ((*ids[i] = s ? snc_fe_lookup(fe, s) : -1) < 0)
        return snc_fe_error(fe, r, "output '%s': unknown layer or input '%s'", o->name, s ? s : "(list)");
    }
    const snc_node *pred = g->nodes[o->node], *tgt = g->nodes[o->target];
    char sp[64], st[64];
    int64_t per_pred = snc_shape_numel(&pred->shape) / g->batch, per_tgt = snc_shape_numel(&tgt->shape) / g->batch;
    int64_t last = pred->shape.rank > 1 ? pred->shape.dim[pred->shape.rank - 1] : 1; /* [B]: one probability */
    int ok = tgt->dtype == SNC_I32 && (pred->flags & tgt->flags & SNC_NF_BATCHED) && pred->dtype == SNC_F32 &&
             (last >= 2 ? per_pred / last == per_tgt : per_pred == per_tgt);
    if (!ok)
      return snc_fe_error(fe, v, "output '%s': prediction '%s' %s does not match int32 labels '%s' %s", o->name,
                          pred->name, snc_shape_str(&pred->shape, 1, sp, sizeof sp), tgt->name,
                          snc_shape_str(&tgt->shape, 1, st, sizeof st));
    g->noutputs++;
  }
  return 0;
}

/* The total loss: the sum of the weighted terms (a single unweighted term is the loss itself). */
static int total_loss(snc_fe *fe, yaml_node_t *losses) {
  snc_graph *g = fe->g;
  int terms[64], n = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->flags & SNC_NF_LOSS) {
      if (n == 64) return snc_fe_error(fe, losses, "at most 64 loss terms");
      terms[n++] = i;
    }
  if (n == 0) return 0;
  if (n == 1 && g->nodes[terms[0]]->weight == 1.0f) return g->loss = terms[0], 0;
  snc_loc loc = snc_fe_loc(fe, losses);
  for (int i = 0; i < n; i++) {
    const snc_node *t = g->nodes[terms[i]];
    if (t->weight == 1.0f) continue;
    snc_attrs a = {.alpha = t->weight};
    const char *name = snc_arena_printf(&g->arena, "%s.weighted", t->name);
    if ((terms[i] = snc_graph_add(g, SNC_OP_SCALE, name, &terms[i], 1, &a, loc, fe->err)) < 0) return -1;
  }
  if (n == 1) return g->loss = terms[0], 0;
  g->loss = snc_graph_add(g, SNC_OP_ADD, "loss", terms, n, NULL, loc, fe->err);
  return g->loss < 0 ? -1 : 0;
}

static snc_graph *build(snc_fe *fe, const snc_override *sets, int nsets) {
  yaml_node_t *root = yaml_document_get_root_node(&fe->doc);
  if (!root) {
    snc_errorf(fe->err, "%s: the file is empty", fe->file);
    return NULL;
  }
  yaml_node_t *namenode = snc_fe_get(fe, root, "model", NULL);
  fe->g = snc_graph_new(snc_fe_scalar(namenode) ? snc_fe_scalar(namenode) : "model", fe->file);
  fe->file = fe->g->file; /* the graph's copy outlives the caller's string */
  if (snc_fe_expect_map(fe, root, "a model file") || snc_fe_check_keys(fe, root, "model file", top_keys)) goto fail;
  if (!snc_fe_get(fe, root, "graph", NULL)) {
    snc_fe_error(fe, root, "the model has no 'graph' section");
    goto fail;
  }
  fe->networks = snc_fe_get(fe, root, "networks", NULL);
  if (fe->networks && snc_fe_expect_map(fe, fe->networks, "networks")) goto fail;
  if (parse_switches(fe, snc_fe_get(fe, root, "switches", NULL), sets, nsets) ||
      parse_training(fe, snc_fe_get(fe, root, "training", NULL)) ||
      parse_data(fe, snc_fe_get(fe, root, "data", NULL)) || parse_inputs(fe, root, snc_fe_get(fe, root, "inputs", NULL)) ||
      check_augment(fe) || snc_fe_constants(fe, snc_fe_get(fe, root, "constants", NULL)))
    goto fail;
  snc_scope main = {"", "", -1};
  int last;
  if (snc_fe_layers(fe, snc_fe_get(fe, root, "graph", NULL), &main, 0, &last)) goto fail;
  yaml_node_t *losses = snc_fe_get(fe, root, "losses", NULL);
  if (losses && (snc_fe_layers(fe, losses, &main, 1, &last) || total_loss(fe, losses))) goto fail;
  if (parse_outputs(fe, snc_fe_get(fe, root, "outputs", NULL))) goto fail;
  fe->g->nforward = fe->g->nnodes;
  if (snc_graph_verify(fe->g, fe->err)) goto fail;
  return fe->g;
fail:
  snc_graph_free(fe->g);
  return NULL;
}

static snc_graph *load_text(const char *text, size_t len, const char *name, const snc_override *sets, int nsets,
                            int batch, snc_error *err) {
  yaml_parser_t parser;
  snc_fe fe = {.file = name, .err = err, .batch = batch};
  snc_graph *g = NULL;
  if (snc_fe_prescan(text, len, name, err)) return NULL; /* limits first: the loader below is not linear in depth */
  if (!yaml_parser_initialize(&parser)) {
    snc_errorf(err, "%s: cannot initialise the YAML parser", name);
    return NULL;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (!yaml_parser_load(&parser, &fe.doc)) {
    yaml_mark_t m = parser.problem_mark;
    snc_errorf(err, "%s:%d:%d: YAML syntax error: %s%s%s", name, (int)m.line + 1, (int)m.column + 1,
               parser.problem ? parser.problem : "malformed document", parser.context ? " " : "",
               parser.context ? parser.context : "");
    yaml_parser_delete(&parser);
    return NULL;
  }
  g = build(&fe, sets, nsets); /* the prescan refused a second document */
  snc_strmap_free(&fe.alias_index);
  snc_strmap_free(&fe.instance_index);
  snc_strmap_free(&fe.network_index);
  yaml_document_delete(&fe.doc);
  yaml_parser_delete(&parser);
  return g;
}

snc_graph *snc_model_load_text(const char *text, size_t len, const char *name, const snc_override *sets, int nsets,
                               snc_error *err) {
  return load_text(text, len, name, sets, nsets, 0, err);
}

snc_graph *snc_model_load(const char *path, const snc_override *sets, int nsets, snc_error *err) {
  return snc_model_load_batch(path, sets, nsets, 0, err);
}

snc_graph *snc_model_load_batch(const char *path, const snc_override *sets, int nsets, int batch, snc_error *err) {
  if (snc_onnx_is_path(path)) return snc_onnx_load_any(path, sets, nsets, batch, NULL, err); /* docs/onnx.md */
  FILE *f = fopen(path, "rb");
  if (!f) return snc_errorf(err, "%s: cannot open: %s", path, strerror(errno)), NULL;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      if (cap > SNC_YAML_MAX_BYTES) break; /* one byte past the limit was read: snc_fe_prescan says where */
      cap = cap ? 2 * cap : 65536;
      if (cap > SNC_YAML_MAX_BYTES) cap = SNC_YAML_MAX_BYTES + 1;
      char *nb = realloc(buf, cap);
      if (!nb) {
        snc_errorf(err, "%s: out of memory", path);
        goto fail;
      }
      buf = nb;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  if (ferror(f)) {
    snc_errorf(err, "%s: read error: %s", path, strerror(errno));
    goto fail;
  }
  fclose(f);
  snc_graph *g = load_text(buf, len, path, sets, nsets, batch, err);
  free(buf);
  return g;
fail:
  fclose(f);
  free(buf);
  return NULL;
}
