/* Measured ceilings of one CUDA device: the denominators of the efficiency numbers of a CUDA
 * run (product.md §2), measured the way tests/cuda/bench_cuda_kernels.c does.
 *
 * - copy bandwidth: cudaMemcpyAsync device-to-device of copy_bytes (default 2 GiB, less when
 *   the card has less than 4x that free), timed with CUDA events; GB/s counts the bytes read
 *   plus the bytes written (2 * copy_bytes) per 1e9 s, median of `repeats` copies after two
 *   warm-up copies. A decode step that streams the weights is bounded by weight bytes / this
 *   bandwidth (reads only, but a copy is the fastest the memory system moves bytes).
 * - matmul peaks: cuBLAS GEMM n x n x n (default n = 8192) on pseudo-random data in [-1, 1],
 *   2 n^3 FLOP per call, TFLOP/s = 1e12 FLOP/s, median of `repeats` calls after three warm-up
 *   calls. bf16 and fp16: 16-bit operands, float32 accumulation and float32 output (as the
 *   engine's prefill GEMMs). fp32: float32 operands with CUBLAS_COMPUTE_32F and the default
 *   math mode, so no TF32 (the engine's float32 GEMMs do not use TF32 either).
 *
 * Default sizes take about one second on an H100 (most of it CUDA and cuBLAS start-up).
 * Errors come back as GB_ERR_DEVICE (no device, CUDA or cuBLAS failure) or GB_ERR_NOMEM (device
 * memory) with the failing call in the message; nothing is printed. Builds without CUDA get a
 * stub answering GB_ERR_DEVICE. The current device of the calling thread is restored. */
#ifndef GB_BACKEND_CUDA_CEILINGS_H
#define GB_BACKEND_CUDA_CEILINGS_H

#include <stddef.h>

#include "genbench.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gb_cuda_ceilings_opts {
    size_t copy_bytes; /* bytes per copy; 0 = 2 GiB */
    int gemm_n;        /* GEMM size n (n x n x n); 0 = 8192 */
    int repeats;       /* timed repetitions per number (median kept); 0 = 10, max 64 */
} gb_cuda_ceilings_opts;

typedef struct gb_cuda_ceilings {
    /* identity (gb_cuda_ceilings_identify fills these only) */
    int device;              /* CUDA device ordinal */
    char name[96];           /* cudaDeviceProp.name, e.g. "NVIDIA H100 80GB HBM3" */
    int driver_version;      /* cudaDriverGetVersion: highest CUDA the driver supports, 13000 */
    int runtime_version;     /* cudaRuntimeGetVersion of this build, e.g. 13000 */
    int cc_major, cc_minor;  /* compute capability */
    double memory_total_gib; /* device memory, GiB (2^30 bytes) */
    /* measurement */
    double copy_gbs;    /* D2D copy bandwidth, bytes read + written, GB/s (1e9 B/s) */
    double bf16_tflops; /* cuBLAS bf16 GEMM, fp32 accumulation, TFLOP/s (1e12 FLOP/s) */
    double fp16_tflops; /* cuBLAS fp16 GEMM, fp32 accumulation, TFLOP/s */
    double fp32_tflops; /* cuBLAS fp32 GEMM without TF32, TFLOP/s */
    size_t copy_bytes;  /* bytes per copy actually used */
    int gemm_n;         /* GEMM size used */
    int repeats;        /* timed repetitions per number */
} gb_cuda_ceilings;

/* Device identity only (name, versions, memory): fast, allocates nothing. GB_ERR_DEVICE when
 * there is no such device. */
int gb_cuda_ceilings_identify(int device, gb_cuda_ceilings *out, gb_error *err);

/* Identity plus the measurement (opts NULL = defaults). */
int gb_cuda_ceilings_measure(int device, const gb_cuda_ceilings_opts *opts, gb_cuda_ceilings *out,
                             gb_error *err);

#ifdef __cplusplus
}
#endif

#endif
