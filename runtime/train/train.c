/* The training loop: epochs, steps, per-epoch evaluation, the lines `snrun train` prints. Batches and
 * evaluation are in train_eval.c, checkpoints in train_ckpt.c (train_internal.h). */
#include "snc/dist.h"
#include "snc/backend.h"
#include "snc/train.h"
#include "numerics.h"
#include "train_dist.h"
#include "train_internal.h"

#include <math.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- printing ------------------------------------------------------------------------------------- */

static int col_width(const char *name) {
  int w = (int)strlen(name);
  return w < 7 ? 7 : w;
}

static const char *unit_of(const snc_graph *g) {
  return g->data.generator && !strcmp(g->data.generator, "mnist_pairs") ? "pairs" : "samples";
}

static void print_header(FILE *out, const snc_graph *g, const snc_train_opts *o, const snc_train_data *d, int64_t batch) {
  fprintf(out, "%s (%s):", g->name, g->file);
  for (int i = 0; i < g->nswitches; i++) {
    const snc_switch *s = &g->switches[i];
    if (s->is_bool)
      fprintf(out, " %s=%s", s->name, s->value ? "true" : "false");
    else
      fprintf(out, " %s=%g", s->name, s->value);
  }
  fprintf(out, "%s%lld train / %lld test %s, batch %d, %d epoch%s, seed %llu, backend %s\n", g->nswitches ? "; " : " ",
          (long long)d->train.n, (long long)d->test.n, unit_of(g), (int)batch, o->epochs, o->epochs == 1 ? "" : "s",
          (unsigned long long)o->seed,
          o->backend_name ? o->backend_name : "ref");
  fprintf(out, "epoch  train loss  train acc  test loss  test acc");
  for (int k = 1; k < g->noutputs && k < SNC_TRAIN_MAX_OUTPUTS; k++)
    fprintf(out, "  %*s", col_width(g->outputs[k].name), g->outputs[k].name);
  fprintf(out, "     time\n");
}

static void print_epoch(FILE *out, const snc_graph *g, const snc_epoch_stats *e) {
  double tr = e->train.noutputs ? 100 * e->train.acc[0] : NAN, te = e->test.noutputs ? 100 * e->test.acc[0] : NAN;
  char trs[32] = "        -"; /* the training set not evaluated this epoch (--eval-train) */
  if (!isnan(tr)) snprintf(trs, sizeof trs, "%8.2f%%", tr);
  fprintf(out, "%5d  %10.4f  %s  %9.4f  %7.2f%%", e->epoch, e->step_loss, trs, e->test.loss, te);
  for (int k = 1; k < e->test.noutputs; k++) fprintf(out, "  %*.2f%%", col_width(g->outputs[k].name) - 1, 100 * e->test.acc[k]);
  fprintf(out, "  %6.2f s\n", e->seconds);
  fflush(out);
}

/* --check-numerics found a NaN or Inf after a step: replays it on the reference executor from the
 * state saved before it, with the same batch, to name the first tensor that went bad. */
static int numerics_fail(const snc_graph *g, snc_numerics *nc, snc_backend *be, const snc_split *s, const uint32_t *perm,
                         int64_t first, int64_t nb, const snc_train_augment *aug, const snc_kctx *ctx, int ep, snc_error *err) {
  snc_error rerr = {0};
  snc_backend *ref = snc_numerics_replay_backend(nc, &rerr); /* NULL: the report names be's buffers only */
  if (ref) {
    snc_train_load_batch(g, ref, s, perm, first, nb, aug);
    ref->run(ref, SNC_RUN_STEP, ctx);
  }
  snc_numerics_report(nc, be, ref, ep, ctx->step, nb, err);
  if (ref) ref->free(ref);
  return -1;
}

/* ---- the loop ------------------------------------------------------------------------------------- */

int snc_eval_train_parse(const char *s, int *v) {
  static const char *const names[] = {"every", "end", "never"};
  for (int i = 0; i < 3; i++)
    if (s && !strcmp(s, names[i])) return *v = i, 0;
  return -1;
}

snc_train_opts snc_train_defaults(const snc_graph *g) {
  snc_train_opts o = {0};
  o.seed = g->train.seed;
  o.epochs = g->train.epochs;
  o.backend_name = "ref";
  return o;
}

void snc_train_result_free(snc_train_result *r) {
  if (!r) return;
  free(r->epoch);
  memset(r, 0, sizeof *r);
}

static int save(const snc_train_opts *o, const snc_graph *g, snc_backend *be, const snc_train_data *d, int epoch,
                int64_t step, snc_train_result *r, snc_error *err) {
  if (!o->save_path) return 0;
  snc_run_info info = {o->seed, epoch, step, d->standardized, d->mean, d->std};
  int failed = 0;
  if (!o->data_parallel || snc_dist_rank() == 0) /* data-parallel: rank 0 writes, every rank learns how it went */
    failed = snc_checkpoint_save(o->save_path, g, be, &info, err) != 0;
  if (o->data_parallel) {
    snc_dist_allreduce_max_i32(&failed, 1);
    if (failed && snc_dist_rank() != 0)
      snc_errorf(err, "%s: rank 0 could not write the checkpoint %s", g->file, o->save_path);
  }
  if (failed) return -1;
  r->saved = 1;
  return 0;
}

int snc_train(const snc_graph *g, snc_backend *be, const snc_train_opts *o, snc_train_result *r, snc_error *err) {
  snc_train_data d = {0};
  uint32_t *perm = NULL;
  snc_numerics *nc = NULL; /* --check-numerics */
  snc_dp *dp = NULL;       /* data-parallel over MPI ranks */
  FILE *out = o->out ? o->out : stdout;
  int rc = -1;
  double t0 = now(), step_time = 0;
  int64_t trained = 0; /* samples through training steps */
  memset(r, 0, sizeof *r);
  if (g->loss < 0) return snc_errorf(err, "%s: the model has no loss; nothing to train", g->file);
  if (g->nnodes == g->nforward) return snc_errorf(err, "%s: no backward graph (run snc_autodiff first)", g->file);
  if (o->epochs < 1) return snc_errorf(err, "%s: epochs must be at least 1 (got %d)", g->file, o->epochs);
  int64_t B = o->batch > 0 ? o->batch : g->batch; /* rows per step */
  int64_t share = o->data_parallel ? (B + snc_dist_size() - 1) / snc_dist_size() : B; /* the most one backend runs */
  if (share > g->batch)
    return snc_errorf(err, "%s: a step of %lld rows does not fit the compiled batch of %d", g->file, (long long)share, g->batch);
  int wide = o->eval_graph || o->eval_backend; /* evaluation on a wider build (snc_eval_build_new) */
  if (wide && (!o->eval_graph || !o->eval_backend || o->data_parallel))
    return snc_errorf(err, "%s: an evaluation build needs its graph and backend, and no data-parallel run", g->file);
  const snc_graph *eg = wide ? o->eval_graph : g;
  snc_backend *ebe = wide ? o->eval_backend : be;
  if (eg != g && snc_train_eval_sync(g, be, eg, ebe, err) != 0) return -1; /* checks every parameter's match */
  double td = now();
  int got = o->prefetch ? snc_train_prefetch_take(o->prefetch, g, o->data_dir, o->seed, &d, err) : 1;
  if (got < 0 || (got == 1 && snc_train_data_load(g, o->data_dir, o->seed, NULL, &d, err) != 0)) return -1;
  r->data_seconds = now() - td;
  r->mean = d.mean;
  r->std = d.std;
  if (d.train.n > UINT32_MAX) {
    snc_errorf(err, "%s: training set of %lld samples is too large", g->file, (long long)d.train.n);
    goto cleanup;
  }
  perm = malloc((size_t)d.train.n * sizeof *perm);
  r->epoch = calloc((size_t)o->epochs, sizeof *r->epoch);
  if (!perm || !r->epoch) {
    snc_errorf(err, "%s: out of memory for the training loop", g->file);
    goto cleanup;
  }
  if (o->check_numerics && !(nc = snc_numerics_new(g, err))) goto cleanup;
  if (o->data_parallel && !(dp = snc_dp_new(g, err))) goto cleanup;
  be->init_params(be, snc_seed_derive(o->seed, SNC_SEED_INIT));
  int ninit = 0, nstate = 0;
  if (o->init_path && (ninit = snc_checkpoint_init(o->init_path, g, be, &nstate, err)) < 0) goto cleanup;
  if (dp) snc_dp_bcast_state(dp, be); /* the same start on every rank, whatever its build */
  if (!o->quiet) {
    if (o->init_path)
      fprintf(out, "initial parameters from %s: %d tensors, optimizer state %s\n", o->init_path, ninit,
              nstate ? "from it too" : "fresh");
    print_header(out, g, o, &d, B);
  }
  if (save(o, g, be, &d, 0, 0, r, err) != 0) goto cleanup; /* a bad --save path fails before any work */

  snc_rng shuffle = snc_rng_seed(snc_seed_derive(o->seed, SNC_SEED_SHUFFLE));
  snc_kctx ctx = {.nb = g->batch, .seed = snc_seed_derive(o->seed, SNC_SEED_DROPOUT), .step = 0, .training = 1,
                  .lr_scale = 1};
  int64_t nbatches = (d.train.n + B - 1) / B, total_steps = nbatches * o->epochs;
  /* augmentation: zero fill is a raw pixel of 0, i.e. the background after standardisation */
  snc_train_augment aug = {snc_augment_on(&g->train), snc_seed_derive(o->seed, SNC_SEED_AUGMENT), 0,
                 d.standardized ? (0.0f - d.mean) / d.std : 0.0f};
  for (int ep = 1; ep <= o->epochs; ep++) {
    aug.epoch = ep;
    double te0 = now(), last_progress = 0, loss_sum = 0;
    snc_epoch_stats *e = &r->epoch[ep - 1];
    snc_rt_permutation(&shuffle, perm, (uint32_t)d.train.n); /* a fresh order every epoch */
    for (int64_t b = 0; b < nbatches; b++) {
      int64_t first = b * B, nb = d.train.n - first < B ? d.train.n - first : B;
      double ts = now();
      int stop = o->stop && *o->stop;
      ctx.step++;
      ctx.lr_scale = (float)snc_lr_scale(&g->train, ctx.step, total_steps);
      ctx.training = 1;
      if (dp) { /* this rank's rows of the batch; the gradients summed over the ranks */
        int64_t lo, mine;
        double loss;
        snc_dp_share(nb, &lo, &mine);
        if (mine > 0) snc_train_load_batch(g, be, &d.train, perm, first + lo, mine, aug.shift ? &aug : NULL);
        ctx.nb = mine;
        ctx.row0 = lo;
        snc_dp_step(dp, be, &ctx, nb, mine, &loss, &stop);
        loss_sum += loss * (double)nb;
      } else {
        snc_train_load_batch(g, be, &d.train, perm, first, nb, aug.shift ? &aug : NULL);
        ctx.nb = nb;
        if (nc) snc_numerics_save(nc, be); /* --check-numerics: the state before the step */
        be->run(be, SNC_RUN_STEP, &ctx);
        if (nc && !snc_numerics_ok(nc, be)) {
          if (o->progress && !o->quiet) fputs("\r\033[K", out);
          numerics_fail(g, nc, be, &d.train, perm, first, nb, aug.shift ? &aug : NULL, &ctx, ep, err);
          goto cleanup;
        }
        loss_sum += (double)*(float *)be->buf(be, g->loss) * (double)nb;
      }
      double te = now();
      step_time += te - ts;
      trained += nb;
      r->steps = ctx.step;
      if (stop) {
        r->interrupted = 1;
        if (o->progress && !o->quiet) fputs("\r\033[K", out);
        if (save(o, g, be, &d, ep - 1, ctx.step, r, err) != 0) goto cleanup;
        rc = 0;
        goto cleanup;
      }
      if (o->progress && !o->quiet && te - last_progress > 0.1) {
        fprintf(out, "\r%5d  %lld/%lld %s, loss %.4f", ep, (long long)(first + nb), (long long)d.train.n, unit_of(g),
                loss_sum / (double)(first + nb));
        fflush(out);
        last_progress = te;
      }
    }
    e->epoch = ep;
    e->step_loss = loss_sum / (double)d.train.n;
    e->step_seconds = now() - te0;
    double tv = now();
    if (eg != g) snc_train_eval_sync(g, be, eg, ebe, err); /* matched before the first epoch: cannot fail */
    if (o->eval_train == SNC_EVAL_TRAIN_EVERY || (o->eval_train == SNC_EVAL_TRAIN_END && ep == o->epochs))
      snc_train_evaluate(eg, ebe, &d.train, ctx.seed, &e->train, dp != NULL);
    else
      e->train = (snc_eval_result){.n = 0, .loss = NAN}; /* not asked for (--eval-train) */
    snc_train_evaluate(eg, ebe, &d.test, ctx.seed, &e->test, dp != NULL);
    e->seconds = now() - te0;
    r->eval_seconds += now() - tv;
    r->nepochs = ep;
    double acc = e->test.noutputs ? e->test.acc[0] : 0;
    if (ep == 1 || acc > r->best_acc) r->best_acc = acc, r->best_epoch = ep;
    r->final_acc = acc;
    if (save(o, g, be, &d, ep, ctx.step, r, err) != 0) goto cleanup;
    if (!o->quiet) {
      if (o->progress) fputs("\r\033[K", out);
      print_epoch(out, g, e);
    }
    if (o->on_epoch) o->on_epoch(e, o->user);
  }
  rc = 0;
cleanup:
  r->seconds = now() - t0;
  r->samples_per_sec = step_time > 0 ? (double)trained / step_time : 0;
  if (rc == 0 && !o->quiet && r->nepochs > 0) {
    const char *main_name = g->noutputs ? g->outputs[0].name : "loss";
    if (g->noutputs)
      fprintf(out, "final test accuracy %.2f%% (%s), best %.2f%% at epoch %d; ", 100 * r->final_acc, main_name,
              100 * r->best_acc, r->best_epoch);
    fprintf(out, "%d epoch%s in %.1f s, %.0f %s/s\n", r->nepochs, r->nepochs == 1 ? "" : "s", r->seconds,
            r->samples_per_sec, unit_of(g));
    fflush(out);
  }
  free(perm);
  snc_numerics_free(nc);
  snc_dp_free(dp);
  snc_train_data_free(&d);
  return rc;
}
