/* MPI behind include/snc/dist.h; a single process when snc is built without MPI (SNC_HAVE_MPI
 * undefined) or started without a launcher. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "snc/dist.h"

#ifdef SNC_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_active = 0, g_local = 1;

/* Started by an MPI launcher: Open MPI's mpirun, or a PMI/PMIx one (MPICH's, Slurm's srun). */
static int launched(void) {
  const char *v = getenv("OMPI_COMM_WORLD_SIZE");
  if (!v) v = getenv("PMI_SIZE");
  if (v) return 1;
  return getenv("PMIX_RANK") != NULL;
}

int snc_dist_compiled(void) {
#ifdef SNC_HAVE_MPI
  return 1;
#else
  return 0;
#endif
}

int snc_dist_init(int *argc, char ***argv, snc_error *err) {
  if (!launched()) return 0;
#ifdef SNC_HAVE_MPI
  if (MPI_Init(argc, argv) != MPI_SUCCESS) return snc_errorf(err, "MPI_Init failed");
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  MPI_Comm node;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
    MPI_Comm_size(node, &g_local);
    MPI_Comm_free(&node);
  }
  g_active = 1;
  return 0;
#else
  (void)argc, (void)argv;
  const char *n = getenv("OMPI_COMM_WORLD_SIZE");
  if (!n) n = getenv("PMI_SIZE");
  if (n && atoi(n) <= 1) return 0; /* mpirun -np 1: one process anyway */
  return snc_errorf(err, "started by an MPI launcher, but this snrun was built without MPI: install Open MPI "
                         "(apt-get install libopenmpi-dev openmpi-bin) and rebuild (cmake finds it; see snrun --help)");
#endif
}

void snc_dist_finalize(void) {
#ifdef SNC_HAVE_MPI
  if (g_active) MPI_Finalize();
#endif
  g_active = 0;
}

_Noreturn void snc_dist_abort(int code) {
  fflush(stdout);
  fflush(stderr);
#ifdef SNC_HAVE_MPI
  if (g_active && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  exit(code);
}

int snc_dist_rank(void) { return g_rank; }

int snc_dist_local_threads(void) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  long t = (cores < 1 ? 1 : cores) / (g_local < 1 ? 1 : g_local);
  return t < 1 ? 1 : (int)t;
}
int snc_dist_size(void) { return g_size; }

const char *snc_dist_library(void) {
#ifdef SNC_HAVE_MPI
  static char buf[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(buf, &len);
  buf[strcspn(buf, ",\n")] = 0;
  return buf;
#else
  return "none";
#endif
}

#ifdef SNC_HAVE_MPI
/* Large buffers go in pieces: MPI counts are ints. */
#define CHUNK ((int64_t)1 << 28)
#endif

void snc_dist_reduce_bcast_f32(float *x, int64_t n) {
#ifdef SNC_HAVE_MPI
  if (g_size > 1)
    for (int64_t i = 0; i < n; i += CHUNK) {
      int c = (int)(n - i < CHUNK ? n - i : CHUNK);
      if (g_rank == 0)
        MPI_Reduce(MPI_IN_PLACE, x + i, c, MPI_FLOAT, MPI_SUM, 0, MPI_COMM_WORLD);
      else
        MPI_Reduce(x + i, NULL, c, MPI_FLOAT, MPI_SUM, 0, MPI_COMM_WORLD);
      MPI_Bcast(x + i, c, MPI_FLOAT, 0, MPI_COMM_WORLD);
    }
#else
  (void)x, (void)n;
#endif
}

void snc_dist_allreduce_f64(double *x, int64_t n) {
#ifdef SNC_HAVE_MPI
  if (g_size > 1)
    for (int64_t i = 0; i < n; i += CHUNK)
      MPI_Allreduce(MPI_IN_PLACE, x + i, (int)(n - i < CHUNK ? n - i : CHUNK), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
#else
  (void)x, (void)n;
#endif
}

void snc_dist_allreduce_max_i32(int *x, int n) {
#ifdef SNC_HAVE_MPI
  if (g_size > 1) MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
#else
  (void)x, (void)n;
#endif
}

void snc_dist_bcast(void *p, int64_t bytes, int root) {
#ifdef SNC_HAVE_MPI
  if (g_size > 1)
    for (int64_t i = 0; i < bytes; i += CHUNK)
      MPI_Bcast((char *)p + i, (int)(bytes - i < CHUNK ? bytes - i : CHUNK), MPI_BYTE, root, MPI_COMM_WORLD);
#else
  (void)p, (void)bytes, (void)root;
#endif
}

#define TAG 7

void snc_dist_send(int dest, const void *p, size_t n) {
#ifdef SNC_HAVE_MPI
  SNC_ASSERT(n < (size_t)1 << 31);
  MPI_Send(p, (int)n, MPI_BYTE, dest, TAG, MPI_COMM_WORLD);
#else
  (void)dest, (void)p, (void)n;
#endif
}

int snc_dist_poll(int *src, size_t *n) {
#ifdef SNC_HAVE_MPI
  int flag = 0, count = 0;
  MPI_Status st;
  if (g_size < 2) return 0;
  MPI_Iprobe(MPI_ANY_SOURCE, TAG, MPI_COMM_WORLD, &flag, &st);
  if (!flag) return 0;
  MPI_Get_count(&st, MPI_BYTE, &count);
  *src = st.MPI_SOURCE;
  *n = (size_t)count;
  return 1;
#else
  (void)src, (void)n;
  return 0;
#endif
}

char *snc_dist_recv(int src, int *from, size_t *n) {
#ifdef SNC_HAVE_MPI
  MPI_Status st;
  int count = 0, flag = 0;
  /* a polite wait: MPI_Probe spins a core, which a study's other workers on this machine need */
  for (;;) {
    MPI_Iprobe(src < 0 ? MPI_ANY_SOURCE : src, TAG, MPI_COMM_WORLD, &flag, &st);
    if (flag) break;
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  MPI_Get_count(&st, MPI_BYTE, &count);
  char *p = malloc((size_t)count + 1);
  SNC_ASSERT(p);
  MPI_Recv(p, count, MPI_BYTE, st.MPI_SOURCE, TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  p[count] = 0;
  if (from) *from = st.MPI_SOURCE;
  if (n) *n = (size_t)count;
  return p;
#else
  (void)src, (void)from, (void)n;
  return NULL;
#endif
}
