/* genbench public API.
 *
 * Library conventions: functions return 0 (GB_OK) on success or a gb_code, and fill a
 * caller-provided gb_error with a one-line message naming the file/tensor/field at fault.
 * The library never prints and never exits; the command line decides what to show.
 * Every object created by gb_<module>_open/create/load has a paired gb_<module>_free.
 */
#ifndef GENBENCH_H
#define GENBENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

enum gb_code {
    GB_OK = 0,
    GB_ERR_IO = 1,          /* file missing, unreadable, short read, write failed */
    GB_ERR_FORMAT = 2,      /* malformed file contents (JSON, safetensors, UTF-8) */
    GB_ERR_INVALID = 3,     /* argument or config value out of range */
    GB_ERR_UNSUPPORTED = 4, /* well-formed but not supported (architecture, dtype, option) */
    GB_ERR_NOMEM = 5,
    GB_ERR_NOT_FOUND = 6,   /* model, tensor, token or preset not found */
    GB_ERR_DEVICE = 7,      /* CUDA / device failures, no GPU for --device cuda */
    GB_ERR_INTERNAL = 8,
};

typedef struct gb_error {
    int code;
    char msg[1024];
} gb_error;

const char *gb_version(void);

#ifdef __cplusplus
}
#endif

#endif
