/* Generated code against the reference executor, driven by the op table: every op with an example
 * runs forward and backward (loss = sum(op(x) * r), gradients for inputs and parameters) in both,
 * and every node's value is compared; then 1 thread against 2 threads, bitwise.
 *
 * Tolerance: the generated code sums in another order (vector lanes, register blocks) and uses
 * polynomial exp/log/tanh good to ~2 ulp; each value is a short chain of such operations on O(1)
 * inputs, so errors stay near 1e-6 of the tensor's scale. We allow 2e-5 of the tensor's largest
 * magnitude plus 1e-4 relative: ten times that, and far below any indexing or formula error. */
#include "codegen_check.h"
#include "testutil.h"

static snc_graph *example_graph(snc_opcode op, int batch) {
  const snc_op_info *info = snc_op(op);
  snc_graph *g = snc_graph_new(info->name, "example");
  g->batch = batch;
  return cgu_with_loss(g, info->example(g), info->name);
}

static void test_every_op(void) {
  int tested = 0;
  for (int op = 0; op < SNC_OP_COUNT; op++) {
    const snc_op_info *info = snc_op(op);
    if (!info->example) continue;
    for (int batch = 3; batch <= 37; batch += 34) { /* one and three vectors of lanes */
      snc_graph *g = example_graph(op, batch);
      CU_ASSERT_PTR_NOT_NULL_FATAL(g);
      for (int flags = 1; flags <= 3; flags += 2) { /* with fusion (the op heads a chain), without */
        cg_run r;
        snc_error err = {0};
        if (cgu_build(g, flags, &r, &err)) fprintf(stderr, "\n%s: %s\n", g->name, err.msg);
        else {
          int bad = cgu_run_both(g, &r, batch, 2);
          if (bad) fprintf(stderr, "\n  op %s, batch %d, flags %d: %d values differ\n", info->name, batch, flags, bad);
          CU_ASSERT_EQUAL(bad, 0);
          /* a smaller last batch, on the same code and arena (the parameters are copied in again) */
          bad = cgu_run_both(g, &r, batch - 1, 2);
          CU_ASSERT_EQUAL(bad, 0);
          cgu_free(&r);
        }
        CU_ASSERT_EQUAL(err.msg[0], 0);
      }
      snc_graph_free(g);
    }
    tested++;
  }
  fprintf(stderr, "(%d ops) ", tested);
  CU_ASSERT(tested >= 20);
}

/* Convolution shapes the op's example does not reach, for the code paths of emit_conv.c: output rows
 * longer than a register block (the last block overlapping the one before it), a stride along x in
 * the input gradient, a kernel as large as the input, channel counts no register block divides,
 * padding on rows longer than a block (the gather path), a 1x1 kernel. */
static void test_conv_shapes(void) {
  static const struct {
    int64_t c, h, w, o;
    int kh, kw, sy, sx, py, px;
  } cs[] = {
      {2, 5, 15, 7, 3, 3, 1, 1, 0, 0}, /* 13 columns: blocks 0-5, 6-11, 7-12 */
      {3, 6, 7, 5, 2, 3, 1, 2, 1, 1},  /* dx with stride 2 along x: every other tap */
      {1, 4, 8, 9, 4, 5, 1, 1, 0, 0},  /* one output row; 9 filters */
      {2, 6, 12, 3, 3, 3, 2, 1, 1, 1}, /* padded rows of 12: two tile blocks of 6, each its own code */
      {3, 5, 21, 4, 3, 3, 1, 1, 1, 1}, /* padded rows of 21: three blocks of 7, forward and dx */
      {2, 4, 16, 3, 3, 3, 1, 2, 1, 1}, /* dx rows of 16 with stride 2: two blocks of 8 */
      {2, 3, 36, 2, 3, 3, 1, 1, 1, 1}, /* padded rows of 36: no block divides them, the gather path */
      {4, 5, 5, 6, 1, 1, 1, 1, 0, 0},  /* 1x1 */
      {13, 4, 4, 11, 3, 3, 1, 1, 1, 1}, /* same-size output, 13 and 11 channels */
      {1, 9, 9, 2, 6, 6, 1, 1, 0, 0},   /* 36 taps: more than a weight-gradient block holds */
      {2, 13, 12, 3, 11, 10, 1, 1, 1, 0}, /* 110 taps, padded rows */
  };
  for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
    for (int batch = 5; batch <= 40; batch += 35) {
      snc_graph *g = snc_graph_new("conv", "conv_shapes");
      g->batch = batch;
      int x = snc_example_input(g, 3, (int64_t[]){cs[i].c, cs[i].h, cs[i].w}, SNC_F32);
      int w = snc_example_param(g, 4, (int64_t[]){cs[i].o, cs[i].c, cs[i].kh, cs[i].kw});
      int b = snc_example_param(g, 1, (int64_t[]){cs[i].o});
      int y = snc_example_op(g, SNC_OP_CONV2D, (int[]){x, w, b}, 3, (snc_attrs){.stride = {cs[i].sy, cs[i].sx}, .pad = {cs[i].py, cs[i].px}});
      g = cgu_with_loss(g, y, "conv2d");
      CU_ASSERT_PTR_NOT_NULL_FATAL(g);
      for (int flags = 1; flags <= 3; flags += 2) { /* the loss's product fused into the kernel, or not */
        cg_run r;
        snc_error err = {0};
        CU_ASSERT_EQUAL_FATAL(cgu_build(g, flags, &r, &err), 0);
        int bad = cgu_run_both(g, &r, batch, 2) + cgu_run_both(g, &r, batch - 2, 1);
        if (bad) fprintf(stderr, "\n  conv shape %zu, batch %d, flags %d: %d values differ\n", i, batch, flags, bad);
        CU_ASSERT_EQUAL(bad, 0);
        cgu_free(&r);
      }
      snc_graph_free(g);
    }
}

#include "snc/frontend.h"

static snc_graph *model(const char *path, const char *s1, const char *s2) {
  char b1[64] = "", b2[64] = "";
  snc_override ov[2];
  int n = 0;
  snc_error err = {0};
  if (s1) snprintf(b1, sizeof b1, "%s", s1), snc_override_parse(b1, &ov[n++], &err);
  if (s2) snprintf(b2, sizeof b2, "%s", s2), snc_override_parse(b2, &ov[n++], &err);
  snc_graph *g = snc_model_load(path, ov, n, &err);
  if (g) { /* SGD: parameters then move linearly in the gradients, so their comparison is meaningful
              (Adam moves a parameter by about lr whatever the size of its gradient, so gradients
              at rounding level would flip it either way); Adam itself is checked on exact gradients */
    g->train.optimizer = SNC_OPT_SGD;
    g->train.lr = 0.05f;
    g->train.momentum = 0.9f;
  }
  if (g && snc_autodiff(g, 0, &err)) snc_graph_free(g), g = NULL;
  if (!g) fprintf(stderr, "\n%s\n", err.msg);
  return g;
}

/* nsteps training steps (the last on a partial batch) of a whole model (dropout on, Adam or SGD) in
 * both executors from the same parameters and batches: losses and every parameter and optimizer state
 * must agree; then the evaluation outputs. Parameters after three SGD updates differ by lr times the gradients' rounding
 * differences: atol 2e-4 of max|p| and 1e-3 relative cover that with a wide margin. */
static void check_model_steps_n(snc_graph *g, int nsteps) {
  snc_error err = {0};
  snc_exec *ex = snc_exec_new(g, &err);
  snc_exec_init_params(ex, 4);
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == SNC_OP_INPUT && g->nodes[i]->dtype == SNC_I32) g->nodes[i]->attr.classes = 2;
  cg_run r;
  CU_ASSERT_EQUAL_FATAL(cgu_build(g, 0, &r, &err), 0);
  cgu_copy_params(&r, ex, g);
  const void *ins[16];
  for (int k = 0; k < r.p->ninputs; k++) ins[k] = snc_exec_buf(ex, r.p->inputs[k]);
  int bad = 0;
  for (int step = 1; step <= nsteps; step++) {
    int64_t nb = step == nsteps ? (g->batch > 8 ? g->batch - 7 : g->batch - 1) : g->batch; /* a smaller last batch */
    gc_fill_inputs(g, ex, 100 + (uint64_t)step);
    snc_kctx ctx = {.nb = nb, .seed = 5, .step = step, .training = 1, .lr_scale = 1};
    snc_step_args a = {.inputs = ins, .nb = nb, .seed = 5, .step = step, .lr_scale = 1, .nthreads = 2};
    r.train(r.arena, &a); /* reads the inputs before the reference overwrites nothing: same buffers */
    snc_exec_run(ex, SNC_RUN_STEP, &ctx);
    float jl = *(float *)((char *)r.arena + r.p->layout.offset[g->loss]), rl = *(float *)snc_exec_buf(ex, g->loss);
    bad += cgu_compare("loss", &jl, &rl, 1, 1e-4, 1e-5);
  }
  float *buf = malloc((size_t)r.p->layout.unplanned_bytes);
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *n = g->nodes[i];
    if (n->op != SNC_OP_PARAM) continue;
    int64_t e = snc_shape_numel(&n->shape);
    cgu_read(&r, g, i, 0, buf);
    int b = cgu_compare(n->name, buf, snc_exec_buf(ex, i), e, 1e-3, 2e-4);
    if (b) fprintf(stderr, "\n  %s: %d of %lld differ", n->name, b, (long long)e);
    bad += b;
  }
  /* evaluation: outputs and loss */
  gc_fill_inputs(g, ex, 999);
  snc_kctx ev = {.nb = g->batch, .seed = 5, .step = nsteps, .training = 0, .lr_scale = 1};
  snc_exec_run(ex, SNC_RUN_FORWARD, &ev);
  void *outs[16];
  float *ob[16];
  for (int o = 0; o <= r.p->noutputs; o++) {
    int id = o < r.p->noutputs ? r.p->outputs[o] : g->loss;
    ob[o] = malloc((size_t)snc_shape_numel(&g->nodes[id]->shape) * 4 + 4);
    outs[o] = ob[o];
  }
  snc_step_args a = {.inputs = ins, .outputs = outs, .nb = g->batch, .seed = 5, .step = nsteps, .lr_scale = 1, .nthreads = 2};
  r.eval(r.arena, &a);
  for (int o = 0; o <= r.p->noutputs; o++) {
    int id = o < r.p->noutputs ? r.p->outputs[o] : g->loss;
    bad += cgu_compare(g->nodes[id]->name, ob[o], snc_exec_buf(ex, id), snc_shape_numel(&g->nodes[id]->shape), 1e-3, 1e-4);
    free(ob[o]);
  }
  free(buf);
  CU_ASSERT_EQUAL(bad, 0);
  cgu_free(&r);
  snc_exec_free(ex);
}

static void check_model_steps(snc_graph *g) { check_model_steps_n(g, 3); }

static void test_models_train(void) {
  const char *ws[] = {"weight_sharing=false", "weight_sharing=true"}, *aux[] = {"aux_loss=false", "aux_loss=true"};
  for (int s = 0; s < 2; s++)
    for (int a = 0; a < 2; a++) {
      snc_graph *g = model("models/siamese.yaml", ws[s], aux[a]);
      CU_ASSERT_PTR_NOT_NULL_FATAL(g);
      check_model_steps(g);
      snc_graph_free(g);
    }
  const char *others[] = {"models/digit_cnn.yaml", "models/lenet5.yaml", "models/mlp.yaml", "tests/golden/zoo.yaml",
                          "tests/golden/head.yaml"};
  for (int i = 0; i < 5; i++) {
    snc_graph *g = model(others[i], NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    check_model_steps(g);
    snc_graph_free(g);
  }
  /* the improved model (ensemble, batch norm, relu, outer-product decision), one training step on a
   * partial batch (9 of 16 rows), then evaluation. One step, since its relu kinks and some 10^5
   * max-pool windows per step make later steps chaotic between the executors: after the first
   * update's rounding-level differences a near-tie flips, and the third step's loss was measured
   * 6e-4 apart at batch 32 (3e-3 at batch 4), while the first agrees to 1e-7 at every batch tried. */
  snc_graph *g = model("models/siamese_plus.yaml", "batch=16", NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  check_model_steps_n(g, 1);
  snc_graph_free(g);
}

/* The same steps on 1 and on 2 threads give the same bits: parameters, optimizer state, loss. The
 * first program is compiled in one piece, the second split in two halves compiled on two threads
 * (runtime/jit/jit.c): every kernel must get the same machine code either way. */
static void test_threads_bitwise(void) {
  snc_graph *g = model("models/siamese.yaml", NULL, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  snc_error err = {0};
  snc_exec *ex = snc_exec_new(g, &err);
  snc_exec_init_params(ex, 4);
  gc_fill_inputs(g, ex, 7);
  cg_run r[2];
  for (int t = 0; t < 2; t++) {
    CU_ASSERT_EQUAL_FATAL(cgu_build(g, t ? 8 : 4, &r[t], &err), 0);
    CU_ASSERT_EQUAL(snc_jit_timing_of(r[t].jit)->threads, t + 1);
    /* the second arena starts as NaN bytes: a kernel that read memory no kernel wrote would differ */
    if (t) memset(r[t].arena, 0xff, (size_t)r[t].p->layout.arena_bytes);
    cgu_copy_params(&r[t], ex, g);
    const void *ins[16];
    for (int k = 0; k < r[t].p->ninputs; k++) ins[k] = snc_exec_buf(ex, r[t].p->inputs[k]);
    for (int step = 1; step <= 4; step++) {
      int64_t nb = step == 4 ? g->batch * 3 / 5 + 1 : g->batch; /* a smaller last batch */
      snc_step_args a = {.inputs = ins, .nb = nb, .seed = 3, .step = step, .lr_scale = 1, .nthreads = t + 1};
      r[t].train(r[t].arena, &a);
    }
  }
  const snc_layout *l = &r[0].p->layout;
  for (int i = 0; i < g->nnodes; i++) /* every parameter and optimizer state, to the bit */
    if (g->nodes[i]->op == SNC_OP_PARAM) {
      size_t bytes = (size_t)snc_shape_numel(&g->nodes[i]->shape) * 4;
      int same = !memcmp((char *)r[0].arena + l->offset[i], (char *)r[1].arena + l->offset[i], bytes);
      if (!same) fprintf(stderr, "\n  %s differs", g->nodes[i]->name);
      CU_ASSERT(same);
    }
  CU_ASSERT_EQUAL(memcmp((char *)r[0].arena + l->offset[g->loss], (char *)r[1].arena + l->offset[g->loss], 4), 0);
  for (int t = 0; t < 2; t++) cgu_free(&r[t]);
  snc_exec_free(ex);
  snc_graph_free(g);
}

/* Fused and unfused programs give the same bits: every fused kernel computes its members with the
 * operations, and sums in the order, of their own kernels (max pooling's gradient, its chain and
 * conv1's weight and bias gradients in one kernel; batch norm's input and gamma gradients in one).
 * Four steps, the last on a partial batch, on digits that are mostly background: siamese at batch
 * 100 (7 vectors: sums across them) with and without weight sharing, and siamese_plus at batch 24.
 * Every value the fused program stores, to the bit. The pooled kernels fold whole windows in
 * registers (emit_conv.c, tile_fold); a last case scales the digits by 60, so that most of conv1's
 * activations lie where tanh gives neighbouring sums one float: windows of equal activations from
 * distinct sums, where the first must stay the argmax. */
static void test_fusion_bitwise(void) {
  const char *ws[] = {"weight_sharing=true", "weight_sharing=false", "batch=24", "weight_sharing=true"};
  const char *file[] = {"models/siamese.yaml", "models/siamese.yaml", "models/siamese_plus.yaml", "models/siamese.yaml"};
  const float scale[] = {1, 1, 1, 60};
  for (int s = 0; s < 4; s++) {
    snc_graph *g = model(file[s], ws[s], s != 2 ? "batch=100" : NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    snc_error err = {0};
    snc_exec *ex = snc_exec_new(g, &err);
    snc_exec_init_params(ex, 6);
    gc_fill_inputs(g, ex, 8);
    /* blank background, as in MNIST: windows of equal values, where max pooling's gradient must
       pick the first maximum as its own kernel does */
    for (int i = 0; i < g->nnodes; i++)
      if (!strcmp(g->nodes[i]->name, "pair")) {
        float *x = snc_exec_buf(ex, i);
        for (int64_t k = 0, e = snc_shape_numel(&g->nodes[i]->shape); k < e; k++)
          x[k] = k % 7 ? 0 : x[k] * scale[s];
      }
    cg_run r[2];
    for (int t = 0; t < 2; t++) {
      CU_ASSERT_EQUAL_FATAL(cgu_build(g, t ? 3 : 1, &r[t], &err), 0); /* every buffer its own space */
      cgu_copy_params(&r[t], ex, g);
      const void *ins[16];
      for (int k = 0; k < r[t].p->ninputs; k++) ins[k] = snc_exec_buf(ex, r[t].p->inputs[k]);
      for (int step = 1; step <= 4; step++) {
        int64_t nb = step == 4 ? g->batch / 2 + 1 : g->batch;
        snc_step_args a = {.inputs = ins, .nb = nb, .seed = 5, .step = step, .lr_scale = 1, .nthreads = 2};
        r[t].train(r[t].arena, &a);
      }
    }
    /* every value the fused program stores (parameters, state, the last step's gradients and
       activations, the loss; update placeholders aside), to the bit */
    int compared = 0, compacts = 0;
    for (int i = 0; i < g->nnodes; i++) {
      const snc_node *nd = g->nodes[i];
      if (nd->op == SNC_OP_ADAM || nd->op == SNC_OP_SGD || !snc_fuse_stored(r[0].p->into, i) || r[0].p->layout.offset[i] < 0) continue;
      if (r[0].p->layout.compact[i]) { /* each window's argmax, against the unfused activation */
        int64_t nb = g->batch / 2 + 1;
        float *full = malloc((size_t)(snc_shape_numel(&nd->shape) * 4));
        cgu_read(&r[1], g, i, nb, full);
        int bad = cgu_compact_check(&r[0], g, i, nb, full, 1);
        if (bad) fprintf(stderr, "\n  %s: %s: %d windows differ", ws[s], nd->name, bad);
        CU_ASSERT_EQUAL(bad, 0);
        free(full);
        compacts++;
        continue;
      }
      size_t bytes = (size_t)r[0].p->layout.bytes[i];
      CU_ASSERT_EQUAL_FATAL(bytes, (size_t)r[1].p->layout.bytes[i]);
      /* the values: a buffer's tail past them (its 64-byte alignment) keeps whatever the space
         held before, such as a Winograd kernel's scratch */
      if (!snc_layout_batched(g, i)) bytes = (size_t)snc_shape_numel(&nd->shape) * 4;
      int same = !memcmp((char *)r[0].arena + r[0].p->layout.offset[i], (char *)r[1].arena + r[1].p->layout.offset[i], bytes);
      if (!same) fprintf(stderr, "\n  %s: %s differs", ws[s], nd->name);
      CU_ASSERT(same);
      compared++;
    }
    CU_ASSERT(compared > 100);
    CU_ASSERT_EQUAL(compacts, s != 2 ? 4 : 0); /* siamese: both convolutions of both branches */
    for (int t = 0; t < 2; t++) cgu_free(&r[t]);
    snc_exec_free(ex);
    snc_graph_free(g);
  }
}

/* A first convolution without bias, then dropout, tanh and a tiling max pooling (rows of 10, windows
 * of 2 x 2): its weight gradient takes the pooling gradient's chain with no side output. JIT against
 * the reference executor, fused and unfused, and the fused kernel is there. */
static void test_dw_prologue_no_bias(void) {
  snc_graph *g = snc_graph_new("first_conv", "first_conv");
  g->batch = 21;
  int x = snc_example_input(g, 3, (int64_t[]){2, 12, 12}, SNC_F32);
  int w = snc_example_param(g, 4, (int64_t[]){5, 2, 3, 3});
  int y = snc_example_op(g, SNC_OP_CONV2D, (int[]){x, w}, 2, (snc_attrs){.stride = {1, 1}});
  y = snc_example_op(g, SNC_OP_DROPOUT, &y, 1, (snc_attrs){.p = 0.25f});
  y = snc_example_op(g, SNC_OP_TANH, &y, 1, (snc_attrs){0});
  y = snc_example_op(g, SNC_OP_MAXPOOL2D, &y, 1, (snc_attrs){.kernel = {2, 2}, .stride = {2, 2}});
  int r = snc_example_input(g, 3, (int64_t[]){5, 5, 5}, SNC_F32);
  int m = snc_example_op(g, SNC_OP_MUL, (int[]){y, r}, 2, (snc_attrs){0});
  g->loss = snc_example_op(g, SNC_OP_SUM, &m, 1, (snc_attrs){0});
  g->nforward = g->nnodes;
  snc_error err = {0};
  CU_ASSERT_EQUAL_FATAL(snc_autodiff(g, SNC_AD_NO_UPDATES, &err), 0); /* no input gradient */
  for (int flags = 1; flags <= 3; flags += 2) {
    cg_run run;
    CU_ASSERT_EQUAL_FATAL(cgu_build(g, flags, &run, &err), 0);
    int fused = 0;
    for (int k = 0; k < run.p->ncalls[0]; k++) fused += !strncmp(run.p->call_names[0][k], "conv2d_dw+maxpool2d_dx+tanh_dx+dropout_dx ", 42);
    CU_ASSERT_EQUAL(fused, flags == 1);
    int bad = cgu_run_both(g, &run, 21, 2) + cgu_run_both(g, &run, 17, 1);
    if (bad) fprintf(stderr, "\n  flags %d: %d values differ\n", flags, bad);
    CU_ASSERT_EQUAL(bad, 0);
    cgu_free(&run);
  }
  snc_graph_free(g);
}

/* Evaluation of a convolution whose chain ends in a max pooling: with an epilogue of monotone ops
 * (tanh, relu, sigmoid, dropout outside training) the kernel pools the raw sums and applies the
 * epilogue to the pooled values. Against the reference executor, in the fused kernel, with batch
 * rows that leave lanes unused. (A chain with a batch normalisation, which may decrease, pools its
 * activations: siamese_plus's evaluation build in test_train.) */
static void test_pooled_eval(void) {
  static const snc_opcode acts[][2] = {{SNC_OP_TANH, 0}, {SNC_OP_RELU, 0}, {SNC_OP_SIGMOID, 0}, {SNC_OP_DROPOUT, SNC_OP_TANH}};
  for (size_t k = 0; k < sizeof acts / sizeof acts[0]; k++) {
    snc_graph *g = snc_graph_new("pooled_eval", "pooled_eval");
    g->batch = 37;
    int x = snc_example_input(g, 3, (int64_t[]){3, 12, 10}, SNC_F32);
    int w = snc_example_param(g, 4, (int64_t[]){8, 3, 3, 3}), b = snc_example_param(g, 1, (int64_t[]){8});
    int y = snc_example_op(g, SNC_OP_CONV2D, (int[]){x, w, b}, 3, (snc_attrs){.stride = {1, 1}, .pad = {1, 1}});
    for (int a = 0; a < 2 && acts[k][a]; a++) y = snc_example_op(g, acts[k][a], &y, 1, (snc_attrs){.p = 0.25f});
    int pooled = snc_example_op(g, SNC_OP_MAXPOOL2D, &y, 1, (snc_attrs){.kernel = {2, 2}, .stride = {2, 2}});
    g->loss = snc_example_op(g, SNC_OP_SUM, &pooled, 1, (snc_attrs){0});
    g->nforward = g->nnodes; /* forward only, as an evaluation build: the pooling's input is nobody's */
    cg_run r;
    snc_error err = {0};
    CU_ASSERT_EQUAL_FATAL(cgu_build(g, 0, &r, &err), 0);
    int fused = 0;
    for (int c = 0; c < r.p->ncalls[1]; c++) fused += !strncmp(r.p->call_names[1][c], "conv2d+", 7) && strstr(r.p->call_names[1][c], "+maxpool2d ");
    if (fused != 1)
      for (int c = 0; c < r.p->ncalls[1]; c++) fprintf(stderr, "\n  case %zu call %s", k, r.p->call_names[1][c]);
    CU_ASSERT_EQUAL(fused, 1);
    snc_exec *ex = snc_exec_new(g, &err);
    snc_exec_init_params(ex, 3);
    gc_fill_inputs(g, ex, 4);
    cgu_copy_params(&r, ex, g);
    for (int nb = 37; nb >= 30; nb -= 7) {
      snc_kctx ev = {.nb = nb, .seed = 5, .step = 1, .training = 0, .lr_scale = 1};
      snc_exec_run(ex, SNC_RUN_FORWARD, &ev);
      const void *ins[8];
      for (int i = 0; i < r.p->ninputs; i++) ins[i] = snc_exec_buf(ex, r.p->inputs[i]);
      float loss = 0, *outs0[1] = {&loss};
      snc_step_args a = {.inputs = ins, .outputs = (void *const *)outs0, .nb = nb, .seed = 5, .step = 1, .lr_scale = 1, .nthreads = 2};
      r.eval(r.arena, &a);
      int64_t e = snc_kernel_numel(g->nodes[pooled], &ev);
      float *buf = malloc((size_t)e * 4);
      cgu_read(&r, g, pooled, nb, buf);
      int bad = cgu_compare("pooled", buf, snc_exec_buf(ex, pooled), e, 1e-4, 2e-5);
      if (bad) fprintf(stderr, "\n  epilogue %s%s%s, batch %d: %d of %lld differ\n", snc_op_name(acts[k][0]), acts[k][1] ? "+" : "",
                       acts[k][1] ? snc_op_name(acts[k][1]) : "", nb, bad, (long long)e);
      CU_ASSERT_EQUAL(bad, 0);
      free(buf);
    }
    snc_exec_free(ex);
    cgu_free(&r);
    snc_graph_free(g);
  }
}

/* Twin kernels (the other branch, the evaluation region) get their slot tables mapped from the
 * first one's instead of being emitted again (compiler/codegen/cg_reuse.c). The module must be the same
 * text either way: every slot table is a global in it. With SNC_CHECK_KERNEL_REUSE=1 the twins are
 * emitted too and every mapped table is asserted against the emitted one. */
static void test_kernel_reuse(void) {
  static const struct { const char *path, *set; int forward_only, twins; } cases[] = {
      {"models/siamese.yaml", "weight_sharing=true", 0, 1}, {"models/siamese.yaml", "weight_sharing=false", 0, 1},
      {"models/siamese.yaml", "aux_loss=false", 1, 1},      {"models/siamese_plus.yaml", NULL, 0, 1},
      {"models/digit_cnn.yaml", NULL, 0, 1},                {"models/mlp.yaml", NULL, 1, 0}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    snc_error err = {0};
    char buf[64] = "";
    snc_override ov;
    int nov = 0;
    if (cases[c].set) snprintf(buf, sizeof buf, "%s", cases[c].set), nov = snc_override_parse(buf, &ov, &err) == 0;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", SNC_SOURCE_DIR, cases[c].path);
    snc_graph *g = snc_model_load(path, &ov, nov, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    if (!cases[c].forward_only) CU_ASSERT_EQUAL_FATAL(snc_autodiff(g, 0, &err), 0);
    char *text[2];
    int reused[2];
    for (int check = 0; check < 2; check++) {
      CU_ASSERT_EQUAL(setenv("SNC_CHECK_KERNEL_REUSE", check ? "1" : "0", 1), 0);
      snc_program *p = snc_program_build(g, NULL, &err);
      CU_ASSERT_PTR_NOT_NULL_FATAL(p);
      text[check] = LLVMPrintModuleToString(p->module);
      reused[check] = p->nreused;
      snc_program_free(p);
    }
    unsetenv("SNC_CHECK_KERNEL_REUSE");
    int same = !strcmp(text[0], text[1]);
    if (!same) fprintf(stderr, "\n  %s %s: the module differs with its twins mapped\n", cases[c].path, cases[c].set ? cases[c].set : "");
    CU_ASSERT(same);
    CU_ASSERT(cases[c].twins ? reused[0] > 0 : reused[0] == 0);
    CU_ASSERT_EQUAL(reused[1], 0); /* the check emits every twin */
    LLVMDisposeMessage(text[0]);
    LLVMDisposeMessage(text[1]);
    snc_graph_free(g);
  }
}

/* Optimizer updates on exact gradients (loss = sum(p*p), gradient 2p): JIT and reference agree to
 * float rounding of the update formula, for Adam with weight decay and SGD with Nesterov momentum. */
static void test_updates(void) {
  for (int opt = 0; opt < 2; opt++) {
    snc_graph *g = snc_graph_new("sq", "sq");
    g->batch = 1;
    g->train = (snc_train_cfg){.optimizer = opt ? SNC_OPT_SGD : SNC_OPT_ADAM, .lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                               .weight_decay = 0.01f, .momentum = 0.9f, .nesterov = 1, .epochs = 1, .batch_size = 1, .seed = 1};
    snc_error err = {0};
    int p = snc_example_param(g, 1, (int64_t[]){37});
    int m = snc_example_op(g, SNC_OP_MUL, (int[]){p, p}, 2, (snc_attrs){0});
    g->loss = snc_example_op(g, SNC_OP_SUM, &m, 1, (snc_attrs){0});
    g->nforward = g->nnodes;
    CU_ASSERT_EQUAL_FATAL(snc_autodiff(g, 0, &err), 0);
    snc_exec *ex = snc_exec_new(g, &err);
    snc_exec_init_params(ex, 2);
    cg_run r;
    CU_ASSERT_EQUAL_FATAL(cgu_build(g, 0, &r, &err), 0);
    cgu_copy_params(&r, ex, g);
    for (int step = 1; step <= 5; step++) {
      snc_kctx ctx = {.nb = 1, .seed = 1, .step = step, .training = 1, .lr_scale = 0.5f};
      snc_step_args a = {.nb = 1, .seed = 1, .step = step, .lr_scale = 0.5f, .nthreads = 2};
      snc_exec_run(ex, SNC_RUN_STEP, &ctx);
      r.train(r.arena, &a);
    }
    float buf[37];
    for (int i = 0; i < g->nnodes; i++)
      if (g->nodes[i]->op == SNC_OP_PARAM) {
        cgu_read(&r, g, i, 1, buf);
        CU_ASSERT_EQUAL(cgu_compare(g->nodes[i]->name, buf, snc_exec_buf(ex, i), snc_shape_numel(&g->nodes[i]->shape), 1e-5, 1e-6), 0);
      }
    cgu_free(&r);
    snc_exec_free(ex);
    snc_graph_free(g);
  }
}

static void test_every_op_has_emitter(void) {
  for (int op = 0; op < SNC_OP_COUNT; op++) {
    int leaf = op == SNC_OP_INPUT || op == SNC_OP_PARAM || op == SNC_OP_CONST;
    if (!leaf && !snc_op(op)->emit) fprintf(stderr, "\nop %s has no emitter\n", snc_op_name(op));
    CU_ASSERT(leaf || snc_op(op)->emit);
  }
}

/* The siamese step's kernels: each convolution, its dropout and tanh and the max pooling after them
 * are one kernel that stores the pooled tensor and the activation (a side output the backward pass
 * reads); max pooling's gradient absorbs tanh_dx and dropout_dx after both poolings (their windows
 * tile the input); after the first, conv1's weight gradient takes that chain
 * and conv1's bias gradient (the input needs no gradient); one update kernel (model() trains with
 * SGD) and one bias-gradient kernel serve every other parameter. Whether the fused code computes
 * the right values is test_models_train's, test_threads_bitwise's and test_fusion_bitwise's job. */
static void test_siamese_kernels(void) {
  snc_graph *g = model("models/siamese.yaml", NULL, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  snc_error err = {0};
  snc_cg_options o = {0};
  snc_program *p = snc_program_build(g, &o, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  int fused = 0, alone = 0, dw = 0, db = 0, pooled = 0, pool = 0;
  for (int k = 0; k < p->ncalls[0]; k++) {
    const char *c = p->call_names[0][k];
    pooled += !strncmp(c, "conv2d+dropout+tanh+maxpool2d ", 30);
    pool += !strncmp(c, "maxpool2d ", 10);
    fused += !strncmp(c, "maxpool2d_dx+tanh_dx+dropout_dx ", 32);
    alone += !strncmp(c, "maxpool2d_dx ", 13);
    dw += !strncmp(c, "conv2d_dw+maxpool2d_dx+tanh_dx+dropout_dx+bias_grad digit_", 58) && strstr(c, ".conv1.dw");
    db += strstr(c, "conv1.db") != NULL;
  }
  CU_ASSERT_EQUAL(pooled, 4); /* both convolutions pool in their kernels, in each branch */
  CU_ASSERT_EQUAL(pool, 0);
  CU_ASSERT_EQUAL(fused, 2); /* conv2's pooling in each of two branches */
  CU_ASSERT_EQUAL(dw, 2);    /* conv1's, which also stores the bias gradient */
  CU_ASSERT_EQUAL(db, 0);
  CU_ASSERT_EQUAL(alone, 0);
  for (int i = 0; i < g->nnodes; i++) /* the activations the pooling kernels keep for the backward pass */
    if (g->nodes[i]->op == SNC_OP_TANH && i < g->nforward && g->nodes[i]->shape.rank == 4) {
      int root = snc_fuse_root(p->into, i);
      CU_ASSERT(snc_fuse_side(p->into, i) && root > i && g->nodes[root]->op == SNC_OP_MAXPOOL2D);
      CU_ASSERT(p->layout.offset[i] >= 0 && (p->layout.offset[i] + p->layout.bytes[i] <= p->layout.offset[root] ||
                                             p->layout.offset[root] + p->layout.bytes[root] <= p->layout.offset[i]));
    }
  for (int i = 0; i < g->nnodes; i++) /* the side output has a buffer of its own */
    if (strstr(g->nodes[i]->name, "conv1.db")) {
      CU_ASSERT(p->into[i] < i && snc_fuse_stored(p->into, i) && p->layout.offset[i] >= 0);
      int dwn = p->into[i];
      CU_ASSERT(p->layout.offset[i] + p->layout.bytes[i] <= p->layout.offset[dwn] ||
                p->layout.offset[dwn] + p->layout.bytes[dwn] <= p->layout.offset[i]);
    }
  int sgd = 0, bias_grad = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(p->module); f; f = LLVMGetNextFunction(f)) {
    size_t len = 0;
    sgd += strstr(LLVMGetValueName2(f, &len), ".sgd.") != NULL;
    bias_grad += strstr(LLVMGetValueName2(f, &len), ".bias_grad.") != NULL;
  }
  CU_ASSERT_EQUAL(sgd, 1);
  CU_ASSERT_EQUAL(bias_grad, 1); /* convolutions' and linear layers' alike */
  snc_program_free(p);
  snc_graph_free(g);
}

/* Barriers and the calls' order: in the siamese step, no call runs in the same barrier group as (or
 * before) the call that computes one of its inputs (views resolved to the buffer they share), no call
 * overwrites a buffer before a call that reads it in the graph's order has run, and independent
 * neighbours do share groups. */
static void test_barrier_groups(void) {
  snc_error err = {0};
  snc_graph *g = snc_model_load("models/siamese.yaml", NULL, 0, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT_EQUAL_FATAL(snc_autodiff(g, 0, &err), 0);
  for (int no_reuse = 0; no_reuse <= 1; no_reuse++) { /* the plan as run, and every buffer its own space */
    snc_cg_options o = {.no_reuse = no_reuse};
    snc_program *p = snc_program_build(g, &o, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const snc_layout *l = &p->layout;
    for (int r = 0; r < 2; r++) {
      int n = p->ncalls[r], *group = calloc((size_t)n, sizeof(int)), *by_node = malloc((size_t)g->nnodes * sizeof(int));
      for (int i = 0; i < g->nnodes; i++) by_node[i] = -1;
      for (int k = 0, grp = 0; k < n; k++) {
        group[k] = grp;
        if (p->call_nodes[r][k] >= 0) by_node[p->call_nodes[r][k]] = k;
        if (p->call_waits[r][k]) grp++;
      }
      CU_ASSERT(group[n - 1] + 5 < n - 1); /* at least five barriers fewer than one between every two calls */
      int bad = 0;
      for (int k = 0; k < n; k++) {
        int root = p->call_nodes[r][k];
        if (root < 0) continue;
        for (int m = 0; m <= root; m++) {
          if (snc_fuse_root(p->into, m) != root) continue;
          const snc_node *nd = g->nodes[m];
          for (int j = 0; j < nd->ninputs; j++) {
            int src = nd->inputs[j];
            while (snc_layout_view_delta(g, src, l->bp) >= 0) src = g->nodes[src]->inputs[0];
            if (snc_fuse_root(p->into, src) == root) continue; /* inside the chain */
            int q = by_node[snc_fuse_root(p->into, src)];
            if (q >= 0 && group[q] >= group[k]) bad++, fprintf(stderr, "\n  %s reads %s of its group", p->call_names[r][k], p->call_names[r][q]);
            /* calls that write over this input (the memory plan reuses dead buffers), in whatever
               order the calls were scheduled: one that came after k in the graph's order still runs
               in a later group than k; one that came before still runs before the producer */
            for (int w = 0; w < n; w++) {
              int out = p->call_nodes[r][w];
              /* an update never writes its own (placeholder) output: it writes its parameter and state */
              int placeholder = out >= 0 && (g->nodes[out]->op == SNC_OP_ADAM || g->nodes[out]->op == SNC_OP_SGD);
              if (w == k || w == q || out < 0 || placeholder) continue;
              int over = 0; /* its output or a side output it stores over src's buffer */
              for (int s = 0; s < g->nnodes && !over; s++)
                if (s == out || (snc_fuse_side(p->into, s) && snc_fuse_root(p->into, s) == out))
                  over = s != src && l->offset[s] < l->offset[src] + l->bytes[src] && l->offset[src] < l->offset[s] + l->bytes[s];
              if (!over) continue;
              if (out > root ? group[w] <= group[k] : q >= 0 && group[w] >= group[q])
                bad++, fprintf(stderr, "\n  %s overwrites what %s reads", p->call_names[r][w], p->call_names[r][k]);
            }
          }
        }
      }
      /* a kernel's scratch (a Winograd weight gradient's): a call that touches that space runs in an
         earlier group when it comes earlier in the graph's order, else in a later one */
      int scratched = 0;
      for (int k = 0; k < n; k++) {
        int root = p->call_nodes[r][k];
        if (root < 0 || !l->scratch_bytes[root]) continue;
        scratched++;
        const int64_t s0 = l->scratch_off[root], s1 = s0 + l->scratch_bytes[root];
        for (int w = 0; w < n; w++) {
          int out = p->call_nodes[r][w];
          if (w == k || out < 0 || (out < root ? group[w] < group[k] : group[w] > group[k])) continue;
          for (int m = 0; m < g->nnodes; m++) { /* every buffer the call's chain touches */
            if (snc_fuse_root(p->into, m) != out && !(snc_fuse_side(p->into, m) && snc_fuse_root(p->into, m) == out)) continue;
            for (int j = -1; j < g->nodes[m]->ninputs; j++) {
              int b = j < 0 ? m : g->nodes[m]->inputs[j];
              while (snc_layout_view_delta(g, b, l->bp) >= 0) b = g->nodes[b]->inputs[0];
              if (l->offset[b] >= 0 && l->offset[b] < s1 && s0 < l->offset[b] + l->bytes[b])
                bad++, fprintf(stderr, "\n  %s touches the scratch of %s out of turn", p->call_names[r][w], p->call_names[r][k]);
            }
          }
        }
      }
      /* siamese's two conv2 (Winograd: their transformed weights) and, training, their weight gradients */
      CU_ASSERT_EQUAL(scratched, r == 0 ? 4 : 2);
      CU_ASSERT_EQUAL(bad, 0);
      free(group);
      free(by_node);
    }
    snc_program_free(p);
  }
  snc_graph_free(g);
}

static void register_tests(void) {
  SNC_SUITE("codegen", {"every op has an emitter", test_every_op_has_emitter}, {"every op, JIT against reference", test_every_op},
            {"convolution shapes, JIT against reference", test_conv_shapes},
            {"whole models: training steps and evaluation", test_models_train},
            {"1 thread against 2 threads, bitwise", test_threads_bitwise},
            {"fused against unfused, bitwise", test_fusion_bitwise},
            {"a first convolution without bias: dw takes its dy chain", test_dw_prologue_no_bias},
            {"pooled evaluation: the epilogue after the pooling", test_pooled_eval},
            {"twin kernels: slot tables mapped, the same module", test_kernel_reuse}, {"optimizer updates", test_updates},
            {"siamese kernels: fused pooling gradients, one update kernel", test_siamese_kernels},
            {"barrier groups respect every dependence", test_barrier_groups});
}
SNC_TEST_MAIN(register_tests)
