/* Tensor lists of each architecture in Hugging Face checkpoint order
 * (shared/docs/random-weights.md, "Tensors per architecture"). */
#include "model/tensors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/error.h"

typedef struct list {
    gb_tensor_spec *v;
    int n, cap;
} list;

static void add(list *l, gb_tensor_kind kind, int64_t d0, int64_t d1, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* d1 < 0: one-dimensional [d0]. The list is pre-sized, so this cannot fail. */
static void add(list *l, gb_tensor_kind kind, int64_t d0, int64_t d1, const char *fmt, ...) {
    gb_tensor_spec *s = &l->v[l->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->name, sizeof s->name, fmt, ap);
    va_end(ap);
    s->kind = kind;
    s->shape[0] = d0;
    s->shape[1] = d1 < 0 ? 0 : d1;
    s->ndim = d1 < 0 ? 1 : 2;
    s->fan_in = kind == GB_KIND_MATRIX ? d1 : 0; /* Linear [out, in] */
}

/* GPT-2 Conv1D weight [in, out]: fan_in is shape[0]. */
static void add_conv1d(list *l, int64_t in, int64_t out, const char *fmt, int layer) {
    add(l, GB_KIND_MATRIX, in, out, fmt, layer);
    l->v[l->n - 1].fan_in = in;
}

int gb_model_tensors(const gb_model_config *c, gb_tensor_spec **specs, int *count, gb_error *err) {
    *specs = NULL;
    *count = 0;
    list l = {0};
    l.cap = 4 + c->num_layers * 24;
    l.v = calloc((size_t)l.cap, sizeof *l.v);
    if (!l.v) return gb_error_set(err, GB_ERR_NOMEM, "out of memory for the tensor list");
    int64_t H = c->hidden_size, I = c->intermediate_size, V = c->vocab_size;
    if (c->arch == GB_ARCH_GPT2) {
        add(&l, GB_KIND_EMBEDDING, V, H, "transformer.wte.weight");
        add(&l, GB_KIND_EMBEDDING, c->max_position, H, "transformer.wpe.weight");
        for (int i = 0; i < c->num_layers; i++) {
            add(&l, GB_KIND_NORM, H, -1, "transformer.h.%d.ln_1.weight", i);
            add(&l, GB_KIND_BIAS, H, -1, "transformer.h.%d.ln_1.bias", i);
            add_conv1d(&l, H, 3 * H, "transformer.h.%d.attn.c_attn.weight", i);
            add(&l, GB_KIND_BIAS, 3 * H, -1, "transformer.h.%d.attn.c_attn.bias", i);
            add_conv1d(&l, H, H, "transformer.h.%d.attn.c_proj.weight", i);
            add(&l, GB_KIND_BIAS, H, -1, "transformer.h.%d.attn.c_proj.bias", i);
            add(&l, GB_KIND_NORM, H, -1, "transformer.h.%d.ln_2.weight", i);
            add(&l, GB_KIND_BIAS, H, -1, "transformer.h.%d.ln_2.bias", i);
            add_conv1d(&l, H, I, "transformer.h.%d.mlp.c_fc.weight", i);
            add(&l, GB_KIND_BIAS, I, -1, "transformer.h.%d.mlp.c_fc.bias", i);
            add_conv1d(&l, I, H, "transformer.h.%d.mlp.c_proj.weight", i);
            add(&l, GB_KIND_BIAS, H, -1, "transformer.h.%d.mlp.c_proj.bias", i);
        }
        add(&l, GB_KIND_NORM, H, -1, "transformer.ln_f.weight");
        add(&l, GB_KIND_BIAS, H, -1, "transformer.ln_f.bias");
    } else {
        int64_t q = (int64_t)c->num_heads * c->head_dim,
                kv = (int64_t)c->num_kv_heads * c->head_dim;
        add(&l, GB_KIND_EMBEDDING, V, H, "model.embed_tokens.weight");
        for (int i = 0; i < c->num_layers; i++) {
            add(&l, GB_KIND_NORM, H, -1, "model.layers.%d.input_layernorm.weight", i);
            add(&l, GB_KIND_MATRIX, q, H, "model.layers.%d.self_attn.q_proj.weight", i);
            add(&l, GB_KIND_MATRIX, kv, H, "model.layers.%d.self_attn.k_proj.weight", i);
            add(&l, GB_KIND_MATRIX, kv, H, "model.layers.%d.self_attn.v_proj.weight", i);
            if (c->attention_bias) {
                add(&l, GB_KIND_BIAS, q, -1, "model.layers.%d.self_attn.q_proj.bias", i);
                add(&l, GB_KIND_BIAS, kv, -1, "model.layers.%d.self_attn.k_proj.bias", i);
                add(&l, GB_KIND_BIAS, kv, -1, "model.layers.%d.self_attn.v_proj.bias", i);
            }
            if (c->qk_norm) {
                add(&l, GB_KIND_NORM, c->head_dim, -1, "model.layers.%d.self_attn.q_norm.weight",
                    i);
                add(&l, GB_KIND_NORM, c->head_dim, -1, "model.layers.%d.self_attn.k_norm.weight",
                    i);
            }
            add(&l, GB_KIND_MATRIX, H, q, "model.layers.%d.self_attn.o_proj.weight", i);
            /* transformers' Llama/Qwen3 attention_bias also puts a bias on o_proj (Qwen2 not). */
            if (c->attention_bias && c->arch != GB_ARCH_QWEN2)
                add(&l, GB_KIND_BIAS, H, -1, "model.layers.%d.self_attn.o_proj.bias", i);
            add(&l, GB_KIND_NORM, H, -1, "model.layers.%d.post_attention_layernorm.weight", i);
            add(&l, GB_KIND_MATRIX, I, H, "model.layers.%d.mlp.gate_proj.weight", i);
            if (c->mlp_bias) add(&l, GB_KIND_BIAS, I, -1, "model.layers.%d.mlp.gate_proj.bias", i);
            add(&l, GB_KIND_MATRIX, I, H, "model.layers.%d.mlp.up_proj.weight", i);
            if (c->mlp_bias) add(&l, GB_KIND_BIAS, I, -1, "model.layers.%d.mlp.up_proj.bias", i);
            add(&l, GB_KIND_MATRIX, H, I, "model.layers.%d.mlp.down_proj.weight", i);
            if (c->mlp_bias) add(&l, GB_KIND_BIAS, H, -1, "model.layers.%d.mlp.down_proj.bias", i);
        }
        add(&l, GB_KIND_NORM, H, -1, "model.norm.weight");
        if (!c->tie_word_embeddings) add(&l, GB_KIND_MATRIX, V, H, "lm_head.weight");
    }
    *specs = l.v;
    *count = l.n;
    return GB_OK;
}
