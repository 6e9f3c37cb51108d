#!/bin/sh
# Error isolation and duplicates: a corrupt model between two good ones is recorded as failed
# (success false + error text) while the others complete, the exit status is 1; an invalid
# config in the middle of a config file fails alone; duplicate configs (same hash after the
# validity rules: flex_attention -> sdpa) are skipped; results files are complete JSON.
set -eu
: "${GB_BIN:?}" "${GB_TEST_TMP:?}"
T="$GB_TEST_TMP"
rm -rf "$T" && mkdir -p "$T"
export XDG_CACHE_HOME="$T/cache" GENBENCH_NO_CEILINGS=1
cd "$T"

# A corrupt copy of the fixture model: the safetensors file cut in half.
"$GB_BIN" init-model --preset tiny-llama3 "$T/good" >/dev/null 2>&1
test -f "$T/good/config.json" || { echo "init-model failed"; exit 1; }
cp -r "$T/good" "$T/corrupt"
st="$T/corrupt/model.safetensors"
size=$(wc -c <"$st")
head -c $((size / 2)) "$st" >"$st.cut" && mv "$st.cut" "$st"

rc=0
"$GB_BIN" run "$T/good" "$T/corrupt" random:tiny-llama3 --attn sdpa,flex_attention -n 4 -s 16 \
    -w 0 -i 2 --no-gpu-monitoring -o "$T/out" >"$T/stdout.txt" 2>"$T/stderr.txt" || rc=$?
[ "$rc" -eq 1 ] || { echo "exit status $rc, expected 1"; cat "$T/stderr.txt"; exit 1; }
grep -q "Skipping duplicate config" "$T/stderr.txt" || { echo "no duplicate skipped"; exit 1; }
grep -q "config(s) failed" "$T/stderr.txt" || { echo "no failure summary"; exit 1; }

# A config file with an out-of-range config in the middle.
cat >"$T/configs.jsonl" <<'J'
{"attn_implementation": "sdpa", "num_tokens_to_generate": 4}
{"attn_implementation": "sdpa", "num_tokens_to_generate": 1}
{"attn_implementation": "eager", "num_tokens_to_generate": 3}
J
rc=0
"$GB_BIN" run "$T/good" --config-file "$T/configs.jsonl" -s 16 -w 0 -i 2 --no-gpu-monitoring \
    -o "$T/out2" >/dev/null 2>"$T/stderr2.txt" || rc=$?
[ "$rc" -eq 1 ] || { echo "config file: exit status $rc, expected 1"; cat "$T/stderr2.txt"; exit 1; }

python3 - "$T" <<'PY'
import glob, json, sys
T = sys.argv[1]
fails = []
def check(c, m):
    if not c: fails.append(m)
def load(pattern):
    f = glob.glob(pattern)
    check(len(f) == 1, f"{pattern}: {f}")
    return json.load(open(f[0])) if f else {}
good = load(f"{T}/out/*good/*_benchmark_*.json")
bad = load(f"{T}/out/*corrupt/*_benchmark_*.json")
rnd = load(f"{T}/out/random:tiny-llama3/*_benchmark_*.json")
for name, d in (("good", good), ("random", rnd)):
    check(len(d) == 1, f"{name}: {len(d)} entries (flex_attention duplicates sdpa)")
    for e in d.values():
        check(e["metadata"]["success"] is True, f"{name} failed: {e['genbench']['error']}")
        check(len(e["measurements"]["e2e_latency"]) == 2, "2 iterations")
        check(any("flex_attention" in n for n in e["genbench"]["notes"]) or
              e["config"]["attn_implementation"] == "sdpa", "sdpa")
check(len(bad) == 1, f"corrupt: {len(bad)} entries")
for e in bad.values():
    check(e["metadata"]["success"] is False, "corrupt model must fail")
    err = e["genbench"]["error"] or ""
    check("model.safetensors" in err, f"error names the file: {err!r}")
    check(e["measurements"]["e2e_latency"] == [], "no measurements for a failed config")
d2 = load(f"{T}/out2/*good/*_benchmark_*.json")
ok = [e["metadata"]["success"] for e in d2.values()]
check(ok == [True, False, True], f"config file successes {ok}")
errs = [e["genbench"]["error"] for e in d2.values()]
check(errs[1] and "num_tokens_to_generate" in errs[1], f"range error {errs[1]!r}")
if fails:
    print("\n".join(fails)); sys.exit(1)
print("ok")
PY
