/* The inference engine: a loaded model on a backend, its forward pass and greedy
 * generation. Written once against src/backend/backend.h.
 *
 * Shapes: prompt ids [batch, prompt_len] row-major int32; generated ids [batch, new_tokens];
 * logits [rows, vocab_size] float32. Times are CLOCK_MONOTONIC nanoseconds. */
#ifndef GB_ENGINE_H
#define GB_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include "genbench.h"
#include "backend/backend.h"
#include "model/config.h"

typedef enum gb_device_kind { GB_DEVICE_CPU = 0, GB_DEVICE_CUDA } gb_device_kind;

/* Optional tracing hook (profiling): one call per finished slice. track 0 = host steps,
 * 1 = layers, 2 = ops, 3 = device kernels. */
typedef void (*gb_trace_fn)(void *user, const char *name, int64_t t0_ns, int64_t t1_ns, int track);

typedef struct gb_engine_options {
    gb_device_kind device;
    int device_index;
    gb_dtype dtype; /* compute dtype of the weights */
    gb_attn_impl attn;
    int kernelize;     /* fused / optimised kernel set */
    int static_cache;  /* a compile mode is set: KV cache preallocated, decode planned once */
    int cuda_graph;    /* reduce-overhead / max-autotune: capture the decode step (CUDA) */
    int threads;       /* CPU threads, 0 = all cores */
    int use_mmap;      /* CPU: use weights in place from the mapping when the stored dtype is
                          the compute dtype; else (default) copy them once into RAM, dropping
                          the mapping's pages as they are copied */
    gb_trace_fn trace; /* NULL: no tracing */
    void *trace_user;
} gb_engine_options;

/* Defaults: CPU, bf16, sdpa, not kernelized, dynamic cache, all threads, weights in RAM. */
void gb_engine_options_default(gb_engine_options *o);

/* attn_implementation name -> impl: eager, sdpa, flash_attention_2; flex_attention (not
 * provided) gives sdpa with *fell_back = 1. Unknown names: -1. */
int gb_engine_attn_from_name(const char *name, gb_attn_impl *impl, int *fell_back);

/* Compile mode (NULL or "none" = uncompiled) -> static cache, and a captured decode graph
 * for reduce-overhead / max-autotune on CUDA. Unknown modes: -1. */
int gb_engine_compile_from_mode(const char *mode, gb_device_kind device, int *static_cache,
                                int *cuda_graph);

typedef struct gb_model gb_model;

/* Loads config.json + safetensors of model_dir onto the backend the options name.
 * Missing tensors, wrong shapes/dtypes and configs that do not fit the weights fail with
 * the tensor named. */
int gb_model_load(const char *model_dir, const gb_engine_options *opts, gb_model **out,
                  gb_error *err);
void gb_model_free(gb_model *m);
const gb_model_config *gb_model_get_config(const gb_model *m);

typedef struct gb_model_memory {
    size_t weight_bytes;          /* bytes of weights read per decode step */
    size_t kv_bytes;              /* KV cache bytes allocated by the last generation */
    size_t peak_device_bytes;     /* CUDA: peak device memory; 0 on CPU */
    size_t weight_resident_bytes; /* bytes of weights held (host RAM, mapping or device) */
} gb_model_memory;
void gb_model_get_memory(const gb_model *m, gb_model_memory *mem);

/* Logits of every position of one sequence: logits[n, vocab]. Uses a private cache and
 * drops any cache a previous generation kept (a static cache is rebuilt on the next call). */
int gb_model_forward_all(gb_model *m, const int32_t *ids, int n, float *logits, gb_error *err);

/* Called once per generation step when the new ids [batch] are on the host; t_ns is the
 * monotonic time at that moment. step counts from 0 (the token after the prompt). */
typedef void (*gb_token_fn)(void *user, int step, const int32_t *ids, int batch, int64_t t_ns);

typedef struct gb_generate_params {
    const int32_t *prompt_ids; /* [batch, prompt_len] */
    int batch;
    int prompt_len;
    int new_tokens;       /* exactly this many; end-of-sequence never stops generation */
    gb_token_fn on_token; /* may be NULL */
    void *user;
    float *last_logits; /* optional out: logits of the last prompt position of row 0 [vocab] */
} gb_generate_params;

/* Greedy generation; out_ids receives [batch, new_tokens]. One prefill over all prompt
 * rows, then one decode step per token; on_token fires right after each step's ids reach
 * the host. Static cache (opts.static_cache): cache and buffers sized for prompt + new and
 * kept on the model for the next call of the same shape. Dynamic: the cache grows and
 * everything is freed at the end. Token ids outside [0, vocab) are refused. */
int gb_generate(gb_model *m, const gb_generate_params *p, int32_t *out_ids, gb_error *err);

/* Continuous batching (engine/cb.c): the batch rows are independent requests over a paged
 * KV cache. Zero fields take the defaults. */
typedef struct gb_cb_options {
    int block_size; /* positions per KV block; 0 = 16 */
    int num_blocks; /* blocks in the pool; 0 = enough for every request at once */
    int max_batch;  /* most requests running together; 0 = no limit */
} gb_cb_options;

/* Greedy generation of exactly new_tokens per request, as gb_generate (same params, out_ids
 * [batch, new_tokens]) but scheduled as continuous batching. Each step: admit waiting
 * requests in FIFO order while the running count stays <= max_batch and the pool has the
 * blocks for the request's whole length (prompt + new - 1 positions) besides those the
 * running requests may still claim, so no request is ever preempted; the requests admitted
 * in a step are prefilled together (one forward call, each request a sequence of its own
 * over its own blocks; its first token); the requests admitted
 * before this step run one decode step together (one batched forward, attention through
 * each one's block table). Blocks are taken as a request grows and freed when it finishes.
 * on_token fires once per step with the ids of every request that produced a token in it,
 * in request order (batch = their count); with a pool that admits everyone (the default)
 * the steps are those of gb_generate. last_logits: request 0's prefill. Needs the backend's
 * paged ops, which the CPU and CUDA backends both provide (GB_ERR_UNSUPPORTED otherwise). */
int gb_generate_cb(gb_model *m, const gb_generate_params *p, const gb_cb_options *o,
                   int32_t *out_ids, gb_error *err);
/* 1 when the model's backend provides the paged ops gb_generate_cb needs. */
int gb_model_supports_cb(const gb_model *m);

#endif
