/* Kernel-check harness: compares the ops of a backend under test with a reference backend
 * on the same random inputs of awkward sizes (not multiples of any vector width), with
 * non-finite checks. Header-only; include after test.h.
 *
 *   gb_backend *ref, *opt;   // e.g. cpu reference and cpu kernelized
 *   kc_compare_backends(ref, opt, 1e-5);  // every op, every weight dtype, attention impls,
 *                                          // and the fused entries opt provides
 *
 * All data moves through alloc/upload/download, so a device backend can be checked too.
 * Failures go through CHECK_MSG (expected vs got at the worst element). */
#ifndef GB_KERNEL_CHECK_H
#define GB_KERNEL_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "test.h"

typedef struct kc_rng {
    uint64_t s;
} kc_rng;

static inline uint64_t kc_next(kc_rng *r) { /* splitmix64 */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static inline float kc_uniform(kc_rng *r) {
    return (float)((double)(kc_next(r) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static inline void kc_fill(kc_rng *r, float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++)
        x[i] = kc_uniform(r) * scale;
}

static inline float *kc_rand(kc_rng *r, size_t n, float scale) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    kc_fill(r, x, n, scale);
    return x;
}

/* Compares got with want: every element finite where want is finite (and non-finite where
 * want is), |got - want| <= atol + rtol * |want|. Reports the worst element. Returns 1 when
 * all agree. */
static inline int kc_compare(const char *what, const float *got, const double *want, size_t n,
                             double rtol, double atol) {
    size_t worst = 0, bad = 0;
    double worst_excess = -1.0;
    for (size_t i = 0; i < n; i++) {
        int gf = isfinite(got[i]), wf = isfinite(want[i]);
        double excess;
        if (gf != wf) {
            excess = INFINITY;
        } else if (!wf) {
            excess = (isnan(got[i]) != isnan(want[i]) || (!isnan(want[i]) && got[i] != want[i]))
                         ? INFINITY
                         : -1.0;
        } else {
            excess = fabs((double)got[i] - want[i]) - (atol + rtol * fabs(want[i]));
        }
        if (excess > 0) bad++;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    gb_test_checks++;
    if (bad) {
        gb_test_failures++;
        fprintf(stderr,
                "%s: %zu of %zu elements out of tolerance (rtol %g, atol %g); worst [%zu]: "
                "expected %.9g, got %.9g\n",
                what, bad, n, rtol, atol, worst, want[worst], (double)got[worst]);
    }
    return bad == 0;
}

static inline int kc_compare_f(const char *what, const float *got, const float *want, size_t n,
                               double rtol, double atol) {
    double *w = malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++)
        w[i] = want[i];
    int ok = kc_compare(what, got, w, n, rtol, atol);
    free(w);
    return ok;
}

/* ---- moving data through a backend ---- */

static inline void *kc_dev(gb_backend *b, const void *host, size_t bytes) {
    gb_error err;
    void *p = NULL;
    if (b->ops->alloc(b, bytes ? bytes : 4, &p, &err) != 0) {
        fprintf(stderr, "kc_dev: %s\n", err.msg);
        abort();
    }
    if (host && bytes) b->ops->upload(b, p, host, bytes, &err);
    return p;
}

static inline float *kc_host(gb_backend *b, const void *dev, size_t n_floats) {
    gb_error err;
    float *h = malloc((n_floats ? n_floats : 1) * sizeof(float));
    b->ops->download(b, h, dev, n_floats * sizeof(float), &err);
    return h;
}

/* Runs one float-producing op on two backends and compares the outputs. */
typedef struct kc_pair {
    gb_backend *ref, *opt;
} kc_pair;

static inline void kc_check_outputs(kc_pair *p, const char *what, void *dref, void *dopt, size_t n,
                                    double tol) {
    float *a = kc_host(p->ref, dref, n), *b = kc_host(p->opt, dopt, n);
    kc_compare_f(what, b, a, n, tol, tol);
    free(a);
    free(b);
}

static inline void kc_weight(gb_backend *b, gb_weight *w, const float *host, int64_t rows,
                             int64_t cols, gb_dtype dt) {
    gb_error err;
    if (b->ops->weight_load(b, w, host, GB_F32, rows, cols, dt, 0, &err) != 0) {
        fprintf(stderr, "kc_weight: %s\n", err.msg);
        abort();
    }
}

static inline void kc_compare_matmul(kc_pair *p, kc_rng *r, int n, int k, int m, gb_dtype dt,
                                     int with_bias, double tol) {
    float *x = kc_rand(r, (size_t)n * k, 1.0f), *w = kc_rand(r, (size_t)m * k, 0.5f);
    float *bias = kc_rand(r, (size_t)m, 0.5f);
    gb_weight wr, wo;
    kc_weight(p->ref, &wr, w, m, k, dt);
    kc_weight(p->opt, &wo, w, m, k, dt);
    void *xr = kc_dev(p->ref, x, (size_t)n * k * 4), *xo = kc_dev(p->opt, x, (size_t)n * k * 4);
    void *br = kc_dev(p->ref, bias, (size_t)m * 4), *bo = kc_dev(p->opt, bias, (size_t)m * 4);
    void *yr = kc_dev(p->ref, NULL, (size_t)n * m * 4),
         *yo = kc_dev(p->opt, NULL, (size_t)n * m * 4);
    p->ref->ops->matmul(p->ref, yr, xr, &wr, with_bias ? br : NULL, n);
    p->opt->ops->matmul(p->opt, yo, xo, &wo, with_bias ? bo : NULL, n);
    char what[128];
    snprintf(what, sizeof what, "matmul %s n=%d k=%d m=%d bias=%d", gb_dtype_name(dt), n, k, m,
             with_bias);
    kc_check_outputs(p, what, yr, yo, (size_t)n * m, tol);
    p->ref->ops->weight_free(p->ref, &wr);
    p->opt->ops->weight_free(p->opt, &wo);
    void *bufs[][2] = {{xr, xo}, {br, bo}, {yr, yo}};
    for (int i = 0; i < 3; i++) {
        p->ref->ops->free(p->ref, bufs[i][0]);
        p->opt->ops->free(p->opt, bufs[i][1]);
    }
    free(x);
    free(w);
    free(bias);
}

/* Attention over a cache filled with random keys/values, for one impl on both sides. */
static inline void kc_compare_attention(kc_pair *p, kc_rng *r, gb_attn_impl impl,
                                        const gb_attn_args *a, float qscale, double tol) {
    size_t qn = (size_t)a->batch * a->n_tokens * a->n_heads * a->head_dim;
    size_t cn = (size_t)a->batch * a->cap * a->n_kv_heads * a->head_dim;
    float *q = kc_rand(r, qn, qscale), *k = kc_rand(r, cn, 1.0f), *v = kc_rand(r, cn, 1.0f);
    kc_pair *pp = p;
    gb_backend *bs[2] = {pp->ref, pp->opt};
    void *outs[2], *bufs[2][4];
    for (int s = 0; s < 2; s++) {
        gb_backend *b = bs[s];
        bufs[s][0] = kc_dev(b, q, qn * 4);
        bufs[s][1] = kc_dev(b, k, cn * 4);
        bufs[s][2] = kc_dev(b, v, cn * 4);
        bufs[s][3] = kc_dev(b, NULL, b->ops->attn_scratch_bytes(b, impl, a));
        outs[s] = kc_dev(b, NULL, qn * 4);
        b->ops->attention(b, impl, outs[s], bufs[s][0], bufs[s][1], bufs[s][2], a, bufs[s][3]);
    }
    char what[160];
    snprintf(what, sizeof what, "attention impl=%d b=%d t=%d pos0=%d nh=%d nkv=%d hd=%d win=%d",
             (int)impl, a->batch, a->n_tokens, a->pos0, a->n_heads, a->n_kv_heads, a->head_dim,
             a->sliding_window);
    kc_check_outputs(p, what, outs[0], outs[1], qn, tol);
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < 4; i++)
            bs[s]->ops->free(bs[s], bufs[s][i]);
        bs[s]->ops->free(bs[s], outs[s]);
    }
    free(q);
    free(k);
    free(v);
}

/* Tolerance for 16-bit weights: an optimised kernel may round activations to the weight dtype
 * (a GEMM on bf16 operands), an error that grows like sqrt(k) over a dot product of length k
 * (about 1e-3 * sqrt(k) at 3-4 sigma for inputs in [-1, 1]). */
static inline double kc_tol16(double tol, int k) {
    double t = 1.5e-3 * sqrt((double)k);
    if (t < 1e-2) t = 1e-2;
    return tol > t ? tol : t;
}

/* Every op of opt against ref (fused entries of opt against the composition of ref's plain
 * ops). tol: relative and absolute tolerance for float32-weight results; 16-bit weight
 * dtypes use kc_tol16 because an optimised kernel may round activations to them. */
static inline void kc_compare_backends(gb_backend *ref, gb_backend *opt, double tol) {
    kc_pair p = {ref, opt};
    kc_rng r = {12345};
    static const int sizes[][3] = {{1, 1, 1},     {1, 7, 5},    {3, 67, 33}, {5, 130, 17},
                                   {17, 257, 71}, {1, 1000, 9}, {2, 33, 301}};
    for (int dt = 0; dt < GB_DTYPE_COUNT; dt++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            kc_compare_matmul(&p, &r, sizes[i][0], sizes[i][1], sizes[i][2], (gb_dtype)dt,
                              (int)(i & 1), dt == GB_F32 ? tol : kc_tol16(tol, sizes[i][1]));

    /* rmsnorm at model widths (the vectorised CUDA paths: 1, 2 and 4 float4 per thread, a
     * partial last one) and in place (y == x, as the engine's final norm of one-token rows) */
    for (int di = 0; di < 4; di++) {
        static const int dims[4] = {1000, 2048, 3076, 4096};
        const int n = 3, dim = dims[di];
        const size_t cnt = (size_t)n * dim;
        float *x = kc_rand(&r, cnt, 2.0f), *w = kc_rand(&r, dim, 1.0f);
        void *d[2][3];
        gb_backend *bs[2] = {ref, opt};
        for (int s = 0; s < 2; s++) {
            d[s][0] = kc_dev(bs[s], x, cnt * 4);
            d[s][1] = kc_dev(bs[s], w, dim * 4);
            d[s][2] = kc_dev(bs[s], NULL, cnt * 4);
            bs[s]->ops->rmsnorm(bs[s], d[s][2], d[s][0], d[s][1], n, dim, 1e-5f);
            bs[s]->ops->rmsnorm(bs[s], d[s][0], d[s][0], d[s][1], n, dim, 1e-5f);
        }
        kc_check_outputs(&p, "rmsnorm (model width)", d[0][2], d[1][2], cnt, tol);
        kc_check_outputs(&p, "rmsnorm (in place)", d[0][0], d[1][0], cnt, tol);
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < 3; i++)
                bs[s]->ops->free(bs[s], d[s][i]);
        free(x);
        free(w);
    }

    /* norms, activations, add */
    {
        int n = 5, dim = 67;
        size_t cnt = (size_t)n * dim;
        float *x = kc_rand(&r, cnt, 2.0f), *w = kc_rand(&r, dim, 1.0f),
              *bb = kc_rand(&r, dim, 1.0f);
        float *y = kc_rand(&r, cnt, 3.0f);
        void *d[2][5];
        gb_backend *bs[2] = {ref, opt};
        for (int s = 0; s < 2; s++) {
            d[s][0] = kc_dev(bs[s], x, cnt * 4);
            d[s][1] = kc_dev(bs[s], w, dim * 4);
            d[s][2] = kc_dev(bs[s], bb, dim * 4);
            d[s][3] = kc_dev(bs[s], y, cnt * 4);
            d[s][4] = kc_dev(bs[s], NULL, cnt * 4);
        }
        for (int s = 0; s < 2; s++)
            bs[s]->ops->rmsnorm(bs[s], d[s][4], d[s][0], d[s][1], n, dim, 1e-6f);
        kc_check_outputs(&p, "rmsnorm", d[0][4], d[1][4], cnt, tol);
        for (int s = 0; s < 2; s++)
            bs[s]->ops->layernorm(bs[s], d[s][4], d[s][0], d[s][1], d[s][2], n, dim, 1e-5f);
        kc_check_outputs(&p, "layernorm", d[0][4], d[1][4], cnt, tol);
        for (int act = 0; act < 2; act++) {
            for (int s = 0; s < 2; s++)
                bs[s]->ops->act_mul(bs[s], d[s][4], d[s][0], d[s][3], cnt, (gb_act_kind)act);
            kc_check_outputs(&p, act ? "act_mul gelu" : "act_mul silu", d[0][4], d[1][4], cnt, tol);
            for (int s = 0; s < 2; s++)
                bs[s]->ops->act(bs[s], d[s][4], d[s][3], cnt, (gb_act_kind)act);
            kc_check_outputs(&p, act ? "act gelu" : "act silu", d[0][4], d[1][4], cnt, tol);
        }
        for (int s = 0; s < 2; s++)
            bs[s]->ops->add(bs[s], d[s][4], d[s][0], d[s][3], cnt);
        kc_check_outputs(&p, "add", d[0][4], d[1][4], cnt, tol);
        if (opt->ops->add_rmsnorm) {
            for (int s = 0; s < 2; s++) {
                bs[s]->ops->upload(bs[s], d[s][4], x, cnt * 4, NULL);
                if (s == 0) {
                    ref->ops->add(ref, d[0][4], d[0][4], d[0][3], cnt);
                    ref->ops->rmsnorm(ref, d[0][0], d[0][4], d[0][1], n, dim, 1e-6f);
                } else {
                    opt->ops->add_rmsnorm(opt, d[1][4], d[1][3], d[1][0], d[1][1], n, dim, 1e-6f);
                }
            }
            kc_check_outputs(&p, "add_rmsnorm resid", d[0][4], d[1][4], cnt, tol);
            kc_check_outputs(&p, "add_rmsnorm y", d[0][0], d[1][0], cnt, tol);
        }
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < 5; i++)
                bs[s]->ops->free(bs[s], d[s][i]);
        free(x);
        free(w);
        free(bb);
        free(y);
    }

    /* attention: every impl, GQA, sliding window, prefill at pos0 > 0, long decode */
    static const gb_attn_args cases[] = {
        {.batch = 1,
         .n_tokens = 1,
         .pos0 = 0,
         .cap = 3,
         .n_heads = 1,
         .n_kv_heads = 1,
         .head_dim = 5},
        {.batch = 2,
         .n_tokens = 19,
         .pos0 = 0,
         .cap = 23,
         .n_heads = 4,
         .n_kv_heads = 2,
         .head_dim = 12},
        {.batch = 1,
         .n_tokens = 37,
         .pos0 = 6,
         .cap = 50,
         .n_heads = 3,
         .n_kv_heads = 1,
         .head_dim = 7},
        {.batch = 2,
         .n_tokens = 1,
         .pos0 = 200,
         .cap = 203,
         .n_heads = 4,
         .n_kv_heads = 2,
         .head_dim = 9},
        {.batch = 1,
         .n_tokens = 40,
         .pos0 = 0,
         .cap = 40,
         .n_heads = 2,
         .n_kv_heads = 2,
         .head_dim = 8,
         .sliding_window = 7},
        {.batch = 1,
         .n_tokens = 1,
         .pos0 = 150,
         .cap = 151,
         .n_heads = 2,
         .n_kv_heads = 1,
         .head_dim = 8,
         .sliding_window = 100},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        gb_attn_args a = cases[c];
        a.scale = 1.0f / sqrtf((float)a.head_dim);
        for (int impl = 0; impl < 3; impl++) {
            kc_compare_attention(&p, &r, (gb_attn_impl)impl, &a, 1.0f, tol);
            kc_compare_attention(&p, &r, (gb_attn_impl)impl, &a, 60.0f, tol); /* peaked softmax */
        }
    }

    /* rope (+ the fused rope_kv_write), kv_write, embed, argmax */
    {
        int batch = 2, nt = 5, pos0 = 3, nh = 3, nkv = 1, hd = 10, cap = 9;
        float inv_freq[5];
        for (int i = 0; i < hd / 2; i++)
            inv_freq[i] = (float)(1.0 / pow(10000.0, 2.0 * i / hd));
        size_t qn = (size_t)batch * nt * nh * hd, kn = (size_t)batch * nt * nkv * hd;
        size_t cn = (size_t)batch * cap * nkv * hd;
        float *q = kc_rand(&r, qn, 1.0f), *k = kc_rand(&r, kn, 1.0f), *v = kc_rand(&r, kn, 1.0f);
        float *zero = calloc(cn, sizeof(float));
        gb_backend *bs[2] = {ref, opt};
        void *d[2][6];
        for (int s = 0; s < 2; s++) {
            d[s][0] = kc_dev(bs[s], q, qn * 4);
            d[s][1] = kc_dev(bs[s], k, kn * 4);
            d[s][2] = kc_dev(bs[s], v, kn * 4);
            d[s][3] = kc_dev(bs[s], zero, cn * 4);
            d[s][4] = kc_dev(bs[s], zero, cn * 4);
            d[s][5] = kc_dev(bs[s], inv_freq, sizeof inv_freq);
        }
        gb_rope_args ra = {.n_tokens = nt,
                           .batch = batch,
                           .pos0 = pos0,
                           .n_heads = nh,
                           .head_dim = hd,
                           .attn_factor = 1.0f};
        gb_attn_args aa = {.batch = batch,
                           .n_tokens = nt,
                           .pos0 = pos0,
                           .cap = cap,
                           .n_heads = nh,
                           .n_kv_heads = nkv,
                           .head_dim = hd};
        for (int s = 0; s < 2; s++) {
            ra.inv_freq = d[s][5];
            gb_rope_args rk = ra;
            rk.n_heads = nkv;
            if (s == 1 && opt->ops->rope_kv_write) {
                opt->ops->rope_kv_write(opt, d[s][0], d[s][1], d[s][2], d[s][3], d[s][4], &ra, &aa);
            } else {
                bs[s]->ops->rope(bs[s], d[s][0], &ra);
                bs[s]->ops->rope(bs[s], d[s][1], &rk);
                bs[s]->ops->kv_write(bs[s], d[s][3], d[s][4], d[s][1], d[s][2], &aa);
            }
        }
        kc_check_outputs(&p, "rope q", d[0][0], d[1][0], qn, tol);
        kc_check_outputs(&p, "rope k", d[0][1], d[1][1], kn, tol);
        kc_check_outputs(&p, "kv_write k", d[0][3], d[1][3], cn, tol);
        kc_check_outputs(&p, "kv_write v", d[0][4], d[1][4], cn, tol);
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < 6; i++)
                bs[s]->ops->free(bs[s], d[s][i]);
        free(q);
        free(k);
        free(v);
        free(zero);
    }
    {
        /* a vocabulary long enough for split argmax kernels: the tie and the maxima sit in
         * different chunks, at a chunk's last element and the row's last; two calls on
         * different data (state left by the first must not leak into the second); a row with
         * no finite value gives 0, as the one-block kernel and the CPU reference do */
        const int vocab = 20000, n = 4;
        float *logits = kc_rand(&r, (size_t)n * vocab, 5.0f);
        for (int i = 0; i < vocab; i++)
            logits[3 * vocab + i] = i % 2 ? NAN : -INFINITY;
        logits[5000] = logits[15000] = 100.0f; /* tie: first index wins */
        logits[vocab + vocab - 1] = 60.0f;
        logits[2 * vocab + 1] = NAN; /* (index 0: the CPU reference would keep it) */
        logits[2 * vocab + 8191] = 70.0f;
        logits[2 * vocab + 9000] = NAN;
        const int32_t want[2][4] = {{5000, 19999, 8191, 0}, {19999, 0, 8191, 0}};
        gb_backend *bs[2] = {ref, opt};
        for (int s = 0; s < 2; s++) {
            void *dl = kc_dev(bs[s], NULL, (size_t)n * vocab * 4), *di = kc_dev(bs[s], NULL, 16);
            for (int call = 0; call < 2; call++) {
                if (call) { /* second data: new maxima in rows 0 and 1 */
                    logits[vocab - 1] = 200.0f;
                    logits[vocab] = 300.0f;
                }
                bs[s]->ops->upload(bs[s], dl, logits, (size_t)n * vocab * 4, NULL);
                bs[s]->ops->argmax(bs[s], di, dl, n, vocab);
                int32_t got[4] = {-1, -1, -1, -1};
                bs[s]->ops->download(bs[s], got, di, sizeof got, NULL);
                for (int i = 0; i < n; i++)
                    CHECK_MSG(got[i] == want[call][i],
                              "%s: argmax (vocab %d) call %d row %d: %d, want %d", bs[s]->ops->name,
                              vocab, call, i, got[i], want[call][i]);
                logits[vocab - 1] = logits[vocab] = 0.0f;
            }
            bs[s]->ops->free(bs[s], dl);
            bs[s]->ops->free(bs[s], di);
        }
        free(logits);
    }
    {
        int vocab = 1001, n = 4, dim = 13;
        float *logits = kc_rand(&r, (size_t)n * vocab, 5.0f);
        logits[3] = logits[900] = 100.0f; /* tie: first index wins */
        logits[vocab + 7] = -INFINITY;
        logits[2 * vocab + 1000] = 50.0f; /* last element */
        float *table = kc_rand(&r, (size_t)vocab * dim, 1.0f), *pos = kc_rand(&r, 20 * dim, 1.0f);
        int32_t ids_h[4] = {0, 1000, 5, 77};
        gb_backend *bs[2] = {ref, opt};
        int32_t got[2][4];
        void *emb[2];
        for (int s = 0; s < 2; s++) {
            void *dl = kc_dev(bs[s], logits, (size_t)n * vocab * 4), *di = kc_dev(bs[s], NULL, 16);
            bs[s]->ops->argmax(bs[s], di, dl, n, vocab);
            bs[s]->ops->download(bs[s], got[s], di, sizeof got[s], NULL);
            gb_weight wt, wp;
            kc_weight(bs[s], &wt, table, vocab, dim, GB_BF16);
            kc_weight(bs[s], &wp, pos, 20, dim, GB_BF16);
            void *dids = kc_dev(bs[s], ids_h, sizeof ids_h);
            emb[s] = kc_dev(bs[s], NULL, (size_t)n * dim * 4);
            bs[s]->ops->embed(bs[s], emb[s], &wt, dids, n, &wp, 2, 5);
            bs[s]->ops->weight_free(bs[s], &wt);
            bs[s]->ops->weight_free(bs[s], &wp);
            bs[s]->ops->free(bs[s], dl);
            bs[s]->ops->free(bs[s], di);
            bs[s]->ops->free(bs[s], dids);
        }
        CHECK_EQ_INT(got[0][0], 3);
        CHECK_EQ_INT(got[0][2], 1000);
        for (int i = 0; i < n; i++)
            CHECK_EQ_INT(got[1][i], got[0][i]);
        kc_check_outputs(&p, "embed+pos", emb[0], emb[1], (size_t)n * dim, tol);
        for (int s = 0; s < 2; s++)
            bs[s]->ops->free(bs[s], emb[s]);
        free(logits);
        free(table);
        free(pos);
    }

    /* fused projections */
    /* fused projections: an awkward shape (scalar paths) and a vector-friendly one with n = 1
     * (the decode paths that fold the norm and the residual into the products), then long rows
     * (dim 4096 and 8192: the CUDA GEMVs split each row over 2 or 4 warps; 29 and 13 rows leave
     * a block half used) */
    if (opt->ops->rmsnorm_matmul || opt->ops->gate_up_act || opt->ops->matmul_add)
        for (int shape = 0; shape < 5; shape++)
            for (int dt = 0; dt < GB_DTYPE_COUNT; dt++) {
                /* (n, dim): scalar paths; n = 1 (decode); n = 3 (GEMV passes of 2 + 1 rows) */
                static const int dims[] = {67, 256, 256, 4096, 8192};
                int n = shape == 1 || shape == 3 ? 1 : 3, dim = dims[shape], m1 = 29, m2 = 13;
                /* float32: summation order differs between kernels, and the sums of 4096 or
                 * 8192 terms of magnitude ~0.25 cancel down to outputs near 1: rounding of
                 * ~1e-4 absolute (observed 3.8e-4 on 20.2 at dim 8192, ref against ref-fused) */
                const double t32 = dim > 256 ? tol * dim / 256.0 : tol;
                double t = dt == GB_F32 ? t32 : kc_tol16(tol, dim);
                /* act(g) * u multiplies two dot products whose activations a GEMM path rounds to
                 * 16 bits: their relative errors add */
                double tg = dt == GB_F32 && dim <= 256 ? tol : 2 * t;
                float *x = kc_rand(&r, (size_t)n * dim, 1.0f), *nw = kc_rand(&r, dim, 1.0f);
                float *w1 = kc_rand(&r, (size_t)m1 * dim, 0.5f),
                      *w2 = kc_rand(&r, (size_t)m1 * dim, 0.5f);
                float *w3 = kc_rand(&r, (size_t)m2 * dim, 0.5f), *b1 = kc_rand(&r, m1, 0.3f);
                gb_backend *bs[2] = {ref, opt};
                gb_weight W[2][3];
                void *d[2][8];
                for (int s = 0; s < 2; s++) {
                    kc_weight(bs[s], &W[s][0], w1, m1, dim, (gb_dtype)dt);
                    kc_weight(bs[s], &W[s][1], w2, m1, dim, (gb_dtype)dt);
                    kc_weight(bs[s], &W[s][2], w3, m2, dim, (gb_dtype)dt);
                    d[s][0] = kc_dev(bs[s], x, (size_t)n * dim * 4);
                    d[s][1] = kc_dev(bs[s], nw, dim * 4);
                    d[s][2] = kc_dev(bs[s], b1, m1 * 4);
                    d[s][3] = kc_dev(bs[s], NULL, (size_t)n * dim * 4); /* xnorm */
                    d[s][4] = kc_dev(bs[s], NULL, (size_t)n * m1 * 4);
                    d[s][5] = kc_dev(bs[s], NULL, (size_t)n * m1 * 4);
                    d[s][6] = kc_dev(bs[s], NULL, (size_t)n * m2 * 4);
                    d[s][7] = kc_dev(bs[s], NULL, (size_t)n * m1 * 4);
                }
                if (opt->ops->rmsnorm_matmul) {
                    ref->ops->rmsnorm(ref, d[0][3], d[0][0], d[0][1], n, dim, 1e-5f);
                    ref->ops->matmul(ref, d[0][4], d[0][3], &W[0][0], d[0][2], n);
                    ref->ops->matmul(ref, d[0][5], d[0][3], &W[0][1], NULL, n);
                    ref->ops->matmul(ref, d[0][6], d[0][3], &W[0][2], NULL, n);
                    float *ys[3] = {d[1][4], d[1][5], d[1][6]};
                    const gb_weight *ws[3] = {&W[1][0], &W[1][1], &W[1][2]};
                    const float *bias[3] = {d[1][2], NULL, NULL};
                    opt->ops->rmsnorm_matmul(opt, ys, d[1][3], d[1][0], d[1][1], 1e-5f, ws, bias, 3,
                                             n);
                    kc_check_outputs(&p, "rmsnorm_matmul xnorm", d[0][3], d[1][3], (size_t)n * dim,
                                     t);
                    kc_check_outputs(&p, "rmsnorm_matmul y0", d[0][4], d[1][4], (size_t)n * m1, t);
                    kc_check_outputs(&p, "rmsnorm_matmul y1", d[0][5], d[1][5], (size_t)n * m1, t);
                    kc_check_outputs(&p, "rmsnorm_matmul y2", d[0][6], d[1][6], (size_t)n * m2, t);
                }
                if (opt->ops->gate_up_act) {
                    for (int act = 0; act < 2; act++) {
                        ref->ops->matmul(ref, d[0][4], d[0][0], &W[0][0], NULL, n);
                        ref->ops->matmul(ref, d[0][5], d[0][0], &W[0][1], NULL, n);
                        ref->ops->act_mul(ref, d[0][7], d[0][4], d[0][5], (size_t)n * m1,
                                          (gb_act_kind)act);
                        opt->ops->gate_up_act(opt, d[1][7], d[1][0], &W[1][0], &W[1][1], n,
                                              (gb_act_kind)act);
                        kc_check_outputs(&p, "gate_up_act", d[0][7], d[1][7], (size_t)n * m1, tg);
                    }
                }
                if (opt->ops->matmul_add) {
                    /* y (= a residual of random values) += x W^T + b */
                    float *res = kc_rand(&r, (size_t)n * m1, 2.0f);
                    for (int s = 0; s < 2; s++)
                        bs[s]->ops->upload(bs[s], d[s][4], res, (size_t)n * m1 * 4, NULL);
                    ref->ops->matmul(ref, d[0][5], d[0][0], &W[0][0], d[0][2], n);
                    ref->ops->add(ref, d[0][4], d[0][4], d[0][5], (size_t)n * m1);
                    opt->ops->matmul_add(opt, d[1][4], d[1][0], &W[1][0], d[1][2], n);
                    kc_check_outputs(&p, "matmul_add", d[0][4], d[1][4], (size_t)n * m1, t);
                    free(res);
                }
                for (int s = 0; s < 2; s++) {
                    for (int i = 0; i < 3; i++)
                        bs[s]->ops->weight_free(bs[s], &W[s][i]);
                    for (int i = 0; i < 8; i++)
                        bs[s]->ops->free(bs[s], d[s][i]);
                }
                free(x);
                free(nw);
                free(w1);
                free(w2);
                free(w3);
                free(b1);
            }
}

#endif
