/* The compiled-module cache (include/snc/jit.h): store and hit, keys, corrupt, truncated and
 * stale entries rebuilt and never trusted, workers sharing one cache, an unwritable cache, the
 * default directory, and the siamese module compiled on two threads read back. */
#include <dirent.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <llvm-c/Core.h>
#include <zlib.h>

#include "snc/autodiff.h"
#include "snc/codegen.h"
#include "snc/frontend.h"
#include "snc/jit.h"
#include "snc/target.h"
#include "testutil.h"

static char g_dir[64];

static void rm_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) rm_tree(p);
        else remove(p);
      }
    closedir(d);
  }
  rmdir(dir);
}

static void rm_dir(void) { rm_tree(g_dir); }

/* A fresh cache directory per test: <tmp>/<name> (not created: the cache creates it). */
static const char *cache_dir(const char *name, char *buf, size_t n) {
  if (!g_dir[0]) {
    snprintf(g_dir, sizeof g_dir, "/tmp/snc_jit_cache_XXXXXX");
    if (!mkdtemp(g_dir)) abort();
    atexit(rm_dir);
  }
  snprintf(buf, n, "%s/%s", g_dir, name);
  rm_tree(buf);
  return buf;
}

/* float dot(const float *a, const float *b, i64 n): a loop with a float sum, scaled by `scale`. */
static LLVMModuleRef build_dot(LLVMContextRef ctx, double scale) {
  LLVMModuleRef m = LLVMModuleCreateWithNameInContext("dot", ctx);
  LLVMTypeRef f32 = LLVMFloatTypeInContext(ctx), i64 = LLVMInt64TypeInContext(ctx);
  LLVMTypeRef ptr = LLVMPointerTypeInContext(ctx, 0);
  LLVMTypeRef params[] = {ptr, ptr, i64};
  LLVMValueRef fn = LLVMAddFunction(m, "dot", LLVMFunctionType(f32, params, 3, 0));
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(ctx, fn, "entry");
  LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(ctx, fn, "loop");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(ctx, fn, "done");
  LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
  LLVMPositionBuilderAtEnd(b, entry);
  LLVMBuildBr(b, loop);
  LLVMPositionBuilderAtEnd(b, loop);
  LLVMValueRef i = LLVMBuildPhi(b, i64, "i"), acc = LLVMBuildPhi(b, f32, "acc");
  LLVMValueRef pa = LLVMBuildGEP2(b, f32, LLVMGetParam(fn, 0), &i, 1, "");
  LLVMValueRef pb = LLVMBuildGEP2(b, f32, LLVMGetParam(fn, 1), &i, 1, "");
  LLVMValueRef prod = LLVMBuildFMul(b, LLVMBuildLoad2(b, f32, pa, ""), LLVMBuildLoad2(b, f32, pb, ""), "");
  LLVMValueRef sum = LLVMBuildFAdd(b, acc, prod, "sum");
  LLVMValueRef next = LLVMBuildAdd(b, i, LLVMConstInt(i64, 1, 0), "next");
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, next, LLVMGetParam(fn, 2), ""), loop, done);
  LLVMValueRef iv[] = {LLVMConstInt(i64, 0, 0), next}, av[] = {LLVMConstReal(f32, 0), sum};
  LLVMBasicBlockRef from[] = {entry, loop};
  LLVMAddIncoming(i, iv, from, 2);
  LLVMAddIncoming(acc, av, from, 2);
  LLVMPositionBuilderAtEnd(b, done);
  LLVMBuildRet(b, LLVMBuildFMul(b, sum, LLVMConstReal(f32, scale), ""));
  LLVMDisposeBuilder(b);
  return m;
}

/* Compiles build_dot(scale) with the cache in dir at opt_level; checks dot's value; returns the
 * cache status (-1 when the JIT failed or the value is wrong). */
static int compile_dot(const char *dir, double scale, int opt_level) {
  LLVMContextRef ctx = LLVMContextCreate();
  snc_jit_options o = snc_jit_default_options();
  o.cache_dir = dir;
  o.opt_level = opt_level;
  snc_error err = {{0}};
  snc_jit *j = snc_jit_new(build_dot(ctx, scale), &o, &err);
  LLVMContextDispose(ctx);
  if (!j) {
    fprintf(stderr, "%s\n", err.msg);
    return -1;
  }
  float (*dot)(const float *, const float *, int64_t) =
      (float (*)(const float *, const float *, int64_t))(uintptr_t)snc_jit_lookup(j, "dot", &err);
  float a[37], b[37], want = 0;
  for (int i = 0; i < 37; i++) a[i] = 0.5f + (float)i, b[i] = 2.0f - 0.25f * (float)i, want += a[i] * b[i];
  int st = snc_jit_timing_of(j)->cache_status;
  const snc_jit_timing *t = snc_jit_timing_of(j);
  if (st == SNC_JIT_CACHE_HIT && (t->optimize != 0 || t->codegen != 0 || t->threads != 0)) st = -1;
  if (!dot || dot(a, b, 37) != want * (float)scale) st = -1;
  snc_jit_free(j);
  return st;
}

/* The key of build_dot(scale) at opt_level for the host. */
static snc_jit_cache_key key_of(double scale, int opt_level) {
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef m = build_dot(ctx, scale);
  snc_error err = {{0}};
  LLVMTargetMachineRef tm = snc_cg_target_host(&err);
  snc_jit_cache_key k;
  CU_ASSERT_FATAL(tm && snc_jit_cache_key_of(m, tm, opt_level, &k, &err) == 0);
  LLVMDisposeTargetMachine(tm);
  LLVMDisposeModule(m);
  LLVMContextDispose(ctx);
  return k;
}

static int count_files(const char *dir, const char *part) {
  DIR *d = opendir(dir);
  int n = 0;
  if (!d) return -1;
  for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, part) != NULL;
  closedir(d);
  return n;
}

/* ------------------------------------------------------------------------------------------ tests */

static void test_store_then_hit(void) {
  char dir[256];
  cache_dir("hit", dir, sizeof dir);
  CU_ASSERT_EQUAL(compile_dot(dir, 3.0, 3), SNC_JIT_CACHE_STORED); /* creates the directory */
  CU_ASSERT_EQUAL(count_files(dir, ".jit"), 1);
  CU_ASSERT_EQUAL(compile_dot(dir, 3.0, 3), SNC_JIT_CACHE_HIT);
  CU_ASSERT_EQUAL(compile_dot(dir, 3.0, 3), SNC_JIT_CACHE_HIT);
  CU_ASSERT_EQUAL(compile_dot(dir, 5.0, 3), SNC_JIT_CACHE_STORED); /* another module */
  CU_ASSERT_EQUAL(compile_dot(dir, 3.0, 2), SNC_JIT_CACHE_STORED); /* another level */
  CU_ASSERT_EQUAL(count_files(dir, ".jit"), 3);
  CU_ASSERT_EQUAL(count_files(dir, ".tmp."), 0);
  /* no directory: the cache is off, and dumps (which need the pipeline) bypass it */
  CU_ASSERT_EQUAL(compile_dot(NULL, 3.0, 3), SNC_JIT_CACHE_OFF);
  LLVMContextRef ctx = LLVMContextCreate();
  snc_jit_options o = snc_jit_default_options();
  o.cache_dir = dir;
  char *ir = NULL;
  size_t n = 0;
  o.dump_llvm = open_memstream(&ir, &n);
  snc_error err = {{0}};
  snc_jit *j = snc_jit_new(build_dot(ctx, 3.0), &o, &err);
  fclose(o.dump_llvm);
  CU_ASSERT_FATAL(j != NULL);
  CU_ASSERT_EQUAL(snc_jit_timing_of(j)->cache_status, SNC_JIT_CACHE_OFF);
  CU_ASSERT_PTR_NOT_NULL(strstr(ir, "after optimisation"));
  snc_jit_free(j);
  LLVMContextDispose(ctx);
  free(ir);
}

static void test_keys(void) {
  snc_jit_cache_key a = key_of(3.0, 3), b = key_of(3.0, 3), c = key_of(3.5, 3), d = key_of(3.0, 0);
  CU_ASSERT(a.hash[0] == b.hash[0] && a.hash[1] == b.hash[1]);
  CU_ASSERT_STRING_EQUAL(a.text, b.text);
  CU_ASSERT(a.hash[0] != c.hash[0] || a.hash[1] != c.hash[1]);
  CU_ASSERT(a.hash[0] != d.hash[0] || a.hash[1] != d.hash[1]);
  CU_ASSERT_PTR_NOT_NULL(strstr(a.text, "llvm 19."));
  CU_ASSERT_PTR_NOT_NULL(strstr(a.text, "O3"));
  CU_ASSERT_PTR_NOT_NULL(strstr(d.text, "O0"));
  CU_ASSERT_PTR_NOT_NULL(strstr(a.text, "snc build "));
  char *triple = LLVMGetDefaultTargetTriple();
  CU_ASSERT_PTR_NOT_NULL(strstr(a.text, triple));
  LLVMDisposeMessage(triple);
}

static void write_bytes(const char *path, const unsigned char *b, size_t n) {
  FILE *f = fopen(path, "wb");
  CU_ASSERT_FATAL(f != NULL);
  CU_ASSERT_EQUAL(fwrite(b, 1, n, f), n);
  fclose(f);
}

/* One damaged entry after another: each is reported by load (-1, a reason), never used, and the
 * JIT rebuilds it; afterwards the entry is whole again (load 1, the next compile a hit). */
static void test_corrupt_rebuilt(void) {
  char dir[256], path[512];
  cache_dir("corrupt", dir, sizeof dir);
  CU_ASSERT_FATAL(compile_dot(dir, 7.0, 3) == SNC_JIT_CACHE_STORED);
  snc_jit_cache_key k = key_of(7.0, 3);
  snc_jit_cache_path(dir, &k, path, sizeof path);
  struct stat st;
  CU_ASSERT_FATAL(stat(path, &st) == 0);
  size_t n = (size_t)st.st_size;
  unsigned char *good = malloc(n + 16), *bad = malloc(n + 16);
  FILE *f = fopen(path, "rb");
  CU_ASSERT_FATAL(f && fread(good, 1, n, f) == n);
  fclose(f);
  static const struct {
    const char *what, *reason;
  } cases[] = {
      {"a flipped byte in the machine code", "payload checksum"},
      {"a flipped byte in the header", "header checksum"},
      {"truncated to half", "truncated"},
      {"truncated inside the header", "truncated"},
      {"empty", "truncated"},
      {"bytes appended", "truncated or padded"},
      {"another format version", "stale: format version"},
      {"another magic", "bad magic"},
      {"the entry of another key", "stale: written for another key"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    memcpy(bad, good, n);
    size_t m = n;
    switch (c) {
    case 0: bad[n - 100] ^= 0x40; break;
    case 1: bad[33] ^= 0x01; break; /* the payload length */
    case 2: m = n / 2; break;
    case 3: m = 20; break;
    case 4: m = 0; break;
    case 5: memset(bad + n, 0, 16), m = n + 16; break;
    case 6: bad[8] = 99; break; /* a valid header of format 99: stale, not merely damaged */
    case 7: bad[0] = 'X'; break;
    case 8: bad[16] ^= 0x80; break; /* a valid header with another key hash */
    }
    if (c == 6 || c == 8) { /* the header checksum made right again */
      uint32_t h = (uint32_t)crc32(crc32(0L, Z_NULL, 0), bad, 44);
      for (int i = 0; i < 4; i++) bad[44 + i] = (unsigned char)(h >> (8 * i));
    }
    write_bytes(path, bad, m);
    LLVMMemoryBufferRef objs[SNC_JIT_CACHE_MAX_OBJECTS] = {NULL};
    int nobj = 0;
    snc_error why = {{0}};
    int got = snc_jit_cache_load(dir, &k, objs, &nobj, &why);
    CU_ASSERT_EQUAL(got, -1);
    CU_ASSERT_EQUAL(nobj, 0);
    if (!strstr(why.msg, cases[c].reason)) printf("\n    %s: '%s'", cases[c].what, why.msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(why.msg, cases[c].reason));
    CU_ASSERT_EQUAL(compile_dot(dir, 7.0, 3), SNC_JIT_CACHE_REBUILT);
    got = snc_jit_cache_load(dir, &k, objs, &nobj, &why);
    CU_ASSERT_EQUAL(got, 1);
    for (int i = 0; i < nobj; i++) LLVMDisposeMemoryBuffer(objs[i]);
    CU_ASSERT_EQUAL(compile_dot(dir, 7.0, 3), SNC_JIT_CACHE_HIT);
  }
  /* a whole entry whose machine code is not what the module defines (another module's object
   * under this key, checksums fixed): it does not link, so it is compiled afresh and replaced */
  CU_ASSERT_FATAL(compile_dot(dir, 9.0, 3) == SNC_JIT_CACHE_STORED);
  snc_jit_cache_key k9 = key_of(9.0, 3);
  LLVMMemoryBufferRef objs[SNC_JIT_CACHE_MAX_OBJECTS] = {NULL};
  int nobj = 0;
  snc_error why = {{0}};
  CU_ASSERT_FATAL(snc_jit_cache_load(dir, &k9, objs, &nobj, &why) == 1);
  unsigned char *bytes = NULL;
  size_t len = 0;
  LLVMMemoryBufferRef empty = LLVMCreateMemoryBufferWithMemoryRangeCopy("\177ELF", 4, "x");
  CU_ASSERT_FATAL(snc_jit_cache_pack(&k, &empty, 1, &bytes, &len) == 0);
  CU_ASSERT_FATAL(snc_jit_cache_store(dir, &k, bytes, len, &why) == 0);
  CU_ASSERT_EQUAL(compile_dot(dir, 7.0, 3), SNC_JIT_CACHE_REBUILT);
  CU_ASSERT_EQUAL(compile_dot(dir, 7.0, 3), SNC_JIT_CACHE_HIT);
  LLVMDisposeMemoryBuffer(empty);
  for (int i = 0; i < nobj; i++) LLVMDisposeMemoryBuffer(objs[i]);
  free(bytes);
  free(good);
  free(bad);
}

/* Six processes compile the same two modules into one empty cache at once: every one gets working
 * code, the entries are whole afterwards and no temporary is left. */
static void test_concurrent_workers(void) {
  char dir[256];
  cache_dir("shared", dir, sizeof dir);
  pid_t pid[6];
  for (int i = 0; i < 6; i++) {
    fflush(stdout);
    if ((pid[i] = fork()) == 0) {
      int ok = 1;
      for (int rep = 0; rep < 3; rep++) ok &= compile_dot(dir, 11.0, 3) > 0 && compile_dot(dir, 13.0, 3) > 0;
      _exit(ok ? 0 : 1);
    }
    CU_ASSERT_FATAL(pid[i] > 0);
  }
  for (int i = 0; i < 6; i++) {
    int st = -1;
    waitpid(pid[i], &st, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  CU_ASSERT_EQUAL(count_files(dir, ".jit"), 2);
  CU_ASSERT_EQUAL(count_files(dir, ".tmp."), 0);
  CU_ASSERT_EQUAL(compile_dot(dir, 11.0, 3), SNC_JIT_CACHE_HIT);
  CU_ASSERT_EQUAL(compile_dot(dir, 13.0, 3), SNC_JIT_CACHE_HIT);
}

static void test_unwritable(void) {
  char dir[256], sub[300];
  cache_dir("file", dir, sizeof dir);
  FILE *f = fopen(dir, "w"); /* a regular file where the directory should be */
  CU_ASSERT_FATAL(f != NULL);
  fclose(f);
  snprintf(sub, sizeof sub, "%s/snc", dir);
  CU_ASSERT_EQUAL(compile_dot(sub, 3.0, 3), SNC_JIT_CACHE_UNWRITABLE);
  CU_ASSERT_EQUAL(compile_dot(dir, 3.0, 3), SNC_JIT_CACHE_UNWRITABLE);
  remove(dir);
}

static void test_default_dir(void) {
  char buf[512];
  char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
  setenv("SNC_CACHE_DIR", "/x/y", 1);
  CU_ASSERT_STRING_EQUAL(snc_jit_cache_default_dir(buf, sizeof buf), "/x/y");
  setenv("SNC_CACHE_DIR", "", 1); /* empty: no cache */
  CU_ASSERT_PTR_NULL(snc_jit_cache_default_dir(buf, sizeof buf));
  unsetenv("SNC_CACHE_DIR");
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  CU_ASSERT_STRING_EQUAL(snc_jit_cache_default_dir(buf, sizeof buf), "/xdg/snc");
  unsetenv("XDG_CACHE_HOME");
  setenv("HOME", "/home/u", 1);
  CU_ASSERT_STRING_EQUAL(snc_jit_cache_default_dir(buf, sizeof buf), "/home/u/.cache/snc");
  unsetenv("HOME");
  CU_ASSERT_PTR_NULL(snc_jit_cache_default_dir(buf, sizeof buf));
  if (old_home) setenv("HOME", old_home, 1);
  free(old_home);
}

/* The siamese training module compiled on two threads (two objects in the entry), then read back:
 * the same entry points, and no pipeline run. */
static void test_siamese_two_objects(void) {
  char dir[256];
  cache_dir("siamese", dir, sizeof dir);
  snc_error err = {{0}};
  snc_graph *g = snc_model_load(SNC_SRC("models/siamese.yaml"), NULL, 0, &err);
  CU_ASSERT_FATAL(g && snc_autodiff(g, 0, &err) == 0);
  int status[2] = {0, 0}, threads[2] = {0, 0};
  for (int rep = 0; rep < 2; rep++) {
    snc_program *p = snc_program_build(g, NULL, &err);
    CU_ASSERT_FATAL(p != NULL);
    snc_jit_options o = snc_jit_default_options();
    o.cache_dir = dir;
    o.compile_threads = 2;
    LLVMModuleRef m = p->module;
    p->module = NULL;
    snc_jit *j = snc_jit_new(m, &o, &err);
    if (!j) fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_FATAL(j != NULL);
    status[rep] = snc_jit_timing_of(j)->cache_status;
    threads[rep] = snc_jit_timing_of(j)->threads;
    printf("\n    siamese: %s in %.3f s (cache %.3f s, link %.3f s) ", snc_jit_cache_status_name(status[rep]),
           snc_jit_timing_of(j)->total, snc_jit_timing_of(j)->cache, snc_jit_timing_of(j)->link);
    CU_ASSERT_PTR_NOT_NULL(snc_jit_lookup(j, "siamese_train_step", &err));
    CU_ASSERT_PTR_NOT_NULL(snc_jit_lookup(j, "siamese_eval", &err));
    CU_ASSERT_PTR_NOT_NULL(snc_jit_lookup(j, "siamese_init", &err));
    snc_jit_free(j);
    snc_program_free(p);
  }
  CU_ASSERT_EQUAL(status[0], SNC_JIT_CACHE_STORED);
  CU_ASSERT_EQUAL(threads[0], 2);
  CU_ASSERT_EQUAL(status[1], SNC_JIT_CACHE_HIT);
  CU_ASSERT_EQUAL(threads[1], 0);
  snc_graph_free(g);
}

static void register_tests(void) {
  SNC_SUITE("jit_cache", {"an entry is stored, then hit; other modules and levels miss", test_store_then_hit},
            {"keys: module, level, LLVM version, triple", test_keys},
            {"corrupt, truncated, stale entries are rebuilt, never trusted", test_corrupt_rebuilt},
            {"six processes share one cache", test_concurrent_workers},
            {"an unwritable cache only costs the entry", test_unwritable},
            {"default directory: SNC_CACHE_DIR, XDG_CACHE_HOME, HOME", test_default_dir},
            {"siamese module on two threads: two objects stored and read back", test_siamese_two_objects});
}

SNC_TEST_MAIN(register_tests)
