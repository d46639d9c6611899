/* ONNX import and export and the .npy files of `snrun infer`, without Python (test_onnx_torch.c
 * compares with PyTorch):
 *   - the bad-ONNX corpus (tests/onnx/bad, written by gen_bad.py): each file gives its message,
 *     names the file (and the node), and `snc import` exits 1 without writing anything;
 *   - tests/onnx/ops_zoo.yaml, every layer both directions know: export, re-import, the same ops and
 *     shapes, and the same outputs bit for bit on the reference executor;
 *   - .npy: a round trip, and bad files (truncated, Fortran order, float64, big-endian, bad magic,
 *     oversized header, trailing bytes, a shape the model does not take) each with its message. */
#include <string.h>

#include "onnx_util.h"
#include "snc/backend.h"
#include "snc/rng.h"
#include "testutil.h"

#define BAD SNC_SOURCE_DIR "/tests/onnx/bad/"

static const struct {
  const char *file, *msg;
} bad[] = {
    {"truncated.onnx", "truncated.onnx: not a valid ONNX model (the protobuf data is malformed or truncated)"},
    {"not_onnx.onnx", "not_onnx.onnx: not a valid ONNX model"},
    {"empty.onnx", "empty.onnx: empty file; not an ONNX model"},
    {"opset9.onnx", "opset9.onnx: opset 9 is not supported (snc imports opsets 11 to 17)"},
    {"unsupported_op.onnx", "unsupported_op.onnx: node 'erf_0' (Erf): operator 'Erf' is not supported"},
    {"missing_initializer.onnx", "missing_initializer.onnx: node 'conv_0' (Conv): input 1 'w' is not defined by an earlier "
                                 "node, an input or an initializer"},
    {"shape_mismatch.onnx", "shape_mismatch.onnx: node 'fc' (Gemm): B [10,99] (transposed) does not fit input [B,196]"},
    {"group2.onnx", "group2.onnx: node 'Conv_3' (Conv): group=2 is not supported"},
    {"float16_weight.onnx", "float16_weight.onnx: tensor 'w' has data type 10; supported: float32, int32, int64, double"},
    {"int64_input.onnx", "int64_input.onnx: input 'x' has element type 7; snc takes float32 (1) or int32 (6) inputs"},
    {"asymmetric_pads.onnx", "asymmetric_pads.onnx: node 'conv_0' (Conv): asymmetric pads [1, 1, 0, 0] are not supported"},
    {"output_shape.onnx", "output_shape.onnx: output 'y' is declared with another shape than the graph computes, [B,4,6,6]"},
    {"add_broadcast.onnx", "add_broadcast.onnx: node 'add_1' (Add): operands [B,4,6,6] and [B,1,8,8] differ in shape"},
    {"no_outputs_computed.onnx", "no_outputs_computed.onnx: output 'z' is not computed by any node"},
    {"dilated.onnx", "dilated.onnx: node 'conv_0' (Conv): dilations other than 1 are not supported"},
    {"../../fuzz/regressions/onnx/deep_nesting.onnx", "../../fuzz/regressions/onnx/deep_nesting.onnx: messages nested more "
                                                      "than 24 deep; not an ONNX model snc reads"},
};

static void test_bad_corpus(void) {
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    char path[512];
    snprintf(path, sizeof path, BAD "%s", bad[k].file);
    snc_onnx_model m;
    snc_error err = {0};
    int rc = snc_onnx_import(path, NULL, &m, &err);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_PTR_NULL(m.yaml); /* nothing half-made */
    /* the message: the path first, then the expected text */
    int ok = !strncmp(err.msg, BAD, strlen(BAD)) && strstr(err.msg, bad[k].msg) == err.msg + strlen(BAD);
    if (!ok) printf("\n  %s:\n    got      %s\n    expected %s%s", bad[k].file, err.msg, BAD, bad[k].msg);
    CU_ASSERT(ok);
    snc_onnx_model_free(&m);
  }
  /* the command line: exit status 1, the message on stderr, no output files */
  CU_ASSERT_EQUAL(sh(1, "%s import %sgroup2.onnx -o %s/g.yaml --weights %s/g.safetensors", SNC, BAD, tmp, tmp), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(last_log(), "node 'Conv_3' (Conv): group=2 is not supported"));
  char path[512];
  snprintf(path, sizeof path, "%s/g.yaml", tmp);
  CU_ASSERT_EQUAL(access(path, F_OK), -1);
  snprintf(path, sizeof path, "%s/g.safetensors", tmp);
  CU_ASSERT_EQUAL(access(path, F_OK), -1);
  /* and the good sibling of the corpus imports */
  CU_ASSERT_EQUAL(sh(0, "%s import %sgood.onnx -o %s/good.yaml --weights %s/good.safetensors", SNC, BAD, tmp, tmp), 0);
  CU_ASSERT_EQUAL(sh(0, "%s check %sgood.onnx -q", SNC, BAD), 0);
}

/* Every forward PARAM's values from a backend, by name (the arrays stay the backend's). */
static snc_onnx_tensor *param_values(const snc_graph *g, snc_backend *be, int *n) {
  snc_onnx_tensor *v = calloc((size_t)g->nnodes + 1, sizeof *v);
  *n = 0;
  for (int i = 0; i < g->nforward; i++)
    if (g->nodes[i]->op == SNC_OP_PARAM) {
      snc_onnx_tensor *t = &v[(*n)++];
      t->name = g->nodes[i]->name;
      t->ndim = g->nodes[i]->shape.rank;
      memcpy(t->dims, g->nodes[i]->shape.dim, sizeof t->dims);
      t->data = be->buf(be, i);
    }
  return v;
}

/* the forward pass of g on backend be with the deterministic input pattern; results copied out */
static float *run_results(const snc_graph *g, snc_backend *be, const int *res, int nres, int64_t *total) {
  for (int i = 0; i < g->nforward; i++) {
    const snc_node *x = g->nodes[i];
    if (x->op != SNC_OP_INPUT) continue;
    int64_t n = snc_shape_numel(&x->shape);
    if (x->dtype == SNC_I32) memset(be->buf(be, i), 0, (size_t)n * 4);
    else
      for (int64_t e = 0; e < n; e++) ((float *)be->buf(be, i))[e] = (float)((e * 7919) % 1000) / 500.0f - 1.0f;
  }
  snc_kctx ctx = {.nb = g->batch, .step = 1, .lr_scale = 1};
  be->run(be, SNC_RUN_FORWARD, &ctx);
  *total = 0;
  for (int k = 0; k < nres; k++) *total += snc_shape_numel(&g->nodes[res[k]]->shape);
  float *out = malloc((size_t)*total * 4), *at = out;
  for (int k = 0; k < nres; k++) {
    int64_t n = snc_shape_numel(&g->nodes[res[k]]->shape);
    memcpy(at, be->buf(be, res[k]), (size_t)n * 4);
    at += n;
  }
  return out;
}

static void test_zoo_round_trip(void) {
  snc_error err = {0};
  snc_graph *g = snc_model_load(SNC_SRC("tests/onnx/ops_zoo.yaml"), NULL, 0, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  snc_backend *be = snc_backend_ref_new(g, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(be);
  be->init_params(be, snc_seed_derive(5, 3));
  for (int i = 0; i < g->nforward; i++) /* running statistics other than 0 and 1, so eval mode shows */
    if (g->nodes[i]->op == SNC_OP_PARAM && strstr(g->nodes[i]->name, "running_"))
      for (int64_t e = 0; e < snc_shape_numel(&g->nodes[i]->shape); e++)
        ((float *)be->buf(be, i))[e] = 0.5f + 0.1f * (float)(e % 7);
  int nv;
  snc_onnx_tensor *vals = param_values(g, be, &nv);
  char path[512];
  snprintf(path, sizeof path, "%s/zoo.onnx", tmp);
  CU_ASSERT_EQUAL_FATAL(snc_onnx_export(g, vals, nv, path, &err), 0);
  snc_onnx_model m;
  if (snc_onnx_import(path, &(snc_onnx_options){.batch = g->batch}, &m, &err)) printf("\n  %s\n", err.msg);
  CU_ASSERT_PTR_NOT_NULL_FATAL(m.yaml);
  snc_graph *re = snc_model_load_text(m.yaml, m.yaml_len, path, NULL, 0, &err);
  if (!re) printf("\n  %s\n%s", err.msg, m.yaml);
  CU_ASSERT_PTR_NOT_NULL_FATAL(re);
  /* the same ops and shapes in the same order (names: the flattening reshape and a select differ) */
  int ra[64], rb[64], na = snc_graph_results(g, ra, 64), nb = snc_graph_results(re, rb, 64);
  CU_ASSERT_EQUAL(na, 2); /* logp (read by the loss only) and total */
  CU_ASSERT_EQUAL_FATAL(na, nb);
  int ops_a[SNC_OP_COUNT] = {0}, ops_b[SNC_OP_COUNT] = {0};
  for (int i = 0; i < g->nforward; i++) ops_a[g->nodes[i]->op]++;
  for (int i = 0; i < re->nforward; i++) ops_b[re->nodes[i]->op]++;
  ops_a[SNC_OP_INPUT]--, ops_a[SNC_OP_CROSS_ENTROPY]--; /* the label and the loss are not exported */
  for (int op = 0; op < SNC_OP_COUNT; op++) {
    if (ops_a[op] != ops_b[op]) printf("\n  op %s: %d and %d nodes", snc_op_name(op), ops_a[op], ops_b[op]);
    CU_ASSERT_EQUAL(ops_a[op], ops_b[op]);
  }
  for (int k = 0; k < na; k++) {
    CU_ASSERT_STRING_EQUAL(g->nodes[ra[k]]->name, re->nodes[rb[k]]->name);
    CU_ASSERT(snc_shape_eq(&g->nodes[ra[k]]->shape, &re->nodes[rb[k]]->shape));
  }
  /* the same outputs, bit for bit: the weights went out and came back unchanged */
  snc_backend *be2 = snc_backend_ref_new(re, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(be2);
  be2->init_params(be2, 0);
  int copied = 0;
  for (int i = 0; i < re->nforward; i++)
    if (re->nodes[i]->op == SNC_OP_PARAM)
      for (int k = 0; k < m.nweights; k++)
        if (!strcmp(m.weights[k].name, re->nodes[i]->name)) {
          memcpy(be2->buf(be2, i), m.weights[k].data, (size_t)snc_shape_numel(&re->nodes[i]->shape) * 4);
          copied++;
        }
  CU_ASSERT_EQUAL(copied, nv);
  int64_t ta, tb;
  float *ya = run_results(g, be, ra, na, &ta), *yb = run_results(re, be2, rb, nb, &tb);
  CU_ASSERT_EQUAL_FATAL(ta, tb);
  CU_ASSERT_EQUAL(memcmp(ya, yb, (size_t)ta * 4), 0);
  float mx = 0;
  for (int64_t e = 0; e < ta; e++) mx = fmaxf(mx, fabsf(ya[e]));
  CU_ASSERT(mx > 0.01f); /* not all zeros */
  free(ya), free(yb), free(vals);
  be->free(be), be2->free(be2);
  snc_graph_free(g), snc_graph_free(re);
  snc_onnx_model_free(&m);
}

/* ---- .npy ------------------------------------------------------------------------------------- */

static void write_bytes(const char *name, const void *b, size_t n) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tmp, name);
  FILE *f = fopen(path, "wb");
  CU_ASSERT_FATAL(f != NULL);
  CU_ASSERT(fwrite(b, 1, n, f) == n);
  fclose(f);
}

/* a v1 file with this header dict (padded as NumPy pads) and nbytes of data */
static void npy_file(const char *name, const char *dict, size_t nbytes) {
  unsigned char buf[4096];
  size_t hl = strlen(dict), pad = (64 - (10 + hl + 1) % 64) % 64, n = 0;
  memcpy(buf, "\x93NUMPY\x01\x00", 8);
  buf[8] = (unsigned char)((hl + pad + 1) & 0xff), buf[9] = (unsigned char)((hl + pad + 1) >> 8);
  n = 10;
  memcpy(buf + n, dict, hl), n += hl;
  memset(buf + n, ' ', pad), n += pad;
  buf[n++] = '\n';
  memset(buf + n, 0, nbytes), n += nbytes;
  write_bytes(name, buf, n);
}

static void expect_npy_error(const char *name, const char *msg) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tmp, name);
  snc_npy a;
  snc_error err = {0};
  CU_ASSERT_EQUAL(snc_npy_read(path, &a, &err), -1);
  int ok = !strncmp(err.msg, path, strlen(path)) && strstr(err.msg, msg);
  if (!ok) printf("\n  %s: got '%s', expected '%s'", name, err.msg, msg);
  CU_ASSERT(ok);
  CU_ASSERT_PTR_NULL(a.data);
}

static void test_npy(void) {
  float v[6] = {1, -2, 3.5f, 4, 5, 6};
  int64_t d[3] = {1, 2, 3};
  char path[512];
  snprintf(path, sizeof path, "%s/ok.npy", tmp);
  snc_error err = {0};
  CU_ASSERT_EQUAL(snc_npy_write(path, SNC_F32, 3, d, v, &err), 0);
  snc_npy a;
  CU_ASSERT_EQUAL_FATAL(snc_npy_read(path, &a, &err), 0);
  CU_ASSERT(a.dtype == SNC_F32 && a.ndim == 3 && a.dims[2] == 3 && a.n == 6);
  CU_ASSERT_EQUAL(memcmp(a.data, v, sizeof v), 0);
  snc_npy_free(&a);
  npy_file("i32.npy", "{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", 16);
  snprintf(path, sizeof path, "%s/i32.npy", tmp);
  CU_ASSERT_EQUAL(snc_npy_read(path, &a, &err), 0);
  CU_ASSERT(a.dtype == SNC_I32 && a.ndim == 1 && a.n == 4);
  snc_npy_free(&a);

  npy_file("trunc.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (37, 10), }", 1000);
  expect_npy_error("trunc.npy", "truncated: 1000 bytes of data for shape (37, 10) (1480 expected)");
  npy_file("fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16);
  expect_npy_error("fortran.npy", "Fortran order; expected C order");
  npy_file("f8.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16);
  expect_npy_error("f8.npy", "dtype '<f8'; expected float32 ('<f4') or int32 ('<i4')");
  npy_file("be.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8);
  expect_npy_error("be.npy", "dtype '>f4'; expected float32");
  npy_file("extra.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 12);
  expect_npy_error("extra.npy", "12 bytes of data for shape (2,) (8 expected)");
  npy_file("noshape.npy", "{'descr': '<f4', 'fortran_order': False, }", 0);
  expect_npy_error("noshape.npy", "the header lacks 'shape'");
  npy_file("huge.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }", 0);
  expect_npy_error("huge.npy", "more than 2147483648 elements");
  write_bytes("magic.npy", "PK\x03\x04 not numpy at all", 22);
  expect_npy_error("magic.npy", "not a .npy file");
  unsigned char big[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0, 0, 0x10, 0};
  write_bytes("bighdr.npy", big, sizeof big);
  expect_npy_error("bighdr.npy", "header of 1048576 bytes (at most 65536)");

  /* snrun infer names the file and the shape it needs */
  CU_ASSERT_EQUAL(sh(0, "%s import %sgood.onnx -o %s/good.yaml --weights %s/good.safetensors", SNC, BAD, tmp, tmp), 0);
  npy_file("wrong.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 3), }", 60);
  CU_ASSERT_EQUAL(sh(1, "%s infer %s/good.yaml --checkpoint %s/good.safetensors --input x=%s/wrong.npy --output %s/o", SNRUN,
                     tmp, tmp, tmp, tmp), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(last_log(), "wrong.npy: float32 array of shape (5, 3), but input 'x' needs float32 (N, 1, 8, 8)"));
  snprintf(path, sizeof path, "%s/o", tmp);
  CU_ASSERT_EQUAL(access(path, F_OK), -1); /* nothing written */
  CU_ASSERT_EQUAL(sh(1, "%s infer %s/good.yaml --checkpoint %s/good.safetensors --input x=%s/fortran.npy --output %s/o", SNRUN,
                     tmp, tmp, tmp, tmp), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(last_log(), "fortran.npy: Fortran order"));
  /* and a good input: the graph's output as <tmp>/o/y.npy, N = 3 (a partial batch) */
  npy_file("x3.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1, 8, 8), }", 3 * 64 * 4);
  CU_ASSERT_EQUAL(sh(0, "%s infer %sgood.onnx --input x=%s/x3.npy --output %s/o", SNRUN, BAD, tmp, tmp), 0);
  snprintf(path, sizeof path, "%s/o/y.npy", tmp);
  CU_ASSERT_EQUAL_FATAL(snc_npy_read(path, &a, &err), 0);
  CU_ASSERT(a.ndim == 4 && a.dims[0] == 3 && a.dims[1] == 4 && a.dims[2] == 6 && a.dims[3] == 6);
  snc_npy_free(&a);
  /* --result picks layers; an unknown one is refused */
  CU_ASSERT_EQUAL(sh(0, "%s infer %s/good.yaml --checkpoint %s/good.safetensors --input x=%s/x3.npy --result y --output %s/o2",
                     SNRUN, tmp, tmp, tmp, tmp), 0);
  snprintf(path, sizeof path, "%s/o2/y.npy", tmp);
  CU_ASSERT_EQUAL(access(path, F_OK), 0);
  CU_ASSERT_EQUAL(sh(1, "%s infer %sgood.onnx --input x=%s/x3.npy --result nope --output %s/o3", SNRUN, BAD, tmp, tmp), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(last_log(), "--result nope: model 'good' has no layer 'nope' computed per sample"));
}

/* Operators PyTorch's exports do not reach (tests/onnx/gen_ops.py: Pad before Conv, GlobalAveragePool,
 * a size-1 Transpose, Squeeze, Unsqueeze, MatMul + Add, Div, Mul by a broadcast constant, Sub, Slice,
 * Gather, Concat, MaxPool, Flatten) against numpy's float64 result. Tolerance as test_onnx_torch's
 * (float32 here, float64 there, sums of at most 18 terms: 1e-7 expected; a wrong axis or padding
 * moves values by 0.1). */
static void test_onnx_ops_numpy(void) {
  CU_ASSERT_EQUAL_FATAL(sh(0, "%s import %s -o %s/ops.yaml --weights %s/ops.safetensors", SNC, SNC_SRC("tests/onnx/ops_onnx.onnx"),
                           tmp, tmp), 0);
  CU_ASSERT_EQUAL_FATAL(sh(0, "%s infer %s/ops.yaml --checkpoint %s/ops.safetensors --input x=%s --output %s/ops_out", SNRUN,
                           tmp, tmp, SNC_SRC("tests/onnx/ops_x.npy"), tmp), 0);
  char got[512];
  snprintf(got, sizeof got, "%s/ops_out/sub.npy", tmp);
  CU_ASSERT(npy_close(got, SNC_SRC("tests/onnx/ops_sub.npy"), 1e-5, 2e-5, 0, "MatMul+Add, Div, Mul, Sub"));
  snprintf(got, sizeof got, "%s/ops_out/flat.npy", tmp);
  CU_ASSERT(npy_close(got, SNC_SRC("tests/onnx/ops_flat.npy"), 1e-5, 2e-5, 0, "Pad+Conv, Slice, Gather, Concat, MaxPool"));
}

static void register_tests(void) {
  make_tmp();
  atexit(remove_tmp);
  SNC_SUITE("onnx", {"bad-ONNX corpus: one message each, nothing written", test_bad_corpus},
            {"ops zoo: export, re-import, same ops, same bits", test_zoo_round_trip},
            {".npy: round trip, bad files, snrun infer's checks", test_npy},
            {"ONNX operators against numpy", test_onnx_ops_numpy});
}

SNC_TEST_MAIN(register_tests)
