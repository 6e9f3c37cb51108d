/* AVX2 + FMA microbenchmark kernels (see machine_kernels.h). */
#include "bench/machine_kernels.h"

#include <immintrin.h>

static double hsum256(__m256 v) {
    float f[8];
    _mm256_storeu_ps(f, v);
    double s = 0;
    for (int i = 0; i < 8; i++)
        s += f[i];
    return s;
}

/* Four interleaved streams (the quarters of the range), each prefetched GB_MK_READ_AHEAD
 * bytes ahead: what the decode GEMVs do, and a core reads ~5-15 % faster this way than as one
 * stream without prefetch (dev VM, session 4: 23.9-24.3 against 13.9-16.8 GB/s best), so the
 * ceiling the efficiency shares divide by is not the easier one. */
uint64_t gb_mk_read_avx2(const void *p, size_t bytes) {
    const char *b[4];
    const size_t q = gb_mk_streams(p, bytes, b);
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0,
            s7 = s0;
    for (size_t off = 0; off < q; off += 128) {
        gb_mk_prefetch4(b, off);
        for (int j = 0; j < 4; j += 2) {
            const __m256i *v = (const __m256i *)(b[j] + off),
                          *w = (const __m256i *)(b[j + 1] + off);
            s0 = _mm256_add_epi64(s0, _mm256_load_si256(v + 0));
            s1 = _mm256_add_epi64(s1, _mm256_load_si256(v + 1));
            s2 = _mm256_add_epi64(s2, _mm256_load_si256(v + 2));
            s3 = _mm256_add_epi64(s3, _mm256_load_si256(v + 3));
            s4 = _mm256_add_epi64(s4, _mm256_load_si256(w + 0));
            s5 = _mm256_add_epi64(s5, _mm256_load_si256(w + 1));
            s6 = _mm256_add_epi64(s6, _mm256_load_si256(w + 2));
            s7 = _mm256_add_epi64(s7, _mm256_load_si256(w + 3));
        }
    }
    s0 = _mm256_add_epi64(_mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3)),
                          _mm256_add_epi64(_mm256_add_epi64(s4, s5), _mm256_add_epi64(s6, s7)));
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, s0);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

double gb_mk_fp32_avx2(long iters, float seed) {
    const __m256 a = _mm256_set1_ps(seed), b = _mm256_set1_ps(seed * 0.5f);
    __m256 c[GB_MK_FP32_ACC];
    for (int j = 0; j < GB_MK_FP32_ACC; j++)
        c[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < iters; i++) {
        /* Independent chains: 12 >= FMA latency (4-5) x pipes (2). */
#pragma GCC unroll 16
        for (int j = 0; j < GB_MK_FP32_ACC; j++)
            c[j] = _mm256_fmadd_ps(a, b, c[j]);
    }
    __m256 s = c[0];
    for (int j = 1; j < GB_MK_FP32_ACC; j++)
        s = _mm256_add_ps(s, c[j]);
    return hsum256(s);
}

double gb_mk_bf16_avx2(long iters, const float *a, const uint16_t *b) {
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    long k = 0;
    for (long i = 0; i < iters; i++) {
        /* 16 bf16 of B widened to fp32 without a conversion instruction: the even element
         * of each u32 pair is the low half shifted up, the odd one the high half masked. */
        __m256i raw = _mm256_loadu_si256((const __m256i *)(b + k * GB_MK_GEMM_COLS));
        __m256 b0 = _mm256_castsi256_ps(_mm256_slli_epi32(raw, 16));
        __m256 b1 = _mm256_castsi256_ps(_mm256_and_si256(raw, hi));
        const float *ak = a + k * GB_MK_GEMM_ROWS;
        __m256 x = _mm256_broadcast_ss(ak + 0);
        c00 = _mm256_fmadd_ps(x, b0, c00);
        c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(ak + 1);
        c10 = _mm256_fmadd_ps(x, b0, c10);
        c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(ak + 2);
        c20 = _mm256_fmadd_ps(x, b0, c20);
        c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(ak + 3);
        c30 = _mm256_fmadd_ps(x, b0, c30);
        c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(ak + 4);
        c40 = _mm256_fmadd_ps(x, b0, c40);
        c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(ak + 5);
        c50 = _mm256_fmadd_ps(x, b0, c50);
        c51 = _mm256_fmadd_ps(x, b1, c51);
        k = k + 1 == GB_MK_GEMM_K ? 0 : k + 1;
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c00, c01), _mm256_add_ps(c10, c11)),
                             _mm256_add_ps(_mm256_add_ps(c20, c21), _mm256_add_ps(c30, c31)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c40, c41), _mm256_add_ps(c50, c51)));
    return hsum256(s);
}
