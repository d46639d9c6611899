/* Option parsing shared by the verbs of snc and snrun (cli_util.h). */
#include "cli_util.h"

#include <stdio.h>
#include <stdlib.h>

int snc_cli_parse_int(const char *s, int lo, int hi, int *v) {
  char *end;
  long x = strtol(s, &end, 10);
  if (!*s || *end || x < lo || x > hi) return -1;
  *v = (int)x;
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
