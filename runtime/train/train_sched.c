/* Learning-rate schedules and data augmentation for the training loop (runtime/train.c). */
#include <math.h>

#include "snc/train.h"

double snc_lr_scale(const snc_train_cfg *t, int64_t step, int64_t total_steps) {
  if (t->schedule != SNC_SCHED_ONECYCLE || total_steps < 1) return 1.0;
  /* PyTorch's OneCycleLR (two phases) after step - 1 scheduler steps, relative to max_lr = lr */
  double max_lr = 1.0, initial = max_lr / t->div_factor, min_lr = initial / t->final_div_factor;
  double k = (double)(step - 1 < 0 ? 0 : step - 1 > total_steps - 1 ? total_steps - 1 : step - 1);
  double end1 = (double)t->pct_start * (double)total_steps - 1, end2 = (double)total_steps - 1;
  double start, from, to, pct;
  if (k <= end1) {
    start = 0, from = initial, to = max_lr;
    pct = end1 > 0 ? (k - start) / (end1 - start) : 1.0;
  } else {
    start = end1, from = max_lr, to = min_lr;
    pct = end2 > start ? (k - start) / (end2 - start) : 1.0;
  }
  if (t->anneal_linear) return from + (to - from) * pct;
  return to + (from - to) / 2.0 * (cos(M_PI * pct) + 1.0);
}

uint64_t snc_augment_counter(uint64_t key, int64_t epoch, int64_t image) {
  return snc_mix64(snc_mix64(key ^ snc_mix64((uint64_t)epoch)) + (uint64_t)image * 0x9E3779B97F4A7C15ull);
}

void snc_augment_offsets(uint64_t key, int64_t epoch, int64_t image, int shift, int *dy, int *dx) {
  uint64_t z = snc_augment_counter(key, epoch, image);
  uint64_t span = 2 * (uint64_t)shift + 1;
  *dy = (int)(((z >> 32) * span) >> 32) - shift; /* multiply-shift: unbiased to 2^-32 */
  *dx = (int)(((z & 0xffffffffull) * span) >> 32) - shift;
}

void snc_augment_shift(float *dst, const float *src, int64_t h, int64_t w, int dy, int dx, float fill) {
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      int64_t sy = y - dy, sx = x - dx;
      dst[y * w + x] = sy >= 0 && sy < h && sx >= 0 && sx < w ? src[sy * w + sx] : fill;
    }
}
