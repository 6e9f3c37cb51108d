#include <stdio.h>

#include "cli/cli.h"

int gb_cli_init_model(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "genbench: 'init_model' is not implemented yet\n");
    return 2;
}
