/* Model loading: config.json, then every tensor the architecture needs is checked against
 * the shapes the config implies (src/model/tensors.h) and bound onto the backend in the
 * compute dtype. Weights are used in place from the mapping when allowed (use_mmap and the
 * stored dtype is the compute dtype); otherwise they are converted/copied once and the
 * mapping's pages are dropped as we go, so the process never holds two copies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/model.h"
#include "model/tensors.h"
#include "util/error.h"
#include "util/fileio.h"

const gb_model_config *gb_model_get_config(const gb_model *m) {
    return &m->cfg;
}

void gb_model_get_memory(const gb_model *m, gb_model_memory *mem) {
    memset(mem, 0, sizeof *mem);
    mem->weight_bytes = m->weight_bytes_step;
    mem->kv_bytes = m->kv_bytes_last ? m->kv_bytes_last : m->kv.bytes;
    if (m->be && m->be->ops->memory_stats)
        m->be->ops->memory_stats(m->be, NULL, &mem->peak_device_bytes);
    mem->weight_resident_bytes = m->weight_bytes_resident;
}

/* Drops the resident pages of a mapped tensor that lie wholly inside it (neighbouring
 * tensors may share the boundary pages). The file stays mapped; nothing reads it again. */
static void release_pages(const void *data, size_t nbytes) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)data + page - 1) / page * page;
    uintptr_t hi = ((uintptr_t)data + nbytes) / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

typedef struct loader {
    gb_model *m;
    const char *dir;
    int in_place; /* weights bound straight from the mapping */
} loader;

static const gb_tensor_view *find(loader *ld, const char *name) {
    return gb_weights_find(ld->m->weights, name);
}

static void count_matrix(gb_model *m, const gb_weight *w, int read_per_step) {
    size_t b = (size_t)w->rows * (size_t)w->cols * gb_dtype_size(w->dtype);
    m->weight_bytes_resident += b;
    if (read_per_step) m->weight_bytes_step += b;
}

/* Tensor data as an element-aligned pointer: safetensors only pads the header optionally,
 * so data may sit at an odd offset; then it is copied to *tmp (freed by the caller). */
static const void *aligned_data(const gb_tensor_view *tv, void **tmp, gb_error *err) {
    *tmp = NULL;
    if ((uintptr_t)tv->data % gb_dtype_size(tv->dtype) == 0) return tv->data;
    *tmp = malloc(tv->nbytes ? tv->nbytes : 1);
    if (!*tmp) {
        gb_error_set(err, GB_ERR_NOMEM, "out of memory for tensor '%s'", tv->name);
        return NULL;
    }
    memcpy(*tmp, tv->data, tv->nbytes);
    return *tmp;
}

/* A matrix [out, in] from tensor `name` ([in, out] when transpose). */
static int load_matrix(loader *ld, const char *name, gb_weight *w, int transpose, int per_step,
                       gb_error *err) {
    gb_model *m = ld->m;
    const gb_tensor_view *tv = find(ld, name);
    int64_t rows = transpose ? tv->shape[1] : tv->shape[0];
    int64_t cols = transpose ? tv->shape[0] : tv->shape[1];
    void *tmp;
    const void *src = aligned_data(tv, &tmp, err);
    if (!src) return GB_ERR_NOMEM;
    int rc = m->be->ops->weight_load(m->be, w, src, tv->dtype, rows, cols, m->opts.dtype, transpose,
                                     err);
    if (rc) {
        free(tmp);
        return gb_error_prefix(err, "%s: tensor '%s'", tv->file, name);
    }
    if (tmp && !w->owned) { /* kept in place, i.e. in tmp: give it memory of its own */
        size_t bytes = (size_t)rows * (size_t)cols * gb_dtype_size(w->dtype);
        void *own = NULL;
        rc = m->be->ops->alloc(m->be, bytes, &own, err);
        if (!rc) rc = m->be->ops->upload(m->be, own, tmp, bytes, err);
        if (!rc)
            w->data = w->owned = own;
        else if (own)
            m->be->ops->free(m->be, own);
    }
    free(tmp);
    if (rc) return rc;
    if (w->owned || m->opts.device != GB_DEVICE_CPU)
        release_pages(tv->data, tv->nbytes);
    else
        ld->in_place = 1;
    count_matrix(m, w, per_step);
    return 0;
}

/* float32 vector [count] from elements [offset, offset + count) of tensor `name`. */
static int load_vector_part(loader *ld, const char *name, int64_t offset, int64_t count,
                            float **out, gb_error *err) {
    gb_model *m = ld->m;
    const gb_tensor_view *tv = find(ld, name);
    float *host = malloc((size_t)count * sizeof(float));
    void *tmp;
    const void *src = host ? aligned_data(tv, &tmp, err) : NULL;
    if (!src) {
        free(host);
        return gb_error_set(err, GB_ERR_NOMEM, "out of memory for tensor '%s'", name);
    }
    gb_convert_to_f32(host, (const char *)src + (size_t)offset * gb_dtype_size(tv->dtype),
                      tv->dtype, (size_t)count);
    free(tmp);
    int rc = m->be->ops->alloc(m->be, (size_t)count * sizeof(float), (void **)out, err);
    if (!rc) rc = m->be->ops->upload(m->be, *out, host, (size_t)count * sizeof(float), err);
    free(host);
    if (rc) return gb_error_prefix(err, "%s: tensor '%s'", tv->file, name);
    m->weight_bytes_resident += (size_t)count * sizeof(float);
    m->weight_bytes_step += (size_t)count * sizeof(float);
    return 0;
}

static int load_vector(loader *ld, const char *name, float **out, gb_error *err) {
    const gb_tensor_view *tv = find(ld, name);
    return load_vector_part(ld, name, 0, tv->shape[0], out, err);
}

/* ---- architectures ---- */

static int bind_llama(loader *ld, gb_error *err) {
    gb_model *m = ld->m;
    const gb_model_config *c = &m->cfg;
    char nm[160];
#define NAME(...) (snprintf(nm, sizeof nm, __VA_ARGS__), nm)
    GB_TRY(load_matrix(ld, "model.embed_tokens.weight", &m->embed, 0, c->tie_word_embeddings, err));
    for (int i = 0; i < c->num_layers; i++) {
        gb_layer *L = &m->layers[i];
        const char *p = "model.layers";
        GB_TRY(load_vector(ld, NAME("%s.%d.input_layernorm.weight", p, i), &L->attn_norm_w, err));
        GB_TRY(load_matrix(ld, NAME("%s.%d.self_attn.q_proj.weight", p, i), &L->wq, 0, 1, err));
        GB_TRY(load_matrix(ld, NAME("%s.%d.self_attn.k_proj.weight", p, i), &L->wk, 0, 1, err));
        GB_TRY(load_matrix(ld, NAME("%s.%d.self_attn.v_proj.weight", p, i), &L->wv, 0, 1, err));
        if (c->attention_bias) {
            GB_TRY(load_vector(ld, NAME("%s.%d.self_attn.q_proj.bias", p, i), &L->bq, err));
            GB_TRY(load_vector(ld, NAME("%s.%d.self_attn.k_proj.bias", p, i), &L->bk, err));
            GB_TRY(load_vector(ld, NAME("%s.%d.self_attn.v_proj.bias", p, i), &L->bv, err));
            if (c->arch != GB_ARCH_QWEN2)
                GB_TRY(load_vector(ld, NAME("%s.%d.self_attn.o_proj.bias", p, i), &L->bo, err));
        }
        if (c->qk_norm) {
            GB_TRY(load_vector(ld, NAME("%s.%d.self_attn.q_norm.weight", p, i), &L->q_norm, err));
            GB_TRY(load_vector(ld, NAME("%s.%d.self_attn.k_norm.weight", p, i), &L->k_norm, err));
        }
        GB_TRY(load_matrix(ld, NAME("%s.%d.self_attn.o_proj.weight", p, i), &L->wo, 0, 1, err));
        GB_TRY(load_vector(ld, NAME("%s.%d.post_attention_layernorm.weight", p, i), &L->mlp_norm_w,
                           err));
        GB_TRY(load_matrix(ld, NAME("%s.%d.mlp.gate_proj.weight", p, i), &L->wgate, 0, 1, err));
        GB_TRY(load_matrix(ld, NAME("%s.%d.mlp.up_proj.weight", p, i), &L->wup, 0, 1, err));
        GB_TRY(load_matrix(ld, NAME("%s.%d.mlp.down_proj.weight", p, i), &L->wdown, 0, 1, err));
        if (c->mlp_bias) {
            GB_TRY(load_vector(ld, NAME("%s.%d.mlp.gate_proj.bias", p, i), &L->bgate, err));
            GB_TRY(load_vector(ld, NAME("%s.%d.mlp.up_proj.bias", p, i), &L->bup, err));
            GB_TRY(load_vector(ld, NAME("%s.%d.mlp.down_proj.bias", p, i), &L->bdown, err));
        }
    }
    GB_TRY(load_vector(ld, "model.norm.weight", &m->final_norm_w, err));
    if (c->tie_word_embeddings) {
        m->lm_head = &m->embed; /* one copy serves both */
    } else {
        GB_TRY(load_matrix(ld, "lm_head.weight", &m->lm_head_own, 0, 1, err));
        m->lm_head = &m->lm_head_own;
    }
#undef NAME
    return 0;
}

/* GPT-2 Conv1D c_attn [H, 3H] holds q | k | v side by side in its output columns: each
 * third is gathered into a [H, H] block and loaded transposed, so q, k, v are ordinary
 * [out, in] matrices like every other architecture's. */
static int load_c_attn_part(loader *ld, const char *name, int part, gb_weight *w, gb_error *err) {
    gb_model *m = ld->m;
    const gb_tensor_view *tv = find(ld, name);
    int64_t in = tv->shape[0], out3 = tv->shape[1], out = out3 / 3;
    size_t es = gb_dtype_size(tv->dtype);
    char *block = malloc((size_t)(in * out) * es);
    if (!block) return gb_error_set(err, GB_ERR_NOMEM, "out of memory for tensor '%s'", name);
    for (int64_t r = 0; r < in; r++)
        memcpy(block + (size_t)(r * out) * es,
               (const char *)tv->data + (size_t)(r * out3 + part * out) * es, (size_t)out * es);
    int rc = m->be->ops->weight_load(m->be, w, block, tv->dtype, out, in, m->opts.dtype, 1, err);
    free(block);
    if (rc) return gb_error_prefix(err, "%s: tensor '%s'", tv->file, name);
    count_matrix(m, w, 1);
    return 0;
}

static int bind_gpt2(loader *ld, gb_error *err) {
    gb_model *m = ld->m;
    const gb_model_config *c = &m->cfg;
    int64_t H = c->hidden_size;
    char nm[160];
#define NAME(...) (snprintf(nm, sizeof nm, __VA_ARGS__), nm)
    GB_TRY(load_matrix(ld, "transformer.wte.weight", &m->embed, 0, 1, err));
    GB_TRY(load_matrix(ld, "transformer.wpe.weight", &m->pos_embed, 0, 0, err));
    for (int i = 0; i < c->num_layers; i++) {
        gb_layer *L = &m->layers[i];
        const char *p = "transformer.h";
        GB_TRY(load_vector(ld, NAME("%s.%d.ln_1.weight", p, i), &L->attn_norm_w, err));
        GB_TRY(load_vector(ld, NAME("%s.%d.ln_1.bias", p, i), &L->attn_norm_b, err));
        NAME("%s.%d.attn.c_attn.weight", p, i);
        GB_TRY(load_c_attn_part(ld, nm, 0, &L->wq, err));
        GB_TRY(load_c_attn_part(ld, nm, 1, &L->wk, err));
        GB_TRY(load_c_attn_part(ld, nm, 2, &L->wv, err));
        release_pages(find(ld, nm)->data, find(ld, nm)->nbytes);
        NAME("%s.%d.attn.c_attn.bias", p, i);
        GB_TRY(load_vector_part(ld, nm, 0, H, &L->bq, err));
        GB_TRY(load_vector_part(ld, nm, H, H, &L->bk, err));
        GB_TRY(load_vector_part(ld, nm, 2 * H, H, &L->bv, err));
        GB_TRY(load_matrix(ld, NAME("%s.%d.attn.c_proj.weight", p, i), &L->wo, 1, 1, err));
        GB_TRY(load_vector(ld, NAME("%s.%d.attn.c_proj.bias", p, i), &L->bo, err));
        GB_TRY(load_vector(ld, NAME("%s.%d.ln_2.weight", p, i), &L->mlp_norm_w, err));
        GB_TRY(load_vector(ld, NAME("%s.%d.ln_2.bias", p, i), &L->mlp_norm_b, err));
        GB_TRY(load_matrix(ld, NAME("%s.%d.mlp.c_fc.weight", p, i), &L->wup, 1, 1, err));
        GB_TRY(load_vector(ld, NAME("%s.%d.mlp.c_fc.bias", p, i), &L->bup, err));
        GB_TRY(load_matrix(ld, NAME("%s.%d.mlp.c_proj.weight", p, i), &L->wdown, 1, 1, err));
        GB_TRY(load_vector(ld, NAME("%s.%d.mlp.c_proj.bias", p, i), &L->bdown, err));
    }
    GB_TRY(load_vector(ld, "transformer.ln_f.weight", &m->final_norm_w, err));
    GB_TRY(load_vector(ld, "transformer.ln_f.bias", &m->final_norm_b, err));
    m->lm_head = &m->embed; /* GPT-2's head is tied to wte */
#undef NAME
    return 0;
}

/* Every tensor the config implies must exist with exactly that shape. */
static int validate(loader *ld, gb_error *err) {
    gb_tensor_spec *specs;
    int count;
    GB_TRY(gb_model_tensors(&ld->m->cfg, &specs, &count, err));
    int rc = 0;
    for (int i = 0; i < count && !rc; i++) {
        const gb_tensor_spec *s = &specs[i];
        const gb_tensor_view *tv = find(ld, s->name);
        if (!tv) {
            rc = gb_error_set(err, GB_ERR_NOT_FOUND,
                              "%s: tensor '%s' is missing from the checkpoint", ld->dir, s->name);
            break;
        }
        int same = tv->ndim == s->ndim;
        for (int d = 0; same && d < s->ndim; d++)
            same = tv->shape[d] == s->shape[d];
        if (!same) {
            char got[96] = "", want[96] = "";
            for (int d = 0; d < tv->ndim && d < 4; d++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "",
                         (long long)tv->shape[d]);
            for (int d = 0; d < s->ndim; d++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? ", " : "",
                         (long long)s->shape[d]);
            rc = gb_error_set(err, GB_ERR_FORMAT,
                              "%s: tensor '%s' has shape [%s] but config.json implies [%s]",
                              tv->file, s->name, got, want);
        }
    }
    free(specs);
    return rc;
}

static void free_vec(gb_model *m, float **p) {
    if (*p) m->be->ops->free(m->be, *p);
    *p = NULL;
}

void gb_model_free(gb_model *m) {
    if (!m) return;
    if (m->be) {
        gb_kv_free(m);
        gb_workspace_free(m, &m->ws);
        const gb_backend_ops *op = m->be->ops;
        for (int i = 0; m->layers && i < m->cfg.num_layers; i++) {
            gb_layer *L = &m->layers[i];
            gb_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wgate, &L->wup, &L->wdown};
            for (size_t j = 0; j < sizeof ws / sizeof ws[0]; j++)
                op->weight_free(m->be, ws[j]);
            float **vs[] = {&L->attn_norm_w, &L->attn_norm_b, &L->bq,     &L->bk,
                            &L->bv,          &L->bo,          &L->q_norm, &L->k_norm,
                            &L->mlp_norm_w,  &L->mlp_norm_b,  &L->bgate,  &L->bup,
                            &L->bdown};
            for (size_t j = 0; j < sizeof vs / sizeof vs[0]; j++)
                free_vec(m, vs[j]);
        }
        op->weight_free(m->be, &m->embed);
        op->weight_free(m->be, &m->pos_embed);
        op->weight_free(m->be, &m->lm_head_own);
        free_vec(m, &m->final_norm_w);
        free_vec(m, &m->final_norm_b);
        free_vec(m, &m->inv_freq);
        gb_backend_free(m->be);
    }
    free(m->layers);
    gb_weights_free(m->weights);
    free(m);
}

int gb_model_load(const char *model_dir, const gb_engine_options *opts, gb_model **out,
                  gb_error *err) {
    *out = NULL;
    gb_model *m = calloc(1, sizeof *m);
    if (!m) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    if (opts)
        m->opts = *opts;
    else
        gb_engine_options_default(&m->opts);
    int rc = 0;
    if (m->opts.dtype >= GB_DTYPE_COUNT || (unsigned)m->opts.attn > GB_ATTN_FLASH) {
        rc = gb_error_set(err, GB_ERR_INVALID, "engine options: bad dtype or attention");
        goto fail;
    }
    char *cfg_path = gb_strdup_printf("%s/config.json", model_dir);
    if (!cfg_path) {
        rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
        goto fail;
    }
    rc = gb_model_config_load(cfg_path, &m->cfg, err);
    free(cfg_path);
    if (rc) goto fail;

    gb_backend_options bo = {.threads = m->opts.threads,
                             .kernelize = m->opts.kernelize,
                             .device_index = m->opts.device_index,
                             .use_mmap = m->opts.use_mmap};
    rc = m->opts.device == GB_DEVICE_CUDA ? gb_backend_cuda_create(&bo, &m->be, err)
                                          : gb_backend_cpu_create(&bo, &m->be, err);
    if (rc) goto fail;
    m->layers = calloc((size_t)m->cfg.num_layers, sizeof *m->layers);
    if (!m->layers) {
        rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = gb_weights_open(model_dir, &m->weights, err))) goto fail;

    loader ld = {.m = m, .dir = model_dir};
    if ((rc = validate(&ld, err))) goto fail;
    rc = m->cfg.arch == GB_ARCH_GPT2 ? bind_gpt2(&ld, err) : bind_llama(&ld, err);
    if (rc) goto fail;

    if (m->cfg.arch != GB_ARCH_GPT2) {
        int half = m->cfg.head_dim / 2;
        float *inv = malloc((size_t)half * sizeof(float));
        if (!inv) {
            rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            goto fail;
        }
        gb_rope_inv_freq(&m->cfg, inv, &m->attn_factor);
        rc = m->be->ops->alloc(m->be, (size_t)half * sizeof(float), (void **)&m->inv_freq, err);
        if (!rc)
            rc = m->be->ops->upload(m->be, m->inv_freq, inv, (size_t)half * sizeof(float), err);
        free(inv);
        if (rc) goto fail;
    }
    if (!ld.in_place) { /* every weight was copied: the mapping is no longer needed */
        gb_weights_free(m->weights);
        m->weights = NULL;
    }
    *out = m;
    return 0;
fail:
    gb_model_free(m);
    return rc;
}
