/* The schedule table: this machine's tuning cache, the SNC_SCHEDULE override and the chooser the
 * code generator calls per kernel (include/snc/backend.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <llvm-c/TargetMachine.h>
#include <omp.h>

#include "snc/file.h"
#include "snc/backend.h"

typedef struct entry {
  char *shape;
  snc_cg_schedule s;
  double ms, ms_default;
} entry;

struct snc_sched_table {
  char dir[4096], path[4200];
  char *key;          /* the file's first line (without "\n") */
  int threads;        /* the thread count the schedules are for (part of the key) */
  entry *e;
  int n, cap;
  int use_cache;
  int trial;          /* >= 0 while tuning (tune.c): every kernel takes candidate `trial` */
  int max_cands;      /* the most candidates a kernel had (tuning) */
  int from_cache, from_override, scheduled; /* distinct shapes chosen for (not while tuning) */
  char **seen;        /* those shapes */
  int nseen, cap_seen;
  char *override;     /* SNC_SCHEDULE, copied */
  char warned[1024];  /* patterns already reported */
};

/* "model name", family, model and stepping from /proc/cpuinfo (x86; elsewhere what there is) */
static void cpu_model(char *buf, size_t n) {
  buf[0] = 0;
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512], name[256] = "", fam[32] = "", mod[32] = "", step[32] = "";
  while (fgets(line, sizeof line, f)) {
    char *c = strchr(line, ':');
    if (!c) {
      if (name[0]) break; /* the first processor's block is enough */
      continue;
    }
    char *v = c + 1 + (c[1] == ' ');
    v[strcspn(v, "\n")] = 0;
    if (!strncmp(line, "model name", 10) && !name[0]) snprintf(name, sizeof name, "%s", v);
    else if (!strncmp(line, "cpu family", 10) && !fam[0]) snprintf(fam, sizeof fam, "%s", v);
    else if (!strncmp(line, "model\t", 6) && !mod[0]) snprintf(mod, sizeof mod, "%s", v);
    else if (!strncmp(line, "stepping", 8) && !step[0]) snprintf(step, sizeof step, "%s", v);
  }
  fclose(f);
  snprintf(buf, n, "%s (family %s model %s stepping %s)", name, fam, mod, step);
}

static uint64_t fnv1a(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return h;
}

static entry *find(snc_sched_table *t, const char *shape) {
  for (int i = 0; i < t->n; i++)
    if (!strcmp(t->e[i].shape, shape)) return &t->e[i];
  return NULL;
}

int snc_sched_record(snc_sched_table *t, const char *shape, const snc_cg_schedule *s, double ms, double ms_default) {
  entry *e = find(t, shape);
  if (!e) {
    if (t->n == t->cap) {
      int cap = t->cap ? 2 * t->cap : 16;
      entry *ne = realloc(t->e, (size_t)cap * sizeof *ne);
      if (!ne) return -1;
      t->e = ne, t->cap = cap;
    }
    e = &t->e[t->n];
    if (!(e->shape = strdup(shape))) return -1;
    t->n++;
  }
  e->s = *s, e->ms = ms, e->ms_default = ms_default;
  return 0;
}

static void load(snc_sched_table *t) {
  FILE *f = fopen(t->path, "r");
  if (!f) return;
  char line[8192]; /* the key holds LLVM's whole feature list (about 900 characters on x86) */
  /* strcmp's value is only its sign (the sanitizers' strcmp returns -1, 0, 1): strip the newline first */
  int header = fgets(line, sizeof line, f) && !strncmp(line, "# ", 2) && strchr(line, '\n');
  if (header) line[strcspn(line, "\n")] = 0;
  if (!header || strcmp(line + 2, t->key) != 0) {
    fclose(f); /* another machine's or version's file under a colliding name: never read */
    return;
  }
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    char *tab = strchr(line, '\t');
    if (!tab || line[0] == '#') continue;
    *tab = 0;
    char *rest = tab + 1, *tab2 = strchr(rest, '\t');
    if (tab2) *tab2 = 0;
    snc_cg_schedule s;
    double ms = 0, md = 0;
    if (snc_cg_schedule_parse(rest, &s) != 0) continue; /* a damaged line: that shape is untuned */
    if (tab2) sscanf(tab2 + 1, "%lf\t%lf", &ms, &md);
    snc_sched_record(t, line, &s, ms, md);
  }
  fclose(f);
}

snc_sched_table *snc_sched_open(const char *dir, int use_cache, int threads, snc_error *err) {
  snc_sched_table *t = calloc(1, sizeof *t);
  if (!t) return snc_errorf(err, "out of memory for the schedule table"), NULL;
  t->use_cache = use_cache;
  t->trial = -1;
  t->threads = threads > 0 ? threads : omp_get_max_threads(); /* 0: OMP_NUM_THREADS, else the cores, as a run */
  char cpu[512];
  cpu_model(cpu, sizeof cpu);
  char *host = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
  size_t len = strlen(cpu) + strlen(host) + strlen(features) + 64;
  if ((t->key = malloc(len)))
    snprintf(t->key, len, "snc schedules %d: %s; %s; %s; threads %d", SNC_CG_SCHEDULE_VERSION, cpu, host, features,
             t->threads);
  LLVMDisposeMessage(host);
  LLVMDisposeMessage(features);
  const char *o = getenv("SNC_SCHEDULE");
  if (!t->key || (o && o[0] && !(t->override = strdup(o)))) {
    snc_sched_free(t);
    return snc_errorf(err, "out of memory for the schedule table"), NULL;
  }
  if (dir && dir[0] && strlen(dir) < sizeof t->dir) {
    snprintf(t->dir, sizeof t->dir, "%s", dir);
    snprintf(t->path, sizeof t->path, "%s/sched-%016llx.txt", dir, (unsigned long long)fnv1a(t->key));
    load(t);
  }
  return t;
}

void snc_sched_free(snc_sched_table *t) {
  if (!t) return;
  for (int i = 0; i < t->n; i++) free(t->e[i].shape);
  free(t->e);
  for (int i = 0; i < t->nseen; i++) free(t->seen[i]);
  free(t->seen);
  free(t->key);
  free(t->override);
  free(t);
}

static int index_of(const snc_cg_schedule *s, const snc_cg_schedule *cands, int n) {
  for (int i = 0; i < n; i++)
    if (snc_cg_schedule_equal(s, &cands[i])) return i;
  return -1;
}

static void warn_once(snc_sched_table *t, const char *what, const char *why) {
  size_t l = strlen(t->warned);
  if (strstr(t->warned, what) || l + strlen(what) + 2 >= sizeof t->warned) return;
  snprintf(t->warned + l, sizeof t->warned - l, "%s\n", what);
  fprintf(stderr, "snrun: SNC_SCHEDULE: '%s': %s\n", what, why);
}

/* the override's schedule for this kernel: its index among cands, or -1 */
static int override_of(snc_sched_table *t, const char *name, const char *shape, const snc_cg_schedule *cands, int n) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", t->override);
  for (char *save = NULL, *item = strtok_r(buf, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
    char *eq = strchr(item, '=');
    if (!eq) {
      warn_once(t, item, "expected PATTERN=SCHEDULE");
      continue;
    }
    *eq = 0;
    snc_cg_schedule s;
    if (snc_cg_schedule_parse(eq + 1, &s) != 0) {
      *eq = '=';
      warn_once(t, item, "not a schedule (e.g. 'tile r6 p4 v1 o0')");
      continue;
    }
    int all = !strcmp(item, "*");
    if (!all && strcmp(item, name) && strcmp(item, shape)) continue;
    int i = index_of(&s, cands, n);
    if (i >= 0) return i;
    if (!all) {
      *eq = '=';
      warn_once(t, item, "not among this kernel's schedules; its default is used");
    }
  }
  return -1;
}

/* counts a shape once (kernels of one shape are emitted for both regions and every call site) */
static int first_time(snc_sched_table *t, const char *shape) {
  for (int i = 0; i < t->nseen; i++)
    if (!strcmp(t->seen[i], shape)) return 0;
  if (t->nseen == t->cap_seen) {
    int cap = t->cap_seen ? 2 * t->cap_seen : 32;
    char **ns = realloc(t->seen, (size_t)cap * sizeof *ns);
    if (!ns) return 0;
    t->seen = ns, t->cap_seen = cap;
  }
  if (!(t->seen[t->nseen] = strdup(shape))) return 0;
  t->nseen++;
  return 1;
}

int snc_sched_choose(void *user, const char *name, const char *shape, const snc_cg_schedule *cands, int n) {
  snc_sched_table *t = user;
  if (t->trial >= 0) {
    if (n > t->max_cands) t->max_cands = n;
    return t->trial < n ? t->trial : 0;
  }
  int first = first_time(t, shape);
  t->scheduled += first;
  if (t->override) {
    int i = override_of(t, name, shape, cands, n);
    if (i >= 0) return t->from_override += first, i;
  }
  const entry *e = t->use_cache ? find(t, shape) : NULL;
  int i = e ? index_of(&e->s, cands, n) : -1;
  if (i >= 0) t->from_cache += first;
  return i >= 0 ? i : 0;
}

void snc_sched_counts(const snc_sched_table *t, int *from_cache, int *from_override, int *scheduled) {
  *from_cache = t->from_cache, *from_override = t->from_override, *scheduled = t->scheduled;
}

int snc_sched_threads(const snc_sched_table *t) { return t->threads; }

const char *snc_sched_path(const snc_sched_table *t) { return t->path; }

/* the tuner's own hooks (tune.c) */
void snc_sched_set_trial(snc_sched_table *t, int trial);
int snc_sched_max_candidates(const snc_sched_table *t);
void snc_sched_set_trial(snc_sched_table *t, int trial) {
  t->trial = trial;
  if (trial == 0) t->max_cands = 0;
}
int snc_sched_max_candidates(const snc_sched_table *t) { return t->max_cands; }

int snc_sched_save(snc_sched_table *t, snc_error *err) {
  if (!t->path[0]) return 0;
  if (mkdir(t->dir, 0755) != 0 && errno != EEXIST) {
    /* a nested default ($XDG_CACHE_HOME/snc, ~/.cache/snc): make the parents too */
    char p[4096];
    snprintf(p, sizeof p, "%s", t->dir);
    for (char *c = p + 1; *c; c++)
      if (*c == '/') *c = 0, mkdir(p, 0755), *c = '/';
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
      return snc_errorf(err, "%s: cannot create the cache directory: %s", t->dir, strerror(errno));
  }
  snc_file_out o;
  FILE *f = snc_file_begin(&o, t->path, "w", err);
  if (!f) return -1;
  fprintf(f, "# %s\n", t->key);
  for (int i = 0; i < t->n; i++) {
    char s[64];
    snc_cg_schedule_format(&t->e[i].s, s, sizeof s);
    fprintf(f, "%s\t%s\t%.4f\t%.4f\n", t->e[i].shape, s, t->e[i].ms, t->e[i].ms_default);
  }
  return snc_file_commit(&o, err);
}
