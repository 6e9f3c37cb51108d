#include <stdio.h>

#include "cli/cli.h"

int gb_cli_generate(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "genbench: 'generate' is not implemented yet\n");
    return 2;
}
