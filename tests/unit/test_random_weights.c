/* Random-weight models: the six fixture models regenerated bit for bit (fnv1a64 of every
 * tensor, read back through the safetensors reader, against tests/data/refs/<name>.ref.json,
 * computed by the reference implementation outside genbench), sharding and index against
 * fixture.json, and other seeds/shapes against an independent Python oracle
 * (tests/tools/random_weights_ref.py, stdlib only). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "model/config.h"
#include "model/presets.h"
#include "model/random.h"
#include "model/random_kernels.h"
#include "model/tensors.h"
#include "test.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/hash.h"

static char *read_text(const char *path) {
    char *s = NULL;
    size_t n = 0;
    gb_error err = {0};
    if (gb_file_read_all(path, 0, &s, &n, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    return s;
}

static cJSON *read_json(const char *path) {
    char *s = read_text(path);
    if (!s) return NULL;
    cJSON *j = cJSON_Parse(s);
    free(s);
    if (!j) fprintf(stderr, "%s: bad JSON\n", path);
    return j;
}

static void rm_rf(const char *dir) {
    char *cmd = gb_strdup_printf("rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "rm -rf %s failed\n", dir);
    free(cmd);
}

static void hex64(uint64_t h, char out[17]) {
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* Regenerates one fixture model and compares it with its reference file. */
static void check_fixture(const char *name, const char *tmp) {
    char *dir = gb_strdup_printf("../data/fixture-models/%s", name);
    char *cfg_path = gb_strdup_printf("%s/config.json", dir);
    char *fx_path = gb_strdup_printf("%s/fixture.json", dir);
    char *ref_path = gb_strdup_printf("%s/refs/%s.ref.json", gb_test_data(), name);
    char *out = gb_strdup_printf("%s/%s", tmp, name);
    char *cfg_text = read_text(cfg_path);
    cJSON *fx = read_json(fx_path), *ref = read_json(ref_path);
    CHECK(cfg_text && fx && ref);
    if (!cfg_text || !fx || !ref) goto done;

    const cJSON *seed_j = cJSON_GetObjectItem(fx, "seed");
    const cJSON *msb_j = cJSON_GetObjectItem(fx, "max_shard_bytes");
    const cJSON *tok_j = cJSON_GetObjectItem(fx, "tokenizer");
    gb_random_model_options opts = {0};
    opts.seed = cJSON_IsNumber(seed_j) ? (uint64_t)seed_j->valuedouble : 0;
    opts.max_shard_bytes = cJSON_IsNumber(msb_j) ? (uint64_t)msb_j->valuedouble : 0;
    char *tok_dir = gb_strdup_printf("../data/tokenizers/%s", tok_j->valuestring);
    opts.tokenizer_dir = tok_dir;
    rm_rf(out);
    gb_error err = {0};
    CHECK_OK(gb_random_model_write(cfg_text, strlen(cfg_text), &opts, out, &err), &err);
    free(tok_dir);

    gb_weights *w = NULL;
    CHECK_OK(gb_weights_open(out, &w, &err), &err);
    if (!w) goto done;
    const cJSON *tensors = cJSON_GetObjectItem(ref, "tensors");
    int nref = cJSON_GetArraySize(tensors);
    CHECK_MSG(nref > 0, "%s: no tensors in the reference", name);
    CHECK_MSG(gb_weights_count(w) == nref, "%s: expected %d tensors, got %d", name, nref,
              gb_weights_count(w));

    /* Expected shards, from the reference shapes and fixture.json's limit alone. */
    uint64_t total = 0, cur = 0;
    int shard = 0;
    int *shard_of = calloc((size_t)nref + 1, sizeof *shard_of);
    for (int i = 0; i < nref; i++) {
        const cJSON *t = cJSON_GetArrayItem(tensors, i);
        const cJSON *shape = cJSON_GetObjectItem(t, "shape");
        uint64_t nb = 2;
        for (int d = 0; d < cJSON_GetArraySize(shape); d++)
            nb *= (uint64_t)cJSON_GetArrayItem(shape, d)->valuedouble;
        if (opts.max_shard_bytes && cur > 0 && cur + nb > opts.max_shard_bytes) {
            shard++;
            cur = 0;
        }
        cur += nb;
        total += nb;
        shard_of[i] = shard;
    }
    int nshards = shard + 1;
    CHECK_EQ_INT((long long)gb_weights_total_bytes(w), (long long)total);

    int mismatches = 0;
    for (int i = 0; i < nref; i++) {
        const cJSON *t = cJSON_GetArrayItem(tensors, i);
        const char *tname = cJSON_GetObjectItem(t, "name")->valuestring;
        const char *want = cJSON_GetObjectItem(t, "fnv1a64")->valuestring;
        const char *dtype = cJSON_GetObjectItem(t, "dtype")->valuestring;
        const cJSON *shape = cJSON_GetObjectItem(t, "shape");
        const gb_tensor_view *v = gb_weights_find(w, tname);
        CHECK_MSG(v != NULL, "%s: tensor %s missing", name, tname);
        if (!v) continue;
        const gb_tensor_view *at = gb_weights_at(w, i);
        CHECK_MSG(at && !strcmp(at->name, tname), "%s: tensor %d: expected %s, got %s", name, i,
                  tname, at ? at->name : "(none)");
        CHECK_STR(gb_dtype_st_name(v->dtype), dtype);
        CHECK_EQ_INT(v->ndim, cJSON_GetArraySize(shape));
        for (int d = 0; d < v->ndim && d < cJSON_GetArraySize(shape); d++)
            CHECK_EQ_INT(v->shape[d], (long long)cJSON_GetArrayItem(shape, d)->valuedouble);
        char got[17];
        hex64(gb_fnv1a64(v->data, v->nbytes), got);
        if (strcmp(got, want)) mismatches++;
        CHECK_MSG(!strcmp(got, want), "%s: %s fnv1a64 expected %s, got %s", name, tname, want, got);
        if (nshards > 1) {
            char shard_name[64];
            snprintf(shard_name, sizeof shard_name, "model-%05d-of-%05d.safetensors",
                     shard_of[i] + 1, nshards);
            const char *base = strrchr(v->file, '/');
            CHECK_MSG(base && !strcmp(base + 1, shard_name), "%s: %s in %s, expected %s", name,
                      tname, v->file, shard_name);
        }
    }
    fprintf(stderr, "%s: %d tensors, %d shard(s), %d hash mismatches\n", name, nref, nshards,
            mismatches);

    /* Files of a complete model directory. */
    char *p = gb_strdup_printf("%s/model.safetensors", out);
    CHECK_MSG(gb_is_file(p) == (nshards == 1), "%s: model.safetensors presence", name);
    free(p);
    static const char *files[] = {"config.json", "generation_config.json", "tokenizer.json",
                                  "tokenizer_config.json"};
    for (int i = 0; i < 4; i++) {
        p = gb_strdup_printf("%s/%s", out, files[i]);
        CHECK_MSG(gb_is_file(p), "%s missing", p);
        free(p);
    }
    p = gb_strdup_printf("%s/config.json", out);
    char *copy = read_text(p);
    CHECK_MSG(copy && !strcmp(copy, cfg_text), "%s: config.json not kept verbatim", name);
    free(copy);
    free(p);
    gb_model_config cfg;
    p = gb_strdup_printf("%s/config.json", out);
    CHECK_OK(gb_model_config_load(p, &cfg, &err), &err);
    free(p);

    p = gb_strdup_printf("%s/model.safetensors.index.json", out);
    if (nshards > 1) {
        cJSON *idx = read_json(p);
        CHECK_MSG(idx != NULL, "%s: index missing", name);
        if (idx) {
            const cJSON *md = cJSON_GetObjectItem(idx, "metadata");
            const cJSON *ts = cJSON_GetObjectItem(md, "total_size");
            CHECK_MSG(cJSON_IsNumber(ts) && (uint64_t)ts->valuedouble == total,
                      "%s: index total_size expected %llu", name, (unsigned long long)total);
            const cJSON *wm = cJSON_GetObjectItem(idx, "weight_map");
            CHECK_EQ_INT(cJSON_GetArraySize(wm), nref);
            for (int i = 0; i < nref; i++) {
                const char *tname =
                    cJSON_GetObjectItem(cJSON_GetArrayItem(tensors, i), "name")->valuestring;
                char shard_name[64];
                snprintf(shard_name, sizeof shard_name, "model-%05d-of-%05d.safetensors",
                         shard_of[i] + 1, nshards);
                const cJSON *e = cJSON_GetObjectItem(wm, tname);
                CHECK_MSG(cJSON_IsString(e) && !strcmp(e->valuestring, shard_name),
                          "%s: weight_map[%s] expected %s", name, tname, shard_name);
            }
            cJSON_Delete(idx);
        }
    } else {
        CHECK_MSG(!gb_is_file(p), "%s: unexpected index for a single shard", name);
    }
    free(p);
    free(shard_of);
    gb_weights_free(w);
    rm_rf(out);
done:
    free(cfg_text);
    cJSON_Delete(fx);
    cJSON_Delete(ref);
    free(dir);
    free(cfg_path);
    free(fx_path);
    free(ref_path);
    free(out);
}

/* Other seeds and shapes: our files against the Python oracle's hashes. */
static void check_oracle(const char *label, const char *config, uint64_t seed, uint64_t max_shard,
                         const char *tmp) {
    char *cfg_path = gb_strdup_printf("%s/%s.config.json", tmp, label);
    char *out = gb_strdup_printf("%s/%s", tmp, label);
    gb_error err = {0};
    CHECK_OK(gb_file_write_atomic(cfg_path, config, strlen(config), &err), &err);
    rm_rf(out);
    gb_random_model_options opts = {.seed = seed, .max_shard_bytes = max_shard};
    CHECK_OK(gb_random_model_write(config, strlen(config), &opts, out, &err), &err);
    gb_weights *w = NULL;
    CHECK_OK(gb_weights_open(out, &w, &err), &err);
    char *cmd = gb_strdup_printf("python3 tools/random_weights_ref.py '%s' %llu", cfg_path,
                                 (unsigned long long)seed);
    FILE *f = popen(cmd, "r");
    CHECK_MSG(f != NULL, "cannot run %s", cmd);
    int lines = 0, mismatches = 0;
    char line[512];
    while (f && w && fgets(line, sizeof line, f)) {
        char name[256], want[32];
        if (sscanf(line, "%255s %31s", name, want) != 2) continue;
        const gb_tensor_view *v = gb_weights_find(w, name);
        CHECK_MSG(v != NULL, "%s: oracle tensor %s missing from our model", label, name);
        if (v) {
            const gb_tensor_view *at = gb_weights_at(w, lines);
            CHECK_MSG(at == v, "%s: %s not at position %d", label, name, lines);
            char got[17];
            hex64(gb_fnv1a64(v->data, v->nbytes), got);
            if (strcmp(got, want)) mismatches++;
            CHECK_MSG(!strcmp(got, want), "%s: %s fnv1a64 expected %s (oracle), got %s", label,
                      name, want, got);
        }
        lines++;
    }
    int st = f ? pclose(f) : -1;
    CHECK_MSG(st == 0, "%s: oracle exited with status %d", cmd, st);
    CHECK_MSG(lines > 0 && w && lines == gb_weights_count(w),
              "%s: oracle listed %d tensors, model has %d", label, lines, gb_weights_count(w));
    fprintf(stderr, "%s (seed %llu): %d tensors vs oracle, %d mismatches\n", label,
            (unsigned long long)seed, lines, mismatches);
    gb_weights_free(w);
    rm_rf(out);
    unlink(cfg_path);
    free(cmd);
    free(cfg_path);
    free(out);
}

/* Any split of a tensor into ranges gives the same values as one pass. */
static void check_chunking(void) {
    gb_tensor_spec s = {
        .name = "x.weight", .ndim = 2, .shape = {37, 11}, .kind = GB_KIND_MATRIX, .fan_in = 11};
    uint16_t whole[407], part[407];
    gb_random_fill_bf16(&s, 5, 0, 407, whole);
    gb_random_fill_bf16(&s, 5, 0, 100, part);
    gb_random_fill_bf16(&s, 5, 100, 1, part + 100);
    gb_random_fill_bf16(&s, 5, 101, 306, part + 101);
    CHECK(!memcmp(whole, part, sizeof whole));
    /* Seeds and names change the stream. */
    gb_random_fill_bf16(&s, 6, 0, 407, part);
    CHECK(memcmp(whole, part, sizeof whole) != 0);
    /* Values stay within the kind's range: |v| <= sqrt(3/11) for a matrix. */
    float lim = sqrtf(3.0f / 11.0f) * 1.01f;
    int ok = 1;
    for (int i = 0; i < 407; i++)
        ok &= fabsf(gb_bf16_to_f32(whole[i])) <= lim;
    CHECK(ok);
}

/* random:<preset> cache: created once under $XDG_CACHE_HOME/genbench/models/<preset>, by
 * several processes at once without corruption, then reused. */
static void check_preset_cache(const char *tmp) {
    char *cache = gb_strdup_printf("%s/xdg", tmp);
    setenv("XDG_CACHE_HOME", cache, 1);
    /* A temporary directory of a creator that died (a reaped child's pid) is cleaned up. */
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    char *stale = gb_strdup_printf("%s/genbench/models/tiny-qwen2.tmp-%ld-0", cache, (long)dead);
    gb_error e0 = {0};
    CHECK_OK(gb_mkdir_p(stale, &e0), &e0);
    char *junk = gb_strdup_printf("%s/model.safetensors", stale);
    CHECK_OK(gb_file_write_atomic(junk, "x", 1, &e0), &e0);
    free(junk);
    free(stale);
    enum { NPROC = 3 };
    pid_t kids[NPROC];
    for (int i = 0; i < NPROC; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            char dir[4096];
            gb_error err = {0};
            int rc = gb_preset_ensure("tiny-qwen2", dir, sizeof dir, &err);
            if (rc) fprintf(stderr, "child %d: %s\n", i, err.msg);
            _exit(rc ? 1 : 0);
        }
    }
    for (int i = 0; i < NPROC; i++) {
        int st = -1;
        CHECK(kids[i] > 0 && waitpid(kids[i], &st, 0) == kids[i]);
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "concurrent creator %d failed", i);
    }
    char dir[4096];
    gb_error err = {0};
    CHECK_OK(gb_preset_ensure("tiny-qwen2", dir, sizeof dir, &err), &err);
    char *want = gb_strdup_printf("%s/genbench/models/tiny-qwen2", cache);
    CHECK_STR(dir, want);
    /* Only the finished directory remains (no temporaries), and it holds the fixture. */
    char *models = gb_strdup_printf("%s/genbench/models", cache);
    DIR *d = opendir(models);
    int entries = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') entries++;
    if (d) closedir(d);
    CHECK_EQ_INT(entries, 1);
    gb_weights *w = NULL;
    CHECK_OK(gb_weights_open(dir, &w, &err), &err);
    const gb_tensor_view *v = gb_weights_find(w, "model.layers.1.self_attn.k_proj.bias");
    char got[17] = "";
    if (v) hex64(gb_fnv1a64(v->data, v->nbytes), got);
    /* from tests/data/refs/tiny-qwen2.ref.json */
    char *ref_path = gb_strdup_printf("%s/refs/tiny-qwen2.ref.json", gb_test_data());
    cJSON *ref = read_json(ref_path);
    const cJSON *t;
    const char *want_hash = NULL;
    cJSON_ArrayForEach(
        t, cJSON_GetObjectItem(ref,
                               "tensors")) if (!strcmp(cJSON_GetObjectItem(t, "name")->valuestring,
                                                       "model.layers.1.self_attn.k_proj.bias"))
        want_hash = cJSON_GetObjectItem(t, "fnv1a64")->valuestring;
    CHECK_MSG(want_hash && !strcmp(got, want_hash), "cached tiny-qwen2 k_proj.bias: %s vs %s", got,
              want_hash ? want_hash : "?");
    gb_weights_free(w);
    cJSON_Delete(ref);
    free(ref_path);
    CHECK_EQ_INT(gb_preset_ensure("nope", dir, sizeof dir, &err), GB_ERR_NOT_FOUND);
    unsetenv("XDG_CACHE_HOME");
    free(models);
    free(want);
    free(cache);
}

/* The SIMD loop equals the scalar loop for every start offset, length and kind (the fixture
 * hashes above cover whichever one this CPU dispatches to). */
static void check_kernels(void) {
    enum { N = 1000 };
    uint16_t a[N], b[N];
    static const float scales[] = {0.1f, 0.25f, 0.0541265877f, 1.7320508f};
    int bad = 0;
    for (int k = 0; k < 4; k++)
        for (int norm = 0; norm < 2; norm++)
            for (int64_t first = 0; first < 40; first += 3)
                for (int64_t count = 0; count < N; count += 37 + first) {
                    uint64_t key = 0x123456789abcdef0ULL * (uint64_t)(k + 1) + (uint64_t)first;
                    memset(a, 0, sizeof a);
                    memset(b, 0, sizeof b);
                    gb_random_kernel_scalar(key, scales[k], norm, first, count, a);
                    gb_random_kernel_avx2(key, scales[k], norm, first, count, b);
                    bad += memcmp(a, b, sizeof a) != 0;
                }
    CHECK_EQ_INT(bad, 0);
    /* a far offset (element 2^40) of a huge tensor */
    gb_random_kernel_scalar(42, 0.1f, 0, 1LL << 40, 64, a);
    gb_random_kernel_avx2(42, 0.1f, 0, 1LL << 40, 64, b);
    CHECK(!memcmp(a, b, 64 * sizeof a[0]));
}

static const char *MQA_LLAMA =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 48,"
    " \"intermediate_size\": 80, \"num_hidden_layers\": 3, \"num_attention_heads\": 6,"
    " \"num_key_value_heads\": 1, \"vocab_size\": 300, \"max_position_embeddings\": 256,"
    " \"rms_norm_eps\": 1e-05, \"tie_word_embeddings\": false}";
static const char *QWEN2_SMALL =
    "{\"architectures\": [\"Qwen2ForCausalLM\"], \"model_type\": \"qwen2\", \"hidden_size\": 32,"
    " \"intermediate_size\": 48, \"num_hidden_layers\": 2, \"num_attention_heads\": 4,"
    " \"num_key_value_heads\": 2, \"vocab_size\": 200, \"tie_word_embeddings\": true}";
static const char *QWEN3_SMALL =
    "{\"architectures\": [\"Qwen3ForCausalLM\"], \"model_type\": \"qwen3\", \"hidden_size\": 32,"
    " \"intermediate_size\": 48, \"num_hidden_layers\": 1, \"num_attention_heads\": 2,"
    " \"num_key_value_heads\": 1, \"head_dim\": 24, \"vocab_size\": 150,"
    " \"tie_word_embeddings\": false}";
static const char *GPT2_SMALL =
    "{\"architectures\": [\"GPT2LMHeadModel\"], \"model_type\": \"gpt2\", \"n_embd\": 24,"
    " \"n_layer\": 2, \"n_head\": 3, \"n_positions\": 40, \"vocab_size\": 120}";

int main(void) {
    char *tmp = gb_strdup_printf("%s/random_weights_%ld", gb_test_tmp(), (long)getpid());
    gb_error err = {0};
    CHECK_OK(gb_mkdir_p(tmp, &err), &err);
    check_chunking();
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) check_kernels();
#endif
    static const char *fixtures[] = {"tiny-llama3",  "tiny-qwen3",       "tiny-qwen2",
                                     "tiny-mistral", "tiny-llama2-h128", "tiny-gpt2"};
    for (int i = 0; i < 6; i++)
        check_fixture(fixtures[i], tmp);
    /* The same with direct I/O (normally only for shards of 64 MB and more). */
    setenv("GENBENCH_DIRECT_IO_MIN_BYTES", "0", 1);
    check_fixture("tiny-mistral", tmp);
    check_fixture("tiny-qwen3", tmp);
    unsetenv("GENBENCH_DIRECT_IO_MIN_BYTES");
    check_oracle("mqa-llama-seed7", MQA_LLAMA, 7, 30000, tmp);
    check_oracle("qwen2-seed123", QWEN2_SMALL, 123, 0, tmp);
    check_oracle("qwen3-seed-max", QWEN3_SMALL, 18446744073709551615ULL, 0, tmp);
    check_oracle("gpt2-seed3", GPT2_SMALL, 3, 0, tmp);
    check_preset_cache(tmp);
    rm_rf(tmp);
    free(tmp);
    TEST_MAIN_END();
}
