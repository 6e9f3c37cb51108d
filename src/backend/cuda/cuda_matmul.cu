/* Matrix products of the CUDA backend.
 *
 * Decode (n <= gemv_max_n rows): GEMV kernels, one warp per output row, streaming the weight
 * row with 16-byte non-caching loads (8 bf16/f16 or 4 f32 per load, up to 8 loads in flight
 * per lane) and float32 activations from L1; n rows are computed per pass (NB in {1,2,4,8}),
 * so weights are read once for up to 8 rows. Several matrices sharing one input (q,k,v) go in
 * one launch; gate/up pairs compute act(g)*u in the epilogue, matmul_add adds the product to
 * the residual stream. With programmatic dependent launch each warp's first weight loads are
 * issued before waiting on the previous kernel (weights never depend on it).
 *
 * Prefill (larger n): cuBLASLt GEMM, bf16/f16 operands with float32 accumulation and float32
 * output (activations converted to the weight dtype first, fused into rmsnorm where possible;
 * matmul_add accumulates with beta = 1); float32 weights use a float32 GEMM (no TF32). Plans
 * are cached per shape. */
#include "backend/cuda/cuda_internal.h"

#include <string.h>

/* ---------------- GEMV ---------------- */

#ifndef GB_GEMV_WARPS
#define GB_GEMV_WARPS 4 /* warps per GEMV block (-DGB_GEMV_WARPS=N for A/B builds) */
#endif
#define GB_GEMV_U 8

template <typename T> struct gb_vec;
template <> struct gb_vec<__nv_bfloat16> { static const int N = 8, SLOT = 0; };
template <> struct gb_vec<__half> { static const int N = 8, SLOT = 1; };
template <> struct gb_vec<float> { static const int N = 4, SLOT = 2; }; /* SLOT: per-dtype caches */

/* Streaming 16-byte weight load: read-only path, evict-first (weights are read once per step;
 * the activations should keep L1). Not volatile, so the compiler may batch the loads. */
__device__ __forceinline__ uint4 gb_ld_stream(const uint4 *p) {
    return __ldcs(p);
}

template <typename T> __device__ __forceinline__ void gb_unpack(const uint4 &v, float *f);
template <> __device__ __forceinline__ void gb_unpack<__nv_bfloat16>(const uint4 &v, float *f) {
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        f[2 * i] = __uint_as_float(w[i] << 16);
        f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}
template <> __device__ __forceinline__ void gb_unpack<__half>(const uint4 &v, float *f) {
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        __half2 h;
        memcpy(&h, &w[i], 4);
        const float2 t = __half22float2(h);
        f[2 * i] = t.x;
        f[2 * i + 1] = t.y;
    }
}
template <> __device__ __forceinline__ void gb_unpack<float>(const uint4 &v, float *f) {
    f[0] = __uint_as_float(v.x);
    f[1] = __uint_as_float(v.y);
    f[2] = __uint_as_float(v.z);
    f[3] = __uint_as_float(v.w);
}

/* acc[r] += dot of the 8 (or 4) weights in wv (vector index idx) with x row r. */
template <typename T, int NB>
__device__ __forceinline__ void gb_vec_fma(float *acc, const uint4 &wv, int idx, const float *x,
                                           int ldx) {
    const int VEC = gb_vec<T>::N;
    float wf[VEC];
    gb_unpack<T>(wv, wf);
#pragma unroll
    for (int r = 0; r < NB; r++) {
        /* plain loads, not __ldg: with programmatic dependent launch this kernel is resident
         * while the previous one writes x, and the non-coherent read-only path then returned
         * stale lines (measured: wrong tokens) */
        const float4 *xp = (const float4 *)(x + (int64_t)r * ldx + (int64_t)idx * VEC);
#pragma unroll
        for (int q = 0; q < VEC / 4; q++) {
            const float4 xv = xp[q];
            acc[r] += wf[4 * q] * xv.x + wf[4 * q + 1] * xv.y + wf[4 * q + 2] * xv.z +
                      wf[4 * q + 3] * xv.w;
        }
    }
}

/* Dot products of one weight row (segment) with NB activation rows: acc[r] = sum_k w[k] *
 * x[r, k] over k < cols, reduced over the warp; x rows are ldx floats apart. Requires
 * cols % VEC == 0 and 16-byte aligned rows.
 *
 * The first group of GB_GEMV_U loads per lane is issued before gb_pdl_wait(): weights never
 * depend on the previous kernel, so with programmatic dependent launch they stream in while
 * the previous kernel drains (for rows of <= 32 * U vectors, 2048 bf16 columns, that is the
 * whole row). Full groups of GB_GEMV_U loads per lane are issued before any use. Requesting
 * the next group before multiplying the current one (16 loads in flight per lane, 96 instead
 * of 70 registers) measured slower in the decode chain (H200, session 9, branch s9-pipe: 1B
 * 1136.7 tok/s for the down GEMV, 1164.4 for gate/up, against 1176.7). */
template <typename T, int NB>
__device__ __forceinline__ void gb_row_dot(float *acc, const T *wrow, const float *x, int cols,
                                           int ldx, int lane) {
    const int nvec = cols / gb_vec<T>::N;
    const uint4 *wr = (const uint4 *)wrow;
    {
        uint4 wv[GB_GEMV_U];
#pragma unroll
        for (int u = 0; u < GB_GEMV_U; u++)
            wv[u] =
                lane + u * 32 < nvec ? gb_ld_stream(wr + lane + u * 32) : make_uint4(0, 0, 0, 0);
        gb_pdl_wait();
#pragma unroll
        for (int u = 0; u < GB_GEMV_U; u++)
            if (lane + u * 32 < nvec) gb_vec_fma<T, NB>(acc, wv[u], lane + u * 32, x, ldx);
    }
    int base = lane + 32 * GB_GEMV_U;
    for (; base + 32 * (GB_GEMV_U - 1) < nvec; base += 32 * GB_GEMV_U) {
        uint4 wv[GB_GEMV_U];
#pragma unroll
        for (int u = 0; u < GB_GEMV_U; u++)
            wv[u] = gb_ld_stream(wr + base + u * 32);
#pragma unroll
        for (int u = 0; u < GB_GEMV_U; u++)
            gb_vec_fma<T, NB>(acc, wv[u], base + u * 32, x, ldx);
    }
    for (; base < nvec; base += 32)
        gb_vec_fma<T, NB>(acc, gb_ld_stream(wr + base), base, x, ldx);
#pragma unroll
    for (int r = 0; r < NB; r++)
        acc[r] = gb_warp_sum(acc[r]);
}

/* Up to three matrices sharing one input: output row index space is their concatenation.
 * resid: y += product (y holds the residual stream). */
struct gb_gemv_jobs {
    const void *w[3];
    const float *bias[3];
    float *y[3];
    int rows[3];
    int count;
    int resid;
};

/* Partial sums of the ks warps that share one output row (K split, see gb_gemv_ks): warp w
 * of the block holds part w % ks in acc. The first warp of each group gets in acc the sum of
 * parts [0, split) and, when hi is given, in hi the sum of parts [split, ks) (gate_up: gate
 * parts, then up parts), each summed in warp order. Every thread of the block must call it
 * (it synchronises the block); ks == 1 leaves acc as it is. */
template <int NB>
__device__ __forceinline__ void gb_ks_reduce(float *acc, float *hi, int ks, int split, int lane,
                                             int wid) {
    __shared__ float part[GB_GEMV_WARPS][NB];
    if (ks == 1) return;
    if (lane == 0)
#pragma unroll
        for (int r = 0; r < NB; r++)
            part[wid][r] = acc[r];
    __syncthreads();
    if (wid % ks == 0)
#pragma unroll
        for (int r = 0; r < NB; r++) {
            float lo = part[wid][r], up = hi ? part[wid + split][r] : 0.f;
            for (int j = 1; j < split; j++)
                lo += part[wid + j][r];
            for (int j = split + 1; hi && j < ks; j++)
                up += part[wid + j][r];
            acc[r] = lo;
            if (hi) hi[r] = up;
        }
}

/* Block of GB_GEMV_WARPS warps, ks (1, 2 or 4) warps per output row: warp w takes segment
 * w % ks of the row (cols / ks columns), so a long row is requested by ks warps at once instead
 * of one warp in ks rounds. */
template <typename T, int NB, bool EARLY = false>
__global__ void __launch_bounds__(GB_GEMV_WARPS * 32)
    k_gemv(gb_gemv_jobs jobs, const float *x, int cols, int total_rows, int ks) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    if (EARLY) gb_pdl_trigger(); /* see gb_gemv_launch_t: the 1B down projection */
    int row = blockIdx.x * (GB_GEMV_WARPS / ks) + wid / ks;
    const int seg = wid % ks, scols = cols / ks;
    const bool active = row < total_rows;
    /* pick the matrix with constant indices only (a dynamic index would put the parameter
     * struct in local memory) */
    const void *w = jobs.w[0];
    const float *bias = jobs.bias[0];
    float *y = jobs.y[0];
    int rows = jobs.rows[0];
    if (row >= rows && jobs.count > 1) {
        row -= rows;
        w = jobs.w[1];
        bias = jobs.bias[1];
        y = jobs.y[1];
        rows = jobs.rows[1];
        if (row >= rows && jobs.count > 2) {
            row -= rows;
            w = jobs.w[2];
            bias = jobs.bias[2];
            y = jobs.y[2];
            rows = jobs.rows[2];
        }
    }
    if (!active && ks == 1) return; /* with ks > 1 every warp takes part in the reduction */
    float acc[NB];
#pragma unroll
    for (int r = 0; r < NB; r++)
        acc[r] = 0.f;
    if (active)
        gb_row_dot<T, NB>(acc, (const T *)w + (int64_t)row * cols + (int64_t)seg * scols,
                          x + (int64_t)seg * scols, scols, cols, lane);
    /* the next kernel may launch once every block is past its loads. Triggering at the start
     * instead (the next norm and GEMV then become resident and request their weights while
     * this grid streams) measured slower on an H200 for every one-wave grid at once: 1B chain
     * 1076 tok/s (grids of one wave) and 1088 (all grids) against 1135 (session 7, branch
     * s7-trig); per class it pays only for the down projection (EARLY, gb_gemv_launch_t) */
    if (!EARLY) gb_pdl_trigger();
    gb_ks_reduce<NB>(acc, nullptr, ks, ks, lane, wid);
    if (active && seg == 0 && lane == 0) {
        const float bv = bias ? bias[row] : 0.f;
#pragma unroll
        for (int r = 0; r < NB; r++) {
            float *yp = y + (int64_t)r * rows + row;
            *yp = (jobs.resid ? *yp : 0.f) + acc[r] + bv;
        }
    }
}

__device__ __forceinline__ float gb_act_dev(float x, gb_act_kind act) {
    if (act == GB_BACT_SILU) return x / (1.0f + expf(-x));
    const float c = 0.7978845608028654f;
    return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
}

/* out = act(x . Wg^T) * (x . Wu^T). ks == 1: one warp per output row, the gate row then the
 * up row; RPW > 1 (ks == 1, one decode row): each warp takes RPW output rows one after the
 * other, rows (b RPW + i) W + w of block b (fewer, longer-lived blocks, see
 * gb_gate_up_launch_t). ks = 2 or 4: ks warps per output row, the first half on segments of
 * the gate row, the second half on the up row (each warp cols / (ks / 2) columns). */
template <typename T, int NB, int RPW = 1>
__global__ void __launch_bounds__(GB_GEMV_WARPS * 32)
    k_gemv_gate_up(float *out, const float *x, const T *wg, const T *wu, int cols, int rows,
                   gb_act_kind act, int ks) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    for (int it = 0; it < RPW; it++) {
        const int row = (blockIdx.x * RPW + it) * (GB_GEMV_WARPS / ks) + wid / ks;
        const bool active = row < rows;
        if (!active && ks == 1) return;
        float g[NB], u[NB];
#pragma unroll
        for (int r = 0; r < NB; r++)
            g[r] = u[r] = 0.f;
        if (ks == 1) {
            /* one row after the other: loading both rows' groups together (16 loads in flight
             * per lane) was faster alone but 26 us per token slower in the decode chain (H200,
             * session 3) */
            gb_row_dot<T, NB>(g, wg + (int64_t)row * cols, x, cols, cols, lane);
            gb_row_dot<T, NB>(u, wu + (int64_t)row * cols, x, cols, cols, lane);
        } else if (active) {
            const int half = ks / 2, seg = wid % ks, part = seg % half, scols = cols / half;
            const T *wm = seg < half ? wg : wu;
            gb_row_dot<T, NB>(g, wm + (int64_t)row * cols + (int64_t)part * scols,
                              x + (int64_t)part * scols, scols, cols, lane);
        }
        if (it == RPW - 1) gb_pdl_trigger();           /* as in k_gemv */
        gb_ks_reduce<NB>(g, u, ks, ks / 2, lane, wid); /* ks > 1: g holds this warp's part */
        if (active && wid % ks == 0 && lane == 0) {
#pragma unroll
            for (int r = 0; r < NB; r++)
                out[(int64_t)r * rows + row] = gb_act_dev(g[r], act) * u[r];
        }
    }
}

/* Scalar fallback for shapes the vector kernel cannot take (cols not a multiple of the vector
 * width): one warp per (row, output), lanes stride the columns. */
__global__ void k_gemv_scalar(float *y, const float *x, const void *w, gb_dtype dt,
                              const float *bias, int n, int rows, int cols) {
    const int lane = threadIdx.x & 31;
    const int64_t item = (int64_t)blockIdx.x * GB_GEMV_WARPS + (threadIdx.x >> 5);
    if (item >= (int64_t)n * rows) return;
    const int r = (int)(item / rows), o = (int)(item % rows);
    float acc = 0.f;
    for (int k = lane; k < cols; k += 32)
        acc += gb_load_as_f32(w, dt, (int64_t)o * cols + k) * x[(int64_t)r * cols + k];
    acc = gb_warp_sum(acc);
    if (lane == 0) y[item] = acc + (bias ? bias[o] : 0.f);
}

static int gb_gemv_ok(const gb_weight *w) {
    const int vec = w->dtype == GB_F32 ? 4 : 8;
    return w->cols % vec == 0 && ((uintptr_t)w->data & 15u) == 0;
}

/* Warps per output row (K split): a warp's rounds of GB_GEMV_U loads per lane (32 * U
 * vectors, 2048 bf16 columns) are serial, and only its first round is issued before the PDL
 * wait. Measured in the decode chain (H200, session 4, interleaved A/B in one call):
 * - rows of 2 rounds split in 2, so each warp's part loads before the wait (8B q,k,v and o,
 *   4096 columns: part of 226 against 221 tok/s unsplit);
 * - rows of 3-4 rounds unsplit (1B down, 8192 columns: 1045 tok/s unsplit, 1009 split in 2,
 *   1023 in 4): its 2048 rows already keep every SM streaming;
 * - longer rows split in 2 (8B down, 14336 columns: 226.4 against 222.9 tok/s unsplit).
 * gate_up: each warp takes a part of the gate row or of the up row (ks = 2: one warp each,
 * rows of one round, 1B, in batches; ks = 4: halves, rows of 2 rounds, 8B: 224 -> 226 tok/s),
 * else one warp per output row (the gate row, then the up row): longer rows, and a single
 * decode row (one_row) of one round, whose warps then take several output rows
 * (gb_gate_up_rpw).
 * force (GB_CUDA_GEMV_KS / GB_CUDA_GATEUP_KS, A/B timings): that ks where the shape allows. */
static int gb_gemv_ks(int cols, int vec, int force, int gate_up, int one_row) {
    const int one_round = 32 * GB_GEMV_U * vec;
    if (force >= 1) { /* ks = 1: one warp per output row (gate_up: the gate row, then up) */
        const int parts = gate_up ? 2 : 1; /* matrix rows per output row */
        const int ok =
            force <= GB_GEMV_WARPS && force % parts == 0 && cols % (force / parts * vec) == 0;
        return ok ? force : 1;
    }
    if (gate_up) {
        if (cols <= one_round) return one_row ? 1 : 2;
        if (cols <= 2 * one_round && cols % (2 * vec) == 0) return 4;
        return 1;
    }
    const int split = cols % (2 * vec) == 0 &&
                      ((cols > one_round && cols <= 2 * one_round) || cols > 4 * one_round);
    return split ? 2 : 1;
}

/* down: the jobs are the MLP's down projection + residual (gb_cuda_matmul_add) */
template <typename T>
static void gb_gemv_launch_t(gb_cuda *st, const gb_gemv_jobs &jobs0, const float *x, int cols,
                             int n, int down) {
    int total = 0;
    for (int j = 0; j < jobs0.count; j++)
        total += jobs0.rows[j];
    const int ks = gb_gemv_ks(cols, gb_vec<T>::N, st->gemv_ks, 0, n == 1);
    const int per_block = GB_GEMV_WARPS / ks;
    const int blocks = (total + per_block - 1) / per_block;
    const dim3 g(blocks), t(GB_GEMV_WARPS * 32);
    gb_gemv_jobs jobs = jobs0;
    /* The down projection + residual of one decode row, when its grid fits on the GPU at once
     * (1B: 512 blocks; the 8B's 2048 do not), triggers its dependents at its start: the next
     * RMSNorm and q,k,v GEMV become resident and request their weights while it streams.
     * Measured on an H200 (session 8, interleaved, 3 rounds): 1B 1164.2 -> 1173.4 tok/s (call
     * 1: 1128.4 -> 1134.3); for q,k,v or o_proj the same costs 3-5 % (call 1), for all at once
     * 5 % (session 7). GB_CUDA_EARLY_DOWN=0: trigger after the loads as the others. */
    int early = 0;
    if (down && n == 1 && st->early_down) {
        int *per_sm = &st->early_per_sm[gb_vec<T>::SLOT];
        if (*per_sm < 0 && cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                               per_sm, k_gemv<T, 1, true>, GB_GEMV_WARPS * 32, 0) != cudaSuccess) {
            (void)cudaGetLastError();
            *per_sm = 0;
        }
        early = blocks <= *per_sm * st->sm_count;
    }
    int r0 = 0;
    while (r0 < n) {
        const int left = n - r0;
        const int nb = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        for (int j = 0; j < jobs.count; j++)
            jobs.y[j] = jobs0.y[j] + (int64_t)r0 * jobs0.rows[j];
        const float *xr = x + (int64_t)r0 * cols;
        switch (nb) {
        case 8:
            gb_launch(st, k_gemv<T, 8>, g, t, 0, jobs, xr, cols, total, ks);
            break;
        case 4:
            gb_launch(st, k_gemv<T, 4>, g, t, 0, jobs, xr, cols, total, ks);
            break;
        case 2:
            gb_launch(st, k_gemv<T, 2>, g, t, 0, jobs, xr, cols, total, ks);
            break;
        default:
            if (early)
                gb_launch(st, k_gemv<T, 1, true>, g, t, 0, jobs, xr, cols, total, ks);
            else
                gb_launch(st, k_gemv<T, 1>, g, t, 0, jobs, xr, cols, total, ks);
            break;
        }
        GB_CU_LAUNCH(st, "gemv");
        r0 += nb;
    }
}

static void gb_gemv_launch(gb_cuda *st, gb_dtype dt, const gb_gemv_jobs &jobs, const float *x,
                           int cols, int n, int down) {
    if (dt == GB_BF16)
        gb_gemv_launch_t<__nv_bfloat16>(st, jobs, x, cols, n, down);
    else if (dt == GB_F16)
        gb_gemv_launch_t<__half>(st, jobs, x, cols, n, down);
    else
        gb_gemv_launch_t<float>(st, jobs, x, cols, n, down);
}

/* gate/up of one decode row whose rows take one round of loads (cols <= 32 GB_GEMV_U vec, the
 * 1B shape): one warp per output row (ks = 1) taking GB_CUDA_GATEUP_RPW (default 4) output
 * rows one after the other, 512 blocks instead of ks = 2's 4096 one-round blocks. Measured in
 * the 1B decode chain (H200, session 8, interleaved): call 1, ks = 2 1128.4 tok/s, ks = 1
 * 1139.8, ks = 1 with 2 rows per warp 1083.5, with 4 1145.2; call 2 (3 rounds), 4 rows per
 * warp 1148.3-1151.5, 1 row 1130.7-1131.4, ks = 2 (main's build) 1122.6-1125.0; call 5, 8 rows
 * per warp (256 blocks) 1105.1-1106.0 against 1163.9-1164.3 with 4. Alone the 1B
 * gate/up takes 19.5 us (4 rows), 19.7 (1 row), 20.4 (ks = 2): the chain gains more than the
 * kernel alone. Longer rows (8B: 230.6-230.7 tok/s either way) and batches keep gb_gemv_ks. */
static int gb_gate_up_rpw(const gb_cuda *st, int cols, int vec, int n, int ks) {
    if (n != 1 || ks != 1 || cols > 32 * GB_GEMV_U * vec) return 1; /* as measured: 1 */
    return st->gateup_rpw == 2 || st->gateup_rpw == 4 ? st->gateup_rpw : 1;
}

template <typename T>
static void gb_gate_up_launch_t(gb_cuda *st, float *out, const float *x, const gb_weight *wg,
                                const gb_weight *wu, int n, gb_act_kind act) {
    const int rows = (int)wg->rows, cols = (int)wg->cols;
    const int ks = gb_gemv_ks(cols, gb_vec<T>::N, st->gateup_ks, 1, n == 1);
    const int rpw = gb_gate_up_rpw(st, cols, gb_vec<T>::N, n, ks);
    const int per_block = GB_GEMV_WARPS / ks * rpw;
    const int blocks = (rows + per_block - 1) / per_block;
    const T *g = (const T *)wg->data, *u = (const T *)wu->data;
    const dim3 gr(blocks), t(GB_GEMV_WARPS * 32);
    int r0 = 0;
    while (r0 < n) {
        const int left = n - r0;
        const int nb = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        float *o = out + (int64_t)r0 * rows;
        const float *xr = x + (int64_t)r0 * cols;
        switch (nb) {
        case 8:
            gb_launch(st, k_gemv_gate_up<T, 8>, gr, t, 0, o, xr, g, u, cols, rows, act, ks);
            break;
        case 4:
            gb_launch(st, k_gemv_gate_up<T, 4>, gr, t, 0, o, xr, g, u, cols, rows, act, ks);
            break;
        case 2:
            gb_launch(st, k_gemv_gate_up<T, 2>, gr, t, 0, o, xr, g, u, cols, rows, act, ks);
            break;
        default: /* one decode row: rpw output rows per warp (n == 1 only) */
            if (rpw == 4)
                gb_launch(st, k_gemv_gate_up<T, 1, 4>, gr, t, 0, o, xr, g, u, cols, rows, act, ks);
            else if (rpw == 2)
                gb_launch(st, k_gemv_gate_up<T, 1, 2>, gr, t, 0, o, xr, g, u, cols, rows, act, ks);
            else
                gb_launch(st, k_gemv_gate_up<T, 1>, gr, t, 0, o, xr, g, u, cols, rows, act, ks);
            break;
        }
        GB_CU_LAUNCH(st, "gemv_gate_up");
        r0 += nb;
    }
}

/* ---------------- cuBLASLt ---------------- */

static cudaDataType_t gb_cuda_type(gb_dtype dt) {
    return dt == GB_BF16 ? CUDA_R_16BF : dt == GB_F16 ? CUDA_R_16F : CUDA_R_32F;
}

static gb_lt_plan *gb_lt_plan_get(gb_cuda *st, int m, int n, int k, gb_dtype dt) {
    for (int i = 0; i < st->n_plans; i++) {
        gb_lt_plan *p = &st->plans[i];
        if (p->m == m && p->n == n && p->k == k && p->dt == dt) return p;
    }
    if (st->n_plans == GB_LT_PLANS) { /* evict the oldest */
        gb_lt_plan *p = &st->plans[0];
        cublasLtMatmulDescDestroy(p->desc);
        cublasLtMatrixLayoutDestroy(p->a);
        cublasLtMatrixLayoutDestroy(p->b);
        cublasLtMatrixLayoutDestroy(p->c);
        memmove(st->plans, st->plans + 1, sizeof(gb_lt_plan) * (GB_LT_PLANS - 1));
        st->n_plans--;
    }
    gb_lt_plan *p = &st->plans[st->n_plans];
    memset(p, 0, sizeof *p);
    p->m = m;
    p->n = n;
    p->k = k;
    p->dt = dt;
    const cudaDataType_t ab = gb_cuda_type(dt);
    /* Column-major view: C[m = out, n = tokens] = op(A)[m, k] * B[k, n], where A is the
     * row-major weight [out, in] seen as a col-major [k, m] matrix (transposed), B the
     * row-major activations [tokens, in] = col-major [k, n]. */
    if (GB_LT(st, cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F))) return NULL;
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    if (GB_LT(st, cublasLtMatrixLayoutCreate(&p->a, ab, k, m, k)) ||
        GB_LT(st, cublasLtMatrixLayoutCreate(&p->b, ab, k, n, k)) ||
        GB_LT(st, cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, m, n, m)))
        return NULL;
    cublasLtMatmulPreference_t pref;
    if (GB_LT(st, cublasLtMatmulPreferenceCreate(&pref))) return NULL;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                         &st->lt_ws_bytes, sizeof st->lt_ws_bytes);
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(st->lt, p->desc, p->a, p->b, p->c, p->c, pref,
                                                      1, &res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (s == CUBLAS_STATUS_SUCCESS && found > 0) {
        p->algo = res.algo;
        p->has_algo = 1;
    }
    st->n_plans++;
    return p;
}

void gb_cuda_lt_free(gb_cuda *st) {
    for (int i = 0; i < st->n_plans; i++) {
        gb_lt_plan *p = &st->plans[i];
        cublasLtMatmulDescDestroy(p->desc);
        cublasLtMatrixLayoutDestroy(p->a);
        cublasLtMatrixLayoutDestroy(p->b);
        cublasLtMatrixLayoutDestroy(p->c);
    }
    st->n_plans = 0;
}

/* y[n, w.rows] = xin[n, w.cols] . W^T (+ y when accumulate) where xin is already in the
 * weight dtype. */
static void gb_lt_matmul(gb_cuda *st, float *y, const void *xin, const gb_weight *w, int n,
                         int accumulate = 0) {
    if (st->failed) return;
    gb_lt_plan *p = gb_lt_plan_get(st, (int)w->rows, n, (int)w->cols, w->dtype);
    if (!p) return;
    const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    st->prev_pdl = 0; /* a cuBLAS kernel: the next gb_launch kernel must not overlap it */
    GB_LT(st,
          cublasLtMatmul(st->lt, p->desc, &one, w->data, p->a, xin, p->b, &beta, y, p->c, y, p->c,
                         p->has_algo ? &p->algo : NULL, st->lt_ws, st->lt_ws_bytes, st->stream));
}

/* Activations in the weight dtype for a GEMM: x itself for f32, else converted into act16. */
static const void *gb_gemm_input(gb_cuda *st, const float *x, gb_dtype dt, size_t count) {
    if (dt == GB_F32) return x;
    if (gb_cuda_grow(st, &st->act16, &st->act16_bytes, count * 2, "GEMM activations")) return NULL;
    gb_cuda_to16(st, st->act16, dt, x, count);
    return st->act16;
}

/* ---------------- ops ---------------- */

/* One matrix through the GEMV kernels (resid: y += product; down: it is the down projection). */
static void gb_gemv_one(gb_cuda *st, float *y, const float *x, const gb_weight *w,
                        const float *bias, int n, int resid, int down) {
    gb_gemv_jobs jobs;
    memset(&jobs, 0, sizeof jobs);
    jobs.w[0] = w->data;
    jobs.bias[0] = bias;
    jobs.y[0] = y;
    jobs.rows[0] = (int)w->rows;
    jobs.count = 1;
    jobs.resid = resid;
    gb_gemv_launch(st, w->dtype, jobs, x, (int)w->cols, n, down);
}

void gb_cuda_matmul(gb_backend *b, float *y, const float *x, const gb_weight *w, const float *bias,
                    int n) {
    gb_cuda *st = gb_cuda_of(b);
    if (n <= 0 || st->failed) return;
    if (n <= st->gemv_max_n) {
        if (gb_gemv_ok(w)) {
            gb_gemv_one(st, y, x, w, bias, n, 0, 0);
        } else {
            const int64_t items = (int64_t)n * w->rows;
            k_gemv_scalar<<<(unsigned)((items + GB_GEMV_WARPS - 1) / GB_GEMV_WARPS),
                            GB_GEMV_WARPS * 32, 0, st->stream>>>(y, x, w->data, w->dtype, bias, n,
                                                                 (int)w->rows, (int)w->cols);
            GB_CU_LAUNCH(st, "gemv_scalar");
        }
        return;
    }
    const void *xin = gb_gemm_input(st, x, w->dtype, (size_t)n * w->cols);
    if (!xin) return;
    gb_lt_matmul(st, y, xin, w, n);
    gb_cuda_add_bias(st, y, bias, n, (int)w->rows);
}

void gb_cuda_matmul_add(gb_backend *b, float *y, const float *x, const gb_weight *w,
                        const float *bias, int n) {
    gb_cuda *st = gb_cuda_of(b);
    /* the decoder's two residual products told apart by shape: down has more columns than rows
     * (intermediate > hidden); so does an o_proj with more query dims than hidden ones (Qwen3),
     * which is then timed and triggered as down: a speed choice only, the result is the same */
    const int down = w->cols > w->rows;
    if (n <= 0 || st->failed || GB_SKIPPED(st, down ? GB_SKIP_DOWN : GB_SKIP_O, n)) return;
    if (n <= st->gemv_max_n && gb_gemv_ok(w)) {
        gb_gemv_one(st, y, x, w, bias, n, 1, down);
        return;
    }
    if (n > st->gemv_max_n) { /* the GEMM accumulates into y (beta = 1) */
        const void *xin = gb_gemm_input(st, x, w->dtype, (size_t)n * w->cols);
        if (!xin) return;
        gb_lt_matmul(st, y, xin, w, n, 1);
        gb_cuda_add_bias(st, y, bias, n, (int)w->rows);
        return;
    }
    const size_t count = (size_t)n * w->rows;
    if (gb_cuda_grow(st, (void **)&st->tmp, &st->tmp_bytes, count * sizeof(float),
                     "matmul_add scratch"))
        return;
    gb_cuda_matmul(b, st->tmp, x, w, bias, n);
    gb_cuda_add(b, y, y, st->tmp, count);
}

void gb_cuda_rmsnorm_matmul(gb_backend *b, float **ys, float *xnorm, const float *x,
                            const float *norm_w, float eps, const gb_weight *const *ws,
                            const float *const *biases, int count, int n) {
    gb_cuda *st = gb_cuda_of(b);
    if (n <= 0 || st->failed || GB_SKIPPED(st, count > 1 ? GB_SKIP_QKV : GB_SKIP_HEAD, n)) return;
    const int dim = (int)ws[0]->cols;
    const gb_dtype dt = ws[0]->dtype;
    int same = count <= 3;
    for (int i = 0; i < count; i++)
        same = same && ws[i]->dtype == dt && ws[i]->cols == dim && gb_gemv_ok(ws[i]);
    if (n <= st->gemv_max_n && same) {
        /* A separate norm kernel. Measured slower on H200: normalising inside every GEMV warp
         * (each warp squares x and re-reads the norm weights), and inside every block into
         * shared memory, with one block per 4 rows or a few persistent blocks per SM (the
         * staging sits on every block's critical path; docs/performance.md, session 3); and
         * the norm, the q,k,v rows and the decode attention in one launch per KV-head cluster
         * (session 9, branch s9-qa: 1B 1094-1123 tok/s against 1171-1175; clusters of 16
         * blocks reach fewer SMs than this GEMV's 768 blocks). */
        gb_cuda_rmsnorm(b, xnorm, x, norm_w, n, dim, eps);
        gb_gemv_jobs jobs;
        memset(&jobs, 0, sizeof jobs);
        for (int i = 0; i < count; i++) {
            jobs.w[i] = ws[i]->data;
            jobs.bias[i] = biases ? biases[i] : NULL;
            jobs.y[i] = ys[i];
            jobs.rows[i] = (int)ws[i]->rows;
        }
        jobs.count = count;
        gb_gemv_launch(st, dt, jobs, xnorm, dim, n, 0);
        return;
    }
    if (n > st->gemv_max_n && dt != GB_F32) {
        /* normalise once, writing the 16-bit GEMM input in the same pass */
        if (gb_cuda_grow(st, &st->act16, &st->act16_bytes, (size_t)n * dim * 2, "GEMM input"))
            return;
        gb_cuda_rmsnorm16(st, xnorm, st->act16, dt, x, norm_w, n, dim, eps);
        for (int i = 0; i < count; i++) {
            if (ws[i]->dtype == dt) {
                gb_lt_matmul(st, ys[i], st->act16, ws[i], n);
                gb_cuda_add_bias(st, ys[i], biases ? biases[i] : NULL, n, (int)ws[i]->rows);
            } else {
                gb_cuda_matmul(b, ys[i], xnorm, ws[i], biases ? biases[i] : NULL, n);
            }
        }
        return;
    }
    gb_cuda_rmsnorm(b, xnorm, x, norm_w, n, dim, eps);
    for (int i = 0; i < count; i++)
        gb_cuda_matmul(b, ys[i], xnorm, ws[i], biases ? biases[i] : NULL, n);
}

void gb_cuda_gate_up_act(gb_backend *b, float *out, const float *x, const gb_weight *wg,
                         const gb_weight *wu, int n, gb_act_kind act) {
    gb_cuda *st = gb_cuda_of(b);
    if (n <= 0 || st->failed || GB_SKIPPED(st, GB_SKIP_GATE_UP, n)) return;
    if (n <= st->gemv_max_n && wg->dtype == wu->dtype && gb_gemv_ok(wg) && gb_gemv_ok(wu) &&
        wg->rows == wu->rows && wg->cols == wu->cols) {
        if (wg->dtype == GB_BF16)
            gb_gate_up_launch_t<__nv_bfloat16>(st, out, x, wg, wu, n, act);
        else if (wg->dtype == GB_F16)
            gb_gate_up_launch_t<__half>(st, out, x, wg, wu, n, act);
        else
            gb_gate_up_launch_t<float>(st, out, x, wg, wu, n, act);
        return;
    }
    /* GEMMs into scratch, then act(g) * u. */
    const size_t each = (size_t)n * wg->rows;
    if (gb_cuda_grow(st, (void **)&st->tmp, &st->tmp_bytes, each * 2 * sizeof(float),
                     "gate/up scratch"))
        return;
    float *g = st->tmp, *u = st->tmp + each;
    if (wg->dtype == wu->dtype && wg->dtype != GB_F32 && wg->cols == wu->cols) {
        const void *xin = gb_gemm_input(st, x, wg->dtype, (size_t)n * wg->cols);
        if (!xin) return;
        gb_lt_matmul(st, g, xin, wg, n);
        gb_lt_matmul(st, u, xin, wu, n);
    } else {
        gb_cuda_matmul(b, g, x, wg, NULL, n);
        gb_cuda_matmul(b, u, x, wu, NULL, n);
    }
    gb_cuda_act_mul(b, out, g, u, each, act);
}
