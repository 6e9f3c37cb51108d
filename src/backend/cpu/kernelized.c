/* Default kernel set for kernelize = true: the reference kernels with the reference fused
 * entries, so the engine's fused code path runs and is tested.
 * When the optimised CPU set lands, its opt.c defines gb_cpu_kernelized_ops and THIS FILE IS
 * DELETED (two definitions fail the link loudly, never silently). */
#include "backend/cpu/cpu_ref.h"

const gb_backend_ops *gb_cpu_kernelized_ops(const gb_backend_ops *ref) {
    (void)ref;
    return &gb_cpu_ref_fused_ops;
}
