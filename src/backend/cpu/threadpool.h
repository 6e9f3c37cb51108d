/* A persistent pthread pool for the CPU kernels.
 *
 * Threads are created once; an op hands its work to them through a generation counter and
 * waits on a completion counter, so dispatching one op costs microseconds (no thread
 * creation, no allocation). Idle workers spin for a short while (ops of a decode step follow
 * each other within microseconds) and then sleep on a condition variable, so an idle pool
 * costs no CPU. The calling thread is worker 0 and does its share of the work.
 *
 * One caller at a time: run()/parallel_for() must not be called concurrently on one pool. */
#ifndef GB_BACKEND_CPU_THREADPOOL_H
#define GB_BACKEND_CPU_THREADPOOL_H

#include <stdint.h>
#include "genbench.h"

typedef struct gb_threadpool gb_threadpool;

/* fn(ctx, tid, nth): tid in [0, nth). */
typedef void (*gb_pool_task)(void *ctx, int tid, int nth);
/* fn(ctx, begin, end, tid): one chunk [begin, end) of the index range. */
typedef void (*gb_pool_range)(void *ctx, int64_t begin, int64_t end, int tid);

/* Pool with `threads` threads in all (the caller counts as one; threads >= 1). */
int gb_threadpool_create(int threads, gb_threadpool **out, gb_error *err);
void gb_threadpool_free(gb_threadpool *p);
int gb_threadpool_size(const gb_threadpool *p);

/* Runs fn on nth threads (nth clamped to [1, size]); returns when all have returned. */
void gb_threadpool_run(gb_threadpool *p, int nth, gb_pool_task fn, void *ctx);

/* Splits [0, n) into chunks of `chunk` indices handed out by an atomic counter to nth threads
 * (dynamic balance: a thread slowed by a neighbour process takes fewer chunks). */
void gb_threadpool_for(gb_threadpool *p, int nth, int64_t n, int64_t chunk, gb_pool_range fn,
                       void *ctx);

/* Number of online CPUs (>= 1). */
int gb_cpu_count(void);

#endif
