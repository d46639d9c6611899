/* Weight gradients of convolutions and matrix products as blocked dot products over (oy, ox, batch):
 *   dw[o][c][ky][kx] = sum_{oy,ox,b} dy[o][oy][ox][b] * x[c][oy*s+ky-p][ox*s+kx-p][b]
 * one vector accumulator per weight of a block of RO output channels x RC input channels (every tap),
 * summed over (oy, ox, batch vector) in that order and then across lanes (cg_hsum_many): the bits
 * do not depend on the block (the schedule) or the thread count. */
#include "codegen/emit.h"

/* --- dw: blocked dot products over (oy, ox, batch) ------------------------------------------------ */

typedef struct dwspec {
  conv_dims d;
  int RO, RC, bp;
  LLVMValueRef x, dy, out;
  /* prologue (fuse.c, dw_takes): dy is not in memory but computed from the chain cg->epi, headed
     by a tiling max pooling's gradient (pool) of y given the pooled gradient gp; db, when not NULL,
     is the bias gradient the kernel also stores, summed as the bias_grad kernel sums (dba: its
     per-vector accumulators, na of them, for each of RO channels). A window's dy is computed once,
     at its top-left element, into scratch rows that the window's later elements read. */
  const snc_node *pool;
  LLVMValueRef y, gp, db, dba[8], scratch;
  int na;
  int compact; /* y holds the compact form (snc_fuse_compact): each window's argmax */
} dwspec;

/* The prologue's dy for one window of channel o (its top-left element at row oy, column ox),
   lanes b.., into the block's scratch rows: the operations of the pooling gradient kernel's tiled
   path (codegen/emit_pool.c): the maximum folded in window order, the pooled gradient to the first
   element equal to it, then the rest of the chain on each element. Same values, same bits. */
static void dy_window(snc_cg *cg, const dwspec *S, int r, LLVMValueRef o, LLVMValueRef oy, LLVMValueRef ox, LLVMValueRef b) {
  const conv_dims *d = &S->d;
  int k0 = S->pool->attr.kernel[0], k1 = S->pool->attr.kernel[1];
  int64_t PW = d->OW / k1, nvb = S->bp / SNC_VW;
  LLVMValueRef plane = cg_mul(cg, o, cg_i64(cg, d->OH * d->OW)), v[16], m = NULL, f[16], idx = NULL;
  LLVMValueRef pf = cg_add(cg, cg_mul(cg, o, cg_i64(cg, (d->OH / k0) * PW)),
                           cg_add(cg, cg_mul(cg, LLVMBuildUDiv(cg->b, oy, cg_i64(cg, k0), ""), cg_i64(cg, PW)), LLVMBuildUDiv(cg->b, ox, cg_i64(cg, k1), "")));
  LLVMValueRef pi = cg_add(cg, cg_mul(cg, pf, cg_i64(cg, S->bp)), b);
  for (int wy = 0, e = 0; wy < k0; wy++)
    for (int wx = 0; wx < k1; wx++, e++) {
      f[e] = cg_add(cg, plane, cg_add(cg, cg_mul(cg, cg_add(cg, oy, cg_i64(cg, wy)), cg_i64(cg, d->OW)), cg_add(cg, ox, cg_i64(cg, wx))));
      if (S->compact) continue;
      v[e] = cg_vload(cg, cg_gep(cg, S->y, cg_add(cg, cg_mul(cg, f[e], cg_i64(cg, S->bp)), b)), 64);
      m = e ? cg_fmax(cg, m, v[e]) : v[e];
    }
  if (S->compact) { /* y compact (snc_fuse_compact): the argmax's position, per lane; its value the pooled y */
    idx = cg_compact_load(cg, S->pool->inputs[0], pi, &m);
    cg->subst_node = S->pool->inputs[0], cg->subst_val = m;
  }
  LLVMValueRef gv = cg_vload(cg, cg_gep(cg, S->gp, pi), 64);
  LLVMValueRef taken = LLVMConstNull(cg->vi1), bv = LLVMBuildUDiv(cg->b, b, cg_i64(cg, SNC_VW), "");
  for (int wy = 0, e = 0; wy < k0; wy++)
    for (int wx = 0; wx < k1; wx++, e++) {
      LLVMValueRef eq = S->compact ? LLVMBuildICmp(cg->b, LLVMIntEQ, idx, cg_splat(cg, LLVMConstInt(cg->i8, (unsigned)e, 0)), "")
                                   : LLVMBuildAnd(cg->b, LLVMBuildFCmp(cg->b, LLVMRealOEQ, v[e], m, ""), LLVMBuildNot(cg->b, taken, ""), "");
      LLVMValueRef g = cg_epilogue_from(cg, 1, S->pool->id, LLVMBuildSelect(cg->b, eq, gv, cg_vf(cg, 0), ""), f[e], b);
      taken = LLVMBuildOr(cg->b, taken, eq, "");
      LLVMValueRef si = cg_add(cg, cg_mul(cg, cg_add(cg, cg_i64(cg, (int64_t)(r * k0 + wy) * d->OW + wx), ox), cg_i64(cg, nvb)), bv);
      cg_vstore(cg, g, LLVMBuildInBoundsGEP2(cg->b, cg->vf, S->scratch, &si, 1, ""), 64);
    }
  cg->subst_val = NULL;
}

/* the stack scratch of a prologue block: k0 rows of dy, every lane, per block channel */
static int64_t scratch_bytes(const conv_dims *d, int k0, int ro, int bp) { return (int64_t)ro * k0 * d->OW * bp * 4; }
#define DW_SCRATCH_MAX (96 << 10) /* on the stack of an OpenMP thread */

/* the bias gradient's accumulator a of block channel r */
static LLVMValueRef dba_at(snc_cg *cg, const dwspec *S, int r, LLVMValueRef a) {
  return LLVMBuildInBoundsGEP2(cg->b, cg->vf, S->dba[r], &a, 1, "");
}

static void dw_block(snc_cg *cg, const dwspec *S, int ro, int rc, LLVMValueRef o0, LLVMValueRef c0, LLVMValueRef *acc) {
  const conv_dims *d = &S->d;
  int kk = d->kh * d->kw;
  for (int i = 0; i < ro * rc * kk; i++) cg_vstore(cg, cg_vf(cg, 0), acc[i], 64);
  if (S->db)
    for (int r = 0; r < ro; r++)
      for (int a = 0; a < S->na; a++) cg_vstore(cg, cg_vf(cg, 0), dba_at(cg, S, r, cg_i64(cg, a)), 64);
  snc_cg_loop ly, lx, lb;
  cg_loop_begin(cg, &ly, cg_i64(cg, 0), cg_i64(cg, d->OH), 1, "oy");
  cg_loop_begin(cg, &lx, cg_i64(cg, 0), cg_i64(cg, d->OW), 1, "ox");
  cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, S->bp), SNC_VW, "b");
  int64_t oplane = d->OH * d->OW * S->bp, iplane = d->H * d->W * S->bp;
  LLVMValueRef opos = cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, ly.iv, cg_i64(cg, d->OW)), lx.iv), cg_i64(cg, S->bp)), lb.iv);
  LLVMValueRef dyv[8];
  if (S->pool) { /* a window's first element: its whole window's dy into the scratch rows */
    int k0 = S->pool->attr.kernel[0], k1 = S->pool->attr.kernel[1];
    LLVMValueRef top = LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntEQ, LLVMBuildURem(cg->b, ly.iv, cg_i64(cg, k0), ""), cg_i64(cg, 0), ""),
                                    LLVMBuildICmp(cg->b, LLVMIntEQ, LLVMBuildURem(cg->b, lx.iv, cg_i64(cg, k1), ""), cg_i64(cg, 0), ""), "");
    LLVMBasicBlockRef after = cg_if_begin(cg, top, "window");
    for (int r = 0; r < ro; r++) dy_window(cg, S, r, cg_add(cg, o0, cg_i64(cg, r)), ly.iv, lx.iv, lb.iv);
    cg_if_end(cg, after);
  }
  for (int r = 0; r < ro; r++) {
    if (!S->pool) {
      dyv[r] = cg_vload(cg, cg_gep(cg, S->dy, cg_add(cg, cg_mul(cg, cg_add(cg, o0, cg_i64(cg, r)), cg_i64(cg, oplane)), opos)), 64);
      continue;
    }
    int k0 = S->pool->attr.kernel[0];
    LLVMValueRef row = cg_add(cg, cg_i64(cg, (int64_t)r * k0), LLVMBuildURem(cg->b, ly.iv, cg_i64(cg, k0), ""));
    LLVMValueRef si = cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, row, cg_i64(cg, d->OW)), lx.iv), cg_i64(cg, S->bp / SNC_VW)),
                             LLVMBuildUDiv(cg->b, lb.iv, cg_i64(cg, SNC_VW), ""));
    dyv[r] = cg_vload(cg, LLVMBuildInBoundsGEP2(cg->b, cg->vf, S->scratch, &si, 1, ""), 64);
    if (S->db) { /* bias_grad's order: accumulator (b / VW) % na over positions in order, padding masked */
      LLVMValueRef a = dba_at(cg, S, r, LLVMBuildURem(cg->b, LLVMBuildUDiv(cg->b, lb.iv, cg_i64(cg, SNC_VW), ""), cg_i64(cg, S->na), ""));
      LLVMValueRef x = LLVMBuildSelect(cg->b, cg_lane_mask(cg, lb.iv), dyv[r], cg_vf(cg, 0), "");
      cg_vstore(cg, LLVMBuildFAdd(cg->b, cg_vload(cg, a, 64), x, ""), a, 64);
    }
  }
  for (int ky = 0; ky < d->kh; ky++) {
    LLVMValueRef iy = cg_add(cg, cg_mul(cg, ly.iv, cg_i64(cg, d->s[0])), cg_i64(cg, ky - d->p[0]));
    LLVMBasicBlockRef ay = NULL;
    if (d->p[0]) {
      LLVMValueRef ok = LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGE, iy, cg_i64(cg, 0), ""),
                                     LLVMBuildICmp(cg->b, LLVMIntSLT, iy, cg_i64(cg, d->H), ""), "");
      ay = cg_if_begin(cg, ok, "iy");
    }
    for (int kx = 0; kx < d->kw; kx++) {
      LLVMValueRef ix = cg_add(cg, cg_mul(cg, lx.iv, cg_i64(cg, d->s[1])), cg_i64(cg, kx - d->p[1]));
      LLVMBasicBlockRef ax = NULL;
      if (d->p[1]) {
        LLVMValueRef ok = LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGE, ix, cg_i64(cg, 0), ""),
                                       LLVMBuildICmp(cg->b, LLVMIntSLT, ix, cg_i64(cg, d->W), ""), "");
        ax = cg_if_begin(cg, ok, "ix");
      }
      LLVMValueRef ipos = cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, iy, cg_i64(cg, d->W)), ix), cg_i64(cg, S->bp)), lb.iv);
      for (int c = 0; c < rc; c++) {
        LLVMValueRef xv = cg_vload(cg, cg_gep(cg, S->x, cg_add(cg, cg_mul(cg, cg_add(cg, c0, cg_i64(cg, c)), cg_i64(cg, iplane)), ipos)), 64);
        for (int r = 0; r < ro; r++) {
          LLVMValueRef a = acc[(r * rc + c) * kk + ky * d->kw + kx];
          cg_vstore(cg, cg_fma(cg, dyv[r], xv, cg_vload(cg, a, 64)), a, 64);
        }
      }
      if (ax) cg_if_end(cg, ax);
    }
    if (ay) cg_if_end(cg, ay);
  }
  cg_loop_end(cg, &lb);
  cg_loop_end(cg, &lx);
  cg_loop_end(cg, &ly);
  if (S->db)
    for (int r = 0; r < ro; r++) {
      LLVMValueRef t = cg_vload(cg, dba_at(cg, S, r, cg_i64(cg, 0)), 64);
      for (int a = 1; a < S->na; a++) t = LLVMBuildFAdd(cg->b, t, cg_vload(cg, dba_at(cg, S, r, cg_i64(cg, a)), 64), "");
      cg_store(cg, cg_hsum(cg, t), cg_gep(cg, S->db, cg_add(cg, o0, cg_i64(cg, r))));
    }
  LLVMValueRef sums[96], vals[96];
  for (int i = 0; i < ro * rc * kk; i++) vals[i] = cg_vload(cg, acc[i], 64);
  cg_hsum_many(cg, vals, ro * rc * kk, sums);
  for (int r = 0; r < ro; r++)
    for (int c = 0; c < rc; c++)
      for (int k = 0; k < kk; k++) {
        LLVMValueRef idx = cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, cg_add(cg, o0, cg_i64(cg, r)), cg_i64(cg, d->C)), cg_add(cg, c0, cg_i64(cg, c))), cg_i64(cg, kk)),
                                  cg_i64(cg, k));
        cg_store(cg, sums[(r * rc + c) * kk + k], cg_gep(cg, S->out, idx));
      }
}

/* dw of kernels with more taps than a block's accumulators hold (kk > 32): one work item per weight
 * (o, c, tap), the tap's row and column at run time, one vector accumulator summed over the same
 * (oy, ox, batch vector) order as dw_block, so both paths give the same bits */
static void emit_dw_taps(snc_cg *cg, const dwspec *S) {
  const conv_dims *d = &S->d;
  int64_t kk = (int64_t)d->kh * d->kw, oplane = d->OH * d->OW * S->bp, iplane = d->H * d->W * S->bp;
  LLVMValueRef acc = cg_alloca(cg, cg->vf, "acc"), lo, hi;
  cg_partition(cg, d->O * d->C * kk, &lo, &hi);
  snc_cg_loop li, ly, lx, lb;
  cg_loop_begin(cg, &li, lo, hi, 1, "item");
  LLVMValueRef oc = LLVMBuildSDiv(cg->b, li.iv, cg_i64(cg, kk), ""), t = LLVMBuildSRem(cg->b, li.iv, cg_i64(cg, kk), "t");
  LLVMValueRef o = LLVMBuildSDiv(cg->b, oc, cg_i64(cg, d->C), "o"), c = LLVMBuildSRem(cg->b, oc, cg_i64(cg, d->C), "c");
  LLVMValueRef ky = LLVMBuildSDiv(cg->b, t, cg_i64(cg, d->kw), "ky"), kx = LLVMBuildSRem(cg->b, t, cg_i64(cg, d->kw), "kx");
  cg_vstore(cg, cg_vf(cg, 0), acc, 64);
  cg_loop_begin(cg, &ly, cg_i64(cg, 0), cg_i64(cg, d->OH), 1, "oy");
  LLVMValueRef iy = cg_add(cg, cg_add(cg, cg_mul(cg, ly.iv, cg_i64(cg, d->s[0])), ky), cg_i64(cg, -d->p[0]));
  cg_loop_begin(cg, &lx, cg_i64(cg, 0), cg_i64(cg, d->OW), 1, "ox");
  LLVMValueRef ix = cg_add(cg, cg_add(cg, cg_mul(cg, lx.iv, cg_i64(cg, d->s[1])), kx), cg_i64(cg, -d->p[1]));
  LLVMValueRef ok = LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGE, iy, cg_i64(cg, 0), ""),
                                 LLVMBuildICmp(cg->b, LLVMIntSLT, iy, cg_i64(cg, d->H), ""), "");
  ok = LLVMBuildAnd(cg->b, ok, LLVMBuildICmp(cg->b, LLVMIntSGE, ix, cg_i64(cg, 0), ""), "");
  ok = LLVMBuildAnd(cg->b, ok, LLVMBuildICmp(cg->b, LLVMIntSLT, ix, cg_i64(cg, d->W), ""), "");
  LLVMBasicBlockRef after = cg_if_begin(cg, ok, "in");
  LLVMValueRef opos = cg_mul(cg, cg_add(cg, cg_mul(cg, ly.iv, cg_i64(cg, d->OW)), lx.iv), cg_i64(cg, S->bp));
  LLVMValueRef ipos = cg_mul(cg, cg_add(cg, cg_mul(cg, iy, cg_i64(cg, d->W)), ix), cg_i64(cg, S->bp));
  LLVMValueRef ob = cg_add(cg, cg_mul(cg, o, cg_i64(cg, oplane)), opos), ib = cg_add(cg, cg_mul(cg, c, cg_i64(cg, iplane)), ipos);
  cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, S->bp), SNC_VW, "b");
  LLVMValueRef dyv = cg_vload(cg, cg_gep(cg, S->dy, cg_add(cg, ob, lb.iv)), 64);
  LLVMValueRef xv = cg_vload(cg, cg_gep(cg, S->x, cg_add(cg, ib, lb.iv)), 64);
  cg_vstore(cg, cg_fma(cg, dyv, xv, cg_vload(cg, acc, 64)), acc, 64);
  cg_loop_end(cg, &lb);
  cg_if_end(cg, after);
  cg_loop_end(cg, &lx);
  cg_loop_end(cg, &ly);
  cg_store(cg, cg_hsum(cg, cg_vload(cg, acc, 64)), cg_gep(cg, S->out, li.iv)); /* out[(o C + c) kk + t] */
  cg_loop_end(cg, &li);
}

int snc_cg_dw_prologue_fits(const snc_graph *g, const snc_node *dw, const snc_node *pool_dx) {
  if (dw->op != SNC_OP_CONV2D_DW || pool_dx->op != SNC_OP_MAXPOOL2D_DX) return 0;
  conv_dims d = cg_conv_dims(g, dw);
  int bp = (int)((g->batch + SNC_VW - 1) / SNC_VW * SNC_VW);
  return d.C * d.kh * d.kw <= 27 && scratch_bytes(&d, pool_dx->attr.kernel[0], 1, bp) <= DW_SCRATCH_MAX;
}

int64_t cg_dw_scratch(const snc_graph *g, const int *into, int node, int direct_conv) {
  const snc_node *n = g->nodes[node];
  if (direct_conv || n->op != SNC_OP_CONV2D_DW || into[node] != node) return 0;
  for (int m = 0; m < g->nnodes; m++) /* a prologue or a side output: the direct kernel */
    if (m != node && snc_fuse_root(into, m) == node) return 0;
  conv_dims d = cg_conv_dims(g, n);
  return cg_wino_dw_scratch(&d, snc_cg_batch_lanes(g->batch));
}

void cg_emit_dw(snc_cg *cg, const snc_node *n) {
  const snc_graph *g = cg->g;
  if (cg->lay->scratch_bytes[n->id]) {
    cg_wino_dw_emit(cg, n);
    return;
  }
  dwspec S = {.d = cg_conv_dims(g, n), .bp = cg->lay->bp};
  int kk = S.d.kh * S.d.kw;
  int lin = n->op == SNC_OP_LINEAR_DW;
  S.x = cg_node_ptr(cg, n->inputs[lin ? 1 : 0]);
  S.out = cg_node_ptr(cg, n->id);
  if (cg->nepi) { /* the prologue: dy from its chain, and the bias gradient alongside */
    SNC_ASSERT(!lin && cg->g->nodes[cg->epi[0]]->op == SNC_OP_MAXPOOL2D_DX && S.d.C * kk <= 32);
    S.pool = cg->g->nodes[cg->epi[0]];
    S.y = cg_node_ptr(cg, S.pool->inputs[0]);
    S.compact = cg_compact(cg, S.pool->inputs[0]);
    S.gp = cg_node_ptr(cg, S.pool->inputs[1]);
    int nv = S.bp / SNC_VW;
    S.na = nv < 8 ? nv : 8;
    SNC_ASSERT(cg->nside <= 1);
    if (cg->nside) S.db = cg_node_ptr(cg, cg->side[0]); /* the bias gradient */
  } else {
    S.dy = cg_node_ptr(cg, n->inputs[lin ? 0 : 1]);
  }
  if (kk > 32) {
    emit_dw_taps(cg, &S);
    return;
  }
  /* blocks of RO x RC x kk accumulators (at most 32); the default: 4 x 4 for matrix products, else
     as many output channels as fit 27 */
  int ro0 = kk == 1 ? 4 : kk <= 9 ? 3 : kk <= 12 ? 2 : 1, rc0 = kk == 1 ? 4 : 1;
  if (ro0 > S.d.O) ro0 = (int)S.d.O;
  if (rc0 > S.d.C) rc0 = (int)S.d.C;
  snc_cg_schedule c[16];
  int nc = 0;
  if (S.pool) { /* a prologue: every input channel in the block (dy and db computed once per channel) */
    int rc = (int)S.d.C, rmax = (int)(27 / (rc * kk)) < 1 ? 1 : (int)(27 / (rc * kk));
    for (int ro = rmax; ro >= 1 && nc < 4; ro--)
      if (ro <= S.d.O && ro <= 8 && scratch_bytes(&S.d, S.pool->attr.kernel[0], ro, S.bp) <= DW_SCRATCH_MAX) nc = cg_sched_add(c, nc, 16, (snc_cg_schedule){SNC_SCHED_DW, ro, rc, 1, 0, 1});
  } else {
    nc = cg_sched_add(c, 0, 16, (snc_cg_schedule){SNC_SCHED_DW, ro0, rc0, 1, 0, 1});
    nc = cg_sched_add(c, nc, 16, (snc_cg_schedule){SNC_SCHED_DW, ro0, rc0, 1, 1, 1});
    static const int alt[][2] = {{2, 1}, {1, 2}, {1, 3}, {2, 2}, {2, 4}, {4, 2}, {3, 3}, {6, 4}, {4, 6}, {8, 2}, {2, 8}, {3, 8}};
    for (int k = 0; k < 12; k++) {
      int ro = alt[k][0], rc = alt[k][1];
      if (ro <= S.d.O && rc <= S.d.C && ro * rc * kk <= 32 && ro <= 8) nc = cg_sched_add(c, nc, 8, (snc_cg_schedule){SNC_SCHED_DW, ro, rc, 1, 0, 1});
    }
  }
  char dims[128], shape[256];
  snprintf(dims, sizeof dims, "%lldx%lldx%lld>%lldx%lldx%lld k%dx%d s%dx%d p%dx%d", (long long)S.d.C, (long long)S.d.H,
           (long long)S.d.W, (long long)S.d.O, (long long)S.d.OH, (long long)S.d.OW, S.d.kh, S.d.kw, S.d.s[0], S.d.s[1],
           S.d.p[0], S.d.p[1]);
  cg_sched_shape(cg, n, dims, shape, sizeof shape);
  snc_cg_schedule s = cg_sched_choose(cg, shape, c, nc);
  SNC_ASSERT(s.kind == SNC_SCHED_DW && s.r >= 1 && s.r <= 8 && s.r <= S.d.O && s.p >= 1 && s.p <= S.d.C && s.r * s.p * kk <= 96);
  S.RO = s.r, S.RC = s.p;
  SNC_ASSERT(!S.pool || S.RC == S.d.C);
  if (S.pool)
    S.scratch = cg_alloca(cg, LLVMArrayType(cg->vf, (unsigned)(scratch_bytes(&S.d, S.pool->attr.kernel[0], S.RO, S.bp) / (4 * SNC_VW))), "scratch");
  if (S.db)
    for (int r = 0; r < S.RO; r++) S.dba[r] = cg_alloca(cg, LLVMArrayType(cg->vf, (unsigned)S.na), "dba");
  int order = s.order;
  int64_t nbo = (S.d.O + S.RO - 1) / S.RO, nbc = (S.d.C + S.RC - 1) / S.RC;
  LLVMValueRef acc[96];
  SNC_ASSERT(S.RO * S.RC * kk <= 96); /* the blocks above hold at most 32 accumulators */
  for (int i = 0; i < S.RO * S.RC * kk; i++) acc[i] = cg_alloca(cg, cg->vf, "acc");
  LLVMValueRef lo, hi;
  cg_partition(cg, nbo * nbc, &lo, &hi);
  snc_cg_loop li;
  cg_loop_begin(cg, &li, lo, hi, 1, "item");
  /* order 0: input-channel blocks innermost; 1: output-channel blocks innermost */
  LLVMValueRef bo = order ? LLVMBuildSRem(cg->b, li.iv, cg_i64(cg, nbo), "") : LLVMBuildSDiv(cg->b, li.iv, cg_i64(cg, nbc), "");
  LLVMValueRef bc = order ? LLVMBuildSDiv(cg->b, li.iv, cg_i64(cg, nbo), "") : LLVMBuildSRem(cg->b, li.iv, cg_i64(cg, nbc), "");
  LLVMValueRef o0 = cg_mul(cg, bo, cg_i64(cg, S.RO)), c0 = cg_mul(cg, bc, cg_i64(cg, S.RC));
  /* last blocks start early enough to stay in range (see emit_gather) */
  LLVMValueRef mo = cg_i64(cg, S.d.O - S.RO), mc = cg_i64(cg, S.d.C - S.RC);
  o0 = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGT, o0, mo, ""), mo, o0, "o0");
  c0 = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGT, c0, mc, ""), mc, c0, "c0");
  dw_block(cg, &S, S.RO, S.RC, o0, c0, acc);
  cg_loop_end(cg, &li);
}

