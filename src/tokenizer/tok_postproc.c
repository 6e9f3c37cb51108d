/* Post-processors of tokenizer.json for a single sequence: TemplateProcessing, Roberta/Bert
 * processing (cls $A sep), ByteLevel (offsets only: ids unchanged), Sequence. Reduced to
 * "ids before" + $A + "ids after", which is all a single sequence needs. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "util/error.h"

struct tok_postproc {
    tok_ids before, after;
};

void tok_postproc_free(tok_postproc *p) {
    if (!p) return;
    tok_ids_free(&p->before);
    tok_ids_free(&p->after);
    free(p);
}

static int add_special(const cJSON *specials, const char *name, tok_ids *dst, gb_error *err) {
    const cJSON *sp = cJSON_IsObject(specials) ? tok_json_get(specials, name) : NULL;
    const cJSON *ids = sp ? tok_json_get(sp, "ids") : NULL;
    if (!cJSON_IsArray(ids))
        return gb_error_set(err, GB_ERR_FORMAT,
                            "TemplateProcessing: special token '%s' is not in special_tokens",
                            name);
    const cJSON *it;
    cJSON_ArrayForEach(it, ids) {
        if (!tok_json_is_id(it))
            return gb_error_set(err, GB_ERR_FORMAT, "TemplateProcessing: bad id for '%s'", name);
        if (tok_ids_push(dst, (int32_t)it->valuedouble))
            return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    }
    return 0;
}

static int parse_into(const cJSON *j, tok_postproc *p, gb_error *err) {
    if (!j || cJSON_IsNull(j)) return 0;
    const char *type = NULL;
    if (!cJSON_IsObject(j) || tok_json_str(j, "type", &type, err) || !type)
        return gb_error_set(err, GB_ERR_FORMAT, "post_processor without a \"type\"");
    if (!strcmp(type, "ByteLevel")) return 0;
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = tok_json_get(j, "processors"), *it;
        if (!cJSON_IsArray(arr))
            return gb_error_set(err, GB_ERR_FORMAT, "Sequence post_processor without 'processors'");
        cJSON_ArrayForEach(it, arr) GB_TRY(parse_into(it, p, err));
        return 0;
    }
    if (!strcmp(type, "TemplateProcessing")) {
        const cJSON *single = tok_json_get(j, "single"),
                    *specials = tok_json_get(j, "special_tokens");
        if (!cJSON_IsArray(single))
            return gb_error_set(err, GB_ERR_FORMAT, "TemplateProcessing without 'single'");
        tok_ids before = {0}, after = {0};
        bool seen_a = false;
        const cJSON *it;
        int rc = 0;
        cJSON_ArrayForEach(it, single) {
            const cJSON *st = tok_json_get(it, "SpecialToken"), *sq = tok_json_get(it, "Sequence");
            const char *id = NULL;
            if (st) {
                if ((rc = tok_json_str(st, "id", &id, err)) || !id) {
                    rc = gb_error_set(err, GB_ERR_FORMAT,
                                      "TemplateProcessing: SpecialToken without id");
                    break;
                }
                if ((rc = add_special(specials, id, seen_a ? &after : &before, err))) break;
            } else if (sq) {
                if (seen_a) {
                    rc = gb_error_set(err, GB_ERR_UNSUPPORTED,
                                      "TemplateProcessing: 'single' uses a sequence twice");
                    break;
                }
                seen_a = true;
            } else {
                rc = gb_error_set(err, GB_ERR_FORMAT,
                                  "TemplateProcessing: unknown piece in 'single'");
                break;
            }
        }
        if (rc) {
            tok_ids_free(&before);
            tok_ids_free(&after);
            return rc;
        }
        /* a later processor wraps what the earlier ones produced */
        for (size_t i = 0; i < p->before.n; i++)
            if (tok_ids_push(&before, p->before.v[i])) rc = GB_ERR_NOMEM;
        for (size_t i = 0; i < after.n; i++)
            if (tok_ids_push(&p->after, after.v[i])) rc = GB_ERR_NOMEM;
        tok_ids_free(&p->before);
        p->before = before;
        tok_ids_free(&after);
        return rc ? gb_error_set(err, rc, "out of memory") : 0;
    }
    if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) {
        const cJSON *cls = tok_json_get(j, "cls"), *sep = tok_json_get(j, "sep");
        if (!cJSON_IsArray(cls) || !cJSON_IsArray(sep) ||
            !tok_json_is_id(cJSON_GetArrayItem(cls, 1)) ||
            !tok_json_is_id(cJSON_GetArrayItem(sep, 1)))
            return gb_error_set(err, GB_ERR_FORMAT, "%s needs 'cls' and 'sep' [token, id]", type);
        if (tok_ids_push(&p->before, (int32_t)cJSON_GetArrayItem(cls, 1)->valuedouble) ||
            tok_ids_push(&p->after, (int32_t)cJSON_GetArrayItem(sep, 1)->valuedouble))
            return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
        return 0;
    }
    return gb_error_set(err, GB_ERR_UNSUPPORTED, "unsupported post_processor type '%s'", type);
}

int tok_postproc_parse(const cJSON *j, tok_postproc **out, gb_error *err) {
    *out = NULL;
    if (!j || cJSON_IsNull(j)) return 0;
    tok_postproc *p = calloc(1, sizeof *p);
    if (!p) return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    int rc = parse_into(j, p, err);
    if (rc) {
        tok_postproc_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int tok_postproc_template(int32_t bos, int32_t eos, tok_postproc **out, gb_error *err) {
    tok_postproc *p = calloc(1, sizeof *p);
    if (!p || (bos >= 0 && tok_ids_push(&p->before, bos)) ||
        (eos >= 0 && tok_ids_push(&p->after, eos))) {
        tok_postproc_free(p);
        return gb_error_set(err, GB_ERR_NOMEM, "out of memory");
    }
    *out = p;
    return 0;
}

size_t tok_postproc_added(const tok_postproc *p) {
    return p ? p->before.n + p->after.n : 0;
}

int tok_postproc_apply(const tok_postproc *p, const int32_t *ids, size_t n, tok_ids *out,
                       gb_error *err) {
    int rc = 0;
    if (p)
        for (size_t i = 0; i < p->before.n; i++)
            rc |= tok_ids_push(out, p->before.v[i]);
    for (size_t i = 0; i < n; i++)
        rc |= tok_ids_push(out, ids[i]);
    if (p)
        for (size_t i = 0; i < p->after.n; i++)
            rc |= tok_ids_push(out, p->after.v[i]);
    return rc ? gb_error_set(err, GB_ERR_NOMEM, "out of memory") : 0;
}
