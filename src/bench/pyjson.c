#include "bench/pyjson.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gb_py_float_repr(double x, char out[32]) {
    if (isnan(x)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(x)) {
        strcpy(out, x > 0 ? "Infinity" : "-Infinity");
        return;
    }
    if (x == 0) {
        strcpy(out, signbit(x) ? "-0.0" : "0.0");
        return;
    }
    /* Shortest precision that reads back exactly (what Python's repr does). */
    char sci[40];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(sci, sizeof sci, "%.*e", p - 1, x);
        if (strtod(sci, NULL) == x) break;
    }
    /* sci = [-]d[.ddd]e[+-]XX: collect digits and the decimal exponent. */
    const char *s = sci;
    bool neg = false;
    if (*s == '-') {
        neg = true;
        s++;
    }
    char digits[24];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') digits[nd++] = *s;
    int e = atoi(s + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--; /* trailing zeros of the mantissa */
    digits[nd] = '\0';
    char *o = out;
    if (neg) *o++ = '-';
    if (e >= -4 && e < 16) {
        if (e < 0) {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -e - 1; i++)
                *o++ = '0';
            for (int i = 0; i < nd; i++)
                *o++ = digits[i];
        } else {
            for (int i = 0; i <= e; i++)
                *o++ = i < nd ? digits[i] : '0';
            *o++ = '.';
            if (nd > e + 1)
                for (int i = e + 1; i < nd; i++)
                    *o++ = digits[i];
            else
                *o++ = '0';
        }
        *o = '\0';
    } else {
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            for (int i = 1; i < nd; i++)
                *o++ = digits[i];
        }
        char ex[16];
        snprintf(ex, sizeof ex, "e%c%02d", e < 0 ? '-' : '+', (e < 0 ? -e : e) % 1000);
        strcpy(o, ex);
    }
}

void gb_jw_init(gb_jw *w, int indent) {
    memset(w, 0, sizeof *w);
    w->indent = indent;
}

void gb_jw_free(gb_jw *w) {
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

char *gb_jw_take(gb_jw *w, size_t *len) {
    char *b = w->oom ? NULL : w->buf;
    if (w->oom) free(w->buf);
    if (b == NULL && !w->oom) b = calloc(1, 1);
    if (len) *len = b ? w->len : 0;
    int indent = w->indent;
    gb_jw_init(w, indent);
    return b;
}

static void put(gb_jw *w, const char *s, size_t n) {
    if (w->oom) return;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n + 1)
            cap *= 2;
        char *nb = realloc(w->buf, cap);
        if (!nb) {
            w->oom = true;
            return;
        }
        w->buf = nb;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static void puts_(gb_jw *w, const char *s) {
    put(w, s, strlen(s));
}

static void newline(gb_jw *w) {
    put(w, "\n", 1);
    for (int i = 0; i < w->depth * w->indent; i++)
        put(w, " ", 1);
}

/* Separator and indentation before a value (or a key) in the current container. */
static void before_value(gb_jw *w) {
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth == 0) return;
    int d = w->depth;
    if (w->count[d] > 0) put(w, ",", 1);
    if (w->indent > 0 && !w->inline_[d])
        newline(w);
    else if (w->count[d] > 0)
        put(w, " ", 1);
    w->count[d]++;
}

static void open_(gb_jw *w, char c, bool inl) {
    before_value(w);
    put(w, &c, 1);
    if (w->depth + 1 >= GB_JW_MAX_DEPTH) {
        w->oom = true; /* nesting beyond anything genbench writes: treat as failure */
        return;
    }
    w->depth++;
    w->count[w->depth] = 0;
    w->inline_[w->depth] = inl || (w->depth > 1 && w->inline_[w->depth - 1]);
}

static void close_(gb_jw *w, char c) {
    if (w->depth == 0) return;
    int had = w->count[w->depth];
    bool inl = w->inline_[w->depth];
    w->depth--;
    if (had && w->indent > 0 && !inl) newline(w);
    put(w, &c, 1);
}

void gb_jw_obj_begin(gb_jw *w) {
    open_(w, '{', false);
}
void gb_jw_obj_end(gb_jw *w) {
    close_(w, '}');
}
void gb_jw_arr_begin(gb_jw *w) {
    open_(w, '[', false);
}
void gb_jw_arr_begin_inline(gb_jw *w) {
    open_(w, '[', true);
}
void gb_jw_arr_end(gb_jw *w) {
    close_(w, ']');
}

static void put_escaped(gb_jw *w, const char *s, size_t n) {
    put(w, "\"", 1);
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    char tmp[16];
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            switch (c) {
            case '"':
                puts_(w, "\\\"");
                break;
            case '\\':
                puts_(w, "\\\\");
                break;
            case '\n':
                puts_(w, "\\n");
                break;
            case '\r':
                puts_(w, "\\r");
                break;
            case '\t':
                puts_(w, "\\t");
                break;
            case '\b':
                puts_(w, "\\b");
                break;
            case '\f':
                puts_(w, "\\f");
                break;
            default:
                if (c < 0x20) {
                    snprintf(tmp, sizeof tmp, "\\u%04x", c);
                    puts_(w, tmp);
                } else {
                    char ch = (char)c;
                    put(w, &ch, 1);
                }
            }
            continue;
        }
        /* Decode one UTF-8 sequence; malformed bytes become U+FFFD one at a time. */
        uint32_t cp = 0xFFFD;
        int len = 1;
        if ((c & 0xE0) == 0xC0 && p + 1 < end && (p[1] & 0xC0) == 0x80) {
            cp = ((c & 0x1F) << 6) | (p[1] & 0x3F);
            len = cp >= 0x80 ? 2 : 1;
            if (len == 1) cp = 0xFFFD;
        } else if ((c & 0xF0) == 0xE0 && p + 2 < end && (p[1] & 0xC0) == 0x80 &&
                   (p[2] & 0xC0) == 0x80) {
            cp = ((c & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F);
            len = (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) ? 3 : 1;
            if (len == 1) cp = 0xFFFD;
        } else if ((c & 0xF8) == 0xF0 && p + 3 < end && (p[1] & 0xC0) == 0x80 &&
                   (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80) {
            cp = ((c & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) | (p[3] & 0x3F);
            len = (cp >= 0x10000 && cp <= 0x10FFFF) ? 4 : 1;
            if (len == 1) cp = 0xFFFD;
        }
        p += len;
        if (cp >= 0x10000) {
            uint32_t v = cp - 0x10000;
            snprintf(tmp, sizeof tmp, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
        } else {
            snprintf(tmp, sizeof tmp, "\\u%04x", cp);
        }
        puts_(w, tmp);
    }
    put(w, "\"", 1);
}

void gb_jw_key(gb_jw *w, const char *key) {
    before_value(w);
    put_escaped(w, key, strlen(key));
    put(w, ": ", 2);
    w->after_key = true;
}

void gb_jw_strn(gb_jw *w, const char *s, size_t n) {
    before_value(w);
    put_escaped(w, s, n);
}

void gb_jw_str(gb_jw *w, const char *s) {
    if (!s) {
        gb_jw_null(w);
        return;
    }
    gb_jw_strn(w, s, strlen(s));
}

void gb_jw_int(gb_jw *w, int64_t v) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    before_value(w);
    puts_(w, tmp);
}

void gb_jw_double(gb_jw *w, double v) {
    if (!isfinite(v)) {
        gb_jw_null(w);
        return;
    }
    char tmp[32];
    gb_py_float_repr(v, tmp);
    before_value(w);
    puts_(w, tmp);
}

void gb_jw_bool(gb_jw *w, bool v) {
    before_value(w);
    puts_(w, v ? "true" : "false");
}

void gb_jw_null(gb_jw *w) {
    before_value(w);
    puts_(w, "null");
}

void gb_jw_raw(gb_jw *w, const char *json) {
    before_value(w);
    puts_(w, json);
}

void gb_jw_double_array(gb_jw *w, const double *v, size_t n) {
    gb_jw_arr_begin_inline(w);
    for (size_t i = 0; i < n; i++)
        gb_jw_double(w, v[i]);
    gb_jw_arr_end(w);
}

void gb_jw_kstr(gb_jw *w, const char *k, const char *s) {
    gb_jw_key(w, k);
    gb_jw_str(w, s);
}
void gb_jw_kint(gb_jw *w, const char *k, int64_t v) {
    gb_jw_key(w, k);
    gb_jw_int(w, v);
}
void gb_jw_kdouble(gb_jw *w, const char *k, double v) {
    gb_jw_key(w, k);
    gb_jw_double(w, v);
}
void gb_jw_kbool(gb_jw *w, const char *k, bool v) {
    gb_jw_key(w, k);
    gb_jw_bool(w, v);
}
void gb_jw_knull(gb_jw *w, const char *k) {
    gb_jw_key(w, k);
    gb_jw_null(w);
}

static bool all_numbers(const cJSON *a) {
    const cJSON *c;
    cJSON_ArrayForEach(c, a) if (!cJSON_IsNumber(c)) return false;
    return true;
}

void gb_jw_cjson(gb_jw *w, const cJSON *v) {
    if (!v || cJSON_IsNull(v)) {
        gb_jw_null(w);
    } else if (cJSON_IsBool(v)) {
        gb_jw_bool(w, cJSON_IsTrue(v));
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0)
            gb_jw_int(w, (int64_t)d);
        else
            gb_jw_double(w, d);
    } else if (cJSON_IsString(v)) {
        gb_jw_str(w, v->valuestring);
    } else if (cJSON_IsArray(v)) {
        if (cJSON_GetArraySize(v) > 0 && all_numbers(v))
            gb_jw_arr_begin_inline(w);
        else
            gb_jw_arr_begin(w);
        const cJSON *c;
        cJSON_ArrayForEach(c, v) gb_jw_cjson(w, c);
        gb_jw_arr_end(w);
    } else if (cJSON_IsObject(v)) {
        gb_jw_obj_begin(w);
        const cJSON *c;
        cJSON_ArrayForEach(c, v) {
            gb_jw_key(w, c->string ? c->string : "");
            gb_jw_cjson(w, c);
        }
        gb_jw_obj_end(w);
    } else if (cJSON_IsRaw(v)) {
        gb_jw_raw(w, v->valuestring);
    } else {
        gb_jw_null(w);
    }
}
