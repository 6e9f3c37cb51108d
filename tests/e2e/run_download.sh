#!/bin/sh
# Hugging Face ids: a model missing from the cache is downloaded from $HF_ENDPOINT (a local
# python3 http.server serving the Hub's URL layout) into HF_HUB_CACHE;
# then found offline (HF_HUB_OFFLINE=1) by revision and by commit.
set -eu
: "${GB_BIN:?}" "${GB_TEST_TMP:?}"
T="$GB_TEST_TMP"
rm -rf "$T" && mkdir -p "$T"
export XDG_CACHE_HOME="$T/cache" GENBENCH_NO_CEILINGS=1 HF_HUB_CACHE="$T/hf" HF_TOKEN=secret
SHA=0123456789abcdef0123456789abcdef01234567
"$GB_BIN" init-model --preset tiny-llama3 "$T/model" >/dev/null 2>&1
SRV="$T/srv"
mkdir -p "$SRV/api/models/org/tiny/revision" "$SRV/org/tiny/resolve/$SHA"
files=""
for f in "$T"/model/*; do
    b=$(basename "$f")
    cp "$f" "$SRV/org/tiny/resolve/$SHA/$b"
    files="$files{\"rfilename\": \"$b\"}, "
done
printf '{"id": "org/tiny", "sha": "%s", "siblings": [%s{"rfilename": "README.md"}]}' \
    "$SHA" "$files" >"$SRV/api/models/org/tiny/revision/main"
PORT=$((20000 + $$ % 20000))
python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$SRV" >"$T/server.log" 2>&1 &
SPID=$!
trap 'kill $SPID 2>/dev/null || true' EXIT
i=0
until python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/api/models/org/tiny/revision/main')" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 50 ] || { echo "server did not start"; cat "$T/server.log"; exit 1; }
    sleep 0.1
done
export HF_ENDPOINT="http://127.0.0.1:$PORT"
"$GB_BIN" run org/tiny --attn sdpa -n 3 -s 8 -w 0 -i 1 --no-gpu-monitoring -o "$T/out" \
    >/dev/null 2>"$T/err1.txt" || { echo "download run failed"; cat "$T/err1.txt"; exit 1; }
snap="$HF_HUB_CACHE/models--org--tiny/snapshots/$SHA"
test -f "$snap/config.json" && test -f "$snap/model.safetensors" && test -f "$snap/tokenizer.json" ||
    { echo "snapshot incomplete"; ls -R "$HF_HUB_CACHE"; exit 1; }
[ "$(cat "$HF_HUB_CACHE/models--org--tiny/refs/main")" = "$SHA" ] || { echo "refs/main"; exit 1; }
test ! -e "$snap/README.md" || { echo "README.md should not be fetched"; exit 1; }
ls -a "$snap" | grep -q part && { echo "temporary file left"; exit 1; }
kill $SPID
export HF_HUB_OFFLINE=1
for id in org/tiny "org/tiny@main" "org/tiny@$SHA"; do
    "$GB_BIN" run "$id" --attn sdpa -n 3 -s 8 -w 0 -i 1 --no-gpu-monitoring -o "$T/out" \
        >/dev/null 2>"$T/err2.txt" || { echo "offline $id failed"; cat "$T/err2.txt"; exit 1; }
done
rc=0
"$GB_BIN" run org/absent -n 3 -s 8 -w 0 -i 1 -o "$T/out" >/dev/null 2>"$T/err3.txt" || rc=$?
[ $rc -eq 1 ] && grep -q "HF_HUB_OFFLINE" "$T/err3.txt" || { echo "offline missing: $rc"; exit 1; }
echo ok
