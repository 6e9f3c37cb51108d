/* GPU monitor: inert without NVML, sampling thread with a fake sampler (cadence, order,
 * clock, JSON in benchmark_v2's GPURawMetrics shape), failure status, no busy wait. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <time.h>

#include "bench/gpumon.h"
#include "test.h"
#include "util/clock.h"

typedef struct {
    int calls;
    int fail;
} fake;

static int fake_sample(void *ctx, float *util, float *mem) {
    fake *f = ctx;
    if (f->fail) return -1;
    *util = (float)f->calls; /* sample i has utilisation i */
    *mem = 1000.0f + 10.0f * (float)f->calls;
    f->calls++;
    return 0;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const cJSON *get(const cJSON *o, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

int main(void) {
    setenv("GENBENCH_NO_NVML", "1", 1); /* this test must behave the same on GPU machines */
    gb_error err = {0};
    gb_gpumon *m = NULL;

    /* No GPU: inert, silent, valid JSON with empty lists. */
    CHECK_EQ_INT(gb_gpumon_available(), 0);
    CHECK_OK(gb_gpumon_start(&m, 50, &err), &err);
    CHECK(m != NULL);
    CHECK_EQ_INT(gb_gpumon_stop(m), GB_GPUMON_NO_GPU);
    CHECK_EQ_INT(gb_gpumon_count(m), 0);
    CHECK(gb_gpumon_t_ns(m) == NULL);
    cJSON *j = gb_gpumon_to_json(m, 0);
    CHECK_STR(cJSON_GetStringValue(get(j, "monitoring_status")), "no_gpus_available");
    CHECK_EQ_INT(cJSON_GetArraySize(get(j, "utilization")), 0);
    CHECK_EQ_INT(cJSON_GetArraySize(get(j, "memory_used")), 0);
    CHECK_EQ_INT(cJSON_GetArraySize(get(j, "timestamps")), 0);
    CHECK(get(j, "timestamp_0") && get(j, "timestamp_0")->valuedouble == 0.0);
    cJSON_Delete(j);
    gb_gpumon_free(m);

    /* Bad interval. */
    CHECK_EQ_INT(gb_gpumon_start(&m, 0, &err), GB_ERR_INVALID);
    CHECK(m == NULL && strstr(err.msg, "interval") != NULL);

    /* Fake sampler at 10 ms for ~150 ms. */
    fake f = {0};
    int64_t t0 = gb_clock_ns();
    CHECK_OK(gb_gpumon_start_with(&m, 10, fake_sample, &f, &err), &err);
    int64_t t_started = gb_clock_ns();
    sleep_ms(150);
    int64_t t_stop = gb_clock_ns();
    CHECK_EQ_INT(gb_gpumon_stop(m), GB_GPUMON_SUCCESS);
    CHECK_EQ_INT(gb_gpumon_stop(m), GB_GPUMON_SUCCESS); /* idempotent */
    size_t n = gb_gpumon_count(m);
    /* first sample + one per 10 ms + final one; a loaded machine may wake late (fewer). */
    CHECK_MSG(n >= 3 && n <= 18, "samples in 150 ms at 10 ms: %zu", n);
    CHECK_EQ_INT(n, f.calls);
    const int64_t *t = gb_gpumon_t_ns(m);
    const float *u = gb_gpumon_util_pct(m), *mem = gb_gpumon_mem_mib(m);
    CHECK(t && u && mem);
    CHECK_MSG(t[0] >= t0 && t[0] <= t_started, "first sample must be taken inside start");
    CHECK_MSG(t[n - 1] >= t_stop, "final sample must be taken at stop");
    for (size_t i = 0; i < n; i++) {
        CHECK_MSG(u[i] == (float)i && mem[i] == 1000.0f + 10.0f * (float)i,
                  "sample %zu: util %g mem %g", i, u[i], mem[i]);
        /* regular samples follow a fixed-rate schedule (sleeping, not spinning): sample i
         * is never earlier than i intervals after the first. */
        if (i + 1 < n)
            CHECK_MSG(t[i] - t[0] >= (int64_t)i * 10000000 - 1000000, "sample %zu at %lld ns", i,
                      (long long)(t[i] - t[0]));
    }
    CHECK(gb_gpumon_t0_unix(m) > 1.6e9); /* wall clock of sample 0, like time.time() */

    j = gb_gpumon_to_json(m, t0);
    CHECK_STR(cJSON_GetStringValue(get(j, "monitoring_status")), "success");
    const cJSON *ju = get(j, "utilization"), *jm = get(j, "memory_used"),
                *jt = get(j, "timestamps"), *g = get(j, "genbench");
    CHECK_EQ_INT(cJSON_GetArraySize(ju), n);
    CHECK_EQ_INT(cJSON_GetArraySize(jm), n);
    CHECK_EQ_INT(cJSON_GetArraySize(jt), n);
    CHECK(cJSON_GetArrayItem(jt, 0)->valuedouble == 0.0);
    CHECK(fabs(cJSON_GetArrayItem(jm, 1)->valuedouble - 1010.0 / 1024.0) < 1e-6);
    CHECK(fabs(cJSON_GetArrayItem(ju, 2)->valuedouble - 2.0) < 1e-9);
    const cJSON *since = get(g, "timestamps_since_t0");
    CHECK_EQ_INT(cJSON_GetArraySize(since), n);
    CHECK(fabs(cJSON_GetArrayItem(since, 0)->valuedouble - (double)(t[0] - t0) * 1e-9) < 1e-9);
    CHECK(fabs(cJSON_GetArrayItem(jt, (int)n - 1)->valuedouble - (double)(t[n - 1] - t[0]) * 1e-9) <
          1e-9);
    CHECK_EQ_INT(get(g, "interval_ms")->valuedouble, 10);
    CHECK(get(g, "memory_used_peak_mib")->valuedouble == 1000.0 + 10.0 * (double)(n - 1));
    cJSON_Delete(j);
    gb_gpumon_free(m);

    /* A sampler that always fails: "failed", no samples. */
    fake bad = {.fail = 1};
    CHECK_OK(gb_gpumon_start_with(&m, 5, fake_sample, &bad, &err), &err);
    sleep_ms(20);
    CHECK_EQ_INT(gb_gpumon_stop(m), GB_GPUMON_FAILED);
    CHECK_EQ_INT(gb_gpumon_count(m), 0);
    j = gb_gpumon_to_json(m, 0);
    CHECK_STR(cJSON_GetStringValue(get(j, "monitoring_status")), "failed");
    cJSON_Delete(j);
    gb_gpumon_free(m);

    /* No busy wait: at a 1 ms interval for 200 ms the process uses little CPU. */
    fake f2 = {0};
    double c0 = cpu_s();
    CHECK_OK(gb_gpumon_start_with(&m, 1, fake_sample, &f2, &err), &err);
    sleep_ms(200);
    gb_gpumon_stop(m);
    double used = cpu_s() - c0;
    CHECK_MSG(used < 0.1, "monitor used %.3f s of CPU in 0.2 s", used);
    gb_gpumon_free(m);

    /* Free without stop joins the thread. */
    fake f3 = {0};
    CHECK_OK(gb_gpumon_start_with(&m, 50, fake_sample, &f3, &err), &err);
    gb_gpumon_free(m);
    gb_gpumon_free(NULL);
    TEST_MAIN_END();
}
