/* Private state and kernel launchers of the CUDA backend (C++ / CUDA only).
 *
 * All work goes to one non-blocking stream, so a decode step can be captured into a CUDA
 * graph. CUDA errors are sticky: the first failing call records "file:line: call: message"
 * and every later fallible op (sync, download, ...) reports it through gb_error; the void
 * ops of backend.h cannot return it directly.
 *
 * Positions: ops that take pos0 read it from device memory (st->d_pos) while pos_mode is on
 * (set_pos >= 0), so a captured decode step stays valid when replayed at later positions. */
#ifndef GB_CUDA_INTERNAL_H
#define GB_CUDA_INTERNAL_H

#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cublasLt.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "backend/backend.h"
#include "util/error.h"
}

/* One cached cuBLASLt plan per (m, n, k, dtype). */
typedef struct gb_lt_plan {
    int m, n, k;
    gb_dtype dt;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
    int has_algo;
} gb_lt_plan;

#define GB_LT_PLANS 64

#define GB_ARGMAX_ROWS 4096 /* rows the split argmax serves (more: one block per row) */

typedef struct gb_cuda {
    int device;
    int sm_count;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *lt_ws;
    size_t lt_ws_bytes;
    gb_lt_plan plans[GB_LT_PLANS];
    int n_plans;

    void *act16; /* activations converted to bf16/f16 for GEMMs */
    size_t act16_bytes;
    float *tmp; /* fused-op fallbacks (gate/up products of a GEMM) */
    size_t tmp_bytes;

    int *d_pos; /* device copy of the step position */
    /* split argmax (cuda_ops.cu): per row a 64-bit running key and a ticket counter, zero
     * between launches; one more counter after the GB_ARGMAX_ROWS tickets counts the rows a
     * step tail has written */
    unsigned long long *amax_keys;
    unsigned *amax_tickets;
    int pos_mode; /* 1: kernels read pos0 from d_pos */

    /* The step tail (GB_CUDA_STEP_TAIL, default on): a decode step captured in a graph ends with
     * its argmax advancing d_pos and writing the ids into mapped host memory (tail_host, two
     * slots of GB_ARGMAX_ROWS by the position's parity), so that consecutive steps need no
     * set_pos kernel and no copy between their graphs (op_set_pos, op_download_start).
     * Measured (H200, session 8, 1B best config): replayed back to back the step takes 854.9 us
     * bare, 857.9 with a set_pos kernel before it, 867.7 with the ids copy too (the ITL was
     * 868.0); with the tail the ITL is the bare step (855.9), 1154.4 -> 1168.0 tok/s. */
    int step_tail;          /* enabled */
    int32_t *tail_host;     /* mapped pinned, 2 * GB_ARGMAX_ROWS ids */
    int32_t *tail_host_dev; /* the same seen from the device */
    /* the tail of the graph being captured (set by its argmax), and of the instantiated one
     * (taken over at graph_end: a failed capture leaves the running graph's as it was) */
    struct {
        int on;
        const int32_t
            *ids; /* the argmax's ids and rows: what download_start finds in host memory */
        int rows;
    } tail_cap, tail_graph;
    int pos_known, pos_dev; /* d_pos holds pos_dev once the stream reaches this point */
    int tail_fresh;         /* the last stream op was a tail graph; its ids went to slot: */
    int tail_slot;
    int stage_tail[2]; /* download slot k reads tail slot stage_tail[k] - 1 (0: staged) */

    int gemv_max_n; /* matmuls with n <= this use the GEMV kernels, larger ones cuBLASLt */
    int gemv_ks;    /* most warps per GEMV output row (GB_CUDA_GEMV_KS: 1, 2 or 4) */
    int gateup_ks;  /* the same for the gate/up GEMV (GB_CUDA_GATEUP_KS: 1, 2 or 4) */
    int early_down; /* a one-wave down grid triggers at its start (GB_CUDA_EARLY_DOWN=0: not) */
    int early_per_sm[3]; /* its kernel's resident blocks per SM per dtype (-1: not asked yet) */
    int gateup_rpw;      /* gate/up output rows per warp where ks == 1, n == 1 (GB_CUDA_GATEUP_RPW:
                            1, 2 or 4, default 4; cuda_matmul.cu) */
    int pdl;             /* launch the decode kernels with programmatic dependent launch */
    int dsplit;          /* most blocks per decode attention cluster (GB_CUDA_DSPLIT, 1..8) */
    int attn_generic;    /* GB_CUDA_ATTN_GENERIC=1: decode attention at head_dim 64/128 through the
                            generic kernel (runtime head_dim), to test it against the specialised */
    int fuse_rope;       /* decode flash attention also does RoPE and the KV write (one launch) */
    unsigned skip;       /* profiling aid (GB_CUDA_SKIP): decode op classes left out, GB_SKIP_* */
    int pdl_chain;       /* PDL only when the previous stream operation was a gb_launch kernel */
    int prev_pdl;        /* the last stream operation was a gb_launch kernel */
    int pdl_pending;     /* set by gb_launch, moved to prev_pdl by GB_CU_LAUNCH */
    int paged_split;     /* split-KV paged decode: -1 auto, 0 off (reference kernel), N blocks */
    /* the whole decode step in one kernel (cuda_decode_step.cu): on (GB_CUDA_DECODE_STEP=0:
     * off), its hand-off words and its two counters (launches, blocks finished) */
    int ds_on;
    int ds_inflight, ds_inflight_hi; /* pages in flight per block (GB_CUDA_DS_INFLIGHT(_HI)) */
    void *ds_words;
    unsigned *ds_counters;

    /* pipelined downloads: pinned host staging, two slots of stage_slot bytes, each with the
     * event recorded after its copy */
    unsigned char *stage;
    size_t stage_slot;
    cudaEvent_t stage_ev[2];

    cudaGraph_t graph;
    cudaGraphExec_t exec;
    int capturing;

    /* sticky error */
    int failed;
    char errmsg[512];

    /* device memory accounting (alloc/free of the op table) */
    size_t in_use, peak;
    void **a_ptr;
    size_t *a_size;
    int a_len, a_cap;
} gb_cuda;

static inline gb_cuda *gb_cuda_of(gb_backend *b) {
    return (gb_cuda *)b->impl;
}

/* Records the first error; returns 0 on success, GB_ERR_DEVICE otherwise. */
int gb_cuda_check(gb_cuda *st, cudaError_t e, const char *what, const char *file, int line);
int gb_cuda_check_lt(gb_cuda *st, cublasStatus_t s, const char *what, const char *file, int line);
#define GB_CU(st, call) gb_cuda_check((st), (call), #call, __FILE__, __LINE__)
#define GB_LT(st, call) gb_cuda_check_lt((st), (call), #call, __FILE__, __LINE__)
/* Every stream copy: clears prev_pdl, so the kernel launched next waits for it in full. */
#define GB_CU_MEMCPY(st, dst, src, n, kind)                                                        \
    ((st)->prev_pdl = 0, GB_CU((st), cudaMemcpyAsync((dst), (src), (n), (kind), (st)->stream)))
/* After every kernel launch: records whether it was a gb_launch (PDL-aware) kernel, then checks
 * the launch. */
#define GB_CU_LAUNCH(st, name) gb_cuda_launched((st), name, __FILE__, __LINE__)

static inline int gb_cuda_launched(gb_cuda *st, const char *name, const char *file, int line) {
    st->prev_pdl = st->pdl_pending;
    st->pdl_pending = 0;
    return gb_cuda_check(st, cudaGetLastError(), name, file, line);
}

/* GB_CUDA_SKIP (profiling only: the outputs are wrong): the decode op classes whose kernels
 * are not launched, so that the cost of each in the running chain is the step time saved. */
enum {
    GB_SKIP_NORM = 1,     /* separate rmsnorm kernels */
    GB_SKIP_QKV = 2,      /* rmsnorm_matmul with 2-3 matrices */
    GB_SKIP_ATTN = 4,     /* rope_kv_attention */
    GB_SKIP_O = 8,        /* matmul_add with cols <= rows */
    GB_SKIP_GATE_UP = 16, /* gate_up_act */
    GB_SKIP_DOWN = 32,    /* matmul_add with cols > rows */
    GB_SKIP_HEAD = 64,    /* rmsnorm_matmul with 1 matrix */
};
/* n == 1 only (decode of one sequence) */
#define GB_SKIPPED(st, what, n) ((n) == 1 && ((st)->skip & (what)))

/* Device memory counted in memory_stats (in use, peak): cudaMalloc, or GB_ERR_NOMEM naming
 * `what`; gb_dev_free(NULL) does nothing. */
int gb_dev_alloc(gb_cuda *st, size_t bytes, void **ptr, const char *what, gb_error *err);
void gb_dev_free(gb_cuda *st, void *p);
/* Grows a scratch buffer (never while capturing a graph). Returns 0 or GB_ERR_DEVICE. */
int gb_cuda_grow(gb_cuda *st, void **buf, size_t *have, size_t need, const char *what);

static inline const int *gb_cuda_dpos(gb_cuda *st) {
    return st->pos_mode ? st->d_pos : nullptr;
}

/* ---- launchers (cuda_ops.cu) ---- */
void gb_cuda_embed(gb_backend *b, float *out, const gb_weight *table, const int32_t *ids, int n,
                   const gb_weight *pos_table, int n_tokens, int pos0);
void gb_cuda_rmsnorm(gb_backend *b, float *y, const float *x, const float *w, int n, int dim,
                     float eps);
/* rmsnorm that also writes a 16-bit copy (dt) of y into y16 (GEMM input). */
void gb_cuda_rmsnorm16(gb_cuda *st, float *y, void *y16, gb_dtype dt, const float *x,
                       const float *w, int n, int dim, float eps);
void gb_cuda_layernorm(gb_backend *b, float *y, const float *x, const float *w, const float *bias,
                       int n, int dim, float eps);
void gb_cuda_rope(gb_backend *b, float *x, const gb_rope_args *a);
void gb_cuda_add(gb_backend *b, float *y, const float *a, const float *c, size_t count);
void gb_cuda_act_mul(gb_backend *b, float *out, const float *gate, const float *up, size_t count,
                     gb_act_kind act);
void gb_cuda_act(gb_backend *b, float *y, const float *x, size_t count, gb_act_kind act);
void gb_cuda_kv_write(gb_backend *b, float *kcache, float *vcache, const float *k, const float *v,
                      const gb_attn_args *a);
void gb_cuda_argmax(gb_backend *b, int32_t *ids, const float *logits, int n, int vocab);
/* What the step tail of a decode step's argmax writes (gb_step_tail_row below). */
struct gb_step_tail {
    int *pos;       /* d_pos; NULL: no tail */
    int32_t *host;  /* 2 slots of GB_ARGMAX_ROWS ids, mapped host memory */
    unsigned *done; /* rows written, reset by the last */
    int rows;
};
/* The step tail (gb_step_tail, device helpers below) of an argmax of n rows into ids about to
 * be issued: active while a decode step is captured with device positions, then also recorded
 * as the captured graph's tail; inactive (pos NULL) otherwise. */
struct gb_step_tail gb_cuda_step_tail(gb_cuda *st, int32_t *ids, int n);
void gb_cuda_rope_kv_write(gb_backend *b, float *q, float *k, const float *v, float *kcache,
                           float *vcache, const gb_rope_args *r, const gb_attn_args *a);
void gb_cuda_add_rmsnorm(gb_backend *b, float *resid, const float *x, float *y, const float *w,
                         int n, int dim, float eps);
/* dst (dt) = src float32, count elements */
void gb_cuda_to16(gb_cuda *st, void *dst, gb_dtype dt, const float *src, size_t count);
/* y[n, cols] += bias[cols] */
void gb_cuda_add_bias(gb_cuda *st, float *y, const float *bias, int n, int cols);
/* Converts (and optionally transposes) a device matrix src[rows, cols] of sdt (or [cols, rows]
 * when transpose) to dst[rows, cols] of ddt. */
void gb_cuda_convert(gb_cuda *st, void *dst, gb_dtype ddt, const void *src, gb_dtype sdt,
                     int64_t rows, int64_t cols, int transpose);

/* ---- matmul (cuda_matmul.cu) ---- */
void gb_cuda_matmul(gb_backend *b, float *y, const float *x, const gb_weight *w, const float *bias,
                    int n);
void gb_cuda_rmsnorm_matmul(gb_backend *b, float **ys, float *xnorm, const float *x,
                            const float *norm_w, float eps, const gb_weight *const *ws,
                            const float *const *biases, int count, int n);
void gb_cuda_gate_up_act(gb_backend *b, float *out, const float *x, const gb_weight *wg,
                         const gb_weight *wu, int n, gb_act_kind act);
void gb_cuda_rope_kv_attention(gb_backend *b, gb_attn_impl impl, float *out, float *q, float *k,
                               const float *v, float *kcache, float *vcache, const gb_rope_args *r,
                               const gb_attn_args *a, void *scratch);
void gb_cuda_matmul_add(gb_backend *b, float *y, const float *x, const gb_weight *w,
                        const float *bias, int n);
void gb_cuda_lt_free(gb_cuda *st);

/* ---- the whole decode step (cuda_decode_step.cu) ---- */
/* At backend creation: its buffers and launch limits (declines every call when they fail). */
void gb_cuda_decode_step_init(gb_cuda *st);
void gb_cuda_decode_step_free(gb_cuda *st);
int gb_cuda_decode_step(gb_backend *b, const gb_step_model *sm, float *logits, int32_t *ids,
                        int pos0);

/* ---- attention (cuda_attention.cu) ---- */
void gb_cuda_attention(gb_backend *b, gb_attn_impl impl, float *out, const float *q,
                       const float *kcache, const float *vcache, const gb_attn_args *a,
                       void *scratch);
size_t gb_cuda_attn_scratch_bytes(gb_backend *b, gb_attn_impl impl, const gb_attn_args *a);

/* ---- paged KV cache (cuda_paged.cu) ---- */
void gb_cuda_kv_write_paged(gb_backend *b, float *kpool, float *vpool, const float *k,
                            const float *v, const gb_paged_args *a);
void gb_cuda_attention_paged(gb_backend *b, float *out, const float *q, const float *kpool,
                             const float *vpool, const gb_paged_args *a);
void gb_cuda_rope_kv_write_paged(gb_backend *b, float *q, float *k, const float *v, float *kpool,
                                 float *vpool, const gb_rope_args *r, const gb_paged_args *a);
/* attention_paged with a decode step split over the KV length (falls back to the above). */
void gb_cuda_attention_paged_split(gb_backend *b, float *out, const float *q, const float *kpool,
                                   const float *vpool, const gb_paged_args *a);

/* ---- device helpers ---- */
#ifdef __CUDACC__
__device__ __forceinline__ float gb_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float gb_warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
/* Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result. */
__device__ __forceinline__ float gb_block_sum(float v, float *sh /* 33 floats */) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = gb_warp_sum(v);
    __syncthreads(); /* sh may be reused by a previous reduction */
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    float t = lane < nw ? sh[lane] : 0.f;
    t = gb_warp_sum(t);
    return t;
}
/* Programmatic dependent launch (sm_90): a kernel launched by gb_launch may start while its
 * predecessor still runs; it must call gb_pdl_wait() before touching memory the predecessor
 * reads or writes (every such kernel does, so the ordering stays transitive). gb_pdl_trigger
 * lets the successor launch early. Both are no-ops for ordinary launches.
 * Such a kernel is resident while its predecessor still writes: it must read that data with
 * ordinary loads, never through the non-coherent read-only path (__ldg, or const __restrict__
 * pointers the compiler may turn into it), which returned stale values on an H200. */
__device__ __forceinline__ void gb_pdl_wait() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void gb_pdl_trigger() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* Lowest key a query at position p sees (sliding window; 0 without one). */
__device__ __forceinline__ int gb_key_lo(int p, int window) {
    return window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
}

/* The step tail of a captured decode step (see gb_cuda.step_tail): the block that writes row
 * row's id also writes it to the host slot of the step's position parity; the last of the n
 * rows to do so advances the position. Every row reads the position before that (its read,
 * then its count, in order), so all rows use the same slot. */
__device__ __forceinline__ void gb_step_tail_row(const gb_step_tail &t, int row, int32_t id) {
    if (!t.pos) return;
    const int p = *(volatile int *)t.pos;
    t.host[(p & 1) * GB_ARGMAX_ROWS + row] = id;
    /* p is read (and used) before the count; the host sees the write once the graph is done
     * (the download waits for an event after it), so no system-scope fence is needed */
    __threadfence();
    if (atomicAdd(t.done, 1u) == (unsigned)t.rows - 1) {
        *t.done = 0;
        *(volatile int *)t.pos = p + 1;
    }
}

/* The key of value v at index i for an argmax folded with atomicMax over 64 bits (the split
 * argmax, cuda_ops.cu, and the whole decode step): the value in the high half,
 * order-preserving, 0xffffffff - i in the low half so the first index wins ties; NaN and -inf
 * get a high half of 0 and never win over a finite value (a row with none gives its first
 * index, 0, as k_argmax does). gb_argmax_id turns the winning key back into the index. */
__device__ __forceinline__ unsigned long long gb_argmax_key(float v, int i) {
    uint32_t u = __float_as_uint(v);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    if (!(v > -INFINITY)) u = 0; /* NaN, -inf */
    return ((unsigned long long)u << 32) | (0xffffffffu - (uint32_t)i);
}
__device__ __forceinline__ int32_t gb_argmax_id(unsigned long long key) {
    return (int32_t)(0xffffffffu - (uint32_t)(key & 0xffffffffu));
}

/* Rotates the pair (i, i + half) of one head in place (rotate-half layout, as Hugging Face). */
__device__ __forceinline__ void gb_rope_pair(float *x, int i, int half, float pos,
                                             const float *inv_freq, float af) {
    float s, c;
    sincosf(pos * inv_freq[i], &s, &c);
    c *= af;
    s *= af;
    const float x1 = x[i], x2 = x[i + half];
    x[i] = x1 * c - x2 * s;
    x[i + half] = x2 * c + x1 * s;
}

/* Launches k on the backend's stream with programmatic dependent launch when enabled (and,
 * in chain mode, only right after another kernel launched here); cluster_x > 0 groups the
 * blocks of each grid row into thread-block clusters of that many blocks. */
template <typename... KArgs, typename... Args>
static inline void gb_launch_ex(gb_cuda *st, void (*k)(KArgs...), dim3 grid, dim3 block,
                                size_t smem, unsigned cluster_x, Args... args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st->stream;
    cudaLaunchAttribute at[2];
    unsigned n = 0;
    if (cluster_x > 0) {
        at[n].id = cudaLaunchAttributeClusterDimension;
        at[n].val.clusterDim.x = cluster_x;
        at[n].val.clusterDim.y = 1;
        at[n].val.clusterDim.z = 1;
        n++;
    }
    if (st->pdl && (!st->pdl_chain || st->prev_pdl)) {
        at[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        at[n].val.programmaticStreamSerializationAllowed = 1;
        n++;
    }
    cfg.attrs = at;
    cfg.numAttrs = n;
    cudaLaunchKernelEx(&cfg, k, static_cast<KArgs>(args)...);
    st->pdl_pending = 1;
}

template <typename... KArgs, typename... Args>
static inline void gb_launch(gb_cuda *st, void (*k)(KArgs...), dim3 grid, dim3 block, size_t smem,
                             Args... args) {
    gb_launch_ex(st, k, grid, block, smem, 0u, args...);
}

__device__ __forceinline__ float gb_load_as_f32(const void *p, gb_dtype dt, int64_t i) {
    if (dt == GB_BF16) return __uint_as_float((uint32_t)((const uint16_t *)p)[i] << 16);
    if (dt == GB_F16) return __half2float(((const __half *)p)[i]);
    return ((const float *)p)[i];
}
#endif

#endif
