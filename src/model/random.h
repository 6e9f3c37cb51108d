/* Deterministic random weights ("splitmix-uniform v1", shared/docs/random-weights.md) and
 * writing complete random-weight model directories. */
#ifndef GB_MODEL_RANDOM_H
#define GB_MODEL_RANDOM_H

#include <stddef.h>
#include <stdint.h>
#include "genbench.h"
#include "model/config.h"
#include "model/tensors.h"

/* bf16 values of elements [first, first + count) of a tensor (row-major order). */
void gb_random_fill_bf16(const gb_tensor_spec *spec, uint64_t seed, int64_t first, int64_t count,
                         uint16_t *out);

typedef struct gb_random_model_options {
    uint64_t seed;          /* 0 by default */
    uint64_t max_shard_bytes; /* 0 = one model.safetensors */
    const char *tokenizer_dir; /* copied into the model dir when non-NULL */
} gb_random_model_options;

/* Writes out_dir/{config.json, generation_config.json, *.safetensors [+ index], tokenizer
 * files} from a config.json text (kept verbatim as the model's config.json). The directory
 * is written under a temporary name and renamed, so it is complete or absent. */
int gb_random_model_write(const char *config_json, size_t config_len,
                          const gb_random_model_options *opts, const char *out_dir,
                          gb_error *err);

#endif
