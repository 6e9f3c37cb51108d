/* The tensors of each architecture, in Hugging Face checkpoint order, with their shapes
 * and random-weight kind (shared/docs/random-weights.md). Used to write random-weight
 * models and to validate/bind loaded weights. */
#ifndef GB_MODEL_TENSORS_H
#define GB_MODEL_TENSORS_H

#include <stdint.h>
#include "model/config.h"

typedef enum gb_tensor_kind {
    GB_KIND_MATRIX = 0, /* r * sqrt(3 / fan_in) */
    GB_KIND_EMBEDDING,  /* r * 0.1 */
    GB_KIND_NORM,       /* 1 + r * 0.25 */
    GB_KIND_BIAS,       /* r * 0.1 */
} gb_tensor_kind;

typedef struct gb_tensor_spec {
    char name[96];
    int ndim;
    int64_t shape[2];
    gb_tensor_kind kind;
    int64_t fan_in; /* matrices only */
} gb_tensor_spec;

/* Fills *specs (malloc'd, caller frees) with every tensor of the model in order. */
int gb_model_tensors(const gb_model_config *cfg, gb_tensor_spec **specs, int *count,
                     gb_error *err);

#endif
