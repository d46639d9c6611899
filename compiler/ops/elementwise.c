/* Elementwise ops and their backward ops.
 *   tanh, relu, sigmoid, square (y = x^2); leaky_relu (attr.alpha = negative slope); elu (attr.alpha);
 *   dropout (attr.p = probability of zeroing, survivors scaled by 1/(1-p); identity when not
 *     training; the mask comes from snc_dropout_uniform(seed, step, attr.stream, element));
 *   scale (y = attr.alpha * x); add (n-ary sum); mul (product of two; one operand may lack the batch
 *     when its shape is the other's per-sample shape: it is broadcast over the batch, as a constant
 *     mask; its gradient then sums over the batch with batch_sum).
 * Backward: tanh_dx(y, dy), sigmoid_dx(y, dy) and relu_dx(y, dy) use the output (relu's y > 0
 * exactly where x > 0, NaN included, so the gradient has the same bits either way, and the input
 * need not stay alive: a batch norm before a relu fuses with it); leaky_relu_dx, elu_dx, square_dx
 * take (x, dy); dropout_dx(dy) redraws the forward mask from attr.stream. */
#include <math.h>

#include "autodiff/ad.h"
#include "ops/op.h"

static int infer_dropout(snc_graph *g, snc_node *n, snc_error *err) {
  if (!(n->attr.p >= 0.0f && n->attr.p < 1.0f))
    return snc_node_errorf(g, n, err, "dropout probability %g must be in [0, 1)", n->attr.p);
  if (n->op == SNC_OP_DROPOUT) n->attr.stream = n->id; /* the backward copies it */
  return snc_infer_same_as_input(g, n, err);
}

static int infer_same_shapes(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *a = snc_node_in(g, n, 0);
  char sa[64], sb[64];
  for (int k = 1; k < n->ninputs; k++) {
    const snc_node *b = snc_node_in(g, n, k);
    if (!snc_shape_eq(&a->shape, &b->shape) || (a->flags & SNC_NF_BATCHED) != (b->flags & SNC_NF_BATCHED))
      return snc_node_errorf(g, n, err, "input '%s' has shape %s but input '%s' has %s", a->name,
                             SNC_SHAPE_STR(g, a->id, sa), b->name, SNC_SHAPE_STR(g, b->id, sb));
  }
  return snc_infer_same_as_input(g, n, err);
}

/* mul: equal shapes, or one operand without a batch whose shape is the other's per-sample shape */
static int infer_mul(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *a = snc_node_in(g, n, 0), *b = snc_node_in(g, n, 1);
  int ba = (a->flags & SNC_NF_BATCHED) != 0, bb = (b->flags & SNC_NF_BATCHED) != 0;
  if (ba == bb) return infer_same_shapes(g, n, err);
  const snc_node *big = ba ? a : b, *small = ba ? b : a;
  int ok = small->shape.rank == big->shape.rank - 1;
  for (int i = 0; ok && i < small->shape.rank; i++) ok = small->shape.dim[i] == big->shape.dim[i + 1];
  char sa[64], sb[64];
  if (!ok)
    return snc_node_errorf(g, n, err, "input '%s' has shape %s but input '%s' has %s; an operand without a batch must "
                           "have the other's per-sample shape", a->name, SNC_SHAPE_STR(g, a->id, sa), b->name,
                           SNC_SHAPE_STR(g, b->id, sb));
  if (snc_require_f32(g, n, 0, err) || snc_require_f32(g, n, 1, err)) return -1;
  n->shape = big->shape;
  n->dtype = SNC_F32;
  n->flags |= SNC_NF_BATCHED;
  return 0;
}

/* --- reference kernels --- */
#define UNARY_KERNEL(fn, expr)                                                                      \
  static void fn(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) { \
    (void)g;                                                                                        \
    const float *x = in[0];                                                                         \
    float *y = out, a = n->attr.alpha;                                                              \
    (void)a;                                                                                        \
    for (int64_t i = 0, e = snc_kernel_numel(n, ctx); i < e; i++) y[i] = (expr);                    \
  }
UNARY_KERNEL(ref_tanh, tanhf(x[i]))
UNARY_KERNEL(ref_relu, x[i] > 0 ? x[i] : 0.0f)
UNARY_KERNEL(ref_leaky_relu, x[i] > 0 ? x[i] : a * x[i])
UNARY_KERNEL(ref_elu, x[i] > 0 ? x[i] : a * expm1f(x[i]))
UNARY_KERNEL(ref_sigmoid, 1.0f / (1.0f + expf(-x[i])))
UNARY_KERNEL(ref_scale, a * x[i])
UNARY_KERNEL(ref_square, x[i] * x[i])

/* (first input, dy) -> dx */
#define BINARY_KERNEL(fn, expr)                                                                     \
  static void fn(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) { \
    (void)g;                                                                                        \
    const float *x = in[0], *dy = in[1];                                                            \
    float *dx = out, a = n->attr.alpha;                                                             \
    (void)a;                                                                                        \
    for (int64_t i = 0, e = snc_kernel_numel(n, ctx); i < e; i++) dx[i] = (expr);                   \
  }
BINARY_KERNEL(ref_tanh_dx, dy[i] * (1.0f - x[i] * x[i]))
BINARY_KERNEL(ref_sigmoid_dx, dy[i] * x[i] * (1.0f - x[i]))
BINARY_KERNEL(ref_relu_dx, x[i] > 0 ? dy[i] : 0.0f)
BINARY_KERNEL(ref_leaky_relu_dx, x[i] > 0 ? dy[i] : a * dy[i])
BINARY_KERNEL(ref_elu_dx, x[i] > 0 ? dy[i] : dy[i] * a * expf(x[i]))
BINARY_KERNEL(ref_square_dx, (x[i] + x[i]) * dy[i])

static void ref_mul(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  const float *a = in[0], *b = in[1];
  float *y = out;
  int64_t e = snc_kernel_numel(n, ctx), ea = snc_kernel_numel(snc_node_in(g, n, 0), ctx);
  int64_t eb = snc_kernel_numel(snc_node_in(g, n, 1), ctx); /* a broadcast operand repeats every ea (eb) */
  for (int64_t i = 0; i < e; i++) y[i] = a[ea == e ? i : i % ea] * b[eb == e ? i : i % eb];
}

static void ref_add(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  (void)g;
  float *y = out;
  int64_t e = snc_kernel_numel(n, ctx);
  for (int64_t i = 0; i < e; i++) {
    float s = ((const float *)in[0])[i];
    for (int k = 1; k < n->ninputs; k++) s += ((const float *)in[k])[i]; /* fixed order */
    y[i] = s;
  }
}

/* dropout and its backward share the mask: x is the forward input or dy. */
static void ref_dropout(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  (void)g;
  const float *x = in[0];
  float *y = out, p = n->attr.p, s = 1.0f / (1.0f - p);
  int64_t e = snc_kernel_numel(n, ctx);
  int active = ctx->training || n->op == SNC_OP_DROPOUT_DX;
  int64_t at = n->flags & SNC_NF_BATCHED ? ctx->row0 * (snc_shape_numel(&n->shape) / g->batch) : 0;
  for (int64_t i = 0; i < e; i++)
    y[i] = !active ? x[i] : snc_dropout_uniform(ctx->seed, ctx->step, n->attr.stream, at + i) >= p ? x[i] * s : 0.0f;
}

/* --- gradient rules --- */
static int grad_via_output(snc_ad *ad, const snc_node *n, int gout) {
  snc_opcode op = n->op == SNC_OP_TANH ? SNC_OP_TANH_DX : n->op == SNC_OP_RELU ? SNC_OP_RELU_DX : SNC_OP_SIGMOID_DX;
  int ins[2] = {n->id, gout};
  if (snc_ad_needs(ad, n->inputs[0])) snc_ad_accum(ad, n->inputs[0], snc_ad_node(ad, op, n, "x", ins, 2, &n->attr));
  return 0;
}

static int grad_via_input(snc_ad *ad, const snc_node *n, int gout) {
  snc_opcode op = n->op == SNC_OP_ELU      ? SNC_OP_ELU_DX
                 : n->op == SNC_OP_SQUARE   ? SNC_OP_SQUARE_DX
                                            : SNC_OP_LEAKY_RELU_DX;
  int ins[2] = {n->inputs[0], gout};
  if (snc_ad_needs(ad, n->inputs[0])) snc_ad_accum(ad, n->inputs[0], snc_ad_node(ad, op, n, "x", ins, 2, &n->attr));
  return 0;
}

static int grad_dropout(snc_ad *ad, const snc_node *n, int gout) {
  if (snc_ad_needs(ad, n->inputs[0]))
    snc_ad_accum(ad, n->inputs[0], snc_ad_node(ad, SNC_OP_DROPOUT_DX, n, "x", &gout, 1, &n->attr));
  return 0;
}

static int grad_scale(snc_ad *ad, const snc_node *n, int gout) {
  if (snc_ad_needs(ad, n->inputs[0]))
    snc_ad_accum(ad, n->inputs[0], snc_ad_node(ad, SNC_OP_SCALE, n, "x", &gout, 1, &n->attr));
  return 0;
}

static int grad_add(snc_ad *ad, const snc_node *n, int gout) {
  for (int k = 0; k < n->ninputs; k++)
    if (snc_ad_needs(ad, n->inputs[k])) snc_ad_accum(ad, n->inputs[k], gout);
  return 0;
}

static int grad_mul(snc_ad *ad, const snc_node *n, int gout) {
  snc_graph *g = snc_ad_graph(ad);
  for (int k = 0; k < 2; k++)
    if (snc_ad_needs(ad, n->inputs[k])) {
      int ins[2] = {gout, n->inputs[1 - k]};
      int d = snc_ad_node(ad, SNC_OP_MUL, n, k ? "b" : "a", ins, 2, NULL);
      if ((g->nodes[d]->flags & SNC_NF_BATCHED) && !(snc_node_in(g, n, k)->flags & SNC_NF_BATCHED))
        d = snc_ad_node(ad, SNC_OP_BATCH_SUM, n, k ? "b" : "a", &d, 1, NULL); /* broadcast operand */
      snc_ad_accum(ad, n->inputs[k], d);
    }
  return 0;
}

/* --- examples for the table-driven tests --- */
static int example_unary(snc_graph *g, snc_opcode op, snc_attrs a) {
  int x = snc_example_input(g, 2, (int64_t[]){3, 5}, SNC_F32);
  return snc_example_op(g, op, &x, 1, a);
}
static int ex_tanh(snc_graph *g) { return example_unary(g, SNC_OP_TANH, (snc_attrs){0}); }
static int ex_relu(snc_graph *g) { return example_unary(g, SNC_OP_RELU, (snc_attrs){0}); }
static int ex_leaky_relu(snc_graph *g) { return example_unary(g, SNC_OP_LEAKY_RELU, (snc_attrs){.alpha = 0.1f}); }
static int ex_elu(snc_graph *g) { return example_unary(g, SNC_OP_ELU, (snc_attrs){.alpha = 0.7f}); }
static int ex_sigmoid(snc_graph *g) { return example_unary(g, SNC_OP_SIGMOID, (snc_attrs){0}); }
static int ex_dropout(snc_graph *g) { return example_unary(g, SNC_OP_DROPOUT, (snc_attrs){.p = 0.3f}); }
static int ex_scale(snc_graph *g) { return example_unary(g, SNC_OP_SCALE, (snc_attrs){.alpha = -1.5f}); }
static int ex_square(snc_graph *g) { return example_unary(g, SNC_OP_SQUARE, (snc_attrs){0}); }
static int ex_add(snc_graph *g) {
  int ins[3];
  for (int k = 0; k < 3; k++) ins[k] = snc_example_input(g, 2, (int64_t[]){2, 4}, SNC_F32);
  return snc_example_op(g, SNC_OP_ADD, ins, 3, (snc_attrs){0});
}
/* (a * b) * p with p a [2,4] parameter broadcast over the batch: both forms of mul and both
 * gradients (p's sums over the batch) */
static int ex_mul(snc_graph *g) {
  int ins[2];
  for (int k = 0; k < 2; k++) ins[k] = snc_example_input(g, 2, (int64_t[]){2, 4}, SNC_F32);
  int ab = snc_example_op(g, SNC_OP_MUL, ins, 2, (snc_attrs){0});
  int p = snc_example_param(g, 2, (int64_t[]){2, 4});
  return snc_example_op(g, SNC_OP_MUL, (int[]){p, ab}, 2, (snc_attrs){0});
}

#define ROW(nm, lo, hi, infer, ref, grad, ex) \
  const snc_op_info snc_op_##nm = {#nm, lo, hi, infer, snc_flops_numel, ref, grad, ex, .emit = snc_cg_emit_elementwise};
ROW(tanh, 1, 1, snc_infer_same_as_input, ref_tanh, grad_via_output, ex_tanh)
ROW(relu, 1, 1, snc_infer_same_as_input, ref_relu, grad_via_output, ex_relu)
ROW(leaky_relu, 1, 1, snc_infer_same_as_input, ref_leaky_relu, grad_via_input, ex_leaky_relu)
ROW(elu, 1, 1, snc_infer_same_as_input, ref_elu, grad_via_input, ex_elu)
ROW(sigmoid, 1, 1, snc_infer_same_as_input, ref_sigmoid, grad_via_output, ex_sigmoid)
ROW(dropout, 1, 1, infer_dropout, ref_dropout, grad_dropout, ex_dropout)
ROW(scale, 1, 1, snc_infer_same_as_input, ref_scale, grad_scale, ex_scale)
ROW(square, 1, 1, snc_infer_same_as_input, ref_square, grad_via_input, ex_square)
ROW(add, 2, -1, infer_same_shapes, ref_add, grad_add, ex_add)
ROW(mul, 2, 2, infer_mul, ref_mul, grad_mul, ex_mul)
ROW(tanh_dx, 2, 2, infer_same_shapes, ref_tanh_dx, NULL, NULL)
ROW(relu_dx, 2, 2, infer_same_shapes, ref_relu_dx, NULL, NULL)
ROW(leaky_relu_dx, 2, 2, infer_same_shapes, ref_leaky_relu_dx, NULL, NULL)
ROW(elu_dx, 2, 2, infer_same_shapes, ref_elu_dx, NULL, NULL)
ROW(sigmoid_dx, 2, 2, infer_same_shapes, ref_sigmoid_dx, NULL, NULL)
ROW(dropout_dx, 1, 1, infer_dropout, ref_dropout, NULL, NULL)
ROW(square_dx, 2, 2, infer_same_shapes, ref_square_dx, NULL, NULL)
