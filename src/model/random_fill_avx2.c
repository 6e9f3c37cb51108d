/* AVX2 loop of the random-weight rule: four 64-bit splitmix streams per vector, eight
 * elements per iteration. Bit-identical to gb_random_kernel_scalar (tests compare them): the
 * 64-bit products are exact modulo 2^64 and the float steps are the same single-rounding
 * float32 operations (no fused multiply-add: contraction is off for this file). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "model/random_kernels.h"

#if defined(__x86_64__) && defined(__AVX2__)
#include <immintrin.h>

/* a * c modulo 2^64 per 64-bit lane: AVX2 has only 32x32->64 multiplies. */
static inline __m256i mul64(__m256i a, __m256i c_lo, __m256i c_hi) {
    __m256i lo = _mm256_mul_epu32(a, c_lo);
    __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), c_lo),
                                     _mm256_mul_epu32(a, c_hi));
    return _mm256_add_epi64(lo, _mm256_slli_epi64(cross, 32));
}

/* splitmix64 finaliser of four states, returning (z >> 40) of each in the low 32 bits. */
static inline __m256i mix(__m256i z, __m256i m1l, __m256i m1h, __m256i m2l, __m256i m2h) {
    z = mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), m1l, m1h);
    z = mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), m2l, m2h);
    z = _mm256_xor_si256(z, _mm256_srli_epi64(z, 31));
    return _mm256_srli_epi64(z, 40);
}

void gb_random_kernel_avx2(uint64_t key, float scale, int norm, int64_t first, int64_t count,
                           uint16_t *out) {
    const uint64_t G = 0x9E3779B97F4A7C15ULL, M1 = 0xBF58476D1CE4E5B9ULL,
                   M2 = 0x94D049BB133111EBULL;
    const __m256i m1l = _mm256_set1_epi64x((long long)(M1 & 0xffffffffu));
    const __m256i m1h = _mm256_set1_epi64x((long long)(M1 >> 32));
    const __m256i m2l = _mm256_set1_epi64x((long long)(M2 & 0xffffffffu));
    const __m256i m2h = _mm256_set1_epi64x((long long)(M2 >> 32));
    const __m256i step = _mm256_set1_epi64x((long long)(G * 8));
    /* lanes 0..3 hold elements i..i+3, lanes of zb elements i+4..i+7 */
    uint64_t z0 = key + (uint64_t)(first + 1) * G;
    __m256i za = _mm256_set_epi64x((long long)(z0 + 3 * G), (long long)(z0 + 2 * G),
                                   (long long)(z0 + G), (long long)z0);
    __m256i zb = _mm256_add_epi64(za, _mm256_set1_epi64x((long long)(4 * G)));
    const __m256i pick = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    const __m256i half = _mm256_set1_epi32(8388608);
    const __m256 inv = _mm256_set1_ps(1.0f / 8388608.0f), vscale = _mm256_set1_ps(scale);
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256i round = _mm256_set1_epi32(0x7FFF), lsb = _mm256_set1_epi32(1);
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256i a = _mm256_permutevar8x32_epi32(mix(za, m1l, m1h, m2l, m2h), pick);
        __m256i b = _mm256_permutevar8x32_epi32(mix(zb, m1l, m1h, m2l, m2h), pick);
        za = _mm256_add_epi64(za, step);
        zb = _mm256_add_epi64(zb, step);
        /* eight 24-bit values in element order */
        __m256i u = _mm256_permute2x128_si256(a, b, 0x20);
        __m256 r = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(u, half)), inv);
        __m256 v = _mm256_mul_ps(r, vscale);
        if (norm) v = _mm256_add_ps(one, v);
        __m256i bits = _mm256_castps_si256(v);
        __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), lsb);
        __m256i h = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, round), odd), 16);
        __m128i packed =
            _mm_packus_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        _mm_storeu_si128((__m128i *)(out + i), packed);
    }
    if (i < count) gb_random_kernel_scalar(key, scale, norm, first + i, count - i, out + i);
}

#else
void gb_random_kernel_avx2(uint64_t key, float scale, int norm, int64_t first, int64_t count,
                           uint16_t *out) {
    gb_random_kernel_scalar(key, scale, norm, first, count, out);
}
#endif
