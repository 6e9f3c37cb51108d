/* Paged KV cache ops (continuous batching; backend.h, gb_paged_args): float32 pools
 * [n_blocks, block_size, n_kv_heads, head_dim], position p of sequence s in pool row
 * block_tables[s * max_blocks + p / block_size] * block_size + p % block_size.
 *
 * kv_write_paged: one block per new token row copies its k and v rows into the pools.
 * rope_kv_write_paged (kernelized table): one block per new token row rotates its q and k
 *   heads at the row's own position and writes k and v into the pools (the dense
 *   rope_kv_write with the position and destination looked up per sequence): one launch per
 *   layer where the reference composition issues two rope launches per sequence.
 * attention_paged: one block of 4 warps per (sequence, KV head, tile of 16 queries), where the
 *   queries of a sequence and KV head are its (token, GQA head) pairs in that order, so a
 *   decode step scores the whole GQA group against one staged copy of each key and a prefill
 *   tiles its tokens. The block walks 32-key tiles gathered through the block table into
 *   shared memory (row offsets looked up once per tile) and each warp keeps the online
 *   softmax of up to 4 queries, dealt round-robin (query i to warp i % 4) so that a decode
 *   step's few queries (one per GQA head) are scored by different warps in parallel; the
 *   same kernel serves prefill and decode, and every attention implementation (backend.h:
 *   one paged kernel for all). This is the reference kernel (the "cuda" table's op).
 * attention_paged_split (the "cuda-kernelized" table's op): a decode step (n_tokens == 1) split
 *   over the KV length: one thread-block cluster of ns blocks per (sequence, KV head), block r
 *   takes the r-th of ns equal shares of the sequence's keys [lo, p], walks them in 32-key
 *   tiles gathered through the block table, scores the whole GQA group from shared memory and
 *   pushes its partial softmax state (max, sum, output) into block 0's shared memory through
 *   distributed shared memory; after one cluster barrier block 0 merges the ns partials from
 *   its own shared memory and writes the output rows. The dense decode attention
 *   (cuda_attention.cu) does the same over its contiguous cache, with the same tile code:
 *   head_dim 64 and 128 get kernels of their own (scores in four independent FMA chains, the
 *   value pass without per-dimension guards in four partial sums per dim: cuda_attn_common.cuh),
 *   any other head_dim the generic kernel (GB_CUDA_ATTN_GENERIC=1 forces it at 64/128 too, for
 *   the tests). Anything else (prefill, GQA groups over 8, head_dim % 4 != 0, unaligned pools)
 *   goes to the reference kernel.
 *
 * Why a cluster merge rather than partials in global scratch + a merge kernel: the paged op
 * has no scratch argument (backend.h), a scratch buffer sized by batch would have to be grown
 * outside graph capture, and a second kernel is a second launch per layer; the cluster merge
 * needs neither, and its merge is the dense path's (gb_split_cluster_merge,
 * cuda_attn_common.cuh), already validated on the H200. The partials are pushed to block 0
 * before the barrier rather than pulled by block 0 after it: a pull needs a second barrier to
 * keep the other blocks' shared memory alive until block 0 has read it (0.9 us per launch
 * more on the dense kernel, H200).
 * ns is fixed at launch (the grid must not depend on device-side positions, for graph
 * capture): enough blocks to fill the GPU (about 4 per SM over all (sequence, KV head)
 * pairs), at most 8 (the portable cluster size) and at most one per 32 positions of the
 * table's capacity. GB_CUDA_PAGED_SPLIT=0 sends decode to the reference kernel, =N (1..8)
 * forces N blocks per cluster (tests, A/B timings).
 *
 * Positions and block tables are read from device memory inside the kernels and the grids
 * depend only on batch, n_tokens and the head counts, so the launches can be captured into a
 * CUDA graph and replayed with new positions / tables uploaded in between. */
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/cuda_attn_common.cuh"

#include <cooperative_groups.h>
#include <math.h>

#define GB_PMAXD GB_ATTN_MAXD /* largest head_dim supported (8 dims per lane) */
#define GB_PDPL GB_ATTN_DPL
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

/* ---------------- rope_kv_write_paged ---------------- */

__global__ void k_rope_kv_write_paged(float *q, float *k, const float *v, float *kp, float *vp,
                                      const int32_t *pos, const int32_t *tables, int T, int mb,
                                      int bs, int nh, int nkv, int hd, const float *inv_freq,
                                      float af) {
    gb_pdl_trigger();
    gb_pdl_wait();
    const int row = blockIdx.x, s = row / T, t = row % T;
    const int p = pos[s] + t, half = hd / 2, width = nkv * hd;
    const float fp = (float)p;
    const int64_t dst = gb_paged_pool_row(tables + (int64_t)s * mb, p, bs) * width;
    float *qr = q + (int64_t)row * nh * hd;
    float *kr = k + (int64_t)row * width;
    for (int j = threadIdx.x; j < (nh + nkv) * half; j += blockDim.x) {
        const int h = j / half, i = j % half;
        if (h < nh) {
            gb_rope_pair(qr + h * hd, i, half, fp, inv_freq, af);
        } else { /* the thread that rotates a k pair also stores it: no barrier needed */
            float *kh = kr + (h - nh) * hd;
            gb_rope_pair(kh, i, half, fp, inv_freq, af);
            kp[dst + (h - nh) * hd + i] = kh[i];
            kp[dst + (h - nh) * hd + i + half] = kh[i + half];
        }
    }
    const float *vr = v + (int64_t)row * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x)
        vp[dst + i] = vr[i];
}

void gb_cuda_rope_kv_write_paged(gb_backend *b, float *q, float *k, const float *v, float *kpool,
                                 float *vpool, const gb_rope_args *r, const gb_paged_args *a) {
    gb_cuda *st = gb_cuda_of(b);
    if (st->failed) return;
    const int rows = a->batch * a->n_tokens, hd = a->head_dim;
    if (rows <= 0) return;
    if (hd < 2 || hd % 2 != 0 || r->head_dim != hd || r->n_heads < 1 || a->n_kv_heads < 1) {
        gb_cuda_check(st, cudaErrorInvalidValue,
                      "rope_kv_write_paged: head_dim must be even and match the RoPE arguments",
                      __FILE__, __LINE__);
        return;
    }
    int threads = (((r->n_heads + a->n_kv_heads) * hd / 2 + 31) / 32) * 32;
    if (threads > 1024) threads = 1024;
    gb_launch(st, k_rope_kv_write_paged, rows, threads, 0, q, k, v, kpool, vpool, a->pos,
              a->block_tables, a->n_tokens, a->max_blocks, a->block_size, r->n_heads, a->n_kv_heads,
              hd, r->inv_freq, r->attn_factor);
    GB_CU_LAUNCH(st, "rope_kv_write_paged");
}

/* ---------------- attention_paged ---------------- */

/* Stages the K and V rows of a 32-key tile in shared memory with float4 loads (head_dim % 4
 * == 0, 16-byte aligned pools): key j's row starts at pool offset srow[j] (-1: zeros), K row
 * j at sk + j * ks (ks = hd + 1, padded: stored as scalars), V row j at sv + j * hd. All
 * threads of the block take part; the caller syncs before and after. */
__device__ __forceinline__ void gb_paged_gather4(float *sk, float *sv, const float *kp,
                                                 const float *vp, const int64_t *srow, int hd,
                                                 int ks, int tid) {
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
}

/* The split kernel's tile: the first nk rows only (srow[j] >= 0 for every j < nk), K row j at
 * sk + j * ks (ks % 4 == 0: 16-byte rows), V row j at sv + j * hd, all with float4 copies
 * (head_dim % 4 == 0, 16-byte aligned pools and sk, sv). The loads are unconditional, so the
 * unrolled loop keeps several of them in flight per thread. Rows nk..31 keep what they held (an
 * earlier tile's rows, or shared memory never written, possibly NaN): their scores are replaced by
 * -inf and neither value pass reads them (gb_osm_step_fast reads row nk - 1 in their place with
 * weight 0, gb_posm_step skips keys of weight 0). All threads of the block take part; the
 * caller syncs before and after. UNROLL: loop iterations in flight (4 spills a register in the
 * head_dim 128 kernel, nvcc 13: that one takes 2). */
template <int UNROLL>
__device__ __forceinline__ void gb_paged_gather_split(float *sk, float *sv, const float *kp,
                                                      const float *vp, const int64_t *srow, int hd,
                                                      int ks, int nk, int tid) {
    const int hd4 = hd >> 2, ks4 = ks >> 2; /* row strides in float4 */
#pragma unroll UNROLL
    for (int i = tid; i < nk * hd4; i += blockDim.x) {
        const int j = i / hd4, d4 = i % hd4;
        const int64_t r = srow[j];
        ((float4 *)sk)[j * ks4 + d4] = *(const float4 *)(kp + r + 4 * d4);
        ((float4 *)sv)[j * hd4 + d4] = *(const float4 *)(vp + r + 4 * d4);
    }
}

/* Folds one tile into o: lane j scored key j as s (-inf when masked), sv holds the tile's
 * value rows (stride hd). Keys whose weight is 0 (masked, or underflowed) are skipped, so
 * whatever a masked key's value row holds never reaches the output. */
__device__ __forceinline__ void gb_posm_step(gb_osm &o, float s, const float *sv, int hd,
                                             int lane) {
    float mn, corr, pj;
    if (!gb_osm_weigh(o, s, mn, corr, pj)) return; /* every key so far masked */
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
    gb_osm st[GB_PQ_PER_WARP];
#pragma unroll
    for (int w = 0; w < GB_PQ_PER_WARP; w++)
        gb_osm_init(st[w]);

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
            gb_paged_gather4(sk, sv, kp, vp, srow, hd, ks, tid);
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

/* ---------------- attention_paged_split (decode) ---------------- */

#define GB_PS_WARPS 4
#define GB_PS_QW 2                       /* GQA heads per warp */
#define GB_PS_G (GB_PS_WARPS * GB_PS_QW) /* widest GQA group */
#define GB_PS_MAX 8                      /* most blocks per cluster (portable size) */

/* Grid (ns, batch * nkv), clusters of ns blocks along x, 128 threads. HD > 0: head_dim known
 * at compile time (64, 128: scores in four FMA chains, the value pass unguarded,
 * gb_osm_step_fast); 0: any head_dim % 4 == 0 up to GB_PMAXD (guarded value pass,
 * gb_posm_step). Shared memory, floats: K tile [32][hd + 4] (16-byte rows: float4 stores and
 * reads, a warp's rows on distinct banks), V tile [32][hd] (16-byte aligned: 32 (hd + 4) is a
 * multiple of 4), the group's queries [g][hd], scores [g][32], and (used in block 0 only)
 * every block's partials [ns][g][hd + 2] = (max, sum, unnormalised output). */
template <int HD>
__global__ void __launch_bounds__(GB_PS_WARPS * 32)
    k_attention_paged_split(float *out, const float *q, const float *kp, const float *vp,
                            const int32_t *pos, const int32_t *tables, int mb, int bs, int nh,
                            int nkv, int hd_arg, float scale, int window) {
    const int hd = HD > 0 ? HD : hd_arg;
    constexpr int DPL = HD > 0 ? HD / 32 : GB_PDPL; /* output dims per lane */
    namespace cg = cooperative_groups;
    cg::cluster_group cl = cg::this_cluster();
    gb_pdl_trigger();
    /* Distributed shared memory may be written only once every block of the cluster runs:
     * arrive here, wait just before the partials are pushed (by then the wait is free). Every
     * thread executes the arrival and the wait once (.aligned: no early return before them). */
    asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
    gb_pdl_wait();
    extern __shared__ float4 smem4[]; /* 16-byte aligned: float4 K and V rows */
    float *smem = (float *)smem4;
    __shared__ int64_t srow[GB_PK]; /* pool offset of each key < nk of the tile */
    const int g = nh / nkv, ks = hd + 4;
    float *sk = smem;           /* [32][hd + 4] */
    float *sv = sk + 32 * ks;   /* [32][hd] */
    float *sq = sv + 32 * hd;   /* [g][hd] */
    float *ss = sq + g * hd;    /* [g][32] */
    float *spall = ss + g * 32; /* block 0's: [ns][g][hd + 2], pushed there by every block */
    const int ns = (int)cl.num_blocks(), rank = (int)cl.block_rank();
    const int s = blockIdx.y / nkv, kvh = blockIdx.y % nkv;
    const int tid = threadIdx.x, lane = tid & 31, wid = tid >> 5;
    const int p = pos[s];
    /* equal shares of [key0, p]: per >= 1, so block 0 always holds key0 <= p; blocks past p
     * (a context shorter than ns) hold nothing and leave an empty partial (sum 0) */
    const int key0 = gb_key_lo(p, window), per = (p - key0 + ns) / ns;
    const int lo = key0 + rank * per, hi = min(p, lo + per - 1);
    const int32_t *table = tables + (int64_t)s * mb;
    const float *qg = q + ((int64_t)s * nh + (int64_t)kvh * g) * hd;
    for (int i = tid; i < g * hd; i += blockDim.x)
        sq[i] = qg[i];
    gb_osm st[GB_PS_QW];
#pragma unroll
    for (int w = 0; w < GB_PS_QW; w++)
        gb_osm_init(st[w]);
    for (int k0 = lo; k0 <= hi; k0 += GB_PK) {
        const int nk = min(GB_PK, hi - k0 + 1); /* 1..32 */
        __syncthreads(); /* the previous tile is consumed (and sq written, first time) */
        if (tid < nk) srow[tid] = (gb_paged_pool_row(table, k0 + tid, bs) * nkv + kvh) * hd;
        __syncthreads();
        /* rows < nk only: the rows past them are never used (see gb_paged_gather_split) */
        gb_paged_gather_split<HD == 128 ? 2 : 4>(sk, sv, kp, vp, srow, hd, ks, nk, tid);
        __syncthreads();
        for (int i = tid; i < g * GB_PK; i += blockDim.x) {
            const int gi = i / GB_PK, j = i % GB_PK;
            const float a = gb_qk_dot4<HD>(sq + gi * hd, sk + j * ks, hd);
            ss[i] = j < nk ? a * scale : -INFINITY;
        }
        __syncthreads();
#pragma unroll
        for (int w = 0; w < GB_PS_QW; w++) {
            const int gi = wid + GB_PS_WARPS * w;
            if (gi >= g) continue; /* warp-uniform */
            if (HD > 0)
                gb_osm_step_fast<DPL>(st[w], ss[gi * GB_PK + lane], sv, nk, lane);
            else
                gb_posm_step(st[w], ss[gi * GB_PK + lane], sv, hd, lane);
        }
    }
    /* The partials go straight into block 0's spall (distributed shared memory stores after
     * the wait that matches the arrival at the start), then one cluster barrier; block 0
     * merges from its own shared memory, and no block reads another's after the barrier, so
     * none has to wait for block 0 (the dense decode kernel's merge, cuda_attention.cu). */
    asm volatile("barrier.cluster.wait.aligned;" ::: "memory");
    float *dst0 = cl.map_shared_rank(spall, 0) + (int64_t)rank * g * (hd + 2);
#pragma unroll
    for (int w = 0; w < GB_PS_QW; w++) {
        const int gi = wid + GB_PS_WARPS * w;
        if (gi < g) GB_SPLIT_PARTIAL_STORE(dst0 + gi * (hd + 2), st[w], DPL, hd, lane);
    }
    cl.sync(); /* every partial written (release/acquire across the cluster) */
    if (rank == 0)
        gb_split_cluster_merge<DPL, GB_PS_MAX>(spall, ns, g, hd, GB_PS_WARPS, out,
                                               (int64_t)s * nh + (int64_t)kvh * g, lane, wid);
}

/* Blocks per cluster for a decode step of `a` (see the file comment); 0: the reference. */
static int gb_paged_split_count(const gb_cuda *st, const gb_paged_args *a) {
    if (st->paged_split == 0) return 0;
    if (st->paged_split > 0) return st->paged_split < GB_PS_MAX ? st->paged_split : GB_PS_MAX;
    const int pairs = a->batch * a->n_kv_heads, target = 4 * (st->sm_count > 0 ? st->sm_count : 1);
    int ns = (target + pairs - 1) / pairs;
    const int64_t cap = (int64_t)a->max_blocks * a->block_size; /* most positions a row holds */
    const int by_len = (int)((cap + GB_PK - 1) / GB_PK);
    if (ns > by_len) ns = by_len;
    if (ns > GB_PS_MAX) ns = GB_PS_MAX;
    return ns < 1 ? 1 : ns;
}

void gb_cuda_attention_paged_split(gb_backend *b, float *out, const float *q, const float *kpool,
                                   const float *vpool, const gb_paged_args *a) {
    gb_cuda *st = gb_cuda_of(b);
    if (st->failed) return;
    const int B = a->batch, nh = a->n_heads, nkv = a->n_kv_heads, hd = a->head_dim;
    const int ok = a->n_tokens == 1 && B > 0 && nkv > 0 && nh % nkv == 0 && nh / nkv <= GB_PS_G &&
                   hd >= 4 && hd <= GB_PMAXD && hd % 4 == 0 && a->block_size >= 1 &&
                   a->max_blocks >= 1 && (int64_t)B * nkv <= 65535 &&
                   ((uintptr_t)kpool % 16) == 0 && ((uintptr_t)vpool % 16) == 0;
    const int ns = ok ? gb_paged_split_count(st, a) : 0;
    if (ns < 1) {
        gb_cuda_attention_paged(b, out, q, kpool, vpool, a);
        return;
    }
    const int g = nh / nkv;
    /* K tile (padded rows), V tile, q group, scores, every block's partials */
    const size_t floats = (size_t)32 * (hd + 4) + (size_t)32 * hd + (size_t)g * hd +
                          (size_t)g * 32 + (size_t)ns * g * (hd + 2);
    const size_t sm = floats * sizeof(float);
    const int hdk = gb_attn_fast_hd(st, hd);
    void (*k)(float *, const float *, const float *, const float *, const int32_t *,
              const int32_t *, int, int, int, int, int, float, int) =
        hdk == 64    ? k_attention_paged_split<64>
        : hdk == 128 ? k_attention_paged_split<128>
                     : k_attention_paged_split<0>;
    if (sm > 48 * 1024 &&
        GB_CU(st, cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm)))
        return;
    gb_launch_ex(st, k, dim3(ns, B * nkv), dim3(GB_PS_WARPS * 32), sm, (unsigned)ns, out, q, kpool,
                 vpool, a->pos, a->block_tables, a->max_blocks, a->block_size, nh, nkv, hd,
                 a->scale, a->sliding_window);
    GB_CU_LAUNCH(st, "attention_paged_split");
}
