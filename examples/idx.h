/* A tiny IDX reader for the examples: the files `snrun pairs` writes (float32 type 0x0D, int32
 * type 0x0C, big-endian), and unsigned-byte MNIST files (0x08). Plain C99, libc only.
 *
 *   idx_file f;
 *   if (idx_read("pairs/test-pair.idx", &f) != 0) return 1;   // message on stderr
 *   ... f.f32 (float files) or f.i32 (int32 and byte files), f.dims[0..f.ndim) ...
 *   idx_free(&f);
 */
#ifndef EXAMPLES_IDX_H
#define EXAMPLES_IDX_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct idx_file {
  int type; /* 0x0D float32, 0x0C int32, 0x08 unsigned byte */
  int ndim;
  int64_t dims[8];
  int64_t n;    /* elements */
  float *f32;   /* type 0x0D */
  int32_t *i32; /* types 0x0C and 0x08 */
} idx_file;

static int idx_read(const char *path, idx_file *t) {
  unsigned char h[4], b[4];
  FILE *f = fopen(path, "rb");
  int64_t i;
  t->f32 = NULL, t->i32 = NULL, t->n = 1;
  if (!f) return fprintf(stderr, "%s: cannot open\n", path), -1;
  if (fread(h, 1, 4, f) != 4 || h[0] || h[1] || (h[2] != 0x0D && h[2] != 0x0C && h[2] != 0x08) || h[3] < 1 || h[3] > 8) {
    fclose(f);
    return fprintf(stderr, "%s: not an IDX file of float32, int32 or bytes\n", path), -1;
  }
  t->type = h[2], t->ndim = h[3];
  for (i = 0; i < t->ndim; i++) {
    if (fread(b, 1, 4, f) != 4) break;
    t->dims[i] = (int64_t)b[0] << 24 | (int64_t)b[1] << 16 | (int64_t)b[2] << 8 | b[3];
    t->n *= t->dims[i];
  }
  if (t->type == 0x0D) t->f32 = (float *)malloc((size_t)t->n * sizeof(float) + 1);
  else t->i32 = (int32_t *)malloc((size_t)t->n * sizeof(int32_t) + 1);
  for (i = 0; i < t->n && (t->f32 || t->i32); i++) {
    uint32_t v;
    if (fread(b, 1, t->type == 0x08 ? 1 : 4, f) != (t->type == 0x08 ? 1u : 4u)) break;
    v = t->type == 0x08 ? b[0] : (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    if (t->f32) {
      float x;
      memcpy(&x, &v, 4);
      t->f32[i] = x;
    } else {
      t->i32[i] = (int32_t)v;
    }
  }
  fclose(f);
  if (i < t->n) {
    free(t->f32), free(t->i32);
    return fprintf(stderr, "%s: truncated or out of memory\n", path), -1;
  }
  return 0;
}

static void idx_free(idx_file *t) {
  free(t->f32);
  free(t->i32);
  t->f32 = NULL, t->i32 = NULL;
}

#endif
