#!/bin/sh
# Continuous batching through the CLI on the tiny-llama3 fixture model (float32, CPU):
# `--continuous-batching` and a config file with "continuous_batching": true both give
# results whose config says continuous_batching true and whose name ends in -cb, with no
# "static batch" note (the paged scheduler ran), the Hugging Face greedy text for every
# request, one timestamp per generated token, and the profile trace's prefill / decode steps.
set -eu
: "${GB_BIN:?}" "${GB_TEST_TMP:?}" "${GB_TEST_DATA:?}"
T="$GB_TEST_TMP"
rm -rf "$T" && mkdir -p "$T"
export XDG_CACHE_HOME="$T/cache" GENBENCH_NO_CEILINGS=1
cd "$T"

"$GB_BIN" run random:tiny-llama3 --device cpu --dtype float32 --attn sdpa --continuous-batching \
    -b 3 -s 37 -n 8 -w 0 -i 2 --no-gpu-monitoring -p 3 -o "$T/flag" --commit-id x \
    --branch-name b >"$T/flag.out" 2>"$T/flag.err" || { cat "$T/flag.err"; exit 1; }

cat >"$T/cfg.json" <<'JSON'
[{"warmup_iterations": 0, "measurement_iterations": 2, "gpu_monitoring": false,
  "continuous_batching": true, "batch_size": 2, "sequence_length": 128,
  "num_tokens_to_generate": 6, "attn_implementation": "eager", "kernelize": true,
  "device": "cpu", "dtype": "float32"}]
JSON
"$GB_BIN" run random:tiny-llama3 --config-file "$T/cfg.json" -o "$T/file" --commit-id x \
    --branch-name b >"$T/file.out" 2>"$T/file.err" || { cat "$T/file.err"; exit 1; }

python3 - "$T" "$GB_TEST_DATA" <<'PY'
import glob, json, os, sys
T, data = sys.argv[1], sys.argv[2]
ref = json.load(open(f"{data}/refs/tiny-llama3.ref.json"))
fails = []
def check(cond, msg):
    if not cond:
        fails.append(msg)
for run, b, n, full_prompt in (("flag", 3, 8, False), ("file", 2, 6, True)):
    files = glob.glob(f"{T}/{run}/random:tiny-llama3/*_benchmark_*.json")
    check(len(files) == 1, f"{run}: results files {files}")
    if not files:
        continue
    doc = json.load(open(files[0]))
    check(len(doc) == 1, f"{run}: {len(doc)} configs")
    e = next(iter(doc.values()))
    cfg, ms, gbm = e["config"], e["measurements"], e["genbench"]
    check(cfg["continuous_batching"] is True, f"{run}: continuous_batching {cfg['continuous_batching']}")
    check(cfg["name"].endswith("-cb"), f"{run}: name {cfg['name']}")
    check(cfg["batch_size"] == b and cfg["num_tokens_to_generate"] == n, f"{run}: shape")
    check(e["metadata"]["success"] is True and gbm["error"] is None, f"{run}: failed {gbm['error']}")
    notes = json.dumps(gbm.get("notes", []))
    check("static batch" not in notes, f"{run}: static-batch note {notes}")
    check(len(ms["e2e_latency"]) == 2, f"{run}: measurements")
    check(len(ms["timestamps"]) == 2, f"{run}: timestamps of {len(ms['timestamps'])} runs")
    for it in ms["timestamps"]:
        for row in it:
            check(len(row) == n and all(x < y for x, y in zip(row, row[1:])), f"{run}: stamps {row}")
    for s in ms["shape_and_decoded_outputs"]:
        head = f"({b}, {n}) | "
        check(s.startswith(head), f"{run}: shape {s!r}")
        # the 128-token prompt: the reference text; a truncated prompt: some text
        if full_prompt:
            check(ref["greedy32_text"].startswith(s[len(head):]) and len(s) > len(head) + 4,
                  f"{run}: decoded {s!r}")
    if run == "flag":
        tr = gbm["profile_trace"]
        check(tr and os.path.isfile(tr), f"trace {tr}")
        if tr and os.path.isfile(tr):
            names = [x["name"] for x in json.load(open(tr))["traceEvents"] if x.get("ph") == "X"]
            check("prefill" in names and names.count("decode step") == 2, f"trace steps {set(names)}")
err = open(f"{T}/flag.err").read()
check("paged KV cache" in err, "flag run: no continuous-batching log line")
if fails:
    print("\n".join(fails))
    sys.exit(1)
print("ok")
PY
