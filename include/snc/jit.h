/* In-process JIT (ORC LLJIT through the LLVM-C API) for modules built by snc's code generator.
 *
 *   snc_error err = {0};
 *   snc_jit_options opt = snc_jit_default_options();       // O3, no dumps, no extra symbols
 *   opt.dump_asm = want_asm ? stdout : NULL;
 *   snc_jit *j = snc_jit_new(module, &opt, &err);           // takes the module, success or not
 *   if (!j) { fprintf(stderr, "%s\n", err.msg); return 1; }
 *   void (*step)(float *) = (void (*)(float *))(uintptr_t)snc_jit_lookup(j, "train_step", &err);
 *   if (!step) { ... err.msg ... }
 *   step(arena);
 *   printf("compiled in %.3f s\n", snc_jit_timing_of(j)->total);
 *   snc_jit_free(j);                                        // frees the machine code: step is gone
 *
 * Ownership: snc_jit_new always takes `module` (disposes it, also on failure); the module's
 * LLVMContext stays the caller's and only needs to outlive the snc_jit_new call. Options, dump
 * streams and the extra symbol table are only read during snc_jit_new. Addresses from snc_jit_lookup
 * stay valid until snc_jit_free, which releases the JIT and all its code.
 *
 * What snc_jit_new does (docs/jit.md has the details):
 *   1. refuses a module that declares an external function or global not in the allowed list
 *      (snc_jit_allowed_symbols() plus opt->symbols); the message names the symbol;
 *   2. verifies the module (failure = compiler bug; the message carries the verifier's text) and runs
 *      the pipeline of opt_level (snc_cg_optimize) for the host target machine. It always optimises: a caller whose module is
 *      already optimised passes opt_level 0 (the O0 pipeline only runs always-inline);
 *   3. generates machine code for the host (CPU name and features of this machine, codegen level
 *      aggressive, PIC) with the same code path as the object-file writer (snc_cg_write_buffer);
 *   4. adds the object to an LLJIT whose JITTargetMachineBuilder comes from an identical host target
 *      machine, with absolute symbols for the allowed names, and links it by looking up every function
 *      the module defines. A reference to any other external symbol (for instance a library call that
 *      code generation introduced) fails here with a message naming it.
 * With opt->cache_dir, steps 2 and 3 are skipped when the cache holds the machine code of the same
 * module for this machine (snc/jit_cache.h); a corrupt or stale entry is never used but replaced.
 * Errors from LLVM (LLVMErrorRef, session errors) become err->msg, prefixed "jit: ". */
#ifndef SNC_JIT_H
#define SNC_JIT_H
#include <stddef.h>
#include <stdio.h>

#include <llvm-c/Core.h>

#include "snc/error.h"

typedef struct snc_jit snc_jit; /* opaque; free with snc_jit_free */

/* An extra external symbol the JIT'd code may reference, e.g. a runtime helper. */
typedef struct snc_jit_symbol {
  const char *name; /* as the module declares it (no mangling on ELF) */
  void *addr;       /* function or data address in this process */
} snc_jit_symbol;

typedef struct snc_jit_options {
  int opt_level;                /* 0..3 as snc_cg_optimize (3, snc's kernel pipeline, by default) */
  FILE *dump_llvm;              /* non-NULL: textual IR before and after optimisation */
  FILE *dump_asm;               /* non-NULL: host assembly of the optimised module */
  const snc_jit_symbol *symbols; /* n_symbols extra allowed symbols (may be NULL) */
  size_t n_symbols;
  int compile_threads;          /* 0: automatic (2 for a large module on a machine with 2+ CPUs at
                                   opt_level 0 or 3, without dumps), 1: one thread, 2: two threads
                                   (a module with fewer than two kernels still compiles on one) */
  const char *cache_dir;        /* non-NULL: the compiled-module cache in this directory (snc/jit_cache.h):
                                   a module compiled before is loaded from it without the pipeline, a
                                   new one is stored after it linked; ignored when a dump is asked for */
} snc_jit_options;

/* Seconds spent in snc_jit_new, by phase (dumps excluded). */
typedef struct snc_jit_timing {
  double optimize; /* verifier + pass pipeline */
  double codegen;  /* machine code generation (object in memory) */
  double link;     /* LLJIT creation, symbol definitions, linking: lookups of every defined function */
  double cache;    /* the cache: key (bitcode + hash), reading, and writing a new entry */
  double total;    /* optimize + codegen + link + cache: the compile time */
  int threads;     /* threads that optimised and generated code: 2 when the module was split, 0 on a hit */
  int cache_status; /* snc_jit_cache_status: SNC_JIT_CACHE_OFF, _HIT, _STORED, _REBUILT, _UNWRITABLE */
} snc_jit_timing;

snc_jit_options snc_jit_default_options(void);

/* The built-in allowed external symbols, NULL-terminated: GOMP_parallel, GOMP_barrier,
 * omp_get_thread_num, omp_get_num_threads, expf, logf, tanhf, log1pf, expm1f, sqrtf, memset, memcpy,
 * log, cos (P_init's normal draws). */
const char *const *snc_jit_allowed_symbols(void);

/* Compiles module for this machine (see above). opt may be NULL (defaults). NULL on error. */
snc_jit *snc_jit_new(LLVMModuleRef module /* ownership taken */, const snc_jit_options *opt,
                     snc_error *err);

/* Address of a function or global the module defines; NULL with err set when the module defines no
 * such external symbol (names of other code, even the allowed externals, are refused). */
void *snc_jit_lookup(snc_jit *j, const char *name, snc_error *err);

/* Compile-time breakdown of j (valid until snc_jit_free). */
const snc_jit_timing *snc_jit_timing_of(const snc_jit *j);

/* Frees the JIT and all code and data it holds. NULL is allowed. */
void snc_jit_free(snc_jit *j);

#endif
