/* Backends: what executes a graph, the one header of runtime/backend/. One interface (snc_backend),
 * two implementations: the reference executor, plain C kernels from the op table, and the generated
 * code under the JIT; plus modules read back from bitcode and kernel profiles.
 *
 *   snc_backend *be = snc_backend_new("jit", g, &err);   // or "ref"; g must outlive be
 *   memcpy(be->buf(be, input_node), batch, bytes);
 *   be->init_params(be, seed);
 *   be->run(be, SNC_RUN_STEP, &ctx);                     // forward, backward, updates
 *   be->free(be);                                        // frees its buffers and code, not g
 *
 * The training loop (snc/train.h) and the study drive backends; nothing here knows of them. Each
 * section below opens with its own usage.
 *
 * Kernel schedules chosen per machine are its last section. */
#ifndef SNC_BACKEND_H
#define SNC_BACKEND_H
#include <stdint.h>
#include <stdio.h>

#include "snc/codegen.h"
#include "snc/error.h"
#include "snc/ir.h"
#include "snc/jit.h"
#include "snc/kernel.h"
#include "snc/rng.h" /* snc_name_hash */

/* ---- the reference executor (runtime/backend/exec.c) ----------------------------------------- */
/* The reference executor: runs a graph node by node with the plain-C kernels of the op table.
 * It is the oracle every test of generated code compares against; it is written for clarity, with
 * one buffer per node, not for speed.
 *
 *   snc_exec *ex = snc_exec_new(g, &err);          // g: after snc_autodiff to train, or forward only
 *   snc_exec_init_params(ex, seed);                 // parameters from their init specs, state zeroed
 *   memcpy(snc_exec_buf(ex, input_id), batch, bytes);
 *   snc_kctx ctx = {.nb = 100, .seed = 1, .step = 1, .training = 1, .lr_scale = 1};
 *   snc_exec_run(ex, SNC_RUN_STEP, &ctx);           // forward, backward, optimizer updates
 *   float loss = *(float *)snc_exec_buf(ex, g->loss);
 *   snc_exec_free(ex);                              // frees the buffers; g stays the caller's
 *
 * The executor keeps a pointer to g, which must outlive it. */

typedef struct snc_exec snc_exec;

typedef enum {
  SNC_RUN_FORWARD, /* nodes [0, g->nforward): evaluation (ctx->training 0) or a training forward */
  SNC_RUN_STEP,    /* every node: forward, backward and updates */
  SNC_RUN_GRAD,    /* the step up to its updates (snc_graph_first_update): forward and backward */
  SNC_RUN_APPLY,   /* the updates alone, from the gradients in place (data-parallel training) */
} snc_run_kind;

snc_exec *snc_exec_new(const snc_graph *g, snc_error *err);
void snc_exec_free(snc_exec *ex);
void *snc_exec_buf(snc_exec *ex, int node);
/* Draws every parameter from its init spec (each from its own stream derived from seed and the
 * parameter's name, so sharing and graph order do not change the draws); zeroes optimizer state;
 * constants hold their values. */
void snc_exec_init_params(snc_exec *ex, uint64_t seed);
void snc_exec_run(snc_exec *ex, snc_run_kind kind, const snc_kctx *ctx);
/* Runs one node (tests use it to check single kernels). */
void snc_exec_node(snc_exec *ex, int node, const snc_kctx *ctx);

/* Fills n floats from an init spec with the given stream (PyTorch's distributions, snc's RNG). */
void snc_init_fill(float *dst, int64_t n, snc_init init, uint64_t seed);

/* ---- the interface and the factory (runtime/backend/backend.c) ------------------------------- */

/* A backend holds one buffer per node the runtime reads or writes (inputs, parameters and state,
 * losses, outputs and their targets) and runs the forward graph or the whole training step. */
typedef struct snc_backend snc_backend;
struct snc_backend {
  const char *name;                                        /* "ref" */
  void *(*buf)(snc_backend *b, int node);                  /* the node's buffer, g->batch rows if batched */
  void (*init_params)(snc_backend *b, uint64_t seed);      /* parameters from their init specs, state zeroed */
  void (*run)(snc_backend *b, snc_run_kind kind, const snc_kctx *ctx);
  void (*free)(snc_backend *b);                            /* frees b and everything it owns, not the graph */
};

/* The reference executor as a backend. g must outlive it. */
snc_backend *snc_backend_ref_new(const snc_graph *g, snc_error *err);
/* A backend by name ("ref"); an unknown name is an error listing the known ones. */
snc_backend *snc_backend_new(const char *name, const snc_graph *g, snc_error *err);

/* ---- generated code under the JIT (runtime/backend/backend_jit.c) ---------------------------- */
/* The JIT as a training backend (runtime/backend_jit.c): the graph compiled by the code generator
 * and run through ORC; the same interface as the reference executor (include/snc/backend.h).
 *
 *   snc_jit_backend_opts o = {.threads = 2};
 *   snc_backend *be = snc_backend_jit_new(g, &o, &err);   // g after snc_autodiff; g must outlive be
 *   ... snc_train(g, be, &opts, &result, &err) ...
 *   be->free(be);                                         // frees the code, the arena and staging
 */

typedef struct snc_jit_backend_opts {
  int threads;      /* OpenMP threads per step; 0: the runtime's default (OMP_NUM_THREADS) */
  FILE *dump_graph; /* kernels and memory plan */
  FILE *dump_llvm;  /* LLVM IR before and after optimisation */
  FILE *dump_asm;   /* host assembly */
  int profile;      /* time every kernel (the profiles below) */
  int split_step;   /* also SNC_RUN_GRAD and SNC_RUN_APPLY (data-parallel training) */
  int no_eval;      /* training graphs: no SNC_RUN_FORWARD (the evaluation has a build of its own) */
  /* kernel schedules (snc_cg_options.schedule; e.g. snc_sched_choose below); NULL: defaults */
  int (*schedule)(void *user, const char *name, const char *shape, const snc_cg_schedule *cands, int n);
  void *schedule_user;
  const char *cache_dir; /* the compiled-module cache (snc/jit.h, its cache section; snc_jit_cache_default_dir); NULL: none */
} snc_jit_backend_opts;

snc_backend *snc_backend_jit_new(const snc_graph *g, const snc_jit_backend_opts *o, snc_error *err);
/* The backend around an existing program, e.g. one read by snc_program_load_bitcode (`snrun` on a
 * module written by `snc compile --emit=bc`): p is taken (freed with the backend, also on failure);
 * p->g must outlive the backend. dump_graph and profile are ignored (the code is already built). */
snc_backend *snc_backend_jit_from_program(snc_program *p, const snc_jit_backend_opts *o, snc_error *err);
/* Seconds spent building the module and JIT-compiling it. */
double snc_backend_jit_compile_seconds(const snc_backend *b);
const snc_program *snc_backend_jit_program(const snc_backend *b);
/* The JIT's compile-time breakdown and cache status (snc/jit.h). */
const snc_jit_timing *snc_backend_jit_timing(const snc_backend *b);

/* ---- modules written by snc compile --emit=bc (runtime/backend/compiled.c) ------------------- */
/* `snrun` on modules written by `snc compile --emit=bc` (compile once, run many).
 *
 *   snc_graph *g = NULL;
 *   snc_backend *be = snc_compiled_backend("siamese.bc", 2, dir, &g, &err);  // no YAML file, no codegen
 *   if (!be) { fprintf(stderr, "%s\n", err.msg); return 1; }
 *   ... snc_train(g, be, &opts, &r, &err) / snc_checkpoint_load + snc_evaluate ...
 *   be->free(be);                     // frees the code and the arena
 *   snc_graph_free(g);                // the graph rebuilt from the module's metadata: the caller's
 *
 * Errors name the file. */

/* Does path start with LLVM bitcode's magic bytes? (0 when it does not or cannot be read) */
int snc_is_bitcode(const char *path);

/* A JIT backend on the module in a bitcode file (snc_program_load_bitcode): *g receives the graph
 * rebuilt from the module's model text, which the caller frees after the backend. threads: OpenMP
 * threads per step (0: the runtime's default). cache_dir: the compiled-module cache (snc/jit.h), which
 * keeps the module's machine code so that the next run skips code generation; NULL: none. */
snc_backend *snc_compiled_backend(const char *path, int threads, const char *cache_dir, snc_graph **g, snc_error *err);

/* ---- kernel profiles of generated code (runtime/backend/profile.c) --------------------------- */
/* Kernel profiles of generated code (runtime/backend/profile.c).
 *
 *   snc_cg_options o = {.profile = 1};   // the program's regions then call snc_profile_mark
 *   ... run steps ...
 *   snc_profile_print(program, stderr, 20);   // the 20 most expensive kernels, per region
 *
 * The counters are process-wide (one profiled program at a time). */

void snc_profile_mark(int32_t region, int32_t k);
void snc_profile_reset(void);
void snc_profile_print(const snc_program *p, FILE *out, int top);
/* One region of it (0 the training step, 1 the evaluation): when the evaluation ran on another build
   (snc_eval_build_new), its region 1 is printed from that build's program. */
void snc_profile_print_region(const snc_program *p, int region, FILE *out, int top);
/* Seconds per kernel call k < n of a region (0 train, 1 eval), summed since the last reset, into t;
   returns how many times the region ran. */
long snc_profile_times(int region, double *t, int n);
/* 1: time thread 0's CPU time from now on (as SNC_PROFILE_CLOCK=thread), 0: wall time */
void snc_profile_set_thread_clock(int on);

/* ---- kernel schedules per machine: tuning cache, search (runtime/backend/sched_cache.c, tune.c) */
/* Kernel schedules chosen by measurement, per machine (runtime/backend/sched_cache.c, runtime/backend/tune.c;
 * docs/jit.md, "Schedules"). The code generator lists the valid schedules of every convolution and
 * matrix-product kernel (snc_cg_schedule in snc/codegen.h, the built-in default first); this module
 * picks one per kernel shape from a tuning cache written by a short timed search, or from an override.
 *
 *   char dir[4096];
 *   snc_sched_table *t = snc_sched_open(snc_jit_cache_default_dir(dir, sizeof dir), 1, 2, &err); // 2 threads
 *   snc_sched_tune(g, t, 0, stdout, &err);          // optional: time the candidates, record, save
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

typedef struct snc_sched_table snc_sched_table;

/* The table of this machine's cache in dir (NULL: no cache, overrides only) for runs on `threads`
   threads (0: omp_get_max_threads(), as a run without --threads): the best schedule depends on how
   the threads split the work, so each thread count has a file of its own. use_cache 0 (--no-tune)
   ignores the cache's entries for choosing (tuning still records and saves them). A missing or
   stale file is an empty table; NULL only when out of memory. Freed with snc_sched_free. */
snc_sched_table *snc_sched_open(const char *dir, int use_cache, int threads, snc_error *err);
int snc_sched_threads(const snc_sched_table *t); /* the thread count it is for */
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

/* The search (runtime/backend/tune.c): builds g once per candidate index (every kernel takes its
 * k-th candidate, or its default when it has fewer), runs all of them in turns (rounds x a few
 * training steps, when g has them, and evaluation forwards, on zero inputs; per-kernel time from the
 * profiler), keeps per shape the fastest when it beats the default by 5% or more, records every
 * shape of both regions in t and saves t (entries of other shapes already there are kept). A
 * forward-only g (an evaluation build) is tuned on its forward alone; no_eval as the run's
 * snc_jit_backend_opts.no_eval (a training build without its evaluation: the step alone). On t's
 * thread count. log (may be NULL) gets one line per shape. 0, or -1 with err. */
int snc_sched_tune(const snc_graph *g, snc_sched_table *t, int no_eval, FILE *log, snc_error *err);

#endif
