/* CPU backend internals: the reference kernels (simple, single-threaded, float32
 * accumulation) and the tables built from them. Optimised kernel sets (opt*.c) may call
 * these for entries they do not specialise, and tests compare against them.
 *
 * Shapes and semantics are those documented in backend/backend.h. */
#ifndef GB_BACKEND_CPU_REF_H
#define GB_BACKEND_CPU_REF_H

#include "backend/backend.h"
#include "backend/cpu/panel.h"

/* The reference table: plain ops, every fused entry NULL (the engine composes). */
extern const gb_backend_ops gb_cpu_ref_ops;
/* The reference kernels plus reference versions of the fused entries (each one a plain
 * composition of reference kernels). The kernelized default until an optimised set lands. */
extern const gb_backend_ops gb_cpu_ref_fused_ops;

/* The table used for kernelize = true, built on the reference table `ref` (entries an
 * optimised set does not replace come from it). Exactly one definition links: the default
 * in kernelized.c (returns gb_cpu_ref_fused_ops) until the optimised set (opt.c) defines it
 * and kernelized.c is deleted. */
const gb_backend_ops *gb_cpu_kernelized_ops(const gb_backend_ops *ref);

/* Backend-private state of the CPU backend (b->impl). */
typedef struct gb_cpu_state {
    int use_mmap; /* weight_load keeps matching-dtype sources in place */
} gb_cpu_state;

/* memory + weights (cpu.c) */
int gb_cpu_alloc(gb_backend *b, size_t bytes, void **ptr, gb_error *err);
void gb_cpu_free(gb_backend *b, void *ptr);
int gb_cpu_upload(gb_backend *b, void *dst, const void *src, size_t bytes, gb_error *err);
int gb_cpu_download(gb_backend *b, void *dst, const void *src, size_t bytes, gb_error *err);
int gb_cpu_copy(gb_backend *b, void *dst, const void *src, size_t bytes, gb_error *err);
int gb_cpu_sync(gb_backend *b, gb_error *err);
int gb_cpu_weight_load(gb_backend *b, gb_weight *w, const void *src, gb_dtype src_dtype,
                       int64_t rows, int64_t cols, gb_dtype dtype, int transpose, gb_error *err);
void gb_cpu_weight_free(gb_backend *b, gb_weight *w);
void gb_cpu_destroy(gb_backend *b);

/* Element (r, c) of a weight as float32, row-major or in the panel layout (panel.h). */
static inline float gb_weight_at(const gb_weight *w, int64_t r, int64_t c) {
    size_t i = (size_t)(w->packed ? gb_cpu_panel_index(w->cols, gb_cpu_panel_rows(w), r, c)
                                  : r * w->cols + c);
    switch (w->dtype) {
    case GB_BF16:
        return gb_bf16_to_f32(((const uint16_t *)w->data)[i]);
    case GB_F16:
        return gb_f16_to_f32(((const uint16_t *)w->data)[i]);
    default:
        return ((const float *)w->data)[i];
    }
}

/* reference kernels (ref.c) */
void gb_ref_embed(gb_backend *b, float *out, const gb_weight *table, const int32_t *ids, int n,
                  const gb_weight *pos_table, int n_tokens, int pos0);
void gb_ref_matmul(gb_backend *b, float *y, const float *x, const gb_weight *w, const float *bias,
                   int n);
/* Row r of w dotted with x[w.cols], summed exactly as gb_ref_matmul sums it (no bias); any
 * layout (panels too), no allocation. */
float gb_ref_row_dot(const gb_weight *w, int64_t r, const float *x);
void gb_ref_rmsnorm(gb_backend *b, float *y, const float *x, const float *w, int n, int dim,
                    float eps);
void gb_ref_layernorm(gb_backend *b, float *y, const float *x, const float *w, const float *bias,
                      int n, int dim, float eps);
void gb_ref_rope(gb_backend *b, float *x, const gb_rope_args *a);
void gb_ref_add(gb_backend *b, float *y, const float *a, const float *c, size_t count);
void gb_ref_act_mul(gb_backend *b, float *out, const float *gate, const float *up, size_t count,
                    gb_act_kind act);
void gb_ref_act(gb_backend *b, float *y, const float *x, size_t count, gb_act_kind act);
void gb_ref_kv_write(gb_backend *b, float *kcache, float *vcache, const float *k, const float *v,
                     const gb_attn_args *a);
void gb_ref_argmax(gb_backend *b, int32_t *ids, const float *logits, int n, int vocab);

/* reference attention (ref_attn.c) */
void gb_ref_attention(gb_backend *b, gb_attn_impl impl, float *out, const float *q,
                      const float *kcache, const float *vcache, const gb_attn_args *a,
                      void *scratch);
size_t gb_ref_attn_scratch_bytes(gb_backend *b, gb_attn_impl impl, const gb_attn_args *a);

/* reference kernels over a paged KV cache (ref_paged.c) */
void gb_ref_kv_write_paged(gb_backend *b, float *kpool, float *vpool, const float *k,
                           const float *v, const gb_paged_args *a);
void gb_ref_attention_paged(gb_backend *b, float *out, const float *q, const float *kpool,
                            const float *vpool, const gb_paged_args *a);

/* reference fused entries (ref_fused.c) */
void gb_ref_rmsnorm_matmul(gb_backend *b, float **ys, float *xnorm, const float *x,
                           const float *norm_w, float eps, const gb_weight *const *ws,
                           const float *const *biases, int count, int n);
void gb_ref_gate_up_act(gb_backend *b, float *out, const float *x, const gb_weight *wg,
                        const gb_weight *wu, int n, gb_act_kind act);
void gb_ref_rope_kv_write(gb_backend *b, float *q, float *k, const float *v, float *kcache,
                          float *vcache, const gb_rope_args *r, const gb_attn_args *a);
void gb_ref_add_rmsnorm(gb_backend *b, float *resid, const float *x, float *y, const float *w,
                        int n, int dim, float eps);

/* Scalar activations, shared by all CPU kernel sets (Hugging Face formulas). */
float gb_ref_silu(float x);
float gb_ref_gelu_tanh(float x);

#endif
