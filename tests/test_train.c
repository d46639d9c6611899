/* The training runtime end to end on the reference backend: a short siamese run learns, runs are
 * reproducible from the seed, checkpoints round-trip through `eval` and bad ones are refused clearly,
 * labels are validated, digit_cnn trains, and the snrun CLI's exit codes (usage 2, file 1, Ctrl-C 130).
 * Small sets and few epochs keep the whole program to seconds. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snc/autodiff.h"
#include "snc/data.h"
#include "snc/frontend.h"
#include "snc/backend.h"
#include "snc/jit.h"
#include "snc/train.h"
#include "testutil.h"
#include "runutil.h"

static char tmpdir[256];

/* Replaces the first occurrence of `from` in *s with `to` (reallocating); asserts it exists. A
 * `from` ending in '*' matches up to the end of the line ("lr: *" whatever the model's value). */
static void replace(char **s, const char *from, const char *to) {
  size_t lf = strlen(from);
  int to_eol = lf && from[lf - 1] == '*';
  char key[256];
  snprintf(key, sizeof key, "%.*s", (int)(lf - (size_t)to_eol), from);
  char *at = strstr(*s, key);
  CU_ASSERT_PTR_NOT_NULL_FATAL(at);
  lf = to_eol ? strcspn(at, "\n") : lf;
  size_t pre = (size_t)(at - *s), lt = strlen(to), rest = strlen(at + lf);
  char *r = malloc(pre + lt + rest + 1);
  memcpy(r, *s, pre);
  memcpy(r + pre, to, lt);
  memcpy(r + pre + lt, at + lf, rest + 1);
  free(*s);
  *s = r;
}

/* siamese_small trains 200 pairs for 6 epochs of 8 steps: the head reads the digit distributions, so
 * the comparison only rises above the majority answer once the digits are learned (62% after 3 epochs,
 * 68% after 6 with seed 7). */
#define SMALL_EPOCHS 6
#define SMALL_EPOCHS_S "6"
#define LAST (SMALL_EPOCHS - 1)

/* A copy of a shipped model with smaller data and training settings, written under tmpdir. */
static const char *small_model(const char *src, const char *out, const char *const *edits) {
  static char path[512];
  char *text = slurp(src);
  CU_ASSERT_PTR_NOT_NULL_FATAL(text);
  for (int i = 0; edits[i]; i += 2) replace(&text, edits[i], edits[i + 1]);
  snprintf(path, sizeof path, "%s/%s", tmpdir, out);
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
  free(text);
  return path;
}

static const char *siamese_small(void) {
  static char path[512];
  if (!path[0]) {
    const char *edits[] = {"train: *", "train: 200", "test: *", "test: 100", "batch_size: *", "batch_size: 25",
                           "  lr: *", "  lr: 0.003", "epochs: *", "epochs: " SMALL_EPOCHS_S, NULL};
    snprintf(path, sizeof path, "%s", small_model(SNC_SRC("models/siamese.yaml"), "siamese_small.yaml", edits));
  }
  return path;
}

static int g_eval_train; /* run()'s --eval-train */
static int g_prefetch;   /* run()'s data: 0 drawn by snc_train, 1 prefetched, 2 prefetched for another seed */
static const char *g_data_dir; /* run()'s data_dir (NULL: the model's) */

/* Trains `model` (with overrides); sizes < 0 keep the file's. Returns 0 on success. */
static int run(const char *model, const snc_override *sets, int nsets, uint64_t seed, int epochs, int ntrain,
               int ntest, const char *save, snc_train_result *r, snc_error *err) {
  snc_graph *g = snc_model_load(model, sets, nsets, err);
  if (!g) return -1;
  if (ntrain > 0) g->data.train_size = ntrain;
  if (ntest > 0) g->data.test_size = ntest;
  int rc = -1;
  snc_backend *be = NULL;
  if (snc_autodiff(g, 0, err) == 0 && (be = snc_backend_new("ref", g, err))) {
    snc_train_opts o = snc_train_defaults(g);
    o.seed = seed;
    if (epochs > 0) o.epochs = epochs;
    o.quiet = 1;
    o.save_path = save;
    o.eval_train = g_eval_train;
    o.data_dir = g_data_dir;
    if (g_prefetch) o.prefetch = snc_train_prefetch_start(g, g_data_dir, g_prefetch == 1 ? seed : seed + 1);
    CU_ASSERT(!g_prefetch || o.prefetch);
    rc = snc_train(g, be, &o, r, err);
    snc_train_prefetch_free(o.prefetch);
  }
  if (be) be->free(be);
  snc_graph_free(g);
  return rc;
}

/* ---- the siamese run: learns, saves, evaluates the same ----------------------------------------- */

static snc_train_result main_run;
static char main_ckpt[512];

static void test_siamese_learns(void) {
  snc_error err = {0};
  snprintf(main_ckpt, sizeof main_ckpt, "%s/siamese.safetensors", tmpdir);
  int rc = run(siamese_small(), NULL, 0, 7, 0, 0, 0, main_ckpt, &main_run, &err);
  if (rc) fprintf(stderr, "\n%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(main_run.nepochs, SMALL_EPOCHS);
  CU_ASSERT_EQUAL(main_run.steps, SMALL_EPOCHS * 8);
  CU_ASSERT_TRUE(main_run.saved);
  const snc_epoch_stats *e = main_run.epoch;
  for (int i = 0; i < SMALL_EPOCHS; i++)
    printf("\n  epoch %d: step loss %.4f, train acc %.3f, test loss %.4f acc %.3f, digit_a %.3f", e[i].epoch,
           e[i].step_loss, e[i].train.acc[0], e[i].test.loss, e[i].test.acc[0], e[i].test.acc[1]);
  CU_ASSERT_TRUE(e[LAST].step_loss < e[0].step_loss);
  CU_ASSERT_TRUE(e[LAST].test.loss < e[0].test.loss);
  CU_ASSERT_EQUAL(e[0].test.n, 100);
  CU_ASSERT_EQUAL(e[0].train.n, 200);
  CU_ASSERT_EQUAL(e[0].test.noutputs, 3);
  /* better than always answering "first <= second" (55%) and than guessing digits (10%) */
  CU_ASSERT_TRUE(main_run.final_acc > 0.62);
  CU_ASSERT_TRUE(e[LAST].test.acc[1] > 0.3 && e[LAST].test.acc[2] > 0.3);
  CU_ASSERT_DOUBLE_EQUAL(main_run.final_acc, e[LAST].test.acc[0], 0);
  CU_ASSERT_TRUE(main_run.best_acc >= main_run.final_acc);
  CU_ASSERT_TRUE(main_run.std > 1 && main_run.mean > 1); /* standardised on the 0..255 scale */
}

static void test_eval_matches_training(void) {
  snc_error err = {0};
  snc_eval_result r;
  CU_ASSERT_EQUAL_FATAL(main_run.nepochs, SMALL_EPOCHS);
  int rc = snc_eval_checkpoint(siamese_small(), NULL, 0, main_ckpt, NULL, NULL, NULL, &r, NULL, &err);
  if (rc) fprintf(stderr, "\n%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  const snc_eval_result *t = &main_run.epoch[LAST].test;
  CU_ASSERT_EQUAL(r.n, t->n);
  CU_ASSERT_EQUAL(r.noutputs, 3);
  for (int k = 0; k < 3; k++) CU_ASSERT_DOUBLE_EQUAL(r.acc[k], t->acc[k], 0);
  CU_ASSERT_DOUBLE_EQUAL(r.loss, t->loss, 0);
  /* on the JIT (snrun eval's default), with the compiled-module cache: the same accuracies, the loss up
     to the generated code's summation order; the second build loads the machine code */
  char cache[600];
  snprintf(cache, sizeof cache, "%s/eval-cache", tmpdir);
  for (int k = 0; k < 2; k++) {
    snc_eval_result j;
    snc_jit_backend_opts jo = {.threads = 1, .cache_dir = cache};
    CU_ASSERT_EQUAL_FATAL(snc_eval_checkpoint(siamese_small(), NULL, 0, main_ckpt, NULL, NULL, &jo, &j, NULL, &err), 0);
    CU_ASSERT_EQUAL(j.n, t->n);
    for (int o = 0; o < 3; o++) CU_ASSERT_DOUBLE_EQUAL(j.acc[o], t->acc[o], 0);
    CU_ASSERT_TRUE(fabs(j.loss - t->loss) <= 1e-5 * fabs(t->loss));
  }
  /* the metadata a user needs */
  snc_ckpt *c = snc_ckpt_read(main_ckpt, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(c);
  CU_ASSERT_STRING_EQUAL(snc_ckpt_meta(c, "model"), "siamese");
  const char *sw = snc_ckpt_meta(c, "switches"); /* every switch, the numeric ones at full precision */
  CU_ASSERT_PTR_NOT_NULL_FATAL(sw);
  CU_ASSERT_EQUAL(strncmp(sw, "weight_sharing=true,aux_loss=true,batch=25,lr=0.00", 42), 0);
  CU_ASSERT_STRING_EQUAL(snc_ckpt_meta(c, "seed"), "7");
  CU_ASSERT_STRING_EQUAL(snc_ckpt_meta(c, "epoch"), SMALL_EPOCHS_S);
  CU_ASSERT_STRING_EQUAL(snc_ckpt_meta(c, "step"), "48");
  CU_ASSERT_PTR_NOT_NULL(snc_ckpt_find(c, "digit_a.conv1.weight"));
  CU_ASSERT_PTR_NOT_NULL(snc_ckpt_find(c, "digit_a.conv1.weight.adam_m")); /* optimizer state too */
  CU_ASSERT_PTR_NOT_NULL(snc_ckpt_find(c, "step"));
  CU_ASSERT_PTR_NULL(snc_ckpt_find(c, "digit_b.conv1.weight")); /* shared */
  snc_ckpt_free(c);
  /* the checkpoint's switches apply by default; --set weight_sharing=false asks for other tensors */
  snc_override s = {"weight_sharing", "false"};
  rc = snc_eval_checkpoint(siamese_small(), &s, 1, main_ckpt, NULL, NULL, NULL, &r, NULL, &err);
  CU_ASSERT_EQUAL(rc, -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "digit_b.conv1.weight"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "weight_sharing=true"));
}

/* --init: a training graph takes every parameter and the optimizer state from a training checkpoint,
 * to the bit; from a checkpoint of the forward parameters only (what snc import --weights writes) the
 * optimizer state stays fresh; a checkpoint without one of the weights is refused by name; and a run
 * that starts from the trained weights starts where they left off (its first epoch's loss is below a
 * fresh run's) */
static void test_init_from_checkpoint(void) {
  snc_error err = {0};
  CU_ASSERT_EQUAL_FATAL(main_run.nepochs, SMALL_EPOCHS);
  snc_graph *g = snc_model_load(siamese_small(), NULL, 0, &err);
  CU_ASSERT_FATAL(g && snc_autodiff(g, 0, &err) == 0);
  snc_backend *be = snc_backend_new("ref", g, &err);
  CU_ASSERT_FATAL(be != NULL);
  be->init_params(be, 99);
  int nstate = -1, n = snc_checkpoint_init(main_ckpt, g, be, &nstate, &err);
  CU_ASSERT_TRUE(n > 0 && nstate > 0 && nstate < n);
  snc_ckpt *c = snc_ckpt_read(main_ckpt, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(c);
  int same = 0, params = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *p = g->nodes[i];
    if (p->op != SNC_OP_PARAM || !strcmp(p->name, "step")) continue;
    const snc_ckpt_tensor *t = snc_ckpt_find(c, p->name);
    params++;
    same += t && !memcmp(t->data, be->buf(be, i), (size_t)snc_shape_numel(&p->shape) * 4);
  }
  CU_ASSERT_EQUAL(same, params);
  CU_ASSERT_EQUAL(n, params);
  snc_ckpt_free(c);
  /* the forward parameters alone, as snc import --weights writes them */
  char fwd[600], part[600];
  snprintf(fwd, sizeof fwd, "%s/forward_only.safetensors", tmpdir);
  snc_graph *g0 = snc_model_load(siamese_small(), NULL, 0, &err);
  snc_backend *be0 = snc_backend_new("ref", g0, &err);
  snc_run_info info;
  CU_ASSERT_EQUAL_FATAL(snc_checkpoint_load(main_ckpt, g0, be0, &info, &err), 0);
  CU_ASSERT_EQUAL_FATAL(snc_checkpoint_save(fwd, g0, be0, &info, &err), 0);
  be->init_params(be, 99);
  n = snc_checkpoint_init(fwd, g, be, &nstate, &err);
  CU_ASSERT_TRUE(n > 0 && nstate == 0);
  for (int i = g->nforward; i < g->nnodes; i++) /* Adam's moments as init_params left them: zero */
    if (g->nodes[i]->op == SNC_OP_PARAM && strstr(g->nodes[i]->name, "adam_m")) CU_ASSERT_EQUAL(*(float *)be->buf(be, i), 0);
  /* one weight missing */
  snc_ckpt *f = snc_ckpt_read(fwd, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  int nt = 0;
  snc_ckpt_tensor keep[64];
  for (int i = 0; i < g0->nforward; i++) {
    const snc_node *p = g0->nodes[i];
    if (p->op != SNC_OP_PARAM || !strcmp(p->name, "digit_a.fc2.weight")) continue;
    const snc_ckpt_tensor *t = snc_ckpt_find(f, p->name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    if (nt < 64) keep[nt++] = *t;
  }
  snprintf(part, sizeof part, "%s/partial.safetensors", tmpdir);
  const char *meta[] = {"model", "siamese", "seed", "1", NULL};
  CU_ASSERT_EQUAL_FATAL(snc_ckpt_write(part, keep, nt, meta, &err), 0);
  snc_ckpt_free(f);
  CU_ASSERT_EQUAL(snc_checkpoint_init(part, g, be, &nstate, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "digit_a.fc2.weight"));
  be0->free(be0);
  snc_graph_free(g0);
  /* training from the trained weights: the first epoch starts low */
  snc_train_result fresh = {0}, warm = {0};
  g->data.train_size = 100, g->data.test_size = 50;
  snc_train_opts o = snc_train_defaults(g);
  o.seed = 7, o.epochs = 1, o.quiet = 1;
  CU_ASSERT_EQUAL_FATAL(snc_train(g, be, &o, &fresh, &err), 0);
  o.init_path = main_ckpt;
  CU_ASSERT_EQUAL_FATAL(snc_train(g, be, &o, &warm, &err), 0);
  CU_ASSERT_TRUE(warm.epoch[0].step_loss < fresh.epoch[0].step_loss);
  o.init_path = part;
  snc_train_result bad = {0};
  CU_ASSERT_EQUAL(snc_train(g, be, &o, &bad, &err), -1);
  snc_train_result_free(&fresh);
  snc_train_result_free(&warm);
  snc_train_result_free(&bad);
  be->free(be);
  snc_graph_free(g);
}

/* ---- reproducibility ---------------------------------------------------------------------------- */

static void test_same_seed_same_run(void) {
  snc_error err = {0};
  snc_train_result a = {0}, b = {0}, c = {0};
  CU_ASSERT_EQUAL_FATAL(run(siamese_small(), NULL, 0, 3, 2, 100, 50, NULL, &a, &err), 0);
  CU_ASSERT_EQUAL_FATAL(run(siamese_small(), NULL, 0, 3, 2, 100, 50, NULL, &b, &err), 0);
  CU_ASSERT_EQUAL_FATAL(run(siamese_small(), NULL, 0, 4, 2, 100, 50, NULL, &c, &err), 0);
  for (int i = 0; i < 2; i++) {
    CU_ASSERT_EQUAL(memcmp(&a.epoch[i].step_loss, &b.epoch[i].step_loss, sizeof(double)), 0);
    CU_ASSERT_EQUAL(memcmp(&a.epoch[i].test.loss, &b.epoch[i].test.loss, sizeof(double)), 0);
    CU_ASSERT_EQUAL(memcmp(a.epoch[i].test.acc, b.epoch[i].test.acc, sizeof a.epoch[i].test.acc), 0);
  }
  CU_ASSERT_TRUE(a.epoch[0].step_loss != c.epoch[0].step_loss);
  CU_ASSERT_TRUE(a.epoch[1].test.loss != c.epoch[1].test.loss);
  CU_ASSERT_TRUE(a.mean != c.mean); /* another seed draws other pairs */
  snc_train_result_free(&a);
  snc_train_result_free(&b);
  snc_train_result_free(&c);
}

/* Data drawn on a thread during the compile (snc_train_prefetch_start): the same run to the bit; a
 * prefetch for another seed is not taken (the run draws its own); a failed draw fails the run with
 * the loader's message */
static void test_prefetch_same_run(void) {
  snc_error err = {0};
  snc_train_result r[3] = {{0}};
  for (int k = 0; k < 3; k++) {
    g_prefetch = k;
    CU_ASSERT_EQUAL_FATAL(run(siamese_small(), NULL, 0, 3, 2, 100, 50, NULL, &r[k], &err), 0);
  }
  for (int k = 1; k < 3; k++) {
    CU_ASSERT_EQUAL(r[k].mean, r[0].mean);
    for (int i = 0; i < 2; i++) {
      CU_ASSERT_EQUAL(memcmp(&r[0].epoch[i].step_loss, &r[k].epoch[i].step_loss, sizeof(double)), 0);
      CU_ASSERT_EQUAL(memcmp(&r[0].epoch[i].test, &r[k].epoch[i].test, sizeof r[0].epoch[i].test), 0);
    }
  }
  snc_train_result bad = {0};
  g_prefetch = 1, g_data_dir = "/nonexistent/snc-data";
  CU_ASSERT_EQUAL(run(siamese_small(), NULL, 0, 3, 1, 100, 50, NULL, &bad, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/nonexistent/snc-data: cannot open dataset directory"));
  g_prefetch = 0, g_data_dir = NULL;
  snc_train_result_free(&bad);
  for (int k = 0; k < 3; k++) snc_train_result_free(&r[k]);
}

/* --eval-train end / never: the same training and test curve to the bit, the training set evaluated
 * only where asked */
static void test_eval_train(void) {
  snc_error err = {0};
  snc_train_result r[3] = {{0}};
  for (int w = 0; w < 3; w++) {
    g_eval_train = w; /* SNC_EVAL_TRAIN_EVERY, _END, _NEVER */
    CU_ASSERT_EQUAL_FATAL(run(siamese_small(), NULL, 0, 3, 3, 100, 50, NULL, &r[w], &err), 0);
  }
  g_eval_train = SNC_EVAL_TRAIN_EVERY;
  for (int w = 1; w < 3; w++)
    for (int i = 0; i < 3; i++) {
      CU_ASSERT_EQUAL(memcmp(&r[0].epoch[i].step_loss, &r[w].epoch[i].step_loss, sizeof(double)), 0);
      CU_ASSERT_EQUAL(memcmp(&r[0].epoch[i].test, &r[w].epoch[i].test, sizeof r[0].epoch[i].test), 0);
      int asked = w == SNC_EVAL_TRAIN_END && i == 2;
      CU_ASSERT_EQUAL(r[w].epoch[i].train.noutputs, asked ? 3 : 0);
      if (asked) CU_ASSERT_EQUAL(memcmp(&r[0].epoch[i].train, &r[w].epoch[i].train, sizeof r[0].epoch[i].train), 0);
      if (!asked) CU_ASSERT_TRUE(isnan(r[w].epoch[i].train.loss));
    }
  CU_ASSERT_EQUAL(r[0].epoch[0].train.noutputs, 3);
  CU_ASSERT_TRUE(r[0].eval_seconds > r[2].eval_seconds && r[0].eval_seconds < r[0].seconds);
  CU_ASSERT_TRUE(r[0].data_seconds > 0 && r[0].data_seconds < r[0].seconds);
  int v = -1;
  CU_ASSERT_TRUE(snc_eval_train_parse("end", &v) == 0 && v == SNC_EVAL_TRAIN_END);
  CU_ASSERT_EQUAL(snc_eval_train_parse("sometimes", &v), -1);
  for (int w = 0; w < 3; w++) snc_train_result_free(&r[w]);
}

/* The JIT backend from the compiled-module cache trains exactly as the one that compiled: the same
 * step losses and test results to the bit, without the LLVM pipeline. */
static void test_jit_cache_same_run(void) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/jit-cache", tmpdir);
  snc_error err = {0};
  snc_train_result r[3] = {{0}};
  int status[3] = {0};
  for (int k = 0; k < 3; k++) {
    snc_graph *g = snc_model_load(siamese_small(), NULL, 0, &err);
    CU_ASSERT_FATAL(g && snc_autodiff(g, 0, &err) == 0);
    g->data.train_size = 100, g->data.test_size = 50;
    snc_jit_backend_opts jo = {.threads = 1, .cache_dir = k < 2 ? dir : NULL};
    snc_backend *be = snc_backend_jit_new(g, &jo, &err);
    if (!be) fprintf(stderr, "\n%s\n", err.msg);
    CU_ASSERT_FATAL(be != NULL);
    status[k] = snc_backend_jit_timing(be)->cache_status;
    snc_train_opts o = snc_train_defaults(g);
    o.seed = 5, o.epochs = 2, o.quiet = 1;
    CU_ASSERT_EQUAL(snc_train(g, be, &o, &r[k], &err), 0);
    be->free(be);
    snc_graph_free(g);
  }
  CU_ASSERT_EQUAL(status[0], SNC_JIT_CACHE_STORED);
  CU_ASSERT_EQUAL(status[1], SNC_JIT_CACHE_HIT);
  CU_ASSERT_EQUAL(status[2], SNC_JIT_CACHE_OFF);
  for (int k = 1; k < 3; k++)
    for (int i = 0; i < 2; i++) {
      CU_ASSERT_EQUAL(memcmp(&r[0].epoch[i].step_loss, &r[k].epoch[i].step_loss, sizeof(double)), 0);
      CU_ASSERT_EQUAL(memcmp(&r[0].epoch[i].test, &r[k].epoch[i].test, sizeof r[0].epoch[i].test), 0);
      CU_ASSERT_EQUAL(memcmp(&r[0].epoch[i].train, &r[k].epoch[i].train, sizeof r[0].epoch[i].train), 0);
    }
  for (int k = 0; k < 3; k++) snc_train_result_free(&r[k]);
}

/* Trains `model` on the JIT (1 thread, 100 training and 50 test samples, 2 epochs, seed 5), evaluating
 * on an evaluation build of eval_batch rows when eval_batch > 0, whose training build then leaves its
 * own evaluation out, as snrun's (no_eval: a forward call on it would stop the test). Returns
 * snc_train's status. */
static int run_eval_build(const char *model, const snc_override *sets, int nsets, int eval_batch, snc_train_result *r,
                          snc_error *err) {
  snc_graph *g = snc_model_load(model, sets, nsets, err), *eg = NULL;
  CU_ASSERT_FATAL(g && snc_autodiff(g, 0, err) == 0);
  g->data.train_size = 100, g->data.test_size = 50;
  snc_jit_backend_opts jo = {.threads = 1, .no_eval = eval_batch > 0};
  snc_backend *be = snc_backend_jit_new(g, &jo, err), *ebe = NULL;
  CU_ASSERT_FATAL(be != NULL);
  CU_ASSERT_EQUAL(snc_backend_jit_program(be)->ncalls[1] == 0, eval_batch > 0);
  jo.no_eval = 0;
  if (eval_batch > 0) CU_ASSERT_EQUAL_FATAL(snc_eval_build_new(model, sets, nsets, eval_batch, &jo, &eg, &ebe, err), 0);
  snc_train_opts o = snc_train_defaults(g);
  o.seed = 5, o.epochs = 2, o.quiet = 1, o.eval_train = SNC_EVAL_TRAIN_EVERY;
  o.eval_graph = eg, o.eval_backend = ebe;
  int rc = snc_train(g, be, &o, r, err);
  if (ebe) ebe->free(ebe);
  snc_graph_free(eg);
  be->free(be);
  snc_graph_free(g);
  return rc;
}

/* Evaluation on the forward graph built for more rows (snc_eval_build_new) gives the training build's
 * results: the training untouched to the bit, the same accuracies on both sets, the losses equal up
 * to the summation order of the wider kernels. With and without weight sharing (other parameter
 * names), and on siamese_plus, whose batch norm running statistics must be carried over too. */
static void test_eval_build_same_results(void) {
  snc_error err = {0};
  snc_override unshared = {"weight_sharing", "false"};
  snc_override plus[] = {{"batch", "16"}};
  struct { const char *model; const snc_override *sets; int nsets, eval_batch; } cases[] = {
      {siamese_small(), NULL, 0, 128}, {siamese_small(), &unshared, 1, 64}, {SNC_SRC("models/siamese_plus.yaml"), plus, 1, 48},
      {siamese_small(), NULL, 0, 25}}; /* the training batch: only the kernels differ (pooling fused), not the bits */
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    snc_train_result a = {0}, b = {0};
    CU_ASSERT_EQUAL_FATAL(run_eval_build(cases[c].model, cases[c].sets, cases[c].nsets, 0, &a, &err), 0);
    int rc = run_eval_build(cases[c].model, cases[c].sets, cases[c].nsets, cases[c].eval_batch, &b, &err);
    if (rc) fprintf(stderr, "\n%s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    for (int i = 0; i < 2; i++) {
      CU_ASSERT_EQUAL(memcmp(&a.epoch[i].step_loss, &b.epoch[i].step_loss, sizeof(double)), 0);
      const snc_eval_result *x[2] = {&a.epoch[i].test, &a.epoch[i].train}, *y[2] = {&b.epoch[i].test, &b.epoch[i].train};
      for (int s = 0; s < 2; s++) {
        CU_ASSERT_EQUAL(x[s]->n, y[s]->n);
        CU_ASSERT_EQUAL(x[s]->noutputs, y[s]->noutputs);
        CU_ASSERT_TRUE(x[s]->noutputs >= 1);
        for (int k = 0; k < x[s]->noutputs; k++) CU_ASSERT_EQUAL(x[s]->acc[k], y[s]->acc[k]);
        CU_ASSERT_TRUE(fabs(x[s]->loss - y[s]->loss) <= 1e-5 * fabs(x[s]->loss));
        if (cases[c].eval_batch == 25) CU_ASSERT_EQUAL(memcmp(&x[s]->loss, &y[s]->loss, sizeof(double)), 0);
      }
    }
    /* the state is carried over before every evaluation, not once: epoch 2 scores the trained weights */
    CU_ASSERT_TRUE(b.epoch[0].test.loss != b.epoch[1].test.loss);
    snc_train_result_free(&a);
    snc_train_result_free(&b);
  }
}

/* snc_eval_batch: a build only where it saves lanes; an evaluation build of another model is refused
 * by name before any work, and data-parallel training refuses one. */
static void test_eval_build_refused(void) {
  snc_error err = {0};
  snc_graph *g = snc_model_load(siamese_small(), NULL, 0, &err), *eg = NULL;
  CU_ASSERT_FATAL(g && snc_autodiff(g, 0, &err) == 0);
  snc_jit_backend_opts jo = {.threads = 1};
  snc_backend *be = snc_backend_jit_new(g, &jo, &err), *ebe = NULL;
  CU_ASSERT_FATAL(be != NULL);
  int test_size = g->data.test_size;
  g->data.test_size = 1000; /* 25 rows on 32 lanes: 40 calls, 1280 lanes; 8 calls of 128: 1024 */
  CU_ASSERT_EQUAL(snc_eval_batch(g, 1, -1), SNC_EVAL_BATCH);
  CU_ASSERT_EQUAL(snc_eval_batch(g, 0, -1), 0); /* the reference executor */
  g->data.test_size = 100; /* 4 calls of 32 lanes or 1 of 128: no gain */
  CU_ASSERT_EQUAL(snc_eval_batch(g, 1, -1), 0);
  g->data.test_size = 20; /* one call of the training build evaluates it */
  CU_ASSERT_EQUAL(snc_eval_batch(g, 1, -1), 0);
  g->data.test_size = test_size;
  /* a requested batch: cut to the larger split, none up to the training batch's 25 rows */
  int train_size = g->data.train_size;
  g->data.train_size = 200, g->data.test_size = 100;
  CU_ASSERT_EQUAL(snc_eval_batch(g, 1, 65536), 200);
  CU_ASSERT_EQUAL(snc_eval_batch(g, 1, 128), 128);
  CU_ASSERT_EQUAL(snc_eval_batch(g, 1, 25), 0);
  CU_ASSERT_EQUAL(snc_eval_batch(g, 1, 0), 0);
  g->data.train_size = train_size, g->data.test_size = test_size;
  CU_ASSERT_EQUAL_FATAL(snc_eval_build_new(SNC_SRC("models/digit_cnn.yaml"), NULL, 0, 128, &jo, &eg, &ebe, &err), 0);
  snc_train_opts o = snc_train_defaults(g);
  o.epochs = 1, o.quiet = 1, o.eval_graph = eg, o.eval_backend = ebe;
  snc_train_result r = {0};
  CU_ASSERT_EQUAL(snc_train(g, be, &o, &r, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no counterpart"));
  CU_ASSERT_EQUAL(r.nepochs, 0);
  snc_train_result_free(&r);
  o.data_parallel = 1;
  CU_ASSERT_EQUAL(snc_train(g, be, &o, &r, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "data-parallel"));
  snc_train_result_free(&r);
  ebe->free(ebe);
  snc_graph_free(eg);
  be->free(be);
  snc_graph_free(g);
}

/* ---- bad checkpoints ---------------------------------------------------------------------------- */

static char digit_ckpt[512];

static void test_digit_cnn_learns(void) {
  snc_error err = {0};
  snc_train_result r = {0};
  snprintf(digit_ckpt, sizeof digit_ckpt, "%s/digit_cnn.safetensors", tmpdir);
  int rc = run(SNC_SRC("models/digit_cnn.yaml"), NULL, 0, 1, 3, 200, 100, digit_ckpt, &r, &err);
  if (rc) fprintf(stderr, "\n%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  printf("\n  digit_cnn: step loss %.4f -> %.4f, test acc %.3f", r.epoch[0].step_loss, r.epoch[2].step_loss,
         r.final_acc);
  CU_ASSERT_TRUE(r.epoch[2].step_loss < r.epoch[0].step_loss);
  CU_ASSERT_TRUE(r.final_acc > 0.3);
  snc_train_result_free(&r);
}

static void test_eval_refuses_other_model(void) {
  snc_error err = {0};
  snc_eval_result r;
  CU_ASSERT_EQUAL(snc_eval_checkpoint(siamese_small(), NULL, 0, digit_ckpt, NULL, NULL, NULL, &r, NULL, &err), -1);
  printf("\n  %s", err.msg);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, digit_ckpt));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "model 'digit_cnn'"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'siamese'"));
}

static void test_eval_refuses_wrong_shape(void) {
  snc_error err = {0};
  snc_eval_result r;
  char path[512];
  snprintf(path, sizeof path, "%s/bad_shape.safetensors", tmpdir);
  static float w[16 * 9], b[32];
  snc_ckpt_tensor t[] = {{"digit_a.conv1.weight", SNC_CKPT_F32, 4, {16, 1, 3, 3}, w},
                         {"digit_a.conv1.bias", SNC_CKPT_F32, 1, {32}, b}};
  const char *meta[] = {"model", "siamese", "switches", "weight_sharing=true,aux_loss=true", "seed", "1", NULL};
  CU_ASSERT_EQUAL_FATAL(snc_ckpt_write(path, t, 2, meta, &err), 0);
  CU_ASSERT_EQUAL(snc_eval_checkpoint(siamese_small(), NULL, 0, path, NULL, NULL, NULL, &r, NULL, &err), -1);
  printf("\n  %s", err.msg);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "digit_a.conv1.weight"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "[16,1,3,3]") || strstr(err.msg, "[16, 1, 3, 3]"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "[32,1,3,3]") || strstr(err.msg, "[32, 1, 3, 3]"));
  /* a tensor missing altogether */
  t[0].dims[0] = 32;
  static float w32[32 * 9];
  t[0].data = w32;
  CU_ASSERT_EQUAL_FATAL(snc_ckpt_write(path, t, 2, meta, &err), 0);
  CU_ASSERT_EQUAL(snc_eval_checkpoint(siamese_small(), NULL, 0, path, NULL, NULL, NULL, &r, NULL, &err), -1);
  printf("\n  %s", err.msg);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "digit_a.conv2.weight"));
  /* not a checkpoint at all */
  CU_ASSERT_EQUAL(snc_eval_checkpoint(siamese_small(), NULL, 0, SNC_SRC("models/siamese.yaml"), NULL, NULL, NULL, &r, NULL,
                                      &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "models/siamese.yaml"));
}

/* ---- data checks -------------------------------------------------------------------------------- */

static void test_labels_validated(void) {
  snc_error err = {0};
  snc_train_result r = {0};
  const char *edits[] = {"{name: logits, linear: {units: 10}}", "{name: logits, linear: {units: 5}}", NULL};
  const char *m = small_model(SNC_SRC("models/digit_cnn.yaml"), "digit5.yaml", edits);
  CU_ASSERT_EQUAL(run(m, NULL, 0, 1, 1, 50, 50, NULL, &r, &err), -1);
  printf("\n  %s", err.msg);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "digit5.yaml:"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "outside [0, 5)"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'label'"));
  snc_train_result_free(&r);
  /* a missing dataset directory names the directory */
  snc_graph *g = snc_model_load(SNC_SRC("models/digit_cnn.yaml"), NULL, 0, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  snc_train_data d;
  CU_ASSERT_EQUAL(snc_train_data_load(g, "/nonexistent/mnist", 1, NULL, &d, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/nonexistent/mnist"));
  snc_graph_free(g);
}

/* ---- the CLI ------------------------------------------------------------------------------------- */

static int sh(const char *args) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "%s/snrun %s >/dev/null 2>&1", SNC_BINARY_DIR, args);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli_exit_codes(void) {
  CU_ASSERT_EQUAL(sh(""), 2);
  CU_ASSERT_EQUAL(sh("frobnicate"), 2);
  CU_ASSERT_EQUAL(sh("train"), 2);
  CU_ASSERT_EQUAL(sh("train models/siamese.yaml --bogus"), 2);
  CU_ASSERT_EQUAL(sh("train models/siamese.yaml --epochs zero"), 2);
  CU_ASSERT_EQUAL(sh("train models/siamese.yaml --seed"), 2);
  CU_ASSERT_EQUAL(sh("train models/siamese.yaml --backend gpu"), 2);
  CU_ASSERT_EQUAL(sh("train models/siamese.yaml --set weight_sharing"), 2);
  CU_ASSERT_EQUAL(sh("train models/siamese.yaml --eval-batch lots"), 2);
  CU_ASSERT_EQUAL(sh("train models/siamese.yaml --eval-batch 65537"), 2);
  CU_ASSERT_EQUAL(sh("eval models/siamese.yaml --checkpoint x --eval-batch 128"), 2);
  CU_ASSERT_EQUAL(sh("eval models/siamese.yaml"), 2);
  CU_ASSERT_EQUAL(sh("eval models/siamese.yaml --checkpoint x --epochs 3"), 2);
  CU_ASSERT_EQUAL(sh("--version"), 0);
  CU_ASSERT_EQUAL(sh("--help"), 0);
  CU_ASSERT_EQUAL(sh("train --help"), 0);
  CU_ASSERT_EQUAL(sh("eval --help"), 0);
  CU_ASSERT_EQUAL(sh("train /nonexistent/model.yaml"), 1);
  CU_ASSERT_EQUAL(sh("train models/siamese.yaml --set no_such_switch=1"), 1);
  CU_ASSERT_EQUAL(sh("train models/siamese.yaml --data /nonexistent/mnist"), 1);
  char args[2048];
  snprintf(args, sizeof args, "eval models/siamese.yaml --checkpoint %s/none.safetensors", tmpdir);
  CU_ASSERT_EQUAL(sh(args), 1);
  snprintf(args, sizeof args, "eval %s --checkpoint %s", siamese_small(), main_ckpt);
  CU_ASSERT_EQUAL(sh(args), 0);
}

/* Ctrl-C in the middle of a long run: exit 130 with the checkpoint saved. */
static void test_cli_sigint(void) {
  char save[512], bin[512];
  snprintf(save, sizeof save, "%s/interrupted.safetensors", tmpdir);
  snprintf(bin, sizeof bin, "%s/snrun", SNC_BINARY_DIR);
  pid_t pid = fork();
  CU_ASSERT_TRUE_FATAL(pid >= 0);
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    execl(bin, bin, "train", SNC_SRC("models/digit_cnn.yaml"), "--epochs", "1000", "--save", save, (char *)NULL);
    _exit(127);
  }
  struct stat st;
  for (int i = 0; i < 3000 && stat(save, &st) != 0; i++) usleep(20000); /* the epoch-0 checkpoint (up to 60 s: sanitized builds are slow) */
  usleep(300000);
  kill(pid, SIGINT);
  int status;
  CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
  CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 130);
  snc_error err = {0};
  snc_ckpt *c = snc_ckpt_read(save, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(c);
  CU_ASSERT_TRUE(atoi(snc_ckpt_meta(c, "step")) >= 1); /* saved after the interrupted step */
  snc_ckpt_free(c);
}

static void cleanup_dir(void) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmpdir);
}

static void register_tests(void) {
  snprintf(tmpdir, sizeof tmpdir, "%s", "/tmp/snc_test_train.XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    exit(1);
  }
  atexit(cleanup_dir);
  SNC_SUITE("train", {"siamese learns", test_siamese_learns}, {"eval matches training", test_eval_matches_training},
            {"--init from a checkpoint", test_init_from_checkpoint},
            {"same seed same run", test_same_seed_same_run}, {"--eval-train end, never", test_eval_train},
            {"data drawn during the compile", test_prefetch_same_run},
            {"a JIT from the compiled-module cache trains the same", test_jit_cache_same_run},
            {"an evaluation build gives the same results", test_eval_build_same_results},
            {"an evaluation build of another model is refused", test_eval_build_refused}, {"digit_cnn learns", test_digit_cnn_learns},
            {"eval refuses other model", test_eval_refuses_other_model},
            {"eval refuses wrong shape", test_eval_refuses_wrong_shape}, {"labels validated", test_labels_validated},
            {"cli exit codes", test_cli_exit_codes}, {"cli sigint", test_cli_sigint});
}

SNC_TEST_MAIN(register_tests)
