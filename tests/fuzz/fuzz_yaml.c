/* libFuzzer harness: the YAML model language through shape inference and autodiff (no JIT).
 * Any input must give a graph or a clean error; a crash, an assert, a leak or a sanitizer report is
 * a finding. Build: cmake -DSNC_FUZZ=ON -DCMAKE_C_COMPILER=clang-19; run: tools/fuzz.sh yaml 600. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_entry.h"
#include "snc/autodiff.h"
#include "snc/frontend.h"

int snc_fuzz_yaml(const uint8_t *data, size_t size) {
  snc_error err = {0};
  snc_graph *g = snc_model_load_text((const char *)data, size, "fuzz.yaml", NULL, 0, &err);
  if (!g) return -1;
  int rc = snc_autodiff(g, 0, &err);
  if (rc == 0) rc = snc_graph_verify(g, &err);
  snc_graph_free(g);
  return rc;
}

#ifdef SNC_FUZZ_MAIN
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  setenv("SNC_MEM_LIMIT", "1G", 1); /* refuse models past 1 GiB of tensors (libFuzzer's limit is 2 GiB) */
  return 0;
}
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  snc_fuzz_yaml(data, size);
  return 0;
}
#endif
