/* GPU ceilings cache without a GPU: a fake probe injects the device identity and the
 * measured values. Round trip, measure-once-then-cache, corrupt and incomplete files (noted
 * and remeasured), key mismatch (another driver, GPU or index), quick results never used,
 * forced re-measurement keeping the best, dtype -> peak. The real device path must answer
 * GB_ERR_DEVICE cleanly where there is no GPU (always in a CPU-only build). */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "backend/cuda_ceilings.h"
#include "bench/gpu_ceilings.h"
#include "test.h"
#include "util/error.h"
#include "util/fileio.h"

typedef struct fake {
    const char *name, *driver;
    int devices;  /* devices 0..devices-1 exist */
    int measures; /* measure calls so far */
    double copy;  /* copy_gbs the next measurement gives */
} fake;

static int f_identify(void *user, int device, gb_gpu_ceilings *out, gb_error *err) {
    fake *f = user;
    memset(out, 0, sizeof *out);
    if (device < 0 || device >= f->devices)
        return gb_error_set(err, GB_ERR_DEVICE, "device %d does not exist", device);
    out->device = device;
    snprintf(out->gpu_name, sizeof out->gpu_name, "%s", f->name);
    snprintf(out->driver_version, sizeof out->driver_version, "%s", f->driver);
    snprintf(out->compute_capability, sizeof out->compute_capability, "9.0");
    out->memory_total_gib = 79.2;
    return 0;
}

static int f_measure(void *user, int device, int quick, gb_gpu_ceilings *out, gb_error *err) {
    fake *f = user;
    GB_TRY(f_identify(user, device, out, err));
    f->measures++;
    out->copy_gbs = f->copy;
    out->bf16_tflops = 700.5;
    out->fp16_tflops = 690.25;
    out->fp32_tflops = 51.125;
    out->copy_bytes = (size_t)2 << 30;
    out->gemm_n = 8192;
    out->repeats = 10;
    out->quick = quick;
    out->runs = 1;
    out->measure_seconds = 0.75;
    snprintf(out->measured_at, sizeof out->measured_at, "2026-11-28T07:00:00Z");
    return 0;
}

static void write_file(const char *path, const char *text) {
    gb_error err;
    CHECK_OK(gb_file_write_atomic(path, text, strlen(text), &err), &err);
}

static void check_real_device(void) {
    gb_error err = {0};
    gb_gpu_ceilings c;
    int rc = gb_gpu_ceilings_identify(0, &c, &err);
#ifndef GB_HAVE_CUDA
    CHECK_EQ_INT(rc, GB_ERR_DEVICE);
    CHECK_MSG(strstr(err.msg, "without CUDA") != NULL, "msg: %s", err.msg);
    CHECK_EQ_INT(gb_gpu_ceilings_cached(NULL, 0, &c, &err), GB_ERR_DEVICE);
    CHECK_EQ_INT(gb_gpu_ceilings_get(NULL, 0, 0, &c, &err), GB_ERR_DEVICE);
    CHECK_EQ_INT(gb_gpu_ceilings_measure(0, 1, &c, &err), GB_ERR_DEVICE);
#else
    /* A CUDA build may or may not have a GPU here; without one the answer is a clean
     * GB_ERR_DEVICE, never a crash or a print. */
    if (rc) CHECK_EQ_INT(rc, GB_ERR_DEVICE);
#endif
    /* A device that cannot exist, whatever the build. */
    CHECK_EQ_INT(gb_gpu_ceilings_identify(4000, &c, &err), GB_ERR_DEVICE);
    CHECK(err.msg[0] != '\0');
}

int main(void) {
    gb_error err = {0};
    check_real_device();

    char dir[1024], cmd[1200];
    snprintf(dir, sizeof dir, "%s/gpu-xdg", gb_test_tmp());
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    CHECK_OK(gb_mkdir_p(dir, &err), &err);
    setenv("XDG_CACHE_HOME", dir, 1);

    fake f = {.name = "NVIDIA H100 80GB HBM3", .driver = "570.124.06", .devices = 2, .copy = 3000};
    gb_gpu_probe probe = {f_identify, f_measure, &f};

    /* Nothing cached yet; no device 5. */
    gb_gpu_ceilings c, id;
    CHECK_EQ_INT(gb_gpu_ceilings_cached(&probe, 0, &c, &err), GB_ERR_NOT_FOUND);
    CHECK_EQ_INT(gb_gpu_ceilings_get(&probe, 5, 0, &c, &err), GB_ERR_DEVICE);
    CHECK_EQ_INT(f.measures, 0);

    /* First get measures and writes the cache; the second reads it. */
    CHECK_OK(gb_gpu_ceilings_get(&probe, 0, 0, &c, &err), &err);
    CHECK_EQ_INT(f.measures, 1);
    CHECK(c.from_cache == 0 && c.runs == 1 && c.copy_gbs == 3000 && c.note[0] == '\0');
    char path[4096];
    CHECK_OK(f_identify(&f, 0, &id, &err), &err);
    CHECK_OK(gb_gpu_ceilings_cache_path(&id, path, sizeof path, &err), &err);
    CHECK_MSG(strncmp(path, dir, strlen(dir)) == 0 && strstr(path, "/genbench/gpu-"), "path %s",
              path);
    CHECK(gb_is_file(path));
    f.copy = 1.0; /* a later measurement would give this: it must not happen */
    memset(&c, 0, sizeof c);
    CHECK_OK(gb_gpu_ceilings_get(&probe, 0, 0, &c, &err), &err);
    CHECK_EQ_INT(f.measures, 1);
    CHECK(c.from_cache == 1 && c.copy_gbs == 3000);
    CHECK_STR(c.gpu_name, "NVIDIA H100 80GB HBM3");
    CHECK_STR(c.driver_version, "570.124.06");
    CHECK_STR(c.compute_capability, "9.0");
    CHECK_STR(c.measured_at, "2026-11-28T07:00:00Z");
    CHECK(c.bf16_tflops == 700.5 && c.fp16_tflops == 690.25 && c.fp32_tflops == 51.125);
    CHECK(c.copy_bytes == (size_t)2 << 30 && c.gemm_n == 8192 && c.repeats == 10);
    CHECK(c.memory_total_gib == 79.2 && c.measure_seconds == 0.75 && c.quick == 0);

    /* Explicit round trip of every field. */
    gb_gpu_ceilings s = c, got;
    s.device = 1;
    s.copy_gbs = 3345.123456789012;
    s.runs = 7;
    char other[4200];
    snprintf(other, sizeof other, "%s/roundtrip.json", dir);
    CHECK_OK(gb_gpu_ceilings_save(&s, other, &err), &err);
    CHECK_OK(gb_gpu_ceilings_load(&got, other, &err), &err);
    CHECK(fabs(got.copy_gbs - s.copy_gbs) <= 1e-12 * s.copy_gbs);
    CHECK(got.device == 1 && got.runs == 7 && got.from_cache == 1);
    CHECK(gb_gpu_ceilings_matches(&got, &s));
    CHECK(!gb_gpu_ceilings_matches(&got, &c)); /* another index */
    CHECK_EQ_INT(gb_gpu_ceilings_load(&got, "/nonexistent/x.json", &err), GB_ERR_NOT_FOUND);

    /* The JSON has the documented keys. */
    cJSON *j = gb_gpu_ceilings_to_json(&c);
    static const char *keys[] = {
        "device",   "gpu_name",    "driver_version", "compute_capability", "memory_total_gib",
        "copy_gbs", "bf16_tflops", "fp16_tflops",    "fp32_tflops",        "copy_bytes",
        "gemm_n",   "repeats",     "quick",          "measured_at",        "measure_seconds",
        "runs"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CHECK_MSG(cJSON_HasObjectItem(j, keys[i]), "JSON lacks \"%s\"", keys[i]);
    CHECK(!cJSON_HasObjectItem(j, "note"));
    cJSON_Delete(j);

    /* Corrupt file: cached() names it; get() says so in a one-line note and measures. */
    write_file(path, "{\"format\": 1, \"copy_gbs\": ");
    CHECK_EQ_INT(gb_gpu_ceilings_cached(&probe, 0, &c, &err), GB_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, path) == err.msg, "msg: %s", err.msg);
    f.copy = 2900;
    CHECK_OK(gb_gpu_ceilings_get(&probe, 0, 0, &c, &err), &err);
    CHECK_EQ_INT(f.measures, 2);
    CHECK(c.copy_gbs == 2900 && c.runs == 1);
    CHECK_MSG(strstr(c.note, path) && strstr(c.note, "measured again") && !strchr(c.note, '\n'),
              "note: %s", c.note);
    CHECK_OK(gb_gpu_ceilings_cached(&probe, 0, &c, &err), &err); /* rewritten, valid */
    CHECK(c.copy_gbs == 2900);

    /* A field missing or out of range is corrupt too, with the field named. */
    write_file(path, "{\"format\": 1, \"device\": 0}");
    CHECK_EQ_INT(gb_gpu_ceilings_cached(&probe, 0, &c, &err), GB_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "gpu_name") != NULL, "msg: %s", err.msg);
    gb_gpu_ceilings valid;
    CHECK_OK(f_measure(&f, 0, 0, &valid, &err), &err);
    f.measures--; /* not a measurement of the code under test */
    s = valid;
    s.copy_gbs = 0;
    CHECK_OK(gb_gpu_ceilings_save(&s, path, &err), &err);
    CHECK_EQ_INT(gb_gpu_ceilings_cached(&probe, 0, &c, &err), GB_ERR_FORMAT);
    write_file(path, "[1, 2]");
    CHECK_EQ_INT(gb_gpu_ceilings_cached(&probe, 0, &c, &err), GB_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "not a JSON object") != NULL, "msg: %s", err.msg);
    CHECK_OK(gb_gpu_ceilings_get(&probe, 0, 0, &c, &err), &err);
    CHECK_EQ_INT(f.measures, 3);

    /* Key mismatch. A new driver is another key, so another file: not found, remeasured. */
    f.driver = "580.65.06";
    CHECK_EQ_INT(gb_gpu_ceilings_cached(&probe, 0, &c, &err), GB_ERR_NOT_FOUND);
    char path2[4096];
    CHECK_OK(f_identify(&f, 0, &id, &err), &err);
    CHECK_OK(gb_gpu_ceilings_cache_path(&id, path2, sizeof path2, &err), &err);
    CHECK(strcmp(path, path2) != 0);
    /* A file at this key's path describing another GPU (hash collision, copied cache dir) is
     * stale, and replaced without a note (nothing is wrong with it). */
    gb_gpu_ceilings foreign = valid;
    foreign.copy_gbs = 9999;
    snprintf(foreign.gpu_name, sizeof foreign.gpu_name, "NVIDIA H200");
    snprintf(foreign.driver_version, sizeof foreign.driver_version, "580.65.06");
    CHECK_OK(gb_gpu_ceilings_save(&foreign, path2, &err), &err);
    CHECK_EQ_INT(gb_gpu_ceilings_cached(&probe, 0, &c, &err), GB_ERR_NOT_FOUND);
    CHECK_MSG(strstr(err.msg, "another GPU") != NULL, "msg: %s", err.msg);
    f.copy = 3100;
    CHECK_OK(gb_gpu_ceilings_get(&probe, 0, 0, &c, &err), &err);
    CHECK_EQ_INT(f.measures, 4);
    CHECK(c.copy_gbs == 3100 && c.note[0] == '\0');
    /* Device 1 of the same kind has its own file. */
    CHECK_EQ_INT(gb_gpu_ceilings_cached(&probe, 1, &c, &err), GB_ERR_NOT_FOUND);
    CHECK_OK(gb_gpu_ceilings_get(&probe, 1, 0, &c, &err), &err);
    CHECK_EQ_INT(f.measures, 5);
    CHECK_EQ_INT(c.device, 1);

    /* A quick measurement in the cache file is never used. */
    CHECK_OK(gb_gpu_ceilings_cached(&probe, 0, &c, &err), &err);
    c.quick = 1;
    CHECK_OK(gb_gpu_ceilings_save(&c, path2, &err), &err);
    CHECK_EQ_INT(gb_gpu_ceilings_cached(&probe, 0, &c, &err), GB_ERR_NOT_FOUND);
    CHECK_OK(gb_gpu_ceilings_get(&probe, 0, 0, &c, &err), &err);
    CHECK_EQ_INT(f.measures, 6);

    /* Forced: measures although cached, and keeps the best of each number. */
    f.copy = 2000; /* lower than the cached 3100 */
    CHECK_OK(gb_gpu_ceilings_get(&probe, 0, 1, &c, &err), &err);
    CHECK_EQ_INT(f.measures, 7);
    CHECK(c.copy_gbs == 3100 && c.runs == 2 && c.from_cache == 0);
    CHECK_OK(gb_gpu_ceilings_cached(&probe, 0, &c, &err), &err);
    CHECK(c.copy_gbs == 3100 && c.runs == 2);
    gb_gpu_ceilings m1 = c, m2 = c;
    m1.bf16_tflops = 1, m2.bf16_tflops = 2, m1.fp32_tflops = 5, m2.fp32_tflops = 4;
    m1.runs = 2, m2.runs = 3;
    gb_gpu_ceilings_merge_best(&m1, &m2);
    CHECK(m1.bf16_tflops == 2 && m1.fp32_tflops == 5 && m1.runs == 5);

    /* The peak a run's dtype is compared with. */
    const char *kind = NULL;
    CHECK(gb_gpu_ceilings_peak_flops(&c, "bfloat16", &kind) == 700.5e12);
    CHECK_STR(kind, "bf16");
    CHECK(gb_gpu_ceilings_peak_flops(&c, "float16", &kind) == 690.25e12);
    CHECK_STR(kind, "fp16");
    CHECK(gb_gpu_ceilings_peak_flops(&c, "float32", &kind) == 51.125e12);
    CHECK_STR(kind, "fp32");
    CHECK(gb_gpu_ceilings_peak_flops(&c, "int8", &kind) == 0 && kind == NULL);

    /* An unwritable cache directory does not fail a measurement. */
    setenv("XDG_CACHE_HOME", "/proc/no-such-dir", 1);
    CHECK_OK(gb_gpu_ceilings_get(&probe, 0, 0, &c, &err), &err);
    CHECK_EQ_INT(f.measures, 8);
    TEST_MAIN_END();
}
