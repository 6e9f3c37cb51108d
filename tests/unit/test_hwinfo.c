/* Hardware info: values checked against independent sources (sysconf, uname,
 * /proc/cpuinfo's flags line as the kernel reports them), JSON keys, NVML fallback. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench/hwinfo.h"
#include "test.h"

/* 1 if /proc/cpuinfo's first "flags" line lists `flag`, 0 if not, -1 if unreadable. */
static int cpuinfo_has(const char *flag) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return -1;
    static char line[8192];
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5) != 0) continue;
        found = 0;
        size_t n = strlen(flag);
        for (char *p = strchr(line, ':'); p && *p; p++) {
            if ((p[-1] == ' ' || p[-1] == ':') && !strncmp(p, flag, n) &&
                (p[n] == ' ' || p[n] == '\n' || p[n] == 0)) {
                found = 1;
                break;
            }
        }
        break;
    }
    fclose(f);
    return found;
}

static void check_isa_against_cpuinfo(unsigned isa) {
    static const struct {
        unsigned bit;
        const char *cpuinfo;
    } m[] = {{GB_ISA_AVX, "avx"},           {GB_ISA_AVX2, "avx2"},
             {GB_ISA_FMA, "fma"},           {GB_ISA_F16C, "f16c"},
             {GB_ISA_AVX512F, "avx512f"},   {GB_ISA_AVX512BW, "avx512bw"},
             {GB_ISA_AVX512VL, "avx512vl"}, {GB_ISA_AVX512BF16, "avx512_bf16"}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        int has = cpuinfo_has(m[i].cpuinfo);
        if (has < 0) return; /* no flags line (not x86 Linux) */
        CHECK_MSG(!!(isa & m[i].bit) == has, "ISA %s: /proc/cpuinfo says %d, genbench says %d",
                  m[i].cpuinfo, has, !!(isa & m[i].bit));
    }
}

int main(void) {
    /* A library without the NVML symbols must count as "no NVML", without crashing. Must be
     * set before the first NVML use (loading happens once per process). */
    setenv("GENBENCH_NVML_LIB", "libm.so.6", 1);

    gb_error err = {0};
    gb_hwinfo hw;
    CHECK_OK(gb_hwinfo_collect(&hw, &err), &err);

    long online = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK_EQ_INT(hw.cpu_online, online);
    CHECK_MSG(hw.cpu_logical >= 1 && hw.cpu_logical <= hw.cpu_online, "usable %d of %d",
              hw.cpu_logical, hw.cpu_online);
    CHECK_MSG(hw.cpu_physical >= 1 && hw.cpu_physical <= hw.cpu_online, "physical %d of %d",
              hw.cpu_physical, hw.cpu_online);
    CHECK_MSG(hw.cpu_name[0] != 0, "empty cpu name");
    long long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    long long mb = pages * psz / (1 << 20);
    CHECK_MSG(llabs(hw.memory_total_mb - mb) <= mb / 100 + 1, "memory %lld MiB, sysconf %lld",
              (long long)hw.memory_total_mb, mb);
    CHECK(hw.memory_available_mb > 0 && hw.memory_available_mb <= hw.memory_total_mb);
    struct utsname u;
    CHECK(uname(&u) == 0);
    CHECK_MSG(strncmp(hw.kernel, u.sysname, strlen(u.sysname)) == 0 &&
                  strstr(hw.kernel, u.release) != NULL,
              "kernel \"%s\" vs uname %s %s", hw.kernel, u.sysname, u.release);
    CHECK_STR(hw.machine, u.machine);
    CHECK_STR(hw.genbench_version, gb_version());
#if defined(__GNUC__) && !defined(__clang__)
    CHECK_MSG(strncmp(hw.compiler, "gcc ", 4) == 0, "compiler \"%s\"", hw.compiler);
#endif
    CHECK_EQ_INT(hw.nvml_loaded, 0);
    CHECK_EQ_INT(hw.gpu_count, 0);
    CHECK_STR(hw.gpu_name, "");
    CHECK_EQ_INT(hw.isa, gb_isa_flags());
    /* Cache sizes, when sysfs has them, are ordered as caches are. */
    if (hw.cache_l3_kib > 0) CHECK(hw.cache_l3_kib > hw.cache_l2_kib);
    if (hw.cache_l2_kib > 0) CHECK(hw.cache_l2_kib > hw.cache_l1d_kib && hw.cache_l1d_kib > 0);
    FILE *thp = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (thp) {
        char line[128] = "", want[40];
        CHECK(fgets(line, sizeof line, thp) != NULL);
        fclose(thp);
        snprintf(want, sizeof want, "[%s]", hw.thp);
        CHECK_MSG(hw.thp[0] && strstr(line, want), "THP \"%s\" vs sysfs %s", hw.thp, line);
    }
    check_isa_against_cpuinfo(hw.isa);
    /* AVX-512 sub-features never appear without the foundation. */
    if (!(hw.isa & GB_ISA_AVX512F)) CHECK_EQ_INT(hw.isa & GB_ISA_AVX512BF16, 0);

    char names[64];
    gb_isa_names(GB_ISA_AVX2 | GB_ISA_FMA | GB_ISA_AVX512BF16, names, sizeof names);
    CHECK_STR(names, "avx2 fma avx512_bf16");
    gb_isa_names(0, names, sizeof names);
    CHECK_STR(names, "");
    gb_isa_names(~0u, names, 12); /* truncates at a whole name, stays terminated */
    CHECK_STR(names, "sse4.2 avx");

    /* JSON: benchmark_v2 keys and ours. */
    cJSON *parent = cJSON_CreateObject();
    CHECK_OK(gb_hwinfo_add_to_json(&hw, parent, &err), &err);
    cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, "hardware_info");
    CHECK(cJSON_IsObject(o));
    static const char *keys[] = {"gpu_name",
                                 "gpu_memory_total_gb",
                                 "gpu_memory_total_mb",
                                 "cuda_version",
                                 "cpu_count",
                                 "memory_total_mb",
                                 "genbench_version",
                                 "cpu_name",
                                 "cpu_vendor",
                                 "cpu_physical_cores",
                                 "cpu_usable",
                                 "cpu_features",
                                 "os",
                                 "kernel",
                                 "machine",
                                 "hostname",
                                 "compiler",
                                 "cuda_built",
                                 "nvml_available",
                                 "gpu_count",
                                 "gpu_driver_version",
                                 "cuda_driver_version",
                                 "cache_l1d_kib",
                                 "cache_l2_kib",
                                 "cache_l3_kib",
                                 "transparent_hugepages"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CHECK_MSG(cJSON_HasObjectItem(o, keys[i]), "hardware_info lacks \"%s\"", keys[i]);
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "gpu_name")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "gpu_memory_total_gb")));
    CHECK_EQ_INT(cJSON_GetObjectItemCaseSensitive(o, "cpu_count")->valuedouble, online);
    CHECK_EQ_INT(cJSON_GetObjectItemCaseSensitive(o, "memory_total_mb")->valuedouble,
                 hw.memory_total_mb);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "cpu_name")), hw.cpu_name);
    cJSON *feat = cJSON_GetObjectItemCaseSensitive(o, "cpu_features");
    char all[512];
    gb_isa_names(hw.isa, all, sizeof all);
    int nwords = all[0] ? 1 : 0;
    for (char *p = all; *p; p++)
        nwords += *p == ' ';
    CHECK_EQ_INT(cJSON_GetArraySize(feat), nwords);
    cJSON_Delete(parent);

    /* A GPU-bearing description serialises its numbers (gb -> MiB / 1024). */
    gb_hwinfo g = hw;
    g.gpu_count = 1;
    snprintf(g.gpu_name, sizeof g.gpu_name, "NVIDIA H100 80GB HBM3");
    g.gpu_memory_total_mb = 81559;
    cJSON *gj = gb_hwinfo_to_json(&g);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(gj, "gpu_name")),
              "NVIDIA H100 80GB HBM3");
    CHECK(fabs(cJSON_GetObjectItemCaseSensitive(gj, "gpu_memory_total_gb")->valuedouble -
               81559 / 1024.0) < 1e-9);
    CHECK_EQ_INT(cJSON_GetObjectItemCaseSensitive(gj, "gpu_memory_total_mb")->valuedouble, 81559);
    cJSON_Delete(gj);
    TEST_MAIN_END();
}
