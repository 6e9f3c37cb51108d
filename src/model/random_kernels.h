/* Inner loops of gb_random_fill_bf16 (random.c dispatches; tests compare them). Each writes
 * the bf16 values of elements [first, first + count) of a tensor whose stream key is `key`
 * (fnv1a64(name) ^ seed): v = r * scale, plus 1.0f afterwards when `norm` is set. */
#ifndef GB_MODEL_RANDOM_KERNELS_H
#define GB_MODEL_RANDOM_KERNELS_H

#include <stdint.h>

void gb_random_kernel_scalar(uint64_t key, float scale, int norm, int64_t first, int64_t count,
                             uint16_t *out);
/* AVX2 (x86-64 only); callers check the CPU first. */
void gb_random_kernel_avx2(uint64_t key, float scale, int norm, int64_t first, int64_t count,
                           uint16_t *out);

#endif
