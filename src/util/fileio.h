/* Whole-file helpers with error context. Paths appear in every message. */
#ifndef GB_UTIL_FILEIO_H
#define GB_UTIL_FILEIO_H

#include <stddef.h>
#include "genbench.h"

/* Reads the whole file into a NUL-terminated malloc'd buffer (*len excludes the NUL).
 * max_bytes = 0 means no limit. */
int gb_file_read_all(const char *path, size_t max_bytes, char **data, size_t *len, gb_error *err);

/* Writes data to path atomically: path.tmp.<pid> then rename(2). */
int gb_file_write_atomic(const char *path, const void *data, size_t len, gb_error *err);

/* mkdir -p; ok if it exists. */
int gb_mkdir_p(const char *path, gb_error *err);

/* 1 if path is an existing regular file / directory. */
int gb_is_file(const char *path);
int gb_is_dir(const char *path);

/* snprintf into a fresh malloc'd string (never NULL except on OOM). */
char *gb_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
