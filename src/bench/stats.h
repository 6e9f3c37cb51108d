/* Statistics over the timed runs (product.md §2, docs/metrics.md): mean, population
 * standard deviation (ddof = 0), min, median, p90, p95, p99, max. Percentiles use linear
 * interpolation between closest ranks, numpy's default: rank = q/100 * (n - 1), value =
 * a[floor(rank)] + (a[ceil(rank)] - a[floor(rank)]) * frac(rank) on the sorted values.
 * An empty list gives all zeros (as benchmark_v2's compute_basic_statistics). */
#ifndef GB_BENCH_STATS_H
#define GB_BENCH_STATS_H

#include <stddef.h>

typedef struct gb_stats {
    size_t n;
    double mean, std, min, median, p90, p95, p99, max;
} gb_stats;

void gb_stats_compute(const double *v, size_t n, gb_stats *out);

/* q-th percentile (0..100) of already sorted values, numpy "linear". */
double gb_percentile_sorted(const double *sorted, size_t n, double q);

/* Mann-Whitney U test (two-sided) of samples a and b. Exact distribution when both have
 * at most 25 values and there are no ties; otherwise the normal approximation with the
 * tie correction and a continuity correction (as scipy.stats.mannwhitneyu, method "auto"
 * switches at 8). Returns the p-value in [0, 1]; *u_out (optional) gets U of a. Returns 1
 * when either sample is empty. */
double gb_mann_whitney_p(const double *a, size_t na, const double *b, size_t nb, double *u_out);

#endif
