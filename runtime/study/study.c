/* `snrun study`: options, the study's parameters (fresh or from a folder to resume, checked against
 * the command line), the grid of settings, the output folder, and the run from start to table. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snc/autodiff.h"
#include "snc/dist.h"
#include "snc/jit.h"
#include "study_internal.h"

snc_study_opts snc_study_defaults(void) {
  snc_study_opts o = {0};
  o.progress = -1;
  o.plots = 1;
  o.eval_train = SNC_EVAL_TRAIN_NEVER;
  o.eval_batch = -1;
  return o;
}

/* What the workers do that is not a parameter of the study: --eval-train, --eval-batch, --no-tune, the compiled-module cache
 * (shared by every worker, so a setting is compiled once per machine). */
static void run_options(st_study *s, const snc_study_opts *o) {
  s->eval_train = o->eval_train;
  s->eval_batch = o->eval_batch;
  s->no_tune = o->no_tune;
  s->cache[0] = 0;
  if (!o->no_cache && !snc_jit_cache_default_dir(s->cache, sizeof s->cache)) s->cache[0] = 0;
}

void snc_study_stat_of(const double *x, int n, snc_study_stat *s) {
  memset(s, 0, sizeof *s);
  s->n = n;
  if (n < 1) {
    s->mean = s->std = s->min = s->max = NAN;
    return;
  }
  double sum = 0;
  s->min = s->max = x[0];
  for (int i = 0; i < n; i++) {
    sum += x[i];
    if (x[i] < s->min) s->min = x[i];
    if (x[i] > s->max) s->max = x[i];
  }
  s->mean = sum / n;
  double ss = 0;
  for (int i = 0; i < n; i++) ss += (x[i] - s->mean) * (x[i] - s->mean);
  s->std = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

uint64_t snc_study_round_seed(uint64_t seed, int round) {
  return snc_seed_derive(snc_seed_derive(seed, 0x7374756479ull /* "study" */), (uint64_t)round);
}

/* ---- parameters ------------------------------------------------------------------------------------- */

static int hash_file(const char *path, uint64_t *h, snc_error *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return snc_errorf(err, "%s: cannot open: %s", path, strerror(errno));
  char buf[65536];
  size_t k;
  *h = 0xcbf29ce484222325ull;
  while ((k = fread(buf, 1, sizeof buf, f)) > 0) *h = st_fnv(buf, k, *h);
  fclose(f);
  return 0;
}

static const snc_switch *find_switch(const snc_graph *g, const char *name) {
  for (int i = 0; i < g->nswitches; i++)
    if (!strcmp(g->switches[i].name, name)) return &g->switches[i];
  return NULL;
}

static void set_overrides(const st_study *s, snc_override *ov, int *n) {
  *n = 0;
  for (int i = 0; i < s->nsets; i++) ov[(*n)++] = (snc_override){s->setk[i], s->setv[i]};
}

static int split_sets(st_study *s, snc_error *err) {
  for (int i = 0; i < s->nsets; i++) {
    const char *eq = strchr(s->sets[i], '=');
    if (!eq || eq == s->sets[i] || !eq[1]) return snc_errorf(err, "--set: expected name=value, got '%s'", s->sets[i]);
    snprintf(s->setk[i], sizeof s->setk[i], "%.*s", (int)(eq - s->sets[i]), s->sets[i]);
    snprintf(s->setv[i], sizeof s->setv[i], "%s", eq + 1);
  }
  return 0;
}

/* One value of grid switch `name`: loads the model with it to check it and to read it back. */
static int canonical_value(const st_study *s, const char *name, const char *val, char *out, size_t n, int *is_bool,
                           snc_error *err) {
  snc_override ov[SNC_STUDY_MAX_SETS + 1];
  int nov;
  set_overrides(s, ov, &nov);
  ov[nov++] = (snc_override){name, val};
  snc_graph *g = snc_model_load(s->model, ov, nov, err);
  if (!g) return -1;
  const snc_switch *sw = find_switch(g, name);
  SNC_ASSERT(sw); /* the load refuses unknown switches */
  *is_bool = sw->is_bool;
  if (sw->is_bool)
    snprintf(out, n, "%s", sw->value ? "true" : "false");
  else
    snprintf(out, n, "%.17g", sw->value);
  snc_graph_free(g);
  return 0;
}

/* --grid NAME=V1,V2,... into s's grid (canonical values); or every boolean switch of the model. */
static int build_grid(st_study *s, const snc_study_opts *o, const snc_graph *base, snc_error *err) {
  s->ngrid = 0;
  for (int i = 0; i < o->ngrid; i++) {
    const char *a = o->grid[i], *eq = strchr(a, '=');
    if (!eq || eq == a || !eq[1]) return snc_errorf(err, "--grid: expected name=value,value,..., got '%s'", a);
    int k = s->ngrid++;
    snprintf(s->gname[k], sizeof s->gname[k], "%.*s", (int)(eq - a), a);
    for (int j = 0; j < k; j++)
      if (!strcmp(s->gname[j], s->gname[k])) return snc_errorf(err, "--grid: switch '%s' given twice", s->gname[k]);
    for (int j = 0; j < s->nsets; j++)
      if (!strcmp(s->setk[j], s->gname[k]))
        return snc_errorf(err, "switch '%s' is both in --set and in --grid", s->gname[k]);
    if (!find_switch(base, s->gname[k]))
      return snc_errorf(err, "--grid: %s has no switch '%s'", o->model, s->gname[k]);
    s->nval[k] = 0;
    for (const char *v = eq + 1; *v;) {
      size_t l = strcspn(v, ",");
      char val[128];
      if (l == 0 || l >= sizeof val) return snc_errorf(err, "--grid: bad value list in '%s'", a);
      if (s->nval[k] == ST_MAX_VALS) return snc_errorf(err, "--grid: at most %d values per switch", ST_MAX_VALS);
      snprintf(val, sizeof val, "%.*s", (int)l, v);
      char *canon = s->gval[k][s->nval[k]];
      if (canonical_value(s, s->gname[k], val, canon, sizeof s->gval[k][0], &s->gbool[k], err) != 0) return -1;
      for (int j = 0; j < s->nval[k]; j++)
        if (!strcmp(s->gval[k][j], canon)) return snc_errorf(err, "--grid: value '%s' of '%s' given twice", val, s->gname[k]);
      s->nval[k]++;
      v += l + (v[l] == ',');
    }
  }
  if (o->ngrid) return 0;
  for (int i = 0; i < base->nswitches; i++) {
    const snc_switch *sw = &base->switches[i];
    if (!sw->is_bool || sw->overridden) continue;
    if (s->ngrid == SNC_STUDY_MAX_GRID) break;
    int k = s->ngrid++;
    snprintf(s->gname[k], sizeof s->gname[k], "%s", sw->name);
    s->gbool[k] = 1;
    s->nval[k] = 2;
    strcpy(s->gval[k][0], "false");
    strcpy(s->gval[k][1], "true");
  }
  return 0;
}

/* Settings: the grid's cartesian product, the last switch varying fastest (for the siamese model:
 * none, aux_loss, weight_sharing, both — the seed's order). Loads each setting's model to check it. */
static int build_settings(st_study *s, snc_error *err) {
  int n = 1;
  for (int i = 0; i < s->ngrid; i++) {
    n *= s->nval[i];
    if (n > 4096) return snc_errorf(err, "--grid: more than 4096 settings");
  }
  s->nsettings = n;
  s->settings = calloc((size_t)n, sizeof *s->settings);
  s->r = calloc((size_t)n * (size_t)s->rounds, sizeof *s->r);
  if (!s->settings || !s->r) return snc_errorf(err, "out of memory for %d settings", n);
  s->reference = -1;
  for (int k = 0; k < n; k++) {
    st_setting *t = &s->settings[k];
    int rest = k, off = 1;
    for (int i = s->ngrid - 1; i >= 0; i--) {
      t->vi[i] = rest % s->nval[i];
      rest /= s->nval[i];
    }
    set_overrides(s, t->ov, &t->nov);
    char *l = t->label, *f = t->file;
    size_t ln = sizeof t->label, fn = sizeof t->file;
    l[0] = f[0] = 0;
    for (int i = 0; i < s->ngrid; i++) {
      const char *v = s->gval[i][t->vi[i]];
      t->ov[t->nov++] = (snc_override){s->gname[i], v};
      int on = s->gbool[i] ? !strcmp(v, "true") : strtod(v, NULL) != 0;
      off = off && !on;
      size_t lu = strlen(l), fu = strlen(f);
      if (s->gbool[i] && on)
        snprintf(l + lu, ln - lu, "%s%s", lu ? " + " : "", s->gname[i]);
      else if (!s->gbool[i])
        snprintf(l + lu, ln - lu, "%s%s=%g", lu ? " + " : "", s->gname[i], strtod(v, NULL));
      if (s->gbool[i])
        snprintf(f + fu, fn - fu, "%s%s=%s", fu ? "," : "", s->gname[i], v);
      else
        snprintf(f + fu, fn - fu, "%s%s=%g", fu ? "," : "", s->gname[i], strtod(v, NULL));
    }
    if (!l[0]) snprintf(l, ln, "%s", s->ngrid ? "none" : "default");
    if (!f[0]) snprintf(f, fn, "default");
    if (off && s->reference < 0) s->reference = k;
    snc_graph *g = snc_model_load(s->model, t->ov, t->nov, err);
    if (!g) return -1;
    if (k == 0) {
      snprintf(s->name, sizeof s->name, "%s", g->name);
      s->noutputs = g->noutputs < ST_MAX_OUT ? g->noutputs : ST_MAX_OUT;
      for (int j = 0; j < s->noutputs; j++) snprintf(s->outputs[j], sizeof s->outputs[j], "%s", g->outputs[j].name);
    }
    int bad = g->loss < 0 || g->noutputs < 1;
    snc_graph_free(g);
    if (bad)
      return snc_errorf(err, "%s (setting %s): a study needs a loss and at least one output to compare", s->model, t->label);
  }
  if (s->reference < 0) s->reference = 0;
  for (int k = 0; k < n; k++)
    for (int r = 0; r < s->rounds; r++) {
      st_round *x = st_at(s, k, r);
      x->setting = k, x->round = r, x->seed = snc_study_round_seed(s->seed, r);
    }
  return 0;
}

/* Differences between the command line and a resumed study's parameters: -1 and err naming them. */
static int check_resume(const st_study *s, const snc_study_opts *o, st_study *cli, snc_error *err) {
  char what[768] = "";
  size_t w = 0;
#define DIFF(...) (w += (size_t)snprintf(what + w, w < sizeof what ? sizeof what - w : 0, __VA_ARGS__))
  if (o->model) {
    char real[ST_PATH];
    if (!realpath(o->model, real)) return snc_errorf(err, "%s: %s", o->model, strerror(errno));
    if (strcmp(real, s->model)) DIFF("; model %s (the study's: %s)", real, s->model);
  }
  if (o->nsets) {
    int same = cli->nsets == s->nsets;
    for (int i = 0; same && i < s->nsets; i++) same = !strcmp(cli->sets[i], s->sets[i]);
    if (!same) DIFF("; different --set options");
  }
  if (o->ngrid) {
    int same = cli->ngrid == s->ngrid;
    for (int i = 0; same && i < s->ngrid; i++) {
      same = !strcmp(cli->gname[i], s->gname[i]) && cli->nval[i] == s->nval[i];
      for (int v = 0; same && v < s->nval[i]; v++) same = !strcmp(cli->gval[i][v], s->gval[i][v]);
    }
    if (!same) DIFF("; a different --grid");
  }
  if (o->rounds && o->rounds != s->rounds) DIFF("; --rounds %d (the study's: %d)", o->rounds, s->rounds);
  if (o->has_seed && o->seed != s->seed) DIFF("; --seed %" PRIu64 " (the study's: %" PRIu64 ")", o->seed, s->seed);
  if (o->epochs && o->epochs != s->epochs) DIFF("; --epochs %d (the study's: %d)", o->epochs, s->epochs);
  if (o->backend && strcmp(o->backend, s->backend)) DIFF("; --backend %s (the study's: %s)", o->backend, s->backend);
  if (o->data) {
    char real[ST_PATH];
    if (!realpath(o->data, real) || strcmp(real, s->data)) DIFF("; --data %s (the study's: %s)", o->data, s->data[0] ? s->data : "the model's");
  }
#undef DIFF
  if (w) return snc_errorf(err, "%s: cannot resume with different parameters%s", o->resume, what);
  uint64_t h;
  if (hash_file(s->model, &h, err) != 0) return -1;
  if (h != s->model_hash)
    return snc_errorf(err, "%s: cannot resume: the model file %s changed since the study started", o->resume, s->model);
  return 0;
}

static int mkdir_p(const char *path) {
  char buf[ST_PATH];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
      *p = '/';
    }
  return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int make_dirs(st_study *s, const snc_study_opts *o, snc_error *err) {
  if (o->out) {
    snprintf(s->dir, sizeof s->dir, "%s", o->out);
    char j[ST_PATH + 16];
    snprintf(j, sizeof j, "%s/journal", s->dir);
    if (access(j, F_OK) == 0)
      return snc_errorf(err, "%s already holds a study; continue it with `snrun study --resume %s`", s->dir, s->dir);
  } else {
    char stamp[32];
    time_t t = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&t));
    snprintf(s->dir, sizeof s->dir, "runs/%s-%s", s->name, stamp);
    for (int i = 2; access(s->dir, F_OK) == 0; i++) snprintf(s->dir, sizeof s->dir, "runs/%s-%s-%d", s->name, stamp, i);
  }
  if (mkdir_p(s->dir) != 0) return snc_errorf(err, "%s: cannot create: %s", s->dir, strerror(errno));
  return 0;
}

/* Scratch and checkpoint folders; leftovers of a killed run are removed. */
static int prepare_subdirs(st_study *s, snc_error *err) {
  const char *sub[] = {"tmp", "best", "plots"};
  for (int i = 0; i < 3; i++) {
    char p[ST_PATH + 16];
    snprintf(p, sizeof p, "%s/%s", s->dir, sub[i]);
    if (mkdir(p, 0755) != 0 && errno != EEXIST) return snc_errorf(err, "%s: cannot create: %s", p, strerror(errno));
  }
  char tmp[ST_PATH + 16];
  snprintf(tmp, sizeof tmp, "%s/tmp", s->dir);
  DIR *d = opendir(tmp);
  if (!d) return snc_errorf(err, "%s: cannot open: %s", tmp, strerror(errno));
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
    char p[ST_PATH + 300];
    snprintf(p, sizeof p, "%s/%s", tmp, e->d_name);
    unlink(p); /* a killed run's unfinished checkpoints */
  }
  closedir(d);
  return 0;
}

static void free_study(st_study *s) {
  if (!s) return;
  if (s->r)
    for (int i = 0; i < s->nsettings * s->rounds; i++) free(s->r[i].ep);
  free(s->r);
  free(s->settings);
  if (s->journal_fd > 0) close(s->journal_fd);
  free(s);
}

static int ncores(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

/* Rank 0 of a distributed study sends the study's parameters (the journal's header) once its folder is
 * ready, or the negated exit status when it stopped before. */
static void send_study(const st_study *s, int status) {
  int64_t len = -(int64_t)status;
  char *h = status ? NULL : st_header_text(s);
  if (h) len = (int64_t)strlen(h);
  snc_dist_bcast(&len, sizeof len, 0);
  if (h) snc_dist_bcast(h, len, 0);
  free(h);
}

/* MPI ranks > 0: the study's parameters from rank 0, then rounds until it says stop. */
static int serve_study(const snc_study_opts *o) {
  int64_t len = 0;
  snc_dist_bcast(&len, sizeof len, 0);
  if (len <= 0) return (int)-len; /* rank 0 stopped and says why */
  char *text = malloc((size_t)len + 1);
  st_study *s = calloc(1, sizeof *s);
  SNC_ASSERT(text && s);
  snc_dist_bcast(text, len, 0);
  text[len] = 0;
  snc_error err = {0};
  const char *fail = NULL;
  if (st_header_parse(text, s) != 0) fail = "the study's parameters from rank 0 are malformed";
  else if (split_sets(s, &err) != 0 || build_settings(s, &err) != 0) fail = err.msg;
  s->threads = o->threads ? o->threads : snc_dist_local_threads();
  run_options(s, o);
  st_remote_worker(s, fail);
  free(text);
  free_study(s);
  return 0;
}

int snc_study_run(const snc_study_opts *o, snc_error *err) {
  if (snc_dist_size() > 1 && snc_dist_rank() > 0) return serve_study(o);
  st_study *s = calloc(1, sizeof *s), *cli = NULL;
  int status = 1, sent = snc_dist_size() < 2;
  snc_graph *base = NULL;
  if (!s) return snc_errorf(err, "out of memory"), 1;
  if (o->resume) {
    if (o->out) {
      snc_errorf(err, "--out and --resume exclude each other (a resumed study writes into its folder)");
      status = 2;
      goto done;
    }
    if (st_journal_read_header(o->resume, s, err) != 0 || split_sets(s, err) != 0) goto done;
    snprintf(s->dir, sizeof s->dir, "%s", o->resume);
    if (o->model || o->nsets || o->ngrid) { /* the command line's sets and grid, canonical, to compare */
      if (!(cli = calloc(1, sizeof *cli))) goto done;
      *cli = *s;
      cli->nsets = o->nsets ? o->nsets : s->nsets;
      for (int i = 0; i < o->nsets; i++)
        snprintf(cli->sets[i], sizeof cli->sets[i], "%s=%s", o->sets[i].key, o->sets[i].value);
      if (split_sets(cli, err) != 0) goto done;
      snc_override ov[SNC_STUDY_MAX_SETS];
      int nov;
      set_overrides(cli, ov, &nov);
      if (!(base = snc_model_load(s->model, ov, nov, err))) goto done;
      if (o->ngrid && build_grid(cli, o, base, err) != 0) goto done;
    }
    if (check_resume(s, o, cli, err) != 0) {
      status = 2;
      goto done;
    }
  } else {
    if (!o->model) {
      snc_errorf(err, "which model? (snrun study MODEL.yaml, or --resume DIR)");
      status = 2;
      goto done;
    }
    if (!realpath(o->model, s->model)) {
      snc_errorf(err, "%s: %s", o->model, strerror(errno));
      goto done;
    }
    if (hash_file(s->model, &s->model_hash, err) != 0) goto done;
    s->nsets = o->nsets;
    for (int i = 0; i < o->nsets; i++) snprintf(s->sets[i], sizeof s->sets[i], "%s=%s", o->sets[i].key, o->sets[i].value);
    if (split_sets(s, err) != 0) goto done;
    snc_override ov[SNC_STUDY_MAX_SETS];
    int nov;
    set_overrides(s, ov, &nov);
    if (!(base = snc_model_load(s->model, ov, nov, err))) goto done;
    if (build_grid(s, o, base, err) != 0) {
      status = strstr(err->msg, "--grid") ? 2 : 1;
      goto done;
    }
    s->rounds = o->rounds ? o->rounds : 20;
    s->seed = o->has_seed ? o->seed : base->train.seed;
    s->epochs = o->epochs ? o->epochs : base->train.epochs;
    if (o->data && !realpath(o->data, s->data)) {
      snc_errorf(err, "%s: %s", o->data, strerror(errno));
      goto done;
    }
    snprintf(s->backend, sizeof s->backend, "%s", o->backend ? o->backend : "jit");
  }
  if (build_settings(s, err) != 0) goto done;
  if (!o->resume && (make_dirs(s, o, err) != 0 || st_journal_create(s, err) != 0)) goto done;
  if (st_journal_open(s, err) != 0 || prepare_subdirs(s, err) != 0) goto done;
  if (!sent) send_study(s, 0), sent = 1;

  run_options(s, o);
  int total = s->nsettings * s->rounds, todo = total - s->resumed_done, cores = ncores();
  s->remote = snc_dist_size() - 1;
  if (s->remote) { /* one worker here beside rank 0's scheduler, one per other rank */
    s->jobs = o->jobs ? o->jobs : 1;
    s->threads = o->threads ? o->threads : snc_dist_local_threads();
  } else {
    s->jobs = o->jobs ? o->jobs : cores;
    if (s->jobs > todo) s->jobs = todo > 0 ? todo : 1;
    s->threads = o->threads ? o->threads : (cores / s->jobs > 0 ? cores / s->jobs : 1);
  }
  if (!o->quiet) {
    if (o->resume)
      printf("resuming %s: %d of %d rounds done\n", s->dir, s->resumed_done, total);
    printf("study %s (%s): %d setting%s x %d round%s x %d epoch%s, seed %" PRIu64 ", backend %s", s->name, s->model,
           s->nsettings, s->nsettings == 1 ? "" : "s", s->rounds, s->rounds == 1 ? "" : "s", s->epochs,
           s->epochs == 1 ? "" : "s", s->seed, s->backend);
    if (todo && s->remote)
      printf(", %d worker%s here + %d MPI rank%s, %d thread%s each", s->jobs, s->jobs == 1 ? "" : "s", s->remote,
             s->remote == 1 ? "" : "s", s->threads, s->threads == 1 ? "" : "s");
    else if (todo)
      printf(", %d worker%s x %d thread%s", s->jobs, s->jobs == 1 ? "" : "s", s->threads, s->threads == 1 ? "" : "s");
    printf("\n  output: %s\n", s->dir);
    fflush(stdout);
  }
  if (!todo)
    for (int r = 1; r <= s->remote; r++) snc_dist_send(r, "Q\n", 2); /* nothing left for the other ranks */
  status = todo ? st_run_rounds(s, o, err) : 0;
  if (status == 1) goto done;
  snc_error werr = {0};
  if (st_write_results(s, &werr) != 0) {
    *err = werr;
    status = 1;
    goto done;
  }
  st_print_table(s, stdout);
  if (status == 0 && o->plots) st_plot(s, stdout, o->quiet);
  if (status == 130) {
    int done_n = 0;
    for (int i = 0; i < total; i++) done_n += s->r[i].done;
    fflush(stdout);
    fprintf(stderr, "snrun study: interrupted; %d of %d rounds are done and kept in %s\n  resume with: snrun study --resume %s\n",
            done_n, total, s->dir, s->dir);
  }
done:
  if (!sent) send_study(s, status ? status : 1); /* the other ranks wait for the study: tell them it ended */
  if (base) snc_graph_free(base);
  free(cli);
  free_study(s);
  return status;
}
