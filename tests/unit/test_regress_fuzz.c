/* Regressions found by the fuzzers (tests/fuzz, docs/fuzzing.md), kept here so CI, which
 * does not fuzz, keeps them fixed. Each case is the crashing input reduced by hand. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench/config.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "test.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

static char tmp[512];

static const char *write_file(const char *name, const void *data, size_t len) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
    return path;
}

/* An error message must be one line even when it quotes input holding control characters. */
static void check_one_line(const gb_error *err, const char *what) {
    CHECK_MSG(err->msg[0] != '\0', "%s: empty error message", what);
    for (const char *p = err->msg; *p; p++)
        if ((unsigned char)*p < 0x20) {
            CHECK_MSG(0, "%s: control byte 0x%02x in error message '%s'", what,
                      (unsigned)(unsigned char)*p, err->msg);
            break;
        }
}

/* fuzz_safetensors crash-5b65b8: a dtype string with a raw newline was echoed into the
 * "unknown dtype" message, making it two lines. */
static void safetensors_dtype_newline(void) {
    const char hdr[] = "{\"a\": {\"dtype\": \"F32\n\x01\", \"shape\": [2, 2], "
                       "\"data_offsets\": [0, 16]}}";
    size_t n = sizeof hdr - 1;
    unsigned char buf[256] = {0};
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, hdr, n);
    const char *path = write_file("dtype_newline.safetensors", buf, 8 + n + 16);
    gb_safetensors *st = NULL;
    gb_error err = {0};
    int rc = gb_safetensors_open(path, &st, &err);
    CHECK_MSG(rc != 0, "expected an error, got rc %d", rc);
    if (rc) check_one_line(&err, "safetensors dtype");
    CHECK_MSG(strstr(err.msg, "dtype_newline.safetensors") != NULL, "file not named: '%s'",
              err.msg);
    gb_safetensors_free(st);
}

/* fuzz_config crash-f5155c: an architectures entry with a raw newline ("GPT2LMHead edMo\nl")
 * was quoted into the "unknown architecture" message. */
static void config_arch_newline(void) {
    const char json[] = "{\"architectures\": [\"GPT2LMHead edMo\nl\"], \"model_type\": \"gpt2\","
                        " \"n_embd\": 64, \"n_head\": 4, \"n_layer\": 2, \"vocab_size\": 100}";
    gb_model_config cfg;
    gb_error err = {0};
    int rc = gb_model_config_parse(json, sizeof json - 1, "config.json", &cfg, &err);
    CHECK_MSG(rc != 0, "expected an error, got rc %d", rc);
    if (rc) check_one_line(&err, "config architectures");
}

/* gb_error_prefix keeps the one-line guarantee too. */
static void error_prefix_newline(void) {
    gb_error err = {0};
    gb_error_set(&err, GB_ERR_FORMAT, "bad\r\nvalue\t'%s'", "x\ny");
    gb_error_prefix(&err, "file\n%s", "name");
    check_one_line(&err, "gb_error_prefix");
    CHECK_STR(err.msg, "file?name: bad??value?'x?y'");
}

/* fuzz_config crash-9ccb01: "num_tokens_to_generate": 7777...74 (a 1e96 number) in a config
 * file was converted to int before the range check (undefined behaviour, UBSan abort). */
static void bench_config_huge_int(void) {
    const char text[] = "{\"attn_implementation\": \"sdpa\", \"num_tokens_to_generate\": "
                        "7777777777777777777777777777777777777777777777777777777777777777777777"
                        "77777777777777777777777774}\n";
    const char *path = write_file("huge.jsonl", text, sizeof text - 1);
    gb_bench_config *c = NULL;
    int n = 0;
    gb_error err = {0};
    int rc = gb_bench_config_read_file(path, &c, &n, &err);
    CHECK_MSG(rc != 0, "expected an error, got rc %d with %d configs", rc, n);
    if (rc) {
        check_one_line(&err, "bench config huge int");
        CHECK_MSG(strstr(err.msg, "num_tokens_to_generate") != NULL, "key not named: '%s'",
                  err.msg);
    }
    free(c);
}

/* Same class in tokenizer.json: a TemplateProcessing special token id of 1e30 was cast to
 * int32_t unchecked. The seed tokenizer of the fuzzer with that id must be refused. */
static void tokenizer_postproc_huge_id(void) {
    char *json = NULL;
    size_t len = 0;
    FILE *f = fopen("fuzz/corpus/tokenizer_json/llama2_small.json", "rb");
    CHECK_MSG(f != NULL, "cannot open the llama2_small seed (cwd must be tests/)");
    if (!f) return;
    fseek(f, 0, SEEK_END);
    len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    json = malloc(len + 1);
    if (fread(json, 1, len, f) != len) len = 0;
    json[len] = '\0';
    fclose(f);
    char *at = strstr(json, "\"ids\": [1]");
    CHECK_MSG(at != NULL, "seed has no \"ids\": [1]");
    if (at) {
        char dir[600];
        snprintf(dir, sizeof dir, "%s/tok_huge_id", tmp);
        char cmd[700];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
        if (system(cmd) != 0) exit(1);
        size_t head = (size_t)(at - json) + strlen("\"ids\": [");
        char *patched = malloc(len + 16);
        memcpy(patched, json, head);
        memcpy(patched + head, "1e30", 4);
        memcpy(patched + head + 4, json + head + 1, len - head - 1);
        write_file("tok_huge_id/tokenizer.json", patched, len + 3);
        gb_tokenizer *t = NULL;
        gb_error err = {0};
        int rc = gb_tokenizer_load(dir, &t, &err);
        CHECK_MSG(rc != 0, "expected an error for a special token id of 1e30");
        if (rc) check_one_line(&err, "tokenizer id 1e30");
        gb_tokenizer_free(t);
        free(patched);
    }
    free(json);
}

int main(void) {
    const char *base = getenv("GB_TEST_TMP");
    snprintf(tmp, sizeof tmp, "%s/regress_fuzz", base && *base ? base : "/tmp");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmp);
    if (system(cmd) != 0) return 1;
    safetensors_dtype_newline();
    config_arch_newline();
    error_prefix_newline();
    bench_config_huge_int();
    tokenizer_postproc_huge_id();
    TEST_MAIN_END();
}
