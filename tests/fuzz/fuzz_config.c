/* libFuzzer target: the JSON inputs genbench reads besides tokenizers and checkpoints. The
 * first byte picks the reader, the rest is the file:
 *   0: model config.json (gb_model_config_parse, then the tensor list and parameter count),
 *   1: a `run --config-file` file (.json), every config finalized, named and hashed,
 *   2: the same as JSON Lines (.jsonl),
 *   3: a results file read by `compare` (gb_cmp_load),
 *   4: model.safetensors.index.json of a sharded checkpoint (gb_weights_open) beside two
 *      small valid shards, model-00001-of-00002.safetensors and model-00002-of-00002.
 * Failures must leave a one-line error; successes must hold the invariants the engine and
 * runner rely on. */
#include "fuzz_util.h"
#include "bench/compare.h"
#include "bench/config.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/tensors.h"

static void check_err(const gb_error *err) {
    if (!err->msg[0] || strchr(err->msg, '\n')) abort(); /* one non-empty line */
}

static void model_config(const uint8_t *data, size_t size) {
    gb_model_config cfg;
    gb_error err = {0};
    if (gb_model_config_parse((const char *)data, size, "config.json", &cfg, &err) != 0) {
        check_err(&err);
        return;
    }
    if (cfg.vocab_size <= 0 || cfg.hidden_size <= 0 || cfg.num_layers <= 0 || cfg.num_heads <= 0 ||
        cfg.num_kv_heads <= 0 || cfg.head_dim <= 0 || cfg.intermediate_size <= 0 ||
        cfg.num_heads % cfg.num_kv_heads != 0)
        abort();
    gb_tensor_spec *specs = NULL;
    int count = 0;
    if (gb_model_tensors(&cfg, &specs, &count, &err) == 0) {
        (void)gb_model_config_num_params(&cfg);
        free(specs);
    } else {
        check_err(&err);
    }
}

static void bench_configs(const uint8_t *data, size_t size, const char *name) {
    const char *path = fuzz_write(name, data, size);
    gb_bench_config *c = NULL;
    int n = 0;
    gb_error err = {0};
    if (gb_bench_config_read_file(path, &c, &n, &err) != 0) {
        check_err(&err);
        return;
    }
    for (int i = 0; i < n; i++) {
        gb_error e2 = {0};
        if (gb_bench_config_finalize(&c[i], &e2) != 0) {
            check_err(&e2);
            continue;
        }
        char buf[512], hash[65];
        gb_bench_config_name(&c[i], buf, sizeof buf);
        gb_bench_config_verbose_name(&c[i], buf, sizeof buf);
        gb_bench_config_hash(&c[i], hash);
    }
    free(c);
}

static void results(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("x_benchmark_1.json", data, size);
    gb_cmp_set s = {0};
    gb_error err = {0};
    if (gb_cmp_load(path, &s, &err) != 0) check_err(&err);
    gb_cmp_free(&s);
}

/* A safetensors file holding one F32 tensor `name` of shape [2]. */
static void write_shard(const char *file, const char *name) {
    char hdr[256];
    int n =
        snprintf(hdr, sizeof hdr,
                 "{\"%s\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", name);
    uint8_t buf[512] = {0};
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, hdr, (size_t)n);
    fuzz_write(file, buf, 8 + (size_t)n + 8);
}

static void index_json(const uint8_t *data, size_t size) {
    static int shards_written;
    if (!shards_written) {
        write_shard("model-00001-of-00002.safetensors", "a.weight");
        write_shard("model-00002-of-00002.safetensors", "b.weight");
        shards_written = 1;
    }
    fuzz_write("model.safetensors.index.json", data, size);
    gb_weights *w = NULL;
    gb_error err = {0};
    if (gb_weights_open(fuzz_dir(), &w, &err) != 0) {
        check_err(&err);
        return;
    }
    for (int i = 0; i < gb_weights_count(w); i++) {
        const gb_tensor_view *v = gb_weights_at(w, i);
        if (gb_weights_find(w, v->name) == NULL) abort();
    }
    (void)gb_weights_total_bytes(w);
    gb_weights_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    switch (data[0] % 5) {
    case 0:
        model_config(data + 1, size - 1);
        break;
    case 1:
        bench_configs(data + 1, size - 1, "configs.json");
        break;
    case 2:
        bench_configs(data + 1, size - 1, "configs.jsonl");
        break;
    case 3:
        results(data + 1, size - 1);
        break;
    default:
        index_json(data + 1, size - 1);
        break;
    }
    return 0;
}
