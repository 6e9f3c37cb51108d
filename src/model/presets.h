/* Built-in model presets: the six tiny fixture models (data/fixture-models) and real
 * shapes (data/presets). `random:<preset>` model ids resolve through here. */
#ifndef GB_MODEL_PRESETS_H
#define GB_MODEL_PRESETS_H

#include <stddef.h>
#include "genbench.h"

/* Names of all presets (NULL-terminated static list). */
const char *const *gb_preset_names(void);

/* Makes sure the random-weight model directory of a preset exists in
 * gb_cache_dir()/models/<preset> (created once, atomically, then reused) and writes its
 * path to dir_out. Unknown presets: GB_ERR_NOT_FOUND listing the known ones. */
int gb_preset_ensure(const char *preset, char *dir_out, size_t dir_cap, gb_error *err);

#endif
