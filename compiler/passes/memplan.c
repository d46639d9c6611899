/* The memory plan: one arena for parameters, state, constants and every activation and gradient.
 * Persistent buffers come first; the rest are placed by first fit in order of creation, reusing the
 * space of buffers whose last reader has run (liveness over the node order, which is the execution
 * order of the training step). Outputs stay live to the end of the forward graph, so the evaluation
 * entry point, which runs only the forward nodes, can read them at its end; the loss stays live to
 * the end of the step, so the runtime can read the training loss. */
#include <string.h>

#include "snc/codegen.h"

#define ALIGN 64

static int64_t align_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

int snc_layout_batched(const snc_graph *g, int node) { return (g->nodes[node]->flags & SNC_NF_BATCHED) != 0; }

static int persistent(const snc_node *n) { return n->op == SNC_OP_PARAM || n->op == SNC_OP_CONST; }

/* A view shares its input's buffer: a reshape of a batched tensor (the [F][Bp] rows do not move) and
 * a slice along the first feature axis (a contiguous block of rows). Returns the byte offset into
 * the input's buffer, or -1 when the node needs a buffer of its own. */
int64_t snc_layout_view_delta(const snc_graph *g, int node, int bp) {
  const snc_node *n = g->nodes[node];
  if (!(n->flags & SNC_NF_BATCHED) || !n->ninputs || !(g->nodes[n->inputs[0]]->flags & SNC_NF_BATCHED)) return -1;
  if (n->op == SNC_OP_RESHAPE) return 0;
  if (n->op == SNC_OP_SLICE && n->attr.axis == 1) {
    const snc_node *x = g->nodes[n->inputs[0]];
    int64_t inner = 1;
    for (int i = 2; i < x->shape.rank; i++) inner *= x->shape.dim[i];
    return (int64_t)n->attr.start * inner * bp * 4;
  }
  return -1;
}

typedef struct block {
  int64_t off, size;
  int until; /* free after this node index */
} block;

int snc_layout_plan(const snc_graph *g, const int *into, int no_reuse, const int64_t *scratch, snc_layout *lay, snc_error *err) {
  int n = g->nnodes;
  memset(lay, 0, sizeof *lay);
  lay->bp = snc_cg_batch_lanes(g->batch);
  lay->offset = malloc((size_t)n * sizeof *lay->offset);
  lay->bytes = malloc((size_t)n * sizeof *lay->bytes);
  lay->live_end = malloc((size_t)n * sizeof *lay->live_end);
  lay->compact = into ? calloc((size_t)n, 1) : NULL;
  lay->scratch_off = malloc((size_t)n * sizeof *lay->scratch_off);
  lay->scratch_bytes = calloc((size_t)n, sizeof *lay->scratch_bytes);
  block *live = malloc((size_t)(n + 1) * sizeof *live); /* a kernel's scratch besides every buffer */
  int *side = malloc(2 * (size_t)n * sizeof *side); /* per root its first side output, per side output the next */
  if (!lay->offset || !lay->bytes || !lay->live_end || !live || !side || (into && !lay->compact) || !lay->scratch_off ||
      !lay->scratch_bytes) {
    free(live);
    free(side);
    snc_layout_free(lay);
    return snc_errorf(err, "%s: out of memory planning the arena", g->file);
  }
  for (int i = 0; i < n; i++) {
    const snc_node *nd = g->nodes[i];
    int64_t e = snc_shape_numel(&nd->shape);
    if (nd->flags & SNC_NF_BATCHED) e = e / nd->shape.dim[0] * lay->bp;
    if (into && snc_fuse_compact(g, into, i)) { /* per pooled element and lane: a byte */
      const snc_node *pool = g->nodes[-2 - into[i]];
      e = snc_shape_numel(&pool->shape) / pool->shape.dim[0] * lay->bp;
      lay->compact[i] = 1;
      lay->bytes[i] = align_up(e, ALIGN);
    } else
      lay->bytes[i] = align_up((e ? e : 1) * 4, ALIGN);
    if ((!into || into[i] <= i) && snc_layout_view_delta(g, i, lay->bp) < 0) lay->unplanned_bytes += lay->bytes[i];
    lay->live_end[i] = i;
    lay->offset[i] = -1;
    lay->scratch_off[i] = -1;
    if (scratch && scratch[i] > 0) lay->scratch_bytes[i] = align_up(scratch[i], ALIGN);
  }
  for (int i = 0; i < n; i++) { /* a fused node reads its inputs where its chain's kernel runs */
    int at = snc_fuse_root(into, i);
    for (int k = 0; k < g->nodes[i]->ninputs; k++)
      if (lay->live_end[g->nodes[i]->inputs[k]] < at) lay->live_end[g->nodes[i]->inputs[k]] = at;
  }
  for (int o = 0; o < g->noutputs; o++) { /* predictions and their (possibly computed) labels */
    if (lay->live_end[g->outputs[o].node] < g->nforward) lay->live_end[g->outputs[o].node] = g->nforward;
    if (lay->live_end[g->outputs[o].target] < g->nforward) lay->live_end[g->outputs[o].target] = g->nforward;
  }
  if (g->loss >= 0) lay->live_end[g->loss] = n; /* the runtime reads the loss after a training step */
  for (int i = 0; i < n; i++) /* a compact activation's readers read its pooling's output too */
    if (lay->compact && lay->compact[i] && lay->live_end[-2 - into[i]] < lay->live_end[i]) lay->live_end[-2 - into[i]] = lay->live_end[i];
  /* a view keeps the buffer it looks into alive as long as itself (views of views included) */
  for (int i = n - 1; i >= 0; i--)
    if (snc_layout_view_delta(g, i, lay->bp) >= 0) {
      int src = g->nodes[i]->inputs[0];
      if (lay->live_end[src] < lay->live_end[i]) lay->live_end[src] = lay->live_end[i];
    }
  /* inputs are written before any kernel runs: live from the start */
  int64_t top = 0;
  for (int i = 0; i < n; i++)
    if (persistent(g->nodes[i])) {
      lay->offset[i] = top;
      top += lay->bytes[i];
    }
  lay->persistent_bytes = top;
  int *side_first = side, *side_next = side + n;
  for (int i = 0; i < n; i++) side_first[i] = side_next[i] = -1;
  for (int s = n - 1; s >= 0; s--)
    if (snc_fuse_side(into, s)) side_next[s] = side_first[snc_fuse_root(into, s)], side_first[snc_fuse_root(into, s)] = s;
  int nlive = 0;
  int64_t end = top;
  /* inputs first (the step copies them in before any kernel runs: a space another buffer or a
     kernel's scratch used before an input's place in the order would be written over), then the
     rest in order */
  for (int k = 0; k < 2 * n; k++) {
    int i = k % n;
    if ((k < n) != (g->nodes[i]->op == SNC_OP_INPUT)) continue;
    if (persistent(g->nodes[i])) continue;
    if (into && into[i] != i) continue; /* in registers in its chain's kernel, or a side output */
    int64_t delta = snc_layout_view_delta(g, i, lay->bp);
    if (delta >= 0) { /* a view: no space of its own */
      lay->offset[i] = lay->offset[g->nodes[i]->inputs[0]] + delta;
      continue;
    }
    /* release blocks whose last reader ran before this node (inputs: never before 0) */
    int w = 0;
    for (int j = 0; j < nlive; j++)
      if (live[j].until >= i) live[w++] = live[j];
    nlive = w;
    /* the node, then the side outputs its kernel also stores (they are written here, not where
       they stand in the graph's order), then its kernel's scratch (s = -1), free after it */
    for (int s = i; s != -2; s = s == -1 ? -2 : s == i ? side_first[i] : side_next[s]) {
      if (s < 0 && !lay->scratch_bytes[i]) break;
      int64_t size = s < 0 ? lay->scratch_bytes[i] : lay->bytes[s];
      /* first fit in address order among the gaps between live blocks */
      for (int a = 1; a < nlive; a++) /* insertion sort by offset; nlive stays small */
        for (int b = a; b > 0 && live[b - 1].off > live[b].off; b--) {
          block t = live[b];
          live[b] = live[b - 1];
          live[b - 1] = t;
        }
      int64_t at = top;
      for (int j = 0; j < nlive; j++) {
        if (live[j].off - at >= size) break;
        if (live[j].off + live[j].size > at) at = live[j].off + live[j].size;
      }
      if (s < 0) lay->scratch_off[i] = at;
      else lay->offset[s] = at;
      live[nlive++] = (block){at, size, s < 0 ? i : g->nodes[s]->op == SNC_OP_INPUT || no_reuse ? n : lay->live_end[s]};
      if (at + size > end) end = at + size;
    }
  }
  lay->arena_bytes = end;
  free(live);
  free(side);
  return 0;
}

void snc_layout_free(snc_layout *lay) {
  free(lay->offset);
  free(lay->bytes);
  free(lay->live_end);
  free(lay->compact);
  free(lay->scratch_off);
  free(lay->scratch_bytes);
  memset(lay, 0, sizeof *lay);
}
