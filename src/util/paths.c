#include "util/paths.h"

#include <stdio.h>
#include <stdlib.h>

const char *gb_data_dir(void) {
    const char *d = getenv("GENBENCH_DATA_DIR");
    if (d && *d) return d;
    return GB_SOURCE_DIR "/data";
}

const char *gb_cache_dir(void) {
    static char buf[4096];
    const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (x && *x) {
        snprintf(buf, sizeof buf, "%s/genbench", x);
    } else if (h && *h) {
        snprintf(buf, sizeof buf, "%s/.cache/genbench", h);
    } else {
        snprintf(buf, sizeof buf, "/tmp/genbench-cache");
    }
    return buf;
}
