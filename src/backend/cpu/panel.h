/* Panel layout of bf16 weight matrices for the kernelized CPU set: repacked once at load,
 * in place, so the decode (n >= 2) and prefill GEMMs run an outer-product register tile
 * with no per-call weight packing.
 *
 * Layout of W[rows, cols] (bf16, cols % 16 == 0): the first P = rows & ~15 rows are stored
 * as panels of 16 rows; panel p holds rows 16p..16p+15 in the same 16 * cols elements they
 * occupied row-major, ordered by k-pair: for k-pair q (k = 2q, 2q+1), 16 32-bit words, word
 * i = W[16p + i][2q] | W[16p + i][2q + 1] << 16. So element (r, k), r < P, lies at
 *   (r / 16) * 16 * cols + (k / 2) * 32 + (r % 16) * 2 + k % 2     (uint16 index)
 * and rows r >= P stay row-major at r * cols + k, where they were. A 32-byte load of one
 * k-pair gives 8 rows' (even, odd) pairs: `<< 16` widens the even k, `& 0xffff0000` the odd
 * k, for 8 consecutive output rows (the vector dimension of the tile).
 *
 * A packed weight has w->packed == w->data (the marker; there is no second buffer). Every
 * reader of weight elements goes through gb_weight_at (cpu_ref.h), which knows the layout,
 * so the reference kernels and the tests read packed weights unchanged. */
#ifndef GB_BACKEND_CPU_PANEL_H
#define GB_BACKEND_CPU_PANEL_H

#include <stdint.h>
#include "backend/backend.h"
#include "backend/cpu/threadpool.h"

#define GB_PANEL_ROWS 16

/* Whether w can be repacked: bf16, owned by the backend (not the read-only mapping),
 * cols % 16 == 0 and at least one full panel. */
int gb_cpu_panel_eligible(const gb_weight *w);
/* Repacks w in place into the panel layout (one panel-sized temporary buffer); returns 0,
 * or GB_ERR_NOMEM with w unchanged. */
int gb_cpu_panel_pack(gb_weight *w, gb_error *err);
/* The same on up to nth threads of pool (NULL: on the caller), each with its own temporary:
 * the repack of a 1B model's matrices took ~1.3 s of one core. */
int gb_cpu_panel_pack_pool(gb_weight *w, gb_threadpool *pool, int nth, gb_error *err);
/* Token tiles of the panel GEMMs: n token rows in ceil(n / tmax) tiles whose sizes differ by
 * at most one (n = 8, tmax 6 -> 4 + 4, not 6 + 2: a short tile does little work per weight
 * load). Tile g holds rows [*t0, *t0 + *nt). */
static inline int gb_panel_tiles(int n, int tmax) {
    return (n + tmax - 1) / tmax;
}
static inline void gb_panel_tile_at(int n, int tmax, int g, int *t0, int *nt) {
    const int tiles = gb_panel_tiles(n, tmax), base = n / tiles, rem = n % tiles;
    *t0 = g * base + (g < rem ? g : rem);
    *nt = base + (g < rem);
}
/* The end (exclusive) of the group of tiles from g0 whose rows span at most max_rows (at least
 * tile g0): the tiles that share one pass over a weight block. */
static inline int gb_panel_tile_group(int n, int tmax, int g0, int max_rows) {
    const int tiles = gb_panel_tiles(n, tmax);
    int tb0, nt, g1;
    gb_panel_tile_at(n, tmax, g0, &tb0, &nt);
    for (g1 = g0 + 1; g1 < tiles; g1++) {
        int t0;
        gb_panel_tile_at(n, tmax, g1, &t0, &nt);
        if (t0 + nt - tb0 > max_rows) break;
    }
    return g1;
}
/* Rows of w stored as panels (0 when w is row-major). */
static inline int64_t gb_cpu_panel_rows(const gb_weight *w) {
    return w->packed ? w->rows & ~(int64_t)(GB_PANEL_ROWS - 1) : 0;
}
/* uint16 index of element (r, k) of a packed weight with `cols` columns and `prows` panel rows. */
static inline int64_t gb_cpu_panel_index(int64_t cols, int64_t prows, int64_t r, int64_t k) {
    if (r >= prows) return r * cols + k;
    return (r / GB_PANEL_ROWS) * GB_PANEL_ROWS * cols + (k / 2) * (2 * GB_PANEL_ROWS) +
           (r % GB_PANEL_ROWS) * 2 + k % 2;
}

#endif
