/* AVX2 attention blocks for a GQA group (see opt.h, att_scores / att_accum): the G query
 * heads that share one KV head are scored and accumulated together, so every K and V row is
 * loaded once per group instead of once per head, and the G independent accumulation
 * chains hide the FMA latency that a one-head dot product (one chain, then a horizontal
 * sum per key) exposes. Prefill of the 1B shape: G = 4, head_dim 64, 64-key blocks. */
#include <immintrin.h>

#include "backend/cpu/avx2_util.h"
#include "backend/cpu/opt.h"

/* The per-query accumulators are named variables, one block of statements per query under
 * `if (NG > g)` (NG a constant at each inlined call): with arrays indexed in a loop over g,
 * GCC 12 left the NG = 3 and 4 loops rolled and the accumulators in memory, every FMA a
 * store-forwarded chain (one-token decode attention of the 1B shape, 16 layers, KV in cache:
 * 2.5-2.8 -> 0.6-0.9 ms, docs/performance.md "Session 4"). */
#define GB_G4(X) X(0) X(1) X(2) X(3)

/* Scores of NG (1..4) queries against 2 keys: 2 x NG accumulators over the head. */
GB_AI void scores_tile(float *s, int lds, const float *q, int hd, const float *k0, const float *k1,
                       int i, int NG, float scale) {
#define GB_SZ(g) __m256 a0_##g = _mm256_setzero_ps(), a1_##g = a0_##g;
    GB_G4(GB_SZ)
#undef GB_SZ
    int d = 0;
    for (; d + 8 <= hd; d += 8) {
        __m256 x0 = _mm256_loadu_ps(k0 + d), x1 = _mm256_loadu_ps(k1 + d);
#define GB_SF(g)                                                                                   \
    if (NG > g) {                                                                                  \
        __m256 qg = _mm256_loadu_ps(q + (int64_t)g * hd + d);                                      \
        a0_##g = _mm256_fmadd_ps(qg, x0, a0_##g);                                                  \
        a1_##g = _mm256_fmadd_ps(qg, x1, a1_##g);                                                  \
    }
        GB_G4(GB_SF)
#undef GB_SF
    }
    const __m256 a0[4] = {a0_0, a0_1, a0_2, a0_3}, a1[4] = {a1_0, a1_1, a1_2, a1_3};
    for (int g = 0; g < NG; g++) {
        float r0 = gb_hsum256(a0[g]), r1 = gb_hsum256(a1[g]);
        for (int e = d; e < hd; e++) {
            r0 += q[(int64_t)g * hd + e] * k0[e];
            r1 += q[(int64_t)g * hd + e] * k1[e];
        }
        s[g * lds + i] = r0 * scale;
        s[g * lds + i + 1] = r1 * scale;
    }
}

void gb_attn_avx2_scores(float *s, int lds, const float *q, int G, const float *k, int64_t kstride,
                         int nk, int hd, float scale) {
    for (int g0 = 0; g0 < G; g0 += 4) {
        int ng = G - g0 < 4 ? G - g0 : 4;
        const float *qg = q + (int64_t)g0 * hd;
        float *sg = s + g0 * lds;
        /* keys in pairs; an odd last key is paired with itself (its score written twice) */
        for (int i = 0; i < nk; i += 2) {
            int i0 = i + 1 < nk ? i : nk - 2 < 0 ? 0 : nk - 2;
            const float *k0 = k + i0 * kstride, *k1 = k + (i0 + (nk > 1)) * kstride;
            switch (ng) {
            case 4:
                scores_tile(sg, lds, qg, hd, k0, k1, i0, 4, scale);
                break;
            case 3:
                scores_tile(sg, lds, qg, hd, k0, k1, i0, 3, scale);
                break;
            case 2:
                scores_tile(sg, lds, qg, hd, k0, k1, i0, 2, scale);
                break;
            default:
                scores_tile(sg, lds, qg, hd, k0, k1, i0, 1, scale);
                break;
            }
        }
    }
}

/* acc[g][d0, d0 + 16) for NG (1..4) queries over nk keys: 2 x NG accumulators. */
GB_AI void accum_tile(float *acc, const float *corr, const float *p, int ldp, int hd,
                      const float *v, int64_t vstride, int nk, int d0, int NG) {
#define GB_AZ(g)                                                                                   \
    __m256 a0_##g = _mm256_setzero_ps(), a1_##g = a0_##g;                                          \
    if (NG > g) {                                                                                  \
        __m256 c = _mm256_set1_ps(corr[g]);                                                        \
        a0_##g = _mm256_mul_ps(c, _mm256_loadu_ps(acc + (int64_t)g * hd + d0));                    \
        a1_##g = _mm256_mul_ps(c, _mm256_loadu_ps(acc + (int64_t)g * hd + d0 + 8));                \
    }
    GB_G4(GB_AZ)
#undef GB_AZ
    for (int i = 0; i < nk; i++) {
        const float *vr = v + i * vstride + d0;
        __m256 x0 = _mm256_loadu_ps(vr), x1 = _mm256_loadu_ps(vr + 8);
#define GB_AF(g)                                                                                   \
    if (NG > g) {                                                                                  \
        __m256 pg = _mm256_broadcast_ss(p + g * ldp + i);                                          \
        a0_##g = _mm256_fmadd_ps(pg, x0, a0_##g);                                                  \
        a1_##g = _mm256_fmadd_ps(pg, x1, a1_##g);                                                  \
    }
        GB_G4(GB_AF)
#undef GB_AF
    }
#define GB_AS(g)                                                                                   \
    if (NG > g) {                                                                                  \
        _mm256_storeu_ps(acc + (int64_t)g * hd + d0, a0_##g);                                      \
        _mm256_storeu_ps(acc + (int64_t)g * hd + d0 + 8, a1_##g);                                  \
    }
    GB_G4(GB_AS)
#undef GB_AS
}

void gb_attn_avx2_accum(float *acc, const float *corr, const float *p, int ldp, int G,
                        const float *v, int64_t vstride, int nk, int hd) {
    for (int g0 = 0; g0 < G; g0 += 4) {
        int ng = G - g0 < 4 ? G - g0 : 4;
        float *ag = acc + (int64_t)g0 * hd;
        const float *pg = p + g0 * ldp;
        int d = 0;
        for (; d + 16 <= hd; d += 16) {
            switch (ng) {
            case 4:
                accum_tile(ag, corr + g0, pg, ldp, hd, v, vstride, nk, d, 4);
                break;
            case 3:
                accum_tile(ag, corr + g0, pg, ldp, hd, v, vstride, nk, d, 3);
                break;
            case 2:
                accum_tile(ag, corr + g0, pg, ldp, hd, v, vstride, nk, d, 2);
                break;
            default:
                accum_tile(ag, corr + g0, pg, ldp, hd, v, vstride, nk, d, 1);
                break;
            }
        }
        for (int g = 0; g < ng; g++)
            for (int e = d; e < hd; e++) {
                float a = ag[(int64_t)g * hd + e] * corr[g0 + g];
                for (int i = 0; i < nk; i++)
                    a += pg[g * ldp + i] * v[i * vstride + e];
                ag[(int64_t)g * hd + e] = a;
            }
    }
}
