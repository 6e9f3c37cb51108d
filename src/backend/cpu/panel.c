/* In-place repack of bf16 weights into the panel layout (see panel.h). */
#include "backend/cpu/panel.h"

#include "util/error.h"

#include <stdlib.h>
#include <string.h>

int gb_cpu_panel_eligible(const gb_weight *w) {
    return w->dtype == GB_BF16 && w->owned && w->data == w->owned && !w->packed && w->cols > 0 &&
           w->cols % 16 == 0 && w->rows >= GB_PANEL_ROWS;
}

int gb_cpu_panel_pack(gb_weight *w, gb_error *err) {
    const int64_t K = w->cols, P = w->rows & ~(int64_t)(GB_PANEL_ROWS - 1);
    const size_t panel = (size_t)GB_PANEL_ROWS * (size_t)K; /* elements */
    /* Panels occupy the bytes their rows did, so each one is permuted through a copy of
     * itself: 64-256 KiB of temporary memory, never a second copy of the matrix. */
    uint16_t *tmp = malloc(panel * sizeof(uint16_t));
    if (!tmp) return gb_error_set(err, GB_ERR_NOMEM, "out of memory repacking a weight");
    uint16_t *d = w->owned;
    const int64_t K2 = K / 2; /* k-pairs: each (even, odd) pair moves as one 32-bit word */
    for (int64_t p = 0; p < P; p += GB_PANEL_ROWS) {
        uint16_t *dst = d + (size_t)p * (size_t)K;
        memcpy(tmp, dst, panel * sizeof(uint16_t));
        uint32_t *o = (uint32_t *)(void *)dst;
        const uint32_t *in = (const uint32_t *)(void *)tmp;
        for (int64_t q = 0; q < K2; q++)
            for (int64_t i = 0; i < GB_PANEL_ROWS; i++)
                o[q * GB_PANEL_ROWS + i] = in[i * K2 + q];
    }
    free(tmp);
    w->packed = w->owned;
    return 0;
}
