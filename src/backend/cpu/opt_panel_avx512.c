/* AVX-512 BF16 matmul over bf16 weights in the panel layout (panel.h), the panel kernels of
 * the avx512 ISA (same interface as opt_panel_avx2.c; opt.h).
 *
 * One k-pair of a panel (16 rows x 2 k, 64 bytes) is exactly one vdpbf16ps operand: lane i
 * holds the bf16 pair (W[16p + i][2q], W[16p + i][2q + 1]). With the activation pair
 * (x[2q], x[2q + 1]) broadcast to all 16 lanes, one instruction adds both products to 16
 * output rows (float32 accumulation), with no widening of the weights.
 *
 * x is rounded to bf16 once per call (round-to-nearest-even, gb_f32_to_bf16, as the
 * row-major AVX-512 GEMM does) for every n, so one-token decode and batched steps see the
 * same rounding. Packed x: 32-bit words, word (t, q) = bf16(x[t][2q]) | bf16(x[t][2q+1]) << 16,
 * in balanced tiles of <= GB_TMAX token rows, k-pair-major inside a tile (the AVX2 file's
 * order): tile (t0, nt) at word t0 * cols / 2, word (t, q) at + q * nt + (t - t0); a
 * one-token tile is plain row order.
 *
 * Register tiles: n = 1, four panels (64 rows) at once, two accumulators each (even and odd
 * k-pairs: 8 independent chains); n >= 2, MP = 2 (or 1) panels x T <= 12 token rows:
 * 24 accumulators + 2 weight vectors + 1 broadcast of the 32 zmm registers; per k-pair MP
 * 64-byte loads and T broadcasts feed MP * T vdpbf16ps. Rows past the last full panel
 * (row-major, rows % 16) are dot products over the same bf16 x (256-bit vdpbf16ps). */
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/opt.h"
#include "backend/cpu/panel.h"

#define GB_UNROLL _Pragma("GCC unroll 16")
#define GB_TMAX 12

size_t gb_panel_avx512_pack_bytes(int n, int64_t cols) {
    return (size_t)n * (size_t)cols * sizeof(uint16_t); /* n * cols / 2 words */
}

void gb_panel_avx512_pack_x(void *xpv, const float *x, int n, int64_t cols, int ta, int tb) {
    uint32_t *xp = xpv;
    const int64_t nq = cols / 2;
    for (int g = 0, tiles = gb_panel_tiles(n, GB_TMAX); g < tiles; g++) {
        int t0, nt;
        gb_panel_tile_at(n, GB_TMAX, g, &t0, &nt);
        for (int t = t0 > ta ? t0 : ta; t < t0 + nt && t < tb; t++) {
            uint32_t *dst = xp + (int64_t)t0 * nq + (t - t0);
            const float *src = x + (int64_t)t * cols;
            for (int64_t q = 0; q < nq; q++)
                dst[q * nt] = (uint32_t)gb_f32_to_bf16(src[2 * q]) |
                              (uint32_t)gb_f32_to_bf16(src[2 * q + 1]) << 16;
        }
    }
}

/* The bf16 pair word w broadcast to 16 lanes, as a vdpbf16ps operand. */
static inline __attribute__((always_inline)) __m512bh bcast(uint32_t w) {
    return (__m512bh)_mm512_set1_epi32((int)w);
}
/* 64 bytes at p as a vdpbf16ps operand. */
static inline __attribute__((always_inline)) __m512bh load_bh(const uint32_t *p) {
    return (__m512bh)_mm512_loadu_si512((const void *)p);
}

/* n = 1: y[i * 16 .. i * 16 + 15] += panel block i . x for the 4 panels wp + i * ps, over
 * k-pairs [0, nq) (nq even: cols % 16 == 0). x: nq words. Four panels give four sequential
 * streams (the AVX2 GEMV measured one stream at 81-93% of the read bandwidth, 4-8 at
 * 98-112%), two chains per panel hide the vdpbf16ps latency when the panels are in cache. */
static void gemv_4(const uint32_t *wp, int64_t ps, const uint32_t *xw, int64_t nq, float *y) {
    __m512 acc[4][2];
    GB_UNROLL for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t q = 0; q < nq; q += 2) {
        const __m512bh x0 = bcast(xw[q]), x1 = bcast(xw[q + 1]);
        GB_UNROLL for (int i = 0; i < 4; i++) {
            const uint32_t *p = wp + i * ps + q * GB_PANEL_ROWS;
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], load_bh(p), x0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], load_bh(p + GB_PANEL_ROWS), x1);
        }
    }
    GB_UNROLL for (int i = 0; i < 4; i++) {
        float *yr = y + i * GB_PANEL_ROWS;
        _mm512_storeu_ps(yr,
                         _mm512_add_ps(_mm512_loadu_ps(yr), _mm512_add_ps(acc[i][0], acc[i][1])));
    }
}

/* GEMV prefetch distance for a panel streamed alone: 64 lines ahead (as the AVX2 file). */
#define GB_PF_AHEAD 4096

/* n = 1, one panel: the same with a software prefetch, since one stream alone is what the
 * hardware prefetcher serves worst. */
static void gemv_1(const uint32_t *wp, const uint32_t *xw, int64_t nq, float *y) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    for (int64_t q = 0; q < nq; q += 2) {
        const uint32_t *p = wp + q * GB_PANEL_ROWS;
        _mm_prefetch((const char *)p + GB_PF_AHEAD, _MM_HINT_T0);
        a0 = _mm512_dpbf16_ps(a0, load_bh(p), bcast(xw[q]));
        a1 = _mm512_dpbf16_ps(a1, load_bh(p + GB_PANEL_ROWS), bcast(xw[q + 1]));
    }
    _mm512_storeu_ps(y, _mm512_add_ps(_mm512_loadu_ps(y), _mm512_add_ps(a0, a1)));
}

/* y[j * ldy + m * 16 + i] += sum over k-pairs q < nq of panel block m (at wp + m * ps, 16
 * words per k-pair) . x tile xt (word (q, j) at q * T + j), for m < MP, j < T. pf (NULL:
 * none): the next block of the same MP panels, one line per panel per k-pair, touched at
 * the rate this block is consumed. */
#define GB_TILE(MP, T)                                                                             \
    static void tile_##MP##_##T(const uint32_t *wp, int64_t ps, const uint32_t *xt, int64_t nq,    \
                                float *y, int64_t ldy, const uint32_t *pf) {                       \
        __m512 acc[MP][T];                                                                         \
        GB_UNROLL for (int m = 0; m < MP; m++) GB_UNROLL for (int j = 0; j < T; j++) acc[m][j] =   \
            _mm512_setzero_ps();                                                                   \
        for (int64_t q = 0; q < nq; q++) {                                                         \
            __m512bh w[MP];                                                                        \
            GB_UNROLL for (int m = 0; m < MP; m++) w[m] =                                          \
                load_bh(wp + m * ps + q * GB_PANEL_ROWS);                                          \
            if (pf)                                                                                \
                GB_UNROLL for (int m = 0; m < MP; m++)                                             \
                    _mm_prefetch((const char *)(pf + m * ps + q * GB_PANEL_ROWS), _MM_HINT_T0);    \
            const uint32_t *xq = xt + q * T;                                                       \
            GB_UNROLL for (int j = 0; j < T; j++) {                                                \
                const __m512bh b = bcast(xq[j]);                                                   \
                GB_UNROLL for (int m = 0; m < MP; m++) acc[m][j] =                                 \
                    _mm512_dpbf16_ps(acc[m][j], w[m], b);                                          \
            }                                                                                      \
        }                                                                                          \
        GB_UNROLL for (int j = 0; j < T; j++) GB_UNROLL for (int m = 0; m < MP; m++) {             \
            float *yr = y + j * ldy + m * GB_PANEL_ROWS;                                           \
            _mm512_storeu_ps(yr, _mm512_add_ps(_mm512_loadu_ps(yr), acc[m][j]));                   \
        }                                                                                          \
    }
#define GB_TILES(MP)                                                                               \
    GB_TILE(MP, 1)                                                                                 \
    GB_TILE(MP, 2)                                                                                 \
    GB_TILE(MP, 3)                                                                                 \
    GB_TILE(MP, 4)                                                                                 \
    GB_TILE(MP, 5)                                                                                 \
    GB_TILE(MP, 6)                                                                                 \
    GB_TILE(MP, 7)                                                                                 \
    GB_TILE(MP, 8)                                                                                 \
    GB_TILE(MP, 9)                                                                                 \
    GB_TILE(MP, 10)                                                                                \
    GB_TILE(MP, 11)                                                                                \
    GB_TILE(MP, 12)
GB_TILES(1)
GB_TILES(2)

typedef void (*tile_fn)(const uint32_t *, int64_t, const uint32_t *, int64_t, float *, int64_t,
                        const uint32_t *);
/* [MP - 1][T] (balanced tiles of n >= 2 rows have T >= 2; T = 1 keeps the table total) */
static const tile_fn tile_table[2][GB_TMAX + 1] = {
    {NULL, tile_1_1, tile_1_2, tile_1_3, tile_1_4, tile_1_5, tile_1_6, tile_1_7, tile_1_8, tile_1_9,
     tile_1_10, tile_1_11, tile_1_12},
    {NULL, tile_2_1, tile_2_2, tile_2_3, tile_2_4, tile_2_5, tile_2_6, tile_2_7, tile_2_8, tile_2_9,
     tile_2_10, tile_2_11, tile_2_12}};

/* Rows [r0, r1) past the last full panel (row-major bf16 at r * cols): per token, the x words
 * of its tile gathered 8 at a time (16 k) and one 256-bit vdpbf16ps per row. Such rows are
 * rare (GPT-2's 50257-row head has one; the Llama shapes none). */
static void tail_rows(const gb_mm_args *a, int64_t r0, int64_t r1) {
    const int64_t K = a->cols, nq = K / 2;
    const uint16_t *w = a->w;
    const uint32_t *xp = a->xp;
    for (int g = 0, tiles = gb_panel_tiles(a->n, GB_TMAX); g < tiles; g++) {
        int t0, nt;
        gb_panel_tile_at(a->n, GB_TMAX, g, &t0, &nt);
        for (int j = 0; j < nt; j++) {
            const uint32_t *xt = xp + (int64_t)t0 * nq + j; /* word q at xt[q * nt] */
            float *y = a->y + (int64_t)(t0 + j) * a->ldy;
            for (int64_t r = r0; r < r1; r++) {
                __m256 acc = _mm256_setzero_ps();
                for (int64_t q = 0; q < nq; q += 8) {
                    uint32_t xv[8];
                    for (int i = 0; i < 8; i++)
                        xv[i] = xt[(q + i) * nt];
                    __m256i wv = _mm256_loadu_si256((const __m256i *)(w + r * K + 2 * q));
                    acc = _mm256_dpbf16_ps(acc, (__m256bh)wv,
                                           (__m256bh)_mm256_loadu_si256((const __m256i *)xv));
                }
                __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
                s = _mm_add_ps(s, _mm_movehl_ps(s, s));
                s = _mm_add_ss(s, _mm_movehdup_ps(s));
                y[r] += _mm_cvtss_f32(s);
            }
        }
    }
}

/* k-block of the n >= 2 order: MP panels x 256 k (16 KiB for MP = 2) stay in L1 while every
 * token tile of the block passes over them. */
#define GB_PKB 256
/* Token rows per x block: 128 x 256 k bf16 = 64 KiB, shared by all panels of the chunk. */
#define GB_PTB 128

/* y[:, r0:r1] += x W^T for rows of a panel-layout weight (r0 % 16 == 0, a->prows panel rows,
 * y preset by the caller). Loop order as the AVX2 file: token block, k-block, panel group
 * (2 panels, a last odd one alone), token tile. */
void gb_panel_avx512_mm_rows(const gb_mm_args *a, int64_t r0, int64_t r1) {
    const int64_t K = a->cols, nq = K / 2, ldy = a->ldy;
    const int64_t pend = r1 < a->prows ? r1 : a->prows;
    const int64_t ps = GB_PANEL_ROWS * nq; /* words from one panel to the next */
    const int n = a->n, ntiles = gb_panel_tiles(n, GB_TMAX);
    const uint32_t *w = a->w, *xp = a->xp;
    if (n == 1) {
        int64_t r = r0;
        for (; r + 4 * GB_PANEL_ROWS <= pend; r += 4 * GB_PANEL_ROWS)
            gemv_4(w + r * nq, ps, xp, nq, a->y + r);
        for (; r + GB_PANEL_ROWS <= pend; r += GB_PANEL_ROWS)
            gemv_1(w + r * nq, xp, nq, a->y + r);
        if (pend < r1) tail_rows(a, pend > r0 ? pend : r0, r1);
        return;
    }
    for (int g0 = 0, g1; g0 < ntiles; g0 = g1) {
        g1 = gb_panel_tile_group(n, GB_TMAX, g0, GB_PTB);
        for (int64_t kb = 0; kb < K; kb += GB_PKB) {
            const int64_t kq = (K - kb < GB_PKB ? K - kb : GB_PKB) / 2; /* k-pairs in the block */
            for (int64_t r = r0; r + GB_PANEL_ROWS <= pend;) {
                const int mp = r + 2 * GB_PANEL_ROWS <= pend ? 2 : 1;
                const uint32_t *wr = w + r * nq + kb / 2 * GB_PANEL_ROWS;
                /* the next group's block, when it has the same mp full panels: prefetched by
                 * the group's first tile (the one that brings this block in from memory) */
                const int64_t rn = r + mp * GB_PANEL_ROWS;
                const uint32_t *next = rn + mp * GB_PANEL_ROWS <= pend ? wr + mp * ps : NULL;
                for (int g = g0; g < g1; g++) {
                    int t0, nt;
                    gb_panel_tile_at(n, GB_TMAX, g, &t0, &nt);
                    tile_table[mp - 1][nt](wr, ps, xp + (int64_t)t0 * nq + kb / 2 * nt, kq,
                                           a->y + (int64_t)t0 * ldy + r, ldy,
                                           g == g0 ? next : NULL);
                }
                r = rn;
            }
        }
    }
    if (pend < r1) tail_rows(a, pend > r0 ? pend : r0, r1);
}
