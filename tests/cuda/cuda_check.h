/* CK(call): the GPU benchmark programs' check of a CUDA runtime call; on failure prints the
 * file, line, call and CUDA's message and exits 1 (programs, not the library). */
#ifndef GB_TESTS_CUDA_CHECK_H
#define GB_TESTS_CUDA_CHECK_H

#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#define CK(x)                                                                                      \
    do {                                                                                           \
        cudaError_t e_ = (x);                                                                      \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));    \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#endif
