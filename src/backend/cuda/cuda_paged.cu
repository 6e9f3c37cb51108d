/* Paged KV cache ops (continuous batching; backend.h, gb_paged_args): float32 pools
 * [n_blocks, block_size, n_kv_heads, head_dim], position p of sequence s in pool row
 * block_tables[s * max_blocks + p / block_size] * block_size + p % block_size.
 *
 * kv_write_paged: one block per new token row copies its k and v rows into the pools.
 * attention_paged: one block of 4 warps per (sequence, KV head, tile of 16 queries), where the
 *   queries of a sequence and KV head are its (token, GQA head) pairs in that order, so a
 *   decode step scores the whole GQA group against one staged copy of each key and a prefill
 *   tiles its tokens. The block walks 32-key tiles gathered through the block table into
 *   shared memory (row offsets looked up once per tile) and each warp keeps the online
 *   softmax of up to 4 queries, dealt round-robin (query i to warp i % 4) so that a decode
 *   step's few queries (one per GQA head) are scored by different warps in parallel; the
 *   same kernel serves prefill and decode, and every attention implementation (backend.h:
 *   one paged kernel for all). No split-KV yet: a decode step is one block per (sequence,
 *   KV head) walking the whole context.
 *
 * Positions and block tables are read from device memory inside the kernels and the grids
 * depend only on batch, n_tokens and the head counts, so the launches can be captured into a
 * CUDA graph and replayed with new positions / tables uploaded in between. */
#include "backend/cuda/cuda_internal.h"

#include <math.h>

#define GB_PMAXD 256 /* largest head_dim supported (8 dims per lane) */
#define GB_PDPL (GB_PMAXD / 32)
#define GB_PWARPS 4
#define GB_PQ_PER_WARP 4
#define GB_PQ (GB_PWARPS * GB_PQ_PER_WARP) /* queries per block */
#define GB_PK 32                           /* keys per tile (one per lane when scoring) */

/* Pool row (all KV heads) of position p of the sequence whose table is `table`. */
__device__ __forceinline__ int64_t gb_paged_pool_row(const int32_t *table, int p, int bs) {
    return (int64_t)table[p / bs] * bs + p % bs;
}

/* ---------------- kv_write_paged ---------------- */

__global__ void k_kv_write_paged(float *kp, float *vp, const float *k, const float *v,
                                 const int32_t *pos, const int32_t *tables, int T, int mb, int bs,
                                 int width) {
    gb_pdl_trigger();
    gb_pdl_wait();
    const int row = blockIdx.x, s = row / T, t = row % T;
    const int p = pos[s] + t;
    const int64_t dst = gb_paged_pool_row(tables + (int64_t)s * mb, p, bs) * width;
    const int64_t src = (int64_t)row * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        kp[dst + i] = k[src + i];
        vp[dst + i] = v[src + i];
    }
}

void gb_cuda_kv_write_paged(gb_backend *b, float *kpool, float *vpool, const float *k,
                            const float *v, const gb_paged_args *a) {
    gb_cuda *st = gb_cuda_of(b);
    if (st->failed) return;
    const int rows = a->batch * a->n_tokens, width = a->n_kv_heads * a->head_dim;
    if (rows <= 0 || width <= 0) return;
    int threads = ((width + 31) / 32) * 32;
    if (threads > 256) threads = 256;
    gb_launch(st, k_kv_write_paged, rows, threads, 0, kpool, vpool, k, v, a->pos, a->block_tables,
              a->n_tokens, a->max_blocks, a->block_size, width);
    GB_CU_LAUNCH(st, "kv_write_paged");
}

/* ---------------- attention_paged ---------------- */

struct gb_posm { /* online softmax of one query: running max, sum, output dims lane + 32 i */
    float m, l;
    float acc[GB_PDPL];
};

/* Folds one tile into o: lane j scored key j as s (-inf when masked), sv holds the tile's
 * value rows (stride hd). Keys whose weight is 0 (masked, or underflowed) are skipped, so
 * whatever a masked key's value row holds never reaches the output. */
__device__ __forceinline__ void gb_posm_step(gb_posm &o, float s, const float *sv, int hd,
                                             int lane) {
    const float mn = fmaxf(o.m, gb_warp_max(s));
    if (mn == -INFINITY) return; /* every key so far masked */
    const float corr = expf(o.m - mn);
    const float pj = s == -INFINITY ? 0.f : expf(s - mn);
    o.l = o.l * corr + gb_warp_sum(pj);
#pragma unroll
    for (int i = 0; i < GB_PDPL; i++)
        o.acc[i] *= corr;
#pragma unroll 8
    for (int j = 0; j < GB_PK; j++) {
        const float w = __shfl_sync(0xffffffffu, pj, j);
        if (w == 0.f) continue; /* warp-uniform */
        const float *vr = sv + j * hd;
#pragma unroll
        for (int i = 0; i < GB_PDPL; i++) {
            const int d = lane + 32 * i;
            if (d < hd) o.acc[i] += w * vr[d];
        }
    }
    o.m = mn;
}

__global__ void __launch_bounds__(GB_PWARPS * 32)
    k_attention_paged(float *out, const float *q, const float *kp, const float *vp,
                      const int32_t *pos, const int32_t *tables, int T, int mb, int bs, int nh,
                      int nkv, int hd, float scale, int window, int vec4) {
    gb_pdl_trigger();
    gb_pdl_wait();
    extern __shared__ float smem[];
    __shared__ int64_t srow[GB_PK]; /* pool offset of each key of the tile, -1: not loaded */
    const int ks = hd + 1;          /* padded K rows: lane j reads row j, no bank conflicts */
    float *sq = smem;               /* [GB_PQ][hd] */
    float *sk = sq + GB_PQ * hd;    /* [GB_PK][hd + 1] */
    float *sv = sk + GB_PK * ks;    /* [GB_PK][hd] */
    const int tid = threadIdx.x, lane = tid & 31, wid = tid >> 5;
    const int g = nh / nkv;
    const int s = blockIdx.y / nkv, kvh = blockIdx.y % nkv;
    const int q0 = blockIdx.x * GB_PQ; /* first (token, group head) item of the tile */
    const int nq = min(GB_PQ, T * g - q0);
    const int P0 = pos[s];
    const int32_t *table = tables + (int64_t)s * mb;

    for (int i = tid; i < GB_PQ * hd; i += blockDim.x) {
        const int qi = i / hd, d = i % hd;
        float x = 0.f;
        if (qi < nq) {
            const int it = q0 + qi, t = it / g, h = kvh * g + it % g;
            x = q[((int64_t)(s * T + t) * nh + h) * hd + d];
        }
        sq[i] = x;
    }
    /* keys any query of the tile sees: positions grow with the item index */
    const int kmin = gb_key_lo(P0 + q0 / g, window);
    const int pmax = P0 + (q0 + nq - 1) / g;
    gb_posm st[GB_PQ_PER_WARP];
#pragma unroll
    for (int w = 0; w < GB_PQ_PER_WARP; w++) {
        st[w].m = -INFINITY;
        st[w].l = 0.f;
#pragma unroll
        for (int i = 0; i < GB_PDPL; i++)
            st[w].acc[i] = 0.f;
    }

    for (int k0 = kmin - kmin % GB_PK; k0 <= pmax; k0 += GB_PK) {
        __syncthreads(); /* the previous tile is consumed */
        if (tid < GB_PK) {
            const int key = k0 + tid;
            srow[tid] = key >= kmin && key <= pmax
                            ? (gb_paged_pool_row(table, key, bs) * nkv + kvh) * hd
                            : (int64_t)-1;
        }
        __syncthreads();
        if (vec4) {
            const int hd4 = hd >> 2;
            for (int i = tid; i < GB_PK * hd4; i += blockDim.x) {
                const int j = i / hd4, d = (i % hd4) * 4;
                const int64_t r = srow[j];
                float4 k4 = make_float4(0.f, 0.f, 0.f, 0.f), v4 = k4;
                if (r >= 0) {
                    k4 = *(const float4 *)(kp + r + d);
                    v4 = *(const float4 *)(vp + r + d);
                }
                float *kr = sk + j * ks + d;
                kr[0] = k4.x, kr[1] = k4.y, kr[2] = k4.z, kr[3] = k4.w;
                *(float4 *)(sv + j * hd + d) = v4;
            }
        } else {
            for (int i = tid; i < GB_PK * hd; i += blockDim.x) {
                const int j = i / hd, d = i % hd;
                const int64_t r = srow[j];
                sk[j * ks + d] = r >= 0 ? kp[r + d] : 0.f;
                sv[j * hd + d] = r >= 0 ? vp[r + d] : 0.f;
            }
        }
        __syncthreads();
#pragma unroll
        for (int w = 0; w < GB_PQ_PER_WARP; w++) {
            const int qi = w * GB_PWARPS + wid;
            if (qi >= nq) continue;
            const int p = P0 + (q0 + qi) / g, lo = gb_key_lo(p, window);
            if (k0 > p || k0 + GB_PK <= lo) continue; /* warp-uniform */
            const int key = k0 + lane;
            float sc = -INFINITY;
            if (key <= p && key >= lo) {
                const float *qr = sq + qi * hd, *kr = sk + lane * ks;
                float acc = 0.f;
#pragma unroll 16
                for (int d = 0; d < hd; d++)
                    acc += qr[d] * kr[d];
                sc = acc * scale;
            }
            gb_posm_step(st[w], sc, sv, hd, lane);
        }
    }
#pragma unroll
    for (int w = 0; w < GB_PQ_PER_WARP; w++) {
        const int qi = w * GB_PWARPS + wid;
        if (qi >= nq) continue;
        const int it = q0 + qi, t = it / g, h = kvh * g + it % g;
        float *orow = out + ((int64_t)(s * T + t) * nh + h) * hd;
        const float inv = st[w].l > 0.f ? 1.0f / st[w].l : 0.f;
#pragma unroll
        for (int i = 0; i < GB_PDPL; i++) {
            const int d = lane + 32 * i;
            if (d < hd) orow[d] = st[w].acc[i] * inv;
        }
    }
}

void gb_cuda_attention_paged(gb_backend *b, float *out, const float *q, const float *kpool,
                             const float *vpool, const gb_paged_args *a) {
    gb_cuda *st = gb_cuda_of(b);
    if (st->failed) return;
    const int B = a->batch, T = a->n_tokens, nh = a->n_heads, nkv = a->n_kv_heads, hd = a->head_dim;
    if (B <= 0 || T <= 0) return;
    if (hd < 1 || hd > GB_PMAXD || nkv <= 0 || nh % nkv != 0 || a->block_size < 1 ||
        (int64_t)B * nkv > 65535) {
        gb_cuda_check(st, cudaErrorInvalidValue,
                      "attention_paged: unsupported head_dim, head counts, block size or batch",
                      __FILE__, __LINE__);
        return;
    }
    const size_t sm = ((size_t)GB_PQ * hd + (size_t)GB_PK * (hd + 1) + (size_t)GB_PK * hd) * 4;
    if (sm > 48 * 1024 &&
        GB_CU(st, cudaFuncSetAttribute(k_attention_paged,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm)))
        return;
    /* float4 staging needs 16-byte aligned rows: head_dim % 4 == 0 and aligned pools */
    const int vec4 = hd % 4 == 0 && ((uintptr_t)kpool % 16) == 0 && ((uintptr_t)vpool % 16) == 0;
    const int items = T * (nh / nkv);
    dim3 grid((items + GB_PQ - 1) / GB_PQ, B * nkv);
    gb_launch(st, k_attention_paged, grid, GB_PWARPS * 32, sm, out, q, kpool, vpool, a->pos,
              a->block_tables, T, a->max_blocks, a->block_size, nh, nkv, hd, a->scale,
              a->sliding_window, vec4);
    GB_CU_LAUNCH(st, "attention_paged");
}
