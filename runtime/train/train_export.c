/* `snrun pairs`: the data sets a run trains and evaluates on, written as IDX files (include/snc/train.h). */
#include <string.h>

#include "snc/file.h"
#include "snc/train.h"

static void put_be32(unsigned char *b, uint32_t v) {
  b[0] = (unsigned char)(v >> 24), b[1] = (unsigned char)(v >> 16), b[2] = (unsigned char)(v >> 8), b[3] = (unsigned char)v;
}

static int write_idx(const char *path, int is_float, int ndim, const int64_t *dims, const void *data, snc_error *err) {
  snc_file_out out;
  FILE *f = snc_file_begin(&out, path, "wb", err);
  if (!f) return -1;
  unsigned char h[4 + 4 * 8] = {0, 0, (unsigned char)(is_float ? 0x0D : 0x0C), (unsigned char)ndim};
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) put_be32(h + 4 + 4 * d, (uint32_t)dims[d]), n *= dims[d];
  fwrite(h, 1, 4 + 4 * (size_t)ndim, f);
  const uint32_t *w = data; /* float32 and int32 alike: 4 bytes, written big-endian */
  for (int64_t i = 0; i < n && !ferror(f); i++) {
    unsigned char b[4];
    put_be32(b, w[i]);
    fwrite(b, 1, 4, f);
  }
  return snc_file_commit(&out, err); /* a failed fwrite leaves ferror set: commit reports it */
}

int snc_data_export(const snc_graph *g, const snc_train_data *d, const char *dir, snc_error *err) {
  const snc_split *splits[2] = {&d->train, &d->test};
  const char *names[2] = {"train", "test"};
  for (int k = 0; k < 2; k++) {
    const snc_split *s = splits[k];
    if (s->n == 0) continue;
    for (int i = 0; i < s->nstreams; i++) {
      const snc_stream *st = &s->s[i];
      int64_t dims[8] = {s->n, st->per};
      int ndim = 2;
      for (int id = 0; id < g->nforward; id++) { /* the per-sample shape of the input it feeds */
        const snc_node *n = g->nodes[id];
        if (n->op != SNC_OP_INPUT || strcmp(n->source ? n->source : n->name, st->name)) continue;
        if (n->shape.rank > 7) break;
        ndim = n->shape.rank;
        for (int q = 1; q < n->shape.rank; q++) dims[q] = n->shape.dim[q];
      }
      char path[4096];
      snprintf(path, sizeof path, "%s/%s-%s.idx", dir, names[k], st->name);
      if (write_idx(path, st->dtype == SNC_F32, ndim, dims, st->data, err)) return -1;
    }
  }
  return 0;
}
