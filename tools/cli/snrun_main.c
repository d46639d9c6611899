/* snrun: trains and evaluates models. Subcommands: train, eval. See docs/snrun.md. */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#include <pthread.h>
#include <sys/resource.h>
#endif
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_util.h"
#include "onnx_cli.h"
#include "snc/autodiff.h"
#include "snc/data.h"
#include "snc/backend.h"
#include "snc/dist.h"
#include "snc/frontend.h"
#include "snc/jit.h"
#include "snc/study.h" /* study */
#include "snc/train.h"


/* A compiled module: bitcode magic, or a name ending in .bc (the loader then says what it is not). */
static int is_module(const char *path) {
  size_t n = strlen(path);
  return snc_is_bitcode(path) || (n > 3 && !strcmp(path + n - 3, ".bc"));
}

static const char *const usage_main =
    "usage: snrun <command> [options]\n"
    "\n"
    "commands:\n"
    "  train MODEL.yaml [options]                  train a model, one line per epoch\n"
    "  eval MODEL.yaml --checkpoint PATH [options] test loss and accuracy of a saved model\n"
    "  study MODEL.yaml [options]                  the seed study: R rounds per switch setting, table, plots\n"
    "  pairs MODEL.yaml --out DIR [options]        write the exact data sets snrun uses as IDX files\n"
    "  infer MODEL --input NAME=X.npy --output DIR  a model's results on .npy inputs (.onnx models too)\n"
    "\n"
    "  train, eval and pairs also take MODEL.bc, a module written by `snc compile --emit=bc`: it\n"
    "  carries its model, so no YAML file is read and no code is generated.\n"
    "  snrun <command> --help    options of a command\n"
    "  snrun --version           print the version\n"
    "\n"
"exit status: 0 success, 1 model, data or file error, 2 wrong usage, 130 interrupted\n"
    "\n"
    "MPI: `mpirun -np N snrun train ...` trains data-parallel (each rank computes a share of every\n"
    "batch; gradients are summed over the ranks); `mpirun -np N snrun study ...` spreads the rounds\n"
    "over the ranks. See docs/mpi.md. %s\n";

static const char *const usage_train =
    "usage: snrun train MODEL.yaml [options]\n"
    "\n"
    "Trains the model on the data its `data:` section describes and evaluates it on the test set\n"
    "after every epoch and on the training set after the last (--eval-train).\n"
    "\n"
    "options:\n"
    "  --set NAME=VALUE   override a switch of the model (repeatable)\n"
    "  --seed N           run seed (default: the model's training.seed); data, init, dropout and\n"
    "                     shuffling derive from it\n"
    "  --epochs N         number of epochs (default: the model's training.epochs)\n"
    "  --data DIR         directory of MNIST-format IDX files (default: the model's, else bundled)\n"
    "  --save PATH        write a checkpoint (safetensors) after every epoch and on Ctrl-C\n"
    "  --init PATH        start from the parameters of this checkpoint (snrun train --save, or snc import\n"
    "                     --weights for an ONNX model) instead of the initialisation; optimizer state\n"
    "                     too when it holds it; the schedule and the data statistics start afresh\n"
    "  --backend NAME     jit (compiled code, default) or ref (the reference executor)\n"
    "  --threads N        OpenMP threads per step (default: OMP_NUM_THREADS, else all cores)\n"
    "  --dump-graph       print the kernels and the memory plan (jit)\n"
    "  --dump-llvm        print the LLVM IR before and after optimisation (jit)\n"
    "  --dump-asm         print the generated assembly (jit)\n"
    "  --profile          time every kernel and print the most expensive ones (jit)\n"
    "  --tune             first time each kernel's candidate schedules on this machine and thread\n"
    "                     count (a few seconds), training and evaluation builds, and keep the fastest\n"
    "                     in the tuning cache (jit; docs/jit.md, \"Schedules\")\n"
    "  --no-tune          ignore the tuning cache: every kernel on its default schedule\n"
    "  --no-cache         compile afresh: neither read nor write the compiled-module cache (jit; by\n"
    "                     default $SNC_CACHE_DIR, else $XDG_CACHE_HOME/snc or ~/.cache/snc)\n"
    "  --eval-train WHEN  evaluate the training set (the train acc column) every epoch, at the end\n"
    "                     (default; '-' in the other epochs) or never; the test set: every epoch\n"
    "  --eval-batch N     evaluate on the forward graph built for N rows (fewer padded lanes; jit);\n"
    "                     0: on the training build; default: 128 when that runs the test set on 5%\n"
    "                     fewer vector lanes (batches of 25 or 100: yes); N is cut to the larger\n"
    "                     data split, and N up to the training batch uses the training build\n"
    "  --check-numerics   stop at the first NaN or Inf in the loss, a gradient or a parameter and name\n"
    "                     the epoch, the step and the first tensor that went bad (exit status 1)\n"
    "  -q, --quiet        print only the summary\n"
    "  -h, --help         show this help\n"
    "\n"
    "Ctrl-C stops after the current step (saving the checkpoint with --save) and exits 130.\n";

static const char *const usage_pairs =
    "usage: snrun pairs MODEL.yaml|MODEL.bc --out DIR [options]\n"
    "\n"
    "Writes the data sets snrun draws for the model as uncompressed IDX files DIR/<split>-<stream>.idx\n"
    "(float32 as IDX type 0x0D, int32 as 0x0C; e.g. test-pair.idx [n, 2, 14, 14], test-target.idx [n],\n"
    "test-classes.idx [n, 2]), standardised exactly as the model sees them, and DIR/stats.txt (seed,\n"
    "standardize, mean, std, sizes). With --checkpoint: the test\n"
    "set `snrun eval` scores that checkpoint on (its seed, its stored mean and std). Without: the\n"
    "training and test sets of `snrun train --seed N`.\n"
    "\n"
    "options:\n"
    "  --out DIR          output directory (created if missing)\n"
    "  --checkpoint PATH  the test set of this checkpoint\n"
    "  --seed N           run seed (default: the checkpoint's, else the model's training.seed)\n"
    "  --set NAME=VALUE   override a switch of the model (repeatable; YAML models only)\n"
    "  --data DIR         directory of MNIST-format IDX files (default: the model's, else bundled)\n"
    "  -h, --help         show this help\n";

static const char *const usage_eval =
    "usage: snrun eval MODEL.yaml --checkpoint PATH [options]\n"
    "\n"
    "Loads a checkpoint written by `snrun train --save` and prints the loss and accuracy on the\n"
    "test set drawn with the checkpoint's seed, standardised with the stored statistics. The\n"
    "checkpoint's switch values apply unless --set changes them.\n"
    "\n"
    "options:\n"
    "  --checkpoint PATH  the checkpoint (required)\n"
    "  --set NAME=VALUE   override a switch of the model (repeatable)\n"
    "  --seed N           draw the test set with this seed instead of the checkpoint's\n"
    "  --data DIR         directory of MNIST-format IDX files (default: the model's, else bundled)\n"
    "  --backend NAME     jit (compiled code, default: its machine code comes from the compiled-module\n"
    "                     cache after the first run) or ref (the reference executor)\n"
    "  --no-cache         compile afresh: neither read nor write the compiled-module cache (jit)\n"
    "  -h, --help         show this help\n";

/* ---- study (runtime/study*.c, docs/study.md) ---- */
static const char *const usage_study =
    "usage: snrun study MODEL.yaml [options]\n"
    "       snrun study --resume DIR [options]\n"
    "\n"
    "Trains the model for R rounds under every setting of its switches (default: all combinations\n"
    "of its true/false switches) and prints the table of the final test accuracy per setting (mean\n"
    "\xc2\xb1 std over rounds, min, max, relative to the setting with every switch off, time per round).\n"
    "Round r of every setting uses the same seed, derived from the study seed and r: the same data\n"
    "draws and initialisation for every setting. Writes results.csv, results.json, plots (gnuplot)\n"
    "and the best checkpoint per setting into the output folder.\n"
    "\n"
    "options:\n"
    "  --rounds N         rounds per setting (default 20)\n"
    "  --grid NAME=V1,V2  the values of one switch (repeatable; default every true/false switch)\n"
    "  --set NAME=VALUE   a fixed switch value for every setting (repeatable)\n"
    "  --seed N           study seed (default: the model's training.seed)\n"
    "  --epochs N         epochs per round (default: the model's training.epochs)\n"
    "  --data DIR         directory of MNIST-format IDX files (default: the model's, else bundled)\n"
    "  --out DIR          output folder (default: runs/<model>-<YYYYmmdd-HHMMSS>)\n"
    "  --resume DIR       continue the study in DIR; other options default to the study's and\n"
    "                     must match it when given\n"
    "  --jobs N           worker processes running rounds side by side (default: one per core)\n"
    "  --threads N        threads per worker (default: cores / jobs)\n"
    "  --backend NAME     jit (compiled code, default) or ref (the reference executor)\n"
    "  --no-plots         do not run gnuplot\n"
    "  --eval-train WHEN  evaluate the training set every epoch, at the end or never (default; the\n"
    "                     table and the curves use the test set, evaluated every epoch)\n"
    "  --eval-batch N     evaluate on the forward graph built for N rows (as snrun train; 0: on the\n"
    "                     training build; default: 128 when that saves 5% of the vector lanes)\n"
    "  --no-cache         workers compile without the compiled-module cache they otherwise share\n"
    "  --no-tune          ignore this machine's tuning cache (written by snrun train --tune with the\n"
    "                     workers' --threads, 1 by default): every kernel on its default schedule\n"
    "  --no-progress      plain lines instead of a progress bar on a terminal\n"
    "  -q, --quiet        print only the table\n"
    "  -h, --help         show this help\n"
    "\n"
    "Ctrl-C finishes the running rounds and stops (a second Ctrl-C stops at once); finished rounds\n"
    "are kept and `snrun study --resume DIR` continues. Exit status 130 when interrupted.\n";
/* ---- end study ---- */

typedef struct {
  const char *cmd, *model, *data, *save, *checkpoint, *backend, *out, *init;
  snc_override sets[SNC_CLI_MAX_SETS];
  int nsets, quiet, has_seed, epochs, threads;
  int dump_graph, dump_llvm, dump_asm, profile;
  int check_numerics; /* train --check-numerics */
  int tune, no_tune;  /* train --tune, --no-tune */
  int no_cache;       /* train --no-cache */
  int eval_train;     /* train --eval-train: SNC_EVAL_TRAIN_* */
  int eval_batch;     /* train --eval-batch: rows of the evaluation build, 0 none, -1 automatic */
  double t_start;     /* when run() began: the "whole" time of train */
  uint64_t seed;
} cli;

static double now_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static volatile sig_atomic_t stop_flag;
static void on_sigint(int sig) {
  (void)sig;
  stop_flag = 1;
}

static int parse_u64(const char *s, uint64_t *v) {
  char *end;
  if (!s || !*s || *s == '-' || *s == '+' || *s == ' ') return -1;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 10);
  if (*end || errno) return -1;
  *v = x;
  return 0;
}

/* Returns -1 to continue, else the exit status. */
static int parse(int argc, char **argv, cli *c) {
  int train = !strcmp(c->cmd, "train"), pairs = !strcmp(c->cmd, "pairs");
  const char *usage = train ? usage_train : pairs ? usage_pairs : usage_eval;
  char verb[32];
  snprintf(verb, sizeof verb, "snrun %s", c->cmd);
  for (int i = 0; i < argc; i++) {
    char *a = argv[i], *val = NULL;
    const char *opts[] = {"--set", "--seed", "--epochs", "--data", "--save", "--checkpoint", "--backend", "--threads", "--out", "--eval-train",
                          "--eval-batch", "--init", NULL};
    const char *opt = NULL;
    if (snc_cli_option(verb, opts, argc, argv, &i, &opt, &val)) return 2;
    if (opt && !train && (!strcmp(opt, "--epochs") || !strcmp(opt, "--save") || !strcmp(opt, "--threads") ||
                          !strcmp(opt, "--eval-train") || !strcmp(opt, "--eval-batch") || !strcmp(opt, "--init")))
      opt = NULL; /* train-only options are unknown to eval */
    if (opt && train && !strcmp(opt, "--checkpoint")) opt = NULL;
    if (opt && !pairs && !strcmp(opt, "--out")) opt = NULL;
    if (opt && pairs && !strcmp(opt, "--backend")) opt = NULL;
    if (!opt) {
      if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
        fputs(usage, stdout);
        return 0;
      }
      if (train && (!strcmp(a, "-q") || !strcmp(a, "--quiet"))) {
        c->quiet = 1;
        continue;
      }
      int *flag = !train ? NULL : !strcmp(a, "--dump-graph") ? &c->dump_graph : !strcmp(a, "--dump-llvm") ? &c->dump_llvm
                                : !strcmp(a, "--dump-asm") ? &c->dump_asm : !strcmp(a, "--profile") ? &c->profile
                                : !strcmp(a, "--check-numerics") ? &c->check_numerics : !strcmp(a, "--tune") ? &c->tune
                                : !strcmp(a, "--no-tune") ? &c->no_tune : !strcmp(a, "--no-cache") ? &c->no_cache : NULL;
      if (!flag && !pairs && !strcmp(a, "--no-cache")) flag = &c->no_cache; /* eval too */
      if (flag) {
        *flag = 1;
        continue;
      }
      if (a[0] == '-' && a[1]) {
        fprintf(stderr, "snrun %s: unknown option '%s' (see snrun %s --help)\n", c->cmd, a, c->cmd);
        return 2;
      }
      if (c->model) {
        fprintf(stderr, "snrun %s: one model file at a time ('%s' and '%s')\n", c->cmd, c->model, a);
        return 2;
      }
      c->model = a;
      continue;
    }
    if (!strcmp(opt, "--set")) {
      if (snc_cli_add_set(verb, val, c->sets, &c->nsets, SNC_CLI_MAX_SETS)) return 2;
    } else if (!strcmp(opt, "--seed")) {
      if (parse_u64(val, &c->seed))
        return fprintf(stderr, "snrun %s: --seed takes a non-negative integer, got '%s'\n", c->cmd, val), 2;
      c->has_seed = 1;
    } else if (!strcmp(opt, "--epochs")) {
      uint64_t e;
      if (parse_u64(val, &e) || e < 1 || e > 1000000)
        return fprintf(stderr, "snrun %s: --epochs takes an integer from 1 to 1000000, got '%s'\n", c->cmd, val), 2;
      c->epochs = (int)e;
    } else if (!*val) {
      return fprintf(stderr, "snrun %s: %s needs a non-empty value\n", c->cmd, opt), 2;
    } else if (!strcmp(opt, "--data")) {
      c->data = val;
    } else if (!strcmp(opt, "--save")) {
      c->save = val;
    } else if (!strcmp(opt, "--init")) {
      c->init = val;
    } else if (!strcmp(opt, "--checkpoint")) {
      c->checkpoint = val;
    } else if (!strcmp(opt, "--out")) {
      c->out = val;
    } else if (!strcmp(opt, "--backend")) {
      if (strcmp(val, "ref") && strcmp(val, "jit"))
        return fprintf(stderr, "snrun %s: unknown backend '%s' (known: jit, ref)\n", c->cmd, val), 2;
      c->backend = val;
    } else if (!strcmp(opt, "--eval-train")) {
      if (snc_eval_train_parse(val, &c->eval_train) != 0)
        return fprintf(stderr, "snrun %s: --eval-train takes every, end or never, got '%s'\n", c->cmd, val), 2;
    } else if (!strcmp(opt, "--eval-batch")) {
      uint64_t b;
      if (parse_u64(val, &b) || b > 65536)
        return fprintf(stderr, "snrun %s: --eval-batch takes an integer from 0 to 65536, got '%s'\n", c->cmd, val), 2;
      c->eval_batch = (int)b;
    } else if (!strcmp(opt, "--threads")) {
      uint64_t t;
      if (parse_u64(val, &t) || t < 1 || t > 1024)
        return fprintf(stderr, "snrun %s: --threads takes an integer from 1 to 1024, got '%s'\n", c->cmd, val), 2;
      c->threads = (int)t;
    }
  }
  if (!c->model) {
    fprintf(stderr, "snrun %s: which model? %s", c->cmd, usage);
    return 2;
  }
  if (pairs && !c->out) {
    fprintf(stderr, "snrun pairs: --out DIR is required (see snrun pairs --help)\n");
    return 2;
  }
  if (is_module(c->model) && c->nsets) {
    fprintf(stderr, "snrun %s: %s is a compiled module; its switches were fixed by snc compile (no --set)\n", c->cmd,
            c->model);
    return 2;
  }
  if (!train && !pairs && !c->checkpoint) {
    fprintf(stderr, "snrun eval: --checkpoint PATH is required (see snrun eval --help)\n");
    return 2;
  }
  return -1;
}

static int cmd_train(cli *c) {
  snc_error err = {0};
  snc_train_result r = {0};
  snc_backend *be = NULL, *ebe = NULL; /* ebe: the evaluation build, on eg */
  snc_sched_table *sched = NULL;
  snc_train_prefetch *prefetch = NULL; /* the data, drawn during the compile */
  int status = 1;
  snc_graph *g = NULL, *eg = NULL;
  int jit = !strcmp(c->backend, "jit");
  int dp = snc_dist_size() > 1, rank = snc_dist_rank(); /* data-parallel under mpirun */
  int64_t batch = 0;                                    /* dp: the model's batch, split over the ranks */
  if (dp && (is_module(c->model) || c->dump_graph || c->dump_llvm || c->dump_asm || c->profile || c->check_numerics)) {
    if (rank == 0)
      fprintf(stderr, "snrun train: under mpirun (data-parallel) the model must be a YAML file, without --dump-*, "
                      "--profile or --check-numerics\n");
    status = 2;
    goto done;
  }
  if (dp && !c->threads) c->threads = snc_dist_local_threads();
  if (!c->threads) c->threads = omp_get_max_threads(); /* OMP_NUM_THREADS, else the cores: named in the output */
  if (dp && rank > 0) c->quiet = 2; /* rank 0 prints */
  if (is_module(c->model)) { /* a module of snc compile --emit=bc: no YAML, no code generation */
    if (!jit || c->dump_graph || c->dump_llvm || c->dump_asm || c->profile) {
      fprintf(stderr, "snrun train: %s is a compiled module: it runs on the jit backend, without --dump-* or --profile\n",
              c->model);
      status = 2;
      goto done;
    }
    char cdir[4096];
    if (!(be = snc_compiled_backend(c->model, c->threads, c->no_cache ? NULL : snc_jit_cache_default_dir(cdir, sizeof cdir),
                                    &g, &err)))
      goto done;
    if (!c->quiet) printf("loaded %s: model %s from %s, compiled by snc compile\n", c->model, g->name, g->file);
    jit = 2;
  } else if (dp) { /* each rank's code is built for its share of the model's batch */
    snc_graph *whole = snc_model_load(c->model, c->sets, c->nsets, &err);
    if (!whole) goto done;
    batch = whole->batch;
    snc_graph_free(whole);
    int share = (int)((batch + snc_dist_size() - 1) / snc_dist_size());
    if (!(g = snc_model_load_batch(c->model, c->sets, c->nsets, share, &err)) || snc_autodiff(g, 0, &err) != 0) goto done;
  } else if (!(g = snc_model_load(c->model, c->sets, c->nsets, &err)) || snc_autodiff(g, 0, &err) != 0) {
    goto done;
  }
  if ((c->dump_graph || c->dump_llvm || c->dump_asm || c->profile) && !jit) {
    snprintf(err.msg, sizeof err.msg, "snrun train: --dump-* and --profile need --backend jit");
    status = 2;
    fprintf(stderr, "%s\n", err.msg);
    goto done;
  }
  if (!dp) /* the data is drawn on a second thread while the code compiles; snc_train takes it */
    prefetch = snc_train_prefetch_start(g, c->data, c->has_seed ? c->seed : snc_train_defaults(g).seed);
  if (jit == 1) {
    snc_jit_backend_opts jo = {.threads = c->threads, .profile = c->profile, .dump_graph = c->dump_graph ? stdout : NULL,
                               .dump_llvm = c->dump_llvm ? stdout : NULL, .dump_asm = c->dump_asm ? stdout : NULL,
                               .split_step = dp};
    char cdir[4096];
    if (!c->no_cache) jo.cache_dir = snc_jit_cache_default_dir(cdir, sizeof cdir);
    /* kernel schedules: this machine's tuning cache (docs/jit.md, "Schedules"), searched first with --tune */
    char dir[4096];
    if (!(sched = snc_sched_open(snc_jit_cache_default_dir(dir, sizeof dir), !c->no_tune, c->threads, &err))) goto done;
    /* evaluation on the forward graph built for more rows (snc/train.h, "evaluation on a wider build"):
       the training build then leaves its own evaluation out */
    int eb = dp ? 0 : snc_eval_batch(g, 1, c->eval_batch);
    jo.no_eval = eb > 0;
    if (c->tune && snc_sched_tune(g, sched, jo.no_eval, c->quiet ? NULL : stdout, &err) != 0) goto done;
    jo.schedule = snc_sched_choose, jo.schedule_user = sched;
    if (!(be = snc_backend_jit_new(g, &jo, &err))) goto done;
    if (!c->quiet)
      printf("compiled %s: %d kernels, arena %.1f MiB (%.1f MiB without reuse), %.3f s\n", g->name,
             snc_backend_jit_program(be)->nkernels, snc_backend_jit_program(be)->layout.arena_bytes / 1048576.0,
             snc_backend_jit_program(be)->layout.unplanned_bytes / 1048576.0, snc_backend_jit_compile_seconds(be));
    if (eb > 0) {
      jo.split_step = jo.no_eval = 0;
      if (c->tune) { /* the evaluation build's kernels have shapes of their own (more rows, pooling fused) */
        snc_graph *tg = snc_model_load_batch(c->model, c->sets, c->nsets, eb, &err);
        int trc = tg ? snc_sched_tune(tg, sched, 0, c->quiet ? NULL : stdout, &err) : -1;
        snc_graph_free(tg);
        if (trc != 0) goto done;
      }
      if (snc_eval_build_new(c->model, c->sets, c->nsets, eb, &jo, &eg, &ebe, &err) != 0) goto done;
      if (!c->quiet)
        printf("compiled %s for evaluation in batches of %d: %d kernels, arena %.1f MiB, %.3f s\n", g->name, eb,
               snc_backend_jit_program(ebe)->nkernels, snc_backend_jit_program(ebe)->layout.arena_bytes / 1048576.0,
               snc_backend_jit_compile_seconds(ebe));
    }
    int from_cache, from_env, scheduled; /* both builds' shapes */
    snc_sched_counts(sched, &from_cache, &from_env, &scheduled);
    if (!c->quiet && (from_cache || from_env))
      printf("schedules: %d of %d kernel shapes from the tuning cache (%s), %d from SNC_SCHEDULE\n", from_cache, scheduled,
             snc_sched_path(sched), from_env);
  } else if (!jit && !(be = snc_backend_new(c->backend, g, &err))) {
    goto done;
  }
  snc_train_opts o = snc_train_defaults(g);
  if (c->has_seed) o.seed = c->seed;
  if (c->epochs) o.epochs = c->epochs;
  o.data_dir = c->data;
  o.save_path = c->save;
  o.init_path = c->init;
  o.backend_name = c->backend;
  o.quiet = c->quiet;
  o.progress = isatty(STDOUT_FILENO) && !dp; /* under mpirun stdout is the launcher's forwarding */
  o.stop = &stop_flag;
  o.check_numerics = c->check_numerics;
  o.data_parallel = dp;
  o.batch = batch;
  o.eval_train = c->eval_train;
  o.eval_graph = eg, o.eval_backend = ebe;
  o.prefetch = prefetch;
  if (dp && rank == 0 && !c->quiet)
    printf("data-parallel over %d MPI ranks (%s), %d thread%s each; every batch of %lld split over the ranks "
           "(code built for %d rows)\n", snc_dist_size(), snc_dist_library(), c->threads, c->threads == 1 ? "" : "s",
           (long long)batch, g->batch);
  struct sigaction sa = {0};
  sa.sa_handler = on_sigint;
  sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C ends the process at once */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  if (snc_train(g, be, &o, &r, &err) != 0) goto done;
  if (c->quiet == 1 && r.nepochs && g->noutputs)
    printf("%s: test accuracy %.2f%% (%s) after %d epoch%s, %.1f s\n", g->name, 100 * r.final_acc, g->outputs[0].name,
           r.nepochs, r.nepochs == 1 ? "" : "s", r.seconds);
  double steps = 0;
  for (int e = 0; e < r.nepochs; e++) steps += r.epoch[e].step_seconds;
  if (c->quiet < 2) { /* the parts of the whole command (bench/train_bench.sh reads this line) */
    const char *cached = jit == 1 ? snc_jit_cache_status_name(snc_backend_jit_timing(be)->cache_status) : "";
    double compile = (jit ? snc_backend_jit_compile_seconds(be) : 0.0) + (ebe ? snc_backend_jit_compile_seconds(ebe) : 0.0);
    printf("time: training steps %.3f s, compile %.3f s%s%s%s, evaluation %.3f s, data %.3f s, whole %.3f s "
           "(backend %s, %d thread%s)\n", steps, compile, *cached ? " (" : "",
           cached, *cached ? ")" : "", r.eval_seconds, r.data_seconds, now_seconds() - c->t_start, c->backend, c->threads,
           c->threads == 1 ? "" : "s");
  }
  for (int k = 0; k < 2 && c->profile && jit == 1; k++) { /* where the compile time went (docs/jit.md) */
    snc_backend *b = k ? ebe : be;
    if (!b) continue;
    const snc_jit_timing *t = snc_backend_jit_timing(b);
    printf("compile%s: graph to LLVM IR %.3f s, optimisation %.3f s, machine code %.3f s, linking %.3f s, cache "
           "%.3f s (%d thread%s)\n", k ? " (evaluation build)" : "", snc_backend_jit_program(b)->build_seconds,
           t->optimize, t->codegen, t->link, t->cache, t->threads, t->threads == 1 ? "" : "s");
  }
  if (c->profile) {
    snc_profile_print_region(snc_backend_jit_program(be), 0, stdout, 25);
    snc_profile_print_region(snc_backend_jit_program(ebe ? ebe : be), 1, stdout, 25);
  }
  status = 0;
  if (stop_flag || r.interrupted) {
    if (c->quiet == 2) /* another rank: rank 0 says it */
      ;
    else if (c->save && r.saved)
      fprintf(stderr, "snrun: interrupted after step %lld (%d epochs done); checkpoint saved to %s\n",
              (long long)r.steps, r.nepochs, c->save);
    else
      fprintf(stderr, "snrun: interrupted after step %lld (%d epochs done); nothing saved (no --save)\n",
              (long long)r.steps, r.nepochs);
    status = 130;
  }
done:
  if (status == 1 && rank > 0) fprintf(stderr, "[rank %d] %s\n", rank, err.msg);
  else if (status == 1) fprintf(stderr, "%s\n", err.msg);
  snc_train_result_free(&r);
  snc_train_prefetch_free(prefetch); /* before g: its thread reads g */
  if (ebe) ebe->free(ebe);
  snc_graph_free(eg);
  if (be) be->free(be);
  snc_sched_free(sched);
  snc_graph_free(g);
  return status;
}

/* `snrun eval MODEL.bc`: as snc_eval_checkpoint, on the compiled module (switches fixed at compile time) */
static int eval_compiled(cli *c, snc_eval_result *r, snc_graph **g, snc_error *err) {
  snc_train_data d = {0};
  snc_run_info info;
  char cdir[4096];
  snc_backend *be = snc_compiled_backend(c->model, c->threads, c->no_cache ? NULL : snc_jit_cache_default_dir(cdir, sizeof cdir),
                                         g, err);
  int rc = -1;
  if (!be || snc_checkpoint_load(c->checkpoint, *g, be, &info, err)) goto cleanup;
  (*g)->data.standardize = info.standardized;
  float ms[2] = {info.mean, info.std};
  if (snc_train_data_load(*g, c->data, c->has_seed ? c->seed : info.seed, ms, &d, err) != 0) goto cleanup;
  snc_evaluate(*g, be, &d.test, 0, r);
  rc = 0;
cleanup:
  snc_train_data_free(&d);
  if (be) be->free(be);
  if (rc) snc_graph_free(*g), *g = NULL;
  return rc;
}

static int cmd_eval(cli *c) {
  snc_error err = {0};
  snc_eval_result r;
  snc_graph *g = NULL;
  /* the JIT as snrun train builds it: the compiled-module cache and this machine's kernel schedules, so
     the checkpoint scores what training reported for it */
  char cdir[4096], sdir[4096];
  snc_jit_backend_opts jo = {.cache_dir = c->no_cache ? NULL : snc_jit_cache_default_dir(cdir, sizeof cdir)};
  snc_sched_table *sched = NULL;
  int jit = !strcmp(c->backend, "jit"), rc = -1;
  if (jit && !is_module(c->model) && !(sched = snc_sched_open(snc_jit_cache_default_dir(sdir, sizeof sdir), 1, 0, &err)))
    goto done;
  jo.schedule = snc_sched_choose, jo.schedule_user = sched;
  rc = is_module(c->model) ? eval_compiled(c, &r, &g, &err)
                           : snc_eval_checkpoint(c->model, c->sets, c->nsets, c->checkpoint, c->data,
                                                 c->has_seed ? &c->seed : NULL, jit ? &jo : NULL, &r, &g, &err);
done:
  snc_sched_free(sched);
  if (rc != 0) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  printf("%s (%s) from %s:", g->name, g->file, c->checkpoint);
  for (int i = 0; i < g->nswitches; i++) {
    const snc_switch *s = &g->switches[i];
    if (s->is_bool)
      printf(" %s=%s", s->name, s->value ? "true" : "false");
    else
      printf(" %s=%g", s->name, s->value);
  }
  printf("%s%lld test samples\n", g->nswitches ? "; " : " ", (long long)r.n);
  printf("test loss %.4f", r.loss);
  for (int k = 0; k < r.noutputs; k++) printf("  %s %.2f%%", g->outputs[k].name, 100 * r.acc[k]);
  printf("\n");
  snc_graph_free(g);
  return 0;
}

/* reads the run seed and standardisation from a checkpoint's metadata */
static int ckpt_run(const char *path, uint64_t *seed, int *standardized, float *ms, snc_error *err) {
  snc_ckpt *ck = snc_ckpt_read(path, err);
  if (!ck) return -1;
  const char *s = snc_ckpt_meta(ck, "seed"), *st = snc_ckpt_meta(ck, "standardize");
  const char *mean = snc_ckpt_meta(ck, "mean"), *sd = snc_ckpt_meta(ck, "std");
  int rc = 0;
  *standardized = st && !strcmp(st, "true");
  if (!s || parse_u64(s, seed)) rc = snc_errorf(err, "%s: metadata 'seed' is missing or not a number", path);
  else if (*standardized && (!mean || !sd))
    rc = snc_errorf(err, "%s: metadata 'mean'/'std' missing for a standardised model", path);
  if (!rc && *standardized) ms[0] = strtof(mean, NULL), ms[1] = strtof(sd, NULL);
  snc_ckpt_free(ck);
  return rc;
}

static int cmd_pairs(cli *c) {
  snc_error err = {0};
  snc_graph *g = NULL;
  snc_train_data d = {0};
  snc_backend *be = NULL;
  int status = 1, standardized = 0;
  uint64_t seed = 0;
  float ms[2] = {0, 1};
  if (is_module(c->model)) {
    snc_program *p = snc_program_load_bitcode(c->model, &g, &err);
    if (!p) goto done;
    snc_program_free(p); /* only the graph is needed */
  } else if (!(g = snc_model_load(c->model, c->sets, c->nsets, &err))) {
    goto done;
  }
  seed = g->train.seed;
  if (c->checkpoint && ckpt_run(c->checkpoint, &seed, &standardized, ms, &err)) goto done;
  if (c->has_seed) seed = c->seed;
  if (c->checkpoint) g->data.standardize = standardized;
  if (mkdir(c->out, 0777) != 0 && errno != EEXIST) {
    snprintf(err.msg, sizeof err.msg, "%s: cannot create: %s", c->out, strerror(errno));
    goto done;
  }
  if (snc_train_data_load(g, c->data, seed, c->checkpoint ? ms : NULL, &d, &err) != 0) goto done;
  if (snc_data_export(g, &d, c->out, &err) != 0) goto done;
  { /* the run the sets belong to, as checkpoint metadata wants it (examples/train_in_c.c reads it) */
    char path[4096];
    snprintf(path, sizeof path, "%s/stats.txt", c->out);
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "seed %llu\nstandardize %s\nmean %.9g\nstd %.9g\ntrain %lld\ntest %lld\n",
                      (unsigned long long)seed, d.standardized ? "true" : "false", d.mean, d.std, (long long)d.train.n,
                      (long long)d.test.n) < 0 || fclose(f) != 0) {
      snprintf(err.msg, sizeof err.msg, "%.900s: cannot write", path);
      goto done;
    }
  }
  printf("%s: %s%lld test samples of %s (seed %llu)", c->out, d.train.n ? "training and " : "", (long long)d.test.n,
         g->name, (unsigned long long)seed);
  if (d.standardized) printf(", standardised with mean %.9g std %.9g", d.mean, d.std);
  printf("\n");
  status = 0;
done:
  if (status) fprintf(stderr, "%s\n", err.msg);
  snc_train_data_free(&d);
  if (be) be->free(be);
  snc_graph_free(g);
  return status;
}

static int run(int argc, char **argv, const char *cmd) {
  if (!strcmp(cmd, "infer")) return snc_cli_infer(argc - 2, argv + 2); /* tools/cli/infer_cli.c */
  if (!strcmp(cmd, "study")) return snc_study_main(argc - 2, argv + 2, usage_study); /* study */
  if (strcmp(cmd, "train") && strcmp(cmd, "eval") && strcmp(cmd, "pairs")) {
    fprintf(stderr, "snrun: unknown command '%s' (commands: train, eval, study, pairs, infer; see snrun --help)\n", cmd);
    return 2;
  }
  cli c = {.cmd = cmd, .backend = "jit", .t_start = now_seconds(), .eval_train = SNC_EVAL_TRAIN_END,
           .eval_batch = -1};
  int st = parse(argc - 2, argv + 2, &c);
  if (st >= 0) return st;
  if (strcmp(cmd, "train") && snc_dist_size() > 1) {
    if (snc_dist_rank() == 0)
      fprintf(stderr, "snrun %s: runs in one process; start it without mpirun (train and study use MPI)\n", cmd);
    return 2;
  }
  return !strcmp(cmd, "train") ? cmd_train(&c) : !strcmp(cmd, "pairs") ? cmd_pairs(&c) : cmd_eval(&c);
}

#ifdef __GLIBC__
/* The generated kernels keep scratch on their thread's stack (a Winograd convolution up to 512 KiB,
 * compiler/codegen/emit_wino.c): give every thread at least 8 MiB whatever the shell's soft limit.
 * The main thread's stack grows up to the limit as it stands at the fault; threads created later
 * (OpenMP's, the study's workers) take the default attributes' size. A hard limit below that stays. */
static void ensure_stacks(void) {
  const size_t want = (size_t)8 << 20;
  struct rlimit r;
  if (getrlimit(RLIMIT_STACK, &r) == 0 && r.rlim_cur != RLIM_INFINITY && r.rlim_cur < want) {
    r.rlim_cur = r.rlim_max == RLIM_INFINITY || r.rlim_max >= want ? want : r.rlim_max;
    setrlimit(RLIMIT_STACK, &r);
  }
  pthread_attr_t a;
  size_t have = 0;
  if (pthread_getattr_default_np(&a) != 0) return;
  if (pthread_attr_getstacksize(&a, &have) == 0 && have < want && pthread_attr_setstacksize(&a, want) == 0) pthread_setattr_default_np(&a);
  pthread_attr_destroy(&a);
}
#endif

int main(int argc, char **argv) {
#ifdef __GLIBC__
  ensure_stacks();
  /* Keep freed memory in the heap instead of unmapping it: on a virtual machine the first touch of each
   * fresh page is a fault costing microseconds, and the memory a compile frees is what the data and the
   * arena reuse next (docs/jit.md, "Where the rest of a run goes"). */
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
  if (argc < 2) {
    fprintf(stderr, usage_main, "");
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
    printf(usage_main, snc_dist_compiled() ? "This snrun is built with MPI."
                                           : "This snrun is built without MPI: install Debian's libopenmpi-dev and\n"
                                             "openmpi-bin (tools/deps.sh does) and rebuild; cmake finds it.");
    return 0;
  }
  if (!strcmp(cmd, "--version")) {
    puts("snrun 0.1.0");
    return 0;
  }
  snc_error err = {0};
  if (snc_dist_init(&argc, &argv, &err) != 0) {
    fprintf(stderr, "snrun: %s\n", err.msg);
    return 1;
  }
  int st = run(argc, argv, cmd);
  /* a rank that failed alone would leave the others waiting in a collective: end them all */
  if (st == 1 && snc_dist_size() > 1) snc_dist_abort(1);
  snc_dist_finalize();
  return st;
}
