/* Reference attention, in the three forms product.md section 3 defines:
 * - eager: the full float32 score matrix [n_tokens, kv_len] of one head at a time, masked,
 *   softmax, then times V;
 * - sdpa: row by row (one query at a time), scores of that row only;
 * - flash: FlashAttention-2 tiling (query tiles x key tiles, online softmax); decode
 *   (one query per sequence) splits the key range into chunks whose partial results
 *   (max, sum, unnormalised output) are merged.
 * Cache layout [batch, cap, n_kv_heads, head_dim]; query row r = s * n_tokens + t has
 * position pos0 + t and sees keys j with max(0, p - window + 1) <= j <= p. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_ref.h"

enum { FLASH_BQ = 16, FLASH_BK = 32, FLASH_DECODE_CHUNK = 64 };

typedef struct head_view {
    const float *q; /* first query row of this (sequence, head); stride qstride */
    float *out;
    const float *k, *v; /* position 0 of this (sequence, kv head); stride kvstride */
    size_t qstride, kvstride;
} head_view;

static head_view head_at(const gb_attn_args *a, float *out, const float *q, const float *kc,
                         const float *vc, int s, int h) {
    head_view hv;
    int group = a->n_heads / a->n_kv_heads;
    hv.qstride = (size_t)a->n_heads * a->head_dim;
    hv.kvstride = (size_t)a->n_kv_heads * a->head_dim;
    hv.q = q + (size_t)s * a->n_tokens * hv.qstride + (size_t)h * a->head_dim;
    hv.out = out + (size_t)s * a->n_tokens * hv.qstride + (size_t)h * a->head_dim;
    size_t kv0 = (size_t)s * a->cap * hv.kvstride + (size_t)(h / group) * a->head_dim;
    hv.k = kc + kv0;
    hv.v = vc + kv0;
    return hv;
}

/* Visible key range [*lo, *hi) of the query at position p. */
static void key_range(const gb_attn_args *a, int p, int *lo, int *hi) {
    *hi = p + 1;
    *lo = (a->sliding_window > 0 && p - a->sliding_window + 1 > 0) ? p - a->sliding_window + 1 : 0;
}

static float dot(const float *x, const float *y, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

static void eager_head(const gb_attn_args *a, const head_view *hv, float *scores) {
    int kv_len = a->pos0 + a->n_tokens, d = a->head_dim;
    for (int t = 0; t < a->n_tokens; t++) { /* scores = q K^T * scale, masked */
        int lo, hi;
        key_range(a, a->pos0 + t, &lo, &hi);
        float *srow = scores + (size_t)t * kv_len;
        for (int j = 0; j < kv_len; j++)
            srow[j] = (j >= lo && j < hi)
                          ? dot(hv->q + t * hv->qstride, hv->k + j * hv->kvstride, d) * a->scale
                          : -INFINITY;
    }
    for (int t = 0; t < a->n_tokens; t++) { /* softmax per row */
        float *srow = scores + (size_t)t * kv_len, mx = -INFINITY, sum = 0.0f;
        for (int j = 0; j < kv_len; j++)
            mx = srow[j] > mx ? srow[j] : mx;
        for (int j = 0; j < kv_len; j++)
            sum += (srow[j] = expf(srow[j] - mx));
        for (int j = 0; j < kv_len; j++)
            srow[j] /= sum;
    }
    for (int t = 0; t < a->n_tokens; t++) { /* out = P V */
        float *o = hv->out + t * hv->qstride;
        const float *srow = scores + (size_t)t * kv_len;
        memset(o, 0, (size_t)d * sizeof(float));
        for (int j = 0; j < kv_len; j++)
            for (int c = 0; c < d; c++)
                o[c] += srow[j] * hv->v[j * hv->kvstride + c];
    }
}

static void sdpa_head(const gb_attn_args *a, const head_view *hv, float *row) {
    int d = a->head_dim;
    for (int t = 0; t < a->n_tokens; t++) {
        int lo, hi;
        key_range(a, a->pos0 + t, &lo, &hi);
        const float *qt = hv->q + t * hv->qstride;
        float mx = -INFINITY, sum = 0.0f;
        for (int j = lo; j < hi; j++) {
            row[j - lo] = dot(qt, hv->k + j * hv->kvstride, d) * a->scale;
            mx = row[j - lo] > mx ? row[j - lo] : mx;
        }
        for (int j = lo; j < hi; j++)
            sum += (row[j - lo] = expf(row[j - lo] - mx));
        float *o = hv->out + t * hv->qstride;
        memset(o, 0, (size_t)d * sizeof(float));
        for (int j = lo; j < hi; j++) {
            float p = row[j - lo] / sum;
            for (int c = 0; c < d; c++)
                o[c] += p * hv->v[j * hv->kvstride + c];
        }
    }
}

/* Online-softmax state of one query row: running max m, running sum l, unnormalised acc. */
typedef struct online_row {
    float m, l;
    float *acc; /* [head_dim] */
} online_row;

/* Folds keys [j0, j1) (all visible to the row) into the state. s: scratch [j1 - j0]. */
static void online_update(online_row *st, const float *qt, const head_view *hv, int j0, int j1,
                          int d, float scale, float *s) {
    if (j1 <= j0) return;
    float tile_max = -INFINITY;
    for (int j = j0; j < j1; j++) {
        s[j - j0] = dot(qt, hv->k + j * hv->kvstride, d) * scale;
        tile_max = s[j - j0] > tile_max ? s[j - j0] : tile_max;
    }
    float m_new = st->m > tile_max ? st->m : tile_max;
    float corr = expf(st->m - m_new); /* 0 when st->m is -inf */
    st->l *= corr;
    for (int c = 0; c < d; c++)
        st->acc[c] *= corr;
    for (int j = j0; j < j1; j++) {
        float p = expf(s[j - j0] - m_new);
        st->l += p;
        for (int c = 0; c < d; c++)
            st->acc[c] += p * hv->v[j * hv->kvstride + c];
    }
    st->m = m_new;
}

static void flash_prefill_head(const gb_attn_args *a, const head_view *hv, float *scratch) {
    int d = a->head_dim;
    float *s = scratch;              /* [FLASH_BK] */
    float *acc = scratch + FLASH_BK; /* [FLASH_BQ, d] */
    online_row st[FLASH_BQ];
    for (int t0 = 0; t0 < a->n_tokens; t0 += FLASH_BQ) {
        int tn = a->n_tokens - t0 < FLASH_BQ ? a->n_tokens - t0 : FLASH_BQ;
        int lo_all, hi_all, lo, hi;
        key_range(a, a->pos0 + t0, &lo_all, &hi);
        key_range(a, a->pos0 + t0 + tn - 1, &lo, &hi_all);
        for (int i = 0; i < tn; i++) {
            st[i].m = -INFINITY;
            st[i].l = 0.0f;
            st[i].acc = acc + (size_t)i * d;
            memset(st[i].acc, 0, (size_t)d * sizeof(float));
        }
        /* key tiles covering the union of the tile's visible ranges */
        for (int j0 = lo_all - lo_all % FLASH_BK; j0 < hi_all; j0 += FLASH_BK) {
            int j1 = j0 + FLASH_BK < hi_all ? j0 + FLASH_BK : hi_all;
            for (int i = 0; i < tn; i++) {
                int rlo, rhi;
                key_range(a, a->pos0 + t0 + i, &rlo, &rhi);
                int u0 = j0 > rlo ? j0 : rlo, u1 = j1 < rhi ? j1 : rhi;
                online_update(&st[i], hv->q + (t0 + i) * hv->qstride, hv, u0, u1, d, a->scale, s);
            }
        }
        for (int i = 0; i < tn; i++) {
            float *o = hv->out + (t0 + i) * hv->qstride;
            for (int c = 0; c < d; c++)
                o[c] = st[i].acc[c] / st[i].l;
        }
    }
}

/* Decode: the visible keys are split into chunks; each chunk yields (m, l, acc) and the
 * partials are merged with the usual rescaling. On the optimised backends the chunks run
 * in parallel; here they run one after another. */
static void flash_decode_head(const gb_attn_args *a, const head_view *hv, float *scratch) {
    int d = a->head_dim, lo, hi;
    key_range(a, a->pos0, &lo, &hi);
    int nchunks = (hi - lo + FLASH_DECODE_CHUNK - 1) / FLASH_DECODE_CHUNK;
    float *s = scratch;                         /* [FLASH_DECODE_CHUNK] */
    float *part = scratch + FLASH_DECODE_CHUNK; /* nchunks x (m, l, acc[d]) */
    for (int c = 0; c < nchunks; c++) {
        float *pc = part + (size_t)c * (d + 2);
        online_row st = {-INFINITY, 0.0f, pc + 2};
        memset(st.acc, 0, (size_t)d * sizeof(float));
        int j0 = lo + c * FLASH_DECODE_CHUNK;
        int j1 = j0 + FLASH_DECODE_CHUNK < hi ? j0 + FLASH_DECODE_CHUNK : hi;
        online_update(&st, hv->q, hv, j0, j1, d, a->scale, s);
        pc[0] = st.m;
        pc[1] = st.l;
    }
    float m = -INFINITY, l = 0.0f;
    for (int c = 0; c < nchunks; c++)
        m = part[(size_t)c * (d + 2)] > m ? part[(size_t)c * (d + 2)] : m;
    float *o = hv->out;
    memset(o, 0, (size_t)d * sizeof(float));
    for (int c = 0; c < nchunks; c++) {
        const float *pc = part + (size_t)c * (d + 2);
        float w = expf(pc[0] - m);
        l += pc[1] * w;
        for (int i = 0; i < d; i++)
            o[i] += pc[2 + i] * w;
    }
    for (int i = 0; i < d; i++)
        o[i] /= l;
}

void gb_ref_attention(gb_backend *b, gb_attn_impl impl, float *out, const float *q,
                      const float *kcache, const float *vcache, const gb_attn_args *a,
                      void *scratch) {
    (void)b;
    for (int s = 0; s < a->batch; s++) {
        for (int h = 0; h < a->n_heads; h++) {
            head_view hv = head_at(a, out, q, kcache, vcache, s, h);
            if (impl == GB_ATTN_EAGER)
                eager_head(a, &hv, scratch);
            else if (impl == GB_ATTN_SDPA)
                sdpa_head(a, &hv, scratch);
            else if (a->n_tokens == 1)
                flash_decode_head(a, &hv, scratch);
            else
                flash_prefill_head(a, &hv, scratch);
        }
    }
}

size_t gb_ref_attn_scratch_bytes(gb_backend *b, gb_attn_impl impl, const gb_attn_args *a) {
    (void)b;
    size_t kv_len = (size_t)a->pos0 + a->n_tokens, d = (size_t)a->head_dim;
    switch (impl) {
    case GB_ATTN_EAGER:
        return (size_t)a->n_tokens * kv_len * sizeof(float);
    case GB_ATTN_SDPA:
        return kv_len * sizeof(float);
    default: {
        size_t prefill = FLASH_BK + FLASH_BQ * d;
        size_t chunks = (kv_len + FLASH_DECODE_CHUNK - 1) / FLASH_DECODE_CHUNK;
        size_t decode = FLASH_DECODE_CHUNK + chunks * (d + 2);
        return (prefill > decode ? prefill : decode) * sizeof(float);
    }
    }
}
