#include <stdio.h>

#include "cli/cli.h"

int gb_cli_run(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "genbench: 'run' is not implemented yet\n");
    return 2;
}
