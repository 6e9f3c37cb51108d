/* libFuzzer target: gb_tokenizer_load on a mutated tokenizer.json (seeds: small BPE
 * tokenizers in corpus/tokenizer_json covering the GPT-2 byte-level and the Llama 2
 * SentencePiece-style pipelines). A tokenizer that loads must encode and decode a fixed
 * text without faults. */
#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"

static const char text[] = "Hello world! <s> caf\xc3\xa9  12345 \xf0\x9f\x98\x80\n\tend";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write("tokenizer.json", data, size);
    gb_tokenizer *t = NULL;
    gb_error err = {0};
    if (gb_tokenizer_load(fuzz_dir(), &t, &err) != 0) {
        if (!err.msg[0] || strchr(err.msg, '\n')) abort();
        return 0;
    }
    for (int special = 0; special < 2; special++) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (gb_tokenizer_encode(t, text, sizeof text - 1, special, 0, &ids, &n, &err) == 0) {
            char *out = NULL;
            size_t len = 0;
            if (gb_tokenizer_decode(t, ids, n, !special, &out, &len, &err) == 0) free(out);
            for (size_t i = 0; i < n; i++)
                (void)gb_tokenizer_id_to_token(t, ids[i]);
        }
        free(ids);
    }
    int32_t bad[3] = {-1, gb_tokenizer_vocab_size(t), 0x7fffffff};
    char *out = NULL;
    size_t len = 0;
    if (gb_tokenizer_decode(t, bad, 3, false, &out, &len, &err) == 0) free(out);
    gb_tokenizer_free(t);
    return 0;
}
