/* --check-numerics: stop training at the first NaN or Inf and name the tensor it came from; see
 * runtime/numerics.h. */
#include "numerics.h"

#include <math.h>
#include <string.h>

struct snc_numerics {
  const snc_graph *g;
  int nparams;
  int *param;      /* PARAM node ids (parameters, optimizer and batch-norm state, the step) */
  size_t *off;     /* float offset of each in saved */
  float *saved;    /* their values before the current step, owned */
};

static int64_t numel(const snc_node *n) { return snc_shape_numel(&n->shape); }

snc_numerics *snc_numerics_new(const snc_graph *g, snc_error *err) {
  snc_numerics *nc = calloc(1, sizeof *nc);
  if (!nc) goto oom;
  nc->g = g;
  nc->param = calloc((size_t)g->nnodes + 1, sizeof *nc->param);
  nc->off = calloc((size_t)g->nnodes + 1, sizeof *nc->off);
  if (!nc->param || !nc->off) goto oom;
  size_t total = 0;
  for (int i = 0; i < g->nnodes; i++) {
    if (g->nodes[i]->op != SNC_OP_PARAM) continue;
    nc->param[nc->nparams] = i;
    nc->off[nc->nparams++] = total;
    total += (size_t)numel(g->nodes[i]);
  }
  if (!(nc->saved = malloc((total ? total : 1) * sizeof *nc->saved))) goto oom;
  return nc;
oom:
  snc_numerics_free(nc);
  snc_errorf(err, "%s: out of memory for --check-numerics", g->file);
  return NULL;
}

void snc_numerics_free(snc_numerics *nc) {
  if (!nc) return;
  free(nc->param);
  free(nc->off);
  free(nc->saved);
  free(nc);
}

void snc_numerics_save(snc_numerics *nc, snc_backend *be) {
  for (int k = 0; k < nc->nparams; k++) {
    const snc_node *n = nc->g->nodes[nc->param[k]];
    memcpy(nc->saved + nc->off[k], be->buf(be, n->id), (size_t)numel(n) * sizeof(float));
  }
}

/* Index of the first non-finite float of x[0..n), or -1. Sums first: one pass, vectorisable. */
static int64_t first_bad(const float *x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; i++) s += x[i] * 0.0f; /* 0 unless some x[i] is NaN or Inf */
  if (s == 0) return -1;
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return i;
  return -1;
}

int snc_numerics_ok(const snc_numerics *nc, snc_backend *be) {
  const snc_graph *g = nc->g;
  if (g->loss >= 0 && !isfinite(*(const float *)be->buf(be, g->loss))) return 0;
  for (int k = 0; k < nc->nparams; k++) {
    const snc_node *n = g->nodes[nc->param[k]];
    if (first_bad(be->buf(be, n->id), numel(n)) >= 0) return 0;
  }
  return 1;
}

snc_backend *snc_numerics_replay_backend(const snc_numerics *nc, snc_error *err) {
  snc_backend *ref = snc_backend_ref_new(nc->g, err);
  if (!ref) return NULL;
  ref->init_params(ref, 0); /* constants; the parameters come from the copy */
  for (int k = 0; k < nc->nparams; k++) {
    const snc_node *n = nc->g->nodes[nc->param[k]];
    memcpy(ref->buf(ref, n->id), nc->saved + nc->off[k], (size_t)numel(n) * sizeof(float));
  }
  return ref;
}

static const char *bad_str(float v) { return isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

int snc_numerics_report(const snc_numerics *nc, snc_backend *be, snc_backend *ref, int epoch, int64_t step,
                        int64_t nb, snc_error *err) {
  const snc_graph *g = nc->g;
  char what[160] = "", where[400] = "";
  float loss = g->loss >= 0 ? *(const float *)be->buf(be, g->loss) : 0;
  if (!isfinite(loss)) snprintf(what, sizeof what, "the loss is %s", bad_str(loss));
  /* the replayed step: every node in graph order (one buffer per node in the reference executor);
   * parameters are read as they were before the step, then as the updates left them */
  for (int i = 0; ref && i < g->nnodes && !where[0]; i++) {
    const snc_node *n = g->nodes[i];
    if (n->op == SNC_OP_PARAM || n->op == SNC_OP_INPUT || (n->flags & SNC_NF_EFFECT) || n->dtype != SNC_F32) continue;
    int64_t e = numel(n);
    if ((n->flags & SNC_NF_BATCHED) && g->batch > 0) e = e / g->batch * nb; /* rows of this batch only */
    const float *x = ref->buf(ref, i);
    int64_t at = first_bad(x, e);
    if (at < 0) continue;
    char sh[64];
    snprintf(where, sizeof where, "%s:%d:%d: %s '%s' %s (%s pass) holds %s at element %lld", n->loc.file ? n->loc.file : g->file,
             n->loc.line, n->loc.col, snc_op_name(n->op), n->name, snc_shape_str(&n->shape, (n->flags & SNC_NF_BATCHED) != 0, sh, sizeof sh),
             i < g->nforward ? "forward" : "backward", bad_str(x[at]), (long long)at);
  }
  for (int pass = 0; pass < 2 && !where[0]; pass++) { /* the updates: ref's replay, else be's own buffers */
    snc_backend *b = pass == 0 ? ref : be;
    for (int k = 0; b && k < nc->nparams && !where[0]; k++) {
      const snc_node *n = g->nodes[nc->param[k]];
      const float *x = b->buf(b, n->id);
      int64_t at = first_bad(x, numel(n));
      if (at >= 0)
        snprintf(where, sizeof where, "%s:%d:%d: parameter '%s' holds %s at element %lld after the optimizer update",
                 n->loc.file ? n->loc.file : g->file, n->loc.line, n->loc.col, n->name, bad_str(x[at]), (long long)at);
    }
  }
  if (!what[0]) snprintf(what, sizeof what, "a parameter or optimizer state is no longer finite");
  return snc_errorf(err, "%s: --check-numerics: epoch %d, step %lld: %s; first tensor that went bad: %s", g->file, epoch,
                    (long long)step, what, where[0] ? where : "the loss itself (the step replayed on the reference executor stays finite: the backend computes differently here)");
}
