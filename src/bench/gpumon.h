/* GPU monitor: a background thread samples GPU 0's utilisation (%) and memory used every
 * interval_ms through NVML, which is dlopen'ed at run time (no build dependency).
 *
 * Timestamps are CLOCK_MONOTONIC nanoseconds (util/clock.h), the clock of the token
 * timestamps, so GPU samples and tokens can be aligned. The thread sleeps between samples
 * (clock_nanosleep / condition wait, never a busy wait) and allocates only when its sample
 * arrays grow (doubling), so it does not disturb the measured run.
 *
 * Without NVML or without a GPU the monitor is inert: start succeeds, no thread is created,
 * nothing is printed, and the status is GB_GPUMON_NO_GPU ("no_gpus_available").
 *
 * Typical use (one monitor per measured iteration, like benchmark_v2):
 *     gb_gpumon *m;  gb_gpumon_start(&m, 50, &err);
 *     ... generate ...
 *     gb_gpumon_stop(m);
 *     cJSON *j = gb_gpumon_to_json(m, t0_ns);   // benchmark_v2 GPURawMetrics + genbench keys
 *     gb_gpumon_free(m);
 */
#ifndef GB_BENCH_GPUMON_H
#define GB_BENCH_GPUMON_H

#include <stddef.h>
#include <stdint.h>

#include "genbench.h"

typedef struct cJSON cJSON;
typedef struct gb_gpumon gb_gpumon;

/* Status values, named like benchmark_v2's GPUMonitoringStatus. */
enum gb_gpumon_status {
    GB_GPUMON_SUCCESS = 0,    /* "success": at least one sample */
    GB_GPUMON_FAILED = 1,     /* "failed": NVML loaded but sampling failed every time */
    GB_GPUMON_NO_GPU = 2,     /* "no_gpus_available": no NVML library or no device */
    GB_GPUMON_NO_SAMPLES = 3, /* "no_samples_collected": stopped before the first sample */
    GB_GPUMON_RUNNING = 4,    /* "running": started and not yet stopped */
};
const char *gb_gpumon_status_name(int status);

/* 1 when NVML can be loaded and reports at least one device (cached after the first call). */
int gb_gpumon_available(void);

/* Creates a monitor and starts its sampling thread (first sample taken immediately, before
 * this returns, so the series covers the whole run). interval_ms in [1, 60000]; 50 is the
 * benchmark_v2 default. Returns 0 (also when inert: no GPU), GB_ERR_INVALID for a bad
 * interval, GB_ERR_NOMEM / GB_ERR_INTERNAL if the thread cannot be created. */
int gb_gpumon_start(gb_gpumon **out, int interval_ms, gb_error *err);

/* Sampling callback for tests and other sources: fills util_pct and mem_mib for one sample;
 * returns 0 on success, non-zero to skip this sample (counted as a failure). */
typedef int (*gb_gpumon_sample_fn)(void *ctx, float *util_pct, float *mem_mib);

/* Same as gb_gpumon_start with a caller-provided sampler instead of NVML (unit tests). */
int gb_gpumon_start_with(gb_gpumon **out, int interval_ms, gb_gpumon_sample_fn fn, void *ctx,
                         gb_error *err);

/* Stops and joins the thread (takes one final sample). Idempotent; safe on inert monitors
 * and NULL. Returns the final status (enum gb_gpumon_status). */
int gb_gpumon_stop(gb_gpumon *m);

/* Accessors, valid after gb_gpumon_stop and until gb_gpumon_free. Arrays have
 * gb_gpumon_count() entries (NULL when 0). */
int gb_gpumon_status(const gb_gpumon *m);
size_t gb_gpumon_count(const gb_gpumon *m);
const int64_t *gb_gpumon_t_ns(const gb_gpumon *m);   /* CLOCK_MONOTONIC ns per sample */
const float *gb_gpumon_util_pct(const gb_gpumon *m); /* 0..100 */
const float *gb_gpumon_mem_mib(const gb_gpumon *m);  /* memory used, MiB (2^20 bytes) */
double gb_gpumon_t0_unix(const gb_gpumon *m);        /* wall-clock s of sample 0; 0 if none */
const char *gb_gpumon_gpu_name(const gb_gpumon *m);  /* "" when inert */

/* benchmark_v2 GPURawMetrics dict plus genbench keys (new cJSON, caller frees):
 *   utilization: [%], memory_used: [GB = 2^30 bytes], timestamps: [s since sample 0],
 *   timestamp_0: Unix epoch s of sample 0 (0.0 when no samples), monitoring_status,
 *   genbench: timestamps_since_t0: [s since t0_ns on CLOCK_MONOTONIC, the token clock],
 *   memory_used_mib: [MiB], memory_used_peak_mib (device-wide, max of the samples; 0 when
 *   none), interval_ms, gpu_name.
 * Non-success results have empty lists and timestamp_0 = 0.0, as in benchmark_v2.
 * Returns NULL only on out-of-memory. */
cJSON *gb_gpumon_to_json(const gb_gpumon *m, int64_t t0_ns);

void gb_gpumon_free(gb_gpumon *m);

#endif
