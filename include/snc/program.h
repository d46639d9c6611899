/* The ABI of compiled models: what the JIT runs and what `snc compile` writes as an object file.
 *
 *   snc_program *p = snc_program_build(g, &opts, &err);   // g after snc_autodiff; LLVM module inside
 *   void *arena = aligned_alloc(64, p->arena_bytes);       // parameters, state, activations: one block
 *   p->init(arena, seed);                                  // through the JIT or a linked object
 *   snc_step_args a = {.inputs = ins, .nb = 100, .seed = s, .step = 1, .lr_scale = 1, .nthreads = 2};
 *   p->train_step(arena, &a);
 *
 * Entry points, for a model with symbol prefix P (the model name):
 *   void P_init(void *arena, uint64_t seed);                 parameters from their init specs, state zeroed
 *   void P_train_step(void *arena, const snc_step_args *a);  forward, backward and optimizer update
 *   void P_eval(void *arena, const snc_step_args *a);        forward in evaluation mode; writes outputs
 * Inputs and outputs are batch-major ([nb, ...], as the reference executor and PyTorch); inside the
 * arena batched tensors are feature-major with the batch innermost, padded to a multiple of 16. */
#ifndef SNC_PROGRAM_H
#define SNC_PROGRAM_H
#include <stdint.h>

/* Generated model headers (snc compile) define the same struct under the same guard. */
#ifndef SNC_STEP_ARGS_DEFINED
#define SNC_STEP_ARGS_DEFINED
typedef struct snc_step_args {
  const void *const *inputs; /* one per model input, in the order of the program's input list */
  void *const *outputs;      /* eval: one per output, then the loss (a float); NULL for train_step */
  int64_t nb;                /* samples in this batch, 1..batch */
  uint64_t seed;             /* dropout masks */
  int64_t step;              /* 1-based optimizer step */
  float lr_scale;            /* learning-rate schedule factor */
  int32_t nthreads;          /* 0: the OpenMP runtime's default */
  int64_t row0;              /* this batch's first row in a batch split over ranks (dropout masks); 0 */
} snc_step_args;
#endif

typedef void (*snc_init_fn)(void *arena, uint64_t seed);
typedef void (*snc_step_fn)(void *arena, const snc_step_args *a);

#endif
