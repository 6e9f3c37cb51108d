/* safetensors reader: mmap + header validation + O(1) name lookup; sharded checkpoints
 * through model.safetensors.index.json.
 *
 * File layout: 8-byte little-endian header length N, N bytes of JSON (an object mapping
 * tensor names to {dtype, shape, data_offsets} plus an optional "__metadata__" object of
 * strings), then the data area; data_offsets are [begin, end) relative to the data area. */
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"
#include "util/fileio.h"
#include "util/hash.h"

#define GB_ST_MAX_HEADER (100u * 1000u * 1000u) /* 100 MB, like the reference loader */

/* Open-addressing table of indices into a view array; capacity is a power of two >= 2n. */
typedef struct name_table {
    int *slots; /* -1 = empty */
    size_t mask;
} name_table;

static int table_init(name_table *t, int n) {
    size_t cap = 16;
    while (cap < (size_t)n * 2)
        cap <<= 1;
    t->slots = malloc(cap * sizeof *t->slots);
    if (!t->slots) return -1;
    memset(t->slots, 0xff, cap * sizeof *t->slots);
    t->mask = cap - 1;
    return 0;
}

/* Inserts views[i]; returns the index of an existing entry of the same name, or -1. */
static int table_insert(name_table *t, const gb_tensor_view *views, int i) {
    const char *name = views[i].name;
    size_t h = (size_t)gb_fnv1a64(name, strlen(name)) & t->mask;
    while (t->slots[h] >= 0) {
        if (!strcmp(views[t->slots[h]].name, name)) return t->slots[h];
        h = (h + 1) & t->mask;
    }
    t->slots[h] = i;
    return -1;
}

static const gb_tensor_view *table_find(const name_table *t, const gb_tensor_view *const *views,
                                        const gb_tensor_view *flat, const char *name) {
    if (!t->slots || !name) return NULL;
    size_t h = (size_t)gb_fnv1a64(name, strlen(name)) & t->mask;
    while (t->slots[h] >= 0) {
        const gb_tensor_view *v = flat ? &flat[t->slots[h]] : views[t->slots[h]];
        if (!strcmp(v->name, name)) return v;
        h = (h + 1) & t->mask;
    }
    return NULL;
}

struct gb_safetensors {
    char *path;
    void *map;
    size_t map_size;
    gb_tensor_view *views;
    int count;
    name_table table;
};

void gb_safetensors_free(gb_safetensors *st) {
    if (!st) return;
    if (st->map) munmap(st->map, st->map_size);
    for (int i = 0; i < st->count; i++)
        free((char *)st->views[i].name);
    free(st->views);
    free(st->table.slots);
    free(st->path);
    free(st);
}

/* A JSON number that is a non-negative integer representable exactly (< 2^53). */
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d)) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int parse_entry(gb_safetensors *st, const cJSON *item, gb_tensor_view *v, uint64_t *begin,
                       uint64_t *end, gb_error *err) {
    const char *path = st->path, *name = item->string;
    if (!cJSON_IsObject(item))
        return gb_error_set(err, GB_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", path,
                            name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dt))
        return gb_error_set(err, GB_ERR_FORMAT, "%s: tensor '%s': missing or non-string \"dtype\"",
                            path, name);
    const char *d = dt->valuestring;
    if (!strcmp(d, "BF16")) {
        v->dtype = GB_BF16;
    } else if (!strcmp(d, "F16")) {
        v->dtype = GB_F16;
    } else if (!strcmp(d, "F32")) {
        v->dtype = GB_F32;
    } else {
        return gb_error_set(err, GB_ERR_UNSUPPORTED,
                            "%s: tensor '%s': unsupported dtype \"%s\" (supported: BF16, F16, F32)",
                            path, name, d);
    }
    if (!cJSON_IsArray(shape))
        return gb_error_set(err, GB_ERR_FORMAT, "%s: tensor '%s': missing or non-array \"shape\"",
                            path, name);
    int nd = cJSON_GetArraySize(shape);
    if (nd > GB_MAX_DIMS)
        return gb_error_set(err, GB_ERR_UNSUPPORTED, "%s: tensor '%s': %d dimensions (max %d)",
                            path, name, nd, GB_MAX_DIMS);
    v->ndim = nd;
    uint64_t nelem = 1;
    int overflow = 0;
    for (int k = 0; k < nd; k++) {
        uint64_t dim;
        if (json_uint(cJSON_GetArrayItem(shape, k), &dim) != 0)
            return gb_error_set(err, GB_ERR_FORMAT,
                                "%s: tensor '%s': shape[%d] is not a non-negative integer", path,
                                name, k);
        v->shape[k] = (int64_t)dim;
        if (dim && nelem > UINT64_MAX / dim) overflow = 1;
        nelem *= dim;
    }
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        json_uint(cJSON_GetArrayItem(offs, 0), begin) != 0 ||
        json_uint(cJSON_GetArrayItem(offs, 1), end) != 0)
        return gb_error_set(err, GB_ERR_FORMAT,
                            "%s: tensor '%s': \"data_offsets\" is not [begin, end] of "
                            "non-negative integers",
                            path, name);
    if (*end < *begin)
        return gb_error_set(err, GB_ERR_FORMAT,
                            "%s: tensor '%s': data_offsets [%llu, %llu] end before begin", path,
                            name, (unsigned long long)*begin, (unsigned long long)*end);
    size_t es = gb_dtype_size(v->dtype);
    if (overflow || nelem > UINT64_MAX / es || nelem * es != *end - *begin)
        return gb_error_set(err, GB_ERR_FORMAT,
                            "%s: tensor '%s': shape x dtype size is %llu bytes but data_offsets "
                            "span %llu bytes",
                            path, name, overflow ? 0ULL : (unsigned long long)(nelem * es),
                            (unsigned long long)(*end - *begin));
    v->nbytes = (size_t)(*end - *begin);
    return GB_OK;
}

typedef struct range {
    uint64_t begin, end;
    int idx;
} range;

static int range_cmp(const void *a, const void *b) {
    const range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int parse_header(gb_safetensors *st, const char *json, size_t len, size_t data_size,
                        const unsigned char *data, gb_error *err) {
    const char *path = st->path;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root)
        return gb_error_set(err, GB_ERR_FORMAT, "%s: header is not valid JSON (near byte %ld)",
                            path, (long)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - json : 0));
    int rc = GB_OK;
    range *ranges = NULL;
    if (!cJSON_IsObject(root)) {
        rc = gb_error_set(err, GB_ERR_FORMAT, "%s: header is not a JSON object", path);
        goto done;
    }
    int n = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        if (!it->string) continue;
        if (!strcmp(it->string, "__metadata__")) {
            if (!cJSON_IsObject(it) && !cJSON_IsNull(it)) {
                rc =
                    gb_error_set(err, GB_ERR_FORMAT, "%s: \"__metadata__\" is not an object", path);
                goto done;
            }
            for (const cJSON *m = it->child; m; m = m->next)
                if (!cJSON_IsString(m)) {
                    rc = gb_error_set(err, GB_ERR_FORMAT,
                                      "%s: \"__metadata__\" value '%s' is not a string", path,
                                      m->string ? m->string : "");
                    goto done;
                }
            continue;
        }
        n++;
    }
    st->views = calloc(n ? (size_t)n : 1, sizeof *st->views);
    ranges = malloc((n ? (size_t)n : 1) * sizeof *ranges);
    if (!st->views || !ranges || table_init(&st->table, n) != 0) {
        rc = gb_error_set(err, GB_ERR_NOMEM, "%s: out of memory for %d tensors", path, n);
        goto done;
    }
    for (const cJSON *it = root->child; it; it = it->next) {
        if (!it->string || !strcmp(it->string, "__metadata__")) continue;
        gb_tensor_view *v = &st->views[st->count];
        uint64_t b = 0, e = 0;
        rc = parse_entry(st, it, v, &b, &e, err);
        if (rc) goto done;
        if (e > data_size) {
            rc = gb_error_set(err, GB_ERR_FORMAT,
                              "%s: tensor '%s': data_offsets [%llu, %llu] outside the data area "
                              "of %zu bytes",
                              path, it->string, (unsigned long long)b, (unsigned long long)e,
                              data_size);
            goto done;
        }
        v->name = strdup(it->string);
        if (!v->name) {
            rc = gb_error_set(err, GB_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        v->data = data + b;
        v->file = st->path;
        ranges[st->count] = (range){b, e, st->count};
        st->count++;
        if (table_insert(&st->table, st->views, st->count - 1) >= 0) {
            rc = gb_error_set(err, GB_ERR_FORMAT, "%s: tensor '%s' appears twice in the header",
                              path, it->string);
            goto done;
        }
    }
    /* Overlaps: sorted by begin, each non-empty range must start at or after the end of the
     * previous non-empty one. */
    qsort(ranges, (size_t)st->count, sizeof *ranges, range_cmp);
    int prev = -1;
    for (int i = 0; i < st->count; i++) {
        if (ranges[i].begin == ranges[i].end) continue;
        if (prev >= 0 && ranges[i].begin < ranges[prev].end) {
            rc = gb_error_set(
                err, GB_ERR_FORMAT, "%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap",
                path, st->views[ranges[prev].idx].name, (unsigned long long)ranges[prev].begin,
                (unsigned long long)ranges[prev].end, st->views[ranges[i].idx].name,
                (unsigned long long)ranges[i].begin, (unsigned long long)ranges[i].end);
            goto done;
        }
        prev = i;
    }
done:
    free(ranges);
    cJSON_Delete(root);
    return rc;
}

int gb_safetensors_open(const char *path, gb_safetensors **out, gb_error *err) {
    *out = NULL;
    gb_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        return gb_error_set(err, GB_ERR_NOMEM, "%s: out of memory", path);
    }
    int rc = GB_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = gb_error_set(err, errno == ENOENT ? GB_ERR_NOT_FOUND : GB_ERR_IO,
                          "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = gb_error_set(err, GB_ERR_IO, "%s: not a regular file", path);
        goto fail;
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        rc = gb_error_set(err, GB_ERR_FORMAT,
                          "%s: truncated: %zu bytes, shorter than the 8-byte header length", path,
                          size);
        goto fail;
    }
    st->map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (st->map == MAP_FAILED) {
        st->map = NULL;
        rc = gb_error_set(err, GB_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
        goto fail;
    }
    st->map_size = size;
    close(fd);
    fd = -1;
    const unsigned char *p = st->map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | p[i];
    if (hlen > GB_ST_MAX_HEADER) {
        rc = gb_error_set(err, GB_ERR_FORMAT,
                          "%s: header length %llu is larger than the 100 MB limit", path,
                          (unsigned long long)hlen);
        goto fail;
    }
    if (hlen > size - 8) {
        rc = gb_error_set(err, GB_ERR_FORMAT,
                          "%s: truncated: header length %llu runs past the end of the file "
                          "(%zu bytes)",
                          path, (unsigned long long)hlen, size);
        goto fail;
    }
    if (hlen < 2) {
        rc = gb_error_set(err, GB_ERR_FORMAT, "%s: header is not a JSON object (%llu bytes)", path,
                          (unsigned long long)hlen);
        goto fail;
    }
    rc = parse_header(st, (const char *)p + 8, (size_t)hlen, size - 8 - (size_t)hlen, p + 8 + hlen,
                      err);
    if (rc) goto fail;
    *out = st;
    return GB_OK;
fail:
    if (fd >= 0) close(fd);
    gb_safetensors_free(st);
    return rc;
}

const gb_tensor_view *gb_safetensors_find(const gb_safetensors *st, const char *name) {
    return st ? table_find(&st->table, NULL, st->views, name) : NULL;
}

int gb_safetensors_count(const gb_safetensors *st) {
    return st ? st->count : 0;
}

const gb_tensor_view *gb_safetensors_at(const gb_safetensors *st, int i) {
    return st && i >= 0 && i < st->count ? &st->views[i] : NULL;
}

/* ---- whole checkpoints ---- */

struct gb_weights {
    gb_safetensors **files;
    int nfiles;
    const gb_tensor_view **views; /* in index order (or file order for one file) */
    int count;
    name_table table;
    size_t total_bytes;
};

void gb_weights_free(gb_weights *w) {
    if (!w) return;
    for (int i = 0; i < w->nfiles; i++)
        gb_safetensors_free(w->files[i]);
    free(w->files);
    free(w->views);
    free(w->table.slots);
    free(w);
}

/* Registers views in w's table; refuses a name seen twice. */
static int weights_index(gb_weights *w, const char *where, gb_error *err) {
    if (table_init(&w->table, w->count) != 0)
        return gb_error_set(err, GB_ERR_NOMEM, "%s: out of memory", where);
    w->total_bytes = 0;
    for (int i = 0; i < w->count; i++) {
        const char *name = w->views[i]->name;
        size_t h = (size_t)gb_fnv1a64(name, strlen(name)) & w->table.mask;
        while (w->table.slots[h] >= 0) {
            if (!strcmp(w->views[w->table.slots[h]]->name, name))
                return gb_error_set(err, GB_ERR_FORMAT, "%s: tensor '%s' listed twice", where,
                                    name);
            h = (h + 1) & w->table.mask;
        }
        w->table.slots[h] = i;
        w->total_bytes += w->views[i]->nbytes;
    }
    return GB_OK;
}

/* A shard file name from an index: a plain file name inside the model directory. */
static int shard_name_ok(const char *s) {
    return *s && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

static int open_index(gb_weights *w, const char *dir, const char *index_path, gb_error *err) {
    char *text = NULL;
    size_t len = 0;
    GB_TRY(gb_file_read_all(index_path, GB_ST_MAX_HEADER, &text, &len, err));
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return gb_error_set(err, GB_ERR_FORMAT, "%s: not valid JSON", index_path);
    int rc = GB_OK;
    char **names = NULL;
    int nnames = 0;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        rc = gb_error_set(err, GB_ERR_FORMAT, "%s: missing \"weight_map\" object", index_path);
        goto done;
    }
    int n = cJSON_GetArraySize(map);
    names = calloc(n ? (size_t)n : 1, sizeof *names);
    w->files = calloc(n ? (size_t)n : 1, sizeof *w->files);
    w->views = calloc(n ? (size_t)n : 1, sizeof *w->views);
    if (!names || !w->files || !w->views) {
        rc = gb_error_set(err, GB_ERR_NOMEM, "%s: out of memory", index_path);
        goto done;
    }
    for (const cJSON *it = map->child; it; it = it->next) {
        if (!cJSON_IsString(it) || !shard_name_ok(it->valuestring)) {
            rc = gb_error_set(err, GB_ERR_FORMAT,
                              "%s: weight_map entry '%s' is not a shard file name", index_path,
                              it->string ? it->string : "");
            goto done;
        }
        int f = 0;
        while (f < nnames && strcmp(names[f], it->valuestring))
            f++;
        if (f == nnames) {
            names[nnames] = it->valuestring;
            char *p = gb_strdup_printf("%s/%s", dir, it->valuestring);
            if (!p) {
                rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
                goto done;
            }
            if (!gb_is_file(p)) {
                rc = gb_error_set(err, GB_ERR_NOT_FOUND,
                                  "%s: shard '%s' (holding tensor '%s') does not exist", index_path,
                                  it->valuestring, it->string);
                free(p);
                goto done;
            }
            rc = gb_safetensors_open(p, &w->files[nnames], err);
            free(p);
            if (rc) goto done;
            nnames++;
            w->nfiles = nnames;
        }
        const gb_tensor_view *v = gb_safetensors_find(w->files[f], it->string);
        if (!v) {
            rc = gb_error_set(err, GB_ERR_NOT_FOUND, "%s: tensor '%s' is not in its shard '%s'",
                              index_path, it->string, it->valuestring);
            goto done;
        }
        w->views[w->count++] = v;
    }
    rc = weights_index(w, index_path, err);
done:
    free(names);
    cJSON_Delete(root);
    return rc;
}

int gb_weights_open(const char *model_dir, gb_weights **out, gb_error *err) {
    *out = NULL;
    gb_weights *w = calloc(1, sizeof *w);
    if (!w) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    int rc = GB_OK;
    char *single = gb_strdup_printf("%s/model.safetensors", model_dir);
    char *index = gb_strdup_printf("%s/model.safetensors.index.json", model_dir);
    if (!single || !index) {
        rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (gb_is_file(single)) {
        w->files = calloc(1, sizeof *w->files);
        if (!w->files) {
            rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            goto done;
        }
        rc = gb_safetensors_open(single, &w->files[0], err);
        if (rc) goto done;
        w->nfiles = 1;
        int n = gb_safetensors_count(w->files[0]);
        w->views = calloc(n ? (size_t)n : 1, sizeof *w->views);
        if (!w->views) {
            rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (int i = 0; i < n; i++)
            w->views[w->count++] = gb_safetensors_at(w->files[0], i);
        rc = weights_index(w, single, err);
    } else if (gb_is_file(index)) {
        rc = open_index(w, model_dir, index, err);
    } else {
        rc = gb_error_set(err, GB_ERR_NOT_FOUND,
                          "%s: no model.safetensors or model.safetensors.index.json", model_dir);
    }
done:
    free(single);
    free(index);
    if (rc) {
        gb_weights_free(w);
        return rc;
    }
    *out = w;
    return GB_OK;
}

const gb_tensor_view *gb_weights_find(const gb_weights *w, const char *name) {
    return w ? table_find(&w->table, w->views, NULL, name) : NULL;
}

int gb_weights_count(const gb_weights *w) {
    return w ? w->count : 0;
}

const gb_tensor_view *gb_weights_at(const gb_weights *w, int i) {
    return w && i >= 0 && i < w->count ? w->views[i] : NULL;
}

size_t gb_weights_total_bytes(const gb_weights *w) {
    return w ? w->total_bytes : 0;
}
