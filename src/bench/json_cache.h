/* Small JSON cache files (the machine and GPU ceilings): one object per file carrying a
 * "format" number, written atomically (the directory is created), read back with checks
 * whose errors name the file and the field. */
#ifndef GB_BENCH_JSON_CACHE_H
#define GB_BENCH_JSON_CACHE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "util/error.h"

/* Adds "format" to o, writes it to path atomically; o is consumed (NULL: out of memory). */
int gb_json_cache_save(cJSON *o, int format, const char *path, gb_error *err);
/* Parses path into *out (caller deletes) after checking it is an object of this format.
 * GB_ERR_NOT_FOUND when the file does not exist ("PATH: no WHAT cache"). */
int gb_json_cache_load(const char *path, int format, const char *what, cJSON **out, gb_error *err);
/* A finite number >= 0 / a string shorter than cap, else GB_ERR_FORMAT naming path and key. */
int gb_json_cache_num(const cJSON *o, const char *key, double *v, const char *path, gb_error *err);
int gb_json_cache_str(const cJSON *o, const char *key, char *buf, size_t cap, const char *path,
                      gb_error *err);

#endif
