#include <stdio.h>

#include "cli/cli.h"

int gb_cli_tokenize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "genbench: 'tokenize' is not implemented yet\n");
    return 2;
}
