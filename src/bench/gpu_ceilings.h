/* Measured ceilings of a CUDA device, cached per machine and device: the denominators of a
 * CUDA run's efficiency numbers (product.md §2), as src/bench/machine.h is for the CPU.
 *
 * - copy_gbs: device-to-device copy bandwidth, bytes read + written, GB/s (1e9 B/s); the
 *   decode ceiling of a model is copy_gbs * 1e9 / weight bytes tokens/s per sequence.
 * - bf16_tflops, fp16_tflops: cuBLAS GEMM with float32 accumulation, TFLOP/s (1e12 FLOP/s).
 * - fp32_tflops: cuBLAS float32 GEMM without TF32, TFLOP/s.
 * How they are measured: src/backend/cuda_ceilings.h (medians of 10 over 2 GiB copies and
 * 8192^3 GEMMs, about a second).
 *
 * The cache file is gb_cache_dir()/gpu-<host>-<hash>.json, hash of GPU name, driver version
 * and CUDA device index; a file whose key fields differ from the device at hand is stale
 * (remeasured), one that does not parse is reported (note) and remeasured. */
#ifndef GB_BENCH_GPU_CEILINGS_H
#define GB_BENCH_GPU_CEILINGS_H

#include <stddef.h>

#include "genbench.h"

typedef struct cJSON cJSON;

typedef struct gb_gpu_ceilings {
    /* key: which device the numbers belong to */
    int device;              /* CUDA device ordinal */
    char gpu_name[96];       /* e.g. "NVIDIA H100 80GB HBM3" */
    char driver_version[32]; /* NVIDIA driver, e.g. "570.124.06" (NVML), else "cuda 13.0" */
    /* description */
    char compute_capability[8]; /* e.g. "9.0" */
    double memory_total_gib;    /* device memory, GiB */
    /* ceilings */
    double copy_gbs;        /* D2D copy bandwidth, bytes read + written, GB/s */
    double bf16_tflops;     /* cuBLAS bf16 GEMM peak, TFLOP/s */
    double fp16_tflops;     /* cuBLAS fp16 GEMM peak, TFLOP/s */
    double fp32_tflops;     /* cuBLAS fp32 GEMM peak without TF32, TFLOP/s */
    size_t copy_bytes;      /* bytes per copy */
    int gemm_n;             /* GEMM size n (n x n x n) */
    int repeats;            /* timed repetitions per number (median kept) */
    int quick;              /* 1 for a quick (small, low-accuracy) measurement; never cached */
    int from_cache;         /* 1 when read from the cache file */
    char measured_at[32];   /* UTC ISO-8601 */
    double measure_seconds; /* how long the (last) measurement took */
    int runs;               /* measurements merged into these numbers (best of each) */
    char note[640];         /* not saved: why an existing cache file was not used ("" if none) */
} gb_gpu_ceilings;

/* How the cache functions reach the device: the real CUDA device by default (probe NULL);
 * tests inject fixed values. identify fills the key and description fields only. */
typedef struct gb_gpu_probe {
    int (*identify)(void *user, int device, gb_gpu_ceilings *out, gb_error *err);
    int (*measure)(void *user, int device, int quick, gb_gpu_ceilings *out, gb_error *err);
    void *user;
} gb_gpu_probe;

/* Identity of CUDA device `device` (no measuring). GB_ERR_DEVICE without CUDA / device. */
int gb_gpu_ceilings_identify(int device, gb_gpu_ceilings *out, gb_error *err);

/* Measures now (quick: 256 MiB copies, 4096^3 GEMMs, 3 repeats); does not touch the cache. */
int gb_gpu_ceilings_measure(int device, int quick, gb_gpu_ceilings *out, gb_error *err);

/* Cached ceilings of the device: GB_ERR_NOT_FOUND when there is no cache file or it is for
 * another GPU name / driver / index, GB_ERR_FORMAT (message names the file) when it does not
 * parse, GB_ERR_DEVICE when there is no such device. Never measures. */
int gb_gpu_ceilings_cached(const gb_gpu_probe *probe, int device, gb_gpu_ceilings *out,
                           gb_error *err);

/* Cached ceilings, or a measurement (full mode) written to the cache when the cache is
 * missing, stale or corrupt (out->note then says which file was bad), or when force != 0.
 * A forced measurement keeps, per number, the best of it and a valid cache (a ceiling is a
 * maximum; each measurement can only come out low). A cache that cannot be written does not
 * make this fail. GB_ERR_DEVICE when there is no such device. */
int gb_gpu_ceilings_get(const gb_gpu_probe *probe, int device, int force, gb_gpu_ceilings *out,
                        gb_error *err);

/* Cache file of the device described by id's key fields. GB_ERR_INVALID if too long. */
int gb_gpu_ceilings_cache_path(const gb_gpu_ceilings *id, char *buf, size_t cap, gb_error *err);

/* 1 when c's key fields (name, driver, index) equal id's. */
int gb_gpu_ceilings_matches(const gb_gpu_ceilings *c, const gb_gpu_ceilings *id);

/* Cache file read/write. Load: GB_ERR_NOT_FOUND for a missing file, GB_ERR_FORMAT for a
 * malformed one (the message starts with the path). Save is atomic (temp file + rename). */
int gb_gpu_ceilings_save(const gb_gpu_ceilings *c, const char *path, gb_error *err);
int gb_gpu_ceilings_load(gb_gpu_ceilings *out, const char *path, gb_error *err);

/* Per ceiling, c = max(c, other); c->runs += other->runs. */
void gb_gpu_ceilings_merge_best(gb_gpu_ceilings *c, const gb_gpu_ceilings *other);

/* Matrix peak for a run's dtype ("bfloat16", "float16", "float32") in FLOP/s, and its name
 * ("bf16", "fp16", "fp32") in *kind; 0 for another dtype. */
double gb_gpu_ceilings_peak_flops(const gb_gpu_ceilings *c, const char *dtype, const char **kind);

/* JSON object of every field but note (new cJSON; NULL on OOM). Keys: device, gpu_name,
 * driver_version, compute_capability, memory_total_gib, copy_gbs, bf16_tflops, fp16_tflops,
 * fp32_tflops, copy_bytes, gemm_n, repeats, quick, measured_at, measure_seconds, runs. */
cJSON *gb_gpu_ceilings_to_json(const gb_gpu_ceilings *c);

#endif
