/* `snrun study` on the command line: options into snc_study_opts, the Ctrl-C handler, the messages. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "snc/study.h"
#include "snc/train.h" /* snc_eval_train_parse */

static volatile sig_atomic_t stop_level;

static void on_signal(int sig) {
  if (sig == SIGTERM || stop_level >= 1)
    stop_level = 2; /* a second Ctrl-C or a SIGTERM: stop now */
  else
    stop_level = 1; /* finish the running rounds */
}

int snc_study_main(int argc, char **argv, const char *usage) {
  snc_study_opts o = snc_study_defaults();
  int no_progress = 0;
  for (int i = 0; i < argc; i++) {
    char *a = argv[i], *val = NULL;
    static const char *const opts[] = {"--grid", "--set", "--rounds", "--seed", "--epochs", "--data", "--out",
                                       "--resume", "--jobs", "--threads", "--backend", "--eval-train",
                                       "--eval-batch", NULL};
    const char *opt = NULL;
    if (snc_cli_option("snrun study", opts, argc, argv, &i, &opt, &val)) return 2;
    if (!opt) {
      if (!strcmp(a, "-h") || !strcmp(a, "--help")) return fputs(usage, stdout), 0;
      if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
        o.quiet = 1;
      } else if (!strcmp(a, "--no-plots")) {
        o.plots = 0;
      } else if (!strcmp(a, "--no-cache")) {
        o.no_cache = 1;
      } else if (!strcmp(a, "--no-tune")) {
        o.no_tune = 1;
      } else if (!strcmp(a, "--no-progress")) {
        no_progress = 1;
      } else if (a[0] == '-' && a[1]) {
        return fprintf(stderr, "snrun study: unknown option '%s' (see snrun study --help)\n", a), 2;
      } else if (o.model) {
        return fprintf(stderr, "snrun study: one model file at a time ('%s' and '%s')\n", o.model, a), 2;
      } else {
        o.model = a;
      }
      continue;
    }
    int v;
    if (!*val) return fprintf(stderr, "snrun study: %s needs a non-empty value\n", opt), 2;
    if (!strcmp(opt, "--grid")) {
      if (o.ngrid == SNC_STUDY_MAX_GRID)
        return fprintf(stderr, "snrun study: at most %d --grid options\n", SNC_STUDY_MAX_GRID), 2;
      o.grid[o.ngrid++] = val;
    } else if (!strcmp(opt, "--set")) {
      if (snc_cli_add_set("snrun study", val, o.sets, &o.nsets, SNC_STUDY_MAX_SETS)) return 2;
    } else if (!strcmp(opt, "--rounds")) {
      if (snc_cli_parse_int(val, 1, 100000, &v))
        return fprintf(stderr, "snrun study: --rounds takes an integer from 1 to 100000, got '%s'\n", val), 2;
      o.rounds = v;
    } else if (!strcmp(opt, "--seed")) {
      char *end;
      errno = 0;
      if (*val == '-' || (o.seed = strtoull(val, &end, 10), *end || errno))
        return fprintf(stderr, "snrun study: --seed takes a non-negative integer, got '%s'\n", val), 2;
      o.has_seed = 1;
    } else if (!strcmp(opt, "--epochs")) {
      if (snc_cli_parse_int(val, 1, 1000000, &v))
        return fprintf(stderr, "snrun study: --epochs takes an integer from 1 to 1000000, got '%s'\n", val), 2;
      o.epochs = v;
    } else if (!strcmp(opt, "--jobs")) {
      if (snc_cli_parse_int(val, 1, 256, &v))
        return fprintf(stderr, "snrun study: --jobs takes an integer from 1 to 256, got '%s'\n", val), 2;
      o.jobs = v;
    } else if (!strcmp(opt, "--threads")) {
      if (snc_cli_parse_int(val, 1, 1024, &v))
        return fprintf(stderr, "snrun study: --threads takes an integer from 1 to 1024, got '%s'\n", val), 2;
      o.threads = v;
    } else if (!strcmp(opt, "--backend")) {
      if (strcmp(val, "jit") && strcmp(val, "ref"))
        return fprintf(stderr, "snrun study: unknown backend '%s' (known: jit, ref)\n", val), 2;
      o.backend = val;
    } else if (!strcmp(opt, "--eval-train")) {
      if (snc_eval_train_parse(val, &o.eval_train) != 0)
        return fprintf(stderr, "snrun study: --eval-train takes every, end or never, got '%s'\n", val), 2;
    } else if (!strcmp(opt, "--eval-batch")) {
      if (snc_cli_parse_int(val, 0, 65536, &v))
        return fprintf(stderr, "snrun study: --eval-batch takes an integer from 0 to 65536, got '%s'\n", val), 2;
      o.eval_batch = v;
    } else if (!strcmp(opt, "--data")) {
      o.data = val;
    } else if (!strcmp(opt, "--out")) {
      o.out = val;
    } else if (!strcmp(opt, "--resume")) {
      o.resume = val;
    }
  }
  if (!o.model && !o.resume) return fprintf(stderr, "snrun study: which model? %s", usage), 2;
  if (no_progress) o.progress = 0;
  o.stop = &stop_level;
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  snc_error err = {0};
  int st = snc_study_run(&o, &err);
  if (st == 1 || st == 2) fprintf(stderr, "snrun study: %s\n", err.msg);
  return st;
}
