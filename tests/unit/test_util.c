#include "test.h"
#include "util/dtype.h"
#include "util/error.h"
#include "util/hash.h"

int main(void) {
    /* FNV-1a 64 of "a" (published test vector). */
    CHECK(gb_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
    char hex[65];
    gb_sha256_hex("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* bf16 round-to-nearest-even */
    CHECK_EQ_INT(gb_f32_to_bf16(1.0f), 0x3f80);
    CHECK_EQ_INT(gb_f32_to_bf16(1.00390625f), 0x3f80); /* halfway, even stays */
    CHECK_EQ_INT(gb_f32_to_bf16(1.01171875f), 0x3f82); /* halfway, odd rounds up */
    CHECK(gb_bf16_to_f32(0x3f80) == 1.0f);
    /* f16 round trip of representable values and rounding */
    CHECK_EQ_INT(gb_f32_to_f16(1.0f), 0x3c00);
    CHECK_EQ_INT(gb_f32_to_f16(-2.0f), 0xc000);
    CHECK_EQ_INT(gb_f32_to_f16(65504.0f), 0x7bff);
    CHECK_EQ_INT(gb_f32_to_f16(1e6f), 0x7c00);
    CHECK_EQ_INT(gb_f32_to_f16(5.960464477539063e-08f), 0x0001); /* smallest subnormal */
    for (unsigned h = 0; h < 0x7c00; h++) {
        float f = gb_f16_to_f32((uint16_t)h);
        if (gb_f32_to_f16(f) != h) {
            CHECK_MSG(0, "f16 round trip of 0x%04x gave 0x%04x", h, gb_f32_to_f16(f));
            break;
        }
    }
    gb_error err;
    gb_error_set(&err, GB_ERR_IO, "cannot open");
    gb_error_prefix(&err, "%s", "model.safetensors");
    CHECK_STR(err.msg, "model.safetensors: cannot open");
    CHECK_EQ_INT(err.code, GB_ERR_IO);
    TEST_MAIN_END();
}
