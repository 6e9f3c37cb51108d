#!/bin/sh
# Where the CUDA decode step's time goes, measured in the running kernel chain: the inter-token
# latency of the best config (batch 1, flash, kernelized, reduce-overhead; bench_cuda_generate
# "best") with one decode op class left out at a time (GB_CUDA_SKIP: its kernels are not
# launched, so the outputs are wrong but every other kernel does the same work), and the time
# each saves against the full step. Also GB_CUDA_PDL=0, and any variants (VAR=value words) in
# GB_BREAKDOWN_EXTRA.
#
#   bench/cuda_breakdown.sh BIN [model [s n]]    BIN: dir with bench_cuda_generate (a pack's bin/)
set -u
bin=$1
model=${2:-llama-3.2-1b}
S=${3:-128}
N=${4:-128}
itl() { # env assignments... -> median ITL in ms
    env "$@" "$bin/bench_cuda_generate" "$model" "$S" "$N" best 2>/dev/null |
        awk 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "itl_ms") c = i} NR == 2 {print $c}'
}
full=$(itl GB_CUDA_SKIP=)
printf '%-22s %9s %12s\n' variant itl_ms saved_us
printf '%-22s %9s %12s\n' full "$full" -
for v in "GB_CUDA_SKIP=norm" "GB_CUDA_SKIP=qkv" "GB_CUDA_SKIP=attn" "GB_CUDA_SKIP=o" \
    "GB_CUDA_SKIP=gate_up" "GB_CUDA_SKIP=down" "GB_CUDA_SKIP=head" \
    "GB_CUDA_SKIP=qkv,attn,o,gate_up,down" "GB_CUDA_SKIP=norm,qkv,attn,o,gate_up,down,head" \
    ${GB_BREAKDOWN_EXTRA:-} "GB_CUDA_PDL=0"; do
    t=$(itl "$v")
    printf '%-22s %9s %12s\n' "${v#GB_CUDA_}" "$t" "$(awk -v a="$full" -v b="$t" 'BEGIN {printf "%.1f", (a - b) * 1000}')"
done
