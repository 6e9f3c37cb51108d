#include "util/dtype.h"

#include <strings.h>

size_t gb_dtype_size(gb_dtype t) { return t == GB_F32 ? 4 : 2; }

const char *gb_dtype_st_name(gb_dtype t) {
    static const char *n[] = {"F32", "F16", "BF16"};
    return t < GB_DTYPE_COUNT ? n[t] : "?";
}

const char *gb_dtype_name(gb_dtype t) {
    static const char *n[] = {"float32", "float16", "bfloat16"};
    return t < GB_DTYPE_COUNT ? n[t] : "?";
}

int gb_dtype_parse(const char *s, gb_dtype *out) {
    if (!s) return -1;
    if (!strcasecmp(s, "F32") || !strcasecmp(s, "float32") || !strcasecmp(s, "float")) {
        *out = GB_F32;
    } else if (!strcasecmp(s, "F16") || !strcasecmp(s, "float16") || !strcasecmp(s, "half")) {
        *out = GB_F16;
    } else if (!strcasecmp(s, "BF16") || !strcasecmp(s, "bfloat16")) {
        *out = GB_BF16;
    } else {
        return -1;
    }
    return 0;
}

float gb_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t gb_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx > 0x7f800000u) return (uint16_t)(sign | 0x7e00); /* NaN */
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* overflow -> inf */
    if (absx < 0x38800000u) {                                  /* subnormal or zero in f16 */
        if (absx < 0x33000000u) return (uint16_t)sign;
        uint32_t e = absx >> 23, m = (absx & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t r = m >> (shift - 1 + 1);
        uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((absx >> 13) - ((127 - 15) << 10));
    uint32_t rem = absx & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

/* Element loads go through memcpy: safetensors does not promise aligned tensor data, and a
 * misaligned uint16_t dereference is undefined behaviour (compilers emit a plain load). */
static inline uint16_t load_u16(const unsigned char *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

void gb_convert_to_f32(float *dst, const void *src, gb_dtype st, size_t n) {
    const unsigned char *b = src;
    switch (st) {
    case GB_F32: memcpy(dst, src, n * 4); break;
    case GB_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = gb_bf16_to_f32(load_u16(b + 2 * i));
        break;
    case GB_F16:
        for (size_t i = 0; i < n; i++) dst[i] = gb_f16_to_f32(load_u16(b + 2 * i));
        break;
    default: break;
    }
}

void gb_convert_from_f32(void *dst, gb_dtype dt, const float *src, size_t n) {
    unsigned char *b = dst;
    uint16_t h;
    switch (dt) {
    case GB_F32: memcpy(dst, src, n * 4); break;
    case GB_BF16:
        for (size_t i = 0; i < n; i++) {
            h = gb_f32_to_bf16(src[i]);
            memcpy(b + 2 * i, &h, 2);
        }
        break;
    case GB_F16:
        for (size_t i = 0; i < n; i++) {
            h = gb_f32_to_f16(src[i]);
            memcpy(b + 2 * i, &h, 2);
        }
        break;
    default: break;
    }
}
