/* genbench info: what this machine is and how fast it can go (product.md §2, issue 2 item 5).
 * The measured ceilings are the denominators of every results file's efficiency numbers. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/opt.h"
#include "bench/gpu_ceilings.h"
#include "bench/gpumon.h"
#include "bench/hwinfo.h"
#include "bench/machine.h"
#include "cli/cli.h"
#include "genbench.h"
#include "util/clock.h"

/* cJSON indents with tabs; genbench's JSON uses 4 spaces (product.md §5). Tabs inside
 * strings are escaped by cJSON, so every raw tab is formatting. */
static void print_json_4spaces(const char *text) {
    for (const char *p = text; *p; p++) {
        if (*p != '\t') {
            putchar(*p);
        } else if (p > text && p[-1] == ':') {
            putchar(' ');
        } else {
            fputs("    ", stdout);
        }
    }
    putchar('\n');
}

/* Prints o with 4-space indentation and deletes it; exit status 1 when it could not be
 * built (ok == 0) or printed. */
static int print_json_free(cJSON *o, int ok) {
    char *text = o && ok ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!text) {
        fprintf(stderr, "genbench info: out of memory\n");
        return 1;
    }
    print_json_4spaces(text);
    cJSON_free(text);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: genbench info [--json] [--measure | --no-measure | --fresh | --quick]\n"
            "                     [--threads N] [--gpu N]\n"
            "       genbench info --gpu-sample MS\n"
            "\n"
            "Shows the genbench version, CPU (model, cores, ISA features), memory, OS, compiler,\n"
            "CUDA availability (build and NVIDIA driver), and this machine's measured ceilings:\n"
            "memory read bandwidth (GB/s, 1 thread and all threads) and bf16 / fp32\n"
            "matrix-multiply peaks (GFLOP/s, 1 core and all cores); with a usable CUDA device,\n"
            "its ceilings too: device-to-device copy bandwidth (GB/s, read + write) and cuBLAS\n"
            "bf16 / fp16 / fp32 (no TF32) matmul peaks (TFLOP/s).\n"
            "\n"
            "The ceilings are measured once (a few seconds) and cached per machine (and per GPU\n"
            "name, driver and index) in $XDG_CACHE_HOME/genbench (or ~/.cache/genbench).\n"
            "\n"
            "options:\n"
            "  --json        print one JSON object on stdout\n"
            "  --measure     measure again; the cache keeps the best value of each ceiling over\n"
            "                all measurements (delete the cache file to start over)\n"
            "  --no-measure  never measure: show cached ceilings, or none\n"
            "  --fresh       measure now (full accuracy) and show only this measurement; the\n"
            "                cache is neither used nor changed (for benchmark scripts)\n"
            "  --quick       quick low-accuracy measurement (~0.3 s), not cached\n"
            "  --threads N   threads for the all-core numbers of --fresh / --quick\n"
            "                (default: every CPU this process may use)\n"
            "  --gpu N       CUDA device whose ceilings are shown (default 0)\n"
            "  --gpu-sample MS  run the GPU monitor (50 ms interval) for MS milliseconds and\n"
            "                print its samples as JSON (benchmark_v2's gpu_metrics shape)\n"
            "  -h, --help    this help\n");
}

/* The kernel family genbench's optimised CPU kernels use on this CPU (their own choice,
 * GB_CPU_ISA included). */
static const char *kernel_isa(void) {
    return gb_opt_isa_best()->name;
}

static void print_text(const gb_hwinfo *hw, const gb_machine_ceilings *c, int have_c,
                       const char *cache_note) {
    char feats[512];
    gb_isa_names(hw->isa, feats, sizeof feats);
    printf("genbench %s\n", hw->genbench_version);
    printf("cpu:        %s (%s)\n", hw->cpu_name, hw->cpu_vendor[0] ? hw->cpu_vendor : "?");
    printf("cores:      %d physical, %d logical online, %d usable by this process\n",
           hw->cpu_physical, hw->cpu_online, hw->cpu_logical);
    printf("isa:        %s\n", feats[0] ? feats : "(none detected)");
    printf("kernels:    %s\n", kernel_isa());
    printf("caches:     L1d %d KiB, L2 %d KiB, L3 %d KiB (as CPU 0 sees them)\n", hw->cache_l1d_kib,
           hw->cache_l2_kib, hw->cache_l3_kib);
    printf("memory:     %.1f GiB total, %.1f GiB available; transparent huge pages: %s\n",
           hw->memory_total_mb / 1024.0, hw->memory_available_mb / 1024.0,
           hw->thp[0] ? hw->thp : "unknown");
    printf("os:         %s, %s %s\n", hw->os[0] ? hw->os : "unknown", hw->kernel, hw->machine);
    printf("compiler:   %s\n", hw->compiler);
    if (hw->cuda_built)
        printf("cuda build: yes (CUDA %s)\n",
               hw->cuda_build_version[0] ? hw->cuda_build_version : "?");
    else
        printf("cuda build: no (CPU-only build)\n");
    if (!hw->nvml_loaded)
        printf("gpu:        none visible (NVIDIA driver / libnvidia-ml.so.1 not found)\n");
    else if (hw->gpu_count == 0)
        printf("gpu:        none visible (NVML found no device; driver %s)\n",
               hw->gpu_driver_version);
    else
        printf("gpu:        %d x %s, %lld MiB (GPU 0), driver %s, CUDA %s\n", hw->gpu_count,
               hw->gpu_name, (long long)hw->gpu_memory_total_mb, hw->gpu_driver_version,
               hw->cuda_driver_version[0] ? hw->cuda_driver_version : "?");
    if (!have_c) {
        printf("ceilings:   not measured (%s; run 'genbench info --measure')\n", cache_note);
        return;
    }
    if (c->quick)
        printf("ceilings:   quick measurement %s (low accuracy, not cached)\n", c->measured_at);
    else if (!c->from_cache && !cache_note[0])
        printf("ceilings:   fresh measurement %s (not cached)\n", c->measured_at);
    else
        printf("ceilings:   measured %s (best of %d measurement%s)\n", c->measured_at, c->runs,
               c->runs == 1 ? "" : "s");
    if (cache_note[0]) printf("            %s\n", cache_note);
    printf("  memory read   %8.1f GB/s      1 thread  %8.1f GB/s      %d threads  (%s%s)\n",
           c->read_bw_gbs_1t, c->read_bw_gbs_all, c->threads, c->bw_isa,
           c->huge_pages ? ", huge pages" : "");
    printf("  bf16 matmul   %8.1f GFLOP/s   1 core    %8.1f GFLOP/s   %d cores    (%s)\n",
           c->bf16_gflops_1t, c->bf16_gflops_all, c->threads,
           strcmp(c->bf16_isa, "avx2") ? c->bf16_isa
                                       : "avx2: bf16 widened to fp32, no AVX512_BF16 here");
    printf("  fp32 FMA      %8.1f GFLOP/s   1 core    %8.1f GFLOP/s   %d cores    (%s)\n",
           c->fp32_gflops_1t, c->fp32_gflops_all, c->threads, c->fp32_isa);
}

/* The ceilings of one CUDA device, as this invocation's mode asks (see gpu_ceilings()). */
typedef struct gpu_view {
    int device;
    int have;    /* c holds numbers */
    int present; /* the device exists (else note says why not) */
    int failed;  /* the device exists but could not be measured (exit status 1) */
    gb_gpu_ceilings c;
    char path[4096]; /* its cache file ("" without a device or for --fresh / --quick) */
    char note[1400]; /* why there are no numbers, or the cache file */
} gpu_view;

static void print_gpu_text(const gpu_view *g) {
    if (!g->present) {
        printf("gpu ceilings: no CUDA device (%s)\n", g->note);
        return;
    }
    const gb_gpu_ceilings *c = &g->c;
    if (!g->have) {
        printf("gpu ceilings: cuda:%d not measured (%s)\n", g->device, g->note);
        return;
    }
    if (c->quick)
        printf("gpu ceilings: cuda:%d, quick measurement %s (low accuracy, not cached)\n",
               g->device, c->measured_at);
    else if (!c->from_cache && !g->path[0])
        printf("gpu ceilings: cuda:%d, fresh measurement %s (not cached)\n", g->device,
               c->measured_at);
    else
        printf("gpu ceilings: cuda:%d, measured %s (best of %d measurement%s)\n", g->device,
               c->measured_at, c->runs, c->runs == 1 ? "" : "s");
    printf("            %s, compute %s, %.1f GiB, driver %s\n", c->gpu_name, c->compute_capability,
           c->memory_total_gib, c->driver_version);
    if (g->path[0]) printf("            cache: %s\n", g->path);
    printf("  device copy   %8.1f GB/s      (read + write, %.2f GiB device to device, median of "
           "%d)\n",
           c->copy_gbs, (double)c->copy_bytes / (double)(1u << 30), c->repeats);
    printf("  bf16 matmul   %8.1f TFLOP/s   (cuBLAS %d^3, fp32 accumulation, median of %d)\n",
           c->bf16_tflops, c->gemm_n, c->repeats);
    printf("  fp16 matmul   %8.1f TFLOP/s   (cuBLAS %d^3, fp32 accumulation)\n", c->fp16_tflops,
           c->gemm_n);
    printf("  fp32 matmul   %8.1f TFLOP/s   (cuBLAS %d^3, no TF32)\n", c->fp32_tflops, c->gemm_n);
}

/* Fills g for the mode: uncached (--fresh / --quick) measures now; no_measure reads the
 * cache only; otherwise the cache, measured (and cached) when missing or when measure. A
 * corrupt cache file is reported on stderr in one line. */
static void gpu_ceilings(gpu_view *g, int uncached, int quick, int no_measure, int measure) {
    gb_error err = {0};
    gb_gpu_ceilings id;
    if (gb_gpu_ceilings_identify(g->device, &id, &err)) {
        snprintf(g->note, sizeof g->note, "%s", err.msg);
        return;
    }
    g->present = 1;
    if (uncached) {
        g->have = gb_gpu_ceilings_measure(g->device, quick, &g->c, &err) == 0;
    } else {
        if (gb_gpu_ceilings_cache_path(&id, g->path, sizeof g->path, &err)) g->path[0] = 0;
        int rc = measure ? GB_ERR_NOT_FOUND : gb_gpu_ceilings_cached(NULL, g->device, &g->c, &err);
        g->have = rc == 0;
        if (rc == GB_ERR_FORMAT) fprintf(stderr, "genbench info: %s\n", err.msg);
        if (!g->have && no_measure) {
            snprintf(g->note, sizeof g->note, "no cached measurement");
            return;
        }
        if (!g->have) {
            fprintf(stderr,
                    "genbench info: measuring GPU %d's copy bandwidth and matmul peaks "
                    "(a few seconds)...\n",
                    g->device);
            g->have = gb_gpu_ceilings_get(NULL, g->device, measure, &g->c, &err) == 0;
            if (g->have && g->c.note[0]) fprintf(stderr, "genbench info: %s\n", g->c.note);
        }
    }
    if (!g->have) {
        g->failed = 1;
        snprintf(g->note, sizeof g->note, "measurement failed: %s", err.msg);
        fprintf(stderr, "genbench info: GPU %d ceilings: %s\n", g->device, err.msg);
    }
}

/* --gpu-sample: exercises the monitor on its own (NVML loading, sampling, JSON). */
static int gpu_sample(int ms) {
    gb_error err = {0};
    gb_gpumon *m;
    int64_t t0 = gb_clock_ns();
    if (gb_gpumon_start(&m, 50, &err)) {
        fprintf(stderr, "genbench info: %s\n", err.msg);
        return 1;
    }
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
    gb_gpumon_stop(m);
    cJSON *j = gb_gpumon_to_json(m, t0);
    gb_gpumon_free(m);
    return print_json_free(j, 1);
}

int gb_cli_info(int argc, char **argv) {
    int json = 0, measure = 0, no_measure = 0, quick = 0, fresh = 0, threads = 0, gpu = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--gpu-sample")) {
            char *end = NULL;
            long ms = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
            if (i + 1 >= argc || *end || ms < 0 || ms > 600000) {
                fprintf(stderr, "genbench info: --gpu-sample needs milliseconds in [0, 600000]\n");
                return 2;
            }
            return gpu_sample((int)ms);
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--measure")) {
            measure = 1;
        } else if (!strcmp(argv[i], "--no-measure")) {
            no_measure = 1;
        } else if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else if (!strcmp(argv[i], "--fresh")) {
            fresh = 1;
        } else if (!strcmp(argv[i], "--threads")) {
            char *end = NULL;
            long n = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
            if (i + 1 >= argc || *end || n < 1 || n > 1024) {
                fprintf(stderr, "genbench info: --threads needs a number in [1, 1024]\n");
                return 2;
            }
            threads = (int)n;
            i++;
        } else if (!strcmp(argv[i], "--gpu")) {
            char *end = NULL;
            long n = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
            if (i + 1 >= argc || *end || n < 0 || n > 4096) {
                fprintf(stderr, "genbench info: --gpu needs a device number in [0, 4096]\n");
                return 2;
            }
            gpu = (int)n;
            i++;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "genbench info: unknown option '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (no_measure + measure + quick + fresh > 1) {
        fprintf(stderr, "genbench info: choose one of --measure, --no-measure, --fresh, --quick\n");
        return 2;
    }
    if (threads && !quick && !fresh) {
        fprintf(stderr, "genbench info: --threads applies to --fresh or --quick only\n");
        return 2;
    }
    int uncached = quick || fresh;

    gb_error err = {0};
    gb_hwinfo hw;
    if (gb_hwinfo_collect(&hw, &err)) {
        fprintf(stderr, "genbench info: %s\n", err.msg);
        return 1;
    }

    gb_machine_ceilings c;
    int have_c = 0;
    char note[4200] = "";
    char path[4096] = "";
    if (gb_machine_cache_path(path, sizeof path, &err)) path[0] = 0;
    if (uncached) {
        gb_machine_opts o = {.quick = quick, .threads = threads};
        if (gb_machine_measure(&c, &o, &err)) {
            fprintf(stderr, "genbench info: %s\n", err.msg);
            return 1;
        }
        have_c = 1;
    } else if (no_measure) {
        have_c = gb_machine_ceilings_cached(&c, &err) == 0;
        snprintf(note, sizeof note, "%s", have_c ? "" : "no cached measurement");
    } else {
        int cached = !measure && gb_machine_ceilings_cached(&c, &err) == 0;
        if (!cached) {
            fprintf(stderr, "genbench info: measuring memory bandwidth and matrix peaks "
                            "(a few seconds)...\n");
            if (gb_machine_ceilings_get(&c, 1, &err)) {
                fprintf(stderr, "genbench info: %s\n", err.msg);
                return 1;
            }
        }
        have_c = 1;
    }
    if (have_c && !uncached && path[0]) snprintf(note, sizeof note, "cache: %s", path);

    gpu_view g;
    memset(&g, 0, sizeof g);
    g.device = gpu;
    gpu_ceilings(&g, uncached, quick, no_measure, measure);

    if (!json) {
        print_text(&hw, &c, have_c, note);
        print_gpu_text(&g);
        return g.failed;
    }
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddStringToObject(o, "genbench_version", gb_version()) &&
             gb_hwinfo_add_to_json(&hw, o, &err) == 0;
    cJSON *cuda = ok ? cJSON_AddObjectToObject(o, "cuda") : NULL;
    ok = ok && cuda && cJSON_AddBoolToObject(cuda, "built", hw.cuda_built) &&
         cJSON_AddBoolToObject(cuda, "nvml", hw.nvml_loaded) &&
         cJSON_AddNumberToObject(cuda, "devices", hw.gpu_count) &&
         cJSON_AddBoolToObject(cuda, "available", hw.cuda_built && hw.gpu_count > 0);
    ok = ok && cJSON_AddStringToObject(o, "kernels", kernel_isa()) &&
         cJSON_AddStringToObject(o, "ceilings_cache", path);
    if (ok && have_c) {
        cJSON *cj = gb_machine_to_json(&c);
        ok = cj && cJSON_AddBoolToObject(cj, "from_cache", c.from_cache) &&
             cJSON_AddBoolToObject(cj, "cached", !uncached);
        if (ok)
            cJSON_AddItemToObject(o, "ceilings", cj);
        else
            cJSON_Delete(cj);
    } else if (ok) {
        ok = cJSON_AddNullToObject(o, "ceilings") != NULL;
    }
    /* gpu_ceilings: null with the reason in gpu_ceilings_note when there is no device or no
     * measurement. */
    ok = ok && cJSON_AddStringToObject(o, "gpu_ceilings_cache", g.path) &&
         cJSON_AddStringToObject(o, "gpu_ceilings_note", g.have ? "" : g.note);
    if (ok && g.have) {
        cJSON *gj = gb_gpu_ceilings_to_json(&g.c);
        ok = gj && cJSON_AddBoolToObject(gj, "from_cache", g.c.from_cache) &&
             cJSON_AddBoolToObject(gj, "cached", !uncached);
        if (ok)
            cJSON_AddItemToObject(o, "gpu_ceilings", gj);
        else
            cJSON_Delete(gj);
    } else if (ok) {
        ok = cJSON_AddNullToObject(o, "gpu_ceilings") != NULL;
    }
    int rc = print_json_free(o, ok);
    return rc ? rc : g.failed;
}
