/* The kernelized CPU op table (see opt.h): multi-threaded, vectorised kernels with fused
 * entries, built on the per-ISA primitives and the persistent thread pool.
 *
 * Work split: matmuls are split over output rows (chunks handed out by an atomic counter,
 * so both cores stream disjoint weight rows); attention over (sequence, head, query) rows,
 * or for single-token flash decode over KV segments that are merged afterwards; row-wise
 * ops over rows. Scratch buffers grow to the largest call (the prefill) and are then reused:
 * decode steps allocate nothing. If a scratch allocation fails the op falls back to the
 * reference kernel. */
#include "backend/cpu/opt.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_ref.h"
#include "backend/cpu/panel.h"
#include "backend/cpu/threadpool.h"

static struct {
    gb_backend_ops table;
    const gb_backend_ops *ref;
    const gb_opt_isa *isa;
    gb_threadpool *pool;
    void *xpack; /* packed activations */
    size_t xpack_cap;
    float *scratch; /* per-thread scratch (gate/up) and rope tables */
    size_t scratch_cap;
} S;

/* ---- ISA selection ---- */

static int cpu_has(const char *isa) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!strcmp(isa, "scalar")) return 1;
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
    if (!strcmp(isa, "avx2")) return avx2;
    if (!strcmp(isa, "avx512"))
        return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512bf16");
    return 0;
#else
    return !strcmp(isa, "scalar");
#endif
}

const gb_opt_isa *gb_opt_isa_find(const char *name) {
    if (!name || !cpu_has(name)) return NULL;
    if (!strcmp(name, "scalar")) return &gb_opt_isa_scalar;
#if defined(__x86_64__)
    if (!strcmp(name, "avx2")) return &gb_opt_isa_avx2;
    if (!strcmp(name, "avx512")) {
        /* the AVX-512 files provide the bf16 GEMMs (row-major and panel layout); the other
         * primitives are the AVX2 ones */
        static gb_opt_isa merged;
        merged = gb_opt_isa_avx2;
        merged.name = gb_opt_isa_avx512.name;
        merged.pack_bytes = gb_opt_isa_avx512.pack_bytes;
        merged.pack_x = gb_opt_isa_avx512.pack_x;
        merged.mm_rows = gb_opt_isa_avx512.mm_rows;
        merged.panel_pack_bytes = gb_opt_isa_avx512.panel_pack_bytes;
        merged.panel_pack_x = gb_opt_isa_avx512.panel_pack_x;
        merged.panel_mm_rows = gb_opt_isa_avx512.panel_mm_rows;
        merged.panels_default = gb_opt_isa_avx512.panels_default;
        return &merged;
    }
#endif
    return NULL;
}

const gb_opt_isa *gb_opt_isa_best(void) {
    const gb_opt_isa *isa = gb_opt_isa_find(getenv("GB_CPU_ISA"));
    if (isa) return isa;
    static const char *order[] = {"avx512", "avx2", "scalar"};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        if ((isa = gb_opt_isa_find(order[i]))) return isa;
    return &gb_opt_isa_scalar;
}

void gb_cpu_opt_set_isa(const gb_opt_isa *isa) {
    S.isa = isa ? isa : gb_opt_isa_best();
}

const gb_opt_isa *gb_cpu_opt_isa(void) {
    if (!S.isa) S.isa = gb_opt_isa_best();
    return S.isa;
}

/* ---- state ---- */

static int threads_of(const gb_backend *b) {
    int t = b && b->threads > 0 ? b->threads : gb_cpu_count();
    return t < 1 ? 1 : t;
}

/* Pool with at least nth threads; 0 when it cannot be made (callers then run on one). */
static int ensure_pool(int nth) {
    if (nth <= 1) return 1;
    if (S.pool && gb_threadpool_size(S.pool) >= nth) return 1;
    gb_threadpool_free(S.pool);
    S.pool = NULL;
    gb_error err = {0};
    return gb_threadpool_create(nth, &S.pool, &err) == 0;
}

static int grow(void **buf, size_t *cap, size_t bytes) {
    if (bytes <= *cap) return 1;
    size_t want = bytes + bytes / 4 + 4096;
    want = (want + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, want);
    if (!p) return 0;
    free(*buf);
    *buf = p;
    *cap = want;
    return 1;
}

void gb_cpu_opt_release(void) {
    gb_threadpool_free(S.pool);
    S.pool = NULL;
    free(S.xpack);
    S.xpack = NULL;
    S.xpack_cap = 0;
    free(S.scratch);
    S.scratch = NULL;
    S.scratch_cap = 0;
}

static void pfor(int nth, int64_t n, int64_t chunk, gb_pool_range fn, void *ctx) {
    if (!ensure_pool(nth)) nth = 1;
    gb_threadpool_for(S.pool, nth, n, chunk, fn, ctx);
}

/* ---- matmul ---- */

typedef struct {
    const gb_opt_isa *isa;
    const float *x;
    gb_dtype wd;
    int n, panel;
    int64_t cols;
} pack_job;

static void pack_range(void *ctx, int64_t b, int64_t e, int tid) {
    (void)tid;
    pack_job *j = ctx;
    if (j->panel)
        j->isa->panel_pack_x(S.xpack, j->x, j->n, j->cols, (int)b, (int)e);
    else
        j->isa->pack_x(S.xpack, j->x, j->wd, j->n, j->cols, (int)b, (int)e);
}

/* Whether w runs on the panel kernels (packed, and the ISA has them). */
static int use_panel(const gb_weight *w) {
    return w->packed && gb_cpu_opt_isa()->panel_mm_rows;
}

/* Packs x[n, cols] for weight w's layout and dtype into S.xpack; 0 on allocation failure. */
static int pack(int nth, const float *x, const gb_weight *w, int n) {
    const gb_opt_isa *isa = gb_cpu_opt_isa();
    const gb_dtype wd = w->dtype;
    const int64_t cols = w->cols;
    const int panel = use_panel(w);
    size_t bytes = panel ? isa->panel_pack_bytes(n, cols) : isa->pack_bytes(wd, n, cols);
    if (!grow(&S.xpack, &S.xpack_cap, bytes + 64)) return 0;
    pack_job j = {isa, x, wd, n, panel, cols};
    if ((int64_t)n * cols < 65536) nth = 1;
    pfor(nth, n, 1 + n / (4 * nth), pack_range, &j);
    return 1;
}

/* Up to 4 matmuls sharing one packed x, split into row chunks as one index space. */
typedef struct {
    int count;
    gb_mm_args a[4];
    int64_t rows[4], chunk[4], first[4]; /* first chunk index of each matmul */
    const gb_opt_isa *isa;
} mm_job;

/* Rows per work item; a multiple of 16, so chunks of a packed weight are whole panels. The
 * panel GEMM (n > 1) takes 128 rows: its x k-block is shared by the chunk's 8 panels
 * (32 rows: 67-84 GFLOP/s, 128 rows: 72-87, n = 8 and 128, 1 thread, hot, noisy); the panel
 * GEMV at least 64 (4 panels, its 4 streams). */
static int64_t row_chunk(int64_t rows, int n, int nth, int panel) {
    int64_t c = n == 1 ? rows / ((int64_t)nth * 8) : panel ? 128 : 32;
    if (c < 16) c = 16;
    if (panel && c < 64) c = 64; /* the panel GEMV streams 4 panels at once */
    if (c > 256) c = 256;
    return (c + 15) & ~(int64_t)15;
}

/* y[:, r0:r1], on the panel kernels when the weight is packed (they expect y preset). */
static void mm_rows(const gb_opt_isa *isa, const gb_mm_args *a, int64_t r0, int64_t r1) {
    if (!a->panel) {
        isa->mm_rows(a, r0, r1);
        return;
    }
    /* one contiguous row segment per token (memset / memcpy): the element loop with the
     * bias test inside took ~1.2% of the 128-token prefill's samples (perf, 2 threads) */
    const size_t bytes = (size_t)(r1 - r0) * sizeof(float);
    for (int t = 0; t < a->n; t++) {
        float *yt = a->y + t * a->ldy + r0;
        if (a->bias)
            memcpy(yt, a->bias + r0, bytes);
        else
            memset(yt, 0, bytes);
    }
    isa->panel_mm_rows(a, r0, r1);
}

static void mm_chunk(void *ctx, int64_t b, int64_t e, int tid) {
    (void)tid;
    mm_job *j = ctx;
    for (int64_t c = b; c < e; c++) {
        int i = 0;
        while (i + 1 < j->count && c >= j->first[i + 1])
            i++;
        int64_t r0 = (c - j->first[i]) * j->chunk[i];
        int64_t r1 = r0 + j->chunk[i] < j->rows[i] ? r0 + j->chunk[i] : j->rows[i];
        mm_rows(j->isa, &j->a[i], r0, r1);
    }
}

static void mm_job_add(mm_job *j, float *y, const float *x, const gb_weight *w, const float *bias,
                       int n, int nth) {
    int i = j->count++;
    j->a[i] = (gb_mm_args){.wdtype = w->dtype,
                           .w = w->data,
                           .cols = w->cols,
                           .xp = S.xpack,
                           .x = x,
                           .n = n,
                           .y = y,
                           .ldy = w->rows,
                           .bias = bias,
                           .panel = use_panel(w),
                           .prows = gb_cpu_panel_rows(w)};
    j->rows[i] = w->rows;
    j->chunk[i] = row_chunk(w->rows, n, nth, use_panel(w));
    j->first[i] =
        i == 0 ? 0 : j->first[i - 1] + (j->rows[i - 1] + j->chunk[i - 1] - 1) / j->chunk[i - 1];
}

static void mm_job_run(mm_job *j, int nth) {
    int last = j->count - 1;
    int64_t total = j->first[last] + (j->rows[last] + j->chunk[last] - 1) / j->chunk[last];
    pfor(nth, total, 1, mm_chunk, j);
}

static void op_matmul(gb_backend *b, float *y, const float *x, const gb_weight *w,
                      const float *bias, int n) {
    int nth = threads_of(b);
    if (n <= 0 || w->rows <= 0) return;
    if ((w->packed && !use_panel(w)) || !pack(nth, x, w, n)) {
        S.ref->matmul(b, y, x, w, bias, n); /* reads either layout */
        return;
    }
    mm_job j = {.isa = gb_cpu_opt_isa()};
    mm_job_add(&j, y, x, w, bias, n, nth);
    mm_job_run(&j, nth);
}

void gb_cpu_opt_matmul(int threads, float *y, const float *x, const gb_weight *w, const float *bias,
                       int n) {
    gb_backend b = {.ops = NULL, .threads = threads, .impl = NULL};
    int nth = threads_of(&b);
    if (n <= 0 || w->rows <= 0) return;
    if (w->packed && !use_panel(w)) {
        gb_ref_matmul(&b, y, x, w, bias, n);
        return;
    }
    if (!pack(nth, x, w, n)) { /* out of memory for the packed x: the reference kernel */
        gb_ref_matmul(&b, y, x, w, bias, n);
        return;
    }
    mm_job j = {.isa = gb_cpu_opt_isa()};
    mm_job_add(&j, y, x, w, bias, n, nth);
    mm_job_run(&j, nth);
}

/* ---- row-wise ops ---- */

typedef struct {
    const gb_opt_isa *isa;
    float *y, *resid;
    const float *x, *w;
    int dim;
    float eps;
} norm_job;

static void rmsnorm_rows(void *ctx, int64_t b, int64_t e, int tid) {
    (void)tid;
    norm_job *j = ctx;
    for (int64_t r = b; r < e; r++) {
        const float *x = j->x + r * j->dim;
        float *y = j->y + r * j->dim;
        if (j->resid) { /* add_rmsnorm: resid += x, normalise resid */
            float *rr = j->resid + r * j->dim;
            j->isa->add(rr, rr, x, (size_t)j->dim);
            x = rr;
        }
        float ss = j->isa->sumsq(x, j->dim);
        float inv = 1.0f / sqrtf(ss / (float)j->dim + j->eps);
        j->isa->scale_mul(y, x, inv, j->w, j->dim);
    }
}

static void rows_run(int nth, int n, int dim, gb_pool_range fn, void *ctx) {
    if ((int64_t)n * dim < 32768) nth = 1;
    pfor(nth, n, 1 + n / (4 * nth), fn, ctx);
}

static void op_rmsnorm(gb_backend *b, float *y, const float *x, const float *w, int n, int dim,
                       float eps) {
    norm_job j = {gb_cpu_opt_isa(), y, NULL, x, w, dim, eps};
    rows_run(threads_of(b), n, dim, rmsnorm_rows, &j);
}

static void op_add_rmsnorm(gb_backend *b, float *resid, const float *x, float *y, const float *w,
                           int n, int dim, float eps) {
    norm_job j = {gb_cpu_opt_isa(), y, resid, x, w, dim, eps};
    rows_run(threads_of(b), n, dim, rmsnorm_rows, &j);
}

typedef struct {
    const gb_opt_isa *isa;
    float *y;
    const float *a, *c;
    gb_act_kind act;
    int kind; /* 0 add, 1 act_mul, 2 act */
} ew_job;

static void ew_range(void *ctx, int64_t b, int64_t e, int tid) {
    (void)tid;
    ew_job *j = ctx;
    size_t n = (size_t)(e - b);
    if (j->kind == 0)
        j->isa->add(j->y + b, j->a + b, j->c + b, n);
    else if (j->kind == 1)
        j->isa->act_mul(j->y + b, j->a + b, j->c + b, n, j->act);
    else
        j->isa->act(j->y + b, j->a + b, n, j->act);
}

static void ew_run(gb_backend *b, ew_job *j, size_t count) {
    int nth = count < 65536 ? 1 : threads_of(b);
    pfor(nth, (int64_t)count, 16384, ew_range, j);
}

static void op_add(gb_backend *b, float *y, const float *a, const float *c, size_t count) {
    ew_job j = {gb_cpu_opt_isa(), y, a, c, GB_BACT_SILU, 0};
    ew_run(b, &j, count);
}

static void op_act_mul(gb_backend *b, float *out, const float *gate, const float *up, size_t count,
                       gb_act_kind act) {
    ew_job j = {gb_cpu_opt_isa(), out, gate, up, act, 1};
    ew_run(b, &j, count);
}

static void op_act(gb_backend *b, float *y, const float *x, size_t count, gb_act_kind act) {
    ew_job j = {gb_cpu_opt_isa(), y, x, NULL, act, 2};
    ew_run(b, &j, count);
}

/* ---- fused projections ---- */

static void op_rmsnorm_matmul(gb_backend *b, float **ys, float *xnorm, const float *x,
                              const float *norm_w, float eps, const gb_weight *const *ws,
                              const float *const *biases, int count, int n) {
    int nth = threads_of(b);
    op_rmsnorm(b, xnorm, x, norm_w, n, (int)ws[0]->cols, eps);
    int same = count <= 4;
    for (int i = 1; i < count; i++)
        same = same && ws[i]->dtype == ws[0]->dtype && use_panel(ws[i]) == use_panel(ws[0]);
    if (!same || (ws[0]->packed && !use_panel(ws[0])) || !pack(nth, xnorm, ws[0], n)) {
        for (int i = 0; i < count; i++)
            op_matmul(b, ys[i], xnorm, ws[i], biases ? biases[i] : NULL, n);
        return;
    }
    mm_job j = {.isa = gb_cpu_opt_isa()};
    for (int i = 0; i < count; i++)
        mm_job_add(&j, ys[i], xnorm, ws[i], biases ? biases[i] : NULL, n, nth);
    mm_job_run(&j, nth);
}

typedef struct {
    const gb_opt_isa *isa;
    const gb_weight *wg, *wu;
    const float *x;
    float *out;
    int n;
    int64_t chunk;
    gb_act_kind act;
    int panel;                /* both in the panel layout, with ... */
    int64_t prows_g, prows_u; /* ... this many panel rows */
} gu_job;

static void gu_one(void *ctx, int64_t b, int tid);

static void gu_chunk(void *ctx, int64_t b, int64_t e, int tid) {
    for (int64_t c = b; c < e; c++)
        gu_one(ctx, c, tid);
}

static void gu_one(void *ctx, int64_t b, int tid) {
    gu_job *j = ctx;
    int64_t rows = j->wg->rows, K = j->wg->cols;
    int64_t r0 = b * j->chunk, r1 = r0 + j->chunk < rows ? r0 + j->chunk : rows, nr = r1 - r0;
    float *u = S.scratch + (size_t)tid * (size_t)j->n * (size_t)j->chunk;
    gb_mm_args g = {.wdtype = j->wg->dtype,
                    .w = j->wg->data,
                    .cols = K,
                    .xp = S.xpack,
                    .x = j->x,
                    .n = j->n,
                    .y = j->out,
                    .ldy = rows,
                    .bias = NULL,
                    .panel = j->panel,
                    .prows = j->prows_g};
    mm_rows(j->isa, &g, r0, r1);
    size_t es = gb_dtype_size(j->wu->dtype);
    gb_mm_args a = {.wdtype = j->wu->dtype,
                    .w = (const char *)j->wu->data + (size_t)(r0 * K) * es,
                    .cols = K,
                    .xp = S.xpack,
                    .x = j->x,
                    .n = j->n,
                    .y = u,
                    .ldy = nr,
                    .bias = NULL,
                    .panel = j->panel,
                    .prows = j->prows_u > r0 ? j->prows_u - r0 : 0};
    mm_rows(j->isa, &a, 0, nr);
    for (int t = 0; t < j->n; t++) {
        float *o = j->out + (int64_t)t * rows + r0;
        j->isa->act_mul(o, o, u + (int64_t)t * nr, (size_t)nr, j->act);
    }
}

static void op_gate_up_act(gb_backend *b, float *out, const float *x, const gb_weight *wg,
                           const gb_weight *wu, int n, gb_act_kind act) {
    int nth = threads_of(b);
    if (!ensure_pool(nth)) nth = 1;
    int64_t chunk = row_chunk(wg->rows, n, nth, use_panel(wg));
    size_t need = (size_t)nth * (size_t)n * (size_t)chunk * sizeof(float);
    if (wg->dtype != wu->dtype || wg->rows != wu->rows || wg->cols != wu->cols ||
        use_panel(wg) != use_panel(wu) || (wg->packed && !use_panel(wg)) ||
        !grow((void **)&S.scratch, &S.scratch_cap, need) || !pack(nth, x, wg, n)) {
        /* no scratch or mixed layouts: the reference kernel, which allocates nothing */
        gb_ref_gate_up_act(b, out, x, wg, wu, n, act);
        return;
    }
    gu_job j = {
        gb_cpu_opt_isa(),     wg, wu, x, out, n, chunk, act, use_panel(wg), gb_cpu_panel_rows(wg),
        gb_cpu_panel_rows(wu)};
    pfor(nth, (wg->rows + chunk - 1) / chunk, 1, gu_chunk, &j);
}

/* ---- rope ---- */

typedef struct {
    float *x;
    const gb_rope_args *r;
    const float *cs; /* per token: half cos values then half sin values */
} rope_job;

static void rope_rows(void *ctx, int64_t b, int64_t e, int tid) {
    (void)tid;
    rope_job *j = ctx;
    const gb_rope_args *r = j->r;
    int half = r->head_dim / 2;
    for (int64_t row = b; row < e; row++) {
        int t = (int)(row % r->n_tokens);
        const float *c = j->cs + (size_t)t * 2 * half, *s = c + half;
        float *xr = j->x + row * (int64_t)r->n_heads * r->head_dim;
        for (int h = 0; h < r->n_heads; h++) {
            float *x1 = xr + (int64_t)h * r->head_dim, *x2 = x1 + half;
            for (int i = 0; i < half; i++) {
                float a = x1[i], bb = x2[i];
                x1[i] = a * c[i] - bb * s[i];
                x2[i] = bb * c[i] + a * s[i];
            }
        }
    }
}

/* cos/sin tables for the call's positions into S.scratch (after `offset` floats). */
static float *rope_table(const gb_rope_args *r, size_t offset) {
    int half = r->head_dim / 2;
    size_t need = (offset + (size_t)r->n_tokens * 2 * (size_t)half) * sizeof(float);
    if (!grow((void **)&S.scratch, &S.scratch_cap, need)) return NULL;
    float *cs = S.scratch + offset;
    for (int t = 0; t < r->n_tokens; t++) {
        float pos = (float)(r->pos0 + t);
        for (int i = 0; i < half; i++) {
            float ang = pos * r->inv_freq[i];
            cs[(size_t)t * 2 * half + i] = (float)cos((double)ang) * r->attn_factor;
            cs[(size_t)t * 2 * half + half + i] = (float)sin((double)ang) * r->attn_factor;
        }
    }
    return cs;
}

static void rope_apply(gb_backend *b, float *x, const gb_rope_args *r, const float *cs) {
    rope_job j = {x, r, cs};
    int rows = r->batch * r->n_tokens;
    rows_run(threads_of(b), rows, r->n_heads * r->head_dim, rope_rows, &j);
}

static void op_rope(gb_backend *b, float *x, const gb_rope_args *r) {
    const float *cs = rope_table(r, 0);
    if (!cs) {
        S.ref->rope(b, x, r);
        return;
    }
    rope_apply(b, x, r, cs);
}

static void op_rope_kv_write(gb_backend *b, float *q, float *k, const float *v, float *kcache,
                             float *vcache, const gb_rope_args *r, const gb_attn_args *a) {
    const float *cs = rope_table(r, 0);
    if (!cs) {
        S.ref->rope(b, q, r);
        gb_rope_args rk = *r;
        rk.n_heads = a->n_kv_heads;
        S.ref->rope(b, k, &rk);
    } else {
        rope_apply(b, q, r, cs);
        gb_rope_args rk = *r;
        rk.n_heads = a->n_kv_heads;
        rope_apply(b, k, &rk, cs);
    }
    S.ref->kv_write(b, kcache, vcache, k, v, a);
}

/* ---- attention (sdpa / flash) ---- */

#define GB_ATT_BLOCK 64
#define GB_ATT_MAXD 512

typedef struct {
    const gb_opt_isa *isa;
    float *out;
    const float *q, *kc, *vc;
    const gb_attn_args *a;
    int splits;     /* KV segments per (sequence, head) row: > 1 only for split decode */
    float *partial; /* splits > 1: per item (m, l, acc[head_dim]) */
} att_job;

/* Online-softmax attention of one query row over keys [lo, hi): leaves the running max,
 * the sum of exponentials and the unnormalised output in *m, *l, acc. */
static void att_row(const att_job *j, const float *q, int bseq, int kvh, int lo, int hi,
                    float *m_out, float *l_out, float *acc) {
    const gb_attn_args *a = j->a;
    const int hd = a->head_dim;
    float s[GB_ATT_BLOCK], p[GB_ATT_BLOCK];
    float m = -INFINITY, l = 0.0f;
    memset(acc, 0, (size_t)hd * sizeof(float));
    for (int k0 = lo; k0 < hi; k0 += GB_ATT_BLOCK) {
        int nk = hi - k0 < GB_ATT_BLOCK ? hi - k0 : GB_ATT_BLOCK;
        float mb = -INFINITY;
        for (int i = 0; i < nk; i++) {
            const float *kr =
                j->kc + (((int64_t)bseq * a->cap + k0 + i) * a->n_kv_heads + kvh) * hd;
            s[i] = j->isa->dot(q, kr, hd) * a->scale;
            if (s[i] > mb) mb = s[i];
        }
        float mn = mb > m ? mb : m;
        if (mn == -INFINITY || mn != mn) mn = mb; /* all -inf or NaN scores: propagate */
        float corr = m == -INFINITY ? 0.0f : expf(m - mn);
        l = l * corr + j->isa->exp_sum(p, s, mn, nk);
        for (int i = 0; i < nk; i++) {
            const float *vr =
                j->vc + (((int64_t)bseq * a->cap + k0 + i) * a->n_kv_heads + kvh) * hd;
            j->isa->scale_axpy(acc, i == 0 ? corr : 1.0f, p[i], vr, hd);
        }
        m = mn;
    }
    *m_out = m;
    *l_out = l;
}

static void att_items(void *ctx, int64_t b, int64_t e, int tid) {
    (void)tid;
    att_job *j = ctx;
    const gb_attn_args *a = j->a;
    const int hd = a->head_dim, grp = a->n_heads / a->n_kv_heads;
    float acc[GB_ATT_MAXD];
    for (int64_t it = b; it < e; it++) {
        int64_t row = it / j->splits; /* (bseq, t, h) */
        int split = (int)(it % j->splits);
        int h = (int)(row % a->n_heads);
        int64_t qrow = row / a->n_heads; /* bseq * n_tokens + t */
        int bseq = (int)(qrow / a->n_tokens), t = (int)(qrow % a->n_tokens);
        int p = a->pos0 + t;
        int lo =
            a->sliding_window > 0 && p - a->sliding_window + 1 > 0 ? p - a->sliding_window + 1 : 0;
        int hi = p + 1;
        const float *q = j->q + qrow * (int64_t)a->n_heads * hd + (int64_t)h * hd;
        if (j->splits > 1) {
            int len = hi - lo, seg = (len + j->splits - 1) / j->splits;
            int s0 = lo + split * seg, s1 = s0 + seg < hi ? s0 + seg : hi;
            float *part = j->partial + it * (int64_t)(hd + 2);
            if (s0 >= s1) {
                part[0] = -INFINITY;
                part[1] = 0.0f;
                memset(part + 2, 0, (size_t)hd * sizeof(float));
                continue;
            }
            att_row(j, q, bseq, h / grp, s0, s1, &part[0], &part[1], part + 2);
            continue;
        }
        float m, l;
        att_row(j, q, bseq, h / grp, lo, hi, &m, &l, acc);
        float *o = j->out + qrow * (int64_t)a->n_heads * hd + (int64_t)h * hd;
        float inv = 1.0f / l;
        for (int d = 0; d < hd; d++)
            o[d] = acc[d] * inv;
    }
}

/* GQA groups up to this many heads take the grouped path (att_group) */
#define GB_ATT_GMAX 8

/* One (sequence, token, KV head): the grp query heads that share the KV head, scored and
 * accumulated together over 64-key blocks by the ISA's att_scores / att_accum, so each K and
 * V row is read once per group. Same online softmax as att_row, per head. */
static void att_group(const att_job *j, int64_t qrow, int kvh) {
    const gb_attn_args *a = j->a;
    const int hd = a->head_dim, grp = a->n_heads / a->n_kv_heads;
    float s[GB_ATT_GMAX * GB_ATT_BLOCK], p[GB_ATT_GMAX * GB_ATT_BLOCK];
    float m[GB_ATT_GMAX], l[GB_ATT_GMAX], corr[GB_ATT_GMAX];
    float acc[GB_ATT_GMAX * GB_ATT_MAXD];
    int bseq = (int)(qrow / a->n_tokens), t = (int)(qrow % a->n_tokens);
    int pos = a->pos0 + t;
    int lo =
        a->sliding_window > 0 && pos - a->sliding_window + 1 > 0 ? pos - a->sliding_window + 1 : 0;
    int hi = pos + 1;
    /* heads kvh * grp .. kvh * grp + grp - 1 are the group's, contiguous in q and out */
    const int64_t qoff = qrow * (int64_t)a->n_heads * hd + (int64_t)kvh * grp * hd;
    const int64_t stride = (int64_t)a->n_kv_heads * hd;
    for (int g = 0; g < grp; g++)
        m[g] = -INFINITY, l[g] = 0.0f;
    memset(acc, 0, (size_t)grp * (size_t)hd * sizeof(float));
    for (int k0 = lo; k0 < hi; k0 += GB_ATT_BLOCK) {
        int nk = hi - k0 < GB_ATT_BLOCK ? hi - k0 : GB_ATT_BLOCK;
        const int64_t row0 = (((int64_t)bseq * a->cap + k0) * a->n_kv_heads + kvh) * hd;
        j->isa->att_scores(s, GB_ATT_BLOCK, j->q + qoff, grp, j->kc + row0, stride, nk, hd,
                           a->scale);
        for (int g = 0; g < grp; g++) {
            const float *sg = s + g * GB_ATT_BLOCK;
            float mb = -INFINITY;
            for (int i = 0; i < nk; i++)
                if (sg[i] > mb) mb = sg[i];
            float mn = mb > m[g] ? mb : m[g];
            if (mn == -INFINITY || mn != mn) mn = mb; /* all -inf or NaN scores: propagate */
            corr[g] = m[g] == -INFINITY ? 0.0f : expf(m[g] - mn);
            l[g] = l[g] * corr[g] + j->isa->exp_sum(p + g * GB_ATT_BLOCK, sg, mn, nk);
            m[g] = mn;
        }
        j->isa->att_accum(acc, corr, p, GB_ATT_BLOCK, grp, j->vc + row0, stride, nk, hd);
    }
    float *o = j->out + qoff;
    for (int g = 0; g < grp; g++) {
        float inv = 1.0f / l[g];
        for (int d = 0; d < hd; d++)
            o[(int64_t)g * hd + d] = acc[(int64_t)g * hd + d] * inv;
    }
}

static void att_groups(void *ctx, int64_t b, int64_t e, int tid) {
    (void)tid;
    const att_job *j = ctx;
    for (int64_t it = b; it < e; it++)
        att_group(j, it / j->a->n_kv_heads, (int)(it % j->a->n_kv_heads));
}

/* Whether att_group serves a (non-split) call: the ISA has the block kernels, the group is
 * at most GB_ATT_GMAX heads, and GB_CPU_ATT_GROUP=0 (A/B measurements) is not set. Prefill:
 * measured 28% faster than one head at a time. One-token decode too since session 4, once
 * the AVX2 tiles kept their accumulators in registers: 16 layers of the 1B shape at position
 * 150, 1 thread, medians 2.18 -> 1.83 ms with the KV cache cold, 1.4-1.5 -> 0.6-0.9 ms warm
 * (docs/performance.md, "Session 4"). */
static int att_grouped(const gb_opt_isa *isa, const gb_attn_args *a) {
    static int off = -1;
    if (off < 0) {
        const char *env = getenv("GB_CPU_ATT_GROUP");
        off = env && !strcmp(env, "0");
    }
    return !off && isa->att_scores && isa->att_accum && a->n_kv_heads > 0 &&
           a->n_heads % a->n_kv_heads == 0 && a->n_heads / a->n_kv_heads <= GB_ATT_GMAX;
}

/* KV segments per row for single-token flash decode: enough items for every thread, each
 * segment at least 128 keys. */
static int att_splits(gb_attn_impl impl, const gb_attn_args *a, int nth) {
    if (impl != GB_ATTN_FLASH || a->n_tokens != 1) return 1;
    int rows = a->batch * a->n_heads;
    int kv = a->pos0 + 1;
    if (a->sliding_window > 0 && kv > a->sliding_window) kv = a->sliding_window;
    int s = (4 * nth + rows - 1) / rows;
    if (s > kv / 128) s = kv / 128;
    return s < 1 ? 1 : s;
}

static size_t op_attn_scratch_bytes(gb_backend *b, gb_attn_impl impl, const gb_attn_args *a) {
    /* eager and head_dim > GB_ATT_MAXD run the reference kernel: give it what it needs */
    size_t ref = S.ref->attn_scratch_bytes(b, impl, a);
    if (impl != GB_ATTN_FLASH || a->n_tokens != 1) return ref;
    /* the largest split count any decode position up to cap can use */
    gb_attn_args big = *a;
    big.pos0 = a->cap - 1;
    int s = att_splits(impl, &big, threads_of(b));
    size_t mine = s <= 1 ? 0
                         : (size_t)a->batch * (size_t)a->n_heads * (size_t)s *
                               (size_t)(a->head_dim + 2) * sizeof(float);
    return mine > ref ? mine : ref;
}

static void op_attention(gb_backend *b, gb_attn_impl impl, float *out, const float *q,
                         const float *kcache, const float *vcache, const gb_attn_args *a,
                         void *scratch) {
    if (impl == GB_ATTN_EAGER || a->head_dim > GB_ATT_MAXD) {
        S.ref->attention(b, impl, out, q, kcache, vcache, a, scratch);
        return;
    }
    int nth = threads_of(b);
    att_job j = {gb_cpu_opt_isa(), out, q, kcache, vcache, a, 1, NULL};
    int64_t rows = (int64_t)a->batch * a->n_tokens * a->n_heads;
    int splits = att_splits(impl, a, nth);
    if (splits > 1 && scratch) {
        j.splits = splits;
        j.partial = scratch;
        pfor(nth, rows * splits, 1, att_items, &j);
        /* merge the segments of each row */
        const int hd = a->head_dim;
        for (int64_t row = 0; row < rows; row++) {
            const float *pt = j.partial + row * splits * (int64_t)(hd + 2);
            float m = -INFINITY;
            for (int s = 0; s < splits; s++)
                if (pt[s * (hd + 2)] > m) m = pt[s * (hd + 2)];
            float l = 0.0f;
            float *o = out + row * hd; /* row = (bseq * 1 + 0) * n_heads + h */
            memset(o, 0, (size_t)hd * sizeof(float));
            for (int s = 0; s < splits; s++) {
                const float *ps = pt + s * (hd + 2);
                if (ps[0] == -INFINITY) continue;
                float c = expf(ps[0] - m);
                l += ps[1] * c;
                for (int d = 0; d < hd; d++)
                    o[d] += ps[2 + d] * c;
            }
            float inv = 1.0f / l;
            for (int d = 0; d < hd; d++)
                o[d] *= inv;
        }
        return;
    }
    if (att_grouped(j.isa, a)) {
        int64_t groups = (int64_t)a->batch * a->n_tokens * a->n_kv_heads;
        int64_t chunk = 1 + groups / (8 * (int64_t)nth);
        if (chunk > 4) chunk = 4;
        pfor(nth, groups, chunk, att_groups, &j);
        return;
    }
    int64_t chunk = 1 + rows / (8 * (int64_t)nth);
    if (chunk > 16) chunk = 16;
    pfor(nth, rows, chunk, att_items, &j);
}

/* ---- paged attention (continuous batching) ---- */

/* Rows (sequence, token, head) over the thread pool; each row an online softmax over its
 * keys in runs that stay inside one cache block (contiguous rows of the pool). */
typedef struct {
    const gb_opt_isa *isa;
    float *out;
    const float *q, *kp, *vp;
    const gb_paged_args *a;
} patt_job;

static void patt_items(void *ctx, int64_t b, int64_t e, int tid) {
    (void)tid;
    const patt_job *j = ctx;
    const gb_paged_args *a = j->a;
    const int hd = a->head_dim, nh = a->n_heads, grp = a->n_heads / a->n_kv_heads;
    const int64_t kvw = (int64_t)a->n_kv_heads * hd;
    float acc[GB_ATT_MAXD], s[GB_ATT_BLOCK], p[GB_ATT_BLOCK];
    for (int64_t row = b; row < e; row++) {
        int h = (int)(row % nh);
        int64_t qrow = row / nh; /* seq * n_tokens + t */
        int seq = (int)(qrow / a->n_tokens), t = (int)(qrow % a->n_tokens);
        int pos = a->pos[seq] + t;
        int lo = a->sliding_window > 0 && pos - a->sliding_window + 1 > 0
                     ? pos - a->sliding_window + 1
                     : 0;
        const float *q = j->q + qrow * nh * hd + (int64_t)h * hd;
        const int32_t *table = a->block_tables + (int64_t)seq * a->max_blocks;
        const int64_t kvoff = (int64_t)(h / grp) * hd;
        float m = -INFINITY, l = 0.0f;
        memset(acc, 0, (size_t)hd * sizeof(float));
        for (int k0 = lo; k0 <= pos;) {
            int in_block = a->block_size - k0 % a->block_size;
            int nk = pos + 1 - k0;
            if (nk > in_block) nk = in_block;
            if (nk > GB_ATT_BLOCK) nk = GB_ATT_BLOCK;
            int64_t base =
                ((int64_t)table[k0 / a->block_size] * a->block_size + k0 % a->block_size) * kvw +
                kvoff;
            float mb = -INFINITY;
            for (int i = 0; i < nk; i++) {
                s[i] = j->isa->dot(q, j->kp + base + i * kvw, hd) * a->scale;
                if (s[i] > mb) mb = s[i];
            }
            float mn = mb > m ? mb : m;
            if (mn == -INFINITY || mn != mn) mn = mb;
            float corr = m == -INFINITY ? 0.0f : expf(m - mn);
            l = l * corr + j->isa->exp_sum(p, s, mn, nk);
            for (int i = 0; i < nk; i++)
                j->isa->scale_axpy(acc, i == 0 ? corr : 1.0f, p[i], j->vp + base + i * kvw, hd);
            m = mn;
            k0 += nk;
        }
        float *o = j->out + qrow * nh * hd + (int64_t)h * hd;
        float inv = 1.0f / l;
        for (int d = 0; d < hd; d++)
            o[d] = acc[d] * inv;
    }
}

static void op_attention_paged(gb_backend *b, float *out, const float *q, const float *kpool,
                               const float *vpool, const gb_paged_args *a) {
    if (a->head_dim > GB_ATT_MAXD) {
        S.ref->attention_paged(b, out, q, kpool, vpool, a);
        return;
    }
    int nth = threads_of(b);
    patt_job j = {gb_cpu_opt_isa(), out, q, kpool, vpool, a};
    int64_t rows = (int64_t)a->batch * a->n_tokens * a->n_heads;
    int64_t chunk = 1 + rows / (8 * (int64_t)nth);
    if (chunk > 16) chunk = 16;
    pfor(nth, rows, chunk, patt_items, &j);
}

/* ---- weights ---- */

/* Whether weights are repacked at load: the active ISA has panel kernels (avx2: the AVX2
 * tiles, avx512: the vdpbf16ps ones; scalar has none) and packs by default (panels_default),
 * or GB_CPU_PANELS says (1: pack, 0: the row-major kernels of the same ISA; A/B timings). */
static int panels_at_load(void) {
    const gb_opt_isa *isa = gb_cpu_opt_isa();
    const char *env = getenv("GB_CPU_PANELS");
    if (!isa->panel_mm_rows) return 0;
    if (env && *env) return strcmp(env, "0") != 0;
    return isa->panels_default;
}

/* The reference load, then bf16 matrices the backend owns are repacked in place into the
 * panel layout. If the panel-sized temporary cannot be allocated the weight stays row-major,
 * which every op still reads. */
static int op_weight_load(gb_backend *b, gb_weight *w, const void *src, gb_dtype src_dtype,
                          int64_t rows, int64_t cols, gb_dtype dtype, int transpose,
                          gb_error *err) {
    int rc = S.ref->weight_load(b, w, src, src_dtype, rows, cols, dtype, transpose, err);
    if (rc || !panels_at_load() || !gb_cpu_panel_eligible(w)) return rc;
    gb_error ignored = {0};
    int nth = threads_of(b);
    if (!ensure_pool(nth)) nth = 1;
    (void)gb_cpu_panel_pack_pool(w, nth > 1 ? S.pool : NULL, nth, &ignored);
    return 0;
}

/* ---- argmax ---- */

static void op_argmax(gb_backend *b, int32_t *ids, const float *logits, int n, int vocab) {
    (void)b;
    for (int r = 0; r < n; r++) {
        const float *x = logits + (int64_t)r * vocab;
        int best = 0;
        float bv = x[0];
        for (int i = 1; i < vocab; i++)
            if (x[i] > bv) {
                bv = x[i];
                best = i;
            }
        ids[r] = best;
    }
}

/* ---- the table ---- */

const gb_backend_ops *gb_cpu_kernelized_ops(const gb_backend_ops *ref) {
    if (!S.isa) S.isa = gb_opt_isa_best();
    S.ref = ref;
    S.table = *ref;
    S.table.name = "cpu-kernelized";
    S.table.weight_load = op_weight_load;
    S.table.matmul = op_matmul;
    S.table.rmsnorm = op_rmsnorm;
    S.table.rope = op_rope;
    S.table.add = op_add;
    S.table.act_mul = op_act_mul;
    S.table.act = op_act;
    S.table.attention = op_attention;
    S.table.attn_scratch_bytes = op_attn_scratch_bytes;
    S.table.argmax = op_argmax;
    S.table.rmsnorm_matmul = op_rmsnorm_matmul;
    S.table.gate_up_act = op_gate_up_act;
    S.table.rope_kv_write = op_rope_kv_write;
    S.table.add_rmsnorm = op_add_rmsnorm;
    if (ref->attention_paged) S.table.attention_paged = op_attention_paged;
    return &S.table;
}
