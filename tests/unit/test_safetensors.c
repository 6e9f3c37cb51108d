/* safetensors reader: valid files, O(1) lookup, sharded checkpoints, and crafted corrupt
 * inputs, each of which must give its own error code and a message naming the file (and the
 * tensor, where there is one) without crashing. */
#include <stdint.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "test.h"
#include "util/error.h"
#include "util/fileio.h"

static char *g_dir;

static char *path_of(const char *name) {
    return gb_strdup_printf("%s/%s", g_dir, name);
}

/* 8-byte little-endian header length (hlen, or strlen(header) when hlen is UINT64_MAX),
 * the header, then data_len bytes 0, 1, 2, ... */
static void write_raw(const char *path, uint64_t hlen, const char *header, size_t data_len) {
    size_t n = strlen(header);
    if (hlen == UINT64_MAX) hlen = n;
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 8; i++)
        fputc((int)((hlen >> (8 * i)) & 0xff), f);
    fwrite(header, 1, n, f);
    for (size_t i = 0; i < data_len; i++)
        fputc((int)(i & 0xff), f);
    fclose(f);
}

static void write_st(const char *name, const char *header, size_t data_len) {
    char *p = path_of(name);
    write_raw(p, UINT64_MAX, header, data_len);
    free(p);
}

/* Opening `name` fails with `code` and a message containing the path and `needle`. */
static void expect_fail(const char *name, int code, const char *needle, const char *needle2) {
    char *p = path_of(name);
    gb_safetensors *st = NULL;
    gb_error err = {0};
    int rc = gb_safetensors_open(p, &st, &err);
    CHECK_MSG(rc == code, "%s: expected code %d (%s), got %d: %s", name, code, gb_code_name(code),
              rc, err.msg);
    CHECK_MSG(st == NULL, "%s: handle returned on failure", name);
    CHECK_MSG(strstr(err.msg, p) != NULL, "%s: message does not name the file: %s", name, err.msg);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: expected \"%s\" in: %s", name, needle, err.msg);
    if (needle2)
        CHECK_MSG(strstr(err.msg, needle2) != NULL, "%s: expected \"%s\" in: %s", name, needle2,
                  err.msg);
    gb_safetensors_free(st);
    free(p);
}

static void test_valid(void) {
    write_st("ok.safetensors",
             "{\"__metadata__\":{\"format\":\"pt\"},"
             "\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]},"
             "\"c\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[20,22]},"
             "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[22,22]}}  ",
             22);
    char *p = path_of("ok.safetensors");
    gb_safetensors *st = NULL;
    gb_error err = {0};
    CHECK_OK(gb_safetensors_open(p, &st, &err), &err);
    if (st) {
        CHECK_EQ_INT(gb_safetensors_count(st), 4);
        const gb_tensor_view *a = gb_safetensors_find(st, "a"), *b = gb_safetensors_find(st, "b");
        const gb_tensor_view *c = gb_safetensors_find(st, "c");
        CHECK(a && b && c);
        if (a && b && c) {
            CHECK_EQ_INT(a->dtype, GB_BF16);
            CHECK_EQ_INT(a->ndim, 2);
            CHECK_EQ_INT(a->shape[0], 2);
            CHECK_EQ_INT(a->shape[1], 3);
            CHECK_EQ_INT(a->nbytes, 12);
            CHECK_EQ_INT(((const unsigned char *)a->data)[0], 0);
            CHECK_EQ_INT(b->dtype, GB_F32);
            CHECK_EQ_INT(b->nbytes, 8);
            CHECK_EQ_INT(((const unsigned char *)b->data)[0], 12);
            CHECK_EQ_INT(c->dtype, GB_F16);
            CHECK_EQ_INT(c->ndim, 0);
            CHECK_STR(a->file, p);
        }
        CHECK(gb_safetensors_find(st, "nope") == NULL);
        CHECK(gb_safetensors_find(st, "__metadata__") == NULL);
        CHECK_STR(gb_safetensors_at(st, 0)->name, "a");
        CHECK_STR(gb_safetensors_at(st, 3)->name, "empty");
        CHECK(gb_safetensors_at(st, 4) == NULL);
    }
    gb_safetensors_free(st);
    free(p);

    /* Many names: every one found through the hash table, absent ones not. */
    size_t cap = 1 << 20, n = 0;
    char *h = malloc(cap);
    n += (size_t)snprintf(h + n, cap - n, "{");
    for (int i = 0; i < 3000; i++)
        n += (size_t)snprintf(h + n, cap - n,
                              "%s\"model.layers.%d.w\":{\"dtype\":\"BF16\",\"shape\":[1],"
                              "\"data_offsets\":[%d,%d]}",
                              i ? "," : "", i, 2 * i, 2 * i + 2);
    snprintf(h + n, cap - n, "}");
    write_st("many.safetensors", h, 6000);
    free(h);
    p = path_of("many.safetensors");
    CHECK_OK(gb_safetensors_open(p, &st, &err), &err);
    int found = 0;
    for (int i = 0; st && i < 3000; i++) {
        char name[64];
        snprintf(name, sizeof name, "model.layers.%d.w", i);
        const gb_tensor_view *v = gb_safetensors_find(st, name);
        found += v && !strcmp(v->name, name) && v->nbytes == 2 &&
                 ((const unsigned char *)v->data)[0] == (unsigned char)(2 * i);
        snprintf(name, sizeof name, "model.layers.%d.x", i);
        CHECK(gb_safetensors_find(st, name) == NULL);
    }
    CHECK_EQ_INT(found, 3000);
    gb_safetensors_free(st);
    free(p);
}

static void test_corrupt(void) {
    char *p = path_of("short.safetensors");
    FILE *f = fopen(p, "wb");
    fwrite("\x10\0\0", 1, 3, f);
    fclose(f);
    free(p);
    expect_fail("short.safetensors", GB_ERR_FORMAT, "truncated", NULL);

    p = path_of("hlen_past_eof.safetensors");
    write_raw(p, 1000, "{}", 10);
    free(p);
    expect_fail("hlen_past_eof.safetensors", GB_ERR_FORMAT, "header length 1000 runs past the end",
                NULL);

    p = path_of("hlen_huge.safetensors");
    write_raw(p, 200000000ULL, "{}", 0);
    free(p);
    expect_fail("hlen_huge.safetensors", GB_ERR_FORMAT, "100 MB limit", NULL);

    write_st("not_json.safetensors", "{\"a\": {\"dtype\": \"BF16\", ", 0);
    expect_fail("not_json.safetensors", GB_ERR_FORMAT, "not valid JSON", NULL);

    write_st("not_object.safetensors", "[1, 2, 3]", 0);
    expect_fail("not_object.safetensors", GB_ERR_FORMAT, "not a JSON object", NULL);

    write_st("overlap.safetensors",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
             12);
    expect_fail("overlap.safetensors", GB_ERR_FORMAT, "overlap", "'a'");

    write_st("out_of_range.safetensors",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
             16);
    expect_fail("out_of_range.safetensors", GB_ERR_FORMAT, "outside the data area", "'w'");

    /* A valid header whose data area was cut short by a truncated download. */
    write_st("truncated_data.safetensors",
             "{\"w\":{\"dtype\":\"BF16\",\"shape\":[100],\"data_offsets\":[0,200]}}", 150);
    expect_fail("truncated_data.safetensors", GB_ERR_FORMAT, "outside the data area", "'w'");

    write_st("dtype.safetensors", "{\"q\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
             4);
    expect_fail("dtype.safetensors", GB_ERR_UNSUPPORTED, "\"I8\"", "'q'");

    write_st("size.safetensors",
             "{\"s\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,10]}}", 10);
    expect_fail("size.safetensors", GB_ERR_FORMAT, "12 bytes but data_offsets span 10", "'s'");

    write_st("reversed.safetensors",
             "{\"r\":{\"dtype\":\"BF16\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8);
    expect_fail("reversed.safetensors", GB_ERR_FORMAT, "end before begin", "'r'");

    write_st("dup.safetensors",
             "{\"d\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,2]},"
             "\"d\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[2,4]}}",
             4);
    expect_fail("dup.safetensors", GB_ERR_FORMAT, "twice", "'d'");

    write_st("neg_shape.safetensors",
             "{\"n\":{\"dtype\":\"BF16\",\"shape\":[-1],\"data_offsets\":[0,2]}}", 2);
    expect_fail("neg_shape.safetensors", GB_ERR_FORMAT, "shape[0]", "'n'");

    write_st("frac_offset.safetensors",
             "{\"o\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0.5,2]}}", 2);
    expect_fail("frac_offset.safetensors", GB_ERR_FORMAT, "data_offsets", "'o'");

    write_st("no_dtype.safetensors", "{\"t\":{\"shape\":[1],\"data_offsets\":[0,2]}}", 2);
    expect_fail("no_dtype.safetensors", GB_ERR_FORMAT, "dtype", "'t'");

    write_st("entry_not_obj.safetensors", "{\"t\": 5}", 0);
    expect_fail("entry_not_obj.safetensors", GB_ERR_FORMAT, "not a JSON object", "'t'");

    write_st("overflow.safetensors",
             "{\"v\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
             "\"data_offsets\":[0,16]}}",
             16);
    expect_fail("overflow.safetensors", GB_ERR_FORMAT, "data_offsets span 16", "'v'");

    write_st("meta.safetensors", "{\"__metadata__\":{\"format\":5}}", 0);
    expect_fail("meta.safetensors", GB_ERR_FORMAT, "__metadata__", "'format'");

    expect_fail("does_not_exist.safetensors", GB_ERR_NOT_FOUND, "cannot open", NULL);
}

/* Every truncation and single-byte corruption of a valid file must be handled cleanly. */
static void test_mutations(void) {
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}";
    size_t hn = strlen(hdr), total = 8 + hn + 20;
    unsigned char *good = malloc(total), *bad = malloc(total);
    for (int i = 0; i < 8; i++)
        good[i] = (unsigned char)((hn >> (8 * i)) & 0xff);
    memcpy(good + 8, hdr, hn);
    for (size_t i = 0; i < 20; i++)
        good[8 + hn + i] = (unsigned char)i;
    char *p = path_of("mut.safetensors");
    int opened = 0, failed_clean = 0, bad_msgs = 0;
    for (size_t len = 0; len <= total; len++) { /* every truncation */
        FILE *f = fopen(p, "wb");
        fwrite(good, 1, len, f);
        fclose(f);
        gb_safetensors *st = NULL;
        gb_error err = {0};
        int rc = gb_safetensors_open(p, &st, &err);
        if (rc == 0)
            opened++;
        else
            failed_clean++, bad_msgs += strstr(err.msg, p) == NULL;
        gb_safetensors_free(st);
    }
    CHECK_EQ_INT(opened, 1); /* only the complete file */
    static const unsigned char repl[] = {0, '"', '{', '}', ']', '9', '-', ',', 0xff, 'x'};
    for (size_t pos = 0; pos < 8 + hn; pos++) {
        for (size_t r = 0; r < sizeof repl; r++) {
            memcpy(bad, good, total);
            bad[pos] = repl[r];
            /* same size every time: rewrite in place (no truncation, cheap on any fs) */
            FILE *f = fopen(p, "r+b");
            fwrite(bad, 1, total, f);
            fclose(f);
            gb_safetensors *st = NULL;
            gb_error err = {0};
            int rc = gb_safetensors_open(p, &st, &err);
            if (rc)
                bad_msgs += strstr(err.msg, p) == NULL || err.code != rc;
            else if (st)
                for (int i = 0; i < gb_safetensors_count(st); i++) {
                    const gb_tensor_view *v = gb_safetensors_at(st, i);
                    /* a view that opened must lie inside the file */
                    CHECK((const unsigned char *)v->data + v->nbytes >=
                          (const unsigned char *)v->data);
                    volatile unsigned char sink = 0;
                    for (size_t k = 0; k < v->nbytes; k++)
                        sink ^= ((const unsigned char *)v->data)[k];
                    (void)sink;
                }
            gb_safetensors_free(st);
        }
    }
    CHECK_EQ_INT(bad_msgs, 0);
    free(p);
    free(good);
    free(bad);
}

static void write_text(const char *name, const char *text) {
    char *p = path_of(name);
    gb_error err = {0};
    CHECK_OK(gb_file_write_atomic(p, text, strlen(text), &err), &err);
    free(p);
}

static void expect_weights_fail(const char *sub, int code, const char *needle,
                                const char *needle2) {
    char *d = path_of(sub);
    gb_weights *w = NULL;
    gb_error err = {0};
    int rc = gb_weights_open(d, &w, &err);
    CHECK_MSG(rc == code, "%s: expected code %d, got %d: %s", sub, code, rc, err.msg);
    CHECK(w == NULL);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: expected \"%s\" in: %s", sub, needle, err.msg);
    if (needle2)
        CHECK_MSG(strstr(err.msg, needle2) != NULL, "%s: expected \"%s\" in: %s", sub, needle2,
                  err.msg);
    gb_weights_free(w);
    free(d);
}

static void test_sharded(void) {
    gb_error err = {0};
    const char *shard1 = "{\"x\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                         "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    const char *shard2 = "{\"z\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]}}";
    static const char *dirs[] = {
        "sh_ok",     "sh_missing_shard", "sh_missing_tensor", "sh_bad_json",
        "sh_no_map", "sh_escape",        "sh_empty",          "single"};
    for (int i = 0; i < 8; i++) {
        char *d = path_of(dirs[i]);
        CHECK_OK(gb_mkdir_p(d, &err), &err);
        free(d);
    }
    write_st("sh_ok/model-00001-of-00002.safetensors", shard1, 8);
    write_st("sh_ok/model-00002-of-00002.safetensors", shard2, 6);
    write_text("sh_ok/model.safetensors.index.json",
               "{\"metadata\":{\"total_size\":14},\"weight_map\":{"
               "\"x\":\"model-00001-of-00002.safetensors\","
               "\"y\":\"model-00001-of-00002.safetensors\","
               "\"z\":\"model-00002-of-00002.safetensors\"}}");
    char *d = path_of("sh_ok");
    gb_weights *w = NULL;
    CHECK_OK(gb_weights_open(d, &w, &err), &err);
    if (w) {
        CHECK_EQ_INT(gb_weights_count(w), 3);
        CHECK_EQ_INT(gb_weights_total_bytes(w), 14);
        const gb_tensor_view *z = gb_weights_find(w, "z");
        CHECK(z && z->dtype == GB_F16 && z->shape[0] == 3);
        CHECK(z && strstr(z->file, "model-00002-of-00002.safetensors"));
        CHECK(gb_weights_find(w, "x") && gb_weights_find(w, "y"));
        CHECK(gb_weights_find(w, "w") == NULL);
        CHECK_STR(gb_weights_at(w, 2)->name, "z");
    }
    gb_weights_free(w);
    free(d);

    write_st("sh_missing_shard/model-00001-of-00002.safetensors", shard1, 8);
    write_text("sh_missing_shard/model.safetensors.index.json",
               "{\"weight_map\":{\"x\":\"model-00001-of-00002.safetensors\","
               "\"z\":\"model-00002-of-00002.safetensors\"}}");
    expect_weights_fail("sh_missing_shard", GB_ERR_NOT_FOUND,
                        "shard 'model-00002-of-00002.safetensors'", "does not exist");

    write_st("sh_missing_tensor/model-00001-of-00002.safetensors", shard1, 8);
    write_st("sh_missing_tensor/model-00002-of-00002.safetensors", shard2, 6);
    write_text("sh_missing_tensor/model.safetensors.index.json",
               "{\"weight_map\":{\"x\":\"model-00001-of-00002.safetensors\","
               "\"lm_head.weight\":\"model-00002-of-00002.safetensors\"}}");
    expect_weights_fail("sh_missing_tensor", GB_ERR_NOT_FOUND, "tensor 'lm_head.weight'",
                        "model-00002-of-00002.safetensors");

    write_text("sh_bad_json/model.safetensors.index.json", "{\"weight_map\": {");
    expect_weights_fail("sh_bad_json", GB_ERR_FORMAT, "model.safetensors.index.json",
                        "not valid JSON");

    write_text("sh_no_map/model.safetensors.index.json", "{\"metadata\": {}}");
    expect_weights_fail("sh_no_map", GB_ERR_FORMAT, "weight_map", NULL);

    write_text("sh_escape/model.safetensors.index.json",
               "{\"weight_map\":{\"x\":\"../single/model.safetensors\"}}");
    expect_weights_fail("sh_escape", GB_ERR_FORMAT, "not a shard file name", "'x'");

    expect_weights_fail("sh_empty", GB_ERR_NOT_FOUND, "no model.safetensors", NULL);

    /* A corrupt shard is reported with its own path. */
    write_st("sh_missing_shard/model-00002-of-00002.safetensors", "{\"z\": 1}", 0);
    expect_weights_fail("sh_missing_shard", GB_ERR_FORMAT, "model-00002-of-00002.safetensors",
                        "'z'");

    write_st("single/model.safetensors", shard1, 8);
    d = path_of("single");
    CHECK_OK(gb_weights_open(d, &w, &err), &err);
    CHECK_EQ_INT(gb_weights_count(w), 2);
    CHECK_EQ_INT(gb_weights_total_bytes(w), 8);
    CHECK(gb_weights_find(w, "y") != NULL);
    gb_weights_free(w);
    free(d);
}

int main(void) {
    g_dir = gb_strdup_printf("%s/safetensors_%ld", gb_test_tmp(), (long)getpid());
    gb_error err = {0};
    CHECK_OK(gb_mkdir_p(g_dir, &err), &err);
    test_valid();
    test_corrupt();
    test_mutations();
    test_sharded();
    char *cmd = gb_strdup_printf("rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    free(cmd);
    free(g_dir);
    TEST_MAIN_END();
}
