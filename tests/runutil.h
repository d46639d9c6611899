/* Helpers for tests that run snrun and read what it wrote: whole files, counted lines, results.csv
 * without its timing columns. Included by tests/test_study.c and tests/test_mpi.c. */
#ifndef SNC_RUNUTIL_H
#define SNC_RUNUTIL_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole file, NUL-terminated (malloc'd), or NULL when it cannot be opened. */
static inline char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
  s[n] = 0;
  fclose(f);
  return s;
}

static inline int count_lines(const char *text, const char *prefix) {
  int n = 0;
  size_t l = strlen(prefix);
  for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
    if (!strncmp(p, prefix, l)) n++;
  return n;
}

/* results.csv without its last two columns (seconds, step_seconds): what must not depend on timing. */
static inline char *csv_without_times(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/results.csv", dir);
  char *t = slurp(path);
  if (!t) return NULL;
  char *out = malloc(strlen(t) + 1), *o = out;
  for (char *line = t; *line;) {
    char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) : strlen(line);
    int commas = 0;
    size_t cut = len;
    for (size_t i = len; i-- > 0;)
      if (line[i] == ',' && ++commas == 2) {
        cut = i;
        break;
      }
    memcpy(o, line, cut);
    o += cut;
    *o++ = '\n';
    line += len + (nl != NULL);
  }
  *o = 0;
  free(t);
  return out;
}

#endif
