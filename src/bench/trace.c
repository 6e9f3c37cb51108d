/* Chrome trace export (the JSON "Trace Event Format" that chrome://tracing and Perfetto
 * load): complete events ("ph": "X") with microsecond timestamps relative to t0, one
 * thread track per slice kind, named by metadata events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/pyjson.h"
#include "bench/runner.h"
#include "util/error.h"
#include "util/fileio.h"

static const char *const k_tracks[] = {"steps (host)", "layers", "ops", "device kernels",
                                       "generation"};

int gb_trace_write(const char *path, const gb_trace_slice *s, size_t n, int64_t t0_ns,
                   const char *title, gb_error *err) {
    gb_jw w;
    gb_jw_init(&w, 0);
    gb_jw_obj_begin(&w);
    gb_jw_key(&w, "traceEvents");
    gb_jw_arr_begin(&w);
    gb_jw_obj_begin(&w);
    gb_jw_kstr(&w, "name", "process_name");
    gb_jw_kstr(&w, "ph", "M");
    gb_jw_kint(&w, "pid", 1);
    gb_jw_kint(&w, "tid", 0);
    gb_jw_key(&w, "args");
    gb_jw_obj_begin(&w);
    gb_jw_kstr(&w, "name", title ? title : "genbench");
    gb_jw_obj_end(&w);
    gb_jw_obj_end(&w);
    for (int t = 0; t < 5; t++) {
        gb_jw_obj_begin(&w);
        gb_jw_kstr(&w, "name", "thread_name");
        gb_jw_kstr(&w, "ph", "M");
        gb_jw_kint(&w, "pid", 1);
        gb_jw_kint(&w, "tid", t);
        gb_jw_key(&w, "args");
        gb_jw_obj_begin(&w);
        gb_jw_kstr(&w, "name", k_tracks[t]);
        gb_jw_obj_end(&w);
        gb_jw_obj_end(&w);
    }
    for (size_t i = 0; i < n; i++) {
        int tr = s[i].track >= 0 && s[i].track < 5 ? s[i].track : 2;
        gb_jw_obj_begin(&w);
        gb_jw_kstr(&w, "name", s[i].name);
        gb_jw_kstr(&w, "cat", k_tracks[tr]);
        gb_jw_kstr(&w, "ph", "X");
        gb_jw_kdouble(&w, "ts", (double)(s[i].t0_ns - t0_ns) / 1000.0);
        double dur = (double)(s[i].t1_ns - s[i].t0_ns) / 1000.0;
        gb_jw_kdouble(&w, "dur", dur > 0 ? dur : 0.0);
        gb_jw_kint(&w, "pid", 1);
        gb_jw_kint(&w, "tid", tr);
        gb_jw_obj_end(&w);
    }
    gb_jw_arr_end(&w);
    gb_jw_kstr(&w, "displayTimeUnit", "ms");
    gb_jw_obj_end(&w);
    size_t len;
    char *text = gb_jw_take(&w, &len);
    if (!text) return gb_error_set(err, GB_ERR_NOMEM, "%s: out of memory", path);
    int rc = gb_file_write_atomic(path, text, len, err);
    free(text);
    return rc;
}
