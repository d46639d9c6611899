/* ONNX import, the top level: unpack the file with protobuf-c (after a nesting guard), check the
 * opset, decode the initializers, declare the graph inputs, translate node after node
 * (onnx_ops.c, onnx_shape_ops.c), check the outputs and assemble the model text. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

#define MAX_FILE (INT64_C(1) << 30)
#define MAX_NODES 100000
#define MAX_DEPTH 24

static void imp_free(onx_imp *imp) {
  for (int i = 0; i < imp->nt; i++) free(imp->t[i].f), free(imp->t[i].i);
  free(imp->t);
  free(imp->hash);
  for (int i = 0; i < imp->nnames; i++) free(imp->names[i]);
  free(imp->names);
  for (int i = 0; i < imp->nw; i++) free(imp->w[i].name), free(imp->w[i].data);
  free(imp->w);
  free(imp->graph_text.s);
  free(imp->const_text.s);
  free(imp->uses);
  free(imp->user);
  free(imp->skip);
  if (imp->model) onnx__model_proto__free_unpacked(imp->model, NULL);
}

static int read_opset(onx_imp *imp) {
  Onnx__ModelProto *m = imp->model;
  imp->opset = -1;
  for (size_t k = 0; k < m->n_opset_import; k++) {
    const Onnx__OperatorSetIdProto *o = m->opset_import[k];
    if ((!o->domain || !*o->domain || !strcmp(o->domain, "ai.onnx")) && o->has_version) imp->opset = (int)o->version;
  }
  if (imp->opset < 0) return onx_fail(imp, "no opset of the default domain (ai.onnx) is imported");
  if (imp->opset < 11 || imp->opset > 17)
    return onx_fail(imp, "opset %d is not supported (snc imports opsets 11 to 17)", imp->opset);
  return 0;
}

static int is_initializer(const onx_imp *imp, const char *name) {
  int i = onx_find(imp, name);
  return i >= 0 && imp->t[i].init;
}

/* One graph input: a float32 or int32 tensor whose first axis is the batch. */
static int declare_input(onx_imp *imp, const Onnx__ValueInfoProto *v, onx_buf *text) {
  const char *name = v->name ? v->name : "";
  const Onnx__TypeProto *tp = v->type;
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
    return onx_fail(imp, "input '%.200s' is not a tensor", name);
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  int et = tt->has_elem_type ? tt->elem_type : 0;
  if (et != ONX_FLOAT && et != ONX_INT32)
    return onx_fail(imp, "input '%.200s' has element type %d; snc takes float32 (1) or int32 (6) inputs", name, et);
  const Onnx__TensorShapeProto *sh = tt->shape;
  if (!sh || sh->n_dim < 1) return onx_fail(imp, "input '%.200s' has no shape; snc needs [batch, ...]", name);
  if (sh->n_dim > SNC_MAX_DIMS) return onx_fail(imp, "input '%.200s' has rank %zu (at most %d)", name, sh->n_dim, SNC_MAX_DIMS);
  onx_tensor t = {.name = name, .kind = ONX_ACT, .rank = (int)sh->n_dim, .i32 = et == ONX_INT32};
  for (size_t k = 0; k < sh->n_dim; k++) {
    const Onnx__TensorShapeProto__Dimension *d = sh->dim[k];
    int fixed = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    if (k == 0) {
      if (fixed && d->dim_value > 0) {
        if (imp->fixed_batch > 0 && imp->fixed_batch != d->dim_value)
          return onx_fail(imp, "inputs disagree on the batch size (%lld and %lld)", (long long)imp->fixed_batch,
                          (long long)d->dim_value);
        imp->fixed_batch = d->dim_value;
      }
      t.dim[0] = ONX_BATCH;
      continue;
    }
    if (!fixed || d->dim_value < 1 || d->dim_value > (1 << 24))
      return onx_fail(imp, "input '%.200s': axis %zu must be a fixed size (only the first axis, the batch, may vary)", name, k);
    t.dim[k] = d->dim_value;
  }
  int64_t per = 1; /* every later size stays far from overflow */
  for (int k = 1; k < t.rank && per <= ONX_MAX_ELEMS / 4; k++) per *= t.dim[k];
  if (per > ONX_MAX_ELEMS / 4)
    return onx_fail(imp, "input '%.200s': more than %lld values per sample", name, (long long)(ONX_MAX_ELEMS / 4));
  if (!(t.layer = onx_layer_name(imp, name, "input"))) return onx_fail(imp, "out of memory");
  onx_printf(text, "  %s: {shape: [", t.layer);
  for (int k = 1; k < t.rank; k++) onx_printf(text, "%s%lld", k > 1 ? ", " : "", (long long)t.dim[k]);
  onx_printf(text, "]%s%s}\n", t.i32 ? ", dtype: int32" : "", "");
  return onx_add(imp, &t) < 0 ? -1 : 0;
}

/* Readers of each node's first output, for the MatMul + Add fusion. */
static int count_uses(onx_imp *imp) {
  Onnx__GraphProto *g = imp->graph;
  size_t n = g->n_node;
  imp->uses = calloc(n + 1, sizeof *imp->uses);
  imp->user = calloc(n + 1, sizeof *imp->user);
  imp->skip = calloc(n + 1, sizeof *imp->skip);
  if (!imp->uses || !imp->user || !imp->skip) return onx_fail(imp, "out of memory");
  onx_tensor *save = imp->t;
  int savent = imp->nt, *savehash = imp->hash, savecap = imp->hcap, savet = imp->capt;
  /* a temporary table of first outputs -> node */
  imp->t = NULL, imp->nt = 0, imp->hash = NULL, imp->hcap = 0, imp->capt = 0;
  int rc = 0;
  for (size_t k = 0; k < n && !rc; k++) {
    imp->user[k] = -1;
    const Onnx__NodeProto *nd = g->node[k];
    if (nd->n_output && nd->output[0] && *nd->output[0] && onx_find(imp, nd->output[0]) < 0) {
      onx_tensor t = {.name = nd->output[0], .src = (int)k};
      if (onx_add(imp, &t) < 0) rc = -1;
    }
    for (size_t j = 0; j < nd->n_input && !rc; j++) {
      int i = nd->input[j] ? onx_find(imp, nd->input[j]) : -1;
      if (i >= 0) imp->uses[imp->t[i].src]++, imp->user[imp->t[i].src] = (int)k;
    }
  }
  for (size_t k = 0; k < g->n_output && !rc; k++) { /* a graph output counts as a reader */
    int i = g->output[k]->name ? onx_find(imp, g->output[k]->name) : -1;
    if (i >= 0) imp->uses[imp->t[i].src]++;
  }
  free(imp->t), free(imp->hash);
  imp->t = save, imp->nt = savent, imp->hash = savehash, imp->hcap = savecap, imp->capt = savet;
  return rc;
}

/* Whether the graph fits the mnist_digits template: one float [B,1,14,14] input, one [B,n] output;
 * x and out receive them. Sets no error. */
static int template_fits(onx_imp *imp, const onx_tensor **x, const onx_tensor **out) {
  int nin = 0, in = -1;
  for (size_t k = 0; k < imp->graph->n_input; k++) {
    const char *nm = imp->graph->input[k]->name;
    if (nm && !is_initializer(imp, nm)) nin++, in = onx_find(imp, nm);
  }
  *x = in >= 0 ? &imp->t[in] : NULL;
  if (nin != 1 || !*x || (*x)->i32 || (*x)->rank != 4 || (*x)->dim[1] != 1 || (*x)->dim[2] != 14 || (*x)->dim[3] != 14)
    return 0;
  int o = imp->graph->n_output == 1 ? onx_find(imp, imp->graph->output[0]->name) : -1;
  *out = o >= 0 ? &imp->t[o] : NULL;
  return *out && (*out)->kind == ONX_ACT && (*out)->rank == 2 && (*out)->dim[1] >= 2;
}

/* The `--train mnist_digits` sections: the bundled digits as data, cross-entropy on the output. */
static int train_template(onx_imp *imp, onx_buf *in_text, onx_buf *tail, int batch) {
  const onx_tensor *x, *out;
  if (!template_fits(imp, &x, &out))
    return onx_fail(imp, "--train mnist_digits needs one float input of shape [B,1,14,14] and one output [B,classes]");
  const char *label = onx_layer_name(imp, "label", "label");
  if (!label) return onx_fail(imp, "out of memory");
  /* the input binds to the generator's image stream */
  onx_buf fixed = {0};
  char find[160];
  snprintf(find, sizeof find, "  %s: {shape: [1, 14, 14]}\n", x->layer);
  const char *at = strstr(in_text->s, find);
  if (!at) return onx_fail(imp, "internal: input line not found");
  onx_printf(&fixed, "%.*s  %s: {shape: [1, 14, 14], source: image}\n%s", (int)(at - in_text->s), in_text->s, x->layer,
             at + strlen(find));
  onx_printf(&fixed, "  %s: {shape: [], dtype: int32, source: label}\n", label);
  free(in_text->s);
  *in_text = fixed;
  onx_printf(tail, "losses:\n  - {name: ce, cross_entropy, from: [%s, %s]}\n", out->layer, label);
  onx_printf(tail, "outputs:\n  digit: {from: %s, target: %s}\n", out->layer, label);
  onx_printf(tail, "training: {optimizer: adam, lr: 0.001, epochs: 5, batch_size: %d, seed: 1}\n", batch);
  onx_puts(tail, "data: {generator: mnist_digits, train: 1000, test: 1000}\n");
  return 0;
}

static char *model_name_of(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t n = strlen(base);
  if (n > 5 && !strcmp(base + n - 5, ".onnx")) n -= 5;
  char *s = malloc(n + 8);
  if (!s) return NULL;
  size_t j = 0;
  for (size_t k = 0; k < n && j < 64; k++) {
    char c = base[k];
    s[j++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ? c : '_';
  }
  s[j] = 0;
  if (!j || (s[0] >= '0' && s[0] <= '9')) {
    memmove(s + 6, s, j + 1);
    memcpy(s, "model_", 6);
  }
  return s;
}

int snc_onnx_import_mem(const void *data, size_t len, const char *name, const snc_onnx_options *o,
                        snc_onnx_model *m, snc_error *err) {
  memset(m, 0, sizeof *m);
  onx_imp imp = {.file = name, .err = err, .fixed_batch = -1};
  onx_buf in_text = {0}, tail = {0}, all = {0};
  int rc = -1;
  if ((int64_t)len > MAX_FILE) return snc_errorf(err, "%s: larger than 1 GiB; not supported", name);
  if (len == 0) return snc_errorf(err, "%s: empty file; not an ONNX model", name);
  if (onx_check_depth(data, len, &onnx__model_proto__descriptor, MAX_DEPTH))
    return snc_errorf(err, "%s: messages nested more than %d deep; not an ONNX model snc reads", name, MAX_DEPTH);
  imp.model = onnx__model_proto__unpack(NULL, len, data);
  if (!imp.model) return snc_errorf(err, "%s: not a valid ONNX model (the protobuf data is malformed or truncated)", name);
  if (!(imp.graph = imp.model->graph)) {
    onx_fail(&imp, "the model has no graph");
    goto done;
  }
  Onnx__GraphProto *g = imp.graph;
  if (read_opset(&imp)) goto done;
  if (g->n_node > MAX_NODES) {
    onx_fail(&imp, "%zu nodes (at most %d)", g->n_node, MAX_NODES);
    goto done;
  }
  if (g->n_sparse_initializer) {
    onx_fail(&imp, "sparse initializers are not supported");
    goto done;
  }
  for (size_t k = 0; k < g->n_initializer; k++) {
    onx_tensor t;
    const char *nm = g->initializer[k]->name ? g->initializer[k]->name : "";
    if (onx_decode_tensor(&imp, g->initializer[k], nm, &t)) goto done;
    t.init = 1;
    if (onx_add(&imp, &t) < 0) {
      free(t.f), free(t.i);
      goto done;
    }
  }
  for (size_t k = 0; k < g->n_input; k++) {
    const char *nm = g->input[k]->name;
    if (nm && is_initializer(&imp, nm)) continue; /* older exporters list initializers as inputs too */
    if (declare_input(&imp, g->input[k], &in_text)) goto done;
  }
  if (!in_text.len) {
    onx_fail(&imp, "the graph has no inputs");
    goto done;
  }
  if (count_uses(&imp)) goto done;
  for (size_t k = 0; k < g->n_node; k++) {
    if (imp.skip[k]) continue;
    imp.node = g->node[k];
    if (onx_translate(&imp, (int)k)) goto done;
  }
  imp.node = NULL;
  if (!g->n_output) {
    onx_fail(&imp, "the graph has no outputs");
    goto done;
  }
  for (size_t k = 0; k < g->n_output; k++) {
    const char *nm = g->output[k]->name ? g->output[k]->name : "";
    int i = onx_find(&imp, nm);
    if (i < 0) {
      onx_fail(&imp, "output '%.200s' is not computed by any node", nm);
      goto done;
    }
    if (imp.t[i].kind != ONX_ACT || imp.t[i].layer == NULL) {
      onx_fail(&imp, "output '%.200s' is a constant; snc computes outputs from the inputs", nm);
      goto done;
    }
    const Onnx__TypeProto *tp = g->output[k]->type; /* a declared shape must agree with snc's */
    if (tp && tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && tp->tensor_type && tp->tensor_type->shape) {
      const Onnx__TensorShapeProto *sh = tp->tensor_type->shape;
      int bad = (int)sh->n_dim != imp.t[i].rank;
      for (size_t d = 1; d < sh->n_dim && !bad; d++)
        bad = sh->dim[d]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
              sh->dim[d]->dim_value != imp.t[i].dim[d];
      if (bad) {
        onx_fail(&imp, "output '%.200s' is declared with another shape than the graph computes, %s", nm, ONX_SHAPE(&imp.t[i]));
        goto done;
      }
    }
  }
  int batch = o && o->batch > 0 ? o->batch : imp.fixed_batch > 1 ? (int)imp.fixed_batch : 100;
  if (!(m->name = model_name_of(name))) {
    onx_fail(&imp, "out of memory");
    goto done;
  }
  const onx_tensor *tx, *tout;
  snc_onnx_options digits = {.batch = batch, .train = "mnist_digits"};
  if (o && o->train && !strcmp(o->train, "auto")) /* the digits template when the shapes fit it */
    o = template_fits(&imp, &tx, &tout) ? &digits : NULL;
  if (o && o->train) {
    if (strcmp(o->train, "mnist_digits")) {
      onx_fail(&imp, "unknown training template '%.60s' (known: mnist_digits)", o->train);
      goto done;
    }
    if (train_template(&imp, &in_text, &tail, batch)) goto done;
  } else {
    onx_printf(&tail, "training: {batch_size: %d}\n", batch);
  }
  const char *prod = imp.model->producer_name ? imp.model->producer_name : "";
  const char *ver = imp.model->producer_version ? imp.model->producer_version : "";
  onx_printf(&all, "# Imported by `snc import` from %.200s (%.60s %.60s, opset %d).\n", name, prod, ver, imp.opset);
  onx_puts(&all, "# Layer names come from the ONNX node names; `snc import --weights` writes the weights.\n");
  onx_printf(&all, "model: %s\n\ninputs:\n%s", m->name, in_text.s);
  if (imp.nconst) onx_printf(&all, "\nconstants:\n%s", imp.const_text.s);
  onx_printf(&all, "\ngraph:\n%s", imp.graph_text.s ? imp.graph_text.s : "");
  onx_puts(&all, "\n# results (snrun infer writes each as DIR/<name>.npy):");
  for (size_t k = 0; k < g->n_output; k++) onx_printf(&all, " %s", imp.t[onx_find(&imp, g->output[k]->name)].layer);
  onx_printf(&all, "\n%s", tail.s);
  if (all.oom || in_text.oom || tail.oom || imp.graph_text.oom || imp.const_text.oom) {
    onx_fail(&imp, "out of memory");
    goto done;
  }
  m->weights = calloc((size_t)imp.nw + 1, sizeof *m->weights);
  if (!m->weights) {
    onx_fail(&imp, "out of memory");
    goto done;
  }
  for (int k = 0; k < imp.nw; k++) { /* ownership of the names and data passes to m */
    snc_onnx_tensor *w = &m->weights[k];
    w->name = imp.w[k].name;
    w->ndim = imp.w[k].ndim;
    memcpy(w->dims, imp.w[k].dims, sizeof w->dims);
    w->data = imp.w[k].data;
  }
  m->nweights = imp.nw;
  imp.nw = 0;
  if (!(m->results = calloc(g->n_output + 1, sizeof *m->results))) {
    onx_fail(&imp, "out of memory");
    goto done;
  }
  for (size_t k = 0; k < g->n_output; k++)
    if (!(m->results[m->nresults++] = strdup(imp.t[onx_find(&imp, g->output[k]->name)].layer))) {
      onx_fail(&imp, "out of memory");
      goto done;
    }
  m->yaml = all.s, m->yaml_len = all.len;
  all.s = NULL;
  m->opset = imp.opset;
  rc = 0;
done:
  free(in_text.s), free(tail.s), free(all.s);
  imp_free(&imp);
  if (rc) snc_onnx_model_free(m);
  return rc;
}

int snc_onnx_import(const char *path, const snc_onnx_options *o, snc_onnx_model *m, snc_error *err) {
  memset(m, 0, sizeof *m);
  FILE *f = fopen(path, "rb");
  if (!f) return snc_errorf(err, "%s: cannot open: %s", path, strerror(errno));
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? 2 * cap : (1u << 16);
      if ((int64_t)cap > MAX_FILE + 1) {
        free(buf), fclose(f);
        return snc_errorf(err, "%s: larger than 1 GiB; not supported", path);
      }
      char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf), fclose(f);
        return snc_errorf(err, "%s: out of memory", path);
      }
      buf = nb;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (!got) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return snc_errorf(err, "%s: read error", path);
  }
  int rc = snc_onnx_import_mem(buf, len, path, o, m, err);
  free(buf);
  return rc;
}

void snc_onnx_model_free(snc_onnx_model *m) {
  if (!m) return;
  for (int k = 0; k < m->nweights; k++) free((char *)m->weights[k].name), free(m->weights[k].data);
  free(m->weights);
  for (int k = 0; k < m->nresults; k++) free(m->results[k]);
  free(m->results);
  free(m->yaml);
  free(m->name);
  memset(m, 0, sizeof *m);
}

int snc_onnx_is_path(const char *path) {
  size_t n = path ? strlen(path) : 0;
  return n > 5 && !strcmp(path + n - 5, ".onnx");
}

snc_graph *snc_onnx_load_any(const char *path, const snc_override *sets, int nsets, int batch, snc_onnx_model *keep,
                             snc_error *err) {
  if (keep) memset(keep, 0, sizeof *keep);
  if (!snc_onnx_is_path(path)) return snc_model_load_batch(path, sets, nsets, batch, err);
  snc_onnx_model m;
  snc_onnx_options o = {.batch = batch, .train = "auto"};
  if (snc_onnx_import(path, &o, &m, err)) return NULL;
  snc_graph *g = snc_model_load_text(m.yaml, m.yaml_len, path, sets, nsets, err);
  if (g && keep) *keep = m; /* ownership passes to the caller */
  else snc_onnx_model_free(&m);
  return g;
}
