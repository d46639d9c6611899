/* 3x3 convolutions as Winograd F(4x4, 3x3) (compiler/codegen/emit_wino.c) and their weight
 * gradients as F(3x3, 4x4) (emit_wino_dw.c) against the reference executor's direct sums, with the
 * reference executor's tolerance (codegen tests): several tiles, channel counts, bias or none,
 * epilogues, a max pooling in registers (training: its argmax as a compact side output; evaluation:
 * the epilogue after the pooling), partial batches, 1 and 2 threads, every schedule (the weight
 * gradient's chunks of the batch among them). Each case checks that the kernels run as Winograd,
 * and that with snc_cg_options.direct_conv they do not and the results differ (a different
 * rounding: the test would notice a Winograd kernel that silently fell back). */
#include "codegen/emit.h"
#include "codegen_check.h"
#include "testutil.h"

typedef struct wcase {
  int C, H, W, O, bias, pool;
  snc_opcode act[3];
  int batch, pad;
  int wino_dx; /* the input gradient runs as Winograd too (padding 1, 16k output channels) */
} wcase;

/* tanh after a scale by 0.1: the sums of these examples' weights (fan-in 144 and more) would
   saturate it, and the windows' ties at tanh = 1 would go to whichever element rounds to 1 first,
   in the reference or in the (differently rounded) Winograd sum */
static const wcase cases[] = {
    {16, 10, 10, 8, 1, 1, {SNC_OP_SCALE, SNC_OP_TANH, 0}, 37, 0, 0},          /* 2 x 2 tiles, pooled */
    {32, 6, 6, 24, 0, 1, {SNC_OP_DROPOUT, SNC_OP_SCALE, SNC_OP_TANH}, 21, 0, 0},    /* siamese's conv2, 3 blocks */
    {16, 6, 10, 16, 1, 0, {SNC_OP_RELU, 0, 0}, 37, 0, 0},                     /* 1 x 2 tiles, no pooling */
    {48, 6, 6, 8, 1, 0, {0, 0, 0}, 16, 0, 0},                                 /* no epilogue */
    {16, 10, 10, 8, 0, 1, {SNC_OP_LEAKY_RELU, 0, 0}, 37, 0, 0}, /* pooled, the activation a full side output */
    {16, 14, 14, 16, 1, 0, {SNC_OP_RELU, 0, 0}, 21, 1, 1}, /* padded, 4 x 4 tiles cropped to 14; dx too */
    {16, 12, 12, 32, 0, 1, {SNC_OP_SCALE, SNC_OP_TANH, 0}, 19, 1, 1}, /* padded and pooled; dx too */
};

/* x -> conv2d (3x3, no padding) -> activations -> [max pooling 2x2] */
static snc_graph *build(const wcase *c, int *out) {
  snc_graph *g = snc_graph_new("wino", "wino");
  g->batch = c->batch;
  int x = snc_example_input(g, 3, (int64_t[]){c->C, c->H, c->W}, SNC_F32);
  int w = snc_example_param(g, 4, (int64_t[]){c->O, c->C, 3, 3});
  int ins[3] = {x, w, c->bias ? snc_example_param(g, 1, (int64_t[]){c->O}) : -1};
  int y = snc_example_op(g, SNC_OP_CONV2D, ins, c->bias ? 3 : 2, (snc_attrs){.stride = {1, 1}, .pad = {c->pad, c->pad}});
  for (int a = 0; a < 3 && c->act[a]; a++) y = snc_example_op(g, c->act[a], &y, 1, (snc_attrs){.p = 0.25f, .alpha = 0.1f});
  if (c->pool) y = snc_example_op(g, SNC_OP_MAXPOOL2D, &y, 1, (snc_attrs){.kernel = {2, 2}, .stride = {2, 2}});
  *out = y;
  return g;
}

/* is the pooled activation a compact side output in the build r (fused, training)? */
static int compacts(const cg_run *r, const snc_graph *g) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++) n += r->p->layout.compact && r->p->layout.compact[i];
  return n;
}

/* how many of region k's calls are the convolution's kernel as Winograd (kind "[wino " or "[wdw ") */
static int wino_calls_of(const cg_run *r, int region, const char *kind) {
  int n = 0;
  for (int k = 0; k < r->p->ncalls[region]; k++) n += !strncmp(r->p->call_names[region][k], "conv2d", 6) && strstr(r->p->call_names[region][k], kind);
  return n;
}
static int wino_calls(const cg_run *r, int region) { return wino_calls_of(r, region, "[wino "); }

/* training steps: every node against the reference, 2 and 1 threads, a partial batch */
static void test_wino_train(void) {
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int y;
    snc_graph *g = build(&cases[k], &y);
    g = cgu_with_loss(g, y, "wino");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    for (int flags = 1; flags <= 3; flags += 2) { /* every buffer its own space; fused, and not */
      cg_run r;
      snc_error err = {0};
      CU_ASSERT_EQUAL_FATAL(cgu_build(g, flags, &r, &err), 0);
      CU_ASSERT_EQUAL(wino_calls(&r, 0), 1 + cases[k].wino_dx);
      CU_ASSERT_EQUAL(wino_calls_of(&r, 0, "[wdw "), 1);
      /* tanh's or relu's gradient reads the pooled value, leaky relu's the activation */
      CU_ASSERT_EQUAL(compacts(&r, g), flags == 1 && cases[k].pool && cases[k].act[0] != SNC_OP_LEAKY_RELU);
      int bad = cgu_run_both(g, &r, cases[k].batch, 2) + cgu_run_both(g, &r, cases[k].batch - 5, 1);
      if (bad) fprintf(stderr, "\n  case %zu flags %d: %d values differ\n", k, flags, bad);
      CU_ASSERT_EQUAL(bad, 0);
      cgu_free(&r);
    }
    snc_graph_free(g);
  }
}

/* takes the pick-th schedule of the kernels of one kind (the first if there are fewer), and counts them */
typedef struct chooser {
  int kind, pick, count;
} chooser;
static int pick(void *user, const char *name, const char *shape, const snc_cg_schedule *c, int n) {
  chooser *ch = user;
  (void)name, (void)shape;
  if (c[0].kind != ch->kind) return 0;
  ch->count = n;
  return ch->pick < n ? ch->pick : 0;
}

/* evaluation builds (forward only): the output against the reference, every schedule the same
 * bits, and the direct kernel different bits */
static void test_wino_eval(void) {
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int y;
    snc_graph *g = build(&cases[k], &y);
    g->loss = snc_example_op(g, SNC_OP_SUM, &y, 1, (snc_attrs){0});
    g->nforward = g->nnodes;
    snc_error err = {0};
    snc_exec *ex = snc_exec_new(g, &err);
    snc_exec_init_params(ex, 3);
    gc_fill_inputs(g, ex, 4);
    int64_t nb = cases[k].batch - 3;
    snc_kctx ev = {.nb = nb, .seed = 5, .step = 1, .training = 0, .lr_scale = 1};
    snc_exec_run(ex, SNC_RUN_FORWARD, &ev);
    int64_t e = snc_kernel_numel(g->nodes[y], &ev);
    float *out[9];
    int nv = 2;                       /* the schedules (blocks of channels, ...), then direct */
    for (int v = 0; v < nv; v++) {   /* nv is known after the first build */
      cg_run r;
      memset(&r, 0, sizeof r);
      int direct = v > 0 && v == nv - 1;
      chooser ch = {.kind = SNC_SCHED_WINO, .pick = direct ? 0 : v};
      snc_cg_options o = {.schedule = pick, .schedule_user = &ch, .direct_conv = direct};
      r.p = snc_program_build(g, &o, &err);
      CU_ASSERT_PTR_NOT_NULL_FATAL(r.p);
      snc_jit_options jo = snc_jit_default_options();
      r.jit = snc_jit_new(r.p->module, &jo, &err);
      r.p->module = NULL;
      CU_ASSERT_PTR_NOT_NULL_FATAL(r.jit);
      char name[96];
      snprintf(name, sizeof name, "%s_eval", r.p->prefix);
      r.eval = (snc_step_fn)(uintptr_t)snc_jit_lookup(r.jit, name, &err);
      CU_ASSERT_PTR_NOT_NULL_FATAL(r.eval);
      r.arena = aligned_alloc(64, (size_t)r.p->layout.arena_bytes);
      memset(r.arena, 0, (size_t)r.p->layout.arena_bytes);
      if (v == 0) {
        CU_ASSERT(ch.count >= 2 && ch.count <= 8);
        nv = (ch.count < 8 ? ch.count : 8) + 1;
      }
      CU_ASSERT_EQUAL(wino_calls(&r, 1), !direct);
      cgu_copy_params(&r, ex, g);
      const void *ins[8];
      for (int i = 0; i < r.p->ninputs; i++) ins[i] = snc_exec_buf(ex, r.p->inputs[i]);
      float loss = 0, *outs0[1] = {&loss};
      snc_step_args a = {.inputs = ins, .outputs = (void *const *)outs0, .nb = nb, .seed = 5, .step = 1, .lr_scale = 1, .nthreads = 2};
      r.eval(r.arena, &a);
      out[v] = malloc((size_t)e * 4);
      cgu_read(&r, g, y, nb, out[v]);
      int bad = cgu_compare("wino", out[v], snc_exec_buf(ex, y), e, 1e-4, 2e-5);
      if (bad) fprintf(stderr, "\n  case %zu variant %d: %d of %lld differ\n", k, v, bad, (long long)e);
      CU_ASSERT_EQUAL(bad, 0);
      cgu_free(&r);
    }
    for (int v = 1; v < nv - 1; v++) CU_ASSERT_EQUAL(memcmp(out[0], out[v], (size_t)e * 4), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(out[0], out[nv - 1], (size_t)e * 4), 0);
    for (int v = 0; v < nv; v++) free(out[v]);
    snc_exec_free(ex);
    snc_graph_free(g);
  }
}

/* weight gradients: every schedule (blocks, chunks of the batch) against the reference and to the
 * bit the same; the direct kernel (snc_cg_options.direct_conv) different bits */
static void test_wino_dw_schedules(void) {
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int y, chunked = 0;
    snc_graph *g = build(&cases[k], &y);
    g = cgu_with_loss(g, y, "wino");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int dw = -1;
    for (int i = 0; i < g->nnodes; i++)
      if (g->nodes[i]->op == SNC_OP_CONV2D_DW) dw = i;
    CU_ASSERT_FATAL(dw >= 0);
    int64_t e = snc_shape_numel(&g->nodes[dw]->shape), nb = cases[k].batch - 2;
    int oh = cases[k].H + 2 * cases[k].pad - 2, ow = cases[k].W + 2 * cases[k].pad - 2;
    int units = (cases[k].batch + 15) / 16 * ((oh + 3) / 4) * ((ow + 3) / 4);
    float *first = malloc((size_t)e * 4), *got = malloc((size_t)e * 4);
    chooser ch = {.kind = SNC_SCHED_WDW, .count = 1};
    for (int v = 0; v <= ch.count; v++) { /* the schedules in turn, then direct */
      cg_run r;
      snc_error err = {0};
      int direct = v == ch.count;
      ch.pick = v;
      snc_cg_options o = {.schedule = pick, .schedule_user = &ch, .direct_conv = direct};
      CU_ASSERT_EQUAL_FATAL(cgu_build_with(g, 1, &o, &r, &err), 0);
      CU_ASSERT_EQUAL(wino_calls_of(&r, 0, "[wdw "), !direct);
      for (int c = 0; c < r.p->ncalls[0]; c++) { /* chunks of fewer units than the batch has: several */
        const char *at = strstr(r.p->call_names[0][c], "[wdw ");
        int rr, pp, vv;
        if (at && sscanf(at, "[wdw r%d p%d v%d", &rr, &pp, &vv) == 3 && vv < units) chunked = 1;
      }
      int bad = cgu_run_both(g, &r, nb, 2);
      if (bad) fprintf(stderr, "\n  case %zu schedule %d: %d values differ\n", k, v, bad);
      CU_ASSERT_EQUAL(bad, 0);
      cgu_read(&r, g, dw, nb, v ? got : first);
      if (v && !direct) CU_ASSERT_EQUAL(memcmp(first, got, (size_t)e * 4), 0);
      if (direct) CU_ASSERT_NOT_EQUAL(memcmp(first, got, (size_t)e * 4), 0);
      cgu_free(&r);
    }
    CU_ASSERT(ch.count >= 3); /* blocks, and chunks of half and of one unit */
    CU_ASSERT(chunked == (units > 1));
    free(first);
    free(got);
    snc_graph_free(g);
  }
}

/* shapes it refuses run direct: padding 2, stride 2, too few input channels, tiles mostly cropped */
static void test_wino_refused(void) {
  conv_dims ok = {.C = 32, .H = 6, .W = 6, .O = 64, .OH = 4, .OW = 4, .kh = 3, .kw = 3, .s = {1, 1}};
  CU_ASSERT(cg_wino_ok(&ok, NULL));
  conv_dims d = ok;
  d.p[0] = d.p[1] = 2, d.OH = d.OW = 8; /* an input gradient of an unpadded one: no fewer multiplies */
  CU_ASSERT(!cg_wino_ok(&d, NULL));
  d = ok, d.p[0] = d.p[1] = 1, d.OH = d.OW = 6; /* padded: 2 x 2 tiles, 144 products against 324 */
  CU_ASSERT(cg_wino_ok(&d, NULL));
  CU_ASSERT(!cg_wino_ok(&d, &(snc_node){.attr = {.kernel = {2, 2}}})); /* cropped tiles cannot pool */
  d = ok, d.s[0] = d.s[1] = 2;
  CU_ASSERT(!cg_wino_ok(&d, NULL));
  d = ok, d.C = 8;
  CU_ASSERT(!cg_wino_ok(&d, NULL));
  d = ok, d.H = d.W = 7, d.OH = d.OW = 5; /* 2 x 2 tiles for 25 outputs: too much cropped */
  CU_ASSERT(!cg_wino_ok(&d, NULL));
  d = ok, d.C = 512, d.O = 512; /* its input tiles would not fit the thread's stack budget */
  CU_ASSERT(!cg_wino_ok(&d, NULL));
  CU_ASSERT(cg_wino_dw_scratch(&d, 112) > 0); /* its weight gradient does: the scratch is the arena's */
  /* weight gradients: the same rules, but for the stack */
  CU_ASSERT(cg_wino_dw_scratch(&ok, 112) > 0);
  d = ok, d.p[0] = d.p[1] = 2, d.OH = d.OW = 8;
  CU_ASSERT(cg_wino_dw_scratch(&d, 112) == 0);
  d = ok, d.s[0] = d.s[1] = 2;
  CU_ASSERT(cg_wino_dw_scratch(&d, 112) == 0);
  d = ok, d.C = 8;
  CU_ASSERT(cg_wino_dw_scratch(&d, 112) == 0);
  d = ok, d.O = 12;
  CU_ASSERT(cg_wino_dw_scratch(&d, 112) == 0);
  d = ok, d.H = d.W = 7, d.OH = d.OW = 5;
  CU_ASSERT(cg_wino_dw_scratch(&d, 112) == 0);
}

static void register_tests(void) {
  SNC_SUITE("winograd", {"training steps against the reference", test_wino_train},
            {"evaluation: reference, schedules, direct", test_wino_eval},
            {"weight gradients: reference, schedules, direct", test_wino_dw_schedules}, {"refused shapes", test_wino_refused});
}
SNC_TEST_MAIN(register_tests)
