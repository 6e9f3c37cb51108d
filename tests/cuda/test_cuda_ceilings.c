/* GPU ceilings on a real device: plausible numbers (any data-centre GPU copies > 100 GB/s and
 * multiplies bf16 at > 10 TFLOP/s), a few seconds at most, measured once then read from the
 * cache, a clean GB_ERR_DEVICE for a device that does not exist, and the CUDA backend still
 * usable afterwards. Needs a GPU: exits 77 (skipped) without one unless GB_CUDA_TESTS=1
 * demands it. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "backend/backend.h"
#include "bench/gpu_ceilings.h"
#include "util/clock.h"
#include "util/fileio.h"

static void print(const char *what, const gb_gpu_ceilings *c) {
    fprintf(stderr,
            "%s: cuda:%d %s (cc %s, driver %s): copy %.1f GB/s (%.2f GiB), bf16 %.1f, fp16 %.1f, "
            "fp32 %.1f TFLOP/s (n=%d, median of %d), %.2f s\n",
            what, c->device, c->gpu_name, c->compute_capability, c->driver_version, c->copy_gbs,
            (double)c->copy_bytes / (double)(1u << 30), c->bf16_tflops, c->fp16_tflops,
            c->fp32_tflops, c->gemm_n, c->repeats, c->measure_seconds);
}

int main(void) {
    if (!gb_backend_cuda_available()) {
        const char *need = getenv("GB_CUDA_TESTS");
        fprintf(stderr, "no usable CUDA device%s\n", need && *need == '1' ? "" : ": skipped");
        return need && *need == '1' ? 1 : 77;
    }
    gb_error err = {0};
    int before = -1, after = -1;
    cudaGetDevice(&before);

    /* Full measurement, as the runner and `genbench info` do it. */
    gb_gpu_ceilings c;
    int64_t t0 = gb_clock_ns();
    CHECK_OK(gb_gpu_ceilings_measure(0, 0, &c, &err), &err);
    double sec = (double)(gb_clock_ns() - t0) * 1e-9;
    print("full", &c);
    CHECK_MSG(c.copy_gbs > 100 && c.copy_gbs < 100000, "copy %g GB/s", c.copy_gbs);
    CHECK_MSG(c.bf16_tflops > 10 && c.bf16_tflops < 100000, "bf16 %g TFLOP/s", c.bf16_tflops);
    CHECK_MSG(c.fp16_tflops > 10 && c.fp16_tflops < 100000, "fp16 %g TFLOP/s", c.fp16_tflops);
    CHECK_MSG(c.fp32_tflops > 1 && c.fp32_tflops < c.bf16_tflops,
              "fp32 %g TFLOP/s (no TF32: below bf16 %g)", c.fp32_tflops, c.bf16_tflops);
    CHECK_MSG(sec < 20, "took %.1f s", sec);
    CHECK(c.copy_bytes >= (size_t)256 << 20 && c.gemm_n == 8192 && c.repeats == 10);
    CHECK(c.gpu_name[0] && c.driver_version[0] && c.compute_capability[0] && c.runs == 1);
    CHECK(c.memory_total_gib > 1 && c.quick == 0 && c.measured_at[0]);
    cudaGetDevice(&after);
    CHECK_EQ_INT(after, before);

    gb_gpu_ceilings q;
    CHECK_OK(gb_gpu_ceilings_measure(0, 1, &q, &err), &err);
    print("quick", &q);
    CHECK(q.quick == 1 && q.copy_gbs > 50 && q.bf16_tflops > 5 && q.gemm_n == 4096);

    /* Cache through the real device: measured once, then read back. */
    char dir[1024], cmd[1200];
    snprintf(dir, sizeof dir, "%s/gpu-ceilings-xdg", gb_test_tmp());
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    CHECK_OK(gb_mkdir_p(dir, &err), &err);
    setenv("XDG_CACHE_HOME", dir, 1);
    gb_gpu_ceilings g1, g2;
    CHECK_EQ_INT(gb_gpu_ceilings_cached(NULL, 0, &g1, &err), GB_ERR_NOT_FOUND);
    CHECK_OK(gb_gpu_ceilings_get(NULL, 0, 0, &g1, &err), &err);
    CHECK(g1.from_cache == 0);
    CHECK_OK(gb_gpu_ceilings_get(NULL, 0, 0, &g2, &err), &err);
    /* read back from the cache (from_cache); the figures within 0.1 %: exact equality failed
     * once on an H200 without a message saying why, which this check now prints */
    CHECK_MSG(g2.from_cache == 1 && fabs(g2.copy_gbs - g1.copy_gbs) <= 1e-3 * g1.copy_gbs &&
                  fabs(g2.bf16_tflops - g1.bf16_tflops) <= 1e-3 * g1.bf16_tflops,
              "from_cache %d, copy %.3f vs %.3f, bf16 %.3f vs %.3f", g2.from_cache, g2.copy_gbs,
              g1.copy_gbs, g2.bf16_tflops, g1.bf16_tflops);
    CHECK_STR(g2.gpu_name, c.gpu_name);
    CHECK_STR(g2.driver_version, c.driver_version);

    /* A device past the last one. */
    int n = 0;
    cudaGetDeviceCount(&n);
    CHECK_EQ_INT(gb_gpu_ceilings_measure(n, 1, &q, &err), GB_ERR_DEVICE);
    CHECK_MSG(strstr(err.msg, "does not exist") != NULL, "msg: %s", err.msg);

    /* The backend works on the same context afterwards. */
    gb_backend_options o = {0};
    gb_backend *b = NULL;
    CHECK_OK(gb_backend_cuda_create(&o, &b, &err), &err);
    if (b) gb_backend_free(b);
    TEST_MAIN_END();
}
