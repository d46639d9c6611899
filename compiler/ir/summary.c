/* `snc check` output: the node table, parameters per scope, FLOPs and the training set-up. */
#include "ops/op.h"

#include <string.h>

int64_t snc_node_flops(const snc_graph *g, const snc_node *n) { return snc_op(n->op)->flops(g, n); }

int64_t snc_graph_param_count(const snc_graph *g) {
  int64_t total = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->flags & SNC_NF_TRAINABLE) total += snc_shape_numel(&g->nodes[i]->shape);
  return total;
}

static void print_count(FILE *out, int64_t v) {
  char buf[32], res[48];
  int n = snprintf(buf, sizeof buf, "%lld", (long long)v), k = 0;
  for (int i = 0; i < n; i++) {
    if (i && (n - i) % 3 == 0 && buf[i - 1] != '-') res[k++] = ',';
    res[k++] = buf[i];
  }
  res[k] = 0;
  fputs(res, out);
}

/* Scope of a parameter: its name up to the first dot ("digit_a.conv1.weight" -> "digit_a"). */
static size_t scope_len(const char *name) {
  const char *dot = strchr(name, '.');
  return dot ? (size_t)(dot - name) : strlen(name);
}

void snc_graph_print_summary(const snc_graph *g, FILE *out) {
  fprintf(out, "model %s (%s), batch %d\n", g->name, g->file, g->batch);
  if (g->nswitches) {
    fprintf(out, "switches:");
    for (int i = 0; i < g->nswitches; i++) {
      const snc_switch *s = &g->switches[i];
      if (s->is_bool) fprintf(out, " %s=%s", s->name, s->value != 0 ? "true" : "false");
      else fprintf(out, " %s=%g", s->name, s->value);
      if (s->overridden) fputs("(set)", out);
    }
    fputc('\n', out);
  }
  fprintf(out, "\n%4s  %-28s %-13s %-16s %12s %14s\n", "id", "node", "op", "shape", "params", "FLOPs/sample");
  int64_t flops = 0, state = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *n = g->nodes[i];
    char s[64];
    snc_shape_str(&n->shape, n->flags & SNC_NF_BATCHED, s, sizeof s);
    fprintf(out, "%4d  %-28s %-13s %-16s ", n->id, n->name, snc_op_name(n->op), s);
    if (n->op == SNC_OP_PARAM) {
      fprintf(out, "%12lld", (long long)snc_shape_numel(&n->shape));
      if (!(n->flags & SNC_NF_TRAINABLE)) {
        fputs(" (state)", out);
        state += snc_shape_numel(&n->shape);
      }
    } else {
      fprintf(out, "%12s", "");
    }
    int64_t f = snc_node_flops(g, n);
    flops += f;
    if (f) fprintf(out, " %14.0f", (double)f / g->batch);
    if (n->ninputs) {
      fputs("   <- ", out);
      for (int k = 0; k < n->ninputs; k++) fprintf(out, "%s%s", k ? ", " : "", snc_node_in(g, n, k)->name);
    }
    if (n->flags & SNC_NF_LOSS) fprintf(out, "   (loss, weight %g)", n->weight);
    fputc('\n', out);
  }

  fputs("\nparameters by scope:\n", out);
  for (int i = 0; i < g->nnodes; i++) {
    const snc_node *n = g->nodes[i];
    if (!(n->flags & SNC_NF_TRAINABLE)) continue;
    size_t len = scope_len(n->name);
    int seen = 0;
    for (int j = 0; j < i && !seen; j++) {
      const snc_node *m = g->nodes[j];
      seen = (m->flags & SNC_NF_TRAINABLE) && scope_len(m->name) == len && !strncmp(m->name, n->name, len);
    }
    if (seen) continue;
    int64_t total = 0;
    int tensors = 0;
    for (int j = i; j < g->nnodes; j++) {
      const snc_node *m = g->nodes[j];
      if ((m->flags & SNC_NF_TRAINABLE) && scope_len(m->name) == len && !strncmp(m->name, n->name, len)) {
        total += snc_shape_numel(&m->shape);
        tensors++;
      }
    }
    fprintf(out, "  %-20.*s %3d tensors  ", (int)len, n->name, tensors);
    print_count(out, total);
    fputc('\n', out);
  }
  fputs("total trainable parameters: ", out);
  print_count(out, snc_graph_param_count(g));
  fprintf(out, " (%.1f KiB as float32)", 4.0 * (double)snc_graph_param_count(g) / 1024.0);
  if (state) {
    fputs(", state: ", out);
    print_count(out, state);
  }
  fprintf(out, "\nforward FLOPs: ");
  print_count(out, flops / g->batch);
  fprintf(out, " per sample, ");
  print_count(out, flops);
  fprintf(out, " per batch of %d\n", g->batch);
  if (g->loss >= 0) fprintf(out, "loss: %s\n", g->nodes[g->loss]->name);
  for (int o = 0; o < g->noutputs; o++)
    fprintf(out, "output %s: %s, accuracy against %s\n", g->outputs[o].name, g->nodes[g->outputs[o].node]->name,
            g->nodes[g->outputs[o].target]->name);
  const snc_train_cfg *t = &g->train;
  fprintf(out, "training: %s lr %g", t->optimizer == SNC_OPT_ADAM ? "adam" : "sgd", t->lr);
  if (t->optimizer == SNC_OPT_ADAM) fprintf(out, " betas (%g, %g) eps %g", t->beta1, t->beta2, t->eps);
  else fprintf(out, " momentum %g%s", t->momentum, t->nesterov ? " nesterov" : "");
  if (t->weight_decay) fprintf(out, " weight_decay %g", t->weight_decay);
  fprintf(out, ", %d epochs, batch %d, seed %llu\n", t->epochs, t->batch_size, (unsigned long long)t->seed);
  if (g->data.generator)
    fprintf(out, "data: %s, %d train / %d test, dataset %s%s\n", g->data.generator, g->data.train_size,
            g->data.test_size, g->data.dataset ? g->data.dataset : "bundled",
            g->data.standardize ? ", standardised" : "");
}

void snc_graph_switches_str(const snc_graph *g, char *buf, size_t len) {
  buf[0] = 0;
  for (int i = 0; i < g->nswitches; i++) {
    const snc_switch *s = &g->switches[i];
    size_t l = strlen(buf);
    if (s->is_bool)
      snprintf(buf + l, len - l, "%s%s=%s", i ? "," : "", s->name, s->value ? "true" : "false");
    else
      snprintf(buf + l, len - l, "%s%s=%.17g", i ? "," : "", s->name, s->value);
  }
}
