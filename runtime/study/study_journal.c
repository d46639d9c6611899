/* The study's journal (DIR/journal): a header with the study's parameters, then one line per
 * finished round, appended by the parent process with a single write and fsync. A line ends with a
 * checksum, so a line torn by a crash is recognised and dropped on resume. Also the atomic file
 * writer (temp + fsync + rename) the study's other outputs use. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "study_internal.h"

/* The limits of a journal (docs/robustness.md, "Limits"), checked before the memory they bound is
 * allocated: the file is read only up to its limit, a round line may claim only as many epochs as
 * the study has and as its length can hold. rounds and epochs as `snrun study` accepts them. */
#define ST_JOURNAL_MAX_BYTES (256 << 20) /* a 20-round, 25-epoch study writes 0.4 MB */
#define ST_JOURNAL_MAX_ROUNDS 100000
#define ST_JOURNAL_MAX_EPOCHS 1000000

uint64_t st_fnv(const void *p, size_t n, uint64_t h) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ull;
  return h;
}


int st_write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}


/* ---- a growing string ------------------------------------------------------------------------------ */

typedef struct sbuf {
  char *p;
  size_t n, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    SNC_ASSERT(k >= 0);
    if (b->p && b->n + (size_t)k < b->cap) {
      b->n += (size_t)k;
      return;
    }
    size_t cap = b->cap ? b->cap * 2 : 1024;
    while (cap < b->n + (size_t)k + 1) cap *= 2;
    char *q = realloc(b->p, cap);
    SNC_ASSERT(q);
    b->p = q;
    b->cap = cap;
  }
}

/* ---- header --------------------------------------------------------------------------------------- */

char *st_header_text(const st_study *s) {
  sbuf b = {0};
  sb_printf(&b, "snc-study 1\nmodel %s\nmodel_fnv %016" PRIx64 "\n", s->model, s->model_hash);
  for (int i = 0; i < s->nsets; i++) sb_printf(&b, "set %s\n", s->sets[i]);
  for (int i = 0; i < s->ngrid; i++) {
    sb_printf(&b, "grid %s=", s->gname[i]);
    for (int v = 0; v < s->nval[i]; v++) sb_printf(&b, "%s%s", v ? "," : "", s->gval[i][v]);
    sb_printf(&b, "\n");
  }
  sb_printf(&b, "rounds %d\nseed %" PRIu64 "\nepochs %d\ndata %s\nbackend %s\nend\n", s->rounds, s->seed, s->epochs,
            s->data, s->backend);
  return b.p;
}

/* The whole file, or NULL on a read error; *too_big when it passes ST_JOURNAL_MAX_BYTES (then
 * only that much was read). */
static char *slurp_fd(int fd, size_t *len, int *too_big) {
  sbuf b = {0};
  char chunk[65536];
  ssize_t k;
  *too_big = 0;
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_size > ST_JOURNAL_MAX_BYTES) { /* refused before reading */
    *too_big = 1;
    *len = 0;
    return calloc(1, 1);
  }
  lseek(fd, 0, SEEK_SET);
  b.p = malloc(1);
  b.cap = 1;
  SNC_ASSERT(b.p);
  while ((k = read(fd, chunk, sizeof chunk)) != 0) {
    if (k < 0) {
      if (errno == EINTR) continue;
      free(b.p);
      return NULL;
    }
    if (b.n + (size_t)k + 1 > b.cap) {
      while (b.n + (size_t)k + 1 > b.cap) b.cap *= 2;
      b.p = realloc(b.p, b.cap);
      SNC_ASSERT(b.p);
    }
    memcpy(b.p + b.n, chunk, (size_t)k);
    b.n += (size_t)k;
    if (b.n > ST_JOURNAL_MAX_BYTES) {
      *too_big = 1;
      break;
    }
  }
  b.p[b.n] = 0;
  *len = b.n;
  return b.p;
}

/* A decimal in [1, max], or 0 (out of range or not a number: refused as such). */
static long long bounded(const char *v, long long max) {
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  return errno || end == v || *end || x < 1 || x > max ? 0 : x;
}

#define BAD(...) (snprintf(why, ST_WHY, __VA_ARGS__), -1)
enum { ST_WHY = 160 };

/* Parses the header at text into s; returns the offset just past "end\n", or -1 with *lineno and
 * why (ST_WHY bytes) saying where and what. */
static long parse_header(const char *text, st_study *s, int *lineno, char *why) {
  const char *p = text;
  *lineno = 1;
  if (strncmp(p, "snc-study 1\n", 12)) return BAD("not a study journal (the first line is not 'snc-study 1')");
  p += 12;
  s->nsets = s->ngrid = s->rounds = s->epochs = 0;
  s->data[0] = 0;
  for (;;) {
    ++*lineno;
    const char *nl = strchr(p, '\n');
    if (!nl) return BAD("the header ends without 'end'");
    char line[ST_PATH + 64];
    size_t len = (size_t)(nl - p);
    if (len >= sizeof line) return BAD("a header line longer than %d bytes", (int)sizeof line - 1);
    memcpy(line, p, len);
    line[len] = 0;
    p = nl + 1;
    if (!strcmp(line, "end")) {
      if (s->rounds < 1 || s->epochs < 1) return BAD("the header has no 'rounds' or no 'epochs' line");
      return (long)(p - text);
    }
    char *sp = strchr(line, ' ');
    const char *val = sp ? sp + 1 : "";
    if (sp) *sp = 0;
    if (!strcmp(line, "model")) {
      snprintf(s->model, sizeof s->model, "%s", val);
    } else if (!strcmp(line, "model_fnv")) {
      s->model_hash = strtoull(val, NULL, 16);
    } else if (!strcmp(line, "set")) {
      if (s->nsets == SNC_STUDY_MAX_SETS) return BAD("more than %d 'set' lines", SNC_STUDY_MAX_SETS);
      snprintf(s->sets[s->nsets++], sizeof s->sets[0], "%s", val);
    } else if (!strcmp(line, "grid")) {
      if (s->ngrid == SNC_STUDY_MAX_GRID) return BAD("more than %d 'grid' lines", SNC_STUDY_MAX_GRID);
      int i = s->ngrid++;
      const char *eq = strchr(val, '=');
      if (!eq) return BAD("'grid' without '='");
      snprintf(s->gname[i], sizeof s->gname[i], "%.*s", (int)(eq - val), val);
      s->nval[i] = 0;
      for (const char *v = eq + 1; *v;) {
        size_t l = strcspn(v, ",");
        if (s->nval[i] == ST_MAX_VALS) return BAD("a grid switch with more than %d values", ST_MAX_VALS);
        snprintf(s->gval[i][s->nval[i]++], sizeof s->gval[i][0], "%.*s", (int)l, v);
        v += l + (v[l] == ',');
      }
      s->gbool[i] = !strcmp(s->gval[i][0], "true") || !strcmp(s->gval[i][0], "false");
    } else if (!strcmp(line, "rounds")) {
      if (!(s->rounds = (int)bounded(val, ST_JOURNAL_MAX_ROUNDS)))
        return BAD("rounds '%.20s' is not a number from 1 to %d", val, ST_JOURNAL_MAX_ROUNDS);
    } else if (!strcmp(line, "seed")) {
      s->seed = strtoull(val, NULL, 10);
    } else if (!strcmp(line, "epochs")) {
      if (!(s->epochs = (int)bounded(val, ST_JOURNAL_MAX_EPOCHS)))
        return BAD("epochs '%.20s' is not a number from 1 to %d", val, ST_JOURNAL_MAX_EPOCHS);
    } else if (!strcmp(line, "data")) {
      snprintf(s->data, sizeof s->data, "%s", val);
    } else if (!strcmp(line, "backend")) {
      snprintf(s->backend, sizeof s->backend, "%s", val);
    } else {
      return BAD("unknown header line '%.40s'", line);
    }
  }
}

int st_header_parse(const char *text, st_study *s) {
  int lineno;
  char why[ST_WHY];
  return parse_header(text, s, &lineno, why) < 0 ? -1 : 0;
}

int st_journal_read_header(const char *dir, st_study *s, snc_error *err) {
  char path[ST_PATH + 16];
  snprintf(path, sizeof path, "%s/journal", dir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return snc_errorf(err, "%s: not a study folder (no journal: %s)", dir, strerror(errno));
  size_t len;
  int too_big, lineno = 0;
  char why[ST_WHY] = "";
  char *text = slurp_fd(fd, &len, &too_big);
  close(fd);
  if (!text) return snc_errorf(err, "%s: cannot read: %s", path, strerror(errno));
  long off = too_big ? -1 : parse_header(text, s, &lineno, why);
  free(text);
  if (too_big) return snc_errorf(err, "%s: larger than %d MiB, the limit of a journal", path, ST_JOURNAL_MAX_BYTES >> 20);
  if (off < 0) return snc_errorf(err, "%s:%d: the header of the journal is damaged: %s", path, lineno, why);
  return 0;
}

int st_journal_create(st_study *s, snc_error *err) {
  char path[ST_PATH + 16];
  snprintf(path, sizeof path, "%s/journal", s->dir);
  char *h = st_header_text(s);
  int rc = snc_file_write_atomic(path, h, strlen(h), err);
  free(h);
  return rc;
}

/* ---- rounds --------------------------------------------------------------------------------------- */

char *st_round_line(const st_study *s, const st_round *r) {
  sbuf b = {0};
  sb_printf(&b, "round %d %d %" PRIu64 " %d %.17g %.17g %d", r->setting, r->round, r->seed, r->nepochs, r->seconds,
            r->final_acc, s->noutputs);
  for (int e = 0; e < r->nepochs; e++) {
    const st_epoch *x = &r->ep[e];
    sb_printf(&b, " %d %.17g %.17g", x->epoch, x->step_loss, x->train_loss);
    for (int k = 0; k < s->noutputs; k++) sb_printf(&b, " %.17g", x->train_acc[k]);
    sb_printf(&b, " %.17g", x->test_loss);
    for (int k = 0; k < s->noutputs; k++) sb_printf(&b, " %.17g", x->test_acc[k]);
    sb_printf(&b, " %.17g %.17g", x->seconds, x->step_seconds);
  }
  uint64_t ck = st_fnv(b.p, b.n, 0xcbf29ce484222325ull);
  sb_printf(&b, " ck %016" PRIx64 "\n", ck);
  return b.p;
}

static int num(const char **p, double *v) {
  char *end;
  *v = strtod(*p, &end);
  if (end == *p) return -1;
  *p = end;
  return 0;
}

static int inum(const char **p, long long *v) {
  char *end;
  *v = strtoll(*p, &end, 10);
  if (end == *p) return -1;
  *p = end;
  return 0;
}

int st_round_parse(const st_study *s, const char *line, st_round *r) {
  memset(r, 0, sizeof *r);
  const char *ck = strstr(line, " ck ");
  if (strncmp(line, "round ", 6) || !ck) return -1;
  uint64_t want = strtoull(ck + 4, NULL, 16);
  if (st_fnv(line, (size_t)(ck - line), 0xcbf29ce484222325ull) != want) return -1;
  const char *p = line + 6;
  long long setting, round, nep, nout;
  char *end;
  if (inum(&p, &setting) || inum(&p, &round)) return -1;
  r->seed = strtoull(p, &end, 10);
  if (end == p) return -1;
  p = end;
  if (inum(&p, &nep) || num(&p, &r->seconds) || num(&p, &r->final_acc) || inum(&p, &nout)) return -1;
  /* each epoch is 5 + 2 * noutputs numbers of at least 2 bytes (" 1"): no more epochs than fit in the
   * line, so a damaged count cannot make the reader allocate more than the line's size */
  long long fit = (long long)(ck - p) / (2 * (5 + 2 * (long long)s->noutputs));
  if (setting < 0 || setting >= s->nsettings || round < 0 || round >= s->rounds || nep < 1 || nep > s->epochs ||
      nep > ST_JOURNAL_MAX_EPOCHS || nep > fit || nout != s->noutputs)
    return -1;
  r->setting = (int)setting;
  r->round = (int)round;
  r->nepochs = (int)nep;
  r->ep = calloc((size_t)nep, sizeof *r->ep);
  SNC_ASSERT(r->ep);
  for (int e = 0; e < r->nepochs; e++) {
    st_epoch *x = &r->ep[e];
    long long ep;
    int bad = inum(&p, &ep) || num(&p, &x->step_loss) || num(&p, &x->train_loss);
    for (int k = 0; k < s->noutputs && !bad; k++) bad = num(&p, &x->train_acc[k]);
    bad = bad || num(&p, &x->test_loss);
    for (int k = 0; k < s->noutputs && !bad; k++) bad = num(&p, &x->test_acc[k]);
    bad = bad || num(&p, &x->seconds) || num(&p, &x->step_seconds);
    if (bad) {
      free(r->ep);
      r->ep = NULL;
      return -1;
    }
    x->epoch = (int)ep;
  }
  if (p != ck) {
    free(r->ep);
    r->ep = NULL;
    return -1;
  }
  r->done = 1;
  return 0;
}

int st_journal_open(st_study *s, snc_error *err) {
  char path[ST_PATH + 16];
  snprintf(path, sizeof path, "%s/journal", s->dir);
  int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
  if (fd < 0) return snc_errorf(err, "%s: cannot open: %s", path, strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return snc_errorf(err, "%s: another `snrun study` is running in this folder", s->dir);
  }
  size_t len;
  int too_big, lineno = 1;
  char why[ST_WHY] = "";
  char *text = slurp_fd(fd, &len, &too_big);
  st_study hdr = {0};
  long off = text && !too_big ? parse_header(text, &hdr, &lineno, why) : -1;
  if (off < 0) {
    free(text);
    close(fd);
    if (too_big) return snc_errorf(err, "%s: larger than %d MiB, the limit of a journal", path, ST_JOURNAL_MAX_BYTES >> 20);
    if (!text) return snc_errorf(err, "%s: cannot read: %s", path, strerror(errno));
    return snc_errorf(err, "%s:%d: the header of the journal is damaged: %s", path, lineno, why);
  }
  lineno = 1;
  for (const char *q = text; q < text + off; q++) lineno += *q == '\n';
  size_t pos = (size_t)off, keep = (size_t)off;
  while (pos < len) {
    const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
    if (!nl) break; /* torn tail without a newline */
    text[nl - text] = 0;
    st_round r;
    if (st_round_parse(s, line, &r) != 0) {
      if ((size_t)(nl - text) + 1 == len) break; /* the last line: torn by a crash */
      free(text);
      close(fd);
      return snc_errorf(err, "%s:%d: damaged line in the middle of the journal", path, lineno);
    }
    st_round *slot = st_at(s, r.setting, r.round);
    if (slot->done) {
      free(r.ep); /* a duplicate cannot come from snrun; keep the first */
    } else {
      *slot = r;
      s->resumed_done++;
    }
    pos = keep = (size_t)(nl - text) + 1;
    lineno++;
  }
  free(text);
  if (keep < len && ftruncate(fd, (off_t)keep) != 0) {
    close(fd);
    return snc_errorf(err, "%s: cannot drop the torn last line: %s", path, strerror(errno));
  }
  s->journal_fd = fd; /* keeps the lock until the study ends */
  return 0;
}

int st_journal_append(st_study *s, const char *line, snc_error *err) {
  size_t n = strlen(line);
  ssize_t w;
  do w = write(s->journal_fd, line, n);
  while (w < 0 && errno == EINTR);
  if (w != (ssize_t)n || fsync(s->journal_fd) != 0)
    return snc_errorf(err, "%s/journal: cannot append: %s", s->dir, w < 0 ? strerror(errno) : "short write");
  return 0;
}
