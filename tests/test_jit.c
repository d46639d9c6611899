/* Target machines, optimisation, dumps, the file writer and the ORC LLJIT wrapper, on small modules
 * built here with the LLVM-C builder API. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <llvm-c/Core.h>

#include "snc/jit.h"
#include "snc/target.h"
#include "testutil.h"

/* ------------------------------------------------------------------------------------- helpers */

static char g_dir[64];

static void rm_dir(void) {
  DIR *d = opendir(g_dir);
  if (d) {
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        remove(p);
      }
    closedir(d);
  }
  rmdir(g_dir);
}

static const char *tdir(void) {
  if (!g_dir[0]) {
    snprintf(g_dir, sizeof g_dir, "/tmp/snc_jit_XXXXXX");
    if (!mkdtemp(g_dir)) abort();
    atexit(rm_dir);
  }
  return g_dir;
}

static char *tpath(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "%s/%s", tdir(), name);
  return buf;
}

/* Whole file into a malloc'ed buffer (NUL-terminated); *n its size. NULL when unreadable. */
static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  rewind(f);
  char *b = malloc((size_t)size + 1);
  *n = fread(b, 1, (size_t)size, f);
  b[*n] = '\0';
  fclose(f);
  return b;
}

/* A call to an overloaded intrinsic such as llvm.fma.v16f32. */
static LLVMValueRef call_intrinsic(LLVMBuilderRef b, LLVMModuleRef m, const char *name, LLVMTypeRef *over,
                                   size_t n_over, LLVMValueRef *args, unsigned n_args) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  CU_ASSERT_FATAL(id != 0);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(m, id, over, n_over);
  LLVMTypeRef ty = LLVMIntrinsicGetType(LLVMGetModuleContext(m), id, over, n_over);
  return LLVMBuildCall2(b, ty, fn, args, n_args, "");
}

/* float dot16(const float *a, const float *b): one <16 x float> fma, then an ordered reduction. */
static LLVMModuleRef build_dot16(LLVMContextRef ctx) {
  LLVMModuleRef m = LLVMModuleCreateWithNameInContext("dot16", ctx);
  LLVMTypeRef f32 = LLVMFloatTypeInContext(ctx), ptr = LLVMPointerTypeInContext(ctx, 0);
  LLVMTypeRef v16 = LLVMVectorType(f32, 16);
  LLVMTypeRef params[] = {ptr, ptr};
  LLVMValueRef fn = LLVMAddFunction(m, "dot16", LLVMFunctionType(f32, params, 2, 0));
  LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, fn, "entry"));
  LLVMValueRef va = LLVMBuildLoad2(b, v16, LLVMGetParam(fn, 0), "va");
  LLVMSetAlignment(va, 4);
  LLVMValueRef vb = LLVMBuildLoad2(b, v16, LLVMGetParam(fn, 1), "vb");
  LLVMSetAlignment(vb, 4);
  LLVMValueRef fma_args[] = {va, vb, LLVMConstNull(v16)};
  LLVMValueRef prod = call_intrinsic(b, m, "llvm.fma", &v16, 1, fma_args, 3);
  LLVMValueRef red_args[] = {LLVMConstReal(f32, -0.0), prod};
  LLVMValueRef sum = call_intrinsic(b, m, "llvm.vector.reduce.fadd", &v16, 1, red_args, 2);
  LLVMBuildRet(b, sum);
  LLVMDisposeBuilder(b);
  return m;
}

/* void run(int *slots): GOMP_parallel(body, slots, 2, 0) where body stores
 * 100 * omp_get_num_threads() + omp_get_thread_num() + 1 into slots[thread] after a GOMP_barrier. */
static LLVMModuleRef build_parallel(LLVMContextRef ctx) {
  LLVMModuleRef m = LLVMModuleCreateWithNameInContext("parallel", ctx);
  LLVMTypeRef i32 = LLVMInt32TypeInContext(ctx), vd = LLVMVoidTypeInContext(ctx);
  LLVMTypeRef ptr = LLVMPointerTypeInContext(ctx, 0);
  LLVMTypeRef gp_params[] = {ptr, ptr, i32, i32};
  LLVMTypeRef gp_ty = LLVMFunctionType(vd, gp_params, 4, 0);
  LLVMTypeRef int_ty = LLVMFunctionType(i32, NULL, 0, 0), void_ty = LLVMFunctionType(vd, NULL, 0, 0);
  LLVMTypeRef body_ty = LLVMFunctionType(vd, &ptr, 1, 0);
  LLVMValueRef gp = LLVMAddFunction(m, "GOMP_parallel", gp_ty);
  LLVMValueRef bar = LLVMAddFunction(m, "GOMP_barrier", void_ty);
  LLVMValueRef tnum = LLVMAddFunction(m, "omp_get_thread_num", int_ty);
  LLVMValueRef nthr = LLVMAddFunction(m, "omp_get_num_threads", int_ty);
  LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);

  LLVMValueRef body = LLVMAddFunction(m, "body", body_ty);
  LLVMSetLinkage(body, LLVMInternalLinkage);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, body, "entry"));
  LLVMValueRef tid = LLVMBuildCall2(b, int_ty, tnum, NULL, 0, "tid");
  LLVMValueRef nt = LLVMBuildCall2(b, int_ty, nthr, NULL, 0, "nt");
  LLVMBuildCall2(b, void_ty, bar, NULL, 0, "");
  LLVMValueRef v = LLVMBuildAdd(b, LLVMBuildMul(b, nt, LLVMConstInt(i32, 100, 0), ""), tid, "");
  v = LLVMBuildAdd(b, v, LLVMConstInt(i32, 1, 0), "v");
  LLVMValueRef slot = LLVMBuildGEP2(b, i32, LLVMGetParam(body, 0), &tid, 1, "slot");
  LLVMBuildStore(b, v, slot);
  LLVMBuildRetVoid(b);

  LLVMValueRef run = LLVMAddFunction(m, "run", body_ty);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, run, "entry"));
  LLVMValueRef args[] = {body, LLVMGetParam(run, 0), LLVMConstInt(i32, 2, 0), LLVMConstInt(i32, 0, 0)};
  LLVMBuildCall2(b, gp_ty, gp, args, 4, "");
  LLVMBuildRetVoid(b);
  LLVMDisposeBuilder(b);
  return m;
}

/* float f(float x) { return callee(x); } with callee declared external (float -> float). */
static LLVMModuleRef build_calls(LLVMContextRef ctx, const char *callee) {
  LLVMModuleRef m = LLVMModuleCreateWithNameInContext("calls", ctx);
  LLVMTypeRef f32 = LLVMFloatTypeInContext(ctx);
  LLVMTypeRef ty = LLVMFunctionType(f32, &f32, 1, 0);
  LLVMValueRef ext = LLVMAddFunction(m, callee, ty);
  LLVMValueRef fn = LLVMAddFunction(m, "f", ty);
  LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, fn, "entry"));
  LLVMValueRef x = LLVMGetParam(fn, 0);
  LLVMBuildRet(b, LLVMBuildCall2(b, ty, ext, &x, 1, "r"));
  LLVMDisposeBuilder(b);
  return m;
}

/* void saxpy(float *y, const float *x, float a, i64 n): a loop for the vectoriser. */
static LLVMModuleRef build_saxpy(LLVMContextRef ctx) {
  LLVMModuleRef m = LLVMModuleCreateWithNameInContext("saxpy", ctx);
  LLVMTypeRef f32 = LLVMFloatTypeInContext(ctx), i64 = LLVMInt64TypeInContext(ctx);
  LLVMTypeRef ptr = LLVMPointerTypeInContext(ctx, 0);
  LLVMTypeRef params[] = {ptr, ptr, f32, i64};
  LLVMValueRef fn = LLVMAddFunction(m, "saxpy", LLVMFunctionType(LLVMVoidTypeInContext(ctx), params, 4, 0));
  LLVMSetParamAlignment(LLVMGetParam(fn, 0), 64);
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(ctx, fn, "entry");
  LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(ctx, fn, "loop");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(ctx, fn, "done");
  LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
  LLVMPositionBuilderAtEnd(b, entry);
  LLVMValueRef n = LLVMGetParam(fn, 3);
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSGT, n, LLVMConstInt(i64, 0, 0), ""), loop, done);
  LLVMPositionBuilderAtEnd(b, loop);
  LLVMValueRef i = LLVMBuildPhi(b, i64, "i");
  LLVMValueRef px = LLVMBuildGEP2(b, f32, LLVMGetParam(fn, 1), &i, 1, "");
  LLVMValueRef py = LLVMBuildGEP2(b, f32, LLVMGetParam(fn, 0), &i, 1, "");
  LLVMValueRef ax = LLVMBuildFMul(b, LLVMGetParam(fn, 2), LLVMBuildLoad2(b, f32, px, ""), "");
  LLVMBuildStore(b, LLVMBuildFAdd(b, ax, LLVMBuildLoad2(b, f32, py, ""), ""), py);
  LLVMValueRef next = LLVMBuildAdd(b, i, LLVMConstInt(i64, 1, 0), "next");
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, next, n, ""), loop, done);
  LLVMValueRef in_v[] = {LLVMConstInt(i64, 0, 0), next};
  LLVMBasicBlockRef in_b[] = {entry, loop};
  LLVMAddIncoming(i, in_v, in_b, 2);
  LLVMPositionBuilderAtEnd(b, done);
  LLVMBuildRetVoid(b);
  LLVMDisposeBuilder(b);
  return m;
}

static void print_timing(const char *what, const snc_jit *j) {
  const snc_jit_timing *t = snc_jit_timing_of(j);
  printf("\n    %s: compile %.2f ms (optimize %.2f, codegen %.2f, link %.2f) ", what, 1e3 * t->total,
         1e3 * t->optimize, 1e3 * t->codegen, 1e3 * t->link);
}

/* --------------------------------------------------------------------------------------- tests */

static void test_dot16(void) {
  LLVMContextRef ctx = LLVMContextCreate();
  char *ir = NULL, *as = NULL;
  size_t ir_n = 0, as_n = 0;
  FILE *fir = open_memstream(&ir, &ir_n), *fas = open_memstream(&as, &as_n);
  snc_jit_options opt = snc_jit_default_options();
  opt.dump_llvm = fir;
  opt.dump_asm = fas;
  snc_error err = {{0}};
  snc_jit *j = snc_jit_new(build_dot16(ctx), &opt, &err);
  LLVMContextDispose(ctx); /* the module is gone; the context is ours again */
  fclose(fir);
  fclose(fas);
  if (!j) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_FATAL(j != NULL);
  float (*dot16)(const float *, const float *) =
      (float (*)(const float *, const float *))(uintptr_t)snc_jit_lookup(j, "dot16", &err);
  CU_ASSERT_FATAL(dot16 != NULL);
  float a[16], b[16];
  double want = 0;
  for (int i = 0; i < 16; i++) {
    a[i] = 0.25f * (float)(i + 1);
    b[i] = 1.5f - 0.125f * (float)i;
    want += (double)a[i] * b[i];
  }
  float got = dot16(a, b);
  CU_ASSERT_DOUBLE_EQUAL(got, want, 1e-4);
  CU_ASSERT_PTR_NOT_NULL(strstr(ir, "before optimisation"));
  CU_ASSERT_PTR_NOT_NULL(strstr(ir, "after optimisation"));
  CU_ASSERT_PTR_NOT_NULL(strstr(ir, "llvm.fma.v16f32"));
  CU_ASSERT_PTR_NOT_NULL(strstr(as, "zmm"));
  CU_ASSERT_PTR_NOT_NULL(strstr(as, "vfmadd"));
  print_timing("dot16 O3", j);
  snc_jit_free(j);
  free(ir);
  free(as);
}

static void test_openmp(void) {
  LLVMContextRef ctx = LLVMContextCreate();
  snc_error err = {{0}};
  snc_jit *j = snc_jit_new(build_parallel(ctx), NULL, &err);
  LLVMContextDispose(ctx);
  if (!j) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_FATAL(j != NULL);
  void (*run)(int *) = (void (*)(int *))(uintptr_t)snc_jit_lookup(j, "run", &err);
  CU_ASSERT_FATAL(run != NULL);
  for (int rep = 0; rep < 3; rep++) {
    int slots[4] = {0, 0, 0, 0};
    run(slots);
    CU_ASSERT_EQUAL(slots[0], 201);
    CU_ASSERT_EQUAL(slots[1], 202);
    CU_ASSERT_EQUAL(slots[2], 0);
  }
  /* the outlined body is internal: not a symbol of the module's interface */
  CU_ASSERT_PTR_NULL(snc_jit_lookup(j, "body", &err));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'body'"));
  print_timing("parallel O3", j);
  snc_jit_free(j);
}

static void test_refuses_symbols(void) {
  LLVMContextRef ctx = LLVMContextCreate();
  snc_error err = {{0}};
  /* declared in the IR: refused before anything is compiled */
  snc_jit *j = snc_jit_new(build_calls(ctx, "system"), NULL, &err);
  CU_ASSERT_PTR_NULL(j);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'system'"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not allowed"));
  printf("\n    %s ", err.msg);

  /* allowed: tanhf from libm */
  j = snc_jit_new(build_calls(ctx, "tanhf"), NULL, &err);
  CU_ASSERT_FATAL(j != NULL);
  float (*f)(float) = (float (*)(float))(uintptr_t)snc_jit_lookup(j, "f", &err);
  CU_ASSERT_FATAL(f != NULL);
  CU_ASSERT_DOUBLE_EQUAL(f(0.5f), 0.46211716, 1e-6);
  /* only the module's own definitions can be looked up, not the allowed externals or process symbols */
  CU_ASSERT_PTR_NULL(snc_jit_lookup(j, "tanhf", &err));
  CU_ASSERT_PTR_NULL(snc_jit_lookup(j, "puts", &err));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'puts'"));
  snc_jit_free(j);

  /* a caller-supplied symbol */
  snc_jit_symbol extra[] = {{"my_erf", (void *)(uintptr_t)&erff}};
  snc_jit_options opt = snc_jit_default_options();
  opt.symbols = extra;
  opt.n_symbols = 1;
  j = snc_jit_new(build_calls(ctx, "my_erf"), &opt, &err);
  CU_ASSERT_FATAL(j != NULL);
  f = (float (*)(float))(uintptr_t)snc_jit_lookup(j, "f", &err);
  CU_ASSERT_FATAL(f != NULL);
  CU_ASSERT_DOUBLE_EQUAL(f(0.5f), erff(0.5f), 1e-7);
  snc_jit_free(j);
  CU_ASSERT_PTR_NULL(snc_jit_new(build_calls(ctx, "my_erf"), NULL, &err)); /* not without it */
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'my_erf'"));

  /* a library call that code generation introduces (frem -> fmodf) is refused at link time */
  LLVMModuleRef m = LLVMModuleCreateWithNameInContext("frem", ctx);
  LLVMTypeRef f32 = LLVMFloatTypeInContext(ctx);
  LLVMTypeRef two[] = {f32, f32};
  LLVMValueRef fn = LLVMAddFunction(m, "rem", LLVMFunctionType(f32, two, 2, 0));
  LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, fn, "entry"));
  LLVMBuildRet(b, LLVMBuildFRem(b, LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), ""));
  LLVMDisposeBuilder(b);
  j = snc_jit_new(m, NULL, &err);
  CU_ASSERT_PTR_NULL(j);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'fmodf'"));
  printf("\n    %s ", err.msg);
  snc_jit_free(j);
  LLVMContextDispose(ctx);
}

static void test_refuses_broken_module(void) {
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef m = LLVMModuleCreateWithNameInContext("broken", ctx);
  LLVMTypeRef ty = LLVMFunctionType(LLVMVoidTypeInContext(ctx), NULL, 0, 0);
  LLVMValueRef fn = LLVMAddFunction(m, "no_terminator", ty);
  LLVMAppendBasicBlockInContext(ctx, fn, "entry"); /* a block without a terminator */
  snc_error err = {{0}};
  CU_ASSERT_PTR_NULL(snc_jit_new(m, NULL, &err));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "does not verify"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "does not have terminator"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no_terminator"));
  printf("\n    %s ", err.msg);

  /* options are checked too */
  snc_jit_options opt = snc_jit_default_options();
  opt.opt_level = 4;
  CU_ASSERT_PTR_NULL(snc_jit_new(build_dot16(ctx), &opt, &err));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "level 4"));
  LLVMContextDispose(ctx);
}

static int elf_machine(const char *bytes, size_t n) {
  if (n < 20 || memcmp(bytes, "\177ELF", 4) != 0) return -1;
  return (unsigned char)bytes[18] | (unsigned char)bytes[19] << 8; /* e_machine, little endian */
}

static void write_all(LLVMModuleRef m, LLVMTargetMachineRef tm, const char *tag, int machine) {
  static const struct { snc_cg_file_kind kind; const char *ext; } kinds[] = {
      {SNC_CG_FILE_OBJECT, "o"},
      {SNC_CG_FILE_ASM, "s"},
      {SNC_CG_FILE_BITCODE, "bc"},
      {SNC_CG_FILE_LLVM_IR, "ll"}};
  snc_cg_target_apply(m, tm);
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    char name[64], path[256];
    snprintf(name, sizeof name, "%s.%s", tag, kinds[k].ext);
    snc_error err = {{0}};
    int rc = snc_cg_write_file(m, tm, kinds[k].kind, tpath(path, sizeof path, name), &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    size_t n = 0;
    char *bytes = slurp(path, &n);
    CU_ASSERT_FATAL(bytes != NULL);
    CU_ASSERT(n > 0);
    switch (kinds[k].kind) {
    case SNC_CG_FILE_OBJECT: CU_ASSERT_EQUAL(elf_machine(bytes, n), machine); break;
    case SNC_CG_FILE_ASM: CU_ASSERT_PTR_NOT_NULL(strstr(bytes, "dot16")); break;
    case SNC_CG_FILE_BITCODE: CU_ASSERT(n > 4 && memcmp(bytes, "BC\xc0\xde", 4) == 0); break;
    case SNC_CG_FILE_LLVM_IR: CU_ASSERT_PTR_NOT_NULL(strstr(bytes, "define float @dot16")); break;
    }
    free(bytes);
  }
}

static void test_writer(void) {
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef m = build_dot16(ctx);
  snc_error err = {{0}};

  LLVMTargetMachineRef host = snc_cg_target_host(&err);
  CU_ASSERT_FATAL(host != NULL);
  CU_ASSERT_EQUAL(snc_cg_optimize(m, host, 2, &err), 0);
  write_all(m, host, "host", 62);
  char *triple = LLVMGetTargetMachineTriple(host), *cpu = LLVMGetTargetMachineCPU(host);
  printf("\n    host: %s, cpu %s ", triple, cpu);
  LLVMDisposeMessage(triple);
  LLVMDisposeMessage(cpu);
  LLVMDisposeTargetMachine(host);

  LLVMTargetMachineRef x86 = snc_cg_target_new("x86_64-unknown-linux-gnu", "x86-64", "", &err);
  CU_ASSERT_FATAL(x86 != NULL);
  write_all(m, x86, "x86_64", 62);
  /* generic x86-64 has no AVX-512 */
  char path[256];
  size_t n = 0;
  char *as = slurp(tpath(path, sizeof path, "x86_64.s"), &n);
  CU_ASSERT_PTR_NOT_NULL(as);
  CU_ASSERT_PTR_NULL(as ? strstr(as, "zmm") : NULL);
  free(as);

  LLVMTargetMachineRef arm = snc_cg_target_new("aarch64-unknown-linux-gnu", NULL, NULL, &err);
  CU_ASSERT_FATAL(arm != NULL);
  write_all(m, arm, "aarch64", 183);

  /* a module set up for aarch64 cannot be emitted by the x86-64 machine */
  CU_ASSERT_EQUAL(snc_cg_write_file(m, x86, SNC_CG_FILE_OBJECT, tpath(path, sizeof path, "mix.o"), &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "aarch64-unknown-linux-gnu"));
  CU_ASSERT_EQUAL(access(path, F_OK), -1);
  /* an unwritable place: the error starts with the path */
  CU_ASSERT_EQUAL(snc_cg_write_file(m, arm, SNC_CG_FILE_OBJECT, "/nonexistent-dir/x.o", &err), -1);
  CU_ASSERT_EQUAL(strncmp(err.msg, "/nonexistent-dir/x.o: ", 22), 0);
  LLVMDisposeTargetMachine(arm);
  LLVMDisposeTargetMachine(x86);
  LLVMDisposeModule(m);
  LLVMContextDispose(ctx);

  /* no temporary file is left behind */
  DIR *d = opendir(tdir());
  CU_ASSERT_FATAL(d != NULL);
  struct dirent *e;
  int files = 0;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    files++;
    CU_ASSERT_PTR_NULL(strstr(e->d_name, ".tmp."));
  }
  closedir(d);
  CU_ASSERT_EQUAL(files, 12);
}

static void test_bad_targets(void) {
  snc_error err = {{0}};
  CU_ASSERT_PTR_NULL(snc_cg_target_new("frobnicator-unknown-linux-gnu", "generic", "", &err));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "frobnicator-unknown-linux-gnu"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "unknown target triple"));
  printf("\n    %s ", err.msg);
  CU_ASSERT_PTR_NULL(snc_cg_target_new("x86_64-unknown-linux-gnu", "pentium9000", "", &err));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "pentium9000"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "unknown CPU"));
  printf("\n    %s ", err.msg);
  CU_ASSERT_PTR_NULL(snc_cg_target_new("aarch64-unknown-linux-gnu", "generic", "+warpdrive", &err));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "warpdrive"));
  printf("\n    %s ", err.msg);
  CU_ASSERT_PTR_NULL(snc_cg_target_new("", NULL, NULL, &err));
  /* a good one after the bad ones: stderr is back */
  LLVMTargetMachineRef tm = snc_cg_target_new("x86_64-unknown-linux-gnu", "skylake-avx512", "", &err);
  CU_ASSERT_PTR_NOT_NULL(tm);
  if (tm) LLVMDisposeTargetMachine(tm);
}

static void test_timing(void) {
  LLVMContextRef ctx = LLVMContextCreate();
  for (int level = 0; level <= 3; level += 3) {
    snc_jit_options opt = snc_jit_default_options();
    opt.opt_level = level;
    snc_error err = {{0}};
    snc_jit *j = snc_jit_new(build_saxpy(ctx), &opt, &err);
    if (!j) fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_FATAL(j != NULL);
    const snc_jit_timing *t = snc_jit_timing_of(j);
    CU_ASSERT(t->total > 0);
    CU_ASSERT(t->optimize > 0 && t->codegen > 0 && t->link > 0);
    CU_ASSERT_DOUBLE_EQUAL(t->total, t->optimize + t->codegen + t->link, 1e-12);
    void (*saxpy)(float *, const float *, float, int64_t) =
        (void (*)(float *, const float *, float, int64_t))(uintptr_t)snc_jit_lookup(j, "saxpy", &err);
    CU_ASSERT_FATAL(saxpy != NULL);
    static float y[1003] __attribute__((aligned(64))), x[1003];
    for (int i = 0; i < 1003; i++) y[i] = (float)i, x[i] = 1.0f;
    saxpy(y, x, 2.0f, 1003);
    int ok = 1;
    for (int i = 0; i < 1003; i++) ok &= y[i] == (float)i + 2.0f;
    CU_ASSERT(ok);
    print_timing(level ? "saxpy O3" : "saxpy O0", j);
    snc_jit_free(j);
  }
  LLVMContextDispose(ctx);
}

static void register_tests(void) {
  SNC_SUITE("jit", {"dot16 <16 x float> fma, zmm in the host assembly", test_dot16},
            {"GOMP_parallel with 2 threads, barrier, thread numbers", test_openmp},
            {"symbol policy: refused, allowed, caller-supplied, codegen libcalls", test_refuses_symbols},
            {"a module that does not verify is refused", test_refuses_broken_module},
            {"compile time reported", test_timing});
  SNC_SUITE("target", {"object/assembly/bitcode/IR for host, x86-64, aarch64", test_writer},
            {"unknown triple, CPU, feature", test_bad_targets});
}

SNC_TEST_MAIN(register_tests)
