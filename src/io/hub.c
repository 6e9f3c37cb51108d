#include "io/hub.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
            snprintf(loc->commit, sizeof loc->commit, "%s", commit);
            return GB_OK;
        }
    }
    const char *offline = getenv("HF_HUB_OFFLINE");
    return gb_error_set(
        err, GB_ERR_NOT_FOUND,
        "model '%s' not found: not a local directory; not in the Hugging Face cache (searched "
        "%s/refs/%s -> %s/snapshots/%s; cache from %s)%s",
        model_id, base, rev, base, commit[0] ? commit : "<commit>",
        getenv("HF_HUB_CACHE") && *getenv("HF_HUB_CACHE") ? "HF_HUB_CACHE"
        : getenv("HF_HOME") && *getenv("HF_HOME")         ? "HF_HOME/hub"
                                                          : "~/.cache/huggingface/hub",
        offline && *offline && strcmp(offline, "0") ? " (HF_HUB_OFFLINE is set)"
                                                    : "; genbench does not download models: "
                                                      "fetch it with `huggingface-cli download`");
}
