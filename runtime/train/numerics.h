/* --check-numerics (runtime/train_numerics.c), used by the training loop in train.c.
 *
 *   snc_numerics *nc = snc_numerics_new(g, err);       // before training; NULL when out of memory
 *   snc_numerics_save(nc, be);                          // before each step: copies every PARAM buffer
 *   be->run(be, SNC_RUN_STEP, &ctx);
 *   if (!snc_numerics_ok(nc, be)) {                     // after the step: the loss and every PARAM buffer
 *     snc_backend *ref = snc_numerics_replay_backend(nc, err);   // the reference executor, pre-step state
 *     ... load the same batch into ref, ref->run(ref, SNC_RUN_STEP, &ctx) ...
 *     snc_numerics_report(nc, be, ref, epoch, step, err);        // names the first tensor that went bad
 *   }
 *   snc_numerics_free(nc);
 *
 * Cost when on: one copy and one scan of the parameters and optimizer state per step (the step itself
 * reads them several times); nothing at all when off. A NaN or Inf in a gradient shows in the
 * parameters after the update, so the scan catches gradients as well as the loss. */
#ifndef SNC_RUNTIME_NUMERICS_H
#define SNC_RUNTIME_NUMERICS_H
#include "snc/train.h"

typedef struct snc_numerics snc_numerics;

snc_numerics *snc_numerics_new(const snc_graph *g, snc_error *err);
void snc_numerics_save(snc_numerics *nc, snc_backend *be);
int snc_numerics_ok(const snc_numerics *nc, snc_backend *be);
/* A reference backend on the graph holding the state saved before the step (the caller loads the
 * batch, runs the step and frees it); NULL with err set when it cannot be made. */
snc_backend *snc_numerics_replay_backend(const snc_numerics *nc, snc_error *err);
/* Sets err to "FILE: --check-numerics: epoch E, step S: ..." naming the first non-finite tensor of the
 * replayed step (ref may be NULL: then only the loss and parameters of be are named). Returns -1. */
int snc_numerics_report(const snc_numerics *nc, snc_backend *be, snc_backend *ref, int epoch, int64_t step,
                        int64_t nb, snc_error *err);
void snc_numerics_free(snc_numerics *nc);

#endif
