/* node/cli_opts.h - the option tables of the trib subcommands that keep their own command table
 * (trib access, audit, token, fed, policy): the option rows, parsing argv against them, the values, and
 * the option lines of a command's --help.
 *
 * Must not: print anything but help lines (a parse error comes back as text for the caller's
 * "trib: CMD: ..." message), or know a command. */
#ifndef TRIB_CLI_OPTS_H
#define TRIB_CLI_OPTS_H

#include <stddef.h>
#include <stdio.h>

#define OPTS_MAX  11     /* rows per command (node/cli.c: up to 10 of a command and --node) */
#define OPTS_VALS 16     /* values of one repeatable option */
#define OPTS_POS  64     /* positional arguments kept (trib products QUERY...) */

typedef struct {
    const char *name;    /* without "--"; NULL ends a table */
    const char *arg;     /* placeholder of its value, NULL for a flag */
    int repeat;          /* may be given several times (else twice is an error) */
    const char *help;
} opts_row_t;

/* The credential rows of every command that asks a node (node/client.c, client_auth_args, takes
 * them out of argv before a command parses the rest: listed here for --help). */
#define OPTS_AUTH_ROWS                                                                          \
    { "token", "TOKEN", 0, "the token to send (default: --token-file, else $TRIB_TOKEN)" },     \
    { "token-file", "FILE", 0, "read the token from FILE (mode 0600)" },                        \
    { "cacert", "FILE", 0, "CA certificate of an https node" }

/* One parse: values by row index, "1" for a flag; positional arguments in order. */
typedef struct {
    const opts_row_t *rows;
    const char *val[OPTS_MAX][OPTS_VALS];
    size_t nval[OPTS_MAX];
    const char *pos[OPTS_POS];
    size_t npos;
} opts_t;

/* Parses argv[0..argc) against rows (at most OPTS_MAX, ending at name == NULL) into *o (zeroed
 * here): "--name VALUE", "--name=VALUE", "--flag"; "--" ends the options; "-" and words not
 * starting with '-' are positional, at most max_pos (<= OPTS_POS). 0, or -1 with msg set to the
 * reason ("unknown option '--x'" and, for a likely typo, "(did you mean --y?)", "option '--x' needs a value (ARG)", "option '--x' takes no
 * value", "option '--x' given twice", "unexpected argument 'y'"). */
int opts_parse(opts_t *o, const opts_row_t *rows, size_t max_pos, int argc, char **argv, char *msg, size_t msglen);

const char *opts_get(const opts_t *o, const char *name);   /* the value, "1" for a flag, NULL absent */
/* Every value of a repeatable option (*n of them), or NULL when absent. */
const char *const *opts_all(const opts_t *o, const char *name, size_t *n);

/* The "  --name ARG   help" lines of rows, the left column width wide. */
void opts_help(const opts_row_t *rows, int width, FILE *f);

#endif
