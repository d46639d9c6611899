/* libFuzzer harness: the IDX reader (runtime/data/idx.c), plain and gzip-compressed input. */
#include <stdint.h>

#include "fuzz_entry.h"
#include "snc/data.h"

int snc_fuzz_idx(const uint8_t *data, size_t size) {
  const char *path = snc_fuzz_file(data, size);
  if (!path) return -1;
  snc_error err = {0};
  snc_idx t;
  int rc = snc_idx_read(path, &t, &err);
  if (rc == 0) {
    int64_t n = 1;
    for (int i = 0; i < t.ndim; i++) n *= t.dims[i];
    volatile uint8_t sum = 0; /* touch every byte: the sanitizers check the buffer's size */
    for (int64_t i = 0; i < n; i++) sum += t.data[i];
    (void)sum;
  }
  snc_idx_free(&t);
  return rc;
}

#ifdef SNC_FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  snc_fuzz_idx(data, size);
  return 0;
}
#endif
