/* Deterministic random weights ("splitmix-uniform v1") and random-weight model directories.
 *
 * Values must be bit-identical to every other implementation of the rule, so the float
 * arithmetic is kept exactly as the doc states: one float32 multiply (and for norms one
 * float32 add) per element. A contracted multiply-add would round once instead of twice; the
 * norm's r * 0.25f is exact anyway, but contraction is switched off here so the file stays
 * correct whatever flags it is built with. */
#define _GNU_SOURCE /* O_DIRECT */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "model/random.h"
#include "model/random_kernels.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"
#include "util/fileio.h"
#include "util/hash.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "random-weight writing assumes a little-endian host (safetensors bytes are little-endian)"
#endif

static float kind_scale(const gb_tensor_spec *spec) {
    switch (spec->kind) {
    case GB_KIND_MATRIX:
        return (float)sqrt(3.0 / (double)spec->fan_in);
    case GB_KIND_NORM:
        return 0.25f;
    case GB_KIND_EMBEDDING:
    case GB_KIND_BIAS:
    default:
        return 0.1f;
    }
}

void gb_random_kernel_scalar(uint64_t key, float scale, int norm, int64_t first, int64_t count,
                             uint16_t *out) {
    const float inv = 1.0f / 8388608.0f; /* 2^-23: exact, so equal to dividing by 2^23 */
    uint64_t z0 = key + (uint64_t)(first + 1) * 0x9E3779B97F4A7C15ULL;
    for (int64_t i = 0; i < count; i++) {
        uint64_t z = z0 + (uint64_t)i * 0x9E3779B97F4A7C15ULL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z = z ^ (z >> 31);
        float r = (float)((int64_t)(z >> 40) - 8388608) * inv;
        float v = r * scale;
        if (norm) v = 1.0f + v;
        uint32_t bits;
        memcpy(&bits, &v, 4);
        out[i] = (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }
}

typedef void (*fill_kernel)(uint64_t, float, int, int64_t, int64_t, uint16_t *);

static fill_kernel pick_kernel(void) {
#if defined(__x86_64__)
    /* GENBENCH_NO_SIMD=1 forces the scalar loop (for comparisons). */
    if (getenv("GENBENCH_NO_SIMD") == NULL && __builtin_cpu_supports("avx2"))
        return gb_random_kernel_avx2;
#endif
    return gb_random_kernel_scalar;
}

void gb_random_fill_bf16(const gb_tensor_spec *spec, uint64_t seed, int64_t first, int64_t count,
                         uint16_t *out) {
    fill_kernel kernel = pick_kernel(); /* cheap next to the 1M-element chunks it fills */
    const uint64_t key = gb_fnv1a64(spec->name, strlen(spec->name)) ^ seed;
    kernel(key, kind_scale(spec), spec->kind == GB_KIND_NORM, first, count, out);
}

/* ---- growing string ---- */

typedef struct sbuf {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->n + (size_t)k + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

/* JSON string body: tensor names are plain ASCII in practice; escape the rest anyway. */
static void sb_json_str(sbuf *b, const char *s) {
    sb_printf(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            sb_printf(b, "\\%c", c);
        else if (c < 0x20)
            sb_printf(b, "\\u%04x", c);
        else
            sb_printf(b, "%c", c);
    }
    sb_printf(b, "\"");
}

/* ---- parallel shard writing ----
 *
 * The data area is cut into CHUNK_BYTES byte ranges; threads take ranges in turn, fill a
 * buffer with the elements of every tensor overlapping the range and pwrite it. Large shards
 * are written with O_DIRECT when the file system allows it: on the 2-core VM this project
 * targets, buffered writes of freshly allocated page-cache memory run at ~300 MB/s (the
 * host backs each new page), while direct writes of the same buffers reach 1.4-2 GB/s. The
 * header is padded with spaces (allowed by the format) so the data area starts on a 4096-byte
 * boundary; the final partial range goes through the page cache. */

#define CHUNK_BYTES ((int64_t)2 << 20)
#define DIRECT_ALIGN 4096
#define DIRECT_MIN_BYTES ((int64_t)64 << 20) /* smaller shards: the page cache is fine */

typedef struct job {
    int fd, fd_direct; /* fd_direct < 0: buffered only */
    uint64_t seed;
    const gb_tensor_spec *specs; /* tensors of this shard */
    const int64_t *starts;       /* byte offset of each in the data area; [n] = total */
    int n;
    off_t data0;
    int64_t nchunks;
    atomic_llong next;
    atomic_int failed;
    int err_no;
} job;

static int write_full(int fd, const char *buf, size_t len, off_t off, int *err_no) {
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(fd, buf + done, len - done, off + (off_t)done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            *err_no = w < 0 ? errno : EIO;
            return -1;
        }
        done += (size_t)w;
    }
    return 0;
}

/* Fills buf with data-area bytes [b0, b1) (even offsets: whole bf16 elements). */
static void fill_range(const job *j, int64_t b0, int64_t b1, uint16_t *buf) {
    int lo = 0, hi = j->n; /* first tensor ending after b0 */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (j->starts[mid + 1] <= b0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (int t = lo; t < j->n && j->starts[t] < b1; t++) {
        int64_t s = j->starts[t] > b0 ? j->starts[t] : b0;
        int64_t e = j->starts[t + 1] < b1 ? j->starts[t + 1] : b1;
        if (e > s)
            gb_random_fill_bf16(&j->specs[t], j->seed, (s - j->starts[t]) / 2, (e - s) / 2,
                                buf + (s - b0) / 2);
    }
}

static void *worker(void *arg) {
    job *j = arg;
    void *mem = NULL;
    if (posix_memalign(&mem, DIRECT_ALIGN, (size_t)CHUNK_BYTES) != 0) {
        j->err_no = ENOMEM;
        atomic_store(&j->failed, 1);
        return NULL;
    }
    int64_t total = j->starts[j->n];
    for (;;) {
        long long k = atomic_fetch_add(&j->next, 1);
        if (k >= j->nchunks || atomic_load(&j->failed)) break;
        int64_t b0 = (int64_t)k * CHUNK_BYTES;
        int64_t b1 = b0 + CHUNK_BYTES < total ? b0 + CHUNK_BYTES : total;
        fill_range(j, b0, b1, mem);
        size_t len = (size_t)(b1 - b0);
        int err_no = 0, rc = -1;
        if (j->fd_direct >= 0 && len % DIRECT_ALIGN == 0) {
            rc = write_full(j->fd_direct, mem, len, j->data0 + b0, &err_no);
            if (rc && err_no != EINVAL) goto failed; /* EINVAL: no direct I/O after all */
        }
        if (rc) rc = write_full(j->fd, mem, len, j->data0 + b0, &err_no);
        if (!rc) continue;
    failed:
        j->err_no = err_no;
        atomic_store(&j->failed, 1);
        break;
    }
    free(mem);
    return NULL;
}

static int n_threads(void) {
    const char *e = getenv("GENBENCH_THREADS");
    long n = e && *e ? strtol(e, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > 64) n = 64;
    return (int)n;
}

static int64_t spec_elems(const gb_tensor_spec *s) {
    int64_t e = 1;
    for (int d = 0; d < s->ndim; d++)
        e *= s->shape[d];
    return e;
}

/* Writes specs[lo, hi) as one safetensors file. */
static int write_shard(const char *path, const gb_tensor_spec *specs, int lo, int hi, uint64_t seed,
                       gb_error *err) {
    int n = hi - lo;
    int64_t *starts = malloc(((size_t)n + 1) * sizeof *starts);
    if (!starts) return gb_error_set(err, GB_ERR_NOMEM, "%s: out of memory", path);
    sbuf h = {0};
    sb_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        const gb_tensor_spec *s = &specs[lo + i];
        int64_t nb = spec_elems(s) * 2;
        starts[i] = off;
        sb_printf(&h, ",");
        sb_json_str(&h, s->name);
        sb_printf(&h, ":{\"dtype\":\"BF16\",\"shape\":[%lld", (long long)s->shape[0]);
        if (s->ndim == 2) sb_printf(&h, ",%lld", (long long)s->shape[1]);
        sb_printf(&h, "],\"data_offsets\":[%lld,%lld]}", (long long)off, (long long)(off + nb));
        off += nb;
    }
    starts[n] = off;
    sb_printf(&h, "}");
    /* GENBENCH_NO_DIRECT_IO=1 turns direct writes off; GENBENCH_DIRECT_IO_MIN_BYTES changes
     * the threshold (tests use 0 to cover this path with the small fixture models). */
    const char *min_env = getenv("GENBENCH_DIRECT_IO_MIN_BYTES");
    int64_t min_direct = min_env && *min_env ? strtoll(min_env, NULL, 10) : DIRECT_MIN_BYTES;
    int direct = off >= min_direct && !getenv("GENBENCH_NO_DIRECT_IO");
    size_t align = direct ? DIRECT_ALIGN : 8;
    while (!h.oom && (h.n + 8) % align != 0)
        sb_printf(&h, " ");
    if (h.oom) {
        free(starts);
        free(h.s);
        return gb_error_set(err, GB_ERR_NOMEM, "%s: out of memory", path);
    }
    int rc = GB_OK, fd_direct = -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = gb_error_set(err, GB_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        goto done;
    }
#ifdef O_DIRECT
    if (direct) fd_direct = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC); /* -1: buffered */
#endif
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    int err_no = 0;
    if (write_full(fd, (const char *)len8, 8, 0, &err_no) || write_full(fd, h.s, h.n, 8, &err_no)) {
        rc = gb_error_set(err, GB_ERR_IO, "%s: write failed: %s", path, strerror(err_no));
        goto done;
    }
    job j = {.fd = fd,
             .fd_direct = fd_direct,
             .seed = seed,
             .specs = specs + lo,
             .starts = starts,
             .n = n,
             .data0 = 8 + (off_t)h.n,
             .nchunks = (off + CHUNK_BYTES - 1) / CHUNK_BYTES};
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    /* Direct writes block without using the CPU: twice as many threads keep both busy. */
    int nt = n_threads() * (fd_direct >= 0 && !getenv("GENBENCH_THREADS") ? 2 : 1);
    if (nt > j.nchunks) nt = j.nchunks > 0 ? (int)j.nchunks : 1;
    pthread_t tids[64];
    int started = 0;
    for (int t = 1; t < nt; t++) {
        if (pthread_create(&tids[started], NULL, worker, &j) != 0) break;
        started++;
    }
    worker(&j); /* the calling thread works too */
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    if (atomic_load(&j.failed))
        rc = gb_error_set(err, GB_ERR_IO, "%s: write failed: %s", path, strerror(j.err_no));
done:
    if (fd_direct >= 0) close(fd_direct);
    if (fd >= 0 && close(fd) != 0 && !rc)
        rc = gb_error_set(err, GB_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    free(starts);
    free(h.s);
    return rc;
}

static int copy_file(const char *src, const char *dst, gb_error *err) {
    char *data = NULL;
    size_t len = 0;
    GB_TRY(gb_file_read_all(src, 0, &data, &len, err));
    int rc = gb_file_write_atomic(dst, data, len, err);
    free(data);
    return rc;
}

/* Copies the regular files of a tokenizer directory (tokenizer.json, tokenizer_config.json,
 * ...), leaving out anything that would collide with the model's own files. */
static int copy_tokenizer(const char *dir, const char *out, gb_error *err) {
    DIR *d = opendir(dir);
    if (!d)
        return gb_error_set(err, errno == ENOENT ? GB_ERR_NOT_FOUND : GB_ERR_IO,
                            "%s: cannot open tokenizer directory: %s", dir, strerror(errno));
    int rc = GB_OK, copied = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "config.json") ||
            !strcmp(e->d_name, "generation_config.json") || strstr(e->d_name, ".safetensors"))
            continue;
        char *src = gb_strdup_printf("%s/%s", dir, e->d_name);
        char *dst = gb_strdup_printf("%s/%s", out, e->d_name);
        if (!src || !dst)
            rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
        else if (gb_is_file(src)) {
            rc = copy_file(src, dst, err);
            copied++;
        }
        free(src);
        free(dst);
    }
    closedir(d);
    if (!rc && !copied)
        rc = gb_error_set(err, GB_ERR_NOT_FOUND, "%s: no tokenizer files in the directory", dir);
    return rc;
}

/* generation_config.json as transformers derives it from config.json (_from_model_config). */
static int write_generation_config(const char *config_json, size_t len, const char *path,
                                   gb_error *err) {
    cJSON *cfg = cJSON_ParseWithLength(config_json, len);
    cJSON *gen = cJSON_CreateObject();
    int rc = GB_OK;
    if (!cfg || !gen) {
        rc = gb_error_set(err, GB_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    cJSON_AddTrueToObject(gen, "_from_model_config");
    static const char *keys[] = {"bos_token_id", "eos_token_id", "pad_token_id"};
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, keys[i]);
        if (v && !cJSON_IsNull(v)) cJSON_AddItemToObject(gen, keys[i], cJSON_Duplicate(v, 1));
    }
    char *text = cJSON_Print(gen);
    if (!text) {
        rc = gb_error_set(err, GB_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    rc = gb_file_write_atomic(path, text, strlen(text), err);
    free(text);
done:
    cJSON_Delete(cfg);
    cJSON_Delete(gen);
    return rc;
}

/* Removes a directory we created and the plain files in it. */
static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *p = gb_strdup_printf("%s/%s", dir, e->d_name);
            if (p) unlink(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int dir_is_empty(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
    closedir(d);
    return empty;
}

static int write_all(const char *config_json, size_t config_len,
                     const gb_random_model_options *opts, const char *tmp, gb_error *err) {
    gb_model_config cfg;
    GB_TRY(gb_model_config_parse(config_json, config_len, "config.json", &cfg, err));
    gb_tensor_spec *specs = NULL;
    int n = 0;
    GB_TRY(gb_model_tensors(&cfg, &specs, &n, err));
    int rc = GB_OK;
    char *path = NULL;
    sbuf idx = {0};
    /* Shard boundaries: a new shard starts when the next tensor would push the current one
     * past max_shard_bytes (a tensor larger than the limit gets a shard of its own). */
    int *shard_of = calloc(n ? (size_t)n : 1, sizeof *shard_of);
    if (!shard_of) {
        rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
        goto done;
    }
    int nshards = 1;
    uint64_t cur = 0, total = 0;
    for (int i = 0; i < n; i++) {
        uint64_t nb = (uint64_t)spec_elems(&specs[i]) * 2;
        if (opts->max_shard_bytes && cur > 0 && cur + nb > opts->max_shard_bytes) {
            nshards++;
            cur = 0;
        }
        cur += nb;
        total += nb;
        shard_of[i] = nshards - 1;
    }
    if (nshards == 1) {
        path = gb_strdup_printf("%s/model.safetensors", tmp);
        rc = path ? write_shard(path, specs, 0, n, opts->seed, err)
                  : gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    } else {
        sb_printf(&idx, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {",
                  (unsigned long long)total);
        int lo = 0;
        for (int s = 0; s < nshards && !rc; s++) {
            int hi = lo;
            while (hi < n && shard_of[hi] == s)
                hi++;
            char name[64];
            snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, nshards);
            free(path);
            path = gb_strdup_printf("%s/%s", tmp, name);
            if (!path) {
                rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
                break;
            }
            rc = write_shard(path, specs, lo, hi, opts->seed, err);
            for (int i = lo; i < hi; i++) {
                sb_printf(&idx, "%s\n    ", i ? "," : "");
                sb_json_str(&idx, specs[i].name);
                sb_printf(&idx, ": \"%s\"", name);
            }
            lo = hi;
        }
        sb_printf(&idx, "\n  }\n}\n");
        if (!rc) {
            free(path);
            path = gb_strdup_printf("%s/model.safetensors.index.json", tmp);
            if (!path || idx.oom)
                rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            else
                rc = gb_file_write_atomic(path, idx.s, idx.n, err);
        }
    }
    if (rc) goto done;
    free(path);
    path = gb_strdup_printf("%s/config.json", tmp);
    rc = path ? gb_file_write_atomic(path, config_json, config_len, err)
              : gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    if (rc) goto done;
    free(path);
    path = gb_strdup_printf("%s/generation_config.json", tmp);
    rc = path ? write_generation_config(config_json, config_len, path, err)
              : gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    if (rc) goto done;
    if (opts->tokenizer_dir) rc = copy_tokenizer(opts->tokenizer_dir, tmp, err);
done:
    free(idx.s);
    free(path);
    free(shard_of);
    free(specs);
    return rc;
}

int gb_random_model_write(const char *config_json, size_t config_len,
                          const gb_random_model_options *opts, const char *out_dir, gb_error *err) {
    static const gb_random_model_options defaults = {0};
    if (!opts) opts = &defaults;
    if (gb_is_dir(out_dir) && !dir_is_empty(out_dir))
        return gb_error_set(err, GB_ERR_IO, "%s: already exists and is not empty", out_dir);
    if (!gb_is_dir(out_dir) && access(out_dir, F_OK) == 0)
        return gb_error_set(err, GB_ERR_IO, "%s: exists and is not a directory", out_dir);
    /* Parent first, then a sibling temporary directory renamed into place at the end. */
    char *parent = strdup(out_dir);
    if (!parent) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    size_t pl = strlen(parent);
    while (pl > 1 && parent[pl - 1] == '/')
        parent[--pl] = '\0';
    char *slash = strrchr(parent, '/');
    int rc = GB_OK;
    if (slash && slash != parent) {
        *slash = '\0';
        rc = gb_mkdir_p(parent, err);
    }
    free(parent);
    if (rc) return rc;
    static atomic_int counter;
    char *tmp = gb_strdup_printf("%.*s.tmp-%ld-%d", (int)pl, out_dir, (long)getpid(),
                                 atomic_fetch_add(&counter, 1));
    if (!tmp) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    if (mkdir(tmp, 0755) != 0) {
        rc = gb_error_set(err, GB_ERR_IO, "%s: cannot create directory: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    rc = write_all(config_json, config_len, opts, tmp, err);
    if (!rc && rename(tmp, out_dir) != 0) {
        if (errno == ENOTEMPTY || errno == EEXIST)
            rc = gb_error_set(err, GB_ERR_IO, "%s: already exists and is not empty", out_dir);
        else
            rc = gb_error_set(err, GB_ERR_IO, "%s: cannot rename %s into place: %s", out_dir, tmp,
                              strerror(errno));
    }
    if (rc) remove_tree(tmp);
    free(tmp);
    return rc;
}
