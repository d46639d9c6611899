/* Helpers for tests that run generated code next to the reference executor. */
#ifndef SNC_TEST_CODEGEN_UTIL_H
#define SNC_TEST_CODEGEN_UTIL_H
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snc/codegen.h"
#include "snc/backend.h"
#include "snc/jit.h"
#include "snc/program.h"

typedef struct cg_run {
  snc_program *p;
  snc_jit *jit;
  snc_step_fn train, eval;
  void *arena;
} cg_run;

/* flags: 1 every buffer its own space, 2 no fusion, 4 compiled on one thread, 8 on two; opt (may be
   NULL): the other options (schedules, direct convolutions) */
static inline int cgu_build_with(const snc_graph *g, int flags, const snc_cg_options *opt, cg_run *r, snc_error *err) {
  memset(r, 0, sizeof *r);
  snc_cg_options o = {0};
  if (opt) o = *opt;
  o.no_reuse = flags & 1, o.no_fusion = (flags & 2) != 0;
  r->p = snc_program_build(g, &o, err);
  if (!r->p) return -1;
  LLVMModuleRef m = r->p->module;
  r->p->module = NULL;
  snc_jit_options jo = snc_jit_default_options();
  jo.compile_threads = flags & 4 ? 1 : flags & 8 ? 2 : 0;
  r->jit = snc_jit_new(m, &jo, err);
  if (!r->jit) return -1;
  char name[96];
  snprintf(name, sizeof name, "%s_train_step", r->p->prefix);
  if (g->nnodes > g->nforward) {
    r->train = (snc_step_fn)(uintptr_t)snc_jit_lookup(r->jit, name, err);
    if (!r->train) return -1;
  }
  snprintf(name, sizeof name, "%s_eval", r->p->prefix);
  r->eval = (snc_step_fn)(uintptr_t)snc_jit_lookup(r->jit, name, err);
  if (!r->eval) return -1;
  r->arena = aligned_alloc(64, (size_t)r->p->layout.arena_bytes);
  memset(r->arena, 0, (size_t)r->p->layout.arena_bytes);
  return 0;
}

static inline int cgu_build(const snc_graph *g, int flags, cg_run *r, snc_error *err) { return cgu_build_with(g, flags, NULL, r, err); }

static inline void cgu_free(cg_run *r) {
  snc_jit_free(r->jit);
  snc_program_free(r->p);
  free(r->arena);
}

/* copies parameters and constants (native layout) from the reference executor into the arena */
static inline void cgu_copy_params(cg_run *r, snc_exec *ex, const snc_graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *n = g->nodes[i];
    if (n->op != SNC_OP_PARAM && n->op != SNC_OP_CONST) continue;
    memcpy((char *)r->arena + r->p->layout.offset[i], snc_exec_buf(ex, i), (size_t)snc_shape_numel(&n->shape) * 4);
  }
}

/* reads node i from the arena into batch-major out (nb rows when batched) */
static inline void cgu_read(const cg_run *r, const snc_graph *g, int i, int64_t nb, float *out) {
  const snc_node *n = g->nodes[i];
  const float *src = (const float *)((const char *)r->arena + r->p->layout.offset[i]);
  if (!(n->flags & SNC_NF_BATCHED)) {
    memcpy(out, src, (size_t)snc_shape_numel(&n->shape) * 4);
    return;
  }
  int64_t F = snc_shape_numel(&n->shape) / n->shape.dim[0], bp = r->p->layout.bp;
  for (int64_t b = 0; b < nb; b++)
    for (int64_t f = 0; f < F; f++) out[b * F + f] = src[f * bp + b];
}

/* |a - b| <= atol * max|b| + rtol * |b| over the tensor; returns the number of bad entries */
static inline int cgu_compare(const char *what, const float *a, const float *b, int64_t n, double rtol, double atol) {
  double scale = 0;
  for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
  int bad = 0;
  for (int64_t i = 0; i < n; i++) {
    double tol = atol * scale + rtol * fabs(b[i]) + 1e-30;
    if (!(fabs((double)a[i] - b[i]) <= tol)) {
      if (bad < 3) fprintf(stderr, "\n  %s[%lld]: jit %.8g ref %.8g", what, (long long)i, a[i], b[i]);
      bad++;
    }
  }
  return bad;
}

/* Checks node i's compact buffer (snc_fuse_compact: per pooled element and lane, the row-major
 * position of the window's argmax as a byte) and its pooling's output against the full activation
 * full (batch-major, nb rows): the position must be the first one equal to the window's maximum and
 * the pooled value the activation there, to the bit when exact; otherwise (full from the reference
 * executor) the position's activation must be within tolerance of the maximum and the pooled value
 * of the activation there. Returns the number of bad entries. */
static inline int cgu_compact_check(const cg_run *r, const snc_graph *g, int i, int64_t nb, const float *full, int exact) {
  const snc_node *n = g->nodes[i], *pool = g->nodes[-2 - r->p->into[i]];
  int64_t C = n->shape.dim[1], H = n->shape.dim[2], W = n->shape.dim[3], bp = r->p->layout.bp;
  int ky = pool->attr.kernel[0], kx = pool->attr.kernel[1];
  int64_t PH = H / ky, PW = W / kx;
  const float *m = (const float *)((const char *)r->arena + r->p->layout.offset[pool->id]);
  const unsigned char *idx = (const unsigned char *)r->arena + r->p->layout.offset[i];
  double scale = 0;
  for (int64_t k = 0; k < nb * C * H * W; k++) scale = fmax(scale, fabs(full[k]));
  int bad = 0;
  for (int64_t b = 0; b < nb; b++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t py = 0; py < PH; py++)
        for (int64_t px = 0; px < PW; px++) {
          float w[64], mx = -INFINITY;
          int first = -1;
          for (int e = 0; e < ky * kx; e++) {
            w[e] = full[b * C * H * W + (c * H + py * ky + e / kx) * W + px * kx + e % kx];
            mx = fmaxf(mx, w[e]);
          }
          for (int e = 0; e < ky * kx && first < 0; e++)
            if (w[e] == mx) first = e;
          int64_t pf = (c * PH + py) * PW + px;
          int at = idx[pf * bp + b];
          float v = m[pf * bp + b];
          double tol = 2e-5 * scale + 1e-4 * fabs(mx);
          int ok = at < ky * kx && (exact ? at == first && !memcmp(&v, &w[at], 4) : w[at] >= mx - tol && fabs(v - w[at]) <= tol);
          if (!ok && bad++ < 3)
            fprintf(stderr, "\n  %s: pooled %lld row %lld: argmax %d (%.8g) expected %d (%.8g)", n->name, (long long)pf, (long long)b,
                    at, at < ky * kx ? v : NAN, first, mx);
        }
  return bad;
}

#endif
