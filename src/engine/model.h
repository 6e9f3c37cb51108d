/* Engine internals: the loaded model (weights bound per layer on a backend), the KV cache
 * and the activation workspace. Shared by load.c, forward.c and generate.c.
 *
 * Letters: H hidden, I intermediate, V vocab, nh/nkv heads, hd head_dim, n token rows of a
 * call (batch * tokens per sequence). All activation buffers are backend memory. */
#ifndef GB_ENGINE_MODEL_H
#define GB_ENGINE_MODEL_H

#include "engine/engine.h"
#include "io/safetensors.h"

typedef struct gb_layer {
    float *attn_norm_w, *attn_norm_b; /* [H]; _b: gpt2 LayerNorm only */
    gb_weight wq, wk, wv, wo;         /* [nh*hd, H] [nkv*hd, H] [nkv*hd, H] [H, nh*hd] */
    float *bq, *bk, *bv, *bo;         /* optional biases (qwen2 / attention_bias / gpt2) */
    float *q_norm, *k_norm;           /* qwen3: [hd] */
    float *mlp_norm_w, *mlp_norm_b;   /* [H] */
    gb_weight wgate, wup, wdown;      /* [I, H] [I, H] [H, I]; gpt2: c_fc = wup, no wgate */
    float *bgate, *bup, *bdown;       /* optional (mlp_bias / gpt2) */
} gb_layer;

/* Per-layer K and V, float32 [batch, cap, nkv, hd]. */
typedef struct gb_kv_cache {
    int batch, cap, len; /* len = positions filled per sequence */
    float **k, **v;      /* [num_layers] */
    size_t bytes;
} gb_kv_cache;

/* Activation buffers for calls of up to `rows` token rows and `logit_rows` logits rows. */
typedef struct gb_workspace {
    int rows, logit_rows;
    float *x;      /* [rows, H] residual stream */
    float *xn;     /* [rows, H] normalised input of a block */
    float *q;      /* [rows, nh*hd] */
    float *k, *v;  /* [rows, nkv*hd] */
    float *att;    /* [rows, nh*hd] attention output */
    float *proj;   /* [rows, H] output of o_proj / down_proj */
    float *gate;   /* [rows, I] */
    float *up;     /* [rows, I] */
    float *last;   /* [logit_rows, H] rows whose logits are wanted */
    float *logits; /* [logit_rows, V] */
    int32_t *ids;  /* [rows] input ids */
    int32_t *next; /* [logit_rows] argmax ids */
    void *scratch; /* attention scratch */
    size_t scratch_bytes;
    int ids_ready; /* the last forward (a fused decode step) already left the next ids in ids */
} gb_workspace;

/* Paged KV cache of a continuous-batching generation (engine/paged.h). */
typedef struct gb_paged gb_paged;

struct gb_model {
    gb_model_config cfg;
    gb_engine_options opts;
    gb_backend *be;
    gb_weights *weights; /* kept open only while some weight is used in place */
    gb_weight embed;     /* [V, H] */
    gb_weight pos_embed; /* gpt2 [P, H] */
    gb_weight lm_head_own;
    const gb_weight *lm_head; /* &embed when tied */
    float *final_norm_w, *final_norm_b;
    gb_layer *layers;
    float *inv_freq; /* [hd/2] backend memory */
    float attn_factor;
    size_t weight_bytes_step;     /* read per decode step */
    size_t weight_bytes_resident; /* held in memory (host or device) */
    gb_kv_cache kv;
    size_t kv_bytes_last;
    gb_workspace ws;    /* static mode: kept between calls */
    uint64_t graph_key; /* CUDA graph of the decode step: buffers it was captured with (0 = none) */
    gb_paged *paged;    /* set during gb_generate_cb: gb_forward uses it instead of kv */
};

/* Rotary inverse frequencies exactly as transformers computes them in float32 (default,
 * linear and llama3 scaling). out: [head_dim / 2]; *attn_factor: cos/sin multiplier. */
void gb_rope_inv_freq(const gb_model_config *cfg, float *out, float *attn_factor);

/* Every id in [0, vocab_size); otherwise GB_ERR_INVALID naming the first bad id and index. */
int gb_engine_check_ids(const gb_model *m, const int32_t *ids, size_t n, gb_error *err);

int gb_workspace_init(gb_model *m, gb_workspace *ws, int rows, int logit_rows, gb_error *err);
void gb_workspace_free(gb_model *m, gb_workspace *ws);
/* Makes sure ws->scratch holds attention scratch for the call described by a. */
int gb_workspace_scratch(gb_model *m, gb_workspace *ws, const gb_attn_args *a, gb_error *err);

/* Allocates (or keeps, when the shape matches) a cache of cap positions per sequence. */
int gb_kv_init(gb_model *m, int batch, int cap, gb_error *err);
/* Grows the cache to at least need positions, keeping contents (dynamic cache). */
int gb_kv_reserve(gb_model *m, int need, gb_error *err);
void gb_kv_free(gb_model *m);

typedef enum gb_logits_mode {
    GB_LOGITS_LAST = 0, /* one row per sequence: its last token */
    GB_LOGITS_ALL,      /* every token row */
} gb_logits_mode;

/* The forward pass of n_tokens new tokens per sequence (ws->ids, [batch, n_tokens]) at
 * positions kv.len.. of each sequence; appends their K/V to the cache and leaves logits in
 * ws->logits ([batch] or [batch * n_tokens] rows). */
int gb_forward(gb_model *m, gb_workspace *ws, int batch, int n_tokens, gb_logits_mode mode,
               gb_error *err);

#endif
