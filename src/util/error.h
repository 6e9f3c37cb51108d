/* Status reporting for library code: every fallible function returns 0 on success or a
 * gb_code, and fills a caller-owned gb_error with a one-line message that names the file,
 * tensor or field at fault. Library code never prints and never exits. */
#ifndef GB_UTIL_ERROR_H
#define GB_UTIL_ERROR_H

#include "genbench.h"

/* Sets err (when non-NULL) to code + printf-formatted message; returns code. */
int gb_error_set(gb_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "context: " to an existing message (e.g. the file name); returns err->code. */
int gb_error_prefix(gb_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears err to GB_OK with an empty message. */
void gb_error_clear(gb_error *err);

/* Name of a code, e.g. "io error". */
const char *gb_code_name(int code);

#define GB_TRY(expr)                                                                               \
    do {                                                                                           \
        int gb_try_rc_ = (expr);                                                                   \
        if (gb_try_rc_ != 0) return gb_try_rc_;                                                    \
    } while (0)

#endif
