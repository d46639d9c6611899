/* The study's report: the seed's Table II on the terminal (mean ± std of the final test accuracy
 * per setting, min, max, relative to the reference setting, time per round), results.csv (one row
 * per round and epoch) and results.json (parameters, table, every round), both written atomically.
 * Rows come in setting and round order, whatever order the workers finished them in. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "study_internal.h"

void st_table(const st_study *s, st_row *rows) {
  double *x = malloc((size_t)s->rounds * sizeof *x);
  SNC_ASSERT(x);
  for (int k = 0; k < s->nsettings; k++) {
    st_row *w = &rows[k];
    int n = 0;
    double sec = 0;
    w->best_round = -1;
    for (int r = 0; r < s->rounds; r++) {
      const st_round *q = &s->r[k * s->rounds + r];
      if (!q->done) continue;
      x[n++] = q->final_acc;
      sec += q->seconds;
      if (w->best_round < 0 || q->final_acc > s->r[k * s->rounds + w->best_round].final_acc) w->best_round = r;
    }
    snc_study_stat_of(x, n, &w->acc);
    w->seconds = n ? sec / n : NAN;
  }
  for (int k = 0; k < s->nsettings; k++) {
    double ref = rows[s->reference].acc.mean;
    rows[k].relative = rows[k].acc.n && rows[s->reference].acc.n && ref > 0 ? rows[k].acc.mean / ref : NAN;
  }
  free(x);
}

static void fmt_wall(double sec, char *buf, size_t n) {
  int t = (int)(sec + 0.5);
  if (t >= 60)
    snprintf(buf, n, "%dm%02ds", t / 60, t % 60);
  else
    snprintf(buf, n, "%.1f s", sec);
}

void st_print_table(const st_study *s, FILE *out) {
  st_row *rows = calloc((size_t)s->nsettings, sizeof *rows);
  SNC_ASSERT(rows);
  st_table(s, rows);
  int lw = 7, done = 0;
  double sum_sec = 0;
  for (int k = 0; k < s->nsettings; k++) {
    int l = (int)strlen(s->settings[k].label);
    if (l > lw) lw = l;
    done += rows[k].acc.n;
    if (rows[k].acc.n) sum_sec += rows[k].seconds * rows[k].acc.n;
  }
  char acc_head[160];
  snprintf(acc_head, sizeof acc_head, "test accuracy (%s)", s->outputs[0]);
  fprintf(out, "\n%-*s  rounds  %-22s  %7s  %7s  relative  time/round\n", lw, "setting", acc_head, "min", "max");
  for (int k = 0; k < s->nsettings; k++) {
    const st_row *w = &rows[k];
    fprintf(out, "%-*s  %6d  ", lw, s->settings[k].label, w->acc.n);
    if (!w->acc.n) {
      fprintf(out, "%-22s\n", "-");
      continue;
    }
    char cell[64];
    snprintf(cell, sizeof cell, "%.2f%% \xc2\xb1 %.2f", 100 * w->acc.mean, 100 * w->acc.std);
    fprintf(out, "%-23s  %6.2f%%  %6.2f%%  ", cell, 100 * w->acc.min, 100 * w->acc.max);
    if (isnan(w->relative))
      fprintf(out, "%8s", "-");
    else
      fprintf(out, "%8.2f", w->relative);
    fprintf(out, "  %8.2f s\n", w->seconds);
  }
  fprintf(out, "(mean \xc2\xb1 sample std over rounds of the final test accuracy; relative to '%s')\n",
          s->settings[s->reference].label);
  if (done) {
    fprintf(out, "%d round%s, %.2f s per round", done, done == 1 ? "" : "s", sum_sec / done);
    if (s->wall > 0) {
      char wall[32];
      fmt_wall(s->wall, wall, sizeof wall);
      int nw = s->jobs + s->remote;
      fprintf(out, "; this run: %s wall, %d worker%s x %d thread%s%s, %d compilation%s (%d from the cache, %.1f s)",
              wall, nw, nw == 1 ? "" : "s", s->threads, s->threads == 1 ? "" : "s", s->remote ? " (MPI)" : "",
              s->ncompiles, s->ncompiles == 1 ? "" : "s", s->ncached, s->compile_seconds);
    }
    fprintf(out, "\n");
  }
  fprintf(out, "results: %s/results.csv, %s/results.json; best checkpoints in %s/best/\n", s->dir, s->dir, s->dir);
  fflush(out);
  free(rows);
}

/* ---- files ----------------------------------------------------------------------------------------- */

static char *csv_text(const st_study *s, size_t *len) {
  char *buf = NULL;
  FILE *f = open_memstream(&buf, len);
  SNC_ASSERT(f);
  fprintf(f, "setting");
  for (int i = 0; i < s->ngrid; i++) fprintf(f, ",%s", s->gname[i]);
  fprintf(f, ",round,seed,epoch,step_loss,train_loss");
  for (int j = 0; j < s->noutputs; j++) fprintf(f, ",train_acc_%s", s->outputs[j]);
  fprintf(f, ",test_loss");
  for (int j = 0; j < s->noutputs; j++) fprintf(f, ",test_acc_%s", s->outputs[j]);
  fprintf(f, ",seconds,step_seconds\n");
  for (int k = 0; k < s->nsettings; k++) {
    const st_setting *t = &s->settings[k];
    for (int r = 0; r < s->rounds; r++) {
      const st_round *q = &s->r[k * s->rounds + r];
      if (!q->done) continue;
      for (int e = 0; e < q->nepochs; e++) {
        const st_epoch *x = &q->ep[e];
        fprintf(f, "\"%s\"", t->label);
        for (int i = 0; i < s->ngrid; i++) fprintf(f, ",%s", s->gval[i][t->vi[i]]);
        fprintf(f, ",%d,%" PRIu64 ",%d,%.9g,", r + 1, q->seed, x->epoch, x->step_loss);
        if (!isnan(x->train_loss)) fprintf(f, "%.9g", x->train_loss); /* empty: not evaluated (--eval-train) */
        for (int j = 0; j < s->noutputs; j++) fprintf(f, isnan(x->train_acc[j]) ? "," : ",%.9g", x->train_acc[j]);
        fprintf(f, ",%.9g", x->test_loss);
        for (int j = 0; j < s->noutputs; j++) fprintf(f, ",%.9g", x->test_acc[j]);
        fprintf(f, ",%.4f,%.4f\n", x->seconds, x->step_seconds);
      }
    }
  }
  fclose(f);
  return buf;
}

static cJSON *num_or_null(double v) { return isnan(v) || isinf(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v); }

static cJSON *switches_json(const st_study *s, const st_setting *t) {
  cJSON *o = cJSON_CreateObject();
  for (int i = 0; i < s->ngrid; i++) {
    const char *v = s->gval[i][t->vi[i]];
    cJSON_AddItemToObject(o, s->gname[i], s->gbool[i] ? cJSON_CreateBool(!strcmp(v, "true")) : cJSON_CreateNumber(strtod(v, NULL)));
  }
  return o;
}

static char *json_text(const st_study *s) {
  st_row *rows = calloc((size_t)s->nsettings, sizeof *rows);
  SNC_ASSERT(rows);
  st_table(s, rows);
  char tmp[64];
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "model", s->name);
  cJSON_AddStringToObject(root, "model_file", s->model);
  snprintf(tmp, sizeof tmp, "%016" PRIx64, s->model_hash);
  cJSON_AddStringToObject(root, "model_fnv1a", tmp);
  cJSON *sets = cJSON_AddArrayToObject(root, "sets");
  for (int i = 0; i < s->nsets; i++) cJSON_AddItemToArray(sets, cJSON_CreateString(s->sets[i]));
  cJSON *grid = cJSON_AddObjectToObject(root, "grid");
  for (int i = 0; i < s->ngrid; i++) {
    cJSON *a = cJSON_AddArrayToObject(grid, s->gname[i]);
    for (int v = 0; v < s->nval[i]; v++)
      cJSON_AddItemToArray(a, s->gbool[i] ? cJSON_CreateBool(!strcmp(s->gval[i][v], "true"))
                                          : cJSON_CreateNumber(strtod(s->gval[i][v], NULL)));
  }
  cJSON_AddNumberToObject(root, "rounds", s->rounds);
  snprintf(tmp, sizeof tmp, "%" PRIu64, s->seed);
  cJSON_AddStringToObject(root, "seed", tmp);
  cJSON_AddNumberToObject(root, "epochs", s->epochs);
  cJSON_AddStringToObject(root, "data", s->data[0] ? s->data : "");
  cJSON_AddStringToObject(root, "backend", s->backend);
  cJSON *outs = cJSON_AddArrayToObject(root, "outputs");
  for (int j = 0; j < s->noutputs; j++) cJSON_AddItemToArray(outs, cJSON_CreateString(s->outputs[j]));
  cJSON_AddStringToObject(root, "reference", s->settings[s->reference].label);
  cJSON *table = cJSON_AddArrayToObject(root, "table");
  for (int k = 0; k < s->nsettings; k++) {
    const st_row *w = &rows[k];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "setting", s->settings[k].label);
    cJSON_AddItemToObject(o, "switches", switches_json(s, &s->settings[k]));
    cJSON_AddNumberToObject(o, "rounds_done", w->acc.n);
    cJSON_AddItemToObject(o, "mean", num_or_null(w->acc.mean));
    cJSON_AddItemToObject(o, "std", num_or_null(w->acc.std));
    cJSON_AddItemToObject(o, "min", num_or_null(w->acc.min));
    cJSON_AddItemToObject(o, "max", num_or_null(w->acc.max));
    cJSON_AddItemToObject(o, "relative", num_or_null(w->relative));
    cJSON_AddItemToObject(o, "seconds_per_round", num_or_null(w->seconds));
    if (w->best_round >= 0) {
      char path[ST_PATH + 600];
      st_best_path(s, k, path, sizeof path);
      cJSON_AddNumberToObject(o, "best_round", w->best_round + 1);
      cJSON_AddStringToObject(o, "best_checkpoint", path);
    }
    cJSON_AddItemToArray(table, o);
  }
  cJSON *rounds = cJSON_AddArrayToObject(root, "results");
  for (int k = 0; k < s->nsettings; k++)
    for (int r = 0; r < s->rounds; r++) {
      const st_round *q = &s->r[k * s->rounds + r];
      if (!q->done) continue;
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "setting", s->settings[k].label);
      cJSON_AddNumberToObject(o, "round", r + 1);
      snprintf(tmp, sizeof tmp, "%" PRIu64, q->seed);
      cJSON_AddStringToObject(o, "seed", tmp);
      cJSON_AddItemToObject(o, "final_test_acc", num_or_null(q->final_acc));
      cJSON_AddNumberToObject(o, "seconds", q->seconds);
      cJSON *eps = cJSON_AddArrayToObject(o, "epochs");
      for (int e = 0; e < q->nepochs; e++) {
        const st_epoch *x = &q->ep[e];
        cJSON *ej = cJSON_CreateObject();
        cJSON_AddNumberToObject(ej, "epoch", x->epoch);
        cJSON_AddItemToObject(ej, "step_loss", num_or_null(x->step_loss));
        cJSON_AddItemToObject(ej, "train_loss", num_or_null(x->train_loss));
        cJSON *ta = cJSON_AddObjectToObject(ej, "train_acc");
        for (int j = 0; j < s->noutputs; j++) cJSON_AddItemToObject(ta, s->outputs[j], num_or_null(x->train_acc[j]));
        cJSON_AddItemToObject(ej, "test_loss", num_or_null(x->test_loss));
        cJSON *te = cJSON_AddObjectToObject(ej, "test_acc");
        for (int j = 0; j < s->noutputs; j++) cJSON_AddItemToObject(te, s->outputs[j], num_or_null(x->test_acc[j]));
        cJSON_AddNumberToObject(ej, "seconds", x->seconds);
        cJSON_AddNumberToObject(ej, "step_seconds", x->step_seconds);
        cJSON_AddItemToArray(eps, ej);
      }
      cJSON_AddItemToArray(rounds, o);
    }
  char *text = cJSON_Print(root);
  cJSON_Delete(root);
  free(rows);
  return text;
}

int st_write_results(const st_study *s, snc_error *err) {
  char path[ST_PATH + 32];
  size_t len;
  char *csv = csv_text(s, &len);
  snprintf(path, sizeof path, "%s/results.csv", s->dir);
  int rc = snc_file_write_atomic(path, csv, len, err);
  free(csv);
  if (rc) return -1;
  char *json = json_text(s);
  SNC_ASSERT(json);
  size_t jl = strlen(json);
  json = realloc(json, jl + 2);
  SNC_ASSERT(json);
  json[jl] = '\n';
  json[jl + 1] = 0;
  snprintf(path, sizeof path, "%s/results.json", s->dir);
  rc = snc_file_write_atomic(path, json, jl + 1, err);
  free(json);
  return rc;
}
