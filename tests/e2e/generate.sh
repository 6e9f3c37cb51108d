#!/bin/sh
# genbench generate end to end: tokenizer + engine on random:tiny-llama3 in float32 give
# transformers' 32 greedy tokens (tests/data/refs/tiny-llama3.ref.json, greedy32_fp32);
# batch 2 repeats them; --dump-logits writes vocab_size floats; bad input fails cleanly.
set -eu
: "${GB_BIN:?}" "${GB_TEST_TMP:?}"
mkdir -p "$GB_TEST_TMP"
export XDG_CACHE_HOME="$GB_TEST_TMP/cache"
out="$GB_TEST_TMP/gen.json"
want='6362, 75823, 102495, 13972, 8191, 92811, 77365, 21402, 9801, 84678, 62877, 73695, 54907, 10521, 25425, 72721, 101115, 25233, 25425, 48547, 86277, 6362, 76787, 4955, 58625, 25425, 67054, 127891, 101949, 71221, 88693, 72896'

"$GB_BIN" generate --model random:tiny-llama3 --dtype float32 --attn eager -n 32 -b 2 --json \
    --device cpu --dump-logits "$GB_TEST_TMP/logits.f32" >"$out"
grep -q "\"generated_ids\": \[\[$want\], \[$want\]\]" "$out" || {
    echo "expected generated_ids [[$want] x2], got:"; cat "$out"; exit 1; }
grep -q '"prompt_ids": \[128000, 791, 8753, 22910' "$out" || { echo "bad prompt_ids"; cat "$out"; exit 1; }
grep -q '"ttft_s": [0-9.]*, "itl_s": [0-9.]*}' "$out" || { echo "no timings"; cat "$out"; exit 1; }
size=$(wc -c <"$GB_TEST_TMP/logits.f32")
[ "$size" -eq $((128256 * 4)) ] || { echo "dump-logits: expected 513024 bytes, got $size"; exit 1; }

# static cache + kernelized + flash, plain text output
"$GB_BIN" generate --model random:tiny-llama3 --dtype float32 --attn flash_attention_2 \
    --compile default --kernelize -n 4 --device cpu --prompt "Hello world" >"$GB_TEST_TMP/gen.txt"
[ -s "$GB_TEST_TMP/gen.txt" ] || { echo "no text printed"; exit 1; }

# errors: one line, non-zero status
if "$GB_BIN" generate --model "$GB_TEST_TMP/nope" 2>"$GB_TEST_TMP/err.txt"; then
    echo "missing model should fail"; exit 1; fi
grep -q "nope" "$GB_TEST_TMP/err.txt" || { echo "error should name the model:"; cat "$GB_TEST_TMP/err.txt"; exit 1; }
if "$GB_BIN" generate --model random:tiny-llama3 --attn bogus 2>/dev/null; then
    echo "bad --attn should fail"; exit 1; fi
echo "generate e2e ok"
