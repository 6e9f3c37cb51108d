/* Ceilings of a CUDA device: D2D copy bandwidth and cuBLAS matmul peaks (cuda_ceilings.h).
 *
 * Everything runs on a private stream of the device's primary context (the one the backend
 * uses too), and every resource is released before returning, on errors included. */
#include "backend/cuda_ceilings.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "util/error.h"
}

#define GIB ((size_t)1 << 30)
#define MAX_REPEATS 64

namespace {

/* Resources of one measurement; freed by release() whatever happened. */
struct probe {
    int prev_device = -1;
    cudaStream_t stream = nullptr;
    cudaEvent_t e0 = nullptr, e1 = nullptr;
    cublasHandle_t blas = nullptr;
    void *buf[3] = {nullptr, nullptr, nullptr};
};

void release_buffers(probe *p) {
    for (void *&b : p->buf) {
        if (b) cudaFree(b);
        b = nullptr;
    }
}

void release(probe *p) {
    release_buffers(p);
    if (p->blas) cublasDestroy(p->blas);
    if (p->e0) cudaEventDestroy(p->e0);
    if (p->e1) cudaEventDestroy(p->e1);
    if (p->stream) cudaStreamDestroy(p->stream);
    if (p->prev_device >= 0) cudaSetDevice(p->prev_device);
    /* Errors above are not sticky ones; clear them so the next CUDA call does not see them. */
    (void)cudaGetLastError();
}

int cuda_fail(gb_error *err, cudaError_t e, const char *what, int device) {
    (void)cudaGetLastError();
    int code = e == cudaErrorMemoryAllocation ? GB_ERR_NOMEM : GB_ERR_DEVICE;
    return gb_error_set(err, code, "cuda ceilings, device %d: %s: %s", device, what,
                        cudaGetErrorString(e));
}

#define CK(call, what)                                                                             \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) return cuda_fail(err, e_, what, device);                            \
    } while (0)

int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Deterministic values in [-1, 1): random-looking data draws realistic power (zeros would
 * let the tensor cores run cooler and faster than on real weights). */
template <typename T> __global__ void fill_kernel(T *p, size_t n, uint32_t seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        uint32_t h = (uint32_t)i * 2654435761u ^ seed;
        h ^= h >> 15;
        h *= 2246822519u;
        h ^= h >> 13;
        const float v = (float)(h >> 8) * (2.0f / 16777216.0f) - 1.0f;
        p[i] = (T)v;
    }
}

template <typename T> cudaError_t fill(T *p, size_t n, uint32_t seed, cudaStream_t s) {
    fill_kernel<T><<<1024, 256, 0, s>>>(p, n, seed);
    return cudaGetLastError();
}

/* Seconds between the two events around one call. */
int elapsed(probe *p, double *sec, int device, gb_error *err) {
    CK(cudaEventSynchronize(p->e1), "cudaEventSynchronize");
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, p->e0, p->e1), "cudaEventElapsedTime");
    *sec = ms * 1e-3;
    return 0;
}

int measure_copy(probe *p, size_t bytes, int repeats, double *gbs, int device, gb_error *err) {
    CK(cudaMalloc(&p->buf[0], bytes), "cudaMalloc (copy source)");
    CK(cudaMalloc(&p->buf[1], bytes), "cudaMalloc (copy destination)");
    CK(cudaMemsetAsync(p->buf[0], 1, bytes, p->stream), "cudaMemsetAsync");
    double t[MAX_REPEATS];
    for (int i = 0; i < repeats + 2; i++) { /* two warm-up copies */
        CK(cudaEventRecord(p->e0, p->stream), "cudaEventRecord");
        CK(cudaMemcpyAsync(p->buf[1], p->buf[0], bytes, cudaMemcpyDeviceToDevice, p->stream),
           "cudaMemcpyAsync (device to device)");
        CK(cudaEventRecord(p->e1, p->stream), "cudaEventRecord");
        double sec = 0;
        GB_TRY(elapsed(p, &sec, device, err));
        if (i >= 2) t[i - 2] = sec;
    }
    release_buffers(p);
    const double s = median(t, repeats);
    if (!(s > 0))
        return gb_error_set(err, GB_ERR_DEVICE, "cuda ceilings, device %d: copy took no time",
                            device);
    *gbs = 2.0 * (double)bytes / s * 1e-9;
    return 0;
}

/* One GEMM type: C (n x n, fp32) = A^T B, as bench_cuda_kernels.c and the engine's prefill
 * (weights transposed) do it. */
int measure_gemm(probe *p, cudaDataType_t ab, int n, int repeats, double *tflops, int device,
                 gb_error *err) {
    const size_t cnt = (size_t)n * (size_t)n;
    const size_t esz = ab == CUDA_R_32F ? 4 : 2;
    CK(cudaMalloc(&p->buf[0], cnt * esz), "cudaMalloc (GEMM A)");
    CK(cudaMalloc(&p->buf[1], cnt * esz), "cudaMalloc (GEMM B)");
    CK(cudaMalloc(&p->buf[2], cnt * 4), "cudaMalloc (GEMM C)");
    for (int i = 0; i < 2; i++) {
        cudaError_t e = ab == CUDA_R_16BF
                            ? fill((__nv_bfloat16 *)p->buf[i], cnt, 17u + i, p->stream)
                        : ab == CUDA_R_16F ? fill((__half *)p->buf[i], cnt, 17u + i, p->stream)
                                           : fill((float *)p->buf[i], cnt, 17u + i, p->stream);
        CK(e, "fill kernel");
    }
    const float one = 1.f, zero = 0.f;
    double t[MAX_REPEATS];
    for (int i = 0; i < repeats + 3; i++) { /* three warm-up calls (cuBLAS picks its kernel) */
        CK(cudaEventRecord(p->e0, p->stream), "cudaEventRecord");
        cublasStatus_t s = cublasGemmEx(p->blas, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &one, p->buf[0],
                                        ab, n, p->buf[1], ab, n, &zero, p->buf[2], CUDA_R_32F, n,
                                        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        if (s != CUBLAS_STATUS_SUCCESS)
            return gb_error_set(err, GB_ERR_DEVICE, "cuda ceilings, device %d: cublasGemmEx: %s",
                                device, cublasGetStatusString(s));
        CK(cudaEventRecord(p->e1, p->stream), "cudaEventRecord");
        double sec = 0;
        GB_TRY(elapsed(p, &sec, device, err));
        if (i >= 3) t[i - 3] = sec;
    }
    release_buffers(p);
    const double s = median(t, repeats);
    if (!(s > 0))
        return gb_error_set(err, GB_ERR_DEVICE, "cuda ceilings, device %d: GEMM took no time",
                            device);
    *tflops = 2.0 * (double)n * (double)n * (double)n / s * 1e-12;
    return 0;
}

/* GB_ERR_DEVICE unless `device` is an ordinal the runtime can use. */
int check_device(int device, gb_error *err) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        (void)cudaGetLastError();
        return gb_error_set(err, GB_ERR_DEVICE, "no usable GPU (%s)",
                            e != cudaSuccess ? cudaGetErrorString(e) : "no devices");
    }
    if (device < 0 || device >= n)
        return gb_error_set(err, GB_ERR_DEVICE, "device %d does not exist (%d GPU%s)", device, n,
                            n == 1 ? "" : "s");
    return 0;
}

/* Switches to `device`, remembering the previous one in p (release() switches back). */
int select_device(probe *p, int device, gb_error *err) {
    GB_TRY(check_device(device, err));
    int prev = 0;
    CK(cudaGetDevice(&prev), "cudaGetDevice");
    p->prev_device = prev;
    CK(cudaSetDevice(device), "cudaSetDevice");
    return 0;
}

int identify(int device, gb_cuda_ceilings *out, gb_error *err) {
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    out->device = device;
    snprintf(out->name, sizeof out->name, "%.95s", prop.name);
    out->cc_major = prop.major;
    out->cc_minor = prop.minor;
    out->memory_total_gib = (double)prop.totalGlobalMem / (double)GIB;
    CK(cudaDriverGetVersion(&out->driver_version), "cudaDriverGetVersion");
    CK(cudaRuntimeGetVersion(&out->runtime_version), "cudaRuntimeGetVersion");
    return 0;
}

int measure(probe *p, int device, const gb_cuda_ceilings_opts *o, gb_cuda_ceilings *out,
            gb_error *err) {
    GB_TRY(select_device(p, device, err));
    GB_TRY(identify(device, out, err));
    const int repeats = o->repeats > 0 ? o->repeats : 10;
    const int n = o->gemm_n > 0 ? o->gemm_n : 8192;
    if (repeats > MAX_REPEATS || n > 32768)
        return gb_error_set(err, GB_ERR_INVALID,
                            "cuda ceilings: %d repeats (max %d) / GEMM size %d (max 32768)",
                            repeats, MAX_REPEATS, n);
    size_t bytes = o->copy_bytes ? o->copy_bytes : 2 * GIB;
    if (!o->copy_bytes) {
        /* Another process may hold most of the card: copy what fits (two buffers plus
         * headroom); 256 MiB is still far beyond the 50-60 MiB L2 of Hopper. */
        size_t free_b = 0, total_b = 0;
        CK(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
        while (bytes > ((size_t)256 << 20) && 4 * bytes > free_b)
            bytes /= 2;
    }
    CK(cudaStreamCreateWithFlags(&p->stream, cudaStreamNonBlocking), "cudaStreamCreate");
    CK(cudaEventCreate(&p->e0), "cudaEventCreate");
    CK(cudaEventCreate(&p->e1), "cudaEventCreate");
    cublasStatus_t s = cublasCreate(&p->blas);
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasSetStream(p->blas, p->stream);
    /* Default math mode: no TF32 for the fp32 GEMM, whatever a caller set elsewhere. */
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasSetMathMode(p->blas, CUBLAS_DEFAULT_MATH);
    if (s != CUBLAS_STATUS_SUCCESS)
        return gb_error_set(err, GB_ERR_DEVICE, "cuda ceilings, device %d: cuBLAS set-up: %s",
                            device, cublasGetStatusString(s));
    out->copy_bytes = bytes;
    out->gemm_n = n;
    out->repeats = repeats;
    GB_TRY(measure_copy(p, bytes, repeats, &out->copy_gbs, device, err));
    GB_TRY(measure_gemm(p, CUDA_R_16BF, n, repeats, &out->bf16_tflops, device, err));
    GB_TRY(measure_gemm(p, CUDA_R_16F, n, repeats, &out->fp16_tflops, device, err));
    GB_TRY(measure_gemm(p, CUDA_R_32F, n, repeats, &out->fp32_tflops, device, err));
    return 0;
}

} // namespace

/* Properties only: no device switch, no context on the device beyond what the runtime
 * needs, so `genbench info --no-measure` stays light. */
extern "C" int gb_cuda_ceilings_identify(int device, gb_cuda_ceilings *out, gb_error *err) {
    memset(out, 0, sizeof *out);
    GB_TRY(check_device(device, err));
    return identify(device, out, err);
}

extern "C" int gb_cuda_ceilings_measure(int device, const gb_cuda_ceilings_opts *opts,
                                        gb_cuda_ceilings *out, gb_error *err) {
    memset(out, 0, sizeof *out);
    const gb_cuda_ceilings_opts o = opts ? *opts : gb_cuda_ceilings_opts{0, 0, 0};
    probe p;
    int rc = measure(&p, device, &o, out, err);
    release(&p);
    return rc;
}
