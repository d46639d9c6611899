/* MNIST-format datasets: a directory with the four standard IDX names; see include/snc/data.h. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
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

/* ---- the same splits again: a memo of decoded files (snc_dataset_acquire) ----------------------- */

/* A decoded split as acquire lends it. In the table, it stays after its last release until a newer
 * split needs the entry; a split loaded while every entry was lent is a loose one, freed on release. */
typedef struct memo {
  snc_dataset d;        /* first: acquire hands out &d, release finds the memo from it */
  char ipath[4096], lpath[4096];
  struct stat ist, lst; /* the files as they were read */
  unsigned long used;   /* in the table: 0 free, else the tick of its last use */
  int refs;             /* acquires not yet released */
  int loose;            /* not in the table */
} memo;
#define NMEMO 4
static memo memos[NMEMO];
static unsigned long ticks;
static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;

static int same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

const snc_dataset *snc_dataset_acquire(const char *dir, int test_split, snc_error *err) {
  if (!dir) dir = snc_data_default_dir();
  const char *prefix = test_split ? "t10k" : "train";
  char name[64], ipath[4096], lpath[4096];
  struct stat ist, lst;
  snc_error ignored = {0};
  snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
  int known = find_file(dir, name, ipath, sizeof ipath, &ignored) == 0 && stat(ipath, &ist) == 0;
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
  known = known && find_file(dir, name, lpath, sizeof lpath, &ignored) == 0 && stat(lpath, &lst) == 0;
  if (known) {
    pthread_mutex_lock(&memo_lock);
    for (int k = 0; k < NMEMO; k++) {
      memo *m = &memos[k];
      if (m->used && !strcmp(m->ipath, ipath) && !strcmp(m->lpath, lpath) && same_file(&m->ist, &ist) &&
          same_file(&m->lst, &lst)) {
        m->used = ++ticks;
        m->refs++;
        pthread_mutex_unlock(&memo_lock);
        return &m->d;
      }
    }
    pthread_mutex_unlock(&memo_lock);
  }
  snc_dataset d;
  if (snc_dataset_load(dir, test_split, &d, err) != 0) return NULL; /* its messages name what is wrong */
  memo *m = NULL;
  if (known) {
    pthread_mutex_lock(&memo_lock);
    for (int k = 0; k < NMEMO; k++) /* a free entry, else the least recently used one nobody holds */
      if (!memos[k].refs && (!m || memos[k].used < m->used)) m = &memos[k];
    if (m) {
      snc_dataset_free(&m->d);
      m->d = d; /* the table owns the arrays now */
      snprintf(m->ipath, sizeof m->ipath, "%s", ipath);
      snprintf(m->lpath, sizeof m->lpath, "%s", lpath);
      m->ist = ist, m->lst = lst, m->used = ++ticks, m->refs = 1;
    }
    pthread_mutex_unlock(&memo_lock);
    if (m) return &m->d;
  }
  if (!(m = calloc(1, sizeof *m))) {
    snc_dataset_free(&d);
    snc_errorf(err, "%s: out of memory", dir);
    return NULL;
  }
  m->d = d; /* a loose memo owns the arrays; release frees both */
  m->refs = 1, m->loose = 1;
  return &m->d;
}

void snc_dataset_release(const snc_dataset *d) {
  if (!d) return;
  memo *m = (memo *)(void *)((char *)(uintptr_t)d - offsetof(memo, d));
  pthread_mutex_lock(&memo_lock);
  SNC_ASSERT(m->refs > 0);
  int last = --m->refs == 0 && m->loose;
  pthread_mutex_unlock(&memo_lock);
  if (last) {
    snc_dataset_free(&m->d);
    free(m);
  }
}
