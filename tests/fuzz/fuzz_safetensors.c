/* libFuzzer target: gb_safetensors_open on arbitrary bytes. A file that opens must describe
 * tensors lying wholly inside the mapping, with nbytes = elements * dtype size; every byte of
 * every tensor is read so ASan catches a view that points outside the file. */
#include "fuzz_util.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("model.safetensors", data, size);
    gb_safetensors *st = NULL;
    gb_error err = {0};
    if (gb_safetensors_open(path, &st, &err) != 0) {
        if (!err.msg[0] || strchr(err.msg, '\n')) abort(); /* an error must be one non-empty line */
        return 0;
    }
    volatile unsigned sum = 0;
    for (int i = 0; i < gb_safetensors_count(st); i++) {
        const gb_tensor_view *v = gb_safetensors_at(st, i);
        uint64_t n = 1;
        for (int d = 0; d < v->ndim; d++)
            n *= (uint64_t)v->shape[d];
        if (n * gb_dtype_size(v->dtype) != v->nbytes) abort();
        const uint8_t *p = v->data;
        for (size_t b = 0; b < v->nbytes; b++)
            sum += p[b];
        if (gb_safetensors_find(st, v->name) == NULL) abort();
    }
    gb_safetensors_free(st);
    return 0;
}
