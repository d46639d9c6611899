/* The readers' limits (docs/robustness.md, "Limits") on inputs too large to commit to the corpora:
 * each is generated here, refused by the library and by the command-line tool with the limit named
 * at its place, a non-zero exit and no output file. (tests/bad_models holds the small cases.) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snc/frontend.h"
#include "testutil.h"

#define TMP "build-limits-tmp" /* under the source tree, the tests' working directory */

/* Runs cmd (stderr captured); *first gets the first line of what it printed. Returns the exit status. */
static int run(const char *cmd, char *first, size_t len) {
  char full[2048];
  snprintf(full, sizeof full, "%s 2>&1 >/dev/null", cmd);
  FILE *p = popen(full, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  size_t got = fread(first, 1, len - 1, p);
  first[got] = 0;
  first[strcspn(first, "\n")] = 0;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *path, const char *head, const char *unit, long times, const char *tail) {
  FILE *f = fopen(path, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(head, f);
  for (long i = 0; i < times; i++) fputs(unit, f);
  fputs(tail, f);
  CU_ASSERT_EQUAL(fclose(f), 0);
}

/* The model is refused with `want` ($FILE: the path) by snc_model_load, `snc check` (exit 1) and
 * `snc compile -o` (exit 1, no object file written). */
static void refused(const char *path, const char *want_tail) {
  char want[512], got[1024], cmd[1024];
  snprintf(want, sizeof want, "%s%s", path, want_tail);
  snc_error err = {0};
  snc_graph *g = snc_model_load(path, NULL, 0, &err);
  CU_ASSERT_PTR_NULL(g);
  snc_graph_free(g);
  if (strcmp(err.msg, want)) fprintf(stderr, "\n  got:      %s\n  expected: %s\n", err.msg, want);
  CU_ASSERT_STRING_EQUAL(err.msg, want);
  snprintf(cmd, sizeof cmd, "%s/snc check -q %s", SNC_BINARY_DIR, path);
  CU_ASSERT_EQUAL(run(cmd, got, sizeof got), 1);
  CU_ASSERT_STRING_EQUAL(got, want);
  unlink(TMP "/out.o");
  snprintf(cmd, sizeof cmd, "%s/snc compile %s -o " TMP "/out.o", SNC_BINARY_DIR, path);
  CU_ASSERT_EQUAL(run(cmd, got, sizeof got), 1);
  CU_ASSERT_STRING_EQUAL(got, want);
  CU_ASSERT_EQUAL(access(TMP "/out.o", F_OK), -1);
}

static const char *const tiny = "model: t\ninputs:\n  x: {shape: [4]}\ngraph:\n  - {name: a, tanh, from: x}\n";

static void test_yaml_size(void) {
  mkdir(TMP, 0755);
  /* a valid model (71 bytes, 5 lines), then comment lines of 64 bytes past 16 MiB: refused at byte 2^24 */
  write_file(TMP "/big.yaml", tiny, "#23456789012345678901234567890123456789012345678901234567890123\n", 262144, "#\n");
  refused(TMP "/big.yaml", ":262148:58: the file is larger than 16 MiB, the limit of a model file");
  /* the same model with exactly 16 MiB is read */
  FILE *f = fopen(TMP "/big.yaml", "r+b");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_EQUAL(ftruncate(fileno(f), 16 << 20), 0);
  fclose(f);
  snc_error err = {0};
  snc_graph *g = snc_model_load(TMP "/big.yaml", NULL, 0, &err);
  CU_ASSERT_PTR_NOT_NULL(g);
  snc_graph_free(g);
  unlink(TMP "/big.yaml");
}

static void test_yaml_nodes(void) {
  mkdir(TMP, 0755);
  /* 500,000 document nodes are the limit; `doc` with 500,000 list items makes 500,005 */
  write_file(TMP "/nodes.yaml", "doc: [", "1,", 500000, "1]\n");
  refused(TMP "/nodes.yaml", ":1:1000001: more than 500000 YAML nodes (values, lists, mappings)");
  unlink(TMP "/nodes.yaml");
}

static void test_yaml_layers(void) {
  mkdir(TMP, 0755);
  /* 20,000 layers: linear name lookups took 8 s; now read in well under the limit of 100,000 nodes */
  write_file(TMP "/layers.yaml", tiny, "  - tanh\n", 20000, "");
  snc_error err = {0};
  snc_graph *g = snc_model_load(TMP "/layers.yaml", NULL, 0, &err);
  CU_ASSERT_PTR_NOT_NULL(g);
  if (g) CU_ASSERT_EQUAL(g->nnodes, 20002);
  snc_graph_free(g);
  unlink(TMP "/layers.yaml");
}

/* 25,000 networks called once each: looking each up by a scan took 7 s; now a hash (a few tenths) */
static void test_yaml_networks(void) {
  mkdir(TMP, 0755);
  FILE *f = fopen(TMP "/nets.yaml", "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs("model: nets\ninputs:\n  x: {shape: [4]}\nnetworks:\n", f);
  for (int i = 0; i < 25000; i++) fprintf(f, "  n%d: {layers: [tanh]}\n", i);
  fputs("graph:\n  - {name: a, tanh, from: x}\n", f);
  for (int i = 0; i < 25000; i++) fprintf(f, "  - {name: c%d, call: n%d}\n", i, i);
  CU_ASSERT_EQUAL(fclose(f), 0);
  snc_error err = {0};
  snc_graph *g = snc_model_load(TMP "/nets.yaml", NULL, 0, &err);
  CU_ASSERT_PTR_NOT_NULL(g);
  if (g) {
    CU_ASSERT_EQUAL(g->nnodes, 25002);
    CU_ASSERT(snc_graph_find(g, "c24999.tanh_1") == 25001);
  }
  snc_graph_free(g);
  unlink(TMP "/nets.yaml");
}

/* A safetensors header of 2 MB with a million JSON values: refused by the scan before cJSON parses it. */
static void test_ckpt_values(void) {
  mkdir(TMP, 0755);
  const long n = 1000000;
  uint64_t hlen = 6 + 2 * (uint64_t)n + 2; /* {"a":[ 0,0,...,0 ]} */
  FILE *f = fopen(TMP "/values.safetensors", "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  for (int i = 0; i < 8; i++) fputc((int)(hlen >> (8 * i)) & 0xff, f);
  fputs("{\"a\":[", f);
  for (long i = 0; i < n; i++) fputs("0,", f);
  fputs("0]}", f);
  CU_ASSERT_EQUAL(fclose(f), 0);
  char got[1024], cmd[1024];
  snprintf(cmd, sizeof cmd, "%s/snrun eval models/mlp.yaml --checkpoint " TMP "/values.safetensors", SNC_BINARY_DIR);
  CU_ASSERT_EQUAL(run(cmd, got, sizeof got), 1);
  CU_ASSERT_STRING_EQUAL(got, TMP "/values.safetensors: header has more than 1000000 JSON values (byte 2000003 of the header)");
  unlink(TMP "/values.safetensors");
}

/* A journal past 256 MiB (a sparse file): refused by its size before it is read. */
static void test_journal_size(void) {
  mkdir(TMP, 0755);
  mkdir(TMP "/study", 0755);
  FILE *f = fopen(TMP "/study/journal", "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs("snc-study 1\n", f);
  CU_ASSERT_EQUAL(ftruncate(fileno(f), (off_t)257 << 20), 0);
  fclose(f);
  char got[1024], cmd[1024];
  snprintf(cmd, sizeof cmd, "%s/snrun study --resume " TMP "/study", SNC_BINARY_DIR);
  CU_ASSERT_EQUAL(run(cmd, got, sizeof got), 1);
  CU_ASSERT_STRING_EQUAL(got, "snrun study: " TMP "/study/journal: larger than 256 MiB, the limit of a journal");
  unlink(TMP "/study/journal");
  rmdir(TMP "/study");
  rmdir(TMP); /* the last test */
}

static void register_tests(void) {
  SNC_SUITE("limits", {"yaml size", test_yaml_size}, {"yaml nodes", test_yaml_nodes}, {"yaml layers", test_yaml_layers},
            {"yaml networks", test_yaml_networks},
            {"checkpoint header values", test_ckpt_values}, {"journal size", test_journal_size});
}
SNC_TEST_MAIN(register_tests)
