/* Where genbench finds its bundled data and keeps its caches. */
#ifndef GB_UTIL_PATHS_H
#define GB_UTIL_PATHS_H

/* Bundled data directory (presets, tokenizers, prompt): $GENBENCH_DATA_DIR, else the
 * source tree's data/ the binary was built from. Never NULL. */
const char *gb_data_dir(void);

/* Cache directory for random: models and machine measurements:
 * $XDG_CACHE_HOME/genbench, else $HOME/.cache/genbench, else /tmp/genbench-cache.
 * Returns a static buffer. */
const char *gb_cache_dir(void);

#endif
