/* AVX-512 BF16 kernels of the optimised CPU set (see opt.h): the bf16 GEMM over row-major
 * weights (n > 1 token rows, i.e. prefill and batched decode) with vdpbf16ps. Row-major is
 * the default on AVX-512 hosts (panels_default = 0); weights repacked into panels
 * (GB_CPU_PANELS=1) go to opt_panel_avx512.c. Everything else (the n = 1 GEMV, which is bound
 * by memory bandwidth, f16/f32 weights and the elementwise primitives) uses the AVX2 kernels,
 * which run at the same speed there.
 *
 * x is rounded to bf16 once per call (round-to-nearest-even) and packed as rows of
 * km = cols & ~31 values; vdpbf16ps multiplies 32 bf16 pairs per instruction with float32
 * accumulation, twice the fp32 FMA rate. Register tile: 4 weight rows x 4 token rows = 16
 * accumulators of 16 lanes; each 64-byte W load feeds 4 instructions, each x load 4. The k
 * tail (cols % 32) is computed in float32 from the unpacked x. */
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/opt.h"

#define GB_AI static inline __attribute__((always_inline))
#define GB_UNROLL _Pragma("GCC unroll 8")

/* Only bf16 weights with n > 1 use this file's GEMM. */
static int use_bf16_gemm(gb_dtype wd, int n) {
    return wd == GB_BF16 && n > 1;
}

/* Row stride of packed x: km plus one cache line, so the NR rows a tile reads (km = 2048 or
 * 8192 bf16 values, a multiple of 4 KiB) do not all map to one L1 set (as in the AVX2 file). */
static int64_t xp_ld(int64_t km) {
    return km + 32;
}

static size_t pack_bytes(gb_dtype wd, int n, int64_t cols) {
    if (!use_bf16_gemm(wd, n)) return gb_opt_isa_avx2.pack_bytes(wd, n, cols);
    return (size_t)n * (size_t)xp_ld(cols & ~(int64_t)31) * sizeof(uint16_t);
}

static void pack_x(void *xpv, const float *x, gb_dtype wd, int n, int64_t cols, int t0, int t1) {
    if (!use_bf16_gemm(wd, n)) {
        gb_opt_isa_avx2.pack_x(xpv, x, wd, n, cols, t0, t1);
        return;
    }
    int64_t km = cols & ~(int64_t)31, ldx = xp_ld(km);
    uint16_t *xp = xpv;
    for (int t = t0; t < t1; t++)
        for (int64_t k = 0; k < km; k++)
            xp[t * ldx + k] = gb_f32_to_bf16(x[t * cols + k]);
}

/* rows r..r+MR-1 x tokens t0..t0+NR-1 over k in [k0, k1) (multiples of 32), added into y.
 * pf (NULL: none): the next MR rows, touched at the same k one tile ahead (one 64-byte line
 * per row per step): each tile streams MR rows of 4-16 KiB, and the hardware prefetcher
 * stops at page boundaries (the AVX2 file measured +25-35% for batched decode from DRAM). */
#define GB_MK512(MR, NR)                                                                           \
    static void mk512_##MR##_##NR(const uint16_t *w, int64_t K, int64_t r, const uint16_t *xp,     \
                                  int64_t ldx, int t0, int64_t k0, int64_t k1, float *y,           \
                                  int64_t ldy, const uint16_t *pf) {                               \
        __m512 acc[MR][NR];                                                                        \
        GB_UNROLL for (int i = 0; i < MR; i++) GB_UNROLL for (int j = 0; j < NR; j++) acc[i][j] =  \
            _mm512_setzero_ps();                                                                   \
        const uint16_t *xr = xp + (int64_t)t0 * ldx;                                               \
        for (int64_t k = k0; k < k1; k += 32) {                                                    \
            __m512i wv[MR];                                                                        \
            GB_UNROLL for (int i = 0; i < MR; i++) wv[i] =                                         \
                _mm512_loadu_si512((const void *)(w + (r + i) * K + k));                           \
            if (pf)                                                                                \
                GB_UNROLL for (int i = 0; i < MR; i++)                                             \
                    _mm_prefetch((const char *)(pf + i * K + k), _MM_HINT_T0);                     \
            GB_UNROLL for (int j = 0; j < NR; j++) {                                               \
                __m512i xv = _mm512_loadu_si512((const void *)(xr + j * ldx + k));                 \
                GB_UNROLL for (int i = 0; i < MR; i++) acc[i][j] =                                 \
                    _mm512_dpbf16_ps(acc[i][j], (__m512bh)wv[i], (__m512bh)xv);                    \
            }                                                                                      \
        }                                                                                          \
        GB_UNROLL for (int i = 0; i < MR; i++) GB_UNROLL for (int j = 0; j < NR; j++)              \
            y[(t0 + j) * ldy + r + i] += _mm512_reduce_add_ps(acc[i][j]);                          \
    }

GB_MK512(4, 1)
GB_MK512(4, 2)
GB_MK512(4, 3)
GB_MK512(4, 4)
GB_MK512(1, 1)
GB_MK512(1, 2)
GB_MK512(1, 3)
GB_MK512(1, 4)

typedef void (*mk512_fn)(const uint16_t *, int64_t, int64_t, const uint16_t *, int64_t, int,
                         int64_t, int64_t, float *, int64_t, const uint16_t *);
static const mk512_fn mk4[5] = {NULL, mk512_4_1, mk512_4_2, mk512_4_3, mk512_4_4};
static const mk512_fn mk1[5] = {NULL, mk512_1_1, mk512_1_2, mk512_1_3, mk512_1_4};

/* k-block: a 4-token bf16 x block (8 KiB) stays in L1 while the row groups pass over it. */
#define GB_KC512 1024

static void mm_rows(const gb_mm_args *a, int64_t r0, int64_t r1) {
    if (!use_bf16_gemm(a->wdtype, a->n)) {
        gb_opt_isa_avx2.mm_rows(a, r0, r1);
        return;
    }
    const int64_t K = a->cols, km = K & ~(int64_t)31, ldy = a->ldy;
    const int n = a->n;
    const uint16_t *w = a->w, *xp = a->xp;
    float *y = a->y;
    for (int t = 0; t < n; t++)
        for (int64_t r = r0; r < r1; r++)
            y[t * ldy + r] = a->bias ? a->bias[r] : 0.0f;
    const int64_t ldx = xp_ld(km);
    for (int64_t kb = 0; kb < km; kb += GB_KC512) {
        int64_t ke = kb + GB_KC512 < km ? kb + GB_KC512 : km;
        for (int t0 = 0; t0 < n; t0 += 4) {
            int nt = n - t0 < 4 ? n - t0 : 4;
            int64_t r = r0;
            for (; r + 4 <= r1; r += 4) {
                /* the first token group's pass is the one that streams W from memory */
                const uint16_t *pf = t0 == 0 && r + 8 <= r1 ? w + (r + 4) * K : NULL;
                mk4[nt](w, K, r, xp, ldx, t0, kb, ke, y, ldy, pf);
            }
            for (; r < r1; r++)
                mk1[nt](w, K, r, xp, ldx, t0, kb, ke, y, ldy, NULL);
        }
    }
    if (km < K)
        for (int t = 0; t < n; t++)
            for (int64_t r = r0; r < r1; r++) {
                float s = 0.0f;
                for (int64_t k = km; k < K; k++)
                    s += gb_bf16_to_f32(w[r * K + k]) * a->x[t * K + k];
                y[t * ldy + r] += s;
            }
}

const gb_opt_isa gb_opt_isa_avx512 = {
    .name = "avx512",
    .pack_bytes = pack_bytes,
    .pack_x = pack_x,
    .mm_rows = mm_rows,
    .panel_pack_bytes = gb_panel_avx512_pack_bytes,
    .panel_pack_x = gb_panel_avx512_pack_x,
    .panel_mm_rows = gb_panel_avx512_mm_rows,
    .panels_default = 0,
    /* elementwise primitives: AVX2 versions (filled in at first use, see opt.c) */
};
