/* The optimised ("kernelized") CPU kernel set: internal interface between the op table
 * (opt.c) and the per-ISA kernel files (opt_scalar.c, opt_avx2.c, opt_avx512.c, and the
 * panel-layout kernels opt_panel_avx2.c, opt_panel_avx512.c).
 *
 * Matmul layout: y[t, r] = sum_k W[r, k] * x[t, k] for token rows t < n and weight rows r,
 * W row-major [rows, cols] in bf16/f16/f32, x and y float32. Each ISA packs x once per call
 * (its own layout, see pack_x) so that the inner loop streams W rows with wide loads and
 * reuses every loaded W vector for several token rows (register tiling). Accumulation is
 * float32 in every path except the AVX-512 BF16 ones (row-major bf16 weights with n > 1, and
 * panel-layout bf16 weights for every n), which round x to bf16 and use vdpbf16ps (float32
 * accumulation of bf16 products), like bf16 compute in PyTorch. */
#ifndef GB_BACKEND_CPU_OPT_H
#define GB_BACKEND_CPU_OPT_H

#include <stddef.h>
#include <stdint.h>
#include "backend/backend.h"

typedef struct gb_mm_args {
    gb_dtype wdtype;
    const void *w;  /* [rows, cols] */
    int64_t cols;   /* = K */
    const void *xp; /* packed x (pack_x output) */
    const float *x; /* x[n, cols] unpacked (for the K tail) */
    int n;
    float *y; /* y[t * ldy + r] */
    int64_t ldy;
    const float *bias; /* [rows] or NULL */
    int panel;         /* w is in the panel layout (panel.h) ... */
    int64_t prows;     /* ... with this many rows from w as 16-row panels, the rest row-major */
} gb_mm_args;

typedef struct gb_opt_isa {
    const char *name; /* "scalar", "avx2", "avx512" */
    /* Bytes of the packed form of x[n, cols] for weights of dtype wd. */
    size_t (*pack_bytes)(gb_dtype wd, int n, int64_t cols);
    /* Packs rows [t0, t1) of x[n, cols] into xp. */
    void (*pack_x)(void *xp, const float *x, gb_dtype wd, int n, int64_t cols, int t0, int t1);
    /* y[:, r0:r1] for all n token rows (bias added when given). */
    void (*mm_rows)(const gb_mm_args *a, int64_t r0, int64_t r1);
    /* The same three for bf16 weights in the panel layout (panel.h; x packed for every n,
     * y preset to the bias by the caller, r0 % 16 == 0); NULL where the ISA has none, and
     * then packed weights go to the reference matmul. */
    size_t (*panel_pack_bytes)(int n, int64_t cols);
    void (*panel_pack_x)(void *xp, const float *x, int n, int64_t cols, int t0, int t1);
    void (*panel_mm_rows)(const gb_mm_args *a, int64_t r0, int64_t r1);
    /* Weights are repacked at load by default (GB_CPU_PANELS=1 / 0 override). avx2: yes;
     * avx512: no, the one-token GEMV streams row-major weights faster there (Xeon, session 4:
     * decode 83-85 % of the read ceiling row-major, 66-78 % on panels; prefill 3-5 % faster
     * on panels). */
    int panels_default;
    /* out[i] = act(g[i]) * u[i] */
    void (*act_mul)(float *out, const float *g, const float *u, size_t count, gb_act_kind act);
    /* y[i] = act(x[i]) */
    void (*act)(float *y, const float *x, size_t count, gb_act_kind act);
    float (*dot)(const float *a, const float *b, int n);
    float (*sumsq)(const float *a, int n);
    /* y[i] = y[i] * s + a * x[i] */
    void (*scale_axpy)(float *y, float s, float a, const float *x, int n);
    /* y[i] = x[i] * s * w[i] */
    void (*scale_mul)(float *y, const float *x, float s, const float *w, int n);
    /* y[i] = a[i] + c[i] */
    void (*add)(float *y, const float *a, const float *c, size_t n);
    /* p[i] = exp(s[i] - m); returns the sum of p */
    float (*exp_sum)(float *p, const float *s, float m, int n);
    /* Attention over one block of nk keys for the G query heads of a GQA group (q: G rows
     * of hd floats; key / value row i at k / v + i * stride). NULL where the ISA has none:
     * the op then runs one head at a time on dot / scale_axpy.
     * s[g * lds + i] = scale * q_g . k_i (entries up to lds - 1 may be overwritten). */
    void (*att_scores)(float *s, int lds, const float *q, int G, const float *k, int64_t kstride,
                       int nk, int hd, float scale);
    /* acc[g * hd + d] = acc[g * hd + d] * corr[g] + sum_i p[g * ldp + i] * v_i[d] */
    void (*att_accum)(float *acc, const float *corr, const float *p, int ldp, int G, const float *v,
                      int64_t vstride, int nk, int hd);
} gb_opt_isa;

/* AVX2 panel kernels (opt_panel_avx2.c), entries of the avx2 table */
size_t gb_panel_avx2_pack_bytes(int n, int64_t cols);
void gb_panel_avx2_pack_x(void *xp, const float *x, int n, int64_t cols, int t0, int t1);
void gb_panel_avx2_mm_rows(const gb_mm_args *a, int64_t r0, int64_t r1);

/* AVX-512 BF16 panel kernels (opt_panel_avx512.c), entries of the avx512 table; the same
 * contract as the AVX2 ones, x rounded to bf16 (every n). Call only where the CPU has the
 * avx512 ISA (gb_opt_isa_find("avx512") != NULL). */
size_t gb_panel_avx512_pack_bytes(int n, int64_t cols);
void gb_panel_avx512_pack_x(void *xp, const float *x, int n, int64_t cols, int t0, int t1);
void gb_panel_avx512_mm_rows(const gb_mm_args *a, int64_t r0, int64_t r1);

/* AVX2 GQA-group attention blocks (opt_attn_avx2.c), entries of the avx2 table */
void gb_attn_avx2_scores(float *s, int lds, const float *q, int G, const float *k, int64_t kstride,
                         int nk, int hd, float scale);
void gb_attn_avx2_accum(float *acc, const float *corr, const float *p, int ldp, int G,
                        const float *v, int64_t vstride, int nk, int hd);

extern const gb_opt_isa gb_opt_isa_scalar;
extern const gb_opt_isa gb_opt_isa_avx2;   /* needs avx2, fma, f16c */
extern const gb_opt_isa gb_opt_isa_avx512; /* needs avx512f/bw/vl + avx512bf16 (+ avx2 set) */

/* The best ISA this CPU runs, or the one named by the environment variable GB_CPU_ISA
 * ("scalar", "avx2", "avx512") when the CPU supports it. */
const gb_opt_isa *gb_opt_isa_best(void);
/* The ISA named `name` if this CPU supports it, else NULL. */
const gb_opt_isa *gb_opt_isa_find(const char *name);
/* Selects the ISA the kernelized ops use (tests iterate over all); NULL = best. */
void gb_cpu_opt_set_isa(const gb_opt_isa *isa);
const gb_opt_isa *gb_cpu_opt_isa(void);

/* The kernelized op table: a copy of `ref` (the reference CPU table: memory ops, embed,
 * layernorm, eager attention and the fallbacks come from it) with the compute entries
 * replaced by the optimised kernels and the fused entries filled in. The returned table is
 * static and lives for the process. */
const gb_backend_ops *gb_cpu_kernelized_ops(const gb_backend_ops *ref);
/* Stops the kernel thread pool and frees the scratch buffers (call at backend destroy; the
 * next kernelized op restarts them). */
void gb_cpu_opt_release(void);

/* Direct entry for benchmarks and tests: y = x . W^T (+bias) on `threads` threads
 * (0 = all cores). */
void gb_cpu_opt_matmul(int threads, float *y, const float *x, const gb_weight *w, const float *bias,
                       int n);

#endif
