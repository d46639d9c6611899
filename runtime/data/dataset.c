/* MNIST-format datasets: a directory with the four standard IDX names; see include/snc/data.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "snc/data.h"

#ifndef SNC_DATA_DIR
#define SNC_DATA_DIR "data" /* CMake passes <source>/data */
#endif

const char *snc_data_default_dir(void) {
  const char *env = getenv("SNC_DATA");
  if (env && *env) return env;
  return SNC_DATA_DIR "/mnist";
}

/* Finds dir/name or dir/name.gz (in that order) and writes the path into buf. */
static int find_file(const char *dir, const char *name, char *buf, size_t size, snc_error *err) {
  const char *suffix[2] = {"", ".gz"};
  struct stat st;
  for (int i = 0; i < 2; i++) {
    int n = snprintf(buf, size, "%s/%s%s", dir, name, suffix[i]);
    if (n < 0 || (size_t)n >= size) return snc_errorf(err, "%s: directory path too long", dir);
    if (stat(buf, &st) == 0) return 0;
  }
  return snc_errorf(err, "%s: missing %s (or %s.gz) in the dataset directory", dir, name, name);
}

int snc_dataset_load(const char *dir, int test_split, snc_dataset *out, snc_error *err) {
  memset(out, 0, sizeof *out);
  if (!dir) dir = snc_data_default_dir();
  struct stat st;
  if (stat(dir, &st) != 0)
    return snc_errorf(err, "%s: cannot open dataset directory: %s", dir, strerror(errno));
  if (!S_ISDIR(st.st_mode)) return snc_errorf(err, "%s: dataset location is not a directory", dir);

  const char *prefix = test_split ? "t10k" : "train";
  char name[64], ipath[4096], lpath[4096];
  snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
  if (find_file(dir, name, ipath, sizeof ipath, err) != 0) return -1;
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
  if (find_file(dir, name, lpath, sizeof lpath, err) != 0) return -1;

  int rc = -1;
  snc_idx img = {0}, lab = {0};
  if (snc_idx_read(ipath, &img, err) != 0) goto cleanup;
  if (img.ndim != 3 || img.dims[1] != SNC_IMG_SIDE || img.dims[2] != SNC_IMG_SIDE) {
    char shape[64] = "";
    for (int i = 0; i < img.ndim; i++) {
      size_t len = strlen(shape);
      snprintf(shape + len, sizeof shape - len, "%s%lld", i ? "x" : "", (long long)img.dims[i]);
    }
    snc_errorf(err, "%s: images must be N x 28 x 28, got %s", ipath, shape);
    goto cleanup;
  }
  if (img.dims[0] == 0) { snc_errorf(err, "%s: no images", ipath); goto cleanup; }
  if (snc_idx_read(lpath, &lab, err) != 0) goto cleanup;
  if (lab.ndim != 1) {
    snc_errorf(err, "%s: labels must have 1 dimension, got %d", lpath, lab.ndim);
    goto cleanup;
  }
  if (lab.dims[0] != img.dims[0]) {
    snc_errorf(err, "%s: %lld labels, but %s has %lld images", lpath, (long long)lab.dims[0], ipath,
               (long long)img.dims[0]);
    goto cleanup;
  }
  for (int64_t i = 0; i < lab.dims[0]; i++) {
    if (lab.data[i] > 9) {
      snc_errorf(err, "%s: label %d at index %lld out of range 0..9", lpath, lab.data[i], (long long)i);
      goto cleanup;
    }
  }

  out->n = img.dims[0];
  out->images = img.data; /* ownership moves from the IDX structs to the dataset */
  out->labels = lab.data;
  img.data = lab.data = NULL;
  rc = 0;
cleanup:
  snc_idx_free(&img);
  snc_idx_free(&lab);
  return rc;
}

void snc_dataset_free(snc_dataset *d) {
  if (!d) return;
  free(d->images);
  free(d->labels);
  memset(d, 0, sizeof *d);
}

/* ---- the same splits again: a memo of decoded files (snc_dataset_load_cached) ------------------ */

typedef struct memo {
  char ipath[4096], lpath[4096];
  struct stat ist, lst; /* the files as they were read */
  snc_dataset d;        /* the memo's own copy */
  unsigned long used;   /* 0: free; else the tick of its last use */
} memo;
#define NMEMO 4
static memo memos[NMEMO];
static unsigned long ticks;
static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;

static int same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int copy_dataset(const snc_dataset *from, snc_dataset *to) {
  to->n = from->n;
  to->images = malloc((size_t)from->n * SNC_IMG_SIDE * SNC_IMG_SIDE);
  to->labels = malloc((size_t)from->n);
  if (!to->images || !to->labels) {
    snc_dataset_free(to);
    return -1;
  }
  memcpy(to->images, from->images, (size_t)from->n * SNC_IMG_SIDE * SNC_IMG_SIDE);
  memcpy(to->labels, from->labels, (size_t)from->n);
  return 0;
}

int snc_dataset_load_cached(const char *dir, int test_split, snc_dataset *out, snc_error *err) {
  memset(out, 0, sizeof *out);
  if (!dir) dir = snc_data_default_dir();
  const char *prefix = test_split ? "t10k" : "train";
  char name[64], ipath[4096], lpath[4096];
  struct stat ist, lst;
  snc_error ignored = {0};
  snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
  int known = find_file(dir, name, ipath, sizeof ipath, &ignored) == 0 && stat(ipath, &ist) == 0;
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
  known = known && find_file(dir, name, lpath, sizeof lpath, &ignored) == 0 && stat(lpath, &lst) == 0;
  if (!known) return snc_dataset_load(dir, test_split, out, err); /* its messages name what is wrong */
  pthread_mutex_lock(&memo_lock);
  for (int k = 0; k < NMEMO; k++) {
    memo *m = &memos[k];
    if (m->used && !strcmp(m->ipath, ipath) && !strcmp(m->lpath, lpath) && same_file(&m->ist, &ist) &&
        same_file(&m->lst, &lst)) {
      m->used = ++ticks;
      long long n = (long long)m->d.n;
      int rc = copy_dataset(&m->d, out);
      pthread_mutex_unlock(&memo_lock);
      if (rc == 0) return 0;
      return snc_errorf(err, "%s: out of memory for %lld images", dir, n);
    }
  }
  pthread_mutex_unlock(&memo_lock);
  if (snc_dataset_load(dir, test_split, out, err) != 0) return -1;
  pthread_mutex_lock(&memo_lock);
  memo *m = &memos[0]; /* a free entry, else the least recently used */
  for (int k = 1; k < NMEMO && m->used; k++)
    if (memos[k].used < m->used) m = &memos[k];
  snc_dataset_free(&m->d);
  m->used = 0;
  if (copy_dataset(out, &m->d) == 0) { /* no memory for the memo: the next call loads again */
    snprintf(m->ipath, sizeof m->ipath, "%s", ipath);
    snprintf(m->lpath, sizeof m->lpath, "%s", lpath);
    m->ist = ist, m->lst = lst, m->used = ++ticks;
  }
  pthread_mutex_unlock(&memo_lock);
  return 0;
}
