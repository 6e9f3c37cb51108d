/* BenchmarkConfig: one benchmark scenario, as in transformers' benchmark_v2, plus genbench's
 * device / dtype / threads. Fields, defaults, validity rules, names, serialization and
 * hash: docs/results-format.md (the product definition, §1 of the BenchmarkConfig concept).
 *
 * A gb_bench_config is plain data (copyable with =). Create one with gb_bench_config_default
 * or gb_bench_config_from_json, change fields, then call gb_bench_config_finalize, which
 * checks ranges, applies the validity rules (recording every change in `notes`) and infers
 * the name unless one was given. */
#ifndef GB_BENCH_CONFIG_H
#define GB_BENCH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include "genbench.h"

struct cJSON;

/* compile_kwargs: null (not compiled) or transformers' CompileConfig fields. */
typedef struct gb_compile_kwargs {
    bool set;          /* false = null */
    bool fullgraph;    /* forced true */
    int dynamic;       /* -1 = null, 0 = false, 1 = true */
    char backend[32];  /* "inductor" */
    char mode[32];     /* default | reduce-overhead | max-autotune | max-autotune-no-cudagraphs */
    char options[256]; /* options serialized as Python JSON, "" = null */
} gb_compile_kwargs;

#define GB_BENCH_NOTES_MAX 8

typedef struct gb_bench_config {
    char name[256];
    bool name_given; /* a name was supplied (kept as is, like benchmark_v2) */
    int warmup_iterations;
    int measurement_iterations;
    bool gpu_monitoring;
    bool continuous_batching;
    int batch_size;
    int sequence_length;
    int num_tokens_to_generate;
    char attn_implementation[32];
    gb_compile_kwargs compile_kwargs;
    bool kernelize;
    char device[32]; /* cpu | cuda | cuda:N */
    char dtype[16];  /* bfloat16 | float16 | float32 */
    int threads;     /* CPU threads; 0 before finalize = all cores */
    /* Validity adjustments applied by finalize, one sentence each (not serialized). */
    int n_notes;
    char notes[GB_BENCH_NOTES_MAX][160];
} gb_bench_config;

/* benchmark_v2 defaults (w5, i20, monitored, b1, s128, n128, eager, uncompiled,
 * unkernelized, generate); device = gb_bench_default_device(), bfloat16, threads 0. */
void gb_bench_config_default(gb_bench_config *c);

/* The device used when none is named: "cuda" when a GPU is usable, else "cpu". */
const char *gb_bench_default_device(void);
/* Number of online CPUs (>= 1). */
int gb_bench_num_cpus(void);

/* compile_kwargs = {"mode": mode} with CompileConfig defaults for the rest; mode NULL or
 * "" means {} (mode reduce-overhead, as CompileConfig's default). */
void gb_compile_kwargs_set(gb_compile_kwargs *k, const char *mode);

/* Checks ranges and values (GB_ERR_INVALID naming the field), applies the validity rules
 * in order (each recorded in notes), resolves threads = 0 to all cores and infers the name
 * unless name_given. */
int gb_bench_config_finalize(gb_bench_config *c, gb_error *err);

/* Compact name: w5_i20-monitored-b1_s128_n128-eager-uncompiled-unkernelized-generate. */
void gb_bench_config_name(const gb_bench_config *c, char *out, size_t cap);
/* Verbose name: "5 warmup, 20 iterations, with GPU monitoring, batch size 1, ...". */
void gb_bench_config_verbose_name(const gb_bench_config *c, char *out, size_t cap);

/* Python json.dumps(to_dict()) of the config (malloc'd). Keys: name, warmup_iterations,
 * measurement_iterations, gpu_monitoring, continuous_batching, batch_size,
 * sequence_length, num_tokens_to_generate, attn_implementation, compile_kwargs,
 * kernelize, device, dtype, threads. */
char *gb_bench_config_serialize(const gb_bench_config *c);
struct gb_jw;
/* Writes the same object into a JSON writer (indented in results files). */
void gb_bench_config_write(struct gb_jw *w, const gb_bench_config *c);
/* Lowercase hex SHA-256 of the serialization. */
void gb_bench_config_hash(const gb_bench_config *c, char out[65]);

/* Builds a config from a JSON object (keys as above; absent keys take the defaults;
 * unknown keys are an error naming them). `source` names the file in messages. Not
 * finalized. */
int gb_bench_config_from_json(const struct cJSON *obj, const char *source, gb_bench_config *c,
                              gb_error *err);

/* Reads a config file: a JSON array of objects, a single object, or JSON Lines (one object
 * per line; chosen by the .jsonl extension or when the text is not one JSON value).
 * *out is malloc'd (caller frees). Configs are not finalized. */
int gb_bench_config_read_file(const char *path, gb_bench_config **out, int *n, gb_error *err);

/* Configs of benchmark_v2's get_config_by_level (level 0..4; negative = none), with
 * genbench's kernel set available (kernelize in {false, true} at levels 3-4). *out is
 * malloc'd; configs use defaults elsewhere and are not finalized. */
int gb_bench_configs_for_level(int level, gb_bench_config **out, int *n, gb_error *err);

/* Lists for the cross product (adapt_configs). A NULL/0-length list leaves the field of
 * each input config unchanged. */
typedef struct gb_bench_sweep {
    const int *warmup;
    int n_warmup;
    const int *iterations;
    int n_iterations;
    const int *batch;
    int n_batch;
    const int *seq;
    int n_seq;
    const int *ntok;
    int n_ntok;
    int gpu_monitoring; /* -1 = leave, 0/1 = set */
    const int *threads;
    int n_threads;
} gb_bench_sweep;

/* Cross product like benchmark_v2's adapt_configs: warmup x iterations x batch x seq x
 * ntok (x threads), the last varying fastest, each combination applied to every input
 * config (innermost), names dropped (re-inferred). Result not finalized; malloc'd. */
int gb_bench_configs_sweep(const gb_bench_config *in, int n_in, const gb_bench_sweep *sw,
                           gb_bench_config **out, int *n_out, gb_error *err);

#endif
