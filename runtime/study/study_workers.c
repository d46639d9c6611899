/* The study's rounds in worker processes. The parent forks --jobs workers and hands them rounds
 * one at a time over a pipe ("T setting round"), preferring the setting a worker has compiled
 * already; a worker compiles a setting once, reuses its backend for every round of it (snc_train
 * initialises parameters and optimizer state afresh each run), writes the round's checkpoint to
 * DIR/tmp and answers with the round's journal line. The parent is the only writer of the journal
 * and of DIR/best: it keeps the checkpoint when the round is its setting's best so far (rename),
 * then appends the line (single write + fsync). Workers die with the parent (PR_SET_PDEATHSIG) and
 * ignore SIGINT: the parent decides (first Ctrl-C: finish the running rounds; second: kill them). */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "snc/autodiff.h"
#include "snc/dist.h"
#include "snc/backend.h"
#include "snc/jit.h"
#include "study_internal.h"

typedef struct worker {
  int rank;         /* 0: a forked process on this machine; > 0: that MPI rank */
  pid_t pid;
  int to, from;     /* parent's ends: tasks out, lines in */
  int alive, busy, quitting;
  int compiled;     /* the setting it has compiled, -1 none */
  int task_k, task_r;
  char *buf;        /* partial input */
  size_t n, cap;
} worker;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void st_best_path(const st_study *s, int k, char *buf, size_t n) {
  snprintf(buf, n, "%s/best/%s.safetensors", s->dir, s->settings[k].file);
}

static void tmp_ckpt(const st_study *s, int k, int r, char *buf, size_t n) {
  snprintf(buf, n, "%s/tmp/%d-%d.safetensors", s->dir, k, r);
}

/* ---- the worker ------------------------------------------------------------------------------------ */

/* An error report to the parent: "E message" on one line. out >= 0: a pipe; -1: MPI rank 0. */
static void send_error(int out, const char *msg) {
  char line[1200];
  snprintf(line, sizeof line, "E %s", msg);
  for (char *p = line; *p; p++)
    if (*p == '\n') *p = ' ';
  strcat(line, "\n");
  if (out >= 0)
    st_write_all(out, line, strlen(line));
  else
    snc_dist_send(0, line, strlen(line));
}

/* What a worker keeps between rounds: the setting it compiled and its backend. */
typedef struct wstate {
  snc_graph *g, *eg;      /* eg: the evaluation build's graph (snc_eval_build_new), or NULL */
  snc_backend *be, *ebe;
  snc_sched_table *sched; /* this machine's tuning cache (snrun train --tune), read once per worker */
  int cur; /* the setting compiled, -1 none */
} wstate;

/* the setting's builds; all = 1 at the worker's end: the tuning cache too */
static void ws_free(wstate *w, int all) {
  if (w->ebe) w->ebe->free(w->ebe);
  snc_graph_free(w->eg);
  if (w->be) w->be->free(w->be);
  snc_graph_free(w->g);
  snc_sched_table *sched = w->sched;
  if (all) snc_sched_free(sched), sched = NULL;
  *w = (wstate){.cur = -1, .sched = sched};
}

/* Compiles setting k unless it is the one compiled; *seconds: the time it took, -1 when nothing was done;
 * *cached: the code came from the compiled-module cache. */
static int ws_prepare(st_study *s, wstate *w, int k, double *seconds, int *cached, snc_error *err) {
  *seconds = -1;
  *cached = 0;
  if (k == w->cur) return 0;
  ws_free(w, 0);
  double t0 = now();
  const st_setting *t = &s->settings[k];
  if (!(w->g = snc_model_load(s->model, t->ov, t->nov, err)) || snc_autodiff(w->g, 0, err) != 0) return -1;
  if (!strcmp(s->backend, "jit")) {
    snc_jit_backend_opts jo = {.threads = s->threads, .cache_dir = s->cache[0] ? s->cache : NULL};
    char dir[4096];
    if (!w->sched && !(w->sched = snc_sched_open(snc_jit_cache_default_dir(dir, sizeof dir), !s->no_tune, s->threads, err))) return -1;
    jo.schedule = snc_sched_choose, jo.schedule_user = w->sched;
    int eb = snc_eval_batch(w->g, 1, s->eval_batch); /* the training build then leaves its evaluation out */
    jo.no_eval = eb > 0;
    w->be = snc_backend_jit_new(w->g, &jo, err);
    *cached = w->be && snc_backend_jit_timing(w->be)->cache_status == SNC_JIT_CACHE_HIT;
    jo.no_eval = 0;
    if (w->be && eb > 0 && snc_eval_build_new(s->model, t->ov, t->nov, eb, &jo, &w->eg, &w->ebe, err) != 0)
      return -1;
    if (w->ebe) *cached = *cached && snc_backend_jit_timing(w->ebe)->cache_status == SNC_JIT_CACHE_HIT;
  } else {
    w->be = snc_backend_new(s->backend, w->g, err);
  }
  if (!w->be) return -1;
  w->cur = k;
  *seconds = now() - t0;
  return 0;
}

/* Trains round r of the compiled setting, writes its checkpoint to ckpt and returns its journal line
 * (malloc'd), or NULL with err set. */
static char *ws_round(st_study *s, wstate *w, int r, const char *ckpt, snc_error *err) {
  int k = w->cur;
  st_round *x = st_at(s, k, r);
  snc_train_opts o = snc_train_defaults(w->g);
  o.seed = x->seed;
  o.epochs = s->epochs;
  o.data_dir = s->data[0] ? s->data : NULL;
  o.backend_name = s->backend;
  o.quiet = 1;
  o.eval_train = s->eval_train;
  o.eval_graph = w->eg, o.eval_backend = w->ebe;
  snc_train_result res = {0};
  if (snc_train(w->g, w->be, &o, &res, err) != 0) return NULL;
  snc_run_info info = {x->seed, res.nepochs, res.steps, w->g->data.standardize, res.mean, res.std};
  if (snc_checkpoint_save(ckpt, w->g, w->be, &info, err) != 0) {
    snc_train_result_free(&res);
    return NULL;
  }
  st_round rr = {.done = 1, .setting = k, .round = r, .seed = x->seed, .nepochs = res.nepochs, .seconds = res.seconds,
                 .final_acc = res.final_acc};
  rr.ep = calloc((size_t)res.nepochs, sizeof *rr.ep);
  SNC_ASSERT(rr.ep);
  for (int e = 0; e < res.nepochs; e++) {
    const snc_epoch_stats *a = &res.epoch[e];
    st_epoch *b = &rr.ep[e];
    b->epoch = a->epoch;
    b->step_loss = a->step_loss;
    b->train_loss = a->train.loss;
    b->test_loss = a->test.loss;
    b->seconds = a->seconds;
    b->step_seconds = a->step_seconds;
    for (int j = 0; j < s->noutputs; j++) /* NaN: the training set not evaluated (--eval-train) */
      b->train_acc[j] = a->train.noutputs ? a->train.acc[j] : NAN, b->test_acc[j] = a->test.acc[j];
  }
  char *line = st_round_line(s, &rr);
  free(rr.ep);
  snc_train_result_free(&res);
  return line;
}

static void worker_main(st_study *s, int in, int out) {
  wstate w = {.cur = -1};
  snc_error err = {0};
  FILE *fin = fdopen(in, "r");
  char cmd[128];
  while (fin && fgets(cmd, sizeof cmd, fin)) {
    int k, r;
    double sec;
    int cached;
    if (sscanf(cmd, "T %d %d", &k, &r) != 2) break; /* "Q" */
    if (ws_prepare(s, &w, k, &sec, &cached, &err) != 0) goto fail;
    if (sec >= 0) {
      char line[64];
      snprintf(line, sizeof line, "C %d %.6f %d\n", k, sec, cached);
      if (st_write_all(out, line, strlen(line))) break;
    }
    char path[ST_PATH + 64];
    tmp_ckpt(s, k, r, path, sizeof path);
    char *line = ws_round(s, &w, r, path, &err);
    if (!line) goto fail;
    int bad = st_write_all(out, line, strlen(line));
    free(line);
    if (bad) break;
  }
  ws_free(&w, 1);
  _exit(0); /* never the parent's atexit handlers or stdio buffers */
fail:
  send_error(out, err.msg);
  _exit(1);
}

/* ---- a worker on another MPI rank ------------------------------------------------------------------ */

/* "K" followed by the bytes of the file at path (malloc'd, *n bytes in all), or NULL with err set. */
static char *ckpt_message(const char *path, size_t *n, snc_error *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return snc_errorf(err, "%s: cannot open: %s", path, strerror(errno)), NULL;
  char *p = NULL;
  long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  if (len >= 0 && len < (1L << 30) && fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)len + 1)) &&
      fread(p + 1, 1, (size_t)len, f) == (size_t)len) {
    fclose(f);
    p[0] = 'K';
    *n = (size_t)len + 1;
    return p;
  }
  fclose(f);
  free(p);
  return snc_errorf(err, "%s: cannot read the round's checkpoint", path), NULL;
}

/* The same protocol as the pipes, one message per line, plus "K" + the bytes of a round's checkpoint
 * before its line (the rank may not share rank 0's file system). Returns when told "Q": 0, also after
 * reporting an error (rank 0 reports it and decides the exit status). */
int st_remote_worker(st_study *s, const char *fail) {
  wstate w = {.cur = -1};
  snc_error err = {0};
  if (fail) snc_errorf(&err, "MPI rank %d: %s", snc_dist_rank(), fail);
  char tmpl[ST_PATH];
  const char *td = getenv("TMPDIR");
  snprintf(tmpl, sizeof tmpl, "%s/snrun-study-XXXXXX", td && *td ? td : "/tmp");
  int fd = fail ? -1 : mkstemp(tmpl);
  if (fd < 0 && !fail) snc_errorf(&err, "%s: cannot create a temporary file: %s", tmpl, strerror(errno));
  if (fd >= 0) close(fd);
  int failed = fd < 0;
  if (failed) send_error(-1, err.msg);
  for (;;) {
    size_t n;
    char *cmd = snc_dist_recv(0, NULL, &n);
    int k, r;
    if (failed || sscanf(cmd, "T %d %d", &k, &r) != 2) { /* "Q" (or anything after an error) */
      int quit = cmd[0] == 'Q';
      free(cmd);
      if (quit) break;
      continue;
    }
    free(cmd);
    double sec;
    int cached;
    char *line = NULL;
    if (ws_prepare(s, &w, k, &sec, &cached, &err) == 0) {
      if (sec >= 0) {
        char c[64];
        snprintf(c, sizeof c, "C %d %.6f %d\n", k, sec, cached);
        snc_dist_send(0, c, strlen(c));
      }
      line = ws_round(s, &w, r, tmpl, &err);
    }
    size_t len = 0;
    char *ck = line ? ckpt_message(tmpl, &len, &err) : NULL;
    if (!ck) {
      free(line);
      send_error(-1, err.msg);
      failed = 1;
      continue;
    }
    snc_dist_send(0, ck, len);
    free(ck);
    snc_dist_send(0, line, strlen(line));
    free(line);
  }
  if (fd >= 0) unlink(tmpl);
  ws_free(&w, 1);
  return 0;
}

/* ---- the parent ------------------------------------------------------------------------------------ */

typedef struct sched {
  st_study *s;
  const snc_study_opts *o;
  worker *w;
  int nw;
  char *assigned;  /* [setting * rounds + round] */
  int *left;       /* per setting: rounds neither done nor assigned */
  int *best;       /* per setting: best round so far, -1 */
  int total, done, done_now, running;
  double t0, last_draw;
  int bar;
  char last[320];  /* the last finished round, for the bar */
} sched;

static int better(const st_study *s, int k, int r, int than) {
  if (than < 0) return 1;
  double a = st_at(s, k, r)->final_acc, b = st_at(s, k, than)->final_acc;
  return a > b || (a == b && r < than);
}

/* The next round for worker w: its compiled setting first, else the setting with the most rounds
 * left that no other worker is on, else the one with the most left. Returns 0 when none is left. */
static int pick(sched *c, worker *w, int *k, int *r) {
  st_study *s = c->s;
  int best = -1;
  if (w->compiled >= 0 && c->left[w->compiled] > 0) best = w->compiled;
  for (int pass = 0; pass < 2 && best < 0; pass++)
    for (int j = 0; j < s->nsettings; j++) {
      if (!c->left[j]) continue;
      int taken = 0;
      for (int i = 0; i < c->nw && !pass; i++) /* compiled, or being compiled for its current round */
        taken |= c->w[i].alive && &c->w[i] != w && (c->w[i].compiled == j || (c->w[i].busy && c->w[i].task_k == j));
      if (!taken && (best < 0 || c->left[j] > c->left[best])) best = j;
    }
  if (best < 0) return 0;
  for (int i = 0; i < s->rounds; i++)
    if (!st_at(s, best, i)->done && !c->assigned[best * s->rounds + i]) {
      c->assigned[best * s->rounds + i] = 1;
      c->left[best]--;
      *k = best, *r = i;
      return 1;
    }
  SNC_ASSERT(0);
  return 0;
}

static void fmt_time(double sec, char *buf, size_t n) {
  int t = (int)(sec + 0.5);
  if (t >= 3600)
    snprintf(buf, n, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(buf, n, "%d:%02d", t / 60, t % 60);
}

static void draw_bar(sched *c) {
  double el = now() - c->t0;
  char e[32], eta[32] = "--:--";
  fmt_time(el, e, sizeof e);
  if (c->done_now > 0) fmt_time(el / c->done_now * (c->total - c->done), eta, sizeof eta);
  int width = 30, fill = c->total ? c->done * width / c->total : width;
  char bar[64];
  for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
  bar[width] = 0;
  printf("\r\033[K[%s] %d/%d rounds  %s elapsed  ETA %s  %s", bar, c->done, c->total, e, eta,
         c->done_now ? c->last : c->s->ncompiles < c->nw ? "(compiling)" : "");
  fflush(stdout);
  c->last_draw = now();
}

static void clear_bar(sched *c) {
  if (c->bar) {
    printf("\r\033[K");
    fflush(stdout);
  }
}

static void kill_all(sched *c) {
  for (int i = 0; i < c->nw; i++)
    if (c->w[i].alive && c->w[i].rank) { /* an MPI rank stops when told (after its running round) */
      snc_dist_send(c->w[i].rank, "Q\n", 2);
      c->w[i].alive = 0;
    }
  for (int i = 0; i < c->nw; i++)
    if (c->w[i].alive) kill(c->w[i].pid, SIGKILL);
  for (int i = 0; i < c->nw; i++)
    if (c->w[i].alive) {
      waitpid(c->w[i].pid, NULL, 0);
      c->w[i].alive = 0;
    }
}

/* A finished round from a worker: keep its checkpoint if best, journal it. */
static int finish_round(sched *c, worker *w, const char *line, snc_error *err) {
  st_study *s = c->s;
  st_round r;
  if (st_round_parse(s, line, &r) != 0 || r.setting != w->task_k || r.round != w->task_r)
    return snc_errorf(err, "worker %d sent a malformed result", (int)w->pid);
  st_round *slot = st_at(s, r.setting, r.round);
  *slot = r;
  char tmp[ST_PATH + 64], best[ST_PATH + 600];
  tmp_ckpt(s, r.setting, r.round, tmp, sizeof tmp);
  if (better(s, r.setting, r.round, c->best[r.setting])) {
    st_best_path(s, r.setting, best, sizeof best);
    if (rename(tmp, best) != 0) return snc_errorf(err, "%s: cannot rename to %s: %s", tmp, best, strerror(errno));
    char dir[ST_PATH + 16];
    snprintf(dir, sizeof dir, "%s/best", s->dir);
    snc_file_sync_dir(dir, 1);
    c->best[r.setting] = r.round;
  } else {
    unlink(tmp);
  }
  if (st_journal_append(s, line, err) != 0) return -1; /* the round counts from here on */
  w->busy = 0;
  c->done++;
  c->done_now++;
  c->running--;
  if (c->o->quiet) return 0;
  if (c->bar) {
    snprintf(c->last, sizeof c->last, "last: %.200s #%d %.2f%%", s->settings[r.setting].label, r.round + 1,
             100 * r.final_acc);
    draw_bar(c);
  } else {
    printf("%*d/%d  %s, round %d: test accuracy %.2f%% (%.1f s)\n", c->total >= 100 ? 4 : 3, c->done, c->total,
           s->settings[r.setting].label, r.round + 1, 100 * r.final_acc, r.seconds);
    fflush(stdout);
  }
  return 0;
}

static int handle_line(sched *c, worker *w, char *line, snc_error *err) {
  if (line[0] == 'C') {
    int k, cached = 0;
    double sec;
    if (sscanf(line, "C %d %lf %d", &k, &sec, &cached) >= 2) {
      w->compiled = k;
      c->s->ncompiles++;
      c->s->ncached += cached == 1;
      c->s->compile_seconds += sec;
    }
    return 0;
  }
  if (line[0] == 'E') {
    line[strcspn(line, "\n")] = 0;
    st_setting *t = &c->s->settings[w->task_k];
    return snc_errorf(err, "%s (setting %s, round %d): %s", c->s->model, t->label, w->task_r + 1, line + 2);
  }
  return finish_round(c, w, line, err);
}

static int spawn(sched *c, int i, snc_error *err) {
  int a[2], b[2];
  if (pipe(a) != 0) return snc_errorf(err, "pipe: %s", strerror(errno));
  if (pipe(b) != 0) {
    close(a[0]), close(a[1]);
    return snc_errorf(err, "pipe: %s", strerror(errno));
  }
  fflush(stdout);
  fflush(stderr);
  pid_t parent = getpid(), pid = fork();
  if (pid < 0) return snc_errorf(err, "fork: %s", strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* a killed parent takes its workers along */
    if (getppid() != parent) _exit(1);
    signal(SIGINT, SIG_IGN);          /* Ctrl-C reaches the whole group; the parent decides */
    signal(SIGTERM, SIG_DFL);
    for (int j = 0; j < i; j++) close(c->w[j].to), close(c->w[j].from);
    close(c->s->journal_fd);
    close(a[1]);
    close(b[0]);
    worker_main(c->s, a[0], b[1]);
  }
  close(a[0]);
  close(b[1]);
  c->w[i] = (worker){.pid = pid, .to = a[1], .from = b[0], .alive = 1, .compiled = -1};
  return 0;
}

static void reap(worker *w, int *status) {
  int st = 0;
  waitpid(w->pid, &st, 0);
  w->alive = 0;
  close(w->to);
  close(w->from);
  *status = st;
}

/* Every message the MPI ranks have sent: a round's checkpoint ("K" + bytes, written where a local
 * worker would have left it) or a line as a local worker writes it. */
static int remote_messages(sched *c, snc_error *err) {
  int src;
  size_t n;
  while (snc_dist_poll(&src, &n)) {
    char *m = snc_dist_recv(src, NULL, &n);
    worker *w = NULL;
    for (int i = 0; i < c->nw && !w; i++)
      if (c->w[i].rank == src) w = &c->w[i];
    int rc = 0;
    if (!w || !w->alive) {
      rc = snc_errorf(err, "a message from MPI rank %d, which has no round", src);
    } else if (m[0] == 'K') {
      char path[ST_PATH + 64];
      tmp_ckpt(c->s, w->task_k, w->task_r, path, sizeof path);
      rc = snc_file_write_atomic(path, m + 1, n - 1, err);
    } else {
      rc = handle_line(c, w, m, err);
    }
    free(m);
    if (rc) return -1;
  }
  return 0;
}

int st_run_rounds(st_study *s, const snc_study_opts *o, snc_error *err) {
  static volatile sig_atomic_t no_stop;
  volatile sig_atomic_t *stop = o->stop ? o->stop : &no_stop;
  sched c = {.s = s, .o = o, .nw = s->jobs + s->remote, .t0 = now()};
  int rc = 1, warned = 0;
  c.w = calloc((size_t)c.nw, sizeof *c.w);
  c.assigned = calloc((size_t)(s->nsettings * s->rounds), 1);
  c.left = calloc((size_t)s->nsettings, sizeof *c.left);
  c.best = calloc((size_t)s->nsettings, sizeof *c.best);
  if (!c.w || !c.assigned || !c.left || !c.best) {
    snc_errorf(err, "out of memory");
    goto done;
  }
  c.total = s->nsettings * s->rounds;
  for (int k = 0; k < s->nsettings; k++) {
    c.best[k] = -1;
    for (int r = 0; r < s->rounds; r++) {
      if (st_at(s, k, r)->done) {
        c.done++;
        if (better(s, k, r, c.best[k])) c.best[k] = r;
      } else {
        c.left[k]++;
      }
    }
  }
  /* under mpirun stdout is the launcher's forwarding, a terminal or not: plain lines unless asked */
  c.bar = !o->quiet && (o->progress < 0 ? isatty(STDOUT_FILENO) && !s->remote : o->progress);
  signal(SIGPIPE, SIG_IGN); /* a dead worker's pipe gives EPIPE, seen below */
  for (int i = s->jobs; i < c.nw; i++) c.w[i] = (worker){.rank = i - s->jobs + 1, .alive = 1, .compiled = -1};
  for (int i = 0; i < s->jobs; i++) {
    if (spawn(&c, i, err) != 0) {
      for (int j = i; j < s->jobs; j++) c.w[j].alive = 0;
      kill_all(&c);
      goto done;
    }
  }
  if (c.bar) draw_bar(&c);
  for (;;) {
    if (*stop >= 2) {
      kill_all(&c);
      rc = 130;
      goto done;
    }
    if (*stop && !warned && !o->quiet) {
      clear_bar(&c);
      fprintf(stderr, "snrun study: stopping after the %d running round%s (Ctrl-C again to stop now)\n", c.running,
              c.running == 1 ? "" : "s");
      warned = 1;
      if (c.bar) draw_bar(&c);
    }
    int alive = 0;
    for (int i = 0; i < c.nw; i++) {
      worker *w = &c.w[i];
      if (!w->alive) continue;
      alive++;
      if (w->busy || w->quitting) continue;
      char msg[64];
      if (!*stop && pick(&c, w, &w->task_k, &w->task_r)) {
        snprintf(msg, sizeof msg, "T %d %d\n", w->task_k, w->task_r);
        w->busy = 1;
        c.running++;
      } else {
        snprintf(msg, sizeof msg, "Q\n");
        w->quitting = 1;
      }
      if (w->rank) { /* an MPI rank: told by message; after "Q" it is done */
        snc_dist_send(w->rank, msg, strlen(msg));
        if (w->quitting) w->alive = 0, alive--;
      } else {
        st_write_all(w->to, msg, strlen(msg)); /* a failure shows as EOF on w->from */
      }
    }
    if (!alive) break;
    struct pollfd pf[256];
    int map[256], np = 0, remote = 0;
    for (int i = 0; i < c.nw; i++) remote |= c.w[i].alive && c.w[i].rank;
    for (int i = 0; i < c.nw && np < 256; i++)
      if (c.w[i].alive && !c.w[i].rank) pf[np] = (struct pollfd){.fd = c.w[i].from, .events = POLLIN}, map[np++] = i;
    int n = poll(pf, (nfds_t)np, remote ? 5 : c.bar ? 500 : 1000);
    if (remote && remote_messages(&c, err) != 0) {
      clear_bar(&c);
      kill_all(&c);
      goto done;
    }
    if (n < 0 && errno != EINTR) {
      snc_errorf(err, "poll: %s", strerror(errno));
      kill_all(&c);
      goto done;
    }
    for (int p = 0; p < np && n > 0; p++) {
      if (!pf[p].revents) continue;
      worker *w = &c.w[map[p]];
      if (w->n + 65536 > w->cap) {
        w->cap = w->cap ? w->cap * 2 : 131072;
        w->buf = realloc(w->buf, w->cap);
        SNC_ASSERT(w->buf);
      }
      ssize_t k = read(w->from, w->buf + w->n, w->cap - w->n - 1);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) { /* the worker has gone */
        int st;
        int busy = w->busy;
        reap(w, &st);
        if (busy || !w->quitting) {
          clear_bar(&c);
          snc_errorf(err, "a study worker (pid %d) died%s%s", (int)w->pid,
                     WIFSIGNALED(st) ? " from signal " : "", WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "");
          kill_all(&c);
          goto done;
        }
        continue;
      }
      w->n += (size_t)k;
      w->buf[w->n] = 0;
      char *line = w->buf, *nl;
      while ((nl = strchr(line, '\n'))) {
        char keep = nl[1]; /* the line keeps its newline: the journal wants it */
        nl[1] = 0;
        int bad = handle_line(&c, w, line, err);
        nl[1] = keep;
        if (bad) {
          clear_bar(&c);
          kill_all(&c);
          goto done;
        }
        line = nl + 1;
      }
      w->n -= (size_t)(line - w->buf);
      memmove(w->buf, line, w->n);
    }
    if (c.bar && now() - c.last_draw > 0.5) draw_bar(&c);
  }
  clear_bar(&c);
  rc = c.done == c.total ? 0 : *stop ? 130 : 1;
  if (rc == 1) snc_errorf(err, "the workers ended with %d of %d rounds done", c.done, c.total);
done:
  if (rc != 1) clear_bar(&c);
  s->wall = now() - c.t0;
  for (int i = 0; i < c.nw; i++) free(c.w[i].buf);
  free(c.w);
  free(c.assigned);
  free(c.left);
  free(c.best);
  return rc;
}
