/* node/cli.c - the `trib` client commands: members, products, show, publish, retire, put, get,
 * subscribe, status (DESIGN.md §10, docs/http-api.md).
 *
 * Owns: the command table and help texts, option parsing (options before or after positional
 * arguments, "--opt V" or "--opt=V", "--" ends options), exit codes, reading manifests and
 * record files, relaying NDJSON as it arrives, and rendering replies as tables or as the
 * node's JSON pretty-printed.
 * Must not: speak HTTP itself (node/client.c does), touch storage, or validate manifests beyond
 * finding their domain and name (the node validates fully). */
#include "node/cli.h"

#include <errno.h>
#include <jansson.h>
#include <libfyaml.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gossip/entry.h"
#include "node/cli_table.h"
#include "node/client.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

#define MAX_OPTS        8
#define MAX_POS         64
#define NODE_URL_MAX    1024
#define MAX_MANIFEST    (4u << 20)     /* bytes read from a manifest file */
#define HOLD_MAX        4096           /* longest NDJSON line checked for an error object */
#define TITLE_MAX       60
#define OWNER_MAX       40
#define DETAIL_MAX      2000
#define PATH_LEN        256            /* "/v1/products/" + a product id + a suffix */

/* ================================================================ command table */

typedef struct {
    const char *name;     /* without "--" */
    const char *arg;      /* placeholder for its value, NULL for a flag */
    const char *help;
} opt_t;

typedef struct cmd cmd_t;

typedef struct {
    const cmd_t *cmd;
    FILE *out, *err;
    char node[NODE_URL_MAX];
    const char *val[MAX_OPTS];        /* by index into cmd->opts; "1" for a set flag */
    const char *pos[MAX_POS];
    size_t npos;
} ctx_t;

struct cmd {
    const char *name;
    const char *synopsis;             /* after "trib NAME" */
    const char *summary;              /* one line for the command list */
    const char *about;                /* a paragraph for NAME --help */
    opt_t opts[MAX_OPTS];             /* ends at name == NULL */
    size_t min_pos, max_pos;
    const char *example;
    int (*run)(ctx_t *c);
};

static int run_members(ctx_t *c);
static int run_products(ctx_t *c);
static int run_show(ctx_t *c);
static int run_publish(ctx_t *c);
static int run_retire(ctx_t *c);
static int run_put(ctx_t *c);
static int run_get(ctx_t *c);
static int run_subscribe(ctx_t *c);
static int run_status(ctx_t *c);

#define OPT_JSON { "json", NULL, "print the node's JSON reply (pretty) instead of text" }

static const cmd_t commands[] = {
    { "members", "[--json]",
      "list the federation's nodes and their state",
      "Lists the nodes this node knows about: domain, node id (shortened; full with --json),\n"
      "peer address, HTTP address, SWIM state (alive, suspect, dead, left) and incarnation.",
      { OPT_JSON }, 0, 0,
      "trib members --node http://10.0.0.5:7480", run_members },
    { "products", "[--domain D] [--tag T] [--owner O] [--status S] [--limit N] [--offset N] [--json] [QUERY...]",
      "list or search the catalog",
      "Lists the products in the node's replica of the whole catalog (every domain), or searches\n"
      "it: QUERY's words are looked up in names, titles, descriptions, tags, owners and schema\n"
      "field names (snake_case, kebab-case and dotted names split into words; the last word also\n"
      "matches as a prefix). Best matches first: the exact id or name, then products matching\n"
      "more of the words, name and tag matches before descriptions. Filters narrow the hits;\n"
      "the line under the table counts the hits per domain, status and tag (--json: all facets).",
      { { "domain", "D", "only products of domain D" },
        { "tag", "T", "only products tagged T" },
        { "owner", "O", "only products with owner O (business or technical)" },
        { "status", "S", "only products in status S (draft, active, deprecated, retired)" },
        { "limit", "N", "show at most N products (default 100, at most 1000)" },
        { "offset", "N", "skip the first N products of the ranking" },
        OPT_JSON },
      0, MAX_POS,
      "trib products --domain payments --tag finance settled", run_products },
    { "show", "ID [--json]",
      "show one product: manifest, signer, catalog seq",
      "Shows product ID (DOMAIN/NAME): its catalog metadata, owners, description, schema and\n"
      "every other field of the manifest. Any node answers from its catalog replica.",
      { OPT_JSON }, 1, 1,
      "trib show payments/settled-transactions", run_show },
    { "publish", "FILE.yaml|- [--json]",
      "create or update a product of the node's domain",
      "Sends the manifest in FILE (YAML or JSON; '-' reads stdin) to the node, which validates\n"
      "it, signs a catalog entry and gossips it. The manifest's domain must be the node's.",
      { OPT_JSON }, 1, 1,
      "trib publish settled-transactions.yaml", run_publish },
    { "retire", "ID [--json]",
      "retire a product of the node's domain",
      "Appends a tombstone for product ID to the domain's catalog log: the product stays\n"
      "visible as retired and refuses new records.",
      { OPT_JSON }, 1, 1,
      "trib retire payments/settled-transactions", run_retire },
    { "put", "ID [FILE.ndjson|-] [--json]",
      "append records (NDJSON) to a product",
      "Appends the records in FILE (one JSON object per line; stdin when FILE is '-' or\n"
      "absent) to product ID, all or nothing, and prints the seqs they were given.",
      { OPT_JSON }, 1, 2,
      "trib put payments/settled-transactions batch.ndjson", run_put },
    { "get", "ID [--from SEQ] [--limit N]",
      "read a product's records as NDJSON",
      "Writes product ID's records to stdout as NDJSON, one record per line in seq order, as\n"
      "they arrive. Any node answers; a node that does not own ID relays from the owner.",
      { { "from", "SEQ", "first record seq to read (default 1)" },
        { "limit", "N", "read at most N records (default or 0: all)" } },
      1, 1,
      "trib get payments/settled-transactions --from 100 --limit 10", run_get },
    { "subscribe", "ID [--from SEQ]",
      "follow a product's records live (NDJSON)",
      "Writes product ID's records to stdout as NDJSON, then every new record as it is\n"
      "appended, until interrupted (Ctrl-C exits with status 0).",
      { { "from", "SEQ", "first record seq to send (default 1: all, then new ones)" } },
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

static const cmd_t *find_command(const char *name)
{
    for (size_t i = 0; name && i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int cli_is_command(const char *name)
{
    return find_command(name) != NULL;
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
    fprintf(f, "\nRun 'trib COMMAND --help' for a command's options and an example.\n");
}

static void command_help(const cmd_t *cmd, FILE *f)
{
    fprintf(f, "usage: trib %s %s\n\n%s\n\noptions:\n", cmd->name, cmd->synopsis, cmd->about);
    char left[64];
    for (const opt_t *o = cmd->opts; o->name; o++) {
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(f, "  %-14s %s\n", left, o->help);
    }
    fprintf(f, "  %-14s %s\n", "--node URL",
            "the node to ask (default $TRIB_NODE, else " CLI_DEFAULT_NODE ")");
    fprintf(f, "  %-14s %s\n", "-h, --help", "show this help");
    fprintf(f, "\nexample:\n  %s\n", cmd->example);
}

/* ================================================================ messages */

static int fail(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(c->err, "trib: %s: ", c->cmd->name);
    vfprintf(c->err, fmt, ap);
    fputc('\n', c->err);
    va_end(ap);
    return CLI_FAIL;
}

static int usage_error(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(ctx_t *c, const char *fmt, ...)
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
static int fail_transport(ctx_t *c, const char *msg)
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
    };
    for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++)
        if (phrases[i].code == status)
            return phrases[i].text;
    return "unexpected status";
}

/* "<error>: <detail>" from an error object, cleaned to one line; NULL if j is not one. */
static char *error_text(json_t *j)
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
static int fail_http(ctx_t *c, const client_reply_t *r)
{
    json_t *j = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
    char *text = j ? error_text(j) : NULL;
    json_decref(j);
    if (text) {
        fail(c, "%ld %s", r->status, text);
        free(text);
        return CLI_FAIL;
    }
    /* Not our JSON (a proxy's page?): the status and the start of the body. */
    char *snippet = cli_text_clean(r->body ? r->body : "", 200);
    if (snippet && *snippet)
        fail(c, "%ld %s: %s", r->status, reason_phrase(r->status), snippet);
    else
        fail(c, "%ld %s", r->status, reason_phrase(r->status));
    free(snippet);
    return CLI_FAIL;
}

/* ================================================================ argument parsing */

static const char *opt_val(const ctx_t *c, const char *name)
{
    for (size_t i = 0; i < MAX_OPTS && c->cmd->opts[i].name; i++)
        if (strcmp(c->cmd->opts[i].name, name) == 0)
            return c->val[i];
    return NULL;
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

static int parse_args(ctx_t *c, int argc, char **argv)
{
    const char *node = NULL;
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {   /* "-" is stdin: positional */
            if (c->npos == MAX_POS)
                return usage_error(c, "too many arguments");
            c->pos[c->npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (a[1] != '-')
            return usage_error(c, "unknown option '%s'", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const char *value = eq ? eq + 1 : NULL;
        const char *arg = NULL;
        int idx = -1;
        if (nlen == 4 && strncmp(name, "node", 4) == 0) {
            arg = "URL";
        } else {
            for (int k = 0; k < MAX_OPTS && c->cmd->opts[k].name; k++)
                if (strlen(c->cmd->opts[k].name) == nlen &&
                    strncmp(c->cmd->opts[k].name, name, nlen) == 0)
                    idx = k;
            if (idx < 0)
                return usage_error(c, "unknown option '--%.*s'", (int)nlen, name);
            arg = c->cmd->opts[idx].arg;
        }
        if (!arg) {
            if (value)
                return usage_error(c, "option '--%.*s' takes no value", (int)nlen, name);
            value = "1";
        } else if (!value) {
            if (i + 1 >= argc)
                return usage_error(c, "option '--%.*s' needs a value (%s)", (int)nlen, name,
                                   arg);
            value = argv[++i];
        }
        if (idx < 0)
            node = value;
        else
            c->val[idx] = value;
    }
    if (c->npos < c->cmd->min_pos)
        return usage_error(c, "missing argument: trib %s %s", c->cmd->name, c->cmd->synopsis);
    if (c->npos > c->cmd->max_pos)
        return usage_error(c, "unexpected argument '%s'", c->pos[c->cmd->max_pos]);

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
        return usage_error(c, "%s: %s", from, err);
    return CLI_OK;
}

int cli_valid_id(const char *id)
{
    return entry_valid_product_id(id);
}

static void product_path(char path[PATH_LEN], const char *id, const char *suffix)
{
    snprintf(path, PATH_LEN, "/v1/products/%s%s", id, suffix ? suffix : "");
}

/* The positional ID, checked, and its request path "/v1/products/ID[suffix]". */
static int arg_id(ctx_t *c, const char *suffix, const char **id, char path[PATH_LEN])
{
    *id = c->pos[0];
    if (!cli_valid_id(*id))
        return usage_error(c, "'%s' is not a product id (DOMAIN/NAME, each [a-z0-9][a-z0-9-]*, "
                              "at most 63 characters)", *id);
    product_path(path, *id, suffix);
    return CLI_OK;
}

/* A non-negative integer option, or NULL when absent. */
static int arg_uint(ctx_t *c, const char *name, const char **out)
{
    const char *v = opt_val(c, name);
    *out = NULL;
    if (!v)
        return CLI_OK;
    if (!*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 19)
        return usage_error(c, "--%s: '%s' is not a non-negative integer", name, v);
    *out = v;
    return CLI_OK;
}

/* ================================================================ requests and JSON */

/* Sends rq; on a 2xx reply parses the body as JSON into *out. Returns an exit code. */
static int call_json(ctx_t *c, const client_req_t *rq, json_t **out)
{
    client_reply_t rep;
    char err[1024];
    *out = NULL;
    int rc = client_request(c->node, rq, &rep, err, sizeof err);
    if (rc != 0) {
        client_reply_free(&rep);
        return fail_transport(c, err);
    }
    if (rep.status < 200 || rep.status > 299) {
        fail_http(c, &rep);
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
    fail(c, "node at %s sent a reply that is not JSON: %s (line %d)", c->node, why ? why : "?",
         je.line);
    free(why);
    return CLI_FAIL;
}

static int get_json(ctx_t *c, const char *path, const char *const *query, json_t **out)
{
    client_req_t rq = { .method = "GET", .path = path, .query = query, .upload_len = -1 };
    return call_json(c, &rq, out);
}

static int print_json(ctx_t *c, json_t *j)
{
    if (json_dumpf(j, c->out, JSON_INDENT(2) | JSON_ENCODE_ANY) != 0 || fputc('\n', c->out) == EOF)
        return fail(c, "writing output failed");
    return CLI_OK;
}

/* Renders a 2xx reply j as text (id: the command's product, or NULL). Returns an exit code. */
typedef int (*render_fn)(ctx_t *c, json_t *j, const char *id);

/* Sends rq and prints the reply: the node's JSON with --json, else render's text. */
static int call_and_print(ctx_t *c, const client_req_t *rq, const char *id, render_fn render)
{
    json_t *j;
    int rc = call_json(c, rq, &j);
    if (rc != CLI_OK)
        return rc;
    rc = opt_val(c, "json") ? print_json(c, j) : render(c, j, id);
    json_decref(j);
    return rc;
}

/* A JSON value as text for a table cell: strings bare, arrays of strings joined with ", ",
 * numbers and booleans printed, null and absent "-", anything else as compact JSON. */
static char *value_text(json_t *v)
{
    if (!v || json_is_null(v))
        return strdup("-");
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_integer(v)) {
        char b[32];
        snprintf(b, sizeof b, "%lld", (long long)json_integer_value(v));
        return strdup(b);
    }
    if (json_is_boolean(v))
        return strdup(json_is_true(v) ? "true" : "false");
    if (json_is_array(v)) {
        size_t i, n = 1;
        json_t *e;
        int all_strings = 1;
        json_array_foreach(v, i, e) {
            if (!json_is_string(e))
                all_strings = 0;
            else
                n += strlen(json_string_value(e)) + 2;
        }
        if (all_strings) {   /* appended at an offset: strcat made a long list quadratic */
            char *s = malloc(n), *at = s;
            if (!s)
                return NULL;
            json_array_foreach(v, i, e) {
                size_t k = strlen(json_string_value(e));
                if (i > 0) {
                    memcpy(at, ", ", 2);
                    at += 2;
                }
                memcpy(at, json_string_value(e), k);
                at += k;
            }
            *at = '\0';
            return s;
        }
    }
    return json_dumps(v, JSON_ENCODE_ANY);
}

static const char *str_or(json_t *obj, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && *s ? s : dflt;
}

static void short_id(const char *id, char out[13])
{
    snprintf(out, 13, "%s", id ? id : "-");
}

/* Adds one row of owned strings (freed here), reporting OOM once. */
static int table_add_owned(cli_table_t *t, char **cells, size_t n)
{
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        if (!cells[i])
            ok = 0;
    if (ok && cli_table_add(t, (const char *const *)cells) != 0)
        ok = 0;
    for (size_t i = 0; i < n; i++)
        free(cells[i]);
    return ok ? 0 : -1;
}

static int print_table(ctx_t *c, cli_table_t *t, const char *indent)
{
    int rc = cli_table_print(t, c->out, indent);
    cli_table_destroy(&t);
    return rc == 0 ? CLI_OK : fail(c, "writing output failed");
}

/* ================================================================ members */

static int cmp_members(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int r = strcmp(str_or(x, "domain", ""), str_or(y, "domain", ""));
    return r ? r : strcmp(str_or(x, "node_id", ""), str_or(y, "node_id", ""));
}

static int run_members(ctx_t *c)
{
    json_t *j;
    int rc = get_json(c, "/v1/members", NULL, &j);
    if (rc != CLI_OK)
        return rc;
    if (opt_val(c, "json")) {
        rc = print_json(c, j);
        json_decref(j);
        return rc;
    }
    json_t *list = json_object_get(j, "members");
    size_t n = json_array_size(list);
    json_t **sorted = calloc(n ? n : 1, sizeof *sorted);
    static const char *const hdr[] = { "DOMAIN", "NODE", "ADDRESS", "HTTP", "STATE", "INC" };
    cli_table_t *t = cli_table_new(6, hdr);
    if (!sorted || !t) {
        free(sorted);
        cli_table_destroy(&t);
        json_decref(j);
        return fail(c, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = json_array_get(list, i);
    qsort(sorted, n, sizeof *sorted, cmp_members);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *m = sorted[i];
        char node[13], nodecol[32], inc[24];
        short_id(str_or(m, "node_id", "-"), node);
        snprintf(nodecol, sizeof nodecol, "%s%s", node,
                 json_is_true(json_object_get(m, "self")) ? " (self)" : "");
        json_t *iv = json_object_get(m, "incarnation");
        if (json_is_integer(iv))
            snprintf(inc, sizeof inc, "%lld", (long long)json_integer_value(iv));
        else
            snprintf(inc, sizeof inc, "-");
        const char *row[] = { str_or(m, "domain", "-"), nodecol, str_or(m, "addr", "-"),
                              str_or(m, "http", "-"), str_or(m, "state", "-"), inc };
        if (cli_table_add(t, row) != 0)
            bad = 1;
    }
    free(sorted);
    json_decref(j);
    if (bad) {
        cli_table_destroy(&t);
        return fail(c, "out of memory");
    }
    if (n == 0) {
        cli_table_destroy(&t);
        fprintf(c->out, "no members known\n");
        return CLI_OK;
    }
    return print_table(c, t, NULL);
}

/* ================================================================ products */

/* The positional words joined with single spaces (the search query), or NULL. */
static char *join_words(ctx_t *c)
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

/* "domain: payments 3, growth 2 | status: active 4 | tag: cards 3, finance 2, ..." from the
 * reply's facets (most frequent first, as the node sends them), or nothing without facets. */
static void print_facets(ctx_t *c, json_t *facets)
{
    static const char *const shown[] = { "domain", "status", "tag" };
    enum { PER_FACET = 4 };
    int any = 0;
    for (size_t i = 0; i < sizeof shown / sizeof *shown; i++) {
        json_t *f = json_object_get(facets, shown[i]);
        if (!json_is_object(f) || json_object_size(f) == 0)
            continue;
        fprintf(c->out, "%s%s:", any ? " | " : "", shown[i]);
        any = 1;
        const char *k;
        json_t *v;
        size_t n = 0;
        json_object_foreach(f, k, v) {
            if (n == PER_FACET) {
                fprintf(c->out, ", ...");
                break;
            }
            char *clean = cli_text_clean(k, 40);
            fprintf(c->out, "%s %s %lld", n ? "," : "", clean ? clean : "?", (long long)json_integer_value(v));
            free(clean);
            n++;
        }
    }
    if (any)
        fputc('\n', c->out);
}

static int run_products(ctx_t *c)
{
    const char *limit, *offset;
    int rc = arg_uint(c, "limit", &limit);
    if (rc == CLI_OK)
        rc = arg_uint(c, "offset", &offset);
    if (rc != CLI_OK)
        return rc;
    char *q = join_words(c);
    if (c->npos > 0 && !q)
        return fail(c, "out of memory");
    const char *query[] = { "q", q, "domain", opt_val(c, "domain"), "tag", opt_val(c, "tag"),
                            "owner", opt_val(c, "owner"), "status", opt_val(c, "status"),
                            "limit", limit, "offset", offset, NULL };
    int filtered = q || opt_val(c, "domain") || opt_val(c, "tag") || opt_val(c, "owner") ||
                   opt_val(c, "status");
    json_t *j;
    rc = get_json(c, "/v1/products", query, &j);
    free(q);
    if (rc != CLI_OK)
        return rc;
    if (opt_val(c, "json")) {
        rc = print_json(c, j);
        json_decref(j);
        return rc;
    }
    json_t *list = json_object_get(j, "products");
    size_t n = json_array_size(list);
    json_t *tv = json_object_get(j, "total");
    long long total = json_is_integer(tv) ? (long long)json_integer_value(tv) : (long long)n;
    if (n == 0) {
        json_decref(j);
        fprintf(c->out, filtered ? "no products match\n" : "no products\n");
        return CLI_OK;
    }
    static const char *const hdr[] = { "ID", "VERSION", "STATUS", "OWNER", "TITLE" };
    cli_table_t *t = cli_table_new(5, hdr);
    if (!t) {
        json_decref(j);
        return fail(c, "out of memory");
    }
    cli_table_set_max(t, 3, OWNER_MAX);
    cli_table_set_max(t, 4, TITLE_MAX);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {   /* the node's rank order */
        json_t *p = json_array_get(list, i);
        const char *row[] = { str_or(p, "id", "-"), str_or(p, "version", "-"),
                              str_or(p, "status", "-"),
                              str_or(json_object_get(p, "owners"), "business", "-"),
                              str_or(p, "title", "") };
        if (cli_table_add(t, row) != 0)
            bad = 1;
    }
    if (bad) {
        json_decref(j);
        cli_table_destroy(&t);
        return fail(c, "out of memory");
    }
    rc = print_table(c, t, NULL);
    if (rc == CLI_OK && total > (long long)n)
        fprintf(c->out, "(%zu of %lld shown)\n", n, total);
    if (rc == CLI_OK)
        print_facets(c, json_object_get(j, "facets"));
    json_decref(j);
    return rc;
}

/* ================================================================ show */

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

/* Adds label/value rows for every key of obj not in skip. */
static int add_other_fields(cli_table_t *t, json_t *obj, const char *const *skip)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        if (in_list(k, skip))
            continue;
        char *cells[] = { strdup(k), value_text(v) };
        if (table_add_owned(t, cells, 2) != 0)
            return -1;
    }
    return 0;
}

static int show_schema(ctx_t *c, json_t *schema)
{
    size_t i;
    json_t *p;
    int with_desc = 0;
    json_array_foreach(schema, i, p)
        if (json_string_value(json_object_get(p, "description")))
            with_desc = 1;
    static const char *const hdr[] = { "NAME", "TYPE", "REQUIRED", "KEY", "DESCRIPTION" };
    cli_table_t *t = cli_table_new(with_desc ? 5 : 4, hdr);
    if (!t)
        return fail(c, "out of memory");
    json_array_foreach(schema, i, p) {
        const char *row[] = {
            str_or(p, "name", "-"), str_or(p, "logicalType", "-"),
            json_is_true(json_object_get(p, "required")) ? "yes" : "no",
            json_is_true(json_object_get(p, "primaryKey")) ? "yes" : "",
            str_or(p, "description", ""),
        };
        if (cli_table_add(t, row) != 0) {
            cli_table_destroy(&t);
            return fail(c, "out of memory");
        }
    }
    fprintf(c->out, "\nschema\n");
    return print_table(c, t, "  ");
}

static int show_product(ctx_t *c, json_t *j, const char *id)
{
    json_t *m = json_object_get(j, "manifest");
    cli_table_t *t = cli_table_new(2, NULL);
    if (!t)
        return fail(c, "out of memory");
    json_t *owners = json_object_get(j, "owners");
    char owners_text[1024];
    snprintf(owners_text, sizeof owners_text, "%s (business), %s (technical)",
             str_or(owners, "business", "-"), str_or(owners, "technical", "-"));
    json_t *on = json_object_get(j, "owner_node");
    char owner_text[1024] = "-";
    if (json_is_object(on)) {
        const char *nid = str_or(on, "node_id", "-"), *addr = str_or(on, "addr", ""), *http = str_or(on, "http", "");
        snprintf(owner_text, sizeof owner_text, "%.12s%s%s%s%s (%s)", nid, *addr ? " peer " : "", addr,
                 *http ? " http " : "", http, str_or(on, "state", "unknown"));
    }
    static const struct { const char *label, *key; } head[] = {
        { "id", "id" }, { "title", "title" }, { "version", "version" }, { "status", "status" },
        { "classification", "classification" }, { "owners", NULL }, { "tags", "tags" },
        { "catalog seq", "catalog_seq" }, { "manifest seq", "manifest_seq" }, { "signer", "signer" },
        { "owner node", NULL }, { "updated", "updated" }, { "records", "records" },
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof head / sizeof head[0] && !bad; i++) {
        int is_owners = !strcmp(head[i].label, "owners");
        if (!head[i].key && !is_owners && !json_is_object(on))
            continue;                         /* an older node does not say */
        if (!head[i].key) {
            const char *row[] = { head[i].label, is_owners ? owners_text : owner_text };
            bad = cli_table_add(t, row) != 0;
            continue;
        }
        json_t *v = json_object_get(j, head[i].key);
        if (!v && (!strcmp(head[i].key, "records") || !strcmp(head[i].key, "manifest_seq")))
            continue;                         /* only the owning node knows the record count */
        char *cells[] = { strdup(head[i].label), value_text(v) };
        bad = table_add_owned(t, cells, 2) != 0;
    }
    static const char *const shown[] = { "id", "domain", "name", "title", "version", "status",
                                         "classification", "owners", "tags", "catalog_seq",
                                         "manifest_seq", "signer", "owner_node", "updated",
                                         "records", "manifest", NULL };
    if (!bad)
        bad = add_other_fields(t, j, shown) != 0;
    if (bad) {
        cli_table_destroy(&t);
        return fail(c, "out of memory");
    }
    int rc = print_table(c, t, NULL);
    if (rc != CLI_OK || !json_is_object(m))
        return rc;

    json_t *desc = json_object_get(m, "description");
    if (json_is_object(desc) && json_object_size(desc) > 0) {
        t = cli_table_new(2, NULL);
        static const char *const order[] = { "purpose", "usage", "limitations", NULL };
        for (size_t i = 0; t && order[i] && !bad; i++) {
            json_t *v = json_object_get(desc, order[i]);
            if (!v)
                continue;
            char *cells[] = { strdup(order[i]), value_text(v) };
            bad = table_add_owned(t, cells, 2) != 0;
        }
        if (!t || bad || add_other_fields(t, desc, order) != 0) {
            cli_table_destroy(&t);
            return fail(c, "out of memory");
        }
        fprintf(c->out, "\ndescription\n");
        if ((rc = print_table(c, t, "  ")) != CLI_OK)
            return rc;
    } else if (json_is_string(desc)) {
        char *d = cli_text_clean(json_string_value(desc), 0);
        fprintf(c->out, "\ndescription\n  %s\n", d ? d : "");
        free(d);
    }

    json_t *schema = json_object_get(m, "schema");
    if (json_array_size(schema) > 0 && (rc = show_schema(c, schema)) != CLI_OK)
        return rc;

    static const char *const known[] = { "name", "domain", "version", "status", "title",
                                         "description", "owners", "tags", "classification",
                                         "schema", NULL };
    t = cli_table_new(2, NULL);
    if (!t || add_other_fields(t, m, known) != 0) {
        cli_table_destroy(&t);
        return fail(c, "out of memory");
    }
    if (cli_table_rows(t) == 0) {
        cli_table_destroy(&t);
        return CLI_OK;
    }
    fprintf(c->out, "\nother fields\n");
    return print_table(c, t, "  ");
}

static int run_show(ctx_t *c)
{
    const char *id;
    char path[PATH_LEN];
    int rc = arg_id(c, NULL, &id, path);
    if (rc != CLI_OK)
        return rc;
    client_req_t rq = { .method = "GET", .path = path, .upload_len = -1 };
    return call_and_print(c, &rq, id, show_product);
}

/* ================================================================ publish, retire */

/* Reads all of f (at most max bytes) into a NUL-terminated buffer. */
static char *read_all(FILE *f, size_t max, size_t *len, int *too_big)
{
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);
    *too_big = 0;
    while (buf) {
        if (n + 1 == cap) {
            if (cap > max) {
                *too_big = 1;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                break;
            buf[n] = '\0';
            *len = n;
            if (n > max) {
                *too_big = 1;
                break;
            }
            return buf;
        }
    }
    free(buf);
    return NULL;
}

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
        const struct fy_mark *mk = fy_token_start_mark(fy_node_get_scalar_token(n));
        char where[32] = "";
        if (mk)
            snprintf(where, sizeof where, " (line %d)", mk->line + 1);
        snprintf(err, errlen, "%s: '%.*s' is not valid: [a-z0-9][a-z0-9-]*, at most 63 "
                 "characters%s", key, (int)(len > 80 ? 80 : len), s, where);
        return -1;
    }
    return 0;
}

static void yaml_diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag;
    (void)user;
    (void)buf;
    (void)len;
}

/* Finds domain and name in a manifest's text. 0, or -1 with err ("name: required"). */
static int manifest_id(const char *text, size_t len, char *id, size_t idlen,
                       char *err, size_t errlen)
{
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = yaml_diag_discard;
    dcfg.colorize = false;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (!diag) {
        snprintf(err, errlen, "cannot create the YAML diagnostics");
        return -1;
    }
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg pcfg = { .flags = FYPCF_QUIET | FYPCF_COLLECT_DIAG, .diag = diag };
    struct fy_document *doc = fy_document_build_from_string(&pcfg, text, len);
    int rc = -1;
    if (!doc) {
        void *it = NULL;
        struct fy_diag_error *e = fy_diag_errors_iterate(diag, &it);
        if (e)
            snprintf(err, errlen, "not valid YAML: %s (line %d)", e->msg, e->line);   /* 1-based */
        else
            snprintf(err, errlen, "not valid YAML");
        goto out;
    }
    struct fy_node *root = fy_document_root(doc);
    if (!root || !fy_node_is_mapping(root)) {
        snprintf(err, errlen, "not a manifest: expected a mapping with name:, domain:, ...");
        goto out;
    }
    char domain[64], name[64];
    if (yaml_key(root, "domain", domain, sizeof domain, err, errlen) != 0 ||
        yaml_key(root, "name", name, sizeof name, err, errlen) != 0)
        goto out;
    snprintf(id, idlen, "%s/%s", domain, name);
    rc = 0;
out:
    fy_document_destroy(doc);
    fy_diag_destroy(diag);
    return rc;
}

static int print_published(ctx_t *c, json_t *j, const char *id)
{
    fprintf(c->out, "published %s: %s, catalog seq %lld\n", str_or(j, "id", id),
            json_is_true(json_object_get(j, "created")) ? "created" : "updated",
            (long long)json_integer_value(json_object_get(j, "catalog_seq")));
    return CLI_OK;
}

static int run_publish(ctx_t *c)
{
    const char *file = c->pos[0];
    int is_stdin = strcmp(file, "-") == 0;
    const char *shown = is_stdin ? "stdin" : file;
    FILE *f = is_stdin ? stdin : fopen(file, "rb");
    if (!f)
        return fail(c, "cannot open %s: %s", file, strerror(errno));
    size_t len = 0;
    int too_big = 0;
    char *text = read_all(f, MAX_MANIFEST, &len, &too_big);
    int saved = errno;
    if (!is_stdin)
        fclose(f);
    if (!text) {
        if (too_big)
            return fail(c, "%s: over %u MiB, too large for a manifest", shown, MAX_MANIFEST >> 20);
        return fail(c, "reading %s: %s", shown, strerror(saved));
    }
    size_t skip = strspn(text, " \t\r\n");
    if (skip == len) {
        free(text);
        return fail(c, "%s is empty", shown);
    }
    char id[128], err[512];
    if (manifest_id(text, len, id, sizeof id, err, sizeof err) != 0) {
        free(text);
        return fail(c, "%s: %s", shown, err);
    }
    char path[PATH_LEN];
    product_path(path, id, NULL);
    client_req_t rq = { .method = "PUT", .path = path, .body = text, .body_len = len,
                        .upload_len = -1,
                        .content_type = text[skip] == '{' ? "application/json"
                                                          : "application/yaml" };
    int rc = call_and_print(c, &rq, id, print_published);
    free(text);
    return rc;
}

static int print_retired(ctx_t *c, json_t *j, const char *id)
{
    fprintf(c->out, "retired %s: catalog seq %lld\n", str_or(j, "id", id),
            (long long)json_integer_value(json_object_get(j, "catalog_seq")));
    return CLI_OK;
}

static int run_retire(ctx_t *c)
{
    const char *id;
    char path[PATH_LEN];
    int rc = arg_id(c, NULL, &id, path);
    if (rc != CLI_OK)
        return rc;
    client_req_t rq = { .method = "DELETE", .path = path, .upload_len = -1 };
    return call_and_print(c, &rq, id, print_retired);
}

/* ================================================================ put */

static int print_appended(ctx_t *c, json_t *j, const char *id)
{
    long long n = json_integer_value(json_object_get(j, "count"));
    long long first = json_integer_value(json_object_get(j, "first_seq"));
    long long last = json_integer_value(json_object_get(j, "last_seq"));
    if (n > 0)
        fprintf(c->out, "appended %lld record%s to %s: seq %lld..%lld\n", n, n == 1 ? "" : "s",
                str_or(j, "id", id), first, last);
    else
        fprintf(c->out, "appended 0 records to %s\n", str_or(j, "id", id));
    return CLI_OK;
}

static int run_put(ctx_t *c)
{
    const char *id;
    char path[PATH_LEN];
    int rc = arg_id(c, "/records", &id, path);
    if (rc != CLI_OK)
        return rc;
    const char *file = c->npos > 1 ? c->pos[1] : "-";
    int is_stdin = strcmp(file, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(file, "rb");
    if (!f)
        return fail(c, "cannot open %s: %s", file, strerror(errno));
    struct stat sb;
    long long size = -1;
    if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode))
        size = (long long)sb.st_size - (is_stdin ? (long long)ftello(f) : 0);
    if (size < 0 && is_stdin && isatty(fileno(f)))
        fprintf(c->err, "trib: put: reading NDJSON records from the terminal; end with Ctrl-D\n");
    client_req_t rq = { .method = "POST", .path = path, .upload = f, .upload_len = size,
                        .upload_name = is_stdin ? "stdin" : file, .long_lived = 1,
                        .content_type = "application/x-ndjson" };
    rc = call_and_print(c, &rq, id, print_appended);
    if (!is_stdin)
        fclose(f);
    return rc;
}

/* ================================================================ get, subscribe */

/* Relays an NDJSON body to out line by line as it arrives. A line that is an error object
 * ({"error": ..., "detail": ...} and nothing else) is held back: if the body ends with it, it
 * is the node's report that the read failed midway (a relay lost the owner), not a record. */
typedef struct {
    FILE *out;
    char *line;                /* the line being collected (up to HOLD_MAX bytes) */
    size_t len, cap;
    int passthrough;           /* current line is longer than HOLD_MAX: written as it comes */
    char *held;                /* a complete error-shaped line not yet known to be the last */
    size_t held_len;
    int write_errno;           /* set when writing to out failed */
} relay_t;

static int relay_write(relay_t *r, const char *data, size_t len)
{
    if (r->held) {
        char *h = r->held;
        r->held = NULL;
        int rc = relay_write(r, h, r->held_len);
        free(h);
        if (rc != 0)
            return rc;
    }
    if (len && fwrite(data, 1, len, r->out) != len) {
        r->write_errno = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

static int is_error_line(const char *line, size_t len)
{
    if (len > HOLD_MAX || !memmem(line, len, "\"error\"", 7))
        return 0;
    json_t *j = json_loadb(line, len, 0, NULL);
    int ok = json_is_object(j) && json_is_string(json_object_get(j, "error"));
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
        if (!((strcmp(k, "error") == 0) || (strcmp(k, "detail") == 0 && json_is_string(v))))
            ok = 0;
    json_decref(j);
    return ok;
}

static int relay_line(relay_t *r, const char *line, size_t len)
{
    if (is_error_line(line, len)) {
        if (relay_write(r, NULL, 0) != 0)      /* an earlier held line was a record */
            return -1;
        r->held = malloc(len);
        if (!r->held) {
            r->write_errno = ENOMEM;
            return -1;
        }
        memcpy(r->held, line, len);
        r->held_len = len;
        return 0;
    }
    return relay_write(r, line, len);
}

static int relay_sink(void *ctx, const char *data, size_t len)
{
    relay_t *r = ctx;
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t seg = nl ? (size_t)(nl - data) + 1 : len;
        if (r->passthrough) {
            if (relay_write(r, data, seg) != 0)
                return -1;
            if (nl)
                r->passthrough = 0;
        } else if (r->len + seg > HOLD_MAX) {
            if (relay_write(r, r->line, r->len) != 0 || relay_write(r, data, seg) != 0)
                return -1;
            r->len = 0;
            r->passthrough = !nl;
        } else {
            if (r->len + seg > r->cap) {
                size_t cap = r->cap ? r->cap : 4096;
                while (cap < r->len + seg)
                    cap *= 2;
                char *nb = realloc(r->line, cap);
                if (!nb) {
                    r->write_errno = ENOMEM;
                    return -1;
                }
                r->line = nb;
                r->cap = cap;
            }
            memcpy(r->line + r->len, data, seg);
            r->len += seg;
            if (nl) {
                size_t n = r->len;
                r->len = 0;
                if (relay_line(r, r->line, n) != 0)
                    return -1;
            }
        }
        data += seg;
        len -= seg;
    }
    if (fflush(r->out) != 0) {
        r->write_errno = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

static volatile sig_atomic_t stop_flag;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int stream_records(ctx_t *c, const char *suffix, const char *const *query, int live)
{
    const char *id;
    char path[PATH_LEN];
    int rc = arg_id(c, suffix, &id, path);
    if (rc != CLI_OK)
        return rc;
    relay_t r = { .out = c->out };
    client_req_t rq = { .method = "GET", .path = path, .query = query, .upload_len = -1,
                        .long_lived = 1, .sink = relay_sink, .sink_ctx = &r };
    /* Notice a reader that went away (`trib subscribe X | head -1`) even while no record
     * arrives to fail a write. */
    int out_fd = fileno(c->out);
    if (out_fd >= 0)
        rq.watch_fd = &out_fd;

    /* Writes to a closed pipe fail with EPIPE instead of killing us; for subscribe, SIGINT
     * and SIGTERM end the transfer and the command succeeds. */
    struct sigaction ign = { .sa_handler = SIG_IGN }, stop = { .sa_handler = on_stop_signal };
    struct sigaction old_pipe, old_int, old_term;
    sigemptyset(&ign.sa_mask);
    sigemptyset(&stop.sa_mask);
    sigaction(SIGPIPE, &ign, &old_pipe);
    if (live) {
        stop_flag = 0;
        rq.stop = &stop_flag;
        sigaction(SIGINT, &stop, &old_int);
        sigaction(SIGTERM, &stop, &old_term);
    }
    client_reply_t rep;
    char err[1024];
    int cr = client_request(c->node, &rq, &rep, err, sizeof err);
    if (live) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }

    if (cr == 0 && (rep.status < 200 || rep.status > 299)) {
        rc = fail_http(c, &rep);
    } else if (cr == CLIENT_GONE) {
        rc = CLI_OK;
    } else if (cr == CLIENT_SINK) {
        rc = r.write_errno == EPIPE ? CLI_OK
                                    : fail(c, "writing output: %s", strerror(r.write_errno));
    } else if (cr < 0) {
        fflush(c->out);
        rc = fail_transport(c, err);
    } else {
        /* A last line without '\n' is still a line. */
        if (!r.passthrough && r.len > 0) {
            size_t n = r.len;
            r.len = 0;
            if (relay_line(&r, r.line, n) == 0 && !r.held)
                relay_write(&r, "\n", 1);
        }
        if (r.held) {
            json_t *j = json_loadb(r.held, r.held_len, 0, NULL);
            char *text = error_text(j);
            json_decref(j);
            fflush(c->out);
            rc = fail(c, "%s", text ? text : "the node reported an error");
            free(text);
        } else if (fflush(c->out) != 0 && errno != EPIPE) {
            rc = fail(c, "writing output: %s", strerror(errno));
        } else if (cr == CLIENT_STOPPED || !live) {
            rc = CLI_OK;
        } else {
            rc = fail(c, "the node at %s ended the stream", c->node);
        }
    }
    sigaction(SIGPIPE, &old_pipe, NULL);
    client_reply_free(&rep);
    free(r.line);
    free(r.held);
    return rc;
}

static int run_get(ctx_t *c)
{
    const char *from, *limit;
    int rc;
    if ((rc = arg_uint(c, "from", &from)) != CLI_OK || (rc = arg_uint(c, "limit", &limit)) != CLI_OK)
        return rc;
    const char *query[] = { "from", from, "limit", limit, NULL };
    return stream_records(c, "/records", query, 0);
}

static int run_subscribe(ctx_t *c)
{
    const char *from;
    int rc;
    if ((rc = arg_uint(c, "from", &from)) != CLI_OK)
        return rc;
    const char *query[] = { "from", from, NULL };
    return stream_records(c, "/stream", query, 1);
}

/* ================================================================ status */

static void format_uptime(long long s, char *out, size_t len)
{
    if (s < 60)
        snprintf(out, len, "%llds", s);
    else if (s < 3600)
        snprintf(out, len, "%lldm %llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, len, "%lldh %lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(out, len, "%lldd %lldh", s / 86400, s % 86400 / 3600);
}

static int cmp_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int show_status(ctx_t *c, json_t *j, const char *id)
{
    char uptime[64] = "-", products[64] = "-", members[256] = "";
    json_t *v = json_object_get(j, "uptime_s");
    if (json_is_integer(v))
        format_uptime((long long)json_integer_value(v), uptime, sizeof uptime);
    v = json_object_get(j, "products");
    if (json_is_integer(v)) {
        json_t *rv = json_object_get(j, "records");
        int n = snprintf(products, sizeof products, "%lld", (long long)json_integer_value(v));
        if (json_is_integer(rv) && n > 0)
            snprintf(products + n, sizeof products - (size_t)n, " (%lld records)",
                     (long long)json_integer_value(rv));
    }
    json_t *ms = json_object_get(j, "members");
    static const char *const states[] = { "alive", "suspect", "dead", "left", NULL };
    size_t at = 0;
    for (size_t i = 0; states[i] && at < sizeof members; i++)
        at += (size_t)snprintf(members + at, sizeof members - at, "%s%lld %s", i ? ", " : "",
                               (long long)json_integer_value(json_object_get(ms, states[i])),
                               states[i]);
    const char *k;
    json_object_foreach(ms, k, v)
        if (!in_list(k, states) && at < sizeof members)
            at += (size_t)snprintf(members + at, sizeof members - at, ", %lld %s",
                                   (long long)json_integer_value(v), k);

    cli_table_t *t = cli_table_new(2, NULL);
    if (!t)
        return fail(c, "out of memory");
    const char *rows[][2] = {
        { "node", str_or(j, "node_id", "-") }, { "domain", str_or(j, "domain", "-") },
        { "version", str_or(j, "version", "-") }, { "peer", str_or(j, "listen", "-") },
        { "http", str_or(j, "http", "-") }, { "uptime", uptime }, { "products", products },
        { "members", ms ? members : "-" },
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        bad |= cli_table_add(t, rows[i]) != 0;
    static const char *const shown[] = { "node_id", "domain", "version", "listen", "http",
                                         "uptime_s", "products", "records", "members",
                                         "digest", NULL };
    if (bad || add_other_fields(t, j, shown) != 0) {
        cli_table_destroy(&t);
        return fail(c, "out of memory");
    }
    int rc = print_table(c, t, NULL);
    if (rc != CLI_OK)
        return rc;

    json_t *digest = json_object_get(j, "digest");
    size_t n = json_object_size(digest), i = 0;
    if (n == 0)
        return CLI_OK;
    const char **domains = calloc(n, sizeof *domains);
    static const char *const hdr[] = { "DOMAIN", "HEAD-SEQ" };
    t = cli_table_new(2, hdr);
    if (!domains || !t) {
        free(domains);
        cli_table_destroy(&t);
        return fail(c, "out of memory");
    }
    json_object_foreach(digest, k, v)
        domains[i++] = k;
    qsort(domains, n, sizeof *domains, cmp_strings);
    for (i = 0; i < n && !bad; i++) {
        char *cells[] = { strdup(domains[i]), value_text(json_object_get(digest, domains[i])) };
        bad = table_add_owned(t, cells, 2) != 0;
    }
    free(domains);
    if (bad) {
        cli_table_destroy(&t);
        return fail(c, "out of memory");
    }
    fputc('\n', c->out);
    return print_table(c, t, NULL);
}

static int run_status(ctx_t *c)
{
    client_req_t rq = { .method = "GET", .path = "/v1/status", .upload_len = -1 };
    return call_and_print(c, &rq, NULL, show_status);
}

/* ================================================================ entry points */

int cli_run(int argc, char **argv, FILE *out, FILE *err)
{
    if (argc < 1 || !argv[0]) {
        fprintf(err, "trib: missing command\ntry 'trib --help'\n");
        return CLI_USAGE;
    }
    const cmd_t *cmd = find_command(argv[0]);
    if (!cmd) {
        fprintf(err, "trib: unknown command '%s'\ntry 'trib --help'\n", argv[0]);
        return CLI_USAGE;
    }
    if (wants_help(argc, argv)) {
        command_help(cmd, out);
        return CLI_OK;
    }
    ctx_t *c = calloc(1, sizeof *c);
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
