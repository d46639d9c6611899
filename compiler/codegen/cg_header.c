/* The C header `snc compile` writes beside an object file: the ABI struct, the model's sizes and
 * shapes as macros, the entry points, and header-only helpers (aligned arena, checkpoint load and
 * save in snrun's safetensors format) specialised to the model's tensor table. Every symbol carries
 * the model's prefix. See docs/embedding.md. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "snc/codegen.h"
#include "snc/file.h"

static const char lib_text[] =
#include "codegen/cg_header_lib.inc"
    ;

/* the name as an upper-case C identifier part */
static void upper_id(const char *s, char *out, size_t len) {
  size_t n = 0;
  for (; *s && n + 1 < len; s++) out[n++] = isalnum((unsigned char)*s) ? (char)toupper((unsigned char)*s) : '_';
  out[n] = 0;
}

/* s with "snc_M_" -> "<p>_" and "SNC_M_" -> "<P>_" */
static void put_lib(FILE *f, const char *s, const char *p, const char *P) {
  while (*s) {
    if (!strncmp(s, "snc_M_", 6)) {
      fprintf(f, "%s_", p);
      s += 6;
    } else if (!strncmp(s, "SNC_M_", 6)) {
      fprintf(f, "%s_", P);
      s += 6;
    } else {
      fputc(*s++, f);
    }
  }
}

/* a C string literal of s */
static void put_cstr(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20 || c >= 0x7f) fprintf(f, "\\%03o", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

static int per_sample(const snc_node *n, int64_t *dims) {
  int b = !!(n->flags & SNC_NF_BATCHED), r = 0;
  for (int d = b; d < n->shape.rank; d++) dims[r++] = n->shape.dim[d];
  return r;
}

static void shape_text(const snc_node *n, char *buf, size_t len) {
  int64_t d[SNC_MAX_DIMS];
  int r = per_sample(n, d);
  size_t k = (size_t)snprintf(buf, len, "[nb");
  for (int i = 0; i < r && k < len; i++) k += (size_t)snprintf(buf + k, len - k, ", %lld", (long long)d[i]);
  if (k < len) snprintf(buf + k, len - k, "]");
}

/* what output k of the evaluation entry holds */
static void output_text(const snc_program *p, int k, char *buf, size_t len) {
  const snc_graph *g = p->g;
  int id = p->outputs[k];
  for (int o = 0; o < g->noutputs; o++) {
    const snc_output *out = &g->outputs[o];
    const snc_node *t = g->nodes[out->target];
    if (out->node == id) {
      const snc_node *n = g->nodes[id];
      int64_t last = n->shape.rank > 1 ? n->shape.dim[n->shape.rank - 1] : 1;
      if (last >= 2)
        snprintf(buf, len, "output '%s': one score per class of '%s' (argmax = prediction)", out->name, t->name);
      else
        snprintf(buf, len, "output '%s': probability that '%s' is 1 (> 0.5 = prediction)", out->name, t->name);
      return;
    }
    if (out->target == id) {
      snprintf(buf, len, "the labels output '%s' is scored against (computed from the inputs)", out->name);
      return;
    }
  }
  snprintf(buf, len, "node '%s'", g->nodes[id]->name);
}

static void put_macros(FILE *f, const char *P, const char *kind, int k, const snc_node *n, const char *what) {
  char id[128], sh[160];
  int64_t d[SNC_MAX_DIMS];
  int r = per_sample(n, d);
  int64_t per = 1;
  for (int i = 0; i < r; i++) per *= d[i];
  upper_id(n->name, id, sizeof id);
  shape_text(n, sh, sizeof sh);
  fprintf(f, "/* %s %d: '%s', %s %s%s%s */\n", kind, k, n->name, n->dtype == SNC_F32 ? "float" : "int32_t", sh,
          what ? ": " : "", what ? what : "");
  fprintf(f, "#define %s_%s_%s %d\n", P, kind[0] == 'i' ? "IN" : "OUT", id, k);
  fprintf(f, "#define %s_%s_%s_SIZE %lld /* elements per sample */\n", P, kind[0] == 'i' ? "IN" : "OUT", id, (long long)per);
  fprintf(f, "#define %s_%s_%s_RANK %d\n", P, kind[0] == 'i' ? "IN" : "OUT", id, r);
  fprintf(f, "#define %s_%s_%s_SHAPE {", P, kind[0] == 'i' ? "IN" : "OUT", id);
  for (int i = 0; i < r; i++) fprintf(f, "%s%lld", i ? ", " : "", (long long)d[i]);
  fprintf(f, "%s} /* per sample */\n", r ? "" : "1");
  fprintf(f, "#define %s_%s_%s_INT32 %d\n", P, kind[0] == 'i' ? "IN" : "OUT", id, n->dtype == SNC_I32);
}

static void write_header(FILE *f, const snc_program *p, const snc_header_opts *o) {
  const snc_graph *g = p->g;
  const char *pre = p->prefix;
  char P[80], sw[1024], buf[256];
  upper_id(pre, P, sizeof P);
  snc_graph_switches_str(g, sw, sizeof sw);
  int train = g->nnodes > g->nforward, ntensors = 0;
  for (int i = 0; i < g->nnodes; i++) ntensors += g->nodes[i]->op == SNC_OP_PARAM && strcmp(g->nodes[i]->name, "step");
  const char *obj = o && o->object ? o->object : "model.o";
  const char *base = strrchr(obj, '/') ? strrchr(obj, '/') + 1 : obj;

  /* ---- the opening comment: usage first ---- */
  fprintf(f, "/* %s.h: the C interface of %s, model '%s' compiled by `snc compile` from %s\n", pre, base, g->name, g->file);
  fprintf(f, " * (switches: %s) for %s%s%s. Generated; do not edit.\n", sw[0] ? sw : "none",
          o && o->triple ? o->triple : "the host", o && o->cpu ? ", cpu " : "", o && o->cpu ? o->cpu : "");
  fprintf(f, " *\n * Build: cc -std=c99 app.c %s -fopenmp -lm  (the object needs only libc, libm and an OpenMP\n", base);
  fprintf(f, " * runtime; this header is all the rest: no snc or LLVM library at build or run time)\n *\n");
  fprintf(f, " *   #include \"%s.h\"\n", pre);
  fprintf(f, " *   void *arena = %s_arena_new();              // %s_ARENA_BYTES, 64-byte aligned; NULL: no memory\n", pre, P);
  fprintf(f, " *   char msg[256];\n");
  fprintf(f, " *   %s_init(arena, 1);                         // parameters from seed 1%s\n", pre,
          p->embedded ? " (here: the embedded weights)" : "");
  fprintf(f, " *   if (%s_load(arena, \"best.safetensors\", NULL, msg, sizeof msg) != %s_OK)  // optional: a checkpoint\n", pre, P);
  fprintf(f, " *     fprintf(stderr, \"%%s\\n\", msg);                     //   of `snrun train --save`\n");
  fprintf(f, " *   const void *in[%s_NUM_INPUTS] = {", P);
  for (int k = 0; k < p->ninputs; k++) fprintf(f, "%s%s", k ? ", " : "", g->nodes[p->inputs[k]]->name);
  fprintf(f, "};  // nb samples each, batch-major\n");
  fprintf(f, " *   float loss;\n *   void *out[%s_NUM_OUTPUTS + 1] = {", P);
  for (int k = 0; k < p->noutputs; k++) fprintf(f, "%s", "");
  for (int k = 0; k < p->noutputs; k++) {
    upper_id(g->nodes[p->outputs[k]]->name, buf, sizeof buf);
    for (char *c = buf; *c; c++) *c = (char)tolower((unsigned char)*c);
    fprintf(f, "%s%s", k ? ", " : "", buf);
  }
  fprintf(f, "%s&loss};\n", p->noutputs ? ", " : "");
  fprintf(f, " *   snc_step_args a = {.inputs = in, .outputs = out, .nb = nb, .step = 1, .lr_scale = 1.0f};\n");
  fprintf(f, " *   %s_eval(arena, &a);                        // nb <= %s_BATCH; .nthreads 0: OpenMP's default\n", pre, P);
  if (train) {
    fprintf(f, " *   snc_step_args t = {.inputs = in, .nb = nb, .seed = dropout_seed, .step = step, .lr_scale = 1.0f};\n");
    fprintf(f, " *   %s_train_step(arena, &t);                  // forward, backward, optimizer update\n", pre);
    fprintf(f, " *   %s_save(arena, \"mine.safetensors\", step, NULL, msg, sizeof msg);  // `snrun eval` reads it\n", pre);
  }
  fprintf(f, " *   %s_arena_free(arena);\n *\n", pre);
  fprintf(f, " * Ownership: the caller owns the arena (from %s_arena_new, freed with %s_arena_free, or any\n", pre, pre);
  fprintf(f, " * %s_ARENA_BYTES block aligned to 64 bytes) and every input and output buffer; the entry points\n", P);
  fprintf(f, " * keep no pointer after they return and allocate nothing. One arena holds one model instance\n");
  fprintf(f, " * (parameters, optimizer state, activations); use one arena per thread of your program. The\n");
  fprintf(f, " * entry points run their own OpenMP parallel region (args.nthreads threads).\n *\n");
  fprintf(f, " * Evaluation (%s_eval) needs every input, labels included: they only feed the loss and the\n", pre);
  fprintf(f, " * computed labels; for pure inference pass zeros. It writes, for the first nb samples:\n");
  for (int k = 0; k < p->noutputs; k++) {
    const snc_node *n = g->nodes[p->outputs[k]];
    char sh[160], what[300];
    shape_text(n, sh, sizeof sh);
    output_text(p, k, what, sizeof what);
    fprintf(f, " *   out[%d] %s %s %s: %s\n", k, n->name, n->dtype == SNC_F32 ? "float" : "int32_t", sh, what);
  }
  fprintf(f, " *   out[%d] float: the mean total loss over the batch\n", p->noutputs);
  if (p->embedded)
    fprintf(f, " *\n * Embedded weights: %s_init ignores its seed and copies the parameters (and optimizer state) of\n"
               " * %s; %s_EMBEDDED_* and %s_DATA_* below record that checkpoint's run.\n",
            pre, o && o->weights_path ? o->weights_path : "the checkpoint", P, P);
  fprintf(f, " */\n");

  fprintf(f, "#ifndef SNC_MODEL_%s_H\n#define SNC_MODEL_%s_H\n\n", P, P);
  fprintf(f, "#include <stdarg.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n"
             "#include <string.h>\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
  fprintf(f, "/* The ABI every snc model shares (also in snc/program.h, with the same guard). */\n"
             "#ifndef SNC_STEP_ARGS_DEFINED\n#define SNC_STEP_ARGS_DEFINED\n"
             "typedef struct snc_step_args {\n"
             "  const void *const *inputs; /* one per model input, in the order of the *_IN_* indices */\n"
             "  void *const *outputs;      /* eval: one per output, then the loss (a float); NULL for train_step */\n"
             "  int64_t nb;                /* samples in this batch, 1..batch */\n"
             "  uint64_t seed;             /* dropout masks */\n"
             "  int64_t step;              /* 1-based optimizer step */\n"
             "  float lr_scale;            /* learning-rate schedule factor */\n"
             "  int32_t nthreads;          /* 0: the OpenMP runtime's default */\n"
             "  int64_t row0;              /* this batch's first row in a batch split over ranks (dropout masks); 0 */\n"
             "} snc_step_args;\n#endif\n\n");

  fprintf(f, "#define %s_MODEL_NAME ", P);
  put_cstr(f, g->name);
  fprintf(f, "\n#define %s_MODEL_FILE ", P);
  put_cstr(f, g->file);
  fprintf(f, "\n#define %s_SWITCHES ", P);
  put_cstr(f, sw);
  fprintf(f, "\n#define %s_GENERATOR ", P);
  put_cstr(f, g->data.generator ? g->data.generator : "");
  fprintf(f, "\n#define %s_TARGET ", P);
  put_cstr(f, o && o->triple ? o->triple : "");
  fprintf(f, "\n#define %s_BATCH %d /* at most this many samples per call */\n", P, g->batch);
  fprintf(f, "#define %s_ALIGN 64\n", P);
  fprintf(f, "#define %s_ARENA_BYTES %lld /* all memory a model instance needs */\n", P, (long long)p->layout.arena_bytes);
  fprintf(f, "#define %s_PARAM_BYTES %lld /* of which parameters, optimizer state and constants (at the start) */\n", P,
          (long long)p->layout.persistent_bytes);
  fprintf(f, "#define %s_WORKSPACE_BYTES %lld /* and activations and gradients */\n", P,
          (long long)(p->layout.arena_bytes - p->layout.persistent_bytes));
  fprintf(f, "#define %s_PARAM_COUNT %lld /* trainable scalars */\n", P, (long long)snc_graph_param_count(g));
  fprintf(f, "#define %s_HAS_TRAIN_STEP %d\n", P, train);
  fprintf(f, "#define %s_EMBEDDED %d /* %s_init copies embedded weights */\n\n", P, p->embedded, pre);
  if (p->embedded && o) {
    fprintf(f, "#define %s_EMBEDDED_SEED %lluULL /* run seed of the embedded checkpoint (its test draw) */\n", P,
            (unsigned long long)o->seed);
    fprintf(f, "#define %s_EMBEDDED_EPOCH %d\n#define %s_EMBEDDED_STEP %lld /* optimizer steps taken */\n", P, o->epoch,
            P, (long long)o->step);
    fprintf(f, "#define %s_DATA_STANDARDIZED %d /* inputs were standardised: (x - MEAN) / STD */\n", P, o->standardized);
    fprintf(f, "#define %s_DATA_MEAN %.9gf\n#define %s_DATA_STD %.9gf\n\n", P, o->mean, P, o->std);
  }
  fprintf(f, "#define %s_NUM_INPUTS %d\n", P, p->ninputs);
  for (int k = 0; k < p->ninputs; k++) put_macros(f, P, "input", k, g->nodes[p->inputs[k]], NULL);
  fprintf(f, "\n#define %s_NUM_OUTPUTS %d /* then the loss, at index %s_NUM_OUTPUTS */\n", P, p->noutputs, P);
  for (int k = 0; k < p->noutputs; k++) {
    char what[300];
    output_text(p, k, what, sizeof what);
    put_macros(f, P, "output", k, g->nodes[p->outputs[k]], what);
  }
  fprintf(f, "#define %s_OUT_LOSS %d\n\n", P, p->noutputs);

  fprintf(f, "/* Parameters from their init specs (the values `snrun train` starts from with this seed),\n"
             " * constants, and a zeroed workspace. Call it once before anything else. */\n");
  fprintf(f, "void %s_init(void *arena, uint64_t seed);\n", pre);
  fprintf(f, "/* Forward pass in evaluation mode (dropout off, batch norm on running statistics) over args->nb\n"
             " * samples; writes args->outputs (see above). */\n");
  fprintf(f, "void %s_eval(void *arena, const snc_step_args *args);\n", pre);
  if (train)
    fprintf(f, "/* One training step on args->nb samples: forward (dropout from args->seed and args->step), backward,\n"
               " * optimizer update (Adam bias correction uses args->step; learning rate times args->lr_scale).\n"
               " * args->outputs is not used; the loss of the step is not returned (evaluate for it). */\n"
               "void %s_train_step(void *arena, const snc_step_args *args);\n",
            pre);
  fprintf(f, "\n/* ---- the tensor table: what a checkpoint holds (every PARAM node, by node name) ---- */\n\n");
  fprintf(f, "#define %s_NUM_TENSORS %d\n", P, ntensors);
  fprintf(f, "typedef struct %s_tensor {\n  const char *name;\n  int ndim;\n  int64_t dims[%d];\n"
             "  int64_t offset; /* bytes into the arena */\n  int64_t numel;\n} %s_tensor;\n\n",
          pre, SNC_MAX_DIMS, pre);
  fprintf(f, "static inline const %s_tensor *%s_tensors(int *n) {\n  static const %s_tensor t[%d] = {\n", pre, pre, pre,
          ntensors ? ntensors : 1);
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *n = g->nodes[i];
    if (n->op != SNC_OP_PARAM || !strcmp(n->name, "step")) continue;
    fprintf(f, "      {");
    put_cstr(f, n->name);
    fprintf(f, ", %d, {", n->shape.rank);
    for (int d = 0; d < SNC_MAX_DIMS; d++) fprintf(f, "%s%lld", d ? ", " : "", d < n->shape.rank ? (long long)n->shape.dim[d] : 0LL);
    fprintf(f, "}, %lld, %lld},\n", (long long)p->layout.offset[i], (long long)snc_shape_numel(&n->shape));
  }
  if (!ntensors) fprintf(f, "      {\"\", 0, {0, 0, 0, 0, 0, 0}, 0, 0},\n");
  fprintf(f, "  };\n  *n = %d;\n  return t;\n}\n\n", ntensors);
  /* metadata a saved checkpoint carries by default */
  fprintf(f, "static inline int %s__default_meta(const char **keys, const char **vals, int n) {\n", pre);
  if (p->embedded && o) {
    fprintf(f, "  keys[n] = \"seed\", vals[n++] = \"%llu\";\n", (unsigned long long)o->seed);
    fprintf(f, "  keys[n] = \"standardize\", vals[n++] = \"%s\";\n", o->standardized ? "true" : "false");
    fprintf(f, "  keys[n] = \"mean\", vals[n++] = \"%.9g\";\n", o->mean);
    fprintf(f, "  keys[n] = \"std\", vals[n++] = \"%.9g\";\n", o->std);
  } else {
    fprintf(f, "  (void)keys;\n  (void)vals;\n");
  }
  fprintf(f, "  return n;\n}\n\n");
  put_lib(f, lib_text, pre, P);
  fprintf(f, "\n#ifdef __cplusplus\n}\n#endif\n\n#endif /* SNC_MODEL_%s_H */\n", P);
}

int snc_program_write_header(const snc_program *p, const snc_header_opts *o, const char *path, snc_error *err) {
  snc_file_out out;
  FILE *f = snc_file_begin(&out, path, "w", err);
  if (!f) return -1;
  write_header(f, p, o);
  return snc_file_commit(&out, err);
}
