/* config.json parsing: the fixture configs, the presets' parameter counts (against the public
 * numbers of the real checkpoints), transformers' defaults for absent keys, RoPE scaling,
 * generation_config.json, and refusals that name the file and the key. */
#include <cjson/cJSON.h>
#include <unistd.h>

#include "model/config.h"
#include "model/presets.h"
#include "model/tensors.h"
#include "test.h"
#include "util/error.h"
#include "util/fileio.h"

static char *g_dir;

static int parse(const char *json, gb_model_config *c, gb_error *err) {
    return gb_model_config_parse(json, strlen(json), "cfg.json", c, err);
}

static void expect_refused(const char *json, int code, const char *needle, const char *needle2) {
    gb_model_config c;
    gb_error err = {0};
    int rc = parse(json, &c, &err);
    CHECK_MSG(rc == code, "expected code %d, got %d (%s) for %s", code, rc, err.msg, json);
    CHECK_MSG(strstr(err.msg, "cfg.json") != NULL, "message does not name the file: %s", err.msg);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "expected \"%s\" in: %s", needle, err.msg);
    if (needle2)
        CHECK_MSG(strstr(err.msg, needle2) != NULL, "expected \"%s\" in: %s", needle2, err.msg);
}

#define CHECK_F(a, b)                                                                              \
    do {                                                                                           \
        double fa_ = (a), fb_ = (b);                                                               \
        CHECK_MSG(fabs(fa_ - fb_) <= 1e-6 * fabs(fb_), "%s: expected %g, got %g", #a, fb_, fa_);   \
    } while (0)

static void test_fixtures(void) {
    gb_model_config c;
    gb_error err = {0};
    CHECK_OK(gb_model_config_load("../data/fixture-models/tiny-llama3/config.json", &c, &err),
             &err);
    CHECK_EQ_INT(c.arch, GB_ARCH_LLAMA);
    CHECK_STR(c.model_type, "llama");
    CHECK_STR(c.architecture, "LlamaForCausalLM");
    CHECK_EQ_INT(c.vocab_size, 128256);
    CHECK_EQ_INT(c.hidden_size, 64);
    CHECK_EQ_INT(c.intermediate_size, 128);
    CHECK_EQ_INT(c.num_layers, 2);
    CHECK_EQ_INT(c.num_heads, 4);
    CHECK_EQ_INT(c.num_kv_heads, 2);
    CHECK_EQ_INT(c.head_dim, 16);
    CHECK_EQ_INT(c.max_position, 131072);
    CHECK_F(c.norm_eps, 1e-5);
    CHECK_F(c.rope_theta, 500000.0);
    CHECK_EQ_INT(c.rope_type, GB_ROPE_LLAMA3);
    CHECK_F(c.rope_factor, 32.0);
    CHECK_F(c.rope_low_freq_factor, 1.0);
    CHECK_F(c.rope_high_freq_factor, 4.0);
    CHECK_EQ_INT(c.rope_original_max_pos, 8192);
    CHECK(c.tie_word_embeddings);
    CHECK(!c.attention_bias && !c.mlp_bias && !c.qk_norm);
    CHECK_EQ_INT(c.act, GB_ACT_SILU);
    CHECK_EQ_INT(c.torch_dtype, GB_BF16);
    CHECK_EQ_INT(c.bos_token_id, 128000);
    CHECK_EQ_INT(c.eos_token_id, 128001);
    CHECK_EQ_INT(c.pad_token_id, -1);

    CHECK_OK(gb_model_config_load("../data/fixture-models/tiny-qwen2/config.json", &c, &err), &err);
    CHECK_EQ_INT(c.arch, GB_ARCH_QWEN2);
    CHECK_EQ_INT(c.head_dim, 16); /* no head_dim key: 64 / 4 */
    CHECK(c.attention_bias);
    CHECK_F(c.norm_eps, 1e-6);
    CHECK_F(c.rope_theta, 1e6);
    CHECK_EQ_INT(c.rope_type, GB_ROPE_DEFAULT);
    CHECK_EQ_INT(c.sliding_window, 0);

    CHECK_OK(gb_model_config_load("../data/fixture-models/tiny-qwen3/config.json", &c, &err), &err);
    CHECK_EQ_INT(c.arch, GB_ARCH_QWEN3);
    CHECK_EQ_INT(c.head_dim, 32);
    CHECK(c.qk_norm && !c.attention_bias);
    CHECK_EQ_INT(c.eos_token_id, 151645);

    CHECK_OK(gb_model_config_load("../data/fixture-models/tiny-mistral/config.json", &c, &err),
             &err);
    CHECK_EQ_INT(c.arch, GB_ARCH_MISTRAL);
    CHECK_EQ_INT(c.sliding_window, 0); /* explicit null */
    CHECK(!c.tie_word_embeddings);
    CHECK_EQ_INT(c.num_kv_heads, 1);
    CHECK_EQ_INT(c.head_dim, 64);

    CHECK_OK(gb_model_config_load("../data/fixture-models/tiny-llama2-h128/config.json", &c, &err),
             &err);
    CHECK_EQ_INT(c.head_dim, 128);
    CHECK_EQ_INT(c.num_heads * c.head_dim, 256);

    CHECK_OK(gb_model_config_load("../data/fixture-models/tiny-gpt2/config.json", &c, &err), &err);
    CHECK_EQ_INT(c.arch, GB_ARCH_GPT2);
    CHECK_EQ_INT(c.hidden_size, 64);
    CHECK_EQ_INT(c.intermediate_size, 256); /* n_inner absent: 4H */
    CHECK_EQ_INT(c.num_layers, 2);
    CHECK_EQ_INT(c.num_heads, 2);
    CHECK_EQ_INT(c.num_kv_heads, 2);
    CHECK_EQ_INT(c.head_dim, 32);
    CHECK_EQ_INT(c.max_position, 1024);
    CHECK_EQ_INT(c.act, GB_ACT_GELU_TANH);
    CHECK_F(c.norm_eps, 1e-5);
    CHECK(c.tie_word_embeddings);
    CHECK_EQ_INT(c.bos_token_id, 50256);

    /* Parameter counts equal the element counts of the reference tensor lists. */
    static const char *names[] = {"tiny-llama3",  "tiny-qwen3",       "tiny-qwen2",
                                  "tiny-mistral", "tiny-llama2-h128", "tiny-gpt2"};
    for (int i = 0; i < 6; i++) {
        char *cp = gb_strdup_printf("../data/fixture-models/%s/config.json", names[i]);
        char *rp = gb_strdup_printf("%s/refs/%s.ref.json", gb_test_data(), names[i]);
        char *text = NULL;
        size_t len = 0;
        CHECK_OK(gb_model_config_load(cp, &c, &err), &err);
        CHECK_OK(gb_file_read_all(rp, 0, &text, &len, &err), &err);
        cJSON *ref = text ? cJSON_Parse(text) : NULL;
        long long want = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(ref, "tensors")) {
            long long e = 1;
            const cJSON *d;
            cJSON_ArrayForEach(d, cJSON_GetObjectItem(t, "shape")) e *= (long long)d->valuedouble;
            want += e;
        }
        CHECK_MSG(want > 0 && gb_model_config_num_params(&c) == want, "%s: expected %lld, got %lld",
                  names[i], want, (long long)gb_model_config_num_params(&c));
        cJSON_Delete(ref);
        free(text);
        free(cp);
        free(rp);
    }
}

/* Parameter counts of the real checkpoints as published (safetensors metadata on the Hub,
 * tied embeddings counted once). */
static void test_presets(void) {
    static const struct {
        const char *name;
        long long params;
    } want[] = {
        {"smollm2-135m", 134515008LL},  {"smollm2-360m", 361821120LL},
        {"qwen2.5-0.5b", 494032768LL},  {"qwen3-0.6b", 596049920LL},
        {"llama-3.2-1b", 1235814400LL}, {"llama-3.2-3b", 3212749824LL},
        {"llama-3.1-8b", 8030261248LL}, {"mistral-7b-v0.1", 7241732096LL},
        {"gpt2", 124439808LL},
    };
    int n = 0;
    for (const char *const *p = gb_preset_names(); *p; p++)
        n++;
    CHECK_EQ_INT(n, 15);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        gb_preset p;
        gb_error err = {0};
        gb_model_config c;
        CHECK_OK(gb_preset_load(want[i].name, &p, &err), &err);
        CHECK_OK(gb_model_config_parse(p.config_json, p.config_len, want[i].name, &c, &err), &err);
        long long got = gb_model_config_num_params(&c);
        CHECK_MSG(got == want[i].params, "%s: expected %lld parameters, got %lld", want[i].name,
                  want[i].params, got);
        CHECK(p.tokenizer_dir && p.seed == 0 && p.max_shard_bytes == 0);
        gb_preset_free(&p);
    }
    gb_preset p;
    gb_error err = {0};
    CHECK_OK(gb_preset_load("tiny-mistral", &p, &err), &err);
    CHECK_EQ_INT(p.max_shard_bytes, 9000000);
    CHECK_STR(p.tokenizer, "llama2");
    gb_preset_free(&p);
    CHECK_EQ_INT(gb_preset_load("llama-9000", &p, &err), GB_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "llama-9000") && strstr(err.msg, "tiny-gpt2"));
}

static void test_defaults(void) {
    gb_model_config c;
    gb_error err = {0};
    CHECK_OK(parse("{\"model_type\": \"llama\"}", &c, &err), &err);
    CHECK_EQ_INT(c.vocab_size, 32000);
    CHECK_EQ_INT(c.hidden_size, 4096);
    CHECK_EQ_INT(c.intermediate_size, 11008);
    CHECK_EQ_INT(c.num_layers, 32);
    CHECK_EQ_INT(c.num_heads, 32);
    CHECK_EQ_INT(c.num_kv_heads, 32);
    CHECK_EQ_INT(c.head_dim, 128);
    CHECK_EQ_INT(c.max_position, 2048);
    CHECK_F(c.norm_eps, 1e-6);
    CHECK_F(c.rope_theta, 10000.0);
    CHECK_EQ_INT(c.rope_type, GB_ROPE_DEFAULT);
    CHECK(!c.tie_word_embeddings);
    CHECK_EQ_INT(c.act, GB_ACT_SILU);
    CHECK_STR(c.architecture, "LlamaForCausalLM");
    CHECK_EQ_INT(c.bos_token_id, 1);
    CHECK_EQ_INT(c.eos_token_id, 2);

    /* null means "use the default" as in transformers */
    CHECK_OK(parse("{\"model_type\": \"llama\", \"hidden_size\": 96, \"num_attention_heads\": 6,"
                   " \"num_key_value_heads\": null, \"head_dim\": null, \"rope_scaling\": null}",
                   &c, &err),
             &err);
    CHECK_EQ_INT(c.num_kv_heads, 6);
    CHECK_EQ_INT(c.head_dim, 16);

    CHECK_OK(parse("{\"model_type\": \"mistral\"}", &c, &err), &err);
    CHECK_EQ_INT(c.intermediate_size, 14336);
    CHECK_EQ_INT(c.num_kv_heads, 8);
    CHECK_EQ_INT(c.max_position, 131072);
    CHECK_EQ_INT(c.sliding_window, 4096);
    CHECK_F(c.rope_theta, 10000.0);
    CHECK(!c.tie_word_embeddings);

    CHECK_OK(parse("{\"model_type\": \"qwen2\"}", &c, &err), &err);
    CHECK_EQ_INT(c.vocab_size, 151936);
    CHECK_EQ_INT(c.intermediate_size, 22016);
    CHECK_EQ_INT(c.num_kv_heads, 32);
    CHECK_EQ_INT(c.max_position, 32768);
    CHECK(c.attention_bias);
    CHECK(!c.tie_word_embeddings);
    CHECK_F(c.rope_theta, 10000.0);

    CHECK_OK(parse("{\"model_type\": \"qwen3\", \"hidden_size\": 64}", &c, &err), &err);
    CHECK_EQ_INT(c.head_dim, 128); /* Qwen3Config's head_dim default, not H / nh */
    CHECK(c.qk_norm);
    CHECK(!c.tie_word_embeddings);

    CHECK_OK(parse("{\"model_type\": \"gpt2\", \"n_inner\": null}", &c, &err), &err);
    CHECK_EQ_INT(c.vocab_size, 50257);
    CHECK_EQ_INT(c.hidden_size, 768);
    CHECK_EQ_INT(c.num_layers, 12);
    CHECK_EQ_INT(c.num_heads, 12);
    CHECK_EQ_INT(c.intermediate_size, 3072);
    CHECK_EQ_INT(c.max_position, 1024);
    CHECK_F(c.norm_eps, 1e-5);
    CHECK_EQ_INT(c.act, GB_ACT_GELU_TANH);
    CHECK(c.tie_word_embeddings);
    CHECK_EQ_INT(c.eos_token_id, 50256);

    CHECK_OK(parse("{\"model_type\": \"gpt2\", \"n_embd\": 32, \"n_head\": 4, \"n_inner\": 40,"
                   " \"activation_function\": \"gelu_pytorch_tanh\"}",
                   &c, &err),
             &err);
    CHECK_EQ_INT(c.intermediate_size, 40);
    CHECK_EQ_INT(c.head_dim, 8);

    /* bias keys: llama reads both, qwen3 attention_bias only, mistral none (as transformers) */
    CHECK_OK(parse("{\"model_type\": \"llama\", \"attention_bias\": true, \"mlp_bias\": true}", &c,
                   &err),
             &err);
    CHECK(c.attention_bias && c.mlp_bias);
    CHECK_OK(parse("{\"model_type\": \"mistral\", \"attention_bias\": true}", &c, &err), &err);
    CHECK(!c.attention_bias);
    CHECK_OK(parse("{\"model_type\": \"qwen3\", \"attention_bias\": true, \"mlp_bias\": true}", &c,
                   &err),
             &err);
    CHECK(c.attention_bias && !c.mlp_bias);

    /* eos lists: first id; dtype spellings */
    CHECK_OK(parse("{\"model_type\": \"llama\", \"eos_token_id\": [128001, 128009],"
                   " \"torch_dtype\": \"float16\", \"pad_token_id\": 0}",
                   &c, &err),
             &err);
    CHECK_EQ_INT(c.eos_token_id, 128001);
    CHECK_EQ_INT(c.pad_token_id, 0);
    CHECK_EQ_INT(c.torch_dtype, GB_F16);
}

static void test_rope(void) {
    gb_model_config c;
    gb_error err = {0};
    CHECK_OK(parse("{\"model_type\": \"llama\", \"rope_theta\": 500000.0, \"rope_scaling\":"
                   " {\"type\": \"linear\", \"factor\": 4.0}}",
                   &c, &err),
             &err);
    CHECK_EQ_INT(c.rope_type, GB_ROPE_LINEAR);
    CHECK_F(c.rope_factor, 4.0);
    CHECK_F(c.rope_theta, 500000.0);

    /* transformers 5 spelling: rope_parameters carries theta and scaling */
    CHECK_OK(parse("{\"model_type\": \"llama\", \"rope_parameters\": {\"rope_type\": \"llama3\","
                   " \"rope_theta\": 500000.0, \"factor\": 8.0, \"low_freq_factor\": 1.0,"
                   " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}}",
                   &c, &err),
             &err);
    CHECK_EQ_INT(c.rope_type, GB_ROPE_LLAMA3);
    CHECK_F(c.rope_factor, 8.0);
    CHECK_F(c.rope_theta, 500000.0);
    CHECK_EQ_INT(c.rope_original_max_pos, 8192);

    CHECK_OK(parse("{\"model_type\": \"qwen3\", \"rope_parameters\": {\"rope_type\": \"default\","
                   " \"rope_theta\": 1000000}}",
                   &c, &err),
             &err);
    CHECK_EQ_INT(c.rope_type, GB_ROPE_DEFAULT);
    CHECK_F(c.rope_theta, 1e6);

    expect_refused("{\"model_type\": \"llama\", \"rope_scaling\": {\"rope_type\": \"yarn\","
                   " \"factor\": 4.0}}",
                   GB_ERR_UNSUPPORTED, "\"yarn\"", "rope_scaling");
    expect_refused("{\"model_type\": \"qwen2\", \"rope_scaling\": {\"type\": \"dynamic\","
                   " \"factor\": 2.0}}",
                   GB_ERR_UNSUPPORTED, "\"dynamic\"", "rope_scaling");
    expect_refused("{\"model_type\": \"llama\", \"rope_scaling\": {\"rope_type\": \"llama3\","
                   " \"factor\": 8.0, \"high_freq_factor\": 4.0,"
                   " \"original_max_position_embeddings\": 8192}}",
                   GB_ERR_INVALID, "rope_scaling", "low_freq_factor");
    expect_refused("{\"model_type\": \"llama\", \"rope_scaling\": {\"rope_type\": \"linear\"}}",
                   GB_ERR_INVALID, "rope_scaling.factor", NULL);
    expect_refused("{\"model_type\": \"llama\", \"rope_scaling\": {\"rope_type\": \"linear\","
                   " \"factor\": 0.5}}",
                   GB_ERR_INVALID, "rope_scaling.factor", NULL);
    expect_refused("{\"model_type\": \"llama\", \"rope_scaling\": \"linear\"}", GB_ERR_FORMAT,
                   "rope_scaling", NULL);
    expect_refused("{\"model_type\": \"llama\", \"rope_theta\": -1}", GB_ERR_INVALID, "rope_theta",
                   NULL);
}

static void test_refusals(void) {
    expect_refused("{\"model_type\": \"falcon\"}", GB_ERR_UNSUPPORTED, "\"falcon\"", "model_type");
    expect_refused("{\"architectures\": [\"LlamaForCausalLM\"]}", GB_ERR_INVALID, "model_type",
                   "missing");
    expect_refused("{\"model_type\": \"llama\", \"architectures\": "
                   "[\"LlamaForSequenceClassification\"]}",
                   GB_ERR_UNSUPPORTED, "LlamaForSequenceClassification", "architectures");
    expect_refused("{\"model_type\": \"qwen2\", \"architectures\": [\"LlamaForCausalLM\"]}",
                   GB_ERR_UNSUPPORTED, "architectures", "LlamaForCausalLM");
    expect_refused("{\"model_type\": \"llama\", \"architectures\": []}", GB_ERR_FORMAT,
                   "architectures", NULL);
    expect_refused("{\"model_type\": 5}", GB_ERR_FORMAT, "model_type", NULL);
    expect_refused("{\"model_type\": \"llama\", \"hidden_size\": 0}", GB_ERR_INVALID, "hidden_size",
                   "positive");
    expect_refused("{\"model_type\": \"llama\", \"num_hidden_layers\": -2}", GB_ERR_INVALID,
                   "num_hidden_layers", NULL);
    expect_refused("{\"model_type\": \"llama\", \"vocab_size\": \"32000\"}", GB_ERR_FORMAT,
                   "vocab_size", NULL);
    expect_refused("{\"model_type\": \"llama\", \"intermediate_size\": 10.5}", GB_ERR_FORMAT,
                   "intermediate_size", NULL);
    expect_refused("{\"model_type\": \"llama\", \"hidden_size\": 100, \"num_attention_heads\": 3}",
                   GB_ERR_INVALID, "num_attention_heads", "hidden_size");
    expect_refused("{\"model_type\": \"mistral\", \"num_attention_heads\": 4,"
                   " \"num_key_value_heads\": 3, \"hidden_size\": 64}",
                   GB_ERR_INVALID, "num_key_value_heads", NULL);
    expect_refused("{\"model_type\": \"llama\", \"num_key_value_heads\": 0}", GB_ERR_INVALID,
                   "num_key_value_heads", NULL);
    expect_refused("{\"model_type\": \"llama\", \"head_dim\": 0}", GB_ERR_INVALID, "head_dim",
                   NULL);
    expect_refused("{\"model_type\": \"llama\", \"head_dim\": 15}", GB_ERR_INVALID, "head_dim",
                   NULL);
    expect_refused("{\"model_type\": \"gpt2\", \"n_embd\": 100, \"n_head\": 3}", GB_ERR_INVALID,
                   "n_head", "n_embd");
    expect_refused("{\"model_type\": \"gpt2\", \"n_layer\": 0}", GB_ERR_INVALID, "n_layer", NULL);
    expect_refused("{\"model_type\": \"llama\", \"hidden_act\": \"relu\"}", GB_ERR_UNSUPPORTED,
                   "hidden_act", "\"relu\"");
    expect_refused("{\"model_type\": \"gpt2\", \"activation_function\": \"gelu\"}",
                   GB_ERR_UNSUPPORTED, "activation_function", "\"gelu\"");
    expect_refused("{\"model_type\": \"llama\", \"rms_norm_eps\": 0}", GB_ERR_INVALID,
                   "rms_norm_eps", NULL);
    expect_refused("{\"model_type\": \"llama\", \"tie_word_embeddings\": \"yes\"}", GB_ERR_FORMAT,
                   "tie_word_embeddings", NULL);
    expect_refused("{\"model_type\": \"llama\", \"torch_dtype\": \"float64\"}", GB_ERR_UNSUPPORTED,
                   "torch_dtype", "float64");
    expect_refused("{\"model_type\": \"qwen2\", \"use_sliding_window\": true}", GB_ERR_UNSUPPORTED,
                   "use_sliding_window", NULL);
    expect_refused("{\"model_type\": \"llama\", \"hidden_size\": 1e12}", GB_ERR_FORMAT,
                   "hidden_size", NULL);
    expect_refused("[1, 2]", GB_ERR_FORMAT, "not a JSON object", NULL);
    expect_refused("{\"model_type\": \"llama\",", GB_ERR_FORMAT, "malformed JSON", NULL);
}

static void write_file(const char *path, const char *text) {
    gb_error err = {0};
    CHECK_OK(gb_file_write_atomic(path, text, strlen(text), &err), &err);
}

static void test_files(void) {
    gb_model_config c;
    gb_error err = {0};
    char *cfg = gb_strdup_printf("%s/config.json", g_dir);
    char *gen = gb_strdup_printf("%s/generation_config.json", g_dir);
    write_file(cfg, "{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_attention_heads\": 4,"
                    " \"eos_token_id\": 2}");
    write_file(gen, "{\"bos_token_id\": 5, \"eos_token_id\": [7, 8], \"do_sample\": false}");
    CHECK_OK(gb_model_config_load(cfg, &c, &err), &err);
    CHECK_EQ_INT(c.bos_token_id, 5);
    CHECK_EQ_INT(c.eos_token_id, 7);

    write_file(gen, "{\"eos_token_id\": ");
    CHECK_EQ_INT(gb_model_config_load(cfg, &c, &err), GB_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, gen) != NULL, "message does not name %s: %s", gen, err.msg);
    unlink(gen);

    write_file(cfg, "{\"model_type\": \"llama\"\n \"hidden_size\": 64}");
    CHECK_EQ_INT(gb_model_config_load(cfg, &c, &err), GB_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, cfg) && strstr(err.msg, "malformed JSON"), "got: %s", err.msg);

    write_file(cfg, "{\"model_type\": \"llama\", \"num_attention_heads\": 4,"
                    " \"num_key_value_heads\": 3}");
    CHECK_EQ_INT(gb_model_config_load(cfg, &c, &err), GB_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, cfg) && strstr(err.msg, "num_key_value_heads"), "got: %s", err.msg);

    unlink(cfg);
    CHECK_EQ_INT(gb_model_config_load(cfg, &c, &err), GB_ERR_IO);
    CHECK_MSG(strstr(err.msg, cfg) != NULL, "got: %s", err.msg);
    free(cfg);
    free(gen);
}

/* Single-byte corruptions of a real config: parsed or refused with a message, never a crash
 * (run under ASan/UBSan in CI). */
static void test_mutations(void) {
    char *text = NULL;
    size_t len = 0;
    gb_error err = {0};
    CHECK_OK(
        gb_file_read_all("../data/fixture-models/tiny-llama3/config.json", 0, &text, &len, &err),
        &err);
    if (!text) return;
    static const char repl[] = {'"', '{', '}', '[', ']', ',', ':', '-', '0', '9', 'x', 'e', ' '};
    char *buf = malloc(len + 1);
    int unnamed = 0, ok = 0, refused = 0;
    for (size_t pos = 0; pos < len; pos++)
        for (size_t r = 0; r < sizeof repl; r++) {
            memcpy(buf, text, len + 1);
            buf[pos] = repl[r];
            gb_model_config c;
            gb_error e = {0};
            int rc = gb_model_config_parse(buf, len, "mut.json", &c, &e);
            if (rc == 0) {
                ok++;
                CHECK(c.hidden_size > 0 && c.num_heads > 0 && c.num_kv_heads > 0 &&
                      c.head_dim > 0 && c.num_heads % c.num_kv_heads == 0);
            } else {
                refused++;
                unnamed += strstr(e.msg, "mut.json") == NULL;
            }
        }
    CHECK_EQ_INT(unnamed, 0);
    CHECK(ok > 0 && refused > 0);
    free(buf);
    free(text);
}

int main(void) {
    g_dir = gb_strdup_printf("%s/config_%ld", gb_test_tmp(), (long)getpid());
    gb_error err = {0};
    CHECK_OK(gb_mkdir_p(g_dir, &err), &err);
    test_fixtures();
    test_presets();
    test_defaults();
    test_rope();
    test_refusals();
    test_files();
    test_mutations();
    rmdir(g_dir);
    free(g_dir);
    TEST_MAIN_END();
}
