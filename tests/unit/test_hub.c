/* Model-id resolution: local directories, the Hugging Face cache layout under HF_HUB_CACHE /
 * HF_HOME, revisions, and the not-found message naming the places searched. */
#include <stdlib.h>

#include "io/hub.h"
#include "test.h"
#include "util/error.h"
#include "util/fileio.h"

static void write_file(const char *path, const char *text) {
    gb_error err;
    CHECK_OK(gb_file_write_atomic(path, text, strlen(text), &err), &err);
}

int main(void) {
    gb_error err;
    char root[1024], p[2048], q[4096];
    snprintf(root, sizeof root, "%s/hub", gb_test_tmp());
    snprintf(p, sizeof p, "rm -rf '%s'", root);
    CHECK(system(p) == 0);
    /* A fake cache: models--org--name with refs/main and refs/v1 pointing at two snapshots. */
    const char *c1 = "1111111111111111111111111111111111111111";
    const char *c2 = "2222222222222222222222222222222222222222";
    snprintf(p, sizeof p, "%s/cache/models--org--tiny-model/snapshots/%s", root, c1);
    CHECK_OK(gb_mkdir_p(p, &err), &err);
    snprintf(q, sizeof q, "%s/config.json", p);
    write_file(q, "{}");
    snprintf(p, sizeof p, "%s/cache/models--org--tiny-model/snapshots/%s", root, c2);
    CHECK_OK(gb_mkdir_p(p, &err), &err);
    snprintf(q, sizeof q, "%s/config.json", p);
    write_file(q, "{}");
    snprintf(p, sizeof p, "%s/cache/models--org--tiny-model/refs", root);
    CHECK_OK(gb_mkdir_p(p, &err), &err);
    snprintf(q, sizeof q, "%s/main", p);
    write_file(q, c1);
    snprintf(q, sizeof q, "%s/v1", p);
    write_file(q, c2);

    snprintf(p, sizeof p, "%s/cache", root);
    setenv("HF_HUB_CACHE", p, 1);
    setenv("HF_HUB_OFFLINE", "1", 1); /* no download attempts here (run_download.sh does) */
    CHECK_STR(gb_hub_cache_dir(), p);
    gb_model_location loc;
    CHECK_OK(gb_hub_resolve("org/tiny-model", &loc, &err), &err);
    CHECK_EQ_INT(loc.source, GB_MODEL_HF_CACHE);
    CHECK_STR(loc.commit, c1);
    CHECK_STR(loc.revision, "main");
    snprintf(q, sizeof q, "%s/models--org--tiny-model/snapshots/%s", p, c1);
    CHECK_STR(loc.dir, q);
    CHECK_OK(gb_hub_resolve("org/tiny-model@v1", &loc, &err), &err);
    CHECK_STR(loc.commit, c2);
    CHECK_OK(gb_hub_resolve("org/tiny-model@2222222222222222222222222222222222222222", &loc, &err),
             &err);
    CHECK_STR(loc.commit, c2);
    /* Unknown revision and unknown model: not found, naming the searched path. */
    CHECK(gb_hub_resolve("org/tiny-model@nope", &loc, &err) == GB_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "refs/nope") != NULL);
    CHECK(gb_hub_resolve("org/other", &loc, &err) == GB_ERR_NOT_FOUND);
    CHECK_MSG(strstr(err.msg, "models--org--other") && strstr(err.msg, "HF_HUB_CACHE") &&
                  strstr(err.msg, "HF_HUB_OFFLINE"),
              "%s", err.msg);
    /* Online, a download that fails (nothing listens on port 9) is reported too. */
    setenv("HF_HUB_OFFLINE", "0", 1);
    setenv("HF_ENDPOINT", "http://127.0.0.1:9", 1);
    CHECK(gb_hub_resolve("org/other", &loc, &err) == GB_ERR_NOT_FOUND);
    CHECK_MSG(strstr(err.msg, "models--org--other") && strstr(err.msg, "download from"), "%s",
              err.msg);
    setenv("HF_HUB_OFFLINE", "1", 1);
    CHECK(gb_hub_resolve("org/tiny-model@", &loc, &err) == GB_ERR_INVALID);
    CHECK(gb_hub_resolve("not-an-id", &loc, &err) == GB_ERR_NOT_FOUND);
    CHECK(gb_hub_resolve("", &loc, &err) == GB_ERR_INVALID);

    /* HF_HOME/hub when HF_HUB_CACHE is unset. */
    unsetenv("HF_HUB_CACHE");
    setenv("HF_HOME", "/somewhere", 1);
    CHECK_STR(gb_hub_cache_dir(), "/somewhere/hub");
    unsetenv("HF_HOME");
    setenv("HOME", "/home/u", 1);
    CHECK_STR(gb_hub_cache_dir(), "/home/u/.cache/huggingface/hub");

    /* Local directory: needs config.json. */
    snprintf(p, sizeof p, "%s/local", root);
    CHECK_OK(gb_mkdir_p(p, &err), &err);
    CHECK(gb_hub_resolve(p, &loc, &err) == GB_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "config.json") != NULL);
    snprintf(q, sizeof q, "%s/config.json", p);
    write_file(q, "{}");
    CHECK_OK(gb_hub_resolve(p, &loc, &err), &err);
    CHECK_EQ_INT(loc.source, GB_MODEL_LOCAL);
    CHECK_STR(loc.dir, p);

    /* Unknown presets are refused by the preset module. */
    CHECK(gb_hub_resolve("random:no-such-preset", &loc, &err) == GB_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "no-such-preset") != NULL);
    TEST_MAIN_END();
}
