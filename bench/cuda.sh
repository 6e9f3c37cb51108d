#!/bin/sh
# CUDA correctness tests, ceilings and speed benchmarks in one run on a GPU machine.
#
#   bench/cuda.sh                 build (build-cuda/, Release, CUDA on) and run everything here
#   bench/cuda.sh pack DIR        build here and collect the binaries + non-system shared
#                                 libraries into DIR (for a GPU machine without the build deps)
#   bench/cuda.sh run DIR [quick] run from a packed DIR (quick: kernel test + kernel bench only)
#
# Run steps: GPU name/memory/driver; tests/cuda/test_cuda_kernels (every CUDA op against the CPU
# reference ops); tests/cuda/test_cuda_engine (fixture references through the engine, issue 4
# tolerances); bench_cuda_kernels (copy bandwidth and cuBLAS bf16 GEMM ceilings, GEMV/GEMM/
# attention speeds); `genbench generate` on random:llama-3.2-1b and random:llama-3.1-8b, bf16,
# s128 n128, batch 1/8/32, several attention/compile configs; a table last.
# Env: GB_BENCH_MODELS (default "llama-3.2-1b llama-3.1-8b"), GB_OUT (logs; default /tmp).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)

build() { # $1 = build dir
    GB_CUDA_TESTS=1 cmake -S "$here" -B "$1" -DGENBENCH_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
        >/dev/null || exit 1
    # keep going: whatever links is packed and run; failures are listed
    cmake --build "$1" -j"${GB_JOBS:-2}" -- -k >"$1.log" 2>&1 ||
        grep -E 'error|Error' "$1.log" | head -20 >&2
}

pack() { # $1 = out dir
    out=$1
    build "$here/build-cuda"
    rm -rf "$out"
    mkdir -p "$out/bin" "$out/lib"
    for f in build-cuda/genbench build-cuda/tests/test_cuda_kernels \
        build-cuda/tests/test_cuda_engine build-cuda/tests/bench_cuda_kernels; do
        [ -f "$here/$f" ] && cp "$here/$f" "$out/bin/"
    done
    # shared libraries the GPU image may lack (not libc/libstdc++ and not the CUDA ones)
    for b in "$out"/bin/*; do ldd "$b"; done | awk '/=> \//{print $3}' | sort -u |
        grep -v -E '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|ld-linux[^/]*|libcuda|libcudart|libcublas|libcublasLt)\.so' |
        while read -r l; do cp -L "$l" "$out/lib/"; done
    du -sh "$out"
}

run() { # $1 = pack dir (bin/ lib/) or build dir layout, $2 = quick
    bin=$1
    quick=${2:-}
    out=${GB_OUT:-/tmp}
    mkdir -p "$out"
    export LD_LIBRARY_PATH="$bin/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
    export GB_TEST_DATA="$here/tests/data" GB_TEST_TMP=/tmp/gb-cuda-tests GB_CUDA_TESTS=1
    mkdir -p "$GB_TEST_TMP"
    card=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)
    echo "card: $card"
    summary="$out/cuda-summary.txt"
    : >"$summary"
    status=0
    for t in test_cuda_kernels test_cuda_engine; do
        [ -x "$bin/bin/$t" ] || { echo "$t: not built" >>"$summary"; continue; }
        t0=$(date +%s)
        (cd "$here/tests" && "$bin/bin/$t") >"$out/$t.log" 2>&1
        rc=$?
        grep -E 'CHECK failed|out of tolerance|error' "$out/$t.log" | head -20
        tail -2 "$out/$t.log"
        echo "$t: exit $rc ($(($(date +%s) - t0)) s)" >>"$summary"
        [ $rc -eq 0 ] || status=1
    done
    if [ -x "$bin/bin/bench_cuda_kernels" ]; then
        "$bin/bin/bench_cuda_kernels" >"$out/bench_cuda_kernels.log" 2>&1 || status=1
        cat "$out/bench_cuda_kernels.log" >>"$summary"
    fi
    if [ -z "$quick" ] && [ -x "$bin/bin/genbench" ]; then
        gen="$bin/bin/genbench"
        printf '%-14s %-5s %-32s %9s %9s %10s\n' model batch config ttft_ms itl_ms tok/s \
            >>"$summary"
        for m in ${GB_BENCH_MODELS:-llama-3.2-1b llama-3.1-8b}; do
            for cfg in "b1 eager" "b1 sdpa" "b1 flash_attention_2" \
                "b1 flash_attention_2 --kernelize" \
                "b1 flash_attention_2 --kernelize --compile default" \
                "b1 sdpa --compile reduce-overhead" \
                "b1 flash_attention_2 --kernelize --compile reduce-overhead" \
                "b8 flash_attention_2 --kernelize --compile reduce-overhead" \
                "b32 flash_attention_2 --kernelize --compile reduce-overhead"; do
                set -- $cfg
                b=${1#b}
                shift
                attn=$1
                shift
                log="$out/gen-$m-b$b-$attn$(echo "$*" | tr -c 'a-z0-9' '_').json"
                timeout "${GB_GEN_TIMEOUT:-300}" "$gen" generate --model "random:$m" \
                    --device cuda -s 128 -n 128 -b "$b" --dtype bfloat16 --attn "$attn" "$@" \
                    --json >"$log" 2>"$log.err"
                rc=$?
                if [ $rc -ne 0 ]; then
                    status=1
                    printf '%-14s %-5s %-32s failed: %s\n' "$m" "$b" "$attn $*" \
                        "$(tail -1 "$log.err")" >>"$summary"
                    continue
                fi
                python3 - "$log" "$m" "$b" "$attn $*" >>"$summary" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
t, i, b = d["ttft_s"] * 1e3, d["itl_s"] * 1e3, int(sys.argv[3])
print("%-14s %-5s %-32s %9.2f %9.3f %10.1f" % (sys.argv[2], sys.argv[3], sys.argv[4], t, i,
                                                b * 1e3 / i if i > 0 else 0))
EOF
            done
        done
    fi
    echo "==== summary ($card)"
    cat "$summary"
    return $status
}

case "${1:-}" in
pack) pack "${2:?pack DIR}" ;;
run) run "${2:?run DIR}" "${3:-}" ;;
"")
    build "$here/build-cuda"
    mkdir -p "$here/build-cuda/pack"
    rm -rf "$here/build-cuda/pack/bin"
    mkdir -p "$here/build-cuda/pack/bin"
    for f in genbench tests/test_cuda_kernels tests/test_cuda_engine tests/bench_cuda_kernels; do
        [ -f "$here/build-cuda/$f" ] && ln -sf "$here/build-cuda/$f" "$here/build-cuda/pack/bin/"
    done
    run "$here/build-cuda/pack"
    ;;
*) echo "usage: bench/cuda.sh [pack DIR | run DIR [quick]]" >&2; exit 2 ;;
esac
