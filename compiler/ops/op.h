/* One row per op (brief §3): name, arity, shape rule, FLOPs; later issues add the reference kernels,
 * the gradient rule and the LLVM emitter to the same row. Rows live in compiler/ops/<family>.c. */
#ifndef SNC_OPS_OP_H
#define SNC_OPS_OP_H
#include "snc/ir.h"

#include "snc/kernel.h"

typedef struct snc_ad snc_ad; /* compiler/autodiff/ad.h */
struct snc_cg;                 /* compiler/codegen/cg.h */
struct LLVMOpaqueValue;        /* LLVMValueRef */

typedef struct snc_op_info {
  const char *name;
  int min_inputs, max_inputs; /* max -1: any number */
  /* Sets n->shape, n->dtype and the batched flag from the inputs and n->attr; on a user error
   * returns snc_node_errorf(...). Inputs' shapes are final when it runs. */
  int (*infer)(snc_graph *g, snc_node *n, snc_error *err);
  /* Floating-point operations of one execution for the whole batch (a multiply-add counts 2). */
  int64_t (*flops)(const snc_graph *g, const snc_node *n);
  /* Reference kernel: plain C, written for clarity; the oracle for generated code. NULL for leaves. */
  snc_ref_fn ref;
  /* Gradient rule: adds nodes computing the gradients of n's inputs from `gout` (the gradient of
   * n's output) and hands each to snc_ad_accum. NULL: the op has no gradient (autodiff refuses a
   * model that would need one). Backward and update ops have none. */
  int (*grad)(snc_ad *ad, const snc_node *n, int gout);
  /* A small instance for the table-driven tests: adds inputs (and parameters) of typical shapes to
   * g and the op itself, returns its id. NULL for leaves and for ops only autodiff creates. */
  int (*example)(snc_graph *g);
  /* Emitter: writes the op's kernel into the module (compiler/codegen/emit_<family>.c, which share
   * the vector and loop helpers); returns the number of kernel functions (1). NULL for leaves. */
  int (*emit)(struct snc_cg *cg, const snc_node *n, struct LLVMOpaqueValue **ks);
} snc_op_info;

/* the emitters the rows point to (compiler/codegen/emit_*.c) */
#define SNC_EMITTERS(X) X(elementwise) X(reduce) X(product) X(update) X(conv) X(pool) X(softmax) X(loss) X(norm) X(shape)
#define SNC_DECLARE_EMITTER(fam) int snc_cg_emit_##fam(struct snc_cg *cg, const snc_node *n, struct LLVMOpaqueValue **ks);
SNC_EMITTERS(SNC_DECLARE_EMITTER)
#undef SNC_DECLARE_EMITTER

const snc_op_info *snc_op(snc_opcode op);

#define X(e, name, fam) extern const snc_op_info snc_op_##name;
#include "snc/ops.def"
#undef X

/* Helpers shared by the rows. */
int snc_infer_same_as_input(snc_graph *g, snc_node *n, snc_error *err); /* shape/dtype of input 0 */
int snc_require_f32(const snc_graph *g, snc_node *n, int k, snc_error *err);
int64_t snc_flops_numel(const snc_graph *g, const snc_node *n);        /* one op per element */
int64_t snc_flops_zero(const snc_graph *g, const snc_node *n);
/* For example builders: a batched float input of per-sample shape dims, a trainable parameter. */
int snc_example_input(snc_graph *g, int rank, const int64_t *dims, snc_dtype dt);
int snc_example_param(snc_graph *g, int rank, const int64_t *dims);
int snc_example_op(snc_graph *g, snc_opcode op, const int *ins, int n, snc_attrs a);
#define SNC_SHAPE_STR(g, id, buf) snc_shape_str(&(g)->nodes[id]->shape, (g)->nodes[id]->flags & SNC_NF_BATCHED, buf, sizeof buf)

#endif
