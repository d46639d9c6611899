/* Target machines, the LLVM optimisation pipeline, dumps and the file writer (shared by the JIT and the
 * object-file writer). LLVM is used through its C API only.
 *
 *   snc_error err = {0};
 *   LLVMTargetMachineRef tm = snc_cg_target_host(&err);       // or snc_cg_target_new("aarch64-unknown-
 *   if (!tm) { fprintf(stderr, "%s\n", err.msg); return 1; }  //    linux-gnu", "generic", "", &err)
 *   snc_cg_target_apply(m, tm);                      // module triple + data layout from tm
 *   if (dump) snc_cg_dump_ir(m, "before optimisation", stderr);
 *   if (snc_cg_optimize(m, tm, 3, &err) != 0) goto fail;     // verifier, then snc's kernel pipeline
 *   if (snc_cg_write_file(m, tm, SNC_CG_FILE_OBJECT, "model.o", &err) != 0) goto fail;
 *   snc_cg_dump_asm(m, tm, stdout, &err);
 *   LLVMDisposeTargetMachine(tm);
 *
 * Ownership: snc_cg_target_host / snc_cg_target_new return a target machine the caller disposes with
 * LLVMDisposeTargetMachine. No function here takes ownership of a module; they only read it, except
 * snc_cg_target_apply and snc_cg_optimize, which change it in place, and snc_cg_write_buffer with
 * SNC_CG_WRITE_IN_PLACE, which leaves it lowered for code generation (dispose it afterwards).
 * A memory buffer returned by snc_cg_write_buffer belongs to the caller (LLVMDisposeMemoryBuffer, or
 * hand it to a consumer such as LLVMOrcLLJITAddObjectFile, which takes it).
 *
 * Errors: every fallible function returns 0 (or a non-NULL pointer) on success and -1 (NULL) with
 * err->msg set on failure: unknown triples or CPUs, unwritable paths, LLVM codegen failures, and
 * modules that do not verify (a compiler bug; the message carries the verifier's text).
 *
 * Target machines are created with reloc mode PIC, the default code model and codegen level
 * aggressive. Every target compiled into libLLVM is initialised once, on first use (thread-safe). */
#ifndef SNC_TARGET_H
#define SNC_TARGET_H
#include <stdio.h>

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "snc/error.h"

/* A target machine for this machine: the default triple, LLVMGetHostCPUName and
 * LLVMGetHostCPUFeatures (so AVX-512 where the CPU has it). */
LLVMTargetMachineRef snc_cg_target_host(snc_error *err);

/* A target machine for triple ("x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", ...), cpu
 * (NULL or "" means "generic"; "x86-64", "skylake-avx512", "neoverse-v1", ...) and features (NULL or ""
 * for the CPU's own; "+avx2,-fma" style). An unknown triple, an unknown CPU or an unknown feature is
 * an error naming it. */
LLVMTargetMachineRef snc_cg_target_new(const char *triple, const char *cpu, const char *features,
                                       snc_error *err);

/* Sets m's target triple and data layout from tm. */
void snc_cg_target_apply(LLVMModuleRef m, LLVMTargetMachineRef tm);

/* Verifies m (a module that does not verify is an error with the verifier's message; m is unchanged),
 * applies tm's triple and data layout, then runs a new-pass-manager pipeline for tm: levels 0..2 are
 * LLVM's "default<O<level>>" (loop and SLP vectorisation from level 2 on, as clang does); level 3 is
 * snc's pipeline for generated kernels (sroa, early-cse, instcombine, simplifycfg, licm, gvn): the
 * code generator has already vectorised, blocked and unrolled them, and LLVM's O3 loop passes cost
 * about ten times the compile time without making them faster (see target.c). */
int snc_cg_optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, int level, snc_error *err);

/* Verifies m; 0 when it verifies, else -1 with "module 'name' does not verify (a compiler bug):
 * <verifier text on one line>". */
int snc_cg_verify(LLVMModuleRef m, snc_error *err);

typedef enum {
  SNC_CG_FILE_OBJECT,   /* relocatable object (ELF on Linux triples); needs a target machine */
  SNC_CG_FILE_ASM,      /* assembly text; needs a target machine */
  SNC_CG_FILE_BITCODE,  /* LLVM bitcode; tm may be NULL */
  SNC_CG_FILE_LLVM_IR,  /* textual LLVM IR; tm may be NULL */
} snc_cg_file_kind;

/* snc_cg_write_buffer flag: run code generation on m itself instead of a clone. Faster (no copy), but
 * code generation lowers m's IR in place, so m must only be disposed afterwards. */
#define SNC_CG_WRITE_IN_PLACE 1u

/* The bytes of m as kind into *out (caller frees, see above). For objects and assembly, m's triple
 * must equal tm's (call snc_cg_target_apply first); code generation runs on a clone of m
 * (LLVMCloneModule) unless flags has SNC_CG_WRITE_IN_PLACE. */
int snc_cg_write_buffer(LLVMModuleRef m, LLVMTargetMachineRef tm, snc_cg_file_kind kind, unsigned flags,
                        LLVMMemoryBufferRef *out, snc_error *err);

/* Writes m as kind to path atomically: the bytes go to "<path>.tmp.<pid>", which is flushed, fsync'ed
 * and renamed over path. On failure the temporary file is removed and a file at path is untouched.
 * m is not changed. Errors start with the path. */
int snc_cg_write_file(LLVMModuleRef m, LLVMTargetMachineRef tm, snc_cg_file_kind kind, const char *path,
                      snc_error *err);

/* Textual LLVM IR of m to f, between "; ---- snc: <what> ----" header lines (what may be NULL). */
void snc_cg_dump_ir(LLVMModuleRef m, const char *what, FILE *f);

/* Assembly of m for tm to f (generated from a clone; m is not changed). */
int snc_cg_dump_asm(LLVMModuleRef m, LLVMTargetMachineRef tm, FILE *f, snc_error *err);

#endif
