/* The training runtime behind `snrun`: backends, data sets bound to a model's inputs, the training
 * loop with per-epoch evaluation, checkpoints, and evaluation of a checkpoint.
 *
 *   snc_graph *g = snc_model_load("models/siamese.yaml", NULL, 0, &err);
 *   if (!g || snc_autodiff(g, 0, &err) != 0) ...             // training needs the backward graph
 *   snc_backend *be = snc_backend_new("ref", g, &err);        // the reference executor (or the JIT)
 *   snc_train_opts o = snc_train_defaults(g);                 // seed, epochs from the model
 *   o.save_path = "run/siamese.safetensors";                  // optional
 *   snc_train_result r = {0};
 *   if (snc_train(g, be, &o, &r, &err) != 0) { fprintf(stderr, "%s\n", err.msg); ... }
 *   printf("%.2f%%\n", 100 * r.final_acc);
 *   snc_train_result_free(&r);                                // frees r.epoch
 *   be->free(be);                                             // frees the backend's buffers; g stays
 *   snc_graph_free(g);
 *
 *   snc_eval_result e;                                        // `snrun eval`
 *   snc_eval_checkpoint("models/siamese.yaml", NULL, 0, "run/siamese.safetensors", NULL, NULL, NULL, &e, NULL, &err);
 *
 * Seeds: every random choice of a run derives from the run seed with snc_seed_derive and one purpose
 * per use (SNC_SEED_*): the training draw, the test draw, parameter init, dropout, shuffling.
 * The same seed gives the same run bit for bit; the test set depends only on the seed and the data.
 *
 * Errors are user errors (files, data, checkpoints): the functions return -1 with err naming the
 * file or the model place. Nothing allocates inside a training or evaluation step. */
#ifndef SNC_TRAIN_H
#define SNC_TRAIN_H
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "snc/backend.h"
#include "snc/data.h"
#include "snc/frontend.h"
#include "snc/ir.h"
#include "snc/kernel.h"

/* ---- data: the generator's streams, bound to the model's INPUT nodes ------------------------- */

#define SNC_TRAIN_MAX_STREAMS 4
#define SNC_TRAIN_MAX_OUTPUTS 16

enum { /* purposes for snc_seed_derive(run_seed, purpose) */
  SNC_SEED_DATA_TRAIN = 1,
  SNC_SEED_DATA_TEST = 2,
  SNC_SEED_INIT = 3,
  SNC_SEED_DROPOUT = 4,
  SNC_SEED_SHUFFLE = 5,
  SNC_SEED_AUGMENT = 6,
};

typedef struct snc_stream {
  const char *name; /* "pair", "target", "classes"; "image", "label" */
  snc_dtype dtype;
  int64_t per; /* elements per sample */
  void *data;  /* n * per elements, owned by the split's generator struct */
} snc_stream;

typedef struct snc_split {
  int64_t n;
  int nstreams;
  snc_stream s[SNC_TRAIN_MAX_STREAMS];
} snc_split;

typedef struct snc_train_data {
  const char *generator; /* g->data.generator */
  const char *dir;       /* dataset directory used (NULL: bundled / $SNC_DATA) */
  snc_split train, test; /* train.n is 0 when only the test set was drawn */
  int standardized;
  float mean, std; /* the training set's statistics applied to both splits when standardized */
  snc_pairs pairs[2];   /* mnist_pairs: owners of the stream arrays (train, test) */
  snc_digits digits[2]; /* mnist_digits */
} snc_train_data;

/* Draws the training and test sets of g->data from dir (NULL: g->data.dataset, which NULL means the
 * bundled set) with seeds derived from `seed`, standardises them when g->data.standardize. With
 * stored_ms (mean, std from a checkpoint) no training set is drawn and the test set is standardised
 * with those values. Then checks the sets against g (snc_train_data_check). Free with
 * snc_train_data_free (also after a failure). */
int snc_train_data_load(const snc_graph *g, const char *dir, uint64_t seed, const float *stored_ms,
                        snc_train_data *d, snc_error *err);
void snc_train_data_free(snc_train_data *d);
/* The draw of snc_train on a thread of its own, started before the compile so that the two overlap
 * (the run then waits only for what is left of it):
 *
 *   snc_train_prefetch *pf = snc_train_prefetch_start(g, o.data_dir, o.seed);  // NULL: draw later
 *   ... compile ...; o.prefetch = pf; snc_train(g, be, &o, &r, &err);
 *   snc_train_prefetch_free(pf);   // the caller's, always: joins the thread, frees what was not taken
 *
 * g must stay alive and unchanged until the free. snc_train takes the sets only when g, data_dir and
 * seed are the ones it was started with, and draws afresh otherwise. */
typedef struct snc_train_prefetch snc_train_prefetch;
snc_train_prefetch *snc_train_prefetch_start(const snc_graph *g, const char *dir, uint64_t seed);
void snc_train_prefetch_free(snc_train_prefetch *p);
/* 0: d is the prefetched draw (now the caller's); 1: p was started for another (g, dir, seed), d
 * untouched; -1: the draw failed (err says why, d empty). Joins the thread first. */
int snc_train_prefetch_take(snc_train_prefetch *p, const snc_graph *g, const char *dir, uint64_t seed,
                            snc_train_data *d, snc_error *err);

/* Every INPUT binds to a stream of the right dtype and size, and integer labels fit where the model
 * needs them: [0, classes) before one_hot, [0, C) for cross_entropy and argmax outputs, 0/1 for
 * thresholded outputs. Errors name the model place, the split, the sample and the value. */
int snc_train_data_check(const snc_graph *g, const snc_train_data *d, snc_error *err);

/* `snrun pairs` (runtime/train/train_export.c), for programs that link an emitted object (examples/):
 *   snc_data_export(g, &d, "out/", &err);  // out/train-pair.idx, out/test-target.idx, ...
 */
/* Writes every stream of d's training set (when drawn) and test set as uncompressed IDX files
 * <dir>/<split>-<stream>.idx: float32 streams as type 0x0D, int32 as 0x0C, big-endian as IDX
 * wants, with dimensions [n, per-sample shape of the model input bound to the stream]. The values
 * are exactly what the runtime feeds the model (standardised when d is). */
int snc_data_export(const snc_graph *g, const snc_train_data *d, const char *dir, snc_error *err);

/* ---- evaluation -------------------------------------------------------------------------------- */

typedef struct snc_eval_result {
  int64_t n;                           /* samples */
  double loss;                         /* mean total loss (NaN when the model has no loss) */
  int noutputs;                        /* g->noutputs, at most SNC_TRAIN_MAX_OUTPUTS */
  double acc[SNC_TRAIN_MAX_OUTPUTS];   /* accuracy of each output in [0, 1], model order */
} snc_eval_result;

/* Runs the forward graph in eval mode (ctx.training 0) over split s in order, batches of g->batch. */
void snc_evaluate(const snc_graph *g, snc_backend *be, const snc_split *s, uint64_t seed, snc_eval_result *r);

/* ---- training --------------------------------------------------------------------------------- */

typedef struct snc_epoch_stats {
  int epoch;           /* 1-based */
  double step_loss;    /* mean loss of the training steps of this epoch (training mode) */
  snc_eval_result train, test; /* eval mode after the epoch */
  double seconds;      /* the epoch's wall time, evaluation included */
  double step_seconds; /* of which training steps */
} snc_epoch_stats;

enum { SNC_EVAL_TRAIN_EVERY = 0, SNC_EVAL_TRAIN_END = 1, SNC_EVAL_TRAIN_NEVER = 2 };

typedef struct snc_train_opts {
  const char *data_dir;  /* overrides g->data.dataset; NULL: keep the model's */
  uint64_t seed;         /* the run seed */
  int epochs;            /* >= 1 */
  const char *save_path; /* checkpoint after every epoch and when interrupted; NULL: none */
  const char *backend_name; /* recorded in messages only */
  int quiet;             /* print nothing */
  int progress;          /* "\r" progress within an epoch (for a terminal) */
  FILE *out;             /* where lines go; NULL: stdout */
  void (*on_epoch)(const snc_epoch_stats *e, void *user); /* called after each epoch (may be NULL) */
  void *user;
  volatile sig_atomic_t *stop; /* when it becomes non-zero, stop after the current step (may be NULL) */
  int check_numerics; /* stop at a NaN or Inf in the loss, a gradient or a parameter, naming the first
                         tensor that went bad (the step replayed on the reference executor) */
  int data_parallel;  /* under mpirun (snc/dist.h): every rank calls snc_train with the same options and
                         computes its share of each batch; gradients are summed over the ranks before
                         the update (runtime/train_dist.h); evaluation is split over the ranks too.
                         be must run SNC_RUN_GRAD and SNC_RUN_APPLY (the reference executor, or the
                         JIT built with split_step). Only rank 0 writes the checkpoint. */
  int64_t batch;      /* rows per optimizer step; 0: g->batch. Data-parallel runs give each rank a graph of
                         its share (snc_model_load_batch with ceil(batch / ranks)) and the batch here */
  int eval_train;     /* when the training set is evaluated (eval mode, after the epoch):
                         SNC_EVAL_TRAIN_EVERY (0, every epoch), _END (after the last), _NEVER; an epoch
                         without it has train.noutputs 0 and train.loss NaN. The test set: every epoch */
  /* Evaluation on another build of the model (snc_eval_build_new: its forward graph for more rows, so
     fewer padded lanes and calls): when both are set, every evaluation runs on them after the
     forward state (parameters and running statistics, matched by name) is copied over from be.
     NULL: evaluation on (g, be). Not with data_parallel. */
  const snc_graph *eval_graph;
  snc_backend *eval_backend;
  const char *init_path; /* start from this checkpoint's parameters instead of the initialisation
                            (snc_checkpoint_init; snrun train --init); NULL: the model's init */
  snc_train_prefetch *prefetch; /* the sets drawn already (snc_train_prefetch_start); NULL: drawn here.
                                   r->data_seconds is then the wait for what was left of the draw */
} snc_train_opts;

/* "every", "end", "never" (--eval-train) to SNC_EVAL_TRAIN_*; -1 for anything else. */
int snc_eval_train_parse(const char *s, int *v);

/* ---- evaluation on a wider build (runtime/train/train_eval.c) ---------------------------------
 * A model trained in batches of 25 runs its kernels on 32 lanes (the batch padded to the vector
 * width): 22% of every evaluation wasted, and 40 calls for 1000 samples. Evaluation needs no
 * gradients, so the forward graph alone is built again for SNC_EVAL_BATCH rows and evaluates
 * in its place (snc_train_opts.eval_graph / eval_backend):
 *
 *   int eb = snc_eval_batch(g, 1, -1);   // before building g; 0: the training build is as good
 *   if (eb && snc_eval_build_new(path, sets, nsets, eb, &jit_opts, &eg, &ebe, &err) != 0) ...
 *   o.eval_graph = eg, o.eval_backend = ebe;
 *   ... snc_train ...; ebe->free(ebe); snc_graph_free(eg);
 *
 * Per sample the evaluation computes what the training build computes; the kernel schedules of the
 * wider shapes may sum in another order, so losses can differ at rounding level (docs/snrun.md). */
#define SNC_EVAL_BATCH 128
/* The rows of the evaluation build for g, known before g is built (so that the training build can
 * leave out its own evaluation: snc_jit_backend_opts.no_eval); jit 0 for the reference executor,
 * which gains nothing from lanes, gives 0: `requested` (snrun
 * --eval-batch N), or when it is negative SNC_EVAL_BATCH if evaluating the model's test split in
 * calls of that many rows runs on at least 5% fewer vector lanes than in calls of g->batch padded
 * rows (25 rows on 32 lanes: 20% fewer for 1000 samples; 100 on 112: 9%). Either is cut to the larger
 * of the model's splits, whose rows beyond would all be padding; 0 (no build) when that leaves no
 * more rows than g->batch. */
int snc_eval_batch(const snc_graph *g, int jit, int requested);
/* Loads `path` (with the same overrides as the training graph) for `batch` rows, forward only, and
 * builds its JIT backend with jo. *eg and *ebe become the caller's. Returns 0, or -1 with err. */
int snc_eval_build_new(const char *path, const snc_override *sets, int nsets, int batch, const snc_jit_backend_opts *jo,
                       snc_graph **eg, snc_backend **ebe, snc_error *err);

/* Options from the model: its seed and epochs, everything else off. */
snc_train_opts snc_train_defaults(const snc_graph *g);

typedef struct snc_train_result {
  int nepochs;             /* completed epochs, records in epoch[0 .. nepochs) */
  snc_epoch_stats *epoch;  /* owned; snc_train_result_free */
  double final_acc;        /* main metric (first output) on the test set after the last epoch */
  double best_acc;         /* best of those over the epochs */
  int best_epoch;
  double seconds;          /* whole run: data, init, training and evaluation */
  double samples_per_sec;  /* training samples per second of training steps */
  double data_seconds;     /* of seconds: drawing, standardising and checking the data sets */
  double eval_seconds;     /* of seconds: evaluation of the training and test sets */
  int64_t steps;           /* optimizer steps taken */
  int interrupted;         /* stopped through opts.stop */
  int saved;               /* a checkpoint was written to opts.save_path */
  float mean, std;         /* standardisation (0, 1 when off) */
} snc_train_result;

/* Trains g (after snc_autodiff) on backend be (built on g): data, init, the epochs, checkpoints.
 * Returns 0 also when interrupted (r->interrupted). */
int snc_train(const snc_graph *g, snc_backend *be, const snc_train_opts *o, snc_train_result *r, snc_error *err);
void snc_train_result_free(snc_train_result *r);

/* ---- schedules and augmentation (runtime/train_sched.c) -------------------------------------- */

/* The factor on t->lr at optimizer step `step` (1-based) of a run of total_steps: 1 for the constant
 * schedule; for onecycle PyTorch's OneCycleLR with max_lr = t->lr after step - 1 scheduler steps:
 * from lr/div_factor up to lr over the first pct_start of the steps, then down to
 * lr/div_factor/final_div_factor at the last step (cosine, or linear with anneal_linear). */
double snc_lr_scale(const snc_train_cfg *t, int64_t step, int64_t total_steps);
/* The offset (dy, dx), each uniform in [-shift, shift], of training image `image` (sample index in
 * the training set times channels + channel) in `epoch`; key derives from the run seed
 * (SNC_SEED_AUGMENT). Counter-based: independent of batch order and threads. */
void snc_augment_offsets(uint64_t key, int64_t epoch, int64_t image, int shift, int *dy, int *dx);
/* The counter every augmentation draw of training image `image` in `epoch` starts from; each draw
 * (shift, affine, elastic) mixes it with a stream constant of its own. */
uint64_t snc_augment_counter(uint64_t key, int64_t epoch, int64_t image);
/* dst = the h x w image src moved by dy rows down and dx columns right; uncovered pixels get fill. */
void snc_augment_shift(float *dst, const float *src, int64_t h, int64_t w, int dy, int dx, float fill);

/* ---- affine augmentation (runtime/train_augment.c) ------------------------------------------- */

/* Whether t augments training images at all (shift, rotate, scale or elastic). */
int snc_augment_on(const snc_train_cfg *t);
/* The rotation (degrees, uniform in [-rotate, rotate]) and scale factor (uniform in
 * [1 - scale, 1 + scale]) of training image `image` in `epoch`, drawn from the same counter as
 * snc_augment_offsets but an independent stream. */
void snc_augment_affine_draw(uint64_t key, int64_t epoch, int64_t image, float rotate, float scale, double *deg,
                             double *factor);
/* dst = the h x w image src rotated by deg degrees (counter-clockwise as displayed, rows down),
 * scaled by factor about its centre, then moved by dy rows down and dx columns right; bilinear
 * sampling, pixels from outside src count as fill. deg 0, factor 1 gives snc_augment_shift's image. */
void snc_augment_affine(float *dst, const float *src, int64_t h, int64_t w, double deg, double factor, int dy, int dx,
                        float fill);
/* The most control points per side of an elastic field (augment: {grid: n}, 2 <= n <= 8). */
#define SNC_AUGMENT_GRID_MAX 8
/* The grid x grid control displacements of training image `image` in `epoch`: ctl[2 k] rows down and
 * ctl[2 k + 1] columns right at control point k (row-major), each uniform in [-elastic, elastic];
 * the counter of snc_augment_offsets, an independent stream. ctl holds 2 * grid * grid floats. */
void snc_augment_elastic_draw(uint64_t key, int64_t epoch, int64_t image, float elastic, int grid, float *ctl);
/* snc_augment_affine, then each destination pixel samples its source point moved by the displacement
 * bilinearly interpolated from the grid x grid control values ctl (corner control points at the
 * image's corner pixels); ctl NULL is snc_augment_affine. */
void snc_augment_warp(float *dst, const float *src, int64_t h, int64_t w, double deg, double factor, int dy, int dx,
                      const float *ctl, int grid, float fill);
/* One training image of this epoch as t's augmentation has it: the shift of snc_augment_offsets and,
 * when t rotates, scales or warps, the transform of snc_augment_affine_draw and
 * snc_augment_elastic_draw (snc_augment_warp). Shift only: exactly
 * snc_augment_shift (the draws and images of models without rotate and scale are unchanged). */
void snc_augment_image(const snc_train_cfg *t, uint64_t key, int64_t epoch, int64_t image, float *dst, const float *src,
                       int64_t h, int64_t w, float fill);

/* ---- checkpoints (safetensors, atomic) ------------------------------------------------------- */

typedef struct snc_run_info {
  uint64_t seed;
  int epoch;      /* completed epochs */
  int64_t step;   /* optimizer steps taken */
  int standardized;
  float mean, std;
} snc_run_info;

/* Writes every PARAM node of g (parameters, batchnorm state, optimizer state) under its node name,
 * the step as an I32 scalar "step", and metadata: model, model_file, switches, seed, epoch, step,
 * generator, standardize, mean, std. */
int snc_checkpoint_save(const char *path, const snc_graph *g, snc_backend *be, const snc_run_info *info,
                        snc_error *err);
/* Reads path into every PARAM node of g (a forward-only graph needs no optimizer state), checking
 * the model name and every tensor's presence and shape; fills info from the metadata. */
int snc_checkpoint_load(const char *path, const snc_graph *g, snc_backend *be, snc_run_info *info,
                        snc_error *err);

/* `snrun train --init`: the parameters of g (after snc_autodiff) from the checkpoint at path, written by
 * `snrun train --save` or by `snc import --weights`: every forward parameter (weights, running
 * statistics) must be there with its shape; optimizer state is read when present and otherwise left
 * as it is (zero after init_params); the step count and the data statistics are not taken (the run
 * starts its schedule afresh and standardises its own data). Returns the tensors read (*nstate of them
 * optimizer state), or -1 with err naming the file and the tensor. */
int snc_checkpoint_init(const char *path, const snc_graph *g, snc_backend *be, int *nstate, snc_error *err);

/* `snrun eval`: loads the model with the checkpoint's switch values (an explicit --set wins), its
 * parameters, and evaluates the test set drawn with the checkpoint's seed (or *seed when given) and
 * its stored standardisation. data_dir NULL: the model's dataset. jit: on the JIT built with these
 * options (the compiled-module cache makes that a load); NULL: on the reference executor. On success
 * *g_out (may be NULL) receives the loaded graph (the caller frees it). */
int snc_eval_checkpoint(const char *model, const snc_override *sets, int nsets, const char *ckpt,
                        const char *data_dir, const uint64_t *seed, const snc_jit_backend_opts *jit,
                        snc_eval_result *r, snc_graph **g_out, snc_error *err);

#endif
