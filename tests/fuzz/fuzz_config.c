/* libFuzzer target: the JSON inputs genbench reads besides tokenizers and checkpoints. The
 * first byte picks the reader, the rest is the file:
 *   0: model config.json (gb_model_config_parse, then the tensor list and parameter count),
 *   1: a `run --config-file` file (.json), every config finalized, named and hashed,
 *   2: the same as JSON Lines (.jsonl),
 *   3: a results file read by `compare` (gb_cmp_load).
 * Failures must leave a one-line error; successes must hold the invariants the engine and
 * runner rely on. */
#include "fuzz_util.h"
#include "bench/compare.h"
#include "bench/config.h"
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    switch (data[0] & 3) {
    case 0:
        model_config(data + 1, size - 1);
        break;
    case 1:
        bench_configs(data + 1, size - 1, "configs.json");
        break;
    case 2:
        bench_configs(data + 1, size - 1, "configs.jsonl");
        break;
    default:
        results(data + 1, size - 1);
        break;
    }
    return 0;
}
