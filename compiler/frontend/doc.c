/* Typed access to the libyaml document with file:line:col messages, switches and names. */
#include "frontend/fe.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

snc_loc snc_fe_loc(const snc_fe *fe, const yaml_node_t *n) {
  snc_loc l = {fe->file, 0, 0};
  if (n) {
    l.line = (int)n->start_mark.line + 1;
    l.col = (int)n->start_mark.column + 1;
  }
  return l;
}

int snc_fe_error(snc_fe *fe, const yaml_node_t *at, const char *fmt, ...) {
  snc_loc l = snc_fe_loc(fe, at);
  if (!fe->err) return -1;
  int k = snprintf(fe->err->msg, sizeof fe->err->msg, "%s:%d:%d: ", l.file, l.line, l.col);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(fe->err->msg + k, sizeof fe->err->msg - (size_t)k, fmt, ap);
  va_end(ap);
  return -1;
}

yaml_node_t *snc_fe_node(snc_fe *fe, yaml_node_item_t id) { return yaml_document_get_node(&fe->doc, id); }

const char *snc_fe_scalar(const yaml_node_t *n) {
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

int snc_fe_is_null(const yaml_node_t *n) {
  if (!n) return 1;
  if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
  const char *s = (const char *)n->data.scalar.value;
  return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

yaml_node_t *snc_fe_get(snc_fe *fe, yaml_node_t *m, const char *key, yaml_node_t **key_node) {
  if (!m || m->type != YAML_MAPPING_NODE) return NULL;
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *k = snc_fe_node(fe, p->key);
    const char *s = snc_fe_scalar(k);
    if (s && !strcmp(s, key)) {
      if (key_node) *key_node = k;
      return snc_fe_node(fe, p->value);
    }
  }
  return NULL;
}

static int edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 63 || lb > 63) return 99;
  int d[64][64];
  for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
      d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < d[i][j])
        d[i][j] = d[i - 2][j - 2] + 1; /* transposition */
    }
  return d[la][lb];
}

const char *snc_fe_suggest(const char *word, const char *const *cands, int ncands) {
  const char *best = NULL;
  int best_d = (int)strlen(word) / 3 + 1;
  if (best_d > 3) best_d = 3;
  for (int i = 0; i < ncands; i++) {
    if (!cands[i]) continue; /* a key that is not a plain name (fuzz_yaml found a list as a network's name) */
    int d = edit_distance(word, cands[i]);
    if (d <= best_d && (!best || d < edit_distance(word, best))) best = cands[i];
  }
  return best;
}

int snc_fe_expect_map(snc_fe *fe, yaml_node_t *n, const char *what) {
  if (n && n->type == YAML_MAPPING_NODE) return 0;
  return snc_fe_error(fe, n, "%s must be a mapping (key: value lines)", what);
}

int snc_fe_check_keys(snc_fe *fe, yaml_node_t *m, const char *what, const char *const *allowed) {
  int n = 0;
  while (allowed[n]) n++;
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *k = snc_fe_node(fe, p->key);
    const char *s = snc_fe_scalar(k);
    if (!s) return snc_fe_error(fe, k, "%s: keys must be plain names", what);
    int ok = 0;
    for (int i = 0; i < n && !ok; i++) ok = !strcmp(s, allowed[i]);
    if (!ok) {
      const char *hint = snc_fe_suggest(s, allowed, n);
      if (hint) return snc_fe_error(fe, k, "%s: unknown key '%s' (did you mean '%s'?)", what, s, hint);
      char list[512] = "";
      for (int i = 0; i < n; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, allowed[i], sizeof list - strlen(list) - 1);
      }
      return snc_fe_error(fe, k, "%s: unknown key '%s' (expected one of: %s)", what, s, list);
    }
    for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < p; q++)
      if (!strcmp(snc_fe_scalar(snc_fe_node(fe, q->key)), s))
        return snc_fe_error(fe, k, "%s: key '%s' appears twice", what, s);
  }
  return 0;
}

snc_switch *snc_fe_switch(snc_fe *fe, const char *name) {
  for (int i = 0; i < fe->g->nswitches; i++)
    if (!strcmp(fe->g->switches[i].name, name)) return &fe->g->switches[i];
  return NULL;
}

static int unknown_switch(snc_fe *fe, yaml_node_t *at, const char *name) {
  const char *names[64];
  int n = 0;
  for (int i = 0; i < fe->g->nswitches && n < 64; i++) names[n++] = fe->g->switches[i].name;
  const char *hint = snc_fe_suggest(name, names, n);
  if (hint) return snc_fe_error(fe, at, "unknown switch '%s' (did you mean '%s'?)", name, hint);
  return snc_fe_error(fe, at, "unknown switch '%s' (declare it under 'switches')", name);
}

/* A `$name` scalar refers to a switch: its value replaces the scalar. */
static int switch_ref(snc_fe *fe, yaml_node_t *v, const snc_switch **out) {
  const char *s = snc_fe_scalar(v);
  *out = NULL;
  if (!s || s[0] != '$' || v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
  *out = snc_fe_switch(fe, s + 1);
  return *out ? 0 : unknown_switch(fe, v, s + 1);
}

int snc_fe_float(snc_fe *fe, yaml_node_t *v, const char *what, double lo, double hi, double *out) {
  const snc_switch *sw;
  if (switch_ref(fe, v, &sw)) return -1;
  double x;
  if (sw) {
    x = sw->value;
  } else {
    const char *s = snc_fe_scalar(v);
    char *end;
    if (!s || !*s) return snc_fe_error(fe, v, "%s must be a number", what);
    errno = 0;
    x = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(x)) return snc_fe_error(fe, v, "%s must be a number, got '%s'", what, s);
  }
  if (x < lo || x > hi) return snc_fe_error(fe, v, "%s %g is out of range [%g, %g]", what, x, lo, hi);
  *out = x;
  return 0;
}

int snc_fe_int(snc_fe *fe, yaml_node_t *v, const char *what, long long lo, long long hi, long long *out) {
  const snc_switch *sw;
  if (switch_ref(fe, v, &sw)) return -1;
  long long x;
  if (sw) {
    if (sw->value != floor(sw->value)) return snc_fe_error(fe, v, "%s: switch value %g is not an integer", what, sw->value);
    x = (long long)sw->value;
  } else {
    const char *s = snc_fe_scalar(v);
    char *end;
    if (!s || !*s) return snc_fe_error(fe, v, "%s must be an integer", what);
    errno = 0;
    x = strtoll(s, &end, 10);
    if (*end || errno == ERANGE) {
      double d = strtod(s, &end);
      if (!*end && d == floor(d) && fabs(d) < 9e18) x = (long long)d; /* 1e3 */
      else if (!*end && isfinite(d) && d == floor(d)) return snc_fe_error(fe, v, "%s %s is too large (at most %lld)", what, s, hi);
      else return snc_fe_error(fe, v, "%s must be an integer, got '%s'", what, s);
    }
  }
  if (x < lo || x > hi) return snc_fe_error(fe, v, "%s %lld is out of range [%lld, %lld]", what, x, lo, hi);
  *out = x;
  return 0;
}

static int parse_bool(const char *s, int *out) {
  static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
  for (int i = 0; i < 4; i++) {
    if (!strcasecmp(s, yes[i])) return *out = 1, 0;
    if (!strcasecmp(s, no[i])) return *out = 0, 0;
  }
  return -1;
}

int snc_fe_bool(snc_fe *fe, yaml_node_t *v, const char *what, int *out) {
  const snc_switch *sw;
  if (switch_ref(fe, v, &sw)) return -1;
  if (sw) {
    if (!sw->is_bool) return snc_fe_error(fe, v, "%s: switch '%s' is a number, not true/false", what, sw->name);
    *out = sw->value != 0;
    return 0;
  }
  const char *s = snc_fe_scalar(v);
  if (!s || parse_bool(s, out)) return snc_fe_error(fe, v, "%s must be true or false, got '%s'", what, s ? s : "a list");
  return 0;
}

int snc_fe_str(snc_fe *fe, yaml_node_t *v, const char *what, const char **out) {
  const char *s = snc_fe_scalar(v);
  if (!s || !*s) return snc_fe_error(fe, v, "%s must be a name", what);
  *out = snc_arena_strdup(&fe->g->arena, s); /* the document is freed after loading */
  return 0;
}

int snc_fe_opt_int(snc_fe *fe, yaml_node_t *m, const char *key, long long lo, long long hi, long long def,
                   long long *out) {
  yaml_node_t *v = snc_fe_get(fe, m, key, NULL);
  if (!v) return *out = def, 0;
  return snc_fe_int(fe, v, key, lo, hi, out);
}

int snc_fe_opt_float(snc_fe *fe, yaml_node_t *m, const char *key, double lo, double hi, double def, double *out) {
  yaml_node_t *v = snc_fe_get(fe, m, key, NULL);
  if (!v) return *out = def, 0;
  return snc_fe_float(fe, v, key, lo, hi, out);
}

int snc_fe_opt_bool(snc_fe *fe, yaml_node_t *m, const char *key, int def, int *out) {
  yaml_node_t *v = snc_fe_get(fe, m, key, NULL);
  if (!v) return *out = def, 0;
  return snc_fe_bool(fe, v, key, out);
}

int snc_fe_opt_pair(snc_fe *fe, yaml_node_t *m, const char *key, int lo, int hi, int def, int out[2], int required) {
  yaml_node_t *v = snc_fe_get(fe, m, key, NULL);
  long long a, b;
  if (!v) {
    if (required) return snc_fe_error(fe, m, "missing '%s'", key);
    out[0] = out[1] = def;
    return 0;
  }
  if (v->type == YAML_SEQUENCE_NODE) {
    yaml_node_item_t *it = v->data.sequence.items.start;
    if (v->data.sequence.items.top - it != 2) return snc_fe_error(fe, v, "%s must be an integer or [height, width]", key);
    if (snc_fe_int(fe, snc_fe_node(fe, it[0]), key, lo, hi, &a) || snc_fe_int(fe, snc_fe_node(fe, it[1]), key, lo, hi, &b))
      return -1;
  } else {
    if (snc_fe_int(fe, v, key, lo, hi, &a)) return -1;
    b = a;
  }
  out[0] = (int)a;
  out[1] = (int)b;
  return 0;
}

int snc_fe_condition(snc_fe *fe, yaml_node_t *v, int *out) {
  const char *s = snc_fe_scalar(v);
  int neg = 0;
  if (!s) return snc_fe_error(fe, v, "'if' takes a switch name, optionally with 'not'");
  if (s[0] == '!') neg = 1, s++;
  else if (!strncmp(s, "not ", 4)) neg = 1, s += 4;
  while (*s == ' ') s++;
  if (!strcmp(s, "true") || !strcmp(s, "false")) return *out = (s[0] == 't') ^ neg, 0;
  snc_switch *sw = snc_fe_switch(fe, s);
  if (!sw) return unknown_switch(fe, v, s);
  if (!sw->is_bool) return snc_fe_error(fe, v, "'if' needs a true/false switch; '%s' is a number", s);
  *out = (sw->value != 0) ^ neg;
  return 0;
}

static const char *alias_name(const void *ctx, int i) {
  const snc_fe *fe = ctx;
  return i < fe->naliases ? fe->aliases[i].name : NULL;
}

void snc_fe_alias(snc_fe *fe, const char *name, int node) {
  if (fe->naliases == fe->cap_aliases) {
    int cap = fe->cap_aliases ? 2 * fe->cap_aliases : 64;
    snc_alias *a = snc_arena_alloc(&fe->g->arena, (size_t)cap * sizeof *a);
    if (fe->naliases) memcpy(a, fe->aliases, (size_t)fe->naliases * sizeof *a);
    fe->aliases = a; /* the old block stays in the arena until the graph is freed */
    fe->cap_aliases = cap;
  }
  fe->aliases[fe->naliases].name = snc_arena_strdup(&fe->g->arena, name);
  fe->aliases[fe->naliases].node = node;
  fe->naliases++;
  snc_strmap_put(&fe->alias_index, fe->aliases[fe->naliases - 1].name, fe->naliases - 1, alias_name, fe);
}

int snc_fe_lookup(snc_fe *fe, const char *name) {
  int i = snc_strmap_get(&fe->alias_index, name, alias_name, fe); /* the latest alias of the name */
  return i >= 0 ? fe->aliases[i].node : -1;
}
