/* genbench subcommands. Each takes argv after the subcommand name (argv[0] is the
 * subcommand) and returns the process exit status. Only the CLI prints. */
#ifndef GB_CLI_H
#define GB_CLI_H

int gb_cli_run(int argc, char **argv);
int gb_cli_generate(int argc, char **argv);
int gb_cli_tokenize(int argc, char **argv);
int gb_cli_init_model(int argc, char **argv);
int gb_cli_info(int argc, char **argv);
int gb_cli_compare(int argc, char **argv);

#endif
