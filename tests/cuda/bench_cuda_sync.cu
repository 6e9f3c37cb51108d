/* Latency of the ways one decode stage can hand its output to the next on the GPU, without
 * any weights: what a kernel-per-op chain pays per boundary and what a persistent decode
 * kernel would pay per grid-wide or per-flag dependency instead.
 *
 *   bench_cuda_sync [N]      (N dependent steps per measurement, default 2000)
 *
 * 1. kernel boundary: N kernels of G blocks x 128 threads captured in one CUDA graph, each
 *    reading the counter its predecessor wrote (block 0, thread 0) and writing it + 1; plain
 *    stream order, then programmatic dependent launch (trigger first, then wait, as the decode
 *    kernels do). us per boundary = replay time / N.
 * 2. grid barrier: one kernel of G resident blocks passing N barriers: a self-resetting
 *    counter with its generation word on the same 128-byte line (branch s5-mlp's barrier),
 *    the two on lines 4 KiB apart, and a two-level barrier (blocks arrive on one of 16
 *    counters; the last of each group arrives on the top counter).
 * 3. flag relay: block b of G spins until flag b - 1 holds the round, then sets flag b; us per
 *    hop = time / (N * G / 16) (N / 16 rounds around the ring): one release/acquire hand-off
 *    through L2 between two SMs.
 * Every variant checks its final counter (a missing dependency would show as a wrong count).
 * Prints one line per variant: us per dependency. */
#include "cuda/cuda_check.h"
#include "cuda/cuda_timing.cuh"

__global__ void k_step(unsigned *c, int pdl) {
    if (pdl) asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
    if (pdl) asm volatile("griddepcontrol.wait;" ::: "memory");
    if (blockIdx.x == 0 && threadIdx.x == 0) *c = *(volatile unsigned *)c + 1;
}

/* The counter a variant left on the device, checked against the expected count. */
static const char *count_ok(const unsigned *d, unsigned want) {
    unsigned v = 0;
    CK(cudaMemcpy(&v, d, 4, cudaMemcpyDeviceToHost));
    return v == want ? "ok" : "WRONG";
}

/* Best of 5 replays, after one warm-up. */
static float time_graph(cudaGraphExec_t ex, cudaStream_t s) {
    CK(cudaGraphLaunch(ex, s)); /* warm */
    CK(cudaStreamSynchronize(s));
    float best = 1e30f;
    for (int r = 0; r < 5; r++) {
        const float ms = gb_time_ms(s, [&] { CK(cudaGraphLaunch(ex, s)); });
        best = ms < best ? ms : best;
    }
    return best;
}

static void boundary(int n, int grid, int pdl, unsigned *c, cudaStream_t s) {
    CK(cudaMemset(c, 0, 4));
    cudaGraph_t g;
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    for (int i = 0; i < n; i++) {
        cudaLaunchConfig_t cfg = {};
        cfg.gridDim = dim3(grid);
        cfg.blockDim = dim3(128);
        cfg.stream = s;
        cudaLaunchAttribute at[1];
        at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        at[0].val.programmaticStreamSerializationAllowed = 1;
        cfg.attrs = at;
        cfg.numAttrs = pdl && i > 0 ? 1 : 0;
        CK(cudaLaunchKernelEx(&cfg, k_step, c, pdl));
    }
    CK(cudaStreamEndCapture(s, &g));
    cudaGraphExec_t ex;
    CK(cudaGraphInstantiate(&ex, g, 0));
    const float ms = time_graph(ex, s);
    /* warm-up + 5 timed replays, each adding n */
    printf("kernel boundary, %-5s, %5d blocks: %6.3f us  (count %s)\n", pdl ? "PDL" : "plain", grid,
           ms * 1000.f / n, count_ok(c, 6u * n));
    cudaGraphExecDestroy(ex);
    cudaGraphDestroy(g);
}

/* bar: [0] count, [gen_at] generation; two-level: counters [64 * i] for 16 groups, top at
 * [64 * 16], generation at gen_at. */
__device__ __forceinline__ unsigned ld_acquire(const unsigned *p) {
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

__global__ void k_barriers(unsigned *bar, int gen_at, int two_level, int n, unsigned *out) {
    unsigned *genp = bar + gen_at;
    for (int i = 0; i < n; i++) {
        __syncthreads();
        if (threadIdx.x == 0) {
            const unsigned gen = ld_acquire(genp);
            __threadfence();
            bool last;
            if (two_level) {
                const int groups = 16, grp = blockIdx.x % groups;
                const unsigned in_grp = (gridDim.x - grp + groups - 1) / groups;
                last = false;
                if (atomicAdd(bar + 64 * grp, 1u) == in_grp - 1) {
                    bar[64 * grp] = 0;
                    __threadfence(); /* the reset before the arrival on the top counter */
                    last = atomicAdd(bar + 64 * groups, 1u) == groups - 1;
                    if (last) bar[64 * groups] = 0;
                }
            } else {
                last = atomicAdd(bar, 1u) == gridDim.x - 1;
                if (last) bar[0] = 0;
            }
            if (last) {
                __threadfence();
                atomicExch(genp, gen + 1);
            } else {
                while (ld_acquire(genp) == gen) {
                }
            }
        }
        __syncthreads();
    }
    if (blockIdx.x == 0 && threadIdx.x == 0) *out = ld_acquire(genp);
}

static void barriers(int n, int grid, int gen_at, int two_level, unsigned *bar, unsigned *out,
                     cudaStream_t s, const char *what) {
    CK(cudaMemset(bar, 0, 64 * 1024 * 4));
    k_barriers<<<grid, 128, 0, s>>>(bar, gen_at, two_level, 16, out); /* warm */
    CK(cudaStreamSynchronize(s));
    CK(cudaMemset(bar, 0, 64 * 1024 * 4));
    const float ms =
        gb_time_ms(s, [&] { k_barriers<<<grid, 128, 0, s>>>(bar, gen_at, two_level, n, out); });
    printf("grid barrier, %-22s, %5d blocks: %6.3f us  (count %s)\n", what, grid, ms * 1000.f / n,
           count_ok(out, (unsigned)n));
}

/* flags[64 * b]: round last seen by block b (one 256-byte slot each). */
__global__ void k_relay(unsigned *flags, int rounds, unsigned *out) {
    if (threadIdx.x != 0) return;
    const int b = blockIdx.x, prev = (b + gridDim.x - 1) % gridDim.x;
    for (unsigned r = 1; r <= (unsigned)rounds; r++) {
        if (b != 0 || r > 1)
            while (ld_acquire(flags + 64 * prev) < (b == 0 ? r - 1 : r)) {
            }
        asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(flags + 64 * b), "r"(r)
                     : "memory");
    }
    if (b == (int)gridDim.x - 1) *out = ld_acquire(flags + 64 * b);
}

static void relay(int n, int grid, unsigned *flags, unsigned *out, cudaStream_t s) {
    const int rounds = n / 16 > 0 ? n / 16 : 1;
    CK(cudaMemset(flags, 0, 64 * 1024 * 4));
    const float ms = gb_time_ms(s, [&] { k_relay<<<grid, 32, 0, s>>>(flags, rounds, out); });
    printf("flag relay, %5d blocks: %6.3f us per hop  (count %s)\n", grid,
           ms * 1000.f / ((float)rounds * grid), count_ok(out, (unsigned)rounds));
}

int main(int argc, char **argv) {
    const int n = argc > 1 ? atoi(argv[1]) : 2000;
    int sms = 0, dev = 0;
    CK(cudaGetDevice(&dev));
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    unsigned *c, *bar, *out;
    CK(cudaMalloc(&c, 4));
    CK(cudaMalloc(&bar, 64 * 1024 * 4));
    CK(cudaMalloc(&out, 4));
    const int grids[3] = {1, sms, 8 * sms};
    for (int pdl = 0; pdl < 2; pdl++)
        for (int g = 0; g < 3; g++)
            boundary(n, grids[g], pdl, c, s);
    /* persistent grids: 1 and 6 blocks of 128 threads per SM, all resident */
    const int pgrids[2] = {sms, 6 * sms};
    int per_sm = 0; /* a barrier or a relay over blocks that are not all resident never ends */
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k_barriers, 128, 0));
    for (int g = 0; g < 2; g++) {
        if (pgrids[g] > per_sm * sms) {
            printf("grid barrier, %5d blocks: skipped (%d resident per SM)\n", pgrids[g], per_sm);
            continue;
        }
        barriers(n, pgrids[g], 1, 0, bar, out, s, "count+gen, one line");
        barriers(n, pgrids[g], 1024, 0, bar, out, s, "count, gen 4 KiB apart");
        barriers(n, pgrids[g], 2048, 1, bar, out, s, "two-level (16 groups)");
    }
    relay(n, sms, bar, out, s);
    relay(n, 16, bar, out, s);
    return 0;
}
