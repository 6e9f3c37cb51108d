/* The backend interface: a small table of operations the forward pass is written against.
 * A CPU and a CUDA implementation provide it; the engine never touches activation memory
 * directly, so the same forward pass runs on either.
 *
 * Conventions (all backends):
 * - Activations are float32, row-major. "n" is the number of token rows in a call
 *   (batch * tokens-per-sequence). Pointers are backend memory (host for CPU, device for
 *   CUDA) obtained from alloc().
 * - Weight matrices are gb_weight: [rows = out_features, cols = in_features], row-major, in
 *   the compute dtype (bf16 / f16 / f32). GPT-2 Conv1D weights are transposed at load so
 *   every matrix has this layout. Accumulation is float32.
 * - Small vectors (norm weights, biases) are float32 in backend memory.
 * - KV cache: per layer one K and one V buffer, float32, layout [batch, cap, n_kv_heads,
 *   head_dim] (cap = allocated positions per sequence).
 * - Ops are asynchronous on CUDA; sync() waits. download() implies a sync.
 * - Fused entries (kernelize) may be NULL; the engine then composes the unfused ops.
 */
#ifndef GB_BACKEND_H
#define GB_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include "genbench.h"
#include "util/dtype.h"

typedef struct gb_backend gb_backend;

typedef struct gb_weight {
    gb_dtype dtype;
    int64_t rows, cols; /* [out, in] */
    const void *data;   /* backend memory, rows*cols elements of dtype */
    void *owned;        /* non-NULL when the backend allocated `data` (freed by weight_free) */
    void *packed;       /* backend-private repacked layout, or NULL */
} gb_weight;

typedef enum gb_attn_impl {
    GB_ATTN_EAGER = 0, /* full score matrix per head in float32, softmax, times V */
    GB_ATTN_SDPA,      /* fused, row by row, no stored score matrix */
    GB_ATTN_FLASH,     /* tiled online softmax; decode splits the KV range and merges */
} gb_attn_impl;

typedef struct gb_attn_args {
    int batch;    /* sequences */
    int n_tokens; /* new tokens per sequence in this call (prefill: prompt, decode: 1) */
    int pos0;     /* position of the first new token (= tokens already cached) */
    int cap;      /* allocated positions per sequence in the cache */
    int n_heads, n_kv_heads, head_dim;
    float scale;        /* usually 1/sqrt(head_dim) */
    int sliding_window; /* 0 = none: a query at p sees keys (p - window, p] otherwise */
} gb_attn_args;

typedef struct gb_rope_args {
    int n_tokens, batch, pos0; /* row r = b * n_tokens + t has position pos0 + t */
    int n_heads, head_dim;
    const float *inv_freq; /* backend memory, head_dim/2 values (scaling already applied) */
    float attn_factor;     /* multiplies cos/sin (1 for llama/linear/llama3) */
} gb_rope_args;

typedef enum gb_act_kind { GB_BACT_SILU = 0, GB_BACT_GELU_TANH } gb_act_kind;

/* A call over a paged KV cache (continuous batching). Per layer the K and V pools are
 * float32 [n_blocks, block_size, n_kv_heads, head_dim]; sequence s of the call owns the pool
 * blocks block_tables[s * max_blocks + i] (i < max_blocks), block i holding its positions
 * [i * block_size, (i + 1) * block_size). Row r = s * n_tokens + t of q/k/v/out is the
 * token at position pos[s] + t. block_tables and pos are backend memory (int32). */
typedef struct gb_paged_args {
    int batch;                   /* sequences in the call */
    int n_tokens;                /* new tokens per sequence (prefill: its prompt, decode: 1) */
    const int32_t *pos;          /* [batch] position of each sequence's first new token */
    const int32_t *block_tables; /* [batch, max_blocks] pool block ids */
    int max_blocks, block_size;
    int n_heads, n_kv_heads, head_dim;
    float scale;        /* usually 1/sqrt(head_dim) */
    int sliding_window; /* 0 = none: a query at p sees keys (p - window, p] otherwise */
} gb_paged_args;

/* The whole decode step of one sequence as one op (decode_step): the weights and caches of a
 * pre-norm decoder with RMSNorm, RoPE, grouped-query attention without biases, windows or
 * q/k norms, and a gated MLP (Llama). Pointers are backend memory except `layers`. */
#define GB_STEP_MAX_LAYERS 32
typedef struct gb_step_layer {
    const float *attn_norm_w, *mlp_norm_w; /* [H] */
    const gb_weight *wq, *wk, *wv, *wo;    /* as gb_layer */
    const gb_weight *wgate, *wup, *wdown;
    float *kcache, *vcache; /* [cap, nkv, hd] (batch 1) */
} gb_step_layer;
typedef struct gb_step_model {
    int n_layers; /* <= GB_STEP_MAX_LAYERS */
    int hidden, intermediate, n_heads, n_kv_heads, head_dim, vocab;
    int cap;          /* cache positions */
    float eps, scale; /* RMSNorm epsilon; attention scale (1/sqrt(head_dim)) */
    gb_act_kind act;
    const float *inv_freq; /* [head_dim / 2] */
    float attn_factor;     /* multiplies cos/sin */
    const gb_weight *embed, *lm_head;
    const float *final_norm_w;
    const gb_step_layer *layers; /* host memory, [n_layers] */
} gb_step_model;

typedef struct gb_backend_ops {
    const char *name;
    void (*destroy)(gb_backend *b);

    /* memory */
    int (*alloc)(gb_backend *b, size_t bytes, void **ptr, gb_error *err);
    void (*free)(gb_backend *b, void *ptr);
    int (*upload)(gb_backend *b, void *dst, const void *src, size_t bytes, gb_error *err);
    int (*download)(gb_backend *b, void *dst, const void *src, size_t bytes, gb_error *err);
    int (*copy)(gb_backend *b, void *dst, const void *src, size_t bytes, gb_error *err);
    int (*sync)(gb_backend *b, gb_error *err);

    /* Weight from host data (an mmap'd tensor, src_dtype) to a backend matrix in dtype.
     * transpose: the source is [cols, rows] (GPT-2 Conv1D) and is transposed once.
     * The CPU backend may keep `src` in place when dtypes match and no transpose is asked. */
    int (*weight_load)(gb_backend *b, gb_weight *w, const void *src, gb_dtype src_dtype,
                       int64_t rows, int64_t cols, gb_dtype dtype, int transpose, gb_error *err);
    void (*weight_free)(gb_backend *b, gb_weight *w);

    /* out[i, :] = table[ids[i], :] (+ pos_table[pos0 + i % n_tokens, :] when pos_table)
     * ids: backend memory, n int32 */
    void (*embed)(gb_backend *b, float *out, const gb_weight *table, const int32_t *ids, int n,
                  const gb_weight *pos_table, int n_tokens, int pos0);
    /* y[n, w.rows] = x[n, w.cols] . W^T (+ bias[w.rows]) */
    void (*matmul)(gb_backend *b, float *y, const float *x, const gb_weight *w, const float *bias,
                   int n);
    /* y[n, dim] = x / rms(x) * w  (y may equal x) */
    void (*rmsnorm)(gb_backend *b, float *y, const float *x, const float *w, int n, int dim,
                    float eps);
    /* y[n, dim] = (x - mean) / sqrt(var + eps) * w + bias  (y may equal x) */
    void (*layernorm)(gb_backend *b, float *y, const float *x, const float *w, const float *bias,
                      int n, int dim, float eps);
    /* In-place rotary embedding (rotate-half / NeoX layout, as Hugging Face llama) on
     * x[batch * n_tokens, n_heads * head_dim]. */
    void (*rope)(gb_backend *b, float *x, const gb_rope_args *a);
    /* y[i] = a[i] + c[i], i < count (y may alias a or c) */
    void (*add)(gb_backend *b, float *y, const float *a, const float *c, size_t count);
    /* out[i] = act(gate[i]) * up[i]   (SwiGLU) */
    void (*act_mul)(gb_backend *b, float *out, const float *gate, const float *up, size_t count,
                    gb_act_kind act);
    /* y[i] = act(x[i]) (GPT-2 MLP) */
    void (*act)(gb_backend *b, float *y, const float *x, size_t count, gb_act_kind act);
    /* Writes the new tokens' k, v ([batch * n_tokens, n_kv_heads * head_dim]) at positions
     * pos0.. of each sequence of the layer's cache. */
    void (*kv_write)(gb_backend *b, float *kcache, float *vcache, const float *k, const float *v,
                     const gb_attn_args *a);
    /* Causal attention of the new tokens' queries q[batch * n_tokens, n_heads * head_dim]
     * over cache positions [0, pos0 + t], GQA (head h uses kv head h / (nh / nkv)).
     * out has q's shape. scratch: backend memory of attn_scratch_bytes(). */
    void (*attention)(gb_backend *b, gb_attn_impl impl, float *out, const float *q,
                      const float *kcache, const float *vcache, const gb_attn_args *a,
                      void *scratch);
    size_t (*attn_scratch_bytes)(gb_backend *b, gb_attn_impl impl, const gb_attn_args *a);
    /* ids[r] = argmax over logits[r, 0:vocab] (first index on ties); ids is backend memory. */
    void (*argmax)(gb_backend *b, int32_t *ids, const float *logits, int n, int vocab);

    /* ---- fused kernels (kernelize); NULL when not provided ---- */
    /* y_i[n, w_i.rows] = rmsnorm(x) . W_i^T (+ bias_i) for i < count (q,k,v or gate,up),
     * normalising x once; xnorm (required, backend memory [n, dim]) receives the normalised
     * rows. dim = ws[0]->cols. */
    void (*rmsnorm_matmul)(gb_backend *b, float **ys, float *xnorm, const float *x,
                           const float *norm_w, float eps, const gb_weight *const *ws,
                           const float *const *biases, int count, int n);
    /* out[n, wg.rows] = act(x . Wg^T) * (x . Wu^T)   (x already normalised) */
    void (*gate_up_act)(gb_backend *b, float *out, const float *x, const gb_weight *wg,
                        const gb_weight *wu, int n, gb_act_kind act);
    /* rope on q (r->n_heads heads) and k (a->n_kv_heads heads), then kv_write of k and v,
     * in one pass */
    void (*rope_kv_write)(gb_backend *b, float *q, float *k, const float *v, float *kcache,
                          float *vcache, const gb_rope_args *r, const gb_attn_args *a);
    /* resid += x; y = rmsnorm(resid) * w */
    void (*add_rmsnorm)(gb_backend *b, float *resid, const float *x, float *y, const float *w,
                        int n, int dim, float eps);

    /* ---- device-resident decode (CUDA); NULL on backends without graphs ---- */
    /* pos >= 0: from now on every op that takes pos0 (embed, rope, kv_write, attention,
     * rope_kv_write) reads it from device memory set to pos, ignoring its argument's pos0, so
     * a captured decode step replays correctly at later positions; pos < 0: back to the
     * arguments' pos0. Stream-ordered with the other ops. A graph whose capture (after set_pos)
     * ends with argmax is a decode step: on CUDA each replay of it also advances the device
     * position by one and leaves the ids where a download_start of them right after finds
     * them (the step tail), so the engine's set_pos(pos + 1) before the next replay launches
     * nothing and the download copies nothing; the position the ops read is still the one the
     * engine last set (GB_CUDA_STEP_TAIL=0: kernel and copy as before). */
    void (*set_pos)(gb_backend *b, int pos);
    /* Records the ops issued between graph_begin and graph_end (nothing runs) into a graph,
     * replacing any previous one; graph_launch replays it. Buffers used while capturing must
     * stay allocated and in place for as long as the graph is replayed. */
    int (*graph_begin)(gb_backend *b, gb_error *err);
    int (*graph_end)(gb_backend *b, gb_error *err);
    int (*graph_launch)(gb_backend *b, gb_error *err);
    /* Device bytes held now through alloc/weight_load, and the peak since creation. */
    void (*memory_stats)(gb_backend *b, size_t *in_use, size_t *peak);

    /* ---- paged KV cache (continuous batching); CPU and CUDA provide them; NULL where a
     * backend does not (the engine then refuses continuous batching) ---- */
    /* Writes the new tokens' k, v ([batch * n_tokens, n_kv_heads * head_dim]) at positions
     * pos[s] + t of each sequence, through its block table, into the layer's pools. */
    void (*kv_write_paged)(gb_backend *b, float *kpool, float *vpool, const float *k,
                           const float *v, const gb_paged_args *a);
    /* Causal attention of q[batch * n_tokens, n_heads * head_dim] over each sequence's cached
     * positions [0, pos[s] + t] read through its block table (GQA as attention()); out has
     * q's shape. One kernel for every attention implementation (online softmax per row). */
    void (*attention_paged)(gb_backend *b, float *out, const float *q, const float *kpool,
                            const float *vpool, const gb_paged_args *a);

    /* ---- residual adds and RoPE folded into neighbouring kernels (kernelize); NULL where not
     * provided: the engine then composes the plain ops ---- */
    /* y[n, w.rows] += x[n, w.cols] . W^T (+ bias): the residual add in the product's epilogue
     * (y holds the residual stream and must not alias x). */
    void (*matmul_add)(gb_backend *b, float *y, const float *x, const gb_weight *w,
                       const float *bias, int n);
    /* rope_kv_write then attention (same arguments as the two); a backend may do both in one
     * pass for decode. NULL: the engine calls the two. */
    void (*rope_kv_attention)(gb_backend *b, gb_attn_impl impl, float *out, float *q, float *k,
                              const float *v, float *kcache, float *vcache, const gb_rope_args *r,
                              const gb_attn_args *a, void *scratch);
    /* RoPE of q [batch * n_tokens, r.n_heads * head_dim] and k at each row's own position
     * pos[s] + t (r's pos0, batch and n_tokens are ignored; r gives the heads, inv_freq and
     * attn_factor), in place, then kv_write_paged of the rotated k and v: one launch for every
     * sequence of a continuous-batching call. NULL: the engine runs rope once per sequence,
     * then kv_write_paged. */
    void (*rope_kv_write_paged)(gb_backend *b, float *q, float *k, const float *v, float *kpool,
                                float *vpool, const gb_rope_args *r, const gb_paged_args *a);

    /* ---- pipelined decode (CUDA); NULL elsewhere: the engine then downloads and waits ---- */
    /* Enqueues a copy of bytes from device src into the backend's host staging slot (0 or 1),
     * ordered after the ops issued so far, and returns without waiting; download_finish waits
     * for the copy started in that slot and moves its bytes into dst. A slot holds one copy
     * at a time: finish it before starting it again. So the next decode step can be issued
     * before the host has the current step's token ids. */
    int (*download_start)(gb_backend *b, int slot, const void *src, size_t bytes, gb_error *err);
    int (*download_finish)(gb_backend *b, int slot, void *dst, size_t bytes, gb_error *err);

    /* ---- the whole decode step in one op (CUDA, kernelize); NULL elsewhere ---- */
    /* The forward pass of one new token of one sequence (batch 1): token ids[0] at position
     * pos0 (the device position instead while set_pos is on), its K/V written into the
     * caches at that position, causal attention over [0, pos0], logits [vocab] out; the
     * same arithmetic as the ops it replaces, in another order of summation. Then, as
     * argmax(ids, logits, 1, vocab) would (step tail included), the next token into ids[0].
     * Returns 1 when it issued the step, 0 when it does not take this model or call (shapes,
     * dtypes, positions past what it is faster for, disabled): then nothing was issued and
     * the engine runs the ops. */
    int (*decode_step)(gb_backend *b, const gb_step_model *sm, float *logits, int32_t *ids,
                       int pos0);
} gb_backend_ops;

struct gb_backend {
    const gb_backend_ops *ops; /* the active table (reference or kernelized) */
    int threads;               /* CPU threads; 0 = all cores */
    void *impl;                /* backend-private state */
};

typedef struct gb_backend_options {
    int threads;      /* CPU: worker threads (0 = all cores) */
    int kernelize;    /* pick the optimised kernel set */
    int device_index; /* CUDA: device ordinal */
    int use_mmap;     /* CPU: weights used in place from the mapping when dtypes match */
} gb_backend_options;

/* CPU backend (reference kernels, or optimised ones when opts->kernelize). */
int gb_backend_cpu_create(const gb_backend_options *opts, gb_backend **out, gb_error *err);
/* CUDA backend; GB_ERR_DEVICE when built without CUDA or no GPU is usable. */
int gb_backend_cuda_create(const gb_backend_options *opts, gb_backend **out, gb_error *err);
/* 1 when a CUDA device is usable (built with CUDA and a device answers). */
int gb_backend_cuda_available(void);
void gb_backend_free(gb_backend *b);

#endif
