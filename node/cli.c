/* node/cli.c - the `trib` client commands: members, products, show, publish, retire, put, get,
 * subscribe, status (DESIGN.md §10, docs/http-api.md).
 *
 * Owns: the command table and help texts, option parsing (options before or after positional
 * arguments, "--opt V" or "--opt=V", "--" ends options), error messages and exit codes, the
 * request each command makes, and reading manifests and record files. Rendering replies as
 * text is node/cli_render.c's; relaying NDJSON for get/subscribe is node/cli_stream.c's.
 * Must not: speak HTTP itself (node/client.c does), touch storage, or validate manifests beyond
 * finding their domain and name (the node validates fully). */
#include "node/cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gossip/entry.h"
#include "gossip/textfile.h"
#include "node/cli_internal.h"
#include "node/cli_table.h"
#include "node/client.h"
#include "node/cmd_fed.h"
#include "node/cmd_access.h"
#include "node/cmd_policy.h"
#include "node/cmd_token.h"
#include "node/near.h"
#include "node/yaml.h"
#include "storage/store.h"

#define MAX_MANIFEST (4u << 20)   /* bytes read from a manifest file */
#define DETAIL_MAX   2000         /* characters of a node's error detail shown */

/* ================================================================ command table */

static int run_members(cli_ctx_t *c);
static int run_products(cli_ctx_t *c);
static int run_show(cli_ctx_t *c);
static int run_publish(cli_ctx_t *c);
static int run_retire(cli_ctx_t *c);
static int run_put(cli_ctx_t *c);
static int run_get(cli_ctx_t *c);
static int run_subscribe(cli_ctx_t *c);
static int run_status(cli_ctx_t *c);

#define OPT_JSON { "json", NULL, 0, "print the node's JSON reply (pretty) instead of text" }

static const cli_cmd_t commands[] = {
    { "members", "[--json]",
      "list the federation's nodes and their state",
      "Lists the nodes this node knows about: domain, node id (shortened; full with --json),\n"
      "peer address, HTTP address, SWIM state (alive, suspect, dead, left) and incarnation.",
      { OPT_JSON }, 0, 0,
      "trib members --node http://10.0.0.5:7480", run_members },
    { "products", "[--domain D] [--tag T] [--owner O] [--status S] [--classification C] [--compliance C] [--limit N] "
      "[--offset N] [--json] [QUERY...]",
      "list or search the catalog",
      "Lists the products in the node's replica of the whole catalog (every domain), or searches\n"
      "it: QUERY's words are looked up in names, titles, descriptions, tags, owners and schema\n"
      "field names (snake_case, kebab-case and dotted names split into words; the last word also\n"
      "matches as a prefix). Best matches first: the exact id or name, then products matching\n"
      "more of the words, name and tag matches before descriptions. Filters narrow the hits;\n"
      "the line under the table counts the hits per domain, status, classification and tag (--json:\n"
      "all facets).",
      { { "domain", "D", 0, "only products of domain D" },
        { "tag", "T", 0, "only products tagged T" },
        { "owner", "O", 0, "only products with owner O (business or technical)" },
        { "status", "S", 0, "only products in status S (draft, active, deprecated, retired)" },
        { "classification", "C", 0, "only products classified C (public, internal, confidential, restricted)" },
        { "compliance", "C", 0, "only products the policy set in force finds C (compliant, non_compliant)" },
        { "limit", "N", 0, "show at most N products (default 100, at most 1000)" },
        { "offset", "N", 0, "skip the first N products of the ranking" },
        OPT_JSON },
      0, CLI_MAX_POS,
      "trib products --domain payments --tag finance settled", run_products },
    { "show", "ID [--json]",
      "show one product: manifest, signer, catalog seq",
      "Shows product ID (DOMAIN/NAME): its catalog metadata, owners, description, schema and\n"
      "every other field of the manifest. Any node answers from its catalog replica.",
      { OPT_JSON }, 1, 1,
      "trib show payments/settled-transactions", run_show },
    { "publish", "FILE.yaml|- [--revive] [--json]",
      "create or update a product of the node's domain",
      "Sends the manifest in FILE (YAML or JSON; '-' reads stdin) to the node, which validates\n"
      "it, signs a catalog entry and gossips it. The manifest's domain must be the node's.\n"
      "The node's gate: versions only go up; the same manifest again is a no-op (unchanged);\n"
      "a change that breaks the manifest's compatibility mode (default BACKWARD_TRANSITIVE)\n"
      "needs a major version; a retired product comes back only with --revive. Run\n"
      "'trib check FILE' first to see the verdict without storing anything.",
      { { "revive", NULL, 0, "publish over a retired product (with a higher version)" }, OPT_JSON }, 1, 1,
      "trib publish settled-transactions.yaml", run_publish },
    { "check", "FILE.yaml|- [--revive] [--json]",
      "dry-run a publish: validation and compatibility, nothing stored",
      "Sends the manifest in FILE to the node's check (POST /v1/products/ID/check): the same\n"
      "validation and compatibility gate a publish meets, nothing stored. Prints each change\n"
      "with the modes it is compatible under, the bump it needs, and whether publish would be\n"
      "accepted. Exit status 1 when publish would be refused.",
      { { "revive", NULL, 0, "check as a publish with --revive" }, OPT_JSON }, 1, 1,
      "trib check examples/settled-transactions-v2.yaml", cli_run_check },
    { "history", "ID [--json]",
      "list every version of a product: time, signer, change class",
      "Lists every version of product ID ever published, oldest first: version, time, signer\n"
      "(node id, shortened), catalog seq, the change class against the version before\n"
      "(patch, minor, major) and whether it broke the product's mode. Any node answers.",
      { OPT_JSON }, 1, 1,
      "trib history payments/settled-transactions", cli_run_history },
    { "diff", "ID V1 V2 [--json]",
      "show the changes between two versions and their verdicts",
      "Compares version V2 of product ID with V1: each change with the modes it is compatible\n"
      "under and the bump it needs, and the overall verdict under V2's compatibility mode.",
      { OPT_JSON }, 3, 3,
      "trib diff payments/settled-transactions 1.0.0 2.0.0", cli_run_diff },
    { "watch", "[--domain D] [--product ID] [--from SEQ] [--no-follow]",
      "follow the catalog's change feed (NDJSON)",
      "Writes the node's catalog change feed to stdout, one JSON event per line: published,\n"
      "new_version (with its change_class), breaking, deprecated, retired, policy_changed,\n"
      "grant_changed; from every domain, as this node's replica learns them. Each event has a\n"
      "node-local seq: resume with --from SEQ+1. Runs until interrupted (Ctrl-C: exit 0).",
      { { "domain", "D", 0, "only events of domain D" },
        { "product", "ID", 0, "only events of product ID" },
        { "from", "SEQ", 0, "first event seq (default 1: everything this node logged)" },
        { "no-follow", NULL, 0, "stop at the last event instead of waiting for new ones" } },
      0, 0,
      "trib watch --domain payments --from 120", cli_run_watch },
    { "retire", "ID [--json]",
      "retire a product of the node's domain",
      "Appends a tombstone for product ID to the domain's catalog log: the product stays\n"
      "visible as retired and refuses new records.",
      { OPT_JSON }, 1, 1,
      "trib retire payments/settled-transactions", run_retire },
    { "put", "ID [FILE.ndjson|-] [--json]",
      "append records (NDJSON) to a product",
      "Appends the records in FILE (one JSON object per line; stdin when FILE is '-' or\n"
      "absent; a named pipe streams alike) to product ID, all or nothing, and prints the seqs they\n"
      "were given.",
      { OPT_JSON }, 1, 2,
      "trib put payments/settled-transactions batch.ndjson", run_put },
    { "get", "ID [--from SEQ] [--limit N] [--relay]",
      "read a product's records as NDJSON",
      "Writes product ID's records to stdout as NDJSON, one record per line in seq order, as\n"
      "they arrive. Any node answers; a node that does not own ID sends the read on to the\n"
      "owner's HTTP address (307), or relays it. The token goes to that address only over\n"
      "https, on this machine, or when the node itself is asked over plain http from afar;\n"
      "otherwise, or when the owner's address cannot be reached or answers neither records\n"
      "nor a refusal of the token, the node is asked again to relay (one line on stderr says\n"
      "why).\n"
      "The seq to resume from goes to stderr: with the error if the read fails midway, and\n"
      "at the end when stderr is a terminal (\"last seq 1234; resume with --from 1235\").",
      { { "from", "SEQ", 0, "first record seq to read (default 1)" },
        { "limit", "N", 0, "read at most N records (default or 0: all)" },
        { "relay", NULL, 0, "read through the node asked, never sent on to the owner" } },
      1, 1,
      "trib get payments/settled-transactions --from 100 --limit 10", run_get },
    { "subscribe", "ID [--from SEQ]",
      "follow a product's records live (NDJSON)",
      "Writes product ID's records to stdout as NDJSON, then every new record as it is\n"
      "appended, until interrupted (Ctrl-C exits with status 0). The seq to resume from\n"
      "goes to stderr, as for get. A retired product's records are sent, then it ends\n"
      "(status 0, saying so on stderr); with none left to send it is 410 retired.",
      { { "from", "SEQ", 0, "first record seq to send (default 1: all, then new ones)" } },
      1, 1,
      "trib subscribe payments/settled-transactions --from 1", run_subscribe },
    { "status", "[--json]",
      "show the node's identity, counts and catalog digest",
      "Shows the node id, domain, addresses, uptime, product and member counts, and the\n"
      "catalog digest: the highest contiguous catalog seq held per domain.",
      { OPT_JSON }, 0, 0,
      "trib status --node 127.0.0.1:7481", run_status },
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const cli_cmd_t *find_command(const char *name)
{
    for (size_t i = 0; name && i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int cli_is_command(const char *name)
{
    return find_command(name) != NULL || policy_cmd_is(name) ||
           (name && (strcmp(name, "token") == 0 || strcmp(name, "access") == 0 || strcmp(name, "audit") == 0));
}

void cli_usage(FILE *f)
{
    fprintf(f, "usage: trib COMMAND [OPTIONS] [ARGS]\n\n"
               "Run a node:\n"
               "  %-10s %s\n\n"
               "Ask a node (--node URL, default $TRIB_NODE, else %s):\n",
            "agent", "run this domain's node (see trib agent --help)", CLI_DEFAULT_NODE);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fed_usage(f);
    token_cmd_usage(f);
    access_cmd_usage(f);
    policy_cmd_usage(f);
    fprintf(f, "\nRun 'trib COMMAND --help' for a command's options and an example.\n");
}

static void command_help(const cli_cmd_t *cmd, FILE *f)
{
    fprintf(f, "usage: trib %s %s\n\n%s\n\noptions:\n", cmd->name, cmd->synopsis, cmd->about);
    char left[64];
    int w = 18;   /* the left column: as wide as the widest option ("--token-file FILE" at least) */
    for (size_t i = 0; i < CLI_MAX_OPTS && cmd->opts[i].name; i++) {
        const opts_row_t *o = &cmd->opts[i];
        int n = snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        w = n > w ? n : w;
    }
    opts_help(cmd->opts, w, f);
    fprintf(f, "  %-*s %s\n", w, "--node URL",
            "the node to ask (default $TRIB_NODE, else " CLI_DEFAULT_NODE ")");
    static const opts_row_t auth[] = { OPTS_AUTH_ROWS, { NULL, NULL, 0, NULL } };
    opts_help(auth, w, f);
    fprintf(f, "  %-*s %s\n", w, "-h, --help", "show this help");
    fprintf(f, "\nexample:\n  %s\n", cmd->example);
}
/* ================================================================ messages */

int cli_fail(cli_ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(c->err, "trib: %s: %s%s", c->cmd->name, c->input ? c->input : "", c->input ? ": " : "");
    vfprintf(c->err, fmt, ap);
    fputc('\n', c->err);
    va_end(ap);
    return CLI_FAIL;
}

int cli_usage_error(cli_ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(c->err, "trib: %s: ", c->cmd->name);
    vfprintf(c->err, fmt, ap);
    fprintf(c->err, "\ntry 'trib %s --help'\n", c->cmd->name);
    va_end(ap);
    return CLI_USAGE;
}

/* A transport failure: the client's message already names the node. */
int cli_fail_transport(cli_ctx_t *c, const char *msg)
{
    fprintf(c->err, "trib: %s\n", msg);
    return CLI_FAIL;
}

static const char *reason_phrase(long status)
{
    static const struct { long code; const char *text; } phrases[] = {
        { 400, "Bad Request" }, { 403, "Forbidden" }, { 404, "Not Found" },
        { 405, "Method Not Allowed" }, { 409, "Conflict" }, { 410, "Gone" },
        { 413, "Content Too Large" }, { 500, "Internal Server Error" },
        { 502, "Bad Gateway" }, { 503, "Service Unavailable" }, { 504, "Gateway Timeout" },
        { 507, "Insufficient Storage" },
    };
    for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++)
        if (phrases[i].code == status)
            return phrases[i].text;
    return "unexpected status";
}

/* "<error>: <detail>" from an error object, cleaned to one line; NULL if j is not one. */
char *cli_error_text(json_t *j)
{
    const char *e = json_string_value(json_object_get(j, "error"));
    const char *d = json_string_value(json_object_get(j, "detail"));
    if (!e)
        return NULL;
    size_t n = strlen(e) + (d ? strlen(d) : 0) + 3;
    char *raw = malloc(n);
    if (!raw)
        return NULL;
    snprintf(raw, n, "%s%s%s", e, d && *d ? ": " : "", d && *d ? d : "");
    char *clean = cli_text_clean(raw, DETAIL_MAX);
    free(raw);
    return clean;
}

/* An HTTP error reply: "trib: CMD: 400 bad_manifest: owners.business: required (line 12)". */
int cli_fail_http(cli_ctx_t *c, const client_reply_t *r)
{
    json_t *j = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
    char *text = j ? cli_error_text(j) : NULL;
    char count[96];
    if (text && policy_cmd_refusal_count(j, json_string_value(json_object_get(j, "detail")), count, sizeof count)) {
        char *e = cli_text_clean(json_string_value(json_object_get(j, "error")), 64);   /* the node's word */
        cli_fail(c, "%ld %s: %s", r->status, e ? e : "refused", count);   /* the list below says each once */
        policy_cmd_print_violations(c->err, j);
        json_decref(j);
        free(text);
        free(e);
        return CLI_FAIL;
    }
    const char *input = c->input;
    if (r->status != 400 && r->status != 413 && r->status != 422)
        c->input = NULL;   /* the file is named only where the refusal is about what it holds */
    if (text) {
        cli_fail(c, "%ld %s", r->status, text);
        c->input = input;
        policy_cmd_print_violations(c->err, j);   /* a refused publish lists what it broke */
        json_decref(j);
        free(text);
        return CLI_FAIL;
    }
    json_decref(j);
    /* Not our JSON (a proxy's page?): the status and the start of the body. */
    char *snippet = cli_text_clean(r->body ? r->body : "", 200);
    if (snippet && *snippet)
        cli_fail(c, "%ld %s: %s", r->status, reason_phrase(r->status), snippet);
    else
        cli_fail(c, "%ld %s", r->status, reason_phrase(r->status));
    c->input = input;
    free(snippet);
    return CLI_FAIL;
}
/* ================================================================ argument parsing */

const char *cli_opt(const cli_ctx_t *c, const char *name)
{
    return opts_get(&c->o, name);
}

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    }
    return 0;
}

/* The command's rows and --node, parsed by node/cli_opts.c. */
static int parse_args(cli_ctx_t *c, int argc, char **argv)
{
    size_t k = 0;
    for (; k < CLI_MAX_OPTS && c->cmd->opts[k].name; k++)
        c->rows[k] = c->cmd->opts[k];
    c->rows[k] = (opts_row_t){ "node", "URL", 0, "the node to ask" };
    char msg[256];
    if (opts_parse(&c->o, c->rows, c->cmd->max_pos, argc - 1, argv + 1, msg, sizeof msg) != 0)
        return cli_usage_error(c, "%s", msg);
    const char *node = opts_get(&c->o, "node");
    for (c->npos = 0; c->npos < c->o.npos; c->npos++)
        c->pos[c->npos] = c->o.pos[c->npos];
    if (c->npos < c->cmd->min_pos)
        return cli_usage_error(c, "missing argument: trib %s %s", c->cmd->name, c->cmd->synopsis);

    const char *from = "--node";
    if (!node) {
        node = getenv("TRIB_NODE");
        from = "TRIB_NODE";
        if (!node || !*node) {
            node = CLI_DEFAULT_NODE;
            from = "default node";
        }
    }
    char err[512];
    if (client_base_url(node, CLI_DEFAULT_PORT, c->node, sizeof c->node, err, sizeof err) != 0)
        return cli_usage_error(c, "%s: %s", from, err);
    return CLI_OK;
}

int cli_valid_id(const char *id)
{
    return entry_valid_product_id(id);
}

static void product_path(char path[CLI_PATH_LEN], const char *id, const char *suffix)
{
    snprintf(path, CLI_PATH_LEN, "/v1/products/%s%s", id, suffix ? suffix : "");
}

/* The positional ID, checked, and its request path "/v1/products/ID[suffix]". */
int cli_arg_id(cli_ctx_t *c, const char *suffix, const char **id, char path[CLI_PATH_LEN])
{
    *id = c->pos[0];
    if (!cli_valid_id(*id))
        return cli_usage_error(c, "'%s' is not a product id (DOMAIN/NAME, each " STORE_NAME_RULE
                                  ")", *id);
    product_path(path, *id, suffix);
    return CLI_OK;
}

/* A non-negative integer option, or NULL when absent. */
int cli_arg_uint(cli_ctx_t *c, const char *name, const char **out)
{
    const char *v = cli_opt(c, name);
    *out = NULL;
    if (!v)
        return CLI_OK;
    if (!*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 19)
        return cli_usage_error(c, "--%s: '%s' is not a non-negative integer", name, v);
    *out = v;
    return CLI_OK;
}

/* ================================================================ requests and JSON */

/* Sends rq; on a 2xx reply parses the body as JSON into *out. Returns an exit code. */
int cli_call_json(cli_ctx_t *c, const client_req_t *rq, json_t **out)
{
    client_reply_t rep;
    char err[1024];
    *out = NULL;
    int rc = client_request(c->node, rq, &rep, err, sizeof err);
    if (rc != 0) {
        client_reply_free(&rep);
        return cli_fail_transport(c, err);
    }
    if (rep.status < 200 || rep.status > 299) {
        cli_fail_http(c, &rep);
        client_reply_free(&rep);
        return CLI_FAIL;
    }
    json_error_t je;
    *out = json_loadb(rep.body, rep.len, 0, &je);
    client_reply_free(&rep);
    if (*out)
        return CLI_OK;
    /* jansson quotes the bad token: the reply's bytes, which must not reach the terminal raw. */
    char *why = cli_text_clean(je.text, 0);
    cli_fail(c, "node at %s sent a reply that is not JSON: %s (line %d)", c->node,
             why ? why : "?", je.line);
    free(why);
    return CLI_FAIL;
}

/* Sends rq and prints the reply: the node's JSON with --json, else render's text. */
static int call_and_print(cli_ctx_t *c, const client_req_t *rq, const char *id,
                          cli_render_fn render)
{
    json_t *j;
    int rc = cli_call_json(c, rq, &j);
    if (rc != CLI_OK)
        return rc;
    rc = cli_opt(c, "json") ? cli_print_json(c, j) : render(c, j, id);
    json_decref(j);
    return rc;
}

/* ================================================================ members, products, show */

static int run_members(cli_ctx_t *c)
{
    client_req_t rq = { .method = "GET", .path = "/v1/members", .upload_len = -1 };
    return call_and_print(c, &rq, NULL, cli_render_members);
}

/* The positional words joined with single spaces (the search query), or NULL. */
static char *join_words(cli_ctx_t *c)
{
    size_t n = 1;
    for (size_t i = 0; i < c->npos; i++)
        n += strlen(c->pos[i]) + 1;
    if (c->npos == 0)
        return NULL;
    char *q = malloc(n);
    if (!q)
        return NULL;
    q[0] = '\0';
    for (size_t i = 0; i < c->npos; i++) {
        if (i > 0)
            strcat(q, " ");
        strcat(q, c->pos[i]);
    }
    return q;
}

static int run_products(cli_ctx_t *c)
{
    const char *limit, *offset;
    int rc = cli_arg_uint(c, "limit", &limit);
    if (rc == CLI_OK)
        rc = cli_arg_uint(c, "offset", &offset);
    if (rc != CLI_OK)
        return rc;
    char *q = join_words(c);
    if (c->npos > 0 && !q)
        return cli_fail(c, "out of memory");
    const char *query[] = { "q", q, "domain", cli_opt(c, "domain"), "tag", cli_opt(c, "tag"),
                            "owner", cli_opt(c, "owner"), "status", cli_opt(c, "status"),
                            "classification", cli_opt(c, "classification"), "compliance", cli_opt(c, "compliance"), "limit", limit, "offset", offset, NULL };
    client_req_t rq = { .method = "GET", .path = "/v1/products", .query = query,
                        .upload_len = -1 };
    rc = call_and_print(c, &rq, NULL, cli_render_products);
    free(q);
    return rc;
}

static int run_show(cli_ctx_t *c)
{
    const char *id;
    char path[CLI_PATH_LEN];
    int rc = cli_arg_id(c, NULL, &id, path);
    if (rc != CLI_OK)
        return rc;
    client_req_t rq = { .method = "GET", .path = path, .upload_len = -1 };
    return call_and_print(c, &rq, id, cli_render_product);
}
/* ================================================================ publish, retire */

/* Copies the scalar at key of the YAML mapping root into out; an error message otherwise. */
static int yaml_key(struct fy_node *root, const char *key, char *out, size_t outlen,
                    char *err, size_t errlen)
{
    struct fy_node *n = fy_node_mapping_lookup_by_string(root, key, FY_NT);
    if (!n) {
        snprintf(err, errlen, "%s: required", key);
        return -1;
    }
    size_t len = 0;
    const char *s = fy_node_is_scalar(n) ? fy_node_get_scalar(n, &len) : NULL;
    if (!s) {
        snprintf(err, errlen, "%s: must be a string", key);
        return -1;
    }
    int ok = len < outlen && !memchr(s, '\0', len);   /* a name is at most 63 characters */
    if (ok) {
        memcpy(out, s, len);
        out[len] = '\0';
        ok = entry_valid_name(out);
    }
    if (!ok) {
        char where[32] = "";
        int line = yaml_scalar_line(n);
        if (line > 0)
            snprintf(where, sizeof where, " (line %d)", line);
        snprintf(err, errlen, "%s: '%.*s' is not a valid name (" STORE_NAME_RULE ")%s", key,
                 (int)(len > 80 ? 80 : len), s, where);
        return -1;
    }
    return 0;
}

/* Finds domain and name in a manifest's text. 0, or -1 with err ("name: required"). */
static int manifest_id(const char *text, size_t len, char *id, size_t idlen,
                       char *err, size_t errlen)
{
    struct fy_document *doc = yaml_load(text, len, err, errlen);
    if (!doc)
        return -1;
    int rc = -1;
    struct fy_node *root = fy_document_root(doc);
    char domain[64], name[64];
    if (!root || !fy_node_is_mapping(root))
        snprintf(err, errlen, "not a manifest: expected a mapping with name:, domain:, ...");
    else if (yaml_key(root, "domain", domain, sizeof domain, err, errlen) == 0 &&
             yaml_key(root, "name", name, sizeof name, err, errlen) == 0)
        rc = snprintf(id, idlen, "%s/%s", domain, name) < (int)idlen ? 0 : -1;
    fy_document_destroy(doc);
    return rc;
}

int cli_load_manifest(cli_ctx_t *c, const char *file, char **textp, size_t *lenp, char *id, size_t idlen,
                      const char **ctype)
{
    int is_stdin = strcmp(file, "-") == 0;
    const char *shown = is_stdin ? "stdin" : file;
    size_t len = 0;
    char err[512];
    char *text = is_stdin ? textfile_read_stream(stdin, shown, "a manifest", MAX_MANIFEST, &len, err, sizeof err)
                          : textfile_read(file, "a manifest", MAX_MANIFEST, &len, err, sizeof err);
    if (!text)
        return cli_fail(c, "%s", err);
    size_t skip = strspn(text, " \t\r\n");
    if (skip == len) {
        free(text);
        return cli_fail(c, "%s is empty", shown);
    }
    if (manifest_id(text, len, id, idlen, err, sizeof err) != 0) {
        free(text);
        return cli_fail(c, "%s: %s", shown, err);
    }
    *textp = text;
    *lenp = len;
    *ctype = text[skip] == '{' ? "application/json" : "application/yaml";
    return CLI_OK;
}

static int run_publish(cli_ctx_t *c)
{
    char *text = NULL, id[128];
    size_t len = 0;
    const char *ctype;
    int rc = cli_load_manifest(c, c->pos[0], &text, &len, id, sizeof id, &ctype);
    if (rc != CLI_OK)
        return rc;
    char path[CLI_PATH_LEN];
    product_path(path, id, NULL);
    const char *query[] = { "revive", cli_opt(c, "revive"), NULL };
    client_req_t rq = { .method = "PUT", .path = path, .query = query, .body = text, .body_len = len,
                        .upload_len = -1, .content_type = ctype };
    rc = call_and_print(c, &rq, id, cli_render_published);
    free(text);
    return rc;
}

static int run_retire(cli_ctx_t *c)
{
    const char *id;
    char path[CLI_PATH_LEN];
    int rc = cli_arg_id(c, NULL, &id, path);
    if (rc != CLI_OK)
        return rc;
    client_req_t rq = { .method = "DELETE", .path = path, .upload_len = -1 };
    return call_and_print(c, &rq, id, cli_render_retired);
}
/* ================================================================ put */

static int run_put(cli_ctx_t *c)
{
    const char *id;
    char path[CLI_PATH_LEN];
    int rc = cli_arg_id(c, "/records", &id, path);
    if (rc != CLI_OK)
        return rc;
    const char *file = c->npos > 1 ? c->pos[1] : "-";
    int is_stdin = strcmp(file, "-") == 0;
    char err[600];
    int fd = is_stdin ? -1 : textfile_open(file, 1, err, sizeof err);   /* a FIFO streams, as stdin */
    if (!is_stdin && fd < 0)
        return cli_fail(c, "%s", err);
    FILE *f = is_stdin ? stdin : fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return cli_fail(c, "%s: cannot read: %s", file, strerror(errno));
    }
    struct stat sb;
    long long size = -1;
    if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode))
        size = (long long)sb.st_size - (is_stdin ? (long long)ftello(f) : 0);
    if (size < 0 && is_stdin && isatty(fileno(f)))
        fprintf(c->err, "trib: put: reading NDJSON records from the terminal; end with Ctrl-D\n");
    client_req_t rq = { .method = "POST", .path = path, .upload = f, .upload_len = size,
                        .upload_name = is_stdin ? "stdin" : file, .long_lived = 1,
                        .content_type = "application/x-ndjson" };
    c->input = is_stdin ? NULL : file;   /* "line 3: ..." is a line of it */
    rc = call_and_print(c, &rq, id, cli_render_appended);
    c->input = NULL;
    if (!is_stdin)
        fclose(f);
    return rc;
}
/* ================================================================ get, subscribe */

static int run_get(cli_ctx_t *c)
{
    const char *from, *limit;
    int rc;
    if ((rc = cli_arg_uint(c, "from", &from)) != CLI_OK || (rc = cli_arg_uint(c, "limit", &limit)) != CLI_OK)
        return rc;
    const char *query[] = { "from", from, "limit", limit, NULL };
    return cli_stream_records(c, "/records", query, 0);
}

static int run_subscribe(cli_ctx_t *c)
{
    const char *from;
    int rc;
    if ((rc = cli_arg_uint(c, "from", &from)) != CLI_OK)
        return rc;
    const char *query[] = { "from", from, NULL };
    return cli_stream_records(c, "/stream", query, 1);
}
/* ================================================================ status */

static int run_status(cli_ctx_t *c)
{
    client_req_t rq = { .method = "GET", .path = "/v1/status", .upload_len = -1 };
    return call_and_print(c, &rq, NULL, cli_render_status);
}
/* ================================================================ entry points */

int cli_run(int argc, char **argv, FILE *out, FILE *err)
{
    if (argc < 1 || !argv[0]) {
        fprintf(err, "trib: missing command\ntry 'trib --help'\n");
        return CLI_USAGE;
    }
    if (fed_is_command(argv[0]))   /* keygen, identity, fed: offline (node/cmd_fed.c) */
        return fed_run(argc, argv, out, err);
    if (strcmp(argv[0], "token") == 0)   /* offline: node/cmd_token.c */
        return token_cmd_run(argc, argv, out, err);
    if (strcmp(argv[0], "access") == 0 || strcmp(argv[0], "audit") == 0)   /* node/cmd_access.c */
        return access_cmd_run(argc, argv, out, err);
    if (policy_cmd_is(argv[0]))          /* policy test|sign|submit|show, compliance: node/cmd_policy.c */
        return policy_cmd_run(argc, argv, out, err);
    const cli_cmd_t *cmd = find_command(argv[0]);
    if (!cmd) {
        const char *near = NULL;
        for (size_t i = 0; i < NCOMMANDS && !near; i++)
            if (near_typo(argv[0], strlen(argv[0]), commands[i].name))
                near = commands[i].name;
        if (near)
            fprintf(err, "trib: unknown command '%s' (did you mean %s?)\ntry 'trib --help'\n", argv[0], near);
        else
            fprintf(err, "trib: unknown command '%s'\ntry 'trib --help'\n", argv[0]);
        return CLI_USAGE;
    }
    if (wants_help(argc, argv)) {
        command_help(cmd, out);
        return CLI_OK;
    }
    char aerr[512]; /* --token, --token-file, --cacert, $TRIB_TOKEN (node/client.c) */
    if (client_auth_args(&argc, argv, aerr, sizeof aerr) < 0) {
        fprintf(err, "trib: %s: %s\n", cmd->name, aerr);
        return CLI_USAGE;
    }
    cli_ctx_t *c = calloc(1, sizeof *c);
    if (!c) {
        fprintf(err, "trib: %s: out of memory\n", cmd->name);
        return CLI_FAIL;
    }
    c->cmd = cmd;
    c->out = out;
    c->err = err;
    char msg[256];
    int rc = client_global_init(msg, sizeof msg);
    if (rc != 0) {
        free(c);
        fprintf(err, "trib: %s: %s\n", cmd->name, msg);
        return CLI_FAIL;
    }
    rc = parse_args(c, argc, argv);
    if (rc == CLI_OK)
        rc = cmd->run(c);
    client_global_cleanup();
    free(c);
    if (fflush(out) != 0 && errno != EPIPE && rc == CLI_OK) {
        fprintf(err, "trib: %s: writing output: %s\n", cmd->name, strerror(errno));
        rc = CLI_FAIL;
    }
    return rc;
}

int cli_main(int argc, char **argv)
{
    return cli_run(argc, argv, stdout, stderr);
}
