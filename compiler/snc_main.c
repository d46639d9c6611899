/* snc: the compiler driver. Subcommands: check (validate a model and print its graph). */
#include <stdio.h>
#include <string.h>

#include "snc/frontend.h"
#include "snc/ir.h"

#define SNC_MAX_SETS 64

static void usage(FILE *out) {
  fputs("usage: snc <command> [options]\n"
        "\n"
        "commands:\n"
        "  check MODEL.yaml [--set NAME=VALUE]...   validate a model and print its layer graph:\n"
        "                                           nodes, shapes, parameters and FLOPs\n"
        "\n"
        "options:\n"
        "  --set NAME=VALUE   override a switch declared in the model (repeatable),\n"
        "                     e.g. --set weight_sharing=false --set aux_loss=true\n"
        "  -q, --quiet        check only; print nothing on success\n"
        "  -h, --help         show this help\n"
        "  --version          print the version\n"
        "\n"
        "exit status: 0 success, 1 the model has an error, 2 wrong usage\n",
        out);
}

static int cmd_check(int argc, char **argv) {
  const char *path = NULL;
  snc_override sets[SNC_MAX_SETS];
  int nsets = 0, quiet = 0;
  snc_error err = {0};
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--set") || !strncmp(a, "--set=", 6)) {
      char *v = a[5] == '=' ? argv[i] + 6 : (i + 1 < argc ? argv[++i] : NULL);
      if (!v) return fprintf(stderr, "snc check: --set needs NAME=VALUE\n"), 2;
      if (nsets == SNC_MAX_SETS) return fprintf(stderr, "snc check: too many --set options\n"), 2;
      if (snc_override_parse(v, &sets[nsets], &err)) return fprintf(stderr, "snc check: %s\n", err.msg), 2;
      nsets++;
    } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
      quiet = 1;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (a[0] == '-') {
      fprintf(stderr, "snc check: unknown option '%s' (see snc --help)\n", a);
      return 2;
    } else if (path) {
      fprintf(stderr, "snc check: one model file at a time ('%s' and '%s')\n", path, a);
      return 2;
    } else {
      path = a;
    }
  }
  if (!path) return fprintf(stderr, "snc check: which model? usage: snc check MODEL.yaml [--set NAME=VALUE]\n"), 2;
  snc_graph *g = snc_model_load(path, sets, nsets, &err);
  if (!g) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  if (!quiet) snc_graph_print_summary(g, stdout);
  snc_graph_free(g);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "--version")) {
    puts("snc 0.1.0");
    return 0;
  }
  if (!strcmp(cmd, "check")) return cmd_check(argc - 2, argv + 2);
  fprintf(stderr, "snc: unknown command '%s' (commands: check; see snc --help)\n", cmd);
  return 2;
}
