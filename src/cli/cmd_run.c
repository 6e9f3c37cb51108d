/* genbench run: benchmark one or more models over a list of configurations (flags follow
 * transformers' benchmark_v2 run_benchmarks.py; docs/cli.md). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "bench/config.h"
#include "bench/report.h"
#include "bench/results.h"
#include "bench/runner.h"
#include "cli/cli.h"
#include "util/clock.h"
#include "util/error.h"

#define DEFAULT_MODEL "random:smollm2-135m"
#define MAX_LIST 64
#define MAX_MODELS 32

static const char *const k_usage =
    "usage: genbench run [MODEL ...] [options]\n"
    "\n"
    "Benchmarks greedy generation of each MODEL over a list of configurations and writes\n"
    "{output-dir}/{model}/{model}_benchmark_{YYYYmmdd_HHMMSS}.json (benchmark_v2 format).\n"
    "MODEL: a local directory, a Hugging Face id org/name[@revision] in the local HF cache,\n"
    "or random:<preset>. Without a model: " DEFAULT_MODEL " with quick settings\n"
    "(-w 1 -i 5 -s 32 -n 16, sdpa, compile default, kernelize) that finish in seconds.\n"
    "LIST values are comma-separated; every list multiplies out (cross product).\n"
    "\n"
    "models and configurations:\n"
    "  --model-id MODEL             model to benchmark (repeatable; same as positional)\n"
    "  --level N                    config set of benchmark_v2's get_config_by_level, 0-4\n"
    "                               (0: 1 config, 1: 4, 2: 8, 3: 32, 4: 80; default 1 unless\n"
    "                               --attn/--compile/--kernelize/--continuous-batching/\n"
    "                               --config-file are given)\n"
    "  --config-file FILE           JSON array/object or JSONL file of config objects\n"
    "  --attn LIST                  eager,sdpa,flash_attention_2,flex_attention (default eager\n"
    "                               when --compile or --kernelize shape the configs)\n"
    "  --compile LIST               compile modes: none, default, reduce-overhead,\n"
    "                               max-autotune, max-autotune-no-cudagraphs (CPU: a compile\n"
    "                               mode means a static KV cache and a preplanned decode step)\n"
    "  --kernelize                  fused kernels instead of the reference ones\n"
    "  --continuous-batching        requests scheduled over a paged KV cache (CPU and CUDA)\n"
    "  -w, --warmup N               warm-up runs after the validation run (default 3)\n"
    "  -i, --iterations N           timed runs (default 10)\n"
    "  -b, --batch-size LIST        copies of the prompt (default 1)\n"
    "  -s, --sequence-length LIST   prompt truncation cap in tokens (default 128)\n"
    "  -n, --num-tokens-to-generate LIST  new tokens, exactly (default 128; >= 2)\n"
    "  --device DEV                 cpu, cuda or cuda:N (default cuda when a GPU is usable)\n"
    "  --dtype T                    bfloat16 (default), float16, float32\n"
    "  --threads LIST               CPU threads (default all cores)\n"
    "  --no-gpu-monitoring          do not sample GPU utilisation and memory\n"
    "  -p, --num-tokens-to-profile N  >0: one extra generation of N tokens per config,\n"
    "                               written as a Chrome trace to {output-dir}_profiles/\n"
    "\n"
    "metadata and output:\n"
    "  --branch-name S, --commit-id S, --commit-message S\n"
    "                               recorded metadata (default: read from the git repository\n"
    "                               of the current directory; null outside one)\n"
    "  -o, --output-dir DIR         results root (default benchmark_results)\n"
    "  --summarized                 leave per-token timestamps and GPU samples out of the file\n"
    "  --format md|csv|json|jsonl   print one machine-readable table on stdout (all logs and\n"
    "                               progress go to stderr) instead of the summary\n"
    "  --log-level L                debug, info (default), warning, error\n"
    "  --no-ceilings                do not measure the machine's bandwidth/matrix peak when\n"
    "                               they are not cached yet (efficiency shares become null)\n"
    "  -h, --help                   this help\n"
    "\n"
    "Exit status: 0 when every config succeeded, 1 when any failed, 2 on usage errors.\n";

typedef struct cli_state {
    int log_level;
    bool tty;
    bool progress_open;
    char current[300];
} cli_state;

static const char *level_name(int l) {
    return l == GB_LOG_DEBUG     ? "DEBUG"
           : l == GB_LOG_INFO    ? "INFO"
           : l == GB_LOG_WARNING ? "WARNING"
                                 : "ERROR";
}

static void clear_progress(cli_state *s) {
    if (s->progress_open) {
        fprintf(stderr, "\r\033[K");
        s->progress_open = false;
    }
}

static void log_cb(void *user, int level, const char *msg) {
    cli_state *s = user;
    if (level < s->log_level) return;
    clear_progress(s);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char t[16];
    strftime(t, sizeof t, "%H:%M:%S", &tm);
    fprintf(stderr, "[%s - %s] genbench: %s\n", level_name(level), t, msg);
    const char *p = strstr(msg, "with scenario: ");
    if (p) snprintf(s->current, sizeof s->current, "%.200s", p + 15);
}

static void progress_cb(void *user, const char *phase, int done, int total) {
    cli_state *s = user;
    if (!s->tty) {
        /* Plain log lines: one per finished phase. */
        if (done == total && total > 0 && s->log_level <= GB_LOG_INFO) {
            char m[128];
            snprintf(m, sizeof m, "%s: %d/%d runs done", phase, done, total);
            log_cb(user, GB_LOG_INFO, m);
        }
        return;
    }
    int width = 30, fill = total > 0 ? done * width / total : width;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r\033[K%-10s [%s] %d/%d", phase, bar, done, total);
    s->progress_open = true;
    if (done == total) clear_progress(s);
    fflush(stderr);
}

static int parse_int(const char *flag, const char *v, int *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < -1000000000L || x > 1000000000L) {
        fprintf(stderr, "genbench run: %s expects an integer, got '%s'\n", flag, v);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int parse_list(const char *flag, const char *v, int *out, int *n) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", v);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (*n >= MAX_LIST) {
            fprintf(stderr, "genbench run: %s: more than %d values\n", flag, MAX_LIST);
            return -1;
        }
        if (parse_int(flag, tok, &out[*n]) != 0) return -1;
        (*n)++;
    }
    if (*n == 0) {
        fprintf(stderr, "genbench run: %s expects a comma-separated list\n", flag);
        return -1;
    }
    return 0;
}

static int parse_str_list(const char *flag, const char *v, char out[][32], int *n) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", v);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (*n >= 8 || strlen(tok) >= 32) {
            fprintf(stderr, "genbench run: %s: too many or too long values\n", flag);
            return -1;
        }
        snprintf(out[(*n)++], 32, "%s", tok);
    }
    return *n ? 0 : -1;
}

int gb_cli_run(int argc, char **argv) {
    const char *models[MAX_MODELS];
    int n_models = 0;
    int warmup = 3, iters = 10, level = 1, profile = 0;
    bool warmup_set = false, iters_set = false, level_set = false, kernelize = false;
    bool cont_batching = false;
    bool no_monitor = false, summarized = false, no_ceilings = false;
    int batch[MAX_LIST], seq[MAX_LIST], ntok[MAX_LIST], threads[MAX_LIST];
    int n_batch = 0, n_seq = 0, n_ntok = 0, n_threads = 0;
    char attn[8][32], comp[8][32];
    int n_attn = 0, n_comp = 0;
    const char *config_file = NULL, *device = NULL, *dtype = NULL, *format = NULL;
    const char *branch = NULL, *commit = NULL, *message = NULL;
    const char *output_dir = "benchmark_results";
    cli_state st = {.log_level = GB_LOG_INFO};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char flag[64];
        const char *val = NULL;
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        if (eq) {
            snprintf(flag, sizeof flag, "%.*s", (int)(eq - a), a);
            val = eq + 1;
        } else {
            snprintf(flag, sizeof flag, "%s", a);
        }
#define IS(s, l) (!strcmp(flag, s) || !strcmp(flag, l))
#define VAL()                                                                                      \
    do {                                                                                           \
        if (!val) {                                                                                \
            if (i + 1 >= argc) {                                                                   \
                fprintf(stderr, "genbench run: %s needs a value\n", flag);                         \
                return 2;                                                                          \
            }                                                                                      \
            val = argv[++i];                                                                       \
        }                                                                                          \
    } while (0)
        if (IS("-h", "--help")) {
            fputs(k_usage, stdout);
            return 0;
        } else if (IS("--model-id", "--model")) {
            VAL();
            if (n_models >= MAX_MODELS) return 2;
            models[n_models++] = val;
        } else if (IS("-w", "--warmup")) {
            VAL();
            if (parse_int(flag, val, &warmup)) return 2;
            warmup_set = true;
        } else if (IS("-i", "--iterations")) {
            VAL();
            if (parse_int(flag, val, &iters)) return 2;
            iters_set = true;
        } else if (IS("-b", "--batch-size")) {
            VAL();
            if (parse_list(flag, val, batch, &n_batch)) return 2;
        } else if (IS("-s", "--sequence-length")) {
            VAL();
            if (parse_list(flag, val, seq, &n_seq)) return 2;
        } else if (IS("-n", "--num-tokens-to-generate")) {
            VAL();
            if (parse_list(flag, val, ntok, &n_ntok)) return 2;
        } else if (IS("--threads", "-t")) {
            VAL();
            if (parse_list(flag, val, threads, &n_threads)) return 2;
        } else if (IS("--level", "--level")) {
            VAL();
            if (parse_int(flag, val, &level)) return 2;
            if (level < 0 || level > 4) {
                fprintf(stderr, "genbench run: --level must be 0-4, got %d\n", level);
                return 2;
            }
            level_set = true;
        } else if (IS("--config-file", "--config-file")) {
            VAL();
            config_file = val;
        } else if (IS("-p", "--num-tokens-to-profile")) {
            VAL();
            if (parse_int(flag, val, &profile) || profile < 0) return 2;
        } else if (IS("--branch-name", "--branch-name")) {
            VAL();
            branch = val;
        } else if (IS("--commit-id", "--commit-id")) {
            VAL();
            commit = val;
        } else if (IS("--commit-message", "--commit-message")) {
            VAL();
            message = val;
        } else if (IS("--no-gpu-monitoring", "--no-gpu-monitoring")) {
            no_monitor = true;
        } else if (IS("-o", "--output-dir")) {
            VAL();
            output_dir = val;
        } else if (IS("--log-level", "--log-level")) {
            VAL();
            if (!strcasecmp(val, "debug"))
                st.log_level = GB_LOG_DEBUG;
            else if (!strcasecmp(val, "info"))
                st.log_level = GB_LOG_INFO;
            else if (!strcasecmp(val, "warning"))
                st.log_level = GB_LOG_WARNING;
            else if (!strcasecmp(val, "error"))
                st.log_level = GB_LOG_ERROR;
            else {
                fprintf(stderr, "genbench run: --log-level: debug, info, warning or error\n");
                return 2;
            }
        } else if (IS("--attn", "--attn-implementation")) {
            VAL();
            if (parse_str_list(flag, val, attn, &n_attn)) return 2;
        } else if (IS("--compile", "--compile")) {
            VAL();
            if (parse_str_list(flag, val, comp, &n_comp)) return 2;
        } else if (IS("--kernelize", "--kernelize")) {
            kernelize = true;
        } else if (IS("--continuous-batching", "--continuous-batching")) {
            cont_batching = true;
        } else if (IS("--device", "--device")) {
            VAL();
            device = val;
        } else if (IS("--dtype", "--dtype")) {
            VAL();
            dtype = val;
        } else if (IS("--format", "--format")) {
            VAL();
            format = val;
            if (!gb_report_format_valid(format)) {
                fprintf(stderr, "genbench run: --format must be md, csv, json or jsonl\n");
                return 2;
            }
        } else if (IS("--summarized", "--summarized")) {
            summarized = true;
        } else if (IS("--no-ceilings", "--no-ceilings")) {
            no_ceilings = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "genbench run: unknown option '%s' (see genbench run --help)\n", a);
            return 2;
        } else {
            if (n_models >= MAX_MODELS) return 2;
            models[n_models++] = a;
        }
#undef IS
#undef VAL
    }
    for (int k = 0; k < n_ntok; k++)
        if (ntok[k] <= 1) {
            fprintf(stderr,
                    "genbench run: -n values must be >= 2 (the inter-token latency needs "
                    "two tokens), got %d\n",
                    ntok[k]);
            return 2;
        }

    /* Quick defaults when no model is named: a new user sees a result in seconds. */
    bool quick = n_models == 0;
    if (quick) {
        models[n_models++] = DEFAULT_MODEL;
        if (!warmup_set) warmup = 1;
        if (!iters_set) iters = 5;
        if (!n_seq) seq[n_seq++] = 32;
        if (!n_ntok) ntok[n_ntok++] = 16;
    }

    /* Base configs: a file, an explicit attn x compile x kernelize product, or a level. */
    gb_error err;
    gb_bench_config *base = NULL;
    int n_base = 0;
    bool explicit_product =
        n_attn || n_comp || kernelize || cont_batching || (quick && !level_set && !config_file);
    if (config_file) {
        if (gb_bench_config_read_file(config_file, &base, &n_base, &err) != 0) {
            fprintf(stderr, "genbench run: %s\n", err.msg);
            return 2;
        }
    } else if (explicit_product) {
        if (quick && !n_attn && !n_comp && !kernelize) {
            snprintf(attn[n_attn++], 32, "sdpa");
            snprintf(comp[n_comp++], 32, "default");
            kernelize = true;
        }
        if (!n_attn) snprintf(attn[n_attn++], 32, "eager");
        if (!n_comp) snprintf(comp[n_comp++], 32, "none");
        base = calloc((size_t)(n_attn * n_comp), sizeof *base);
        if (!base) return 2;
        for (int a = 0; a < n_attn; a++)
            for (int c = 0; c < n_comp; c++) {
                gb_bench_config *b = &base[n_base++];
                gb_bench_config_default(b);
                memcpy(b->attn_implementation, attn[a], sizeof b->attn_implementation);
                if (strcmp(comp[c], "none") != 0)
                    gb_compile_kwargs_set(&b->compile_kwargs, comp[c]);
                b->kernelize = kernelize;
                b->continuous_batching = cont_batching;
            }
    } else {
        if (gb_bench_configs_for_level(level, &base, &n_base, &err) != 0) {
            fprintf(stderr, "genbench run: %s\n", err.msg);
            return 2;
        }
        if (n_base == 0) {
            fprintf(stderr, "genbench run: --level %d gives no configs (use 0-4)\n", level);
            free(base);
            return 2;
        }
    }
    if ((device && strlen(device) >= 32) || (dtype && strlen(dtype) >= 16)) {
        fprintf(stderr, "genbench run: --device/--dtype value too long\n");
        free(base);
        return 2;
    }
    for (int k = 0; k < n_base; k++) {
        if (device) snprintf(base[k].device, sizeof base[k].device, "%.31s", device);
        if (dtype) snprintf(base[k].dtype, sizeof base[k].dtype, "%.15s", dtype);
    }
    /* Sweep. Configs from a file keep their own values unless a flag is given explicitly;
     * generated configs take the CLI defaults (-w 3 -i 10) like run_benchmarks.py. */
    int w1[1] = {warmup}, i1[1] = {iters};
    gb_bench_sweep sw = {0};
    if (!config_file || warmup_set) {
        sw.warmup = w1;
        sw.n_warmup = 1;
    }
    if (!config_file || iters_set) {
        sw.iterations = i1;
        sw.n_iterations = 1;
    }
    sw.batch = batch;
    sw.n_batch = n_batch;
    sw.seq = seq;
    sw.n_seq = n_seq;
    sw.ntok = ntok;
    sw.n_ntok = n_ntok;
    sw.threads = threads;
    sw.n_threads = n_threads;
    sw.gpu_monitoring = no_monitor ? 0 : config_file ? -1 : 1;
    gb_bench_config *configs = NULL;
    int n_configs = 0;
    int rc = gb_bench_configs_sweep(base, n_base, &sw, &configs, &n_configs, &err);
    free(base);
    if (rc) {
        fprintf(stderr, "genbench run: %s\n", err.msg);
        return 2;
    }

    st.tty = isatty(STDERR_FILENO) != 0;
    gb_runner_options o = {0};
    o.output_dir = output_dir;
    o.branch_name = branch;
    o.commit_id = commit;
    o.commit_message = message;
    o.num_tokens_to_profile = profile;
    o.summarized = summarized;
    o.measure_ceilings = !no_ceilings && !getenv("GENBENCH_NO_CEILINGS");
    o.log = log_cb;
    o.progress = progress_cb;
    o.user = &st;

    gb_bench_results *res = calloc((size_t)n_models, sizeof *res);
    if (!res) return 2;
    int total_failed = 0, status = 0;
    int64_t t0 = gb_clock_ns();
    for (int m = 0; m < n_models; m++) {
        int failed = 0;
        if (gb_runner_run(models[m], configs, n_configs, &o, &res[m], &failed, &err) != 0) {
            clear_progress(&st);
            fprintf(stderr, "genbench run: %s\n", err.msg);
            status = 1;
        }
        total_failed += failed;
    }
    double elapsed = (double)(gb_clock_ns() - t0) * 1e-9;
    clear_progress(&st);
    char *text =
        format ? gb_report_table(res, n_models, format) : gb_report_summary(res, n_models, elapsed);
    if (text) fputs(text, stdout);
    free(text);
    fflush(stdout);
    if (total_failed) {
        fprintf(stderr, "genbench run: %d config(s) failed\n", total_failed);
        status = 1;
    }
    for (int m = 0; m < n_models; m++)
        gb_bench_results_free(&res[m]);
    free(res);
    free(configs);
    return status;
}
