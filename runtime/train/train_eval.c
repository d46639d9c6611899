/* Batches and evaluation: copying samples into a backend's inputs (with the epoch's augmentation) and
 * counting correct predictions over a split (runtime/train/train_internal.h). */
#include <math.h>
#include <string.h>

#include "snc/dist.h"
#include "train_internal.h"

static const snc_stream *stream_of(const snc_split *s, const snc_node *in) {
  const char *name = in->source ? in->source : in->name;
  for (int i = 0; i < s->nstreams; i++)
    if (!strcmp(s->s[i].name, name)) return &s->s[i];
  return NULL;
}

/* Copies samples idx[0..nb) (or first..first+nb when idx is NULL) of every stream into the INPUT
 * buffers, shifting images when aug is not NULL. Bindings were checked by snc_train_data_check. */
void snc_train_load_batch(const snc_graph *g, snc_backend *be, const snc_split *s, const uint32_t *idx, int64_t first,
                          int64_t nb, const snc_train_augment *aug) {
  for (int i = 0; i < g->nforward; i++) {
    const snc_node *n = g->nodes[i];
    if (n->op != SNC_OP_INPUT) continue;
    const snc_stream *st = stream_of(s, n);
    SNC_ASSERT(st);
    size_t row = (size_t)st->per * 4; /* float32 and int32 alike */
    char *dst = be->buf(be, i);
    const char *src = st->data;
    int shift = aug && aug->shift && n->dtype == SNC_F32 && n->shape.rank == 4;
    for (int64_t r = 0; r < nb; r++) {
      int64_t k = idx ? (int64_t)idx[first + r] : first + r;
      if (!shift) {
        memcpy(dst + (size_t)r * row, src + (size_t)k * row, row);
        continue;
      }
      int64_t c = n->shape.dim[1], h = n->shape.dim[2], w = n->shape.dim[3];
      for (int64_t ch = 0; ch < c; ch++)
        snc_augment_image(&g->train, aug->key, aug->epoch, k * c + ch, (float *)(dst + (size_t)r * row) + ch * h * w,
                          (const float *)(src + (size_t)k * row) + ch * h * w, h, w, aug->fill);
    }
  }
}

/* Correct predictions of output o in the first nb rows, out of nb * labels-per-sample. */
static int64_t count_correct(const snc_graph *g, snc_backend *be, const snc_output *o, int64_t nb, int64_t *total) {
  const snc_node *p = g->nodes[o->node], *t = g->nodes[o->target];
  int64_t per_pred = snc_shape_numel(&p->shape) / g->batch, per_tgt = snc_shape_numel(&t->shape) / g->batch;
  int64_t last = p->shape.rank > 1 ? p->shape.dim[p->shape.rank - 1] : 1;
  const float *pred = be->buf(be, o->node);
  const int32_t *lab = be->buf(be, o->target);
  int64_t ok = 0;
  for (int64_t i = 0; i < nb * per_tgt; i++) {
    int guess;
    if (last >= 2) {
      const float *row = pred + i * last;
      guess = 0;
      for (int64_t c = 1; c < last; c++)
        if (row[c] > row[guess]) guess = (int)c;
    } else {
      guess = pred[i] > 0.5f;
    }
    ok += guess == lab[i];
  }
  (void)per_pred;
  *total += nb * per_tgt;
  return ok;
}

/* Samples [lo, hi) of s; sums[0] = loss * samples, then correct and total per output. */
static void eval_range(const snc_graph *g, snc_backend *be, const snc_split *s, uint64_t seed, int64_t lo, int64_t hi,
                       int nout, double *sums) {
  for (int64_t first = lo; first < hi; first += g->batch) {
    int64_t nb = hi - first < g->batch ? hi - first : g->batch, tot = 0;
    snc_kctx ctx = {.nb = nb, .seed = seed, .step = 1, .training = 0, .lr_scale = 1};
    snc_train_load_batch(g, be, s, NULL, first, nb, NULL);
    be->run(be, SNC_RUN_FORWARD, &ctx);
    if (g->loss >= 0) sums[0] += (double)*(float *)be->buf(be, g->loss) * (double)nb;
    for (int k = 0; k < nout; k++, tot = 0) {
      sums[1 + 2 * k] += (double)count_correct(g, be, &g->outputs[k], nb, &tot);
      sums[2 + 2 * k] += (double)tot;
    }
  }
}

void snc_train_evaluate(const snc_graph *g, snc_backend *be, const snc_split *s, uint64_t seed, snc_eval_result *r,
                        int dist) {
  double sums[1 + 2 * SNC_TRAIN_MAX_OUTPUTS] = {0};
  memset(r, 0, sizeof *r);
  r->n = s->n;
  r->noutputs = g->noutputs < SNC_TRAIN_MAX_OUTPUTS ? g->noutputs : SNC_TRAIN_MAX_OUTPUTS;
  int64_t lo = 0, hi = s->n;
  if (dist) lo = s->n * snc_dist_rank() / snc_dist_size(), hi = s->n * (snc_dist_rank() + 1) / snc_dist_size();
  eval_range(g, be, s, seed, lo, hi, r->noutputs, sums);
  if (dist) snc_dist_allreduce_f64(sums, 1 + 2 * r->noutputs); /* counts: exact in doubles */
  r->loss = g->loss >= 0 && s->n ? sums[0] / (double)s->n : NAN;
  for (int k = 0; k < r->noutputs; k++) r->acc[k] = sums[2 + 2 * k] > 0 ? sums[1 + 2 * k] / sums[2 + 2 * k] : 0;
}

void snc_evaluate(const snc_graph *g, snc_backend *be, const snc_split *s, uint64_t seed, snc_eval_result *r) {
  snc_train_evaluate(g, be, s, seed, r, 0);
}

/* ---- evaluation on a wider build ---------------------------------------------------------------- */

int snc_eval_batch(const snc_graph *g, int jit, int requested) {
  if (!jit) return 0;
  int batch = requested;
  if (batch < 0) { /* automatic: the lanes an evaluation of the test set runs on, calls times padded rows
                      per build (an unknown size counts as large); worth a second build from 5% fewer */
    double n = g->data.test_size > 0 ? (double)g->data.test_size : 1e6, E = SNC_EVAL_BATCH;
    double train = ceil(n / g->batch) * snc_cg_batch_lanes(g->batch), wide = ceil(n / E) * E;
    batch = g->batch < SNC_EVAL_BATCH && wide <= 0.95 * train ? SNC_EVAL_BATCH : 0;
  }
  int64_t most = g->data.test_size > g->data.train_size ? g->data.test_size : g->data.train_size;
  if (most > 0 && batch > most) batch = (int)most; /* rows past the larger split would only be padding */
  return batch > g->batch ? batch : 0;
}

int snc_eval_build_new(const char *path, const snc_override *sets, int nsets, int batch, const snc_jit_backend_opts *jo,
                       snc_graph **eg, snc_backend **ebe, snc_error *err) {
  *eg = NULL, *ebe = NULL;
  snc_graph *g = snc_model_load_batch(path, sets, nsets, batch, err);
  if (!g) return -1;
  snc_backend *be = snc_backend_jit_new(g, jo, err);
  if (!be) {
    snc_graph_free(g);
    return -1;
  }
  be->init_params(be, 0); /* constants; the parameters come from the training build (snc_train_eval_sync) */
  *eg = g, *ebe = be;
  return 0;
}

int snc_train_eval_sync(const snc_graph *g, snc_backend *be, const snc_graph *eg, snc_backend *ebe, snc_error *err) {
  for (int j = 0; j < eg->nforward; j++) {
    const snc_node *m = eg->nodes[j];
    if (m->op != SNC_OP_PARAM) continue;
    const snc_node *n = NULL;
    for (int i = 0; i < g->nforward && !n; i++)
      if (g->nodes[i]->op == SNC_OP_PARAM && !strcmp(g->nodes[i]->name, m->name)) n = g->nodes[i];
    if (!n || snc_shape_numel(&n->shape) != snc_shape_numel(&m->shape))
      return snc_errorf(err, "%s: the evaluation build's %s has no counterpart of its shape in the training build",
                        eg->file, m->name);
    memcpy(ebe->buf(ebe, j), be->buf(be, n->id), (size_t)snc_shape_numel(&m->shape) * 4);
  }
  return 0;
}
