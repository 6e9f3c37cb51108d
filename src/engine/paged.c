/* Paged KV cache: pools, free list, the per-call block tables and the forward-pass hooks
 * (see paged.h). RoPE and the gpt2 position embedding take one pos0 per call, so the hooks
 * issue them once per sequence, unless the backend has rope_kv_write_paged (RoPE at each
 * sequence's device-side position + the K/V write, one call); K/V writes and attention go
 * through the backend's paged ops in one call for all sequences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/paged.h"
#include "util/error.h"

void gb_paged_free(gb_model *m, gb_paged *pg) {
    gb_backend *be = m->be;
    for (int l = 0; pg->k && l < m->cfg.num_layers; l++) {
        if (pg->k[l]) be->ops->free(be, pg->k[l]);
        if (pg->v[l]) be->ops->free(be, pg->v[l]);
    }
    if (pg->pos_dev) be->ops->free(be, pg->pos_dev);
    if (pg->tables_dev) be->ops->free(be, pg->tables_dev);
    free(pg->k);
    free(pg->v);
    free(pg->free_ids);
    free(pg->pos_host);
    memset(pg, 0, sizeof *pg);
}

int gb_paged_init(gb_model *m, gb_paged *pg, int block_size, int n_blocks, int max_blocks,
                  int max_seqs, gb_error *err) {
    const int L = m->cfg.num_layers;
    gb_backend *be = m->be;
    memset(pg, 0, sizeof *pg);
    if (block_size < 1 || n_blocks < 1 || max_blocks < 1 || max_seqs < 1)
        return gb_error_set(err, GB_ERR_INVALID,
                            "paged cache: block size %d, %d blocks, table width %d and %d "
                            "sequences must be >= 1",
                            block_size, n_blocks, max_blocks, max_seqs);
    pg->block_size = block_size;
    pg->n_blocks = n_blocks;
    pg->max_blocks = max_blocks;
    pg->max_seqs = max_seqs;
    pg->k = calloc((size_t)L, sizeof *pg->k);
    pg->v = calloc((size_t)L, sizeof *pg->v);
    pg->free_ids = malloc((size_t)n_blocks * sizeof *pg->free_ids);
    pg->pos_host = calloc((size_t)max_seqs, sizeof *pg->pos_host);
    if (!pg->k || !pg->v || !pg->free_ids || !pg->pos_host) {
        gb_paged_free(m, pg);
        return gb_error_set(err, GB_ERR_NOMEM, "paged cache: out of memory");
    }
    size_t pool =
        (size_t)n_blocks * block_size * m->cfg.num_kv_heads * m->cfg.head_dim * sizeof(float);
    int rc = 0;
    for (int l = 0; l < L && !rc; l++) {
        rc = be->ops->alloc(be, pool, (void **)&pg->k[l], err);
        if (!rc) rc = be->ops->alloc(be, pool, (void **)&pg->v[l], err);
    }
    if (!rc)
        rc = be->ops->alloc(be, (size_t)max_seqs * sizeof(int32_t), (void **)&pg->pos_dev, err);
    if (!rc)
        rc = be->ops->alloc(be, (size_t)max_seqs * max_blocks * sizeof(int32_t),
                            (void **)&pg->tables_dev, err);
    if (rc) {
        gb_paged_free(m, pg);
        return gb_error_prefix(err, "paged KV cache (%d blocks of %d positions)", n_blocks,
                               block_size);
    }
    /* a stack: the lowest ids come out first */
    for (int i = 0; i < n_blocks; i++)
        pg->free_ids[i] = n_blocks - 1 - i;
    pg->n_free = n_blocks;
    pg->bytes = 2 * pool * (size_t)L;
    return 0;
}

int gb_paged_block_alloc(gb_paged *pg) {
    return pg->n_free > 0 ? pg->free_ids[--pg->n_free] : -1;
}

int gb_paged_block_release(gb_paged *pg, int32_t id) {
    if (id < 0 || id >= pg->n_blocks || pg->n_free >= pg->n_blocks) return -1;
    pg->free_ids[pg->n_free++] = id;
    return 0;
}

int gb_paged_set_call(gb_model *m, gb_paged *pg, int batch, int n_tokens, const int32_t *pos,
                      const int32_t *tables, gb_error *err) {
    if (batch < 1 || batch > pg->max_seqs || n_tokens < 1)
        return gb_error_set(err, GB_ERR_INTERNAL, "paged call of %d x %d does not fit %d", batch,
                            n_tokens, pg->max_seqs);
    pg->batch = batch;
    pg->n_tokens = n_tokens;
    memcpy(pg->pos_host, pos, (size_t)batch * sizeof(int32_t));
    GB_TRY(m->be->ops->upload(m->be, pg->pos_dev, pos, (size_t)batch * sizeof(int32_t), err));
    return m->be->ops->upload(m->be, pg->tables_dev, tables,
                              (size_t)batch * pg->max_blocks * sizeof(int32_t), err);
}

static gb_paged_args paged_args(const gb_model *m) {
    const gb_paged *pg = m->paged;
    gb_paged_args a = {.batch = pg->batch,
                       .n_tokens = pg->n_tokens,
                       .pos = pg->pos_dev,
                       .block_tables = pg->tables_dev,
                       .max_blocks = pg->max_blocks,
                       .block_size = pg->block_size,
                       .n_heads = m->cfg.num_heads,
                       .n_kv_heads = m->cfg.num_kv_heads,
                       .head_dim = m->cfg.head_dim,
                       .scale = (float)(1.0 / sqrt((double)m->cfg.head_dim)),
                       .sliding_window = m->cfg.sliding_window};
    return a;
}

void gb_paged_embed(gb_model *m, gb_workspace *ws) {
    const gb_paged *pg = m->paged;
    const int T = pg->n_tokens, H = m->cfg.hidden_size;
    gb_backend *be = m->be;
    if (m->cfg.arch != GB_ARCH_GPT2) {
        be->ops->embed(be, ws->x, &m->embed, ws->ids, pg->batch * T, NULL, T, 0);
        return;
    }
    for (int s = 0; s < pg->batch; s++) /* learned positions start at each sequence's pos */
        be->ops->embed(be, ws->x + (size_t)s * T * H, &m->embed, ws->ids + (size_t)s * T, T,
                       &m->pos_embed, T, pg->pos_host[s]);
}

void gb_paged_rope_kv_write(gb_model *m, gb_workspace *ws, int l) {
    const gb_paged *pg = m->paged;
    const gb_model_config *c = &m->cfg;
    const int T = pg->n_tokens;
    gb_backend *be = m->be;
    gb_paged_args a = paged_args(m);
    if (c->arch != GB_ARCH_GPT2 && be->ops->rope_kv_write_paged) { /* one launch, all sequences */
        gb_rope_args r = {.n_tokens = T,
                          .batch = pg->batch,
                          .n_heads = c->num_heads,
                          .head_dim = c->head_dim,
                          .inv_freq = m->inv_freq,
                          .attn_factor = m->attn_factor};
        be->ops->rope_kv_write_paged(be, ws->q, ws->k, ws->v, pg->k[l], pg->v[l], &r, &a);
        return;
    }
    if (c->arch != GB_ARCH_GPT2) {
        gb_rope_args rq = {.n_tokens = T,
                           .batch = 1,
                           .n_heads = c->num_heads,
                           .head_dim = c->head_dim,
                           .inv_freq = m->inv_freq,
                           .attn_factor = m->attn_factor};
        gb_rope_args rk = rq;
        rk.n_heads = c->num_kv_heads;
        for (int s = 0; s < pg->batch; s++) {
            rq.pos0 = rk.pos0 = pg->pos_host[s];
            be->ops->rope(be, ws->q + (size_t)s * T * c->num_heads * c->head_dim, &rq);
            be->ops->rope(be, ws->k + (size_t)s * T * c->num_kv_heads * c->head_dim, &rk);
        }
    }
    be->ops->kv_write_paged(be, pg->k[l], pg->v[l], ws->k, ws->v, &a);
}

void gb_paged_attention(gb_model *m, gb_workspace *ws, int l) {
    const gb_paged *pg = m->paged;
    gb_paged_args a = paged_args(m);
    m->be->ops->attention_paged(m->be, ws->att, ws->q, pg->k[l], pg->v[l], &a);
}
