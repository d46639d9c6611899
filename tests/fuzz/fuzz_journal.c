/* libFuzzer harness: the study journal (runtime/study/study_journal.c), as `snrun study --resume`
 * reads it: the header (st_journal_read_header), then the round lines (st_journal_open, which drops
 * a torn last line). The input is DIR/journal in a scratch folder. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_entry.h"
#include "study/study_internal.h"

int snc_fuzz_journal(const uint8_t *data, size_t size) {
  static char dir[64];
  if (!dir[0]) {
    snprintf(dir, sizeof dir, "/tmp/snc_fuzz_journal.%d", (int)getpid());
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) return -1;
  }
  char path[96];
  snprintf(path, sizeof path, "%s/journal", dir);
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int ok = fwrite(data, 1, size, f) == size;
  if (fclose(f) != 0 || !ok) return -1;
  st_study *s = calloc(1, sizeof *s);
  if (!s) return -1;
  snc_error err = {0};
  int rc = st_journal_read_header(dir, s, &err);
  if (rc == 0) {
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->nsettings = 2; /* as a study of one switch; one output */
    s->noutputs = 1;
    s->journal_fd = -1;
    s->r = calloc((size_t)s->nsettings * (size_t)s->rounds, sizeof *s->r);
    if (!s->r) rc = -1;
    else rc = st_journal_open(s, &err);
    if (s->r)
      for (int i = 0; i < s->nsettings * s->rounds; i++) free(s->r[i].ep);
    free(s->r);
    if (s->journal_fd >= 0 && rc == 0) close(s->journal_fd);
  }
  if (rc != 0 && !err.msg[0]) rc = -2; /* a refusal without a message is a bug too */
  free(s);
  return rc;
}

#ifdef SNC_FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  snc_fuzz_journal(data, size);
  return 0;
}
#endif
