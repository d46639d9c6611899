/* Affine and elastic augmentation (augment: {rotate: deg, scale: f, elastic: px, grid: n} next to
 * shift): the model language's options, the draws (deterministic, in range, roughly uniform,
 * independent of the shift's), the transformed image (identity, a quarter turn, scaling about the
 * centre, the shift on top, fill; the elastic field's interpolation, bounds and smoothness),
 * shift-only models unchanged, and a short run that is reproducible and differs from shift only. */
#include <math.h>
#include <string.h>

#include "snc/autodiff.h"
#include "snc/frontend.h"
#include "snc/train.h"
#include "testutil.h"
#include "runutil.h"

static void test_options(void) {
  snc_graph *g = load(MODEL_HEAD "training: {augment: {shift: 1, rotate: 12, scale: 0.1}}\n");
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT_EQUAL(g->train.augment_shift, 1);
  CU_ASSERT(g->train.augment_rotate == 12.0f && g->train.augment_scale == 0.1f);
  CU_ASSERT(snc_augment_on(&g->train));
  snc_graph_free(g);
  g = load(MODEL_HEAD "training: {augment: {rotate: 5}}\n"); /* rotate alone: no shift */
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT(g->train.augment_shift == 0 && g->train.augment_rotate == 5.0f && g->train.augment_scale == 0.0f);
  CU_ASSERT(snc_augment_on(&g->train));
  snc_graph_free(g);
  g = load(MODEL_HEAD "switches: {r: 7}\ntraining: {augment: {shift: 0, rotate: $r}}\n"); /* a switch */
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT(g->train.augment_rotate == 7.0f);
  snc_graph_free(g);
  g = load(MODEL_HEAD "training: {augment: {elastic: 0.75, grid: 4}}\n"); /* elastic alone */
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT(g->train.augment_elastic == 0.75f && g->train.augment_grid == 4 && g->train.augment_rotate == 0.0f);
  CU_ASSERT(snc_augment_on(&g->train));
  snc_graph_free(g);
  g = load(MODEL_HEAD "training: {augment: {shift: 1, elastic: 1}}\n"); /* grid defaults to 3 */
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT(g->train.augment_elastic == 1.0f && g->train.augment_grid == 3);
  snc_graph_free(g);
  g = load(MODEL_HEAD "training: {lr: 0.1}\n");
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT(!snc_augment_on(&g->train));
  snc_graph_free(g);
  /* refused: out of range, no image input (the corpus has the messages) */
  snc_error err = {0};
  const char *bad[] = {MODEL_HEAD "training: {augment: {rotate: 46}}\n", MODEL_HEAD "training: {augment: {scale: 0.6}}\n",
                       MODEL_HEAD "training: {augment: {rotate: -1}}\n", MODEL_HEAD "training: {augment: {}}\n",
                       "inputs: {x: {shape: [4]}}\ngraph:\n  - {name: a, tanh, from: x}\ntraining: {augment: {scale: 0.1}}\n",
                       MODEL_HEAD "training: {augment: {elastic: 5}}\n", MODEL_HEAD "training: {augment: {elastic: -1}}\n",
                       MODEL_HEAD "training: {augment: {elastic: 1, grid: 1}}\n",
                       MODEL_HEAD "training: {augment: {elastic: 1, grid: 9}}\n",
                       MODEL_HEAD "training: {augment: {shift: 1, grid: 3}}\n", /* grid without elastic */
                       "inputs: {x: {shape: [4]}}\ngraph:\n  - {name: a, tanh, from: x}\ntraining: {augment: {elastic: 1}}\n"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    g = snc_model_load_text(bad[i], strlen(bad[i]), "t.yaml", NULL, 0, &err);
    CU_ASSERT_PTR_NULL(g);
    snc_graph_free(g);
  }
}

static void test_draws(void) {
  const int n = 20000;
  int bins[10] = {0}, sbins[10] = {0}, changed = 0;
  double sum = 0, corr = 0;
  for (int i = 0; i < n; i++) {
    double d, f, d2, f2, d3, f3;
    snc_augment_affine_draw(99, 2, i, 15, 0.2f, &d, &f);
    snc_augment_affine_draw(99, 2, i, 15, 0.2f, &d2, &f2); /* the same draw every time */
    CU_ASSERT(d == d2 && f == f2);
    CU_ASSERT_FATAL(d >= -15 && d <= 15 && f >= 0.8 && f <= 1.2);
    bins[(int)((d + 15) / 3.0) < 10 ? (int)((d + 15) / 3.0) : 9]++;
    sbins[(int)((f - 0.8) / 0.04) < 10 ? (int)((f - 0.8) / 0.04) : 9]++;
    sum += d;
    corr += d / 15 * (f - 1) / 0.2; /* angle and scale independent */
    snc_augment_affine_draw(99, 3, i, 15, 0.2f, &d3, &f3); /* another epoch: a fresh draw */
    changed += d3 != d;
  }
  /* 10 bins of expected 2000: binomial std 42; allow 5 of them */
  for (int b = 0; b < 10; b++) CU_ASSERT(fabs(bins[b] - n / 10.0) < 5 * 42 && fabs(sbins[b] - n / 10.0) < 5 * 42);
  CU_ASSERT(fabs(sum / n) < 5 * 15 / sqrt(3.0 * n));
  CU_ASSERT(fabs(corr / n) < 5 * (1 / 3.0) / sqrt((double)n));
  CU_ASSERT_EQUAL(changed, n);
  double d, f;
  snc_augment_affine_draw(99, 2, 7, 0, 0, &d, &f); /* off: no rotation, factor 1 */
  CU_ASSERT(d == 0 && f == 1);
}

static void print_image(const char *what, const float *a, int h, int w) {
  fprintf(stderr, "\n%s:\n", what);
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++) fprintf(stderr, " %5.2f", a[y * w + x]);
    fputc('\n', stderr);
  }
}

static int near(const float *a, const float *b, int n, float tol) {
  for (int i = 0; i < n; i++)
    if (!(fabsf(a[i] - b[i]) <= tol)) return 0;
  return 1;
}

static void test_image(void) {
  float src[25], dst[25], want[25];
  for (int i = 0; i < 25; i++) src[i] = (float)(i + 1); /* 5 rows of 5 */
  /* identity and pure shifts: exactly snc_augment_shift's image */
  for (int dy = -2; dy <= 2; dy++)
    for (int dx = -2; dx <= 2; dx++) {
      snc_augment_affine(dst, src, 5, 5, 0, 1, dy, dx, -9.0f);
      snc_augment_shift(want, src, 5, 5, dy, dx, -9.0f);
      CU_ASSERT_EQUAL(memcmp(dst, want, sizeof want), 0);
    }
  /* a quarter turn counter-clockwise as displayed: the top row becomes the left column, read
   * bottom to top; dst(y, x) = src(x, 4 - y) */
  snc_augment_affine(dst, src, 5, 5, 90, 1, 0, 0, -9.0f);
  for (int y = 0; y < 5; y++)
    for (int x = 0; x < 5; x++) want[y * 5 + x] = src[x * 5 + (4 - y)];
  if (!near(dst, want, 25, 1e-4f)) print_image("quarter turn", dst, 5, 5);
  CU_ASSERT(near(dst, want, 25, 1e-4f));
  /* a quarter turn the other way and a half turn */
  snc_augment_affine(dst, src, 5, 5, -90, 1, 0, 0, -9.0f);
  for (int y = 0; y < 5; y++)
    for (int x = 0; x < 5; x++) want[y * 5 + x] = src[(4 - x) * 5 + y];
  CU_ASSERT(near(dst, want, 25, 1e-4f));
  snc_augment_affine(dst, src, 5, 5, 180, 1, 0, 0, -9.0f);
  for (int i = 0; i < 25; i++) want[i] = src[24 - i];
  CU_ASSERT(near(dst, want, 25, 1e-4f));
  /* scaling by 2 about the centre pixel (2, 2): dst(y, x) = src(2 + (y - 2) / 2, 2 + (x - 2) / 2),
   * bilinear on the linear ramp src = 5 y + x + 1, so exactly that expression */
  snc_augment_affine(dst, src, 5, 5, 0, 2, 0, 0, -9.0f);
  for (int y = 0; y < 5; y++)
    for (int x = 0; x < 5; x++) want[y * 5 + x] = 5 * (2 + (y - 2) * 0.5f) + (2 + (x - 2) * 0.5f) + 1;
  if (!near(dst, want, 25, 1e-5f)) print_image("scaled by 2", dst, 5, 5);
  CU_ASSERT(near(dst, want, 25, 1e-5f));
  /* scaling by 0.5: the corners come from outside (fill), the centre stays */
  snc_augment_affine(dst, src, 5, 5, 0, 0.5, 0, 0, -9.0f);
  CU_ASSERT(dst[0] == -9.0f && dst[24] == -9.0f && dst[12] == src[12]);
  CU_ASSERT(fabsf(dst[11] - src[10]) < 1e-6f && fabsf(dst[13] - src[14]) < 1e-6f); /* 1 pixel <- 2 pixels */
  /* the shift comes after the rotation: rotate then move one row down */
  float rot[25];
  snc_augment_affine(rot, src, 5, 5, 90, 1, 0, 0, -9.0f);
  snc_augment_affine(dst, src, 5, 5, 90, 1, 1, 0, -9.0f);
  CU_ASSERT(near(dst + 5, rot, 20, 1e-4f));
  for (int x = 0; x < 5; x++) CU_ASSERT(dst[x] == -9.0f);
}

/* The elastic field: control draws deterministic, in range, fresh per image and epoch, independent
 * of the affine draw; the warp interpolates the control grid (corners exact, midpoints averaged),
 * a constant field is a plain move, and NULL is snc_augment_affine. */
static void test_elastic(void) {
  float c1[2 * 9], c2[2 * 9], c3[2 * 9];
  int changed = 0, bins[4] = {0};
  for (int i = 0; i < 2000; i++) {
    snc_augment_elastic_draw(42, 3, i, 0.8f, 3, c1);
    snc_augment_elastic_draw(42, 3, i, 0.8f, 3, c2);
    CU_ASSERT_EQUAL(memcmp(c1, c2, sizeof c1), 0);
    snc_augment_elastic_draw(42, 4, i, 0.8f, 3, c3);
    for (int k = 0; k < 18; k++) {
      CU_ASSERT_FATAL(c1[k] >= -0.8f && c1[k] <= 0.8f);
      bins[(int)((c1[k] + 0.8f) / 0.4f) < 4 ? (int)((c1[k] + 0.8f) / 0.4f) : 3]++;
      changed += c1[k] != c3[k];
    }
  }
  /* 36,000 draws in 4 bins of expected 9,000: binomial std 82; allow 5 of them */
  for (int b = 0; b < 4; b++) CU_ASSERT(fabs(bins[b] - 9000.0) < 5 * 82);
  CU_ASSERT(changed > 35900);
  /* the warp: a ramp src = 10 y + x on 9 x 9 (interior sampling of a linear image is exact) */
  float src[81], dst[81], want[81], ctl[2 * 9];
  for (int y = 0; y < 9; y++)
    for (int x = 0; x < 9; x++) src[y * 9 + x] = (float)(10 * y + x);
  /* a constant displacement of whole pixels (1 row down, 2 columns left in the source) is a move */
  for (int k = 0; k < 9; k++) ctl[2 * k] = 1, ctl[2 * k + 1] = -2;
  snc_augment_warp(dst, src, 9, 9, 0, 1, 0, 0, ctl, 3, -1.0f);
  snc_augment_shift(want, src, 9, 9, -1, 2, -1.0f);
  CU_ASSERT_EQUAL(memcmp(dst, want, sizeof want), 0);
  /* one control point moved: the centre of a 3 x 3 grid sits on pixel (4, 4), 0.5 columns right;
   * its influence falls off bilinearly to 0 at the neighbouring control points (0 and 8) */
  memset(ctl, 0, sizeof ctl);
  ctl[2 * 4 + 1] = 0.5f;
  snc_augment_warp(dst, src, 9, 9, 0, 1, 0, 0, ctl, 3, -1.0f);
  for (int y = 0; y < 9; y++)
    for (int x = 0; x < 9; x++) {
      double wy = 1 - abs(y - 4) / 4.0, wx = 1 - abs(x - 4) / 4.0, sx = x + 0.5 * wy * wx;
      want[y * 9 + x] = sx <= 8 ? (float)(10 * y + sx) : -1.0f; /* the right edge samples outside */
    }
  if (!near(dst, want, 81, 1e-4f)) print_image("one control point", dst, 9, 9);
  CU_ASSERT(near(dst, want, 81, 1e-4f));
  /* no field: exactly the affine image */
  float a[81], b[81];
  snc_augment_warp(a, src, 9, 9, 17, 1.05, 1, -1, NULL, 3, -1.0f);
  snc_augment_affine(b, src, 9, 9, 17, 1.05, 1, -1, -1.0f);
  CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
  /* a drawn field of up to 0.5 pixels moves a ramp's interior pixels by at most 0.5 per axis */
  snc_augment_elastic_draw(7, 1, 1, 0.5f, 3, ctl);
  snc_augment_warp(dst, src, 9, 9, 0, 1, 0, 0, ctl, 3, -1.0f);
  int moved = 0;
  for (int y = 1; y < 8; y++)
    for (int x = 1; x < 8; x++) {
      float v = dst[y * 9 + x], dy = floorf(v / 10 + 0.5f) - y; /* rows: tens, columns: units */
      CU_ASSERT(fabsf(v - (float)(10 * y + x)) <= 10 * 0.5f + 0.5f + 1e-4f);
      CU_ASSERT(fabsf(dy) <= 1);
      moved += v != src[y * 9 + x];
    }
  CU_ASSERT(moved > 40);
}

/* snc_augment_image: shift only is snc_augment_offsets + snc_augment_shift bit for bit (existing
 * models train exactly as before); with rotate it uses the same shift and the affine draw. */
static void test_image_dispatch(void) {
  float src[196], a[196], b[196];
  for (int i = 0; i < 196; i++) src[i] = sinf((float)i);
  snc_train_cfg t = {.augment_shift = 2};
  for (int img = 0; img < 50; img++) {
    int dy, dx;
    snc_augment_image(&t, 1234, 5, img, a, src, 14, 14, -0.4f);
    snc_augment_offsets(1234, 5, img, 2, &dy, &dx);
    snc_augment_shift(b, src, 14, 14, dy, dx, -0.4f);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
  }
  t.augment_rotate = 10;
  t.augment_scale = 0.1f;
  int differ = 0;
  for (int img = 0; img < 50; img++) {
    int dy, dx;
    double deg, f;
    snc_augment_image(&t, 1234, 5, img, a, src, 14, 14, -0.4f);
    snc_augment_offsets(1234, 5, img, 2, &dy, &dx);
    snc_augment_affine_draw(1234, 5, img, 10, 0.1f, &deg, &f);
    snc_augment_affine(b, src, 14, 14, deg, f, dy, dx, -0.4f);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
    snc_augment_shift(b, src, 14, 14, dy, dx, -0.4f);
    differ += memcmp(a, b, sizeof a) != 0;
  }
  CU_ASSERT_EQUAL(differ, 50);
  /* with elastic: the same shift and affine draw, then the elastic draw of the model's grid */
  t.augment_elastic = 0.7f;
  t.augment_grid = 4;
  differ = 0;
  for (int img = 0; img < 50; img++) {
    int dy, dx;
    double deg, f;
    float ctl[2 * 16];
    snc_augment_image(&t, 1234, 5, img, a, src, 14, 14, -0.4f);
    snc_augment_offsets(1234, 5, img, 2, &dy, &dx);
    snc_augment_affine_draw(1234, 5, img, 10, 0.1f, &deg, &f);
    snc_augment_elastic_draw(1234, 5, img, 0.7f, 4, ctl);
    snc_augment_warp(b, src, 14, 14, deg, f, dy, dx, ctl, 4, -0.4f);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
    snc_augment_affine(b, src, 14, 14, deg, f, dy, dx, -0.4f);
    differ += memcmp(a, b, sizeof a) != 0;
  }
  CU_ASSERT_EQUAL(differ, 50);
}

/* A linear model on the pairs, two short epochs on the reference backend. */
static double short_run(const char *augment, uint64_t seed) {
  char text[1024];
  snprintf(text, sizeof text,
           "inputs: {pair: {shape: [2, 14, 14]}, target: {shape: [], dtype: int32}}\n"
           "graph:\n  - {name: flat, flatten, from: pair}\n  - {name: fc, linear: {units: 2}}\n"
           "losses:\n  - {name: ce, cross_entropy, from: [fc, target]}\n"
           "outputs: {compare: {from: fc, target: target}}\n"
           "training: {batch_size: 50, epochs: 2, schedule: onecycle, augment: %s}\n"
           "data: {generator: mnist_pairs, train: 200, test: 100}\n",
           augment);
  snc_graph *g = load(text);
  return two_epoch_loss(g, seed);
}

static void test_training_runs(void) {
  double a = short_run("{shift: 1, rotate: 15, scale: 0.1}", 5), b = short_run("{shift: 1, rotate: 15, scale: 0.1}", 5);
  double c = short_run("{shift: 1}", 5), d = short_run("{rotate: 15}", 5);
  CU_ASSERT_EQUAL(a, b); /* the same seed: the same transforms, the same run, bit for bit */
  CU_ASSERT(a != c);     /* rotation and scaling change what the model sees */
  CU_ASSERT(d != c && d != a);
  double e = short_run("{shift: 1, elastic: 1}", 5), e2 = short_run("{shift: 1, elastic: 1}", 5);
  CU_ASSERT_EQUAL(e, e2);
  CU_ASSERT(e != c && isfinite(e));
  CU_ASSERT(isfinite(a) && isfinite(c) && isfinite(d));
}

static void register_tests(void) {
  SNC_SUITE("affine augmentation", {"options", test_options}, {"draws", test_draws}, {"image", test_image},
            {"elastic", test_elastic},
            {"shift only unchanged", test_image_dispatch}, {"training runs", test_training_runs});
}
SNC_TEST_MAIN(register_tests)
