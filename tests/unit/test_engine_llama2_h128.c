/* Engine vs Hugging Face references: tiny-llama2-h128 (see engine_fixture.h). */
#include "engine_fixture.h"

int main(void) {
    return fx_run("tiny-llama2-h128");
}
