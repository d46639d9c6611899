/* Data-parallel training: runtime/train_dist.h. */
#include <string.h>

#include "snc/dist.h"
#include "train_dist.h"

struct snc_dp {
  const snc_graph *g;
  int n;         /* tensors in the message */
  int *node;     /* gradient or running-statistics node of each */
  int64_t *len;  /* its floats */
  int64_t total; /* floats in the message, the loss and the stop flag included */
  float *buf;
};

static int add(snc_dp *dp, int node) {
  for (int i = 0; i < dp->n; i++)
    if (dp->node[i] == node) return 0;
  dp->node[dp->n] = node;
  dp->len[dp->n] = snc_shape_numel(&dp->g->nodes[node]->shape);
  dp->total += dp->len[dp->n++];
  return 0;
}

snc_dp *snc_dp_new(const snc_graph *g, snc_error *err) {
  snc_dp *dp = calloc(1, sizeof *dp);
  if (dp) {
    dp->g = g;
    dp->node = calloc((size_t)g->nnodes, sizeof *dp->node);
    dp->len = calloc((size_t)g->nnodes, sizeof *dp->len);
  }
  if (!dp || !dp->node || !dp->len) goto oom;
  for (int i = snc_graph_first_update(g); i < g->nnodes; i++) /* the gradient each update reads */
    if (g->nodes[i]->op == SNC_OP_ADAM || g->nodes[i]->op == SNC_OP_SGD) add(dp, g->nodes[i]->inputs[1]);
  for (int i = 0; i < g->nforward; i++) /* batch norm's running statistics */
    if (g->nodes[i]->op == SNC_OP_BATCHNORM) add(dp, g->nodes[i]->inputs[3]), add(dp, g->nodes[i]->inputs[4]);
  dp->total += 2; /* loss * rows, stop */
  if (!(dp->buf = malloc((size_t)dp->total * sizeof *dp->buf))) goto oom;
  return dp;
oom:
  snc_dp_free(dp);
  snc_errorf(err, "%s: out of memory for data-parallel training", g->file);
  return NULL;
}

void snc_dp_free(snc_dp *dp) {
  if (!dp) return;
  free(dp->node);
  free(dp->len);
  free(dp->buf);
  free(dp);
}

void snc_dp_bcast_state(snc_dp *dp, snc_backend *be) {
  const snc_graph *g = dp->g;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == SNC_OP_PARAM) snc_dist_bcast(be->buf(be, i), snc_shape_numel(&g->nodes[i]->shape) * 4, 0);
}

void snc_dp_share(int64_t nb, int64_t *lo, int64_t *n) {
  int64_t r = snc_dist_rank(), R = snc_dist_size();
  *lo = nb * r / R;
  *n = nb * (r + 1) / R - *lo;
}

void snc_dp_step(snc_dp *dp, snc_backend *be, snc_kctx *ctx, int64_t nb, int64_t n, double *loss, int *stop) {
  const snc_graph *g = dp->g;
  if (n > 0) be->run(be, SNC_RUN_GRAD, ctx);
  float w = (float)n / (float)nb, *p = dp->buf;
  for (int t = 0; t < dp->n; p += dp->len[t++]) {
    const float *x = be->buf(be, dp->node[t]);
    for (int64_t i = 0; i < dp->len[t]; i++) p[i] = n > 0 ? x[i] * w : 0.0f;
  }
  p[0] = n > 0 ? *(float *)be->buf(be, g->loss) * (float)n : 0.0f;
  p[1] = *stop ? 1.0f : 0.0f;
  snc_dist_reduce_bcast_f32(dp->buf, dp->total);
  p = dp->buf;
  for (int t = 0; t < dp->n; p += dp->len[t++]) memcpy(be->buf(be, dp->node[t]), p, (size_t)dp->len[t] * 4);
  *loss = (double)p[0] / (double)nb;
  *stop = p[1] > 0;
  int64_t keep = ctx->nb;
  ctx->nb = n > 0 ? n : 1; /* the updates do not read the batch */
  be->run(be, SNC_RUN_APPLY, ctx);
  ctx->nb = keep;
}
