/* The module builder: memory plan, one kernel function per node (or fused group), and the entry
 * points P_train_step and P_eval, each one OpenMP parallel region (GOMP_parallel) that calls the
 * kernels in order with GOMP_barrier between them, and P_init (cg_init.c). Shared by the JIT and the
 * object writer. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/cg.h"
#include "codegen/cg_export.h"
#include "codegen/emit.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void init_types(snc_cg *cg) {
  cg->i1 = LLVMInt1TypeInContext(cg->ctx);
  cg->i8 = LLVMInt8TypeInContext(cg->ctx);
  cg->i32 = LLVMInt32TypeInContext(cg->ctx);
  cg->i64 = LLVMInt64TypeInContext(cg->ctx);
  cg->f32 = LLVMFloatTypeInContext(cg->ctx);
  cg->f64 = LLVMDoubleTypeInContext(cg->ctx);
  cg->ptr = LLVMPointerTypeInContext(cg->ctx, 0);
  cg->vf = LLVMVectorType(cg->f32, SNC_VW);
  cg->vi32 = LLVMVectorType(cg->i32, SNC_VW);
  cg->vi64 = LLVMVectorType(cg->i64, SNC_VW);
  cg->vi1 = LLVMVectorType(cg->i1, SNC_VW);
  cg->voidt = LLVMVoidTypeInContext(cg->ctx);
  LLVMTypeRef kp[5] = {cg->ptr, cg->ptr, cg->i32, cg->i32, cg->ptr};
  cg->kernel_ty = LLVMFunctionType(cg->voidt, kp, 5, 0);
}

static LLVMValueRef declare(snc_cg *cg, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, unsigned n) {
  LLVMValueRef f = LLVMGetNamedFunction(cg->mod, name);
  if (!f) f = LLVMAddFunction(cg->mod, name, LLVMFunctionType(ret, params, n, 0));
  return f;
}

typedef struct kcall {
  LLVMValueRef fn, slots; /* the kernel and its per-call table of offsets and data */
  char *name;             /* "op.node" of the call (and its schedule) */
  char *shape;            /* the shape key of its schedule, NULL when it has none */
  int node;               /* the node it computes (its chain's root), -1 for the input copy */
  int nbuf, nwritten;     /* the arena ranges it touches (its slots); the first nwritten it writes */
  int wait;               /* a barrier follows it (in the train or eval region) */
  int64_t buf[32][2];     /* [begin, end) in bytes: its output and side outputs first */
} kcall;

static int overlaps(const int64_t *a, const int64_t *b) { return a[0] < b[1] && b[0] < a[1]; }

/* Does kernel b have to wait for kernel a (or a for b)? When one writes what the other touches.
 * Kernels without a node (the input and output copies) always do. */
static int conflict(const kcall *a, const kcall *b) {
  if (a->node < 0 || b->node < 0) return 1;
  for (int i = 0; i < a->nwritten; i++)
    for (int k = 0; k < b->nbuf; k++)
      if (overlaps(a->buf[i], b->buf[k])) return 1;
  for (int i = 0; i < b->nwritten; i++)
    for (int k = 0; k < a->nbuf; k++)
      if (overlaps(b->buf[i], a->buf[k])) return 1;
  return 0;
}

/* region(data): data = {arena, args}; calls the kernels in order with a barrier between two kernels
 * unless the second touches nothing that a kernel since the last barrier writes, and writes nothing
 * they touch (every kernel splits its own work among the threads, so without a dependence the team
 * can go on; profiles keep every barrier to time each kernel) */
static LLVMValueRef build_region(snc_cg *cg, const char *name, int region, kcall *kernels, int nk) {
  LLVMTypeRef rt = LLVMFunctionType(cg->voidt, &cg->ptr, 1, 0);
  LLVMValueRef fn = LLVMAddFunction(cg->mod, name, rt);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
  LLVMValueRef data = LLVMGetParam(fn, 0);
  LLVMValueRef arena = LLVMBuildLoad2(cg->b, cg->ptr, data, "arena");
  LLVMValueRef eight = cg_i64(cg, 8);
  LLVMValueRef args = LLVMBuildLoad2(cg->b, cg->ptr, LLVMBuildInBoundsGEP2(cg->b, cg->i8, data, &eight, 1, ""), "args");
  LLVMValueRef f_tid = declare(cg, "omp_get_thread_num", cg->i32, NULL, 0);
  LLVMValueRef f_nt = declare(cg, "omp_get_num_threads", cg->i32, NULL, 0);
  LLVMValueRef f_bar = declare(cg, "GOMP_barrier", cg->voidt, NULL, 0);
  LLVMTypeRef i32fn = LLVMFunctionType(cg->i32, NULL, 0, 0), voidfn = LLVMFunctionType(cg->voidt, NULL, 0, 0);
  LLVMValueRef tid = LLVMBuildCall2(cg->b, i32fn, f_tid, NULL, 0, "tid");
  LLVMValueRef nt = LLVMBuildCall2(cg->b, i32fn, f_nt, NULL, 0, "nt");
  LLVMTypeRef mp[2] = {cg->i32, cg->i32};
  LLVMTypeRef markt = LLVMFunctionType(cg->voidt, mp, 2, 0);
  LLVMValueRef f_mark = cg->profile ? declare(cg, "snc_profile_mark", cg->voidt, mp, 2) : NULL;
  LLVMValueRef t0 = LLVMBuildICmp(cg->b, LLVMIntEQ, tid, cg_i32(cg, 0), "t0");
  int group = 0; /* first kernel since the last barrier */
  for (int k = 0; k <= nk; k++) {
    if (f_mark) { /* thread 0 marks the start and the end of every kernel (after its barrier) */
      LLVMBasicBlockRef yes = LLVMAppendBasicBlockInContext(cg->ctx, fn, "mark");
      LLVMBasicBlockRef no = LLVMAppendBasicBlockInContext(cg->ctx, fn, "go");
      LLVMBuildCondBr(cg->b, t0, yes, no);
      LLVMPositionBuilderAtEnd(cg->b, yes);
      LLVMValueRef ma[2] = {cg_i32(cg, region), cg_i32(cg, k)};
      LLVMBuildCall2(cg->b, markt, f_mark, ma, 2, "");
      LLVMBuildBr(cg->b, no);
      LLVMPositionBuilderAtEnd(cg->b, no);
    }
    if (k == nk) break;
    LLVMValueRef a[5] = {arena, args, tid, nt, kernels[k].slots};
    LLVMBuildCall2(cg->b, cg->kernel_ty, kernels[k].fn, a, 5, "");
    int wait = f_mark || k + 1 == nk;
    for (int q = group; q <= k && !wait && k + 1 < nk; q++) wait = conflict(&kernels[q], &kernels[k + 1]);
    if (k + 1 < nk && !wait) continue; /* the next kernel joins this group */
    group = k + 1;
    if (region <= 1) kernels[k].wait = k + 1 < nk;
    if (k + 1 < nk || f_mark) LLVMBuildCall2(cg->b, voidfn, f_bar, NULL, 0, ""), cg->nbarriers++;
  }
  LLVMBuildRetVoid(cg->b);
  return fn;
}

/* Reorders calls [lo, hi) so that independent calls become neighbours and share a barrier: each
 * group takes, in order, every remaining call that conflicts neither with a call of the group nor
 * with a remaining call before it (which has to run first). Two calls only trade places when
 * neither writes what the other touches (in the arena, after memory reuse), so every call reads
 * what it read in the graph's order; the two branches of the siamese net then run side by side. */
static int schedule(kcall *k, int lo, int hi) {
  int n = hi - lo, m = 0;
  kcall *out = malloc((size_t)(n > 0 ? n : 1) * sizeof *out);
  char *done = calloc((size_t)(n > 0 ? n : 1), 1);
  if (!out || !done) return free(out), free(done), -1;
  while (m < n) {
    int g0 = m;
    for (int i = 0; i < n; i++) {
      int ok = !done[i];
      for (int j = g0; j < m && ok; j++) ok = !conflict(&out[j], &k[lo + i]);
      for (int j = 0; j < i && ok; j++) ok = done[j] || !conflict(&k[lo + j], &k[lo + i]);
      if (ok) out[m++] = k[lo + i], done[i] = 1;
    }
  }
  memcpy(k + lo, out, (size_t)n * sizeof *out);
  free(out);
  free(done);
  return 0;
}

/* P_<entry>(arena, args): GOMP_parallel(region, &{arena, args}, args->nthreads, 0) */
static void build_entry(snc_cg *cg, const char *name, LLVMValueRef region) {
  LLVMTypeRef pt[2] = {cg->ptr, cg->ptr};
  LLVMValueRef fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->voidt, pt, 2, 0));
  LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
  LLVMTypeRef st[2] = {cg->ptr, cg->ptr};
  LLVMValueRef data = LLVMBuildAlloca(cg->b, LLVMArrayType(cg->ptr, 2), "data");
  (void)st;
  LLVMBuildStore(cg->b, LLVMGetParam(fn, 0), data);
  LLVMValueRef eight = cg_i64(cg, 8);
  LLVMBuildStore(cg->b, LLVMGetParam(fn, 1), LLVMBuildInBoundsGEP2(cg->b, cg->i8, data, &eight, 1, ""));
  LLVMValueRef idx = cg_i64(cg, 44);
  LLVMValueRef nth = LLVMBuildLoad2(cg->b, cg->i32, LLVMBuildInBoundsGEP2(cg->b, cg->i8, LLVMGetParam(fn, 1), &idx, 1, ""), "nthreads");
  LLVMTypeRef gp[4] = {cg->ptr, cg->ptr, cg->i32, cg->i32};
  LLVMValueRef f_par = declare(cg, "GOMP_parallel", cg->voidt, gp, 4);
  LLVMValueRef a[4] = {region, data, nth, cg_i32(cg, 0)};
  LLVMBuildCall2(cg->b, LLVMFunctionType(cg->voidt, gp, 4, 0), f_par, a, 4, "");
  LLVMBuildRetVoid(cg->b);
}

/* The region "<prefix>.<what>.region" over calls k[0, n) (`region`: its number for profiles) and its
   entry point "<prefix>_<entry>"; returns the region's barriers. */
static int build_step(snc_cg *cg, const char *prefix, const char *what, const char *entry, int region, kcall *k, int n) {
  char name[160];
  snprintf(name, sizeof name, "%s.%s.region", prefix, what);
  cg->nbarriers = 0;
  LLVMValueRef r = build_region(cg, name, region, k, n);
  snprintf(name, sizeof name, "%s_%s", prefix, entry);
  build_entry(cg, name, r);
  return cg->nbarriers;
}

typedef struct klist {
  kcall *k;
  int n, cap;
} klist;

/* the slot table of the kernel just emitted, as an internal constant global */
static LLVMValueRef slots_global(snc_cg *cg) {
  LLVMValueRef v[32];
  for (int i = 0; i < cg->nslots; i++) v[i] = LLVMConstInt(cg->i64, (unsigned long long)cg->slot_val[i], 1);
  LLVMTypeRef t = LLVMArrayType(cg->i64, (unsigned)(cg->nslots ? cg->nslots : 1));
  LLVMValueRef gl = LLVMAddGlobal(cg->mod, t, "slots");
  LLVMSetInitializer(gl, cg->nslots ? LLVMConstArray(cg->i64, v, (unsigned)cg->nslots) : LLVMConstNull(t));
  LLVMSetGlobalConstant(gl, 1);
  LLVMSetLinkage(gl, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(gl, LLVMGlobalUnnamedAddr);
  LLVMSetAlignment(gl, 8);
  return gl;
}

static void push(snc_cg *cg, klist *l, LLVMValueRef f, const char *what, int node) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 64;
    l->k = realloc(l->k, (size_t)l->cap * sizeof *l->k);
    SNC_ASSERT(l->k);
  }
  l->k[l->n].fn = f;
  l->k[l->n].wait = 0;
  l->k[l->n].slots = slots_global(cg);
  l->k[l->n].name = strdup(what);
  l->k[l->n].shape = NULL;
  l->k[l->n].node = node;
  /* the ranges it touches: its output first, then every other buffer its slots point to; optimizer
     updates and batch norm (running statistics) also write their inputs */
  kcall *c = &l->k[l->n];
  c->nbuf = 0;
  int all_written = 1;
  if (node >= 0) {
    int out = node, op = cg->g->nodes[node]->op;
    all_written = op == SNC_OP_ADAM || op == SNC_OP_SGD || op == SNC_OP_BATCHNORM;
    for (int m = 0; m < cg->g->nnodes; m++) /* the chain's head can be a batch norm too */
      if (cg->into[m] == node && cg->g->nodes[m]->op == SNC_OP_BATCHNORM) all_written = 1;
    /* an update writes its parameter and state, never its own (placeholder) output, which the
       memory plan gives every update at the same offset: counting it would chain them all */
    if (op != SNC_OP_ADAM && op != SNC_OP_SGD) {
      c->buf[c->nbuf][0] = cg->lay->offset[out], c->buf[c->nbuf][1] = cg->lay->offset[out] + cg->lay->bytes[out];
      c->nbuf++;
    }
    for (int k = 0; k < cg->nside; k++) { /* side outputs: written too */
      int m = cg->side[k];
      c->buf[c->nbuf][0] = cg->lay->offset[m], c->buf[c->nbuf][1] = cg->lay->offset[m] + cg->lay->bytes[m];
      c->nbuf++;
    }
    if (cg->lay->scratch_bytes[node]) { /* and its scratch */
      c->buf[c->nbuf][0] = cg->lay->scratch_off[node], c->buf[c->nbuf][1] = cg->lay->scratch_off[node] + cg->lay->scratch_bytes[node];
      c->nbuf++;
    }
    c->nwritten = c->nbuf;
    for (int k = 0; k < cg->nslots; k++) {
      int b = cg->slot_node[k];
      if (b < 0 || b == out || (snc_fuse_side(cg->into, b) && snc_fuse_root(cg->into, b) == node)) continue; /* the output, a side output */
      c->buf[c->nbuf][0] = cg->lay->offset[b], c->buf[c->nbuf][1] = cg->lay->offset[b] + cg->lay->bytes[b];
      c->nbuf++;
    }
    SNC_ASSERT(cg->lay->offset[out] >= 0);
  }
  if (all_written) c->nwritten = c->nbuf;
  l->n++;
}

/* Two nodes with the same key get the same kernel code (their buffers differ only through the
 * slot tables): the op, every attribute a kernel reads, the shapes, dtypes and batch flags of the
 * node and its inputs, and the mode where the op behaves differently when training. */
static void node_key(snc_cg *cg, const snc_node *n, char *key, size_t len) {
  const snc_attrs *a = &n->attr;
  int mode = n->op == SNC_OP_DROPOUT || n->op == SNC_OP_BATCHNORM ? cg->training : 0;
  size_t k = (size_t)snprintf(key, len, "%d|%d|k%d,%d s%d,%d p%d,%d a%d st%d l%d c%d al%a p%a e%a m%a lr%a b%a,%a wd%a n%d tb%d|",
                              n->op, mode, a->kernel[0], a->kernel[1], a->stride[0], a->stride[1], a->pad[0], a->pad[1],
                              a->axis, a->start, a->len, a->classes, a->alpha, a->p, a->eps, a->momentum, a->lr, a->beta1,
                              a->beta2, a->weight_decay, a->nesterov, a->to_batched);
  /* optimizer updates, bias gradients and sums without a batch take their sizes per call (slots) */
  int sized = n->op == SNC_OP_ADAM || n->op == SNC_OP_SGD || n->op == SNC_OP_BIAS_GRAD ||
              (n->op == SNC_OP_ADD && !(n->flags & SNC_NF_BATCHED));
  for (int j = -1; j < n->ninputs && k < len; j++) {
    const snc_node *t = j < 0 ? n : cg->g->nodes[n->inputs[j]];
    k += (size_t)snprintf(key + k, len - k, "%d%d%s:", t->dtype, !!(t->flags & SNC_NF_BATCHED),
                          cg_compact(cg, t->id) ? "c" : "");
    for (int d = 0; d < t->shape.rank && k < len && !sized; d++) k += (size_t)snprintf(key + k, len - k, "%lld,", (long long)t->shape.dim[d]);
  }
  for (int d = 0; d < a->to.rank && k < len; d++) k += (size_t)snprintf(key + k, len - k, "t%lld,", (long long)a->to.dim[d]);
  /* which inputs are the same node: slots are per distinct node, so x*x and x*y differ */
  for (int j = 0; j < n->ninputs && k < len; j++) {
    int first = j;
    for (int q = 0; q < j && first == j; q++)
      if (n->inputs[q] == n->inputs[j]) first = q;
    k += (size_t)snprintf(key + k, len - k, "=%d", first);
  }
}

typedef struct kcache {
  char **keys;
  char **scheds, **shapes; /* per kernel: " [schedule]" (or "") and the shape key (or NULL) */
  LLVMValueRef *fns;
  cg_slots *slots;         /* per kernel: its slot table in terms of its chain (cg_reuse.c) */
  int n, cap;
  int check;               /* $SNC_CHECK_KERNEL_REUSE: emit twins anyway, and assert the mapped tables */
  int reused;              /* twins whose table was mapped, not emitted */
} kcache;

/* a call of kernel `hit` for node with the current slot table, named what (wl chars so far) plus the
   kernel's schedule */
static void push_twin(snc_cg *cg, klist *l, const kcache *cache, int hit, char *what, size_t cap, int wl, int node) {
  if (wl < (int)cap) snprintf(what + wl, cap - (size_t)wl, "%s", cache->scheds[hit]);
  push(cg, l, cache->fns[hit], what, node);
  if (cache->shapes[hit]) l->k[l->n - 1].shape = strdup(cache->shapes[hit]);
}

/* Emits the kernels of nodes [0, end) in one mode; appends their calls to l. */
static int emit_range(snc_cg *cg, int end, int training, klist *l, kcache *cache, snc_error *err) {
  cg->training = training;
  LLVMValueRef f = snc_cg_emit_inputs(cg);
  if (f) push(cg, l, f, "inputs", -1);
  char key[8192];
  for (int i = 0; i < end; i++) {
    const snc_node *n = cg->g->nodes[i];
    if (n->op == SNC_OP_INPUT || n->op == SNC_OP_PARAM || n->op == SNC_OP_CONST) continue;
    if (cg->into[i] != i) continue; /* computed by its chain's kernel, at the chain's root */
    if (snc_layout_view_delta(cg->g, i, cg->lay->bp) >= 0) continue; /* a view: nothing to compute */
    /* a chain's root: emit its head with the rest of the chain as epilogue */
    int head = i;
    cg->nepi = 0;
    for (int m = 0; m < i; m++)
      if (snc_fuse_root(cg->into, m) == i) { /* members, stored ones (side outputs) included */
        if (head == i) head = m;
        else cg->epi[cg->nepi++] = m;
      }
    if (head != i) cg->epi[cg->nepi++] = i;
    /* a weight gradient that takes its dy chain (fuse.c, dw_takes): the dw emitter is the head and
       the chain, in its order, a prologue that computes dy */
    int pro = n->op == SNC_OP_CONV2D_DW && head != i;
    if (pro) {
      memmove(cg->epi + 1, cg->epi, (size_t)(cg->nepi - 1) * sizeof *cg->epi);
      cg->epi[0] = head, head = i;
    }
    SNC_ASSERT(cg->nepi < 16);
    cg->nside = 0;
    for (int m = 0; m < cg->g->nnodes; m++)
      if (snc_fuse_side(cg->into, m) && snc_fuse_root(cg->into, m) == i) {
        SNC_ASSERT(cg->nside < 4);
        cg->side[cg->nside++] = m;
      }
    char what[160];
    int wl = snprintf(what, sizeof what, "%s", snc_op_name(cg->g->nodes[head]->op));
    for (int k = 0; k < cg->nepi && wl < (int)sizeof what; k++)
      wl += snprintf(what + wl, sizeof what - (size_t)wl, "+%s", snc_op_name(cg->g->nodes[cg->epi[k]]->op));
    for (int k = 0; k < cg->nside && wl < (int)sizeof what; k++) /* side outputs (those of the chain are named) */
      if (cg->side[k] > i) wl += snprintf(what + wl, sizeof what - (size_t)wl, "+%s", snc_op_name(cg->g->nodes[cg->side[k]]->op));
    if (wl < (int)sizeof what) wl += snprintf(what + wl, sizeof what - (size_t)wl, " %s", n->name);
    node_key(cg, cg->g->nodes[head], key, sizeof key);
    for (int k = 0, prev = pro ? -1 : head; k < cg->nepi; k++) { /* the epilogue is part of the code */
      const snc_node *e = cg->g->nodes[cg->epi[k]];
      size_t l = strlen(key);
      int at = 0;
      while (prev >= 0 && e->inputs[at] != prev) at++; /* which input carries the chain */
      l += (size_t)snprintf(key + l, sizeof key - l, prev >= 0 ? "+@%d" : "+P", at);
      node_key(cg, e, key + l, sizeof key - l);
      prev = e->id;
    }
    for (int k = 0; k < cg->nside; k++) { /* and the side outputs */
      size_t l = strlen(key);
      l += (size_t)snprintf(key + l, sizeof key - l, "+S");
      node_key(cg, cg->g->nodes[cg->side[k]], key + l, sizeof key - l);
    }
    int hit = -1;
    for (int c = 0; c < cache->n && hit < 0; c++)
      if (!strcmp(cache->keys[c], key)) hit = c;
    /* a twin of an earlier kernel: its slot table mapped from that kernel's, without emitting */
    int mapped = hit >= 0 && cg_slots_map(cg, &cache->slots[hit], head, i);
    if (mapped && !cache->check) {
      push_twin(cg, l, cache, hit, what, sizeof what, wl, i);
      cache->reused++;
      continue;
    }
    cg_slots want; /* the check: what the map gave, against what the emission does */
    if (mapped) cg_slots_record(cg, head, i, &want);
    LLVMValueRef ks[4];
    int nk = snc_cg_emit_node(cg, cg->g->nodes[head], ks);
    if (nk < 0) return snc_errorf(err, "%s: no code generator for op %s (node '%s')", cg->g->file, snc_op_name(n->op), n->name);
    SNC_ASSERT(nk == 1);
    char sched[64] = "";
    if (cg->sched.kind) {
      sched[0] = ' ', sched[1] = '[';
      int sl = 2 + snc_cg_schedule_format(&cg->sched, sched + 2, sizeof sched - 3);
      if (sl < (int)sizeof sched - 1) sched[sl] = ']', sched[sl + 1] = 0;
    }
    if (mapped) {
      SNC_ASSERT(cg->nslots == want.n && !strcmp(sched, cache->scheds[hit]));
      for (int k = 0; k < cg->nslots; k++)
        SNC_ASSERT(cg->slot_node[k] == want.node[k] && cg->slot_val[k] == want.val[k] && cg->slot_src[k] == want.src[k] &&
                   cg->slot_kind[k] == want.kind[k]);
    }
    if (hit >= 0) { /* same code as an earlier kernel: call that one with this node's slots */
      LLVMDeleteFunction(ks[0]);
      cg->nkernels--;
      push_twin(cg, l, cache, hit, what, sizeof what, wl, i);
      continue;
    }
    if (cache->n == cache->cap) {
      cache->cap = cache->cap ? 2 * cache->cap : 64;
      cache->keys = realloc(cache->keys, (size_t)cache->cap * sizeof *cache->keys);
      cache->fns = realloc(cache->fns, (size_t)cache->cap * sizeof *cache->fns);
      cache->scheds = realloc(cache->scheds, (size_t)cache->cap * sizeof *cache->scheds);
      cache->shapes = realloc(cache->shapes, (size_t)cache->cap * sizeof *cache->shapes);
      cache->slots = realloc(cache->slots, (size_t)cache->cap * sizeof *cache->slots);
      SNC_ASSERT(cache->keys && cache->fns && cache->scheds && cache->shapes && cache->slots);
    }
    cg_slots_record(cg, head, i, &cache->slots[cache->n]);
    cache->keys[cache->n] = strdup(key);
    cache->scheds[cache->n] = strdup(sched);
    cache->shapes[cache->n] = cg->sched.kind ? strdup(cg->sched_shape) : NULL;
    cache->fns[cache->n++] = ks[0];
    if (wl < (int)sizeof what) snprintf(what + wl, sizeof what - (size_t)wl, "%s", sched);
    push(cg, l, ks[0], what, i);
    if (cg->sched.kind) l->k[l->n - 1].shape = strdup(cg->sched_shape);
  }
  cg->nepi = cg->nside = 0;
  return 0;
}

snc_program *snc_program_build(const snc_graph *g, const snc_cg_options *opt, snc_error *err) {
  double t0 = now();
  snc_program *p = calloc(1, sizeof *p);
  klist train = {0}, eval = {0};
  kcache cache = {0};
  const char *check = getenv("SNC_CHECK_KERNEL_REUSE");
  cache.check = check && check[0] == '1';
  if (!p) return snc_errorf(err, "%s: out of memory", g->file), NULL;
  p->g = g;
  snprintf(p->prefix, sizeof p->prefix, "%s", opt && opt->prefix ? opt->prefix : g->name);
  for (char *c = p->prefix; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'))) *c = '_';
  p->into = malloc((size_t)g->nnodes * sizeof *p->into);
  if (!p->into) goto oom;
  if (opt && opt->no_fusion) {
    for (int i = 0; i < g->nnodes; i++) p->into[i] = i;
  } else if (snc_fuse_plan(g, p->into, err)) {
    goto fail;
  }
  int direct_conv = (opt && opt->direct_conv) || (getenv("SNC_DIRECT_CONV") && !strcmp(getenv("SNC_DIRECT_CONV"), "1"));
  int64_t *scratch = calloc((size_t)g->nnodes, sizeof *scratch);
  if (!scratch) goto oom;
  for (int i = 0; i < g->nnodes; i++) scratch[i] = cg_node_scratch(g, p->into, i, direct_conv);
  int planned = snc_layout_plan(g, p->into, opt && opt->no_reuse, scratch, &p->layout, err);
  free(scratch);
  if (planned) goto fail;
  p->inputs = calloc((size_t)g->nnodes, sizeof(int));
  p->outputs = calloc(2 * (size_t)g->noutputs + 1, sizeof(int));
  if (!p->inputs || !p->outputs) goto oom;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == SNC_OP_INPUT) p->inputs[p->ninputs++] = i;
  /* exported by the evaluation entry: every output's prediction and its labels when computed */
  for (int o = 0; o < g->noutputs; o++)
    for (int w = 0; w < 2; w++) {
      int id = w ? g->outputs[o].target : g->outputs[o].node, seen = g->nodes[id]->op == SNC_OP_INPUT;
      for (int k = 0; k < p->noutputs; k++) seen |= p->outputs[k] == id;
      if (!seen) p->outputs[p->noutputs++] = id;
    }

  snc_cg cg = {.g = g, .lay = &p->layout, .err = err, .profile = opt && opt->profile, .into = p->into,
               .sched_fn = opt ? opt->schedule : NULL, .sched_user = opt ? opt->schedule_user : NULL,
               .direct_conv = direct_conv};
  p->context = cg.ctx = LLVMContextCreate();
  char modname[96];
  snprintf(modname, sizeof modname, "snc.%s", p->prefix);
  p->module = cg.mod = LLVMModuleCreateWithNameInContext(modname, cg.ctx);
  cg.b = LLVMCreateBuilderInContext(cg.ctx);
  init_types(&cg);
  snc_cg_emit_begin(&cg, p);

  int has_step = g->nnodes > g->nforward;
  if (has_step) {
    if (emit_range(&cg, g->nnodes, 1, &train, &cache, err)) goto fail_b;
    /* the updates stay after every gradient (split_step cuts there) */
    int cut = 0, first = snc_graph_first_update(g);
    while (cut < train.n && train.k[cut].node < first) cut++;
    if (schedule(train.k, 0, cut) || schedule(train.k, cut, train.n)) goto oom_b;
    p->nbarriers[0] = build_step(&cg, p->prefix, "train", "train_step", 0, train.k, train.n);
    if (opt && opt->split_step) { /* the same calls cut before the first optimizer update */
      for (int k = cut; k < train.n; k++) SNC_ASSERT(train.k[k].node >= first);
      int profile = cg.profile;
      cg.profile = 0; /* profiles time P_train_step's region only */
      build_step(&cg, p->prefix, "grad", "grad_step", 2, train.k, cut);
      build_step(&cg, p->prefix, "apply", "apply_step", 3, train.k + cut, train.n - cut);
      cg.profile = profile;
    }
  }
  p->no_eval = has_step && opt && opt->no_eval;
  if (!p->no_eval) {
    if (emit_range(&cg, g->nforward, 0, &eval, &cache, err)) goto fail_b;
    LLVMValueRef f = snc_cg_emit_outputs(&cg, p);
    if (f) push(&cg, &eval, f, "outputs", -1);
    if (schedule(eval.k, 0, eval.n)) goto oom_b;
    p->nbarriers[1] = build_step(&cg, p->prefix, "eval", "eval", 1, eval.k, eval.n);
  }
  p->nkernels = cg.nkernels;
  { /* P_init: from the init specs, or a copy of the embedded weights */
    void *blob = NULL;
    if (opt && opt->embed) {
      if (!(blob = calloc(1, (size_t)(p->layout.persistent_bytes ? p->layout.persistent_bytes : 1)))) {
        snc_errorf(err, "%s: out of memory for the embedded weights", g->file);
        goto fail_b;
      }
      for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == SNC_OP_CONST)
          memcpy((char *)blob + p->layout.offset[i], g->nodes[i]->value, (size_t)snc_shape_numel(&g->nodes[i]->shape) * 4);
      if (opt->embed(p, blob, opt->embed_user, err) != 0) {
        free(blob);
        goto fail_b;
      }
      p->embedded = 1;
    }
    int rc = snc_cg_emit_init(&cg, p, blob, err);
    free(blob); /* the module holds its own copy */
    if (rc) goto fail_b;
  }
  LLVMDisposeBuilder(cg.b);
  klist *lists[2] = {&train, &eval};
  for (int r2 = 0; r2 < 2; r2++) {
    p->ncalls[r2] = lists[r2]->n;
    p->call_names[r2] = calloc((size_t)lists[r2]->n + 1, sizeof(char *));
    p->call_shapes[r2] = calloc((size_t)lists[r2]->n + 1, sizeof(char *));
    p->call_nodes[r2] = calloc((size_t)lists[r2]->n + 1, sizeof(int));
    p->call_waits[r2] = calloc((size_t)lists[r2]->n + 1, 1);
    for (int k = 0; k < lists[r2]->n && p->call_nodes[r2] && p->call_waits[r2]; k++)
      p->call_nodes[r2][k] = lists[r2]->k[k].node, p->call_waits[r2][k] = (unsigned char)lists[r2]->k[k].wait;
    for (int k = 0; k < lists[r2]->n; k++) {
      if (p->call_names[r2]) p->call_names[r2][k] = lists[r2]->k[k].name; /* ownership to p */
      else free(lists[r2]->k[k].name);
      if (p->call_shapes[r2]) p->call_shapes[r2][k] = lists[r2]->k[k].shape; /* ownership to p */
      else free(lists[r2]->k[k].shape);
    }
  }
  free(train.k);
  free(eval.k);
  for (int c = 0; c < cache.n; c++) free(cache.keys[c]), free(cache.scheds[c]), free(cache.shapes[c]);
  free(cache.keys);
  free(cache.scheds);
  free(cache.shapes);
  free(cache.fns);
  free(cache.slots);
  p->nreused = cache.reused;
  p->build_seconds = now() - t0;
  if (opt && opt->dump_graph) snc_cg_dump_plan(p, opt->dump_graph);
  return p;
oom_b:
  snc_errorf(err, "%s: out of memory", g->file);
fail_b:
  LLVMDisposeBuilder(cg.b);
  goto fail;
oom:
  snc_errorf(err, "%s: out of memory", g->file);
fail:
  for (int k = 0; k < train.n; k++) free(train.k[k].name), free(train.k[k].shape);
  for (int k = 0; k < eval.n; k++) free(eval.k[k].name), free(eval.k[k].shape);
  free(train.k);
  free(eval.k);
  for (int c = 0; c < cache.n; c++) free(cache.keys[c]), free(cache.scheds[c]), free(cache.shapes[c]);
  free(cache.keys);
  free(cache.scheds);
  free(cache.shapes);
  free(cache.fns);
  free(cache.slots);
  snc_program_free(p);
  return NULL;
}

void snc_program_free(snc_program *p) {
  if (!p) return;
  if (p->module) LLVMDisposeModule(p->module);
  if (p->context) LLVMContextDispose(p->context); /* a taker of the module is done with it by now */
  snc_layout_free(&p->layout);
  for (int r = 0; r < 2; r++) {
    if (p->call_names[r])
      for (int k = 0; k < p->ncalls[r]; k++) free(p->call_names[r][k]);
    free(p->call_names[r]);
    if (p->call_shapes[r])
      for (int k = 0; k < p->ncalls[r]; k++) free(p->call_shapes[r][k]);
    free(p->call_shapes[r]);
    free(p->call_nodes[r]);
    free(p->call_waits[r]);
  }
  free(p->into);
  free(p->inputs);
  free(p->outputs);
  free(p);
}
