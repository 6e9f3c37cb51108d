/* Persistent thread pool: see threadpool.h. */
#include "backend/cpu/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define GB_CPU_RELAX() _mm_pause()
#else
#define GB_CPU_RELAX() ((void)0)
#endif

/* How long an idle worker spins before sleeping. Ops of one forward pass arrive within
 * microseconds; the gap between tokens (host side sampling, callbacks) is usually well under
 * this too. */
#define GB_POOL_SPIN_NS 300000LL

typedef struct {
    pthread_t thread;
    struct gb_threadpool *pool;
    int index;
} gb_pool_worker;

struct gb_threadpool {
    int size;
    gb_pool_worker *workers; /* size - 1 entries: worker i has tid i + 1 */

    /* The current job, published by bumping `generation`. Cache-line separated from the
     * counters the workers write. */
    _Alignas(64) gb_pool_task task;
    void *task_ctx;
    int task_nth;
    _Atomic unsigned generation;
    _Atomic int stop;

    _Alignas(64) _Atomic int done; /* workers finished with the current generation */

    _Alignas(64) _Atomic int sleepers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

int gb_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

static unsigned wait_generation(struct gb_threadpool *p, unsigned seen) {
    int64_t t0 = 0;
    for (unsigned i = 0;; i++) {
        unsigned g = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (g != seen) return g;
        GB_CPU_RELAX();
        if ((i & 63) == 63) {
            int64_t now = gb_clock_ns();
            if (t0 == 0)
                t0 = now;
            else if (now - t0 > GB_POOL_SPIN_NS)
                break;
        }
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    unsigned g;
    while ((g = atomic_load(&p->generation)) == seen)
        pthread_cond_wait(&p->cv, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker_main(void *arg) {
    gb_pool_worker *w = arg;
    struct gb_threadpool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        seen = wait_generation(p, seen);
        if (atomic_load(&p->stop)) break;
        int tid = w->index + 1;
        if (tid < p->task_nth) p->task(p->task_ctx, tid, p->task_nth);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel);
    }
    return NULL;
}

static void publish(struct gb_threadpool *p) {
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_seq_cst);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

int gb_threadpool_create(int threads, gb_threadpool **out, gb_error *err) {
    *out = NULL;
    if (threads < 1) threads = 1;
    struct gb_threadpool *p = aligned_alloc(64, sizeof *p);
    if (!p) return gb_error_set(err, GB_ERR_NOMEM, "thread pool: out of memory");
    *p = (struct gb_threadpool){0};
    p->size = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (threads > 1) {
        p->workers = calloc((size_t)threads - 1, sizeof *p->workers);
        if (!p->workers) {
            gb_threadpool_free(p);
            return gb_error_set(err, GB_ERR_NOMEM, "thread pool: out of memory");
        }
    }
    for (int i = 0; i < threads - 1; i++) {
        p->workers[i].pool = p;
        p->workers[i].index = i;
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
            gb_threadpool_free(p);
            return gb_error_set(err, GB_ERR_INTERNAL, "thread pool: cannot create thread %d of %d",
                                i + 2, threads);
        }
        p->size++;
    }
    *out = p;
    return 0;
}

void gb_threadpool_free(gb_threadpool *p) {
    if (!p) return;
    atomic_store(&p->stop, 1);
    publish(p);
    for (int i = 0; i < p->size - 1; i++)
        pthread_join(p->workers[i].thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->workers);
    free(p);
}

int gb_threadpool_size(const gb_threadpool *p) {
    return p ? p->size : 1;
}

void gb_threadpool_run(gb_threadpool *p, int nth, gb_pool_task fn, void *ctx) {
    if (!p || nth <= 1 || p->size == 1) {
        fn(ctx, 0, 1);
        return;
    }
    if (nth > p->size) nth = p->size;
    p->task = fn;
    p->task_ctx = ctx;
    p->task_nth = nth;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    publish(p);
    fn(ctx, 0, nth);
    /* Every worker acknowledges every generation (also those with tid >= nth), so the next
     * job cannot start while a worker still reads this one's fields. */
    int want = p->size - 1;
    for (unsigned i = 0; atomic_load_explicit(&p->done, memory_order_acquire) < want; i++) {
        GB_CPU_RELAX();
        if ((i & 1023) == 1023) sched_yield(); /* a worker was preempted: let it run */
    }
}

typedef struct {
    gb_pool_range fn;
    void *ctx;
    int64_t n, chunk;
    _Alignas(64) _Atomic int64_t next;
} gb_pool_for_job;

static void for_task(void *ctx, int tid, int nth) {
    (void)nth;
    gb_pool_for_job *j = ctx;
    for (;;) {
        int64_t b = atomic_fetch_add_explicit(&j->next, j->chunk, memory_order_relaxed);
        if (b >= j->n) break;
        int64_t e = b + j->chunk < j->n ? b + j->chunk : j->n;
        j->fn(j->ctx, b, e, tid);
    }
}

void gb_threadpool_for(gb_threadpool *p, int nth, int64_t n, int64_t chunk, gb_pool_range fn,
                       void *ctx) {
    if (n <= 0) return;
    if (chunk < 1) chunk = 1;
    if (n <= chunk || nth <= 1 || !p || p->size == 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    int64_t chunks = (n + chunk - 1) / chunk;
    if (nth > chunks) nth = (int)chunks;
    gb_pool_for_job j = {.fn = fn, .ctx = ctx, .n = n, .chunk = chunk};
    atomic_init(&j.next, 0);
    gb_threadpool_run(p, nth, for_task, &j);
}
