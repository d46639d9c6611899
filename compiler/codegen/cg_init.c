/* P_init(arena, seed): the parameter initialisation entry point of a compiled model.
 *
 * It produces exactly what the reference executor's snc_init_fill gives (runtime/backend/exec.c): every PARAM
 * node drawn from its init spec with the stream snc_seed_derive(seed, snc_name_hash(name)) —
 * splitmix64 (include/snc/rng.h), uniforms with 24 random bits, normals by Box-Muller in double
 * (libm's log and cos, only declared when a model has a normal init) — constants copied from a
 * module global, and the workspace [persistent_bytes, arena_bytes) zeroed. The arithmetic is the
 * C code's, operation for operation and without fast-math flags, so the values are bit for bit
 * the same. With embedded weights P_init ignores the seed and copies one constant blob over the
 * persistent region instead.
 *
 * One table row per node, one loop: {arena offset, elements, kind, stream key} (i64) and {a, b}
 * (float). Single-threaded: it runs once per model. */
#include <string.h>

#include "codegen/cg.h"
#include "codegen/cg_export.h"
#include "snc/rng.h"

enum { ROW_ZEROS, ROW_CONSTANT, ROW_UNIFORM, ROW_NORMAL, ROW_COPY };

static LLVMValueRef const_global(snc_cg *cg, const char *name, LLVMValueRef init, unsigned align) {
  LLVMValueRef gl = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), name);
  LLVMSetInitializer(gl, init);
  LLVMSetGlobalConstant(gl, 1);
  LLVMSetLinkage(gl, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(gl, LLVMGlobalUnnamedAddr);
  LLVMSetAlignment(gl, align);
  return gl;
}

static LLVMValueRef mix64(snc_cg *cg, LLVMValueRef z) {
  LLVMBuilderRef b = cg->b;
  z = LLVMBuildMul(b, LLVMBuildXor(b, z, LLVMBuildLShr(b, z, cg_i64(cg, 30), ""), ""), cg_i64(cg, (int64_t)0xBF58476D1CE4E5B9ull), "");
  z = LLVMBuildMul(b, LLVMBuildXor(b, z, LLVMBuildLShr(b, z, cg_i64(cg, 27), ""), ""), cg_i64(cg, (int64_t)0x94D049BB133111EBull), "");
  return LLVMBuildXor(b, z, LLVMBuildLShr(b, z, cg_i64(cg, 31), ""), "");
}

/* snc_rng_next on the state in *st (an alloca) */
static LLVMValueRef rng_next(snc_cg *cg, LLVMValueRef st) {
  LLVMValueRef s = LLVMBuildAdd(cg->b, LLVMBuildLoad2(cg->b, cg->i64, st, ""), cg_i64(cg, (int64_t)0x9E3779B97F4A7C15ull), "");
  LLVMBuildStore(cg->b, s, st);
  return mix64(cg, s);
}

static LLVMValueRef libm(snc_cg *cg, const char *name, LLVMValueRef x) {
  LLVMTypeRef ft = LLVMFunctionType(cg->f64, &cg->f64, 1, 0);
  LLVMValueRef f = LLVMGetNamedFunction(cg->mod, name);
  if (!f) f = LLVMAddFunction(cg->mod, name, ft);
  return LLVMBuildCall2(cg->b, ft, f, &x, 1, "");
}

/* for (i = 0; i < n; i++) dst[i] = value(i) for one row kind */
static void fill_loop(snc_cg *cg, int kind, LLVMValueRef dst, LLVMValueRef n, LLVMValueRef a, LLVMValueRef bb,
                      LLVMValueRef st) {
  LLVMBuilderRef b = cg->b;
  snc_cg_loop l;
  cg_loop_begin(cg, &l, cg_i64(cg, 0), n, 1, "i");
  LLVMValueRef v;
  if (kind == ROW_CONSTANT) {
    v = a;
  } else if (kind == ROW_UNIFORM) { /* a + (b - a) * ((next >> 40) * 2^-24) */
    LLVMValueRef u = LLVMBuildUIToFP(b, LLVMBuildLShr(b, rng_next(cg, st), cg_i64(cg, 40), ""), cg->f32, "");
    u = LLVMBuildFMul(b, u, cg_f32(cg, 0x1.0p-24f), "u");
    v = LLVMBuildFAdd(b, a, LLVMBuildFMul(b, LLVMBuildFSub(b, bb, a, ""), u, ""), "");
  } else { /* normal: a + b * (float)(sqrt(-2 log u1) * cos(2 pi u2)) */
    LLVMValueRef r1 = LLVMBuildLShr(b, rng_next(cg, st), cg_i64(cg, 11), "");
    LLVMValueRef u1 = LLVMBuildFAdd(b, LLVMBuildUIToFP(b, r1, cg->f64, ""), LLVMConstReal(cg->f64, 1.0), "");
    u1 = LLVMBuildFMul(b, u1, LLVMConstReal(cg->f64, 0x1.0p-53), "u1");
    LLVMValueRef r2 = LLVMBuildLShr(b, rng_next(cg, st), cg_i64(cg, 11), "");
    LLVMValueRef u2 = LLVMBuildFMul(b, LLVMBuildUIToFP(b, r2, cg->f64, ""), LLVMConstReal(cg->f64, 0x1.0p-53), "u2");
    LLVMValueRef rad = LLVMBuildFMul(b, LLVMConstReal(cg->f64, -2.0), libm(cg, "log", u1), "");
    rad = cg_call_intrinsic(cg, "llvm.sqrt", cg->f64, &rad, 1);
    LLVMValueRef ang = LLVMBuildFMul(b, LLVMConstReal(cg->f64, 2.0 * 3.14159265358979323846), u2, "");
    LLVMValueRef z = LLVMBuildFPTrunc(b, LLVMBuildFMul(b, rad, libm(cg, "cos", ang), ""), cg->f32, "z");
    v = LLVMBuildFAdd(b, a, LLVMBuildFMul(b, bb, z, ""), "");
  }
  LLVMBuildStore(b, v, cg_gep(cg, dst, l.iv));
  cg_loop_end(cg, &l);
}

int snc_cg_emit_init(snc_cg *cg, snc_program *p, const void *blob, snc_error *err) {
  (void)err;
  const snc_graph *g = cg->g;
  const snc_layout *lay = &p->layout;
  char name[160];
  snprintf(name, sizeof name, "%s_init", p->prefix);
  LLVMTypeRef pt[2] = {cg->ptr, cg->i64};
  LLVMValueRef fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->voidt, pt, 2, 0));
  cg->fn = fn;
  LLVMBuilderRef b = cg->b;
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
  LLVMValueRef arena = LLVMGetParam(fn, 0), seed = LLVMGetParam(fn, 1);
  int64_t persist = lay->persistent_bytes, work = lay->arena_bytes - persist;
  if (work > 0) { /* the workspace starts zeroed, as the JIT's fresh arena */
    LLVMValueRef at = cg_i64(cg, persist);
    LLVMBuildMemSet(b, LLVMBuildInBoundsGEP2(b, cg->i8, arena, &at, 1, ""), LLVMConstInt(cg->i8, 0, 0), cg_i64(cg, work), 64);
  }
  if (blob) { /* embedded weights: one copy of the whole persistent region */
    if (persist > 0) {
      snprintf(name, sizeof name, "%s.weights", p->prefix);
      LLVMValueRef w = const_global(cg, name, LLVMConstStringInContext(cg->ctx, blob, (unsigned)persist, 1), 64);
      LLVMBuildMemCpy(b, arena, 64, w, 64, cg_i64(cg, persist));
    }
    LLVMBuildRetVoid(b);
    return 0;
  }
  /* the rows: parameters from their specs, constants from one blob of their values */
  int nrows = 0;
  int64_t const_elems = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *n = g->nodes[i];
    if (n->op == SNC_OP_PARAM) nrows++;
    if (n->op == SNC_OP_CONST) nrows++, const_elems += snc_shape_numel(&n->shape);
  }
  if (nrows == 0) {
    LLVMBuildRetVoid(b);
    return 0;
  }
  LLVMValueRef *iv = malloc((size_t)nrows * 4 * sizeof *iv), *fv = malloc((size_t)nrows * 2 * sizeof *fv);
  LLVMValueRef *cv = malloc((size_t)(const_elems ? const_elems : 1) * sizeof *cv);
  SNC_ASSERT(iv && fv && cv);
  int r = 0, has_normal = 0;
  int64_t ce = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *n = g->nodes[i];
    if (n->op != SNC_OP_PARAM && n->op != SNC_OP_CONST) continue;
    int64_t numel = snc_shape_numel(&n->shape), kind, key = 0;
    float a = 0, bv = 0;
    SNC_ASSERT(lay->offset[i] >= 0 && lay->offset[i] + numel * 4 <= persist);
    if (n->op == SNC_OP_CONST) {
      kind = ROW_COPY;
      key = ce * 4; /* byte offset in the constants blob */
      for (int64_t k = 0; k < numel; k++) cv[ce++] = cg_f32(cg, n->value[k]);
    } else {
      kind = n->init.kind == SNC_INIT_ZEROS ? ROW_ZEROS : n->init.kind == SNC_INIT_CONSTANT ? ROW_CONSTANT
             : n->init.kind == SNC_INIT_UNIFORM ? ROW_UNIFORM : ROW_NORMAL;
      has_normal |= kind == ROW_NORMAL;
      key = (int64_t)snc_mix64(snc_name_hash(n->name)); /* snc_seed_derive(seed, h) = mix64(seed ^ mix64(h)) */
      a = n->init.a;
      bv = n->init.b;
    }
    iv[4 * r + 0] = cg_i64(cg, lay->offset[i]);
    iv[4 * r + 1] = cg_i64(cg, numel);
    iv[4 * r + 2] = cg_i64(cg, kind);
    iv[4 * r + 3] = cg_i64(cg, key);
    fv[2 * r + 0] = cg_f32(cg, a);
    fv[2 * r + 1] = cg_f32(cg, bv);
    r++;
  }
  (void)has_normal;
  snprintf(name, sizeof name, "%s.init.rows", p->prefix);
  LLVMValueRef rows = const_global(cg, name, LLVMConstArray(cg->i64, iv, (unsigned)(4 * nrows)), 8);
  snprintf(name, sizeof name, "%s.init.ab", p->prefix);
  LLVMValueRef abv = const_global(cg, name, LLVMConstArray(cg->f32, fv, (unsigned)(2 * nrows)), 4);
  LLVMValueRef consts = NULL;
  if (const_elems) {
    snprintf(name, sizeof name, "%s.constants", p->prefix);
    consts = const_global(cg, name, LLVMConstArray(cg->f32, cv, (unsigned)const_elems), 64);
  }
  free(iv);
  free(fv);
  free(cv);

  LLVMValueRef st = cg_alloca(cg, cg->i64, "rng");
  snc_cg_loop rl;
  cg_loop_begin(cg, &rl, cg_i64(cg, 0), cg_i64(cg, nrows), 1, "row");
  LLVMValueRef f[4];
  for (int k = 0; k < 4; k++) {
    LLVMValueRef idx = LLVMBuildAdd(b, LLVMBuildMul(b, rl.iv, cg_i64(cg, 4), ""), cg_i64(cg, k), "");
    f[k] = LLVMBuildLoad2(b, cg->i64, LLVMBuildInBoundsGEP2(b, cg->i64, rows, &idx, 1, ""), "");
  }
  LLVMValueRef ai = LLVMBuildMul(b, rl.iv, cg_i64(cg, 2), ""), bi = LLVMBuildAdd(b, ai, cg_i64(cg, 1), "");
  LLVMValueRef a = LLVMBuildLoad2(b, cg->f32, LLVMBuildInBoundsGEP2(b, cg->f32, abv, &ai, 1, ""), "a");
  LLVMValueRef bb = LLVMBuildLoad2(b, cg->f32, LLVMBuildInBoundsGEP2(b, cg->f32, abv, &bi, 1, ""), "b");
  LLVMValueRef dst = LLVMBuildInBoundsGEP2(b, cg->i8, arena, &f[0], 1, "dst");
  /* snc_rng_seed(snc_seed_derive(seed, hash)): state = mix64(mix64(seed ^ key) + golden) */
  LLVMValueRef s0 = mix64(cg, LLVMBuildAdd(b, mix64(cg, LLVMBuildXor(b, seed, f[3], "")),
                                          cg_i64(cg, (int64_t)0x9E3779B97F4A7C15ull), ""));
  LLVMBuildStore(b, s0, st);
  LLVMValueRef bytes = LLVMBuildMul(b, f[1], cg_i64(cg, 4), "bytes");
  LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(cg->ctx, fn, "next");
  LLVMBasicBlockRef cases[5];
  static const char *const cname[5] = {"zeros", "constant", "uniform", "normal", "copy"};
  for (int k = 0; k < 5; k++) cases[k] = LLVMAppendBasicBlockInContext(cg->ctx, fn, cname[k]);
  LLVMValueRef sw = LLVMBuildSwitch(b, f[2], next, 5);
  for (int k = 0; k < 5; k++) LLVMAddCase(sw, cg_i64(cg, k), cases[k]);
  for (int k = 0; k < 5; k++) {
    LLVMPositionBuilderAtEnd(b, cases[k]);
    if (k == ROW_ZEROS) {
      LLVMBuildMemSet(b, dst, LLVMConstInt(cg->i8, 0, 0), bytes, 4);
    } else if (k == ROW_COPY) {
      if (consts) LLVMBuildMemCpy(b, dst, 4, LLVMBuildInBoundsGEP2(b, cg->i8, consts, &f[3], 1, ""), 4, bytes);
    } else if (k != ROW_NORMAL || has_normal) {
      fill_loop(cg, k, dst, f[1], a, bb, st);
    }
    LLVMBuildBr(b, next);
  }
  LLVMPositionBuilderAtEnd(b, next);
  cg_loop_end(cg, &rl);
  LLVMBuildRetVoid(b);
  return 0;
}
