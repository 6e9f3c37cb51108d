/* Runner + results file with a fake engine (no model needed): file layout and key order,
 * hash = SHA-256 of the serialized config, statistics recomputed from the raw lists, token
 * timestamps, prompt truncation, error isolation (a failing load and a wrong token count in
 * the middle of a sweep), duplicate skipping, atomic saving, profiling trace, the
 * continuous-batching note (CUDA only). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench/config.h"
#include "bench/gpu_ceilings.h"
#include "bench/report.h"
#include "bench/results.h"
#include "bench/runner.h"
#include "bench/stats.h"
#include "test.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/hash.h"

typedef struct fake_model {
    int batch;
    bool short_by_one; /* generates one token too few (token-count check) */
} fake_model;

static int f_tok_load(const char *dir, void **tok, gb_error *err) {
    (void)dir;
    (void)err;
    *tok = malloc(1);
    return 0;
}
static void f_tok_free(void *t) {
    free(t);
}
/* One token per byte of the text, plus a BOS of 1. */
static int f_encode(void *tok, const char *text, size_t len, int32_t **ids, size_t *n,
                    gb_error *err) {
    (void)tok;
    (void)err;
    *ids = malloc((len + 1) * sizeof **ids);
    (*ids)[0] = 1;
    for (size_t i = 0; i < len; i++)
        (*ids)[i + 1] = (unsigned char)text[i];
    *n = len + 1;
    return 0;
}
static int f_decode(void *tok, const int32_t *ids, size_t n, char **text, gb_error *err) {
    (void)tok;
    (void)err;
    *text = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        (*text)[i] = (char)('a' + ids[i] % 26);
    (*text)[n] = '\0';
    return 0;
}
static int32_t f_pad(void *tok) {
    (void)tok;
    return -1;
}
static int f_load(const char *dir, const gb_bench_config *c, gb_bench_trace_fn trace, void *tu,
                  void **model, gb_error *err) {
    (void)dir;
    (void)trace;
    (void)tu;
    if (c->batch_size == 3) return gb_error_set(err, GB_ERR_FORMAT, "model.safetensors: corrupt");
    fake_model *m = calloc(1, sizeof *m);
    m->batch = c->batch_size;
    m->short_by_one = c->num_tokens_to_generate == 7;
    *model = m;
    return 0;
}
static void f_free(void *m) {
    free(m);
}
static int f_generate(void *model, const int32_t *prompt, int batch, int plen, int n,
                      gb_bench_token_fn on_token, void *user, int32_t *out, gb_error *err) {
    (void)prompt;
    (void)plen;
    (void)err;
    fake_model *m = model;
    int steps = m->short_by_one ? n - 1 : n;
    for (int s = 0; s < steps; s++) {
        int64_t until = gb_clock_ns() + 20000; /* 20 us per step */
        while (gb_clock_ns() < until) {
        }
        for (int b = 0; b < batch; b++)
            out[(size_t)b * n + s] = s + 2;
        on_token(user, s, out + s, batch, gb_clock_ns());
    }
    return 0;
}
static void f_info(void *model, gb_bench_model_info *mi) {
    (void)model;
    memset(mi, 0, sizeof *mi);
    snprintf(mi->architecture, sizeof mi->architecture, "FakeForCausalLM");
    mi->num_params = 1000;
    mi->num_layers = 2;
    mi->hidden_size = 8;
    mi->intermediate_size = 16;
    mi->num_heads = 2;
    mi->num_kv_heads = 1;
    mi->head_dim = 4;
    mi->vocab_size = 32;
    mi->gated_mlp = 1;
    mi->weight_bytes = 2000;
    mi->kv_bytes_per_element = 4;
}

static const gb_bench_engine_ops fake_ops = {f_tok_load, f_tok_free, f_encode,   f_decode, f_pad,
                                             f_load,     f_free,     f_generate, f_info};

/* A fake GPU for the runner's ceilings lookup: devices 0 and 1, copy 3000 + 100 * device GB/s. */
static int gpu_measures = 0;
static int g_identify(void *user, int device, gb_gpu_ceilings *out, gb_error *err) {
    (void)user;
    memset(out, 0, sizeof *out);
    if (device < 0 || device > 1) return gb_error_set(err, GB_ERR_DEVICE, "no device %d", device);
    out->device = device;
    snprintf(out->gpu_name, sizeof out->gpu_name, "Fake GPU");
    snprintf(out->driver_version, sizeof out->driver_version, "1.0");
    return 0;
}
static int g_measure(void *user, int device, int quick, gb_gpu_ceilings *out, gb_error *err) {
    GB_TRY(g_identify(user, device, out, err));
    gpu_measures++;
    out->copy_gbs = 3000 + 100 * device;
    out->bf16_tflops = 700, out->fp16_tflops = 650, out->fp32_tflops = 50;
    out->quick = quick;
    out->runs = 1;
    return 0;
}

static int n_logs_skip = 0;
static void log_cb(void *u, int level, const char *msg) {
    (void)u;
    (void)level;
    if (strstr(msg, "Skipping duplicate")) n_logs_skip++;
}

static void check_keys(const cJSON *obj, const char *const *keys, int n, const char *what) {
    const cJSON *c = obj ? obj->child : NULL;
    for (int i = 0; i < n; i++) {
        CHECK_MSG(c && !strcmp(c->string, keys[i]), "%s key %d: expected %s, got %s", what, i,
                  keys[i], c ? c->string : "(end)");
        if (c) c = c->next;
    }
    CHECK_MSG(c == NULL, "%s: extra key %s", what, c ? c->string : "");
}

static void nums(const cJSON *arr, double *out, int *n) {
    *n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, arr) out[(*n)++] = c->valuedouble;
}

int main(void) {
    gb_error err;
    char dir[1024], model[1100], outdir[1100], cmd[2400];
    snprintf(dir, sizeof dir, "%s/runner", gb_test_tmp());
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    snprintf(model, sizeof model, "%s/org/model", dir);
    CHECK_OK(gb_mkdir_p(model, &err), &err);
    snprintf(cmd, sizeof cmd, "%s/config.json", model);
    CHECK_OK(gb_file_write_atomic(cmd, "{}", 2, &err), &err);
    snprintf(outdir, sizeof outdir, "%s/out", dir);

    /* Sweep: b1 n8 (ok), b3 (load fails), b1 n8 again (duplicate), b2 n7 (short), b2 n8 s4096
     * (prompt shorter than sequence_length). */
    gb_bench_config c[5];
    for (int i = 0; i < 5; i++) {
        gb_bench_config_default(&c[i]);
        snprintf(c[i].device, sizeof c[i].device, "cpu");
        c[i].threads = 1;
        c[i].warmup_iterations = 1;
        c[i].measurement_iterations = 4;
        c[i].num_tokens_to_generate = 8;
        c[i].sequence_length = 16;
        c[i].gpu_monitoring = false;
    }
    c[1].batch_size = 3;
    c[3].batch_size = 2;
    c[3].num_tokens_to_generate = 7;
    c[4].batch_size = 2;
    c[4].sequence_length = 4096;
    gb_runner_options o = {0};
    o.output_dir = outdir;
    o.commit_id = "abc123";
    o.branch_name = "br";
    o.ops = &fake_ops;
    o.log = log_cb;
    o.num_tokens_to_profile = 3;
    gb_bench_results r;
    int failed = 0;
    CHECK_OK(gb_runner_run(model, c, 5, &o, &r, &failed, &err), &err);
    CHECK_EQ_INT(failed, 2);
    CHECK_EQ_INT(r.n_entries, 4);
    CHECK_EQ_INT(n_logs_skip, 1);
    CHECK(r.path && strstr(r.path, "_org_model_benchmark_") != NULL);

    /* Read the file back. */
    char *text;
    size_t len;
    CHECK_OK(gb_file_read_all(r.path, 0, &text, &len, &err), &err);
    cJSON *root = cJSON_Parse(text);
    CHECK(root != NULL);
    CHECK(strstr(text, "\n    \"") != NULL);           /* 4-space indentation */
    CHECK(strstr(text, "\"e2e_latency\": [") != NULL); /* numeric arrays inline */
    CHECK_EQ_INT(cJSON_GetArraySize(root), 4);
    int idx = 0;
    const cJSON *ent;
    cJSON_ArrayForEach(ent, root) {
        static const char *const ek[] = {"metadata", "measurements", "config", "statistics",
                                         "genbench"};
        check_keys(ent, ek, 5, "entry");
        static const char *const mk[] = {"model_id",  "timestamp",      "branch_name",
                                         "commit_id", "commit_message", "hardware_info",
                                         "success"};
        const cJSON *md = cJSON_GetObjectItem(ent, "metadata");
        check_keys(md, mk, 7, "metadata");
        static const char *const sk[] = {"e2e_latency",         "time_to_first_token",
                                         "inter_token_latency", "shape_and_decoded_outputs",
                                         "gpu_metrics",         "timestamps"};
        const cJSON *ms = cJSON_GetObjectItem(ent, "measurements");
        check_keys(ms, sk, 6, "measurements");
        CHECK_STR(cJSON_GetObjectItem(md, "commit_id")->valuestring, "abc123");
        CHECK_STR(cJSON_GetObjectItem(md, "branch_name")->valuestring, "br");
        CHECK(cJSON_IsNull(cJSON_GetObjectItem(md, "commit_message")));
        /* Hash = SHA-256 of the config serialized like json.dumps. */
        gb_bench_config pc;
        CHECK_OK(gb_bench_config_from_json(cJSON_GetObjectItem(ent, "config"), "file", &pc, &err),
                 &err);
        char *ser = gb_bench_config_serialize(&pc);
        char h[65];
        gb_sha256_hex(ser, strlen(ser), h);
        CHECK_STR(h, ent->string);
        free(ser);
        bool ok = cJSON_IsTrue(cJSON_GetObjectItem(md, "success"));
        const cJSON *gbo = cJSON_GetObjectItem(ent, "genbench");
        const cJSON *er = cJSON_GetObjectItem(gbo, "error");
        if (idx == 0 || idx == 3) {
            CHECK(ok);
            CHECK(cJSON_IsNull(er));
            double e2e[32], ttft[32], itl[32];
            int ne, nt, ni;
            nums(cJSON_GetObjectItem(ms, "e2e_latency"), e2e, &ne);
            nums(cJSON_GetObjectItem(ms, "time_to_first_token"), ttft, &nt);
            nums(cJSON_GetObjectItem(ms, "inter_token_latency"), itl, &ni);
            CHECK_EQ_INT(ne, 4);
            CHECK_EQ_INT(nt, 4);
            CHECK_EQ_INT(ni, 4);
            /* Timestamps: [iter][row][token], 8 per run, TTFT = first, ITL from ends. */
            const cJSON *ts = cJSON_GetObjectItem(ms, "timestamps");
            CHECK_EQ_INT(cJSON_GetArraySize(ts), 4);
            for (int i = 0; i < 4 && i < cJSON_GetArraySize(ts); i++) {
                const cJSON *row = cJSON_GetArrayItem(cJSON_GetArrayItem(ts, i), 0);
                double t[64];
                int n;
                nums(row, t, &n);
                CHECK_EQ_INT(n, 8);
                CHECK(fabs(t[0] - ttft[i]) < 1e-12);
                CHECK(fabs((t[7] - t[0]) / 7 - itl[i]) < 1e-12);
                CHECK(t[7] <= e2e[i] && t[0] > 0);
                for (int k = 1; k < n; k++)
                    CHECK(t[k] >= t[k - 1]);
            }
            /* Statistics recomputed from the raw lists. */
            const cJSON *st = cJSON_GetObjectItem(ent, "statistics");
            gb_stats s;
            gb_stats_compute(e2e, 4, &s);
            const cJSON *se = cJSON_GetObjectItem(st, "e2e_latency");
            CHECK(fabs(cJSON_GetObjectItem(se, "median")->valuedouble - s.median) < 1e-15);
            CHECK(fabs(cJSON_GetObjectItem(se, "p90")->valuedouble - s.p90) < 1e-15);
            CHECK(fabs(cJSON_GetObjectItem(se, "std")->valuedouble - s.std) < 1e-15);
            CHECK_EQ_INT(cJSON_GetObjectItem(se, "count")->valueint, 4);
            double tp[4];
            for (int i = 0; i < 4; i++)
                tp[i] = pc.batch_size * 8 / e2e[i];
            gb_stats_compute(tp, 4, &s);
            const cJSON *stp = cJSON_GetObjectItem(st, "throughput");
            CHECK(fabs(cJSON_GetObjectItem(stp, "mean")->valuedouble - s.mean) < 1e-9 * s.mean);
            /* Decoded output of row 0 with its shape. */
            const cJSON *dec = cJSON_GetObjectItem(ms, "shape_and_decoded_outputs");
            char want[64];
            snprintf(want, sizeof want, "(%d, 8) | cdefghij", pc.batch_size);
            CHECK_STR(cJSON_GetArrayItem(dec, 0)->valuestring, want);
            /* Prompt length recorded: 2056 bytes + BOS = 2057 tokens. */
            const cJSON *pr = cJSON_GetObjectItem(gbo, "prompt");
            CHECK_EQ_INT(cJSON_GetObjectItem(pr, "prompt_tokens_untruncated")->valueint, 2057);
            CHECK_EQ_INT(cJSON_GetObjectItem(pr, "prompt_length")->valueint, idx == 0 ? 16 : 2057);
            /* Efficiency present; profile trace written. */
            CHECK(cJSON_IsObject(cJSON_GetObjectItem(gbo, "efficiency")));
            const cJSON *pt = cJSON_GetObjectItem(gbo, "profile_trace");
            CHECK(cJSON_IsString(pt));
            if (cJSON_IsString(pt)) {
                char *tt;
                size_t tl;
                CHECK_OK(gb_file_read_all(pt->valuestring, 0, &tt, &tl, &err), &err);
                cJSON *tj = cJSON_Parse(tt);
                const cJSON *ev = cJSON_GetObjectItem(tj, "traceEvents");
                /* 6 metadata events + generate + 3 steps */
                CHECK_EQ_INT(cJSON_GetArraySize(ev), 10);
                cJSON_Delete(tj);
                free(tt);
            }
        } else {
            CHECK(!ok);
            CHECK(cJSON_IsString(er));
            CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(ms, "e2e_latency")), 0);
            if (idx == 1) CHECK(cJSON_IsString(er) && strstr(er->valuestring, "corrupt") != NULL);
            if (idx == 2)
                CHECK_MSG(cJSON_IsString(er) &&
                              strstr(er->valuestring, "Generated 6 tokens, expected 7"),
                          "%s", cJSON_IsString(er) ? er->valuestring : "?");
        }
        idx++;
    }
    cJSON_Delete(root);
    free(text);
    /* No temporary files left behind by the atomic writes. */
    snprintf(cmd, sizeof cmd, "test -z \"$(find '%s' -name '*.tmp.*')\"", outdir);
    CHECK(system(cmd) == 0);

    /* Summarized form drops per-token timestamps. */
    char *sum = gb_bench_results_serialize(&r, true);
    cJSON *sj = cJSON_Parse(sum);
    CHECK(cJSON_IsNull(
        cJSON_GetObjectItem(cJSON_GetObjectItem(sj->child, "measurements"), "timestamps")));
    cJSON_Delete(sj);
    free(sum);
    gb_bench_results_free(&r);

    /* Continuous batching: the engine schedules it on CPU and CUDA alike, so no config gets
     * a note about a fallback (there is none: a backend without the paged ops fails). */
    {
        gb_bench_config cb[2] = {c[0], c[0]};
        cb[0].continuous_batching = cb[1].continuous_batching = true;
        snprintf(cb[1].device, sizeof cb[1].device, "cuda");
        for (int i = 0; i < 2; i++) {
            cb[i].name_given = false;
            cb[i].name[0] = '\0';
            cb[i].measurement_iterations = 1;
            cb[i].warmup_iterations = 0;
        }
        o.num_tokens_to_profile = 0;
        CHECK_OK(gb_runner_run(model, cb, 2, &o, &r, &failed, &err), &err);
        CHECK_EQ_INT(r.n_entries, 2);
        for (int i = 0; i < r.n_entries && i < 2; i++) {
            int static_note = 0;
            for (int k = 0; k < r.entries[i].n_notes; k++)
                static_note |= strstr(r.entries[i].notes[k], "one static batch") != NULL;
            CHECK_MSG(static_note == 0, "%s: static-batch note %d", r.entries[i].config.device,
                      static_note);
            CHECK(r.entries[i].config.continuous_batching);
        }
        gb_bench_results_free(&r);
    }

    /* CUDA configs: efficiency shares against the GPU's copy bandwidth and the dtype's
     * matmul peak (fake GPU), measured once per device and then read from the cache. */
    {
        char xdg[1200];
        snprintf(xdg, sizeof xdg, "%s/xdg", dir);
        setenv("XDG_CACHE_HOME", xdg, 1);
        gb_gpu_probe probe = {g_identify, g_measure, NULL};
        gb_bench_config gc[3] = {c[0], c[0], c[0]};
        snprintf(gc[0].device, sizeof gc[0].device, "cuda");
        snprintf(gc[1].device, sizeof gc[1].device, "cuda:1");
        snprintf(gc[1].dtype, sizeof gc[1].dtype, "float32");
        snprintf(gc[2].device, sizeof gc[2].device, "cuda:7"); /* no such device */
        for (int i = 0; i < 3; i++) {
            gc[i].name_given = false;
            gc[i].name[0] = '\0';
            gc[i].measurement_iterations = 2;
            gc[i].warmup_iterations = 0;
        }
        gb_runner_options go = o;
        go.num_tokens_to_profile = 0;
        go.measure_ceilings = true;
        go.gpu_probe = &probe;
        for (int round = 0; round < 2; round++) {
            CHECK_OK(gb_runner_run(model, gc, 3, &go, &r, &failed, &err), &err);
            CHECK_EQ_INT(gpu_measures, 2); /* devices 0 and 1, in the first round only */
            CHECK_EQ_INT(r.n_entries, 3);
            for (int i = 0; i < r.n_entries && i < 3; i++) {
                const gb_bench_efficiency *f = &r.entries[i].eff;
                CHECK(r.entries[i].have_efficiency);
                if (i == 0) {
                    CHECK(f->machine_bandwidth_gbs == 3000);
                    CHECK(f->machine_matrix_peak_flops == 700e12);
                    CHECK_STR(f->peak_kind, "bf16");
                } else if (i == 1) {
                    CHECK(f->machine_bandwidth_gbs == 3100);
                    CHECK(f->machine_matrix_peak_flops == 50e12);
                    CHECK_STR(f->peak_kind, "fp32");
                } else {
                    CHECK(f->machine_bandwidth_gbs == 0 && f->machine_matrix_peak_flops == 0);
                }
            }
            char *txt = gb_bench_results_serialize(&r, true);
            CHECK(txt && strstr(txt, "\"matrix_peak_kind\": \"fp32\"") != NULL);
            free(txt);
            txt = gb_report_summary(&r, 1, 1.0);
            CHECK_MSG(txt && strstr(txt, "of the 3000.0 GB/s measured (device copy)") &&
                          strstr(txt, "of the 700.0 TFLOP/s bf16 peak"),
                      "%s", txt ? txt : "(null)");
            free(txt);
            gb_bench_results_free(&r);
        }
        unsetenv("XDG_CACHE_HOME");
    }

    /* A missing model: every config fails with the searched places, and the file is saved. */
    o.num_tokens_to_profile = 0;
    setenv("HF_HUB_OFFLINE", "1", 1);
    CHECK_OK(gb_runner_run("nobody/nothing", c, 1, &o, &r, &failed, &err), &err);
    CHECK_EQ_INT(failed, 1);
    CHECK(r.n_entries == 1 && r.entries[0].error &&
          strstr(r.entries[0].error, "models--nobody--nothing"));
    gb_bench_results_free(&r);
    TEST_MAIN_END();
}
