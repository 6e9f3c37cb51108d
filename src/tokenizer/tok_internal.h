/* Internal pieces of the tokenizer (not part of the public API).
 *
 * Strings are (pointer, byte length) pairs: text may contain NUL. Every string handed between
 * stages is valid UTF-8 (the input is validated once in gb_tokenizer_encode). The stages follow
 * Hugging Face `tokenizers`: added-token split -> normalizer -> pre-tokenizer -> BPE ->
 * post-processor; decode: id -> token string -> decoder chain. */
#ifndef GB_TOK_INTERNAL_H
#define GB_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "genbench.h"

/* ---- growable byte buffer and int32 vector (tok_text.c) ---- */
typedef struct {
    char *p;
    size_t n, cap;
} tok_buf;

int tok_buf_reserve(tok_buf *b, size_t extra);
int tok_buf_put(tok_buf *b, const void *s, size_t n);
int tok_buf_putc(tok_buf *b, char c);
int tok_buf_put_cp(tok_buf *b, uint32_t cp); /* UTF-8 encode a code point */
void tok_buf_free(tok_buf *b);

typedef struct {
    int32_t *v;
    size_t n, cap;
} tok_ids;

int tok_ids_push(tok_ids *a, int32_t id);
void tok_ids_free(tok_ids *a);

/* ---- UTF-8 (tok_text.c) ---- */
/* Byte offset of the first invalid UTF-8 sequence, or len when valid (Rust `str` rules:
 * no overlongs, no surrogates, nothing above U+10FFFF). */
size_t tok_utf8_invalid_at(const char *s, size_t len);
/* Decodes one code point of valid UTF-8 at s; *adv = its byte length. */
uint32_t tok_utf8_decode(const char *s, size_t *adv);
static inline size_t tok_utf8_len(unsigned char c) {
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}
/* Appends bytes as UTF-8, replacing each maximal invalid subsequence by U+FFFD (Rust
 * String::from_utf8_lossy). */
int tok_buf_put_lossy(tok_buf *b, const char *s, size_t n);
/* Rust char::is_whitespace (the Unicode White_Space property). */
bool tok_is_whitespace(uint32_t c);
/* Rust regex \w: alphabetic, marks, decimal digits, connector punctuation, join controls. */
bool tok_is_word_char(uint32_t c);

/* ---- string -> id hash map (tok_text.c) ---- */
typedef struct {
    const char *s; /* not owned */
    uint32_t len;  /* low 24 bits: byte length; high 8 bits: hash tag (skips most mismatches
                      without touching the key) */
    int32_t id;
} tok_map_entry;

typedef struct {
    tok_map_entry *slots; /* open addressing, cap a power of two, s == NULL means empty */
    size_t cap, n;
} tok_map;

int tok_map_init(tok_map *m, size_t expected);
/* Inserts or overwrites; s must outlive the map. */
int tok_map_put(tok_map *m, const char *s, size_t len, int32_t id);
int32_t tok_map_get(const tok_map *m, const char *s, size_t len); /* -1 when absent */
void tok_map_free(tok_map *m);
uint64_t tok_hash_bytes(const void *p, size_t n);

/* ---- regex / literal patterns (tok_regex.c) ---- */
typedef struct {
    pcre2_code *code; /* NULL for literal patterns */
    char *lit;        /* literal (String pattern) */
    size_t lit_len;
} tok_pattern;

/* Compiles an Oniguruma-syntax pattern (as in tokenizer.json) into PCRE2 with UTF+UCP+JIT,
 * rewriting \s and \S to the Oniguruma/Rust whitespace set. */
int tok_pattern_regex(tok_pattern *p, const char *pattern, gb_error *err);
int tok_pattern_literal(tok_pattern *p, const char *s, size_t len, gb_error *err);
/* Parses {"String": ".."} or {"Regex": ".."} (a cJSON object). */
struct cJSON;
int tok_pattern_from_json(tok_pattern *p, const struct cJSON *j, gb_error *err);
void tok_pattern_free(tok_pattern *p);

/* Per-call matching scratch (pcre2 match data, lazily grown JIT stack). */
typedef struct {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
} tok_match_ctx;

void tok_match_ctx_free(tok_match_ctx *c);
/* Finds the leftmost match at or after pos. Returns 1 and sets [*ms, *me) when found, 0 when
 * none, or a gb_code (with err set) on a matcher failure. Empty matches are skipped. */
int tok_pattern_find(const tok_pattern *p, tok_match_ctx *c, const char *s, size_t n, size_t pos,
                     size_t *ms, size_t *me, gb_error *err);

/* ---- normalizers (tok_normalizer.c) ---- */
typedef struct tok_normalizer tok_normalizer;
/* j: the "normalizer" value (may be JSON null -> *out = NULL). */
int tok_normalizer_parse(const struct cJSON *j, tok_normalizer **out, gb_error *err);
/* Replaces *s with its normalized form. */
int tok_normalizer_apply(const tok_normalizer *nz, tok_match_ctx *mc, tok_buf *s, gb_error *err);
void tok_normalizer_free(tok_normalizer *nz);

/* ---- pre-tokenizers (tok_pretokenizer.c) ---- */
/* A list of pieces (sub-strings stored in one buffer). at_origin: the piece starts at offset 0
 * of the original input (Metaspace prepend_scheme "first" depends on it). */
typedef struct {
    size_t off, len;
    bool at_origin;
} tok_piece;

typedef struct {
    tok_buf text;
    tok_piece *v;
    size_t n, cap;
} tok_pieces;

int tok_pieces_add(tok_pieces *ps, const char *s, size_t len, bool at_origin);
void tok_pieces_clear(tok_pieces *ps);
void tok_pieces_free(tok_pieces *ps);

typedef struct tok_pretokenizer tok_pretokenizer;
int tok_pretokenizer_parse(const struct cJSON *j, tok_pretokenizer **out, gb_error *err);
/* Splits/transforms *ps in place (tmp is scratch). */
int tok_pretokenizer_apply(const tok_pretokenizer *pt, tok_match_ctx *mc, tok_pieces *ps,
                           tok_pieces *tmp, gb_error *err);
void tok_pretokenizer_free(tok_pretokenizer *pt);
bool tok_pretokenizer_uses_bytelevel(const tok_pretokenizer *pt);
/* Builds Metaspace(replacement, scheme, split) directly (transformers' Llama rebuild).
 * scheme: 0 always, 1 first, 2 never. */
int tok_pretokenizer_metaspace(const char *replacement, int scheme, bool split,
                               tok_pretokenizer **out, gb_error *err);

/* GPT-2 byte <-> char map used by ByteLevel (bytes_to_unicode): printable bytes map to
 * themselves, the other 68 to U+0100.. in ascending order. */
static inline uint32_t tok_byte_to_cp(unsigned b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    return b <= 32 ? 256 + b : b == 173 ? 323 : b + 162;
}
static inline int tok_cp_to_byte(uint32_t cp) { /* -1 when cp is not in the map */
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255))
        return (int)cp;
    if (cp >= 256 && cp <= 288) return (int)cp - 256;
    if (cp >= 289 && cp <= 322) return (int)cp - 162;
    return cp == 323 ? 173 : -1;
}

/* ---- BPE model (tok_bpe.c) ---- */
typedef struct {
    uint64_t key; /* (left id << 32) | right id; UINT64_MAX = empty slot */
    uint32_t rank;
    int32_t new_id;
} tok_merge;

typedef struct {
    /* vocab: id -> token (NUL-terminated strings in one arena) and token -> id */
    char *arena;
    size_t arena_len;
    const char **id_tok; /* [n_ids], NULL for ids without a token */
    uint32_t *id_len;
    int32_t n_ids; /* max id + 1 */
    tok_map vocab;
    tok_merge *merges; /* open addressing */
    size_t merges_cap;
    int32_t single_cp[0x800]; /* id of 1-char tokens for code points < 0x800, fast path */
    bool fast_single;         /* single_cp usable (no prefix/suffix) */
    int32_t byte_ids[256];    /* <0xNN> ids for byte_fallback, -1 when absent */
    char *unk_token;
    char *prefix, *suffix; /* continuing_subword_prefix / end_of_word_suffix, may be NULL */
    size_t prefix_len, suffix_len;
    bool byte_fallback, fuse_unk, ignore_merges;
} tok_bpe;

struct tok_fast;
/* fast: vocab/merges spans decoded without cJSON (NULL: take them from model). */
int tok_bpe_parse(const struct cJSON *model, const struct tok_fast *fast, tok_bpe *b,
                  gb_error *err);
/* Appends the ids of one word (pre-tokenized piece). */
int tok_bpe_encode_word(const tok_bpe *b, const char *w, size_t n, tok_ids *out, gb_error *err);
void tok_bpe_free(tok_bpe *b);

/* ---- added tokens (tok_added.c) ---- */
typedef struct {
    char *content;
    size_t len;
    int32_t id;
    bool special, lstrip, rstrip, single_word, normalized;
    char *norm_content; /* content after the normalizer (normalized tokens' trie pattern) */
    size_t norm_len;
} tok_added_token;

typedef struct tok_trie tok_trie;

typedef struct {
    tok_added_token *v;
    size_t n;
    tok_trie *raw;  /* normalized:false tokens, matched on the input text */
    tok_trie *norm; /* normalized:true tokens, matched on normalized text */
} tok_added;

int tok_added_parse(const struct cJSON *arr, const tok_normalizer *nz, tok_added *a, gb_error *err);
void tok_added_free(tok_added *a);

/* One split of a string: [start, end) and the added token index (-1 = plain text). */
typedef struct {
    size_t start, end;
    int32_t tok;
} tok_split;

/* Splits s around added tokens of one trie (Hugging Face AddedVocabulary::find_matches,
 * including single_word / lstrip / rstrip). *out is malloc'd. */
int tok_added_split(const tok_added *a, bool normalized_trie, const char *s, size_t n,
                    tok_split **out, size_t *n_out, gb_error *err);

/* ---- decoders (tok_decoder.c) ---- */
typedef struct tok_decoder tok_decoder;
int tok_decoder_parse(const struct cJSON *j, tok_decoder **out, gb_error *err);
/* Builds Sequence[Replace(▁->' '), ByteFallback, Fuse, Strip(' ',1,0) when strip].  */
int tok_decoder_llama(bool strip, tok_decoder **out, gb_error *err);
/* Token list as (ptr,len) pairs in a buffer. */
typedef struct {
    tok_buf text;
    size_t *off, *len;
    size_t n, cap;
} tok_strs;
int tok_strs_add(tok_strs *l, const char *s, size_t n);
void tok_strs_free(tok_strs *l);
/* Runs the decoder chain and joins the result into out (no decoder: join with ' '). */
int tok_decoder_run(const tok_decoder *d, tok_strs *toks, tok_buf *out, gb_error *err);
void tok_decoder_free(tok_decoder *d);

/* ---- post-processors (tok_postproc.c) ---- */
typedef struct tok_postproc tok_postproc;
int tok_postproc_parse(const struct cJSON *j, tok_postproc **out, gb_error *err);
/* Template "bos? $A eos?" (transformers' update_post_processor); ids < 0 are left out. */
int tok_postproc_template(int32_t bos, int32_t eos, tok_postproc **out, gb_error *err);
/* Number of ids the processor adds to a single sequence. */
size_t tok_postproc_added(const tok_postproc *p);
/* Wraps ids (single sequence) with the processor's special tokens into out. */
int tok_postproc_apply(const tok_postproc *p, const int32_t *ids, size_t n, tok_ids *out,
                       gb_error *err);
void tok_postproc_free(tok_postproc *p);

/* ---- JSON helpers (tok_text.c) ---- */
const struct cJSON *tok_json_get(const struct cJSON *obj, const char *key);
/* String field or NULL (absent / null). Wrong type: error naming the field. */
int tok_json_str(const struct cJSON *obj, const char *key, const char **out, gb_error *err);
/* Bool field with default when absent / null. */
int tok_json_bool(const struct cJSON *obj, const char *key, bool dflt, bool *out, gb_error *err);
/* A token id in JSON: an integer number in [0, INT32_MAX]. */
int tok_json_is_id(const struct cJSON *v);
int tok_json_int(const struct cJSON *obj, const char *key, long long dflt, long long *out,
                 gb_error *err);

#endif
