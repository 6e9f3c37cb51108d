#include <stdio.h>

#include "cli/cli.h"

int gb_cli_info(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "genbench: 'info' is not implemented yet\n");
    return 2;
}
