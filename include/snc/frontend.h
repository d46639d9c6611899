/* The YAML model language front end: a model file becomes a verified layer graph.
 *
 *   snc_override sets[] = {{"aux_loss", "false"}};
 *   snc_error err = {0};
 *   snc_graph *g = snc_model_load("models/siamese.yaml", sets, 1, &err);
 *   if (!g) { fprintf(stderr, "%s\n", err.msg); return 1; }   // "models/x.yaml:12:7: ..."
 *   ...
 *   snc_graph_free(g);                                        // the caller owns the graph
 *
 * The language is described in README.md ("The model language"). */
#ifndef SNC_FRONTEND_H
#define SNC_FRONTEND_H
#include <stddef.h>

#include "snc/ir.h"

typedef struct snc_override {
  const char *key, *value; /* from --set key=value */
} snc_override;

/* Parses "key=value" (as given to --set) into o, pointing into arg's storage, which must outlive o. */
int snc_override_parse(char *arg, snc_override *o, snc_error *err);

snc_graph *snc_model_load(const char *path, const snc_override *sets, int nsets, snc_error *err);
/* Same with training.batch_size replaced by batch (> 0; 0 keeps the model's): the graph's batched
 * tensors get that many rows. Data-parallel training builds each rank's code for its share of a
 * batch this way. */
snc_graph *snc_model_load_batch(const char *path, const snc_override *sets, int nsets, int batch, snc_error *err);
/* Same, from text in memory; `name` is used in messages in place of a file name. */
snc_graph *snc_model_load_text(const char *text, size_t len, const char *name, const snc_override *sets, int nsets,
                               snc_error *err);

#endif
