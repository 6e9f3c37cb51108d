/* genbench tokenize: encode text (or decode ids) with a model's tokenizer.
 *
 *   genbench tokenize --model DIR|NAME [--no-special-tokens] [--max-length N] [--json]
 *                     (TEXT | --file F | -)
 *   genbench tokenize --model DIR|NAME --decode ID,ID,... [--skip-special-tokens] [--json]
 *
 * Hidden, for the differential test: --jsonl (F | -) reads one JSON string per line and prints
 * one object per line: {"ids", "ids_with_special", "decoded", "decoded_skip_special"} (decodes of
 * ids_with_special), the layout of tests/data/refs/tokenizer_refs.json.
 * Hidden, for bench/tokenizer.sh: --bench REPS with --file F prints one JSON object with the
 * load time and the best of REPS encodes of the whole file (add_special on). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/hub.h"
#include "model/presets.h"
#include "tokenizer/tokenizer.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/paths.h"

static void usage(FILE *f) {
    fprintf(f, "usage: genbench tokenize --model DIR|NAME [--no-special-tokens] [--max-length N]\n"
               "                         [--json] (TEXT | --file F | -)\n"
               "       genbench tokenize --model DIR|NAME --decode ID,ID,... "
               "[--skip-special-tokens] [--json]\n"
               "DIR holds tokenizer.json (+ tokenizer_config.json); NAME is a bundled tokenizer\n"
               "(gpt2, llama2, llama3, qwen3), random:<preset> or a Hugging Face model id.\n");
}

/* Where the tokenizer of --model lives: a directory, a bundled tokenizer name, random:<preset>
 * or a Hugging Face model id. */
static int resolve_tokenizer_dir(const char *model, char **dir, gb_error *err) {
    char *p = gb_strdup_printf("%s/tokenizer.json", model);
    int ok = p && gb_is_file(p);
    free(p);
    if (ok) {
        *dir = gb_strdup_printf("%s", model);
        return 0;
    }
    if (!strchr(model, '/')) {
        char *b = gb_strdup_printf("%s/tokenizers/%s", gb_data_dir(), model);
        p = b ? gb_strdup_printf("%s/tokenizer.json", b) : NULL;
        ok = p && gb_is_file(p);
        free(p);
        if (ok) {
            *dir = b;
            return 0;
        }
        free(b);
    }
    /* random:<preset> needs only the preset's bundled tokenizer, not its weights. */
    if (!strncmp(model, "random:", 7)) {
        gb_preset pr;
        GB_TRY(gb_preset_load(model + 7, &pr, err));
        *dir = gb_strdup_printf("%s", pr.tokenizer_dir);
        gb_preset_free(&pr);
        return *dir ? 0 : gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    }
    /* Any other model id: a Hugging Face id in the local cache (or downloaded). */
    gb_model_location loc;
    if (strchr(model, '/')) {
        GB_TRY(gb_hub_resolve(model, &loc, err)); /* its message lists the places searched */
        *dir = gb_strdup_printf("%s", loc.dir);
        return *dir ? 0 : gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    }
    return gb_error_set(
        err, GB_ERR_NOT_FOUND,
        "%s: no tokenizer.json there, no bundled tokenizer and no model of that name", model);
}

static int hexval(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static int read_u16(const char *s, size_t n, size_t i, unsigned *v) {
    if (i + 4 > n) return -1;
    *v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(s[i + k]);
        if (h < 0) return -1;
        *v = *v * 16 + (unsigned)h;
    }
    return 0;
}

/* Decodes one JSON string literal (the whole line) into bytes; NUL and all escapes allowed,
 * lone surrogates refused. Returns 0 or -1. */
static int parse_json_string(const char *s, size_t n, char **out, size_t *out_len) {
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' '))
        n--;
    if (n < 2 || s[0] != '"' || s[n - 1] != '"') return -1;
    char *o = malloc(n * 2 + 4);
    size_t k = 0;
    if (!o) return -1;
    for (size_t i = 1; i + 1 < n; i++) {
        char c = s[i];
        if (c != '\\') {
            o[k++] = c;
            continue;
        }
        if (++i + 1 >= n + 1) goto bad;
        c = s[i];
        const char *simple = strchr("\"\\/bfnrt", c);
        if (c && simple) {
            o[k++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            continue;
        }
        unsigned u, lo;
        if (c != 'u' || read_u16(s, n - 1, i + 1, &u)) goto bad;
        i += 4;
        if (u >= 0xD800 && u < 0xDC00) {
            if (i + 2 >= n - 1 || s[i + 1] != '\\' || s[i + 2] != 'u' ||
                read_u16(s, n - 1, i + 3, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                goto bad;
            i += 6;
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        } else if (u >= 0xDC00 && u < 0xE000) {
            goto bad;
        }
        if (u < 0x80)
            o[k++] = (char)u;
        else if (u < 0x800) {
            o[k++] = (char)(0xC0 | (u >> 6));
            o[k++] = (char)(0x80 | (u & 0x3F));
        } else if (u < 0x10000) {
            o[k++] = (char)(0xE0 | (u >> 12));
            o[k++] = (char)(0x80 | ((u >> 6) & 0x3F));
            o[k++] = (char)(0x80 | (u & 0x3F));
        } else {
            o[k++] = (char)(0xF0 | (u >> 18));
            o[k++] = (char)(0x80 | ((u >> 12) & 0x3F));
            o[k++] = (char)(0x80 | ((u >> 6) & 0x3F));
            o[k++] = (char)(0x80 | (u & 0x3F));
        }
    }
    *out = o;
    *out_len = k;
    return 0;
bad:
    free(o);
    return -1;
}

static int read_input(const char *file, char **data, size_t *len, gb_error *err) {
    if (strcmp(file, "-") != 0) return gb_file_read_all(file, 0, data, len, err);
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n - 1, stdin);
        n += r;
        if (r == 0) break;
        if (n + 1 == cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
    }
    if (!b) return gb_error_set(err, GB_ERR_NOMEM, "out of memory reading stdin");
    b[n] = 0;
    *data = b;
    *len = n;
    return 0;
}

static int run_jsonl(const gb_tokenizer *t, const char *data, size_t len) {
    gb_error err;
    size_t line = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) : len;
        line++;
        char *text;
        size_t tl;
        if (end > i) {
            if (parse_json_string(data + i, end - i, &text, &tl)) {
                fprintf(stderr, "genbench: --jsonl line %zu is not a JSON string\n", line);
                return 1;
            }
            int32_t *a = NULL, *b = NULL;
            size_t na, nb, sl1, sl2;
            char *s1 = NULL, *s2 = NULL;
            if (gb_tokenizer_encode(t, text, tl, false, 0, &a, &na, &err) ||
                gb_tokenizer_encode(t, text, tl, true, 0, &b, &nb, &err) ||
                gb_tokenizer_decode(t, b, nb, false, &s1, &sl1, &err) ||
                gb_tokenizer_decode(t, b, nb, true, &s2, &sl2, &err)) {
                printf("{\"error\": ");
                gb_cli_json_str(stdout, err.msg, strlen(err.msg));
                printf("}\n");
            } else {
                printf("{\"ids\": ");
                gb_cli_json_ids(stdout, a, na);
                printf(", \"ids_with_special\": ");
                gb_cli_json_ids(stdout, b, nb);
                printf(", \"decoded\": ");
                gb_cli_json_str(stdout, s1, sl1);
                printf(", \"decoded_skip_special\": ");
                gb_cli_json_str(stdout, s2, sl2);
                printf("}\n");
            }
            free(a);
            free(b);
            free(s1);
            free(s2);
            free(text);
        }
        i = end + 1;
    }
    return 0;
}

static int parse_ids(const char *s, int32_t **ids, size_t *n) {
    size_t cap = 16, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) return -1;
    while (*s) {
        char *end;
        errno = 0;
        long x = strtol(s, &end, 10);
        if (end == s || errno || x < 0 || x > INT32_MAX || (*end && *end != ',')) {
            free(v);
            return -1;
        }
        if (k == cap) {
            int32_t *nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) {
                free(v);
                return -1;
            }
            v = nv;
        }
        v[k++] = (int32_t)x;
        s = *end ? end + 1 : end;
    }
    *ids = v;
    *n = k;
    return 0;
}

/* Index of the first id outside [0, vocab), n when all are valid. */
static size_t first_out_of_range(const int32_t *ids, size_t n, int32_t vocab) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab) return i;
    return n;
}

int gb_cli_tokenize(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *text = NULL, *decode = NULL, *jsonl = NULL;
    bool special = true, json = false, skip_special = false;
    long max_len = 0, bench = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--model") && has_val)
            model = argv[++i];
        else if (!strcmp(a, "--file") && has_val)
            file = argv[++i];
        else if (!strcmp(a, "--decode") && has_val)
            decode = argv[++i];
        else if (!strcmp(a, "--jsonl") && has_val)
            jsonl = argv[++i];
        else if (!strcmp(a, "--max-length") && has_val) {
            char *end;
            errno = 0;
            max_len = strtol(argv[++i], &end, 10);
            if (end == argv[i] || *end || errno) max_len = -1; /* refused below */
        } else if (!strcmp(a, "--bench") && has_val)
            bench = strtol(argv[++i], NULL, 10);
        else if (!strcmp(a, "--no-special-tokens"))
            special = false;
        else if (!strcmp(a, "--skip-special-tokens"))
            skip_special = true;
        else if (!strcmp(a, "--json"))
            json = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if ((a[0] != '-' || !strcmp(a, "-")) && !text)
            text = a;
        else {
            fprintf(stderr, "genbench tokenize: unexpected argument '%s' (see --help)\n", a);
            return 2;
        }
    }
    int inputs = (text != NULL) + (file != NULL) + (decode != NULL) + (jsonl != NULL);
    if (bench < 0) inputs = 0;
    if (max_len < 0 || max_len > INT32_MAX) {
        fprintf(stderr, "genbench tokenize: --max-length must be an integer in 0..%d\n", INT32_MAX);
        return 2;
    }
    if (!model || inputs != 1) {
        fprintf(stderr, "genbench tokenize: give --model and exactly one of TEXT, --file, -, "
                        "--decode (see --help)\n");
        return 2;
    }
    gb_error err;
    char *dir = NULL;
    gb_tokenizer *t = NULL;
    int64_t t0 = gb_clock_ns();
    if (resolve_tokenizer_dir(model, &dir, &err) || gb_tokenizer_load(dir, &t, &err)) {
        fprintf(stderr, "genbench: %s\n", err.msg);
        free(dir);
        return 1;
    }
    double load_s = (double)(gb_clock_ns() - t0) * 1e-9;
    free(dir);
    int status = 0;
    char *data = NULL;
    size_t len = 0;
    if (bench > 0 && file) {
        status = 1;
        if (read_input(file, &data, &len, &err) == 0) {
            double best = 1e30;
            size_t n = 0;
            status = 0;
            for (long r = 0; r < bench && !status; r++) {
                int32_t *ids;
                int64_t a = gb_clock_ns();
                status = gb_tokenizer_encode(t, data, len, true, 0, &ids, &n, &err);
                double dt = (double)(gb_clock_ns() - a) * 1e-9;
                if (dt < best) best = dt;
                if (!status) free(ids);
            }
            if (!status)
                printf("{\"load_s\": %.4f, \"bytes\": %zu, \"tokens\": %zu, \"encode_s\": %.4f, "
                       "\"mb_per_s\": %.2f}\n",
                       load_s, len, n, best, (double)len / best / 1e6);
        }
        if (status) fprintf(stderr, "genbench: %s\n", err.msg);
    } else if (decode) {
        int32_t *ids;
        size_t n;
        char *s;
        size_t sl;
        int32_t vocab = gb_tokenizer_vocab_size(t);
        size_t bad = 0;
        if (parse_ids(decode, &ids, &n)) {
            fprintf(stderr, "genbench: --decode '%s': expected ids like 1,2,3\n", decode);
            status = 2;
        } else if ((bad = first_out_of_range(ids, n, vocab)) < n) {
            fprintf(stderr, "genbench: --decode: id %d is out of range (vocabulary of %d)\n",
                    (int)ids[bad], (int)vocab);
            status = 2;
            free(ids);
        } else if (gb_tokenizer_decode(t, ids, n, skip_special, &s, &sl, &err)) {
            fprintf(stderr, "genbench: %s\n", err.msg);
            status = 1;
            free(ids);
        } else {
            if (json) {
                printf("{\"text\": ");
                gb_cli_json_str(stdout, s, sl);
                printf("}\n");
            } else {
                fwrite(s, 1, sl, stdout);
                putchar('\n');
            }
            free(s);
            free(ids);
        }
    } else if (jsonl) {
        if (read_input(jsonl, &data, &len, &err)) {
            fprintf(stderr, "genbench: %s\n", err.msg);
            status = 1;
        } else {
            status = run_jsonl(t, data, len);
        }
    } else {
        int rc = 0;
        if (file || !strcmp(text, "-")) rc = read_input(file ? file : "-", &data, &len, &err);
        int32_t *ids = NULL;
        size_t n = 0;
        if (!rc)
            rc = gb_tokenizer_encode(t, data ? data : text, data ? len : strlen(text), special,
                                     (int)max_len, &ids, &n, &err);
        if (rc) {
            fprintf(stderr, "genbench: %s%s%s\n", file ? file : "", file ? ": " : "", err.msg);
            status = 1;
        } else {
            printf(json ? "{\"ids\": " : "ids: ");
            if (json)
                gb_cli_json_ids(stdout, ids, n);
            else
                for (size_t i = 0; i < n; i++)
                    printf("%s%d", i ? " " : "", ids[i]);
            printf(json ? ", \"tokens\": [" : "\ntokens: ");
            for (size_t i = 0; i < n; i++) {
                const char *tk = gb_tokenizer_id_to_token(t, ids[i]);
                if (i) fputs(json ? ", " : " ", stdout);
                gb_cli_json_str(stdout, tk ? tk : "", tk ? strlen(tk) : 0);
            }
            printf(json ? "]}\n" : "\n");
        }
        free(ids);
    }
    free(data);
    gb_tokenizer_free(t);
    return status;
}
