/* The reference-kernel interface shared by the op rows and the reference executor.
 *
 *   snc_kctx ctx = {.nb = 100, .seed = 7, .step = 1, .training = 1, .lr_scale = 1};
 *   snc_op(n->op)->ref(g, n, out_buffer, input_buffers, &ctx);
 *
 * Buffers are owned by the executor. A batched tensor's buffer holds g->batch rows; kernels touch
 * the first ctx->nb (a last, smaller batch needs no other graph). Losses and batch reductions
 * average or sum over those nb rows only. */
#ifndef SNC_KERNEL_H
#define SNC_KERNEL_H
#include <stdint.h>

#include "snc/ir.h"

typedef struct snc_kctx {
  int64_t nb;      /* rows of the batch in use, 1..g->batch */
  uint64_t seed;   /* keys dropout masks together with step and element */
  int64_t step;    /* 1-based optimizer step (Adam's bias correction); keys dropout masks */
  int training;    /* dropout active, batchnorm uses batch statistics and updates running ones */
  float lr_scale;  /* learning-rate schedule factor applied to every update */
  int64_t row0;    /* the batch's first row within a batch split over ranks: dropout draws element
                      row0 * per-sample + i, as the undivided batch would (0 in one process) */
} snc_kctx;

/* out: the node's buffer; in[k]: input k's buffer (written only by SNC_NF_EFFECT ops). */
typedef void (*snc_ref_fn)(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx);

/* Elements of node n in use for this batch: numel with dim 0 replaced by nb when batched. */
int64_t snc_kernel_numel(const snc_node *n, const snc_kctx *ctx);

#include "snc/rng.h"

/* The dropout draw shared by every implementation: keep element i of the dropout with stream
 * `stream` at `step` when this is >= p. A 64-bit key per (seed, step, stream), then murmur3's
 * 32-bit finaliser of key + i * golden ratio: cheap in 16-lane vector code, and a bijection of i,
 * so masks of different elements are independent draws for any practical purpose. */
static inline uint32_t snc_dropout_key(uint64_t seed, int64_t step, int stream) {
  return (uint32_t)snc_mix64(seed ^ snc_mix64(((uint64_t)step << 20) ^ (uint64_t)stream));
}
static inline float snc_dropout_uniform(uint64_t seed, int64_t step, int stream, int64_t i) {
  uint32_t h = snc_dropout_key(seed, step, stream) + (uint32_t)i * 0x9E3779B9u;
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return (float)(h >> 8) * 0x1.0p-24f;
}

#endif
