#!/bin/sh
# CPU speed benchmark (issue 6): the Llama-3.2-1B shape with random bf16 weights,
# batch 1, prompt 128, 128 new tokens, for the best configuration (kernelized, sdpa,
# static cache) on 2 and 1 threads, batch 8 (aggregate tok/s and its ratio to batch 1), and
# the default configuration (reference kernels, eager). Prints decode tok/s, TTFT, achieved
# GB/s and its share of the measured read bandwidth, prefill GFLOP/s and its share of the
# matrix peak (the runner's efficiency line), peak RSS, and the llama.cpp figures.
# Then the kernel-level benchmark (GEMV GB/s, batched-decode and prefill GEMM GFLOP/s next
# to a read loop and an FMA loop measured in the same program).
#
# Every run passes --device cpu: on a host with a GPU genbench's default device is CUDA.
#
# usage: bench/cpu.sh [build-dir]   (env: ITERS=3 WARMUP=1 QUICK=1 skips the default config;
#   FRESH=1 measures the CPU ceilings first, into a temporary cache whose models/ is the usual
#   one, so every efficiency line divides by ceilings measured in this run instead of the
#   cache's best-ever values: issue 6's "read ceiling measured in the same script")
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

echo "== peer (issue 6, llama.cpp 3f545bec on an AMD EPYC Zen 4 with AVX-512 BF16, not this host):"
echo "   2 threads: pp128 170.2 tok/s, tg128 20.28 tok/s (50 GB/s); 1 thread: pp128 92.4, tg128 11.50"

# median inter-token latency of the last run, in ms (the summary prints ns/us/ms/s)
itl_ms() {
    grep 'Inter-Token Latency' "$OUT.log" | sed -e 's/.*med=\([0-9.]*\)\([a-z]*\).*/\1 \2/' |
        awk '{ f = $2 == "s" ? 1000 : $2 == "us" ? 0.001 : $2 == "ns" ? 1e-6 : 1; print $1 * f }'
}

run() { # label, then genbench run options
    label=$1
    shift
    echo "-- $label: genbench run $MODEL $*   (load $(cut -d' ' -f1-3 /proc/loadavg))"
    /usr/bin/time -f 'peak RSS %M KiB' "$GB" run "$MODEL" -s 128 --device cpu --no-gpu-monitoring \
        -o "$OUT" "$@" >"$OUT.log" 2>&1 || { tail -5 "$OUT.log"; return 0; }
    grep -E 'Time to First Token|Inter-Token Latency|Throughput|decode:|peak RSS' "$OUT.log" |
        sed -e 's/std=.*med=/med=/' -e 's/p90=.*//' -e 's/^ */   /'
}

mkdir -p "$OUT"
if [ -n "${FRESH:-}" ]; then
    cache=${XDG_CACHE_HOME:-$HOME/.cache}
    fresh=$(mktemp -d "${TMPDIR:-/tmp}/genbench-cpu-ceilings.XXXXXX")
    trap 'rm -rf "$fresh"' EXIT
    mkdir -p "$fresh/genbench" "$cache/genbench/models"
    ln -s "$cache/genbench/models" "$fresh/genbench/models"
    export XDG_CACHE_HOME="$fresh"
    echo "-- ceilings measured now (genbench info --measure, cache $fresh)"
    "$GB" info --measure 2>&1 | grep -E 'memory read|bf16 matmul|fp32 FMA'
fi
run "best, 2 threads" -b 1 -n 128 -w "$WARMUP" -i "$ITERS" --kernelize --attn sdpa --compile default --threads 2
ITL1=$(itl_ms)
# this host's 2-thread ceilings, as the run's efficiency line states them
READ2=$(sed -n 's/.*decode:.* of the \([0-9.]*\) GB\/s measured.*/\1/p' "$OUT.log" | head -1)
PEAK2=$(sed -n 's/.*prefill:.* of the \([0-9.]*\) GFLOP\/s.*/\1/p' "$OUT.log" | head -1)
run "best, 1 thread" -b 1 -n 128 -w "$WARMUP" -i "$ITERS" --kernelize --attn sdpa --compile default --threads 1
# batched decode: weights read once per step for all 8 sequences (issue 6: >= 6x batch 1)
run "best, batch 8, 2 threads" -b 8 -n 32 -w 0 -i "$ITERS" --kernelize --attn sdpa --compile default --threads 2
ITL8=$(itl_ms)
if [ -n "$ITL1" ] && [ -n "$ITL8" ]; then
    awk -v a="$ITL1" -v b="$ITL8" 'BEGIN { printf "   batch 8 aggregate decode %.1f tok/s = %.2fx batch 1 (%.1f tok/s), 2 threads\n", 8000 / b, (8000 / b) / (1000 / a), 1000 / a }'
fi
# What this host allows at all (issue 6's figures were set on a Zen 4 with AVX-512 BF16):
# a decoded token reads 2.47 GB and costs 2.47 GFLOP (lm_head included), a prompt token
# 1.96 GFLOP; a batch-8 step takes at least the longer of its arithmetic at the peak and one
# read of the weights.
if [ -n "$READ2" ] && [ -n "$PEAK2" ]; then
    awk -v r="$READ2" -v f="$PEAK2" -v a="${ITL1:-0}" 'BEGIN {
        printf "== this host at 100 %% of its 2-thread ceilings (%.1f GB/s read, %.1f GFLOP/s): decode <= %.1f tok/s (issue: 20.3), prefill <= %.0f tok/s (issue: 200)", r, f, r / 2.47, f / 1.96
        step = 8 * 2.47 / f; if (2.47 / r > step) step = 2.47 / r
        if (a > 0) printf ", batch 8 <= %.1fx batch 1 (issue: 6x)", 8 * a / 1000 / step
        printf "\n" }'
fi
if [ -z "${QUICK:-}" ]; then
    run "default (reference kernels, eager), 2 threads" -b 1 -n 128 -w 0 -i 1 --attn eager --threads 2
fi

if [ -x "$BUILD/bench/bench_cpu_kernels" ]; then
    echo "-- kernels: bench_cpu_kernels 5 2 BF16"
    "$BUILD/bench/bench_cpu_kernels" 5 2 BF16
fi
