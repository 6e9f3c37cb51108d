/* Built-in model presets: the six tiny fixture models (data/fixture-models) and real
 * shapes (data/presets). `random:<preset>` model ids resolve through here. */
#ifndef GB_MODEL_PRESETS_H
#define GB_MODEL_PRESETS_H

#include <stddef.h>
#include <stdint.h>
#include "genbench.h"

/* Names of all presets (NULL-terminated static list). */
const char *const *gb_preset_names(void);

/* Makes sure the random-weight model directory of a preset exists in
 * gb_cache_dir()/models/<preset> (created once, atomically, then reused) and writes its
 * path to dir_out. Unknown presets: GB_ERR_NOT_FOUND listing the known ones. */
int gb_preset_ensure(const char *preset, char *dir_out, size_t dir_cap, gb_error *err);

/* A preset's ingredients: config.json text, seed and shard limit (fixture.json; 0 for real
 * shapes) and its bundled tokenizer (name and data directory). */
typedef struct gb_preset {
    char *config_json;
    size_t config_len;
    uint64_t seed;
    uint64_t max_shard_bytes; /* 0 = one model.safetensors */
    char *tokenizer;          /* e.g. "llama3" */
    char *tokenizer_dir;      /* gb_data_dir()/tokenizers/<tokenizer> */
} gb_preset;

/* Loads a preset's definition from gb_data_dir(). Unknown names: GB_ERR_NOT_FOUND. */
int gb_preset_load(const char *preset, gb_preset *p, gb_error *err);
void gb_preset_free(gb_preset *p);

#endif
