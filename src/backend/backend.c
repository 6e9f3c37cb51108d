/* Backend-independent helpers. */
#include "backend/backend.h"

void gb_backend_free(gb_backend *b) {
    if (b) b->ops->destroy(b);
}
