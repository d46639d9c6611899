/* Building the layer graph: nodes, parameters, inputs, lookups; see include/snc/ir.h. */
#include "ops/op.h"
#include "ir/strmap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

snc_graph *snc_graph_new(const char *name, const char *file) {
  snc_graph *g = calloc(1, sizeof *g);
  if (!g) {
    fprintf(stderr, "snc: out of memory\n");
    exit(3);
  }
  g->name = snc_arena_strdup(&g->arena, name ? name : "model");
  g->file = snc_arena_strdup(&g->arena, file ? file : "<memory>");
  g->batch = 1;
  g->loss = -1;
  return g;
}

void snc_graph_free(snc_graph *g) {
  if (!g) return;
  free(g->nodes); /* the node array and the name index are the only blocks outside the arena */
  if (g->names) snc_strmap_free(g->names);
  free(g->names);
  snc_arena_free(&g->arena);
  free(g);
}

/* A node's name for the name index; NULL for an id dropped after an error (never matches). */
static const char *node_name(const void *ctx, int id) {
  const snc_graph *g = ctx;
  return id < g->nnodes ? g->nodes[id]->name : NULL;
}

static snc_node *new_node(snc_graph *g, snc_opcode op, const char *name, snc_loc loc) {
  if (g->nnodes == g->cap) {
    int cap = g->cap ? 2 * g->cap : 64;
    snc_node **nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
    if (!nodes) {
      fprintf(stderr, "snc: out of memory\n");
      exit(3);
    }
    g->nodes = nodes;
    g->cap = cap;
  }
  snc_node *n = snc_arena_alloc(&g->arena, sizeof *n);
  n->id = g->nnodes;
  n->op = op;
  n->name = snc_arena_strdup(&g->arena, name);
  n->loc = loc;
  n->weight = 1.0f;
  n->grad = -1;
  g->nodes[g->nnodes++] = n;
  if (!g->names && !(g->names = calloc(1, sizeof *g->names))) {
    fprintf(stderr, "snc: out of memory\n");
    exit(3);
  }
  snc_strmap_put(g->names, n->name, n->id, node_name, g);
  return n;
}

int snc_graph_find(const snc_graph *g, const char *name) {
  return g->names ? snc_strmap_get(g->names, name, node_name, g) : -1;
}

static int check_new_name(snc_graph *g, const char *name, snc_loc loc, snc_error *err) {
  int other = snc_graph_find(g, name);
  if (other < 0) return 0;
  const snc_node *o = g->nodes[other];
  return snc_errorf(err, "%s:%d:%d: name '%s' is already used (by the %s at line %d)", loc.file, loc.line, loc.col,
                    name, snc_op_name(o->op), o->loc.line);
}

/* Tensors past this many elements are refused: indices stay in 32 bits and memory sane. */
#define SNC_MAX_NUMEL (INT64_C(1) << 31)

int64_t snc_mem_limit(void) {
  const char *env = getenv("SNC_MEM_LIMIT");
  if (env && *env) {
    char *end;
    errno = 0;
    double v = strtod(env, &end);
    int shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20 : *end == 'G' || *end == 'g' ? 30
              : *end == 'T' || *end == 't' ? 40 : 0;
    if (shift) end++;
    if (!errno && !*end && v > 0 && v < 0x1p62 / (double)(INT64_C(1) << shift))
      return (int64_t)(v * (double)(INT64_C(1) << shift));
  }
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return INT64_MAX; /* unknown: no limit beyond the per-tensor one */
  return (int64_t)pages * page;
}

static void fmt_bytes(char *buf, size_t len, int64_t b) {
  const char *unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)b;
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, u++;
  snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

static int check_size(snc_graph *g, snc_node *n, snc_error *err) {
  int64_t numel = 1;
  for (int i = 0; i < n->shape.rank; i++) {
    if (n->shape.dim[i] < 0 || (n->shape.dim[i] && numel > SNC_MAX_NUMEL / n->shape.dim[i]))
    {
      char s[96];
      return snc_node_errorf(g, n, err, "shape %s has more than 2^31 elements; too large",
                             snc_shape_str(&n->shape, 0, s, sizeof s));
    }
    numel *= n->shape.dim[i];
  }
  if (g->nforward) return 0; /* only the front end's forward graph is counted */
  /* Every tensor of the forward pass needs its own memory at least once: a model whose forward
   * tensors alone exceed the limit is refused here, before any backend allocates. (No overflow:
   * each tensor is below 2^33 bytes and the sum stays below the limit, itself below 2^63.) */
  int64_t limit = snc_mem_limit(), total = g->forward_bytes + numel * 4; /* float32 and int32 */
  if (total > limit) {
    char need[32], have[32];
    fmt_bytes(need, sizeof need, total);
    fmt_bytes(have, sizeof have, limit);
    const char *env = getenv("SNC_MEM_LIMIT");
    return snc_node_errorf(g, n, err, "the model's tensors need %s up to here (batch %d), more than %s %s", need,
                           g->batch, env && *env ? "the memory limit SNC_MEM_LIMIT of" : "this machine's physical memory of",
                           have);
  }
  g->forward_bytes = total;
  return 0;
}

int snc_graph_add(snc_graph *g, snc_opcode op, const char *name, const int *inputs, int ninputs,
                  const snc_attrs *attr, snc_loc loc, snc_error *err) {
  const snc_op_info *info = snc_op(op);
  SNC_ASSERT(ninputs >= info->min_inputs && (info->max_inputs < 0 || ninputs <= info->max_inputs));
  if (check_new_name(g, name, loc, err)) return -1;
  snc_node *n = new_node(g, op, name, loc);
  n->ninputs = ninputs;
  n->inputs = snc_arena_alloc(&g->arena, (size_t)(ninputs ? ninputs : 1) * sizeof(int));
  for (int i = 0; i < ninputs; i++) {
    SNC_ASSERT(inputs[i] >= 0 && inputs[i] < n->id);
    n->inputs[i] = inputs[i];
  }
  if (attr) n->attr = *attr;
  if (info->infer(g, n, err) || check_size(g, n, err)) {
    g->nnodes--; /* drop the half-built node; its arena bytes go with the graph */
    return -1;
  }
  return n->id;
}

int snc_graph_input(snc_graph *g, const char *name, snc_dtype dt, const snc_shape *sample_shape, snc_loc loc,
                    snc_error *err) {
  if (check_new_name(g, name, loc, err)) return -1;
  if (sample_shape->rank + 1 > SNC_MAX_DIMS)
    return snc_errorf(err, "%s:%d:%d: input '%s' has rank %d; at most %d dimensions per sample", loc.file, loc.line,
                      loc.col, name, sample_shape->rank, SNC_MAX_DIMS - 1);
  snc_node *n = new_node(g, SNC_OP_INPUT, name, loc);
  n->dtype = dt;
  n->shape.rank = sample_shape->rank + 1;
  n->shape.dim[0] = g->batch;
  for (int i = 0; i < sample_shape->rank; i++) n->shape.dim[i + 1] = sample_shape->dim[i];
  n->flags = SNC_NF_BATCHED;
  n->source = n->name;
  n->inputs = snc_arena_alloc(&g->arena, sizeof(int));
  if (check_size(g, n, err)) {
    g->nnodes--;
    return -1;
  }
  return n->id;
}

int snc_graph_param(snc_graph *g, const char *name, const snc_shape *shape, snc_init init, unsigned flags,
                    snc_loc loc, snc_error *err) {
  int id = snc_graph_find(g, name);
  char s1[64], s2[64];
  if (id >= 0) {
    snc_node *p = g->nodes[id];
    if (p->op != SNC_OP_PARAM) return check_new_name(g, name, loc, err);
    if (!snc_shape_eq(&p->shape, shape))
      return snc_errorf(err, "%s:%d:%d: shared parameter '%s' would be %s here but was created as %s",
                        loc.file, loc.line, loc.col, name, snc_shape_str(shape, 0, s1, sizeof s1),
                        snc_shape_str(&p->shape, 0, s2, sizeof s2));
    return id;
  }
  snc_node *n = new_node(g, SNC_OP_PARAM, name, loc);
  n->dtype = SNC_F32;
  n->shape = *shape;
  n->flags = flags;
  n->init = init;
  n->inputs = snc_arena_alloc(&g->arena, sizeof(int));
  if (check_size(g, n, err)) {
    g->nnodes--;
    return -1;
  }
  return n->id;
}

int snc_graph_const(snc_graph *g, const char *name, const snc_shape *shape, const float *values, snc_loc loc,
                    snc_error *err) {
  if (check_new_name(g, name, loc, err)) return -1;
  snc_node *n = new_node(g, SNC_OP_CONST, name, loc);
  n->dtype = SNC_F32;
  n->shape = *shape;
  n->inputs = snc_arena_alloc(&g->arena, sizeof(int));
  if (check_size(g, n, err)) {
    g->nnodes--;
    return -1;
  }
  size_t bytes = (size_t)snc_shape_numel(shape) * sizeof(float);
  n->value = snc_arena_alloc(&g->arena, bytes ? bytes : sizeof(float));
  if (bytes) memcpy(n->value, values, bytes);
  return n->id;
}

int snc_node_errorf(const snc_graph *g, const snc_node *n, snc_error *err, const char *fmt, ...) {
  (void)g;
  if (!err) return -1;
  int k = snprintf(err->msg, sizeof err->msg, "%s:%d:%d: %s '%s': ", n->loc.file ? n->loc.file : "?", n->loc.line,
                   n->loc.col, snc_op_name(n->op), n->name);
  if (k < 0 || (size_t)k >= sizeof err->msg) return -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg + k, sizeof err->msg - (size_t)k, fmt, ap);
  va_end(ap);
  return -1;
}

int64_t snc_shape_numel(const snc_shape *s) {
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++) n *= s->dim[i];
  return n;
}

int snc_shape_eq(const snc_shape *a, const snc_shape *b) {
  if (a->rank != b->rank) return 0;
  for (int i = 0; i < a->rank; i++)
    if (a->dim[i] != b->dim[i]) return 0;
  return 1;
}

char *snc_shape_str(const snc_shape *s, int batched, char *buf, size_t len) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, len - k, "[");
  for (int i = 0; i < s->rank && k < len; i++) {
    if (i == 0 && batched) k += (size_t)snprintf(buf + k, len - k, "B");
    else k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? "," : "", (long long)s->dim[i]);
  }
  if (k < len) snprintf(buf + k, len - k, "]");
  return buf;
}

int snc_graph_first_update(const snc_graph *g) {
  for (int i = g->nforward; i < g->nnodes; i++)
    if (g->nodes[i]->op == SNC_OP_ADAM || g->nodes[i]->op == SNC_OP_SGD) return i;
  return g->nnodes;
}
