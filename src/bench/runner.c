#include "bench/runner.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "bench/git.h"
#include "bench/gpu_ceilings.h"
#include "bench/gpumon.h"
#include "bench/hwinfo.h"
#include "bench/machine.h"
#include "io/hub.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/paths.h"

/* CUDA devices whose ceilings a run looks up (ordinals 0..GB_RUNNER_GPUS-1). */
#define GB_RUNNER_GPUS 16

typedef struct run_ctx {
    const gb_runner_options *o;
    const gb_bench_engine_ops *ops;
    /* token timestamps of the current generation */
    int64_t *ts;
    int n_ts, cap_ts;
    /* profiling slices */
    pthread_mutex_t mu;
    bool tracing;
    gb_trace_slice *slices;
    size_t n_slices, cap_slices;
} run_ctx;

static void logf_(const run_ctx *x, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(const run_ctx *x, int level, const char *fmt, ...) {
    if (!x->o->log) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    x->o->log(x->o->user, level, buf);
}

static void progress(const run_ctx *x, const char *phase, int done, int total) {
    if (x->o->progress) x->o->progress(x->o->user, phase, done, total);
}

static void on_token(void *user, int step, const int32_t *ids, int batch, int64_t t_ns) {
    (void)step;
    (void)ids;
    (void)batch;
    run_ctx *x = user;
    if (x->n_ts < x->cap_ts) x->ts[x->n_ts] = t_ns;
    x->n_ts++; /* counted even past the cap so an overrun is detected */
}

static void on_trace(void *user, const char *name, int64_t t0, int64_t t1, int track) {
    run_ctx *x = user;
    if (!x->tracing) return;
    pthread_mutex_lock(&x->mu);
    if (x->n_slices == x->cap_slices) {
        size_t nc = x->cap_slices ? 2 * x->cap_slices : 1024;
        gb_trace_slice *ns = realloc(x->slices, nc * sizeof *ns);
        if (!ns) {
            pthread_mutex_unlock(&x->mu);
            return; /* a trace without some slices beats aborting the benchmark */
        }
        x->slices = ns;
        x->cap_slices = nc;
    }
    char *nm = gb_strdup_printf("%s", name ? name : "?");
    if (nm) x->slices[x->n_slices++] = (gb_trace_slice){nm, t0, t1, track};
    pthread_mutex_unlock(&x->mu);
}

static void clear_slices(run_ctx *x) {
    for (size_t i = 0; i < x->n_slices; i++)
        free(x->slices[i].name);
    x->n_slices = 0;
}

/* ---- process memory ---- */

static void reset_peak_rss(void) {
    /* "5" resets the peak resident set size (VmHWM) of the process (Linux >= 4.0). */
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

static int64_t peak_rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    int64_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) {
            kb = strtoll(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb * 1024;
}

static void utc_iso(char *out, size_t cap) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%.19s.%06ld+00:00", base, (long)tv.tv_usec % 1000000);
}

static void add_note(gb_bench_entry *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_note(gb_bench_entry *e, const char *fmt, ...) {
    if (e->n_notes >= 8) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->notes[e->n_notes++], sizeof e->notes[0], fmt, ap);
    va_end(ap);
}

/* ---- one generation ---- */

typedef struct setup {
    void *model;
    void *tok;
    const int32_t *prompt; /* [batch, prompt_len] */
    int prompt_len;
    int32_t *out; /* [batch, new] */
} setup;

/* Runs one generation of `n_new` tokens; fills it (when non-NULL) with the timings, the
 * token timestamps and the decoded first row. */
static int time_generate(run_ctx *x, const setup *s, const gb_bench_config *c, int n_new,
                         gb_bench_iter *it, gb_gpumon *mon, gb_error *err) {
    x->n_ts = 0;
    int64_t t0 = gb_clock_ns();
    int rc = x->ops->generate(s->model, s->prompt, c->batch_size, s->prompt_len, n_new, on_token, x,
                              s->out, err);
    int64_t t1 = gb_clock_ns();
    if (mon) gb_gpumon_stop(mon);
    if (rc) return rc;
    if (x->n_ts != n_new)
        return gb_error_set(err, GB_ERR_INTERNAL, "Generated %d tokens, expected %d", x->n_ts,
                            n_new);
    if (!it) return GB_OK;
    it->e2e = (double)(t1 - t0) * 1e-9;
    it->n_tokens = n_new;
    it->token_ts = malloc((size_t)n_new * sizeof(double));
    if (!it->token_ts) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_new; i++)
        it->token_ts[i] = (double)(x->ts[i] - t0) * 1e-9;
    it->ttft = it->token_ts[0];
    it->itl = (it->token_ts[n_new - 1] - it->token_ts[0]) / (double)(n_new - 1);
    char *text = NULL;
    rc = x->ops->tokenizer_decode(s->tok, s->out, (size_t)n_new, &text, err);
    if (rc) return gb_error_prefix(err, "decoding the generated tokens");
    it->shape_and_decoded = gb_strdup_printf("(%d, %d) | %s", c->batch_size, n_new, text);
    free(text);
    if (mon) it->gpu = gb_gpumon_to_json(mon, t0);
    return it->shape_and_decoded ? GB_OK : gb_error_set(err, GB_ERR_NOMEM, "out of memory");
}

/* CUDA device ordinal of a config's device string ("cuda" = 0, "cuda:N" = N), -1 for the
 * CPU (or anything else). */
static int cuda_index(const char *device) {
    if (strncmp(device, "cuda", 4) != 0) return -1;
    if (!device[4]) return 0;
    if (device[4] != ':' || !device[5] || strlen(device + 5) > 6) return -1;
    for (const char *p = device + 5; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    return atoi(device + 5);
}

/* The ceilings a config's efficiency shares are relative to: the CPU's (threads used) or the
 * CUDA device's (copy bandwidth; matmul peak of the dtype), when measured. */
static void compute_efficiency(gb_bench_entry *e, const gb_bench_model_info *mi,
                               const gb_machine_ceilings *mc, bool have_mc,
                               const gb_gpu_ceilings *gc) {
    if (e->n_iters == 0 || mi->num_layers <= 0) return;
    double L = mi->num_layers, H = mi->hidden_size, I = mi->intermediate_size;
    double nh = mi->num_heads, nkv = mi->num_kv_heads, hd = mi->head_dim, V = mi->vocab_size;
    double B = e->config.batch_size, P = e->prompt_length, N = e->config.num_tokens_to_generate;
    double per_token =
        L * (H * nh * hd + 2 * H * nkv * hd + nh * hd * H + (mi->gated_mlp ? 3 : 2) * H * I);
    gb_bench_efficiency *f = &e->eff;
    memset(f, 0, sizeof *f);
    /* Prefill: every projection for P tokens, the causal attention (QK^T and PV over t keys
     * for token t), the LM head for the last position only. */
    f->prefill_flops = B * (2 * per_token * P + 2 * V * H + 4 * L * nh * hd * P * (P + 1) / 2);
    /* Decode step k (1..N-1) reads all weights once and the KV cache of P + k positions;
     * averaged over the steps: P + N/2 positions. */
    double kv_pos =
        L * 2 * nkv * hd * (mi->kv_bytes_per_element > 0 ? mi->kv_bytes_per_element : 4);
    f->decode_bytes_per_step = (double)mi->weight_bytes + B * kv_pos * (P + N / 2);
    double *v = malloc((size_t)e->n_iters * sizeof *v);
    if (!v) return;
    gb_stats st;
    gb_bench_entry_series(e, GB_SERIES_ITL, v);
    gb_stats_compute(v, (size_t)e->n_iters, &st);
    double itl = st.median;
    gb_bench_entry_series(e, GB_SERIES_TTFT, v);
    gb_stats_compute(v, (size_t)e->n_iters, &st);
    double ttft = st.median;
    free(v);
    f->achieved_bandwidth_gbs = itl > 0 ? f->decode_bytes_per_step / itl / 1e9 : 0;
    f->prefill_flops_per_s = ttft > 0 ? f->prefill_flops / ttft : 0;
    bool cpu = !strcmp(e->config.device, "cpu");
    if (gc) {
        /* A decode step streams the weights once: a D2D copy is the fastest the card moves
         * bytes, so weight bytes / copy bandwidth is its decode ceiling. */
        f->machine_bandwidth_gbs = gc->copy_gbs;
        const char *kind = NULL;
        f->machine_matrix_peak_flops = gb_gpu_ceilings_peak_flops(gc, e->config.dtype, &kind);
        snprintf(f->peak_kind, sizeof f->peak_kind, "%s", kind ? kind : "");
    } else if (have_mc && cpu) {
        /* Ceilings are measured for one thread and for all CPUs; a run on T threads in
         * between is held against T times the one-thread figure, capped by the all-CPU one
         * (2 threads on a 16-core machine must not be compared with 16 cores' bandwidth). */
        const int t = e->config.threads;
        bool bf16 = !strcmp(e->config.dtype, "bfloat16");
        snprintf(f->peak_kind, sizeof f->peak_kind, "%s", bf16 ? "bf16" : "fp32");
        double g1 = bf16 ? mc->bf16_gflops_1t : mc->fp32_gflops_1t;
        double ga = bf16 ? mc->bf16_gflops_all : mc->fp32_gflops_all;
        f->machine_bandwidth_gbs =
            gb_machine_for_threads(mc->read_bw_gbs_1t, mc->read_bw_gbs_all, t, mc->threads);
        f->machine_matrix_peak_flops = gb_machine_for_threads(g1, ga, t, mc->threads) * 1e9;
    }
    e->have_efficiency = true;
}

static int write_profile(run_ctx *x, const gb_bench_entry *e, int64_t t0, char *path_out,
                         size_t cap, gb_error *err) {
    const char *od = x->o->output_dir ? x->o->output_dir : "benchmark_results";
    char *dir = gb_strdup_printf("%s_profiles", od);
    if (!dir) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    int rc = gb_mkdir_p(dir, err);
    char *path = rc ? NULL : gb_strdup_printf("%s/%s.json", dir, e->config.name);
    free(dir);
    if (rc) return rc;
    if (!path) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    rc = gb_trace_write(path, x->slices, x->n_slices, t0, e->config.name, err);
    if (rc == 0) snprintf(path_out, cap, "%s", path);
    free(path);
    return rc;
}

/* Profiled generation: engine slices plus one slice per generated step (when the engine
 * reported no step slices itself). */
static int profile_run(run_ctx *x, const setup *s, gb_bench_entry *e, gb_error *err) {
    int n = x->o->num_tokens_to_profile;
    gb_bench_config c = e->config;
    clear_slices(x);
    int64_t *keep = x->ts;
    int keep_cap = x->cap_ts;
    int64_t *ts = malloc((size_t)n * sizeof *ts);
    int32_t *out = malloc((size_t)n * (size_t)c.batch_size * sizeof *out);
    if (!ts || !out) {
        free(ts);
        free(out);
        return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    }
    x->ts = ts;
    x->cap_ts = n;
    x->n_ts = 0;
    setup s2 = *s;
    s2.out = out;
    x->tracing = true;
    int64_t t0 = gb_clock_ns();
    int rc = x->ops->generate(s2.model, s2.prompt, c.batch_size, s2.prompt_len, n, on_token, x, out,
                              err);
    int64_t t1 = gb_clock_ns();
    x->tracing = false;
    if (rc == 0) {
        bool engine_steps = false;
        for (size_t i = 0; i < x->n_slices; i++)
            engine_steps |= x->slices[i].track == 0;
        x->tracing = true;
        on_trace(x, "generate", t0, t1, 4);
        if (!engine_steps) {
            int m = x->n_ts < n ? x->n_ts : n;
            for (int i = 0; i < m; i++) {
                char name[64];
                if (i == 0)
                    snprintf(name, sizeof name, "prefill + token 0");
                else
                    snprintf(name, sizeof name, "decode token %d", i);
                on_trace(x, name, i ? ts[i - 1] : t0, ts[i], 0);
            }
        }
        x->tracing = false;
        rc = write_profile(x, e, t0, e->profile_path, sizeof e->profile_path, err);
    }
    clear_slices(x);
    x->ts = keep;
    x->cap_ts = keep_cap;
    free(ts);
    free(out);
    return rc;
}

typedef struct model_ctx {
    gb_model_location loc;
    int loc_rc;
    char loc_err[1024];
    void *tok;
    int tok_rc;
    char tok_err[1100];
    int32_t *prompt_ids;
    size_t n_prompt;
    gb_machine_ceilings mc;
    bool have_mc;
    /* CUDA devices' ceilings, by ordinal (devices past GB_RUNNER_GPUS go without) */
    gb_gpu_ceilings gc[GB_RUNNER_GPUS];
    bool have_gc[GB_RUNNER_GPUS];
} model_ctx;

static int run_config(run_ctx *x, model_ctx *m, gb_bench_entry *e, gb_error *err) {
    const gb_bench_config *c = &e->config;
    const gb_bench_engine_ops *ops = x->ops;
    if (m->loc_rc) return gb_error_set(err, m->loc_rc, "%s", m->loc_err);
    snprintf(e->model_dir, sizeof e->model_dir, "%s", m->loc.dir);
    snprintf(e->model_source, sizeof e->model_source, "%s",
             m->loc.source == GB_MODEL_RANDOM     ? "random"
             : m->loc.source == GB_MODEL_HF_CACHE ? "hf_cache"
                                                  : "local");
    snprintf(e->model_commit, sizeof e->model_commit, "%s", m->loc.commit);
    if (m->tok_rc) return gb_error_set(err, m->tok_rc, "%s", m->tok_err);
    e->eos_token_id = ops->tokenizer_pad_id(m->tok);
    /* Prompt: truncated on the right to sequence_length, repeated batch_size times. */
    int total = (int)m->n_prompt;
    int plen = total < c->sequence_length ? total : c->sequence_length;
    e->prompt_tokens_total = total;
    e->prompt_length = plen;
    if (plen < 1) return gb_error_set(err, GB_ERR_INVALID, "the prompt tokenizes to no tokens");
    if (total < c->sequence_length) {
        add_note(e, "prompt has %d tokens, fewer than sequence_length %d: benchmarking %d", total,
                 c->sequence_length, plen);
        logf_(x, GB_LOG_WARNING, "%s", e->notes[e->n_notes - 1]);
    }
    /* continuous batching runs over the paged KV cache on every backend (the CPU and CUDA
     * backends both have the paged ops; the engine refuses one that lacks them) */
    if (c->continuous_batching)
        logf_(x, GB_LOG_INFO,
              "continuous batching: %d requests over a paged KV cache (16-position blocks)",
              c->batch_size);
    int B = c->batch_size, N = c->num_tokens_to_generate;
    int32_t *prompt = malloc((size_t)B * (size_t)plen * sizeof *prompt);
    int32_t *out = malloc((size_t)B * (size_t)N * sizeof *out);
    x->ts = malloc((size_t)N * sizeof *x->ts);
    x->cap_ts = N;
    if (!prompt || !out || !x->ts) {
        free(prompt);
        free(out);
        free(x->ts);
        x->ts = NULL;
        return gb_error_set(err, GB_ERR_NOMEM, "out of memory for batch %d", B);
    }
    for (int b = 0; b < B; b++)
        memcpy(prompt + (size_t)b * plen, m->prompt_ids, (size_t)plen * sizeof *prompt);

    reset_peak_rss();
    setup s = {.tok = m->tok, .prompt = prompt, .prompt_len = plen, .out = out};
    int64_t tl = gb_clock_ns();
    int rc = ops->model_load(m->loc.dir, c, x->o->num_tokens_to_profile > 0 ? on_trace : NULL, x,
                             &s.model, err);
    e->load_seconds = (double)(gb_clock_ns() - tl) * 1e-9;
    if (rc) {
        gb_error_prefix(err, "loading %s", m->loc.dir);
        goto done;
    }
    logf_(x, GB_LOG_DEBUG, "model loaded in %.2f s", e->load_seconds);

    /* One validation run, then warm-up, then timed runs. */
    /* Their e2e/TTFT are kept (genbench.warmup) to show cold start and warm-up convergence. */
    progress(x, "validation", 0, 1);
    gb_bench_iter tmp;
    memset(&tmp, 0, sizeof tmp);
    rc = time_generate(x, &s, c, N, &tmp, NULL, err);
    e->cold_e2e = tmp.e2e;
    e->cold_ttft = tmp.ttft;
    gb_bench_iter_free(&tmp);
    if (rc) goto done;
    progress(x, "validation", 1, 1);
    logf_(x, GB_LOG_INFO, "Warming up with %d iterations...", c->warmup_iterations);
    e->warmup_e2e = malloc(((size_t)c->warmup_iterations + 1) * sizeof *e->warmup_e2e);
    if (!e->warmup_e2e) {
        rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < c->warmup_iterations; i++) {
        progress(x, "warmup", i, c->warmup_iterations);
        rc = time_generate(x, &s, c, N, &tmp, NULL, err);
        e->warmup_e2e[i] = tmp.e2e;
        gb_bench_iter_free(&tmp);
        if (rc) goto done;
        e->n_warmup = i + 1;
    }
    progress(x, "warmup", c->warmup_iterations, c->warmup_iterations);
    logf_(x, GB_LOG_INFO, "Benchmarking with %d iterations.", c->measurement_iterations);
    e->iters = calloc((size_t)c->measurement_iterations, sizeof *e->iters);
    if (!e->iters) {
        rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < c->measurement_iterations; i++) {
        progress(x, "benchmark", i, c->measurement_iterations);
        gb_gpumon *mon = NULL;
        if (c->gpu_monitoring && gb_gpumon_start(&mon, 50, err) != 0) {
            logf_(x, GB_LOG_WARNING, "GPU monitoring could not start: %s", err->msg);
            mon = NULL;
        }
        rc = time_generate(x, &s, c, N, &e->iters[i], mon, err);
        gb_gpumon_free(mon);
        e->n_iters = i + 1;
        if (rc) goto done;
    }
    progress(x, "benchmark", c->measurement_iterations, c->measurement_iterations);
    e->peak_rss_bytes = peak_rss_bytes();
    gb_bench_model_info mi;
    memset(&mi, 0, sizeof mi);
    ops->model_info(s.model, &mi);
    snprintf(e->architecture, sizeof e->architecture, "%s", mi.architecture);
    e->num_params = mi.num_params;
    e->weight_bytes = mi.weight_bytes;
    e->kv_bytes = mi.kv_bytes;
    e->peak_device_bytes = mi.peak_device_bytes;
    int gi = cuda_index(c->device);
    const gb_gpu_ceilings *gc =
        gi >= 0 && gi < GB_RUNNER_GPUS && m->have_gc[gi] ? &m->gc[gi] : NULL;
    compute_efficiency(e, &mi, &m->mc, m->have_mc, gc);
    if (x->o->num_tokens_to_profile > 0) {
        progress(x, "profile", 0, 1);
        gb_error perr;
        if (profile_run(x, &s, e, &perr) != 0) {
            /* The measurements stand; a failed trace is reported, not fatal. */
            add_note(e, "profiling failed: %.150s", perr.msg);
            logf_(x, GB_LOG_WARNING, "profiling failed: %s", perr.msg);
        } else {
            logf_(x, GB_LOG_INFO, "Profile written to %s", e->profile_path);
        }
        progress(x, "profile", 1, 1);
    }
    logf_(x, GB_LOG_INFO, "Benchmarking done. Cleaning up.");
done:
    if (s.model) ops->model_free(s.model);
    free(prompt);
    free(out);
    free(x->ts);
    x->ts = NULL;
    x->cap_ts = 0;
    return rc;
}

static char *dup_or_null(const char *s) {
    return s ? gb_strdup_printf("%s", s) : NULL;
}

int gb_runner_run(const char *model_id, const gb_bench_config *configs, int n_configs,
                  const gb_runner_options *o, gb_bench_results *out, int *n_failed, gb_error *err) {
    memset(out, 0, sizeof *out);
    *n_failed = 0;
    run_ctx x;
    memset(&x, 0, sizeof x);
    x.o = o;
    x.ops = o->ops ? o->ops : gb_bench_engine_default();
    pthread_mutex_init(&x.mu, NULL);
    model_ctx m;
    memset(&m, 0, sizeof m);
    int rc = GB_OK;
    char *prompt_text = NULL;
    cJSON *hw_json = NULL;

    out->model_id = dup_or_null(model_id);
    /* Git metadata: what was given, else the current directory's repository. */
    gb_git_info g;
    memset(&g, 0, sizeof g);
    if (!o->commit_id || !o->branch_name || !o->commit_message) {
        gb_error gerr;
        gb_git_read(".", &g, &gerr);
        if (!g.found)
            logf_(&x, GB_LOG_INFO, "no git repository here (%s): commit id is null", g.note);
        else if (g.note[0])
            logf_(&x, GB_LOG_INFO, "git: %s", g.note);
    }
    bool git_commit = !o->commit_id && g.found && g.commit[0];
    out->commit_id = o->commit_id ? dup_or_null(o->commit_id)
                     : git_commit ? dup_or_null(g.commit)
                                  : NULL;
    out->branch_name = o->branch_name              ? dup_or_null(o->branch_name)
                       : git_commit && g.branch[0] ? dup_or_null(g.branch)
                                                   : NULL;
    out->commit_message = o->commit_message            ? dup_or_null(o->commit_message)
                          : git_commit && g.subject[0] ? dup_or_null(g.subject)
                                                       : NULL;
    time_t now = time(NULL);
    struct tm lt;
    localtime_r(&now, &lt);
    strftime(out->timestamp, sizeof out->timestamp, "%Y%m%d_%H%M%S", &lt);
    out->path = gb_bench_results_path(o->output_dir ? o->output_dir : "benchmark_results", model_id,
                                      out->timestamp);
    /* Two runs of one model within a second would share the timestamped name: never
     * overwrite an earlier results file, number the later one instead. */
    for (int k = 2; out->path && gb_is_file(out->path) && k < 1000; k++) {
        char stamp[sizeof out->timestamp + 16];
        snprintf(stamp, sizeof stamp, "%s-%d", out->timestamp, k);
        free(out->path);
        out->path = gb_bench_results_path(o->output_dir ? o->output_dir : "benchmark_results",
                                          model_id, stamp);
    }
    if (!out->model_id || !out->path) {
        rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
        goto end;
    }

    /* The prompt. */
    char *ppath = o->prompt_path ? gb_strdup_printf("%s", o->prompt_path)
                                 : gb_strdup_printf("%s/prompt.txt", gb_data_dir());
    size_t plen = 0;
    rc = gb_file_read_all(ppath, 1u << 24, &prompt_text, &plen, err);
    free(ppath);
    if (rc) goto end;

    /* Hardware info (once per run) and the ceilings of the devices the configs use (cached
     * per machine and device; measured before any model is loaded). */
    gb_hwinfo hw;
    gb_error herr;
    if (gb_hwinfo_collect(&hw, &herr) == 0) hw_json = gb_hwinfo_to_json(&hw);
    bool need_cpu = false, need_gpu[GB_RUNNER_GPUS] = {false};
    for (int i = 0; i < n_configs; i++) {
        int gi = cuda_index(configs[i].device);
        if (gi < 0)
            need_cpu = true;
        else if (gi < GB_RUNNER_GPUS)
            need_gpu[gi] = true;
    }
    gb_error merr;
    if (!need_cpu) {
        /* CUDA configs only: the CPU's ceilings would not be used. */
    } else if (gb_machine_ceilings_cached(&m.mc, &merr) == 0) {
        m.have_mc = true;
    } else if (o->measure_ceilings) {
        logf_(&x, GB_LOG_INFO,
              "measuring this machine's memory bandwidth and matrix peak "
              "(once; cached for later runs)");
        m.have_mc = gb_machine_ceilings_get(&m.mc, 0, &merr) == 0;
        if (!m.have_mc) logf_(&x, GB_LOG_WARNING, "machine ceilings: %s", merr.msg);
    }
    for (int d = 0; d < GB_RUNNER_GPUS; d++) {
        if (!need_gpu[d]) continue;
        int grc = gb_gpu_ceilings_cached(o->gpu_probe, d, &m.gc[d], &merr);
        if (grc == 0) {
            m.have_gc[d] = true;
        } else if (grc == GB_ERR_DEVICE) {
            /* no such device: the config fails on its own with the engine's message */
            logf_(&x, GB_LOG_DEBUG, "GPU ceilings: %s", merr.msg);
        } else if (o->measure_ceilings) {
            logf_(&x, GB_LOG_INFO,
                  "measuring GPU %d's copy bandwidth and matmul peaks (once; cached for later "
                  "runs)",
                  d);
            m.have_gc[d] = gb_gpu_ceilings_get(o->gpu_probe, d, 0, &m.gc[d], &merr) == 0;
            if (!m.have_gc[d])
                logf_(&x, GB_LOG_WARNING, "GPU %d ceilings: %s", d, merr.msg);
            else if (m.gc[d].note[0])
                logf_(&x, GB_LOG_WARNING, "GPU %d ceilings: %s", d, m.gc[d].note);
        } else if (grc == GB_ERR_FORMAT) {
            logf_(&x, GB_LOG_WARNING, "GPU %d ceilings: %s", d, merr.msg);
        }
    }

    /* Model and tokenizer: once per model id. Errors are recorded in every config, and
     * logged there (one error line per failing config), so here only at debug level. */
    gb_error lerr;
    m.loc_rc = gb_hub_resolve(model_id, &m.loc, &lerr);
    if (m.loc_rc) {
        snprintf(m.loc_err, sizeof m.loc_err, "%s", lerr.msg);
        logf_(&x, GB_LOG_DEBUG, "%s", lerr.msg);
    } else {
        logf_(&x, GB_LOG_INFO, "model %s: %s", model_id, m.loc.dir);
        m.tok_rc = x.ops->tokenizer_load(m.loc.dir, &m.tok, &lerr);
        if (!m.tok_rc)
            m.tok_rc = x.ops->tokenizer_encode(m.tok, prompt_text, plen, &m.prompt_ids, &m.n_prompt,
                                               &lerr);
        if (m.tok_rc) {
            snprintf(m.tok_err, sizeof m.tok_err, "tokenizer: %s", lerr.msg);
            logf_(&x, GB_LOG_DEBUG, "%s", m.tok_err);
        }
    }

    for (int i = 0; i < n_configs; i++) {
        gb_bench_entry e;
        memset(&e, 0, sizeof e);
        e.eos_token_id = -1;
        e.config = configs[i];
        gb_error cerr;
        int crc = gb_bench_config_finalize(&e.config, &cerr);
        if (crc && !e.config.name[0])
            gb_bench_config_name(&e.config, e.config.name, sizeof e.config.name);
        gb_bench_config_hash(&e.config, e.hash);
        if (gb_bench_results_find(out, e.hash)) {
            logf_(&x, GB_LOG_INFO, "Skipping duplicate config %s for model %s (%d/%d)",
                  e.config.name, model_id, i + 1, n_configs);
            continue;
        }
        logf_(&x, GB_LOG_INFO, "Running benchmark of model %s with scenario: %s (%d/%d)", model_id,
              e.config.name, i + 1, n_configs);
        for (int k = 0; k < e.config.n_notes; k++)
            logf_(&x, GB_LOG_WARNING, "config adjusted: %s", e.config.notes[k]);
        if (crc == 0) crc = run_config(&x, &m, &e, &cerr);
        e.success = crc == 0;
        if (crc) {
            e.error = gb_strdup_printf("%s", cerr.msg);
            (*n_failed)++;
            logf_(&x, GB_LOG_ERROR, "Error running with scenario: %s: %s", e.config.name, cerr.msg);
            /* A failed config keeps no partial measurements (benchmark_v2: empty lists). */
            for (int k = 0; k < e.n_iters; k++)
                gb_bench_iter_free(&e.iters[k]);
            e.n_iters = 0;
        }
        utc_iso(e.timestamp, sizeof e.timestamp);
        e.hardware_info = hw_json ? cJSON_Duplicate(hw_json, 1) : NULL;
        if (!gb_bench_results_add(out, &e, err)) {
            gb_bench_entry_free(&e);
            rc = err->code;
            goto end;
        }
        if ((rc = gb_bench_results_save(out, o->summarized, err)) != 0) goto end;
        logf_(&x, GB_LOG_INFO, "Results saved to %s", out->path);
    }
end:
    if (m.tok) x.ops->tokenizer_free(m.tok);
    free(m.prompt_ids);
    free(prompt_text);
    cJSON_Delete(hw_json);
    clear_slices(&x);
    free(x.slices);
    pthread_mutex_destroy(&x.mu);
    return rc;
}
