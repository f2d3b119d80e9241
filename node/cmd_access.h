/* node/cmd_access.h - `trib access request|pending|grant|deny|revoke|mine` and `trib audit`
 * (DESIGN §13), through a node's /v1/access and /v1/audit endpoints.
 *
 * Exit codes as DESIGN.md §10: 0 success; 1 failure, one line "trib: access CMD: STATUS error:
 * detail" on stderr; 2 usage error with "try 'trib access CMD --help'". */
#ifndef TRIB_CMD_ACCESS_H
#define TRIB_CMD_ACCESS_H

#include <stdio.h>

/* argv[0] is "access" or "audit"; returns the exit code. */
int access_cmd_run(int argc, char **argv, FILE *out, FILE *err);
/* The lines for `trib --help`. */
void access_cmd_usage(FILE *f);

#endif
