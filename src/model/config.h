/* Model hyperparameters parsed from a Hugging Face config.json (+ generation_config.json),
 * with transformers' defaults applied where a key is absent. */
#ifndef GB_MODEL_CONFIG_H
#define GB_MODEL_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include "genbench.h"
#include "util/dtype.h"

typedef enum gb_arch {
    GB_ARCH_LLAMA = 0, /* llama 1/2/3/3.1/3.2 */
    GB_ARCH_MISTRAL,
    GB_ARCH_QWEN2, /* q/k/v projections carry a bias */
    GB_ARCH_QWEN3, /* per-head RMSNorm on q and k before RoPE */
    GB_ARCH_GPT2,  /* learned positions, LayerNorm, GELU(tanh), Conv1D [in, out] weights */
} gb_arch;

typedef enum gb_rope_type {
    GB_ROPE_DEFAULT = 0,
    GB_ROPE_LINEAR, /* positions divided by factor */
    GB_ROPE_LLAMA3, /* frequency-dependent scaling of Llama 3.1 */
} gb_rope_type;

typedef enum gb_act { GB_ACT_SILU = 0, GB_ACT_GELU_TANH } gb_act;

typedef struct gb_model_config {
    gb_arch arch;
    char model_type[32];    /* as in config.json, e.g. "llama" */
    char architecture[64];  /* architectures[0], e.g. "LlamaForCausalLM" */
    int vocab_size;         /* V */
    int hidden_size;        /* H */
    int intermediate_size;  /* I (gpt2: n_inner or 4H) */
    int num_layers;         /* L */
    int num_heads;          /* nh */
    int num_kv_heads;       /* nkv (== nh when absent; gpt2: nh) */
    int head_dim;           /* hd (head_dim key, else H / nh) */
    int max_position;       /* max_position_embeddings / n_positions */
    float norm_eps;         /* rms_norm_eps / layer_norm_epsilon */
    float rope_theta;
    gb_rope_type rope_type;
    float rope_factor;            /* linear / llama3 */
    float rope_low_freq_factor;   /* llama3 */
    float rope_high_freq_factor;  /* llama3 */
    int rope_original_max_pos;    /* llama3: original_max_position_embeddings */
    bool tie_word_embeddings;
    bool attention_bias;    /* q/k/v bias (qwen2 always); llama's and qwen3's attention_bias
                               key, which also adds o_proj.bias as in transformers */
    bool mlp_bias;          /* llama's mlp_bias key: gate/up/down biases */
    bool qk_norm;           /* qwen3 */
    gb_act act;             /* hidden_act / activation_function */
    int sliding_window;     /* 0 = none (mistral's sliding_window; ignored when >= context) */
    gb_dtype torch_dtype;   /* stored dtype named by config (torch_dtype / dtype), default bf16 */
    int bos_token_id;       /* -1 when absent */
    int eos_token_id;       /* first of a list; -1 when absent */
    int pad_token_id;       /* -1 when absent */
} gb_model_config;

/* Parses config.json at path (generation_config.json beside it, when present, fills
 * token ids). Unknown model_type / architectures, unsupported rope_scaling types and
 * inconsistent values (heads not dividing hidden, nkv not dividing nh, ...) are refused
 * with a message naming the file and the key. */
int gb_model_config_load(const char *config_path, gb_model_config *cfg, gb_error *err);

/* Same, from a JSON text already in memory; `source` names it in messages. */
int gb_model_config_parse(const char *json, size_t len, const char *source, gb_model_config *cfg,
                          gb_error *err);

/* Total parameter count (elements of all tensors of gb_model_tensors). */
int64_t gb_model_config_num_params(const gb_model_config *cfg);

#endif
