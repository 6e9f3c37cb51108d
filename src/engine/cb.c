/* Continuous batching: the scheduler over the paged KV cache (engine/paged.h).
 *
 * Policy (see gb_generate_cb in engine.h): FIFO admission while the running count stays
 * within max_batch and the pool can hold the request's whole length on top of what the
 * running requests may still claim ("reserved" blocks), so a running request always finds
 * a free block and nothing is preempted. Per step: prefill of the newly admitted requests
 * (one forward call per run of consecutive admissions with the same prompt length, each
 * request a sequence of its own over its own blocks: a run of one is a request's own call),
 * then one batched decode step of the requests admitted earlier (rows = running requests),
 * then the finished requests give their blocks back. */
#include <stdlib.h>
#include <string.h>

#include "engine/paged.h"
#include "util/clock.h"
#include "util/error.h"

typedef struct cb_req {
    const int32_t *prompt;
    int prompt_len;
    int len;        /* positions in the cache */
    int generated;  /* tokens produced so far */
    int32_t last;   /* the newest token (input of the next decode step) */
    int need;       /* blocks for the whole request */
    int n_blocks;   /* blocks held */
    int32_t *table; /* [max_blocks] */
    int state;      /* 0 waiting, 1 running, 2 done */
    int fresh;      /* admitted this step (prefilled, no decode yet) */
} cb_req;

int gb_model_supports_cb(const gb_model *m) {
    return m->be->ops->kv_write_paged && m->be->ops->attention_paged;
}

static int blocks_for(int positions, int bs) {
    return (positions + bs - 1) / bs;
}

/* Gives r blocks until it covers npos positions. The admission rule reserves them, so a
 * failure here is a scheduler bug: reported as an internal error, never a crash. */
static int grow(gb_paged *pg, cb_req *r, int npos, int *reserved, gb_error *err) {
    while (r->n_blocks * pg->block_size < npos) {
        int id = r->n_blocks < pg->max_blocks ? gb_paged_block_alloc(pg) : -1;
        if (id < 0)
            return gb_error_set(err, GB_ERR_INTERNAL,
                                "continuous batching: no KV block for position %d (%d held, "
                                "%d free, %d reserved)",
                                npos - 1, r->n_blocks, pg->n_free, *reserved);
        r->table[r->n_blocks++] = id;
        (*reserved)--;
    }
    return 0;
}

static int finish(gb_paged *pg, cb_req *r, int *reserved, gb_error *err) {
    for (int i = 0; i < r->n_blocks; i++)
        if (gb_paged_block_release(pg, r->table[i]))
            return gb_error_set(err, GB_ERR_INTERNAL,
                                "continuous batching: KV block %d released twice or unknown",
                                r->table[i]);
    *reserved -= r->need - r->n_blocks;
    r->n_blocks = 0;
    r->state = 2;
    return 0;
}

typedef struct cb_run {
    gb_model *m;
    const gb_generate_params *p;
    gb_paged pg;
    gb_workspace ws;
    cb_req *req;
    int32_t *tables; /* host [max_batch, max_blocks] */
    int32_t *pos;    /* host [max_batch] */
    int32_t *ids;    /* host [max_batch] */
    int *rows;       /* request index of each sequence of a call */
    int32_t *step_ids;
} cb_run;

/* Prefill of the k requests x->rows[0..k), all with prompt length T: one forward call. */
static int prefill(cb_run *x, int k, int T, int32_t *out_ids, gb_error *err) {
    gb_model *m = x->m;
    gb_workspace *ws = &x->ws;
    const int mb = x->pg.max_blocks, N = x->p->new_tokens, V = m->cfg.vocab_size;
    for (int j = 0; j < k; j++) {
        cb_req *r = &x->req[x->rows[j]];
        memcpy(x->tables + (size_t)j * mb, r->table, (size_t)mb * sizeof(int32_t));
        x->pos[j] = 0;
        GB_TRY(m->be->ops->upload(m->be, ws->ids + (size_t)j * T, r->prompt,
                                  (size_t)T * sizeof(int32_t), err));
    }
    GB_TRY(gb_paged_set_call(m, &x->pg, k, T, x->pos, x->tables, err));
    GB_TRY(gb_forward(m, ws, k, T, GB_LOGITS_LAST, err));
    m->be->ops->argmax(m->be, ws->next, ws->logits, k, V);
    GB_TRY(m->be->ops->download(m->be, x->ids, ws->next, (size_t)k * sizeof(int32_t), err));
    for (int j = 0; j < k; j++) {
        cb_req *r = &x->req[x->rows[j]];
        if (x->rows[j] == 0 && x->p->last_logits)
            GB_TRY(m->be->ops->download(m->be, x->p->last_logits, ws->logits + (size_t)j * V,
                                        (size_t)V * sizeof(float), err));
        r->last = x->ids[j];
        r->len = T;
        r->generated = 1;
        out_ids[(size_t)x->rows[j] * N] = r->last;
    }
    return 0;
}

/* One decode step of the n requests x->rows[0..n). */
static int decode(cb_run *x, int n, int32_t *out_ids, int *reserved, gb_error *err) {
    gb_model *m = x->m;
    gb_workspace *ws = &x->ws;
    const int mb = x->pg.max_blocks, N = x->p->new_tokens;
    for (int j = 0; j < n; j++) {
        cb_req *r = &x->req[x->rows[j]];
        GB_TRY(grow(&x->pg, r, r->len + 1, reserved, err));
        memcpy(x->tables + (size_t)j * mb, r->table, (size_t)mb * sizeof(int32_t));
        x->pos[j] = r->len;
        x->ids[j] = r->last;
    }
    GB_TRY(gb_paged_set_call(m, &x->pg, n, 1, x->pos, x->tables, err));
    GB_TRY(m->be->ops->upload(m->be, ws->ids, x->ids, (size_t)n * sizeof(int32_t), err));
    GB_TRY(gb_forward(m, ws, n, 1, GB_LOGITS_LAST, err));
    m->be->ops->argmax(m->be, ws->next, ws->logits, n, m->cfg.vocab_size);
    GB_TRY(m->be->ops->download(m->be, x->ids, ws->next, (size_t)n * sizeof(int32_t), err));
    for (int j = 0; j < n; j++) {
        cb_req *r = &x->req[x->rows[j]];
        r->last = x->ids[j];
        r->len++;
        out_ids[(size_t)x->rows[j] * N + r->generated++] = r->last;
    }
    return 0;
}

static int schedule(cb_run *x, int max_batch, int32_t *out_ids, gb_error *err) {
    gb_model *m = x->m;
    const gb_generate_params *p = x->p;
    const int B = p->batch, N = p->new_tokens;
    int next_wait = 0, running = 0, done = 0, reserved = 0, rc = 0;
    for (int step = 0; done < B; step++) {
        const int64_t t0 = gb_clock_ns();
        /* admission (FIFO), prefilled in runs of equal prompt length */
        int admitted = 0, k = 0;
        while (next_wait < B && running < max_batch) {
            cb_req *r = &x->req[next_wait];
            if (x->pg.n_free - reserved < r->need) break;
            reserved += r->need;
            r->state = 1;
            r->fresh = 1;
            running++;
            next_wait++;
            admitted = 1;
            if ((rc = grow(&x->pg, r, r->prompt_len, &reserved, err))) return rc;
            if (k && x->req[x->rows[k - 1]].prompt_len != r->prompt_len) {
                if ((rc = prefill(x, k, x->req[x->rows[0]].prompt_len, out_ids, err))) return rc;
                k = 0;
            }
            x->rows[k++] = (int)(r - x->req);
        }
        if (k && (rc = prefill(x, k, x->req[x->rows[0]].prompt_len, out_ids, err))) return rc;
        const int64_t t1 = gb_clock_ns();
        if (admitted && m->opts.trace) m->opts.trace(m->opts.trace_user, "prefill", t0, t1, 0);
        /* one decode step of the requests admitted before this step */
        int n = 0;
        for (int i = 0; i < B; i++)
            if (x->req[i].state == 1 && !x->req[i].fresh && x->req[i].generated < N)
                x->rows[n++] = i;
        if (n && (rc = decode(x, n, out_ids, &reserved, err))) return rc;
        const int64_t t = gb_clock_ns();
        if (n && m->opts.trace) m->opts.trace(m->opts.trace_user, "decode step", t1, t, 0);
        /* the step's tokens in request order: every running request produced exactly one
         * (prefill or decode; the finished ones were retired at the end of their last step);
         * the requests that reach new_tokens free their blocks */
        k = 0;
        for (int i = 0; i < B; i++) {
            cb_req *r = &x->req[i];
            if (r->state != 1) continue;
            r->fresh = 0;
            x->step_ids[k++] = out_ids[(size_t)i * N + r->generated - 1];
            if (r->generated == N) {
                if ((rc = finish(&x->pg, r, &reserved, err))) return rc;
                running--;
                done++;
            }
        }
        if (p->on_token && k) p->on_token(p->user, step, x->step_ids, k, t);
        if (!k) /* cannot happen: with nothing running the head of the queue always fits */
            return gb_error_set(err, GB_ERR_INTERNAL, "continuous batching: scheduler stalled");
    }
    return 0;
}

int gb_generate_cb(gb_model *m, const gb_generate_params *p, const gb_cb_options *o,
                   int32_t *out_ids, gb_error *err) {
    if (p->batch < 1 || p->prompt_len < 1 || p->new_tokens < 1)
        return gb_error_set(err, GB_ERR_INVALID,
                            "generate: batch %d, prompt length %d and new tokens %d must be >= 1",
                            p->batch, p->prompt_len, p->new_tokens);
    if (!gb_model_supports_cb(m))
        return gb_error_set(err, GB_ERR_UNSUPPORTED,
                            "continuous batching: the %s backend has no paged KV cache ops",
                            m->be->ops->name);
    const int B = p->batch, T = p->prompt_len, N = p->new_tokens;
    GB_TRY(gb_engine_check_ids(m, p->prompt_ids, (size_t)B * T, err));
    if (m->cfg.arch == GB_ARCH_GPT2 && T + N > m->cfg.max_position)
        return gb_error_set(err, GB_ERR_INVALID, "%d positions exceed the model's n_positions %d",
                            T + N, m->cfg.max_position);
    gb_cb_options opt = {0};
    if (o) opt = *o;
    const int bs = opt.block_size > 0 ? opt.block_size : 16;
    /* positions a request stores: its prompt and every generated token but the last */
    const int need = blocks_for(T + N - 1, bs);
    const int n_blocks = opt.num_blocks > 0 ? opt.num_blocks : need * B;
    const int max_batch = opt.max_batch > 0 && opt.max_batch < B ? opt.max_batch : B;
    if (opt.block_size < 0 || opt.num_blocks < 0 || opt.max_batch < 0)
        return gb_error_set(err, GB_ERR_INVALID,
                            "continuous batching: block size %d, pool %d blocks and max batch %d "
                            "must be >= 0 (0 = default)",
                            opt.block_size, opt.num_blocks, opt.max_batch);
    if (need > n_blocks)
        return gb_error_set(err, GB_ERR_INVALID,
                            "continuous batching: a pool of %d blocks of %d positions cannot hold "
                            "one request of %d positions",
                            n_blocks, bs, T + N - 1);

    /* every position here comes from the call (per-sequence rope/embed pos0, the paged ops'
     * device arrays): a device-side step position left on by a graph decode must not win */
    if (m->be->ops->set_pos) m->be->ops->set_pos(m->be, -1);
    cb_run x;
    memset(&x, 0, sizeof x);
    x.m = m;
    x.p = p;
    x.req = calloc((size_t)B, sizeof *x.req);
    int32_t *all_tables = calloc((size_t)B * need, sizeof(int32_t));
    x.tables = calloc((size_t)max_batch * need, sizeof(int32_t));
    x.pos = calloc((size_t)max_batch, sizeof(int32_t));
    x.ids = calloc((size_t)max_batch, sizeof(int32_t));
    x.rows = calloc((size_t)max_batch, sizeof(int));
    x.step_ids = calloc((size_t)max_batch, sizeof(int32_t));
    int rc = 0;
    if (!x.req || !all_tables || !x.tables || !x.pos || !x.ids || !x.rows || !x.step_ids)
        rc = gb_error_set(err, GB_ERR_NOMEM, "continuous batching: out of memory");
    for (int i = 0; !rc && i < B; i++) {
        x.req[i].prompt = p->prompt_ids + (size_t)i * T;
        x.req[i].prompt_len = T;
        x.req[i].need = need;
        x.req[i].table = all_tables + (size_t)i * need;
    }
    /* rows: a prefill (max_batch prompts) or a decode step (max_batch) */
    if (!rc) rc = gb_paged_init(m, &x.pg, bs, n_blocks, need, max_batch, err);
    if (!rc) rc = gb_workspace_init(m, &x.ws, max_batch * T, max_batch, err);
    if (!rc) {
        m->paged = &x.pg;
        rc = schedule(&x, max_batch, out_ids, err);
        m->paged = NULL;
        m->kv_bytes_last = x.pg.bytes;
    }
    if (x.ws.x) gb_workspace_free(m, &x.ws);
    if (x.pg.k) gb_paged_free(m, &x.pg);
    free(x.req);
    free(all_tables);
    free(x.tables);
    free(x.pos);
    free(x.ids);
    free(x.rows);
    free(x.step_ids);
    return rc;
}
