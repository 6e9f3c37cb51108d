/* The CUDA backend: device memory, weight upload, the op tables (reference and kernelized),
 * sticky error reporting and CUDA graph capture of a decode step. Kernels live in
 * cuda_ops.cu, cuda_matmul.cu, cuda_attention.cu and cuda_paged.cu (paged KV cache). */
#include "backend/cuda/cuda_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- errors ---------------- */

int gb_cuda_check(gb_cuda *st, cudaError_t e, const char *what, const char *file, int line) {
    if (e == cudaSuccess) return 0;
    if (!st->failed) {
        const char *base = strrchr(file, '/');
        snprintf(st->errmsg, sizeof st->errmsg, "%s:%d: %s: %s (%s)", base ? base + 1 : file, line,
                 what, cudaGetErrorString(e), cudaGetErrorName(e));
        st->failed = 1;
    }
    return GB_ERR_DEVICE;
}

int gb_cuda_check_lt(gb_cuda *st, cublasStatus_t s, const char *what, const char *file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return 0;
    if (!st->failed) {
        const char *base = strrchr(file, '/');
        snprintf(st->errmsg, sizeof st->errmsg, "%s:%d: %s: cuBLAS status %d",
                 base ? base + 1 : file, line, what, (int)s);
        st->failed = 1;
    }
    return GB_ERR_DEVICE;
}

/* Reports the sticky error (if any) into err. */
static int gb_cuda_status(gb_cuda *st, gb_error *err) {
    if (!st->failed) return 0;
    return gb_error_set(err, GB_ERR_DEVICE, "cuda: %s", st->errmsg);
}

/* ---------------- memory ---------------- */

static void gb_track_add(gb_cuda *st, void *p, size_t bytes) {
    if (st->a_len == st->a_cap) {
        const int cap = st->a_cap ? st->a_cap * 2 : 256;
        void **np = (void **)realloc(st->a_ptr, sizeof(void *) * (size_t)cap);
        if (!np) return; /* accounting only: losing it is harmless */
        st->a_ptr = np;
        size_t *ns = (size_t *)realloc(st->a_size, sizeof(size_t) * (size_t)cap);
        if (!ns) return;
        st->a_size = ns;
        st->a_cap = cap;
    }
    st->a_ptr[st->a_len] = p;
    st->a_size[st->a_len++] = bytes;
    st->in_use += bytes;
    if (st->in_use > st->peak) st->peak = st->in_use;
}

static void gb_track_del(gb_cuda *st, void *p) {
    for (int i = st->a_len - 1; i >= 0; i--) {
        if (st->a_ptr[i] == p) {
            st->in_use -= st->a_size[i];
            st->a_ptr[i] = st->a_ptr[st->a_len - 1];
            st->a_size[i] = st->a_size[st->a_len - 1];
            st->a_len--;
            return;
        }
    }
}

int gb_dev_alloc(gb_cuda *st, size_t bytes, void **ptr, const char *what, gb_error *err) {
    *ptr = NULL;
    if (bytes == 0) bytes = 16;
    cudaError_t e = cudaMalloc(ptr, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* an allocation failure is not sticky */
        *ptr = NULL;
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        return gb_error_set(err, GB_ERR_NOMEM,
                            "cuda: cannot allocate %zu bytes for %s (%zu of %zu bytes free): %s",
                            bytes, what, fr, tot, cudaGetErrorString(e));
    }
    gb_track_add(st, *ptr, bytes);
    return 0;
}

void gb_dev_free(gb_cuda *st, void *p) {
    if (!p) return;
    gb_track_del(st, p);
    cudaFree(p);
}

int gb_cuda_grow(gb_cuda *st, void **buf, size_t *have, size_t need, const char *what) {
    if (need <= *have) return 0;
    if (st->capturing) {
        char m[160];
        snprintf(m, sizeof m, "%s scratch must grow to %zu bytes while capturing a graph", what,
                 need);
        return gb_cuda_check(st, cudaErrorStreamCaptureUnsupported, m, __FILE__, __LINE__);
    }
    /* keep the stream's earlier work on the old buffer ordered before the free */
    if (GB_CU(st, cudaStreamSynchronize(st->stream))) return GB_ERR_DEVICE;
    gb_dev_free(st, *buf);
    *buf = NULL;
    *have = 0;
    gb_error e;
    if (gb_dev_alloc(st, need + need / 4, buf, what, &e)) {
        if (!st->failed) {
            snprintf(st->errmsg, sizeof st->errmsg, "%.500s", e.msg);
            st->failed = 1;
        }
        return GB_ERR_DEVICE;
    }
    *have = need + need / 4;
    return 0;
}

static int op_alloc(gb_backend *b, size_t bytes, void **ptr, gb_error *err) {
    return gb_dev_alloc(gb_cuda_of(b), bytes, ptr, "a buffer", err);
}

static void op_free(gb_backend *b, void *ptr) {
    gb_cuda *st = gb_cuda_of(b);
    if (!ptr) return;
    cudaStreamSynchronize(st->stream);
    gb_dev_free(st, ptr);
}

static int op_upload(gb_backend *b, void *dst, const void *src, size_t bytes, gb_error *err) {
    gb_cuda *st = gb_cuda_of(b);
    if (bytes) GB_CU_MEMCPY(st, dst, src, bytes, cudaMemcpyHostToDevice);
    return gb_cuda_status(st, err);
}

static int op_download(gb_backend *b, void *dst, const void *src, size_t bytes, gb_error *err) {
    gb_cuda *st = gb_cuda_of(b);
    if (st->failed) return gb_cuda_status(st, err);
    if (bytes) GB_CU_MEMCPY(st, dst, src, bytes, cudaMemcpyDeviceToHost);
    GB_CU(st, cudaStreamSynchronize(st->stream));
    return gb_cuda_status(st, err);
}

static int op_download_start(gb_backend *b, int slot, const void *src, size_t bytes,
                             gb_error *err) {
    gb_cuda *st = gb_cuda_of(b);
    if (st->failed) return gb_cuda_status(st, err);
    if (slot < 0 || slot > 1)
        return gb_error_set(err, GB_ERR_INTERNAL, "cuda: download slot %d (0 or 1)", slot);
    if (bytes > st->stage_slot) {
        /* grows rarely (a larger batch): wait for the copies in flight, keep both slots'
         * bytes (the other slot may still be unfinished) */
        unsigned char *grown = NULL;
        GB_CU(st, cudaStreamSynchronize(st->stream));
        if (GB_CU(st, cudaHostAlloc((void **)&grown, 2 * bytes, cudaHostAllocDefault)))
            return gb_cuda_status(st, err);
        if (st->stage) {
            memcpy(grown, st->stage, st->stage_slot);
            memcpy(grown + bytes, st->stage + st->stage_slot, st->stage_slot);
            cudaFreeHost(st->stage);
        }
        st->stage = grown;
        st->stage_slot = bytes;
    }
    for (int i = 0; i < 2 && !st->stage_ev[i]; i++)
        if (GB_CU(st, cudaEventCreateWithFlags(&st->stage_ev[i], cudaEventDisableTiming)))
            return gb_cuda_status(st, err);
    /* the ids of a step tail graph launched just before are in host memory already */
    const int tail = st->tail_fresh && src == (const void *)st->tail_graph.ids &&
                     bytes == (size_t)st->tail_graph.rows * sizeof(int32_t);
    st->tail_fresh = 0;
    st->stage_tail[slot] = tail ? st->tail_slot + 1 : 0;
    if (bytes && !tail)
        GB_CU_MEMCPY(st, st->stage + (size_t)slot * st->stage_slot, src, bytes,
                     cudaMemcpyDeviceToHost);
    GB_CU(st, cudaEventRecord(st->stage_ev[slot], st->stream));
    return gb_cuda_status(st, err);
}

static int op_download_finish(gb_backend *b, int slot, void *dst, size_t bytes, gb_error *err) {
    gb_cuda *st = gb_cuda_of(b);
    if (slot < 0 || slot > 1 || bytes > st->stage_slot || !st->stage_ev[slot])
        return gb_error_set(err, GB_ERR_INTERNAL, "cuda: no download of %zu bytes in slot %d",
                            bytes, slot);
    GB_CU(st, cudaEventSynchronize(st->stage_ev[slot]));
    const int tail = st->stage_tail[slot];
    if (!st->failed && bytes)
        memcpy(dst,
               tail ? (const void *)(st->tail_host + (size_t)(tail - 1) * GB_ARGMAX_ROWS)
                    : (const void *)(st->stage + (size_t)slot * st->stage_slot),
               bytes);
    return gb_cuda_status(st, err);
}

static int op_copy(gb_backend *b, void *dst, const void *src, size_t bytes, gb_error *err) {
    gb_cuda *st = gb_cuda_of(b);
    if (bytes) GB_CU_MEMCPY(st, dst, src, bytes, cudaMemcpyDeviceToDevice);
    return gb_cuda_status(st, err);
}

static int op_sync(gb_backend *b, gb_error *err) {
    gb_cuda *st = gb_cuda_of(b);
    GB_CU(st, cudaStreamSynchronize(st->stream));
    return gb_cuda_status(st, err);
}

/* ---------------- weights ---------------- */

/* Host -> device through two pinned staging buffers, so reading the (mapped) source overlaps
 * the transfer. */
#define GB_STAGE_BYTES ((size_t)32 << 20)

static int gb_upload_staged(gb_cuda *st, void *dst, const void *src, size_t bytes) {
    if (bytes <= ((size_t)1 << 20)) {
        /* on our stream: a plain cudaMemcpy from pageable memory may return before its DMA
         * lands, and our non-blocking stream does not wait for the legacy stream */
        if (GB_CU_MEMCPY(st, dst, src, bytes, cudaMemcpyHostToDevice) ||
            GB_CU(st, cudaStreamSynchronize(st->stream)))
            return GB_ERR_DEVICE;
        return 0;
    }
    void *stage[2] = {NULL, NULL};
    cudaEvent_t ev[2] = {NULL, NULL};
    int rc = 0;
    for (int i = 0; i < 2 && !rc; i++) {
        rc = GB_CU(st, cudaMallocHost(&stage[i], GB_STAGE_BYTES));
        if (!rc) rc = GB_CU(st, cudaEventCreateWithFlags(&ev[i], cudaEventDisableTiming));
    }
    for (size_t off = 0, k = 0; !rc && off < bytes; off += GB_STAGE_BYTES, k++) {
        const int s = (int)(k & 1);
        const size_t n = bytes - off < GB_STAGE_BYTES ? bytes - off : GB_STAGE_BYTES;
        rc = GB_CU(st, cudaEventSynchronize(ev[s])); /* the buffer's previous copy is done */
        if (rc) break;
        memcpy(stage[s], (const char *)src + off, n);
        rc = GB_CU_MEMCPY(st, (char *)dst + off, stage[s], n, cudaMemcpyHostToDevice);
        if (!rc) rc = GB_CU(st, cudaEventRecord(ev[s], st->stream));
    }
    if (!rc) rc = GB_CU(st, cudaStreamSynchronize(st->stream));
    for (int i = 0; i < 2; i++) {
        if (ev[i]) cudaEventDestroy(ev[i]);
        if (stage[i]) cudaFreeHost(stage[i]);
    }
    return rc;
}

static int op_weight_load(gb_backend *b, gb_weight *w, const void *src, gb_dtype src_dtype,
                          int64_t rows, int64_t cols, gb_dtype dtype, int transpose,
                          gb_error *err) {
    gb_cuda *st = gb_cuda_of(b);
    memset(w, 0, sizeof *w);
    if (rows <= 0 || cols <= 0)
        return gb_error_set(err, GB_ERR_INVALID, "cuda: weight of shape [%lld, %lld]",
                            (long long)rows, (long long)cols);
    const size_t count = (size_t)rows * (size_t)cols;
    void *dst = NULL;
    GB_TRY(gb_dev_alloc(st, count * gb_dtype_size(dtype), &dst, "a weight", err));
    int rc;
    if (src_dtype == dtype && !transpose) {
        rc = gb_upload_staged(st, dst, src, count * gb_dtype_size(dtype));
    } else {
        void *tmp = NULL;
        rc = gb_dev_alloc(st, count * gb_dtype_size(src_dtype), &tmp, "weight staging", err);
        if (rc) {
            gb_dev_free(st, dst);
            return rc;
        }
        rc = gb_upload_staged(st, tmp, src, count * gb_dtype_size(src_dtype));
        if (!rc) gb_cuda_convert(st, dst, dtype, tmp, src_dtype, rows, cols, transpose);
        if (!rc) rc = GB_CU(st, cudaStreamSynchronize(st->stream));
        gb_dev_free(st, tmp);
    }
    if (rc || st->failed) {
        gb_dev_free(st, dst);
        return gb_cuda_status(st, err) ? err->code
                                       : gb_error_set(err, GB_ERR_DEVICE, "cuda: upload");
    }
    w->dtype = dtype;
    w->rows = rows;
    w->cols = cols;
    w->data = dst;
    w->owned = dst;
    return 0;
}

static void op_weight_free(gb_backend *b, gb_weight *w) {
    if (!w || !w->owned) return;
    gb_cuda *st = gb_cuda_of(b);
    cudaStreamSynchronize(st->stream);
    gb_dev_free(st, w->owned);
    w->owned = NULL;
    w->data = NULL;
}

/* ---------------- positions and graphs ---------------- */

__global__ void k_set_pos(int *d, int pos) {
    *d = pos;
}

static void op_set_pos(gb_backend *b, int pos) {
    gb_cuda *st = gb_cuda_of(b);
    st->tail_fresh = 0;
    if (pos < 0) {
        st->pos_mode = 0;
        st->pos_known = 0;
        return;
    }
    st->pos_mode = 1;
    if (st->pos_known && st->pos_dev == pos) return; /* advanced by the last step's tail */
    k_set_pos<<<1, 1, 0, st->stream>>>(st->d_pos, pos);
    GB_CU_LAUNCH(st, "set_pos");
    st->pos_known = 1;
    st->pos_dev = pos;
}

static int op_graph_begin(gb_backend *b, gb_error *err) {
    gb_cuda *st = gb_cuda_of(b);
    GB_TRY(gb_cuda_status(st, err));
    st->prev_pdl = 0; /* the graph's first kernel has no kernel before it */
    st->tail_cap.on = 0;
    if (GB_CU(st, cudaStreamBeginCapture(st->stream, cudaStreamCaptureModeRelaxed)))
        return gb_cuda_status(st, err);
    st->capturing = 1;
    return 0;
}

static int op_graph_end(gb_backend *b, gb_error *err) {
    gb_cuda *st = gb_cuda_of(b);
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(st->stream, &g);
    st->capturing = 0;
    if (GB_CU(st, e) || st->failed) {
        if (g) cudaGraphDestroy(g);
        return gb_cuda_status(st, err);
    }
    if (st->exec) cudaGraphExecDestroy(st->exec);
    if (st->graph) cudaGraphDestroy(st->graph);
    st->exec = NULL;
    st->graph = g;
    st->tail_graph = st->tail_cap;
    st->tail_cap.on = 0;
    if (GB_CU(st, cudaGraphInstantiate(&st->exec, g, 0))) return gb_cuda_status(st, err);
    return 0;
}

static int op_graph_launch(gb_backend *b, gb_error *err) {
    gb_cuda *st = gb_cuda_of(b);
    if (!st->exec) return gb_error_set(err, GB_ERR_INTERNAL, "cuda: no captured graph to launch");
    st->prev_pdl = 0;
    GB_CU(st, cudaGraphLaunch(st->exec, st->stream));
    st->tail_fresh = 0;
    if (st->tail_graph.on && st->pos_known) { /* it advances d_pos, writes slot pos & 1 */
        st->tail_slot = st->pos_dev & 1;
        st->pos_dev += 1;
        st->tail_fresh = 1;
    } else if (st->tail_graph.on) {
        st->pos_known = 0;
    }
    return gb_cuda_status(st, err);
}

static void op_memory_stats(gb_backend *b, size_t *in_use, size_t *peak) {
    gb_cuda *st = gb_cuda_of(b);
    if (in_use) *in_use = st->in_use;
    if (peak) *peak = st->peak;
}

/* ---------------- lifecycle ---------------- */

static void op_destroy(gb_backend *b) {
    if (!b) return;
    gb_cuda *st = gb_cuda_of(b);
    if (st) {
        cudaSetDevice(st->device);
        if (st->stream) cudaStreamSynchronize(st->stream);
        for (int i = 0; i < 2; i++)
            if (st->stage_ev[i]) cudaEventDestroy(st->stage_ev[i]);
        if (st->stage) cudaFreeHost(st->stage);
        if (st->tail_host) cudaFreeHost(st->tail_host);
        if (st->exec) cudaGraphExecDestroy(st->exec);
        if (st->graph) cudaGraphDestroy(st->graph);
        gb_cuda_lt_free(st);
        if (st->lt) cublasLtDestroy(st->lt);
        gb_dev_free(st, st->lt_ws);
        gb_dev_free(st, st->act16);
        gb_dev_free(st, st->tmp);
        gb_dev_free(st, st->d_pos);
        gb_dev_free(st, st->amax_keys);
        gb_dev_free(st, st->amax_tickets);
        gb_cuda_decode_step_free(st);
        if (st->stream) cudaStreamDestroy(st->stream);
        free(st->a_ptr);
        free(st->a_size);
        free(st);
    }
    free(b);
}

static size_t op_attn_scratch_bytes(gb_backend *b, gb_attn_impl impl, const gb_attn_args *a) {
    return gb_cuda_attn_scratch_bytes(b, impl, a);
}

#define GB_CUDA_COMMON                                                                             \
    op_destroy, op_alloc, op_free, op_upload, op_download, op_copy, op_sync, op_weight_load,       \
        op_weight_free, gb_cuda_embed, gb_cuda_matmul, gb_cuda_rmsnorm, gb_cuda_layernorm,         \
        gb_cuda_rope, gb_cuda_add, gb_cuda_act_mul, gb_cuda_act, gb_cuda_kv_write,                 \
        gb_cuda_attention, op_attn_scratch_bytes, gb_cuda_argmax

static const gb_backend_ops gb_cuda_ref_ops = {
    "cuda",
    GB_CUDA_COMMON,
    NULL,
    NULL,
    NULL,
    NULL,
    op_set_pos,
    op_graph_begin,
    op_graph_end,
    op_graph_launch,
    op_memory_stats,
    gb_cuda_kv_write_paged,
    gb_cuda_attention_paged,
    NULL, /* matmul_add, rope_kv_attention, rope_kv_write_paged: the reference set composes */
    NULL, /* the plain ops */
    NULL,
    op_download_start,
    op_download_finish,
    NULL, /* decode_step: the reference set runs the ops */
};

static const gb_backend_ops gb_cuda_fused_ops = {
    "cuda-kernelized",
    GB_CUDA_COMMON,
    gb_cuda_rmsnorm_matmul,
    gb_cuda_gate_up_act,
    gb_cuda_rope_kv_write,
    gb_cuda_add_rmsnorm,
    op_set_pos,
    op_graph_begin,
    op_graph_end,
    op_graph_launch,
    op_memory_stats,
    gb_cuda_kv_write_paged,
    gb_cuda_attention_paged_split,
    gb_cuda_matmul_add,
    gb_cuda_rope_kv_attention,
    gb_cuda_rope_kv_write_paged,
    op_download_start,
    op_download_finish,
    gb_cuda_decode_step,
};

extern "C" int gb_backend_cuda_available(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n > 0;
}

extern "C" int gb_backend_cuda_create(const gb_backend_options *opts, gb_backend **out,
                                      gb_error *err) {
    *out = NULL;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        (void)cudaGetLastError();
        return gb_error_set(err, GB_ERR_DEVICE, "cuda: no usable GPU (%s)",
                            e != cudaSuccess ? cudaGetErrorString(e) : "no devices");
    }
    const int dev = opts ? opts->device_index : 0;
    if (dev < 0 || dev >= n)
        return gb_error_set(err, GB_ERR_DEVICE, "cuda: device %d does not exist (%d GPU%s)", dev, n,
                            n == 1 ? "" : "s");
    gb_backend *b = (gb_backend *)calloc(1, sizeof *b);
    gb_cuda *st = (gb_cuda *)calloc(1, sizeof *st);
    if (!b || !st) {
        free(b);
        free(st);
        return gb_error_set(err, GB_ERR_NOMEM, "cuda: out of host memory");
    }
    b->impl = st;
    b->ops = opts && opts->kernelize ? &gb_cuda_fused_ops : &gb_cuda_ref_ops;
    b->threads = opts ? opts->threads : 0;
    st->device = dev;
    st->gemv_max_n = 4;
    const char *env = getenv("GB_CUDA_GEMV_MAX");
    if (env && *env) st->gemv_max_n = atoi(env);
    /* K split of the decode GEMVs (cuda_matmul.cu, gb_gemv_ks): warps per output row, unset
     * = chosen per shape; for A/B timings */
    env = getenv("GB_CUDA_GEMV_KS");
    st->gemv_ks = env && *env ? atoi(env) : 0;
    env = getenv("GB_CUDA_GATEUP_KS");
    st->gateup_ks = env && *env ? atoi(env) : 0;
    env = getenv("GB_CUDA_EARLY_DOWN");
    st->early_down = !(env && *env == '0');
    for (int i = 0; i < 3; i++)
        st->early_per_sm[i] = -1;
    env = getenv("GB_CUDA_GATEUP_RPW");
    st->gateup_rpw = env && *env ? atoi(env) : 4;
    /* programmatic dependent launch: on by default (the GEMVs load their first weights while
     * the previous kernel drains, see docs/performance.md); GB_CUDA_PDL=0 turns it off */
    env = getenv("GB_CUDA_PDL");
    st->pdl = !(env && *env == '0');
    env = getenv("GB_CUDA_STEP_TAIL");
    st->step_tail = !(env && *env == '0');
    env = getenv("GB_CUDA_FUSE_ROPE");
    st->fuse_rope = !(env && *env == '0');
    env = getenv("GB_CUDA_DSPLIT");
    st->dsplit = env && atoi(env) >= 1 && atoi(env) <= 8 ? atoi(env) : 8;
    env = getenv("GB_CUDA_ATTN_GENERIC");
    st->attn_generic = env && *env == '1';
    env = getenv("GB_CUDA_SKIP");
    if (env) {
        static const char *names[] = {"norm", "qkv", "attn", "o", "gate_up", "down", "head"};
        for (unsigned i = 0; i < sizeof names / sizeof *names; i++) {
            /* whole comma-separated words only */
            const size_t len = strlen(names[i]);
            for (const char *p = strstr(env, names[i]); p; p = strstr(p + 1, names[i]))
                if ((p == env || p[-1] == ',') && (p[len] == ',' || p[len] == 0))
                    st->skip |= 1u << i;
        }
    }
    env = getenv("GB_CUDA_PDL_CHAIN");
    st->pdl_chain = !(env && *env == '0');
    /* split-KV paged decode attention (kernelized table): blocks per (sequence, KV head),
     * unset = chosen per call, 0 = the reference kernel (A/B timings) */
    env = getenv("GB_CUDA_PAGED_SPLIT");
    st->paged_split = env && *env ? atoi(env) : -1;
    if (st->paged_split < -1) st->paged_split = -1;
    int rc = GB_CU(st, cudaSetDevice(dev));
    if (!rc)
        rc = GB_CU(st, cudaDeviceGetAttribute(&st->sm_count, cudaDevAttrMultiProcessorCount, dev));
    if (!rc) rc = GB_CU(st, cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking));
    if (!rc) rc = GB_LT(st, cublasLtCreate(&st->lt));
    if (rc) {
        gb_cuda_status(st, err);
        op_destroy(b);
        return GB_ERR_DEVICE;
    }
    st->lt_ws_bytes = (size_t)32 << 20;
    if ((rc = gb_dev_alloc(st, st->lt_ws_bytes, &st->lt_ws, "cuBLASLt workspace", err)) ||
        (rc = gb_dev_alloc(st, sizeof(int), (void **)&st->d_pos, "step position", err)) ||
        (rc = gb_dev_alloc(st, GB_ARGMAX_ROWS * sizeof(unsigned long long), (void **)&st->amax_keys,
                           "argmax keys", err)) ||
        (rc = gb_dev_alloc(st, (GB_ARGMAX_ROWS + 1) * sizeof(unsigned), (void **)&st->amax_tickets,
                           "argmax tickets", err))) {
        op_destroy(b);
        return rc;
    }
    if (st->step_tail &&
        (GB_CU(st, cudaHostAlloc((void **)&st->tail_host, 2 * GB_ARGMAX_ROWS * sizeof(int32_t),
                                 cudaHostAllocMapped)) ||
         GB_CU(st, cudaHostGetDevicePointer((void **)&st->tail_host_dev, st->tail_host, 0)))) {
        gb_cuda_status(st, err);
        op_destroy(b);
        return GB_ERR_DEVICE;
    }
    if (GB_CU(st, cudaMemset(st->amax_keys, 0, GB_ARGMAX_ROWS * sizeof(unsigned long long))) ||
        GB_CU(st, cudaMemset(st->amax_tickets, 0, (GB_ARGMAX_ROWS + 1) * sizeof(unsigned))) ||
        GB_CU(st, cudaDeviceSynchronize())) {
        gb_cuda_status(st, err);
        op_destroy(b);
        return GB_ERR_DEVICE;
    }
    if (b->ops->decode_step) gb_cuda_decode_step_init(st);
    *out = b;
    return 0;
}
