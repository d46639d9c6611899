/* Out-of-line parts of include/snc/rng.h. */
#include "snc/rng.h"

#include <math.h>

float snc_rng_normal(snc_rng *r) {
  double u1 = ((double)(snc_rng_next(r) >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
  double u2 = (double)(snc_rng_next(r) >> 11) * 0x1.0p-53;
  return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2));
}
