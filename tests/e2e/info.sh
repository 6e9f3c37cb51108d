#!/bin/sh
# genbench info: --help, --json parses and has the documented keys, the ceilings cache is
# written by a measurement and reused by --no-measure, bad options fail cleanly.
set -eu
: "${GB_BIN:?}" "${GB_TEST_TMP:?}"
rm -rf "$GB_TEST_TMP"
mkdir -p "$GB_TEST_TMP"
export XDG_CACHE_HOME="$GB_TEST_TMP/xdg"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$GB_BIN" info --help | grep -q "usage: genbench info" || fail "--help"
if "$GB_BIN" info --bogus 2>"$GB_TEST_TMP/err"; then fail "--bogus accepted"; fi
grep -q "unknown option '--bogus'" "$GB_TEST_TMP/err" || fail "no message for --bogus"

# No cache yet: --no-measure reports null ceilings.
"$GB_BIN" info --json --no-measure >"$GB_TEST_TMP/nomeasure.json"
# Quick measurement (never cached).
"$GB_BIN" info --json --quick >"$GB_TEST_TMP/quick.json"
if ls "$XDG_CACHE_HOME"/genbench/machine-*.json >/dev/null 2>&1; then fail "quick result cached"; fi
"$GB_BIN" info --quick --threads 1 >"$GB_TEST_TMP/quick.txt"
grep -q "1 threads" "$GB_TEST_TMP/quick.txt" || fail "--threads 1 not applied"
if "$GB_BIN" info --threads 1 2>/dev/null; then fail "--threads without --fresh/--quick"; fi
if "$GB_BIN" info --quick --measure 2>/dev/null; then fail "--quick with --measure"; fi
grep -q "^cpu: " "$GB_TEST_TMP/quick.txt" || fail "text output lacks cpu line"
grep -q "memory read" "$GB_TEST_TMP/quick.txt" || fail "text output lacks bandwidth"
# GPU ceilings: a line in every case; without a device it says so (exit status 0).
grep -q "^gpu ceilings: " "$GB_TEST_TMP/quick.txt" || fail "text output lacks gpu ceilings"
if "$GB_BIN" info --gpu x 2>/dev/null; then fail "--gpu x accepted"; fi
if "$GB_BIN" info --quick --gpu 4000 >"$GB_TEST_TMP/gpu4000.txt"; then :; else
    fail "--gpu 4000 (no such device) must not fail"
fi
grep -q "^gpu ceilings: no CUDA device (" "$GB_TEST_TMP/gpu4000.txt" || fail "--gpu 4000 line"

node - "$GB_TEST_TMP" <<'JS'
const fs = require('fs');
const dir = process.argv[2];
const fail = (m) => { console.error('FAIL: ' + m); process.exit(1); };
const none = JSON.parse(fs.readFileSync(dir + '/nomeasure.json', 'utf8'));
const q = JSON.parse(fs.readFileSync(dir + '/quick.json', 'utf8'));
for (const o of [none, q]) {
  for (const k of ['genbench_version', 'hardware_info', 'cuda', 'kernels', 'ceilings'])
    if (!(k in o)) fail('missing key ' + k);
  const hw = o.hardware_info;
  for (const k of ['gpu_name', 'gpu_memory_total_gb', 'cuda_version', 'cpu_count',
                   'memory_total_mb', 'cpu_name', 'cpu_physical_cores', 'cpu_features', 'os',
                   'kernel', 'compiler', 'cuda_built', 'gpu_count', 'gpu_driver_version'])
    if (!(k in hw)) fail('hardware_info lacks ' + k);
  if (!(hw.cpu_count >= 1) || !(hw.memory_total_mb > 0)) fail('cpu_count/memory_total_mb');
  if (!Array.isArray(hw.cpu_features)) fail('cpu_features not an array');
  if (typeof o.cuda.built !== 'boolean' || typeof o.cuda.available !== 'boolean') fail('cuda');
  for (const k of ['gpu_ceilings_cache', 'gpu_ceilings_note', 'gpu_ceilings'])
    if (!(k in o)) fail('missing key ' + k);
  if (!o.cuda.available) {
    if (o.gpu_ceilings !== null) fail('gpu_ceilings without a GPU');
    if (!/without CUDA|no usable GPU|does not exist/.test(o.gpu_ceilings_note))
      fail('gpu_ceilings_note: ' + o.gpu_ceilings_note);
  }
}
if (q.cuda.available) {
  const g = q.gpu_ceilings;
  if (!g || g.quick !== true || !(g.copy_gbs > 0) || !(g.bf16_tflops > 0)) fail('quick GPU');
}
if (none.ceilings !== null) fail('--no-measure without cache must give null ceilings');
const c = q.ceilings;
for (const k of ['read_bw_gbs_1t', 'read_bw_gbs_all', 'bf16_gflops_1t', 'bf16_gflops_all',
                 'fp32_gflops_1t', 'fp32_gflops_all', 'threads', 'measured_at', 'bf16_isa'])
  if (!(k in c)) fail('ceilings lack ' + k);
if (!(c.read_bw_gbs_1t > 0 && c.read_bw_gbs_1t < 10000)) fail('bandwidth ' + c.read_bw_gbs_1t);
if (!(c.bf16_gflops_1t > 0 && c.fp32_gflops_all > 0)) fail('peaks');
if (c.quick !== true) fail('--quick must be marked quick');
// Plant a cache from these numbers; --no-measure must then report exactly them.
const planted = Object.assign({}, c, {quick: false, format: 2, read_bw_gbs_1t: 12.5});
delete planted.from_cache; delete planted.cached;
fs.mkdirSync(require('path').dirname(q.ceilings_cache), {recursive: true});
fs.writeFileSync(q.ceilings_cache, JSON.stringify(planted));
fs.writeFileSync(dir + '/planted_path', q.ceilings_cache);
JS
"$GB_BIN" info --json --no-measure >"$GB_TEST_TMP/cached.json"
"$GB_BIN" info --no-measure | grep -q "12.5 GB/s" || fail "text output ignores the cache"
node - "$GB_TEST_TMP" <<'JS'
const fs = require('fs');
const dir = process.argv[2];
const fail = (m) => { console.error('FAIL: ' + m); process.exit(1); };
const o = JSON.parse(fs.readFileSync(dir + '/cached.json', 'utf8'));
if (!o.ceilings || o.ceilings.from_cache !== true) fail('cache not used');
if (o.ceilings.read_bw_gbs_1t !== 12.5) fail('cached value ' + o.ceilings.read_bw_gbs_1t);
JS
rm -f "$(cat "$GB_TEST_TMP/planted_path")"
[ "$(grep -c "$(printf '\t')" "$GB_TEST_TMP/quick.json")" -eq 0 ] || fail "JSON indented with tabs"
echo "info e2e ok"
