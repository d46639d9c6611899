/* The op table: one pointer per opcode, in ops.def order, plus the helpers the rows share. */
#include "ops/op.h"

#include <string.h>

static const snc_op_info *const table[SNC_OP_COUNT] = {
#define X(e, name, fam) [SNC_OP_##e] = &snc_op_##name,
#include "snc/ops.def"
#undef X
};

const snc_op_info *snc_op(snc_opcode op) {
  SNC_ASSERT(op >= 0 && op < SNC_OP_COUNT && table[op]);
  return table[op];
}

const char *snc_op_name(snc_opcode op) { return snc_op(op)->name; }

int snc_op_lookup(const char *name) {
  for (int i = 0; i < SNC_OP_COUNT; i++)
    if (strcmp(table[i]->name, name) == 0) return i;
  return -1;
}

int snc_require_f32(const snc_graph *g, snc_node *n, int k, snc_error *err) {
  const snc_node *in = snc_node_in(g, n, k);
  if (in->dtype != SNC_F32)
    return snc_node_errorf(g, n, err, "input '%s' is int32; %s needs float32", in->name, snc_op_name(n->op));
  return 0;
}

int snc_infer_same_as_input(snc_graph *g, snc_node *n, snc_error *err) {
  for (int k = 0; k < n->ninputs; k++)
    if (snc_require_f32(g, n, k, err)) return -1;
  const snc_node *in = snc_node_in(g, n, 0);
  n->shape = in->shape;
  n->dtype = in->dtype;
  n->flags |= in->flags & SNC_NF_BATCHED;
  return 0;
}

int64_t snc_flops_numel(const snc_graph *g, const snc_node *n) {
  (void)g;
  return snc_shape_numel(&n->shape);
}

int64_t snc_flops_zero(const snc_graph *g, const snc_node *n) {
  (void)g;
  (void)n;
  return 0;
}

int64_t snc_kernel_numel(const snc_node *n, const snc_kctx *ctx) {
  int64_t e = snc_shape_numel(&n->shape);
  if ((n->flags & SNC_NF_BATCHED) && n->shape.dim[0]) e = e / n->shape.dim[0] * ctx->nb;
  return e;
}

int snc_example_input(snc_graph *g, int rank, const int64_t *dims, snc_dtype dt) {
  snc_shape s = {rank, {0}};
  for (int i = 0; i < rank; i++) s.dim[i] = dims[i];
  snc_error err = {0};
  char name[32];
  snprintf(name, sizeof name, "in%d", g->nnodes);
  int id = snc_graph_input(g, name, dt, &s, (snc_loc){g->file, 0, 0}, &err);
  SNC_ASSERT(id >= 0);
  return id;
}

int snc_example_param(snc_graph *g, int rank, const int64_t *dims) {
  snc_shape s = {rank, {0}};
  for (int i = 0; i < rank; i++) s.dim[i] = dims[i];
  snc_error err = {0};
  char name[32];
  snprintf(name, sizeof name, "p%d", g->nnodes);
  int id = snc_graph_param(g, name, &s, (snc_init){SNC_INIT_UNIFORM, -1, 1}, SNC_NF_TRAINABLE, (snc_loc){g->file, 0, 0}, &err);
  SNC_ASSERT(id >= 0);
  return id;
}

int snc_example_op(snc_graph *g, snc_opcode op, const int *ins, int n, snc_attrs a) {
  snc_error err = {0};
  char name[32];
  snprintf(name, sizeof name, "%s%d", snc_op_name(op), g->nnodes);
  int id = snc_graph_add(g, op, name, ins, n, &a, (snc_loc){g->file, 0, 0}, &err);
  if (id < 0) fprintf(stderr, "snc: example of %s: %s\n", snc_op_name(op), err.msg);
  SNC_ASSERT(id >= 0);
  return id;
}
