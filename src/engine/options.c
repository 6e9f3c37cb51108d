/* Option names of benchmark configs (attn_implementation, compile mode) mapped to engine
 * options, in one place for the runner, the results metadata and `genbench generate`. */
#include <string.h>

#include "engine/engine.h"

int gb_engine_attn_from_name(const char *name, gb_attn_impl *impl, int *fell_back) {
    if (fell_back) *fell_back = 0;
    if (!name) return -1;
    if (!strcmp(name, "eager")) {
        *impl = GB_ATTN_EAGER;
    } else if (!strcmp(name, "sdpa")) {
        *impl = GB_ATTN_SDPA;
    } else if (!strcmp(name, "flash_attention_2")) {
        *impl = GB_ATTN_FLASH;
    } else if (!strcmp(name, "flex_attention")) {
        *impl = GB_ATTN_SDPA; /* not provided: product.md's validity rule falls back to sdpa */
        if (fell_back) *fell_back = 1;
    } else {
        return -1;
    }
    return 0;
}

int gb_engine_compile_from_mode(const char *mode, gb_device_kind device, int *static_cache,
                                int *cuda_graph) {
    *static_cache = 0;
    *cuda_graph = 0;
    if (!mode || !strcmp(mode, "none")) return 0;
    static const char *const modes[] = {"default", "reduce-overhead", "max-autotune",
                                        "max-autotune-no-cudagraphs"};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        if (strcmp(mode, modes[i])) continue;
        *static_cache = 1;
        /* reduce-overhead and max-autotune capture the decode step; only CUDA has graphs */
        *cuda_graph = device == GB_DEVICE_CUDA && (i == 1 || i == 2);
        return 0;
    }
    return -1;
}
