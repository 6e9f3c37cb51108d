/* The benchmark runner (product.md §1 "Runner", docs/metrics.md): for one model id and a
 * list of configs it resolves the model, loads the tokenizer once per model id, and for
 * every config (duplicates by hash skipped) loads the model, runs one validation run,
 * warmup_iterations warm-up runs and measurement_iterations timed runs, optionally one
 * profiled run, frees the model and saves the results file (atomically) after every config.
 * A failing config (load errors included) is recorded with success = false and its error
 * text; the sweep continues.
 *
 * The runner talks to the engine and tokenizer through gb_bench_engine_ops so that its logic
 * can be tested with a fake engine; gb_bench_engine_default() is the real one. */
#ifndef GB_BENCH_RUNNER_H
#define GB_BENCH_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "bench/config.h"
#include "bench/gpu_ceilings.h"
#include "bench/results.h"
#include "genbench.h"

/* Called once per generated step with the new ids of every row [batch] on the host at time
 * t_ns (CLOCK_MONOTONIC). */
typedef void (*gb_bench_token_fn)(void *user, int step, const int32_t *ids, int batch,
                                  int64_t t_ns);
/* Profiling slice sink: track 0 host steps, 1 layers, 2 ops, 3 device kernels. */
typedef void (*gb_bench_trace_fn)(void *user, const char *name, int64_t t0_ns, int64_t t1_ns,
                                  int track);

typedef struct gb_bench_model_info {
    char architecture[64];
    int64_t num_params;
    /* shape for the efficiency numbers */
    int vocab_size, hidden_size, intermediate_size, num_layers, num_heads, num_kv_heads, head_dim;
    int gated_mlp; /* 1: gate/up/down (3 matrices), 0: gpt2 fc/proj (2) */
    size_t weight_bytes, kv_bytes, peak_device_bytes;
    int kv_bytes_per_element; /* 4 for the float32 KV cache */
} gb_bench_model_info;

typedef struct gb_bench_engine_ops {
    int (*tokenizer_load)(const char *dir, void **tok, gb_error *err);
    void (*tokenizer_free)(void *tok);
    /* Encodes with the tokenizer's special-token rules, untruncated; *ids malloc'd. */
    int (*tokenizer_encode)(void *tok, const char *text, size_t len, int32_t **ids, size_t *n,
                            gb_error *err);
    /* Decodes skipping special tokens; *text malloc'd. */
    int (*tokenizer_decode)(void *tok, const int32_t *ids, size_t n, char **text, gb_error *err);
    int32_t (*tokenizer_pad_id)(void *tok);
    /* trace may be NULL; when set, the engine reports slices to it during generations. */
    int (*model_load)(const char *dir, const gb_bench_config *c, gb_bench_trace_fn trace,
                      void *trace_user, void **model, gb_error *err);
    void (*model_free)(void *model);
    /* Greedy generation of exactly new_tokens; calls on_token per step; out [batch, new]. */
    int (*generate)(void *model, const int32_t *prompt, int batch, int prompt_len, int new_tokens,
                    gb_bench_token_fn on_token, void *user, int32_t *out, gb_error *err);
    void (*model_info)(void *model, gb_bench_model_info *info);
} gb_bench_engine_ops;

/* The real engine (engine/engine.h) and tokenizer (tokenizer/tokenizer.h). */
const gb_bench_engine_ops *gb_bench_engine_default(void);

enum { GB_LOG_DEBUG = 0, GB_LOG_INFO = 1, GB_LOG_WARNING = 2, GB_LOG_ERROR = 3 };
typedef void (*gb_bench_log_fn)(void *user, int level, const char *msg);
/* phase: "validation", "warmup", "benchmark", "profile"; done of total runs finished. */
typedef void (*gb_bench_progress_fn)(void *user, const char *phase, int done, int total);

typedef struct gb_runner_options {
    const char *output_dir;  /* default "benchmark_results" */
    const char *branch_name; /* NULL: from git when commit_id is NULL too */
    const char *commit_id;   /* NULL: read from the current directory's repository */
    const char *commit_message;
    int num_tokens_to_profile; /* > 0: one profiled generation per config, Chrome trace */
    bool summarized;           /* summarized results file (no per-token timestamps, GPU samples) */
    const char *prompt_path;   /* NULL: gb_data_dir()/prompt.txt */
    bool measure_ceilings;     /* measure the machine's bandwidth / matrix peak when not cached */
    const gb_gpu_probe *gpu_probe;  /* NULL: the real CUDA devices' ceilings (tests inject) */
    const gb_bench_engine_ops *ops; /* NULL: gb_bench_engine_default() */
    gb_bench_log_fn log;
    gb_bench_progress_fn progress;
    void *user;
} gb_runner_options;

/* Runs every config for model_id. *out receives the results (caller frees with
 * gb_bench_results_free) even when configs failed; *n_failed counts them. Returns an error
 * only when nothing could be run or saved (unwritable output directory, unreadable prompt). */
int gb_runner_run(const char *model_id, const gb_bench_config *configs, int n_configs,
                  const gb_runner_options *opts, gb_bench_results *out, int *n_failed,
                  gb_error *err);

/* Chrome trace of slices (used by the runner's profiling; exposed for tests).
 * Events: {"name", "cat", "ph": "X", "ts" (us), "dur" (us), "pid": 1, "tid": track}. */
typedef struct gb_trace_slice {
    char *name;
    int64_t t0_ns, t1_ns;
    int track;
} gb_trace_slice;
int gb_trace_write(const char *path, const gb_trace_slice *s, size_t n, int64_t t0_ns,
                   const char *title, gb_error *err);

#endif
