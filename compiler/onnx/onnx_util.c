/* Helpers of the ONNX importer: text buffers, messages, the tensor table, tensor decoding, node
 * attributes, snc names and weights, and the nesting guard run before protobuf-c unpacks a file. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

static void buf_reserve(onx_buf *b, size_t extra) {
  if (b->oom || b->len + extra + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + extra + 1) cap *= 2;
  char *s = realloc(b->s, cap);
  if (!s) {
    b->oom = 1;
    return;
  }
  b->s = s;
  b->cap = cap;
}

void onx_puts(onx_buf *b, const char *s) {
  size_t n = strlen(s);
  buf_reserve(b, n);
  if (b->oom) return;
  memcpy(b->s + b->len, s, n + 1);
  b->len += n;
}

void onx_printf(onx_buf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) {
    onx_puts(b, tmp);
    return;
  }
  buf_reserve(b, (size_t)n);
  if (b->oom) return;
  va_start(ap, fmt);
  vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void onx_put_float(onx_buf *b, float v) {
  char s[32];
  if (!isfinite(v)) { /* YAML's spellings */
    onx_puts(b, isnan(v) ? ".nan" : v > 0 ? ".inf" : "-.inf");
    return;
  }
  for (int prec = 6; prec <= 9; prec++) {
    snprintf(s, sizeof s, "%.*g", prec, (double)v);
    if (strtof(s, NULL) == v) break;
  }
  if (!strpbrk(s, ".eE")) strcat(s, ".0"); /* stays a float for readers */
  onx_puts(b, s);
}

int onx_fail(onx_imp *imp, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const Onnx__NodeProto *n = imp->node;
  if (n) {
    char idx[32];
    const char *name = n->name && *n->name ? n->name : NULL;
    if (!name) {
      long k = 0;
      for (size_t i = 0; i < imp->graph->n_node; i++)
        if (imp->graph->node[i] == n) k = (long)i;
      snprintf(idx, sizeof idx, "#%ld", k);
      name = idx;
    }
    return snc_errorf(imp->err, "%s: node '%.100s' (%.60s): %s", imp->file, name, n->op_type ? n->op_type : "?", msg);
  }
  return snc_errorf(imp->err, "%s: %s", imp->file, msg);
}

/* ---- the tensor table --------------------------------------------------------------------------- */

static uint32_t hash_str(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
  return h;
}

int onx_find(const onx_imp *imp, const char *name) {
  if (!imp->hcap || !name) return -1;
  for (uint32_t k = hash_str(name) & (uint32_t)(imp->hcap - 1);; k = (k + 1) & (uint32_t)(imp->hcap - 1)) {
    int v = imp->hash[k];
    if (!v) return -1;
    if (!strcmp(imp->t[v - 1].name, name)) return v - 1;
  }
}

static int rehash(onx_imp *imp, int cap) {
  int *h = calloc((size_t)cap, sizeof *h);
  if (!h) return -1;
  for (int i = 0; i < imp->nt; i++) {
    uint32_t k = hash_str(imp->t[i].name) & (uint32_t)(cap - 1);
    while (h[k]) k = (k + 1) & (uint32_t)(cap - 1);
    h[k] = i + 1;
  }
  free(imp->hash);
  imp->hash = h;
  imp->hcap = cap;
  return 0;
}

int onx_add(onx_imp *imp, const onx_tensor *t) {
  if (!t->name || !*t->name) return onx_fail(imp, "a tensor without a name");
  if (onx_find(imp, t->name) >= 0) return onx_fail(imp, "tensor '%.200s' is defined twice", t->name);
  if (imp->nt == imp->capt) {
    int cap = imp->capt ? 2 * imp->capt : 64;
    onx_tensor *nt = realloc(imp->t, (size_t)cap * sizeof *nt);
    if (!nt) return onx_fail(imp, "out of memory");
    imp->t = nt;
    imp->capt = cap;
  }
  imp->t[imp->nt++] = *t;
  if (2 * imp->nt > imp->hcap) { /* grows the table and inserts every entry, the new one too */
    if (rehash(imp, imp->hcap ? 2 * imp->hcap : 256)) {
      imp->nt--;
      return onx_fail(imp, "out of memory");
    }
  } else {
    uint32_t k = hash_str(t->name) & (uint32_t)(imp->hcap - 1);
    while (imp->hash[k]) k = (k + 1) & (uint32_t)(imp->hcap - 1);
    imp->hash[k] = imp->nt;
  }
  return imp->nt - 1;
}

int onx_input_opt(onx_imp *imp, int k) {
  const Onnx__NodeProto *n = imp->node;
  if ((size_t)k >= n->n_input || !n->input[k] || !*n->input[k]) return -2;
  int i = onx_find(imp, n->input[k]);
  if (i < 0) return onx_fail(imp, "input %d '%.200s' is not defined by an earlier node, an input or an initializer", k,
                             n->input[k]);
  return i;
}

int onx_input(onx_imp *imp, int k) {
  int i = onx_input_opt(imp, k);
  if (i == -2) return onx_fail(imp, "input %d is missing", k);
  return i;
}

/* ---- tensors ------------------------------------------------------------------------------------ */

static int64_t rd64(const uint8_t *p) {
  uint64_t v = 0;
  for (int k = 7; k >= 0; k--) v = v << 8 | p[k];
  return (int64_t)v;
}

int onx_decode_tensor(onx_imp *imp, const Onnx__TensorProto *tp, const char *name, onx_tensor *t) {
  memset(t, 0, sizeof *t);
  t->name = name;
  t->kind = ONX_CONST;
  if (tp->n_dims > ONX_MAX_RANK) return onx_fail(imp, "tensor '%.200s' has rank %zu (at most %d)", name, tp->n_dims, ONX_MAX_RANK);
  int64_t n = 1;
  t->rank = (int)tp->n_dims;
  for (size_t k = 0; k < tp->n_dims; k++) {
    int64_t d = tp->dims[k];
    if (d < 0 || d > ONX_MAX_ELEMS || (d && n > ONX_MAX_ELEMS / d))
      return onx_fail(imp, "tensor '%.200s': dimension %lld is negative or too large", name, (long long)d);
    t->dim[k] = d;
    n *= d;
  }
  if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
    return onx_fail(imp, "tensor '%.200s' keeps its data in an external file, which is not supported", name);
  int dt = tp->has_data_type ? tp->data_type : 0;
  size_t esz = dt == ONX_FLOAT || dt == ONX_INT32 ? 4 : dt == ONX_INT64 || dt == ONX_DOUBLE ? 8 : 0;
  if (!esz) return onx_fail(imp, "tensor '%.200s' has data type %d; supported: float32, int32, int64, double", name, dt);
  size_t have = tp->has_raw_data ? tp->raw_data.len / esz
                : dt == ONX_FLOAT  ? tp->n_float_data
                : dt == ONX_INT32  ? tp->n_int32_data
                : dt == ONX_INT64  ? tp->n_int64_data
                                   : tp->n_double_data;
  if (tp->has_raw_data && tp->raw_data.len % esz)
    return onx_fail(imp, "tensor '%.200s': %zu bytes of raw data is not a whole number of elements", name, tp->raw_data.len);
  if ((int64_t)have != n)
    return onx_fail(imp, "tensor '%.200s' holds %zu elements but its shape needs %lld", name, have, (long long)n);
  t->n = n;
  t->integer = dt == ONX_INT32 || dt == ONX_INT64;
  t->f = malloc((size_t)(n ? n : 1) * sizeof *t->f);
  t->i = malloc((size_t)(n ? n : 1) * sizeof *t->i);
  if (!t->f || !t->i) {
    free(t->f), free(t->i);
    t->f = NULL, t->i = NULL;
    return onx_fail(imp, "out of memory for tensor '%.200s'", name);
  }
  const uint8_t *raw = tp->has_raw_data ? tp->raw_data.data : NULL;
  for (int64_t k = 0; k < n; k++) {
    double v;
    int64_t iv = 0;
    if (dt == ONX_FLOAT) {
      float x;
      if (raw) memcpy(&x, raw + 4 * k, 4); /* little-endian hosts only (x86-64, aarch64) */
      else x = tp->float_data[k];
      v = x;
    } else if (dt == ONX_DOUBLE) {
      double x;
      if (raw) memcpy(&x, raw + 8 * k, 8);
      else x = tp->double_data[k];
      v = x;
    } else if (dt == ONX_INT32) {
      int32_t x;
      if (raw) memcpy(&x, raw + 4 * k, 4);
      else x = tp->int32_data[k];
      v = (double)(iv = x);
    } else {
      iv = raw ? rd64(raw + 8 * k) : tp->int64_data[k];
      v = (double)iv;
    }
    t->f[k] = (float)v;
    t->i[k] = t->integer ? iv : (isfinite(v) && fabs(v) < 9e18 ? (int64_t)v : 0);
  }
  return 0;
}

/* ---- attributes --------------------------------------------------------------------------------- */

const Onnx__AttributeProto *onx_attr(onx_imp *imp, const char *name) {
  const Onnx__NodeProto *n = imp->node;
  for (size_t k = 0; k < n->n_attribute; k++)
    if (n->attribute[k]->name && !strcmp(n->attribute[k]->name, name)) return n->attribute[k];
  return NULL;
}

int onx_attr_int(onx_imp *imp, const char *name, int64_t def, int64_t *v) {
  const Onnx__AttributeProto *a = onx_attr(imp, name);
  *v = def;
  if (!a) return 0;
  if (!a->has_i || (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT))
    return onx_fail(imp, "attribute '%s' must be an integer", name);
  *v = a->i;
  return 1;
}

int onx_attr_float(onx_imp *imp, const char *name, float def, float *v) {
  const Onnx__AttributeProto *a = onx_attr(imp, name);
  *v = def;
  if (!a) return 0;
  if (!a->has_f || (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT))
    return onx_fail(imp, "attribute '%s' must be a float", name);
  *v = a->f;
  return 1;
}

int onx_attr_ints(onx_imp *imp, const char *name, int64_t *v, int max, int *n) {
  const Onnx__AttributeProto *a = onx_attr(imp, name);
  *n = 0;
  if (!a) return 0;
  if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
    return onx_fail(imp, "attribute '%s' must be a list of integers", name);
  if (a->n_ints > (size_t)max) return onx_fail(imp, "attribute '%s' has %zu entries (at most %d)", name, a->n_ints, max);
  for (size_t k = 0; k < a->n_ints; k++) v[k] = a->ints[k];
  *n = (int)a->n_ints;
  return 1;
}

int onx_attr_check(onx_imp *imp, const char *const *known) {
  const Onnx__NodeProto *n = imp->node;
  for (size_t k = 0; k < n->n_attribute; k++) {
    const char *a = n->attribute[k]->name ? n->attribute[k]->name : "";
    int ok = 0;
    for (const char *const *q = known; *q && !ok; q++) ok = !strcmp(*q, a);
    if (!ok) return onx_fail(imp, "attribute '%.100s' is not supported", a);
  }
  return 0;
}

/* ---- names and weights -------------------------------------------------------------------------- */

static int name_taken(const onx_imp *imp, const char *s) {
  for (int i = 0; i < imp->nnames; i++)
    if (!strcmp(imp->names[i], s)) return 1;
  return 0;
}

const char *onx_layer_name(onx_imp *imp, const char *onnx_name, const char *fallback) {
  char base[96];
  size_t n = 0;
  int sep = 0;
  for (const char *s = onnx_name ? onnx_name : ""; *s && n + 2 < sizeof base; s++) {
    if (isalnum((unsigned char)*s)) {
      if (sep && n) base[n++] = '_';
      base[n++] = *s;
      sep = 0;
    } else {
      sep = 1;
    }
  }
  base[n] = 0;
  if (!n || isdigit((unsigned char)base[0])) { /* "23" or "" : the op's name and the number */
    char tmp[96];
    snprintf(tmp, sizeof tmp, "%s%s%s", fallback, n ? "_" : "", base);
    snprintf(base, sizeof base, "%s", tmp);
  }
  char cand[112];
  snprintf(cand, sizeof cand, "%s", base);
  for (int k = 2; name_taken(imp, cand) || !strcmp(cand, "input"); k++) snprintf(cand, sizeof cand, "%s_%d", base, k);
  if (imp->nnames == imp->capnames) {
    int cap = imp->capnames ? 2 * imp->capnames : 64;
    char **nn = realloc(imp->names, (size_t)cap * sizeof *nn);
    if (!nn) return NULL;
    imp->names = nn;
    imp->capnames = cap;
  }
  char *s = strdup(cand);
  if (!s) return NULL;
  imp->names[imp->nnames++] = s;
  return s;
}

int onx_weight_add(onx_imp *imp, const char *layer, const char *suffix, int ndim, const int64_t *dims,
                   const float *data) {
  if (imp->nw == imp->capw) {
    int cap = imp->capw ? 2 * imp->capw : 32;
    onx_weight *nw = realloc(imp->w, (size_t)cap * sizeof *nw);
    if (!nw) return onx_fail(imp, "out of memory");
    imp->w = nw;
    imp->capw = cap;
  }
  int64_t n = 1;
  for (int k = 0; k < ndim; k++) n *= dims[k];
  onx_weight *w = &imp->w[imp->nw];
  memset(w, 0, sizeof *w);
  size_t len = strlen(layer) + strlen(suffix) + 2;
  w->name = malloc(len);
  w->data = malloc((size_t)(n ? n : 1) * sizeof(float));
  if (!w->name || !w->data) {
    free(w->name), free(w->data);
    return onx_fail(imp, "out of memory");
  }
  snprintf(w->name, len, "%s.%s", layer, suffix);
  w->ndim = ndim;
  memcpy(w->dims, dims, (size_t)ndim * sizeof *dims);
  memcpy(w->data, data, (size_t)n * sizeof(float));
  imp->nw++;
  return 0;
}

/* ---- nesting guard ------------------------------------------------------------------------------ */

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (int s = 0; s < 64; s += 7) {
    if (*p >= end) return -1;
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << s;
    if (!(b & 0x80)) return 0;
  }
  return -1;
}

/* Walks the wire format with the message descriptors, only to measure how deep sub-messages nest;
 * anything it cannot follow is left for protobuf-c to reject. */
int onx_check_depth(const uint8_t *p, size_t len, const ProtobufCMessageDescriptor *d, int max_depth) {
  if (max_depth <= 0) return -1;
  const uint8_t *end = p + len;
  while (p < end) {
    uint64_t key, v;
    if (varint(&p, end, &key)) return 0;
    switch (key & 7) {
    case 0: if (varint(&p, end, &v)) return 0; break;
    case 1: if ((size_t)(end - p) < 8) return 0; p += 8; break;
    case 5: if ((size_t)(end - p) < 4) return 0; p += 4; break;
    case 2: {
      if (varint(&p, end, &v) || v > (uint64_t)(end - p)) return 0;
      const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3));
      if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
          onx_check_depth(p, (size_t)v, (const ProtobufCMessageDescriptor *)f->descriptor, max_depth - 1))
        return -1;
      p += v;
      break;
    }
    default: return 0;
    }
  }
  return 0;
}
