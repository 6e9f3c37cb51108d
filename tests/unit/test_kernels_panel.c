/* bf16 weights repacked into the panel layout (backend/cpu/panel.h) against the same weights
 * row-major:
 * - the layout: every element reads back through gb_weight_at, and the reference matmul
 *   gives bit-identical results on both layouts (the reference path reads packed weights);
 * - the kernelized matmul, rmsnorm_matmul and gate_up_act on packed weights (the ISA's panel
 *   kernels, AVX2 or AVX-512 BF16, else the reference fallback) against a double-precision
 *   reference on the row-major copy: |y - ref| <= 2e-6 * sum_k |w_k x_k|, as for the
 *   row-major kernels (float32 accumulation of exact bf16 x float32 products). The AVX-512
 *   panel kernels round x to bf16 (round-to-nearest-even) first, so for them the reference
 *   takes the same rounded x and the bound states their float32 accumulation alone;
 * for n = 1..8, 11, 12, 13, 17, 40, 128 and 200 token rows (GEMV, decode tiles, both loop orders),
 * rows with and without a row-major tail (rows % 16), K below, at and above the 256-k block,
 * 1 and 3 threads;
 * - the load path: which ISAs repack at load (those with panel kernels, by default avx2 only),
 *   GB_CPU_PANELS=0 / 1;
 * - the AVX-512 BF16 panel kernels called directly (skipped, counted as passed, where the CPU
 *   lacks avx512_bf16): n = 1..20 and 200, K from 16 to 8192, rows with tails, y preset to a
 *   residual that they must accumulate into, row ranges as opt.c's chunks and as its gate/up
 *   split (a weight pointer advanced to a chunk's first row), x packed in two token ranges. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_ref.h"
#include "backend/cpu/opt.h"
#include "backend/cpu/panel.h"
#include "backend/cpu/threadpool.h"
#include "test.h"

static uint64_t rs = 0x2545f4914f6cdd1dull;
static float frand(void) { /* uniform in [-1, 1) */
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (float)((rs >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}
static void fill(float *v, size_t n, float scale) {
    for (size_t i = 0; i < n; i++)
        v[i] = frand() * scale;
}

/* A bf16 weight and its packed twin (separate buffers: the test's own second copy). */
static void make_pair(gb_weight *w, gb_weight *p, int64_t rows, int64_t cols) {
    size_t n = (size_t)(rows * cols);
    float *f = malloc(n * sizeof(float));
    fill(f, n, 1.0f);
    uint16_t *d = malloc(n * 2), *e = malloc(n * 2);
    gb_convert_from_f32(d, GB_BF16, f, n);
    memcpy(e, d, n * 2);
    free(f);
    *w = (gb_weight){.dtype = GB_BF16, .rows = rows, .cols = cols, .data = d, .owned = d};
    *p = (gb_weight){.dtype = GB_BF16, .rows = rows, .cols = cols, .data = e, .owned = e};
    CHECK(gb_cpu_panel_eligible(p));
    gb_error err = {0};
    CHECK_OK(gb_cpu_panel_pack(p, &err), &err);
    CHECK(p->packed == p->data && gb_cpu_panel_rows(p) == (rows & ~(int64_t)15));
}

/* Whether the active ISA's panel kernels round x to bf16 (the AVX-512 BF16 ones). */
static int x_rounded;

/* x as the panel kernels see it: a copy, rounded to bf16 where they round it. */
static float *x_seen(const float *x, size_t n, int round) {
    float *r = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        r[i] = round ? gb_bf16_to_f32(gb_f32_to_bf16(x[i])) : x[i];
    return r;
}

/* y = x W^T (+ bias) in double from the row-major weight; scale = sum |w x| (+ |bias|). */
static void ref_mm(const gb_weight *w, const float *x, const float *bias, int n, float *y,
                   double *scale) {
    for (int t = 0; t < n; t++)
        for (int64_t r = 0; r < w->rows; r++) {
            double s = bias ? bias[r] : 0.0, a = bias ? fabs(bias[r]) : 0.0;
            for (int64_t k = 0; k < w->cols; k++) {
                double p = (double)gb_weight_at(w, r, k) * x[t * w->cols + k];
                s += p, a += fabs(p);
            }
            y[t * w->rows + r] = (float)s;
            if (scale) scale[t * w->rows + r] = a;
        }
}

static void check_close(const char *what, const float *got, const float *want, const double *scale,
                        size_t n, double tol) {
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= tol * (scale ? scale[i] : fabs(want[i])) + 1e-30) && bad++ == 0) first = i;
    }
    CHECK_MSG(bad == 0, "%s: %zu of %zu differ; first at %zu: expected %.9g, got %.9g", what, bad,
              n, first, (double)want[first], (double)got[first]);
}

static void test_layout(void) {
    static const int64_t shapes[][2] = {{16, 16}, {37, 48}, {64, 272}};
    for (size_t si = 0; si < 3; si++) {
        gb_weight w, p;
        make_pair(&w, &p, shapes[si][0], shapes[si][1]);
        int bad = 0;
        for (int64_t r = 0; r < w.rows; r++)
            for (int64_t k = 0; k < w.cols; k++)
                bad += gb_weight_at(&w, r, k) != gb_weight_at(&p, r, k);
        CHECK_MSG(bad == 0, "layout %ldx%ld: %d elements read back differently", (long)w.rows,
                  (long)w.cols, bad);
        /* the reference matmul and embed read packed weights exactly as row-major ones */
        int n = 5;
        float *x = malloc(sizeof(float) * n * w.cols), *y1 = malloc(sizeof(float) * n * w.rows),
              *y2 = malloc(sizeof(float) * n * w.rows);
        fill(x, (size_t)n * w.cols, 2.0f);
        gb_ref_matmul(NULL, y1, x, &w, NULL, n);
        gb_ref_matmul(NULL, y2, x, &p, NULL, n);
        CHECK_MSG(!memcmp(y1, y2, sizeof(float) * n * w.rows), "gb_ref_matmul %ldx%ld differs",
                  (long)w.rows, (long)w.cols);
        int32_t ids[3] = {0, (int32_t)w.rows - 1, (int32_t)w.rows / 2};
        float *e1 = malloc(sizeof(float) * 3 * w.cols), *e2 = malloc(sizeof(float) * 3 * w.cols);
        gb_ref_embed(NULL, e1, &w, ids, 3, NULL, 3, 0);
        gb_ref_embed(NULL, e2, &p, ids, 3, NULL, 3, 0);
        CHECK_MSG(!memcmp(e1, e2, sizeof(float) * 3 * w.cols), "gb_ref_embed %ldx%ld differs",
                  (long)w.rows, (long)w.cols);
        free(x), free(y1), free(y2), free(e1), free(e2), free(w.owned), free(p.owned);
    }
}

static void test_matmul(const gb_backend_ops *ops, gb_backend *b) {
    /* rows: one panel; panels + 5 tail rows; 80 = 5 panels; 300 = 18 panels (several
     * 128-row chunks) + 12 tail rows. cols: < 256, = 256 + 16 (a short k-block), 1040
     * (several). n = 200: two token blocks of the GEMM (128 rows each at most). 1040 rows:
     * GEMV chunks of 9 panels on 1 thread, so a 4-panel group is followed by another in its
     * chunk (the prefetch into the next group) and by a lone panel; cols 16 and 48: the whole
     * panel, and its last 512 bytes, within the prefetch distance. */
    static const int64_t shapes[][2] = {{16, 32},  {37, 272},  {80, 1040}, {21, 640},
                                        {300, 48}, {1040, 48}, {1040, 16}};
    static const int ns[] = {1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 17, 40, 128, 200};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) {
            int64_t rows = shapes[si][0], cols = shapes[si][1];
            int n = ns[ni];
            if (n == 200 && cols > 272) continue;
            gb_weight w, p;
            make_pair(&w, &p, rows, cols);
            float *x = malloc(sizeof(float) * n * cols), *bias = malloc(sizeof(float) * rows);
            float *y = malloc(sizeof(float) * n * rows), *yr = malloc(sizeof(float) * n * rows);
            double *sc = malloc(sizeof(double) * n * rows);
            fill(x, (size_t)n * cols, 2.0f);
            fill(bias, (size_t)rows, 0.5f);
            const float *bs = (si + ni) % 2 ? bias : NULL;
            ops->matmul(b, y, x, &p, bs, n);
            float *xs = x_seen(x, (size_t)n * cols, x_rounded);
            ref_mm(&w, xs, bs, n, yr, sc);
            free(xs);
            char what[96];
            snprintf(what, sizeof what, "[%s, %d threads] panel matmul %ldx%ld n=%d%s",
                     gb_cpu_opt_isa()->name, b->threads, (long)rows, (long)cols, n,
                     bs ? " +bias" : "");
            check_close(what, y, yr, sc, (size_t)n * rows, 2e-6);
            free(x), free(bias), free(y), free(yr), free(sc), free(w.owned), free(p.owned);
        }
}

static void test_fused(const gb_backend_ops *ops, gb_backend *b) {
    static const int ns[] = {1, 8, 17};
    for (int ni = 0; ni < 3; ni++) {
        int n = ns[ni], dim = 272;
        gb_weight wq, pq, wk, pk, wg, pg, wu, pu;
        make_pair(&wq, &pq, 48, dim), make_pair(&wk, &pk, 21, dim);
        make_pair(&wg, &pg, 69, dim), make_pair(&wu, &pu, 69, dim);
        float *x = malloc(sizeof(float) * n * dim), *nw = malloc(sizeof(float) * dim);
        float *xn = malloc(sizeof(float) * n * dim);
        fill(x, (size_t)n * dim, 2.0f), fill(nw, dim, 1.0f);
        float *yq = malloc(sizeof(float) * n * 48), *yk = malloc(sizeof(float) * n * 21);
        float *rq = malloc(sizeof(float) * n * 48), *rk = malloc(sizeof(float) * n * 21);
        double *sq = malloc(sizeof(double) * n * 48), *sk = malloc(sizeof(double) * n * 21);
        float *ys[2] = {yq, yk};
        const gb_weight *ws[2] = {&pq, &pk};
        ops->rmsnorm_matmul(b, ys, xn, x, nw, 1e-5f, ws, NULL, 2, n);
        float *xs = x_seen(xn, (size_t)n * dim, x_rounded);
        ref_mm(&wq, xs, NULL, n, rq, sq);
        ref_mm(&wk, xs, NULL, n, rk, sk);
        free(xs);
        check_close("panel rmsnorm_matmul q", yq, rq, sq, (size_t)n * 48, 2e-6);
        check_close("panel rmsnorm_matmul k", yk, rk, sk, (size_t)n * 21, 2e-6);

        float *o = malloc(sizeof(float) * n * 69), *g = malloc(sizeof(float) * n * 69),
              *u = malloc(sizeof(float) * n * 69);
        double *sg = malloc(sizeof(double) * n * 69), *su = malloc(sizeof(double) * n * 69);
        ops->gate_up_act(b, o, x, &pg, &pu, n, GB_BACT_SILU);
        xs = x_seen(x, (size_t)n * dim, x_rounded);
        ref_mm(&wg, xs, NULL, n, g, sg);
        ref_mm(&wu, xs, NULL, n, u, su);
        free(xs);
        for (int i = 0; i < n * 69; i++) {
            double gv = g[i], sil = gv / (1.0 + exp(-gv));
            /* errors of g and u through silu(g) * u (|silu'| <= 1.1), plus the activation's */
            sg[i] = 1.1 * sg[i] * fabs(u[i]) + su[i] * fabs(sil) + fabs(sil * u[i]);
            g[i] = (float)(sil * u[i]);
        }
        check_close("panel gate_up_act", o, g, sg, (size_t)n * 69, 4e-6);
        free(x), free(nw), free(xn), free(yq), free(yk), free(rq), free(rk), free(sq), free(sk);
        free(o), free(g), free(u), free(sg), free(su);
        free(wq.owned), free(pq.owned), free(wk.owned), free(pk.owned);
        free(wg.owned), free(pg.owned), free(wu.owned), free(pu.owned);
    }
}

/* The repack on a pool of 3 threads (chunks of 16 panels, a partial last chunk and tail rows)
 * writes the same bytes as the one-thread repack. */
static void test_pool_pack(void) {
    gb_threadpool *pool = NULL;
    gb_error err = {0};
    CHECK_OK(gb_threadpool_create(3, &pool, &err), &err);
    gb_weight w, p;
    make_pair(&w, &p, 16 * 37 + 5, 96); /* p: packed on one thread */
    gb_weight q = w;
    q.owned = malloc((size_t)w.rows * w.cols * 2);
    q.data = q.owned;
    memcpy(q.owned, w.owned, (size_t)w.rows * w.cols * 2);
    CHECK_OK(gb_cpu_panel_pack_pool(&q, pool, 3, &err), &err);
    CHECK(q.packed == q.data);
    CHECK_MSG(!memcmp(q.owned, p.owned, (size_t)w.rows * w.cols * 2),
              "the 3-thread repack differs from the 1-thread one");
    free(w.owned);
    free(p.owned);
    free(q.owned);
    gb_threadpool_free(pool);
}

/* The kernelized backend's weight_load repacks bf16 weights where the active ISA has panel
 * kernels (avx2, avx512; not scalar): by default on avx2 only, always with GB_CPU_PANELS=1,
 * never with GB_CPU_PANELS=0; the matmul then agrees with the reference on the row-major
 * weight. */
static void test_load(const gb_opt_isa *isa) {
    const int64_t rows = 53, cols = 96;
    const int n = 3;
    float *wf = malloc(sizeof(float) * rows * cols), *x = malloc(sizeof(float) * n * cols);
    float *y = malloc(sizeof(float) * n * rows), *yr = malloc(sizeof(float) * n * rows);
    double *sc = malloc(sizeof(double) * n * rows);
    fill(wf, (size_t)(rows * cols), 1.0f);
    fill(x, (size_t)n * cols, 2.0f);
    static const char *modes[] = {NULL, "0", "1"}; /* the default, off, on */
    for (int mode = 0; mode < 3; mode++) {
        if (modes[mode]) setenv("GB_CPU_PANELS", modes[mode], 1);
        gb_backend_options o = {.kernelize = 1, .threads = 2};
        gb_backend *b = NULL;
        gb_error err = {0};
        CHECK_OK(gb_backend_cpu_create(&o, &b, &err), &err);
        gb_weight w = {0};
        CHECK_OK(b->ops->weight_load(b, &w, wf, GB_F32, rows, cols, GB_BF16, 0, &err), &err);
        const int can = isa->panel_mm_rows != NULL;
        const int want = mode == 0 ? can && !strcmp(isa->name, "avx2") : mode == 2 && can;
        CHECK_MSG((w.packed != NULL) == want,
                  "[%s] weight_load, GB_CPU_PANELS=%s: packed %d, "
                  "expected %d",
                  isa->name, modes[mode] ? modes[mode] : "(unset)", w.packed != NULL, want);
        b->ops->matmul(b, y, x, &w, NULL, n);
        /* x as the kernels see it: avx512 rounds it to bf16 on both layouts (panel kernels:
         * every n; the row-major GEMM: n > 1) */
        float *xs = x_seen(x, (size_t)n * cols, !strcmp(isa->name, "avx512"));
        ref_mm(&w, xs, NULL, n, yr, sc); /* gb_weight_at reads either layout */
        char what[96];
        snprintf(what, sizeof what, "[%s] matmul after weight_load, GB_CPU_PANELS=%s", isa->name,
                 modes[mode] ? modes[mode] : "(unset)");
        check_close(what, y, yr, sc, (size_t)n * rows, 2e-6);
        free(xs);
        b->ops->weight_free(b, &w);
        b->ops->destroy(b);
        unsetenv("GB_CPU_PANELS");
    }
    free(wf), free(x), free(y), free(yr), free(sc);
}

/* ---- the AVX-512 BF16 panel kernels, called directly ---- */

/* y[t, r] = resid[t, r] + sum_k w[r, k] * xb[t, k] over the kernel's row range [r0, r1) of
 * a packed weight p (its row-major twin w), as gb_panel_avx512_mm_rows leaves it; the
 * kernel's y rows are ldy apart, row r at y + r - yoff (opt.c's gate/up split passes a
 * weight pointer advanced to its first row, prows reduced and y a scratch of the chunk's
 * rows). */
static void avx512_call(const gb_weight *p, const void *xp, const float *x, int n, float *y,
                        int64_t ldy, int64_t r0, int64_t r1, int64_t woff) {
    gb_mm_args a = {.wdtype = GB_BF16,
                    .w = (const uint16_t *)p->data + woff * p->cols,
                    .cols = p->cols,
                    .xp = xp,
                    .x = x,
                    .n = n,
                    .y = y,
                    .ldy = ldy,
                    .bias = NULL,
                    .panel = 1,
                    .prows = gb_cpu_panel_rows(p) > woff ? gb_cpu_panel_rows(p) - woff : 0};
    gb_panel_avx512_mm_rows(&a, r0, r1);
}

static void test_avx512_kernels(void) {
    if (!gb_opt_isa_find("avx512")) {
        fprintf(stderr, "avx512 panel kernels: this CPU lacks avx512f/bw/vl/dq/bf16, skipped\n");
        return;
    }
    /* rows: one panel; 2 panels + 5 tail rows (one 2-panel group); 3 panels (a group and a
     * lone panel); 100 = 6 panels + 4 tail rows (n = 1: a 4-panel pass and 2 lone panels);
     * 144 = 9 panels. cols: one or a few k-pairs, 256 + 16 (a short k-block), model widths. */
    static const int64_t shapes[][2] = {{16, 16},  {37, 32},   {48, 48},    {100, 272},
                                        {144, 96}, {21, 2048}, {100, 2048}, {40, 8192}};
    int checked = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (int n = 1; n <= 21; n++) {
            const int64_t rows = shapes[si][0], cols = shapes[si][1];
            const int nn = n == 21 ? 200 : n; /* 200: two token blocks (GB_PTB = 128) */
            if (nn == 200 && cols > 272) continue;
            gb_weight w, p;
            make_pair(&w, &p, rows, cols);
            const size_t ny = (size_t)nn * rows;
            float *x = malloc(sizeof(float) * nn * cols), *resid = malloc(sizeof(float) * ny);
            float *y = malloc(sizeof(float) * ny), *yr = malloc(sizeof(float) * ny);
            double *sc = malloc(sizeof(double) * ny);
            void *xp = aligned_alloc(64, (gb_panel_avx512_pack_bytes(nn, cols) + 63) & ~(size_t)63);
            fill(x, (size_t)nn * cols, 2.0f);
            fill(resid, ny, 3.0f);
            /* packed in two token ranges, as opt.c's threads do */
            gb_panel_avx512_pack_x(xp, x, nn, cols, nn / 2, nn);
            gb_panel_avx512_pack_x(xp, x, nn, cols, 0, nn / 2);
            float *xs = x_seen(x, (size_t)nn * cols, 1);
            ref_mm(&w, xs, NULL, nn, yr, sc);
            for (size_t i = 0; i < ny; i++) {
                yr[i] = (float)((double)yr[i] + resid[i]);
                sc[i] += fabs(resid[i]);
            }
            /* row ranges: the whole matrix; opt.c's 16-row and 64-row chunks; the gate/up
             * split's 32-row chunks (weight pointer at the chunk, y a per-chunk scratch) */
            static const int64_t chunks[] = {0, 16, 64, -32};
            for (int ci = 0; ci < 4; ci++) {
                int64_t c = chunks[ci];
                char what[112];
                snprintf(what, sizeof what, "avx512 panel mm_rows %ldx%ld n=%d, %s %ld", (long)rows,
                         (long)cols, nn, c < 0 ? "gate/up chunks of" : "row chunks of",
                         (long)(c ? (c < 0 ? -c : c) : rows));
                memcpy(y, resid, ny * sizeof(float));
                if (c >= 0) {
                    if (!c) c = rows;
                    for (int64_t r0 = 0; r0 < rows; r0 += c)
                        avx512_call(&p, xp, x, nn, y, rows, r0, r0 + c < rows ? r0 + c : rows, 0);
                } else {
                    c = -c;
                    float *u = malloc(sizeof(float) * nn * c);
                    for (int64_t r0 = 0; r0 < rows; r0 += c) {
                        int64_t nr = r0 + c < rows ? c : rows - r0;
                        for (int t = 0; t < nn; t++)
                            memcpy(u + t * nr, y + t * rows + r0, sizeof(float) * nr);
                        avx512_call(&p, xp, x, nn, u, nr, 0, nr, r0);
                        for (int t = 0; t < nn; t++)
                            memcpy(y + t * rows + r0, u + t * nr, sizeof(float) * nr);
                    }
                    free(u);
                }
                check_close(what, y, yr, sc, ny, 2e-6);
                checked++;
            }
            free(x), free(resid), free(y), free(yr), free(sc), free(xp), free(xs);
            free(w.owned), free(p.owned);
        }
    fprintf(stderr, "avx512 panel kernels: %d direct comparisons\n", checked);
}

int main(void) {
    test_layout();
    test_pool_pack();
    test_avx512_kernels();
    static const char *isas[] = {"scalar", "avx2", "avx512"};
    for (int i = 0; i < 3; i++) {
        const gb_opt_isa *isa = gb_opt_isa_find(isas[i]);
        if (!isa) {
            fprintf(stderr, "isa %s: not supported by this CPU, skipped\n", isas[i]);
            continue;
        }
        gb_cpu_opt_set_isa(isa);
        x_rounded = isa->panel_mm_rows == gb_panel_avx512_mm_rows;
        test_load(isa);
        const gb_backend_ops *ops = gb_cpu_kernelized_ops(&gb_cpu_ref_ops);
        for (int threads = 1; threads <= 3; threads += 2) {
            gb_backend b = {.ops = ops, .threads = threads, .impl = NULL};
            test_matmul(ops, &b);
            test_fused(ops, &b);
        }
        fprintf(stderr, "isa %s (%s): tested\n", isas[i],
                isa->panel_mm_rows ? "panel kernels" : "reference fallback");
    }
    gb_cpu_opt_release();
    TEST_MAIN_END();
}
