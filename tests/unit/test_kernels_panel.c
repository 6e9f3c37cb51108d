/* bf16 weights repacked into the panel layout (backend/cpu/panel.h) against the same weights
 * row-major:
 * - the layout: every element reads back through gb_weight_at, and the reference matmul
 *   gives bit-identical results on both layouts (the reference path reads packed weights);
 * - the kernelized matmul, rmsnorm_matmul and gate_up_act on packed weights (the AVX2 panel
 *   tiles where the CPU has AVX2, else the reference fallback) against a double-precision
 *   reference on the row-major copy: |y - ref| <= 2e-6 * sum_k |w_k x_k|, as for the
 *   row-major kernels (float32 accumulation of exact bf16 x float32 products);
 * for n = 1..8, 11, 12, 13, 17, 40, 128 and 200 token rows (GEMV, decode tiles, both loop orders),
 * rows with and without a row-major tail (rows % 16), K below, at and above the 256-k block,
 * 1 and 3 threads. */
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
     * (several). n = 200: two token blocks of the GEMM (128 rows each at most). */
    static const int64_t shapes[][2] = {{16, 32}, {37, 272}, {80, 1040}, {21, 640}, {300, 48}};
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
            ref_mm(&w, x, bs, n, yr, sc);
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
        ref_mm(&wq, xn, NULL, n, rq, sq);
        ref_mm(&wk, xn, NULL, n, rk, sk);
        check_close("panel rmsnorm_matmul q", yq, rq, sq, (size_t)n * 48, 2e-6);
        check_close("panel rmsnorm_matmul k", yk, rk, sk, (size_t)n * 21, 2e-6);

        float *o = malloc(sizeof(float) * n * 69), *g = malloc(sizeof(float) * n * 69),
              *u = malloc(sizeof(float) * n * 69);
        double *sg = malloc(sizeof(double) * n * 69), *su = malloc(sizeof(double) * n * 69);
        ops->gate_up_act(b, o, x, &pg, &pu, n, GB_BACT_SILU);
        ref_mm(&wg, x, NULL, n, g, sg);
        ref_mm(&wu, x, NULL, n, u, su);
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

int main(void) {
    test_layout();
    test_pool_pack();
    static const char *isas[] = {"scalar", "avx2", "avx512"};
    for (int i = 0; i < 3; i++) {
        const gb_opt_isa *isa = gb_opt_isa_find(isas[i]);
        if (!isa) {
            fprintf(stderr, "isa %s: not supported by this CPU, skipped\n", isas[i]);
            continue;
        }
        gb_cpu_opt_set_isa(isa);
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
