/* Helpers of the ONNX tests (test_onnx.c, test_onnx_torch.c): a temporary directory, shell commands
 * with their output in a log, .npy comparisons with a stated tolerance, and graph equality. */
#ifndef SNC_TEST_ONNX_UTIL_H
#define SNC_TEST_ONNX_UTIL_H
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runutil.h"
#include "snc/frontend.h"
#include "snc/data.h"
#include "snc/onnx.h"

#define SNC SNC_BINARY_DIR "/snc"
#define SNRUN SNC_BINARY_DIR "/snrun"

static char tmp[256];

static void make_tmp(void) {
  snprintf(tmp, sizeof tmp, "/tmp/snc_onnx_XXXXXX");
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    exit(2);
  }
}

static void remove_tmp(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp);
}

/* Runs a shell command (formatted), stdout and stderr into <tmp>/log; prints the log when the status
 * is not `expect`; returns the exit status (runutil.h). */
#define sh(expect, ...) sh_in(tmp, (expect), __VA_ARGS__)

/* The log of the last command (static buffer). */
static const char *last_log(void) {
  static char buf[8192];
  char path[512];
  snprintf(path, sizeof path, "%s/log", tmp);
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
  buf[n] = 0;
  if (f) fclose(f);
  return buf;
}

/* got against want, element by element: |x - g| <= rtol |g| + atol max|g| (see the callers for
 * why). Prints the largest difference; returns 1 when every element passes. exact: bit equality. */
__attribute__((unused)) static int npy_close(const char *got_path, const char *want_path, double rtol, double atol, int exact, const char *what) {
  snc_npy a, b;
  snc_error err = {0};
  if (snc_npy_read(got_path, &a, &err)) return printf("\n  %s\n", err.msg), 0;
  if (snc_npy_read(want_path, &b, &err)) return snc_npy_free(&a), printf("\n  %s\n", err.msg), 0;
  int ok = a.dtype == b.dtype && a.ndim == b.ndim && a.n == b.n && !memcmp(a.dims, b.dims, sizeof a.dims[0] * (size_t)a.ndim);
  double maxg = 0, maxd = 0, worst = 0;
  const float *x = a.data, *g = b.data;
  for (int64_t i = 0; ok && i < b.n; i++) maxg = fmax(maxg, fabs(g[i]));
  for (int64_t i = 0; ok && i < b.n; i++) {
    double d = fabs((double)x[i] - g[i]), tol = rtol * fabs(g[i]) + atol * maxg;
    maxd = fmax(maxd, d);
    if (exact ? x[i] != g[i] : !(d <= tol)) ok = 0, worst = d;
  }
  printf("\n  %s: %lld values, max |diff| %.3g (max |want| %.3g)%s%s", what, (long long)b.n, maxd, maxg,
         exact ? ", bit for bit" : "", ok ? "" : " FAILED");
  if (!ok && worst > 0) printf(" (difference %.3g beyond tolerance)", worst);
  snc_npy_free(&a), snc_npy_free(&b);
  return ok;
}

/* The forward nodes that compute g's results (labels and losses left out), compared by name, op and
 * shape between two graphs: the "same graph" of an export and its re-import. */
__attribute__((unused)) static int same_eval_graph(const snc_graph *a, const snc_graph *b) {
  const snc_graph *gs[2] = {a, b};
  int *keep[2];
  int cnt[2] = {0, 0};
  for (int w = 0; w < 2; w++) {
    const snc_graph *g = gs[w];
    int *res = calloc((size_t)g->nnodes + 1, sizeof *res);
    char *need = calloc((size_t)g->nnodes + 1, 1);
    keep[w] = calloc((size_t)g->nnodes + 1, sizeof *keep[w]);
    int nres = snc_graph_results(g, res, g->nnodes);
    for (int k = 0; k < nres; k++) need[res[k]] = 1;
    for (int i = g->nforward - 1; i >= 0; i--)
      if (need[i])
        for (int k = 0; k < g->nodes[i]->ninputs; k++) need[g->nodes[i]->inputs[k]] = 1;
    for (int i = 0; i < g->nforward; i++)
      if (need[i]) keep[w][cnt[w]++] = i;
    free(res), free(need);
  }
  int ok = cnt[0] == cnt[1];
  if (!ok) printf("\n  graphs differ: %d and %d nodes", cnt[0], cnt[1]);
  for (int k = 0; ok && k < cnt[0]; k++) {
    const snc_node *x = a->nodes[keep[0][k]], *y = b->nodes[keep[1][k]];
    if (strcmp(x->name, y->name) || x->op != y->op || !snc_shape_eq(&x->shape, &y->shape)) {
      printf("\n  node %d differs: %s (%s) and %s (%s)", k, x->name, snc_op_name(x->op), y->name, snc_op_name(y->op));
      ok = 0;
    }
  }
  free(keep[0]), free(keep[1]);
  return ok;
}

#endif
