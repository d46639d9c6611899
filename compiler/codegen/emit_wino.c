/* 3x3 convolutions of stride 1 and padding 0 or 1, and the input gradients of padding-1 ones (the
 * convolution of dy with the weights transposed and turned by 180 degrees, cg_wino.dx), as Winograd
 * F(4x4, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): each
 * 4x4 output tile (cropped at the edges) comes from a 6x6 input tile (zeros outside the input) as
 *
 *   Y = A^T [ sum_c U_c (.) V_c ] A,   U_c = G g_c G^T (the weights),   V_c = B^T d_c B (the input)
 *
 * 36 products per tile and channel pair instead of 144: a quarter of the multiplies, plus the
 * transforms. On [C][H][W][Bp] every transform runs on vectors of 16 samples.
 *
 * The threads
 *   1. transform the weights into U ([36][O][C] floats in the node's scratch in the arena, which the
 *      memory plan places: cg_node_scratch), items (output channel, 16 input channels), and wait
 *      for each other (a barrier in the kernel);
 * then a thread takes a range of work items (batch vector, tile, block of R output channels) and
 *   2. for each of its tiles of a batch vector: transforms the input tile of every channel into
 *      V ([36][C] vectors), then for each of its blocks of R output channels sums
 *      M[p][r] = sum_c U[p][o0+r][c] V[p][c] in channel order, and per channel transforms M back
 *      to the 4x4 tile, adds the bias and runs the fused chain: the epilogue, and a max pooling
 *      whose windows the tile holds whole, in registers (the first element, then each strictly
 *      greater one: the pooling kernel's order).
 * Every output is computed the same way whatever the thread count. The transforms round
 * differently from the direct sum: outputs differ from the direct kernel's by about 1e-4
 * relative (docs/architecture.md). */
#include "codegen/emit.h"

const float cg_wino_BT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                               {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
const float cg_wino_G[6][3] = {{1 / 4.f, 0, 0},           {-1 / 6.f, -1 / 6.f, -1 / 6.f}, {-1 / 6.f, 1 / 6.f, -1 / 6.f},
                               {1 / 24.f, 1 / 12.f, 1 / 6.f}, {1 / 24.f, -1 / 12.f, 1 / 6.f}, {0, 0, 1}};
const float cg_wino_AT[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};

#define WINO_R 16                /* output channels per block, at most (the schedule's r; 8 by default) */
#define WINO_STACK (512 << 10)   /* V and M on the stack of an OpenMP thread */

/* sum_k c[k] v[k] over the nonzero c[k] in k order: +-1 as an add or subtract, others as an FMA */
LLVMValueRef cg_wino_lincomb(snc_cg *cg, const float *c, const LLVMValueRef *v, int n) {
  LLVMValueRef s = NULL;
  for (int k = 0; k < n; k++) {
    if (c[k] == 0) continue;
    if (!s) s = c[k] == 1 ? v[k] : c[k] == -1 ? LLVMBuildFNeg(cg->b, v[k], "") : LLVMBuildFMul(cg->b, cg_vf(cg, c[k]), v[k], "");
    else if (c[k] == 1) s = LLVMBuildFAdd(cg->b, s, v[k], "");
    else if (c[k] == -1) s = LLVMBuildFSub(cg->b, s, v[k], "");
    else s = cg_fma(cg, cg_vf(cg, c[k]), v[k], s);
  }
  return s ? s : cg_vf(cg, 0);
}

void cg_wino_sandwich(snc_cg *cg, const float *L, int m, int n, const LLVMValueRef *in, LLVMValueRef *out) {
  LLVMValueRef t[6][6], col[6];
  SNC_ASSERT(m <= 6 && n <= 6);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      for (int k = 0; k < n; k++) col[k] = in[k * n + j];
      t[i][j] = cg_wino_lincomb(cg, L + i * n, col, n);
    }
  for (int i = 0; i < m; i++)
    for (int l = 0; l < m; l++) out[i * m + l] = cg_wino_lincomb(cg, L + l * n, t[i], n);
}

static int64_t stack_bytes(const conv_dims *d) { return 36 * (d->C + 1) * 64 + 36 * WINO_R * 64; }

int64_t cg_wino_scratch(const conv_dims *d) { return d->O * d->C * 36 * 4; }

int cg_wino_shape_ok(const conv_dims *d) {
  if (d->kh != 3 || d->kw != 3 || d->s[0] != 1 || d->s[1] != 1 || d->p[0] > 1 || d->p[1] > 1 || d->p[0] < 0 || d->p[1] < 0) return 0;
  if (d->OH < 4 || d->OW < 4 || d->C % SNC_VW || d->O % 8) return 0;
  /* tiles past the edge are cropped: at most half the direct kernel's multiplies */
  return ((d->OH + 3) / 4) * ((d->OW + 3) / 4) * 36 * 2 <= d->OH * d->OW * 9;
}

int cg_wino_ok(const conv_dims *d, const snc_node *pool) {
  if (!cg_wino_shape_ok(d) || stack_bytes(d) > WINO_STACK) return 0;
  return !pool || (d->OH % 4 == 0 && d->OW % 4 == 0 && 4 % pool->attr.kernel[0] == 0 && 4 % pool->attr.kernel[1] == 0);
}

/* one channel's 4x4 tile y (row-major, at output row oy0, column ox0), lanes b0..: the chain, then
   stores: the outputs, or the pooled windows (and the activation or its argmax, a side output) */
static void tile_out(snc_cg *cg, const cg_wino *W, LLVMValueRef o, LLVMValueRef oy0, LLVMValueRef ox0, LLVMValueRef b0,
                     LLVMValueRef *y) {
  const conv_dims *d = &W->d;
  LLVMValueRef fs[16], bs[16];
  int crop = d->OH % 4 || d->OW % 4; /* the last tiles of a row or column reach past the edge */
  for (int e = 0; e < 16; e++) { /* a cropped element's chain reads inside the tensor, and is not stored */
    LLVMValueRef oy = cg_add(cg, oy0, cg_i64(cg, e / 4)), ox = cg_add(cg, ox0, cg_i64(cg, e % 4));
    if (crop) {
      oy = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, oy, cg_i64(cg, d->OH), ""), oy, cg_i64(cg, d->OH - 1), "");
      ox = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, ox, cg_i64(cg, d->OW), ""), ox, cg_i64(cg, d->OW - 1), "");
    }
    fs[e] = cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, o, cg_i64(cg, d->OH)), oy), cg_i64(cg, d->OW)), ox);
    bs[e] = b0;
  }
  int nepi = cg->nepi, pre = W->pool ? W->pre : nepi; /* pooled: the rest runs on the pooled values */
  cg->nepi = pre;
  if (pre) cg_epilogue_n(cg, W->head, y, fs, bs, 16);
  cg->nepi = nepi;
  if (!W->pool || (W->keep && !W->compact))
    for (int e = 0; e < 16; e++) {
      LLVMBasicBlockRef in = NULL;
      if (crop)
        in = cg_if_begin(cg, LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, cg_add(cg, oy0, cg_i64(cg, e / 4)), cg_i64(cg, d->OH), ""),
                                          LLVMBuildICmp(cg->b, LLVMIntSLT, cg_add(cg, ox0, cg_i64(cg, e % 4)), cg_i64(cg, d->OW), ""), ""), "in");
      cg_vstore(cg, y[e], cg_gep(cg, W->pool ? W->keep : W->out, cg_add(cg, cg_mul(cg, fs[e], cg_i64(cg, W->bp)), b0)), 64);
      if (in) cg_if_end(cg, in);
    }
  if (!W->pool) return;
  int ky = W->pool->attr.kernel[0], kx = W->pool->attr.kernel[1];
  int64_t PH = d->OH / ky, PW = d->OW / kx;
  LLVMValueRef pv[16], pf[16];
  LLVMValueRef idx[16];
  int np = 0;
  for (int wy = 0; wy < 4; wy += ky)
    for (int wx = 0; wx < 4; wx += kx, np++) {
      LLVMValueRef m = NULL, at = NULL;
      for (int e = 0; e < ky * kx; e++) {
        LLVMValueRef v = y[(wy + e / kx) * 4 + wx + e % kx];
        if (!m) {
          m = v, at = cg_splat(cg, LLVMConstInt(cg->i8, 0, 0));
          continue;
        }
        LLVMValueRef gt = LLVMBuildFCmp(cg->b, LLVMRealOGT, v, m, "");
        m = LLVMBuildSelect(cg->b, gt, v, m, ""); /* cg_fmax(m, v) */
        at = LLVMBuildSelect(cg->b, gt, cg_splat(cg, LLVMConstInt(cg->i8, (unsigned)e, 0)), at, "");
      }
      LLVMValueRef py = LLVMBuildUDiv(cg->b, cg_add(cg, oy0, cg_i64(cg, wy)), cg_i64(cg, ky), "");
      LLVMValueRef px = LLVMBuildUDiv(cg->b, cg_add(cg, ox0, cg_i64(cg, wx)), cg_i64(cg, kx), "");
      pf[np] = cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, o, cg_i64(cg, PH)), py), cg_i64(cg, PW)), px);
      pv[np] = m, idx[np] = at;
    }
  if (pre < nepi) {
    LLVMValueRef bs2[16];
    for (int k = 0; k < np; k++) bs2[k] = b0;
    cg_epilogue_n_from(cg, pre, pre ? cg->epi[pre - 1] : W->head, pv, pf, bs2, np);
  }
  for (int k = 0; k < np; k++) {
    LLVMValueRef at = cg_add(cg, cg_mul(cg, pf[k], cg_i64(cg, W->bp)), b0);
    cg_vstore(cg, pv[k], cg_gep(cg, W->out, at), 64);
    if (W->compact) cg_compact_store(cg, W->keep, at, idx[k]);
  }
}

void cg_wino_emit(snc_cg *cg, const cg_wino *W) {
  const conv_dims *d = &W->d;
  int64_t C = d->C, O = d->O, nvec = W->bp / SNC_VW, nty = (d->OH + 3) / 4, ntx = (d->OW + 3) / 4;
  snc_cg_schedule c[3];
  int nc = 0;
  for (int k = 0; k < 3; k++) { /* 8 channels per block, then 4 and 16: the same sums in the same order */
    int r = (int[]){8, 4, 16}[k];
    if (O % r == 0) nc = cg_sched_add(c, nc, 3, (snc_cg_schedule){SNC_SCHED_WINO, r, 1, 1, 0, 1});
  }
  snc_cg_schedule sc = cg_sched_choose(cg, W->shape, c, nc);
  SNC_ASSERT(sc.kind == SNC_SCHED_WINO && sc.r >= 1 && sc.r <= WINO_R && O % sc.r == 0);
  int64_t R = sc.r;
  SNC_ASSERT(cg->lay->scratch_bytes[W->root] >= cg_wino_scratch(d));
  LLVMValueRef uoff = cg_data_fresh_of(cg, W->root, CG_DATA_SCRATCH);
  LLVMValueRef us = LLVMBuildInBoundsGEP2(cg->b, cg->i8, cg->arena, &uoff, 1, "wino_u");
  /* V[p] rows C + 1 vectors apart: C vectors apart, the 36 of one channel would share few L1 sets */
  LLVMValueRef vs = cg_alloca(cg, LLVMArrayType(cg->vf, (unsigned)(36 * (C + 1))), "wino_v");
  LLVMValueRef ms = cg_alloca(cg, LLVMArrayType(cg->vf, (unsigned)(36 * R)), "wino_m");
  LLVMValueRef acc[WINO_R];
  for (int r = 0; r < R; r++) acc[r] = cg_alloca(cg, cg->vf, "acc");
  /* work items (batch vector, tile, block) in that order: a thread's range has whole batch vectors
     but at its ends, so it transforms the input of at most two tiles another thread transforms too,
     and 7 batch vectors split evenly */
  int64_t nblk = O / R, nitems = nvec * nty * ntx * nblk;
  LLVMValueRef lo, hi;
  /* 1. U, [36][O][C] in the node's scratch: U_c = G g_c G^T for 16 input channels at a time, items
     (output channel, 16 input channels) shared among the threads; then a barrier */
  snc_cg_loop lu;
  cg_partition(cg, O * (C / SNC_VW), &lo, &hi);
  cg_loop_begin(cg, &lu, lo, hi, 1, "u");
  LLVMValueRef uo = LLVMBuildUDiv(cg->b, lu.iv, cg_i64(cg, C / SNC_VW), "uo");
  LLVMValueRef uc = cg_mul(cg, LLVMBuildURem(cg->b, lu.iv, cg_i64(cg, C / SNC_VW), ""), cg_i64(cg, SNC_VW));
  LLVMValueRef g[9], t[6][3], u[36];
  for (int k = 0; k < 9; k++) { /* tap k of channels c.. c+15: stride 9 */
    g[k] = LLVMGetUndef(cg->vf);
    for (int l = 0; l < SNC_VW; l++) {
      LLVMValueRef cl = cg_add(cg, uc, cg_i64(cg, l)), wi;
      if (!W->dx) wi = cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, uo, cg_i64(cg, C)), cl), cg_i64(cg, 9)), cg_i64(cg, k));
      else /* the input gradient: the weights transposed (w[c][o]) and turned by 180 degrees */
        wi = cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, cl, cg_i64(cg, O)), uo), cg_i64(cg, 9)), cg_i64(cg, 8 - k));
      g[k] = LLVMBuildInsertElement(cg->b, g[k], cg_load(cg, cg_gep(cg, W->w, wi)), cg_i32(cg, l), "");
    }
  }
  for (int i = 0; i < 6; i++)
    for (int j = 0; j < 3; j++) t[i][j] = cg_wino_lincomb(cg, cg_wino_G[i], (LLVMValueRef[]){g[j], g[3 + j], g[6 + j]}, 3);
  for (int i = 0; i < 6; i++)
    for (int l = 0; l < 6; l++) u[i * 6 + l] = cg_wino_lincomb(cg, cg_wino_G[l], t[i], 3);
  for (int p = 0; p < 36; p++) {
    LLVMValueRef ui = cg_add(cg, cg_mul(cg, cg_add(cg, cg_i64(cg, p * O), uo), cg_i64(cg, C)), uc);
    cg_vstore(cg, u[p], LLVMBuildInBoundsGEP2(cg->b, cg->f32, us, &ui, 1, ""), 64);
  }
  cg_loop_end(cg, &lu);
  cg_barrier(cg);
  cg_partition(cg, nitems, &lo, &hi);
  LLVMBasicBlockRef none = cg_if_begin(cg, LLVMBuildICmp(cg->b, LLVMIntSLT, lo, hi, ""), "mine");
  /* 2. per item: the input transform when its tile is new to the thread, then the block */
  snc_cg_loop li, lpp, lr, lc;
  cg_loop_begin(cg, &li, lo, hi, 1, "item");
  LLVMValueRef blk = LLVMBuildURem(cg->b, li.iv, cg_i64(cg, nblk), "blk"), rest = LLVMBuildUDiv(cg->b, li.iv, cg_i64(cg, nblk), "");
  LLVMValueRef tile = LLVMBuildURem(cg->b, rest, cg_i64(cg, nty * ntx), "tile");
  LLVMValueRef b0 = cg_mul(cg, LLVMBuildUDiv(cg->b, rest, cg_i64(cg, nty * ntx), ""), cg_i64(cg, SNC_VW));
  LLVMValueRef oy0 = cg_mul(cg, LLVMBuildUDiv(cg->b, tile, cg_i64(cg, ntx), ""), cg_i64(cg, 4));
  LLVMValueRef ox0 = cg_mul(cg, LLVMBuildURem(cg->b, tile, cg_i64(cg, ntx), ""), cg_i64(cg, 4));
  LLVMValueRef fresh = LLVMBuildOr(cg->b, LLVMBuildICmp(cg->b, LLVMIntEQ, li.iv, lo, ""), LLVMBuildICmp(cg->b, LLVMIntEQ, blk, cg_i64(cg, 0), ""), "");
  LLVMBasicBlockRef have_v = cg_if_begin(cg, fresh, "transform");
  /* the tile's input rows and columns: with padding or cropped tiles some are outside the input,
     read as zeros (the address clamped inside) */
  LLVMValueRef iy[6], ix[6], vy[6], vx[6];
  int edges = d->p[0] || d->p[1] || d->OH % 4 || d->OW % 4;
  for (int i = 0; i < 6; i++) {
    LLVMValueRef t[2] = {cg_add(cg, oy0, cg_i64(cg, i - d->p[0])), cg_add(cg, ox0, cg_i64(cg, i - d->p[1]))};
    int64_t lim[2] = {d->H, d->W};
    LLVMValueRef *c[2] = {&iy[i], &ix[i]}, *v[2] = {&vy[i], &vx[i]};
    for (int a = 0; a < 2; a++) {
      *v[a] = LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGE, t[a], cg_i64(cg, 0), ""), LLVMBuildICmp(cg->b, LLVMIntSLT, t[a], cg_i64(cg, lim[a]), ""), "");
      *c[a] = LLVMBuildSelect(cg->b, *v[a], t[a], cg_i64(cg, 0), "");
    }
  }
  /* V[p][c] = (B^T d_c B)[p] */
  cg_loop_begin(cg, &lc, cg_i64(cg, 0), cg_i64(cg, C), 1, "vc");
  LLVMValueRef dt[36], vt[36];
  for (int i = 0; i < 6; i++)
    for (int j = 0; j < 6; j++) {
      LLVMValueRef pos = cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, lc.iv, cg_i64(cg, d->H)), iy[i]), cg_i64(cg, d->W)), ix[j]);
      LLVMValueRef xp = cg_gep(cg, W->x, cg_add(cg, cg_mul(cg, pos, cg_i64(cg, W->bp)), b0));
      dt[i * 6 + j] = cg_vload(cg, xp, 64);
      if (edges) dt[i * 6 + j] = LLVMBuildSelect(cg->b, LLVMBuildAnd(cg->b, vy[i], vx[j], ""), dt[i * 6 + j], cg_vf(cg, 0), "");
      /* the next batch vector's line (the last vector's: past it, harmless): read from the cache of
         the core that wrote it, a line is ~100 ns, which the transform alone cannot hide */
      LLVMValueRef nx = LLVMBuildInBoundsGEP2(cg->b, cg->f32, xp, (LLVMValueRef[]){cg_i64(cg, SNC_VW)}, 1, "");
      cg_call_intrinsic(cg, "llvm.prefetch", LLVMTypeOf(nx), (LLVMValueRef[]){nx, cg_i32(cg, 0), cg_i32(cg, 3), cg_i32(cg, 1)}, 4);
    }
  cg_wino_sandwich(cg, &cg_wino_BT[0][0], 6, 6, dt, vt);
  for (int p = 0; p < 36; p++) {
    LLVMValueRef vi = cg_add(cg, cg_i64(cg, p * (C + 1)), lc.iv);
    cg_vstore(cg, vt[p], LLVMBuildInBoundsGEP2(cg->b, cg->vf, vs, &vi, 1, ""), 64);
  }
  cg_loop_end(cg, &lc);
  cg_if_end(cg, have_v);
  LLVMValueRef o0 = cg_mul(cg, blk, cg_i64(cg, R));
  /* M[p][r] = sum_c U[p][o0+r][c] V[p][c], channels in order */
  cg_loop_begin(cg, &lpp, cg_i64(cg, 0), cg_i64(cg, 36), 1, "p");
  for (int r = 0; r < R; r++) cg_vstore(cg, cg_vf(cg, 0), acc[r], 64);
  cg_loop_begin(cg, &lc, cg_i64(cg, 0), cg_i64(cg, C), 1, "mc");
  LLVMValueRef vi = cg_add(cg, cg_mul(cg, lpp.iv, cg_i64(cg, C + 1)), lc.iv);
  LLVMValueRef v = cg_vload(cg, LLVMBuildInBoundsGEP2(cg->b, cg->vf, vs, &vi, 1, ""), 64);
  for (int r = 0; r < R; r++) {
    LLVMValueRef ui = cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, lpp.iv, cg_i64(cg, O)), cg_add(cg, o0, cg_i64(cg, r))), cg_i64(cg, C)), lc.iv);
    LLVMValueRef u = cg_splat(cg, cg_load(cg, LLVMBuildInBoundsGEP2(cg->b, cg->f32, us, &ui, 1, "")));
    cg_vstore(cg, cg_fma(cg, u, v, cg_vload(cg, acc[r], 64)), acc[r], 64);
  }
  cg_loop_end(cg, &lc);
  for (int r = 0; r < R; r++) {
    LLVMValueRef mi = cg_add(cg, cg_mul(cg, lpp.iv, cg_i64(cg, R)), cg_i64(cg, r));
    cg_vstore(cg, cg_vload(cg, acc[r], 64), LLVMBuildInBoundsGEP2(cg->b, cg->vf, ms, &mi, 1, ""), 64);
  }
  cg_loop_end(cg, &lpp);
  /* per channel: Y = A^T M A (+ bias), the chain, the stores */
  cg_loop_begin(cg, &lr, cg_i64(cg, 0), cg_i64(cg, R), 1, "r");
  LLVMValueRef o = cg_add(cg, o0, lr.iv), mt[36], y[16];
  for (int p = 0; p < 36; p++) {
    LLVMValueRef mi = cg_add(cg, cg_i64(cg, p * R), lr.iv);
    mt[p] = cg_vload(cg, LLVMBuildInBoundsGEP2(cg->b, cg->vf, ms, &mi, 1, ""), 64);
  }
  cg_wino_sandwich(cg, &cg_wino_AT[0][0], 4, 6, mt, y);
  if (W->bias) {
    LLVMValueRef bv = cg_splat(cg, cg_load(cg, cg_gep(cg, W->bias, o)));
    for (int e = 0; e < 16; e++) y[e] = LLVMBuildFAdd(cg->b, y[e], bv, "");
  }
  tile_out(cg, W, o, oy0, ox0, b0, y);
  cg_loop_end(cg, &lr);
  cg_loop_end(cg, &li);
  cg_if_end(cg, none);
}
