/* Internal: NVIDIA Management Library loaded at run time with dlopen, so genbench has no
 * build dependency on the driver. Only the few calls hwinfo and gpumon need. Thread-safe:
 * loading happens once (pthread_once); NVML itself is thread-safe. The library stays loaded
 * and initialised for the life of the process.
 *
 * Environment: GENBENCH_NO_NVML=1 pretends NVML is absent; GENBENCH_NVML_LIB names another
 * library file (default "libnvidia-ml.so.1"). */
#ifndef GB_BENCH_NVML_H
#define GB_BENCH_NVML_H

#include <stdint.h>

/* 1 when NVML is loaded and initialised. */
int gb_nvml_ok(void);

/* Number of devices (0 when NVML is not available). */
int gb_nvml_device_count(void);

/* Device index i: name, total memory (bytes). Return 0 on success. */
int gb_nvml_device_name(int i, char *buf, int bufsize);
int gb_nvml_device_memory(int i, uint64_t *total, uint64_t *used);

/* Instantaneous utilisation (% of time a kernel ran over the driver's sample period). */
int gb_nvml_device_utilization(int i, unsigned *gpu_pct);

/* Driver version string ("550.54.15") and highest CUDA version it supports ("12.4"). */
int gb_nvml_driver_version(char *buf, int bufsize);
int gb_nvml_cuda_driver_version(char *buf, int bufsize);

#endif
