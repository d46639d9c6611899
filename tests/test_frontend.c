/* The YAML front end on the bundled models and on small inline models: switches, sharing,
 * conditional losses, switch references, initialisers, defaults and the summary. */
#include <math.h>
#include <string.h>

#include "snc/frontend.h"
#include "testutil.h"

static snc_graph *load(const char *path, const char *set1, const char *set2) {
  char b1[64] = "", b2[64] = "";
  snc_override ov[2];
  int n = 0;
  snc_error err = {0};
  if (set1) snprintf(b1, sizeof b1, "%s", set1), snc_override_parse(b1, &ov[n++], &err);
  if (set2) snprintf(b2, sizeof b2, "%s", set2), snc_override_parse(b2, &ov[n++], &err);
  snc_graph *g = snc_model_load(path, ov, n, &err);
  if (!g) fprintf(stderr, "\n%s\n", err.msg);
  return g;
}

static snc_graph *load_text(const char *text) {
  snc_error err = {0};
  snc_graph *g = snc_model_load_text(text, strlen(text), "inline.yaml", NULL, 0, &err);
  if (!g) fprintf(stderr, "\n%s\n", err.msg);
  return g;
}

static const snc_node *node(const snc_graph *g, const char *name) {
  int id = snc_graph_find(g, name);
  return id >= 0 ? g->nodes[id] : NULL;
}

static void test_all_models_load(void) {
  const char *models[] = {"models/siamese.yaml", "models/digit_cnn.yaml", "models/lenet5.yaml", "models/mlp.yaml",
                          "models/siamese_plus.yaml", "models/fashion_cnn.yaml"};
  for (size_t i = 0; i < sizeof models / sizeof *models; i++) {
    snc_graph *g = load(models[i], NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    snc_error err = {0};
    CU_ASSERT_EQUAL(snc_graph_verify(g, &err), 0);
    CU_ASSERT(g->loss >= 0);
    CU_ASSERT(g->noutputs >= 1);
    snc_graph_free(g);
  }
}

/* Branch parameters: conv1 32*1*9+32, conv2 64*32*9+64, fc1 120*256+120, fc2 84*120+84, fc3 10*84+10. */
enum { BRANCH = 320 + 18496 + 30840 + 10164 + 850, HEAD = 20 * 2 + 2 };

static void test_siamese_four_settings(void) {
  const char *ws[] = {"weight_sharing=false", "weight_sharing=true"};
  const char *aux[] = {"aux_loss=false", "aux_loss=true"};
  for (int s = 0; s < 2; s++)
    for (int a = 0; a < 2; a++) {
      snc_graph *g = load("models/siamese.yaml", ws[s], aux[a]);
      CU_ASSERT_PTR_NOT_NULL_FATAL(g);
      /* sharing halves the branch parameters */
      CU_ASSERT_EQUAL(snc_graph_param_count(g), (s ? 1 : 2) * BRANCH + HEAD);
      const snc_node *ca = node(g, "digit_a.conv1"), *cb = node(g, "digit_b.conv1");
      CU_ASSERT_PTR_NOT_NULL_FATAL(ca);
      CU_ASSERT_PTR_NOT_NULL_FATAL(cb);
      if (s) { /* one parameter node with two users */
        CU_ASSERT_EQUAL(ca->inputs[1], cb->inputs[1]);
        CU_ASSERT_PTR_NULL(node(g, "digit_b.conv1.weight"));
      } else {
        CU_ASSERT_NOT_EQUAL(ca->inputs[1], cb->inputs[1]);
        CU_ASSERT_PTR_NOT_NULL(node(g, "digit_b.conv1.weight"));
      }
      /* the auxiliary losses exist only with the switch on */
      const snc_node *loss = g->nodes[g->loss];
      if (a) {
        CU_ASSERT_EQUAL(loss->op, SNC_OP_ADD);
        CU_ASSERT_EQUAL(loss->ninputs, 3);
        CU_ASSERT_PTR_NOT_NULL(node(g, "aux_a"));
      } else {
        CU_ASSERT_STRING_EQUAL(loss->name, "compare_loss");
        CU_ASSERT_PTR_NULL(node(g, "aux_a"));
      }
      /* shapes through the branch */
      const snc_node *pool2 = g->nodes[node(g, "digit_a.fc1")->inputs[0]];
      CU_ASSERT_EQUAL(pool2->shape.rank, 2);
      CU_ASSERT_EQUAL(pool2->shape.dim[1], 256);
      CU_ASSERT_EQUAL(node(g, "compare")->shape.dim[1], 2);
      /* FLOPs: a multiply-add counts two, bias one per output */
      CU_ASSERT_EQUAL(snc_node_flops(g, ca), (int64_t)g->batch * 32 * 12 * 12 * (2 * 9 + 1));
      CU_ASSERT_EQUAL(snc_node_flops(g, node(g, "digit_b.conv2")), (int64_t)g->batch * 64 * 4 * 4 * (2 * 288 + 1));
      CU_ASSERT_EQUAL(snc_node_flops(g, node(g, "digit_a.fc1")), (int64_t)g->batch * 120 * (2 * 256 + 1));
      snc_graph_free(g);
    }
}

static void test_summary_names_both_branches(void) {
  snc_graph *g = load("models/siamese.yaml", "weight_sharing=false", NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  snc_graph_print_summary(g, f);
  fclose(f);
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "digit_a.conv1.weight"));
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "digit_b.conv1.weight"));
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "total trainable parameters: 121,382"));
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "forward FLOPs: 1,558,246 per sample"));
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "weight_sharing=false(set)"));
  free(buf);
  snc_graph_free(g);
}

static void test_pytorch_default_init(void) {
  snc_graph *g = load("models/siamese.yaml", NULL, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  const snc_node *w = node(g, "digit_a.conv1.weight"), *b = node(g, "digit_a.fc1.bias");
  CU_ASSERT_EQUAL(w->init.kind, SNC_INIT_UNIFORM);
  CU_ASSERT_DOUBLE_EQUAL(w->init.b, 1.0 / 3.0, 1e-7); /* fan_in 1*3*3 */
  CU_ASSERT_DOUBLE_EQUAL(w->init.a, -1.0 / 3.0, 1e-7);
  CU_ASSERT_DOUBLE_EQUAL(b->init.b, 1.0 / 16.0, 1e-7); /* fan_in 256 */
  CU_ASSERT(w->flags & SNC_NF_TRAINABLE);
  snc_graph_free(g);
}

static const char *const MLP_TEXT =
    "model: t\n"
    "switches: {width: 8, deep: false, w: 0.5}\n"
    "inputs:\n"
    "  x: {shape: [4]}\n"
    "  y: {shape: [], dtype: int32}\n"
    "graph:\n"
    "  - {name: h, linear: {units: $width, init: {weight: kaiming_normal, bias: {constant: 0.25}}}, from: x}\n"
    "  - {name: deep_layer, linear: {units: $width}, if: deep}\n"
    "  - {name: shallow, tanh, if: not deep}\n"
    "  - {name: bn, batchnorm: {momentum: 0.2}}\n"
    "  - {name: logits, linear: {units: 3, bias: false}}\n"
    "losses:\n"
    "  - {name: ce, cross_entropy, from: [logits, y], weight: $w}\n"
    "outputs:\n"
    "  cls: {from: logits, target: y}\n";

static void test_inline_features(void) {
  snc_graph *g = load_text(MLP_TEXT);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT_EQUAL(g->batch, 100); /* default batch */
  const snc_node *hw = node(g, "h.weight"), *hb = node(g, "h.bias");
  CU_ASSERT_EQUAL(hw->shape.dim[0], 8);
  CU_ASSERT_EQUAL(hw->init.kind, SNC_INIT_NORMAL);
  CU_ASSERT_DOUBLE_EQUAL(hw->init.b, sqrt(2.0 / 4.0), 1e-6);
  CU_ASSERT_EQUAL(hb->init.kind, SNC_INIT_CONSTANT);
  CU_ASSERT_DOUBLE_EQUAL(hb->init.a, 0.25, 0);
  CU_ASSERT_PTR_NULL(node(g, "deep_layer"));
  CU_ASSERT_PTR_NOT_NULL(node(g, "shallow"));
  CU_ASSERT_PTR_NULL(node(g, "logits.bias"));
  const snc_node *bn = node(g, "bn");
  CU_ASSERT_EQUAL(bn->ninputs, 5);
  CU_ASSERT_DOUBLE_EQUAL(bn->attr.momentum, 0.2, 1e-7);
  CU_ASSERT(!(g->nodes[bn->inputs[3]]->flags & SNC_NF_TRAINABLE)); /* running mean is state */
  /* a weighted single loss becomes scale(ce) */
  const snc_node *loss = g->nodes[g->loss];
  CU_ASSERT_EQUAL(loss->op, SNC_OP_SCALE);
  CU_ASSERT_DOUBLE_EQUAL(loss->attr.alpha, 0.5, 0);
  snc_graph_free(g);
}

static void test_deep_switch_override(void) {
  char b[] = "deep=true";
  snc_override ov;
  snc_error err = {0};
  CU_ASSERT_EQUAL(snc_override_parse(b, &ov, &err), 0);
  snc_graph *g = snc_model_load_text(MLP_TEXT, strlen(MLP_TEXT), "inline.yaml", &ov, 1, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT_PTR_NOT_NULL(node(g, "deep_layer"));
  CU_ASSERT_PTR_NULL(node(g, "shallow"));
  snc_graph_free(g);
}

static void test_training_and_data(void) {
  snc_graph *g = load("models/mlp.yaml", NULL, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT_EQUAL(g->train.optimizer, SNC_OPT_SGD);
  CU_ASSERT_DOUBLE_EQUAL(g->train.momentum, 0.9, 1e-7);
  CU_ASSERT_DOUBLE_EQUAL(g->train.weight_decay, 1e-4, 1e-9);
  CU_ASSERT_EQUAL(g->train.batch_size, 50);
  CU_ASSERT_EQUAL(g->batch, 50);
  CU_ASSERT_STRING_EQUAL(g->data.generator, "mnist_digits");
  CU_ASSERT_PTR_NULL(g->data.dataset);
  CU_ASSERT_EQUAL(g->data.train_size, 1000);
  snc_graph_free(g);
}

static void test_override_parse(void) {
  char ok[] = "a=b", bad1[] = "novalue", bad2[] = "=x", bad3[] = "k=";
  snc_override o;
  snc_error err = {0};
  CU_ASSERT_EQUAL(snc_override_parse(ok, &o, &err), 0);
  CU_ASSERT_STRING_EQUAL(o.key, "a");
  CU_ASSERT_STRING_EQUAL(o.value, "b");
  CU_ASSERT_EQUAL(snc_override_parse(bad1, &o, &err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "expected name=value"));
  CU_ASSERT_EQUAL(snc_override_parse(bad2, &o, &err), -1);
  CU_ASSERT_EQUAL(snc_override_parse(bad3, &o, &err), -1);
}

static void test_missing_file(void) {
  snc_error err = {0};
  CU_ASSERT_PTR_NULL(snc_model_load("tests/no_such_model.yaml", NULL, 0, &err));
  CU_ASSERT_STRING_EQUAL(err.msg, "tests/no_such_model.yaml: cannot open: No such file or directory");
  CU_ASSERT_PTR_NULL(snc_model_load("tests", NULL, 0, &err)); /* a directory */
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "tests: "));
}

static void register_tests(void) {
  SNC_SUITE("frontend", {"all models load", test_all_models_load}, {"siamese in four settings", test_siamese_four_settings},
            {"summary names both branches", test_summary_names_both_branches},
            {"pytorch default init", test_pytorch_default_init}, {"inline features", test_inline_features},
            {"switch override", test_deep_switch_override}, {"training and data", test_training_and_data},
            {"--set parsing", test_override_parse}, {"missing file", test_missing_file});
}
SNC_TEST_MAIN(register_tests)
