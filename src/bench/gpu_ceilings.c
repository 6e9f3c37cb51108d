#include "bench/gpu_ceilings.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cuda_ceilings.h"
#include "bench/json_cache.h"
#include "bench/machine.h"
#include "bench/nvml.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/hash.h"
#include "util/paths.h"

#define CACHE_FORMAT 1

/* ---- the real device ---------------------------------------------------------------- */

static void from_cuda(const gb_cuda_ceilings *k, gb_gpu_ceilings *out) {
    out->device = k->device;
    snprintf(out->gpu_name, sizeof out->gpu_name, "%s", k->name);
    /* The driver's own version (NVML) changes with every driver update, which can change
     * the numbers; the CUDA version the driver supports is the fallback without NVML. */
    if (gb_nvml_driver_version(out->driver_version, (int)sizeof out->driver_version) != 0 ||
        !out->driver_version[0])
        snprintf(out->driver_version, sizeof out->driver_version, "cuda %d.%d",
                 k->driver_version / 1000, k->driver_version % 1000 / 10);
    snprintf(out->compute_capability, sizeof out->compute_capability, "%d.%d", k->cc_major,
             k->cc_minor);
    out->memory_total_gib = k->memory_total_gib;
}

int gb_gpu_ceilings_identify(int device, gb_gpu_ceilings *out, gb_error *err) {
    memset(out, 0, sizeof *out);
    gb_cuda_ceilings k;
    GB_TRY(gb_cuda_ceilings_identify(device, &k, err));
    from_cuda(&k, out);
    return 0;
}

static void utc_now(char *buf, size_t cap) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int gb_gpu_ceilings_measure(int device, int quick, gb_gpu_ceilings *out, gb_error *err) {
    memset(out, 0, sizeof *out);
    int64_t t0 = gb_clock_ns();
    gb_cuda_ceilings_opts o = {0};
    if (quick) o = (gb_cuda_ceilings_opts){.copy_bytes = 256u << 20, .gemm_n = 4096, .repeats = 3};
    gb_cuda_ceilings k;
    GB_TRY(gb_cuda_ceilings_measure(device, &o, &k, err));
    from_cuda(&k, out);
    out->copy_gbs = k.copy_gbs;
    out->bf16_tflops = k.bf16_tflops;
    out->fp16_tflops = k.fp16_tflops;
    out->fp32_tflops = k.fp32_tflops;
    out->copy_bytes = k.copy_bytes;
    out->gemm_n = k.gemm_n;
    out->repeats = k.repeats;
    out->quick = quick != 0;
    utc_now(out->measured_at, sizeof out->measured_at);
    out->measure_seconds = (double)(gb_clock_ns() - t0) * 1e-9;
    out->runs = 1;
    return 0;
}

static int real_identify(void *user, int device, gb_gpu_ceilings *out, gb_error *err) {
    (void)user;
    return gb_gpu_ceilings_identify(device, out, err);
}

static int real_measure(void *user, int device, int quick, gb_gpu_ceilings *out, gb_error *err) {
    (void)user;
    return gb_gpu_ceilings_measure(device, quick, out, err);
}

static const gb_gpu_probe real_probe = {real_identify, real_measure, NULL};

/* ---- JSON and cache file ------------------------------------------------------------ */

cJSON *gb_gpu_ceilings_to_json(const gb_gpu_ceilings *c) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int ok = cJSON_AddNumberToObject(o, "device", c->device) &&
             cJSON_AddStringToObject(o, "gpu_name", c->gpu_name) &&
             cJSON_AddStringToObject(o, "driver_version", c->driver_version) &&
             cJSON_AddStringToObject(o, "compute_capability", c->compute_capability) &&
             cJSON_AddNumberToObject(o, "memory_total_gib", c->memory_total_gib) &&
             cJSON_AddNumberToObject(o, "copy_gbs", c->copy_gbs) &&
             cJSON_AddNumberToObject(o, "bf16_tflops", c->bf16_tflops) &&
             cJSON_AddNumberToObject(o, "fp16_tflops", c->fp16_tflops) &&
             cJSON_AddNumberToObject(o, "fp32_tflops", c->fp32_tflops) &&
             cJSON_AddNumberToObject(o, "copy_bytes", (double)c->copy_bytes) &&
             cJSON_AddNumberToObject(o, "gemm_n", c->gemm_n) &&
             cJSON_AddNumberToObject(o, "repeats", c->repeats) &&
             cJSON_AddBoolToObject(o, "quick", c->quick) &&
             cJSON_AddStringToObject(o, "measured_at", c->measured_at) &&
             cJSON_AddNumberToObject(o, "measure_seconds", c->measure_seconds) &&
             cJSON_AddNumberToObject(o, "runs", c->runs);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int gb_gpu_ceilings_save(const gb_gpu_ceilings *c, const char *path, gb_error *err) {
    return gb_json_cache_save(gb_gpu_ceilings_to_json(c), CACHE_FORMAT, path, err);
}

static int parse(const cJSON *o, gb_gpu_ceilings *out, const char *path, gb_error *err) {
    double device = 0, copy_bytes = 0, gemm_n = 0, repeats = 0, runs = 0;
    GB_TRY(gb_json_cache_num(o, "device", &device, path, err));
    GB_TRY(gb_json_cache_str(o, "gpu_name", out->gpu_name, sizeof out->gpu_name, path, err));
    GB_TRY(gb_json_cache_str(o, "driver_version", out->driver_version, sizeof out->driver_version,
                             path, err));
    GB_TRY(gb_json_cache_str(o, "compute_capability", out->compute_capability,
                             sizeof out->compute_capability, path, err));
    GB_TRY(gb_json_cache_num(o, "memory_total_gib", &out->memory_total_gib, path, err));
    GB_TRY(gb_json_cache_num(o, "copy_gbs", &out->copy_gbs, path, err));
    GB_TRY(gb_json_cache_num(o, "bf16_tflops", &out->bf16_tflops, path, err));
    GB_TRY(gb_json_cache_num(o, "fp16_tflops", &out->fp16_tflops, path, err));
    GB_TRY(gb_json_cache_num(o, "fp32_tflops", &out->fp32_tflops, path, err));
    GB_TRY(gb_json_cache_num(o, "copy_bytes", &copy_bytes, path, err));
    GB_TRY(gb_json_cache_num(o, "gemm_n", &gemm_n, path, err));
    GB_TRY(gb_json_cache_num(o, "repeats", &repeats, path, err));
    GB_TRY(
        gb_json_cache_str(o, "measured_at", out->measured_at, sizeof out->measured_at, path, err));
    GB_TRY(gb_json_cache_num(o, "measure_seconds", &out->measure_seconds, path, err));
    GB_TRY(gb_json_cache_num(o, "runs", &runs, path, err));
    if (device > 4096 || runs < 1 || runs > 1e9 || gemm_n > 1e6 || repeats > 1e6 ||
        copy_bytes > 1e15 || !(out->copy_gbs > 0) || !(out->bf16_tflops > 0) ||
        !(out->fp16_tflops > 0) || !(out->fp32_tflops > 0))
        return gb_error_set(err, GB_ERR_FORMAT, "%s: device index, runs or ceilings out of range",
                            path);
    out->device = (int)device;
    out->copy_bytes = (size_t)copy_bytes;
    out->gemm_n = (int)gemm_n;
    out->repeats = (int)repeats;
    out->runs = (int)runs;
    out->quick = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "quick"));
    out->from_cache = 1;
    return 0;
}

int gb_gpu_ceilings_load(gb_gpu_ceilings *out, const char *path, gb_error *err) {
    memset(out, 0, sizeof *out);
    cJSON *o = NULL;
    GB_TRY(gb_json_cache_load(path, CACHE_FORMAT, "GPU ceilings", &o, err));
    int rc = parse(o, out, path, err);
    cJSON_Delete(o);
    return rc;
}

int gb_gpu_ceilings_cache_path(const gb_gpu_ceilings *id, char *buf, size_t cap, gb_error *err) {
    char host[64], key[256];
    gb_machine_host_tag(host, sizeof host);
    snprintf(key, sizeof key, "%s|%s|%d", id->gpu_name, id->driver_version, id->device);
    uint64_t h = gb_fnv1a64(key, strlen(key));
    int n = snprintf(buf, cap, "%s/gpu-%s-%08x.json", gb_cache_dir(), host,
                     (unsigned)(h & 0xffffffffu));
    if (n < 0 || (size_t)n >= cap)
        return gb_error_set(err, GB_ERR_INVALID, "GPU ceilings cache path too long (%s)",
                            gb_cache_dir());
    return 0;
}

int gb_gpu_ceilings_matches(const gb_gpu_ceilings *c, const gb_gpu_ceilings *id) {
    return c->device == id->device && !strcmp(c->gpu_name, id->gpu_name) &&
           !strcmp(c->driver_version, id->driver_version);
}

/* ---- cached / get ------------------------------------------------------------------- */

/* Loads the cache of the device `id` describes; NOT_FOUND for a stale one (quick or another
 * key: a hash collision or a hand-edited file). */
static int load_for(const gb_gpu_ceilings *id, const char *path, gb_gpu_ceilings *out,
                    gb_error *err) {
    GB_TRY(gb_gpu_ceilings_load(out, path, err));
    if (out->quick || !gb_gpu_ceilings_matches(out, id))
        return gb_error_set(err, GB_ERR_NOT_FOUND,
                            "%s: cache is for another GPU, driver or index (%s, driver %s, "
                            "device %d)",
                            path, out->gpu_name, out->driver_version, out->device);
    return 0;
}

int gb_gpu_ceilings_cached(const gb_gpu_probe *probe, int device, gb_gpu_ceilings *out,
                           gb_error *err) {
    const gb_gpu_probe *p = probe ? probe : &real_probe;
    gb_gpu_ceilings id;
    memset(out, 0, sizeof *out);
    memset(&id, 0, sizeof id);
    GB_TRY(p->identify(p->user, device, &id, err));
    char path[4096];
    GB_TRY(gb_gpu_ceilings_cache_path(&id, path, sizeof path, err));
    return load_for(&id, path, out, err);
}

void gb_gpu_ceilings_merge_best(gb_gpu_ceilings *c, const gb_gpu_ceilings *other) {
    c->copy_gbs = fmax(c->copy_gbs, other->copy_gbs);
    c->bf16_tflops = fmax(c->bf16_tflops, other->bf16_tflops);
    c->fp16_tflops = fmax(c->fp16_tflops, other->fp16_tflops);
    c->fp32_tflops = fmax(c->fp32_tflops, other->fp32_tflops);
    c->runs += other->runs > 0 ? other->runs : 1;
}

int gb_gpu_ceilings_get(const gb_gpu_probe *probe, int device, int force, gb_gpu_ceilings *out,
                        gb_error *err) {
    const gb_gpu_probe *p = probe ? probe : &real_probe;
    gb_gpu_ceilings id, old;
    memset(&id, 0, sizeof id);
    GB_TRY(p->identify(p->user, device, &id, err));
    char path[4096];
    GB_TRY(gb_gpu_ceilings_cache_path(&id, path, sizeof path, err));
    gb_error lerr;
    int lrc = load_for(&id, path, &old, &lerr);
    if (lrc == 0 && !force) {
        *out = old;
        return 0;
    }
    char note[sizeof out->note] = "";
    /* A corrupt file is worth a word (it will be overwritten); a missing or stale one is
     * the normal first run on a device. */
    if (lrc == GB_ERR_FORMAT || lrc == GB_ERR_IO)
        snprintf(note, sizeof note, "%.560s; measured again", lerr.msg);
    memset(out, 0, sizeof *out);
    GB_TRY(p->measure(p->user, device, 0, out, err));
    if (lrc == 0) gb_gpu_ceilings_merge_best(out, &old);
    snprintf(out->note, sizeof out->note, "%s", note);
    /* A cache that cannot be written (read-only home) must not fail the benchmark. */
    gb_error ignored;
    (void)gb_gpu_ceilings_save(out, path, &ignored);
    gb_error_clear(err);
    return 0;
}

double gb_gpu_ceilings_peak_flops(const gb_gpu_ceilings *c, const char *dtype, const char **kind) {
    const char *k = NULL;
    double t = 0;
    if (!strcmp(dtype, "bfloat16")) {
        k = "bf16", t = c->bf16_tflops;
    } else if (!strcmp(dtype, "float16")) {
        k = "fp16", t = c->fp16_tflops;
    } else if (!strcmp(dtype, "float32")) {
        k = "fp32", t = c->fp32_tflops;
    }
    if (kind) *kind = k;
    return t * 1e12;
}
