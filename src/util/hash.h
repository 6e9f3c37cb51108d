/* Hashes: FNV-1a 64 (random-weight seeds, tensor fingerprints) and SHA-256 (config hashes). */
#ifndef GB_UTIL_HASH_H
#define GB_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define GB_FNV1A64_INIT 0xCBF29CE484222325ULL

/* Continues an FNV-1a 64 hash over len bytes; start with GB_FNV1A64_INIT. */
uint64_t gb_fnv1a64_update(uint64_t h, const void *data, size_t len);
static inline uint64_t gb_fnv1a64(const void *data, size_t len) {
    return gb_fnv1a64_update(GB_FNV1A64_INIT, data, len);
}

/* Lowercase hex SHA-256 of data into out (65 bytes incl. NUL). */
void gb_sha256_hex(const void *data, size_t len, char out[65]);

#endif
