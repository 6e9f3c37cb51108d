/* Read bandwidth of the ways a decode kernel can stream its weights from device memory, with
 * no dependencies: what a persistent decode kernel could reach per SM against the many short
 * blocks of the kernel-per-op GEMVs.
 *
 *   bench_cuda_stream [MB]     (MiB per kernel, 1..1024, default 64: the 1B gate/up matrices)
 *
 * 1. warp loads: blocks of 4 warps, each warp R rounds of 8 16-byte loads per lane (4 KiB a
 *    round, all 8 requested before any use), streaming hint (ld.global.cs), as the GEMVs.
 * 2. bulk copies: B blocks per SM, persistent over contiguous ranges; one producer thread
 *    issues cp.async.bulk copies of S KiB pages into a ring of P pages (full / empty
 *    mbarriers); C consumer warps read each page from shared memory (16-byte loads, a sum) and
 *    release it (mode "read"), or release it unread (mode "skip": the copy engine alone).
 * Every kernel reads a different window of a 2 GiB buffer (the 50 MB L2 holds none of it).
 * Per line: the median over 7 graph replays of 20 launches, us per launch and GB/s (bulk lines:
 * of the bytes the grid covers, whole pages per block; configurations with less than a page per
 * block are skipped). */
#include "backend/cuda/cuda_bulk.cuh"
#include "cuda/cuda_check.h"
#include "cuda/cuda_timing.cuh"

#include <algorithm>
#include <stdint.h>
#include <string.h>
#include <vector>

__device__ float g_sink;

template <int R> __global__ void __launch_bounds__(128) k_ldg(const uint4 *w) {
    const size_t warp = (size_t)blockIdx.x * 4 + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    const uint4 *p = w + warp * (R * 256) + lane;
    float acc = 0.f;
    for (int r = 0; r < R; r++) {
        uint4 v[8];
#pragma unroll
        for (int i = 0; i < 8; i++)
            v[i] = __ldcs(p + r * 256 + i * 32);
#pragma unroll
        for (int i = 0; i < 8; i++)
            acc += __uint_as_float(v[i].x) + __uint_as_float(v[i].y) + __uint_as_float(v[i].z) +
                   __uint_as_float(v[i].w);
    }
    if (acc == 1.2345f) g_sink = acc; /* keeps the loads */
}

#define MAXP 32
/* blockDim = 32 * (cw + 1): warps 0..cw-1 consume, warp cw's lane 0 produces. */
__global__ void k_bulk(const char *w, size_t per_block, unsigned page, int np, int cw, int read) {
    extern __shared__ __align__(128) unsigned char ring[];
    __shared__ __align__(8) uint64_t full[MAXP], empty[MAXP];
    const int wid = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (threadIdx.x == 0) {
        for (int i = 0; i < np; i++) {
            gb_mbar_init(&full[i], 1);
            gb_mbar_init(&empty[i], cw);
        }
        gb_mbar_init_fence();
    }
    __syncthreads();
    const char *src = w + blockIdx.x * per_block;
    const int pages = (int)(per_block / page);
    if (wid == cw) {
        if (lane == 0)
            for (int i = 0; i < pages; i++) {
                const int s = i % np;
                if (i >= np) gb_mbar_wait(&empty[s], (unsigned)((i / np) - 1) & 1u);
                gb_mbar_expect(&full[s], page);
                gb_bulk_copy(ring + (size_t)s * page, src + (size_t)i * page, page, &full[s]);
            }
        return;
    }
    float acc = 0.f;
    const unsigned part = page / cw; /* bytes per consumer warp */
    for (int i = 0; i < pages; i++) {
        const int s = i % np;
        gb_mbar_wait(&full[s], (unsigned)(i / np) & 1u);
        if (read) {
            const uint4 *q = (const uint4 *)(ring + (size_t)s * page + (size_t)wid * part);
            for (unsigned k = lane; k < part / 16; k += 32) {
                const uint4 v = q[k];
                acc += __uint_as_float(v.x) + __uint_as_float(v.y) + __uint_as_float(v.z) +
                       __uint_as_float(v.w);
            }
        }
        __syncwarp();
        if (lane == 0) gb_mbar_arrive(&empty[s]);
    }
    if (acc == 1.2345f) g_sink = acc;
}

template <typename F> static float graph_us(cudaStream_t s, int n, F launch) {
    cudaGraph_t g;
    cudaGraphExec_t ex;
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    for (int i = 0; i < n; i++)
        launch(i);
    CK(cudaStreamEndCapture(s, &g));
    CK(cudaGraphInstantiate(&ex, g, 0));
    CK(cudaGraphLaunch(ex, s));
    CK(cudaStreamSynchronize(s));
    CK(cudaGetLastError());
    std::vector<float> t;
    for (int r = 0; r < 7; r++)
        t.push_back(gb_time_ms(s, [&] { CK(cudaGraphLaunch(ex, s)); }) * 1000.f / n);
    std::sort(t.begin(), t.end());
    cudaGraphExecDestroy(ex);
    cudaGraphDestroy(g);
    return t[3];
}

/* One line of warp loads, R rounds per warp: kernels over the windows win(i), as graph_us. */
template <int R, typename W, typename P>
static void ldg_line(cudaStream_t s, int n, size_t bytes, W win, P report) {
    const unsigned blocks = (unsigned)(bytes / (4 * R * 4096));
    char name[64];
    snprintf(name, sizeof name, "warp loads, %d rounds per warp (%u blocks)", R, blocks);
    report(name,
           graph_us(s, n, [&](int i) { k_ldg<R><<<blocks, 128, 0, s>>>((const uint4 *)win(i)); }));
}

int main(int argc, char **argv) {
    const int mbi = argc > 1 ? atoi(argv[1]) : 64;
    if (mbi < 1 ||
        mbi > 1024) { /* two windows at least fit the pool: the copy reads one, writes the next */
        fprintf(stderr, "bench_cuda_stream: MiB per kernel must be 1..1024, got %s\n", argv[1]);
        return 2;
    }
    const size_t mb = (size_t)mbi;
    const size_t bytes = mb << 20, pool = (size_t)2 << 30;
    const int n = 20;
    int sms = 0;
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    char *buf;
    CK(cudaMalloc(&buf, pool));
    CK(cudaMemset(buf, 1, pool));
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    const size_t windows = pool / bytes;
    auto win = [&](int i) { return buf + (size_t)(i % windows) * bytes; };
    auto report = [&](const char *name, float us) {
        printf("%-44s %9.2f us %8.1f GB/s\n", name, us, bytes / (us * 1e3));
    };
    printf("stream %zu MiB per kernel, %d SMs\n", mb, sms);
    {
        const float us = graph_us(s, n, [&](int i) {
            CK(cudaMemcpyAsync(win(i + 1), win(i), bytes / 2, cudaMemcpyDeviceToDevice, s));
        });
        printf("%-44s %9.2f us %8.1f GB/s (read + write)\n", "copy (half the bytes each way)", us,
               bytes / (us * 1e3));
    }
    ldg_line<1>(s, n, bytes, win, report);
    ldg_line<2>(s, n, bytes, win, report);
    ldg_line<4>(s, n, bytes, win, report);
    ldg_line<8>(s, n, bytes, win, report);
    ldg_line<16>(s, n, bytes, win, report);
    struct cfg {
        int bps, kb, np, cw;
    } cfgs[] = {{1, 16, 12, 8}, {1, 32, 6, 8}, {1, 8, 24, 8}, {1, 64, 3, 8},
                {1, 16, 12, 4}, {1, 4, 32, 8}, {2, 16, 6, 8}, {2, 32, 3, 4},
                {4, 16, 3, 4},  {1, 16, 6, 8}, {1, 32, 4, 8}, {1, 16, 8, 8}};
    for (const cfg &c : cfgs)
        for (int read = 0; read < 2; read++) {
            const unsigned page = c.kb * 1024u;
            const int grid = sms * c.bps;
            const size_t per = bytes / grid / page * page;
            if (!per) continue; /* less than a page per block */
            const size_t smem = (size_t)page * c.np;
            CK(cudaFuncSetAttribute(k_bulk, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)smem));
            const float us = graph_us(s, n, [&](int i) {
                k_bulk<<<grid, 32 * (c.cw + 1), smem, s>>>(win(i), per, page, c.np, c.cw, read);
            });
            char name[96];
            snprintf(name, sizeof name, "bulk %d/SM %2d KiB x %2d, %d warps, %s", c.bps, c.kb, c.np,
                     c.cw, read ? "read" : "skip");
            /* the grid covers grid * per bytes (<= bytes): rate over what it read */
            printf("%-44s %9.2f us %8.1f GB/s\n", name, us, grid * per / (us * 1e3));
        }
    CK(cudaFree(buf));
    return 0;
}
