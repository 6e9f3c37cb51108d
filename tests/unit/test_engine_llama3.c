/* Engine vs Hugging Face references: tiny-llama3 (see engine_fixture.h). */
#include "engine_fixture.h"

int main(void) {
    return fx_run("tiny-llama3");
}
