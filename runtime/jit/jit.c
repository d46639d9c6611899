/* ORC LLJIT wrapper: optimise, generate host machine code, link against an allowed symbol list. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity */
#endif
#include "snc/jit.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>

#include "snc/target.h"

/* The OpenMP runtime ABI the generated code calls (libgomp, linked into snc_runtime). */
void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
void GOMP_barrier(void);
int omp_get_thread_num(void);
int omp_get_num_threads(void);

static const char *const g_allowed[] = {
    "GOMP_parallel", "GOMP_barrier", "omp_get_thread_num", "omp_get_num_threads",
    "expf", "logf", "tanhf", "log1pf", "expm1f", "sqrtf", "memset", "memcpy", "log", "cos", NULL};

/* Addresses in g_allowed's order (function pointers go through uintptr_t into the JIT's table). */
static void allowed_addresses(uintptr_t *a) {
  int i = 0;
  a[i++] = (uintptr_t)&GOMP_parallel;
  a[i++] = (uintptr_t)&GOMP_barrier;
  a[i++] = (uintptr_t)&omp_get_thread_num;
  a[i++] = (uintptr_t)&omp_get_num_threads;
  a[i++] = (uintptr_t)&expf;
  a[i++] = (uintptr_t)&logf;
  a[i++] = (uintptr_t)&tanhf;
  a[i++] = (uintptr_t)&log1pf;
  a[i++] = (uintptr_t)&expm1f;
  a[i++] = (uintptr_t)&sqrtf;
  a[i++] = (uintptr_t)&memset;
  a[i++] = (uintptr_t)&memcpy;
  a[i++] = (uintptr_t)&log; /* P_init's Box-Muller normals */
  a[i++] = (uintptr_t)&cos;
  SNC_ASSERT(g_allowed[i] == NULL);
}

#define N_BUILTIN (sizeof g_allowed / sizeof g_allowed[0] - 1)

const char *const *snc_jit_allowed_symbols(void) { return g_allowed; }

snc_jit_options snc_jit_default_options(void) {
  snc_jit_options o = {0};
  o.opt_level = 3;
  return o;
}

typedef struct jit_def {
  char *name;
  void *addr;
} jit_def;

struct snc_jit {
  LLVMOrcLLJITRef lljit;
  jit_def *defs; /* external symbols the module defines, with their addresses once linked */
  size_t n_defs;
  snc_jit_timing timing;
  char module_name[128];
  char session_msg[1024]; /* errors the execution session reports outside any call's result */
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Turns an LLVMErrorRef into err->msg (consumes e) and returns -1. */
static int llvm_error(snc_error *err, LLVMErrorRef e, const char *what, const char *session) {
  char *msg = LLVMGetErrorMessage(e);
  if (session && session[0])
    snc_errorf(err, "jit: %s: %s (%s)", what, session, msg);
  else
    snc_errorf(err, "jit: %s: %s", what, msg);
  LLVMDisposeErrorMessage(msg);
  return -1;
}

static void report_session_error(void *ctx, LLVMErrorRef e) {
  snc_jit *j = ctx;
  char *msg = LLVMGetErrorMessage(e); /* consumes e */
  size_t used = strlen(j->session_msg);
  if (used + 3 < sizeof j->session_msg)
    snprintf(j->session_msg + used, sizeof j->session_msg - used, "%s%s", used ? "; " : "", msg);
  LLVMDisposeErrorMessage(msg);
}

/* The last resort of symbol resolution in the main JITDylib: every allowed symbol and every definition
 * of the module are already there, so whatever reaches this generator is a reference the module's
 * machine code makes to something not allowed (typically a library call code generation introduced).
 * Failing here stops the lookup before LLJIT's process-symbol JITDylib could resolve it. */
static LLVMErrorRef refuse_other_symbols(LLVMOrcDefinitionGeneratorRef gen, void *ctx,
                                         LLVMOrcLookupStateRef *state, LLVMOrcLookupKind kind,
                                         LLVMOrcJITDylibRef jd, LLVMOrcJITDylibLookupFlags flags,
                                         LLVMOrcCLookupSet set, size_t n) {
  (void)gen, (void)state, (void)kind, (void)jd, (void)flags;
  const snc_jit *j = ctx;
  for (size_t i = 0; i < n; i++) {
    if (set[i].LookupFlags == LLVMOrcSymbolLookupFlagsWeaklyReferencedSymbol) continue;
    char msg[512];
    snprintf(msg, sizeof msg,
             "machine code of module '%s' references external symbol '%s', which is not allowed",
             j->module_name, LLVMOrcSymbolStringPoolEntryStr(set[i].Name));
    return LLVMCreateStringError(msg);
  }
  return LLVMErrorSuccess;
}

/* ------------------------------------------------------------------------------ symbol policy */

typedef struct allowed_set {
  const char *name[64 + N_BUILTIN];
  uintptr_t addr[64 + N_BUILTIN];
  size_t n;
} allowed_set;

static int find_allowed(const allowed_set *a, const char *name) {
  for (size_t i = 0; i < a->n; i++)
    if (strcmp(a->name[i], name) == 0) return (int)i;
  return -1;
}

/* The built-ins, then the caller's entries (which replace a built-in of the same name). */
static int build_allowed(allowed_set *a, const snc_jit_options *opt, snc_error *err) {
  uintptr_t builtin[N_BUILTIN];
  allowed_addresses(builtin);
  a->n = 0;
  for (size_t i = 0; i < N_BUILTIN; i++) {
    a->name[a->n] = g_allowed[i];
    a->addr[a->n++] = builtin[i];
  }
  if (opt->n_symbols && !opt->symbols)
    return snc_errorf(err, "jit: n_symbols is %zu but symbols is NULL", opt->n_symbols);
  if (opt->n_symbols > 64) return snc_errorf(err, "jit: %zu extra symbols, at most 64", opt->n_symbols);
  for (size_t i = 0; i < opt->n_symbols; i++) {
    const snc_jit_symbol *s = &opt->symbols[i];
    if (!s->name || !s->name[0] || !s->addr)
      return snc_errorf(err, "jit: extra symbol %zu has an empty name or a NULL address", i);
    for (size_t k = 0; k < i; k++)
      if (strcmp(opt->symbols[k].name, s->name) == 0)
        return snc_errorf(err, "jit: extra symbol '%s' is given twice", s->name);
    int at = find_allowed(a, s->name);
    if (at < 0) at = (int)a->n++;
    a->name[at] = s->name;
    a->addr[at] = (uintptr_t)s->addr;
  }
  return 0;
}

static int is_intrinsic(LLVMValueRef f, const char *name) {
  return LLVMGetIntrinsicID(f) != 0 || strncmp(name, "llvm.", 5) == 0;
}

/* Refuses a module declaring an external function or global that is not allowed. */
static int check_externals(LLVMModuleRef m, const char *mname, const allowed_set *a, snc_error *err) {
  for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f)) {
    if (!LLVMIsDeclaration(f)) continue;
    size_t len = 0;
    const char *name = LLVMGetValueName2(f, &len);
    if (is_intrinsic(f, name)) continue;
    if (find_allowed(a, name) < 0) {
      char list[512] = "";
      size_t used = 0;
      for (size_t i = 0; i < a->n && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? " " : "", a->name[i]);
      return snc_errorf(err,
                        "jit: module '%s' declares external function '%s', which is not allowed "
                        "(allowed: %s)",
                        mname, name, list);
    }
  }
  for (LLVMValueRef g = LLVMGetFirstGlobal(m); g; g = LLVMGetNextGlobal(g)) {
    if (!LLVMIsDeclaration(g)) continue;
    size_t len = 0;
    const char *name = LLVMGetValueName2(g, &len);
    if (find_allowed(a, name) < 0)
      return snc_errorf(err, "jit: module '%s' declares external global '%s', which is not allowed",
                        mname, name);
  }
  return 0;
}

static int is_exported(LLVMValueRef v) {
  LLVMLinkage l = LLVMGetLinkage(v);
  return !LLVMIsDeclaration(v) && l != LLVMInternalLinkage && l != LLVMPrivateLinkage;
}

/* Records the names of the functions and globals the module defines for other code. */
static int collect_defs(snc_jit *j, LLVMModuleRef m, snc_error *err) {
  size_t n = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f)) n += is_exported(f);
  for (LLVMValueRef g = LLVMGetFirstGlobal(m); g; g = LLVMGetNextGlobal(g)) n += is_exported(g);
  j->defs = calloc(n ? n : 1, sizeof *j->defs);
  if (!j->defs) return snc_errorf(err, "jit: out of memory");
  for (int pass = 0; pass < 2; pass++) {
    LLVMValueRef v = pass == 0 ? LLVMGetFirstFunction(m) : LLVMGetFirstGlobal(m);
    for (; v; v = pass == 0 ? LLVMGetNextFunction(v) : LLVMGetNextGlobal(v)) {
      if (!is_exported(v)) continue;
      size_t len = 0;
      const char *name = LLVMGetValueName2(v, &len);
      char *copy = malloc(len + 1);
      if (!copy) return snc_errorf(err, "jit: out of memory");
      memcpy(copy, name, len + 1);
      j->defs[j->n_defs++].name = copy;
    }
  }
  return 0;
}

/* ------------------------------------------------------------------------------------ linking */

/* Creates the LLJIT for the host, defines the allowed symbols, adds the nobj objects (ownership taken)
 * and links them by looking up every definition. */
static int link_objects(snc_jit *j, const allowed_set *a, LLVMMemoryBufferRef *objs, int nobj, snc_error *err) {
  int rc = -1;
  LLVMOrcLLJITBuilderRef builder = NULL;
  LLVMOrcCSymbolMapPairs pairs = NULL;
  LLVMOrcMaterializationUnitRef mu = NULL;
  LLVMErrorRef e = NULL;

  LLVMTargetMachineRef tm = snc_cg_target_host(err);
  if (!tm) goto cleanup;
  /* the builder takes the target machine (destroyed inside), the LLJIT then takes the builder */
  LLVMOrcJITTargetMachineBuilderRef jtmb = LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm);
  builder = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb); /* builder owns jtmb */
  e = LLVMOrcCreateLLJIT(&j->lljit, builder);
  builder = NULL; /* consumed, even on failure */
  if (e) {
    j->lljit = NULL;
    llvm_error(err, e, "cannot create LLJIT", NULL);
    goto cleanup;
  }
  LLVMOrcExecutionSessionSetErrorReporter(LLVMOrcLLJITGetExecutionSession(j->lljit), report_session_error, j);
  LLVMOrcJITDylibRef main_jd = LLVMOrcLLJITGetMainJITDylib(j->lljit);

  pairs = calloc(a->n, sizeof *pairs);
  if (!pairs) {
    snc_errorf(err, "jit: out of memory");
    goto cleanup;
  }
  for (size_t i = 0; i < a->n; i++) {
    pairs[i].Name = LLVMOrcLLJITMangleAndIntern(j->lljit, a->name[i]); /* retained; the unit takes it */
    pairs[i].Sym.Address = (LLVMOrcExecutorAddress)a->addr[i];
    pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
    pairs[i].Sym.Flags.TargetFlags = 0;
  }
  mu = LLVMOrcAbsoluteSymbols(pairs, a->n); /* takes the names */
  e = LLVMOrcJITDylibDefine(main_jd, mu);
  if (e) {
    LLVMOrcDisposeMaterializationUnit(mu); /* still ours on failure */
    llvm_error(err, e, "cannot define the allowed symbols", NULL);
    goto cleanup;
  }
  /* the JITDylib owns the generator; j outlives it (the LLJIT is disposed first in snc_jit_free) */
  LLVMOrcJITDylibAddGenerator(main_jd,
                              LLVMOrcCreateCustomCAPIDefinitionGenerator(refuse_other_symbols, j, NULL));

  for (int k = 0; k < nobj; k++) {
    e = LLVMOrcLLJITAddObjectFile(j->lljit, main_jd, objs[k]);
    objs[k] = NULL; /* the LLJIT owns the buffer now */
    if (e) {
      llvm_error(err, e, "cannot add the object", j->session_msg);
      goto cleanup;
    }
  }
  /* materialise: the first lookup links the whole object; every definition gets its address */
  for (size_t i = 0; i < j->n_defs; i++) {
    LLVMOrcExecutorAddress addr = 0;
    e = LLVMOrcLLJITLookup(j->lljit, &addr, j->defs[i].name);
    if (e) {
      char what[256];
      snprintf(what, sizeof what, "cannot link module '%s'", j->module_name);
      llvm_error(err, e, what, j->session_msg);
      goto cleanup;
    }
    j->defs[i].addr = (void *)(uintptr_t)addr;
  }
  rc = 0;
cleanup:
  for (int k = 0; k < nobj; k++)
    if (objs[k]) LLVMDisposeMemoryBuffer(objs[k]);
  if (builder) LLVMOrcDisposeLLJITBuilder(builder);
  free(pairs);
  return rc;
}


/* Back to a JIT with nothing linked and no definitions (a cache entry that did not link). */
static void jit_reset(snc_jit *j) {
  if (j->lljit) {
    LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->lljit);
    if (e) LLVMConsumeError(e);
    j->lljit = NULL;
  }
  for (size_t i = 0; i < j->n_defs; i++) free(j->defs[i].name);
  free(j->defs);
  j->defs = NULL;
  j->n_defs = 0;
  j->session_msg[0] = 0;
}

/* The cache's side of snc_jit_new: the key of the module as given and, when the cache holds it,
 * the objects linked. 1: done (j linked, module still the caller's to dispose); 0: compile (with
 * *key valid when *keyed); -1: error. *bad: an entry existed but was corrupt, stale or did not link. */
static int from_cache(snc_jit *j, LLVMModuleRef module, LLVMTargetMachineRef tm, const snc_jit_options *opt,
                      const allowed_set *a, snc_jit_cache_key *key, int *keyed, int *bad, snc_error *err) {
  double t0 = now();
  snc_error why = {{0}};
  LLVMMemoryBufferRef objs[SNC_JIT_CACHE_MAX_OBJECTS] = {NULL};
  int n = 0;
  *keyed = snc_jit_cache_key_of(module, tm, opt->opt_level, key, &why) == 0;
  int got = *keyed ? snc_jit_cache_load(opt->cache_dir, key, objs, &n, &why) : 0;
  *bad = got < 0;
  j->timing.cache = now() - t0;
  if (got != 1) return 0;
  if (collect_defs(j, module, err) != 0) {
    for (int k = 0; k < n; k++) LLVMDisposeMemoryBuffer(objs[k]);
    return -1;
  }
  t0 = now();
  if (link_objects(j, a, objs, n, &why) == 0) { /* takes the objects */
    j->timing.link = now() - t0;
    j->timing.cache_status = SNC_JIT_CACHE_HIT;
    return 1;
  }
  jit_reset(j); /* a whole entry that does not link: compile afresh, and replace it */
  *bad = 1;
  return 0;
}

/* ------------------------------------------------------------------ two-thread code generation */

/* Code generation (instruction selection, register allocation) is most of the compile time, and it
 * works function by function. A large module is therefore cut in two: the kernels (internal
 * functions only ever called directly, using no globals) are dealt to two halves of about equal
 * size, the second half goes to a copy of the module in its own LLVMContext (through bitcode), and
 * both halves are optimised and compiled at once on two threads, each with its own target machine.
 * The moved kernels become hidden external symbols so the two objects link to each other in the JIT.
 * Only the pipelines that work function by function are split (level 3, snc's kernel pipeline, and
 * level 0, lowering only), so every function gets the same machine code as in one piece. */

#define SPLIT_MIN_INSTRUCTIONS 4000 /* below this, a second thread costs more than it saves */

static int is_callee_only(LLVMValueRef f) {
  for (LLVMUseRef u = LLVMGetFirstUse(f); u; u = LLVMGetNextUse(u)) {
    LLVMValueRef user = LLVMGetUser(u);
    if (!LLVMIsACallInst(user) || LLVMGetCalledValue(user) != f) return 0;
  }
  return 1;
}

/* instructions of f, or -1 when an instruction uses a global variable (kernels use none) */
static long body_size(LLVMValueRef f) {
  long n = 0;
  for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b))
    for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i)) {
      n++;
      int no = LLVMGetNumOperands(i);
      for (int k = 0; k < no; k++)
        if (LLVMIsAGlobalVariable(LLVMGetOperand(i, k))) return -1;
    }
  return n;
}

/* replaces the definition f by an external declaration of the same name and type */
static void to_declaration(LLVMModuleRef m, LLVMValueRef f) {
  size_t len = 0;
  const char *nm = LLVMGetValueName2(f, &len);
  char *name = malloc(len + 1);
  SNC_ASSERT(name);
  memcpy(name, nm, len + 1);
  LLVMValueRef d = LLVMAddFunction(m, "", LLVMGlobalGetValueType(f));
  LLVMReplaceAllUsesWith(f, d);
  LLVMDeleteFunction(f);
  LLVMSetValueName2(d, name, len);
  free(name);
}

typedef struct split_part {
  LLVMMemoryBufferRef bitcode; /* the whole module (input, disposed by the thread) */
  char **keep;                 /* the functions whose bodies this part compiles */
  size_t nkeep;
  LLVMTargetMachineRef tm;
  int opt_level;
  LLVMMemoryBufferRef obj; /* output */
  snc_error err;
  int rc;
} split_part;

static int kept(const split_part *p, const char *name) {
  for (size_t i = 0; i < p->nkeep; i++)
    if (strcmp(p->keep[i], name) == 0) return 1;
  return 0;
}

/* the second half: the module read back in a context of its own, every other body dropped */
static void *split_thread(void *arg) {
  split_part *p = arg;
  p->rc = -1;
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef m = NULL;
  if (LLVMParseBitcodeInContext2(ctx, p->bitcode, &m)) {
    snc_errorf(&p->err, "cannot read back the module's bitcode");
    goto done;
  }
  for (LLVMValueRef f = LLVMGetFirstFunction(m), next; f; f = next) {
    next = LLVMGetNextFunction(f);
    size_t len = 0;
    if (!LLVMIsDeclaration(f) && !kept(p, LLVMGetValueName2(f, &len))) to_declaration(m, f);
  }
  for (int changed = 1; changed;) { /* drop what only the dropped bodies used */
    changed = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(m), next; f; f = next) {
      next = LLVMGetNextFunction(f);
      if (LLVMIsDeclaration(f) && !LLVMGetFirstUse(f)) LLVMDeleteFunction(f), changed = 1;
    }
    for (LLVMValueRef g = LLVMGetFirstGlobal(m), next; g; g = next) {
      next = LLVMGetNextGlobal(g);
      if (!LLVMGetFirstUse(g)) LLVMDeleteGlobal(g), changed = 1;
    }
  }
  if (snc_cg_optimize(m, p->tm, p->opt_level, &p->err) != 0) goto done;
  if (snc_cg_write_buffer(m, p->tm, SNC_CG_FILE_OBJECT, SNC_CG_WRITE_IN_PLACE, &p->obj, &p->err) != 0) goto done;
  p->rc = 0;
done:
  if (m) LLVMDisposeModule(m);
  LLVMContextDispose(ctx);
  LLVMDisposeMemoryBuffer(p->bitcode);
  p->bitcode = NULL;
  return NULL;
}

/* Chooses the second half of module's kernels: -1 when the module has fewer than two kernels or
 * fewer than min_size instructions. The chosen kernels become hidden external definitions in module (which then still
 * holds every body) and their names go to part->keep. */
static int split_choose(LLVMModuleRef module, long min_size, split_part *part) {
  size_t n = 0, cap = 0;
  typedef struct cand {
    LLVMValueRef f;
    long size;
  } cand;
  cand *c = NULL;
  long total = 0, rest = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(module); f; f = LLVMGetNextFunction(f)) {
    if (LLVMIsDeclaration(f)) continue;
    long sz = body_size(f);
    if (LLVMGetLinkage(f) == LLVMInternalLinkage && sz > 0 && is_callee_only(f)) {
      if (n == cap) {
        cap = cap ? 2 * cap : 64;
        cand *nc = realloc(c, cap * sizeof *c);
        if (!nc) return free(c), -1;
        c = nc;
      }
      c[n++] = (cand){f, sz};
    } else {
      rest += sz < 0 ? 0 : sz;
    }
    total += sz < 0 ? 0 : sz;
  }
  if (n < 2 || total < min_size) return free(c), -1;
  /* largest first, each to the lighter half; the first half starts with everything else */
  for (size_t i = 1; i < n; i++)
    for (size_t k = i; k > 0 && c[k].size > c[k - 1].size; k--) {
      cand t = c[k];
      c[k] = c[k - 1], c[k - 1] = t;
    }
  long a = rest, b = 0;
  part->keep = calloc(n, sizeof *part->keep);
  if (!part->keep) return free(c), -1;
  for (size_t i = 0; i < n; i++) {
    if (b >= a) {
      a += c[i].size;
      continue;
    }
    b += c[i].size;
    size_t len = 0;
    const char *nm = LLVMGetValueName2(c[i].f, &len);
    if (!(part->keep[part->nkeep] = malloc(len + 1))) break;
    memcpy(part->keep[part->nkeep++], nm, len + 1);
    LLVMSetLinkage(c[i].f, LLVMExternalLinkage);
    LLVMSetVisibility(c[i].f, LLVMHiddenVisibility);
  }
  free(c);
  return part->nkeep ? 0 : -1;
}

static void split_free(split_part *p) {
  for (size_t i = 0; i < p->nkeep; i++) free(p->keep[i]);
  free(p->keep);
  if (p->bitcode) LLVMDisposeMemoryBuffer(p->bitcode);
  if (p->obj) LLVMDisposeMemoryBuffer(p->obj);
  if (p->tm) LLVMDisposeTargetMachine(p->tm);
}

static int want_split(const snc_jit_options *opt) {
  int threads = opt->compile_threads;
  const char *env = getenv("SNC_COMPILE_THREADS"); /* 1 or 2: overrides the automatic choice */
  if (!threads && env && (env[0] == '1' || env[0] == '2') && !env[1]) threads = env[0] - '0';
  if (threads == 1 || opt->dump_llvm || opt->dump_asm) return 0;
  if (opt->opt_level != 0 && opt->opt_level != 3) return 0;
  if (threads >= 2) return 1;
  cpu_set_t set; /* the CPUs this process may run on (taskset, cgroups), not the machine's */
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set) >= 2;
  return sysconf(_SC_NPROCESSORS_ONLN) >= 2;
}

/* ---------------------------------------------------------------------------------------- API */

snc_jit *snc_jit_new(LLVMModuleRef module, const snc_jit_options *opt, snc_error *err) {
  snc_jit_options defaults = snc_jit_default_options();
  if (!opt) opt = &defaults;
  snc_jit *j = NULL;
  LLVMTargetMachineRef tm = NULL;
  LLVMMemoryBufferRef objs[2] = {NULL, NULL};
  int nobj = 1, running = 0, defs_done = 0;
  split_part part = {0};
  pthread_t thread;
  allowed_set *allowed = NULL;
  if (!module) {
    snc_errorf(err, "jit: no module");
    return NULL;
  }
  j = calloc(1, sizeof *j);
  allowed = malloc(sizeof *allowed);
  if (!j || !allowed) {
    snc_errorf(err, "jit: out of memory");
    goto fail;
  }
  size_t len = 0;
  const char *mname = LLVMGetModuleIdentifier(module, &len);
  snprintf(j->module_name, sizeof j->module_name, "%.*s", (int)len, mname ? mname : "");
  if (opt->opt_level < 0 || opt->opt_level > 3) {
    snc_errorf(err, "jit: optimisation level %d is not 0..3", opt->opt_level);
    goto fail;
  }
  if (opt->dump_llvm) snc_cg_dump_ir(module, "before optimisation", opt->dump_llvm);
  if (build_allowed(allowed, opt, err) != 0) goto fail;
  if (check_externals(module, j->module_name, allowed, err) != 0) goto fail;

  tm = snc_cg_target_host(err);
  if (!tm) goto fail;
  snc_jit_cache_key key;
  int keyed = 0, bad_entry = 0;
  if (opt->cache_dir && opt->cache_dir[0] && !opt->dump_llvm && !opt->dump_asm) {
    int hit = from_cache(j, module, tm, opt, allowed, &key, &keyed, &bad_entry, err);
    if (hit < 0) goto fail;
    if (hit) {
      LLVMDisposeModule(module);
      LLVMDisposeTargetMachine(tm);
      j->timing.total = j->timing.cache + j->timing.link;
      free(allowed);
      return j;
    }
  }
  double t0 = now();
  snc_error e2 = {{0}};
  if (want_split(opt) && snc_cg_verify(module, &e2) == 0) {
    if (collect_defs(j, module, err) != 0) goto fail; /* the exported names before any change */
    defs_done = 1;
  }
  if (defs_done && split_choose(module, opt->compile_threads >= 2 ? 0 : SPLIT_MIN_INSTRUCTIONS, &part) == 0) {
    /* the second half's kernels are defined in the copy; this module keeps declarations of them */
    part.opt_level = opt->opt_level;
    if (!(part.tm = snc_cg_target_host(err))) goto fail;
    if (!(part.bitcode = LLVMWriteBitcodeToMemoryBuffer(module))) {
      snc_errorf(err, "jit: cannot write the module's bitcode");
      goto fail;
    }
    for (size_t i = 0; i < part.nkeep; i++) {
      LLVMValueRef f = LLVMGetNamedFunction(module, part.keep[i]);
      to_declaration(module, f);
      LLVMSetVisibility(LLVMGetNamedFunction(module, part.keep[i]), LLVMHiddenVisibility);
    }
    if (pthread_create(&thread, NULL, split_thread, &part) != 0) {
      snc_errorf(err, "jit: cannot start a compile thread");
      goto fail;
    }
    running = 1;
    nobj = 2;
  }
  e2.msg[0] = 0;
  if (snc_cg_optimize(module, tm, opt->opt_level, &e2) != 0) {
    snc_errorf(err, "jit: %s", e2.msg);
    goto fail;
  }
  j->timing.optimize = now() - t0;
  if (opt->dump_llvm) snc_cg_dump_ir(module, "after optimisation", opt->dump_llvm);
  if (opt->dump_asm && snc_cg_dump_asm(module, tm, opt->dump_asm, &e2) != 0) {
    snc_errorf(err, "jit: %s", e2.msg);
    goto fail;
  }
  if (!defs_done && collect_defs(j, module, err) != 0) goto fail;

  t0 = now();
  if (snc_cg_write_buffer(module, tm, SNC_CG_FILE_OBJECT, SNC_CG_WRITE_IN_PLACE, &objs[0], &e2) != 0) {
    snc_errorf(err, "jit: %s", e2.msg);
    goto fail;
  }
  if (nobj == 2) { /* the other half */
    pthread_join(thread, NULL);
    running = 0;
    if (part.rc != 0) {
      snc_errorf(err, "jit: %s", part.err.msg);
      goto fail;
    }
    objs[1] = part.obj;
    part.obj = NULL;
  }
  j->timing.codegen = now() - t0;
  LLVMDisposeModule(module); /* lowered by codegen; everything needed is in the objects */
  module = NULL;
  LLVMDisposeTargetMachine(tm);
  tm = NULL;

  unsigned char *entry = NULL; /* the cache entry, written once the objects linked */
  size_t entry_len = 0;
  if (keyed && snc_jit_cache_pack(&key, objs, nobj, &entry, &entry_len) != 0) entry = NULL;
  t0 = now();
  int linked = link_objects(j, allowed, objs, nobj, err);
  objs[0] = objs[1] = NULL; /* link_objects took them */
  if (linked != 0) {
    free(entry);
    goto fail;
  }
  j->timing.link = now() - t0;
  if (keyed) {
    t0 = now();
    snc_error e3 = {{0}};
    int stored = entry && snc_jit_cache_store(opt->cache_dir, &key, entry, entry_len, &e3) == 0;
    j->timing.cache_status = !stored ? SNC_JIT_CACHE_UNWRITABLE : bad_entry ? SNC_JIT_CACHE_REBUILT : SNC_JIT_CACHE_STORED;
    j->timing.cache += now() - t0;
    free(entry);
  }
  j->timing.total = j->timing.optimize + j->timing.codegen + j->timing.link + j->timing.cache;
  j->timing.threads = nobj;
  split_free(&part);
  free(allowed);
  return j;

fail:
  if (running) pthread_join(thread, NULL);
  split_free(&part);
  for (int k = 0; k < 2; k++)
    if (objs[k]) LLVMDisposeMemoryBuffer(objs[k]);
  if (tm) LLVMDisposeTargetMachine(tm);
  if (module) LLVMDisposeModule(module); /* ownership was taken, success or not */
  free(allowed);
  snc_jit_free(j);
  return NULL;
}

void *snc_jit_lookup(snc_jit *j, const char *name, snc_error *err) {
  if (!j || !name) {
    snc_errorf(err, "jit: lookup without a JIT or a name");
    return NULL;
  }
  for (size_t i = 0; i < j->n_defs; i++)
    if (strcmp(j->defs[i].name, name) == 0) return j->defs[i].addr;
  snc_errorf(err, "jit: module '%s' defines no external symbol '%s'", j->module_name, name);
  return NULL;
}

const snc_jit_timing *snc_jit_timing_of(const snc_jit *j) { return &j->timing; }

void snc_jit_free(snc_jit *j) {
  if (!j) return;
  if (j->lljit) {
    LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->lljit);
    if (e) { /* nobody to return it to: say it once on stderr */
      char *msg = LLVMGetErrorMessage(e);
      fprintf(stderr, "snc: jit: disposing module '%s': %s\n", j->module_name, msg);
      LLVMDisposeErrorMessage(msg);
    }
  }
  for (size_t i = 0; i < j->n_defs; i++) free(j->defs[i].name);
  free(j->defs);
  free(j);
}
