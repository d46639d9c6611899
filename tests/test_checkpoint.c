/* Safetensors checkpoints: round trip, atomic write, a corpus of corrupt files, loader messages. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snc/data.h"
#include "testutil.h"

/* ------------------------------------------------------------------------------------- helpers */

static char g_dir[64];

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}
static void rm_dir(void) { nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* A scratch directory for this run, removed at exit. */
static const char *tdir(void) {
  if (!g_dir[0]) {
    snprintf(g_dir, sizeof g_dir, "/tmp/snc_ckpt_XXXXXX");
    if (!mkdtemp(g_dir)) abort();
    atexit(rm_dir);
  }
  return g_dir;
}

static char *tpath(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "%s/%s", tdir(), name);
  return buf;
}

static void write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  CU_ASSERT_FATAL(f != NULL);
  CU_ASSERT(fwrite(p, 1, n, f) == n);
  fclose(f);
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Writes length field (len_override if nonzero, else strlen(json)) + json + dlen bytes of data. */
static void write_st(const char *path, const char *json, size_t dlen, uint64_t len_override) {
  size_t hl = strlen(json);
  uint64_t L = len_override ? len_override : hl;
  unsigned char *buf = calloc(1, 8 + hl + dlen + 1);
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(L >> (8 * i));
  memcpy(buf + 8, json, hl);
  for (size_t i = 0; i < dlen; i++) buf[8 + hl + i] = (unsigned char)i;
  write_bytes(path, buf, 8 + hl + dlen);
  free(buf);
}

/* Number of "<anything>.tmp.<pid>" files left in dir. */
static int count_tmp(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  if (!d) return -1;
  for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
  closedir(d);
  return n;
}

/* Reading path must fail with a message that starts with the path and contains want. */
static void expect_reject(const char *path, const char *want) {
  snc_error err = {{0}};
  snc_ckpt *c = snc_ckpt_read(path, &err);
  CU_ASSERT(c == NULL);
  snc_ckpt_free(c);
  int ok = strncmp(err.msg, path, strlen(path)) == 0 && strstr(err.msg, want) != NULL;
  if (!ok) fprintf(stderr, "\n  expected '%s' in: %s\n", want, err.msg);
  CU_ASSERT(ok);
}

/* --------------------------------------------------------------------------------------- tests */

static void test_round_trip(void) {
  char path[256];
  tpath(path, sizeof path, "rt.safetensors");
  float w[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f}, s = 42.5f;
  int32_t ids[4] = {7, -1, 2147483647, -2147483647 - 1};
  int32_t eight[2] = {5, 6};
  snc_ckpt_tensor in[] = {
      {"conv1.weight", SNC_CKPT_F32, 2, {2, 3}, w},
      {"labels", SNC_CKPT_I32, 1, {4}, ids},
      {"lr", SNC_CKPT_F32, 0, {0}, &s},
      {"empty", SNC_CKPT_F32, 3, {3, 0, 2}, NULL},
      {"deep", SNC_CKPT_I32, 8, {1, 1, 1, 2, 1, 1, 1, 1}, eight},
      {"a \"quoted\" name/\xc3\xa9", SNC_CKPT_F32, 1, {1}, &s},
  };
  const int n = (int)(sizeof in / sizeof in[0]);
  const char *meta[] = {"model", "siamese.yaml", "note", "tab\tquote\" \xe2\x9c\x93", NULL};
  snc_error err = {{0}};
  CU_ASSERT_EQUAL_FATAL(snc_ckpt_write(path, in, n, meta, &err), 0);
  CU_ASSERT(count_tmp(tdir()) == 0);

  /* layout: header length is a multiple of 8 so the data buffer is aligned */
  FILE *f = fopen(path, "rb");
  unsigned char len8[8];
  CU_ASSERT_FATAL(f && fread(len8, 1, 8, f) == 8);
  fclose(f);
  uint64_t hl = 0;
  for (int i = 0; i < 8; i++) hl |= (uint64_t)len8[i] << (8 * i);
  CU_ASSERT(hl % 8 == 0);
  CU_ASSERT(file_size(path) == (long)(8 + hl + 6 * 4 + 4 * 4 + 4 + 0 + 2 * 4 + 4));

  snc_ckpt *c = snc_ckpt_read(path, &err);
  if (!c) fprintf(stderr, "\n  %s\n", err.msg);
  CU_ASSERT_FATAL(c != NULL);
  CU_ASSERT_EQUAL(snc_ckpt_count(c), n);
  for (int i = 0; i < n && i < snc_ckpt_count(c); i++) {
    const snc_ckpt_tensor *t = snc_ckpt_at(c, i);
    CU_ASSERT_STRING_EQUAL(t->name, in[i].name);
    CU_ASSERT_EQUAL(t->dtype, in[i].dtype);
    CU_ASSERT_EQUAL(t->ndim, in[i].ndim);
    int64_t elems = 1;
    for (int d = 0; d < t->ndim; d++) {
      CU_ASSERT_EQUAL(t->dims[d], in[i].dims[d]);
      elems *= t->dims[d];
    }
    CU_ASSERT(((uintptr_t)t->data & 3) == 0);
    if (elems) CU_ASSERT(memcmp(t->data, in[i].data, (size_t)elems * 4) == 0);
    CU_ASSERT(snc_ckpt_find(c, in[i].name) == t);
  }
  CU_ASSERT(snc_ckpt_at(c, -1) == NULL);
  CU_ASSERT(snc_ckpt_at(c, n) == NULL);
  CU_ASSERT(snc_ckpt_find(c, "nope") == NULL);
  CU_ASSERT_STRING_EQUAL(snc_ckpt_meta(c, "model"), "siamese.yaml");
  CU_ASSERT_STRING_EQUAL(snc_ckpt_meta(c, "note"), meta[3]);
  CU_ASSERT(snc_ckpt_meta(c, "absent") == NULL);
  CU_ASSERT_STRING_EQUAL(snc_ckpt_path(c), path);

  float got[6] = {0};
  int64_t dims[] = {2, 3};
  CU_ASSERT_EQUAL(snc_ckpt_load_f32(c, "conv1.weight", 2, dims, got, &err), 0);
  CU_ASSERT(memcmp(got, w, sizeof w) == 0);
  float sc = 0;
  CU_ASSERT_EQUAL(snc_ckpt_load_f32(c, "lr", 0, NULL, &sc, &err), 0);
  CU_ASSERT(sc == 42.5f);
  snc_ckpt_free(c);

  /* overwrite with an empty checkpoint: no tensors, no metadata */
  CU_ASSERT_EQUAL_FATAL(snc_ckpt_write(path, NULL, 0, NULL, &err), 0);
  c = snc_ckpt_read(path, &err);
  CU_ASSERT_FATAL(c != NULL);
  CU_ASSERT_EQUAL(snc_ckpt_count(c), 0);
  CU_ASSERT(snc_ckpt_meta(c, "model") == NULL);
  snc_ckpt_free(c);
  CU_ASSERT(count_tmp(tdir()) == 0);
  remove(path);
}

static void expect_write_error(const snc_ckpt_tensor *t, int n, const char *const *meta, const char *want) {
  char path[256];
  tpath(path, sizeof path, "refused.safetensors");
  snc_error err = {{0}};
  CU_ASSERT_EQUAL(snc_ckpt_write(path, t, n, meta, &err), -1);
  int ok = strncmp(err.msg, path, strlen(path)) == 0 && strstr(err.msg, want) != NULL;
  if (!ok) fprintf(stderr, "\n  expected '%s' in: %s\n", want, err.msg);
  CU_ASSERT(ok);
  CU_ASSERT(file_size(path) == -1);
}

static void test_writer_refuses(void) {
  float x[4] = {0};
  snc_ckpt_tensor dup[] = {{"a", SNC_CKPT_F32, 1, {4}, x}, {"b", SNC_CKPT_F32, 0, {0}, x},
                           {"a", SNC_CKPT_I32, 1, {1}, x}};
  expect_write_error(dup, 3, NULL, "tensor name 'a' given twice");
  snc_ckpt_tensor reserved[] = {{"__metadata__", SNC_CKPT_F32, 1, {1}, x}};
  expect_write_error(reserved, 1, NULL, "reserved");
  snc_ckpt_tensor noname[] = {{"", SNC_CKPT_F32, 1, {1}, x}};
  expect_write_error(noname, 1, NULL, "has no name");
  snc_ckpt_tensor deep[] = {{"d", SNC_CKPT_F32, 9, {1}, x}};
  expect_write_error(deep, 1, NULL, "9 dimensions");
  snc_ckpt_tensor neg[] = {{"n", SNC_CKPT_F32, 2, {2, -1}, x}};
  expect_write_error(neg, 1, NULL, "shape [2,-1]");
  snc_ckpt_tensor nodata[] = {{"z", SNC_CKPT_I32, 1, {3}, NULL}};
  expect_write_error(nodata, 1, NULL, "tensor 'z': data is NULL");
  snc_ckpt_tensor baddt[] = {{"q", (snc_ckpt_dtype)7, 1, {1}, x}};
  expect_write_error(baddt, 1, NULL, "unknown dtype 7");
  const char *odd[] = {"k", NULL};
  expect_write_error(NULL, 0, odd, "metadata key 'k' has no value");
  const char *twice[] = {"k", "1", "k", "2", NULL};
  expect_write_error(NULL, 0, twice, "metadata key 'k' given twice");
}

static void test_atomic_write(void) {
  char path[256], dirpath[256], missing[256];
  tpath(path, sizeof path, "keep.safetensors");
  static float big[16384]; /* 64 KB of data */
  float one = 1.0f;
  snc_ckpt_tensor small[] = {{"one", SNC_CKPT_F32, 0, {0}, &one}};
  snc_ckpt_tensor large[] = {{"big", SNC_CKPT_F32, 1, {16384}, big}};
  snc_error err = {{0}};
  CU_ASSERT_EQUAL_FATAL(snc_ckpt_write(path, small, 1, NULL, &err), 0);
  long old = file_size(path);

  /* fail in the middle of writing: the file size limit makes write() return EFBIG */
  struct rlimit saved, lim;
  CU_ASSERT_FATAL(getrlimit(RLIMIT_FSIZE, &saved) == 0);
  void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
  lim = saved;
  lim.rlim_cur = 4096;
  CU_ASSERT_FATAL(setrlimit(RLIMIT_FSIZE, &lim) == 0);
  int rc = snc_ckpt_write(path, large, 1, NULL, &err);
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, prev);
  CU_ASSERT_EQUAL(rc, -1);
  CU_ASSERT(strstr(err.msg, "cannot write") != NULL);
  CU_ASSERT(strncmp(err.msg, path, strlen(path)) == 0);
  CU_ASSERT(file_size(path) == old);
  CU_ASSERT(count_tmp(tdir()) == 0);
  snc_ckpt *c = snc_ckpt_read(path, &err);
  CU_ASSERT(c && snc_ckpt_count(c) == 1 && snc_ckpt_find(c, "one"));
  snc_ckpt_free(c);

  /* the path is a directory: rename fails, the directory and its contents stay, no temp file */
  tpath(dirpath, sizeof dirpath, "adir");
  CU_ASSERT_FATAL(mkdir(dirpath, 0755) == 0);
  char inner[300];
  snprintf(inner, sizeof inner, "%s/x", dirpath);
  write_bytes(inner, "x", 1);
  CU_ASSERT_EQUAL(snc_ckpt_write(dirpath, small, 1, NULL, &err), -1);
  CU_ASSERT(strstr(err.msg, "cannot rename") != NULL);
  CU_ASSERT(file_size(inner) == 1);
  CU_ASSERT(count_tmp(tdir()) == 0);

  /* the directory does not exist */
  tpath(missing, sizeof missing, "no/such/dir/ckpt.safetensors");
  CU_ASSERT_EQUAL(snc_ckpt_write(missing, small, 1, NULL, &err), -1);
  CU_ASSERT(strncmp(err.msg, missing, strlen(missing)) == 0 && strstr(err.msg, "cannot create"));
  CU_ASSERT(count_tmp(tdir()) == 0);
}

typedef struct {
  const char *json;
  size_t dlen;
  const char *want;
} corrupt_case;

static void test_corrupt_corpus(void) {
  static const corrupt_case cases[] = {
      {"{\"a\": ", 0, "header is not valid JSON"},
      {"{\"a\xff\": 1}", 0, "header is not valid UTF-8 (byte 3 of the header)"},
      {"[1, 2]", 0, "header is not a JSON object"},
      {"{} x", 0, "stray bytes after the JSON object"},
      {"{\"a\": 3}", 0, "tensor 'a': entry is not a JSON object"},
      {"{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "tensor 'a': \"dtype\" missing"},
      {"{\"h\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 4, "unsupported dtype 'F16'"},
      {"{\"a\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4, "\"shape\" missing or not an array"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2, -1], \"data_offsets\": [0, 4]}}", 4,
       "shape entry 1 is not a non-negative integer"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", 4, "shape entry 0"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [\"2\"], \"data_offsets\": [0, 4]}}", 4, "shape entry 0"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], \"data_offsets\": [0, 4]}}",
       4, "has too many elements"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", 4,
       "shape has 9 dimensions"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", 4, "two non-negative integers"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [\"0\", \"4\"]}}", 4,
       "two non-negative integers"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", 8, "two non-negative integers"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}", 8,
       "data_offsets [8, 4] end before they begin"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 8,
       "data_offsets [0, 16] lie outside the 8-byte data buffer"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8,
       "tensor 'a': data_offsets [0, 8] hold 8 bytes, shape [3] F32 needs 12"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
       " \"b\": {\"dtype\": \"I32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
       12, "tensor 'b' (data_offsets [4, 12]) overlaps tensor 'a'"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
       " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}",
       12, "gap of 4 unused bytes before tensor 'b'"},
      {"{\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8,
       "gap of 4 unused bytes before tensor 'b'"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 8, "4 trailing bytes"},
      {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
       " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
       8, "tensor 'a' appears twice"},
      {"{\"__metadata__\": {\"k\": 1}}", 0, "metadata entry 'k' is not a string"},
      {"{\"__metadata__\": [\"k\"]}", 0, "\"__metadata__\" is not a JSON object"},
      {"{\"__metadata__\": {\"k\": \"1\", \"k\": \"2\"}}", 0, "metadata key 'k' appears twice"},
      {"{\"__metadata__\": {}, \"__metadata__\": {}}", 0, "\"__metadata__\" appears twice"},
  };
  char path[256];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(path, sizeof path, "%s/corrupt_%02zu.safetensors", tdir(), i);
    write_st(path, cases[i].json, cases[i].dlen, 0);
    expect_reject(path, cases[i].want);
    remove(path);
  }

  /* file-level damage */
  tpath(path, sizeof path, "short.safetensors");
  write_bytes(path, "", 0);
  expect_reject(path, "file is 0 bytes, too short");
  write_bytes(path, "\x10\0\0\0\0", 5);
  expect_reject(path, "file is 5 bytes, too short");
  write_st(path, "{}", 0, (uint64_t)1 << 40);
  expect_reject(path, "header length 1099511627776 is absurd");
  write_st(path, "{}", 4, 1000);
  expect_reject(path, "header length 1000 exceeds the 6 bytes that follow it");
  remove(path);
  tpath(path, sizeof path, "missing.safetensors");
  expect_reject(path, "cannot open");
  expect_reject(tdir(), "not a regular file");
  /* a valid hand-made file: unpadded header, whitespace after the object, metadata null */
  tpath(path, sizeof path, "ok.safetensors");
  write_st(path, "{\"__metadata__\":null,\"x\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}  ", 4, 0);
  snc_error err = {{0}};
  snc_ckpt *c = snc_ckpt_read(path, &err);
  CU_ASSERT(c && snc_ckpt_count(c) == 1 && snc_ckpt_at(c, 0)->dtype == SNC_CKPT_I32);
  CU_ASSERT(c && ((const int32_t *)snc_ckpt_at(c, 0)->data)[0] == 0x03020100);
  snc_ckpt_free(c);
  remove(path);
}

/* Every truncation and many single-byte corruptions of a real file: rejected or read, never a crash. */
static void test_truncate_and_mutate(void) {
  char path[256], bad[256];
  tpath(path, sizeof path, "src.safetensors");
  tpath(bad, sizeof bad, "mut.safetensors");
  float w[6] = {1, 2, 3, 4, 5, 6};
  int32_t k[2] = {1, 2};
  snc_ckpt_tensor t[] = {{"w", SNC_CKPT_F32, 2, {3, 2}, w}, {"k", SNC_CKPT_I32, 1, {2}, k}};
  const char *meta[] = {"epoch", "3", NULL};
  snc_error err = {{0}};
  CU_ASSERT_EQUAL_FATAL(snc_ckpt_write(path, t, 2, meta, &err), 0);
  long n = file_size(path);
  if (n <= 0 || n > 4096) {
    CU_FAIL("checkpoint has an unexpected size");
    return;
  }
  unsigned char *buf = malloc((size_t)n);
  FILE *f = fopen(path, "rb");
  size_t got = f ? fread(buf, 1, (size_t)n, f) : 0;
  if (f) fclose(f);
  if (got != (size_t)n) {
    CU_FAIL("cannot read the checkpoint back");
    free(buf);
    return;
  }
  int rejected = 0;
  for (long len = 0; len < n; len++) {
    write_bytes(bad, buf, (size_t)len);
    snc_ckpt *c = snc_ckpt_read(bad, &err);
    rejected += c == NULL;
    snc_ckpt_free(c);
  }
  CU_ASSERT_EQUAL(rejected, n); /* every proper prefix is incomplete */
  static const unsigned char repl[] = {0, '"', '{', ']', '9', '-', ' ', 0xff};
  for (long pos = 0; pos < n; pos++)
    for (size_t r = 0; r < sizeof repl; r++) {
      unsigned char keep = buf[pos];
      buf[pos] = repl[r];
      write_bytes(bad, buf, (size_t)n);
      snc_ckpt *c = snc_ckpt_read(bad, &err);
      if (!c) CU_ASSERT(strncmp(err.msg, bad, strlen(bad)) == 0);
      snc_ckpt_free(c);
      buf[pos] = keep;
    }
  free(buf);
  remove(bad);
  remove(path);
}

static void test_load_f32_messages(void) {
  char path[256];
  tpath(path, sizeof path, "load.safetensors");
  float w[6] = {0};
  int32_t k[1] = {3};
  snc_ckpt_tensor t[] = {{"conv1.weight", SNC_CKPT_F32, 4, {2, 1, 3, 1}, w}, {"step", SNC_CKPT_I32, 0, {0}, k}};
  snc_error err = {{0}};
  CU_ASSERT_EQUAL_FATAL(snc_ckpt_write(path, t, 2, NULL, &err), 0);
  snc_ckpt *c = snc_ckpt_read(path, &err);
  CU_ASSERT_FATAL(c != NULL);
  float dst[64];
  char want[512];
  int64_t d4[] = {2, 1, 1, 3};
  CU_ASSERT_EQUAL(snc_ckpt_load_f32(c, "conv1.weight", 4, d4, dst, &err), -1);
  snprintf(want, sizeof want, "%s: tensor 'conv1.weight' has shape [2,1,3,1], expected [2,1,1,3]", path);
  CU_ASSERT_STRING_EQUAL(err.msg, want);
  int64_t d2[] = {2, 3};
  CU_ASSERT_EQUAL(snc_ckpt_load_f32(c, "conv1.weight", 2, d2, dst, &err), -1);
  snprintf(want, sizeof want, "%s: tensor 'conv1.weight' has shape [2,1,3,1], expected [2,3]", path);
  CU_ASSERT_STRING_EQUAL(err.msg, want);
  CU_ASSERT_EQUAL(snc_ckpt_load_f32(c, "step", 0, NULL, dst, &err), -1);
  snprintf(want, sizeof want, "%s: tensor 'step' is I32, expected F32", path);
  CU_ASSERT_STRING_EQUAL(err.msg, want);
  CU_ASSERT_EQUAL(snc_ckpt_load_f32(c, "fc1.bias", 1, d2, dst, &err), -1);
  snprintf(want, sizeof want, "%s: no tensor 'fc1.bias' (the file holds 2 tensors)", path);
  CU_ASSERT_STRING_EQUAL(err.msg, want);
  snc_ckpt_free(c);
  remove(path);
}

static void register_tests(void) {
  SNC_SUITE("checkpoint", {"round trip F32/I32, scalar, zero dim, metadata", test_round_trip},
            {"writer refuses bad input", test_writer_refuses},
            {"atomic write keeps the old file", test_atomic_write},
            {"corrupt files are rejected", test_corrupt_corpus},
            {"truncations and mutations never crash", test_truncate_and_mutate},
            {"load_f32 messages", test_load_f32_messages});
}

SNC_TEST_MAIN(register_tests)
