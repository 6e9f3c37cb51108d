/* Warm generation timings on the GPU (bench/cuda.sh): the model is loaded once, then for each
 * config (batch, attention, kernelize, compile mode) two warm-up generations and five timed
 * ones of the benchmark shape (prompt of s random ids, n new tokens). Prints per config the
 * median TTFT (prefill + first token on the host), the median mean inter-token latency and
 * decode tokens/s (batch / ITL), like benchmark_v2's warm iterations.
 * Mode "static" rows run gb_generate (one static batch); mode "cb" rows run gb_generate_cb
 * (continuous batching over the paged KV cache, default options: 16-position blocks, every
 * request admitted at once), so all requests are prefilled in step 0 and the steps after it
 * are decode steps of the whole batch: TTFT, ITL and tok/s (aggregate decode tokens/s of the
 * batch) mean the same as for the static rows. CB takes no compile mode (no CUDA graph) and
 * one paged attention kernel for every attention value (GB_CUDA_PAGED_SPLIT picks the split).
 *
 *   bench_cuda_generate PRESET|DIR [s n [best|cb]]   e.g. llama-3.2-1b 128 128
 * best: only batch 1, flash, kernelized, reduce-overhead; cb: only the cb rows.
 * GB_BENCH_REPLAY=1 with best: then the captured decode step replayed back to back bare (the
 * device time of a step, no host wait between steps), after a set_pos each, and with the ids'
 * downloads as the pipelined decode runs them: against them the ITL shows what the host loop
 * adds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/model.h" /* switches attention / compile mode on a loaded model (bench only) */
#include "model/presets.h"
#include "util/clock.h"
#include "util/fileio.h"

typedef struct timing {
    int64_t t0, first, last;
} timing;

static void on_token(void *user, int step, const int32_t *ids, int batch, int64_t t_ns) {
    (void)ids, (void)batch;
    timing *t = user;
    if (step == 0) t->first = t_ns;
    t->last = t_ns;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The best config's captured step (m holds it after a graph generation), replayed k times
 * back to back over the positions of the last k decode steps: what = 0 the graphs only, 1 a
 * set_pos before each (as gb_generate: a backend whose graph advances the position itself
 * launches nothing for it), 2 also the ids' download as the pipelined decode runs it (started
 * after each step, the previous step's finished once the next is issued). Microseconds per
 * step. */
static double replay_us(gb_model *m, int what, int k, gb_error *err) {
    gb_backend *be = m->be;
    const int pos0 = m->kv.cap - 1 - k > 0 ? m->kv.cap - 1 - k : 0;
    be->ops->set_pos(be, pos0);
    if (be->ops->sync(be, err)) return -1;
    const int64_t t0 = gb_clock_ns();
    int32_t id;
    for (int i = 0; i < k; i++) {
        if (what >= 1) be->ops->set_pos(be, pos0 + i);
        if (be->ops->graph_launch(be, err)) return -1;
        if (what >= 2 &&
            (be->ops->download_start(be, i & 1, m->ws.ids, sizeof id, err) ||
             (i >= 1 && be->ops->download_finish(be, (i - 1) & 1, &id, sizeof id, err))))
            return -1;
    }
    if (what >= 2 && be->ops->download_finish(be, (k - 1) & 1, &id, sizeof id, err)) return -1;
    if (be->ops->sync(be, err)) return -1;
    be->ops->set_pos(be, -1);
    return (gb_clock_ns() - t0) * 1e-3 / k;
}

typedef struct cfg {
    int batch;
    gb_attn_impl attn;
    int kernelize, compile; /* compile: 0 none, 1 default (static cache), 2 reduce-overhead */
    int cb;                 /* 1: gb_generate_cb */
} cfg;

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_cuda_generate PRESET|DIR [s n [best|cb]]\n");
        return 2;
    }
    const int S = argc > 2 ? atoi(argv[2]) : 128, N = argc > 3 ? atoi(argv[3]) : 128;
    char dir[4096];
    gb_error err = {0};
    if (gb_is_file(gb_strdup_printf("%s/config.json", argv[1]))) /* leak: one path, once */
        snprintf(dir, sizeof dir, "%s", argv[1]);
    else if (gb_preset_ensure(argv[1], dir, sizeof dir, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    static const cfg cfgs[] = {
        {1, GB_ATTN_EAGER, 0, 0, 0}, {1, GB_ATTN_SDPA, 0, 0, 0},   {1, GB_ATTN_FLASH, 0, 0, 0},
        {1, GB_ATTN_FLASH, 1, 0, 0}, {1, GB_ATTN_FLASH, 1, 1, 0},  {1, GB_ATTN_SDPA, 0, 2, 0},
        {1, GB_ATTN_FLASH, 1, 2, 0}, {8, GB_ATTN_FLASH, 1, 2, 0},  {32, GB_ATTN_FLASH, 1, 2, 0},
        {8, GB_ATTN_FLASH, 1, 0, 1}, {32, GB_ATTN_FLASH, 1, 0, 1},
    };
    enum { BEST = 6, CB0 = 9 }; /* first row of "best", of "cb" */
    static const char *an[] = {"eager", "sdpa", "flash_attention_2"};
    static const char *cn[] = {"none", "default", "reduce-overhead"};
    printf("%-14s %5s %-6s %-18s %4s %-16s %9s %9s %10s %9s\n", "model", "batch", "mode", "attn",
           "kern", "compile", "ttft_ms", "itl_ms", "tok/s", "peak_GiB");
    gb_model *m = NULL;
    int loaded_kern = -1, rc = 0;
    const int best = argc > 4 && !strcmp(argv[4], "best"),
              cb_only = argc > 4 && !strcmp(argv[4], "cb");
    const size_t n_cfgs = sizeof cfgs / sizeof cfgs[0];
    const size_t c0 = best ? BEST : cb_only ? CB0 : 0, c1 = best ? BEST + 1 : n_cfgs;
    for (size_t c = c0; c < c1 && !rc; c++) {
        const cfg *k = &cfgs[c];
        /* one load per kernel set; attention and compile mode are switched on the model */
        if (loaded_kern != k->kernelize) {
            gb_model_free(m);
            m = NULL;
            gb_engine_options o;
            gb_engine_options_default(&o);
            o.device = GB_DEVICE_CUDA;
            o.dtype = GB_BF16;
            o.kernelize = k->kernelize;
            if (gb_model_load(dir, &o, &m, &err)) {
                fprintf(stderr, "load %s: %s\n", dir, err.msg);
                return 1;
            }
            loaded_kern = k->kernelize;
        }
        m->opts.attn = k->attn;
        m->opts.static_cache = k->compile >= 1;
        m->opts.cuda_graph = k->compile == 2;
        const int vocab = gb_model_get_config(m)->vocab_size;
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)k->batch * S);
        int32_t *out = malloc(sizeof(int32_t) * (size_t)k->batch * N);
        uint64_t r = 12345;
        for (int i = 0; i < k->batch * S; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            ids[i] = (int32_t)((r >> 33) % (uint64_t)vocab);
        }
        double ttft[5], itl[5];
        for (int it = 0; it < 7 && !rc; it++) {
            timing t = {0};
            gb_generate_params p = {.prompt_ids = ids,
                                    .batch = k->batch,
                                    .prompt_len = S,
                                    .new_tokens = N,
                                    .on_token = on_token,
                                    .user = &t};
            t.t0 = gb_clock_ns();
            rc = k->cb ? gb_generate_cb(m, &p, NULL, out, &err) : gb_generate(m, &p, out, &err);
            if (it >= 2) {
                ttft[it - 2] = (t.first - t.t0) * 1e-6;
                itl[it - 2] = (t.last - t.first) * 1e-6 / (N - 1);
            }
        }
        if (rc) {
            fprintf(stderr, "generate: %s\n", err.msg);
            break;
        }
        qsort(ttft, 5, sizeof ttft[0], cmp_d);
        qsort(itl, 5, sizeof itl[0], cmp_d);
        gb_model_memory mem;
        gb_model_get_memory(m, &mem);
        printf("%-14s %5d %-6s %-18s %4d %-16s %9.2f %9.3f %10.1f %9.2f\n", argv[1], k->batch,
               k->cb ? "cb" : "static", an[k->attn], k->kernelize, cn[k->compile], ttft[2], itl[2],
               k->batch * 1e3 / itl[2], mem.peak_device_bytes / 1073741824.0);
        fflush(stdout);
        free(ids);
        free(out);
        const char *rep = getenv("GB_BENCH_REPLAY");
        if (!rc && best && rep && *rep == '1' && k->compile == 2) {
            double us[3];
            for (int w = 0; w < 3 && !rc; w++)
                rc = (us[w] = replay_us(m, w, N - 8 > 1 ? N - 8 : 1, &err)) < 0;
            if (!rc)
                printf("replay (us per step): graph %.1f, set_pos + graph %.1f, + ids copy %.1f; "
                       "ITL %.1f\n",
                       us[0], us[1], us[2], itl[2] * 1e3);
            else
                fprintf(stderr, "replay: %s\n", err.msg);
        }
    }
    gb_model_free(m);
    return rc ? 1 : 0;
}
