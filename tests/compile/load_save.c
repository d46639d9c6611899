/* load_save IN OUT: siamese_load of IN (any checkpoint), then siamese_save to OUT; prints the status
 * and message so tests/test_compile.c can check refusals. Built against a siamese object. */
#include <stdio.h>

#include "siamese.h"

int main(int argc, char **argv) {
  char msg[512] = "";
  int64_t step = -1;
  void *a = siamese_arena_new();
  if (argc != 3 || !a) return 2;
  siamese_init(a, 7);
  int rc = siamese_load(a, argv[1], &step, msg, sizeof msg);
  printf("load %d step %lld %s\n", rc, (long long)step, msg);
  if (rc == SIAMESE_OK) {
    const char *meta[] = {"seed", "9", "note", "a \"quoted\" value\n", NULL};
    rc = siamese_save(a, argv[2], step, meta, msg, sizeof msg);
    printf("save %d %s\n", rc, msg);
  }
  siamese_arena_free(a);
  return rc;
}
