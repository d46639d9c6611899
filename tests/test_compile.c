/* `snc compile`: objects, headers, bitcode, cross-compilation, embedded weights, and the example
 * programs built against emitted objects with cc, run, and compared with the JIT (bit for bit:
 * same module builder, same host target machine) and with snrun (accuracy, checkpoints).
 * Also: P_init in the module gives exactly the reference executor's initial values. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "snc/autodiff.h"
#include "snc/data.h"
#include "snc/backend.h"
#include "snc/frontend.h"
#include "snc/train.h"
#include "runutil.h"
#include "testutil.h"

#define SNC SNC_BINARY_DIR "/snc"
#define SNRUN SNC_BINARY_DIR "/snrun"
#define CC "cc -std=c99 -Wall -Wextra -pedantic -Werror -O2 -I" SNC_SOURCE_DIR "/examples"

static char tmp[256];
static int refusing; /* commands expected to fail: do not print their output */

/* runs a shell command (formatted); its stdout and stderr go to <tmp>/log; returns the exit status
 * and, unless refusing, prints the log when it is not 0 (runutil.h) */
#define sh(...) sh_in(tmp, refusing ? -1 : 0, __VA_ARGS__)

/* the whole of <tmp>/name (NUL-terminated, caller frees), NULL when absent */
static char *tmp_slurp(const char *name, size_t *len) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tmp, name);
  return slurp_len(path, len);
}

/* the last line of <tmp>/log that starts with prefix (static buffer) */
static const char *log_line(const char *prefix) {
  static char out[512];
  char *all = tmp_slurp("log", NULL);
  out[0] = 0;
  for (char *l = all ? strtok(all, "\n") : NULL; l; l = strtok(NULL, "\n"))
    if (!strncmp(l, prefix, strlen(prefix))) snprintf(out, sizeof out, "%s", l);
  free(all);
  return out;
}

/* ---- P_init in the module = the reference executor's init ------------------------------------ */

static void init_case(const char *model, const char *text, uint64_t seed) {
  snc_error err = {0};
  snc_graph *g = text ? snc_model_load_text(text, strlen(text), model, NULL, 0, &err) : snc_model_load(model, NULL, 0, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT_EQUAL_FATAL(snc_autodiff(g, 0, &err), 0);
  snc_exec *ex = snc_exec_new(g, &err);
  snc_jit_backend_opts o = {.threads = 2};
  snc_backend *be = snc_backend_jit_new(g, &o, &err);
  if (!be) printf("\n  %s\n", err.msg);
  CU_ASSERT_PTR_NOT_NULL_FATAL(be);
  snc_exec_init_params(ex, seed);
  be->init_params(be, seed);
  int nparams = 0, same = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *n = g->nodes[i];
    if (n->op != SNC_OP_PARAM && n->op != SNC_OP_CONST) continue;
    nparams++;
    size_t bytes = (size_t)snc_shape_numel(&n->shape) * 4;
    int eq = !memcmp(snc_exec_buf(ex, i), be->buf(be, i), bytes);
    if (!eq) printf("\n  %s: %s differs from the reference init", model, n->name);
    same += eq;
  }
  CU_ASSERT(nparams > 0);
  CU_ASSERT_EQUAL(same, nparams);
  be->free(be);
  snc_exec_free(ex);
  snc_graph_free(g);
}

static const char *const init_zoo =
    "model: initzoo\n"
    "inputs:\n  x: {shape: [1, 6, 6]}\n  y: {shape: [], dtype: int32}\n"
    "graph:\n"
    "  - {name: c, conv2d: {filters: 3, kernel: 3, init: {weight: xavier_normal, bias: {constant: 0.25}}}, from: x}\n"
    "  - {name: bn, batchnorm}\n"
    "  - flatten\n"
    "  - {name: a, linear: {units: 7, init: {weight: {normal: [0.5, 2]}, bias: {uniform: [-3, -1]}}}}\n"
    "  - tanh\n"
    "  - {name: b, linear: {units: 4, init: {weight: xavier_uniform, bias: ones}}}\n"
    "losses:\n  - {name: ce, cross_entropy, from: [b, y]}\n"
    "outputs:\n  out: {from: b, target: y}\n"
    "training: {optimizer: adam, batch_size: 5}\n";

static void test_init_matches_reference(void) {
  init_case(SNC_SRC("models/siamese.yaml"), NULL, 12345);
  init_case(SNC_SRC("models/mlp.yaml"), NULL, 7); /* kaiming_normal: Box-Muller with libm log, cos */
  init_case("initzoo.yaml", init_zoo, 99);        /* normal, uniform, constant, ones, zeros, batch norm */
}

/* ---- the header compiles as C99 (pedantic) and C++; two models in one program ----------------- */

static void test_header_and_two_models(void) {
  CU_ASSERT_EQUAL_FATAL(sh(SNC " compile " SNC_SOURCE_DIR "/models/siamese.yaml -q -o %s/siamese.o", tmp), 0);
  CU_ASSERT_EQUAL_FATAL(sh(SNC " compile " SNC_SOURCE_DIR "/models/mlp.yaml -q -o %s/mlp.o", tmp), 0);
  size_t len;
  char *h = tmp_slurp("siamese.h", &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  CU_ASSERT(!strncmp(h, "/* siamese.h:", 13));                          /* opens with the usage */
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "siamese_eval(arena, &a);"));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "out[0] compare float [nb, 2]"));      /* the output order */
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "#define SIAMESE_ARENA_BYTES "));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "#define SIAMESE_IN_PAIR_SHAPE {2, 14, 14}"));
  free(h);
  /* only libc, libm and OpenMP: the object's undefined symbols */
  CU_ASSERT_EQUAL(sh("nm -u %s/siamese.o %s/mlp.o | grep -v -E ' (GOMP_parallel|GOMP_barrier|omp_get_thread_num|"
                     "omp_get_num_threads|memset|memcpy|log|cos|expf|logf|tanhf|sqrtf)$' | grep ' U ' && exit 1 || exit 0",
                     tmp, tmp),
                  0);
  /* every defined global symbol carries the model's prefix */
  CU_ASSERT_EQUAL(sh("nm -g --defined-only %s/siamese.o | grep -v ' siamese_' && exit 1 || exit 0", tmp), 0);
  CU_ASSERT_EQUAL(sh("printf '#include \"siamese.h\"\\n#include \"mlp.h\"\\nint main(void) { return 0; }\\n' > %s/inc.c && "
                     "cc -std=c99 -Wall -Wextra -pedantic -Werror -c %s/inc.c -I%s -o %s/inc_c.o && "
                     "cp %s/inc.c %s/inc.cpp && g++ -Wall -Wextra -pedantic -Werror -c %s/inc.cpp -I%s -o %s/inc_cpp.o",
                     tmp, tmp, tmp, tmp, tmp, tmp, tmp, tmp, tmp),
                  0);
  CU_ASSERT_EQUAL(sh(CC " -I%s " SNC_SOURCE_DIR "/tests/compile/two_models.c %s/siamese.o %s/mlp.o -fopenmp -lm -o %s/two && "
                        "%s/two",
                     tmp, tmp, tmp, tmp, tmp),
                  0);
  CU_ASSERT_PTR_NOT_NULL(strstr(log_line("siamese "), "mlp "));
  /* the same through g++ (extern "C") */
  CU_ASSERT_EQUAL(sh("cp " SNC_SOURCE_DIR "/tests/compile/two_models.c %s/two.cpp && g++ -O1 -Wall -Wextra -Werror -I%s "
                     "%s/two.cpp %s/siamese.o %s/mlp.o -fopenmp -o %s/two_cpp && %s/two_cpp",
                     tmp, tmp, tmp, tmp, tmp, tmp, tmp),
                  0);
}

/* ---- emit kinds, cross-compilation, refusals ----------------------------------------------- */

static int elf_machine(const char *name) {
  size_t len;
  unsigned char *b = (unsigned char *)tmp_slurp(name, &len);
  int m = b && len > 20 && !memcmp(b, "\177ELF", 4) ? b[18] | b[19] << 8 : -1;
  free(b);
  return m;
}

static void test_emit_and_cross(void) {
  const char *m = SNC_SOURCE_DIR "/models/digit_cnn.yaml";
  CU_ASSERT_EQUAL(sh(SNC " compile %s -q --emit=asm -o %s/d.s", m, tmp), 0);
  CU_ASSERT_EQUAL(sh("grep -q 'digit_cnn_train_step:' %s/d.s && test -f %s/d.h", tmp, tmp), 0);
  CU_ASSERT_EQUAL(sh(SNC " compile %s -q --emit llvm -o %s/d.ll", m, tmp), 0);
  CU_ASSERT_EQUAL(sh("grep -q 'define void @digit_cnn_init' %s/d.ll && grep -q '!snc.model' %s/d.ll", tmp, tmp), 0);
  CU_ASSERT_EQUAL(sh(SNC " compile %s -q --emit=bc -o %s/d.bc", m, tmp), 0);
  CU_ASSERT(snc_is_bitcode(strcat(strcpy((char[512]){0}, tmp), "/d.bc")));
  /* cross: AArch64 (ELF machine 183) and generic x86-64 (62) */
  CU_ASSERT_EQUAL(sh(SNC " compile %s -q --target aarch64-unknown-linux-gnu --cpu generic -o %s/d_arm.o", m, tmp), 0);
  CU_ASSERT_EQUAL(elf_machine("d_arm.o"), 183);
  CU_ASSERT_EQUAL(sh("readelf -h %s/d_arm.o | grep -q 'Machine: *AArch64'", tmp), 0);
  CU_ASSERT_EQUAL(sh(SNC " compile %s -q --target x86_64-unknown-linux-gnu --cpu x86-64 -o %s/d_x86.o", m, tmp), 0);
  CU_ASSERT_EQUAL(elf_machine("d_x86.o"), 62);
  CU_ASSERT_EQUAL(sh("readelf -h %s/d_x86.o | grep -q 'Machine: *Advanced Micro Devices X86-64'", tmp), 0);
  CU_ASSERT_EQUAL(sh("grep -q 'aarch64-unknown-linux-gnu' %s/d_arm.h", tmp), 0);
  /* refusals: exit 2 for usage, 1 with a message for the rest */
  refusing = 1;
  CU_ASSERT_EQUAL(sh(SNC " compile %s --emit=exe", m), 2);
  CU_ASSERT_EQUAL(sh(SNC " compile %s --target frobnicator-unknown-linux-gnu -o %s/x.o", m, tmp), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(log_line("target"), "unknown target triple"));
  CU_ASSERT_EQUAL(sh(SNC " compile %s --cpu pentium9000 -o %s/x.o", m, tmp), 1);
  CU_ASSERT_EQUAL(sh(SNC " compile %s -o /nonexistent/dir/x.o", m), 1);
  CU_ASSERT_EQUAL(sh(SNRUN " train %s/d.s", tmp), 1); /* not bitcode: treated as YAML and refused */
  CU_ASSERT_EQUAL(sh(SNRUN " train %s/d.bc --set x=1", tmp), 2);
  refusing = 0;
}

/* ---- train_in_c reproduces snrun train; its checkpoint is snrun's; bitcode runs in snrun ----- */

/* every tensor of a and b (files under tmp) equal, byte for byte */
static int same_tensors(const char *a, const char *b) {
  char pa[512], pb[512];
  snc_error err = {0};
  snprintf(pa, sizeof pa, "%s/%s", tmp, a);
  snprintf(pb, sizeof pb, "%s/%s", tmp, b);
  snc_ckpt *x = snc_ckpt_read(pa, &err), *y = snc_ckpt_read(pb, &err);
  int ok = x && y && snc_ckpt_count(x) == snc_ckpt_count(y);
  for (int i = 0; ok && i < snc_ckpt_count(x); i++) {
    const snc_ckpt_tensor *t = snc_ckpt_at(x, i), *u = snc_ckpt_find(y, t->name);
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->dims[d];
    ok = u && u->ndim == t->ndim && !memcmp(u->dims, t->dims, sizeof t->dims) && !memcmp(t->data, u->data, (size_t)n * 4);
    if (!ok) printf("\n  %s: tensor %s differs from %s's", a, t->name, b);
  }
  snc_ckpt_free(x);
  snc_ckpt_free(y);
  return ok;
}

/* Rewrites checkpoint src (under tmp) by hand as dst: tensors listed in reverse order, keys in
 * another order, whitespace everywhere, unknown keys; mode 1 also gives the first tensor another
 * shape of the same size, mode 2 leaves the first tensor out, mode 3 has no "model" metadata. */
static int write_variant(const char *src, const char *dst, int mode) {
  char path[512];
  snc_error err = {0};
  snprintf(path, sizeof path, "%s/%s", tmp, src);
  snc_ckpt *c = snc_ckpt_read(path, &err);
  if (!c) return -1;
  size_t len;
  char *raw = tmp_slurp(src, &len);
  uint64_t hl = 0;
  for (int k = 7; k >= 0; k--) hl = hl << 8 | (unsigned char)raw[k];
  const char *data = raw + 8 + hl;
  size_t dlen = len - 8 - hl, cap = 256 * (size_t)snc_ckpt_count(c) + 4096, n = 0;
  char *hdr = malloc(cap);
  int64_t *off = calloc((size_t)snc_ckpt_count(c) + 1, sizeof *off);
  for (int i = 0; i < snc_ckpt_count(c); i++) { /* the data buffer holds the tensors in this order */
    const snc_ckpt_tensor *t = snc_ckpt_at(c, i);
    int64_t e = 4;
    for (int d = 0; d < t->ndim; d++) e *= t->dims[d];
    off[i + 1] = off[i] + e;
  }
  n += (size_t)snprintf(hdr + n, cap - n, "{\n\t\"__metadata__\" : { \"seed\":\"3\", \"%s\" : \"siamese\" } ,\n",
                        mode == 3 ? "modle" : "model");
  for (int i = snc_ckpt_count(c) - 1; i >= 0; i--) {
    const snc_ckpt_tensor *t = snc_ckpt_at(c, i);
    if (mode == 2 && i == 0) continue;
    n += (size_t)snprintf(hdr + n, cap - n, "  \"%s\" :\n   {\"data_offsets\" : [ %lld , %lld ],\r\n \"shape\":[", t->name,
                          (long long)off[i], (long long)off[i + 1]);
    for (int d = 0; d < t->ndim; d++) {
      int64_t v = t->dims[d];
      if (mode == 1 && i == 0 && d < 2) v = d == 0 ? v / 2 : v * 2;
      n += (size_t)snprintf(hdr + n, cap - n, "%s %lld", d ? "," : "", (long long)v);
    }
    n += (size_t)snprintf(hdr + n, cap - n, " ], \"extra\": [1, {\"a\": null}, -2.5e3, true], \"dtype\" : \"%s\" }%s\n",
                          t->dtype == SNC_CKPT_F32 ? "F32" : "I32", i > (mode == 2) ? "," : "");
  }
  n += (size_t)snprintf(hdr + n, cap - n, "}\n");
  while (n % 8) hdr[n++] = ' ';
  int rc = (size_t)off[snc_ckpt_count(c)] == dlen ? 0 : -1;
  snprintf(path, sizeof path, "%s/%s", tmp, dst);
  FILE *f = fopen(path, "wb");
  unsigned char l8[8];
  for (int k = 0; k < 8; k++) l8[k] = (unsigned char)((uint64_t)n >> (8 * k));
  if (!f || fwrite(l8, 1, 8, f) != 8 || fwrite(hdr, 1, n, f) != n || fwrite(data, 1, dlen, f) != dlen) rc = -1;
  if (f) fclose(f);
  free(hdr);
  free(off);
  free(raw);
  snc_ckpt_free(c);
  return rc;
}

static void test_train_in_c(void) {
  const char *m = SNC_SOURCE_DIR "/models/siamese.yaml";
  CU_ASSERT_EQUAL_FATAL(sh(SNRUN " train %s --seed 3 --epochs 2 --threads 2 -q --save %s/snrun.safetensors", m, tmp), 0);
  CU_ASSERT_EQUAL_FATAL(sh(SNRUN " pairs %s --seed 3 --out %s/p3", m, tmp), 0);
  CU_ASSERT_EQUAL_FATAL(sh("mkdir -p %s/t && " SNC " compile %s -q -o %s/t/siamese.o", tmp, m, tmp), 0);
  CU_ASSERT_EQUAL_FATAL(sh(CC " -I%s/t " SNC_SOURCE_DIR "/examples/train_in_c.c %s/t/siamese.o -fopenmp -lm -o %s/train_in_c",
                           tmp, tmp, tmp),
                        0);
  CU_ASSERT_EQUAL_FATAL(sh("%s/train_in_c %s/p3 --seed 3 --epochs 2 --threads 1 --save %s/c.safetensors", tmp, tmp, tmp), 0);
  char line[512];
  snprintf(line, sizeof line, "%s", log_line("test loss"));
  CU_ASSERT(line[0] != 0);
  /* bit for bit the parameters and Adam state of snrun train --seed 3 */
  CU_ASSERT(same_tensors("c.safetensors", "snrun.safetensors"));
  /* snrun eval reads the C program's checkpoint (metadata from stats.txt) and agrees on accuracy */
  CU_ASSERT_EQUAL(sh(SNRUN " eval %s --checkpoint %s/c.safetensors", m, tmp), 0);
  CU_ASSERT_STRING_EQUAL(log_line("test loss"), line);

  /* compile once, run many: the bitcode trains exactly as the YAML does, and evaluates */
  CU_ASSERT_EQUAL_FATAL(sh(SNC " compile %s -q --emit=bc -o %s/siamese.bc", m, tmp), 0);
  CU_ASSERT_EQUAL(sh(SNRUN " train %s/siamese.bc --seed 3 --epochs 2 --threads 2 -q --save %s/bc.safetensors", tmp, tmp), 0);
  CU_ASSERT(same_tensors("bc.safetensors", "snrun.safetensors"));
  CU_ASSERT_EQUAL(sh(SNRUN " eval %s/siamese.bc --checkpoint %s/c.safetensors", tmp, tmp), 0);
  CU_ASSERT_STRING_EQUAL(log_line("test loss"), line);

  /* the header's loader: reordered keys and whitespace are fine, and it round-trips */
  CU_ASSERT_EQUAL(write_variant("c.safetensors", "shuffled.safetensors", 0), 0);
  CU_ASSERT_EQUAL(write_variant("c.safetensors", "reshaped.safetensors", 1), 0);
  CU_ASSERT_EQUAL(write_variant("c.safetensors", "dropped.safetensors", 2), 0);
  CU_ASSERT_EQUAL(write_variant("c.safetensors", "nomodel.safetensors", 3), 0);
  CU_ASSERT_EQUAL_FATAL(sh(CC " -I%s/t " SNC_SOURCE_DIR "/tests/compile/load_save.c %s/t/siamese.o -fopenmp -lm -o %s/load_save",
                           tmp, tmp, tmp),
                        0);
  CU_ASSERT_EQUAL(sh("%s/load_save %s/shuffled.safetensors %s/again.safetensors", tmp, tmp, tmp), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(log_line("load"), "load 0 step 80"));
  CU_ASSERT(same_tensors("again.safetensors", "c.safetensors"));
  /* snrun reads what the header wrote, metadata escapes included */
  CU_ASSERT_EQUAL(sh(SNRUN " eval %s --checkpoint %s/again.safetensors --seed 3", m, tmp), 0);
  /* refusals: another model, a missing file, a truncated file */
  CU_ASSERT_EQUAL(sh(SNRUN " train " SNC_SOURCE_DIR "/models/mlp.yaml --epochs 1 -q --save %s/mlp.safetensors", tmp), 0);
  refusing = 1;
  CU_ASSERT_EQUAL(sh("%s/load_save %s/mlp.safetensors %s/x", tmp, tmp, tmp), 3);
  CU_ASSERT_PTR_NOT_NULL(strstr(log_line("load"), "checkpoint of model 'mlp', but this program has model 'siamese'"));
  CU_ASSERT_EQUAL(sh("%s/load_save %s/none.safetensors %s/x", tmp, tmp, tmp), 1);
  CU_ASSERT_EQUAL(sh("head -c 100 %s/c.safetensors > %s/cut.safetensors && %s/load_save %s/cut.safetensors %s/x", tmp, tmp,
                     tmp, tmp, tmp),
                  2);
  CU_ASSERT_EQUAL(sh("%s/load_save %s/reshaped.safetensors %s/x", tmp, tmp, tmp), 4);
  CU_ASSERT_PTR_NOT_NULL(strstr(log_line("load"), "has shape [16, 2, 3, 3], expected [32, 1, 3, 3]"));
  CU_ASSERT_EQUAL(sh("%s/load_save %s/dropped.safetensors %s/x", tmp, tmp, tmp), 4);
  CU_ASSERT_PTR_NOT_NULL(strstr(log_line("load"), "no tensor 'digit_a.conv1.weight'"));
  CU_ASSERT_EQUAL(sh("%s/load_save %s/nomodel.safetensors %s/x", tmp, tmp, tmp), 3);
  CU_ASSERT_PTR_NOT_NULL(strstr(log_line("load"), "not an snrun checkpoint"));
  refusing = 0;
}

/* ---- compare_digits: embedded weights, snrun eval's accuracy, the JIT's outputs bit for bit ---- */

static void test_compare_digits(void) {
  const char *m = SNC_SOURCE_DIR "/models/siamese.yaml";
  char ck[512];
  snprintf(ck, sizeof ck, "%s/snrun.safetensors", tmp); /* from test_train_in_c */
  if (access(ck, R_OK) != 0)
    CU_ASSERT_EQUAL_FATAL(sh(SNRUN " train %s --seed 3 --epochs 2 --threads 2 -q --save %s", m, ck), 0);
  CU_ASSERT_EQUAL_FATAL(sh("mkdir -p %s/e && " SNC " compile %s -q --embed-weights %s -o %s/e/siamese.o", tmp, m, ck, tmp), 0);
  CU_ASSERT_EQUAL(sh("grep -q '#define SIAMESE_EMBEDDED 1' %s/e/siamese.h && grep -q 'SIAMESE_EMBEDDED_SEED 3ULL' %s/e/siamese.h",
                     tmp, tmp),
                  0);
  CU_ASSERT_EQUAL_FATAL(sh(SNRUN " pairs %s --checkpoint %s --out %s/pe", m, ck, tmp), 0);
  CU_ASSERT_EQUAL_FATAL(sh(CC " -I%s/e " SNC_SOURCE_DIR "/examples/compare_digits.c %s/e/siamese.o -fopenmp -lm -o %s/compare",
                           tmp, tmp, tmp),
                        0);
  CU_ASSERT_EQUAL_FATAL(sh("%s/compare %s/pe --show 5 --dump %s/dump.bin", tmp, tmp, tmp), 0);
  char line[512];
  snprintf(line, sizeof line, "%s", log_line("test loss"));
  CU_ASSERT_EQUAL(sh(SNRUN " eval %s --checkpoint %s", m, ck), 0);
  CU_ASSERT_STRING_EQUAL(log_line("test loss"), line); /* the reference executor's accuracy and loss */

  /* the JIT on the same checkpoint and pairs: the same bytes out */
  snc_error err = {0};
  snc_graph *g = snc_model_load(m, NULL, 0, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT_EQUAL_FATAL(snc_autodiff(g, 0, &err), 0);
  snc_jit_backend_opts o = {.threads = 2};
  snc_backend *be = snc_backend_jit_new(g, &o, &err);
  snc_run_info info;
  CU_ASSERT_EQUAL_FATAL(snc_checkpoint_load(ck, g, be, &info, &err), 0);
  snc_train_data d;
  float ms[2] = {info.mean, info.std};
  CU_ASSERT_EQUAL_FATAL(snc_train_data_load(g, NULL, info.seed, ms, &d, &err), 0);
  size_t len;
  float *dump = (float *)tmp_slurp("dump.bin", &len);
  int64_t n = d.test.n;
  CU_ASSERT_EQUAL_FATAL(len, (size_t)n * 22 * 4);
  const char *names[3] = {"compare", "prob_a", "prob_b"};
  int ids[3], width[3] = {2, 10, 10}, diff = 0;
  for (int k = 0; k < 3; k++) ids[k] = snc_graph_find(g, names[k]);
  for (int64_t first = 0; first < n; first += g->batch) {
    int64_t nb = n - first < g->batch ? n - first : g->batch;
    for (int s = 0; s < d.test.nstreams; s++) {
      int id = snc_graph_find(g, d.test.s[s].name);
      memcpy(be->buf(be, id), (char *)d.test.s[s].data + first * d.test.s[s].per * 4, (size_t)(nb * d.test.s[s].per * 4));
    }
    snc_kctx ctx = {.nb = nb, .seed = 0, .step = 1, .training = 0, .lr_scale = 1};
    be->run(be, SNC_RUN_FORWARD, &ctx);
    const float *at = dump;
    for (int k = 0; k < 3; k++) {
      diff += memcmp(be->buf(be, ids[k]), at + first * width[k], (size_t)(nb * width[k] * 4)) != 0;
      at += n * width[k];
    }
  }
  CU_ASSERT_EQUAL(diff, 0);
  free(dump);
  snc_train_data_free(&d);
  be->free(be);
  snc_graph_free(g);

  /* a generic x86-64 object (no AVX, FMA through libm's fmaf) gives the same accuracy */
  CU_ASSERT_EQUAL_FATAL(sh("mkdir -p %s/x && " SNC " compile %s -q --embed-weights %s --target x86_64-unknown-linux-gnu "
                           "--cpu x86-64 -o %s/x/siamese.o && " CC " -I%s/x " SNC_SOURCE_DIR
                           "/examples/compare_digits.c %s/x/siamese.o -fopenmp -lm -o %s/compare_x86 && %s/compare_x86 %s/pe",
                           tmp, m, ck, tmp, tmp, tmp, tmp, tmp, tmp),
                        0);
  CU_ASSERT_STRING_EQUAL(log_line("test loss"), line);
  /* --embed-weights refuses another model's checkpoint */
  CU_ASSERT_EQUAL(sh(SNRUN " train " SNC_SOURCE_DIR "/models/mlp.yaml --epochs 1 -q --save %s/mlp2.safetensors", tmp), 0);
  refusing = 1;
  CU_ASSERT_EQUAL(sh(SNC " compile %s --embed-weights %s/mlp2.safetensors -o %s/bad.o", m, tmp, tmp), 1);
  refusing = 0;
  CU_ASSERT_PTR_NOT_NULL(strstr(log_line(tmp), "checkpoint of model 'mlp'"));
}

static void cleanup(void) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp);
}

static void register_tests(void) {
  snprintf(tmp, sizeof tmp, "/tmp/snc_test_compile.XXXXXX");
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    exit(2);
  }
  atexit(cleanup);
  SNC_SUITE("compile", {"P_init equals the reference init", test_init_matches_reference},
            {"header: C99, C++, two models in one program", test_header_and_two_models},
            {"emit kinds, cross-compilation, refusals", test_emit_and_cross},
            {"train_in_c = snrun train; bitcode in snrun; header load/save", test_train_in_c},
            {"compare_digits = snrun eval = JIT", test_compare_digits});
}

SNC_TEST_MAIN(register_tests)
