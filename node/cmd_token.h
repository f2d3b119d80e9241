/* node/cmd_token.h - `trib token show | attenuate`: access tokens offline (DESIGN.md §13).
 * `trib token issue` and `revoke` talk to a node and come with its token endpoints.
 *
 * Exit codes as DESIGN.md §10: 0 success (show: the token is valid as far as could be checked);
 * 1 failure or a refused token, one line "trib: token CMD: <reason>: <what>" on stderr; 2 usage
 * error with "try 'trib token CMD --help'". */
#ifndef TRIB_CMD_TOKEN_H
#define TRIB_CMD_TOKEN_H

#include <stdio.h>

/* argv[0] is "token"; returns the exit code. */
int token_cmd_run(int argc, char **argv, FILE *out, FILE *err);
/* The line for `trib --help`. */
void token_cmd_usage(FILE *f);

#endif
