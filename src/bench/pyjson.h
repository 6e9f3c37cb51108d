/* JSON text written the way Python's json module writes it, so that config hashes and
 * results files match transformers' benchmark_v2 byte for byte where it matters:
 * - strings escaped like json.dumps(ensure_ascii=True): \" \\ \n \r \t \b \f, other
 *   control characters and every non-ASCII code point as \uXXXX (surrogate pairs above
 *   U+FFFF); invalid UTF-8 bytes are written as U+FFFD;
 * - floats as Python's repr (shortest round-trip digits, exponent form below 1e-4 and
 *   from 1e16, always a '.0' or exponent so they read back as floats);
 * - separators ", " and ": " when not indented; with indent > 0 one element per line
 *   indented by `indent` spaces per level, except "inline" arrays (numeric arrays) which
 *   stay on one line as [a, b, c]. */
#ifndef GB_BENCH_PYJSON_H
#define GB_BENCH_PYJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Python repr of a float into out (>= 32 bytes). Non-finite values give "NaN",
 * "Infinity", "-Infinity" (what json.dumps writes). */
void gb_py_float_repr(double x, char out[32]);

#define GB_JW_MAX_DEPTH 32

typedef struct gb_jw {
    char *buf;
    size_t len, cap;
    int indent; /* 0: single line with Python separators */
    int depth;
    int count[GB_JW_MAX_DEPTH];    /* elements written at each depth */
    bool inline_[GB_JW_MAX_DEPTH]; /* container written on one line */
    bool after_key;
    bool oom;
} gb_jw;

void gb_jw_init(gb_jw *w, int indent);
/* Frees the buffer (not needed after gb_jw_take). */
void gb_jw_free(gb_jw *w);
/* Returns the NUL-terminated text (caller frees) or NULL when out of memory; resets w. */
char *gb_jw_take(gb_jw *w, size_t *len);

void gb_jw_obj_begin(gb_jw *w);
void gb_jw_obj_end(gb_jw *w);
void gb_jw_arr_begin(gb_jw *w);
/* An array kept on one line whatever the indentation (numeric arrays). */
void gb_jw_arr_begin_inline(gb_jw *w);
void gb_jw_arr_end(gb_jw *w);
void gb_jw_key(gb_jw *w, const char *key);
void gb_jw_str(gb_jw *w, const char *s); /* NULL writes null */
void gb_jw_strn(gb_jw *w, const char *s, size_t n);
void gb_jw_int(gb_jw *w, int64_t v);
void gb_jw_double(gb_jw *w, double v); /* non-finite written as null (valid JSON) */
void gb_jw_bool(gb_jw *w, bool v);
void gb_jw_null(gb_jw *w);
/* A value already serialized as JSON text (written verbatim). */
void gb_jw_raw(gb_jw *w, const char *json);
/* An inline array of doubles. */
void gb_jw_double_array(gb_jw *w, const double *v, size_t n);

/* Convenience: key + value. */
void gb_jw_kstr(gb_jw *w, const char *k, const char *s);
void gb_jw_kint(gb_jw *w, const char *k, int64_t v);
void gb_jw_kdouble(gb_jw *w, const char *k, double v);
void gb_jw_kbool(gb_jw *w, const char *k, bool v);
void gb_jw_knull(gb_jw *w, const char *k);

struct cJSON;
/* Writes a parsed cJSON value (objects keep their key order; numbers that are integral
 * and within 2^53 are written as integers, others as Python floats). */
void gb_jw_cjson(gb_jw *w, const struct cJSON *v);

#endif
