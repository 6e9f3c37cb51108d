/* Added tokens (AddedVocabulary in `tokenizers`): a byte trie per kind (normalized:false tokens
 * are matched on the raw input, normalized:true ones on each normalized segment), scanned
 * leftmost-longest, with the single_word / lstrip / rstrip rules applied to each match. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "util/error.h"

typedef struct {
    int32_t child, sibling; /* node indices, -1 = none */
    int32_t tok;            /* index into tok_added.v when a pattern ends here, else -1 */
    unsigned char byte;
} trie_node;

struct tok_trie {
    trie_node *v;
    size_t n, cap;
    int32_t root_child[256];
};

static int32_t trie_new(tok_trie *t, unsigned char byte) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        trie_node *v = realloc(t->v, cap * sizeof *v);
        if (!v) return -1;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n] = (trie_node){-1, -1, -1, byte};
    return (int32_t)t->n++;
}

static int trie_insert(tok_trie *t, const char *s, size_t n, int32_t tok) {
    int32_t node = -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int32_t nx;
        if (node < 0) {
            nx = t->root_child[c];
            if (nx < 0) {
                if ((nx = trie_new(t, c)) < 0) return GB_ERR_NOMEM;
                t->root_child[c] = nx;
            }
        } else {
            nx = t->v[node].child;
            while (nx >= 0 && t->v[nx].byte != c)
                nx = t->v[nx].sibling;
            if (nx < 0) {
                if ((nx = trie_new(t, c)) < 0) return GB_ERR_NOMEM;
                t->v[nx].sibling = t->v[node].child;
                t->v[node].child = nx;
            }
        }
        node = nx;
    }
    if (node >= 0) t->v[node].tok = tok;
    return 0;
}

/* Longest pattern starting at s[0]; returns its token index and length, or -1. */
static int32_t trie_longest(const tok_trie *t, const char *s, size_t n, size_t *len) {
    int32_t node = t->root_child[(unsigned char)s[0]], best = -1;
    size_t i = 1;
    while (node >= 0) {
        if (t->v[node].tok >= 0) {
            best = t->v[node].tok;
            *len = i;
        }
        if (i >= n) break;
        unsigned char c = (unsigned char)s[i++];
        int32_t nx = t->v[node].child;
        while (nx >= 0 && t->v[nx].byte != c)
            nx = t->v[nx].sibling;
        node = nx;
    }
    return best;
}

static void trie_free(tok_trie *t) {
    if (!t) return;
    free(t->v);
    free(t);
}

static tok_trie *trie_create(void) {
    tok_trie *t = calloc(1, sizeof *t);
    if (t) memset(t->root_child, 0xFF, sizeof t->root_child);
    return t;
}

void tok_added_free(tok_added *a) {
    for (size_t i = 0; i < a->n; i++) {
        free(a->v[i].content);
        free(a->v[i].norm_content);
    }
    free(a->v);
    trie_free(a->raw);
    trie_free(a->norm);
    memset(a, 0, sizeof *a);
}

int tok_added_parse(const cJSON *arr, const tok_normalizer *nz, tok_added *a, gb_error *err) {
    memset(a, 0, sizeof *a);
    a->raw = trie_create();
    a->norm = trie_create();
    if (!a->raw || !a->norm) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    if (!arr || cJSON_IsNull(arr)) return 0;
    if (!cJSON_IsArray(arr))
        return gb_error_set(err, GB_ERR_FORMAT, "'added_tokens' is not an array");
    size_t n = (size_t)cJSON_GetArraySize(arr);
    a->v = calloc(n ? n : 1, sizeof *a->v);
    if (!a->v) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    tok_match_ctx mc = {0};
    const cJSON *it;
    int rc = 0;
    cJSON_ArrayForEach(it, arr) {
        tok_added_token *t = &a->v[a->n];
        const char *content;
        long long id;
        if (!cJSON_IsObject(it) || (rc = tok_json_str(it, "content", &content, err)) ||
            (rc = tok_json_int(it, "id", -1, &id, err)) || !content || id < 0 || id > 0x7FFFFFF0) {
            rc = gb_error_set(err, GB_ERR_FORMAT, "added_tokens[%zu] needs a 'content' and an 'id'",
                              a->n);
            break;
        }
        if ((rc = tok_json_bool(it, "special", false, &t->special, err)) ||
            (rc = tok_json_bool(it, "lstrip", false, &t->lstrip, err)) ||
            (rc = tok_json_bool(it, "rstrip", false, &t->rstrip, err)) ||
            (rc = tok_json_bool(it, "single_word", false, &t->single_word, err)) ||
            (rc = tok_json_bool(it, "normalized", !t->special, &t->normalized, err))) {
            gb_error_prefix(err, "added_tokens[%zu]", a->n);
            break;
        }
        t->id = (int32_t)id;
        t->len = strlen(content);
        t->content = malloc(t->len + 1);
        if (!t->content) {
            rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(t->content, content, t->len + 1);
        a->n++;
        if (t->len == 0) continue;
        if (!t->normalized) {
            rc = trie_insert(a->raw, t->content, t->len, (int32_t)(a->n - 1));
        } else {
            /* the pattern of a normalized token is its normalized content */
            tok_buf b = {0};
            rc = tok_buf_put(&b, t->content, t->len);
            if (!rc) rc = tok_normalizer_apply(nz, &mc, &b, err);
            if (!rc && b.n) rc = trie_insert(a->norm, b.p, b.n, (int32_t)(a->n - 1));
            t->norm_content = b.p;
            t->norm_len = b.n;
        }
        if (rc) {
            if (rc == GB_ERR_NOMEM) gb_error_set(err, rc, "out of memory");
            break;
        }
    }
    tok_match_ctx_free(&mc);
    return rc;
}

static uint32_t last_char(const char *s, size_t n) {
    size_t k = n - 1, adv;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    return tok_utf8_decode(s + k, &adv);
}

int tok_added_split(const tok_added *a, bool normalized_trie, const char *s, size_t n,
                    tok_split **out, size_t *n_out, gb_error *err) {
    const tok_trie *t = normalized_trie ? a->norm : a->raw;
    size_t cap = 8, k = 0;
    tok_split *v = malloc(cap * sizeof *v);
    if (!v) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    size_t start_offset = 0, pos = 0;
    while (t->n && pos < n) {
        /* leftmost-longest: first position with any match, longest match there */
        size_t i = pos, len = 0;
        int32_t tok = -1;
        for (; i < n; i++) {
            if (t->root_child[(unsigned char)s[i]] < 0) continue;
            tok = trie_longest(t, s + i, n - i, &len);
            if (tok >= 0) break;
        }
        if (tok < 0) break;
        pos = i + len;
        const tok_added_token *at = &a->v[tok];
        size_t start = i, stop = i + len;
        if (at->single_word) {
            size_t adv;
            bool start_space = start == 0 || !tok_is_word_char(last_char(s, start));
            bool stop_space = stop == n || !tok_is_word_char(tok_utf8_decode(s + stop, &adv));
            if (!start_space || !stop_space) continue;
        }
        if (at->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t k2 = ns - 1;
                while (k2 > 0 && ((unsigned char)s[k2] & 0xC0) == 0x80)
                    k2--;
                size_t adv;
                if (!tok_is_whitespace(tok_utf8_decode(s + k2, &adv))) break;
                ns = k2;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (at->rstrip) {
            while (stop < n) {
                size_t adv;
                if (!tok_is_whitespace(tok_utf8_decode(s + stop, &adv))) break;
                stop += adv;
            }
        }
        if (k + 2 > cap) {
            cap *= 2;
            tok_split *nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                free(v);
                return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            }
            v = nv;
        }
        if (start_offset < start) v[k++] = (tok_split){start_offset, start, -1};
        v[k++] = (tok_split){start, stop, tok};
        start_offset = stop;
    }
    if (start_offset < n) {
        if (k + 1 > cap) {
            tok_split *nv = realloc(v, (cap + 1) * sizeof *v);
            if (!nv) {
                free(v);
                return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            }
            v = nv;
        }
        v[k++] = (tok_split){start_offset, n, -1};
    }
    *out = v;
    *n_out = k;
    return 0;
}
