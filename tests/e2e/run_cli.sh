#!/bin/sh
# genbench run --help documents every flag of product.md §6; usage errors exit 2 with a
# message; a missing model names the places searched and exits 1; --format csv/md/jsonl put
# only the table on stdout.
set -eu
: "${GB_BIN:?}" "${GB_TEST_TMP:?}"
T="$GB_TEST_TMP"
rm -rf "$T" && mkdir -p "$T"
export XDG_CACHE_HOME="$T/cache" GENBENCH_NO_CEILINGS=1 HF_HUB_CACHE="$T/hf"
# Nothing listens on port 9: a download attempt fails at once.
export HF_ENDPOINT=http://127.0.0.1:9
cd "$T"
"$GB_BIN" run --help >"$T/help.txt"
for f in --model-id -w --warmup -i --iterations -b --batch-size -s --sequence-length -n \
    --num-tokens-to-generate --level --config-file -p --num-tokens-to-profile --branch-name \
    --commit-id --commit-message --no-gpu-monitoring -o --output-dir --log-level --attn \
    --compile --kernelize --device --dtype --threads --format; do
    grep -q -- "$f" "$T/help.txt" || { echo "help lacks $f"; exit 1; }
done
for bad in "-n 1" "--format xml" "--level x" "--bogus" "-b"; do
    rc=0
    # shellcheck disable=SC2086
    "$GB_BIN" run random:tiny-llama3 $bad >/dev/null 2>"$T/err.txt" || rc=$?
    [ "$rc" -eq 2 ] && [ -s "$T/err.txt" ] || { echo "'$bad': exit $rc"; exit 1; }
done
rc=0
"$GB_BIN" run org/missing-model -n 2 -i 1 -w 0 -o "$T/out" >/dev/null 2>"$T/err.txt" || rc=$?
[ "$rc" -eq 1 ] && grep -q "models--org--missing-model" "$T/err.txt" ||
    { echo "missing model: exit $rc"; cat "$T/err.txt"; exit 1; }
for fmt in csv md jsonl; do
    "$GB_BIN" run random:tiny-llama3 --attn sdpa -n 3 -s 8 -w 0 -i 2 --no-gpu-monitoring \
        -o "$T/out" --format $fmt >"$T/t.$fmt" 2>/dev/null
done
head -1 "$T/t.csv" | grep -q "^model_id,config,hash,success," || { echo "csv header"; exit 1; }
[ "$(wc -l <"$T/t.csv")" -eq 2 ] || { echo "csv rows"; exit 1; }
grep -q "^| model_id | config |" "$T/t.md" || { echo "md header"; exit 1; }
python3 -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; assert len(r)==1 and r[0]['success'] is True, r" "$T/t.jsonl"
echo ok
