/* Atomic file writes (include/snc/file.h): a temporary next to the target, fsync, rename, fsync of
 * the directory. Used by every writer of user-visible files: object files, headers, checkpoints,
 * exported data and the study's results. */
#include "snc/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int snc_file_sync_dir(const char *path, int is_dir) {
  char dir[4096];
  const char *slash = is_dir ? NULL : strrchr(path, '/');
  if (is_dir) snprintf(dir, sizeof dir, "%s", path);
  else if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == path) snprintf(dir, sizeof dir, "/");
  else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int ok = fsync(fd) == 0 || errno == EINVAL; /* EINVAL: this file system cannot sync directories */
  int e = errno;
  close(fd);
  errno = e;
  return ok ? 0 : -1;
}

FILE *snc_file_begin(snc_file_out *o, const char *path, const char *mode, snc_error *err) {
  *o = (snc_file_out){.path = path};
  if (!path || !path[0]) {
    snc_errorf(err, "output path is empty");
    return NULL;
  }
  size_t cap = strlen(path) + 32;
  o->tmp = malloc(cap);
  if (!o->tmp) {
    snc_errorf(err, "%s: out of memory", path);
    return NULL;
  }
  snprintf(o->tmp, cap, "%s.tmp.%ld", path, (long)getpid());
  o->f = fopen(o->tmp, mode);
  if (!o->f) {
    snc_errorf(err, "%s: cannot create %s: %s", path, o->tmp, strerror(errno));
    free(o->tmp);
    o->tmp = NULL; /* not created: nothing to remove */
  }
  return o->f;
}

void snc_file_abort(snc_file_out *o) {
  if (o->f) fclose(o->f);
  if (o->tmp) remove(o->tmp); /* only ever our own temporary; path itself is untouched */
  free(o->tmp);
  o->f = NULL;
  o->tmp = NULL;
}

int snc_file_commit(snc_file_out *o, snc_error *err) {
  if (!o->f) return snc_errorf(err, "%s: not open for writing", o->path ? o->path : "(no path)");
  int bad = ferror(o->f) || fflush(o->f) != 0 || fsync(fileno(o->f)) != 0;
  int e = errno ? errno : EIO;
  FILE *closing = o->f;
  o->f = NULL; /* fclose releases the stream even when it fails */
  if (fclose(closing) != 0 && !bad) bad = 1, e = errno;
  if (bad) {
    snc_errorf(err, "%s: cannot write %s: %s", o->path, o->tmp, strerror(e));
    snc_file_abort(o);
    return -1;
  }
  if (rename(o->tmp, o->path) != 0) {
    snc_errorf(err, "%s: cannot rename %s over it: %s", o->path, o->tmp, strerror(errno));
    snc_file_abort(o);
    return -1;
  }
  free(o->tmp);
  o->tmp = NULL; /* renamed: nothing left to remove */
  if (snc_file_sync_dir(o->path, 0) != 0)
    return snc_errorf(err, "%s: written, but cannot sync its directory: %s", o->path, strerror(errno));
  return 0;
}

int snc_file_write_atomic(const char *path, const void *data, size_t len, snc_error *err) {
  snc_file_out o;
  FILE *f = snc_file_begin(&o, path, "wb", err);
  if (!f) return -1;
  if (len && fwrite(data, 1, len, f) != len) {
    snc_errorf(err, "%s: cannot write %s: %s", path, o.tmp, strerror(errno));
    snc_file_abort(&o);
    return -1;
  }
  return snc_file_commit(&o, err);
}
