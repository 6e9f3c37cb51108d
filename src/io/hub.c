#include "io/hub.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdbool.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/presets.h"
#include "util/error.h"
#include "util/fileio.h"

const char *gb_hub_cache_dir(void) {
    static char buf[4096];
    const char *c = getenv("HF_HUB_CACHE"), *h = getenv("HF_HOME"), *home = getenv("HOME");
    if (c && *c)
        snprintf(buf, sizeof buf, "%s", c);
    else if (h && *h)
        snprintf(buf, sizeof buf, "%.4000s/hub", h);
    else
        snprintf(buf, sizeof buf, "%.4000s/.cache/huggingface/hub", home && *home ? home : "");
    return buf;
}

static int has_config(const char *dir) {
    char p[5000];
    snprintf(p, sizeof p, "%.4800s/config.json", dir);
    return gb_is_file(p);
}

static int is_hex40(const char *s) {
    size_t n = strlen(s);
    if (n != 40) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i])) return 0;
    return 1;
}

/* org/name with characters the Hub allows. */
static int valid_repo_id(const char *s) {
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || !slash[1] || strchr(slash + 1, '/')) return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/-_.", *p)) return 0;
    return strstr(s, "..") == NULL;
}

/* ---- download (libcurl) ---- */

typedef struct membuf {
    char *p;
    size_t n, cap, limit;
} membuf;

static size_t mem_write(char *data, size_t size, size_t nmemb, void *user) {
    membuf *b = user;
    size_t n = size * nmemb;
    if (b->n + n + 1 > b->limit) return 0;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 65536;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) return 0;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

static size_t file_write(char *data, size_t size, size_t nmemb, void *user) {
    return fwrite(data, size, nmemb, (FILE *)user);
}

static const char *hub_endpoint(void) {
    const char *e = getenv("HF_ENDPOINT");
    return e && *e ? e : "https://huggingface.co";
}

/* GET url into a memory buffer (to_file NULL) or a file. */
static int http_get(const char *url, membuf *mem, FILE *to_file, gb_error *err) {
    CURL *c = curl_easy_init();
    if (!c) return gb_error_set(err, GB_ERR_IO, "%s: cannot initialise libcurl", url);
    struct curl_slist *hdr = NULL;
    const char *tok = getenv("HF_TOKEN");
    if (tok && *tok) {
        char *h = gb_strdup_printf("Authorization: Bearer %s", tok);
        if (h) hdr = curl_slist_append(hdr, h);
        free(h);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "genbench/" GB_VERSION);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); /* abort a transfer stalled for 60 s */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 0L);
    if (hdr) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    if (to_file) {
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, file_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, to_file);
    } else {
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mem_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    }
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK)
        return gb_error_set(err, GB_ERR_IO, "%s: download failed: %s", url, curl_easy_strerror(rc));
    if (status != 200)
        return gb_error_set(
            err, GB_ERR_IO, "%s: HTTP %ld%s", url, status,
            status == 401 || status == 403 ? " (gated or private model: set HF_TOKEN)" : "");
    return GB_OK;
}

/* Files genbench needs from a model repository (top level only). */
static int wanted_file(const char *f) {
    if (strchr(f, '/')) return 0;
    static const char *const exact[] = {
        "config.json",           "generation_config.json",  "tokenizer.json",
        "tokenizer_config.json", "special_tokens_map.json", "model.safetensors.index.json"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (!strcmp(f, exact[i])) return 1;
    size_t n = strlen(f);
    return n > 12 && !strcmp(f + n - 12, ".safetensors");
}

/* Downloads repo@rev into the cache layout: snapshots/<commit>/<file> (plain files, each
 * written to a temporary name and renamed) and refs/<rev>. */
static int hub_download(const char *repo, const char *rev, const char *base, char *commit_out,
                        size_t commit_cap, gb_error *err) {
    static int curl_ready = 0;
    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = 1;
    }
    char *url = gb_strdup_printf("%s/api/models/%s/revision/%s", hub_endpoint(), repo, rev);
    if (!url) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    membuf mb = {.limit = 64u << 20};
    int rc = http_get(url, &mb, NULL, err);
    cJSON *info = rc ? NULL : cJSON_Parse(mb.p ? mb.p : "");
    free(mb.p);
    if (!rc && !info) rc = gb_error_set(err, GB_ERR_FORMAT, "%s: malformed JSON answer", url);
    const cJSON *sha = info ? cJSON_GetObjectItem(info, "sha") : NULL;
    const cJSON *sib = info ? cJSON_GetObjectItem(info, "siblings") : NULL;
    if (!rc && (!cJSON_IsString(sha) || strlen(sha->valuestring) != 40 || !cJSON_IsArray(sib)))
        rc = gb_error_set(err, GB_ERR_FORMAT, "%s: answer lacks 'sha' or 'siblings'", url);
    free(url);
    if (rc) {
        cJSON_Delete(info);
        return rc;
    }
    snprintf(commit_out, commit_cap, "%s", sha->valuestring);
    char *snap = gb_strdup_printf("%s/snapshots/%s", base, sha->valuestring);
    char *refs = gb_strdup_printf("%s/refs", base);
    if (!snap || !refs) rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    if (!rc) rc = gb_mkdir_p(snap, err);
    if (!rc) rc = gb_mkdir_p(refs, err);
    int n_files = 0, have_config = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, sib) {
        if (rc) break;
        const cJSON *fn = cJSON_GetObjectItem(e, "rfilename");
        if (!cJSON_IsString(fn) || !wanted_file(fn->valuestring)) continue;
        char *dst = gb_strdup_printf("%s/%s", snap, fn->valuestring);
        char *tmp = gb_strdup_printf("%s/.%s.part.%ld", snap, fn->valuestring, (long)getpid());
        char *furl = gb_strdup_printf("%s/%s/resolve/%s/%s", hub_endpoint(), repo, sha->valuestring,
                                      fn->valuestring);
        if (!dst || !tmp || !furl) {
            rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
        } else if (!gb_is_file(dst)) {
            FILE *f = fopen(tmp, "wb");
            if (!f) {
                rc = gb_error_set(err, GB_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
            } else {
                rc = http_get(furl, NULL, f, err);
                if (fclose(f) != 0 && !rc)
                    rc = gb_error_set(err, GB_ERR_IO, "%s: write failed", tmp);
                if (!rc && rename(tmp, dst) != 0)
                    rc =
                        gb_error_set(err, GB_ERR_IO, "%s: rename failed: %s", dst, strerror(errno));
                if (rc) unlink(tmp);
            }
        }
        if (!rc) {
            n_files++;
            have_config |= !strcmp(fn->valuestring, "config.json");
        }
        free(dst);
        free(tmp);
        free(furl);
    }
    if (!rc && !have_config)
        rc = gb_error_set(err, GB_ERR_NOT_FOUND, "%s@%s: the repository has no config.json", repo,
                          rev);
    if (!rc && strcmp(rev, sha->valuestring) != 0) {
        char *ref = gb_strdup_printf("%s/%s", refs, rev);
        rc = ref ? gb_file_write_atomic(ref, sha->valuestring, 40, err)
                 : gb_error_set(err, GB_ERR_NOMEM, "out of memory");
        free(ref);
    }
    free(snap);
    free(refs);
    cJSON_Delete(info);
    return rc;
}

int gb_hub_resolve(const char *model_id, gb_model_location *loc, gb_error *err) {
    memset(loc, 0, sizeof *loc);
    if (!model_id || !*model_id) return gb_error_set(err, GB_ERR_INVALID, "empty model id");
    if (!strncmp(model_id, "random:", 7)) {
        loc->source = GB_MODEL_RANDOM;
        int rc = gb_preset_ensure(model_id + 7, loc->dir, sizeof loc->dir, err);
        if (rc) gb_error_prefix(err, "model '%s'", model_id);
        return rc;
    }
    if (gb_is_dir(model_id)) {
        if (!has_config(model_id))
            return gb_error_set(err, GB_ERR_NOT_FOUND, "%s: directory has no config.json",
                                model_id);
        loc->source = GB_MODEL_LOCAL;
        if (strlen(model_id) >= sizeof loc->dir)
            return gb_error_set(err, GB_ERR_INVALID, "%s: path too long", model_id);
        memcpy(loc->dir, model_id, strlen(model_id) + 1);
        return GB_OK;
    }
    char repo[512], rev[128] = "main";
    snprintf(repo, sizeof repo, "%s", model_id);
    char *at = strchr(repo, '@');
    if (at) {
        *at = '\0';
        if (!at[1] || strlen(at + 1) >= sizeof rev || strchr(at + 1, '/') || strstr(at + 1, ".."))
            return gb_error_set(err, GB_ERR_INVALID, "model '%s': malformed revision", model_id);
        snprintf(rev, sizeof rev, "%s", at + 1);
    }
    if (!valid_repo_id(repo))
        return gb_error_set(err, GB_ERR_NOT_FOUND,
                            "model '%s' not found: no such local directory, and not a Hugging "
                            "Face id (org/name[@revision]) or random:<preset>",
                            model_id);
    const char *cache = gb_hub_cache_dir();
    char base[4600];
    snprintf(base, sizeof base, "%s/models--", cache);
    size_t bl = strlen(base);
    for (const char *p = repo; *p && bl + 2 < sizeof base; p++) {
        if (*p == '/') {
            base[bl++] = '-';
            base[bl++] = '-';
        } else {
            base[bl++] = *p;
        }
    }
    base[bl] = '\0';
    char commit[128] = "";
    char path[4800];
    snprintf(path, sizeof path, "%s/refs/%s", base, rev);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fgets(commit, sizeof commit, f)) commit[strcspn(commit, " \r\n")] = '\0';
        fclose(f);
    } else if (is_hex40(rev)) {
        snprintf(commit, sizeof commit, "%s", rev);
    }
    if (commit[0]) {
        snprintf(path, sizeof path, "%s/snapshots/%s", base, commit);
        if (gb_is_dir(path) && has_config(path)) {
            loc->source = GB_MODEL_HF_CACHE;
            if (strlen(path) >= sizeof loc->dir)
                return gb_error_set(err, GB_ERR_INVALID, "%s: path too long", path);
            memcpy(loc->dir, path, strlen(path) + 1);
            snprintf(loc->revision, sizeof loc->revision, "%s", rev);
            snprintf(loc->commit, sizeof loc->commit, "%.63s", commit);
            return GB_OK;
        }
    }
    const char *offline = getenv("HF_HUB_OFFLINE");
    bool is_offline = offline && *offline && strcmp(offline, "0") != 0;
    const char *cache_from = getenv("HF_HUB_CACHE") && *getenv("HF_HUB_CACHE") ? "HF_HUB_CACHE"
                             : getenv("HF_HOME") && *getenv("HF_HOME")         ? "HF_HOME/hub"
                                                                       : "~/.cache/huggingface/hub";
    if (!is_offline) {
        gb_error derr;
        char got[64];
        if (hub_download(repo, rev, base, got, sizeof got, &derr) == 0) {
            snprintf(path, sizeof path, "%s/snapshots/%s", base, got);
            if (strlen(path) >= sizeof loc->dir)
                return gb_error_set(err, GB_ERR_INVALID, "%s: path too long", path);
            loc->source = GB_MODEL_HF_CACHE;
            memcpy(loc->dir, path, strlen(path) + 1);
            snprintf(loc->revision, sizeof loc->revision, "%s", rev);
            snprintf(loc->commit, sizeof loc->commit, "%s", got);
            return GB_OK;
        }
        return gb_error_set(err, derr.code == GB_ERR_NOMEM ? GB_ERR_NOMEM : GB_ERR_NOT_FOUND,
                            "model '%s' not found: not a local directory; not in the Hugging Face "
                            "cache (searched %s/refs/%s -> %s/snapshots/%s; cache from %s); "
                            "download from %s failed: %.300s",
                            model_id, base, rev, base, commit[0] ? commit : "<commit>", cache_from,
                            hub_endpoint(), derr.msg);
    }
    return gb_error_set(err, GB_ERR_NOT_FOUND,
                        "model '%s' not found: not a local directory; not in the Hugging Face "
                        "cache (searched %s/refs/%s -> %s/snapshots/%s; cache from %s); not "
                        "downloaded because HF_HUB_OFFLINE is set",
                        model_id, base, rev, base, commit[0] ? commit : "<commit>", cache_from);
}
