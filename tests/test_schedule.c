/* Kernel schedules (snc/codegen.h, snc/backend.h): every candidate schedule of every kernel gives the
 * default's bits (two training steps of a net with tile, gather and dw kernels of several shapes,
 * padded and strided, a batch that is not a multiple of the vectors); the text form; the tuning
 * cache (save, reload, another machine's file ignored, damaged lines); SNC_SCHEDULE; the search. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "snc/autodiff.h"
#include "snc/frontend.h"
#include "snc/backend.h"
#include "testutil.h"

static const char *model =
    "model: sched\n"
    "inputs:\n"
    "  image: {shape: [2, 17, 17]}\n"
    "  label: {shape: [], dtype: int32}\n"
    "graph:\n"
    "  - {name: c1, conv2d: {filters: 7, kernel: 3}, from: image}\n"   /* 7x15x15: tile, rows of 15 */
    "  - dropout: {p: 0.2}\n"
    "  - tanh\n"
    "  - {name: c2, conv2d: {filters: 5, kernel: 3, padding: 1}}\n"   /* 5x15x15: gather (padded long rows) */
    "  - tanh\n"
    "  - maxpool2d: {kernel: 2}\n"                                    /* 5x7x7 */
    "  - {name: c3, conv2d: {filters: 9, kernel: 3, padding: 1}}\n"   /* 9x7x7: tile, dx tile */
    "  - tanh\n"
    "  - {name: c4, conv2d: {filters: 6, kernel: 2, stride: 2}}\n"    /* 6x3x3: strided dx */
    "  - flatten\n"
    "  - {name: fc1, linear: {units: 11}}\n"
    "  - tanh\n"
    "  - {name: fc2, linear: {units: 3}}\n"
    "losses:\n"
    "  - {name: ce, cross_entropy, from: [fc2, label]}\n"
    "outputs:\n"
    "  y: {from: fc2, target: label}\n"
    "training:\n"
    "  optimizer: adam\n"
    "  lr: 0.01\n"
    "  batch_size: 37\n"
    "  seed: 3\n";

typedef struct pick {
  int k, most, kernels;
} pick;

static int choose_k(void *user, const char *name, const char *shape, const snc_cg_schedule *cands, int n) {
  pick *p = user;
  (void)name, (void)shape;
  CU_ASSERT(n >= 1 && cands[0].kind != SNC_SCHED_NONE);
  if (n > p->most) p->most = n;
  p->kernels++;
  return p->k < n ? p->k : 0;
}

/* parameters after two steps with every kernel on its k-th candidate; returns the bytes in *buf */
static size_t train_with(const snc_graph *g, int k, int threads, int *most, unsigned char **buf) {
  snc_error err = {0};
  pick p = {.k = k};
  snc_jit_backend_opts o = {.threads = threads, .schedule = choose_k, .schedule_user = &p};
  snc_backend *be = snc_backend_jit_new(g, &o, &err);
  if (!be) printf("\n  %s\n", err.msg);
  CU_ASSERT_PTR_NOT_NULL_FATAL(be);
  CU_ASSERT(p.kernels >= 8);
  be->init_params(be, 5);
  uint32_t s = 12345;
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *n = g->nodes[i];
    if (n->op != SNC_OP_INPUT) continue;
    int64_t m = snc_shape_numel(&n->shape);
    for (int64_t e = 0; e < m; e++) {
      s = s * 1664525u + 1013904223u;
      if (n->dtype == SNC_I32) ((int32_t *)be->buf(be, i))[e] = (int32_t)(s >> 16) % 3;
      else ((float *)be->buf(be, i))[e] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
  }
  for (int step = 1; step <= 2; step++) {
    snc_kctx ctx = {.nb = g->batch, .seed = 9, .step = step, .training = 1, .lr_scale = 1};
    be->run(be, SNC_RUN_STEP, &ctx);
  }
  size_t total = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == SNC_OP_PARAM) total += (size_t)snc_shape_numel(&g->nodes[i]->shape) * 4;
  *buf = malloc(total);
  size_t at = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == SNC_OP_PARAM) {
      size_t b = (size_t)snc_shape_numel(&g->nodes[i]->shape) * 4;
      memcpy(*buf + at, be->buf(be, i), b);
      at += b;
    }
  *most = p.most;
  be->free(be);
  return total;
}

/* convolutions whose kernels pool (conv, dropout, tanh, maxpool as one kernel that also stores the
   activation the backward pass reads) with several blocks of channels: every schedule, the epilogue
   over all of a block's vectors at once or in steps, gives the same bits */
static const char *pooled_model =
    "model: pooled\n"
    "inputs: {image: {shape: [1, 14, 14]}, label: {shape: [], dtype: int32}}\n"
    "graph:\n"
    "  - {name: c1, conv2d: {filters: 6, kernel: 3}, from: image}\n" /* 6x12x12, pooled to 6x6x6 */
    "  - dropout: {p: 0.3}\n"
    "  - tanh\n"
    "  - maxpool2d: {kernel: 2}\n"
    "  - {name: c2, conv2d: {filters: 8, kernel: 3}}\n" /* 8x4x4, pooled to 8x2x2 */
    "  - tanh\n"
    "  - maxpool2d: {kernel: 2}\n"
    "  - flatten\n"
    "  - {name: fc, linear: {units: 3}}\n"
    "losses: [{name: ce, cross_entropy, from: [fc, label]}]\n"
    "training: {batch_size: 37, optimizer: adam, lr: 0.01}\n";

static void test_candidates_same_bits(void) {
  const char *texts[] = {model, pooled_model};
  for (int t = 0; t < 2; t++) {
    snc_error err = {0};
    snc_graph *g = snc_model_load_text(texts[t], strlen(texts[t]), "sched.yaml", NULL, 0, &err);
    if (!g) printf("\n  %s\n", err.msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL_FATAL(snc_autodiff(g, 0, &err), 0);
    unsigned char *ref = NULL, *got = NULL;
    int most = 0, m;
    size_t n = train_with(g, 0, 1, &most, &ref);
    CU_ASSERT(most >= 4); /* the net's kernels have several schedules to choose from */
    for (int k = 1; k < most; k++) {
      size_t n2 = train_with(g, k, 2, &m, &got);
      CU_ASSERT_EQUAL(n2, n);
      int same = n2 == n && !memcmp(ref, got, n);
      if (!same) printf("\n  model %d, candidate %d: parameters differ from the default schedules'", t, k);
      CU_ASSERT(same);
      free(got);
    }
    free(ref);
    snc_graph_free(g);
  }
}

static void test_text_form(void) {
  snc_cg_schedule s = {SNC_SCHED_TILE, 6, 4, 2, 1, 48}, t;
  char buf[64];
  snc_cg_schedule_format(&s, buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, "tile r6 p4 v2 o1 u48");
  CU_ASSERT_EQUAL(snc_cg_schedule_parse(buf, &t), 0);
  CU_ASSERT(snc_cg_schedule_equal(&s, &t));
  CU_ASSERT_EQUAL(snc_cg_schedule_parse("dw r3 p1 v1 o0 u1]", &t), 0); /* as in kernel names */
  CU_ASSERT_EQUAL(t.kind, SNC_SCHED_DW);
  static const char *bad[] = {"", "tile", "tile r6 p4 v1", "tile r6 p4 v1 o0", "tiles r6 p4 v1 o0 u1", "tile r0 p4 v1 o0 u1",
                              "tile r6 p4 v1 o2 u1", "gather r3 p1 v7 o0 u1x", "tile r-1 p4 v1 o0 u1", "tile r6 p4 v1 o0 u0"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CU_ASSERT_EQUAL(snc_cg_schedule_parse(bad[i], &t), -1);
}

static void test_cache(void) {
  char dir[] = "/tmp/snc_sched_XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  char sub[256];
  snprintf(sub, sizeof sub, "%s/a/b", dir); /* created on save */
  snc_error err = {0};
  unsetenv("SNC_SCHEDULE");
  snc_cg_schedule c[3] = {{SNC_SCHED_TILE, 6, 4, 1, 0, 24}, {SNC_SCHED_TILE, 6, 4, 1, 1, 24}, {SNC_SCHED_TILE, 5, 4, 1, 0, 20}};
  snc_sched_table *t = snc_sched_open(sub, 1, 1, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(t);
  CU_ASSERT_EQUAL(snc_sched_choose(t, "conv2d.a", "shape A", c, 3), 0); /* untuned: the default */
  CU_ASSERT_EQUAL(snc_sched_record(t, "shape A", &c[2], 1.0, 1.2), 0);
  snc_cg_schedule other = {SNC_SCHED_TILE, 2, 2, 1, 0, 4};
  CU_ASSERT_EQUAL(snc_sched_record(t, "shape B", &other, 1.0, 1.2), 0);
  CU_ASSERT_EQUAL(snc_sched_save(t, &err), 0);
  char path[4300];
  snprintf(path, sizeof path, "%s", snc_sched_path(t));
  snc_sched_free(t);
  t = snc_sched_open(sub, 1, 1, &err);
  CU_ASSERT_EQUAL(snc_sched_choose(t, "conv2d.a", "shape A", c, 3), 2);
  CU_ASSERT_EQUAL(snc_sched_choose(t, "conv2d.b", "shape B", c, 3), 0); /* not a candidate: default */
  int fc, fo, ns;
  snc_sched_counts(t, &fc, &fo, &ns);
  CU_ASSERT(fc == 1 && fo == 0 && ns == 2);
  snc_sched_free(t);
  t = snc_sched_open(sub, 0, 1, &err); /* --no-tune */
  CU_ASSERT_EQUAL(snc_sched_choose(t, "conv2d.a", "shape A", c, 3), 0);
  snc_sched_free(t);
  t = snc_sched_open(sub, 1, 2, &err); /* another thread count: a file of its own, untuned */
  CU_ASSERT_EQUAL(snc_sched_threads(t), 2);
  CU_ASSERT_STRING_NOT_EQUAL(snc_sched_path(t), path);
  CU_ASSERT_EQUAL(snc_sched_choose(t, "conv2d.a", "shape A", c, 3), 0);
  snc_sched_free(t);
  /* overrides: by name, by shape, "*" where valid; a bad one is ignored */
  setenv("SNC_SCHEDULE", "conv2d.x=tile r6 p4 v1 o1 u24;shape C=tile r5 p4 v1 o0 u20;junk;conv2d.y=tile r9 p9 v9 o0 u1", 1);
  t = snc_sched_open(sub, 1, 1, &err);
  CU_ASSERT_EQUAL(snc_sched_choose(t, "conv2d.x", "shape A", c, 3), 1);
  CU_ASSERT_EQUAL(snc_sched_choose(t, "conv2d.z", "shape C", c, 3), 2);
  CU_ASSERT_EQUAL(snc_sched_choose(t, "conv2d.y", "shape D", c, 3), 0);
  CU_ASSERT_EQUAL(snc_sched_choose(t, "conv2d.a", "shape A", c, 3), 2); /* no override: the cache */
  snc_sched_free(t);
  setenv("SNC_SCHEDULE", "*=tile r6 p4 v1 o1 u24", 1);
  t = snc_sched_open(sub, 1, 1, &err);
  CU_ASSERT_EQUAL(snc_sched_choose(t, "conv2d.a", "shape A", c, 3), 1);
  snc_sched_free(t);
  unsetenv("SNC_SCHEDULE");
  /* a file of another machine under this name, or damaged lines: never read / skipped */
  FILE *f = fopen(path, "w");
  fprintf(f, "# snc schedules 0: another cpu\nshape A\ttile r5 p4 v1 o0 u20\t1\t1\n");
  fclose(f);
  t = snc_sched_open(sub, 1, 1, &err);
  CU_ASSERT_EQUAL(snc_sched_choose(t, "conv2d.a", "shape A", c, 3), 0);
  snc_sched_free(t);
  t = snc_sched_open(sub, 1, 1, &err);
  CU_ASSERT_EQUAL(snc_sched_record(t, "shape A", &c[1], 1, 1), 0);
  CU_ASSERT_EQUAL(snc_sched_save(t, &err), 0);
  snc_sched_free(t);
  f = fopen(path, "a");
  fprintf(f, "shape B\ttile r6 p4\t1\t1\nno tab here\n");
  fclose(f);
  t = snc_sched_open(sub, 1, 1, &err);
  CU_ASSERT_EQUAL(snc_sched_choose(t, "conv2d.a", "shape A", c, 3), 1);
  CU_ASSERT_EQUAL(snc_sched_choose(t, "conv2d.b", "shape B", c, 3), 0);
  snc_sched_free(t);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CU_ASSERT_EQUAL(system(cmd), 0);
}

/* tunes g on 1 thread into a new tuning cache in dir (a mkdtemp template), then builds g (without its
   evaluation when no_eval) from that cache as read back from its file; *t is the table the build used */
static snc_backend *tuned_build(const snc_graph *g, char *dir, int no_eval, snc_sched_table **t) {
  snc_error err = {0};
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  unsetenv("SNC_SCHEDULE");
  *t = snc_sched_open(dir, 1, 1, &err);
  int rc = snc_sched_tune(g, *t, no_eval, NULL, &err);
  if (rc) printf("\n  %s\n", err.msg);
  CU_ASSERT_EQUAL(rc, 0);
  snc_sched_free(*t);
  *t = snc_sched_open(dir, 1, 1, &err);
  snc_jit_backend_opts o = {.threads = 1, .no_eval = no_eval, .schedule = snc_sched_choose, .schedule_user = *t};
  snc_backend *be = snc_backend_jit_new(g, &o, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(be);
  return be;
}

static void remove_dir(const char *dir) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CU_ASSERT_EQUAL(system(cmd), 0);
}

/* the search on the small net: every shape recorded, the file written, and read back; also for a
   training build without its evaluation (no_eval, snrun's beside an evaluation build), whose trials
   the tuner must run as steps alone (an evaluation forward on them stops the test) */
static void test_tune(void) {
  snc_error err = {0};
  snc_graph *g = snc_model_load_text(model, strlen(model), "sched.yaml", NULL, 0, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT_EQUAL_FATAL(snc_autodiff(g, 0, &err), 0);
  for (int no_eval = 0; no_eval < 2; no_eval++) {
    char dir[] = "/tmp/snc_tune_XXXXXX";
    snc_sched_table *t = NULL;
    snc_backend *be = tuned_build(g, dir, no_eval, &t); /* every shape found in the cache */
    CU_ASSERT_EQUAL(snc_backend_jit_program(be)->ncalls[1] == 0, no_eval);
    FILE *f = fopen(snc_sched_path(t), "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char line[4096];
    int lines = 0;
    while (fgets(line, sizeof line, f)) lines++;
    fclose(f);
    CU_ASSERT(lines >= 1 + 8); /* the key line, then one line per scheduled shape */
    int fc, fo, ns;
    snc_sched_counts(t, &fc, &fo, &ns);
    CU_ASSERT(ns == lines - 1 && fc == ns && fo == 0);
    be->free(be);
    snc_sched_free(t);
    remove_dir(dir);
  }
  snc_graph_free(g);
}

/* a forward-only graph (snrun's evaluation build, whose conv+tanh+maxpool kernels exist only there):
   tuned on its forward, every shape it schedules recorded, and the later build finds them all */
static void test_tune_forward(void) {
  static const char *pool_model = /* a tiled convolution whose pooling tiles its output: fused when forward-only */
      "model: pool\n"
      "inputs: {image: {shape: [1, 14, 14]}, label: {shape: [], dtype: int32}}\n"
      "graph:\n"
      "  - {name: c1, conv2d: {filters: 5, kernel: 3}, from: image}\n" /* 5x12x12 */
      "  - tanh\n"
      "  - maxpool2d: {kernel: 2}\n" /* 5x6x6 */
      "  - {name: c2, conv2d: {filters: 6, kernel: 3}}\n"
      "  - tanh\n"
      "  - flatten\n"
      "  - {name: fc, linear: {units: 3}}\n"
      "losses: [{name: ce, cross_entropy, from: [fc, label]}]\n"
      "training: {batch_size: 21}\n";
  snc_error err = {0};
  snc_graph *g = snc_model_load_text(pool_model, strlen(pool_model), "pool.yaml", NULL, 0, &err); /* no autodiff */
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT_EQUAL_FATAL(g->nnodes, g->nforward);
  char dir[] = "/tmp/snc_tune_fwd_XXXXXX";
  snc_sched_table *t = NULL;
  snc_backend *be = tuned_build(g, dir, 0, &t);
  int fc, fo, ns;
  snc_sched_counts(t, &fc, &fo, &ns);
  CU_ASSERT(ns >= 3 && fc == ns && fo == 0);
  int pooled = 0; /* the fused pooling kernel is among the shapes scheduled */
  const snc_program *p = snc_backend_jit_program(be);
  for (int r = 0; r < 2; r++)
    for (int c = 0; c < p->ncalls[r]; c++)
      pooled |= p->call_shapes[r][c] && strstr(p->call_shapes[r][c], "+maxpool2d ") != NULL;
  CU_ASSERT(pooled);
  be->free(be);
  snc_sched_free(t);
  remove_dir(dir);
  snc_graph_free(g);
}

static void register_tests(void) {
  SNC_SUITE("schedule", {"every candidate gives the default's bits", test_candidates_same_bits},
            {"text form", test_text_form}, {"tuning cache and SNC_SCHEDULE", test_cache}, {"the search", test_tune},
            {"the search on a forward-only build", test_tune_forward});
}

SNC_TEST_MAIN(register_tests)
