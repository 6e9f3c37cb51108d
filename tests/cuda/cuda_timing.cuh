/* Event timing for the CUDA benchmark programs (C++ only: it takes a callable). */
#ifndef GB_TESTS_CUDA_TIMING_CUH
#define GB_TESTS_CUDA_TIMING_CUH

#include "cuda/cuda_check.h"

/* Milliseconds between events recorded before and after launch() on s (launch errors
 * checked). */
template <typename F> static float gb_time_ms(cudaStream_t s, F launch) {
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    CK(cudaEventRecord(a, s));
    launch();
    CK(cudaEventRecord(b, s));
    CK(cudaEventSynchronize(b));
    CK(cudaGetLastError());
    float ms;
    CK(cudaEventElapsedTime(&ms, a, b));
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return ms;
}

#endif
