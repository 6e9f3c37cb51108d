/* Machine ceilings: kernels compute what their FLOP/byte counts claim (exact sums), a quick
 * measurement is sane, the cache round-trips and rejects corrupt or foreign files. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "bench/hwinfo.h"
#include "bench/machine.h"
#include "bench/machine_kernels.h"
#include "test.h"
#include "util/dtype.h"
#include "util/fileio.h"

static void check_kernels(void) {
    unsigned isa = gb_isa_flags();
    /* read: u64 words w[i] = 3i + 1 over 4096 words; sum = 3 n(n-1)/2 + n. */
    enum { N = 4096 };
    static uint64_t w[N] __attribute__((aligned(64)));
    for (uint64_t i = 0; i < N; i++)
        w[i] = 3 * i + 1;
    uint64_t want = 3ull * N * (N - 1) / 2 + N;
    CHECK_EQ_INT(gb_mk_read_scalar(w, sizeof w), want);
    if (isa & GB_ISA_AVX2) CHECK_EQ_INT(gb_mk_read_avx2(w, sizeof w), want);
    if (isa & GB_ISA_AVX512F) CHECK_EQ_INT(gb_mk_read_avx512(w, sizeof w), want);

    /* fp32: accumulator j starts at j and gains seed * seed/2 = 0.5 per iteration, in every
     * lane: total = lanes * (sum_j j + ACC * 0.5 * iters), exact in float here. */
    long it = 1000;
    double per_lane = 66.0 + GB_MK_FP32_ACC * 0.5 * (double)it; /* 0+1+...+11 = 66 */
    double got1 = gb_mk_fp32_scalar(it, 1.0f);
    CHECK_MSG(got1 == per_lane, "fp32 scalar: expected %g, got %g", per_lane, got1);
    if ((isa & GB_ISA_AVX2) && (isa & GB_ISA_FMA)) {
        double got = gb_mk_fp32_avx2(it, 1.0f);
        CHECK_MSG(got == 8 * per_lane, "fp32 avx2: expected %g, got %g", 8 * per_lane, got);
    }
    if (isa & GB_ISA_AVX512F) {
        double got = gb_mk_fp32_avx512(it, 1.0f);
        CHECK_MSG(got == 16 * per_lane, "fp32 avx512: expected %g, got %g", 16 * per_lane, got);
    }
    /* bf16 vdpbf16ps: each lane adds 1*0.5 + 1*0.25 = 0.75 per iteration. */
    if ((isa & GB_ISA_AVX512F) && (isa & GB_ISA_AVX512BF16)) {
        double want16 = 16 * (66.0 + GB_MK_BF16_ACC * 0.75 * (double)it);
        double got = gb_mk_bf16_avx512(it, 1.0f);
        CHECK_MSG(got == want16, "bf16 avx512: expected %g, got %g", want16, got);
    }
    /* bf16 via AVX2 / scalar: 6x16 GEMM step; A[k][r] = r+1, B[k][j] = bf16(j+1 + k%2). The
     * sum of all outputs after `iters` steps is sum over steps of (sum_r A)(sum_j B). */
    static float a[GB_MK_GEMM_K * GB_MK_GEMM_ROWS];
    static uint16_t b[GB_MK_GEMM_K * GB_MK_GEMM_COLS];
    for (int k = 0; k < GB_MK_GEMM_K; k++) {
        for (int r = 0; r < GB_MK_GEMM_ROWS; r++)
            a[k * GB_MK_GEMM_ROWS + r] = (float)(r + 1);
        for (int j = 0; j < GB_MK_GEMM_COLS; j++)
            b[k * GB_MK_GEMM_COLS + j] = gb_f32_to_bf16((float)(j + 1 + k % 2));
    }
    long iters = 3 * GB_MK_GEMM_K + 5;
    double want2 = 0;
    for (long i = 0; i < iters; i++)
        want2 += 21.0 * (136.0 + 16.0 * (double)((i % GB_MK_GEMM_K) % 2));
    double gots = gb_mk_bf16_scalar(iters, a, b);
    CHECK_MSG(gots == want2, "bf16 scalar: expected %g, got %g", want2, gots);
    if ((isa & GB_ISA_AVX2) && (isa & GB_ISA_FMA)) {
        double got = gb_mk_bf16_avx2(iters, a, b);
        CHECK_MSG(got == want2, "bf16 avx2: expected %g, got %g", want2, got);
    }
}

static int close_rel(double a, double b) {
    return fabs(a - b) <= 1e-12 * fabs(b);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

int main(void) {
    gb_error err = {0};
    check_kernels();

    /* Quick measurement: sane ranges, ISA names consistent with the CPU. */
    gb_machine_opts o = {.quick = 1};
    gb_machine_ceilings c;
    CHECK_OK(gb_machine_measure(&c, &o, &err), &err);
    CHECK_MSG(c.read_bw_gbs_1t > 0.05 && c.read_bw_gbs_1t < 10000, "bw 1t %g", c.read_bw_gbs_1t);
    CHECK_MSG(c.read_bw_gbs_all > 0.05 && c.read_bw_gbs_all < 10000, "bw all %g",
              c.read_bw_gbs_all);
    CHECK_MSG(c.fp32_gflops_1t > 0.01 && c.fp32_gflops_1t < 1e5, "fp32 %g", c.fp32_gflops_1t);
    CHECK_MSG(c.fp32_gflops_all > 0.01 && c.fp32_gflops_all < 1e6, "fp32 all %g",
              c.fp32_gflops_all);
    CHECK_MSG(c.bf16_gflops_1t > 0.01 && c.bf16_gflops_1t < 1e5, "bf16 %g", c.bf16_gflops_1t);
    CHECK_MSG(c.bf16_gflops_all > 0.01 && c.bf16_gflops_all < 1e6, "bf16 all %g",
              c.bf16_gflops_all);
    CHECK(c.threads >= 1 && c.quick == 1 && c.from_cache == 0);
    CHECK(c.bw_bytes == (64u << 20));
    CHECK_MSG(strlen(c.measured_at) == 20 && c.measured_at[10] == 'T' && c.measured_at[19] == 'Z',
              "measured_at \"%s\"", c.measured_at);
    unsigned isa = gb_isa_flags();
    if (isa & GB_ISA_AVX512BF16)
        CHECK_STR(c.bf16_isa, "avx512_bf16");
    else if ((isa & GB_ISA_AVX2) && (isa & GB_ISA_FMA))
        CHECK_STR(c.bf16_isa, "avx2");
    if (isa & GB_ISA_AVX512F) CHECK_STR(c.bw_isa, "avx512");

    /* GB_CPU_ISA caps the kernels: the portable ones run on any CPU. */
    setenv("GB_CPU_ISA", "scalar", 1);
    gb_machine_ceilings cs;
    CHECK_OK(gb_machine_measure(&cs, &o, &err), &err);
    unsetenv("GB_CPU_ISA");
    CHECK_STR(cs.bw_isa, "scalar");
    CHECK_STR(cs.fp32_isa, "scalar");
    CHECK_STR(cs.bf16_isa, "scalar");
    CHECK(cs.read_bw_gbs_1t > 0.05 && cs.fp32_gflops_1t > 0.01 && cs.bf16_gflops_all > 0.01);

    cJSON *j = gb_machine_to_json(&c);
    static const char *keys[] = {"read_bw_gbs_1t",
                                 "read_bw_gbs_all",
                                 "bf16_gflops_1t",
                                 "bf16_gflops_all",
                                 "fp32_gflops_1t",
                                 "fp32_gflops_all",
                                 "threads",
                                 "bw_bytes",
                                 "huge_pages",
                                 "quick",
                                 "bw_isa",
                                 "fp32_isa",
                                 "bf16_isa",
                                 "cpu_name",
                                 "measured_at",
                                 "measure_seconds",
                                 "runs"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CHECK_MSG(cJSON_HasObjectItem(j, keys[i]), "ceilings JSON lacks \"%s\"", keys[i]);
    cJSON_Delete(j);

    /* Cache in a private XDG_CACHE_HOME. */
    char dir[1024], path[4096], bad[4200];
    snprintf(dir, sizeof dir, "%s/machine-xdg", gb_test_tmp());
    CHECK_OK(gb_mkdir_p(dir, &err), &err);
    setenv("XDG_CACHE_HOME", dir, 1);
    CHECK_OK(gb_machine_cache_path(path, sizeof path, &err), &err);
    CHECK_MSG(strncmp(path, dir, strlen(dir)) == 0 && strstr(path, "/genbench/machine-"),
              "cache path %s", path);
    remove(path);
    gb_machine_ceilings got;
    CHECK_EQ_INT(gb_machine_ceilings_cached(&got, &err), GB_ERR_NOT_FOUND);

    /* Round trip: a saved (non-quick) measurement comes back identical, and
     * gb_machine_ceilings_get uses it without measuring. */
    gb_machine_ceilings saved = c;
    saved.quick = 0;
    saved.read_bw_gbs_1t = 25.123456789012345;
    saved.runs = 5;
    CHECK_OK(gb_machine_save(&saved, path, &err), &err);
    CHECK_OK(gb_machine_ceilings_cached(&got, &err), &err);
    CHECK(got.from_cache == 1);
    /* cJSON prints 15 significant digits when they re-read within DBL_EPSILON. */
    CHECK(close_rel(got.read_bw_gbs_1t, saved.read_bw_gbs_1t));
    CHECK(close_rel(got.read_bw_gbs_all, saved.read_bw_gbs_all));
    CHECK(close_rel(got.bf16_gflops_1t, saved.bf16_gflops_1t));
    CHECK(close_rel(got.bf16_gflops_all, saved.bf16_gflops_all));
    CHECK(close_rel(got.fp32_gflops_1t, saved.fp32_gflops_1t));
    CHECK(close_rel(got.fp32_gflops_all, saved.fp32_gflops_all));
    CHECK_EQ_INT(got.threads, saved.threads);
    CHECK_EQ_INT(got.runs, 5);
    CHECK_EQ_INT(got.bw_bytes, saved.bw_bytes);
    CHECK_EQ_INT(got.huge_pages, saved.huge_pages);
    CHECK_STR(got.measured_at, saved.measured_at);
    CHECK_STR(got.bf16_isa, saved.bf16_isa);
    CHECK_STR(got.cpu_name, saved.cpu_name);
    memset(&got, 0, sizeof got);
    CHECK_OK(gb_machine_ceilings_get(&got, 0, &err), &err);
    CHECK(got.from_cache == 1 && close_rel(got.read_bw_gbs_1t, saved.read_bw_gbs_1t));

    /* Re-measurements keep the best of each number (a ceiling is a maximum). */
    gb_machine_ceilings m1 = saved, m2 = saved;
    m1.read_bw_gbs_1t = 10, m2.read_bw_gbs_1t = 20;
    m1.read_bw_gbs_all = 40, m2.read_bw_gbs_all = 30;
    m1.fp32_gflops_all = 300, m2.fp32_gflops_all = 100;
    m1.bf16_gflops_1t = 1, m2.bf16_gflops_1t = 2;
    m1.runs = 1, m2.runs = 3;
    gb_machine_merge_best(&m1, &m2);
    CHECK(m1.read_bw_gbs_1t == 20 && m1.read_bw_gbs_all == 40);
    CHECK(m1.fp32_gflops_all == 300 && m1.bf16_gflops_1t == 2);
    CHECK_EQ_INT(m1.runs, 4);

    /* A cache for another CPU is stale: not used. */
    gb_machine_ceilings other = saved;
    snprintf(other.cpu_name, sizeof other.cpu_name, "Some Other CPU 9000");
    CHECK_OK(gb_machine_save(&other, path, &err), &err);
    CHECK_EQ_INT(gb_machine_ceilings_cached(&got, &err), GB_ERR_NOT_FOUND);
    CHECK_MSG(strstr(err.msg, "another CPU") != NULL, "msg: %s", err.msg);

    /* A cache measured with other kernels (GB_CPU_ISA) is stale too. */
    gb_machine_ceilings low = saved;
    snprintf(low.bf16_isa, sizeof low.bf16_isa, "%s",
             strcmp(saved.bf16_isa, "scalar") ? "scalar" : "avx2");
    CHECK_OK(gb_machine_save(&low, path, &err), &err);
    CHECK_EQ_INT(gb_machine_ceilings_cached(&got, &err), GB_ERR_NOT_FOUND);

    /* Corrupt caches: each names the file and the problem. */
    snprintf(bad, sizeof bad, "%s/bad.json", dir);
    write_file(bad, "{not json");
    CHECK_EQ_INT(gb_machine_load(&got, bad, &err), GB_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, bad) && strstr(err.msg, "not a JSON object"), "msg: %s", err.msg);
    write_file(bad, "{\"format\": 2, \"read_bw_gbs_1t\": 25}");
    CHECK_EQ_INT(gb_machine_load(&got, bad, &err), GB_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "read_bw_gbs_all") != NULL, "msg: %s", err.msg);
    write_file(bad, "{\"format\": 99}");
    CHECK_EQ_INT(gb_machine_load(&got, bad, &err), GB_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "format") != NULL, "msg: %s", err.msg);
    j = gb_machine_to_json(&saved);
    cJSON_AddNumberToObject(j, "format", 2);
    cJSON_ReplaceItemInObject(j, "threads", cJSON_CreateNumber(0));
    char *txt = cJSON_Print(j);
    write_file(bad, txt);
    cJSON_free(txt);
    cJSON_Delete(j);
    CHECK_EQ_INT(gb_machine_load(&got, bad, &err), GB_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "out of range") != NULL, "msg: %s", err.msg);
    snprintf(bad, sizeof bad, "%s/missing.json", dir);
    CHECK_EQ_INT(gb_machine_load(&got, bad, &err), GB_ERR_NOT_FOUND);
    remove(path);

    /* ceilings for a thread count between 1 and all CPUs */
    CHECK(gb_machine_for_threads(10, 150, 1, 16) == 10);
    CHECK(gb_machine_for_threads(10, 150, 0, 16) == 10);
    CHECK(gb_machine_for_threads(10, 150, 2, 16) == 20);
    CHECK(gb_machine_for_threads(10, 150, 15, 16) == 150); /* capped */
    CHECK(gb_machine_for_threads(10, 150, 16, 16) == 150);
    CHECK(gb_machine_for_threads(10, 150, 32, 16) == 150);
    TEST_MAIN_END();
}
