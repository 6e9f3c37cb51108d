#!/bin/sh
# Round trip through genbench compare: a results file against itself (no change, p = 1),
# two directories (matching configs, configs on one side only), every --format, bad input.
set -eu
: "${GB_BIN:?}" "${GB_TEST_TMP:?}"
T="$GB_TEST_TMP"
rm -rf "$T" && mkdir -p "$T"
export XDG_CACHE_HOME="$T/cache" GENBENCH_NO_CEILINGS=1
cd "$T"
"$GB_BIN" run random:tiny-llama3 --attn sdpa,eager -n 3 -s 8 -w 0 -i 4 --no-gpu-monitoring \
    -o "$T/a" >/dev/null 2>&1
"$GB_BIN" run random:tiny-llama3 --attn sdpa --kernelize -n 3 -s 8 -w 0 -i 4 \
    --no-gpu-monitoring -o "$T/b" >/dev/null 2>&1
"$GB_BIN" run random:tiny-llama3 --attn sdpa -n 3 -s 8 -w 0 -i 4 --no-gpu-monitoring \
    -o "$T/b" >/dev/null 2>&1
F=$(ls "$T"/a/*/*_benchmark_*.json)
"$GB_BIN" compare "$F" "$F" --format json >"$T/self.json" 2>/dev/null
"$GB_BIN" compare "$T/a" "$T/b" --format jsonl >"$T/ab.jsonl" 2>/dev/null
"$GB_BIN" compare "$T/a" "$T/b" >"$T/ab.md" 2>/dev/null
"$GB_BIN" compare "$T/a" "$T/b" --format csv >"$T/ab.csv" 2>/dev/null
rc=0
"$GB_BIN" compare "$T/a" "$T/nothing" >/dev/null 2>"$T/err.txt" || rc=$?
[ "$rc" -eq 2 ] || { echo "missing input: exit $rc"; exit 1; }
echo '{"broken": ' >"$T/broken_benchmark_x.json"
rc=0
"$GB_BIN" compare "$F" "$T/broken_benchmark_x.json" >/dev/null 2>"$T/err2.txt" || rc=$?
[ "$rc" -eq 2 ] && grep -q "broken_benchmark_x.json" "$T/err2.txt" || { echo "bad file: $rc"; exit 1; }

python3 - "$T" "$F" <<'PY'
import csv, json, sys
T, F = sys.argv[1], sys.argv[2]
fails = []
def check(c, m):
    if not c: fails.append(m)
res = json.load(open(F))
rows = json.load(open(f"{T}/self.json"))
check(len(rows) == 2 * 4, f"self: {len(rows)} rows")
for r in rows:
    check(r["change_pct"] == 0 and r["significant"] == "no" and r["p_value"] > 0.99, f"self row {r}")
    e = res[r["hash"]]
    key = {"e2e_latency": "e2e_latency", "time_to_first_token": "time_to_first_token",
           "inter_token_latency": "inter_token_latency"}.get(r["metric"])
    if key:
        v = sorted(e["measurements"][key]); med = (v[1] + v[2]) / 2
        check(abs(r["a_median"] - med) < 1e-12, f"median {r['a_median']} != {med}")
ab = [json.loads(l) for l in open(f"{T}/ab.jsonl")]
verdicts = [r["verdict"] for r in ab]
check(verdicts.count("only in A") == 1 and verdicts.count("only in B") == 1, f"verdicts {verdicts}")
check(sum(1 for r in ab if r["metric"] == "throughput") == 1, "one matched config")
check(all(r["p_value"] is None or 0 <= r["p_value"] <= 1 for r in ab), "p values")
md = open(f"{T}/ab.md").read().splitlines()
check(md[0].startswith("| model_id | config |") and len(md) == 2 + len(ab), "markdown table")
rows = list(csv.DictReader(open(f"{T}/ab.csv")))
check(len(rows) == len(ab), "csv rows")
if fails:
    print("\n".join(fails)); sys.exit(1)
print("ok")
PY
