/* AVX-512 (F + BF16) microbenchmark kernels (see machine_kernels.h). */
#include "bench/machine_kernels.h"

#include <immintrin.h>

/* Four interleaved prefetched streams, as the AVX2 read loop (machine_avx2.c says why). */
uint64_t gb_mk_read_avx512(const void *p, size_t bytes) {
    const char *b[4];
    const size_t q = gb_mk_streams(p, bytes, b);
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0,
            s7 = s0;
    for (size_t off = 0; off < q; off += 128) {
        gb_mk_prefetch4(b, off);
        const __m512i *v0 = (const __m512i *)(b[0] + off), *v1 = (const __m512i *)(b[1] + off);
        const __m512i *v2 = (const __m512i *)(b[2] + off), *v3 = (const __m512i *)(b[3] + off);
        s0 = _mm512_add_epi64(s0, _mm512_load_si512(v0 + 0));
        s1 = _mm512_add_epi64(s1, _mm512_load_si512(v0 + 1));
        s2 = _mm512_add_epi64(s2, _mm512_load_si512(v1 + 0));
        s3 = _mm512_add_epi64(s3, _mm512_load_si512(v1 + 1));
        s4 = _mm512_add_epi64(s4, _mm512_load_si512(v2 + 0));
        s5 = _mm512_add_epi64(s5, _mm512_load_si512(v2 + 1));
        s6 = _mm512_add_epi64(s6, _mm512_load_si512(v3 + 0));
        s7 = _mm512_add_epi64(s7, _mm512_load_si512(v3 + 1));
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
