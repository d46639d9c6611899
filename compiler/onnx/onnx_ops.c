/* ONNX operators as layers of the model language: one function per operator (or family), each
 * checking the node's attributes and shapes, writing its layers to the graph text, its weights to
 * the weight list and defining its outputs in the tensor table. Constants (initializers, Constant,
 * shape arithmetic) are folded here and never reach the text except as weights or `constants:`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

#define KNOWN(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE ((const char *const[]){NULL})

char *onx_shape_str(const onx_tensor *t, char *buf, size_t len) {
  size_t n = (size_t)snprintf(buf, len, "[");
  for (int k = 0; k < t->rank && n + 24 < len; k++) {
    if (t->kind == ONX_ACT && k == 0) n += (size_t)snprintf(buf + n, len - n, "B");
    else n += (size_t)snprintf(buf + n, len - n, "%s%lld", k ? "," : "", (long long)t->dim[k]);
  }
  snprintf(buf + n, len - n, "]");
  return buf;
}

static const char *in_name(onx_imp *imp, int k) { return imp->node->input[k]; }

/* An activation input (computed from the graph inputs). */
int onx_act(onx_imp *imp, int k) {
  int i = onx_input(imp, k);
  if (i < 0) return -1;
  if (imp->t[i].kind == ONX_PAD) return onx_fail(imp, "reads the output of a Pad, which is supported only right before a Conv");
  if (imp->t[i].kind != ONX_ACT)
    return onx_fail(imp, "input %d '%.200s' is a constant here, where snc needs a computed tensor", k, in_name(imp, k));
  if (imp->t[i].i32) return onx_fail(imp, "input %d '%.200s' is int32; this operator takes float32", k, in_name(imp, k));
  return i;
}

/* A constant input (initializer, Constant or folded shape value). */
int onx_cst(onx_imp *imp, int k, int optional) {
  int i = optional ? onx_input_opt(imp, k) : onx_input(imp, k);
  if (i < 0) return i;
  if (imp->t[i].kind != ONX_CONST)
    return onx_fail(imp, "input %d '%.200s' must be a constant (an initializer or a Constant)", k, in_name(imp, k));
  return i;
}

int onx_has_output(onx_imp *imp, int k) {
  const Onnx__NodeProto *n = imp->node;
  return (size_t)k < n->n_output && n->output[k] && *n->output[k];
}

/* Defines output k of the node. */
int onx_define(onx_imp *imp, int k, const onx_tensor *t) {
  if (!onx_has_output(imp, k)) return k == 0 ? onx_fail(imp, "has no output") : 0;
  onx_tensor c = *t;
  c.name = imp->node->output[k];
  return onx_add(imp, &c) < 0 ? -1 : 0;
}

int onx_define_act(onx_imp *imp, const char *layer, int rank, const int64_t *dim) {
  onx_tensor t = {.kind = ONX_ACT, .layer = layer, .rank = rank};
  memcpy(t.dim, dim, (size_t)rank * sizeof *dim);
  t.dim[0] = ONX_BATCH;
  return onx_define(imp, 0, &t);
}

/* Output k as a constant holding n values (ints when integer); takes f and i. */
int onx_define_const(onx_imp *imp, int rank, const int64_t *dim, int64_t n, float *f, int64_t *i, int integer) {
  onx_tensor t = {.kind = ONX_CONST, .rank = rank, .n = n, .f = f, .i = i, .integer = integer};
  memcpy(t.dim, dim, (size_t)rank * sizeof *dim);
  if (onx_define(imp, 0, &t)) {
    free(f), free(i);
    return -1;
  }
  return 0;
}

/* The layer name for this node: the graph output's name when the node computes one (so results keep
 * their ONNX names), else the node's name. */
const char *onx_layer_for(onx_imp *imp, const char *fallback) {
  const Onnx__NodeProto *n = imp->node;
  const char *name = n->name;
  if (n->n_output && n->output[0])
    for (size_t k = 0; k < imp->graph->n_output; k++)
      if (imp->graph->output[k]->name && !strcmp(imp->graph->output[k]->name, n->output[0])) name = n->output[0];
  const char *s = onx_layer_name(imp, name, fallback);
  if (!s) onx_fail(imp, "out of memory");
  return s;
}

/* "  - {name: L, <type>, from: a}" */
void onx_emit(onx_imp *imp, const char *name, const char *type, const char *const *from, int nfrom) {
  onx_buf *b = &imp->graph_text;
  onx_printf(b, "  - {name: %s, %s, from: ", name, type);
  if (nfrom == 1) onx_puts(b, from[0]);
  else {
    onx_puts(b, "[");
    for (int k = 0; k < nfrom; k++) onx_printf(b, "%s%s", k ? ", " : "", from[k]);
    onx_puts(b, "]");
  }
  onx_puts(b, "}\n");
}

int64_t onx_numel_from(const onx_tensor *t, int k0) {
  int64_t n = 1;
  for (int k = k0; k < t->rank; k++) n *= t->dim[k];
  return n;
}

static int check_pads(onx_imp *imp, const int64_t *pads, int npads, int64_t out[2]) {
  out[0] = out[1] = 0;
  if (!npads) return 0;
  if (npads != 4) return onx_fail(imp, "pads has %d entries; a 2-D operator needs 4", npads);
  for (int k = 0; k < 4; k++)
    if (pads[k] < 0 || pads[k] > 4096) return onx_fail(imp, "pads entry %lld is out of range", (long long)pads[k]);
  if (pads[0] != pads[2] || pads[1] != pads[3])
    return onx_fail(imp, "asymmetric pads [%lld, %lld, %lld, %lld] are not supported", (long long)pads[0],
                    (long long)pads[1], (long long)pads[2], (long long)pads[3]);
  out[0] = pads[0], out[1] = pads[1];
  return 0;
}

static int check_auto_pad(onx_imp *imp) {
  const Onnx__AttributeProto *a = onx_attr(imp, "auto_pad");
  if (!a) return 0;
  const char *v = a->has_s ? (const char *)a->s.data : "";
  size_t n = a->has_s ? a->s.len : 0;
  if ((n == 6 && !memcmp(v, "NOTSET", 6)) || (n == 5 && !memcmp(v, "VALID", 5)) || n == 0) return 0;
  return onx_fail(imp, "auto_pad=%.*s is not supported (give explicit pads)", (int)(n > 20 ? 20 : n), v);
}

static int ones(onx_imp *imp, const char *attr) {
  int64_t v[ONX_MAX_RANK];
  int n;
  if (onx_attr_ints(imp, attr, v, ONX_MAX_RANK, &n) < 0) return -1;
  for (int k = 0; k < n; k++)
    if (v[k] != 1) return onx_fail(imp, "%s other than 1 are not supported", attr);
  return 0;
}

/* Output size of a window op, or an error when nothing fits. */
static int window(onx_imp *imp, int64_t in, int64_t k, int64_t s, int64_t p, int64_t *out) {
  if (k < 1 || s < 1 || in + 2 * p < k)
    return onx_fail(imp, "window %lld (stride %lld, padding %lld) does not fit input size %lld", (long long)k,
                    (long long)s, (long long)p, (long long)in);
  *out = (in + 2 * p - k) / s + 1;
  return 0;
}

/* ---- weighted layers ------------------------------------------------------------------------------ */

static int op_conv(onx_imp *imp) {
  if (onx_attr_check(imp, KNOWN("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")) ||
      check_auto_pad(imp) || ones(imp, "dilations"))
    return -1;
  int64_t group, ks[4], st[4] = {1, 1}, pads[8], pd[2], extra[2] = {0, 0};
  int nks, nst, np;
  if (onx_attr_int(imp, "group", 1, &group) < 0) return -1;
  if (group != 1) return onx_fail(imp, "group=%lld is not supported", (long long)group);
  if (onx_attr_ints(imp, "kernel_shape", ks, 4, &nks) < 0 || onx_attr_ints(imp, "strides", st, 4, &nst) < 0 ||
      onx_attr_ints(imp, "pads", pads, 8, &np) < 0 || check_pads(imp, pads, np, pd))
    return -1;
  if (!nst) st[0] = st[1] = 1;
  int xi = onx_input(imp, 0);
  if (xi < 0) return -1;
  if (imp->t[xi].kind == ONX_PAD) { /* a zero Pad before the convolution becomes its padding */
    const int64_t *q = imp->t[xi].pads;
    if (q[0] != q[2] || q[1] != q[3])
      return onx_fail(imp, "the Pad before it is asymmetric ([%lld, %lld, %lld, %lld])", (long long)q[0],
                      (long long)q[1], (long long)q[2], (long long)q[3]);
    extra[0] = q[0], extra[1] = q[1];
    xi = imp->t[xi].src;
  } else if ((xi = onx_act(imp, 0)) < 0) {
    return -1;
  }
  int wi = onx_cst(imp, 1, 0), bi = onx_cst(imp, 2, 1);
  if (wi < 0 || bi == -1) return -1;
  const onx_tensor *x = &imp->t[xi], *w = &imp->t[wi], *b = bi >= 0 ? &imp->t[bi] : NULL;
  if (w->rank != 4) return onx_fail(imp, "weight of rank %d: only 2-D convolutions are supported", w->rank);
  if (x->rank != 4) return onx_fail(imp, "input %s: a 2-D convolution needs [B,C,H,W]", ONX_SHAPE(x));
  if (w->dim[1] != x->dim[1])
    return onx_fail(imp, "weight [%lld,%lld,%lld,%lld] does not fit input %s (%lld channels)", (long long)w->dim[0],
                    (long long)w->dim[1], (long long)w->dim[2], (long long)w->dim[3], ONX_SHAPE(x), (long long)x->dim[1]);
  if (nks && (nks != 2 || ks[0] != w->dim[2] || ks[1] != w->dim[3]))
    return onx_fail(imp, "kernel_shape does not match the weight's %lldx%lld", (long long)w->dim[2], (long long)w->dim[3]);
  if (nst != 0 && nst != 2) return onx_fail(imp, "strides has %d entries; 2 expected", nst);
  if (b && (b->n != w->dim[0]))
    return onx_fail(imp, "bias of %lld elements for %lld filters", (long long)b->n, (long long)w->dim[0]);
  int64_t p[2] = {pd[0] + extra[0], pd[1] + extra[1]}, out[4] = {ONX_BATCH, w->dim[0]};
  for (int d = 0; d < 2; d++)
    if (window(imp, x->dim[2 + d], w->dim[2 + d], st[d], p[d], &out[2 + d])) return -1;
  const char *name = onx_layer_for(imp, "conv");
  if (!name) return -1;
  char type[256];
  snprintf(type, sizeof type, "conv2d: {filters: %lld, kernel: [%lld, %lld], stride: [%lld, %lld], padding: [%lld, %lld]%s}",
           (long long)w->dim[0], (long long)w->dim[2], (long long)w->dim[3], (long long)st[0], (long long)st[1],
           (long long)p[0], (long long)p[1], b ? "" : ", bias: false");
  onx_emit(imp, name, type, &x->layer, 1);
  if (onx_weight_add(imp, name, "weight", 4, w->dim, w->f) || (b && onx_weight_add(imp, name, "bias", 1, &w->dim[0], b->f)))
    return -1;
  return onx_define_act(imp, name, 4, out);
}

/* A linear layer from x [B,K], weight rows [N][K] (wt, owned by the caller), optional bias. */
static int linear(onx_imp *imp, const onx_tensor *x, int64_t n, const float *wt, const float *bias) {
  const char *name = onx_layer_for(imp, "linear");
  if (!name) return -1;
  char type[128];
  snprintf(type, sizeof type, "linear: {units: %lld%s}", (long long)n, bias ? "" : ", bias: false");
  onx_emit(imp, name, type, &x->layer, 1);
  int64_t wd[2] = {n, x->dim[1]}, out[2] = {ONX_BATCH, n};
  if (onx_weight_add(imp, name, "weight", 2, wd, wt) || (bias && onx_weight_add(imp, name, "bias", 1, &n, bias))) return -1;
  return onx_define_act(imp, name, 2, out);
}

static float *transposed(const onx_tensor *b) { /* [K,N] -> [N,K] */
  int64_t K = b->dim[0], N = b->dim[1];
  float *t = malloc((size_t)(K * N > 0 ? K * N : 1) * sizeof *t);
  if (t)
    for (int64_t k = 0; k < K; k++)
      for (int64_t j = 0; j < N; j++) t[j * K + k] = b->f[k * N + j];
  return t;
}

static int op_gemm(onx_imp *imp) {
  if (onx_attr_check(imp, KNOWN("alpha", "beta", "transA", "transB"))) return -1;
  int64_t ta, tb;
  float alpha, beta;
  if (onx_attr_int(imp, "transA", 0, &ta) < 0 || onx_attr_int(imp, "transB", 0, &tb) < 0 ||
      onx_attr_float(imp, "alpha", 1, &alpha) < 0 || onx_attr_float(imp, "beta", 1, &beta) < 0)
    return -1;
  if (ta) return onx_fail(imp, "transA=1 is not supported");
  int xi = onx_act(imp, 0), bi = onx_cst(imp, 1, 0), ci = onx_input_opt(imp, 2);
  if (xi < 0 || bi < 0 || ci == -1) return -1;
  if (ci >= 0 && imp->t[ci].kind != ONX_CONST) return onx_fail(imp, "C must be a constant bias");
  const onx_tensor *x = &imp->t[xi], *b = &imp->t[bi], *c = ci >= 0 ? &imp->t[ci] : NULL;
  if (x->rank != 2) return onx_fail(imp, "input %s: Gemm needs [B,K]", ONX_SHAPE(x));
  if (b->rank != 2) return onx_fail(imp, "B must be a matrix");
  int64_t K = tb ? b->dim[1] : b->dim[0], N = tb ? b->dim[0] : b->dim[1];
  if (K != x->dim[1])
    return onx_fail(imp, "B [%lld,%lld]%s does not fit input %s", (long long)b->dim[0], (long long)b->dim[1],
                    tb ? " (transposed)" : "", ONX_SHAPE(x));
  if (c && c->n != N && c->n != 1) return onx_fail(imp, "C of %lld elements does not broadcast to %lld units", (long long)c->n, (long long)N);
  float *w = tb ? malloc((size_t)(K * N > 0 ? K * N : 1) * sizeof *w) : transposed(b);
  float *bias = c ? malloc((size_t)(N ? N : 1) * sizeof *bias) : NULL;
  int rc = -1;
  if (!w || (c && !bias)) {
    onx_fail(imp, "out of memory");
    goto done;
  }
  if (tb) memcpy(w, b->f, (size_t)(K * N) * sizeof *w);
  for (int64_t k = 0; k < K * N; k++) w[k] *= alpha;
  for (int64_t j = 0; c && j < N; j++) bias[j] = beta * c->f[c->n == 1 ? 0 : j];
  rc = linear(imp, x, N, w, bias);
done:
  free(w), free(bias);
  return rc;
}

/* MatMul by a constant matrix; an Add of a constant vector right after it (its only reader) is its bias. */
static int op_matmul(onx_imp *imp, int idx) {
  if (onx_attr_check(imp, NONE)) return -1;
  int xi = onx_act(imp, 0), bi = onx_input(imp, 1);
  if (xi < 0 || bi < 0) return -1;
  if (imp->t[bi].kind != ONX_CONST) return onx_fail(imp, "a product of two computed tensors is not supported");
  const onx_tensor *x = &imp->t[xi], *b = &imp->t[bi];
  if (x->rank != 2 || b->rank != 2 || b->dim[0] != x->dim[1])
    return onx_fail(imp, "input %s times %s: only [B,K] x [K,N] is supported", ONX_SHAPE(x), ONX_SHAPE(b));
  int64_t N = b->dim[1];
  const float *bias = NULL;
  const Onnx__NodeProto *self = imp->node, *add = NULL;
  int u = imp->user[idx];
  if (imp->uses[idx] == 1 && u > idx && imp->graph->node[u]->op_type && !strcmp(imp->graph->node[u]->op_type, "Add") &&
      imp->graph->node[u]->n_input == 2 && imp->graph->node[u]->n_output >= 1) {
    add = imp->graph->node[u];
    int other = !strcmp(add->input[0], self->output[0]) ? 1 : 0, oi = onx_find(imp, add->input[other]);
    if (oi >= 0 && imp->t[oi].kind == ONX_CONST && imp->t[oi].n == N && imp->t[oi].rank <= 2 &&
        (imp->t[oi].rank < 2 || imp->t[oi].dim[0] == 1))
      bias = imp->t[oi].f;
    else
      add = NULL;
  }
  float *w = transposed(b);
  if (!w) return onx_fail(imp, "out of memory");
  if (add) imp->node = add, imp->skip[u] = 1; /* the Add's name and output: the layer stands for both */
  int rc = linear(imp, x, N, w, bias);
  imp->node = self;
  free(w);
  return rc;
}

static int op_batchnorm(onx_imp *imp) {
  if (onx_attr_check(imp, KNOWN("epsilon", "momentum", "training_mode", "spatial"))) return -1;
  float eps, mom;
  int64_t train, spatial;
  if (onx_attr_float(imp, "epsilon", 1e-5f, &eps) < 0 || onx_attr_float(imp, "momentum", 0.9f, &mom) < 0 ||
      onx_attr_int(imp, "training_mode", 0, &train) < 0 || onx_attr_int(imp, "spatial", 1, &spatial) < 0)
    return -1;
  if (train) return onx_fail(imp, "training_mode=1 is not supported (export the model in eval mode)");
  if (!spatial) return onx_fail(imp, "spatial=0 is not supported");
  if (onx_has_output(imp, 1) || onx_has_output(imp, 2)) return onx_fail(imp, "the running-statistics outputs are not supported");
  int xi = onx_act(imp, 0);
  if (xi < 0) return -1;
  const onx_tensor *x = &imp->t[xi];
  if (x->rank != 2 && x->rank != 4) return onx_fail(imp, "input %s: batch norm needs [B,C] or [B,C,H,W]", ONX_SHAPE(x));
  if (!(eps >= 1e-12f && eps <= 1)) return onx_fail(imp, "epsilon %g is out of range [1e-12, 1]", (double)eps);
  if (!(mom >= 0 && mom <= 1)) return onx_fail(imp, "momentum %g is out of range [0, 1]", (double)mom);
  static const char *const suffix[4] = {"weight", "bias", "running_mean", "running_var"};
  const onx_tensor *p[4];
  for (int k = 0; k < 4; k++) {
    int i = onx_cst(imp, 1 + k, 0);
    if (i < 0) return -1;
    p[k] = &imp->t[i];
    if (p[k]->n != x->dim[1])
      return onx_fail(imp, "%s has %lld elements for %lld channels", suffix[k], (long long)p[k]->n, (long long)x->dim[1]);
  }
  const char *name = onx_layer_for(imp, "batchnorm");
  if (!name) return -1;
  onx_buf t = {0};
  onx_puts(&t, "batchnorm: {eps: ");
  onx_put_float(&t, eps);
  onx_puts(&t, ", momentum: ");
  /* ONNX's momentum weighs the old running value, PyTorch's (snc's) the new batch; 6 digits keep
     1 - (1 - 0.1) from printing as 0.100000024 */
  onx_printf(&t, "%.6g", 1.0 - (double)mom);
  onx_puts(&t, "}");
  if (t.oom) return free(t.s), onx_fail(imp, "out of memory");
  onx_emit(imp, name, t.s, &x->layer, 1);
  free(t.s);
  for (int k = 0; k < 4; k++)
    if (onx_weight_add(imp, name, suffix[k], 1, &x->dim[1], p[k]->f)) return -1;
  return onx_define_act(imp, name, x->rank, x->dim);
}

/* ---- elementwise ----------------------------------------------------------------------------------- */

static int op_unary(onx_imp *imp, const char *type, const char *attr, float def, const char *key) {
  if (onx_attr_check(imp, attr ? KNOWN(attr) : NONE)) return -1;
  int xi = onx_act(imp, 0);
  if (xi < 0) return -1;
  const char *name = onx_layer_for(imp, type);
  if (!name) return -1;
  onx_buf t = {0};
  onx_puts(&t, type);
  if (attr) {
    float v;
    if (onx_attr_float(imp, attr, def, &v) < 0) return free(t.s), -1;
    onx_printf(&t, ": {%s: ", key);
    onx_put_float(&t, v);
    onx_puts(&t, "}");
  }
  if (t.oom) return free(t.s), onx_fail(imp, "out of memory");
  onx_emit(imp, name, t.s, &imp->t[xi].layer, 1);
  free(t.s);
  return onx_define_act(imp, name, imp->t[xi].rank, imp->t[xi].dim);
}

/* A constant of per-sample shape (x without its batch) holding c broadcast to it, as ONNX broadcasts. */
static int broadcast_const(onx_imp *imp, const onx_tensor *x, const onx_tensor *c, int recip, const char **cname) {
  int r = x->rank;
  if (c->rank > r) return onx_fail(imp, "constant %s has more axes than input %s", ONX_SHAPE(c), ONX_SHAPE(x));
  int64_t cd[ONX_MAX_RANK] = {0};
  for (int k = 0; k < r; k++) cd[k] = k < r - c->rank ? 1 : c->dim[k - (r - c->rank)];
  if (cd[0] != 1) return onx_fail(imp, "constant %s varies along the batch axis of %s", ONX_SHAPE(c), ONX_SHAPE(x));
  for (int k = 1; k < r; k++)
    if (cd[k] != 1 && cd[k] != x->dim[k]) return onx_fail(imp, "constant %s does not broadcast to %s", ONX_SHAPE(c), ONX_SHAPE(x));
  int64_t n = onx_numel_from(x, 1);
  if (n > (1 << 20)) return onx_fail(imp, "a broadcast constant of %lld values is too large (at most 2^20)", (long long)n);
  char buf[128]; /* an initializer keeps its name; a folded constant is named after the node */
  snprintf(buf, sizeof buf, "%s%s", c->init ? c->name : imp->node->name ? imp->node->name : "", c->init ? "" : "_c");
  *cname = onx_layer_name(imp, buf, "const");
  if (!*cname) return onx_fail(imp, "out of memory");
  onx_buf *b = &imp->const_text;
  onx_printf(b, "  %s: {shape: [", *cname);
  for (int k = 1; k < r; k++) onx_printf(b, "%s%lld", k > 1 ? ", " : "", (long long)x->dim[k]);
  onx_puts(b, "], values: [");
  for (int64_t e = 0; e < n; e++) { /* element e of the per-sample shape -> index into c */
    int64_t rem = e, ci = 0, stride = 1;
    for (int k = r - 1; k >= 1; k--) {
      int64_t pos = rem % x->dim[k];
      rem /= x->dim[k];
      if (cd[k] != 1) ci += pos * stride;
      stride *= cd[k];
    }
    float v = c->f[ci];
    if (e) onx_puts(b, ", ");
    onx_put_float(b, recip ? 1.0f / v : v);
  }
  onx_puts(b, "]}\n");
  imp->nconst++;
  return 0;
}

static int fold_binary(onx_imp *imp, const char *op, const onx_tensor *a, const onx_tensor *b) {
  if (a->n != b->n && a->n != 1 && b->n != 1) return onx_fail(imp, "constants of shapes %s and %s do not broadcast", ONX_SHAPE(a), ONX_SHAPE(b));
  const onx_tensor *big = a->n >= b->n ? a : b;
  int64_t n = big->n;
  float *f = malloc((size_t)(n ? n : 1) * sizeof *f);
  int64_t *iv = malloc((size_t)(n ? n : 1) * sizeof *iv);
  if (!f || !iv) return free(f), free(iv), onx_fail(imp, "out of memory");
  int integer = a->integer && b->integer;
  for (int64_t k = 0; k < n; k++) {
    int64_t x = a->i[a->n == 1 ? 0 : k], y = b->i[b->n == 1 ? 0 : k];
    float fx = a->f[a->n == 1 ? 0 : k], fy = b->f[b->n == 1 ? 0 : k];
    if (integer && (x == ONX_BATCH || y == ONX_BATCH)) {
      free(f), free(iv);
      return onx_fail(imp, "arithmetic on the batch size is not supported");
    }
    int64_t r = 0;
    if (integer) {
      if (!strcmp(op, "Div") && y == 0) return free(f), free(iv), onx_fail(imp, "integer division by zero");
      r = op[0] == 'A' ? x + y : op[0] == 'S' ? x - y : op[0] == 'M' ? x * y : x / y;
    }
    float fr = op[0] == 'A' ? fx + fy : op[0] == 'S' ? fx - fy : op[0] == 'M' ? fx * fy : fx / fy;
    f[k] = integer ? (float)r : fr;
    iv[k] = integer ? r : (int64_t)0;
  }
  return onx_define_const(imp, big->rank, big->dim, n, f, iv, integer);
}

static int op_binary(onx_imp *imp, const char *op) {
  if (onx_attr_check(imp, NONE)) return -1;
  int ai = onx_input(imp, 0), bi = onx_input(imp, 1);
  if (ai < 0 || bi < 0) return -1;
  if (imp->t[ai].kind == ONX_PAD || imp->t[bi].kind == ONX_PAD)
    return onx_fail(imp, "reads the output of a Pad, which is supported only right before a Conv");
  const onx_tensor *a = &imp->t[ai], *b = &imp->t[bi];
  if (a->kind == ONX_CONST && b->kind == ONX_CONST) return fold_binary(imp, op, a, b);
  if ((a->kind == ONX_ACT && a->i32) || (b->kind == ONX_ACT && b->i32)) return onx_fail(imp, "int32 operands are not supported");
  const char *name, *from[2];
  char type[96];
  if (a->kind == ONX_ACT && b->kind == ONX_ACT) {
    char sa[96], sb[96];
    if (a->rank != b->rank || memcmp(a->dim + 1, b->dim + 1, (size_t)(a->rank - 1) * sizeof *a->dim))
      return onx_fail(imp, "operands %s and %s differ in shape; snc's %s takes tensors of one shape", onx_shape_str(a, sa, 96),
                      onx_shape_str(b, sb, 96), op);
    if (!strcmp(op, "Div")) return onx_fail(imp, "the quotient of two computed tensors is not supported");
    if (!(name = onx_layer_for(imp, op[0] == 'M' ? "mul" : "add"))) return -1;
    from[0] = a->layer, from[1] = b->layer;
    if (!strcmp(op, "Sub")) { /* a - b = a + (-1) b */
      char nb[128];
      snprintf(nb, sizeof nb, "%s_neg", name);
      const char *neg = onx_layer_name(imp, nb, "neg");
      if (!neg) return onx_fail(imp, "out of memory");
      onx_emit(imp, neg, "scale: {factor: -1.0}", &b->layer, 1);
      from[1] = neg;
    }
    onx_emit(imp, name, op[0] == 'M' ? "mul" : "add", from, 2);
    return onx_define_act(imp, name, a->rank, a->dim);
  }
  const onx_tensor *x = a->kind == ONX_ACT ? a : b, *c = a->kind == ONX_ACT ? b : a;
  if (op[0] == 'A' || op[0] == 'S')
    return onx_fail(imp, "adding a constant to a computed tensor is not supported (only as the bias right after a MatMul)");
  if (op[0] == 'D' && x == b) return onx_fail(imp, "dividing a constant by a computed tensor is not supported");
  int recip = op[0] == 'D';
  if (c->n == 1) { /* a scalar: scale */
    float v = recip ? 1.0f / c->f[0] : c->f[0];
    if (!isfinite(v)) return onx_fail(imp, "scaling by %g is not supported", (double)v);
    if (!(name = onx_layer_for(imp, "scale"))) return -1;
    onx_buf t = {0};
    onx_puts(&t, "scale: {factor: ");
    onx_put_float(&t, v);
    onx_puts(&t, "}");
    if (t.oom) return free(t.s), onx_fail(imp, "out of memory");
    onx_emit(imp, name, t.s, &x->layer, 1);
    free(t.s);
    return onx_define_act(imp, name, x->rank, x->dim);
  }
  const char *cname;
  if (broadcast_const(imp, x, c, recip, &cname)) return -1;
  if (!(name = onx_layer_for(imp, "mul"))) return -1;
  from[0] = x->layer, from[1] = cname;
  snprintf(type, sizeof type, "mul");
  onx_emit(imp, name, type, from, 2);
  return onx_define_act(imp, name, x->rank, x->dim);
}

/* Sum of computed tensors of one shape: `add`. */
static int op_sum(onx_imp *imp) {
  const Onnx__NodeProto *n = imp->node;
  if (onx_attr_check(imp, NONE)) return -1;
  if (n->n_input < 2 || n->n_input > 16) return onx_fail(imp, "%zu inputs (2 to 16 supported)", n->n_input);
  const char *from[16];
  const onx_tensor *x0 = NULL;
  for (size_t k = 0; k < n->n_input; k++) {
    int i = onx_act(imp, (int)k);
    if (i < 0) return -1;
    const onx_tensor *x = &imp->t[i];
    if (!x0) x0 = x;
    else if (x->rank != x0->rank || memcmp(x->dim + 1, x0->dim + 1, (size_t)(x->rank - 1) * sizeof *x->dim))
      return onx_fail(imp, "operands %s and %s differ in shape", ONX_SHAPE(x0), ONX_SHAPE(x));
    from[k] = x->layer;
  }
  const char *name = onx_layer_for(imp, "add");
  if (!name) return -1;
  onx_emit(imp, name, "add", from, (int)n->n_input);
  return onx_define_act(imp, name, x0->rank, x0->dim);
}

/* ReduceSum over consecutive feature axes: `reduce_sum`. */
static int op_reduce_sum(onx_imp *imp) {
  if (onx_attr_check(imp, KNOWN("axes", "keepdims", "noop_with_empty_axes"))) return -1;
  int64_t axes[ONX_MAX_RANK], keep, noop;
  int na = 0;
  if (onx_attr_int(imp, "keepdims", 1, &keep) < 0 || onx_attr_int(imp, "noop_with_empty_axes", 0, &noop) < 0) return -1;
  if (imp->opset < 13) {
    if (onx_attr_ints(imp, "axes", axes, ONX_MAX_RANK, &na) < 0) return -1;
  } else {
    int ai = onx_cst(imp, 1, 1);
    if (ai == -1) return -1;
    for (int64_t k = 0; ai >= 0 && k < imp->t[ai].n && k < ONX_MAX_RANK; k++) axes[na++] = imp->t[ai].i[k];
  }
  int xi = onx_act(imp, 0);
  if (xi < 0) return -1;
  const onx_tensor *x = &imp->t[xi];
  if (!na && noop) return onx_fail(imp, "noop_with_empty_axes=1 is not supported");
  if (!na)
    for (int k = 1; k < x->rank; k++) axes[na++] = k;
  for (int k = 0; k < na; k++) {
    if (axes[k] < 0) axes[k] += x->rank;
    if (axes[k] < 1 || axes[k] >= x->rank || (k && axes[k] != axes[0] + k))
      return onx_fail(imp, "axes must be consecutive feature axes of %s, in order", ONX_SHAPE(x));
  }
  int64_t dim[ONX_MAX_RANK];
  int r = 0;
  for (int k = 0; k < x->rank; k++)
    if (k < axes[0] || k > axes[na - 1]) dim[r++] = x->dim[k];
    else if (keep) dim[r++] = 1;
  const char *name = onx_layer_for(imp, "reduce_sum");
  if (!name) return -1;
  char t[96];
  snprintf(t, sizeof t, "reduce_sum: {axis: %lld%s}", (long long)axes[0], keep ? ", keepdim: true" : "");
  if (na > 1) {
    onx_buf b = {0};
    onx_puts(&b, "reduce_sum: {axes: [");
    for (int k = 0; k < na; k++) onx_printf(&b, "%s%lld", k ? ", " : "", (long long)axes[k]);
    onx_printf(&b, "]%s}", keep ? ", keepdim: true" : "");
    if (b.oom) return free(b.s), onx_fail(imp, "out of memory");
    onx_emit(imp, name, b.s, &x->layer, 1);
    free(b.s);
  } else {
    onx_emit(imp, name, t, &x->layer, 1);
  }
  return onx_define_act(imp, name, r, dim);
}

static int op_softmax(onx_imp *imp, const char *type) {
  if (onx_attr_check(imp, KNOWN("axis"))) return -1;
  int xi = onx_act(imp, 0);
  if (xi < 0) return -1;
  const onx_tensor *x = &imp->t[xi];
  int64_t axis;
  if (onx_attr_int(imp, "axis", imp->opset < 13 ? 1 : -1, &axis) < 0) return -1;
  if (axis < 0) axis += x->rank;
  if (axis < 1 || axis >= x->rank) return onx_fail(imp, "axis %lld of input %s is not supported (the batch or out of range)", (long long)axis, ONX_SHAPE(x));
  if (imp->opset < 13 && onx_numel_from(x, (int)axis + 1) != 1)
    return onx_fail(imp, "before opset 13 softmax runs over axes %lld.. flattened; only the last axis is supported", (long long)axis);
  const char *name = onx_layer_for(imp, type);
  if (!name) return -1;
  char t[64];
  snprintf(t, sizeof t, "%s: {axis: %lld}", type, (long long)axis);
  onx_emit(imp, name, t, &x->layer, 1);
  return onx_define_act(imp, name, x->rank, x->dim);
}

/* ---- pooling ------------------------------------------------------------------------------------- */

static int op_pool(onx_imp *imp, int max, int global) {
  int xi;
  int64_t ks[4], st[4], pads[8], pd[2] = {0, 0}, cip = 0, ceil_mode = 0, out[4];
  int nks = 0, nst = 0, np = 0;
  if (global) {
    if (onx_attr_check(imp, NONE)) return -1;
  } else {
    if (onx_attr_check(imp, max ? KNOWN("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides")
                                : KNOWN("auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides")) ||
        check_auto_pad(imp) || ones(imp, "dilations") || onx_attr_ints(imp, "kernel_shape", ks, 4, &nks) < 0 ||
        onx_attr_ints(imp, "strides", st, 4, &nst) < 0 || onx_attr_ints(imp, "pads", pads, 8, &np) < 0 ||
        check_pads(imp, pads, np, pd) || onx_attr_int(imp, "ceil_mode", 0, &ceil_mode) < 0 ||
        onx_attr_int(imp, "count_include_pad", 0, &cip) < 0)
      return -1;
    int64_t so;
    if (max && (onx_attr_int(imp, "storage_order", 0, &so) < 0 || so)) return so ? onx_fail(imp, "storage_order=1 is not supported") : -1;
    if (nks != 2) return onx_fail(imp, "kernel_shape must have 2 entries");
    if (nst && nst != 2) return onx_fail(imp, "strides has %d entries; 2 expected", nst);
    if (!nst) st[0] = st[1] = 1;
  }
  if (onx_has_output(imp, 1)) return onx_fail(imp, "the Indices output is not supported");
  if (!max && !cip && (pd[0] || pd[1]))
    return onx_fail(imp, "count_include_pad=0 with padding is not supported (snc counts the padding, as PyTorch's default)");
  int pi = onx_input(imp, 0);
  if (pi >= 0 && imp->t[pi].kind == ONX_PAD && !max) { /* a zero Pad is counted: the pool's padding */
    const int64_t *q = imp->t[pi].pads;
    if (q[0] != q[2] || q[1] != q[3]) return onx_fail(imp, "the Pad before it is asymmetric");
    pd[0] += q[0], pd[1] += q[1];
    xi = imp->t[pi].src;
  } else if ((xi = onx_act(imp, 0)) < 0) {
    return -1;
  }
  const onx_tensor *x = &imp->t[xi];
  if (x->rank != 4) return onx_fail(imp, "input %s: 2-D pooling needs [B,C,H,W]", ONX_SHAPE(x));
  if (global) ks[0] = st[0] = x->dim[2], ks[1] = st[1] = x->dim[3];
  out[0] = ONX_BATCH, out[1] = x->dim[1];
  for (int d = 0; d < 2; d++) {
    if (2 * pd[d] > ks[d]) return onx_fail(imp, "padding %lld is more than half the kernel %lld", (long long)pd[d], (long long)ks[d]);
    if (window(imp, x->dim[2 + d], ks[d], st[d], pd[d], &out[2 + d])) return -1;
    if (ceil_mode && (x->dim[2 + d] + 2 * pd[d] - ks[d]) % st[d])
      return onx_fail(imp, "ceil_mode=1 is not supported where it changes the output size");
  }
  const char *name = onx_layer_for(imp, max ? "maxpool" : "avgpool");
  if (!name) return -1;
  char t[160];
  snprintf(t, sizeof t, "%s: {kernel: [%lld, %lld], stride: [%lld, %lld], padding: [%lld, %lld]}", max ? "maxpool2d" : "avgpool2d",
           (long long)ks[0], (long long)ks[1], (long long)st[0], (long long)st[1], (long long)pd[0], (long long)pd[1]);
  onx_emit(imp, name, t, &x->layer, 1);
  return onx_define_act(imp, name, 4, out);
}

/* ---- the rest: onnx_shape_ops.c ------------------------------------------------------------------ */

int onx_translate(onx_imp *imp, int idx) {
  const Onnx__NodeProto *n = imp->node;
  const char *op = n->op_type ? n->op_type : "";
  if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
    return onx_fail(imp, "operators of domain '%.100s' are not supported", n->domain);
  if (!strcmp(op, "Conv")) return op_conv(imp);
  if (!strcmp(op, "Gemm")) return op_gemm(imp);
  if (!strcmp(op, "MatMul")) return op_matmul(imp, idx);
  if (!strcmp(op, "BatchNormalization")) return op_batchnorm(imp);
  if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div")) return op_binary(imp, op);
  if (!strcmp(op, "Sum")) return op_sum(imp);
  if (!strcmp(op, "ReduceSum")) return op_reduce_sum(imp);
  if (!strcmp(op, "Relu")) return op_unary(imp, "relu", NULL, 0, NULL);
  if (!strcmp(op, "Tanh")) return op_unary(imp, "tanh", NULL, 0, NULL);
  if (!strcmp(op, "Sigmoid")) return op_unary(imp, "sigmoid", NULL, 0, NULL);
  if (!strcmp(op, "LeakyRelu")) return op_unary(imp, "leaky_relu", "alpha", 0.01f, "slope");
  if (!strcmp(op, "Elu")) return op_unary(imp, "elu", "alpha", 1.0f, "alpha");
  if (!strcmp(op, "Softmax")) return op_softmax(imp, "softmax");
  if (!strcmp(op, "LogSoftmax")) return op_softmax(imp, "log_softmax");
  if (!strcmp(op, "MaxPool")) return op_pool(imp, 1, 0);
  if (!strcmp(op, "AveragePool")) return op_pool(imp, 0, 0);
  if (!strcmp(op, "GlobalAveragePool")) return op_pool(imp, 0, 1);
  int handled = 0, rc = onx_shape_op(imp, op, &handled);
  if (handled) return rc;
  return onx_fail(imp, "operator '%.60s' is not supported (docs/onnx.md lists the supported ones)", op);
}
