/* Elementwise kernels, reductions and optimizer updates. Batched tensors are [F][Bp]: a kernel takes
 * whole features (all Bp lanes) as its work items, so every thread count computes the same values. */


#include "codegen/emit.h"

static LLVMValueRef xmul(snc_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(cg->b, a, b, ""); }
static LLVMValueRef xadd(snc_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(cg->b, a, b, ""); }
static LLVMValueRef xsub(snc_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(cg->b, a, b, ""); }
static LLVMValueRef sel(snc_cg *cg, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSelect(cg->b, c, a, b, ""); }
static LLVMValueRef gt0(snc_cg *cg, LLVMValueRef x) {
  return LLVMBuildFCmp(cg->b, LLVMRealOGT, x, LLVMConstNull(LLVMTypeOf(x)), "");
}
static LLVMValueRef k(snc_cg *cg, LLVMValueRef like, float v) {
  return LLVMGetTypeKind(LLVMTypeOf(like)) == LLVMVectorTypeKind ? cg_vf(cg, v) : cg_f32(cg, v);
}

/* The value of an elementwise op from its inputs' values (scalars or vectors of the same type).
 * f, b0: the feature and first lane, for dropout's element index. Mirrors the reference kernels
 * operation by operation, so results agree to rounding (transcendentals to ~1e-7). */
static LLVMValueRef expr(snc_cg *cg, const snc_node *n, LLVMValueRef *in, LLVMValueRef f, LLVMValueRef b0) {
  LLVMValueRef x = in[0], a = k(cg, x, n->attr.alpha);
  switch (n->op) {
  case SNC_OP_TANH: return cg_vtanh(cg, x);
  case SNC_OP_RELU: return sel(cg, gt0(cg, x), x, k(cg, x, 0));
  case SNC_OP_LEAKY_RELU: return sel(cg, gt0(cg, x), x, xmul(cg, a, x));
  case SNC_OP_ELU: return sel(cg, gt0(cg, x), x, xmul(cg, a, cg_vexpm1(cg, x)));
  case SNC_OP_SIGMOID: return cg_vsigmoid(cg, x);
  case SNC_OP_SCALE: return xmul(cg, a, x);
  case SNC_OP_SQUARE: return xmul(cg, x, x);
  case SNC_OP_ADD: {
    LLVMValueRef s = x;
    for (int i = 1; i < n->ninputs; i++) s = xadd(cg, s, in[i]);
    return s;
  }
  case SNC_OP_MUL: return xmul(cg, x, in[1]);
  case SNC_OP_TANH_DX: return xmul(cg, in[1], xsub(cg, k(cg, x, 1), xmul(cg, x, x)));
  case SNC_OP_SIGMOID_DX: return xmul(cg, xmul(cg, in[1], x), xsub(cg, k(cg, x, 1), x));
  case SNC_OP_RELU_DX: return sel(cg, gt0(cg, x), in[1], k(cg, x, 0));
  case SNC_OP_LEAKY_RELU_DX: return sel(cg, gt0(cg, x), in[1], xmul(cg, a, in[1]));
  case SNC_OP_ELU_DX: return sel(cg, gt0(cg, x), in[1], xmul(cg, xmul(cg, in[1], a), cg_vexp(cg, x)));
  case SNC_OP_SQUARE_DX: return xmul(cg, xadd(cg, x, x), in[1]);
  case SNC_OP_DROPOUT:
  case SNC_OP_DROPOUT_DX: {
    if (n->op == SNC_OP_DROPOUT && !cg->training) return x;
    float p = n->attr.p, s = 1.0f / (1.0f - p);
    int64_t F = cg_per_sample(cg->g, n->id);
    /* element (row0 + row) * F + f: a batch split over ranks draws the undivided batch's masks */
    LLVMValueRef row = cg_add(cg, b0, cg_arg(cg, SNC_ARG_ROW0));
    LLVMValueRef base = cg_add(cg, cg_mul(cg, row, cg_i64(cg, F)), f);
    LLVMValueRef keep = cg_vdropout_keep(cg, cg_arg(cg, SNC_ARG_SEED), cg_arg(cg, SNC_ARG_STEP), cg_data_of(cg, n->id, CG_DATA_STREAM), base, F, p);
    return sel(cg, keep, xmul(cg, x, cg_vf(cg, s)), cg_vf(cg, 0));
  }
  default: SNC_ASSERT(!"not elementwise"); return NULL;
  }
}

LLVMValueRef cg_operand(snc_cg *cg, int node, LLVMValueRef f, LLVMValueRef b0) {
  if (cg->subst_val && node == cg->subst_node) return cg->subst_val;
  LLVMValueRef base = cg_node_ptr(cg, node);
  if (!(cg->g->nodes[node]->flags & SNC_NF_BATCHED)) /* broadcast over the batch: one value per feature */
    return cg_splat(cg, cg_load(cg, cg_gep(cg, base, f)));
  return cg_vload(cg, cg_gep(cg, base, cg_add(cg, cg_mul(cg, f, cg_i64(cg, cg->lay->bp)), b0)), 64);
}

int cg_compact(const snc_cg *cg, int node) { return cg->lay->compact && cg->lay->compact[node]; }

LLVMValueRef cg_compact_load(snc_cg *cg, int node, LLVMValueRef at, LLVMValueRef *pooled) {
  *pooled = cg_vload(cg, cg_gep(cg, cg_node_ptr(cg, snc_fuse_root(cg->into, node)), at), 64);
  LLVMValueRef idx = LLVMBuildLoad2(cg->b, LLVMVectorType(cg->i8, SNC_VW), LLVMBuildInBoundsGEP2(cg->b, cg->i8, cg_node_ptr(cg, node), &at, 1, ""), "argmax");
  LLVMSetAlignment(idx, 16);
  return idx;
}

void cg_compact_store(snc_cg *cg, LLVMValueRef base, LLVMValueRef at, LLVMValueRef idx) {
  LLVMValueRef st = LLVMBuildStore(cg->b, idx, LLVMBuildInBoundsGEP2(cg->b, cg->i8, base, &at, 1, ""));
  LLVMSetAlignment(st, 16);
}

int cg_out_node(snc_cg *cg, int head) { return cg->nepi ? cg->epi[cg->nepi - 1] : head; }

LLVMValueRef cg_epilogue(snc_cg *cg, int head, LLVMValueRef v, LLVMValueRef f, LLVMValueRef b0) {
  return cg_epilogue_from(cg, 0, head, v, f, b0);
}

LLVMValueRef cg_epilogue_from(snc_cg *cg, int k0, int head, LLVMValueRef v, LLVMValueRef f, LLVMValueRef b0) {
  int prev = head;
  for (int k = k0; k < cg->nepi; k++) {
    const snc_node *e = cg->g->nodes[cg->epi[k]];
    LLVMValueRef in[16];
    for (int j = 0; j < e->ninputs; j++) in[j] = e->inputs[j] == prev ? v : cg_operand(cg, e->inputs[j], f, b0);
    v = expr(cg, e, in, f, b0);
    prev = e->id;
  }
  return v;
}

void cg_epilogue_n(snc_cg *cg, int head, LLVMValueRef *v, const LLVMValueRef *f, const LLVMValueRef *b0, int n) {
  cg_epilogue_n_from(cg, 0, head, v, f, b0, n);
}

void cg_epilogue_n_from(snc_cg *cg, int k0, int head, LLVMValueRef *v, const LLVMValueRef *f, const LLVMValueRef *b0, int n) {
  int prev = head;
  for (int k = k0; k < cg->nepi; k++) { /* node by node over the n values: n independent chains side by side */
    const snc_node *e = cg->g->nodes[cg->epi[k]];
    for (int u = 0; u < n; u++) {
      LLVMValueRef in[16];
      for (int j = 0; j < e->ninputs; j++) in[j] = e->inputs[j] == prev ? v[u] : cg_operand(cg, e->inputs[j], f[u], b0[u]);
      v[u] = expr(cg, e, in, f[u], b0[u]);
    }
    prev = e->id;
  }
}

int snc_cg_emit_elementwise(snc_cg *cg, const snc_node *n, LLVMValueRef *ks) {
  const snc_graph *g = cg->g;
  char name[96];
  snprintf(name, sizeof name, "%s.%s", snc_op_name(n->op), n->name);
  ks[0] = cg_kernel_begin(cg, name);
  LLVMValueRef out = cg_node_ptr(cg, cg_out_node(cg, n->id)), ins[16];
  int64_t F = cg_per_sample(g, n->id);
  if (n->flags & SNC_NF_BATCHED) {
    int64_t bp = cg->lay->bp;
    LLVMValueRef lo, hi;
    cg_partition(cg, F, &lo, &hi);
    snc_cg_loop lf, lb;
    cg_loop_begin(cg, &lf, lo, hi, 1, "f");
    cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, bp), SNC_VW, "b");
    LLVMValueRef idx = cg_add(cg, cg_mul(cg, lf.iv, cg_i64(cg, bp)), lb.iv), v[16];
    for (int i = 0; i < n->ninputs; i++) v[i] = cg_operand(cg, n->inputs[i], lf.iv, lb.iv); /* mul may broadcast */
    LLVMValueRef r = cg_epilogue(cg, n->id, expr(cg, n, v, lf.iv, lb.iv), lf.iv, lb.iv);
    cg_vstore(cg, r, cg_gep(cg, out, idx), 64);
    cg_loop_end(cg, &lb);
    cg_loop_end(cg, &lf);
  } else if (n->op == SNC_OP_ADD) { /* sums of gradients without a batch (shared weights): vectors
                                        split among threads, the size per call (one kernel for all) */
    SNC_ASSERT(!cg->nepi && F < INT32_MAX);
    for (int i = 0; i < n->ninputs; i++) ins[i] = cg_node_ptr(cg, n->inputs[i]);
    LLVMValueRef ev = cg_data_of(cg, n->id, CG_DATA_PER_SAMPLE), lo, hi;
    LLVMValueRef nv = LLVMBuildSDiv(cg->b, LLVMBuildAdd(cg->b, ev, cg_i64(cg, SNC_VW - 1), ""), cg_i64(cg, SNC_VW), "nv");
    cg_partition_v(cg, nv, &lo, &hi);
    snc_cg_loop l;
    cg_loop_begin(cg, &l, lo, hi, 1, "v");
    LLVMValueRef e0 = cg_mul(cg, l.iv, cg_i64(cg, SNC_VW)), v[16];
    for (int i = 0; i < n->ninputs; i++) v[i] = cg_vload(cg, cg_gep(cg, ins[i], e0), 64); /* padded to 64 bytes */
    LLVMValueRef args[4] = {expr(cg, n, v, NULL, NULL), cg_gep(cg, out, e0), cg_i32(cg, 64), cg_tail_mask(cg, e0, ev)};
    LLVMTypeRef ov[2] = {cg->vf, cg->ptr};
    unsigned id = LLVMLookupIntrinsicID("llvm.masked.store", 17);
    LLVMBuildCall2(cg->b, LLVMIntrinsicGetType(cg->ctx, id, ov, 2), LLVMGetIntrinsicDeclaration(cg->mod, id, ov, 2), args, 4, "");
    cg_loop_end(cg, &l);
  } else { /* small tensors without a batch (loss terms, parameters): scalar code on thread 0 */
    SNC_ASSERT((n->op == SNC_OP_MUL || n->op == SNC_OP_SCALE) && !cg->nepi);
    for (int i = 0; i < n->ninputs; i++) ins[i] = cg_node_ptr(cg, n->inputs[i]);
    LLVMBasicBlockRef after = cg_if_begin(cg, LLVMBuildICmp(cg->b, LLVMIntEQ, cg->tid, cg_i64(cg, 0), ""), "t0");
    snc_cg_loop l;
    cg_loop_begin(cg, &l, cg_i64(cg, 0), cg_i64(cg, F), 1, "e");
    LLVMValueRef v[16];
    for (int i = 0; i < n->ninputs; i++) v[i] = cg_load(cg, cg_gep(cg, ins[i], l.iv));
    cg_store(cg, expr(cg, n, v, NULL, NULL), cg_gep(cg, out, l.iv));
    cg_loop_end(cg, &l);
    cg_if_end(cg, after);
  }
  cg_kernel_end(cg);
  return 1;
}

/* va += the lanes below nb of the row of Bp elements starting at element `start` of `in` */
static void add_row_lanes(snc_cg *cg, LLVMValueRef va, LLVMValueRef in, LLVMValueRef start) {
  snc_cg_loop lb;
  cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, cg->lay->bp), SNC_VW, "b");
  LLVMValueRef v = cg_vload(cg, cg_gep(cg, in, cg_add(cg, start, lb.iv)), 64);
  v = sel(cg, cg_lane_mask(cg, lb.iv), v, cg_vf(cg, 0));
  cg_vstore(cg, xadd(cg, cg_vload(cg, va, 64), v), va, 64);
  cg_loop_end(cg, &lb);
}

/* sum(x) -> []; sum_dx(dy) -> attr.to (zero in the padding lanes); bias_grad(dy) -> [C];
 * reduce_sum, reduce_sum_dx (feature axes, every lane); batch_sum (lanes below nb) */
int snc_cg_emit_reduce(snc_cg *cg, const snc_node *n, LLVMValueRef *ks) {
  const snc_graph *g = cg->g;
  int64_t bp = cg->lay->bp;
  char name[96];
  snprintf(name, sizeof name, "%s.%s", snc_op_name(n->op), n->name);
  ks[0] = cg_kernel_begin(cg, name);
  LLVMValueRef out = cg_node_ptr(cg, n->id), in = cg_node_ptr(cg, n->inputs[0]);
  const snc_node *x = g->nodes[n->inputs[0]];
  if (n->op == SNC_OP_REDUCE_SUM || n->op == SNC_OP_REDUCE_SUM_DX) {
    /* the big tensor as rows [O][R][I], the small one as [O][I]; items are rows of the output */
    const snc_node *big = n->op == SNC_OP_REDUCE_SUM ? x : n;
    int64_t O = 1, R = 1, I = 1;
    for (int d = 1; d < big->shape.rank; d++) {
      int64_t v = big->shape.dim[d];
      if (d < n->attr.axis) O *= v;
      else if (d < n->attr.axis + n->attr.len) R *= v;
      else I *= v;
    }
    int dx = n->op == SNC_OP_REDUCE_SUM_DX;
    LLVMValueRef lo, hi;
    cg_partition(cg, dx ? O * R * I : O * I, &lo, &hi);
    snc_cg_loop lr, lk, lb;
    cg_loop_begin(cg, &lr, lo, hi, 1, "row");
    if (dx) { /* dx row (o, k, i) = dy row (o, i) */
      LLVMValueRef o = LLVMBuildSDiv(cg->b, lr.iv, cg_i64(cg, R * I), ""), i = LLVMBuildSRem(cg->b, lr.iv, cg_i64(cg, I), "");
      LLVMValueRef src = cg_mul(cg, cg_add(cg, cg_mul(cg, o, cg_i64(cg, I)), i), cg_i64(cg, bp));
      LLVMValueRef dst = cg_mul(cg, lr.iv, cg_i64(cg, bp));
      cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, bp), SNC_VW, "b");
      cg_vstore(cg, cg_vload(cg, cg_gep(cg, in, cg_add(cg, src, lb.iv)), 64), cg_gep(cg, out, cg_add(cg, dst, lb.iv)), 64);
      cg_loop_end(cg, &lb);
    } else { /* out row (o, i) = sum over k of x row (o, k, i), k in order, per lane */
      LLVMValueRef o = LLVMBuildSDiv(cg->b, lr.iv, cg_i64(cg, I), ""), i = LLVMBuildSRem(cg->b, lr.iv, cg_i64(cg, I), "");
      LLVMValueRef first = cg_add(cg, cg_mul(cg, o, cg_i64(cg, R * I)), i);
      LLVMValueRef va = cg_alloca(cg, cg->vf, "va");
      cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, bp), SNC_VW, "b");
      cg_vstore(cg, cg_vf(cg, 0), va, 64);
      cg_loop_begin(cg, &lk, cg_i64(cg, 0), cg_i64(cg, R), 1, "k");
      LLVMValueRef row = cg_add(cg, first, cg_mul(cg, lk.iv, cg_i64(cg, I)));
      LLVMValueRef v = cg_vload(cg, cg_gep(cg, in, cg_add(cg, cg_mul(cg, row, cg_i64(cg, bp)), lb.iv)), 64);
      cg_vstore(cg, xadd(cg, cg_vload(cg, va, 64), v), va, 64);
      cg_loop_end(cg, &lk);
      cg_vstore(cg, cg_vload(cg, va, 64), cg_gep(cg, out, cg_add(cg, cg_mul(cg, lr.iv, cg_i64(cg, bp)), lb.iv)), 64);
      cg_loop_end(cg, &lb);
    }
    cg_loop_end(cg, &lr);
  } else if (n->op == SNC_OP_BATCH_SUM) { /* per feature: the lanes below nb, summed */
    LLVMValueRef lo, hi;
    cg_partition(cg, cg_per_sample(g, x->id), &lo, &hi);
    snc_cg_loop lf;
    cg_loop_begin(cg, &lf, lo, hi, 1, "f");
    LLVMValueRef va = cg_alloca(cg, cg->vf, "va");
    cg_vstore(cg, cg_vf(cg, 0), va, 64);
    add_row_lanes(cg, va, in, cg_mul(cg, lf.iv, cg_i64(cg, bp)));
    cg_store(cg, cg_hsum(cg, cg_vload(cg, va, 64)), cg_gep(cg, out, lf.iv));
    cg_loop_end(cg, &lf);
  } else if (n->op == SNC_OP_SUM_DX) {
    LLVMValueRef d = cg_load(cg, in);
    int64_t F = cg_per_sample(g, n->id);
    LLVMValueRef lo, hi;
    cg_partition(cg, F, &lo, &hi);
    snc_cg_loop lf, lb;
    cg_loop_begin(cg, &lf, lo, hi, 1, "f");
    if (n->flags & SNC_NF_BATCHED) {
      cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, bp), SNC_VW, "b");
      LLVMValueRef v = sel(cg, cg_lane_mask(cg, lb.iv), cg_splat(cg, d), cg_vf(cg, 0));
      cg_vstore(cg, v, cg_gep(cg, out, cg_add(cg, cg_mul(cg, lf.iv, cg_i64(cg, bp)), lb.iv)), 64);
      cg_loop_end(cg, &lb);
    } else {
      cg_store(cg, d, cg_gep(cg, out, lf.iv));
    }
    cg_loop_end(cg, &lf);
  } else if (n->op == SNC_OP_SUM) {
    LLVMBasicBlockRef after = cg_if_begin(cg, LLVMBuildICmp(cg->b, LLVMIntEQ, cg->tid, cg_i64(cg, 0), ""), "t0");
    int64_t F = cg_per_sample(g, x->id);
    LLVMValueRef acc = cg_alloca(cg, cg->f64, "acc");
    cg_store(cg, LLVMConstReal(cg->f64, 0), acc);
    snc_cg_loop lf;
    cg_loop_begin(cg, &lf, cg_i64(cg, 0), cg_i64(cg, F), 1, "f");
    if (x->flags & SNC_NF_BATCHED) {
      LLVMValueRef va = cg_alloca(cg, cg->vf, "va");
      cg_vstore(cg, cg_vf(cg, 0), va, 64);
      add_row_lanes(cg, va, in, cg_mul(cg, lf.iv, cg_i64(cg, bp)));
      LLVMValueRef s = LLVMBuildFPExt(cg->b, cg_hsum(cg, cg_vload(cg, va, 64)), cg->f64, "");
      LLVMBuildStore(cg->b, LLVMBuildFAdd(cg->b, LLVMBuildLoad2(cg->b, cg->f64, acc, ""), s, ""), acc);
    } else {
      LLVMValueRef s = LLVMBuildFPExt(cg->b, cg_load(cg, cg_gep(cg, in, lf.iv)), cg->f64, "");
      LLVMBuildStore(cg->b, LLVMBuildFAdd(cg->b, LLVMBuildLoad2(cg->b, cg->f64, acc, ""), s, ""), acc);
    }
    cg_loop_end(cg, &lf);
    cg_store(cg, LLVMBuildFPTrunc(cg->b, LLVMBuildLoad2(cg->b, cg->f64, acc, ""), cg->f32, ""), out);
    cg_if_end(cg, after);
  } else { /* bias_grad over every dim but 1; the sizes per call (one kernel for every shape) */
    LLVMValueRef C = cg_data_fresh_of(cg, x->id, CG_DATA_DIM1), inner = cg_data_fresh_of(cg, x->id, CG_DATA_INNER);
    LLVMValueRef lo, hi;
    cg_partition_v(cg, C, &lo, &hi);
    snc_cg_loop lc, li;
    /* one accumulator per vector of the batch (up to 8): independent chains of adds instead of one
       long chain; summed in a fixed order at the end */
    int nv = (int)(bp / SNC_VW), na = nv < 8 ? nv : 8;
    LLVMValueRef va[8] = {0};
    for (int a = 0; a < na; a++) va[a] = cg_alloca(cg, cg->vf, "va");
    cg_loop_begin(cg, &lc, lo, hi, 1, "c");
    for (int a = 0; a < na; a++) cg_vstore(cg, cg_vf(cg, 0), va[a], 64);
    cg_loop_begin(cg, &li, cg_i64(cg, 0), inner, 1, "i");
    LLVMValueRef row = cg_mul(cg, cg_add(cg, cg_mul(cg, lc.iv, inner), li.iv), cg_i64(cg, bp));
    for (int v = 0; v < nv; v++) {
      LLVMValueRef b0 = cg_i64(cg, v * SNC_VW), x = cg_vload(cg, cg_gep(cg, in, cg_add(cg, row, b0)), 64);
      x = sel(cg, cg_lane_mask(cg, b0), x, cg_vf(cg, 0));
      cg_vstore(cg, xadd(cg, cg_vload(cg, va[v % na], 64), x), va[v % na], 64);
    }
    cg_loop_end(cg, &li);
    LLVMValueRef t = cg_vload(cg, va[0], 64);
    for (int a = 1; a < na; a++) t = xadd(cg, t, cg_vload(cg, va[a], 64));
    cg_store(cg, cg_hsum(cg, t), cg_gep(cg, out, lc.iv));
    cg_loop_end(cg, &lc);
  }
  cg_kernel_end(cg);
  return 1;
}

/* beta^step in double by binary exponentiation (step is a run-time value) */
static LLVMValueRef powi(snc_cg *cg, double beta, LLVMValueRef step) {
  LLVMValueRef r = cg_alloca(cg, cg->f64, "r"), base = cg_alloca(cg, cg->f64, "base");
  LLVMValueRef e = cg_alloca(cg, cg->i64, "e");
  LLVMBuildStore(cg->b, LLVMConstReal(cg->f64, 1), r);
  LLVMBuildStore(cg->b, LLVMConstReal(cg->f64, beta), base);
  LLVMBuildStore(cg->b, step, e);
  snc_cg_loop l;
  cg_loop_begin(cg, &l, cg_i64(cg, 0), cg_i64(cg, 64), 1, "bit");
  LLVMValueRef ev = LLVMBuildLoad2(cg->b, cg->i64, e, ""), bv = LLVMBuildLoad2(cg->b, cg->f64, base, "");
  LLVMValueRef odd = LLVMBuildTrunc(cg->b, ev, cg->i1, "");
  LLVMValueRef rv = LLVMBuildLoad2(cg->b, cg->f64, r, "");
  LLVMBuildStore(cg->b, LLVMBuildSelect(cg->b, odd, LLVMBuildFMul(cg->b, rv, bv, ""), rv, ""), r);
  LLVMBuildStore(cg->b, LLVMBuildFMul(cg->b, bv, bv, ""), base);
  LLVMBuildStore(cg->b, LLVMBuildLShr(cg->b, ev, cg_i64(cg, 1), ""), e);
  cg_loop_end(cg, &l);
  return LLVMBuildLoad2(cg->b, cg->f64, r, "");
}

int snc_cg_emit_update(snc_cg *cg, const snc_node *n, LLVMValueRef *ks) {
  const snc_graph *g = cg->g;
  const snc_attrs *a = &n->attr;
  char name[96];
  snprintf(name, sizeof name, "%s.%s", snc_op_name(n->op), n->name);
  ks[0] = cg_kernel_begin(cg, name);
  int64_t E = snc_shape_numel(&g->nodes[n->inputs[0]]->shape);
  LLVMValueRef p = cg_node_ptr(cg, n->inputs[0]), gr = cg_node_ptr(cg, n->inputs[1]), s1 = cg_node_ptr(cg, n->inputs[2]);
  LLVMValueRef lr = xmul(cg, cg_f32(cg, a->lr), cg_arg(cg, SNC_ARG_LR_SCALE));
  LLVMValueRef lo, hi, c1 = NULL, sq2 = NULL, s2 = NULL;
  if (n->op == SNC_OP_ADAM) {
    LLVMValueRef step = cg_arg(cg, SNC_ARG_STEP);
    LLVMValueRef bc1 = LLVMBuildFSub(cg->b, LLVMConstReal(cg->f64, 1), powi(cg, a->beta1, step), "");
    LLVMValueRef bc2 = LLVMBuildFSub(cg->b, LLVMConstReal(cg->f64, 1), powi(cg, a->beta2, step), "");
    c1 = LLVMBuildFDiv(cg->b, lr, LLVMBuildFPTrunc(cg->b, bc1, cg->f32, ""), "");
    LLVMValueRef sq = cg_call_intrinsic(cg, "llvm.sqrt", cg->f64, &bc2, 1);
    sq2 = LLVMBuildFPTrunc(cg->b, sq, cg->f32, "");
    s2 = cg_node_ptr(cg, n->inputs[3]);
  }
  /* 16 parameters per vector; buffers are padded to 64 bytes, and lanes past the end keep their
     old bits (a select before every store). The size is per call (a slot), so one kernel serves
     every parameter with the same hyperparameters. */
  SNC_ASSERT(E < INT32_MAX);
  LLVMValueRef ev = cg_data_of(cg, n->inputs[0], CG_DATA_NUMEL);
  LLVMValueRef nv = LLVMBuildSDiv(cg->b, LLVMBuildAdd(cg->b, ev, cg_i64(cg, SNC_VW - 1), ""), cg_i64(cg, SNC_VW), "nv");
  cg_partition_v(cg, nv, &lo, &hi);
  snc_cg_loop l;
  cg_loop_begin(cg, &l, lo, hi, 1, "v");
  LLVMValueRef e0 = cg_mul(cg, l.iv, cg_i64(cg, SNC_VW));
  LLVMValueRef live = cg_tail_mask(cg, e0, ev);
#define KEEP(newv, oldv) LLVMBuildSelect(cg->b, live, newv, oldv, "")
  LLVMValueRef pp = cg_gep(cg, p, e0), pv = cg_vload(cg, pp, 64);
  LLVMValueRef gi = xadd(cg, cg_vload(cg, cg_gep(cg, gr, e0), 64), xmul(cg, cg_vf(cg, a->weight_decay), pv));
  LLVMValueRef one = cg_vf(cg, 1);
  if (n->op == SNC_OP_ADAM) {
    LLVMValueRef mp = cg_gep(cg, s1, e0), vp = cg_gep(cg, s2, e0), mo = cg_vload(cg, mp, 64), vo = cg_vload(cg, vp, 64);
    LLVMValueRef m = xadd(cg, xmul(cg, cg_vf(cg, a->beta1), mo), xmul(cg, xsub(cg, one, cg_vf(cg, a->beta1)), gi));
    LLVMValueRef v = xadd(cg, xmul(cg, cg_vf(cg, a->beta2), vo), xmul(cg, xmul(cg, xsub(cg, one, cg_vf(cg, a->beta2)), gi), gi));
    cg_vstore(cg, KEEP(m, mo), mp, 64);
    cg_vstore(cg, KEEP(v, vo), vp, 64);
    LLVMValueRef sv = cg_call_intrinsic(cg, "llvm.sqrt", cg->vf, &v, 1);
    LLVMValueRef denom = xadd(cg, LLVMBuildFDiv(cg->b, sv, cg_splat(cg, sq2), ""), cg_vf(cg, a->eps));
    cg_vstore(cg, KEEP(xsub(cg, pv, LLVMBuildFDiv(cg->b, xmul(cg, cg_splat(cg, c1), m), denom, "")), pv), pp, 64);
  } else {
    if (a->momentum > 0) {
      LLVMValueRef bp = cg_gep(cg, s1, e0), bo = cg_vload(cg, bp, 64);
      LLVMValueRef buf = xadd(cg, xmul(cg, cg_vf(cg, a->momentum), bo), gi);
      cg_vstore(cg, KEEP(buf, bo), bp, 64);
      gi = a->nesterov ? xadd(cg, gi, xmul(cg, cg_vf(cg, a->momentum), buf)) : buf;
    }
    cg_vstore(cg, KEEP(xsub(cg, pv, xmul(cg, cg_splat(cg, lr), gi)), pv), pp, 64);
  }
#undef KEEP
  cg_loop_end(cg, &l);
  cg_kernel_end(cg);
  return 1;
}
