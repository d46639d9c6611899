/* Kernel schedules chosen by measurement, per machine (runtime/backend/sched_cache.c, runtime/backend/tune.c;
 * docs/jit.md, "Schedules"). The code generator lists the valid schedules of every convolution and
 * matrix-product kernel (snc_cg_schedule in snc/codegen.h, the built-in default first); this module
 * picks one per kernel shape from a tuning cache written by a short timed search, or from an override.
 *
 *   char dir[4096];
 *   snc_sched_table *t = snc_sched_open(snc_jit_cache_default_dir(dir, sizeof dir), 1, &err);
 *   snc_sched_tune(g, t, 2, stdout, &err);          // optional: time the candidates, record, save
 *   snc_cg_options co = {.schedule = snc_sched_choose, .schedule_user = t};   // or snc_jit_backend_opts
 *   ... build and run ...
 *   snc_sched_free(t);
 *
 * The cache is one text file per machine, <dir>/sched-<16 hex digits>.txt, named by a hash of its
 * first line: "# snc schedules <SNC_CG_SCHEDULE_VERSION>: <CPU model>; <LLVM host CPU>; <ISA features>";
 * then one line per kernel shape: "<shape key>\t<schedule>\t<best ms>\t<default ms>". A file whose
 * first line differs (another CPU, feature set or schedule version) is never read. A shape the
 * cache does not hold, or whose recorded schedule is not among the candidates, gets the default.
 *
 * SNC_SCHEDULE overrides the cache: "PATTERN=SCHEDULE[;PATTERN=SCHEDULE...]", PATTERN a kernel
 * name ("conv2d.digit_a.conv2"), a shape key or "*" (every kernel that has SCHEDULE among its
 * candidates), e.g. SNC_SCHEDULE='*=tile r4 p4 v1 o1 u8'. A pattern with an unknown or invalid schedule
 * is reported once on stderr and ignored. No schedule changes results (snc/codegen.h). */
#ifndef SNC_TUNE_H
#define SNC_TUNE_H
#include <stdio.h>

#include "snc/codegen.h"
#include "snc/error.h"

typedef struct snc_sched_table snc_sched_table;

/* The table of this machine's cache in dir (NULL: no cache, overrides only). use_cache 0 (--no-tune)
   ignores the cache's entries for choosing (tuning still records and saves them). A missing or
   stale file is an empty table; NULL only when out of memory. Freed with snc_sched_free. */
snc_sched_table *snc_sched_open(const char *dir, int use_cache, snc_error *err);
void snc_sched_free(snc_sched_table *t);
/* The chooser for snc_cg_options.schedule (user = the table). */
int snc_sched_choose(void *user, const char *name, const char *shape, const snc_cg_schedule *cands, int n);
/* Kernel shapes chosen for so far (not counting tuning builds): from the cache, from SNC_SCHEDULE, all. */
void snc_sched_counts(const snc_sched_table *t, int *from_cache, int *from_override, int *scheduled);
/* Records schedule s for shape (ms: its time, ms_default: the default's), replacing an older entry. */
int snc_sched_record(snc_sched_table *t, const char *shape, const snc_cg_schedule *s, double ms, double ms_default);
/* Writes the table to its file atomically (creating dir); 0, or -1 with err. No-op without a dir. */
int snc_sched_save(snc_sched_table *t, snc_error *err);
const char *snc_sched_path(const snc_sched_table *t); /* "" without a dir */

/* The search (runtime/backend/tune.c): builds g's training step once per candidate index (every
 * kernel takes its k-th candidate, or its default when it has fewer), runs all of them in turns
 * (rounds x a few steps on zero inputs, per-kernel time from the profiler), keeps per shape the
 * fastest when it beats the default by 3% or more, records every shape in t and saves t. threads as
 * the training run's. log (may be NULL) gets one line per shape. 0, or -1 with err. */
int snc_sched_tune(const snc_graph *g, snc_sched_table *t, int threads, FILE *log, snc_error *err);

#endif
