/* The one clock of genbench: CLOCK_MONOTONIC, in nanoseconds or seconds. Token
 * timestamps, GPU monitor samples and trace events all use it. */
#ifndef GB_UTIL_CLOCK_H
#define GB_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t gb_clock_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline double gb_clock_s(void) { return (double)gb_clock_ns() * 1e-9; }

#endif
