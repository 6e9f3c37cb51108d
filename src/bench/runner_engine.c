/* The runner's adapter over the real engine (engine/engine.h) and tokenizer
 * (tokenizer/tokenizer.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/runner.h"
#include "engine/engine.h"
#include "model/config.h"
#include "tokenizer/tokenizer.h"
#include "util/dtype.h"
#include "util/error.h"

static int tok_load(const char *dir, void **tok, gb_error *err) {
    return gb_tokenizer_load(dir, (gb_tokenizer **)tok, err);
}

static void tok_free(void *tok) {
    gb_tokenizer_free(tok);
}

static int tok_encode(void *tok, const char *text, size_t len, int32_t **ids, size_t *n,
                      gb_error *err) {
    return gb_tokenizer_encode(tok, text, len, true, 0, ids, n, err);
}

static int tok_decode(void *tok, const int32_t *ids, size_t n, char **text, gb_error *err) {
    size_t len;
    return gb_tokenizer_decode(tok, ids, n, true, text, &len, err);
}

static int32_t tok_pad(void *tok) {
    return gb_tokenizer_pad_id(tok);
}

/* The runner's model: the engine's, and whether the config asks for continuous batching
 * (gb_generate_cb over the paged KV cache; a backend without the paged ops fails the config
 * at load rather than quietly running something else). */
typedef struct engine_model {
    gb_model *m;
    int cb;
} engine_model;

static int model_load(const char *dir, const gb_bench_config *c, gb_bench_trace_fn trace,
                      void *trace_user, void **model, gb_error *err) {
    gb_engine_options o;
    gb_engine_options_default(&o);
    if (!strcmp(c->device, "cpu")) {
        o.device = GB_DEVICE_CPU;
    } else {
        o.device = GB_DEVICE_CUDA;
        o.device_index = c->device[4] == ':' ? atoi(c->device + 5) : 0;
    }
    gb_dtype dt;
    if (gb_dtype_parse(c->dtype, &dt) != 0)
        return gb_error_set(err, GB_ERR_INVALID, "config: dtype '%s' unknown", c->dtype);
    o.dtype = dt;
    if (gb_engine_attn_from_name(c->attn_implementation, &o.attn, NULL))
        return gb_error_set(err, GB_ERR_INVALID, "config: attn_implementation '%s' unknown",
                            c->attn_implementation);
    o.kernelize = c->kernelize;
    if (gb_engine_compile_from_mode(c->compile_kwargs.set ? c->compile_kwargs.mode : NULL, o.device,
                                    &o.static_cache, &o.cuda_graph))
        return gb_error_set(err, GB_ERR_INVALID, "config: compile mode '%s' unknown",
                            c->compile_kwargs.mode);
    o.threads = c->threads;
    o.trace = trace;
    o.trace_user = trace_user;
    engine_model *em = calloc(1, sizeof *em);
    if (!em) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    int rc = gb_model_load(dir, &o, &em->m, err);
    if (rc) {
        free(em);
        return rc;
    }
    if (c->continuous_batching && !gb_model_supports_cb(em->m)) {
        rc = gb_error_set(err, GB_ERR_UNSUPPORTED,
                          "continuous batching: the %s backend has no paged KV cache ops",
                          c->device);
        gb_model_free(em->m);
        free(em);
        return rc;
    }
    em->cb = c->continuous_batching;
    *model = em;
    return 0;
}

static void model_free(void *model) {
    engine_model *em = model;
    if (!em) return;
    gb_model_free(em->m);
    free(em);
}

static int generate(void *model, const int32_t *prompt, int batch, int prompt_len, int new_tokens,
                    gb_bench_token_fn on_token, void *user, int32_t *out, gb_error *err) {
    gb_generate_params p;
    memset(&p, 0, sizeof p);
    p.prompt_ids = prompt;
    p.batch = batch;
    p.prompt_len = prompt_len;
    p.new_tokens = new_tokens;
    p.on_token = on_token;
    p.user = user;
    engine_model *em = model;
    /* continuous batching: default policy, every request admitted at once (the benchmark's
     * offline burst), 16-position blocks */
    return em->cb ? gb_generate_cb(em->m, &p, NULL, out, err) : gb_generate(em->m, &p, out, err);
}

static void model_info(void *model, gb_bench_model_info *mi) {
    gb_model *m = ((engine_model *)model)->m;
    const gb_model_config *c = gb_model_get_config(m);
    memset(mi, 0, sizeof *mi);
    if (c) {
        snprintf(mi->architecture, sizeof mi->architecture, "%s", c->architecture);
        mi->num_params = gb_model_config_num_params(c);
        mi->vocab_size = c->vocab_size;
        mi->hidden_size = c->hidden_size;
        mi->intermediate_size = c->intermediate_size;
        mi->num_layers = c->num_layers;
        mi->num_heads = c->num_heads;
        mi->num_kv_heads = c->num_kv_heads;
        mi->head_dim = c->head_dim;
        mi->gated_mlp = c->arch != GB_ARCH_GPT2;
    }
    gb_model_memory mem;
    memset(&mem, 0, sizeof mem);
    gb_model_get_memory(m, &mem);
    mi->weight_bytes = mem.weight_bytes;
    mi->kv_bytes = mem.kv_bytes;
    mi->peak_device_bytes = mem.peak_device_bytes;
    mi->kv_bytes_per_element = 4; /* the backend's KV cache is float32 (backend/backend.h) */
}

static const gb_bench_engine_ops k_ops = {
    .tokenizer_load = tok_load,
    .tokenizer_free = tok_free,
    .tokenizer_encode = tok_encode,
    .tokenizer_decode = tok_decode,
    .tokenizer_pad_id = tok_pad,
    .model_load = model_load,
    .model_free = model_free,
    .generate = generate,
    .model_info = model_info,
};

const gb_bench_engine_ops *gb_bench_engine_default(void) {
    return &k_ops;
}
