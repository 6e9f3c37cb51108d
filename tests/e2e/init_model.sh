#!/bin/sh
# genbench init-model from the command line: help, argument errors, presets, --config with
# seed/sharding/tokenizer options, refusal to overwrite, bad inputs named in the message.
set -u
: "${GB_BIN:?}" "${GB_TEST_TMP:?}"
T="$GB_TEST_TMP/init_model.$$"
rm -rf "$T"
mkdir -p "$T"
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# expect CODE CMD...: runs CMD, stdout+stderr in $T/out, checks the exit status.
expect() {
    want=$1
    shift
    "$@" >"$T/out" 2>&1
    got=$?
    [ "$got" = "$want" ] || { fail "exit $got (expected $want): $*"; cat "$T/out" >&2; }
}
has() { grep -q -- "$1" "$T/out" || { fail "output lacks '$1'"; cat "$T/out" >&2; }; }

expect 0 "$GB_BIN" init-model --help
has "usage: genbench init-model"
has "tiny-llama3"
expect 2 "$GB_BIN" init-model
expect 2 "$GB_BIN" init-model --preset tiny-gpt2
expect 2 "$GB_BIN" init-model --preset tiny-gpt2 --config x.json "$T/a"
expect 2 "$GB_BIN" init-model --bogus "$T/a"
expect 2 "$GB_BIN" init-model --preset tiny-gpt2 --seed -1 "$T/a"
expect 2 "$GB_BIN" init-model --preset tiny-gpt2 --max-shard-bytes 12Q "$T/a"
expect 1 "$GB_BIN" init-model --preset no-such-model "$T/a"
has "unknown preset 'no-such-model'"
[ ! -e "$T/a" ] || fail "$T/a created by a failed command"

expect 0 "$GB_BIN" init-model --preset tiny-mistral "$T/mistral"
has "MistralForCausalLM"
for f in config.json generation_config.json tokenizer.json tokenizer_config.json \
    model-00001-of-00002.safetensors model-00002-of-00002.safetensors \
    model.safetensors.index.json; do
    [ -f "$T/mistral/$f" ] || fail "tiny-mistral: $f missing"
done
cmp -s "$T/mistral/config.json" ../data/fixture-models/tiny-mistral/config.json ||
    fail "config.json not copied verbatim"
cmp -s "$T/mistral/tokenizer.json" ../data/tokenizers/llama2/tokenizer.json ||
    fail "tokenizer.json is not the llama2 tokenizer"
ls "$T" | grep -q tmp && fail "temporary directory left behind"

# Existing output directories are never overwritten.
expect 1 "$GB_BIN" init-model --preset tiny-gpt2 "$T/mistral"
has "already exists"

# Same preset, --max-shard-bytes overriding fixture.json: one file, no index.
expect 0 "$GB_BIN" init-model --preset tiny-mistral --max-shard-bytes 1GB "$T/mistral1"
[ -f "$T/mistral1/model.safetensors" ] || fail "--max-shard-bytes 1GB: no model.safetensors"
[ ! -e "$T/mistral1/model.safetensors.index.json" ] || fail "--max-shard-bytes 1GB: index"
# Same seed, same bytes: the single file's data equals the concatenated shards' tensors is
# covered by test_random_weights; here the tokenizer and a seed change are checked.
cat >"$T/cfg.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32,
 "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4,
 "num_key_value_heads": 1, "vocab_size": 500, "tie_word_embeddings": false}
JSON
expect 0 "$GB_BIN" init-model --config "$T/cfg.json" --seed 7 --max-shard-bytes 20000 \
    --tokenizer llama3 "$T/mqa"
[ -f "$T/mqa/model.safetensors.index.json" ] || fail "sharded --config model: no index"
[ -f "$T/mqa/tokenizer.json" ] || fail "--tokenizer llama3: tokenizer.json missing"
expect 0 "$GB_BIN" init-model --config "$T/cfg.json" --seed 8 "$T/mqa8"
has "no --tokenizer"
[ ! -e "$T/mqa8/tokenizer.json" ] || fail "tokenizer written without --tokenizer"
expect 0 "$GB_BIN" init-model --config "$T/cfg.json" --seed 8 --tokenizer ../data/tokenizers/gpt2 \
    "$T/mqa8b"
cmp -s "$T/mqa8b/tokenizer.json" ../data/tokenizers/gpt2/tokenizer.json ||
    fail "--tokenizer DIR not copied"
cmp -s "$T/mqa8/model.safetensors" "$T/mqa8b/model.safetensors" || fail "not deterministic"

expect 1 "$GB_BIN" init-model --config "$T/cfg.json" --tokenizer no-such-tok "$T/b"
has "no-such-tok"
echo '{"model_type": "llama", "hidden_size": 30, "num_attention_heads": 4}' >"$T/bad.json"
expect 1 "$GB_BIN" init-model --config "$T/bad.json" "$T/b"
has "bad.json"
has "num_attention_heads"
echo '{"model_type": "falcon"}' >"$T/falcon.json"
expect 1 "$GB_BIN" init-model --config "$T/falcon.json" "$T/b"
has "falcon"
expect 1 "$GB_BIN" init-model --config "$T/missing.json" "$T/b"
has "missing.json"
[ ! -e "$T/b" ] || fail "$T/b created by a failed command"

rm -rf "$T"
[ "$fails" = 0 ] || { echo "$fails failure(s)" >&2; exit 1; }
echo "init-model e2e: ok"
