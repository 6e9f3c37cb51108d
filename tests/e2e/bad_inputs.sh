#!/bin/sh
# Bad input across the whole CLI: every subcommand, fed missing / truncated / corrupt files,
# wrong shapes and dtypes, unknown architectures, impossible configs, malformed JSON,
# invalid UTF-8 and bad flags, must exit non-zero without a signal (status < 128) and print
# exactly ONE stderr line naming the file or field and the problem. `run` records a failing
# model or config as success:false in a complete results file and prints one line per
# failing config plus its one-line "N config(s) failed" summary; a usage error of `run`
# (bad flag, unreadable config file) writes no results at all.
set -eu
: "${GB_BIN:?}" "${GB_TEST_TMP:?}"
T="$GB_TEST_TMP"
rm -rf "$T" && mkdir -p "$T"
export XDG_CACHE_HOME="$T/cache" GENBENCH_NO_CEILINGS=1 CUDA_VISIBLE_DEVICES=""
cd "$T"
FAILS="$T/fails.txt"
: >"$FAILS"
n_cases=0

# fail1 NAME ERE CMD...: CMD fails cleanly with one stderr line matching ERE.
fail1() {
    name=$1 pat=$2
    shift 2
    n_cases=$((n_cases + 1))
    rc=0
    "$@" >"$T/out.txt" 2>"$T/err.txt" </dev/null || rc=$?
    lines=$(wc -l <"$T/err.txt")
    if [ "$rc" -eq 0 ]; then
        echo "$name: exit status 0 (expected an error)" >>"$FAILS"
    elif [ "$rc" -ge 128 ]; then
        echo "$name: exit status $rc (signal/crash)" >>"$FAILS"
    elif [ "$lines" -ne 1 ]; then
        echo "$name: $lines stderr lines (expected 1):" >>"$FAILS"
        head -c 2000 "$T/err.txt" >>"$FAILS"
    elif ! grep -Eq -- "$pat" "$T/err.txt"; then
        echo "$name: stderr does not match /$pat/: $(cat "$T/err.txt")" >>"$FAILS"
    fi
    return 0
}

# fail_run NAME NFAIL ERE OUTDIR CMD...: `run` exits 1 with one matching line per failing
# config plus the summary; OUTDIR then holds complete JSON results (checked at the end).
fail_run() {
    name=$1 nfail=$2 pat=$3 outdir=$4
    shift 4
    n_cases=$((n_cases + 1))
    rc=0
    "$@" -o "$outdir" >"$T/out.txt" 2>"$T/err.txt" </dev/null || rc=$?
    lines=$(wc -l <"$T/err.txt")
    nmatch=$(grep -Ec -- "$pat" "$T/err.txt" || true)
    if [ "$rc" -ne 1 ]; then
        echo "$name: exit status $rc (expected 1):" >>"$FAILS"
        head -c 2000 "$T/err.txt" >>"$FAILS"
    elif [ "$lines" -ne $((nfail + 1)) ] || [ "$nmatch" -ne "$nfail" ] ||
        ! tail -n 1 "$T/err.txt" | grep -q "$nfail config(s) failed"; then
        echo "$name: expected $nfail lines matching /$pat/ + summary, got:" >>"$FAILS"
        head -c 2000 "$T/err.txt" >>"$FAILS"
    fi
    echo "$outdir $nfail" >>"$T/run_outdirs.txt"
    return 0
}

# --- a valid tiny model (single file) and a sharded one, then damaged copies -------------
"$GB_BIN" init-model --preset tiny-llama3 "$T/good" >/dev/null 2>&1 || {
    echo "init-model failed"
    exit 1
}
"$GB_BIN" init-model --preset tiny-llama3 --max-shard-bytes 4M "$T/sharded" >/dev/null 2>&1 || {
    echo "init-model (sharded) failed"
    exit 1
}
python3 - "$T" <<'PY'
import json, os, shutil, struct, sys
T = sys.argv[1]
good, sharded = f"{T}/good", f"{T}/sharded"
def clone(name, src=good):
    # Hard links for the big files that stay intact; the damaged file is rewritten.
    d = f"{T}/m/{name}"
    os.makedirs(d)
    for f in os.listdir(src):
        os.link(f"{src}/{f}", f"{d}/{f}")
    return d
def rewrite(path, data):
    os.unlink(path)
    open(path, "wb").write(data)
def st_parts(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]
def st_write(path, hdr, data):
    h = json.dumps(hdr).encode()
    rewrite(path, struct.pack("<Q", len(h)) + h + data)
def cfg_edit(name, fn):
    d = clone(name)
    c = json.load(open(f"{d}/config.json"))
    fn(c)
    rewrite(f"{d}/config.json", json.dumps(c).encode())

ST = "model.safetensors"
Q = "model.layers.0.self_attn.q_proj.weight"
os.makedirs(f"{T}/m")
d = clone("noconfig"); os.unlink(f"{d}/config.json")
d = clone("noweights"); os.unlink(f"{d}/{ST}")
raw = open(f"{good}/{ST}", "rb").read()
d = clone("trunc"); rewrite(f"{d}/{ST}", raw[: len(raw) // 2])
d = clone("trunc_header"); rewrite(f"{d}/{ST}", raw[:100])
d = clone("tiny_file"); rewrite(f"{d}/{ST}", raw[:5])
d = clone("empty_file"); rewrite(f"{d}/{ST}", b"")
d = clone("flip"); b = bytearray(raw); b[8:24] = b"\xff" * 16; rewrite(f"{d}/{ST}", bytes(b))
d = clone("hdrlen"); rewrite(f"{d}/{ST}", struct.pack("<Q", 1 << 62) + raw[8:])
hdr, data = st_parts(f"{good}/{ST}")
def st_edit(name, fn):
    d = clone(name)
    h = json.loads(json.dumps(hdr))
    fn(h)
    st_write(f"{d}/{ST}", h, data)
def to_i8(h):  # same bytes, I8 with the last dimension doubled
    h[Q]["dtype"] = "I8"; h[Q]["shape"][-1] *= 2
st_edit("dtype_i8", to_i8)
def bad_dtype(h): h[Q]["dtype"] = "Q4_K"
st_edit("dtype_unknown", bad_dtype)
def reshape(h):  # same byte count, transposed-looking shape
    s = h[Q]["shape"]; h[Q]["shape"] = [s[0] // 2, s[1] * 2]
st_edit("shape", reshape)
def shape_bytes(h): h[Q]["shape"] = [64, 65]
st_edit("shape_bytes", shape_bytes)
def drop(h): del h["model.layers.1.mlp.down_proj.weight"]
st_edit("missing_tensor", drop)
def overlap(h): h[Q]["data_offsets"] = h["model.embed_tokens.weight"]["data_offsets"]
st_edit("overlap", overlap)
def neg(h): h[Q]["shape"] = [-64, -64]
st_edit("neg_shape", neg)

# Sharded: index missing an entry, naming a missing shard, malformed, escaping the dir.
IX = "model.safetensors.index.json"
ix = json.load(open(f"{sharded}/{IX}"))
def ix_edit(name, fn, text=None):
    d = clone(name, sharded)
    j = json.loads(json.dumps(ix))
    if fn: fn(j)
    rewrite(f"{d}/{IX}", text if text is not None else json.dumps(j).encode())
    return d
def ix_drop(j): del j["weight_map"][Q]
ix_edit("ix_missing_entry", ix_drop)
def ix_shard(j): j["weight_map"][Q] = "model-00009-of-00009.safetensors"
ix_edit("ix_missing_shard", ix_shard)
def ix_escape(j): j["weight_map"][Q] = "../../good/model.safetensors"
ix_edit("ix_escape", ix_escape)
ix_edit("ix_malformed", None, b'{"weight_map": {')
d = ix_edit("shard_trunc", None)
shard = sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))[-1]
s = open(f"{d}/{shard}", "rb").read(); rewrite(f"{d}/{shard}", s[: len(s) - 100])

# config.json
d = clone("cfg_malformed"); rewrite(f"{d}/config.json", b'{"model_type": "llama", "hidden_size": 6')
d = clone("cfg_not_object"); rewrite(f"{d}/config.json", b'[1, 2, 3]')
d = clone("cfg_utf8"); rewrite(f"{d}/config.json", b'{"model_type": "lla\xffma"}')
def unknown(c): c["model_type"] = "bert"; c["architectures"] = ["BertForMaskedLM"]
cfg_edit("cfg_unknown_type", unknown)
def unknown_arch(c): c["architectures"] = ["MambaForCausalLM"]
cfg_edit("cfg_unknown_arch", unknown_arch)
def heads0(c): c["num_attention_heads"] = 0
cfg_edit("cfg_heads0", heads0)
def not_div(c): c["num_attention_heads"] = 5; del c["head_dim"]
cfg_edit("cfg_not_divisible", not_div)
def kv(c): c["num_key_value_heads"] = 3
cfg_edit("cfg_kv", kv)
def neg_layers(c): c["num_hidden_layers"] = -2
cfg_edit("cfg_neg_layers", neg_layers)
def str_hidden(c): c["hidden_size"] = "64"
cfg_edit("cfg_str_hidden", str_hidden)
def huge(c): c["hidden_size"] = 1e30
cfg_edit("cfg_huge", huge)
def vocab(c): c["vocab_size"] = 1000
cfg_edit("cfg_vocab_mismatch", vocab)
def rope(c): c["rope_scaling"] = {"rope_type": "yarn-ish", "factor": 2.0}
cfg_edit("cfg_rope", rope)
def fdtype(c): c["torch_dtype"] = "int4"
cfg_edit("cfg_dtype", fdtype)

# tokenizer files
d = clone("tok_missing"); os.unlink(f"{d}/tokenizer.json")
d = clone("tok_malformed"); rewrite(f"{d}/tokenizer.json", open(f"{good}/tokenizer.json", "rb").read()[:5000])
d = clone("tok_no_model"); rewrite(f"{d}/tokenizer.json", b'{"version": "1.0", "added_tokens": []}')
d = clone("tok_cfg_malformed"); rewrite(f"{d}/tokenizer_config.json", b'{"bos_token": ')

# prompt / text files and config files for run --config-file
open(f"{T}/bad_utf8.txt", "wb").write(b"Hello \xc3\x28 world \xff\xfe")
open(f"{T}/empty.txt", "wb").write(b"")
cf = {
    "malformed.json": b'[{"batch_size": 1,',
    "not_object.json": b'[1, 2]',
    "bad_utf8.json": b'[{"attn_implementation": "sd\xffpa"}]',
    "empty.json": b'',
    "unknown_key.json": b'[{"batch_sise": 1}]',
    "wrong_type.json": b'[{"batch_size": "two"}]',
}
for k, v in cf.items():
    open(f"{T}/{k}", "wb").write(v)
# one failing config each, between two good ones (range errors fail per config)
rng = {"batch0.jsonl": '{"batch_size": 0}', "negtokens.jsonl": '{"num_tokens_to_generate": -5}',
       "attn.jsonl": '{"attn_implementation": "paged_magic"}',
       "seq0.jsonl": '{"sequence_length": 0}', "compile.jsonl": '{"compile_kwargs": {"mode": "turbo"}}'}
ok = '{"attn_implementation": "sdpa", "num_tokens_to_generate": 2, "sequence_length": 8}'
for k, v in rng.items():
    open(f"{T}/{k}", "w").write(ok + "\n" + v + "\n" + ok.replace("sdpa", "eager") + "\n")
# results files for compare
open(f"{T}/not_results.json", "w").write(json.dumps({"hello": [1, 2, 3]}))
open(f"{T}/results_array.json", "w").write("[1, 2]")
open(f"{T}/results_trunc.json", "w").write('{"abc": {"metadata": {"model_id": "x"')
open(f"{T}/results_badentry.json", "w").write(json.dumps(
    {"abc": {"metadata": {"model_id": "x"}, "measurements": {"e2e_latency": "fast"}}}))
PY

M="$T/m"
RUN_OPTS="-n 2 -s 8 -w 0 -i 1 --attn sdpa --no-gpu-monitoring --log-level error"

# --- generate ----------------------------------------------------------------------------
fail1 gen_missing_dir "/nonexistent.*not found" "$GB_BIN" generate --model "$T/nonexistent" -n 2
fail1 gen_noconfig "noconfig.*config.json" "$GB_BIN" generate --model "$M/noconfig" -n 2
fail1 gen_noweights "noweights.*safetensors" "$GB_BIN" generate --model "$M/noweights" -n 2
for c in trunc trunc_header tiny_file empty_file flip hdrlen dtype_unknown shape_bytes overlap \
    neg_shape; do
    fail1 "gen_$c" "$c/model.safetensors" "$GB_BIN" generate --model "$M/$c" -n 2 -s 8
done
for c in dtype_i8 shape missing_tensor; do
    fail1 "gen_$c" "$c.*(q_proj|down_proj)" "$GB_BIN" generate --model "$M/$c" -n 2 -s 8
done
fail1 gen_ix_missing_entry "ix_missing_entry.*q_proj.*missing" \
    "$GB_BIN" generate --model "$M/ix_missing_entry" -n 2 -s 8
for c in ix_missing_shard ix_escape ix_malformed shard_trunc; do
    fail1 "gen_$c" "$c/.*safetensors" "$GB_BIN" generate --model "$M/$c" -n 2 -s 8
done
fail1 gen_cfg_malformed "cfg_malformed/config.json" "$GB_BIN" generate --model "$M/cfg_malformed"
fail1 gen_cfg_not_object "cfg_not_object/config.json" "$GB_BIN" generate --model "$M/cfg_not_object"
fail1 gen_cfg_utf8 "cfg_utf8/config.json" "$GB_BIN" generate --model "$M/cfg_utf8"
fail1 gen_cfg_unknown_type "config.json.*bert" "$GB_BIN" generate --model "$M/cfg_unknown_type"
fail1 gen_cfg_unknown_arch "config.json.*Mamba" "$GB_BIN" generate --model "$M/cfg_unknown_arch"
fail1 gen_cfg_heads0 "config.json.*num_attention_heads" "$GB_BIN" generate --model "$M/cfg_heads0"
fail1 gen_cfg_not_divisible "config.json.*(num_attention_heads|hidden_size)" \
    "$GB_BIN" generate --model "$M/cfg_not_divisible"
fail1 gen_cfg_kv "config.json.*num_key_value_heads" "$GB_BIN" generate --model "$M/cfg_kv"
fail1 gen_cfg_neg_layers "config.json.*num_hidden_layers" "$GB_BIN" generate --model "$M/cfg_neg_layers"
fail1 gen_cfg_str_hidden "config.json.*hidden_size" "$GB_BIN" generate --model "$M/cfg_str_hidden"
fail1 gen_cfg_huge "config.json.*hidden_size" "$GB_BIN" generate --model "$M/cfg_huge"
fail1 gen_cfg_vocab_mismatch "cfg_vocab_mismatch.*embed_tokens" \
    "$GB_BIN" generate --model "$M/cfg_vocab_mismatch" -n 2 -s 8
fail1 gen_cfg_rope "config.json.*rope" "$GB_BIN" generate --model "$M/cfg_rope"
fail1 gen_cfg_dtype "config.json.*torch_dtype" "$GB_BIN" generate --model "$M/cfg_dtype"
fail1 gen_tok_missing "tok_missing.*tokenizer.json" "$GB_BIN" generate --model "$M/tok_missing"
fail1 gen_tok_malformed "tok_malformed/tokenizer.json" "$GB_BIN" generate --model "$M/tok_malformed"
fail1 gen_tok_no_model "tok_no_model/tokenizer.json.*model" "$GB_BIN" generate --model "$M/tok_no_model"
fail1 gen_tok_cfg_malformed "tokenizer_config.json" \
    "$GB_BIN" generate --model "$M/tok_cfg_malformed"
fail1 gen_prompt_utf8 "bad_utf8.txt.*UTF-8" \
    "$GB_BIN" generate --model "$T/good" --prompt-file "$T/bad_utf8.txt" -n 2
fail1 gen_prompt_missing "nope.txt" "$GB_BIN" generate --model "$T/good" --prompt-file "$T/nope.txt"
fail1 gen_cuda "cuda" "$GB_BIN" generate --model "$T/good" --device cuda -n 2
fail1 gen_device "device.*tpu" "$GB_BIN" generate --model "$T/good" --device tpu
fail1 gen_b_abc "(-b|batch).*abc" "$GB_BIN" generate --model "$T/good" -b abc
fail1 gen_n_neg "(-n|max-new-tokens).*-1" "$GB_BIN" generate --model "$T/good" -n -1
fail1 gen_s_huge "(-s|sequence).*99999999999999999999" "$GB_BIN" generate --model "$T/good" -s 99999999999999999999
fail1 gen_dtype "dtype.*int3" "$GB_BIN" generate --model "$T/good" --dtype int3
fail1 gen_threads "threads" "$GB_BIN" generate --model "$T/good" --threads -3
fail1 gen_unknown_flag "--frobnicate" "$GB_BIN" generate --model "$T/good" --frobnicate
fail1 gen_missing_value "--model" "$GB_BIN" generate --model
fail1 gen_random_unknown "nosuchpreset" "$GB_BIN" generate --model random:nosuchpreset

# --- tokenize ----------------------------------------------------------------------------
fail1 tok_missing_dir "nonexistent" "$GB_BIN" tokenize --model "$T/nonexistent" hello
fail1 tok_missing_file "tok_missing.*tokenizer.json" "$GB_BIN" tokenize --model "$M/tok_missing" hi
fail1 tok_malformed "tok_malformed/tokenizer.json" "$GB_BIN" tokenize --model "$M/tok_malformed" hi
fail1 tok_no_model "tok_no_model/tokenizer.json" "$GB_BIN" tokenize --model "$M/tok_no_model" hi
fail1 tok_utf8_file "bad_utf8.txt.*UTF-8" "$GB_BIN" tokenize --model gpt2 --file "$T/bad_utf8.txt"
fail1 tok_utf8_arg "UTF-8" "$GB_BIN" tokenize --model llama2 "$(printf 'a\377b')"
fail1 tok_file_missing "nope.txt" "$GB_BIN" tokenize --model gpt2 --file "$T/nope.txt"
fail1 tok_decode_abc "abc" "$GB_BIN" tokenize --model gpt2 --decode 1,abc,3
fail1 tok_decode_range "99999999" "$GB_BIN" tokenize --model gpt2 --decode 1,99999999
fail1 tok_decode_neg "-5" "$GB_BIN" tokenize --model gpt2 --decode -5
fail1 tok_max_len "max-length" "$GB_BIN" tokenize --model gpt2 --max-length -1 hi
fail1 tok_unknown_name "nosuchtok" "$GB_BIN" tokenize --model nosuchtok hi
fail1 tok_no_text "(text|TEXT)" "$GB_BIN" tokenize --model gpt2

# --- init-model --------------------------------------------------------------------------
fail1 init_unknown_preset "nosuchpreset" "$GB_BIN" init-model --preset nosuchpreset "$T/i1"
fail1 init_cfg_missing "nope.json" "$GB_BIN" init-model --config "$T/nope.json" "$T/i2"
fail1 init_cfg_malformed "cfg_malformed/config.json" \
    "$GB_BIN" init-model --config "$M/cfg_malformed/config.json" "$T/i3"
fail1 init_cfg_unknown "config.json.*bert" \
    "$GB_BIN" init-model --config "$M/cfg_unknown_type/config.json" "$T/i4"
fail1 init_cfg_heads0 "config.json.*num_attention_heads" \
    "$GB_BIN" init-model --config "$M/cfg_heads0/config.json" "$T/i5"
fail1 init_exists "good" "$GB_BIN" init-model --preset tiny-llama3 "$T/good"
fail1 init_shard_abc "max-shard-bytes.*12Q" \
    "$GB_BIN" init-model --preset tiny-llama3 --max-shard-bytes 12Q "$T/i6"
fail1 init_seed "seed.*x1" "$GB_BIN" init-model --preset tiny-llama3 --seed x1 "$T/i7"
fail1 init_tokenizer "nosuchtok" "$GB_BIN" init-model --preset tiny-llama3 --tokenizer nosuchtok "$T/i8"
fail1 init_tok_dir "tok_missing" "$GB_BIN" init-model --preset tiny-llama3 --tokenizer "$M/tok_missing" "$T/i9"
fail1 init_no_outdir "(OUTDIR|output)" "$GB_BIN" init-model --preset tiny-llama3
fail1 init_unwritable "/proc/" "$GB_BIN" init-model --preset tiny-llama3 /proc/genbench-x
for d in i1 i2 i3 i4 i5 i6 i7 i8 i9; do
    [ ! -e "$T/$d" ] || echo "init-model left $T/$d behind after an error" >>"$FAILS"
done
# (init-model writes OUTDIR.tmp-PID-N and renames it when complete)
for f in "$T"/*.tmp-*; do
    [ ! -e "$f" ] || echo "init-model left a temporary dir $f" >>"$FAILS"
done

# --- compare -----------------------------------------------------------------------------
fail1 cmp_missing "nope.json" "$GB_BIN" compare "$T/nope.json" "$T/nope.json"
fail1 cmp_not_results "not_results.json" "$GB_BIN" compare "$T/not_results.json" "$T/not_results.json"
fail1 cmp_array "results_array.json" "$GB_BIN" compare "$T/results_array.json" "$T/results_array.json"
fail1 cmp_trunc "results_trunc.json" "$GB_BIN" compare "$T/results_trunc.json" "$T/results_trunc.json"
fail1 cmp_badentry "results_badentry.json" \
    "$GB_BIN" compare "$T/results_badentry.json" "$T/results_badentry.json"
fail1 cmp_utf8 "bad_utf8.json" "$GB_BIN" compare "$T/bad_utf8.json" "$T/bad_utf8.json"
fail1 cmp_one_arg "(usage|two|B)" "$GB_BIN" compare "$T/not_results.json"
fail1 cmp_alpha "alpha" "$GB_BIN" compare "$T/not_results.json" "$T/not_results.json" --alpha 7
fail1 cmp_format "--format" "$GB_BIN" compare "$T/not_results.json" "$T/not_results.json" --format xml

# --- info --------------------------------------------------------------------------------
fail1 info_flag "--bogus" "$GB_BIN" info --bogus
fail1 info_threads "threads" "$GB_BIN" info --quick --threads 0
fail1 info_gpu_sample "gpu-sample" "$GB_BIN" info --gpu-sample abc
fail1 info_cmd "frobnicate" "$GB_BIN" frobnicate

# --- run: usage errors (no results written) ----------------------------------------------
for c in malformed not_object bad_utf8 empty unknown_key wrong_type; do
    fail1 "run_cf_$c" "$c.json" "$GB_BIN" run "$T/good" --config-file "$T/$c.json" -o "$T/run_usage"
done
fail1 run_cf_missing "nope.json" "$GB_BIN" run "$T/good" --config-file "$T/nope.json" -o "$T/run_usage"
fail1 run_b_abc "(-b|batch).*abc" "$GB_BIN" run "$T/good" -b abc -o "$T/run_usage"
fail1 run_n_neg "(-n|num-tokens).*-1" "$GB_BIN" run "$T/good" -n -1 -o "$T/run_usage"
fail1 run_level "level.*9" "$GB_BIN" run "$T/good" --level 9 -o "$T/run_usage"
fail1 run_iter "(-i|iterations)" "$GB_BIN" run "$T/good" -i 0x -o "$T/run_usage"
fail1 run_unknown_flag "--frobnicate" "$GB_BIN" run "$T/good" --frobnicate -o "$T/run_usage"
fail1 run_format "--format" "$GB_BIN" run "$T/good" --format xml -o "$T/run_usage"
[ ! -e "$T/run_usage" ] || echo "run wrote results after a usage error" >>"$FAILS"

# --- run: per-model and per-config failures (results files complete, success false) -----
: >"$T/run_outdirs.txt"
for c in noconfig trunc flip dtype_i8 shape missing_tensor ix_missing_entry cfg_malformed \
    cfg_unknown_type cfg_heads0 cfg_not_divisible tok_missing tok_malformed; do
    # shellcheck disable=SC2086
    fail_run "run_$c" 1 "$c" "$T/run_$c" "$GB_BIN" run "$M/$c" $RUN_OPTS
done
# shellcheck disable=SC2086
fail_run run_mixed 2 "(trunc|cfg_kv)" "$T/run_mixed" \
    "$GB_BIN" run "$M/trunc" "$T/good" "$M/cfg_kv" $RUN_OPTS
# (a range error names the field; the scenario name in the same line says which config)
for c in batch0:batch_size negtokens:num_tokens_to_generate attn:attn_implementation \
    seq0:sequence_length compile:compile_kwargs.mode; do
    fail_run "run_cf_${c%%:*}" 1 "${c#*:}" "$T/run_cf_${c%%:*}" "$GB_BIN" run "$T/good" \
        --config-file "$T/${c%%:*}.jsonl" -w 0 -i 1 --no-gpu-monitoring --log-level error
done
# shellcheck disable=SC2086
fail_run run_attn 1 "attn_implementation 'paged_magic'" "$T/run_attn" \
    "$GB_BIN" run "$T/good" $RUN_OPTS --attn sdpa,paged_magic
# shellcheck disable=SC2086
fail_run run_cuda 1 "cuda" "$T/run_cuda" "$GB_BIN" run "$T/good" $RUN_OPTS --device cuda
# shellcheck disable=SC2086
fail_run run_missing_dir 1 "nonexistent" "$T/run_missing" "$GB_BIN" run "$T/nonexistent" $RUN_OPTS

python3 - "$T" "$FAILS" <<'PY'
import glob, json, os, sys
T, fails_path = sys.argv[1], sys.argv[2]
fails = []
for line in open(f"{T}/run_outdirs.txt"):
    outdir, nfail = line.split()
    files = glob.glob(f"{outdir}/**/*", recursive=True)
    files = [f for f in files if os.path.isfile(f)]
    leftovers = [f for f in files if not f.endswith(".json")]
    if leftovers:
        fails.append(f"{outdir}: partial/temporary files {leftovers}")
    n_false = 0
    for f in files:
        if not f.endswith(".json"):
            continue
        try:
            d = json.load(open(f))
        except Exception as e:
            fails.append(f"{f}: not complete JSON ({e})")
            continue
        for h, e in d.items():
            if e["metadata"]["success"] is False:
                n_false += 1
                err = e["genbench"]["error"] or ""
                if not err or "\n" in err:
                    fails.append(f"{f}: failed entry without a one-line error: {err!r}")
                if e["measurements"]["e2e_latency"]:
                    fails.append(f"{f}: failed entry has measurements")
    if n_false != int(nfail):
        fails.append(f"{outdir}: {n_false} entries with success false, expected {nfail}")
if fails:
    open(fails_path, "a").write("\n".join(fails) + "\n")
PY

if [ -s "$FAILS" ]; then
    cat "$FAILS"
    echo "bad_inputs: $(grep -c '^[a-z_0-9]*:' "$FAILS") problem(s) in $n_cases cases"
    exit 1
fi
echo "ok: $n_cases bad-input cases"
