/* Data-parallel training over MPI ranks (runtime/train_dist.c), used by the training loop in train.c
 * when snc_train_opts.data_parallel is set.
 *
 *   snc_dp *dp = snc_dp_new(g, err);             // the backend must run SNC_RUN_GRAD and SNC_RUN_APPLY
 *   snc_dp_bcast_state(dp, be);                  // every rank starts from rank 0's parameters
 *   int64_t lo, n;
 *   snc_dp_share(nb, &lo, &n);                   // this rank's rows [lo, lo + n) of a batch of nb
 *   ... load those rows; ctx.nb = n, ctx.row0 = lo ...
 *   snc_dp_step(dp, be, &ctx, nb, n, &loss, &stop);  // gradients, their reduction, the update
 *   snc_dp_free(dp);
 *
 * Every rank draws the same batches (same seed); rank r computes rows [nb r / N, nb (r+1) / N) of
 * each. Its gradients (means over its rows) are weighted by rows / nb and summed over the ranks, so
 * the update is the one of the undivided batch up to float reassociation; dropout masks are the
 * undivided batch's (ctx.row0). The sum is MPI_Reduce to rank 0 then MPI_Bcast, so every rank applies
 * bit-identical gradients and the ranks never drift apart; for a given N the run is bitwise
 * reproducible. One message per step carries every gradient, the batch-norm running statistics
 * (averaged the same way: batch norm normalises with each rank's own batch statistics, as PyTorch's
 * DistributedDataParallel without SyncBatchNorm), the loss and the stop flag. */
#ifndef SNC_RUNTIME_TRAIN_DIST_H
#define SNC_RUNTIME_TRAIN_DIST_H
#include "snc/train.h"

typedef struct snc_dp snc_dp;

snc_dp *snc_dp_new(const snc_graph *g, snc_error *err);
void snc_dp_free(snc_dp *dp);
/* Every PARAM buffer (parameters, optimizer and batch-norm state) from rank 0. */
void snc_dp_bcast_state(snc_dp *dp, snc_backend *be);
/* This rank's rows of a batch of nb: [*lo, *lo + *n), possibly empty. */
void snc_dp_share(int64_t nb, int64_t *lo, int64_t *n);
/* One step: SNC_RUN_GRAD on this rank's n rows (the batch loaded, ctx->nb = n, ctx->row0 = lo; nothing
 * when n is 0), the reduction, SNC_RUN_APPLY. *loss receives the batch's mean loss, *stop the OR of
 * every rank's *stop. */
void snc_dp_step(snc_dp *dp, snc_backend *be, snc_kctx *ctx, int64_t nb, int64_t n, double *loss, int *stop);

#endif
