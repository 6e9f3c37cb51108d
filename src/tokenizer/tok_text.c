/* Byte buffers, UTF-8, the string hash map and JSON field helpers shared by the tokenizer. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"
#include "util/error.h"

int tok_buf_reserve(tok_buf *b, size_t extra) {
    if (b->n + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return GB_ERR_NOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int tok_buf_put(tok_buf *b, const void *s, size_t n) {
    if (tok_buf_reserve(b, n)) return GB_ERR_NOMEM;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

int tok_buf_putc(tok_buf *b, char c) {
    return tok_buf_put(b, &c, 1);
}

int tok_buf_put_cp(tok_buf *b, uint32_t c) {
    char u[4];
    size_t n;
    if (c < 0x80) {
        u[0] = (char)c;
        n = 1;
    } else if (c < 0x800) {
        u[0] = (char)(0xC0 | (c >> 6));
        u[1] = (char)(0x80 | (c & 0x3F));
        n = 2;
    } else if (c < 0x10000) {
        u[0] = (char)(0xE0 | (c >> 12));
        u[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        u[2] = (char)(0x80 | (c & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (c >> 18));
        u[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((c >> 6) & 0x3F));
        u[3] = (char)(0x80 | (c & 0x3F));
        n = 4;
    }
    return tok_buf_put(b, u, n);
}

void tok_buf_free(tok_buf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

int tok_ids_push(tok_ids *a, int32_t id) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        int32_t *v = realloc(a->v, cap * sizeof *v);
        if (!v) return GB_ERR_NOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = id;
    return 0;
}

void tok_ids_free(tok_ids *a) {
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 with *bad = the length of the maximal
 * invalid prefix (the "maximal subpart" of the Unicode standard, as Rust uses). */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t i = 1; i < need; i++) {
        unsigned l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (i >= n || s[i] < l || s[i] > h) {
            *bad = i;
            return 0;
        }
    }
    return need;
}

size_t tok_utf8_invalid_at(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* ASCII fast path, 8 bytes at a time. */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, u + i, 8);
            if (w & 0x8080808080808080ULL) break;
            i += 8;
        }
        if (i >= len) break;
        size_t bad, k = utf8_seq(u + i, len - i, &bad);
        if (!k) return i;
        i += k;
    }
    return len;
}

uint32_t tok_utf8_decode(const char *p, size_t *adv) {
    const unsigned char *s = (const unsigned char *)p;
    if (s[0] < 0x80) {
        *adv = 1;
        return s[0];
    }
    if (s[0] < 0xE0) {
        *adv = 2;
        return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if (s[0] < 0xF0) {
        *adv = 3;
        return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    *adv = 4;
    return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
           ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

int tok_buf_put_lossy(tok_buf *b, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;
    while (i < n) {
        size_t bad, k = utf8_seq(u + i, n - i, &bad);
        if (k) {
            i += k;
            continue;
        }
        GB_TRY(tok_buf_put(b, s + run, i - run));
        GB_TRY(tok_buf_put(b, "\xEF\xBF\xBD", 3));
        i += bad;
        run = i;
    }
    return tok_buf_put(b, s + run, n - run);
}

bool tok_is_whitespace(uint32_t c) {
    if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
    if (c < 0x85) return false;
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool tok_is_word_char(uint32_t c) {
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_';
    if (c == 0x200C || c == 0x200D) return true;
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_PC:
        return true;
    default:
        return false;
    }
}

/* ---- hash map ---- */

uint64_t tok_hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xFF51AFD7ED558CCDULL);
    while (n >= 8) {
        uint64_t k;
        memcpy(&k, s, 8);
        h = (h ^ k) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    uint64_t k = 0;
    for (size_t i = 0; i < n; i++)
        k |= (uint64_t)s[i] << (8 * i);
    h = (h ^ k) * 0x94D049BB133111EBULL;
    h ^= h >> 32;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 29;
    return h;
}

int tok_map_init(tok_map *m, size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2)
        cap *= 2;
    m->slots = calloc(cap, sizeof *m->slots);
    if (!m->slots) return GB_ERR_NOMEM;
    m->cap = cap;
    m->n = 0;
    return 0;
}

static int map_grow(tok_map *m) {
    tok_map bigger;
    if (tok_map_init(&bigger, m->cap)) return GB_ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].s)
            tok_map_put(&bigger, m->slots[i].s, m->slots[i].len & 0xFFFFFF, m->slots[i].id);
    free(m->slots);
    *m = bigger;
    return 0;
}

#define TOK_MAP_MAX_LEN 0xFFFFFF

static inline uint32_t len_tag(uint64_t h, size_t len) {
    return (uint32_t)len | (uint32_t)(h >> 56) << 24;
}

int tok_map_put(tok_map *m, const char *s, size_t len, int32_t id) {
    if (len > TOK_MAP_MAX_LEN) return GB_ERR_UNSUPPORTED;
    if ((m->n + 1) * 2 > m->cap) GB_TRY(map_grow(m));
    uint64_t h = tok_hash_bytes(s, len);
    uint32_t lt = len_tag(h, len);
    size_t mask = m->cap - 1, i = h & mask;
    while (m->slots[i].s) {
        if (m->slots[i].len == lt && memcmp(m->slots[i].s, s, len) == 0) {
            m->slots[i].id = id;
            return 0;
        }
        i = (i + 1) & mask;
    }
    m->slots[i].s = s;
    m->slots[i].len = lt;
    m->slots[i].id = id;
    m->n++;
    return 0;
}

int32_t tok_map_get(const tok_map *m, const char *s, size_t len) {
    if (!m->cap || len > TOK_MAP_MAX_LEN) return -1;
    uint64_t h = tok_hash_bytes(s, len);
    uint32_t lt = len_tag(h, len);
    size_t mask = m->cap - 1, i = h & mask;
    while (m->slots[i].s) {
        if (m->slots[i].len == lt && memcmp(m->slots[i].s, s, len) == 0) return m->slots[i].id;
        i = (i + 1) & mask;
    }
    return -1;
}

void tok_map_free(tok_map *m) {
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

/* ---- JSON helpers ---- */

const cJSON *tok_json_get(const cJSON *obj, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

int tok_json_str(const cJSON *obj, const char *key, const char **out, gb_error *err) {
    const cJSON *v = tok_json_get(obj, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) return gb_error_set(err, GB_ERR_FORMAT, "'%s' is not a string", key);
    *out = v->valuestring;
    return 0;
}

int tok_json_bool(const cJSON *obj, const char *key, bool dflt, bool *out, gb_error *err) {
    const cJSON *v = tok_json_get(obj, key);
    *out = dflt;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) return gb_error_set(err, GB_ERR_FORMAT, "'%s' is not a boolean", key);
    *out = cJSON_IsTrue(v);
    return 0;
}

int tok_json_is_id(const cJSON *v) {
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 2147483647.0 &&
           v->valuedouble == (double)(int32_t)v->valuedouble;
}

int tok_json_int(const cJSON *obj, const char *key, long long dflt, long long *out, gb_error *err) {
    const cJSON *v = tok_json_get(obj, key);
    *out = dflt;
    if (!v || cJSON_IsNull(v)) return 0;
    /* Range first: converting an out-of-range double is undefined. */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= -9.0e18 && v->valuedouble <= 9.0e18) ||
        v->valuedouble != (double)(long long)v->valuedouble)
        return gb_error_set(err, GB_ERR_FORMAT, "'%s' is not an integer", key);
    *out = (long long)v->valuedouble;
    return 0;
}
