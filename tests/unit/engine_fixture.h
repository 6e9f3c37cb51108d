/* Shared by the per-model engine tests (test_engine_<model>.c): builds a fixture model's
 * random-weight directory once per run (config.json + fixture.json from data/), loads the
 * Hugging Face references (tests/data/refs) and checks the engine against them in every
 * configuration: float32 x {eager, sdpa, flash} x {reference, kernelized} x {dynamic,
 * static cache}; then bfloat16 and float16 against the float32 reference. */
#ifndef GB_TEST_ENGINE_FIXTURE_H
#define GB_TEST_ENGINE_FIXTURE_H

#define _XOPEN_SOURCE 700
#include <cjson/cJSON.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "model/random.h"
#include "model/tensors.h"
#include "test.h"
#include "util/error.h"
#include "util/fileio.h"

static inline int fx_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* rm -rf */
static inline void fx_rmtree(const char *dir) {
    nftw(dir, fx_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline char *fx_read(const char *path, size_t *len) {
    gb_error err;
    char *d = NULL;
    size_t n = 0;
    if (gb_file_read_all(path, 0, &d, &n, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    if (len) *len = n;
    return d;
}

/* Writes the fixture model `name` into GB_TEST_TMP/engine-<name> (fresh each run). */
static inline char *fx_build_model(const char *name) {
    char *src_cfg = gb_strdup_printf("../data/fixture-models/%s/config.json", name);
    char *src_fx = gb_strdup_printf("../data/fixture-models/%s/fixture.json", name);
    char *out = gb_strdup_printf("%s/engine-%s", gb_test_tmp(), name);
    gb_error err;
    if (gb_mkdir_p(gb_test_tmp(), &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    fx_rmtree(out);
    size_t cl;
    char *cfg = fx_read(src_cfg, &cl), *fxt = fx_read(src_fx, NULL);
    cJSON *fj = cJSON_Parse(fxt);
    gb_random_model_options o = {0};
    const cJSON *seed = cJSON_GetObjectItem(fj, "seed"),
                *shard = cJSON_GetObjectItem(fj, "max_shard_bytes");
    if (cJSON_IsNumber(seed)) o.seed = (uint64_t)seed->valuedouble;
    if (cJSON_IsNumber(shard)) o.max_shard_bytes = (uint64_t)shard->valuedouble;
    if (gb_random_model_write(cfg, cl, &o, out, &err) != 0) {
        fprintf(stderr, "building %s: %s\n", name, err.msg);
        exit(1);
    }
    cJSON_Delete(fj);
    free(cfg), free(fxt), free(src_cfg), free(src_fx);
    return out;
}

typedef struct fx_ref {
    int32_t prompt[128];
    int n_prompt;
    int32_t top8_ids[128][8];
    float top8_logits[128][8];
    int32_t greedy[32];
    float margins[32];
    float *last_logits; /* [vocab] */
    size_t vocab;
} fx_ref;

static inline void fx_load_ref(const char *name, fx_ref *r) {
    char *path = gb_strdup_printf("%s/refs/%s.ref.json", gb_test_data(), name);
    char *txt = fx_read(path, NULL);
    cJSON *j = cJSON_Parse(txt);
    const cJSON *p = cJSON_GetObjectItem(j, "prompt_ids_128"), *e;
    r->n_prompt = 0;
    cJSON_ArrayForEach(e, p) r->prompt[r->n_prompt++] = (int32_t)e->valuedouble;
    const cJSON *ti = cJSON_GetObjectItem(j, "top8_ids"),
                *tl = cJSON_GetObjectItem(j, "top8_logits");
    for (int i = 0; i < 128; i++)
        for (int k = 0; k < 8; k++) {
            r->top8_ids[i][k] =
                (int32_t)cJSON_GetArrayItem(cJSON_GetArrayItem(ti, i), k)->valuedouble;
            r->top8_logits[i][k] =
                (float)cJSON_GetArrayItem(cJSON_GetArrayItem(tl, i), k)->valuedouble;
        }
    const cJSON *g = cJSON_GetObjectItem(j, "greedy32_fp32"),
                *mg = cJSON_GetObjectItem(j, "greedy32_margins");
    for (int i = 0; i < 32; i++) {
        r->greedy[i] = (int32_t)cJSON_GetArrayItem(g, i)->valuedouble;
        r->margins[i] = (float)cJSON_GetArrayItem(mg, i)->valuedouble;
    }
    char *lpath = gb_strdup_printf("%s/refs/%s", gb_test_data(),
                                   cJSON_GetObjectItem(j, "last_logits_file")->valuestring);
    size_t n;
    r->last_logits = (float *)fx_read(lpath, &n);
    r->vocab = n / 4;
    cJSON_Delete(j);
    free(txt), free(path), free(lpath);
}

static inline double fx_rel_l2(const float *got, const float *want, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        if (!isfinite(got[i])) return INFINITY;
        num += d * d;
        den += (double)want[i] * want[i];
    }
    return sqrt(num / den);
}

static const char *const fx_attn_name[] = {"eager", "sdpa", "flash_attention_2"};

typedef struct fx_case {
    gb_dtype dtype;
    gb_attn_impl attn;
    int kernelize, static_cache, use_mmap;
} fx_case;

static inline const char *fx_desc(const fx_case *c) {
    static char buf[128];
    snprintf(buf, sizeof buf, "%s %s %s %s%s", gb_dtype_name(c->dtype), fx_attn_name[c->attn],
             c->kernelize ? "kernelized" : "reference", c->static_cache ? "static" : "dynamic",
             c->use_mmap ? " mmap" : "");
    return buf;
}

static inline gb_model *fx_load(const char *dir, const fx_case *c) {
    gb_engine_options o;
    gb_engine_options_default(&o);
    o.dtype = c->dtype;
    o.attn = c->attn;
    o.kernelize = c->kernelize;
    o.static_cache = c->static_cache;
    o.use_mmap = c->use_mmap;
    gb_model *m = NULL;
    gb_error err;
    int rc = gb_model_load(dir, &o, &m, &err);
    CHECK_MSG(rc == 0, "load %s (%s): %s", dir, fx_desc(c), err.msg);
    return m;
}

/* Generation of `batch` copies of the prompt: last logits, greedy tokens, identical rows. */
static inline void fx_check_generate(gb_model *m, const fx_case *c, const fx_ref *r, int batch,
                                     int new_tokens, double tol, int check_tokens) {
    int32_t *prompt = malloc(sizeof(int32_t) * 128 * batch);
    for (int b = 0; b < batch; b++)
        memcpy(prompt + b * 128, r->prompt, sizeof r->prompt);
    int32_t *out = malloc(sizeof(int32_t) * batch * new_tokens);
    float *last = malloc(r->vocab * sizeof(float));
    gb_generate_params p = {.prompt_ids = prompt,
                            .batch = batch,
                            .prompt_len = 128,
                            .new_tokens = new_tokens,
                            .last_logits = last};
    gb_error err;
    int rc = gb_generate(m, &p, out, &err);
    CHECK_MSG(rc == 0, "generate (%s): %s", fx_desc(c), err.msg);
    if (rc == 0) {
        double rel = fx_rel_l2(last, r->last_logits, r->vocab);
        CHECK_MSG(rel <= tol, "%s: last-position logits relative L2 error %.3g > %.3g", fx_desc(c),
                  rel, tol);
        if (getenv("GB_TEST_VERBOSE")) fprintf(stderr, "  %s: rel L2 %.3g\n", fx_desc(c), rel);
        if (check_tokens) {
            for (int i = 0; i < new_tokens && i < 32; i++) {
                if (out[i] != r->greedy[i]) {
                    CHECK_MSG(r->margins[i] < 1e-3f,
                              "%s: greedy token %d: expected %d, got %d (reference margin %.3g)",
                              fx_desc(c), i, r->greedy[i], out[i], r->margins[i]);
                    break;
                }
                if (r->margins[i] < 1e-3f) break; /* beyond a near-tie the paths may part */
            }
        }
        for (int b = 1; b < batch; b++)
            CHECK_MSG(memcmp(out, out + b * new_tokens, sizeof(int32_t) * new_tokens) == 0,
                      "%s: batch row %d differs from row 0", fx_desc(c), b);
    }
    free(prompt), free(out), free(last);
}

/* A real batch: two different prompts in one call give what each gives alone. */
static inline void fx_check_mixed_batch(gb_model *m, const fx_case *c, const fx_ref *r) {
    enum { T = 40, N = 6 };
    int32_t prompts[2 * T], out2[2 * N], out1[N];
    for (int t = 0; t < T; t++) {
        prompts[t] = r->prompt[t];
        prompts[T + t] = r->prompt[127 - t];
    }
    gb_error err;
    gb_generate_params p = {.prompt_ids = prompts, .batch = 2, .prompt_len = T, .new_tokens = N};
    CHECK_OK(gb_generate(m, &p, out2, &err), &err);
    p.prompt_ids = prompts + T;
    p.batch = 1;
    CHECK_OK(gb_generate(m, &p, out1, &err), &err);
    CHECK_MSG(memcmp(out1, out2 + N, sizeof out1) == 0,
              "%s: batch row 1 [%d %d %d ...] differs from the same prompt alone [%d %d %d ...]",
              fx_desc(c), out2[N], out2[N + 1], out2[N + 2], out1[0], out1[1], out1[2]);
}

/* All-position logits: top-8 ids wherever the reference separates them by > 1e-3, and the
 * logit values at the reference ids. */
static inline void fx_check_top8(gb_model *m, const fx_case *c, const fx_ref *r, int npos) {
    float *logits = malloc(sizeof(float) * (size_t)npos * r->vocab);
    gb_error err;
    int rc = gb_model_forward_all(m, r->prompt, npos, logits, &err);
    CHECK_MSG(rc == 0, "forward_all (%s): %s", fx_desc(c), err.msg);
    int bad_ids = 0, bad_vals = 0, checked = 0;
    for (int p = 0; rc == 0 && p < npos; p++) {
        const float *l = logits + (size_t)p * r->vocab;
        int32_t mine[8]; /* our top 8, descending, first index on ties (one pass) */
        int have = 0;
        for (size_t v = 0; v < r->vocab; v++) {
            if (have == 8 && !(l[v] > l[mine[7]])) continue;
            int k = have < 8 ? have++ : 7;
            while (k > 0 && l[v] > l[mine[k - 1]]) {
                mine[k] = mine[k - 1];
                k--;
            }
            mine[k] = (int32_t)v;
        }
        for (int k = 0; k < 8; k++) {
            const float *rl = r->top8_logits[p];
            int sep =
                (k == 0 || rl[k - 1] - rl[k] > 1e-3f) && (k == 7 || rl[k] - rl[k + 1] > 1e-3f);
            if (k == 7) sep = 0; /* the 9th reference logit is unknown */
            if (sep) {
                checked++;
                if (mine[k] != r->top8_ids[p][k] && bad_ids++ < 3)
                    fprintf(stderr, "%s: position %d rank %d: expected id %d, got %d\n", fx_desc(c),
                            p, k, r->top8_ids[p][k], mine[k]);
            }
            float got = l[r->top8_ids[p][k]];
            if (fabsf(got - rl[k]) > 2e-3f && bad_vals++ < 3)
                fprintf(stderr, "%s: position %d id %d: expected logit %.6f, got %.6f\n",
                        fx_desc(c), p, r->top8_ids[p][k], rl[k], got);
        }
    }
    CHECK_MSG(bad_ids == 0 && bad_vals == 0 && (rc || checked > npos),
              "%s: top-8: %d id mismatches of %d checked, %d logit values off", fx_desc(c), bad_ids,
              checked, bad_vals);
    free(logits);
}

/* Weight and KV accounting against the tensor list. */
static inline void fx_check_memory(gb_model *m, gb_dtype dt) {
    gb_tensor_spec *specs;
    int count;
    gb_error err;
    if (gb_model_tensors(gb_model_get_config(m), &specs, &count, &err) != 0) return;
    size_t want = 0;
    for (int i = 0; i < count; i++)
        want += specs[i].ndim == 2
                    ? (size_t)(specs[i].shape[0] * specs[i].shape[1]) * gb_dtype_size(dt)
                    : (size_t)specs[i].shape[0] * 4;
    free(specs);
    gb_model_memory mem;
    gb_model_get_memory(m, &mem);
    CHECK_MSG(mem.weight_resident_bytes == want, "resident weight bytes: expected %zu, got %zu",
              want, mem.weight_resident_bytes);
    CHECK(mem.weight_bytes <= mem.weight_resident_bytes && mem.weight_bytes > 0);
}

static inline int fx_run(const char *name) {
    char *dir = fx_build_model(name);
    fx_ref r;
    fx_load_ref(name, &r);
    CHECK_EQ_INT(r.n_prompt, 128);

    /* Under the sanitizers (GB_SANITIZE=1, `make asan`) the same matrix runs with fewer
     * generated tokens and prompt positions: the point there is memory safety. */
    int light = getenv("GB_SANITIZE") != NULL;
    int ntok = light ? 8 : 32, npos = light ? 24 : 128;

    /* float32: every attention implementation x kernel set x cache mode */
    for (int attn = 0; attn < 3; attn++)
        for (int kern = 0; kern < 2; kern++)
            for (int stat = 0; stat < 2; stat++) {
                fx_case c = {GB_F32, (gb_attn_impl)attn, kern, stat, 0};
                gb_model *m = fx_load(dir, &c);
                if (!m) continue;
                fx_check_generate(m, &c, &r, 3, ntok, 1e-4, 1);
                if (stat) { /* a second run reuses the static cache and buffers */
                    fx_check_generate(m, &c, &r, 3, 4, 1e-4, 1);
                    gb_model_memory mem;
                    gb_model_get_memory(m, &mem);
                    const gb_model_config *cfg = gb_model_get_config(m);
                    size_t kv = (size_t)2 * cfg->num_layers * 3 * (128 + 4) * cfg->num_kv_heads *
                                cfg->head_dim * 4;
                    CHECK_MSG(mem.kv_bytes == kv, "kv bytes: expected %zu, got %zu", kv,
                              mem.kv_bytes);
                } else {
                    fx_check_top8(m, &c, &r, npos);
                }
                if (attn == 0 && kern == 0 && stat == 0) fx_check_memory(m, GB_F32);
                if ((attn == 1 && !kern && !stat) || (attn == 2 && kern && stat))
                    fx_check_mixed_batch(m, &c, &r);
                gb_model_free(m);
            }

    /* 16-bit compute against the float32 reference */
    static const fx_case half[] = {{GB_BF16, GB_ATTN_SDPA, 0, 0, 0},
                                   {GB_BF16, GB_ATTN_SDPA, 0, 0, 1},
                                   {GB_BF16, GB_ATTN_FLASH, 1, 1, 0},
                                   {GB_F16, GB_ATTN_SDPA, 0, 0, 0},
                                   {GB_F16, GB_ATTN_EAGER, 1, 1, 0}};
    for (size_t i = 0; i < sizeof half / sizeof half[0]; i++) {
        gb_model *m = fx_load(dir, &half[i]);
        if (!m) continue;
        fx_check_generate(m, &half[i], &r, 1, 2, 3e-2, 0);
        if (i == 0) fx_check_memory(m, GB_BF16);
        gb_model_free(m);
    }
    free(r.last_logits);
    fx_rmtree(dir);
    free(dir);
    TEST_MAIN_END();
}

#endif
