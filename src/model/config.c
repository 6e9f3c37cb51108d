/* config.json parsing with transformers' defaults (LlamaConfig, MistralConfig, Qwen2Config,
 * Qwen3Config, GPT2Config of transformers 4.5x/5.x) for absent or null keys. */
#include "model/config.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/tensors.h"
#include "util/error.h"
#include "util/fileio.h"

typedef struct arch_info {
    const char *model_type;
    const char *architecture;
    gb_arch arch;
    /* transformers' __init__ defaults */
    int vocab, hidden, inter, layers, heads, kv_heads; /* kv_heads 0 = same as heads */
    int head_dim;                                      /* 0 = hidden / heads */
    int max_pos;
    double eps, theta;
    int tie;
    int sliding; /* mistral: 4096 */
    int bos, eos;
} arch_info;

static const arch_info ARCHS[] = {
    {"llama", "LlamaForCausalLM", GB_ARCH_LLAMA, 32000, 4096, 11008, 32, 32, 0, 0, 2048, 1e-6,
     10000.0, 0, 0, 1, 2},
    {"mistral", "MistralForCausalLM", GB_ARCH_MISTRAL, 32000, 4096, 14336, 32, 32, 8, 0, 4096 * 32,
     1e-6, 10000.0, 0, 4096, 1, 2},
    {"qwen2", "Qwen2ForCausalLM", GB_ARCH_QWEN2, 151936, 4096, 22016, 32, 32, 32, 0, 32768, 1e-6,
     10000.0, 0, 0, -1, -1},
    {"qwen3", "Qwen3ForCausalLM", GB_ARCH_QWEN3, 151936, 4096, 22016, 32, 32, 32, 128, 32768, 1e-6,
     10000.0, 0, 0, -1, -1},
    {"gpt2", "GPT2LMHeadModel", GB_ARCH_GPT2, 50257, 768, 0, 12, 12, 0, 0, 1024, 1e-5, 10000.0, 1,
     0, 50256, 50256},
};
#define NARCHS (int)(sizeof ARCHS / sizeof ARCHS[0])

/* Key lookup treating JSON null as absent (transformers treats None as "use the default"). */
static const cJSON *get(const cJSON *o, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNull(j) ? NULL : j;
}

/* Positive (or, with allow_zero, non-negative) integer key; *out unchanged when absent. */
static int get_int(const cJSON *o, const char *key, int *out, int allow_zero, const char *src,
                   gb_error *err) {
    const cJSON *j = get(o, key);
    if (!j) return GB_OK;
    double d = cJSON_IsNumber(j) ? j->valuedouble : NAN;
    if (!cJSON_IsNumber(j) || d != floor(d) || d > INT_MAX || d < INT_MIN)
        return gb_error_set(err, GB_ERR_FORMAT, "%s: key '%s' must be an integer", src, key);
    if (d < 0 || (!allow_zero && d == 0))
        return gb_error_set(err, GB_ERR_INVALID, "%s: key '%s' must be %s (got %.0f)", src, key,
                            allow_zero ? "non-negative" : "positive", d);
    *out = (int)d;
    return GB_OK;
}

static int get_num(const cJSON *o, const char *key, double *out, const char *src, gb_error *err) {
    const cJSON *j = get(o, key);
    if (!j) return GB_OK;
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
        return gb_error_set(err, GB_ERR_FORMAT, "%s: key '%s' must be a number", src, key);
    *out = j->valuedouble;
    return GB_OK;
}

static int get_bool(const cJSON *o, const char *key, bool *out, const char *src, gb_error *err) {
    const cJSON *j = get(o, key);
    if (!j) return GB_OK;
    if (!cJSON_IsBool(j))
        return gb_error_set(err, GB_ERR_FORMAT, "%s: key '%s' must be true or false", src, key);
    *out = cJSON_IsTrue(j);
    return GB_OK;
}

/* Token id: integer, or a list whose first element is used (eos lists); -1 stays when absent. */
static int get_token(const cJSON *o, const char *key, int *out, const char *src, gb_error *err) {
    const cJSON *j = get(o, key);
    if (!j) return GB_OK;
    if (cJSON_IsArray(j)) {
        j = cJSON_GetArrayItem(j, 0);
        if (!j) return GB_OK;
    }
    if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) || j->valuedouble < 0 ||
        j->valuedouble > INT_MAX)
        return gb_error_set(err, GB_ERR_FORMAT, "%s: key '%s' must be a token id", src, key);
    *out = (int)j->valuedouble;
    return GB_OK;
}

/* First key present of a list of aliases (gpt2's n_embd / hidden_size ...). */
static const char *alias(const cJSON *o, const char *a, const char *b) {
    return get(o, a) || !get(o, b) ? a : b;
}

static int parse_rope(const cJSON *root, gb_model_config *c, const char *src, gb_error *err) {
    /* transformers 5 moved rope_theta and the scaling into rope_parameters. */
    const char *key = "rope_scaling";
    const cJSON *rs = get(root, key);
    if (!rs) {
        key = "rope_parameters";
        rs = get(root, key);
    }
    double theta = c->rope_theta;
    GB_TRY(get_num(root, "rope_theta", &theta, src, err));
    if (!rs) {
        c->rope_theta = (float)theta;
        return GB_OK;
    }
    if (!cJSON_IsObject(rs))
        return gb_error_set(err, GB_ERR_FORMAT, "%s: key '%s' must be an object or null", src, key);
    GB_TRY(get_num(rs, "rope_theta", &theta, src, err));
    c->rope_theta = (float)theta;
    const cJSON *t = get(rs, "rope_type");
    const char *tkey = "rope_type";
    if (!t) {
        t = get(rs, "type");
        tkey = "type";
    }
    if (t && !cJSON_IsString(t))
        return gb_error_set(err, GB_ERR_FORMAT, "%s: key '%s.%s' must be a string", src, key, tkey);
    const char *type = t ? t->valuestring : "default";
    if (!strcmp(type, "default")) {
        c->rope_type = GB_ROPE_DEFAULT;
        return GB_OK;
    }
    double factor = NAN;
    char k[96];
    snprintf(k, sizeof k, "%s.factor", key);
    GB_TRY(get_num(rs, "factor", &factor, src, err));
    if (!strcmp(type, "linear")) {
        c->rope_type = GB_ROPE_LINEAR;
    } else if (!strcmp(type, "llama3")) {
        c->rope_type = GB_ROPE_LLAMA3;
        double lo = NAN, hi = NAN;
        int orig = 0;
        GB_TRY(get_num(rs, "low_freq_factor", &lo, src, err));
        GB_TRY(get_num(rs, "high_freq_factor", &hi, src, err));
        GB_TRY(get_int(rs, "original_max_position_embeddings", &orig, 0, src, err));
        if (isnan(lo) || isnan(hi) || orig == 0)
            return gb_error_set(err, GB_ERR_INVALID,
                                "%s: key '%s': llama3 scaling needs low_freq_factor, "
                                "high_freq_factor and original_max_position_embeddings",
                                src, key);
        if (!(lo > 0) || !(hi > lo))
            return gb_error_set(err, GB_ERR_INVALID,
                                "%s: key '%s': llama3 scaling needs 0 < low_freq_factor < "
                                "high_freq_factor",
                                src, key);
        c->rope_low_freq_factor = (float)lo;
        c->rope_high_freq_factor = (float)hi;
        c->rope_original_max_pos = orig;
    } else {
        return gb_error_set(err, GB_ERR_UNSUPPORTED,
                            "%s: key '%s': rope type \"%s\" is not supported (supported: "
                            "default, linear, llama3)",
                            src, key, type);
    }
    if (isnan(factor)) return gb_error_set(err, GB_ERR_INVALID, "%s: key '%s' is missing", src, k);
    if (!(factor >= 1.0))
        return gb_error_set(err, GB_ERR_INVALID, "%s: key '%s' must be >= 1 (got %g)", src, k,
                            factor);
    c->rope_factor = (float)factor;
    return GB_OK;
}

static int parse_act(const char *s, gb_act *out) {
    if (!strcmp(s, "silu") || !strcmp(s, "swish")) {
        *out = GB_ACT_SILU;
    } else if (!strcmp(s, "gelu_new") || !strcmp(s, "gelu_pytorch_tanh") ||
               !strcmp(s, "gelu_fast")) {
        *out = GB_ACT_GELU_TANH;
    } else {
        return -1;
    }
    return 0;
}

static int parse_obj(const cJSON *root, const char *src, gb_model_config *c, gb_error *err) {
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(root))
        return gb_error_set(err, GB_ERR_FORMAT, "%s: not a JSON object", src);

    const cJSON *mt = get(root, "model_type");
    const cJSON *archs = get(root, "architectures");
    if (mt && !cJSON_IsString(mt))
        return gb_error_set(err, GB_ERR_FORMAT, "%s: key 'model_type' must be a string", src);
    if (archs && (!cJSON_IsArray(archs) || !cJSON_IsString(cJSON_GetArrayItem(archs, 0))))
        return gb_error_set(err, GB_ERR_FORMAT,
                            "%s: key 'architectures' must be a non-empty list of strings", src);
    const char *arch_name = archs ? cJSON_GetArrayItem(archs, 0)->valuestring : NULL;
    const arch_info *ai = NULL;
    if (!mt)
        return gb_error_set(err, GB_ERR_INVALID, "%s: required key 'model_type' is missing", src);
    for (int i = 0; i < NARCHS; i++)
        if (!strcmp(mt->valuestring, ARCHS[i].model_type)) ai = &ARCHS[i];
    if (!ai)
        return gb_error_set(err, GB_ERR_UNSUPPORTED,
                            "%s: key 'model_type': \"%s\" is not supported (supported: llama, "
                            "mistral, qwen2, qwen3, gpt2)",
                            src, mt->valuestring);
    if (arch_name && strcmp(arch_name, ai->architecture))
        return gb_error_set(err, GB_ERR_UNSUPPORTED,
                            "%s: key 'architectures': \"%s\" is not supported for model_type "
                            "\"%s\" (expected %s)",
                            src, arch_name, ai->model_type, ai->architecture);
    c->arch = ai->arch;
    snprintf(c->model_type, sizeof c->model_type, "%s", ai->model_type);
    snprintf(c->architecture, sizeof c->architecture, "%s", ai->architecture);

    c->vocab_size = ai->vocab;
    c->hidden_size = ai->hidden;
    c->intermediate_size = ai->inter;
    c->num_layers = ai->layers;
    c->num_heads = ai->heads;
    c->max_position = ai->max_pos;
    c->tie_word_embeddings = ai->tie;
    c->rope_theta = (float)ai->theta;
    c->rope_type = GB_ROPE_DEFAULT;
    c->rope_factor = 1.0f;
    c->torch_dtype = GB_BF16;
    c->bos_token_id = ai->bos;
    c->eos_token_id = ai->eos;
    c->pad_token_id = -1;
    double eps = ai->eps;
    int head_dim = ai->head_dim, kv = ai->kv_heads;
    const char *k_hidden, *k_layers, *k_heads, *k_pos, *k_inter, *k_eps, *k_act;
    const char *k_kv = "num_key_value_heads";
    bool gpt2 = ai->arch == GB_ARCH_GPT2;
    if (gpt2) {
        k_hidden = alias(root, "n_embd", "hidden_size");
        k_layers = alias(root, "n_layer", "num_hidden_layers");
        k_heads = alias(root, "n_head", "num_attention_heads");
        k_pos = alias(root, "n_positions", "max_position_embeddings");
        k_inter = "n_inner";
        k_eps = "layer_norm_epsilon";
        k_act = "activation_function";
        c->act = GB_ACT_GELU_TANH;
    } else {
        k_hidden = "hidden_size";
        k_layers = "num_hidden_layers";
        k_heads = "num_attention_heads";
        k_pos = "max_position_embeddings";
        k_inter = "intermediate_size";
        k_eps = "rms_norm_eps";
        k_act = "hidden_act";
        c->act = GB_ACT_SILU;
    }
    GB_TRY(get_int(root, "vocab_size", &c->vocab_size, 0, src, err));
    GB_TRY(get_int(root, k_hidden, &c->hidden_size, 0, src, err));
    GB_TRY(get_int(root, k_layers, &c->num_layers, 0, src, err));
    GB_TRY(get_int(root, k_heads, &c->num_heads, 0, src, err));
    GB_TRY(get_int(root, k_pos, &c->max_position, 0, src, err));
    GB_TRY(get_int(root, k_inter, &c->intermediate_size, 0, src, err));
    GB_TRY(get_num(root, k_eps, &eps, src, err));
    if (!(eps > 0) || eps >= 1)
        return gb_error_set(err, GB_ERR_INVALID, "%s: key '%s' must be in (0, 1) (got %g)", src,
                            k_eps, eps);
    c->norm_eps = (float)eps;
    const cJSON *act = get(root, k_act);
    if (act) {
        if (!cJSON_IsString(act))
            return gb_error_set(err, GB_ERR_FORMAT, "%s: key '%s' must be a string", src, k_act);
        if (parse_act(act->valuestring, &c->act) != 0)
            return gb_error_set(err, GB_ERR_UNSUPPORTED,
                                "%s: key '%s': activation \"%s\" is not supported (supported: "
                                "silu, gelu_new, gelu_pytorch_tanh)",
                                src, k_act, act->valuestring);
    }
    if (gpt2) {
        if (c->intermediate_size == 0) c->intermediate_size = 4 * c->hidden_size;
        c->num_kv_heads = c->num_heads;
        /* transformers' GPT-2 has no rotary embedding; rope fields stay at defaults. */
    } else {
        GB_TRY(get_int(root, k_kv, &kv, 0, src, err));
        c->num_kv_heads = kv ? kv : c->num_heads;
        GB_TRY(get_int(root, "head_dim", &head_dim, 0, src, err));
        GB_TRY(parse_rope(root, c, src, err));
    }
    if (c->intermediate_size <= 0)
        return gb_error_set(err, GB_ERR_INVALID, "%s: key '%s' must be positive", src, k_inter);
    if (head_dim == 0) {
        if (c->hidden_size % c->num_heads != 0)
            return gb_error_set(err, GB_ERR_INVALID,
                                "%s: key '%s': %d heads do not divide %s %d (and no head_dim)", src,
                                k_heads, c->num_heads, k_hidden, c->hidden_size);
        head_dim = c->hidden_size / c->num_heads;
    }
    c->head_dim = head_dim;
    if (c->num_heads % c->num_kv_heads != 0)
        return gb_error_set(err, GB_ERR_INVALID,
                            "%s: key '%s': %d key/value heads do not divide %d attention heads",
                            src, k_kv, c->num_kv_heads, c->num_heads);
    if (!gpt2 && c->head_dim % 2 != 0)
        return gb_error_set(err, GB_ERR_INVALID, "%s: key 'head_dim': %d is odd (RoPE needs pairs)",
                            src, c->head_dim);
    /* Sizes whose products must fit the int64 element counts and int indexing of the engine. */
    if ((int64_t)c->num_heads * c->head_dim > (1 << 20) || c->hidden_size > (1 << 20) ||
        c->intermediate_size > (1 << 22) || c->num_layers > 4096)
        return gb_error_set(err, GB_ERR_INVALID, "%s: sizes are implausibly large", src);
    if (!(c->rope_theta > 0))
        return gb_error_set(err, GB_ERR_INVALID, "%s: key 'rope_theta' must be positive", src);

    GB_TRY(get_bool(root, "tie_word_embeddings", &c->tie_word_embeddings, src, err));
    if (ai->arch == GB_ARCH_QWEN2) {
        c->attention_bias = true;
        bool sw = false;
        GB_TRY(get_bool(root, "use_sliding_window", &sw, src, err));
        if (sw)
            return gb_error_set(err, GB_ERR_UNSUPPORTED,
                                "%s: key 'use_sliding_window': true is not supported", src);
    } else if (ai->arch == GB_ARCH_LLAMA || ai->arch == GB_ARCH_QWEN3) {
        /* transformers' Mistral has no bias keys; Qwen3's MLP has no bias. */
        GB_TRY(get_bool(root, "attention_bias", &c->attention_bias, src, err));
        if (ai->arch == GB_ARCH_LLAMA) GB_TRY(get_bool(root, "mlp_bias", &c->mlp_bias, src, err));
    }
    if (ai->arch == GB_ARCH_QWEN3) {
        c->qk_norm = true;
        bool sw = false;
        GB_TRY(get_bool(root, "use_sliding_window", &sw, src, err));
        if (sw)
            return gb_error_set(err, GB_ERR_UNSUPPORTED,
                                "%s: key 'use_sliding_window': true is not supported", src);
    }
    if (ai->arch == GB_ARCH_MISTRAL) {
        const cJSON *sw = cJSON_GetObjectItemCaseSensitive(root, "sliding_window");
        c->sliding_window = sw ? 0 : ai->sliding; /* explicit null = no window */
        GB_TRY(get_int(root, "sliding_window", &c->sliding_window, 1, src, err));
    }
    const cJSON *dt = get(root, "torch_dtype");
    const char *dkey = "torch_dtype";
    if (!dt) {
        dt = get(root, "dtype");
        dkey = "dtype";
    }
    if (dt) {
        if (!cJSON_IsString(dt))
            return gb_error_set(err, GB_ERR_FORMAT, "%s: key '%s' must be a string", src, dkey);
        if (gb_dtype_parse(dt->valuestring, &c->torch_dtype) != 0)
            return gb_error_set(err, GB_ERR_UNSUPPORTED,
                                "%s: key '%s': dtype \"%s\" is not supported", src, dkey,
                                dt->valuestring);
    }
    GB_TRY(get_token(root, "bos_token_id", &c->bos_token_id, src, err));
    GB_TRY(get_token(root, "eos_token_id", &c->eos_token_id, src, err));
    GB_TRY(get_token(root, "pad_token_id", &c->pad_token_id, src, err));
    return GB_OK;
}

int gb_model_config_parse(const char *json, size_t len, const char *source, gb_model_config *cfg,
                          gb_error *err) {
    const char *src = source ? source : "config.json";
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        const char *e = cJSON_GetErrorPtr();
        long at = e && e >= json && e <= json + len ? (long)(e - json) : 0;
        return gb_error_set(err, GB_ERR_FORMAT, "%s: malformed JSON near byte %ld", src, at);
    }
    int rc = parse_obj(root, src, cfg, err);
    cJSON_Delete(root);
    return rc;
}

int gb_model_config_load(const char *config_path, gb_model_config *cfg, gb_error *err) {
    char *text = NULL;
    size_t len = 0;
    GB_TRY(gb_file_read_all(config_path, 16u << 20, &text, &len, err));
    int rc = gb_model_config_parse(text, len, config_path, cfg, err);
    free(text);
    if (rc) return rc;
    /* generation_config.json beside config.json overrides the token ids. */
    const char *slash = strrchr(config_path, '/');
    char *gen = slash ? gb_strdup_printf("%.*s/generation_config.json", (int)(slash - config_path),
                                         config_path)
                      : gb_strdup_printf("generation_config.json");
    if (!gen) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    if (gb_is_file(gen)) {
        rc = gb_file_read_all(gen, 16u << 20, &text, &len, err);
        if (!rc) {
            cJSON *root = cJSON_ParseWithLength(text, len);
            free(text);
            if (!root || !cJSON_IsObject(root)) {
                rc = gb_error_set(err, GB_ERR_FORMAT, "%s: malformed JSON (not an object)", gen);
            } else {
                rc = get_token(root, "bos_token_id", &cfg->bos_token_id, gen, err);
                if (!rc) rc = get_token(root, "eos_token_id", &cfg->eos_token_id, gen, err);
                if (!rc) rc = get_token(root, "pad_token_id", &cfg->pad_token_id, gen, err);
            }
            cJSON_Delete(root);
        }
    }
    free(gen);
    return rc;
}

int64_t gb_model_config_num_params(const gb_model_config *cfg) {
    gb_tensor_spec *specs = NULL;
    int n = 0;
    if (gb_model_tensors(cfg, &specs, &n, NULL) != 0) return -1;
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        int64_t e = 1;
        for (int d = 0; d < specs[i].ndim; d++)
            e *= specs[i].shape[d];
        total += e;
    }
    free(specs);
    return total;
}
