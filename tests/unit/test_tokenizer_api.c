/* Tokenizer API behaviour beyond tokenizer_refs.json: bad input (invalid UTF-8, malformed or
 * unsupported files) and the expected values below, all produced by Hugging Face `tokenizers`
 * 0.23.2 (npm) on the bundled files as transformers 5 reads them: truncation, NUL bytes,
 * decoding out-of-range ids and partial UTF-8. */
#include <cjson/cJSON.h>

#include "test.h"
#include "tokenizer/tokenizer.h"
#include "util/fileio.h"
#include "util/paths.h"

static gb_tokenizer *load(const char *name) {
    gb_error err;
    gb_tokenizer *t = NULL;
    char *dir = gb_strdup_printf("%s/tokenizers/%s", gb_data_dir(), name);
    CHECK_OK(gb_tokenizer_load(dir, &t, &err), &err);
    free(dir);
    return t;
}

static void check_encode(gb_tokenizer *t, const char *text, size_t len, bool special, int max_len,
                         const int32_t *want, size_t n_want) {
    gb_error err;
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(gb_tokenizer_encode(t, text, len, special, max_len, &ids, &n, &err), &err);
    int ok = n == n_want;
    for (size_t i = 0; ok && i < n; i++)
        ok = ids[i] == want[i];
    CHECK_MSG(ok, "encode \"%s\" (max_len %d): got %zu ids, first %d", text, max_len, n,
              n ? ids[0] : -1);
    free(ids);
}

static void check_bad_utf8(gb_tokenizer *t, const char *s, size_t len, const char *offset_msg) {
    gb_error err;
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = gb_tokenizer_encode(t, s, len, true, 0, &ids, &n, &err);
    CHECK_EQ_INT(rc, GB_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, offset_msg) != NULL, "expected \"%s\" in \"%s\"", offset_msg,
              err.msg);
    CHECK(ids == NULL);
}

/* Writes dir/tokenizer.json (+ optional config) and expects loading to fail with code and a
 * message containing every given fragment. */
static void check_load_fails(const char *dir, const char *json, size_t json_len, const char *config,
                             int code, const char *frag1, const char *frag2) {
    gb_error err;
    char *p = gb_strdup_printf("%s/tokenizer.json", dir);
    CHECK_OK(gb_mkdir_p(dir, &err), &err);
    CHECK_OK(gb_file_write_atomic(p, json, json_len, &err), &err);
    free(p);
    p = gb_strdup_printf("%s/tokenizer_config.json", dir);
    remove(p);
    if (config) CHECK_OK(gb_file_write_atomic(p, config, strlen(config), &err), &err);
    free(p);
    gb_tokenizer *t = NULL;
    int rc = gb_tokenizer_load(dir, &t, &err);
    CHECK_MSG(rc == code, "%s: expected code %d, got %d (%s)", dir, code, rc, err.msg);
    CHECK_MSG(strstr(err.msg, frag1) != NULL, "expected \"%s\" in \"%s\"", frag1, err.msg);
    if (frag2)
        CHECK_MSG(strstr(err.msg, frag2) != NULL, "expected \"%s\" in \"%s\"", frag2, err.msg);
    CHECK(t == NULL);
    gb_tokenizer_free(t);
}

int main(void) {
    gb_error err;
    gb_tokenizer *l3 = load("llama3"), *l2 = load("llama2"), *q3 = load("qwen3"),
                 *g2 = load("gpt2");
    if (!l3 || !l2 || !q3 || !g2) TEST_MAIN_END();

    /* sizes and lookups */
    CHECK_EQ_INT(gb_tokenizer_vocab_size(l3), 128256);
    CHECK_EQ_INT(gb_tokenizer_vocab_size(q3), 151669);
    CHECK_EQ_INT(gb_tokenizer_vocab_size(g2), 50257);
    CHECK_EQ_INT(gb_tokenizer_vocab_size(l2), 32000);
    CHECK_EQ_INT(gb_tokenizer_token_to_id(l3, "<|eot_id|>"), 128009);
    CHECK_EQ_INT(gb_tokenizer_token_to_id(g2, "Ġthe"), 262);
    CHECK_EQ_INT(gb_tokenizer_token_to_id(g2, "no such token"), -1);
    CHECK_STR(gb_tokenizer_id_to_token(q3, 151667), "<think>");
    CHECK(gb_tokenizer_id_to_token(q3, 999999) == NULL);
    CHECK(gb_tokenizer_id_to_token(q3, -1) == NULL);

    /* truncation keeps room for BOS (HF: setTruncation(5) / (1)) */
    const char *text = "one two three four five six seven";
    check_encode(l3, text, strlen(text), true, 5, (int32_t[]){128000, 606, 1403, 2380, 3116}, 5);
    check_encode(l3, text, strlen(text), false, 5, (int32_t[]){606, 1403, 2380, 3116, 4330}, 5);
    check_encode(l3, text, strlen(text), true, 1, (int32_t[]){128000}, 1);
    check_encode(l2, text, strlen(text), true, 5, (int32_t[]){1, 624, 989, 1712, 2308}, 5);
    check_encode(q3, text, strlen(text), true, 5, (int32_t[]){603, 1378, 2326, 3040, 4236}, 5);

    /* NUL is an ordinary character */
    check_encode(l3, "a\0b\x7f", 4, true, 0, (int32_t[]){128000, 64, 188, 65, 221}, 5);
    check_encode(l2, "a\0b\x7f", 4, true, 0, (int32_t[]){1, 264, 3, 28726, 30982}, 5);
    check_encode(q3, "a\0b\x7f", 4, true, 0, (int32_t[]){64, 188, 65, 221}, 4);
    check_encode(g2, "", 0, true, 0, NULL, 0);

    /* invalid UTF-8 names the byte offset */
    check_bad_utf8(l3, "ab\xC3(", 4, "byte offset 2");
    check_bad_utf8(l3, "\xED\xA0\x80", 3, "byte offset 0");        /* surrogate */
    check_bad_utf8(l3, "x\xC0\x80", 3, "byte offset 1");           /* overlong NUL */
    check_bad_utf8(q3, "abc\xE2\x82", 5, "byte offset 3");         /* truncated at the end */
    check_bad_utf8(l2, "ok \xF4\x90\x80\x80", 7, "byte offset 3"); /* above U+10FFFF */
    check_bad_utf8(g2, "\xFF", 1, "byte offset 0");

    /* decode: unknown ids skipped, partial UTF-8 becomes U+FFFD (HF) */
    char *s;
    size_t sl;
    CHECK_OK(gb_tokenizer_decode(l3, (int32_t[]){151645, 9707, 9468, 99}, 4, false, &s, &sl, &err),
             &err);
    CHECK_STR(s, ".right\xEF\xBF\xBD");
    free(s);
    CHECK_OK(gb_tokenizer_decode(q3, (int32_t[]){151645, 9707, 9468, 99}, 4, false, &s, &sl, &err),
             &err);
    CHECK_STR(s, "<|im_end|>Hello initialize\xEF\xBF\xBD");
    free(s);
    CHECK_OK(gb_tokenizer_decode(l2, (int32_t[]){151645, 9707, 9468, 99}, 4, false, &s, &sl, &err),
             &err);
    CHECK_STR(s, "Default\xD0\xBD\xD0\xBE\xD1\x81\xD1\x82\xD1\x8C`");
    free(s);
    CHECK_OK(gb_tokenizer_decode(l2, NULL, 0, true, &s, &sl, &err), &err);
    CHECK_STR(s, "");
    CHECK_EQ_INT(sl, 0);
    free(s);

    /* a hand-written file with JSON escapes in vocab, merges and added tokens, no decoder
     * (tokens joined by spaces) and no unk (unknown characters dropped); values from HF */
    {
        static const char esc[] =
            "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":7,\"content\":\"<\\u0073>\","
            "\"normalized\":false,\"special\":true}],\"normalizer\":null,\"pre_tokenizer\":null,"
            "\"post_processor\":null,\"decoder\":null,\"model\":{\"type\":\"BPE\",\"vocab\":"
            "{\"a\":0,\"b\":1,\"\\u00e9\":2,\"\\ud83e\\udd99\":3,\"ab\":4,\"\\\"\":5,\"a\\u00e9\":"
            "6},"
            "\"merges\":[\"a b\",\"a \\u00e9\"]}}";
        char *edir = gb_strdup_printf("%s/tok_api/escapes", gb_test_tmp());
        char *epath = gb_strdup_printf("%s/tokenizer.json", edir);
        CHECK_OK(gb_mkdir_p(edir, &err), &err);
        CHECK_OK(gb_file_write_atomic(epath, esc, sizeof esc - 1, &err), &err);
        gb_tokenizer *e = NULL;
        CHECK_OK(gb_tokenizer_load(edir, &e, &err), &err);
        if (e) {
            check_encode(e, "ab", 2, true, 0, (int32_t[]){4}, 1);
            check_encode(e, "a\xC3\xA9", 3, true, 0, (int32_t[]){6}, 1);
            check_encode(e, "\xF0\x9F\xA6\x99", 4, true, 0, (int32_t[]){3}, 1);
            check_encode(e,
                         "ab\"<s>x\xC3\xA9"
                         "a",
                         10, true, 0, (int32_t[]){4, 5, 7, 2, 0}, 5);
            CHECK_OK(gb_tokenizer_decode(e, (int32_t[]){4, 6, 3, 7, 5}, 5, false, &s, &sl, &err),
                     &err);
            CHECK_STR(s, "ab a\xC3\xA9 \xF0\x9F\xA6\x99 <s> \"");
            free(s);
        }
        gb_tokenizer_free(e);
        free(epath);
        free(edir);
    }

    /* bad files: the message names the file and the problem */
    char *gpt2_path = gb_strdup_printf("%s/tokenizers/gpt2/tokenizer.json", gb_data_dir());
    char *json;
    size_t jl;
    CHECK_OK(gb_file_read_all(gpt2_path, 0, &json, &jl, &err), &err);
    char *base = gb_strdup_printf("%s/tok_api", gb_test_tmp());
    char *dir = gb_strdup_printf("%s/truncated", base);
    check_load_fails(dir, json, 100000, NULL, GB_ERR_FORMAT, "truncated/tokenizer.json",
                     "malformed JSON");
    free(dir);
    /* component replacements on the parsed gpt2 file: {key, new JSON value, expected text} */
    struct {
        const char *name, *key, *value, *frag;
        int code;
    } cases[] = {
        {"pretok", "pre_tokenizer", "{\"type\": \"FancySplit\"}",
         "unsupported pre_tokenizer type 'FancySplit'", GB_ERR_UNSUPPORTED},
        {"norm", "normalizer", "{\"type\": \"BertNormalizer\"}",
         "unsupported normalizer type 'BertNormalizer'", GB_ERR_UNSUPPORTED},
        {"decoder", "decoder", "{\"type\": \"CTC\"}", "unsupported decoder type 'CTC'",
         GB_ERR_UNSUPPORTED},
        {"post", "post_processor", "{\"type\": \"Magic\"}",
         "unsupported post_processor type 'Magic'", GB_ERR_UNSUPPORTED},
        {"model", "model", "{\"type\": \"WordPiece\", \"vocab\": {}}",
         "unsupported model type 'WordPiece'", GB_ERR_UNSUPPORTED},
        {"merge", "model",
         "{\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}",
         "merged token 'ab' is not in the vocab", GB_ERR_FORMAT},
        {"regex", "pre_tokenizer",
         "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(unclosed\"}, \"behavior\": "
         "\"Isolated\"}",
         "does not compile", GB_ERR_UNSUPPORTED},
        {"behavior", "pre_tokenizer",
         "{\"type\": \"Split\", \"pattern\": {\"String\": \"x\"}, \"behavior\": \"Sideways\"}",
         "unsupported Split behavior 'Sideways'", GB_ERR_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *root = cJSON_ParseWithLength(json, jl);
        cJSON_ReplaceItemInObjectCaseSensitive(root, cases[i].key, cJSON_Parse(cases[i].value));
        char *mod = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        dir = gb_strdup_printf("%s/%s", base, cases[i].name);
        char *file = gb_strdup_printf("%s/tokenizer.json", cases[i].name);
        check_load_fails(dir, mod, strlen(mod), NULL, cases[i].code, file, cases[i].frag);
        free(file);
        free(dir);
        free(mod);
    }
    dir = gb_strdup_printf("%s/badconfig", base);
    check_load_fails(dir, json, jl, "{\"bos_token\": ", GB_ERR_FORMAT,
                     "badconfig/tokenizer_config.json", "malformed JSON");
    free(dir);
    dir = gb_strdup_printf("%s/missing", base);
    gb_tokenizer *t = NULL;
    CHECK_EQ_INT(gb_tokenizer_load(dir, &t, &err), GB_ERR_IO);
    CHECK_MSG(strstr(err.msg, "missing/tokenizer.json") != NULL, "got \"%s\"", err.msg);
    free(dir);
    free(base);
    free(json);
    free(gpt2_path);

    gb_tokenizer_free(l3);
    gb_tokenizer_free(l2);
    gb_tokenizer_free(q3);
    gb_tokenizer_free(g2);
    TEST_MAIN_END();
}
