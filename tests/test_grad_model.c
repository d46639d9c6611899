/* Finite-difference check of whole models: the siamese network in all four switch settings (with
 * dropout on, so its masks must agree between forward and backward), and the other bundled models.
 * A batch of 3 random inputs; a sample of every parameter tensor's entries is checked.
 * Tolerances as in test_grad.c (float32 central differences, eps 1e-3): the losses here are means
 * of O(1) terms, so rounding noise is smaller still. */
#include "gradcheck.h"
#include "snc/frontend.h"
#include "testutil.h"

static void check_model(const char *path, const char *set1, const char *set2) {
  char b1[64] = "", b2[64] = "";
  snc_override ov[2];
  int n = 0;
  snc_error err = {0};
  if (set1) snprintf(b1, sizeof b1, "%s", set1), snc_override_parse(b1, &ov[n++], &err);
  if (set2) snprintf(b2, sizeof b2, "%s", set2), snc_override_parse(b2, &ov[n++], &err);
  snc_graph *g = snc_model_load(path, ov, n, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT_EQUAL_FATAL(snc_autodiff(g, SNC_AD_NO_UPDATES, &err), 0);
  snc_exec *ex = snc_exec_new(g, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
  snc_exec_init_params(ex, 21);
  /* labels: pair targets in {0,1}, digit classes in [0,10) */
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == SNC_OP_INPUT && g->nodes[i]->dtype == SNC_I32) g->nodes[i]->attr.classes = 2;
  gc_fill_inputs(g, ex, 8);
  snc_kctx ctx = {.nb = 3, .seed = 77, .step = 1, .training = 1, .lr_scale = 1};
  int bad, checked = gc_check(g, ex, &ctx, 12, 1e-3, 2e-3, 1e-2, &bad);
  if (bad) fprintf(stderr, "  %s %s %s: %d of %d entries differ\n", path, set1 ? set1 : "", set2 ? set2 : "", bad, checked);
  CU_ASSERT(checked > 50);
  CU_ASSERT_EQUAL(bad, 0);
  snc_exec_free(ex);
  snc_graph_free(g);
}

static void test_siamese_four_settings(void) {
  const char *ws[] = {"weight_sharing=false", "weight_sharing=true"}, *aux[] = {"aux_loss=false", "aux_loss=true"};
  for (int s = 0; s < 2; s++)
    for (int a = 0; a < 2; a++) check_model("models/siamese.yaml", ws[s], aux[a]);
}

static void test_other_models(void) {
  check_model("models/digit_cnn.yaml", NULL, NULL);
  check_model("models/lenet5.yaml", NULL, NULL);
  check_model("models/mlp.yaml", NULL, NULL);
}

static void register_tests(void) {
  SNC_SUITE("model gradients", {"siamese, four settings", test_siamese_four_settings}, {"other models", test_other_models});
}
SNC_TEST_MAIN(register_tests)
