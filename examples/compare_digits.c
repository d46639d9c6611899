/* compare_digits: a plain C program around an object that `snc compile` wrote with embedded weights.
 * It reads digit pairs from IDX files, asks the model whether the first digit is <= the second and
 * which digits they are, and prints the predictions and the accuracy: the same numbers as
 * `snrun eval` on the checkpoint the weights came from, when fed the pairs `snrun pairs` exports.
 *
 *   snrun train models/siamese.yaml --save run/best.safetensors
 *   snc compile models/siamese.yaml --embed-weights run/best.safetensors -o build/siamese.o
 *   snrun pairs models/siamese.yaml --checkpoint run/best.safetensors --out build/pairs
 *   cc -std=c99 -O2 -Ibuild examples/compare_digits.c build/siamese.o -fopenmp -lm -o build/compare_digits
 *   build/compare_digits build/pairs           # and: snrun eval models/siamese.yaml --checkpoint ...
 *
 * usage: compare_digits DIR [--show N] [--threads N] [--checkpoint PATH] [--dump FILE]
 *   DIR holds test-pair.idx (float32 [n, 2, 14, 14], standardised as the model was trained),
 *   test-target.idx (int32 [n]: 1 when class(first) <= class(second)) and test-classes.idx
 *   (int32 [n, 2]); --show prints the first N predictions (default 10); --checkpoint loads a
 *   checkpoint over the embedded weights; --dump writes the raw outputs (float32, host order:
 *   compare [n, 2], then prob_a [n, 10], then prob_b [n, 10]) for comparisons. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idx.h"
#include "siamese.h"

static int argmax(const float *row, int n) {
  int best = 0, c;
  for (c = 1; c < n; c++)
    if (row[c] > row[best]) best = c;
  return best;
}

int main(int argc, char **argv) {
  const char *dir = NULL, *ckpt = NULL, *dump = NULL;
  int show = 10, threads = 0, i, status = 1;
  char path[4096], msg[512];
  idx_file pair, target, classes;
  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--show") && i + 1 < argc) show = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--checkpoint") && i + 1 < argc) ckpt = argv[++i];
    else if (!strcmp(argv[i], "--dump") && i + 1 < argc) dump = argv[++i];
    else if (argv[i][0] != '-' && !dir) dir = argv[i];
    else return fprintf(stderr, "usage: compare_digits DIR [--show N] [--threads N] [--checkpoint PATH] [--dump FILE]\n"), 2;
  }
  if (!dir) return fprintf(stderr, "usage: compare_digits DIR [--show N] [--threads N] [--checkpoint PATH] [--dump FILE]\n"), 2;
  snprintf(path, sizeof path, "%s/test-pair.idx", dir);
  if (idx_read(path, &pair)) return 1;
  snprintf(path, sizeof path, "%s/test-target.idx", dir);
  if (idx_read(path, &target)) return 1;
  snprintf(path, sizeof path, "%s/test-classes.idx", dir);
  if (idx_read(path, &classes)) return 1;
  int64_t n = pair.dims[0];
  if (!pair.f32 || pair.n != n * SIAMESE_IN_PAIR_SIZE || !target.i32 || target.n != n || !classes.i32 ||
      classes.n != 2 * n) {
    fprintf(stderr, "%s: the pair, target and classes files do not fit the model's inputs\n", dir);
    return 1;
  }

  void *arena = siamese_arena_new(); /* ours: freed below */
  float *cmp = (float *)malloc((size_t)n * 2 * sizeof(float));
  float *pa = (float *)malloc((size_t)n * 10 * sizeof(float)), *pb = (float *)malloc((size_t)n * 10 * sizeof(float));
  int32_t ca[SIAMESE_BATCH], cb[SIAMESE_BATCH];
  if (!arena || !cmp || !pa || !pb) {
    fprintf(stderr, "out of memory\n");
    goto done;
  }
  siamese_init(arena, 0); /* with embedded weights: copies them; the seed is unused */
  if (ckpt && siamese_load(arena, ckpt, NULL, msg, sizeof msg) != SIAMESE_OK) {
    fprintf(stderr, "%s\n", msg);
    goto done;
  }
  double loss_sum = 0;
  int64_t ok_cmp = 0, ok_a = 0, ok_b = 0, first;
  for (first = 0; first < n; first += SIAMESE_BATCH) {
    int64_t nb = n - first < SIAMESE_BATCH ? n - first : SIAMESE_BATCH, k;
    float loss = 0;
    const void *in[SIAMESE_NUM_INPUTS];
    void *out[SIAMESE_NUM_OUTPUTS + 1];
    in[SIAMESE_IN_PAIR] = pair.f32 + first * SIAMESE_IN_PAIR_SIZE;
    in[SIAMESE_IN_TARGET] = target.i32 + first; /* labels only feed the loss */
    in[SIAMESE_IN_CLASSES] = classes.i32 + 2 * first;
    out[SIAMESE_OUT_COMPARE] = cmp + 2 * first;
    out[SIAMESE_OUT_PROB_A] = pa + 10 * first;
    out[SIAMESE_OUT_CLASS_A] = ca;
    out[SIAMESE_OUT_PROB_B] = pb + 10 * first;
    out[SIAMESE_OUT_CLASS_B] = cb;
    out[SIAMESE_OUT_LOSS] = &loss;
    snc_step_args a = {.inputs = in, .outputs = out, .nb = nb, .seed = 0, .step = 1, .lr_scale = 1.0f, .nthreads = threads};
    siamese_eval(arena, &a);
    loss_sum += (double)loss * (double)nb;
    for (k = first; k < first + nb; k++) {
      int le = argmax(cmp + 2 * k, 2), da = argmax(pa + 10 * k, 10), db = argmax(pb + 10 * k, 10);
      ok_cmp += le == target.i32[k];
      ok_a += da == classes.i32[2 * k];
      ok_b += db == classes.i32[2 * k + 1];
      if (k < show)
        printf("pair %4lld: P(first <= second) = %.4f -> %-3s (truth %-3s)  digits %d %d (truth %d %d)\n", (long long)k,
               cmp[2 * k + 1], le ? "yes" : "no", target.i32[k] ? "yes" : "no", da, db, classes.i32[2 * k],
               classes.i32[2 * k + 1]);
    }
  }
  printf("%lld test samples\n", (long long)n);
  printf("test loss %.4f  compare %.2f%%  digit_a %.2f%%  digit_b %.2f%%\n", loss_sum / (double)n,
         100.0 * (double)ok_cmp / (double)n, 100.0 * (double)ok_a / (double)n, 100.0 * (double)ok_b / (double)n);
  if (dump) {
    FILE *f = fopen(dump, "wb");
    if (!f || fwrite(cmp, sizeof(float), (size_t)n * 2, f) != (size_t)n * 2 ||
        fwrite(pa, sizeof(float), (size_t)n * 10, f) != (size_t)n * 10 ||
        fwrite(pb, sizeof(float), (size_t)n * 10, f) != (size_t)n * 10 || fclose(f) != 0) {
      fprintf(stderr, "%s: cannot write\n", dump);
      goto done;
    }
  }
  status = 0;
done:
  siamese_arena_free(arena);
  free(cmp), free(pa), free(pb);
  idx_free(&pair), idx_free(&target), idx_free(&classes);
  return status;
}
