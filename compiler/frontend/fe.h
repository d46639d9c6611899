/* Front-end internals shared by model.c (sections) and layers.c (layer lowering). */
#ifndef SNC_FRONTEND_FE_H
#define SNC_FRONTEND_FE_H
#include <yaml.h>

#include "snc/frontend.h"
#include "snc/ir.h"
#include "ir/strmap.h"

typedef struct snc_alias {
  const char *name; /* full name ("digit_a.conv1", "digit_a") */
  int node;
} snc_alias;

typedef struct snc_fe {
  yaml_document_t doc;
  const char *file;
  snc_graph *g;
  snc_error *err;
  snc_alias *aliases;
  int naliases, cap_aliases;
  snc_strmap alias_index; /* alias name -> index in aliases (the latest); freed by load_text */
  yaml_node_t *networks; /* the `networks` mapping or NULL */
  snc_strmap network_index; /* network name -> index of its pair in networks; freed by load_text */
  int networks_indexed;
  const char *call_stack[16];
  int depth;
  struct { const char *name, *param_prefix; } *instances; /* network instances made so far */
  int ninstances, cap_instances;
  snc_strmap instance_index; /* instance name -> index in instances; freed by load_text */
  yaml_node_t *augment; /* training.augment, for messages */
  int batch;            /* > 0: replaces training.batch_size (snc_model_load_batch) */
} snc_fe;

/* A scope: the main graph (prefix "") or one instance of a network ("digit_a."). */
typedef struct snc_scope {
  const char *prefix;       /* node names in this scope start with it */
  const char *param_prefix; /* parameters are created/shared under this prefix */
  int input;                /* a network's input node, -1 in the main graph */
} snc_scope;

/* --- before the document (scan.c): the limits of limits.h, NUL bytes, a second document --- */
int snc_fe_prescan(const char *text, size_t len, const char *name, snc_error *err);

/* --- document helpers (doc.c) --- */
snc_loc snc_fe_loc(const snc_fe *fe, const yaml_node_t *n);
int snc_fe_error(snc_fe *fe, const yaml_node_t *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
yaml_node_t *snc_fe_node(snc_fe *fe, yaml_node_item_t id);
const char *snc_fe_scalar(const yaml_node_t *n); /* NULL unless a scalar */
int snc_fe_is_null(const yaml_node_t *n);
/* Value of `key` in mapping m, or NULL; *key_node gets the key (for messages) when not NULL. */
yaml_node_t *snc_fe_get(snc_fe *fe, yaml_node_t *m, const char *key, yaml_node_t **key_node);
/* Every key of m must be in allowed (NULL-terminated); reports the first other with a did-you-mean. */
int snc_fe_check_keys(snc_fe *fe, yaml_node_t *m, const char *what, const char *const *allowed);
int snc_fe_expect_map(snc_fe *fe, yaml_node_t *n, const char *what);
/* Closest candidate within a small edit distance, or NULL. */
const char *snc_fe_suggest(const char *word, const char *const *cands, int ncands);

/* Typed values; `$name` refers to a switch. Each returns 0 or an error at the value's place. */
int snc_fe_int(snc_fe *fe, yaml_node_t *v, const char *what, long long lo, long long hi, long long *out);
int snc_fe_float(snc_fe *fe, yaml_node_t *v, const char *what, double lo, double hi, double *out);
int snc_fe_bool(snc_fe *fe, yaml_node_t *v, const char *what, int *out);
int snc_fe_str(snc_fe *fe, yaml_node_t *v, const char *what, const char **out);
/* Optional key of mapping m with default when absent (m may be NULL). */
int snc_fe_opt_int(snc_fe *fe, yaml_node_t *m, const char *key, long long lo, long long hi, long long def,
                   long long *out);
int snc_fe_opt_float(snc_fe *fe, yaml_node_t *m, const char *key, double lo, double hi, double def, double *out);
int snc_fe_opt_bool(snc_fe *fe, yaml_node_t *m, const char *key, int def, int *out);
/* An int or a two-element [h, w] list. */
int snc_fe_opt_pair(snc_fe *fe, yaml_node_t *m, const char *key, int lo, int hi, int def, int out[2], int required);
/* Evaluates `if:` (a bool switch name, optionally with `not ` or `!`). */
int snc_fe_condition(snc_fe *fe, yaml_node_t *v, int *out);
snc_switch *snc_fe_switch(snc_fe *fe, const char *name);

/* --- names --- */
void snc_fe_alias(snc_fe *fe, const char *name, int node);
int snc_fe_lookup(snc_fe *fe, const char *name); /* -1 if unknown */

/* --- layers (layers.c: the table and lowering; sequence.c: items, names, calls) --- */
typedef struct layer_ctx {
  snc_fe *fe;
  const snc_scope *sc;
  yaml_node_t *item, *type_node, *opts; /* opts: the options mapping or NULL */
  const char *local, *full;             /* layer name in its scope and in the graph */
  int in[16], nin;
  snc_loc loc;
} layer_ctx;

typedef struct layer_def {
  const char *type;
  const char *const *keys; /* option keys, NULL-terminated */
  int min_in, max_in;      /* inputs from `from:` */
  int loss;
  int (*lower)(layer_ctx *c); /* returns the node id or -1 */
} layer_def;

const layer_def *snc_fe_layer_def(const char *type);
const char *snc_fe_layer_type_name(int i); /* NULL past the last */
int snc_fe_call(layer_ctx *c);
/* The `constants:` section (constants.c): CONST nodes named as written, visible in every scope. */
int snc_fe_constants(snc_fe *fe, yaml_node_t *m);
/* Lowers a sequence of layer items into the graph in scope sc; *last gets the last node.
 * losses: the items are loss terms (only loss types, with `weight`). */
int snc_fe_layers(snc_fe *fe, yaml_node_t *seq, const snc_scope *sc, int losses, int *last);

#endif
