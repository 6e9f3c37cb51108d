/* Portable microbenchmark kernels (see machine_kernels.h), for CPUs without AVX2. */
#include "bench/machine_kernels.h"

#include <string.h>

uint64_t gb_mk_read_scalar(const void *p, size_t bytes) {
    const uint64_t *v = p;
    size_t n = bytes / 8;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= n; i += 4) {
        s0 += v[i];
        s1 += v[i + 1];
        s2 += v[i + 2];
        s3 += v[i + 3];
    }
    return s0 + s1 + s2 + s3;
}

double gb_mk_fp32_scalar(long iters, float seed) {
    float c[GB_MK_FP32_ACC];
    for (int j = 0; j < GB_MK_FP32_ACC; j++)
        c[j] = (float)j;
    /* c = c * a + b (not a * b + c, whose invariant product the compiler would hoist,
     * leaving one FLOP per step); with a = 1 it adds b = seed / 2 per step, like the SIMD
     * kernels. */
    float a = seed, b = seed * 0.5f;
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < GB_MK_FP32_ACC; j++)
            c[j] = c[j] * a + b;
    double s = 0;
    for (int j = 0; j < GB_MK_FP32_ACC; j++)
        s += c[j];
    return s;
}

double gb_mk_bf16_scalar(long iters, const float *a, const uint16_t *b) {
    float c[GB_MK_GEMM_ROWS][GB_MK_GEMM_COLS] = {{0}};
    long k = 0;
    for (long i = 0; i < iters; i++) {
        float bf[GB_MK_GEMM_COLS];
        for (int j = 0; j < GB_MK_GEMM_COLS; j++) {
            uint32_t u = (uint32_t)b[k * GB_MK_GEMM_COLS + j] << 16;
            memcpy(&bf[j], &u, 4);
        }
        for (int r = 0; r < GB_MK_GEMM_ROWS; r++)
            for (int j = 0; j < GB_MK_GEMM_COLS; j++)
                c[r][j] += a[k * GB_MK_GEMM_ROWS + r] * bf[j];
        k = k + 1 == GB_MK_GEMM_K ? 0 : k + 1;
    }
    double s = 0;
    for (int r = 0; r < GB_MK_GEMM_ROWS; r++)
        for (int j = 0; j < GB_MK_GEMM_COLS; j++)
            s += c[r][j];
    return s;
}
