/* node/cmd_fednode.h - the trust commands that talk to a node: trib fed submit FILE, trib fed status
 * (DESIGN.md §12). node/cmd_fed.c dispatches to them.
 * Exit codes as DESIGN.md §10: 0 success; 1 refused or unreachable (one line naming the file and
 * the node's error code); 2 usage error. */
#ifndef TRIB_CMD_FEDNODE_H
#define TRIB_CMD_FEDNODE_H

#include <stdio.h>

/* 1 when sub ("submit", "status") is one of them. */
int fednode_is_command(const char *sub);
/* argv[0] is the subcommand ("submit" or "status"); returns the exit code. */
int fednode_run(int argc, char **argv, FILE *out, FILE *err);
void fednode_usage(FILE *f);

#endif
