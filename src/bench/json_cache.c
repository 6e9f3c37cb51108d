#include "bench/json_cache.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/paths.h"

int gb_json_cache_save(cJSON *o, int format, const char *path, gb_error *err) {
    char *text = NULL;
    if (o && cJSON_AddNumberToObject(o, "format", format)) text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) return gb_error_set(err, GB_ERR_NOMEM, "%s: out of memory", path);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    int rc = 0;
    if (slash && slash != dir) {
        *slash = 0;
        rc = gb_mkdir_p(dir, err);
    }
    if (rc == 0) rc = gb_file_write_atomic(path, text, strlen(text), err);
    cJSON_free(text);
    return rc;
}

int gb_json_cache_num(const cJSON *o, const char *key, double *v, const char *path, gb_error *err) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble) || j->valuedouble < 0)
        return gb_error_set(err, GB_ERR_FORMAT, "%s: field '%s' missing or not a number >= 0", path,
                            key);
    *v = j->valuedouble;
    return 0;
}

int gb_json_cache_str(const cJSON *o, const char *key, char *buf, size_t cap, const char *path,
                      gb_error *err) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(j) || strlen(j->valuestring) >= cap)
        return gb_error_set(err, GB_ERR_FORMAT, "%s: field '%s' missing or not a short string",
                            path, key);
    memcpy(buf, j->valuestring, strlen(j->valuestring) + 1);
    return 0;
}

int gb_json_cache_load(const char *path, int format, const char *what, cJSON **out, gb_error *err) {
    *out = NULL;
    if (!gb_is_file(path))
        return gb_error_set(err, GB_ERR_NOT_FOUND, "%s: no %s cache", path, what);
    char *text = NULL;
    size_t len = 0;
    GB_TRY(gb_file_read_all(path, 1 << 20, &text, &len, err));
    cJSON *o = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return gb_error_set(err, GB_ERR_FORMAT, "%s: not a JSON object", path);
    }
    double fmt = 0;
    int rc = gb_json_cache_num(o, "format", &fmt, path, err);
    if (rc == 0 && fmt != format)
        rc =
            gb_error_set(err, GB_ERR_FORMAT, "%s: cache format %g, expected %d", path, fmt, format);
    if (rc) {
        cJSON_Delete(o);
        return rc;
    }
    *out = o;
    return 0;
}
