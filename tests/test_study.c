/* `snrun study` on a tiny siamese model (few filters, 200 pairs, 2-3 epochs, jit backend): the
 * table's statistics on known numbers, a reused backend starting each round afresh, a study's
 * results.csv/json holding every round and epoch, kill -9 in the middle and --resume giving exactly
 * the results of an uninterrupted study, a resume with other parameters refused, and the CSV and
 * the message without gnuplot on PATH. */
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snc/autodiff.h"
#include "snc/backend.h"
#include "snc/study.h"
#include "snc/train.h"
#include "testutil.h"
#include "runutil.h"

static char tmpdir[256], model[512];

static const char *const tiny_yaml =
    "model: tiny_siamese\n"
    "switches:\n"
    "  weight_sharing: true\n"
    "  aux_loss: true\n"
    "inputs:\n"
    "  pair:    {shape: [2, 14, 14]}\n"
    "  target:  {shape: [], dtype: int32}\n"
    "  classes: {shape: [2], dtype: int32}\n"
    "networks:\n"
    "  branch:\n"
    "    layers:\n"
    "      - {name: conv1, conv2d: {filters: 4, kernel: 3}}\n"
    "      - dropout: {p: 0.3}\n"
    "      - tanh\n"
    "      - maxpool2d: {kernel: 2}\n"
    "      - flatten\n"
    "      - {name: fc1, linear: {units: 16}}\n"
    "      - tanh\n"
    "      - {name: fc2, linear: {units: 10}}\n"
    "graph:\n"
    "  - {name: first,  select: {index: 0}, from: pair}\n"
    "  - {name: second, select: {index: 1}, from: pair}\n"
    "  - {name: digit_a, call: branch, from: first}\n"
    "  - {name: digit_b, call: branch, from: second, share: {with: digit_a, if: weight_sharing}}\n"
    "  - {name: both, concat: {axis: 1}, from: [digit_a, digit_b]}\n"
    "  - {name: head, linear: {units: 2}}\n"
    "  - {name: compare, softmax}\n"
    "  - {name: prob_a, softmax, from: digit_a}\n"
    "  - {name: target_1h, one_hot: {classes: 2}, from: target}\n"
    "  - {name: class_a, select: {index: 0, keepdim: false}, from: classes}\n"
    "  - {name: class_a_1h, one_hot: {classes: 10}, from: class_a}\n"
    "losses:\n"
    "  - {name: compare_loss, bce, from: [compare, target_1h]}\n"
    "  - {name: aux_a, bce, from: [prob_a, class_a_1h], if: aux_loss}\n"
    "outputs:\n"
    "  compare: {from: compare, target: target}\n"
    "  digit_a: {from: prob_a, target: class_a}\n"
    "training: {optimizer: adam, lr: 0.005, epochs: 2, batch_size: 50, seed: 3}\n"
    "data: {generator: mnist_pairs, train: 200, test: 100, standardize: true}\n";

/* Runs snrun with args (a NULL-terminated list) and env PATH (NULL: inherited); output to log. */
static int snrun(const char *const *args, const char *path_env, const char *log) {
  char bin[512];
  snprintf(bin, sizeof bin, "%s/snrun", SNC_BINARY_DIR);
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(log ? log : "/dev/null", "w", stdout)) _exit(126);
    dup2(1, 2);
    if (path_env) setenv("PATH", path_env, 1);
    const char *argv[40] = {bin};
    int n = 1;
    for (; args[n - 1] && n < 39; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- statistics ------------------------------------------------------------------------------------ */

static void test_stats(void) {
  snc_study_stat s;
  double x[] = {0.78, 0.80, 0.76, 0.82};
  snc_study_stat_of(x, 4, &s);
  CU_ASSERT_EQUAL(s.n, 4);
  CU_ASSERT_DOUBLE_EQUAL(s.mean, 0.79, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(s.std, sqrt(0.002 / 3), 1e-12); /* sample std, n - 1 */
  CU_ASSERT_DOUBLE_EQUAL(s.min, 0.76, 0);
  CU_ASSERT_DOUBLE_EQUAL(s.max, 0.82, 0);
  double one[] = {0.5};
  snc_study_stat_of(one, 1, &s);
  CU_ASSERT_DOUBLE_EQUAL(s.mean, 0.5, 0);
  CU_ASSERT_DOUBLE_EQUAL(s.std, 0, 0);
  snc_study_stat_of(NULL, 0, &s);
  CU_ASSERT_TRUE(isnan(s.mean));
  double same[] = {2, 2, 2};
  snc_study_stat_of(same, 3, &s);
  CU_ASSERT_DOUBLE_EQUAL(s.std, 0, 0);
  /* round seeds: stable, distinct per round */
  CU_ASSERT_EQUAL(snc_study_round_seed(1, 0), snc_study_round_seed(1, 0));
  CU_ASSERT_NOT_EQUAL(snc_study_round_seed(1, 0), snc_study_round_seed(1, 1));
  CU_ASSERT_NOT_EQUAL(snc_study_round_seed(1, 0), snc_study_round_seed(2, 0));
}

/* A worker reuses one compiled backend for many rounds: each snc_train must start from fresh
 * parameters and optimizer state, so a reused backend gives the numbers of a new one. */
static void test_backend_reuse(void) {
  snc_error err = {0};
  snc_graph *g = snc_model_load(model, NULL, 0, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT_EQUAL_FATAL(snc_autodiff(g, 0, &err), 0);
  snc_jit_backend_opts jo = {.threads = 1};
  snc_backend *a = snc_backend_jit_new(g, &jo, &err), *b = snc_backend_jit_new(g, &jo, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  snc_train_opts o = snc_train_defaults(g);
  o.quiet = 1;
  snc_train_result r1 = {0}, r2 = {0}, r3 = {0};
  o.seed = 11;
  CU_ASSERT_EQUAL(snc_train(g, a, &o, &r1, &err), 0);
  o.seed = 12;
  CU_ASSERT_EQUAL(snc_train(g, a, &o, &r2, &err), 0); /* the reused backend, another seed */
  o.seed = 12;
  CU_ASSERT_EQUAL(snc_train(g, b, &o, &r3, &err), 0); /* a fresh backend, the same seed */
  CU_ASSERT_EQUAL(r2.nepochs, r3.nepochs);
  for (int e = 0; e < r2.nepochs && e < r3.nepochs; e++) {
    CU_ASSERT_EQUAL(r2.epoch[e].step_loss, r3.epoch[e].step_loss);
    CU_ASSERT_EQUAL(r2.epoch[e].test.loss, r3.epoch[e].test.loss);
    CU_ASSERT_EQUAL(r2.epoch[e].test.acc[0], r3.epoch[e].test.acc[0]);
  }
  snc_train_result_free(&r1);
  snc_train_result_free(&r2);
  snc_train_result_free(&r3);
  a->free(a);
  b->free(b);
  snc_graph_free(g);
}

/* ---- a study in process ---------------------------------------------------------------------------- */

static void test_study_outputs(void) {
  char out[512];
  snprintf(out, sizeof out, "%s/study_a", tmpdir);
  snc_study_opts o = snc_study_defaults();
  o.model = model;
  o.rounds = 3;
  o.jobs = 2;
  o.quiet = 1;
  o.plots = 0;
  o.out = out;
  o.grid[o.ngrid++] = "aux_loss=false,true"; /* weight_sharing stays true */
  snc_error err = {0};
  fflush(stdout);
  CU_ASSERT_EQUAL_FATAL(snc_study_run(&o, &err), 0);
  char path[600];
  snprintf(path, sizeof path, "%s/results.csv", out);
  char *csv = slurp(path);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  CU_ASSERT_EQUAL(count_lines(csv, "\"none\","), 3 * 2);       /* 3 rounds x 2 epochs */
  CU_ASSERT_EQUAL(count_lines(csv, "\"aux_loss\","), 3 * 2);
  CU_ASSERT_EQUAL(count_lines(csv, "setting,aux_loss,round,seed,epoch,step_loss,train_loss,train_acc_compare,"), 1);
  /* round r has the same seed in every setting */
  char seed[64];
  snprintf(seed, sizeof seed, ",%llu,", (unsigned long long)snc_study_round_seed(3, 1));
  int same = 0;
  for (char *p = csv; (p = strstr(p, seed)); p++) same++;
  CU_ASSERT_EQUAL(same, 2 * 2);
  free(csv);
  snprintf(path, sizeof path, "%s/results.json", out);
  char *js = slurp(path);
  cJSON *root = cJSON_Parse(js);
  CU_ASSERT_PTR_NOT_NULL_FATAL(root);
  CU_ASSERT_EQUAL(cJSON_GetObjectItem(root, "rounds")->valueint, 3);
  CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(root, "results")), 6);
  cJSON *table = cJSON_GetObjectItem(root, "table");
  CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(table), 2);
  /* the table's mean is the mean of the rounds' final accuracies */
  for (int k = 0; k < 2; k++) {
    cJSON *row = cJSON_GetArrayItem(table, k);
    const char *label = cJSON_GetObjectItem(row, "setting")->valuestring;
    double acc[3];
    int n = 0;
    cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(root, "results")) {
      if (strcmp(cJSON_GetObjectItem(r, "setting")->valuestring, label)) continue;
      cJSON *eps = cJSON_GetObjectItem(r, "epochs");
      CU_ASSERT_EQUAL(cJSON_GetArraySize(eps), 2);
      if (n < 3) acc[n++] = cJSON_GetObjectItem(r, "final_test_acc")->valuedouble;
    }
    CU_ASSERT_EQUAL_FATAL(n, 3);
    snc_study_stat st;
    snc_study_stat_of(acc, n, &st);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(row, "mean")->valuedouble, st.mean, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(row, "std")->valuedouble, st.std, 1e-12);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(row, "rounds_done")->valueint, 3);
    /* the best checkpoint exists */
    struct stat sb;
    CU_ASSERT_EQUAL(stat(cJSON_GetObjectItem(row, "best_checkpoint")->valuestring, &sb), 0);
  }
  CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(root, "reference")->valuestring, "none");
  cJSON_Delete(root);
  free(js);
  /* the same folder again without --resume is refused */
  CU_ASSERT_EQUAL(snc_study_run(&o, &err), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "--resume"));
}

/* --eval-train: by default no round evaluates its training set (empty CSV fields, JSON nulls);
 * --eval-train end adds the last epoch's, --no-cache compiles afresh, --eval-batch 128 evaluates on a
 * wider build instead of the training build; the table is the same to the bit */
static void test_eval_train(void) {
  char out[4][512], path[600];
  double mean[4][2];
  for (int v = 0; v < 4; v++) {
    snprintf(out[v], sizeof out[v], "%s/study_eval_%d", tmpdir, v);
    snc_study_opts o = snc_study_defaults();
    CU_ASSERT_EQUAL(o.eval_train, SNC_EVAL_TRAIN_NEVER);
    o.model = model, o.rounds = 2, o.jobs = 2, o.quiet = 1, o.plots = 0, o.out = out[v];
    o.grid[o.ngrid++] = "aux_loss=false,true";
    if (v == 1) o.eval_train = SNC_EVAL_TRAIN_END;
    if (v == 2) o.no_cache = 1;
    CU_ASSERT_EQUAL(o.eval_batch, -1);
    if (v == 3) o.eval_batch = 128; /* the automatic choice builds none here (100 samples: 2 calls of 64 lanes) */
    snc_error err = {0};
    fflush(stdout);
    CU_ASSERT_EQUAL_FATAL(snc_study_run(&o, &err), 0);
    snprintf(path, sizeof path, "%s/results.csv", out[v]);
    char *csv = slurp(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
    /* "none",false,1,<seed>,<epoch>,<step_loss>,<train_loss>,<train_acc...>,<test_loss>,...: 2 epochs per round */
    int empty = 0, full = 0;
    for (char *line = strchr(csv, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
      char *f = line + 1;
      for (int comma = 0; comma < 6 && f; comma++) f = strchr(f + 1, ',');
      if (f && f[1] == ',') empty++; /* train_loss (and the accuracies after it) empty */
      else if (f && f[1] != ',') full++;
    }
    CU_ASSERT_EQUAL(empty, v == 1 ? 4 : 8); /* 2 settings x 2 rounds x 2 epochs */
    CU_ASSERT_EQUAL(full, v == 1 ? 4 : 0);
    free(csv);
    snprintf(path, sizeof path, "%s/results.json", out[v]);
    char *js = slurp(path);
    cJSON *root = cJSON_Parse(js);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    cJSON *table = cJSON_GetObjectItem(root, "table");
    for (int k = 0; k < 2; k++) mean[v][k] = cJSON_GetObjectItem(cJSON_GetArrayItem(table, k), "mean")->valuedouble;
    cJSON *ep = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "results"), 0), "epochs"), 0);
    CU_ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(ep, "train_loss")));
    cJSON_Delete(root);
    free(js);
  }
  CU_ASSERT_EQUAL(memcmp(mean[0], mean[1], sizeof mean[0]), 0);
  CU_ASSERT_EQUAL(memcmp(mean[0], mean[2], sizeof mean[0]), 0);
  CU_ASSERT_EQUAL(memcmp(mean[0], mean[3], sizeof mean[0]), 0);
}

/* ---- kill -9 and resume ------------------------------------------------------------------------------ */

static void test_kill_and_resume(void) {
  char a[512], b[512], journal[600], bin[512];
  snprintf(a, sizeof a, "%s/study_killed", tmpdir);
  snprintf(b, sizeof b, "%s/study_whole", tmpdir);
  snprintf(journal, sizeof journal, "%s/journal", a);
  snprintf(bin, sizeof bin, "%s/snrun", SNC_BINARY_DIR);
  const int total = 2 * 12;
  pid_t pid = fork();
  CU_ASSERT_TRUE_FATAL(pid >= 0);
  if (pid == 0) {
    if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(126);
    execl(bin, bin, "study", model, "--rounds", "12", "--epochs", "3", "--grid", "aux_loss=false,true", "--jobs", "2",
          "--out", a, "--no-plots", (char *)NULL);
    _exit(127);
  }
  int at_kill = 0;
  for (int i = 0; i < 20000; i++) { /* until 5 rounds are journaled (at most 40 s) */
    char *j = slurp(journal);
    at_kill = count_lines(j, "round ");
    free(j);
    if (at_kill >= 5) break;
    usleep(2000);
  }
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  CU_ASSERT_TRUE(WIFSIGNALED(st));
  char *j = slurp(journal);
  int kept = count_lines(j, "round ");
  free(j);
  CU_ASSERT_TRUE(kept >= 5);
  CU_ASSERT_TRUE(kept < total); /* killed in the middle */
  usleep(100000); /* the workers die with their parent */
  /* resume, and the same study without interruption */
  const char *resume[] = {"study", "--resume", a, "--no-plots", NULL};
  CU_ASSERT_EQUAL(snrun(resume, NULL, NULL), 0);
  const char *whole[] = {"study", model,  "--rounds", "12", "--epochs", "3", "--grid", "aux_loss=false,true",
                         "--jobs", "2", "--out", b, "--no-plots", NULL};
  CU_ASSERT_EQUAL(snrun(whole, NULL, NULL), 0);
  j = slurp(journal);
  CU_ASSERT_EQUAL(count_lines(j, "round "), total); /* nothing lost, nothing repeated */
  /* every (setting, round) exactly once */
  int seen[2][12] = {{0}};
  for (char *p = j; (p = strstr(p, "\nround ")); p++) {
    int k, r;
    if (sscanf(p + 7, "%d %d", &k, &r) == 2 && k >= 0 && k < 2 && r >= 0 && r < 12) seen[k][r]++;
  }
  for (int k = 0; k < 2; k++)
    for (int r = 0; r < 12; r++) CU_ASSERT_EQUAL(seen[k][r], 1);
  free(j);
  char *ca = csv_without_times(a), *cb = csv_without_times(b);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ca);
  CU_ASSERT_PTR_NOT_NULL_FATAL(cb);
  CU_ASSERT_STRING_EQUAL(ca, cb); /* same seeds, same numbers */
  CU_ASSERT_EQUAL(count_lines(ca, "\""), total * 3);
  free(ca);
  free(cb);
  /* resuming a finished study only rewrites the results */
  CU_ASSERT_EQUAL(snrun(resume, NULL, NULL), 0);

  /* a resume with other parameters is refused, naming them */
  char log[600];
  snprintf(log, sizeof log, "%s/mismatch.log", tmpdir);
  const char *other_rounds[] = {"study", "--resume", a, "--rounds", "13", NULL};
  CU_ASSERT_EQUAL(snrun(other_rounds, NULL, log), 2);
  char *msg = slurp(log);
  CU_ASSERT_PTR_NOT_NULL(msg && strstr(msg, "--rounds 13 (the study's: 12)"));
  free(msg);
  const char *other_grid[] = {"study", model, "--resume", a, "--grid", "aux_loss=true", "--seed", "9", NULL};
  CU_ASSERT_EQUAL(snrun(other_grid, NULL, log), 2);
  msg = slurp(log);
  CU_ASSERT_PTR_NOT_NULL(msg && strstr(msg, "--grid") && strstr(msg, "--seed 9"));
  free(msg);
  /* a changed model file is refused too */
  char copy[600];
  snprintf(copy, sizeof copy, "%s/changed", tmpdir);
  const char *small[] = {"study", model, "--rounds", "1", "--epochs", "1", "--grid", "aux_loss=true", "--out", copy,
                         "--no-plots", NULL};
  CU_ASSERT_EQUAL(snrun(small, NULL, NULL), 0);
  FILE *f = fopen(model, "a");
  fputs("# edited\n", f);
  fclose(f);
  const char *again[] = {"study", "--resume", copy, NULL};
  CU_ASSERT_EQUAL(snrun(again, NULL, log), 2);
  msg = slurp(log);
  CU_ASSERT_PTR_NOT_NULL(msg && strstr(msg, "changed since the study started"));
  free(msg);
  f = fopen(model, "w"); /* restore */
  fputs(tiny_yaml, f);
  fclose(f);
  /* usage errors */
  const char *bad1[] = {"study", model, "--rounds", "0", NULL};
  CU_ASSERT_EQUAL(snrun(bad1, NULL, NULL), 2);
  const char *bad2[] = {"study", model, "--grid", "no_such=1,2", NULL};
  CU_ASSERT_EQUAL(snrun(bad2, NULL, NULL), 2);
  const char *bad3[] = {"study", NULL};
  CU_ASSERT_EQUAL(snrun(bad3, NULL, NULL), 2);
  const char *help[] = {"study", "--help", NULL};
  CU_ASSERT_EQUAL(snrun(help, NULL, NULL), 0);
}

/* Without gnuplot on PATH the results are still written and the message says how to get plots. */
static void test_no_gnuplot(void) {
  char out[512], log[600], path[600];
  snprintf(out, sizeof out, "%s/study_nognuplot", tmpdir);
  snprintf(log, sizeof log, "%s/nognuplot.log", tmpdir);
  const char *args[] = {"study", model, "--rounds", "2", "--epochs", "1", "--grid", "aux_loss=true", "--out", out, NULL};
  CU_ASSERT_EQUAL(snrun(args, "/nonexistent", log), 0);
  char *msg = slurp(log);
  CU_ASSERT_PTR_NOT_NULL(msg && strstr(msg, "gnuplot not found") && strstr(msg, "apt-get install gnuplot-nox"));
  CU_ASSERT_PTR_NOT_NULL(msg && strstr(msg, "aux_loss"));
  free(msg);
  snprintf(path, sizeof path, "%s/results.csv", out);
  char *csv = slurp(path);
  CU_ASSERT_EQUAL(count_lines(csv, "\"aux_loss\","), 2);
  free(csv);
  snprintf(path, sizeof path, "%s/plots/study.gp", out); /* the script is there for later */
  struct stat sb;
  CU_ASSERT_EQUAL(stat(path, &sb), 0);
}

static void cleanup_dir(void) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmpdir);
}

static void register_tests(void) {
  snprintf(tmpdir, sizeof tmpdir, "%s", "/tmp/snc_test_study.XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    exit(1);
  }
  atexit(cleanup_dir);
  snprintf(model, sizeof model, "%s/tiny.yaml", tmpdir);
  FILE *f = fopen(model, "w");
  if (!f || fputs(tiny_yaml, f) < 0 || fclose(f) != 0) exit(1);
  /* the in-process study forks its workers before this process has run any compiled code */
  SNC_SUITE("study", {"statistics and round seeds", test_stats}, {"results.csv and results.json", test_study_outputs}, {"--eval-train, --no-cache", test_eval_train},
            {"kill -9 and resume", test_kill_and_resume}, {"without gnuplot", test_no_gnuplot},
            {"reused backend starts afresh", test_backend_reuse});
}

SNC_TEST_MAIN(register_tests)
