/* Rotary inverse frequencies, computed in float32 step by step as transformers'
 * ROPE_INIT_FUNCTIONS do (default, linear, llama3), so positions land on the same angles. */
#include <math.h>

#include "engine/model.h"

void gb_rope_inv_freq(const gb_model_config *c, float *out, float *attn_factor) {
    int dim = c->head_dim;
    float base = c->rope_theta;
    *attn_factor = 1.0f;
    for (int i = 0; i < dim / 2; i++) {
        /* 1.0 / (base ** (arange(0, dim, 2).float() / dim)) */
        float e = (float)(2 * i) / (float)dim;
        float p = (float)pow((double)base, (double)e);
        out[i] = 1.0f / p;
    }
    if (c->rope_type == GB_ROPE_LINEAR) {
        for (int i = 0; i < dim / 2; i++)
            out[i] = out[i] / c->rope_factor;
    } else if (c->rope_type == GB_ROPE_LLAMA3) {
        float factor = c->rope_factor, lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor;
        float old_ctx = (float)c->rope_original_max_pos;
        double low_wavelen = (double)c->rope_original_max_pos / lo;
        double high_wavelen = (double)c->rope_original_max_pos / hi;
        const float two_pi = (float)(2.0 * M_PI);
        for (int i = 0; i < dim / 2; i++) {
            float inv = out[i];
            float wavelen =
                (1.0f / inv) * two_pi; /* torch: scalar / t == t.reciprocal() * scalar */
            float scaled = (double)wavelen > low_wavelen ? inv / factor : inv;
            float smooth = ((1.0f / wavelen) * old_ctx - lo) / (hi - lo);
            float smoothed = (1.0f - smooth) * scaled / factor + smooth * scaled;
            int medium = !((double)wavelen < high_wavelen) && !((double)wavelen > low_wavelen);
            out[i] = medium ? smoothed : scaled;
        }
    }
}
