/* Statistics: values checked against numpy (np.mean, np.std, np.percentile linear) and
 * scipy.stats.mannwhitneyu results computed by hand below. */
#include "bench/stats.h"
#include "test.h"

/* The library's malloc calls come here (linked with -Wl,--wrap=malloc): with fail_malloc set
 * they fail, so the statistics take their no-allocation paths, which must give the same
 * values. */
void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);
static int fail_malloc, refused;
void *__wrap_malloc(size_t n) {
    if (!fail_malloc) return __real_malloc(n);
    refused++;
    return NULL;
}

#define NEAR(a, b)                                                                                 \
    CHECK_MSG(fabs((double)(a) - (double)(b)) <= 1e-12 * (1 + fabs((double)(b))),                  \
              "expected %.17g, got %.17g", (double)(b), (double)(a))

static void checks(void) {
    /* np.percentile([1,2,3,4,5,6,7,8,9,10], [50,90,95,99]) = 5.5, 9.1, 9.55, 9.91 */
    double v[10] = {10, 1, 9, 2, 8, 3, 7, 4, 6, 5};
    gb_stats s;
    gb_stats_compute(v, 10, &s);
    CHECK_EQ_INT(s.n, 10);
    NEAR(s.mean, 5.5);
    NEAR(s.std, 2.8722813232690143); /* np.std, ddof=0 */
    NEAR(s.min, 1);
    NEAR(s.max, 10);
    NEAR(s.median, 5.5);
    NEAR(s.p90, 9.1);
    NEAR(s.p95, 9.55);
    NEAR(s.p99, 9.91);
    /* One value: everything equals it, std 0. */
    double one = 0.25;
    gb_stats_compute(&one, 1, &s);
    NEAR(s.median, 0.25);
    NEAR(s.p99, 0.25);
    NEAR(s.std, 0);
    /* Empty: zeros (benchmark_v2 behaviour). */
    gb_stats_compute(NULL, 0, &s);
    CHECK(s.mean == 0 && s.max == 0 && s.n == 0);
    /* Odd count median and p90 of [1, 2, 4]: rank 1.8 -> 2 + 0.8 * 2 = 3.6 */
    double w[3] = {4, 1, 2};
    gb_stats_compute(w, 3, &s);
    NEAR(s.median, 2);
    NEAR(s.p90, 3.6);

    /* Mann-Whitney U. Fully separated samples of 5 and 5, no ties: exact p = 2/252. */
    double a[5] = {1, 2, 3, 4, 5}, b[5] = {6, 7, 8, 9, 10};
    double u;
    double p = gb_mann_whitney_p(a, 5, b, 5, &u);
    NEAR(u, 0);
    NEAR(p, 2.0 / 252.0);
    /* Identical samples: p = 1. */
    p = gb_mann_whitney_p(a, 5, a, 5, &u);
    CHECK_MSG(p > 0.99, "p = %g", p);
    /* Interleaved [1,3,5] vs [2,4,6]: U = 3, exact two-sided p = 0.7 (scipy exact). */
    double c[3] = {1, 3, 5}, d[3] = {2, 4, 6};
    p = gb_mann_whitney_p(c, 3, d, 3, &u);
    NEAR(u, 3);
    NEAR(p, 0.7);
    /* Ties use the normal approximation. By hand for [1,1,2,2,3] vs [2,3,3,4,4]: midranks
     * 1.5,1.5,4,4,7 -> R = 18, U = 3; tie term sum(t^3 - t) = 60; var = 25/12 * (11 - 60/90)
     * = 21.5278; z = (|3 - 12.5| - 0.5) / sqrt(var) = 1.93972; p = erfc(z / sqrt 2) = 0.05241. */
    double e[5] = {1, 1, 2, 2, 3}, f[5] = {2, 3, 3, 4, 4};
    p = gb_mann_whitney_p(e, 5, f, 5, &u);
    NEAR(u, 3);
    CHECK_MSG(fabs(p - 0.05241) < 0.0001, "expected 0.05241, got %g", p);
    /* Many ties, unsorted input (for the counting paths too), by hand as above: [3,1,2,2,3,1]
     * vs [2,2,4,1]: midranks 1 -> 2, 2 -> 5.5, 3 -> 8.5, 4 -> 10; R = 32, U = 11; tie term
     * 24 + 60 + 6 = 90; var = 24/12 * (11 - 90/90) = 20; z = 0.5 / sqrt(20);
     * p = erfc(z / sqrt 2) = 0.910979. */
    double g[6] = {3, 1, 2, 2, 3, 1}, h[4] = {2, 2, 4, 1};
    p = gb_mann_whitney_p(g, 6, h, 4, &u);
    NEAR(u, 11);
    CHECK_MSG(fabs(p - 0.910979) < 1e-6, "expected 0.910979, got %g", p);
    gb_stats_compute(g, 6, &s);
    NEAR(s.median, 2);
    NEAR(s.p90, 3);
    NEAR(s.min, 1);
}

int main(void) {
    checks();
    fail_malloc = 1; /* the same values without a sorted copy */
    checks();
    fail_malloc = 0;
    CHECK_MSG(refused >= 8, "only %d allocations refused", refused);
    TEST_MAIN_END();
}
