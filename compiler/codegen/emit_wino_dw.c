/* Weight gradients of 3x3 convolutions of stride 1 and padding 0 or 1 as Winograd F(3x3, 4x4), the
 * transpose of the forward's F(4x4, 3x3) (emit_wino.c): with the output cut into 4x4 tiles (cropped
 * at the edges), tile t of dy (H_t, 4x4) and the 6x6 input tile under it (X_t, zeros outside),
 *
 *   dw[o][c] = G^T [ sum_{t, b} (A H_t,o A^T) (.) (B^T X_t,c B) ] G    (A = (A^T)^T, 6x4)
 *
 * 36 products per tile, sample and channel pair instead of 144. The sum runs over the batch, which
 * the tensors keep in the vector lanes; the kernel works in phases with barriers between them, on
 * scratch in the arena (the memory plan's per-node scratch, cg_wino_dw_scratch), a chunk of
 * (batch vector, tile) units at a time:
 *   1. the input transforms, transposed so that 16 channels lie in the lanes: Xt[p][k][c] for the
 *      point p = 6 i + j and k = unit * 16 + lane (a sample of a tile); items (unit, 16 channels),
 *      so that each thread reads its share of x once;
 *   2. per row i of points, block of R output channels and block of input channels: dy's transform
 *      at the row's 6 points (A's row i in constants: code per row; into a stack buffer of at most
 *      96 KiB), then for each point M[p][o][c] += sum_k (A H A^T)[p][o][k] Xt[p][k][c], in k order,
 *      onto the earlier chunks' sums (broadcast FMAs, like the forward's);
 *   3. after the last chunk, per output channel and 16 input channels: dw = G^T M G.
 * dy's transforms are 2.25 times dy: stored whole like Xt (1 MB a call for the seed's conv2), their
 * stores bound phase 1; from dy, which stays in L2, they cost phase 2 little. Each sum runs in the
 * same order whatever the schedule (R, P, units per chunk) and the thread count. The transforms round
 * differently from the direct kernel's sum (emit_dw.c): about 1e-4 relative. */
#include "codegen/emit.h"

#define WDW_CHUNK (1 << 20) /* the transformed inputs of one chunk, bytes */
#define WDW_UNITS 16        /* units per chunk, at most: dy's transforms of a row, [6][R][units] vectors, on the stack */
#define WDW_R 16            /* output channels per block, at most */

typedef struct wdw {
  conv_dims d;
  int64_t bp, ntx, ntiles, nunits; /* nunits = (batch vectors) x (tiles) */
  int64_t cu;                      /* units per chunk */
  int64_t XP;                      /* the floats from one point's Xt to the next: one line more than its
                                      size, or the 36 stores of a unit's transform share an L1 set */
  int R, P;                        /* phase 2's block: R output channels x P vectors of 16 input channels */
  LLVMValueRef x, dy, out, xt, m, hbuf;
} wdw;

static int64_t unit_bytes(const conv_dims *d) { return 36 * SNC_VW * d->C * 4; }

static int64_t units_per_chunk(const conv_dims *d, int64_t nunits) {
  int64_t cu = WDW_CHUNK / unit_bytes(d);
  cu = cu > WDW_UNITS ? WDW_UNITS : cu;
  return cu < 1 ? 1 : cu > nunits ? nunits : cu;
}

int64_t cg_wino_dw_scratch(const conv_dims *d, int64_t bp) {
  if (!cg_wino_shape_ok(d)) return 0; /* the forward's shapes, without its stack budget */
  int64_t ntiles = ((d->OH + 3) / 4) * ((d->OW + 3) / 4);
  int64_t nunits = bp / SNC_VW * ntiles, cu = units_per_chunk(d, nunits);
  return cu * unit_bytes(d) + 36 * 64 + 36 * d->O * d->C * 4;
}

static LLVMValueRef at(snc_cg *cg, LLVMValueRef base, LLVMValueRef i) { return LLVMBuildInBoundsGEP2(cg->b, cg->f32, base, &i, 1, ""); }

/* rows v[0..16) into columns: v[j][i] = old v[i][j], in four rounds of two-source shuffles */
static void transpose16(snc_cg *cg, LLVMValueRef *v) {
  for (int h = SNC_VW / 2; h >= 1; h /= 2)
    for (int i = 0; i < SNC_VW; i++) {
      if (i & h) continue;
      LLVMValueRef lo[SNC_VW], hi[SNC_VW];
      for (int j = 0; j < SNC_VW; j++) {
        lo[j] = cg_i32(cg, (j & h) ? SNC_VW + j - h : j);
        hi[j] = cg_i32(cg, (j & h) ? SNC_VW + j : j + h);
      }
      LLVMValueRef a = v[i], b = v[i + h];
      v[i] = LLVMBuildShuffleVector(cg->b, a, b, LLVMConstVector(lo, SNC_VW), "");
      v[i + h] = LLVMBuildShuffleVector(cg->b, a, b, LLVMConstVector(hi, SNC_VW), "");
    }
}

/* unit u's tile: the first output row and column, and the lanes' first sample */
static void unit_tile(snc_cg *cg, const wdw *W, LLVMValueRef unit, LLVMValueRef *oy0, LLVMValueRef *ox0, LLVMValueRef *b0) {
  LLVMValueRef tile = LLVMBuildURem(cg->b, unit, cg_i64(cg, W->ntiles), "tile");
  *b0 = cg_mul(cg, LLVMBuildUDiv(cg->b, unit, cg_i64(cg, W->ntiles), ""), cg_i64(cg, SNC_VW));
  *oy0 = cg_mul(cg, LLVMBuildUDiv(cg->b, tile, cg_i64(cg, W->ntx), ""), cg_i64(cg, 4));
  *ox0 = cg_mul(cg, LLVMBuildURem(cg->b, tile, cg_i64(cg, W->ntx), ""), cg_i64(cg, 4));
}

/* position (r0 + i, c0 + j) of an rows x cols plane: its clamped flat index and whether it is inside */
static void in_plane(snc_cg *cg, LLVMValueRef r, LLVMValueRef c, int64_t rows, int64_t cols, LLVMValueRef *flat, LLVMValueRef *ok) {
  LLVMValueRef t[2] = {r, c}, v[2];
  int64_t lim[2] = {rows, cols};
  for (int a = 0; a < 2; a++) {
    LLVMValueRef in = LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGE, t[a], cg_i64(cg, 0), ""),
                                   LLVMBuildICmp(cg->b, LLVMIntSLT, t[a], cg_i64(cg, lim[a]), ""), "");
    v[a] = LLVMBuildSelect(cg->b, in, t[a], cg_i64(cg, 0), "");
    *ok = a ? LLVMBuildAnd(cg->b, *ok, in, "") : in;
  }
  *flat = cg_add(cg, cg_mul(cg, v[0], cg_i64(cg, cols)), v[1]);
}

/* phase 1, input channels c0..c0+15 of unit `unit` (u-th of its chunk): Xt[p][u*16 + lane][c] =
   (B^T X B)[p], through tmp ([36][16] vectors: a point's 16 channels, transposed in one go) */
static void x_unit(snc_cg *cg, const wdw *W, LLVMValueRef unit, LLVMValueRef u, LLVMValueRef c0, LLVMValueRef tmp) {
  const conv_dims *d = &W->d;
  LLVMValueRef oy0, ox0, b0, pos[36], ok[36], dt[36], vt[36];
  unit_tile(cg, W, unit, &oy0, &ox0, &b0);
  for (int e = 0; e < 36; e++) /* with padding or a cropped tile, some are outside: zeros */
    in_plane(cg, cg_add(cg, oy0, cg_i64(cg, e / 6 - d->p[0])), cg_add(cg, ox0, cg_i64(cg, e % 6 - d->p[1])), d->H, d->W, &pos[e], &ok[e]);
  snc_cg_loop ll, lp;
  cg_loop_begin(cg, &ll, cg_i64(cg, 0), cg_i64(cg, SNC_VW), 1, "xl");
  LLVMValueRef plane = cg_mul(cg, cg_add(cg, c0, ll.iv), cg_i64(cg, d->H * d->W));
  for (int e = 0; e < 36; e++) {
    dt[e] = cg_vload(cg, cg_gep(cg, W->x, cg_add(cg, cg_mul(cg, cg_add(cg, plane, pos[e]), cg_i64(cg, W->bp)), b0)), 64);
    dt[e] = LLVMBuildSelect(cg->b, ok[e], dt[e], cg_vf(cg, 0), "");
  }
  cg_wino_sandwich(cg, &cg_wino_BT[0][0], 6, 6, dt, vt);
  for (int p = 0; p < 36; p++) {
    LLVMValueRef ti = cg_add(cg, cg_i64(cg, p * SNC_VW), ll.iv);
    cg_vstore(cg, vt[p], LLVMBuildInBoundsGEP2(cg->b, cg->vf, tmp, &ti, 1, ""), 64);
  }
  cg_loop_end(cg, &ll);
  cg_loop_begin(cg, &lp, cg_i64(cg, 0), cg_i64(cg, 36), 1, "xp"); /* per point: channels x samples into samples x channels */
  LLVMValueRef v[SNC_VW];
  for (int l = 0; l < SNC_VW; l++) {
    LLVMValueRef ti = cg_add(cg, cg_mul(cg, lp.iv, cg_i64(cg, SNC_VW)), cg_i64(cg, l));
    v[l] = cg_vload(cg, LLVMBuildInBoundsGEP2(cg->b, cg->vf, tmp, &ti, 1, ""), 64);
  }
  transpose16(cg, v);
  LLVMValueRef row0 = cg_add(cg, cg_mul(cg, lp.iv, cg_i64(cg, W->XP)), cg_add(cg, cg_mul(cg, u, cg_i64(cg, SNC_VW * d->C)), c0));
  for (int l = 0; l < SNC_VW; l++) cg_vstore(cg, v[l], at(cg, W->xt, cg_add(cg, row0, cg_i64(cg, l * d->C))), 64);
  cg_loop_end(cg, &lp);
}

/* phase 2, row i of the points: dy's transform (A H A^T)[i][j] at the row's 6 points for units u0..
   (nu) and output channels o0.. (R), into hbuf[j][r][u]: the dy rows A's row i takes */
static void h_row(snc_cg *cg, const wdw *W, int i, LLVMValueRef o0, LLVMValueRef u0, LLVMValueRef nu) {
  const conv_dims *d = &W->d;
  float A[6][4];
  for (int r = 0; r < 6; r++)
    for (int a = 0; a < 4; a++) A[r][a] = cg_wino_AT[a][r];
  snc_cg_loop lu, lr;
  cg_loop_begin(cg, &lu, cg_i64(cg, 0), nu, 1, "hu");
  LLVMValueRef oy0, ox0, b0, pos[16], ok[16], col[4], t[4];
  unit_tile(cg, W, cg_add(cg, u0, lu.iv), &oy0, &ox0, &b0);
  for (int e = 0; e < 16; e++) /* a cropped tile's elements past the edge: zeros */
    if (A[i][e / 4] != 0) in_plane(cg, cg_add(cg, oy0, cg_i64(cg, e / 4)), cg_add(cg, ox0, cg_i64(cg, e % 4)), d->OH, d->OW, &pos[e], &ok[e]);
  cg_loop_begin(cg, &lr, cg_i64(cg, 0), cg_i64(cg, W->R), 1, "hr");
  LLVMValueRef plane = cg_mul(cg, cg_add(cg, o0, lr.iv), cg_i64(cg, d->OH * d->OW));
  for (int b = 0; b < 4; b++) { /* t = (A H)[i][.] */
    for (int a = 0; a < 4; a++) {
      col[a] = NULL;
      if (A[i][a] == 0) continue;
      LLVMValueRef e = cg_vload(cg, cg_gep(cg, W->dy, cg_add(cg, cg_mul(cg, cg_add(cg, plane, pos[a * 4 + b]), cg_i64(cg, W->bp)), b0)), 64);
      col[a] = LLVMBuildSelect(cg->b, ok[a * 4 + b], e, cg_vf(cg, 0), "");
    }
    t[b] = cg_wino_lincomb(cg, A[i], col, 4);
  }
  for (int j = 0; j < 6; j++) {
    LLVMValueRef hi = cg_add(cg, cg_mul(cg, cg_add(cg, cg_i64(cg, j * W->R), lr.iv), cg_i64(cg, W->cu)), lu.iv);
    cg_vstore(cg, cg_wino_lincomb(cg, A[j], t, 4), LLVMBuildInBoundsGEP2(cg->b, cg->vf, W->hbuf, &hi, 1, ""), 64);
  }
  cg_loop_end(cg, &lr);
  cg_loop_end(cg, &lu);
}

/* phase 2, chunk units u0.. (nu of them; first: i1, the first chunk), one item: row `row` of the
   points (its transforms of dy in hbuf), output channels o0.. (R), input channels c0.. (P vectors) */
static void m_item(snc_cg *cg, const wdw *W, LLVMValueRef row, LLVMValueRef o0, LLVMValueRef c0, LLVMValueRef nu,
                   LLVMValueRef first, LLVMValueRef *acc) {
  const conv_dims *d = &W->d;
  snc_cg_loop lu, lj, ll;
  /* per point: M[p][o][c] += sum over the chunk's k of hbuf (a lane, broadcast) x Xt */
  cg_loop_begin(cg, &lj, cg_i64(cg, 0), cg_i64(cg, 6), 1, "j");
  LLVMValueRef p = cg_add(cg, cg_mul(cg, row, cg_i64(cg, 6)), lj.iv);
  LLVMValueRef mrow = cg_add(cg, cg_mul(cg, p, cg_i64(cg, d->O)), o0); /* M[p][o0][.] */
  for (int r = 0; r < W->R; r++)
    for (int q = 0; q < W->P; q++) {
      LLVMValueRef mp = at(cg, W->m, cg_add(cg, cg_mul(cg, cg_add(cg, mrow, cg_i64(cg, r)), cg_i64(cg, d->C)), cg_add(cg, c0, cg_i64(cg, q * SNC_VW))));
      cg_vstore(cg, LLVMBuildSelect(cg->b, first, cg_vf(cg, 0), cg_vload(cg, mp, 64), ""), acc[r * W->P + q], 64);
    }
  cg_loop_begin(cg, &lu, cg_i64(cg, 0), nu, 1, "u");
  LLVMValueRef hrow = cg_mul(cg, cg_add(cg, cg_mul(cg, lj.iv, cg_i64(cg, W->R * W->cu)), lu.iv), cg_i64(cg, SNC_VW)); /* hbuf[j][0][u], floats */
  LLVMValueRef hb = LLVMBuildBitCast(cg->b, W->hbuf, cg->ptr, "");
  cg_loop_begin(cg, &ll, cg_i64(cg, 0), cg_i64(cg, SNC_VW), 1, "l");
  LLVMValueRef xrow = cg_add(cg, cg_add(cg, cg_mul(cg, p, cg_i64(cg, W->XP)), cg_mul(cg, cg_add(cg, cg_mul(cg, lu.iv, cg_i64(cg, SNC_VW)), ll.iv), cg_i64(cg, d->C))), c0);
  LLVMValueRef xv[4];
  for (int q = 0; q < W->P; q++) xv[q] = cg_vload(cg, at(cg, W->xt, cg_add(cg, xrow, cg_i64(cg, q * SNC_VW))), 64);
  for (int r = 0; r < W->R; r++) {
    LLVMValueRef hv = cg_splat(cg, cg_load(cg, at(cg, hb, cg_add(cg, hrow, cg_add(cg, cg_i64(cg, r * W->cu * SNC_VW), ll.iv)))));
    for (int q = 0; q < W->P; q++) cg_vstore(cg, cg_fma(cg, hv, xv[q], cg_vload(cg, acc[r * W->P + q], 64)), acc[r * W->P + q], 64);
  }
  cg_loop_end(cg, &ll);
  cg_loop_end(cg, &lu);
  for (int r = 0; r < W->R; r++)
    for (int q = 0; q < W->P; q++) {
      LLVMValueRef mp = at(cg, W->m, cg_add(cg, cg_mul(cg, cg_add(cg, mrow, cg_i64(cg, r)), cg_i64(cg, d->C)), cg_add(cg, c0, cg_i64(cg, q * SNC_VW))));
      cg_vstore(cg, cg_vload(cg, acc[r * W->P + q], 64), mp, 64);
    }
  cg_loop_end(cg, &lj);
}

/* phase 3: dw[o][c0..c0+15][.] = G^T M G */
static void out_item(snc_cg *cg, const wdw *W, LLVMValueRef item, LLVMValueRef tmp) {
  const conv_dims *d = &W->d;
  float GT[3][6];
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 6; j++) GT[i][j] = cg_wino_G[j][i];
  LLVMValueRef o = LLVMBuildUDiv(cg->b, item, cg_i64(cg, d->C / SNC_VW), "o");
  LLVMValueRef c0 = cg_mul(cg, LLVMBuildURem(cg->b, item, cg_i64(cg, d->C / SNC_VW), ""), cg_i64(cg, SNC_VW));
  LLVMValueRef mt[36], w[9];
  for (int p = 0; p < 36; p++)
    mt[p] = cg_vload(cg, at(cg, W->m, cg_add(cg, cg_mul(cg, cg_add(cg, cg_i64(cg, p * d->O), o), cg_i64(cg, d->C)), c0)), 64);
  cg_wino_sandwich(cg, &GT[0][0], 3, 6, mt, w);
  /* dw[o][c0 + l][t] = w[t][l]: through the stack (tmp, [9] vectors), a lane's 9 taps at a time */
  LLVMValueRef base = cg_mul(cg, cg_add(cg, cg_mul(cg, o, cg_i64(cg, d->C)), c0), cg_i64(cg, 9));
  for (int t = 0; t < 9; t++) {
    LLVMValueRef ti = cg_i64(cg, t);
    cg_vstore(cg, w[t], LLVMBuildInBoundsGEP2(cg->b, cg->vf, tmp, &ti, 1, ""), 64);
  }
  snc_cg_loop ll;
  cg_loop_begin(cg, &ll, cg_i64(cg, 0), cg_i64(cg, SNC_VW), 1, "l");
  for (int t = 0; t < 9; t++)
    cg_store(cg, cg_load(cg, at(cg, tmp, cg_add(cg, cg_i64(cg, t * SNC_VW), ll.iv))),
             cg_gep(cg, W->out, cg_add(cg, base, cg_add(cg, cg_mul(cg, ll.iv, cg_i64(cg, 9)), cg_i64(cg, t)))));
  cg_loop_end(cg, &ll);
}

void cg_wino_dw_emit(snc_cg *cg, const snc_node *n) {
  const snc_graph *g = cg->g;
  SNC_ASSERT(n->op == SNC_OP_CONV2D_DW && !cg->nepi && !cg->nside);
  wdw W = {.d = cg_conv_dims(g, n), .bp = cg->lay->bp};
  const conv_dims *d = &W.d;
  SNC_ASSERT(cg_wino_dw_scratch(d, W.bp) > 0 && cg_wino_dw_scratch(d, W.bp) <= cg->lay->scratch_bytes[n->id]);
  W.ntx = (d->OW + 3) / 4, W.ntiles = ((d->OH + 3) / 4) * W.ntx, W.nunits = W.bp / SNC_VW * W.ntiles;
  int cmax = (int)units_per_chunk(d, W.nunits); /* the scratch holds this many units' transforms */
  /* schedules: R output channels x P vectors of input channels (at most 28 accumulators), v units
     per chunk (the default: as many as the scratch holds) */
  snc_cg_schedule c[12];
  int nc = 0, cv = (int)(d->C / SNC_VW);
  static const int rs[] = {8, 4, 6, 12, 16}, ps[] = {4, 3, 2, 1};
  for (int pi = 0; pi < 4; pi++) {
    if (cv % ps[pi]) continue;
    for (int ri = 0; ri < 5; ri++)
      if (d->O % rs[ri] == 0 && rs[ri] * ps[pi] <= 28) nc = cg_sched_add(c, nc, 10, (snc_cg_schedule){SNC_SCHED_WDW, rs[ri], ps[pi], cmax, 0, 1});
  }
  SNC_ASSERT(nc > 0);
  for (int v = cmax / 2; v >= 1; v = v > 1 ? 1 : 0) nc = cg_sched_add(c, nc, 12, (snc_cg_schedule){SNC_SCHED_WDW, c[0].r, c[0].p, v, 0, 1});
  char dims[128], shape[256];
  snprintf(dims, sizeof dims, "%lldx%lldx%lld>%lldx%lldx%lld k3x3 s1x1 p%dx%d", (long long)d->C, (long long)d->H, (long long)d->W,
           (long long)d->O, (long long)d->OH, (long long)d->OW, d->p[0], d->p[1]);
  cg_sched_shape(cg, n, dims, shape, sizeof shape);
  snc_cg_schedule s = cg_sched_choose(cg, shape, c, nc);
  SNC_ASSERT(s.kind == SNC_SCHED_WDW && s.r <= WDW_R && d->O % s.r == 0 && cv % s.p == 0 && s.r * s.p <= 28 && s.v <= cmax);
  W.R = s.r, W.P = s.p, W.cu = s.v, W.XP = W.cu * SNC_VW * d->C + SNC_VW;
  W.x = cg_node_ptr(cg, n->inputs[0]);
  W.dy = cg_node_ptr(cg, n->inputs[1]);
  W.out = cg_node_ptr(cg, n->id);
  LLVMValueRef off = cg_data_fresh_of(cg, n->id, CG_DATA_SCRATCH);
  W.xt = LLVMBuildInBoundsGEP2(cg->b, cg->i8, cg->arena, &off, 1, "scratch");
  W.m = at(cg, W.xt, cg_i64(cg, 36 * W.XP));
  LLVMValueRef tmp = cg_alloca(cg, LLVMArrayType(cg->vf, 36 * SNC_VW), "wdw_t");
  W.hbuf = cg_alloca(cg, LLVMArrayType(cg->vf, (unsigned)(6 * W.R * W.cu)), "wdw_h");
  LLVMSetAlignment(tmp, 64);
  LLVMSetAlignment(W.hbuf, 64);
  LLVMValueRef acc[28];
  for (int i = 0; i < W.R * W.P; i++) acc[i] = cg_alloca(cg, cg->vf, "acc");
  int64_t nch = (W.nunits + W.cu - 1) / W.cu, ncb = d->C / SNC_VW;
  snc_cg_loop lch, li;
  cg_loop_begin(cg, &lch, cg_i64(cg, 0), cg_i64(cg, nch), 1, "chunk");
  LLVMValueRef u0 = cg_mul(cg, lch.iv, cg_i64(cg, W.cu)), left = LLVMBuildSub(cg->b, cg_i64(cg, W.nunits), u0, "");
  LLVMValueRef nu = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, left, cg_i64(cg, W.cu), ""), left, cg_i64(cg, W.cu), "nu");
  /* 1. input transforms: items (unit, 16 input channels), each thread reading its share of x once */
  LLVMValueRef lo, hi;
  cg_partition_v(cg, cg_mul(cg, nu, cg_i64(cg, ncb)), &lo, &hi);
  cg_loop_begin(cg, &li, lo, hi, 1, "t");
  LLVMValueRef u = LLVMBuildUDiv(cg->b, li.iv, cg_i64(cg, ncb), "u");
  LLVMValueRef cx = cg_mul(cg, LLVMBuildURem(cg->b, li.iv, cg_i64(cg, ncb), ""), cg_i64(cg, SNC_VW));
  x_unit(cg, &W, cg_add(cg, u0, u), u, cx, tmp);
  cg_loop_end(cg, &li);
  cg_barrier(cg);
  /* 2. M += (A H A^T) Xt: items (row of points, output block, input block), rows outermost */
  int64_t nob = d->O / W.R, npb = d->C / (SNC_VW * W.P);
  cg_partition(cg, 6 * nob * npb, &lo, &hi);
  cg_loop_begin(cg, &li, lo, hi, 1, "m");
  LLVMValueRef first = LLVMBuildICmp(cg->b, LLVMIntEQ, lch.iv, cg_i64(cg, 0), "first");
  LLVMValueRef pb = LLVMBuildURem(cg->b, li.iv, cg_i64(cg, npb), ""), rest2 = LLVMBuildUDiv(cg->b, li.iv, cg_i64(cg, npb), "");
  LLVMValueRef o0 = cg_mul(cg, LLVMBuildURem(cg->b, rest2, cg_i64(cg, nob), ""), cg_i64(cg, W.R));
  LLVMValueRef row2 = LLVMBuildUDiv(cg->b, rest2, cg_i64(cg, nob), "row"), c0 = cg_mul(cg, pb, cg_i64(cg, SNC_VW * W.P));
  for (int i = 0; i < 6; i++) { /* dy's transforms: A's row i in constants */
    LLVMBasicBlockRef ri = cg_if_begin(cg, LLVMBuildICmp(cg->b, LLVMIntEQ, row2, cg_i64(cg, i), ""), "row");
    h_row(cg, &W, i, o0, u0, nu);
    cg_if_end(cg, ri);
  }
  m_item(cg, &W, row2, o0, c0, nu, first, acc);
  cg_loop_end(cg, &li);
  cg_barrier(cg); /* the next chunk's transforms overwrite Xt; phase 3 reads M */
  cg_loop_end(cg, &lch);
  /* 3. dw = G^T M G */
  cg_partition(cg, d->O * ncb, &lo, &hi);
  cg_loop_begin(cg, &li, lo, hi, 1, "o");
  out_item(cg, &W, li.iv, tmp);
  cg_loop_end(cg, &li);
}
