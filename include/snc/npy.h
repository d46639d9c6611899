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
#ifndef SNC_NPY_H
#define SNC_NPY_H
#include <stddef.h>
#include <stdint.h>

#include "snc/error.h"
#include "snc/ir.h"

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
