/* The user-error channel; see include/snc/error.h. */
#include "snc/error.h"

#include <stdarg.h>

int snc_errorf(snc_error *err, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return -1;
}
