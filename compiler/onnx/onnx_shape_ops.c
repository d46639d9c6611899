/* ONNX operators that move data or compute shapes: Dropout, Pad, Flatten, Reshape, Transpose,
 * Concat, Slice, Gather, Identity, Constant, and the shape arithmetic (Shape, Unsqueeze, Squeeze,
 * Cast) that an export without constant folding writes around Reshape. Shape values are folded to
 * constants; the batch size is the symbol ONX_BATCH inside them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

#define KNOWN(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE ((const char *const[]){NULL})

/* Output 0 is input k under another name (Identity, Dropout off, a no-op reshape). */
static int alias(onx_imp *imp, int k) {
  int i = onx_input(imp, k);
  if (i < 0) return -1;
  onx_tensor t = imp->t[i];
  if (t.kind == ONX_CONST) { /* the table owns each array once: copy */
    float *f = malloc((size_t)(t.n ? t.n : 1) * sizeof *f);
    int64_t *v = malloc((size_t)(t.n ? t.n : 1) * sizeof *v);
    if (!f || !v) return free(f), free(v), onx_fail(imp, "out of memory");
    memcpy(f, t.f, (size_t)t.n * sizeof *f);
    memcpy(v, t.i, (size_t)t.n * sizeof *v);
    return onx_define_const(imp, t.rank, t.dim, t.n, f, v, t.integer);
  }
  t.init = 0;
  return onx_define(imp, 0, &t);
}

/* A constant's copy with a new shape (the same elements). */
static int const_reshaped(onx_imp *imp, const onx_tensor *c, int rank, const int64_t *dim) {
  float *f = malloc((size_t)(c->n ? c->n : 1) * sizeof *f);
  int64_t *v = malloc((size_t)(c->n ? c->n : 1) * sizeof *v);
  if (!f || !v) return free(f), free(v), onx_fail(imp, "out of memory");
  memcpy(f, c->f, (size_t)c->n * sizeof *f);
  memcpy(v, c->i, (size_t)c->n * sizeof *v);
  return onx_define_const(imp, rank, dim, c->n, f, v, c->integer);
}

/* A reshape layer of x to the full shape dim[0..rank) (dim[0] the batch); none when nothing changes. */
static int reshape_to(onx_imp *imp, const onx_tensor *x, int rank, const int64_t *dim, const char *fallback) {
  if (rank - 1 > SNC_MAX_DIMS - 1 || rank < 1) return onx_fail(imp, "a result of rank %d is not supported", rank);
  if (rank == x->rank && !memcmp(dim + 1, x->dim + 1, (size_t)(rank - 1) * sizeof *dim)) return alias(imp, 0);
  const char *name = onx_layer_for(imp, fallback);
  if (!name) return -1;
  onx_buf t = {0};
  onx_puts(&t, "reshape: {shape: [");
  for (int k = 1; k < rank; k++) onx_printf(&t, "%s%lld", k > 1 ? ", " : "", (long long)dim[k]);
  onx_puts(&t, "]}");
  if (t.oom) return free(t.s), onx_fail(imp, "out of memory");
  onx_emit(imp, name, t.s, &x->layer, 1);
  free(t.s);
  return onx_define_act(imp, name, rank, dim);
}

static int op_dropout(onx_imp *imp) {
  if (onx_attr_check(imp, KNOWN("ratio", "seed", "is_test"))) return -1;
  float p = 0.5f;
  if (imp->opset < 12) {
    if (onx_attr_float(imp, "ratio", 0.5f, &p) < 0) return -1;
  } else {
    int ri = onx_cst(imp, 1, 1);
    if (ri == -1) return -1;
    if (ri >= 0) {
      if (imp->t[ri].n != 1) return onx_fail(imp, "ratio must be a scalar");
      p = imp->t[ri].f[0];
    }
  }
  if (onx_has_output(imp, 1)) return onx_fail(imp, "the mask output is not supported");
  int xi = onx_act(imp, 0);
  if (xi < 0) return -1;
  if (!(p >= 0 && p < 1)) return onx_fail(imp, "ratio %g is out of range [0, 1)", (double)p);
  if (p == 0) return alias(imp, 0);
  const char *name = onx_layer_for(imp, "dropout");
  if (!name) return -1;
  onx_buf t = {0};
  onx_puts(&t, "dropout: {p: ");
  onx_put_float(&t, p);
  onx_puts(&t, "}");
  if (t.oom) return free(t.s), onx_fail(imp, "out of memory");
  onx_emit(imp, name, t.s, &imp->t[xi].layer, 1);
  free(t.s);
  return onx_define_act(imp, name, imp->t[xi].rank, imp->t[xi].dim);
}

/* A zero constant Pad of H and W: kept aside for the Conv that reads it. */
static int op_pad(onx_imp *imp) {
  if (onx_attr_check(imp, KNOWN("mode"))) return -1;
  const Onnx__AttributeProto *m = onx_attr(imp, "mode");
  if (m && !(m->has_s && m->s.len == 8 && !memcmp(m->s.data, "constant", 8)))
    return onx_fail(imp, "mode %.*s is not supported (only constant)", m->has_s ? (int)(m->s.len > 20 ? 20 : m->s.len) : 0,
                    m->has_s ? (const char *)m->s.data : "");
  int xi = onx_act(imp, 0), pi = onx_cst(imp, 1, 0), vi = onx_cst(imp, 2, 1);
  if (xi < 0 || pi < 0 || vi == -1) return -1;
  if (onx_has_output(imp, 0) && imp->node->n_input > 3 && *imp->node->input[3])
    return onx_fail(imp, "the axes input is not supported");
  const onx_tensor *x = &imp->t[xi], *p = &imp->t[pi];
  if (vi >= 0 && (imp->t[vi].n != 1 || imp->t[vi].f[0] != 0)) return onx_fail(imp, "only zero padding is supported");
  if (x->rank != 4 || p->n != 8) return onx_fail(imp, "only pads of the two spatial axes of [B,C,H,W] are supported");
  const int64_t *q = p->i;
  if (q[0] || q[1] || q[4] || q[5]) return onx_fail(imp, "padding the batch or channel axis is not supported");
  for (int k = 0; k < 8; k++)
    if (q[k] < 0 || q[k] > 4096) return onx_fail(imp, "pad %lld is out of range", (long long)q[k]);
  if (!q[2] && !q[3] && !q[6] && !q[7]) return alias(imp, 0); /* what opset-11 exports put before pooling */
  onx_tensor t = {.kind = ONX_PAD, .src = xi, .rank = 4, .pads = {q[2], q[3], q[6], q[7]}};
  memcpy(t.dim, x->dim, sizeof t.dim);
  t.dim[2] += q[2] + q[6];
  t.dim[3] += q[3] + q[7];
  return onx_define(imp, 0, &t);
}

static int op_flatten(onx_imp *imp) {
  if (onx_attr_check(imp, KNOWN("axis"))) return -1;
  int xi = onx_act(imp, 0);
  int64_t axis;
  if (xi < 0 || onx_attr_int(imp, "axis", 1, &axis) < 0) return -1;
  const onx_tensor *x = &imp->t[xi];
  if (axis < 0) axis += x->rank;
  if (axis < 1 || axis > x->rank) return onx_fail(imp, "axis %lld of input %s is not supported (it would merge the batch)", (long long)axis, ONX_SHAPE(x));
  int64_t dim[ONX_MAX_RANK] = {ONX_BATCH};
  int r = 1;
  for (int k = 1; k < axis; k++) dim[r++] = x->dim[k];
  dim[r++] = onx_numel_from(x, (int)axis);
  if (axis == 1 && x->rank > 2) { /* the usual one: `flatten` */
    const char *name = onx_layer_for(imp, "flatten");
    if (!name) return -1;
    onx_emit(imp, name, "flatten", &x->layer, 1);
    return onx_define_act(imp, name, 2, dim);
  }
  return reshape_to(imp, x, r, dim, "reshape");
}

static int op_reshape(onx_imp *imp) {
  if (onx_attr_check(imp, KNOWN("allowzero"))) return -1;
  int64_t allowzero;
  if (onx_attr_int(imp, "allowzero", 0, &allowzero) < 0) return -1;
  int xi = onx_act(imp, 0), si = onx_cst(imp, 1, 0);
  if (xi < 0 || si < 0) return -1;
  const onx_tensor *x = &imp->t[xi], *s = &imp->t[si];
  if (!s->integer || s->rank != 1) return onx_fail(imp, "the shape must be a list of integers");
  if (s->n < 1 || s->n > SNC_MAX_DIMS) return onx_fail(imp, "a target shape of %lld axes is not supported", (long long)s->n);
  int64_t dim[ONX_MAX_RANK] = {ONX_BATCH}, per = onx_numel_from(x, 1), known = 1;
  int infer = -1, r = (int)s->n;
  int64_t s0 = s->i[0];
  int batch_inferred = s0 == -1;
  if (!(s0 == ONX_BATCH || (s0 == 0 && !allowzero) || s0 == -1 || (imp->fixed_batch > 0 && s0 == imp->fixed_batch)))
    return onx_fail(imp, "the target shape's first axis (%lld) must stay the batch", (long long)s0);
  for (int k = 1; k < r; k++) {
    int64_t d = s->i[k];
    if (d == 0 && !allowzero) {
      if (k >= x->rank) return onx_fail(imp, "shape entry %d is 0 (copy) but the input %s has no axis %d", k, ONX_SHAPE(x), k);
      d = x->dim[k];
    }
    if (d == -1) {
      if (infer >= 0 || batch_inferred) return onx_fail(imp, "more than one -1 in the target shape");
      infer = k;
      continue;
    }
    if (d < 1 || d > ONX_MAX_ELEMS || known > ONX_MAX_ELEMS / d)
      return onx_fail(imp, "shape entry %lld is not supported (the batch is the first axis only)", (long long)d);
    dim[k] = d;
    known *= d;
  }
  if (infer >= 0) {
    if (per % known) return onx_fail(imp, "cannot reshape input %s (%lld values per sample) with the target shape", ONX_SHAPE(x), (long long)per);
    dim[infer] = per / known;
  } else if (known != per) {
    return onx_fail(imp, "target shape holds %lld values per sample, input %s has %lld", (long long)known, ONX_SHAPE(x), (long long)per);
  }
  return reshape_to(imp, x, r, dim, "reshape");
}

static int op_transpose(onx_imp *imp) {
  if (onx_attr_check(imp, KNOWN("perm"))) return -1;
  int xi = onx_act(imp, 0);
  if (xi < 0) return -1;
  const onx_tensor *x = &imp->t[xi];
  int64_t perm[ONX_MAX_RANK], dim[ONX_MAX_RANK];
  int np, used[ONX_MAX_RANK] = {0};
  if (onx_attr_ints(imp, "perm", perm, ONX_MAX_RANK, &np) < 0) return -1;
  if (!np)
    for (int k = 0; k < x->rank; k++) perm[np++] = x->rank - 1 - k;
  if (np != x->rank) return onx_fail(imp, "perm has %d entries for input %s", np, ONX_SHAPE(x));
  for (int k = 0; k < np; k++) {
    if (perm[k] < 0 || perm[k] >= np || used[perm[k]]++) return onx_fail(imp, "perm is not a permutation");
    dim[k] = x->dim[perm[k]];
  }
  if (perm[0] != 0) return onx_fail(imp, "moving the batch axis is not supported");
  for (int k = 1, last = 0; k < np; k++) /* a no-op when the axes longer than 1 keep their order */
    if (x->dim[perm[k]] != 1) {
      if (perm[k] < last) return onx_fail(imp, "perm reorders the data of input %s; only layout no-ops are supported", ONX_SHAPE(x));
      last = (int)perm[k];
    }
  dim[0] = ONX_BATCH;
  return reshape_to(imp, x, np, dim, "reshape");
}

static int op_concat(onx_imp *imp) {
  if (onx_attr_check(imp, KNOWN("axis"))) return -1;
  int64_t axis;
  const Onnx__NodeProto *n = imp->node;
  if (onx_attr_int(imp, "axis", 0, &axis) < 0) return -1;
  if (!onx_attr(imp, "axis")) return onx_fail(imp, "attribute 'axis' is required");
  if (n->n_input < 1 || n->n_input > 16) return onx_fail(imp, "%zu inputs (1 to 16 supported)", n->n_input);
  int idx[16], nconst = 0;
  for (size_t k = 0; k < n->n_input; k++) {
    if ((idx[k] = onx_input(imp, (int)k)) < 0) return -1;
    nconst += imp->t[idx[k]].kind == ONX_CONST;
  }
  if (nconst == (int)n->n_input) { /* shape lists: rank 1 */
    int64_t total = 0;
    for (size_t k = 0; k < n->n_input; k++) {
      if (imp->t[idx[k]].rank != 1) return onx_fail(imp, "concatenating constants of rank other than 1 is not supported");
      total += imp->t[idx[k]].n;
    }
    float *f = malloc((size_t)(total ? total : 1) * sizeof *f);
    int64_t *v = malloc((size_t)(total ? total : 1) * sizeof *v);
    if (!f || !v) return free(f), free(v), onx_fail(imp, "out of memory");
    int64_t at = 0;
    int integer = 1;
    for (size_t k = 0; k < n->n_input; k++) {
      const onx_tensor *c = &imp->t[idx[k]];
      memcpy(f + at, c->f, (size_t)c->n * sizeof *f);
      memcpy(v + at, c->i, (size_t)c->n * sizeof *v);
      at += c->n;
      integer &= c->integer;
    }
    return onx_define_const(imp, 1, &total, total, f, v, integer);
  }
  const char *from[16];
  int64_t dim[ONX_MAX_RANK];
  for (size_t k = 0; k < n->n_input; k++) {
    int i = onx_act(imp, (int)k);
    if (i < 0) return -1;
    const onx_tensor *x = &imp->t[i];
    if (k == 0) {
      if (axis < 0) axis += x->rank;
      if (axis < 1 || axis >= x->rank) return onx_fail(imp, "axis %lld of input %s is not supported", (long long)axis, ONX_SHAPE(x));
      memcpy(dim, x->dim, sizeof dim);
      dim[axis] = 0;
    } else if (x->rank != imp->t[idx[0]].rank) {
      return onx_fail(imp, "inputs of different ranks");
    }
    for (int d = 1; d < x->rank; d++)
      if (d != axis && x->dim[d] != imp->t[idx[0]].dim[d])
        return onx_fail(imp, "input %s does not match %s off the concatenation axis", ONX_SHAPE(x), ONX_SHAPE(&imp->t[idx[0]]));
    dim[axis] += x->dim[axis];
    from[k] = x->layer;
  }
  if (n->n_input == 1) return alias(imp, 0);
  const char *name = onx_layer_for(imp, "concat");
  if (!name) return -1;
  char t[48];
  snprintf(t, sizeof t, "concat: {axis: %lld}", (long long)axis);
  onx_emit(imp, name, t, from, (int)n->n_input);
  return onx_define_act(imp, name, imp->t[idx[0]].rank, dim);
}

static int64_t clampi(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

static int op_slice(onx_imp *imp) {
  if (onx_attr_check(imp, NONE)) return -1;
  int xi = onx_input(imp, 0), si = onx_cst(imp, 1, 0), ei = onx_cst(imp, 2, 0), ai = onx_cst(imp, 3, 1),
      pi = onx_cst(imp, 4, 1);
  if (xi < 0 || si < 0 || ei < 0 || ai == -1 || pi == -1) return -1;
  const onx_tensor *x = &imp->t[xi], *s = &imp->t[si], *e = &imp->t[ei];
  int64_t n = s->n;
  if (e->n != n || (ai >= 0 && imp->t[ai].n != n) || (pi >= 0 && imp->t[pi].n != n) || n > ONX_MAX_RANK)
    return onx_fail(imp, "starts, ends, axes and steps differ in length");
  if (x->kind == ONX_PAD) return onx_fail(imp, "reads the output of a Pad, which is supported only right before a Conv");
  int64_t lo[ONX_MAX_RANK], hi[ONX_MAX_RANK];
  for (int k = 0; k < x->rank; k++) lo[k] = 0, hi[k] = x->kind == ONX_CONST && k == 0 && x->rank == 1 ? x->n : x->dim[k];
  for (int64_t k = 0; k < n; k++) {
    int64_t a = ai >= 0 ? imp->t[ai].i[k] : k, step = pi >= 0 ? imp->t[pi].i[k] : 1;
    if (a < 0) a += x->rank;
    if (a < 0 || a >= x->rank) return onx_fail(imp, "axis %lld is out of range", (long long)a);
    if (step != 1) return onx_fail(imp, "steps other than 1 are not supported");
    int64_t d = hi[a], st = s->i[k], en = e->i[k];
    if (st == ONX_BATCH || en == ONX_BATCH) return onx_fail(imp, "slicing at the batch size is not supported");
    if (x->kind == ONX_ACT && a == 0) { /* the whole batch: nothing to do */
      if (st == 0 && en >= INT32_MAX) continue;
      return onx_fail(imp, "slicing the batch axis is not supported");
    }
    if (st < 0) st += d;
    if (en < 0) en += d;
    lo[a] = clampi(st, 0, d);
    hi[a] = clampi(en, 0, d);
    if (hi[a] <= lo[a]) return onx_fail(imp, "the slice of axis %lld is empty", (long long)a);
  }
  if (x->kind == ONX_CONST) { /* a shape list */
    if (x->rank != 1) return onx_fail(imp, "slicing constants of rank other than 1 is not supported");
    int64_t m = hi[0] - lo[0];
    float *f = malloc((size_t)m * sizeof *f);
    int64_t *v = malloc((size_t)m * sizeof *v);
    if (!f || !v) return free(f), free(v), onx_fail(imp, "out of memory");
    memcpy(f, x->f + lo[0], (size_t)m * sizeof *f);
    memcpy(v, x->i + lo[0], (size_t)m * sizeof *v);
    return onx_define_const(imp, 1, &m, m, f, v, x->integer);
  }
  if ((xi = onx_act(imp, 0)) < 0) return -1;
  int axis = -1;
  for (int k = 1; k < x->rank; k++)
    if (lo[k] != 0 || hi[k] != x->dim[k]) {
      if (axis >= 0) return onx_fail(imp, "slicing more than one axis is not supported");
      axis = k;
    }
  if (lo[0] != 0 || hi[0] != x->dim[0]) return onx_fail(imp, "slicing the batch axis is not supported");
  if (axis < 0) return alias(imp, 0);
  const char *name = onx_layer_for(imp, "slice");
  if (!name) return -1;
  char t[96];
  int64_t len = hi[axis] - lo[axis], dim[ONX_MAX_RANK];
  if (len == 1) snprintf(t, sizeof t, "select: {index: %lld, axis: %d}", (long long)lo[axis], axis);
  else snprintf(t, sizeof t, "slice: {axis: %d, start: %lld, len: %lld}", axis, (long long)lo[axis], (long long)len);
  onx_emit(imp, name, t, &x->layer, 1);
  memcpy(dim, x->dim, sizeof dim);
  dim[axis] = len;
  return onx_define_act(imp, name, x->rank, dim);
}

static int op_gather(onx_imp *imp) {
  if (onx_attr_check(imp, KNOWN("axis"))) return -1;
  int64_t axis;
  int xi = onx_input(imp, 0), ii = onx_cst(imp, 1, 0);
  if (xi < 0 || ii < 0 || onx_attr_int(imp, "axis", 0, &axis) < 0) return -1;
  const onx_tensor *x = &imp->t[xi], *ix = &imp->t[ii];
  if (!ix->integer) return onx_fail(imp, "indices must be integers");
  if (x->kind == ONX_CONST) { /* picking from a shape list */
    if (x->rank != 1 || (axis != 0 && axis != -1)) return onx_fail(imp, "gathering from constants of rank other than 1 is not supported");
    float *f = malloc((size_t)(ix->n ? ix->n : 1) * sizeof *f);
    int64_t *v = malloc((size_t)(ix->n ? ix->n : 1) * sizeof *v);
    if (!f || !v) return free(f), free(v), onx_fail(imp, "out of memory");
    for (int64_t k = 0; k < ix->n; k++) {
      int64_t j = ix->i[k] < 0 ? ix->i[k] + x->n : ix->i[k];
      if (j < 0 || j >= x->n) return free(f), free(v), onx_fail(imp, "index %lld is out of range", (long long)ix->i[k]);
      f[k] = x->f[j], v[k] = x->i[j];
    }
    return onx_define_const(imp, ix->rank, ix->dim, ix->n, f, v, x->integer);
  }
  if ((xi = onx_act(imp, 0)) < 0) return -1;
  if (axis < 0) axis += x->rank;
  if (axis < 1 || axis >= x->rank) return onx_fail(imp, "axis %lld of input %s is not supported", (long long)axis, ONX_SHAPE(x));
  if (ix->n != 1 || ix->rank > 1) return onx_fail(imp, "only one index is supported (got %s)", ONX_SHAPE(ix));
  int64_t j = ix->i[0] < 0 ? ix->i[0] + x->dim[axis] : ix->i[0];
  if (j < 0 || j >= x->dim[axis]) return onx_fail(imp, "index %lld is out of range for axis %lld of %s", (long long)ix->i[0], (long long)axis, ONX_SHAPE(x));
  const char *name = onx_layer_for(imp, "select");
  if (!name) return -1;
  char t[96];
  snprintf(t, sizeof t, "select: {index: %lld, axis: %lld%s}", (long long)j, (long long)axis, ix->rank ? "" : ", keepdim: false");
  onx_emit(imp, name, t, &x->layer, 1);
  int64_t dim[ONX_MAX_RANK];
  int r = 0;
  for (int k = 0; k < x->rank; k++)
    if (k != axis || ix->rank) dim[r++] = k == axis ? 1 : x->dim[k];
  return onx_define_act(imp, name, r, dim);
}

static int op_constant(onx_imp *imp) {
  const Onnx__NodeProto *n = imp->node;
  if (n->n_attribute != 1) return onx_fail(imp, "needs exactly one value attribute");
  const Onnx__AttributeProto *a = n->attribute[0];
  const char *an = a->name ? a->name : "";
  onx_tensor t;
  if (!strcmp(an, "value") && a->t) {
    if (onx_decode_tensor(imp, a->t, n->n_output ? n->output[0] : "", &t)) return -1;
    return onx_define_const(imp, t.rank, t.dim, t.n, t.f, t.i, t.integer);
  }
  int integer = !strcmp(an, "value_int") || !strcmp(an, "value_ints");
  int list = !strcmp(an, "value_ints") || !strcmp(an, "value_floats");
  if (!integer && !list && strcmp(an, "value_float")) return onx_fail(imp, "attribute '%.60s' is not supported", an);
  int64_t cnt = list ? (int64_t)(integer ? a->n_ints : a->n_floats) : 1;
  float *f = malloc((size_t)(cnt ? cnt : 1) * sizeof *f);
  int64_t *v = malloc((size_t)(cnt ? cnt : 1) * sizeof *v);
  if (!f || !v) return free(f), free(v), onx_fail(imp, "out of memory");
  for (int64_t k = 0; k < cnt; k++) {
    v[k] = integer ? (list ? a->ints[k] : a->i) : 0;
    f[k] = integer ? (float)v[k] : list ? a->floats[k] : a->f;
  }
  return onx_define_const(imp, list, &cnt, cnt, f, v, integer);
}

static int op_shape(onx_imp *imp) {
  if (onx_attr_check(imp, KNOWN("start", "end"))) return -1;
  int xi = onx_act(imp, 0);
  int64_t start, end;
  if (xi < 0) return -1;
  const onx_tensor *x = &imp->t[xi];
  if (onx_attr_int(imp, "start", 0, &start) < 0 || onx_attr_int(imp, "end", x->rank, &end) < 0) return -1;
  if (start < 0) start += x->rank;
  if (end < 0) end += x->rank;
  start = clampi(start, 0, x->rank), end = clampi(end, start, x->rank);
  int64_t m = end - start;
  float *f = malloc((size_t)(m ? m : 1) * sizeof *f);
  int64_t *v = malloc((size_t)(m ? m : 1) * sizeof *v);
  if (!f || !v) return free(f), free(v), onx_fail(imp, "out of memory");
  for (int64_t k = 0; k < m; k++) v[k] = x->dim[start + k], f[k] = v[k] == ONX_BATCH ? -1.0f : (float)v[k];
  return onx_define_const(imp, 1, &m, m, f, v, 1);
}

/* Unsqueeze / Squeeze: the axes from the attribute (before opset 13) or the second input. */
static int op_squeeze(onx_imp *imp, int unsq) {
  if (onx_attr_check(imp, KNOWN("axes"))) return -1;
  int64_t axes[ONX_MAX_RANK];
  int na = 0;
  if (imp->opset < 13) {
    if (onx_attr_ints(imp, "axes", axes, ONX_MAX_RANK, &na) < 0) return -1;
  } else {
    int ai = onx_cst(imp, 1, 1);
    if (ai == -1) return -1;
    if (ai >= 0) {
      if (imp->t[ai].n > ONX_MAX_RANK) return onx_fail(imp, "too many axes");
      for (int64_t k = 0; k < imp->t[ai].n; k++) axes[na++] = imp->t[ai].i[k];
    }
  }
  int xi = onx_input(imp, 0);
  if (xi < 0) return -1;
  const onx_tensor *x = &imp->t[xi];
  if (x->kind == ONX_PAD) return onx_fail(imp, "reads the output of a Pad, which is supported only right before a Conv");
  int rank = x->rank, out = unsq ? rank + na : rank, drop[ONX_MAX_RANK + 8] = {0};
  if (unsq && !na) return onx_fail(imp, "needs axes");
  if (out > ONX_MAX_RANK) return onx_fail(imp, "a result of rank %d is not supported", out);
  int64_t dim[ONX_MAX_RANK];
  for (int k = 0; k < na; k++) {
    int64_t a = axes[k] < 0 ? axes[k] + out : axes[k];
    if (a < 0 || a >= out || drop[a]++) return onx_fail(imp, "axis %lld is out of range or repeated", (long long)axes[k]);
    if (!unsq && x->dim[a] != 1) return onx_fail(imp, "axis %lld has size %lld, not 1", (long long)a, (long long)x->dim[a]);
  }
  int r = 0;
  if (unsq) {
    for (int k = 0, j = 0; k < out; k++) dim[r++] = drop[k] ? 1 : x->dim[j++];
  } else {
    for (int k = 0; k < rank; k++)
      if (!(na ? drop[k] : x->dim[k] == 1 && (x->kind == ONX_CONST || k > 0))) dim[r++] = x->dim[k];
  }
  if (x->kind == ONX_CONST) return const_reshaped(imp, x, r, dim);
  if (drop[0] && na) return onx_fail(imp, "the batch axis must stay the first");
  if (onx_act(imp, 0) < 0) return -1;
  return reshape_to(imp, x, r, dim, unsq ? "unsqueeze" : "squeeze");
}

static int op_cast(onx_imp *imp) {
  if (onx_attr_check(imp, KNOWN("to", "saturate"))) return -1;
  int64_t to;
  if (onx_attr_int(imp, "to", 0, &to) < 0) return -1;
  int xi = onx_input(imp, 0);
  if (xi < 0) return -1;
  const onx_tensor *x = &imp->t[xi];
  if (x->kind == ONX_CONST) {
    if (to != ONX_FLOAT && to != ONX_INT64 && to != ONX_INT32 && to != ONX_DOUBLE) return onx_fail(imp, "cast to type %lld is not supported", (long long)to);
    int integer = to == ONX_INT64 || to == ONX_INT32;
    float *f = malloc((size_t)(x->n ? x->n : 1) * sizeof *f);
    int64_t *v = malloc((size_t)(x->n ? x->n : 1) * sizeof *v);
    if (!f || !v) return free(f), free(v), onx_fail(imp, "out of memory");
    for (int64_t k = 0; k < x->n; k++) {
      v[k] = integer ? (x->integer ? x->i[k] : (int64_t)x->f[k]) : 0;
      f[k] = integer ? (float)v[k] : x->f[k];
    }
    return onx_define_const(imp, x->rank, x->dim, x->n, f, v, integer);
  }
  if (x->kind != ONX_ACT || (to != ONX_FLOAT) || x->i32) return onx_fail(imp, "only casts of float32 tensors to float32 are supported");
  return alias(imp, 0);
}

int onx_shape_op(onx_imp *imp, const char *op, int *handled) {
  *handled = 1;
  if (!strcmp(op, "Dropout")) return op_dropout(imp);
  if (!strcmp(op, "Pad")) return op_pad(imp);
  if (!strcmp(op, "Flatten")) return op_flatten(imp);
  if (!strcmp(op, "Reshape")) return op_reshape(imp);
  if (!strcmp(op, "Transpose")) return op_transpose(imp);
  if (!strcmp(op, "Concat")) return op_concat(imp);
  if (!strcmp(op, "Slice")) return op_slice(imp);
  if (!strcmp(op, "Gather")) return op_gather(imp);
  if (!strcmp(op, "Identity")) return onx_attr_check(imp, NONE) ? -1 : alias(imp, 0);
  if (!strcmp(op, "Constant")) return op_constant(imp);
  if (!strcmp(op, "Shape")) return op_shape(imp);
  if (!strcmp(op, "Unsqueeze")) return op_squeeze(imp, 1);
  if (!strcmp(op, "Squeeze")) return op_squeeze(imp, 0);
  if (!strcmp(op, "Cast")) return op_cast(imp);
  *handled = 0;
  return -1;
}
