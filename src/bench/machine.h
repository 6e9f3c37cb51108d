/* Measured ceilings of this machine: memory read bandwidth and matrix-multiply peaks, the
 * denominators of genbench's efficiency numbers (product.md §2: achieved bandwidth / read
 * ceiling during decode, prefill FLOP/s / matrix peak).
 *
 * - read bandwidth: a large buffer (1 GiB, >> last-level cache; transparent huge pages when
 *   the kernel gives them) read with the widest loads the CPU has (AVX-512, AVX2, else
 *   scalar), summed so nothing is optimised away; one thread and all threads (one per CPU
 *   in the affinity mask, pinned), best of N rounds over 256 MiB windows (if >= 8x L3). GB/s = 1e9
 * bytes/s.
 * - fp32 peak: register-resident FMA microkernel (independent accumulators), 2 FLOP per
 *   lane per FMA. GFLOP/s = 1e9 FLOP/s.
 * - bf16 peak: vdpbf16ps microkernel (AVX512_BF16) with operands in registers, 2 FLOP per
 *   bf16 pair; where the CPU lacks AVX512_BF16, the AVX2 path genbench would use (bf16
 *   weights widened to fp32 by shifts, then FMA, amortised over 6 activation rows) and its
 *   name in bf16_isa.
 * Per-core and all-core numbers; the ISA actually used is recorded. Peaks are timed by each
 * thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so time slices lost to other processes on a
 * shared machine do not lower them; bandwidth is timed on the wall clock (best round).
 *
 * GB_CPU_ISA=scalar|avx2|avx512 caps the ISA (as for the CPU engine's kernels).
 *
 * Results are cached per machine in gb_cache_dir()/machine-<host>-<cpuhash>.json with the
 * measurement date; a cache whose CPU, thread count or format differs is remeasured. */
#ifndef GB_BENCH_MACHINE_H
#define GB_BENCH_MACHINE_H

#include <stddef.h>

#include "genbench.h"

typedef struct cJSON cJSON;

typedef struct gb_machine_ceilings {
    double read_bw_gbs_1t;  /* memory read bandwidth, one thread, GB/s */
    double read_bw_gbs_all; /* memory read bandwidth, `threads` threads, GB/s */
    double bf16_gflops_1t;  /* bf16 matrix-multiply peak, one core, GFLOP/s */
    double bf16_gflops_all; /* bf16 peak, `threads` cores */
    double fp32_gflops_1t;  /* fp32 FMA peak, one core */
    double fp32_gflops_all; /* fp32 FMA peak, `threads` cores */
    int threads;            /* threads used for the *_all numbers (CPUs in affinity mask) */
    size_t bw_bytes;        /* buffer size of the bandwidth test */
    int huge_pages;         /* 1 when madvise(MADV_HUGEPAGE) was accepted for the buffer */
    int quick;              /* 1 for a quick (low-accuracy) measurement; never cached */
    int from_cache;         /* 1 when read from the cache file */
    char bw_isa[16];        /* "avx512", "avx2", "scalar" */
    char fp32_isa[16];      /* "avx512", "avx2", "scalar" */
    char bf16_isa[16];      /* "avx512_bf16", "avx2", "scalar" */
    char cpu_name[128];     /* CPU the numbers belong to (cache key check) */
    char measured_at[32];   /* UTC ISO-8601, e.g. "2026-11-28T04:40:00Z" */
    double measure_seconds; /* how long the (last) measurement took */
    int runs;               /* measurements merged into these numbers (see _get) */
} gb_machine_ceilings;

typedef struct gb_machine_opts {
    int quick;       /* small buffer, short loops (~0.3 s total; for tests) */
    int threads;     /* 0 = all CPUs in the affinity mask */
    size_t bw_bytes; /* 0 = 1 GiB (64 MiB in quick mode) */
    int repeats;     /* bandwidth rounds (best kept); 0 = 24 (2 in quick mode), max 39 */
} gb_machine_opts;

/* Cached ceilings of this machine: loads the cache, or measures (full mode, all threads)
 * and writes the cache when it is missing/stale or when force != 0. Takes a few seconds
 * when it measures. A forced re-measurement keeps, per number, the best of the new value
 * and the valid cached one (runs counts them): a ceiling is a maximum, and on a shared
 * machine each measurement can only come out too low. Delete the cache file to start over.
 * A cache that cannot be written does not make this fail. */
int gb_machine_ceilings_get(gb_machine_ceilings *out, int force, gb_error *err);

/* Cached ceilings only: GB_ERR_NOT_FOUND (no measuring) when there is no valid cache. */
int gb_machine_ceilings_cached(gb_machine_ceilings *out, gb_error *err);

/* Per number, c = max(c, other); c->runs += other->runs. */
void gb_machine_merge_best(gb_machine_ceilings *c, const gb_machine_ceilings *other);

/* Measures now with the given options (NULL = defaults); does not touch the cache. */
int gb_machine_measure(gb_machine_ceilings *out, const gb_machine_opts *opts, gb_error *err);

/* Cache file path for this machine into buf. Returns 0 or GB_ERR_INVALID if too long. */
int gb_machine_cache_path(char *buf, size_t bufsize, gb_error *err);

/* This host's name with only file-name-safe characters ([A-Za-z0-9._-], others become '_'),
 * "host" when unknown: the cache files of this machine are named after it. */
void gb_machine_host_tag(char *buf, size_t cap);

/* Cache file read/write (explicit path; used by gb_machine_ceilings_get and tests). Load
 * returns GB_ERR_NOT_FOUND for a missing file, GB_ERR_FORMAT for a malformed one. */
int gb_machine_save(const gb_machine_ceilings *c, const char *path, gb_error *err);
int gb_machine_load(gb_machine_ceilings *out, const char *path, gb_error *err);

/* JSON object with every field above (new cJSON, caller frees; NULL on OOM). Keys:
 * read_bw_gbs_1t, read_bw_gbs_all, bf16_gflops_1t, bf16_gflops_all, fp32_gflops_1t,
 * fp32_gflops_all, threads, bw_bytes, huge_pages, quick, bw_isa, fp32_isa, bf16_isa,
 * cpu_name, measured_at, measure_seconds, runs. */
cJSON *gb_machine_to_json(const gb_machine_ceilings *c);

/* Individual measurements (also used by benchmarks scripts). threads >= 1. */
/* A ceiling for t threads from its one-thread and all-thread (all_threads threads) figures:
 * t x one, capped by all (bandwidth and peaks grow at most linearly with threads). */
double gb_machine_for_threads(double one, double all, int t, int all_threads);
double gb_machine_read_bw_gbs(size_t bytes, int threads, int repeats, int *huge_pages);
double gb_machine_fp32_gflops(int threads, int quick);
double gb_machine_bf16_gflops(int threads, int quick);

#endif
