/* Vector math for generated kernels: exp, log, sigmoid (Cephes-style polynomial approximations, about
 * 1-2 ulp on the ranges used), tanh (a rational approximation, at most 5 ulp), and the counter-based dropout hash, which must
 * agree bit for bit with snc_dropout_uniform in include/snc/kernel.h. */
#include <math.h>

#include "codegen/cg.h"

static LLVMValueRef vmul(snc_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(cg->b, a, b, ""); }
static LLVMValueRef vadd(snc_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(cg->b, a, b, ""); }
static LLVMValueRef vsub(snc_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(cg->b, a, b, ""); }
static LLVMValueRef vmin(snc_cg *cg, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(cg->b, LLVMBuildFCmp(cg->b, LLVMRealOLT, b, a, ""), b, a, "");
}

/* Horner: c[0]*x^(n-1) + ... + c[n-1] */
static LLVMValueRef poly(snc_cg *cg, LLVMValueRef x, const float *c, int n) {
  LLVMValueRef y = cg_vf(cg, c[0]);
  for (int i = 1; i < n; i++) y = cg_fma(cg, y, x, cg_vf(cg, c[i]));
  return y;
}

LLVMValueRef cg_vexp(snc_cg *cg, LLVMValueRef x) {
  x = vmin(cg, x, cg_vf(cg, 88.3762626647949f));
  x = cg_fmax(cg, x, cg_vf(cg, -87.3365447504f));
  LLVMValueRef fx = cg_call_intrinsic(cg, "llvm.floor", cg->vf, (LLVMValueRef[]){cg_fma(cg, x, cg_vf(cg, 1.44269504088896341f), cg_vf(cg, 0.5f))}, 1);
  x = cg_fma(cg, fx, cg_vf(cg, -0.693359375f), x);
  x = cg_fma(cg, fx, cg_vf(cg, 2.12194440e-4f), x);
  static const float c[] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
  LLVMValueRef z = vmul(cg, x, x);
  LLVMValueRef y = cg_fma(cg, poly(cg, x, c, 6), z, vadd(cg, x, cg_vf(cg, 1.0f)));
  /* scale by 2^fx through the exponent bits */
  LLVMValueRef n = LLVMBuildFPToSI(cg->b, fx, cg->vi32, "");
  LLVMValueRef bits = LLVMBuildShl(cg->b, LLVMBuildAdd(cg->b, n, cg_splat(cg, cg_i32(cg, 127)), ""), cg_splat(cg, cg_i32(cg, 23)), "");
  return vmul(cg, y, LLVMBuildBitCast(cg->b, bits, cg->vf, ""));
}

LLVMValueRef cg_vlog(snc_cg *cg, LLVMValueRef x0) {
  LLVMValueRef bits = LLVMBuildBitCast(cg->b, x0, cg->vi32, "");
  LLVMValueRef e = LLVMBuildSub(cg->b, LLVMBuildLShr(cg->b, bits, cg_splat(cg, cg_i32(cg, 23)), ""), cg_splat(cg, cg_i32(cg, 126)), "");
  /* mantissa in [0.5, 1) */
  LLVMValueRef mbits = LLVMBuildOr(cg->b, LLVMBuildAnd(cg->b, bits, cg_splat(cg, cg_i32(cg, 0x007fffff)), ""),
                                   cg_splat(cg, cg_i32(cg, 0x3f000000)), "");
  LLVMValueRef m = LLVMBuildBitCast(cg->b, mbits, cg->vf, "");
  LLVMValueRef small = LLVMBuildFCmp(cg->b, LLVMRealOLT, m, cg_vf(cg, 0.707106781186547524f), "");
  LLVMValueRef ef = LLVMBuildSIToFP(cg->b, e, cg->vf, "");
  ef = LLVMBuildSelect(cg->b, small, vsub(cg, ef, cg_vf(cg, 1.0f)), ef, "");
  LLVMValueRef x = LLVMBuildSelect(cg->b, small, vsub(cg, vadd(cg, m, m), cg_vf(cg, 1.0f)), vsub(cg, m, cg_vf(cg, 1.0f)), "");
  static const float c[] = {7.0376836292e-2f, -1.1514610310e-1f, 1.1676998740e-1f, -1.2420140846e-1f, 1.4249322787e-1f,
                            -1.6668057665e-1f, 2.0000714765e-1f, -2.4999993993e-1f, 3.3333331174e-1f};
  LLVMValueRef z = vmul(cg, x, x);
  LLVMValueRef y = vmul(cg, vmul(cg, poly(cg, x, c, 9), x), z);
  y = cg_fma(cg, ef, cg_vf(cg, -2.12194440e-4f), y);
  y = cg_fma(cg, z, cg_vf(cg, -0.5f), y);
  LLVMValueRef r = vadd(cg, x, y);
  r = cg_fma(cg, ef, cg_vf(cg, 0.693359375f), r);
  /* log(0) = -inf; negative and NaN inputs give NaN */
  LLVMValueRef zero = LLVMBuildFCmp(cg->b, LLVMRealOEQ, x0, cg_vf(cg, 0.0f), "");
  r = LLVMBuildSelect(cg->b, zero, cg_vf(cg, -__builtin_inff()), r, "");
  LLVMValueRef bad = LLVMBuildFCmp(cg->b, LLVMRealULT, x0, cg_vf(cg, 0.0f), "");
  return LLVMBuildSelect(cg->b, bad, cg_vf(cg, __builtin_nanf("")), r, "");
}

/* tanh as the odd/even rational minimax approximation x P(x^2) / Q(x^2) of degree 13/6 on the
 * input clamped to +-7.905 (Eigen's float tanh): at most 2.9e-7 absolute and relative error (5 ulp)
 * against tanh in double over [-10, 10], the same near 0, +-1 at +-inf and NaN for NaN (a NaN passes
 * the clamp). Eleven FMAs and a division instead of an exp, a polynomial and two selects. */
LLVMValueRef cg_vtanh(snc_cg *cg, LLVMValueRef x) {
  const float lim = 7.90531110763549805f;
  LLVMValueRef xc = vmin(cg, x, cg_vf(cg, lim));
  xc = cg_fmax(cg, xc, cg_vf(cg, -lim));
  static const float a[] = {-2.76076847742355e-16f, 2.00018790482477e-13f, -8.60467152213735e-11f, 5.12229709037114e-08f,
                            1.48572235717979e-05f, 6.37261928875436e-04f, 4.89352455891786e-03f};
  static const float b[] = {1.19825839466702e-06f, 1.18534705686654e-04f, 2.26843463243900e-03f, 4.89352518554385e-03f};
  LLVMValueRef x2 = vmul(cg, xc, xc);
  LLVMValueRef p = vmul(cg, xc, poly(cg, x2, a, 7));
  return LLVMBuildFDiv(cg->b, p, poly(cg, x2, b, 4), "");
}

LLVMValueRef cg_vsigmoid(snc_cg *cg, LLVMValueRef x) {
  LLVMValueRef e = cg_vexp(cg, LLVMBuildFNeg(cg->b, x, ""));
  return LLVMBuildFDiv(cg->b, cg_vf(cg, 1.0f), vadd(cg, cg_vf(cg, 1.0f), e), "");
}

LLVMValueRef cg_vexpm1(snc_cg *cg, LLVMValueRef x) { return vsub(cg, cg_vexp(cg, x), cg_vf(cg, 1.0f)); }

/* --- the dropout hash (snc_mix64 / snc_hash_uniform in include/snc/rng.h) --- */
static LLVMValueRef mix64(snc_cg *cg, LLVMValueRef z, int vec) {
  LLVMValueRef s30 = vec ? cg_splat(cg, cg_i64(cg, 30)) : cg_i64(cg, 30);
  LLVMValueRef s27 = vec ? cg_splat(cg, cg_i64(cg, 27)) : cg_i64(cg, 27);
  LLVMValueRef s31 = vec ? cg_splat(cg, cg_i64(cg, 31)) : cg_i64(cg, 31);
  LLVMValueRef m1 = LLVMConstInt(cg->i64, 0xBF58476D1CE4E5B9ull, 0), m2 = LLVMConstInt(cg->i64, 0x94D049BB133111EBull, 0);
  if (vec) m1 = cg_splat(cg, m1), m2 = cg_splat(cg, m2);
  z = LLVMBuildMul(cg->b, LLVMBuildXor(cg->b, z, LLVMBuildLShr(cg->b, z, s30, ""), ""), m1, "");
  z = LLVMBuildMul(cg->b, LLVMBuildXor(cg->b, z, LLVMBuildLShr(cg->b, z, s27, ""), ""), m2, "");
  return LLVMBuildXor(cg->b, z, LLVMBuildLShr(cg->b, z, s31, ""), "");
}

/* the 32-bit hash h of snc_dropout_uniform (u = (h >> 8) * 2^-24) for 16 lanes, lane l drawing
 * element i = base + l * stride */
static LLVMValueRef dropout_hash(snc_cg *cg, LLVMValueRef seed, LLVMValueRef step, LLVMValueRef stream, LLVMValueRef base_i,
                                 int64_t lane_stride) {
  /* snc_dropout_key (scalar, once per kernel: in the entry block) */
  LLVMBasicBlockRef back = cg_entry_begin(cg);
  LLVMValueRef sv = LLVMBuildXor(cg->b, LLVMBuildShl(cg->b, step, cg_i64(cg, 20), ""), stream, "");
  LLVMValueRef key = LLVMBuildTrunc(cg->b, mix64(cg, LLVMBuildXor(cg->b, seed, mix64(cg, sv, 0), ""), 0), cg->i32, "key");
  cg_entry_end(cg, back);
  /* murmur3 fmix32 of key + i * golden, 16 lanes of i = base + lane * stride (32-bit wrap-around) */
  /* key + (base + l * stride) * golden = (key + base * golden) + l * stride * golden, mod 2^32: one
     scalar multiply per vector and a constant vector instead of a vector multiply */
  LLVMValueRef lanes[SNC_VW];
  for (int l = 0; l < SNC_VW; l++) lanes[l] = cg_i32(cg, (int32_t)((uint32_t)l * (uint32_t)lane_stride * 0x9E3779B9u));
  /* frozen (a no-op on the value): as a 32-bit multiple of an induction variable it made loop strength
     reduction search i32 formulae for every unrolled use, 40 of the 75 ms of machine code of siamese's
     conv2 kernel (llc -time-passes, AMD EPYC); frozen, it is an opaque value and the index a plain add */
  LLVMValueRef b32 = LLVMBuildTrunc(cg->b, LLVMBuildFreeze(cg->b, base_i, ""), cg->i32, "");
  LLVMValueRef h0 = LLVMBuildAdd(cg->b, key, LLVMBuildMul(cg->b, b32, cg_i32(cg, (int32_t)0x9E3779B9u), ""), "");
  LLVMValueRef h = LLVMBuildAdd(cg->b, cg_splat(cg, h0), LLVMConstVector(lanes, SNC_VW), "");
  LLVMValueRef s16 = cg_splat(cg, cg_i32(cg, 16)), s13 = cg_splat(cg, cg_i32(cg, 13));
  h = LLVMBuildXor(cg->b, h, LLVMBuildLShr(cg->b, h, s16, ""), "");
  h = LLVMBuildMul(cg->b, h, cg_splat(cg, cg_i32(cg, (int32_t)0x85EBCA6Bu)), "");
  h = LLVMBuildXor(cg->b, h, LLVMBuildLShr(cg->b, h, s13, ""), "");
  h = LLVMBuildMul(cg->b, h, cg_splat(cg, cg_i32(cg, (int32_t)0xC2B2AE35u)), "");
  return LLVMBuildXor(cg->b, h, LLVMBuildLShr(cg->b, h, s16, ""), "");
}

/* u >= p as an integer compare, the same bits: u = (h >> 8) 2^-24 is exact, so u >= p exactly when
 * h >> 8 >= ceil(p 2^24), i.e. h >= ceil(p 2^24) << 8 (unsigned). Saves a shift, a conversion and
 * a multiply per vector, all on the one port of 512-bit shifts and conversions on Intel cores. */
LLVMValueRef cg_vdropout_keep(snc_cg *cg, LLVMValueRef seed, LLVMValueRef step, LLVMValueRef stream, LLVMValueRef base_i,
                              int64_t lane_stride, float p) {
  double t = ceil((double)p * 16777216.0);
  if (t <= 0) return cg_splat(cg, LLVMConstInt(cg->i1, 1, 0)); /* every u >= 0 */
  if (t >= 16777216.0) return cg_splat(cg, LLVMConstInt(cg->i1, 0, 0)); /* u < 1 <= p */
  LLVMValueRef h = dropout_hash(cg, seed, step, stream, base_i, lane_stride);
  return LLVMBuildICmp(cg->b, LLVMIntUGE, h, cg_splat(cg, cg_i32(cg, (int32_t)((uint32_t)t << 8))), "keep");
}
