/* snc: the compiler driver. Subcommands: check (validate a model and print its graph), compile
 * (object file, assembly, LLVM IR or bitcode, plus a C header; docs/embedding.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snc/autodiff.h"
#include "snc/codegen.h"
#include "snc/frontend.h"
#include "snc/ir.h"
#include "snc/target.h"
#include "snc/train.h"
#include "cli_util.h"
#include "onnx_cli.h"

static void usage(FILE *out) {
  fputs("usage: snc <command> [options]\n"
        "\n"
        "commands:\n"
        "  check MODEL.yaml [--set NAME=VALUE]...   validate a model and print its layer graph:\n"
        "                                           nodes, shapes, parameters and FLOPs\n"
        "  compile MODEL.yaml [options] -o OUT      write the model's code as an object file (or\n"
        "                                           assembly, LLVM IR, bitcode) and a C header;\n"
        "                                           see snc compile --help\n"
        "  import MODEL.onnx -o MODEL.yaml          an ONNX graph as a model file, its weights as a\n"
        "         [--weights CKPT]                  checkpoint (snc import --help; docs/onnx.md)\n"
        "  export MODEL [--checkpoint CKPT] -o OUT.onnx   the evaluation graph and weights as ONNX\n"
        "\n"
        "check, compile and export also take a .onnx file as MODEL.\n"
        "\n"
        "options:\n"
        "  --set NAME=VALUE   override a switch declared in the model (repeatable),\n"
        "                     e.g. --set weight_sharing=false --set aux_loss=true\n"
        "  -q, --quiet        check only; print nothing on success\n"
        "  -h, --help         show this help\n"
        "  --version          print the version\n"
        "\n"
        "exit status: 0 success, 1 the model has an error, 2 wrong usage\n",
        out);
}

static int cmd_check(int argc, char **argv) {
  const char *path = NULL;
  snc_override sets[SNC_CLI_MAX_SETS];
  int nsets = 0, quiet = 0;
  snc_error err = {0};
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--set") || !strncmp(a, "--set=", 6)) {
      char *v = a[5] == '=' ? argv[i] + 6 : (i + 1 < argc ? argv[++i] : NULL);
      if (!v) return fprintf(stderr, "snc check: --set needs NAME=VALUE\n"), 2;
      if (snc_cli_add_set("snc check", v, sets, &nsets, SNC_CLI_MAX_SETS)) return 2;
    } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
      quiet = 1;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (a[0] == '-') {
      fprintf(stderr, "snc check: unknown option '%s' (see snc --help)\n", a);
      return 2;
    } else if (path) {
      fprintf(stderr, "snc check: one model file at a time ('%s' and '%s')\n", path, a);
      return 2;
    } else {
      path = a;
    }
  }
  if (!path) return fprintf(stderr, "snc check: which model? usage: snc check MODEL.yaml [--set NAME=VALUE]\n"), 2;
  snc_graph *g = snc_onnx_load_any(path, sets, nsets, 0, NULL, &err);
  if (!g) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  if (!quiet) snc_graph_print_summary(g, stdout);
  snc_graph_free(g);
  return 0;
}

static const char *const usage_compile =
    "usage: snc compile MODEL.yaml [options] [-o OUT]\n"
    "\n"
    "Compiles the model (its training step when it has a loss, its evaluation, its initialisation)\n"
    "to one module and writes it, plus a C header for objects and assembly. The code is the same\n"
    "the JIT of `snrun` runs; the object needs only libc, libm and an OpenMP runtime:\n"
    "  snc compile models/siamese.yaml -o build/siamese.o   # and build/siamese.h\n"
    "  cc -std=c99 app.c build/siamese.o -fopenmp -lm\n"
    "\n"
    "options:\n"
    "  -o OUT                 output file (default: <model>.o, .s, .ll or .bc in the current directory)\n"
    "  --emit=KIND            obj (default), asm, llvm (textual IR) or bc (bitcode: `snrun train|eval\n"
    "                         OUT.bc` runs it without the model file)\n"
    "  --header PATH          where the C header goes (default: OUT with .h; written for obj and asm)\n"
    "  --no-header            do not write the header\n"
    "  --set NAME=VALUE       override a switch of the model (repeatable)\n"
    "  --embed-weights CKPT   bake a checkpoint of `snrun train --save` into the module: <model>_init\n"
    "                         copies it instead of drawing parameters\n"
    "  --target TRIPLE        cross-compile, e.g. aarch64-unknown-linux-gnu, x86_64-unknown-linux-gnu\n"
    "  --cpu NAME             target CPU (generic, x86-64, x86-64-v3, znver4, neoverse-v1, ...; native\n"
    "                         = this machine); without --target and --cpu: this machine, as the JIT\n"
    "  --features LIST        target features, e.g. +avx2,-avx512f\n"
    "  -O LEVEL               optimisation level 0..3 (default 3)\n"
    "  --dump-graph           print the kernels and the memory plan\n"
    "  --dump-llvm            print the LLVM IR before and after optimisation\n"
    "  -q, --quiet            print nothing on success\n"
    "  -h, --help             show this help\n"
    "\n"
    "exit status: 0 success, 1 model, checkpoint, target or file error, 2 wrong usage\n";

typedef struct compile_cli {
  const char *model, *out, *emit, *header, *weights, *triple, *cpu, *features;
  const char *sets_text[SNC_CLI_MAX_SETS];
  snc_override sets[SNC_CLI_MAX_SETS];
  int nsets, no_header, opt, dump_graph, dump_llvm, quiet;
} compile_cli;

/* embedded weights: the checkpoint read into the persistent blob through a backend whose buffers
 * are the blob at the plan's offsets, so snrun's loader does every check */
typedef struct blob_backend {
  snc_backend base;
  const snc_program *p;
  void *blob;
} blob_backend;

static void *blob_buf(snc_backend *b, int node) {
  blob_backend *x = (blob_backend *)b;
  return (char *)x->blob + x->p->layout.offset[node];
}

typedef struct embed_ctx {
  const char *path;
  snc_run_info info;
} embed_ctx;

static int embed_weights(const snc_program *p, void *blob, void *user, snc_error *err) {
  embed_ctx *e = user;
  blob_backend be = {{"blob", blob_buf, NULL, NULL, NULL}, p, blob};
  return snc_checkpoint_load(e->path, p->g, &be.base, &e->info, err);
}

static char *read_text(const char *path, size_t *len, snc_error *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return snc_errorf(err, "%s: cannot open: %s", path, strerror(errno)), NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n - 1, f);
    if (n < cap - 1) break;
    if (cap > (64u << 20)) {
      free(buf);
      fclose(f);
      return snc_errorf(err, "%s: larger than 64 MiB; not a model file", path), NULL;
    }
    char *nb = realloc(buf, cap *= 2);
    if (!nb) free(buf);
    buf = nb;
  }
  int bad = !buf || ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return snc_errorf(err, "%s: cannot read", path), NULL;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

static int parse_compile(int argc, char **argv, compile_cli *c) {
  for (int i = 0; i < argc; i++) {
    char *a = argv[i], *val = NULL;
    static const char *const withval[] = {"--set", "--emit", "--header", "--embed-weights", "--target", "--cpu",
                                          "--features", "-o", "-O", NULL};
    const char *opt = NULL;
    for (int k = 0; withval[k]; k++) {
      size_t l = strlen(withval[k]);
      if (strncmp(a, withval[k], l)) continue;
      if (a[l] == 0) {
        if (i + 1 >= argc) return fprintf(stderr, "snc compile: %s needs a value (see snc compile --help)\n", a), 2;
        opt = withval[k], val = argv[++i];
      } else if (a[l] == '=' || (withval[k][1] != '-' && a[1] == 'O')) { /* --emit=obj, -O3 */
        opt = withval[k], val = a + l + (a[l] == '=');
      }
      if (opt) break;
    }
    if (!opt) {
      if (!strcmp(a, "-h") || !strcmp(a, "--help")) return fputs(usage_compile, stdout), 0;
      if (!strcmp(a, "--no-header")) c->no_header = 1;
      else if (!strcmp(a, "--dump-graph")) c->dump_graph = 1;
      else if (!strcmp(a, "--dump-llvm")) c->dump_llvm = 1;
      else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) c->quiet = 1;
      else if (a[0] == '-' && a[1]) return fprintf(stderr, "snc compile: unknown option '%s' (see snc compile --help)\n", a), 2;
      else if (c->model) return fprintf(stderr, "snc compile: one model file at a time ('%s' and '%s')\n", c->model, a), 2;
      else c->model = a;
      continue;
    }
    if (!*val) return fprintf(stderr, "snc compile: %s needs a non-empty value\n", opt), 2;
    if (!strcmp(opt, "--set")) {
      snc_error err = {0};
      if (c->nsets == SNC_CLI_MAX_SETS) return fprintf(stderr, "snc compile: too many --set options\n"), 2;
      c->sets_text[c->nsets] = strdup(val);
      if (snc_override_parse(val, &c->sets[c->nsets], &err)) return fprintf(stderr, "snc compile: %s\n", err.msg), 2;
      c->nsets++;
    } else if (!strcmp(opt, "--emit")) {
      if (strcmp(val, "obj") && strcmp(val, "asm") && strcmp(val, "llvm") && strcmp(val, "bc"))
        return fprintf(stderr, "snc compile: --emit takes obj, asm, llvm or bc, not '%s'\n", val), 2;
      c->emit = val;
    } else if (!strcmp(opt, "-O")) {
      if (strlen(val) != 1 || val[0] < '0' || val[0] > '3')
        return fprintf(stderr, "snc compile: -O takes a level from 0 to 3, not '%s'\n", val), 2;
      c->opt = val[0] - '0';
    } else {
      const char **dst = !strcmp(opt, "--header") ? &c->header : !strcmp(opt, "--embed-weights") ? &c->weights
                         : !strcmp(opt, "--target") ? &c->triple : !strcmp(opt, "--cpu") ? &c->cpu
                         : !strcmp(opt, "--features") ? &c->features : &c->out;
      *dst = val;
    }
  }
  if (!c->model) return fprintf(stderr, "snc compile: which model? %s", usage_compile), 2;
  return -1;
}

static int cmd_compile(int argc, char **argv) {
  compile_cli c = {.emit = "obj", .opt = 3};
  int st = parse_compile(argc, argv, &c);
  if (st >= 0) return st;
  snc_error err = {0};
  snc_graph *g = NULL;
  snc_program *p = NULL;
  LLVMTargetMachineRef tm = NULL;
  char *text = NULL, *out = NULL, *header = NULL;
  size_t len = 0;
  int status = 1;
  embed_ctx ectx = {.path = c.weights};
  if (snc_onnx_is_path(c.model)) { /* the imported text stands for the file (also in bitcode) */
    snc_onnx_model m;
    snc_onnx_options auto_train = {.train = "auto"}; /* as snrun reads it: the same module */
    if (snc_onnx_import(c.model, &auto_train, &m, &err)) goto done;
    text = m.yaml, len = m.yaml_len;
    m.yaml = NULL; /* ownership of the text passes to `text` */
    snc_onnx_model_free(&m);
  } else if (!(text = read_text(c.model, &len, &err))) {
    goto done;
  }
  if (!(g = snc_model_load_text(text, len, c.model, c.sets, c.nsets, &err))) goto done;
  int train = g->loss >= 0;
  if (train && snc_autodiff(g, 0, &err) != 0) goto done;
  snc_cg_options co = {.dump_graph = c.dump_graph ? stdout : NULL};
  if (c.weights) co.embed = embed_weights, co.embed_user = &ectx;
  if (!(p = snc_program_build(g, &co, &err))) goto done;
  snc_program_source src = {text, len, c.sets_text, c.nsets, train, c.opt};
  if (snc_program_attach_source(p, &src, &err)) goto done;
  int native = !c.triple && (!c.cpu || !strcmp(c.cpu, "native")) && !c.features;
  if (!(tm = native ? snc_cg_target_host(&err)
                    : snc_cg_target_new(c.triple ? c.triple : LLVMGetDefaultTargetTriple(),
                                        c.cpu && !strcmp(c.cpu, "native") ? LLVMGetHostCPUName() : c.cpu, c.features, &err)))
    goto done;
  if (c.dump_llvm) snc_cg_dump_ir(p->module, "before optimisation", stdout);
  if (snc_cg_optimize(p->module, tm, c.opt, &err)) goto done;
  if (c.dump_llvm) snc_cg_dump_ir(p->module, "after optimisation", stdout);
  snc_cg_file_kind kind = !strcmp(c.emit, "asm") ? SNC_CG_FILE_ASM : !strcmp(c.emit, "llvm") ? SNC_CG_FILE_LLVM_IR
                          : !strcmp(c.emit, "bc") ? SNC_CG_FILE_BITCODE : SNC_CG_FILE_OBJECT;
  const char *ext = kind == SNC_CG_FILE_ASM ? ".s" : kind == SNC_CG_FILE_LLVM_IR ? ".ll" : kind == SNC_CG_FILE_BITCODE ? ".bc" : ".o";
  if (c.out) {
    out = strdup(c.out);
  } else if ((out = malloc(strlen(p->prefix) + 4))) {
    sprintf(out, "%s%s", p->prefix, ext);
  }
  if (!out) goto oom;
  if (snc_cg_write_file(p->module, tm, kind, out, &err)) goto done;
  int want_header = !c.no_header && (c.header || kind == SNC_CG_FILE_OBJECT || kind == SNC_CG_FILE_ASM);
  if (want_header) {
    if (c.header) {
      header = strdup(c.header);
    } else if ((header = malloc(strlen(out) + 3))) {
      strcpy(header, out);
      char *dot = strrchr(header, '.'), *slash = strrchr(header, '/');
      if (dot && (!slash || dot > slash)) *dot = 0;
      strcat(header, ".h");
    }
    if (!header) goto oom;
    char *triple = LLVMGetTargetMachineTriple(tm), *cpu = LLVMGetTargetMachineCPU(tm);
    snc_header_opts ho = {.object = out, .triple = triple, .cpu = cpu, .weights_path = c.weights};
    if (p->embedded) {
      ho.seed = ectx.info.seed, ho.epoch = ectx.info.epoch, ho.step = ectx.info.step;
      ho.standardized = ectx.info.standardized, ho.mean = ectx.info.mean, ho.std = ectx.info.std;
    }
    int rc = snc_program_write_header(p, &ho, header, &err);
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    if (rc) goto done;
  }
  if (!c.quiet) {
    char *triple = LLVMGetTargetMachineTriple(tm), *cpu = LLVMGetTargetMachineCPU(tm);
    printf("%s: %s for %s (cpu %s), %d kernels, arena %lld bytes (parameters and state %lld)%s%s%s\n", out,
           kind == SNC_CG_FILE_OBJECT ? "object" : kind == SNC_CG_FILE_ASM ? "assembly" : kind == SNC_CG_FILE_BITCODE ? "bitcode" : "LLVM IR",
           triple, cpu, p->nkernels, (long long)p->layout.arena_bytes, (long long)p->layout.persistent_bytes,
           p->embedded ? ", embedded weights" : "", header ? "; header " : "", header ? header : "");
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
  }
  status = 0;
  goto done;
oom:
  snprintf(err.msg, sizeof err.msg, "snc compile: out of memory");
done:
  if (status) fprintf(stderr, "%s\n", err.msg);
  if (tm) LLVMDisposeTargetMachine(tm);
  snc_program_free(p);
  snc_graph_free(g);
  free(text);
  free(out);
  free(header);
  for (int i = 0; i < c.nsets; i++) free((char *)c.sets_text[i]);
  return status;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "--version")) {
    puts("snc 0.1.0");
    return 0;
  }
  if (!strcmp(cmd, "check")) return cmd_check(argc - 2, argv + 2);
  if (!strcmp(cmd, "compile")) return cmd_compile(argc - 2, argv + 2);
  if (!strcmp(cmd, "import")) return snc_cli_import(argc - 2, argv + 2);
  if (!strcmp(cmd, "export")) return snc_cli_export(argc - 2, argv + 2);
  fprintf(stderr, "snc: unknown command '%s' (commands: check, compile, import, export; see snc --help)\n", cmd);
  return 2;
}
