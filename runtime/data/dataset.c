/* MNIST-format datasets: a directory with the four standard IDX names; see include/snc/data.h. */
#include <errno.h>
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
