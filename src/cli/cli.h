/* genbench subcommands. Each takes argv after the subcommand name (argv[0] is the
 * subcommand) and returns the process exit status. Only the CLI prints. */
#ifndef GB_CLI_H
#define GB_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int gb_cli_run(int argc, char **argv);
int gb_cli_generate(int argc, char **argv);
int gb_cli_tokenize(int argc, char **argv);
int gb_cli_init_model(int argc, char **argv);
int gb_cli_info(int argc, char **argv);
int gb_cli_compare(int argc, char **argv);

/* JSON string literal of n bytes (UTF-8 passed through, control characters escaped). */
void gb_cli_json_str(FILE *f, const char *s, size_t n);
/* JSON array of ids: [1, 2, 3] */
void gb_cli_json_ids(FILE *f, const int32_t *ids, size_t n);

#endif
