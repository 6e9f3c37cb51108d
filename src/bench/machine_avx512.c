/* AVX-512 (F + BF16) microbenchmark kernels (see machine_kernels.h). */
#include "bench/machine_kernels.h"

#include <immintrin.h>

uint64_t gb_mk_read_avx512(const void *p, size_t bytes) {
    const __m512i *v = p;
    size_t n = bytes / 64;
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0,
            s7 = s0;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        s0 = _mm512_add_epi64(s0, _mm512_load_si512(v + i + 0));
        s1 = _mm512_add_epi64(s1, _mm512_load_si512(v + i + 1));
        s2 = _mm512_add_epi64(s2, _mm512_load_si512(v + i + 2));
        s3 = _mm512_add_epi64(s3, _mm512_load_si512(v + i + 3));
        s4 = _mm512_add_epi64(s4, _mm512_load_si512(v + i + 4));
        s5 = _mm512_add_epi64(s5, _mm512_load_si512(v + i + 5));
        s6 = _mm512_add_epi64(s6, _mm512_load_si512(v + i + 6));
        s7 = _mm512_add_epi64(s7, _mm512_load_si512(v + i + 7));
    }
    s0 = _mm512_add_epi64(_mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3)),
                          _mm512_add_epi64(_mm512_add_epi64(s4, s5), _mm512_add_epi64(s6, s7)));
    return (uint64_t)_mm512_reduce_add_epi64(s0);
}

double gb_mk_fp32_avx512(long iters, float seed) {
    const __m512 a = _mm512_set1_ps(seed), b = _mm512_set1_ps(seed * 0.5f);
    __m512 c[GB_MK_FP32_ACC];
    for (int j = 0; j < GB_MK_FP32_ACC; j++)
        c[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 16
        for (int j = 0; j < GB_MK_FP32_ACC; j++)
            c[j] = _mm512_fmadd_ps(a, b, c[j]);
    }
    __m512 s = c[0];
    for (int j = 1; j < GB_MK_FP32_ACC; j++)
        s = _mm512_add_ps(s, c[j]);
    return _mm512_reduce_add_ps(s);
}

double gb_mk_bf16_avx512(long iters, float seed) {
    /* 32 bf16 in each operand (pairs per fp32 lane): vdpbf16ps adds a0*b0 + a1*b1 per lane. */
    const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(seed), _mm512_set1_ps(seed));
    const __m512bh b =
        _mm512_cvtne2ps_pbh(_mm512_set1_ps(seed * 0.5f), _mm512_set1_ps(seed * 0.25f));
    __m512 c[GB_MK_BF16_ACC];
    for (int j = 0; j < GB_MK_BF16_ACC; j++)
        c[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 16
        for (int j = 0; j < GB_MK_BF16_ACC; j++)
            c[j] = _mm512_dpbf16_ps(c[j], a, b);
    }
    __m512 s = c[0];
    for (int j = 1; j < GB_MK_BF16_ACC; j++)
        s = _mm512_add_ps(s, c[j]);
    return _mm512_reduce_add_ps(s);
}
