/* snrun on written modules (include/snc/backend.h). */
#include "snc/backend.h"

#include <stdio.h>

#include "snc/codegen.h"

int snc_is_bitcode(const char *path) {
  unsigned char m[4] = {0};
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  size_t n = fread(m, 1, 4, f);
  fclose(f);
  return n == 4 && m[0] == 'B' && m[1] == 'C' && m[2] == 0xC0 && m[3] == 0xDE;
}

snc_backend *snc_compiled_backend(const char *path, int threads, const char *cache_dir, snc_graph **g, snc_error *err) {
  snc_program *p = snc_program_load_bitcode(path, g, err);
  if (!p) return NULL;
  snc_jit_backend_opts o = {.threads = threads, .cache_dir = cache_dir};
  snc_backend *be = snc_backend_jit_from_program(p, &o, err); /* takes p */
  if (!be) {
    snc_graph_free(*g);
    *g = NULL;
  }
  return be;
}
