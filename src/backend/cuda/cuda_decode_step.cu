/* The whole decode step of one sequence in one persistent kernel (backend op decode_step),
 * for the Llama-3.2-1B shape: hidden 2048, 32 query heads and 8 KV heads of 64, intermediate
 * 8192, SiLU, bf16 weights, float32 activations and KV cache, any vocabulary that is a
 * multiple of 4, up to GB_STEP_MAX_LAYERS layers and GB_DS_MAX_POS positions. Other shapes
 * and calls decline (the engine then runs the kernel-per-op chain, cuda_matmul.cu and
 * friends). H200, 1B best config (session 11): 1382.7 tok/s against the chain's 1173.4, 80.8 %
 * of the copy ceiling.
 *
 * Why: at batch 1 the step is a chain of ~7 dependent ops per layer. Launched as kernels, each
 * boundary stops the weight stream for ~2.5 us (docs/performance.md, sessions 3-10), and the
 * 1B step took 0.85 ms against 0.54-0.58 ms of streaming. Here one block per SM streams its
 * share of every matrix of the step, in execution order, into a ring of shared-memory pages
 * and never waits for activations to do so; the activations pass between blocks as words
 * that carry their own readiness.
 *
 * Design (one block per SM, all resident; 8 consumer warps and one producer warp):
 * - The producer thread walks the block's pages (q,k,v, o_proj, gate/up, down per layer, then
 *   the output head: static shares, 4 rows of 2048 or one row of 8192 per 16 KiB page) and
 *   copies them into a ring of GB_DS_PAGES pages with bulk copies completing on mbarriers. Few
 *   pages of a block are requested and not yet arrived (GB_DS_INFLIGHT near the hand-offs,
 *   GB_DS_INFLIGHT_HI deep in streaming phases): more requests in flight do not raise the
 *   bandwidth, they only queue ahead of the step's dependent loads (H200, 1B best config,
 *   session 11: ITL 0.806 ms with 6 everywhere, 0.789 with 4, 0.774 with 3, 0.723 with 2 / 4).
 * - Stage s of the ring belongs to consumer warp s % 8, which multiplies its pages by the op's
 *   input (in shared memory) and writes the output rows it completes.
 * - Hand-offs: every activation a block writes for another is an 8-byte word (float bits,
 *   epoch), stored at once; a consumer polls the words it needs until each carries the epoch
 *   of this launch and layer, as NCCL's low-latency protocol does. A hand-off is then one
 *   store reaching L2 and one load, where a store, a fence, a counter, a poll and a load of the
 *   data took 2-3 us under the stream (the prototype, tests/cuda/bench_cuda_mega.cu on branch
 *   s10-mega: 855.0 -> 768.5 us per step, session 11). The epochs
 *   are unique per launch (the last block to finish advances the generation), so a word of
 *   an earlier layer or launch never matches.
 * - RMSNorm is recomputed by every block that needs it (2048 values); each query head's
 *   attention runs on one block (an online softmax over chunks of 256 keys; the first chunk's
 *   cached K/V requested before its q,k,v words arrive), the first head of each KV group also
 *   writes the new K/V row into the cache.
 * - Buffers are reused from layer to layer without barriers: a buffer is written again only
 *   after every block has passed a later hand-off that needed all of its readers done.
 *
 * The arithmetic is the chain's (float32 dot products of bf16 weights, the same RMSNorm, RoPE
 * and softmax), summed in another order: logits agree within rel L2 ~6e-7 (test_cuda_engine). */
#include "backend/cuda/cuda_bulk.cuh"
#include "backend/cuda/cuda_internal.h"

#define DS_H 2048
#define DS_NH 32
#define DS_NKV 8
#define DS_HD 64
#define DS_FF 8192
#define DS_PAGE 16384
#define GB_DS_PAGES 8 /* ring pages per block */
/* pages requested and not yet arrived, at most: near the step's hand-offs, and deep in a
 * streaming phase (gate/up, down and the output head past a block's first 8 pages)
 * (GB_CUDA_DS_INFLIGHT, GB_CUDA_DS_INFLIGHT_HI). H200, the prototype (session 11): 3 everywhere
 * 744.9-747.1 us per step; 2 / 4 with down deep past 4 pages 721.6-723.9, past 8 713.8-714.4,
 * past 12 or 16 719.1-720.9 */
#define GB_DS_INFLIGHT 2
#define GB_DS_INFLIGHT_HI 4
#define DS_NCW 8 /* consumer warps */
#define DS_CT (DS_NCW * 32)
#define DS_THREADS (DS_CT + 32) /* + the producer warp */
#define DS_CHUNK DS_CT          /* keys per attention chunk: one per consumer thread */
/* Positions the step is used for, at most: its attention runs each query head on one block,
 * which the chain's split-KV attention overtakes at long contexts (H200, 1B best config,
 * session 11: fused / chain 1390.9 / 1169.6 tok/s at 128 prompt tokens, 1032.7 / 965.8 at
 * 1024, 814.8 / 810.7 at 2048, 596.3 / 622.5 at 4000) */
#define GB_DS_MAX_POS 2048

typedef __nv_bfloat16 ds_bf16;
typedef unsigned long long ds_word;

struct ds_layer {
    const ds_bf16 *wq, *wk, *wv, *wo, *wg, *wu, *wd;
    const float *n1, *n2;
    float *kc, *vc;
};
struct ds_params {
    ds_layer L[GB_STEP_MAX_LAYERS];
    int nl, vocab, pos0;
    unsigned inflight, inflight_hi; /* GB_DS_INFLIGHT(_HI), or the environment's (1..8) */
    const int *dpos;                /* device position (set_pos), or NULL: pos0 */
    int32_t *ids; /* in: the token; out: the argmax of the logits (as gb_cuda_argmax) */
    gb_step_tail tail;
    unsigned long long *key; /* the argmax's 64-bit key (zero between launches) */
    const ds_bf16 *emb, *head;
    const float *nf, *inv_freq;
    float af, eps, scale;
    float *logits;
    /* hand-off words: q,k,v rows, attention output, residual after o_proj (xa) and after
     * down or the embedding (xb), act(gate) * up (h) */
    ds_word *lqkv, *latt, *lxa, *lxb, *lh;
    unsigned *gen, *done; /* launches so far; blocks finished in this launch */
};

/* ---- hand-off words ---- */
__device__ __forceinline__ void ds_put(ds_word *p, float v, unsigned e) {
    const ds_word w = ((ds_word)e << 32) | __float_as_uint(v);
    asm volatile("st.relaxed.gpu.global.u64 [%0], %1;" ::"l"(p), "l"(w) : "memory");
}
__device__ __forceinline__ ds_word ds_ld(const ds_word *p) {
    ds_word v;
    asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
}
/* two words, each single-copy atomic (a vector access is one access per element) */
__device__ __forceinline__ ulonglong2 ds_ld2(const ds_word *p) {
    ulonglong2 v;
    asm volatile("ld.relaxed.gpu.global.v2.u64 {%0, %1}, [%2];"
                 : "=l"(v.x), "=l"(v.y)
                 : "l"(p)
                 : "memory");
    return v;
}
__device__ __forceinline__ bool ds_ok(ds_word w, unsigned e) {
    return (unsigned)(w >> 32) == e;
}
__device__ __forceinline__ uint64_t ds_clock() {
    uint64_t t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
/* A dependency that never arrives (a bug, or blocks that were not all resident) would hang
 * the GPU: abort the kernel after 2 s instead; the backend then reports the launch failure. */
__device__ __noinline__ void ds_hang_check(uint64_t t0) {
    if (ds_clock() - t0 > 2000000000ull) __trap();
}
__device__ __forceinline__ float ds_wait1(const ds_word *p, unsigned e) {
    ds_word w = ds_ld(p);
    const uint64_t t0 = ds_clock();
    for (unsigned n = 0; !ds_ok(w, e); n++) {
        w = ds_ld(p);
        if ((n & 1023u) == 1023u) ds_hang_check(t0);
    }
    return __uint_as_float((unsigned)w);
}
/* dst[0, 512 NP) = the words src[...] once each has epoch e: consumer thread t polls the pairs
 * t + 256 k, all requested at once, then only those not ready yet */
template <int NP>
__device__ __forceinline__ void ds_gather(const ds_word *src, float *dst, unsigned e, int tid) {
    ulonglong2 v[NP];
#pragma unroll
    for (int k = 0; k < NP; k++)
        v[k] = ds_ld2(src + 2 * (tid + DS_CT * k));
    const uint64_t t0 = ds_clock();
    for (unsigned n = 0;; n++) {
        bool ok = true;
#pragma unroll
        for (int k = 0; k < NP; k++)
            ok &= ds_ok(v[k].x, e) && ds_ok(v[k].y, e);
        if (ok) break;
#pragma unroll
        for (int k = 0; k < NP; k++)
            if (!ds_ok(v[k].x, e) || !ds_ok(v[k].y, e)) v[k] = ds_ld2(src + 2 * (tid + DS_CT * k));
        if ((n & 1023u) == 1023u) ds_hang_check(t0);
    }
#pragma unroll
    for (int k = 0; k < NP; k++)
        ((float2 *)dst)[tid + DS_CT * k] =
            make_float2(__uint_as_float((unsigned)v[k].x), __uint_as_float((unsigned)v[k].y));
}

/* pages [*p0, *p1) of `total` for this block */
__device__ __forceinline__ void ds_range(int total, int *p0, int *p1) {
    *p0 = (int)((long long)total * blockIdx.x / gridDim.x);
    *p1 = (int)((long long)total * (blockIdx.x + 1) / gridDim.x);
}
/* the block that runs the attention of query head hh (gridDim.x >= DS_NH) */
__device__ __forceinline__ int ds_att_block(int hh) {
    return hh * (int)gridDim.x / DS_NH;
}
/* the 256 consumer threads only (the producer warp never joins) */
__device__ __forceinline__ void ds_cbar() {
    asm volatile("bar.sync 1, %0;" ::"n"(DS_CT) : "memory");
}
__device__ __forceinline__ void ds_mbar_wait(uint64_t *b, unsigned parity) {
    const uint64_t t0 = ds_clock();
    for (unsigned n = 0; !gb_mbar_test(b, parity); n++)
        if ((n & 1023u) == 1023u) ds_hang_check(t0);
}

/* ---- producer ---- */
struct ds_prod {
    unsigned char *ring;
    uint64_t *full, *empty;
    unsigned it; /* pages issued so far */
    unsigned lo, hi;
    bool deep; /* the next page is deep in a streaming phase */
    /* a free stage, and page it - (deep ? hi : lo) arrived */
    __device__ void slot(int s) {
        const unsigned inflight = deep ? hi : lo;
        if (it >= inflight) {
            const unsigned j = it - inflight;
            ds_mbar_wait(&full[j % GB_DS_PAGES], (j / GB_DS_PAGES) & 1u);
        }
        if (it >= GB_DS_PAGES) ds_mbar_wait(&empty[s], (it / GB_DS_PAGES - 1) & 1u);
    }
    __device__ void issue(const void *s0, unsigned b0, const void *s1 = nullptr, unsigned b1 = 0) {
        const int s = (int)(it % GB_DS_PAGES);
        slot(s);
        gb_mbar_expect(&full[s], b0 + b1);
        gb_bulk_copy(ring + (size_t)s * DS_PAGE, s0, b0, &full[s]);
        if (b1) gb_bulk_copy(ring + (size_t)s * DS_PAGE + b0, s1, b1, &full[s]);
        it++;
    }
};

__device__ void ds_producer(const ds_params &p, ds_prod &pr) {
    int p0, p1;
    for (int l = 0; l < p.nl; l++) {
        const ds_layer &L = p.L[l];
        ds_range(768, &p0, &p1); /* q (512 pages of 4 rows), k (128), v (128) */
        for (int pg = p0; pg < p1; pg++) {
            const ds_bf16 *w = pg < 512   ? L.wq + (size_t)pg * 4 * DS_H
                               : pg < 640 ? L.wk + (size_t)(pg - 512) * 4 * DS_H
                                          : L.wv + (size_t)(pg - 640) * 4 * DS_H;
            pr.issue(w, DS_PAGE);
        }
        ds_range(512, &p0, &p1);
        for (int pg = p0; pg < p1; pg++)
            pr.issue(L.wo + (size_t)pg * 4 * DS_H, DS_PAGE);
        ds_range(DS_FF / 2, &p0, &p1); /* 2 gate rows, then the same 2 up rows */
        for (int pg = p0; pg < p1; pg++) {
            pr.deep = pg - p0 >= 8;
            pr.issue(L.wg + (size_t)pg * 2 * DS_H, DS_PAGE / 2, L.wu + (size_t)pg * 2 * DS_H,
                     DS_PAGE / 2);
        }
        ds_range(DS_H, &p0, &p1); /* one down row of 8192 */
        for (int pg = p0; pg < p1; pg++) {
            pr.deep = pg - p0 >= 8;
            pr.issue(L.wd + (size_t)pg * DS_FF, DS_PAGE);
        }
        pr.deep = false;
    }
    ds_range(p.vocab / 4, &p0, &p1);
    for (int pg = p0; pg < p1; pg++) {
        pr.deep = pg - p0 >= 8;
        pr.issue(p.head + (size_t)pg * 4 * DS_H, DS_PAGE);
    }
}

/* ---- consumers ---- */
struct ds_cons {
    unsigned char *ring;
    uint64_t *full, *empty;
    unsigned it; /* pages of the stream passed so far (every warp counts all of them) */
    int w, lane, tid, stage;
    float *act;  /* shared: the op's input (2048 or 8192 floats) */
    float *xres; /* shared: the residual rows this block updates (<= 64) */
    float *sred; /* shared: 2 * DS_NCW floats for reductions */
    unsigned e0; /* epoch of layer 0 (layer l: e0 + l; xb before layer l: e0 + l) */
};

/* Page c.it if it is warp w's: waits for it and returns its words; NULL when another warp
 * takes it. Stage s belongs to warp s % 8 and is consumed in order, so a warp never waits on
 * a phase of a stage while an earlier phase of it is unconsumed. */
__device__ __forceinline__ const uint4 *ds_take(ds_cons &c) {
    const int s = (int)(c.it % GB_DS_PAGES);
    if (s % DS_NCW != c.w) return nullptr;
    c.stage = s;
    ds_mbar_wait(&c.full[s], (c.it / GB_DS_PAGES) & 1u);
    return (const uint4 *)(c.ring + (size_t)s * DS_PAGE);
}
__device__ __forceinline__ void ds_release(ds_cons &c) {
    __syncwarp();
    if (c.lane == 0) gb_mbar_arrive(&c.empty[c.stage]);
}
__device__ __forceinline__ void ds_fma8(float &acc, const uint4 &wv, const float4 &a0,
                                        const float4 &a1) {
    acc += __uint_as_float(wv.x << 16) * a0.x + __uint_as_float(wv.x & 0xffff0000u) * a0.y +
           __uint_as_float(wv.y << 16) * a0.z + __uint_as_float(wv.y & 0xffff0000u) * a0.w +
           __uint_as_float(wv.z << 16) * a1.x + __uint_as_float(wv.z & 0xffff0000u) * a1.y +
           __uint_as_float(wv.w << 16) * a1.z + __uint_as_float(wv.w & 0xffff0000u) * a1.w;
}
/* four rows of 2048 (one page) against act; every lane gets the four sums */
__device__ __forceinline__ void ds_dot4(const ds_cons &c, const uint4 *pg, float *acc) {
    acc[0] = acc[1] = acc[2] = acc[3] = 0.f;
    const float4 *a4 = (const float4 *)c.act;
#pragma unroll 4
    for (int k = 0; k < DS_H / 256; k++) {
        const int idx = k * 32 + c.lane;
        const float4 a0 = a4[2 * idx], a1 = a4[2 * idx + 1];
#pragma unroll
        for (int r = 0; r < 4; r++)
            ds_fma8(acc[r], pg[r * (DS_H / 8) + idx], a0, a1);
    }
#pragma unroll
    for (int r = 0; r < 4; r++)
        acc[r] = gb_warp_sum(acc[r]);
}
/* one row of 8192 (one page) against act */
__device__ __forceinline__ float ds_dot1(const ds_cons &c, const uint4 *pg) {
    const float4 *a4 = (const float4 *)c.act;
    float s0 = 0.f, s1 = 0.f;
#pragma unroll 8
    for (int k = 0; k < DS_FF / 256; k += 2) {
        const int i0 = k * 32 + c.lane, i1 = i0 + 32;
        ds_fma8(s0, pg[i0], a4[2 * i0], a4[2 * i0 + 1]);
        ds_fma8(s1, pg[i1], a4[2 * i1], a4[2 * i1 + 1]);
    }
    return gb_warp_sum(s0 + s1);
}
__device__ __forceinline__ float ds_pick4(const float *acc, int i) {
    return i == 0 ? acc[0] : i == 1 ? acc[1] : i == 2 ? acc[2] : acc[3];
}
/* Pages [p0, p1) of the stream, each by the warp that owns its stage: f(pg, page) computes it
 * (and must release it). Every warp passes every page (c.it counts them all). */
template <typename F> __device__ __forceinline__ void ds_pages(ds_cons &c, int p0, int p1, F f) {
    for (int pg = p0; pg < p1; pg++, c.it++) {
        const uint4 *page = ds_take(c);
        if (page) f(pg, page);
    }
}
/* ds_dot4 of a page, then the page released */
__device__ __forceinline__ void ds_page4(ds_cons &c, const uint4 *page, float *acc) {
    ds_dot4(c, page, acc);
    ds_release(c);
}

/* act = nw * (x * rsqrt(mean(x^2) + eps)) of the residual words lx (epoch e), as k_rmsnorm_vec
 * computes it; nwv: the thread's 8 norm weights, loaded before the wait */
__device__ __forceinline__ void ds_norm(const ds_params &p, ds_cons &c, const float4 *nwv,
                                        const ds_word *lx, unsigned e) {
    ds_gather<DS_H / 512>(lx, c.act, e, c.tid);
    ds_cbar();
    const float4 u = ((const float4 *)c.act)[2 * c.tid], v = ((const float4 *)c.act)[2 * c.tid + 1];
    float ss = u.x * u.x + u.y * u.y + u.z * u.z + u.w * u.w + v.x * v.x + v.y * v.y + v.z * v.z +
               v.w * v.w;
    ss = gb_warp_sum(ss);
    if (c.lane == 0) c.sred[c.w] = ss;
    ds_cbar();
    float t = 0.f;
    for (int i = 0; i < DS_NCW; i++)
        t += c.sred[i];
    const float inv = 1.0f / sqrtf(t / (float)DS_H + p.eps);
    float4 *ap = (float4 *)c.act + 2 * c.tid;
    ap[0] = make_float4(nwv[0].x * (u.x * inv), nwv[0].y * (u.y * inv), nwv[0].z * (u.z * inv),
                        nwv[0].w * (u.w * inv));
    ap[1] = make_float4(nwv[1].x * (v.x * inv), nwv[1].y * (v.y * inv), nwv[1].z * (v.z * inv),
                        nwv[1].w * (v.w * inv));
    ds_cbar();
}
__device__ __forceinline__ void ds_norm_w(float4 *nwv, const float *nw, int tid) {
    nwv[0] = ((const float4 *)nw)[2 * tid];
    nwv[1] = ((const float4 *)nw)[2 * tid + 1];
}
/* act = the words la[0, n) (epoch e), xres[i] = the residual words lx[r0 + i] (epoch ex) */
template <int N>
__device__ __forceinline__ void ds_load_act(ds_cons &c, const ds_word *la, unsigned e,
                                            const ds_word *lx, int r0, int nres, unsigned ex) {
    if (c.tid < nres) c.xres[c.tid] = ds_wait1(lx + r0 + c.tid, ex);
    ds_gather<N / 512>(la, c.act, e, c.tid);
    ds_cbar();
}

/* Cached K rows and V values of chunk [c0, c0 + 256) below pos: warp w scores keys c0 + 32 w +
 * 2 i + (lane / 16), lane % 16 holding dims 4 (lane % 16) .. + 3 (a row is one coalesced
 * 256-byte read); warp w accumulates keys c0 + w + 8 i for dims 2 lane, 2 lane + 1. */
__device__ __forceinline__ void ds_kv_chunk(const float *kc, const float *vc, int kvh, int c0,
                                            int pos, const ds_cons &c, float4 *kr, float2 *vr) {
    const int l16 = c.lane & 15, hw = c.lane >> 4;
#pragma unroll
    for (int i = 0; i < 16; i++) {
        const int j = c0 + c.w * 32 + 2 * i + hw;
        kr[i] = j < pos ? __ldcg((const float4 *)(kc + ((size_t)j * DS_NKV + kvh) * DS_HD) + l16)
                        : make_float4(0.f, 0.f, 0.f, 0.f);
    }
#pragma unroll
    for (int i = 0; i < DS_CHUNK / DS_NCW; i++) {
        const int j = c0 + c.w + DS_NCW * i;
        vr[i] = j < pos ? __ldcg((const float2 *)(vc + ((size_t)j * DS_NKV + kvh) * DS_HD) + c.lane)
                        : make_float2(0.f, 0.f);
    }
}

/* Attention of query head hh at position pos over keys [0, pos] (the chain's RoPE, scale and
 * softmax, as an online softmax over chunks of 256 keys); the first head of each KV group writes
 * the new K/V row. sm: shared scratch of >= 1152 floats. */
__device__ void ds_attention(const ds_params &p, ds_cons &c, int l, int hh, int pos, float *sm) {
    float *qs = sm, *ks = sm + DS_HD, *vs = sm + 2 * DS_HD, *sc = sm + 3 * DS_HD;
    float *part = sc + DS_CHUNK, *raw = part + DS_NCW * DS_HD; /* raw: 3 HD */
    const int kvh = hh / (DS_NH / DS_NKV), t = c.tid, l16 = c.lane & 15, hw = c.lane >> 4;
    float *kc = p.L[l].kc, *vc = p.L[l].vc;
    const unsigned e = c.e0 + l;
    float4 kr[16];
    float2 vr[DS_CHUNK / DS_NCW];
    ds_kv_chunk(kc, vc, kvh, 0, pos, c, kr, vr); /* before q,k,v: they do not depend on it */
    if (t < 3 * DS_HD) {
        const int idx = t < DS_HD       ? hh * DS_HD + t
                        : t < 2 * DS_HD ? DS_H + kvh * DS_HD + (t - DS_HD)
                                        : DS_H + DS_NKV * DS_HD + kvh * DS_HD + (t - 2 * DS_HD);
        raw[t] = ds_wait1(p.lqkv + idx, e);
    }
    ds_cbar();
    if (t < DS_HD / 2) { /* RoPE of q and k (rotate-half pairs (i, i + 32)) */
        float s, co;
        sincosf((float)pos * p.inv_freq[t], &s, &co);
        co *= p.af;
        s *= p.af;
        const float q1 = raw[t], q2 = raw[t + DS_HD / 2], k1 = raw[DS_HD + t],
                    k2 = raw[DS_HD + t + DS_HD / 2];
        qs[t] = q1 * co - q2 * s;
        qs[t + DS_HD / 2] = q2 * co + q1 * s;
        ks[t] = k1 * co - k2 * s;
        ks[t + DS_HD / 2] = k2 * co + k1 * s;
    } else if (t < DS_HD / 2 + DS_HD) {
        vs[t - DS_HD / 2] = raw[2 * DS_HD + t - DS_HD / 2];
    }
    ds_cbar();
    if (hh % (DS_NH / DS_NKV) == 0 && t < DS_HD) {
        kc[((size_t)pos * DS_NKV + kvh) * DS_HD + t] = ks[t];
        vc[((size_t)pos * DS_NKV + kvh) * DS_HD + t] = vs[t];
    }
    const float4 q4 = ((const float4 *)qs)[l16], k4 = ((const float4 *)ks)[l16];
    float mrun = -INFINITY, lrun = 0.f, o0 = 0.f, o1 = 0.f;
    for (int c0 = 0; c0 <= pos; c0 += DS_CHUNK) {
        if (c0) {
            ds_cbar(); /* sc and sred of the previous chunk read by every warp */
            ds_kv_chunk(kc, vc, kvh, c0, pos, c, kr, vr);
        }
        float sj = -INFINITY;
#pragma unroll
        for (int i = 0; i < 16; i++) {
            const int j = c0 + c.w * 32 + 2 * i + hw;
            const float4 kv = j == pos ? k4 : kr[i]; /* the new key from shared memory */
            float d = q4.x * kv.x + q4.y * kv.y + q4.z * kv.z + q4.w * kv.w;
#pragma unroll
            for (int o = 8; o > 0; o >>= 1)
                d += __shfl_xor_sync(0xffffffffu, d, o);
            if (j <= pos) {
                d *= p.scale;
                if (l16 == 0) sc[j - c0] = d;
                sj = fmaxf(sj, d);
            }
        }
        float mx = gb_warp_max(sj);
        if (c.lane == 0) c.sred[c.w] = mx;
        ds_cbar();
        mx = c.sred[0];
        for (int i = 1; i < DS_NCW; i++)
            mx = fmaxf(mx, c.sred[i]);
        const float mnew = fmaxf(mrun, mx), alpha = expf(mrun - mnew);
        float pj = 0.f;
        if (c0 + t <= pos) {
            pj = expf(sc[t] - mnew);
            sc[t] = pj;
        }
        const float ps = gb_warp_sum(pj);
        if (c.lane == 0) c.sred[DS_NCW + c.w] = ps;
        ds_cbar();
        float tot = 0.f;
        for (int i = 0; i < DS_NCW; i++)
            tot += c.sred[DS_NCW + i];
        lrun = lrun * alpha + tot;
        o0 *= alpha;
        o1 *= alpha;
#pragma unroll
        for (int i = 0; i < DS_CHUNK / DS_NCW; i++) {
            const int j = c0 + c.w + DS_NCW * i;
            if (j < pos) {
                o0 += sc[j - c0] * vr[i].x;
                o1 += sc[j - c0] * vr[i].y;
            }
        }
        if (pos < c0 + DS_CHUNK && (pos - c0) % DS_NCW == c.w) { /* the new position's value */
            o0 += sc[pos - c0] * vs[2 * c.lane];
            o1 += sc[pos - c0] * vs[2 * c.lane + 1];
        }
        mrun = mnew;
    }
    part[c.w * DS_HD + 2 * c.lane] = o0;
    part[c.w * DS_HD + 2 * c.lane + 1] = o1;
    ds_cbar();
    if (t < DS_HD) {
        float o = 0.f;
        for (int i = 0; i < DS_NCW; i++)
            o += part[i * DS_HD + t];
        ds_put(p.latt + hh * DS_HD + t, o / lrun, e);
    }
}

__global__ void __launch_bounds__(DS_THREADS, 1)
    k_decode_step(const __grid_constant__ ds_params p) {
    extern __shared__ __align__(1024) unsigned char ring[];
    __shared__ __align__(8) uint64_t full[GB_DS_PAGES], empty[GB_DS_PAGES];
    __shared__ float sred[2 * DS_NCW], xres[64];
    __shared__ unsigned long long wkey[DS_NCW];
    __shared__ __align__(16) float act[DS_FF];
    const int tid = threadIdx.x, w = tid >> 5, lane = tid & 31;
    if (tid == 0) {
        for (int i = 0; i < GB_DS_PAGES; i++) {
            gb_mbar_init(&full[i], 1);
            gb_mbar_init(&empty[i], 1);
        }
        gb_mbar_init_fence();
    }
    __syncthreads();
    if (w == DS_NCW) {
        if (lane == 0) {
            ds_prod pr{ring, full, empty, 0u, p.inflight, p.inflight_hi, false};
            ds_producer(p, pr);
        }
        return;
    }
    const unsigned gen = *(volatile unsigned *)p.gen;
    ds_cons c{ring, full, empty, 0u, w, lane, tid, 0, act, xres, sred, gen * (p.nl + 1) + 1};
    /* not `p.dpos ? *p.dpos : p.pos0`: nvcc 13 made that one load from a select of the two
     * addresses, and read the parameter's offset as a global address (compute-sanitizer) */
    int pos = p.pos0;
    if (p.dpos) asm volatile("ld.volatile.global.s32 %0, [%1];" : "=r"(pos) : "l"(p.dpos));
    const unsigned NB = gridDim.x;
    int p0, p1;
    float4 nwv[2];

    { /* the embedding rows of this block (xb before layer 0) */
        const int tok = *(volatile const int32_t *)p.ids;
        ds_range(DS_H, &p0, &p1);
        for (int i = p0 + tid; i < p1; i += DS_CT)
            ds_put(p.lxb + i, __bfloat162float(p.emb[(size_t)tok * DS_H + i]), c.e0);
    }
    for (int l = 0; l < p.nl; l++) {
        const ds_layer &L = p.L[l];
        const unsigned e = c.e0 + l;
        /* RMSNorm + q,k,v */
        ds_norm_w(nwv, L.n1, tid);
        ds_cbar(); /* act and xres free: every warp is past the previous layer's down pages */
        ds_norm(p, c, nwv, p.lxb, e);
        ds_range(768, &p0, &p1);
        ds_pages(c, p0, p1, [&](int pg, const uint4 *page) {
            float acc[4];
            ds_page4(c, page, acc);
            if (lane < 4) ds_put(p.lqkv + pg * 4 + lane, ds_pick4(acc, lane), e);
        });
        /* attention of the head this block owns */
        const int hh = (int)((blockIdx.x * DS_NH + NB - 1) / NB);
        if (hh < DS_NH && ds_att_block(hh) == (int)blockIdx.x) {
            ds_cbar(); /* act is free: every warp is past its q,k,v pages */
            ds_attention(p, c, l, hh, pos, act);
        }
        /* o_proj + residual: xa = xb + o */
        ds_range(512, &p0, &p1);
        ds_cbar(); /* act and xres free */
        ds_load_act<DS_H>(c, p.latt, e, p.lxb, p0 * 4, (p1 - p0) * 4, e);
        ds_pages(c, p0, p1, [&](int pg, const uint4 *page) {
            float acc[4];
            ds_page4(c, page, acc);
            const int i = (pg - p0) * 4 + lane;
            if (lane < 4) ds_put(p.lxa + p0 * 4 + i, xres[i] + ds_pick4(acc, lane), e);
        });
        /* RMSNorm + gate/up + SiLU */
        ds_norm_w(nwv, L.n2, tid);
        ds_cbar();
        ds_norm(p, c, nwv, p.lxa, e);
        ds_range(DS_FF / 2, &p0, &p1);
        ds_pages(c, p0, p1, [&](int pg, const uint4 *page) {
            float acc[4];
            ds_page4(c, page, acc);
            if (lane < 2) {
                const float g = lane ? acc[1] : acc[0], u = lane ? acc[3] : acc[2];
                ds_put(p.lh + pg * 2 + lane, g / (1.0f + expf(-g)) * u, e);
            }
        });
        /* down + residual: xb = xa + d (the next layer's input) */
        ds_range(DS_H, &p0, &p1);
        ds_cbar();
        ds_load_act<DS_FF>(c, p.lh, e, p.lxa, p0, p1 - p0, e);
        ds_pages(c, p0, p1, [&](int pg, const uint4 *page) {
            const float y = ds_dot1(c, page);
            ds_release(c);
            if (lane == 0) ds_put(p.lxb + pg, xres[pg - p0] + y, e + 1);
        });
    }
    /* final RMSNorm + output head, and the argmax: each warp keeps the best key of its rows */
    ds_norm_w(nwv, p.nf, tid);
    ds_cbar();
    ds_norm(p, c, nwv, p.lxb, c.e0 + p.nl);
    ds_range(p.vocab / 4, &p0, &p1);
    unsigned long long best = 0;
    ds_pages(c, p0, p1, [&](int pg, const uint4 *page) {
        float acc[4];
        ds_page4(c, page, acc);
        if (lane < 4) p.logits[pg * 4 + lane] = ds_pick4(acc, lane);
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const unsigned long long k = gb_argmax_key(acc[r], pg * 4 + r);
            best = k > best ? k : best;
        }
    });
    if (lane == 0) wkey[w] = best;
    ds_cbar();
    /* the block's best into the key; the last block to finish turns it into the id (with the
     * step tail, as gb_cuda_argmax) and advances the generation (every block read it at its
     * start, and the position: the tail advances that) */
    if (tid == 0) {
        for (int i = 1; i < DS_NCW; i++)
            best = wkey[i] > best ? wkey[i] : best;
        atomicMax(p.key, best);
        __threadfence();
        if (atomicAdd(p.done, 1u) == NB - 1) {
            __threadfence();
            const int32_t id = gb_argmax_id(atomicExch(p.key, 0ull));
            *p.done = 0;
            *p.gen = gen + 1;
            p.ids[0] = id;
            gb_step_tail_row(p.tail, 0, id);
        }
    }
}

/* ---------------- host ---------------- */

static bool ds_mat(const gb_weight *w, int64_t rows, int64_t cols) {
    return w && w->dtype == GB_BF16 && w->rows == rows && w->cols == cols && w->data &&
           ((uintptr_t)w->data & 15u) == 0;
}

/* pages in flight from the environment variable `name` (1..GB_DS_PAGES), else def */
static int ds_env_pages(const char *name, int def) {
    const char *env = getenv(name);
    const int v = env ? atoi(env) : 0;
    return v >= 1 && v <= GB_DS_PAGES ? v : def;
}

/* Buffers (counted in memory_stats) and the kernel's shared-memory limit, at backend creation;
 * on failure the op declines every call (the chain runs). GB_CUDA_DECODE_STEP=0 turns it off
 * (A/B timings). */
void gb_cuda_decode_step_init(gb_cuda *st) {
    st->ds_on = 0;
    const char *env = getenv("GB_CUDA_DECODE_STEP");
    if (env && *env == '0') return;
    const size_t words = (size_t)(DS_H + 2 * DS_NKV * DS_HD) + 3 * DS_H + DS_FF;
    const size_t dyn = (size_t)GB_DS_PAGES * DS_PAGE;
    int per_sm = 0;
    gb_error err = {};
    if (st->sm_count < DS_NH ||
        cudaFuncSetAttribute(k_decode_step, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             (int)dyn) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k_decode_step, DS_THREADS, dyn) !=
            cudaSuccess ||
        per_sm < 1 ||
        gb_dev_alloc(st, words * sizeof(ds_word), &st->ds_words, "decode step words", &err) ||
        gb_dev_alloc(st, 2 * sizeof(unsigned), (void **)&st->ds_counters, "decode step counters",
                     &err) ||
        cudaMemset(st->ds_words, 0, words * sizeof(ds_word)) != cudaSuccess ||
        cudaMemset(st->ds_counters, 0, 2 * sizeof(unsigned)) != cudaSuccess ||
        cudaDeviceSynchronize() != cudaSuccess) {
        (void)cudaGetLastError();
        gb_cuda_decode_step_free(st);
        return;
    }
    st->ds_inflight = ds_env_pages("GB_CUDA_DS_INFLIGHT", GB_DS_INFLIGHT);
    st->ds_inflight_hi = ds_env_pages("GB_CUDA_DS_INFLIGHT_HI", GB_DS_INFLIGHT_HI);
    st->ds_on = 1;
}

void gb_cuda_decode_step_free(gb_cuda *st) {
    gb_dev_free(st, st->ds_words);
    gb_dev_free(st, st->ds_counters);
    st->ds_words = nullptr;
    st->ds_counters = nullptr;
    st->ds_on = 0;
}

int gb_cuda_decode_step(gb_backend *b, const gb_step_model *sm, float *logits, int32_t *ids,
                        int pos0) {
    gb_cuda *st = gb_cuda_of(b);
    if (!st->ds_on || sm->n_layers < 1 || sm->n_layers > GB_STEP_MAX_LAYERS || sm->hidden != DS_H ||
        sm->intermediate != DS_FF || sm->n_heads != DS_NH || sm->n_kv_heads != DS_NKV ||
        sm->head_dim != DS_HD || sm->act != GB_BACT_SILU || sm->vocab < 4 || sm->vocab % 4 != 0 ||
        pos0 < 0 || pos0 >= sm->cap ||
        /* a step captured with device positions is replayed up to the cache's capacity */
        (st->pos_mode ? sm->cap : pos0 + 1) > GB_DS_MAX_POS ||
        !ds_mat(sm->embed, sm->vocab, DS_H) || !ds_mat(sm->lm_head, sm->vocab, DS_H))
        return 0;
    ds_params p;
    memset(&p, 0, sizeof p);
    for (int l = 0; l < sm->n_layers; l++) {
        const gb_step_layer *L = &sm->layers[l];
        if (!ds_mat(L->wq, DS_H, DS_H) || !ds_mat(L->wk, DS_NKV * DS_HD, DS_H) ||
            !ds_mat(L->wv, DS_NKV * DS_HD, DS_H) || !ds_mat(L->wo, DS_H, DS_H) ||
            !ds_mat(L->wgate, DS_FF, DS_H) || !ds_mat(L->wup, DS_FF, DS_H) ||
            !ds_mat(L->wdown, DS_H, DS_FF) || !L->attn_norm_w || !L->mlp_norm_w || !L->kcache ||
            !L->vcache ||
            (((uintptr_t)L->attn_norm_w | (uintptr_t)L->mlp_norm_w | (uintptr_t)L->kcache |
              (uintptr_t)L->vcache) &
             15u))
            return 0;
        p.L[l] = {(const ds_bf16 *)L->wq->data,
                  (const ds_bf16 *)L->wk->data,
                  (const ds_bf16 *)L->wv->data,
                  (const ds_bf16 *)L->wo->data,
                  (const ds_bf16 *)L->wgate->data,
                  (const ds_bf16 *)L->wup->data,
                  (const ds_bf16 *)L->wdown->data,
                  L->attn_norm_w,
                  L->mlp_norm_w,
                  L->kcache,
                  L->vcache};
    }
    if (((uintptr_t)sm->final_norm_w & 15u) || !sm->final_norm_w || !sm->inv_freq) return 0;
    p.nl = sm->n_layers;
    p.inflight = (unsigned)st->ds_inflight;
    p.inflight_hi = (unsigned)st->ds_inflight_hi;
    p.key = st->amax_keys; /* the split argmax's key of row 0: zero between launches */
    p.vocab = sm->vocab;
    p.pos0 = pos0;
    p.dpos = gb_cuda_dpos(st);
    p.ids = ids;
    p.emb = (const ds_bf16 *)sm->embed->data;
    p.head = (const ds_bf16 *)sm->lm_head->data;
    p.nf = sm->final_norm_w;
    p.inv_freq = sm->inv_freq;
    p.af = sm->attn_factor;
    p.eps = sm->eps;
    p.scale = sm->scale;
    p.logits = logits;
    p.lqkv = (ds_word *)st->ds_words;
    p.latt = p.lqkv + DS_H + 2 * DS_NKV * DS_HD;
    p.lxa = p.latt + DS_H;
    p.lxb = p.lxa + DS_H;
    p.lh = p.lxb + DS_H;
    p.gen = st->ds_counters;
    p.done = st->ds_counters + 1;
    p.tail = gb_cuda_step_tail(st, ids, 1);
    /* a plain launch (no programmatic dependent launch): every block spins on words of the
     * others, so none may start before the previous kernel has left the SMs it needs */
    k_decode_step<<<st->sm_count, DS_THREADS, (size_t)GB_DS_PAGES * DS_PAGE, st->stream>>>(p);
    GB_CU_LAUNCH(st, "decode_step");
    return 1;
}
