#include "bench/stats.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double gb_percentile_sorted(const double *s, size_t n, double q) {
    if (n == 0) return 0;
    double rank = q / 100.0 * (double)(n - 1);
    size_t lo = (size_t)floor(rank), hi = (size_t)ceil(rank);
    if (hi >= n) hi = n - 1;
    double t = rank - (double)lo;
    /* numpy's _lerp: symmetric form keeps results monotone and exact at the ends. */
    double d = s[hi] - s[lo];
    return t >= 0.5 ? s[hi] - d * (1.0 - t) : s[lo] + d * t;
}

void gb_stats_compute(const double *v, size_t n, gb_stats *o) {
    memset(o, 0, sizeof *o);
    o->n = n;
    if (n == 0) return;
    double *s = malloc(n * sizeof *s);
    if (!s) abort(); /* a few doubles: out of memory here is not recoverable meaningfully */
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += s[i];
    o->mean = sum / (double)n;
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += (s[i] - o->mean) * (s[i] - o->mean);
    o->std = sqrt(ss / (double)n);
    o->min = s[0];
    o->max = s[n - 1];
    o->median = gb_percentile_sorted(s, n, 50);
    o->p90 = gb_percentile_sorted(s, n, 90);
    o->p95 = gb_percentile_sorted(s, n, 95);
    o->p99 = gb_percentile_sorted(s, n, 99);
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
    tagged *t = malloc(n * sizeof *t);
    double *rank = malloc(n * sizeof *rank);
    if (!t || !rank) abort();
    for (size_t i = 0; i < na; i++)
        t[i] = (tagged){a[i], 0};
    for (size_t i = 0; i < nb; i++)
        t[na + i] = (tagged){b[i], 1};
    qsort(t, n, sizeof *t, cmp_tagged);
    double tie_sum = 0;
    bool ties = false;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && t[j + 1].v == t[i].v)
            j++;
        double r = (double)(i + j) / 2.0 + 1.0; /* midrank */
        for (size_t k = i; k <= j; k++)
            rank[k] = r;
        double cnt = (double)(j - i + 1);
        if (cnt > 1) {
            ties = true;
            tie_sum += cnt * cnt * cnt - cnt;
        }
        i = j + 1;
    }
    double ra = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i].grp == 0) ra += rank[i];
    free(t);
    free(rank);
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
