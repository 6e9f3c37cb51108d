/* Reference CPU kernels against naive double-precision computations on random inputs of
 * awkward sizes, non-finite checks, and the kernel-check harness run on the kernelized
 * table (the reference fused entries until the optimised set lands, then the real one). */
#include <math.h>

#include "backend/cpu/cpu_ref.h"
#include "kernel_check.h"
#include "test.h"

static kc_rng rng = {42};

static gb_backend *cpu(int kernelize) {
    gb_backend_options o = {.kernelize = kernelize, .threads = 0};
    gb_backend *b = NULL;
    gb_error err;
    if (gb_backend_cpu_create(&o, &b, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    return b;
}

static void test_matmul(gb_backend *b) {
    static const int sz[][3] = {{1, 1, 1}, {1, 9, 3}, {4, 63, 17}, {7, 129, 33}, {2, 515, 5}};
    for (int dt = 0; dt < GB_DTYPE_COUNT; dt++) {
        for (size_t s = 0; s < sizeof sz / sizeof sz[0]; s++) {
            int n = sz[s][0], k = sz[s][1], m = sz[s][2];
            float *x = kc_rand(&rng, (size_t)n * k, 1.0f), *w = kc_rand(&rng, (size_t)m * k, 1.0f);
            float *bias = kc_rand(&rng, m, 1.0f), *y = malloc((size_t)n * m * 4);
            double *want = malloc((size_t)n * m * sizeof(double));
            gb_weight W;
            gb_error err;
            CHECK_OK(b->ops->weight_load(b, &W, w, GB_F32, m, k, (gb_dtype)dt, 0, &err), &err);
            b->ops->matmul(b, y, x, &W, bias, n);
            for (int i = 0; i < n; i++)
                for (int o = 0; o < m; o++) {
                    double acc = bias[o];
                    for (int j = 0; j < k; j++) {
                        /* the weight as stored in dtype, exactly */
                        double wv = dt == GB_F32    ? w[o * k + j]
                                    : dt == GB_BF16 ? gb_bf16_to_f32(gb_f32_to_bf16(w[o * k + j]))
                                                    : gb_f16_to_f32(gb_f32_to_f16(w[o * k + j]));
                        acc += (double)x[i * k + j] * wv;
                    }
                    want[i * m + o] = acc;
                }
            char what[96];
            snprintf(what, sizeof what, "ref matmul %s %dx%dx%d", gb_dtype_name((gb_dtype)dt), n, k,
                     m);
            kc_compare(what, y, want, (size_t)n * m, 1e-5, 1e-5 * sqrt(k));
            b->ops->weight_free(b, &W);
            free(x), free(w), free(bias), free(y), free(want);
        }
    }
    /* transposed load (GPT-2 Conv1D [in, out]) with conversion */
    {
        int in = 11, out = 6;
        float *src = kc_rand(&rng, (size_t)in * out, 1.0f);
        gb_weight W;
        gb_error err;
        CHECK_OK(b->ops->weight_load(b, &W, src, GB_F32, out, in, GB_F32, 1, &err), &err);
        int bad = 0;
        for (int r = 0; r < out; r++)
            for (int c = 0; c < in; c++)
                bad += gb_weight_at(&W, r, c) != src[c * out + r];
        CHECK_EQ_INT(bad, 0);
        b->ops->weight_free(b, &W);
        free(src);
    }
}

static void test_norms_acts(gb_backend *b) {
    int n = 3, dim = 131;
    size_t cnt = (size_t)n * dim;
    float *x = kc_rand(&rng, cnt, 3.0f), *w = kc_rand(&rng, dim, 1.0f),
          *bias = kc_rand(&rng, dim, 1.0f);
    float *y = malloc(cnt * 4), *u = kc_rand(&rng, cnt, 2.0f);
    double *want = malloc(cnt * sizeof(double));
    x[5] = 0.0f; /* row 1 all zeros: finite output (eps) */
    for (int c = 0; c < dim; c++)
        x[dim + c] = 0.0f;

    b->ops->rmsnorm(b, y, x, w, n, dim, 1e-6f);
    for (int i = 0; i < n; i++) {
        double ss = 0;
        for (int c = 0; c < dim; c++)
            ss += (double)x[i * dim + c] * x[i * dim + c];
        double inv = 1.0 / sqrt(ss / dim + 1e-6);
        for (int c = 0; c < dim; c++)
            want[i * dim + c] = x[i * dim + c] * inv * w[c];
    }
    kc_compare("ref rmsnorm", y, want, cnt, 1e-6, 1e-6);

    b->ops->layernorm(b, y, x, w, bias, n, dim, 1e-5f);
    for (int i = 0; i < n; i++) {
        double mean = 0, var = 0;
        for (int c = 0; c < dim; c++)
            mean += x[i * dim + c];
        mean /= dim;
        for (int c = 0; c < dim; c++)
            var += (x[i * dim + c] - mean) * (x[i * dim + c] - mean);
        var /= dim;
        for (int c = 0; c < dim; c++)
            want[i * dim + c] = (x[i * dim + c] - mean) / sqrt(var + 1e-5) * w[c] + bias[c];
    }
    kc_compare("ref layernorm", y, want, cnt, 1e-5, 1e-5);

    x[0] = -100.0f, x[1] = 100.0f, x[2] = -30.0f; /* saturating activations stay finite */
    b->ops->act_mul(b, y, x, u, cnt, GB_BACT_SILU);
    for (size_t i = 0; i < cnt; i++)
        want[i] = x[i] / (1.0 + exp(-(double)x[i])) * u[i];
    kc_compare("ref silu*up", y, want, cnt, 1e-6, 1e-7);
    b->ops->act(b, y, x, cnt, GB_BACT_GELU_TANH);
    for (size_t i = 0; i < cnt; i++) {
        double v = x[i];
        want[i] = 0.5 * v * (1.0 + tanh(sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    }
    kc_compare("ref gelu_tanh", y, want, cnt, 1e-6, 1e-7);
    b->ops->add(b, y, x, u, cnt);
    for (size_t i = 0; i < cnt; i++)
        want[i] = (double)x[i] + u[i];
    kc_compare("ref add", y, want, cnt, 1e-7, 0);
    free(x), free(w), free(bias), free(y), free(u), free(want);
}

static void test_rope(gb_backend *b) {
    int batch = 2, nt = 7, pos0 = 90, nh = 3, hd = 18;
    float inv[9];
    for (int i = 0; i < hd / 2; i++)
        inv[i] = (float)(1.0 / pow(10000.0, 2.0 * i / hd));
    size_t cnt = (size_t)batch * nt * nh * hd;
    float *x = kc_rand(&rng, cnt, 1.0f), *y = malloc(cnt * 4);
    double *want = malloc(cnt * sizeof(double));
    memcpy(y, x, cnt * 4);
    gb_rope_args a = {.n_tokens = nt,
                      .batch = batch,
                      .pos0 = pos0,
                      .n_heads = nh,
                      .head_dim = hd,
                      .inv_freq = inv,
                      .attn_factor = 1.0f};
    b->ops->rope(b, y, &a);
    for (int r = 0; r < batch * nt; r++)
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < hd / 2; i++) {
                double th = (double)(pos0 + r % nt) * inv[i];
                const float *v = x + ((size_t)r * nh + h) * hd;
                want[((size_t)r * nh + h) * hd + i] = v[i] * cos(th) - v[i + hd / 2] * sin(th);
                want[((size_t)r * nh + h) * hd + i + hd / 2] =
                    v[i + hd / 2] * cos(th) + v[i] * sin(th);
            }
    kc_compare("ref rope", y, want, cnt, 1e-5, 2e-5);
    free(x), free(y), free(want);
}

/* Naive double attention over the cache for every query row. */
static void naive_attention(double *out, const float *q, const float *kc, const float *vc,
                            const gb_attn_args *a) {
    int group = a->n_heads / a->n_kv_heads, d = a->head_dim;
    int kv_len = a->pos0 + a->n_tokens;
    double *s = malloc((size_t)kv_len * sizeof(double));
    for (int b = 0; b < a->batch; b++)
        for (int t = 0; t < a->n_tokens; t++)
            for (int h = 0; h < a->n_heads; h++) {
                int p = a->pos0 + t, g = h / group;
                const float *qv = q + (((size_t)b * a->n_tokens + t) * a->n_heads + h) * d;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= p; j++) {
                    int vis = a->sliding_window <= 0 || j > p - a->sliding_window;
                    const float *kv = kc + (((size_t)b * a->cap + j) * a->n_kv_heads + g) * d;
                    double dd = 0;
                    for (int c = 0; c < d; c++)
                        dd += (double)qv[c] * kv[c];
                    s[j] = vis ? dd * a->scale : -INFINITY;
                    if (s[j] > mx) mx = s[j];
                }
                for (int j = 0; j <= p; j++)
                    sum += (s[j] = exp(s[j] - mx));
                double *o = out + (((size_t)b * a->n_tokens + t) * a->n_heads + h) * d;
                for (int c = 0; c < d; c++)
                    o[c] = 0;
                for (int j = 0; j <= p; j++) {
                    const float *vv = vc + (((size_t)b * a->cap + j) * a->n_kv_heads + g) * d;
                    for (int c = 0; c < d; c++)
                        o[c] += s[j] / sum * vv[c];
                }
            }
    free(s);
}

static void test_attention(gb_backend *b) {
    static const gb_attn_args cases[] = {
        {.batch = 1,
         .n_tokens = 1,
         .pos0 = 0,
         .cap = 1,
         .n_heads = 1,
         .n_kv_heads = 1,
         .head_dim = 3},
        {.batch = 2,
         .n_tokens = 21,
         .pos0 = 0,
         .cap = 25,
         .n_heads = 4,
         .n_kv_heads = 2,
         .head_dim = 11},
        {.batch = 1,
         .n_tokens = 35,
         .pos0 = 4,
         .cap = 39,
         .n_heads = 6,
         .n_kv_heads = 2,
         .head_dim = 5},
        {.batch = 2,
         .n_tokens = 1,
         .pos0 = 260,
         .cap = 300,
         .n_heads = 2,
         .n_kv_heads = 1,
         .head_dim = 7},
        {.batch = 1,
         .n_tokens = 50,
         .pos0 = 0,
         .cap = 50,
         .n_heads = 2,
         .n_kv_heads = 2,
         .head_dim = 4,
         .sliding_window = 9},
        {.batch = 1,
         .n_tokens = 1,
         .pos0 = 140,
         .cap = 141,
         .n_heads = 2,
         .n_kv_heads = 2,
         .head_dim = 4,
         .sliding_window = 70},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        gb_attn_args a = cases[c];
        a.scale = 1.0f / sqrtf((float)a.head_dim);
        size_t qn = (size_t)a.batch * a.n_tokens * a.n_heads * a.head_dim;
        size_t cn = (size_t)a.batch * a.cap * a.n_kv_heads * a.head_dim;
        for (int peaked = 0; peaked < 2; peaked++) {
            float *q = kc_rand(&rng, qn, peaked ? 80.0f : 1.0f);
            float *k = kc_rand(&rng, cn, 1.0f), *v = kc_rand(&rng, cn, 1.0f);
            double *want = malloc(qn * sizeof(double));
            naive_attention(want, q, k, v, &a);
            for (int impl = 0; impl < 3; impl++) {
                float *out = malloc(qn * 4);
                void *scratch = malloc(b->ops->attn_scratch_bytes(b, (gb_attn_impl)impl, &a));
                b->ops->attention(b, (gb_attn_impl)impl, out, q, k, v, &a, scratch);
                char what[96];
                snprintf(what, sizeof what, "ref attention impl %d case %zu peaked %d", impl, c,
                         peaked);
                kc_compare(what, out, want, qn, 1e-4, 1e-5);
                free(out);
                free(scratch);
            }
            free(q), free(k), free(v), free(want);
        }
    }
}

static void test_small_ops(gb_backend *b) {
    /* embed (bf16 table + position table) and kv_write against direct indexing */
    int vocab = 37, dim = 9, n = 6, nt = 3, pos0 = 4;
    float *table = kc_rand(&rng, (size_t)vocab * dim, 1.0f), *pt = kc_rand(&rng, 10 * dim, 1.0f);
    gb_weight T, P;
    gb_error err;
    CHECK_OK(b->ops->weight_load(b, &T, table, GB_F32, vocab, dim, GB_BF16, 0, &err), &err);
    CHECK_OK(b->ops->weight_load(b, &P, pt, GB_F32, 10, dim, GB_F32, 0, &err), &err);
    int32_t ids[6] = {0, 36, 5, 5, 1, 20};
    float out[6 * 9];
    double want[6 * 9];
    b->ops->embed(b, out, &T, ids, n, &P, nt, pos0);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < dim; c++)
            want[i * dim + c] = (double)gb_bf16_to_f32(gb_f32_to_bf16(table[ids[i] * dim + c])) +
                                pt[(pos0 + i % nt) * dim + c];
    kc_compare("ref embed", out, want, (size_t)n * dim, 1e-7, 0);
    b->ops->weight_free(b, &T);
    b->ops->weight_free(b, &P);
    free(table), free(pt);

    gb_attn_args a = {.batch = 2,
                      .n_tokens = 2,
                      .pos0 = 3,
                      .cap = 6,
                      .n_heads = 2,
                      .n_kv_heads = 1,
                      .head_dim = 4};
    float k[16], v[16], kc[48] = {0}, vc[48] = {0};
    for (int i = 0; i < 16; i++)
        k[i] = (float)i, v[i] = (float)-i;
    b->ops->kv_write(b, kc, vc, k, v, &a);
    CHECK(kc[3 * 4] == 0.0f && kc[4 * 4 + 1] == 5.0f && kc[(6 + 3) * 4 + 2] == 10.0f);
    CHECK(vc[(6 + 4) * 4 + 3] == -15.0f && kc[2 * 4] == 0.0f);
}

int main(void) {
    gb_backend *ref = cpu(0), *kern = cpu(1);
    CHECK(ref->ops->rmsnorm_matmul == NULL); /* reference table: engine composes */
    test_matmul(ref);
    test_norms_acts(ref);
    test_rope(ref);
    test_attention(ref);
    test_small_ops(ref);
    /* the kernelized table against the reference one, through the shared harness */
    kc_compare_backends(ref, kern, 1e-5);
    gb_backend_free(ref);
    gb_backend_free(kern);
    TEST_MAIN_END();
}
