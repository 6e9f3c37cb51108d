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
# tolerances); tests/cuda/test_cuda_ceilings (the GPU ceilings of the results files, measured,
# checked for plausibility and cached); bench_cuda_kernels (copy bandwidth and cuBLAS GEMM
# ceilings, GEMV/GEMM/attention speeds); bench_cuda_sync (the latency of one kernel boundary,
# grid barrier and flag hand-off); bench_cuda_stream (read bandwidth, 64 and 512 MiB: warp loads
# against one block per SM with bulk copies); bench_cuda_generate (warm generations of random:llama-3.2-1b and
# random:llama-3.1-8b, bf16, s128 n128, batch 1/8/32, attention x kernel set x compile mode,
# and continuous batching (gb_generate_cb) of 8 and 32 requests: rows of mode "cb");
# one cold `genbench generate` end to end; a table last.
# Env: GB_BENCH_MODELS (default "llama-3.2-1b llama-3.1-8b"), GB_OUT (logs; default /tmp).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)

# the programs a run uses, relative to the build dir (pack copies them, a local run links them)
bins="genbench tests/test_cuda_kernels tests/test_cuda_engine tests/test_cuda_ceilings
    tests/bench_cuda_kernels tests/bench_cuda_generate tests/test_kernels_panel
    tests/test_kernels_opt bench/bench_cpu_kernels tests/bench_cuda_sync tests/bench_cuda_stream"

build() { # $1 = build dir
    GB_CUDA_TESTS=1 cmake -S "$here" -B "$1" -DGENBENCH_CUDA=ON -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
        >/dev/null || exit 1
    # keep going: whatever links is packed and run; failures are listed
    cmake --build "$1" -j"${GB_JOBS:-2}" -- -k >"$1/build.log" 2>&1 ||
        grep -E 'error|Error' "$1/build.log" | head -20 >&2
}

pack() { # $1 = out dir
    out=$1
    build "$here/build-cuda"
    rm -rf "$out"
    mkdir -p "$out/bin" "$out/lib"
    for f in $bins; do
        [ -f "$here/build-cuda/$f" ] && cp "$here/build-cuda/$f" "$out/bin/"
    done
    # shared libraries the GPU image may lack (not libc/libstdc++ and not the CUDA ones)
    for b in "$out"/bin/*; do ldd "$b"; done | awk '/=> \//{print $3}' | sort -u |
        grep -v -E '/(libc|libm|libdl|libpthread|librt|libresolv|libstdc\+\+|libgcc_s|ld-linux[^/]*|libcuda|libcudart|libcublas|libcublasLt)\.so' |
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
    # the CPU kernel tests too: the GPU host's CPU has AVX-512 BF16, the dev VM has not
    for t in test_cuda_kernels test_cuda_engine test_cuda_ceilings test_kernels_panel \
        test_kernels_opt; do
        [ -x "$bin/bin/$t" ] || { echo "$t: not built" >>"$summary"; continue; }
        t0=$(date +%s)
        (cd "$here/tests" && "$bin/bin/$t") >"$out/$t.log" 2>&1
        rc=$?
        grep -E 'CHECK failed|out of tolerance|error' "$out/$t.log" | head -20
        tail -2 "$out/$t.log"
        echo "$t: exit $rc ($(($(date +%s) - t0)) s)" >>"$summary"
        grep -E '^(full|quick): cuda' "$out/$t.log" >>"$summary"
        [ $rc -eq 0 ] || status=1
    done
    if [ -x "$bin/bin/bench_cuda_sync" ]; then
        # what one dependency costs: kernel boundary, grid barrier, flag hand-off (no weights)
        timeout 60 "$bin/bin/bench_cuda_sync" >"$out/bench_cuda_sync.log" 2>&1 || status=1
        cat "$out/bench_cuda_sync.log" >>"$summary"
    fi
    if [ -x "$bin/bin/bench_cuda_stream" ]; then
        # read bandwidth: many short blocks of warp loads vs one block per SM with bulk copies
        : >"$out/bench_cuda_stream.log"
        for mb in 64 512; do
            timeout 120 "$bin/bin/bench_cuda_stream" $mb >>"$out/bench_cuda_stream.log" 2>&1 || status=1
        done
        cat "$out/bench_cuda_stream.log" >>"$summary"
    fi
    if [ -x "$bin/bin/bench_cuda_kernels" ]; then
        "$bin/bin/bench_cuda_kernels" >"$out/bench_cuda_kernels.log" 2>&1 || status=1
        cat "$out/bench_cuda_kernels.log" >>"$summary"
    fi
    if [ -z "$quick" ] && [ -x "$bin/bin/bench_cuda_generate" ]; then
        # warm timings: model loaded once per kernel set, 2 warm-up + 5 timed generations
        first=1
        for m in ${GB_BENCH_MODELS:-llama-3.2-1b llama-3.1-8b}; do
            timeout "${GB_GEN_TIMEOUT:-300}" "$bin/bin/bench_cuda_generate" "$m" 128 128 \
                >"$out/gen-$m.txt" 2>"$out/gen-$m.err" || {
                status=1
                echo "bench_cuda_generate $m failed: $(tail -1 "$out/gen-$m.err")" >>"$summary"
            }
            if [ $first = 1 ]; then cat "$out/gen-$m.txt" >>"$summary"; else
                tail -n +2 "$out/gen-$m.txt" >>"$summary"; fi
            first=0
        done
    fi
    if [ -z "$quick" ] && [ -x "$bin/bin/bench_cuda_generate" ]; then
        # the best config's captured step replayed back to back: its device time next to the
        # ITL (what the host loop between steps adds)
        GB_BENCH_REPLAY=1 "$bin/bin/bench_cuda_generate" llama-3.2-1b 128 128 best 2>&1 |
            tail -1 >>"$summary"
        # the same best config with the kernel-per-op chain instead of the whole decode step
        # in one kernel (cuda_decode_step.cu; on by default for the shapes it takes)
        GB_CUDA_DECODE_STEP=0 "$bin/bin/bench_cuda_generate" llama-3.2-1b 128 128 best 2>&1 |
            tail -n +2 | sed 's/$/  (decode step off: the chain)/' >>"$summary"
        # the same best config without programmatic dependent launch (on by default)
        GB_CUDA_PDL=0 "$bin/bin/bench_cuda_generate" llama-3.2-1b 128 128 best 2>&1 |
            tail -n +2 | sed 's/$/  (PDL off)/' >>"$summary"
        # continuous batching with the unsplit reference paged attention (A/B of the split-KV
        # decode attention the cb rows above use)
        GB_CUDA_PAGED_SPLIT=0 "$bin/bin/bench_cuda_generate" llama-3.2-1b 128 128 cb 2>&1 |
            tail -n +2 | sed 's/$/  (paged split off)/' >>"$summary"
    fi
    if [ -z "$quick" ] && [ -x "$bin/bin/genbench" ]; then
        # the CLI end to end (cold: one generation, includes first-use costs)
        "$bin/bin/genbench" generate --model random:llama-3.2-1b --device cuda -s 128 -n 32 \
            --attn flash_attention_2 --kernelize --compile reduce-overhead --json \
            >"$out/cli.json" 2>"$out/cli.err" &&
            echo "cli generate (cold) ok: $(cut -c1-160 "$out/cli.json")" >>"$summary" || {
            status=1
            echo "cli generate failed: $(tail -1 "$out/cli.err")" >>"$summary"
        }
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
    for f in $bins; do
        [ -f "$here/build-cuda/$f" ] && ln -sf "$here/build-cuda/$f" "$here/build-cuda/pack/bin/"
    done
    run "$here/build-cuda/pack"
    ;;
*) echo "usage: bench/cuda.sh [pack DIR | run DIR [quick]]" >&2; exit 2 ;;
esac
