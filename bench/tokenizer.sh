#!/bin/sh
# Tokenizer speed: tokenizer.json load time and encode throughput (MB/s, 1e6 bytes) on a ~1 MB
# mixed text (prose, C source, generated multilingual/emoji text), genbench side by side with
# Hugging Face `tokenizers` (npm package, Rust core via napi) on the same input.
# Each encode is one call on the whole text with special tokens; best of REPS runs.
#
# usage: bench/tokenizer.sh [BUILD_DIR] [REPS]     (default build, 5)
# Prints a markdown table; record results in docs/performance.md ("Tokenizer").
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
reps=${2:-5}
bin=$build/genbench
version=0.23.2
[ -x "$bin" ] || { echo "no genbench at $bin (build first)"; exit 1; }

npmdir=$build/bench-npm
if [ ! -f "$npmdir/node_modules/tokenizers/package.json" ]; then
    mkdir -p "$npmdir"
    [ -f "$npmdir/package.json" ] || echo '{"name":"genbench-bench","private":true}' > "$npmdir/package.json"
    (cd "$npmdir" && npm install --no-audit --no-fund --loglevel=error "tokenizers@$version")
fi
export NODE_PATH="$npmdir/node_modules"

text=$build/bench-mixed.txt
node "$root/bench/tokenizer_bench.js" mktext "$root" "$text"
bytes=$(wc -c < "$text")
echo "input: $bytes bytes of mixed text; best of $reps encodes; $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo
echo "| tokenizer | file MB | genbench load s | HF load s | genbench encode MB/s | HF encode MB/s | tokens (genbench = HF) |"
echo "|---|---|---|---|---|---|---|"
field() { sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p"; }
for name in qwen3 llama3 gpt2 llama2; do
    dir=$root/data/tokenizers/$name
    ours=$("$bin" tokenize --model "$dir" --file "$text" --bench "$reps")
    hf=$(node "$root/bench/tokenizer_bench.js" hf "$dir" "$text" "$reps")
    size=$(awk "BEGIN { printf \"%.1f\", $(wc -c < "$dir/tokenizer.json") / 1e6 }")
    ot=$(echo "$ours" | field tokens); ht=$(echo "$hf" | field tokens)
    same=$([ "$ot" = "$ht" ] && echo "$ot" || echo "$ot vs $ht DIFFER")
    echo "| $name | $size | $(echo "$ours" | field load_s) | $(echo "$hf" | field load_s) |" \
         "$(echo "$ours" | field mb_per_s) | $(echo "$hf" | field mb_per_s) | $same |"
done
