/* Writing a file atomically: a reader of `path` sees the old file or the whole new one, never a
 * part, and a failed write leaves the old file and no temporary behind.
 *
 *   snc_file_out o;
 *   FILE *f = snc_file_begin(&o, "model.o", "wb", &err);   // writes "model.o.tmp.<pid>"
 *   if (!f) return -1;                                     // err: "model.o: cannot create ..."
 *   fwrite(bytes, 1, n, f);
 *   return snc_file_commit(&o, &err);   // flush, fsync, close, rename over model.o, fsync its dir
 *
 * snc_file_begin allocates the temporary's name; snc_file_commit and snc_file_abort free it and
 * close the stream (the caller never fcloses f). Errors name `path` first. */
#ifndef SNC_FILE_H
#define SNC_FILE_H
#include <stddef.h>
#include <stdio.h>

#include "snc/error.h"

typedef struct snc_file_out {
  FILE *f;
  char *tmp;        /* "<path>.tmp.<pid>", owned */
  const char *path; /* the caller's string, borrowed until commit or abort */
} snc_file_out;

/* Opens the temporary next to path with fopen mode ("w" or "wb"); NULL and err on failure. */
FILE *snc_file_begin(snc_file_out *o, const char *path, const char *mode, snc_error *err);
/* Finishes the file (a stream error seen by ferror counts as a failed write) and renames it over
 * path; on any failure removes the temporary. 0 or -1 with err. */
int snc_file_commit(snc_file_out *o, snc_error *err);
/* Drops the temporary: closes and removes it. */
void snc_file_abort(snc_file_out *o);
/* The whole of data[0..len) as path, atomically. */
int snc_file_write_atomic(const char *path, const void *data, size_t len, snc_error *err);
/* fsync the directory holding path (or the directory dir itself with is_dir), so a rename into it
 * is durable; file systems that cannot sync directories count as success. 0 or -1 with errno. */
int snc_file_sync_dir(const char *path, int is_dir);

#endif
