/* Engine vs Hugging Face references: tiny-mistral (see engine_fixture.h). */
#include "engine_fixture.h"

int main(void) {
    return fx_run("tiny-mistral");
}
