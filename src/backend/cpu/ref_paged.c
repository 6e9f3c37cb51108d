/* Reference kernels over a paged KV cache (backend/backend.h, gb_paged_args): the pool
 * block of position p of sequence s is block_tables[s * max_blocks + p / block_size], the
 * row inside it p % block_size. Attention is row by row with a two-pass softmax (maximum,
 * then exp-weighted sum of V accumulated in the output row), float32 throughout, so it needs
 * no scratch. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_ref.h"

/* Start of the cached row (position p, kv head 0) of sequence s in a pool. */
static size_t paged_row(const gb_paged_args *a, int s, int p) {
    int32_t blk = a->block_tables[(size_t)s * a->max_blocks + p / a->block_size];
    size_t row = (size_t)blk * a->block_size + (size_t)(p % a->block_size);
    return row * (size_t)a->n_kv_heads * a->head_dim;
}

void gb_ref_kv_write_paged(gb_backend *b, float *kpool, float *vpool, const float *k,
                           const float *v, const gb_paged_args *a) {
    (void)b;
    size_t w = (size_t)a->n_kv_heads * a->head_dim;
    for (int s = 0; s < a->batch; s++)
        for (int t = 0; t < a->n_tokens; t++) {
            size_t src = ((size_t)s * a->n_tokens + t) * w, dst = paged_row(a, s, a->pos[s] + t);
            memcpy(kpool + dst, k + src, w * sizeof(float));
            memcpy(vpool + dst, v + src, w * sizeof(float));
        }
}

static float dotf(const float *x, const float *y, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

void gb_ref_attention_paged(gb_backend *b, float *out, const float *q, const float *kpool,
                            const float *vpool, const gb_paged_args *a) {
    (void)b;
    const int nh = a->n_heads, hd = a->head_dim, group = a->n_heads / a->n_kv_heads;
    for (int s = 0; s < a->batch; s++)
        for (int t = 0; t < a->n_tokens; t++) {
            const int p = a->pos[s] + t;
            const int lo = (a->sliding_window > 0 && p - a->sliding_window + 1 > 0)
                               ? p - a->sliding_window + 1
                               : 0;
            const size_t r = (size_t)s * a->n_tokens + t;
            for (int h = 0; h < nh; h++) {
                const float *qh = q + (r * nh + h) * hd;
                float *o = out + (r * nh + h) * hd;
                const size_t kvoff = (size_t)(h / group) * hd;
                float mx = -INFINITY;
                for (int j = lo; j <= p; j++) {
                    float sc = dotf(qh, kpool + paged_row(a, s, j) + kvoff, hd) * a->scale;
                    if (sc > mx) mx = sc;
                }
                float sum = 0.0f;
                memset(o, 0, (size_t)hd * sizeof(float));
                for (int j = lo; j <= p; j++) {
                    size_t row = paged_row(a, s, j) + kvoff;
                    float e = expf(dotf(qh, kpool + row, hd) * a->scale - mx);
                    sum += e;
                    const float *vr = vpool + row;
                    for (int d = 0; d < hd; d++)
                        o[d] += e * vr[d];
                }
                float inv = 1.0f / sum;
                for (int d = 0; d < hd; d++)
                    o[d] *= inv;
            }
        }
}
