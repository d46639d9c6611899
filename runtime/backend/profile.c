/* Per-kernel time of generated code built with snc_cg_options.profile: thread 0 calls
 * snc_profile_mark(region, k) before kernel k and after the last barrier, so kernel k's time is
 * from mark k to mark k+1 (its work and the barrier wait of the slowest thread). SNC_PROFILE_TOP=N
 * prints N rows per region instead of the caller's count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snc/backend.h"

#define MAXK 4096
static double acc[2][MAXK], last[2];
static long calls[2];

/* SNC_PROFILE_CLOCK=thread measures thread 0's CPU time instead of wall time: with --threads 1 on
 * a machine shared with other processes, the time slices they take are then left out */
static int clk = -1;
void snc_profile_set_thread_clock(int on) { clk = on ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC; }

static double now(void) {
  if (clk < 0) {
    const char *e = getenv("SNC_PROFILE_CLOCK");
    clk = e && !strcmp(e, "thread") ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC;
  }
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void snc_profile_mark(int32_t region, int32_t k) {
  double t = now();
  if (region < 0 || region > 1 || k < 0 || k > MAXK) return;
  if (k > 0) acc[region][k - 1] += t - last[region];
  else calls[region]++;
  last[region] = t;
}

void snc_profile_reset(void) {
  memset(acc, 0, sizeof acc);
  memset(calls, 0, sizeof calls);
}

long snc_profile_times(int region, double *t, int n) {
  if (region < 0 || region > 1) return 0;
  for (int k = 0; k < n; k++) t[k] = k < MAXK ? acc[region][k] : 0;
  return calls[region];
}

typedef struct row {
  const char *name;
  double t;
} row;

static int by_time(const void *a, const void *b) {
  double x = ((const row *)a)->t, y = ((const row *)b)->t;
  return x < y ? 1 : x > y ? -1 : 0;
}

void snc_profile_print(const snc_program *p, FILE *out, int top) {
  for (int r = 0; r < 2; r++) snc_profile_print_region(p, r, out, top);
}

void snc_profile_print_region(const snc_program *p, int r, FILE *out, int top) {
  static const char *const region[2] = {"training step", "evaluation"};
  const char *e = getenv("SNC_PROFILE_TOP"); /* how many rows (default: the caller's) */
  if (e && atoi(e) > 0) top = atoi(e);
  if (r < 0 || r > 1) return;
  int n = p->ncalls[r] < MAXK ? p->ncalls[r] : MAXK;
  if (!calls[r] || !n) return;
  row *rows = malloc((size_t)n * sizeof *rows);
  if (!rows) return;
  double total = 0;
  for (int k = 0; k < n; k++) {
    rows[k] = (row){p->call_names[r][k], acc[r][k]};
    total += acc[r][k];
  }
  qsort(rows, (size_t)n, sizeof *rows, by_time);
  fprintf(out, "profile of the %s: %ld calls, %.3f ms per call, %d kernels, batch %d\n", region[r], calls[r],
          1e3 * total / (double)calls[r], n, p->g->batch);
  for (int k = 0; k < n && k < top; k++)
    fprintf(out, "  %8.3f ms %5.1f%%  %s\n", 1e3 * rows[k].t / (double)calls[r], 100 * rows[k].t / total, rows[k].name);
  free(rows);
}
