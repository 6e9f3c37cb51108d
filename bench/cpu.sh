#!/bin/sh
# CPU speed benchmark (issue 6): the Llama-3.2-1B shape with random bf16 weights,
# batch 1, prompt 128, 128 new tokens, for the best configuration (kernelized, sdpa,
# static cache) on 2 and 1 threads, batch 8, and the default configuration (reference
# kernels, eager). Prints decode tok/s, TTFT, achieved GB/s and its share of the measured
# read bandwidth, prefill GFLOP/s and its share of the matrix peak (the runner's efficiency
# line), and peak RSS. Then the kernel-level benchmark (GEMV GB/s and GEMM GFLOP/s next to
# a read loop and an FMA loop measured in the same program).
#
# usage: bench/cpu.sh [build-dir]   (env: ITERS=3 WARMUP=1 QUICK=1 skips the default config)
# Timings on a shared 2-core machine are noisy: the runner reports medians; run the script
# when the machine is otherwise idle and record `uptime` with the numbers.
set -eu
BUILD=${1:-build}
GB=$BUILD/genbench
ITERS=${ITERS:-3}
WARMUP=${WARMUP:-1}
OUT=${TMPDIR:-/tmp}/genbench-cpu-bench
MODEL=random:llama-3.2-1b
[ -x "$GB" ] || { echo "bench/cpu.sh: $GB not built" >&2; exit 1; }

echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(uname -m)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "== load: $(cut -d' ' -f1-3 /proc/loadavg)   isa flags: $(grep -o -w -E 'avx512_bf16|avx512f|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"

run() { # label, then genbench run options
    label=$1
    shift
    echo "-- $label: genbench run $MODEL -b ... $*"
    /usr/bin/time -f 'peak RSS %M KiB' "$GB" run "$MODEL" -s 128 -n 128 --no-gpu-monitoring \
        -o "$OUT" "$@" >"$OUT.log" 2>&1 || { tail -5 "$OUT.log"; return 0; }
    grep -E 'Time to First Token|Inter-Token Latency|Throughput|decode:|peak RSS' "$OUT.log" |
        sed -e 's/std=.*med=/med=/' -e 's/^ */   /'
}

mkdir -p "$OUT"
run "best, 2 threads" -b 1 -w "$WARMUP" -i "$ITERS" --kernelize --attn sdpa --compile default --threads 2
run "best, 1 thread" -b 1 -w "$WARMUP" -i "$ITERS" --kernelize --attn sdpa --compile default --threads 1
run "best, batch 8, 2 threads" -b 8 -w 0 -i "$ITERS" --kernelize --attn sdpa --compile default --threads 2
if [ -z "${QUICK:-}" ]; then
    run "default (reference kernels, eager), 2 threads" -b 1 -w 0 -i 1 --attn eager --threads 2
fi

if [ -x "$BUILD/bench/bench_cpu_kernels" ]; then
    echo "-- kernels: bench_cpu_kernels 5 2 BF16"
    "$BUILD/bench/bench_cpu_kernels" 5 2 BF16
fi
