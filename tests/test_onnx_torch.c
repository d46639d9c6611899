/* ONNX against PyTorch (tests/onnx/torch_nets.py; skipped with a message when torch or onnx cannot
 * be imported):
 *   - four PyTorch networks (the seed's digit CNN exported without constant folding, LeNet-5 at
 *     opset 11, an MLP with the other activations at opset 17, a batch-norm ReLU CNN like
 *     siamese_plus's branch), random weights: `snc import` + `snrun infer` give PyTorch's outputs;
 *     `snrun infer` on the .onnx file itself gives the same bits as on the imported model;
 *   - the imported digit CNN trained by `snrun train`, compiled by `snc compile` into an object a C
 *     program links (the same bits as `snrun infer`), exported back (checker, re-import: same graph,
 *     same bits);
 *   - models/digit_cnn.yaml trained by snrun, exported: the checker passes, the re-import is the same
 *     graph with the same outputs, and PyTorch with those weights gives the same outputs.
 *
 * Tolerance against PyTorch: |snc - torch| <= RTOL |torch| + ATOL max|torch| per output tensor, as
 * tests/test_golden.c argues for forward values: both sides compute in float32 with different
 * summation orders; the longest dot products here have K = 864 terms (the batch-norm CNN's 96x3x3
 * linear layer), random-sign rounding grows like sqrt(K) u = 2e-6 of the terms' size, and tanh,
 * softmax and batch norm do not amplify it. ATOL = 2e-5 (test_golden's FWD_ATOL) leaves a factor of
 * 10; RTOL = 1e-5 is 80 ulp. A wrong padding, layout, eps or transposed weight moves outputs by 1e-2
 * or more. Between snc's own paths (JIT in snrun, the linked object, a re-import) results are
 * bitwise equal: the same graph, weights and code. */
#include <string.h>

#include "onnx_util.h"
#include "testutil.h"

#define RTOL 1e-5
#define ATOL 2e-5
#define PY_SCRIPT SNC_SOURCE_DIR "/tests/onnx/torch_nets.py"

static const char *py(void) { return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3"; }

static int have_torch = -1; /* set by the first test */

static int need_torch(void) {
  if (have_torch < 0) {
    int rc = sh(0, "%s %s export %s", py(), PY_SCRIPT, tmp);
    have_torch = rc == 0;
    if (rc == 3) printf("\n  SKIP: %s  (tools/deps.sh --test-extras installs python3-torch)", strtok((char *)last_log(), "\n"));
    else CU_ASSERT_EQUAL(rc, 0); /* the script itself failed: that is a failure, not a skip */
  }
  return have_torch;
}

static const char *const nets[] = {"digit_cnn", "lenet5", "mlp", "bn_cnn"};

static void test_import_matches_torch(void) {
  if (!need_torch()) return;
  for (int k = 0; k < 4; k++) {
    const char *n = nets[k];
    char got[512], want[512], direct[512];
    CU_ASSERT_EQUAL_FATAL(sh(0, "%s import %s/%s.onnx -o %s/%s.yaml --weights %s/%s.safetensors", SNC, tmp, n, tmp, n, tmp, n), 0);
    CU_ASSERT_EQUAL_FATAL(sh(0, "%s infer %s/%s.yaml --checkpoint %s/%s.safetensors --input image=%s/%s_x.npy --output %s/out_%s",
                             SNRUN, tmp, n, tmp, n, tmp, n, tmp, n), 0);
    snprintf(got, sizeof got, "%s/out_%s/logits.npy", tmp, n);
    snprintf(want, sizeof want, "%s/%s_y.npy", tmp, n);
    CU_ASSERT(npy_close(got, want, RTOL, ATOL, 0, n));
    /* the .onnx file itself, weights from its initializers, the reference executor this time */
    CU_ASSERT_EQUAL_FATAL(sh(0, "%s infer %s/%s.onnx --backend ref --input image=%s/%s_x.npy --output %s/direct_%s", SNRUN,
                             tmp, n, tmp, n, tmp, n), 0);
    snprintf(direct, sizeof direct, "%s/direct_%s/logits.npy", tmp, n);
    CU_ASSERT(npy_close(direct, want, RTOL, ATOL, 0, "  .onnx on the reference executor"));
  }
}

/* raw float32 of a .npy's data, for the linked C program */
static int npy_to_raw(const char *npy, const char *raw) {
  snc_npy a;
  snc_error err = {0};
  if (snc_npy_read(npy, &a, &err)) return printf("\n  %s\n", err.msg), -1;
  FILE *f = fopen(raw, "wb");
  int ok = f && fwrite(a.data, 4, (size_t)a.n, f) == (size_t)a.n;
  if (f) ok &= fclose(f) == 0;
  snc_npy_free(&a);
  return ok ? 0 : -1;
}

static int raw_to_npy(const char *raw, const char *npy, int64_t n, int64_t per) {
  float *y = malloc((size_t)(n * per) * 4);
  FILE *f = fopen(raw, "rb");
  int ok = y && f && fread(y, 4, (size_t)(n * per), f) == (size_t)(n * per);
  if (f) fclose(f);
  snc_error err = {0};
  int64_t dims[2] = {n, per};
  if (ok && snc_npy_write(npy, SNC_F32, 2, dims, y, &err)) ok = 0, printf("\n  %s\n", err.msg);
  free(y);
  return ok ? 0 : -1;
}

static void test_import_train_compile_export(void) {
  if (!need_torch()) return;
  char a[512], b[512];
  /* 1. import with the digits template (label input, loss, data) */
  CU_ASSERT_EQUAL_FATAL(sh(0, "%s import %s/digit_cnn.onnx --train mnist_digits -o %s/dct.yaml", SNC, tmp, tmp), 0);
  /* 2. train: 3 epochs on the bundled digits; better than chance (10%) by far */
  CU_ASSERT_EQUAL_FATAL(sh(0, "%s train %s/dct.yaml --epochs 3 --save %s/dct.safetensors", SNRUN, tmp, tmp), 0);
  const char *acc = strstr(last_log(), "final test accuracy ");
  CU_ASSERT_PTR_NOT_NULL_FATAL(acc);
  double pct = atof(acc + strlen("final test accuracy "));
  printf("\n  imported digit CNN trained by snrun: %.2f%% test accuracy after 3 epochs", pct);
  CU_ASSERT(pct > 50);
  /* 3. compile into an object + header, link a C program, run it */
  CU_ASSERT_EQUAL_FATAL(sh(0, "%s compile %s/dct.yaml --embed-weights %s/dct.safetensors -o %s/dct.o --header %s/digit_cnn.h",
                           SNC, tmp, tmp, tmp, tmp), 0);
  CU_ASSERT_EQUAL_FATAL(sh(0, "cc -std=c99 -Wall -Wextra -Werror -O2 -I%s %s/tests/onnx/link_main.c %s/dct.o -fopenmp -lm -o %s/link_main",
                           tmp, SNC_SOURCE_DIR, tmp, tmp), 0);
  snprintf(a, sizeof a, "%s/x.f32", tmp);
  snprintf(b, sizeof b, "%s/digit_cnn_x.npy", tmp);
  CU_ASSERT_EQUAL_FATAL(npy_to_raw(b, a), 0);
  CU_ASSERT_EQUAL_FATAL(sh(0, "%s/link_main %s/x.f32 %s/y.f32", tmp, tmp, tmp), 0);
  snprintf(a, sizeof a, "%s/y.f32", tmp);
  snprintf(b, sizeof b, "%s/linked.npy", tmp);
  CU_ASSERT_EQUAL_FATAL(raw_to_npy(a, b, 37, 10), 0);
  CU_ASSERT_EQUAL_FATAL(sh(0, "%s infer %s/dct.yaml --checkpoint %s/dct.safetensors --input image=%s/digit_cnn_x.npy --output %s/dct_out",
                           SNRUN, tmp, tmp, tmp, tmp), 0);
  snprintf(a, sizeof a, "%s/dct_out/logits.npy", tmp);
  CU_ASSERT(npy_close(b, a, 0, 0, 1, "linked C program vs snrun infer"));
  /* the .onnx file itself: snrun train and eval (the digits template applies: [1,14,14] in, 10 out), snc check */
  CU_ASSERT_EQUAL(sh(0, "%s train %s/digit_cnn.onnx --epochs 1 --save %s/direct.safetensors -q", SNRUN, tmp, tmp), 0);
  CU_ASSERT_EQUAL(sh(0, "%s eval %s/digit_cnn.onnx --checkpoint %s/direct.safetensors", SNRUN, tmp, tmp), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(last_log(), "1000 test samples"));
  CU_ASSERT_EQUAL(sh(0, "%s check %s/digit_cnn.onnx -q", SNC, tmp), 0);
  /* 4. export back: the checker, then the re-import computes the same bits */
  CU_ASSERT_EQUAL_FATAL(sh(0, "%s export %s/dct.yaml --checkpoint %s/dct.safetensors -o %s/back.onnx", SNC, tmp, tmp, tmp), 0);
  CU_ASSERT_EQUAL(sh(0, "%s %s check %s/back.onnx", py(), PY_SCRIPT, tmp), 0);
  CU_ASSERT_EQUAL_FATAL(sh(0, "%s infer %s/back.onnx --input image=%s/digit_cnn_x.npy --output %s/back_out", SNRUN, tmp, tmp, tmp), 0);
  snprintf(b, sizeof b, "%s/back_out/logits.npy", tmp);
  CU_ASSERT(npy_close(b, a, 0, 0, 1, "exported and re-imported vs trained"));
}

static void test_snc_trained_export(void) {
  if (!need_torch()) return;
  char a[512], b[512];
  CU_ASSERT_EQUAL_FATAL(sh(0, "%s train %s --epochs 2 --save %s/dc.safetensors -q", SNRUN, SNC_SRC("models/digit_cnn.yaml"), tmp), 0);
  CU_ASSERT_EQUAL_FATAL(sh(0, "%s export %s --checkpoint %s/dc.safetensors -o %s/dc.onnx", SNC, SNC_SRC("models/digit_cnn.yaml"), tmp, tmp), 0);
  /* PyTorch: the checker (full), then the seed's network with these weights */
  CU_ASSERT_EQUAL_FATAL(sh(0, "%s %s run %s/dc.onnx %s/digit_cnn_x.npy %s/dc_torch.npy", py(), PY_SCRIPT, tmp, tmp, tmp), 0);
  CU_ASSERT_EQUAL_FATAL(sh(0, "%s infer %s --checkpoint %s/dc.safetensors --input image=%s/digit_cnn_x.npy --output %s/dc_out", SNRUN,
                           SNC_SRC("models/digit_cnn.yaml"), tmp, tmp, tmp), 0);
  snprintf(a, sizeof a, "%s/dc_out/logits.npy", tmp);
  snprintf(b, sizeof b, "%s/dc_torch.npy", tmp);
  CU_ASSERT(npy_close(a, b, RTOL, ATOL, 0, "snc-trained digit CNN: snrun vs PyTorch"));
  /* re-import: the same graph, the same outputs */
  CU_ASSERT_EQUAL_FATAL(sh(0, "%s import %s/dc.onnx -o %s/dc_re.yaml --weights %s/dc_re.safetensors", SNC, tmp, tmp, tmp), 0);
  snc_error err = {0};
  char path[512];
  snprintf(path, sizeof path, "%s/dc_re.yaml", tmp);
  snc_graph *orig = snc_model_load(SNC_SRC("models/digit_cnn.yaml"), NULL, 0, &err), *re = snc_model_load(path, NULL, 0, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(orig);
  CU_ASSERT_PTR_NOT_NULL_FATAL(re);
  CU_ASSERT(same_eval_graph(orig, re));
  snc_graph_free(orig), snc_graph_free(re);
  CU_ASSERT_EQUAL_FATAL(sh(0, "%s infer %s/dc_re.yaml --checkpoint %s/dc_re.safetensors --input image=%s/digit_cnn_x.npy --output %s/dc_re_out",
                           SNRUN, tmp, tmp, tmp, tmp), 0);
  snprintf(b, sizeof b, "%s/dc_re_out/logits.npy", tmp);
  CU_ASSERT(npy_close(b, a, 0, 0, 1, "re-imported vs original"));
}

static void register_tests(void) {
  make_tmp();
  atexit(remove_tmp);
  SNC_SUITE("onnx_torch", {"four PyTorch networks: snc import + snrun infer = PyTorch", test_import_matches_torch},
            {"imported CNN: snrun train, snc compile + cc, snc export", test_import_train_compile_export},
            {"snc-trained digit CNN: export, checker, re-import, PyTorch", test_snc_trained_export});
}

SNC_TEST_MAIN(register_tests)
