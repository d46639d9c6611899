/* Numeric and resource faults (docs/robustness.md): --check-numerics, an unwritable output directory,
 * a full disk (RLIMIT_FSIZE), a missing OpenMP runtime or LLVM target at JIT time, a checkpoint of
 * another model or of the wrong shape. Each must give a clear message, a non-zero exit status, and
 * leave every existing file as it was. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <llvm-c/Core.h>

#include "snc/autodiff.h"
#include "snc/data.h"
#include "snc/jit.h"
#include "snc/target.h"
#include "snc/train.h"
#include "testutil.h"

static char dir[64]; /* a fresh temporary directory for the whole run */

/* The fuzz harness's model: 40 parameters; its checkpoints are about 1.3 KiB. */
static const char tiny[] =
    "model: tiny\n"
    "inputs:\n  image: {shape: [1, 14, 14]}\n  label: {shape: [], dtype: int32}\n"
    "graph:\n  - {name: p, avgpool2d: {kernel: %d}, from: image}\n  - {name: f, flatten}\n"
    "  - {name: h, linear: {units: 10}}\n"
    "losses:\n  - {name: ce, cross_entropy, from: [h, label]}\n"
    "training: {batch_size: 10, epochs: 1}\n"
    "data: {generator: mnist_digits, train: 20, test: 10}\n";

/* scale by 1e30 twice: Inf in the forward pass at 'bigger' (line 9) */
static const char overflow[] =
    "model: overflow\n"
    "inputs:\n  image: {shape: [1, 14, 14]}\n  label: {shape: [], dtype: int32}\n"
    "graph:\n  - {name: f, flatten, from: image}\n  - {name: h, linear: {units: 10}}\n"
    "  - {name: big, scale: {factor: 1e30}}\n"
    "  - {name: bigger, scale: {factor: 1e30}}\n"
    "losses:\n  - {name: ce, cross_entropy, from: [bigger, label]}\n"
    "training: {optimizer: sgd, lr: 0.1, batch_size: 10, epochs: 2}\n"
    "data: {generator: mnist_digits, train: 30, test: 10}\n";

/* bce on a linear layer's raw output: the log of a negative number (a NaN the step must not hide) */
static const char neglog[] =
    "model: neglog\n"
    "inputs:\n  image: {shape: [1, 14, 14]}\n  label: {shape: [], dtype: int32}\n"
    "graph:\n  - {name: f, flatten, from: image}\n"
    "  - {name: h, linear: {units: 10, init: {weight: {uniform: [-1, 1]}}}}\n"
    "  - {name: l1h, one_hot: {classes: 10}, from: label}\n"
    "losses:\n  - {name: b, bce, from: [h, l1h]}\n"
    "training: {optimizer: sgd, lr: 0.1, batch_size: 10, epochs: 2}\n"
    "data: {generator: mnist_digits, train: 50, test: 10}\n";

static const char *path_of(const char *name) {
  static char buf[8][256];
  static int k;
  char *p = buf[k++ % 8];
  snprintf(p, 256, "%s/%s", dir, name);
  return p;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
}

/* The whole file (malloc'd, *len bytes) or NULL. */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *b = malloc((size_t)n + 1);
  *len = fread(b, 1, (size_t)n, f);
  b[*len] = 0;
  fclose(f);
  return b;
}

/* Runs cmd through bash with stderr captured into out; returns the exit status (-1 on a signal). */
static int run(const char *cmd, char *out, size_t len) {
  char full[2048];
  snprintf(full, sizeof full, "bash -c '%s' 2>&1 >/dev/null", cmd);
  FILE *p = popen(full, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  size_t got = fread(out, 1, len - 1, p);
  out[got] = 0;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int same_file(const char *path, const char *bytes, size_t len) {
  size_t n;
  char *b = slurp(path, &n);
  int same = b && n == len && !memcmp(b, bytes, len);
  free(b);
  return same;
}


/* ---- numeric faults ---------------------------------------------------------------------------- */

static int train_text(const char *text, const char *name, const char *backend, int check, snc_error *err) {
  snc_graph *g = snc_model_load_text(text, strlen(text), name, NULL, 0, err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT_EQUAL_FATAL(snc_autodiff(g, 0, err), 0);
  snc_backend *be = snc_backend_new(backend, g, err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(be);
  snc_train_opts o = snc_train_defaults(g);
  o.quiet = 1;
  o.check_numerics = check;
  snc_train_result r = {0};
  int rc = snc_train(g, be, &o, &r, err);
  snc_train_result_free(&r);
  be->free(be);
  snc_graph_free(g);
  return rc;
}

static void test_numerics_overflow(void) {
  const char *backends[] = {"ref", "jit"};
  for (int b = 0; b < 2; b++) {
    snc_error err = {0};
    CU_ASSERT_EQUAL(train_text(overflow, "overflow.yaml", backends[b], 1, &err), -1);
    const char *want = "overflow.yaml: --check-numerics: epoch 1, step 1: the loss is nan; first tensor that went bad: "
                       "overflow.yaml:9:20: scale 'bigger' [B,10] (forward pass) holds -inf at element 0";
    if (strcmp(err.msg, want)) fprintf(stderr, "\n%s: %s\n", backends[b], err.msg);
    CU_ASSERT_STRING_EQUAL(err.msg, want);
    /* off: training runs to its end (the loss is NaN, nothing stops it) */
    CU_ASSERT_EQUAL(train_text(overflow, "overflow.yaml", backends[b], 0, &err), 0);
  }
}

static void test_numerics_cli(void) {
  /* through snrun: the log of a negative number, on the jit backend; exit status 1, the checkpoint
   * of the last good epoch kept */
  char cmd[1024], out[4096];
  write_text(path_of("neglog.yaml"), neglog);
  snprintf(cmd, sizeof cmd, "%s/snrun train %s --check-numerics -q", SNC_BINARY_DIR, path_of("neglog.yaml"));
  int st = run(cmd, out, sizeof out);
  CU_ASSERT_EQUAL(st, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "neglog.yaml: --check-numerics: epoch 1, step "));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "first tensor that went bad: "));
  if (st != 1 || !strstr(out, "--check-numerics: epoch 1")) fprintf(stderr, "\n%s\n", out);
  snprintf(cmd, sizeof cmd, "%s/snrun train %s --check-numerics -q --backend ref", SNC_BINARY_DIR, path_of("neglog.yaml"));
  CU_ASSERT_EQUAL(run(cmd, out, sizeof out), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "bce"));
}

/* ---- resource faults --------------------------------------------------------------------------- */

static void test_unwritable_dir(void) {
  char text[1024], cmd[1024], out[4096];
  snprintf(text, sizeof text, tiny, 7);
  write_text(path_of("tiny.yaml"), text);
  write_text(path_of("plain_file"), "not a directory\n");
  /* (root ignores permission bits, so the unwritable directories are a missing one and a file) */
  const char *bad[] = {"no_such_dir/run.safetensors", "plain_file/run.safetensors"};
  for (int i = 0; i < 2; i++) {
    snprintf(cmd, sizeof cmd, "%s/snrun train %s -q --backend ref --save %s", SNC_BINARY_DIR, path_of("tiny.yaml"),
             path_of(bad[i]));
    CU_ASSERT_EQUAL(run(cmd, out, sizeof out), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "cannot create"));
    snprintf(cmd, sizeof cmd, "%s/snc compile %s -o %s/x.o", SNC_BINARY_DIR, path_of("tiny.yaml"),
             path_of(i ? "plain_file" : "no_such_dir"));
    CU_ASSERT_EQUAL(run(cmd, out, sizeof out), 1);
    CU_ASSERT(strlen(out) > 0 && !strstr(out, "Assertion") && !strstr(out, "Sanitizer"));
    snprintf(cmd, sizeof cmd, "%s/snrun pairs %s --out %s/sub", SNC_BINARY_DIR, path_of("tiny.yaml"),
             path_of(i ? "plain_file" : "no_such_dir/deeper"));
    int st = run(cmd, out, sizeof out);
    CU_ASSERT(st != 0 && strlen(out) > 0);
  }
  size_t n;
  char *b = slurp(path_of("plain_file"), &n);
  CU_ASSERT(b && !strcmp(b, "not a directory\n"));
  free(b);
}

static void test_full_disk(void) {
  char text[1024], cmd[1024], out[4096];
  snprintf(text, sizeof text, tiny, 7);
  write_text(path_of("tiny.yaml"), text);
  /* a good checkpoint first, then the same run with files limited to 1 KiB: the writer fails
   * (EFBIG, as on a full disk), the old checkpoint stays byte for byte, no temporary file is left */
  const char *ck = path_of("full.safetensors");
  snprintf(cmd, sizeof cmd, "%s/snrun train %s -q --backend ref --save %s", SNC_BINARY_DIR, path_of("tiny.yaml"), ck);
  CU_ASSERT_EQUAL_FATAL(run(cmd, out, sizeof out), 0);
  size_t len;
  char *before = slurp(ck, &len);
  CU_ASSERT_FATAL(before && len > 1024);
  snprintf(cmd, sizeof cmd, "ulimit -f 1; trap \"\" XFSZ; exec %s/snrun train %s -q --backend ref --save %s --seed 9",
           SNC_BINARY_DIR, path_of("tiny.yaml"), ck);
  CU_ASSERT_EQUAL(run(cmd, out, sizeof out), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "cannot write"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "File too large"));
  CU_ASSERT(same_file(ck, before, len));
  /* snc compile: the object writer under the same limit leaves an existing object untouched */
  const char *obj = path_of("tiny.o");
  write_text(obj, "an older object\n");
  snprintf(cmd, sizeof cmd, "ulimit -f 1; trap \"\" XFSZ; exec %s/snc compile %s -o %s", SNC_BINARY_DIR,
           path_of("tiny.yaml"), obj);
  CU_ASSERT_EQUAL(run(cmd, out, sizeof out), 1);
  CU_ASSERT(strlen(out) > 0);
  CU_ASSERT(same_file(obj, "an older object\n", 16));
  /* the library: snc_ckpt_write in a child with RLIMIT_FSIZE */
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit rl = {2048, 2048};
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &rl);
    static float big[4096];
    snc_ckpt_tensor t = {"w", SNC_CKPT_F32, 1, {4096}, big};
    snc_error err = {0};
    int rc = snc_ckpt_write(ck, &t, 1, NULL, &err);
    _exit(rc == -1 && strstr(err.msg, "File too large") ? 0 : 1);
  }
  int st;
  waitpid(pid, &st, 0);
  CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  CU_ASSERT(same_file(ck, before, len));
  snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp && echo temporary file left >&2; exit 0", dir);
  CU_ASSERT_EQUAL(run(cmd, out, sizeof out), 0);
  CU_ASSERT_STRING_EQUAL(out, "");
  free(before);
}

/* A module calling an OpenMP entry point the JIT has no runtime for (LLVM's libomp ABI, not the
 * libgomp snc links): refused before any code runs, naming the symbol. Likewise a target LLVM lacks. */
static void test_jit_missing_runtime(void) {
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef m = LLVMModuleCreateWithNameInContext("omp", ctx);
  LLVMTypeRef vt = LLVMVoidTypeInContext(ctx);
  LLVMTypeRef fty = LLVMFunctionType(vt, NULL, 0, 0);
  LLVMValueRef fork = LLVMAddFunction(m, "__kmpc_fork_call", fty);
  LLVMValueRef f = LLVMAddFunction(m, "train_step", fty);
  LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, f, "entry"));
  LLVMBuildCall2(b, fty, fork, NULL, 0, "");
  LLVMBuildRetVoid(b);
  LLVMDisposeBuilder(b);
  snc_error err = {0};
  snc_jit *j = snc_jit_new(m, NULL, &err); /* takes m */
  CU_ASSERT_PTR_NULL(j);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "__kmpc_fork_call"));
  if (j) snc_jit_free(j);
  LLVMContextDispose(ctx);

  CU_ASSERT_PTR_NULL(snc_cg_target_new("nosucharch-unknown-linux-gnu", NULL, NULL, &err));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "unknown target triple"));
  char text[1024], cmd[1024], out[4096];
  snprintf(text, sizeof text, tiny, 7);
  write_text(path_of("tiny.yaml"), text);
  const char *obj = path_of("target.o");
  write_text(obj, "an older object\n");
  snprintf(cmd, sizeof cmd, "%s/snc compile %s --target nosucharch-unknown-linux-gnu -o %s", SNC_BINARY_DIR,
           path_of("tiny.yaml"), obj);
  CU_ASSERT_EQUAL(run(cmd, out, sizeof out), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "nosucharch"));
  CU_ASSERT(same_file(obj, "an older object\n", 16));
}

static void test_checkpoint_mismatch(void) {
  char text[1024], cmd[1024], out[4096];
  snprintf(text, sizeof text, tiny, 7);
  write_text(path_of("tiny.yaml"), text);
  snprintf(text, sizeof text, tiny, 14); /* the same model name, a [10,1] weight instead of [10,4] */
  write_text(path_of("tiny14.yaml"), text);
  write_text(path_of("overflow.yaml"), overflow);
  const char *ck = path_of("mm.safetensors");
  snprintf(cmd, sizeof cmd, "%s/snrun train %s -q --backend ref --save %s", SNC_BINARY_DIR, path_of("tiny.yaml"), ck);
  CU_ASSERT_EQUAL_FATAL(run(cmd, out, sizeof out), 0);
  size_t len;
  char *before = slurp(ck, &len);
  snprintf(cmd, sizeof cmd, "%s/snrun eval %s --checkpoint %s", SNC_BINARY_DIR, path_of("overflow.yaml"), ck);
  CU_ASSERT_EQUAL(run(cmd, out, sizeof out), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "checkpoint of model 'tiny'"));
  snprintf(cmd, sizeof cmd, "%s/snrun eval %s --checkpoint %s", SNC_BINARY_DIR, path_of("tiny14.yaml"), ck);
  CU_ASSERT_EQUAL(run(cmd, out, sizeof out), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "tensor 'h.weight' has shape [10,4], expected [10,1]"));
  snprintf(cmd, sizeof cmd, "%s/snc compile %s --embed-weights %s -o %s", SNC_BINARY_DIR, path_of("tiny14.yaml"), ck,
           path_of("mm.o"));
  CU_ASSERT_EQUAL(run(cmd, out, sizeof out), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "h.weight"));
  CU_ASSERT(access(path_of("mm.o"), F_OK) != 0);
  CU_ASSERT(same_file(ck, before, len));
  if (!strstr(out, "h.weight")) fprintf(stderr, "\n%s\n", out);
  free(before);
}

/* A shell whose soft stack limit is small (here 300 KiB): snrun raises it and the default thread
 * stack, since a Winograd convolution keeps up to 512 KiB of scratch on each thread's stack (the
 * siamese network's conv2 about 390 KiB). Before, this run ended in a segmentation fault. */
static void test_small_stack(void) {
  char cmd[1024], out[4096];
  snprintf(cmd, sizeof cmd, "ulimit -S -s 300 && %s/snrun train %s/models/siamese.yaml --epochs 1 --threads 2 --no-cache",
           SNC_BINARY_DIR, SNC_SOURCE_DIR);
  int rc = run(cmd, out, sizeof out);
  if (rc != 0) fprintf(stderr, "\n  exit %d: %s\n", rc, out);
  CU_ASSERT_EQUAL(rc, 0);
}

static void cleanup_dir(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static void register_tests(void) {
  snprintf(dir, sizeof dir, "/tmp/snc_robust.XXXXXX");
  if (!mkdtemp(dir)) abort();
  atexit(cleanup_dir);
  SNC_SUITE("robust", {"numerics_overflow", test_numerics_overflow}, {"numerics_cli", test_numerics_cli},
            {"unwritable_dir", test_unwritable_dir}, {"full_disk", test_full_disk},
            {"jit_missing_runtime", test_jit_missing_runtime}, {"checkpoint_mismatch", test_checkpoint_mismatch},
            {"small_stack", test_small_stack});
}
SNC_TEST_MAIN(register_tests)
