/* The machine's FMA peak in GFLOP/s, the ceiling bench/train_bench.sh reports snc's training step against.
 *
 *   cc -O2 -mavx512f -mfma -fopenmp bench/fma_peak.c -o fma_peak     (AVX-512 CPUs)
 *   cc -O2 -mavx2 -mfma -fopenmp bench/fma_peak.c -o fma_peak        (otherwise)
 *   ./fma_peak [THREADS] [SECONDS]
 *
 * Each thread runs a loop of ACC independent vector FMAs (acc[i] = acc[i] * m + a), enough independent
 * chains to cover the FMA latency on every FMA port, for about SECONDS (default 0.5) of wall time. One
 * FMA counts as 2 FLOPs per float lane (16 lanes for zmm, 8 for ymm). Prints
 *   isa avx512f
 *   peak_gflops_per_thread X      one thread
 *   peak_gflops_2threads Y        two threads (OpenMP), total over both
 *   peak_gflops_Nthreads Z        THREADS threads, when THREADS is not 1 or 2
 * The result is the best of three timed rounds per setting (the first also warms the clock up). */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ACC 16         /* independent accumulators: latency 4 x 2 ports needs 8; 16 leaves margin */
#define CHUNK 100000L  /* loop iterations between clock reads */

#if defined(__AVX512F__)
#define ISA "avx512f"
#define LANES 16
typedef __m512 vec;
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ADD _mm512_add_ps
static float hsum(vec v) { return _mm512_reduce_add_ps(v); }
#elif defined(__AVX2__) && defined(__FMA__)
#define ISA "avx2"
#define LANES 8
typedef __m256 vec;
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define ADD _mm256_add_ps
static float hsum(vec v) {
  float t[8];
  _mm256_storeu_ps(t, v);
  return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#else
#error "fma_peak.c needs -mavx512f -mfma or -mavx2 -mfma"
#endif

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static volatile float sink; /* keeps the accumulators observable */

/* Runs FMAs until `seconds` have passed since `start`; returns the number of FMA instructions issued. */
static long fma_loop(double start, double seconds) {
  vec acc[ACC];
  const vec m = SET1(0.9999999f), a = SET1(1e-7f); /* converges to 1: no overflow, no denormals */
  for (int i = 0; i < ACC; i++) acc[i] = SET1((float)i * 0.01f);
  long chunks = 0;
  do {
    for (long k = 0; k < CHUNK; k++) {
#pragma GCC unroll 16
      for (int i = 0; i < ACC; i++) acc[i] = FMA(acc[i], m, a);
    }
    chunks++;
  } while (now() - start < seconds);
  vec s = acc[0];
  for (int i = 1; i < ACC; i++) s = ADD(s, acc[i]);
  sink = hsum(s);
  return chunks * CHUNK * ACC;
}

/* GFLOP/s of `threads` threads running the loop at once: total FLOPs over the slowest thread's time. */
static double measure(int threads, double seconds) {
  double best = 0;
  for (int round = 0; round < 3; round++) {
    long total = 0;
    double t0 = 0, t1 = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
#pragma omp barrier
#pragma omp single
      t0 = now();
      /* implicit barrier after single: every thread starts from t0 */
      total += fma_loop(t0, seconds);
#pragma omp barrier
#pragma omp single
      t1 = now();
    }
    double gflops = (double)total * 2.0 * LANES / (t1 - t0) * 1e-9;
    if (gflops > best) best = gflops;
  }
  return best;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  double seconds = argc > 2 ? atof(argv[2]) : 0.5;
  if (threads < 1 || !(seconds > 0)) {
    fprintf(stderr, "usage: fma_peak [THREADS >= 1] [SECONDS > 0]\n");
    return 2;
  }
  if (!__builtin_cpu_supports(LANES == 16 ? "avx512f" : "avx2") || !__builtin_cpu_supports("fma")) {
    fprintf(stderr, "fma_peak: built for %s but this CPU lacks it; rebuild with the other flags\n", ISA);
    return 1;
  }
  printf("isa %s\n", ISA);
  printf("accumulators %d\n", ACC);
  printf("peak_gflops_per_thread %.1f\n", measure(1, seconds));
  fflush(stdout);
  printf("peak_gflops_2threads %.1f\n", measure(2, seconds));
  if (threads > 2) printf("peak_gflops_%dthreads %.1f\n", threads, measure(threads, seconds));
  return 0;
}
