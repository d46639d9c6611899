/* The schedule search (include/snc/backend.h): one build of the program per candidate index, all
 * run in turns so that a change of the machine's speed (other processes, clock) hits every candidate
 * alike, per-kernel times from the profiler, the median round per candidate. Both regions count: the
 * training step and the evaluation forward (whose fused kernels, such as a convolution that pools,
 * have shapes of their own), so a forward-only build (snrun's evaluation build) is tuned too. */
#include <stdlib.h>
#include <string.h>

#include "snc/backend.h"

void snc_sched_set_trial(snc_sched_table *t, int trial); /* sched_cache.c */
int snc_sched_max_candidates(const snc_sched_table *t);

#define MAX_TRIALS 16
#define ROUNDS 7 /* the first is a warm-up */
#define STEPS 2  /* per round and candidate */

/* the schedule call sites of a shape have in program p (any region), from the kernel's name; 0 or -1 */
static int schedule_of(const snc_program *p, const char *shape, snc_cg_schedule *s) {
  for (int r = 0; r < 2; r++)
    for (int c = 0; c < p->ncalls[r]; c++)
      if (p->call_shapes[r][c] && !strcmp(p->call_shapes[r][c], shape)) {
        const char *b = strrchr(p->call_names[r][c], '[');
        return b && snc_cg_schedule_parse(b + 1, s) == 0 ? 0 : -1;
      }
  return -1;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int snc_sched_tune(const snc_graph *g, snc_sched_table *t, int no_eval, FILE *log, snc_error *err) {
  const int threads = snc_sched_threads(t);
  snc_backend *be[MAX_TRIALS] = {0};
  const snc_program *pr[MAX_TRIALS] = {0};
  int ntrials = 0, rc = -1, nshapes = 0, ncalls = 0;
  char **shapes = NULL;
  double *times = NULL, *calls = NULL; /* times[(trial * nshapes + shape) * ROUNDS + round] */
  const int training = g->nnodes > g->nforward; /* region 0 (the step) runs only with a training step */
  const int regions = training && no_eval ? 1 : 2; /* region 1 (the evaluation) as the run builds it */
  for (int k = 0; k < MAX_TRIALS; k++) { /* trial k: every kernel takes its k-th candidate */
    snc_sched_set_trial(t, k);
    snc_cg_options co = {.profile = 1, .no_eval = no_eval, .schedule = snc_sched_choose, .schedule_user = t};
    snc_program *p = snc_program_build(g, &co, err);
    if (!p) goto done;
    snc_jit_backend_opts jo = {.threads = threads, .profile = 1};
    if (!(be[k] = snc_backend_jit_from_program(p, &jo, err))) goto done; /* p taken */
    pr[k] = snc_backend_jit_program(be[k]);
    be[k]->init_params(be[k], 1);
    ntrials = k + 1;
    if (ntrials >= snc_sched_max_candidates(t)) break;
  }
  snc_sched_set_trial(t, -1);
  for (int r = 0; r < 2; r++)
    for (int k = 0; k < ntrials; k++)
      if (pr[k]->ncalls[r] > ncalls) ncalls = pr[k]->ncalls[r];
  shapes = calloc((size_t)2 * ncalls + 1, sizeof *shapes);
  calls = calloc((size_t)ncalls + 1, sizeof *calls);
  if (!shapes || !calls) goto oom;
  for (int r = !training; r < regions; r++) /* distinct shapes, in call order */
    for (int k = 0; k < pr[0]->ncalls[r]; k++) {
      const char *s = pr[0]->call_shapes[r][k];
      int seen = !s;
      for (int i = 0; i < nshapes && !seen; i++) seen = !strcmp(shapes[i], s);
      if (!seen) shapes[nshapes++] = (char *)s;
    }
  if (!nshapes) {
    rc = 0;
    goto done;
  }
  times = calloc((size_t)ntrials * nshapes * ROUNDS, sizeof *times);
  if (!times) goto oom;
  /* thread 0's CPU time: the slices other processes take are left out; with 2 threads it still
     counts thread 0's wait for the other at the barriers (spinning), i.e. the imbalance */
  snc_profile_set_thread_clock(1);
  snc_kctx step = {.nb = g->batch, .seed = 1, .step = 1, .training = 1, .lr_scale = 1};
  snc_kctx eval = {.nb = g->batch, .seed = 1, .step = 1, .training = 0, .lr_scale = 1};
  for (int r = 0; r < ROUNDS; r++)
    for (int k = 0; k < ntrials; k++) {
      snc_profile_reset();
      for (int s = 0; s < STEPS; s++, step.step++) {
        if (training) be[k]->run(be[k], SNC_RUN_STEP, &step);
        if (regions == 2) be[k]->run(be[k], SNC_RUN_FORWARD, &eval);
      }
      for (int reg = !training; reg < regions; reg++) { /* a shape's time: its calls in both regions, per run */
        long n = snc_profile_times(reg, calls, ncalls);
        for (int c = 0; c < pr[k]->ncalls[reg] && c < ncalls; c++) {
          const char *s = pr[k]->call_shapes[reg][c];
          for (int i = 0; i < nshapes && s; i++)
            if (!strcmp(shapes[i], s)) times[((size_t)k * nshapes + i) * ROUNDS + r] += 1e3 * calls[c] / (double)(n ? n : 1);
        }
      }
    }
  const char *e = getenv("SNC_PROFILE_CLOCK");
  snc_profile_set_thread_clock(e && !strcmp(e, "thread"));
  if (log) fprintf(log, "tuning %d kernel shapes, %d candidates each at most (%d threads):\n", nshapes, ntrials, threads);
  for (int i = 0; i < nshapes; i++) {
    double med[MAX_TRIALS];
    int best = 0;
    snc_cg_schedule sk[MAX_TRIALS];
    for (int k = 0; k < ntrials; k++) {
      double *v = &times[((size_t)k * nshapes + i) * ROUNDS + 1]; /* round 0: warm-up */
      qsort(v, ROUNDS - 1, sizeof *v, cmp_double);
      med[k] = v[(ROUNDS - 1) / 2];
      if (schedule_of(pr[k], shapes[i], &sk[k]) != 0) goto bad; /* the schedule trial k gave this shape */
    }
    /* the default, measured in every trial where the kernel had fewer candidates, at its best; a
       candidate replaces it only when 5% faster (the spread of one schedule across trials) */
    double md = med[0];
    for (int k = 1; k < ntrials; k++)
      if (snc_cg_schedule_equal(&sk[k], &sk[0]) && med[k] < md) md = med[k];
    med[0] = md;
    for (int k = 1; k < ntrials; k++)
      if (!snc_cg_schedule_equal(&sk[k], &sk[0]) && med[k] < 0.95 * md && med[k] < med[best]) best = k;
    if (snc_sched_record(t, shapes[i], &sk[best], med[best], med[0]) != 0) goto oom;
    if (log) {
      char a[64], d[64];
      snc_cg_schedule_format(&sk[best], a, sizeof a);
      snc_cg_schedule_format(&sk[0], d, sizeof d);
      fprintf(log, "  %-60s %-18s %8.4f ms  (default %s %.4f ms)\n", shapes[i], a, med[best], d, med[0]);
    }
  }
  rc = snc_sched_save(t, err);
  if (rc == 0 && log && snc_sched_path(t)[0]) fprintf(log, "schedules saved to %s\n", snc_sched_path(t));
  goto done;
bad:
  snc_errorf(err, "%s: tuning: a kernel's schedule is missing from its name", g->file);
  goto done;
oom:
  snc_errorf(err, "%s: out of memory while tuning", g->file);
done:
  snc_sched_set_trial(t, -1);
  snc_profile_reset(); /* the run that follows profiles its own steps only */
  for (int k = 0; k < ntrials; k++) be[k]->free(be[k]);
  free(shapes);
  free(calls);
  free(times);
  return rc;
}
