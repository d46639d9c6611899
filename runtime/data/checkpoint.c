/* Safetensors checkpoints: atomic writer and a validating reader; see include/snc/data.h. */
#include "snc/data.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snc/arena.h"
#include "snc/file.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint.c assumes a little-endian host (safetensors data is little-endian)"
#endif

/* The limits of a checkpoint (docs/robustness.md, "Limits"). The data buffer is bounded by the file
 * itself (its size is known before anything is read); the JSON header is checked by a scan of its
 * bytes before cJSON builds a tree of it (about 64 bytes per value: a 16 MiB header of zeros would
 * otherwise take 0.5 GB). A siamese checkpoint's header is 3 kB. */
#define HEADER_LIMIT (16u << 20) /* bytes of JSON header */
#define HEADER_MAX_DEPTH 8       /* nested objects and arrays; safetensors needs 3 */
#define HEADER_MAX_VALUES 1000000 /* JSON values (counted by their separators) */
#define JSON_INT_MAX 9007199254740992.0      /* 2^53: larger JSON numbers are not exact integers */
#define META_KEY "__metadata__"

struct snc_ckpt {
  snc_arena arena; /* path, names, tensor table, metadata strings */
  char *path;
  int n;
  snc_ckpt_tensor *t; /* data-buffer order */
  int nmeta;
  const char **meta_keys, **meta_vals;
  unsigned char *data; /* the whole data buffer, malloc'd (aligned for floats) */
};

const char *snc_ckpt_dtype_name(snc_ckpt_dtype dtype) {
  switch (dtype) {
  case SNC_CKPT_F32: return "F32";
  case SNC_CKPT_I32: return "I32";
  }
  return "?";
}

int snc_ckpt_dtype_size(snc_ckpt_dtype dtype) {
  (void)dtype; /* both supported dtypes are 4 bytes wide */
  return 4;
}

static int dtype_valid(snc_ckpt_dtype d) { return d == SNC_CKPT_F32 || d == SNC_CKPT_I32; }

/* "[32,1,3,3]", "[]" for a scalar; truncated quietly when buf is small. */
static const char *fmt_shape(char *buf, size_t cap, int ndim, const int64_t *dims) {
  size_t k = (size_t)snprintf(buf, cap, "[");
  for (int i = 0; i < ndim && k < cap; i++)
    k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, i ? "," : "", dims[i]);
  if (k < cap) snprintf(buf + k, cap - k, "]");
  return buf;
}

/* Byte size of a tensor of this shape; -1 when a dimension is negative or the size overflows. */
static int64_t shape_bytes(int ndim, const int64_t *dims) {
  int64_t elems = 1;
  for (int i = 0; i < ndim; i++) {
    if (dims[i] < 0) return -1;
    if (dims[i] != 0 && elems > INT64_MAX / 4 / dims[i]) return -1;
    elems *= dims[i];
  }
  return elems * 4;
}

static int cmp_str_ptr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ------------------------------------------------------------------------------------------ write */

static cJSON *json_int(int64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%" PRId64, v); /* raw text: exact for any int64, unlike a double */
  return cJSON_CreateRaw(buf);
}

/* Adds item to arr or obj (key != NULL); takes ownership of item, returns 0 or -1 on allocation failure. */
static int json_put(cJSON *into, const char *key, cJSON *item) {
  if (!item) return -1;
  if (key ? cJSON_AddItemToObject(into, key, item) : cJSON_AddItemToArray(into, item)) return 0;
  cJSON_Delete(item);
  return -1;
}

/* Checks the caller's tensors and metadata; the message names path and the offending entry. */
static int check_write_args(const char *path, const snc_ckpt_tensor *ts, int n, const char *const *meta,
                            snc_error *err) {
  char sh[256];
  if (n < 0 || (n > 0 && !ts)) return snc_errorf(err, "%s: bad tensor list (n = %d)", path, n);
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    const snc_ckpt_tensor *t = &ts[i];
    if (!t->name || !t->name[0]) return snc_errorf(err, "%s: tensor #%d has no name", path, i);
    if (!strcmp(t->name, META_KEY))
      return snc_errorf(err, "%s: tensor name '%s' is reserved for metadata", path, t->name);
    if (!dtype_valid(t->dtype))
      return snc_errorf(err, "%s: tensor '%s': unknown dtype %d", path, t->name, (int)t->dtype);
    if (t->ndim < 0 || t->ndim > SNC_CKPT_MAX_DIMS)
      return snc_errorf(err, "%s: tensor '%s': %d dimensions, expected 0..%d", path, t->name, t->ndim,
                        SNC_CKPT_MAX_DIMS);
    int64_t bytes = shape_bytes(t->ndim, t->dims);
    if (bytes < 0 || total > INT64_MAX - bytes)
      return snc_errorf(err, "%s: tensor '%s': shape %s is negative or too large", path, t->name,
                        fmt_shape(sh, sizeof sh, t->ndim, t->dims));
    if (bytes > 0 && !t->data) return snc_errorf(err, "%s: tensor '%s': data is NULL", path, t->name);
    total += bytes;
  }
  for (int i = 0; meta && meta[i]; i += 2) {
    if (!meta[i + 1]) return snc_errorf(err, "%s: metadata key '%s' has no value", path, meta[i]);
    for (int j = 0; j < i; j += 2)
      if (!strcmp(meta[i], meta[j])) return snc_errorf(err, "%s: metadata key '%s' given twice", path, meta[i]);
  }
  if (n == 0) return 0;
  const char **names = malloc((size_t)n * sizeof *names);
  if (!names) return snc_errorf(err, "%s: out of memory", path);
  for (int i = 0; i < n; i++) names[i] = ts[i].name;
  qsort(names, (size_t)n, sizeof *names, cmp_str_ptr);
  int rc = 0;
  for (int i = 1; i < n && rc == 0; i++)
    if (!strcmp(names[i - 1], names[i])) rc = snc_errorf(err, "%s: tensor name '%s' given twice", path, names[i]);
  free(names);
  return rc;
}

/* The JSON header text (malloc'd, caller frees) or NULL when out of memory. */
static char *build_header(const snc_ckpt_tensor *ts, int n, const char *const *meta) {
  cJSON *root = cJSON_CreateObject();
  char *text = NULL;
  if (!root) return NULL;
  if (meta && meta[0]) {
    cJSON *m = cJSON_CreateObject();
    if (json_put(root, META_KEY, m)) goto cleanup;
    for (int i = 0; meta[i]; i += 2)
      if (json_put(m, meta[i], cJSON_CreateString(meta[i + 1]))) goto cleanup;
  }
  int64_t off = 0;
  for (int i = 0; i < n; i++) {
    const snc_ckpt_tensor *t = &ts[i];
    cJSON *e, *shape, *offs; /* each created only once its parent holds the previous one */
    if (json_put(root, t->name, e = cJSON_CreateObject()) ||
        json_put(e, "dtype", cJSON_CreateString(snc_ckpt_dtype_name(t->dtype))) ||
        json_put(e, "shape", shape = cJSON_CreateArray()) || json_put(e, "data_offsets", offs = cJSON_CreateArray()))
      goto cleanup;
    for (int d = 0; d < t->ndim; d++)
      if (json_put(shape, NULL, json_int(t->dims[d]))) goto cleanup;
    int64_t bytes = shape_bytes(t->ndim, t->dims);
    if (json_put(offs, NULL, json_int(off)) || json_put(offs, NULL, json_int(off + bytes))) goto cleanup;
    off += bytes;
  }
  text = cJSON_PrintUnformatted(root);
cleanup:
  cJSON_Delete(root);
  return text;
}

int snc_ckpt_write(const char *path, const snc_ckpt_tensor *tensors, int n, const char *const *meta_kv,
                   snc_error *err) {
  if (!path || !path[0]) return snc_errorf(err, "checkpoint path is empty");
  if (check_write_args(path, tensors, n, meta_kv, err)) return -1;
  char *header = build_header(tensors, n, meta_kv);
  if (!header) return snc_errorf(err, "%s: out of memory", path);
  size_t hlen = strlen(header), padded = (hlen + 7) & ~(size_t)7; /* data starts at 8 + padded */
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
  static const char spaces[8] = "        ";
  snc_file_out out;
  FILE *f = snc_file_begin(&out, path, "wb", err);
  if (!f) {
    free(header);
    return -1;
  }
  int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(header, 1, hlen, f) == hlen &&
           fwrite(spaces, 1, padded - hlen, f) == padded - hlen;
  for (int i = 0; ok && i < n; i++) {
    size_t bytes = (size_t)shape_bytes(tensors[i].ndim, tensors[i].dims);
    ok = bytes == 0 || fwrite(tensors[i].data, 1, bytes, f) == bytes;
  }
  free(header);
  if (!ok) {
    snc_errorf(err, "%s: cannot write %s: %s", path, out.tmp, strerror(errno));
    snc_file_abort(&out);
    return -1;
  }
  return snc_file_commit(&out, err);
}

/* ------------------------------------------------------------------------------------------- read */

/* A JSON number that is an exact non-negative integer below 2^53. */
static int json_uint(const cJSON *j, int64_t *out) {
  if (!cJSON_IsNumber(j)) return 0;
  double v = j->valuedouble;
  if (!isfinite(v) || v < 0 || v > JSON_INT_MAX || v != floor(v)) return 0;
  *out = (int64_t)v;
  return 1;
}

typedef struct {
  int64_t begin, end;
  int order; /* position in the header: tie-break, so zero-size tensors keep their header order */
} span;

static int cmp_span(const void *a, const void *b) {
  const span *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return x->order - y->order;
}

static int parse_tensor(snc_ckpt *c, const cJSON *e, snc_ckpt_tensor *t, span *s, int64_t dlen, snc_error *err) {
  const char *p = c->path, *name = t->name;
  char sh[256];
  if (!cJSON_IsObject(e)) return snc_errorf(err, "%s: tensor '%s': entry is not a JSON object", p, name);
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
  const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
  const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
  if (!cJSON_IsString(dt)) return snc_errorf(err, "%s: tensor '%s': \"dtype\" missing or not a string", p, name);
  if (!strcmp(dt->valuestring, "F32"))
    t->dtype = SNC_CKPT_F32;
  else if (!strcmp(dt->valuestring, "I32"))
    t->dtype = SNC_CKPT_I32;
  else
    return snc_errorf(err, "%s: tensor '%s': unsupported dtype '%s' (snc reads F32 and I32)", p, name,
                      dt->valuestring);
  if (!cJSON_IsArray(shape)) return snc_errorf(err, "%s: tensor '%s': \"shape\" missing or not an array", p, name);
  int nd = cJSON_GetArraySize(shape);
  if (nd > SNC_CKPT_MAX_DIMS)
    return snc_errorf(err, "%s: tensor '%s': shape has %d dimensions, snc supports at most %d", p, name, nd,
                      SNC_CKPT_MAX_DIMS);
  t->ndim = 0;
  for (const cJSON *d = shape->child; d; d = d->next)
    if (!json_uint(d, &t->dims[t->ndim++]))
      return snc_errorf(err, "%s: tensor '%s': shape entry %d is not a non-negative integer", p, name, t->ndim - 1);
  int64_t need = shape_bytes(t->ndim, t->dims);
  if (need < 0)
    return snc_errorf(err, "%s: tensor '%s': shape %s has too many elements", p, name,
                      fmt_shape(sh, sizeof sh, t->ndim, t->dims));
  if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_uint(offs->child, &s->begin) ||
      !json_uint(offs->child->next, &s->end))
    return snc_errorf(err, "%s: tensor '%s': \"data_offsets\" must be two non-negative integers", p, name);
  if (s->end < s->begin)
    return snc_errorf(err, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] end before they begin", p,
                      name, s->begin, s->end);
  if (s->end > dlen)
    return snc_errorf(err,
                      "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] lie outside the %" PRId64
                      "-byte data buffer",
                      p, name, s->begin, s->end, dlen);
  if (s->end - s->begin != need)
    return snc_errorf(err,
                      "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] hold %" PRId64
                      " bytes, shape %s %s needs %" PRId64,
                      p, name, s->begin, s->end, s->end - s->begin, fmt_shape(sh, sizeof sh, t->ndim, t->dims),
                      dt->valuestring, need);
  return 0;
}

static int parse_meta(snc_ckpt *c, const cJSON *m, snc_error *err) {
  if (cJSON_IsNull(m)) return 0;
  if (!cJSON_IsObject(m)) return snc_errorf(err, "%s: \"%s\" is not a JSON object", c->path, META_KEY);
  int n = cJSON_GetArraySize(m);
  c->meta_keys = snc_arena_alloc(&c->arena, (size_t)n * sizeof *c->meta_keys + 1);
  c->meta_vals = snc_arena_alloc(&c->arena, (size_t)n * sizeof *c->meta_vals + 1);
  for (const cJSON *e = m->child; e; e = e->next) {
    if (!cJSON_IsString(e))
      return snc_errorf(err, "%s: metadata entry '%s' is not a string", c->path, e->string);
    if (snc_ckpt_meta(c, e->string))
      return snc_errorf(err, "%s: metadata key '%s' appears twice", c->path, e->string);
    c->meta_keys[c->nmeta] = snc_arena_strdup(&c->arena, e->string);
    c->meta_vals[c->nmeta++] = snc_arena_strdup(&c->arena, e->valuestring);
  }
  return 0;
}

/* Offset of the first byte that breaks UTF-8 structure, or -1 when s[0..n) is well-formed. */
static long utf8_bad(const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned c = s[i];
    size_t len = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;
    if (!len || i + len > n) return (long)i;
    for (size_t k = 1; k < len; k++)
      if ((s[i + k] & 0xc0) != 0x80) return (long)i;
    i += len;
  }
  return -1;
}

/* Nesting and value count of the JSON text, outside strings: refused past the limits at their byte. */
static int header_shape(const char *p, const char *hdr, size_t hlen, snc_error *err) {
  int depth = 0, in_str = 0;
  long values = 1;
  for (size_t i = 0; i < hlen; i++) {
    char ch = hdr[i];
    if (in_str) {
      if (ch == '\\') i++;
      else if (ch == '"') in_str = 0;
    } else if (ch == '"') {
      in_str = 1;
    } else if (ch == '{' || ch == '[') {
      if (++depth > HEADER_MAX_DEPTH)
        return snc_errorf(err, "%s: header nests deeper than %d levels (byte %zu of the header)", p, HEADER_MAX_DEPTH, i);
    } else if (ch == '}' || ch == ']') {
      depth--;
    } else if ((ch == ',' || ch == ':') && ++values > HEADER_MAX_VALUES) {
      return snc_errorf(err, "%s: header has more than %d JSON values (byte %zu of the header)", p, HEADER_MAX_VALUES, i);
    }
  }
  return 0;
}

/* Parses and validates the header against a data buffer of dlen bytes; fills c. */
static int parse_header(snc_ckpt *c, const char *hdr, size_t hlen, int64_t dlen, snc_error *err) {
  const char *p = c->path, *end = NULL;
  int rc = -1, nt = 0, nmeta = 0;
  snc_ckpt_tensor *tmp = NULL;
  span *spans = NULL;
  const char **names = NULL;
  cJSON *root = NULL;
  long bad = utf8_bad((const unsigned char *)hdr, hlen);
  if (bad >= 0) {
    snc_errorf(err, "%s: header is not valid UTF-8 (byte %ld of the header)", p, bad);
    goto cleanup;
  }
  if (header_shape(p, hdr, hlen, err)) goto cleanup;
  root = cJSON_ParseWithLengthOpts(hdr, hlen, &end, 0);
  if (!root) {
    size_t at = end && end >= hdr ? (size_t)(end - hdr) : 0;
    snc_errorf(err, "%s: header is not valid JSON (error near byte %zu of the header)", p, at);
    goto cleanup;
  }
  for (const char *q = end; q < hdr + hlen; q++)
    if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') {
      snc_errorf(err, "%s: header has stray bytes after the JSON object (byte %zu)", p, (size_t)(q - hdr));
      goto cleanup;
    }
  if (!cJSON_IsObject(root)) {
    snc_errorf(err, "%s: header is not a JSON object", p);
    goto cleanup;
  }
  for (const cJSON *e = root->child; e; e = e->next) {
    if (!strcmp(e->string, META_KEY)) {
      if (nmeta++) {
        snc_errorf(err, "%s: \"%s\" appears twice in the header", p, META_KEY);
        goto cleanup;
      }
      if (parse_meta(c, e, err)) goto cleanup;
    } else {
      nt++;
    }
  }
  tmp = calloc((size_t)nt + 1, sizeof *tmp);
  spans = calloc((size_t)nt + 1, sizeof *spans);
  names = calloc((size_t)nt + 1, sizeof *names);
  if (!tmp || !spans || !names) {
    snc_errorf(err, "%s: out of memory for %d tensors", p, nt);
    goto cleanup;
  }
  int k = 0;
  for (const cJSON *e = root->child; e; e = e->next) {
    if (!strcmp(e->string, META_KEY)) continue;
    tmp[k].name = names[k] = snc_arena_strdup(&c->arena, e->string);
    spans[k].order = k;
    if (parse_tensor(c, e, &tmp[k], &spans[k], dlen, err)) goto cleanup;
    k++;
  }
  qsort(names, (size_t)nt, sizeof *names, cmp_str_ptr);
  for (int i = 1; i < nt; i++)
    if (!strcmp(names[i - 1], names[i])) {
      snc_errorf(err, "%s: tensor '%s' appears twice in the header", p, names[i]);
      goto cleanup;
    }
  qsort(spans, (size_t)nt, sizeof *spans, cmp_span);
  int64_t pos = 0;
  const char *prev = NULL;
  for (int i = 0; i < nt; i++) {
    const span *s = &spans[i];
    const char *name = tmp[s->order].name;
    if (s->begin < pos) {
      snc_errorf(err,
                 "%s: tensor '%s' (data_offsets [%" PRId64 ", %" PRId64 "]) overlaps tensor '%s' (ends at %" PRId64
                 ")",
                 p, name, s->begin, s->end, prev, pos);
      goto cleanup;
    }
    if (s->begin > pos) {
      snc_errorf(err,
                 "%s: gap of %" PRId64 " unused bytes before tensor '%s' (data_offsets [%" PRId64 ", %" PRId64 "])", p,
                 s->begin - pos, name, s->begin, s->end);
      goto cleanup;
    }
    pos = s->end;
    prev = name;
  }
  if (pos != dlen) {
    snc_errorf(err,
               "%s: %" PRId64 " trailing bytes after the last tensor (data buffer %" PRId64
               " bytes, tensors cover %" PRId64 ")",
               p, dlen - pos, dlen, pos);
    goto cleanup;
  }
  c->n = nt;
  c->t = snc_arena_alloc(&c->arena, (size_t)nt * sizeof *c->t + 1);
  for (int i = 0; i < nt; i++) {
    c->t[i] = tmp[spans[i].order];
    c->t[i].data = c->data + spans[i].begin;
  }
  rc = 0;
cleanup:
  cJSON_Delete(root);
  free(tmp);
  free(spans);
  free(names);
  return rc;
}

snc_ckpt *snc_ckpt_read(const char *path, snc_error *err) {
  if (!path) path = "(null)";
  snc_ckpt *c = calloc(1, sizeof *c);
  char *hdr = NULL;
  FILE *f = NULL;
  struct stat st;
  if (!c) {
    snc_errorf(err, "%s: out of memory", path);
    return NULL;
  }
  c->path = snc_arena_strdup(&c->arena, path);
  f = fopen(path, "rb");
  if (!f) {
    snc_errorf(err, "%s: cannot open: %s", path, strerror(errno));
    goto fail;
  }
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    snc_errorf(err, "%s: not a regular file", path);
    goto fail;
  }
  int64_t size = (int64_t)st.st_size;
  unsigned char len8[8];
  if (size < 8 || fread(len8, 1, 8, f) != 8) {
    snc_errorf(err, "%s: file is %" PRId64 " bytes, too short for a safetensors header length (8 bytes)", path, size);
    goto fail;
  }
  uint64_t hlen = 0;
  for (int i = 0; i < 8; i++) hlen |= (uint64_t)len8[i] << (8 * i);
  if (hlen > HEADER_LIMIT) {
    snc_errorf(err, "%s: header length %" PRIu64 " is absurd (limit %u bytes); not a safetensors file?", path, hlen,
               HEADER_LIMIT);
    goto fail;
  }
  if (hlen > (uint64_t)(size - 8)) {
    snc_errorf(err, "%s: header length %" PRIu64 " exceeds the %" PRId64 " bytes that follow it", path, hlen, size - 8);
    goto fail;
  }
  int64_t dlen = size - 8 - (int64_t)hlen;
  hdr = malloc((size_t)hlen + 1);
  c->data = malloc(dlen > 0 ? (size_t)dlen : 1); /* malloc alignment suits F32/I32 elements */
  if (!hdr || !c->data) {
    snc_errorf(err, "%s: out of memory reading %" PRId64 " bytes", path, size);
    goto fail;
  }
  if (fread(hdr, 1, (size_t)hlen, f) != hlen || fread(c->data, 1, (size_t)dlen, f) != (size_t)dlen) {
    snc_errorf(err, "%s: short read (file changed while reading?)", path);
    goto fail;
  }
  hdr[hlen] = '\0';
  fclose(f);
  f = NULL;
  if (parse_header(c, hdr, (size_t)hlen, dlen, err)) goto fail;
  free(hdr);
  return c; /* ownership of c passes to the caller (snc_ckpt_free) */
fail:
  if (f) fclose(f);
  free(hdr);
  snc_ckpt_free(c);
  return NULL;
}

int snc_ckpt_count(const snc_ckpt *c) { return c ? c->n : 0; }

const snc_ckpt_tensor *snc_ckpt_at(const snc_ckpt *c, int i) {
  return c && i >= 0 && i < c->n ? &c->t[i] : NULL;
}

const snc_ckpt_tensor *snc_ckpt_find(const snc_ckpt *c, const char *name) {
  for (int i = 0; c && name && i < c->n; i++)
    if (!strcmp(c->t[i].name, name)) return &c->t[i];
  return NULL;
}

const char *snc_ckpt_meta(const snc_ckpt *c, const char *key) {
  for (int i = 0; c && key && i < c->nmeta; i++)
    if (!strcmp(c->meta_keys[i], key)) return c->meta_vals[i];
  return NULL;
}

const char *snc_ckpt_path(const snc_ckpt *c) { return c ? c->path : NULL; }

void snc_ckpt_free(snc_ckpt *c) {
  if (!c) return;
  snc_arena_free(&c->arena);
  free(c->data);
  free(c);
}

int snc_ckpt_load_f32(const snc_ckpt *c, const char *name, int ndim, const int64_t *dims, float *dst,
                      snc_error *err) {
  char want[256], got[256];
  if (!c || !name) return snc_errorf(err, "snc_ckpt_load_f32: no checkpoint or no name");
  const snc_ckpt_tensor *t = snc_ckpt_find(c, name);
  if (!t) return snc_errorf(err, "%s: no tensor '%s' (the file holds %d tensors)", c->path, name, c->n);
  if (ndim < 0 || ndim > SNC_CKPT_MAX_DIMS || (ndim > 0 && !dims))
    return snc_errorf(err, "%s: tensor '%s': bad expected shape (%d dimensions)", c->path, name, ndim);
  if (t->dtype != SNC_CKPT_F32)
    return snc_errorf(err, "%s: tensor '%s' is %s, expected F32", c->path, name, snc_ckpt_dtype_name(t->dtype));
  int same = t->ndim == ndim;
  for (int i = 0; same && i < ndim; i++) same = t->dims[i] == dims[i];
  if (!same)
    return snc_errorf(err, "%s: tensor '%s' has shape %s, expected %s", c->path, name,
                      fmt_shape(got, sizeof got, t->ndim, t->dims), fmt_shape(want, sizeof want, ndim, dims));
  size_t bytes = (size_t)shape_bytes(t->ndim, t->dims);
  if (bytes > 0) memcpy(dst, t->data, bytes);
  return 0;
}
