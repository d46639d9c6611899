/* Bump allocator with a list of blocks; see include/snc/arena.h. */
#include "snc/arena.h"
#include "snc/error.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

struct snc_arena_block {
  snc_arena_block *next;
  size_t cap, used;
  _Alignas(16) unsigned char data[];
};

enum { SNC_ARENA_BLOCK = 64 * 1024 };

void *snc_arena_alloc(snc_arena *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  snc_arena_block *b = a->head;
  if (!b || b->cap - b->used < size) {
    size_t cap = size > SNC_ARENA_BLOCK ? size : SNC_ARENA_BLOCK;
    b = malloc(sizeof *b + cap);
    if (!b) {
      fprintf(stderr, "snc: out of memory (arena block of %zu bytes)\n", cap);
      exit(3);
    }
    b->cap = cap;
    b->used = 0;
    b->next = a->head;
    a->head = b;
  }
  void *p = b->data + b->used;
  b->used += size;
  a->used_total += size;
  memset(p, 0, size);
  return p;
}

char *snc_arena_strdup(snc_arena *a, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = snc_arena_alloc(a, n);
  memcpy(p, s, n);
  return p;
}

char *snc_arena_printf(snc_arena *a, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = snc_arena_alloc(a, (size_t)n + 1);
  vsnprintf(p, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return p;
}

void snc_arena_free(snc_arena *a) {
  snc_arena_block *b = a->head;
  while (b) {
    snc_arena_block *next = b->next;
    free(b);
    b = next;
  }
  a->head = NULL;
  a->used_total = 0;
}
