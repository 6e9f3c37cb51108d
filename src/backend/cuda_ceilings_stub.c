/* Builds without CUDA: there is no CUDA device to measure (cuda_ceilings.h). The real
 * functions live in src/backend/cuda/cuda_ceilings.cu, compiled only when CUDA is on. */
#ifndef GB_HAVE_CUDA
#include <string.h>

#include "backend/cuda_ceilings.h"
#include "util/error.h"

int gb_cuda_ceilings_identify(int device, gb_cuda_ceilings *out, gb_error *err) {
    memset(out, 0, sizeof *out);
    (void)device;
    return gb_error_set(err, GB_ERR_DEVICE, "genbench was built without CUDA");
}

int gb_cuda_ceilings_measure(int device, const gb_cuda_ceilings_opts *opts, gb_cuda_ceilings *out,
                             gb_error *err) {
    (void)opts;
    return gb_cuda_ceilings_identify(device, out, err);
}
#else
typedef int gb_cuda_ceilings_stub_unused; /* ISO C forbids an empty translation unit */
#endif
