/* Moving data across the ABI: batch-major inputs into the arena's batch-innermost layout (zeros in
 * the padding lanes), outputs back; the dispatch of nodes to their family's emitter; plan dumps. */
#include <string.h>

#include "codegen/emit.h"
#include "ops/op.h"

int64_t cg_per_sample(const snc_graph *g, int node) {
  const snc_node *n = g->nodes[node];
  int64_t e = snc_shape_numel(&n->shape);
  return (n->flags & SNC_NF_BATCHED) ? e / n->shape.dim[0] : e;
}

LLVMValueRef cg_nb(snc_cg *cg) { return cg_arg(cg, SNC_ARG_NB); }

LLVMValueRef cg_lane_mask(snc_cg *cg, LLVMValueRef b0) {
  LLVMValueRef lanes[SNC_VW];
  for (int l = 0; l < SNC_VW; l++) lanes[l] = cg_i64(cg, l);
  LLVMValueRef idx = LLVMBuildAdd(cg->b, cg_splat(cg, b0), LLVMConstVector(lanes, SNC_VW), "");
  return LLVMBuildICmp(cg->b, LLVMIntSLT, idx, cg_splat(cg, cg_nb(cg)), "live");
}

void snc_cg_emit_begin(snc_cg *cg, const snc_program *p) {
  (void)cg;
  (void)p;
}

LLVMValueRef snc_cg_emit_inputs(snc_cg *cg) {
  const snc_graph *g = cg->g;
  int any = 0;
  for (int i = 0; i < g->nnodes; i++) any |= g->nodes[i]->op == SNC_OP_INPUT;
  if (!any) return NULL;
  LLVMValueRef fn = cg_kernel_begin(cg, "inputs");
  LLVMValueRef inputs = cg_arg(cg, SNC_ARG_INPUTS), nb = cg_nb(cg);
  int k = 0;
  int64_t bp = cg->lay->bp;
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *n = g->nodes[i];
    if (n->op != SNC_OP_INPUT) continue;
    int64_t F = cg_per_sample(g, i);
    LLVMValueRef kk = cg_i64(cg, k++);
    LLVMValueRef src = LLVMBuildLoad2(cg->b, cg->ptr, LLVMBuildInBoundsGEP2(cg->b, cg->ptr, inputs, &kk, 1, ""), "src");
    LLVMValueRef dst = cg_node_ptr(cg, i), lo, hi;
    LLVMTypeRef et = n->dtype == SNC_F32 ? cg->f32 : cg->i32;
    cg_partition(cg, F, &lo, &hi);
    snc_cg_loop lf, lb;
    cg_loop_begin(cg, &lf, lo, hi, 1, "f");
    cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, bp), 1, "b");
    LLVMValueRef live = LLVMBuildICmp(cg->b, LLVMIntSLT, lb.iv, nb, "");
    LLVMBasicBlockRef cur = LLVMGetInsertBlock(cg->b);
    LLVMBasicBlockRef rd = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "read");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "join");
    LLVMBuildCondBr(cg->b, live, rd, join);
    LLVMPositionBuilderAtEnd(cg->b, rd);
    LLVMValueRef si = cg_add(cg, cg_mul(cg, lb.iv, cg_i64(cg, F)), lf.iv);
    LLVMValueRef v = LLVMBuildLoad2(cg->b, et, LLVMBuildInBoundsGEP2(cg->b, et, src, &si, 1, ""), "");
    LLVMBuildBr(cg->b, join);
    LLVMPositionBuilderAtEnd(cg->b, join);
    LLVMValueRef phi = LLVMBuildPhi(cg->b, et, "");
    LLVMValueRef zero = LLVMConstNull(et);
    LLVMAddIncoming(phi, &v, &rd, 1);
    LLVMAddIncoming(phi, &zero, &cur, 1);
    LLVMValueRef di = cg_add(cg, cg_mul(cg, lf.iv, cg_i64(cg, bp)), lb.iv);
    LLVMBuildStore(cg->b, phi, LLVMBuildInBoundsGEP2(cg->b, et, dst, &di, 1, ""));
    cg_loop_end(cg, &lb);
    cg_loop_end(cg, &lf);
  }
  cg_kernel_end(cg);
  return fn;
}

LLVMValueRef snc_cg_emit_outputs(snc_cg *cg, const snc_program *p) {
  const snc_graph *g = cg->g;
  LLVMValueRef fn = cg_kernel_begin(cg, "outputs");
  LLVMValueRef outs = cg_arg(cg, SNC_ARG_OUTPUTS), nb = cg_nb(cg);
  LLVMBasicBlockRef done = cg_if_begin(cg, LLVMBuildIsNotNull(cg->b, outs, ""), "have_outputs");
  int64_t bp = cg->lay->bp;
  for (int k = 0; k < p->noutputs; k++) {
    int id = p->outputs[k];
    const snc_node *n = g->nodes[id];
    int64_t F = cg_per_sample(g, id);
    LLVMValueRef kk = cg_i64(cg, k);
    LLVMValueRef dst = LLVMBuildLoad2(cg->b, cg->ptr, LLVMBuildInBoundsGEP2(cg->b, cg->ptr, outs, &kk, 1, ""), "dst");
    LLVMValueRef src = cg_node_ptr(cg, id), lo, hi;
    LLVMTypeRef et = n->dtype == SNC_F32 ? cg->f32 : cg->i32;
    if (!(n->flags & SNC_NF_BATCHED)) { /* copied by thread 0 */
      LLVMBasicBlockRef after = cg_if_begin(cg, LLVMBuildICmp(cg->b, LLVMIntEQ, cg->tid, cg_i64(cg, 0), ""), "t0");
      snc_cg_loop l;
      cg_loop_begin(cg, &l, cg_i64(cg, 0), cg_i64(cg, F), 1, "e");
      LLVMValueRef v = LLVMBuildLoad2(cg->b, et, LLVMBuildInBoundsGEP2(cg->b, et, src, &l.iv, 1, ""), "");
      LLVMBuildStore(cg->b, v, LLVMBuildInBoundsGEP2(cg->b, et, dst, &l.iv, 1, ""));
      cg_loop_end(cg, &l);
      cg_if_end(cg, after);
      continue;
    }
    cg_partition(cg, F, &lo, &hi);
    snc_cg_loop lf, lb;
    cg_loop_begin(cg, &lf, lo, hi, 1, "f");
    cg_loop_begin(cg, &lb, cg_i64(cg, 0), nb, 1, "b");
    LLVMValueRef si = cg_add(cg, cg_mul(cg, lf.iv, cg_i64(cg, bp)), lb.iv);
    LLVMValueRef v = LLVMBuildLoad2(cg->b, et, LLVMBuildInBoundsGEP2(cg->b, et, src, &si, 1, ""), "");
    LLVMValueRef di = cg_add(cg, cg_mul(cg, lb.iv, cg_i64(cg, F)), lf.iv);
    LLVMBuildStore(cg->b, v, LLVMBuildInBoundsGEP2(cg->b, et, dst, &di, 1, ""));
    cg_loop_end(cg, &lb);
    cg_loop_end(cg, &lf);
  }
  if (g->loss >= 0) { /* outputs[noutputs] receives the loss */
    LLVMBasicBlockRef after = cg_if_begin(cg, LLVMBuildICmp(cg->b, LLVMIntEQ, cg->tid, cg_i64(cg, 0), ""), "t0");
    LLVMValueRef kk = cg_i64(cg, p->noutputs);
    LLVMValueRef dst = LLVMBuildLoad2(cg->b, cg->ptr, LLVMBuildInBoundsGEP2(cg->b, cg->ptr, outs, &kk, 1, ""), "dst");
    cg_store(cg, cg_load(cg, cg_node_ptr(cg, g->loss)), dst);
    cg_if_end(cg, after);
  }
  cg_if_end(cg, done);
  cg_kernel_end(cg);
  return fn;
}

int snc_cg_emit_node(snc_cg *cg, const snc_node *n, LLVMValueRef *ks) {
  const snc_op_info *info = snc_op(n->op); /* the emitter lives in the op's row */
  return info->emit ? info->emit(cg, n, ks) : -1;
}

void snc_cg_dump_plan(const snc_program *p, FILE *out) {
  const snc_graph *g = p->g;
  const snc_layout *l = &p->layout;
  static const char *const region[2] = {"training step", "evaluation"};
  for (int r = 0; r < 2; r++) {
    if (!p->ncalls[r]) continue;
    fprintf(out, "kernels of the %s (%d calls, %d barriers):\n", region[r], p->ncalls[r], p->nbarriers[r]);
    for (int k = 0; k < p->ncalls[r]; k++)
      fprintf(out, "  %4d  %s%s\n", k, p->call_names[r][k],
              k + 1 < p->ncalls[r] && p->call_waits[r] && !p->call_waits[r][k] ? "   (no barrier after)" : "");
  }
  fprintf(out, "fused chains (absorbed node -> the kernel of):\n");
  for (int i = 0; i < g->nnodes; i++)
    if (p->into[i] != i)
      fprintf(out, "  %s -> %s%s\n", g->nodes[i]->name, g->nodes[snc_fuse_root(p->into, i)]->name,
              snc_fuse_side(p->into, i) ? " (side output, stored)" : "");
  fprintf(out, "memory plan of %s: arena %.1f KiB (unplanned sum %.1f KiB, persistent %.1f KiB), batch padded to %d\n",
          g->name, l->arena_bytes / 1024.0, l->unplanned_bytes / 1024.0, l->persistent_bytes / 1024.0, l->bp);
  for (int i = 0; i < g->nnodes; i++) {
    if (l->offset[i] < 0) continue;
    fprintf(out, "  %4d %-40s %-16s offset %9lld  %8lld bytes  live to %d\n", i, g->nodes[i]->name,
            snc_op_name(g->nodes[i]->op), (long long)l->offset[i], (long long)l->bytes[i], l->live_end[i]);
  }
  fprintf(out, "%d distinct kernel functions, built in %.3f s\n", p->nkernels, p->build_seconds);
}
