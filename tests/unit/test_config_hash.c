/* BenchmarkConfig: serialization + SHA-256 against Python json.dumps vectors
 * (tests/data/config_hashes.json), defaults, names, validity rules, levels, sweeps, files. */
#include <cjson/cJSON.h>
#include <unistd.h>

#include "bench/config.h"
#include "bench/pyjson.h"
#include "test.h"
#include "util/error.h"
#include "util/fileio.h"

static void test_vectors(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/config_hashes.json", gb_test_data());
    char *text;
    size_t len;
    gb_error err;
    CHECK_OK(gb_file_read_all(path, 0, &text, &len, &err), &err);
    cJSON *root = cJSON_Parse(text);
    CHECK(cJSON_IsArray(root));
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        gb_bench_config c;
        CHECK_OK(gb_bench_config_from_json(cJSON_GetObjectItem(e, "config"), "vector", &c, &err),
                 &err);
        char *s = gb_bench_config_serialize(&c);
        CHECK_STR(s, cJSON_GetObjectItem(e, "serialized")->valuestring);
        char h[65];
        gb_bench_config_hash(&c, h);
        CHECK_STR(h, cJSON_GetObjectItem(e, "sha256")->valuestring);
        free(s);
        n++;
    }
    CHECK_MSG(n >= 4, "expected at least 4 vectors, got %d", n);
    cJSON_Delete(root);
    free(text);
}

static void test_float_repr(void) {
    struct {
        double v;
        const char *s;
    } cases[] = {{0.1, "0.1"},
                 {1e-05, "1e-05"},
                 {1.5e-05, "1.5e-05"},
                 {123.0, "123.0"},
                 {1e16, "1e+16"},
                 {1234567890123456.0, "1234567890123456.0"},
                 {0.0001, "0.0001"},
                 {2.5, "2.5"},
                 {1.0 / 3, "0.3333333333333333"},
                 {100.0, "100.0"},
                 {-0.5, "-0.5"},
                 {0.0, "0.0"},
                 {1e-300, "1e-300"},
                 {1.7976931348623157e308, "1.7976931348623157e+308"},
                 {0.000123, "0.000123"},
                 {12345.678, "12345.678"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        gb_py_float_repr(cases[i].v, buf);
        CHECK_STR(buf, cases[i].s);
    }
    /* Escaping like json.dumps(ensure_ascii=True). */
    gb_jw w;
    gb_jw_init(&w, 0);
    gb_jw_str(&w, "a\"b\\c\n\x01\x7f\xc3\xa9\xf0\x9f\x98\x80");
    char *s = gb_jw_take(&w, NULL);
    CHECK_STR(s, "\"a\\\"b\\\\c\\n\\u0001\x7f\\u00e9\\ud83d\\ude00\"");
    free(s);
    /* Indented layout: 4 spaces, numeric arrays inline, empty containers compact. */
    gb_jw_init(&w, 4);
    gb_jw_obj_begin(&w);
    double v[3] = {1.0, 0.5, 2e-05};
    gb_jw_key(&w, "a");
    gb_jw_double_array(&w, v, 3);
    gb_jw_key(&w, "b");
    gb_jw_arr_begin(&w);
    gb_jw_str(&w, "x");
    gb_jw_arr_end(&w);
    gb_jw_key(&w, "c");
    gb_jw_obj_begin(&w);
    gb_jw_obj_end(&w);
    gb_jw_obj_end(&w);
    s = gb_jw_take(&w, NULL);
    CHECK_STR(s, "{\n    \"a\": [1.0, 0.5, 2e-05],\n    \"b\": [\n        \"x\"\n    ],\n"
                 "    \"c\": {}\n}");
    free(s);
}

static void test_defaults_and_names(void) {
    gb_bench_config c;
    gb_error err;
    gb_bench_config_default(&c);
    CHECK_EQ_INT(c.warmup_iterations, 5);
    CHECK_EQ_INT(c.measurement_iterations, 20);
    CHECK(c.gpu_monitoring);
    CHECK(!c.continuous_batching);
    CHECK_EQ_INT(c.batch_size, 1);
    CHECK_EQ_INT(c.sequence_length, 128);
    CHECK_EQ_INT(c.num_tokens_to_generate, 128);
    CHECK_STR(c.attn_implementation, "eager");
    CHECK(!c.compile_kwargs.set);
    CHECK(!c.kernelize);
    CHECK_STR(c.dtype, "bfloat16");
    snprintf(c.device, sizeof c.device, "cpu");
    CHECK_OK(gb_bench_config_finalize(&c, &err), &err);
    CHECK_STR(c.name, "w5_i20-monitored-b1_s128_n128-eager-uncompiled-unkernelized-generate");
    CHECK_EQ_INT(c.threads, gb_bench_num_cpus());
    CHECK_EQ_INT(c.n_notes, 0);
    char v[512];
    gb_bench_config_verbose_name(&c, v, sizeof v);
    CHECK_STR(v, "5 warmup, 20 iterations, with GPU monitoring, batch size 1, sequence length "
                 "128, 128 generated tokens, eager attention, not compiled, not kernelized, "
                 "regular generate");
    /* The hash of the finalized default config equals the first vector's when threads = 2. */
    c.threads = 2;
    char h[65];
    gb_bench_config_hash(&c, h);
    CHECK_STR(h, "7950de27b9b46341fc5b5291f647ac045ee36288cc874e1b129e07811e0c772d");

    gb_bench_config_default(&c);
    c.gpu_monitoring = false;
    c.batch_size = 4;
    c.kernelize = true;
    c.continuous_batching = true;
    snprintf(c.attn_implementation, sizeof c.attn_implementation, "sdpa");
    gb_compile_kwargs_set(&c.compile_kwargs, "max-autotune-no-cudagraphs");
    CHECK_OK(gb_bench_config_finalize(&c, &err), &err);
    CHECK_STR(
        c.name,
        "w5_i20-unmonitored-b4_s128_n128-sdpa-compiled_max-autotune-no-cudagraphs-kernelized-cb");
}

static void test_validity(void) {
    gb_bench_config c;
    gb_error err;
    /* Rule 1: flex_attention -> sdpa. */
    gb_bench_config_default(&c);
    snprintf(c.attn_implementation, sizeof c.attn_implementation, "flex_attention");
    gb_compile_kwargs_set(&c.compile_kwargs, NULL);
    CHECK_OK(gb_bench_config_finalize(&c, &err), &err);
    CHECK_STR(c.attn_implementation, "sdpa");
    CHECK_EQ_INT(c.n_notes, 1);
    CHECK_STR(c.compile_kwargs.mode, "reduce-overhead");
    CHECK_STR(c.name, "w5_i20-monitored-b1_s128_n128-sdpa-compiled_reduce-overhead-unkernelized-"
                      "generate");
    /* Rule 2: FA2 + compile + generate -> uncompiled. */
    gb_bench_config_default(&c);
    snprintf(c.attn_implementation, sizeof c.attn_implementation, "flash_attention_2");
    gb_compile_kwargs_set(&c.compile_kwargs, "default");
    CHECK_OK(gb_bench_config_finalize(&c, &err), &err);
    CHECK(!c.compile_kwargs.set);
    CHECK_EQ_INT(c.n_notes, 1);
    /* FA2 + compile + CB keeps compile, but rule 4 forces mode default. */
    gb_bench_config_default(&c);
    snprintf(c.attn_implementation, sizeof c.attn_implementation, "flash_attention_2");
    gb_compile_kwargs_set(&c.compile_kwargs, "reduce-overhead");
    c.continuous_batching = true;
    CHECK_OK(gb_bench_config_finalize(&c, &err), &err);
    CHECK(c.compile_kwargs.set);
    CHECK_STR(c.compile_kwargs.mode, "default");
    CHECK_EQ_INT(c.n_notes, 1);
    /* Rule 3: flex + CB -> CB off (and sdpa). */
    gb_bench_config_default(&c);
    snprintf(c.attn_implementation, sizeof c.attn_implementation, "flex_attention");
    c.continuous_batching = true;
    CHECK_OK(gb_bench_config_finalize(&c, &err), &err);
    CHECK(!c.continuous_batching);
    CHECK_EQ_INT(c.n_notes, 2);
    /* Out-of-range values are errors naming the field. */
    gb_bench_config_default(&c);
    c.num_tokens_to_generate = 1;
    CHECK(gb_bench_config_finalize(&c, &err) == GB_ERR_INVALID);
    CHECK(strstr(err.msg, "num_tokens_to_generate") != NULL);
    gb_bench_config_default(&c);
    snprintf(c.attn_implementation, sizeof c.attn_implementation, "magic");
    CHECK(gb_bench_config_finalize(&c, &err) == GB_ERR_INVALID);
    CHECK(strstr(err.msg, "attn_implementation") != NULL);
    gb_bench_config_default(&c);
    snprintf(c.device, sizeof c.device, "tpu");
    CHECK(gb_bench_config_finalize(&c, &err) == GB_ERR_INVALID);
    gb_bench_config_default(&c);
    c.measurement_iterations = 0;
    CHECK(gb_bench_config_finalize(&c, &err) == GB_ERR_INVALID);
}

static int count_unique(gb_bench_config *c, int n) {
    char(*h)[65] = calloc((size_t)n, 65);
    int u = 0;
    gb_error err;
    for (int i = 0; i < n; i++) {
        snprintf(c[i].device, sizeof c[i].device, "cpu");
        c[i].threads = 2;
        CHECK_OK(gb_bench_config_finalize(&c[i], &err), &err);
        char x[65];
        gb_bench_config_hash(&c[i], x);
        int dup = 0;
        for (int j = 0; j < u; j++)
            if (!strcmp(h[j], x)) dup = 1;
        if (!dup) memcpy(h[u++], x, 65);
    }
    free(h);
    return u;
}

static void test_levels(void) {
    const int expect[5] = {1, 4, 8, 32, 80};
    gb_error err;
    for (int l = 0; l <= 4; l++) {
        gb_bench_config *c;
        int n;
        CHECK_OK(gb_bench_configs_for_level(l, &c, &n, &err), &err);
        CHECK_EQ_INT(n, expect[l]);
        if (l == 1) {
            CHECK_STR(c[0].attn_implementation, "flex_attention");
            CHECK_STR(c[1].attn_implementation, "flash_attention_2");
            CHECK(!c[1].compile_kwargs.set);
            CHECK_STR(c[2].attn_implementation, "eager");
            CHECK(c[2].compile_kwargs.set);
            CHECK(c[3].continuous_batching);
        }
        int u = count_unique(c, n);
        /* After the validity rules: level 2's compiled flex_attention becomes sdpa compiled
         * (= its sdpa compiled config); at level 3 FA2 compiled generate equals FA2
         * uncompiled (2 duplicates) and all 8 flex configs become sdpa generate ones:
         * 32 - 2 - 8 = 22. */
        const int uniq[5] = {1, 4, 7, 22, 0};
        if (l <= 3) CHECK_EQ_INT(u, uniq[l]);
        free(c);
    }
    gb_bench_config *c;
    int n;
    CHECK_OK(gb_bench_configs_for_level(-1, &c, &n, &err), &err);
    CHECK_EQ_INT(n, 0);
    free(c);
}

static void test_sweep(void) {
    gb_error err;
    gb_bench_config base[2];
    gb_bench_config_default(&base[0]);
    gb_bench_config_default(&base[1]);
    snprintf(base[1].attn_implementation, sizeof base[1].attn_implementation, "sdpa");
    snprintf(base[0].name, sizeof base[0].name, "given");
    base[0].name_given = true;
    int b[2] = {1, 4}, n[3] = {8, 16, 32}, w[1] = {3};
    gb_bench_sweep sw = {.warmup = w,
                         .n_warmup = 1,
                         .batch = b,
                         .n_batch = 2,
                         .ntok = n,
                         .n_ntok = 3,
                         .gpu_monitoring = 0};
    gb_bench_config *out;
    int no;
    CHECK_OK(gb_bench_configs_sweep(base, 2, &sw, &out, &no, &err), &err);
    CHECK_EQ_INT(no, 12);
    /* Order: batch outer, ntok, then the input configs innermost. */
    CHECK_EQ_INT(out[0].batch_size, 1);
    CHECK_EQ_INT(out[0].num_tokens_to_generate, 8);
    CHECK_STR(out[0].attn_implementation, "eager");
    CHECK_STR(out[1].attn_implementation, "sdpa");
    CHECK_EQ_INT(out[2].num_tokens_to_generate, 16);
    CHECK_EQ_INT(out[6].batch_size, 4);
    CHECK(!out[0].name_given);
    CHECK(!out[0].gpu_monitoring);
    CHECK_EQ_INT(out[11].warmup_iterations, 3);
    CHECK_EQ_INT(out[11].measurement_iterations, 20);
    free(out);
}

static void test_files(void) {
    gb_error err;
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s/config_files", gb_test_tmp());
    CHECK_OK(gb_mkdir_p(dir, &err), &err);
    snprintf(path, sizeof path, "%s/a.json", dir);
    const char *arr = "[{\"attn_implementation\": \"sdpa\", \"batch_size\": 2},"
                      " {\"compile_kwargs\": {\"mode\": \"default\"}, \"name\": \"mine\"}]";
    CHECK_OK(gb_file_write_atomic(path, arr, strlen(arr), &err), &err);
    gb_bench_config *c;
    int n;
    CHECK_OK(gb_bench_config_read_file(path, &c, &n, &err), &err);
    CHECK_EQ_INT(n, 2);
    if (n == 2) {
        CHECK_EQ_INT(c[0].batch_size, 2);
        CHECK_STR(c[1].name, "mine");
        CHECK(c[1].compile_kwargs.set && c[1].compile_kwargs.fullgraph);
        CHECK_STR(c[1].compile_kwargs.backend, "inductor");
    }
    free(c);
    snprintf(path, sizeof path, "%s/b.jsonl", dir);
    const char *lines = "{\"num_tokens_to_generate\": 16}\n\n{\"kernelize\": true}\n";
    CHECK_OK(gb_file_write_atomic(path, lines, strlen(lines), &err), &err);
    CHECK_OK(gb_bench_config_read_file(path, &c, &n, &err), &err);
    CHECK_EQ_INT(n, 2);
    if (n == 2) CHECK(c[1].kernelize);
    free(c);
    const char *bad = "{\"batch_size\": \"two\"}\n";
    CHECK_OK(gb_file_write_atomic(path, bad, strlen(bad), &err), &err);
    CHECK(gb_bench_config_read_file(path, &c, &n, &err) == GB_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "batch_size") && strstr(err.msg, "b.jsonl"), "%s", err.msg);
    const char *unk = "{\"bogus\": 1}";
    CHECK_OK(gb_file_write_atomic(path, unk, strlen(unk), &err), &err);
    CHECK(gb_bench_config_read_file(path, &c, &n, &err) == GB_ERR_INVALID);
    CHECK(strstr(err.msg, "bogus") != NULL);
    const char *broken = "{\"batch_size\": ";
    CHECK_OK(gb_file_write_atomic(path, broken, strlen(broken), &err), &err);
    CHECK(gb_bench_config_read_file(path, &c, &n, &err) == GB_ERR_FORMAT);
}

int main(void) {
    test_vectors();
    test_float_repr();
    test_defaults_and_names();
    test_validity();
    test_levels();
    test_sweep();
    test_files();
    TEST_MAIN_END();
}
