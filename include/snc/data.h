/* Data pipeline: IDX files, MNIST-style datasets, digit-pair sets for the siamese study.
 *
 *   snc_error err = {0};
 *   snc_dataset train = {0}, test = {0};
 *   if (snc_dataset_load(NULL, 0, &train, &err) != 0 ||      // NULL = bundled set (or $SNC_DATA)
 *       snc_dataset_load(NULL, 1, &test, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
 *   snc_pairs tr = {0}, te = {0};
 *   snc_pairs_generate(&train, 1000, seed, &tr, &err);        // 1000 pairs from the training pool
 *   snc_pairs_generate(&test, 1000, seed + 1, &te, &err);     // 1000 pairs from the test pool
 *   float mean, std;
 *   snc_pairs_standardise(&tr, &te, &mean, &std, &err);       // optional: (x - mean) / std
 *   ...
 *   snc_pairs_free(&tr); snc_pairs_free(&te);
 *   snc_dataset_free(&train); snc_dataset_free(&test);
 *
 * Ownership: every struct filled by a function here owns its arrays (malloc'd); the caller frees
 * them with the matching *_free function, which also zeroes the struct (so freeing twice is safe).
 * On failure nothing is left allocated and the output struct is zeroed.
 * All functions that can fail take an snc_error* (may be NULL) and return 0 or -1 (see error.h). */
#ifndef SNC_DATA_H
#define SNC_DATA_H
#include <stdint.h>

#include "snc/error.h"
#include "snc/rng.h"

/* ---- IDX files (runtime/data/idx.c) --------------------------------------------------------- */

/* Largest payload accepted, in elements: larger (or overflowing) dimensions are refused
 * before anything is allocated. */
#define SNC_IDX_MAX_ELEMS (INT64_C(1) << 31)
/* Bytes after the payload are counted up to this many, then refused as "more than": a gzip file of
 * a few kB can hold gigabytes of trailing zeros. */
#define SNC_IDX_MAX_TRAILING (1 << 20)

/* An unsigned-byte IDX tensor (type code 0x08), 1 to 4 dimensions, row-major. */
typedef struct snc_idx {
  int ndim;
  int64_t dims[4];
  uint8_t *data; /* prod(dims) bytes, owned by the struct */
} snc_idx;

/* Reads an IDX file, plain or gzip-compressed (detected by its magic bytes). Checks the magic,
 * the type (0x08 only), 1..4 dimensions, and that exactly prod(dims) bytes of data follow. */
int snc_idx_read(const char *path, snc_idx *out, snc_error *err);

/* Writes t as a gzip-compressed IDX file (level 9, zero mtime, no name: byte-identical reruns). */
int snc_idx_write_gz(const char *path, const snc_idx *t, snc_error *err);

void snc_idx_free(snc_idx *t);

/* ---- datasets (runtime/data/dataset.c) ------------------------------------------------------- */

#define SNC_IMG_SIDE 28 /* dataset images are 28x28 */
#define SNC_PAIR_SIDE 14 /* pooled images are 14x14 */

/* One split of an MNIST-format dataset. */
typedef struct snc_dataset {
  int64_t n;        /* number of images */
  uint8_t *images;  /* [n][28][28], owned */
  uint8_t *labels;  /* [n], each 0..9, owned */
} snc_dataset;

/* Directory of the default dataset: $SNC_DATA when set and non-empty, else the bundled set
 * (<source>/data/mnist). The string is static; do not free it. */
const char *snc_data_default_dir(void);

/* Loads the training split (test_split == 0: train-images-idx3-ubyte, train-labels-idx1-ubyte)
 * or the test split (t10k-*) from dir, each file plain or with a .gz suffix. dir == NULL means
 * snc_data_default_dir(). Checks 28x28 images, labels 0..9, equal counts. */
int snc_dataset_load(const char *dir, int test_split, snc_dataset *out, snc_error *err);

void snc_dataset_free(snc_dataset *d);

/* ---- pair sets and digit sets (runtime/data/pairs.c) ----------------------------------------- */

/* N pairs of 2x2-average-pooled digits, values on the 0..255 scale (mean of four bytes). */
typedef struct snc_pairs {
  int64_t n;
  float *images;    /* [n][2][14][14], owned */
  int32_t *target;  /* [n]: 1 if classes[k][0] <= classes[k][1], else 0; owned */
  int32_t *classes; /* [n][2], owned */
} snc_pairs;

/* N single pooled digits (the baseline model's data). */
typedef struct snc_digits {
  int64_t n;
  float *images;   /* [n][1][14][14], owned */
  int32_t *labels; /* [n], owned */
} snc_digits;

/* Fills perm with a uniformly random permutation of 0..n-1 (Fisher-Yates, draws from r). */
void snc_rt_permutation(snc_rng *r, uint32_t *perm, uint32_t n);

/* 2x2 average pooling of one 28x28 image into 14x14 floats (out[i][j] = mean of 4 bytes). */
void snc_rt_pool14(const uint8_t *img28, float *out14);

/* generate_pair_sets semantics: a random permutation of the pool (from seed) picks 2n distinct
 * images, paired in order (2k, 2k+1). Fails if the pool holds fewer than 2n images. */
int snc_pairs_generate(const snc_dataset *pool, int64_t n, uint64_t seed, snc_pairs *out,
                       snc_error *err);
void snc_pairs_free(snc_pairs *p);

/* The same draw for single digits: the first n images of a random permutation of the pool. */
int snc_digits_generate(const snc_dataset *pool, int64_t n, uint64_t seed, snc_digits *out,
                        snc_error *err);
void snc_digits_free(snc_digits *d);

/* Mean and population standard deviation of count floats (accumulated in double). */
void snc_rt_moments(const float *x, int64_t count, float *mean, float *std);

/* Standardisation with the training set's statistics: computes mean/std over all pixels of
 * train's images, then applies (x - mean) / std to train and to test (test may be NULL).
 * Fails (changing nothing) if the training images have zero variance. mean/std may be NULL. */
int snc_pairs_standardise(snc_pairs *train, snc_pairs *test, float *mean, float *std,
                          snc_error *err);
int snc_digits_standardise(snc_digits *train, snc_digits *test, float *mean, float *std,
                           snc_error *err);

#endif
