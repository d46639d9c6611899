/* Layer items of the model language and their lowering to primitive ops.
 * An item is a type name (`- tanh`) or a mapping with exactly one type key, whose value holds the
 * layer's options, plus the common keys name, from, if (and share for calls, weight for losses). */
#include "frontend/fe.h"

#include <math.h>
#include <string.h>

#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NOKEYS ((const char *const[]){NULL})

static int add(layer_ctx *c, snc_opcode op, const char *name, const int *in, int nin, const snc_attrs *a) {
  return snc_graph_add(c->fe->g, op, name, in, nin, a, c->loc, c->fe->err);
}

/* Parameter initialisation: `init: {weight: <spec>, bias: <spec>}` where a spec is zeros, ones,
 * {constant: v}, {uniform: [a, b]}, {normal: [mean, std]}, kaiming_uniform, kaiming_normal,
 * xavier_uniform, xavier_normal or default (PyTorch's). */
static int init_spec(layer_ctx *c, const char *which, int fan_in, int fan_out, snc_init def, snc_init *out) {
  snc_fe *fe = c->fe;
  yaml_node_t *init = snc_fe_get(fe, c->opts, "init", NULL);
  *out = def;
  if (!init) return 0;
  if (snc_fe_expect_map(fe, init, "init") || snc_fe_check_keys(fe, init, "init", KEYS("weight", "bias"))) return -1;
  yaml_node_t *v = snc_fe_get(fe, init, which, NULL);
  if (!v) return 0;
  const char *s = snc_fe_scalar(v);
  double fi = fan_in, fo = fan_out;
  if (s) {
    if (!strcmp(s, "default")) return 0;
    if (!strcmp(s, "zeros")) return *out = (snc_init){SNC_INIT_ZEROS, 0, 0}, 0;
    if (!strcmp(s, "ones")) return *out = (snc_init){SNC_INIT_CONSTANT, 1, 0}, 0;
    if (!strcmp(s, "kaiming_uniform")) {
      float b = (float)sqrt(6.0 / fi);
      return *out = (snc_init){SNC_INIT_UNIFORM, -b, b}, 0;
    }
    if (!strcmp(s, "kaiming_normal")) return *out = (snc_init){SNC_INIT_NORMAL, 0, (float)sqrt(2.0 / fi)}, 0;
    if (!strcmp(s, "xavier_uniform")) {
      float b = (float)sqrt(6.0 / (fi + fo));
      return *out = (snc_init){SNC_INIT_UNIFORM, -b, b}, 0;
    }
    if (!strcmp(s, "xavier_normal")) return *out = (snc_init){SNC_INIT_NORMAL, 0, (float)sqrt(2.0 / (fi + fo))}, 0;
    static const char *const names[] = {"default", "zeros", "ones", "kaiming_uniform", "kaiming_normal",
                                        "xavier_uniform", "xavier_normal", "constant", "uniform", "normal"};
    const char *hint = snc_fe_suggest(s, names, 10);
    return snc_fe_error(fe, v, "unknown initialiser '%s'%s%s%s", s, hint ? " (did you mean '" : "", hint ? hint : "",
                        hint ? "'?)" : "");
  }
  if (snc_fe_expect_map(fe, v, "an initialiser") ||
      snc_fe_check_keys(fe, v, "initialiser", KEYS("constant", "uniform", "normal")))
    return -1;
  yaml_node_t *k;
  double x, y;
  if ((k = snc_fe_get(fe, v, "constant", NULL))) {
    if (snc_fe_float(fe, k, "constant", -1e30, 1e30, &x)) return -1;
    return *out = (snc_init){SNC_INIT_CONSTANT, (float)x, 0}, 0;
  }
  int uniform = snc_fe_get(fe, v, "uniform", NULL) != NULL;
  k = snc_fe_get(fe, v, uniform ? "uniform" : "normal", NULL);
  if (!k || k->type != YAML_SEQUENCE_NODE || k->data.sequence.items.top - k->data.sequence.items.start != 2)
    return snc_fe_error(fe, k ? k : v, "%s takes a two-number list: %s", uniform ? "uniform" : "normal",
                        uniform ? "[low, high]" : "[mean, std]");
  if (snc_fe_float(fe, snc_fe_node(fe, k->data.sequence.items.start[0]), "initialiser", -1e30, 1e30, &x) ||
      snc_fe_float(fe, snc_fe_node(fe, k->data.sequence.items.start[1]), "initialiser", -1e30, 1e30, &y))
    return -1;
  if (uniform && !(x < y)) return snc_fe_error(fe, k, "uniform needs low < high, got [%g, %g]", x, y);
  if (!uniform && y < 0) return snc_fe_error(fe, k, "normal needs a non-negative std, got %g", y);
  return *out = (snc_init){uniform ? SNC_INIT_UNIFORM : SNC_INIT_NORMAL, (float)x, (float)y}, 0;
}

/* PyTorch's default for Conv2d and Linear: kaiming_uniform(a=sqrt(5)) for the weight and
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias; both reduce to that same bound. */
static snc_init torch_default(int fan_in) {
  float b = (float)(1.0 / sqrt((double)fan_in));
  return (snc_init){SNC_INIT_UNIFORM, -b, b};
}

static int param(layer_ctx *c, const char *suffix, snc_shape s, snc_init init, unsigned flags) {
  snc_fe *fe = c->fe;
  const char *name = snc_arena_printf(&fe->g->arena, "%s%s.%s", c->sc->param_prefix, c->local, suffix);
  return snc_graph_param(fe->g, name, &s, init, flags, c->loc, fe->err);
}

/* Weighted layer (conv2d, linear): weight, optional bias, then the op. */
static int weighted(layer_ctx *c, snc_opcode op, snc_shape ws, int fan_in, int fan_out, const snc_attrs *a) {
  int bias, ins[3] = {c->in[0], -1, -1};
  snc_init wi, bi;
  if (snc_fe_opt_bool(c->fe, c->opts, "bias", 1, &bias) ||
      init_spec(c, "weight", fan_in, fan_out, torch_default(fan_in), &wi) ||
      init_spec(c, "bias", fan_in, fan_out, torch_default(fan_in), &bi))
    return -1;
  if ((ins[1] = param(c, "weight", ws, wi, SNC_NF_TRAINABLE)) < 0) return -1;
  if (bias && (ins[2] = param(c, "bias", (snc_shape){1, {ws.dim[0]}}, bi, SNC_NF_TRAINABLE)) < 0) return -1;
  return add(c, op, c->full, ins, bias ? 3 : 2, a);
}

static const snc_node *in0(layer_ctx *c) { return c->fe->g->nodes[c->in[0]]; }

static int lower_conv2d(layer_ctx *c) {
  long long filters;
  snc_attrs a = {0};
  int k[2];
  yaml_node_t *o = c->opts;
  if (!snc_fe_get(c->fe, o, "filters", NULL)) return snc_fe_error(c->fe, c->type_node, "conv2d needs 'filters'");
  if (snc_fe_opt_int(c->fe, o, "filters", 1, 1 << 16, 0, &filters) || snc_fe_opt_pair(c->fe, o, "kernel", 1, 1 << 12, 0, k, 1) ||
      snc_fe_opt_pair(c->fe, o, "stride", 1, 1 << 12, 1, a.stride, 0) ||
      snc_fe_opt_pair(c->fe, o, "padding", 0, 1 << 12, 0, a.pad, 0))
    return -1;
  const snc_node *x = in0(c);
  int64_t ch = x->shape.rank >= 2 ? x->shape.dim[1] : 1;
  if (ch > (1 << 16)) ch = 1 << 16; /* the shape rule reports the real problem */
  return weighted(c, SNC_OP_CONV2D, (snc_shape){4, {filters, ch, k[0], k[1]}}, (int)ch * k[0] * k[1],
                  (int)filters * k[0] * k[1], &a);
}

static int lower_linear(layer_ctx *c) {
  long long units;
  if (!snc_fe_get(c->fe, c->opts, "units", NULL)) return snc_fe_error(c->fe, c->type_node, "linear needs 'units'");
  if (snc_fe_opt_int(c->fe, c->opts, "units", 1, 1 << 24, 0, &units)) return -1;
  const snc_node *x = in0(c);
  int64_t k = x->shape.rank >= 1 ? x->shape.dim[x->shape.rank - 1] : 1;
  if (x->shape.rank != 2) k = 1; /* the shape rule reports the real problem */
  return weighted(c, SNC_OP_LINEAR, (snc_shape){2, {units, k}}, (int)k, (int)units, NULL);
}

static int lower_pool(layer_ctx *c) {
  snc_attrs a = {0};
  if (snc_fe_opt_pair(c->fe, c->opts, "kernel", 1, 1 << 12, 0, a.kernel, 1) ||
      snc_fe_opt_pair(c->fe, c->opts, "stride", 1, 1 << 12, -1, a.stride, 0) ||
      snc_fe_opt_pair(c->fe, c->opts, "padding", 0, 1 << 12, 0, a.pad, 0))
    return -1;
  if (a.stride[0] < 0) memcpy(a.stride, a.kernel, sizeof a.stride); /* PyTorch: stride defaults to kernel */
  const char *t = snc_fe_scalar(c->type_node);
  return add(c, !strcmp(t, "maxpool2d") ? SNC_OP_MAXPOOL2D : SNC_OP_AVGPOOL2D, c->full, c->in, 1, &a);
}

static int lower_unary(layer_ctx *c) {
  const char *t = snc_fe_scalar(c->type_node);
  snc_attrs a = {0};
  double v;
  snc_opcode op = (snc_opcode)snc_op_lookup(t);
  if (op == SNC_OP_LEAKY_RELU) {
    if (snc_fe_opt_float(c->fe, c->opts, "slope", -1e6, 1e6, 0.01, &v)) return -1;
    a.alpha = (float)v;
  } else if (op == SNC_OP_ELU) {
    if (snc_fe_opt_float(c->fe, c->opts, "alpha", -1e6, 1e6, 1.0, &v)) return -1;
    a.alpha = (float)v;
  } else if (op == SNC_OP_DROPOUT) {
    if (snc_fe_opt_float(c->fe, c->opts, "p", 0, 0.999999, 0.5, &v)) return -1;
    a.p = (float)v;
  } else if (op == SNC_OP_SCALE) {
    if (snc_fe_opt_float(c->fe, c->opts, "factor", -1e30, 1e30, 1.0, &v)) return -1;
    a.alpha = (float)v;
  }
  SNC_ASSERT((int)op >= 0);
  return add(c, op, c->full, c->in, c->nin, &a);
}

static int axis_opt(layer_ctx *c, int def, int *axis) {
  long long ax;
  int rank = in0(c)->shape.rank;
  if (snc_fe_opt_int(c->fe, c->opts, "axis", -SNC_MAX_DIMS, SNC_MAX_DIMS - 1, def, &ax)) return -1;
  *axis = (int)(ax < 0 ? ax + rank : ax);
  return 0;
}

static int lower_softmax(layer_ctx *c) {
  snc_attrs a = {0};
  if (axis_opt(c, -1, &a.axis)) return -1;
  return add(c, (snc_opcode)snc_op_lookup(snc_fe_scalar(c->type_node)), c->full, c->in, 1, &a);
}

static int lower_batchnorm(layer_ctx *c) {
  double eps, mom;
  snc_attrs a = {0};
  if (snc_fe_opt_float(c->fe, c->opts, "eps", 1e-12, 1, 1e-5, &eps) ||
      snc_fe_opt_float(c->fe, c->opts, "momentum", 0, 1, 0.1, &mom))
    return -1;
  a.eps = (float)eps;
  a.momentum = (float)mom;
  const snc_node *x = in0(c);
  snc_shape s = {1, {x->shape.rank >= 2 ? x->shape.dim[1] : 1}};
  int ins[5] = {c->in[0]};
  snc_init one = {SNC_INIT_CONSTANT, 1, 0}, zero = {SNC_INIT_ZEROS, 0, 0};
  if ((ins[1] = param(c, "weight", s, one, SNC_NF_TRAINABLE)) < 0 || (ins[2] = param(c, "bias", s, zero, SNC_NF_TRAINABLE)) < 0 ||
      (ins[3] = param(c, "running_mean", s, zero, 0)) < 0 || (ins[4] = param(c, "running_var", s, one, 0)) < 0)
    return -1;
  return add(c, SNC_OP_BATCHNORM, c->full, ins, 5, &a);
}

static int lower_flatten(layer_ctx *c) {
  snc_attrs a = {0};
  a.to = (snc_shape){1, {-1}};
  return add(c, SNC_OP_RESHAPE, c->full, c->in, 1, &a);
}

static int lower_reshape(layer_ctx *c) {
  snc_attrs a = {0};
  yaml_node_t *s = snc_fe_get(c->fe, c->opts, "shape", NULL);
  if (!s || s->type != YAML_SEQUENCE_NODE)
    return snc_fe_error(c->fe, s ? s : c->type_node, "reshape needs 'shape', a list of per-sample dimensions");
  for (yaml_node_item_t *it = s->data.sequence.items.start; it < s->data.sequence.items.top; it++) {
    long long d;
    if (a.to.rank == SNC_MAX_DIMS - 1) return snc_fe_error(c->fe, s, "reshape: too many dimensions");
    if (snc_fe_int(c->fe, snc_fe_node(c->fe, *it), "dimension", -1, 1 << 30, &d)) return -1;
    a.to.dim[a.to.rank++] = d;
  }
  return add(c, SNC_OP_RESHAPE, c->full, c->in, 1, &a);
}

static int lower_concat(layer_ctx *c) {
  snc_attrs a = {0};
  if (axis_opt(c, 1, &a.axis)) return -1;
  return add(c, SNC_OP_CONCAT, c->full, c->in, c->nin, &a);
}

static int lower_select(layer_ctx *c) {
  snc_attrs a = {0};
  long long idx;
  int keep;
  if (!snc_fe_get(c->fe, c->opts, "index", NULL)) return snc_fe_error(c->fe, c->type_node, "select needs 'index'");
  if (snc_fe_opt_int(c->fe, c->opts, "index", 0, 1 << 30, 0, &idx) || axis_opt(c, 1, &a.axis) ||
      snc_fe_opt_bool(c->fe, c->opts, "keepdim", 1, &keep))
    return -1;
  a.start = (int)idx;
  a.len = 1;
  if (keep) return add(c, SNC_OP_SLICE, c->full, c->in, 1, &a);
  const char *tmp = snc_arena_printf(&c->fe->g->arena, "%s.slice", c->full);
  int s = add(c, SNC_OP_SLICE, tmp, c->in, 1, &a);
  if (s < 0) return -1;
  const snc_node *sn = c->fe->g->nodes[s];
  snc_attrs r = {0};
  int b = (sn->flags & SNC_NF_BATCHED) ? 1 : 0;
  for (int i = b; i < sn->shape.rank; i++)
    if (i != a.axis) r.to.dim[r.to.rank++] = sn->shape.dim[i];
  return add(c, SNC_OP_RESHAPE, c->full, &s, 1, &r);
}

/* slice: `len` entries from `start` along `axis` (ONNX Slice of one axis) */
static int lower_slice(layer_ctx *c) {
  snc_attrs a = {0};
  long long start, len;
  if (!snc_fe_get(c->fe, c->opts, "len", NULL)) return snc_fe_error(c->fe, c->type_node, "slice needs 'len'");
  if (snc_fe_opt_int(c->fe, c->opts, "start", 0, 1 << 30, 0, &start) ||
      snc_fe_opt_int(c->fe, c->opts, "len", 1, 1 << 30, 1, &len) || axis_opt(c, 1, &a.axis))
    return -1;
  a.start = (int)start;
  a.len = (int)len;
  return add(c, SNC_OP_SLICE, c->full, c->in, 1, &a);
}

static int lower_one_hot(layer_ctx *c) {
  snc_attrs a = {0};
  long long k;
  if (!snc_fe_get(c->fe, c->opts, "classes", NULL)) return snc_fe_error(c->fe, c->type_node, "one_hot needs 'classes'");
  if (snc_fe_opt_int(c->fe, c->opts, "classes", 2, 1 << 20, 0, &k)) return -1;
  a.classes = (int)k;
  return add(c, SNC_OP_ONE_HOT, c->full, c->in, 1, &a);
}

static int lower_outer(layer_ctx *c) { return add(c, SNC_OP_OUTER, c->full, c->in, 2, NULL); }

/* reduce_sum: `axis: k` or `axes: [k, k+1, ...]` (consecutive feature axes, negative from the end;
 * default every feature axis), `keepdim: false` (true keeps them as size-1 axes, through a reshape). */
static int lower_reduce_sum(layer_ctx *c) {
  snc_fe *fe = c->fe;
  const snc_node *x = in0(c);
  int rank = x->shape.rank, lo = 1, hi = rank - 1, keep;
  yaml_node_t *axis = snc_fe_get(fe, c->opts, "axis", NULL), *axes = snc_fe_get(fe, c->opts, "axes", NULL);
  if (axis && axes) return snc_fe_error(fe, axes, "reduce_sum takes 'axis' or 'axes', not both");
  if (snc_fe_opt_bool(fe, c->opts, "keepdim", 0, &keep)) return -1;
  if (axis || axes) {
    int n = axis ? 1 : (axes->type == YAML_SEQUENCE_NODE ? (int)(axes->data.sequence.items.top - axes->data.sequence.items.start) : 0);
    if (n < 1) return snc_fe_error(fe, axes, "axes must be a non-empty list of consecutive axes, like [1, 2]");
    for (int k = 0; k < n; k++) {
      long long a;
      yaml_node_t *it = axis ? axis : snc_fe_node(fe, axes->data.sequence.items.start[k]);
      if (snc_fe_int(fe, it, "axis", -SNC_MAX_DIMS, SNC_MAX_DIMS - 1, &a)) return -1;
      if (a < 0) a += rank;
      if (k == 0) lo = (int)a;
      else if (a != lo + k) return snc_fe_error(fe, it, "axes must be consecutive, like [1, 2]");
    }
    hi = lo + n - 1;
  }
  snc_attrs a = {0};
  a.axis = lo;
  a.len = hi - lo + 1;
  if (!keep) return add(c, SNC_OP_REDUCE_SUM, c->full, c->in, 1, &a);
  const char *tmp = snc_arena_printf(&fe->g->arena, "%s.sum", c->full);
  int r = add(c, SNC_OP_REDUCE_SUM, tmp, c->in, 1, &a);
  if (r < 0) return -1;
  snc_attrs sh = {0};
  for (int i = 1; i < rank; i++) sh.to.dim[sh.to.rank++] = i >= lo && i <= hi ? 1 : x->shape.dim[i];
  return add(c, SNC_OP_RESHAPE, c->full, &r, 1, &sh);
}

static int lower_loss(layer_ctx *c) {
  int id = add(c, (snc_opcode)snc_op_lookup(snc_fe_scalar(c->type_node)), c->full, c->in, 2, NULL);
  if (id >= 0) c->fe->g->nodes[id]->flags |= SNC_NF_LOSS;
  return id;
}

static int lower_call(layer_ctx *c) { return snc_fe_call(c); }

static const layer_def defs[] = {
    {"conv2d", KEYS("filters", "kernel", "stride", "padding", "bias", "init"), 1, 1, 0, lower_conv2d},
    {"linear", KEYS("units", "bias", "init"), 1, 1, 0, lower_linear},
    {"maxpool2d", KEYS("kernel", "stride", "padding"), 1, 1, 0, lower_pool},
    {"avgpool2d", KEYS("kernel", "stride", "padding"), 1, 1, 0, lower_pool},
    {"tanh", NOKEYS, 1, 1, 0, lower_unary},
    {"relu", NOKEYS, 1, 1, 0, lower_unary},
    {"sigmoid", NOKEYS, 1, 1, 0, lower_unary},
    {"leaky_relu", KEYS("slope"), 1, 1, 0, lower_unary},
    {"elu", KEYS("alpha"), 1, 1, 0, lower_unary},
    {"dropout", KEYS("p"), 1, 1, 0, lower_unary},
    {"scale", KEYS("factor"), 1, 1, 0, lower_unary},
    {"square", NOKEYS, 1, 1, 0, lower_unary},
    {"softmax", KEYS("axis"), 1, 1, 0, lower_softmax},
    {"log_softmax", KEYS("axis"), 1, 1, 0, lower_softmax},
    {"batchnorm", KEYS("eps", "momentum"), 1, 1, 0, lower_batchnorm},
    {"flatten", NOKEYS, 1, 1, 0, lower_flatten},
    {"reshape", KEYS("shape"), 1, 1, 0, lower_reshape},
    {"concat", KEYS("axis"), 2, 16, 0, lower_concat},
    {"select", KEYS("index", "axis", "keepdim"), 1, 1, 0, lower_select},
    {"slice", KEYS("axis", "start", "len"), 1, 1, 0, lower_slice},
    {"one_hot", KEYS("classes"), 1, 1, 0, lower_one_hot},
    {"add", NOKEYS, 2, 16, 0, lower_unary},
    {"mul", NOKEYS, 2, 2, 0, lower_unary},
    {"outer", NOKEYS, 2, 2, 0, lower_outer},
    {"reduce_sum", KEYS("axis", "axes", "keepdim"), 1, 1, 0, lower_reduce_sum},
    {"call", NOKEYS, 1, 1, 0, lower_call},
    {"bce", NOKEYS, 2, 2, 1, lower_loss},
    {"bce_logits", NOKEYS, 2, 2, 1, lower_loss},
    {"cross_entropy", NOKEYS, 2, 2, 1, lower_loss},
};
enum { NDEFS = sizeof defs / sizeof defs[0] };


const layer_def *snc_fe_layer_def(const char *type) {
  for (int i = 0; i < NDEFS; i++)
    if (!strcmp(defs[i].type, type)) return &defs[i];
  return NULL;
}

const char *snc_fe_layer_type_name(int i) { return i >= 0 && i < NDEFS ? defs[i].type : NULL; }
