/* Hardware description of the machine genbench runs on: CPU, memory, OS, compiler and (when
 * the NVIDIA driver is installed) GPU. Written into every results file as `hardware_info`
 * and shown by `genbench info`.
 *
 * GPU fields come from NVML, loaded at run time with dlopen("libnvidia-ml.so.1"); there is
 * no build dependency, and a machine without the driver simply reports gpu_count = 0. */
#ifndef GB_BENCH_HWINFO_H
#define GB_BENCH_HWINFO_H

#include <stdint.h>

#include "genbench.h"

typedef struct cJSON cJSON;

/* CPU instruction-set features genbench cares about (bit flags of gb_hwinfo.isa). */
enum gb_isa {
    GB_ISA_SSE42 = 1u << 0,
    GB_ISA_AVX = 1u << 1,
    GB_ISA_AVX2 = 1u << 2,
    GB_ISA_FMA = 1u << 3,
    GB_ISA_F16C = 1u << 4,
    GB_ISA_AVX512F = 1u << 5,
    GB_ISA_AVX512BW = 1u << 6,
    GB_ISA_AVX512VL = 1u << 7,
    GB_ISA_AVX512DQ = 1u << 8,
    GB_ISA_AVX512VNNI = 1u << 9,
    GB_ISA_AVX512BF16 = 1u << 10,
    GB_ISA_AVX512FP16 = 1u << 11,
    GB_ISA_AMX_BF16 = 1u << 12,
};

/* Bit mask of enum gb_isa supported by this CPU *and* enabled by the OS (XSAVE state),
 * detected once (thread-safe) with __builtin_cpu_supports / cpuid. */
unsigned gb_isa_flags(void);

/* Space-separated lower-case names of the set bits, e.g. "avx2 fma f16c avx512f ...". */
void gb_isa_names(unsigned flags, char *buf, int bufsize);

typedef struct gb_hwinfo {
    /* CPU */
    char cpu_name[128];  /* /proc/cpuinfo "model name", e.g. "AMD EPYC 9B14" */
    char cpu_vendor[32]; /* "AuthenticAMD", "GenuineIntel", ... */
    int cpu_logical;     /* logical CPUs this process may run on (affinity mask) */
    int cpu_online;      /* logical CPUs online in the machine */
    int cpu_physical;    /* physical cores (distinct core ids); = cpu_online if unknown */
    unsigned isa;        /* gb_isa_flags() */
    int cache_l1d_kib;   /* per-core L1 data cache (sysfs, CPU 0); 0 if unknown */
    int cache_l2_kib;    /* L2 of CPU 0 */
    int cache_l3_kib;    /* L3 that CPU 0 sees (shared by its core complex) */
    /* memory */
    int64_t memory_total_mb;     /* MemTotal / 2^20 bytes */
    int64_t memory_available_mb; /* MemAvailable at collection time */
    /* system */
    char os[128];      /* /etc/os-release PRETTY_NAME, e.g. "Debian GNU/Linux 12 (bookworm)" */
    char kernel[160];  /* uname: sysname release, e.g. "Linux 6.1.0-18-amd64" */
    char machine[72];  /* uname machine, e.g. "x86_64" */
    char hostname[72]; /* uname nodename */
    char compiler[96]; /* compiler that built genbench, e.g. "gcc 12.2.0" */
    char thp[16];      /* transparent huge pages mode: "always", "madvise", "never", "" */
    char genbench_version[32];
    /* CUDA / GPU */
    int cuda_built;               /* 1 when this genbench was built with the CUDA backend */
    char cuda_build_version[16];  /* CUDA runtime the build used, e.g. "12.4"; "" if none */
    int nvml_loaded;              /* 1 when libnvidia-ml.so.1 was found and initialised */
    int gpu_count;                /* NVIDIA devices visible through NVML; 0 without NVML */
    char gpu_name[96];            /* device 0, e.g. "NVIDIA H100 80GB HBM3"; "" if none */
    int64_t gpu_memory_total_mb;  /* device 0 total memory / 2^20 bytes; 0 if none */
    char gpu_driver_version[32];  /* e.g. "550.54.15" */
    char cuda_driver_version[16]; /* highest CUDA the driver supports, e.g. "12.4" */
} gb_hwinfo;

/* Fills *out. Never fails for missing optional information (empty strings / zeros);
 * returns 0, or an error only when nothing at all can be read (e.g. no /proc). */
int gb_hwinfo_collect(gb_hwinfo *out, gb_error *err);

/* benchmark_v2-compatible `hardware_info` object (new cJSON; caller frees with
 * cJSON_Delete). Keys kept from benchmark_v2: gpu_name, gpu_memory_total_gb,
 * gpu_memory_total_mb, cuda_version, cpu_count, memory_total_mb (GPU keys are null when there
 * is no GPU, as in benchmark_v2). Keys added by genbench: genbench_version, cpu_name,
 * cpu_vendor, cpu_physical_cores, cpu_usable (affinity mask), cpu_features (array of strings),
 * cache_l1d_kib, cache_l2_kib, cache_l3_kib, transparent_hugepages, os, kernel, machine, hostname,
 * compiler, cuda_built, nvml_available, gpu_count, gpu_driver_version, cuda_driver_version.
 * cpu_count = online CPUs. python_version/torch_version have no meaning here and are omitted.
 * Returns NULL only on out-of-memory. */
cJSON *gb_hwinfo_to_json(const gb_hwinfo *hw);

/* Adds the object above to parent under key "hardware_info". Returns 0 or GB_ERR_NOMEM. */
int gb_hwinfo_add_to_json(const gb_hwinfo *hw, cJSON *parent, gb_error *err);

#endif
