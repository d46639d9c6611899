/* Fuzz regressions: every file of tests/fuzz/regressions/<harness>/ (inputs that once crashed, hung
 * or leaked under tools/fuzz.sh, kept after the fix) and of the seed corpus tests/fuzz/corpus/<harness>/
 * goes through the harness's own entry point (tests/fuzz/fuzz_*.c), which must return a clean
 * refusal (-1, with a message) or success (0). Run under the sanitizer build too (build-asan). */
#ifndef _GNU_SOURCE /* memfd_create in fuzz/fuzz_file.c (LLVM's flags define it already) */
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_ckpt.c"
#include "fuzz/fuzz_file.c"
#include "fuzz/fuzz_idx.c"
#include "fuzz/fuzz_journal.c"
#include "fuzz/fuzz_npy.c"
#include "fuzz/fuzz_onnx.c"
#include "fuzz/fuzz_yaml.c"
#include "testutil.h"

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Feeds every regular file of dir through fn; returns how many there were. */
static int replay(const char *dir, int (*fn)(const uint8_t *, size_t)) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  char *names[1024];
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) && n < 1024;)
    if (e->d_name[0] != '.') names[n++] = strdup(e->d_name);
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, cmp);
  for (int i = 0; i < n; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    uint8_t *buf = malloc((size_t)len + 1);
    CU_ASSERT_FATAL(buf && fread(buf, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    int rc = fn(buf, (size_t)len);
    if (rc != 0 && rc != -1) fprintf(stderr, "\n%s: returned %d\n", path, rc);
    CU_ASSERT(rc == 0 || rc == -1);
    free(buf);
    free(names[i]);
  }
  return n;
}

static void run(const char *harness, int (*fn)(const uint8_t *, size_t)) {
  char dir[256];
  snprintf(dir, sizeof dir, "tests/fuzz/regressions/%s", harness);
  replay(dir, fn);
  snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", harness);
  CU_ASSERT(replay(dir, fn) > 0); /* the seeds are committed */
}

static void test_yaml(void) {
  setenv("SNC_MEM_LIMIT", "1G", 1); /* as under the fuzzer */
  run("yaml", snc_fuzz_yaml);
  unsetenv("SNC_MEM_LIMIT");
}
static void test_idx(void) { run("idx", snc_fuzz_idx); }
/* the whole file through the harness (returns its status) */
static int feed(const char *path, int (*fn)(const uint8_t *, size_t)) {
  FILE *f = fopen(path, "rb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  static uint8_t buf[1 << 16];
  size_t len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  return fn(buf, len);
}
static void test_journal(void) {
  run("journal", snc_fuzz_journal);
  /* a real study's journal (2 settings, 1 output) loads, torn tail and all; a damaged middle line does not */
  CU_ASSERT_EQUAL(feed("tests/fuzz/corpus/journal/study_2x2.journal", snc_fuzz_journal), 0);
  CU_ASSERT_EQUAL(feed("tests/fuzz/corpus/journal/torn_last_line.journal", snc_fuzz_journal), 0);
  CU_ASSERT_EQUAL(feed("tests/fuzz/corpus/journal/damaged_middle.journal", snc_fuzz_journal), -1);
}
static void test_ckpt(void) {
  run("ckpt", snc_fuzz_ckpt);
  /* the committed checkpoint seed is a real one of the harness's model: it must load */
  FILE *f = fopen("tests/fuzz/corpus/ckpt/tiny.safetensors", "rb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  uint8_t buf[4096];
  size_t len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  CU_ASSERT_EQUAL(snc_fuzz_ckpt(buf, len), 0);
  be->free(be); /* the harness's model, kept between inputs */
  snc_graph_free(g);
  be = NULL, g = NULL;
}

static void test_onnx(void) {
  run("onnx", snc_fuzz_onnx);
  /* the seeds are real models: each imports and loads */
  CU_ASSERT_EQUAL(feed("tests/fuzz/corpus/onnx/conv.onnx", snc_fuzz_onnx), 0);
  CU_ASSERT_EQUAL(feed("tests/fuzz/corpus/onnx/zoo.onnx", snc_fuzz_onnx), 0);
  CU_ASSERT_EQUAL(feed("tests/fuzz/corpus/onnx/shape_path.onnx", snc_fuzz_onnx), 0);
}

static void test_npy(void) {
  run("npy", snc_fuzz_npy);
  CU_ASSERT_EQUAL(feed("tests/fuzz/corpus/npy/f32_4d.npy", snc_fuzz_npy), 0);
  CU_ASSERT_EQUAL(feed("tests/fuzz/corpus/npy/i32_vec.npy", snc_fuzz_npy), 0);
}

static void register_tests(void) {
  SNC_SUITE("fuzz_regressions", {"yaml", test_yaml}, {"idx", test_idx}, {"ckpt", test_ckpt},
            {"journal", test_journal}, {"onnx", test_onnx}, {"npy", test_npy});
}
SNC_TEST_MAIN(register_tests)
