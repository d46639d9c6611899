/* The reference executor; see include/snc/backend.h. */
#include "snc/backend.h"

#include <string.h>

#include "ops/op.h"

struct snc_exec {
  const snc_graph *g;
  void **buf; /* one per node */
  void **ins; /* scratch for a node's input pointers */
  int max_in;
};

static size_t node_bytes(const snc_node *n) {
  int64_t e = snc_shape_numel(&n->shape);
  return (size_t)(e ? e : 1) * 4; /* float32 and int32 alike */
}

snc_exec *snc_exec_new(const snc_graph *g, snc_error *err) {
  snc_exec *ex = calloc(1, sizeof *ex);
  if (!ex) goto oom;
  ex->g = g;
  ex->buf = calloc((size_t)g->nnodes, sizeof *ex->buf);
  if (!ex->buf) goto oom;
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *n = g->nodes[i];
    if (n->ninputs > ex->max_in) ex->max_in = n->ninputs;
    if (!(ex->buf[i] = calloc(1, node_bytes(n)))) goto oom;
    if (n->op == SNC_OP_CONST) memcpy(ex->buf[i], n->value, (size_t)snc_shape_numel(&n->shape) * 4);
  }
  ex->ins = calloc((size_t)ex->max_in + 1, sizeof *ex->ins);
  if (!ex->ins) goto oom;
  return ex;
oom:
  snc_exec_free(ex);
  snc_errorf(err, "%s: out of memory for the reference executor", g->file);
  return NULL;
}

void snc_exec_free(snc_exec *ex) {
  if (!ex) return;
  if (ex->buf)
    for (int i = 0; i < ex->g->nnodes; i++) free(ex->buf[i]);
  free(ex->buf);
  free(ex->ins);
  free(ex);
}

void *snc_exec_buf(snc_exec *ex, int node) {
  SNC_ASSERT(node >= 0 && node < ex->g->nnodes);
  return ex->buf[node];
}

void snc_init_fill(float *dst, int64_t n, snc_init init, uint64_t seed) {
  snc_rng r = snc_rng_seed(seed);
  for (int64_t i = 0; i < n; i++) {
    switch (init.kind) {
    case SNC_INIT_ZEROS: dst[i] = 0; break;
    case SNC_INIT_CONSTANT: dst[i] = init.a; break;
    case SNC_INIT_UNIFORM: dst[i] = init.a + (init.b - init.a) * snc_rng_uniform(&r); break;
    case SNC_INIT_NORMAL: dst[i] = init.a + init.b * snc_rng_normal(&r); break;
    }
  }
}

void snc_exec_init_params(snc_exec *ex, uint64_t seed) {
  for (int i = 0; i < ex->g->nnodes; i++) {
    const snc_node *n = ex->g->nodes[i];
    if (n->op != SNC_OP_PARAM) continue;
    snc_init_fill(ex->buf[i], snc_shape_numel(&n->shape), n->init, snc_seed_derive(seed, snc_name_hash(n->name)));
  }
}

void snc_exec_node(snc_exec *ex, int id, const snc_kctx *ctx) {
  const snc_node *n = ex->g->nodes[id];
  const snc_op_info *info = snc_op(n->op);
  if (!info->ref) { /* leaves hold their values already */
    SNC_ASSERT(n->op == SNC_OP_INPUT || n->op == SNC_OP_PARAM || n->op == SNC_OP_CONST);
    return;
  }
  for (int k = 0; k < n->ninputs; k++) ex->ins[k] = ex->buf[n->inputs[k]];
  info->ref(ex->g, n, ex->buf[id], ex->ins, ctx);
}

void snc_exec_run(snc_exec *ex, snc_run_kind kind, const snc_kctx *ctx) {
  int first = snc_graph_first_update(ex->g), begin = kind == SNC_RUN_APPLY ? first : 0;
  int end = kind == SNC_RUN_STEP || kind == SNC_RUN_APPLY ? ex->g->nnodes : kind == SNC_RUN_GRAD ? first : ex->g->nforward;
  SNC_ASSERT(ctx->nb >= 1 && ctx->nb <= ex->g->batch);
  for (int i = begin; i < end; i++) snc_exec_node(ex, i, ctx);
}
