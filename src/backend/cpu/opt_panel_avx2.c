/* AVX2 matmul over bf16 weights in the panel layout (panel.h): decode (n >= 1) and prefill
 * share one outer-product register tile, 16 weight rows x T <= 6 token rows.
 *
 * Per k-pair the tile loads 64 bytes of the panel (16 rows x 2 k), widens them into four
 * float32 vectors (even k: `<< 16`, odd k: `& 0xffff0000`, 8 rows each) and feeds each with
 * T broadcast x values: 4T FMAs per 2 loads + 4 integer ops + 2T broadcasts. x is packed
 * once per call into balanced tiles of <= 6 token rows, k-major inside a tile. With T = 6
 * the 12 accumulators, 2 widened vectors and 1 broadcast fill 15 of the 16 ymm registers;
 * the odd-k mask is a memory operand (see hi16). Measured alone, panel in L1/L2 (1 thread,
 * gcc -O2): 93-97 GFLOP/s for T = 4 and 6, i.e. 93-97% of the AVX2 FMA peak. n = 1 has its
 * own loop over 4 panels at once (pt_1x4). docs/performance.md, "Session 3", has the numbers. */
#include <immintrin.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/avx2_util.h"
#include "backend/cpu/opt.h"
#include "backend/cpu/panel.h"

#define GB_UNROLL _Pragma("GCC unroll 16")
#define GB_TMAX 6

static const int32_t hi_mask[8] __attribute__((aligned(32))) = {
    (int32_t)0xffff0000, (int32_t)0xffff0000, (int32_t)0xffff0000, (int32_t)0xffff0000,
    (int32_t)0xffff0000, (int32_t)0xffff0000, (int32_t)0xffff0000, (int32_t)0xffff0000};

/* Odd-k weights of 8 rows: the mask stays a memory operand. With it in a register the T = 6
 * tile needs 16 live vectors and GCC spills accumulators to the stack every k-pair (46-63
 * vs 93-97 GFLOP/s measured). */
GB_AI __m256 hi16(const uint32_t *p) {
    __m256 o;
    __asm__("vandps %1, %2, %0"
            : "=x"(o)
            : "m"(*(const __m256 *)hi_mask), "x"(_mm256_loadu_ps((const float *)p)));
    return o;
}
/* Even-k weights of 8 rows. */
GB_AI __m256 lo16(const uint32_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)p), 16));
}

size_t gb_panel_avx2_pack_bytes(int n, int64_t cols) {
    return (size_t)n * (size_t)cols * sizeof(float);
}

/* x[t, k] -> xp[t0 * cols + k * nt + (t - t0)] for the tile (t0, nt) holding t. */
void gb_panel_avx2_pack_x(void *xpv, const float *x, int n, int64_t cols, int ta, int tb) {
    float *xp = xpv;
    for (int g = 0, tiles = gb_panel_tiles(n, GB_TMAX); g < tiles; g++) {
        int t0, nt;
        gb_panel_tile_at(n, GB_TMAX, g, &t0, &nt);
        for (int t = t0 > ta ? t0 : ta; t < t0 + nt && t < tb; t++) {
            float *dst = xp + (int64_t)t0 * cols + (t - t0);
            const float *src = x + (int64_t)t * cols;
            if (nt == 1) {
                memcpy(dst, src, (size_t)cols * sizeof(float));
                continue;
            }
            for (int64_t k = 0; k < cols; k++)
                dst[k * nt] = src[k];
        }
    }
}

/* y[t0 + j][r .. r+15] += sum over k-pairs [0, np) of the panel block wp times the x tile
 * xt (k-major, T rows). pf: memory to prefetch, pfs bytes per k-pair (64: a block of the same
 * size, at the rate this one is consumed). */
#define GB_PT(T)                                                                                   \
    static void pt_##T(const uint32_t *wp, const float *xt, int64_t np, float *y, int64_t ldy,     \
                       const char *pf, int64_t pfs) {                                              \
        __m256 acc[T][2];                                                                          \
        GB_UNROLL for (int j = 0; j < T; j++) acc[j][0] = acc[j][1] = _mm256_setzero_ps();         \
        for (int64_t p = 0; p < np; p++) {                                                         \
            const uint32_t *q = wp + p * GB_PANEL_ROWS;                                            \
            const float *xk = xt + 2 * p * T;                                                      \
            _mm_prefetch(pf + p * pfs, _MM_HINT_T0);                                               \
            __m256 w0 = lo16(q), w1 = lo16(q + 8);                                                 \
            GB_UNROLL for (int j = 0; j < T; j++) {                                                \
                __m256 b = _mm256_broadcast_ss(xk + j);                                            \
                acc[j][0] = _mm256_fmadd_ps(w0, b, acc[j][0]);                                     \
                acc[j][1] = _mm256_fmadd_ps(w1, b, acc[j][1]);                                     \
            }                                                                                      \
            w0 = hi16(q);                                                                          \
            w1 = hi16(q + 8);                                                                      \
            GB_UNROLL for (int j = 0; j < T; j++) {                                                \
                __m256 b = _mm256_broadcast_ss(xk + T + j);                                        \
                acc[j][0] = _mm256_fmadd_ps(w0, b, acc[j][0]);                                     \
                acc[j][1] = _mm256_fmadd_ps(w1, b, acc[j][1]);                                     \
            }                                                                                      \
        }                                                                                          \
        GB_UNROLL for (int j = 0; j < T; j++) {                                                    \
            float *yr = y + j * ldy;                                                               \
            _mm256_storeu_ps(yr, _mm256_add_ps(_mm256_loadu_ps(yr), acc[j][0]));                   \
            _mm256_storeu_ps(yr + 8, _mm256_add_ps(_mm256_loadu_ps(yr + 8), acc[j][1]));           \
        }                                                                                          \
    }
GB_PT(2)
GB_PT(3)
GB_PT(4)
GB_PT(5)
GB_PT(6)

/* T = 1 (GEMV): four independent chains (even/odd k x two row halves), since one k-pair
 * gives only 4 FMAs and two dependent FMAs per chain would wait on latency. */
static void pt_1(const uint32_t *wp, const float *xt, int64_t np, float *y, int64_t ldy,
                 const char *pf, int64_t pfs) {
    (void)ldy;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t p = 0; p < np; p++) {
        const uint32_t *q = wp + p * GB_PANEL_ROWS;
        _mm_prefetch(pf + p * pfs, _MM_HINT_T0);
        __m256 be = _mm256_broadcast_ss(xt + 2 * p), bo = _mm256_broadcast_ss(xt + 2 * p + 1);
        a0 = _mm256_fmadd_ps(lo16(q), be, a0);
        a1 = _mm256_fmadd_ps(lo16(q + 8), be, a1);
        a2 = _mm256_fmadd_ps(hi16(q), bo, a2);
        a3 = _mm256_fmadd_ps(hi16(q + 8), bo, a3);
    }
    _mm256_storeu_ps(y, _mm256_add_ps(_mm256_loadu_ps(y), _mm256_add_ps(a0, a2)));
    _mm256_storeu_ps(y + 8, _mm256_add_ps(_mm256_loadu_ps(y + 8), _mm256_add_ps(a1, a3)));
}

/* T = 1 over 4 panels `ps` uint32 apart at once: 4 streams instead of 1. One sequential
 * stream read 81-93% of the read loop's bandwidth (2048 x 8192, 1 thread), the row-major
 * GEMV's 4-8 row streams 98-112%. Two chains per panel (row halves), even and odd k
 * chained. k-pairs [p0, p1); pf != 0: each stream prefetches (non-temporal: the weights are
 * read once per step) the line pf bytes after its loads. */
GB_AI void pt_1x4_run(const uint32_t *wp, int64_t ps, const float *xt, int64_t p0, int64_t p1,
                      __m256 acc[4][2], int64_t pf) {
    for (int64_t p = p0; p < p1; p++) {
        __m256 be = _mm256_broadcast_ss(xt + 2 * p), bo = _mm256_broadcast_ss(xt + 2 * p + 1);
        GB_UNROLL for (int i = 0; i < 4; i++) {
            const uint32_t *q = wp + i * ps + p * GB_PANEL_ROWS;
            if (pf) _mm_prefetch((const char *)q + pf, _MM_HINT_NTA);
            acc[i][0] = _mm256_fmadd_ps(lo16(q), be, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(lo16(q + 8), be, acc[i][1]);
            acc[i][0] = _mm256_fmadd_ps(hi16(q), bo, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(hi16(q + 8), bo, acc[i][1]);
        }
    }
}

/* pf > 0: prefetch pf bytes ahead; in the last pf bytes of its panel a stream prefetches
 * the start of the same stream of the next 4-panel group when `next` (the group follows in
 * this chunk), so the next group's 4 streams start warm. */
static void pt_1x4(const uint32_t *wp, int64_t ps, const float *xt, int64_t np, float *y,
                   int64_t pf, int next) {
    __m256 acc[4][2];
    GB_UNROLL for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    if (pf <= 0) {
        pt_1x4_run(wp, ps, xt, 0, np, acc, 0);
    } else {
        int64_t pw = np - (next ? pf / 64 : 0); /* a k-pair of a panel is 64 bytes */
        if (pw < 0) pw = 0;
        pt_1x4_run(wp, ps, xt, 0, pw, acc, pf);
        /* stream i at k-pair p, pf bytes on: past its panel, into panel i + 4 */
        pt_1x4_run(wp, ps, xt, pw, np, acc, pf + 3 * ps * (int64_t)sizeof(uint32_t));
    }
    GB_UNROLL for (int i = 0; i < 4; i++) {
        float *yr = y + i * GB_PANEL_ROWS;
        _mm256_storeu_ps(yr, _mm256_add_ps(_mm256_loadu_ps(yr), acc[i][0]));
        _mm256_storeu_ps(yr + 8, _mm256_add_ps(_mm256_loadu_ps(yr + 8), acc[i][1]));
    }
}

/* GEMV prefetch distance in bytes: 512 (8 lines per stream, 32 in flight). Measured against
 * none (1 thread, 512 MB of weight copies, interleaved, medians of 21): +4-9% on the five
 * 1B shapes, 24.7 vs 22.7 GB/s at 2048 x 8192. Without the wrap into the next group no
 * gain; the T0 hint with it about the same; 1536 bytes 0-9% below none.
 * GB_CPU_GEMV_PF=bytes overrides it (0: none, for A/B).
 * Atomic: the pool's threads may read it first at the same time (all compute one value). */
static int64_t gemv_pf(void) {
    static _Atomic int64_t v = -1;
    int64_t d = atomic_load_explicit(&v, memory_order_relaxed);
    if (d < 0) {
        const char *e = getenv("GB_CPU_GEMV_PF");
        d = e ? atol(e) : 512;
        if (d < 0) d = 0;
        atomic_store_explicit(&v, d, memory_order_relaxed);
    }
    return d;
}

typedef void (*pt_fn)(const uint32_t *, const float *, int64_t, float *, int64_t, const char *,
                      int64_t);
static const pt_fn pt_table[GB_TMAX + 1] = {NULL, pt_1, pt_2, pt_3, pt_4, pt_5, pt_6};

/* k-block of the prefill order: 16 rows x 256 k bf16 = 8 KiB of panel stays in L1 while every
 * token tile passes over it. */
#define GB_PKB 256

/* Rows past the last full panel are row-major: plain dot products (GPT-2's 50257-row head
 * has one such row; the Llama shapes none). */
static void tail_rows(const gb_mm_args *a, int64_t r0, int64_t r1) {
    const int64_t K = a->cols;
    const uint16_t *w = a->w;
    for (int t = 0; t < a->n; t++) {
        const float *x = a->x + (int64_t)t * K;
        for (int64_t r = r0; r < r1; r++) {
            __m256 acc = _mm256_setzero_ps();
            for (int64_t k = 0; k < K; k += 8) {
                __m128i h = _mm_loadu_si128((const __m128i *)(w + r * K + k));
                __m256 wv = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
                acc = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + k), acc);
            }
            __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
            s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            s = _mm_add_ss(s, _mm_movehdup_ps(s));
            a->y[t * a->ldy + r] += _mm_cvtss_f32(s);
        }
    }
}

/* GEMV prefetch distance: 64 lines ahead of the loads. */
#define GB_PF_AHEAD 4096

/* Token rows per x block: 128 x 256 k floats = 128 KiB stays in L2 while the chunk's panels
 * pass over it (at n = 1024 a whole k-block of x, 1 MiB, would be read from L3 per panel). */
#define GB_PTB 128

/* y[:, r0:r1] for rows of a panel-layout weight (r0 % 16 == 0; a->prows panel rows). y has
 * been set to the bias (or 0) by the caller. Loop order: token block, k-block, panel, token
 * tile: the x k-block of a token block is shared by all panels of the chunk (in L1 for
 * decode: n = 8 is 8 KiB) and each panel's k-block (8 KiB, L1) by all tiles. Panel-outer
 * with x re-read from L2 per panel measured 10-30% slower at n = 8 (1 thread, hot). */
void gb_panel_avx2_mm_rows(const gb_mm_args *a, int64_t r0, int64_t r1) {
    const int64_t K = a->cols, ldy = a->ldy, pend = r1 < a->prows ? r1 : a->prows;
    const int n = a->n, tiles = gb_panel_tiles(n, GB_TMAX);
    const uint32_t *w = a->w;
    const float *xp = a->xp;
    if (n == 1) {
        /* GEMV: whole K per panel (nothing is re-read, so no k-blocks), four panels at a
         * time; a leftover panel alone, prefetching GB_PF_AHEAD bytes ahead */
        int64_t r = r0;
        const int64_t pf = gemv_pf();
        for (; r + 4 * GB_PANEL_ROWS <= pend; r += 4 * GB_PANEL_ROWS)
            pt_1x4(w + r * K / 2, GB_PANEL_ROWS * K / 2, xp, K / 2, a->y + r, pf,
                   r + 8 * GB_PANEL_ROWS <= pend);
        for (; r + GB_PANEL_ROWS <= pend; r += GB_PANEL_ROWS) {
            const uint32_t *wr = w + r * K / 2;
            pt_1(wr, xp, K / 2, a->y + r, ldy, (const char *)wr + GB_PF_AHEAD, 64);
        }
        if (pend < r1) tail_rows(a, pend > r0 ? pend : r0, r1);
        return;
    }
    for (int g0 = 0, g1; g0 < tiles; g0 = g1) {
        g1 = gb_panel_tile_group(n, GB_TMAX, g0, GB_PTB);
        for (int64_t kb = 0; kb < K; kb += GB_PKB) {
            int64_t kc = K - kb < GB_PKB ? K - kb : GB_PKB;
            for (int64_t r = r0; r + GB_PANEL_ROWS <= pend; r += GB_PANEL_ROWS) {
                const uint32_t *wr = w + r * K / 2 + kb * GB_PANEL_ROWS / 2;
                /* The next panel block (next panel, or the chunk's first at the next
                 * k-block) is prefetched while this one is computed, split over the first
                 * G <= 4 tiles (tile g: part g, every 64/G bytes) so the requests spread
                 * over the block's whole time: +2-19% at n = 8 and 128 over prefetching it
                 * all in the first tile (same process, interleaved, medians of 5-9). Later
                 * tiles "prefetch" their own block (an L1 hit, no branch). A prefetch past
                 * a shorter last block touches the next panel: harmless. */
                const uint32_t *next = r + 2 * GB_PANEL_ROWS <= pend ? wr + GB_PANEL_ROWS * K / 2
                                       : kb + GB_PKB < K
                                           ? w + r0 * K / 2 + (kb + GB_PKB) * GB_PANEL_ROWS / 2
                                           : wr;
                const int G = g1 - g0 < 4 ? g1 - g0 : 4; /* tiles sharing the prefetch */
                for (int g = g0; g < g1; g++) {
                    int t0, nt;
                    gb_panel_tile_at(n, GB_TMAX, g, &t0, &nt);
                    const char *pf = (const char *)wr;
                    int64_t pfs = 64;
                    if (g - g0 < G) {
                        pf = (const char *)next + (g - g0) * kc * 32 / G;
                        pfs = 64 / G;
                    }
                    pt_table[nt](wr, xp + t0 * K + kb * nt, kc / 2, a->y + t0 * ldy + r, ldy, pf,
                                 pfs);
                }
            }
        }
    }
    if (pend < r1) tail_rows(a, pend > r0 ? pend : r0, r1);
}
