/* node/cmd_fed.h - the offline trust commands: keygen, identity, fed init|certify|revoke|show
 * (DESIGN.md §12, docs/federation.md). They run on the governance machine or next to a data
 * dir, never talk to a node, and write files that refuse to be overwritten.
 *
 * Exit codes as DESIGN.md §10: 0 success; 1 failure, one line "trib: CMD: ..." naming the file
 * and what is wrong; 2 usage error with "try 'trib CMD --help'". */
#ifndef TRIB_CMD_FED_H
#define TRIB_CMD_FED_H

#include <stdio.h>

/* 1 when name is "keygen", "identity" or "fed". */
int fed_is_command(const char *name);
/* argv[0] is the command; returns the exit code. */
int fed_run(int argc, char **argv, FILE *out, FILE *err);
/* The lines for `trib --help`. */
void fed_usage(FILE *f);

#endif
