/* The IR verifier accepts every bundled model and catches each kind of broken invariant. */
#include <string.h>

#include "snc/frontend.h"
#include "testutil.h"

static snc_graph *siamese(void) {
  snc_error err = {0};
  snc_graph *g = snc_model_load("models/siamese.yaml", NULL, 0, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  return g;
}

static void expect_broken(snc_graph *g, const char *needle) {
  snc_error err = {0};
  CU_ASSERT_EQUAL(snc_graph_verify(g, &err), -1);
  if (!strstr(err.msg, needle)) fprintf(stderr, "\nverifier said '%s', expected '%s'\n", err.msg, needle);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, needle));
}

static snc_node *find(snc_graph *g, const char *name) { return g->nodes[snc_graph_find(g, name)]; }

static void test_valid(void) {
  snc_graph *g = siamese();
  snc_error err = {0};
  CU_ASSERT_EQUAL(snc_graph_verify(g, &err), 0);
  snc_graph_free(g);
}

static void test_forward_edge(void) {
  snc_graph *g = siamese();
  snc_node *n = find(g, "digit_a.tanh_3");
  n->inputs[0] = g->nnodes - 1; /* a later node: a cycle */
  expect_broken(g, "not an earlier node");
  snc_graph_free(g);
}

static void test_wrong_shape(void) {
  snc_graph *g = siamese();
  find(g, "digit_a.conv1")->shape.dim[1] = 31;
  expect_broken(g, "stored shape differs from the shape rule's");
  snc_graph_free(g);
}

static void test_duplicate_name(void) {
  snc_graph *g = siamese();
  find(g, "both")->name = "first";
  expect_broken(g, "name also used by node");
  snc_graph_free(g);
}

static void test_trainable_activation(void) {
  snc_graph *g = siamese();
  find(g, "both")->flags |= SNC_NF_TRAINABLE;
  expect_broken(g, "only parameters are trainable");
  snc_graph_free(g);
}

static void test_arity(void) {
  snc_graph *g = siamese();
  find(g, "compare")->ninputs = 2;
  expect_broken(g, "2 inputs, op takes 1..1");
  snc_graph_free(g);
}

static void test_batch(void) {
  snc_graph *g = siamese();
  g->nodes[0]->shape.dim[0] = 7;
  char want[64];
  snprintf(want, sizeof want, "dim 0 is not the batch %d", g->batch);
  expect_broken(g, want);
  snc_graph_free(g);
}

static void test_loss_not_scalar(void) {
  snc_graph *g = siamese();
  g->loss = snc_graph_find(g, "compare");
  expect_broken(g, "total loss is not a scalar");
  snc_graph_free(g);
}

static void register_tests(void) {
  SNC_SUITE("verifier", {"valid", test_valid}, {"forward edge", test_forward_edge}, {"wrong shape", test_wrong_shape},
            {"duplicate name", test_duplicate_name}, {"trainable activation", test_trainable_activation},
            {"arity", test_arity}, {"batch", test_batch}, {"loss not scalar", test_loss_not_scalar});
}
SNC_TEST_MAIN(register_tests)
