/* Convolutions and matrix products, forward and both gradients, as register-blocked vector code.
 * Batched tensors are [channels][height][width][Bp]: the batch is the vector dimension, so every
 * FMA works on 16 samples at once, weights are broadcast from memory, and each output element is a
 * sum over the reduction in a fixed order whatever the thread count. linear is the 1x1 case.
 *
 *   forward: out[o][oy][ox] = bias[o] + sum_{ky,kx,c} w[o][c][ky][kx] * x[c][oy*s+ky-p][ox*s+kx-p]
 *   dx:      dx[c][iy][ix]  = sum_{ky,kx,o} w[o][c][ky][kx] * dy[o][(iy+p-ky)/s][(ix+p-kx)/s]
 *   dw:      dw[o][c][ky][kx] = sum_{oy,ox,b} dy[o][oy][ox][b] * x[c][oy*s+ky-p][ox*s+kx-p][b]
 * Forward and dx of convolutions whose positions along x can be compile-time offsets (rows of at
 * most 8, or forward without x padding) use "tile": R output channels x P positions of one row x one
 * batch vector of accumulators, channels in a loop with every (kx) tap unrolled inside. The rest
 * (linear, padded long rows) use "gather": R output channels x VC batch vectors, reduction over
 * (ky, kx) unrolled and channels in a loop. dw is a blocked dot-product emitter. */
#include <string.h>

#include "codegen/emit.h"

conv_dims cg_conv_dims(const snc_graph *g, const snc_node *n) {
  conv_dims d = {0};
  const snc_node *x, *y;
  if (n->op == SNC_OP_CONV2D || n->op == SNC_OP_LINEAR) x = g->nodes[n->inputs[0]], y = n;
  else if (n->op == SNC_OP_CONV2D_DX || n->op == SNC_OP_LINEAR_DX) x = n, y = g->nodes[n->inputs[0]];
  else if (n->op == SNC_OP_CONV2D_DW) x = g->nodes[n->inputs[0]], y = g->nodes[n->inputs[1]];
  else x = g->nodes[n->inputs[1]], y = g->nodes[n->inputs[0]]; /* linear_dw(dy, x) */
  d.C = x->shape.dim[1];
  d.O = y->shape.dim[1];
  int conv = x->shape.rank == 4;
  d.H = conv ? x->shape.dim[2] : 1;
  d.W = conv ? x->shape.dim[3] : 1;
  d.OH = conv ? y->shape.dim[2] : 1;
  d.OW = conv ? y->shape.dim[3] : 1;
  d.kh = d.kw = 1;
  d.s[0] = d.s[1] = 1;
  if (conv) {
    const snc_attrs *a = &n->attr;
    d.s[0] = a->stride[0], d.s[1] = a->stride[1], d.p[0] = a->pad[0], d.p[1] = a->pad[1];
    d.kh = a->kernel[0], d.kw = a->kernel[1];
    const snc_node *w = n->op == SNC_OP_CONV2D_DW ? n : g->nodes[n->inputs[1]]; /* [O,C,kh,kw] */
    d.kh = (int)w->shape.dim[2], d.kw = (int)w->shape.dim[3];
  }
  return d;
}

/* --- gather: forward and dx --------------------------------------------------------------------- */

typedef struct gather {
  int dx;                    /* 0: forward (out = O channels), 1: input gradient (out = C channels) */
  conv_dims d;
  int64_t nout, nred;        /* output channels, reduction channels */
  int64_t SH, SW, OH, OW;    /* source (read) spatial size, produced spatial size */
  int64_t ws_out, ws_red;    /* weight strides for (out channel, reduction channel) */
  int VC, R, bp, head;
  int V, order, U;           /* batch vectors per block (tile), loop order, epilogue step (snc_cg_schedule) */
  LLVMValueRef src, w, bias, out, spill;
  const snc_node *pool;      /* pooled: the max pooling that ends the chain (tile only), out is its buffer */
  LLVMValueRef keep;         /* pooled in a training graph: the pooling's input, stored too (a side output) */
  int compact;               /* keep holds the compact form (snc_fuse_compact): each window's argmax */
  int pre;                   /* pooled: the epilogue's first pre nodes run on every element, the rest
                                on the pooled values (epilogue_before_pool) */
} gather;

/* One vector v of the produced element f (channel-major index; channel c, row oy, column ox), lanes
   from b: stored, or when pooled folded into its window's maximum (and stored as well when the
   backward pass reads it). Pooled, a thread owns whole channels and visits a window's elements in
   row-major order, its first element before the others, so "the first stores, each next one
   replaces it when greater" is the pooling kernel's own order and bits. The window comes from
   (c, oy, ox), which the tile has at hand (constant columns, a row per block), not from f: divisions
   of f per vector cost conv1's kernel, nine FMAs a vector, a third of its time. */
static void tile_store(snc_cg *cg, const gather *G, LLVMValueRef v, LLVMValueRef f, LLVMValueRef c, LLVMValueRef oy,
                       LLVMValueRef ox, LLVMValueRef b) {
  if (!G->pool || (G->keep && !G->compact)) cg_vstore(cg, v, cg_gep(cg, G->pool ? G->keep : G->out, cg_add(cg, cg_mul(cg, f, cg_i64(cg, G->bp)), b)), 64);
  if (!G->pool) return;
  int64_t ky = G->pool->attr.kernel[0], kx = G->pool->attr.kernel[1];
  int64_t PH = G->OH / ky, PW = G->OW / kx;
  LLVMValueRef py = LLVMBuildUDiv(cg->b, oy, cg_i64(cg, ky), ""), px = LLVMBuildUDiv(cg->b, ox, cg_i64(cg, kx), "");
  LLVMValueRef first = LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntEQ, LLVMBuildURem(cg->b, oy, cg_i64(cg, ky), ""), cg_i64(cg, 0), ""),
                                    LLVMBuildICmp(cg->b, LLVMIntEQ, LLVMBuildURem(cg->b, ox, cg_i64(cg, kx), ""), cg_i64(cg, 0), ""), "first");
  LLVMValueRef pf = cg_add(cg, cg_mul(cg, c, cg_i64(cg, PH * PW)), cg_add(cg, cg_mul(cg, py, cg_i64(cg, PW)), px));
  LLVMValueRef at = cg_add(cg, cg_mul(cg, pf, cg_i64(cg, G->bp)), b), p = cg_gep(cg, G->out, at);
  LLVMValueRef old = cg_vload(cg, p, 64), gt = LLVMBuildFCmp(cg->b, LLVMRealOGT, v, old, "");
  cg_vstore(cg, LLVMBuildSelect(cg->b, first, v, LLVMBuildSelect(cg->b, gt, v, old, ""), ""), p, 64); /* cg_fmax(old, v) */
  if (!G->compact) return;
  /* the compact side output (snc_fuse_compact): the window's argmax so far, its row-major position as
     a byte per lane. v takes it where it takes the maximum: first, or greater; the visiting order is
     row-major, so that is the first element equal to the maximum, which the gradient routes dy to */
  LLVMTypeRef vb = LLVMVectorType(cg->i8, SNC_VW);
  LLVMValueRef ip = LLVMBuildInBoundsGEP2(cg->b, cg->i8, G->keep, &at, 1, "");
  LLVMValueRef e = cg_add(cg, cg_mul(cg, LLVMBuildURem(cg->b, oy, cg_i64(cg, ky), ""), cg_i64(cg, kx)), LLVMBuildURem(cg->b, ox, cg_i64(cg, kx), ""));
  LLVMValueRef io = LLVMBuildLoad2(cg->b, vb, ip, "");
  LLVMSetAlignment(io, 16);
  LLVMValueRef take = LLVMBuildOr(cg->b, gt, cg_splat(cg, first), "take");
  cg_compact_store(cg, G->keep, at, LLVMBuildSelect(cg->b, take, cg_splat(cg, LLVMBuildTrunc(cg->b, e, cg->i8, "")), io, ""));
}

/* acc[r][v] += w(out0+r, red, ky, kx) * src[red][sy][sx][v] over red, for one (ky, kx) */
static void gather_red_loop(snc_cg *cg, const gather *G, int R, LLVMValueRef out0, LLVMValueRef sy, LLVMValueRef sx,
                            LLVMValueRef chunk0, int ky, int kx, LLVMValueRef *acc) {
  snc_cg_loop lr;
  int64_t plane = G->SH * G->SW * G->bp;
  cg_loop_begin(cg, &lr, cg_i64(cg, 0), cg_i64(cg, G->nred), 1, "red");
  LLVMValueRef row = cg_add(cg, cg_mul(cg, lr.iv, cg_i64(cg, plane)),
                            cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, sy, cg_i64(cg, G->SW)), sx), cg_i64(cg, G->bp)), chunk0));
  LLVMValueRef xv[8];
  for (int v = 0; v < G->VC; v++) xv[v] = cg_vload(cg, cg_gep(cg, G->src, cg_add(cg, row, cg_i64(cg, v * SNC_VW))), 64);
  LLVMValueRef wbase = cg_add(cg, cg_mul(cg, lr.iv, cg_i64(cg, G->ws_red)), cg_i64(cg, ky * G->d.kw + kx));
  for (int r = 0; r < R; r++) {
    LLVMValueRef wi = cg_add(cg, wbase, cg_mul(cg, cg_add(cg, out0, cg_i64(cg, r)), cg_i64(cg, G->ws_out)));
    LLVMValueRef wv = cg_splat(cg, cg_load(cg, cg_gep(cg, G->w, wi)));
    for (int v = 0; v < G->VC; v++) {
      LLVMValueRef a = cg_vload(cg, acc[r * 8 + v], 64);
      cg_vstore(cg, cg_fma(cg, wv, xv[v], a), acc[r * 8 + v], 64);
    }
  }
  cg_loop_end(cg, &lr);
}

/* the source coordinate read for produced coordinate t and kernel offset k along one axis, and
 * whether it is valid: forward t*s+k-p in [0, S); dx (t+p-k)/s when divisible and in [0, S) */
static LLVMValueRef src_coord(snc_cg *cg, const gather *G, int axis, LLVMValueRef t, int k, LLVMValueRef *valid) {
  int s = G->d.s[axis], p = G->d.p[axis];
  int64_t S = axis ? G->SW : G->SH;
  LLVMValueRef c;
  LLVMValueRef ok = LLVMConstInt(cg->i1, 1, 0);
  if (!G->dx) {
    c = cg_add(cg, cg_mul(cg, t, cg_i64(cg, s)), cg_i64(cg, k - p));
  } else {
    LLVMValueRef u = cg_add(cg, t, cg_i64(cg, p - k));
    if (s > 1) {
      LLVMValueRef nonneg = LLVMBuildICmp(cg->b, LLVMIntSGE, u, cg_i64(cg, 0), "");
      ok = LLVMBuildAnd(cg->b, nonneg, LLVMBuildICmp(cg->b, LLVMIntEQ, LLVMBuildSRem(cg->b, u, cg_i64(cg, s), ""), cg_i64(cg, 0), ""), "");
      u = LLVMBuildSDiv(cg->b, u, cg_i64(cg, s), "");
    }
    c = u;
  }
  int always = !G->dx && p == 0; /* forward without padding never leaves the input */
  if (!always) {
    ok = LLVMBuildAnd(cg->b, ok, LLVMBuildICmp(cg->b, LLVMIntSGE, c, cg_i64(cg, 0), ""), "");
    ok = LLVMBuildAnd(cg->b, ok, LLVMBuildICmp(cg->b, LLVMIntSLT, c, cg_i64(cg, S), ""), "");
  }
  *valid = always ? NULL : ok;
  return c;
}

/* one block of R output channels starting at out0, at produced row ty, all columns and chunks */
static void gather_block(snc_cg *cg, const gather *G, int R, LLVMValueRef out0, LLVMValueRef ty, LLVMValueRef *acc) {
  snc_cg_loop lx, lc;
  cg_loop_begin(cg, &lx, cg_i64(cg, 0), cg_i64(cg, G->OW), 1, "tx");
  cg_loop_begin(cg, &lc, cg_i64(cg, 0), cg_i64(cg, G->bp), G->VC * SNC_VW, "chunk");
  for (int r = 0; r < R; r++) {
    LLVMValueRef init = cg_vf(cg, 0);
    if (G->bias) init = cg_splat(cg, cg_load(cg, cg_gep(cg, G->bias, cg_add(cg, out0, cg_i64(cg, r)))));
    for (int v = 0; v < G->VC; v++) cg_vstore(cg, init, acc[r * 8 + v], 64);
  }
  for (int ky = 0; ky < G->d.kh; ky++) {
    LLVMValueRef vy, sy = src_coord(cg, G, 0, ty, ky, &vy);
    LLVMBasicBlockRef after_y = vy ? cg_if_begin(cg, vy, "vy") : NULL;
    for (int kx = 0; kx < G->d.kw; kx++) {
      LLVMValueRef vx, sx = src_coord(cg, G, 1, lx.iv, kx, &vx);
      LLVMBasicBlockRef after_x = vx ? cg_if_begin(cg, vx, "vx") : NULL;
      gather_red_loop(cg, G, R, out0, sy, sx, lc.iv, ky, kx, acc);
      if (after_x) cg_if_end(cg, after_x);
    }
    if (after_y) cg_if_end(cg, after_y);
  }
  int64_t sp = G->OH * G->OW;
  LLVMValueRef pix = cg_add(cg, cg_mul(cg, ty, cg_i64(cg, G->OW)), lx.iv);
  if (!cg->nepi) {
    for (int r = 0; r < R; r++) {
      LLVMValueRef f = cg_add(cg, cg_mul(cg, cg_add(cg, out0, cg_i64(cg, r)), cg_i64(cg, sp)), pix);
      for (int v = 0; v < G->VC; v++) {
        LLVMValueRef b0 = cg_add(cg, lc.iv, cg_i64(cg, v * SNC_VW));
        cg_vstore(cg, cg_vload(cg, acc[r * 8 + v], 64), cg_gep(cg, G->out, cg_add(cg, cg_mul(cg, f, cg_i64(cg, G->bp)), b0)), 64);
      }
    }
  } else if (G->U == R * G->VC) { /* the fused epilogue over all the block's vectors side by side (see tile_block) */
    LLVMValueRef vals[64], fs[64], bvs[64];
    for (int r = 0, i = 0; r < R; r++)
      for (int v = 0; v < G->VC; v++, i++) {
        fs[i] = cg_add(cg, cg_mul(cg, cg_add(cg, out0, cg_i64(cg, r)), cg_i64(cg, sp)), pix);
        bvs[i] = cg_add(cg, lc.iv, cg_i64(cg, v * SNC_VW));
        vals[i] = cg_vload(cg, acc[r * 8 + v], 64);
      }
    cg_epilogue_n(cg, G->head, vals, fs, bvs, R * G->VC);
    for (int i = 0; i < R * G->VC; i++)
      cg_vstore(cg, vals[i], cg_gep(cg, G->out, cg_add(cg, cg_mul(cg, fs[i], cg_i64(cg, G->bp)), bvs[i])), 64);
  } else { /* the fused epilogue U vectors at a time, in a loop over a spill of the block */
    for (int r = 0; r < R; r++)
      for (int v = 0; v < G->VC; v++) {
        LLVMValueRef idx = cg_i64(cg, r * G->VC + v);
        cg_vstore(cg, cg_vload(cg, acc[r * 8 + v], 64), LLVMBuildInBoundsGEP2(cg->b, cg->vf, G->spill, &idx, 1, ""), 64);
      }
    int U = G->U;
    LLVMValueRef vals[8], fs[8], bvs[8];
    snc_cg_loop le;
    cg_loop_begin(cg, &le, cg_i64(cg, 0), cg_i64(cg, R * G->VC), U, "epi");
    for (int u = 0; u < U; u++) {
      LLVMValueRef i = cg_add(cg, le.iv, cg_i64(cg, u));
      LLVMValueRef r = LLVMBuildSDiv(cg->b, i, cg_i64(cg, G->VC), ""), v = LLVMBuildSRem(cg->b, i, cg_i64(cg, G->VC), "");
      fs[u] = cg_add(cg, cg_mul(cg, cg_add(cg, out0, r), cg_i64(cg, sp)), pix);
      bvs[u] = cg_add(cg, lc.iv, cg_mul(cg, v, cg_i64(cg, SNC_VW)));
      vals[u] = cg_vload(cg, LLVMBuildInBoundsGEP2(cg->b, cg->vf, G->spill, &i, 1, ""), 64);
    }
    cg_epilogue_n(cg, G->head, vals, fs, bvs, U);
    for (int u = 0; u < U; u++)
      cg_vstore(cg, vals[u], cg_gep(cg, G->out, cg_add(cg, cg_mul(cg, fs[u], cg_i64(cg, G->bp)), bvs[u])), 64);
    cg_loop_end(cg, &le);
  }
  cg_loop_end(cg, &lc);
  cg_loop_end(cg, &lx);
}

/* --- tile: forward and dx of convolutions, blocked over out channels x positions of one row ------
 * The accumulators are R output channels x P neighbouring positions of one produced row, for one
 * vector of 16 samples: the source vectors of one input channel and row are loaded once and serve
 * every kernel column's tap (up to R*kw FMAs each), a broadcast weight serves P. A work item is
 * (channel block, row, column block, batch vector): the block's weights stay in L1 and a thread's
 * share is a range of output channels. Along x the positions are compile-time offsets from
 * the block's first column: with one block per row (P = produced width) every tap's validity is a
 * constant; with several, every tap is valid (forward without x padding) or each column block has
 * code of its own with constant columns (padding, input gradients: blocks that divide the row). */

/* source column of produced column t (a constant) for kernel column k, or -1 if there is none */
static int64_t tile_sx(const gather *G, int64_t t, int k) {
  int64_t s = G->d.s[1], p = G->d.p[1], u;
  if (!G->dx) u = t * s + k - p;
  else {
    u = t + p - k;
    if (u < 0 || u % s) return -1;
    u /= s;
  }
  return u >= 0 && u < G->SW ? u : -1;
}

/* one block: R x P x V accumulators at row ty, then the epilogue and the stores; with vals (pooled
   in registers, tile_windows), the epilogue's values go there instead of the stores */
static void tile_block(snc_cg *cg, const gather *G, int P, LLVMValueRef out0, LLVMValueRef ty, LLVMValueRef tx0, int64_t ctx0,
                       LLVMValueRef b0, LLVMValueRef *acc, LLVMValueRef *vals_out) {
  int R = G->R, V = G->V, n = R * P * V; /* acc[(r P + p) V + v] */
  for (int r = 0; r < R; r++) {
    LLVMValueRef init = cg_vf(cg, 0);
    if (G->bias) init = cg_splat(cg, cg_load(cg, cg_gep(cg, G->bias, cg_add(cg, out0, cg_i64(cg, r)))));
    for (int i = 0; i < P * V; i++) cg_vstore(cg, init, acc[r * P * V + i], 64);
  }
  /* source column of position p for kernel column kx, as an element offset: a constant column, or
     relative to the block's first source column (forward without x padding); -1 for none */
  int64_t col[8][8];
  for (int kx = 0; kx < G->d.kw; kx++)
    for (int p = 0; p < P; p++) col[kx][p] = ctx0 >= 0 ? tile_sx(G, ctx0 + p, kx) : (int64_t)p * G->d.s[1] + kx;
  LLVMValueRef x0 = ctx0 >= 0 ? cg_i64(cg, 0) : cg_mul(cg, tx0, cg_i64(cg, G->d.s[1] * G->bp));
  int64_t plane = G->SH * G->SW * G->bp;
  for (int ky = 0; ky < G->d.kh; ky++) {
    LLVMValueRef vy, sy = src_coord(cg, G, 0, ty, ky, &vy);
    LLVMBasicBlockRef after_y = vy ? cg_if_begin(cg, vy, "vy") : NULL;
    LLVMValueRef rowbase = cg_add(cg, cg_add(cg, cg_mul(cg, sy, cg_i64(cg, G->SW * G->bp)), b0), x0);
    snc_cg_loop lr;
    cg_loop_begin(cg, &lr, cg_i64(cg, 0), cg_i64(cg, G->nred), 1, "red");
    LLVMValueRef row = cg_add(cg, cg_mul(cg, lr.iv, cg_i64(cg, plane)), rowbase), xv[24][4] = {{0}};
    LLVMValueRef wbase = cg_add(cg, cg_mul(cg, lr.iv, cg_i64(cg, G->ws_red)), cg_i64(cg, ky * G->d.kw));
    for (int kx = 0; kx < G->d.kw; kx++)
      for (int r = 0; r < R; r++) {
        LLVMValueRef wv = NULL;
        for (int p = 0; p < P; p++) {
          int64_t c = col[kx][p];
          if (c < 0) continue;
          if (!wv) {
            LLVMValueRef wi = cg_add(cg, wbase, cg_add(cg, cg_mul(cg, cg_add(cg, out0, cg_i64(cg, r)), cg_i64(cg, G->ws_out)), cg_i64(cg, kx)));
            wv = cg_splat(cg, cg_load(cg, cg_gep(cg, G->w, wi)));
          }
          for (int v = 0; v < V; v++) {
            if (!xv[c][v]) xv[c][v] = cg_vload(cg, cg_gep(cg, G->src, cg_add(cg, row, cg_i64(cg, c * G->bp + v * SNC_VW))), 64);
            LLVMValueRef a = cg_vload(cg, acc[(r * P + p) * V + v], 64);
            cg_vstore(cg, cg_fma(cg, wv, xv[c][v], a), acc[(r * P + p) * V + v], 64);
          }
        }
      }
    cg_loop_end(cg, &lr);
    if (after_y) cg_if_end(cg, after_y);
  }
  int64_t sp = G->OH * G->OW;
  LLVMValueRef pix0 = cg_add(cg, cg_mul(cg, ty, cg_i64(cg, G->OW)), tx0);
  if (vals_out && !cg->nepi) {
    for (int i = 0; i < n; i++) vals_out[i] = cg_vload(cg, acc[i], 64);
    return;
  }
  if (!cg->nepi) {
    for (int r = 0; r < R; r++)
      for (int p = 0; p < P; p++) {
        LLVMValueRef c = cg_add(cg, out0, cg_i64(cg, r)), ox = cg_add(cg, tx0, cg_i64(cg, p));
        LLVMValueRef f = cg_add(cg, cg_mul(cg, c, cg_i64(cg, sp)), cg_add(cg, pix0, cg_i64(cg, p)));
        for (int v = 0; v < V; v++)
          tile_store(cg, G, cg_vload(cg, acc[(r * P + p) * V + v], 64), f, c, ty, ox, cg_add(cg, b0, cg_i64(cg, v * SNC_VW)));
      }
    return;
  }
  /* the fused epilogue, node by node over U of the block's vectors side by side: their chains are
     independent, so they overlap instead of one vector's long dependent chain at a time. U = all:
     straight from the accumulators; else in a loop of n / U steps over a spill of the block */
  int U = G->U;
  LLVMValueRef vals[32], fs[32], bvs[32], cs[32], oxs[32];
  if (U == n || vals_out) {
    for (int i = 0; i < n; i++) {
      int r = i / (P * V), p = i / V % P, v = i % V;
      cs[i] = cg_add(cg, out0, cg_i64(cg, r)), oxs[i] = cg_add(cg, tx0, cg_i64(cg, p));
      fs[i] = cg_add(cg, cg_mul(cg, cs[i], cg_i64(cg, sp)), cg_add(cg, pix0, cg_i64(cg, p)));
      bvs[i] = cg_add(cg, b0, cg_i64(cg, v * SNC_VW));
      vals[i] = cg_vload(cg, acc[i], 64);
    }
    cg_epilogue_n(cg, G->head, vals, fs, bvs, n);
    for (int i = 0; i < n; i++) {
      if (vals_out) vals_out[i] = vals[i];
      else tile_store(cg, G, vals[i], fs[i], cs[i], ty, oxs[i], bvs[i]);
    }
    return;
  }
  SNC_ASSERT(!vals_out);
  for (int i = 0; i < n; i++) {
    LLVMValueRef idx = cg_i64(cg, i);
    cg_vstore(cg, cg_vload(cg, acc[i], 64), LLVMBuildInBoundsGEP2(cg->b, cg->vf, G->spill, &idx, 1, ""), 64);
  }
  snc_cg_loop le;
  cg_loop_begin(cg, &le, cg_i64(cg, 0), cg_i64(cg, n), U, "epi");
  for (int u = 0; u < U; u++) {
    LLVMValueRef i = cg_add(cg, le.iv, cg_i64(cg, u));
    LLVMValueRef rp = LLVMBuildSDiv(cg->b, i, cg_i64(cg, V), ""), v = LLVMBuildSRem(cg->b, i, cg_i64(cg, V), "");
    LLVMValueRef r = LLVMBuildSDiv(cg->b, rp, cg_i64(cg, P), ""), p = LLVMBuildSRem(cg->b, rp, cg_i64(cg, P), "");
    cs[u] = cg_add(cg, out0, r), oxs[u] = cg_add(cg, tx0, p);
    fs[u] = cg_add(cg, cg_mul(cg, cs[u], cg_i64(cg, sp)), cg_add(cg, pix0, p));
    bvs[u] = cg_add(cg, b0, cg_mul(cg, v, cg_i64(cg, SNC_VW)));
    vals[u] = cg_vload(cg, LLVMBuildInBoundsGEP2(cg->b, cg->vf, G->spill, &i, 1, ""), 64);
  }
  cg_epilogue_n(cg, G->head, vals, fs, bvs, U);
  for (int u = 0; u < U; u++) tile_store(cg, G, vals[u], fs[u], cs[u], ty, oxs[u], bvs[u]);
  cg_loop_end(cg, &le);
}

/* Max pooling commutes with an epilogue op that is monotone non-decreasing and reads nothing but
 * its input: tanh, relu, sigmoid, and dropout outside training (the identity). Without a side output
 * (evaluation), the kernel runs the chain up to its last other op on every element, pools, and
 * applies the rest to the pooled values only: a quarter of conv1's tanh for a 2x2 window. snc's tanh
 * (cg_vtanh) is monotone only to a few ulp (0.7% of neighbouring floats in [-9, 9] step down, by at
 * most 4.2e-7), so a pooled value may differ from the elementwise order at that level, within the
 * reference executor's tolerance. Not in training: there the argmax must be the first maximum of the
 * activation itself, and tanh ties distinct values (at 6, one float of tanh stands for inputs
 * 0.0024 apart), whose windows would route the gradient elsewhere. */
static int epilogue_before_pool(const snc_cg *cg) {
  if (cg->nside) return cg->nepi;
  int pre = cg->nepi;
  for (; pre > 0; pre--) {
    const snc_node *e = cg->g->nodes[cg->epi[pre - 1]];
    int ok = e->ninputs == 1 && (e->op == SNC_OP_DROPOUT ? !cg->training : e->op == SNC_OP_TANH || e->op == SNC_OP_RELU || e->op == SNC_OP_SIGMOID);
    if (!ok) break;
  }
  return pre;
}

/* the largest divisor of nvec up to 8: batch vectors handled side by side */
static int chunk_vectors(int nvec) {
  for (int vc = nvec < 8 ? nvec : 8; vc > 1; vc--)
    if (nvec % vc == 0) return vc;
  return 1;
}

/* the epilogue over the pooled planes of channels [out0, out0 + R): a few vectors side by side */
static void pooled_epilogue(snc_cg *cg, const gather *G, LLVMValueRef out0) {
  int head = G->pre ? cg->epi[G->pre - 1] : G->head;
  int64_t plane = (G->OH / G->pool->attr.kernel[0]) * (G->OW / G->pool->attr.kernel[1]);
  int U = chunk_vectors((int)(G->bp / SNC_VW));
  snc_cg_loop li, lb;
  cg_loop_begin(cg, &li, cg_i64(cg, 0), cg_i64(cg, G->R * plane), 1, "pooled");
  LLVMValueRef pf = cg_add(cg, cg_mul(cg, out0, cg_i64(cg, plane)), li.iv); /* channel-major pooled element */
  cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, G->bp), U * SNC_VW, "pv");
  LLVMValueRef vals[8], fs[8], bvs[8], ps[8];
  for (int u = 0; u < U; u++) {
    bvs[u] = cg_add(cg, lb.iv, cg_i64(cg, u * SNC_VW)), fs[u] = pf;
    ps[u] = cg_gep(cg, G->out, cg_add(cg, cg_mul(cg, pf, cg_i64(cg, G->bp)), bvs[u]));
    vals[u] = cg_vload(cg, ps[u], 64);
  }
  cg_epilogue_n_from(cg, G->pre, head, vals, fs, bvs, U);
  for (int u = 0; u < U; u++) cg_vstore(cg, vals[u], ps[u], 64);
  cg_loop_end(cg, &lb);
  cg_loop_end(cg, &li);
}

/* source columns an item reads: all of them (one block per row), or those of one block */
static int64_t tile_columns(const gather *G, int P) { return P == G->OW ? G->SW : (int64_t)(P - 1) * G->d.s[1] + G->d.kw; }

/* blocks of a row whose columns' validity must be constants (x padding, or an input gradient):
   P divides the row into at most this many, and each block gets code of its own */
#define TILE_EDGE_BLOCKS 4

/* does a row of P-position blocks need per-block code (tile_sx constants for every block)? */
static int tile_edges(const gather *G, int P) { return P < G->OW && (G->dx || G->d.p[1]); }

/* can a block cover P positions of a row? The whole produced row when it is short; fewer (the last
   block then starts early, as the last channel block does) where every tap of every position is
   valid (forward without x padding); or, with padding or for an input gradient, blocks that divide
   the row exactly, each emitted with its own constant columns (at most TILE_EDGE_BLOCKS) */
static int tile_ok_positions(const gather *G, int P) {
  if (P < 1 || P > 8 || P > G->OW || G->d.kw > 8) return 0;
  if (tile_edges(G, P) && (G->OW % P || G->OW / P > TILE_EDGE_BLOCKS)) return 0;
  return tile_columns(G, P) <= 24;
}

/* the default positions per block; 0: the gather path */
static int tile_positions(const gather *G) {
  int P = 0;
  if (G->OW <= 8) P = (int)G->OW;
  else if (!G->dx && !G->d.p[1]) {
    P = 6;
    for (int q = 6; q >= 4; q--)
      if (G->OW % q == 0) P = q, q = 0;
  } else { /* padded or an input gradient: the widest block that divides the row (14: 2 x 7) */
    for (int q = 8; q >= 4 && !P; q--)
      if (tile_ok_positions(G, q)) P = q;
  }
  return P && tile_ok_positions(G, P) ? P : 0;
}

/* output channels per block for P positions and V vectors: R*P*V accumulators, the source vectors
   and a broadcast within 31 registers, R chosen to waste few channels (the last block overlaps) */
static int tile_channels(const gather *G, int P, int V) {
  int64_t ncol = tile_columns(G, P);
  int cap = (int)((31 - (ncol < P ? P : ncol)) / (P * V)), best = 1;
  if (cap < 1) cap = 1;
  if (cap > G->nout) cap = (int)G->nout;
  for (int R = 1; R <= cap; R++) {
    int64_t cost = (G->nout + R - 1) / R * (R * P + 4), bcost = (G->nout + best - 1) / best * (best * P + 4);
    if (cost <= bcost) best = R;
  }
  return best;
}

/* the default epilogue step for a block of n vectors: the largest divisor of n up to 8 (measured on
   a Sapphire Rapids core: 8 or 6 chains side by side beat 1 and all 18 or 24, by 6-10%) */
static int epi_step(int n) {
  for (int u = n < 8 ? n : 8; u > 1; u--)
    if (n % u == 0) return u;
  return 1;
}

/* a tile schedule; u = 0: the default epilogue step */
static snc_cg_schedule tile_sched(int epi, int R, int P, int V, int order, int u) {
  return (snc_cg_schedule){SNC_SCHED_TILE, R, P, V, order, !epi ? 1 : u ? u : epi_step(R * P * V)};
}

/* the tile schedules worth timing for this shape, the default first */
static int tile_candidates(const gather *G, int P0, int epi, snc_cg_schedule *c, int max) {
  int nvec = G->bp / SNC_VW, n = 0, R0 = tile_channels(G, P0, 1);
  n = cg_sched_add(c, n, max, tile_sched(epi, R0, P0, 1, 0, 0));
  n = cg_sched_add(c, n, max, tile_sched(epi, R0, P0, 1, 0, 1));       /* the epilogue one vector at a time */
  n = cg_sched_add(c, n, max, tile_sched(epi, R0, P0, 1, 0, R0 * P0)); /* or all at once */
  n = cg_sched_add(c, n, max, tile_sched(epi, R0, P0, 1, 1, 0));
  for (int R = R0 - 1; R >= 1 && R >= R0 - 2; R--) n = cg_sched_add(c, n, max, tile_sched(epi, R, P0, 1, 0, 0));
  if (nvec >= 2) {
    int R = tile_channels(G, P0, 2);
    if (R * P0 * 2 <= 32) n = cg_sched_add(c, n, max, tile_sched(epi, R, P0, 2, 0, 0));
  }
  static const int other[] = {4, 6, 8, 3, 2};
  for (int k = 0, added = 0; k < 5 && added < 2; k++) {
    int P = other[k];
    if (P == P0 || !tile_ok_positions(G, P) || (G->OW % P && G->OW > P)) continue;
    n = cg_sched_add(c, n, max, tile_sched(epi, tile_channels(G, P, 1), P, 1, 0, 0));
    added++;
  }
  return n;
}

static int tile_valid(const gather *G, const snc_cg_schedule *s) {
  return s->kind == SNC_SCHED_TILE && tile_ok_positions(G, s->p) && s->r >= 1 && s->r <= G->nout && s->v >= 1 &&
         s->v <= 4 && s->v <= G->bp / SNC_VW && s->r * s->p * s->v <= 32 && s->u >= 1 && (s->r * s->p * s->v) % s->u == 0;
}

/* Pooled, with windows inside the blocks (tile_fold): the block at the ky rows of window row py, one
 * after the other, each value folded into its window's maximum in registers, "the first, then each
 * greater one" in row-major order as tile_store's, the rest of the chain on the maxima, and one store
 * per window (and its argmax, compact), instead of a load, a compare and a store per element. */
static void tile_windows(snc_cg *cg, const gather *G, int P, LLVMValueRef out0, LLVMValueRef py, LLVMValueRef tx0, int64_t ctx0,
                         LLVMValueRef b0, LLVMValueRef *acc, int nepi) {
  int R = G->R, V = G->V, ky = (int)G->pool->attr.kernel[0], kx = (int)G->pool->attr.kernel[1], nw = R * (P / kx) * V;
  int64_t PH = G->OH / ky, PW = G->OW / kx, sp = G->OH * G->OW;
  LLVMValueRef m[32], at[32], vals[32];
  for (int j = 0; j < ky; j++) {
    LLVMValueRef ty = cg_add(cg, cg_mul(cg, py, cg_i64(cg, ky)), cg_i64(cg, j));
    tile_block(cg, G, P, out0, ty, tx0, ctx0, b0, acc, vals);
    for (int i = 0; i < R * P * V; i++) { /* acc[(r P + p) V + v] */
      int r = i / (P * V), p = i / V % P, v = i % V, w = (r * (P / kx) + p / kx) * V + v, e = j * kx + p % kx;
      LLVMValueRef x = vals[i];
      if (G->keep && !G->compact) { /* the activation too (a side output) */
        LLVMValueRef f = cg_add(cg, cg_mul(cg, cg_add(cg, out0, cg_i64(cg, r)), cg_i64(cg, sp)),
                                cg_add(cg, cg_mul(cg, ty, cg_i64(cg, G->OW)), cg_add(cg, tx0, cg_i64(cg, p))));
        cg_vstore(cg, x, cg_gep(cg, G->keep, cg_add(cg, cg_mul(cg, f, cg_i64(cg, G->bp)), cg_add(cg, b0, cg_i64(cg, v * SNC_VW)))), 64);
      }
      if (!e) {
        m[w] = x, at[w] = cg_splat(cg, LLVMConstInt(cg->i8, 0, 0));
        continue;
      }
      LLVMValueRef gt = LLVMBuildFCmp(cg->b, LLVMRealOGT, x, m[w], "");
      m[w] = LLVMBuildSelect(cg->b, gt, x, m[w], ""); /* cg_fmax(m, x) */
      if (G->compact) at[w] = LLVMBuildSelect(cg->b, gt, cg_splat(cg, LLVMConstInt(cg->i8, (unsigned)e, 0)), at[w], "");
    }
  }
  LLVMValueRef fs[32], bs[32], ats[32];
  for (int w = 0; w < nw; w++) {
    int r = w / ((P / kx) * V), q = w / V % (P / kx), v = w % V;
    LLVMValueRef px = cg_add(cg, LLVMBuildUDiv(cg->b, tx0, cg_i64(cg, kx), ""), cg_i64(cg, q));
    fs[w] = cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, cg_add(cg, out0, cg_i64(cg, r)), cg_i64(cg, PH)), py), cg_i64(cg, PW)), px);
    bs[w] = cg_add(cg, b0, cg_i64(cg, v * SNC_VW));
    ats[w] = cg_add(cg, cg_mul(cg, fs[w], cg_i64(cg, G->bp)), bs[w]);
  }
  int pre = cg->nepi;
  cg->nepi = nepi;
  if (pre < nepi) cg_epilogue_n_from(cg, pre, pre ? cg->epi[pre - 1] : G->head, m, fs, bs, nw);
  cg->nepi = pre;
  for (int w = 0; w < nw; w++) {
    cg_vstore(cg, m[w], cg_gep(cg, G->out, ats[w]), 64);
    if (G->compact) cg_compact_store(cg, G->keep, ats[w], at[w]);
  }
}

/* can blocks of R x P x V hold whole pooling windows? Column blocks that start at multiples of the
   window's width (P divides the row), the window's rows in one work item (the row loop steps over
   windows); the epilogue then runs on the whole block at once, straight from the accumulators */
static int tile_fold(const gather *G, int R, int P, int V) {
  if (!G->pool) return 0;
  int64_t ky = G->pool->attr.kernel[0], kx = G->pool->attr.kernel[1];
  return G->OW % P == 0 && P % kx == 0 && G->OH % ky == 0 && R * P * V <= 32;
}

static void emit_tile(snc_cg *cg, gather *G, int P) {
  int64_t ntx = (G->OW + P - 1) / P, nblk = (G->nout + G->R - 1) / G->R, nvec = G->bp / SNC_VW;
  int64_t nvb = (nvec + G->V - 1) / G->V;
  LLVMValueRef acc[32];
  int nepi = cg->nepi; /* pooled: the blocks run the chain's first G->pre nodes and pool, pooled_epilogue does the rest */
  if (G->pool) cg->nepi = G->pre;
  int fold = tile_fold(G, G->R, P, G->V);
  for (int i = 0; i < G->R * P * G->V; i++) acc[i] = cg_alloca(cg, cg->vf, "acc");
  if (cg->nepi && G->U < G->R * P * G->V) G->spill = cg_alloca(cg, LLVMArrayType(cg->vf, (unsigned)(G->R * P * G->V)), "spill");
  LLVMValueRef lo, hi;
  snc_cg_loop li, lpy, lpx, lpv;
  LLVMValueRef vb, rest, txb, ty, blk;
  if (G->pool) { /* pooled: a thread takes whole channel blocks (R divides the channels: no overlap),
                    rows in order, so a window is one thread's and its first element comes first */
    SNC_ASSERT(G->nout % G->R == 0);
    cg_partition(cg, nblk, &lo, &hi);
    cg_loop_begin(cg, &li, lo, hi, 1, "blk");
    blk = li.iv;
    /* folded: the loop is over rows of windows, ty the first row */
    cg_loop_begin(cg, &lpy, cg_i64(cg, 0), cg_i64(cg, fold ? G->OH / G->pool->attr.kernel[0] : G->OH), 1, "ty");
    ty = lpy.iv;
    cg_loop_begin(cg, &lpx, cg_i64(cg, 0), cg_i64(cg, ntx), 1, "txb");
    txb = lpx.iv;
    cg_loop_begin(cg, &lpv, cg_i64(cg, 0), cg_i64(cg, nvb), 1, "vb");
    vb = lpv.iv;
  } else {
    cg_partition(cg, nvb * G->OH * ntx * nblk, &lo, &hi);
    cg_loop_begin(cg, &li, lo, hi, 1, "item");
    /* order 0: batch vectors innermost, channel blocks outermost: a thread's share is a range of
       output channels, as the pooling and elementwise kernels that read them split their work;
       order 1: channel blocks innermost (a block of sources serves every channel block from L1) */
    if (G->order) {
      blk = LLVMBuildSRem(cg->b, li.iv, cg_i64(cg, nblk), "blk"), rest = LLVMBuildSDiv(cg->b, li.iv, cg_i64(cg, nblk), "");
      vb = LLVMBuildSRem(cg->b, rest, cg_i64(cg, nvb), "vb"), rest = LLVMBuildSDiv(cg->b, rest, cg_i64(cg, nvb), "");
      txb = LLVMBuildSRem(cg->b, rest, cg_i64(cg, ntx), "txb"), ty = LLVMBuildSDiv(cg->b, rest, cg_i64(cg, ntx), "ty");
    } else {
      vb = LLVMBuildSRem(cg->b, li.iv, cg_i64(cg, nvb), "vb"), rest = LLVMBuildSDiv(cg->b, li.iv, cg_i64(cg, nvb), "");
      txb = LLVMBuildSRem(cg->b, rest, cg_i64(cg, ntx), "txb"), rest = LLVMBuildSDiv(cg->b, rest, cg_i64(cg, ntx), "");
      ty = LLVMBuildSRem(cg->b, rest, cg_i64(cg, G->OH), "ty"), blk = LLVMBuildSDiv(cg->b, rest, cg_i64(cg, G->OH), "blk");
    }
  }
  LLVMValueRef out0 = cg_mul(cg, blk, cg_i64(cg, G->R)), maxo = cg_i64(cg, G->nout - G->R);
  out0 = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGT, out0, maxo, ""), maxo, out0, "out0");
  LLVMValueRef tx0 = cg_mul(cg, txb, cg_i64(cg, P)), maxx = cg_i64(cg, G->OW - P);
  tx0 = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGT, tx0, maxx, ""), maxx, tx0, "tx0");
  if (ntx == 1) tx0 = cg_i64(cg, 0);
  /* the last vector block starts early too (it recomputes vectors of the one before, same bits) */
  LLVMValueRef v0 = cg_mul(cg, vb, cg_i64(cg, G->V)), maxv = cg_i64(cg, nvec - G->V);
  v0 = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGT, v0, maxv, ""), maxv, v0, "v0");
  LLVMValueRef bv0 = cg_mul(cg, v0, cg_i64(cg, SNC_VW));
  if (!tile_edges(G, P)) {
    if (fold) tile_windows(cg, G, P, out0, ty, tx0, ntx == 1 ? 0 : -1, bv0, acc, nepi);
    else tile_block(cg, G, P, out0, ty, tx0, ntx == 1 ? 0 : -1, bv0, acc, NULL);
  } else { /* one copy of the block per column block, each with constant columns */
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "txdone");
    LLVMValueRef sw = LLVMBuildSwitch(cg->b, txb, done, (unsigned)ntx);
    for (int64_t t = 0; t < ntx; t++) {
      LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "txblock");
      LLVMAddCase(sw, cg_i64(cg, t), bb);
      LLVMPositionBuilderAtEnd(cg->b, bb);
      if (fold) tile_windows(cg, G, P, out0, ty, cg_i64(cg, t * P), t * P, bv0, acc, nepi);
      else tile_block(cg, G, P, out0, ty, cg_i64(cg, t * P), t * P, bv0, acc, NULL);
      LLVMBuildBr(cg->b, done);
    }
    LLVMPositionBuilderAtEnd(cg->b, done);
  }
  if (G->pool) {
    cg_loop_end(cg, &lpv);
    cg_loop_end(cg, &lpx);
    cg_loop_end(cg, &lpy);
    cg->nepi = nepi;
    /* the block's windows are all complete (out0 of the rows is not in scope here; R divides the channels) */
    if (G->pre < nepi && !fold) pooled_epilogue(cg, G, cg_mul(cg, blk, cg_i64(cg, G->R)));
  }
  cg_loop_end(cg, &li);
}

/* the produced and read sizes and the weight strides of a forward (dx 0) or input-gradient kernel */
static gather gather_geometry(const snc_graph *g, const snc_node *n, int dx) {
  gather G = {.dx = dx, .d = cg_conv_dims(g, n)};
  if (!dx) {
    G.nout = G.d.O, G.nred = G.d.C, G.SH = G.d.H, G.SW = G.d.W, G.OH = G.d.OH, G.OW = G.d.OW;
    G.ws_out = G.d.C * G.d.kh * G.d.kw, G.ws_red = G.d.kh * G.d.kw;
  } else {
    G.nout = G.d.C, G.nred = G.d.O, G.SH = G.d.OH, G.SW = G.d.OW, G.OH = G.d.H, G.OW = G.d.W;
    G.ws_out = G.d.kh * G.d.kw, G.ws_red = G.d.C * G.d.kh * G.d.kw;
  }
  return G;
}

/* Does the convolution or input gradient n, its chain ending in pool (or NULL), run as Winograd? wd:
   the convolution Winograd computes (an input gradient: dy with the weights transposed and turned,
   padding 2 - p) */
static int wino_runs(const snc_graph *g, const snc_node *n, const snc_node *pool, int direct_conv, conv_dims *wd) {
  int dx = n->op == SNC_OP_CONV2D_DX;
  conv_dims d = cg_conv_dims(g, n);
  *wd = d;
  if (dx) {
    wd->C = d.O, wd->H = d.OH, wd->W = d.OW, wd->O = d.C, wd->OH = d.H, wd->OW = d.W;
    wd->p[0] = d.kh - 1 - d.p[0], wd->p[1] = d.kw - 1 - d.p[1];
  }
  return (n->op == SNC_OP_CONV2D || dx) && !direct_conv && (!dx || d.s[0] * d.s[1] == 1) && cg_wino_ok(wd, pool);
}

int64_t cg_node_scratch(const snc_graph *g, const int *into, int node, int direct_conv) {
  if (into[node] != node) return 0; /* not a kernel's node */
  int head = node; /* the chain's first member (emit_range in cg_module.c) */
  for (int m = 0; m < node && head == node; m++)
    if (snc_fuse_root(into, m) == node) head = m;
  const snc_node *h = g->nodes[head], *r = g->nodes[node];
  if (r->op == SNC_OP_CONV2D_DW) return cg_dw_scratch(g, into, node, direct_conv); /* it is its kernel's head too */
  if (h->op != SNC_OP_CONV2D && h->op != SNC_OP_CONV2D_DX) return 0;
  conv_dims wd;
  const snc_node *pool = head != node && r->op == SNC_OP_MAXPOOL2D ? r : NULL; /* emit_conv's G.pool */
  return wino_runs(g, h, pool, direct_conv, &wd) ? cg_wino_scratch(&wd) : 0;
}

static void emit_gather(snc_cg *cg, const snc_node *n, int dx) {
  gather G = gather_geometry(cg->g, n, dx);
  G.bp = cg->lay->bp;
  int nvec = G.bp / SNC_VW;
  G.VC = chunk_vectors(nvec);
  G.src = cg_node_ptr(cg, n->inputs[0]);
  if (!dx) G.bias = n->ninputs == 3 ? cg_node_ptr(cg, n->inputs[2]) : NULL;
  G.w = cg_node_ptr(cg, n->inputs[1]);
  G.head = n->id;
  G.out = cg_node_ptr(cg, cg_out_node(cg, n->id));
  char dims[128], shape[256];
  snprintf(dims, sizeof dims, "%lldx%lldx%lld>%lldx%lldx%lld k%dx%d s%dx%d p%dx%d", (long long)G.d.C, (long long)G.d.H,
           (long long)G.d.W, (long long)G.d.O, (long long)G.d.OH, (long long)G.d.OW, G.d.kh, G.d.kw, G.d.s[0], G.d.s[1],
           G.d.p[0], G.d.p[1]);
  cg_sched_shape(cg, n, dims, shape, sizeof shape);
  snc_cg_schedule c[16];
  int P = G.d.kh * G.d.kw > 1 ? tile_positions(&G) : 0;
  /* a chain ending in a max pooling (the fusion pass): the kernel stores the pooled tensor and, in a
     training graph, the pooling's input (a side output); the elementwise rest is the epilogue */
  SNC_ASSERT(cg->nside == 0 || (cg->nepi && cg->g->nodes[cg->epi[cg->nepi - 1]]->op == SNC_OP_MAXPOOL2D));
  if (cg->nepi && cg->g->nodes[cg->epi[cg->nepi - 1]]->op == SNC_OP_MAXPOOL2D) {
    SNC_ASSERT(P && !dx && cg->nside <= 1);
    G.pool = cg->g->nodes[cg->epi[--cg->nepi]];
    G.out = cg_node_ptr(cg, G.pool->id);
    if (cg->nside) { /* the pooling's input: the last node of the rest */
      SNC_ASSERT(cg->side[0] == G.pool->inputs[0] && cg->side[0] == cg_out_node(cg, n->id));
      G.keep = cg_node_ptr(cg, cg->side[0]);
      G.compact = cg_compact(cg, cg->side[0]);
    }
    G.pre = epilogue_before_pool(cg);
  }
  /* Winograd (emit_wino.c): a forward convolution, or an input gradient as the convolution of dy
     with the weights transposed and turned (padding 2 - p) */
  conv_dims wd;
  if (wino_runs(cg->g, n, G.pool, cg->direct_conv, &wd)) {
    int root = snc_fuse_root(cg->into, n->id); /* the plan gave its kernel the scratch (the same decision) */
    SNC_ASSERT(cg->lay->scratch_bytes[root] > 0 && cg->lay->scratch_bytes[root] >= cg_node_scratch(cg->g, cg->into, root, cg->direct_conv));
    cg_wino W = {.d = wd, .bp = G.bp, .head = n->id, .root = root, .x = G.src, .w = G.w, .bias = G.bias, .out = G.out,
                 .pool = G.pool, .keep = G.keep, .compact = G.compact, .pre = G.pre, .shape = shape, .dx = dx};
    cg_wino_emit(cg, &W);
    if (G.pool) cg->nepi++;
    return;
  }
  if (P) {
    int nc = tile_candidates(&G, P, cg->nepi > 0, c, 16);
    if (G.pool) { /* whole channel blocks per thread: block sizes that divide the channels */
      snc_cg_schedule d[16];
      int nd = 0;
      for (int k = 0; k < nc; k++) {
        snc_cg_schedule s = c[k];
        while (G.nout % s.r) s.r--;
        if (s.u > 1 && (s.r * s.p * s.v) % s.u) s.u = epi_step(s.r * s.p * s.v);
        if (tile_fold(&G, s.r, s.p, s.v)) s.u = s.r * s.p * s.v; /* the whole block's epilogue at once */
        nd = cg_sched_add(d, nd, 16, s);
      }
      memcpy(c, d, sizeof d);
      nc = nd;
    }
    snc_cg_schedule s = cg_sched_choose(cg, shape, c, nc);
    SNC_ASSERT(tile_valid(&G, &s) && (!G.pool || G.nout % s.r == 0));
    G.R = s.r, G.V = s.v, G.order = s.order, G.U = s.u;
    emit_tile(cg, &G, s.p);
    if (G.pool) cg->nepi++; /* the chain as the kernel's name and key count it */
    return;
  }
  int nc = 0;
  int vcs[3] = {G.VC, 1, 1}; /* batch vectors per block: the default, the next divisor of the batch's vectors, 1 */
  for (int d = G.VC - 1; d > 1 && vcs[1] == 1; d--)
    if (nvec % d == 0) vcs[1] = d;
  for (int k = 0; k < 3; k++) {
    int vc = vcs[k];
    int R = 24 / vc > 8 ? 8 : 24 / vc < 1 ? 1 : 24 / vc;
    if (R > G.nout) R = (int)G.nout;
    /* the epilogue u of a block's vectors at a time (see tile_block) */
#define GS(r_) (snc_cg_schedule){SNC_SCHED_GATHER, (r_), 1, vc, 0, cg->nepi ? epi_step((r_) * vc) : 1}
    nc = cg_sched_add(c, nc, 16, GS(R));
    if (!k && cg->nepi) nc = cg_sched_add(c, nc, 16, (snc_cg_schedule){SNC_SCHED_GATHER, R, 1, vc, 0, 1});
    if (!k && cg->nepi) nc = cg_sched_add(c, nc, 16, (snc_cg_schedule){SNC_SCHED_GATHER, R, 1, vc, 0, R * vc});
    if (!k)
      for (int r = R - 1; r >= 1 && r >= R - 2; r--) nc = cg_sched_add(c, nc, 16, GS(r));
    if (!k && R < 8 && (R + 1) * vc <= 28 && R + 1 <= G.nout) nc = cg_sched_add(c, nc, 16, GS(R + 1));
#undef GS
  }
  snc_cg_schedule s = cg_sched_choose(cg, shape, c, nc);
  SNC_ASSERT(s.kind == SNC_SCHED_GATHER && s.r >= 1 && s.r <= 8 && s.r <= G.nout && s.v >= 1 && s.v <= 8 && nvec % s.v == 0 &&
             s.u >= 1 && (s.r * s.v) % s.u == 0 && (s.u <= 8 || s.u == s.r * s.v));
  G.R = s.r, G.VC = s.v, G.U = s.u;
  int64_t nblk = (G.nout + G.R - 1) / G.R;
  LLVMValueRef acc[64];
  for (int i = 0; i < 64; i++) acc[i] = NULL;
  for (int r = 0; r < G.R; r++)
    for (int v = 0; v < G.VC; v++) acc[r * 8 + v] = cg_alloca(cg, cg->vf, "acc");
  if (cg->nepi && G.U < G.R * G.VC) G.spill = cg_alloca(cg, LLVMArrayType(cg->vf, (unsigned)(G.R * G.VC)), "spill");
  /* work items: (block, produced row) */
  LLVMValueRef lo, hi;
  cg_partition(cg, nblk * G.OH, &lo, &hi);
  snc_cg_loop li;
  cg_loop_begin(cg, &li, lo, hi, 1, "item");
  LLVMValueRef blk = LLVMBuildSDiv(cg->b, li.iv, cg_i64(cg, G.OH), "blk");
  LLVMValueRef ty = LLVMBuildSRem(cg->b, li.iv, cg_i64(cg, G.OH), "ty");
  /* the last block starts early enough to stay in range: it recomputes a few channels of the
     block before it, with identical results, instead of needing a second code path */
  LLVMValueRef out0 = cg_mul(cg, blk, cg_i64(cg, G.R));
  LLVMValueRef maxo = cg_i64(cg, G.nout - G.R);
  out0 = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGT, out0, maxo, ""), maxo, out0, "out0");
  gather_block(cg, &G, G.R, out0, ty, acc);
  cg_loop_end(cg, &li);
}

int snc_cg_conv_tiles(const snc_graph *g, const snc_node *n) {
  if (n->op != SNC_OP_CONV2D) return 0;
  gather G = gather_geometry(g, n, 0);
  return G.d.kh * G.d.kw > 1 && tile_positions(&G) > 0; /* as emit_gather chooses */
}

int snc_cg_emit_conv(snc_cg *cg, const snc_node *n, LLVMValueRef *ks) {
  char name[96];
  snprintf(name, sizeof name, "%s.%s", snc_op_name(n->op), n->name);
  ks[0] = cg_kernel_begin(cg, name);
  switch (n->op) {
  case SNC_OP_CONV2D: case SNC_OP_LINEAR: emit_gather(cg, n, 0); break;
  case SNC_OP_CONV2D_DX: case SNC_OP_LINEAR_DX: emit_gather(cg, n, 1); break;
  default: SNC_ASSERT(!cg->nepi || n->op == SNC_OP_CONV2D_DW); cg_emit_dw(cg, n); break; /* dw: a prologue */
  }
  cg_kernel_end(cg);
  return 1;
}
