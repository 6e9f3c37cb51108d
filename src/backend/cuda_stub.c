/* Builds without CUDA: the CUDA backend entry points answer "not available". The real ones
 * live in src/backend/cuda (compiled, with GB_HAVE_CUDA defined, only when CUDA is on). */
#ifndef GB_HAVE_CUDA
#include "backend/backend.h"
#include "util/error.h"

int gb_backend_cuda_create(const gb_backend_options *opts, gb_backend **out, gb_error *err) {
    (void)opts;
    *out = NULL;
    return gb_error_set(err, GB_ERR_DEVICE, "cuda: genbench was built without CUDA");
}

int gb_backend_cuda_available(void) {
    return 0;
}
#else
typedef int gb_cuda_stub_unused; /* ISO C forbids an empty translation unit */
#endif
