#include "engine/engine.h"
#include "bench/results.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/pyjson.h"
#include "util/error.h"
#include "util/fileio.h"

void gb_bench_iter_free(gb_bench_iter *it) {
    if (!it) return;
    free(it->token_ts);
    free(it->shape_and_decoded);
    cJSON_Delete(it->gpu);
    memset(it, 0, sizeof *it);
}

void gb_bench_entry_free(gb_bench_entry *e) {
    if (!e) return;
    for (int i = 0; i < e->n_iters; i++)
        gb_bench_iter_free(&e->iters[i]);
    free(e->iters);
    free(e->error);
    free(e->warmup_e2e);
    e->warmup_e2e = NULL;
    e->n_warmup = 0;
    cJSON_Delete(e->hardware_info);
    e->iters = NULL;
    e->error = NULL;
    e->hardware_info = NULL;
    e->n_iters = 0;
}

void gb_bench_results_free(gb_bench_results *r) {
    if (!r) return;
    for (int i = 0; i < r->n_entries; i++)
        gb_bench_entry_free(&r->entries[i]);
    free(r->entries);
    free(r->model_id);
    free(r->branch_name);
    free(r->commit_id);
    free(r->commit_message);
    free(r->path);
    memset(r, 0, sizeof *r);
}

gb_bench_entry *gb_bench_results_add(gb_bench_results *r, gb_bench_entry *e, gb_error *err) {
    if (r->n_entries == r->cap_entries) {
        int nc = r->cap_entries ? 2 * r->cap_entries : 8;
        gb_bench_entry *ne = realloc(r->entries, (size_t)nc * sizeof *ne);
        if (!ne) {
            gb_error_set(err, GB_ERR_NOMEM, "out of memory storing results");
            return NULL;
        }
        r->entries = ne;
        r->cap_entries = nc;
    }
    r->entries[r->n_entries] = *e;
    memset(e, 0, sizeof *e);
    return &r->entries[r->n_entries++];
}

gb_bench_entry *gb_bench_results_find(const gb_bench_results *r, const char *hash) {
    for (int i = 0; i < r->n_entries; i++)
        if (!strcmp(r->entries[i].hash, hash)) return &r->entries[i];
    return NULL;
}

static const char *const k_series[GB_SERIES_COUNT] = {"e2e_latency",         "time_to_first_token",
                                                      "inter_token_latency", "throughput",
                                                      "decode_throughput",   "prefill_throughput"};

const char *gb_series_name(int which) {
    return which >= 0 && which < GB_SERIES_COUNT ? k_series[which] : "?";
}

const char *gb_series_unit(int which) {
    return which <= GB_SERIES_ITL ? "s" : "tok/s";
}

void gb_bench_entry_series(const gb_bench_entry *e, int which, double *out) {
    double b = e->config.batch_size, n = e->config.num_tokens_to_generate, p = e->prompt_length;
    for (int i = 0; i < e->n_iters; i++) {
        const gb_bench_iter *it = &e->iters[i];
        double v = 0;
        switch (which) {
        case GB_SERIES_E2E:
            v = it->e2e;
            break;
        case GB_SERIES_TTFT:
            v = it->ttft;
            break;
        case GB_SERIES_ITL:
            v = it->itl;
            break;
        case GB_SERIES_TPUT:
            v = it->e2e > 0 ? b * n / it->e2e : 0;
            break;
        case GB_SERIES_DECODE_TPUT:
            v = it->itl > 0 ? b / it->itl : 0;
            break;
        case GB_SERIES_PREFILL_TPUT:
            v = it->ttft > 0 ? b * p / it->ttft : 0;
            break;
        }
        out[i] = v;
    }
}

static void write_stats(gb_jw *w, const gb_stats *s, const char *unit) {
    gb_jw_obj_begin(w);
    gb_jw_kstr(w, "unit", unit);
    gb_jw_kint(w, "count", (int64_t)s->n);
    gb_jw_kdouble(w, "mean", s->mean);
    gb_jw_kdouble(w, "std", s->std);
    gb_jw_kdouble(w, "min", s->min);
    gb_jw_kdouble(w, "median", s->median);
    gb_jw_kdouble(w, "p90", s->p90);
    gb_jw_kdouble(w, "p95", s->p95);
    gb_jw_kdouble(w, "p99", s->p99);
    gb_jw_kdouble(w, "max", s->max);
    gb_jw_obj_end(w);
}

static void kopt_double(gb_jw *w, const char *k, double v) {
    if (v > 0)
        gb_jw_kdouble(w, k, v);
    else
        gb_jw_knull(w, k);
}

static void write_entry(gb_jw *w, const gb_bench_results *r, const gb_bench_entry *e,
                        bool summarized) {
    gb_jw_obj_begin(w);
    /* metadata: benchmark_v2's BenchmarkMetadata keys and order */
    gb_jw_key(w, "metadata");
    gb_jw_obj_begin(w);
    gb_jw_kstr(w, "model_id", r->model_id);
    gb_jw_kstr(w, "timestamp", e->timestamp);
    gb_jw_kstr(w, "branch_name", r->branch_name);
    gb_jw_kstr(w, "commit_id", r->commit_id);
    gb_jw_kstr(w, "commit_message", r->commit_message);
    gb_jw_key(w, "hardware_info");
    gb_jw_cjson(w, e->hardware_info);
    gb_jw_kbool(w, "success", e->success);
    gb_jw_obj_end(w);

    /* measurements: BenchmarkResult.to_dict(summarized) */
    int n = e->n_iters;
    double *v = malloc(((size_t)n + 1) * sizeof *v);
    gb_jw_key(w, "measurements");
    gb_jw_obj_begin(w);
    for (int s = GB_SERIES_E2E; s <= GB_SERIES_ITL; s++) {
        gb_bench_entry_series(e, s, v);
        gb_jw_key(w, gb_series_name(s));
        gb_jw_double_array(w, v, (size_t)n);
    }
    gb_jw_key(w, "shape_and_decoded_outputs");
    gb_jw_arr_begin(w);
    for (int i = 0; i < n; i++)
        gb_jw_str(w, e->iters[i].shape_and_decoded);
    gb_jw_arr_end(w);
    bool any_gpu = false;
    for (int i = 0; i < n; i++)
        any_gpu |= e->iters[i].gpu != NULL;
    gb_jw_key(w, "gpu_metrics");
    if (summarized || !any_gpu) {
        gb_jw_null(w);
    } else {
        gb_jw_arr_begin(w);
        for (int i = 0; i < n; i++)
            gb_jw_cjson(w, e->iters[i].gpu);
        gb_jw_arr_end(w);
    }
    gb_jw_key(w, "timestamps");
    if (summarized) {
        gb_jw_null(w);
    } else {
        /* [iteration][row][token]: one row, the batch's token column arrives at once. */
        gb_jw_arr_begin(w);
        for (int i = 0; i < n; i++) {
            gb_jw_arr_begin(w);
            gb_jw_double_array(w, e->iters[i].token_ts, (size_t)e->iters[i].n_tokens);
            gb_jw_arr_end(w);
        }
        gb_jw_arr_end(w);
    }
    gb_jw_obj_end(w);

    gb_jw_key(w, "config");
    gb_bench_config_write(w, &e->config);

    /* statistics (genbench): product.md §2 over the timed runs */
    gb_jw_key(w, "statistics");
    gb_jw_obj_begin(w);
    for (int s = 0; s < GB_SERIES_COUNT; s++) {
        gb_bench_entry_series(e, s, v);
        gb_stats st;
        gb_stats_compute(v, (size_t)n, &st);
        gb_jw_key(w, gb_series_name(s));
        write_stats(w, &st, gb_series_unit(s));
    }
    gb_jw_obj_end(w);
    free(v);

    /* genbench metadata */
    gb_jw_key(w, "genbench");
    gb_jw_obj_begin(w);
    gb_jw_kstr(w, "version", gb_version());
    gb_jw_kstr(w, "error", e->error);
    gb_jw_key(w, "notes");
    gb_jw_arr_begin(w);
    for (int i = 0; i < e->config.n_notes; i++)
        gb_jw_str(w, e->config.notes[i]);
    for (int i = 0; i < e->n_notes; i++)
        gb_jw_str(w, e->notes[i]);
    gb_jw_arr_end(w);
    gb_jw_key(w, "prompt");
    gb_jw_obj_begin(w);
    gb_jw_kint(w, "sequence_length", e->config.sequence_length);
    gb_jw_kint(w, "prompt_length", e->prompt_length);
    gb_jw_kint(w, "prompt_tokens_untruncated", e->prompt_tokens_total);
    gb_jw_key(w, "eos_token_id");
    if (e->eos_token_id >= 0)
        gb_jw_int(w, e->eos_token_id);
    else
        gb_jw_null(w);
    gb_jw_obj_end(w);
    gb_jw_key(w, "model");
    gb_jw_obj_begin(w);
    gb_jw_kstr(w, "path", e->model_dir[0] ? e->model_dir : NULL);
    gb_jw_kstr(w, "source", e->model_source[0] ? e->model_source : NULL);
    gb_jw_kstr(w, "commit", e->model_commit[0] ? e->model_commit : NULL);
    gb_jw_kstr(w, "architecture", e->architecture[0] ? e->architecture : NULL);
    gb_jw_kint(w, "num_params", e->num_params);
    gb_jw_obj_end(w);
    gb_jw_key(w, "engine");
    gb_jw_obj_begin(w);
    gb_jw_kstr(w, "device", e->config.device);
    gb_jw_kstr(w, "dtype", e->config.dtype);
    gb_jw_kint(w, "threads", e->config.threads);
    gb_jw_kstr(w, "attention", e->config.attn_implementation);
    gb_jw_kstr(w, "kernels", e->config.kernelize ? "fused" : "reference");
    gb_jw_kstr(w, "kv_cache", e->config.compile_kwargs.set ? "static" : "dynamic");
    int static_cache = 0, cuda_graph = 0;
    gb_engine_compile_from_mode(e->config.compile_kwargs.set ? e->config.compile_kwargs.mode : NULL,
                                strncmp(e->config.device, "cuda", 4) ? GB_DEVICE_CPU
                                                                     : GB_DEVICE_CUDA,
                                &static_cache, &cuda_graph);
    gb_jw_kbool(w, "cuda_graph", cuda_graph);
    gb_jw_kstr(w, "clock", "CLOCK_MONOTONIC");
    gb_jw_obj_end(w);
    gb_jw_key(w, "memory");
    gb_jw_obj_begin(w);
    gb_jw_kint(w, "peak_rss_bytes", e->peak_rss_bytes);
    gb_jw_kint(w, "weight_bytes", (int64_t)e->weight_bytes);
    gb_jw_kint(w, "kv_cache_bytes", (int64_t)e->kv_bytes);
    gb_jw_kint(w, "peak_device_bytes", (int64_t)e->peak_device_bytes);
    gb_jw_obj_end(w);
    gb_jw_key(w, "efficiency");
    if (e->have_efficiency) {
        const gb_bench_efficiency *f = &e->eff;
        gb_jw_obj_begin(w);
        gb_jw_kdouble(w, "decode_bytes_per_step", f->decode_bytes_per_step);
        gb_jw_kdouble(w, "achieved_bandwidth_gbs", f->achieved_bandwidth_gbs);
        kopt_double(w, "machine_bandwidth_gbs", f->machine_bandwidth_gbs);
        gb_jw_key(w, "bandwidth_share");
        if (f->machine_bandwidth_gbs > 0)
            gb_jw_double(w, f->achieved_bandwidth_gbs / f->machine_bandwidth_gbs);
        else
            gb_jw_null(w);
        gb_jw_kdouble(w, "prefill_flops", f->prefill_flops);
        gb_jw_kdouble(w, "prefill_flops_per_s", f->prefill_flops_per_s);
        kopt_double(w, "machine_matrix_peak_flops", f->machine_matrix_peak_flops);
        gb_jw_kstr(w, "matrix_peak_kind", f->peak_kind[0] ? f->peak_kind : NULL);
        gb_jw_key(w, "matrix_peak_share");
        if (f->machine_matrix_peak_flops > 0)
            gb_jw_double(w, f->prefill_flops_per_s / f->machine_matrix_peak_flops);
        else
            gb_jw_null(w);
        gb_jw_obj_end(w);
    } else {
        gb_jw_null(w);
    }
    gb_jw_kdouble(w, "load_seconds", e->load_seconds);
    gb_jw_key(w, "warmup");
    gb_jw_obj_begin(w);
    gb_jw_kdouble(w, "validation_e2e_latency", e->cold_e2e);
    gb_jw_kdouble(w, "validation_time_to_first_token", e->cold_ttft);
    gb_jw_key(w, "warmup_e2e_latency");
    gb_jw_double_array(w, e->warmup_e2e, (size_t)e->n_warmup);
    gb_jw_obj_end(w);
    gb_jw_kstr(w, "profile_trace", e->profile_path[0] ? e->profile_path : NULL);
    gb_jw_obj_end(w);
    gb_jw_obj_end(w);
}

char *gb_bench_results_serialize(const gb_bench_results *r, bool summarized) {
    gb_jw w;
    gb_jw_init(&w, 4);
    gb_jw_obj_begin(&w);
    for (int i = 0; i < r->n_entries; i++) {
        gb_jw_key(&w, r->entries[i].hash);
        write_entry(&w, r, &r->entries[i], summarized);
    }
    gb_jw_obj_end(&w);
    return gb_jw_take(&w, NULL);
}

char *gb_bench_results_path(const char *output_dir, const char *model_id, const char *timestamp) {
    char *m = gb_strdup_printf("%s", model_id);
    if (!m) return NULL;
    for (char *p = m; *p; p++)
        if (*p == '/') *p = '_';
    char *path = gb_strdup_printf("%s/%s/%s_benchmark_%s.json", output_dir, m, m, timestamp);
    free(m);
    return path;
}

int gb_bench_results_save(const gb_bench_results *r, bool summarized, gb_error *err) {
    char *dir = gb_strdup_printf("%s", r->path);
    if (!dir) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    int rc = GB_OK;
    if (slash) {
        *slash = '\0';
        rc = gb_mkdir_p(dir, err);
    }
    free(dir);
    if (rc) return rc;
    size_t len;
    char *text = gb_bench_results_serialize(r, summarized);
    if (!text) return gb_error_set(err, GB_ERR_NOMEM, "out of memory serializing results");
    len = strlen(text);
    /* A trailing newline keeps the file friendly to text tools. */
    char *t2 = realloc(text, len + 2);
    if (!t2) {
        free(text);
        return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    }
    t2[len] = '\n';
    t2[len + 1] = '\0';
    rc = gb_file_write_atomic(r->path, t2, len + 1, err);
    free(t2);
    return rc;
}
