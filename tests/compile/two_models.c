/* Two models compiled by snc compile, linked into one program: their symbols (entry points, header
 * helpers, macros) must not clash. Built by tests/test_compile.c against siamese.o and mlp.o. */
#include <stdio.h>

#include "mlp.h"
#include "siamese.h"
#include "siamese.h" /* twice: the guards hold */

int main(void) {
  void *a = siamese_arena_new(), *b = mlp_arena_new();
  int n1 = 0, n2 = 0;
  static float pair[SIAMESE_BATCH * SIAMESE_IN_PAIR_SIZE], cmp[2 * SIAMESE_BATCH], pa[10 * SIAMESE_BATCH],
      pb[10 * SIAMESE_BATCH], loss;
  static int32_t target[SIAMESE_BATCH], classes[2 * SIAMESE_BATCH], ca[SIAMESE_BATCH], cb[SIAMESE_BATCH];
  if (!a || !b) return 1;
  siamese_init(a, 1);
  mlp_init(b, 1);
  siamese_tensors(&n1);
  mlp_tensors(&n2);
  const void *in[SIAMESE_NUM_INPUTS] = {pair, target, classes};
  void *out[SIAMESE_NUM_OUTPUTS + 1] = {cmp, pa, ca, pb, cb, &loss};
  snc_step_args s; /* field by field: valid C99 and C++ (designated initialisers are C++20) */
  memset(&s, 0, sizeof s);
  s.inputs = in;
  s.outputs = out;
  s.nb = 4;
  s.step = 1;
  s.lr_scale = 1.0f;
  s.nthreads = 1;
  siamese_eval(a, &s);
  printf("siamese %d tensors, mlp %d tensors, P(first <= second) of a blank pair %.4f, arenas %lld + %lld bytes\n", n1, n2,
         cmp[1], (long long)SIAMESE_ARENA_BYTES, (long long)MLP_ARENA_BYTES);
  siamese_arena_free(a);
  mlp_arena_free(b);
  return cmp[0] + cmp[1] > 0.999f && cmp[0] + cmp[1] < 1.001f ? 0 : 1;
}
