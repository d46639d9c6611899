/* Training checkpoints: every persistent buffer of a model in one safetensors file, with the metadata
 * that makes it usable alone (model, switches, seed, standardisation), and `snrun eval` on one. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "snc/data.h"
#include "snc/train.h"

#define MAX_SETS 64

int snc_checkpoint_save(const char *path, const snc_graph *g, snc_backend *be, const snc_run_info *info,
                        snc_error *err) {
  int n = 0, rc;
  snc_ckpt_tensor *t = calloc((size_t)g->nnodes + 1, sizeof *t);
  if (!t) return snc_errorf(err, "%s: out of memory for the checkpoint", path);
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *p = g->nodes[i];
    if (p->op != SNC_OP_PARAM || !strcmp(p->name, "step")) continue;
    snc_ckpt_tensor *x = &t[n++];
    x->name = p->name;
    x->dtype = SNC_CKPT_F32;
    x->ndim = p->shape.rank;
    for (int k = 0; k < p->shape.rank; k++) x->dims[k] = p->shape.dim[k];
    x->data = be->buf(be, i); /* read only by the writer */
  }
  int32_t step = info->step > INT32_MAX ? INT32_MAX : (int32_t)info->step;
  t[n++] = (snc_ckpt_tensor){"step", SNC_CKPT_I32, 0, {0}, &step};
  char sw[1024], seed[32], epoch[16], steps[32], mean[32], std[32];
  snc_graph_switches_str(g, sw, sizeof sw);
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)info->seed);
  snprintf(epoch, sizeof epoch, "%d", info->epoch);
  snprintf(steps, sizeof steps, "%lld", (long long)info->step);
  snprintf(mean, sizeof mean, "%.9g", info->mean);
  snprintf(std, sizeof std, "%.9g", info->std);
  const char *meta[] = {"format", "snrun-1", "model", g->name, "model_file", g->file, "switches", sw, "seed", seed,
                        "epoch", epoch, "step", steps, "generator", g->data.generator ? g->data.generator : "",
                        "standardize", info->standardized ? "true" : "false", "mean", mean, "std", std, NULL};
  rc = snc_ckpt_write(path, t, n, meta, err);
  free(t);
  return rc;
}

/* Parses an unsigned decimal metadata value; -1 when absent or malformed. */
static int meta_u64(const snc_ckpt *c, const char *key, uint64_t *v) {
  const char *s = snc_ckpt_meta(c, key);
  char *end;
  if (!s || !*s || *s == '-') return -1;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 10);
  if (*end || errno) return -1;
  *v = x;
  return 0;
}

static int meta_float(const snc_ckpt *c, const char *key, float *v) {
  const char *s = snc_ckpt_meta(c, key);
  char *end;
  if (!s || !*s) return -1;
  float x = strtof(s, &end);
  if (*end || !isfinite(x)) return -1;
  *v = x;
  return 0;
}

static int check_model(const snc_ckpt *c, const snc_graph *g, snc_error *err) {
  const char *model = snc_ckpt_meta(c, "model"), *file = snc_ckpt_meta(c, "model_file");
  if (!model) return snc_errorf(err, "%s: not an snrun checkpoint (no 'model' in its metadata)", snc_ckpt_path(c));
  if (strcmp(model, g->name))
    return snc_errorf(err, "%s: checkpoint of model '%s'%s%s%s, but %s defines model '%s'", snc_ckpt_path(c), model,
                      file ? " (" : "", file ? file : "", file ? ")" : "", g->file, g->name);
  return 0;
}

/* Every PARAM of g (but the step count) from c, checking the model and each tensor's shape; with
 * state_optional, a PARAM of the backward graph (optimizer state) absent from c keeps its value.
 * Returns the tensors read (*nstate of them optimizer state), or -1 with err naming the tensor. */
static int load_params(const snc_ckpt *c, const snc_graph *g, snc_backend *be, int state_optional, int *nstate,
                       snc_error *err) {
  if (check_model(c, g, err)) return -1;
  int n = 0;
  *nstate = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *p = g->nodes[i];
    if (p->op != SNC_OP_PARAM || !strcmp(p->name, "step")) continue;
    if (state_optional && i >= g->nforward && !snc_ckpt_find(c, p->name)) continue;
    int64_t dims[SNC_MAX_DIMS];
    for (int k = 0; k < p->shape.rank; k++) dims[k] = p->shape.dim[k];
    if (snc_ckpt_load_f32(c, p->name, p->shape.rank, dims, be->buf(be, i), err) != 0) {
      char sw[1024];
      const char *had = snc_ckpt_meta(c, "switches");
      snc_graph_switches_str(g, sw, sizeof sw);
      if (had && strcmp(had, sw)) { /* the likely cause: another setting of the switches */
        size_t l = strlen(err->msg);
        snprintf(err->msg + l, sizeof err->msg - l, " (the checkpoint was trained with %s; the model now has %s)", had,
                 sw);
      }
      return -1;
    }
    n++;
    if (i >= g->nforward) ++*nstate;
  }
  return n;
}

static int load_from(const snc_ckpt *c, const snc_graph *g, snc_backend *be, snc_run_info *info, snc_error *err) {
  int nstate;
  if (load_params(c, g, be, 0, &nstate, err) < 0) return -1;
  memset(info, 0, sizeof *info);
  uint64_t v;
  if (meta_u64(c, "seed", &info->seed))
    return snc_errorf(err, "%s: metadata 'seed' is missing or not a number", snc_ckpt_path(c));
  if (meta_u64(c, "epoch", &v) == 0) info->epoch = (int)v;
  if (meta_u64(c, "step", &v) == 0) info->step = (int64_t)v;
  const char *st = snc_ckpt_meta(c, "standardize");
  info->standardized = st && !strcmp(st, "true");
  info->mean = 0;
  info->std = 1;
  if (info->standardized && (meta_float(c, "mean", &info->mean) || meta_float(c, "std", &info->std) || !(info->std > 0)))
    return snc_errorf(err, "%s: metadata 'mean'/'std' missing or unusable for a standardised model", snc_ckpt_path(c));
  return 0;
}

int snc_checkpoint_init(const char *path, const snc_graph *g, snc_backend *be, int *nstate, snc_error *err) {
  snc_ckpt *c = snc_ckpt_read(path, err);
  if (!c) return -1;
  int n = load_params(c, g, be, 1, nstate, err); /* optimizer state: fresh when absent */
  snc_ckpt_free(c);
  return n;
}

int snc_checkpoint_load(const char *path, const snc_graph *g, snc_backend *be, snc_run_info *info, snc_error *err) {
  snc_ckpt *c = snc_ckpt_read(path, err);
  if (!c) return -1;
  int rc = load_from(c, g, be, info, err);
  snc_ckpt_free(c);
  return rc;
}

/* Overrides for `eval`: the checkpoint's switch values for switches of g the user did not --set,
 * then the user's. Strings point into `store`. */
static int eval_sets(const snc_ckpt *c, const snc_graph *g, const snc_override *sets, int nsets, char *store,
                     size_t len, snc_override *out) {
  int n = 0;
  const char *had = snc_ckpt_meta(c, "switches");
  snprintf(store, len, "%s", had ? had : "");
  for (char *tok = strtok(store, ","); tok && n < MAX_SETS; tok = strtok(NULL, ",")) {
    char *eq = strchr(tok, '=');
    if (!eq) continue;
    *eq = 0;
    int known = 0, user = 0;
    for (int i = 0; i < g->nswitches; i++) known |= !strcmp(g->switches[i].name, tok);
    for (int i = 0; i < nsets; i++) user |= !strcmp(sets[i].key, tok);
    if (known && !user) out[n++] = (snc_override){tok, eq + 1};
  }
  for (int i = 0; i < nsets && n < 2 * MAX_SETS; i++) out[n++] = sets[i];
  return n;
}

int snc_eval_checkpoint(const char *model, const snc_override *sets, int nsets, const char *ckpt,
                        const char *data_dir, const uint64_t *seed, const snc_jit_backend_opts *jit,
                        snc_eval_result *r, snc_graph **g_out, snc_error *err) {
  snc_graph *g = NULL;
  snc_backend *be = NULL;
  snc_train_data d = {0};
  snc_run_info info;
  snc_override all[2 * MAX_SETS];
  char store[1024];
  int rc = -1;
  if (g_out) *g_out = NULL;
  if (nsets > MAX_SETS) return snc_errorf(err, "at most %d --set options", MAX_SETS);
  snc_ckpt *c = snc_ckpt_read(ckpt, err);
  if (!c) return -1;
  if (!(g = snc_model_load(model, sets, nsets, err)) || check_model(c, g, err)) goto cleanup;
  int n = eval_sets(c, g, sets, nsets, store, sizeof store, all);
  snc_graph_free(g); /* again, with the checkpoint's switches */
  if (!(g = snc_model_load(model, all, n, err))) goto cleanup;
  if (!(be = jit ? snc_backend_jit_new(g, jit, err) : snc_backend_ref_new(g, err)) || load_from(c, g, be, &info, err))
    goto cleanup;
  g->data.standardize = info.standardized; /* the network was trained on data prepared this way */
  float ms[2] = {info.mean, info.std};
  if (snc_train_data_load(g, data_dir, seed ? *seed : info.seed, ms, &d, err) != 0) goto cleanup;
  snc_evaluate(g, be, &d.test, 0, r);
  rc = 0;
cleanup:
  snc_train_data_free(&d);
  if (be) be->free(be);
  snc_ckpt_free(c);
  if (rc == 0 && g_out)
    *g_out = g; /* ownership passes to the caller */
  else
    snc_graph_free(g);
  return rc;
}
