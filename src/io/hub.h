/* Model-id resolution (product.md §4): a model id names one of
 *   - `random:<preset>`: a random-weight model built once into the genbench cache
 *     (model/presets.h);
 *   - a local directory holding config.json;
 *   - a Hugging Face id `org/name` or `org/name@revision` found in the local Hugging Face
 *     cache: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub, layout
 *     models--org--name/refs/<revision> (a file holding the commit) and
 *     models--org--name/snapshots/<commit>/. The revision defaults to "main"; a 40-hex
 *     revision names a snapshot directly.
 * A Hugging Face id missing from the cache is downloaded into it (unless HF_HUB_OFFLINE is
 * set to anything but 0) from $HF_ENDPOINT (default https://huggingface.co), with
 * "Authorization: Bearer $HF_TOKEN" when set: GET /api/models/<id>/revision/<rev> gives the
 * commit and file list; the files genbench needs (config.json, generation_config.json,
 * tokenizer files, *.safetensors and their index) are fetched from /<id>/resolve/<commit>/
 * into snapshots/<commit>/ as plain files (temporary name + rename), then refs/<rev> is
 * written. A model that cannot be found or fetched fails with GB_ERR_NOT_FOUND and a
 * message listing the places searched and the download error. */
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
