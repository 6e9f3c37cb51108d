/* Kernel-level CPU benchmark: the optimised matmul at the Llama-3.2-1B shapes, next to the
 * machine's ceilings measured in the same program (read bandwidth, FMA peak), interleaved
 * rep by rep so a noisy neighbour affects both alike; medians are reported.
 *
 * GEMV (n = 1): each call reads a different copy of the weights from a set larger than the
 * L3 cache, as decoding does (every weight comes from DRAM once per token).
 * bf16 weights are measured twice, rep by rep: row-major and repacked into the panel layout
 * the kernelized set uses by default (backend/cpu/panel.h; "panel <isa>" lines: the AVX2
 * tiles, or on an AVX-512 BF16 CPU the vdpbf16ps ones, opt_panel_avx512.c). The kernels are
 * those of the best ISA the CPU has; GB_CPU_ISA=avx2 times the AVX2 ones on an AVX-512 CPU.
 * There the ceilings include the vdpbf16ps peak (the AVX-512 kernels' compute ceiling).
 * usage: bench_cpu_kernels [reps] [max_threads] [BF16|F16|F32|all] [ROWSxCOLS]
 * (the last argument keeps one weight shape, e.g. 8192x2048) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/opt.h"
#include "backend/cpu/panel.h"
#include "backend/cpu/threadpool.h"
#include "bench/machine_kernels.h"
#include "util/clock.h"
#include "util/dtype.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* CPU time of the calling thread: with one thread, compute-bound kernels timed this way are
 * insensitive to other processes taking the core (caches and memory are still shared). */
static int64_t cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t xs = 88172645463325252ull;
static uint32_t rnd(void) {
    xs ^= xs << 13;
    xs ^= xs >> 7;
    xs ^= xs << 17;
    return (uint32_t)xs;
}

/* ---- read bandwidth: sum 64-byte lines, split over threads ---- */
typedef struct {
    const uint8_t *buf;
    size_t bytes;
    volatile uint64_t sink[64];
} rd_job;

#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t n) {
    __m256i a = _mm256_setzero_si256(), b = _mm256_setzero_si256();
    for (size_t i = 0; i + 64 <= n; i += 64) {
        a = _mm256_add_epi64(a, _mm256_load_si256((const __m256i *)(p + i)));
        b = _mm256_add_epi64(b, _mm256_load_si256((const __m256i *)(p + i + 32)));
    }
    a = _mm256_add_epi64(a, b);
    return (uint64_t)_mm256_extract_epi64(a, 0) ^ (uint64_t)_mm256_extract_epi64(a, 3);
}
#endif

static void rd_task(void *ctx, int64_t b, int64_t e, int tid) {
    rd_job *j = ctx;
    const size_t blk = 1 << 20;
    uint64_t s = 0;
#if defined(__x86_64__)
    s = read_avx2(j->buf + (size_t)b * blk, (size_t)(e - b) * blk);
#endif
    j->sink[tid] += s;
}

/* ---- FMA peak: 12 independent accumulators ---- */
#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static float fma_loop(long iters) {
    __m256 a[12];
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++)
        a[i] = _mm256_set1_ps((float)i);
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (long k = 0; k < iters; k++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            a[i] = _mm256_fmadd_ps(a[i], m, c);
    __m256 s = a[0];
    for (int i = 1; i < 12; i++)
        s = _mm256_add_ps(s, a[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}
#endif

typedef struct {
    long iters;
    int bf16; /* vdpbf16ps (gb_mk_bf16_avx512: only where the avx512 ISA is active) */
    volatile float sink[64];
} fma_job;
static void fma_task(void *ctx, int tid, int nth) {
    (void)nth;
    fma_job *j = ctx;
#if defined(__x86_64__)
    j->sink[tid] = j->bf16 ? (float)gb_mk_bf16_avx512(j->iters, 1.0f) : fma_loop(j->iters);
#endif
}

/* One decode-like pass: y = x . W^T for n token rows over each of `copies` weight copies
 * (a set larger than the last-level cache, so every weight comes from DRAM); ns taken. */
static int64_t stream_pass(int th, float *y, const float *x, gb_dtype dt, int64_t rows,
                           int64_t cols, const uint8_t *w, size_t mbytes, int copies, int n,
                           int panel) {
    int64_t t0 = gb_clock_ns();
    for (int k = 0; k < copies; k++) {
        const void *d = w + (size_t)k * mbytes;
        gb_weight wt = {
            .dtype = dt, .rows = rows, .cols = cols, .data = d, .packed = panel ? (void *)d : NULL};
        gb_cpu_opt_matmul(th, y, x, &wt, NULL, n);
    }
    return gb_clock_ns() - t0;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    int maxth = argc > 2 ? atoi(argv[2]) : gb_cpu_count();
    if (reps < 1) reps = 1;
    if (maxth > 64) maxth = 64; /* the per-thread sinks (a many-core Xeon has more cores) */
    gb_error err = {0};
    gb_threadpool *pool = NULL;
    if (gb_threadpool_create(maxth, &pool, &err)) return 1;
    const char *isa = gb_cpu_opt_isa()->name;
    /* the active ISA runs the AVX-512 BF16 kernels, so the CPU has vdpbf16ps */
    const int has_bf16 = !strcmp(isa, "avx512");
    printf("isa: %s, threads up to %d, %d reps (medians)\n", isa, maxth, reps);

    /* ceilings */
    const size_t rd_bytes = (size_t)1 << 30;
    uint8_t *rbuf = aligned_alloc(64, rd_bytes);
    memset(rbuf, 1, rd_bytes);
    for (int th = 1; th <= maxth; th++) {
        double bw[64], gf[64], gc[64] = {0}, gb16[64] = {0};
        for (int r = 0; r < reps && r < 64; r++) {
            rd_job j = {.buf = rbuf, .bytes = rd_bytes};
            int64_t t0 = gb_clock_ns();
            gb_threadpool_for(pool, th, (int64_t)(rd_bytes >> 20), 8, rd_task, &j);
            bw[r] = (double)rd_bytes / (double)(gb_clock_ns() - t0);
            fma_job f = {.iters = 20000000};
            t0 = gb_clock_ns();
            int64_t c0 = cpu_ns();
            gb_threadpool_run(pool, th, fma_task, &f);
            gf[r] = (double)f.iters * 12 * 16 * th / (double)(gb_clock_ns() - t0);
            if (th == 1) gc[r] = (double)f.iters * 12 * 16 / (double)(cpu_ns() - c0);
            if (has_bf16) { /* 16 lanes x 2 products x 2 FLOP per vdpbf16ps */
                fma_job fb = {.iters = 10000000, .bf16 = 1};
                t0 = gb_clock_ns();
                gb_threadpool_run(pool, th, fma_task, &fb);
                gb16[r] =
                    (double)fb.iters * GB_MK_BF16_ACC * 64 * th / (double)(gb_clock_ns() - t0);
            }
        }
        printf("ceiling  threads=%d  read %.1f GB/s   fp32 FMA (AVX2) %.1f GFLOP/s", th,
               median(bw, reps), median(gf, reps));
        if (th == 1) printf("  (%.1f per CPU-second)", median(gc, reps));
        if (has_bf16) printf("   bf16 vdpbf16ps (AVX-512) %.1f GFLOP/s", median(gb16, reps));
        printf("\n");
    }

    /* GEMV at the 1B shapes, bf16 */
    static const int64_t shapes[][2] = {
        {2048, 2048}, {512, 2048}, {8192, 2048}, {2048, 8192}, {128256, 2048}};
    const gb_dtype dts[] = {GB_BF16, GB_F16, GB_F32};
    for (size_t di = 0; di < 3; di++) {
        gb_dtype dt = dts[di];
        if (argc > 3 && strcmp(argv[3], "all") && strcmp(argv[3], gb_dtype_st_name(dt))) continue;
        size_t es = gb_dtype_size(dt);
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
            if (dt != GB_BF16 && si == 4) continue;
            int64_t rows = shapes[si][0], cols = shapes[si][1];
            if (argc > 4) {
                char want[64];
                snprintf(want, sizeof want, "%ldx%ld", (long)rows, (long)cols);
                if (strcmp(argv[4], want)) continue;
            }
            size_t mbytes = (size_t)rows * (size_t)cols * es;
            int copies = (int)((512u << 20) / mbytes);
            if (copies < 1) copies = 1;
            uint8_t *w = aligned_alloc(64, mbytes * (size_t)copies);
            uint16_t *h = (uint16_t *)w;
            for (size_t i = 0; i < mbytes * (size_t)copies / 2; i++)
                h[i] = dt == GB_F32 ? (uint16_t)rnd() : (uint16_t)((rnd() & 0x83ff) | 0x3000);
            if (dt == GB_F32) /* finite float32 values */
                for (size_t i = 0; i < mbytes * (size_t)copies / 4; i++)
                    ((float *)w)[i] = (float)(rnd() % 2001) / 1000.0f - 1.0f;
            /* the panel twin: every copy repacked in place (bf16, the ISA's panel kernels) */
            uint8_t *wp = NULL;
            if (dt == GB_BF16 && gb_cpu_opt_isa()->panel_mm_rows) {
                wp = aligned_alloc(64, mbytes * (size_t)copies);
                memcpy(wp, w, mbytes * (size_t)copies);
                for (int k = 0; k < copies; k++) {
                    void *d = wp + (size_t)k * mbytes;
                    gb_weight wt = {.dtype = dt, .rows = rows, .cols = cols, .data = d, .owned = d};
                    if (gb_cpu_panel_pack(&wt, &err)) return 1;
                }
            }
            const int variants = wp ? 2 : 1;
            char panel_label[32];
            snprintf(panel_label, sizeof panel_label, "  panel %s", isa);
            float *x = malloc((size_t)cols * 128 * sizeof(float));
            float *y = malloc((size_t)rows * 128 * sizeof(float));
            for (int64_t i = 0; i < cols * 128; i++)
                x[i] = (float)(rnd() % 2001) / 1000.0f - 1.0f;
            for (int th = 1; th <= maxth; th++) {
                double gb[2][64], rd[64];
                int c = 0;
                for (int r = 0; r < reps && r < 64; r++) {
                    /* decode-like: one pass over all copies (each from DRAM); the variant
                     * that goes first alternates */
                    for (int v0 = 0; v0 < variants; v0++) {
                        int v = (v0 + r) % variants;
                        gb[v][r] = (double)mbytes * copies /
                                   (double)stream_pass(th, y, x, dt, rows, cols, v ? wp : w, mbytes,
                                                       copies, 1, v);
                    }
                    rd_job j = {.buf = rbuf, .bytes = rd_bytes};
                    int64_t t0 = gb_clock_ns();
                    gb_threadpool_for(pool, th, 512, 8, rd_task, &j);
                    rd[r] = (double)(512 << 20) / (double)(gb_clock_ns() - t0);
                    c++;
                }
                double rr = median(rd, c);
                for (int v = 0; v < variants; v++) {
                    double g = median(gb[v], c);
                    printf("gemv %-4s %6ld x %-5ld threads=%d  %6.1f GB/s  (read loop %5.1f GB/s, "
                           "%3.0f%%)%s\n",
                           gb_dtype_st_name(dt), (long)rows, (long)cols, th, g, rr, 100.0 * g / rr,
                           v ? panel_label : "");
                }
                /* batched decode: n = 8 token rows, weights from DRAM as in a decode step */
                double g8[2][64];
                for (int r = 0; r < c; r++)
                    for (int v0 = 0; v0 < variants; v0++) {
                        int v = (v0 + r) % variants;
                        g8[v][r] = 2.0 * 8 * rows * cols * copies /
                                   (double)stream_pass(th, y, x, dt, rows, cols, v ? wp : w, mbytes,
                                                       copies, 8, v);
                    }
                for (int v = 0; v < variants; v++) {
                    double f8 = median(g8[v], c);
                    printf("gemm %-4s    8 x %6ld x %-5ld threads=%d  %6.1f GFLOP/s streamed from "
                           "DRAM (%.1f GB/s of weights)%s\n",
                           gb_dtype_st_name(dt), (long)rows, (long)cols, th, f8,
                           f8 * (double)es / 16.0, v ? panel_label : "");
                }
            }
            /* GEMM, n = 128 and n = 8 (batch decode), on the first copy */
            static const int ns[] = {8, 128};
            for (int ni = 0; ni < 2; ni++) {
                int n = ns[ni];
                if (si == 4 && n == 128) continue;
                for (int th = 1; th <= maxth; th++) {
                    double gf[2][64], gc[2][64];
                    gb_weight wt[2] = {
                        {.dtype = dt, .rows = rows, .cols = cols, .data = w},
                        {.dtype = dt, .rows = rows, .cols = cols, .data = wp, .packed = wp}};
                    for (int v = 0; v < variants; v++) /* warm-up, and wakes the threads */
                        gb_cpu_opt_matmul(th, y, x, &wt[v], NULL, n);
                    for (int r = 0; r < reps && r < 64; r++)
                        for (int v0 = 0; v0 < variants; v0++) {
                            int v = (v0 + r) % variants;
                            int64_t t0 = gb_clock_ns(), c0 = cpu_ns();
                            gb_cpu_opt_matmul(th, y, x, &wt[v], NULL, n);
                            gf[v][r] = 2.0 * n * rows * cols / (double)(gb_clock_ns() - t0);
                            gc[v][r] = 2.0 * n * rows * cols / (double)(cpu_ns() - c0);
                        }
                    for (int v = 0; v < variants; v++) {
                        if (th == 1)
                            printf("gemm %-4s %4d x %6ld x %-5ld threads=%d  %6.1f GFLOP/s  (%.1f "
                                   "per CPU-second)%s\n",
                                   gb_dtype_st_name(dt), n, (long)rows, (long)cols, th,
                                   median(gf[v], reps), median(gc[v], reps), v ? panel_label : "");
                        else
                            printf("gemm %-4s %4d x %6ld x %-5ld threads=%d  %6.1f GFLOP/s%s\n",
                                   gb_dtype_st_name(dt), n, (long)rows, (long)cols, th,
                                   median(gf[v], reps), v ? panel_label : "");
                    }
                }
            }
            free(x);
            free(y);
            free(w);
            free(wp);
        }
    }
    free(rbuf);
    gb_threadpool_free(pool);
    gb_cpu_opt_release();
    return 0;
}
