/* Read-only access to safetensors checkpoints: one file, or shards listed by
 * model.safetensors.index.json. Files are memory-mapped; tensor data pointers point into
 * the mapping and stay valid until gb_weights_free. */
#ifndef GB_IO_SAFETENSORS_H
#define GB_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "genbench.h"
#include "util/dtype.h"

#define GB_MAX_DIMS 8

typedef struct gb_tensor_view {
    const char *name;
    gb_dtype dtype;
    int ndim;
    int64_t shape[GB_MAX_DIMS];
    const void *data; /* inside the mapping of `file` */
    size_t nbytes;
    const char *file; /* path of the shard holding it, for messages */
} gb_tensor_view;

typedef struct gb_safetensors gb_safetensors; /* one mapped file */
typedef struct gb_weights gb_weights;         /* a whole checkpoint (1..N files) */

/* Maps and validates one .safetensors file. */
int gb_safetensors_open(const char *path, gb_safetensors **out, gb_error *err);
void gb_safetensors_free(gb_safetensors *st);
/* O(1) lookup by name; NULL when absent. */
const gb_tensor_view *gb_safetensors_find(const gb_safetensors *st, const char *name);
int gb_safetensors_count(const gb_safetensors *st);
const gb_tensor_view *gb_safetensors_at(const gb_safetensors *st, int i);

/* Opens the checkpoint of a model directory: model.safetensors, or
 * model.safetensors.index.json and every shard it names. */
int gb_weights_open(const char *model_dir, gb_weights **out, gb_error *err);
void gb_weights_free(gb_weights *w);
const gb_tensor_view *gb_weights_find(const gb_weights *w, const char *name);
int gb_weights_count(const gb_weights *w);
const gb_tensor_view *gb_weights_at(const gb_weights *w, int i);
/* Sum of all tensor bytes. */
size_t gb_weights_total_bytes(const gb_weights *w);

#endif
