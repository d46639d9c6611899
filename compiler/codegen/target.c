/* Target machines, the optimisation pipeline, dumps and the atomic file writer (see snc/target.h). */
#include "snc/target.h"
#include "snc/file.h"

#include <pthread.h>
#include <unistd.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

/* ------------------------------------------------------------------------------ initialisation */

/* The host's JIT needs only the native target; registering every backend LLVM was built with costs
 * a few milliseconds of each process's start, so that happens only for a cross target. */
static pthread_once_t g_native_once = PTHREAD_ONCE_INIT, g_all_once = PTHREAD_ONCE_INIT;

static void init_native(void) {
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
}

static void init_all(void) {
  LLVMInitializeAllTargetInfos();
  LLVMInitializeAllTargets();
  LLVMInitializeAllTargetMCs();
  LLVMInitializeAllAsmPrinters();
  LLVMInitializeAllAsmParsers();
}

static void ensure_native(void) { pthread_once(&g_native_once, init_native); }
static void ensure_all(void) {
  ensure_native();
  pthread_once(&g_all_once, init_all);
}

/* ----------------------------------------------------------------------------- target machines */

/* LLVM reports an unknown CPU or feature only as a warning printed on stderr while the target machine
 * builds its subtarget ("'foo' is not a recognized processor for this target (ignoring processor)");
 * the C API has no query for it. So the construction runs with fd 2 redirected to a temporary file,
 * under a lock, and the text is checked afterwards. Text that is not such a warning is passed on. */
static pthread_mutex_t g_stderr_lock = PTHREAD_MUTEX_INITIALIZER;

static LLVMTargetMachineRef create_checked(LLVMTargetRef target, const char *triple, const char *cpu,
                                           const char *features, snc_error *err) {
  LLVMTargetMachineRef tm = NULL;
  char text[1024] = "";
  pthread_mutex_lock(&g_stderr_lock);
  FILE *cap = tmpfile();
  int saved = -1;
  if (cap) {
    fflush(stderr);
    saved = dup(2);
    if (saved < 0 || dup2(fileno(cap), 2) < 0) {
      if (saved >= 0) close(saved);
      saved = -1;
    }
  }
  tm = LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelAggressive, LLVMRelocPIC,
                               LLVMCodeModelDefault);
  if (saved >= 0) {
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(cap);
    size_t n = fread(text, 1, sizeof text - 1, cap);
    text[n] = '\0';
  }
  if (cap) fclose(cap);
  pthread_mutex_unlock(&g_stderr_lock);

  if (!tm) {
    snc_errorf(err, "target %s: LLVM cannot create a target machine for cpu '%s' features '%s'", triple,
               cpu, features);
    return NULL;
  }
  const char *bad = strstr(text, "is not a recognized");
  if (bad) {
    LLVMDisposeTargetMachine(tm);
    char *nl = strchr(text, '\n');
    if (nl) *nl = '\0';
    const char *what = strstr(text, "feature") ? "feature" : "CPU";
    snc_errorf(err, "target %s: unknown %s: %s", triple, what, text);
    return NULL;
  }
  if (text[0]) fputs(text, stderr); /* not ours: somebody else's output during the redirect */
  return tm;
}

LLVMTargetMachineRef snc_cg_target_new(const char *triple, const char *cpu, const char *features,
                                       snc_error *err) {
  ensure_all();
  if (!triple || !triple[0]) {
    snc_errorf(err, "target: empty target triple");
    return NULL;
  }
  if (!cpu || !cpu[0]) cpu = "generic";
  if (!features) features = "";
  LLVMTargetRef target = NULL;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
    snc_errorf(err, "target %s: unknown target triple: %s", triple, msg ? msg : "no such target");
    LLVMDisposeMessage(msg);
    return NULL;
  }
  LLVMDisposeMessage(msg);
  if (!LLVMTargetHasTargetMachine(target) || !LLVMTargetHasAsmBackend(target)) {
    snc_errorf(err, "target %s: LLVM target '%s' cannot generate machine code", triple,
               LLVMGetTargetName(target));
    return NULL;
  }
  return create_checked(target, triple, cpu, features, err);
}

LLVMTargetMachineRef snc_cg_target_host(snc_error *err) {
  ensure_native();
  LLVMTargetMachineRef tm = NULL;
  char *triple = LLVMGetDefaultTargetTriple();
  char *cpu = LLVMGetHostCPUName();
  char *features = LLVMGetHostCPUFeatures();
  LLVMTargetRef target = NULL;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
    snc_errorf(err, "host target %s: %s", triple, msg ? msg : "no such target");
    goto cleanup;
  }
  /* the host's own CPU name and features are known to LLVM: no stderr check needed */
  tm = LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelAggressive, LLVMRelocPIC,
                               LLVMCodeModelDefault);
  if (!tm) snc_errorf(err, "host target %s: LLVM cannot create a target machine for cpu '%s'", triple, cpu);
cleanup:
  LLVMDisposeMessage(msg);
  LLVMDisposeMessage(features);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(triple);
  return tm;
}

void snc_cg_target_apply(LLVMModuleRef m, LLVMTargetMachineRef tm) {
  char *triple = LLVMGetTargetMachineTriple(tm);
  LLVMSetTarget(m, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(m, dl); /* copies the layout */
  LLVMDisposeTargetData(dl);
}

/* ------------------------------------------------------------------------------- optimisation */

static const char *module_name(LLVMModuleRef m) {
  size_t n = 0;
  const char *s = LLVMGetModuleIdentifier(m, &n);
  return s && n ? s : "(unnamed)";
}

int snc_cg_verify(LLVMModuleRef m, snc_error *err) {
  char *msg = NULL;
  int broken = LLVMVerifyModule(m, LLVMReturnStatusAction, &msg);
  if (broken) {
    size_t n = msg ? strlen(msg) : 0;
    while (n && msg[n - 1] == '\n') msg[--n] = '\0';
    for (size_t i = 0; i < n; i++)
      if (msg[i] == '\n') msg[i] = ' '; /* one line: "...terminator! label %entry" */
    snc_errorf(err, "module '%s' does not verify (a compiler bug): %s", module_name(m),
               msg && msg[0] ? msg : "no message");
  }
  LLVMDisposeMessage(msg);
  return broken ? -1 : 0;
}

int snc_cg_optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, int level, snc_error *err) {
  /* Level 3 is snc's pipeline for generated kernels: they arrive vectorised, register-blocked and
     unrolled by the code generator, so what they need is SROA (accumulators into registers), CSE,
     instcombine, LICM and GVN. LLVM's default<O3> adds loop vectorisation, unrolling and inlining
     that cost about ten times the compile time here without making the kernels faster. */
  static const char *const pipelines[] = {"default<O0>", "default<O1>", "default<O2>",
                                          "function(sroa,early-cse<memssa>,instcombine<no-verify-fixpoint>,"
                                          "simplifycfg,loop-mssa(licm),gvn,instcombine<no-verify-fixpoint>,simplifycfg)"};
  if (level < 0 || level > 3) return snc_errorf(err, "optimisation level %d is not 0..3", level);
  if (snc_cg_verify(m, err) != 0) return -1;
  snc_cg_target_apply(m, tm);
  LLVMPassBuilderOptionsRef opt = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopInterleaving(opt, level >= 2);
  LLVMPassBuilderOptionsSetLoopVectorization(opt, level >= 2);
  LLVMPassBuilderOptionsSetSLPVectorization(opt, level >= 2);
  LLVMPassBuilderOptionsSetLoopUnrolling(opt, level >= 1);
  LLVMErrorRef e = LLVMRunPasses(m, pipelines[level], tm, opt);
  LLVMDisposePassBuilderOptions(opt);
  if (e) {
    char *msg = LLVMGetErrorMessage(e); /* consumes e */
    snc_errorf(err, "module '%s': %s failed: %s", module_name(m), pipelines[level], msg);
    LLVMDisposeErrorMessage(msg);
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------------------------ emitting */

int snc_cg_write_buffer(LLVMModuleRef m, LLVMTargetMachineRef tm, snc_cg_file_kind kind, unsigned flags,
                        LLVMMemoryBufferRef *out, snc_error *err) {
  *out = NULL;
  if (kind == SNC_CG_FILE_BITCODE) {
    *out = LLVMWriteBitcodeToMemoryBuffer(m);
    return *out ? 0 : snc_errorf(err, "module '%s': cannot write bitcode", module_name(m));
  }
  if (kind == SNC_CG_FILE_LLVM_IR) {
    char *text = LLVMPrintModuleToString(m);
    *out = LLVMCreateMemoryBufferWithMemoryRangeCopy(text, strlen(text), module_name(m));
    LLVMDisposeMessage(text);
    return 0;
  }
  if (kind != SNC_CG_FILE_OBJECT && kind != SNC_CG_FILE_ASM)
    return snc_errorf(err, "module '%s': unknown output kind %d", module_name(m), (int)kind);
  if (!tm) return snc_errorf(err, "module '%s': machine code needs a target machine", module_name(m));

  int rc = -1;
  char *tm_triple = LLVMGetTargetMachineTriple(tm);
  LLVMModuleRef work = NULL;
  char *msg = NULL;
  if (strcmp(LLVMGetTarget(m), tm_triple) != 0) {
    snc_errorf(err, "module '%s' is set up for triple '%s', the target machine is '%s'", module_name(m),
               LLVMGetTarget(m), tm_triple);
    goto cleanup;
  }
  /* code generation (CodeGenPrepare and friends) rewrites the IR it is given */
  work = (flags & SNC_CG_WRITE_IN_PLACE) ? m : LLVMCloneModule(m);
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, work, kind == SNC_CG_FILE_OBJECT ? LLVMObjectFile
                                                                               : LLVMAssemblyFile,
                                          &msg, out)) {
    snc_errorf(err, "module '%s': code generation for %s failed: %s", module_name(m), tm_triple,
               msg ? msg : "no message");
    *out = NULL;
    goto cleanup;
  }
  rc = 0;
cleanup:
  if (work && work != m) LLVMDisposeModule(work);
  LLVMDisposeMessage(msg);
  LLVMDisposeMessage(tm_triple);
  return rc;
}

int snc_cg_write_file(LLVMModuleRef m, LLVMTargetMachineRef tm, snc_cg_file_kind kind, const char *path,
                      snc_error *err) {
  if (!path || !path[0]) return snc_errorf(err, "output path is empty");
  LLVMMemoryBufferRef buf = NULL;
  snc_error e2 = {{0}};
  if (snc_cg_write_buffer(m, tm, kind, 0, &buf, &e2) != 0) return snc_errorf(err, "%s: %s", path, e2.msg);
  int rc = snc_file_write_atomic(path, LLVMGetBufferStart(buf), LLVMGetBufferSize(buf), err);
  LLVMDisposeMemoryBuffer(buf);
  return rc;
}

/* ---------------------------------------------------------------------------------------- dumps */

void snc_cg_dump_ir(LLVMModuleRef m, const char *what, FILE *f) {
  char *text = LLVMPrintModuleToString(m);
  fprintf(f, "; ---- snc: LLVM IR of '%s'%s%s ----\n", module_name(m), what ? " " : "", what ? what : "");
  fputs(text, f);
  fprintf(f, "; ---- snc: end of LLVM IR ----\n");
  fflush(f);
  LLVMDisposeMessage(text);
}

int snc_cg_dump_asm(LLVMModuleRef m, LLVMTargetMachineRef tm, FILE *f, snc_error *err) {
  LLVMMemoryBufferRef buf = NULL;
  if (snc_cg_write_buffer(m, tm, SNC_CG_FILE_ASM, 0, &buf, err) != 0) return -1;
  fwrite(LLVMGetBufferStart(buf), 1, LLVMGetBufferSize(buf), f);
  fflush(f);
  LLVMDisposeMemoryBuffer(buf);
  return 0;
}
