/* Element types of weights and activations, and scalar conversions.
 * bf16: upper 16 bits of an IEEE float32; rounding float32 -> bf16 is round-to-nearest-even.
 * f16: IEEE binary16. */
#ifndef GB_UTIL_DTYPE_H
#define GB_UTIL_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum gb_dtype { GB_F32 = 0, GB_F16 = 1, GB_BF16 = 2, GB_DTYPE_COUNT } gb_dtype;

/* Bytes per element. */
size_t gb_dtype_size(gb_dtype t);
/* "F32"/"F16"/"BF16" (safetensors spelling). */
const char *gb_dtype_st_name(gb_dtype t);
/* "float32"/"float16"/"bfloat16" (torch spelling). */
const char *gb_dtype_name(gb_dtype t);
/* Parses either spelling ("BF16", "bfloat16", "bf16", ...); returns 0 or -1. */
int gb_dtype_parse(const char *s, gb_dtype *out);

static inline float gb_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t gb_f32_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40); /* quiet NaN */
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

float gb_f16_to_f32(uint16_t h);
uint16_t gb_f32_to_f16(float f);

/* Converts n elements of src (type st) to float32. */
void gb_convert_to_f32(float *dst, const void *src, gb_dtype st, size_t n);
/* Converts n float32 values to dt (round-to-nearest-even). */
void gb_convert_from_f32(void *dst, gb_dtype dt, const float *src, size_t n);

#endif
