/* `snc import` and `snc export` (docs/onnx.md), and the step `snrun infer` shares with them: the
 * weights of an import put into a backend's parameters or written as an snrun checkpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "onnx_cli.h"
#include "snc/data.h"
#include "snc/file.h"
#include "snc/frontend.h"
#include "snc/rng.h"
#include "snc/train.h"

static const snc_onnx_tensor *find_weight(const snc_onnx_model *m, const char *name) {
  for (int k = 0; k < m->nweights; k++)
    if (!strcmp(m->weights[k].name, name)) return &m->weights[k];
  return NULL;
}

/* The weight for PARAM p, with p's shape; NULL and err otherwise. */
static const snc_onnx_tensor *weight_for(const snc_graph *g, const snc_node *p, const snc_onnx_model *m, snc_error *err) {
  const snc_onnx_tensor *w = find_weight(m, p->name);
  char a[64], b[64];
  if (!w) return snc_errorf(err, "%s: no initializer gives parameter '%s'", g->file, p->name), NULL;
  snc_shape s = {w->ndim, {0}};
  memcpy(s.dim, w->dims, sizeof s.dim);
  if (!snc_shape_eq(&s, &p->shape))
    return snc_errorf(err, "%s: initializer for '%s' has shape %s, the layer needs %s", g->file, p->name,
                      snc_shape_str(&s, 0, a, sizeof a), snc_shape_str(&p->shape, 0, b, sizeof b)),
           NULL;
  return w;
}

/* Copies the import's weights into every PARAM node of g (the forward graph: parameters and batch
 * norm statistics), checking names and shapes. */
static int onnx_weights(const snc_graph *g, snc_backend *be, const snc_onnx_model *m, snc_error *err) {
  for (int i = 0; i < g->nforward; i++) {
    const snc_node *p = g->nodes[i];
    if (p->op != SNC_OP_PARAM) continue;
    const snc_onnx_tensor *w = weight_for(g, p, m, err);
    if (!w) return -1;
    memcpy(be->buf(be, i), w->data, (size_t)snc_shape_numel(&p->shape) * sizeof(float));
  }
  return 0;
}

int snc_cli_onnx_checkpoint(const char *path, const snc_graph *g, const snc_onnx_model *m, snc_error *err) {
  int n = 0, rc;
  snc_ckpt_tensor *t = calloc((size_t)g->nnodes + 1, sizeof *t);
  if (!t) return snc_errorf(err, "%s: out of memory", path);
  for (int i = 0; i < g->nforward; i++) {
    const snc_node *p = g->nodes[i];
    if (p->op != SNC_OP_PARAM) continue;
    const snc_onnx_tensor *w = weight_for(g, p, m, err);
    if (!w) {
      free(t);
      return -1;
    }
    snc_ckpt_tensor *x = &t[n++];
    x->name = p->name;
    x->dtype = SNC_CKPT_F32;
    x->ndim = w->ndim;
    memcpy(x->dims, w->dims, sizeof x->dims);
    x->data = w->data; /* read only by the writer */
  }
  int32_t step = 0;
  t[n++] = (snc_ckpt_tensor){"step", SNC_CKPT_I32, 0, {0}, &step};
  char sw[1024];
  snc_graph_switches_str(g, sw, sizeof sw);
  const char *meta[] = {"format", "snrun-1", "model", g->name, "model_file", g->file, "switches", sw, "seed", "0",
                        "epoch", "0", "step", "0", "generator", g->data.generator ? g->data.generator : "",
                        "standardize", "false", "mean", "0", "std", "1", "source", "snc import", NULL};
  rc = snc_ckpt_write(path, t, n, meta, err);
  free(t);
  return rc;
}

int snc_cli_load_weights(const char *ckpt, const snc_graph *g, snc_backend *be, const snc_onnx_model *m, snc_error *err) {
  if (ckpt) {
    snc_run_info info;
    return snc_checkpoint_load(ckpt, g, be, &info, err) ? -1 : 0;
  }
  if (m->yaml) return onnx_weights(g, be, m, err) ? -1 : 0;
  return 1;
}

/* ---- snc import ----------------------------------------------------------------------------------- */

static const char *const usage_import =
    "usage: snc import MODEL.onnx -o MODEL.yaml [--weights CKPT.safetensors] [options]\n"
    "\n"
    "Converts an ONNX graph (opsets 11-17, as torch.onnx.export writes it) into snc's model language\n"
    "and its initializers into a checkpoint that snrun --checkpoint and snc compile --embed-weights\n"
    "take. docs/onnx.md lists the operators.\n"
    "\n"
    "options:\n"
    "  -o OUT.yaml            the model file (\"-\": standard output)\n"
    "  --weights CKPT         write the weights as a safetensors checkpoint\n"
    "  --batch N              training.batch_size of the model (default: a fixed batch axis, else 100)\n"
    "  --train mnist_digits   add a label input, a cross-entropy loss, an accuracy output and the\n"
    "                         training and data sections for the bundled digits ([1,14,14] input)\n"
    "  -q, --quiet            print nothing on success\n"
    "\n"
    "exit status: 0 success, 1 the file has an error, 2 wrong usage\n";

int snc_cli_import(int argc, char **argv) {
  const char *in = NULL, *out = NULL, *weights = NULL;
  snc_onnx_options o = {0};
  int quiet = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    int has = i + 1 < argc;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return fputs(usage_import, stdout), 0;
    if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = 1;
    else if (!strcmp(a, "-o") && has) out = argv[++i];
    else if (!strcmp(a, "--weights") && has) weights = argv[++i];
    else if (!strcmp(a, "--train") && has) o.train = argv[++i];
    else if (!strcmp(a, "--batch") && has) {
      if (snc_cli_parse_int(argv[++i], 1, 1 << 20, &o.batch))
        return fprintf(stderr, "snc import: --batch takes a number from 1 to %d, not '%s'\n", 1 << 20, argv[i]), 2;
    } else if (snc_cli_model_arg("snc import", a, &in)) {
      return 2;
    }
  }
  if (!in || !out) return fprintf(stderr, "snc import: %s", usage_import), 2;
  snc_error err = {0};
  snc_onnx_model m;
  snc_graph *g = NULL;
  int status = 1;
  if (snc_onnx_import(in, &o, &m, &err)) goto done;
  /* snc's own rules check the text before anything is written */
  if (!(g = snc_model_load_text(m.yaml, m.yaml_len, in, NULL, 0, &err))) goto done;
  if (weights && snc_cli_onnx_checkpoint(weights, g, &m, &err)) goto done;
  if (!strcmp(out, "-")) {
    fwrite(m.yaml, 1, m.yaml_len, stdout);
  } else if (snc_file_write_atomic(out, m.yaml, m.yaml_len, &err)) {
    goto done;
  }
  if (!quiet && strcmp(out, "-"))
    printf("%s: model '%s' (opset %d), %d graph nodes, %d weight tensors%s%s\n", out, g->name, m.opset, g->nforward,
           m.nweights, weights ? " -> " : "", weights ? weights : "");
  status = 0;
done:
  if (status) fprintf(stderr, "%s\n", err.msg);
  snc_graph_free(g);
  snc_onnx_model_free(&m);
  return status;
}

/* ---- snc export ----------------------------------------------------------------------------------- */

static const char *const usage_export =
    "usage: snc export MODEL [--checkpoint CKPT.safetensors] -o MODEL.onnx [options]\n"
    "\n"
    "Writes the model's evaluation graph (dropout off, batch norm on its running statistics) as an ONNX\n"
    "file (opset 13) with the checkpoint's weights (without one: the initialisation of --seed, or\n"
    "the initializers of a .onnx MODEL).\n"
    "\n"
    "options:\n"
    "  -o OUT.onnx       the file to write\n"
    "  --checkpoint C    weights from a checkpoint of snrun train --save or snc import --weights\n"
    "  --set NAME=VALUE  override a switch (repeatable)\n"
    "  --seed N          without a checkpoint: initialise the parameters from this seed (default:\n"
    "                    the model's training.seed)\n"
    "  -q, --quiet       print nothing on success\n"
    "\n"
    "exit status: 0 success, 1 model, checkpoint or file error, 2 wrong usage\n";

int snc_cli_export(int argc, char **argv) {
  const char *model = NULL, *out = NULL, *ckpt = NULL;
  snc_override sets[SNC_CLI_MAX_SETS];
  int nsets = 0, quiet = 0, have_seed = 0;
  unsigned long long seed = 0;
  snc_error err = {0};
  for (int i = 0; i < argc; i++) {
    char *a = argv[i];
    int has = i + 1 < argc;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return fputs(usage_export, stdout), 0;
    if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = 1;
    else if (!strcmp(a, "-o") && has) out = argv[++i];
    else if (!strcmp(a, "--checkpoint") && has) ckpt = argv[++i];
    else if (!strcmp(a, "--seed") && has) {
      char *end;
      seed = strtoull(argv[++i], &end, 10);
      if (!*argv[i] || *end || *argv[i] == '-') return fprintf(stderr, "snc export: --seed takes a number, not '%s'\n", argv[i]), 2;
      have_seed = 1;
    } else if (!strcmp(a, "--set") && has) {
      if (snc_cli_add_set("snc export", argv[++i], sets, &nsets, SNC_CLI_MAX_SETS)) return 2;
    } else if (snc_cli_model_arg("snc export", a, &model)) {
      return 2;
    }
  }
  if (!model || !out) return fprintf(stderr, "snc export: %s", usage_export), 2;
  snc_onnx_model m;
  snc_graph *g = NULL;
  snc_backend *be = NULL;
  snc_onnx_tensor *vals = NULL;
  int status = 1, nv = 0;
  if (!(g = snc_onnx_load_any(model, sets, nsets, 0, &m, &err))) goto done;
  if (!(be = snc_backend_ref_new(g, &err))) goto done;
  int none = snc_cli_load_weights(ckpt, g, be, &m, &err);
  if (none < 0) goto done;
  if (none) be->init_params(be, snc_seed_derive(have_seed ? seed : g->train.seed, SNC_SEED_INIT));
  if (!(vals = calloc((size_t)g->nnodes + 1, sizeof *vals))) {
    snc_errorf(&err, "snc export: out of memory");
    goto done;
  }
  for (int i = 0; i < g->nforward; i++) {
    const snc_node *p = g->nodes[i];
    if (p->op != SNC_OP_PARAM) continue;
    snc_onnx_tensor *v = &vals[nv++];
    v->name = p->name;
    v->ndim = p->shape.rank;
    memcpy(v->dims, p->shape.dim, sizeof v->dims);
    v->data = be->buf(be, i); /* read only by the exporter */
  }
  if (snc_onnx_export(g, vals, nv, out, &err)) goto done;
  if (!quiet) printf("%s: ONNX (opset 13) of model '%s', %d parameter tensors\n", out, g->name, nv);
  status = 0;
done:
  if (status) fprintf(stderr, "%s\n", err.msg);
  free(vals);
  if (be) be->free(be);
  snc_graph_free(g);
  snc_onnx_model_free(&m);
  return status;
}
