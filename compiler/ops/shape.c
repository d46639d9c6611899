/* Data movement: reshape (flatten), concat, slice (select one channel of a pair), one_hot.
 *   reshape: attr.to is the per-sample shape, one dim may be -1 (flatten is reshape to [-1]);
 *   concat: inputs agree on every dim but attr.axis;
 *   slice: keeps attr.len entries from attr.start along attr.axis (a select keeps the axis, len 1);
 *   one_hot(labels int32) -> float32 with a trailing dim of attr.classes. */
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

const snc_op_info snc_op_reshape = {"reshape", 1, 1, infer_reshape, snc_flops_zero};
const snc_op_info snc_op_concat = {"concat", 2, -1, infer_concat, snc_flops_zero};
const snc_op_info snc_op_slice = {"slice", 1, 1, infer_slice, snc_flops_zero};
const snc_op_info snc_op_one_hot = {"one_hot", 1, 1, infer_one_hot, snc_flops_zero};
