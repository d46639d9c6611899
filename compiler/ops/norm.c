/* batchnorm(x[B,C] or [B,C,H,W], gamma[C], beta[C], running_mean[C], running_var[C]) -> shape of x.
 * Training normalises with the batch statistics over the nb rows in use (and H, W; biased variance)
 * and updates the running ones in place (inputs 3 and 4, hence SNC_NF_EFFECT) with attr.momentum:
 *   running_mean = (1-m) running_mean + m mean,  running_var = (1-m) running_var + m unbiased_var
 * (PyTorch's convention; with a single value per channel the biased variance, 0, stands in for the
 * undefined unbiased one, where PyTorch refuses). Evaluation uses the running statistics. attr.eps is
 * added to the variance.
 * Backward (training-mode math, batch statistics recomputed from x; attr.eps copied):
 *   batchnorm_dx(x, gamma, dy) -> shape of x:
 *     dx = gamma invstd / m (m dy - sum(dy) - xhat sum(dy xhat)), m = values per channel;
 *   batchnorm_dgamma(x, dy) -> [C] : sum(dy xhat);  dbeta is bias_grad(dy) (reduce family). */
#include <math.h>

#include "autodiff/ad.h"
#include "ops/op.h"

static int infer_batchnorm(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *x = snc_node_in(g, n, 0);
  char sx[64];
  if (snc_require_f32(g, n, 0, err)) return -1;
  if ((x->shape.rank != 2 && x->shape.rank != 4) || !(x->flags & SNC_NF_BATCHED))
    return snc_node_errorf(g, n, err, "input '%s' has shape %s; batchnorm needs [B,C] or [B,C,H,W]", x->name,
                           SNC_SHAPE_STR(g, x->id, sx));
  for (int k = 1; k < 5; k++) {
    const snc_node *p = snc_node_in(g, n, k);
    SNC_ASSERT(p->shape.rank == 1);
    if (p->shape.dim[0] != x->shape.dim[1])
      return snc_node_errorf(g, n, err, "parameter '%s' has %lld channels but input '%s' has %lld", p->name,
                             (long long)p->shape.dim[0], x->name, (long long)x->shape.dim[1]);
  }
  if (!(n->attr.eps > 0.0f)) return snc_node_errorf(g, n, err, "eps %g must be positive", n->attr.eps);
  if (!(n->attr.momentum >= 0.0f && n->attr.momentum <= 1.0f))
    return snc_node_errorf(g, n, err, "momentum %g must be in [0, 1]", n->attr.momentum);
  if (snc_infer_same_as_input(g, n, err)) return -1;
  n->flags |= SNC_NF_EFFECT; /* training writes running_mean and running_var */
  return 0;
}

/* batchnorm_dx(x, gamma, dy), batchnorm_dgamma(x, dy): made by autodiff from a valid batchnorm. */
static int infer_batchnorm_dx(snc_graph *g, snc_node *n, snc_error *err) {
  SNC_ASSERT(snc_shape_eq(&snc_node_in(g, n, 0)->shape, &snc_node_in(g, n, 2)->shape));
  return snc_infer_same_as_input(g, n, err);
}

static int infer_batchnorm_dgamma(snc_graph *g, snc_node *n, snc_error *err) {
  const snc_node *x = snc_node_in(g, n, 0);
  (void)err;
  SNC_ASSERT(x->shape.rank >= 2 && snc_shape_eq(&x->shape, &snc_node_in(g, n, 1)->shape));
  n->shape = (snc_shape){1, {x->shape.dim[1]}};
  n->dtype = SNC_F32;
  n->flags &= ~SNC_NF_BATCHED;
  return 0;
}

static int64_t flops_batchnorm(const snc_graph *g, const snc_node *n) {
  (void)g;
  return 6 * snc_shape_numel(&n->shape);
}

static int64_t flops_in0(const snc_graph *g, const snc_node *n) {
  return 6 * snc_shape_numel(&snc_node_in(g, n, 0)->shape);
}

/* x as [nb, C, inner]: element (r, j, i) is at (r*C + j)*inner + i. */
typedef struct bn_dims {
  int64_t nb, c, inner;
} bn_dims;

static bn_dims dims_of(const snc_node *x, const snc_kctx *ctx) {
  bn_dims d = {ctx->nb, x->shape.dim[1], 1};
  for (int i = 2; i < x->shape.rank; i++) d.inner *= x->shape.dim[i];
  return d;
}

/* Batch mean and biased variance of channel j (two passes, double). */
static void channel_stats(const float *x, bn_dims d, int64_t j, double *mean, double *var) {
  double s = 0, q = 0, m = (double)(d.nb * d.inner);
  for (int64_t r = 0; r < d.nb; r++)
    for (int64_t i = 0; i < d.inner; i++) s += x[(r * d.c + j) * d.inner + i];
  *mean = s / m;
  for (int64_t r = 0; r < d.nb; r++)
    for (int64_t i = 0; i < d.inner; i++) {
      double v = x[(r * d.c + j) * d.inner + i] - *mean;
      q += v * v;
    }
  *var = q / m;
}

static void ref_batchnorm(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  const float *x = in[0], *gamma = in[1], *beta = in[2];
  float *rmean = in[3], *rvar = in[4], *y = out;
  bn_dims d = dims_of(snc_node_in(g, n, 0), ctx);
  double mom = n->attr.momentum, m = (double)(d.nb * d.inner);
  for (int64_t j = 0; j < d.c; j++) {
    double mean, var;
    if (ctx->training) {
      channel_stats(x, d, j, &mean, &var);
      rmean[j] = (float)((1.0 - mom) * rmean[j] + mom * mean);
      rvar[j] = (float)((1.0 - mom) * rvar[j] + mom * (m > 1 ? var * m / (m - 1) : var));
    } else {
      mean = rmean[j];
      var = rvar[j];
    }
    double invstd = 1.0 / sqrt(var + n->attr.eps);
    for (int64_t r = 0; r < d.nb; r++)
      for (int64_t i = 0; i < d.inner; i++) {
        int64_t k = (r * d.c + j) * d.inner + i;
        y[k] = (float)((x[k] - mean) * invstd * gamma[j] + beta[j]);
      }
  }
}

static void ref_batchnorm_dx(const snc_graph *g, const snc_node *n, void *out, void *const *in, const snc_kctx *ctx) {
  (void)g;
  const float *x = in[0], *gamma = in[1], *dy = in[2];
  float *dx = out;
  bn_dims d = dims_of(n, ctx);
  double m = (double)(d.nb * d.inner);
  for (int64_t j = 0; j < d.c; j++) {
    double mean, var, sdy = 0, sdyx = 0;
    channel_stats(x, d, j, &mean, &var);
    double invstd = 1.0 / sqrt(var + n->attr.eps);
    for (int64_t r = 0; r < d.nb; r++)
      for (int64_t i = 0; i < d.inner; i++) {
        int64_t k = (r * d.c + j) * d.inner + i;
        sdy += dy[k];
        sdyx += dy[k] * (x[k] - mean) * invstd;
      }
    for (int64_t r = 0; r < d.nb; r++)
      for (int64_t i = 0; i < d.inner; i++) {
        int64_t k = (r * d.c + j) * d.inner + i;
        double xhat = (x[k] - mean) * invstd;
        dx[k] = (float)(gamma[j] * invstd / m * (m * dy[k] - sdy - xhat * sdyx));
      }
  }
}

static void ref_batchnorm_dgamma(const snc_graph *g, const snc_node *n, void *out, void *const *in,
                                 const snc_kctx *ctx) {
  const float *x = in[0], *dy = in[1];
  float *dg = out;
  bn_dims d = dims_of(snc_node_in(g, n, 0), ctx);
  for (int64_t j = 0; j < d.c; j++) {
    double mean, var, s = 0;
    channel_stats(x, d, j, &mean, &var);
    double invstd = 1.0 / sqrt(var + n->attr.eps);
    for (int64_t r = 0; r < d.nb; r++)
      for (int64_t i = 0; i < d.inner; i++) {
        int64_t k = (r * d.c + j) * d.inner + i;
        s += dy[k] * (x[k] - mean) * invstd;
      }
    dg[j] = (float)s;
  }
}

static int grad_batchnorm(snc_ad *ad, const snc_node *n, int gout) {
  int x = n->inputs[0], gamma = n->inputs[1], beta = n->inputs[2];
  if (snc_ad_needs(ad, x)) {
    int ins[3] = {x, gamma, gout};
    snc_ad_accum(ad, x, snc_ad_node(ad, SNC_OP_BATCHNORM_DX, n, "x", ins, 3, &n->attr));
  }
  if (snc_ad_needs(ad, gamma)) {
    int ins[2] = {x, gout};
    snc_ad_accum(ad, gamma, snc_ad_node(ad, SNC_OP_BATCHNORM_DGAMMA, n, "gamma", ins, 2, &n->attr));
  }
  if (snc_ad_needs(ad, beta)) snc_ad_accum(ad, beta, snc_ad_node(ad, SNC_OP_BIAS_GRAD, n, "beta", &gout, 1, NULL));
  return 0;
}

static int ex_batchnorm(snc_graph *g) {
  int64_t c = 3;
  int ins[5] = {snc_example_input(g, 3, (int64_t[]){c, 2, 2}, SNC_F32), snc_example_param(g, 1, &c),
                snc_example_param(g, 1, &c), -1, -1};
  snc_shape s = {1, {c}};
  snc_error err = {0};
  snc_loc loc = {g->file, 0, 0};
  /* running statistics: state, not trainable */
  ins[3] = snc_graph_param(g, "running_mean", &s, (snc_init){SNC_INIT_ZEROS, 0, 0}, 0, loc, &err);
  ins[4] = snc_graph_param(g, "running_var", &s, (snc_init){SNC_INIT_CONSTANT, 1, 0}, 0, loc, &err);
  SNC_ASSERT(ins[3] >= 0 && ins[4] >= 0);
  return snc_example_op(g, SNC_OP_BATCHNORM, ins, 5, (snc_attrs){.eps = 1e-5f, .momentum = 0.1f});
}

const snc_op_info snc_op_batchnorm = {"batchnorm", 5, 5, infer_batchnorm, flops_batchnorm, ref_batchnorm,
                                      grad_batchnorm, ex_batchnorm, .emit = snc_cg_emit_norm};
const snc_op_info snc_op_batchnorm_dx = {"batchnorm_dx", 3, 3, infer_batchnorm_dx, flops_batchnorm, ref_batchnorm_dx,
                                         NULL, NULL, .emit = snc_cg_emit_norm};
const snc_op_info snc_op_batchnorm_dgamma = {"batchnorm_dgamma", 2, 2, infer_batchnorm_dgamma, flops_in0,
                                             ref_batchnorm_dgamma, NULL, NULL, .emit = snc_cg_emit_norm};
