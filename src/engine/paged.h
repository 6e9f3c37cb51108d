/* Paged KV cache for continuous batching: per layer one K and one V pool of fixed-size
 * blocks (float32 [n_blocks, block_size, n_kv_heads, head_dim], backend memory), a free
 * list of block ids on the host, and the sequences of the current forward call (their
 * positions and block tables, uploaded to the backend). While m->paged is set, gb_forward
 * reads and writes K/V through it instead of m->kv (see the hooks below). */
#ifndef GB_ENGINE_PAGED_H
#define GB_ENGINE_PAGED_H

#include "engine/model.h"

struct gb_paged {
    int block_size;    /* positions per block */
    int n_blocks;      /* blocks in each pool */
    int max_blocks;    /* block-table width: most blocks one sequence can hold */
    int max_seqs;      /* most sequences in one forward call */
    float **k, **v;    /* [num_layers] pools */
    int32_t *free_ids; /* host stack of free block ids; n_free on it */
    int n_free;
    size_t bytes; /* K + V pool bytes of all layers */
    /* the current call: batch sequences of n_tokens new tokens each */
    int batch, n_tokens;
    int32_t *pos_host;   /* [max_seqs] */
    int32_t *pos_dev;    /* backend [max_seqs] */
    int32_t *tables_dev; /* backend [max_seqs, max_blocks] */
};

/* Pools of n_blocks blocks of block_size positions, tables of max_blocks entries for up to
 * max_seqs sequences per call. On failure everything is freed. */
int gb_paged_init(gb_model *m, gb_paged *pg, int block_size, int n_blocks, int max_blocks,
                  int max_seqs, gb_error *err);
void gb_paged_free(gb_model *m, gb_paged *pg);
/* A free block id, or -1 when the pool is exhausted. */
int gb_paged_block_alloc(gb_paged *pg);
/* Returns block id to the pool: 0, or -1 (nothing changed) for an id that is not a block of
 * the pool or a pool that is already full (a caller's bookkeeping bug). */
int gb_paged_block_release(gb_paged *pg, int32_t id);

/* Describes the next forward call: batch sequences, sequence s with its first new token at
 * pos[s] and its block table tables[s * max_blocks ...] (host arrays, uploaded here). */
int gb_paged_set_call(gb_model *m, gb_paged *pg, int batch, int n_tokens, const int32_t *pos,
                      const int32_t *tables, gb_error *err);

/* gb_forward hooks (m->paged set): embeddings with per-sequence positions (gpt2), RoPE at
 * per-sequence positions + K/V into the pools of layer l, attention through the tables. */
void gb_paged_embed(gb_model *m, gb_workspace *ws);
void gb_paged_rope_kv_write(gb_model *m, gb_workspace *ws, int l);
void gb_paged_attention(gb_model *m, gb_workspace *ws, int l);

#endif
