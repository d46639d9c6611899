/* Finite-difference gradient checks against the reference executor (shared by test programs). */
#ifndef SNC_TEST_GRADCHECK_H
#define SNC_TEST_GRADCHECK_H
#include <math.h>
#include <string.h>

#include "snc/autodiff.h"
#include "snc/backend.h"
#include "snc/rng.h"

/* Fills every input: floats uniform in [-1, 1); int32 labels uniform in [0, attr.classes) (2 when
 * the example left it 0). */
static inline void gc_fill_inputs(const snc_graph *g, snc_exec *ex, uint64_t seed) {
  snc_rng r = snc_rng_seed(seed);
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *n = g->nodes[i];
    if (n->op != SNC_OP_INPUT) continue;
    int64_t e = snc_shape_numel(&n->shape);
    if (n->dtype == SNC_F32) {
      float *x = snc_exec_buf(ex, i);
      for (int64_t k = 0; k < e; k++) x[k] = 2.0f * snc_rng_uniform(&r) - 1.0f;
    } else {
      int32_t *x = snc_exec_buf(ex, i);
      uint32_t c = n->attr.classes > 0 ? (uint32_t)n->attr.classes : 2;
      for (int64_t k = 0; k < e; k++) x[k] = (int32_t)snc_rng_below(&r, c);
    }
  }
}

static inline double gc_loss(snc_exec *ex, const snc_graph *g, const snc_kctx *ctx) {
  snc_exec_run(ex, SNC_RUN_FORWARD, ctx);
  return *(float *)snc_exec_buf(ex, g->loss);
}

/* Central differences with step eps on up to `per_tensor` elements of every input and parameter
 * that has a gradient. Passes when |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|).
 * Returns the number of elements checked; *bad gets the failures (printed to stderr). */
static inline int gc_check(const snc_graph *g, snc_exec *ex, const snc_kctx *ctx, int per_tensor, double eps, double atol,
                           double rtol, int *bad) {
  int checked = 0;
  *bad = 0;
  snc_exec_run(ex, SNC_RUN_STEP, ctx); /* analytic gradients (no update nodes in these graphs) */
  for (int i = 0; i < g->nforward; i++) {
    const snc_node *n = g->nodes[i];
    if (n->grad < 0 || (n->op != SNC_OP_INPUT && n->op != SNC_OP_PARAM)) continue;
    const snc_node *gn = g->nodes[n->grad];
    if (!snc_shape_eq(&gn->shape, &n->shape) || (gn->flags & SNC_NF_BATCHED) != (n->flags & SNC_NF_BATCHED)) {
      fprintf(stderr, "\n  gradient %s of %s has another shape\n", gn->name, n->name);
      (*bad)++;
      continue;
    }
    float *x = snc_exec_buf(ex, i);
    const float *dx = snc_exec_buf(ex, n->grad);
    int64_t e = snc_kernel_numel(n, ctx);
    int64_t stride = e / per_tensor > 1 ? e / per_tensor : 1;
    /* copy the analytic gradient: the FD forwards below overwrite buffers */
    for (int64_t k = 0; k < e; k += stride) {
      double analytic = dx[k];
      float keep = x[k];
      x[k] = keep + (float)eps;
      double up = gc_loss(ex, g, ctx);
      x[k] = keep - (float)eps;
      double down = gc_loss(ex, g, ctx);
      x[k] = keep;
      double numeric = (up - down) / (2 * eps);
      double tol = atol + rtol * fmax(fabs(analytic), fabs(numeric));
      checked++;
      if (fabs(analytic - numeric) > tol) {
        if (*bad < 5) fprintf(stderr, "\n  %s[%lld]: analytic %.6g numeric %.6g\n", n->name, (long long)k, analytic, numeric);
        (*bad)++;
      }
    }
  }
  return checked;
}

#endif
