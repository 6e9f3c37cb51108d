#include "bench/report.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/pyjson.h"
#include "bench/stats.h"

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 1024;
        while (nc < b->len + (size_t)n + 1)
            nc *= 2;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static char *sb_take(sbuf *b) {
    if (b->oom) {
        free(b->s);
        return NULL;
    }
    if (!b->s) return calloc(1, 1);
    return b->s;
}

void gb_fmt_duration(double v, char *out, size_t cap) {
    if (v > 3600)
        snprintf(out, cap, "%.2fhr", v / 3600);
    else if (v > 60)
        snprintf(out, cap, "%.2fmin", v / 60);
    else if (v > 1)
        snprintf(out, cap, "%.2fs", v);
    else if (v > 1e-3)
        snprintf(out, cap, "%.2fms", v * 1e3);
    else if (v > 1e-6)
        snprintf(out, cap, "%.2fus", v * 1e6);
    else
        snprintf(out, cap, "%.2fns", v * 1e9);
}

static void stat_values(const gb_stats *s, double out[8]) {
    out[0] = s->mean;
    out[1] = s->std;
    out[2] = s->min;
    out[3] = s->median;
    out[4] = s->p90;
    out[5] = s->p95;
    out[6] = s->p99;
    out[7] = s->max;
}

/* Rows of "key=value" items with every column padded to its widest value (benchmark_v2's
 * pprint), labels dot-filled. */
static void print_stats_block(sbuf *b, const gb_bench_entry *e) {
    static const char *const keys[8] = {"avg", "std", "min", "med", "p90", "p95", "p99", "max"};
    static const char *const labels[4] = {"E2E Latency", "Time to First Token",
                                          "Inter-Token Latency", "Throughput"};
    static const int series[4] = {GB_SERIES_E2E, GB_SERIES_TTFT, GB_SERIES_ITL, GB_SERIES_TPUT};
    char cell[4][8][32];
    int width[8] = {0};
    double *v = malloc(((size_t)e->n_iters + 1) * sizeof *v);
    if (!v) return;
    for (int r = 0; r < 4; r++) {
        gb_bench_entry_series(e, series[r], v);
        gb_stats s;
        gb_stats_compute(v, (size_t)e->n_iters, &s);
        double x[8];
        stat_values(&s, x);
        for (int k = 0; k < 8; k++) {
            if (r == 3)
                snprintf(cell[r][k], sizeof cell[r][k], "%.2ftok/s", x[k]);
            else
                gb_fmt_duration(x[k], cell[r][k], sizeof cell[r][k]);
            int w = (int)strlen(cell[r][k]);
            if (w > width[k]) width[k] = w;
        }
    }
    free(v);
    for (int r = 0; r < 4; r++) {
        char label[64];
        snprintf(label, sizeof label, "%s", labels[r]);
        size_t l = strlen(label);
        while (l < 20)
            label[l++] = '.';
        label[l] = '\0';
        sb_printf(b, "  %s: ", label);
        for (int k = 0; k < 8; k++)
            sb_printf(b, "%s%s=%-*s", k ? " " : "", keys[k], width[k], cell[r][k]);
        sb_printf(b, "\n");
    }
}

char *gb_report_summary(const gb_bench_results *res, int nres, double elapsed) {
    sbuf b = {0};
    char bar[101];
    memset(bar, '=', 100);
    bar[100] = '\0';
    int total = 0;
    for (int i = 0; i < nres; i++)
        total += res[i].n_entries;
    sb_printf(&b, "\n%s\nFinished benchmarks in %.2f seconds\nTotal number of benchmarks: %d\n",
              bar, elapsed, total);
    const gb_bench_results *first = NULL;
    for (int i = 0; i < nres && !first; i++)
        if (res[i].n_entries) first = &res[i];
    if (first) {
        const gb_bench_entry *e = &first->entries[0];
        sb_printf(&b, "First run metadata:\n");
        const char *kv[][2] = {{"model_id", first->model_id},
                               {"timestamp", e->timestamp},
                               {"branch_name", first->branch_name},
                               {"commit_id", first->commit_id},
                               {"commit_message", first->commit_message},
                               {"success", e->success ? "True" : "False"},
                               {"results_file", first->path}};
        for (size_t k = 0; k < sizeof kv / sizeof kv[0]; k++) {
            char label[64];
            snprintf(label, sizeof label, "%s", kv[k][0]);
            size_t l = strlen(label);
            while (l < 15)
                label[l++] = '.';
            label[l] = '\0';
            sb_printf(&b, "  %s: %s\n", label, kv[k][1] ? kv[k][1] : "None");
        }
    }
    for (int i = 0; i < nres; i++)
        for (int j = 0; j < res[i].n_entries; j++) {
            const gb_bench_entry *e = &res[i].entries[j];
            char verbose[512];
            gb_bench_config_verbose_name(&e->config, verbose, sizeof verbose);
            sb_printf(&b, "%s\nConfig: %s%s%s\n\n", bar, verbose, nres > 1 ? " | model " : "",
                      nres > 1 ? res[i].model_id : "");
            if (!e->success) sb_printf(&b, "  FAILED: %s\n", e->error ? e->error : "?");
            print_stats_block(&b, e);
            if (e->success) {
                sb_printf(&b, "  prompt %d tokens, %d new tokens, batch %d, %s %s, %d threads\n",
                          e->prompt_length, e->config.num_tokens_to_generate, e->config.batch_size,
                          e->config.device, e->config.dtype, e->config.threads);
                if (e->have_efficiency) {
                    const gb_bench_efficiency *f = &e->eff;
                    /* GPU ceilings are a copy bandwidth and hundreds of TFLOP/s. */
                    bool gpu = !strncmp(e->config.device, "cuda", 4);
                    double fu = gpu ? 1e12 : 1e9;
                    const char *fl = gpu ? "TFLOP/s" : "GFLOP/s";
                    sb_printf(&b, "  decode: %.2f GB/s read", f->achieved_bandwidth_gbs);
                    if (f->machine_bandwidth_gbs > 0)
                        sb_printf(&b, " = %.0f%% of the %.1f GB/s measured%s",
                                  100 * f->achieved_bandwidth_gbs / f->machine_bandwidth_gbs,
                                  f->machine_bandwidth_gbs, gpu ? " (device copy)" : "");
                    sb_printf(&b, "; prefill: %.2f %s", f->prefill_flops_per_s / fu, fl);
                    if (f->machine_matrix_peak_flops > 0)
                        sb_printf(&b, " = %.0f%% of the %.1f %s %s peak",
                                  100 * f->prefill_flops_per_s / f->machine_matrix_peak_flops,
                                  f->machine_matrix_peak_flops / fu, fl, f->peak_kind);
                    sb_printf(&b, "\n");
                }
            }
        }
    sb_printf(&b, "%s\n", bar);
    return sb_take(&b);
}

int gb_report_format_valid(const char *f) {
    return f &&
           (!strcmp(f, "md") || !strcmp(f, "csv") || !strcmp(f, "json") || !strcmp(f, "jsonl"));
}

static void csv_cell(sbuf *b, const char *s) {
    if (!s) return;
    if (!strpbrk(s, ",\"\n\r")) {
        sb_printf(b, "%s", s);
        return;
    }
    sb_printf(b, "\"");
    for (const char *p = s; *p; p++)
        sb_printf(b, *p == '"' ? "\"\"" : "%c", *p);
    sb_printf(b, "\"");
}

static void md_cell(sbuf *b, const char *s) {
    if (!s) return;
    for (const char *p = s; *p; p++) {
        if (*p == '|')
            sb_printf(b, "\\|");
        else if (*p == '\n' || *p == '\r')
            sb_printf(b, " ");
        else
            sb_printf(b, "%c", *p);
    }
}

char *gb_table_render(const char *format, const char *const *header, int ncols,
                      const char *const *cells, int nrows, const int *numeric) {
    sbuf b = {0};
    if (!strcmp(format, "csv")) {
        for (int c = 0; c < ncols; c++) {
            if (c) sb_printf(&b, ",");
            csv_cell(&b, header[c]);
        }
        sb_printf(&b, "\n");
        for (int r = 0; r < nrows; r++) {
            for (int c = 0; c < ncols; c++) {
                if (c) sb_printf(&b, ",");
                csv_cell(&b, cells[r * ncols + c]);
            }
            sb_printf(&b, "\n");
        }
    } else if (!strcmp(format, "md")) {
        sb_printf(&b, "|");
        for (int c = 0; c < ncols; c++)
            sb_printf(&b, " %s |", header[c]);
        sb_printf(&b, "\n|");
        for (int c = 0; c < ncols; c++)
            sb_printf(&b, numeric && numeric[c] ? " ---: |" : " --- |");
        sb_printf(&b, "\n");
        for (int r = 0; r < nrows; r++) {
            sb_printf(&b, "|");
            for (int c = 0; c < ncols; c++) {
                sb_printf(&b, " ");
                md_cell(&b, cells[r * ncols + c]);
                sb_printf(&b, " |");
            }
            sb_printf(&b, "\n");
        }
    } else {
        bool lines = !strcmp(format, "jsonl");
        if (!lines) sb_printf(&b, "[\n");
        for (int r = 0; r < nrows; r++) {
            gb_jw w;
            gb_jw_init(&w, 0);
            gb_jw_obj_begin(&w);
            for (int c = 0; c < ncols; c++) {
                const char *v = cells[r * ncols + c];
                gb_jw_key(&w, header[c]);
                if (!v)
                    gb_jw_null(&w);
                else if (numeric && numeric[c])
                    gb_jw_raw(&w, v);
                else
                    gb_jw_str(&w, v);
            }
            gb_jw_obj_end(&w);
            char *row = gb_jw_take(&w, NULL);
            if (!row) {
                b.oom = 1;
                break;
            }
            sb_printf(&b, "%s%s%s\n", lines ? "" : "  ", row, !lines && r + 1 < nrows ? "," : "");
            free(row);
        }
        if (!lines) sb_printf(&b, "]\n");
    }
    return sb_take(&b);
}

static bool g_pretty; /* markdown: 4 significant digits for people; others: full precision */

static char *num(double v) {
    if (!isfinite(v) || v <= 0) return NULL;
    char buf[32];
    if (g_pretty)
        snprintf(buf, sizeof buf, "%.4g", v);
    else
        gb_py_float_repr(v, buf);
    return strdup(buf);
}

char *gb_report_table(const gb_bench_results *res, int nres, const char *format) {
    static const char *const header[] = {"model_id",      "config",           "hash",
                                         "success",       "batch_size",       "prompt_length",
                                         "new_tokens",    "e2e_median_s",     "ttft_median_s",
                                         "itl_median_s",  "throughput_tok_s", "decode_tok_s",
                                         "prefill_tok_s", "bandwidth_gbs",    "bandwidth_share",
                                         "error"};
    static const int numeric[] = {0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
    enum { NC = 16 };
    int rows = 0;
    for (int i = 0; i < nres; i++)
        rows += res[i].n_entries;
    char **cells = calloc((size_t)(rows ? rows : 1) * NC, sizeof *cells);
    if (!cells) return NULL;
    int r = 0;
    g_pretty = !strcmp(format, "md");
    for (int i = 0; i < nres; i++)
        for (int j = 0; j < res[i].n_entries; j++, r++) {
            const gb_bench_entry *e = &res[i].entries[j];
            char **c = cells + (size_t)r * NC;
            c[0] = strdup(res[i].model_id);
            c[1] = strdup(e->config.name);
            c[2] = g_pretty ? strndup(e->hash, 12) : strdup(e->hash);
            c[3] = strdup(e->success ? "true" : "false");
            char t[32];
            snprintf(t, sizeof t, "%d", e->config.batch_size);
            c[4] = strdup(t);
            snprintf(t, sizeof t, "%d", e->prompt_length);
            c[5] = strdup(t);
            snprintf(t, sizeof t, "%d", e->config.num_tokens_to_generate);
            c[6] = strdup(t);
            double *v = malloc(((size_t)e->n_iters + 1) * sizeof *v);
            if (v) {
                const int series[6] = {GB_SERIES_E2E,         GB_SERIES_TTFT,
                                       GB_SERIES_ITL,         GB_SERIES_TPUT,
                                       GB_SERIES_DECODE_TPUT, GB_SERIES_PREFILL_TPUT};
                for (int k = 0; k < 6; k++) {
                    gb_bench_entry_series(e, series[k], v);
                    gb_stats s;
                    gb_stats_compute(v, (size_t)e->n_iters, &s);
                    c[7 + k] = e->n_iters ? num(s.median) : NULL;
                }
                free(v);
            }
            if (e->have_efficiency) {
                c[13] = num(e->eff.achieved_bandwidth_gbs);
                if (e->eff.machine_bandwidth_gbs > 0)
                    c[14] = num(e->eff.achieved_bandwidth_gbs / e->eff.machine_bandwidth_gbs);
            }
            c[15] = e->error ? strdup(e->error) : NULL;
        }
    char *out = gb_table_render(format, header, NC, (const char *const *)cells, rows, numeric);
    for (int k = 0; k < rows * NC; k++)
        free(cells[k]);
    free(cells);
    return out;
}
