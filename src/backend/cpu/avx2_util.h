/* Helpers shared by the AVX2 kernel files (compiled with AVX2 + FMA enabled; include only
 * from those). */
#ifndef GB_BACKEND_CPU_AVX2_UTIL_H
#define GB_BACKEND_CPU_AVX2_UTIL_H

#include <immintrin.h>

#define GB_AI static inline __attribute__((always_inline))

/* Sum of the 8 lanes. */
GB_AI float gb_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#endif
