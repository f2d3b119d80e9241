/* node/cli_internal.h - what the three files of the `trib` client commands share; only
 * node/cli*.c include it (the public API is node/cli.h).
 *
 *   node/cli.c         the command table and help, argument parsing, requests to the node,
 *                      error messages and exit codes, and the commands themselves;
 *   node/cli_render.c  a reply from the node as text (tables, facets, the status page);
 *   node/cli_stream.c  `get` and `subscribe`: relaying an NDJSON body to stdout as it arrives.
 *
 * Must not: grow into a second public API; everything here exists for those three files. */
#ifndef TRIB_CLI_INTERNAL_H
#define TRIB_CLI_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "node/cli_opts.h"
#include "node/client.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

#define CLI_MAX_OPTS     (OPTS_MAX - 1)   /* a command's options; --node is every command's */
#define CLI_MAX_POS      OPTS_POS
#define CLI_NODE_URL_MAX 1024
#define CLI_PATH_LEN     256            /* "/v1/products/" + a product id + a suffix */

typedef struct cli_cmd cli_cmd_t;

/* One run of one command. */
typedef struct {
    const cli_cmd_t *cmd;
    FILE *out, *err;
    char node[CLI_NODE_URL_MAX];          /* normalised base URL of the node asked */
    opts_row_t rows[OPTS_MAX];            /* cmd->opts and --node */
    opts_t o;                             /* the options given (node/cli_opts.h) */
    const char *pos[CLI_MAX_POS];
    size_t npos;
    const char *input;                    /* the file the command sends, named in its errors (NULL: none) */
} cli_ctx_t;

struct cli_cmd {
    const char *name;
    const char *synopsis;             /* after "trib NAME" */
    const char *summary;              /* one line for the command list */
    const char *about;                /* a paragraph for NAME --help */
    opts_row_t opts[CLI_MAX_OPTS];    /* ends at name == NULL (every row: repeat 0) */
    size_t min_pos, max_pos;
    const char *example;
    int (*run)(cli_ctx_t *c);
};

/* ---- messages and arguments (cli.c); each returns the exit code to use */
int cli_fail(cli_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_usage_error(cli_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_fail_transport(cli_ctx_t *c, const char *msg);     /* msg already names the node */
int cli_fail_http(cli_ctx_t *c, const client_reply_t *r);  /* "trib: CMD: 404 not_found: ..." */
/* "<error>: <detail>" of an error object, cleaned to one line (malloc'd); NULL if not one. */
char *cli_error_text(json_t *j);
const char *cli_opt(const cli_ctx_t *c, const char *name); /* value, "1" for a flag, or NULL */
/* The positional ID, checked, and its request path "/v1/products/ID[suffix]". */
int cli_arg_id(cli_ctx_t *c, const char *suffix, const char **id, char path[CLI_PATH_LEN]);
/* A non-negative integer option (*out NULL when absent). */
int cli_arg_uint(cli_ctx_t *c, const char *name, const char **out);

/* ---- requests (cli.c): rq sent, a 2xx reply parsed as JSON into *out; the exit code */
int cli_call_json(cli_ctx_t *c, const client_req_t *rq, json_t **out);
/* Reads manifest FILE ('-': stdin) into *text (malloc'd), finds its id "domain/name" and the
 * content type to send it as. The exit code; failures are printed. */
int cli_load_manifest(cli_ctx_t *c, const char *file, char **text, size_t *len, char *id, size_t idlen,
                      const char **ctype);

/* ---- governance commands (cli_gov.c) */
int cli_run_check(cli_ctx_t *c);
int cli_run_history(cli_ctx_t *c);
int cli_run_diff(cli_ctx_t *c);
int cli_run_watch(cli_ctx_t *c);

/* ---- replies as text (cli_render.c): j is a 2xx reply, id the command's product or NULL */
typedef int (*cli_render_fn)(cli_ctx_t *c, json_t *j, const char *id);
int cli_print_json(cli_ctx_t *c, json_t *j);               /* --json: pretty, as sent */
int cli_render_members(cli_ctx_t *c, json_t *j, const char *id);
int cli_render_products(cli_ctx_t *c, json_t *j, const char *id);
int cli_render_product(cli_ctx_t *c, json_t *j, const char *id);
int cli_render_status(cli_ctx_t *c, json_t *j, const char *id);
int cli_render_published(cli_ctx_t *c, json_t *j, const char *id);
int cli_render_retired(cli_ctx_t *c, json_t *j, const char *id);
int cli_render_appended(cli_ctx_t *c, json_t *j, const char *id);

/* ---- get and subscribe (cli_stream.c): relays .../records or .../stream to c->out */
int cli_stream_records(cli_ctx_t *c, const char *suffix, const char *const *query, int live);

#endif
