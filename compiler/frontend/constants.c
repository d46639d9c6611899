/* The `constants:` section: named tensors without a batch, fixed at compile time, usable wherever a
 * layer names its inputs (`from:`), also inside networks. mul broadcasts them over the batch.
 *
 *   constants:
 *     le:   {shape: [10, 10], triangular: upper}            # 1 where row <= column, else 0
 *     soft: {shape: [10, 10], triangular: upper, value: 0.999, fill: 0.001}
 *     w:    {shape: [3], values: [0.5, 1, 2]}
 *     half: {shape: [], fill: 0.5}
 *
 * triangular follows torch.triu / torch.tril on the last two axes: element (..., i, j) is inside when
 * j - i >= diagonal (upper) or j - i <= diagonal (lower); inside elements get `value` (default 1),
 * the others `fill` (default 0). Without triangular, `fill` sets every element; `values` lists them
 * all in row-major order. */
#include "frontend/fe.h"

#include <stdlib.h>
#include <string.h>

static int one_constant(snc_fe *fe, yaml_node_t *k, yaml_node_t *v) {
  const char *name = snc_fe_scalar(k);
  if (!name || !*name || strchr(name, '.')) return snc_fe_error(fe, k, "constant names must be plain names");
  if (snc_fe_expect_map(fe, v, "a constant") ||
      snc_fe_check_keys(fe, v, "constant",
                        (const char *const[]){"shape", "values", "fill", "triangular", "diagonal", "value", NULL}))
    return -1;
  yaml_node_t *shape = snc_fe_get(fe, v, "shape", NULL), *values = snc_fe_get(fe, v, "values", NULL);
  yaml_node_t *tri = snc_fe_get(fe, v, "triangular", NULL), *fill = snc_fe_get(fe, v, "fill", NULL);
  if (!shape || shape->type != YAML_SEQUENCE_NODE)
    return snc_fe_error(fe, shape ? shape : v, "constant '%s' needs 'shape', a list of dimensions ([] for a scalar)", name);
  snc_shape s = {0, {0}};
  for (yaml_node_item_t *it = shape->data.sequence.items.start; it < shape->data.sequence.items.top; it++) {
    long long d;
    if (s.rank == SNC_MAX_DIMS) return snc_fe_error(fe, shape, "constant '%s' has more than %d dimensions", name, SNC_MAX_DIMS);
    if (snc_fe_int(fe, snc_fe_node(fe, *it), "dimension", 1, 1 << 24, &d)) return -1;
    s.dim[s.rank++] = d;
  }
  int64_t n = snc_shape_numel(&s);
  char ss[64];
  snc_shape_str(&s, 0, ss, sizeof ss);
  if (n > (1 << 24)) return snc_fe_error(fe, shape, "constant '%s' %s has more than 2^24 elements", name, ss);
  if (!values && !fill && !tri) return snc_fe_error(fe, v, "constant '%s' needs 'values', 'fill' or 'triangular'", name);
  if (values && (fill || tri))
    return snc_fe_error(fe, fill ? fill : tri, "constant '%s': 'values' lists every element; it does not combine with '%s'",
                        name, fill ? "fill" : "triangular");
  if (!tri) {
    yaml_node_t *stray = snc_fe_get(fe, v, "diagonal", NULL);
    if (!stray) stray = snc_fe_get(fe, v, "value", NULL);
    if (stray) return snc_fe_error(fe, stray, "constant '%s': 'diagonal' and 'value' are options of 'triangular'", name);
  }
  float *x = calloc((size_t)(n ? n : 1), sizeof *x);
  if (!x) return snc_fe_error(fe, v, "constant '%s': out of memory", name);
  int rc = -1;
  double d;
  if (values) {
    if (values->type == YAML_SEQUENCE_NODE) {
      int64_t got = values->data.sequence.items.top - values->data.sequence.items.start;
      if (got != n) {
        snc_fe_error(fe, values, "constant '%s': 'values' has %lld numbers but shape %s holds %lld", name, (long long)got,
                     ss, (long long)n);
        goto cleanup;
      }
      for (int64_t i = 0; i < n; i++) {
        if (snc_fe_float(fe, snc_fe_node(fe, values->data.sequence.items.start[i]), "value", -1e30, 1e30, &d)) goto cleanup;
        x[i] = (float)d;
      }
    } else {
      if (n != 1) {
        snc_fe_error(fe, values, "constant '%s': 'values' must list the %lld numbers of shape %s", name, (long long)n, ss);
        goto cleanup;
      }
      if (snc_fe_float(fe, values, "value", -1e30, 1e30, &d)) goto cleanup;
      x[0] = (float)d;
    }
  } else {
    double out, in = 1;
    long long diag = 0;
    if (snc_fe_opt_float(fe, v, "fill", -1e30, 1e30, 0, &out)) goto cleanup;
    int upper = 1;
    if (tri) {
      const char *t = snc_fe_scalar(tri);
      if (!t || (strcmp(t, "upper") && strcmp(t, "lower"))) {
        snc_fe_error(fe, tri, "triangular must be upper or lower, got '%s'", t ? t : "(not a name)");
        goto cleanup;
      }
      upper = !strcmp(t, "upper");
      if (s.rank < 2) {
        snc_fe_error(fe, tri, "constant '%s': triangular needs at least two dimensions, shape is %s", name, ss);
        goto cleanup;
      }
      if (snc_fe_opt_float(fe, v, "value", -1e30, 1e30, 1, &in) || snc_fe_opt_int(fe, v, "diagonal", -(1 << 24), 1 << 24, 0, &diag))
        goto cleanup;
    }
    int64_t rows = tri ? s.dim[s.rank - 2] : 1, cols = tri ? s.dim[s.rank - 1] : 1;
    for (int64_t e = 0; e < n; e++) {
      int64_t i = e / cols % rows, j = e % cols;
      int inside = tri && (upper ? j - i >= diag : j - i <= diag);
      x[e] = (float)(inside ? in : out);
    }
  }
  int id = snc_graph_const(fe->g, name, &s, x, snc_fe_loc(fe, k), fe->err); /* copies x */
  if (id < 0) goto cleanup;
  snc_fe_alias(fe, name, id);
  rc = 0;
cleanup:
  free(x);
  return rc;
}

int snc_fe_constants(snc_fe *fe, yaml_node_t *m) {
  if (!m) return 0;
  if (snc_fe_expect_map(fe, m, "constants")) return -1;
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++)
    if (one_constant(fe, snc_fe_node(fe, p->key), snc_fe_node(fe, p->value))) return -1;
  return 0;
}
