/* Normalizers of tokenizer.json: NFC/NFD/NFKC/NFKD (utf8proc), Prepend, Replace, Lowercase,
 * Strip, StripAccents, Sequence. Each maps one segment (text between added tokens) to a new
 * string; offsets are not tracked because genbench only needs ids. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_unicode9.h"
#include "util/error.h"

enum nz_kind { NZ_UNICODE, NZ_PREPEND, NZ_REPLACE, NZ_LOWER, NZ_STRIP, NZ_STRIP_ACCENTS, NZ_SEQ };

struct tok_normalizer {
    enum nz_kind kind;
    int uc_opts; /* NZ_UNICODE: utf8proc options */
    char *str;   /* Prepend text / Replace content */
    size_t str_len;
    tok_pattern pat;      /* Replace */
    bool left, right;     /* Strip */
    tok_normalizer **sub; /* Sequence */
    size_t n_sub;
};

void tok_normalizer_free(tok_normalizer *nz) {
    if (!nz) return;
    for (size_t i = 0; i < nz->n_sub; i++)
        tok_normalizer_free(nz->sub[i]);
    free(nz->sub);
    free(nz->str);
    tok_pattern_free(&nz->pat);
    free(nz);
}

static int dup_str(const char *s, char **out, size_t *len) {
    *len = strlen(s);
    *out = malloc(*len + 1);
    if (!*out) return GB_ERR_NOMEM;
    memcpy(*out, s, *len + 1);
    return 0;
}

int tok_normalizer_parse(const cJSON *j, tok_normalizer **out, gb_error *err) {
    *out = NULL;
    if (!j || cJSON_IsNull(j)) return 0;
    const char *type = NULL;
    if (!cJSON_IsObject(j) || tok_json_str(j, "type", &type, err) || !type)
        return gb_error_set(err, GB_ERR_FORMAT, "normalizer without a \"type\"");
    tok_normalizer *nz = calloc(1, sizeof *nz);
    if (!nz) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    int rc = 0;
    if (!strcmp(type, "NFC") || !strcmp(type, "NFD") || !strcmp(type, "NFKC") ||
        !strcmp(type, "NFKD")) {
        nz->kind = NZ_UNICODE;
        nz->uc_opts = UTF8PROC_STABLE |
                      (type[strlen(type) - 1] == 'C' ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE);
        if (type[2] == 'K') nz->uc_opts |= UTF8PROC_COMPAT;
    } else if (!strcmp(type, "Prepend")) {
        const char *s;
        nz->kind = NZ_PREPEND;
        if ((rc = tok_json_str(j, "prepend", &s, err)) == 0) {
            if (!s)
                rc = gb_error_set(err, GB_ERR_FORMAT, "Prepend normalizer without 'prepend'");
            else if (dup_str(s, &nz->str, &nz->str_len))
                rc = GB_ERR_NOMEM;
        }
    } else if (!strcmp(type, "Replace")) {
        const char *s;
        nz->kind = NZ_REPLACE;
        if ((rc = tok_json_str(j, "content", &s, err)) == 0) {
            if (!s)
                rc = gb_error_set(err, GB_ERR_FORMAT, "Replace normalizer without 'content'");
            else if (dup_str(s, &nz->str, &nz->str_len))
                rc = GB_ERR_NOMEM;
            else
                rc = tok_pattern_from_json(&nz->pat, tok_json_get(j, "pattern"), err);
        }
    } else if (!strcmp(type, "Lowercase")) {
        nz->kind = NZ_LOWER;
    } else if (!strcmp(type, "StripAccents")) {
        nz->kind = NZ_STRIP_ACCENTS;
    } else if (!strcmp(type, "Strip")) {
        nz->kind = NZ_STRIP;
        if (!(rc = tok_json_bool(j, "strip_left", true, &nz->left, err)))
            rc = tok_json_bool(j, "strip_right", true, &nz->right, err);
    } else if (!strcmp(type, "Sequence")) {
        nz->kind = NZ_SEQ;
        const cJSON *arr = tok_json_get(j, "normalizers");
        if (!cJSON_IsArray(arr)) {
            rc = gb_error_set(err, GB_ERR_FORMAT, "Sequence normalizer without 'normalizers'");
        } else {
            int n = cJSON_GetArraySize(arr);
            nz->sub = calloc(n ? (size_t)n : 1, sizeof *nz->sub);
            if (!nz->sub) rc = GB_ERR_NOMEM;
            const cJSON *it;
            cJSON_ArrayForEach(it, arr) {
                if (rc) break;
                rc = tok_normalizer_parse(it, &nz->sub[nz->n_sub], err);
                if (!rc && nz->sub[nz->n_sub]) nz->n_sub++;
            }
        }
    } else {
        rc = gb_error_set(err, GB_ERR_UNSUPPORTED, "unsupported normalizer type '%s'", type);
    }
    if (rc == GB_ERR_NOMEM && !err->msg[0]) gb_error_set(err, rc, "out of memory");
    if (rc) {
        tok_normalizer_free(nz);
        return rc;
    }
    *out = nz;
    return 0;
}

static int map_utf8proc(const char *s, size_t n, int opts, tok_buf *out, gb_error *err) {
    if (n == 0) return 0;
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst,
                                      (utf8proc_option_t)opts);
    if (r < 0) return gb_error_set(err, GB_ERR_INTERNAL, "utf8proc: %s", utf8proc_errmsg(r));
    int rc = tok_buf_put(out, dst, (size_t)r);
    free(dst);
    return rc ? gb_error_set(err, GB_ERR_NOMEM, "out of memory") : 0;
}

static bool hf_norm_unknown(uint32_t c) {
    return c == 0x11A7 ||
           tok_in_ranges(tok_hf_norm_unknown,
                         (int)(sizeof tok_hf_norm_unknown / sizeof tok_hf_norm_unknown[0]), c);
}

/* `tokenizers`' NFC/NFD/NFKC/NFKD use Unicode 9 tables: a code point it does not know is a
 * starter that neither decomposes nor composes, so the text is normalized in pieces around
 * such code points (tok_unicode9.h), which are copied unchanged. U+11A7 (the T-jamo base) is
 * handled the same way to avoid a utf8proc 2.8 bug: it composes an LV syllable with U+11A7 and
 * drops the U+11A7, although U+11A7 is not a trailing consonant. */
static int apply_unicode(const tok_normalizer *nz, tok_buf *s, gb_error *err) {
    size_t i = 0;
    while (i < s->n && !(s->p[i] & 0x80))
        i++;
    if (i == s->n) return 0; /* ASCII is invariant under all four forms */
    tok_buf out = {0};
    size_t seg = 0;
    int rc = 0;
    while (i < s->n && !rc) {
        if (!(s->p[i] & 0x80)) {
            i++;
            continue;
        }
        size_t adv;
        uint32_t c = tok_utf8_decode(s->p + i, &adv);
        if (hf_norm_unknown(c)) {
            rc = map_utf8proc(s->p + seg, i - seg, nz->uc_opts, &out, err);
            if (!rc && tok_buf_put(&out, s->p + i, adv))
                rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            seg = i + adv;
        }
        i += adv;
    }
    if (!rc) rc = map_utf8proc(s->p + seg, s->n - seg, nz->uc_opts, &out, err);
    if (!rc && !out.p && tok_buf_reserve(&out, 0)) rc = gb_error_set(err, GB_ERR_NOMEM, "oom");
    if (rc) {
        tok_buf_free(&out);
        return rc;
    }
    tok_buf_free(s);
    *s = out;
    return 0;
}

static int apply_replace(const tok_normalizer *nz, tok_match_ctx *mc, tok_buf *s, gb_error *err) {
    tok_buf out = {0};
    size_t pos = 0, ms, me;
    int rc;
    while ((rc = tok_pattern_find(&nz->pat, mc, s->p, s->n, pos, &ms, &me, err)) == 1) {
        if (tok_buf_put(&out, s->p + pos, ms - pos) || tok_buf_put(&out, nz->str, nz->str_len)) {
            rc = GB_ERR_NOMEM;
            break;
        }
        pos = me;
    }
    if (rc == 0 && pos == 0) {
        tok_buf_free(&out);
        return 0; /* no match: unchanged */
    }
    if (rc == 0) rc = tok_buf_put(&out, s->p + pos, s->n - pos);
    if (rc) {
        tok_buf_free(&out);
        return rc == GB_ERR_NOMEM ? gb_error_set(err, rc, "out of memory") : rc;
    }
    tok_buf_free(s);
    *s = out;
    return 0;
}

/* Lowercase as Rust's char::to_lowercase (what `tokenizers` uses): its tables are Unicode 17,
 * utf8proc 2.8's are 15. These are all the code points where the two differ (found by comparing
 * every code point with ICU's toLowerCase, which matches `tokenizers`' Lowercase everywhere),
 * except U+0130, whose full lowercase is two characters (handled by the caller). */
static uint32_t lower_cp(uint32_t c) {
    if (c >= 0x10D50 && c <= 0x10D65) return c + 0x20; /* Garay (16.0) */
    if (c >= 0x16EA0 && c <= 0x16EB8) return c + 0x1B; /* Beria Erfe (17.0) */
    switch (c) {
    case 0x1C89:
        return 0x1C8A;
    case 0xA7CB:
        return 0x0264;
    case 0xA7CC:
        return 0xA7CD;
    case 0xA7CE:
        return 0xA7CF;
    case 0xA7D2:
        return 0xA7D3;
    case 0xA7D4:
        return 0xA7D5;
    case 0xA7DA:
        return 0xA7DB;
    case 0xA7DC:
        return 0x019B;
    default:
        return (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
    }
}

/* A combining mark as `tokenizers`' StripAccents sees it (Unicode 9 tables). */
static bool is_mark(uint32_t c) {
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    if (k != UTF8PROC_CATEGORY_MN && k != UTF8PROC_CATEGORY_MC && k != UTF8PROC_CATEGORY_ME)
        return false;
    return !tok_in_ranges(tok_hf_not_marks,
                          (int)(sizeof tok_hf_not_marks / sizeof tok_hf_not_marks[0]), c);
}

static int apply_chars(const tok_normalizer *nz, tok_buf *s) {
    tok_buf out = {0};
    int rc = tok_buf_reserve(&out, s->n);
    for (size_t i = 0; i < s->n && !rc;) {
        size_t adv;
        uint32_t c = tok_utf8_decode(s->p + i, &adv);
        if (nz->kind == NZ_LOWER) {
            if (c == 0x130) { /* Rust's full lowercase of U+0130 is "i\u0307" */
                rc = tok_buf_put(&out, "i\xCC\x87", 3);
            } else {
                rc = tok_buf_put_cp(&out, lower_cp(c));
            }
        } else if (!is_mark(c)) { /* StripAccents drops every combining mark (Mn, Mc, Me) */
            rc = tok_buf_put(&out, s->p + i, adv);
        }
        i += adv;
    }
    if (rc) {
        tok_buf_free(&out);
        return rc;
    }
    tok_buf_free(s);
    *s = out;
    return 0;
}

static void apply_strip(const tok_normalizer *nz, tok_buf *s) {
    size_t a = 0, b = s->n;
    if (!s->n) return;
    if (nz->left)
        while (a < b) {
            size_t adv;
            if (!tok_is_whitespace(tok_utf8_decode(s->p + a, &adv))) break;
            a += adv;
        }
    if (nz->right)
        while (b > a) {
            size_t k = b - 1, adv;
            while (k > a && ((unsigned char)s->p[k] & 0xC0) == 0x80)
                k--;
            if (!tok_is_whitespace(tok_utf8_decode(s->p + k, &adv))) break;
            b = k;
        }
    memmove(s->p, s->p + a, b - a);
    s->n = b - a;
    if (s->p) s->p[s->n] = 0;
}

int tok_normalizer_apply(const tok_normalizer *nz, tok_match_ctx *mc, tok_buf *s, gb_error *err) {
    if (!nz) return 0;
    switch (nz->kind) {
    case NZ_UNICODE:
        return apply_unicode(nz, s, err);
    case NZ_PREPEND: {
        if (s->n == 0) return 0; /* `tokenizers` prepends only to non-empty strings */
        tok_buf out = {0};
        if (tok_buf_put(&out, nz->str, nz->str_len) || tok_buf_put(&out, s->p, s->n)) {
            tok_buf_free(&out);
            return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
        }
        tok_buf_free(s);
        *s = out;
        return 0;
    }
    case NZ_REPLACE:
        return apply_replace(nz, mc, s, err);
    case NZ_LOWER:
    case NZ_STRIP_ACCENTS:
        if (apply_chars(nz, s)) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
        return 0;
    case NZ_STRIP:
        apply_strip(nz, s);
        return 0;
    case NZ_SEQ:
        for (size_t i = 0; i < nz->n_sub; i++)
            GB_TRY(tok_normalizer_apply(nz->sub[i], mc, s, err));
        return 0;
    }
    return 0;
}
