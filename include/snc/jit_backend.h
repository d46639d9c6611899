/* The JIT as a training backend (runtime/backend_jit.c): the graph compiled by the code generator
 * and run through ORC; the same interface as the reference executor (include/snc/backend.h).
 *
 *   snc_jit_backend_opts o = {.threads = 2};
 *   snc_backend *be = snc_backend_jit_new(g, &o, &err);   // g after snc_autodiff; g must outlive be
 *   ... snc_train(g, be, &opts, &result, &err) ...
 *   be->free(be);                                         // frees the code, the arena and staging
 */
#ifndef SNC_JIT_BACKEND_H
#define SNC_JIT_BACKEND_H
#include <stdio.h>

#include "snc/codegen.h"
#include "snc/jit.h"
#include "snc/backend.h"

typedef struct snc_jit_backend_opts {
  int threads;      /* OpenMP threads per step; 0: the runtime's default (OMP_NUM_THREADS) */
  FILE *dump_graph; /* kernels and memory plan */
  FILE *dump_llvm;  /* LLVM IR before and after optimisation */
  FILE *dump_asm;   /* host assembly */
  int profile;      /* time every kernel (snc/profile.h) */
  int split_step;   /* also SNC_RUN_GRAD and SNC_RUN_APPLY (data-parallel training) */
  /* kernel schedules (snc_cg_options.schedule; e.g. snc_sched_choose of snc/tune.h); NULL: defaults */
  int (*schedule)(void *user, const char *name, const char *shape, const snc_cg_schedule *cands, int n);
  void *schedule_user;
  const char *cache_dir; /* the compiled-module cache (snc/jit_cache.h; snc_jit_cache_default_dir); NULL: none */
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

#endif
