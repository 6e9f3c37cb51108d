/* Patterns of tokenizer.json (Split, Replace): Oniguruma-syntax regexes run through PCRE2 with
 * JIT, or plain literals.
 *
 * Three things keep PCRE2 identical to the Oniguruma engine `tokenizers` uses:
 *  - `\s` is rewritten to [\t-\r \x{85}\p{Z}]: PCRE2's \s (with UCP) also matches U+180E.
 *  - `\p{L}` / `\p{N}` get the letters and numbers newer than PCRE2's Unicode 14 tables.
 *  - the subject is validated once by the caller, and every match passes PCRE2_NO_UTF_CHECK;
 *    otherwise each call re-validates the rest of the subject and splitting goes quadratic. */
#define _GNU_SOURCE /* memmem */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "util/error.h"

#define WS_SET "\\t-\\r \\x{85}\\p{Z}"

/* Letters and numbers that Oniguruma in `tokenizers` knows and PCRE2 10.42 (Unicode 14) does
 * not: every code point where the two engines disagree on \p{L} / \p{N} (found by classifying
 * all code points with both; see tests/e2e/tokenizer_diff.js). Added to \p{L} and \p{N}. */
#define NEWER_L                                                                                    \
    "\\x{1c89}-\\x{1c8a}\\x{a7cb}-\\x{a7cd}\\x{a7da}-\\x{a7dc}"                                    \
    "\\x{105c0}-\\x{105f3}\\x{10d4a}-\\x{10d65}\\x{10d6f}-\\x{10d85}"                              \
    "\\x{10ec2}-\\x{10ec4}\\x{1123f}-\\x{11240}\\x{11380}-\\x{11389}"                              \
    "\\x{1138b}\\x{1138e}\\x{11390}-\\x{113b5}\\x{113b7}\\x{113d1}"                                \
    "\\x{113d3}\\x{11bc0}-\\x{11be0}\\x{11f02}\\x{11f04}-\\x{11f10}"                               \
    "\\x{11f12}-\\x{11f33}\\x{1342f}\\x{13441}-\\x{13446}"                                         \
    "\\x{13460}-\\x{143fa}\\x{16100}-\\x{1611d}\\x{16d40}-\\x{16d6c}"                              \
    "\\x{18cff}\\x{1b132}\\x{1b155}\\x{1df25}-\\x{1df2a}"                                          \
    "\\x{1e030}-\\x{1e06d}\\x{1e4d0}-\\x{1e4eb}\\x{1e5d0}-\\x{1e5ed}"                              \
    "\\x{1e5f0}\\x{2b739}\\x{2ebf0}-\\x{2ee5d}\\x{31350}-\\x{323af}"
#define NEWER_N                                                                                    \
    "\\x{10d40}-\\x{10d49}\\x{116d0}-\\x{116e3}\\x{11bf0}-\\x{11bf9}"                              \
    "\\x{11f50}-\\x{11f59}\\x{16130}-\\x{16139}\\x{16d70}-\\x{16d79}"                              \
    "\\x{1ccf0}-\\x{1ccf9}\\x{1d2c0}-\\x{1d2d3}\\x{1e4f0}-\\x{1e4f9}"                              \
    "\\x{1e5f1}-\\x{1e5fa}"

/* The decimal digits among them (all but the Kaktovik numerals U+1D2C0..U+1D2D3), for \d. */
#define NEWER_ND                                                                                   \
    "\\x{10d40}-\\x{10d49}\\x{116d0}-\\x{116e3}\\x{11bf0}-\\x{11bf9}"                              \
    "\\x{11f50}-\\x{11f59}\\x{16130}-\\x{16139}\\x{16d70}-\\x{16d79}"                              \
    "\\x{1ccf0}-\\x{1ccf9}\\x{1e4f0}-\\x{1e4f9}\\x{1e5f1}-\\x{1e5fa}"

static void put(char **o, const char *s) {
    size_t k = strlen(s);
    memcpy(*o, s, k);
    *o += k;
}

/* Rewrites \s, \S, \d, \D, \p{L} and \p{N} (also \pL, \pN) to the sets Oniguruma uses. */
static char *rewrite_pattern(const char *pat) {
    size_t n = strlen(pat);
    char *out = malloc(n * (sizeof NEWER_L + 16) + 1), *o = out;
    if (!out) return NULL;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = pat[i];
        if (c == '\\' && i + 1 < n) {
            char d = pat[i + 1];
            const char *prop = NULL;
            size_t plen = 0;
            if (d == 'p' && i + 2 < n && (pat[i + 2] == 'L' || pat[i + 2] == 'N')) {
                prop = pat[i + 2] == 'L' ? "\\p{L}" NEWER_L : "\\p{N}" NEWER_N;
                plen = 3;
            } else if (d == 'p' && i + 4 < n && pat[i + 2] == '{' && pat[i + 4] == '}' &&
                       (pat[i + 3] == 'L' || pat[i + 3] == 'N')) {
                prop = pat[i + 3] == 'L' ? "\\p{L}" NEWER_L : "\\p{N}" NEWER_N;
                plen = 5;
            }
            if (prop) {
                if (!in_class) put(&o, "[");
                put(&o, prop);
                if (!in_class) put(&o, "]");
                i += plen - 1;
                continue;
            }
            if (d == 'd') { /* Oniguruma's \d is Unicode Nd, like PCRE2's with UCP */
                put(&o, in_class ? "\\p{Nd}" NEWER_ND : "[\\p{Nd}" NEWER_ND "]");
                i++;
                continue;
            }
            if (d == 'D' && !in_class) {
                put(&o, "[^\\p{Nd}" NEWER_ND "]");
                i++;
                continue;
            }
            if (d == 's' || d == 'S') {
                put(&o, in_class ? (d == 's' ? WS_SET : "\\S")
                                 : (d == 's' ? "[" WS_SET "]" : "[^" WS_SET "]"));
            } else {
                *o++ = c;
                *o++ = d;
            }
            i++;
            continue;
        }
        if (c == '[') {
            /* "[" right after "[" or "[^" opening is a literal or a POSIX class; nesting is
             * counted so the class end is found. */
            in_class++;
            *o++ = c;
            if (in_class == 1) {
                if (i + 1 < n && pat[i + 1] == '^') *o++ = pat[++i];
                if (i + 1 < n && pat[i + 1] == ']') *o++ = pat[++i]; /* leading ] is literal */
            }
            continue;
        }
        if (c == ']' && in_class) in_class--;
        *o++ = c;
    }
    *o = 0;
    return out;
}

int tok_pattern_regex(tok_pattern *p, const char *pattern, gb_error *err) {
    memset(p, 0, sizeof *p);
    char *pat = rewrite_pattern(pattern);
    if (!pat) return gb_error_set(err, GB_ERR_NOMEM, "out of memory compiling a regex");
    int ec;
    PCRE2_SIZE eoff;
    p->code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                            PCRE2_UTF | PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C, &ec, &eoff, NULL);
    free(pat);
    if (!p->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return gb_error_set(err, GB_ERR_UNSUPPORTED, "regex '%s' does not compile: %s", pattern,
                            (char *)msg);
    }
    /* JIT is an optimisation; the interpreter gives identical results when it is missing. */
    pcre2_jit_compile(p->code, PCRE2_JIT_COMPLETE);
    return 0;
}

int tok_pattern_literal(tok_pattern *p, const char *s, size_t len, gb_error *err) {
    memset(p, 0, sizeof *p);
    if (len == 0) return gb_error_set(err, GB_ERR_UNSUPPORTED, "empty String pattern");
    p->lit = malloc(len + 1);
    if (!p->lit) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    memcpy(p->lit, s, len);
    p->lit[len] = 0;
    p->lit_len = len;
    return 0;
}

int tok_pattern_from_json(tok_pattern *p, const cJSON *j, gb_error *err) {
    memset(p, 0, sizeof *p);
    const cJSON *s = cJSON_IsObject(j) ? tok_json_get(j, "String") : NULL;
    const cJSON *r = cJSON_IsObject(j) ? tok_json_get(j, "Regex") : NULL;
    if (cJSON_IsString(s))
        return tok_pattern_literal(p, s->valuestring, strlen(s->valuestring), err);
    if (cJSON_IsString(r)) return tok_pattern_regex(p, r->valuestring, err);
    return gb_error_set(err, GB_ERR_FORMAT,
                        "'pattern' must be {\"String\": ..} or {\"Regex\": ..}");
}

void tok_pattern_free(tok_pattern *p) {
    if (p->code) pcre2_code_free(p->code);
    free(p->lit);
    memset(p, 0, sizeof *p);
}

void tok_match_ctx_free(tok_match_ctx *c) {
    if (c->md) pcre2_match_data_free(c->md);
    if (c->mctx) pcre2_match_context_free(c->mctx);
    if (c->jstack) pcre2_jit_stack_free(c->jstack);
    memset(c, 0, sizeof *c);
}

int tok_pattern_find(const tok_pattern *p, tok_match_ctx *c, const char *s, size_t n, size_t pos,
                     size_t *ms, size_t *me, gb_error *err) {
    if (!p->code) {
        if (pos >= n) return 0;
        const char *hit = memmem(s + pos, n - pos, p->lit, p->lit_len);
        if (!hit) return 0;
        *ms = (size_t)(hit - s);
        *me = *ms + p->lit_len;
        return 1;
    }
    if (!c->md) {
        c->md = pcre2_match_data_create(32, NULL);
        if (!c->md) return gb_error_set(err, GB_ERR_NOMEM, "out of memory (regex match data)");
    }
    while (pos <= n) {
        int rc = pcre2_match(p->code, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, c->md, c->mctx);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !c->jstack) {
            /* Deeply backtracking input: retry once with a large JIT stack. */
            c->mctx = pcre2_match_context_create(NULL);
            c->jstack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, NULL);
            if (!c->mctx || !c->jstack) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            pcre2_jit_stack_assign(c->mctx, NULL, c->jstack);
            continue;
        }
        if (rc == PCRE2_ERROR_NOMATCH) return 0;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return gb_error_set(err, GB_ERR_INTERNAL, "regex match failed: %s", (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        if (ov[1] > ov[0]) {
            *ms = ov[0];
            *me = ov[1];
            return 1;
        }
        /* Empty match: Oniguruma's find_iter moves one character on; so do we. */
        pos = ov[0] < n ? ov[0] + tok_utf8_len((unsigned char)s[ov[0]]) : n + 1;
    }
    return 0;
}
