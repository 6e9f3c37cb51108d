/* CUDA kernels against the CPU reference kernels on random inputs (tests/unit/kernel_check.h),
 * for both CUDA tables (reference, kernelized) and both matmul paths (GEMV for small n,
 * cuBLASLt for large n), plus model-sized shapes and a captured CUDA graph replayed at
 * several device-side positions. Needs a GPU: exits 77 (skipped) without one unless
 * GB_CUDA_TESTS=1 demands it. */
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

/* Model-sized shapes the small harness cases do not reach: K past one unrolled GEMV pass,
 * head_dim 64/128, 128-token prefill, decode over a 256-position cache. */
static void big_shapes(gb_backend *ref, gb_backend *cu) {
    kc_pair p = {ref, cu};
    kc_rng r = {12345};
    static const int mm[][3] = {{1, 2056, 300}, {3, 4104, 129},  {4, 520, 1000},
                                {9, 2048, 96},  {128, 256, 384}, {1, 100, 64}};
    for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++)
        for (int dt = 0; dt < 3; dt++)
            kc_compare_matmul(&p, &r, mm[i][0], mm[i][1], mm[i][2], (gb_dtype)dt, (int)(i & 1),
                              dt == GB_F32 ? 1e-4 : kc_tol16(1e-4, mm[i][1]));
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
 * P..P+5 with set_pos, against the CPU reference run at each explicit position. */
static void graph_replay(gb_backend *ref, gb_backend *cu, gb_attn_impl impl) {
    const int nh = 4, nkv = 2, hd = 64, cap = 64, P = 20, steps = 6, batch = 2;
    kc_rng r = {777 + (uint64_t)impl};
    float inv_freq[32];
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
    cu->ops->rope(cu, d[1][0], &ra);
    gb_rope_args rk = ra;
    rk.n_heads = nkv;
    cu->ops->rope(cu, d[1][1], &rk);
    cu->ops->kv_write(cu, d[1][3], d[1][4], d[1][1], d[1][2], &a);
    cu->ops->attention(cu, impl, d[1][7], d[1][0], d[1][3], d[1][4], &a, d[1][6]);
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
        ref->ops->upload(ref, d[0][0], q, qn * 4, &err);
        ref->ops->upload(ref, d[0][1], k, kn * 4, &err);
        ref->ops->upload(ref, d[0][2], v, kn * 4, &err);
        ref->ops->rope(ref, d[0][0], &rp);
        ref->ops->rope(ref, d[0][1], &rpk);
        ref->ops->kv_write(ref, d[0][3], d[0][4], d[0][1], d[0][2], &ap);
        ref->ops->attention(ref, impl, d[0][7], d[0][0], d[0][3], d[0][4], &ap, d[0][6]);
        /* replay */
        cu->ops->upload(cu, d[1][0], q, qn * 4, &err);
        cu->ops->upload(cu, d[1][1], k, kn * 4, &err);
        cu->ops->upload(cu, d[1][2], v, kn * 4, &err);
        cu->ops->set_pos(cu, P + step);
        CHECK_OK(cu->ops->graph_launch(cu, &err), &err);
        kc_pair p = {ref, cu};
        char what[96];
        snprintf(what, sizeof what, "graph replay impl=%d step=%d out", (int)impl, step);
        kc_check_outputs(&p, what, d[0][7], d[1][7], qn, 1e-4);
        snprintf(what, sizeof what, "graph replay impl=%d step=%d kcache", (int)impl, step);
        kc_check_outputs(&p, what, d[0][3], d[1][3], cn, 1e-4);
        free(q), free(k), free(v);
    }
    cu->ops->set_pos(cu, -1);
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < 8; i++)
            bs[s]->ops->free(bs[s], d[s][i]);
    free(kc0), free(vc0);
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
            gb_error err = {0};
            CHECK_OK(cu->ops->sync(cu, &err), &err);
            gb_backend_free(cu);
        }
    gb_backend *cu = mk(1, 1, NULL);
    for (int impl = 0; impl < 3; impl++)
        graph_replay(ref, cu, (gb_attn_impl)impl);
    size_t in_use = 0, peak = 0;
    cu->ops->memory_stats(cu, &in_use, &peak);
    CHECK(peak >= in_use && peak > 0);
    gb_backend_free(cu);
    errors();
    gb_backend_free(ref);
    TEST_MAIN_END();
}
