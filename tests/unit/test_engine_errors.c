/* Bad models fail at load with the tensor (or file and key) named; bad generation
 * arguments fail with a message; a good tiny model loads and runs. */
#include "engine_fixture.h"
#include "model/config.h"

static const char *CFG =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 8,"
    " \"intermediate_size\": %d, \"num_hidden_layers\": 1, \"num_attention_heads\": 2,"
    " \"num_key_value_heads\": 1, \"vocab_size\": 16, \"max_position_embeddings\": 64,"
    " \"rms_norm_eps\": 1e-5, \"tie_word_embeddings\": %s}";

enum edit { NONE, DROP, RESHAPE, REDTYPE };

/* Writes dir/config.json (intermediate cfg_inter) and dir/model.safetensors holding the
 * tensors of a model with intermediate `w_inter`, with one edit applied to tensor `target`. */
static char *write_model(const char *tag, int cfg_inter, int w_inter, const char *tied,
                         enum edit ed, const char *target) {
    char *dir = gb_strdup_printf("%s/errors-%s", gb_test_tmp(), tag);
    gb_error err;
    fx_rmtree(dir);
    gb_mkdir_p(dir, &err);
    char *cfg = gb_strdup_printf(CFG, cfg_inter, tied),
         *wcfg = gb_strdup_printf(CFG, w_inter, tied);
    char *path = gb_strdup_printf("%s/config.json", dir);
    gb_file_write_atomic(path, cfg, strlen(cfg), &err);
    free(path);
    gb_model_config c;
    CHECK_OK(gb_model_config_parse(wcfg, strlen(wcfg), "test", &c, &err), &err);
    gb_tensor_spec *specs;
    int count;
    CHECK_OK(gb_model_tensors(&c, &specs, &count, &err), &err);
    cJSON *hdr = cJSON_CreateObject();
    size_t off = 0;
    for (int i = 0; i < count; i++) {
        gb_tensor_spec *s = &specs[i];
        int hit = target && !strcmp(s->name, target);
        if (hit && ed == DROP) continue;
        int64_t shape[2] = {s->shape[0], s->shape[1]};
        if (hit && ed == RESHAPE) shape[0] += 1;
        const char *dt = hit && ed == REDTYPE ? "I8" : "BF16";
        size_t n = (size_t)shape[0] * (s->ndim == 2 ? (size_t)shape[1] : 1);
        size_t bytes = n * (hit && ed == REDTYPE ? 1 : 2);
        cJSON *t = cJSON_AddObjectToObject(hdr, s->name);
        cJSON_AddStringToObject(t, "dtype", dt);
        cJSON *sh = cJSON_AddArrayToObject(t, "shape");
        for (int d = 0; d < s->ndim; d++)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)shape[d]));
        cJSON *of = cJSON_AddArrayToObject(t, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + bytes)));
        off += bytes;
    }
    char *h = cJSON_PrintUnformatted(hdr);
    size_t hl = strlen(h), total = 8 + hl + off;
    unsigned char *file = calloc(1, total);
    for (int i = 0; i < 8; i++)
        file[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(file + 8, h, hl);
    uint16_t one = gb_f32_to_bf16(0.5f); /* a harmless constant weight everywhere */
    for (size_t i = 8 + hl; i + 1 < total; i += 2)
        memcpy(file + i, &one, 2);
    path = gb_strdup_printf("%s/model.safetensors", dir);
    gb_file_write_atomic(path, file, total, &err);
    free(path), free(file), free(h), free(specs), free(cfg), free(wcfg);
    cJSON_Delete(hdr);
    return dir;
}

typedef struct trace_count {
    int slices[4], bad;
} trace_count;

static void on_trace(void *user, const char *name, int64_t t0, int64_t t1, int track) {
    trace_count *tc = user;
    if (track < 0 || track > 3 || t1 < t0 || !name || !name[0])
        tc->bad++;
    else
        tc->slices[track]++;
}

static void expect_fail(const char *dir, const char *needle, int code) {
    gb_engine_options o;
    gb_engine_options_default(&o);
    gb_model *m = NULL;
    gb_error err = {0};
    int rc = gb_model_load(dir, &o, &m, &err);
    CHECK_MSG(rc != 0 && m == NULL, "%s: load should fail", dir);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "message should name '%s', got: %s", needle,
              err.msg);
    if (getenv("GB_TEST_VERBOSE")) fprintf(stderr, "  %s\n", err.msg);
    if (code) CHECK_MSG(rc == code, "code: expected %d, got %d (%s)", code, rc, err.msg);
    gb_model_free(m);
}

int main(void) {
    const char *up = "model.layers.0.mlp.up_proj.weight";
    char *dir;

    dir = write_model("good", 16, 16, "true", NONE, NULL); /* baseline: loads and generates */
    {
        gb_engine_options o;
        gb_engine_options_default(&o);
        gb_model *m = NULL;
        gb_error err;
        CHECK_OK(gb_model_load(dir, &o, &m, &err), &err);
        if (m) {
            int32_t prompt[3] = {1, 2, 3}, out[4];
            gb_generate_params p = {
                .prompt_ids = prompt, .batch = 1, .prompt_len = 3, .new_tokens = 4};
            CHECK_OK(gb_generate(m, &p, out, &err), &err);
            prompt[1] = 16; /* out of vocabulary */
            CHECK(gb_generate(m, &p, out, &err) == GB_ERR_INVALID &&
                  strstr(err.msg, "token id 16"));
            prompt[1] = 2;
            p.new_tokens = 0;
            CHECK(gb_generate(m, &p, out, &err) == GB_ERR_INVALID);
            gb_model_free(m);
        }
        /* The writer above does not pad the header, so tensor data sits at odd offsets:
         * in-place (mmap) loading must copy such tensors and give the same tokens. */
        int32_t ref_out[4], mm_out[4], prompt[3] = {1, 2, 3};
        gb_generate_params gp = {
            .prompt_ids = prompt, .batch = 1, .prompt_len = 3, .new_tokens = 4};
        for (int mm = 0; mm < 2; mm++) {
            o.use_mmap = mm;
            CHECK_OK(gb_model_load(dir, &o, &m, &err), &err);
            if (m) CHECK_OK(gb_generate(m, &gp, mm ? mm_out : ref_out, &err), &err);
            gb_model_free(m);
            m = NULL;
        }
        CHECK(memcmp(ref_out, mm_out, sizeof ref_out) == 0);
        o.use_mmap = 0;

        /* tracing: one step slice per token, one layer slice per layer and step, op slices */
        trace_count tc = {{0}, 0};
        o.trace = on_trace;
        o.trace_user = &tc;
        CHECK_OK(gb_model_load(dir, &o, &m, &err), &err);
        if (m) {
            int32_t prompt[3] = {1, 2, 3}, out[4];
            gb_generate_params p = {
                .prompt_ids = prompt, .batch = 1, .prompt_len = 3, .new_tokens = 4};
            CHECK_OK(gb_generate(m, &p, out, &err), &err);
            CHECK_EQ_INT(tc.bad, 0);
            CHECK_EQ_INT(tc.slices[0], 4);
            CHECK_EQ_INT(tc.slices[1], 4 * 1);
            CHECK_EQ_INT(tc.slices[2], 4 * (2 + 5 * 1));
            gb_model_free(m);
        }
    }
    fx_rmtree(dir), free(dir);

    dir = write_model("missing", 16, 16, "true", DROP, up);
    expect_fail(dir, up, GB_ERR_NOT_FOUND);
    fx_rmtree(dir), free(dir);

    dir = write_model("untied-missing-head", 16, 16, "false", DROP, "lm_head.weight");
    expect_fail(dir, "lm_head.weight", GB_ERR_NOT_FOUND);
    fx_rmtree(dir), free(dir);

    dir = write_model("shape", 16, 16, "true", RESHAPE, "model.layers.0.self_attn.k_proj.weight");
    expect_fail(dir, "model.layers.0.self_attn.k_proj.weight", GB_ERR_FORMAT);
    fx_rmtree(dir), free(dir);

    dir = write_model("norm-shape", 16, 16, "true", RESHAPE, "model.norm.weight");
    expect_fail(dir, "model.norm.weight", GB_ERR_FORMAT);
    fx_rmtree(dir), free(dir);

    dir = write_model("dtype", 16, 16, "true", REDTYPE, "model.layers.0.self_attn.o_proj.weight");
    expect_fail(dir, "model.layers.0.self_attn.o_proj.weight", 0);
    fx_rmtree(dir), free(dir);

    /* config.json says intermediate_size 24, the weights were made for 16 */
    dir = write_model("config", 24, 16, "true", NONE, NULL);
    expect_fail(dir, "model.layers.0.mlp.gate_proj.weight", GB_ERR_FORMAT);
    fx_rmtree(dir), free(dir);

    expect_fail("/nonexistent/model", "config.json", 0);
    TEST_MAIN_END();
}
