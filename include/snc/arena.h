/* Bump allocator: everything a graph owns lives in one arena, freed at once.
 *
 *   snc_arena a = {0};
 *   int *v = snc_arena_alloc(&a, 100 * sizeof(int));   // zeroed, 16-byte aligned
 *   char *s = snc_arena_strdup(&a, "conv1");
 *   snc_arena_free(&a);                                 // frees both
 *
 * Allocation failure is fatal (out of memory), so callers never check for NULL. */
#ifndef SNC_ARENA_H
#define SNC_ARENA_H
#include <stddef.h>

typedef struct snc_arena_block snc_arena_block;
typedef struct snc_arena {
  snc_arena_block *head;
  size_t used_total;
} snc_arena;

void *snc_arena_alloc(snc_arena *a, size_t size);
char *snc_arena_strdup(snc_arena *a, const char *s);
char *snc_arena_printf(snc_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void snc_arena_free(snc_arena *a);

#endif
