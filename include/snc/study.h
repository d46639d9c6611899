/* `snrun study`: the seed study in one command. A model is trained for R rounds under every setting
 * of a grid of its switches (by default all combinations of its boolean switches); each round draws
 * fresh data and a fresh initialisation from a seed that depends on the study seed and the round
 * only, so every setting sees the same draws. The result is the seed's Table II (mean ± std of the
 * final test accuracy per setting, relative to the setting with every switch off), per-epoch curves,
 * results.csv / results.json, gnuplot figures and the best checkpoint per setting.
 *
 *   snc_study_opts o = snc_study_defaults();
 *   o.model = "models/siamese.yaml";
 *   o.rounds = 20;
 *   snc_error err = {0};
 *   int status = snc_study_run(&o, &err);        // 0, 1 (error), 2 (usage / mismatch), 130 (interrupted)
 *   if (status == 1 || status == 2) fprintf(stderr, "%s\n", err.msg);
 *
 * Rounds run in worker processes (fork): each worker compiles a setting once and reuses the
 * backend for its rounds. The parent is the only writer of the output folder's journal: one line
 * per finished round, appended with a single write and fsync, so `--resume DIR` continues after a
 * crash or kill -9 without losing or repeating a finished round. Nothing here allocates anything the
 * caller frees. See docs/study.md. */
#ifndef SNC_STUDY_H
#define SNC_STUDY_H
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "snc/error.h"
#include "snc/frontend.h"

#define SNC_STUDY_MAX_GRID 8  /* switches in the grid */
#define SNC_STUDY_MAX_SETS 64 /* fixed --set overrides */

typedef struct snc_study_opts {
  const char *model;                        /* model file; NULL with resume: the study's */
  snc_override sets[SNC_STUDY_MAX_SETS];    /* fixed overrides (--set), the same in every setting */
  int nsets;
  const char *grid[SNC_STUDY_MAX_GRID];     /* "name=v1,v2,..." (--grid); none: every boolean switch */
  int ngrid;
  int rounds;                               /* 0: 20 (or the resumed study's) */
  uint64_t seed;                            /* the study seed (with has_seed) */
  int has_seed;                             /* 0: the model's training.seed (or the resumed study's) */
  int epochs;                               /* 0: the model's training.epochs (or the resumed study's) */
  const char *data;                         /* dataset directory; NULL: the model's */
  const char *out;                          /* output folder; NULL: runs/<model>-<YYYYmmdd-HHMMSS> */
  const char *resume;                       /* continue the study in this folder */
  const char *backend;                      /* "jit" or "ref"; NULL: jit (or the resumed study's) */
  int jobs;                                 /* worker processes; 0: one per core */
  int threads;                              /* threads per worker; 0: cores / jobs */
  int quiet;                                /* only the table */
  int progress;                             /* -1: when stdout is a terminal; 0 plain lines; 1 bar */
  int plots;                                /* run gnuplot (default 1) */
  int eval_train;                           /* SNC_EVAL_TRAIN_* (snc/train.h): when a round evaluates the
                                               training set; default never (the table and the curves use
                                               the test set, evaluated every epoch); may change on resume */
  int eval_batch;                           /* rows of the evaluation build (snc/train.h, snrun train
                                               --eval-batch): 0 none, -1 automatic (the default) */
  int no_cache;                             /* 1: the workers compile without the compiled-module cache */
  int no_tune;                              /* 1: the workers ignore the tuning cache (snrun train --tune):
                                               every kernel on its default schedule */
  volatile sig_atomic_t *stop;              /* 1: finish running rounds and stop; 2: stop now */
} snc_study_opts;

snc_study_opts snc_study_defaults(void);

/* Runs (or resumes) a study. Returns the exit status: 0 done, 1 error (err says what), 2 wrong
 * usage or a resume whose parameters do not match the folder's (err says which), 130 interrupted
 * through *stop (finished rounds are kept; the message printed says how to resume). */
int snc_study_run(const snc_study_opts *o, snc_error *err);

/* `snrun study ARGS...`: parses the options (argv without "study"), installs the Ctrl-C handler and
 * runs the study. `usage` is printed for --help. Returns the exit status. */
int snc_study_main(int argc, char **argv, const char *usage);

/* Summary statistics of n values: mean, sample standard deviation (n - 1; 0 when n < 2), min, max. */
typedef struct snc_study_stat {
  int n;
  double mean, std, min, max;
} snc_study_stat;
void snc_study_stat_of(const double *x, int n, snc_study_stat *s);

/* The seed of round r (0-based) of a study with seed `seed`: independent of the setting. */
uint64_t snc_study_round_seed(uint64_t seed, int round);

#endif
