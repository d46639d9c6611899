/* outer and outer_dx on [F][Bp]: every sample is a lane, so the products and sums run per lane over
 * feature rows; items are output rows. Padding lanes: the forward multiplies finite values; the
 * backward multiplies dy, which is zero there, so its result is zero there too. */
#include "codegen/emit.h"

int snc_cg_emit_product(snc_cg *cg, const snc_node *n, LLVMValueRef *ks) {
  const snc_graph *g = cg->g;
  int64_t bp = cg->lay->bp;
  char name[96];
  snprintf(name, sizeof name, "%s.%s", snc_op_name(n->op), n->name);
  ks[0] = cg_kernel_begin(cg, name);
  LLVMValueRef out = cg_node_ptr(cg, n->id), p0 = cg_node_ptr(cg, n->inputs[0]), p1 = cg_node_ptr(cg, n->inputs[1]);
  LLVMValueRef lo, hi;
  snc_cg_loop lr, lj, lb;
#define ROW(base, r) cg_gep(cg, (base), cg_add(cg, cg_mul(cg, (r), cg_i64(cg, bp)), lb.iv))
  if (n->op == SNC_OP_OUTER) { /* row i*m + j = a row i * b row j */
    int64_t na = cg_per_sample(g, n->inputs[0]), mb = cg_per_sample(g, n->inputs[1]);
    cg_partition(cg, na * mb, &lo, &hi);
    cg_loop_begin(cg, &lr, lo, hi, 1, "row");
    LLVMValueRef i = LLVMBuildSDiv(cg->b, lr.iv, cg_i64(cg, mb), ""), j = LLVMBuildSRem(cg->b, lr.iv, cg_i64(cg, mb), "");
    cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, bp), SNC_VW, "b");
    LLVMValueRef v = LLVMBuildFMul(cg->b, cg_vload(cg, ROW(p0, i), 64), cg_vload(cg, ROW(p1, j), 64), "");
    cg_vstore(cg, v, ROW(out, lr.iv), 64);
    cg_loop_end(cg, &lb);
    cg_loop_end(cg, &lr);
  } else { /* dx row i = sum over j of dy row (first factor: i*no + j, second: j*nx + i) * other row j */
    int64_t nx = cg_per_sample(g, n->id), no = cg_per_sample(g, n->inputs[1]);
    int first = n->attr.axis == 0;
    cg_partition(cg, nx, &lo, &hi);
    cg_loop_begin(cg, &lr, lo, hi, 1, "row");
    LLVMValueRef acc = cg_alloca(cg, cg->vf, "acc");
    cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, bp), SNC_VW, "b");
    cg_vstore(cg, cg_vf(cg, 0), acc, 64);
    cg_loop_begin(cg, &lj, cg_i64(cg, 0), cg_i64(cg, no), 1, "j");
    LLVMValueRef dr = first ? cg_add(cg, cg_mul(cg, lr.iv, cg_i64(cg, no)), lj.iv) : cg_add(cg, cg_mul(cg, lj.iv, cg_i64(cg, nx)), lr.iv);
    LLVMValueRef t = LLVMBuildFMul(cg->b, cg_vload(cg, ROW(p0, dr), 64), cg_vload(cg, ROW(p1, lj.iv), 64), "");
    cg_vstore(cg, LLVMBuildFAdd(cg->b, cg_vload(cg, acc, 64), t, ""), acc, 64);
    cg_loop_end(cg, &lj);
    cg_vstore(cg, cg_vload(cg, acc, 64), ROW(out, lr.iv), 64);
    cg_loop_end(cg, &lb);
    cg_loop_end(cg, &lr);
  }
#undef ROW
  cg_kernel_end(cg);
  return 1;
}
