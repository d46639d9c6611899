/* Pooling kernels on [C][H][W][Bp]: work items are channels x output rows (forward) or channels
 * (gradients, which zero a channel's plane and add each window's contribution in a fixed order). */
#include "codegen/emit.h"

typedef struct pool_dims {
  int64_t C, H, W, OH, OW;
  int k[2], s[2], p[2];
} pool_dims;

static pool_dims pdims(const snc_graph *g, const snc_node *n) {
  const snc_node *x = n->op == SNC_OP_MAXPOOL2D || n->op == SNC_OP_AVGPOOL2D ? g->nodes[n->inputs[0]] : n;
  const snc_node *y = n->op == SNC_OP_MAXPOOL2D || n->op == SNC_OP_AVGPOOL2D ? n : g->nodes[n->inputs[n->op == SNC_OP_MAXPOOL2D_DX ? 1 : 0]];
  pool_dims d = {x->shape.dim[1], x->shape.dim[2], x->shape.dim[3], y->shape.dim[2], y->shape.dim[3], {0}, {0}, {0}};
  for (int i = 0; i < 2; i++) d.k[i] = n->attr.kernel[i], d.s[i] = n->attr.stride[i], d.p[i] = n->attr.pad[i];
  return d;
}

/* visits the valid window positions of output (oy, ox): calls fn with the input offset (iy*W+ix) */
typedef void (*visit_fn)(snc_cg *cg, void *ctx, LLVMValueRef pos, int first);
static void window(snc_cg *cg, const pool_dims *d, LLVMValueRef oy, LLVMValueRef ox, visit_fn fn, void *ctx) {
  int first = 1;
  for (int ky = 0; ky < d->k[0]; ky++) {
    LLVMValueRef iy = cg_add(cg, cg_mul(cg, oy, cg_i64(cg, d->s[0])), cg_i64(cg, ky - d->p[0]));
    LLVMBasicBlockRef ay = NULL;
    if (d->p[0]) ay = cg_if_begin(cg, LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGE, iy, cg_i64(cg, 0), ""),
                                                   LLVMBuildICmp(cg->b, LLVMIntSLT, iy, cg_i64(cg, d->H), ""), ""), "iy");
    for (int kx = 0; kx < d->k[1]; kx++) {
      LLVMValueRef ix = cg_add(cg, cg_mul(cg, ox, cg_i64(cg, d->s[1])), cg_i64(cg, kx - d->p[1]));
      LLVMBasicBlockRef ax = NULL;
      if (d->p[1]) ax = cg_if_begin(cg, LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGE, ix, cg_i64(cg, 0), ""),
                                                     LLVMBuildICmp(cg->b, LLVMIntSLT, ix, cg_i64(cg, d->W), ""), ""), "ix");
      fn(cg, ctx, cg_add(cg, cg_mul(cg, iy, cg_i64(cg, d->W)), ix), first && !d->p[0] && !d->p[1]);
      first = 0;
      if (ax) cg_if_end(cg, ax);
    }
    if (ay) cg_if_end(cg, ay);
  }
}

typedef struct wctx {
  LLVMValueRef x, acc, plane_base, b, dy, taken, maxv, dx;
  LLVMValueRef feat0; /* feature index of the plane's first position (fused epilogues) */
  int64_t bp;
  int avg, head;
  LLVMValueRef idx; /* compact x (snc_fuse_compact): each lane's argmax position in the window */
  int xnode, e;     /* x's node, and the position being visited */
} wctx;

static LLVMValueRef at(snc_cg *cg, wctx *w, LLVMValueRef base, LLVMValueRef pos) {
  return cg_gep(cg, base, cg_add(cg, cg_add(cg, w->plane_base, cg_mul(cg, pos, cg_i64(cg, w->bp))), w->b));
}

static void visit_reduce(snc_cg *cg, void *c, LLVMValueRef pos, int first) {
  wctx *w = c;
  LLVMValueRef v = cg_vload(cg, at(cg, w, w->x, pos), 64);
  if (first) { cg_vstore(cg, v, w->acc, 64); return; }
  LLVMValueRef a = cg_vload(cg, w->acc, 64);
  cg_vstore(cg, w->avg ? LLVMBuildFAdd(cg->b, a, v, "") : cg_fmax(cg, a, v), w->acc, 64);
}

/* max gradient: the first position equal to the window's maximum takes dy */
static void visit_maxgrad(snc_cg *cg, void *c, LLVMValueRef pos, int first) {
  (void)first;
  wctx *w = c;
  LLVMValueRef v = cg_vload(cg, at(cg, w, w->x, pos), 64);
  LLVMValueRef taken = LLVMBuildLoad2(cg->b, cg->vi1, w->taken, "");
  LLVMValueRef eq = LLVMBuildAnd(cg->b, LLVMBuildFCmp(cg->b, LLVMRealOEQ, v, w->maxv, ""), LLVMBuildNot(cg->b, taken, ""), "");
  LLVMValueRef p = at(cg, w, w->dx, pos);
  cg_vstore(cg, LLVMBuildFAdd(cg->b, cg_vload(cg, p, 64), LLVMBuildSelect(cg->b, eq, w->dy, cg_vf(cg, 0), ""), ""), p, 64);
  LLVMBuildStore(cg->b, LLVMBuildOr(cg->b, taken, eq, ""), w->taken);
}

/* non-overlapping windows: every position is written exactly once, so store instead of adding; a
 * fused elementwise chain (tanh_dx, dropout_dx) runs on the value before the store */
static void visit_maxgrad_store(snc_cg *cg, void *c, LLVMValueRef pos, int first) {
  (void)first;
  wctx *w = c;
  LLVMValueRef v = cg_vload(cg, at(cg, w, w->x, pos), 64);
  LLVMValueRef taken = LLVMBuildLoad2(cg->b, cg->vi1, w->taken, "");
  LLVMValueRef eq = LLVMBuildAnd(cg->b, LLVMBuildFCmp(cg->b, LLVMRealOEQ, v, w->maxv, ""), LLVMBuildNot(cg->b, taken, ""), "");
  LLVMValueRef g = LLVMBuildSelect(cg->b, eq, w->dy, cg_vf(cg, 0), "");
  if (cg->nepi) g = cg_epilogue(cg, w->head, g, cg_add(cg, w->feat0, pos), w->b);
  cg_vstore(cg, g, at(cg, w, w->dx, pos), 64);
  LLVMBuildStore(cg->b, LLVMBuildOr(cg->b, taken, eq, ""), w->taken);
}

/* the same from a compact x: dy to the recorded argmax, whose activation, the window's maximum (the
 * pooled x), the chain reads in place of x (every other element's value is zero, which the chain
 * keeps) */
static void visit_maxgrad_compact(snc_cg *cg, void *c, LLVMValueRef pos, int first) {
  (void)first;
  wctx *w = c;
  LLVMValueRef eq = LLVMBuildICmp(cg->b, LLVMIntEQ, w->idx, cg_splat(cg, LLVMConstInt(cg->i8, (unsigned)w->e++, 0)), "");
  LLVMValueRef g = LLVMBuildSelect(cg->b, eq, w->dy, cg_vf(cg, 0), "");
  cg->subst_node = w->xnode, cg->subst_val = w->maxv;
  if (cg->nepi) g = cg_epilogue(cg, w->head, g, cg_add(cg, w->feat0, pos), w->b);
  cg->subst_val = NULL;
  cg_vstore(cg, g, at(cg, w, w->dx, pos), 64);
}

static void visit_avggrad(snc_cg *cg, void *c, LLVMValueRef pos, int first) {
  (void)first;
  wctx *w = c;
  LLVMValueRef p = at(cg, w, w->dx, pos);
  cg_vstore(cg, LLVMBuildFAdd(cg->b, cg_vload(cg, p, 64), w->dy, ""), p, 64);
}

int snc_cg_emit_pool(snc_cg *cg, const snc_node *n, LLVMValueRef *ks) {
  const snc_graph *g = cg->g;
  pool_dims d = pdims(g, n);
  int64_t bp = cg->lay->bp, iplane = d.H * d.W * bp, oplane = d.OH * d.OW * bp;
  int avg = n->op == SNC_OP_AVGPOOL2D || n->op == SNC_OP_AVGPOOL2D_DX;
  float inv = 1.0f / (float)(d.k[0] * d.k[1]);
  char name[96];
  snprintf(name, sizeof name, "%s.%s", snc_op_name(n->op), n->name);
  ks[0] = cg_kernel_begin(cg, name);
  wctx w = {.bp = bp, .avg = avg, .acc = cg_alloca(cg, cg->vf, "acc"), .taken = cg_alloca(cg, cg->vi1, "taken")};
  LLVMValueRef lo, hi;
  snc_cg_loop lc, ly, lx, lb;
  if (n->op == SNC_OP_MAXPOOL2D || n->op == SNC_OP_AVGPOOL2D) {
    w.x = cg_node_ptr(cg, n->inputs[0]);
    LLVMValueRef out = cg_node_ptr(cg, n->id);
    cg_partition(cg, d.C * d.OH, &lo, &hi);
    cg_loop_begin(cg, &lc, lo, hi, 1, "item");
    LLVMValueRef c = LLVMBuildSDiv(cg->b, lc.iv, cg_i64(cg, d.OH), ""), oy = LLVMBuildSRem(cg->b, lc.iv, cg_i64(cg, d.OH), "");
    w.plane_base = cg_mul(cg, c, cg_i64(cg, iplane));
    cg_loop_begin(cg, &lx, cg_i64(cg, 0), cg_i64(cg, d.OW), 1, "ox");
    cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, bp), SNC_VW, "b");
    w.b = lb.iv;
    cg_vstore(cg, cg_vf(cg, avg ? 0.0f : -__builtin_inff()), w.acc, 64);
    window(cg, &d, oy, lx.iv, visit_reduce, &w);
    LLVMValueRef r = cg_vload(cg, w.acc, 64);
    if (avg) r = LLVMBuildFMul(cg->b, r, cg_vf(cg, inv), "");
    LLVMValueRef oi = cg_add(cg, cg_add(cg, cg_mul(cg, c, cg_i64(cg, oplane)), cg_mul(cg, cg_add(cg, cg_mul(cg, oy, cg_i64(cg, d.OW)), lx.iv), cg_i64(cg, bp))), lb.iv);
    cg_vstore(cg, r, cg_gep(cg, out, oi), 64);
    cg_loop_end(cg, &lb);
    cg_loop_end(cg, &lx);
    cg_loop_end(cg, &lc);
  } else { /* gradients: per channel, zero the plane, then add every window's share */
    int maxg = n->op == SNC_OP_MAXPOOL2D_DX;
    w.x = maxg ? cg_node_ptr(cg, n->inputs[0]) : NULL;
    LLVMValueRef dyp = cg_node_ptr(cg, n->inputs[maxg ? 1 : 0]);
    w.dx = cg_node_ptr(cg, cg_out_node(cg, n->id));
    w.head = n->id;
    cg_partition(cg, d.C, &lo, &hi);
    cg_loop_begin(cg, &lc, lo, hi, 1, "c");
    w.plane_base = cg_mul(cg, lc.iv, cg_i64(cg, iplane));
    w.feat0 = cg_mul(cg, lc.iv, cg_i64(cg, d.H * d.W));
    /* windows that tile the plane without overlap or padding write each position once */
    int tiled = maxg && d.k[0] == d.s[0] && d.k[1] == d.s[1] && !d.p[0] && !d.p[1] && d.OH * d.k[0] == d.H &&
                d.OW * d.k[1] == d.W;
    SNC_ASSERT(tiled || !cg->nepi); /* the fusion pass only fuses into the tiled case */
    if (!tiled) {
      snc_cg_loop lz;
      cg_loop_begin(cg, &lz, cg_i64(cg, 0), cg_i64(cg, iplane), SNC_VW, "z");
      cg_vstore(cg, cg_vf(cg, 0), cg_gep(cg, w.dx, cg_add(cg, w.plane_base, lz.iv)), 64);
      cg_loop_end(cg, &lz);
    }
    cg_loop_begin(cg, &ly, cg_i64(cg, 0), cg_i64(cg, d.OH), 1, "oy");
    cg_loop_begin(cg, &lx, cg_i64(cg, 0), cg_i64(cg, d.OW), 1, "ox");
    cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, bp), SNC_VW, "b");
    w.b = lb.iv;
    LLVMValueRef oi = cg_add(cg, cg_add(cg, cg_mul(cg, lc.iv, cg_i64(cg, oplane)), cg_mul(cg, cg_add(cg, cg_mul(cg, ly.iv, cg_i64(cg, d.OW)), lx.iv), cg_i64(cg, bp))), lb.iv);
    w.dy = cg_vload(cg, cg_gep(cg, dyp, oi), 64);
    if (maxg && cg_compact(cg, n->inputs[0])) {
      SNC_ASSERT(tiled);
      w.xnode = n->inputs[0], w.e = 0;
      w.idx = cg_compact_load(cg, w.xnode, oi, &w.maxv);
      window(cg, &d, ly.iv, lx.iv, visit_maxgrad_compact, &w);
    } else if (maxg) {
      cg_vstore(cg, cg_vf(cg, -__builtin_inff()), w.acc, 64);
      w.avg = 0;
      window(cg, &d, ly.iv, lx.iv, visit_reduce, &w);
      w.maxv = cg_vload(cg, w.acc, 64);
      LLVMBuildStore(cg->b, LLVMConstNull(cg->vi1), w.taken);
      window(cg, &d, ly.iv, lx.iv, tiled ? visit_maxgrad_store : visit_maxgrad, &w);
    } else {
      w.dy = LLVMBuildFMul(cg->b, w.dy, cg_vf(cg, inv), "");
      window(cg, &d, ly.iv, lx.iv, visit_avggrad, &w);
    }
    cg_loop_end(cg, &lb);
    cg_loop_end(cg, &lx);
    cg_loop_end(cg, &ly);
    cg_loop_end(cg, &lc);
  }
  cg_kernel_end(cg);
  return 1;
}
