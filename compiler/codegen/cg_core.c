/* Builder helpers shared by every emitter: constants, loops, partitions, memory, arithmetic. */
#include <string.h>

#include "codegen/cg.h"
#include "codegen/emit.h" /* cg_per_sample */

LLVMValueRef cg_i64(snc_cg *cg, int64_t v) { return LLVMConstInt(cg->i64, (unsigned long long)v, 1); }
LLVMValueRef cg_i32(snc_cg *cg, int32_t v) { return LLVMConstInt(cg->i32, (unsigned long long)(int64_t)v, 1); }
LLVMValueRef cg_f32(snc_cg *cg, float v) { return LLVMConstReal(cg->f32, v); }

LLVMValueRef cg_vf(snc_cg *cg, float v) {
  LLVMValueRef e[SNC_VW];
  for (int i = 0; i < SNC_VW; i++) e[i] = cg_f32(cg, v);
  return LLVMConstVector(e, SNC_VW);
}

LLVMValueRef cg_splat(snc_cg *cg, LLVMValueRef s) {
  LLVMTypeRef t = LLVMVectorType(LLVMTypeOf(s), SNC_VW);
  LLVMValueRef v = LLVMBuildInsertElement(cg->b, LLVMGetUndef(t), s, cg_i32(cg, 0), "");
  LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(cg->i32, SNC_VW));
  return LLVMBuildShuffleVector(cg->b, v, LLVMGetUndef(t), zeros, "splat");
}

LLVMValueRef cg_kernel_begin(snc_cg *cg, const char *name) {
  char buf[160];
  snprintf(buf, sizeof buf, "k%d.%s", cg->nkernels++, name);
  snprintf(cg->kname, sizeof cg->kname, "%s", name);
  cg->sched = (snc_cg_schedule){0};
  cg->sched_shape[0] = 0;
  LLVMValueRef fn = LLVMAddFunction(cg->mod, buf, cg->kernel_ty);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->ctx, noinline, 0));
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
  LLVMPositionBuilderAtEnd(cg->b, entry);
  cg->fn = fn;
  cg->arena = LLVMGetParam(fn, 0);
  cg->args = LLVMGetParam(fn, 1);
  cg->tid = LLVMBuildSExt(cg->b, LLVMGetParam(fn, 2), cg->i64, "tid");
  cg->nt = LLVMBuildSExt(cg->b, LLVMGetParam(fn, 3), cg->i64, "nt");
  cg->offs = LLVMGetParam(fn, 4);
  cg->nslots = 0;
  return fn;
}

void cg_kernel_end(snc_cg *cg) { LLVMBuildRetVoid(cg->b); }

void cg_loop_begin(snc_cg *cg, snc_cg_loop *l, LLVMValueRef lo, LLVMValueRef hi, int64_t step, const char *name) {
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(cg->b);
  l->header = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, name);
  l->body = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "body");
  l->exit = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "exit");
  l->step = cg_i64(cg, step);
  LLVMBuildBr(cg->b, l->header);
  LLVMPositionBuilderAtEnd(cg->b, l->header);
  l->phi = LLVMBuildPhi(cg->b, cg->i64, name);
  LLVMAddIncoming(l->phi, &lo, &pre, 1);
  l->iv = l->phi;
  LLVMValueRef c = LLVMBuildICmp(cg->b, LLVMIntSLT, l->phi, hi, "");
  LLVMBuildCondBr(cg->b, c, l->body, l->exit);
  LLVMPositionBuilderAtEnd(cg->b, l->body);
}

void cg_loop_end(snc_cg *cg, snc_cg_loop *l) {
  LLVMValueRef next = LLVMBuildNSWAdd(cg->b, l->phi, l->step, "");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->b);
  LLVMAddIncoming(l->phi, &next, &latch, 1);
  LLVMBuildBr(cg->b, l->header);
  LLVMPositionBuilderAtEnd(cg->b, l->exit);
}

void cg_partition(snc_cg *cg, int64_t n, LLVMValueRef *lo, LLVMValueRef *hi) { cg_partition_v(cg, cg_i64(cg, n), lo, hi); }

void cg_partition_v(snc_cg *cg, LLVMValueRef N, LLVMValueRef *lo, LLVMValueRef *hi) {
  *lo = LLVMBuildSDiv(cg->b, LLVMBuildMul(cg->b, cg->tid, N, ""), cg->nt, "lo");
  *hi = LLVMBuildSDiv(cg->b, LLVMBuildMul(cg->b, LLVMBuildAdd(cg->b, cg->tid, cg_i64(cg, 1), ""), N, ""), cg->nt, "hi");
}

/* 32-bit lanes: a <16 x i64> compare costs code generation a split into halves */
LLVMValueRef cg_tail_mask(snc_cg *cg, LLVMValueRef e0, LLVMValueRef e) {
  LLVMValueRef lanes[SNC_VW];
  for (int l = 0; l < SNC_VW; l++) lanes[l] = cg_i32(cg, l);
  LLVMValueRef rem = LLVMBuildSub(cg->b, e, e0, "");
  rem = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGT, rem, cg_i64(cg, SNC_VW), ""), cg_i64(cg, SNC_VW), rem, "");
  rem = LLVMBuildTrunc(cg->b, rem, cg->i32, "");
  return LLVMBuildICmp(cg->b, LLVMIntSGT, cg_splat(cg, rem), LLVMConstVector(lanes, SNC_VW), "live");
}

LLVMBasicBlockRef cg_if_begin(snc_cg *cg, LLVMValueRef cond, const char *name) {
  LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, name);
  LLVMBasicBlockRef after = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "endif");
  LLVMBuildCondBr(cg->b, cond, then, after);
  LLVMPositionBuilderAtEnd(cg->b, then);
  return after;
}

void cg_if_end(snc_cg *cg, LLVMBasicBlockRef after) {
  LLVMBuildBr(cg->b, after);
  LLVMPositionBuilderAtEnd(cg->b, after);
}

/* node >= 0: the node's buffer offset (one slot per node); -1: a data value (one slot per value);
   -2: a data value in a slot of its own (cg_data_fresh) */
static LLVMValueRef slot(snc_cg *cg, int node, int64_t val, int src, int kind) {
  int k = 0;
  while (k < cg->nslots && !(node != -2 && cg->slot_node[k] == node && (node >= 0 || cg->slot_val[k] == val))) k++;
  if (k == cg->nslots) {
    SNC_ASSERT(k < 32);
    cg->slot_node[k] = node;
    cg->slot_val[k] = val;
    cg->slot_src[k] = src, cg->slot_kind[k] = kind;
    cg->nslots++;
  } else if (cg->slot_src[k] != src || cg->slot_kind[k] != kind) {
    cg->slot_src[k] = -1, cg->slot_kind[k] = 0; /* a value of two origins: not one node's */
  }
  LLVMBasicBlockRef back = cg_entry_begin(cg);
  LLVMValueRef idx = cg_i64(cg, k);
  LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->i64, LLVMBuildInBoundsGEP2(cg->b, cg->i64, cg->offs, &idx, 1, ""), "slot");
  LLVMSetMetadata(v, LLVMGetMDKindIDInContext(cg->ctx, "invariant.load", 14), LLVMMDNodeInContext(cg->ctx, NULL, 0));
  cg_entry_end(cg, back);
  return v;
}

LLVMValueRef cg_node_ptr(snc_cg *cg, int node) {
  int64_t off = cg->lay->offset[node];
  SNC_ASSERT(off >= 0);
  LLVMValueRef idx = slot(cg, node, off, -1, 0);
  LLVMBasicBlockRef back = cg_entry_begin(cg);
  LLVMValueRef p = LLVMBuildInBoundsGEP2(cg->b, cg->i8, cg->arena, &idx, 1, cg->g->nodes[node]->name);
  cg_entry_end(cg, back);
  return p;
}

void cg_barrier(snc_cg *cg) {
  LLVMTypeRef t = LLVMFunctionType(cg->voidt, NULL, 0, 0);
  LLVMValueRef f = LLVMGetNamedFunction(cg->mod, "GOMP_barrier");
  if (!f) f = LLVMAddFunction(cg->mod, "GOMP_barrier", t);
  LLVMBuildCall2(cg->b, t, f, NULL, 0, "");
}

LLVMValueRef cg_data(snc_cg *cg, int64_t value) { return slot(cg, -1, value, -1, 0); }
LLVMValueRef cg_data_fresh(snc_cg *cg, int64_t value) { return slot(cg, -2, value, -1, 0); }

int64_t cg_data_value(const snc_cg *cg, int node, int kind) {
  const snc_graph *g = cg->g;
  const snc_node *n = g->nodes[node];
  switch (kind) {
  case CG_DATA_STREAM: return n->attr.stream;
  case CG_DATA_NUMEL: return snc_shape_numel(&n->shape);
  case CG_DATA_PER_SAMPLE: return cg_per_sample(g, node);
  case CG_DATA_DIM1: return n->shape.dim[1];
  case CG_DATA_INNER: return cg_per_sample(g, node) / n->shape.dim[1];
  case CG_DATA_SCRATCH: SNC_ASSERT(cg->lay->scratch_off[node] >= 0); return cg->lay->scratch_off[node];
  default: SNC_ASSERT(!"a data kind"); return 0;
  }
}
LLVMValueRef cg_data_of(snc_cg *cg, int node, int kind) { return slot(cg, -1, cg_data_value(cg, node, kind), node, kind); }
LLVMValueRef cg_data_fresh_of(snc_cg *cg, int node, int kind) {
  return slot(cg, -2, cg_data_value(cg, node, kind), node, kind);
}

LLVMValueRef cg_gep(snc_cg *cg, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildInBoundsGEP2(cg->b, cg->f32, base, &idx, 1, "");
}

LLVMValueRef cg_gep_i32(snc_cg *cg, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildInBoundsGEP2(cg->b, cg->i32, base, &idx, 1, "");
}

LLVMValueRef cg_alloca(snc_cg *cg, LLVMTypeRef t, const char *name) {
  LLVMBuilderRef tmp = LLVMCreateBuilderInContext(cg->ctx);
  LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(cg->fn);
  LLVMValueRef first = LLVMGetFirstInstruction(entry);
  if (first) LLVMPositionBuilderBefore(tmp, first);
  else LLVMPositionBuilderAtEnd(tmp, entry);
  LLVMValueRef a = LLVMBuildAlloca(tmp, t, name);
  LLVMSetAlignment(a, 64);
  LLVMDisposeBuilder(tmp);
  return a;
}

LLVMValueRef cg_load(snc_cg *cg, LLVMValueRef p) { return LLVMBuildLoad2(cg->b, cg->f32, p, ""); }
void cg_store(snc_cg *cg, LLVMValueRef v, LLVMValueRef p) { LLVMBuildStore(cg->b, v, p); }

LLVMValueRef cg_vload(snc_cg *cg, LLVMValueRef p, unsigned align) {
  LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->vf, p, "");
  LLVMSetAlignment(v, align);
  return v;
}

void cg_vstore(snc_cg *cg, LLVMValueRef v, LLVMValueRef p, unsigned align) {
  LLVMValueRef s = LLVMBuildStore(cg->b, v, p);
  LLVMSetAlignment(s, align);
}

LLVMBasicBlockRef cg_entry_begin(snc_cg *cg) {
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(cg->b), entry = LLVMGetEntryBasicBlock(cg->fn);
  if (cur == entry) return NULL;
  LLVMValueRef term = LLVMGetBasicBlockTerminator(entry);
  SNC_ASSERT(term);
  LLVMPositionBuilderBefore(cg->b, term);
  return cur;
}

void cg_entry_end(snc_cg *cg, LLVMBasicBlockRef back) {
  if (back) LLVMPositionBuilderAtEnd(cg->b, back);
}

/* snc_step_args: {ptr inputs, ptr outputs, i64 nb, i64 seed, i64 step, float lr_scale, i32 nthreads, i64 row0} */
LLVMValueRef cg_arg(snc_cg *cg, int field) {
  static const int64_t off[] = {0, 8, 16, 24, 32, 40, 44, 48};
  LLVMBasicBlockRef back = cg_entry_begin(cg);
  LLVMValueRef idx = cg_i64(cg, off[field]);
  LLVMValueRef p = LLVMBuildInBoundsGEP2(cg->b, cg->i8, cg->args, &idx, 1, "");
  LLVMTypeRef t = field <= SNC_ARG_OUTPUTS ? cg->ptr : field == SNC_ARG_LR_SCALE ? cg->f32
                                                   : field == SNC_ARG_NTHREADS ? cg->i32 : cg->i64;
  LLVMValueRef v = LLVMBuildLoad2(cg->b, t, p, "");
  cg_entry_end(cg, back);
  return v;
}

LLVMValueRef cg_add(snc_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWAdd(cg->b, a, b, ""); }
LLVMValueRef cg_mul(snc_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWMul(cg->b, a, b, ""); }

LLVMValueRef cg_call_intrinsic(snc_cg *cg, const char *name, LLVMTypeRef overload, LLVMValueRef *args, int n) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  SNC_ASSERT(id != 0);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, &overload, 1);
  LLVMTypeRef ft = LLVMIntrinsicGetType(cg->ctx, id, &overload, 1);
  return LLVMBuildCall2(cg->b, ft, fn, args, (unsigned)n, "");
}

LLVMValueRef cg_fma(snc_cg *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  LLVMValueRef args[3] = {a, b, c};
  return cg_call_intrinsic(cg, "llvm.fma", LLVMTypeOf(a), args, 3);
}

LLVMValueRef cg_fmax(snc_cg *cg, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef c = LLVMBuildFCmp(cg->b, LLVMRealOGT, b, a, "");
  return LLVMBuildSelect(cg->b, c, b, a, "");
}

/* out[i] = cg_hsum(v[i]) for i < n, bit for bit, 16 at a time: each level adds the same lane pairs
 * as cg_hsum's tree, for two vectors with one shuffle pair, so 16 sums take 15 adds, not 64 */
void cg_hsum_many(snc_cg *cg, const LLVMValueRef *v, int n, LLVMValueRef *out) {
  for (int base = 0; base < n; base += SNC_VW) {
    LLVMValueRef l[SNC_VW];
    int m = n - base < SNC_VW ? n - base : SNC_VW, cnt = 1;
    while (cnt < m) cnt *= 2;
    for (int i = 0; i < cnt; i++) l[i] = i < m ? v[base + i] : cg_vf(cg, 0);
    /* groups of 2w lanes in, groups of w lanes out; the two inputs' groups in order */
    for (int w = SNC_VW / 2; w >= 1; w /= 2) {
      int half = cnt > 1 ? cnt / 2 : 1;
      for (int pidx = 0; pidx < half; pidx++) {
        LLVMValueRef a = l[2 * pidx], b = cnt > 1 ? l[2 * pidx + 1] : cg_vf(cg, 0);
        LLVMValueRef lo[SNC_VW], hi[SNC_VW];
        int k = 0;
        for (int src = 0; src < 2; src++)
          for (int g0 = 0; g0 < SNC_VW; g0 += 2 * w)
            for (int i = 0; i < w; i++, k++) lo[k] = cg_i32(cg, src * SNC_VW + g0 + i), hi[k] = cg_i32(cg, src * SNC_VW + g0 + w + i);
        LLVMValueRef t1 = LLVMBuildShuffleVector(cg->b, a, b, LLVMConstVector(lo, SNC_VW), "");
        LLVMValueRef t2 = LLVMBuildShuffleVector(cg->b, a, b, LLVMConstVector(hi, SNC_VW), "");
        l[pidx] = LLVMBuildFAdd(cg->b, t1, t2, "");
      }
      cnt = half;
    }
    for (int i = 0; i < m; i++) out[base + i] = LLVMBuildExtractElement(cg->b, l[0], cg_i32(cg, i), "");
  }
}

LLVMValueRef cg_hsum(snc_cg *cg, LLVMValueRef v) {
  /* pairwise tree in a fixed order: lanes (0..7)+(8..15), then halves again */
  LLVMValueRef acc = v;
  for (int w = SNC_VW / 2; w >= 1; w /= 2) {
    LLVMValueRef lo_idx[SNC_VW], hi_idx[SNC_VW];
    for (int i = 0; i < w; i++) {
      lo_idx[i] = cg_i32(cg, i);
      hi_idx[i] = cg_i32(cg, i + w);
    }
    LLVMValueRef lo = LLVMBuildShuffleVector(cg->b, acc, LLVMGetUndef(LLVMTypeOf(acc)), LLVMConstVector(lo_idx, (unsigned)w), "");
    LLVMValueRef hi = LLVMBuildShuffleVector(cg->b, acc, LLVMGetUndef(LLVMTypeOf(acc)), LLVMConstVector(hi_idx, (unsigned)w), "");
    acc = LLVMBuildFAdd(cg->b, lo, hi, "");
  }
  return LLVMBuildExtractElement(cg->b, acc, cg_i32(cg, 0), "");
}
