/* A C program linking the object `snc compile` wrote for the imported, snrun-trained digit CNN
 * (tests/test_onnx_torch.c): reads N x 196 float32 images (raw, little-endian) from argv[1], writes
 * the N x 10 logits of digit_cnn_eval to argv[2]. Needs only the header, the object, libc, libm and
 * an OpenMP runtime. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digit_cnn.h"

int main(int argc, char **argv) {
  if (argc != 3) return fprintf(stderr, "usage: link_main IN.f32 OUT.f32\n"), 2;
  FILE *f = fopen(argv[1], "rb");
  if (!f) return perror(argv[1]), 1;
  fseek(f, 0, SEEK_END);
  long bytes = ftell(f);
  fseek(f, 0, SEEK_SET);
  long n = bytes / (long)(DIGIT_CNN_IN_IMAGE_SIZE * sizeof(float));
  float *x = malloc((size_t)bytes + 1), *y = malloc((size_t)n * DIGIT_CNN_OUT_LOGITS_SIZE * sizeof(float) + 1);
  int32_t label[DIGIT_CNN_BATCH] = {0};
  if (!x || !y || fread(x, 1, (size_t)bytes, f) != (size_t)bytes) return fprintf(stderr, "cannot read %s\n", argv[1]), 1;
  fclose(f);
  void *arena = digit_cnn_arena_new();
  if (!arena) return fprintf(stderr, "no memory\n"), 1;
  digit_cnn_init(arena, 0); /* the embedded weights */
  for (long r = 0; r < n; r += DIGIT_CNN_BATCH) {
    long nb = n - r < DIGIT_CNN_BATCH ? n - r : DIGIT_CNN_BATCH;
    const void *in[DIGIT_CNN_NUM_INPUTS] = {x + r * DIGIT_CNN_IN_IMAGE_SIZE, label};
    float loss;
    void *out[DIGIT_CNN_NUM_OUTPUTS + 1] = {y + r * DIGIT_CNN_OUT_LOGITS_SIZE, &loss};
    snc_step_args a = {.inputs = in, .outputs = out, .nb = nb, .step = 1, .lr_scale = 1.0f};
    digit_cnn_eval(arena, &a);
  }
  digit_cnn_arena_free(arena);
  f = fopen(argv[2], "wb");
  if (!f || fwrite(y, sizeof(float), (size_t)n * DIGIT_CNN_OUT_LOGITS_SIZE, f) != (size_t)n * DIGIT_CNN_OUT_LOGITS_SIZE ||
      fclose(f))
    return fprintf(stderr, "cannot write %s\n", argv[2]), 1;
  printf("%ld samples\n", n);
  free(x);
  free(y);
  return 0;
}
