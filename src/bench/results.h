/* Results of one `genbench run`: one entry per config hash, written as benchmark_v2's
 * results file plus genbench's additions (docs/results-format.md, product.md §5):
 *
 *   {output_dir}/{model_id, / -> _}/{same}_benchmark_{YYYYmmdd_HHMMSS}.json
 *   { "<config hash>": { "metadata": {...}, "measurements": {...}, "config": {...},
 *                        "statistics": {...}, "genbench": {...} }, ... }
 *
 * 4-space indentation, numeric arrays on one line, strings ASCII-escaped (Python json).
 * Times are seconds (floats); per-token timestamps are relative to the run's start. */
#ifndef GB_BENCH_RESULTS_H
#define GB_BENCH_RESULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "bench/config.h"
#include "bench/stats.h"
#include "genbench.h"

struct cJSON;

/* One measured iteration. */
typedef struct gb_bench_iter {
    double e2e;       /* s: inputs ready -> last token ids on the host */
    double ttft;      /* s: inputs ready -> first new token ids on the host */
    double itl;       /* s: (t_last - t_first) / (n - 1) */
    double *token_ts; /* n_tokens timestamps, s since the start (one row: the batch column) */
    int n_tokens;
    char *shape_and_decoded; /* "(batch, new) | text of row 0" */
    struct cJSON *gpu;       /* GPURawMetrics object or NULL */
} gb_bench_iter;

typedef struct gb_bench_efficiency {
    double decode_bytes_per_step;     /* weights + KV cache read per decode step, bytes */
    double achieved_bandwidth_gbs;    /* decode_bytes_per_step / median ITL, 1e9 B/s */
    double machine_bandwidth_gbs;     /* measured read bandwidth (0 = unknown) */
    double prefill_flops;             /* FLOP of the prefill (whole batch) */
    double prefill_flops_per_s;       /* prefill_flops / median TTFT */
    double machine_matrix_peak_flops; /* measured matrix peak for the dtype, FLOP/s (0 = unknown) */
    char peak_kind[16];               /* "bf16" or "fp32": which measured peak is the reference */
} gb_bench_efficiency;

typedef struct gb_bench_entry {
    gb_bench_config config; /* the effective (finalized) config */
    char hash[65];
    bool success;
    char *error;        /* failure text or NULL */
    char timestamp[40]; /* UTC ISO-8601 with +00:00, when the entry was made */
    struct cJSON *hardware_info;
    gb_bench_iter *iters;
    int n_iters;
    /* genbench metadata */
    int prompt_length;       /* tokens actually fed (<= sequence_length) */
    int prompt_tokens_total; /* tokens of the untruncated prompt */
    int eos_token_id;        /* pad-as-eos: the tokenizer's pad id, -1 = none */
    char model_dir[4096];
    char model_source[16]; /* local | hf_cache | random */
    char model_commit[64];
    char architecture[64];
    int64_t num_params;
    double load_seconds;
    double cold_e2e, cold_ttft; /* the validation run (first generation after loading) */
    double *warmup_e2e;         /* e2e of each warm-up run */
    int n_warmup;
    size_t weight_bytes, kv_bytes, peak_device_bytes;
    int64_t peak_rss_bytes;
    bool have_efficiency;
    gb_bench_efficiency eff;
    char profile_path[4200];
    char notes[8][200]; /* warnings recorded for this config (besides validity notes) */
    int n_notes;
} gb_bench_entry;

typedef struct gb_bench_results {
    char *model_id;
    char *branch_name, *commit_id, *commit_message; /* NULL = JSON null */
    char timestamp[32];                             /* YYYYmmdd_HHMMSS, local time */
    char *path;                                     /* results file */
    gb_bench_entry *entries;
    int n_entries, cap_entries;
} gb_bench_results;

void gb_bench_iter_free(gb_bench_iter *it);
void gb_bench_entry_free(gb_bench_entry *e);
void gb_bench_results_free(gb_bench_results *r);
/* Appends a copy of e (takes ownership of its pointers); returns the stored entry. */
gb_bench_entry *gb_bench_results_add(gb_bench_results *r, gb_bench_entry *e, gb_error *err);
gb_bench_entry *gb_bench_results_find(const gb_bench_results *r, const char *hash);

/* Per-iteration series of an entry: which = 0 e2e, 1 ttft, 2 itl, 3 throughput
 * (batch * new / e2e), 4 decode throughput (batch / itl), 5 prefill throughput
 * (batch * prompt_len / ttft). out has n_iters values. */
enum {
    GB_SERIES_E2E = 0,
    GB_SERIES_TTFT,
    GB_SERIES_ITL,
    GB_SERIES_TPUT,
    GB_SERIES_DECODE_TPUT,
    GB_SERIES_PREFILL_TPUT,
    GB_SERIES_COUNT
};
const char *gb_series_name(int which); /* JSON key, e.g. "e2e_latency" */
const char *gb_series_unit(int which); /* "s" or "tok/s" */
void gb_bench_entry_series(const gb_bench_entry *e, int which, double *out);

/* The whole file text (malloc'd). summarized drops per-token timestamps and GPU samples
 * from `measurements` (as benchmark_v2's summarized form). */
char *gb_bench_results_serialize(const gb_bench_results *r, bool summarized);

/* "{output_dir}/{model}/{model}_benchmark_{timestamp}.json" (malloc'd). */
char *gb_bench_results_path(const char *output_dir, const char *model_id, const char *timestamp);

/* Writes the file atomically (temporary name + rename), creating directories. */
int gb_bench_results_save(const gb_bench_results *r, bool summarized, gb_error *err);

#endif
