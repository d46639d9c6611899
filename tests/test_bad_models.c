/* The bad-model corpus: every tests/bad_models/NAME.yaml must be refused with exactly the message on
 * its first line (`# expect: ...`, $FILE standing for the path), both through the library and
 * through `snc check`, which must exit 1. A `# set: k=v` line gives a --set override. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "snc/frontend.h"
#include "testutil.h"

#define CORPUS "tests/bad_models"

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int read_header(const char *path, char *expect, size_t elen, char *set, size_t slen) {
  FILE *f = fopen(path, "r");
  char line[1024];
  expect[0] = set[0] = 0;
  if (!f) return -1;
  while (fgets(line, sizeof line, f) && line[0] == '#') {
    line[strcspn(line, "\n")] = 0;
    if (!strncmp(line, "# expect: ", 10)) snprintf(expect, elen, "%s", line + 10);
    if (!strncmp(line, "# set: ", 7)) snprintf(set, slen, "%.200s", line + 7);
  }
  fclose(f);
  return expect[0] ? 0 : -1;
}

/* Replaces every $FILE in tmpl by path. */
static void expand(const char *tmpl, const char *path, char *out, size_t len) {
  size_t k = 0;
  for (const char *p = tmpl; *p && k + 1 < len;) {
    if (!strncmp(p, "$FILE", 5)) {
      k += (size_t)snprintf(out + k, len - k, "%s", path);
      p += 5;
    } else {
      out[k++] = *p++;
    }
  }
  out[k < len ? k : len - 1] = 0;
}

static void test_corpus(void) {
  setenv("SNC_MEM_LIMIT", "4G", 1); /* the memory-limit cases (79, 80) give the same message on every machine */
  DIR *d = opendir(CORPUS);
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  char *names[256];
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) && n < 256;)
    if (strstr(e->d_name, ".yaml")) names[n++] = strdup(e->d_name);
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, cmp);
  CU_ASSERT(n >= 40);
  for (int i = 0; i < n; i++) {
    char path[512], expect[1024], want[1200], set[256], cmd[1400];
    snprintf(path, sizeof path, CORPUS "/%s", names[i]);
    CU_ASSERT_EQUAL_FATAL(read_header(path, expect, sizeof expect, set, sizeof set), 0);
    expand(expect, path, want, sizeof want);
    snc_override ov;
    snc_error err = {0}, perr = {0};
    char setbuf[256];
    snprintf(setbuf, sizeof setbuf, "%s", set);
    int nsets = set[0] ? 1 : 0;
    if (nsets) CU_ASSERT_EQUAL(snc_override_parse(setbuf, &ov, &perr), 0);
    snc_graph *g = snc_model_load(path, &ov, nsets, &err);
    CU_ASSERT_PTR_NULL(g);
    if (g) {
      fprintf(stderr, "\n%s: accepted, expected: %s\n", path, want);
      snc_graph_free(g);
      continue;
    }
    if (strcmp(err.msg, want) != 0) fprintf(stderr, "\n%s:\n  got:      %s\n  expected: %s\n", path, err.msg, want);
    CU_ASSERT_STRING_EQUAL(err.msg, want);

    /* the command-line tool: same message on stderr, exit status 1 */
    snprintf(cmd, sizeof cmd, "%s/snc check -q %s %s%s 2>&1 >/dev/null", SNC_BINARY_DIR, path, set[0] ? "--set " : "", set);
    FILE *p = popen(cmd, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    char out[1400] = "";
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = 0;
    out[strcspn(out, "\n")] = 0;
    int status = pclose(p);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    CU_ASSERT_STRING_EQUAL(out, want);
  }
  for (int i = 0; i < n; i++) free(names[i]);
}

static void register_tests(void) { SNC_SUITE("bad_models", {"corpus", test_corpus}); }
SNC_TEST_MAIN(register_tests)
