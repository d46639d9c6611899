/* ONNX export: the evaluation graph of a snc model (the forward nodes a result needs) as an ONNX
 * ModelProto built with protobuf-c's generated structs and packed into one atomic write. Every
 * allocation of the message lives in one arena, freed after packing. Also snc_graph_results, the
 * rule for what a model's results are (export's outputs, `snrun infer`'s files). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"
#include "snc/file.h"
#include "snc/onnx.h"

int snc_graph_results(const snc_graph *g, int *ids, int max) {
  int n = g->nforward, count = 0;
  char *label = calloc((size_t)n + 1, 1), *loss = calloc((size_t)n + 1, 1), *used = calloc((size_t)n + 1, 1);
  SNC_ASSERT(label && loss && used);
  for (int i = 0; i < n; i++) {
    const snc_node *x = g->nodes[i];
    if (x->op == SNC_OP_INPUT) {
      label[i] = x->dtype == SNC_I32;
      continue;
    }
    int data = 0, lab = 0;
    loss[i] = (x->flags & SNC_NF_LOSS) != 0 || i == g->loss;
    for (int k = 0; k < x->ninputs; k++) {
      int j = x->inputs[k];
      loss[i] |= loss[j];
      if (g->nodes[j]->op == SNC_OP_PARAM || g->nodes[j]->op == SNC_OP_CONST) continue;
      data++;
      lab += label[j];
    }
    label[i] = data > 0 && lab == data;
  }
  for (int i = 0; i < n; i++)
    if (!loss[i] && !label[i])
      for (int k = 0; k < g->nodes[i]->ninputs; k++) used[g->nodes[i]->inputs[k]] = 1;
  for (int o = 0; o < g->noutputs; o++) used[g->outputs[o].node] = 0; /* predictions are results */
  for (int i = 0; i < n; i++) {
    snc_opcode op = g->nodes[i]->op;
    if (op == SNC_OP_INPUT || op == SNC_OP_PARAM || op == SNC_OP_CONST || loss[i] || label[i] || used[i]) continue;
    if (count < max) ids[count] = i;
    count++;
  }
  free(label), free(loss), free(used);
  return count;
}

/* ---- building the message ------------------------------------------------------------------------ */

typedef struct ex {
  snc_arena a;
  const snc_graph *g;
  snc_error *err;
  Onnx__NodeProto **nodes;
  size_t nn;
  Onnx__TensorProto **inits;
  size_t ni;
} ex;

static void *zalloc(ex *e, size_t n) { return snc_arena_alloc(&e->a, n); }

static Onnx__AttributeProto *attr_int(ex *e, const char *name, int64_t v) {
  Onnx__AttributeProto *a = zalloc(e, sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = snc_arena_strdup(&e->a, name);
  a->has_type = 1, a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  a->has_i = 1, a->i = v;
  return a;
}

static Onnx__AttributeProto *attr_float(ex *e, const char *name, float v) {
  Onnx__AttributeProto *a = zalloc(e, sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = snc_arena_strdup(&e->a, name);
  a->has_type = 1, a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
  a->has_f = 1, a->f = v;
  return a;
}

static Onnx__AttributeProto *attr_ints(ex *e, const char *name, const int64_t *v, int n) {
  Onnx__AttributeProto *a = zalloc(e, sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = snc_arena_strdup(&e->a, name);
  a->has_type = 1, a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
  a->n_ints = (size_t)n;
  a->ints = zalloc(e, (size_t)(n ? n : 1) * sizeof *a->ints);
  memcpy(a->ints, v, (size_t)n * sizeof *v);
  return a;
}

/* An initializer: float32 (f) or int64 (i) elements, as raw little-endian bytes. */
static const char *init_tensor(ex *e, const char *name, int rank, const int64_t *dims, const float *f, const int64_t *i) {
  Onnx__TensorProto *t = zalloc(e, sizeof *t);
  onnx__tensor_proto__init(t);
  t->name = snc_arena_strdup(&e->a, name);
  t->n_dims = (size_t)rank;
  t->dims = zalloc(e, (size_t)(rank ? rank : 1) * sizeof *t->dims);
  int64_t n = 1;
  for (int k = 0; k < rank; k++) n *= (t->dims[k] = dims[k]);
  t->has_data_type = 1;
  t->data_type = f ? ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT : ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
  size_t bytes = (size_t)n * (f ? 4 : 8);
  t->has_raw_data = 1;
  t->raw_data.len = bytes;
  t->raw_data.data = zalloc(e, bytes ? bytes : 1);
  memcpy(t->raw_data.data, f ? (const void *)f : (const void *)i, bytes); /* little-endian hosts */
  e->inits[e->ni++] = t;
  return t->name;
}

static const char *scalar_f(ex *e, const char *node, const char *what, float v) {
  return init_tensor(e, snc_arena_printf(&e->a, "%s.%s", node, what), 0, NULL, &v, NULL);
}

static const char *ints_init(ex *e, const char *node, const char *what, const int64_t *v, int n) {
  int64_t d = n;
  return init_tensor(e, snc_arena_printf(&e->a, "%s.%s", node, what), 1, &d, NULL, v);
}

static Onnx__NodeProto *node(ex *e, const char *op, const snc_node *n, const char *const *in, int nin, int nattr) {
  Onnx__NodeProto *p = zalloc(e, sizeof *p);
  onnx__node_proto__init(p);
  p->op_type = snc_arena_strdup(&e->a, op);
  p->name = snc_arena_strdup(&e->a, n->name);
  p->n_input = (size_t)nin;
  p->input = zalloc(e, (size_t)(nin ? nin : 1) * sizeof *p->input);
  for (int k = 0; k < nin; k++) p->input[k] = (char *)in[k];
  p->n_output = 1;
  p->output = zalloc(e, sizeof *p->output);
  p->output[0] = (char *)n->name;
  p->attribute = zalloc(e, (size_t)(nattr ? nattr : 1) * sizeof *p->attribute);
  e->nodes[e->nn++] = p;
  return p;
}

static void add_attr(Onnx__NodeProto *p, Onnx__AttributeProto *a) { p->attribute[p->n_attribute++] = a; }

static Onnx__ValueInfoProto *value_info(ex *e, const snc_node *n) {
  Onnx__ValueInfoProto *v = zalloc(e, sizeof *v);
  onnx__value_info_proto__init(v);
  v->name = (char *)n->name;
  Onnx__TypeProto *tp = zalloc(e, sizeof *tp);
  onnx__type_proto__init(tp);
  Onnx__TypeProto__Tensor *tt = zalloc(e, sizeof *tt);
  onnx__type_proto__tensor__init(tt);
  tt->has_elem_type = 1;
  tt->elem_type = n->dtype == SNC_I32 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT32 : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  Onnx__TensorShapeProto *sh = zalloc(e, sizeof *sh);
  onnx__tensor_shape_proto__init(sh);
  sh->n_dim = (size_t)n->shape.rank;
  sh->dim = zalloc(e, (size_t)(n->shape.rank ? n->shape.rank : 1) * sizeof *sh->dim);
  for (int k = 0; k < n->shape.rank; k++) {
    Onnx__TensorShapeProto__Dimension *d = zalloc(e, sizeof *d);
    onnx__tensor_shape_proto__dimension__init(d);
    if (k == 0 && (n->flags & SNC_NF_BATCHED)) {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      d->dim_param = "batch";
    } else {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      d->dim_value = n->shape.dim[k];
    }
    sh->dim[k] = d;
  }
  tt->shape = sh;
  tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  tp->tensor_type = tt;
  v->type = tp;
  return v;
}

static int pool_attrs(ex *e, Onnx__NodeProto *p, const snc_attrs *a) {
  int64_t k[2] = {a->kernel[0], a->kernel[1]}, s[2] = {a->stride[0], a->stride[1]};
  int64_t pads[4] = {a->pad[0], a->pad[1], a->pad[0], a->pad[1]};
  add_attr(p, attr_ints(e, "kernel_shape", k, 2));
  add_attr(p, attr_ints(e, "strides", s, 2));
  add_attr(p, attr_ints(e, "pads", pads, 4));
  return 0;
}

/* One forward node as ONNX node(s). */
static int export_node(ex *e, const snc_node *n) {
  const snc_graph *g = e->g;
  const char *in[32];
  SNC_ASSERT(n->ninputs <= 28); /* add takes at most 16 (the front end's limit) */
  for (int k = 0; k < n->ninputs; k++) in[k] = g->nodes[n->inputs[k]]->name;
  Onnx__NodeProto *p;
  const snc_attrs *a = &n->attr;
  switch (n->op) {
  case SNC_OP_CONV2D:
    p = node(e, "Conv", n, in, n->ninputs, 3);
    {
      int64_t k[2] = {g->nodes[n->inputs[1]]->shape.dim[2], g->nodes[n->inputs[1]]->shape.dim[3]};
      add_attr(p, attr_ints(e, "kernel_shape", k, 2));
      int64_t s[2] = {a->stride[0], a->stride[1]}, pads[4] = {a->pad[0], a->pad[1], a->pad[0], a->pad[1]};
      add_attr(p, attr_ints(e, "strides", s, 2));
      add_attr(p, attr_ints(e, "pads", pads, 4));
    }
    return 0;
  case SNC_OP_LINEAR:
    p = node(e, "Gemm", n, in, n->ninputs, 1);
    add_attr(p, attr_int(e, "transB", 1));
    return 0;
  case SNC_OP_MAXPOOL2D:
  case SNC_OP_AVGPOOL2D:
    p = node(e, n->op == SNC_OP_MAXPOOL2D ? "MaxPool" : "AveragePool", n, in, 1, 4);
    if (n->op == SNC_OP_AVGPOOL2D) add_attr(p, attr_int(e, "count_include_pad", 1)); /* snc counts the padding */
    return pool_attrs(e, p, a);
  case SNC_OP_RELU: node(e, "Relu", n, in, 1, 0); return 0;
  case SNC_OP_TANH: node(e, "Tanh", n, in, 1, 0); return 0;
  case SNC_OP_SIGMOID: node(e, "Sigmoid", n, in, 1, 0); return 0;
  case SNC_OP_LEAKY_RELU:
    add_attr(node(e, "LeakyRelu", n, in, 1, 1), attr_float(e, "alpha", a->alpha));
    return 0;
  case SNC_OP_ELU:
    add_attr(node(e, "Elu", n, in, 1, 1), attr_float(e, "alpha", a->alpha));
    return 0;
  case SNC_OP_DROPOUT: /* inference mode (training_mode absent = false): the identity */
    in[1] = scalar_f(e, n->name, "ratio", a->p);
    node(e, "Dropout", n, in, 2, 0);
    return 0;
  case SNC_OP_BATCHNORM:
    p = node(e, "BatchNormalization", n, in, 5, 2);
    add_attr(p, attr_float(e, "epsilon", a->eps));
    add_attr(p, attr_float(e, "momentum", 1 - a->momentum));
    return 0;
  case SNC_OP_RESHAPE: {
    int64_t s[SNC_MAX_DIMS];
    int r = 0, b = (n->flags & SNC_NF_BATCHED) != 0;
    if (b) s[r++] = 0; /* 0: the input's batch */
    for (int k = b; k < n->shape.rank; k++) s[r++] = n->shape.dim[k];
    in[1] = ints_init(e, n->name, "shape", s, r);
    node(e, "Reshape", n, in, 2, 0);
    return 0;
  }
  case SNC_OP_CONCAT:
    add_attr(node(e, "Concat", n, in, n->ninputs, 1), attr_int(e, "axis", a->axis));
    return 0;
  case SNC_OP_SLICE: {
    int64_t st = a->start, en = (int64_t)a->start + a->len, ax = a->axis;
    in[1] = ints_init(e, n->name, "starts", &st, 1);
    in[2] = ints_init(e, n->name, "ends", &en, 1);
    in[3] = ints_init(e, n->name, "axes", &ax, 1);
    node(e, "Slice", n, in, 4, 0);
    return 0;
  }
  case SNC_OP_SOFTMAX:
  case SNC_OP_LOG_SOFTMAX:
    add_attr(node(e, n->op == SNC_OP_SOFTMAX ? "Softmax" : "LogSoftmax", n, in, 1, 1), attr_int(e, "axis", a->axis));
    return 0;
  case SNC_OP_ADD: node(e, n->ninputs == 2 ? "Add" : "Sum", n, in, n->ninputs, 0); return 0;
  case SNC_OP_MUL: node(e, "Mul", n, in, 2, 0); return 0; /* a batch-free operand broadcasts as in ONNX */
  case SNC_OP_SCALE:
    in[1] = scalar_f(e, n->name, "factor", a->alpha);
    node(e, "Mul", n, in, 2, 0);
    return 0;
  case SNC_OP_REDUCE_SUM: {
    int64_t axes[SNC_MAX_DIMS];
    for (int k = 0; k < a->len; k++) axes[k] = a->axis + k;
    in[1] = ints_init(e, n->name, "axes", axes, a->len);
    add_attr(node(e, "ReduceSum", n, in, 2, 1), attr_int(e, "keepdims", 0));
    return 0;
  }
  default:
    return snc_node_errorf(g, n, e->err, "op %s has no ONNX export", snc_op_name(n->op));
  }
}

int snc_onnx_export(const snc_graph *g, const snc_onnx_tensor *values, int nvalues, const char *path, snc_error *err) {
  ex e = {.g = g, .err = err};
  int n = g->nforward, rc = -1, nres;
  int *res = calloc((size_t)n + 1, sizeof *res);
  char *need = calloc((size_t)n + 1, 1);
  uint8_t *bytes = NULL;
  if (!res || !need) {
    snc_errorf(err, "%s: out of memory", path);
    goto done;
  }
  nres = snc_graph_results(g, res, n);
  if (!nres) {
    snc_errorf(err, "%s: model '%s' has no results to export", g->file, g->name);
    goto done;
  }
  for (int k = 0; k < nres; k++) need[res[k]] = 1;
  for (int i = n - 1; i >= 0; i--)
    if (need[i])
      for (int k = 0; k < g->nodes[i]->ninputs; k++) need[g->nodes[i]->inputs[k]] = 1;
  e.nodes = zalloc(&e, (size_t)(n + 1) * sizeof *e.nodes);
  e.inits = zalloc(&e, (size_t)(4 * n + 1) * sizeof *e.inits);
  Onnx__GraphProto *gp = zalloc(&e, sizeof *gp);
  onnx__graph_proto__init(gp);
  gp->name = (char *)g->name;
  gp->input = zalloc(&e, (size_t)(n + 1) * sizeof *gp->input);
  gp->output = zalloc(&e, (size_t)(nres + 1) * sizeof *gp->output);
  for (int i = 0; i < n; i++) {
    const snc_node *x = g->nodes[i];
    if (!need[i]) continue;
    if (x->op == SNC_OP_INPUT) {
      gp->input[gp->n_input++] = value_info(&e, x);
    } else if (x->op == SNC_OP_CONST) {
      init_tensor(&e, x->name, x->shape.rank, x->shape.dim, x->value, NULL);
    } else if (x->op == SNC_OP_PARAM) {
      const snc_onnx_tensor *v = NULL;
      for (int k = 0; k < nvalues && !v; k++)
        if (!strcmp(values[k].name, x->name)) v = &values[k];
      snc_shape s = {v ? v->ndim : 0, {0}};
      if (v) memcpy(s.dim, v->dims, sizeof s.dim);
      if (!v || !snc_shape_eq(&s, &x->shape)) {
        snc_errorf(err, "%s: no values of shape %s for parameter '%s'", path, snc_shape_str(&x->shape, 0, (char[64]){0}, 64), x->name);
        goto done;
      }
      init_tensor(&e, x->name, x->shape.rank, x->shape.dim, v->data, NULL);
    } else if (export_node(&e, x)) {
      goto done;
    }
  }
  for (int k = 0; k < nres; k++) gp->output[gp->n_output++] = value_info(&e, g->nodes[res[k]]);
  gp->n_node = e.nn, gp->node = e.nodes;
  gp->n_initializer = e.ni, gp->initializer = e.inits;
  Onnx__OperatorSetIdProto op = ONNX__OPERATOR_SET_ID_PROTO__INIT, *ops[1] = {&op};
  op.domain = "";
  op.has_version = 1, op.version = 13;
  Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
  m.has_ir_version = 1, m.ir_version = 7;
  m.n_opset_import = 1, m.opset_import = ops;
  m.producer_name = "snc", m.producer_version = "0.1.0";
  m.doc_string = snc_arena_printf(&e.a, "model '%s' from %s: the evaluation graph", g->name, g->file ? g->file : "?");
  m.graph = gp;
  size_t len = onnx__model_proto__get_packed_size(&m);
  if (!(bytes = malloc(len ? len : 1))) {
    snc_errorf(err, "%s: out of memory (%zu bytes)", path, len);
    goto done;
  }
  onnx__model_proto__pack(&m, bytes);
  rc = snc_file_write_atomic(path, bytes, len, err);
done:
  free(bytes), free(res), free(need);
  snc_arena_free(&e.a);
  return rc;
}
