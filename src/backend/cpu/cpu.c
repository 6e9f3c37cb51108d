/* The CPU backend object: host memory, weight loading (in place from the mapping or
 * converted once into ordinary memory) and the reference op tables. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "backend/cpu/cpu_ref.h"
#include "backend/cpu/opt.h"
#include "util/error.h"

/* Large buffers are 2 MiB aligned so transparent huge pages can back them. */
#define GB_HUGE_ALIGN ((size_t)2 << 20)

int gb_cpu_alloc(gb_backend *b, size_t bytes, void **ptr, gb_error *err) {
    (void)b;
    size_t align = bytes >= GB_HUGE_ALIGN ? GB_HUGE_ALIGN : 64;
    size_t rounded = (bytes + align - 1) / align * align;
    void *p = NULL;
    if (posix_memalign(&p, align, rounded ? rounded : align) != 0)
        return gb_error_set(err, GB_ERR_NOMEM, "cpu backend: cannot allocate %zu bytes", bytes);
#ifdef MADV_HUGEPAGE
    if (align == GB_HUGE_ALIGN) madvise(p, rounded, MADV_HUGEPAGE);
#endif
    *ptr = p;
    return 0;
}

void gb_cpu_free(gb_backend *b, void *ptr) {
    (void)b;
    free(ptr);
}

int gb_cpu_upload(gb_backend *b, void *dst, const void *src, size_t bytes, gb_error *err) {
    (void)b;
    (void)err;
    memcpy(dst, src, bytes);
    return 0;
}

int gb_cpu_download(gb_backend *b, void *dst, const void *src, size_t bytes, gb_error *err) {
    return gb_cpu_upload(b, dst, src, bytes, err);
}

int gb_cpu_copy(gb_backend *b, void *dst, const void *src, size_t bytes, gb_error *err) {
    (void)b;
    (void)err;
    memmove(dst, src, bytes);
    return 0;
}

int gb_cpu_sync(gb_backend *b, gb_error *err) {
    (void)b;
    (void)err;
    return 0;
}

static float src_at(const void *src, gb_dtype t, size_t i) {
    switch (t) {
    case GB_BF16:
        return gb_bf16_to_f32(((const uint16_t *)src)[i]);
    case GB_F16:
        return gb_f16_to_f32(((const uint16_t *)src)[i]);
    default:
        return ((const float *)src)[i];
    }
}

static void dst_set(void *dst, gb_dtype t, size_t i, float v) {
    switch (t) {
    case GB_BF16:
        ((uint16_t *)dst)[i] = gb_f32_to_bf16(v);
        break;
    case GB_F16:
        ((uint16_t *)dst)[i] = gb_f32_to_f16(v);
        break;
    default:
        ((float *)dst)[i] = v;
        break;
    }
}

int gb_cpu_weight_load(gb_backend *b, gb_weight *w, const void *src, gb_dtype src_dtype,
                       int64_t rows, int64_t cols, gb_dtype dtype, int transpose, gb_error *err) {
    gb_cpu_state *st = b->impl;
    memset(w, 0, sizeof *w);
    w->dtype = dtype;
    w->rows = rows;
    w->cols = cols;
    if (src_dtype == dtype && !transpose && st->use_mmap) {
        w->data = src; /* used in place from the mapping */
        return 0;
    }
    size_t n = (size_t)rows * (size_t)cols;
    void *dst;
    GB_TRY(gb_cpu_alloc(b, n * gb_dtype_size(dtype), &dst, err));
    if (src_dtype == dtype && !transpose) {
        memcpy(dst, src, n * gb_dtype_size(dtype));
    } else if (src_dtype == dtype && gb_dtype_size(dtype) == 2) { /* transpose, same 16-bit type */
        const uint16_t *s = src;
        uint16_t *d = dst;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++)
                d[r * cols + c] = s[c * rows + r];
    } else {
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) {
                size_t si = transpose ? (size_t)(c * rows + r) : (size_t)(r * cols + c);
                dst_set(dst, dtype, (size_t)(r * cols + c), src_at(src, src_dtype, si));
            }
    }
    w->data = dst;
    w->owned = dst;
    return 0;
}

void gb_cpu_weight_free(gb_backend *b, gb_weight *w) {
    if (w->owned) gb_cpu_free(b, w->owned);
    memset(w, 0, sizeof *w);
}

void gb_cpu_destroy(gb_backend *b) {
    /* the optimised set's thread pool and scratch restart on the next kernelized op */
    if (b->ops != &gb_cpu_ref_ops) gb_cpu_opt_release();
    free(b->impl);
    free(b);
}

#define GB_CPU_COMMON_OPS                                                                          \
    .destroy = gb_cpu_destroy, .alloc = gb_cpu_alloc, .free = gb_cpu_free,                         \
    .upload = gb_cpu_upload, .download = gb_cpu_download, .copy = gb_cpu_copy,                     \
    .sync = gb_cpu_sync, .weight_load = gb_cpu_weight_load, .weight_free = gb_cpu_weight_free,     \
    .embed = gb_ref_embed, .matmul = gb_ref_matmul, .rmsnorm = gb_ref_rmsnorm,                     \
    .layernorm = gb_ref_layernorm, .rope = gb_ref_rope, .add = gb_ref_add,                         \
    .act_mul = gb_ref_act_mul, .act = gb_ref_act, .kv_write = gb_ref_kv_write,                     \
    .attention = gb_ref_attention, .attn_scratch_bytes = gb_ref_attn_scratch_bytes,                \
    .argmax = gb_ref_argmax, .kv_write_paged = gb_ref_kv_write_paged,                              \
    .attention_paged = gb_ref_attention_paged

const gb_backend_ops gb_cpu_ref_ops = {.name = "cpu-reference", GB_CPU_COMMON_OPS};

const gb_backend_ops gb_cpu_ref_fused_ops = {
    .name = "cpu-reference-fused",
    GB_CPU_COMMON_OPS,
    .rmsnorm_matmul = gb_ref_rmsnorm_matmul,
    .gate_up_act = gb_ref_gate_up_act,
    .rope_kv_write = gb_ref_rope_kv_write,
    .add_rmsnorm = gb_ref_add_rmsnorm,
};

int gb_backend_cpu_create(const gb_backend_options *opts, gb_backend **out, gb_error *err) {
    gb_backend *b = calloc(1, sizeof *b);
    gb_cpu_state *st = calloc(1, sizeof *st);
    if (!b || !st) {
        free(b);
        free(st);
        return gb_error_set(err, GB_ERR_NOMEM, "cpu backend: out of memory");
    }
    st->use_mmap = opts ? opts->use_mmap : 0;
    b->impl = st;
    b->threads = opts ? opts->threads : 0;
    b->ops = (opts && opts->kernelize) ? gb_cpu_kernelized_ops(&gb_cpu_ref_ops) : &gb_cpu_ref_ops;
    *out = b;
    return 0;
}
