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
 * All functions that can fail take an snc_error* (may be NULL) and return 0 or -1 (see error.h).
 *
 * The one header of runtime/data/; safetensors and .npy files are its last sections. */
#ifndef SNC_DATA_H
#define SNC_DATA_H
#include <stddef.h>
#include <stdint.h>

#include "snc/error.h"
#include "snc/ir.h"
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

/* A split as snc_dataset_load reads it, lent read-only from a memo of the last few splits decoded in
 * this process: a split whose files are the ones read then (the same paths, device, inode, size and
 * modification time) is not decompressed again (a study's rounds each draw from the same two pools),
 * and nothing is copied. NULL on error (snc_dataset_load's messages). Each acquire is paired with one
 * snc_dataset_release; a lent split stays valid until then, even when its files change meanwhile.
 * Thread-safe. */
const snc_dataset *snc_dataset_acquire(const char *dir, int test_split, snc_error *err);
void snc_dataset_release(const snc_dataset *d); /* NULL: nothing */

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

/* ---- safetensors files (runtime/data/checkpoint.c) ------------------------------------------- */
/* Checkpoints in the safetensors format (readable by Python's safetensors / torch tooling).
 *
 *   snc_error err = {0};
 *   float w[32 * 9], step = 0;
 *   snc_ckpt_tensor t[] = {
 *     {"conv1.weight", SNC_CKPT_F32, 4, {32, 1, 3, 3}, w},
 *     {"step", SNC_CKPT_F32, 0, {0}, &step},               // 0-d scalar
 *   };
 *   const char *meta[] = {"model", "siamese.yaml", "epoch", "7", NULL};
 *   if (snc_ckpt_write("run/best.safetensors", t, 2, meta, &err) != 0) { puts(err.msg); return 1; }
 *
 *   snc_ckpt *c = snc_ckpt_read("run/best.safetensors", &err);  // NULL on error, message in err
 *   if (!c) { puts(err.msg); return 1; }
 *   int64_t dims[] = {32, 1, 3, 3};
 *   if (snc_ckpt_load_f32(c, "conv1.weight", 4, dims, w, &err) != 0) { puts(err.msg); ... }
 *   const char *epoch = snc_ckpt_meta(c, "epoch");             // "7", or NULL if absent
 *   snc_ckpt_free(c);  // frees the names, data and metadata every snc_ckpt_* pointer refers to
 *
 * Ownership: the writer only reads the caller's tensors and strings. A snc_ckpt owns all its memory;
 * tensors, names, data and metadata strings returned by the accessors stay valid until
 * snc_ckpt_free and must not be freed by the caller.
 *
 * File layout: 8-byte little-endian header length N, N bytes of JSON header padded with spaces so the
 * data starts at a multiple of 8, then the data buffer (little-endian, row-major, tensors in the order
 * given to the writer, no gaps). The reader validates everything and never trusts the file; every
 * error message starts with the path. */

#define SNC_CKPT_MAX_DIMS 8

typedef enum { SNC_CKPT_F32, SNC_CKPT_I32 } snc_ckpt_dtype;

typedef struct snc_ckpt_tensor {
  const char *name;                  /* unique within a checkpoint; not "__metadata__" */
  snc_ckpt_dtype dtype;
  int ndim;                          /* 0 (scalar) .. SNC_CKPT_MAX_DIMS */
  int64_t dims[SNC_CKPT_MAX_DIMS];   /* each >= 0; a zero dimension means no elements */
  const void *data;                  /* elements in row-major order; may be NULL when there are none */
} snc_ckpt_tensor;

/* "F32" / "I32" (the safetensors spelling); 4 for both element sizes. */
const char *snc_ckpt_dtype_name(snc_ckpt_dtype dtype);
int snc_ckpt_dtype_size(snc_ckpt_dtype dtype);

/* Writes n tensors and the metadata meta_kv = {key, value, ..., NULL} (may be NULL) to path,
 * atomically: the bytes go to "<path>.tmp.<pid>", are flushed and fsync'ed, renamed over path and the
 * directory is fsync'ed. On any failure the temporary file is removed and a file already at path is
 * left untouched (only when the final directory fsync fails is the new file already in place).
 * Refuses duplicate or empty names, bad dtypes or shapes, duplicate metadata keys. */
int snc_ckpt_write(const char *path, const snc_ckpt_tensor *tensors, int n, const char *const *meta_kv,
                   snc_error *err);

typedef struct snc_ckpt snc_ckpt; /* opaque; owns its memory; free with snc_ckpt_free */

/* Reads and validates a whole safetensors file. Returns NULL with err set on any problem. */
snc_ckpt *snc_ckpt_read(const char *path, snc_error *err);

/* Tensors in data-buffer order (for files from snc_ckpt_write, the order given to the writer). */
int snc_ckpt_count(const snc_ckpt *c);
const snc_ckpt_tensor *snc_ckpt_at(const snc_ckpt *c, int i); /* NULL when i is out of range */
const snc_ckpt_tensor *snc_ckpt_find(const snc_ckpt *c, const char *name); /* NULL if absent */
const char *snc_ckpt_meta(const snc_ckpt *c, const char *key);            /* NULL if absent */
const char *snc_ckpt_path(const snc_ckpt *c);

/* Frees everything c owns. NULL is allowed. */
void snc_ckpt_free(snc_ckpt *c);

/* Loader convenience: finds name, checks it is F32 with exactly the shape dims[0..ndim), copies its
 * elements into dst (room for the product of dims floats). Errors name the file, the tensor, the
 * expected and the found dtype or shape. */
int snc_ckpt_load_f32(const snc_ckpt *c, const char *name, int ndim, const int64_t *dims, float *dst,
                      snc_error *err);

/* ---- NumPy .npy files (runtime/data/npy.c) --------------------------------------------------- */
/* NumPy .npy files: float32 and int32 arrays in C order (`snrun infer`'s inputs and outputs).
 *
 *   snc_error err = {0};
 *   snc_npy a;
 *   if (snc_npy_read("x.npy", &a, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
 *   ... a.dtype, a.ndim, a.dims[0..ndim), a.n elements at a.data ...
 *   snc_npy_free(&a);                                     // frees a.data
 *   int64_t dims[2] = {37, 10};
 *   snc_npy_write("out/logits.npy", SNC_F32, 2, dims, y, &err);   // atomic (snc/file.h); y stays yours
 *
 * The reader accepts format versions 1.0, 2.0 and 3.0 with descr '<f4' or '<i4' (also '|'/'='
 * spellings of the native little-endian order), fortran_order False, at most SNC_MAX_DIMS axes,
 * a header of at most SNC_NPY_MAX_HEADER bytes and SNC_NPY_MAX_ELEMS elements, and exactly the
 * bytes the shape needs after the header. Every error names the file and what was expected. */

#define SNC_NPY_MAX_HEADER 65536
#define SNC_NPY_MAX_ELEMS (INT64_C(1) << 31)

typedef struct snc_npy {
  snc_dtype dtype;
  int ndim;
  int64_t dims[SNC_MAX_DIMS];
  int64_t n;  /* product of dims */
  void *data; /* n 4-byte elements, owned: snc_npy_free */
} snc_npy;

int snc_npy_read(const char *path, snc_npy *a, snc_error *err);
/* The same from bytes in memory (name stands for the file in messages); data is copied. */
int snc_npy_parse(const void *buf, size_t len, const char *name, snc_npy *a, snc_error *err);
void snc_npy_free(snc_npy *a);
/* Writes a version 1.0 file atomically; dims[k] >= 0. */
int snc_npy_write(const char *path, snc_dtype dtype, int ndim, const int64_t *dims, const void *data, snc_error *err);
/* "(37, 1, 14, 14)" into buf, as NumPy prints shapes; returns buf. */
char *snc_npy_shape_str(int ndim, const int64_t *dims, char *buf, size_t len);

#endif
