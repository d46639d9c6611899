/* libFuzzer harness: the safetensors reader (runtime/data/checkpoint.c) and, on a file it accepts, loading
 * it into a small model (runtime/train/train_ckpt.c: model name, tensor shapes, metadata). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_entry.h"
#include "snc/autodiff.h"
#include "snc/data.h"
#include "snc/train.h"

/* Parameters "h.weight" [10,4], "h.bias" [10] and Adam's state: what fuzz inputs aim at. */
static const char model[] =
    "model: tiny\n"
    "inputs:\n  image: {shape: [1, 14, 14]}\n  label: {shape: [], dtype: int32}\n"
    "graph:\n  - {name: p, avgpool2d: {kernel: 7}, from: image}\n  - {name: f, flatten}\n  - {name: h, linear: {units: 10}}\n"
    "losses:\n  - {name: ce, cross_entropy, from: [h, label]}\n"
    "training: {batch_size: 2}\n"
    "data: {generator: mnist_digits, train: 10, test: 10}\n";

static snc_graph *g;
static snc_backend *be;

static void setup(void) {
  if (g) return;
  snc_error err = {0};
  g = snc_model_load_text(model, sizeof model - 1, "tiny.yaml", NULL, 0, &err);
  if (!g || snc_autodiff(g, 0, &err) != 0 || !(be = snc_backend_ref_new(g, &err))) {
    fprintf(stderr, "fuzz_ckpt: %s\n", err.msg);
    abort();
  }
}

int snc_fuzz_ckpt(const uint8_t *data, size_t size) {
  setup();
  const char *path = snc_fuzz_file(data, size);
  if (!path) return -1;
  snc_error err = {0};
  snc_ckpt *c = snc_ckpt_read(path, &err);
  if (!c) return -1;
  for (int i = 0; i < snc_ckpt_count(c); i++) { /* every accessor on every tensor */
    const snc_ckpt_tensor *t = snc_ckpt_at(c, i);
    if (snc_ckpt_find(c, t->name) != t) abort();
    if (t->dtype == SNC_CKPT_F32) {
      int64_t n = 1;
      for (int k = 0; k < t->ndim; k++) n *= t->dims[k];
      if (n <= 4096) {
        float buf[4096];
        if (snc_ckpt_load_f32(c, t->name, t->ndim, t->dims, buf, &err) != 0) abort();
      }
    }
  }
  snc_ckpt_meta(c, "model");
  snc_ckpt_free(c);
  snc_run_info info;
  return snc_checkpoint_load(path, g, be, &info, &err);
}

#ifdef SNC_FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  snc_fuzz_ckpt(data, size);
  return 0;
}
#endif
