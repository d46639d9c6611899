/* Training and test sets for a model: drawn by the model's generator, standardised, bound to the
 * model's INPUT nodes and checked against what the model expects of its labels. */
#include <math.h>
#include <pthread.h>
#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "snc/train.h"

static snc_stream stream(const char *name, snc_dtype dt, int64_t per, void *data) {
  return (snc_stream){name, dt, per, data};
}

static void bind_pairs(snc_split *s, const snc_pairs *p) {
  s->n = p->n;
  s->nstreams = 3;
  s->s[0] = stream("pair", SNC_F32, 2 * SNC_PAIR_SIDE * SNC_PAIR_SIDE, p->images);
  s->s[1] = stream("target", SNC_I32, 1, p->target);
  s->s[2] = stream("classes", SNC_I32, 2, p->classes);
}

static void bind_digits(snc_split *s, const snc_digits *d) {
  s->n = d->n;
  s->nstreams = 2;
  s->s[0] = stream("image", SNC_F32, SNC_PAIR_SIDE * SNC_PAIR_SIDE, d->images);
  s->s[1] = stream("label", SNC_I32, 1, d->labels);
}

void snc_train_data_free(snc_train_data *d) {
  if (!d) return;
  for (int i = 0; i < 2; i++) {
    snc_pairs_free(&d->pairs[i]);
    snc_digits_free(&d->digits[i]);
  }
  memset(d, 0, sizeof *d);
}

/* (x - mean) / std in place, the same arithmetic as the data pipeline's standardisation. */
static void apply_stats(float *x, int64_t n, float mean, float std) {
  for (int64_t i = 0; i < n; i++) x[i] = (x[i] - mean) / std;
}

/* Draws split `which` (0 train, 1 test) of n samples from the pool in dir. */
static int draw(const snc_graph *g, snc_train_data *d, int which, int64_t n, uint64_t seed, snc_error *err) {
  int pairs = !strcmp(d->generator, "mnist_pairs"), rc = -1;
  const snc_dataset *pool = snc_dataset_acquire(d->dir, which, err);
  if (!pool) return -1; /* its message names the file */
  if (pairs) {
    if (snc_pairs_generate(pool, n, seed, &d->pairs[which], err) != 0) goto cleanup;
    bind_pairs(which ? &d->test : &d->train, &d->pairs[which]);
  } else {
    if (snc_digits_generate(pool, n, seed, &d->digits[which], err) != 0) goto cleanup;
    bind_digits(which ? &d->test : &d->train, &d->digits[which]);
  }
  rc = 0;
cleanup:
  if (rc) {
    snc_error inner = *err; /* say which model asked for the draw */
    snc_errorf(err, "%s: data: %s", g->file, inner.msg);
  }
  snc_dataset_release(pool);
  return rc;
}

int snc_train_data_load(const snc_graph *g, const char *dir, uint64_t seed, const float *stored_ms,
                        snc_train_data *d, snc_error *err) {
  memset(d, 0, sizeof *d);
  const char *gen = g->data.generator ? g->data.generator : "";
  if (strcmp(gen, "mnist_pairs") && strcmp(gen, "mnist_digits"))
    return snc_errorf(err, "%s: data: unknown generator '%s' (known: mnist_pairs, mnist_digits)", g->file, gen);
  if (g->data.test_size < 1 || (!stored_ms && g->data.train_size < 1))
    return snc_errorf(err, "%s: data: needs at least one training and one test sample (train %d, test %d)", g->file,
                      g->data.train_size, g->data.test_size);
  d->generator = gen;
  d->dir = dir ? dir : g->data.dataset;
  if (!stored_ms && draw(g, d, 0, g->data.train_size, snc_seed_derive(seed, SNC_SEED_DATA_TRAIN), err) != 0)
    goto fail;
  if (draw(g, d, 1, g->data.test_size, snc_seed_derive(seed, SNC_SEED_DATA_TEST), err) != 0) goto fail;
  d->mean = 0;
  d->std = 1;
  if (g->data.standardize) {
    int pairs = !strcmp(gen, "mnist_pairs");
    if (stored_ms) {
      if (!(stored_ms[1] > 0) || !isfinite(stored_ms[0]) || !isfinite(stored_ms[1])) {
        snc_errorf(err, "%s: data: stored standardisation mean %g std %g is unusable", g->file, stored_ms[0],
                   stored_ms[1]);
        goto fail;
      }
      d->mean = stored_ms[0];
      d->std = stored_ms[1];
      apply_stats(d->test.s[0].data, d->test.n * d->test.s[0].per, d->mean, d->std);
    } else {
      int rc = pairs ? snc_pairs_standardise(&d->pairs[0], &d->pairs[1], &d->mean, &d->std, err)
                     : snc_digits_standardise(&d->digits[0], &d->digits[1], &d->mean, &d->std, err);
      if (rc) goto fail;
    }
    d->standardized = 1;
  }
  if (snc_train_data_check(g, d, err) != 0) goto fail;
  return 0;
fail:
  snc_train_data_free(d);
  return -1;
}

/* ---- the draw on a thread of its own (snc_train_prefetch_start) -------------------------------- */

struct snc_train_prefetch {
  pthread_t thread;
  int joined;
  const snc_graph *g;
  const char *dir;
  uint64_t seed;
  int rc, taken;
  snc_train_data d;
  snc_error err;
};

static void *prefetch_run(void *arg) {
  snc_train_prefetch *p = arg;
#ifdef __linux__
  /* the lowest priority: the draw fills the gaps of the compile (its serial parts) instead of taking
     a core from its two code generation threads; the run waits only for what is left */
  if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) != 0) { /* not allowed: the normal one */ }
#endif
  p->rc = snc_train_data_load(p->g, p->dir, p->seed, NULL, &p->d, &p->err);
  return NULL;
}

snc_train_prefetch *snc_train_prefetch_start(const snc_graph *g, const char *dir, uint64_t seed) {
  snc_train_prefetch *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->g = g, p->dir = dir, p->seed = seed;
  if (pthread_create(&p->thread, NULL, prefetch_run, p) != 0) { /* no thread: snc_train draws itself */
    free(p);
    return NULL;
  }
  return p;
}

static void prefetch_join(snc_train_prefetch *p) {
  if (p->joined) return;
  pthread_join(p->thread, NULL);
  p->joined = 1;
}

static int same_dir(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

int snc_train_prefetch_take(snc_train_prefetch *p, const snc_graph *g, const char *dir, uint64_t seed,
                            snc_train_data *d, snc_error *err) {
  prefetch_join(p);
  if (p->taken || p->g != g || !same_dir(p->dir, dir) || p->seed != seed) return 1;
  p->taken = 1;
  if (p->rc != 0) {
    *err = p->err;
    memset(d, 0, sizeof *d);
    return -1;
  }
  *d = p->d; /* the sets are the caller's now */
  memset(&p->d, 0, sizeof p->d);
  return 0;
}

void snc_train_prefetch_free(snc_train_prefetch *p) {
  if (!p) return;
  prefetch_join(p);
  snc_train_data_free(&p->d); /* what was not taken (freed already after a failed draw: a no-op) */
  free(p);
}

/* ---- checks ------------------------------------------------------------------------------------ */

static const snc_stream *find_stream(const snc_split *s, const char *name) {
  for (int i = 0; i < s->nstreams; i++)
    if (!strcmp(s->s[i].name, name)) return &s->s[i];
  return NULL;
}

/* The INPUT a label tensor comes from, through selections and reshapes; -1 when computed. */
static int label_source(const snc_graph *g, int id) {
  for (;;) {
    const snc_node *n = g->nodes[id];
    if (n->op == SNC_OP_INPUT) return id;
    if (n->op != SNC_OP_SLICE && n->op != SNC_OP_RESHAPE) return -1;
    id = n->inputs[0];
  }
}

/* Every label of the stream feeding `label_node` lies in [0, hi); else an error naming `what`. */
static int check_labels(const snc_graph *g, const snc_train_data *d, int label_node, int hi, const snc_node *user,
                        const char *what, snc_error *err) {
  int src = label_source(g, label_node);
  if (src < 0 || g->nodes[src]->dtype != SNC_I32) return 0;
  const snc_node *in = g->nodes[src];
  const snc_split *splits[2] = {&d->train, &d->test};
  const char *names[2] = {"training", "test"};
  for (int k = 0; k < 2; k++) {
    const snc_stream *s = find_stream(splits[k], in->source);
    if (!s || splits[k]->n == 0) continue;
    const int32_t *v = s->data;
    for (int64_t i = 0; i < splits[k]->n * s->per; i++) {
      if (v[i] >= 0 && v[i] < hi) continue;
      const char *msg = "%s %s sample %lld has label %d in stream '%s', outside [0, %d) expected here";
      if (user)
        return snc_node_errorf(g, user, err, msg, d->generator, names[k], (long long)(i / s->per), (int)v[i],
                               s->name, hi);
      snc_error tmp;
      snc_errorf(&tmp, msg, d->generator, names[k], (long long)(i / s->per), (int)v[i], s->name, hi);
      return snc_errorf(err, "%s: %s: %s", g->file, what, tmp.msg);
    }
  }
  return 0;
}

int snc_train_data_check(const snc_graph *g, const snc_train_data *d, snc_error *err) {
  if (g->noutputs > SNC_TRAIN_MAX_OUTPUTS)
    return snc_errorf(err, "%s: %d outputs; the runtime reports at most %d", g->file, g->noutputs,
                      SNC_TRAIN_MAX_OUTPUTS);
  for (int i = 0; i < g->nforward; i++) {
    const snc_node *n = g->nodes[i];
    if (n->op != SNC_OP_INPUT) continue;
    const snc_split *s = d->test.n ? &d->test : &d->train;
    const snc_stream *st = find_stream(s, n->source ? n->source : n->name);
    if (!st) {
      char known[128] = "";
      for (int k = 0; k < s->nstreams; k++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", k ? ", " : "", s->s[k].name);
      return snc_node_errorf(g, n, err, "binds to stream '%s', but generator %s streams %s",
                             n->source ? n->source : n->name, d->generator, known);
    }
    int64_t per = snc_shape_numel(&n->shape) / g->batch;
    if (st->dtype != n->dtype || per != st->per)
      return snc_node_errorf(g, n, err, "stream '%s' of %s has %lld %s values per sample, the input takes %lld %s",
                             st->name, d->generator, (long long)st->per, st->dtype == SNC_F32 ? "float32" : "int32",
                             (long long)per, n->dtype == SNC_F32 ? "float32" : "int32");
  }
  for (int i = 0; i < g->nforward; i++) {
    const snc_node *n = g->nodes[i];
    if (n->op == SNC_OP_ONE_HOT && check_labels(g, d, n->inputs[0], n->attr.classes, n, NULL, err)) return -1;
    if (n->op == SNC_OP_CROSS_ENTROPY) {
      const snc_node *z = snc_node_in(g, n, 0);
      if (check_labels(g, d, n->inputs[1], (int)z->shape.dim[z->shape.rank - 1], n, NULL, err)) return -1;
    }
  }
  for (int i = 0; i < g->noutputs; i++) {
    const snc_output *o = &g->outputs[i];
    const snc_node *p = g->nodes[o->node];
    int64_t last = p->shape.rank > 1 ? p->shape.dim[p->shape.rank - 1] : 1;
    char what[160];
    snprintf(what, sizeof what, "output '%s'", o->name);
    if (check_labels(g, d, o->target, last >= 2 ? (int)last : 2, NULL, what, err)) return -1;
  }
  return 0;
}
