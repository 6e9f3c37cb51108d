/* Fast path for the two big arrays of tokenizer.json (model.vocab and model.merges, 90% of an
 * 11 MB file): they are located with a skipping scanner and decoded straight into the BPE
 * tables, and only the rest of the document (a few KB) goes through cJSON. Building a cJSON tree
 * of 450k nodes and freeing it took most of the load time. Anything unexpected makes the caller
 * fall back to cJSON for the whole file, which also produces the error message. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_json_fast.h"

static const char *skip_ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static const char *skip_string(const char *p, const char *e) {
    for (p++; p < e; p++) {
        /* fast scan to the next quote or backslash */
        while (p < e && *p != '"' && *p != '\\')
            p++;
        if (p >= e) return NULL;
        if (*p == '"') return p + 1;
        p++; /* the escaped character */
    }
    return NULL;
}

/* End of the JSON value starting at p (after whitespace), or NULL. */
static const char *skip_value(const char *p, const char *e) {
    p = skip_ws(p, e);
    if (p >= e) return NULL;
    if (*p == '"') return skip_string(p, e);
    if (*p == '{' || *p == '[') {
        static unsigned char special[256];
        if (!special['"']) { /* benign race: every thread writes the same bytes */
            special['{'] = special['['] = special['}'] = special[']'] = 1;
            special['"'] = 1;
        }
        int depth = 0;
        while (p < e) {
            while (p < e && !special[(unsigned char)*p])
                p++;
            if (p >= e) return NULL;
            if (*p == '"') {
                if (!(p = skip_string(p, e))) return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (--depth == 0)
                return p + 1;
            p++;
        }
        return NULL;
    }
    while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\r' &&
           *p != '\t')
        p++;
    return p;
}

static int hex4(const char *p, unsigned *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        *v = *v * 16 + (unsigned)d;
    }
    return 0;
}

/* Decodes the JSON string at *pp (at its '"') onto out; advances *pp past it. */
static int decode_string(const char **pp, const char *e, tok_buf *out) {
    const char *p = *pp + 1;
    while (p < e) {
        const char *q = p;
        while (q < e && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
            q++;
        if (q > p && tok_buf_put(out, p, (size_t)(q - p))) return -1;
        p = q;
        if (p >= e || (unsigned char)*p < 0x20) return -1;
        if (*p == '"') {
            *pp = p + 1;
            return 0;
        }
        if (++p >= e) return -1;
        char c = *p++;
        const char *simple = strchr("\"\\/bfnrt", c);
        if (c && simple) {
            if (tok_buf_putc(out, "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"])) return -1;
            continue;
        }
        unsigned u, lo;
        if (c != 'u' || e - p < 4 || hex4(p, &u)) return -1;
        p += 4;
        if (u >= 0xD800 && u < 0xDC00) {
            if (e - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) || lo < 0xDC00 ||
                lo > 0xDFFF)
                return -1;
            p += 6;
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        } else if (u >= 0xDC00 && u < 0xE000) {
            return -1;
        }
        if (tok_buf_put_cp(out, u)) return -1;
    }
    return -1;
}

/* Walks the object at p, calling visit(key, value span) for each member; visit returns the end
 * of the value it consumed itself, or NULL to have it skipped. Returns the end of the object. */
typedef const char *(*member_fn)(void *ctx, const char *key, size_t klen, const char *v,
                                 const char *e);

static const char *walk_object(const char *p, const char *e, member_fn visit, void *ctx) {
    p = skip_ws(p, e);
    if (p >= e || *p != '{') return NULL;
    p++;
    for (;;) {
        p = skip_ws(p, e);
        if (p >= e) return NULL;
        if (*p == '}') return p + 1;
        if (*p != '"') return NULL;
        const char *ks = p + 1, *ke = skip_string(p, e);
        if (!ke) return NULL;
        p = skip_ws(ke, e);
        if (p >= e || *p != ':') return NULL;
        const char *vs = skip_ws(p + 1, e);
        const char *ve = visit(ctx, ks, (size_t)(ke - 1 - ks), vs, e);
        if (!ve) ve = skip_value(vs, e);
        if (!ve) return NULL;
        p = skip_ws(ve, e);
        if (p < e && *p == ',') p++;
    }
}

static bool key_is(const char *k, size_t kl, const char *want) {
    return kl == strlen(want) && !memcmp(k, want, kl);
}

static const char *visit_model(void *ctx, const char *k, size_t kl, const char *v, const char *e) {
    tok_fast *f = ctx;
    tok_span *dst = key_is(k, kl, "vocab")    ? &f->vocab
                    : key_is(k, kl, "merges") ? &f->merges
                                              : NULL;
    if (!dst) return NULL;
    const char *ve = skip_value(v, e);
    if (ve) {
        dst->p = v;
        dst->n = (size_t)(ve - v);
    }
    return ve;
}

static const char *visit_root(void *ctx, const char *k, size_t kl, const char *v, const char *e) {
    tok_fast *f = ctx;
    if (!key_is(k, kl, "model") || *v != '{') return NULL;
    f->model_seen++;
    return walk_object(v, e, visit_model, f);
}

int tok_fast_locate(const char *data, size_t len, tok_fast *f) {
    memset(f, 0, sizeof *f);
    const char *e = data + len;
    if (!walk_object(data, e, visit_root, f) || f->model_seen != 1) return -1;
    if (!f->vocab.p || f->vocab.p[0] != '{') return -1;
    if (f->merges.p && f->merges.p[0] != '[') f->merges.p = NULL; /* odd: cJSON handles it */
    /* the rest of the document with the two values emptied */
    tok_span cut[2] = {f->vocab, f->merges};
    if (cut[1].p && cut[1].p < cut[0].p) {
        tok_span t = cut[0];
        cut[0] = cut[1];
        cut[1] = t;
    }
    const char *p = data;
    for (int i = 0; i < 2; i++) {
        if (!cut[i].p) continue;
        if (tok_buf_put(&f->rest, p, (size_t)(cut[i].p - p)) ||
            tok_buf_put(&f->rest, cut[i].p[0] == '{' ? "{}" : "[]", 2))
            return -1;
        p = cut[i].p + cut[i].n;
    }
    if (tok_buf_put(&f->rest, p, (size_t)(e - p))) return -1;
    return 0;
}

void tok_fast_free(tok_fast *f) {
    tok_buf_free(&f->rest);
}

int tok_fast_vocab(const tok_span *v, tok_fast_entry_fn fn, void *ctx, tok_buf *keys) {
    const char *p = v->p + 1, *e = v->p + v->n;
    for (;;) {
        p = skip_ws(p, e);
        if (p >= e) return -1;
        if (*p == '}') return 0;
        if (*p != '"') return -1;
        size_t off = keys->n;
        if (decode_string(&p, e, keys) || tok_buf_putc(keys, 0)) return -1;
        p = skip_ws(p, e);
        if (p >= e || *p != ':') return -1;
        p = skip_ws(p + 1, e);
        long long id = 0;
        const char *d = p;
        while (p < e && *p >= '0' && *p <= '9' && id <= 0x7FFFFFF0)
            id = id * 10 + (*p++ - '0');
        if (p == d || id > 0x7FFFFFF0) return -1;
        if (p < e && (*p == '.' || *p == 'e' || *p == 'E')) return -1;
        if (fn(ctx, off, keys->n - off - 1, (int32_t)id)) return -1;
        p = skip_ws(p, e);
        if (p < e && *p == ',') p++;
    }
}

int tok_fast_merges(const tok_span *m, tok_fast_merge_fn fn, void *ctx) {
    const char *p = m->p + 1, *e = m->p + m->n;
    tok_buf a = {0}, b = {0};
    int rc = -1;
    for (;;) {
        p = skip_ws(p, e);
        if (p >= e) break;
        if (*p == ']') {
            rc = 0;
            break;
        }
        a.n = b.n = 0;
        if (*p == '"') {
            if (decode_string(&p, e, &a) || !a.p) break;
            char *sp = memchr(a.p, ' ', a.n);
            if (!sp || memchr(sp + 1, ' ', a.n - (size_t)(sp + 1 - a.p))) break;
            if (fn(ctx, a.p, (size_t)(sp - a.p), sp + 1, a.n - (size_t)(sp + 1 - a.p))) break;
        } else if (*p == '[') {
            p = skip_ws(p + 1, e);
            if (p >= e || *p != '"' || decode_string(&p, e, &a)) break;
            p = skip_ws(p, e);
            if (p >= e || *p != ',') break;
            p = skip_ws(p + 1, e);
            if (p >= e || *p != '"' || decode_string(&p, e, &b)) break;
            p = skip_ws(p, e);
            if (p >= e || *p != ']') break;
            p++;
            if (fn(ctx, a.p ? a.p : "", a.n, b.p ? b.p : "", b.n)) break;
        } else {
            break;
        }
        p = skip_ws(p, e);
        if (p < e && *p == ',') p++;
    }
    tok_buf_free(&a);
    tok_buf_free(&b);
    return rc;
}
