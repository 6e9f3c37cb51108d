#include "bench/stats.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy's linear percentile: the ranks lo, hi around q and the weight t of hi. */
static void pct_rank(size_t n, double q, size_t *lo, size_t *hi, double *t) {
    double rank = q / 100.0 * (double)(n - 1);
    *lo = (size_t)floor(rank), *hi = (size_t)ceil(rank);
    if (*hi >= n) *hi = n - 1;
    *t = rank - (double)*lo;
}

/* numpy's _lerp: symmetric form keeps results monotone and exact at the ends. */
static double lerp(double a, double b, double t) {
    double d = b - a;
    return t >= 0.5 ? b - d * (1.0 - t) : a + d * t;
}

/* The k-th smallest of v (0-based) without a sorted copy, O(n^2): for when the copy cannot
 * be allocated (the series are per-iteration or per-token timings, short). */
static double kth_smallest(const double *v, size_t n, size_t k) {
    for (size_t i = 0; i < n; i++) {
        size_t less = 0, eq = 0;
        for (size_t j = 0; j < n; j++) {
            less += v[j] < v[i];
            eq += v[j] == v[i];
        }
        if (less <= k && k < less + eq) return v[i];
    }
    return v[0]; /* not reached for finite values */
}

/* The k-th smallest of v: v[k] when v is sorted, else by counting. */
static double rank_value(const double *v, size_t n, size_t k, bool sorted) {
    return sorted ? v[k] : kth_smallest(v, n, k);
}

static double percentile(const double *v, size_t n, double q, bool sorted) {
    size_t lo, hi;
    double t;
    pct_rank(n, q, &lo, &hi, &t);
    return lerp(rank_value(v, n, lo, sorted), rank_value(v, n, hi, sorted), t);
}

double gb_percentile_sorted(const double *s, size_t n, double q) {
    return n ? percentile(s, n, q, true) : 0;
}

void gb_stats_compute(const double *v, size_t n, gb_stats *o) {
    memset(o, 0, sizeof *o);
    o->n = n;
    if (n == 0) return;
    double *s = malloc(n * sizeof *s);
    if (s) {
        memcpy(s, v, n * sizeof *s);
        qsort(s, n, sizeof *s, cmp_double);
    }
    /* the sorted copy, or the series as it is when out of memory (same values, by counting) */
    const double *m = s ? s : v;
    const bool sorted = s != NULL;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += m[i];
    o->mean = sum / (double)n;
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += (m[i] - o->mean) * (m[i] - o->mean);
    o->std = sqrt(ss / (double)n);
    o->min = rank_value(m, n, 0, sorted);
    o->max = rank_value(m, n, n - 1, sorted);
    o->median = percentile(m, n, 50, sorted);
    o->p90 = percentile(m, n, 90, sorted);
    o->p95 = percentile(m, n, 95, sorted);
    o->p99 = percentile(m, n, 99, sorted);
    free(s);
}

typedef struct {
    double v;
    int grp;
} tagged;

static int cmp_tagged(const void *a, const void *b) {
    return cmp_double(&((const tagged *)a)->v, &((const tagged *)b)->v);
}

/* Number of ways to get U = u with sizes (m, n): exact null distribution by recursion
 * c(u; m, n) = c(u - n; m - 1, n) + c(u; m, n - 1), computed as a table. */
static double exact_p(size_t m, size_t n, double u) {
    size_t umax = m * n;
    /* dp[j][u] for the current i over j = 0..n */
    double *prev = calloc((n + 1) * (umax + 1), sizeof(double));
    double *cur = calloc((n + 1) * (umax + 1), sizeof(double));
    if (!prev || !cur) {
        free(prev);
        free(cur);
        return -1;
    }
#define AT(t, j, x) (t)[(j) * (umax + 1) + (x)]
    for (size_t j = 0; j <= n; j++)
        AT(prev, j, 0) = 1; /* i = 0: U = 0 only */
    for (size_t i = 1; i <= m; i++) {
        memset(cur, 0, (n + 1) * (umax + 1) * sizeof(double));
        AT(cur, 0, 0) = 1;
        for (size_t j = 1; j <= n; j++)
            for (size_t x = 0; x <= i * j; x++) {
                double c = AT(cur, j - 1, x);
                if (x >= j) c += AT(prev, j, x - j);
                AT(cur, j, x) = c;
            }
        double *t = prev;
        prev = cur;
        cur = t;
    }
    double total = 0, le = 0;
    double umin = fmin(u, (double)umax - u);
    for (size_t x = 0; x <= umax; x++) {
        total += AT(prev, n, x);
        if ((double)x <= umin + 1e-9) le += AT(prev, n, x);
    }
#undef AT
    free(prev);
    free(cur);
    double p = 2.0 * le / total;
    return p > 1 ? 1 : p;
}

double gb_mann_whitney_p(const double *a, size_t na, const double *b, size_t nb, double *u_out) {
    if (u_out) *u_out = 0;
    if (na == 0 || nb == 0) return 1;
    size_t n = na + nb;
    double ra = 0, tie_sum = 0;
    bool ties = false;
    tagged *t = malloc(n * sizeof *t);
    if (t) {
        for (size_t i = 0; i < na; i++)
            t[i] = (tagged){a[i], 0};
        for (size_t i = 0; i < nb; i++)
            t[na + i] = (tagged){b[i], 1};
        qsort(t, n, sizeof *t, cmp_tagged);
        for (size_t i = 0; i < n;) {
            size_t j = i;
            while (j + 1 < n && t[j + 1].v == t[i].v)
                j++;
            double r = (double)(i + j) / 2.0 + 1.0; /* midrank */
            for (size_t k = i; k <= j; k++)
                if (t[k].grp == 0) ra += r;
            double cnt = (double)(j - i + 1);
            if (cnt > 1) {
                ties = true;
                tie_sum += cnt * cnt * cnt - cnt;
            }
            i = j + 1;
        }
        free(t);
    } else {
        /* out of memory: the same midranks and tie sums by counting, O(n^2) (integers and
         * halves: exact in doubles, so the result is the same) */
        for (size_t i = 0; i < n; i++) {
            double x = i < na ? a[i] : b[i - na], less = 0, eq = 0;
            for (size_t j = 0; j < n; j++) {
                double y = j < na ? a[j] : b[j - na];
                less += y < x;
                eq += y == x;
            }
            if (i < na) ra += less + (eq - 1) / 2.0 + 1.0;
            if (eq > 1) {
                ties = true;
                tie_sum += eq * eq - 1; /* (c^3 - c) / c for each of the c tied values */
            }
        }
    }
    double u = ra - (double)na * (double)(na + 1) / 2.0;
    if (u_out) *u_out = u;
    if (!ties && na <= 25 && nb <= 25) {
        double p = exact_p(na, nb, u);
        if (p >= 0) return p;
    }
    double mu = (double)na * (double)nb / 2.0;
    double nn = (double)n;
    double var = (double)na * (double)nb / 12.0 * ((nn + 1) - tie_sum / (nn * (nn - 1)));
    if (var <= 0) return 1;
    double z = (fabs(u - mu) - 0.5) / sqrt(var);
    if (z < 0) z = 0;
    double p = erfc(z / sqrt(2.0));
    return p > 1 ? 1 : p;
}
