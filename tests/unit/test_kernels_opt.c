/* The optimised ("kernelized") CPU kernels against straightforward reference kernels, for
 * every instruction set this CPU runs (scalar, avx2, avx512), on random inputs of awkward
 * sizes (not multiples of the vector widths or the k-block), float32 / float16 / bfloat16
 * weights, n = 1, 2, 3, 5, 8, 11, 17 and 128 token rows (GEMV, batched decode, GEMM), 1 and
 * 3 threads, and with non-finite inputs.
 *
 * References are computed here in double precision from the same (already rounded) inputs,
 * so the error bounds state the optimised kernels' own float32 rounding:
 *   float32 accumulation:         |y - ref| <= 2e-6 * sum_k |w_k x_k|  (+1e-30)
 *   bf16 activations (avx512 GEMM) |y - ref| <= 8e-3 * sum_k |w_k x_k|  (x rounded to bf16:
 *                                  relative 2^-9 per product, as PyTorch's bf16 matmul)
 *   elementwise (exp-based)       relative 2e-6, absolute 1e-7
 * Non-finite inputs must give non-finite outputs exactly where the reference does. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_ref.h"
#include "backend/cpu/opt.h"
#include "backend/cpu/threadpool.h"
#include "test.h"

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (float)((rs >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

static const char *isa_name = "?";
static int cur_threads = 1;

/* ---- reference kernels (naive, double accumulation) ---- */

static double w_get(const gb_weight *w, int64_t i) {
    const uint16_t *h = w->data;
    switch (w->dtype) {
    case GB_BF16:
        return gb_bf16_to_f32(h[i]);
    case GB_F16:
        return gb_f16_to_f32(h[i]);
    default:
        return ((const float *)w->data)[i];
    }
}

static void ref_kv_write(gb_backend *b, float *kc, float *vc, const float *k, const float *v,
                         const gb_attn_args *a) {
    (void)b;
    size_t row = (size_t)a->n_kv_heads * a->head_dim;
    for (int s = 0; s < a->batch; s++)
        for (int t = 0; t < a->n_tokens; t++) {
            size_t dst = ((size_t)s * a->cap + a->pos0 + t) * row;
            size_t src = ((size_t)s * a->n_tokens + t) * row;
            memcpy(kc + dst, k + src, row * sizeof(float));
            memcpy(vc + dst, v + src, row * sizeof(float));
        }
}

static void ref_matmul(gb_backend *b, float *y, const float *x, const gb_weight *w,
                       const float *bias, int n) {
    (void)b;
    for (int t = 0; t < n; t++)
        for (int64_t r = 0; r < w->rows; r++) {
            double s = bias ? bias[r] : 0.0;
            for (int64_t k = 0; k < w->cols; k++)
                s += w_get(w, r * w->cols + k) * x[t * w->cols + k];
            y[t * w->rows + r] = (float)s;
        }
}

/* sum_k |w x| for the error bound */
static double ref_absdot(const gb_weight *w, const float *x, int64_t r, int t) {
    double s = 0;
    for (int64_t k = 0; k < w->cols; k++)
        s += fabs(w_get(w, r * w->cols + k) * x[t * w->cols + k]);
    return s;
}

static void ref_rmsnorm(float *y, const float *x, const float *w, int n, int dim, float eps) {
    for (int r = 0; r < n; r++) {
        double ss = 0;
        for (int i = 0; i < dim; i++)
            ss += (double)x[r * dim + i] * x[r * dim + i];
        double inv = 1.0 / sqrt(ss / dim + eps);
        for (int i = 0; i < dim; i++)
            y[r * dim + i] = (float)(x[r * dim + i] * inv * w[i]);
    }
}

static double ref_act(double x, gb_act_kind act) {
    if (act == GB_BACT_SILU) return x / (1.0 + exp(-x));
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

static void ref_rope(float *x, const gb_rope_args *r) {
    int half = r->head_dim / 2;
    for (int row = 0; row < r->batch * r->n_tokens; row++) {
        float pos = (float)(r->pos0 + row % r->n_tokens);
        for (int h = 0; h < r->n_heads; h++) {
            float *p = x + ((size_t)row * r->n_heads + h) * r->head_dim;
            for (int i = 0; i < half; i++) {
                float ang = pos * r->inv_freq[i];
                double c = cos(ang) * r->attn_factor, s = sin(ang) * r->attn_factor;
                double a = p[i], bb = p[i + half];
                p[i] = (float)(a * c - bb * s);
                p[i + half] = (float)(bb * c + a * s);
            }
        }
    }
}

static void ref_attention(float *out, const float *q, const float *kc, const float *vc,
                          const gb_attn_args *a) {
    int hd = a->head_dim, grp = a->n_heads / a->n_kv_heads;
    double *sc = malloc(sizeof(double) * (size_t)a->cap);
    for (int s = 0; s < a->batch; s++)
        for (int t = 0; t < a->n_tokens; t++)
            for (int h = 0; h < a->n_heads; h++) {
                int p = a->pos0 + t, lo = 0;
                if (a->sliding_window > 0 && p - a->sliding_window + 1 > 0)
                    lo = p - a->sliding_window + 1;
                const float *qr = q + (((size_t)s * a->n_tokens + t) * a->n_heads + h) * hd;
                double m = -INFINITY, l = 0;
                for (int j = lo; j <= p; j++) {
                    const float *kr =
                        kc + (((size_t)s * a->cap + j) * a->n_kv_heads + h / grp) * hd;
                    double d = 0;
                    for (int i = 0; i < hd; i++)
                        d += (double)qr[i] * kr[i];
                    sc[j] = d * a->scale;
                    if (sc[j] > m) m = sc[j];
                }
                for (int j = lo; j <= p; j++)
                    l += (sc[j] = exp(sc[j] - m));
                float *o = out + (((size_t)s * a->n_tokens + t) * a->n_heads + h) * hd;
                for (int i = 0; i < hd; i++) {
                    double acc = 0;
                    for (int j = lo; j <= p; j++)
                        acc += sc[j] *
                               vc[(((size_t)s * a->cap + j) * a->n_kv_heads + h / grp) * hd + i];
                    o[i] = (float)(acc / l);
                }
            }
    free(sc);
}

/* op-table wrappers the kernelized table falls back to */
static void ref_rope_op(gb_backend *b, float *x, const gb_rope_args *r) {
    (void)b;
    ref_rope(x, r);
}
static void ref_attention_op(gb_backend *b, gb_attn_impl impl, float *out, const float *q,
                             const float *kc, const float *vc, const gb_attn_args *a, void *s) {
    (void)b, (void)impl, (void)s;
    ref_attention(out, q, kc, vc, a);
}
static size_t ref_scratch(gb_backend *b, gb_attn_impl impl, const gb_attn_args *a) {
    (void)b, (void)impl, (void)a;
    return 0;
}
static void ref_act_mul_op(gb_backend *b, float *out, const float *g, const float *u, size_t n,
                           gb_act_kind act) {
    (void)b;
    for (size_t i = 0; i < n; i++)
        out[i] = (float)(ref_act(g[i], act) * u[i]);
}

static const gb_backend_ops ref_ops = {
    .name = "test-reference",
    .matmul = ref_matmul,
    .rope = ref_rope_op,
    .kv_write = ref_kv_write,
    .attention = ref_attention_op,
    .attn_scratch_bytes = ref_scratch,
    .act_mul = ref_act_mul_op,
};

/* ---- helpers ---- */

static void fill(float *v, size_t n, float scale) {
    for (size_t i = 0; i < n; i++)
        v[i] = frand() * scale;
}

static void make_weight(gb_weight *w, gb_dtype dt, int64_t rows, int64_t cols) {
    size_t n = (size_t)(rows * cols);
    float *f = malloc(n * sizeof(float));
    fill(f, n, 1.0f);
    void *d = malloc(n * gb_dtype_size(dt) + 1);
    gb_convert_from_f32(d, dt, f, n);
    free(f);
    *w = (gb_weight){.dtype = dt, .rows = rows, .cols = cols, .data = d, .owned = d};
}

/* Compares got vs want element-wise: |got - want| <= tol * scale[i] + atol, and isfinite
 * agreement. Prints the first mismatch. */
static void check_close(const char *what, const float *got, const float *want, const double *scale,
                        size_t n, double tol, double atol) {
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        int fg = isfinite(got[i]), fw = isfinite(want[i]);
        int ok;
        if (!fw || !fg)
            ok = fw == fg;
        else
            ok = fabs((double)got[i] - want[i]) <= tol * (scale ? scale[i] : fabs(want[i])) + atol;
        if (!ok && bad++ == 0) first = i;
    }
    CHECK_MSG(bad == 0,
              "[%s, %d threads] %s: %zu of %zu differ; first at %zu: expected %.9g, got %.9g",
              isa_name, cur_threads, what, bad, n, first, (double)want[first], (double)got[first]);
}

/* ---- tests ---- */

static void test_matmul(const gb_backend_ops *ops, gb_backend *b) {
    /* {70, 2100}: several row chunks and k-blocks of the batched-decode path (n = 2..11) */
    static const int64_t shapes[][2] = {{1, 3},   {5, 19},  {37, 77},  {6, 1029},
                                        {13, 48}, {3, 600}, {70, 2100}};
    static const int ns[] = {1, 2, 3, 5, 8, 11, 17, 128};
    const gb_dtype dts[] = {GB_F32, GB_F16, GB_BF16};
    for (size_t di = 0; di < 3; di++)
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
            for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) {
                int64_t rows = shapes[si][0], cols = shapes[si][1];
                int n = ns[ni];
                if (n == 128 && cols > 100) continue;
                gb_weight w;
                make_weight(&w, dts[di], rows, cols);
                float *x = malloc(sizeof(float) * (size_t)(n * cols));
                float *bias = malloc(sizeof(float) * (size_t)rows);
                float *y = malloc(sizeof(float) * (size_t)(n * rows));
                float *yr = malloc(sizeof(float) * (size_t)(n * rows));
                double *sc = malloc(sizeof(double) * (size_t)(n * rows));
                fill(x, (size_t)(n * cols), 2.0f);
                fill(bias, (size_t)rows, 0.5f);
                int use_bias = (si + ni) % 2;
                /* non-finite: a NaN in the last token row's x, an inf in row 0 of W for n = 3 */
                if (n == 17) x[(n - 1) * cols + cols / 2] = NAN;
                if (n == 3 && dts[di] == GB_F32) ((float *)w.owned)[cols - 1] = INFINITY;
                ops->matmul(b, y, x, &w, use_bias ? bias : NULL, n);
                ref_matmul(NULL, yr, x, &w, use_bias ? bias : NULL, n);
                for (int t = 0; t < n; t++)
                    for (int64_t r = 0; r < rows; r++)
                        sc[t * rows + r] = ref_absdot(&w, x, r, t) + (use_bias ? fabs(bias[r]) : 0);
                /* bf16 activations only in the AVX-512 bf16 GEMM (n > 1) */
                double tol =
                    strcmp(isa_name, "avx512") == 0 && dts[di] == GB_BF16 && n > 1 ? 8e-3 : 2e-6;
                char what[96];
                snprintf(what, sizeof what, "matmul %s %ldx%ld n=%d%s", gb_dtype_st_name(dts[di]),
                         (long)rows, (long)cols, n, use_bias ? " +bias" : "");
                check_close(what, y, yr, sc, (size_t)(n * rows), tol, 1e-30);
                free(x), free(bias), free(y), free(yr), free(sc), free(w.owned);
            }
}

static void test_norms_and_elementwise(const gb_backend_ops *ops, gb_backend *b) {
    static const int dims[] = {1, 7, 67, 2051};
    static const int ns[] = {1, 3, 17, 128};
    for (int di = 0; di < 4; di++)
        for (int ni = 0; ni < 4; ni++) {
            int dim = dims[di], n = ns[ni];
            if (n == 128 && dim > 100) continue;
            size_t cnt = (size_t)n * dim;
            float *x = malloc(cnt * 4), *w = malloc((size_t)dim * 4), *y = malloc(cnt * 4),
                  *yr = malloc(cnt * 4), *res = malloc(cnt * 4), *res2 = malloc(cnt * 4);
            fill(x, cnt, 3.0f);
            fill(w, (size_t)dim, 1.0f);
            fill(res, cnt, 1.0f);
            if (n == 3) x[dim] = INFINITY; /* row 1 becomes non-finite */
            char what[64];
            snprintf(what, sizeof what, "rmsnorm dim=%d n=%d", dim, n);
            ops->rmsnorm(b, y, x, w, n, dim, 1e-5f);
            ref_rmsnorm(yr, x, w, n, dim, 1e-5f);
            check_close(what, y, yr, NULL, cnt, 2e-6, 1e-7);
            /* in place */
            memcpy(y, x, cnt * 4);
            ops->rmsnorm(b, y, y, w, n, dim, 1e-5f);
            check_close(what, y, yr, NULL, cnt, 2e-6, 1e-7);

            memcpy(res2, res, cnt * 4);
            ops->add_rmsnorm(b, res, x, y, w, n, dim, 1e-6f);
            for (size_t i = 0; i < cnt; i++)
                res2[i] += x[i];
            snprintf(what, sizeof what, "add_rmsnorm resid dim=%d n=%d", dim, n);
            check_close(what, res, res2, NULL, cnt, 0, 0);
            ref_rmsnorm(yr, res2, w, n, dim, 1e-6f);
            snprintf(what, sizeof what, "add_rmsnorm y dim=%d n=%d", dim, n);
            check_close(what, y, yr, NULL, cnt, 2e-6, 1e-7);
            free(x), free(w), free(y), free(yr), free(res), free(res2);
        }

    static const size_t counts[] = {1, 13, 1000, 70001};
    for (int ci = 0; ci < 4; ci++) {
        size_t n = counts[ci];
        float *g = malloc(n * 4), *u = malloc(n * 4), *y = malloc(n * 4), *yr = malloc(n * 4);
        fill(g, n, 12.0f);
        fill(u, n, 2.0f);
        if (n >= 13) {
            g[0] = NAN, g[1] = 100.0f, g[2] = -100.0f, g[3] = 1e-30f, g[4] = INFINITY;
            g[5] = 90.0f, g[6] = -90.0f;
        }
        for (int act = 0; act < 2; act++) {
            char what[64];
            ops->act_mul(b, y, g, u, n, (gb_act_kind)act);
            for (size_t i = 0; i < n; i++)
                yr[i] = (float)(ref_act(g[i], (gb_act_kind)act) * u[i]);
            snprintf(what, sizeof what, "act_mul %s n=%zu", act ? "gelu_tanh" : "silu", n);
            check_close(what, y, yr, NULL, n, 4e-6, 1e-7);
            ops->act(b, y, g, n, (gb_act_kind)act);
            for (size_t i = 0; i < n; i++)
                yr[i] = (float)ref_act(g[i], (gb_act_kind)act);
            snprintf(what, sizeof what, "act %s n=%zu", act ? "gelu_tanh" : "silu", n);
            check_close(what, y, yr, NULL, n, 4e-6, 1e-7);
        }
        ops->add(b, y, g, u, n);
        for (size_t i = 0; i < n; i++)
            yr[i] = g[i] + u[i];
        check_close("add", y, yr, NULL, n, 0, 0);
        memcpy(y, g, n * 4);
        ops->add(b, y, y, u, n); /* aliasing */
        check_close("add in place", y, yr, NULL, n, 0, 0);
        free(g), free(u), free(y), free(yr);
    }

    /* argmax: first index on ties */
    float lg[3 * 1003];
    fill(lg, 3 * 1003, 1.0f);
    lg[17] = 5.0f, lg[500] = 5.0f; /* row 0: tie -> 17 */
    lg[1003 + 1002] = 7.0f;        /* row 1: last */
    lg[2 * 1003 + 0] = 9.0f;       /* row 2: first */
    int32_t ids[3];
    ops->argmax(b, ids, lg, 3, 1003);
    CHECK_EQ_INT(ids[0], 17);
    CHECK_EQ_INT(ids[1], 1002);
    CHECK_EQ_INT(ids[2], 0);
}

static void test_rope(const gb_backend_ops *ops, gb_backend *b) {
    static const int hds[] = {2, 10, 64};
    for (int hi = 0; hi < 3; hi++) {
        int hd = hds[hi], nh = 3, nkv = 1, nt = 5, batch = 2;
        float inv[32];
        for (int i = 0; i < hd / 2; i++)
            inv[i] = powf(10000.0f, -2.0f * i / hd);
        gb_rope_args r = {.n_tokens = nt,
                          .batch = batch,
                          .pos0 = 7,
                          .n_heads = nh,
                          .head_dim = hd,
                          .inv_freq = inv,
                          .attn_factor = 1.25f};
        size_t qn = (size_t)batch * nt * nh * hd, kn = (size_t)batch * nt * nkv * hd;
        float *q = malloc(qn * 4), *qr = malloc(qn * 4), *k = malloc(kn * 4), *kr = malloc(kn * 4),
              *v = malloc(kn * 4);
        fill(q, qn, 2.0f), fill(k, kn, 2.0f), fill(v, kn, 2.0f);
        memcpy(qr, q, qn * 4), memcpy(kr, k, kn * 4);
        ops->rope(b, q, &r);
        ref_rope(qr, &r);
        check_close("rope", q, qr, NULL, qn, 2e-6, 2e-6);

        /* rope_kv_write: q and k rotated, k and v in the cache at pos0.. */
        int cap = 16;
        size_t cn = (size_t)batch * cap * nkv * hd;
        float *kc = calloc(cn, 4), *vc = calloc(cn, 4), *kcr = calloc(cn, 4), *vcr = calloc(cn, 4);
        memcpy(q, qr, qn * 4); /* rotate again from the rotated q: any input will do */
        memcpy(qr, q, qn * 4);
        memcpy(kr, k, kn * 4);
        gb_attn_args a = {.batch = batch,
                          .n_tokens = nt,
                          .pos0 = 7,
                          .cap = cap,
                          .n_heads = nh,
                          .n_kv_heads = nkv,
                          .head_dim = hd,
                          .scale = 1.0f};
        ops->rope_kv_write(b, q, k, v, kc, vc, &r, &a);
        ref_rope(qr, &r);
        gb_rope_args rk = r;
        rk.n_heads = nkv;
        ref_rope(kr, &rk);
        ref_kv_write(NULL, kcr, vcr, kr, v, &a);
        check_close("rope_kv_write q", q, qr, NULL, qn, 2e-6, 2e-6);
        check_close("rope_kv_write kcache", kc, kcr, NULL, cn, 2e-6, 2e-6);
        check_close("rope_kv_write vcache", vc, vcr, NULL, cn, 0, 0);
        free(q), free(qr), free(k), free(kr), free(v), free(kc), free(vc), free(kcr), free(vcr);
    }
}

static void test_attention(const gb_backend_ops *ops, gb_backend *b) {
    struct {
        int batch, nt, pos0, nh, nkv, hd, cap, win;
    } cases[] = {
        {2, 5, 0, 4, 2, 10, 12, 0},    /* prefill, GQA */
        {1, 17, 3, 3, 3, 7, 24, 0},    /* odd head_dim, MHA */
        {2, 1, 9, 4, 1, 16, 12, 0},    /* decode, MQA */
        {1, 1, 290, 2, 1, 10, 300, 0}, /* long decode: flash splits the KV range */
        {1, 6, 130, 2, 2, 8, 140, 4},  /* sliding window */
        {3, 1, 200, 1, 1, 64, 256, 0}, /* flash split, several sequences */
        /* grouped path (att_group): the 1B prefill's GQA 4 and head_dim 64, keys crossing
         * the 64-key block; GQA 6 (a 4 + 2 split of the group) with a head_dim tail; a
         * 12-head group (above GB_ATT_GMAX: one head at a time); odd key counts */
        {1, 70, 0, 8, 2, 64, 80, 0},
        {2, 3, 66, 6, 1, 20, 72, 0},
        {1, 9, 0, 12, 1, 16, 9, 0},
        {1, 5, 60, 4, 1, 64, 70, 3},
        /* one-token decode on the grouped path: the 1B shape (32 heads, 8 KV heads, head_dim
         * 64) past two key blocks; a 3-head group with a head_dim tail */
        {1, 1, 150, 32, 8, 64, 160, 0},
        {2, 1, 100, 6, 2, 20, 128, 0},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        gb_attn_args a = {.batch = cases[ci].batch,
                          .n_tokens = cases[ci].nt,
                          .pos0 = cases[ci].pos0,
                          .cap = cases[ci].cap,
                          .n_heads = cases[ci].nh,
                          .n_kv_heads = cases[ci].nkv,
                          .head_dim = cases[ci].hd,
                          .sliding_window = cases[ci].win};
        a.scale = 1.0f / sqrtf((float)a.head_dim);
        size_t qn = (size_t)a.batch * a.n_tokens * a.n_heads * a.head_dim;
        size_t cn = (size_t)a.batch * a.cap * a.n_kv_heads * a.head_dim;
        float *q = malloc(qn * 4), *o = malloc(qn * 4), *orf = malloc(qn * 4), *kc = malloc(cn * 4),
              *vc = malloc(cn * 4);
        fill(q, qn, 3.0f), fill(kc, cn, 3.0f), fill(vc, cn, 1.0f);
        ref_attention(orf, q, kc, vc, &a);
        for (int impl = GB_ATTN_SDPA; impl <= GB_ATTN_FLASH; impl++) {
            size_t sb = ops->attn_scratch_bytes(b, (gb_attn_impl)impl, &a);
            void *scratch = sb ? malloc(sb) : NULL;
            ops->attention(b, (gb_attn_impl)impl, o, q, kc, vc, &a, scratch);
            char what[80];
            snprintf(what, sizeof what, "attention %s case %zu",
                     impl == GB_ATTN_SDPA ? "sdpa" : "flash", ci);
            check_close(what, o, orf, NULL, qn, 1e-5, 1e-6);
            free(scratch);
        }
        free(q), free(o), free(orf), free(kc), free(vc);
    }
}

static void test_fused_projections(const gb_backend_ops *ops, gb_backend *b) {
    const gb_dtype dts[] = {GB_F32, GB_F16, GB_BF16};
    static const int ns[] = {1, 3, 17};
    for (int di = 0; di < 3; di++)
        for (int ni = 0; ni < 3; ni++) {
            int n = ns[ni], dim = 45;
            gb_weight wq, wk, wv, wg, wu;
            make_weight(&wq, dts[di], 30, dim), make_weight(&wk, dts[di], 10, dim);
            make_weight(&wv, dts[di], 10, dim);
            make_weight(&wg, dts[di], 67, dim), make_weight(&wu, dts[di], 67, dim);
            float *x = malloc(sizeof(float) * n * dim), *nw = malloc(sizeof(float) * dim);
            float *xn = malloc(sizeof(float) * n * dim), *xnr = malloc(sizeof(float) * n * dim);
            float *bq = malloc(sizeof(float) * 30);
            fill(x, (size_t)n * dim, 2.0f), fill(nw, dim, 1.0f), fill(bq, 30, 1.0f);
            float *ys[3], *yr[3];
            const gb_weight *ws[3] = {&wq, &wk, &wv};
            const float *bs[3] = {bq, NULL, NULL};
            for (int i = 0; i < 3; i++) {
                ys[i] = malloc(sizeof(float) * n * ws[i]->rows);
                yr[i] = malloc(sizeof(float) * n * ws[i]->rows);
            }
            ops->rmsnorm_matmul(b, ys, xn, x, nw, 1e-5f, ws, bs, 3, n);
            ref_rmsnorm(xnr, x, nw, n, dim, 1e-5f);
            check_close("rmsnorm_matmul xnorm", xn, xnr, NULL, (size_t)n * dim, 2e-6, 1e-7);
            double tol =
                strcmp(isa_name, "avx512") == 0 && dts[di] == GB_BF16 && n > 1 ? 8e-3 : 2e-6;
            for (int i = 0; i < 3; i++) {
                ref_matmul(NULL, yr[i], xn, ws[i], bs[i], n);
                double *sc = malloc(sizeof(double) * n * ws[i]->rows);
                for (int t = 0; t < n; t++)
                    for (int64_t r = 0; r < ws[i]->rows; r++)
                        sc[t * ws[i]->rows + r] =
                            ref_absdot(ws[i], xn, r, t) + (bs[i] ? fabs(bs[i][r]) : 0);
                check_close("rmsnorm_matmul y", ys[i], yr[i], sc, (size_t)n * ws[i]->rows, tol,
                            1e-30);
                free(sc);
            }
            /* gate_up_act vs act(x Wg^T) * (x Wu^T) from the reference matmul */
            for (int act = 0; act < 2; act++) {
                float *o = malloc(sizeof(float) * n * 67), *g = malloc(sizeof(float) * n * 67),
                      *u = malloc(sizeof(float) * n * 67);
                double *sc = malloc(sizeof(double) * n * 67);
                ops->gate_up_act(b, o, x, &wg, &wu, n, (gb_act_kind)act);
                ref_matmul(NULL, g, x, &wg, NULL, n);
                ref_matmul(NULL, u, x, &wu, NULL, n);
                for (int t = 0; t < n; t++)
                    for (int r = 0; r < 67; r++) {
                        /* error of g and u propagated through act(g) * u (|act'| <= 1.2) */
                        double eg = ref_absdot(&wg, x, r, t), eu = ref_absdot(&wu, x, r, t);
                        sc[t * 67 + r] = 1.2 * eg * fabs(u[t * 67 + r]) +
                                         eu * fabs(ref_act(g[t * 67 + r], (gb_act_kind)act)) + 1.0;
                        g[t * 67 + r] =
                            (float)(ref_act(g[t * 67 + r], (gb_act_kind)act) * u[t * 67 + r]);
                    }
                check_close(act ? "gate_up_act gelu" : "gate_up_act silu", o, g, sc, (size_t)n * 67,
                            tol * 2, 1e-30);
                free(o), free(g), free(u), free(sc);
            }
            for (int i = 0; i < 3; i++)
                free(ys[i]), free(yr[i]);
            free(x), free(nw), free(xn), free(xnr), free(bq);
            free(wq.owned), free(wk.owned), free(wv.owned), free(wg.owned), free(wu.owned);
        }
}

/* The kernelized ops against the engine's reference kernels (cpu_ref.h) on the same inputs:
 * both round differently from the double-precision truth, so the bound is the sum of both. */
static void test_vs_engine_reference(const gb_backend_ops *ops, gb_backend *b) {
    const gb_backend_ops *ref = &gb_cpu_ref_ops;
    gb_backend rb = {.ops = ref, .threads = 1, .impl = NULL};
    const gb_dtype dts[] = {GB_F32, GB_F16, GB_BF16};
    static const int ns[] = {1, 3, 17, 128};
    for (int di = 0; di < 3; di++)
        for (int ni = 0; ni < 4; ni++) {
            int n = ns[ni], rows = 41, cols = ni == 3 ? 35 : 1061;
            gb_weight w;
            make_weight(&w, dts[di], rows, cols);
            float *x = malloc(sizeof(float) * n * cols), *y = malloc(sizeof(float) * n * rows),
                  *yr = malloc(sizeof(float) * n * rows);
            double *sc = malloc(sizeof(double) * n * rows);
            fill(x, (size_t)n * cols, 1.5f);
            ops->matmul(b, y, x, &w, NULL, n);
            ref->matmul(&rb, yr, x, &w, NULL, n);
            for (int t = 0; t < n; t++)
                for (int r = 0; r < rows; r++)
                    sc[t * rows + r] = ref_absdot(&w, x, r, t);
            double tol =
                strcmp(isa_name, "avx512") == 0 && dts[di] == GB_BF16 && n > 1 ? 8e-3 : 1e-5;
            check_close("matmul vs gb_ref_matmul", y, yr, sc, (size_t)n * rows, tol, 1e-30);
            free(x), free(y), free(yr), free(sc), free(w.owned);
        }
    /* attention: every implementation of both sets agrees */
    gb_attn_args a = {.batch = 2,
                      .n_tokens = 9,
                      .pos0 = 4,
                      .cap = 20,
                      .n_heads = 6,
                      .n_kv_heads = 2,
                      .head_dim = 12,
                      .scale = 0.3f};
    size_t qn = (size_t)2 * 9 * 6 * 12, cn = (size_t)2 * 20 * 2 * 12;
    float *q = malloc(qn * 4), *o = malloc(qn * 4), *orf = malloc(qn * 4), *kc = malloc(cn * 4),
          *vc = malloc(cn * 4);
    fill(q, qn, 2.0f), fill(kc, cn, 2.0f), fill(vc, cn, 1.0f);
    for (int impl = 0; impl < 3; impl++) {
        size_t sb = ref->attn_scratch_bytes(&rb, (gb_attn_impl)impl, &a);
        void *s1 = sb ? malloc(sb) : NULL;
        ref->attention(&rb, (gb_attn_impl)impl, orf, q, kc, vc, &a, s1);
        free(s1);
        sb = ops->attn_scratch_bytes(b, (gb_attn_impl)impl, &a);
        void *s2 = sb ? malloc(sb) : NULL;
        ops->attention(b, (gb_attn_impl)impl, o, q, kc, vc, &a, s2);
        free(s2);
        check_close("attention vs gb_ref_attention", o, orf, NULL, qn, 2e-5, 2e-6);
    }
    free(q), free(o), free(orf), free(kc), free(vc);
    /* rope with the engine's reference */
    float inv[6] = {1.0f, 0.3f, 0.1f, 0.03f, 0.01f, 0.003f};
    gb_rope_args r = {.n_tokens = 9,
                      .batch = 2,
                      .pos0 = 100,
                      .n_heads = 6,
                      .head_dim = 12,
                      .inv_freq = inv,
                      .attn_factor = 1.0f};
    float *x1 = malloc(qn * 4), *x2 = malloc(qn * 4);
    fill(x1, qn, 2.0f);
    memcpy(x2, x1, qn * 4);
    ops->rope(b, x1, &r);
    ref->rope(&rb, x2, &r);
    check_close("rope vs gb_ref_rope", x1, x2, NULL, qn, 1e-6, 1e-6);
    free(x1), free(x2);
}

typedef struct {
    int *hits;
} pool_ctx;
static void pool_mark(void *ctx, int64_t b, int64_t e, int tid) {
    (void)tid;
    pool_ctx *c = ctx;
    for (int64_t i = b; i < e; i++)
        __atomic_fetch_add(&c->hits[i], 1, __ATOMIC_RELAXED);
}

static void test_threadpool(void) {
    gb_error err = {0};
    gb_threadpool *p = NULL;
    CHECK_OK(gb_threadpool_create(3, &p, &err), &err);
    CHECK_EQ_INT(gb_threadpool_size(p), 3);
    int hits[1001];
    for (int rep = 0; rep < 200; rep++) {
        memset(hits, 0, sizeof hits);
        pool_ctx c = {hits};
        int64_t n = 1 + rep * 5;
        gb_threadpool_for(p, 1 + rep % 4, n, 1 + rep % 7, pool_mark, &c);
        int bad = 0;
        for (int64_t i = 0; i < n; i++)
            bad += hits[i] != 1;
        CHECK_MSG(bad == 0, "parallel_for n=%ld: %d indices not visited exactly once", (long)n,
                  bad);
    }
    gb_threadpool_free(p);
}

int main(void) {
    test_threadpool();
    static const char *isas[] = {"scalar", "avx2", "avx512"};
    for (int i = 0; i < 3; i++) {
        const gb_opt_isa *isa = gb_opt_isa_find(isas[i]);
        if (!isa) {
            fprintf(stderr, "isa %s: not supported by this CPU (or not built), skipped\n", isas[i]);
            continue;
        }
        gb_cpu_opt_set_isa(isa);
        /* fallbacks (eager attention, kv_write, ...) come from the test's own table in the
         * first pass and from the engine's reference table in the second */
        const gb_backend_ops *ops = gb_cpu_kernelized_ops(&ref_ops);
        static const int threads[] = {1, 3};
        for (int ti = 0; ti < 2; ti++) {
            isa_name = isas[i];
            cur_threads = threads[ti];
            gb_backend b = {.ops = ops, .threads = threads[ti], .impl = NULL};
            test_matmul(ops, &b);
            test_norms_and_elementwise(ops, &b);
            test_rope(ops, &b);
            test_attention(ops, &b);
            test_fused_projections(ops, &b);
        }
        ops = gb_cpu_kernelized_ops(&gb_cpu_ref_ops);
        for (int ti = 0; ti < 2; ti++) {
            cur_threads = threads[ti];
            gb_backend b = {.ops = ops, .threads = threads[ti], .impl = NULL};
            test_vs_engine_reference(ops, &b);
            test_rope(ops, &b);
        }
        fprintf(stderr, "isa %s: tested\n", isas[i]);
    }
    gb_cpu_opt_release();
    TEST_MAIN_END();
}
