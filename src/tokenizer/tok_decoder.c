/* Decoders of tokenizer.json: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace,
 * BPEDecoder, Sequence. Like `tokenizers`, each decoder maps a list of token strings to a new
 * list (decode_chain) and the final list is concatenated. */
#define _GNU_SOURCE /* memmem, strdup */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "util/error.h"

enum dec_kind {
    D_BYTELEVEL,
    D_REPLACE,
    D_BYTEFALLBACK,
    D_FUSE,
    D_STRIP,
    D_METASPACE,
    D_BPE,
    D_SEQ
};

struct tok_decoder {
    enum dec_kind kind;
    tok_pattern pat; /* Replace */
    char *str;       /* Replace content, BPEDecoder suffix */
    size_t str_len;
    uint32_t ch; /* Strip content, Metaspace replacement (code point) */
    long long start, stop;
    bool prepend; /* Metaspace: prepend_scheme != never */
    tok_decoder **sub;
    size_t n_sub;
};

int tok_strs_add(tok_strs *l, const char *s, size_t n) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        size_t *o = realloc(l->off, cap * sizeof *o), *q;
        if (!o) return GB_ERR_NOMEM;
        l->off = o;
        q = realloc(l->len, cap * sizeof *q);
        if (!q) return GB_ERR_NOMEM;
        l->len = q;
        l->cap = cap;
    }
    l->off[l->n] = l->text.n;
    l->len[l->n] = n;
    if (tok_buf_put(&l->text, s, n)) return GB_ERR_NOMEM;
    l->n++;
    return 0;
}

void tok_strs_free(tok_strs *l) {
    tok_buf_free(&l->text);
    free(l->off);
    free(l->len);
    memset(l, 0, sizeof *l);
}

void tok_decoder_free(tok_decoder *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n_sub; i++)
        tok_decoder_free(d->sub[i]);
    free(d->sub);
    free(d->str);
    tok_pattern_free(&d->pat);
    free(d);
}

static int one_char(const char *s, uint32_t *cp, const char *what, gb_error *err) {
    size_t n = s ? strlen(s) : 0, adv = 0;
    if (n && tok_utf8_invalid_at(s, n) == n) *cp = tok_utf8_decode(s, &adv);
    if (!n || adv != n) return gb_error_set(err, GB_ERR_FORMAT, "%s must be one character", what);
    return 0;
}

int tok_decoder_parse(const cJSON *j, tok_decoder **out, gb_error *err) {
    *out = NULL;
    if (!j || cJSON_IsNull(j)) return 0;
    const char *type = NULL, *s = NULL;
    if (!cJSON_IsObject(j) || tok_json_str(j, "type", &type, err) || !type)
        return gb_error_set(err, GB_ERR_FORMAT, "decoder without a \"type\"");
    tok_decoder *d = calloc(1, sizeof *d);
    if (!d) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    int rc = 0;
    if (!strcmp(type, "ByteLevel")) {
        d->kind = D_BYTELEVEL;
    } else if (!strcmp(type, "ByteFallback")) {
        d->kind = D_BYTEFALLBACK;
    } else if (!strcmp(type, "Fuse")) {
        d->kind = D_FUSE;
    } else if (!strcmp(type, "Replace")) {
        d->kind = D_REPLACE;
        if (!(rc = tok_json_str(j, "content", &s, err))) {
            if (!s)
                rc = gb_error_set(err, GB_ERR_FORMAT, "Replace decoder without 'content'");
            else if (!(d->str = strdup(s)))
                rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            else {
                d->str_len = strlen(s);
                rc = tok_pattern_from_json(&d->pat, tok_json_get(j, "pattern"), err);
            }
        }
    } else if (!strcmp(type, "Strip")) {
        d->kind = D_STRIP;
        if (!(rc = tok_json_str(j, "content", &s, err)) &&
            !(rc = one_char(s, &d->ch, "Strip 'content'", err)) &&
            !(rc = tok_json_int(j, "start", 0, &d->start, err)))
            rc = tok_json_int(j, "stop", 0, &d->stop, err);
    } else if (!strcmp(type, "Metaspace")) {
        const char *scheme;
        bool aps;
        d->kind = D_METASPACE;
        if (!(rc = tok_json_str(j, "replacement", &s, err)) &&
            !(rc = one_char(s, &d->ch, "Metaspace 'replacement'", err)) &&
            !(rc = tok_json_str(j, "prepend_scheme", &scheme, err))) {
            if (scheme) {
                d->prepend = strcmp(scheme, "never") != 0;
            } else {
                rc = tok_json_bool(j, "add_prefix_space", true, &aps, err);
                d->prepend = aps;
            }
        }
    } else if (!strcmp(type, "BPEDecoder")) {
        d->kind = D_BPE;
        if (!(rc = tok_json_str(j, "suffix", &s, err))) {
            if (!(d->str = strdup(s ? s : "</w>")))
                rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            else
                d->str_len = strlen(d->str);
        }
    } else if (!strcmp(type, "Sequence")) {
        d->kind = D_SEQ;
        const cJSON *arr = tok_json_get(j, "decoders");
        if (!cJSON_IsArray(arr)) {
            rc = gb_error_set(err, GB_ERR_FORMAT, "Sequence decoder without 'decoders'");
        } else {
            int n = cJSON_GetArraySize(arr);
            d->sub = calloc(n ? (size_t)n : 1, sizeof *d->sub);
            if (!d->sub) rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            const cJSON *it;
            cJSON_ArrayForEach(it, arr) {
                if (rc) break;
                rc = tok_decoder_parse(it, &d->sub[d->n_sub], err);
                if (!rc && d->sub[d->n_sub]) d->n_sub++;
            }
        }
    } else {
        rc = gb_error_set(err, GB_ERR_UNSUPPORTED, "unsupported decoder type '%s'", type);
    }
    if (rc) {
        tok_decoder_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

int tok_decoder_llama(bool strip, tok_decoder **out, gb_error *err) {
    /* transformers' LlamaTokenizer decoder: Replace("▁", " "), ByteFallback, Fuse, Strip */
    const char *json = strip
                           ? "{\"type\":\"Sequence\",\"decoders\":["
                             "{\"type\":\"Replace\",\"pattern\":{\"String\":\"\\u2581\"},"
                             "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
                             "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}"
                           : "{\"type\":\"Sequence\",\"decoders\":["
                             "{\"type\":\"Replace\",\"pattern\":{\"String\":\"\\u2581\"},"
                             "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]}";
    cJSON *j = cJSON_Parse(json);
    if (!j) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    int rc = tok_decoder_parse(j, out, err);
    cJSON_Delete(j);
    return rc;
}

/* ---- decode_chain implementations: in -> out ---- */

static bool is_byte_token(const char *s, size_t n, unsigned char *byte) {
    /* "<0xNN>": u8::from_str_radix(NN, 16) accepts either case and a leading '+' */
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return false;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                : (c == '+' && i == 3) ? 0
                                       : -1;
        if (d < 0) return false;
        v = v * 16 + d;
    }
    *byte = (unsigned char)v;
    return true;
}

static int flush_bytes(tok_buf *bytes, tok_strs *out) {
    if (!bytes->n) return 0;
    if (tok_utf8_invalid_at(bytes->p, bytes->n) == bytes->n) {
        GB_TRY(tok_strs_add(out, bytes->p, bytes->n));
    } else {
        for (size_t i = 0; i < bytes->n; i++)
            GB_TRY(tok_strs_add(out, "\xEF\xBF\xBD", 3));
    }
    bytes->n = 0;
    return 0;
}

static int run_one(const tok_decoder *d, const tok_strs *in, tok_strs *out, gb_error *err) {
    tok_buf b = {0};
    int rc = 0;
    switch (d->kind) {
    case D_BYTELEVEL: {
        /* Map every char back to its byte; a token with a char outside the map is taken as its
         * raw UTF-8. The whole output becomes one lossily decoded string. */
        tok_buf raw = {0};
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = in->text.p + in->off[i];
            size_t n = in->len[i], mark = raw.n;
            bool ok = true;
            for (size_t k = 0; k < n;) {
                size_t adv;
                int byte = tok_cp_to_byte(tok_utf8_decode(s + k, &adv));
                if (byte < 0) {
                    ok = false;
                    break;
                }
                rc |= tok_buf_putc(&raw, (char)byte);
                k += adv;
            }
            if (!ok) {
                raw.n = mark;
                rc |= tok_buf_put(&raw, s, n);
            }
        }
        if (!rc) rc = tok_buf_put_lossy(&b, raw.p ? raw.p : "", raw.n);
        if (!rc) rc = tok_strs_add(out, b.p ? b.p : "", b.n);
        tok_buf_free(&raw);
        break;
    }
    case D_BYTEFALLBACK: {
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = in->text.p + in->off[i];
            unsigned char byte;
            if (is_byte_token(s, in->len[i], &byte)) {
                rc = tok_buf_putc(&b, (char)byte);
            } else {
                rc = flush_bytes(&b, out);
                if (!rc) rc = tok_strs_add(out, s, in->len[i]);
            }
        }
        if (!rc) rc = flush_bytes(&b, out);
        break;
    }
    case D_FUSE:
        rc = tok_strs_add(out, in->text.p ? in->text.p : "", in->text.n);
        break;
    case D_REPLACE:
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = in->text.p + in->off[i];
            size_t n = in->len[i], pos = 0, ms, me;
            tok_match_ctx mc = {0};
            b.n = 0;
            while ((rc = tok_pattern_find(&d->pat, &mc, s, n, pos, &ms, &me, err)) == 1) {
                rc = tok_buf_put(&b, s + pos, ms - pos) || tok_buf_put(&b, d->str, d->str_len);
                if (rc) break;
                pos = me;
            }
            tok_match_ctx_free(&mc);
            if (!rc) rc = tok_buf_put(&b, s + pos, n - pos);
            if (!rc) rc = tok_strs_add(out, b.p, b.n);
        }
        break;
    case D_STRIP:
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = in->text.p + in->off[i];
            size_t n = in->len[i], a = 0, z = n, adv;
            for (long long k = 0; k < d->start && a < n; k++) {
                if (tok_utf8_decode(s + a, &adv) != d->ch) break;
                a += adv;
            }
            for (long long k = 0; k < d->stop && z > a; k++) {
                size_t q = z - 1;
                while (q > a && ((unsigned char)s[q] & 0xC0) == 0x80)
                    q--;
                if (tok_utf8_decode(s + q, &adv) != d->ch) break;
                z = q;
            }
            rc = tok_strs_add(out, s + a, z - a);
        }
        break;
    case D_METASPACE:
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = in->text.p + in->off[i];
            size_t n = in->len[i];
            b.n = 0;
            for (size_t k = 0; k < n && !rc;) {
                size_t adv;
                uint32_t c = tok_utf8_decode(s + k, &adv);
                if (c == d->ch) c = ' ';
                if (!(k == 0 && i == 0 && c == ' ' && d->prepend)) rc = tok_buf_put_cp(&b, c);
                k += adv;
            }
            if (!rc) rc = tok_strs_add(out, b.p ? b.p : "", b.n);
        }
        break;
    case D_BPE:
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = in->text.p + in->off[i], *hit;
            size_t n = in->len[i], pos = 0;
            const char *rep = i + 1 == in->n ? "" : " ";
            b.n = 0;
            while (!rc && pos < n && (hit = memmem(s + pos, n - pos, d->str, d->str_len))) {
                rc = tok_buf_put(&b, s + pos, (size_t)(hit - s) - pos) ||
                     tok_buf_put(&b, rep, strlen(rep));
                pos = (size_t)(hit - s) + d->str_len;
            }
            if (!rc) rc = tok_buf_put(&b, s + pos, n - pos);
            if (!rc) rc = tok_strs_add(out, b.p ? b.p : "", b.n);
        }
        break;
    case D_SEQ:
        break;
    }
    tok_buf_free(&b);
    if (rc && !err->msg[0]) gb_error_set(err, GB_ERR_NOMEM, "out of memory decoding");
    return rc ? (err->code ? err->code : GB_ERR_NOMEM) : 0;
}

static int run_chain(const tok_decoder *d, tok_strs *toks, gb_error *err) {
    if (d->kind == D_SEQ) {
        for (size_t i = 0; i < d->n_sub; i++)
            GB_TRY(run_chain(d->sub[i], toks, err));
        return 0;
    }
    tok_strs out = {0};
    int rc = run_one(d, toks, &out, err);
    if (rc) {
        tok_strs_free(&out);
        return rc;
    }
    tok_strs_free(toks);
    *toks = out;
    return 0;
}

int tok_decoder_run(const tok_decoder *d, tok_strs *toks, tok_buf *out, gb_error *err) {
    if (d) GB_TRY(run_chain(d, toks, err));
    for (size_t i = 0; i < toks->n; i++) {
        if (!d && i > 0 && tok_buf_putc(out, ' '))
            return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
        if (tok_buf_put(out, toks->text.p + toks->off[i], toks->len[i]))
            return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    }
    return tok_buf_reserve(out, 0) ? gb_error_set(err, GB_ERR_NOMEM, "out of memory") : 0;
}
