/* Softmax, losses and batch normalisation on the batch-innermost layout. Losses are computed by
 * thread 0 in a fixed order over features and lanes below nb; their gradients are zero in the
 * padding lanes, which keeps every backward tensor zero there. */
#include "codegen/emit.h"

static LLVMValueRef vadd(snc_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(cg->b, a, b, ""); }
static LLVMValueRef vsub(snc_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(cg->b, a, b, ""); }
static LLVMValueRef vmul(snc_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(cg->b, a, b, ""); }
static LLVMValueRef vdiv(snc_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFDiv(cg->b, a, b, ""); }
static LLVMValueRef row(snc_cg *cg, LLVMValueRef base, LLVMValueRef f, LLVMValueRef b) {
  return cg_gep(cg, base, cg_add(cg, cg_mul(cg, f, cg_i64(cg, cg->lay->bp)), b));
}
static LLVMValueRef masked(snc_cg *cg, LLVMValueRef v, LLVMValueRef b0) {
  return LLVMBuildSelect(cg->b, cg_lane_mask(cg, b0), v, cg_vf(cg, 0), "");
}
static LLVMValueRef nbf(snc_cg *cg) { return LLVMBuildSIToFP(cg->b, cg_nb(cg), cg->f32, ""); }

/* --- softmax family: items are (outer, inner) positions, the axis is reduced per lane --- */
int snc_cg_emit_softmax(snc_cg *cg, const snc_node *n, LLVMValueRef *ks) {
  const snc_graph *g = cg->g;
  const snc_node *x = g->nodes[n->inputs[0]];
  int ax = n->attr.axis;
  int64_t A = x->shape.dim[ax], inner = 1, outer = 1;
  for (int i = ax + 1; i < x->shape.rank; i++) inner *= x->shape.dim[i];
  for (int i = 1; i < ax; i++) outer *= x->shape.dim[i];
  char name[96];
  snprintf(name, sizeof name, "%s.%s", snc_op_name(n->op), n->name);
  ks[0] = cg_kernel_begin(cg, name);
  LLVMValueRef in0 = cg_node_ptr(cg, n->inputs[0]), out = cg_node_ptr(cg, n->id);
  LLVMValueRef in1 = n->ninputs > 1 ? cg_node_ptr(cg, n->inputs[1]) : NULL;
  LLVMValueRef m = cg_alloca(cg, cg->vf, "m"), s = cg_alloca(cg, cg->vf, "s"), lo, hi;
  cg_partition(cg, outer * inner, &lo, &hi);
  snc_cg_loop li, lb, la;
  cg_loop_begin(cg, &li, lo, hi, 1, "item");
  LLVMValueRef o = LLVMBuildSDiv(cg->b, li.iv, cg_i64(cg, inner), ""), in = LLVMBuildSRem(cg->b, li.iv, cg_i64(cg, inner), "");
  LLVMValueRef f0 = cg_add(cg, cg_mul(cg, o, cg_i64(cg, A * inner)), in);
  cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, cg->lay->bp), SNC_VW, "b");
#define F(a) cg_add(cg, f0, cg_mul(cg, (a), cg_i64(cg, inner)))
  if (n->op == SNC_OP_SOFTMAX || n->op == SNC_OP_LOG_SOFTMAX) {
    cg_vstore(cg, cg_vload(cg, row(cg, in0, f0, lb.iv), 64), m, 64);
    cg_loop_begin(cg, &la, cg_i64(cg, 1), cg_i64(cg, A), 1, "a");
    cg_vstore(cg, cg_fmax(cg, cg_vload(cg, m, 64), cg_vload(cg, row(cg, in0, F(la.iv), lb.iv), 64)), m, 64);
    cg_loop_end(cg, &la);
    LLVMValueRef mv = cg_vload(cg, m, 64);
    cg_vstore(cg, cg_vf(cg, 0), s, 64);
    cg_loop_begin(cg, &la, cg_i64(cg, 0), cg_i64(cg, A), 1, "a");
    LLVMValueRef e = cg_vexp(cg, vsub(cg, cg_vload(cg, row(cg, in0, F(la.iv), lb.iv), 64), mv));
    if (n->op == SNC_OP_SOFTMAX) cg_vstore(cg, e, row(cg, out, F(la.iv), lb.iv), 64);
    cg_vstore(cg, vadd(cg, cg_vload(cg, s, 64), e), s, 64);
    cg_loop_end(cg, &la);
    LLVMValueRef sv = cg_vload(cg, s, 64);
    LLVMValueRef ls = cg_vlog(cg, sv), inv = vdiv(cg, cg_vf(cg, 1), sv);
    cg_loop_begin(cg, &la, cg_i64(cg, 0), cg_i64(cg, A), 1, "a");
    LLVMValueRef p = row(cg, out, F(la.iv), lb.iv);
    if (n->op == SNC_OP_SOFTMAX) cg_vstore(cg, vmul(cg, cg_vload(cg, p, 64), inv), p, 64);
    else cg_vstore(cg, vsub(cg, vsub(cg, cg_vload(cg, row(cg, in0, F(la.iv), lb.iv), 64), mv), ls), p, 64);
    cg_loop_end(cg, &la);
  } else { /* softmax_dx(y, dy) = y (dy - sum y dy); log_softmax_dx(y, dy) = dy - exp(y) sum dy */
    int lsm = n->op == SNC_OP_LOG_SOFTMAX_DX;
    cg_vstore(cg, cg_vf(cg, 0), s, 64);
    cg_loop_begin(cg, &la, cg_i64(cg, 0), cg_i64(cg, A), 1, "a");
    LLVMValueRef dy = cg_vload(cg, row(cg, in1, F(la.iv), lb.iv), 64);
    LLVMValueRef t = lsm ? dy : vmul(cg, cg_vload(cg, row(cg, in0, F(la.iv), lb.iv), 64), dy);
    cg_vstore(cg, vadd(cg, cg_vload(cg, s, 64), t), s, 64);
    cg_loop_end(cg, &la);
    LLVMValueRef sv = cg_vload(cg, s, 64);
    cg_loop_begin(cg, &la, cg_i64(cg, 0), cg_i64(cg, A), 1, "a");
    LLVMValueRef y = cg_vload(cg, row(cg, in0, F(la.iv), lb.iv), 64), dy2 = cg_vload(cg, row(cg, in1, F(la.iv), lb.iv), 64);
    LLVMValueRef r = lsm ? vsub(cg, dy2, vmul(cg, cg_vexp(cg, y), sv)) : vmul(cg, y, vsub(cg, dy2, sv));
    cg_vstore(cg, r, row(cg, out, F(la.iv), lb.iv), 64);
    cg_loop_end(cg, &la);
  }
#undef F
  cg_loop_end(cg, &lb);
  cg_loop_end(cg, &li);
  cg_kernel_end(cg);
  return 1;
}

/* --- losses --- */
/* max(log v, -100) with C's fmax semantics: a NaN log (v < 0 or v NaN) gives -100, as the reference */
static LLVMValueRef clamp_log(snc_cg *cg, LLVMValueRef v) {
  LLVMValueRef l = cg_vlog(cg, v);
  return LLVMBuildSelect(cg->b, LLVMBuildFCmp(cg->b, LLVMRealOGT, l, cg_vf(cg, -100.0f), ""), l, cg_vf(cg, -100.0f), "");
}

int snc_cg_emit_loss(snc_cg *cg, const snc_node *n, LLVMValueRef *ks) {
  const snc_graph *g = cg->g;
  int64_t bp = cg->lay->bp;
  const snc_node *z = g->nodes[n->inputs[0]];
  int64_t F = cg_per_sample(g, z->id);
  char name[96];
  snprintf(name, sizeof name, "%s.%s", snc_op_name(n->op), n->name);
  ks[0] = cg_kernel_begin(cg, name);
  LLVMValueRef zp = cg_node_ptr(cg, n->inputs[0]), tp = cg_node_ptr(cg, n->inputs[1]), out = cg_node_ptr(cg, n->id);
  LLVMValueRef acc = cg_alloca(cg, cg->vf, "acc");
  snc_cg_loop lf, lb, lc;
  int ce = n->op == SNC_OP_CROSS_ENTROPY || n->op == SNC_OP_CROSS_ENTROPY_DX;
  LLVMValueRef count = ce ? nbf(cg) : vmul(cg, nbf(cg), cg_f32(cg, (float)F));
  if (n->op == SNC_OP_BCE || n->op == SNC_OP_BCE_LOGITS || n->op == SNC_OP_CROSS_ENTROPY) {
    LLVMBasicBlockRef after = cg_if_begin(cg, LLVMBuildICmp(cg->b, LLVMIntEQ, cg->tid, cg_i64(cg, 0), ""), "t0");
    cg_vstore(cg, cg_vf(cg, 0), acc, 64);
    if (!ce) {
      cg_loop_begin(cg, &lf, cg_i64(cg, 0), cg_i64(cg, F), 1, "f");
      cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, bp), SNC_VW, "b");
      LLVMValueRef zv = cg_vload(cg, row(cg, zp, lf.iv, lb.iv), 64), tv = cg_vload(cg, row(cg, tp, lf.iv, lb.iv), 64), term;
      if (n->op == SNC_OP_BCE) { /* -(t log p + (1-t) log(1-p)) */
        term = vadd(cg, vmul(cg, tv, clamp_log(cg, zv)), vmul(cg, vsub(cg, cg_vf(cg, 1), tv), clamp_log(cg, vsub(cg, cg_vf(cg, 1), zv))));
        term = LLVMBuildFNeg(cg->b, term, "");
      } else { /* max(z,0) - z t + log(1 + exp(-|z|)) */
        LLVMValueRef az = cg_call_intrinsic(cg, "llvm.fabs", cg->vf, &zv, 1);
        term = vadd(cg, vsub(cg, cg_fmax(cg, zv, cg_vf(cg, 0)), vmul(cg, zv, tv)),
                    cg_vlog(cg, vadd(cg, cg_vf(cg, 1), cg_vexp(cg, LLVMBuildFNeg(cg->b, az, "")))));
      }
      cg_vstore(cg, vadd(cg, cg_vload(cg, acc, 64), masked(cg, term, lb.iv)), acc, 64);
      cg_loop_end(cg, &lb);
      cg_loop_end(cg, &lf);
    } else { /* per lane: log(sum exp(z - m)) + m - z[label]; out-of-range labels add 0 */
      int64_t C = F;
      LLVMValueRef m = cg_alloca(cg, cg->vf, "m"), s = cg_alloca(cg, cg->vf, "s"), zl = cg_alloca(cg, cg->vf, "zl");
      cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, bp), SNC_VW, "b");
      LLVMValueRef lab = LLVMBuildBitCast(cg->b, cg_vload(cg, cg_gep(cg, tp, lb.iv), 64), cg->vi32, "");
      cg_vstore(cg, cg_vload(cg, row(cg, zp, cg_i64(cg, 0), lb.iv), 64), m, 64);
      cg_vstore(cg, cg_vf(cg, 0), s, 64);
      cg_vstore(cg, cg_vf(cg, 0), zl, 64);
      cg_loop_begin(cg, &lc, cg_i64(cg, 1), cg_i64(cg, C), 1, "c");
      cg_vstore(cg, cg_fmax(cg, cg_vload(cg, m, 64), cg_vload(cg, row(cg, zp, lc.iv, lb.iv), 64)), m, 64);
      cg_loop_end(cg, &lc);
      LLVMValueRef mv = cg_vload(cg, m, 64);
      cg_loop_begin(cg, &lc, cg_i64(cg, 0), cg_i64(cg, C), 1, "c");
      LLVMValueRef zc = cg_vload(cg, row(cg, zp, lc.iv, lb.iv), 64);
      cg_vstore(cg, vadd(cg, cg_vload(cg, s, 64), cg_vexp(cg, vsub(cg, zc, mv))), s, 64);
      LLVMValueRef hit = LLVMBuildICmp(cg->b, LLVMIntEQ, lab, cg_splat(cg, LLVMBuildTrunc(cg->b, lc.iv, cg->i32, "")), "");
      cg_vstore(cg, LLVMBuildSelect(cg->b, hit, zc, cg_vload(cg, zl, 64), ""), zl, 64);
      cg_loop_end(cg, &lc);
      LLVMValueRef inr = LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGE, lab, cg_splat(cg, cg_i32(cg, 0)), ""),
                                      LLVMBuildICmp(cg->b, LLVMIntSLT, lab, cg_splat(cg, cg_i32(cg, (int32_t)C)), ""), "");
      LLVMValueRef term = vsub(cg, vadd(cg, cg_vlog(cg, cg_vload(cg, s, 64)), mv), cg_vload(cg, zl, 64));
      term = LLVMBuildSelect(cg->b, inr, term, cg_vf(cg, 0), "");
      cg_vstore(cg, vadd(cg, cg_vload(cg, acc, 64), masked(cg, term, lb.iv)), acc, 64);
      cg_loop_end(cg, &lb);
    }
    LLVMValueRef total = cg_hsum(cg, cg_vload(cg, acc, 64));
    cg_store(cg, LLVMBuildFDiv(cg->b, total, count, ""), out);
    cg_if_end(cg, after);
  } else { /* gradients with respect to input 0, zero in the padding lanes */
    LLVMValueRef dyv = cg_splat(cg, cg_load(cg, cg_node_ptr(cg, n->inputs[2])));
    LLVMValueRef cnt = cg_splat(cg, count), lo, hi;
    if (!ce) {
      cg_partition(cg, F, &lo, &hi);
      cg_loop_begin(cg, &lf, lo, hi, 1, "f");
      cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, bp), SNC_VW, "b");
      LLVMValueRef zv = cg_vload(cg, row(cg, zp, lf.iv, lb.iv), 64), tv = cg_vload(cg, row(cg, tp, lf.iv, lb.iv), 64), r;
      if (n->op == SNC_OP_BCE_DX) { /* dy (p - t) / max((1-p) p, 1e-12) / n */
        LLVMValueRef den = cg_fmax(cg, vmul(cg, vsub(cg, cg_vf(cg, 1), zv), zv), cg_vf(cg, 1e-12f));
        r = vdiv(cg, vdiv(cg, vmul(cg, dyv, vsub(cg, zv, tv)), den), cnt);
      } else { /* dy / n (sigmoid(z) - t) */
        r = vmul(cg, vdiv(cg, dyv, cnt), vsub(cg, cg_vsigmoid(cg, zv), tv));
      }
      cg_vstore(cg, masked(cg, r, lb.iv), row(cg, out, lf.iv, lb.iv), 64);
      cg_loop_end(cg, &lb);
      cg_loop_end(cg, &lf);
    } else { /* dy / nb (softmax(z) - onehot(label)); lanes are independent: split them */
      int64_t C = F, nvec = bp / SNC_VW;
      LLVMValueRef m = cg_alloca(cg, cg->vf, "m"), s = cg_alloca(cg, cg->vf, "s");
      cg_partition(cg, nvec, &lo, &hi);
      cg_loop_begin(cg, &lb, lo, hi, 1, "bv");
      LLVMValueRef b0 = cg_mul(cg, lb.iv, cg_i64(cg, SNC_VW));
      LLVMValueRef lab = LLVMBuildBitCast(cg->b, cg_vload(cg, cg_gep(cg, tp, b0), 64), cg->vi32, "");
      cg_vstore(cg, cg_vload(cg, row(cg, zp, cg_i64(cg, 0), b0), 64), m, 64);
      cg_loop_begin(cg, &lc, cg_i64(cg, 1), cg_i64(cg, C), 1, "c");
      cg_vstore(cg, cg_fmax(cg, cg_vload(cg, m, 64), cg_vload(cg, row(cg, zp, lc.iv, b0), 64)), m, 64);
      cg_loop_end(cg, &lc);
      LLVMValueRef mv = cg_vload(cg, m, 64);
      cg_vstore(cg, cg_vf(cg, 0), s, 64);
      cg_loop_begin(cg, &lc, cg_i64(cg, 0), cg_i64(cg, C), 1, "c");
      cg_vstore(cg, vadd(cg, cg_vload(cg, s, 64), cg_vexp(cg, vsub(cg, cg_vload(cg, row(cg, zp, lc.iv, b0), 64), mv))), s, 64);
      cg_loop_end(cg, &lc);
      LLVMValueRef sv = cg_vload(cg, s, 64), scale = vdiv(cg, dyv, cnt);
      LLVMValueRef inr = LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGE, lab, cg_splat(cg, cg_i32(cg, 0)), ""),
                                      LLVMBuildICmp(cg->b, LLVMIntSLT, lab, cg_splat(cg, cg_i32(cg, (int32_t)C)), ""), "");
      LLVMValueRef live = LLVMBuildAnd(cg->b, inr, cg_lane_mask(cg, b0), "");
      cg_loop_begin(cg, &lc, cg_i64(cg, 0), cg_i64(cg, C), 1, "c");
      LLVMValueRef p = vdiv(cg, cg_vexp(cg, vsub(cg, cg_vload(cg, row(cg, zp, lc.iv, b0), 64), mv)), sv);
      LLVMValueRef hit = LLVMBuildICmp(cg->b, LLVMIntEQ, lab, cg_splat(cg, LLVMBuildTrunc(cg->b, lc.iv, cg->i32, "")), "");
      LLVMValueRef r = vmul(cg, scale, vsub(cg, p, LLVMBuildSelect(cg->b, hit, cg_vf(cg, 1), cg_vf(cg, 0), "")));
      cg_vstore(cg, LLVMBuildSelect(cg->b, live, r, cg_vf(cg, 0), ""), row(cg, out, lc.iv, b0), 64);
      cg_loop_end(cg, &lc);
      cg_loop_end(cg, &lb);
    }
  }
  cg_kernel_end(cg);
  return 1;
}

/* --- batch normalisation: one channel per work item --- */
int snc_cg_emit_norm(snc_cg *cg, const snc_node *n, LLVMValueRef *ks) {
  const snc_graph *g = cg->g;
  const snc_node *x = g->nodes[n->inputs[0]];
  int64_t C = x->shape.dim[1], inner = cg_per_sample(g, x->id) / C, bp = cg->lay->bp;
  char name[96];
  snprintf(name, sizeof name, "%s.%s", snc_op_name(n->op), n->name);
  ks[0] = cg_kernel_begin(cg, name);
  /* batchnorm may head a fused chain (its last pass stores the chain's root, e.g. batchnorm+relu) */
  LLVMValueRef xp = cg_node_ptr(cg, n->inputs[0]), out = cg_node_ptr(cg, cg_out_node(cg, n->id)), lo, hi;
  LLVMValueRef acc = cg_alloca(cg, cg->vf, "acc"), acc2 = cg_alloca(cg, cg->vf, "acc2");
  LLVMValueRef cnt = vmul(cg, nbf(cg), cg_f32(cg, (float)inner));
  cg_partition(cg, C, &lo, &hi);
  snc_cg_loop lc, li, lb;
  cg_loop_begin(cg, &lc, lo, hi, 1, "c");
  LLVMValueRef f0 = cg_mul(cg, lc.iv, cg_i64(cg, inner));
#define EACH_BEGIN                                                     \
  cg_loop_begin(cg, &li, cg_i64(cg, 0), cg_i64(cg, inner), 1, "i");   \
  cg_loop_begin(cg, &lb, cg_i64(cg, 0), cg_i64(cg, bp), SNC_VW, "b"); \
  {                                                                    \
  LLVMValueRef f = cg_add(cg, f0, li.iv);                              \
  (void)f;
#define EACH_END          \
  }                       \
  cg_loop_end(cg, &lb);   \
  cg_loop_end(cg, &li);
  /* batch statistics (training and all gradients), two passes over the lanes below nb */
  LLVMValueRef mean = NULL, var = NULL;
  int stats = n->op != SNC_OP_BATCHNORM || cg->training;
  if (stats) {
    cg_vstore(cg, cg_vf(cg, 0), acc, 64);
    EACH_BEGIN
    cg_vstore(cg, vadd(cg, cg_vload(cg, acc, 64), masked(cg, cg_vload(cg, row(cg, xp, f, lb.iv), 64), lb.iv)), acc, 64);
    EACH_END
    mean = LLVMBuildFDiv(cg->b, cg_hsum(cg, cg_vload(cg, acc, 64)), cnt, "mean");
    cg_vstore(cg, cg_vf(cg, 0), acc, 64);
    EACH_BEGIN
    LLVMValueRef d = vsub(cg, cg_vload(cg, row(cg, xp, f, lb.iv), 64), cg_splat(cg, mean));
    cg_vstore(cg, vadd(cg, cg_vload(cg, acc, 64), masked(cg, vmul(cg, d, d), lb.iv)), acc, 64);
    EACH_END
    var = LLVMBuildFDiv(cg->b, cg_hsum(cg, cg_vload(cg, acc, 64)), cnt, "var");
  }
  LLVMValueRef eps = cg_f32(cg, n->attr.eps);
  if (n->op == SNC_OP_BATCHNORM) {
    LLVMValueRef gp = cg_node_ptr(cg, n->inputs[1]), bpp = cg_node_ptr(cg, n->inputs[2]);
    LLVMValueRef rm = cg_gep(cg, cg_node_ptr(cg, n->inputs[3]), lc.iv), rv = cg_gep(cg, cg_node_ptr(cg, n->inputs[4]), lc.iv);
    if (cg->training) {
      LLVMValueRef mom = cg_f32(cg, n->attr.momentum), keep = cg_f32(cg, 1.0f - n->attr.momentum);
      cg_store(cg, LLVMBuildFAdd(cg->b, LLVMBuildFMul(cg->b, keep, cg_load(cg, rm), ""), LLVMBuildFMul(cg->b, mom, mean, ""), ""), rm);
      LLVMValueRef unb = LLVMBuildSelect(cg->b, LLVMBuildFCmp(cg->b, LLVMRealOGT, cnt, cg_f32(cg, 1), ""),
                                         LLVMBuildFDiv(cg->b, LLVMBuildFMul(cg->b, var, cnt, ""), LLVMBuildFSub(cg->b, cnt, cg_f32(cg, 1), ""), ""), var, "");
      cg_store(cg, LLVMBuildFAdd(cg->b, LLVMBuildFMul(cg->b, keep, cg_load(cg, rv), ""), LLVMBuildFMul(cg->b, mom, unb, ""), ""), rv);
    } else {
      mean = cg_load(cg, rm);
      var = cg_load(cg, rv);
    }
    LLVMValueRef sq = LLVMBuildFAdd(cg->b, var, eps, "");
    LLVMValueRef invstd = LLVMBuildFDiv(cg->b, cg_f32(cg, 1), cg_call_intrinsic(cg, "llvm.sqrt", cg->f32, &sq, 1), "");
    LLVMValueRef scale = cg_splat(cg, LLVMBuildFMul(cg->b, invstd, cg_load(cg, cg_gep(cg, gp, lc.iv)), ""));
    LLVMValueRef shift = cg_splat(cg, cg_load(cg, cg_gep(cg, bpp, lc.iv)));
    EACH_BEGIN
    LLVMValueRef v = vsub(cg, cg_vload(cg, row(cg, xp, f, lb.iv), 64), cg_splat(cg, mean));
    LLVMValueRef y = vadd(cg, vmul(cg, v, scale), shift);
    if (cg->nepi) y = cg_epilogue(cg, n->id, y, f, lb.iv);
    cg_vstore(cg, y, row(cg, out, f, lb.iv), 64);
    EACH_END
  } else {
    LLVMValueRef dyp = cg_node_ptr(cg, n->inputs[n->op == SNC_OP_BATCHNORM_DX ? 2 : 1]);
    LLVMValueRef sq = LLVMBuildFAdd(cg->b, var, eps, "");
    LLVMValueRef invstd = LLVMBuildFDiv(cg->b, cg_f32(cg, 1), cg_call_intrinsic(cg, "llvm.sqrt", cg->f32, &sq, 1), "");
    LLVMValueRef mv = cg_splat(cg, mean), iv = cg_splat(cg, invstd);
    cg_vstore(cg, cg_vf(cg, 0), acc, 64);
    cg_vstore(cg, cg_vf(cg, 0), acc2, 64);
    EACH_BEGIN
    LLVMValueRef dy = masked(cg, cg_vload(cg, row(cg, dyp, f, lb.iv), 64), lb.iv);
    LLVMValueRef xh = vmul(cg, vsub(cg, cg_vload(cg, row(cg, xp, f, lb.iv), 64), mv), iv);
    cg_vstore(cg, vadd(cg, cg_vload(cg, acc, 64), dy), acc, 64);
    cg_vstore(cg, vadd(cg, cg_vload(cg, acc2, 64), vmul(cg, dy, xh)), acc2, 64);
    EACH_END
    LLVMValueRef sdy = cg_hsum(cg, cg_vload(cg, acc, 64)), sdyx = cg_hsum(cg, cg_vload(cg, acc2, 64));
    if (n->op == SNC_OP_BATCHNORM_DGAMMA) {
      cg_store(cg, sdyx, cg_gep(cg, out, lc.iv));
    } else { /* gamma invstd / m (m dy - sum dy - xhat sum dy xhat), zero in the padding lanes */
      for (int k = 0; k < cg->nside; k++) { /* the gamma gradient as a side output (fuse.c) */
        SNC_ASSERT(g->nodes[cg->side[k]]->op == SNC_OP_BATCHNORM_DGAMMA);
        cg_store(cg, sdyx, cg_gep(cg, cg_node_ptr(cg, cg->side[k]), lc.iv));
      }
      LLVMValueRef gam = cg_load(cg, cg_gep(cg, cg_node_ptr(cg, n->inputs[1]), lc.iv));
      LLVMValueRef k = cg_splat(cg, LLVMBuildFDiv(cg->b, LLVMBuildFMul(cg->b, gam, invstd, ""), cnt, ""));
      LLVMValueRef m = cg_splat(cg, cnt), sv = cg_splat(cg, sdy), sxv = cg_splat(cg, sdyx);
      EACH_BEGIN
      LLVMValueRef dy = cg_vload(cg, row(cg, dyp, f, lb.iv), 64);
      LLVMValueRef xh = vmul(cg, vsub(cg, cg_vload(cg, row(cg, xp, f, lb.iv), 64), mv), iv);
      LLVMValueRef r = vmul(cg, k, vsub(cg, vsub(cg, vmul(cg, m, dy), sv), vmul(cg, xh, sxv)));
      cg_vstore(cg, masked(cg, r, lb.iv), row(cg, out, f, lb.iv), 64);
      EACH_END
    }
  }
#undef EACH_BEGIN
#undef EACH_END
  cg_loop_end(cg, &lc);
  cg_kernel_end(cg);
  return 1;
}
