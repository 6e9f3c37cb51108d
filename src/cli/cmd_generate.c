/* genbench generate: print a greedy continuation of a prompt.
 *
 *   genbench generate --model DIR|random:PRESET|ORG/NAME [--prompt TEXT | --prompt-file F]
 *       [-s N] [-n N] [-b N] [--dtype D] [--attn A] [--kernelize] [--compile MODE]
 *       [--device cpu|cuda[:N]] [--threads N] [--mmap] [--json] [--dump-logits FILE]
 *
 * --model takes what `genbench run` takes (io/hub.h). The prompt (default: the benchmark
 * prompt, data/prompt.txt) is tokenized with the tokenizer's special-token rules, truncated
 * to -s tokens and repeated -b times; -n tokens are generated greedily (end-of-sequence does
 * not stop generation). The text goes to stdout (--json: one object with prompt_ids,
 * generated_ids, text, ttft_s, itl_s); timing and notes go to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/backend.h"
#include "cli/cli.h"
#include "engine/engine.h"
#include "io/hub.h"
#include "tokenizer/tokenizer.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/paths.h"

static void usage(FILE *f) {
    fprintf(f, "usage: genbench generate --model DIR|random:PRESET|ORG/NAME [--prompt TEXT | "
               "--prompt-file F]\n"
               "         [-s|--sequence-length N] [-n|--max-new-tokens N] [-b|--batch-size N]\n"
               "         [--dtype bfloat16|float16|float32] [--attn eager|sdpa|flash_attention_2]\n"
               "         [--kernelize] [--compile none|default|reduce-overhead|max-autotune|\n"
               "          max-autotune-no-cudagraphs] [--device cpu|cuda[:N]] [--threads N]\n"
               "         [--mmap] [--json] [--dump-logits FILE]\n"
               "defaults: the benchmark prompt, -s 128 -n 32 -b 1, bfloat16, sdpa, uncompiled,\n"
               "cuda when a GPU is usable else cpu; --mmap uses weights in place from the file.\n");
}

typedef struct timing {
    int64_t first_ns, last_ns;
    int count;
} timing;

static void on_token(void *user, int step, const int32_t *ids, int batch, int64_t t_ns) {
    (void)ids, (void)batch;
    timing *t = user;
    if (step == 0) t->first_ns = t_ns;
    t->last_ns = t_ns;
    t->count++;
}

static int parse_int(const char *flag, const char *v, int lo, int *out) {
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < lo || x > (1 << 24)) {
        fprintf(stderr, "genbench generate: %s needs an integer >= %d, got '%s'\n", flag, lo,
                v ? v : "");
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* model id -> directory: random:<preset>, a local directory, or a Hugging Face id in the
 * local hub cache (io/hub.h). */
static int resolve_model(const char *id, char *dir, size_t cap, gb_error *err) {
    gb_model_location loc;
    GB_TRY(gb_hub_resolve(id, &loc, err));
    snprintf(dir, cap, "%s", loc.dir);
    return 0;
}

int gb_cli_generate(int argc, char **argv) {
    const char *model_id = NULL, *prompt = NULL, *prompt_file = NULL, *dump = NULL;
    const char *compile = NULL, *device = NULL;
    int seq = 128, new_tokens = 32, batch = 1, json = 0;
    gb_engine_options o;
    gb_engine_options_default(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--model")) {
            model_id = v;
        } else if (!strcmp(a, "--prompt")) {
            prompt = v;
        } else if (!strcmp(a, "--prompt-file")) {
            prompt_file = v;
        } else if (!strcmp(a, "-s") || !strcmp(a, "--sequence-length")) {
            if (parse_int(a, v, 1, &seq)) return 2;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--max-new-tokens")) {
            if (parse_int(a, v, 1, &new_tokens)) return 2;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
            if (parse_int(a, v, 1, &batch)) return 2;
        } else if (!strcmp(a, "--threads")) {
            if (parse_int(a, v, 0, &o.threads)) return 2;
        } else if (!strcmp(a, "--dtype")) {
            if (!v || gb_dtype_parse(v, &o.dtype)) {
                fprintf(stderr, "genbench generate: --dtype: unknown '%s'\n", v ? v : "");
                return 2;
            }
        } else if (!strcmp(a, "--attn")) {
            int fell_back;
            if (gb_engine_attn_from_name(v, &o.attn, &fell_back)) {
                fprintf(stderr, "genbench generate: --attn: unknown '%s'\n", v ? v : "");
                return 2;
            }
            if (fell_back)
                fprintf(stderr, "genbench generate: flex_attention is not provided; using sdpa\n");
        } else if (!strcmp(a, "--compile")) {
            compile = v;
        } else if (!strcmp(a, "--device")) {
            device = v;
        } else if (!strcmp(a, "--dump-logits")) {
            dump = v;
        } else {
            takes = 0;
            if (!strcmp(a, "--kernelize")) {
                o.kernelize = 1;
            } else if (!strcmp(a, "--json")) {
                json = 1;
            } else if (!strcmp(a, "--mmap")) {
                o.use_mmap = 1;
            } else {
                fprintf(stderr, "genbench generate: unknown option '%s' (see --help)\n", a);
                return 2;
            }
        }
        if (takes) {
            if (!v) {
                fprintf(stderr, "genbench generate: %s needs a value\n", a);
                return 2;
            }
            i++;
        }
    }
    if (!model_id) {
        fprintf(stderr, "genbench generate: --model is required (see --help)\n");
        return 2;
    }
    if (prompt && prompt_file) {
        fprintf(stderr, "genbench generate: give --prompt or --prompt-file, not both\n");
        return 2;
    }
    if (!device) {
        o.device = gb_backend_cuda_available() ? GB_DEVICE_CUDA : GB_DEVICE_CPU;
    } else if (!strcmp(device, "cpu")) {
        o.device = GB_DEVICE_CPU;
    } else if (!strncmp(device, "cuda", 4) && (!device[4] || device[4] == ':')) {
        o.device = GB_DEVICE_CUDA;
        if (device[4] && parse_int("--device cuda:N", device + 5, 0, &o.device_index)) return 2;
    } else {
        fprintf(stderr, "genbench generate: --device: unknown '%s'\n", device);
        return 2;
    }
    if (gb_engine_compile_from_mode(compile, o.device, &o.static_cache, &o.cuda_graph)) {
        fprintf(stderr, "genbench generate: --compile: unknown mode '%s'\n", compile);
        return 2;
    }

    gb_error err = {0};
    char dir[4096];
    char *text = NULL, *out_text = NULL;
    size_t text_len = 0, out_len = 0, n_ids = 0;
    int32_t *ids = NULL, *prompt_ids = NULL, *gen = NULL;
    float *logits = NULL;
    gb_tokenizer *tok = NULL;
    gb_model *m = NULL;
    timing tm = {0};
    int rc = resolve_model(model_id, dir, sizeof dir, &err);
    if (!rc) {
        if (prompt) {
            text = gb_strdup_printf("%s", prompt);
            text_len = strlen(text);
        } else {
            char *pf = prompt_file ? gb_strdup_printf("%s", prompt_file)
                                   : gb_strdup_printf("%s/prompt.txt", gb_data_dir());
            rc = gb_file_read_all(pf, 0, &text, &text_len, &err);
            free(pf);
        }
    }
    if (!rc) rc = gb_tokenizer_load(dir, &tok, &err);
    if (!rc) {
        rc = gb_tokenizer_encode(tok, text, text_len, true, seq, &ids, &n_ids, &err);
        if (rc) /* e.g. invalid UTF-8: say which text */
            gb_error_prefix(&err, "%s",
                            prompt        ? "--prompt"
                            : prompt_file ? prompt_file
                                          : "prompt.txt");
    }
    if (!rc && n_ids == 0) rc = gb_error_set(&err, GB_ERR_INVALID, "the prompt has no tokens");
    if (!rc && (int)n_ids < seq)
        fprintf(stderr, "genbench generate: the prompt has %zu tokens (fewer than -s %d)\n", n_ids,
                seq);
    if (!rc) rc = gb_model_load(dir, &o, &m, &err);
    if (!rc) {
        int T = (int)n_ids;
        const gb_model_config *cfg = gb_model_get_config(m);
        prompt_ids = malloc(sizeof(int32_t) * (size_t)batch * T);
        gen = malloc(sizeof(int32_t) * (size_t)batch * new_tokens);
        logits = dump ? malloc(sizeof(float) * (size_t)cfg->vocab_size) : NULL;
        if (!prompt_ids || !gen || (dump && !logits)) {
            rc = gb_error_set(&err, GB_ERR_NOMEM, "out of memory");
        } else {
            for (int b = 0; b < batch; b++)
                memcpy(prompt_ids + (size_t)b * T, ids, sizeof(int32_t) * T);
            gb_generate_params p = {.prompt_ids = prompt_ids,
                                    .batch = batch,
                                    .prompt_len = T,
                                    .new_tokens = new_tokens,
                                    .on_token = on_token,
                                    .user = &tm,
                                    .last_logits = logits};
            int64_t t0 = gb_clock_ns();
            rc = gb_generate(m, &p, gen, &err);
            if (!rc) {
                tm.first_ns -= t0;
                tm.last_ns -= t0;
            }
        }
    }
    if (!rc && dump)
        rc = gb_file_write_atomic(dump, logits, sizeof(float) * gb_model_get_config(m)->vocab_size,
                                  &err);
    if (!rc)
        rc = gb_tokenizer_decode(tok, gen, (size_t)new_tokens, true, &out_text, &out_len, &err);
    if (!rc) {
        double ttft = tm.first_ns * 1e-9;
        double itl = new_tokens > 1 ? (tm.last_ns - tm.first_ns) * 1e-9 / (new_tokens - 1) : 0.0;
        if (json) {
            printf("{\"prompt_ids\": ");
            gb_cli_json_ids(stdout, ids, n_ids);
            printf(", \"generated_ids\": [");
            for (int b = 0; b < batch; b++) {
                if (b) printf(", ");
                gb_cli_json_ids(stdout, gen + (size_t)b * new_tokens, (size_t)new_tokens);
            }
            printf("], \"text\": ");
            gb_cli_json_str(stdout, out_text, out_len);
            printf(", \"ttft_s\": %.9f, \"itl_s\": %.9f}\n", ttft, itl);
        } else {
            fwrite(out_text, 1, out_len, stdout);
            fputc('\n', stdout);
        }
        gb_model_memory mem;
        gb_model_get_memory(m, &mem);
        fprintf(stderr,
                "genbench generate: %zu prompt tokens x %d, %d new; TTFT %.3f ms, ITL %.3f ms "
                "(%.1f tok/s); weights %.1f MiB, KV %.1f MiB\n",
                n_ids, batch, new_tokens, ttft * 1e3, itl * 1e3, itl > 0 ? batch / itl : 0.0,
                mem.weight_resident_bytes / 1048576.0, mem.kv_bytes / 1048576.0);
    } else {
        fprintf(stderr, "genbench generate: %s\n", err.msg);
    }
    gb_model_free(m);
    gb_tokenizer_free(tok);
    free(text), free(ids), free(prompt_ids), free(gen), free(logits), free(out_text);
    return rc ? 1 : 0;
}
