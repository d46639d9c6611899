/* A kernel's slot table in terms of its chain (cg_slots_record), so that a later node with the same
 * kernel key (the other branch, the evaluation region) gets its table by mapping nodes instead of
 * emitting the same code again and deleting it: half of the siamese step's calls are such twins.
 *
 * The map pairs the two chains position by position (head, root, epilogue, side outputs) and then
 * their inputs in order; the kernel key (cg_module.c, node_key) guarantees that both have the same ops,
 * attributes, shapes and input sharing. A slot holds a node's arena offset, or a data value; only a
 * value of a node (cg_data_of: its dropout stream, its size, ...) maps; a value nobody's makes the
 * kernel one that is emitted again. Whatever does not map the same way in both directions is emitted too. */
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"

void cg_slots_record(const snc_cg *cg, int head, int root, cg_slots *s) {
  memset(s, 0, sizeof *s);
  s->n = cg->nslots;
  s->reusable = 1;
  for (int k = 0; k < cg->nslots; k++) {
    s->node[k] = cg->slot_node[k], s->val[k] = cg->slot_val[k], s->src[k] = cg->slot_src[k], s->kind[k] = cg->slot_kind[k];
    if (s->node[k] < 0 && s->src[k] < 0) s->reusable = 0; /* a value nobody's: emit again */
  }
  s->head = head, s->root = root, s->nepi = cg->nepi, s->nside = cg->nside;
  memcpy(s->epi, cg->epi, sizeof s->epi);
  memcpy(s->side, cg->side, sizeof s->side);
}

typedef struct node_map {
  int from[256], to[256];
  int n;
} node_map;

/* a -> b, consistent with every pair so far in both directions */
static int pair(node_map *m, int a, int b) {
  for (int i = 0; i < m->n; i++) {
    if (m->from[i] == a) return m->to[i] == b;
    if (m->to[i] == b) return 0;
  }
  if (m->n == 256) return 0;
  m->from[m->n] = a, m->to[m->n] = b, m->n++;
  return 1;
}

static int image(const node_map *m, int a) {
  for (int i = 0; i < m->n; i++)
    if (m->from[i] == a) return m->to[i];
  return -1;
}

int cg_slots_map(snc_cg *cg, const cg_slots *s, int head, int root) {
  if (!s->reusable || s->nepi != cg->nepi || s->nside != cg->nside) return 0;
  node_map m = {.n = 0};
  if (!pair(&m, s->head, head) || !pair(&m, s->root, root)) return 0;
  for (int k = 0; k < s->nepi; k++)
    if (!pair(&m, s->epi[k], cg->epi[k])) return 0;
  for (int k = 0; k < s->nside; k++)
    if (!pair(&m, s->side[k], cg->side[k])) return 0;
  for (int p = 0, members = m.n; p < members; p++) {
    const snc_node *a = cg->g->nodes[m.from[p]], *b = cg->g->nodes[m.to[p]];
    if (a->ninputs != b->ninputs) return 0;
    for (int q = 0; q < a->ninputs; q++)
      if (!pair(&m, a->inputs[q], b->inputs[q])) return 0;
  }
  /* a compact activation's readers read its pooling's output too (snc_fuse_compact) */
  for (int p = 0, pairs = m.n; p < pairs; p++)
    if (cg_compact(cg, m.from[p]) && !pair(&m, snc_fuse_root(cg->into, m.from[p]), snc_fuse_root(cg->into, m.to[p])))
      return 0;
  for (int k = 0; k < s->n; k++) {
    int t = image(&m, s->node[k] >= 0 ? s->node[k] : s->src[k]);
    if (t < 0) return 0;
    if (s->node[k] >= 0) {
      if (cg->lay->offset[t] < 0) return 0;
      cg->slot_node[k] = t, cg->slot_val[k] = cg->lay->offset[t], cg->slot_src[k] = -1, cg->slot_kind[k] = 0;
    } else {
      cg->slot_node[k] = s->node[k], cg->slot_val[k] = cg_data_value(cg, t, s->kind[k]);
      cg->slot_src[k] = t, cg->slot_kind[k] = s->kind[k];
    }
  }
  /* equal values share a slot (cg_data_of, not _fresh_of): the mapped ones must be equal exactly where
     the recorded ones were, or the emission would have laid out other slots */
  for (int k = 0; k < s->n; k++)
    for (int q = 0; q < k; q++)
      if (s->node[k] == -1 && s->node[q] == -1 && (cg->slot_val[k] == cg->slot_val[q]) != (s->val[k] == s->val[q])) return 0;
  cg->nslots = s->n;
  return 1;
}
