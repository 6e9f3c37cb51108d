/* The forward pass, written once against the backend op table, in Hugging Face module
 * order: embeddings, then per layer [norm -> q/k/v -> (q/k norm) -> RoPE -> cache ->
 * attention -> o_proj -> residual] and [norm -> MLP -> residual], then the final norm and
 * the output head on the rows whose logits are wanted. Fused entries of a kernelized
 * table replace the matching sequence of plain ops when present. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "engine/paged.h"
#include "util/clock.h"
#include "util/error.h"

/* ---- workspace ---- */

static int ws_alloc(gb_model *m, size_t bytes, void *pp, gb_error *err) {
    return m->be->ops->alloc(m->be, bytes ? bytes : 4, (void **)pp, err);
}

int gb_workspace_init(gb_model *m, gb_workspace *ws, int rows, int logit_rows, gb_error *err) {
    const gb_model_config *c = &m->cfg;
    size_t r = (size_t)rows, f = sizeof(float);
    size_t qw = (size_t)c->num_heads * c->head_dim, kvw = (size_t)c->num_kv_heads * c->head_dim;
    memset(ws, 0, sizeof *ws);
    ws->rows = rows;
    ws->logit_rows = logit_rows;
    int rc = 0;
    if ((rc = ws_alloc(m, r * c->hidden_size * f, &ws->x, err)) ||
        (rc = ws_alloc(m, r * c->hidden_size * f, &ws->xn, err)) ||
        (rc = ws_alloc(m, r * qw * f, &ws->q, err)) ||
        (rc = ws_alloc(m, r * kvw * f, &ws->k, err)) ||
        (rc = ws_alloc(m, r * kvw * f, &ws->v, err)) ||
        (rc = ws_alloc(m, r * qw * f, &ws->att, err)) ||
        (rc = ws_alloc(m, r * c->hidden_size * f, &ws->proj, err)) ||
        (rc = ws_alloc(m, r * c->intermediate_size * f, &ws->gate, err)) ||
        (rc = ws_alloc(m, r * c->intermediate_size * f, &ws->up, err)) ||
        (rc = ws_alloc(m, (size_t)logit_rows * c->hidden_size * f, &ws->last, err)) ||
        (rc = ws_alloc(m, (size_t)logit_rows * c->vocab_size * f, &ws->logits, err)) ||
        (rc = ws_alloc(m, r * sizeof(int32_t), &ws->ids, err)) ||
        (rc = ws_alloc(m, (size_t)logit_rows * sizeof(int32_t), &ws->next, err))) {
        gb_workspace_free(m, ws);
        return gb_error_prefix(err, "activation buffers for %d rows", rows);
    }
    return 0;
}

void gb_workspace_free(gb_model *m, gb_workspace *ws) {
    void *bufs[] = {ws->x,    ws->xn, ws->q,    ws->k,      ws->v,   ws->att,  ws->proj,
                    ws->gate, ws->up, ws->last, ws->logits, ws->ids, ws->next, ws->scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) m->be->ops->free(m->be, bufs[i]);
    memset(ws, 0, sizeof *ws);
}

int gb_workspace_scratch(gb_model *m, gb_workspace *ws, const gb_attn_args *a, gb_error *err) {
    size_t need = m->be->ops->attn_scratch_bytes(m->be, m->opts.attn, a);
    if (need <= ws->scratch_bytes && ws->scratch) return 0;
    if (ws->scratch) m->be->ops->free(m->be, ws->scratch);
    ws->scratch = NULL;
    ws->scratch_bytes = 0;
    GB_TRY(ws_alloc(m, need, &ws->scratch, err));
    ws->scratch_bytes = need;
    return 0;
}

/* ---- KV cache ---- */

void gb_kv_free(gb_model *m) {
    gb_kv_cache *kv = &m->kv;
    for (int l = 0; kv->k && l < m->cfg.num_layers; l++) {
        if (kv->k[l]) m->be->ops->free(m->be, kv->k[l]);
        if (kv->v[l]) m->be->ops->free(m->be, kv->v[l]);
    }
    free(kv->k);
    free(kv->v);
    memset(kv, 0, sizeof *kv);
}

static size_t kv_layer_bytes(const gb_model *m, int batch, int cap) {
    return (size_t)batch * cap * m->cfg.num_kv_heads * m->cfg.head_dim * sizeof(float);
}

/* Fresh per-layer buffers of cap positions; on failure everything is freed. */
static int kv_alloc(gb_model *m, gb_kv_cache *kv, int batch, int cap, gb_error *err) {
    int L = m->cfg.num_layers;
    memset(kv, 0, sizeof *kv);
    kv->k = calloc((size_t)L, sizeof *kv->k);
    kv->v = calloc((size_t)L, sizeof *kv->v);
    if (!kv->k || !kv->v) {
        free(kv->k);
        free(kv->v);
        return gb_error_set(err, GB_ERR_NOMEM, "out of memory for the KV cache");
    }
    kv->batch = batch;
    kv->cap = cap;
    size_t lb = kv_layer_bytes(m, batch, cap);
    for (int l = 0; l < L; l++) {
        int rc = m->be->ops->alloc(m->be, lb, (void **)&kv->k[l], err);
        if (!rc) rc = m->be->ops->alloc(m->be, lb, (void **)&kv->v[l], err);
        if (rc) {
            gb_kv_cache saved = m->kv;
            m->kv = *kv;
            gb_kv_free(m);
            m->kv = saved;
            return gb_error_prefix(err, "KV cache (%d x %d positions)", batch, cap);
        }
    }
    kv->bytes = 2 * lb * (size_t)L;
    return 0;
}

int gb_kv_init(gb_model *m, int batch, int cap, gb_error *err) {
    if (m->kv.k && m->kv.batch == batch && m->kv.cap == cap) {
        m->kv.len = 0;
        return 0;
    }
    gb_kv_free(m);
    gb_kv_cache kv;
    GB_TRY(kv_alloc(m, &kv, batch, cap, err));
    m->kv = kv;
    return 0;
}

int gb_kv_reserve(gb_model *m, int need, gb_error *err) {
    gb_kv_cache *old = &m->kv;
    if (need <= old->cap) return 0;
    int cap = old->cap * 2 > need ? old->cap * 2 : need;
    gb_kv_cache kv;
    GB_TRY(kv_alloc(m, &kv, old->batch, cap, err));
    kv.len = old->len;
    size_t row = (size_t)m->cfg.num_kv_heads * m->cfg.head_dim * sizeof(float);
    int rc = 0;
    for (int l = 0; l < m->cfg.num_layers && !rc; l++)
        for (int s = 0; s < old->batch && !rc; s++) {
            size_t src = (size_t)s * old->cap * row, dst = (size_t)s * cap * row;
            rc = m->be->ops->copy(m->be, (char *)kv.k[l] + dst, (char *)old->k[l] + src,
                                  (size_t)old->len * row, err);
            if (!rc)
                rc = m->be->ops->copy(m->be, (char *)kv.v[l] + dst, (char *)old->v[l] + src,
                                      (size_t)old->len * row, err);
        }
    gb_kv_cache keep = *old;
    m->kv = rc ? keep : kv; /* free whichever is dropped */
    gb_kv_cache drop = rc ? kv : keep;
    gb_kv_cache cur = m->kv;
    m->kv = drop;
    gb_kv_free(m);
    m->kv = cur;
    return rc;
}

/* ---- tracing (profiling only; free when opts.trace is NULL) ---- */

/* Consecutive slices on one track: tr_next closes the open slice and opens the next. On an
 * asynchronous backend each boundary syncs, so slices hold the device work. */
typedef struct tracer {
    gb_model *m;
    int track, open;
    int64_t t0;
    char name[32]; /* of the open slice */
} tracer;

static void tr_next(tracer *t, const char *next) {
    if (!t->m->opts.trace) return;
    t->m->be->ops->sync(t->m->be, NULL);
    int64_t now = gb_clock_ns();
    if (t->open) t->m->opts.trace(t->m->opts.trace_user, t->name, t->t0, now, t->track);
    t->open = next != NULL;
    if (next) snprintf(t->name, sizeof t->name, "%s", next);
    t->t0 = now;
}

/* ---- the whole decode step as one backend op ---- */

/* One token of one sequence through decode_step (CUDA, kernelized) where the model has the
 * structure it computes: pre-norm RMSNorm, RoPE, no biases, q/k norms or windows, SiLU MLP.
 * Returns 1 when the backend issued the step (the logits and, in ws->ids, their argmax);
 * 0 when the ops must run (the backend declines shapes and dtypes it does not take). */
static int fused_step(gb_model *m, gb_workspace *ws) {
    const gb_model_config *c = &m->cfg;
    const gb_backend_ops *op = m->be->ops;
    if (!op->decode_step || c->arch == GB_ARCH_GPT2 || c->qk_norm || c->sliding_window > 0 ||
        c->act != GB_ACT_SILU || c->num_layers > GB_STEP_MAX_LAYERS || m->kv.batch != 1)
        return 0;
    gb_step_layer sl[GB_STEP_MAX_LAYERS];
    for (int l = 0; l < c->num_layers; l++) {
        const gb_layer *L = &m->layers[l];
        if (L->bq || L->bk || L->bv || L->bo || L->bgate || L->bup || L->bdown) return 0;
        sl[l] = (gb_step_layer){.attn_norm_w = L->attn_norm_w,
                                .mlp_norm_w = L->mlp_norm_w,
                                .wq = &L->wq,
                                .wk = &L->wk,
                                .wv = &L->wv,
                                .wo = &L->wo,
                                .wgate = &L->wgate,
                                .wup = &L->wup,
                                .wdown = &L->wdown,
                                .kcache = m->kv.k[l],
                                .vcache = m->kv.v[l]};
    }
    const gb_step_model sm = {.n_layers = c->num_layers,
                              .hidden = c->hidden_size,
                              .intermediate = c->intermediate_size,
                              .n_heads = c->num_heads,
                              .n_kv_heads = c->num_kv_heads,
                              .head_dim = c->head_dim,
                              .vocab = c->vocab_size,
                              .cap = m->kv.cap,
                              .eps = c->norm_eps,
                              .scale = (float)(1.0 / sqrt((double)c->head_dim)),
                              .act = GB_BACT_SILU,
                              .inv_freq = m->inv_freq,
                              .attn_factor = m->attn_factor,
                              .embed = &m->embed,
                              .lm_head = m->lm_head,
                              .final_norm_w = m->final_norm_w,
                              .layers = sl};
    return op->decode_step(m->be, &sm, ws->logits, ws->ids, m->kv.len);
}

/* ---- forward ---- */

int gb_forward(gb_model *m, gb_workspace *ws, int batch, int n_tokens, gb_logits_mode mode,
               gb_error *err) {
    const gb_model_config *c = &m->cfg;
    gb_backend *be = m->be;
    const gb_backend_ops *op = be->ops;
    const int T = n_tokens, n = batch * T, H = c->hidden_size, I = c->intermediate_size;
    const int nh = c->num_heads, nkv = c->num_kv_heads, hd = c->head_dim;
    const float eps = c->norm_eps;
    const int gpt2 = c->arch == GB_ARCH_GPT2;
    const gb_act_kind act = c->act == GB_ACT_SILU ? GB_BACT_SILU : GB_BACT_GELU_TANH;
    const int logit_rows = mode == GB_LOGITS_ALL ? n : batch;
    const int paged = m->paged != NULL; /* K/V through the paged cache (continuous batching) */
    if (n > ws->rows || logit_rows > ws->logit_rows ||
        (paged ? batch != m->paged->batch || T != m->paged->n_tokens
               : batch != m->kv.batch || m->kv.len + T > m->kv.cap))
        return gb_error_set(err, GB_ERR_INTERNAL, "forward: %d x %d rows do not fit the plan",
                            batch, T);

    gb_attn_args aa = {.batch = batch,
                       .n_tokens = T,
                       .pos0 = m->kv.len,
                       .cap = m->kv.cap,
                       .n_heads = nh,
                       .n_kv_heads = nkv,
                       .head_dim = hd,
                       .scale = (float)(1.0 / sqrt((double)hd)),
                       .sliding_window = c->sliding_window};
    gb_rope_args rq = {.n_tokens = T,
                       .batch = batch,
                       .pos0 = m->kv.len,
                       .n_heads = nh,
                       .head_dim = hd,
                       .inv_freq = m->inv_freq,
                       .attn_factor = m->attn_factor};
    gb_rope_args rk = rq;
    rk.n_heads = nkv;
    if (!paged) GB_TRY(gb_workspace_scratch(m, ws, &aa, err));

    tracer ops = {.m = m, .track = 2}, layer = {.m = m, .track = 1};
    /* decode of one sequence: the whole step at once where the backend takes it (traced as
     * one slice from its launch) */
    ws->ids_ready = 0;
    if (!paged && batch == 1 && T == 1 && mode == GB_LOGITS_LAST && fused_step(m, ws)) {
        tr_next(&ops, "decode_step");
        tr_next(&ops, NULL);
        m->kv.len += T;
        ws->ids_ready = 1; /* its argmax too */
        return 0;
    }
    tr_next(&ops, "embed");

    /* token (+ learned position) embeddings: x [n, H] */
    if (paged)
        gb_paged_embed(m, ws);
    else
        op->embed(be, ws->x, &m->embed, ws->ids, n, gpt2 ? &m->pos_embed : NULL, T, m->kv.len);

    for (int l = 0; l < c->num_layers; l++) {
        const gb_layer *L = &m->layers[l];
        float *kc = paged ? NULL : m->kv.k[l], *vc = paged ? NULL : m->kv.v[l];
        char lname[32];
        snprintf(lname, sizeof lname, "layer %d", l);
        tr_next(&layer, lname);
        tr_next(&ops, "norm+qkv");

        /* self-attention: q [n, nh*hd], k/v [n, nkv*hd] from the normalised input */
        if (gpt2) {
            op->layernorm(be, ws->xn, ws->x, L->attn_norm_w, L->attn_norm_b, n, H, eps);
        } else if (op->rmsnorm_matmul) {
            float *ys[3] = {ws->q, ws->k, ws->v};
            const gb_weight *w3[3] = {&L->wq, &L->wk, &L->wv};
            const float *b3[3] = {L->bq, L->bk, L->bv};
            op->rmsnorm_matmul(be, ys, ws->xn, ws->x, L->attn_norm_w, eps, w3, b3, 3, n);
        } else {
            op->rmsnorm(be, ws->xn, ws->x, L->attn_norm_w, n, H, eps);
        }
        if (gpt2 || !op->rmsnorm_matmul) {
            op->matmul(be, ws->q, ws->xn, &L->wq, L->bq, n);
            op->matmul(be, ws->k, ws->xn, &L->wk, L->bk, n);
            op->matmul(be, ws->v, ws->xn, &L->wv, L->bv, n);
        }
        if (c->qk_norm) { /* qwen3: RMSNorm over each head's hd values, before RoPE */
            op->rmsnorm(be, ws->q, ws->q, L->q_norm, n * nh, hd, eps);
            op->rmsnorm(be, ws->k, ws->k, L->k_norm, n * nkv, hd, eps);
        }
        if (!paged && !gpt2 && op->rope_kv_attention) {
            tr_next(&ops, "rope+kv_write+attention");
            op->rope_kv_attention(be, m->opts.attn, ws->att, ws->q, ws->k, ws->v, kc, vc, &rq, &aa,
                                  ws->scratch);
        } else {
            tr_next(&ops, gpt2 ? "kv_write" : "rope+kv_write");
            if (paged) {
                gb_paged_rope_kv_write(m, ws, l);
            } else if (gpt2) {
                op->kv_write(be, kc, vc, ws->k, ws->v, &aa);
            } else if (op->rope_kv_write) {
                op->rope_kv_write(be, ws->q, ws->k, ws->v, kc, vc, &rq, &aa);
            } else {
                op->rope(be, ws->q, &rq);
                op->rope(be, ws->k, &rk);
                op->kv_write(be, kc, vc, ws->k, ws->v, &aa);
            }
            tr_next(&ops, "attention");
            if (paged)
                gb_paged_attention(m, ws, l);
            else
                op->attention(be, m->opts.attn, ws->att, ws->q, kc, vc, &aa, ws->scratch);
        }
        tr_next(&ops, "o_proj");
        /* with matmul_add the residual adds happen in the products' epilogues */
        const int fold = op->matmul_add != NULL;
        if (fold)
            op->matmul_add(be, ws->x, ws->att, &L->wo, L->bo, n);
        else
            op->matmul(be, ws->proj, ws->att, &L->wo, L->bo, n);
        tr_next(&ops, "mlp");

        /* residual, then MLP on the normalised stream: xn [n, H] */
        if (gpt2) {
            if (!fold) op->add(be, ws->x, ws->x, ws->proj, (size_t)n * H);
            op->layernorm(be, ws->xn, ws->x, L->mlp_norm_w, L->mlp_norm_b, n, H, eps);
            op->matmul(be, ws->up, ws->xn, &L->wup, L->bup, n); /* c_fc */
            op->act(be, ws->up, ws->up, (size_t)n * I, act);
        } else {
            const int plain_mlp = L->bgate || L->bup;
            if (fold)
                op->rmsnorm(be, ws->xn, ws->x, L->mlp_norm_w, n, H, eps);
            else if (op->add_rmsnorm)
                op->add_rmsnorm(be, ws->x, ws->proj, ws->xn, L->mlp_norm_w, n, H, eps);
            else {
                op->add(be, ws->x, ws->x, ws->proj, (size_t)n * H);
                op->rmsnorm(be, ws->xn, ws->x, L->mlp_norm_w, n, H, eps);
            }
            if (op->gate_up_act && !plain_mlp) {
                op->gate_up_act(be, ws->gate, ws->xn, &L->wgate, &L->wup, n, act);
            } else {
                op->matmul(be, ws->gate, ws->xn, &L->wgate, L->bgate, n);
                op->matmul(be, ws->up, ws->xn, &L->wup, L->bup, n);
                op->act_mul(be, ws->gate, ws->gate, ws->up, (size_t)n * I, act);
            }
        }
        /* down projection (GPT-2: c_proj) and the second residual */
        const gb_weight *wdown = &L->wdown;
        float *mlp_in = gpt2 ? ws->up : ws->gate;
        if (fold) {
            op->matmul_add(be, ws->x, mlp_in, wdown, L->bdown, n);
        } else {
            op->matmul(be, ws->proj, mlp_in, wdown, L->bdown, n);
            op->add(be, ws->x, ws->x, ws->proj, (size_t)n * H);
        }
    }

    tr_next(&layer, NULL);
    tr_next(&ops, "norm+lm_head");

    /* final norm and output head on the wanted rows: logits [logit_rows, V] */
    float *rows = ws->x; /* one token per sequence: the rows are x's own (normalised in place) */
    if (mode == GB_LOGITS_LAST && T > 1) {
        rows = ws->last;
        for (int s = 0; s < batch; s++)
            GB_TRY(op->copy(be, rows + (size_t)s * H, ws->x + ((size_t)s * T + T - 1) * H,
                            (size_t)H * sizeof(float), err));
    }
    if (gpt2) {
        op->layernorm(be, rows, rows, m->final_norm_w, m->final_norm_b, logit_rows, H, eps);
        op->matmul(be, ws->logits, rows, m->lm_head, NULL, logit_rows);
    } else if (op->rmsnorm_matmul) {
        /* the final norm and the head as one op (xnorm: ws->xn, not read afterwards) */
        float *ys[1] = {ws->logits};
        const gb_weight *w1[1] = {m->lm_head};
        op->rmsnorm_matmul(be, ys, ws->xn, rows, m->final_norm_w, eps, w1, NULL, 1, logit_rows);
    } else {
        op->rmsnorm(be, rows, rows, m->final_norm_w, logit_rows, H, eps);
        op->matmul(be, ws->logits, rows, m->lm_head, NULL, logit_rows);
    }
    tr_next(&ops, NULL);
    if (!paged) m->kv.len += T;
    return 0;
}
