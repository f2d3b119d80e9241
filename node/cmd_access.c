/* node/cmd_access.c - `trib access request|pending|grant|deny|revoke|mine` and `trib audit`
 * (DESIGN §13): access requests and the owner's decisions, through a node's /v1/access endpoints.
 *
 * Owns: the subcommand table and help, option parsing (--node, --token, --token-file,
 * $TRIB_TOKEN, --json), the request bodies, and the text and --json forms of the replies
 * (--json prints the node's JSON as is: objects with id and state, arrays for pending and mine).
 * Must not: print a token, or decide anything the node decides. */
#include "node/cmd_access.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gossip/token.h"
#include "node/cli.h"
#include "node/cli_opts.h"
#include "node/cli_table.h"
#include "node/client.h"

enum { AC_OK = 0, AC_FAIL = 1, AC_USAGE = 2 };

typedef struct acmd acmd_t;

typedef struct {
    const acmd_t *cmd;
    const char *group;     /* "access" or "audit" */
    FILE *out, *err;
    opts_t a;              /* options; a.pos[0] the positional argument, if any */
    char node[1024];
} actx_t;

struct acmd {
    const char *name;
    const char *synopsis;
    const char *summary;
    const char *about;
    int npos;              /* 0 or 1 positional argument */
    opts_row_t opts[OPTS_MAX];
    const char *example;
    int (*run)(actx_t *c);
};

static int run_request(actx_t *c);
static int run_pending(actx_t *c);
static int run_grant(actx_t *c);
static int run_deny(actx_t *c);
static int run_revoke(actx_t *c);
static int run_mine(actx_t *c);
static int run_audit(actx_t *c);

#define COMMON { "node", "URL", 0, "the node to ask (default $TRIB_NODE, else " CLI_DEFAULT_NODE ")" }, \
               OPTS_AUTH_ROWS, { "json", NULL, 0, "print the node's JSON reply" }

static const acmd_t commands[] = {
    { "request", "ID --purpose TEXT [--fields A,B] [--days N]",
      "ask the owner of product ID for access, through your home node",
      "Signs an access request for product ID into your home domain's log (the node you ask must be\n"
      "your token's domain's node); it reaches the owner by gossip. --fields narrows what you ask for\n"
      "to those fields of the product's schema; --days is how long (default 30). Asking again the\n"
      "same (fields, days, purpose) while the first still waits answers with the first request.",
      1, { { "purpose", "TEXT", 0, "what the data is for (required)" },
           { "fields", "A,B", 0, "only these fields (default: all)" },
           { "days", "N", 0, "for N days (1 to 366, default 30)" }, COMMON },
      "trib --node $GROWTH access request payments/settled-transactions --purpose \"churn model\" --fields txn_id,amount_minor --days 30",
      run_request },
    { "pending", "", "list the requests waiting for this node's decision",
      "Lists the access requests for this node's products that are not decided yet: request id, who,\n"
      "product, purpose, fields and days. Needs a write or admin token of this node's domain.",
      0, { COMMON }, "trib --node $PAYMENTS access pending", run_pending },
    { "grant", "REQ [--days N]", "grant request REQ (owner)",
      "Signs a grant of request REQ into this node's log: the requester may read the product, only\n"
      "the fields asked for, for N days (default: as asked). Needs a write or admin token of the\n"
      "product's domain, on the product's own node.",
      1, { { "days", "N", 0, "for N days (1 to 366; default as asked)" }, COMMON },
      "trib --node $PAYMENTS access grant req-0123456789abcdef --days 30", run_grant },
    { "deny", "REQ [--reason TEXT]", "deny request REQ (owner)",
      "Signs a denial of request REQ into this node's log, with the reason the requester will see.",
      1, { { "reason", "TEXT", 0, "why" }, COMMON },
      "trib --node $PAYMENTS access deny req-0123456789abcdef --reason \"use the aggregated product\"", run_deny },
    { "revoke", "GRANT [--reason TEXT]", "revoke grant GRANT (owner)",
      "Signs a revocation of GRANT into this node's log: reads relying on it stop on every node.",
      1, { { "reason", "TEXT", 0, "why" }, COMMON },
      "trib --node $PAYMENTS access revoke grant-0123456789abcdef", run_revoke },
    { "mine", "", "list your requests and grants, with their state and expiry",
      "Lists the requests and grants of your token's subject as the node you ask knows them (they\n"
      "travel by gossip: a decision made on the owner's node shows here within seconds).",
      0, { COMMON }, "trib --node $GROWTH access mine", run_mine },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const acmd_t audit_cmd = {
    "audit", "[--limit N]", "the owner's audit log of decisions on confidential and restricted data",
    "Shows the newest events of this node's local audit log: time, subject, token id, grant,\n"
    "product, records served, the node asked, allowed or refused and why. Needs an admin token of\n"
    "this node's domain.",
    0, { { "limit", "N", 0, "the newest N events (default 100, at most 10000)" }, COMMON },
    "trib --node $PAYMENTS audit --limit 20", run_audit };

/* ---------------------------------------------------------------- messages */

static int fail(actx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(actx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (c->cmd == &audit_cmd)
        fprintf(c->err, "trib: audit: ");
    else
        fprintf(c->err, "trib: access %s: ", c->cmd ? c->cmd->name : "");
    vfprintf(c->err, fmt, ap);
    fputc('\n', c->err);
    va_end(ap);
    return AC_FAIL;
}

static int usage(actx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage(actx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *name = c->cmd == &audit_cmd ? "audit" : c->cmd ? c->cmd->name : "";
    fprintf(c->err, "trib: %s%s%s: ", c->cmd == &audit_cmd ? "" : "access", c->cmd == &audit_cmd || !*name ? "" : " ",
            name);
    vfprintf(c->err, fmt, ap);
    fprintf(c->err, "\ntry 'trib %s%s%s --help'\n", c->cmd == &audit_cmd ? "" : "access",
            c->cmd == &audit_cmd || !*name ? "" : " ", name);
    va_end(ap);
    return AC_USAGE;
}

/* Untrusted text for the terminal: control bytes as '?', at most max bytes. */
static void put_clean(FILE *f, const char *s, size_t max)
{
    for (size_t i = 0; s && s[i] && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, f);
    }
}

void access_cmd_usage(FILE *f)
{
    fprintf(f, "\nAccess requests and grants (trib access CMD --help):\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  access %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-16s %s\n", "audit", audit_cmd.summary);
}

static void help(const acmd_t *cmd, FILE *f)
{
    int audit = cmd == &audit_cmd;
    fprintf(f, "usage: trib %s%s%s%s\n\n%s\n\noptions:\n", audit ? "audit" : "access ", audit ? "" : cmd->name,
            *cmd->synopsis ? " " : "", cmd->synopsis, cmd->about);
    opts_help(cmd->opts, 18, f);
    fprintf(f, "  %-18s %s\n", "-h, --help", "show this help");
    fprintf(f, "\nexample:\n  %s\n", cmd->example);
}

/* ---------------------------------------------------------------- arguments */

static const char *opt(const actx_t *c, const char *name) { return opts_get(&c->a, name); }

static int parse(actx_t *c, int argc, char **argv)
{
    char msg[256];
    if (opts_parse(&c->a, c->cmd->opts, (size_t)c->cmd->npos, argc, argv, msg, sizeof msg) != 0)
        return usage(c, "%s", msg);
    if (c->cmd->npos && !c->a.pos[0])
        return usage(c, "missing argument: %s", c->cmd->synopsis);
    const char *node = opt(c, "node");
    if (!node)
        node = getenv("TRIB_NODE");
    if (!node || !*node)
        node = CLI_DEFAULT_NODE;
    char err[256];
    if (client_base_url(node, CLI_DEFAULT_PORT, c->node, sizeof c->node, err, sizeof err) != 0)
        return usage(c, "--node: %s", err);
    return AC_OK;   /* --token, --token-file, --cacert: client_auth_args took them (access_cmd_run) */
}

/* ---------------------------------------------------------------- requests */

/* Sends method path with an optional JSON body; on 2xx *reply is the parsed JSON. */
static int call(actx_t *c, const char *method, const char *path, const char *const *query, json_t *body,
                json_t **reply)
{
    char *b = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    client_req_t rq = { .method = method, .path = path, .query = query, .upload_len = -1,
                        .content_type = b ? "application/json" : NULL, .body = b, .body_len = b ? strlen(b) : 0 };
    client_reply_t rep;
    char err[512];
    int rc = client_request(c->node, &rq, &rep, err, sizeof err);
    free(b);
    if (rc != 0) {
        client_reply_free(&rep);
        fprintf(c->err, "trib: %s\n", err);
        return AC_FAIL;
    }
    json_t *j = json_loadb(rep.body ? rep.body : "", rep.len, 0, NULL);
    if (rep.status < 200 || rep.status >= 300) {
        const char *e = json_string_value(json_object_get(j, "error"));
        const char *d = json_string_value(json_object_get(j, "detail"));
        if (c->cmd == &audit_cmd)
            fprintf(c->err, "trib: audit: %ld ", rep.status);
        else
            fprintf(c->err, "trib: access %s: %ld ", c->cmd->name, rep.status);
        put_clean(c->err, e ? e : "error", 64);
        if (d) {
            fputs(": ", c->err);
            put_clean(c->err, d, 1024);
        }
        fputc('\n', c->err);
        json_decref(j);
        client_reply_free(&rep);
        return AC_FAIL;
    }
    client_reply_free(&rep);
    if (!j)
        return fail(c, "the node's reply is not JSON");
    *reply = j;
    return AC_OK;
}

static int print_json(actx_t *c, json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(j);
    if (!s)
        return fail(c, "out of memory");
    fprintf(c->out, "%s\n", s);
    free(s);
    return AC_OK;
}

static const char *str(json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

/* The fields asked or granted, comma-separated ("(all)" when none are named); malloc'd. */
static char *fields_text(json_t *j)
{
    json_t *a = json_object_get(j, "fields");
    if (json_array_size(a) == 0)
        return strdup("(all)");
    size_t cap = 1;
    for (size_t i = 0; i < json_array_size(a); i++)
        cap += json_string_length(json_array_get(a, i)) + 1;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < json_array_size(a); i++) {
        if (i)
            strcat(s, ",");
        const char *f = json_string_value(json_array_get(a, i));
        strcat(s, f ? f : "");
    }
    return s;
}

/* Requests and grants as a table: ID STATE PRODUCT SUBJECT FIELDS DAYS EXPIRES LINKED PURPOSE
 * (LINKED: a request's grant, a grant's request; PURPOSE: the purpose, then the reason given
 * for a denial or revocation). cli_table cuts long cells and neutralises control bytes: every
 * cell but the state, days and expiry comes from another domain's node. */
static int print_rows(actx_t *c, json_t *j)
{
    static const char *const hdr[] = { "ID", "STATE", "PRODUCT", "SUBJECT", "FIELDS", "DAYS", "EXPIRES", "LINKED",
                                       "PURPOSE" };
    cli_table_t *t = cli_table_new(9, hdr);
    if (!t)
        return fail(c, "out of memory");
    cli_table_set_max(t, 0, 64);
    cli_table_set_max(t, 2, 128);
    cli_table_set_max(t, 3, 128);
    cli_table_set_max(t, 4, 200);
    cli_table_set_max(t, 7, 80);
    cli_table_set_max(t, 8, 420);
    int bad = 0;
    for (size_t i = 0; i < json_array_size(j) && !bad; i++) {
        json_t *o = json_array_get(j, i);
        char exp[32], days[24], linked[96], purpose[512];
        cli_time_text((long long)json_integer_value(json_object_get(o, "expires_ms")), exp);
        snprintf(days, sizeof days, "%lldd", (long long)json_integer_value(json_object_get(o, "days")));
        if (*str(o, "request") && strcmp(str(o, "kind"), "grant") == 0)
            snprintf(linked, sizeof linked, "request=%.64s", str(o, "request"));
        else if (*str(o, "grant"))
            snprintf(linked, sizeof linked, "grant=%.64s", str(o, "grant"));
        else
            snprintf(linked, sizeof linked, "-");
        if (*str(o, "reason"))
            snprintf(purpose, sizeof purpose, "\"%.200s\" reason=\"%.200s\"", str(o, "purpose"), str(o, "reason"));
        else
            snprintf(purpose, sizeof purpose, "\"%.200s\"", str(o, "purpose"));
        char *fields = fields_text(o);
        const char *row[] = { str(o, "id"), str(o, "state"), str(o, "product"), str(o, "subject"),
                              fields ? fields : "?", days, exp, linked, purpose };
        bad = !fields || cli_table_add(t, row) != 0;
        free(fields);
    }
    int rc = bad ? fail(c, "out of memory")
                 : cli_table_print(t, c->out, NULL) == 0 ? AC_OK : fail(c, "writing output failed");
    cli_table_destroy(&t);
    return rc;
}

static int print_one(actx_t *c, json_t *j)
{
    if (opt(c, "json"))
        return print_json(c, j);
    json_t *one = json_pack("[O]", j);
    int rc = one ? print_rows(c, one) : fail(c, "out of memory");
    json_decref(one);
    json_decref(j);
    return rc;
}

static int print_list(actx_t *c, json_t *j)
{
    if (opt(c, "json"))
        return print_json(c, j);
    int rc = AC_OK;
    if (json_array_size(j) == 0)
        fprintf(c->out, "(none)\n");
    else
        rc = print_rows(c, j);
    json_decref(j);
    return rc;
}

/* --days N: 1..366 into body. */
static int days_opt(actx_t *c, json_t *body)
{
    const char *d = opt(c, "days");
    if (!d)
        return AC_OK;
    char *end;
    long v = strtol(d, &end, 10);
    if (*d < '0' || *d > '9' || *end || v < 1 || v > 366)
        return usage(c, "--days: expected a whole number from 1 to 366, not '%.32s'", d);
    json_object_set_new(body, "days", json_integer(v));
    return AC_OK;
}

static int run_request(actx_t *c)
{
    if (!cli_valid_id(c->a.pos[0]))
        return usage(c, "'%.128s' is not a product id (domain/name)", c->a.pos[0]);
    const char *purpose = opt(c, "purpose");
    if (!purpose || !*purpose)
        return usage(c, "--purpose TEXT is required: say what the data is for");
    json_t *body = json_pack("{s:s,s:s}", "product", c->a.pos[0], "purpose", purpose);
    if (days_opt(c, body) != AC_OK) {
        json_decref(body);
        return AC_USAGE;
    }
    const char *f = opt(c, "fields");
    if (f) {
        json_t *a = json_array();
        char *copy = strdup(f), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            if (*t)
                json_array_append_new(a, json_string(t));
        free(copy);
        json_object_set_new(body, "fields", a);
    }
    json_t *j = NULL;
    int rc = call(c, "POST", "/v1/access/requests", NULL, body, &j);
    if (rc)
        return rc;
    if (json_is_true(json_object_get(j, "existing")) && !opt(c, "json")) {
        fputs("trib: access request: you asked for this already: request ", c->err);
        put_clean(c->err, str(j, "id"), 64);
        fputs(" waits for the owner's decision; no second request was made\n", c->err);
    }
    return print_one(c, j);
}

static int run_pending(actx_t *c)
{
    const char *q[] = { "state", "requested", NULL };
    json_t *j = NULL;
    int rc = call(c, "GET", "/v1/access/requests", q, NULL, &j);
    return rc ? rc : print_list(c, j);
}

static int id_path(actx_t *c, const char *prefix, const char *kind, const char *suffix, char *path, size_t cap)
{
    size_t pl = strlen(prefix), n = strlen(c->a.pos[0]);
    if (strncmp(c->a.pos[0], prefix, pl) != 0 || n != pl + 16 || strspn(c->a.pos[0] + pl, "0123456789abcdef") != 16)
        return usage(c, "'%.64s' is not a %s id (%s and 16 hex characters)", c->a.pos[0], kind, prefix);
    snprintf(path, cap, "/v1/access/%s/%s/%s", strcmp(kind, "grant") == 0 ? "grants" : "requests", c->a.pos[0], suffix);
    return AC_OK;
}

static int decide(actx_t *c, const char *prefix, const char *kind, const char *verb)
{
    char path[256];
    int rc = id_path(c, prefix, kind, verb, path, sizeof path);
    if (rc)
        return rc;
    json_t *body = json_object();
    if (strcmp(verb, "grant") == 0 && days_opt(c, body) != AC_OK) {
        json_decref(body);
        return AC_USAGE;
    }
    if (opt(c, "reason"))
        json_object_set_new(body, "reason", json_string(opt(c, "reason")));
    json_t *j = NULL;
    rc = call(c, "POST", path, NULL, body, &j);
    return rc ? rc : print_one(c, j);
}

static int run_grant(actx_t *c) { return decide(c, "req-", "request", "grant"); }
static int run_deny(actx_t *c) { return decide(c, "req-", "request", "deny"); }
static int run_revoke(actx_t *c) { return decide(c, "grant-", "grant", "revoke"); }

static int run_mine(actx_t *c)
{
    json_t *j = NULL;
    int rc = call(c, "GET", "/v1/access/mine", NULL, NULL, &j);
    return rc ? rc : print_list(c, j);
}

static int run_audit(actx_t *c)
{
    const char *l = opt(c, "limit");
    const char *q[] = { "limit", l, NULL };
    json_t *j = NULL;
    int rc = call(c, "GET", "/v1/audit", q, NULL, &j);
    if (rc)
        return rc;
    if (opt(c, "json"))
        return print_json(c, j);
    if (json_array_size(j) == 0)
        fprintf(c->out, "(no events)\n");
    for (size_t i = 0; i < json_array_size(j); i++) {
        json_t *e = json_array_get(j, i);
        char when[32];
        cli_time_text((long long)json_integer_value(json_object_get(e, "time_ms")), when);
        fprintf(c->out, "%s %-7s %-7s ", when, json_is_true(json_object_get(e, "allowed")) ? "allowed" : "refused",
                str(e, "action"));
        put_clean(c->out, str(e, "subject"), 128);
        fprintf(c->out, " token=%s grant=%s ", *str(e, "token_id") ? str(e, "token_id") : "-",
                *str(e, "grant") ? str(e, "grant") : "-");
        put_clean(c->out, str(e, "product"), 128);
        fprintf(c->out, " records=%lld via=%.16s", (long long)json_integer_value(json_object_get(e, "records")),
                str(e, "entry_node"));
        if (*str(e, "reason")) {
            fputs(" \"", c->out);
            put_clean(c->out, str(e, "reason"), 200);
            fputc('"', c->out);
        }
        fputc('\n', c->out);
    }
    json_decref(j);
    return AC_OK;
}

/* ---------------------------------------------------------------- entry */

static int run_cmd(const acmd_t *cmd, int argc, char **argv, FILE *out, FILE *err)
{
    actx_t c = { .cmd = cmd, .out = out, .err = err };
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            help(cmd, out);
            return AC_OK;
        }
    char msg[256];
    int rc = parse(&c, argc, argv);
    if (rc == AC_OK) {
        if (client_global_init(msg, sizeof msg) != 0) {
            rc = fail(&c, "%s", msg);
        } else {
            rc = cmd->run(&c);
            client_global_cleanup();
        }
    }
    return rc;
}

int access_cmd_run(int argc, char **argv, FILE *out, FILE *err)
{
    char aerr[512];   /* --token, --token-file, --cacert, $TRIB_TOKEN: node/client.c, as every command */
    if (client_auth_args(&argc, argv, aerr, sizeof aerr) < 0) {
        fprintf(err, "trib: %s: %s\n", argv[0], aerr);
        return AC_USAGE;
    }
    if (strcmp(argv[0], "audit") == 0)
        return run_cmd(&audit_cmd, argc - 1, argv + 1, out, err);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        FILE *f = argc < 2 ? err : out;
        fprintf(f, "usage: trib access COMMAND [OPTIONS]\n");
        access_cmd_usage(f);
        return argc < 2 ? AC_USAGE : AC_OK;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, argv[1]) == 0)
            return run_cmd(&commands[i], argc - 2, argv + 2, out, err);
    fprintf(err, "trib: access: unknown command '%.64s'\ntry 'trib access --help'\n", argv[1]);
    return AC_USAGE;
}
