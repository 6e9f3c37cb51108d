/* Text reports of results (the CLI prints them; the library only builds strings):
 * the benchmark_v2-style end-of-run summary and a machine-readable table in md, csv, json
 * or jsonl (one row per config). */
#ifndef GB_BENCH_REPORT_H
#define GB_BENCH_REPORT_H

#include <stddef.h>
#include "bench/results.h"

/* benchmark_v2's duration format: hr/min/s/ms/us/ns with two decimals, no space
 * ("1.13s", "3.81ms"). out >= 32 bytes. */
void gb_fmt_duration(double seconds, char *out, size_t cap);

/* End-of-run summary over the results of every model (malloc'd). */
char *gb_report_summary(const gb_bench_results *r, int n_results, double elapsed_s);

/* Valid formats: "md", "csv", "json", "jsonl". */
int gb_report_format_valid(const char *format);

/* One table over every entry of every results object (malloc'd; NULL on OOM). Columns:
 * model_id, config, hash, success, batch_size, prompt_length, new_tokens, e2e_median_s,
 * ttft_median_s, itl_median_s, throughput_tok_s, decode_tok_s, prefill_tok_s,
 * bandwidth_gbs, bandwidth_share, error. */
char *gb_report_table(const gb_bench_results *r, int n_results, const char *format);

/* Generic table rendering used by the report and by compare: cells[row * ncols + col]
 * (NULL = empty / null); numeric[col] != 0 writes that column's non-NULL cells as bare JSON
 * numbers. */
char *gb_table_render(const char *format, const char *const *header, int ncols,
                      const char *const *cells, int nrows, const int *numeric);

#endif
