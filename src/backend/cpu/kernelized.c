/* The kernel set selected by kernelize = true. Until the optimised CPU kernels are
 * registered here (src/backend/cpu/opt*.c returns its table from this function), it is the
 * reference set with the reference fused entries, so the engine's fused code path runs. */
#include "backend/cpu/cpu_ref.h"

const gb_backend_ops *gb_cpu_kernelized_ops(void) {
    return &gb_cpu_ref_fused_ops;
}
