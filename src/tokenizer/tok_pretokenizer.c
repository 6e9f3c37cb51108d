/* Pre-tokenizers of tokenizer.json: Split (String/Regex, five behaviours, invert), ByteLevel
 * (GPT-2 regex optional, add_prefix_space), Metaspace, Digits, Sequence. A pre-tokenizer maps a
 * list of pieces to a new list; empty pieces are dropped, as `tokenizers` does. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"
#include "util/error.h"

/* Onig-syntax GPT-2 pattern used by ByteLevel when use_regex is true. */
#define GPT2_REGEX                                                                                 \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

enum pt_kind { PT_SPLIT, PT_BYTELEVEL, PT_METASPACE, PT_DIGITS, PT_SEQ };
enum behavior { B_REMOVED, B_ISOLATED, B_MERGED_PREV, B_MERGED_NEXT, B_CONTIGUOUS };

struct tok_pretokenizer {
    enum pt_kind kind;
    tok_pattern pat; /* Split pattern; ByteLevel GPT-2 regex */
    enum behavior behavior;
    bool invert;
    bool add_prefix_space, use_regex; /* ByteLevel */
    char repl[8];                     /* Metaspace replacement (one char, UTF-8) */
    size_t repl_len;
    int scheme; /* Metaspace: 0 always, 1 first, 2 never */
    bool split; /* Metaspace */
    bool individual_digits;
    tok_pretokenizer **sub;
    size_t n_sub;
};

int tok_pieces_add(tok_pieces *ps, const char *s, size_t len, bool at_origin) {
    if (len == 0) return 0;
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 16;
        tok_piece *v = realloc(ps->v, cap * sizeof *v);
        if (!v) return GB_ERR_NOMEM;
        ps->v = v;
        ps->cap = cap;
    }
    size_t off = ps->text.n;
    if (tok_buf_put(&ps->text, s, len)) return GB_ERR_NOMEM;
    ps->v[ps->n++] = (tok_piece){off, len, at_origin};
    return 0;
}

void tok_pieces_clear(tok_pieces *ps) {
    ps->n = 0;
    ps->text.n = 0;
}

void tok_pieces_free(tok_pieces *ps) {
    tok_buf_free(&ps->text);
    free(ps->v);
    memset(ps, 0, sizeof *ps);
}

void tok_pretokenizer_free(tok_pretokenizer *pt) {
    if (!pt) return;
    for (size_t i = 0; i < pt->n_sub; i++)
        tok_pretokenizer_free(pt->sub[i]);
    free(pt->sub);
    tok_pattern_free(&pt->pat);
    free(pt);
}

bool tok_pretokenizer_uses_bytelevel(const tok_pretokenizer *pt) {
    if (!pt) return false;
    if (pt->kind == PT_BYTELEVEL) return true;
    for (size_t i = 0; i < pt->n_sub; i++)
        if (tok_pretokenizer_uses_bytelevel(pt->sub[i])) return true;
    return false;
}

static int parse_behavior(const cJSON *j, enum behavior *b, gb_error *err) {
    const char *s;
    GB_TRY(tok_json_str(j, "behavior", &s, err));
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                  "Contiguous"};
    for (int i = 0; s && i < 5; i++)
        if (!strcmp(s, names[i])) {
            *b = (enum behavior)i;
            return 0;
        }
    return gb_error_set(err, GB_ERR_UNSUPPORTED, "unsupported Split behavior '%s'",
                        s ? s : "(missing)");
}

static int set_replacement(tok_pretokenizer *pt, const char *r, gb_error *err) {
    size_t n = r ? strlen(r) : 0;
    if (n == 0 || n > 4 || tok_utf8_invalid_at(r, n) != n || tok_utf8_len((unsigned char)r[0]) != n)
        return gb_error_set(err, GB_ERR_FORMAT, "Metaspace 'replacement' must be one character");
    memcpy(pt->repl, r, n);
    pt->repl_len = n;
    return 0;
}

int tok_pretokenizer_metaspace(const char *replacement, int scheme, bool split,
                               tok_pretokenizer **out, gb_error *err) {
    tok_pretokenizer *pt = calloc(1, sizeof *pt);
    if (!pt) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    pt->kind = PT_METASPACE;
    pt->scheme = scheme;
    pt->split = split;
    int rc = set_replacement(pt, replacement, err);
    if (rc) {
        free(pt);
        return rc;
    }
    *out = pt;
    return 0;
}

int tok_pretokenizer_parse(const cJSON *j, tok_pretokenizer **out, gb_error *err) {
    *out = NULL;
    if (!j || cJSON_IsNull(j)) return 0;
    const char *type = NULL;
    if (!cJSON_IsObject(j) || tok_json_str(j, "type", &type, err) || !type)
        return gb_error_set(err, GB_ERR_FORMAT, "pre_tokenizer without a \"type\"");
    tok_pretokenizer *pt = calloc(1, sizeof *pt);
    if (!pt) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    int rc = 0;
    if (!strcmp(type, "Split")) {
        pt->kind = PT_SPLIT;
        if (!(rc = parse_behavior(j, &pt->behavior, err)) &&
            !(rc = tok_json_bool(j, "invert", false, &pt->invert, err)))
            rc = tok_pattern_from_json(&pt->pat, tok_json_get(j, "pattern"), err);
    } else if (!strcmp(type, "ByteLevel")) {
        pt->kind = PT_BYTELEVEL;
        if (!(rc = tok_json_bool(j, "add_prefix_space", true, &pt->add_prefix_space, err)) &&
            !(rc = tok_json_bool(j, "use_regex", true, &pt->use_regex, err)) && pt->use_regex)
            rc = tok_pattern_regex(&pt->pat, GPT2_REGEX, err);
    } else if (!strcmp(type, "Metaspace")) {
        const char *r, *scheme;
        bool aps;
        pt->kind = PT_METASPACE;
        if (!(rc = tok_json_str(j, "replacement", &r, err)) &&
            !(rc = set_replacement(pt, r, err)) &&
            !(rc = tok_json_bool(j, "split", true, &pt->split, err)) &&
            !(rc = tok_json_str(j, "prepend_scheme", &scheme, err))) {
            if (!scheme) { /* older files: add_prefix_space (default true) means "always" */
                rc = tok_json_bool(j, "add_prefix_space", true, &aps, err);
                pt->scheme = aps ? 0 : 2;
            } else if (!strcmp(scheme, "always")) {
                pt->scheme = 0;
            } else if (!strcmp(scheme, "first")) {
                pt->scheme = 1;
            } else if (!strcmp(scheme, "never")) {
                pt->scheme = 2;
            } else {
                rc = gb_error_set(err, GB_ERR_UNSUPPORTED, "unsupported prepend_scheme '%s'",
                                  scheme);
            }
        }
    } else if (!strcmp(type, "Digits")) {
        pt->kind = PT_DIGITS;
        rc = tok_json_bool(j, "individual_digits", false, &pt->individual_digits, err);
    } else if (!strcmp(type, "Sequence")) {
        pt->kind = PT_SEQ;
        const cJSON *arr = tok_json_get(j, "pretokenizers");
        if (!cJSON_IsArray(arr)) {
            rc = gb_error_set(err, GB_ERR_FORMAT, "Sequence pre_tokenizer without 'pretokenizers'");
        } else {
            int n = cJSON_GetArraySize(arr);
            pt->sub = calloc(n ? (size_t)n : 1, sizeof *pt->sub);
            if (!pt->sub) rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            const cJSON *it;
            cJSON_ArrayForEach(it, arr) {
                if (rc) break;
                rc = tok_pretokenizer_parse(it, &pt->sub[pt->n_sub], err);
                if (!rc && pt->sub[pt->n_sub]) pt->n_sub++;
            }
        }
    } else {
        rc = gb_error_set(err, GB_ERR_UNSUPPORTED, "unsupported pre_tokenizer type '%s'", type);
    }
    if (rc) {
        tok_pretokenizer_free(pt);
        return rc;
    }
    *out = pt;
    return 0;
}

/* ---- splitting ---- */

typedef struct {
    size_t start, end;
    bool match;
} seg;

typedef struct {
    seg *v;
    size_t n, cap;
} segs;

static int segs_add(segs *s, size_t a, size_t b, bool m) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        seg *v = realloc(s->v, cap * sizeof *v);
        if (!v) return GB_ERR_NOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (seg){a, b, m};
    return 0;
}

/* Applies a split behaviour to the match list of one piece and emits the resulting pieces
 * (NormalizedString::split in `tokenizers`). */
static int emit_behavior(const seg *m, size_t n, enum behavior b, const char *s, bool origin,
                         tok_pieces *out) {
    size_t i = 0;
#define EMIT(a, z) GB_TRY(tok_pieces_add(out, s + (a), (z) - (a), origin && (a) == 0))
    switch (b) {
    case B_REMOVED:
        for (i = 0; i < n; i++)
            if (!m[i].match) EMIT(m[i].start, m[i].end);
        return 0;
    case B_ISOLATED:
        for (i = 0; i < n; i++)
            EMIT(m[i].start, m[i].end);
        return 0;
    case B_MERGED_PREV: {
        /* A match joins the piece before it (unless that was a match too). */
        bool prev_match = false, have = false;
        size_t a = 0, z = 0;
        for (i = 0; i < n; i++) {
            if (m[i].match && !prev_match && have) {
                z = m[i].end;
            } else {
                if (have) EMIT(a, z);
                a = m[i].start;
                z = m[i].end;
                have = true;
            }
            prev_match = m[i].match;
        }
        if (have) EMIT(a, z);
        return 0;
    }
    case B_MERGED_NEXT: {
        /* A match joins the piece after it: walk backwards. Collect starts then emit. */
        size_t *starts = malloc((n + 1) * sizeof *starts), *ends = malloc((n + 1) * sizeof *ends);
        size_t k = 0;
        if (!starts || !ends) {
            free(starts);
            free(ends);
            return GB_ERR_NOMEM;
        }
        bool prev_match = false;
        for (size_t r = n; r-- > 0;) {
            if (m[r].match && !prev_match && k > 0) {
                starts[k - 1] = m[r].start;
            } else {
                starts[k] = m[r].start;
                ends[k] = m[r].end;
                k++;
            }
            prev_match = m[r].match;
        }
        int rc = 0;
        for (size_t q = k; q-- > 0 && !rc;)
            rc = tok_pieces_add(out, s + starts[q], ends[q] - starts[q], origin && starts[q] == 0);
        free(starts);
        free(ends);
        return rc;
    }
    case B_CONTIGUOUS: {
        bool prev_match = false, have = false;
        size_t a = 0, z = 0;
        for (i = 0; i < n; i++) {
            if (m[i].match == prev_match && have) {
                z = m[i].end;
            } else {
                if (have) EMIT(a, z);
                a = m[i].start;
                z = m[i].end;
                have = true;
            }
            prev_match = m[i].match;
        }
        if (have) EMIT(a, z);
        return 0;
    }
    }
#undef EMIT
    return 0;
}

/* Match list of a pattern over s (Pattern::find_matches): gaps and matches, in order. */
static int pattern_segs(const tok_pattern *p, tok_match_ctx *mc, const char *s, size_t n,
                        bool invert, segs *out, gb_error *err) {
    size_t pos = 0, prev = 0, ms, me;
    int rc;
    out->n = 0;
    while ((rc = tok_pattern_find(p, mc, s, n, pos, &ms, &me, err)) == 1) {
        if (ms > prev && segs_add(out, prev, ms, invert)) return GB_ERR_NOMEM;
        if (segs_add(out, ms, me, !invert)) return GB_ERR_NOMEM;
        prev = pos = me;
    }
    if (rc) return rc;
    if (prev < n && segs_add(out, prev, n, invert)) return GB_ERR_NOMEM;
    return 0;
}

/* Rust char::is_numeric (general categories Nd, Nl, No) as `tokenizers` sees it: Rust's tables
 * are Unicode 17, utf8proc 2.8's are 15. These ranges are all the numbers added since (found by
 * comparing every code point with ICU's \p{N}, Unicode 17). */
static bool is_numeric(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    static const uint32_t newer[][2] = {{0x10D40, 0x10D49}, {0x116D0, 0x116E3}, {0x11BF0, 0x11BF9},
                                        {0x11DE0, 0x11DE9}, {0x16130, 0x16139}, {0x16D70, 0x16D79},
                                        {0x16FF4, 0x16FF6}, {0x1CCF0, 0x1CCF9}, {0x1E5F1, 0x1E5FA}};
    if (c >= 0x10D40)
        for (size_t i = 0; i < sizeof newer / sizeof newer[0]; i++)
            if (c >= newer[i][0] && c <= newer[i][1]) return true;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

static int bytelevel_map(const char *s, size_t n, bool origin, tok_pieces *out) {
    size_t off = out->text.n;
    if (tok_buf_reserve(&out->text, 2 * n)) return GB_ERR_NOMEM;
    char *o = out->text.p + off;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = tok_byte_to_cp((unsigned char)s[i]);
        if (cp < 0x80) {
            *o++ = (char)cp;
        } else {
            *o++ = (char)(0xC0 | (cp >> 6));
            *o++ = (char)(0x80 | (cp & 0x3F));
        }
    }
    size_t len = (size_t)(o - (out->text.p + off));
    out->text.n += len;
    out->text.p[out->text.n] = 0;
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 16;
        tok_piece *v = realloc(out->v, cap * sizeof *v);
        if (!v) return GB_ERR_NOMEM;
        out->v = v;
        out->cap = cap;
    }
    out->v[out->n++] = (tok_piece){off, len, origin};
    return 0;
}

static int apply_one(const tok_pretokenizer *pt, tok_match_ctx *mc, const char *s, size_t n,
                     bool origin, tok_pieces *out, segs *sg, tok_buf *tmp, gb_error *err) {
    switch (pt->kind) {
    case PT_SPLIT:
        GB_TRY(pattern_segs(&pt->pat, mc, s, n, pt->invert, sg, err));
        return emit_behavior(sg->v, sg->n, pt->behavior, s, origin, out);
    case PT_DIGITS: {
        sg->n = 0;
        size_t prev = 0;
        for (size_t i = 0; i < n;) {
            size_t adv;
            uint32_t c = tok_utf8_decode(s + i, &adv);
            if (is_numeric(c)) {
                if (i > prev && segs_add(sg, prev, i, false)) return GB_ERR_NOMEM;
                if (segs_add(sg, i, i + adv, true)) return GB_ERR_NOMEM;
                prev = i + adv;
            }
            i += adv;
        }
        if (prev < n && segs_add(sg, prev, n, false)) return GB_ERR_NOMEM;
        return emit_behavior(sg->v, sg->n, pt->individual_digits ? B_ISOLATED : B_CONTIGUOUS, s,
                             origin, out);
    }
    case PT_BYTELEVEL: {
        tmp->n = 0;
        if (pt->add_prefix_space && s[0] != ' ') GB_TRY(tok_buf_putc(tmp, ' '));
        GB_TRY(tok_buf_put(tmp, s, n));
        if (!pt->use_regex) return bytelevel_map(tmp->p, tmp->n, origin, out);
        GB_TRY(pattern_segs(&pt->pat, mc, tmp->p, tmp->n, false, sg, err));
        for (size_t i = 0; i < sg->n; i++)
            GB_TRY(bytelevel_map(tmp->p + sg->v[i].start, sg->v[i].end - sg->v[i].start,
                                 origin && sg->v[i].start == 0, out));
        return 0;
    }
    case PT_METASPACE: {
        tmp->n = 0;
        bool starts = false;
        /* replace ' ' by the replacement, then maybe prepend it */
        for (size_t i = 0; i < n; i++) {
            if (s[i] == ' ')
                GB_TRY(tok_buf_put(tmp, pt->repl, pt->repl_len));
            else
                GB_TRY(tok_buf_putc(tmp, s[i]));
        }
        starts = tmp->n >= pt->repl_len && memcmp(tmp->p, pt->repl, pt->repl_len) == 0;
        bool prepend = !starts && (pt->scheme == 0 || (pt->scheme == 1 && origin));
        if (prepend) {
            GB_TRY(tok_buf_reserve(tmp, pt->repl_len));
            memmove(tmp->p + pt->repl_len, tmp->p, tmp->n);
            memcpy(tmp->p, pt->repl, pt->repl_len);
            tmp->n += pt->repl_len;
            tmp->p[tmp->n] = 0;
        }
        if (!pt->split) return tok_pieces_add(out, tmp->p, tmp->n, origin);
        tok_pattern lit = {.lit = (char *)pt->repl, .lit_len = pt->repl_len};
        GB_TRY(pattern_segs(&lit, mc, tmp->p, tmp->n, false, sg, err));
        return emit_behavior(sg->v, sg->n, B_MERGED_NEXT, tmp->p, origin, out);
    }
    case PT_SEQ:
        break;
    }
    return 0;
}

int tok_pretokenizer_apply(const tok_pretokenizer *pt, tok_match_ctx *mc, tok_pieces *ps,
                           tok_pieces *tmp, gb_error *err) {
    if (!pt) return 0;
    if (pt->kind == PT_SEQ) {
        for (size_t i = 0; i < pt->n_sub; i++)
            GB_TRY(tok_pretokenizer_apply(pt->sub[i], mc, ps, tmp, err));
        return 0;
    }
    segs sg = {0};
    tok_buf scratch = {0};
    int rc = 0;
    tok_pieces_clear(tmp);
    for (size_t i = 0; i < ps->n && !rc; i++) {
        const tok_piece *p = &ps->v[i];
        rc = apply_one(pt, mc, ps->text.p + p->off, p->len, p->at_origin, tmp, &sg, &scratch, err);
    }
    free(sg.v);
    tok_buf_free(&scratch);
    if (rc) return rc == GB_ERR_NOMEM && !err->msg[0] ? gb_error_set(err, rc, "out of memory") : rc;
    tok_pieces swap = *ps;
    *ps = *tmp;
    *tmp = swap;
    return 0;
}
