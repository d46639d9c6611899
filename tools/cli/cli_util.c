/* Option parsing shared by the verbs of snc and snrun (cli_util.h). */
#include "cli_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int snc_cli_parse_int(const char *s, int lo, int hi, int *v) {
  char *end;
  if (!s || !*s || *s == '+' || *s == ' ' || *s == '\t') return -1;
  errno = 0;
  long x = strtol(s, &end, 10);
  if (*end || errno || x < lo || x > hi) return -1;
  *v = (int)x;
  return 0;
}

int snc_cli_option(const char *verb, const char *const *opts, int argc, char **argv, int *i, const char **opt, char **val) {
  char *a = argv[*i];
  *opt = NULL, *val = NULL;
  for (int k = 0; opts[k]; k++) {
    size_t l = strlen(opts[k]);
    if (strncmp(a, opts[k], l) || (a[l] != 0 && a[l] != '=')) continue;
    *opt = opts[k];
    if (a[l] == '=')
      *val = a + l + 1;
    else if (*i + 1 < argc)
      *val = argv[++*i];
    else
      return fprintf(stderr, "%s: %s needs a value (see %s --help)\n", verb, opts[k], verb), 2;
    return 0;
  }
  return 0;
}

int snc_cli_add_set(const char *verb, char *spec, snc_override *sets, int *nsets, int max) {
  snc_error err = {0};
  if (*nsets == max) return fprintf(stderr, "%s: too many --set options\n", verb), 2;
  if (snc_override_parse(spec, &sets[*nsets], &err)) return fprintf(stderr, "%s: %s\n", verb, err.msg), 2;
  ++*nsets;
  return 0;
}

int snc_cli_model_arg(const char *verb, const char *arg, const char **model) {
  if (arg[0] == '-' && arg[1])
    return fprintf(stderr, "%s: unknown option or missing value '%s' (see %s --help)\n", verb, arg, verb), 2;
  if (*model) return fprintf(stderr, "%s: one model at a time ('%s' and '%s')\n", verb, *model, arg), 2;
  *model = arg;
  return 0;
}
