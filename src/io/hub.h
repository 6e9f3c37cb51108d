/* Model-id resolution (product.md §4): a model id names one of
 *   - `random:<preset>`: a random-weight model built once into the genbench cache
 *     (model/presets.h);
 *   - a local directory holding config.json;
 *   - a Hugging Face id `org/name` or `org/name@revision` found in the local Hugging Face
 *     cache: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub, layout
 *     models--org--name/refs/<revision> (a file holding the commit) and
 *     models--org--name/snapshots/<commit>/. The revision defaults to "main"; a 40-hex
 *     revision names a snapshot directly.
 * Downloading missing models is not implemented: a missing model fails with
 * GB_ERR_NOT_FOUND and a message listing every place searched. */
#ifndef GB_IO_HUB_H
#define GB_IO_HUB_H

#include <stddef.h>
#include "genbench.h"

typedef enum gb_model_source {
    GB_MODEL_LOCAL = 0,
    GB_MODEL_HF_CACHE,
    GB_MODEL_RANDOM,
} gb_model_source;

typedef struct gb_model_location {
    gb_model_source source;
    char dir[4096];     /* directory with config.json, safetensors and tokenizer files */
    char revision[128]; /* HF cache: the revision asked for ("main" by default) */
    char commit[64];    /* HF cache: the snapshot's commit id */
} gb_model_location;

/* The Hugging Face hub cache directory according to the environment (static buffer). */
const char *gb_hub_cache_dir(void);

/* Resolves model_id. Errors: GB_ERR_NOT_FOUND (message names the places searched),
 * GB_ERR_INVALID (malformed id), or the preset builder's error. */
int gb_hub_resolve(const char *model_id, gb_model_location *loc, gb_error *err);

#endif
