/* Reference CPU kernels: one operation at a time, single-threaded, float32 accumulation
 * (norm statistics in double). Written to be obviously right; the optimised set is checked
 * against them. Semantics: backend/backend.h. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_ref.h"

void gb_ref_embed(gb_backend *b, float *out, const gb_weight *table, const int32_t *ids, int n,
                  const gb_weight *pos_table, int n_tokens, int pos0) {
    (void)b;
    int64_t dim = table->cols;
    for (int i = 0; i < n; i++) {
        float *o = out + (size_t)i * dim;
        for (int64_t c = 0; c < dim; c++)
            o[c] = gb_weight_at(table, ids[i], c);
        if (pos_table) {
            int64_t p = pos0 + i % n_tokens;
            for (int64_t c = 0; c < dim; c++)
                o[c] += gb_weight_at(pos_table, p, c);
        }
    }
}

/* sum x[i] * w[i], eight float32 partial sums */
static float dot_f32(const float *x, const float *w, int64_t k) {
    float acc[8] = {0}, tail = 0.0f;
    int64_t j = 0;
    for (; j + 8 <= k; j += 8)
        for (int u = 0; u < 8; u++)
            acc[u] += x[j + u] * w[j + u];
    for (; j < k; j++)
        tail += x[j] * w[j];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
}

enum { MATMUL_CHUNK = 512 };

/* Columns [k0, k0 + kk) of row r as float32: in place for float32 weights, else widened
 * into buf (kk <= MATMUL_CHUNK). */
static const float *row_chunk(const gb_weight *w, int64_t r, int64_t k0, int64_t kk, float *buf) {
    if (w->dtype == GB_F32) return (const float *)w->data + r * w->cols + k0;
    for (int64_t j = 0; j < kk; j++)
        buf[j] = gb_weight_at(w, r, k0 + j);
    return buf;
}

/* Each weight row is widened to float32 a chunk at a time (once for all n input rows),
 * then dotted with every input row; the chunk sums accumulate in y. */
void gb_ref_matmul(gb_backend *b, float *y, const float *x, const gb_weight *w, const float *bias,
                   int n) {
    (void)b;
    int64_t out = w->rows, in = w->cols;
    float buf[MATMUL_CHUNK];
    for (int64_t r = 0; r < out; r++) {
        for (int i = 0; i < n; i++)
            y[(size_t)i * out + r] = bias ? bias[r] : 0.0f;
        for (int64_t k0 = 0; k0 < in; k0 += MATMUL_CHUNK) {
            int64_t kk = in - k0 < MATMUL_CHUNK ? in - k0 : MATMUL_CHUNK;
            const float *wr = row_chunk(w, r, k0, kk, buf);
            for (int i = 0; i < n; i++)
                y[(size_t)i * out + r] += dot_f32(x + (size_t)i * in + k0, wr, kk);
        }
    }
}

float gb_ref_row_dot(const gb_weight *w, int64_t r, const float *x) {
    float buf[MATMUL_CHUNK], y = 0.0f;
    for (int64_t k0 = 0; k0 < w->cols; k0 += MATMUL_CHUNK) {
        int64_t kk = w->cols - k0 < MATMUL_CHUNK ? w->cols - k0 : MATMUL_CHUNK;
        y += dot_f32(x + k0, row_chunk(w, r, k0, kk, buf), kk);
    }
    return y;
}

void gb_ref_rmsnorm(gb_backend *b, float *y, const float *x, const float *w, int n, int dim,
                    float eps) {
    (void)b;
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * dim;
        float *yi = y + (size_t)i * dim;
        double ss = 0.0;
        for (int c = 0; c < dim; c++)
            ss += (double)xi[c] * xi[c];
        float inv = (float)(1.0 / sqrt(ss / dim + eps));
        for (int c = 0; c < dim; c++)
            yi[c] = w[c] * (xi[c] * inv);
    }
}

void gb_ref_layernorm(gb_backend *b, float *y, const float *x, const float *w, const float *bias,
                      int n, int dim, float eps) {
    (void)b;
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * dim;
        float *yi = y + (size_t)i * dim;
        double mean = 0.0, var = 0.0;
        for (int c = 0; c < dim; c++)
            mean += xi[c];
        mean /= dim;
        for (int c = 0; c < dim; c++)
            var += ((double)xi[c] - mean) * ((double)xi[c] - mean);
        var /= dim;
        float m = (float)mean, inv = (float)(1.0 / sqrt(var + eps));
        for (int c = 0; c < dim; c++)
            yi[c] = (xi[c] - m) * inv * w[c] + bias[c];
    }
}

/* Hugging Face llama rotary embedding: theta = float32(pos * inv_freq[i]) with cos/sin in
 * float32, rotate-half pairing (i, i + head_dim/2). */
void gb_ref_rope(gb_backend *b, float *x, const gb_rope_args *a) {
    (void)b;
    int half = a->head_dim / 2, width = a->n_heads * a->head_dim;
    for (int r = 0; r < a->batch * a->n_tokens; r++) {
        float pos = (float)(a->pos0 + r % a->n_tokens);
        float *row = x + (size_t)r * width;
        for (int i = 0; i < half; i++) {
            float theta = pos * a->inv_freq[i];
            float c = (float)cos((double)theta) * a->attn_factor;
            float s = (float)sin((double)theta) * a->attn_factor;
            for (int h = 0; h < a->n_heads; h++) {
                float *v = row + (size_t)h * a->head_dim;
                float x1 = v[i], x2 = v[i + half];
                v[i] = x1 * c - x2 * s;
                v[i + half] = x2 * c + x1 * s;
            }
        }
    }
}

void gb_ref_add(gb_backend *b, float *y, const float *a, const float *c, size_t count) {
    (void)b;
    for (size_t i = 0; i < count; i++)
        y[i] = a[i] + c[i];
}

float gb_ref_silu(float x) {
    return x / (1.0f + expf(-x));
}

float gb_ref_gelu_tanh(float x) {
    const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

static float act1(float x, gb_act_kind act) {
    return act == GB_BACT_SILU ? gb_ref_silu(x) : gb_ref_gelu_tanh(x);
}

void gb_ref_act_mul(gb_backend *b, float *out, const float *gate, const float *up, size_t count,
                    gb_act_kind act) {
    (void)b;
    for (size_t i = 0; i < count; i++)
        out[i] = act1(gate[i], act) * up[i];
}

void gb_ref_act(gb_backend *b, float *y, const float *x, size_t count, gb_act_kind act) {
    (void)b;
    for (size_t i = 0; i < count; i++)
        y[i] = act1(x[i], act);
}

void gb_ref_kv_write(gb_backend *b, float *kcache, float *vcache, const float *k, const float *v,
                     const gb_attn_args *a) {
    (void)b;
    size_t width = (size_t)a->n_kv_heads * a->head_dim;
    for (int s = 0; s < a->batch; s++) {
        for (int t = 0; t < a->n_tokens; t++) {
            size_t src = ((size_t)s * a->n_tokens + t) * width;
            size_t dst = ((size_t)s * a->cap + a->pos0 + t) * width;
            memcpy(kcache + dst, k + src, width * sizeof(float));
            memcpy(vcache + dst, v + src, width * sizeof(float));
        }
    }
}

void gb_ref_argmax(gb_backend *b, int32_t *ids, const float *logits, int n, int vocab) {
    (void)b;
    for (int i = 0; i < n; i++) {
        const float *l = logits + (size_t)i * vocab;
        int best = 0;
        for (int j = 1; j < vocab; j++)
            if (l[j] > l[best]) best = j;
        ids[i] = best;
    }
}
