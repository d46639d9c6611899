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
#ifndef SNC_JIT_CACHE_H
#define SNC_JIT_CACHE_H
#include <stddef.h>
#include <stdint.h>

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "snc/error.h"

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
