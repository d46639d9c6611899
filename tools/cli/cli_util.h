/* Option parsing that the verbs of the command-line tools share (tools/cli/cli_util.c): a whole
 * number, a --set NAME=VALUE, and the argument that no option took (the model). `verb` ("snc export",
 * "snrun infer", ...) begins every message; a message goes to stderr and the verb exits with 2. */
#ifndef SNC_CLI_UTIL_H
#define SNC_CLI_UTIL_H
#include "snc/frontend.h"

#define SNC_CLI_MAX_SETS 64 /* --set options of one command */

/* s, all of it, as a decimal number from lo to hi into *v (no sign, no blanks): 0; -1 otherwise
 * (nothing printed). */
int snc_cli_parse_int(const char *s, int lo, int hi, int *v);

/* Whether argv[*i] is one of the options in opts (NULL-terminated) that take a value, as "--opt VALUE"
 * or "--opt=VALUE": *opt and *val receive them (*i moves past a separate value), or *opt = NULL when it
 * is none of them. Returns 0; 2 after printing why when the option is the last argument. */
int snc_cli_option(const char *verb, const char *const *opts, int argc, char **argv, int *i, const char **opt, char **val);

/* --set SPEC: parses SPEC (NAME=VALUE, split in place) into sets[*nsets] and counts it: 0; at max
 * options already, or a SPEC that does not parse: prints why and returns 2. */
int snc_cli_add_set(const char *verb, char *spec, snc_override *sets, int *nsets, int max);

/* An argument no option took: the model when it is the first one (0); an unknown option or an option
 * without its value ('-' alone is a file), or a second model: prints why and returns 2. */
int snc_cli_model_arg(const char *verb, const char *arg, const char **model);

#endif
