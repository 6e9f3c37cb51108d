/* Ceilings and kernel speeds of the CUDA backend on the card at hand (not a test; run by
 * bench/cuda.sh). Prints one line per measurement:
 *   copy      device-to-device copy bandwidth (bytes read + written)
 *   gemm      cuBLAS bf16 / fp16 GEMM 8192^3 (float32 accumulation), fp32 (no TF32)
 *   gemv      backend matmul / fused ops at decode (n rows), weight bytes / time
 *   gemm_pf   backend matmul at prefill (n = 128), TFLOP/s
 *   attn      attention impls at decode and prefill; the paged decode attention of continuous
 *             batching: "ref" the unsplit reference kernel, "split" the split-KV one
 * Times: per call, from a CUDA graph of many calls (median of 7 replays). */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "backend/cuda_ceilings.h"
#include "util/dtype.h"
#include "cuda/cuda_check.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The ceilings genbench's efficiency numbers use (src/backend/cuda_ceilings.h: median of 10
 * 2 GiB D2D copies and 8192^3 cuBLAS GEMMs), so this log and the results files agree. */
static void ceilings(void) {
    gb_cuda_ceilings c;
    gb_error err;
    if (gb_cuda_ceilings_measure(0, NULL, &c, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    char what[64];
    snprintf(what, sizeof what, "%.2g GiB d2d", (double)c.copy_bytes / (double)(1u << 30));
    printf("copy      %-28s %8.1f GB/s (read+write, median of %d)\n", what, c.copy_gbs, c.repeats);
    snprintf(what, sizeof what, "%d^3", c.gemm_n);
    printf("gemm      %-28s %8.1f TFLOP/s (cuBLAS bf16, f32 out, median of %d)\n", what,
           c.bf16_tflops, c.repeats);
    printf("gemm      %-28s %8.1f TFLOP/s (cuBLAS fp16, f32 out, median of %d)\n", what,
           c.fp16_tflops, c.repeats);
    printf("gemm      %-28s %8.1f TFLOP/s (cuBLAS fp32, no TF32, median of %d)\n", what,
           c.fp32_tflops, c.repeats);
}

static gb_backend *B;

static void load(gb_weight *w, int64_t rows, int64_t cols) {
    /* a 32 Mi-element random pool repeated: random data, without minutes of host RNG */
    enum { POOL = 1 << 25 };
    static uint16_t *pool;
    if (!pool) {
        pool = malloc((size_t)POOL * 2);
        for (size_t i = 0; i < POOL; i++)
            pool[i] = gb_f32_to_bf16(frand() * 0.05f);
    }
    const size_t cnt = (size_t)rows * cols;
    uint16_t *h = malloc(cnt * 2);
    for (size_t off = 0; off < cnt; off += POOL)
        memcpy(h + off, pool, (cnt - off < POOL ? cnt - off : POOL) * 2);
    gb_error err;
    if (B->ops->weight_load(B, w, h, GB_BF16, rows, cols, GB_BF16, 0, &err)) {
        fprintf(stderr, "weight_load: %s\n", err.msg);
        exit(1);
    }
    free(h);
}

static void *dev_rand(size_t n) {
    float *h = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        h[i] = frand();
    void *d;
    gb_error err;
    if (B->ops->alloc(B, n * 4, &d, &err) || B->ops->upload(B, d, h, n * 4, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    free(h);
    return d;
}

typedef void (*step_fn)(void *ctx);

/* Median seconds per call: reps calls captured in one CUDA graph (as the decode step runs),
 * the graph replayed 7 times. */
static double timeit(step_fn f, void *ctx, int reps) {
    gb_error err;
    for (int i = 0; i < 2; i++)
        f(ctx); /* plans, scratch */
    if (B->ops->sync(B, &err) || B->ops->graph_begin(B, &err)) goto fail;
    for (int i = 0; i < reps; i++)
        f(ctx);
    if (B->ops->graph_end(B, &err) || B->ops->graph_launch(B, &err) || B->ops->sync(B, &err))
        goto fail;
    double t[7];
    for (int k = 0; k < 7; k++) {
        double t0 = now_s();
        if (B->ops->graph_launch(B, &err) || B->ops->sync(B, &err)) goto fail;
        t[k] = (now_s() - t0) / reps;
    }
    qsort(t, 7, sizeof t[0], cmp_d);
    return t[3];
fail:
    fprintf(stderr, "%s\n", err.msg);
    exit(1);
}

typedef struct mm_ctx {
    gb_weight w[3];
    float *x, *y[3], *xn, *nw;
    int n, kind; /* 0 matmul, 1 rmsnorm_matmul x3, 2 gate_up */
} mm_ctx;

static void mm_step(void *p) {
    mm_ctx *c = p;
    if (c->kind == 0) {
        B->ops->matmul(B, c->y[0], c->x, &c->w[0], NULL, c->n);
    } else if (c->kind == 1) {
        const gb_weight *ws[3] = {&c->w[0], &c->w[1], &c->w[2]};
        B->ops->rmsnorm_matmul(B, c->y, c->xn, c->x, c->nw, 1e-5f, ws, NULL, 3, c->n);
    } else {
        B->ops->gate_up_act(B, c->y[0], c->x, &c->w[0], &c->w[1], c->n, GB_BACT_SILU);
    }
}

static void bench_mm(const char *name, int kind, int64_t r0, int64_t r1, int64_t r2, int64_t cols,
                     int n) {
    mm_ctx c = {0};
    c.kind = kind;
    c.n = n;
    int64_t rows[3] = {r0, r1, r2};
    int nw = kind == 0 ? 1 : kind == 1 ? 3 : 2;
    size_t wbytes = 0;
    double flops = 0;
    for (int i = 0; i < nw; i++) {
        load(&c.w[i], rows[i], cols);
        c.y[i] = dev_rand((size_t)n * rows[i]);
        wbytes += (size_t)rows[i] * cols * 2;
        flops += 2.0 * n * rows[i] * cols;
    }
    c.x = dev_rand((size_t)n * cols);
    c.xn = dev_rand((size_t)n * cols);
    c.nw = dev_rand((size_t)cols);
    double t = timeit(mm_step, &c, n >= 64 ? 20 : 50);
    printf("%-9s %-28s %8.1f GB/s %8.1f TFLOP/s %8.1f us\n", n >= 64 ? "gemm_pf" : "gemv", name,
           wbytes / t * 1e-9, flops / t * 1e-12, t * 1e6);
    for (int i = 0; i < nw; i++) {
        B->ops->weight_free(B, &c.w[i]);
        B->ops->free(B, c.y[i]);
    }
    B->ops->free(B, c.x);
    B->ops->free(B, c.xn);
    B->ops->free(B, c.nw);
}

typedef struct at_ctx {
    gb_attn_impl impl;
    gb_attn_args a;
    void *q, *k, *v, *o, *s;
} at_ctx;

static void at_step(void *p) {
    at_ctx *c = p;
    B->ops->attention(B, c->impl, c->o, c->q, c->k, c->v, &c->a, c->s);
}

/* The attention shape of the lines below: T query rows per sequence at pos0.., a cache of
 * cap positions, scale 1/8. */
static gb_attn_args attn_args(int batch, int T, int pos0, int cap, int nh, int nkv, int hd) {
    return (gb_attn_args){.batch = batch,
                          .n_tokens = T,
                          .pos0 = pos0,
                          .cap = cap,
                          .n_heads = nh,
                          .n_kv_heads = nkv,
                          .head_dim = hd,
                          .scale = 0.125f};
}

static void bench_attn(const char *name, gb_attn_impl impl, int batch, int T, int pos0, int cap,
                       int nh, int nkv, int hd) {
    at_ctx c = {.impl = impl};
    c.a = attn_args(batch, T, pos0, cap, nh, nkv, hd);
    c.q = dev_rand((size_t)batch * T * nh * hd);
    c.o = dev_rand((size_t)batch * T * nh * hd);
    c.k = dev_rand((size_t)batch * cap * nkv * hd);
    c.v = dev_rand((size_t)batch * cap * nkv * hd);
    size_t sb = B->ops->attn_scratch_bytes(B, impl, &c.a);
    c.s = dev_rand(sb / 4 + 1);
    double t = timeit(at_step, &c, 50);
    static const char *names[] = {"eager", "sdpa", "flash"};
    printf("attn      %-22s %-5s %8.1f us\n", name, names[impl], t * 1e6);
    B->ops->free(B, c.q);
    B->ops->free(B, c.o);
    B->ops->free(B, c.k);
    B->ops->free(B, c.v);
    B->ops->free(B, c.s);
}

/* The decode step's fused op: RoPE of q and the new k, the K/V write at p, attention. */
typedef struct rka_ctx {
    gb_attn_args a;
    gb_rope_args r;
    void *q, *k, *v, *kc, *vc, *o, *s;
} rka_ctx;

static void rka_step(void *p) {
    rka_ctx *c = p;
    B->ops->rope_kv_attention(B, GB_ATTN_FLASH, c->o, c->q, c->k, c->v, c->kc, c->vc, &c->r, &c->a,
                              c->s);
}

static void bench_rope_kv_attn(const char *name, int pos0, int cap, int nh, int nkv, int hd) {
    rka_ctx c;
    memset(&c, 0, sizeof c);
    c.a = attn_args(1, 1, pos0, cap, nh, nkv, hd);
    c.q = dev_rand((size_t)nh * hd);
    c.k = dev_rand((size_t)nkv * hd);
    c.v = dev_rand((size_t)nkv * hd);
    c.o = dev_rand((size_t)nh * hd);
    c.kc = dev_rand((size_t)cap * nkv * hd);
    c.vc = dev_rand((size_t)cap * nkv * hd);
    c.s = dev_rand(B->ops->attn_scratch_bytes(B, GB_ATTN_FLASH, &c.a) / 4 + 1);
    void *inv = dev_rand((size_t)hd / 2);
    c.r = (gb_rope_args){.n_tokens = 1,
                         .batch = 1,
                         .pos0 = pos0,
                         .n_heads = nh,
                         .head_dim = hd,
                         .inv_freq = inv,
                         .attn_factor = 1.0f};
    double t = timeit(rka_step, &c, 50);
    printf("attn      %-22s %-5s %8.1f us  (rope + kv write + attention)\n", name, "flash",
           t * 1e6);
    void *bufs[] = {c.q, c.k, c.v, c.o, c.kc, c.vc, c.s, inv};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        B->ops->free(B, bufs[i]);
}

typedef struct pg_ctx {
    gb_paged_args a;
    void *q, *k, *v, *o;
} pg_ctx;

static void pg_step(void *p) {
    pg_ctx *c = p;
    B->ops->attention_paged(B, c->o, c->q, c->k, c->v, &c->a);
}

/* A continuous-batching decode step's attention: batch sequences all at position L - 1 (L
 * keys each), 16-position blocks scattered over the pool (a shuffled table), on backend be
 * (the reference or the kernelized table). */
static void bench_paged(const char *name, gb_backend *be, const char *kind, int batch, int L,
                        int nh, int nkv, int hd) {
    gb_backend *saved = B;
    B = be;
    const int bs = 16, mb = (L + bs - 1) / bs, nb = batch * mb;
    int32_t *tables = malloc(sizeof(int32_t) * (size_t)nb), *pos = malloc(sizeof(int32_t) * batch);
    for (int i = 0; i < nb; i++)
        tables[i] = i;
    for (int i = nb - 1; i > 0; i--) {
        const int j = (int)((frand() * 0.5f + 0.5f) * i);
        const int32_t t = tables[i];
        tables[i] = tables[j], tables[j] = t;
    }
    for (int s = 0; s < batch; s++)
        pos[s] = L - 1;
    pg_ctx c;
    void *dt, *dp;
    gb_error err;
    if (B->ops->alloc(B, sizeof(int32_t) * (size_t)nb, &dt, &err) ||
        B->ops->upload(B, dt, tables, sizeof(int32_t) * (size_t)nb, &err) ||
        B->ops->alloc(B, sizeof(int32_t) * (size_t)batch, &dp, &err) ||
        B->ops->upload(B, dp, pos, sizeof(int32_t) * (size_t)batch, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    c.a = (gb_paged_args){.batch = batch,
                          .n_tokens = 1,
                          .pos = dp,
                          .block_tables = dt,
                          .max_blocks = mb,
                          .block_size = bs,
                          .n_heads = nh,
                          .n_kv_heads = nkv,
                          .head_dim = hd,
                          .scale = 0.125f};
    c.q = dev_rand((size_t)batch * nh * hd);
    c.o = dev_rand((size_t)batch * nh * hd);
    c.k = dev_rand((size_t)nb * bs * nkv * hd);
    c.v = dev_rand((size_t)nb * bs * nkv * hd);
    double t = timeit(pg_step, &c, 50);
    printf("attn      %-22s %-5s %8.1f us\n", name, kind, t * 1e6);
    B->ops->free(B, c.q);
    B->ops->free(B, c.o);
    B->ops->free(B, c.k);
    B->ops->free(B, c.v);
    B->ops->free(B, dt);
    B->ops->free(B, dp);
    free(tables), free(pos);
    B = saved;
}

int main(void) {
    /* GB_BENCH_GEMV_ONLY=1: the decode GEMV lines only (quick A/B of GEMV variants) */
    const int gemv_only = getenv("GB_BENCH_GEMV_ONLY") != NULL;
    /* GB_BENCH_ATTN_ONLY=1: the decode attention lines only, dense and paged split
     * (GB_CUDA_ATTN_SKIP probes; GB_CUDA_ATTN_GENERIC=1: the generic kernels, for A/B) */
    const int attn_only = getenv("GB_BENCH_ATTN_ONLY") != NULL;
    if (!gemv_only && !attn_only) ceilings();
    gb_backend_options o = {0};
    o.kernelize = 1;
    gb_error err;
    if (gb_backend_cuda_create(&o, &B, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (attn_only) {
        bench_attn("decode 1B L=256", GB_ATTN_FLASH, 1, 1, 255, 256, 32, 8, 64);
        bench_rope_kv_attn("decode 1B L=256", 255, 256, 32, 8, 64);
        bench_rope_kv_attn("decode 1B L=129", 128, 256, 32, 8, 64);
        bench_attn("decode 8B L=256", GB_ATTN_FLASH, 1, 1, 255, 256, 32, 8, 128);
        bench_rope_kv_attn("decode 8B L=256", 255, 256, 32, 8, 128);
        bench_paged("paged 1B b1 L=256", B, "split", 1, 256, 32, 8, 64);
        bench_paged("paged 1B b8 L=192", B, "split", 8, 192, 32, 8, 64);
        bench_paged("paged 8B b8 L=192", B, "split", 8, 192, 32, 8, 128);
        gb_backend_free(B);
        return 0;
    }
    /* Llama-3.2-1B: hidden 2048, inter 8192, 32 heads, 8 kv, hd 64, vocab 128256 */
    bench_mm("1B qkv (rmsnorm+3)", 1, 2048, 512, 512, 2048, 1);
    bench_mm("1B o 2048x2048", 0, 2048, 0, 0, 2048, 1);
    bench_mm("1B gate_up 2x8192x2048", 2, 8192, 8192, 0, 2048, 1);
    bench_mm("1B down 2048x8192", 0, 2048, 0, 0, 8192, 1);
    bench_mm("1B lm_head 128256x2048", 0, 128256, 0, 0, 2048, 1);
    bench_mm("1B lm_head n=4", 0, 128256, 0, 0, 2048, 4);
    bench_mm("1B down n=8", 0, 2048, 0, 0, 8192, 8);
    bench_mm("1B gate_up n=8", 2, 8192, 8192, 0, 2048, 8);
    /* Llama-3.1-8B: hidden 4096, inter 14336, 32 heads, 8 kv, hd 128 */
    bench_mm("8B qkv (rmsnorm+3)", 1, 4096, 1024, 1024, 4096, 1);
    bench_mm("8B gate_up 2x14336x4096", 2, 14336, 14336, 0, 4096, 1);
    bench_mm("8B down 4096x14336", 0, 4096, 0, 0, 14336, 1);
    bench_mm("8B lm_head 128256x4096", 0, 128256, 0, 0, 4096, 1);
    if (gemv_only) {
        gb_backend_free(B);
        return 0;
    }
    /* prefill GEMMs, 128 tokens */
    bench_mm("1B gate_up n=128", 2, 8192, 8192, 0, 2048, 128);
    bench_mm("1B lm_head n=128", 0, 128256, 0, 0, 2048, 128);
    bench_mm("8B gate_up n=128", 2, 14336, 14336, 0, 4096, 128);
    bench_attn("decode 1B L=256", GB_ATTN_FLASH, 1, 1, 255, 256, 32, 8, 64);
    bench_attn("decode 1B L=256", GB_ATTN_SDPA, 1, 1, 255, 256, 32, 8, 64);
    bench_attn("decode 1B L=256", GB_ATTN_EAGER, 1, 1, 255, 256, 32, 8, 64);
    bench_attn("decode 8B L=256", GB_ATTN_FLASH, 1, 1, 255, 256, 32, 8, 128);
    bench_attn("decode 8B b32 L=256", GB_ATTN_FLASH, 32, 1, 255, 256, 32, 8, 128);
    bench_attn("prefill 1B T=128", GB_ATTN_FLASH, 1, 128, 0, 256, 32, 8, 64);
    bench_attn("prefill 1B T=128", GB_ATTN_SDPA, 1, 128, 0, 256, 32, 8, 64);
    bench_attn("prefill 1B T=128", GB_ATTN_EAGER, 1, 128, 0, 256, 32, 8, 64);
    /* continuous batching decode (paged KV cache), 1B and 8B shapes: L = 192 is the middle of
     * an s128 n128 generation */
    gb_backend_options ro = {0};
    gb_backend *Bref = NULL;
    if (gb_backend_cuda_create(&ro, &Bref, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    static const struct {
        const char *name;
        int batch, L, hd;
    } pg[] = {{"paged 1B b1 L=256", 1, 256, 64},   {"paged 1B b8 L=192", 8, 192, 64},
              {"paged 1B b32 L=192", 32, 192, 64}, {"paged 1B b1 L=4096", 1, 4096, 64},
              {"paged 8B b8 L=192", 8, 192, 128},  {"paged 8B b32 L=192", 32, 192, 128}};
    for (size_t i = 0; i < sizeof pg / sizeof pg[0]; i++) {
        bench_paged(pg[i].name, Bref, "ref", pg[i].batch, pg[i].L, 32, 8, pg[i].hd);
        bench_paged(pg[i].name, B, "split", pg[i].batch, pg[i].L, 32, 8, pg[i].hd);
    }
    gb_backend_free(Bref);
    size_t in_use, peak;
    B->ops->memory_stats(B, &in_use, &peak);
    printf("memory    peak %.1f MiB\n", peak / 1048576.0);
    gb_backend_free(B);
    return 0;
}
