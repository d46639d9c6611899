/* Kernel schedules: their text form, and the choice among a kernel's valid candidates through the
 * chooser in snc_cg_options (a tuning cache, an override, or a tuner trying each in turn). The
 * emitters (emit_conv.c, emit_dw.c) list the candidates of a shape, the default first. */
#include <stdio.h>
#include <string.h>

#include "codegen/cg.h"

static const char *const kinds[] = {"none", "tile", "gather", "dw", "wino", "wdw"};

int snc_cg_schedule_format(const snc_cg_schedule *s, char *buf, size_t n) {
  int k = s->kind >= 0 && s->kind <= SNC_SCHED_WDW ? s->kind : 0;
  return snprintf(buf, n, "%s r%d p%d v%d o%d u%d", kinds[k], s->r, s->p, s->v, s->order, s->u);
}

int snc_cg_schedule_parse(const char *text, snc_cg_schedule *s) {
  char kind[16];
  int r, p, v, o, u, used = 0;
  if (!text || sscanf(text, " %15s r%d p%d v%d o%d u%d%n", kind, &r, &p, &v, &o, &u, &used) != 6) return -1;
  if (text[used] && !strchr(" \t\n]", text[used])) return -1; /* ']': the form in kernel names */
  for (int k = 1; k <= SNC_SCHED_WDW; k++)
    if (!strcmp(kind, kinds[k])) {
      if (r < 1 || p < 1 || v < 1 || u < 1 || r > 64 || p > 64 || v > 64 || u > 64 || (o != 0 && o != 1)) return -1;
      *s = (snc_cg_schedule){.kind = k, .r = r, .p = p, .v = v, .order = o, .u = u};
      return 0;
    }
  return -1;
}

int snc_cg_schedule_equal(const snc_cg_schedule *a, const snc_cg_schedule *b) {
  return a->kind == b->kind && a->r == b->r && a->p == b->p && a->v == b->v && a->order == b->order && a->u == b->u;
}

int cg_sched_add(snc_cg_schedule *c, int n, int max, snc_cg_schedule s) {
  for (int i = 0; i < n; i++)
    if (snc_cg_schedule_equal(&c[i], &s)) return n;
  if (n < max) c[n++] = s;
  return n;
}

snc_cg_schedule cg_sched_choose(snc_cg *cg, const char *shape, const snc_cg_schedule *cands, int n) {
  SNC_ASSERT(n >= 1);
  int i = cg->sched_fn ? cg->sched_fn(cg->sched_user, cg->kname, shape, cands, n) : 0;
  if (i < 0 || i >= n) i = 0;
  cg->sched = cands[i];
  snprintf(cg->sched_shape, sizeof cg->sched_shape, "%s", shape);
  return cands[i];
}

void cg_sched_shape(snc_cg *cg, const snc_node *head, const char *dims, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "%s", snc_op_name(head->op));
  for (int e = 0; e < cg->nepi && k < n; e++) k += (size_t)snprintf(buf + k, n - k, "+%s", snc_op_name(cg->g->nodes[cg->epi[e]]->op));
  if (k < n) snprintf(buf + k, n - k, " %s b%d", dims, cg->lay->bp);
}
