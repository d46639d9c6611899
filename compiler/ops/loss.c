/* Losses, each a scalar mean (PyTorch's reduction='mean') over the elements in use (nb rows):
 *   bce(p, t): -mean(t log p + (1-t) log(1-p)), each log clamped at -100 as PyTorch;
 *   bce_logits(z, t): the same on sigmoid(z), computed stably as max(z,0) - z t + log(1 + exp(-|z|));
 *   cross_entropy(z[B,C], labels int32[B]): -mean_b log_softmax(z_b)[label_b]. A label outside
 *     [0, C) is never read through: its row adds 0 to the loss and gets a zero gradient, and the mean
 *     still divides by nb (the runtime validates labels before a step, so this only keeps a bad
 *     buffer from reading out of bounds).
 * Backward, gradient with respect to input 0 only (never the targets), dy the scalar loss gradient:
 *   bce_dx(p, t, dy) = dy (p - t) / max((1-p) p, 1e-12) / n   (PyTorch's BCELoss backward);
 *   bce_logits_dx(z, t, dy) = dy (sigmoid(z) - t) / n;
 *   cross_entropy_dx(z, labels, dy) = dy (softmax(z_b) - onehot(label_b)) / nb. */
#include <math.h>

#include "autodiff/ad.h"
#include "ops/op.h"

static int scalar_out(snc_node *n) {
  n->shape = (snc_shape){0, {0}};
  n->dtype = SNC_F32;
  n->flags &= ~SNC_NF_BATCHED;
  return 0;
}

static int infer_bce(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *p = snc_node_in(g, n, 0), *t = snc_node_in(g, n, 1);
  char sp[64], st[64];
  if (snc_require_f32(g, n, 0, err) || snc_require_f32(g, n, 1, err)) return -1;
  if (!snc_shape_eq(&p->shape, &t->shape))
    return snc_node_errorf(g, n, err, "prediction '%s' has shape %s but target '%s' has %s", p->name,
                           SNC_SHAPE_STR(g, p->id, sp), t->name, SNC_SHAPE_STR(g, t->id, st));
  return scalar_out(n);
}

static int infer_cross_entropy(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *z = snc_node_in(g, n, 0), *t = snc_node_in(g, n, 1);
  char sz[64], st[64];
  if (snc_require_f32(g, n, 0, err)) return -1;
  if (z->shape.rank != 2 || !(z->flags & SNC_NF_BATCHED))
    return snc_node_errorf(g, n, err, "logits '%s' have shape %s; cross_entropy needs [B,classes]", z->name,
                           SNC_SHAPE_STR(g, z->id, sz));
  if (t->dtype != SNC_I32 || t->shape.rank != 1 || t->shape.dim[0] != z->shape.dim[0])
    return snc_node_errorf(g, n, err, "target '%s' %s must be int32 class labels of shape [B]", t->name,
                           SNC_SHAPE_STR(g, t->id, st));
  return scalar_out(n);
}

/* Backward ops (x, target, dy[]) -> shape of x; made by autodiff from a valid loss node. */
static int infer_loss_dx(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *x = snc_node_in(g, n, 0);
  (void)err;
  SNC_ASSERT(x->dtype == SNC_F32 && snc_node_in(g, n, 2)->shape.rank == 0);
  n->shape = x->shape;
  n->dtype = SNC_F32;
  n->flags = (n->flags & ~SNC_NF_BATCHED) | (x->flags & SNC_NF_BATCHED);
  return 0;
}

static int64_t flops_loss(const snc_graph *g, const snc_node *n) {
  return 4 * snc_shape_numel(&snc_node_in(g, n, 0)->shape);
}

/* --- reference kernels --- */
static double clamped_log(double v) { return fmax(log(v), -100.0); }

static void ref_bce(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  const float *p = in[0], *t = in[1];
  int64_t e = snc_kernel_numel(snc_node_in(g, n, 0), ctx);
  double s = 0;
  for (int64_t i = 0; i < e; i++) s += t[i] * clamped_log(p[i]) + (1.0 - t[i]) * fmax(log1p(-(double)p[i]), -100.0);
  *(float *)out = e ? (float)(-s / (double)e) : 0.0f;
}

static void ref_bce_logits(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  const float *z = in[0], *t = in[1];
  int64_t e = snc_kernel_numel(snc_node_in(g, n, 0), ctx);
  double s = 0;
  for (int64_t i = 0; i < e; i++) {
    double zi = z[i];
    s += fmax(zi, 0.0) - zi * t[i] + log1p(exp(-fabs(zi)));
  }
  *(float *)out = e ? (float)(s / (double)e) : 0.0f;
}

static void ref_cross_entropy(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  const float *z = in[0];
  const int32_t *lab = in[1];
  int64_t c = snc_node_in(g, n, 0)->shape.dim[1];
  double s = 0;
  for (int64_t b = 0; b < ctx->nb; b++) {
    const float *zr = z + b * c;
    if (lab[b] < 0 || lab[b] >= c) continue; /* out of range: adds 0 (see the top of the file) */
    float mx = zr[0];
    for (int64_t k = 1; k < c; k++) mx = zr[k] > mx ? zr[k] : mx;
    double se = 0;
    for (int64_t k = 0; k < c; k++) se += exp((double)zr[k] - mx);
    s += log(se) - ((double)zr[lab[b]] - mx); /* -log_softmax(z_b)[label] */
  }
  *(float *)out = (float)(s / (double)ctx->nb);
}

static void ref_bce_dx(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  (void)g;
  const float *p = in[0], *t = in[1];
  float *dx = out;
  int64_t e = snc_kernel_numel(n, ctx);
  float dy = *(const float *)in[2];
  /* PyTorch's order of operations: dy (p - t) / max((1-p) p, eps), then the mean's 1/n */
  for (int64_t i = 0; i < e; i++) dx[i] = dy * (p[i] - t[i]) / fmaxf((1.0f - p[i]) * p[i], 1e-12f) / (float)e;
}

static void ref_bce_logits_dx(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  (void)g;
  const float *z = in[0], *t = in[1];
  float *dx = out;
  int64_t e = snc_kernel_numel(n, ctx);
  float scale = *(const float *)in[2] / (float)e;
  for (int64_t i = 0; i < e; i++) dx[i] = scale * ((float)(1.0 / (1.0 + exp(-(double)z[i]))) - t[i]);
}

static void ref_cross_entropy_dx(const snc_graph *g, const snc_node *n, void *out, void *const *in,
                                 const snc_kctx *ctx) {
  (void)g;
  const float *z = in[0];
  const int32_t *lab = in[1];
  float *dx = out;
  int64_t c = n->shape.dim[1];
  double scale = *(const float *)in[2] / (double)ctx->nb;
  for (int64_t b = 0; b < ctx->nb; b++) {
    const float *zr = z + b * c;
    float *dr = dx + b * c;
    if (lab[b] < 0 || lab[b] >= c) { /* out of range: no gradient (see the top of the file) */
      for (int64_t k = 0; k < c; k++) dr[k] = 0.0f;
      continue;
    }
    float mx = zr[0];
    for (int64_t k = 1; k < c; k++) mx = zr[k] > mx ? zr[k] : mx;
    double se = 0;
    for (int64_t k = 0; k < c; k++) se += exp((double)zr[k] - mx);
    for (int64_t k = 0; k < c; k++) dr[k] = (float)(scale * (exp((double)zr[k] - mx) / se - (k == lab[b])));
  }
}

/* --- gradient rule: input 0 only; losses are not differentiated with respect to their targets --- */
static int grad_loss(snc_ad *ad, const snc_node *n, int gout) {
  snc_opcode op = n->op == SNC_OP_BCE ? SNC_OP_BCE_DX : n->op == SNC_OP_BCE_LOGITS ? SNC_OP_BCE_LOGITS_DX : SNC_OP_CROSS_ENTROPY_DX;
  int ins[3] = {n->inputs[0], n->inputs[1], gout};
  if (snc_ad_needs(ad, n->inputs[0])) snc_ad_accum(ad, n->inputs[0], snc_ad_node(ad, op, n, "x", ins, 3, &n->attr));
  return 0;
}

/* --- examples --- */
static int ex_sigmoid_of_input(snc_graph *g, int64_t features) {
  int x = snc_example_input(g, 1, &features, SNC_F32);
  return snc_example_op(g, SNC_OP_SIGMOID, &x, 1, (snc_attrs){0});
}
static int ex_bce(snc_graph *g) {
  int ins[2] = {ex_sigmoid_of_input(g, 4), ex_sigmoid_of_input(g, 4)};
  return snc_example_op(g, SNC_OP_BCE, ins, 2, (snc_attrs){0});
}
static int ex_bce_logits(snc_graph *g) {
  int ins[2] = {snc_example_input(g, 1, (int64_t[]){4}, SNC_F32), ex_sigmoid_of_input(g, 4)};
  return snc_example_op(g, SNC_OP_BCE_LOGITS, ins, 2, (snc_attrs){0});
}
static int ex_cross_entropy(snc_graph *g) {
  int ins[2] = {snc_example_input(g, 1, (int64_t[]){5}, SNC_F32), snc_example_input(g, 0, NULL, SNC_I32)};
  g->nodes[ins[1]]->attr.classes = 5; /* tests/gradcheck.h draws labels in [0, classes) */
  return snc_example_op(g, SNC_OP_CROSS_ENTROPY, ins, 2, (snc_attrs){0});
}

const snc_op_info snc_op_bce = {"bce", 2, 2, infer_bce, flops_loss, ref_bce, grad_loss, ex_bce, .emit = snc_cg_emit_loss};
const snc_op_info snc_op_bce_logits = {"bce_logits", 2, 2, infer_bce, flops_loss, ref_bce_logits, grad_loss, ex_bce_logits, .emit = snc_cg_emit_loss};
const snc_op_info snc_op_cross_entropy = {"cross_entropy", 2, 2, infer_cross_entropy, flops_loss, ref_cross_entropy,
                                          grad_loss, ex_cross_entropy, .emit = snc_cg_emit_loss};
const snc_op_info snc_op_bce_dx = {"bce_dx", 3, 3, infer_loss_dx, flops_loss, ref_bce_dx, NULL, NULL, .emit = snc_cg_emit_loss};
const snc_op_info snc_op_bce_logits_dx = {"bce_logits_dx", 3, 3, infer_loss_dx, flops_loss, ref_bce_logits_dx, NULL, NULL, .emit = snc_cg_emit_loss};
const snc_op_info snc_op_cross_entropy_dx = {"cross_entropy_dx", 3, 3, infer_loss_dx, flops_loss, ref_cross_entropy_dx,
                                             NULL, NULL, .emit = snc_cg_emit_loss};
