/* Reference versions of the fused entries: each is the plain composition of reference
 * kernels, so the engine's kernelized code path can be tested before (and against) the
 * optimised kernels. */
#include "backend/cpu/cpu_ref.h"

void gb_ref_rmsnorm_matmul(gb_backend *b, float **ys, float *xnorm, const float *x,
                           const float *norm_w, float eps, const gb_weight *const *ws,
                           const float *const *biases, int count, int n) {
    int dim = (int)ws[0]->cols;
    gb_ref_rmsnorm(b, xnorm, x, norm_w, n, dim, eps);
    for (int i = 0; i < count; i++)
        gb_ref_matmul(b, ys[i], xnorm, ws[i], biases ? biases[i] : NULL, n);
}

/* Row by row (gb_ref_row_dot: the sums of gb_ref_matmul), so no [n, I] temporaries and no
 * one-row views are needed: the same on row-major and panel weights, and it cannot run out of
 * memory (the optimised set falls back to it). */
void gb_ref_gate_up_act(gb_backend *b, float *out, const float *x, const gb_weight *wg,
                        const gb_weight *wu, int n, gb_act_kind act) {
    int64_t inter = wg->rows, dim = wg->cols;
    for (int i = 0; i < n; i++)
        for (int64_t r = 0; r < inter; r++) {
            float g = gb_ref_row_dot(wg, r, x + (size_t)i * dim);
            float u = gb_ref_row_dot(wu, r, x + (size_t)i * dim);
            gb_ref_act_mul(b, out + (size_t)i * inter + r, &g, &u, 1, act);
        }
}

void gb_ref_rope_kv_write(gb_backend *b, float *q, float *k, const float *v, float *kcache,
                          float *vcache, const gb_rope_args *r, const gb_attn_args *a) {
    gb_rope_args rk = *r;
    rk.n_heads = a->n_kv_heads;
    gb_ref_rope(b, q, r);
    gb_ref_rope(b, k, &rk);
    gb_ref_kv_write(b, kcache, vcache, k, v, a);
}

void gb_ref_add_rmsnorm(gb_backend *b, float *resid, const float *x, float *y, const float *w,
                        int n, int dim, float eps) {
    gb_ref_add(b, resid, resid, x, (size_t)n * dim);
    gb_ref_rmsnorm(b, y, resid, w, n, dim, eps);
}
