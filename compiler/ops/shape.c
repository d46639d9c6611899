/* Data movement: reshape (flatten), concat, slice (select one channel of a pair), one_hot.
 *   reshape: attr.to is the per-sample shape, one dim may be -1 (flatten is reshape to [-1]); a copy;
 *   concat: inputs agree on every dim but attr.axis;
 *   slice: keeps attr.len entries from attr.start along attr.axis (a select keeps the axis, len 1);
 *   one_hot(labels int32) -> float32 with a trailing dim of attr.classes (a label outside
 *     [0, classes) gives a row of zeros; the runtime validates labels before);
 * Kernels move 4-byte elements, so reshape, concat and slice carry int32 tensors too.
 * Backward: reshape's is a reshape of dy to the input's per-sample shape; concat's a slice of dy per
 * input; slice_dx(dy) -> attr.to (the input's full shape): zero except the slice (axis, start and
 * len copied from the forward node). one_hot has no gradient (its input is int32). */
#include <string.h>

#include "autodiff/ad.h"
#include "ops/op.h"

static int batch_dims(const snc_node *x) { return (x->flags & SNC_NF_BATCHED) ? 1 : 0; }

static int infer_reshape(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *x = snc_node_in(g, n, 0);
  int b = batch_dims(x);
  int64_t total = snc_shape_numel(&x->shape) / (b ? x->shape.dim[0] : 1), known = 1;
  int free_dim = -1;
  char sx[64];
  if (n->attr.to.rank + b > SNC_MAX_DIMS) return snc_node_errorf(g, n, err, "target rank too large");
  for (int i = 0; i < n->attr.to.rank; i++) {
    int64_t d = n->attr.to.dim[i];
    if (d == -1 && free_dim < 0) free_dim = i;
    else if (d < 1) return snc_node_errorf(g, n, err, "target dimension %lld is not positive", (long long)d);
    else known *= d;
  }
  snc_shape s = {n->attr.to.rank + b, {0}};
  if (b) s.dim[0] = x->shape.dim[0];
  for (int i = 0; i < n->attr.to.rank; i++) s.dim[b + i] = n->attr.to.dim[i];
  if (free_dim >= 0) {
    if (total % known) goto mismatch;
    s.dim[b + free_dim] = total / known;
  } else if (known != total) {
    goto mismatch;
  }
  n->shape = s;
  n->dtype = x->dtype;
  n->flags |= x->flags & SNC_NF_BATCHED;
  return 0;
mismatch:
  return snc_node_errorf(g, n, err, "cannot reshape input '%s' %s (%lld values per sample) to the requested shape",
                         x->name, SNC_SHAPE_STR(g, x->id, sx), (long long)total);
}

static int infer_concat(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *a = snc_node_in(g, n, 0);
  int ax = n->attr.axis;
  char sa[64], sb[64];
  if (ax < batch_dims(a) || ax >= a->shape.rank)
    return snc_node_errorf(g, n, err, "axis %d is not a feature axis of input '%s' %s", ax, a->name,
                           SNC_SHAPE_STR(g, a->id, sa));
  snc_shape s = a->shape;
  for (int k = 1; k < n->ninputs; k++) {
    const snc_node *b = snc_node_in(g, n, k);
    int ok = b->shape.rank == a->shape.rank && b->dtype == a->dtype && batch_dims(b) == batch_dims(a);
    for (int i = 0; ok && i < a->shape.rank; i++)
      if (i != ax && a->shape.dim[i] != b->shape.dim[i]) ok = 0;
    if (!ok)
      return snc_node_errorf(g, n, err, "input '%s' has shape %s but input '%s' has %s; they must agree except on axis %d",
                             a->name, SNC_SHAPE_STR(g, a->id, sa), b->name, SNC_SHAPE_STR(g, b->id, sb), ax);
    s.dim[ax] += b->shape.dim[ax];
  }
  n->shape = s;
  n->dtype = a->dtype;
  n->flags |= a->flags & SNC_NF_BATCHED;
  return 0;
}

static int infer_slice(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *x = snc_node_in(g, n, 0);
  int ax = n->attr.axis;
  char sx[64];
  if (ax < batch_dims(x) || ax >= x->shape.rank)
    return snc_node_errorf(g, n, err, "axis %d is not a feature axis of input '%s' %s", ax, x->name,
                           SNC_SHAPE_STR(g, x->id, sx));
  if (n->attr.start < 0 || n->attr.len < 1 || n->attr.start + (int64_t)n->attr.len > x->shape.dim[ax])
    return snc_node_errorf(g, n, err, "index %d is out of range for axis %d of input '%s' %s (size %lld)",
                           n->attr.start, ax, x->name, SNC_SHAPE_STR(g, x->id, sx), (long long)x->shape.dim[ax]);
  n->shape = x->shape;
  n->shape.dim[ax] = n->attr.len;
  n->dtype = x->dtype;
  n->flags |= x->flags & SNC_NF_BATCHED;
  return 0;
}

static int infer_one_hot(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *x = snc_node_in(g, n, 0);
  if (x->dtype != SNC_I32)
    return snc_node_errorf(g, n, err, "input '%s' is float32; one_hot needs int32 labels", x->name);
  if (n->attr.classes < 2) return snc_node_errorf(g, n, err, "classes must be at least 2");
  if (x->shape.rank + 1 > SNC_MAX_DIMS) return snc_node_errorf(g, n, err, "input rank too large");
  n->shape = x->shape;
  n->shape.dim[n->shape.rank++] = n->attr.classes;
  n->dtype = SNC_F32;
  n->flags |= x->flags & SNC_NF_BATCHED;
  return 0;
}

static int infer_slice_dx(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *dy = snc_node_in(g, n, 0);
  (void)err;
  SNC_ASSERT(dy->dtype == SNC_F32 && dy->shape.rank == n->attr.to.rank && n->attr.axis < dy->shape.rank);
  SNC_ASSERT(n->attr.start >= 0 && n->attr.start + (int64_t)n->attr.len <= n->attr.to.dim[n->attr.axis]);
  n->shape = n->attr.to;
  n->dtype = SNC_F32;
  n->flags = (n->flags & ~SNC_NF_BATCHED) | (n->attr.to_batched ? SNC_NF_BATCHED : 0);
  return 0;
}

/* --- reference kernels --- */

/* A tensor around axis ax as [outer, dim[ax], inner], with the rows in use when batched. */
static int64_t inner_of(const snc_node *x, int ax) {
  int64_t inner = 1;
  for (int i = ax + 1; i < x->shape.rank; i++) inner *= x->shape.dim[i];
  return inner;
}
static int64_t outer_of(const snc_node *x, int ax, const snc_kctx *ctx) {
  int64_t row = x->shape.dim[ax] * inner_of(x, ax);
  return row ? snc_kernel_numel(x, ctx) / row : 0;
}

static void ref_reshape(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  (void)g;
  memcpy(out, in[0], (size_t)snc_kernel_numel(n, ctx) * 4);
}

static void ref_concat(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  int ax = n->attr.axis;
  int64_t outer = outer_of(n, ax, ctx), inner = inner_of(n, ax), orow = n->shape.dim[ax] * inner, off = 0;
  char *y = out;
  for (int k = 0; k < n->ninputs; k++) {
    int64_t row = snc_node_in(g, n, k)->shape.dim[ax] * inner;
    const char *x = in[k];
    for (int64_t o = 0; o < outer; o++) memcpy(y + (o * orow + off) * 4, x + o * row * 4, (size_t)row * 4);
    off += row;
  }
}

/* slice: out = x[..., start:start+len, ...]; slice_dx: zeros with dy written at the slice. */
static void ref_slice(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  const snc_node *x = snc_node_in(g, n, 0);
  int ax = n->attr.axis;
  int64_t outer = outer_of(x, ax, ctx), inner = inner_of(x, ax), xrow = x->shape.dim[ax] * inner;
  int64_t row = n->attr.len * inner, off = n->attr.start * inner;
  const char *src = in[0];
  char *y = out;
  for (int64_t o = 0; o < outer; o++) memcpy(y + o * row * 4, src + (o * xrow + off) * 4, (size_t)row * 4);
}

static void ref_slice_dx(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  (void)g;
  int ax = n->attr.axis;
  int64_t outer = outer_of(n, ax, ctx), inner = inner_of(n, ax), xrow = n->shape.dim[ax] * inner;
  int64_t row = n->attr.len * inner, off = n->attr.start * inner;
  const float *dy = in[0];
  float *dx = out;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < xrow; i++) dx[o * xrow + i] = i >= off && i < off + row ? dy[o * row + i - off] : 0.0f;
}

static void ref_one_hot(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  const int32_t *lab = in[0];
  float *y = out;
  int64_t c = n->attr.classes;
  for (int64_t i = 0, e = snc_kernel_numel(snc_node_in(g, n, 0), ctx); i < e; i++)
    for (int64_t k = 0; k < c; k++) y[i * c + k] = lab[i] == k ? 1.0f : 0.0f; /* out of range: all zero */
}

/* --- gradient rules --- */
static int grad_reshape(snc_ad *ad, const snc_node *n, int gout) {
  int x = n->inputs[0];
  if (!snc_ad_needs(ad, x)) return 0;
  snc_attrs a = snc_ad_shape_of(ad, x), r = {0};
  int b = a.to_batched ? 1 : 0; /* reshape takes the per-sample shape */
  r.to.rank = a.to.rank - b;
  for (int i = b; i < a.to.rank; i++) r.to.dim[i - b] = a.to.dim[i];
  snc_ad_accum(ad, x, snc_ad_node(ad, SNC_OP_RESHAPE, n, "x", &gout, 1, &r));
  return 0;
}

static int grad_concat(snc_ad *ad, const snc_node *n, int gout) {
  snc_graph *g = snc_ad_graph(ad);
  int start = 0;
  for (int k = 0; k < n->ninputs; k++) {
    int len = (int)snc_node_in(g, n, k)->shape.dim[n->attr.axis];
    if (snc_ad_needs(ad, n->inputs[k])) {
      snc_attrs a = {0};
      a.axis = n->attr.axis;
      a.start = start;
      a.len = len;
      char what[16];
      snprintf(what, sizeof what, "x%d", k);
      snc_ad_accum(ad, n->inputs[k], snc_ad_node(ad, SNC_OP_SLICE, n, what, &gout, 1, &a));
    }
    start += len;
  }
  return 0;
}

static int grad_slice(snc_ad *ad, const snc_node *n, int gout) {
  int x = n->inputs[0];
  if (!snc_ad_needs(ad, x)) return 0;
  snc_attrs a = snc_ad_shape_of(ad, x);
  a.axis = n->attr.axis;
  a.start = n->attr.start;
  a.len = n->attr.len;
  snc_ad_accum(ad, x, snc_ad_node(ad, SNC_OP_SLICE_DX, n, "x", &gout, 1, &a));
  return 0;
}

/* --- examples --- */
static int ex_reshape(snc_graph *g) {
  int x = snc_example_input(g, 3, (int64_t[]){2, 3, 2}, SNC_F32);
  return snc_example_op(g, SNC_OP_RESHAPE, &x, 1, (snc_attrs){.to = {2, {3, -1}}});
}
static int ex_concat(snc_graph *g) {
  int ins[3];
  for (int k = 0; k < 3; k++) ins[k] = snc_example_input(g, 2, (int64_t[]){k + 1, 3}, SNC_F32);
  return snc_example_op(g, SNC_OP_CONCAT, ins, 3, (snc_attrs){.axis = 1});
}
static int ex_slice(snc_graph *g) {
  int x = snc_example_input(g, 2, (int64_t[]){4, 3}, SNC_F32);
  return snc_example_op(g, SNC_OP_SLICE, &x, 1, (snc_attrs){.axis = 1, .start = 1, .len = 2});
}

const snc_op_info snc_op_reshape = {"reshape", 1, 1, infer_reshape, snc_flops_zero, ref_reshape, grad_reshape, ex_reshape, .emit = snc_cg_emit_shape};
const snc_op_info snc_op_concat = {"concat", 2, -1, infer_concat, snc_flops_zero, ref_concat, grad_concat, ex_concat, .emit = snc_cg_emit_shape};
const snc_op_info snc_op_slice = {"slice", 1, 1, infer_slice, snc_flops_zero, ref_slice, grad_slice, ex_slice, .emit = snc_cg_emit_shape};
const snc_op_info snc_op_one_hot = {"one_hot", 1, 1, infer_one_hot, snc_flops_zero, ref_one_hot, NULL, NULL, .emit = snc_cg_emit_shape};
const snc_op_info snc_op_slice_dx = {"slice_dx", 1, 1, infer_slice_dx, snc_flops_zero, ref_slice_dx, NULL, NULL, .emit = snc_cg_emit_shape};
