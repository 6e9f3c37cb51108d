/* Tokenizer: loads tokenizer.json (+ tokenizer_config.json, special_tokens_map.json) and runs
 * the `tokenizers` pipeline: added-token split -> normalizer -> normalized added tokens ->
 * pre-tokenizer -> BPE -> truncation -> post-processor. Decoding maps ids to token strings
 * (added tokens first, unknown ids skipped) and runs the decoder chain.
 *
 * transformers 5 rebuilds the pipeline of some tokenizer classes instead of using the file's
 * (see apply_class_overrides); genbench follows transformers there, since the benchmark
 * tokenizes through transformers. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_json_fast.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fileio.h"

struct gb_tokenizer {
    tok_normalizer *normalizer;
    tok_pretokenizer *pretok;
    tok_postproc *post;
    tok_decoder *decoder;
    tok_bpe bpe;
    tok_added added;
    tok_map added_by_content; /* content -> index into added.v */
    tok_map special_content;  /* contents of special added tokens (skipped on decode) */
    int32_t *added_by_id;     /* id -> index into added.v, -1 */
    int32_t n_ids;            /* max id + 1 over vocab and added tokens */
    int32_t bos, eos, pad;
};

/* ---- tokenizer_config.json ---- */

typedef struct {
    char *tokenizer_class;
    char *bos, *eos, *pad;
    bool add_bos, add_eos, legacy, add_prefix_space;
} tok_config;

static void config_free(tok_config *c) {
    free(c->tokenizer_class);
    free(c->bos);
    free(c->eos);
    free(c->pad);
}

/* A special-token field: "text", {"content": "text", ...} or null. */
static int token_field(const cJSON *obj, const char *key, char **dst, gb_error *err) {
    const cJSON *v = tok_json_get(obj, key);
    if (!v) return 0; /* absent: keep what an earlier file said */
    const char *s = NULL;
    if (cJSON_IsString(v))
        s = v->valuestring;
    else if (cJSON_IsObject(v) && cJSON_IsString(tok_json_get(v, "content")))
        s = tok_json_get(v, "content")->valuestring;
    else if (!cJSON_IsNull(v))
        return gb_error_set(err, GB_ERR_FORMAT, "'%s' is neither a string nor a token object", key);
    free(*dst);
    *dst = s ? strdup(s) : NULL;
    if (s && !*dst) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    return 0;
}

static int parse_json(const char *path, const char *data, size_t len, cJSON **out, gb_error *err) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(data, len, &end, false);
    if (!j || !cJSON_IsObject(j)) {
        size_t at = end && end >= data && end <= data + len ? (size_t)(end - data) : 0;
        cJSON_Delete(j);
        if (!at)
            return gb_error_set(err, GB_ERR_FORMAT, "%s: malformed JSON (not an object)", path);
        return gb_error_set(err, GB_ERR_FORMAT, "%s: malformed JSON near byte %zu", path, at);
    }
    *out = j;
    return 0;
}

static int read_json(const char *path, bool optional, cJSON **out, gb_error *err) {
    *out = NULL;
    if (optional && !gb_is_file(path)) return 0;
    char *data;
    size_t len;
    GB_TRY(gb_file_read_all(path, 0, &data, &len, err));
    int rc = parse_json(path, data, len, out, err);
    free(data);
    return rc;
}

static int load_config(const char *dir, tok_config *c, gb_error *err) {
    memset(c, 0, sizeof *c);
    c->add_bos = true; /* transformers' LlamaTokenizer defaults */
    c->add_prefix_space = true;
    const char *names[2] = {"tokenizer_config.json", "special_tokens_map.json"};
    for (int f = 0; f < 2; f++) {
        char *path = gb_strdup_printf("%s/%s", dir, names[f]);
        cJSON *j = NULL;
        int rc = path ? read_json(path, true, &j, err) : gb_error_set(err, GB_ERR_NOMEM, "oom");
        if (!rc && j) {
            const char *cls;
            if ((rc = token_field(j, "bos_token", &c->bos, err)) ||
                (rc = token_field(j, "eos_token", &c->eos, err)) ||
                (rc = token_field(j, "pad_token", &c->pad, err)))
                gb_error_prefix(err, "%s", path);
            else if (f == 0) {
                if ((rc = tok_json_str(j, "tokenizer_class", &cls, err)) ||
                    (rc = tok_json_bool(j, "add_bos_token", true, &c->add_bos, err)) ||
                    (rc = tok_json_bool(j, "add_eos_token", false, &c->add_eos, err)) ||
                    (rc = tok_json_bool(j, "legacy", false, &c->legacy, err)) ||
                    (rc = tok_json_bool(j, "add_prefix_space", true, &c->add_prefix_space, err)))
                    gb_error_prefix(err, "%s", path);
                else if (cls && !(c->tokenizer_class = strdup(cls)))
                    rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            }
        }
        cJSON_Delete(j);
        free(path);
        if (rc) {
            config_free(c);
            return rc;
        }
    }
    return 0;
}

/* ---- public API ---- */

void gb_tokenizer_free(gb_tokenizer *t) {
    if (!t) return;
    tok_normalizer_free(t->normalizer);
    tok_pretokenizer_free(t->pretok);
    tok_postproc_free(t->post);
    tok_decoder_free(t->decoder);
    tok_bpe_free(&t->bpe);
    tok_added_free(&t->added);
    tok_map_free(&t->added_by_content);
    tok_map_free(&t->special_content);
    free(t->added_by_id);
    free(t);
}

int32_t gb_tokenizer_token_to_id(const gb_tokenizer *t, const char *token) {
    if (!token) return -1;
    size_t n = strlen(token);
    int32_t a = tok_map_get(&t->added_by_content, token, n);
    if (a >= 0) return t->added.v[a].id;
    return tok_map_get(&t->bpe.vocab, token, n);
}

const char *gb_tokenizer_id_to_token(const gb_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n_ids) return NULL;
    if (t->added_by_id[id] >= 0) return t->added.v[t->added_by_id[id]].content;
    return id < t->bpe.n_ids ? t->bpe.id_tok[id] : NULL;
}

static size_t id_token_len(const gb_tokenizer *t, int32_t id) {
    if (t->added_by_id[id] >= 0) return t->added.v[t->added_by_id[id]].len;
    return t->bpe.id_len[id];
}

int32_t gb_tokenizer_vocab_size(const gb_tokenizer *t) {
    return t->n_ids;
}
int32_t gb_tokenizer_bos_id(const gb_tokenizer *t) {
    return t->bos;
}
int32_t gb_tokenizer_eos_id(const gb_tokenizer *t) {
    return t->eos;
}
int32_t gb_tokenizer_pad_id(const gb_tokenizer *t) {
    return t->pad;
}

/* transformers 5's LlamaTokenizer ignores the file's normalizer, pre-tokenizer and decoder and
 * builds Metaspace("▁", prepend_scheme from add_prefix_space/legacy, split=false) with the
 * decoder Replace/ByteFallback/Fuse[/Strip], and a BOS/EOS template from add_bos_token /
 * add_eos_token. Only SentencePiece-style files are rebuilt: doing it to a byte-level file would
 * produce garbage (a known transformers bug), which a benchmark should not reproduce. */
static bool is_llama_class(const char *cls) {
    return cls && (!strcmp(cls, "LlamaTokenizer") || !strcmp(cls, "LlamaTokenizerFast"));
}

static int apply_llama_override(gb_tokenizer *t, const tok_config *c, int32_t bos, int32_t eos,
                                gb_error *err) {
    int scheme = c->add_prefix_space ? (c->legacy ? 0 : 1) : 2;
    tok_normalizer_free(t->normalizer);
    t->normalizer = NULL;
    tok_pretokenizer_free(t->pretok);
    t->pretok = NULL;
    tok_decoder_free(t->decoder);
    t->decoder = NULL;
    tok_postproc_free(t->post);
    t->post = NULL;
    GB_TRY(tok_pretokenizer_metaspace("\xE2\x96\x81", scheme, false, &t->pretok, err));
    GB_TRY(tok_decoder_llama(c->add_prefix_space, &t->decoder, err));
    return tok_postproc_template(c->add_bos ? bos : -1, c->add_eos ? eos : -1, &t->post, err);
}

/* Ids of added tokens as `tokenizers` assigns them when it loads the file (AddedVocabulary::
 * add_tokens): a content seen before keeps its id, a content in the model vocab takes the vocab
 * id, anything else gets the next id after the vocab and earlier added tokens. The ids written
 * in the file agree with this for files `tokenizers` saved itself. */
static int assign_added_ids(gb_tokenizer *t) {
    tok_map seen;
    if (tok_map_init(&seen, t->added.n + 1)) return GB_ERR_NOMEM;
    int64_t vocab_n = (int64_t)t->bpe.vocab.n, max_id = -1;
    for (size_t i = 0; i < t->added.n; i++) {
        tok_added_token *a = &t->added.v[i];
        int32_t id = tok_map_get(&seen, a->content, a->len);
        if (id < 0) id = tok_map_get(&t->bpe.vocab, a->content, a->len);
        if (id < 0) id = (int32_t)(max_id < 0 ? vocab_n : max_id >= vocab_n ? max_id + 1 : vocab_n);
        a->id = id;
        if (id > max_id) max_id = id;
        if (tok_map_put(&seen, a->content, a->len, id)) {
            tok_map_free(&seen);
            return GB_ERR_NOMEM;
        }
    }
    tok_map_free(&seen);
    return 0;
}

static int build_indexes(gb_tokenizer *t, gb_error *err) {
    if (assign_added_ids(t)) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    int32_t n = t->bpe.n_ids;
    for (size_t i = 0; i < t->added.n; i++)
        if (t->added.v[i].id + 1 > n) n = t->added.v[i].id + 1;
    t->n_ids = n;
    t->added_by_id = malloc(((size_t)n + 1) * sizeof *t->added_by_id);
    if (!t->added_by_id || tok_map_init(&t->added_by_content, t->added.n + 1) ||
        tok_map_init(&t->special_content, t->added.n + 1))
        return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    memset(t->added_by_id, 0xFF, ((size_t)n + 1) * sizeof *t->added_by_id);
    for (size_t i = 0; i < t->added.n; i++) {
        const tok_added_token *a = &t->added.v[i];
        t->added_by_id[a->id] = (int32_t)i;
        if (tok_map_put(&t->added_by_content, a->content, a->len, (int32_t)i) ||
            (a->special && tok_map_put(&t->special_content, a->content, a->len, (int32_t)i)))
            return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    }
    return 0;
}

static int load_components(gb_tokenizer *t, const cJSON *j, const tok_fast *fast,
                           const tok_config *c, gb_error *err) {
    GB_TRY(tok_normalizer_parse(tok_json_get(j, "normalizer"), &t->normalizer, err));
    GB_TRY(tok_pretokenizer_parse(tok_json_get(j, "pre_tokenizer"), &t->pretok, err));
    GB_TRY(tok_postproc_parse(tok_json_get(j, "post_processor"), &t->post, err));
    GB_TRY(tok_decoder_parse(tok_json_get(j, "decoder"), &t->decoder, err));
    GB_TRY(tok_bpe_parse(tok_json_get(j, "model"), fast, &t->bpe, err));
    bool llama = is_llama_class(c->tokenizer_class) && !tok_pretokenizer_uses_bytelevel(t->pretok);
    if (llama) {
        /* normalizers go away before added tokens are normalized */
        tok_normalizer_free(t->normalizer);
        t->normalizer = NULL;
    }
    GB_TRY(tok_added_parse(tok_json_get(j, "added_tokens"), t->normalizer, &t->added, err));
    GB_TRY(build_indexes(t, err));
    t->bos = gb_tokenizer_token_to_id(t, c->bos);
    t->eos = gb_tokenizer_token_to_id(t, c->eos);
    t->pad = gb_tokenizer_token_to_id(t, c->pad);
    if (llama) GB_TRY(apply_llama_override(t, c, t->bos, t->eos, err));
    return 0;
}

int gb_tokenizer_load(const char *dir, gb_tokenizer **out, gb_error *err) {
    gb_error local;
    if (!err) err = &local;
    gb_error_clear(err);
    *out = NULL;
    tok_config cfg;
    GB_TRY(load_config(dir, &cfg, err));
    char *path = gb_strdup_printf("%s/tokenizer.json", dir);
    if (!path) {
        config_free(&cfg);
        return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    }
    char *data = NULL;
    size_t len = 0;
    int rc = gb_file_read_all(path, 0, &data, &len, err);
    gb_tokenizer *t = NULL;
    /* first the fast path (vocab/merges without cJSON), then, on any failure, plain cJSON on
     * the whole file, which also writes the definitive error message */
    for (int attempt = 0; attempt < 2 && !rc; attempt++) {
        tok_fast fast;
        cJSON *j = NULL;
        bool use_fast = attempt == 0;
        if (use_fast && tok_fast_locate(data, len, &fast)) {
            tok_fast_free(&fast);
            continue;
        }
        rc = use_fast ? parse_json(path, fast.rest.p, fast.rest.n, &j, err)
                      : parse_json(path, data, len, &j, err);
        if (!rc) {
            t = calloc(1, sizeof *t);
            if (!t)
                rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            else if ((rc = load_components(t, j, use_fast ? &fast : NULL, &cfg, err)) != 0)
                gb_error_prefix(err, "%s", path);
        }
        cJSON_Delete(j);
        if (use_fast) tok_fast_free(&fast);
        if (!rc) break;
        gb_tokenizer_free(t);
        t = NULL;
        if (use_fast && rc != GB_ERR_NOMEM) {
            gb_error_clear(err);
            rc = 0; /* retry with cJSON */
        }
    }
    free(data);
    free(path);
    config_free(&cfg);
    if (rc) {
        gb_tokenizer_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* Normalizes one plain segment, splits normalized added tokens out of it, pre-tokenizes and
 * runs BPE on every piece. */
/* Per-call cache of BPE results for short words: long texts repeat words, and merging is most
 * of the encode time. Keys and ids live in growable buffers addressed by offset. */
#define WCACHE_SLOTS 8192
#define WCACHE_MAX_WORD 48

typedef struct {
    uint64_t hash;
    uint32_t key_off, key_len, ids_off, ids_n; /* key_len 0 = empty slot */
} wcache_slot;

typedef struct {
    wcache_slot *slots; /* NULL: cache off */
    size_t used;
    tok_buf keys;
    tok_ids ids;
} wcache;

static void wcache_free(wcache *c) {
    free(c->slots);
    tok_buf_free(&c->keys);
    tok_ids_free(&c->ids);
}

/* Encodes one word, through the cache when it is on. */
static int encode_word(const gb_tokenizer *t, wcache *c, const char *w, size_t n, tok_ids *out,
                       gb_error *err) {
    if (!c->slots || n > WCACHE_MAX_WORD) return tok_bpe_encode_word(&t->bpe, w, n, out, err);
    uint64_t h = tok_hash_bytes(w, n);
    size_t i = h & (WCACHE_SLOTS - 1);
    while (c->slots[i].key_len) {
        const wcache_slot *e = &c->slots[i];
        if (e->hash == h && e->key_len == n && !memcmp(c->keys.p + e->key_off, w, n)) {
            for (uint32_t k = 0; k < e->ids_n; k++)
                if (tok_ids_push(out, c->ids.v[e->ids_off + k]))
                    return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
            return 0;
        }
        i = (i + 1) & (WCACHE_SLOTS - 1);
    }
    size_t before = out->n;
    GB_TRY(tok_bpe_encode_word(&t->bpe, w, n, out, err));
    if (c->used * 2 >= WCACHE_SLOTS) return 0; /* full: stop caching */
    wcache_slot e = {h, (uint32_t)c->keys.n, (uint32_t)n, (uint32_t)c->ids.n,
                     (uint32_t)(out->n - before)};
    if (tok_buf_put(&c->keys, w, n)) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    for (size_t k = before; k < out->n; k++)
        if (tok_ids_push(&c->ids, out->v[k]))
            return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    c->slots[i] = e;
    c->used++;
    return 0;
}

typedef struct {
    tok_match_ctx mc;
    tok_buf seg;
    tok_pieces ps, tmp;
    wcache cache;
} enc_state;

static int encode_segment(const gb_tokenizer *t, enc_state *st, const char *s, size_t n,
                          bool at_origin, tok_ids *ids, gb_error *err) {
    st->seg.n = 0;
    GB_TRY(tok_buf_put(&st->seg, s, n) ? gb_error_set(err, GB_ERR_NOMEM, "out of memory") : 0);
    GB_TRY(tok_normalizer_apply(t->normalizer, &st->mc, &st->seg, err));
    tok_split *sp;
    size_t nsp;
    GB_TRY(tok_added_split(&t->added, true, st->seg.p, st->seg.n, &sp, &nsp, err));
    int rc = 0;
    for (size_t i = 0; i < nsp && !rc; i++) {
        if (sp[i].tok >= 0) {
            rc = tok_ids_push(ids, t->added.v[sp[i].tok].id);
            continue;
        }
        tok_pieces_clear(&st->ps);
        rc = tok_pieces_add(&st->ps, st->seg.p + sp[i].start, sp[i].end - sp[i].start,
                            at_origin && sp[i].start == 0);
        if (rc) break;
        if ((rc = tok_pretokenizer_apply(t->pretok, &st->mc, &st->ps, &st->tmp, err))) break;
        for (size_t k = 0; k < st->ps.n && !rc; k++)
            rc = encode_word(t, &st->cache, st->ps.text.p + st->ps.v[k].off, st->ps.v[k].len, ids,
                             err);
    }
    free(sp);
    if (rc == GB_ERR_NOMEM && !err->msg[0]) gb_error_set(err, rc, "out of memory");
    return rc;
}

int gb_tokenizer_encode(const gb_tokenizer *t, const char *text, size_t len, bool add_special,
                        int max_len, int32_t **ids_out, size_t *n_out, gb_error *err) {
    gb_error local;
    if (!err) err = &local;
    gb_error_clear(err);
    *ids_out = NULL;
    *n_out = 0;
    if (!text && len) return gb_error_set(err, GB_ERR_INVALID, "text is NULL");
    size_t bad = tok_utf8_invalid_at(text, len);
    if (bad != len)
        return gb_error_set(err, GB_ERR_FORMAT, "invalid UTF-8 at byte offset %zu (byte 0x%02X)",
                            bad, (unsigned char)text[bad]);
    tok_split *sp = NULL;
    size_t nsp = 0;
    GB_TRY(tok_added_split(&t->added, false, text, len, &sp, &nsp, err));
    enc_state st = {0};
    tok_ids ids = {0};
    int rc = 0;
    if (len >= 4096 && !(st.cache.slots = calloc(WCACHE_SLOTS, sizeof *st.cache.slots)))
        rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nsp && !rc; i++) {
        if (sp[i].tok >= 0)
            rc = tok_ids_push(&ids, t->added.v[sp[i].tok].id);
        else if (sp[i].end > sp[i].start)
            rc = encode_segment(t, &st, text + sp[i].start, sp[i].end - sp[i].start,
                                sp[i].start == 0, &ids, err);
    }
    free(sp);
    tok_match_ctx_free(&st.mc);
    tok_buf_free(&st.seg);
    tok_pieces_free(&st.ps);
    tok_pieces_free(&st.tmp);
    wcache_free(&st.cache);
    if (!rc && max_len > 0) {
        /* right truncation keeps room for the special tokens added afterwards */
        size_t extra = add_special ? tok_postproc_added(t->post) : 0;
        size_t budget = (size_t)max_len > extra ? (size_t)max_len - extra : 0;
        if (ids.n > budget) ids.n = budget;
    }
    tok_ids final = {0};
    if (!rc && add_special && t->post) {
        rc = tok_postproc_apply(t->post, ids.v, ids.n, &final, err);
        tok_ids_free(&ids);
        ids = final;
        if (!rc && max_len > 0 && ids.n > (size_t)max_len) ids.n = (size_t)max_len;
    }
    if (rc) {
        tok_ids_free(&ids);
        return rc == GB_ERR_NOMEM && !err->msg[0] ? gb_error_set(err, rc, "out of memory") : rc;
    }
    if (!ids.v) ids.v = malloc(sizeof *ids.v); /* a valid pointer even for zero ids */
    if (!ids.v) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    *ids_out = ids.v;
    *n_out = ids.n;
    return 0;
}

int gb_tokenizer_decode(const gb_tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                        char **text, size_t *len, gb_error *err) {
    gb_error local;
    if (!err) err = &local;
    gb_error_clear(err);
    *text = NULL;
    *len = 0;
    tok_strs toks = {0};
    tok_buf out = {0};
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *s = gb_tokenizer_id_to_token(t, ids[i]);
        if (!s) continue; /* unknown ids are skipped, as in `tokenizers` */
        size_t k = id_token_len(t, ids[i]);
        if (skip_special && tok_map_get(&t->special_content, s, k) >= 0) continue;
        rc = tok_strs_add(&toks, s, k);
    }
    if (rc) rc = gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    if (!rc) rc = tok_decoder_run(t->decoder, &toks, &out, err);
    tok_strs_free(&toks);
    if (rc) {
        tok_buf_free(&out);
        return rc;
    }
    if (!out.p && tok_buf_reserve(&out, 0)) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    out.p[out.n] = 0;
    *text = out.p;
    *len = out.n;
    return 0;
}
