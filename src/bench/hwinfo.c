#define _GNU_SOURCE /* sched_getaffinity, CPU_* macros, pthread_setaffinity_np */
#include "bench/hwinfo.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#if defined(GB_HAVE_CUDA) && defined(__has_include)
#if __has_include(<cuda_runtime_api.h>)
#include <cuda_runtime_api.h>
#endif
#endif

#include "bench/nvml.h"
#include "util/error.h"

/* ---- ISA ---------------------------------------------------------------------------- */

static unsigned isa_cached;
static pthread_once_t isa_once = PTHREAD_ONCE_INIT;

static void isa_detect(void) {
    unsigned f = 0;
#if defined(__x86_64__) || defined(__i386__)
    /* __builtin_cpu_supports checks both the CPU and the OS-enabled register state (XCR0),
     * so an AVX-512 CPU under an OS that does not save zmm state reports no AVX-512. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) f |= GB_ISA_SSE42;
    if (__builtin_cpu_supports("avx")) f |= GB_ISA_AVX;
    if (__builtin_cpu_supports("avx2")) f |= GB_ISA_AVX2;
    if (__builtin_cpu_supports("fma")) f |= GB_ISA_FMA;
    if (__builtin_cpu_supports("avx512f")) f |= GB_ISA_AVX512F;
    if (__builtin_cpu_supports("avx512bw")) f |= GB_ISA_AVX512BW;
    if (__builtin_cpu_supports("avx512vl")) f |= GB_ISA_AVX512VL;
    if (__builtin_cpu_supports("avx512dq")) f |= GB_ISA_AVX512DQ;
    if (__builtin_cpu_supports("avx512vnni")) f |= GB_ISA_AVX512VNNI;
    if (__builtin_cpu_supports("avx512bf16")) f |= GB_ISA_AVX512BF16;
    /* F16C, AVX512-FP16 and AMX-BF16 straight from cpuid (not every compiler knows the
     * names); they only count when the matching AVX / AVX-512 state is enabled. */
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) && (f & GB_ISA_AVX)) f |= GB_ISA_F16C;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        if ((d & (1u << 23)) && (f & GB_ISA_AVX512F)) f |= GB_ISA_AVX512FP16;
        if (d & (1u << 22)) f |= GB_ISA_AMX_BF16;
    }
#endif
    isa_cached = f;
}

unsigned gb_isa_flags(void) {
    pthread_once(&isa_once, isa_detect);
    return isa_cached;
}

static const struct {
    unsigned bit;
    const char *name;
} isa_names[] = {
    {GB_ISA_SSE42, "sse4.2"},
    {GB_ISA_AVX, "avx"},
    {GB_ISA_AVX2, "avx2"},
    {GB_ISA_FMA, "fma"},
    {GB_ISA_F16C, "f16c"},
    {GB_ISA_AVX512F, "avx512f"},
    {GB_ISA_AVX512BW, "avx512bw"},
    {GB_ISA_AVX512VL, "avx512vl"},
    {GB_ISA_AVX512DQ, "avx512dq"},
    {GB_ISA_AVX512VNNI, "avx512_vnni"},
    {GB_ISA_AVX512BF16, "avx512_bf16"},
    {GB_ISA_AVX512FP16, "avx512_fp16"},
    {GB_ISA_AMX_BF16, "amx_bf16"},
};

void gb_isa_names(unsigned flags, char *buf, int bufsize) {
    if (bufsize <= 0) return;
    buf[0] = 0;
    size_t used = 0;
    for (size_t i = 0; i < sizeof isa_names / sizeof isa_names[0]; i++) {
        if (!(flags & isa_names[i].bit)) continue;
        int n = snprintf(buf + used, (size_t)bufsize - used, "%s%s", used ? " " : "",
                         isa_names[i].name);
        if (n < 0 || used + (size_t)n >= (size_t)bufsize) {
            buf[used] = 0; /* drop the partial name */
            break;
        }
        used += (size_t)n;
    }
}

/* ---- helpers ------------------------------------------------------------------------ */

static void copy_trim(char *dst, size_t cap, const char *src) {
    while (*src && isspace((unsigned char)*src))
        src++;
    size_t n = strlen(src);
    while (n && isspace((unsigned char)src[n - 1]))
        n--;
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* Value of the first "key<spaces>:<value>" line of a /proc-style file. */
static int read_kv(const char *path, const char *key, char *out, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[1024];
    size_t klen = strlen(key);
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) != 0) continue;
        char *p = line + klen;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != ':' && *p != '=') continue;
        copy_trim(out, cap, p + 1);
        found = 0;
        break;
    }
    fclose(f);
    return found;
}

static int read_int_file(const char *path, long *v) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int ok = fscanf(f, "%ld", v) == 1 ? 0 : -1;
    fclose(f);
    return ok;
}

/* Physical cores = distinct (package, core) pairs among online CPUs in sysfs. */
static int count_physical_cores(int online) {
    enum { MAXC = 4096 };
    long keys[MAXC]; /* 32 KiB on the stack: no shared state between threads */
    int nkeys = 0;
    char path[256];
    for (int cpu = 0; cpu < MAXC && nkeys < MAXC; cpu++) {
        long core, pkg;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
        if (read_int_file(path, &core)) {
            if (cpu >= online + 64) break; /* past the last CPU (allow holes) */
            continue;
        }
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id",
                 cpu);
        if (read_int_file(path, &pkg)) pkg = 0;
        long key = pkg * 1000000 + core;
        int dup = 0;
        for (int i = 0; i < nkeys && !dup; i++)
            dup = keys[i] == key;
        if (!dup) keys[nkeys++] = key;
    }
    return nkeys > 0 ? nkeys : online;
}

/* Cache sizes of CPU 0 from sysfs (cache/indexN: level, type, size like "32K"). */
static void cache_sizes(gb_hwinfo *hw) {
    char path[128], type[32], size[32];
    for (int i = 0; i < 16; i++) {
        long level;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        if (read_int_file(path, &level)) break;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        int ok = fscanf(f, "%31s", type) == 1;
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        f = fopen(path, "r");
        if (!f) continue;
        ok = ok && fscanf(f, "%31s", size) == 1;
        fclose(f);
        if (!ok || !strcmp(type, "Instruction")) continue;
        char *end;
        long kib = strtol(size, &end, 10);
        if (*end == 'M') kib *= 1024;
        if (kib <= 0 || kib > (1L << 30)) continue;
        if (level == 1) hw->cache_l1d_kib = (int)kib;
        if (level == 2) hw->cache_l2_kib = (int)kib;
        if (level == 3) hw->cache_l3_kib = (int)kib;
    }
}

/* "always [madvise] never" -> "madvise". */
static void thp_mode(char *out, size_t cap) {
    out[0] = 0;
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return;
    char line[128];
    if (fgets(line, sizeof line, f)) {
        char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
        if (a && b && (size_t)(b - a - 1) < cap) {
            memcpy(out, a + 1, (size_t)(b - a - 1));
            out[b - a - 1] = 0;
        }
    }
    fclose(f);
}

static void os_release(char *out, size_t cap) {
    char v[256];
    if (read_kv("/etc/os-release", "PRETTY_NAME", v, sizeof v) &&
        read_kv("/usr/lib/os-release", "PRETTY_NAME", v, sizeof v)) {
        out[0] = 0;
        return;
    }
    /* strip the quotes of PRETTY_NAME="..." */
    char *s = v;
    size_t n = strlen(s);
    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
        s[n - 1] = 0;
        s++;
    }
    copy_trim(out, cap, s);
}

static void compiler_name(char *out, size_t cap) {
#if defined(__clang__)
    snprintf(out, cap, "clang %d.%d.%d", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
    snprintf(out, cap, "gcc %d.%d.%d", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
    snprintf(out, cap, "unknown");
#endif
}

/* ---- collect ------------------------------------------------------------------------ */

int gb_hwinfo_collect(gb_hwinfo *hw, gb_error *err) {
    memset(hw, 0, sizeof *hw);
    snprintf(hw->genbench_version, sizeof hw->genbench_version, "%s", gb_version());

    if (read_kv("/proc/cpuinfo", "model name", hw->cpu_name, sizeof hw->cpu_name) &&
        read_kv("/proc/cpuinfo", "Model", hw->cpu_name, sizeof hw->cpu_name))
        snprintf(hw->cpu_name, sizeof hw->cpu_name, "unknown");
    if (read_kv("/proc/cpuinfo", "vendor_id", hw->cpu_vendor, sizeof hw->cpu_vendor))
        hw->cpu_vendor[0] = 0;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    hw->cpu_online = online > 0 ? (int)online : 1;
    cpu_set_t set;
    CPU_ZERO(&set);
    hw->cpu_logical =
        sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : hw->cpu_online;
    if (hw->cpu_logical <= 0) hw->cpu_logical = hw->cpu_online;
    hw->cpu_physical = count_physical_cores(hw->cpu_online);
    hw->isa = gb_isa_flags();
    cache_sizes(hw);
    thp_mode(hw->thp, sizeof hw->thp);

    char v[128];
    if (read_kv("/proc/meminfo", "MemTotal", v, sizeof v) == 0)
        hw->memory_total_mb = strtoll(v, NULL, 10) / 1024; /* kB -> MiB */
    if (read_kv("/proc/meminfo", "MemAvailable", v, sizeof v) == 0)
        hw->memory_available_mb = strtoll(v, NULL, 10) / 1024;
    if (hw->memory_total_mb <= 0) {
        long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        if (pages > 0 && psz > 0) hw->memory_total_mb = (int64_t)pages * psz / (1 << 20);
    }

    os_release(hw->os, sizeof hw->os);
    struct utsname u;
    if (uname(&u) == 0) {
        snprintf(hw->kernel, sizeof hw->kernel, "%s %s", u.sysname, u.release);
        snprintf(hw->machine, sizeof hw->machine, "%s", u.machine);
        snprintf(hw->hostname, sizeof hw->hostname, "%s", u.nodename);
    } else if (hw->memory_total_mb <= 0) {
        return gb_error_set(err, GB_ERR_IO, "hardware info: neither /proc nor uname readable");
    }
    compiler_name(hw->compiler, sizeof hw->compiler);

#ifdef GB_HAVE_CUDA
    hw->cuda_built = 1;
#ifdef CUDART_VERSION
    snprintf(hw->cuda_build_version, sizeof hw->cuda_build_version, "%d.%d", CUDART_VERSION / 1000,
             (CUDART_VERSION % 1000) / 10);
#endif
#endif
    hw->nvml_loaded = gb_nvml_ok();
    hw->gpu_count = gb_nvml_device_count();
    if (hw->gpu_count > 0) {
        uint64_t total = 0;
        if (gb_nvml_device_name(0, hw->gpu_name, sizeof hw->gpu_name)) hw->gpu_name[0] = 0;
        if (gb_nvml_device_memory(0, &total, NULL) == 0)
            hw->gpu_memory_total_mb = (int64_t)(total >> 20);
    }
    if (hw->nvml_loaded) {
        if (gb_nvml_driver_version(hw->gpu_driver_version, sizeof hw->gpu_driver_version))
            hw->gpu_driver_version[0] = 0;
        if (gb_nvml_cuda_driver_version(hw->cuda_driver_version, sizeof hw->cuda_driver_version))
            hw->cuda_driver_version[0] = 0;
    }
    return 0;
}

/* ---- JSON --------------------------------------------------------------------------- */

static cJSON *str_or_null(const char *s) {
    return s && *s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

cJSON *gb_hwinfo_to_json(const gb_hwinfo *hw) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int gpu = hw->gpu_count > 0;
    /* benchmark_v2 keys first, in their order (newest + legacy dataclass). */
    cJSON_AddItemToObject(o, "gpu_name", str_or_null(gpu ? hw->gpu_name : NULL));
    if (gpu) {
        cJSON_AddNumberToObject(o, "gpu_memory_total_gb", (double)hw->gpu_memory_total_mb / 1024.0);
        cJSON_AddNumberToObject(o, "gpu_memory_total_mb", (double)hw->gpu_memory_total_mb);
    } else {
        cJSON_AddNullToObject(o, "gpu_memory_total_gb");
        cJSON_AddNullToObject(o, "gpu_memory_total_mb");
    }
    /* benchmark_v2's cuda_version is the CUDA version torch was built with: ours is the
     * CUDA runtime genbench was built with (null in a CPU-only build). */
    cJSON_AddItemToObject(o, "cuda_version", str_or_null(hw->cuda_build_version));
    cJSON_AddNumberToObject(o, "cpu_count", hw->cpu_online);
    cJSON_AddNumberToObject(o, "memory_total_mb", (double)hw->memory_total_mb);
    /* genbench additions. */
    cJSON_AddStringToObject(o, "genbench_version", hw->genbench_version);
    cJSON_AddStringToObject(o, "cpu_name", hw->cpu_name);
    cJSON_AddStringToObject(o, "cpu_vendor", hw->cpu_vendor);
    cJSON_AddNumberToObject(o, "cpu_physical_cores", hw->cpu_physical);
    cJSON_AddNumberToObject(o, "cpu_usable", hw->cpu_logical);
    cJSON *feat = cJSON_AddArrayToObject(o, "cpu_features");
    for (size_t i = 0; feat && i < sizeof isa_names / sizeof isa_names[0]; i++)
        if (hw->isa & isa_names[i].bit)
            cJSON_AddItemToArray(feat, cJSON_CreateString(isa_names[i].name));
    cJSON_AddNumberToObject(o, "cache_l1d_kib", hw->cache_l1d_kib);
    cJSON_AddNumberToObject(o, "cache_l2_kib", hw->cache_l2_kib);
    cJSON_AddNumberToObject(o, "cache_l3_kib", hw->cache_l3_kib);
    cJSON_AddItemToObject(o, "transparent_hugepages", str_or_null(hw->thp));
    cJSON_AddItemToObject(o, "os", str_or_null(hw->os));
    cJSON_AddStringToObject(o, "kernel", hw->kernel);
    cJSON_AddStringToObject(o, "machine", hw->machine);
    cJSON_AddStringToObject(o, "hostname", hw->hostname);
    cJSON_AddStringToObject(o, "compiler", hw->compiler);
    cJSON_AddBoolToObject(o, "cuda_built", hw->cuda_built);
    cJSON_AddBoolToObject(o, "nvml_available", hw->nvml_loaded);
    cJSON_AddNumberToObject(o, "gpu_count", hw->gpu_count);
    cJSON_AddItemToObject(o, "gpu_driver_version", str_or_null(hw->gpu_driver_version));
    cJSON_AddItemToObject(o, "cuda_driver_version", str_or_null(hw->cuda_driver_version));
    /* cJSON_Add* return NULL on OOM; check the last key made it. */
    if (!cJSON_GetObjectItemCaseSensitive(o, "cuda_driver_version")) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int gb_hwinfo_add_to_json(const gb_hwinfo *hw, cJSON *parent, gb_error *err) {
    cJSON *o = gb_hwinfo_to_json(hw);
    if (!o || !cJSON_AddItemToObject(parent, "hardware_info", o)) {
        cJSON_Delete(o);
        return gb_error_set(err, GB_ERR_NOMEM, "hardware_info: out of memory");
    }
    return 0;
}
