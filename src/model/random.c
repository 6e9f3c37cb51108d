/* Deterministic random weights ("splitmix-uniform v1") and random-weight model directories.
 *
 * Values must be bit-identical to every other implementation of the rule, so the float
 * arithmetic is kept exactly as the doc states: one float32 multiply (and for norms one
 * float32 add) per element. A contracted multiply-add would round once instead of twice; the
 * norm's r * 0.25f is exact anyway, but contraction is switched off here so the file stays
 * correct whatever flags it is built with. */
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

/* ---- parallel shard writing ---- */

typedef struct chunk {
    const gb_tensor_spec *spec;
    int64_t first, count;
    off_t off; /* file offset */
} chunk;

typedef struct job {
    int fd;
    uint64_t seed;
    chunk *chunks;
    int nchunks;
    atomic_int next;
    atomic_int failed;
    int err_no;
} job;

#define CHUNK_ELEMS (1 << 20) /* 2 MB of bf16 per work item */

static void *worker(void *arg) {
    job *j = arg;
    uint16_t *buf = malloc((size_t)CHUNK_ELEMS * sizeof *buf);
    if (!buf) {
        j->err_no = ENOMEM;
        atomic_store(&j->failed, 1);
        return NULL;
    }
    for (;;) {
        int k = atomic_fetch_add(&j->next, 1);
        if (k >= j->nchunks || atomic_load(&j->failed)) break;
        const chunk *c = &j->chunks[k];
        gb_random_fill_bf16(c->spec, j->seed, c->first, c->count, buf);
        size_t len = (size_t)c->count * 2, done = 0;
        while (done < len) {
            ssize_t w = pwrite(j->fd, (char *)buf + done, len - done, c->off + (off_t)done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                j->err_no = w < 0 ? errno : EIO;
                atomic_store(&j->failed, 1);
                break;
            }
            done += (size_t)w;
        }
    }
    free(buf);
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
    sbuf h = {0};
    sb_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    int nchunks = 0;
    for (int i = lo; i < hi; i++) {
        const gb_tensor_spec *s = &specs[i];
        uint64_t nb = (uint64_t)spec_elems(s) * 2;
        sb_printf(&h, ",");
        sb_json_str(&h, s->name);
        sb_printf(&h, ":{\"dtype\":\"BF16\",\"shape\":[%lld", (long long)s->shape[0]);
        if (s->ndim == 2) sb_printf(&h, ",%lld", (long long)s->shape[1]);
        sb_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                  (unsigned long long)(off + nb));
        off += nb;
        nchunks += (int)((spec_elems(s) + CHUNK_ELEMS - 1) / CHUNK_ELEMS);
    }
    sb_printf(&h, "}");
    while (!h.oom && (h.n + 8) % 8 != 0)
        sb_printf(&h, " "); /* data area 8-byte aligned */
    if (h.oom) {
        free(h.s);
        return gb_error_set(err, GB_ERR_NOMEM, "%s: out of memory", path);
    }
    chunk *chunks = calloc(nchunks ? (size_t)nchunks : 1, sizeof *chunks);
    if (!chunks) {
        free(h.s);
        return gb_error_set(err, GB_ERR_NOMEM, "%s: out of memory", path);
    }
    off_t data0 = 8 + (off_t)h.n, pos = 0;
    int nc = 0;
    for (int i = lo; i < hi; i++) {
        int64_t e = spec_elems(&specs[i]);
        for (int64_t f = 0; f < e; f += CHUNK_ELEMS) {
            int64_t cnt = e - f < CHUNK_ELEMS ? e - f : CHUNK_ELEMS;
            chunks[nc++] = (chunk){&specs[i], f, cnt, data0 + pos};
            pos += (off_t)cnt * 2;
        }
    }
    int rc = GB_OK;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = gb_error_set(err, GB_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        goto done;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    if (pwrite(fd, len8, 8, 0) != 8 || pwrite(fd, h.s, h.n, 8) != (ssize_t)h.n) {
        rc = gb_error_set(err, GB_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        goto done;
    }
    job j = {.fd = fd, .seed = seed, .chunks = chunks, .nchunks = nc};
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    int nt = n_threads();
    if (nt > nc) nt = nc > 0 ? nc : 1;
    pthread_t tids[64];
    int started = 0;
    for (int t = 1; t < nt; t++) {
        if (pthread_create(&tids[started], NULL, worker, &j) != 0) break;
        started++;
    }
    worker(&j); /* the calling thread works too */
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    if (atomic_load(&j.failed)) {
        rc = gb_error_set(err, GB_ERR_IO, "%s: write failed: %s", path, strerror(j.err_no));
        goto done;
    }
done:
    if (fd >= 0 && close(fd) != 0 && !rc)
        rc = gb_error_set(err, GB_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    free(chunks);
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
