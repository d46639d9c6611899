/* Affine and elastic augmentation of training images (augment: {rotate: deg, scale: s, elastic: px}),
 * on top of the integer shifts of runtime/train_sched.c; load_batch in runtime/train.c calls
 * snc_augment_image. The elastic warp is a smooth random displacement field interpolated from a
 * coarse grid of random vectors, as in U-Net's augmentation (Ronneberger et al., 2015). */
#include <math.h>

#include "snc/rng.h"
#include "snc/train.h"

int snc_augment_on(const snc_train_cfg *t) {
  return t->augment_shift > 0 || t->augment_rotate > 0 || t->augment_scale > 0 || t->augment_elastic > 0;
}

/* a uniform double in [0, 1) from the top 53 bits */
static double unit(uint64_t z) { return (double)(z >> 11) * (1.0 / 9007199254740992.0); }

void snc_augment_affine_draw(uint64_t key, int64_t epoch, int64_t image, float rotate, float scale, double *deg,
                             double *factor) {
  /* the image's counter, then a different stream for each of the two draws */
  uint64_t z = snc_augment_counter(key, epoch, image);
  uint64_t a = snc_mix64(z ^ 0x5851F42D4C957F2Dull), b = snc_mix64(z ^ 0x14057B7EF767814Full);
  *deg = rotate > 0 ? (2 * unit(a) - 1) * (double)rotate : 0.0;
  *factor = scale > 0 ? 1 + (2 * unit(b) - 1) * (double)scale : 1.0;
}

static float pixel(const float *src, int64_t h, int64_t w, int64_t y, int64_t x, float fill) {
  return y >= 0 && y < h && x >= 0 && x < w ? src[y * w + x] : fill;
}

void snc_augment_elastic_draw(uint64_t key, int64_t epoch, int64_t image, float elastic, int grid, float *ctl) {
  /* the image's counter, a third stream, one draw per control value */
  uint64_t z = snc_augment_counter(key, epoch, image);
  z = snc_mix64(z ^ 0xD1B54A32D192ED03ull);
  for (int k = 0; k < 2 * grid * grid; k++)
    ctl[k] = (float)((2 * unit(snc_mix64(z + (uint64_t)k * 0xBF58476D1CE4E5B9ull)) - 1) * (double)elastic);
}

/* the field's value at coordinate p (0..n-1) along one axis: control point i and weight of i + 1 */
static void grid_pos(int64_t p, int64_t n, int grid, int *i, double *t) {
  double g = n > 1 ? (double)p * (double)(grid - 1) / (double)(n - 1) : 0.0;
  int k = (int)g;
  if (k > grid - 2) k = grid - 2;
  *i = k;
  *t = g - k;
}

static double field(const float *ctl, int grid, int iy, double ty, int ix, double tx, int comp) {
  const float *c = ctl + comp;
  double a = c[2 * (iy * grid + ix)], b = c[2 * (iy * grid + ix + 1)];
  double d = c[2 * ((iy + 1) * grid + ix)], e = c[2 * ((iy + 1) * grid + ix + 1)];
  return (1 - ty) * ((1 - tx) * a + tx * b) + ty * ((1 - tx) * d + tx * e);
}

void snc_augment_warp(float *dst, const float *src, int64_t h, int64_t w, double deg, double factor, int dy, int dx,
                      const float *ctl, int grid, float fill) {
  /* destination (y, x) comes from source centre + M^-1 (p - centre - shift), M = factor * rotation,
   * plus the elastic displacement at (y, x) */
  double rad = deg * (M_PI / 180.0), c = cos(rad) / factor, s = sin(rad) / factor;
  double cy = 0.5 * (double)(h - 1), cx = 0.5 * (double)(w - 1);
  for (int64_t y = 0; y < h; y++) {
    int iy = 0;
    double ty = 0;
    if (ctl) grid_pos(y, h, grid, &iy, &ty);
    for (int64_t x = 0; x < w; x++) {
      double v = (double)(y - dy) - cy, u = (double)(x - dx) - cx;
      /* inverse rotation by deg of (u, v) with rows pointing down */
      double sx = cx + c * u - s * v, sy = cy + s * u + c * v;
      if (ctl) {
        int ix;
        double tx;
        grid_pos(x, w, grid, &ix, &tx);
        sy += field(ctl, grid, iy, ty, ix, tx, 0);
        sx += field(ctl, grid, iy, ty, ix, tx, 1);
      }
      double fy = floor(sy), fx = floor(sx), ty0 = sy - fy, tx0 = sx - fx;
      int64_t y0 = (int64_t)fy, x0 = (int64_t)fx;
      if (y0 < -1 || y0 >= h || x0 < -1 || x0 >= w) {
        dst[y * w + x] = fill;
        continue;
      }
      double p00 = pixel(src, h, w, y0, x0, fill), p01 = pixel(src, h, w, y0, x0 + 1, fill);
      double p10 = pixel(src, h, w, y0 + 1, x0, fill), p11 = pixel(src, h, w, y0 + 1, x0 + 1, fill);
      dst[y * w + x] = (float)((1 - ty0) * ((1 - tx0) * p00 + tx0 * p01) + ty0 * ((1 - tx0) * p10 + tx0 * p11));
    }
  }
}

void snc_augment_affine(float *dst, const float *src, int64_t h, int64_t w, double deg, double factor, int dy, int dx,
                        float fill) {
  snc_augment_warp(dst, src, h, w, deg, factor, dy, dx, NULL, 0, fill);
}

void snc_augment_image(const snc_train_cfg *t, uint64_t key, int64_t epoch, int64_t image, float *dst, const float *src,
                       int64_t h, int64_t w, float fill) {
  int dy, dx;
  snc_augment_offsets(key, epoch, image, t->augment_shift, &dy, &dx);
  int elastic = t->augment_elastic > 0;
  if (!(t->augment_rotate > 0) && !(t->augment_scale > 0) && !elastic) {
    snc_augment_shift(dst, src, h, w, dy, dx, fill);
    return;
  }
  double deg, factor;
  snc_augment_affine_draw(key, epoch, image, t->augment_rotate, t->augment_scale, &deg, &factor);
  float ctl[2 * SNC_AUGMENT_GRID_MAX * SNC_AUGMENT_GRID_MAX];
  int grid = t->augment_grid >= 2 && t->augment_grid <= SNC_AUGMENT_GRID_MAX ? t->augment_grid : 3;
  if (elastic) snc_augment_elastic_draw(key, epoch, image, t->augment_elastic, grid, ctl);
  snc_augment_warp(dst, src, h, w, deg, factor, dy, dx, elastic ? ctl : NULL, grid, fill);
}
