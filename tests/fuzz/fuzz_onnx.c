/* libFuzzer harness: the ONNX importer (compiler/onnx/, protobuf-c underneath) and, when it
 * accepts the file, the front end on the text it wrote, as `snc check model.onnx` runs them. */
#include <stdint.h>

#include "fuzz_entry.h"
#include "snc/frontend.h"
#include "snc/onnx.h"

int snc_fuzz_onnx(const uint8_t *data, size_t size) {
  snc_error err = {0};
  snc_onnx_model m;
  snc_onnx_options o = {.train = "auto"};
  if (snc_onnx_import_mem(data, size, "fuzz.onnx", &o, &m, &err) != 0) return -1;
  volatile float sum = 0; /* touch every weight: the sanitizers check the buffers' sizes */
  for (int k = 0; k < m.nweights; k++) {
    int64_t n = 1;
    for (int d = 0; d < m.weights[k].ndim; d++) n *= m.weights[k].dims[d];
    for (int64_t e = 0; e < n; e++) sum += m.weights[k].data[e];
  }
  snc_graph *g = snc_model_load_text(m.yaml, m.yaml_len, "fuzz.onnx", NULL, 0, &err);
  int rc = g ? 0 : -1;
  snc_graph_free(g);
  snc_onnx_model_free(&m);
  return rc;
}

#ifdef SNC_FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  snc_fuzz_onnx(data, size);
  return 0;
}
#endif
