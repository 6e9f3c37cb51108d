/* Every case of tests/data/refs/tokenizer_refs.json (transformers 5.17 / tokenizers 0.23.2) for
 * the four bundled tokenizers: ids without and with special tokens, decode keeping and skipping
 * special tokens, and the bos/eos/pad tokens. */
#include <cjson/cJSON.h>

#include "test.h"
#include "tokenizer/tokenizer.h"
#include "util/fileio.h"
#include "util/paths.h"

static void print_ids(const char *what, const int32_t *v, size_t n) {
    fprintf(stderr, "    %s [", what);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s%d", i ? ", " : "", v[i]);
    fprintf(stderr, "]\n");
}

static void check_ids(const char *tk, const char *text, const char *what, const int32_t *got,
                      size_t n, const cJSON *want) {
    size_t wn = (size_t)cJSON_GetArraySize(want);
    int ok = wn == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = (int32_t)cJSON_GetArrayItem(want, (int)i)->valuedouble == got[i];
    CHECK_MSG(ok, "%s %s of \"%.60s\"", tk, what, text);
    if (!ok) {
        int32_t *w = malloc((wn + 1) * sizeof *w);
        for (size_t i = 0; i < wn; i++)
            w[i] = (int32_t)cJSON_GetArrayItem(want, (int)i)->valuedouble;
        print_ids("expected", w, wn);
        print_ids("got     ", got, n);
        free(w);
    }
}

static int32_t want_id(const gb_tokenizer *t, const cJSON *tok) {
    return cJSON_IsString(tok) ? gb_tokenizer_token_to_id(t, tok->valuestring) : -1;
}

int main(void) {
    char *path = gb_strdup_printf("%s/refs/tokenizer_refs.json", gb_test_data());
    char *data;
    size_t len;
    gb_error err;
    if (gb_file_read_all(path, 0, &data, &len, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    cJSON *refs = cJSON_ParseWithLength(data, len);
    free(data);
    CHECK(refs != NULL);
    const char *names[] = {"gpt2", "llama2", "llama3", "qwen3"};
    int cases = 0;
    for (int k = 0; k < 4 && refs; k++) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(refs, names[k]);
        CHECK(r != NULL);
        char *dir = gb_strdup_printf("%s/tokenizers/%s", gb_data_dir(), names[k]);
        gb_tokenizer *t = NULL;
        CHECK_OK(gb_tokenizer_load(dir, &t, &err), &err);
        free(dir);
        if (!t || !r) continue;
        CHECK_EQ_INT(gb_tokenizer_bos_id(t), want_id(t, cJSON_GetObjectItem(r, "bos_token")));
        CHECK_EQ_INT(gb_tokenizer_eos_id(t), want_id(t, cJSON_GetObjectItem(r, "eos_token")));
        CHECK_EQ_INT(gb_tokenizer_pad_id(t), want_id(t, cJSON_GetObjectItem(r, "pad_token")));
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(r, "cases")) {
            const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
            int32_t *ids;
            size_t n;
            cases++;
            CHECK_OK(gb_tokenizer_encode(t, text, strlen(text), false, 0, &ids, &n, &err), &err);
            check_ids(names[k], text, "ids", ids, n, cJSON_GetObjectItem(c, "ids"));
            free(ids);
            CHECK_OK(gb_tokenizer_encode(t, text, strlen(text), true, 0, &ids, &n, &err), &err);
            check_ids(names[k], text, "ids_with_special", ids, n,
                      cJSON_GetObjectItem(c, "ids_with_special"));
            free(ids);
            /* decode the reference ids, so a decode check does not depend on encode */
            const cJSON *ws = cJSON_GetObjectItem(c, "ids_with_special");
            size_t wn = (size_t)cJSON_GetArraySize(ws);
            int32_t *w = malloc((wn + 1) * sizeof *w);
            for (size_t i = 0; i < wn; i++)
                w[i] = (int32_t)cJSON_GetArrayItem(ws, (int)i)->valuedouble;
            char *s;
            size_t sl;
            CHECK_OK(gb_tokenizer_decode(t, w, wn, false, &s, &sl, &err), &err);
            CHECK_STR(s, cJSON_GetObjectItem(c, "decoded")->valuestring);
            free(s);
            CHECK_OK(gb_tokenizer_decode(t, w, wn, true, &s, &sl, &err), &err);
            CHECK_STR(s, cJSON_GetObjectItem(c, "decoded_skip_special")->valuestring);
            free(s);
            free(w);
        }
        gb_tokenizer_free(t);
    }
    CHECK_EQ_INT(cases, 4 * 51);
    cJSON_Delete(refs);
    free(path);
    TEST_MAIN_END();
}
