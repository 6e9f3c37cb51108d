/* CUDA kernels against the CPU reference kernels on random inputs (tests/unit/kernel_check.h),
 * for both CUDA tables (reference, kernelized) and both matmul paths (GEMV for small n,
 * cuBLASLt for large n), plus model-sized shapes, a captured CUDA graph replayed at
 * several device-side positions, and the paged KV cache ops (scattered block tables, block
 * sizes 1/7/16, head_dim 64/80/128 and edge sizes, GQA, sliding window, prefill and decode,
 * a captured decode step replayed with new positions and tables, the split-KV decode
 * attention at forced split counts against the reference paged kernel (its kernels for
 * head_dim 64/128 and the generic one at those head_dims too), and RoPE + K/V write
 * at per-sequence positions in one launch). Needs a GPU: exits 77
 * (skipped) without one unless GB_CUDA_TESTS=1 demands it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "../unit/kernel_check.h"
#include "backend/backend.h"

static gb_backend *mk(int cuda, int kernelize, const char *gemv_max) {
    gb_backend_options o = {0};
    o.kernelize = kernelize;
    o.threads = 2;
    gb_backend *b = NULL;
    gb_error err = {0};
    if (gemv_max) setenv("GB_CUDA_GEMV_MAX", gemv_max, 1);
    int rc = cuda ? gb_backend_cuda_create(&o, &b, &err) : gb_backend_cpu_create(&o, &b, &err);
    unsetenv("GB_CUDA_GEMV_MAX");
    if (rc) {
        fprintf(stderr, "backend create: %s\n", err.msg);
        exit(1);
    }
    return b;
}

/* Compares buffer `name` of a case (what) on the two backends. */
static void check_named(kc_pair *p, const char *what, const char *name, void *dref, void *dopt,
                        size_t n, double tol) {
    char w[256];
    snprintf(w, sizeof w, "%s: %s", what, name);
    kc_check_outputs(p, w, dref, dopt, n, tol);
}

/* The device buffers of an attention step, the same slots on both backends: q, k, v (the new
 * rows), the K and V caches or pools, then (paged) the positions and block tables (graph_replay:
 * inv_freq and the scratch), and the output. */
enum { D_Q, D_K, D_V, D_KC, D_VC, D_POS, D_TABLES, D_OUT };

/* Compares the output and both caches (or pools, kv = "pool") of an attention step. */
static void check_step(kc_pair *p, const char *what, void *const *dref, void *const *dopt,
                       size_t out_n, size_t cache_n, const char *kv) {
    char name[16];
    check_named(p, what, "out", dref[D_OUT], dopt[D_OUT], out_n, 1e-4);
    snprintf(name, sizeof name, "k%s", kv);
    check_named(p, what, name, dref[D_KC], dopt[D_KC], cache_n, 1e-4);
    snprintf(name, sizeof name, "v%s", kv);
    check_named(p, what, name, dref[D_VC], dopt[D_VC], cache_n, 1e-4);
}

static void upload_qkv(gb_backend *b, void *const *d, const float *q, const float *k,
                       const float *v, size_t q_n, size_t kv_n) {
    gb_error err = {0};
    b->ops->upload(b, d[D_Q], q, q_n * 4, &err);
    b->ops->upload(b, d[D_K], k, kv_n * 4, &err);
    b->ops->upload(b, d[D_V], v, kv_n * 4, &err);
}

static void free_dev(gb_backend *b, void **d, int n) {
    for (int i = 0; i < n; i++)
        b->ops->free(b, d[i]);
}

/* Model-sized matmul shapes the small harness cases do not reach: K past one unrolled GEMV
 * pass, n past the GEMV rows, every dtype. */
static void big_shapes(gb_backend *ref, gb_backend *cu) {
    kc_pair p = {ref, cu};
    kc_rng r = {12345};
    static const int mm[][3] = {{1, 2056, 300},  {3, 4104, 129}, {4, 520, 1000}, {9, 2048, 96},
                                {128, 256, 384}, {1, 100, 64},   {1, 8200, 70},  {1, 8192, 37},
                                {2, 4096, 30},   {1, 8208, 21}};
    for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++)
        for (int dt = 0; dt < 3; dt++)
            kc_compare_matmul(&p, &r, mm[i][0], mm[i][1], mm[i][2], (gb_dtype)dt, (int)(i & 1),
                              dt == GB_F32 ? 1e-4 : kc_tol16(1e-4, mm[i][1]));
}

/* Attention at model-sized shapes: head_dim 64/128 (the decode kernels specialised for them)
 * and 256, 128-token prefill, decode over a 256-position cache, a GQA group of 8, a window. */
static void big_attn(gb_backend *ref, gb_backend *cu) {
    kc_pair p = {ref, cu};
    kc_rng r = {54321};
    static const gb_attn_args cases[] = {
        {.batch = 1,
         .n_tokens = 128,
         .pos0 = 0,
         .cap = 256,
         .n_heads = 8,
         .n_kv_heads = 2,
         .head_dim = 64},
        {.batch = 2,
         .n_tokens = 1,
         .pos0 = 250,
         .cap = 256,
         .n_heads = 8,
         .n_kv_heads = 2,
         .head_dim = 128},
        {.batch = 1,
         .n_tokens = 33,
         .pos0 = 40,
         .cap = 80,
         .n_heads = 4,
         .n_kv_heads = 4,
         .head_dim = 256},
        {.batch = 1, /* a GQA group of 8, a short cache: a cluster of 2 blocks */
         .n_tokens = 1,
         .pos0 = 5,
         .cap = 40,
         .n_heads = 16,
         .n_kv_heads = 2,
         .head_dim = 64},
        {.batch = 3,
         .n_tokens = 1,
         .pos0 = 3000,
         .cap = 4000,
         .n_heads = 4,
         .n_kv_heads = 1,
         .head_dim = 64,
         .sliding_window = 1000},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        gb_attn_args a = cases[c];
        a.scale = 1.0f / sqrtf((float)a.head_dim);
        for (int impl = 0; impl < 3; impl++)
            kc_compare_attention(&p, &r, (gb_attn_impl)impl, &a, 3.0f, 1e-4);
    }
}

/* A decode step (rope + kv write + attention) captured once at position P and replayed at
 * P..P+5 with set_pos, against the CPU reference run at each explicit position. fused: the
 * CUDA side runs the step as one rope_kv_attention call. */
static void graph_replay(gb_backend *ref, gb_backend *cu, gb_attn_impl impl, int fused) {
    /* fused == 2: one head per KV head and head_dim 32 (odd-sized shared-memory sections);
     * fused == 3: head_dim 128 (the other specialised decode kernel) */
    const int nh = fused == 2 ? 3 : 4, nkv = fused == 2 ? 3 : 2;
    const int hd = fused == 2 ? 32 : fused == 3 ? 128 : 64;
    const int cap = 64, P = 20, steps = 6, batch = 2;
    kc_rng r = {777 + (uint64_t)impl};
    float inv_freq[64] = {0};
    for (int i = 0; i < hd / 2; i++)
        inv_freq[i] = (float)(1.0 / pow(10000.0, 2.0 * i / hd));
    const size_t cn = (size_t)batch * cap * nkv * hd, qn = (size_t)batch * nh * hd,
                 kn = (size_t)batch * nkv * hd;
    float *kc0 = kc_rand(&r, cn, 1.0f), *vc0 = kc_rand(&r, cn, 1.0f);
    gb_backend *bs[2] = {ref, cu};
    void *d[2][8];
    gb_attn_args a = {.batch = batch,
                      .n_tokens = 1,
                      .pos0 = P,
                      .cap = cap,
                      .n_heads = nh,
                      .n_kv_heads = nkv,
                      .head_dim = hd,
                      .scale = 0.125f};
    gb_rope_args ra = {.n_tokens = 1,
                       .batch = batch,
                       .pos0 = P,
                       .n_heads = nh,
                       .head_dim = hd,
                       .attn_factor = 1.0f};
    for (int s = 0; s < 2; s++) {
        gb_backend *b = bs[s];
        d[s][0] = kc_dev(b, NULL, qn * 4); /* q */
        d[s][1] = kc_dev(b, NULL, kn * 4); /* k */
        d[s][2] = kc_dev(b, NULL, kn * 4); /* v */
        d[s][3] = kc_dev(b, kc0, cn * 4);  /* kcache */
        d[s][4] = kc_dev(b, vc0, cn * 4);  /* vcache */
        d[s][5] = kc_dev(b, inv_freq, sizeof inv_freq);
        d[s][6] = kc_dev(b, NULL, b->ops->attn_scratch_bytes(b, impl, &a));
        d[s][7] = kc_dev(b, NULL, qn * 4); /* out */
    }
    gb_error err = {0};
    /* capture on the CUDA side with inputs uploaded before each replay */
    ra.inv_freq = d[1][5];
    cu->ops->set_pos(cu, P);
    CHECK_OK(cu->ops->graph_begin(cu, &err), &err);
    if (fused) {
        cu->ops->rope_kv_attention(cu, impl, d[1][7], d[1][0], d[1][1], d[1][2], d[1][3], d[1][4],
                                   &ra, &a, d[1][6]);
    } else {
        cu->ops->rope(cu, d[1][0], &ra);
        gb_rope_args rk = ra;
        rk.n_heads = nkv;
        cu->ops->rope(cu, d[1][1], &rk);
        cu->ops->kv_write(cu, d[1][3], d[1][4], d[1][1], d[1][2], &a);
        cu->ops->attention(cu, impl, d[1][7], d[1][0], d[1][3], d[1][4], &a, d[1][6]);
    }
    CHECK_OK(cu->ops->graph_end(cu, &err), &err);
    for (int step = 0; step < steps; step++) {
        float *q = kc_rand(&r, qn, 2.0f), *k = kc_rand(&r, kn, 1.0f), *v = kc_rand(&r, kn, 1.0f);
        /* reference at the explicit position */
        gb_attn_args ap = a;
        ap.pos0 = P + step;
        gb_rope_args rp = ra, rpk;
        rp.pos0 = P + step;
        rp.inv_freq = d[0][5];
        rpk = rp;
        rpk.n_heads = nkv;
        upload_qkv(ref, d[0], q, k, v, qn, kn);
        ref->ops->rope(ref, d[0][0], &rp);
        ref->ops->rope(ref, d[0][1], &rpk);
        ref->ops->kv_write(ref, d[0][3], d[0][4], d[0][1], d[0][2], &ap);
        ref->ops->attention(ref, impl, d[0][7], d[0][0], d[0][3], d[0][4], &ap, d[0][6]);
        /* replay */
        upload_qkv(cu, d[1], q, k, v, qn, kn);
        cu->ops->set_pos(cu, P + step);
        CHECK_OK(cu->ops->graph_launch(cu, &err), &err);
        kc_pair p = {ref, cu};
        char what[96];
        snprintf(what, sizeof what, "graph replay impl=%d fused=%d step=%d", (int)impl, fused,
                 step);
        check_step(&p, what, d[0], d[1], qn, cn, "cache");
        free(q), free(k), free(v);
    }
    cu->ops->set_pos(cu, -1);
    for (int s = 0; s < 2; s++)
        free_dev(bs[s], d[s], 8);
    free(kc0), free(vc0);
}

/* The step tail (GB_CUDA_STEP_TAIL): an argmax captured after set_pos ends a decode step; its
 * graph advances the device position and leaves the ids in host memory, so the next set_pos
 * launches nothing and the download copies nothing. Both argmax kernels (one block per row,
 * and split for a long vocabulary), steps of both position parities: the ids from
 * download_finish and from a plain download must be the planted maxima. */
static void step_tail(gb_backend *cu) {
    gb_error err = {0};
    kc_rng r = {4242};
    enum { N = 3, STEPS = 5 };
    for (int vi = 0; vi < 2; vi++) {
        const int vocab = vi ? 9000 : 500;
        float *lg = kc_rand(&r, (size_t)N * vocab, 1.0f);
        void *dl = kc_dev(cu, NULL, (size_t)N * vocab * 4), *di = kc_dev(cu, NULL, N * 4);
        cu->ops->set_pos(cu, 17);
        CHECK_OK(cu->ops->graph_begin(cu, &err), &err);
        cu->ops->argmax(cu, di, dl, N, vocab);
        CHECK_OK(cu->ops->graph_end(cu, &err), &err);
        for (int step = 0; step < STEPS; step++) {
            int32_t want[N], got[N] = {-1, -1, -1}, plain[N] = {-1, -1, -1};
            for (int i = 0; i < N; i++) {
                want[i] = (int32_t)((step * 977 + i * 131 + 7) % vocab);
                for (int j = 0; j < vocab; j++)
                    lg[(size_t)i * vocab + j] = (float)((j * 7 + step) % 13) * 0.1f;
                lg[(size_t)i * vocab + want[i]] = 5.0f + step;
            }
            CHECK_OK(cu->ops->upload(cu, dl, lg, (size_t)N * vocab * 4, &err), &err);
            cu->ops->set_pos(cu, 17 + step);
            CHECK_OK(cu->ops->graph_launch(cu, &err), &err);
            CHECK_OK(cu->ops->download_start(cu, step & 1, di, N * 4, &err), &err);
            CHECK_OK(cu->ops->download_finish(cu, step & 1, got, N * 4, &err), &err);
            CHECK_OK(cu->ops->download(cu, plain, di, N * 4, &err), &err);
            for (int i = 0; i < N; i++) {
                CHECK_MSG(got[i] == want[i], "step tail vocab %d step %d row %d: %d, want %d",
                          vocab, step, i, got[i], want[i]);
                CHECK_MSG(plain[i] == want[i], "argmax vocab %d step %d row %d: %d, want %d", vocab,
                          step, i, plain[i], want[i]);
            }
        }
        cu->ops->set_pos(cu, -1);
        cu->ops->free(cu, dl);
        cu->ops->free(cu, di);
        free(lg);
    }
}

/* ---- paged KV cache (continuous batching) ---- */

typedef struct paged_case {
    int batch, n_tokens, block_size, head_dim, n_heads, n_kv_heads, window;
    int pos[4]; /* first new position of each sequence */
    float qscale;
} paged_case;

/* Host side of a paged call: block tables that scatter every sequence over a shuffled pool
 * (distinct ids, spare blocks in between), and random pools. */
typedef struct paged_host {
    int max_blocks, n_blocks;
    int32_t *tables, pos[4];
    size_t pool_n, q_n, kv_n;
    float *kpool, *vpool;
} paged_host;

/* One past the last position c's new tokens take. */
static int paged_end(const paged_case *c) {
    int end = 0;
    for (int s = 0; s < c->batch; s++)
        if (c->pos[s] + c->n_tokens > end) end = c->pos[s] + c->n_tokens;
    return end;
}

static void paged_host_init(paged_host *h, const paged_case *c, kc_rng *r, int max_pos) {
    h->max_blocks = (max_pos + c->block_size - 1) / c->block_size;
    h->n_blocks = c->batch * h->max_blocks + 5;
    int32_t *perm = malloc(sizeof(int32_t) * (size_t)h->n_blocks);
    for (int i = 0; i < h->n_blocks; i++)
        perm[i] = i;
    for (int i = h->n_blocks - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)(kc_next(r) % (uint64_t)(i + 1));
        int32_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    h->tables = malloc(sizeof(int32_t) * (size_t)c->batch * h->max_blocks);
    for (int i = 0; i < c->batch * h->max_blocks; i++)
        h->tables[i] = perm[i];
    free(perm);
    for (int s = 0; s < 4; s++)
        h->pos[s] = c->pos[s];
    const size_t w = (size_t)c->n_kv_heads * c->head_dim;
    h->pool_n = (size_t)h->n_blocks * c->block_size * w;
    h->q_n = (size_t)c->batch * c->n_tokens * c->n_heads * c->head_dim;
    h->kv_n = (size_t)c->batch * c->n_tokens * w;
    h->kpool = kc_rand(r, h->pool_n, 1.0f); /* the history (and unused blocks): random */
    h->vpool = kc_rand(r, h->pool_n, 1.0f);
}

static void paged_host_free(paged_host *h) {
    free(h->tables), free(h->kpool), free(h->vpool);
}

static gb_paged_args paged_args(const paged_case *c, const paged_host *h, const void *pos,
                                const void *tables) {
    gb_paged_args a = {.batch = c->batch,
                       .n_tokens = c->n_tokens,
                       .pos = pos,
                       .block_tables = tables,
                       .max_blocks = h->max_blocks,
                       .block_size = c->block_size,
                       .n_heads = c->n_heads,
                       .n_kv_heads = c->n_kv_heads,
                       .head_dim = c->head_dim,
                       .scale = 1.0f / sqrtf((float)c->head_dim),
                       .sliding_window = c->window};
    return a;
}

/* The device buffers of a paged call on b (d[0..7], D_*): q, k, v from the host arrays (NULL:
 * left unset), the pools, positions and block tables of h, and the output. */
static void paged_dev(gb_backend *b, void **d, const paged_case *c, const paged_host *h,
                      const float *q, const float *k, const float *v) {
    d[D_Q] = kc_dev(b, q, h->q_n * 4);
    d[D_K] = kc_dev(b, k, h->kv_n * 4);
    d[D_V] = kc_dev(b, v, h->kv_n * 4);
    d[D_KC] = kc_dev(b, h->kpool, h->pool_n * 4);
    d[D_VC] = kc_dev(b, h->vpool, h->pool_n * 4);
    d[D_POS] = kc_dev(b, h->pos, sizeof h->pos);
    d[D_TABLES] = kc_dev(b, h->tables, sizeof(int32_t) * (size_t)c->batch * h->max_blocks);
    d[D_OUT] = kc_dev(b, NULL, h->q_n * 4);
}

/* kv_write_paged of the new tokens, then attention_paged, on both backends: pools and
 * outputs compared. tag names the compared pair in the messages. */
static void paged_compare(gb_backend *ref, gb_backend *cu, const paged_case *c, kc_rng *r,
                          const char *tag) {
    paged_host h;
    paged_host_init(&h, c, r, paged_end(c) + 3); /* + 3: table entries no position reaches */
    float *q = kc_rand(r, h.q_n, c->qscale), *k = kc_rand(r, h.kv_n, 1.0f),
          *v = kc_rand(r, h.kv_n, 1.0f);
    gb_backend *bs[2] = {ref, cu};
    void *d[2][8];
    for (int s = 0; s < 2; s++) {
        gb_backend *b = bs[s];
        paged_dev(b, d[s], c, &h, q, k, v);
        gb_paged_args a = paged_args(c, &h, d[s][5], d[s][6]);
        b->ops->kv_write_paged(b, d[s][3], d[s][4], d[s][1], d[s][2], &a);
        b->ops->attention_paged(b, d[s][7], d[s][0], d[s][3], d[s][4], &a);
    }
    kc_pair p = {ref, cu};
    char what[200];
    snprintf(what, sizeof what,
             "%s paged b=%d t=%d pos=%d,%d,%d,%d bs=%d hd=%d nh=%d nkv=%d win=%d qscale=%g", tag,
             c->batch, c->n_tokens, c->pos[0], c->pos[1], c->pos[2], c->pos[3], c->block_size,
             c->head_dim, c->n_heads, c->n_kv_heads, c->window, c->qscale);
    check_step(&p, what, d[0], d[1], h.q_n, h.pool_n, "pool");
    for (int s = 0; s < 2; s++)
        free_dev(bs[s], d[s], 8);
    free(q), free(k), free(v);
    paged_host_free(&h);
}

/* Block sizes 1/7/16 x head_dim 64/80/128 x GQA group 1/4 x sliding window off/on x prefill
 * (sequences at different positions, some mid-sequence) / decode, then edge shapes:
 * head_dim 256 (more than 48 KiB of shared memory), head_dim 9 (no float4 rows), a group of
 * 8, a long decode under a window, a peaked softmax. */
static void paged_ops(gb_backend *ref, gb_backend *cu) {
    kc_rng r = {4242};
    if (!cu->ops->kv_write_paged || !cu->ops->attention_paged) {
        CHECK_MSG(0, "%s: no paged KV cache ops", cu->ops->name);
        return;
    }
    static const int block_sizes[] = {1, 7, 16}, head_dims[] = {64, 80, 128}, groups[] = {1, 4};
    for (int ib = 0; ib < 3; ib++)
        for (int ih = 0; ih < 3; ih++)
            for (int ig = 0; ig < 2; ig++)
                for (int win = 0; win < 2; win++)
                    for (int prefill = 0; prefill < 2; prefill++) {
                        paged_case c = {.block_size = block_sizes[ib],
                                        .head_dim = head_dims[ih],
                                        .n_kv_heads = groups[ig] == 1 ? 3 : 2,
                                        .window = win ? 11 : 0,
                                        .qscale = 1.0f};
                        c.n_heads = c.n_kv_heads * groups[ig];
                        if (prefill) {
                            c.batch = 3, c.n_tokens = 19;
                            c.pos[0] = 0, c.pos[1] = 9, c.pos[2] = 30;
                        } else {
                            c.batch = 4, c.n_tokens = 1;
                            c.pos[0] = 0, c.pos[1] = 17, c.pos[2] = 45, c.pos[3] = 100;
                        }
                        paged_compare(ref, cu, &c, &r, cu->ops->name);
                    }
    static const paged_case edge[] = {
        {.batch = 2,
         .n_tokens = 5,
         .block_size = 16,
         .head_dim = 256,
         .n_heads = 2,
         .n_kv_heads = 1,
         .pos = {0, 70},
         .qscale = 1.0f},
        {.batch = 2,
         .n_tokens = 1,
         .block_size = 5,
         .head_dim = 256,
         .n_heads = 8,
         .n_kv_heads = 2,
         .pos = {33, 1},
         .qscale = 1.0f},
        {.batch = 2,
         .n_tokens = 3,
         .block_size = 7,
         .head_dim = 9,
         .n_heads = 4,
         .n_kv_heads = 2,
         .window = 4,
         .pos = {4, 31},
         .qscale = 1.0f},
        {.batch = 3,
         .n_tokens = 1,
         .block_size = 3,
         .head_dim = 64,
         .n_heads = 16,
         .n_kv_heads = 2,
         .pos = {2, 0, 77},
         .qscale = 1.0f},
        {.batch = 1,
         .n_tokens = 37,
         .block_size = 16,
         .head_dim = 128,
         .n_heads = 32,
         .n_kv_heads = 8,
         .pos = {0},
         .qscale = 1.0f},
        {.batch = 2,
         .n_tokens = 1,
         .block_size = 16,
         .head_dim = 128,
         .n_heads = 8,
         .n_kv_heads = 2,
         .window = 1000,
         .pos = {3000, 2500},
         .qscale = 1.0f},
        {.batch = 2,
         .n_tokens = 17,
         .block_size = 7,
         .head_dim = 64,
         .n_heads = 4,
         .n_kv_heads = 1,
         .pos = {0, 23},
         .qscale = 60.0f},
        {.batch = 4,
         .n_tokens = 1,
         .block_size = 16,
         .head_dim = 80,
         .n_heads = 4,
         .n_kv_heads = 4,
         .window = 3,
         .pos = {0, 1, 2, 64},
         .qscale = 60.0f},
    };
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++)
        paged_compare(ref, cu, &edge[i], &r, cu->ops->name);
}

/* The split-KV paged decode attention (kernelized table) at forced split counts 1, 3 and 8
 * and the automatic one, against the CUDA reference paged kernel (reference table) and the
 * CPU reference. Each block takes ceil(L / ns) of a sequence's L visible keys, so the lengths
 * cover: a single key (pos 0), fewer keys than blocks (empty shares), L divisible by 3 and 8
 * (equal shares), L + 1 (a short last share), and long contexts (several 32-key tiles per
 * share, a partial last tile, and with a window the shares start mid-block). Four sequences of
 * different lengths per call, GQA groups 1/2/4/8 (8: two heads per warp), head_dim 4/64/80/
 * 128/256 (64 and 128: the specialised kernels; 256: over 48 KiB of shared memory), block
 * sizes 1/3/5/7/16, a peaked softmax, and shapes the split does not take (group 16, head_dim
 * 9, a prefill) through its fallback. generic: GB_CUDA_ATTN_GENERIC=1, the generic kernel at
 * head_dim 64 and 128 (the shapes of those head_dims only: the others take it anyway). */
static gb_backend *mk_split(const char *split, int generic) {
    if (split) setenv("GB_CUDA_PAGED_SPLIT", split, 1);
    if (generic) setenv("GB_CUDA_ATTN_GENERIC", "1", 1);
    gb_backend *b = mk(1, 1, NULL);
    unsetenv("GB_CUDA_PAGED_SPLIT");
    unsetenv("GB_CUDA_ATTN_GENERIC");
    return b;
}

static void paged_split(gb_backend *cpu, int generic) {
    gb_backend *cref = mk(1, 0, NULL); /* reference table: the unsplit paged kernel */
    kc_rng r = {5150};
    static const char *splits[] = {"1", "3", "8", NULL};
    static const int pos_sets[][4] = {{0, 2, 23, 24}, {95, 96, 250, 700}};
    /* g, head_dim, block size, n_kv_heads, qscale */
    static const struct {
        int g, hd, bs, nkv;
        float qscale;
    } shapes[] = {{1, 64, 16, 3, 1.0f},  {4, 128, 7, 2, 1.0f}, {8, 80, 1, 1, 1.0f},
                  {8, 256, 5, 2, 1.0f},  {2, 4, 3, 2, 1.0f},   {4, 64, 16, 8, 60.0f},
                  {16, 64, 16, 1, 1.0f}, {2, 9, 7, 2, 1.0f},   {8, 128, 16, 1, 1.0f},
                  {8, 64, 3, 2, 60.0f},  {2, 128, 1, 3, 60.0f}};
    for (int si = 0; si < 4; si++) {
        gb_backend *cu = mk_split(splits[si], generic);
        char tag[64];
        snprintf(tag, sizeof tag, "split=%s%s", splits[si] ? splits[si] : "auto",
                 generic ? " generic" : "");
        for (size_t ps = 0; ps < 2; ps++)
            for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
                for (int win = 0; win < 1 + (int)ps; win++) {
                    if (generic && shapes[sh].hd != 64 && shapes[sh].hd != 128) continue;
                    paged_case c = {.batch = 4,
                                    .n_tokens = 1,
                                    .block_size = shapes[sh].bs,
                                    .head_dim = shapes[sh].hd,
                                    .n_heads = shapes[sh].g * shapes[sh].nkv,
                                    .n_kv_heads = shapes[sh].nkv,
                                    .window = win ? 100 : 0,
                                    .qscale = shapes[sh].qscale};
                    memcpy(c.pos, pos_sets[ps], sizeof c.pos);
                    char t2[96];
                    snprintf(t2, sizeof t2, "%s vs cuda-ref", tag);
                    paged_compare(cref, cu, &c, &r, t2);
                    snprintf(t2, sizeof t2, "%s vs cpu", tag);
                    paged_compare(cpu, cu, &c, &r, t2);
                }
        /* a prefill call on the split table goes to the reference kernel */
        const paged_case pre = {.batch = 2,
                                .n_tokens = 9,
                                .block_size = 7,
                                .head_dim = 64,
                                .n_heads = 8,
                                .n_kv_heads = 2,
                                .pos = {0, 40},
                                .qscale = 1.0f};
        paged_compare(cpu, cu, &pre, &r, tag);
        gb_error err = {0};
        CHECK_OK(cu->ops->sync(cu, &err), &err);
        gb_backend_free(cu);
    }
    gb_backend_free(cref);
}

/* rope_kv_write_paged (kernelized table: RoPE at each sequence's device-side position + the
 * pool write, one launch) then attention_paged, against the CPU composition (rope once per
 * sequence at its position, kv_write_paged, attention_paged): rotated q and k, pools and
 * outputs. Prefill at different positions and decode steps, GQA, head_dim 32/64/128, block
 * sizes 1/7/16, attn_factor != 1. */
static void paged_rope(gb_backend *cpu, gb_backend *cu) {
    if (!cu->ops->rope_kv_write_paged) {
        CHECK_MSG(0, "%s: no rope_kv_write_paged", cu->ops->name);
        return;
    }
    static const paged_case cases[] = {
        {.batch = 3,
         .n_tokens = 5,
         .block_size = 7,
         .head_dim = 64,
         .n_heads = 8,
         .n_kv_heads = 2,
         .pos = {0, 9, 30},
         .qscale = 1.0f},
        {.batch = 4,
         .n_tokens = 1,
         .block_size = 16,
         .head_dim = 64,
         .n_heads = 32,
         .n_kv_heads = 8,
         .pos = {0, 17, 190, 255},
         .qscale = 1.0f},
        {.batch = 4,
         .n_tokens = 1,
         .block_size = 1,
         .head_dim = 128,
         .n_heads = 4,
         .n_kv_heads = 4,
         .pos = {3, 0, 64, 700},
         .qscale = 1.0f},
        {.batch = 2,
         .n_tokens = 3,
         .block_size = 16,
         .head_dim = 32,
         .n_heads = 6,
         .n_kv_heads = 2,
         .window = 5,
         .pos = {40, 2},
         .qscale = 1.0f},
    };
    kc_rng r = {31337};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const paged_case *c = &cases[ci];
        const int T = c->n_tokens, hd = c->head_dim;
        const float af = ci == 3 ? 0.8f : 1.0f;
        paged_host h;
        paged_host_init(&h, c, &r, paged_end(c) + 3);
        float inv_freq[64] = {0};
        for (int i = 0; i < hd / 2; i++)
            inv_freq[i] = (float)(1.0 / pow(10000.0, 2.0 * i / hd));
        float *q = kc_rand(&r, h.q_n, 1.0f), *k = kc_rand(&r, h.kv_n, 1.0f),
              *v = kc_rand(&r, h.kv_n, 1.0f);
        gb_backend *bs[2] = {cpu, cu};
        void *d[2][9];
        for (int s = 0; s < 2; s++) {
            gb_backend *b = bs[s];
            paged_dev(b, d[s], c, &h, q, k, v);
            d[s][8] = kc_dev(b, inv_freq, sizeof inv_freq);
            gb_paged_args a = paged_args(c, &h, d[s][5], d[s][6]);
            gb_rope_args rq = {.n_tokens = T,
                               .batch = 1,
                               .n_heads = c->n_heads,
                               .head_dim = hd,
                               .inv_freq = d[s][8],
                               .attn_factor = af};
            if (s == 1) {
                rq.batch = c->batch;
                rq.pos0 = -1000; /* must be ignored: positions come from a.pos */
                b->ops->rope_kv_write_paged(b, d[s][0], d[s][1], d[s][2], d[s][3], d[s][4], &rq,
                                            &a);
            } else {
                gb_rope_args rk = rq;
                rk.n_heads = c->n_kv_heads;
                for (int sq = 0; sq < c->batch; sq++) {
                    rq.pos0 = rk.pos0 = c->pos[sq];
                    b->ops->rope(b, (float *)d[s][0] + (size_t)sq * T * c->n_heads * hd, &rq);
                    b->ops->rope(b, (float *)d[s][1] + (size_t)sq * T * c->n_kv_heads * hd, &rk);
                }
                b->ops->kv_write_paged(b, d[s][3], d[s][4], d[s][1], d[s][2], &a);
            }
            b->ops->attention_paged(b, d[s][7], d[s][0], d[s][3], d[s][4], &a);
        }
        kc_pair p = {cpu, cu};
        static const char *names[] = {"q", "k", NULL, "kpool", "vpool", NULL, NULL, "out"};
        const size_t ns[] = {h.q_n, h.kv_n, 0, h.pool_n, h.pool_n, 0, 0, h.q_n};
        for (int i = 0; i < 8; i++) {
            if (!names[i]) continue;
            char what[200];
            snprintf(what, sizeof what,
                     "%s rope_kv_write_paged b=%d t=%d pos=%d,%d,%d,%d bs=%d hd=%d nh=%d nkv=%d "
                     "af=%g: %s",
                     cu->ops->name, c->batch, T, c->pos[0], c->pos[1], c->pos[2], c->pos[3],
                     c->block_size, hd, c->n_heads, c->n_kv_heads, af, names[i]);
            kc_check_outputs(&p, what, d[0][i], d[1][i], ns[i], 1e-4);
        }
        for (int s = 0; s < 2; s++)
            free_dev(bs[s], d[s], 9);
        free(q), free(k), free(v);
        paged_host_free(&h);
    }
}

/* A continuous-batching decode step (kv_write_paged + attention_paged) captured once into a
 * CUDA graph and replayed over several steps with new positions, block tables and inputs
 * uploaded in between (the kernels read them on the device), against the CPU reference
 * pools and outputs updated by the same steps. */
static void paged_graph_replay(gb_backend *ref, gb_backend *cu) {
    const paged_case c = {.batch = 3,
                          .n_tokens = 1,
                          .block_size = 7,
                          .head_dim = 64,
                          .n_heads = 8,
                          .n_kv_heads = 2,
                          .window = 9,
                          .pos = {5, 0, 30},
                          .qscale = 1.0f};
    const int steps = 6;
    kc_rng r = {99};
    paged_host h;
    paged_host_init(&h, &c, &r, paged_end(&c) + steps);
    gb_backend *bs[2] = {ref, cu};
    const size_t tn = (size_t)c.batch * h.max_blocks;
    void *d[2][8];
    for (int s = 0; s < 2; s++)
        paged_dev(bs[s], d[s], &c, &h, NULL, NULL, NULL);
    gb_error err = {0};
    gb_paged_args ac = paged_args(&c, &h, d[1][5], d[1][6]);
    CHECK_OK(cu->ops->graph_begin(cu, &err), &err);
    cu->ops->kv_write_paged(cu, d[1][3], d[1][4], d[1][1], d[1][2], &ac);
    cu->ops->attention_paged(cu, d[1][7], d[1][0], d[1][3], d[1][4], &ac);
    CHECK_OK(cu->ops->graph_end(cu, &err), &err);
    int32_t *tables = malloc(sizeof(int32_t) * tn);
    for (int step = 0; step < steps; step++) {
        float *q = kc_rand(&r, h.q_n, 2.0f), *k = kc_rand(&r, h.kv_n, 1.0f),
              *v = kc_rand(&r, h.kv_n, 1.0f);
        int32_t pos[4] = {c.pos[0] + step, c.pos[1] + step, c.pos[2] + step, 0};
        /* the sequences swap rows every step (as requests come and go in a batch) */
        const int rot = step % c.batch;
        int32_t pos_rot[4] = {0};
        for (int s = 0; s < c.batch; s++) {
            const int from = (s + rot) % c.batch;
            pos_rot[s] = pos[from];
            memcpy(tables + (size_t)s * h.max_blocks, h.tables + (size_t)from * h.max_blocks,
                   sizeof(int32_t) * h.max_blocks);
        }
        for (int s = 0; s < 2; s++) {
            gb_backend *b = bs[s];
            upload_qkv(b, d[s], q, k, v, h.q_n, h.kv_n);
            b->ops->upload(b, d[s][5], pos_rot, sizeof pos_rot, &err);
            b->ops->upload(b, d[s][6], tables, sizeof(int32_t) * tn, &err);
        }
        gb_paged_args ar = paged_args(&c, &h, d[0][5], d[0][6]);
        ref->ops->kv_write_paged(ref, d[0][3], d[0][4], d[0][1], d[0][2], &ar);
        ref->ops->attention_paged(ref, d[0][7], d[0][0], d[0][3], d[0][4], &ar);
        CHECK_OK(cu->ops->graph_launch(cu, &err), &err);
        kc_pair p = {ref, cu};
        char what[96];
        snprintf(what, sizeof what, "paged graph replay step=%d", step);
        check_step(&p, what, d[0], d[1], h.q_n, h.pool_n, "pool");
        free(q), free(k), free(v);
    }
    free(tables);
    for (int s = 0; s < 2; s++)
        free_dev(bs[s], d[s], 8);
    paged_host_free(&h);
}

/* Errors come back through gb_error, naming the problem. */
static void errors(void) {
    gb_backend_options o = {0};
    o.device_index = 99;
    gb_backend *b = NULL;
    gb_error err = {0};
    CHECK(gb_backend_cuda_create(&o, &b, &err) == GB_ERR_DEVICE && b == NULL);
    CHECK_MSG(strstr(err.msg, "device 99") != NULL, "got \"%s\"", err.msg);
    gb_backend *c = mk(1, 0, NULL);
    void *p = NULL;
    CHECK(c->ops->alloc(c, (size_t)1 << 50, &p, &err) != 0 && p == NULL);
    CHECK_MSG(strstr(err.msg, "cannot allocate") != NULL, "got \"%s\"", err.msg);
    CHECK_OK(c->ops->sync(c, &err), &err); /* an allocation failure is not sticky */
    gb_backend_free(c);
}

int main(void) {
    if (!gb_backend_cuda_available()) {
        const char *need = getenv("GB_CUDA_TESTS");
        fprintf(stderr, "no usable CUDA device%s\n", need && *need == '1' ? "" : ": skipped");
        return need && *need == '1' ? 1 : 77;
    }
    gb_backend *ref = mk(0, 0, NULL);
    /* every op, both tables, GEMV path for every n <= 8 and cuBLASLt for every n */
    const char *paths[2] = {"8", "0"};
    for (int k = 0; k < 2; k++)
        for (int pth = 0; pth < 2; pth++) {
            gb_backend *cu = mk(1, k, paths[pth]);
            fprintf(stderr, "-- cuda %s, GB_CUDA_GEMV_MAX=%s\n", cu->ops->name, paths[pth]);
            kc_compare_backends(ref, cu, 1e-4);
            big_shapes(ref, cu);
            big_attn(ref, cu);
            if (pth == 0) paged_ops(ref, cu); /* no matmul: one GEMV setting suffices */
            gb_error err = {0};
            CHECK_OK(cu->ops->sync(cu, &err), &err);
            gb_backend_free(cu);
        }
    gb_backend *cu = mk(1, 1, NULL);
    for (int impl = 0; impl < 3; impl++) {
        graph_replay(ref, cu, (gb_attn_impl)impl, 0);
        CHECK(cu->ops->rope_kv_attention != NULL);
        if (cu->ops->rope_kv_attention) {
            graph_replay(ref, cu, (gb_attn_impl)impl, 1);
            graph_replay(ref, cu, (gb_attn_impl)impl, 2);
            graph_replay(ref, cu, (gb_attn_impl)impl, 3);
        }
    }
    /* gate/up of one decode row with one-round rows takes 4 output rows per warp by default
     * (gb_gate_up_rpw): every op again with 1 and 2 rows per warp, and with ks = 2 (one warp on
     * the gate row, one on the up row, as for batches); and with the down GEMV triggering after
     * its loads instead of at its start (GB_CUDA_EARLY_DOWN=0) */
    static const char *gateup[][2] = {{"GB_CUDA_GATEUP_RPW", "1"},
                                      {"GB_CUDA_GATEUP_RPW", "2"},
                                      {"GB_CUDA_GATEUP_KS", "2"},
                                      {"GB_CUDA_EARLY_DOWN", "0"}};
    for (int i = 0; i < 4; i++) {
        setenv(gateup[i][0], gateup[i][1], 1);
        gb_backend *cr = mk(1, 1, NULL);
        unsetenv(gateup[i][0]);
        fprintf(stderr, "-- cuda %s, %s=%s\n", cr->ops->name, gateup[i][0], gateup[i][1]);
        kc_compare_backends(ref, cr, 1e-4);
        gb_backend_free(cr);
    }
    /* the generic decode attention kernel (runtime head_dim) at the head_dims that have
     * kernels of their own: the same cases, against the same reference */
    setenv("GB_CUDA_ATTN_GENERIC", "1", 1);
    gb_backend *cug = mk(1, 1, NULL);
    unsetenv("GB_CUDA_ATTN_GENERIC");
    big_attn(ref, cug);
    graph_replay(ref, cug, GB_ATTN_FLASH, 1);
    graph_replay(ref, cug, GB_ATTN_FLASH, 3);
    gb_backend_free(cug);
    paged_graph_replay(ref, cu);
    step_tail(cu);
    setenv("GB_CUDA_STEP_TAIL", "0", 1); /* the same through set_pos kernels and copies */
    gb_backend *cun = mk(1, 1, NULL);
    unsetenv("GB_CUDA_STEP_TAIL");
    step_tail(cun);
    gb_backend_free(cun);
    paged_split(ref, 0);
    paged_split(ref, 1); /* the generic split kernel at head_dim 64/128 */
    paged_rope(ref, cu);
    size_t in_use = 0, peak = 0;
    cu->ops->memory_stats(cu, &in_use, &peak);
    CHECK(peak >= in_use && peak > 0);
    gb_backend_free(cu);
    errors();
    gb_backend_free(ref);
    TEST_MAIN_END();
}
