/* Device code shared by the attention kernels of cuda_attention.cu and cuda_paged.cu: the
 * online-softmax state of one query, the tile steps of the decode kernels specialised for a
 * head_dim known at compile time, and the two halves of the split-KV decode that the dense
 * cluster kernel (k_flash_decode_cluster) and the paged one (k_attention_paged_split) have in
 * common. Both split a (sequence, KV head)'s keys over the ns blocks of a thread-block
 * cluster; each block pushes the partial state of every head of the GQA group into block 0's
 * shared memory, rows [ns][g][hd + 2] = (max, sum, unnormalised output), and block 0 merges
 * the ns partials after one cluster barrier. */
#ifndef GB_CUDA_ATTN_COMMON_CUH
#define GB_CUDA_ATTN_COMMON_CUH

#include "backend/cuda/cuda_internal.h"

#include <math.h>

#define GB_ATTN_MAXD 256                /* largest head_dim of the attention kernels */
#define GB_ATTN_DPL (GB_ATTN_MAXD / 32) /* output dims per lane */

/* Online-softmax state of one query, kept by one warp: running max m, sum l and unnormalised
 * output dims lane + 32 i in acc[i]. */
struct gb_osm {
    float m, l;
    float acc[GB_ATTN_DPL];
};

__device__ __forceinline__ void gb_osm_init(gb_osm &o) {
    o.m = -INFINITY;
    o.l = 0.f;
#pragma unroll
    for (int i = 0; i < GB_ATTN_DPL; i++)
        o.acc[i] = 0.f;
}

/* The softmax half of folding a 32-key tile into o: lane j scored key j as s (-inf: masked).
 * Returns false, o unchanged, while every key so far is masked; otherwise adds the tile's
 * weights to o.l, rescaled to the new running max mn, and gives this lane's weight pj and the
 * factor corr for o.acc; the caller adds the tile's values, then sets o.m = mn. */
__device__ __forceinline__ bool gb_osm_weigh(gb_osm &o, float s, float &mn, float &corr,
                                             float &pj) {
    mn = fmaxf(o.m, gb_warp_max(s));
    if (mn == -INFINITY) return false;
    corr = expf(o.m - mn);
    pj = s == -INFINITY ? 0.f : expf(s - mn);
    o.l = o.l * corr + gb_warp_sum(pj);
    return true;
}

/* One 32-key tile for a head_dim known at compile time (DPL = head_dim / 32 dims per lane):
 * lane j scored key j as s (-inf: masked), v0 holds the tile's value rows (stride 32 * DPL
 * floats). No per-dimension guards, and the value pass accumulates key j into a[.][j % 4], so
 * four chains of 8 FMAs replace one chain of 32 (the guarded loops of the generic kernels,
 * gb_osm_step and gb_posm_step, keep each lane's loads and FMAs one after the other: 4-5 us
 * per 32-key tile in the dense kernel on an H200, session 6's probe). Keys j >= nkeys (1 <= nkeys
 * <= 32; their scores must be -inf) read the last valid row, nkeys - 1, with weight 0: rows past
 * nkeys are never read, so whatever they hold (stale or never written shared memory, possibly NaN)
 * cannot reach the output, not even as 0 * NaN. */
template <int DPL>
__device__ __forceinline__ void gb_osm_step_fast(gb_osm &o, float s, const float *v0, int nkeys,
                                                 int lane) {
    float mn, corr, pj;
    if (!gb_osm_weigh(o, s, mn, corr, pj)) return; /* every key so far masked */
    float a[DPL][4];
#pragma unroll
    for (int i = 0; i < DPL; i++)
#pragma unroll
        for (int k = 0; k < 4; k++)
            a[i][k] = 0.f;
    const int last = nkeys - 1;
#pragma unroll
    for (int j = 0; j < 32; j++) {
        const float p = __shfl_sync(0xffffffffu, pj, j);
        const float *vr = v0 + (j < last ? j : last) * (32 * DPL) + lane;
#pragma unroll
        for (int i = 0; i < DPL; i++)
            a[i][j & 3] += p * vr[32 * i];
    }
#pragma unroll
    for (int i = 0; i < DPL; i++)
        o.acc[i] = o.acc[i] * corr + ((a[i][0] + a[i][1]) + (a[i][2] + a[i][3]));
    o.m = mn;
}

/* Dot product of a query row and a key row in shared memory, both 16-byte aligned, hd % 4 ==
 * 0 (float4 reads; K rows padded to hd + 4 floats keep a warp's rows on distinct banks).
 * HD > 0: head_dim known at compile time, summed in four independent FMA chains (one chain of
 * hd FMAs is latency-bound); HD == 0: any hd, one chain. */
template <int HD>
__device__ __forceinline__ float gb_qk_dot4(const float *q, const float *k, int hd) {
    const float4 *qr = (const float4 *)q, *kr = (const float4 *)k;
    if (HD > 0) {
        float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
#pragma unroll
        for (int d = 0; d < HD / 4; d++) {
            const float4 qv = qr[d], kv = kr[d];
            a0 += qv.x * kv.x;
            a1 += qv.y * kv.y;
            a2 += qv.z * kv.z;
            a3 += qv.w * kv.w;
        }
        return (a0 + a1) + (a2 + a3);
    }
    float a = 0.f;
#pragma unroll 4
    for (int d = 0; d < hd / 4; d++) {
        const float4 qv = qr[d], kv = kr[d];
        a += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
    }
    return a;
}

/* Stores one head's partial state o (members m, l, acc[dpl]: max, sum, output dims lane + 32 i)
 * to its row pr of the partials: lane 0 the max and the sum, then the dims below hd. A macro,
 * not a __forceinline__ function: with the same code behind any call (a function or a lambda),
 * nvcc 13 gives k_flash_decode_cluster<true> 78 registers instead of 72 (ptxas -v). */
#define GB_SPLIT_PARTIAL_STORE(pr, o, dpl, hd, lane)                                               \
    do {                                                                                           \
        float *gb_pr_ = (pr);                                                                      \
        if ((lane) == 0) {                                                                         \
            gb_pr_[0] = (o).m;                                                                     \
            gb_pr_[1] = (o).l;                                                                     \
        }                                                                                          \
        _Pragma("unroll") for (int gb_i_ = 0; gb_i_ < (dpl); gb_i_++) {                            \
            const int gb_d_ = (lane) + 32 * gb_i_;                                                 \
            if (gb_d_ < (hd)) gb_pr_[2 + gb_d_] = (o).acc[gb_i_];                                  \
        }                                                                                          \
    } while (0)

/* Block 0 of the cluster, after the cluster barrier that follows every block's partial
 * stores: warp wid merges group heads wid, wid + nwarps, ... < g from the partials of the
 * ns <= MAXS blocks, already in this block's shared memory (block r's rows at
 * sp + r * g * (hd + 2), pushed there by block r), and writes head gi's normalised row to row
 * row0 + gi of out (rows of hd floats). Lane r < ns fetches block r's (max, sum), then warp
 * reductions instead of a serial walk over the blocks; block r's partial weighs exp(m_r - m),
 * m the largest max among the non-empty partials (sum > 0); empty partials are skipped. The
 * partials are pushed rather than pulled (block 0 reading the others' shared memory) because a
 * pull needs a second cluster barrier to keep the other blocks alive until block 0 has read
 * them: 0.9 us more per launch on an H200. The pushing stores and the barrier before this
 * merge stay written out in each kernel: as one __forceinline__ helper shared by the dense and
 * the paged kernel they cost registers (nvcc 13, ptxas -v: the head_dim 64 kernels 40 -> 46
 * and 40 -> 48). */
template <int DPL, int MAXS>
__device__ __forceinline__ void gb_split_cluster_merge(const float *sp, int ns, int g, int hd,
                                                       int nwarps, float *out, int64_t row0,
                                                       int lane, int wid) {
    for (int gi = wid; gi < g; gi += nwarps) {
        float mr = -INFINITY, lr = 0.f;
        if (lane < ns) {
            const float *pr = sp + ((int64_t)lane * g + gi) * (hd + 2);
            lr = pr[1];
            mr = lr > 0.f ? pr[0] : -INFINITY;
        }
        const float m = gb_warp_max(mr);
        const float c = lr > 0.f ? expf(mr - m) : 0.f;
        const float l = gb_warp_sum(lr * c);
        float acc[DPL];
#pragma unroll
        for (int i = 0; i < DPL; i++)
            acc[i] = 0.f;
#pragma unroll
        for (int r = 0; r < MAXS; r++) {
            const float cr = __shfl_sync(0xffffffffu, c, r);
            if (r < ns && cr > 0.f) {
                const float *pr = sp + ((int64_t)r * g + gi) * (hd + 2) + 2;
#pragma unroll
                for (int i = 0; i < DPL; i++) {
                    const int d = lane + 32 * i;
                    if (d < hd) acc[i] += pr[d] * cr;
                }
            }
        }
        const float inv = l > 0.f ? 1.0f / l : 0.f;
        const int64_t row = row0 + gi;
#pragma unroll
        for (int i = 0; i < DPL; i++) {
            const int d = lane + 32 * i;
            if (d < hd) out[row * hd + d] = acc[i] * inv;
        }
    }
}

/* The head_dim a decode kernel is specialised for: 64 or 128 (Llama 3.2 1B/3B, 3.1 8B, Qwen,
 * Mistral shapes), 0 for the generic kernel (any other head_dim, and every head_dim with
 * GB_CUDA_ATTN_GENERIC=1, for the tests). */
static inline int gb_attn_fast_hd(const gb_cuda *st, int hd) {
    return !st->attn_generic && (hd == 64 || hd == 128) ? hd : 0;
}

#endif
