/* Modules that carry their model: `snc compile --emit=bc` writes a module with the named metadata
 * "snc.model", and `snrun` runs it without the model file and without rebuilding any code.
 *
 * The metadata is a list of {key, value} string pairs:
 *   format            "snc-module-1"
 *   model, model_file the model's name and the file it was compiled from (for messages)
 *   yaml, sets        the model text exactly as compiled and the --set overrides ("k=v" per line)
 *   autodiff          "1" when the graph was differentiated (training entry present)
 *   fingerprint       snc_cg_graph_fingerprint of the compiled graph (hex)
 *   prefix            the symbol prefix of the entry points
 *   arena, persistent the arena size and the size of its persistent region (bytes)
 *   offsets           "name offset" per line: every PARAM and CONST node and the loss
 *   inputs, outputs   node names in snc_step_args order (one per line)
 *   opt_level         the level the module was optimised at before it was written
 * Loading rebuilds the graph from the text (front end and autodiff: milliseconds, no LLVM), checks
 * the fingerprint, and binds the runtime to the recorded offsets; the kernels, the memory plan and
 * the IR come from the file. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/BitReader.h>
#include <llvm-c/TargetMachine.h>

#include "codegen/cg_export.h"
#include "snc/autodiff.h"
#include "snc/frontend.h"

#define META "snc.model"
#define FORMAT "snc-module-1"
/* The limits of a module file (docs/robustness.md, "Limits"): checked before LLVM reads it. Its
 * model text goes through the model file's own limits (compiler/frontend/limits.h). */
#define SNC_BC_MAX_BYTES (INT64_C(1) << 30) /* the file; siamese with embedded weights is 0.5 MB */
#define SNC_BC_MAX_META 32                  /* snc.model {key, value} pairs */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ull;
  return h;
}

uint64_t snc_cg_graph_fingerprint(const snc_graph *g) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *n = g->nodes[i];
    int64_t v[4 + SNC_MAX_DIMS] = {n->op, n->dtype, (int64_t)n->flags, n->shape.rank};
    for (int d = 0; d < n->shape.rank; d++) v[4 + d] = n->shape.dim[d];
    h = fnv(h, n->name, strlen(n->name) + 1);
    h = fnv(h, v, sizeof v);
    for (int k = 0; k < n->ninputs; k++) h = fnv(h, &n->inputs[k], sizeof n->inputs[k]);
  }
  return h;
}

/* ---- writing ----------------------------------------------------------------------------------- */

typedef struct sbuf {
  char *s;
  size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (b->n + (size_t)k + 1 > b->cap) {
    b->cap = (b->n + (size_t)k + 1) * 2;
    b->s = realloc(b->s, b->cap);
    SNC_ASSERT(b->s);
  }
  va_start(ap, fmt);
  vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)k;
}

static void add_pair(LLVMModuleRef m, LLVMContextRef ctx, const char *key, const char *val, size_t len) {
  LLVMMetadataRef kv[2] = {LLVMMDStringInContext2(ctx, key, strlen(key)), LLVMMDStringInContext2(ctx, val, len)};
  LLVMAddNamedMetadataOperand(m, META, LLVMMetadataAsValue(ctx, LLVMMDNodeInContext2(ctx, kv, 2)));
}

static void add_str(LLVMModuleRef m, LLVMContextRef ctx, const char *key, const char *val) {
  add_pair(m, ctx, key, val, strlen(val));
}

int snc_program_attach_source(snc_program *p, const snc_program_source *src, snc_error *err) {
  const snc_graph *g = p->g;
  LLVMModuleRef m = p->module;
  LLVMContextRef ctx = p->context;
  if (!m) return snc_errorf(err, "%s: the program's module was already taken", g->file);
  char num[64];
  sbuf b = {0};
  add_str(m, ctx, "format", FORMAT);
  add_str(m, ctx, "model", g->name);
  add_str(m, ctx, "model_file", g->file);
  add_pair(m, ctx, "yaml", src->yaml, src->yaml_len);
  sb_add(&b, "%s", "");
  for (int i = 0; i < src->nsets; i++) sb_add(&b, "%s\n", src->sets[i]);
  add_str(m, ctx, "sets", b.s);
  add_str(m, ctx, "autodiff", src->autodiff ? "1" : "0");
  snprintf(num, sizeof num, "%016llx", (unsigned long long)snc_cg_graph_fingerprint(g));
  add_str(m, ctx, "fingerprint", num);
  add_str(m, ctx, "prefix", p->prefix);
  snprintf(num, sizeof num, "%lld", (long long)p->layout.arena_bytes);
  add_str(m, ctx, "arena", num);
  snprintf(num, sizeof num, "%lld", (long long)p->layout.persistent_bytes);
  add_str(m, ctx, "persistent", num);
  b.n = 0;
  sb_add(&b, "%s", "");
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *n = g->nodes[i];
    if (n->op == SNC_OP_PARAM || n->op == SNC_OP_CONST || i == g->loss)
      sb_add(&b, "%s %lld\n", n->name, (long long)p->layout.offset[i]);
  }
  add_str(m, ctx, "offsets", b.s);
  b.n = 0;
  sb_add(&b, "%s", "");
  for (int k = 0; k < p->ninputs; k++) sb_add(&b, "%s\n", g->nodes[p->inputs[k]]->name);
  add_str(m, ctx, "inputs", b.s);
  b.n = 0;
  sb_add(&b, "%s", "");
  for (int k = 0; k < p->noutputs; k++) sb_add(&b, "%s\n", g->nodes[p->outputs[k]]->name);
  add_str(m, ctx, "outputs", b.s);
  snprintf(num, sizeof num, "%d", src->opt_level);
  add_str(m, ctx, "opt_level", num);
  add_str(m, ctx, "embedded", p->embedded ? "1" : "0");
  free(b.s);
  return 0;
}

/* ---- reading ----------------------------------------------------------------------------------- */

typedef struct meta {
  int n;
  const char *key[32], *val[32];
  size_t len[32];
} meta;

static const char *meta_get(const meta *md, const char *key, size_t *len) {
  for (int i = 0; i < md->n; i++)
    if (!strcmp(md->key[i], key)) {
      if (len) *len = md->len[i];
      return md->val[i];
    }
  return NULL;
}

static int read_meta(LLVMModuleRef m, const char *path, meta *md, snc_error *err) {
  unsigned n = LLVMGetNamedMetadataNumOperands(m, META);
  md->n = 0;
  if (n == 0 || n > SNC_BC_MAX_META)
    return snc_errorf(err, "%s: an LLVM module without snc's model metadata (not written by `snc compile --emit=bc`?)",
                      path);
  LLVMValueRef ops[32];
  LLVMGetNamedMetadataOperands(m, META, ops);
  for (unsigned i = 0; i < n; i++) {
    LLVMValueRef kv[2];
    unsigned kl = 0;
    if (LLVMGetMDNodeNumOperands(ops[i]) != 2) return snc_errorf(err, "%s: malformed snc.model metadata", path);
    LLVMGetMDNodeOperands(ops[i], kv);
    const char *k = kv[0] ? LLVMGetMDString(kv[0], &kl) : NULL;
    unsigned vl = 0;
    const char *v = kv[1] ? LLVMGetMDString(kv[1], &vl) : NULL;
    if (!k || !v) return snc_errorf(err, "%s: malformed snc.model metadata", path);
    md->key[md->n] = k;
    md->val[md->n] = v;
    md->len[md->n++] = vl;
  }
  /* MDStrings are not NUL-terminated: callers use copies (see dup) */
  return 0;
}

static char *dup(const meta *md, const char *key) {
  size_t len = 0;
  const char *v = meta_get(md, key, &len);
  if (!v) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  memcpy(s, v, len);
  s[len] = 0;
  return s;
}

static void diag_handler(LLVMDiagnosticInfoRef di, void *user) {
  char *msg = LLVMGetDiagInfoDescription(di);
  snc_error *e = user;
  if (LLVMGetDiagInfoSeverity(di) == LLVMDSError && !e->msg[0]) snprintf(e->msg, sizeof e->msg, "%s", msg);
  LLVMDisposeMessage(msg);
}

/* the architecture part of a triple ("x86_64" of "x86_64-pc-linux-gnu") */
static size_t arch_len(const char *t) {
  const char *d = strchr(t, '-');
  return d ? (size_t)(d - t) : strlen(t);
}

snc_program *snc_program_load_bitcode(const char *path, snc_graph **g_out, snc_error *err) {
  snc_program *p = NULL;
  snc_graph *g = NULL;
  LLVMContextRef ctx = NULL;
  LLVMModuleRef m = NULL;
  LLVMMemoryBufferRef buf = NULL;
  char *msg = NULL, *yaml = NULL, *sets = NULL, *tmp = NULL, *file = NULL;
  snc_override ov[64];
  int nov = 0;
  meta md;
  *g_out = NULL;
  FILE *f = fopen(path, "rb");
  unsigned char magic[4] = {0};
  if (!f) return snc_errorf(err, "%s: cannot open: %s", path, strerror(errno)), NULL;
  size_t got = fread(magic, 1, 4, f);
  int64_t size = fseek(f, 0, SEEK_END) == 0 ? (int64_t)ftell(f) : -1;
  fclose(f);
  if (got != 4 || magic[0] != 'B' || magic[1] != 'C' || magic[2] != 0xC0 || magic[3] != 0xDE)
    return snc_errorf(err, "%s: not an LLVM bitcode module (bad magic; `snc compile MODEL.yaml --emit=bc -o %s` writes one)",
                      path, path),
           NULL;
  if (size < 0 || size > SNC_BC_MAX_BYTES)
    return snc_errorf(err, "%s: not a module snc reads (%lld bytes; the limit is %lld)", path, (long long)size,
                      (long long)SNC_BC_MAX_BYTES),
           NULL;
  if (size % 4 || size < 8) /* bitcode is a stream of 32-bit words, a module more than its magic */
    return snc_errorf(err, "%s: not an LLVM bitcode module (truncated: %lld bytes%s)", path, (long long)size,
                      size % 4 ? ", not a whole number of 32-bit words" : ""),
           NULL;
  if (LLVMCreateMemoryBufferWithContentsOfFile(path, &buf, &msg)) {
    snc_errorf(err, "%s: cannot read: %s", path, msg ? msg : "?");
    goto fail;
  }
  ctx = LLVMContextCreate();
  snc_error diag = {0};
  LLVMContextSetDiagnosticHandler(ctx, diag_handler, &diag);
  if (LLVMParseBitcodeInContext2(ctx, buf, &m)) {
    snc_errorf(err, "%s: not an LLVM bitcode module (truncated or damaged: %s)", path,
               diag.msg[0] ? diag.msg : "no reason given");
    m = NULL;
    goto fail;
  }
  if (read_meta(m, path, &md, err)) goto fail;
  char *fmt = dup(&md, "format");
  int fmt_ok = fmt && !strcmp(fmt, FORMAT);
  if (!fmt_ok)
    snc_errorf(err, "%s: not a module of this snc version (format '%.64s'; this snc reads '%s': recompile with snc compile "
               "--emit=bc)", path, fmt ? fmt : "none", FORMAT);
  free(fmt);
  if (!fmt_ok) goto fail;
  { /* the target: the module must be for this machine's architecture */
    const char *t = LLVMGetTarget(m);
    char *host = LLVMGetDefaultTargetTriple();
    int ok = t && t[0] && arch_len(t) == arch_len(host) && !strncmp(t, host, arch_len(t));
    if (!ok) snc_errorf(err, "%s: compiled for %s; this machine is %s (recompile with snc compile --emit=bc)", path,
                        t && t[0] ? t : "no target", host);
    LLVMDisposeMessage(host);
    if (!ok) goto fail;
  }
  yaml = dup(&md, "yaml");
  sets = dup(&md, "sets");
  file = dup(&md, "model_file");
  char *ad = dup(&md, "autodiff"), *fp = dup(&md, "fingerprint"), *pre = dup(&md, "prefix");
  char *arena = dup(&md, "arena"), *pers = dup(&md, "persistent"), *offs = dup(&md, "offsets");
  char *ins = dup(&md, "inputs"), *outs = dup(&md, "outputs"), *ol = dup(&md, "opt_level"), *emb = dup(&md, "embedded");
  int bad = !yaml || !sets || !file || !ad || !fp || !pre || !arena || !pers || !offs || !ins || !outs || !ol;
  if (bad) {
    snc_errorf(err, "%s: snc.model metadata is incomplete", path);
    goto fail_meta;
  }
  for (char *t = strtok_r(sets, "\n", &tmp); t && nov < 64; t = strtok_r(NULL, "\n", &tmp))
    if (snc_override_parse(t, &ov[nov], err) == 0) nov++;
  /* messages name the original model file, as when it was compiled */
  if (!(g = snc_model_load_text(yaml, strlen(yaml), file, ov, nov, err))) goto fail_meta;
  if (!strcmp(ad, "1") && snc_autodiff(g, 0, err) != 0) goto fail_meta;
  {
    char now[32];
    snprintf(now, sizeof now, "%016llx", (unsigned long long)snc_cg_graph_fingerprint(g));
    if (strcmp(now, fp)) {
      snc_errorf(err, "%s: the model rebuilt from the module's text differs from the compiled one (another snc "
                      "version?); recompile it with snc compile --emit=bc", path);
      goto fail_meta;
    }
  }
  if (!(p = calloc(1, sizeof *p))) goto oom;
  p->g = g;
  snprintf(p->prefix, sizeof p->prefix, "%s", pre);
  p->layout.arena_bytes = strtoll(arena, NULL, 10);
  p->layout.persistent_bytes = strtoll(pers, NULL, 10);
  /* the runtime allocates the arena the module claims: refused past the memory limit, before that */
  if (p->layout.arena_bytes <= 0 || p->layout.arena_bytes > snc_mem_limit() || p->layout.persistent_bytes < 0 ||
      p->layout.persistent_bytes > p->layout.arena_bytes) {
    snc_errorf(err, "%s: damaged snc.model metadata: arena of %lld bytes (persistent %lld; memory limit %lld)", path,
               (long long)p->layout.arena_bytes, (long long)p->layout.persistent_bytes, (long long)snc_mem_limit());
    goto fail_meta;
  }
  p->layout.offset = malloc((size_t)g->nnodes * sizeof(int64_t));
  p->layout.bytes = calloc((size_t)g->nnodes, sizeof(int64_t));
  p->layout.live_end = calloc((size_t)g->nnodes, sizeof(int));
  p->inputs = calloc((size_t)g->nnodes + 1, sizeof(int));
  p->outputs = calloc((size_t)g->nnodes + 1, sizeof(int));
  if (!p->layout.offset || !p->layout.bytes || !p->layout.live_end || !p->inputs || !p->outputs) goto oom;
  for (int i = 0; i < g->nnodes; i++) p->layout.offset[i] = -1;
  for (char *t = strtok_r(offs, "\n", &tmp); t; t = strtok_r(NULL, "\n", &tmp)) {
    char *sp = strrchr(t, ' ');
    int id = -1;
    if (sp) *sp = 0, id = snc_graph_find(g, t);
    if (id < 0) {
      snc_errorf(err, "%s: metadata names node '%s', which the rebuilt graph lacks", path, t);
      goto fail_meta;
    }
    p->layout.offset[id] = strtoll(sp + 1, NULL, 10);
    if (p->layout.offset[id] < 0 || p->layout.offset[id] > p->layout.arena_bytes) {
      snc_errorf(err, "%s: damaged snc.model metadata: node '%s' at offset %s, outside the arena", path, t, sp + 1);
      goto fail_meta;
    }
  }
  char *lists[2] = {ins, outs};
  int *ids[2] = {p->inputs, p->outputs}, *cnt[2] = {&p->ninputs, &p->noutputs};
  for (int w = 0; w < 2; w++)
    for (char *t = strtok_r(lists[w], "\n", &tmp); t; t = strtok_r(NULL, "\n", &tmp)) {
      int id = snc_graph_find(g, t);
      if (id < 0) {
        snc_errorf(err, "%s: metadata names node '%s', which the rebuilt graph lacks", path, t);
        goto fail_meta;
      }
      if (*cnt[w] == g->nnodes) { /* the arrays hold one entry per node */
        snc_errorf(err, "%s: damaged snc.model metadata: more %s than the graph has nodes", path, w ? "outputs" : "inputs");
        goto fail_meta;
      }
      ids[w][(*cnt[w])++] = id;
    }
  p->opt_level = atoi(ol);
  p->embedded = emb && !strcmp(emb, "1");
  p->context = ctx;
  p->module = m;
  free(ad), free(fp), free(pre), free(arena), free(pers), free(offs), free(ins), free(outs), free(ol), free(emb);
  free(yaml), free(sets), free(file);
  /* the buffer is still referenced by nothing: LLVMParseBitcodeInContext2 does not take it */
  LLVMDisposeMemoryBuffer(buf);
  *g_out = g; /* the caller owns the graph; p->g points to it */
  return p;
oom:
  snc_errorf(err, "%s: out of memory", path);
fail_meta:
  free(ad), free(fp), free(pre), free(arena), free(pers), free(offs), free(ins), free(outs), free(ol), free(emb);
fail:
  if (p) {
    p->module = NULL;
    p->context = NULL;
    snc_program_free(p);
  }
  snc_graph_free(g);
  free(yaml), free(sets), free(file);
  if (msg) LLVMDisposeMessage(msg);
  if (m) LLVMDisposeModule(m);
  if (buf) LLVMDisposeMemoryBuffer(buf);
  if (ctx) LLVMContextDispose(ctx);
  return NULL;
}
