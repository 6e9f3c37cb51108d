/* Device code shared by the attention kernels of cuda_attention.cu and cuda_paged.cu: the
 * online-softmax state of one query, and the two halves of the split-KV decode that the dense
 * cluster kernel (k_flash_decode_cluster) and the paged one (k_attention_paged_split) have in
 * common. Both split a (sequence, KV head)'s keys over the ns blocks of a thread-block
 * cluster; each block leaves the partial state of every head of the GQA group in its shared
 * memory, rows [g][hd + 2] = (max, sum, unnormalised output), and block 0 merges the ns
 * partials through distributed shared memory. */
#ifndef GB_CUDA_ATTN_COMMON_CUH
#define GB_CUDA_ATTN_COMMON_CUH

#include "backend/cuda/cuda_internal.h"

#include <cooperative_groups.h>
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

/* Block 0 of the cluster, between the cluster barrier that follows every block's partial
 * stores and the one that keeps the other blocks (and their shared memory) alive until it has
 * read them: warp wid merges group heads wid, wid + nwarps, ... < g from the partials sp (this
 * block's shared-memory address, the same offset in every block) of the ns <= MAXS blocks and
 * writes head gi's normalised row to row row0 + gi of out (rows of hd floats). Lane r < ns
 * fetches block r's (max, sum): one round of remote loads, then warp reductions instead of a
 * serial walk over the blocks; block r's partial weighs exp(m_r - m), m the largest max among
 * the non-empty partials (sum > 0); empty partials are skipped. */
/* LOCAL: the ns partials are already in this block's shared memory, block r's rows at
 * sp + r * g * (hd + 2) (pushed there before the cluster barrier), so no remote loads and no
 * second barrier are needed. */
template <int DPL, int MAXS, bool LOCAL = false>
__device__ __forceinline__ void gb_split_cluster_merge(float *sp, int ns, int g, int hd, int nwarps,
                                                       float *out, int64_t row0, int lane,
                                                       int wid) {
    namespace cg = cooperative_groups;
    for (int gi = wid; gi < g; gi += nwarps) {
        float mr = -INFINITY, lr = 0.f;
        if (lane < ns) {
            const float *pr = (LOCAL ? sp + (int64_t)lane * g * (hd + 2)
                                     : cg::cluster_group::map_shared_rank(sp, lane)) +
                              gi * (hd + 2);
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
                const float *pr = (LOCAL ? sp + (int64_t)r * g * (hd + 2)
                                         : cg::cluster_group::map_shared_rank(sp, r)) +
                                  gi * (hd + 2) + 2;
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

#endif
