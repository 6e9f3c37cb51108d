/* Built-in presets: the six fixture models (data/fixture-models/<name>/{config.json,
 * fixture.json}) and real shapes (data/presets/<name>.json: {"config": {...}, "tokenizer"}).
 * Random-weight directories of presets live in gb_cache_dir()/models/<name>. */
#include "model/presets.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/random.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/paths.h"

static const char *const NAMES[] = {
    "tiny-llama3",      "tiny-qwen3",      "tiny-qwen2",   "tiny-mistral",
    "tiny-llama2-h128", "tiny-gpt2",       "smollm2-135m", "smollm2-360m",
    "qwen2.5-0.5b",     "qwen3-0.6b",      "llama-3.2-1b", "llama-3.2-3b",
    "llama-3.1-8b",     "mistral-7b-v0.1", "gpt2",         NULL,
};

const char *const *gb_preset_names(void) {
    return NAMES;
}

void gb_preset_free(gb_preset *p) {
    if (!p) return;
    free(p->config_json);
    free(p->tokenizer);
    free(p->tokenizer_dir);
    memset(p, 0, sizeof *p);
}

static int unknown(const char *preset, gb_error *err) {
    char list[1024] = "";
    for (int i = 0; NAMES[i]; i++) {
        size_t n = strlen(list);
        snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", NAMES[i]);
    }
    return gb_error_set(err, GB_ERR_NOT_FOUND, "unknown preset '%s' (known: %s)", preset, list);
}

static int set_tokenizer(gb_preset *p, const cJSON *tok, const char *src, gb_error *err) {
    if (!cJSON_IsString(tok) || !*tok->valuestring || strchr(tok->valuestring, '/'))
        return gb_error_set(err, GB_ERR_FORMAT, "%s: key 'tokenizer' must be a tokenizer name",
                            src);
    p->tokenizer = strdup(tok->valuestring);
    p->tokenizer_dir = gb_strdup_printf("%s/tokenizers/%s", gb_data_dir(), tok->valuestring);
    if (!p->tokenizer || !p->tokenizer_dir) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    if (!gb_is_dir(p->tokenizer_dir))
        return gb_error_set(err, GB_ERR_NOT_FOUND, "%s: bundled tokenizer directory %s is missing",
                            src, p->tokenizer_dir);
    return GB_OK;
}

static int load_fixture(const char *preset, gb_preset *p, gb_error *err) {
    char *cfg = gb_strdup_printf("%s/fixture-models/%s/config.json", gb_data_dir(), preset);
    char *fx = gb_strdup_printf("%s/fixture-models/%s/fixture.json", gb_data_dir(), preset);
    char *text = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    int rc = !cfg || !fx ? gb_error_set(err, GB_ERR_NOMEM, "out of memory") : GB_OK;
    if (!rc) rc = gb_file_read_all(cfg, 16u << 20, &p->config_json, &p->config_len, err);
    if (!rc) rc = gb_file_read_all(fx, 1u << 20, &text, &len, err);
    if (!rc) {
        root = cJSON_ParseWithLength(text, len);
        if (!cJSON_IsObject(root)) rc = gb_error_set(err, GB_ERR_FORMAT, "%s: malformed JSON", fx);
    }
    if (!rc) {
        const cJSON *seed = cJSON_GetObjectItemCaseSensitive(root, "seed");
        const cJSON *msb = cJSON_GetObjectItemCaseSensitive(root, "max_shard_bytes");
        if (seed && !cJSON_IsNull(seed)) {
            if (!cJSON_IsNumber(seed) || seed->valuedouble < 0)
                rc = gb_error_set(err, GB_ERR_FORMAT, "%s: key 'seed' must be an integer", fx);
            else
                p->seed = (uint64_t)seed->valuedouble;
        }
        if (!rc && msb && !cJSON_IsNull(msb)) {
            if (!cJSON_IsNumber(msb) || msb->valuedouble < 1)
                rc = gb_error_set(err, GB_ERR_FORMAT,
                                  "%s: key 'max_shard_bytes' must be a positive integer or null",
                                  fx);
            else
                p->max_shard_bytes = (uint64_t)msb->valuedouble;
        }
        if (!rc)
            rc = set_tokenizer(p, cJSON_GetObjectItemCaseSensitive(root, "tokenizer"), fx, err);
    }
    cJSON_Delete(root);
    free(text);
    free(cfg);
    free(fx);
    return rc;
}

static int load_shape(const char *preset, gb_preset *p, gb_error *err) {
    char *path = gb_strdup_printf("%s/presets/%s.json", gb_data_dir(), preset);
    char *text = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    int rc = path ? gb_file_read_all(path, 16u << 20, &text, &len, err)
                  : gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    if (!rc) {
        root = cJSON_ParseWithLength(text, len);
        if (!cJSON_IsObject(root))
            rc = gb_error_set(err, GB_ERR_FORMAT, "%s: malformed JSON", path);
    }
    if (!rc) {
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
        if (!cJSON_IsObject(cfg)) {
            rc = gb_error_set(err, GB_ERR_FORMAT, "%s: key 'config' must be an object", path);
        } else {
            p->config_json = cJSON_Print(cfg);
            if (!p->config_json)
                rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            else
                p->config_len = strlen(p->config_json);
        }
    }
    if (!rc) rc = set_tokenizer(p, cJSON_GetObjectItemCaseSensitive(root, "tokenizer"), path, err);
    cJSON_Delete(root);
    free(text);
    free(path);
    return rc;
}

int gb_preset_load(const char *preset, gb_preset *p, gb_error *err) {
    memset(p, 0, sizeof *p);
    int i = 0;
    while (NAMES[i] && strcmp(NAMES[i], preset))
        i++;
    if (!NAMES[i]) return unknown(preset, err);
    int rc =
        !strncmp(preset, "tiny-", 5) ? load_fixture(preset, p, err) : load_shape(preset, p, err);
    if (rc) gb_preset_free(p);
    return rc;
}

/* Removes <models>/<preset>.tmp-<pid>-<n> directories left by creators that were killed
 * (their pid no longer exists); live creators' directories are left alone. */
static void remove_stale(const char *models, const char *preset) {
    DIR *d = opendir(models);
    if (!d) return;
    size_t pl = strlen(preset);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, preset, pl) || strncmp(e->d_name + pl, ".tmp-", 5)) continue;
        long pid = strtol(e->d_name + pl + 5, NULL, 10);
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char *dir = gb_strdup_printf("%s/%s", models, e->d_name);
        DIR *sub = dir ? opendir(dir) : NULL;
        struct dirent *f;
        while (sub && (f = readdir(sub))) {
            if (!strcmp(f->d_name, ".") || !strcmp(f->d_name, "..")) continue;
            char *fp = gb_strdup_printf("%s/%s", dir, f->d_name);
            if (fp) unlink(fp);
            free(fp);
        }
        if (sub) closedir(sub);
        if (dir) rmdir(dir);
        free(dir);
    }
    closedir(d);
}

int gb_preset_ensure(const char *preset, char *dir_out, size_t dir_cap, gb_error *err) {
    int i = 0;
    while (NAMES[i] && strcmp(NAMES[i], preset))
        i++;
    if (!NAMES[i]) return unknown(preset, err);
    char *dir = gb_strdup_printf("%s/models/%s", gb_cache_dir(), preset);
    char *marker = gb_strdup_printf("%s/models/%s/config.json", gb_cache_dir(), preset);
    int rc = GB_OK;
    if (!dir || !marker) {
        rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (strlen(dir) + 1 > dir_cap) {
        rc = gb_error_set(err, GB_ERR_INVALID, "%s: path longer than %zu bytes", dir, dir_cap);
        goto done;
    }
    /* The directory appears by an atomic rename of a complete one, so its presence means
     * it is complete; concurrent creators race on the rename and the losers reuse it. */
    if (!gb_is_file(marker)) {
        char *models = gb_strdup_printf("%s/models", gb_cache_dir());
        if (models) remove_stale(models, preset);
        free(models);
        gb_preset p;
        rc = gb_preset_load(preset, &p, err);
        if (rc) goto done;
        gb_random_model_options opts = {
            .seed = p.seed, .max_shard_bytes = p.max_shard_bytes, .tokenizer_dir = p.tokenizer_dir};
        rc = gb_random_model_write(p.config_json, p.config_len, &opts, dir, err);
        gb_preset_free(&p);
        if (rc && gb_is_file(marker)) rc = GB_OK; /* another process won the race */
        if (rc) {
            gb_error_prefix(err, "preset %s", preset);
            goto done;
        }
    }
    snprintf(dir_out, dir_cap, "%s", dir);
done:
    free(dir);
    free(marker);
    return rc;
}
