/* Golden outputs: snc's reference executor against PyTorch 1.13 (tests/golden/gen.py wrote the
 * .safetensors files; this test needs no Python). Each case loads an snc model with the switches the
 * generator used, re-creates the generator's parameters bit for bit, feeds its inputs and compares:
 * the evaluation forward, the loss of a training forward, every gradient, batch norm's running
 * statistics and the parameters after one (or two) optimizer steps. See tests/golden/README.md for
 * the file layout (sampled large tensors, statistics) and how to regenerate.
 *
 * Tolerances (float32 on both sides, different summation orders; u = 2^-24 = 6e-8):
 *   Every compared value x (golden g) passes when |x - g| <= RTOL |g| + ATOL max|g|, max over its
 *   tensor: rounding errors of a sum are relative to the magnitude of its terms, which the tensor's
 *   largest entry bounds up to modest cancellation, not to the (possibly tiny) entry itself.
 *   The longest reductions here have K <= 1152 terms (conv1 weight gradient with weight sharing:
 *   2 branches x 4 samples x 12 x 12); rounding errors of random sign grow like sqrt(K) u = 2e-6 of
 *   the terms' size (the worst case K u = 7e-5 needs every rounding in the same direction). The
 *   generator measured PyTorch float32 against the same computation in float64 on every key (file
 *   metadata "noise"): at most 7e-7 of max|g| for forward values and 9e-7 for gradients; snc can be
 *   as far on the other side, 2e-6 together. FWD_ATOL = 2e-5 and GRAD_ATOL = 5e-5 leave a factor of
 *   10 and 25 above that (backward chains are twice as long as forward ones); RTOL = 1e-5 is 80 ulp.
 *   A change of meaning (a padding, an eps, a reduction, a layout) moves values by 1e-3 or more.
 *   Sampled tensors (more than 2048 elements) also compare sum, sum |x|, sum x^2 and max |x| over the
 *   whole tensor, each with the sum of the per-element tolerances it can accumulate.
 *   Optimizer updates are derived from those: Adam's first step moves p by lr g/(|g| + eps) (bias
 *   corrections cancel), nearly independent of |g| but flipping sign when |g| is within its
 *   tolerance of 0, so the allowed error is the range of the update over g +- tol(g) (over the box
 *   of both gradients for the second step, plus the first step's error); SGD's steps move p by lr
 *   times the gradients, so their tolerance is lr times the gradients' (momentum-weighted). Both
 *   add 4 ulp of the larger of p and the step for the update's own rounding. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snc/autodiff.h"
#include "snc/data.h"
#include "snc/backend.h"
#include "snc/frontend.h"
#include "testutil.h"

#define RTOL 1e-5
#define FWD_ATOL 2e-5
#define GRAD_ATOL 5e-5
#define SLACK_ULPS 4.0

/* ------------------------------------------------------------ the generator's parameter values */

/* gen.py's hash_unit: v in [-1, 1) on a 2^-23 grid, from FNV-1a of the name and splitmix64. */
static float hash_unit(uint64_t h, int64_t i) {
  uint64_t z = h + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  int64_t k = (int64_t)(z >> 40);
  return (float)(k - (1 << 23)) / (float)(1 << 23);
}

/* offset + scale v, rounded after the product and after the sum as numpy's float32 does (volatile
 * keeps the compiler from contracting the two into one fused multiply-add). */
static void gen_weights(float *dst, const char *name, int64_t n, float offset, float scale) {
  uint64_t h = snc_name_hash(name);
  for (int64_t i = 0; i < n; i++) {
    volatile float t = hash_unit(h, i) * scale;
    dst[i] = t + offset;
  }
}

/* ------------------------------------------------------------ golden tensors */

typedef struct {
  int64_t n;          /* stored values */
  const int32_t *idx; /* positions in the full tensor when sampled, else NULL */
  const float *val;
  double stat[4];     /* sum, sum |x|, sum x^2, max |x| of the full tensor */
} gview;

static const snc_ckpt_tensor *need(const snc_ckpt *c, const char *key) {
  const snc_ckpt_tensor *t = snc_ckpt_find(c, key);
  if (!t) printf("\n  %s: no tensor '%s'", snc_ckpt_path(c), key);
  CU_ASSERT_PTR_NOT_NULL(t);
  return t;
}

static int64_t tnumel(const snc_ckpt_tensor *t) {
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++) n *= t->dims[d];
  return n;
}

static const char *base_of(const char *key) {
  const char *dot = strchr(key, '.');
  return dot ? dot + 1 : key;
}

/* The golden values of key for a tensor of the given shape: whole, or sampled with statistics. */
static int golden(const snc_ckpt *c, const char *key, const snc_shape *shape, gview *v) {
  char name[512];
  const snc_ckpt_tensor *t = need(c, key);
  if (!t || t->dtype != SNC_CKPT_F32) return -1;
  memset(v, 0, sizeof *v);
  v->val = t->data;
  v->n = tnumel(t);
  snprintf(name, sizeof name, "idx.%s", base_of(key));
  const snc_ckpt_tensor *ix = snc_ckpt_find(c, name);
  int64_t full = snc_shape_numel(shape);
  if (!ix) {
    int same = t->ndim == shape->rank;
    for (int d = 0; same && d < t->ndim; d++) same = t->dims[d] == shape->dim[d];
    if (!same) printf("\n  %s: '%s' has another shape than snc's node", snc_ckpt_path(c), key);
    CU_ASSERT(same);
    if (!same) return -1;
    for (int64_t i = 0; i < v->n; i++) {
      double x = v->val[i];
      v->stat[0] += x, v->stat[1] += fabs(x), v->stat[2] += x * x;
      if (fabs(x) > v->stat[3]) v->stat[3] = fabs(x);
    }
    return 0;
  }
  snprintf(name, sizeof name, "%s@stat", key);
  const snc_ckpt_tensor *st = need(c, name);
  if (!st || ix->dtype != SNC_CKPT_I32 || tnumel(ix) != v->n || tnumel(st) != 4) return -1;
  v->idx = ix->data;
  for (int k = 0; k < 4; k++) v->stat[k] = ((const float *)st->data)[k];
  for (int64_t i = 0; i < v->n; i++) CU_ASSERT_FATAL(v->idx[i] >= 0 && v->idx[i] < full);
  return 0;
}

static int64_t pos(const gview *v, int64_t i) { return v->idx ? v->idx[i] : i; }

/* Worst |x - g| / tol seen per kind of key, for the report. */
static double worst[4];
enum { W_FWD, W_GRAD, W_UPDATE, W_STAT };

static int report(const snc_ckpt *c, const char *key, int64_t at, double got, double want, double tol, int *shown) {
  if (fabs(got - want) <= tol) return 0;
  if ((*shown)++ < 4)
    printf("\n  %s: %s[%lld]: snc %.9g, PyTorch %.9g, |diff| %.3g > tol %.3g", snc_ckpt_path(c), key, (long long)at,
           got, want, fabs(got - want), tol);
  return 1;
}

/* Compares n floats (the full tensor) with key: elementwise on the stored values, and when
 * sampled, the whole tensor's statistics with the sum of the element tolerances they can gather. */
static int check_values(const snc_ckpt *c, const char *key, const float *got, const snc_shape *shape, double rtol,
                        double atol, int kind) {
  gview v;
  if (golden(c, key, shape, &v)) return 1;
  int bad = 0, shown = 0;
  double a = atol * v.stat[3];
  for (int64_t i = 0; i < v.n; i++) {
    double x = got[pos(&v, i)], g = v.val[i], tol = rtol * fabs(g) + a;
    if (tol > 0 && fabs(x - g) / tol > worst[kind]) worst[kind] = fabs(x - g) / tol;
    bad += report(c, key, pos(&v, i), x, g, tol, &shown);
    if (isnan(x)) bad++;
  }
  if (v.idx) {
    int64_t n = snc_shape_numel(shape);
    double s[4] = {0};
    for (int64_t i = 0; i < n; i++) {
      double x = got[i];
      s[0] += x, s[1] += fabs(x), s[2] += x * x;
      if (fabs(x) > s[3]) s[3] = fabs(x);
    }
    double tsum = rtol * v.stat[1] + (double)n * a; /* sum over the tensor of the element tolerances */
    double tol[4] = {tsum, tsum, 2 * (rtol * v.stat[2] + a * v.stat[1]) + (double)n * (2 * rtol * a + a * a) * v.stat[3] * v.stat[3],
                     rtol * v.stat[3] + a};
    static const char *what[4] = {"sum", "sum|x|", "sum x^2", "max|x|"};
    for (int k = 0; k < 4; k++) {
      char name[600];
      tol[k] += ldexp(fabs(v.stat[k]), -22); /* the statistic was stored in float32 */
      snprintf(name, sizeof name, "%s (%s over all %lld)", key, what[k], (long long)n);
      if (tol[k] > 0 && fabs(s[k] - v.stat[k]) / tol[k] > worst[W_STAT]) worst[W_STAT] = fabs(s[k] - v.stat[k]) / tol[k];
      bad += report(c, name, 0, s[k], v.stat[k], tol[k], &shown);
    }
  }
  if (bad) printf("\n  %s: %s: %d of %lld values outside tolerance", snc_ckpt_path(c), key, bad, (long long)v.n);
  return bad;
}

/* ------------------------------------------------------------ a case */

typedef struct {
  const snc_ckpt *c;
  snc_graph *g;
  snc_exec *ex;
  float **p0; /* per node: the parameter's initial values (PARAM nodes of the forward graph) */
  int adam;
  double lr, beta1, beta2, eps, wd, momentum;
} gcase;

static double meta_num(const snc_ckpt *c, const char *key) {
  const char *s = snc_ckpt_meta(c, key);
  if (!s) printf("\n  %s: no metadata '%s'", snc_ckpt_path(c), key);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  return strtod(s, NULL);
}

/* Loads the model with the file's switches ("a=1,b=false"). */
static snc_graph *load_model(const snc_ckpt *c) {
  char path[512], sets[512];
  snc_override o[16];
  int no = 0;
  snc_error err = {0};
  const char *model = snc_ckpt_meta(c, "model"), *s = snc_ckpt_meta(c, "sets");
  CU_ASSERT_PTR_NOT_NULL_FATAL(model);
  snprintf(path, sizeof path, "%s/%s", SNC_SOURCE_DIR, model);
  snprintf(sets, sizeof sets, "%s", s ? s : "");
  for (char *tok = strtok(sets, ","); tok && no < 16; tok = strtok(NULL, ","))
    CU_ASSERT_FATAL(snc_override_parse(tok, &o[no++], &err) == 0);
  snc_graph *g = snc_model_load(path, o, no, &err);
  if (!g) printf("\n  %s\n", err.msg);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  return g;
}

static int setup(gcase *k, const char *file) {
  snc_error err = {0};
  memset(k, 0, sizeof *k);
  k->c = snc_ckpt_read(file, &err);
  if (!k->c) printf("\n  %s\n", err.msg);
  CU_ASSERT_PTR_NOT_NULL_FATAL(k->c);
  k->g = load_model(k->c);
  CU_ASSERT_FATAL(snc_autodiff(k->g, 0, &err) == 0);
  k->ex = snc_exec_new(k->g, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(k->ex);
  const char *opt = snc_ckpt_meta(k->c, "optimizer");
  CU_ASSERT_PTR_NOT_NULL_FATAL(opt);
  k->adam = !strcmp(opt, "adam");
  CU_ASSERT_EQUAL(k->g->train.optimizer, k->adam ? SNC_OPT_ADAM : SNC_OPT_SGD);
  k->lr = meta_num(k->c, "lr");
  k->wd = meta_num(k->c, "weight_decay");
  if (k->adam) {
    k->beta1 = meta_num(k->c, "beta1"), k->beta2 = meta_num(k->c, "beta2"), k->eps = meta_num(k->c, "eps");
  } else {
    k->momentum = meta_num(k->c, "momentum");
    CU_ASSERT(meta_num(k->c, "dampening") == 0 && !strcmp(snc_ckpt_meta(k->c, "nesterov"), "False"));
  }

  /* parameters: every forward PARAM from its generator entry; optimizer state stays zero */
  char key[512];
  k->p0 = calloc((size_t)k->g->nnodes, sizeof *k->p0);
  for (int i = 0; i < k->g->nforward; i++) {
    const snc_node *n = k->g->nodes[i];
    if (n->op != SNC_OP_PARAM) continue;
    snprintf(key, sizeof key, "gen.%s", n->name);
    const snc_ckpt_tensor *t = need(k->c, key);
    if (!t) continue;
    const float *os = t->data;
    int64_t e = snc_shape_numel(&n->shape);
    k->p0[i] = malloc((size_t)e * sizeof(float));
    gen_weights(k->p0[i], n->name, e, os[0], os[1]);
    memcpy(snc_exec_buf(k->ex, i), k->p0[i], (size_t)e * sizeof(float));
    /* the generator's own values: re-created exactly */
    snprintf(key, sizeof key, "w.%s", n->name);
    CU_ASSERT_EQUAL(check_values(k->c, key, k->p0[i], &n->shape, 0, 0, W_FWD), 0);
  }
  /* inputs, and no tensor of the file unaccounted for */
  for (int j = 0; j < snc_ckpt_count(k->c); j++) {
    const snc_ckpt_tensor *t = snc_ckpt_at(k->c, j);
    if (!strncmp(t->name, "in.", 3)) {
      int id = snc_graph_find(k->g, t->name + 3);
      CU_ASSERT_FATAL(id >= 0);
      const snc_node *n = k->g->nodes[id];
      CU_ASSERT_FATAL(n->op == SNC_OP_INPUT && tnumel(t) == snc_shape_numel(&n->shape));
      CU_ASSERT_FATAL((t->dtype == SNC_CKPT_I32) == (n->dtype == SNC_I32));
      memcpy(snc_exec_buf(k->ex, id), t->data, (size_t)tnumel(t) * 4);
    } else if ((!strncmp(t->name, "gen.", 4) || !strncmp(t->name, "w.", 2)) && !strchr(t->name, '@')) {
      int id = snc_graph_find(k->g, base_of(t->name));
      if (id < 0) printf("\n  %s: PyTorch has '%s', snc does not", snc_ckpt_path(k->c), base_of(t->name));
      CU_ASSERT(id >= 0 && id < k->g->nforward && k->g->nodes[id]->op == SNC_OP_PARAM);
    }
  }
  return 0;
}

static void teardown(gcase *k) {
  for (int i = 0; k->p0 && i < k->g->nnodes; i++) free(k->p0[i]);
  free(k->p0);
  snc_exec_free(k->ex);
  snc_graph_free(k->g);
  snc_ckpt_free((snc_ckpt *)k->c);
}

static const float *buf(gcase *k, int id) { return snc_exec_buf(k->ex, id); }

/* Compares every key with the prefix against the node it names. */
static int check_prefix(gcase *k, const char *prefix, double atol, int kind) {
  int bad = 0, seen = 0;
  size_t lp = strlen(prefix);
  for (int j = 0; j < snc_ckpt_count(k->c); j++) {
    const char *name = snc_ckpt_at(k->c, j)->name;
    if (strncmp(name, prefix, lp) || strchr(name, '@')) continue;
    int id = snc_graph_find(k->g, name + lp);
    if (id < 0) printf("\n  %s: '%s' is not a node of snc's graph", snc_ckpt_path(k->c), name + lp);
    CU_ASSERT_FATAL(id >= 0);
    bad += check_values(k->c, name, buf(k, id), &k->g->nodes[id]->shape, RTOL, atol, kind);
    seen++;
  }
  return seen ? bad : -1;
}

/* Every trainable parameter's gradient: grad<sfx>.<param> against its gradient node. */
static int check_grads(gcase *k, const char *prefix) {
  int bad = 0;
  char key[512];
  for (int i = 0; i < k->g->nforward; i++) {
    const snc_node *n = k->g->nodes[i];
    if (n->op != SNC_OP_PARAM || !(n->flags & SNC_NF_TRAINABLE)) continue;
    CU_ASSERT_FATAL(n->grad >= 0);
    snprintf(key, sizeof key, "%s.%s", prefix, n->name);
    bad += check_values(k->c, key, buf(k, n->grad), &n->shape, RTOL, GRAD_ATOL, W_GRAD);
  }
  return bad;
}

/* Tolerance of a gradient element: the one check_values applies. */
static double gtol(const gview *g, int64_t i) { return RTOL * fabs(g->val[i]) + GRAD_ATOL * g->stat[3]; }

/* Adam's update after two steps with gradients x1, x2 (step 1 when x2 is NAN). */
static double adam_update(const gcase *k, double x1, double x2) {
  double m, v, b1 = k->beta1, b2 = k->beta2;
  if (isnan(x2)) {
    m = x1, v = x1 * x1;
  } else {
    m = (b1 * (1 - b1) * x1 + (1 - b1) * x2) / (1 - b1 * b1);
    v = (b2 * (1 - b2) * x1 * x1 + (1 - b2) * x2 * x2) / (1 - b2 * b2);
  }
  return k->lr * m / (sqrt(v) + k->eps);
}

/* The largest change of the update over the box x1 +- t1, x2 +- t2 (a 9 x 9 grid). */
static double adam_range(const gcase *k, double x1, double t1, double x2, double t2) {
  double u0 = adam_update(k, x1, x2), r = 0;
  for (int a = -4; a <= 4; a++)
    for (int b = -4; b <= 4; b++) {
      double d = fabs(adam_update(k, x1 + a * t1 / 4, isnan(x2) ? x2 : x2 + b * t2 / 4) - u0);
      if (d > r) r = d;
    }
  return r;
}

/* Parameters after `step` optimizer steps against <adam|sgd><step>.<param>. */
static int check_updates(gcase *k, int step) {
  int bad = 0;
  char key[512], gk1[512], gk2[512], pk1[512];
  for (int i = 0; i < k->g->nforward; i++) {
    const snc_node *n = k->g->nodes[i];
    if (n->op != SNC_OP_PARAM || !(n->flags & SNC_NF_TRAINABLE)) continue;
    const char *opt = k->adam ? "adam" : "sgd";
    snprintf(key, sizeof key, "%s%d.%s", opt, step, n->name);
    snprintf(pk1, sizeof pk1, "%s1.%s", opt, n->name);
    snprintf(gk1, sizeof gk1, "grad.%s", n->name);
    snprintf(gk2, sizeof gk2, "grad2.%s", n->name);
    gview p, p1, g1, g2;
    if (golden(k->c, key, &n->shape, &p) || golden(k->c, pk1, &n->shape, &p1) || golden(k->c, gk1, &n->shape, &g1) ||
        (step == 2 && golden(k->c, gk2, &n->shape, &g2)))
      return bad + 1;
    CU_ASSERT_FATAL(p.idx == g1.idx && p.n == g1.n);
    const float *got = buf(k, i);
    int shown = 0, nbad = 0;
    for (int64_t j = 0; j < p.n; j++) {
      int64_t at = pos(&p, j);
      double p0 = k->p0[i][at], x1 = g1.val[j] + k->wd * p0, t1 = gtol(&g1, j), tol1, tol;
      /* the update's own rounding: a few ulp of the largest of p0, p and the step p0 - p */
      double slack = SLACK_ULPS * ldexp(fabs(p0) + fabs(p.val[j]) + fabs(p0 - p.val[j]), -23);
      if (k->adam)
        tol1 = adam_range(k, x1, t1, NAN, 0) + slack;
      else
        tol1 = k->lr * t1 + slack;
      tol = tol1;
      if (step == 2) {
        double pp = p1.val[j], x2 = g2.val[j] + k->wd * pp, t2 = gtol(&g2, j) + k->wd * tol1;
        if (k->adam)
          tol = tol1 + adam_range(k, x1, t1, x2, t2) + slack;
        else
          tol = tol1 * (1 + k->lr * k->wd) + k->lr * (k->momentum * t1 + t2) + slack;
      }
      double r = fabs(got[at] - p.val[j]) / tol;
      if (r > worst[W_UPDATE]) worst[W_UPDATE] = r;
      nbad += report(k->c, key, at, got[at], p.val[j], tol, &shown);
    }
    if (nbad) printf("\n  %s: %s: %d of %lld values outside tolerance", snc_ckpt_path(k->c), key, nbad, (long long)p.n);
    bad += nbad;
  }
  return bad;
}

static int check_scalar(gcase *k, const char *key, int id) {
  const snc_ckpt_tensor *t = need(k->c, key);
  if (!t) return 1;
  double g = *(const float *)t->data, x = *buf(k, id), tol = (RTOL + FWD_ATOL) * fabs(g);
  int shown = 0;
  return report(k->c, key, 0, x, g, tol, &shown);
}

static void run_case(const char *file) {
  gcase k;
  setup(&k, file);
  snc_graph *g = k.g;
  snc_kctx ctx = {.nb = g->batch, .seed = 1, .step = 1, .training = 0, .lr_scale = 1};
  int steps = (int)meta_num(k.c, "steps");

  /* evaluation forward */
  snc_exec_run(k.ex, SNC_RUN_FORWARD, &ctx);
  int bad = check_prefix(&k, "out.", FWD_ATOL, W_FWD);
  CU_ASSERT(bad == 0);

  /* training steps (dropout is off, so only batch norm differs from evaluation) */
  ctx.training = 1;
  for (int s = 1; s <= steps; s++) {
    ctx.step = s;
    snc_exec_run(k.ex, SNC_RUN_STEP, &ctx);
    char key[64];
    snprintf(key, sizeof key, s == 1 ? "loss" : "loss%d", s);
    CU_ASSERT_EQUAL(check_scalar(&k, key, g->loss), 0);
    if (s == 1) {
      for (int j = 0; j < snc_ckpt_count(k.c); j++) {
        const char *name = snc_ckpt_at(k.c, j)->name;
        if (strncmp(name, "term.", 5)) continue;
        int id = snc_graph_find(g, name + 5);
        CU_ASSERT_FATAL(id >= 0 && (g->nodes[id]->flags & SNC_NF_LOSS));
        CU_ASSERT_EQUAL(check_scalar(&k, name, id), 0);
      }
      CU_ASSERT(check_prefix(&k, "tout.", FWD_ATOL, W_FWD) <= 0);
    }
    CU_ASSERT_EQUAL(check_grads(&k, s == 1 ? "grad" : "grad2"), 0);
    snprintf(key, sizeof key, "state%d.", s);
    CU_ASSERT(check_prefix(&k, key, FWD_ATOL, W_FWD) <= 0);
    CU_ASSERT_EQUAL(check_updates(&k, s), 0);
  }
  teardown(&k);
}

static void test_siamese_ws1_aux1(void) { run_case(SNC_SRC("tests/golden/siamese_ws1_aux1.safetensors")); }
static void test_siamese_ws1_aux0(void) { run_case(SNC_SRC("tests/golden/siamese_ws1_aux0.safetensors")); }
static void test_siamese_ws0_aux1(void) { run_case(SNC_SRC("tests/golden/siamese_ws0_aux1.safetensors")); }
static void test_siamese_ws0_aux0(void) { run_case(SNC_SRC("tests/golden/siamese_ws0_aux0.safetensors")); }
static void test_zoo(void) { run_case(SNC_SRC("tests/golden/zoo.safetensors")); }
static void test_digit_cnn_sgd(void) { run_case(SNC_SRC("tests/golden/digit_cnn_sgd.safetensors")); }
static void test_head(void) { run_case(SNC_SRC("tests/golden/head.safetensors")); }

/* ------------------------------------------------------------ the golden copies are the models */

/* Same nodes, ops, names, attributes and per-sample shapes (the batch differs). */
static void same_graph(const char *a_path, const char *b_path) {
  snc_error err = {0};
  snc_graph *a = snc_model_load(a_path, NULL, 0, &err), *b = snc_model_load(b_path, NULL, 0, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  CU_ASSERT_EQUAL_FATAL(a->nnodes, b->nnodes);
  CU_ASSERT_EQUAL(a->loss, b->loss);
  for (int i = 0; i < a->nnodes; i++) {
    const snc_node *x = a->nodes[i], *y = b->nodes[i];
    int ok = x->op == y->op && !strcmp(x->name, y->name) && x->ninputs == y->ninputs && x->flags == y->flags &&
             x->shape.rank == y->shape.rank && x->weight == y->weight && x->init.kind == y->init.kind &&
             x->init.a == y->init.a && x->init.b == y->init.b;
    for (int d = (x->flags & SNC_NF_BATCHED) ? 1 : 0; ok && d < x->shape.rank; d++) ok = x->shape.dim[d] == y->shape.dim[d];
    for (int j = 0; ok && j < x->ninputs; j++) ok = x->inputs[j] == y->inputs[j];
    const snc_attrs *p = &x->attr, *q = &y->attr;
    ok = ok && !memcmp(p->kernel, q->kernel, sizeof p->kernel) && !memcmp(p->stride, q->stride, sizeof p->stride) &&
         !memcmp(p->pad, q->pad, sizeof p->pad) && p->axis == q->axis && p->start == q->start && p->len == q->len &&
         p->classes == q->classes && p->alpha == q->alpha && p->p == q->p && p->eps == q->eps &&
         p->momentum == q->momentum;
    if (!ok) printf("\n  node %d '%s' differs between %s and %s", i, x->name, a_path, b_path);
    CU_ASSERT(ok);
  }
  snc_graph_free(a);
  snc_graph_free(b);
}

static void test_siamese_copy(void) {
  same_graph(SNC_SRC("models/siamese.yaml"), SNC_SRC("tests/golden/siamese.yaml"));
}
static void test_digit_cnn_copy(void) {
  same_graph(SNC_SRC("models/digit_cnn.yaml"), SNC_SRC("tests/golden/digit_cnn_sgd.yaml"));
}

/* ------------------------------------------------------------ initialisation */

/* snc's init spec of every conv/linear parameter of models/siamese.yaml is PyTorch's U(-b, b), and
 * snc_exec_init_params draws inside it with a uniform's mean and spread. For n draws of U(-b, b):
 * the mean has standard deviation b / sqrt(3 n); the sample standard deviation s estimates
 * b / sqrt(3) with relative standard deviation sqrt(Var(x^2)) / (2 E x^2 sqrt(n)) = sqrt(4/45) / (2/3)
 * / sqrt(n) = 0.447 / sqrt(n). Both are allowed 5 standard deviations (a false alarm below 1e-6 per
 * check); tensors under 30 elements get only the range check. The largest |x| of n draws falls
 * below b (1 - 20/n) with probability (1 - 10/n)^n < e^-10 (one-sided). */
static void test_init(void) {
  snc_error err = {0};
  snc_ckpt *c = snc_ckpt_read(SNC_SRC("tests/golden/init.safetensors"), &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(c);
  snc_graph *g = snc_model_load(SNC_SRC("models/siamese.yaml"), NULL, 0, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  snc_exec *ex = snc_exec_new(g, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
  snc_exec_init_params(ex, 1);
  int checked = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *n = g->nodes[i];
    if (n->op != SNC_OP_PARAM) continue;
    char key[512];
    snprintf(key, sizeof key, "bound.%s", n->name);
    const snc_ckpt_tensor *t = need(c, key);
    if (!t) continue;
    double b = *(const float *)t->data;
    int spec = n->init.kind == SNC_INIT_UNIFORM && fabs(n->init.a + b) <= 1e-7 * b && fabs(n->init.b - b) <= 1e-7 * b;
    if (!spec) printf("\n  %s: snc's init U(%g, %g), PyTorch's U(-%g, %g)", n->name, n->init.a, n->init.b, b, b);
    CU_ASSERT(spec);
    const float *x = snc_exec_buf(ex, i);
    int64_t e = snc_shape_numel(&n->shape);
    double s = 0, s2 = 0, mx = 0;
    for (int64_t j = 0; j < e; j++) {
      CU_ASSERT(x[j] >= -b && x[j] <= b);
      s += x[j], s2 += (double)x[j] * x[j];
      if (fabs(x[j]) > mx) mx = fabs(x[j]);
    }
    double mean = s / (double)e, sd = sqrt((s2 - s * mean) / (double)(e - 1)), sd0 = b / sqrt(3.0);
    if (e >= 30) {
      int ok = fabs(mean) <= 5 * sd0 / sqrt((double)e) && fabs(sd / sd0 - 1) <= 5 * 0.447 / sqrt((double)e) &&
               mx >= b * (1 - 20.0 / (double)e);
      if (!ok) printf("\n  %s: %lld draws: mean %g, std %g (uniform: 0, %g), max|x| %g of %g", n->name, (long long)e, mean,
                      sd, sd0, mx, b);
      CU_ASSERT(ok);
    }
    checked++;
  }
  CU_ASSERT_EQUAL(checked, snc_ckpt_count(c) - 1); /* every bound.* belongs to a parameter */
  /* batch norm: PyTorch's fresh BatchNorm2d (weight, bias, running mean and var, eps, momentum) */
  const char *bn_model = "inputs: {x: {shape: [3, 4, 4]}}\ngraph:\n  - {name: bn, batchnorm, from: x}\n";
  snc_graph *h = snc_model_load_text(bn_model, strlen(bn_model), "bn.yaml", NULL, 0, &err);
  if (!h) printf("\n  %s", err.msg);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  const snc_ckpt_tensor *t = need(c, "batchnorm");
  CU_ASSERT_FATAL(t && tnumel(t) == 6);
  const float *ref = t->data;
  static const char *names[4] = {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"};
  snc_exec *hx = snc_exec_new(h, &err);
  snc_exec_init_params(hx, 1);
  for (int k = 0; k < 4; k++) {
    int id = snc_graph_find(h, names[k]);
    CU_ASSERT_FATAL(id >= 0);
    for (int j = 0; j < 3; j++) CU_ASSERT_EQUAL(((const float *)snc_exec_buf(hx, id))[j], ref[k]);
  }
  const snc_node *bn = h->nodes[snc_graph_find(h, "bn")];
  CU_ASSERT(bn->attr.eps == ref[4] && bn->attr.momentum == ref[5]);
  snc_exec_free(hx);
  snc_graph_free(h);
  snc_exec_free(ex);
  snc_graph_free(g);
  snc_ckpt_free(c);
}

static void test_report(void) {
  printf("\n  worst |snc - PyTorch| / tolerance: forward %.3f, gradients %.3f, updates %.3f, statistics %.3f",
         worst[W_FWD], worst[W_GRAD], worst[W_UPDATE], worst[W_STAT]);
  CU_PASS("report");
}

static void register_tests(void) {
  SNC_SUITE("golden", {"siamese graph = models/siamese.yaml", test_siamese_copy},
            {"digit_cnn graph = models/digit_cnn.yaml", test_digit_cnn_copy},
            {"siamese sharing, aux loss", test_siamese_ws1_aux1}, {"siamese sharing", test_siamese_ws1_aux0},
            {"siamese aux loss", test_siamese_ws0_aux1}, {"siamese plain", test_siamese_ws0_aux0},
            {"ops zoo, Adam x2", test_zoo}, {"digit_cnn, SGD momentum x2", test_digit_cnn_sgd},
            {"decision head (outer, constants, reduce_sum), Adam x2", test_head},
            {"init = PyTorch's defaults", test_init}, {"tolerance report", test_report});
}

SNC_TEST_MAIN(register_tests)
