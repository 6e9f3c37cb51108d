#define _GNU_SOURCE /* sched_getaffinity, CPU_* macros, pthread_setaffinity_np */
#include "bench/machine.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>

#include "bench/hwinfo.h"
#include "bench/json_cache.h"
#include "bench/machine_kernels.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/hash.h"
#include "util/paths.h"

#define CACHE_FORMAT 2 /* 2: the read loop became four prefetched streams (session 4) */
#define GIB ((size_t)1 << 30)
#define HUGE_PAGE ((size_t)2 << 20)

/* ---- ISA choice --------------------------------------------------------------------- */

enum { K_SCALAR, K_AVX2, K_AVX512 };

/* GB_CPU_ISA=scalar|avx2|avx512 caps the kernels (as it does for the CPU engine), e.g. to
 * measure the AVX2 ceilings of an AVX-512 machine. */
static int isa_cap(void) {
    const char *e = getenv("GB_CPU_ISA");
    if (!e || !*e) return K_AVX512;
    if (!strcmp(e, "scalar")) return K_SCALAR;
    if (!strcmp(e, "avx2")) return K_AVX2;
    return K_AVX512;
}
static int capped(int k) {
    int cap = isa_cap();
    return k < cap ? k : cap;
}
static int bw_isa(void) {
    unsigned f = gb_isa_flags();
    if (f & GB_ISA_AVX512F) return capped(K_AVX512);
    if ((f & GB_ISA_AVX2) && (f & GB_ISA_FMA)) return capped(K_AVX2);
    return K_SCALAR;
}
static int fp32_isa(void) {
    return bw_isa();
}
static int bf16_isa(void) {
    unsigned f = gb_isa_flags();
    if ((f & GB_ISA_AVX512F) && (f & GB_ISA_AVX512BF16)) return capped(K_AVX512);
    if ((f & GB_ISA_AVX2) && (f & GB_ISA_FMA)) return capped(K_AVX2);
    return K_SCALAR;
}
static const char *isa_name(int k, int bf16) {
    return k == K_AVX512 ? (bf16 ? "avx512_bf16" : "avx512") : k == K_AVX2 ? "avx2" : "scalar";
}

/* ---- thread team: `threads` pinned workers run `repeats` rounds in lock step ------- */

enum { JOB_READ, JOB_FP32, JOB_BF16 };
#define MAX_ROUNDS 40

typedef struct team team;
typedef struct {
    team *t;
    int idx;
    int cpu; /* CPU to pin to, -1 = none */
    pthread_t th;
    int64_t start[MAX_ROUNDS], end[MAX_ROUNDS];         /* CLOCK_MONOTONIC */
    int64_t cpu_start[MAX_ROUNDS], cpu_end[MAX_ROUNDS]; /* CLOCK_THREAD_CPUTIME_ID */
    double sink;
} worker;

struct team {
    int job, threads, repeats, isa;
    long iters;
    const char *buf;
    size_t window, slice; /* read: round r reads window (r % nwin), split in slices */
    int nwin;
    const float *a;
    const uint16_t *b;
    int cpu_time; /* time rounds by each thread's CPU time instead of the wall clock */
    pthread_barrier_t bar;
    /* Start gate: workers wait until every thread exists (gate 1) or creation failed
     * (gate -1: they leave without touching the barrier). */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int gate;
};

static double run_kernel(team *t, int idx, int round) {
    switch (t->job) {
    case JOB_READ: {
        const char *p = t->buf + (size_t)(round % t->nwin) * t->window + (size_t)idx * t->slice;
        return (double)(t->isa == K_AVX512 ? gb_mk_read_avx512(p, t->slice)
                        : t->isa == K_AVX2 ? gb_mk_read_avx2(p, t->slice)
                                           : gb_mk_read_scalar(p, t->slice));
    }
    case JOB_FP32: {
        float seed = 1.0f + (float)idx * 1e-3f;
        return t->isa == K_AVX512 ? gb_mk_fp32_avx512(t->iters, seed)
               : t->isa == K_AVX2 ? gb_mk_fp32_avx2(t->iters, seed)
                                  : gb_mk_fp32_scalar(t->iters, seed);
    }
    default:
        return t->isa == K_AVX512 ? gb_mk_bf16_avx512(t->iters, 1.0f + (float)idx * 1e-3f)
               : t->isa == K_AVX2 ? gb_mk_bf16_avx2(t->iters, t->a, t->b)
                                  : gb_mk_bf16_scalar(t->iters, t->a, t->b);
    }
}

static int64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    if (w->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(w->cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* best effort */
    }
    pthread_mutex_lock(&w->t->mu);
    while (w->t->gate == 0)
        pthread_cond_wait(&w->t->cv, &w->t->mu);
    int go = w->t->gate > 0;
    pthread_mutex_unlock(&w->t->mu);
    if (!go) return NULL;
    for (int r = 0; r < w->t->repeats; r++) {
        pthread_barrier_wait(&w->t->bar);
        w->start[r] = gb_clock_ns();
        w->cpu_start[r] = thread_cpu_ns();
        w->sink += run_kernel(w->t, w->idx, r);
        w->cpu_end[r] = thread_cpu_ns();
        w->end[r] = gb_clock_ns();
    }
    return NULL;
}

/* CPUs of the affinity mask, in order; returns how many (at most cap). */
static int usable_cpus(int *cpus, int cap) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < cap; c++)
        if (CPU_ISSET(c, &set)) cpus[n++] = c;
    return n;
}

static int usable_count(void) {
    int cpus[CPU_SETSIZE];
    int n = usable_cpus(cpus, CPU_SETSIZE);
    return n > 0 ? n : 1;
}

/* Runs the team; returns the best round's time in seconds, or -1 if threads could not be
 * created. Wall mode: first start to last end over all threads. CPU-time mode (compute
 * peaks): the time at which the threads' combined rate would do the round, threads /
 * sum(1 / cpu_i), so a thread descheduled by another process on a shared machine does not
 * count as slow hardware. */
static double team_run(team *t) {
    if (t->repeats > MAX_ROUNDS) t->repeats = MAX_ROUNDS;
    int cpus[CPU_SETSIZE];
    int ncpu = usable_cpus(cpus, CPU_SETSIZE);
    worker *w = calloc((size_t)t->threads, sizeof *w);
    if (!w) return -1;
    pthread_barrier_init(&t->bar, NULL, (unsigned)t->threads);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->gate = 0;
    int created = 0;
    for (int i = 0; i < t->threads; i++) {
        w[i].t = t;
        w[i].idx = i;
        w[i].cpu = ncpu > 0 ? cpus[i % ncpu] : -1;
        if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) break;
        created++;
    }
    pthread_mutex_lock(&t->mu);
    t->gate = created == t->threads ? 1 : -1;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    for (int i = 0; i < created; i++)
        pthread_join(w[i].th, NULL);
    double best = -1;
    for (int r = 0; created == t->threads && r < t->repeats; r++) {
        int64_t s = w[0].start[r], e = w[0].end[r];
        for (int i = 1; i < t->threads; i++) {
            if (w[i].start[r] < s) s = w[i].start[r];
            if (w[i].end[r] > e) e = w[i].end[r];
        }
        double sec = (double)(e - s) * 1e-9;
        if (t->cpu_time) {
            double inv = 0;
            for (int i = 0; i < t->threads; i++) {
                int64_t c = w[i].cpu_end[r] - w[i].cpu_start[r];
                inv += c > 0 ? 1e9 / (double)c : 0;
            }
            sec = inv > 0 ? t->threads / inv : -1;
        }
        if (sec > 0 && (best < 0 || sec < best)) best = sec;
    }
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    pthread_barrier_destroy(&t->bar);
    free(w);
    return best;
}

/* ---- bandwidth ---------------------------------------------------------------------- */

/* 2 MiB-aligned anonymous buffer of `bytes`, touched so every page is resident; the kernel
 * may back it with huge pages, as it does the engine's weight buffers. */
typedef struct {
    char *raw, *buf;
    size_t map, bytes;
    int huge_pages;
} bw_buffer;

static int bw_buffer_alloc(bw_buffer *b, size_t bytes) {
    memset(b, 0, sizeof *b);
    b->map = bytes + HUGE_PAGE;
    b->raw = mmap(NULL, b->map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->raw == MAP_FAILED) return -1;
    b->buf = (char *)(((uintptr_t)b->raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    b->bytes = bytes;
#ifdef MADV_HUGEPAGE
    b->huge_pages = madvise(b->buf, bytes, MADV_HUGEPAGE) == 0;
#endif
    memset(b->buf, 1, bytes); /* fault every page in (untouched pages read the zero page) */
    return 0;
}

static void bw_buffer_free(bw_buffer *b) {
    if (b->raw && b->raw != MAP_FAILED) munmap(b->raw, b->map);
    memset(b, 0, sizeof *b);
}

/* Best-of-`rounds` read bandwidth. The buffer is read in windows of a quarter of it when a
 * quarter is still at least 128 MiB and 8x the last-level cache, one window per round in
 * turn: shorter rounds are likelier to find a quiet moment on a shared machine. */
static double bw_run(const bw_buffer *b, int threads, int rounds) {
    gb_hwinfo hw;
    gb_error e;
    size_t llc = gb_hwinfo_collect(&hw, &e) == 0 ? (size_t)hw.cache_l3_kib << 10 : 0;
    size_t quarter = b->bytes / 4;
    int nwin = quarter >= ((size_t)128 << 20) && quarter >= 8 * llc ? 4 : 1;
    size_t unit = (size_t)threads * 512;
    size_t window = b->bytes / (size_t)nwin / unit * unit;
    if (window == 0) return -1;
    /* One extra round warms TLBs; the best round is kept. */
    team t = {.job = JOB_READ,
              .threads = threads,
              .repeats = rounds + 1,
              .isa = bw_isa(),
              .buf = b->buf,
              .window = window,
              .nwin = nwin,
              .slice = window / (size_t)threads};
    double sec = team_run(&t);
    return sec > 0 ? (double)window / sec * 1e-9 : -1;
}

double gb_machine_read_bw_gbs(size_t bytes, int threads, int repeats, int *huge_pages) {
    if (threads < 1) threads = 1;
    if (repeats < 1) repeats = 1;
    bw_buffer b;
    if (bw_buffer_alloc(&b, bytes)) return -1;
    if (huge_pages) *huge_pages = b.huge_pages;
    double gbs = bw_run(&b, threads, repeats);
    bw_buffer_free(&b);
    return gbs;
}

/* ---- peaks -------------------------------------------------------------------------- */

static float gemm_a[GB_MK_GEMM_K * GB_MK_GEMM_ROWS];
static uint16_t gemm_b[GB_MK_GEMM_K * GB_MK_GEMM_COLS];

static pthread_once_t panels_once = PTHREAD_ONCE_INIT;

static void init_panels(void) {
    for (int i = 0; i < GB_MK_GEMM_K * GB_MK_GEMM_ROWS; i++)
        gemm_a[i] = 1e-3f * (float)(i % 7);
    for (int i = 0; i < GB_MK_GEMM_K * GB_MK_GEMM_COLS; i++)
        gemm_b[i] = (uint16_t)(0x3f80 + (i % 5)); /* bf16 values near 1.0 */
}

static double flop_per_iter(int job, int isa) {
    if (job == JOB_FP32)
        return GB_MK_FP32_ACC * 2.0 * (isa == K_AVX512 ? 16 : isa == K_AVX2 ? 8 : 1);
    if (isa == K_AVX512) return GB_MK_BF16_ACC * 16 * 2 * 2.0;
    return GB_MK_GEMM_ROWS * GB_MK_GEMM_COLS * 2.0;
}

static double peak_gflops(int job, int threads, int quick) {
    if (threads < 1) threads = 1;
    pthread_once(&panels_once, init_panels);
    team t = {.job = job,
              .threads = 1,
              .repeats = 1,
              .isa = job == JOB_FP32 ? fp32_isa() : bf16_isa(),
              .a = gemm_a,
              .b = gemm_b,
              .cpu_time = 1};
    /* Calibrate: grow iters until one run takes >= 2 ms, then aim at the target time. */
    double target = quick ? 0.005 : 0.05;
    long iters = 1000;
    double sec = 0;
    for (;;) {
        t.iters = iters;
        sec = team_run(&t);
        if (sec < 0) return -1;
        if (sec >= 0.002 || iters > (1L << 40)) break;
        iters *= 8;
    }
    t.iters = (long)((double)iters * target / sec) + 1;
    t.threads = threads;
    t.repeats = quick ? 2 : 7;
    sec = team_run(&t);
    if (sec <= 0) return -1;
    return flop_per_iter(job, t.isa) * (double)t.iters * threads / sec * 1e-9;
}

double gb_machine_fp32_gflops(int threads, int quick) {
    return peak_gflops(JOB_FP32, threads, quick);
}
double gb_machine_bf16_gflops(int threads, int quick) {
    return peak_gflops(JOB_BF16, threads, quick);
}

/* ---- measure ------------------------------------------------------------------------ */

static void utc_now(char *buf, size_t cap) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void cpu_name(char *buf, size_t cap) {
    gb_hwinfo hw;
    gb_error e;
    if (gb_hwinfo_collect(&hw, &e) == 0)
        snprintf(buf, cap, "%s", hw.cpu_name);
    else
        snprintf(buf, cap, "unknown");
}

int gb_machine_measure(gb_machine_ceilings *out, const gb_machine_opts *opts, gb_error *err) {
    gb_machine_opts o = opts ? *opts : (gb_machine_opts){0};
    memset(out, 0, sizeof *out);
    int64_t t0 = gb_clock_ns();
    out->quick = o.quick != 0;
    out->threads = o.threads > 0 ? o.threads : usable_count();
    out->bw_bytes = o.bw_bytes ? o.bw_bytes : o.quick ? (64u << 20) : GIB;
    int rep = o.repeats > 0 ? o.repeats : o.quick ? 2 : 24;
    if (out->threads > 1024 || rep >= MAX_ROUNDS)
        return gb_error_set(err, GB_ERR_INVALID, "machine ceilings: %d threads / %d repeats",
                            out->threads, rep);
    bw_buffer b;
    if (bw_buffer_alloc(&b, out->bw_bytes))
        return gb_error_set(err, GB_ERR_NOMEM,
                            "machine ceilings: cannot map a %zu-byte buffer for the bandwidth test",
                            out->bw_bytes);
    out->huge_pages = b.huge_pages;
    out->read_bw_gbs_1t = bw_run(&b, 1, rep);
    out->read_bw_gbs_all = out->threads == 1 ? out->read_bw_gbs_1t : bw_run(&b, out->threads, rep);
    bw_buffer_free(&b);
    if (out->read_bw_gbs_1t <= 0 || out->read_bw_gbs_all <= 0)
        return gb_error_set(err, GB_ERR_INTERNAL, "machine ceilings: bandwidth test failed");
    out->fp32_gflops_1t = gb_machine_fp32_gflops(1, o.quick);
    out->fp32_gflops_all = gb_machine_fp32_gflops(out->threads, o.quick);
    out->bf16_gflops_1t = gb_machine_bf16_gflops(1, o.quick);
    out->bf16_gflops_all = gb_machine_bf16_gflops(out->threads, o.quick);
    if (out->fp32_gflops_1t <= 0 || out->fp32_gflops_all <= 0 || out->bf16_gflops_1t <= 0 ||
        out->bf16_gflops_all <= 0)
        return gb_error_set(err, GB_ERR_INTERNAL, "machine ceilings: peak measurement failed");
    snprintf(out->bw_isa, sizeof out->bw_isa, "%s", isa_name(bw_isa(), 0));
    snprintf(out->fp32_isa, sizeof out->fp32_isa, "%s", isa_name(fp32_isa(), 0));
    snprintf(out->bf16_isa, sizeof out->bf16_isa, "%s", isa_name(bf16_isa(), 1));
    cpu_name(out->cpu_name, sizeof out->cpu_name);
    utc_now(out->measured_at, sizeof out->measured_at);
    out->measure_seconds = (double)(gb_clock_ns() - t0) * 1e-9;
    out->runs = 1;
    return 0;
}

/* ---- JSON and cache ----------------------------------------------------------------- */

cJSON *gb_machine_to_json(const gb_machine_ceilings *c) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int ok = cJSON_AddNumberToObject(o, "read_bw_gbs_1t", c->read_bw_gbs_1t) &&
             cJSON_AddNumberToObject(o, "read_bw_gbs_all", c->read_bw_gbs_all) &&
             cJSON_AddNumberToObject(o, "bf16_gflops_1t", c->bf16_gflops_1t) &&
             cJSON_AddNumberToObject(o, "bf16_gflops_all", c->bf16_gflops_all) &&
             cJSON_AddNumberToObject(o, "fp32_gflops_1t", c->fp32_gflops_1t) &&
             cJSON_AddNumberToObject(o, "fp32_gflops_all", c->fp32_gflops_all) &&
             cJSON_AddNumberToObject(o, "threads", c->threads) &&
             cJSON_AddNumberToObject(o, "bw_bytes", (double)c->bw_bytes) &&
             cJSON_AddBoolToObject(o, "huge_pages", c->huge_pages) &&
             cJSON_AddBoolToObject(o, "quick", c->quick) &&
             cJSON_AddStringToObject(o, "bw_isa", c->bw_isa) &&
             cJSON_AddStringToObject(o, "fp32_isa", c->fp32_isa) &&
             cJSON_AddStringToObject(o, "bf16_isa", c->bf16_isa) &&
             cJSON_AddStringToObject(o, "cpu_name", c->cpu_name) &&
             cJSON_AddStringToObject(o, "measured_at", c->measured_at) &&
             cJSON_AddNumberToObject(o, "measure_seconds", c->measure_seconds) &&
             cJSON_AddNumberToObject(o, "runs", c->runs);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

double gb_machine_for_threads(double one, double all, int t, int all_threads) {
    if (t <= 1) return one;
    if (t >= all_threads || all <= 0) return all;
    return one * t < all ? one * t : all;
}

int gb_machine_save(const gb_machine_ceilings *c, const char *path, gb_error *err) {
    return gb_json_cache_save(gb_machine_to_json(c), CACHE_FORMAT, path, err);
}

int gb_machine_load(gb_machine_ceilings *out, const char *path, gb_error *err) {
    memset(out, 0, sizeof *out);
    cJSON *o = NULL;
    GB_TRY(gb_json_cache_load(path, CACHE_FORMAT, "machine ceilings", &o, err));
    double threads = 0, bw_bytes = 0;
#define NUM(key, dst) (rc == 0 ? (rc = gb_json_cache_num(o, key, dst, path, err)) : rc)
#define STR(key, dst) (rc == 0 ? (rc = gb_json_cache_str(o, key, dst, sizeof dst, path, err)) : rc)
    int rc = 0;
    NUM("read_bw_gbs_1t", &out->read_bw_gbs_1t);
    NUM("read_bw_gbs_all", &out->read_bw_gbs_all);
    NUM("bf16_gflops_1t", &out->bf16_gflops_1t);
    NUM("bf16_gflops_all", &out->bf16_gflops_all);
    NUM("fp32_gflops_1t", &out->fp32_gflops_1t);
    NUM("fp32_gflops_all", &out->fp32_gflops_all);
    NUM("threads", &threads);
    NUM("bw_bytes", &bw_bytes);
    NUM("measure_seconds", &out->measure_seconds);
    STR("bw_isa", out->bw_isa);
    STR("fp32_isa", out->fp32_isa);
    STR("bf16_isa", out->bf16_isa);
    STR("cpu_name", out->cpu_name);
    STR("measured_at", out->measured_at);
#undef NUM
#undef STR
    if (rc == 0 && (threads < 1 || threads > 1 << 20 || out->read_bw_gbs_1t <= 0 ||
                    out->bf16_gflops_1t <= 0 || out->fp32_gflops_1t <= 0))
        rc = gb_error_set(err, GB_ERR_FORMAT, "%s: threads or ceilings out of range", path);
    out->threads = (int)threads;
    out->bw_bytes = (size_t)bw_bytes;
    out->huge_pages = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "huge_pages"));
    out->quick = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "quick"));
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(o, "runs");
    out->runs = cJSON_IsNumber(runs) && runs->valuedouble >= 1 && runs->valuedouble < 1e9
                    ? (int)runs->valuedouble
                    : 1;
    out->from_cache = 1;
    cJSON_Delete(o);
    return rc;
}

void gb_machine_host_tag(char *buf, size_t cap) {
    if (cap == 0) return;
    snprintf(buf, cap, "host");
    struct utsname u;
    if (uname(&u) == 0 && u.nodename[0]) {
        /* keep file-name-safe characters only */
        size_t j = 0;
        for (size_t i = 0; u.nodename[i] && j + 1 < cap; i++) {
            char ch = u.nodename[i];
            int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
            buf[j++] = ok ? ch : '_';
        }
        buf[j] = 0;
    }
}

int gb_machine_cache_path(char *buf, size_t cap, gb_error *err) {
    char cpu[128], host[64];
    cpu_name(cpu, sizeof cpu);
    gb_machine_host_tag(host, sizeof host);
    char key[256];
    snprintf(key, sizeof key, "%s|%d", cpu, usable_count());
    uint64_t h = gb_fnv1a64(key, strlen(key));
    /* Sanitizer / -O0 builds measure much lower numbers: keep them apart from real ones. */
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__)
    const char *suffix = "";
#else
    const char *suffix = "-unoptimized";
#endif
    int n = snprintf(buf, cap, "%s/machine-%s-%08x%s.json", gb_cache_dir(), host,
                     (unsigned)(h & 0xffffffffu), suffix);
    if (n < 0 || (size_t)n >= cap)
        return gb_error_set(err, GB_ERR_INVALID, "machine cache path too long (%s)",
                            gb_cache_dir());
    return 0;
}

/* A cache is valid for this process when it describes this CPU, thread count and the
 * kernels this process would measure with (GB_CPU_ISA may lower them). */
static int cache_matches(const gb_machine_ceilings *c) {
    char cpu[128];
    cpu_name(cpu, sizeof cpu);
    return !c->quick && strcmp(c->cpu_name, cpu) == 0 && c->threads == usable_count() &&
           !strcmp(c->bw_isa, isa_name(bw_isa(), 0)) &&
           !strcmp(c->fp32_isa, isa_name(fp32_isa(), 0)) &&
           !strcmp(c->bf16_isa, isa_name(bf16_isa(), 1));
}

int gb_machine_ceilings_cached(gb_machine_ceilings *out, gb_error *err) {
    char path[4096];
    GB_TRY(gb_machine_cache_path(path, sizeof path, err));
    GB_TRY(gb_machine_load(out, path, err));
    if (!cache_matches(out))
        return gb_error_set(
            err, GB_ERR_NOT_FOUND,
            "%s: cache is for another CPU, thread count or ISA (%s, %d threads, bf16 %s)", path,
            out->cpu_name, out->threads, out->bf16_isa);
    return 0;
}

void gb_machine_merge_best(gb_machine_ceilings *c, const gb_machine_ceilings *other) {
    c->read_bw_gbs_1t = fmax(c->read_bw_gbs_1t, other->read_bw_gbs_1t);
    c->read_bw_gbs_all = fmax(c->read_bw_gbs_all, other->read_bw_gbs_all);
    c->bf16_gflops_1t = fmax(c->bf16_gflops_1t, other->bf16_gflops_1t);
    c->bf16_gflops_all = fmax(c->bf16_gflops_all, other->bf16_gflops_all);
    c->fp32_gflops_1t = fmax(c->fp32_gflops_1t, other->fp32_gflops_1t);
    c->fp32_gflops_all = fmax(c->fp32_gflops_all, other->fp32_gflops_all);
    c->runs += other->runs > 0 ? other->runs : 1;
}

int gb_machine_ceilings_get(gb_machine_ceilings *out, int force, gb_error *err) {
    if (!force && gb_machine_ceilings_cached(out, err) == 0) return 0;
    char path[4096];
    GB_TRY(gb_machine_cache_path(path, sizeof path, err));
    gb_machine_ceilings old;
    gb_error olderr;
    int have_old = gb_machine_ceilings_cached(&old, &olderr) == 0;
    GB_TRY(gb_machine_measure(out, NULL, err));
    if (have_old && !strcmp(old.bw_isa, out->bw_isa) && !strcmp(old.fp32_isa, out->fp32_isa) &&
        !strcmp(old.bf16_isa, out->bf16_isa))
        gb_machine_merge_best(out, &old);
    /* A cache that cannot be written (read-only home) must not fail the benchmark: the
     * numbers are valid, they will just be measured again next time. */
    gb_error ignored;
    (void)gb_machine_save(out, path, &ignored);
    gb_error_clear(err);
    return 0;
}
