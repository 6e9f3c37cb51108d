/* Continuous batching (engine/cb.c, engine/paged.c, backend/cpu/ref_paged.c):
 * - per fixture model, float32: gb_generate_cb with 3 requests gives each request the
 *   Hugging Face greedy tokens (up to the first low-margin step, as the engine tests) and
 *   exactly gb_generate's tokens, with different prompts per request;
 * - block boundaries: a 37-token prompt + 20 new tokens over 16-position blocks;
 * - scheduling: pools too small to admit everyone at once, and a max-batch limit, still give
 *   every request gb_generate's tokens; the on_token steps follow the documented policy;
 * - the paged attention kernels (reference and kernelized) against the contiguous-cache
 *   reference attention, with scrambled block tables and a sliding window;
 * - bad arguments fail with a message;
 * - the block pool's free list refuses ids it does not own and releases past full. */
#include "engine_fixture.h"

#include "backend/cpu/cpu_ref.h"
#include "engine/paged.h"

/* ---- on_token recording ---- */

typedef struct steps {
    int n, tokens, max_batch, bad_order;
    int batch[512];
    int64_t last_t;
} steps;

static void on_step(void *user, int step, const int32_t *ids, int batch, int64_t t) {
    steps *s = user;
    (void)ids;
    if (step != s->n || t < s->last_t) s->bad_order++;
    if (s->n < 512) s->batch[s->n] = batch;
    s->n++;
    s->tokens += batch;
    if (batch > s->max_batch) s->max_batch = batch;
    s->last_t = t;
}

static int cb_run(gb_model *m, const int32_t *prompt, int batch, int T, int N,
                  const gb_cb_options *o, int32_t *out, float *last, steps *st) {
    gb_generate_params p = {.prompt_ids = prompt,
                            .batch = batch,
                            .prompt_len = T,
                            .new_tokens = N,
                            .on_token = st ? on_step : NULL,
                            .user = st,
                            .last_logits = last};
    gb_error err;
    int rc = gb_generate_cb(m, &p, o, out, &err);
    CHECK_MSG(rc == 0, "generate_cb: %s", err.msg);
    return rc;
}

static int gen_run(gb_model *m, const int32_t *prompt, int batch, int T, int N, int32_t *out) {
    gb_generate_params p = {.prompt_ids = prompt, .batch = batch, .prompt_len = T, .new_tokens = N};
    gb_error err;
    int rc = gb_generate(m, &p, out, &err);
    CHECK_MSG(rc == 0, "generate: %s", err.msg);
    return rc;
}

/* The HF greedy tokens up to (and including) the first step whose reference margin is below
 * 1e-3, as fx_check_generate. */
static void check_greedy(const char *what, const int32_t *got, int n, const fx_ref *r) {
    for (int i = 0; i < n && i < 32; i++) {
        if (got[i] != r->greedy[i]) {
            CHECK_MSG(r->margins[i] < 1e-3f,
                      "%s: greedy token %d: expected %d, got %d (margin %.3g)", what, i,
                      r->greedy[i], got[i], r->margins[i]);
            return;
        }
        if (r->margins[i] < 1e-3f) return;
    }
}

static void check_same(const char *what, const int32_t *got, const int32_t *want, int n) {
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) {
            CHECK_MSG(0, "%s: token %d: expected %d (gb_generate), got %d", what, i, want[i],
                      got[i]);
            return;
        }
    CHECK(1);
}

/* ---- per model: the HF reference and gb_generate ---- */

static void model_case(const char *name, int N, int kernelize) {
    char *dir = fx_build_model(name);
    fx_ref r;
    fx_load_ref(name, &r);
    fx_case c = {GB_F32, GB_ATTN_SDPA, kernelize, 0, 0};
    gb_model *m = fx_load(dir, &c);
    char what[96];
    if (m) {
        /* requests 0 and 2: the reference prompt; request 1: the same tokens reversed */
        const int B = 3, T = 128;
        int32_t prompt[3 * 128], out[3 * 32], want[32];
        for (int t = 0; t < T; t++) {
            prompt[t] = prompt[2 * T + t] = r.prompt[t];
            prompt[T + t] = r.prompt[T - 1 - t];
        }
        float *last = malloc(r.vocab * sizeof(float));
        steps st = {0};
        if (cb_run(m, prompt, B, T, N, NULL, out, last, &st) == 0) {
            double rel = fx_rel_l2(last, r.last_logits, r.vocab);
            snprintf(what, sizeof what, "%s cb %s", name, kernelize ? "kernelized" : "reference");
            CHECK_MSG(rel <= 1e-4, "%s: last-position logits relative L2 %.3g > 1e-4", what, rel);
            for (int b = 0; b < B; b += 2) {
                snprintf(what, sizeof what, "%s cb request %d", name, b);
                check_greedy(what, out + b * N, N, &r);
            }
            /* the default pool admits all: gb_generate's steps, every request in each */
            CHECK_MSG(st.n == N && st.max_batch == B && st.tokens == B * N && !st.bad_order,
                      "%s: %d steps of up to %d ids (%d in all), expected %d of %d", name, st.n,
                      st.max_batch, st.tokens, N, B);
            gb_model_memory mem;
            gb_model_get_memory(m, &mem);
            const gb_model_config *cfg = gb_model_get_config(m);
            size_t blocks = (size_t)B * ((T + N - 1 + 15) / 16);
            size_t kv = 2 * blocks * 16 * cfg->num_layers * cfg->num_kv_heads * cfg->head_dim * 4;
            CHECK_MSG(mem.kv_bytes == kv, "%s: kv bytes: expected %zu (pool), got %zu", name, kv,
                      mem.kv_bytes);
            for (int b = 0; b < B; b++) {
                if (gen_run(m, prompt + b * T, 1, T, N, want)) break;
                snprintf(what, sizeof what, "%s cb request %d vs generate", name, b);
                check_same(what, out + b * N, want, N);
            }
        }
        free(last);
        gb_model_free(m);
    }
    free(r.last_logits);
    fx_rmtree(dir);
    free(dir);
}

/* ---- block boundaries and scheduling on one model ---- */

static void schedule_cases(const char *name) {
    char *dir = fx_build_model(name);
    fx_ref r;
    fx_load_ref(name, &r);
    fx_case c = {GB_F32, GB_ATTN_SDPA, 1, 0, 0};
    gb_model *m = fx_load(dir, &c);
    if (!m) return;
    enum { B = 3, T = 37, N = 20 };
    int32_t prompt[B * T], out[B * N], want[B * N];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            prompt[b * T + t] = r.prompt[(t + 11 * b) % 128]; /* three different prompts */
    int ok = 1;
    for (int b = 0; b < B && ok; b++)
        ok = gen_run(m, prompt + b * T, 1, T, N, want + b * N) == 0;
    /* 37 + 19 positions = 4 blocks of 16 per request */
    struct {
        gb_cb_options o;
        int steps, max_batch;
        const char *what;
    } cases[] = {
        {{16, 0, 0}, N, 3, "default pool (12 blocks)"},
        {{16, 5, 0}, 3 * N, 1, "pool of 5 blocks: one request at a time"},
        {{16, 9, 0}, 2 * N, 2, "pool of 9 blocks: two, then one"},
        {{16, 0, 2}, 2 * N, 2, "max batch 2"},
        {{7, 0, 0}, N, 3, "blocks of 7 positions"},
        {{64, 0, 0}, N, 3, "one block per request"},
        {{1, 0, 0}, N, 3, "blocks of 1 position"},
    };
    for (size_t i = 0; ok && i < sizeof cases / sizeof cases[0]; i++) {
        steps st = {0};
        memset(out, 0xff, sizeof out);
        if (cb_run(m, prompt, B, T, N, &cases[i].o, out, NULL, &st)) continue;
        char what[96];
        for (int b = 0; b < B; b++) {
            snprintf(what, sizeof what, "%s %s request %d", name, cases[i].what, b);
            check_same(what, out + b * N, want + b * N, N);
        }
        CHECK_MSG(st.n == cases[i].steps && st.max_batch == cases[i].max_batch &&
                      st.tokens == B * N && !st.bad_order,
                  "%s: %d steps of up to %d ids (%d in all), expected %d steps of up to %d",
                  cases[i].what, st.n, st.max_batch, st.tokens, cases[i].steps, cases[i].max_batch);
    }
    /* pool of 9: requests 0 and 1 run together, request 2 waits for a free slot of blocks */
    {
        steps st = {0};
        gb_cb_options o = {16, 9, 0};
        if (!cb_run(m, prompt, B, T, N, &o, out, NULL, &st))
            CHECK_MSG(st.batch[0] == 2 && st.batch[N - 1] == 2 && st.batch[N] == 1,
                      "pool of 9: step batches %d, %d, %d; expected 2, 2, 1", st.batch[0],
                      st.batch[N - 1], st.batch[N]);
    }
    /* one new token: prefill only */
    {
        int32_t one[B];
        steps st = {0};
        if (!cb_run(m, prompt, B, T, 1, NULL, one, NULL, &st))
            for (int b = 0; b < B; b++)
                CHECK_MSG(one[b] == want[b * N], "1 token: request %d: expected %d, got %d", b,
                          want[b * N], one[b]);
        CHECK_EQ_INT(st.n, 1);
    }
    /* bad arguments */
    {
        gb_error err;
        gb_generate_params p = {.prompt_ids = prompt, .batch = B, .prompt_len = T, .new_tokens = N};
        gb_cb_options tiny = {16, 3, 0};
        CHECK_EQ_INT(gb_generate_cb(m, &p, &tiny, out, &err), GB_ERR_INVALID);
        CHECK_MSG(strstr(err.msg, "cannot hold") != NULL, "message: %s", err.msg);
        gb_cb_options neg = {-1, 0, 0};
        CHECK_EQ_INT(gb_generate_cb(m, &p, &neg, out, &err), GB_ERR_INVALID);
        int32_t bad[B * T];
        memcpy(bad, prompt, sizeof bad);
        bad[T + 3] = 1 << 30;
        p.prompt_ids = bad;
        CHECK_EQ_INT(gb_generate_cb(m, &p, NULL, out, &err), GB_ERR_INVALID);
        CHECK_MSG(strstr(err.msg, "outside the vocabulary") != NULL, "message: %s", err.msg);
        p.prompt_ids = prompt;
        p.new_tokens = 0;
        CHECK_EQ_INT(gb_generate_cb(m, &p, NULL, out, &err), GB_ERR_INVALID);
    }
    CHECK(gb_model_supports_cb(m));
    gb_model_free(m);
    free(r.last_logits);
    fx_rmtree(dir);
    free(dir);
}

/* ---- the paged kernels against the contiguous reference ---- */

static float frand(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static void kernel_case(int window) {
    enum { S = 2, T = 5, P0 = 30, NH = 4, NKV = 2, HD = 8, BS = 4, CAP = P0 + T };
    enum { MB = (CAP + BS - 1) / BS, NB = S * MB + 3 };
    const int kvw = NKV * HD, qw = NH * HD;
    uint32_t seed = 12345u + (uint32_t)window;
    float *q = malloc(sizeof(float) * S * T * qw), *kn = malloc(sizeof(float) * S * T * kvw),
          *vn = malloc(sizeof(float) * S * T * kvw);
    float *kc = calloc((size_t)S * CAP * kvw, sizeof(float)),
          *vc = calloc((size_t)S * CAP * kvw, sizeof(float));
    float *kp = calloc((size_t)NB * BS * kvw, sizeof(float)),
          *vp = calloc((size_t)NB * BS * kvw, sizeof(float));
    float *o1 = malloc(sizeof(float) * S * T * qw), *o2 = malloc(sizeof(float) * S * T * qw);
    int32_t tables[S * MB], pos[S] = {P0, P0};
    for (int i = 0; i < S * MB; i++)             /* scrambled, skipping some blocks */
        tables[i] = (int32_t)((i * 5 + 3) % NB); /* 5 and NB = 21 coprime: distinct */
    gb_backend *be;
    gb_error err;
    gb_backend_options bo = {0};
    if (gb_backend_cpu_create(&bo, &be, &err) != 0) return;
    gb_attn_args aa = {.batch = S,
                       .n_tokens = 1,
                       .cap = CAP,
                       .n_heads = NH,
                       .n_kv_heads = NKV,
                       .head_dim = HD,
                       .scale = 0.35f,
                       .sliding_window = window};
    gb_paged_args pa = {.batch = S,
                        .n_tokens = 1,
                        .pos = pos,
                        .block_tables = tables,
                        .max_blocks = MB,
                        .block_size = BS,
                        .n_heads = NH,
                        .n_kv_heads = NKV,
                        .head_dim = HD,
                        .scale = 0.35f,
                        .sliding_window = window};
    /* history: P0 positions written one token at a time through both paths */
    for (int p = 0; p < P0; p++) {
        for (int i = 0; i < S * kvw; i++)
            kn[i] = frand(&seed), vn[i] = frand(&seed);
        aa.pos0 = p;
        pos[0] = pos[1] = p;
        gb_ref_kv_write(be, kc, vc, kn, vn, &aa);
        gb_ref_kv_write_paged(be, kp, vp, kn, vn, &pa);
    }
    /* then T new tokens per sequence at once (a prefill-shaped call) and attention */
    for (int i = 0; i < S * T * kvw; i++)
        kn[i] = frand(&seed), vn[i] = frand(&seed);
    for (int i = 0; i < S * T * qw; i++)
        q[i] = frand(&seed);
    aa.pos0 = P0;
    aa.n_tokens = pa.n_tokens = T;
    pos[0] = pos[1] = P0;
    gb_ref_kv_write(be, kc, vc, kn, vn, &aa);
    gb_ref_kv_write_paged(be, kp, vp, kn, vn, &pa);
    void *scratch = malloc(gb_ref_attn_scratch_bytes(be, GB_ATTN_SDPA, &aa) + 16);
    gb_ref_attention(be, GB_ATTN_SDPA, o1, q, kc, vc, &aa, scratch);
    gb_ref_attention_paged(be, o2, q, kp, vp, &pa);
    double worst = 0;
    for (int i = 0; i < S * T * qw; i++)
        if (fabs((double)o1[i] - o2[i]) > worst) worst = fabs((double)o1[i] - o2[i]);
    CHECK_MSG(worst < 1e-5, "paged attention (window %d): max |diff| %.3g vs contiguous sdpa",
              window, worst);
    /* the kernelized table's paged attention (threaded, online softmax by block runs) */
    gb_backend *kb;
    gb_backend_options ko = {.kernelize = 1, .threads = 2};
    if (gb_backend_cpu_create(&ko, &kb, &err) == 0) {
        CHECK(kb->ops->attention_paged != NULL && kb->ops->kv_write_paged != NULL);
        memset(o2, 0, sizeof(float) * S * T * qw);
        kb->ops->attention_paged(kb, o2, q, kp, vp, &pa);
        worst = 0;
        for (int i = 0; i < S * T * qw; i++)
            if (fabs((double)o1[i] - o2[i]) > worst) worst = fabs((double)o1[i] - o2[i]);
        CHECK_MSG(worst < 1e-5,
                  "kernelized paged attention (window %d): max |diff| %.3g vs contiguous sdpa",
                  window, worst);
        gb_backend_free(kb);
    }
    /* the pools hold every position at its table's block */
    int bad = 0;
    for (int s = 0; s < S; s++)
        for (int p = 0; p < CAP; p++) {
            size_t prow = ((size_t)tables[s * MB + p / BS] * BS + p % BS) * kvw;
            size_t crow = ((size_t)s * CAP + p) * kvw;
            bad += memcmp(kp + prow, kc + crow, kvw * sizeof(float)) != 0;
            bad += memcmp(vp + prow, vc + crow, kvw * sizeof(float)) != 0;
        }
    CHECK_MSG(bad == 0, "paged kv write: %d rows differ from the contiguous cache", bad);
    gb_backend_free(be);
    free(scratch), free(q), free(kn), free(vn), free(kc), free(vc), free(kp), free(vp);
    free(o1), free(o2);
}

/* The free list alone (no pools needed): alloc pops the lowest ids first, release returns -1
 * and changes nothing for an unknown id or a full list (bookkeeping bugs the scheduler reports
 * as internal errors instead of crashing). */
static void block_pool_case(void) {
    int32_t ids[4];
    gb_paged pg = {0};
    pg.n_blocks = 4;
    pg.free_ids = ids;
    for (int i = 0; i < 4; i++)
        ids[i] = 3 - i;
    pg.n_free = 4;
    CHECK_EQ_INT(gb_paged_block_release(&pg, 0), -1); /* full */
    CHECK_EQ_INT(gb_paged_block_alloc(&pg), 0);
    CHECK_EQ_INT(gb_paged_block_alloc(&pg), 1);
    CHECK_EQ_INT(gb_paged_block_release(&pg, 4), -1); /* not a block of the pool */
    CHECK_EQ_INT(gb_paged_block_release(&pg, -1), -1);
    CHECK_EQ_INT(pg.n_free, 2);
    CHECK_EQ_INT(gb_paged_block_release(&pg, 1), 0);
    CHECK_EQ_INT(gb_paged_block_alloc(&pg), 1);
    CHECK_EQ_INT(gb_paged_block_alloc(&pg), 2);
    CHECK_EQ_INT(gb_paged_block_alloc(&pg), 3);
    CHECK_EQ_INT(gb_paged_block_alloc(&pg), -1); /* exhausted */
}

int main(void) {
    int light = getenv("GB_SANITIZE") != NULL;
    block_pool_case();
    kernel_case(0);
    kernel_case(6);
    static const char *const models[] = {"tiny-llama3", "tiny-gpt2",    "tiny-qwen3",
                                         "tiny-qwen2",  "tiny-mistral", "tiny-llama2-h128"};
    /* under the sanitizers (GB_SANITIZE=1): fewer models and tokens, memory safety is the
     * point there */
    for (size_t i = 0; i < (light ? 3 : sizeof models / sizeof models[0]); i++)
        model_case(models[i], light ? 6 : 32, 0);
    model_case("tiny-llama3", light ? 6 : 32, 1);
    if (!light) schedule_cases("tiny-llama3");
    schedule_cases("tiny-gpt2");
    TEST_MAIN_END();
}
