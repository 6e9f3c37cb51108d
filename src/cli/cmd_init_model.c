/* genbench init-model: writes a random-weight model directory from a preset or a config. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "model/config.h"
#include "model/presets.h"
#include "model/random.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/paths.h"

static void usage(FILE *f) {
    fprintf(f, "usage: genbench init-model (--preset NAME | --config FILE) [--seed N]\n"
               "                           [--max-shard-bytes N] [--tokenizer NAME|DIR] OUTDIR\n"
               "\n"
               "Writes a complete Hugging Face model directory with deterministic random weights\n"
               "(config.json, generation_config.json, BF16 safetensors, tokenizer files).\n"
               "OUTDIR must not exist (or be empty); it is written under a temporary name and\n"
               "renamed, so it is either complete or absent.\n"
               "\n"
               "  --preset NAME          a built-in model (config, tokenizer, seed, sharding)\n"
               "  --config FILE          a config.json (llama, mistral, qwen2, qwen3, gpt2)\n"
               "  --seed N               random-weight seed (default: the preset's, else 0)\n"
               "  --max-shard-bytes N    split into shards of at most N bytes (suffixes K, M, G,\n"
               "                         KiB, MiB, GiB; default: the preset's, else one file)\n"
               "  --tokenizer NAME|DIR   bundled tokenizer (gpt2, llama2, llama3, qwen3) or a\n"
               "                         directory with tokenizer.json (default: the preset's;\n"
               "                         none with --config)\n"
               "\npresets:");
    const char *const *names = gb_preset_names();
    for (int i = 0; names[i]; i++)
        fprintf(f, "%s %s", i % 6 ? "" : "\n ", names[i]);
    fprintf(f, "\n");
}

static int parse_u64(const char *s, uint64_t *out, int allow_suffix) {
    if (!s || !*s || *s == '-') return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return -1;
    uint64_t mul = 1;
    if (*end && allow_suffix) {
        static const struct {
            const char *s;
            uint64_t m;
        } sfx[] = {{"K", 1000ULL},      {"KB", 1000ULL},      {"M", 1000000ULL},
                   {"MB", 1000000ULL},  {"G", 1000000000ULL}, {"GB", 1000000000ULL},
                   {"KiB", 1ULL << 10}, {"MiB", 1ULL << 20},  {"GiB", 1ULL << 30}};
        mul = 0;
        for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++)
            if (!strcmp(end, sfx[i].s)) mul = sfx[i].m;
        if (!mul) return -1;
    } else if (*end) {
        return -1;
    }
    if (v > UINT64_MAX / mul) return -1;
    *out = (uint64_t)v * mul;
    return 0;
}

int gb_cli_init_model(int argc, char **argv) {
    const char *preset = NULL, *config = NULL, *tokenizer = NULL, *out = NULL;
    uint64_t seed = 0, max_shard = 0;
    int have_seed = 0, have_shard = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        const char *val = NULL;
        if (!strcmp(a, "--preset") || !strcmp(a, "--config") || !strcmp(a, "--seed") ||
            !strcmp(a, "--max-shard-bytes") || !strcmp(a, "--tokenizer")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "genbench init-model: %s needs a value\n", a);
                return 2;
            }
            val = argv[++i];
        }
        if (!strcmp(a, "--preset")) {
            preset = val;
        } else if (!strcmp(a, "--config")) {
            config = val;
        } else if (!strcmp(a, "--tokenizer")) {
            tokenizer = val;
        } else if (!strcmp(a, "--seed")) {
            if (parse_u64(val, &seed, 0) != 0) {
                fprintf(stderr, "genbench init-model: --seed: '%s' is not an unsigned integer\n",
                        val);
                return 2;
            }
            have_seed = 1;
        } else if (!strcmp(a, "--max-shard-bytes")) {
            if (parse_u64(val, &max_shard, 1) != 0 || max_shard == 0) {
                fprintf(stderr,
                        "genbench init-model: --max-shard-bytes: '%s' is not a positive "
                        "byte count\n",
                        val);
                return 2;
            }
            have_shard = 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "genbench init-model: unknown option '%s' (see --help)\n", a);
            return 2;
        } else if (out) {
            fprintf(stderr, "genbench init-model: more than one OUTDIR ('%s', '%s')\n", out, a);
            return 2;
        } else {
            out = a;
        }
    }
    if (!!preset == !!config || !out) {
        fprintf(stderr, "genbench init-model: give exactly one of --preset/--config, and OUTDIR "
                        "(see --help)\n");
        return 2;
    }

    gb_error err = {0};
    gb_preset p = {0};
    char *tok_dir = NULL, *tokenizer_json = NULL;
    int rc = GB_OK;
    if (preset) {
        rc = gb_preset_load(preset, &p, &err);
    } else {
        rc = gb_file_read_all(config, 16u << 20, &p.config_json, &p.config_len, &err);
    }
    if (!rc && tokenizer) {
        if (strchr(tokenizer, '/') || gb_is_dir(tokenizer))
            tok_dir = strdup(tokenizer);
        else
            tok_dir = gb_strdup_printf("%s/tokenizers/%s", gb_data_dir(), tokenizer);
        if (!gb_is_dir(tok_dir))
            rc = gb_error_set(&err, GB_ERR_NOT_FOUND,
                              "tokenizer '%s': no such bundled tokenizer or directory (bundled: "
                              "gpt2, llama2, llama3, qwen3)",
                              tokenizer);
        else if (!gb_is_file(tokenizer_json = gb_strdup_printf("%s/tokenizer.json", tok_dir)))
            rc = gb_error_set(&err, GB_ERR_NOT_FOUND, "tokenizer '%s': %s is missing", tokenizer,
                              tokenizer_json);
        free(tokenizer_json);
    }
    gb_model_config cfg;
    if (!rc)
        rc = gb_model_config_parse(p.config_json, p.config_len, config ? config : preset, &cfg,
                                   &err);
    if (rc) {
        fprintf(stderr, "genbench init-model: %s\n", err.msg);
        free(tok_dir);
        gb_preset_free(&p);
        return 1;
    }
    gb_random_model_options opts = {
        .seed = have_seed ? seed : p.seed,
        .max_shard_bytes = have_shard ? max_shard : p.max_shard_bytes,
        .tokenizer_dir = tok_dir ? tok_dir : p.tokenizer_dir,
    };
    if (!opts.tokenizer_dir)
        fprintf(stderr, "genbench init-model: note: no --tokenizer given, writing no tokenizer "
                        "files\n");
    int64_t nparams = gb_model_config_num_params(&cfg);
    double t0 = gb_clock_s();
    rc = gb_random_model_write(p.config_json, p.config_len, &opts, out, &err);
    double dt = gb_clock_s() - t0;
    if (rc) {
        fprintf(stderr, "genbench init-model: %s\n", err.msg);
    } else {
        double bytes = (double)nparams * 2.0;
        printf("%s: %s, %.1fM parameters, %.3f GB of BF16 weights in %.2f s (%.0f MB/s)\n", out,
               cfg.architecture, (double)nparams / 1e6, bytes / 1e9, dt,
               dt > 0 ? bytes / 1e6 / dt : 0.0);
    }
    free(tok_dir);
    gb_preset_free(&p);
    return rc ? 1 : 0;
}
