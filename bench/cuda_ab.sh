#!/bin/sh
# Interleaved A/B of decode variants in one device call: the best config (batch 1, flash,
# kernelized, reduce-overhead; bench_cuda_generate "best") of one model, once per variant per
# round, variants in turn so that drift of the machine hits all of them alike. A variant is a
# comma-separated list of environment assignments ("-" = none), e.g.
#
#   bench/cuda_ab.sh BIN llama-3.2-1b 3 - GB_CUDA_GEMV_KS=1,GB_CUDA_GATEUP_KS=1
#
# An assignment BIN=DIR in a variant runs that build's bench_cuda_generate instead (A/B of two
# builds in one call: bench/cuda_ab.sh NEW llama-3.2-1b 3 - BIN=/path/to/main/bin).
#
# BIN: dir with bench_cuda_generate (a pack's bin/). Prints one line per run, then per variant
# the median ITL and tokens/s.
set -u
bin=$1 model=$2 rounds=$3
shift 3
tmp=${TMPDIR:-/tmp}/gb-ab.$$
: >"$tmp"
r=1
while [ "$r" -le "$rounds" ]; do
    for v in "$@"; do
        vars=$(echo "$v" | tr ',' '\n' | grep -v '^BIN=' | tr '\n' ' ')
        [ "$v" = - ] && vars=
        vbin=$(echo "$v" | tr ',' '\n' | sed -n 's/^BIN=//p')
        # shellcheck disable=SC2086
        line=$(env $vars "${vbin:-$bin}/bench_cuda_generate" "$model" 128 128 best 2>/dev/null |
            awk 'NR == 1 {for (i = 1; i <= NF; i++) {if ($i == "itl_ms") c = i; if ($i == "tok/s") d = i}}
                 NR == 2 {print $c, $d}')
        echo "$v $line" | tee -a "$tmp" | awk -v m="$model" '{printf "%-14s %-50s itl %s ms %s tok/s\n", m, $1, $2, $3}'
    done
    r=$((r + 1))
done
echo "median over $rounds rounds ($model):"
for v in "$@"; do
    awk -v v="$v" '$1 == v {print $2, $3}' "$tmp" | sort -n | awk -v v="$v" -v m="$model" \
        '{a[NR] = $1; b[NR] = $2} END {i = int((NR + 1) / 2); printf "  %-14s %-50s itl %s ms  %s tok/s\n", m, v, a[i], b[i]}'
done
rm -f "$tmp"
