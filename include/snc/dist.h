/* Distributed runs over MPI (runtime/dist/dist.c): `mpirun -np N snrun study|train ...`.
 *
 *   snc_dist_init(&argc, &argv);            // MPI_Init only when started by mpirun; else one process
 *   if (snc_dist_size() > 1 && snc_dist_rank() == 0) ...
 *   snc_dist_allreduce_f32(grads, n);       // elementwise sum over the ranks, the same on every rank
 *   snc_dist_finalize();
 *
 * MPI is optional at build time (CMake finds Open MPI's libopenmpi-dev, or -DSNC_MPI=OFF): without
 * it every function here acts for a single process, and snc_dist_init refuses a launch by mpirun
 * with a message saying how to get the MPI build. snc_dist_init calls MPI_Init only when the
 * environment shows an MPI launcher (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK), so a plain
 * `snrun` never pays for it. Every call here is collective or point-to-point on MPI_COMM_WORLD from
 * the main thread. A rank that dies makes the launcher stop the whole job (Open MPI's default);
 * the study's journal and the checkpoints are written atomically by rank 0 only, so nothing
 * written is damaged. */
#ifndef SNC_DIST_H
#define SNC_DIST_H
#include <stddef.h>
#include <stdint.h>

#include "snc/error.h"

/* 0 when this process may go on (also without MPI and without a launcher); -1 with err set when
 * started by mpirun on a build without MPI, or when MPI_Init fails. */
int snc_dist_init(int *argc, char ***argv, snc_error *err);
void snc_dist_finalize(void);
/* Ends every rank of the job with exit status code (MPI_Abort), or exit(code) in one process. */
_Noreturn void snc_dist_abort(int code);
int snc_dist_rank(void); /* 0 in one process */
int snc_dist_size(void); /* 1 in one process */
int snc_dist_compiled(void); /* 1 when built with MPI */
/* OpenMP threads for one rank: the cores of this machine divided by the ranks running on it (at
 * least 1), so ranks sharing a machine do not oversubscribe it. */
int snc_dist_local_threads(void);
const char *snc_dist_library(void); /* "Open MPI v4.1.4, ..." or "none" */

/* Collectives: every rank calls them in the same order. */
/* x = sum over ranks as rank 0 computes it (MPI_Reduce), then broadcast: bit-identical on every rank */
void snc_dist_reduce_bcast_f32(float *x, int64_t n);
void snc_dist_allreduce_f64(double *x, int64_t n); /* x = sum over ranks, in place */
void snc_dist_allreduce_max_i32(int *x, int n);    /* x = max over ranks, in place */
void snc_dist_bcast(void *p, int64_t bytes, int root);

/* Point to point (the study's scheduler): one tag, messages of bytes. */
void snc_dist_send(int dest, const void *p, size_t n);
/* A waiting message from any rank: 1 with its source and length, 0 when none is waiting. */
int snc_dist_poll(int *src, size_t *n);
/* Blocks for the next message from src (-1: any); returns it malloc'd (NUL-terminated past n). */
char *snc_dist_recv(int src, int *from, size_t *n);

#endif
