/* Data movement on [F][Bp]: a per-sample index f names a row of Bp lanes, so reshape is a copy of
 * rows in order, concat/slice copy blocks of rows, one_hot compares labels lane by lane. Values are
 * moved as bits (float vectors carry int32 labels unchanged). */
#include "codegen/emit.h"

static void copy_rows(snc_cg *cg, LLVMValueRef dst, LLVMValueRef dst_row, LLVMValueRef src, LLVMValueRef src_row, LLVMValueRef nrows) {
  int64_t bp = cg->lay->bp;
  snc_cg_loop lr, lb;
  cg_loop_begin(cg, &lr, cg_i64(cg, 0), nrows, 1, "r");
  cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, bp), SNC_VW, "b");
  LLVMValueRef s = cg_add(cg, cg_mul(cg, cg_add(cg, src_row, lr.iv), cg_i64(cg, bp)), lb.iv);
  LLVMValueRef d = cg_add(cg, cg_mul(cg, cg_add(cg, dst_row, lr.iv), cg_i64(cg, bp)), lb.iv);
  cg_vstore(cg, cg_vload(cg, cg_gep(cg, src, s), 64), cg_gep(cg, dst, d), 64);
  cg_loop_end(cg, &lb);
  cg_loop_end(cg, &lr);
}

/* outer x (A x inner) blocks along axis ax of node's per-sample shape */
static void split_axis(const snc_node *n, int ax, int64_t *outer, int64_t *inner) {
  *outer = 1, *inner = 1;
  for (int i = 1; i < ax; i++) *outer *= n->shape.dim[i];
  for (int i = ax + 1; i < n->shape.rank; i++) *inner *= n->shape.dim[i];
}

int snc_cg_emit_shape(snc_cg *cg, const snc_node *n, LLVMValueRef *ks) {
  const snc_graph *g = cg->g;
  int64_t bp = cg->lay->bp;
  char name[96];
  snprintf(name, sizeof name, "%s.%s", snc_op_name(n->op), n->name);
  ks[0] = cg_kernel_begin(cg, name);
  LLVMValueRef out = cg_node_ptr(cg, n->id), in = cg_node_ptr(cg, n->inputs[0]), lo, hi;
  const snc_node *x = g->nodes[n->inputs[0]];
  SNC_ASSERT((n->flags & SNC_NF_BATCHED) && (x->flags & SNC_NF_BATCHED));
  switch (n->op) {
  case SNC_OP_RESHAPE: {
    cg_partition(cg, cg_per_sample(g, n->id), &lo, &hi);
    copy_rows(cg, out, lo, in, lo, LLVMBuildSub(cg->b, hi, lo, ""));
    break;
  }
  case SNC_OP_CONCAT: { /* items: outer blocks; each copies every input's slab in order */
    int64_t outer, inner, Atot = n->shape.dim[n->attr.axis];
    split_axis(n, n->attr.axis, &outer, &inner);
    cg_partition(cg, outer, &lo, &hi);
    snc_cg_loop lo_;
    cg_loop_begin(cg, &lo_, lo, hi, 1, "o");
    int64_t off = 0;
    for (int k = 0; k < n->ninputs; k++) {
      const snc_node *xk = g->nodes[n->inputs[k]];
      int64_t Ak = xk->shape.dim[n->attr.axis];
      LLVMValueRef src_row = cg_mul(cg, lo_.iv, cg_i64(cg, Ak * inner));
      LLVMValueRef dst_row = cg_add(cg, cg_mul(cg, lo_.iv, cg_i64(cg, Atot * inner)), cg_i64(cg, off * inner));
      copy_rows(cg, out, dst_row, cg_node_ptr(cg, n->inputs[k]), src_row, cg_i64(cg, Ak * inner));
      off += Ak;
    }
    cg_loop_end(cg, &lo_);
    break;
  }
  case SNC_OP_SLICE:
  case SNC_OP_SLICE_DX: {
    int dx = n->op == SNC_OP_SLICE_DX;
    const snc_node *big = dx ? n : x; /* the full tensor */
    int64_t outer, inner, A = big->shape.dim[n->attr.axis];
    split_axis(big, n->attr.axis, &outer, &inner);
    cg_partition(cg, outer, &lo, &hi);
    snc_cg_loop lo_;
    cg_loop_begin(cg, &lo_, lo, hi, 1, "o");
    LLVMValueRef full_row = cg_add(cg, cg_mul(cg, lo_.iv, cg_i64(cg, A * inner)), cg_i64(cg, n->attr.start * inner));
    LLVMValueRef part_row = cg_mul(cg, lo_.iv, cg_i64(cg, (int64_t)n->attr.len * inner));
    if (dx) { /* zero the block, then place the slice */
      snc_cg_loop lz;
      LLVMValueRef z0 = cg_mul(cg, lo_.iv, cg_i64(cg, A * inner * bp));
      cg_loop_begin(cg, &lz, cg_i64(cg, 0), cg_i64(cg, A * inner * bp), SNC_VW, "z");
      cg_vstore(cg, cg_vf(cg, 0), cg_gep(cg, out, cg_add(cg, z0, lz.iv)), 64);
      cg_loop_end(cg, &lz);
      copy_rows(cg, out, full_row, in, part_row, cg_i64(cg, (int64_t)n->attr.len * inner));
    } else {
      copy_rows(cg, out, part_row, in, full_row, cg_i64(cg, (int64_t)n->attr.len * inner));
    }
    cg_loop_end(cg, &lo_);
    break;
  }
  case SNC_OP_ONE_HOT: {
    int64_t F = cg_per_sample(g, x->id), K = n->attr.classes;
    cg_partition(cg, F, &lo, &hi);
    snc_cg_loop lf, lk, lb;
    cg_loop_begin(cg, &lf, lo, hi, 1, "f");
    cg_loop_begin(cg, &lk, cg_i64(cg, 0), cg_i64(cg, K), 1, "k");
    cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, bp), SNC_VW, "b");
    LLVMValueRef lab = LLVMBuildBitCast(cg->b, cg_vload(cg, cg_gep(cg, in, cg_add(cg, cg_mul(cg, lf.iv, cg_i64(cg, bp)), lb.iv)), 64), cg->vi32, "");
    LLVMValueRef hit = LLVMBuildICmp(cg->b, LLVMIntEQ, lab, cg_splat(cg, LLVMBuildTrunc(cg->b, lk.iv, cg->i32, "")), "");
    LLVMValueRef v = LLVMBuildSelect(cg->b, hit, cg_vf(cg, 1), cg_vf(cg, 0), "");
    LLVMValueRef di = cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, lf.iv, cg_i64(cg, K)), lk.iv), cg_i64(cg, bp)), lb.iv);
    cg_vstore(cg, v, cg_gep(cg, out, di), 64);
    cg_loop_end(cg, &lb);
    cg_loop_end(cg, &lk);
    cg_loop_end(cg, &lf);
    break;
  }
  default: SNC_ASSERT(!"not a shape op");
  }
  cg_kernel_end(cg);
  return 1;
}
