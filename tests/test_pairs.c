/* Pair and digit sets from the bundled MNIST subset: statistics, consistency, distinct picks,
 * exact pooling, determinism, disjoint pools, standardisation, permutations. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snc/data.h"
#include "testutil.h"

#define P14 (SNC_PAIR_SIDE * SNC_PAIR_SIDE)
#define P28 (SNC_IMG_SIDE * SNC_IMG_SIDE)

static snc_dataset train, test;

static uint64_t fnv(const void *p, size_t n) {
  const uint8_t *b = p;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

/* Open-addressing set of fixed-size records (images), looked up by content. */
typedef struct {
  size_t rec, cap;
  const uint8_t **slot;
  int64_t *id;
} img_set;

static img_set set_new(size_t rec, size_t n) {
  img_set s = {rec, 1, NULL, NULL};
  while (s.cap < 2 * n) s.cap *= 2;
  s.slot = calloc(s.cap, sizeof *s.slot);
  s.id = calloc(s.cap, sizeof *s.id);
  return s;
}

/* Returns the id already stored for this content, or stores id and returns -1. */
static int64_t set_put(img_set *s, const void *img, int64_t id) {
  for (size_t h = fnv(img, s->rec) & (s->cap - 1);; h = (h + 1) & (s->cap - 1)) {
    if (!s->slot[h]) {
      s->slot[h] = img;
      s->id[h] = id;
      return -1;
    }
    if (memcmp(s->slot[h], img, s->rec) == 0) return s->id[h];
  }
}

static int64_t set_get(const img_set *s, const void *img) {
  for (size_t h = fnv(img, s->rec) & (s->cap - 1);; h = (h + 1) & (s->cap - 1)) {
    if (!s->slot[h]) return -1;
    if (memcmp(s->slot[h], img, s->rec) == 0) return s->id[h];
  }
}

static void set_free(img_set *s) {
  free(s->slot);
  free(s->id);
}

static void test_pair_stats(void) {
  snc_pairs p;
  snc_error err = {{0}};
  CU_ASSERT_EQUAL_FATAL(snc_pairs_generate(&train, 1000, 7, &p, &err), 0);
  CU_ASSERT_EQUAL(p.n, 1000);
  int ones = 0, agree = 1, range = 1;
  for (int k = 0; k < 1000; k++) {
    ones += p.target[k];
    agree &= p.target[k] == (p.classes[2 * k] <= p.classes[2 * k + 1]);
    range &= p.classes[2 * k] >= 0 && p.classes[2 * k] <= 9 && p.classes[2 * k + 1] >= 0 && p.classes[2 * k + 1] <= 9;
  }
  CU_ASSERT(agree);
  CU_ASSERT(range);
  double frac = ones / 1000.0;
  CU_ASSERT(frac >= 0.48 && frac <= 0.62);
  if (!(frac >= 0.48 && frac <= 0.62)) fprintf(stderr, "\n  fraction of target 1: %.3f\n", frac);
  snc_pairs_free(&p);
}

/* Every pair image is the pooled version of a pool image with the right class, and the 2N
 * pool images behind them are distinct. Found by content, independently of the generator. */
static void test_distinct_picks(void) {
  float *pooled = malloc(sizeof(float) * (size_t)train.n * P14);
  img_set s = set_new(sizeof(float) * P14, (size_t)train.n);
  int64_t collisions = 0;
  for (int64_t i = 0; i < train.n; i++) {
    snc_rt_pool14(train.images + i * P28, pooled + i * P14);
    collisions += set_put(&s, pooled + i * P14, i) >= 0;
  }
  CU_ASSERT_EQUAL(collisions, 0); /* pooled pool images are unique, so lookups are unambiguous */
  snc_pairs p;
  snc_error err = {{0}};
  CU_ASSERT_EQUAL_FATAL(snc_pairs_generate(&train, 1000, 11, &p, &err), 0);
  uint8_t *used = calloc((size_t)train.n, 1);
  int found = 1, distinct = 1, label_ok = 1;
  for (int k = 0; k < 2000; k++) {
    int64_t i = set_get(&s, p.images + (size_t)k * P14);
    if (i < 0) {
      found = 0;
      continue;
    }
    distinct &= !used[i];
    used[i] = 1;
    label_ok &= p.classes[k] == train.labels[i];
  }
  CU_ASSERT(found);
  CU_ASSERT(distinct);
  CU_ASSERT(label_ok);
  free(used);
  snc_pairs_free(&p);
  set_free(&s);
  free(pooled);
}

static void test_pool_exact(void) {
  uint8_t img[P28];
  for (int r = 0; r < 28; r++)
    for (int c = 0; c < 28; c++) img[r * 28 + c] = (uint8_t)((r * 37 + c * 11 + r * c) % 256);
  img[0] = 255, img[1] = 0, img[28] = 0, img[29] = 1; /* top-left block: mean 64 */
  float out[P14];
  snc_rt_pool14(img, out);
  CU_ASSERT_EQUAL(out[0], 64.0f);
  int exact = 1;
  for (int i = 0; i < 14; i++)
    for (int j = 0; j < 14; j++) {
      int s = img[(2 * i) * 28 + 2 * j] + img[(2 * i) * 28 + 2 * j + 1] + img[(2 * i + 1) * 28 + 2 * j] +
              img[(2 * i + 1) * 28 + 2 * j + 1];
      exact &= out[i * 14 + j] == s / 4.0f;
    }
  CU_ASSERT(exact);
}

static void test_determinism(void) {
  snc_pairs a, b, c;
  snc_error err = {{0}};
  CU_ASSERT_EQUAL_FATAL(snc_pairs_generate(&train, 500, 42, &a, &err), 0);
  CU_ASSERT_EQUAL_FATAL(snc_pairs_generate(&train, 500, 42, &b, &err), 0);
  CU_ASSERT_EQUAL_FATAL(snc_pairs_generate(&train, 500, 43, &c, &err), 0);
  CU_ASSERT(memcmp(a.images, b.images, sizeof(float) * 500 * 2 * P14) == 0);
  CU_ASSERT(memcmp(a.classes, b.classes, sizeof(int32_t) * 1000) == 0);
  CU_ASSERT(memcmp(a.target, b.target, sizeof(int32_t) * 500) == 0);
  CU_ASSERT(memcmp(a.images, c.images, sizeof(float) * 500 * 2 * P14) != 0);
  CU_ASSERT(memcmp(a.classes, c.classes, sizeof(int32_t) * 1000) != 0);
  snc_pairs_free(&a);
  snc_pairs_free(&b);
  snc_pairs_free(&c);
}

static void test_pool_too_small(void) {
  snc_pairs p;
  snc_error err = {{0}};
  CU_ASSERT_EQUAL(snc_pairs_generate(&test, 2000, 1, &p, &err), -1);
  CU_ASSERT_PTR_NULL(p.images);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "pool has 3010 images, fewer than the 4000"));
  CU_ASSERT_EQUAL(snc_pairs_generate(&test, 0, 1, &p, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "must be positive"));
  snc_dataset empty = {0};
  CU_ASSERT_EQUAL(snc_pairs_generate(&empty, 10, 1, &p, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "empty pool"));
  /* the whole pool can be used */
  CU_ASSERT_EQUAL(snc_pairs_generate(&test, 1505, 1, &p, &err), 0);
  snc_pairs_free(&p);
  snc_digits d;
  CU_ASSERT_EQUAL(snc_digits_generate(&test, 3011, 1, &d, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "fewer than the 3011"));
}

static void test_pools_disjoint(void) {
  img_set s = set_new(P28, (size_t)train.n);
  int64_t dup_train = 0, shared = 0;
  for (int64_t i = 0; i < train.n; i++) dup_train += set_put(&s, train.images + i * P28, i) >= 0;
  for (int64_t i = 0; i < test.n; i++) shared += set_get(&s, test.images + i * P28) >= 0;
  CU_ASSERT_EQUAL(dup_train, 0);
  CU_ASSERT_EQUAL(shared, 0);
  set_free(&s);
}

static void check_moments(const float *x, int64_t n, double want_mean, double want_std, double tol) {
  double sum = 0, ss = 0;
  for (int64_t i = 0; i < n; i++) sum += x[i];
  double m = sum / n;
  for (int64_t i = 0; i < n; i++) ss += (x[i] - m) * (x[i] - m);
  CU_ASSERT(fabs(m - want_mean) < tol);
  CU_ASSERT(fabs(sqrt(ss / n) - want_std) < tol);
}

static void test_standardise(void) {
  snc_pairs tr, te;
  snc_error err = {{0}};
  CU_ASSERT_EQUAL_FATAL(snc_pairs_generate(&train, 1000, 3, &tr, &err), 0);
  CU_ASSERT_EQUAL_FATAL(snc_pairs_generate(&test, 1000, 4, &te, &err), 0);
  float before = te.images[300], mean, std;
  CU_ASSERT_EQUAL_FATAL(snc_pairs_standardise(&tr, &te, &mean, &std, &err), 0);
  CU_ASSERT(mean > 20 && mean < 50); /* MNIST: ~33 on the 0..255 scale */
  CU_ASSERT(std > 60 && std < 100);  /* ~71 after pooling */
  check_moments(tr.images, tr.n * 2 * P14, 0.0, 1.0, 1e-4);
  CU_ASSERT_EQUAL(te.images[300], (before - mean) / std);
  snc_pairs_free(&tr);
  snc_pairs_free(&te);

  snc_digits d;
  CU_ASSERT_EQUAL_FATAL(snc_digits_generate(&train, 1000, 5, &d, &err), 0);
  CU_ASSERT_EQUAL_FATAL(snc_digits_standardise(&d, NULL, NULL, NULL, &err), 0);
  check_moments(d.images, d.n * P14, 0.0, 1.0, 1e-4);
  snc_digits_free(&d);

  /* constant images cannot be standardised, and are left alone */
  snc_digits flat = {2, calloc(2 * P14, sizeof(float)), calloc(2, sizeof(int32_t))};
  CU_ASSERT_EQUAL(snc_digits_standardise(&flat, NULL, NULL, NULL, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "zero variance"));
  CU_ASSERT_EQUAL(flat.images[0], 0.0f);
  snc_digits_free(&flat);
}

static void test_digits(void) {
  snc_digits d, e;
  snc_error err = {{0}};
  CU_ASSERT_EQUAL_FATAL(snc_digits_generate(&train, 2000, 9, &d, &err), 0);
  CU_ASSERT_EQUAL_FATAL(snc_digits_generate(&train, 2000, 9, &e, &err), 0);
  CU_ASSERT(memcmp(d.images, e.images, sizeof(float) * 2000 * P14) == 0);
  /* drawn the same way as pairs: digit k is pair image k for the same seed */
  snc_pairs p;
  CU_ASSERT_EQUAL_FATAL(snc_pairs_generate(&train, 1000, 9, &p, &err), 0);
  CU_ASSERT(memcmp(d.images, p.images, sizeof(float) * 2000 * P14) == 0);
  CU_ASSERT(memcmp(d.labels, p.classes, sizeof(int32_t) * 2000) == 0);
  int count[10] = {0}, ok = 1;
  for (int k = 0; k < 2000; k++) {
    ok &= d.labels[k] >= 0 && d.labels[k] <= 9;
    count[d.labels[k] % 10]++;
  }
  CU_ASSERT(ok);
  for (int c = 0; c < 10; c++) CU_ASSERT(count[c] > 120 && count[c] < 300);
  snc_pairs_free(&p);
  snc_digits_free(&d);
  snc_digits_free(&e);
}

static void test_permutation(void) {
  snc_rng r = snc_rng_seed(1);
  uint32_t perm[10];
  int first[10] = {0}, valid = 1;
  for (int t = 0; t < 10000; t++) {
    snc_rt_permutation(&r, perm, 10);
    int seen[10] = {0};
    for (int i = 0; i < 10; i++) seen[perm[i] < 10 ? perm[i] : 0]++;
    for (int i = 0; i < 10; i++) valid &= seen[i] == 1;
    first[perm[0]]++;
  }
  CU_ASSERT(valid);
  for (int i = 0; i < 10; i++) CU_ASSERT(first[i] > 850 && first[i] < 1150); /* ~1000 each, sd ~30 */
  snc_rt_permutation(&r, perm, 0); /* empty and single are fine */
  snc_rt_permutation(&r, perm, 1);
  CU_ASSERT_EQUAL(perm[0], 0);
}

static int load_pools(void) {
  snc_error err = {{0}};
  unsetenv("SNC_DATA");
  if (snc_dataset_load(NULL, 0, &train, &err) || snc_dataset_load(NULL, 1, &test, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  return 0;
}

static int free_pools(void) {
  snc_dataset_free(&train);
  snc_dataset_free(&test);
  return 0;
}

static void register_tests(void) {
  CU_pSuite s = CU_add_suite("pairs", load_pools, free_pools);
  CU_add_test(s, "target statistics", test_pair_stats);
  CU_add_test(s, "distinct picks", test_distinct_picks);
  CU_add_test(s, "pooling exact", test_pool_exact);
  CU_add_test(s, "determinism", test_determinism);
  CU_add_test(s, "pool too small", test_pool_too_small);
  CU_add_test(s, "train/test disjoint", test_pools_disjoint);
  CU_add_test(s, "standardise", test_standardise);
  CU_add_test(s, "digits", test_digits);
  CU_add_test(s, "permutation", test_permutation);
}

SNC_TEST_MAIN(register_tests)
