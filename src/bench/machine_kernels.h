/* Internal: the microbenchmark kernels behind machine.c, one set per ISA (the _avx512.c /
 * _avx2.c files are compiled with their ISA flags and only called after
 * __builtin_cpu_supports says the CPU has it).
 *
 * read_*:  sums `bytes` bytes at p (64-byte aligned, bytes a multiple of 512) as 64-bit
 *          integers with independent accumulators; returns the sum so nothing is elided.
 *          AVX2 / AVX-512: as four interleaved streams (the quarters), each prefetched
 *          GB_MK_READ_AHEAD bytes ahead (prefetches past the end do not fault).
 * fp32_*:  `iters` iterations of GB_MK_FP32_ACC independent FMAs per lane on register
 *          operands; FLOP = iters * GB_MK_FP32_ACC * lanes * 2. Returns a value derived from
 *          the accumulators (seed chooses the operands at run time).
 * bf16_*:  AVX-512: iters iterations of GB_MK_BF16_ACC vdpbf16ps on registers,
 *          FLOP = iters * ACC * 16 lanes * 2 pairs * 2.
 *          AVX2 / scalar: a 6x16 GEMM microkernel step per iteration with bf16 B widened to
 *          fp32 (shift / mask) and fp32 A broadcast from L1: FLOP = iters * 6 * 16 * 2. */
#ifndef GB_BENCH_MACHINE_KERNELS_H
#define GB_BENCH_MACHINE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define GB_MK_READ_AHEAD 1024
#define GB_MK_FP32_ACC 12
#define GB_MK_BF16_ACC 12
#define GB_MK_GEMM_ROWS 6
#define GB_MK_GEMM_COLS 16
#define GB_MK_GEMM_K 64 /* k steps in the L1-resident panels (A: 64x6 fp32, B: 64x16 bf16) */

/* The vector read loops' four streams: b[j] = the j-th quarter of [p, p + bytes), each
 * bytes / 4 long (a multiple of 128). */
static inline size_t gb_mk_streams(const void *p, size_t bytes, const char *b[4]) {
    const size_t q = bytes / 4;
    for (int j = 0; j < 4; j++)
        b[j] = (const char *)p + (size_t)j * q;
    return q;
}

/* Prefetches the two cache lines GB_MK_READ_AHEAD bytes past off in each stream
 * (__builtin_prefetch: prefetcht0, as _mm_prefetch(..., _MM_HINT_T0)). */
static inline __attribute__((always_inline)) void gb_mk_prefetch4(const char *const b[4],
                                                                  size_t off) {
    for (int j = 0; j < 4; j++) {
        __builtin_prefetch(b[j] + off + GB_MK_READ_AHEAD, 0, 3);
        __builtin_prefetch(b[j] + off + GB_MK_READ_AHEAD + 64, 0, 3);
    }
}

uint64_t gb_mk_read_scalar(const void *p, size_t bytes);
double gb_mk_fp32_scalar(long iters, float seed);
double gb_mk_bf16_scalar(long iters, const float *a, const uint16_t *b);

uint64_t gb_mk_read_avx512(const void *p, size_t bytes);
double gb_mk_fp32_avx512(long iters, float seed);
double gb_mk_bf16_avx512(long iters, float seed);

uint64_t gb_mk_read_avx2(const void *p, size_t bytes);
double gb_mk_fp32_avx2(long iters, float seed);
/* a: GB_MK_GEMM_K x 6 fp32, b: GB_MK_GEMM_K x 16 bf16 (pairs interleaved: the even/odd
 * columns of a u32 lane). */
double gb_mk_bf16_avx2(long iters, const float *a, const uint16_t *b);

#endif
