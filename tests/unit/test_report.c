/* Reports: benchmark_v2's duration format, table rendering (csv quoting, markdown escaping,
 * json/jsonl validity) and the summary of a results set. */
#include <cjson/cJSON.h>

#include "bench/report.h"
#include "bench/results.h"
#include "test.h"

int main(void) {
    char b[32];
    struct {
        double v;
        const char *s;
    } d[] = {{1.13, "1.13s"}, {0.00381, "3.81ms"}, {1.0, "1000.00ms"}, {0, "0.00ns"},
             {90, "1.50min"}, {7200, "2.00hr"},    {2.5e-6, "2.50us"}, {5e-7, "500.00ns"}};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        gb_fmt_duration(d[i].v, b, sizeof b);
        CHECK_STR(b, d[i].s);
    }
    const char *header[3] = {"name", "value", "note"};
    const char *cells[6] = {"a,b", "1.5", "say \"hi\"", "x|y", NULL, "line\nbreak"};
    const int numeric[3] = {0, 1, 0};
    char *csv = gb_table_render("csv", header, 3, cells, 2, numeric);
    CHECK_STR(csv, "name,value,note\n\"a,b\",1.5,\"say \"\"hi\"\"\"\nx|y,,\"line\nbreak\"\n");
    free(csv);
    char *md = gb_table_render("md", header, 3, cells, 2, numeric);
    CHECK_STR(md, "| name | value | note |\n| --- | ---: | --- |\n| a,b | 1.5 | say \"hi\" |\n"
                  "| x\\|y |  | line break |\n");
    free(md);
    char *js = gb_table_render("json", header, 3, cells, 2, numeric);
    cJSON *j = cJSON_Parse(js);
    CHECK(cJSON_IsArray(j) && cJSON_GetArraySize(j) == 2);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "value")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 1), "value")));
    cJSON_Delete(j);
    free(js);
    char *jl = gb_table_render("jsonl", header, 3, cells, 2, numeric);
    char *nl = strchr(jl, '\n');
    CHECK(nl && strchr(nl + 1, '\n') && nl[1] == '{');
    free(jl);
    CHECK(gb_report_format_valid("md") && !gb_report_format_valid("xml"));

    /* Summary of one successful entry with three runs. */
    gb_bench_results r;
    memset(&r, 0, sizeof r);
    r.model_id = strdup("m");
    gb_bench_entry e;
    memset(&e, 0, sizeof e);
    gb_bench_config_default(&e.config);
    e.config.num_tokens_to_generate = 4;
    e.success = true;
    e.prompt_length = 10;
    e.n_iters = 3;
    e.iters = calloc(3, sizeof *e.iters);
    for (int i = 0; i < 3; i++) {
        e.iters[i].e2e = 1.0 + i;
        e.iters[i].ttft = 0.1;
        e.iters[i].itl = 0.3;
    }
    gb_error err;
    CHECK(gb_bench_results_add(&r, &e, &err) != NULL);
    char *s = gb_report_summary(&r, 1, 12.345);
    CHECK(strstr(s, "Finished benchmarks in 12.35 seconds") != NULL);
    CHECK(strstr(s, "Total number of benchmarks: 1") != NULL);
    CHECK(strstr(s, "Config: 5 warmup, 20 iterations") != NULL);
    /* e2e 1, 2, 3 s: avg 2.00s, median 2.00s, min 1000.00ms (exactly 1 s prints as ms). */
    CHECK_MSG(strstr(s, "E2E Latency.........: avg=2.00s") != NULL, "%s", s);
    CHECK(strstr(s, "min=1000.00ms") != NULL);
    /* throughput = 1 * 4 / e2e: max 4.00tok/s */
    CHECK(strstr(s, "max=4.00tok/s") != NULL);
    free(s);
    char *t = gb_report_table(&r, 1, "csv");
    CHECK(strstr(t, ",true,1,10,4,2.0,0.1,0.3,") != NULL);
    free(t);
    gb_bench_results_free(&r);
    TEST_MAIN_END();
}
