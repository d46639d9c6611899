/* `snrun infer`: any model on NumPy inputs. The model's results (snc_graph_results: predictions and
 * the nodes nothing but losses read) are evaluated in batches of the model's batch size, in eval
 * mode, and written as DIR/<result>.npy, batch first, C order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_util.h"
#include "onnx_cli.h"
#include "snc/data.h"
#include "snc/backend.h"
#include "snc/train.h"

#define MAX_INPUTS 16

static const char *const usage_infer =
    "usage: snrun infer MODEL [--checkpoint CKPT] --input NAME=FILE.npy ... --output DIR [options]\n"
    "\n"
    "Evaluates MODEL (a model file or a .onnx file) on NumPy inputs (float32 or int32, C order,\n"
    "batch first) and writes every result of the model (each prediction of `outputs:`, every layer\n"
    "that only losses read, or the ONNX graph's outputs) as DIR/NAME.npy.\n"
    "\n"
    "options:\n"
    "  --checkpoint CKPT    the weights (snrun train --save, snc import --weights); a .onnx MODEL\n"
    "                       without one uses its initializers\n"
    "  --input NAME=FILE    one per input the results need; labels may be left out\n"
    "  --result NAME        compute this layer (repeatable) instead of the model's results\n"
    "  --output DIR         created when missing\n"
    "  --backend jit|ref    generated code (default) or the reference executor\n"
    "  --threads N          threads of a step (jit)\n"
    "  --set NAME=VALUE     override a switch (repeatable)\n"
    "  -q, --quiet          print nothing on success\n"
    "\n"
    "exit status: 0 success, 1 model, checkpoint or file error, 2 wrong usage\n";

typedef struct infer_in {
  char *spec; /* "name=file", owned copy; split in place */
  const char *name, *file;
  int node;
  snc_npy a;
} infer_in;

static int add_result_outputs(snc_graph *g, const int *res, int nres) {
  /* the compiled evaluation exports g->outputs' predictions; results that are not one join them,
     with themselves as "labels" (nothing evaluates accuracies here) */
  snc_output *o = snc_arena_alloc(&g->arena, (size_t)(g->noutputs + nres + 1) * sizeof *o);
  if (g->noutputs) memcpy(o, g->outputs, (size_t)g->noutputs * sizeof *o);
  int n = g->noutputs;
  for (int k = 0; k < nres; k++) {
    int have = 0;
    for (int j = 0; j < g->noutputs; j++) have |= g->outputs[j].node == res[k];
    if (!have) o[n++] = (snc_output){g->nodes[res[k]]->name, res[k], res[k]};
  }
  g->outputs = o; /* the arena owns both arrays */
  g->noutputs = n;
  return 0;
}

static int check_input(const snc_graph *g, infer_in *in, snc_error *err) {
  const snc_node *x = g->nodes[in->node];
  char want[128], got[128];
  int64_t dims[SNC_MAX_DIMS] = {0};
  for (int k = 1; k < x->shape.rank; k++) dims[k] = x->shape.dim[k];
  int ok = in->a.dtype == x->dtype && in->a.ndim == x->shape.rank && in->a.ndim >= 1;
  for (int k = 1; ok && k < x->shape.rank; k++) ok = in->a.dims[k] == x->shape.dim[k];
  if (ok && in->a.dims[0] >= 1) return 0;
  snprintf(want, sizeof want, "(N");
  for (int k = 1; k < x->shape.rank; k++) snprintf(want + strlen(want), sizeof want - strlen(want), ", %lld", (long long)dims[k]);
  snprintf(want + strlen(want), sizeof want - strlen(want), "%s)", x->shape.rank == 1 ? "," : "");
  return snc_errorf(err, "%s: %s array of shape %s, but input '%s' needs %s %s with N >= 1", in->file,
                    in->a.dtype == SNC_I32 ? "int32" : "float32", snc_npy_shape_str(in->a.ndim, in->a.dims, got, sizeof got),
                    x->name, x->dtype == SNC_I32 ? "int32" : "float32", want);
}

int snc_cli_infer(int argc, char **argv) {
  const char *model = NULL, *ckpt = NULL, *outdir = NULL, *backend = "jit";
  infer_in ins[MAX_INPUTS];
  const char *want[MAX_INPUTS];
  int nwant = 0;
  snc_override sets[SNC_CLI_MAX_SETS];
  int nin = 0, nsets = 0, quiet = 0, threads = 0, status = 1;
  snc_error err = {0};
  memset(ins, 0, sizeof ins);
  for (int i = 0; i < argc; i++) {
    char *a = argv[i];
    int has = i + 1 < argc;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return fputs(usage_infer, stdout), 0;
    if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = 1;
    else if (!strcmp(a, "--checkpoint") && has) ckpt = argv[++i];
    else if (!strcmp(a, "--output") && has) outdir = argv[++i];
    else if (!strcmp(a, "--backend") && has) backend = argv[++i];
    else if (!strcmp(a, "--result") && has) {
      if (nwant == MAX_INPUTS) return fprintf(stderr, "snrun infer: at most %d --result options\n", MAX_INPUTS), 2;
      want[nwant++] = argv[++i];
    }
    else if (!strcmp(a, "--threads") && has) threads = atoi(argv[++i]);
    else if (!strcmp(a, "--set") && has) {
      if (snc_cli_add_set("snrun infer", argv[++i], sets, &nsets, SNC_CLI_MAX_SETS)) return 2;
    } else if (!strcmp(a, "--input") && has) {
      char *eq = strchr(argv[++i], '=');
      if (!eq || eq == argv[i] || !eq[1]) return fprintf(stderr, "snrun infer: --input takes NAME=FILE.npy, not '%s'\n", argv[i]), 2;
      if (nin == MAX_INPUTS) return fprintf(stderr, "snrun infer: at most %d inputs\n", MAX_INPUTS), 2;
      *eq = 0;
      ins[nin].name = argv[i], ins[nin].file = eq + 1, ins[nin].node = -1;
      nin++;
    } else if (snc_cli_model_arg("snrun infer", a, &model)) {
      return 2;
    }
  }
  if (!model || !outdir) return fprintf(stderr, "snrun infer: %s", usage_infer), 2;
  if (strcmp(backend, "jit") && strcmp(backend, "ref"))
    return fprintf(stderr, "snrun infer: --backend takes jit or ref, not '%s'\n", backend), 2;
  if (threads < 0 || threads > 1024) return fprintf(stderr, "snrun infer: --threads takes 0 to 1024\n"), 2;

  snc_onnx_model m;
  snc_graph *g = NULL;
  snc_backend *be = NULL;
  int *res = NULL, nres = 0;
  float **outs = NULL;
  if (!(g = snc_onnx_load_any(model, sets, nsets, 0, &m, &err))) goto done;
  if (!(res = calloc((size_t)g->nnodes + 1, sizeof *res))) goto oom;
  /* the layers to compute: --result, else the ONNX graph's outputs, else the model's results */
  int nnamed = nwant ? nwant : m.yaml ? m.nresults : 0;
  for (int k = 0; k < nnamed; k++) {
    const char *nm = nwant ? want[k] : m.results[k];
    int id = snc_graph_find(g, nm);
    if (id < 0 || id >= g->nforward || g->nodes[id]->op == SNC_OP_PARAM || g->nodes[id]->op == SNC_OP_CONST ||
        g->nodes[id]->op == SNC_OP_INPUT || !(g->nodes[id]->flags & SNC_NF_BATCHED)) {
      snc_errorf(&err, "--result %s: model '%s' has no layer '%s' computed per sample", nm, g->name, nm);
      goto done;
    }
    res[nres++] = id;
  }
  if (!nnamed) nres = snc_graph_results(g, res, g->nnodes);
  if (!nres) {
    snc_errorf(&err, "%s: model '%s' has no results to compute", g->file, g->name);
    goto done;
  }
  /* the inputs the results need */
  char *need = calloc((size_t)g->nnodes + 1, 1);
  if (!need) goto oom;
  for (int k = 0; k < nres; k++) need[res[k]] = 1;
  for (int i = g->nforward - 1; i >= 0; i--)
    if (need[i])
      for (int k = 0; k < g->nodes[i]->ninputs; k++) need[g->nodes[i]->inputs[k]] = 1;
  int64_t N = -1;
  const char *nfile = NULL;
  for (int k = 0; k < nin; k++) {
    int id = snc_graph_find(g, ins[k].name);
    if (id < 0 || g->nodes[id]->op != SNC_OP_INPUT) {
      char list[512] = "";
      for (int i = 0; i < g->nforward; i++)
        if (g->nodes[i]->op == SNC_OP_INPUT) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", *list ? ", " : "", g->nodes[i]->name);
      snc_errorf(&err, "--input %s: model '%s' has no input '%s' (its inputs: %s)", ins[k].name, g->name, ins[k].name, list);
      free(need);
      goto done;
    }
    for (int j = 0; j < k; j++)
      if (ins[j].node == id) {
        snc_errorf(&err, "--input %s given twice", ins[k].name);
        free(need);
        goto done;
      }
    ins[k].node = id;
    if (snc_npy_read(ins[k].file, &ins[k].a, &err) || check_input(g, &ins[k], &err)) {
      free(need);
      goto done;
    }
    if (N >= 0 && ins[k].a.dims[0] != N) {
      snc_errorf(&err, "%s: %lld samples, but %s has %lld", ins[k].file, (long long)ins[k].a.dims[0], nfile, (long long)N);
      free(need);
      goto done;
    }
    N = ins[k].a.dims[0], nfile = ins[k].file;
  }
  for (int i = 0; i < g->nforward; i++) {
    int given = 0;
    for (int k = 0; k < nin; k++) given |= ins[k].node == i;
    if (g->nodes[i]->op == SNC_OP_INPUT && need[i] && !given) {
      snc_errorf(&err, "model '%s' needs --input %s=FILE.npy", g->name, g->nodes[i]->name);
      free(need);
      goto done;
    }
  }
  free(need);
  if (N < 0) {
    snc_errorf(&err, "model '%s': no --input given", g->name);
    goto done;
  }
  add_result_outputs(g, res, nres);
  if (!strcmp(backend, "ref")) be = snc_backend_ref_new(g, &err);
  else { /* the machine code from the compiled-module cache after the first run (docs/jit.md) */
    char cdir[4096];
    be = snc_backend_jit_new(g, &(snc_jit_backend_opts){.threads = threads, .cache_dir = snc_jit_cache_default_dir(cdir, sizeof cdir)},
                             &err);
  }
  if (!be) goto done;
  be->init_params(be, 0); /* state and constants; the weights come next */
  int none = snc_cli_load_weights(ckpt, g, be, &m, &err);
  if (none) {
    if (none > 0) snc_errorf(&err, "snrun infer: %s needs --checkpoint (trained weights)", model);
    goto done;
  }
  if (!(outs = calloc((size_t)nres, sizeof *outs))) goto oom;
  for (int k = 0; k < nres; k++) {
    int64_t per = snc_shape_numel(&g->nodes[res[k]]->shape) / g->batch;
    if (!(outs[k] = malloc((size_t)(N * per > 0 ? N * per : 1) * 4))) goto oom;
  }
  for (int64_t r0 = 0; r0 < N; r0 += g->batch) {
    int64_t nb = N - r0 < g->batch ? N - r0 : g->batch;
    for (int k = 0; k < nin; k++) {
      int64_t per = ins[k].a.n / N;
      memcpy(be->buf(be, ins[k].node), (char *)ins[k].a.data + r0 * per * 4, (size_t)(nb * per) * 4);
    }
    snc_kctx ctx = {.nb = nb, .seed = 0, .step = 1, .training = 0, .lr_scale = 1};
    be->run(be, SNC_RUN_FORWARD, &ctx);
    for (int k = 0; k < nres; k++) {
      int64_t per = snc_shape_numel(&g->nodes[res[k]]->shape) / g->batch;
      memcpy((char *)outs[k] + r0 * per * 4, be->buf(be, res[k]), (size_t)(nb * per) * 4);
    }
  }
  if (mkdir(outdir, 0777) && errno != EEXIST) {
    snc_errorf(&err, "%s: cannot create the directory: %s", outdir, strerror(errno));
    goto done;
  }
  for (int k = 0; k < nres; k++) {
    const snc_node *x = g->nodes[res[k]];
    int64_t dims[SNC_MAX_DIMS];
    memcpy(dims, x->shape.dim, sizeof dims);
    dims[0] = N;
    size_t len = strlen(outdir) + strlen(x->name) + 8;
    char *path = malloc(len);
    if (!path) goto oom;
    snprintf(path, len, "%s/%s.npy", outdir, x->name);
    int rc = snc_npy_write(path, x->dtype, x->shape.rank, dims, outs[k], &err);
    if (!rc && !quiet) printf("%s: %s %s\n", path, x->dtype == SNC_I32 ? "int32" : "float32", snc_npy_shape_str(x->shape.rank, dims, (char[128]){0}, 128));
    free(path);
    if (rc) goto done;
  }
  status = 0;
  goto done;
oom:
  snc_errorf(&err, "snrun infer: out of memory");
done:
  if (status) fprintf(stderr, "%s\n", err.msg);
  for (int k = 0; outs && k < nres; k++) free(outs[k]);
  free(outs);
  free(res);
  for (int k = 0; k < nin; k++) snc_npy_free(&ins[k].a);
  if (be) be->free(be);
  snc_graph_free(g);
  snc_onnx_model_free(&m);
  return status;
}
