/* Shared helpers for the CUnit test programs: each tests/test_*.c defines its suites and calls
 * SNC_TEST_MAIN(register_fn) once; the program exits non-zero when any assertion failed. */
#ifndef SNC_TESTUTIL_H
#define SNC_TESTUTIL_H
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>

#define SNC_TEST_MAIN(register_fn)                                             \
  int main(void) {                                                            \
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;                    \
    register_fn();                                                            \
    CU_basic_set_mode(CU_BRM_VERBOSE);                                        \
    CU_basic_run_tests();                                                     \
    unsigned failed = CU_get_number_of_failures();                            \
    unsigned run = CU_get_number_of_tests_run();                              \
    unsigned tfailed = CU_get_number_of_tests_failed();                       \
    CU_cleanup_registry();                                                    \
    if (run == 0) { fprintf(stderr, "no test ran\n"); return 1; }            \
    return (failed || tfailed) ? 1 : 0;                                       \
  }

/* Adds one suite with the given tests: SNC_SUITE("name", {"t1", fn1}, {"t2", fn2}) */
typedef struct { const char *name; CU_TestFunc fn; } snc_test_case;
static inline void snc_add_suite(const char *name, const snc_test_case *cases, size_t n) {
  CU_pSuite s = CU_add_suite(name, NULL, NULL);
  for (size_t i = 0; i < n; i++) CU_add_test(s, cases[i].name, cases[i].fn);
}
#define SNC_SUITE(name, ...)                                                   \
  do {                                                                        \
    static const snc_test_case cases_[] = {__VA_ARGS__};                      \
    snc_add_suite(name, cases_, sizeof cases_ / sizeof cases_[0]);            \
  } while (0)

/* Path under the source tree (tests run with the source dir as working directory too). */
#define SNC_SRC(rel) SNC_SOURCE_DIR "/" rel

#endif
