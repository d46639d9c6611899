/* NumPy .npy reader and writer (include/snc/data.h). The header is a Python dict literal; the
 * reader parses exactly the three keys NumPy writes and never trusts a length or a count. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snc/file.h"
#include "snc/data.h"

char *snc_npy_shape_str(int ndim, const int64_t *dims, char *buf, size_t len) {
  size_t n = (size_t)snprintf(buf, len, "(");
  for (int k = 0; k < ndim && n + 24 < len; k++)
    n += (size_t)snprintf(buf + n, len - n, "%s%lld", k ? ", " : "", (long long)dims[k]);
  snprintf(buf + n, len - n, "%s)", ndim == 1 ? "," : "");
  return buf;
}

/* The header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (37, 10), } */
typedef struct hdr {
  const char *p, *end;
} hdr;

static void ws(hdr *h) {
  while (h->p < h->end && isspace((unsigned char)*h->p)) h->p++;
}

static int lit(hdr *h, char c) {
  ws(h);
  if (h->p < h->end && *h->p == c) return h->p++, 1;
  return 0;
}

/* a quoted string into out (at most cap - 1 characters) */
static int qstr(hdr *h, char *out, size_t cap) {
  ws(h);
  if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return -1;
  char q = *h->p++;
  size_t n = 0;
  while (h->p < h->end && *h->p != q) {
    if (n + 1 >= cap) return -1;
    out[n++] = *h->p++;
  }
  if (h->p >= h->end) return -1;
  h->p++;
  out[n] = 0;
  return 0;
}

static int parse_header(hdr *h, const char *name, snc_npy *a, snc_error *err) {
  int have_descr = 0, have_order = 0, have_shape = 0;
  char descr[16];
  if (!lit(h, '{')) return snc_errorf(err, "%s: the header is not a dict", name);
  for (;;) {
    char key[32];
    if (lit(h, '}')) break;
    if (qstr(h, key, sizeof key) || !lit(h, ':')) return snc_errorf(err, "%s: malformed header dict", name);
    if (!strcmp(key, "descr")) {
      if (qstr(h, descr, sizeof descr)) return snc_errorf(err, "%s: 'descr' is not a short string", name);
      if (!strcmp(descr, "<f4") || !strcmp(descr, "=f4") || !strcmp(descr, "f4")) a->dtype = SNC_F32;
      else if (!strcmp(descr, "<i4") || !strcmp(descr, "=i4") || !strcmp(descr, "|i4") || !strcmp(descr, "i4"))
        a->dtype = SNC_I32;
      else
        return snc_errorf(err, "%s: dtype '%s'; expected float32 ('<f4') or int32 ('<i4'), little-endian", name, descr);
      have_descr = 1;
    } else if (!strcmp(key, "fortran_order")) {
      ws(h);
      if (h->end - h->p >= 5 && !memcmp(h->p, "False", 5)) h->p += 5;
      else if (h->end - h->p >= 4 && !memcmp(h->p, "True", 4))
        return snc_errorf(err, "%s: Fortran order; expected C order (numpy.ascontiguousarray)", name);
      else return snc_errorf(err, "%s: 'fortran_order' is not False or True", name);
      have_order = 1;
    } else if (!strcmp(key, "shape")) {
      if (!lit(h, '(')) return snc_errorf(err, "%s: 'shape' is not a tuple", name);
      a->ndim = 0;
      a->n = 1;
      while (!lit(h, ')')) {
        ws(h);
        if (a->ndim == SNC_MAX_DIMS) return snc_errorf(err, "%s: more than %d axes", name, SNC_MAX_DIMS);
        if (h->p >= h->end || !isdigit((unsigned char)*h->p)) return snc_errorf(err, "%s: malformed 'shape'", name);
        int64_t d = 0;
        while (h->p < h->end && isdigit((unsigned char)*h->p)) {
          d = d * 10 + (*h->p++ - '0');
          if (d > SNC_NPY_MAX_ELEMS) return snc_errorf(err, "%s: axis size too large", name);
        }
        if (h->p < h->end && *h->p == 'L') h->p++; /* Python 2 longs */
        a->dims[a->ndim++] = d;
        if (d && a->n > SNC_NPY_MAX_ELEMS / d) return snc_errorf(err, "%s: more than %lld elements", name, (long long)SNC_NPY_MAX_ELEMS);
        a->n *= d;
        if (!lit(h, ',') && !(ws(h), h->p < h->end && *h->p == ')')) return snc_errorf(err, "%s: malformed 'shape'", name);
      }
      have_shape = 1;
    } else {
      return snc_errorf(err, "%s: unknown header key '%s'", name, key);
    }
    if (!lit(h, ',')) {
      if (!lit(h, '}')) return snc_errorf(err, "%s: malformed header dict", name);
      break;
    }
  }
  if (!have_descr || !have_order || !have_shape)
    return snc_errorf(err, "%s: the header lacks '%s'", name, !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
  return 0;
}

/* Magic, version and header; *data_off receives where the data starts. */
static int read_prefix(const unsigned char *b, size_t len, const char *name, snc_npy *a, size_t *data_off, snc_error *err) {
  if (len < 10 || memcmp(b, "\x93NUMPY", 6)) return snc_errorf(err, "%s: not a .npy file (no \\x93NUMPY magic)", name);
  int major = b[6];
  size_t hl, at;
  if (major == 1) hl = (size_t)b[8] | (size_t)b[9] << 8, at = 10;
  else if (major == 2 || major == 3) {
    if (len < 12) return snc_errorf(err, "%s: truncated header", name);
    hl = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24, at = 12;
  } else {
    return snc_errorf(err, "%s: .npy format version %d.%d is not supported (1.0 to 3.0)", name, major, b[7]);
  }
  if (hl > SNC_NPY_MAX_HEADER) return snc_errorf(err, "%s: header of %zu bytes (at most %d)", name, hl, SNC_NPY_MAX_HEADER);
  if (len - at < hl) return snc_errorf(err, "%s: truncated header (%zu bytes of %zu)", name, len - at, hl);
  hdr h = {(const char *)b + at, (const char *)b + at + hl};
  if (parse_header(&h, name, a, err)) return -1;
  *data_off = at + hl;
  return 0;
}

int snc_npy_parse(const void *buf, size_t len, const char *name, snc_npy *a, snc_error *err) {
  memset(a, 0, sizeof *a);
  size_t off;
  if (read_prefix(buf, len, name, a, &off, err)) return -1;
  size_t want = (size_t)a->n * 4, have = len - off;
  if (have != want)
    return snc_errorf(err, "%s: %zu bytes of data for shape %s (%zu expected)%s", name, have,
                      snc_npy_shape_str(a->ndim, a->dims, (char[128]){0}, 128), want, have < want ? ": truncated" : "");
  if (!(a->data = malloc(want ? want : 1))) return snc_errorf(err, "%s: out of memory", name);
  memcpy(a->data, (const char *)buf + off, want);
  return 0;
}

int snc_npy_read(const char *path, snc_npy *a, snc_error *err) {
  memset(a, 0, sizeof *a);
  FILE *f = fopen(path, "rb");
  if (!f) return snc_errorf(err, "%s: cannot open: %s", path, strerror(errno));
  unsigned char *head = malloc(12 + SNC_NPY_MAX_HEADER);
  int rc = -1;
  if (!head) {
    snc_errorf(err, "%s: out of memory", path);
    goto done;
  }
  size_t got = fread(head, 1, 12 + SNC_NPY_MAX_HEADER, f), off;
  if (read_prefix(head, got, path, a, &off, err)) goto done;
  size_t want = (size_t)a->n * 4, have = got - off;
  /* the file's size first: a header may claim any shape, so nothing is allocated for data absent */
  long end = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  if (end < 0 || fseek(f, (long)got, SEEK_SET) != 0) {
    snc_errorf(err, "%s: cannot seek: %s", path, strerror(errno));
    goto done;
  }
  if ((size_t)end - off != want) {
    snc_errorf(err, "%s: %s%zu bytes of data for shape %s (%zu expected)", path, (size_t)end - off < want ? "truncated: " : "",
               (size_t)end - off, snc_npy_shape_str(a->ndim, a->dims, (char[128]){0}, 128), want);
    goto done;
  }
  if (!(a->data = malloc(want ? want : 1))) {
    snc_errorf(err, "%s: out of memory for %lld elements", path, (long long)a->n);
    goto done;
  }
  memcpy(a->data, head + off, have < want ? have : want);
  if (have < want) have += fread((char *)a->data + have, 1, want - have, f);
  else if (have > want) {
    snc_errorf(err, "%s: %zu bytes after the data of shape %s", path, have - want, snc_npy_shape_str(a->ndim, a->dims, (char[128]){0}, 128));
    goto done;
  }
  if (ferror(f)) {
    snc_errorf(err, "%s: read error", path);
    goto done;
  }
  if (have < want) {
    snc_errorf(err, "%s: truncated: %zu bytes of data for shape %s (%zu expected)", path, have,
               snc_npy_shape_str(a->ndim, a->dims, (char[128]){0}, 128), want);
    goto done;
  }
  if (fgetc(f) != EOF) {
    snc_errorf(err, "%s: bytes after the data of shape %s", path, snc_npy_shape_str(a->ndim, a->dims, (char[128]){0}, 128));
    goto done;
  }
  rc = 0;
done:
  if (rc) snc_npy_free(a);
  free(head);
  fclose(f);
  return rc;
}

void snc_npy_free(snc_npy *a) {
  if (!a) return;
  free(a->data);
  a->data = NULL;
  a->n = 0;
}

int snc_npy_write(const char *path, snc_dtype dtype, int ndim, const int64_t *dims, const void *data, snc_error *err) {
  if (ndim < 0 || ndim > SNC_MAX_DIMS) return snc_errorf(err, "%s: %d axes (at most %d)", path, ndim, SNC_MAX_DIMS);
  char dict[256], shape[160];
  int64_t n = 1;
  for (int k = 0; k < ndim; k++) n *= dims[k];
  int hl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                    dtype == SNC_I32 ? "<i4" : "<f4", snc_npy_shape_str(ndim, dims, shape, sizeof shape));
  int total = 10 + hl + 1, pad = (64 - total % 64) % 64; /* the data starts at a multiple of 64 */
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)((hl + pad + 1) & 0xff),
                           (unsigned char)((hl + pad + 1) >> 8)};
  snc_file_out o;
  FILE *f = snc_file_begin(&o, path, "wb", err);
  if (!f) return -1;
  fwrite(pre, 1, sizeof pre, f);
  fwrite(dict, 1, (size_t)hl, f);
  for (int k = 0; k < pad; k++) fputc(' ', f);
  fputc('\n', f);
  fwrite(data, 4, (size_t)n, f); /* little-endian hosts */
  return snc_file_commit(&o, err);
}
