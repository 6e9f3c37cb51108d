#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "genbench.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"run", gb_cli_run, "benchmark a model over a list of configurations"},
    {"generate", gb_cli_generate, "print a greedy continuation of a prompt"},
    {"tokenize", gb_cli_tokenize, "print token ids and pieces of a text (or decode ids)"},
    {"init-model", gb_cli_init_model, "write a random-weight model directory"},
    {"info", gb_cli_info, "hardware, measured bandwidth and matrix peak, backends"},
    {"compare", gb_cli_compare, "compare two results files or directories"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: genbench <command> [options]   (genbench <command> --help)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("genbench %s\n", gb_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "genbench: unknown command '%s' (see genbench --help)\n", argv[1]);
    return 2;
}
