/* node/cmd_key.h - trib key rotate (DESIGN.md §12, docs/operators.md §6): a running node's
 * rotation through its agent (node/rotate.h), or the offline hand-over file. Exit codes as
 * DESIGN.md §10. */
#ifndef TRIB_CMD_KEY_H
#define TRIB_CMD_KEY_H

#include <stdio.h>

/* argv[0] is "key"; returns the exit code. */
int key_cmd_run(int argc, char **argv, FILE *out, FILE *err);
void key_cmd_usage(FILE *f);

#endif
