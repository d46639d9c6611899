/* Name -> id hash with linear probing (see strmap.h). */
#include "ir/strmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned hash(const char *s) {
  unsigned h = 2166136261u; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* The slot holding `name`, or the empty slot where it would go. */
static unsigned find(const snc_strmap *m, const char *name, snc_strmap_name_fn name_of, const void *ctx) {
  unsigned i = hash(name) & (m->cap - 1);
  for (;; i = (i + 1) & (m->cap - 1)) {
    if (!m->slot[i]) return i;
    const char *s = name_of(ctx, m->slot[i] - 1);
    if (s && !strcmp(s, name)) return i;
  }
}

static void grow(snc_strmap *m, snc_strmap_name_fn name_of, const void *ctx) {
  snc_strmap old = *m;
  m->cap = old.cap ? 2 * old.cap : 64;
  m->slot = calloc(m->cap, sizeof *m->slot);
  if (!m->slot) {
    fprintf(stderr, "snc: out of memory\n");
    exit(3);
  }
  m->used = 0;
  for (unsigned i = 0; i < old.cap; i++) {
    if (!old.slot[i]) continue;
    const char *s = name_of(ctx, old.slot[i] - 1);
    if (!s) continue; /* stale: dropped */
    unsigned j = find(m, s, name_of, ctx);
    if (!m->slot[j]) m->used++;
    m->slot[j] = old.slot[i];
  }
  free(old.slot);
}

void snc_strmap_put(snc_strmap *m, const char *name, int id, snc_strmap_name_fn name_of, const void *ctx) {
  if (2 * (m->used + 1) > m->cap) grow(m, name_of, ctx);
  unsigned i = find(m, name, name_of, ctx);
  if (!m->slot[i]) m->used++;
  m->slot[i] = id + 1;
}

int snc_strmap_get(const snc_strmap *m, const char *name, snc_strmap_name_fn name_of, const void *ctx) {
  if (!m->cap) return -1;
  unsigned i = find(m, name, name_of, ctx);
  return m->slot[i] ? m->slot[i] - 1 : -1;
}

void snc_strmap_free(snc_strmap *m) {
  free(m->slot);
  m->slot = NULL;
  m->cap = m->used = 0;
}
