/* Causal attention over the float32 KV cache ([batch, cap, n_kv_heads, head_dim]).
 *
 * eager: score matrix [batch, heads, tokens, cap] in scratch, softmax, then P.V (three kernels).
 * sdpa:  one warp per query row, online softmax over blocks of 32 keys (a lane scores one key;
 *        each lane accumulates head_dim/32 output dims), no stored scores.
 * flash: prefill: a block of 4 warps takes 16 queries of one head and walks 32-key tiles of K
 *        and V staged in shared memory (tiled online softmax); decode (one new token): the
 *        key range is split across the blocks of a thread-block cluster (split-KV), one
 *        cluster per (sequence, KV head); each block scores the whole GQA group from shared
 *        memory and block 0 merges the partials through distributed shared memory; groups
 *        wider than 8 heads or head_dim % 4 != 0 use one warp per (head, split), partials in
 *        scratch and a separate merge kernel.
 * In every kernel query t of sequence b sits at position p = pos0 + t and sees keys
 * [lo, p] with lo = p - window + 1 for sliding windows, else 0. pos0 comes from device memory
 * in graph mode (gb_cuda_dpos), so grids are sized by cap, not by the current length. */
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/cuda_attn_common.cuh"

#include <cooperative_groups.h>
#include <math.h>

#define GB_MAXD GB_ATTN_MAXD /* largest head_dim supported (8 dims per lane) */
#define GB_DPL GB_ATTN_DPL

/* ---------------- eager ---------------- */

__global__ void k_eager_scores(float *s, const float *q, const float *kc, int T, int cap, int nh,
                               int nkv, int hd, float scale, int window, const int *dpos,
                               int pos0) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    const int row = blockIdx.y; /* (b * nh + h) * T + t */
    if (j >= cap) return;
    const int t = row % T, h = (row / T) % nh, bi = row / (T * nh);
    const int p = (dpos ? *dpos : pos0) + t;
    float v = -INFINITY;
    if (j <= p && j >= gb_key_lo(p, window)) {
        const float *qr = q + ((int64_t)(bi * T + t) * nh + h) * hd;
        const float *kr = kc + (((int64_t)bi * cap + j) * nkv + h / (nh / nkv)) * hd;
        float acc = 0.f;
#pragma unroll 8
        for (int d = 0; d < hd; d++)
            acc += qr[d] * kr[d];
        v = acc * scale;
    }
    s[(int64_t)row * cap + j] = v;
}

__global__ void k_eager_softmax(float *s, int T, int cap, const int *dpos, int pos0) {
    __shared__ float sh[33];
    const int row = blockIdx.x;
    const int L = (dpos ? *dpos : pos0) + row % T + 1; /* keys beyond are masked */
    float *sr = s + (int64_t)row * cap;
    float m = -INFINITY;
    for (int j = threadIdx.x; j < L; j += blockDim.x)
        m = fmaxf(m, sr[j]);
    m = gb_warp_max(m);
    __syncthreads();
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = m;
    __syncthreads();
    m = -INFINITY;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++)
        m = fmaxf(m, sh[w]);
    float sum = 0.f;
    for (int j = threadIdx.x; j < L; j += blockDim.x) {
        const float e = expf(sr[j] - m);
        sr[j] = e;
        sum += e;
    }
    sum = gb_block_sum(sum, sh);
    const float inv = 1.0f / sum;
    for (int j = threadIdx.x; j < L; j += blockDim.x)
        sr[j] *= inv;
}

__global__ void k_eager_pv(float *out, const float *s, const float *vc, int T, int cap, int nh,
                           int nkv, int hd, const int *dpos, int pos0) {
    const int row = blockIdx.x;
    const int t = row % T, h = (row / T) % nh, bi = row / (T * nh);
    const int L = (dpos ? *dpos : pos0) + t + 1;
    const float *sr = s + (int64_t)row * cap;
    const int kvh = h / (nh / nkv);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.f;
#pragma unroll 8
        for (int j = 0; j < L; j++)
            acc += sr[j] * vc[(((int64_t)bi * cap + j) * nkv + kvh) * hd + d];
        out[((int64_t)(bi * T + t) * nh + h) * hd + d] = acc;
    }
}

/* ---------------- online-softmax helpers (one warp, one query) ---------------- */

/* The running state of one query: gb_osm (cuda_attn_common.cuh). */

/* vbase(j) = pointer to value row of key k0 + j; stride between keys in floats. */
__device__ __forceinline__ void gb_osm_step(gb_osm &o, float s, const float *v0, int64_t vstride,
                                            int nkeys, int hd, int lane) {
    float mn, corr, pj;
    if (!gb_osm_weigh(o, s, mn, corr, pj)) return; /* every key so far masked */
#pragma unroll
    for (int i = 0; i < GB_DPL; i++)
        o.acc[i] *= corr;
        /* unrolled so the value loads of many keys are in flight together */
#pragma unroll 8
    for (int j = 0; j < 32; j++) {
        const float p = __shfl_sync(0xffffffffu, pj, j);
        if (j < nkeys) {
            const float *vr = v0 + (int64_t)j * vstride;
#pragma unroll
            for (int i = 0; i < GB_DPL; i++) {
                const int d = lane + 32 * i;
                if (d < hd) o.acc[i] += p * vr[d];
            }
        }
    }
    o.m = mn;
}

/* ---------------- sdpa: one warp per query ---------------- */

__global__ void k_sdpa(float *out, const float *q, const float *kc, const float *vc, int B, int T,
                       int cap, int nh, int nkv, int hd, float scale, int window, const int *dpos,
                       int pos0) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= B * T * nh) return;
    const int h = row % nh, t = (row / nh) % T, bi = row / (nh * T);
    const int p = (dpos ? *dpos : pos0) + t;
    const int lo = gb_key_lo(p, window);
    const int kvh = h / (nh / nkv);
    const float *qr = q + (int64_t)row * hd;
    const int64_t kstride = (int64_t)nkv * hd;
    const float *kb = kc + ((int64_t)bi * cap * nkv + kvh) * hd;
    const float *vb = vc + ((int64_t)bi * cap * nkv + kvh) * hd;
    gb_osm o;
    gb_osm_init(o);
    for (int k0 = lo; k0 <= p; k0 += 32) {
        const int j = k0 + lane;
        float s = -INFINITY;
        if (j <= p) {
            const float *kr = kb + (int64_t)j * kstride;
            float acc = 0.f;
#pragma unroll 16
            for (int d = 0; d < hd; d++)
                acc += qr[d] * kr[d];
            s = acc * scale;
        }
        const int nk = p - k0 + 1 < 32 ? p - k0 + 1 : 32;
        gb_osm_step(o, s, vb + (int64_t)k0 * kstride, kstride, nk, hd, lane);
    }
    float *orow = out + (int64_t)row * hd;
    const float inv = o.l > 0.f ? 1.0f / o.l : 0.f;
#pragma unroll
    for (int i = 0; i < GB_DPL; i++) {
        const int d = lane + 32 * i;
        if (d < hd) orow[d] = o.acc[i] * inv;
    }
}

/* ---------------- flash prefill: tiles in shared memory ---------------- */

#define GB_FQ_WARPS 4
#define GB_FQ_PER_WARP 4
#define GB_FQ (GB_FQ_WARPS * GB_FQ_PER_WARP) /* queries per block */
#define GB_FK 32                             /* keys per tile */

__global__ void __launch_bounds__(GB_FQ_WARPS * 32)
    k_flash_prefill(float *out, const float *q, const float *kc, const float *vc, int T, int cap,
                    int nh, int nkv, int hd, float scale, int window, const int *dpos, int pos0) {
    extern __shared__ float smem[];
    const int ks = hd + 1;       /* padded K rows: lane j reads row j, no bank conflicts */
    float *sq = smem;            /* [GB_FQ][hd] */
    float *sk = sq + GB_FQ * hd; /* [GB_FK][hd + 1] */
    float *sv = sk + GB_FK * ks; /* [GB_FK][hd] */
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    const int h = blockIdx.y % nh, bi = blockIdx.y / nh;
    const int t0 = blockIdx.x * GB_FQ;
    const int P0 = dpos ? *dpos : pos0;
    const int kvh = h / (nh / nkv);
    const int64_t kstride = (int64_t)nkv * hd;
    const float *kb = kc + ((int64_t)bi * cap * nkv + kvh) * hd;
    const float *vb = vc + ((int64_t)bi * cap * nkv + kvh) * hd;
    const int tq_last = min(t0 + GB_FQ, T) - 1;
    const int pmax = P0 + tq_last;
    const int kmin = gb_key_lo(P0 + t0, window);

    for (int i = threadIdx.x; i < GB_FQ * hd; i += blockDim.x) {
        const int qi = i / hd, d = i % hd, t = t0 + qi;
        sq[i] = t < T ? q[((int64_t)(bi * T + t) * nh + h) * hd + d] : 0.f;
    }
    gb_osm st[GB_FQ_PER_WARP];
#pragma unroll
    for (int w = 0; w < GB_FQ_PER_WARP; w++)
        gb_osm_init(st[w]);

    for (int k0 = kmin - kmin % GB_FK; k0 <= pmax; k0 += GB_FK) {
        __syncthreads();
        for (int i = threadIdx.x; i < GB_FK * hd; i += blockDim.x) {
            const int j = i / hd, d = i % hd, key = k0 + j;
            const bool ok = key <= pmax;
            sk[j * ks + d] = ok ? kb[(int64_t)key * kstride + d] : 0.f;
            sv[j * hd + d] = ok ? vb[(int64_t)key * kstride + d] : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int w = 0; w < GB_FQ_PER_WARP; w++) {
            const int qi = wid * GB_FQ_PER_WARP + w, t = t0 + qi;
            if (t >= T) continue;
            const int p = P0 + t, lo = gb_key_lo(p, window);
            if (k0 > p || k0 + GB_FK <= lo) continue;
            const int key = k0 + lane;
            float s = -INFINITY;
            if (key <= p && key >= lo) {
                const float *qr = sq + qi * hd;
                const float *kr = sk + lane * ks;
                float acc = 0.f;
#pragma unroll 16
                for (int d = 0; d < hd; d++)
                    acc += qr[d] * kr[d];
                s = acc * scale;
            }
            const int nk = p - k0 + 1 < GB_FK ? p - k0 + 1 : GB_FK;
            gb_osm_step(st[w], s, sv, hd, nk, hd, lane);
        }
    }
#pragma unroll
    for (int w = 0; w < GB_FQ_PER_WARP; w++) {
        const int t = t0 + wid * GB_FQ_PER_WARP + w;
        if (t >= T) continue;
        float *orow = out + ((int64_t)(bi * T + t) * nh + h) * hd;
        const float inv = st[w].l > 0.f ? 1.0f / st[w].l : 0.f;
#pragma unroll
        for (int i = 0; i < GB_DPL; i++) {
            const int d = lane + 32 * i;
            if (d < hd) orow[d] = st[w].acc[i] * inv;
        }
    }
}

/* ---------------- flash decode: split-KV + merge ---------------- */

/* Keys per split: a multiple of 32 giving at most 64 splits over the cache capacity. */
static int gb_split_chunk(int cap) {
    int c = 32;
    while ((cap + c - 1) / c > 64)
        c += 32;
    return c;
}

/* One warp per (row = (b, t, h), split); partial = [m, l, acc[hd]]. */
__global__ void k_flash_decode_split(float *part, const float *q, const float *kc, const float *vc,
                                     int B, int T, int cap, int nh, int nkv, int hd, float scale,
                                     int window, int chunk, int nsplit, const int *dpos, int pos0) {
    const int lane = threadIdx.x & 31;
    const int item = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (item >= B * T * nh * nsplit) return;
    const int sidx = item % nsplit, row = item / nsplit;
    const int h = row % nh, t = (row / nh) % T, bi = row / (nh * T);
    const int p = (dpos ? *dpos : pos0) + t;
    const int lo = max(gb_key_lo(p, window), sidx * chunk);
    const int hi = min(p, (sidx + 1) * chunk - 1);
    const int kvh = h / (nh / nkv);
    const float *qr = q + (int64_t)row * hd;
    const int64_t kstride = (int64_t)nkv * hd;
    const float *kb = kc + ((int64_t)bi * cap * nkv + kvh) * hd;
    const float *vb = vc + ((int64_t)bi * cap * nkv + kvh) * hd;
    /* q in registers: lane keeps all hd values is too many; read through L1 instead */
    gb_osm o;
    gb_osm_init(o);
    const bool vec4 = (hd & 3) == 0;
    for (int k0 = lo; k0 <= hi; k0 += 32) {
        const int j = k0 + lane;
        float s = -INFINITY;
        if (j <= hi) {
            const float *kr = kb + (int64_t)j * kstride;
            float acc = 0.f;
            if (vec4) {
#pragma unroll 8
                for (int d = 0; d < hd; d += 4) {
                    const float4 kv = *(const float4 *)(kr + d);
                    const float4 qv = *(const float4 *)(qr + d);
                    acc += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
                }
            } else {
                for (int d = 0; d < hd; d++)
                    acc += qr[d] * kr[d];
            }
            s = acc * scale;
        }
        const int nk = hi - k0 + 1 < 32 ? hi - k0 + 1 : 32;
        gb_osm_step(o, s, vb + (int64_t)k0 * kstride, kstride, nk, hd, lane);
    }
    GB_SPLIT_PARTIAL_STORE(part + (int64_t)item * (hd + 2), o, GB_DPL, hd, lane);
}

/* Split-KV decode for grouped heads: a cluster of nsplit blocks (4 warps each) per
 * (sequence, KV head). Each block takes an equal share of the keys [lo, p], stages 32-key
 * tiles of K and V in shared memory with all loads in flight at once, scores every query head
 * of the group against them (each warp keeps the online-softmax state of up to GB_DQ heads),
 * and stores its partial (max, sum, output) into block 0's shared memory through distributed
 * shared memory; after one cluster barrier block 0 merges them and writes the rows. No global
 * scratch, no atomics, one launch. */
#define GB_DQ 2
#define GB_DSPLIT 8 /* most blocks per cluster (the portable cluster size) */
/* ROPE: q and the new k are the projections before RoPE; the blocks rotate their group's q
 * in shared memory, and the block whose keys end at p rotates the new k, writes k and v to the
 * cache at p and scores them from shared memory (rope_kv_write folded in: one launch fewer). */
struct gb_rope_in {
    const float *k, *v;    /* [batch, nkv * hd] new rows (k before RoPE) */
    const float *inv_freq; /* [hd / 2] */
    float af;
};

/* 16-byte asynchronous copy global -> shared (sm_80+), L2 only; completes at gb_cp_wait. */
__device__ __forceinline__ void gb_cp_async16(void *smem, const void *gmem) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void gb_cp_wait() {
    asm volatile("cp.async.wait_all;" ::: "memory");
}

/* HD > 0: head_dim known at compile time (64, 128: the fast tile loop below); 0: any. */
template <bool ROPE, int HD>
__global__ void __launch_bounds__(128)
    k_flash_decode_cluster(float *out, const float *q, float *kc, float *vc, int cap, int nh,
                           int nkv, int hd_arg, float scale, int window, const int *dpos, int pos0,
                           gb_rope_in rin) {
    const int hd = HD > 0 ? HD : hd_arg;
    constexpr int DPL = HD > 0 ? HD / 32 : GB_DPL; /* output dims per lane */
    namespace cg = cooperative_groups;
    cg::cluster_group cl = cg::this_cluster();
    gb_pdl_trigger();
    /* Distributed shared memory may be written only once every block of the cluster runs:
     * arrive here, wait just before the partials are pushed (by then the wait is free). */
    asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
    extern __shared__ float4 smem4[];
    float *smem = (float *)smem4;
    const int g = nh / nkv, ks = hd + 4;
    float *sk = smem; /* [32][hd + 4]: 16-byte rows (cp.async), conflict-free float4 reads */
    float *sv = sk + 32 * ks; /* [32][hd] */
    float *sq = sv + 32 * hd; /* [g][hd] */
    float *ss = sq + g * hd;  /* [g][32] scores */
    float *snk = ss + g * 32; /* ROPE: [2][hd] the new k (rotated) and v, 16-byte aligned */
    /* block 0's: [nsplit][g][hd + 2] every block's partials (m, l, acc), pushed there by
     * their blocks */
    float *spall = snk + 2 * hd;
    const int nsplit = (int)cl.num_blocks(), rank = (int)cl.block_rank();
    const int bi = blockIdx.y / nkv, kvh = blockIdx.y % nkv;
    const int tid = threadIdx.x, lane = tid & 31, wid = tid >> 5;
    const int p = dpos ? *dpos : pos0;
    const int key0 = gb_key_lo(p, window), per = (p - key0 + nsplit) / nsplit;
    const int lo = key0 + rank * per, hi = min(p, lo + per - 1);
    const int64_t kstride = (int64_t)nkv * hd;
    const float *kb = kc + ((int64_t)bi * cap * nkv + kvh) * hd;
    const float *vb = vc + ((int64_t)bi * cap * nkv + kvh) * hd;
    const float *qg = q + ((int64_t)bi * nh + (int64_t)kvh * g) * hd;
    const bool owns_p = ROPE && lo <= p && p <= hi; /* this block scores key p */
    const int hd4 = hd / 4;
    /* The first tile of cached keys and values is requested before the PDL wait: rows before
     * p were written by earlier steps, and every step starts behind a full stream dependency
     * (a graph launch, a stream copy or the plain set_pos launch: prev_pdl = 0), so they are
     * complete; within a step no kernel writes them. The position comes from d_pos, set the
     * same way before the step. Not the predecessors in general: a kernel that triggers its
     * dependents before its own wait (this one does) lets them start while the kernel before
     * it still runs. Row p (the new key, ROPE) is not in the cache yet: it comes from shared
     * memory below. */
    const int nk0 = lo <= hi ? min(32, hi - lo + 1) : 0;
    for (int i = tid; i < nk0 * hd4; i += blockDim.x) {
        const int j = i / hd4, d = (i % hd4) * 4;
        if (ROPE && lo + j == p) continue;
        gb_cp_async16(sk + j * ks + d, kb + (int64_t)(lo + j) * kstride + d);
        gb_cp_async16(sv + j * hd + d, vb + (int64_t)(lo + j) * kstride + d);
    }
    gb_pdl_wait();
    /* q and the new k / v: all loads issued before the shared-memory stores */
    if (ROPE && owns_p) {
        const int64_t row = ((int64_t)bi * nkv + kvh) * hd;
        for (int i = tid; i < hd; i += blockDim.x) {
            const float kn = rin.k[row + i], vn = rin.v[row + i];
            snk[i] = kn;
            snk[hd + i] = vn;
        }
    }
    for (int i = tid; i < g * hd; i += blockDim.x)
        sq[i] = qg[i];
    if (ROPE) {
        const int half = hd / 2;
        __syncthreads();
        for (int i = tid; i < (g + owns_p) * half; i += blockDim.x) {
            const int h = i / half;
            gb_rope_pair(h < g ? sq + h * hd : snk, i % half, half, (float)p, rin.inv_freq, rin.af);
        }
        __syncthreads();
        if (owns_p) { /* the cache row at p, for the steps after this one */
            const int64_t dst = (((int64_t)bi * cap + p) * nkv + kvh) * hd;
            for (int i = tid; i < hd; i += blockDim.x) {
                kc[dst + i] = snk[i];
                vc[dst + i] = snk[hd + i];
            }
        }
    }
    gb_osm st[GB_DQ];
#pragma unroll
    for (int w = 0; w < GB_DQ; w++)
        gb_osm_init(st[w]);
    for (int k0 = lo; k0 <= hi; k0 += 32) {
        const int nk = min(32, hi - k0 + 1);
        if (k0 == lo) { /* the tile requested before the wait; row p from shared memory */
            gb_cp_wait();
            if (ROPE && owns_p && p - k0 < 32)
                for (int i = tid; i < hd; i += blockDim.x) {
                    sk[(p - k0) * ks + i] = snk[i];
                    sv[(p - k0) * hd + i] = snk[hd + i];
                }
        } else {
            __syncthreads(); /* the previous tile is no longer read */
#pragma unroll 4
            for (int i = tid; i < nk * hd4; i += blockDim.x) {
                const int j = i / hd4, d = (i % hd4) * 4;
                float4 kv4, vv4;
                if (ROPE && k0 + j == p) { /* written above by this block: take it from smem */
                    kv4 = *(const float4 *)(snk + d);
                    vv4 = *(const float4 *)(snk + hd + d);
                } else {
                    kv4 = *(const float4 *)(kb + (int64_t)(k0 + j) * kstride + d);
                    vv4 = *(const float4 *)(vb + (int64_t)(k0 + j) * kstride + d);
                }
                *(float4 *)(sk + j * ks + d) = kv4;
                *(float4 *)(sv + j * hd + d) = vv4;
            }
        }
        __syncthreads();
        /* rows j >= nk hold stale values: their scores are replaced by -inf, and the value
         * pass reads only the first nk rows */
        for (int i = tid; i < g * 32; i += blockDim.x) {
            const int gi = i >> 5, j = i & 31;
            const float a = gb_qk_dot4<HD>(sq + gi * hd, sk + j * ks, hd);
            ss[i] = j < nk ? a * scale : -INFINITY;
        }
        __syncthreads();
#pragma unroll
        for (int w = 0; w < GB_DQ; w++) {
            const int gi = wid + 4 * w;
            if (gi >= g) continue;
            if (HD > 0)
                gb_osm_step_fast<DPL>(st[w], ss[gi * 32 + lane], sv, nk, lane);
            else
                gb_osm_step(st[w], ss[gi * 32 + lane], sv, hd, nk, hd, lane);
        }
    }
    /* The partials go straight into block 0's spall: stores to distributed shared memory
     * (after the wait that matches the arrival at the start), then one cluster barrier; block
     * 0 merges from its own shared memory, and no block reads another's after the barrier, so
     * none has to wait for block 0 (a pull merge, remote loads by block 0 and a second barrier
     * to keep the other blocks alive, took 0.9 us more per launch on an H200). */
    asm volatile("barrier.cluster.wait.aligned;" ::: "memory");
    float *dst0 = cl.map_shared_rank(spall, 0) + (int64_t)rank * g * (hd + 2);
#pragma unroll
    for (int w = 0; w < GB_DQ; w++) {
        const int gi = wid + 4 * w;
        if (gi < g) GB_SPLIT_PARTIAL_STORE(dst0 + gi * (hd + 2), st[w], DPL, hd, lane);
    }
    cl.sync(); /* every partial written (release/acquire across the cluster) */
    if (rank == 0)
        gb_split_cluster_merge<DPL, GB_DSPLIT>(spall, nsplit, g, hd, 4, out,
                                               (int64_t)bi * nh + (int64_t)kvh * g, lane, wid);
}

__global__ void k_flash_decode_merge(float *out, const float *part, int rows, int hd, int nsplit) {
    gb_pdl_trigger();
    gb_pdl_wait();
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;
    const float *pr = part + (int64_t)row * nsplit * (hd + 2);
    float m = -INFINITY;
    for (int s = 0; s < nsplit; s++)
        if (pr[(int64_t)s * (hd + 2) + 1] > 0.f) m = fmaxf(m, pr[(int64_t)s * (hd + 2)]);
    float l = 0.f, acc[GB_DPL];
#pragma unroll
    for (int i = 0; i < GB_DPL; i++)
        acc[i] = 0.f;
    for (int s = 0; s < nsplit; s++) {
        const float *ps = pr + (int64_t)s * (hd + 2);
        if (!(ps[1] > 0.f)) continue;
        const float c = expf(ps[0] - m);
        l += ps[1] * c;
#pragma unroll
        for (int i = 0; i < GB_DPL; i++) {
            const int d = lane + 32 * i;
            if (d < hd) acc[i] += ps[2 + d] * c;
        }
    }
    const float inv = l > 0.f ? 1.0f / l : 0.f;
    float *orow = out + (int64_t)row * hd;
#pragma unroll
    for (int i = 0; i < GB_DPL; i++) {
        const int d = lane + 32 * i;
        if (d < hd) orow[d] = acc[i] * inv;
    }
}

/* ---------------- decode launch ---------------- */

static bool gb_decode_cluster_ok(const gb_attn_args *a) {
    return a->n_tokens == 1 && a->n_kv_heads > 0 && a->n_heads % a->n_kv_heads == 0 &&
           a->n_heads / a->n_kv_heads <= 4 * GB_DQ && a->head_dim % 4 == 0 &&
           a->head_dim <= GB_MAXD;
}

/* One cluster of up to GB_DSPLIT blocks per (sequence, KV head); rope: see k_flash_decode_cluster.
 */
static void gb_decode_cluster(gb_cuda *st, bool rope, float *out, const float *q, float *kcache,
                              float *vcache, const gb_attn_args *a, gb_rope_in rin) {
    const int B = a->batch, nh = a->n_heads, nkv = a->n_kv_heads, hd = a->head_dim, cap = a->cap;
    const int g = nh / nkv;
    const int most = st->dsplit; /* GB_DSPLIT unless GB_CUDA_DSPLIT asks for fewer */
    const int ns = cap < 32 * most ? (cap + 31) / 32 : most;
    /* K tile (padded rows), V tile, q group, scores, new k/v, every block's partials */
    const size_t floats = (size_t)32 * (hd + 4) + 32 * hd + (size_t)g * hd + g * 32 +
                          2 * (size_t)hd + (size_t)ns * g * (hd + 2);
    const size_t sm = floats * sizeof(float);
    const int hdk = gb_attn_fast_hd(st, hd);
    void (*k)(float *, const float *, float *, float *, int, int, int, int, float, int, const int *,
              int, gb_rope_in) =
        hdk == 64 ? (rope ? k_flash_decode_cluster<true, 64> : k_flash_decode_cluster<false, 64>)
        : hdk == 128
            ? (rope ? k_flash_decode_cluster<true, 128> : k_flash_decode_cluster<false, 128>)
            : (rope ? k_flash_decode_cluster<true, 0> : k_flash_decode_cluster<false, 0>);
    if (sm > 48 * 1024 &&
        GB_CU(st, cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm)))
        return;
    gb_launch_ex(st, k, dim3(ns, B * nkv), dim3(128), sm, (unsigned)ns, out, q, kcache, vcache, cap,
                 nh, nkv, hd, a->scale, a->sliding_window, gb_cuda_dpos(st), a->pos0, rin);
    GB_CU_LAUNCH(st, "flash_decode_cluster");
}

void gb_cuda_rope_kv_attention(gb_backend *b, gb_attn_impl impl, float *out, float *q, float *k,
                               const float *v, float *kcache, float *vcache, const gb_rope_args *r,
                               const gb_attn_args *a, void *scratch) {
    gb_cuda *st = gb_cuda_of(b);
    if (st->failed || GB_SKIPPED(st, GB_SKIP_ATTN, a->batch * a->n_tokens)) return;
    if (impl == GB_ATTN_FLASH && st->fuse_rope && gb_decode_cluster_ok(a) &&
        r->n_heads == a->n_heads && r->head_dim == a->head_dim && a->batch > 0) {
        gb_rope_in rin = {k, v, r->inv_freq, r->attn_factor};
        gb_decode_cluster(st, true, out, q, kcache, vcache, a, rin);
        return;
    }
    gb_cuda_rope_kv_write(b, q, k, v, kcache, vcache, r, a);
    gb_cuda_attention(b, impl, out, q, kcache, vcache, a, scratch);
}

/* ---------------- dispatch ---------------- */

size_t gb_cuda_attn_scratch_bytes(gb_backend *b, gb_attn_impl impl, const gb_attn_args *a) {
    (void)b;
    const size_t rows = (size_t)a->batch * a->n_tokens * a->n_heads;
    if (impl == GB_ATTN_EAGER) return rows * (size_t)a->cap * sizeof(float);
    if (impl == GB_ATTN_FLASH && a->n_tokens == 1) {
        if (gb_decode_cluster_ok(a)) return 0; /* partials stay in shared memory */
        const int chunk = gb_split_chunk(a->cap);
        const size_t nsplit = (size_t)((a->cap + chunk - 1) / chunk);
        return rows * nsplit * (size_t)(a->head_dim + 2) * sizeof(float);
    }
    return 0;
}

void gb_cuda_attention(gb_backend *b, gb_attn_impl impl, float *out, const float *q,
                       const float *kcache, const float *vcache, const gb_attn_args *a,
                       void *scratch) {
    gb_cuda *st = gb_cuda_of(b);
    if (st->failed) return;
    const int B = a->batch, T = a->n_tokens, nh = a->n_heads, nkv = a->n_kv_heads, hd = a->head_dim,
              cap = a->cap;
    if (B <= 0 || T <= 0) return;
    if (hd > GB_MAXD || nkv <= 0 || nh % nkv != 0) {
        gb_cuda_check(st, cudaErrorInvalidValue, "attention: unsupported head_dim or head counts",
                      __FILE__, __LINE__);
        return;
    }
    const int *dpos = gb_cuda_dpos(st);
    const int rows = B * T * nh;
    if (impl == GB_ATTN_EAGER) {
        float *s = (float *)scratch;
        dim3 g1((cap + 127) / 128, rows);
        k_eager_scores<<<g1, 128, 0, st->stream>>>(s, q, kcache, T, cap, nh, nkv, hd, a->scale,
                                                   a->sliding_window, dpos, a->pos0);
        GB_CU_LAUNCH(st, "eager_scores");
        k_eager_softmax<<<rows, 256, 0, st->stream>>>(s, T, cap, dpos, a->pos0);
        GB_CU_LAUNCH(st, "eager_softmax");
        k_eager_pv<<<rows, ((hd + 31) / 32) * 32, 0, st->stream>>>(out, s, vcache, T, cap, nh, nkv,
                                                                   hd, dpos, a->pos0);
        GB_CU_LAUNCH(st, "eager_pv");
        return;
    }
    if (impl == GB_ATTN_FLASH && T == 1) {
        const int chunk = gb_split_chunk(cap);
        const int nsplit = (cap + chunk - 1) / chunk;
        float *part = (float *)scratch;
        if (gb_decode_cluster_ok(a)) {
            gb_decode_cluster(st, false, out, q, (float *)kcache, (float *)vcache, a, gb_rope_in{});
            return;
        } else {
            const int items = rows * nsplit;
            k_flash_decode_split<<<(items + 3) / 4, 128, 0, st->stream>>>(
                part, q, kcache, vcache, B, T, cap, nh, nkv, hd, a->scale, a->sliding_window, chunk,
                nsplit, dpos, a->pos0);
            GB_CU_LAUNCH(st, "flash_decode_split");
        }
        gb_launch(st, k_flash_decode_merge, (rows + 3) / 4, 128, 0, out, (const float *)part, rows,
                  hd, nsplit);
        GB_CU_LAUNCH(st, "flash_decode_merge");
        return;
    }
    if (impl == GB_ATTN_FLASH) {
        const size_t sm =
            ((size_t)GB_FQ * hd + (size_t)GB_FK * (hd + 1) + (size_t)GB_FK * hd) * sizeof(float);
        if (sm > 48 * 1024 &&
            GB_CU(st, cudaFuncSetAttribute(k_flash_prefill,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm)))
            return;
        dim3 g((T + GB_FQ - 1) / GB_FQ, B * nh);
        k_flash_prefill<<<g, GB_FQ_WARPS * 32, sm, st->stream>>>(out, q, kcache, vcache, T, cap, nh,
                                                                 nkv, hd, a->scale,
                                                                 a->sliding_window, dpos, a->pos0);
        GB_CU_LAUNCH(st, "flash_prefill");
        return;
    }
    k_sdpa<<<(rows + 3) / 4, 128, 0, st->stream>>>(out, q, kcache, vcache, B, T, cap, nh, nkv, hd,
                                                   a->scale, a->sliding_window, dpos, a->pos0);
    GB_CU_LAUNCH(st, "sdpa");
}
