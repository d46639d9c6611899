/* Affine augmentation of training images (augment: {rotate: deg, scale: s}), on top of the integer
 * shifts of runtime/train_sched.c; load_batch in runtime/train.c calls snc_augment_image. */
#include <math.h>

#include "snc/rng.h"
#include "snc/train.h"

int snc_augment_on(const snc_train_cfg *t) {
  return t->augment_shift > 0 || t->augment_rotate > 0 || t->augment_scale > 0;
}

/* a uniform double in [0, 1) from the top 53 bits */
static double unit(uint64_t z) { return (double)(z >> 11) * (1.0 / 9007199254740992.0); }

void snc_augment_affine_draw(uint64_t key, int64_t epoch, int64_t image, float rotate, float scale, double *deg,
                             double *factor) {
  /* the counter of snc_augment_offsets, then a different stream for each of the two draws */
  uint64_t z = snc_mix64(snc_mix64(key ^ snc_mix64((uint64_t)epoch)) + (uint64_t)image * 0x9E3779B97F4A7C15ull);
  uint64_t a = snc_mix64(z ^ 0x5851F42D4C957F2Dull), b = snc_mix64(z ^ 0x14057B7EF767814Full);
  *deg = rotate > 0 ? (2 * unit(a) - 1) * (double)rotate : 0.0;
  *factor = scale > 0 ? 1 + (2 * unit(b) - 1) * (double)scale : 1.0;
}

static float pixel(const float *src, int64_t h, int64_t w, int64_t y, int64_t x, float fill) {
  return y >= 0 && y < h && x >= 0 && x < w ? src[y * w + x] : fill;
}

void snc_augment_affine(float *dst, const float *src, int64_t h, int64_t w, double deg, double factor, int dy, int dx,
                        float fill) {
  /* destination (y, x) comes from source centre + M^-1 (p - centre - shift), M = factor * rotation */
  double rad = deg * (M_PI / 180.0), c = cos(rad) / factor, s = sin(rad) / factor;
  double cy = 0.5 * (double)(h - 1), cx = 0.5 * (double)(w - 1);
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      double v = (double)(y - dy) - cy, u = (double)(x - dx) - cx;
      /* inverse rotation by deg of (u, v) with rows pointing down */
      double sx = cx + c * u - s * v, sy = cy + s * u + c * v;
      double fy = floor(sy), fx = floor(sx), ty = sy - fy, tx = sx - fx;
      int64_t y0 = (int64_t)fy, x0 = (int64_t)fx;
      if (y0 < -1 || y0 >= h || x0 < -1 || x0 >= w) {
        dst[y * w + x] = fill;
        continue;
      }
      double p00 = pixel(src, h, w, y0, x0, fill), p01 = pixel(src, h, w, y0, x0 + 1, fill);
      double p10 = pixel(src, h, w, y0 + 1, x0, fill), p11 = pixel(src, h, w, y0 + 1, x0 + 1, fill);
      dst[y * w + x] = (float)((1 - ty) * ((1 - tx) * p00 + tx * p01) + ty * ((1 - tx) * p10 + tx * p11));
    }
}

void snc_augment_image(const snc_train_cfg *t, uint64_t key, int64_t epoch, int64_t image, float *dst, const float *src,
                       int64_t h, int64_t w, float fill) {
  int dy, dx;
  snc_augment_offsets(key, epoch, image, t->augment_shift, &dy, &dx);
  if (!(t->augment_rotate > 0) && !(t->augment_scale > 0)) {
    snc_augment_shift(dst, src, h, w, dy, dx, fill);
    return;
  }
  double deg, factor;
  snc_augment_affine_draw(key, epoch, image, t->augment_rotate, t->augment_scale, &deg, &factor);
  snc_augment_affine(dst, src, h, w, deg, factor, dy, dx, fill);
}
