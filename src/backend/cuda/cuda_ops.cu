/* Element-wise, normalisation, rotary, cache and argmax kernels of the CUDA backend.
 * Float32 activations; weights (embedding tables) in bf16 / f16 / f32. Accurate libm
 * functions (expf, tanhf, sincosf): nvcc is not given --use_fast_math, so float32 results
 * stay within rounding of the CPU reference. */
#include "backend/cuda/cuda_internal.h"

#include <math.h>

static inline int gb_blocks(size_t count, int threads) {
    size_t b = (count + (size_t)threads - 1) / (size_t)threads;
    return (int)(b > 65535u * 16u ? 65535u * 16u : b);
}

/* Threads per row-wise kernel: a multiple of 32 covering dim, at most 1024. */
static inline int gb_row_threads(int dim) {
    int t = ((dim + 31) / 32) * 32;
    if (t > 1024) t = 1024;
    if (t < 32) t = 32;
    return t;
}

/* ---------------- embedding ---------------- */

__global__ void k_embed(float *out, const void *table, gb_dtype tdt, const int32_t *ids, int dim,
                        const void *pos, gb_dtype pdt, int n_tokens, const int *dpos, int pos0) {
    gb_pdl_trigger();
    gb_pdl_wait();
    const int row = blockIdx.x;
    const int64_t id = ids[row];
    const int p = (dpos ? *dpos : pos0) + row % n_tokens;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float v = gb_load_as_f32(table, tdt, id * dim + i);
        if (pos) v += gb_load_as_f32(pos, pdt, (int64_t)p * dim + i);
        out[(int64_t)row * dim + i] = v;
    }
}

void gb_cuda_embed(gb_backend *b, float *out, const gb_weight *table, const int32_t *ids, int n,
                   const gb_weight *pos_table, int n_tokens, int pos0) {
    gb_cuda *st = gb_cuda_of(b);
    if (n <= 0) return;
    const int dim = (int)table->cols;
    gb_launch(st, k_embed, n, gb_row_threads(dim), 0, out, table->data, table->dtype, ids, dim,
              pos_table ? pos_table->data : nullptr, pos_table ? pos_table->dtype : GB_F32,
              n_tokens > 0 ? n_tokens : 1, gb_cuda_dpos(st), pos0);
    GB_CU_LAUNCH(st, "embed");
}

/* ---------------- norms ---------------- */

/* y = x * rsqrt(mean(x^2) + eps) * w; optional 16-bit copy of y. */
template <typename T16>
__global__ void k_rmsnorm(float *y, T16 *y16, const float *x, const float *w, int dim, float eps) {
    gb_pdl_trigger();
    gb_pdl_wait();
    __shared__ float sh[33];
    const int64_t off = (int64_t)blockIdx.x * dim;
    float ss = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        const float v = x[off + i];
        ss += v * v;
    }
    ss = gb_block_sum(ss, sh);
    const float inv = 1.0f / sqrtf(ss / (float)dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        const float v = w[i] * (x[off + i] * inv);
        y[off + i] = v;
        if (y16) y16[off + i] = (T16)v;
    }
}

/* The same norm for rows of at most 256 * 4 * NV floats (dim % 4 == 0, 16-byte aligned), as
 * the decode chain runs it: 256 threads hold NV float4 of the row each, and the norm weights
 * (which never depend on the previous kernel) are loaded before the PDL wait, so after it
 * there is one round trip for x, one block reduction and the stores. y may alias x. */
#define GB_NORM_THREADS 256
template <int NV>
__global__ void __launch_bounds__(GB_NORM_THREADS)
    k_rmsnorm_vec(float *y, const float *x, const float *w, int dim, float eps) {
    gb_pdl_trigger();
    const int d4 = dim / 4;
    float4 wv[NV], xv[NV];
#pragma unroll
    for (int k = 0; k < NV; k++) {
        const int i = threadIdx.x + k * GB_NORM_THREADS;
        wv[k] = i < d4 ? ((const float4 *)w)[i] : make_float4(0.f, 0.f, 0.f, 0.f);
    }
    gb_pdl_wait();
    __shared__ float sh[33];
    const float4 *xr = (const float4 *)(x + (int64_t)blockIdx.x * dim);
    float ss = 0.f;
#pragma unroll
    for (int k = 0; k < NV; k++) {
        const int i = threadIdx.x + k * GB_NORM_THREADS;
        xv[k] = i < d4 ? xr[i] : make_float4(0.f, 0.f, 0.f, 0.f);
        ss += xv[k].x * xv[k].x + xv[k].y * xv[k].y + xv[k].z * xv[k].z + xv[k].w * xv[k].w;
    }
    ss = gb_block_sum(ss, sh);
    const float inv = 1.0f / sqrtf(ss / (float)dim + eps);
    float4 *yr = (float4 *)(y + (int64_t)blockIdx.x * dim);
#pragma unroll
    for (int k = 0; k < NV; k++) {
        const int i = threadIdx.x + k * GB_NORM_THREADS;
        if (i < d4)
            yr[i] = make_float4(wv[k].x * (xv[k].x * inv), wv[k].y * (xv[k].y * inv),
                                wv[k].z * (xv[k].z * inv), wv[k].w * (xv[k].w * inv));
    }
}

void gb_cuda_rmsnorm(gb_backend *b, float *y, const float *x, const float *w, int n, int dim,
                     float eps) {
    gb_cuda *st = gb_cuda_of(b);
    if (n <= 0 || GB_SKIPPED(st, GB_SKIP_NORM, n)) return;
    const int nv = (dim / 4 + GB_NORM_THREADS - 1) / GB_NORM_THREADS;
    const bool vec = dim % 4 == 0 && dim <= 4 * 4 * GB_NORM_THREADS &&
                     (((uintptr_t)y | (uintptr_t)x | (uintptr_t)w) & 15u) == 0;
    if (vec && nv <= 1)
        gb_launch(st, k_rmsnorm_vec<1>, n, GB_NORM_THREADS, 0, y, x, w, dim, eps);
    else if (vec && nv <= 2)
        gb_launch(st, k_rmsnorm_vec<2>, n, GB_NORM_THREADS, 0, y, x, w, dim, eps);
    else if (vec)
        gb_launch(st, k_rmsnorm_vec<4>, n, GB_NORM_THREADS, 0, y, x, w, dim, eps);
    else
        gb_launch(st, k_rmsnorm<__nv_bfloat16>, n, gb_row_threads(dim), 0, y,
                  (__nv_bfloat16 *)nullptr, x, w, dim, eps);
    GB_CU_LAUNCH(st, "rmsnorm");
}

void gb_cuda_rmsnorm16(gb_cuda *st, float *y, void *y16, gb_dtype dt, const float *x,
                       const float *w, int n, int dim, float eps) {
    if (n <= 0) return;
    if (dt == GB_F16)
        k_rmsnorm<__half>
            <<<n, gb_row_threads(dim), 0, st->stream>>>(y, (__half *)y16, x, w, dim, eps);
    else
        k_rmsnorm<__nv_bfloat16>
            <<<n, gb_row_threads(dim), 0, st->stream>>>(y, (__nv_bfloat16 *)y16, x, w, dim, eps);
    GB_CU_LAUNCH(st, "rmsnorm16");
}

/* resid += x; y = rmsnorm(resid) * w. y may alias x. */
__global__ void k_add_rmsnorm(float *resid, const float *x, float *y, const float *w, int dim,
                              float eps) {
    gb_pdl_trigger();
    gb_pdl_wait();
    __shared__ float sh[33];
    const int64_t off = (int64_t)blockIdx.x * dim;
    float ss = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        const float v = resid[off + i] + x[off + i];
        resid[off + i] = v;
        ss += v * v;
    }
    ss = gb_block_sum(ss, sh);
    const float inv = 1.0f / sqrtf(ss / (float)dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        y[off + i] = w[i] * (resid[off + i] * inv);
}

void gb_cuda_add_rmsnorm(gb_backend *b, float *resid, const float *x, float *y, const float *w,
                         int n, int dim, float eps) {
    gb_cuda *st = gb_cuda_of(b);
    if (n <= 0) return;
    gb_launch(st, k_add_rmsnorm, n, gb_row_threads(dim), 0, resid, x, y, w, dim, eps);
    GB_CU_LAUNCH(st, "add_rmsnorm");
}

/* Two passes (mean, then variance of the centred values) as torch does in float32. */
__global__ void k_layernorm(float *y, const float *x, const float *w, const float *bias, int dim,
                            float eps) {
    __shared__ float sh[33];
    const int64_t off = (int64_t)blockIdx.x * dim;
    float s = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        s += x[off + i];
    const float mean = gb_block_sum(s, sh) / (float)dim;
    float v2 = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        const float d = x[off + i] - mean;
        v2 += d * d;
    }
    const float inv = 1.0f / sqrtf(gb_block_sum(v2, sh) / (float)dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        const float d = (x[off + i] - mean) * inv;
        y[off + i] = d * w[i] + (bias ? bias[i] : 0.f);
    }
}

void gb_cuda_layernorm(gb_backend *b, float *y, const float *x, const float *w, const float *bias,
                       int n, int dim, float eps) {
    gb_cuda *st = gb_cuda_of(b);
    if (n <= 0) return;
    k_layernorm<<<n, gb_row_threads(dim), 0, st->stream>>>(y, x, w, bias, dim, eps);
    GB_CU_LAUNCH(st, "layernorm");
}

/* ---------------- element-wise ---------------- */

__device__ __forceinline__ float gb_act_f(float x, gb_act_kind act) {
    if (act == GB_BACT_SILU) return x / (1.0f + expf(-x));
    const float c = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
}

__global__ void k_add(float *y, const float *a, const float *c, size_t count) {
    gb_pdl_trigger();
    gb_pdl_wait();
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = a[i] + c[i];
}

void gb_cuda_add(gb_backend *b, float *y, const float *a, const float *c, size_t count) {
    gb_cuda *st = gb_cuda_of(b);
    if (!count) return;
    gb_launch(st, k_add, gb_blocks(count, 256), 256, 0, y, a, c, count);
    GB_CU_LAUNCH(st, "add");
}

__global__ void k_act_mul(float *out, const float *g, const float *u, size_t count,
                          gb_act_kind act) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = gb_act_f(g[i], act) * u[i];
}

void gb_cuda_act_mul(gb_backend *b, float *out, const float *gate, const float *up, size_t count,
                     gb_act_kind act) {
    gb_cuda *st = gb_cuda_of(b);
    if (!count) return;
    k_act_mul<<<gb_blocks(count, 256), 256, 0, st->stream>>>(out, gate, up, count, act);
    GB_CU_LAUNCH(st, "act_mul");
}

__global__ void k_act(float *y, const float *x, size_t count, gb_act_kind act) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = gb_act_f(x[i], act);
}

void gb_cuda_act(gb_backend *b, float *y, const float *x, size_t count, gb_act_kind act) {
    gb_cuda *st = gb_cuda_of(b);
    if (!count) return;
    k_act<<<gb_blocks(count, 256), 256, 0, st->stream>>>(y, x, count, act);
    GB_CU_LAUNCH(st, "act");
}

__global__ void k_add_bias(float *y, const float *bias, int cols, size_t count) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] += bias[i % (size_t)cols];
}

void gb_cuda_add_bias(gb_cuda *st, float *y, const float *bias, int n, int cols) {
    const size_t count = (size_t)n * (size_t)cols;
    if (!count || !bias) return;
    k_add_bias<<<gb_blocks(count, 256), 256, 0, st->stream>>>(y, bias, cols, count);
    GB_CU_LAUNCH(st, "add_bias");
}

template <typename T> __global__ void k_to16(T *dst, const float *src, size_t count) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = (T)src[i];
}

void gb_cuda_to16(gb_cuda *st, void *dst, gb_dtype dt, const float *src, size_t count) {
    if (!count) return;
    if (dt == GB_F16)
        k_to16<__half><<<gb_blocks(count, 256), 256, 0, st->stream>>>((__half *)dst, src, count);
    else
        k_to16<__nv_bfloat16>
            <<<gb_blocks(count, 256), 256, 0, st->stream>>>((__nv_bfloat16 *)dst, src, count);
    GB_CU_LAUNCH(st, "to16");
}

/* dst[r, c] = src[r, c] (or src[c, r] when transpose), converted through float32; float32 ->
 * bf16 / f16 rounds to nearest even (the __float2bfloat16 / __float2half conversions). */
__global__ void k_convert(void *dst, gb_dtype ddt, const void *src, gb_dtype sdt, int64_t rows,
                          int64_t cols, int transpose) {
    const int64_t count = rows * cols;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = i / cols, c = i % cols;
        const float v = gb_load_as_f32(src, sdt, transpose ? c * rows + r : i);
        if (ddt == GB_BF16)
            ((__nv_bfloat16 *)dst)[i] = __float2bfloat16(v);
        else if (ddt == GB_F16)
            ((__half *)dst)[i] = __float2half(v);
        else
            ((float *)dst)[i] = v;
    }
}

void gb_cuda_convert(gb_cuda *st, void *dst, gb_dtype ddt, const void *src, gb_dtype sdt,
                     int64_t rows, int64_t cols, int transpose) {
    const size_t count = (size_t)(rows * cols);
    if (!count) return;
    k_convert<<<gb_blocks(count, 256), 256, 0, st->stream>>>(dst, ddt, src, sdt, rows, cols,
                                                             transpose);
    GB_CU_LAUNCH(st, "convert");
}

/* ---------------- rotary embedding and KV cache ---------------- */

/* Rotates pair (i, i + half) of one head vector x (rotate-half layout). */

__global__ void k_rope(float *x, int n_tokens, int n_heads, int head_dim, const float *inv_freq,
                       float af, const int *dpos, int pos0) {
    const int row = blockIdx.x;
    const int half = head_dim / 2;
    const float pos = (float)((dpos ? *dpos : pos0) + row % n_tokens);
    float *xr = x + (int64_t)row * n_heads * head_dim;
    for (int j = threadIdx.x; j < n_heads * half; j += blockDim.x)
        gb_rope_pair(xr + (j / half) * head_dim, j % half, half, pos, inv_freq, af);
}

void gb_cuda_rope(gb_backend *b, float *x, const gb_rope_args *a) {
    gb_cuda *st = gb_cuda_of(b);
    const int rows = a->batch * a->n_tokens;
    if (rows <= 0) return;
    k_rope<<<rows, gb_row_threads(a->n_heads * a->head_dim / 2), 0, st->stream>>>(
        x, a->n_tokens, a->n_heads, a->head_dim, a->inv_freq, a->attn_factor, gb_cuda_dpos(st),
        a->pos0);
    GB_CU_LAUNCH(st, "rope");
}

__global__ void k_kv_write(float *kc, float *vc, const float *k, const float *v, int n_tokens,
                           int cap, int width, const int *dpos, int pos0) {
    const int row = blockIdx.x;
    const int bi = row / n_tokens, t = row % n_tokens;
    const int p = (dpos ? *dpos : pos0) + t;
    const int64_t dst = ((int64_t)bi * cap + p) * width, src = (int64_t)row * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        kc[dst + i] = k[src + i];
        vc[dst + i] = v[src + i];
    }
}

void gb_cuda_kv_write(gb_backend *b, float *kcache, float *vcache, const float *k, const float *v,
                      const gb_attn_args *a) {
    gb_cuda *st = gb_cuda_of(b);
    const int rows = a->batch * a->n_tokens, width = a->n_kv_heads * a->head_dim;
    if (rows <= 0) return;
    k_kv_write<<<rows, gb_row_threads(width), 0, st->stream>>>(
        kcache, vcache, k, v, a->n_tokens, a->cap, width, gb_cuda_dpos(st), a->pos0);
    GB_CU_LAUNCH(st, "kv_write");
}

/* rope of q and k in place, then k and v written to the cache: one block per token row. */
__global__ void k_rope_kv_write(float *q, float *k, const float *v, float *kc, float *vc,
                                int n_tokens, int cap, int nh, int nkv, int hd,
                                const float *inv_freq, float af, const int *dpos, int pos0) {
    gb_pdl_trigger();
    gb_pdl_wait();
    const int row = blockIdx.x;
    const int bi = row / n_tokens, t = row % n_tokens;
    const int p = (dpos ? *dpos : pos0) + t;
    const int half = hd / 2;
    const float pos = (float)p;
    float *qr = q + (int64_t)row * nh * hd;
    float *kr = k + (int64_t)row * nkv * hd;
    for (int j = threadIdx.x; j < (nh + nkv) * half; j += blockDim.x) {
        const int h = j / half, i = j % half;
        if (h < nh) {
            gb_rope_pair(qr + h * hd, i, half, pos, inv_freq, af);
        } else {
            float *kh = kr + (h - nh) * hd;
            gb_rope_pair(kh, i, half, pos, inv_freq, af);
            float *dst = kc + (((int64_t)bi * cap + p) * nkv + (h - nh)) * hd;
            dst[i] = kh[i];
            dst[i + half] = kh[i + half];
        }
    }
    const int width = nkv * hd;
    const int64_t dst = ((int64_t)bi * cap + p) * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x)
        vc[dst + i] = v[(int64_t)row * width + i];
}

void gb_cuda_rope_kv_write(gb_backend *b, float *q, float *k, const float *v, float *kcache,
                           float *vcache, const gb_rope_args *r, const gb_attn_args *a) {
    gb_cuda *st = gb_cuda_of(b);
    const int rows = a->batch * a->n_tokens;
    if (rows <= 0) return;
    const int work = (a->n_heads + a->n_kv_heads) * a->head_dim / 2;
    gb_launch(st, k_rope_kv_write, rows, gb_row_threads(work), 0, q, k, v, kcache, vcache,
              a->n_tokens, a->cap, a->n_heads, a->n_kv_heads, a->head_dim, r->inv_freq,
              r->attn_factor, gb_cuda_dpos(st), a->pos0);
    GB_CU_LAUNCH(st, "rope_kv_write");
}

/* ---------------- argmax ---------------- */

/* First index of the maximum (NaN never wins). One block per row. */
__global__ void k_argmax(int32_t *ids, const float *logits, int vocab, gb_step_tail tail) {
    gb_pdl_trigger();
    gb_pdl_wait();
    const float *lr = logits + (int64_t)blockIdx.x * vocab;
    float best = -INFINITY;
    int bi = 0x7fffffff;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        const float v = lr[i];
        if (v > best) {
            best = v;
            bi = i;
        }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, best, o);
        const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (ov > best || (ov == best && oi < bi)) {
            best = ov;
            bi = oi;
        }
    }
    __shared__ float sv[32];
    __shared__ int si[32];
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) {
        sv[wid] = best;
        si[wid] = bi;
    }
    __syncthreads();
    if (wid == 0) {
        best = lane < nw ? sv[lane] : -INFINITY;
        bi = lane < nw ? si[lane] : 0x7fffffff;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const float ov = __shfl_xor_sync(0xffffffffu, best, o);
            const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (ov > best || (ov == best && oi < bi)) {
                best = ov;
                bi = oi;
            }
        }
        if (lane == 0) {
            const int32_t id = bi == 0x7fffffff ? 0 : bi;
            ids[blockIdx.x] = id;
            gb_step_tail_row(tail, blockIdx.x, id);
        }
    }
}

/* Split argmax for long rows (the vocabulary): a grid of blocks per row, each reducing its
 * chunk; each block folds its winner into one 64-bit key per row with atomicMax
 * (gb_argmax_key), and the last block to finish (a ticket counter) turns the key into the id
 * and resets key and counter for the next launch. The maximum does not depend on the order
 * the blocks arrive in, so the result is the same as k_argmax's, every time. NaN and -inf
 * never win, and a row without a finite value gives 0 as k_argmax does. */
__global__ void __launch_bounds__(256)
    k_argmax_split(int32_t *ids, const float *logits, int vocab, int chunk,
                   unsigned long long *keys, unsigned *tickets, gb_step_tail tail) {
    gb_pdl_trigger();
    gb_pdl_wait();
    const int row = blockIdx.y;
    const float *lr = logits + (int64_t)row * vocab;
    const int lo = blockIdx.x * chunk, hi = min(vocab, lo + chunk);
    unsigned long long best = 0;
    for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        const unsigned long long k = gb_argmax_key(lr[i], i);
        best = k > best ? k : best;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const unsigned long long k = __shfl_xor_sync(0xffffffffu, best, o);
        best = k > best ? k : best;
    }
    __shared__ unsigned long long sb[8];
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    if (lane == 0) sb[wid] = best;
    __syncthreads();
    if (threadIdx.x != 0) return;
    for (int w = 1; w < (int)(blockDim.x >> 5); w++)
        best = sb[w] > best ? sb[w] : best;
    atomicMax(&keys[row], best);
    __threadfence(); /* the key update before the ticket */
    if (atomicAdd(&tickets[row], 1u) == gridDim.x - 1) {
        __threadfence();
        const unsigned long long k = atomicExch(&keys[row], 0ull);
        tickets[row] = 0;
        const int32_t id = gb_argmax_id(k);
        ids[row] = id;
        gb_step_tail_row(tail, row, id);
    }
}

gb_step_tail gb_cuda_step_tail(gb_cuda *st, int32_t *ids, int n) {
    gb_step_tail tail = {NULL, NULL, NULL, n};
    if (st->capturing && st->pos_mode && st->step_tail && n <= GB_ARGMAX_ROWS) {
        tail.pos = st->d_pos;
        tail.host = st->tail_host_dev;
        tail.done = st->amax_tickets + GB_ARGMAX_ROWS;
        st->tail_cap.on = 1;
        st->tail_cap.ids = ids;
        st->tail_cap.rows = n;
    }
    return tail;
}

void gb_cuda_argmax(gb_backend *b, int32_t *ids, const float *logits, int n, int vocab) {
    gb_cuda *st = gb_cuda_of(b);
    if (n <= 0) return;
    /* a decode step being captured ends here: its argmax carries the step tail */
    const gb_step_tail tail = gb_cuda_step_tail(st, ids, n);
    if (n <= GB_ARGMAX_ROWS && vocab >= 8192) {
        const int chunk = 2048, blocks = (vocab + chunk - 1) / chunk;
        gb_launch(st, k_argmax_split, dim3(blocks, n), 256, 0, ids, logits, vocab, chunk,
                  st->amax_keys, st->amax_tickets, tail);
        GB_CU_LAUNCH(st, "argmax_split");
        return;
    }
    gb_launch(st, k_argmax, n, 1024, 0, ids, logits, vocab, tail);
    GB_CU_LAUNCH(st, "argmax");
}
