/* Learning-rate schedules and augmentation of the training section: the model language's options,
 * the one-cycle factors against PyTorch's OneCycleLR, the shift offsets (deterministic, in range,
 * uniform, per image and epoch), the shifted image itself, and a short run that is reproducible with
 * augmentation on and differs from one without. */
#include <math.h>
#include <string.h>

#include "snc/autodiff.h"
#include "snc/frontend.h"
#include "snc/train.h"
#include "testutil.h"
#include "runutil.h"

static void test_options(void) {
  snc_graph *g = load(MODEL_HEAD "training: {lr: 0.01}\n");
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT_EQUAL(g->train.schedule, SNC_SCHED_CONSTANT);
  CU_ASSERT_EQUAL(g->train.augment_shift, 0);
  CU_ASSERT_EQUAL(snc_lr_scale(&g->train, 7, 100), 1.0);
  snc_graph_free(g);
  g = load(MODEL_HEAD "training: {schedule: onecycle, augment: {shift: 2}}\n");
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT_EQUAL(g->train.schedule, SNC_SCHED_ONECYCLE);
  CU_ASSERT(g->train.pct_start == 0.3f && g->train.div_factor == 25.0f && g->train.final_div_factor == 1e4f);
  CU_ASSERT_EQUAL(g->train.anneal_linear, 0);
  CU_ASSERT_EQUAL(g->train.augment_shift, 2);
  snc_graph_free(g);
  g = load(MODEL_HEAD "training:\n  schedule: {type: onecycle, pct_start: 0.25, div_factor: 10, final_div_factor: 100, "
                      "anneal: linear}\n");
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT(g->train.pct_start == 0.25f && g->train.div_factor == 10.0f && g->train.final_div_factor == 100.0f);
  CU_ASSERT_EQUAL(g->train.anneal_linear, 1);
  snc_graph_free(g);
  g = load(MODEL_HEAD "training: {schedule: {type: constant}}\n");
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT_EQUAL(g->train.schedule, SNC_SCHED_CONSTANT);
  snc_graph_free(g);
}

/* PyTorch 1.13: OneCycleLR(SGD(lr=1), max_lr=1, total_steps, pct_start, div_factor, final_div_factor,
 * anneal_strategy, cycle_momentum=False); the lr in use at optimizer step s (1-based), printed with
 * 17 digits. */
static void test_onecycle_values(void) {
  snc_train_cfg t = {.schedule = SNC_SCHED_ONECYCLE, .pct_start = 0.3f, .div_factor = 25, .final_div_factor = 1e4f};
  static const struct { int64_t step; double lr; } cos400[] = {
      {1, 0.040000000000000036}, {2, 0.04016725990295256}, {50, 0.38864176476540013}, {120, 1.0},
      {121, 0.9999685285032368}, {200, 0.8117456539497631}, {400, 4e-06}};
  for (size_t i = 0; i < sizeof cos400 / sizeof *cos400; i++) {
    double got = snc_lr_scale(&t, cos400[i].step, 400);
    if (fabs(got - cos400[i].lr) > 1e-6 * cos400[i].lr + 1e-12)
      fprintf(stderr, "\n  cos step %lld: %.17g, PyTorch %.17g", (long long)cos400[i].step, got, cos400[i].lr);
    CU_ASSERT(fabs(got - cos400[i].lr) <= 1e-6 * cos400[i].lr + 1e-12);
  }
  snc_train_cfg l = {.schedule = SNC_SCHED_ONECYCLE, .pct_start = 0.25f, .div_factor = 10, .final_div_factor = 100,
                     .anneal_linear = 1};
  static const struct { int64_t step; double lr; } lin100[] = {
      {1, 0.1}, {10, 0.4375}, {25, 1.0}, {26, 0.98668}, {60, 0.5338}, {100, 0.0010000000000000009}};
  for (size_t i = 0; i < sizeof lin100 / sizeof *lin100; i++) {
    double got = snc_lr_scale(&l, lin100[i].step, 100);
    if (fabs(got - lin100[i].lr) > 1e-6 * lin100[i].lr)
      fprintf(stderr, "\n  linear step %lld: %.17g, PyTorch %.17g", (long long)lin100[i].step, got, lin100[i].lr);
    CU_ASSERT(fabs(got - lin100[i].lr) <= 1e-6 * lin100[i].lr);
  }
  /* past the end it stays at the final value (a run never goes there) */
  CU_ASSERT(fabs(snc_lr_scale(&t, 401, 400) - 4e-6) < 1e-12);
}

static void test_offsets(void) {
  int count[5][5] = {{0}}, changed = 0;
  const int n = 45000;
  for (int i = 0; i < n; i++) {
    int dy, dx, dy2, dx2, dy3, dx3;
    snc_augment_offsets(77, 3, i, 2, &dy, &dx);
    snc_augment_offsets(77, 3, i, 2, &dy2, &dx2); /* the same draw every time it is asked for */
    CU_ASSERT(dy == dy2 && dx == dx2);
    CU_ASSERT_FATAL(dy >= -2 && dy <= 2 && dx >= -2 && dx <= 2);
    count[dy + 2][dx + 2]++;
    snc_augment_offsets(77, 4, i, 2, &dy3, &dx3); /* another epoch: a fresh draw */
    changed += dy3 != dy || dx3 != dx;
  }
  /* 25 cells of expected 1800: a binomial standard deviation of 41; allow 5 of them */
  for (int a = 0; a < 5; a++)
    for (int b = 0; b < 5; b++) CU_ASSERT(fabs(count[a][b] - n / 25.0) < 5 * 41);
  CU_ASSERT(fabs(changed - n * 24 / 25.0) < 5 * sqrt(n * 0.04 * 0.96));
  int dy, dx;
  snc_augment_offsets(77, 3, 5, 0, &dy, &dx); /* shift 0: no move */
  CU_ASSERT(dy == 0 && dx == 0);
}

static void test_shift_image(void) {
  float src[12], dst[12];
  for (int i = 0; i < 12; i++) src[i] = (float)(i + 1); /* 3 rows of 4 */
  snc_augment_shift(dst, src, 3, 4, 1, -1, -9.0f);     /* one row down, one column left */
  const float want[12] = {-9, -9, -9, -9, 2, 3, 4, -9, 6, 7, 8, -9};
  CU_ASSERT_EQUAL(memcmp(dst, want, sizeof want), 0);
  snc_augment_shift(dst, src, 3, 4, 0, 0, -9.0f);
  CU_ASSERT_EQUAL(memcmp(dst, src, sizeof src), 0);
}

/* A linear model on the pairs, one short epoch on the reference backend. */
static double short_run(int shift, uint64_t seed) {
  char text[1024];
  snprintf(text, sizeof text,
           "inputs: {pair: {shape: [2, 14, 14]}, target: {shape: [], dtype: int32}}\n"
           "graph:\n  - {name: flat, flatten, from: pair}\n  - {name: fc, linear: {units: 2}}\n"
           "losses:\n  - {name: ce, cross_entropy, from: [fc, target]}\n"
           "outputs: {compare: {from: fc, target: target}}\n"
           "training: {batch_size: 50, epochs: 2, schedule: onecycle%s}\n"
           "data: {generator: mnist_pairs, train: 200, test: 100}\n",
           shift ? ", augment: {shift: 1}" : "");
  snc_graph *g = load(text);
  return two_epoch_loss(g, seed);
}

static void test_training_runs(void) {
  double a = short_run(1, 5), b = short_run(1, 5), c = short_run(0, 5);
  CU_ASSERT_EQUAL(a, b); /* the same seed: the same shifts, the same run, bit for bit */
  CU_ASSERT(a != c);     /* the shifts change what the model sees */
  CU_ASSERT(isfinite(a) && isfinite(c));
}

static void register_tests(void) {
  SNC_SUITE("schedules and augmentation", {"training options", test_options},
            {"onecycle against PyTorch", test_onecycle_values}, {"shift offsets", test_offsets},
            {"shifted image", test_shift_image}, {"training runs", test_training_runs});
}
SNC_TEST_MAIN(register_tests)
