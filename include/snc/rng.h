/* Deterministic random numbers, the same in the reference executor, the runtime and generated code.
 *
 *   snc_rng r = snc_rng_seed(42);
 *   uint32_t k = snc_rng_below(&r, 10);          // sequential stream (data shuffles, init)
 *   float u = snc_hash_uniform(seed, step, i);  // counter-based: dropout mask of element i at step
 *
 * The sequential stream is splitmix64. The counter-based form hashes (key, counter) with the
 * splitmix64 finaliser, so any element can be drawn independently of thread count or order. */
#ifndef SNC_RNG_H
#define SNC_RNG_H
#include <stdint.h>

typedef struct snc_rng {
  uint64_t state;
} snc_rng;

static inline uint64_t snc_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline snc_rng snc_rng_seed(uint64_t seed) {
  snc_rng r = {snc_mix64(seed + 0x9E3779B97F4A7C15ull)};
  return r;
}

static inline uint64_t snc_rng_next(snc_rng *r) {
  r->state += 0x9E3779B97F4A7C15ull;
  return snc_mix64(r->state);
}

/* Uniform in [0, 1) with 24 random bits (exactly representable as float). */
static inline float snc_rng_uniform(snc_rng *r) { return (float)(snc_rng_next(r) >> 40) * 0x1.0p-24f; }

/* Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; bias below 2^-32 for n < 2^32). */
static inline uint32_t snc_rng_below(snc_rng *r, uint32_t n) {
  return (uint32_t)(((snc_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Standard normal by Box-Muller (uses two draws). */
float snc_rng_normal(snc_rng *r);

/* Counter-based: a uniform float in [0,1) from (seed, stream, counter) alone. */
static inline float snc_hash_uniform(uint64_t seed, uint64_t stream, uint64_t counter) {
  uint64_t z = snc_mix64(seed ^ snc_mix64(stream + 0x9E3779B97F4A7C15ull)) + counter * 0x9E3779B97F4A7C15ull;
  return (float)(snc_mix64(z) >> 40) * 0x1.0p-24f;
}

/* Derives an independent seed for a named purpose (round r of a study, init of a model, ...). */
static inline uint64_t snc_seed_derive(uint64_t seed, uint64_t purpose) { return snc_mix64(seed ^ snc_mix64(purpose)); }

/* A parameter's stream key: snc_seed_derive(seed, snc_name_hash(name)) draws it in the reference
 * executor and in generated init code alike (64-bit FNV-1a of the name's bytes). */
static inline uint64_t snc_name_hash(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return h;
}

#endif
