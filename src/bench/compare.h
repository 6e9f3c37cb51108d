/* Comparison of two sets of results files (genbench compare): per (model id, config hash)
 * present in both, the medians of e2e latency, time to first token, inter-token latency and
 * throughput side by side, the relative change (B - A) / A, and a two-sided Mann-Whitney U
 * test over the per-iteration values: a change is reported as significant when p < alpha
 * (default 0.05), i.e. beyond the run-to-run noise of the two samples. */
#ifndef GB_BENCH_COMPARE_H
#define GB_BENCH_COMPARE_H

#include <stdbool.h>
#include "genbench.h"

enum { GB_CMP_E2E = 0, GB_CMP_TTFT, GB_CMP_ITL, GB_CMP_TPUT, GB_CMP_METRICS };

typedef struct gb_cmp_entry {
    char *model_id;
    char hash[65];
    char *name;
    char *file;
    bool success;
    int n;                          /* iterations */
    double *series[GB_CMP_METRICS]; /* n values each */
} gb_cmp_entry;

typedef struct gb_cmp_set {
    gb_cmp_entry *e;
    int n, cap;
    int n_files;
} gb_cmp_set;

/* Loads a results file, or every *_benchmark_*.json under a directory (recursively, in
 * path order; a later file replaces an entry with the same model id and hash). */
int gb_cmp_load(const char *path, gb_cmp_set *out, gb_error *err);
void gb_cmp_free(gb_cmp_set *s);

/* The comparison table (malloc'd) in md, csv, json or jsonl. Columns: model_id, config,
 * hash, metric, unit, a_median, b_median, change_pct, p_value, significant, verdict.
 * *n_matched receives the number of configs present on both sides. */
char *gb_cmp_report(const gb_cmp_set *a, const gb_cmp_set *b, const char *format, double alpha,
                    int *n_matched);

#endif
