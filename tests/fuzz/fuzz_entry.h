/* Entry points shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c, built with -DSNC_FUZZ_MAIN) and
 * the regression test (tests/test_fuzz_regress.c), which feeds every file of
 * tests/fuzz/regressions/<harness>/ through the same function. Each returns 0 when the input was
 * accepted, -1 when it was refused with a message; anything else (a crash) is a bug. */
#ifndef SNC_FUZZ_ENTRY_H
#define SNC_FUZZ_ENTRY_H
#include <stddef.h>
#include <stdint.h>

int snc_fuzz_yaml(const uint8_t *data, size_t size);
int snc_fuzz_idx(const uint8_t *data, size_t size);
int snc_fuzz_ckpt(const uint8_t *data, size_t size);
int snc_fuzz_journal(const uint8_t *data, size_t size);
int snc_fuzz_onnx(const uint8_t *data, size_t size);
int snc_fuzz_npy(const uint8_t *data, size_t size); /* 1 when its two readers disagree */

/* Writes data to an anonymous in-memory file (memfd) and returns its path "/proc/self/fd/N", reused
 * from call to call; NULL when no memfd can be made. fuzz_file.c. */
const char *snc_fuzz_file(const uint8_t *data, size_t size);

#endif
