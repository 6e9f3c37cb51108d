/* AVX2 + FMA + F16C kernels of the optimised CPU set (see opt.h).
 *
 * Matmul: W rows are streamed with 32-byte loads, 16 k-values per step. bf16 weights are
 * widened to float32 without shuffles: a 32-byte load holds 8 (even, odd) pairs; `<< 16`
 * gives the even elements as float32 and `& 0xffff0000` the odd ones. x is packed once per
 * call so that each 16-block holds its 8 even elements, then its 8 odd ones; products are
 * exact float32 (no bf16 rounding of x). f16 weights go through vcvtph2ps. Register tile:
 * MR weight rows x NR token rows, each loaded W vector feeds NR FMAs, each x vector MR. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "backend/cpu/avx2_util.h"
#include "backend/cpu/opt.h"

#define GB_PANEL_MIN_N 12

/* Row stride of packed x: km plus one cache line. Rows of km = 2048 or 8192 floats are a
 * multiple of 4 KiB apart, so the NR rows a tile reads would all map to the same L1 set
 * (and alias the 4 KiB-strided W rows). A standalone microbenchmark of the n = 8 tiles gained
 * 10-40% from it (noisy); in the full kernel the change was within noise on its own. */
static int64_t xp_ld(int64_t km) {
    return km + 16;
}

/* n >= GB_PANEL_MIN_N: the panel GEMM's x, in tiles of GB_PNR token rows, k-major within a
 * tile (element (t, k) at (t / GB_PNR) * GB_PNR * cols + k * rows_of_tile + t % GB_PNR), so
 * the tile's broadcasts read one sequential stream instead of GB_PNR rows a multiple of
 * 4 KiB apart (same L1 set). */
#define GB_PNR 6

static size_t pack_bytes(gb_dtype wd, int n, int64_t cols) {
    (void)wd;
    if (n >= GB_PANEL_MIN_N) return (size_t)n * (size_t)cols * sizeof(float);
    return (size_t)n * (size_t)xp_ld(cols & ~(int64_t)15) * sizeof(float);
}

static void pack_x_tiles(float *xp, const float *x, int n, int64_t cols, int t0, int t1) {
    for (int t = t0; t < t1; t++) {
        int g = t / GB_PNR, nr = n - g * GB_PNR < GB_PNR ? n - g * GB_PNR : GB_PNR;
        float *dst = xp + (int64_t)g * GB_PNR * cols + t % GB_PNR;
        const float *src = x + (int64_t)t * cols;
        for (int64_t k = 0; k < cols; k++)
            dst[k * nr] = src[k];
    }
}

static void pack_x(void *xpv, const float *x, gb_dtype wd, int n, int64_t cols, int t0, int t1) {
    int64_t km = cols & ~(int64_t)15, ldx = xp_ld(km);
    float *xp = xpv;
    if (n >= GB_PANEL_MIN_N) {
        pack_x_tiles(xp, x, n, cols, t0, t1);
        return;
    }
    for (int t = t0; t < t1; t++) {
        const float *src = x + (int64_t)t * cols;
        float *dst = xp + (int64_t)t * ldx;
        if (wd != GB_BF16) {
            memcpy(dst, src, (size_t)km * sizeof(float));
            continue;
        }
        const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
        for (int64_t k = 0; k < km; k += 16) {
            /* a = x0..x7 -> evens(0,2,4,6) odds(1,3,5,7); b likewise for x8..x15 */
            __m256 a = _mm256_permutevar8x32_ps(_mm256_loadu_ps(src + k), idx);
            __m256 b = _mm256_permutevar8x32_ps(_mm256_loadu_ps(src + k + 8), idx);
            __m256 ev = _mm256_permute2f128_ps(a, b, 0x20);
            __m256 od = _mm256_permute2f128_ps(a, b, 0x31);
            _mm256_storeu_ps(dst + k, ev);
            _mm256_storeu_ps(dst + k + 8, od);
        }
    }
}

/* Loads 16 weights of row `w` at k as two float32 vectors matching the packed x layout. */
GB_AI void load_w_bf16(const void *w, int64_t off, __m256 *a, __m256 *b) {
    __m256i v = _mm256_loadu_si256((const __m256i *)((const uint16_t *)w + off));
    *a = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    *b = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32((int)0xffff0000u)));
}
GB_AI void load_w_f16(const void *w, int64_t off, __m256 *a, __m256 *b) {
    const uint16_t *p = (const uint16_t *)w + off;
    *a = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    *b = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 8)));
}
GB_AI void load_w_f32(const void *w, int64_t off, __m256 *a, __m256 *b) {
    const float *p = (const float *)w + off;
    *a = _mm256_loadu_ps(p);
    *b = _mm256_loadu_ps(p + 8);
}

/* Micro-kernel: rows r..r+MR-1, tokens t0..t0+NR-1, k in [k0, k1) (multiples of 16);
 * adds the partial dot products into y. */
#define GB_UNROLL _Pragma("GCC unroll 8")
/* Keeps a loaded vector in a register: without it GCC folds the load into every FMA that
 * uses it, and Zen 3 issues FMAs with a memory operand at half the register-form rate. */
#define GB_IN_REG(v) __asm__("" : "+x"(v))

/* pf (NULL: none): the next MR rows, touched at the same k one tile ahead, one line per
 * row per 64 bytes read (rows of 4-16 KiB span 1-4 pages: the hardware prefetcher stops at
 * page boundaries and would start every tile on cold streams). */
#define GB_ES_bf16 2
#define GB_ES_f16 2
#define GB_ES_f32 4
#define GB_MK(DT, MR, NR)                                                                          \
    static void mk_##DT##_##MR##_##NR(const void *w, int64_t K, int64_t r, const float *xp,        \
                                      int64_t ldx, int t0, int64_t k0, int64_t k1, float *y,       \
                                      int64_t ldy, const char *pf) {                               \
        __m256 acc[MR][NR];                                                                        \
        GB_UNROLL for (int i = 0; i < MR; i++) GB_UNROLL for (int j = 0; j < NR; j++) acc[i][j] =  \
            _mm256_setzero_ps();                                                                   \
        const float *xr = xp + (int64_t)t0 * ldx;                                                  \
        for (int64_t k = k0; k < k1; k += 16) {                                                    \
            __m256 wa[MR], wb[MR];                                                                 \
            GB_UNROLL for (int i = 0; i < MR; i++)                                                 \
                load_w_##DT(w, (r + i) * K + k, &wa[i], &wb[i]);                                   \
            if (pf && ((k * GB_ES_##DT) & 63) == 0)                                                \
                GB_UNROLL for (int i = 0; i < MR; i++)                                             \
                    _mm_prefetch(pf + (size_t)(i * K + k) * GB_ES_##DT, _MM_HINT_T0);              \
            GB_UNROLL for (int j = 0; j < NR; j++) {                                               \
                __m256 xa = _mm256_loadu_ps(xr + j * ldx + k);                                     \
                __m256 xb = _mm256_loadu_ps(xr + j * ldx + k + 8);                                 \
                GB_IN_REG(xa);                                                                     \
                GB_IN_REG(xb);                                                                     \
                GB_UNROLL for (int i = 0; i < MR; i++) {                                           \
                    acc[i][j] = _mm256_fmadd_ps(wa[i], xa, acc[i][j]);                             \
                    acc[i][j] = _mm256_fmadd_ps(wb[i], xb, acc[i][j]);                             \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        GB_UNROLL for (int i = 0; i < MR; i++) GB_UNROLL for (int j = 0; j < NR; j++)              \
            y[(t0 + j) * ldy + r + i] += gb_hsum256(acc[i][j]);                                    \
    }

#define GB_MK_ALL(DT)                                                                              \
    GB_MK(DT, 4, 1)                                                                                \
    GB_MK(DT, 2, 1)                                                                                \
    GB_MK(DT, 1, 1)                                                                                \
    GB_MK(DT, 2, 2)                                                                                \
    GB_MK(DT, 2, 3)                                                                                \
    GB_MK(DT, 2, 4)                                                                                \
    GB_MK(DT, 1, 2)                                                                                \
    GB_MK(DT, 1, 3)                                                                                \
    GB_MK(DT, 1, 4)

GB_MK_ALL(bf16)
GB_MK_ALL(f16)
GB_MK_ALL(f32)

/* n == 1, 4 rows, bf16: as mk_bf16_4_1, and touches the same k offset of the next 4 rows
 * (pf, NULL for the last group) one group ahead. Rows of 4 KiB (K = 2048) are one page each,
 * and the hardware prefetcher does not cross pages: without this every row group starts
 * four cold streams (measured: 82% of a read loop at K = 2048, 96% at K = 8192). */
static void gemv_bf16_4_pf(const void *w, int64_t K, int64_t r, const float *xp, int64_t km,
                           float *y, const uint16_t *pf) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    for (int64_t k = 0; k < km; k += 16) {
        __m256 wa[4], wb[4];
        GB_UNROLL for (int i = 0; i < 4; i++) load_w_bf16(w, (r + i) * K + k, &wa[i], &wb[i]);
        if (pf && (k & 31) == 0)
            GB_UNROLL for (int i = 0; i < 4; i++)
                _mm_prefetch((const char *)(pf + i * K + k), _MM_HINT_T0);
        __m256 xa = _mm256_loadu_ps(xp + k), xb = _mm256_loadu_ps(xp + k + 8);
        GB_IN_REG(xa);
        GB_IN_REG(xb);
        GB_UNROLL for (int i = 0; i < 4; i++) {
            acc[i] = _mm256_fmadd_ps(wa[i], xa, acc[i]);
            acc[i] = _mm256_fmadd_ps(wb[i], xb, acc[i]);
        }
    }
    GB_UNROLL for (int i = 0; i < 4; i++) y[r + i] += gb_hsum256(acc[i]);
}

typedef void (*mk_fn)(const void *, int64_t, int64_t, const float *, int64_t, int, int64_t, int64_t,
                      float *, int64_t, const char *);

/* GEMV (n = 1) tiles: [dtype][MR] */
static const mk_fn mk_table[3][5] = {
    [GB_F32] = {NULL, mk_f32_1_1, mk_f32_2_1, NULL, mk_f32_4_1},
    [GB_F16] = {NULL, mk_f16_1_1, mk_f16_2_1, NULL, mk_f16_4_1},
    [GB_BF16] = {NULL, mk_bf16_1_1, mk_bf16_2_1, NULL, mk_bf16_4_1}};

static float w_at(gb_dtype dt, const void *w, int64_t i) {
    switch (dt) {
    case GB_BF16:
        return gb_bf16_to_f32(((const uint16_t *)w)[i]);
    case GB_F16:
        return gb_f16_to_f32(((const uint16_t *)w)[i]);
    default:
        return ((const float *)w)[i];
    }
}

/* k-block for n > 4: a block of W rows stays in L2 while all token groups pass over it, and
 * a 4-token x block (8 KiB) stays in L1 while all row pairs pass over it. */
#define GB_KC 512

/* ---- GEMM for many token rows: packed weight panels, outer-product register tile ----
 * For n >= GB_PANEL_MIN_N a panel of 16 weight rows x GB_PKC k-values is widened to float32
 * and transposed into a thread-local buffer (16 KiB, stays in L1), then every 6-token tile
 * of x runs over it: per k, 2 panel loads and 6 broadcasts feed 12 FMAs (12 accumulators =
 * a 6 x 16 block of y). The packing cost (16 x GB_PKC conversions) is shared by all n/6
 * tiles. */
#define GB_PKC 256
#define GB_PMR 16

static _Thread_local float panel_buf[GB_PKC * GB_PMR] __attribute__((aligned(64)));

/* 8 weights of row-major W at off, widened to float32. */
GB_AI __m256 load8(gb_dtype dt, const void *w, int64_t off) {
    if (dt == GB_BF16) {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + off));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    if (dt == GB_F16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + off)));
    return _mm256_loadu_ps((const float *)w + off);
}

/* In-register transpose of 8 vectors (rows) into 8 vectors (columns). */
GB_AI void transpose8(__m256 *r) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* Wp[kk * 16 + i] = W[r + i, k0 + kk] for i < nr (zero for i >= nr). */
static void pack_panel(gb_dtype dt, const void *w, int64_t K, int64_t r, int nr, int64_t k0, int kc,
                       float *wp) {
    int kk = 0;
    if (dt == GB_BF16 && nr == GB_PMR) {
        /* Transpose (k, k+1) pairs as 32-bit units, then widen each pair vector into the
         * k and k+1 panel rows (`<< 16`, `& 0xffff0000`): 24 shuffles per 128 weights instead
         * of 32 per 64 (the pack was 12-19% of a 128-token GEMM). */
        const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
        for (; kk + 16 <= kc; kk += 16)
            for (int half = 0; half < 2; half++) {
                __m256 v[8];
                for (int i = 0; i < 8; i++)
                    v[i] = _mm256_castsi256_ps(_mm256_loadu_si256(
                        (const __m256i *)((const uint16_t *)w + (r + half * 8 + i) * K + k0 + kk)));
                transpose8(v);
                for (int q = 0; q < 8; q++) {
                    __m256i p = _mm256_castps_si256(v[q]);
                    _mm256_store_ps(wp + (kk + 2 * q) * GB_PMR + half * 8,
                                    _mm256_castsi256_ps(_mm256_slli_epi32(p, 16)));
                    _mm256_store_ps(wp + (kk + 2 * q + 1) * GB_PMR + half * 8,
                                    _mm256_castsi256_ps(_mm256_and_si256(p, hi)));
                }
            }
    }
    if (nr == GB_PMR) {
        for (; kk + 8 <= kc; kk += 8)
            for (int half = 0; half < 2; half++) {
                __m256 v[8];
                for (int i = 0; i < 8; i++)
                    v[i] = load8(dt, w, (r + half * 8 + i) * K + k0 + kk);
                transpose8(v);
                for (int q = 0; q < 8; q++)
                    _mm256_store_ps(wp + (kk + q) * GB_PMR + half * 8, v[q]);
            }
    }
    for (; kk < kc; kk++)
        for (int i = 0; i < GB_PMR; i++)
            wp[kk * GB_PMR + i] = i < nr ? w_at(dt, w, (r + i) * K + k0 + kk) : 0.0f;
}

#define GB_PK(NR)                                                                                  \
    static void pk_##NR(const float *wp, int kc, const float *x, float *acc_out) {                 \
        __m256 acc[NR][2];                                                                         \
        GB_UNROLL for (int j = 0; j < NR; j++) acc[j][0] = acc[j][1] = _mm256_setzero_ps();        \
        for (int kk = 0; kk < kc; kk++) {                                                          \
            __m256 w0 = _mm256_load_ps(wp + kk * GB_PMR),                                          \
                   w1 = _mm256_load_ps(wp + kk * GB_PMR + 8);                                      \
            GB_UNROLL for (int j = 0; j < NR; j++) {                                               \
                __m256 b = _mm256_broadcast_ss(x + kk * NR + j);                                   \
                acc[j][0] = _mm256_fmadd_ps(w0, b, acc[j][0]);                                     \
                acc[j][1] = _mm256_fmadd_ps(w1, b, acc[j][1]);                                     \
            }                                                                                      \
        }                                                                                          \
        GB_UNROLL for (int j = 0; j < NR; j++) {                                                   \
            _mm256_storeu_ps(acc_out + j * 16, acc[j][0]);                                         \
            _mm256_storeu_ps(acc_out + j * 16 + 8, acc[j][1]);                                     \
        }                                                                                          \
    }
GB_PK(1)
GB_PK(2)
GB_PK(3)
GB_PK(4)
GB_PK(5)
GB_PK(6)
typedef void (*pk_fn)(const float *, int, const float *, float *);
static const pk_fn pk_table[7] = {NULL, pk_1, pk_2, pk_3, pk_4, pk_5, pk_6};

/* Asks for the next panel's weights (16 rows x GB_PKC values, 16 short row segments the
 * hardware prefetcher does not follow) while the current panel is being computed. */
static void prefetch_next_panel(const gb_mm_args *a, int64_t r0, int64_t r1, int64_t r,
                                int64_t kb) {
    const int64_t K = a->cols;
    int64_t nr = r + GB_PMR, nk = kb;
    if (nr >= r1) {
        nr = r0;
        nk = kb + GB_PKC;
        if (nk >= K) return;
    }
    size_t es = gb_dtype_size(a->wdtype);
    int64_t kc = K - nk < GB_PKC ? K - nk : GB_PKC;
    int64_t rend = nr + GB_PMR < r1 ? nr + GB_PMR : r1;
    for (int64_t i = nr; i < rend; i++) {
        const char *p = (const char *)a->w + (size_t)(i * K + nk) * es;
        for (int64_t off = 0; off < kc * (int64_t)es; off += 64)
            _mm_prefetch(p + off, _MM_HINT_T1);
    }
}

static void mm_rows_panel(const gb_mm_args *a, int64_t r0, int64_t r1) {
    const int64_t K = a->cols, ldy = a->ldy;
    const int n = a->n;
    float *y = a->y, *wp = panel_buf;
    float part[6 * 16];
    for (int64_t kb = 0; kb < K; kb += GB_PKC) {
        int kc = K - kb < GB_PKC ? (int)(K - kb) : GB_PKC;
        for (int64_t r = r0; r < r1; r += GB_PMR) {
            int nr = r1 - r < GB_PMR ? (int)(r1 - r) : GB_PMR;
            pack_panel(a->wdtype, a->w, K, r, nr, kb, kc, wp);
            prefetch_next_panel(a, r0, r1, r, kb);
            for (int t0 = 0; t0 < n; t0 += GB_PNR) {
                int nt = n - t0 < GB_PNR ? n - t0 : GB_PNR;
                pk_table[nt](wp, kc, (const float *)a->xp + (int64_t)t0 * K + kb * nt, part);
                for (int j = 0; j < nt; j++) {
                    float *yr = y + (int64_t)(t0 + j) * ldy + r;
                    if (nr == GB_PMR) {
                        _mm256_storeu_ps(
                            yr, _mm256_add_ps(_mm256_loadu_ps(yr), _mm256_loadu_ps(part + j * 16)));
                        _mm256_storeu_ps(yr + 8, _mm256_add_ps(_mm256_loadu_ps(yr + 8),
                                                               _mm256_loadu_ps(part + j * 16 + 8)));
                    } else {
                        for (int i = 0; i < nr; i++)
                            yr[i] += part[j * 16 + i];
                    }
                }
            }
        }
    }
}

/* Batched-decode tiles (n = 2..11): 2 W rows x up to 4 token rows, x kept in registers.
 * Tried instead: x as a memory operand of each FMA with 2 x 5 / 2 x 6 tiles (10-12
 * independent accumulators instead of 8): 12% slower at n = 4, no gain at n = 8 (same
 * process, interleaved). [dtype][MR][NR] */
#define GB_MKS_NR 4
#define GB_MKS_TABLE(DT)                                                                           \
    {                                                                                              \
        {NULL}, {NULL, mk_##DT##_1_1, mk_##DT##_1_2, mk_##DT##_1_3, mk_##DT##_1_4}, {              \
            NULL, mk_##DT##_2_1, mk_##DT##_2_2, mk_##DT##_2_3, mk_##DT##_2_4                       \
        }                                                                                          \
    }
static const mk_fn mks_table[3][3][GB_MKS_NR + 1] = {
    [GB_F32] = GB_MKS_TABLE(f32), [GB_F16] = GB_MKS_TABLE(f16), [GB_BF16] = GB_MKS_TABLE(bf16)};

/* n = 2..11 token rows (batched decode): every W element is read from memory once per call.
 * n <= 4 is one token group over whole rows (as the GEMV); above, per k-block (an x block of
 * n x GB_KC floats stays in L1) the token rows are split into balanced groups of <= 4. The
 * first group's pass streams the chunk's W rows from DRAM, each row pair prefetching the
 * next (rows of 4-16 KiB span pages, and the hardware prefetcher stops at page boundaries:
 * +25-35% for n = 2..11 from DRAM, 1 thread); later groups re-read them from L1/L2. */
static void gemm_small(const gb_mm_args *a, int64_t r0, int64_t r1, int64_t km) {
    const int64_t K = a->cols, ldy = a->ldy, ldx = xp_ld(km);
    const int n = a->n, groups = (n + GB_MKS_NR - 1) / GB_MKS_NR;
    const mk_fn(*tab)[GB_MKS_NR + 1] = mks_table[a->wdtype];
    const char *w = a->w;
    const size_t es = gb_dtype_size(a->wdtype);
    const float *xp = a->xp;
    float *y = a->y;
    const int64_t kc = n <= GB_MKS_NR ? km : GB_KC;
    for (int64_t kb = 0; kb < km; kb += kc) {
        int64_t ke = kb + kc < km ? kb + kc : km;
        for (int g = 0, t0 = 0; g < groups; g++) {
            int nt = n / groups + (g < n % groups);
            int64_t r = r0;
            for (; r + 2 <= r1; r += 2) {
                const char *pf = g == 0 && r + 4 <= r1 ? w + (size_t)((r + 2) * K) * es : NULL;
                tab[2][nt](w, K, r, xp, ldx, t0, kb, ke, y, ldy, pf);
            }
            for (; r < r1; r++)
                tab[1][nt](w, K, r, xp, ldx, t0, kb, ke, y, ldy, NULL);
            t0 += nt;
        }
    }
}

static void mm_rows(const gb_mm_args *a, int64_t r0, int64_t r1) {
    const int64_t K = a->cols, km = K & ~(int64_t)15;
    const int n = a->n;
    float *y = a->y;
    const int64_t ldy = a->ldy;
    for (int t = 0; t < n; t++)
        for (int64_t r = r0; r < r1; r++)
            y[t * ldy + r] = a->bias ? a->bias[r] : 0.0f;
    if (n >= GB_PANEL_MIN_N) {
        mm_rows_panel(a, r0, r1);
        return;
    }
    const mk_fn *tab = mk_table[a->wdtype];
    const float *xp = a->xp;
    if (km > 0) {
        if (n == 1) {
            int64_t r = r0;
            if (a->wdtype == GB_BF16) {
                for (; r + 4 <= r1; r += 4) {
                    const uint16_t *pf = r + 8 <= r1 ? (const uint16_t *)a->w + (r + 4) * K : NULL;
                    gemv_bf16_4_pf(a->w, K, r, xp, km, y, pf);
                }
            }
            for (; r + 4 <= r1; r += 4)
                tab[4](a->w, K, r, xp, xp_ld(km), 0, 0, km, y, ldy, NULL);
            for (; r + 2 <= r1; r += 2)
                tab[2](a->w, K, r, xp, xp_ld(km), 0, 0, km, y, ldy, NULL);
            for (; r < r1; r++)
                tab[1](a->w, K, r, xp, xp_ld(km), 0, 0, km, y, ldy, NULL);
        } else {
            gemm_small(a, r0, r1, km);
        }
    }
    if (km < K) {
        for (int t = 0; t < n; t++) {
            const float *xt = a->x + (int64_t)t * K;
            for (int64_t r = r0; r < r1; r++) {
                float s = 0.0f;
                for (int64_t k = km; k < K; k++)
                    s += w_at(a->wdtype, a->w, r * K + k) * xt[k];
                y[t * ldy + r] += s;
            }
        }
    }
}

/* exp(x) for float32 lanes: Cody-Waite range reduction and the Cephes degree-6 polynomial
 * (about 1 ulp). Inputs are clamped to +-88.37 so 2^n stays a normal number; NaN passes. */
GB_AI __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_set1_ps(88.3762626647949f), x);
    x = _mm256_max_ps(_mm256_set1_ps(-87.3365478515625f), x);
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500E-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

GB_AI __m256 act256(__m256 x, gb_act_kind act) {
    const __m256 one = _mm256_set1_ps(1.0f);
    if (act == GB_BACT_SILU) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
        return _mm256_div_ps(x, _mm256_add_ps(one, e));
    }
    /* gelu_tanh: 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)): no cancellation for negative x */
    __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    __m256 u = _mm256_mul_ps(_mm256_set1_ps(-1.5957691216057308f),
                             _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
    return _mm256_div_ps(x, _mm256_add_ps(one, exp256(u)));
}

static float act1(float x, gb_act_kind act) {
    if (act == GB_BACT_SILU) return x / (1.0f + expf(-x));
    /* 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)): no cancellation for negative x */
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return x / (1.0f + expf(-2.0f * u));
}

static void act_mul(float *out, const float *g, const float *u, size_t count, gb_act_kind act) {
    size_t i = 0;
    if (act == GB_BACT_SILU) {
        for (; i + 8 <= count; i += 8)
            _mm256_storeu_ps(out + i, _mm256_mul_ps(act256(_mm256_loadu_ps(g + i), GB_BACT_SILU),
                                                    _mm256_loadu_ps(u + i)));
    } else {
        for (; i + 8 <= count; i += 8)
            _mm256_storeu_ps(out + i,
                             _mm256_mul_ps(act256(_mm256_loadu_ps(g + i), GB_BACT_GELU_TANH),
                                           _mm256_loadu_ps(u + i)));
    }
    for (; i < count; i++)
        out[i] = act1(g[i], act) * u[i];
}

static void act_only(float *y, const float *x, size_t count, gb_act_kind act) {
    size_t i = 0;
    if (act == GB_BACT_SILU) {
        for (; i + 8 <= count; i += 8)
            _mm256_storeu_ps(y + i, act256(_mm256_loadu_ps(x + i), GB_BACT_SILU));
    } else {
        for (; i + 8 <= count; i += 8)
            _mm256_storeu_ps(y + i, act256(_mm256_loadu_ps(x + i), GB_BACT_GELU_TANH));
    }
    for (; i < count; i++)
        y[i] = act1(x[i], act);
}

static float dot(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = gb_hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static float sumsq(const float *a, int n) {
    return dot(a, a, n);
}

static void scale_axpy(float *y, float s, float a, const float *x, int n) {
    __m256 vs = _mm256_set1_ps(s), va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i),
                                                _mm256_mul_ps(vs, _mm256_loadu_ps(y + i))));
    for (; i < n; i++)
        y[i] = y[i] * s + a * x[i];
}

static void scale_mul(float *y, const float *x, float s, const float *w, int n) {
    __m256 vs = _mm256_set1_ps(s);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs),
                                              _mm256_loadu_ps(w + i)));
    for (; i < n; i++)
        y[i] = x[i] * s * w[i];
}

static void add(float *y, const float *a, const float *c, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(c + i)));
    for (; i < n; i++)
        y[i] = a[i] + c[i];
}

static float exp_sum(float *p, const float *s, float m, int n) {
    __m256 vm = _mm256_set1_ps(m), acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + i), vm));
        _mm256_storeu_ps(p + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float sum = gb_hsum256(acc);
    for (; i < n; i++)
        sum += (p[i] = expf(s[i] - m));
    return sum;
}

const gb_opt_isa gb_opt_isa_avx2 = {
    .name = "avx2",
    .pack_bytes = pack_bytes,
    .pack_x = pack_x,
    .mm_rows = mm_rows,
    .panel_pack_bytes = gb_panel_avx2_pack_bytes,
    .panel_pack_x = gb_panel_avx2_pack_x,
    .panel_mm_rows = gb_panel_avx2_mm_rows,
    .panels_default = 1,
    .act_mul = act_mul,
    .act = act_only,
    .dot = dot,
    .sumsq = sumsq,
    .scale_axpy = scale_axpy,
    .scale_mul = scale_mul,
    .add = add,
    .exp_sum = exp_sum,
    .att_scores = gb_attn_avx2_scores,
    .att_accum = gb_attn_avx2_accum,
};
