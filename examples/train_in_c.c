/* train_in_c: trains the siamese model through the emitted training-step entry point alone, then
 * evaluates it. With the training and test sets `snrun pairs` exports for a seed, it reproduces
 * `snrun train --seed S` bit for bit: the same initialisation (siamese_init with the derived seed),
 * the same shuffles (splitmix64, Fisher-Yates), the same dropout seed and step numbers.
 *
 *   snc compile models/siamese.yaml -o build/siamese.o
 *   snrun pairs models/siamese.yaml --seed 1 --out build/pairs1
 *   cc -std=c99 -O2 -Ibuild examples/train_in_c.c build/siamese.o -fopenmp -lm -o build/train_in_c
 *   build/train_in_c build/pairs1 --seed 1 --epochs 25 --save build/c.safetensors
 *   snrun eval models/siamese.yaml --checkpoint build/c.safetensors     # the same test accuracy
 *
 * usage: train_in_c DIR [--seed S] [--epochs N] [--threads N] [--save PATH] [--quiet]
 *   DIR: train-{pair,target,classes}.idx, test-{pair,target,classes}.idx and stats.txt from
 *   `snrun pairs MODEL --seed S --out DIR` (no --checkpoint). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idx.h"
#include "siamese.h"

typedef struct split {
  idx_file pair, target, classes;
  int64_t n;
} split;

static int load_split(const char *dir, const char *which, split *s) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s-pair.idx", dir, which);
  if (idx_read(path, &s->pair)) return -1;
  snprintf(path, sizeof path, "%s/%s-target.idx", dir, which);
  if (idx_read(path, &s->target)) return -1;
  snprintf(path, sizeof path, "%s/%s-classes.idx", dir, which);
  if (idx_read(path, &s->classes)) return -1;
  s->n = s->pair.dims[0];
  if (!s->pair.f32 || s->pair.n != s->n * SIAMESE_IN_PAIR_SIZE || !s->target.i32 || s->target.n != s->n ||
      !s->classes.i32 || s->classes.n != 2 * s->n)
    return fprintf(stderr, "%s: %s files do not fit the model's inputs\n", dir, which), -1;
  return 0;
}

static int argmax(const float *row, int n) {
  int best = 0, c;
  for (c = 1; c < n; c++)
    if (row[c] > row[best]) best = c;
  return best;
}

/* test loss and accuracy of the three outputs */
static void evaluate(void *arena, const split *s, int threads, double *loss, double acc[3]) {
  float cmp[2 * SIAMESE_BATCH], pa[10 * SIAMESE_BATCH], pb[10 * SIAMESE_BATCH], l = 0;
  int32_t ca[SIAMESE_BATCH], cb[SIAMESE_BATCH];
  int64_t ok[3] = {0, 0, 0}, first, k;
  double sum = 0;
  for (first = 0; first < s->n; first += SIAMESE_BATCH) {
    int64_t nb = s->n - first < SIAMESE_BATCH ? s->n - first : SIAMESE_BATCH;
    const void *in[SIAMESE_NUM_INPUTS];
    void *out[SIAMESE_NUM_OUTPUTS + 1];
    in[SIAMESE_IN_PAIR] = s->pair.f32 + first * SIAMESE_IN_PAIR_SIZE;
    in[SIAMESE_IN_TARGET] = s->target.i32 + first;
    in[SIAMESE_IN_CLASSES] = s->classes.i32 + 2 * first;
    out[SIAMESE_OUT_COMPARE] = cmp, out[SIAMESE_OUT_PROB_A] = pa, out[SIAMESE_OUT_CLASS_A] = ca;
    out[SIAMESE_OUT_PROB_B] = pb, out[SIAMESE_OUT_CLASS_B] = cb, out[SIAMESE_OUT_LOSS] = &l;
    snc_step_args a = {.inputs = in, .outputs = out, .nb = nb, .seed = 0, .step = 1, .lr_scale = 1.0f, .nthreads = threads};
    siamese_eval(arena, &a);
    sum += (double)l * (double)nb;
    for (k = 0; k < nb; k++) {
      ok[0] += argmax(cmp + 2 * k, 2) == s->target.i32[first + k];
      ok[1] += argmax(pa + 10 * k, 10) == s->classes.i32[2 * (first + k)];
      ok[2] += argmax(pb + 10 * k, 10) == s->classes.i32[2 * (first + k) + 1];
    }
  }
  *loss = sum / (double)s->n;
  for (k = 0; k < 3; k++) acc[k] = (double)ok[k] / (double)s->n;
}

/* splitmix64 as snrun's runtime uses it: state seeded with mix64(seed + golden), next = mix64(state += golden) */
static uint64_t rng_next(uint64_t *state) { return siamese_mix64(*state += 0x9E3779B97F4A7C15ull); }

/* the epoch's order: Fisher-Yates from the last slot down, j uniform in [0, i) by multiply-shift */
static void permutation(uint64_t *state, uint32_t *perm, uint32_t n) {
  uint32_t i;
  for (i = 0; i < n; i++) perm[i] = i;
  for (i = n; i > 1; i--) {
    uint32_t j = (uint32_t)(((rng_next(state) >> 32) * (uint64_t)i) >> 32), t = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = t;
  }
}

int main(int argc, char **argv) {
  const char *dir = NULL, *save = NULL;
  unsigned long long seed = 1;
  int epochs = 25, threads = 0, quiet = 0, i, ep, status = 1;
  split tr, te;
  char path[4096], msg[512], stats[4][64] = {"", "false", "0", "1"};
  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--save") && i + 1 < argc) save = argv[++i];
    else if (!strcmp(argv[i], "--quiet")) quiet = 1;
    else if (argv[i][0] != '-' && !dir) dir = argv[i];
    else return fprintf(stderr, "usage: train_in_c DIR [--seed S] [--epochs N] [--threads N] [--save PATH] [--quiet]\n"), 2;
  }
  if (!dir || epochs < 1) return fprintf(stderr, "usage: train_in_c DIR [--seed S] [--epochs N] [--threads N] [--save PATH]\n"), 2;
  if (load_split(dir, "train", &tr) || load_split(dir, "test", &te)) return 1;
  { /* stats.txt: the standardisation the sets carry, for the checkpoint's metadata */
    char key[32], val[64];
    FILE *f;
    snprintf(path, sizeof path, "%s/stats.txt", dir);
    f = fopen(path, "r");
    while (f && fscanf(f, "%31s %63s", key, val) == 2) {
      int k = !strcmp(key, "seed") ? 0 : !strcmp(key, "standardize") ? 1 : !strcmp(key, "mean") ? 2 : !strcmp(key, "std") ? 3 : -1;
      if (k >= 0) strcpy(stats[k], val);
    }
    if (f) fclose(f);
  }

  void *arena = siamese_arena_new(); /* ours: freed below */
  uint32_t *perm = (uint32_t *)malloc((size_t)tr.n * sizeof *perm);
  float *pair = (float *)malloc((size_t)SIAMESE_BATCH * SIAMESE_IN_PAIR_SIZE * sizeof(float));
  int32_t target[SIAMESE_BATCH], classes[2 * SIAMESE_BATCH];
  if (!arena || !perm || !pair) {
    fprintf(stderr, "out of memory\n");
    goto done;
  }
  siamese_init(arena, siamese_seed_derive(seed, SIAMESE_SEED_INIT));
  uint64_t shuffle = siamese_mix64(siamese_seed_derive(seed, SIAMESE_SEED_SHUFFLE) + 0x9E3779B97F4A7C15ull);
  uint64_t dropout = siamese_seed_derive(seed, SIAMESE_SEED_DROPOUT);
  int64_t step = 0;
  double loss, acc[3];
  if (!quiet) printf("epoch  test loss  test acc  digit_a  digit_b\n");
  for (ep = 1; ep <= epochs; ep++) {
    int64_t first, k;
    permutation(&shuffle, perm, (uint32_t)tr.n);
    for (first = 0; first < tr.n; first += SIAMESE_BATCH) {
      int64_t nb = tr.n - first < SIAMESE_BATCH ? tr.n - first : SIAMESE_BATCH;
      for (k = 0; k < nb; k++) { /* gather the batch in the epoch's order */
        uint32_t s = perm[first + k];
        memcpy(pair + k * SIAMESE_IN_PAIR_SIZE, tr.pair.f32 + (int64_t)s * SIAMESE_IN_PAIR_SIZE,
               SIAMESE_IN_PAIR_SIZE * sizeof(float));
        target[k] = tr.target.i32[s];
        classes[2 * k] = tr.classes.i32[2 * s], classes[2 * k + 1] = tr.classes.i32[2 * s + 1];
      }
      const void *in[SIAMESE_NUM_INPUTS];
      in[SIAMESE_IN_PAIR] = pair, in[SIAMESE_IN_TARGET] = target, in[SIAMESE_IN_CLASSES] = classes;
      snc_step_args a = {.inputs = in, .outputs = NULL, .nb = nb, .seed = dropout, .step = ++step, .lr_scale = 1.0f, .nthreads = threads};
      siamese_train_step(arena, &a);
    }
    evaluate(arena, &te, threads, &loss, acc);
    if (!quiet) printf("%5d  %9.4f  %7.2f%%  %6.2f%%  %6.2f%%\n", ep, loss, 100 * acc[0], 100 * acc[1], 100 * acc[2]);
  }
  printf("test loss %.4f  compare %.2f%%  digit_a %.2f%%  digit_b %.2f%%\n", loss, 100 * acc[0], 100 * acc[1], 100 * acc[2]);
  if (save) {
    char seedstr[32], epochstr[16];
    snprintf(seedstr, sizeof seedstr, "%llu", seed);
    snprintf(epochstr, sizeof epochstr, "%d", epochs);
    const char *meta[] = {"seed", seedstr, "epoch", epochstr, "standardize", stats[1], "mean", stats[2], "std", stats[3], NULL};
    if (siamese_save(arena, save, step, meta, msg, sizeof msg) != SIAMESE_OK) {
      fprintf(stderr, "%s\n", msg);
      goto done;
    }
    printf("saved %s (step %lld)\n", save, (long long)step);
  }
  status = 0;
done:
  siamese_arena_free(arena);
  free(perm), free(pair);
  idx_free(&tr.pair), idx_free(&tr.target), idx_free(&tr.classes);
  idx_free(&te.pair), idx_free(&te.target), idx_free(&te.classes);
  return status;
}
