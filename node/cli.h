/* node/cli.h - the `trib` client commands (DESIGN.md §10): members, products, show, publish,
 * retire, put, get, subscribe, status. Everything but `agent`, which node/main.c runs.
 *
 * Exit codes: 0 success; 1 failure, with one line "trib: <what failed>" on stderr; 2 usage
 * error (unknown command or option, missing or malformed argument), with the line and
 * "try 'trib CMD --help'". */
#ifndef TRIB_CLI_H
#define TRIB_CLI_H

#include <stdio.h>

#define CLI_DEFAULT_NODE "http://127.0.0.1:7480"
#define CLI_DEFAULT_PORT 7480

/* argv[0] is the subcommand ("products"); returns the process exit code. Calls
 * curl_global_init/cleanup itself: do not run it concurrently with other libcurl users. */
int cli_main(int argc, char **argv);

/* The same with the output streams given (tests use memory streams). */
int cli_run(int argc, char **argv, FILE *out, FILE *err);

/* The top-level command list for `trib --help` (agent included as one line). */
void cli_usage(FILE *f);

/* 1 when name is one of the commands cli_main runs. */
int cli_is_command(const char *name);

/* 1 when id is a product id "<domain>/<name>" (entry_valid_product_id). */
int cli_valid_id(const char *id);

#endif
