#include "bench/nvml.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* NVML ABI subset (nvml.h): every call returns nvmlReturn_t, 0 = NVML_SUCCESS. */
typedef void *nvml_device;
typedef struct {
    unsigned long long total, free, used;
} nvml_memory;
typedef struct {
    unsigned int gpu, memory;
} nvml_utilization;

static struct {
    void *lib;
    int ok;
    int (*init)(void);
    int (*count)(unsigned *);
    int (*handle)(unsigned, nvml_device *);
    int (*name)(nvml_device, char *, unsigned);
    int (*memory)(nvml_device, nvml_memory *);
    int (*util)(nvml_device, nvml_utilization *);
    int (*driver)(char *, unsigned);
    int (*cuda)(int *);
} nv;

static pthread_once_t nv_once = PTHREAD_ONCE_INIT;

/* dlsym returns void*; converting through memcpy avoids the object-to-function pointer
 * cast warning while keeping the exact bits. */
#define NV_SYM(field, name)                                                                        \
    do {                                                                                           \
        void *p_ = dlsym(nv.lib, name);                                                            \
        if (!p_) goto fail;                                                                        \
        memcpy(&nv.field, &p_, sizeof p_);                                                         \
    } while (0)

static void nv_load(void) {
    const char *off = getenv("GENBENCH_NO_NVML");
    if (off && *off && strcmp(off, "0") != 0) return;
    const char *path = getenv("GENBENCH_NVML_LIB");
    nv.lib = dlopen(path && *path ? path : "libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!nv.lib) return;
    NV_SYM(init, "nvmlInit_v2");
    NV_SYM(count, "nvmlDeviceGetCount_v2");
    NV_SYM(handle, "nvmlDeviceGetHandleByIndex_v2");
    NV_SYM(name, "nvmlDeviceGetName");
    NV_SYM(memory, "nvmlDeviceGetMemoryInfo");
    NV_SYM(util, "nvmlDeviceGetUtilizationRates");
    NV_SYM(driver, "nvmlSystemGetDriverVersion");
    NV_SYM(cuda, "nvmlSystemGetCudaDriverVersion");
    if (nv.init() != 0) goto fail;
    nv.ok = 1;
    return;
fail:
    dlclose(nv.lib);
    memset(&nv, 0, sizeof nv);
}

int gb_nvml_ok(void) {
    pthread_once(&nv_once, nv_load);
    return nv.ok;
}

int gb_nvml_device_count(void) {
    unsigned n = 0;
    if (!gb_nvml_ok() || nv.count(&n) != 0) return 0;
    return (int)n;
}

static int nv_dev(int i, nvml_device *d) {
    if (!gb_nvml_ok() || i < 0) return -1;
    return nv.handle((unsigned)i, d) == 0 ? 0 : -1;
}

int gb_nvml_device_name(int i, char *buf, int bufsize) {
    nvml_device d;
    if (bufsize <= 0 || nv_dev(i, &d)) return -1;
    if (nv.name(d, buf, (unsigned)bufsize) != 0) return -1;
    buf[bufsize - 1] = 0;
    return 0;
}

int gb_nvml_device_memory(int i, uint64_t *total, uint64_t *used) {
    nvml_device d;
    nvml_memory m;
    if (nv_dev(i, &d) || nv.memory(d, &m) != 0) return -1;
    if (total) *total = m.total;
    if (used) *used = m.used;
    return 0;
}

int gb_nvml_device_utilization(int i, unsigned *gpu_pct) {
    nvml_device d;
    nvml_utilization u;
    if (nv_dev(i, &d) || nv.util(d, &u) != 0) return -1;
    *gpu_pct = u.gpu;
    return 0;
}

int gb_nvml_driver_version(char *buf, int bufsize) {
    if (bufsize <= 0 || !gb_nvml_ok() || nv.driver(buf, (unsigned)bufsize) != 0) return -1;
    buf[bufsize - 1] = 0;
    return 0;
}

int gb_nvml_cuda_driver_version(char *buf, int bufsize) {
    int v = 0;
    if (bufsize <= 0 || !gb_nvml_ok() || nv.cuda(&v) != 0 || v <= 0) return -1;
    /* NVML encodes 12040 as 12.4 (major * 1000 + minor * 10). */
    snprintf(buf, (size_t)bufsize, "%d.%d", v / 1000, (v % 1000) / 10);
    return 0;
}
