/* Backends by name: the reference executor wrapped as a snc_backend, and the factory snrun uses
 * (include/snc/backend.h). */
#include <stdlib.h>
#include <string.h>

#include "snc/backend.h"

typedef struct {
  snc_backend base; /* first: a snc_backend* is a ref_backend* */
  snc_exec *ex;
} ref_backend;

static void *ref_buf(snc_backend *b, int node) { return snc_exec_buf(((ref_backend *)b)->ex, node); }
static void ref_init(snc_backend *b, uint64_t seed) { snc_exec_init_params(((ref_backend *)b)->ex, seed); }
static void ref_run(snc_backend *b, snc_run_kind kind, const snc_kctx *ctx) {
  snc_exec_run(((ref_backend *)b)->ex, kind, ctx);
}
static void ref_free(snc_backend *b) {
  if (!b) return;
  snc_exec_free(((ref_backend *)b)->ex);
  free(b);
}

snc_backend *snc_backend_ref_new(const snc_graph *g, snc_error *err) {
  ref_backend *r = calloc(1, sizeof *r);
  if (!r) {
    snc_errorf(err, "%s: out of memory for the reference backend", g->file);
    return NULL;
  }
  r->base = (snc_backend){"ref", ref_buf, ref_init, ref_run, ref_free};
  if (!(r->ex = snc_exec_new(g, err))) { /* err set by the executor */
    free(r);
    return NULL;
  }
  return &r->base;
}

snc_backend *snc_backend_new(const char *name, const snc_graph *g, snc_error *err) {
  if (!strcmp(name, "ref")) return snc_backend_ref_new(g, err);
  if (!strcmp(name, "jit")) return snc_backend_jit_new(g, NULL, err);
  snc_errorf(err, "unknown backend '%s' (known: jit, ref)", name);
  return NULL;
}
