/* libFuzzer harness: the .npy reader of `snrun infer` (runtime/data/npy.c), from memory and from a
 * file (the two paths split the header and the data differently). */
#include <stdint.h>
#include <string.h>

#include "fuzz_entry.h"
#include "snc/data.h"

int snc_fuzz_npy(const uint8_t *data, size_t size) {
  snc_error err = {0};
  snc_npy a, b;
  int rc = snc_npy_parse(data, size, "fuzz.npy", &a, &err);
  const char *path = snc_fuzz_file(data, size);
  int rf = path ? snc_npy_read(path, &b, &err) : rc;
  if (rc == 0) {
    volatile uint8_t sum = 0; /* touch every byte: the sanitizers check the buffer's size */
    for (int64_t i = 0; i < a.n * 4; i++) sum += ((const uint8_t *)a.data)[i];
    (void)sum;
  }
  int same = rc == rf && (rc || !path || (a.n == b.n && !memcmp(a.data, b.data, (size_t)a.n * 4)));
  if (rc == 0) snc_npy_free(&a);
  if (path && rf == 0) snc_npy_free(&b);
  return same ? rc : 1; /* the two readers must agree */
}

#ifdef SNC_FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (snc_fuzz_npy(data, size) == 1) __builtin_trap();
  return 0;
}
#endif
