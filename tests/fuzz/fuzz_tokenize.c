/* libFuzzer target: encode arbitrary bytes with the bundled tokenizers (gpt2: byte-level BPE;
 * llama2: SentencePiece-style BPE with byte fallback; llama3: byte-level with the big split
 * regex), the first byte picking the tokenizer and options. Invalid UTF-8 must be a one-line
 * error; valid text must round-trip through decode for the byte-level tokenizers. */
#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"
#include "util/paths.h"

static gb_tokenizer *toks[3];
static const char *const names[3] = {"gpt2", "llama2", "llama3"};

static gb_tokenizer *get(int i) {
    if (!toks[i]) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/tokenizers/%s", gb_data_dir(), names[i]);
        gb_error err = {0};
        if (gb_tokenizer_load(dir, &toks[i], &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            abort();
        }
    }
    return toks[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int which = data[0] % 3;
    bool special = (data[0] >> 2) & 1;
    int max_len = (data[0] >> 3) & 1 ? 7 : 0;
    gb_tokenizer *t = get(which);
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int32_t *ids = NULL;
    size_t n = 0;
    gb_error err = {0};
    if (gb_tokenizer_encode(t, text, len, special, max_len, &ids, &n, &err) != 0) {
        if (!err.msg[0] || strchr(err.msg, '\n')) abort();
        return 0;
    }
    if (max_len > 0 && n > (size_t)max_len) abort();
    int32_t vocab = gb_tokenizer_vocab_size(t);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab) abort();
    char *out = NULL;
    size_t out_len = 0;
    if (gb_tokenizer_decode(t, ids, n, false, &out, &out_len, &err) != 0)
        abort(); /* ids from encode always decode */
    /* Byte-level BPE without specials or truncation is lossless. */
    if (which != 1 && !special && max_len == 0 && (out_len != len || memcmp(out, text, len)))
        abort();
    free(out);
    free(ids);
    return 0;
}
