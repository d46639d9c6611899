/* The JIT backend: the graph compiled to one LLVM module (compiler/codegen), JIT-compiled with ORC
 * (runtime/jit.c), running on one arena. Batch-major staging buffers carry inputs in and outputs
 * out, as the entry points' ABI (include/snc/program.h) wants; parameters and state live in the
 * arena in their natural layout, so checkpoints read and write them in place. */
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older headers lack the name */
#endif
#endif

#include "snc/codegen.h"
#include "snc/jit.h"
#include "snc/backend.h"
#include "snc/program.h"

typedef struct jit_backend {
  snc_backend base;
  const snc_graph *g;
  snc_program *p;
  snc_jit *jit;
  snc_step_fn train, eval, grad, apply; /* grad, apply: with split_step */
  snc_init_fn init;
  void *arena;
  size_t arena_mapped; /* > 0: arena is a mapping of that many bytes (arena_new), else malloc'd */
  void **staging; /* per node: batch-major buffer for inputs and outputs, else NULL */
  const void **ins;
  void **outs;
  float loss;
  int nthreads;
} jit_backend;

static void *jit_buf(snc_backend *b, int node) {
  jit_backend *j = (jit_backend *)b;
  if (node == j->g->loss) return &j->loss;
  if (j->staging[node]) return j->staging[node];
  const snc_node *n = j->g->nodes[node];
  /* the runtime reads nothing else: parameters, constants and (data-parallel) parameter gradients,
     none of them batched, so in their natural layout in the arena */
  SNC_ASSERT(n->op == SNC_OP_PARAM || n->op == SNC_OP_CONST ||
             (!(n->flags & SNC_NF_BATCHED) && snc_fuse_stored(j->p->into, node) && snc_layout_view_delta(j->g, node, j->p->layout.bp) < 0));
  return (char *)j->arena + j->p->layout.offset[node];
}

/* P_init of the module: the same draws as the reference executor (snc_init_fill), constants copied
 * (or the embedded weights); the workspace zeroed */
static void jit_init(snc_backend *b, uint64_t seed) {
  jit_backend *j = (jit_backend *)b;
  j->init(j->arena, seed);
}

static void jit_run(snc_backend *b, snc_run_kind kind, const snc_kctx *ctx) {
  jit_backend *j = (jit_backend *)b;
  snc_step_args a = {.inputs = j->ins, .outputs = j->outs, .nb = ctx->nb, .seed = ctx->seed, .step = ctx->step,
                     .lr_scale = ctx->lr_scale, .nthreads = j->nthreads, .row0 = ctx->row0};
  if (kind != SNC_RUN_FORWARD) {
    snc_step_fn f = kind == SNC_RUN_STEP ? j->train : kind == SNC_RUN_GRAD ? j->grad : j->apply;
    SNC_ASSERT(f && ctx->training); /* grad and apply only with split_step */
    a.outputs = NULL;
    f(j->arena, &a);
    if (j->g->loss >= 0 && kind != SNC_RUN_APPLY) j->loss = *(float *)((char *)j->arena + j->p->layout.offset[j->g->loss]);
  } else {
    SNC_ASSERT(!ctx->training && j->eval); /* the compiled forward is the evaluation one (none: no_eval) */
    j->eval(j->arena, &a);
  }
}

/* The arena, zeroed. On a virtual machine the first touch of each fresh 4 KiB page is a fault of about
 * 10 us (seen here: an 8 MiB arena took 21 ms to zero with aligned_alloc and memset), so on Linux the
 * arena is a mapping of its own, asked for huge pages (transparent huge pages in "madvise" mode, the
 * default) and populated in one call: 1-7 ms for 8 MiB. Pages the kernel cannot make huge, or a kernel
 * without MADV_POPULATE_WRITE (before 5.14), only cost the faults again. Elsewhere: aligned_alloc. */
#define HUGE_PAGE ((size_t)2 << 20)
static void *arena_new(size_t bytes, size_t *mapped) {
  *mapped = 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes >= HUGE_PAGE) {
    size_t len = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE + HUGE_PAGE; /* room to align */
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) {
      char *a = (char *)(((uintptr_t)m + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
      size_t head = (size_t)(a - m), used = len - HUGE_PAGE;
      if (head) munmap(m, head); /* keep [a, a + used): huge-page aligned */
      if (len - head > used) munmap(a + used, len - head - used);
      (void)madvise(a, used, MADV_HUGEPAGE); /* advice: refused (THP off), small pages */
      (void)madvise(a, used, MADV_POPULATE_WRITE); /* refused (old kernel): faults on first touch */
      *mapped = used;
      return a; /* anonymous memory is zero */
    }
  }
#endif
  void *a = aligned_alloc(64, bytes);
  if (a) memset(a, 0, bytes);
  return a;
}

static void arena_free(void *a, size_t mapped) {
#ifdef __linux__
  if (mapped) {
    munmap(a, mapped);
    return;
  }
#endif
  free(a);
}

static void jit_free(snc_backend *b) {
  jit_backend *j = (jit_backend *)b;
  if (!j) return;
  if (j->staging)
    for (int i = 0; i < j->g->nnodes; i++) free(j->staging[i]);
  free(j->staging);
  free(j->ins);
  free(j->outs);
  if (j->arena) arena_free(j->arena, j->arena_mapped);
  snc_jit_free(j->jit);
  snc_program_free(j->p);
  free(j);
}

/* The backend around program p (taken: freed with the backend, also on failure). */
static snc_backend *from_program(const snc_graph *g, snc_program *p, const snc_jit_backend_opts *o, int opt_level,
                                 snc_error *err) {
  jit_backend *j = calloc(1, sizeof *j);
  if (!j) {
    snc_program_free(p);
    return snc_errorf(err, "%s: out of memory", g->file), NULL;
  }
  j->base = (snc_backend){"jit", jit_buf, jit_init, jit_run, jit_free};
  j->g = g;
  j->p = p;
  j->nthreads = o ? o->threads : 0;
  snc_jit_options jo = snc_jit_default_options();
  jo.opt_level = opt_level;
  if (o) jo.dump_llvm = o->dump_llvm, jo.dump_asm = o->dump_asm, jo.cache_dir = o->cache_dir;
  snc_jit_symbol prof = {"snc_profile_mark", (void *)(uintptr_t)snc_profile_mark};
  if (o && o->profile) jo.symbols = &prof, jo.n_symbols = 1;
  LLVMModuleRef m = j->p->module;
  j->p->module = NULL; /* the JIT takes it */
  if (!(j->jit = snc_jit_new(m, &jo, err))) goto fail;
  char name[128];
  if (g->nnodes > g->nforward) {
    snprintf(name, sizeof name, "%s_train_step", j->p->prefix);
    if (!(j->train = (snc_step_fn)(uintptr_t)snc_jit_lookup(j->jit, name, err))) goto fail;
    if (o && o->split_step) {
      snprintf(name, sizeof name, "%s_grad_step", j->p->prefix);
      if (!(j->grad = (snc_step_fn)(uintptr_t)snc_jit_lookup(j->jit, name, err))) goto fail;
      snprintf(name, sizeof name, "%s_apply_step", j->p->prefix);
      if (!(j->apply = (snc_step_fn)(uintptr_t)snc_jit_lookup(j->jit, name, err))) goto fail;
    }
  }
  snprintf(name, sizeof name, "%s_eval", j->p->prefix);
  if (!j->p->no_eval && !(j->eval = (snc_step_fn)(uintptr_t)snc_jit_lookup(j->jit, name, err))) goto fail;
  snprintf(name, sizeof name, "%s_init", j->p->prefix);
  if (!(j->init = (snc_init_fn)(uintptr_t)snc_jit_lookup(j->jit, name, err))) goto fail;
  size_t bytes = ((size_t)j->p->layout.arena_bytes + 63) / 64 * 64;
  j->arena = arena_new(bytes ? bytes : 64, &j->arena_mapped);
  j->staging = calloc((size_t)g->nnodes, sizeof *j->staging);
  j->ins = calloc((size_t)j->p->ninputs + 1, sizeof *j->ins);
  j->outs = calloc((size_t)j->p->noutputs + 1, sizeof *j->outs);
  if (!j->arena || !j->staging || !j->ins || !j->outs) goto oom;
  for (int k = 0; k < j->p->ninputs; k++) {
    int id = j->p->inputs[k];
    if (!(j->staging[id] = calloc((size_t)snc_shape_numel(&g->nodes[id]->shape), 4))) goto oom;
    j->ins[k] = j->staging[id];
  }
  for (int k = 0; k < j->p->noutputs; k++) {
    int id = j->p->outputs[k];
    if (!j->staging[id] && !(j->staging[id] = calloc((size_t)snc_shape_numel(&g->nodes[id]->shape), 4))) goto oom;
    j->outs[k] = j->staging[id];
  }
  j->outs[j->p->noutputs] = &j->loss;
  return &j->base;
oom:
  snc_errorf(err, "%s: out of memory for the JIT backend (arena %lld bytes)", g->file, (long long)j->p->layout.arena_bytes);
fail:
  jit_free(&j->base);
  return NULL;
}

snc_backend *snc_backend_jit_new(const snc_graph *g, const snc_jit_backend_opts *o, snc_error *err) {
  snc_cg_options co = {.dump_graph = o ? o->dump_graph : NULL, .profile = o && o->profile, .split_step = o && o->split_step,
                       .no_eval = o && o->no_eval,
                       .schedule = o ? o->schedule : NULL, .schedule_user = o ? o->schedule_user : NULL};
  snc_program *p = snc_program_build(g, &co, err);
  if (!p) return NULL;
  return from_program(g, p, o, 3, err);
}

snc_backend *snc_backend_jit_from_program(snc_program *p, const snc_jit_backend_opts *o, snc_error *err) {
  /* a module written optimised is only lowered (O0 runs always-inline and lowering passes) */
  return from_program(p->g, p, o, p->opt_level > 0 ? 0 : 3, err);
}

const snc_jit_timing *snc_backend_jit_timing(const snc_backend *b) {
  return snc_jit_timing_of(((const jit_backend *)b)->jit);
}

double snc_backend_jit_compile_seconds(const snc_backend *b) {
  const jit_backend *j = (const jit_backend *)b;
  return j->p->build_seconds + snc_jit_timing_of(j->jit)->total;
}

const snc_program *snc_backend_jit_program(const snc_backend *b) { return ((const jit_backend *)b)->p; }
