/* Private to runtime/study*.c: the study's parameters, settings and rounds, and the functions the
 * study files share. The public interface is include/snc/study.h. */
#ifndef SNC_STUDY_INTERNAL_H
#define SNC_STUDY_INTERNAL_H
#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "snc/file.h"
#include "snc/study.h"
#include "snc/train.h"

#define ST_MAX_VALS 32                 /* values per grid switch */
#define ST_MAX_OUT SNC_TRAIN_MAX_OUTPUTS
#define ST_PATH 4096

typedef struct st_epoch {
  int epoch;
  double step_loss, train_loss, test_loss, seconds, step_seconds;
  double train_acc[ST_MAX_OUT], test_acc[ST_MAX_OUT];
} st_epoch;

typedef struct st_round {
  int done;
  int setting, round, nepochs;
  uint64_t seed;
  double seconds;   /* the whole round: data, init, training, evaluation */
  double final_acc; /* test accuracy of the main output after the last epoch */
  st_epoch *ep;     /* nepochs records, owned by the study */
} st_round;

typedef struct st_setting {
  char label[256];  /* "none", "aux_loss", "weight_sharing + aux_loss", "width=120" */
  char file[512];   /* file-name form: "weight_sharing=true,aux_loss=false" */
  int vi[SNC_STUDY_MAX_GRID]; /* index of each grid switch's value */
  snc_override ov[SNC_STUDY_MAX_SETS + SNC_STUDY_MAX_GRID]; /* fixed sets, then the grid values */
  int nov;
} st_setting;

typedef struct st_study {
  /* parameters: the journal's header; a resume must match them */
  char model[ST_PATH];        /* absolute path of the model file */
  uint64_t model_hash;        /* FNV-1a of its contents */
  char sets[SNC_STUDY_MAX_SETS][256];       /* "name=value" as given */
  char setk[SNC_STUDY_MAX_SETS][128], setv[SNC_STUDY_MAX_SETS][128];
  int nsets;
  char gname[SNC_STUDY_MAX_GRID][128];
  int gbool[SNC_STUDY_MAX_GRID];
  char gval[SNC_STUDY_MAX_GRID][ST_MAX_VALS][64]; /* canonical: true/false or %.17g */
  int nval[SNC_STUDY_MAX_GRID];
  int ngrid;
  int rounds, epochs;
  uint64_t seed;
  char data[ST_PATH];         /* "" : the model's dataset */
  char backend[16];
  /* from the model */
  char name[128];
  char outputs[ST_MAX_OUT][128];
  int noutputs;
  /* settings and rounds */
  st_setting *settings;
  int nsettings, reference;   /* reference: every grid switch off (else setting 0) */
  st_round *r;                /* [setting * rounds + round] */
  /* the run */
  char dir[ST_PATH];
  int journal_fd, lock_fd;
  int jobs, threads;
  int eval_train;             /* SNC_EVAL_TRAIN_*: not a parameter (the table does not depend on it) */
  int eval_batch;             /* rows of the evaluation build: 0 none, -1 automatic; not a parameter either */
  int no_tune;                /* 1: kernels on their default schedules, the tuning cache ignored */
  char cache[ST_PATH];        /* the compiled-module cache the workers share; "" none */
  int remote;                 /* MPI ranks working for rank 0 (mpirun), each one more worker */
  int ncompiles, ncached;     /* backends built; of them loaded from the compiled-module cache */
  double compile_seconds, wall;
  int resumed_done;           /* rounds found in the journal at the start */
} st_study;

static inline st_round *st_at(const st_study *s, int setting, int round) { return &s->r[setting * s->rounds + round]; }

/* study_journal.c: files and the journal (atomic whole files: snc_file_write_atomic) */
/* writes all n bytes (retrying short writes and EINTR); 0 or -1 with errno */
int st_write_all(int fd, const char *p, size_t n);
uint64_t st_fnv(const void *p, size_t n, uint64_t h);
/* The header text of the journal (the study's parameters), NUL-terminated, malloc'd. */
char *st_header_text(const st_study *s);
/* One journal line for a finished round (with its checksum and newline), malloc'd. */
char *st_round_line(const st_study *s, const st_round *r);
/* Parses a round line into r (allocating r->ep); -1 when malformed or its checksum is wrong. */
int st_round_parse(const st_study *s, const char *line, st_round *r);
/* Creates DIR/journal with the header (temp + fsync + rename) and opens it for appending. */
int st_journal_create(st_study *s, snc_error *err);
/* Reads the header of DIR/journal into s (parameters only); returns -1 when it is not a study folder. */
int st_journal_read_header(const char *dir, st_study *s, snc_error *err);
/* The parameters from a header's text (st_header_text); -1 when it is malformed. */
int st_header_parse(const char *text, st_study *s);
/* Opens DIR/journal for appending (locked against a second process) and loads its rounds into s,
 * dropping a torn last line. */
int st_journal_open(st_study *s, snc_error *err);
/* Appends one line with a single write and fsync. */
int st_journal_append(st_study *s, const char *line, snc_error *err);

/* study_workers.c: runs the rounds not done yet. Returns 0, 1 (err), 130 (interrupted). */
int st_run_rounds(st_study *s, const snc_study_opts *o, snc_error *err);
/* An MPI rank > 0 of a distributed study: runs the rounds rank 0 sends until told to stop. With
 * fail (this rank could not set up the study), reports it to rank 0 instead. Returns 0. */
int st_remote_worker(st_study *s, const char *fail);
/* Path of setting k's best checkpoint. */
void st_best_path(const st_study *s, int k, char *buf, size_t n);

/* study_report.c */
typedef struct st_row {
  snc_study_stat acc;    /* final test accuracy over the setting's finished rounds, in [0, 1] */
  double relative;       /* acc.mean / the reference's acc.mean (NaN when unknown) */
  double seconds;        /* mean seconds per round */
  int best_round;        /* highest final accuracy (first round on ties), -1 when none */
} st_row;
void st_table(const st_study *s, st_row *rows);
void st_print_table(const st_study *s, FILE *out);
int st_write_results(const st_study *s, snc_error *err);

/* study_plot.c: data files, the gnuplot script and, when gnuplot is on PATH, the figures. */
void st_plot(const st_study *s, FILE *out, int quiet);

#endif
