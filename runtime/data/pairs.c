/* Digit-pair and single-digit sets (the course helper generate_pair_sets), pooling, shuffles and
 * standardisation; see include/snc/data.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "snc/data.h"

#define POOLED (SNC_PAIR_SIDE * SNC_PAIR_SIDE)

void snc_rt_permutation(snc_rng *r, uint32_t *perm, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) perm[i] = i;
  for (uint32_t i = n; i > 1; i--) {
    uint32_t j = snc_rng_below(r, i); /* 0 <= j < i: swap the last open slot with a random one */
    uint32_t t = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = t;
  }
}

void snc_rt_pool14(const uint8_t *img28, float *out14) {
  for (int i = 0; i < SNC_PAIR_SIDE; i++) {
    const uint8_t *r0 = img28 + (2 * i) * SNC_IMG_SIDE, *r1 = r0 + SNC_IMG_SIDE;
    for (int j = 0; j < SNC_PAIR_SIDE; j++) {
      int sum = r0[2 * j] + r0[2 * j + 1] + r1[2 * j] + r1[2 * j + 1];
      out14[i * SNC_PAIR_SIDE + j] = (float)sum * 0.25f; /* exact: sum < 2^10 */
    }
  }
}

/* The first `need` entries of a random permutation of the pool (from seed), malloc'd. */
static uint32_t *draw(const snc_dataset *pool, int64_t need, uint64_t seed, const char *what, snc_error *err) {
  if (!pool || pool->n <= 0 || !pool->images || !pool->labels)
    return snc_errorf(err, "%s: empty pool (load a dataset first)", what), NULL;
  if (pool->n > UINT32_MAX) return snc_errorf(err, "%s: pool of %lld images is too large", what, (long long)pool->n), NULL;
  if (pool->n < need)
    return snc_errorf(err, "%s: pool has %lld images, fewer than the %lld distinct ones needed", what,
                      (long long)pool->n, (long long)need),
           NULL;
  uint32_t *perm = malloc(sizeof *perm * (size_t)pool->n);
  if (!perm) return snc_errorf(err, "%s: out of memory", what), NULL;
  snc_rng r = snc_rng_seed(seed);
  snc_rt_permutation(&r, perm, (uint32_t)pool->n);
  return perm;
}

int snc_pairs_generate(const snc_dataset *pool, int64_t n, uint64_t seed, snc_pairs *out, snc_error *err) {
  memset(out, 0, sizeof *out);
  if (n <= 0) return snc_errorf(err, "pairs: the number of pairs must be positive, got %lld", (long long)n);
  if (n > INT32_MAX / 2) return snc_errorf(err, "pairs: %lld pairs is too many", (long long)n);
  uint32_t *perm = draw(pool, 2 * n, seed, "pairs", err);
  if (!perm) return -1;
  snc_pairs p = {n, malloc(sizeof(float) * (size_t)(2 * n * POOLED)), malloc(sizeof(int32_t) * (size_t)n),
                 malloc(sizeof(int32_t) * (size_t)(2 * n))};
  if (!p.images || !p.target || !p.classes) {
    free(perm);
    snc_pairs_free(&p);
    return snc_errorf(err, "pairs: out of memory for %lld pairs", (long long)n);
  }
  for (int64_t k = 0; k < n; k++) {
    for (int s = 0; s < 2; s++) {
      uint32_t idx = perm[2 * k + s];
      snc_rt_pool14(pool->images + (size_t)idx * SNC_IMG_SIDE * SNC_IMG_SIDE, p.images + (2 * k + s) * POOLED);
      p.classes[2 * k + s] = pool->labels[idx];
    }
    p.target[k] = p.classes[2 * k] <= p.classes[2 * k + 1];
  }
  free(perm);
  *out = p; /* the caller owns the arrays now */
  return 0;
}

void snc_pairs_free(snc_pairs *p) {
  if (!p) return;
  free(p->images);
  free(p->target);
  free(p->classes);
  memset(p, 0, sizeof *p);
}

int snc_digits_generate(const snc_dataset *pool, int64_t n, uint64_t seed, snc_digits *out, snc_error *err) {
  memset(out, 0, sizeof *out);
  if (n <= 0) return snc_errorf(err, "digits: the number of images must be positive, got %lld", (long long)n);
  if (n > INT32_MAX) return snc_errorf(err, "digits: %lld images is too many", (long long)n);
  uint32_t *perm = draw(pool, n, seed, "digits", err);
  if (!perm) return -1;
  snc_digits d = {n, malloc(sizeof(float) * (size_t)(n * POOLED)), malloc(sizeof(int32_t) * (size_t)n)};
  if (!d.images || !d.labels) {
    free(perm);
    snc_digits_free(&d);
    return snc_errorf(err, "digits: out of memory for %lld images", (long long)n);
  }
  for (int64_t k = 0; k < n; k++) {
    snc_rt_pool14(pool->images + (size_t)perm[k] * SNC_IMG_SIDE * SNC_IMG_SIDE, d.images + k * POOLED);
    d.labels[k] = pool->labels[perm[k]];
  }
  free(perm);
  *out = d; /* the caller owns the arrays now */
  return 0;
}

void snc_digits_free(snc_digits *d) {
  if (!d) return;
  free(d->images);
  free(d->labels);
  memset(d, 0, sizeof *d);
}

void snc_rt_moments(const float *x, int64_t count, float *mean, float *std) {
  if (count <= 0) {
    *mean = 0, *std = 0;
    return;
  }
  double sum = 0;
  for (int64_t i = 0; i < count; i++) sum += x[i];
  double m = sum / (double)count, ss = 0;
  for (int64_t i = 0; i < count; i++) ss += ((double)x[i] - m) * ((double)x[i] - m);
  *mean = (float)m;
  *std = (float)sqrt(ss / (double)count); /* population std */
}

static int standardise(float *train, int64_t ntrain, float *test, int64_t ntest, float *mean_out, float *std_out,
                       const char *what, snc_error *err) {
  float mean, std;
  snc_rt_moments(train, ntrain, &mean, &std);
  if (!(std > 0) || !isfinite(std))
    return snc_errorf(err, "%s: cannot standardise: training images have zero variance (std %g)", what, std);
  for (int64_t i = 0; i < ntrain; i++) train[i] = (train[i] - mean) / std;
  for (int64_t i = 0; i < ntest; i++) test[i] = (test[i] - mean) / std;
  if (mean_out) *mean_out = mean;
  if (std_out) *std_out = std;
  return 0;
}

int snc_pairs_standardise(snc_pairs *train, snc_pairs *test, float *mean, float *std, snc_error *err) {
  return standardise(train->images, train->n * 2 * POOLED, test ? test->images : NULL, test ? test->n * 2 * POOLED : 0,
                     mean, std, "pairs", err);
}

int snc_digits_standardise(snc_digits *train, snc_digits *test, float *mean, float *std, snc_error *err) {
  return standardise(train->images, train->n * POOLED, test ? test->images : NULL, test ? test->n * POOLED : 0, mean,
                     std, "digits", err);
}
