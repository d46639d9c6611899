/* Helpers shared by the CUnit tests that train or run the tools: whole files, shell commands with
 * their output in a log, counted lines, results.csv without its timing columns, a short training
 * run's loss. */
#ifndef SNC_RUNUTIL_H
#define SNC_RUNUTIL_H
#include <CUnit/Basic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "snc/autodiff.h"
#include "snc/frontend.h"
#include "snc/train.h"

/* The whole file, NUL-terminated (malloc'd), its length in *len when len is not NULL; NULL when it
 * cannot be opened. */
static inline char *slurp_len(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
  fclose(f);
  if (s) s[n] = 0;
  if (len) *len = (size_t)n;
  return s;
}

static inline char *slurp(const char *path) { return slurp_len(path, NULL); }

/* Runs a shell command (formatted), its stdout and stderr into <dir>/log, and returns its exit status
 * (128 when it did not exit). When the status is not `expect` (expect < 0: any status is), prints
 * the command, its status and the first lines of the log. */
static inline int sh_in(const char *dir, int expect, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int sh_in(const char *dir, int expect, const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  CU_ASSERT_FATAL(n > 0 && n < (int)sizeof cmd - 64);
  snprintf(cmd + n, sizeof cmd - (size_t)n, " > %s/log 2>&1", dir);
  int st = system(cmd);
  int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  if (expect >= 0 && rc != expect) {
    char path[512], line[512];
    snprintf(path, sizeof path, "%s/log", dir);
    FILE *f = fopen(path, "r");
    printf("\n  $ %s -> %d (expected %d)\n", cmd, rc, expect);
    for (int k = 0; f && k < 20 && fgets(line, sizeof line, f); k++) printf("  | %s", line);
    if (f) fclose(f);
  }
  return rc;
}

static inline int count_lines(const char *text, const char *prefix) {
  int n = 0;
  size_t l = strlen(prefix);
  for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
    if (!strncmp(p, prefix, l)) n++;
  return n;
}

/* results.csv without its last two columns (seconds, step_seconds): what must not depend on timing. */
static inline char *csv_without_times(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/results.csv", dir);
  char *t = slurp(path);
  if (!t) return NULL;
  char *out = malloc(strlen(t) + 1), *o = out;
  for (char *line = t; *line;) {
    char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) : strlen(line);
    int commas = 0;
    size_t cut = len;
    for (size_t i = len; i-- > 0;)
      if (line[i] == ',' && ++commas == 2) {
        cut = i;
        break;
      }
    memcpy(o, line, cut);
    o += cut;
    *o++ = '\n';
    line += len + (nl != NULL);
  }
  *o = 0;
  free(t);
  return out;
}

/* A model from YAML text ("t.yaml" in messages), or NULL after printing the error. */
static inline snc_graph *load(const char *text) {
  snc_error err = {0};
  snc_graph *g = snc_model_load_text(text, strlen(text), "t.yaml", NULL, 0, &err);
  if (!g) fprintf(stderr, "\n%s\n", err.msg);
  return g;
}

/* The head of a one-image model for tests of the training section: append `training: ...`. */
#define MODEL_HEAD "inputs: {image: {shape: [1, 4, 4]}}\ngraph:\n  - {name: a, tanh, from: image}\n"

/* Trains g (taken and freed; 2 epochs in its training section) on the reference executor with the
 * given seed and returns the mean loss of the second epoch's steps. */
static inline double two_epoch_loss(snc_graph *g, uint64_t seed) {
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  snc_error err = {0};
  CU_ASSERT_EQUAL_FATAL(snc_autodiff(g, 0, &err), 0);
  snc_backend *be = snc_backend_new("ref", g, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(be);
  snc_train_opts o = snc_train_defaults(g);
  o.seed = seed;
  o.quiet = 1;
  snc_train_result r = {0};
  if (snc_train(g, be, &o, &r, &err)) fprintf(stderr, "\n%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(r.nepochs, 2);
  double loss = r.epoch[1].step_loss;
  snc_train_result_free(&r);
  be->free(be);
  snc_graph_free(g);
  return loss;
}

#endif
