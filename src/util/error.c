#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Messages are one line: they often quote names and values from the input file, which may
 * hold newlines or other control characters (raw in a JSON string, or in a safetensors
 * header); those are shown as '?'. */
static void one_line(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

int gb_error_set(gb_error *err, int code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    one_line(err->msg);
    return code;
}

int gb_error_prefix(gb_error *err, const char *fmt, ...) {
    if (!err) return GB_ERR_INTERNAL;
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t np = strlen(prefix);
    if (np > sizeof err->msg - 3) np = sizeof err->msg - 3;
    memcpy(err->msg, prefix, np);
    memcpy(err->msg + np, ": ", 2);
    size_t room = sizeof err->msg - np - 3, no = strlen(old);
    if (no > room) no = room;
    memcpy(err->msg + np + 2, old, no);
    err->msg[np + 2 + no] = '\0';
    one_line(err->msg);
    return err->code;
}

void gb_error_clear(gb_error *err) {
    if (!err) return;
    err->code = GB_OK;
    err->msg[0] = '\0';
}

const char *gb_code_name(int code) {
    switch (code) {
    case GB_OK: return "ok";
    case GB_ERR_IO: return "io error";
    case GB_ERR_FORMAT: return "format error";
    case GB_ERR_INVALID: return "invalid argument";
    case GB_ERR_UNSUPPORTED: return "unsupported";
    case GB_ERR_NOMEM: return "out of memory";
    case GB_ERR_NOT_FOUND: return "not found";
    case GB_ERR_DEVICE: return "device error";
    case GB_ERR_INTERNAL: return "internal error";
    default: return "unknown error";
    }
}
