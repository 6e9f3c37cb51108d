#include "bench/config.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utf8proc.h>

#include "bench/pyjson.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/hash.h"

static const char *const k_attn_all[] = {"flash_attention_2", "eager", "sdpa", "flex_attention"};
static const char *const k_modes[] = {"default", "reduce-overhead", "max-autotune",
                                      "max-autotune-no-cudagraphs"};

int gb_bench_num_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

const char *gb_bench_default_device(void) {
    const char *e = getenv("GENBENCH_DEVICE");
    if (e && *e) return e;
#ifdef GB_HAVE_CUDA
    /* A usable NVIDIA GPU exposes /dev/nvidia0; the CUDA backend reports a precise error
     * at load time when it still cannot be used. */
    if (access("/dev/nvidia0", F_OK) == 0) return "cuda";
#endif
    return "cpu";
}

static void copy_str(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src ? src : "");
}

void gb_compile_kwargs_set(gb_compile_kwargs *k, const char *mode) {
    memset(k, 0, sizeof *k);
    k->set = true;
    k->fullgraph = true;
    k->dynamic = -1;
    copy_str(k->backend, sizeof k->backend, "inductor");
    copy_str(k->mode, sizeof k->mode, mode && *mode ? mode : "reduce-overhead");
}

void gb_bench_config_default(gb_bench_config *c) {
    memset(c, 0, sizeof *c);
    c->warmup_iterations = 5;
    c->measurement_iterations = 20;
    c->gpu_monitoring = true;
    c->continuous_batching = false;
    c->batch_size = 1;
    c->sequence_length = 128;
    c->num_tokens_to_generate = 128;
    copy_str(c->attn_implementation, sizeof c->attn_implementation, "eager");
    c->kernelize = false;
    copy_str(c->device, sizeof c->device, gb_bench_default_device());
    copy_str(c->dtype, sizeof c->dtype, "bfloat16");
    c->threads = 0;
}

static void add_note(gb_bench_config *c, const char *fmt, ...) {
    if (c->n_notes >= GB_BENCH_NOTES_MAX) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->notes[c->n_notes++], sizeof c->notes[0], fmt, ap);
    va_end(ap);
}

static bool in_list(const char *s, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, list[i])) return true;
    return false;
}

static bool valid_device(const char *d) {
    if (!strcmp(d, "cpu") || !strcmp(d, "cuda")) return true;
    if (strncmp(d, "cuda:", 5) != 0 || !d[5]) return false;
    for (const char *p = d + 5; *p; p++)
        if (*p < '0' || *p > '9') return false;
    return true;
}

int gb_bench_config_finalize(gb_bench_config *c, gb_error *err) {
    if (c->warmup_iterations < 0)
        return gb_error_set(err, GB_ERR_INVALID, "config: warmup_iterations must be >= 0, got %d",
                            c->warmup_iterations);
    if (c->measurement_iterations < 1)
        return gb_error_set(err, GB_ERR_INVALID,
                            "config: measurement_iterations must be >= 1, got %d",
                            c->measurement_iterations);
    if (c->batch_size < 1 || c->batch_size > 4096)
        return gb_error_set(err, GB_ERR_INVALID, "config: batch_size must be in 1..4096, got %d",
                            c->batch_size);
    if (c->sequence_length < 1 || c->sequence_length > 1 << 20)
        return gb_error_set(err, GB_ERR_INVALID, "config: sequence_length must be >= 1, got %d",
                            c->sequence_length);
    /* The inter-token latency needs at least two new tokens (as run_benchmarks.py checks). */
    if (c->num_tokens_to_generate < 2 || c->num_tokens_to_generate > 1 << 20)
        return gb_error_set(err, GB_ERR_INVALID,
                            "config: num_tokens_to_generate must be >= 2, got %d",
                            c->num_tokens_to_generate);
    if (!in_list(c->attn_implementation, k_attn_all, 4))
        return gb_error_set(err, GB_ERR_INVALID,
                            "config: attn_implementation '%s' is not one of flash_attention_2, "
                            "eager, sdpa, flex_attention",
                            c->attn_implementation);
    if (c->compile_kwargs.set && !in_list(c->compile_kwargs.mode, k_modes, 4))
        return gb_error_set(err, GB_ERR_INVALID,
                            "config: compile_kwargs.mode '%s' is not one of default, "
                            "reduce-overhead, max-autotune, max-autotune-no-cudagraphs",
                            c->compile_kwargs.mode);
    if (!valid_device(c->device))
        return gb_error_set(err, GB_ERR_INVALID, "config: device '%s' is not cpu, cuda or cuda:N",
                            c->device);
    if (strcmp(c->dtype, "bfloat16") && strcmp(c->dtype, "float16") && strcmp(c->dtype, "float32"))
        return gb_error_set(err, GB_ERR_INVALID,
                            "config: dtype '%s' is not bfloat16, float16 or float32", c->dtype);
    if (c->threads < 0 || c->threads > 4096)
        return gb_error_set(err, GB_ERR_INVALID, "config: threads must be in 0..4096, got %d",
                            c->threads);
    if (c->threads == 0) c->threads = gb_bench_num_cpus();

    /* Validity rules, in benchmark_v2's order. Rule 3 looks at the requested attention
     * implementation, so flex_attention + continuous batching still turns batching off
     * after rule 1 replaced flex_attention by sdpa (as in benchmark_v2 when flex exists). */
    bool requested_flex = !strcmp(c->attn_implementation, "flex_attention");
    if (requested_flex) {
        add_note(c, "flex_attention is not provided by genbench: using sdpa");
        copy_str(c->attn_implementation, sizeof c->attn_implementation, "sdpa");
    }
    if (!c->continuous_batching && !strcmp(c->attn_implementation, "flash_attention_2") &&
        c->compile_kwargs.set) {
        add_note(c, "flash_attention_2 with compile and regular generate is not supported: "
                    "compile turned off");
        c->compile_kwargs.set = false;
    }
    if (requested_flex && c->continuous_batching) {
        add_note(c, "flex_attention with continuous batching is not supported: continuous "
                    "batching turned off");
        c->continuous_batching = false;
    }
    if (c->continuous_batching && c->compile_kwargs.set &&
        strcmp(c->compile_kwargs.mode, "default") != 0 &&
        strcmp(c->compile_kwargs.mode, "max-autotune-no-cudagraphs") != 0) {
        add_note(c,
                 "continuous batching supports compile modes default and "
                 "max-autotune-no-cudagraphs only: mode %s replaced by default",
                 c->compile_kwargs.mode);
        copy_str(c->compile_kwargs.mode, sizeof c->compile_kwargs.mode, "default");
    }
    if (!c->name_given) gb_bench_config_name(c, c->name, sizeof c->name);
    return GB_OK;
}

void gb_bench_config_name(const gb_bench_config *c, char *out, size_t cap) {
    char comp[48];
    if (c->compile_kwargs.set)
        snprintf(comp, sizeof comp, "compiled_%s", c->compile_kwargs.mode);
    else
        snprintf(comp, sizeof comp, "uncompiled");
    snprintf(out, cap, "w%d_i%d-%s-b%d_s%d_n%d-%s-%s-%s-%s", c->warmup_iterations,
             c->measurement_iterations, c->gpu_monitoring ? "monitored" : "unmonitored",
             c->batch_size, c->sequence_length, c->num_tokens_to_generate, c->attn_implementation,
             comp, c->kernelize ? "kernelized" : "unkernelized",
             c->continuous_batching ? "cb" : "generate");
}

void gb_bench_config_verbose_name(const gb_bench_config *c, char *out, size_t cap) {
    snprintf(out, cap,
             "%d warmup, %d iterations, %s, batch size %d, sequence length %d, %d generated "
             "tokens, %s attention, %s, %s, %s",
             c->warmup_iterations, c->measurement_iterations,
             c->gpu_monitoring ? "with GPU monitoring" : "no GPU monitoring", c->batch_size,
             c->sequence_length, c->num_tokens_to_generate, c->attn_implementation,
             c->compile_kwargs.set ? "compiled" : "not compiled",
             c->kernelize ? "kernelized" : "not kernelized",
             c->continuous_batching ? "continuous batching" : "regular generate");
}

char *gb_bench_config_serialize(const gb_bench_config *c) {
    gb_jw w;
    gb_jw_init(&w, 0);
    gb_bench_config_write(&w, c);
    return gb_jw_take(&w, NULL);
}

void gb_bench_config_write(gb_jw *w, const gb_bench_config *c) {
    gb_jw_obj_begin(w);
    gb_jw_kstr(w, "name", c->name);
    gb_jw_kint(w, "warmup_iterations", c->warmup_iterations);
    gb_jw_kint(w, "measurement_iterations", c->measurement_iterations);
    gb_jw_kbool(w, "gpu_monitoring", c->gpu_monitoring);
    gb_jw_kbool(w, "continuous_batching", c->continuous_batching);
    gb_jw_kint(w, "batch_size", c->batch_size);
    gb_jw_kint(w, "sequence_length", c->sequence_length);
    gb_jw_kint(w, "num_tokens_to_generate", c->num_tokens_to_generate);
    gb_jw_kstr(w, "attn_implementation", c->attn_implementation);
    gb_jw_key(w, "compile_kwargs");
    if (c->compile_kwargs.set) {
        const gb_compile_kwargs *k = &c->compile_kwargs;
        gb_jw_obj_begin(w);
        gb_jw_kbool(w, "fullgraph", k->fullgraph);
        gb_jw_key(w, "dynamic");
        if (k->dynamic < 0)
            gb_jw_null(w);
        else
            gb_jw_bool(w, k->dynamic != 0);
        gb_jw_kstr(w, "backend", k->backend);
        gb_jw_kstr(w, "mode", k->mode);
        gb_jw_key(w, "options");
        gb_jw_raw(w, k->options[0] ? k->options : "null");
        gb_jw_obj_end(w);
    } else {
        gb_jw_null(w);
    }
    gb_jw_kbool(w, "kernelize", c->kernelize);
    gb_jw_kstr(w, "device", c->device);
    gb_jw_kstr(w, "dtype", c->dtype);
    gb_jw_kint(w, "threads", c->threads);
    gb_jw_obj_end(w);
}

void gb_bench_config_hash(const gb_bench_config *c, char out[65]) {
    char *s = gb_bench_config_serialize(c);
    gb_sha256_hex(s ? s : "", s ? strlen(s) : 0, out);
    free(s);
}

/* ---- reading configs from JSON ---- */

static int get_int(const cJSON *v, const char *src, const char *key, int *out, gb_error *err) {
    /* Range first: converting an out-of-range double to int is undefined (fuzz_config). */
    if (!cJSON_IsNumber(v) ||
        !(v->valuedouble >= -2147483648.0 && v->valuedouble <= 2147483647.0) ||
        v->valuedouble != (double)(int)v->valuedouble)
        return gb_error_set(err, GB_ERR_INVALID, "%s: config key '%s' must be an integer", src,
                            key);
    *out = (int)v->valuedouble;
    return GB_OK;
}

static int get_bool(const cJSON *v, const char *src, const char *key, bool *out, gb_error *err) {
    if (!cJSON_IsBool(v))
        return gb_error_set(err, GB_ERR_INVALID, "%s: config key '%s' must be true or false", src,
                            key);
    *out = cJSON_IsTrue(v);
    return GB_OK;
}

static int get_str(const cJSON *v, const char *src, const char *key, char *out, size_t cap,
                   gb_error *err) {
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap)
        return gb_error_set(err, GB_ERR_INVALID,
                            "%s: config key '%s' must be a string (< %zu bytes)", src, key, cap);
    copy_str(out, cap, v->valuestring);
    return GB_OK;
}

static int parse_compile(const cJSON *v, const char *src, gb_compile_kwargs *k, gb_error *err) {
    if (cJSON_IsNull(v)) {
        memset(k, 0, sizeof *k);
        return GB_OK;
    }
    if (!cJSON_IsObject(v))
        return gb_error_set(err, GB_ERR_INVALID, "%s: compile_kwargs must be null or an object",
                            src);
    gb_compile_kwargs_set(k, NULL);
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        const char *key = e->string;
        if (!strcmp(key, "mode")) {
            if (cJSON_IsNull(e)) continue; /* CompileConfig's default mode */
            GB_TRY(get_str(e, src, "compile_kwargs.mode", k->mode, sizeof k->mode, err));
        } else if (!strcmp(key, "fullgraph")) {
            bool b = true;
            GB_TRY(get_bool(e, src, "compile_kwargs.fullgraph", &b, err));
            /* fullgraph is forced true (product.md §1). */
        } else if (!strcmp(key, "dynamic")) {
            if (cJSON_IsNull(e)) {
                k->dynamic = -1;
            } else {
                bool b = false;
                GB_TRY(get_bool(e, src, "compile_kwargs.dynamic", &b, err));
                k->dynamic = b;
            }
        } else if (!strcmp(key, "backend")) {
            GB_TRY(get_str(e, src, "compile_kwargs.backend", k->backend, sizeof k->backend, err));
        } else if (!strcmp(key, "options")) {
            if (cJSON_IsNull(e)) {
                k->options[0] = '\0';
                continue;
            }
            gb_jw w;
            gb_jw_init(&w, 0);
            gb_jw_cjson(&w, e);
            char *s = gb_jw_take(&w, NULL);
            if (!s || strlen(s) >= sizeof k->options) {
                free(s);
                return gb_error_set(err, GB_ERR_INVALID, "%s: compile_kwargs.options is too long",
                                    src);
            }
            copy_str(k->options, sizeof k->options, s);
            free(s);
        } else {
            return gb_error_set(err, GB_ERR_INVALID, "%s: unknown compile_kwargs key '%s'", src,
                                key);
        }
    }
    return GB_OK;
}

int gb_bench_config_from_json(const cJSON *obj, const char *src, gb_bench_config *c,
                              gb_error *err) {
    gb_bench_config_default(c);
    if (!cJSON_IsObject(obj))
        return gb_error_set(err, GB_ERR_INVALID, "%s: a benchmark config must be a JSON object",
                            src);
    const cJSON *e;
    cJSON_ArrayForEach(e, obj) {
        const char *k = e->string;
        if (!strcmp(k, "name")) {
            if (cJSON_IsNull(e)) continue;
            GB_TRY(get_str(e, src, k, c->name, sizeof c->name, err));
            c->name_given = c->name[0] != '\0';
        } else if (!strcmp(k, "warmup_iterations")) {
            GB_TRY(get_int(e, src, k, &c->warmup_iterations, err));
        } else if (!strcmp(k, "measurement_iterations")) {
            GB_TRY(get_int(e, src, k, &c->measurement_iterations, err));
        } else if (!strcmp(k, "gpu_monitoring")) {
            GB_TRY(get_bool(e, src, k, &c->gpu_monitoring, err));
        } else if (!strcmp(k, "continuous_batching")) {
            GB_TRY(get_bool(e, src, k, &c->continuous_batching, err));
        } else if (!strcmp(k, "batch_size")) {
            GB_TRY(get_int(e, src, k, &c->batch_size, err));
        } else if (!strcmp(k, "sequence_length")) {
            GB_TRY(get_int(e, src, k, &c->sequence_length, err));
        } else if (!strcmp(k, "num_tokens_to_generate")) {
            GB_TRY(get_int(e, src, k, &c->num_tokens_to_generate, err));
        } else if (!strcmp(k, "attn_implementation")) {
            GB_TRY(get_str(e, src, k, c->attn_implementation, sizeof c->attn_implementation, err));
        } else if (!strcmp(k, "compile_kwargs")) {
            GB_TRY(parse_compile(e, src, &c->compile_kwargs, err));
        } else if (!strcmp(k, "kernelize")) {
            GB_TRY(get_bool(e, src, k, &c->kernelize, err));
        } else if (!strcmp(k, "device")) {
            GB_TRY(get_str(e, src, k, c->device, sizeof c->device, err));
        } else if (!strcmp(k, "dtype")) {
            GB_TRY(get_str(e, src, k, c->dtype, sizeof c->dtype, err));
        } else if (!strcmp(k, "threads")) {
            GB_TRY(get_int(e, src, k, &c->threads, err));
        } else if (!strcmp(k, "tp_plan")) {
            if (!cJSON_IsNull(e))
                return gb_error_set(err, GB_ERR_UNSUPPORTED,
                                    "%s: tp_plan (tensor parallelism) is not supported", src);
        } else {
            return gb_error_set(err, GB_ERR_INVALID, "%s: unknown config key '%s'", src, k);
        }
    }
    return GB_OK;
}

static int push(gb_bench_config **arr, int *n, int *cap, const gb_bench_config *c, gb_error *err) {
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 8;
        gb_bench_config *na = realloc(*arr, (size_t)nc * sizeof **arr);
        if (!na) return gb_error_set(err, GB_ERR_NOMEM, "out of memory building configs");
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = *c;
    return GB_OK;
}

static bool has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Offset of the first invalid UTF-8 sequence, len when the text is valid. cJSON passes bytes
 * through, so without this a bad name would reach the results file. */
static size_t utf8_invalid_at(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0) return i;
        i += (size_t)k;
    }
    return len;
}

int gb_bench_config_read_file(const char *path, gb_bench_config **out, int *n, gb_error *err) {
    *out = NULL;
    *n = 0;
    char *text;
    size_t len;
    GB_TRY(gb_file_read_all(path, 64u << 20, &text, &len, err));
    size_t bad = utf8_invalid_at(text, len);
    if (bad < len) {
        free(text);
        return gb_error_set(err, GB_ERR_FORMAT, "%s: invalid UTF-8 at byte %zu", path, bad);
    }
    int cap = 0, rc = GB_OK;
    char src[600];
    cJSON *root = has_suffix(path, ".jsonl") ? NULL : cJSON_ParseWithLength(text, len);
    if (root) {
        if (cJSON_IsArray(root)) {
            const cJSON *e;
            int i = 0;
            cJSON_ArrayForEach(e, root) {
                gb_bench_config c;
                snprintf(src, sizeof src, "%s: config %d", path, i++);
                if ((rc = gb_bench_config_from_json(e, src, &c, err)) != 0) break;
                if ((rc = push(out, n, &cap, &c, err)) != 0) break;
            }
        } else {
            gb_bench_config c;
            rc = gb_bench_config_from_json(root, path, &c, err);
            if (rc == 0) rc = push(out, n, &cap, &c, err);
        }
        cJSON_Delete(root);
    } else {
        /* JSON Lines: one object per non-empty line. */
        char *line = text;
        int lineno = 0;
        while (rc == 0 && line && *line) {
            char *nl = strchr(line, '\n');
            if (nl) *nl = '\0';
            lineno++;
            const char *p = line;
            while (*p == ' ' || *p == '\t' || *p == '\r')
                p++;
            if (*p) {
                snprintf(src, sizeof src, "%s:%d", path, lineno);
                cJSON *o = cJSON_Parse(p);
                if (!o) {
                    rc = gb_error_set(err, GB_ERR_FORMAT, "%s: malformed JSON", src);
                    break;
                }
                gb_bench_config c;
                rc = gb_bench_config_from_json(o, src, &c, err);
                cJSON_Delete(o);
                if (rc == 0) rc = push(out, n, &cap, &c, err);
            }
            line = nl ? nl + 1 : NULL;
        }
    }
    free(text);
    if (rc == 0 && *n == 0) rc = gb_error_set(err, GB_ERR_INVALID, "%s: no configs in file", path);
    if (rc != 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

static void mk(gb_bench_config *c, const char *attn, bool compiled, const char *mode, bool kern,
               bool cb) {
    gb_bench_config_default(c);
    copy_str(c->attn_implementation, sizeof c->attn_implementation, attn);
    if (compiled) gb_compile_kwargs_set(&c->compile_kwargs, mode);
    c->kernelize = kern;
    c->continuous_batching = cb;
}

int gb_bench_configs_for_level(int level, gb_bench_config **out, int *n, gb_error *err) {
    *out = NULL;
    *n = 0;
    int cap = 0;
    gb_bench_config c;
    if (level >= 3) {
        /* Full cross product: attention x compile modes x kernelize x CB. genbench always
         * has its fused kernel set, so kernelize takes both values. */
        const char *modes[5] = {NULL, "default", "reduce-overhead", "max-autotune",
                                "max-autotune-no-cudagraphs"};
        int n_modes = level >= 4 ? 5 : 2;
        for (int a = 0; a < 4; a++)
            for (int m = 0; m < n_modes; m++)
                for (int k = 0; k < 2; k++)
                    for (int cb = 0; cb < 2; cb++) {
                        mk(&c, k_attn_all[a], modes[m] != NULL, modes[m], k, cb);
                        GB_TRY(push(out, n, &cap, &c, err));
                    }
        return GB_OK;
    }
    if (level >= 0) {
        mk(&c, "flex_attention", true, NULL, false, false);
        GB_TRY(push(out, n, &cap, &c, err));
    }
    if (level >= 1) {
        mk(&c, "flash_attention_2", false, NULL, false, false);
        GB_TRY(push(out, n, &cap, &c, err));
        mk(&c, "eager", true, NULL, false, false);
        GB_TRY(push(out, n, &cap, &c, err));
        mk(&c, "flash_attention_2", false, NULL, false, true);
        GB_TRY(push(out, n, &cap, &c, err));
    }
    if (level >= 2) {
        mk(&c, "sdpa", true, NULL, false, false);
        GB_TRY(push(out, n, &cap, &c, err));
        mk(&c, "flex_attention", true, NULL, true, false);
        GB_TRY(push(out, n, &cap, &c, err));
        mk(&c, "flash_attention_2", false, NULL, true, false);
        GB_TRY(push(out, n, &cap, &c, err));
        mk(&c, "sdpa", false, NULL, false, true);
        GB_TRY(push(out, n, &cap, &c, err));
    }
    return GB_OK;
}

int gb_bench_configs_sweep(const gb_bench_config *in, int n_in, const gb_bench_sweep *sw,
                           gb_bench_config **out, int *n_out, gb_error *err) {
    *out = NULL;
    *n_out = 0;
    int cap = 0;
    /* A missing list iterates once and leaves the field alone. */
    int nw = sw->n_warmup > 0 ? sw->n_warmup : 1, ni = sw->n_iterations > 0 ? sw->n_iterations : 1;
    int nb = sw->n_batch > 0 ? sw->n_batch : 1, ns = sw->n_seq > 0 ? sw->n_seq : 1;
    int nn = sw->n_ntok > 0 ? sw->n_ntok : 1, nt = sw->n_threads > 0 ? sw->n_threads : 1;
    for (int a = 0; a < nw; a++)
        for (int b = 0; b < ni; b++)
            for (int d = 0; d < nb; d++)
                for (int e = 0; e < ns; e++)
                    for (int f = 0; f < nn; f++)
                        for (int t = 0; t < nt; t++)
                            for (int i = 0; i < n_in; i++) {
                                gb_bench_config c = in[i];
                                bool changed = false;
#define SET(list, nlist, idx, field)                                                               \
    if ((nlist) > 0) {                                                                             \
        c.field = (list)[idx];                                                                     \
        changed = true;                                                                            \
    }
                                SET(sw->warmup, sw->n_warmup, a, warmup_iterations);
                                SET(sw->iterations, sw->n_iterations, b, measurement_iterations);
                                SET(sw->batch, sw->n_batch, d, batch_size);
                                SET(sw->seq, sw->n_seq, e, sequence_length);
                                SET(sw->ntok, sw->n_ntok, f, num_tokens_to_generate);
                                SET(sw->threads, sw->n_threads, t, threads);
#undef SET
                                if (sw->gpu_monitoring >= 0) {
                                    c.gpu_monitoring = sw->gpu_monitoring != 0;
                                    changed = true;
                                }
                                if (changed) {
                                    c.name_given = false;
                                    c.name[0] = '\0';
                                }
                                int rc = push(out, n_out, &cap, &c, err);
                                if (rc) {
                                    free(*out);
                                    *out = NULL;
                                    *n_out = 0;
                                    return rc;
                                }
                            }
    return GB_OK;
}
