/* IDX reader and gzip writer; see include/snc/data.h.
 *
 * Format: 0x00 0x00 <type> <ndim>, then ndim big-endian uint32 dimensions, then prod(dims)
 * elements. Only type 0x08 (unsigned byte) is supported, with 1..4 dimensions. zlib's gz* API
 * reads gzip files (recognised by their magic 1f 8b) and plain files alike. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "snc/data.h"

/* Reads up to n bytes into buf, looping over gzread's int-sized chunks. Returns the number of
 * bytes read (short at end of input), or -1 on a read/decompression error. */
static int64_t read_full(gzFile f, uint8_t *buf, int64_t n) {
  int64_t got = 0;
  while (got < n) {
    int64_t want = n - got;
    if (want > (1 << 30)) want = 1 << 30;
    int r = gzread(f, buf + got, (unsigned)want);
    if (r < 0) return -1;
    if (r == 0) break;
    got += r;
  }
  return got;
}

/* Message for the stream's last error, or "" when there is none. */
static const char *gz_reason(gzFile f) {
  int code = Z_OK;
  const char *msg = gzerror(f, &code);
  if (code == Z_OK || !msg) return "";
  return msg;
}

static int read_error(gzFile f, const char *path, snc_error *err) {
  return snc_errorf(err, "%s: read error: %s", path, gz_reason(f));
}

/* Suffix explaining a short read: a gzip stream that ends early reports Z_BUF_ERROR. */
static const char *short_hint(gzFile f) {
  int code = Z_OK;
  gzerror(f, &code);
  return code == Z_BUF_ERROR ? " (compressed stream ends early)" : "";
}

int snc_idx_read(const char *path, snc_idx *out, snc_error *err) {
  memset(out, 0, sizeof *out);
  struct stat st;
  if (stat(path, &st) != 0) return snc_errorf(err, "%s: cannot open: %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode)) return snc_errorf(err, "%s: not a regular file", path);
  errno = 0;
  gzFile f = gzopen(path, "rb");
  if (!f) return snc_errorf(err, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");

  int rc = -1;
  uint8_t *data = NULL;
  uint8_t head[4];
  int64_t got = read_full(f, head, 4);
  if (got < 0) { read_error(f, path, err); goto cleanup; }
  if (got == 0) { snc_errorf(err, "%s: empty file (not an IDX file)", path); goto cleanup; }
  if (got < 4) {
    snc_errorf(err, "%s: truncated header: expected 4 magic bytes, got %lld", path, (long long)got);
    goto cleanup;
  }
  if (head[0] != 0 || head[1] != 0) {
    snc_errorf(err, "%s: bad magic 0x%02x%02x%02x%02x: not an IDX file (must start with two zero bytes)",
               path, head[0], head[1], head[2], head[3]);
    goto cleanup;
  }
  if (head[2] != 0x08) {
    snc_errorf(err, "%s: unsupported data type 0x%02x (only 0x08, unsigned byte, is supported)", path, head[2]);
    goto cleanup;
  }
  int ndim = head[3];
  if (ndim < 1 || ndim > 4) {
    snc_errorf(err, "%s: wrong number of dimensions %d (expected 1 to 4)", path, ndim);
    goto cleanup;
  }

  uint8_t dimbuf[16];
  got = read_full(f, dimbuf, 4 * ndim);
  if (got < 0) { read_error(f, path, err); goto cleanup; }
  if (got < 4 * ndim) {
    snc_errorf(err, "%s: truncated header: expected %d bytes of dimensions, got %lld%s", path, 4 * ndim,
               (long long)got, short_hint(f));
    goto cleanup;
  }
  int64_t dims[4] = {0, 0, 0, 0};
  uint64_t total = 1;
  char shape[64] = "";
  for (int i = 0; i < ndim; i++) {
    const uint8_t *p = dimbuf + 4 * i;
    dims[i] = (int64_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]);
    size_t len = strlen(shape);
    snprintf(shape + len, sizeof shape - len, "%s%lld", i ? "x" : "", (long long)dims[i]);
    /* total <= 2^31 and dims[i] < 2^32 before this product, so it cannot overflow 64 bits */
    if (total <= (uint64_t)SNC_IDX_MAX_ELEMS) total *= (uint64_t)dims[i];
  }
  if (total > (uint64_t)SNC_IDX_MAX_ELEMS) {
    snc_errorf(err, "%s: absurd dimensions %s: more than 2^31 elements", path, shape);
    goto cleanup;
  }

  /* The buffer grows as the data arrives (from 1 MiB, doubling): a corrupt header on a small file
   * cannot make the reader allocate gigabytes before it finds the data missing. */
  uint64_t cap = total < (1u << 20) ? total : (1u << 20);
  data = malloc(cap ? cap : 1);
  if (!data) { snc_errorf(err, "%s: out of memory for %llu bytes", path, (unsigned long long)cap); goto cleanup; }
  got = 0;
  for (;;) {
    int64_t r = read_full(f, data + got, (int64_t)cap - got);
    if (r < 0) { read_error(f, path, err); goto cleanup; }
    got += r;
    if ((uint64_t)got < cap || cap == total) break; /* end of input, or all the data is in */
    cap = cap > total / 2 ? total : 2 * cap;
    uint8_t *bigger = realloc(data, cap);
    if (!bigger) { snc_errorf(err, "%s: out of memory for %llu bytes", path, (unsigned long long)cap); goto cleanup; }
    data = bigger;
  }
  if ((uint64_t)got < total) {
    snc_errorf(err, "%s: truncated: expected %llu bytes of data, got %lld%s", path, (unsigned long long)total,
               (long long)got, short_hint(f));
    goto cleanup;
  }
  /* Anything after the payload means the header does not describe the file. Counted up to a limit
   * only: a small gzip file can decompress to gigabytes of trailing zeros. */
  uint8_t extra[4096];
  int64_t nextra = 0;
  while (nextra <= SNC_IDX_MAX_TRAILING) {
    int64_t r = read_full(f, extra, sizeof extra);
    if (r < 0) { read_error(f, path, err); goto cleanup; }
    if (r == 0) break;
    nextra += r;
  }
  if (nextra > SNC_IDX_MAX_TRAILING) {
    snc_errorf(err, "%s: trailing garbage: more than %d bytes after the %llu bytes of data for dimensions %s", path,
               SNC_IDX_MAX_TRAILING, (unsigned long long)total, shape);
    goto cleanup;
  }
  if (nextra > 0) {
    snc_errorf(err, "%s: trailing garbage: %lld bytes after the %llu bytes of data for dimensions %s", path,
               (long long)nextra, (unsigned long long)total, shape);
    goto cleanup;
  }

  out->ndim = ndim;
  memcpy(out->dims, dims, sizeof dims);
  out->data = data; /* ownership moves to the caller's struct */
  data = NULL;
  rc = 0;
cleanup:
  free(data);
  gzclose(f);
  return rc;
}

int snc_idx_write_gz(const char *path, const snc_idx *t, snc_error *err) {
  if (t->ndim < 1 || t->ndim > 4) return snc_errorf(err, "%s: cannot write %d dimensions (1 to 4)", path, t->ndim);
  int64_t total = 1;
  uint8_t head[4 + 16] = {0, 0, 0x08, (uint8_t)t->ndim};
  for (int i = 0; i < t->ndim; i++) {
    int64_t d = t->dims[i];
    if (d < 0 || d > UINT32_MAX) return snc_errorf(err, "%s: dimension %d out of range: %lld", path, i, (long long)d);
    if (total <= SNC_IDX_MAX_ELEMS) total *= d;
    uint8_t *p = head + 4 + 4 * i;
    p[0] = (uint8_t)(d >> 24), p[1] = (uint8_t)(d >> 16), p[2] = (uint8_t)(d >> 8), p[3] = (uint8_t)d;
  }
  if (total > SNC_IDX_MAX_ELEMS) return snc_errorf(err, "%s: more than 2^31 elements", path);

  /* zlib's gz writer emits a gzip header with mtime 0 and no file name: output is deterministic. */
  errno = 0;
  gzFile f = gzopen(path, "wb9");
  if (!f) return snc_errorf(err, "%s: cannot create: %s", path, errno ? strerror(errno) : "out of memory");
  int ok = gzwrite(f, head, (unsigned)(4 + 4 * t->ndim)) == 4 + 4 * t->ndim;
  for (int64_t off = 0; ok && off < total;) {
    int64_t n = total - off;
    if (n > (1 << 30)) n = 1 << 30;
    ok = gzwrite(f, t->data + off, (unsigned)n) == (int)n;
    off += n;
  }
  const char *why = ok ? "" : gz_reason(f);
  char reason[256];
  snprintf(reason, sizeof reason, "%s", why);
  if (gzclose(f) != Z_OK && ok) {
    ok = 0;
    snprintf(reason, sizeof reason, "%s", errno ? strerror(errno) : "close failed");
  }
  if (!ok) {
    remove(path);
    return snc_errorf(err, "%s: write error: %s", path, reason);
  }
  return 0;
}

void snc_idx_free(snc_idx *t) {
  if (!t) return;
  free(t->data);
  memset(t, 0, sizeof *t);
}
