#include "bench/compare.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/pyjson.h"
#include "bench/report.h"
#include "bench/stats.h"
#include "util/error.h"
#include "util/fileio.h"

static void entry_free(gb_cmp_entry *e) {
    free(e->model_id);
    free(e->name);
    free(e->file);
    for (int k = 0; k < GB_CMP_METRICS; k++)
        free(e->series[k]);
    memset(e, 0, sizeof *e);
}

void gb_cmp_free(gb_cmp_set *s) {
    for (int i = 0; i < s->n; i++)
        entry_free(&s->e[i]);
    free(s->e);
    memset(s, 0, sizeof *s);
}

static int list_nums(const cJSON *arr, double **out, int *n, const char *what, const char *file,
                     gb_error *err) {
    if (!cJSON_IsArray(arr))
        return gb_error_set(err, GB_ERR_FORMAT, "%s: measurements.%s is not a list", file, what);
    int m = cJSON_GetArraySize(arr);
    *out = malloc(((size_t)m + 1) * sizeof **out);
    if (!*out) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    int i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, arr) {
        if (!cJSON_IsNumber(c))
            return gb_error_set(err, GB_ERR_FORMAT, "%s: measurements.%s holds a non-number", file,
                                what);
        (*out)[i++] = c->valuedouble;
    }
    *n = m;
    return GB_OK;
}

static int load_file(const char *path, gb_cmp_set *s, gb_error *err) {
    char *text;
    size_t len;
    GB_TRY(gb_file_read_all(path, 1u << 30, &text, &len, err));
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return gb_error_set(err, GB_ERR_FORMAT,
                            "%s: not a genbench/benchmark_v2 results file "
                            "(expected a JSON object keyed by config hash)",
                            path);
    }
    int rc = GB_OK;
    const cJSON *ent;
    cJSON_ArrayForEach(ent, root) {
        const cJSON *md = cJSON_GetObjectItem(ent, "metadata");
        const cJSON *ms = cJSON_GetObjectItem(ent, "measurements");
        const cJSON *cf = cJSON_GetObjectItem(ent, "config");
        if (!cJSON_IsObject(md) || !cJSON_IsObject(ms) || !cJSON_IsObject(cf)) {
            rc = gb_error_set(err, GB_ERR_FORMAT,
                              "%s: entry %.16s lacks metadata/measurements/config", path,
                              ent->string ? ent->string : "?");
            break;
        }
        gb_cmp_entry e;
        memset(&e, 0, sizeof e);
        const cJSON *mid = cJSON_GetObjectItem(md, "model_id");
        const cJSON *nm = cJSON_GetObjectItem(cf, "name");
        e.model_id = strdup(cJSON_IsString(mid) ? mid->valuestring : "?");
        e.name = strdup(cJSON_IsString(nm) ? nm->valuestring : "?");
        e.file = strdup(path);
        snprintf(e.hash, sizeof e.hash, "%.64s", ent->string ? ent->string : "");
        e.success = cJSON_IsTrue(cJSON_GetObjectItem(md, "success"));
        const cJSON *b = cJSON_GetObjectItem(cf, "batch_size");
        const cJSON *nt = cJSON_GetObjectItem(cf, "num_tokens_to_generate");
        double batch = cJSON_IsNumber(b) ? b->valuedouble : 1,
               ntok = cJSON_IsNumber(nt) ? nt->valuedouble : 0;
        int n1 = 0, n2 = 0, n3 = 0;
        rc = list_nums(cJSON_GetObjectItem(ms, "e2e_latency"), &e.series[GB_CMP_E2E], &n1,
                       "e2e_latency", path, err);
        if (!rc)
            rc = list_nums(cJSON_GetObjectItem(ms, "time_to_first_token"), &e.series[GB_CMP_TTFT],
                           &n2, "time_to_first_token", path, err);
        if (!rc)
            rc = list_nums(cJSON_GetObjectItem(ms, "inter_token_latency"), &e.series[GB_CMP_ITL],
                           &n3, "inter_token_latency", path, err);
        if (!rc && (n1 != n2 || n1 != n3))
            rc = gb_error_set(err, GB_ERR_FORMAT, "%s: entry %.16s has lists of different lengths",
                              path, e.hash);
        if (!rc) {
            e.n = n1;
            e.series[GB_CMP_TPUT] = malloc(((size_t)n1 + 1) * sizeof(double));
            if (!e.series[GB_CMP_TPUT]) rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            for (int i = 0; !rc && i < n1; i++)
                e.series[GB_CMP_TPUT][i] =
                    e.series[GB_CMP_E2E][i] > 0 ? batch * ntok / e.series[GB_CMP_E2E][i] : 0;
        }
        if (rc) {
            entry_free(&e);
            break;
        }
        /* Replace an older entry for the same model and config. */
        int at = -1;
        for (int i = 0; i < s->n; i++)
            if (!strcmp(s->e[i].hash, e.hash) && !strcmp(s->e[i].model_id, e.model_id)) at = i;
        if (at >= 0) {
            entry_free(&s->e[at]);
            s->e[at] = e;
            continue;
        }
        if (s->n == s->cap) {
            int nc = s->cap ? 2 * s->cap : 16;
            gb_cmp_entry *ne = realloc(s->e, (size_t)nc * sizeof *ne);
            if (!ne) {
                entry_free(&e);
                rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
                break;
            }
            s->e = ne;
            s->cap = nc;
        }
        s->e[s->n++] = e;
    }
    cJSON_Delete(root);
    if (!rc) s->n_files++;
    return rc;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_dir(const char *dir, gb_cmp_set *s, int depth, gb_error *err) {
    if (depth > 8) return GB_OK;
    DIR *d = opendir(dir);
    if (!d) return gb_error_set(err, GB_ERR_IO, "%s: cannot open directory", dir);
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            char **nn = realloc(names, (size_t)cap * sizeof *nn);
            if (!nn) break;
            names = nn;
        }
        names[n++] = gb_strdup_printf("%s/%s", dir, de->d_name);
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_str);
    int rc = GB_OK;
    for (int i = 0; i < n; i++) {
        if (!rc && names[i]) {
            const char *base = strrchr(names[i], '/');
            base = base ? base + 1 : names[i];
            size_t bl = strlen(base);
            if (gb_is_dir(names[i]))
                rc = load_dir(names[i], s, depth + 1, err);
            else if (bl > 5 && !strcmp(base + bl - 5, ".json") && strstr(base, "_benchmark_"))
                rc = load_file(names[i], s, err);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int gb_cmp_load(const char *path, gb_cmp_set *out, gb_error *err) {
    memset(out, 0, sizeof *out);
    int rc;
    if (gb_is_dir(path)) {
        rc = load_dir(path, out, 0, err);
        if (!rc && out->n_files == 0)
            rc = gb_error_set(err, GB_ERR_NOT_FOUND, "%s: no *_benchmark_*.json results files",
                              path);
    } else {
        rc = load_file(path, out, err);
    }
    if (rc) gb_cmp_free(out);
    return rc;
}

static bool g_pretty; /* markdown: 4 significant digits for people; others: full precision */

static char *fmt_num(double v) {
    if (!isfinite(v)) return NULL;
    char buf[32];
    if (g_pretty)
        snprintf(buf, sizeof buf, "%.4g", v);
    else
        gb_py_float_repr(v, buf);
    return strdup(buf);
}

char *gb_cmp_report(const gb_cmp_set *a, const gb_cmp_set *b, const char *format, double alpha,
                    int *n_matched) {
    static const char *const header[] = {"model_id", "config",      "hash",     "metric",
                                         "unit",     "a_median",    "b_median", "change_pct",
                                         "p_value",  "significant", "verdict"};
    static const int numeric[] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0};
    static const char *const metric[] = {"e2e_latency", "time_to_first_token",
                                         "inter_token_latency", "throughput"};
    static const char *const unit[] = {"s", "s", "s", "tok/s"};
    enum { NC = 11 };
    int cap_rows = (a->n + b->n) * GB_CMP_METRICS + 1;
    char **cells = calloc((size_t)cap_rows * NC, sizeof *cells);
    if (!cells) return NULL;
    int rows = 0;
    *n_matched = 0;
    g_pretty = !strcmp(format, "md");
    for (int i = 0; i < a->n; i++) {
        const gb_cmp_entry *ea = &a->e[i], *eb = NULL;
        for (int j = 0; j < b->n; j++)
            if (!strcmp(b->e[j].hash, ea->hash) && !strcmp(b->e[j].model_id, ea->model_id))
                eb = &b->e[j];
        if (!eb) {
            char **c = cells + (size_t)rows++ * NC;
            c[0] = strdup(ea->model_id);
            c[1] = strdup(ea->name);
            c[2] = strdup(ea->hash);
            c[9] = strdup("n/a");
            c[10] = strdup("only in A");
            continue;
        }
        (*n_matched)++;
        for (int k = 0; k < GB_CMP_METRICS; k++) {
            char **c = cells + (size_t)rows++ * NC;
            c[0] = strdup(ea->model_id);
            c[1] = strdup(ea->name);
            c[2] = g_pretty ? strndup(ea->hash, 12) : strdup(ea->hash);
            c[3] = strdup(metric[k]);
            c[4] = strdup(unit[k]);
            if (!ea->success || !eb->success || ea->n == 0 || eb->n == 0) {
                c[9] = strdup("n/a");
                c[10] = strdup(!ea->success   ? "failed in A"
                               : !eb->success ? "failed in B"
                                              : "no measurements");
                continue;
            }
            gb_stats sa, sb;
            gb_stats_compute(ea->series[k], (size_t)ea->n, &sa);
            gb_stats_compute(eb->series[k], (size_t)eb->n, &sb);
            double p =
                gb_mann_whitney_p(ea->series[k], (size_t)ea->n, eb->series[k], (size_t)eb->n, NULL);
            c[5] = fmt_num(sa.median);
            c[6] = fmt_num(sb.median);
            c[7] = sa.median != 0 ? fmt_num(round(1e4 * (sb.median - sa.median) / sa.median) / 100)
                                  : NULL;
            c[8] = fmt_num(p);
            bool sig = p < alpha;
            c[9] = strdup(sig ? "yes" : "no");
            bool higher_better = k == GB_CMP_TPUT;
            bool b_better = higher_better ? sb.median > sa.median : sb.median < sa.median;
            c[10] = strdup(!sig ? "within noise" : b_better ? "B better" : "B worse");
        }
    }
    for (int j = 0; j < b->n; j++) {
        bool found = false;
        for (int i = 0; i < a->n; i++)
            if (!strcmp(b->e[j].hash, a->e[i].hash) && !strcmp(b->e[j].model_id, a->e[i].model_id))
                found = true;
        if (found) continue;
        char **c = cells + (size_t)rows++ * NC;
        c[0] = strdup(b->e[j].model_id);
        c[1] = strdup(b->e[j].name);
        c[2] = strdup(b->e[j].hash);
        c[9] = strdup("n/a");
        c[10] = strdup("only in B");
    }
    char *out = gb_table_render(format, header, NC, (const char *const *)cells, rows, numeric);
    for (int k = 0; k < rows * NC; k++)
        free(cells[k]);
    free(cells);
    return out;
}
