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
#ifndef SNC_CHECKPOINT_H
#define SNC_CHECKPOINT_H
#include <stdint.h>

#include "snc/error.h"

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

#endif
