/* BPE model of tokenizer.json (models/bpe in `tokenizers`): vocab hash map, merge map
 * (left id, right id) -> (rank, merged id), and the heap-driven merge loop, O(n log n) per word
 * so that whole-segment words (SentencePiece-style files have no pre-tokenizer) stay fast. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_json_fast.h"
#include "util/error.h"

static inline size_t merge_slot(uint64_t key, size_t mask) {
    uint64_t h = key * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h ^ (h >> 31)) & mask;
}

static inline const tok_merge *merge_get(const tok_bpe *b, int32_t l, int32_t r) {
    uint64_t key = ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
    size_t mask = b->merges_cap - 1, i = merge_slot(key, mask);
    while (b->merges[i].key != UINT64_MAX) {
        if (b->merges[i].key == key) return &b->merges[i];
        i = (i + 1) & mask;
    }
    return NULL;
}

void tok_bpe_free(tok_bpe *b) {
    free(b->arena);
    free(b->id_tok);
    free(b->id_len);
    tok_map_free(&b->vocab);
    free(b->merges);
    free(b->unk_token);
    free(b->prefix);
    free(b->suffix);
    memset(b, 0, sizeof *b);
}

static char *dup_opt(const char *s, size_t *len) {
    if (!s || !*s) {
        *len = 0;
        return NULL; /* "" behaves as no prefix/suffix */
    }
    *len = strlen(s);
    char *d = malloc(*len + 1);
    if (d) memcpy(d, s, *len + 1);
    return d;
}

static int32_t vocab_get(const tok_bpe *b, const char *s, size_t n) {
    return tok_map_get(&b->vocab, s, n);
}

static int parse_vocab(const cJSON *vocab, tok_bpe *b, gb_error *err) {
    if (!cJSON_IsObject(vocab))
        return gb_error_set(err, GB_ERR_FORMAT, "model.vocab is not an object");
    size_t total = 0, count = 0;
    long long max_id = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 0x7FFFFFF0 ||
            it->valuedouble != (double)(long long)it->valuedouble)
            return gb_error_set(err, GB_ERR_FORMAT, "model.vocab['%s'] is not a valid id",
                                it->string);
        total += strlen(it->string) + 1;
        count++;
        if ((long long)it->valuedouble > max_id) max_id = (long long)it->valuedouble;
    }
    b->arena = malloc(total ? total : 1);
    b->n_ids = (int32_t)(max_id + 1);
    b->id_tok = calloc((size_t)b->n_ids + 1, sizeof *b->id_tok);
    b->id_len = calloc((size_t)b->n_ids + 1, sizeof *b->id_len);
    if (!b->arena || !b->id_tok || !b->id_len || tok_map_init(&b->vocab, count))
        return gb_error_set(err, GB_ERR_NOMEM, "out of memory loading the vocabulary");
    char *o = b->arena;
    cJSON_ArrayForEach(it, vocab) {
        size_t n = strlen(it->string);
        int32_t id = (int32_t)it->valuedouble;
        memcpy(o, it->string, n + 1);
        if (tok_map_put(&b->vocab, o, n, id))
            return gb_error_set(err, GB_ERR_NOMEM, "out of memory loading the vocabulary");
        b->id_tok[id] = o;
        b->id_len[id] = (uint32_t)n;
        o += n + 1;
    }
    b->arena_len = total;
    return 0;
}

typedef struct {
    size_t off, len;
    int32_t id;
} vocab_entry;

typedef struct {
    vocab_entry *v;
    size_t n, cap;
} vocab_list;

static int collect_entry(void *ctx, size_t off, size_t len, int32_t id) {
    vocab_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        vocab_entry *v = realloc(l->v, cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (vocab_entry){off, len, id};
    return 0;
}

/* model.vocab decoded by the fast scanner (see tok_json_fast.h). */
static int parse_vocab_fast(const tok_span *span, tok_bpe *b, gb_error *err) {
    tok_buf keys = {0};
    vocab_list l = {0};
    int rc = 0;
    if (tok_buf_reserve(&keys, span->n) || tok_fast_vocab(span, collect_entry, &l, &keys)) {
        rc = gb_error_set(err, GB_ERR_FORMAT, "model.vocab: unexpected JSON");
        goto done;
    }
    int32_t max_id = -1;
    for (size_t i = 0; i < l.n; i++)
        if (l.v[i].id > max_id) max_id = l.v[i].id;
    b->arena = keys.p ? keys.p : malloc(1);
    keys.p = NULL;
    b->arena_len = keys.n;
    b->n_ids = max_id + 1;
    b->id_tok = calloc((size_t)b->n_ids + 1, sizeof *b->id_tok);
    b->id_len = calloc((size_t)b->n_ids + 1, sizeof *b->id_len);
    if (!b->arena || !b->id_tok || !b->id_len || tok_map_init(&b->vocab, l.n)) {
        rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory loading the vocabulary");
        goto done;
    }
    for (size_t i = 0; i < l.n; i++) {
        const char *s = b->arena + l.v[i].off;
        if (tok_map_put(&b->vocab, s, l.v[i].len, l.v[i].id)) {
            rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory loading the vocabulary");
            goto done;
        }
        b->id_tok[l.v[i].id] = s;
        b->id_len[l.v[i].id] = (uint32_t)l.v[i].len;
    }
done:
    tok_buf_free(&keys);
    free(l.v);
    return rc;
}

static int add_merge(tok_bpe *b, const char *l, size_t ln, const char *r, size_t rn, uint32_t rank,
                     size_t *count, char **scratch, size_t *scap, gb_error *err) {
    int32_t a = vocab_get(b, l, ln), c = vocab_get(b, r, rn);
    if (a < 0 || c < 0)
        return gb_error_set(err, GB_ERR_FORMAT,
                            "merge %u ('%.*s' '%.*s') uses a token not in the vocab", rank, (int)ln,
                            l, (int)rn, r);
    /* merged token = left + right without the continuing-subword prefix */
    size_t skip = (b->prefix && rn >= b->prefix_len && !memcmp(r, b->prefix, b->prefix_len))
                      ? b->prefix_len
                      : 0;
    size_t need = ln + rn - skip;
    if (need > *scap) {
        char *p = realloc(*scratch, need * 2);
        if (!p) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
        *scratch = p;
        *scap = need * 2;
    }
    memcpy(*scratch, l, ln);
    memcpy(*scratch + ln, r + skip, rn - skip);
    int32_t m = vocab_get(b, *scratch, need);
    if (m < 0)
        return gb_error_set(err, GB_ERR_FORMAT, "merge %u: merged token '%.*s' is not in the vocab",
                            rank, (int)need, *scratch);
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)c;
    size_t mask = b->merges_cap - 1, i = merge_slot(key, mask);
    while (b->merges[i].key != UINT64_MAX && b->merges[i].key != key)
        i = (i + 1) & mask;
    if (b->merges[i].key == UINT64_MAX) (*count)++;
    /* a repeated pair keeps the later rank, as the HashMap built by `tokenizers` does */
    b->merges[i] = (tok_merge){key, rank, m};
    return 0;
}

typedef struct {
    tok_bpe *b;
    uint32_t rank;
    size_t count, scap;
    char *scratch;
    gb_error *err;
} merge_ctx;

static int merge_cb(void *ctx, const char *l, size_t ln, const char *r, size_t rn) {
    merge_ctx *m = ctx;
    if (add_merge(m->b, l, ln, r, rn, m->rank, &m->count, &m->scratch, &m->scap, m->err)) return -1;
    m->rank++;
    return 0;
}

static int alloc_merges(tok_bpe *b, size_t n, gb_error *err) {
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    b->merges = malloc(cap * sizeof *b->merges);
    if (!b->merges) return gb_error_set(err, GB_ERR_NOMEM, "out of memory loading merges");
    for (size_t i = 0; i < cap; i++)
        b->merges[i].key = UINT64_MAX;
    b->merges_cap = cap;
    return 0;
}

static int parse_merges_fast(const tok_span *span, tok_bpe *b, gb_error *err) {
    /* upper bound of the count: one merge per '"' pair at least */
    size_t quotes = 0;
    for (size_t i = 0; i < span->n; i++)
        quotes += span->p[i] == '"';
    GB_TRY(alloc_merges(b, quotes / 2 + 1, err));
    merge_ctx m = {.b = b, .err = err};
    int rc = tok_fast_merges(span, merge_cb, &m);
    free(m.scratch);
    if (rc && !err->msg[0]) gb_error_set(err, GB_ERR_FORMAT, "model.merges: unexpected JSON");
    return rc ? (err->code ? err->code : GB_ERR_FORMAT) : 0;
}

static int parse_merges(const cJSON *merges, tok_bpe *b, gb_error *err) {
    if (merges && !cJSON_IsArray(merges))
        return gb_error_set(err, GB_ERR_FORMAT, "model.merges is not an array");
    size_t n = merges ? (size_t)cJSON_GetArraySize(merges) : 0, cap = 16, count = 0;
    while (cap < n * 2)
        cap *= 2;
    b->merges = malloc(cap * sizeof *b->merges);
    if (!b->merges) return gb_error_set(err, GB_ERR_NOMEM, "out of memory loading merges");
    for (size_t i = 0; i < cap; i++)
        b->merges[i].key = UINT64_MAX;
    b->merges_cap = cap;
    char *scratch = NULL;
    size_t scap = 0;
    uint32_t rank = 0;
    const cJSON *it;
    int rc = 0;
    cJSON_ArrayForEach(it, merges) {
        if (cJSON_IsString(it)) {
            const char *s = it->valuestring, *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                rc = gb_error_set(err, GB_ERR_FORMAT, "merge %u '%s' is not two tokens", rank, s);
                break;
            }
            rc = add_merge(b, s, (size_t)(sp - s), sp + 1, strlen(sp + 1), rank, &count, &scratch,
                           &scap, err);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
            const char *l = cJSON_GetArrayItem(it, 0)->valuestring;
            const char *r = cJSON_GetArrayItem(it, 1)->valuestring;
            rc = add_merge(b, l, strlen(l), r, strlen(r), rank, &count, &scratch, &scap, err);
        } else {
            rc = gb_error_set(err, GB_ERR_FORMAT, "merge %u is neither \"a b\" nor [\"a\", \"b\"]",
                              rank);
        }
        if (rc) break;
        rank++;
    }
    free(scratch);
    return rc;
}

int tok_bpe_parse(const cJSON *model, const tok_fast *fast, tok_bpe *b, gb_error *err) {
    memset(b, 0, sizeof *b);
    if (!cJSON_IsObject(model)) return gb_error_set(err, GB_ERR_FORMAT, "'model' is not an object");
    const char *type, *unk, *prefix, *suffix;
    GB_TRY(tok_json_str(model, "type", &type, err));
    if (type && strcmp(type, "BPE") != 0)
        return gb_error_set(err, GB_ERR_UNSUPPORTED, "unsupported model type '%s' (only BPE)",
                            type);
    if (!type && !tok_json_get(model, "merges"))
        return gb_error_set(err, GB_ERR_UNSUPPORTED, "model has no type and no merges (only BPE)");
    const cJSON *dropout = tok_json_get(model, "dropout");
    if (dropout && !cJSON_IsNull(dropout) &&
        !(cJSON_IsNumber(dropout) && (dropout->valuedouble == 0.0 || dropout->valuedouble == 1.0)))
        return gb_error_set(err, GB_ERR_UNSUPPORTED, "BPE dropout is not supported (random)");
    int rc;
    if ((rc = tok_json_str(model, "unk_token", &unk, err)) ||
        (rc = tok_json_str(model, "continuing_subword_prefix", &prefix, err)) ||
        (rc = tok_json_str(model, "end_of_word_suffix", &suffix, err)) ||
        (rc = tok_json_bool(model, "byte_fallback", false, &b->byte_fallback, err)) ||
        (rc = tok_json_bool(model, "fuse_unk", false, &b->fuse_unk, err)) ||
        (rc = tok_json_bool(model, "ignore_merges", false, &b->ignore_merges, err)))
        return gb_error_prefix(err, "model");
    size_t ulen;
    b->unk_token = unk ? dup_opt(unk, &ulen) : NULL;
    b->prefix = dup_opt(prefix, &b->prefix_len);
    b->suffix = dup_opt(suffix, &b->suffix_len);
    if (fast && fast->vocab.p)
        rc = parse_vocab_fast(&fast->vocab, b, err);
    else
        rc = parse_vocab(tok_json_get(model, "vocab"), b, err);
    if (!rc && fast && fast->merges.p)
        rc = parse_merges_fast(&fast->merges, b, err);
    else if (!rc)
        rc = parse_merges(tok_json_get(model, "merges"), b, err);
    if (rc) {
        tok_bpe_free(b);
        return rc;
    }
    b->fast_single = !b->prefix && !b->suffix;
    for (size_t c = 0; c < 0x800; c++) {
        char u[4];
        size_t n = c < 0x80 ? 1 : 2;
        if (n == 1)
            u[0] = (char)c;
        else {
            u[0] = (char)(0xC0 | (c >> 6));
            u[1] = (char)(0x80 | (c & 0x3F));
        }
        b->single_cp[c] = vocab_get(b, u, n);
    }
    for (int i = 0; i < 256; i++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", i);
        b->byte_ids[i] = vocab_get(b, name, 6);
    }
    return 0;
}

/* ---- merge loop ---- */

typedef struct {
    int32_t id;
    int32_t prev, next; /* symbol indices, -1 at the ends */
    bool alive;
} sym;

typedef struct {
    uint32_t rank, pos;
    int32_t new_id;
} cand;

static inline bool cand_less(cand a, cand b) {
    return a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos;
}

static void heap_push(cand *h, size_t *n, cand c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(c, h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static cand heap_pop(cand *h, size_t *n) {
    cand top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        cand best = last;
        if (l < *n && cand_less(h[l], best)) {
            m = l;
            best = h[l];
        }
        if (r < *n && cand_less(h[r], best)) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = last;
    return top;
}

static void merge_all(const tok_bpe *b, sym *s, size_t n, cand *heap) {
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        const tok_merge *m = merge_get(b, s[i].id, s[i + 1].id);
        if (m) heap_push(heap, &hn, (cand){m->rank, (uint32_t)i, m->new_id});
    }
    while (hn) {
        cand top = heap_pop(heap, &hn);
        sym *cur = &s[top.pos];
        if (!cur->alive || cur->next < 0) continue;
        sym *right = &s[cur->next];
        const tok_merge *m = merge_get(b, cur->id, right->id);
        if (!m || m->new_id != top.new_id) continue; /* stale entry */
        cur->id = top.new_id;
        right->alive = false;
        cur->next = right->next;
        if (cur->next >= 0) s[cur->next].prev = (int32_t)top.pos;
        if (cur->prev >= 0) {
            const tok_merge *pm = merge_get(b, s[cur->prev].id, cur->id);
            if (pm) heap_push(heap, &hn, (cand){pm->rank, (uint32_t)cur->prev, pm->new_id});
        }
        if (cur->next >= 0) {
            const tok_merge *nm = merge_get(b, cur->id, s[cur->next].id);
            if (nm) heap_push(heap, &hn, (cand){nm->rank, top.pos, nm->new_id});
        }
    }
}

/* Looks up one character of a word, with the continuing prefix / end suffix applied. */
static int32_t char_id(const tok_bpe *b, const char *c, size_t n, bool first, bool last,
                       tok_buf *scratch, const char **s_out, size_t *n_out) {
    *s_out = c;
    *n_out = n;
    if (b->fast_single) {
        if (n <= 2) {
            size_t adv;
            uint32_t cp = tok_utf8_decode(c, &adv);
            if (cp < 0x800) return b->single_cp[cp];
        }
        return vocab_get(b, c, n);
    }
    if ((!first && b->prefix) || (last && b->suffix)) {
        scratch->n = 0;
        if (!first && b->prefix) tok_buf_put(scratch, b->prefix, b->prefix_len);
        tok_buf_put(scratch, c, n);
        if (last && b->suffix) tok_buf_put(scratch, b->suffix, b->suffix_len);
        *s_out = scratch->p;
        *n_out = scratch->n;
    }
    return vocab_get(b, *s_out, *n_out);
}

int tok_bpe_encode_word(const tok_bpe *b, const char *w, size_t n, tok_ids *out, gb_error *err) {
    if (n == 0) return 0;
    if (b->ignore_merges) {
        int32_t id = vocab_get(b, w, n);
        if (id >= 0)
            return tok_ids_push(out, id) ? gb_error_set(err, GB_ERR_NOMEM, "out of memory") : 0;
    }
    /* at most one symbol per byte, plus byte-fallback expansion (4 per char, 1 per byte) */
    size_t cap = n + (b->prefix_len + b->suffix_len) * 2 + 4;
    sym stack_syms[64];
    cand stack_heap[128];
    sym *s = cap <= 64 ? stack_syms : malloc(cap * sizeof *s);
    cand *heap = cap <= 64 ? stack_heap : malloc(2 * cap * sizeof *heap);
    tok_buf scratch = {0};
    int rc = 0;
    if (!s || !heap) {
        rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t ns = 0;
    int32_t unk_id = -1; /* pending (fused) unknown */
    for (size_t i = 0; i < n;) {
        size_t clen = tok_utf8_len((unsigned char)w[i]);
        bool first = i == 0, last = i + clen >= n;
        const char *cs;
        size_t cn;
        int32_t id = char_id(b, w + i, clen, first, last, &scratch, &cs, &cn);
        i += clen;
        if (id >= 0) {
            if (unk_id >= 0) {
                s[ns++] = (sym){unk_id, 0, 0, true};
                unk_id = -1;
            }
            s[ns++] = (sym){id, 0, 0, true};
            continue;
        }
        if (b->byte_fallback) {
            bool all = true;
            for (size_t k = 0; k < cn; k++)
                if (b->byte_ids[(unsigned char)cs[k]] < 0) all = false;
            if (all) {
                if (ns + cn > cap) { /* prefix/suffix bytes can exceed the estimate */
                    cap = (ns + cn) * 2;
                    sym *ns_ =
                        s == stack_syms ? malloc(cap * sizeof *s) : realloc(s, cap * sizeof *s);
                    cand *nh = heap == stack_heap ? malloc(2 * cap * sizeof *heap)
                                                  : realloc(heap, 2 * cap * sizeof *heap);
                    if (!ns_ || !nh) {
                        rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
                        goto done;
                    }
                    if (s == stack_syms) memcpy(ns_, s, ns * sizeof *s);
                    s = ns_;
                    heap = nh;
                }
                for (size_t k = 0; k < cn; k++)
                    s[ns++] = (sym){b->byte_ids[(unsigned char)cs[k]], 0, 0, true};
                continue; /* a pending unknown stays pending, as in `tokenizers` */
            }
        }
        if (b->unk_token) {
            int32_t u = vocab_get(b, b->unk_token, strlen(b->unk_token));
            if (u < 0) {
                rc = gb_error_set(err, GB_ERR_INVALID, "unk_token '%s' is not in the vocab",
                                  b->unk_token);
                goto done;
            }
            if (unk_id >= 0 && !b->fuse_unk) s[ns++] = (sym){unk_id, 0, 0, true};
            unk_id = u;
        }
        /* no unk token: the character is dropped, as in `tokenizers` */
    }
    if (unk_id >= 0) s[ns++] = (sym){unk_id, 0, 0, true};
    for (size_t i = 0; i < ns; i++) {
        s[i].prev = (int32_t)i - 1;
        s[i].next = i + 1 < ns ? (int32_t)i + 1 : -1;
    }
    if (ns > 1) merge_all(b, s, ns, heap);
    for (size_t i = 0; i < ns; i++)
        if (s[i].alive && tok_ids_push(out, s[i].id)) {
            rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            break;
        }
done:
    if (s != stack_syms) free(s);
    if (heap != stack_heap) free(heap);
    tok_buf_free(&scratch);
    return rc;
}
