/* In-place repack of bf16 weights into the panel layout (see panel.h). */
#include "backend/cpu/panel.h"

#include "util/error.h"

#include <stdlib.h>
#include <string.h>

int gb_cpu_panel_eligible(const gb_weight *w) {
    return w->dtype == GB_BF16 && w->owned && w->data == w->owned && !w->packed && w->cols > 0 &&
           w->cols % 16 == 0 && w->rows >= GB_PANEL_ROWS;
}

/* Panels [p0, p1) (panel indices) permuted in place through tmp (16 * cols elements). */
static void pack_panels(gb_weight *w, int64_t p0, int64_t p1, uint16_t *tmp) {
    const int64_t K = w->cols;
    const size_t panel = (size_t)GB_PANEL_ROWS * (size_t)K; /* elements */
    uint16_t *d = w->owned;
    const int64_t K2 = K / 2; /* k-pairs: each (even, odd) pair moves as one 32-bit word */
    for (int64_t p = p0; p < p1; p++) {
        uint16_t *dst = d + (size_t)p * panel;
        memcpy(tmp, dst, panel * sizeof(uint16_t));
        uint32_t *o = (uint32_t *)(void *)dst;
        const uint32_t *in = (const uint32_t *)(void *)tmp;
        for (int64_t q = 0; q < K2; q++)
            for (int64_t i = 0; i < GB_PANEL_ROWS; i++)
                o[q * GB_PANEL_ROWS + i] = in[i * K2 + q];
    }
}

/* Panels occupy the bytes their rows did, so each one is permuted through a copy of itself:
 * 64-256 KiB of temporary memory per thread, never a second copy of the matrix. */
int gb_cpu_panel_pack(gb_weight *w, gb_error *err) {
    return gb_cpu_panel_pack_pool(w, NULL, 1, err);
}

typedef struct {
    gb_weight *w;
    uint16_t **tmp; /* one per thread */
} pack_ctx;

static void pack_chunk(void *ctx, int64_t begin, int64_t end, int tid) {
    pack_ctx *c = ctx;
    pack_panels(c->w, begin, end, c->tmp[tid]);
}

int gb_cpu_panel_pack_pool(gb_weight *w, gb_threadpool *pool, int nth, gb_error *err) {
    const int64_t n = w->rows / GB_PANEL_ROWS;
    const size_t bytes = (size_t)GB_PANEL_ROWS * (size_t)w->cols * sizeof(uint16_t);
    if (!pool || nth < 1)
        nth = 1;
    else if (nth > gb_threadpool_size(pool))
        nth = gb_threadpool_size(pool);
    uint16_t *tmp[64] = {0};
    if (nth > 64) nth = 64;
    for (int t = 0; t < nth; t++)
        if (!(tmp[t] = malloc(bytes))) {
            nth = t; /* fewer threads, or none */
            break;
        }
    int rc = 0;
    if (nth == 0) {
        rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory repacking a weight");
    } else {
        pack_ctx c = {w, tmp};
        if (nth == 1 || !pool)
            pack_panels(w, 0, n, tmp[0]);
        else /* chunks of 16 panels (1-4 MiB): balanced, and each moves whole pages */
            gb_threadpool_for(pool, nth, n, 16, pack_chunk, &c);
        w->packed = w->owned;
    }
    for (int t = 0; t < 64; t++)
        free(tmp[t]);
    return rc;
}
