#include "bench/gpumon.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/nvml.h"
#include "util/clock.h"
#include "util/error.h"

struct gb_gpumon {
    gb_gpumon_sample_fn fn;
    void *ctx;
    int interval_ms;
    int inert;
    int status;
    int thread_started;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* waits on CLOCK_MONOTONIC */
    int stop;
    /* Written only by the sampling thread (and by start before the thread exists). */
    size_t n, cap, failures;
    int64_t *t_ns;
    float *util;
    float *mem;
    double t0_unix;
    char gpu_name[96];
};

const char *gb_gpumon_status_name(int s) {
    switch (s) {
    case GB_GPUMON_SUCCESS:
        return "success";
    case GB_GPUMON_FAILED:
        return "failed";
    case GB_GPUMON_NO_GPU:
        return "no_gpus_available";
    case GB_GPUMON_NO_SAMPLES:
        return "no_samples_collected";
    case GB_GPUMON_RUNNING:
        return "running";
    default:
        return "unknown";
    }
}

int gb_gpumon_available(void) {
    return gb_nvml_device_count() > 0;
}

static int nvml_sample(void *ctx, float *util, float *mem_mib) {
    (void)ctx;
    unsigned u;
    uint64_t used;
    if (gb_nvml_device_utilization(0, &u) || gb_nvml_device_memory(0, NULL, &used)) return -1;
    *util = (float)u;
    *mem_mib = (float)((double)used / (1024.0 * 1024.0));
    return 0;
}

/* Takes one sample; grows the arrays by doubling when full (rare: 1024 samples = 51 s). */
static void take_sample(gb_gpumon *m) {
    float u, mem;
    int64_t t_before = gb_clock_ns();
    if (m->fn(m->ctx, &u, &mem) != 0) {
        m->failures++;
        return;
    }
    int64_t t_after = gb_clock_ns();
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        int64_t *t = realloc(m->t_ns, cap * sizeof *t);
        if (t) m->t_ns = t;
        float *a = realloc(m->util, cap * sizeof *a);
        if (a) m->util = a;
        float *b = realloc(m->mem, cap * sizeof *b);
        if (b) m->mem = b;
        if (!t || !a || !b) {
            m->failures++; /* out of memory: drop the sample, keep the series */
            return;
        }
        m->cap = cap;
    }
    if (m->n == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        m->t0_unix = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    }
    /* The sample describes the moment of the query: use the midpoint of the call. */
    m->t_ns[m->n] = t_before + (t_after - t_before) / 2;
    m->util[m->n] = u;
    m->mem[m->n] = mem;
    m->n++;
}

static void *monitor_thread(void *arg) {
    gb_gpumon *m = arg;
    int64_t period = (int64_t)m->interval_ms * 1000000LL;
    int64_t next = gb_clock_ns() + period;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        /* Sleep until the next deadline or until stop is requested. */
        while (!m->stop) {
            struct timespec ts = {(time_t)(next / 1000000000LL), (long)(next % 1000000000LL)};
            int rc = pthread_cond_timedwait(&m->cv, &m->mu, &ts);
            if (rc == ETIMEDOUT) break;
        }
        int stopping = m->stop;
        pthread_mutex_unlock(&m->mu);
        take_sample(m); /* the final sample too, when stopping */
        if (stopping) return NULL;
        next += period;
        int64_t now = gb_clock_ns();
        if (next < now) next = now + period; /* fell behind (suspended): don't burst */
        pthread_mutex_lock(&m->mu);
    }
}

static int start_impl(gb_gpumon **out, int interval_ms, gb_gpumon_sample_fn fn, void *ctx,
                      int inert, gb_error *err) {
    *out = NULL;
    if (interval_ms < 1 || interval_ms > 60000)
        return gb_error_set(err, GB_ERR_INVALID,
                            "GPU monitor: interval %d ms out of range [1, 60000]", interval_ms);
    gb_gpumon *m = calloc(1, sizeof *m);
    if (!m) return gb_error_set(err, GB_ERR_NOMEM, "GPU monitor: out of memory");
    m->fn = fn;
    m->ctx = ctx;
    m->interval_ms = interval_ms;
    m->inert = inert;
    if (inert) {
        m->status = GB_GPUMON_NO_GPU;
        *out = m;
        return 0;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&m->mu, NULL);
    m->status = GB_GPUMON_RUNNING;
    take_sample(m); /* first sample before start returns: the series covers the run */
    int rc = pthread_create(&m->thread, NULL, monitor_thread, m);
    if (rc != 0) {
        gb_gpumon_free(m);
        return gb_error_set(err, GB_ERR_INTERNAL, "GPU monitor: cannot create thread: %s",
                            strerror(rc));
    }
    m->thread_started = 1;
    *out = m;
    return 0;
}

int gb_gpumon_start(gb_gpumon **out, int interval_ms, gb_error *err) {
    int inert = !gb_gpumon_available();
    int rc = start_impl(out, interval_ms, nvml_sample, NULL, inert, err);
    if (rc == 0 && !inert && gb_nvml_device_name(0, (*out)->gpu_name, sizeof(*out)->gpu_name))
        (*out)->gpu_name[0] = 0;
    return rc;
}

int gb_gpumon_start_with(gb_gpumon **out, int interval_ms, gb_gpumon_sample_fn fn, void *ctx,
                         gb_error *err) {
    if (!fn) {
        *out = NULL;
        return gb_error_set(err, GB_ERR_INVALID, "GPU monitor: no sampling function");
    }
    return start_impl(out, interval_ms, fn, ctx, 0, err);
}

int gb_gpumon_stop(gb_gpumon *m) {
    if (!m) return GB_GPUMON_NO_GPU;
    if (m->thread_started) {
        pthread_mutex_lock(&m->mu);
        m->stop = 1;
        pthread_cond_signal(&m->cv);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->thread, NULL);
        m->thread_started = 0;
    }
    if (m->status == GB_GPUMON_RUNNING)
        m->status = m->n > 0          ? GB_GPUMON_SUCCESS
                    : m->failures > 0 ? GB_GPUMON_FAILED
                                      : GB_GPUMON_NO_SAMPLES;
    return m->status;
}

int gb_gpumon_status(const gb_gpumon *m) {
    return m ? m->status : GB_GPUMON_NO_GPU;
}
size_t gb_gpumon_count(const gb_gpumon *m) {
    return m && !m->thread_started ? m->n : 0;
}
const int64_t *gb_gpumon_t_ns(const gb_gpumon *m) {
    return gb_gpumon_count(m) ? m->t_ns : NULL;
}
const float *gb_gpumon_util_pct(const gb_gpumon *m) {
    return gb_gpumon_count(m) ? m->util : NULL;
}
const float *gb_gpumon_mem_mib(const gb_gpumon *m) {
    return gb_gpumon_count(m) ? m->mem : NULL;
}
double gb_gpumon_t0_unix(const gb_gpumon *m) {
    return gb_gpumon_count(m) ? m->t0_unix : 0.0;
}
const char *gb_gpumon_gpu_name(const gb_gpumon *m) {
    return m ? m->gpu_name : "";
}

static int add_array(cJSON *o, const char *key, size_t n,
                     double (*get)(const gb_gpumon *, size_t, int64_t), const gb_gpumon *m,
                     int64_t t0) {
    cJSON *a = cJSON_AddArrayToObject(o, key);
    if (!a) return -1;
    for (size_t i = 0; i < n; i++) {
        cJSON *v = cJSON_CreateNumber(get(m, i, t0));
        if (!v) return -1;
        cJSON_AddItemToArray(a, v);
    }
    return 0;
}

static double get_util(const gb_gpumon *m, size_t i, int64_t t0) {
    (void)t0;
    return m->util[i];
}
static double get_mem_gb(const gb_gpumon *m, size_t i, int64_t t0) {
    (void)t0;
    return m->mem[i] / 1024.0;
}
static double get_mem_mib(const gb_gpumon *m, size_t i, int64_t t0) {
    (void)t0;
    return m->mem[i];
}
static double get_rel0(const gb_gpumon *m, size_t i, int64_t t0) {
    (void)t0;
    return (double)(m->t_ns[i] - m->t_ns[0]) * 1e-9;
}
static double get_rel_t0(const gb_gpumon *m, size_t i, int64_t t0) {
    return (double)(m->t_ns[i] - t0) * 1e-9;
}

static double peak_mib(const gb_gpumon *m, size_t n) {
    double p = 0;
    for (size_t i = 0; i < n; i++)
        if (m->mem[i] > p) p = m->mem[i];
    return p;
}

cJSON *gb_gpumon_to_json(const gb_gpumon *m, int64_t t0_ns) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    size_t n = gb_gpumon_count(m);
    int status = gb_gpumon_status(m);
    if (status != GB_GPUMON_SUCCESS) n = 0;
    int bad = add_array(o, "utilization", n, get_util, m, t0_ns) ||
              add_array(o, "memory_used", n, get_mem_gb, m, t0_ns) ||
              add_array(o, "timestamps", n, get_rel0, m, t0_ns) ||
              !cJSON_AddNumberToObject(o, "timestamp_0", n ? m->t0_unix : 0.0) ||
              !cJSON_AddStringToObject(o, "monitoring_status", gb_gpumon_status_name(status));
    cJSON *g = bad ? NULL : cJSON_AddObjectToObject(o, "genbench");
    bad = bad || !g || add_array(g, "timestamps_since_t0", n, get_rel_t0, m, t0_ns) ||
          add_array(g, "memory_used_mib", n, get_mem_mib, m, t0_ns) ||
          !cJSON_AddNumberToObject(g, "memory_used_peak_mib", peak_mib(m, n)) ||
          !cJSON_AddNumberToObject(g, "interval_ms", m ? m->interval_ms : 0) ||
          !cJSON_AddStringToObject(g, "gpu_name", m ? m->gpu_name : "");
    if (bad) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

void gb_gpumon_free(gb_gpumon *m) {
    if (!m) return;
    gb_gpumon_stop(m);
    if (!m->inert) {
        pthread_cond_destroy(&m->cv);
        pthread_mutex_destroy(&m->mu);
    }
    free(m->t_ns);
    free(m->util);
    free(m->mem);
    free(m);
}
