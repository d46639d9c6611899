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
 * module for this machine (snc/jit.h, its cache section); a corrupt or stale entry is never used but replaced.
 * Errors from LLVM (LLVMErrorRef, session errors) become err->msg, prefixed "jit: ".
 *
 * The one header of runtime/jit/; the compiled-module cache is its last section. */
#ifndef SNC_JIT_H
#define SNC_JIT_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

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
  const char *cache_dir;        /* non-NULL: the compiled-module cache in this directory (snc/jit.h, its cache section):
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

/* ---- the compiled-module cache (runtime/jit/jit_cache.c) ------------------------------------- */
/* The compiled-module cache: the optimised machine code of a module kept on disk, so a module the
 * JIT has compiled once on this machine is loaded without running the LLVM pipeline again
 * ("compile once, run many"; runtime/jit/jit_cache.c, docs/jit.md).
 *
 *   snc_jit_options o = snc_jit_default_options();
 *   char dir[4096];
 *   o.cache_dir = snc_jit_cache_default_dir(dir, sizeof dir);  // $SNC_CACHE_DIR, else
 *                                                              // $XDG_CACHE_HOME/snc, ~/.cache/snc
 *   snc_jit *j = snc_jit_new(module, &o, &err);                // hit: objects read, no pipeline
 *   snc_jit_timing_of(j)->cache                                // SNC_JIT_CACHE_HIT, _STORED, ...
 *
 * snc_jit_new uses the functions below; they are public for the tests and for tools that manage the
 * cache. The key is a 128-bit hash of the module's bitcode (before optimisation) and a text naming
 * everything else the machine code depends on: the cache format, the LLVM version, the target
 * triple, CPU and features, the optimisation level and the build of snc and of libLLVM (their GNU
 * build ids), so a rebuilt snc or another CPU never reads an old entry. An entry is one file
 * <dir>/<32 hex digits>.jit:
 *
 *   offset  0  magic "SNCJITC\n"        8 bytes
 *           8  format version           u32 little-endian (SNC_JIT_CACHE_FORMAT)
 *          12  number of objects        u32 (1 or 2: a module compiled on two threads)
 *          16  key hash                 16 bytes
 *          32  payload length           u64
 *          40  crc32 of the payload     u32 (zlib)
 *          44  crc32 of bytes 0..44     u32
 *          48  payload: u32 key-text length, the key text, then per object u64 size + ELF bytes
 *
 * Whatever does not check out (short file, magic, version, either crc, another key, a length that
 * disagrees with the file, an object that is not ELF) is reported as SNC_JIT_CACHE_BAD with the
 * reason and never used: the JIT compiles the module and replaces the entry. Entries are written
 * with the atomic writer (include/snc/file.h: a temporary named by the pid, fsync, rename), so
 * processes sharing a cache (a study's workers) see either no entry or a whole one; two that
 * compile the same module at once both write valid entries and the last rename wins.
 * Nothing here allocates anything the caller must free except the buffers load hands over. */

#define SNC_JIT_CACHE_FORMAT 1
#define SNC_JIT_CACHE_MAX_OBJECTS 2

typedef enum snc_jit_cache_status {
  SNC_JIT_CACHE_OFF = 0,    /* no cache directory, or dumps asked for (they need the pipeline) */
  SNC_JIT_CACHE_HIT,        /* the objects came from the cache */
  SNC_JIT_CACHE_STORED,     /* compiled, and the entry written */
  SNC_JIT_CACHE_REBUILT,    /* the entry was corrupt or stale: compiled and rewritten */
  SNC_JIT_CACHE_UNWRITABLE, /* compiled, but the entry could not be written (the run goes on) */
} snc_jit_cache_status;

typedef struct snc_jit_cache_key {
  uint64_t hash[2];
  char text[4096]; /* "snc-jit-cache 1; llvm 19.1.7; x86_64-pc-linux-gnu; sapphirerapids; +avx512f,...; O3; ..." */
} snc_jit_cache_key;

/* The directory to use: $SNC_CACHE_DIR, else $XDG_CACHE_HOME/snc, else $HOME/.cache/snc, written to
 * buf; NULL when none can be named (no HOME) or SNC_CACHE_DIR is empty. Not created here. */
const char *snc_jit_cache_default_dir(char *buf, size_t n);

/* The key of module m (its bitcode, read only) for target machine tm at opt_level. 0 or -1. */
int snc_jit_cache_key_of(LLVMModuleRef m, LLVMTargetMachineRef tm, int opt_level, snc_jit_cache_key *k,
                         snc_error *err);

/* <dir>/<hex of k->hash>.jit */
void snc_jit_cache_path(const char *dir, const snc_jit_cache_key *k, char *buf, size_t n);

/* Reads the entry of k: 1 and objs[0..*nobj) (memory buffers, the caller's) when it is whole and
 * matches k; 0 when there is none; -1 with why->msg when it exists but is corrupt or stale. */
int snc_jit_cache_load(const char *dir, const snc_jit_cache_key *k, LLVMMemoryBufferRef *objs, int *nobj,
                       snc_error *why);

/* An entry's bytes for objects objs[0..nobj) (read only), malloc'd in *bytes; 0 or -1 (no memory). */
int snc_jit_cache_pack(const snc_jit_cache_key *k, LLVMMemoryBufferRef const *objs, int nobj, unsigned char **bytes,
                       size_t *len);

/* Writes packed bytes as k's entry, creating dir (and its parents) when missing, then keeps the
 * directory under its size limit (oldest entries first). 0 or -1 with err. */
int snc_jit_cache_store(const char *dir, const snc_jit_cache_key *k, const unsigned char *bytes, size_t len,
                        snc_error *err);

/* Short name of a status ("hit", "stored", ...). */
const char *snc_jit_cache_status_name(int status);

#endif
