/* genbench compare A B: per matching config, medians side by side, relative change and a
 * Mann-Whitney U significance test (docs/cli.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/compare.h"
#include "bench/report.h"
#include "cli/cli.h"
#include "util/error.h"

static const char *const k_usage =
    "usage: genbench compare A B [--format md|csv|json|jsonl] [--alpha P]\n"
    "\n"
    "A and B are results files or directories (every *_benchmark_*.json below them; a later\n"
    "file replaces an earlier entry of the same model and config). For every (model, config\n"
    "hash) present in both: the medians of e2e latency, time to first token, inter-token\n"
    "latency and throughput in A and B, the change (B - A) / A in percent, and the p-value of a\n"
    "two-sided Mann-Whitney U test over the per-iteration values (exact for small samples\n"
    "without ties, normal approximation with tie correction otherwise). 'significant' means\n"
    "p < alpha (default 0.05); the verdict says whether B is better or worse (lower latency,\n"
    "higher throughput). With fewer than 4 iterations per side no change can reach p < 0.05.\n"
    "Configs found on one side only are listed as such.\n"
    "\n"
    "  --format F   md (default), csv, json, jsonl (the table goes to stdout)\n"
    "  --alpha P    significance level (default 0.05)\n"
    "  -h, --help   this help\n"
    "\n"
    "Exit status: 0 on success (whatever the changes), 2 on usage or input errors.\n";

int gb_cli_compare(int argc, char **argv) {
    const char *paths[2];
    int np = 0;
    const char *format = "md";
    double alpha = 0.05;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(k_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--format") || !strncmp(a, "--format=", 9)) {
            const char *v = a[8] == '=' ? a + 9 : i + 1 < argc ? argv[++i] : NULL;
            if (!v || !gb_report_format_valid(v)) {
                fprintf(stderr, "genbench compare: --format must be md, csv, json or jsonl\n");
                return 2;
            }
            format = v;
        } else if (!strcmp(a, "--alpha") || !strncmp(a, "--alpha=", 8)) {
            const char *v = a[7] == '=' ? a + 8 : i + 1 < argc ? argv[++i] : NULL;
            char *end = NULL;
            alpha = v ? strtod(v, &end) : -1;
            if (!v || *end || !(alpha > 0 && alpha < 1)) {
                fprintf(stderr, "genbench compare: --alpha expects a number in (0, 1)\n");
                return 2;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "genbench compare: unknown option '%s'\n", a);
            return 2;
        } else if (np < 2) {
            paths[np++] = a;
        } else {
            fprintf(stderr, "genbench compare: expected exactly two results files/directories\n");
            return 2;
        }
    }
    if (np != 2) {
        fprintf(stderr, "genbench compare: expected two results files/directories A B "
                        "(see --help)\n");
        return 2;
    }
    gb_error err;
    gb_cmp_set s[2];
    for (int k = 0; k < 2; k++)
        if (gb_cmp_load(paths[k], &s[k], &err) != 0) {
            fprintf(stderr, "genbench compare: %s\n", err.msg);
            if (k) gb_cmp_free(&s[0]);
            return 2;
        }
    int matched = 0;
    char *text = gb_cmp_report(&s[0], &s[1], format, alpha, &matched);
    fprintf(stderr,
            "genbench compare: A = %s (%d configs), B = %s (%d configs), %d in both; "
            "significance: two-sided Mann-Whitney U, alpha %g\n",
            paths[0], s[0].n, paths[1], s[1].n, matched, alpha);
    if (text) fputs(text, stdout);
    free(text);
    gb_cmp_free(&s[0]);
    gb_cmp_free(&s[1]);
    return text ? 0 : 2;
}
