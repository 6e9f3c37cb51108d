#!/bin/sh
# GPU paths without a GPU: a stand-in libnvidia-ml (compiled here with the system C compiler)
# is loaded through GENBENCH_NVML_LIB; `genbench info` must report its device, driver and
# CUDA versions, and the GPU monitor must sample it on a 50 ms cadence.
set -eu
: "${GB_BIN:?}" "${GB_TEST_TMP:?}"
rm -rf "$GB_TEST_TMP"
mkdir -p "$GB_TEST_TMP"
export XDG_CACHE_HOME="$GB_TEST_TMP/xdg"
fail() { echo "FAIL: $*" >&2; exit 1; }
CC=${CC:-cc}
command -v "$CC" >/dev/null 2>&1 || { echo "no C compiler: skipped"; exit 0; }

cat >"$GB_TEST_TMP/fake_nvml.c" <<'C'
#include <stdint.h>
#include <stdio.h>
typedef struct { unsigned long long total, free, used; } mem_t;
typedef struct { unsigned gpu, memory; } util_t;
static unsigned calls, mcalls;
int nvmlInit_v2(void) { return 0; }
int nvmlDeviceGetCount_v2(unsigned *n) { *n = 2; return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned i, void **d) {
    *d = (void *)(uintptr_t)(i + 1);
    return i < 2 ? 0 : 2;
}
int nvmlDeviceGetName(void *d, char *b, unsigned n) {
    (void)d;
    snprintf(b, n, "NVIDIA Fake H100 80GB HBM3");
    return 0;
}
int nvmlDeviceGetMemoryInfo(void *d, mem_t *m) { /* used: 1 GiB + 1 MiB per call */
    (void)d;
    m->total = 80ull << 30;
    m->used = (1ull << 30) + (unsigned long long)mcalls++ * (1ull << 20);
    m->free = m->total - m->used;
    return 0;
}
int nvmlDeviceGetUtilizationRates(void *d, util_t *u) { /* 40, 41, ... per call */
    (void)d;
    u->gpu = 40 + (calls++ % 10);
    u->memory = 7;
    return 0;
}
int nvmlSystemGetDriverVersion(char *b, unsigned n) { snprintf(b, n, "550.54.15"); return 0; }
int nvmlSystemGetCudaDriverVersion(int *v) { *v = 12040; return 0; }
C
"$CC" -shared -fPIC -o "$GB_TEST_TMP/libfake-nvml.so" "$GB_TEST_TMP/fake_nvml.c" ||
    fail "cannot build the stand-in NVML"
export GENBENCH_NVML_LIB="$GB_TEST_TMP/libfake-nvml.so"

"$GB_BIN" info --json --no-measure >"$GB_TEST_TMP/info.json"
"$GB_BIN" info --no-measure >"$GB_TEST_TMP/info.txt"
grep -q "2 x NVIDIA Fake H100 80GB HBM3, 81920 MiB (GPU 0), driver 550.54.15, CUDA 12.4" \
    "$GB_TEST_TMP/info.txt" || { cat "$GB_TEST_TMP/info.txt"; fail "text gpu line"; }
"$GB_BIN" info --gpu-sample 300 >"$GB_TEST_TMP/mon.json"
GENBENCH_NO_NVML=1 "$GB_BIN" info --json --no-measure >"$GB_TEST_TMP/off.json"

node - "$GB_TEST_TMP" <<'JS'
const fs = require('fs');
const dir = process.argv[2];
const fail = (m) => { console.error('FAIL: ' + m); process.exit(1); };
const hw = JSON.parse(fs.readFileSync(dir + '/info.json', 'utf8')).hardware_info;
const want = {gpu_name: 'NVIDIA Fake H100 80GB HBM3', gpu_memory_total_mb: 81920,
              gpu_memory_total_gb: 80, gpu_count: 2, nvml_available: true,
              gpu_driver_version: '550.54.15', cuda_driver_version: '12.4'};
for (const [k, v] of Object.entries(want))
  if (hw[k] !== v) fail(`hardware_info.${k}: expected ${v}, got ${hw[k]}`);
const off = JSON.parse(fs.readFileSync(dir + '/off.json', 'utf8')).hardware_info;
if (off.gpu_name !== null || off.gpu_count !== 0) fail('GENBENCH_NO_NVML=1 still sees a GPU');
const m = JSON.parse(fs.readFileSync(dir + '/mon.json', 'utf8'));
if (m.monitoring_status !== 'success') fail('monitor status ' + m.monitoring_status);
const n = m.utilization.length;
// 300 ms at 50 ms: first sample, ~6 periodic ones, a final one (fewer if the machine is busy)
if (n < 3 || n > 9) fail('samples: ' + n);
if (m.memory_used.length !== n || m.timestamps.length !== n) fail('list lengths');
for (let i = 0; i < n; i++) {
  if (m.utilization[i] !== 40 + (i % 10)) fail(`utilization[${i}] = ${m.utilization[i]}`);
  const gb = (1024 + i) / 1024; // 1 GiB + i MiB, in GiB
  if (Math.abs(m.memory_used[i] - gb) > 1e-9) fail(`memory_used[${i}] = ${m.memory_used[i]}`);
  if (i > 0 && !(m.timestamps[i] > m.timestamps[i - 1])) fail('timestamps not increasing');
}
if (m.timestamps[0] !== 0 || !(m.timestamp_0 > 1.6e9)) fail('timestamp_0 / timestamps[0]');
const span = m.timestamps[n - 1];
if (!(span >= 0.29 && span < 5)) fail('span ' + span);
if (m.genbench.gpu_name !== 'NVIDIA Fake H100 80GB HBM3') fail('monitor gpu_name');
JS
echo "fake NVML e2e ok"
