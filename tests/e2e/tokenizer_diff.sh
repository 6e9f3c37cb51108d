#!/bin/sh
# Differential tokenizer test against Hugging Face's own implementation: the npm package
# `tokenizers` (the Rust core through napi) encodes and decodes a few thousand generated strings
# (random Unicode from many scripts, emoji, whitespace runs, digits, special-token text, long
# words; fixed seed) with each bundled tokenizer, and genbench must agree on every one.
# The excluded character classes (Unicode-version differences) are documented in
# tokenizer_diff.js. No network means no oracle: the test then FAILS, it does not skip.
#
# Env (set by CTest): GB_BIN (genbench), GB_TEST_TMP (scratch dir under the build tree).
# Optional: GB_TOKDIFF_COUNT (strings per bundled tokenizer, default 2500),
# GB_TOKDIFF_VARIANT_COUNT (per synthetic variant, default 1200), GB_TOKDIFF_SEED.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${GB_BIN:?GB_BIN is not set}
tmp=${GB_TEST_TMP:-/tmp/genbench-test/e2e_tokenizer_diff}
count=${GB_TOKDIFF_COUNT:-2500}
seed=${GB_TOKDIFF_SEED:-20261128}
version=0.23.2
mkdir -p "$tmp"

command -v node >/dev/null 2>&1 || { echo "FAIL: node is not installed"; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "FAIL: npm is not installed"; exit 1; }

# The npm package lives in the build tree, installed once and reused.
npmdir=$tmp/npm
if [ ! -f "$npmdir/node_modules/tokenizers/package.json" ] ||
   ! grep -q "\"version\": \"$version\"" "$npmdir/node_modules/tokenizers/package.json"; then
    mkdir -p "$npmdir"
    [ -f "$npmdir/package.json" ] || echo '{"name":"genbench-tokdiff","private":true}' > "$npmdir/package.json"
    if ! (cd "$npmdir" && npm install --no-audit --no-fund --loglevel=error "tokenizers@$version"); then
        echo "FAIL: npm install tokenizers@$version failed (no network?); the oracle is required"
        exit 1
    fi
fi
export NODE_PATH="$npmdir/node_modules"

node "$here/tokenizer_diff.js" gen "$seed" "$count" > "$tmp/cases.jsonl"

# The SentencePiece-style file once more as `tokenizers` reads it raw (legacy Prepend/Replace
# normalizer), without the transformers LlamaTokenizer rebuild.
raw=$tmp/llama2-raw
mkdir -p "$raw"
cp "$root/data/tokenizers/llama2/tokenizer.json" "$raw/"
echo '{"bos_token": "<s>", "eos_token": "</s>"}' > "$raw/tokenizer_config.json"

# Synthetic variants: the components the bundled files do not use (Split behaviours, Digits,
# Metaspace, NFKC/NFD/Lowercase/Strip/StripAccents/Replace, added-token lstrip/rstrip/
# single_word/normalized, unk without byte fallback, subword prefix/suffix, more decoders).
variants=$(node "$here/tokenizer_diff.js" variants "$root" "$tmp/variants")
head -n "${GB_TOKDIFF_VARIANT_COUNT:-1200}" "$tmp/cases.jsonl" > "$tmp/cases-variants.jsonl"

check() { # name dir cases
    if ! "$bin" tokenize --model "$2" --jsonl "$3" > "$tmp/$1.ours.jsonl"; then
        echo "FAIL: genbench tokenize --jsonl failed for $1"
        return 1
    fi
    node "$here/tokenizer_diff.js" check "$2" "$3" "$tmp/$1.ours.jsonl"
}

status=0
for name in gpt2 llama2 llama3 qwen3; do
    check "$name" "$root/data/tokenizers/$name" "$tmp/cases.jsonl" || status=1
done
check llama2-raw "$raw" "$tmp/cases.jsonl" || status=1
for name in $variants; do
    check "$name" "$tmp/variants/$name" "$tmp/cases-variants.jsonl" || status=1
done
exit $status
