#!/bin/sh
# genbench run on the tiny-llama3 fixture model (float32, batch 1 and 2): results file schema and key order,
# hash = SHA-256 of Python's json.dumps(config), counts, statistics recomputed from the raw
# lists (numpy-style percentiles), token timestamps, decoded text equal to Hugging Face's
# greedy output (tests/data/refs), git metadata of the current repository, the Chrome trace,
# and --format json on stdout with logs on stderr. Python 3 is the independent checker.
set -eu
: "${GB_BIN:?}" "${GB_TEST_TMP:?}" "${GB_TEST_DATA:?}"
T="$GB_TEST_TMP"
rm -rf "$T" && mkdir -p "$T"
export XDG_CACHE_HOME="$T/cache" GENBENCH_NO_CEILINGS=1

# A git repository to run from (branch, commit id and subject are read without git).
REPO="$T/repo"
git init -q -b bench-branch "$REPO"
(cd "$REPO" && echo x > f && git add f &&
    git -c user.name=t -c user.email=t@t commit -q -m "Speed up decode" -m "details")
COMMIT=$(git -C "$REPO" rev-parse HEAD)

cd "$REPO"
"$GB_BIN" run random:tiny-llama3 --dtype float32 --attn sdpa -b 1,2 -s 128 -n 8 -w 0 -i 3 \
    --no-gpu-monitoring -p 2 -o "$T/out" --format json >"$T/stdout.json" 2>"$T/stderr.txt" ||
    { cat "$T/stderr.txt"; exit 1; }
cd "$T"

python3 - "$T" "$GB_TEST_DATA" "$COMMIT" <<'PY'
import glob, hashlib, json, math, os, sys
T, data, commit = sys.argv[1], sys.argv[2], sys.argv[3]
fails = []
def check(cond, msg):
    if not cond:
        fails.append(msg)

files = glob.glob(f"{T}/out/random:tiny-llama3/random:tiny-llama3_benchmark_*.json")
check(len(files) == 1, f"expected one results file, got {files}")
text = open(files[0]).read()
pairs = json.loads(text, object_pairs_hook=lambda p: p)   # keeps key order
doc = json.loads(text)
check(len(doc) == 2, f"expected 2 configs, got {len(doc)}")
check('\n    "' in text and '"e2e_latency": [' in text, "4-space indentation / inline numeric arrays")
ref = json.load(open(f"{data}/refs/tiny-llama3.ref.json"))

def pct(v, q):  # numpy.percentile, method "linear"
    s = sorted(v); r = q / 100 * (len(s) - 1); lo = math.floor(r); hi = math.ceil(r)
    return s[lo] + (s[hi] - s[lo]) * (r - lo)

for h, entry in pairs:
    keys = [k for k, _ in entry]
    check(keys == ["metadata", "measurements", "config", "statistics", "genbench"], f"entry keys {keys}")
    e = doc[h]
    md, ms, cfg = e["metadata"], e["measurements"], e["config"]
    check([k for k, _ in dict(entry)["metadata"]] == ["model_id", "timestamp", "branch_name", "commit_id",
          "commit_message", "hardware_info", "success"], "metadata key order")
    check([k for k, _ in dict(entry)["measurements"]] == ["e2e_latency", "time_to_first_token",
          "inter_token_latency", "shape_and_decoded_outputs", "gpu_metrics", "timestamps"],
          "measurements key order")
    check([k for k, _ in dict(entry)["config"]] == ["name", "warmup_iterations", "measurement_iterations",
          "gpu_monitoring", "continuous_batching", "batch_size", "sequence_length", "num_tokens_to_generate",
          "attn_implementation", "compile_kwargs", "kernelize", "device", "dtype", "threads"], "config key order")
    check(hashlib.sha256(json.dumps(cfg).encode()).hexdigest() == h, f"hash of {cfg['name']}")
    check(md["success"] is True, f"success {md}")
    check(md["commit_id"] == commit, f"commit {md['commit_id']} != {commit}")
    check(md["branch_name"] == "bench-branch", f"branch {md['branch_name']}")
    check(md["commit_message"] == "Speed up decode", f"subject {md['commit_message']}")
    check(md["hardware_info"]["cpu_count"] >= 1, "hardware_info")
    n, b = cfg["num_tokens_to_generate"], cfg["batch_size"]
    check(cfg["warmup_iterations"] == 0 and cfg["measurement_iterations"] == 3, "w/i")
    for k in ("e2e_latency", "time_to_first_token", "inter_token_latency", "shape_and_decoded_outputs"):
        check(len(ms[k]) == 3, f"{k} has {len(ms[k])} values")
    check(ms["gpu_metrics"] is None, "gpu_metrics should be null without monitoring")
    for i, ts in enumerate(ms["timestamps"]):
        row = ts[0]
        check(len(row) == n, f"{len(row)} token timestamps, expected {n}")
        check(all(x <= y for x, y in zip(row, row[1:])), "timestamps increase")
        check(abs(row[0] - ms["time_to_first_token"][i]) < 1e-12, "ttft = first stamp")
        check(abs((row[-1] - row[0]) / (n - 1) - ms["inter_token_latency"][i]) < 1e-12, "itl")
        check(row[-1] <= ms["e2e_latency"][i], "last token before e2e end")
    gbm = e["genbench"]
    plen = gbm["prompt"]["prompt_length"]
    check(plen == 128, f"prompt length {plen}")
    series = {"e2e_latency": ms["e2e_latency"], "time_to_first_token": ms["time_to_first_token"],
              "inter_token_latency": ms["inter_token_latency"],
              "throughput": [b * n / x for x in ms["e2e_latency"]],
              "decode_throughput": [b / x for x in ms["inter_token_latency"]],
              "prefill_throughput": [b * plen / x for x in ms["time_to_first_token"]]}
    for name, v in series.items():
        st = e["statistics"][name]
        mean = sum(v) / len(v)
        want = {"mean": mean, "std": math.sqrt(sum((x - mean) ** 2 for x in v) / len(v)),
                "min": min(v), "max": max(v), "median": pct(v, 50), "p90": pct(v, 90),
                "p95": pct(v, 95), "p99": pct(v, 99)}
        for k, w in want.items():
            check(abs(st[k] - w) <= 1e-9 * max(1, abs(w)), f"{name}.{k}: {st[k]} != {w}")
        check(st["count"] == 3, "count")
    # Greedy output equals transformers' (float32 reference, margins > 1e-3): the decoded
    # first n tokens are a prefix of the reference's 32-token text.
    for s in ms["shape_and_decoded_outputs"]:
        head = f"({b}, {n}) | "
        check(s.startswith(head) and len(s) > len(head) + 8 and
              ref["greedy32_text"].startswith(s[len(head):]), f"decoded: {s!r}")
    check(gbm["error"] is None, "error null")
    wu = gbm["warmup"]
    check(wu["warmup_e2e_latency"] == [] and wu["validation_e2e_latency"] > 0 and
          0 < wu["validation_time_to_first_token"] < wu["validation_e2e_latency"], f"warmup {wu}")
    tr = gbm["profile_trace"]
    check(tr and os.path.isfile(tr), f"trace {tr}")
    if tr and os.path.isfile(tr):
        ev = json.load(open(tr))["traceEvents"]
        xs = [x for x in ev if x["ph"] == "X"]
        check(len(xs) >= 3, f"trace slices {len(xs)}")
        check(all(x["dur"] >= 0 and x["ts"] >= 0 for x in xs), "trace times")

# --format json: stdout holds exactly the table, one row per config.
rows = json.load(open(f"{T}/stdout.json"))
check(len(rows) == 2 and all(r["success"] is True for r in rows), f"stdout table {rows}")
check(set(r["hash"] for r in rows) == set(doc), "table hashes")
err = open(f"{T}/stderr.txt").read()
check("Results saved to" in err, "logs on stderr")
if fails:
    print("\n".join(fails)); sys.exit(1)
print("ok")
PY
