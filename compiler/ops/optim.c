/* Optimizer updates, made by autodiff, one per trainable parameter. They write their inputs in place
 * (SNC_NF_EFFECT) and produce a scalar nobody reads. PyTorch's semantics:
 *   adam(p, g, m, v): g += wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *                     p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps), t = ctx->step;
 *   sgd(p, g, buf):   g += wd*p; buf = momentum buf + g (when momentum > 0);
 *                     g = nesterov ? g + momentum buf : buf; p -= lr g.
 * lr is attr.lr * ctx->lr_scale (learning-rate schedules). */
#include <math.h>

#include "ops/op.h"

static int infer_update(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *p = snc_node_in(g, n, 0);
  for (int k = 1; k < n->ninputs; k++) SNC_ASSERT(snc_shape_eq(&p->shape, &snc_node_in(g, n, k)->shape));
  (void)err;
  n->shape = (snc_shape){0, {0}};
  n->dtype = SNC_F32;
  n->flags = (n->flags & ~SNC_NF_BATCHED) | SNC_NF_EFFECT;
  return 0;
}

static void ref_adam(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  float *p = in[0], *m = in[2], *v = in[3];
  const float *gr = in[1];
  const snc_attrs *a = &n->attr;
  float lr = a->lr * ctx->lr_scale;
  double bc1 = 1.0 - pow(a->beta1, (double)ctx->step), bc2 = 1.0 - pow(a->beta2, (double)ctx->step);
  for (int64_t i = 0, e = snc_shape_numel(&snc_node_in(g, n, 0)->shape); i < e; i++) {
    float gi = gr[i] + a->weight_decay * p[i];
    m[i] = a->beta1 * m[i] + (1.0f - a->beta1) * gi;
    v[i] = a->beta2 * v[i] + (1.0f - a->beta2) * gi * gi;
    float denom = sqrtf(v[i]) / (float)sqrt(bc2) + a->eps;
    p[i] -= (lr / (float)bc1) * m[i] / denom;
  }
  *(float *)out = 0;
}

static void ref_sgd(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  float *p = in[0], *buf = in[2];
  const float *gr = in[1];
  const snc_attrs *a = &n->attr;
  float lr = a->lr * ctx->lr_scale;
  for (int64_t i = 0, e = snc_shape_numel(&snc_node_in(g, n, 0)->shape); i < e; i++) {
    float gi = gr[i] + a->weight_decay * p[i];
    if (a->momentum > 0) {
      buf[i] = a->momentum * buf[i] + gi;
      gi = a->nesterov ? gi + a->momentum * buf[i] : buf[i];
    }
    p[i] -= lr * gi;
  }
  *(float *)out = 0;
}

static int64_t flops_update(const snc_graph *g, const snc_node *n) {
  return 10 * snc_shape_numel(&snc_node_in(g, n, 0)->shape);
}

const snc_op_info snc_op_adam = {"adam", 4, 4, infer_update, flops_update, ref_adam, NULL, NULL, .emit = snc_cg_emit_update};
const snc_op_info snc_op_sgd = {"sgd", 3, 3, infer_update, flops_update, ref_sgd, NULL, NULL, .emit = snc_cg_emit_update};
