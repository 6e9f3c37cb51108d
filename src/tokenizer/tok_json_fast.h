/* Fast decoding of model.vocab / model.merges of tokenizer.json without a cJSON tree.
 * Every function returns 0 or -1 ("not the expected shape": the caller falls back to cJSON). */
#ifndef GB_TOK_JSON_FAST_H
#define GB_TOK_JSON_FAST_H

#include "tokenizer/tok_internal.h"

typedef struct {
    const char *p; /* NULL when absent */
    size_t n;
} tok_span;

typedef struct tok_fast {
    tok_span vocab, merges; /* spans of the two values inside the document */
    tok_buf rest;           /* the document with them replaced by {} and [] */
    int model_seen;
} tok_fast;

int tok_fast_locate(const char *data, size_t len, tok_fast *f);
void tok_fast_free(tok_fast *f);

/* Decodes every vocab key onto keys (NUL-terminated each) and calls fn with its offset in keys,
 * its byte length and its id. Offsets stay valid when keys grows. */
typedef int (*tok_fast_entry_fn)(void *ctx, size_t off, size_t len, int32_t id);
int tok_fast_vocab(const tok_span *vocab, tok_fast_entry_fn fn, void *ctx, tok_buf *keys);

/* Calls fn for every merge ("a b" or ["a", "b"]) in order. */
typedef int (*tok_fast_merge_fn)(void *ctx, const char *a, size_t an, const char *b, size_t bn);
int tok_fast_merges(const tok_span *merges, tok_fast_merge_fn fn, void *ctx);

#endif
