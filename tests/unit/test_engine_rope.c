/* RoPE inverse frequencies (engine/rope.c) against an independent double-precision
 * evaluation of transformers' formulas: default, linear and llama3 scaling (Llama 3.1 and
 * 3.2 parameters). The tiny-llama3 fixture test checks llama3 end to end as well. */
#include <math.h>

#include "engine/model.h"
#include "test.h"

static void naive(const gb_model_config *c, double *out) {
    int dim = c->head_dim;
    for (int i = 0; i < dim / 2; i++) {
        double inv = 1.0 / pow(c->rope_theta, (double)(2 * i) / dim);
        if (c->rope_type == GB_ROPE_LINEAR) inv /= c->rope_factor;
        if (c->rope_type == GB_ROPE_LLAMA3) {
            double lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor;
            double old = c->rope_original_max_pos, wl = 2 * M_PI / inv;
            if (wl > old / lo) {
                inv /= c->rope_factor;
            } else if (wl >= old / hi) { /* medium band: interpolate */
                double s = (old / wl - lo) / (hi - lo);
                inv = (1 - s) * inv / c->rope_factor + s * inv;
            }
        }
        out[i] = inv;
    }
}

static void check(const char *what, gb_model_config *c) {
    float got[256], af = 0;
    double want[256];
    gb_rope_inv_freq(c, got, &af);
    naive(c, want);
    CHECK_MSG(af == 1.0f, "%s: attention factor %g", what, af);
    int bad = 0;
    for (int i = 0; i < c->head_dim / 2; i++)
        if (fabs(got[i] - want[i]) > 2e-6 * want[i] && bad++ < 3)
            fprintf(stderr, "%s: inv_freq[%d]: expected %.9g, got %.9g\n", what, i, want[i],
                    (double)got[i]);
    CHECK_MSG(bad == 0, "%s: %d inv_freq values off", what, bad);
}

int main(void) {
    gb_model_config c = {0};
    c.head_dim = 128;
    c.rope_theta = 500000.0f;
    check("default", &c);
    c.rope_type = GB_ROPE_LINEAR;
    c.rope_factor = 4.0f;
    check("linear x4", &c);
    c.rope_type = GB_ROPE_LLAMA3; /* Llama 3.1 */
    c.rope_factor = 8.0f;
    c.rope_low_freq_factor = 1.0f;
    c.rope_high_freq_factor = 4.0f;
    c.rope_original_max_pos = 8192;
    check("llama3 (3.1)", &c);
    c.head_dim = 64; /* Llama 3.2 1B */
    c.rope_factor = 32.0f;
    check("llama3 (3.2)", &c);
    /* low frequencies are divided by the factor, high ones kept */
    float inv[32], af;
    gb_rope_inv_freq(&c, inv, &af);
    CHECK(inv[0] == 1.0f);
    c.rope_type = GB_ROPE_DEFAULT;
    float plain[32];
    gb_rope_inv_freq(&c, plain, &af);
    CHECK_MSG(fabsf(inv[31] - plain[31] / 32.0f) <= 1e-6f * plain[31], "lowest frequency %g vs %g",
              inv[31], plain[31] / 32.0f);
    TEST_MAIN_END();
}
