#include <stdio.h>

#include "cli/cli.h"

int gb_cli_compare(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "genbench: 'compare' is not implemented yet\n");
    return 2;
}
