/* snc error channel for user-caused problems.
 *
 *   snc_error err = {0};
 *   if (snc_idx_read("train.gz", &t, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
 *
 * Every fallible public function takes an snc_error* (may be NULL) and returns 0 on success,
 * -1 on failure with err->msg naming the place: "file:line:col: what is wrong" for models,
 * "path: what is wrong" for files. Broken internal invariants use SNC_ASSERT instead.
 * snc_error is a plain value: nothing to free. */
#ifndef SNC_ERROR_H
#define SNC_ERROR_H
#include <stdio.h>
#include <stdlib.h>

typedef struct snc_error {
  char msg[1024];
} snc_error;

/* Formats into err->msg (when err is not NULL) and returns -1, so callers can `return snc_errorf(...)`. */
int snc_errorf(snc_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define SNC_ASSERT(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      fprintf(stderr, "snc: internal error: %s:%d: %s\n", __FILE__, __LINE__, #cond);     \
      abort();                                                                            \
    }                                                                                     \
  } while (0)

#endif
