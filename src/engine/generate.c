/* Greedy generation: one prefill over the whole prompt (all sequences as one batch of
 * rows), then one decode step per new token. End-of-sequence never stops generation.
 * Static cache (a compile mode): cache and buffers sized once for prompt + new tokens and
 * kept on the model. Dynamic cache: the cache starts at the prompt length and grows; the
 * buffers of a generation are planned for it and freed after. */
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "util/clock.h"
#include "util/error.h"

void gb_engine_options_default(gb_engine_options *o) {
    memset(o, 0, sizeof *o);
    o->device = GB_DEVICE_CPU;
    o->dtype = GB_BF16;
    o->attn = GB_ATTN_SDPA;
}

int gb_engine_check_ids(const gb_model *m, const int32_t *ids, size_t n, gb_error *err) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size)
            return gb_error_set(err, GB_ERR_INVALID,
                                "token id %d at index %zu is outside the vocabulary [0, %d)",
                                (int)ids[i], i, m->cfg.vocab_size);
    return 0;
}

static int check_positions(const gb_model *m, int total, gb_error *err) {
    /* learned position tables end; RoPE models may run past max_position_embeddings */
    if (m->cfg.arch == GB_ARCH_GPT2 && total > m->cfg.max_position)
        return gb_error_set(err, GB_ERR_INVALID, "%d positions exceed the model's n_positions %d",
                            total, m->cfg.max_position);
    return 0;
}

/* The ids of the last forward (ws->logits rows of each sequence) -> ws->ids, the next step's
 * input (the forward has read the old ids by then: ops run in order), then host. A fused
 * decode step (decode_step) has already put them there. */
static void pick_next_dev(gb_model *m, gb_workspace *ws, int batch) {
    if (ws->ids_ready) {
        ws->ids_ready = 0;
        return;
    }
    m->be->ops->argmax(m->be, ws->ids, ws->logits, batch, m->cfg.vocab_size);
}
static int ids_to_host(gb_model *m, gb_workspace *ws, int batch, int32_t *host, gb_error *err) {
    return m->be->ops->download(m->be, host, ws->ids, (size_t)batch * sizeof(int32_t), err);
}
static int pick_next(gb_model *m, gb_workspace *ws, int batch, int32_t *host, gb_error *err) {
    pick_next_dev(m, ws, batch);
    return ids_to_host(m, ws, batch, host, err);
}

/* One decode step: the previous step's ids (ws->ids, already on the backend) go in, the
 * new ids come out in ws->ids and host_ids. Kept separate so a backend can capture it (CUDA
 * graphs). */
static int decode_step(gb_model *m, gb_workspace *ws, int batch, int32_t *host_ids, gb_error *err) {
    if (!m->opts.static_cache) GB_TRY(gb_kv_reserve(m, m->kv.len + 1, err));
    GB_TRY(gb_forward(m, ws, batch, 1, GB_LOGITS_LAST, err));
    return pick_next(m, ws, batch, host_ids, err);
}

/* CUDA graphs (compile reduce-overhead / max-autotune): the decode step is captured once and
 * replayed. The backend reads positions from device memory (set_pos), so one capture serves
 * every step, and later generations too while the cache and buffers stay the same. */
static uint64_t graph_key(const gb_model *m, const gb_workspace *ws, int batch) {
    uint64_t h = 1469598103934665603ull;
#define GB_MIX(v) (h = (h ^ (uint64_t)(uintptr_t)(v)) * 1099511628211ull)
    GB_MIX(batch);
    GB_MIX(m->kv.cap);
    for (int l = 0; l < m->cfg.num_layers; l++)
        GB_MIX(m->kv.k[l]), GB_MIX(m->kv.v[l]);
    const void *bufs[] = {ws->x,    ws->xn, ws->q,    ws->k,      ws->v,   ws->att,    ws->proj,
                          ws->gate, ws->up, ws->last, ws->logits, ws->ids, ws->scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        GB_MIX(bufs[i]);
#undef GB_MIX
    return h ? h : 1;
}

/* The captured step reads its input ids from ws->ids and leaves the next ones there, as
 * decode_step: the graph holds kernels only. Issues the step without waiting for it. */
static int decode_issue_graph(gb_model *m, gb_workspace *ws, int batch, gb_error *err) {
    gb_backend *be = m->be;
    const uint64_t key = graph_key(m, ws, batch);
    be->ops->set_pos(be, m->kv.len);
    if (m->graph_key != key) {
        m->graph_key = 0;
        const int len = m->kv.len;
        GB_TRY(be->ops->graph_begin(be, err));
        gb_trace_fn trace = m->opts.trace; /* op/layer slices sync: not while capturing */
        m->opts.trace = NULL;
        int rc = gb_forward(m, ws, batch, 1, GB_LOGITS_LAST, err);
        if (!rc) pick_next_dev(m, ws, batch);
        m->opts.trace = trace;
        int rc2 = be->ops->graph_end(be, rc ? NULL : err);
        GB_TRY(rc ? rc : rc2);
        m->kv.len = len; /* captured, not run */
        m->graph_key = key;
    }
    GB_TRY(be->ops->graph_launch(be, err));
    m->kv.len += 1;
    return 0;
}

static int decode_step_graph(gb_model *m, gb_workspace *ws, int batch, int32_t *host_ids,
                             gb_error *err) {
    GB_TRY(decode_issue_graph(m, ws, batch, err));
    return ids_to_host(m, ws, batch, host_ids, err);
}

/* Pipelined graph decode: the step after `step` is issued, with the copy of its ids into the
 * other host slot, before the host waits for this step's ids, so the device does not idle
 * through the host's wait, wake-up and next launch (the ids a step writes are read by the next
 * step on the device; the copy is ordered between them). Token times stay the moments the host
 * has the ids. GB_DECODE_PIPELINE=0 (A/B timings) waits for each step before the next. */
static int decode_step_pipelined(gb_model *m, gb_workspace *ws, int batch, int step, int n,
                                 int32_t *host_ids, gb_error *err) {
    const size_t bytes = (size_t)batch * sizeof(int32_t);
    /* step s runs with its ids copied into slot s & 1; at step 1 nothing is in flight yet */
    for (int s = step == 1 ? 1 : step + 1; s <= step + 1 && s < n; s++) {
        GB_TRY(decode_issue_graph(m, ws, batch, err));
        GB_TRY(m->be->ops->download_start(m->be, s & 1, ws->ids, bytes, err));
    }
    return m->be->ops->download_finish(m->be, step & 1, host_ids, bytes, err);
}

static int decode_pipeline_enabled(const gb_model *m) {
    const char *env = getenv("GB_DECODE_PIPELINE");
    return m->be->ops->download_start && m->be->ops->download_finish && !(env && *env == '0');
}

/* Static mode: the model's workspace, (re)planned when a larger shape comes, with attention
 * scratch for both the prefill and the last decode step. */
static int plan_static(gb_model *m, int batch, int prompt_len, int cap, gb_error *err) {
    gb_workspace *ws = &m->ws;
    int rows = batch * prompt_len;
    if (!ws->x || ws->rows < rows || ws->logit_rows < batch) {
        gb_workspace_free(m, ws);
        GB_TRY(gb_workspace_init(m, ws, rows, batch, err));
    }
    gb_attn_args pre = {.batch = batch,
                        .n_tokens = prompt_len,
                        .pos0 = 0,
                        .cap = cap,
                        .n_heads = m->cfg.num_heads,
                        .n_kv_heads = m->cfg.num_kv_heads,
                        .head_dim = m->cfg.head_dim,
                        .sliding_window = m->cfg.sliding_window};
    gb_attn_args dec = pre;
    dec.n_tokens = 1;
    dec.pos0 = cap - 1;
    GB_TRY(gb_workspace_scratch(m, ws, &pre, err));
    return gb_workspace_scratch(m, ws, &dec, err);
}

int gb_generate(gb_model *m, const gb_generate_params *p, int32_t *out_ids, gb_error *err) {
    if (p->batch < 1 || p->prompt_len < 1 || p->new_tokens < 1)
        return gb_error_set(err, GB_ERR_INVALID,
                            "generate: batch %d, prompt length %d and new tokens %d must be >= 1",
                            p->batch, p->prompt_len, p->new_tokens);
    GB_TRY(gb_engine_check_ids(m, p->prompt_ids, (size_t)p->batch * p->prompt_len, err));
    GB_TRY(check_positions(m, p->prompt_len + p->new_tokens, err));
    const int batch = p->batch, T = p->prompt_len, N = p->new_tokens;
    const int stat = m->opts.static_cache;
    int32_t *ids = malloc((size_t)batch * sizeof(int32_t));
    if (!ids) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");

    gb_workspace dyn = {0}, dec = {0};
    gb_workspace *ws = stat ? &m->ws : &dyn;
    int rc = gb_kv_init(m, batch, stat ? T + N : T, err);
    if (!rc)
        rc = stat ? plan_static(m, batch, T, T + N, err)
                  : gb_workspace_init(m, ws, batch * T, batch, err);

    int64_t t_step = gb_clock_ns();
    /* prefill: the whole prompt in one pass, logits of each sequence's last position */
    if (!rc)
        rc = m->be->ops->upload(m->be, ws->ids, p->prompt_ids, (size_t)batch * T * sizeof(int32_t),
                                err);
    if (!rc) rc = gb_forward(m, ws, batch, T, GB_LOGITS_LAST, err);
    if (!rc) rc = pick_next(m, ws, batch, ids, err);
    if (!rc) {
        int64_t t = gb_clock_ns();
        for (int s = 0; s < batch; s++)
            out_ids[(size_t)s * N] = ids[s];
        if (p->last_logits)
            rc = m->be->ops->download(m->be, p->last_logits, ws->logits,
                                      (size_t)m->cfg.vocab_size * sizeof(float), err);
        if (m->opts.trace) m->opts.trace(m->opts.trace_user, "prefill", t_step, t, 0);
        if (p->on_token) p->on_token(p->user, 0, ids, batch, t);
    }
    if (!rc && !stat && N > 1) { /* decode buffers: batch rows; the prefill ones go */
        rc = gb_workspace_init(m, &dec, batch, batch, err);
        if (!rc)
            rc = m->be->ops->copy(m->be, dec.ids, ws->ids, (size_t)batch * sizeof(int32_t), err);
        gb_workspace_free(m, ws);
        ws = &dec;
    }

    /* decode: one token per sequence per step */
    const int graph = stat && m->opts.cuda_graph && m->be->ops->graph_launch;
    const int pipe = graph && decode_pipeline_enabled(m);
    for (int step = 1; !rc && step < N; step++) {
        t_step = gb_clock_ns();
        rc = pipe    ? decode_step_pipelined(m, ws, batch, step, N, ids, err)
             : graph ? decode_step_graph(m, ws, batch, ids, err)
                     : decode_step(m, ws, batch, ids, err);
        if (rc) break;
        int64_t t = gb_clock_ns();
        if (m->opts.trace) m->opts.trace(m->opts.trace_user, "decode step", t_step, t, 0);
        for (int s = 0; s < batch; s++)
            out_ids[(size_t)s * N + step] = ids[s];
        if (p->on_token) p->on_token(p->user, step, ids, batch, t);
    }

    if (graph) m->be->ops->set_pos(m->be, -1);
    m->kv_bytes_last = m->kv.bytes;
    if (!stat) {
        gb_workspace_free(m, &dyn);
        gb_workspace_free(m, &dec);
        gb_kv_free(m);
    }
    free(ids);
    return rc;
}

int gb_model_forward_all(gb_model *m, const int32_t *ids, int n, float *logits, gb_error *err) {
    if (n < 1) return gb_error_set(err, GB_ERR_INVALID, "forward_all: %d tokens", n);
    GB_TRY(gb_engine_check_ids(m, ids, (size_t)n, err));
    GB_TRY(check_positions(m, n, err));
    gb_kv_free(m); /* a private cache for this one sequence */
    gb_workspace ws;
    GB_TRY(gb_kv_init(m, 1, n, err));
    int rc = gb_workspace_init(m, &ws, n, n, err);
    if (rc) {
        gb_kv_free(m);
        return rc;
    }
    rc = m->be->ops->upload(m->be, ws.ids, ids, (size_t)n * sizeof(int32_t), err);
    if (!rc) rc = gb_forward(m, &ws, 1, n, GB_LOGITS_ALL, err);
    if (!rc)
        rc = m->be->ops->download(m->be, logits, ws.logits,
                                  (size_t)n * m->cfg.vocab_size * sizeof(float), err);
    gb_workspace_free(m, &ws);
    gb_kv_free(m);
    return rc;
}
