/* Portable (no ISA extension) versions of the optimised kernel primitives: the fallback
 * when the CPU has no AVX2, and the baseline the vector versions are tested against. */
#include <math.h>
#include <string.h>

#include "backend/cpu/opt.h"

static size_t pack_bytes(gb_dtype wd, int n, int64_t cols) {
    (void)wd;
    return (size_t)n * (size_t)cols * sizeof(float);
}

static void pack_x(void *xp, const float *x, gb_dtype wd, int n, int64_t cols, int t0, int t1) {
    (void)wd;
    (void)n;
    memcpy((float *)xp + (int64_t)t0 * cols, x + (int64_t)t0 * cols,
           (size_t)(t1 - t0) * (size_t)cols * sizeof(float));
}

static void row_to_f32(float *dst, gb_dtype dt, const void *w, int64_t off, int64_t k) {
    gb_convert_to_f32(dst, (const char *)w + (size_t)off * gb_dtype_size(dt), dt, (size_t)k);
}

/* Four independent partial sums per dot product so the compiler can vectorise the loop. */
static float dot4(const float *a, const float *b, int64_t n) {
    float s[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++)
            s[j] += a[i + j] * b[i + j];
    float r = (s[0] + s[1]) + (s[2] + s[3]);
    for (; i < n; i++)
        r += a[i] * b[i];
    return r;
}

static void mm_rows(const gb_mm_args *a, int64_t r0, int64_t r1) {
    const int64_t K = a->cols;
    const float *xp = a->xp;
    float wrow[256];
    for (int64_t r = r0; r < r1; r++) {
        for (int t = 0; t < a->n; t++)
            a->y[t * a->ldy + r] = a->bias ? a->bias[r] : 0.0f;
        /* widen the row in 256-element pieces on the stack, reused by every token row */
        for (int64_t k0 = 0; k0 < K; k0 += 256) {
            int64_t kn = K - k0 < 256 ? K - k0 : 256;
            const float *wr;
            if (a->wdtype == GB_F32) {
                wr = (const float *)a->w + r * K + k0;
            } else {
                row_to_f32(wrow, a->wdtype, a->w, r * K + k0, kn);
                wr = wrow;
            }
            for (int t = 0; t < a->n; t++)
                a->y[t * a->ldy + r] += dot4(wr, xp + t * K + k0, kn);
        }
    }
}

static float act1(float x, gb_act_kind act) {
    if (act == GB_BACT_SILU) return x / (1.0f + expf(-x));
    /* 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)): no cancellation for negative x */
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return x / (1.0f + expf(-2.0f * u));
}

static void act_mul(float *out, const float *g, const float *u, size_t count, gb_act_kind act) {
    for (size_t i = 0; i < count; i++)
        out[i] = act1(g[i], act) * u[i];
}

static void act_only(float *y, const float *x, size_t count, gb_act_kind act) {
    for (size_t i = 0; i < count; i++)
        y[i] = act1(x[i], act);
}

static float dot(const float *a, const float *b, int n) {
    return dot4(a, b, n);
}
static float sumsq(const float *a, int n) {
    return dot4(a, a, n);
}

static void scale_axpy(float *y, float s, float a, const float *x, int n) {
    for (int i = 0; i < n; i++)
        y[i] = y[i] * s + a * x[i];
}

static void scale_mul(float *y, const float *x, float s, const float *w, int n) {
    for (int i = 0; i < n; i++)
        y[i] = x[i] * s * w[i];
}

static void add(float *y, const float *a, const float *c, size_t n) {
    for (size_t i = 0; i < n; i++)
        y[i] = a[i] + c[i];
}

static float exp_sum(float *p, const float *s, float m, int n) {
    float sum = 0.0f;
    for (int i = 0; i < n; i++)
        sum += (p[i] = expf(s[i] - m));
    return sum;
}

const gb_opt_isa gb_opt_isa_scalar = {
    .name = "scalar",
    .pack_bytes = pack_bytes,
    .pack_x = pack_x,
    .mm_rows = mm_rows,
    .act_mul = act_mul,
    .act = act_only,
    .dot = dot,
    .sumsq = sumsq,
    .scale_axpy = scale_axpy,
    .scale_mul = scale_mul,
    .add = add,
    .exp_sum = exp_sum,
};
