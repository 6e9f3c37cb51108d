/* Bulk copies into shared memory completing on mbarriers (sm_90), for the kernels that stream
 * weights through a ring of shared-memory pages: the fused decode step (cuda_decode_step.cu)
 * and the read-bandwidth benchmark (tests/cuda/bench_cuda_stream.cu).
 *
 * A ring stage has a "full" barrier (count 1: the producer's arrive.expect_tx of the page's
 * bytes; the copy engine completes the transaction) and, where consumers hand pages back, an
 * "empty" barrier (count = the consumers that release it). Waits name the phase parity:
 * phase k of a barrier is waited with parity k & 1, so a waiter must never be two phases
 * behind the barrier (a parity wait cannot tell phase k from phase k - 2).
 *
 * Addresses: dst and src 16-byte aligned, bytes a multiple of 16. */
#ifndef GB_CUDA_BULK_CUH
#define GB_CUDA_BULK_CUH

#include <stdint.h>

__device__ __forceinline__ unsigned gb_smem_u32(const void *p) {
    return (unsigned)__cvta_generic_to_shared(p);
}
__device__ __forceinline__ void gb_mbar_init(uint64_t *b, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(gb_smem_u32(b)), "r"(count)
                 : "memory");
}
/* after every init of a block: the barriers visible to the copy engine */
__device__ __forceinline__ void gb_mbar_init_fence() {
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}
/* one arrival that also expects `bytes` of copy transactions in the current phase */
__device__ __forceinline__ void gb_mbar_expect(uint64_t *b, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(gb_smem_u32(b)),
                 "r"(bytes)
                 : "memory");
}
__device__ __forceinline__ void gb_mbar_arrive(uint64_t *b) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(gb_smem_u32(b)) : "memory");
}
/* 1 when the phase of this parity has completed (does not block) */
__device__ __forceinline__ bool gb_mbar_test(uint64_t *b, unsigned parity) {
    unsigned done;
    asm volatile("{\n\t.reg .pred p;\n\t"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n\t"
                 "selp.u32 %0, 1, 0, p;\n\t}"
                 : "=r"(done)
                 : "r"(gb_smem_u32(b)), "r"(parity)
                 : "memory");
    return done != 0;
}
__device__ __forceinline__ void gb_mbar_wait(uint64_t *b, unsigned parity) {
    while (!gb_mbar_test(b, parity)) {
    }
}
/* global -> shared copy by the copy engine, completing `bytes` on bar */
__device__ __forceinline__ void gb_bulk_copy(void *dst, const void *src, unsigned bytes,
                                             uint64_t *bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], "
                 "%2, [%3];" ::"r"(gb_smem_u32(dst)),
                 "l"(src), "r"(bytes), "r"(gb_smem_u32(bar))
                 : "memory");
}

#endif
