/* A small open-addressing hash from names to ids, for the lookups that were linear scans (node
 * names in the graph, layer aliases in the front end): a model with 20,000 layers took 8 s in
 * those scans. The table stores ids only; the caller's `name` callback gives an id's name, so a
 * stale id (a node dropped after an error) simply never matches. Later puts of a name win.
 *
 *   snc_strmap m = {0};
 *   snc_strmap_put(&m, "a", 3, name_of, ctx);     // m owns its slots: snc_strmap_free(&m)
 *   int id = snc_strmap_get(&m, "a", name_of, ctx);  // 3, or -1 when absent
 */
#ifndef SNC_IR_STRMAP_H
#define SNC_IR_STRMAP_H

typedef const char *(*snc_strmap_name_fn)(const void *ctx, int id); /* NULL: id no longer exists */

typedef struct snc_strmap {
  int *slot; /* id + 1, 0 for an empty slot */
  unsigned cap, used;
} snc_strmap;

void snc_strmap_put(snc_strmap *m, const char *name, int id, snc_strmap_name_fn name_of, const void *ctx);
int snc_strmap_get(const snc_strmap *m, const char *name, snc_strmap_name_fn name_of, const void *ctx);
void snc_strmap_free(snc_strmap *m);

#endif
