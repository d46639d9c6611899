/* The bad-input corpora of the readers other than the model file's: tests/bad_inputs/<reader>/cases
 * (format in tests/bad_inputs/README.md). Each case runs a built tool on a copy of its folder and must
 * exit with the given status, print exactly the given first line on stderr and leave its scratch
 * output folder empty (no output file, not even half written). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define CORPUS "tests/bad_inputs"
#define SCRATCH "build-bad-inputs-tmp" /* under the source tree (the working directory), ignored by git */

/* Replaces $DIR and $OUT in tmpl. */
static void expand(const char *tmpl, const char *dir, const char *out, char *buf, size_t len) {
  size_t k = 0;
  for (const char *p = tmpl; *p && k + 1 < len;) {
    if (!strncmp(p, "$DIR", 4)) k += (size_t)snprintf(buf + k, len - k, "%s", dir), p += 4;
    else if (!strncmp(p, "$OUT", 4)) k += (size_t)snprintf(buf + k, len - k, "%s", out), p += 4;
    else buf[k++] = *p++;
  }
  buf[k < len ? k : len - 1] = 0;
}

static char *trim(char *s) {
  while (*s == ' ') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\n')) s[--n] = 0;
  return s;
}

static int empty_dir(const char *path) {
  DIR *d = opendir(path);
  if (!d) return 0;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      fprintf(stderr, "\n  left behind: %s/%s\n", path, e->d_name);
      n++;
    }
  closedir(d);
  return n == 0;
}

static int run_reader(const char *reader) {
  char cases[512], copy[512], out[512], cmd[4096];
  snprintf(cases, sizeof cases, CORPUS "/%s/cases", reader);
  snprintf(copy, sizeof copy, SCRATCH "/%s", reader);
  snprintf(out, sizeof out, SCRATCH "/%s-out", reader);
  snprintf(cmd, sizeof cmd, "rm -rf %s %s && mkdir -p %s && cp -R " CORPUS "/%s %s", copy, out, out, reader, copy);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
  FILE *f = fopen(cases, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#' || line[0] == '\n') continue;
    char *bar1 = strchr(line, '|'), *bar2 = bar1 ? strchr(bar1 + 1, '|') : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(bar2);
    *bar1 = *bar2 = 0;
    int want_rc = atoi(line);
    char args[2048], want[2048], outfile[600];
    snprintf(outfile, sizeof outfile, "%s/out", out);
    expand(trim(bar1 + 1), copy, outfile, args, sizeof args);
    expand(trim(bar2 + 1), copy, outfile, want, sizeof want);
    snprintf(cmd, sizeof cmd, "%s/%s 2>&1 >/dev/null", SNC_BINARY_DIR, args);
    FILE *p = popen(cmd, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    char got[2048] = "";
    size_t k = fread(got, 1, sizeof got - 1, p);
    got[k] = 0;
    got[strcspn(got, "\n")] = 0;
    int st = pclose(p);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (rc != want_rc || strcmp(got, want))
      fprintf(stderr, "\n%s: %s\n  exit %d (expected %d)\n  got:      %s\n  expected: %s\n", reader, args, rc, want_rc, got,
              want);
    CU_ASSERT_EQUAL(rc, want_rc);
    CU_ASSERT_STRING_EQUAL(got, want);
    CU_ASSERT(empty_dir(out));
    n++;
  }
  fclose(f);
  snprintf(cmd, sizeof cmd, "rm -rf %s %s", copy, out);
  CU_ASSERT_EQUAL(system(cmd), 0);
  rmdir(SCRATCH); /* when no other reader's test is using it */
  return n;
}

static void test_bc(void) { CU_ASSERT(run_reader("bc") >= 5); }
static void test_idx(void) { CU_ASSERT(run_reader("idx") >= 3); }
static void test_ckpt(void) { CU_ASSERT(run_reader("ckpt") >= 3); }
static void test_journal(void) { CU_ASSERT(run_reader("journal") >= 3); }

static void register_tests(void) {
  SNC_SUITE("bad_inputs", {"bc modules", test_bc}, {"idx data", test_idx}, {"checkpoints", test_ckpt},
            {"study journal", test_journal});
}
SNC_TEST_MAIN(register_tests)
