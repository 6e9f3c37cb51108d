/* Hugging Face tokenizer.json, byte-exact with the `tokenizers` library.
 * Text is bytes with a length (NUL allowed); invalid UTF-8 is an error naming the offset. */
#ifndef GB_TOKENIZER_H
#define GB_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "genbench.h"

typedef struct gb_tokenizer gb_tokenizer;

/* Loads dir/tokenizer.json (+ tokenizer_config.json, special_tokens_map.json when present). */
int gb_tokenizer_load(const char *dir, gb_tokenizer **out, gb_error *err);
void gb_tokenizer_free(gb_tokenizer *t);

/* Encodes text; *ids is malloc'd (caller frees). add_special: apply the post-processor
 * (BOS etc.) as `tokenizers` does with add_special_tokens=True. max_len > 0 truncates on the
 * right to max_len ids (after special tokens are added). */
int gb_tokenizer_encode(const gb_tokenizer *t, const char *text, size_t len, bool add_special,
                        int max_len, int32_t **ids, size_t *n_ids, gb_error *err);

/* Decodes ids to text (malloc'd, NUL-terminated; *len excludes the NUL). */
int gb_tokenizer_decode(const gb_tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                        char **text, size_t *len, gb_error *err);

/* Vocabulary string of an id (NULL when out of range); the raw token, e.g. "Ġthe". */
const char *gb_tokenizer_id_to_token(const gb_tokenizer *t, int32_t id);
/* Id of a token string, -1 when absent. */
int32_t gb_tokenizer_token_to_id(const gb_tokenizer *t, const char *token);
int32_t gb_tokenizer_vocab_size(const gb_tokenizer *t);

/* Special tokens from tokenizer_config.json / special_tokens_map.json; -1 when none. */
int32_t gb_tokenizer_bos_id(const gb_tokenizer *t);
int32_t gb_tokenizer_eos_id(const gb_tokenizer *t);
int32_t gb_tokenizer_pad_id(const gb_tokenizer *t);

#endif
