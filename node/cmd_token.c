/* node/cmd_token.c - `trib token show|attenuate` (offline) and `trib token issue|revoke` (asking
 * a node: POST /v1/tokens, /v1/tokens/revoke with the admin token from --token, --token-file or
 * $TRIB_TOKEN).
 *
 * Owns: the subcommand table and help, option parsing, reading the token (argument, "-" for
 * stdin, or $TRIB_TOKEN), the text and --json forms of a token's claims, and, with --data DIR,
 * comparing the issuer key with that node's key and the token with the revocations it made
 * (DIR/revoked.tokens, written by node/auth.c). Tokens are made and checked by gossip/token.c.
 * Must not: talk to a node (issue and revoke do, next to the node's endpoints), print a token
 * anywhere but stdout, or print a secret key. */
#include "node/cmd_token.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gossip/clock.h"
#include "gossip/identity.h"
#include "gossip/token.h"
#include "node/cli.h"
#include "node/cli_opts.h"
#include "node/cli_table.h"
#include "node/client.h"
#include <sodium.h>

enum { TK_OK = 0, TK_FAIL = 1, TK_USAGE = 2 };

typedef struct tcmd tcmd_t;

typedef struct {
    const tcmd_t *cmd;
    FILE *out, *err;
    opts_t a;             /* options; a.pos[0] the token argument, if any */
} tctx_t;

struct tcmd {
    const char *name;
    const char *synopsis;
    const char *summary;
    const char *about;
    opts_row_t opts[OPTS_MAX];
    const char *example;
    int (*run)(tctx_t *c);
};

static int run_show(tctx_t *c);
static int run_attenuate(tctx_t *c);
static int run_issue(tctx_t *c);
static int run_revoke(tctx_t *c);

#define OPT_JSON { "json", NULL, 0, "print a JSON object (id, state, claims) instead of text" }

static const tcmd_t commands[] = {
    { "show", "[TOKEN|-] [--data DIR] [--json]",
      "who, what, which products, until when, and whether the token holds",
      "Decodes TOKEN (or stdin with '-', or $TRIB_TOKEN when omitted) and checks its chain of\n"
      "signatures, that every block only narrows, and its times. Offline that is all: whether the\n"
      "issuer key is really the domain's, and whether the token was revoked, must be checked by a\n"
      "node, or, with --data DIR, against the key of the node whose data dir that is and the\n"
      "revocations it made (DIR/revoked.tokens). Exit 0 only when the token holds.",
      { { "data", "DIR", 0, "also check the issuer key is the key of the node in DIR, and that it has not revoked the token" },
        OPT_JSON },
      "trib token show \"$TRIB_TOKEN\"", run_show },
    { "attenuate", "[TOKEN|-] [--product GLOB] [--ttl DURATION] [--kind KIND] [--json]",
      "narrow a token offline (fewer products, shorter life, fewer rights)",
      "Adds a block to TOKEN that narrows it and prints the new token. Anyone holding a token can\n"
      "do this without a node; nobody can widen one or take a block off. GLOB is DOMAIN/NAME where\n"
      "'*' matches any run of characters within a part, and must lie within the token's products;\n"
      "DURATION is N followed by s, m, h or d, counted from now, and must end before the token\n"
      "does; KIND (read, write, admin) must be no more than the token's.",
      { { "product", "GLOB", 0, "only products matching GLOB" },
        { "ttl", "DURATION", 0, "expire DURATION from now" },
        { "kind", "KIND", 0, "read, write or admin, at most the token's kind" }, OPT_JSON },
      "trib token attenuate \"$T\" --product 'payments/settled-*' --ttl 1h", run_attenuate },
    { "issue", "--sub SUBJECT --kind KIND --ttl DURATION [--product GLOB] [--node URL] [--json]",
      "a node issues a token for its domain (needs its admin token)",
      "Asks the node (--node, else $TRIB_NODE) to issue a token of its domain, signed by its key,\n"
      "and prints only the token (so T=$(trib token issue ...) works). The request carries the\n"
      "admin token from --token T, --token-file F or $TRIB_TOKEN (DATA/admin.token at first).",
      { { "sub", "SUBJECT", 0, "who the token is for: local@domain" },
        { "kind", "KIND", 0, "read, write or admin" },
        { "ttl", "DURATION", 0, "N followed by s, m, h or d" },
        { "product", "GLOB", 0, "only products matching GLOB (default: all of the domain's)" },
        { "node", "URL", 0, "the node to ask (default $TRIB_NODE)" }, OPTS_AUTH_ROWS, OPT_JSON },
      "trib token issue --sub ci@payments --kind write --ttl 24h", run_issue },
    { "revoke", "TOKEN_OR_ID [--node URL] [--json]",
      "the issuing node revokes a token (and every token narrowed from it)",
      "Asks the node that issued the token to revoke it: from then on it refuses the token and\n"
      "every attenuation of it with 401 token_revoked. TOKEN_OR_ID is the token itself, its id\n"
      "(as `trib token show` prints it; the node must have issued or seen it), or a 128-hex\n"
      "revocation id (a block's signature). Needs the node's admin token, as issue does. A token\n"
      "revoked already is refused 409 already_revoked (exit 1): nothing more is signed.",
      { { "node", "URL", 0, "the node to ask (default $TRIB_NODE)" }, OPTS_AUTH_ROWS, OPT_JSON },
      "trib token revoke \"$T\"", run_revoke },
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* ---------------------------------------------------------------- messages */

static int fail(tctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(tctx_t *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(c->err, "trib: token %s: ", c->cmd->name);
    va_start(ap, fmt);
    vfprintf(c->err, fmt, ap);
    va_end(ap);
    fputc('\n', c->err);
    return TK_FAIL;
}

static int usage(tctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage(tctx_t *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(c->err, "trib: token %s: ", c->cmd->name);
    va_start(ap, fmt);
    vfprintf(c->err, fmt, ap);
    va_end(ap);
    fprintf(c->err, "\ntry 'trib token %s --help'\n", c->cmd->name);
    return TK_USAGE;
}

void token_cmd_usage(FILE *f)
{
    fprintf(f, "\nAccess tokens (show, attenuate: offline):\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  token %-10s %s\n", commands[i].name, commands[i].summary);
}

static void command_help(const tcmd_t *cmd, FILE *f)
{
    fprintf(f, "usage: trib token %s %s\n\n%s\n\noptions:\n", cmd->name, cmd->synopsis, cmd->about);
    opts_help(cmd->opts, 20, f);
    fprintf(f, "\nexample:\n  %s\n", cmd->example);
}

/* ---------------------------------------------------------------- arguments */

static int parse_args(tctx_t *c, int argc, char **argv)
{
    char msg[256];
    return opts_parse(&c->a, c->cmd->opts, 1, argc, argv, msg, sizeof msg) ? usage(c, "%s", msg) : TK_OK;
}

static const char *opt(const tctx_t *c, const char *name) { return opts_get(&c->a, name); }

/* The token text: the argument, stdin for "-", else $TRIB_TOKEN; surrounding white space
 * dropped (a file or a $(...) often ends in a newline). malloc'd, or NULL after a message. */
static char *read_token(tctx_t *c, int *rc)
{
    char *t = NULL;
    if (c->a.pos[0] && strcmp(c->a.pos[0], "-") == 0) {
        t = malloc(TOKEN_MAX_TEXT + 2);
        size_t n = t ? fread(t, 1, TOKEN_MAX_TEXT + 1, stdin) : 0;
        if (!t || ferror(stdin)) {
            free(t);
            *rc = fail(c, "cannot read the token from stdin");
            return NULL;
        }
        t[n] = '\0';
    } else {
        const char *src = c->a.pos[0] ? c->a.pos[0] : getenv("TRIB_TOKEN");
        if (!src || !*src) {
            *rc = usage(c, "no token: give TOKEN, '-' for stdin, or set TRIB_TOKEN");
            return NULL;
        }
        t = strdup(src);
        if (!t) {
            *rc = fail(c, "out of memory");
            return NULL;
        }
    }
    size_t len = strlen(t);
    while (len > 0 && strchr(" \t\r\n", t[len - 1]))
        t[--len] = '\0';
    size_t lead = strspn(t, " \t\r\n");
    memmove(t, t + lead, len - lead + 1);
    return t;
}


/* "1h" -> ms; 0 or -1. N >= 1 followed by s, m, h or d, at most 366 days. */
static int parse_ttl(const char *s, int64_t *ms)
{
    char *end;
    errno = 0;
    if (!s || *s < '0' || *s > '9')
        return -1;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno || n == 0 || end[0] == '\0' || end[1] != '\0')
        return -1;
    long long unit = end[0] == 's' ? 1000LL : end[0] == 'm' ? 60000LL : end[0] == 'h' ? 3600000LL
                   : end[0] == 'd' ? 86400000LL : 0;
    if (unit == 0 || n > (unsigned long long)(TOKEN_TTL_MAX_MS / unit))
        return -1;
    *ms = (int64_t)n * unit;
    return 0;
}

/* ---------------------------------------------------------------- show */

static json_t *claims_json(const token_claims_t *cl, const char *state, token_reason_t r, const char *why,
                           int issuer_checked)
{
    char issuer[ID_HEX_LEN], issued[32], expires[32], rid[2 * TOKEN_SIG_LEN + 1];
    json_t *j = json_object();
    json_object_set_new(j, "id", cl->nblocks ? json_string(cl->id) : json_null());
    json_object_set_new(j, "state", json_string(state));
    json_object_set_new(j, "reason", json_string(token_reason_name(r)));
    if (r != TOKEN_OK)
        json_object_set_new(j, "error", json_string(why));
    if (cl->nblocks == 0)
        return j;
    identity_hex(cl->issuer_key, issuer);
    cli_time_text((long long)cl->issued_ms, issued);
    cli_time_text((long long)cl->expires_ms, expires);
    json_object_set_new(j, "subject", json_string(cl->subject));
    json_object_set_new(j, "domain", json_string(cl->domain));
    json_object_set_new(j, "issuer", json_string(issuer));
    json_object_set_new(j, "issuer_checked", json_boolean(issuer_checked));
    json_object_set_new(j, "kind", json_string(token_kind_name(cl->kind)));
    json_object_set_new(j, "products", json_string(cl->scope));
    json_object_set_new(j, "issued", json_string(issued));
    json_object_set_new(j, "expires", json_string(expires));
    json_object_set_new(j, "blocks", json_integer((json_int_t)cl->nblocks));
    json_t *ids = json_array();
    for (size_t i = 0; i < cl->nblocks; i++) {
        token_revocation_hex(cl->revocation_ids[i], rid);
        json_array_append_new(ids, json_string(rid));
    }
    json_object_set_new(j, "revocation_ids", ids);
    return j;
}

static void print_text(FILE *f, json_t *j, const char *note)
{
    static const char *const keys[] = { "id", "state", "subject", "domain", "issuer", "kind", "products",
                                        "issued", "expires", "blocks", NULL };
    for (size_t i = 0; keys[i]; i++) {
        json_t *v = json_object_get(j, keys[i]);
        if (!v || json_is_null(v))
            continue;
        if (json_is_integer(v))
            fprintf(f, "%-10s %lld\n", keys[i], (long long)json_integer_value(v));
        else
            fprintf(f, "%-10s %s%s\n", keys[i], json_string_value(v),
                    strcmp(keys[i], "state") == 0 && note ? note : "");
    }
    json_t *ids = json_object_get(j, "revocation_ids");
    size_t i;
    json_t *v;
    if (json_array_size(ids))
        fprintf(f, "revocation ids (one per block):\n");
    json_array_foreach(ids, i, v)
        fprintf(f, "  %zu  %s\n", i, json_string_value(v));
}

/* With --data DIR: 1 the issuer key is DIR's node key, 0 it is not, -1 error (message out). */
static int issuer_is_node(tctx_t *c, const char *dir, const uint8_t key[ID_PK_LEN])
{
    char path[PATH_MAX], why[PATH_MAX + 128];
    struct stat st;
    identity_t id;
    if (snprintf(path, sizeof path, "%s/identity.key", dir) >= (int)sizeof path)
        return fail(c, "--data %s: path too long", dir), -1;
    if (stat(path, &st) != 0)   /* identity_load_or_create would make one: only read a node's */
        return fail(c, "--data %s: %s: %s (is it a node's data dir?)", dir, path, strerror(errno)), -1;
    if (identity_load_or_create(dir, &id, NULL, why, sizeof why) != 0)
        return fail(c, "--data %s: %s", dir, why), -1;
    int same = memcmp(id.pk, key, ID_PK_LEN) == 0;
    identity_wipe(&id);
    return same;
}

/* With --data DIR whose node issued the token: the first block of cl that the node revoked
 * (DIR/revoked.tokens: one revocation id in hex a line, as node/auth.c writes it), or -1. A
 * revoked block revokes every token narrowed from it, so any block listed counts. */
static int revoked_block(const char *dir, const token_claims_t *cl)
{
    char path[PATH_MAX], line[256], rid[2 * TOKEN_SIG_LEN + 1];
    if (snprintf(path, sizeof path, "%s/revoked.tokens", dir) >= (int)sizeof path)
        return -1;
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;               /* none revoked yet */
    int hit = -1;
    while (hit < 0 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        for (size_t i = 0; i < cl->nblocks && hit < 0; i++) {
            token_revocation_hex(cl->revocation_ids[i], rid);
            if (!strcmp(line, rid))
                hit = (int)i;
        }
    }
    fclose(f);
    return hit;
}

static int run_show(tctx_t *c)
{
    int rc = TK_OK;
    char *t = read_token(c, &rc);
    if (!t)
        return rc;
    char why[256] = "";
    token_claims_t cl;
    token_reason_t r = token_inspect(t, strlen(t), clock_wall_ms(), &cl, why, sizeof why);
    free(t);
    int checked = 0, revoked = -1;
    const char *dir = opt(c, "data");
    if (r == TOKEN_OK && dir) {
        int k = issuer_is_node(c, dir, cl.issuer_key);
        if (k < 0)
            return TK_FAIL;
        checked = 1;
        if (!k) {
            r = TOKEN_UNKNOWN_ISSUER;
            snprintf(why, sizeof why, "the issuer key is not the key of the node in %s", dir);
        } else if ((revoked = revoked_block(dir, &cl)) >= 0) {
            snprintf(why, sizeof why, "block %d (revocation id in the list above) is revoked in %s/revoked.tokens: "
                     "every node refuses it once the revocation reaches it", revoked, dir);
        }
    }
    const char *state = revoked >= 0 ? "revoked" : r == TOKEN_OK ? "valid" : r == TOKEN_EXPIRED ? "expired"
                      : r == TOKEN_NOT_YET_VALID ? "not_yet_valid" : "invalid";
    json_t *j = claims_json(&cl, state, r, why, checked);
    if (!j)
        return fail(c, "out of memory");
    if (revoked >= 0) {          /* token.c has no word for it: revocations are the node's */
        json_object_set_new(j, "reason", json_string("revoked"));
        json_object_set_new(j, "error", json_string(why));
    }
    if (opt(c, "json")) {
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s)
            fprintf(c->out, "%s\n", s);
        free(s);
    } else if (cl.nblocks) {
        const char *note = r != TOKEN_OK || revoked >= 0 ? NULL
                         : checked ? " (signatures, times, the issuer is this node, and it has not revoked it)"
                                   : " (signatures and times; the issuer key and revocations must be checked by a node, "
                                     "or --data DIR)";
        /* past its expiry but inside the clock skew nodes allow: valid, but not for long */
        char late[160];
        int64_t ago = clock_wall_ms() - cl.expires_ms;
        if (r == TOKEN_OK && revoked < 0 && ago > 0) {
            snprintf(late, sizeof late, " (expired %lld s ago; nodes accept it for another %lld s, for clock skew)",
                     (long long)(ago / 1000), (long long)((TOKEN_SKEW_MS - ago + 999) / 1000));
            note = late;
        }
        print_text(c->out, j, note);
    }
    json_decref(j);
    if (revoked >= 0)
        return fail(c, "revoked: %s", why);
    if (r != TOKEN_OK)
        return fail(c, "%s: %s", token_reason_name(r), why);
    return TK_OK;
}

/* ---------------------------------------------------------------- attenuate */

static int run_attenuate(tctx_t *c)
{
    const char *product = opt(c, "product"), *ttl = opt(c, "ttl"), *kind = opt(c, "kind");
    token_narrow_t n = { 0, product, 0 };
    int64_t now = clock_wall_ms(), ttl_ms = 0;
    if (!product && !ttl && !kind)
        return usage(c, "nothing to narrow: give --product, --ttl or --kind");
    if (kind && token_kind_parse(kind, &n.kind) != 0)
        return usage(c, "--kind '%s': expected read, write or admin", kind);
    if (product && !token_glob_valid(product))
        return usage(c, "--product '%s': expected DOMAIN/NAME of [a-z0-9-] and '*', e.g. payments/settled-*",
                     product);
    if (ttl && parse_ttl(ttl, &ttl_ms) != 0)
        return usage(c, "--ttl '%s': expected N followed by s, m, h or d (e.g. 1h), at most 366d", ttl);

    int rc = TK_OK;
    char *t = read_token(c, &rc);
    if (!t)
        return rc;
    char why[256] = "", *out = NULL;
    token_claims_t cl;
    token_reason_t r = token_inspect(t, strlen(t), now, &cl, why, sizeof why);
    if (r != TOKEN_OK) {
        free(t);
        return fail(c, "the token is refused: %s: %s", token_reason_name(r), why);
    }
    if (ttl) {
        n.expires_ms = now + ttl_ms;
        if (n.expires_ms > cl.expires_ms) {
            char at[32];
            cli_time_text((long long)cl.expires_ms, at);
            free(t);
            return fail(c, "--ttl %s ends after the token expires (%s): an attenuation can only shorten it",
                        ttl, at);
        }
    }
    if (token_attenuate(t, &n, now, &out, why, sizeof why) != 0) {
        free(t);
        return fail(c, "%s", why);
    }
    free(t);
    if (opt(c, "json")) {
        token_claims_t nc;
        token_inspect(out, strlen(out), now, &nc, why, sizeof why);
        json_t *j = claims_json(&nc, "valid", TOKEN_OK, why, 0);
        json_object_set_new(j, "token", json_string(out));
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s)
            fprintf(c->out, "%s\n", s);
        free(s);
        json_decref(j);
    } else {
        fprintf(c->out, "%s\n", out);
    }
    free(out);
    return TK_OK;
}

/* ---------------------------------------------------------------- issue, revoke */

/* POSTs body to path on the node; prints the reply's error and returns TK_FAIL, or TK_OK with
 * *reply (the JSON object). */
static int post_node(tctx_t *c, const char *path, json_t *body, json_t **reply)
{
    char base[512], err[512];
    const char *node = opt(c, "node");
    if (!node || !*node)
        node = getenv("TRIB_NODE");
    if (!node || !*node)
        node = CLI_DEFAULT_NODE;
    if (client_base_url(node, CLI_DEFAULT_PORT, base, sizeof base, err, sizeof err) != 0) {
        json_decref(body);
        return usage(c, "node: %s", err);
    }
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return fail(c, "out of memory");
    client_req_t rq = {.method = "POST", .path = path, .content_type = "application/json", .body = text,
                       .body_len = strlen(text), .upload_len = -1};
    client_reply_t rep;
    int rc = client_request(base, &rq, &rep, err, sizeof err);
    sodium_memzero(text, strlen(text));
    free(text);
    if (rc != 0) {
        client_reply_free(&rep);
        return fail(c, "%s", err);
    }
    json_t *j = json_loads(rep.body ? rep.body : "", 0, NULL);
    if (rep.status < 200 || rep.status > 299) {
        const char *kind = json_string_value(json_object_get(j, "error"));
        const char *det = json_string_value(json_object_get(j, "detail"));
        fail(c, "%ld %s: %s", rep.status, kind ? kind : "refused", det ? det : rep.body ? rep.body : "");
        json_decref(j);
        client_reply_free(&rep);
        return TK_FAIL;
    }
    client_reply_free(&rep);
    if (!j)
        return fail(c, "%s answered with a body that is not JSON", base);
    *reply = j;
    return TK_OK;
}

static void print_json(tctx_t *c, json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
        fprintf(c->out, "%s\n", s);
    free(s);
}

static int run_issue(tctx_t *c)
{
    const char *sub = opt(c, "sub"), *kind = opt(c, "kind"), *ttl = opt(c, "ttl"), *prod = opt(c, "product");
    token_kind_t k;
    int64_t ms = 0;
    if (!sub)
        return usage(c, "--sub SUBJECT is required (\"ci@payments\")");
    if (!kind)
        return usage(c, "--kind KIND is required: read, write or admin");
    if (token_kind_parse(kind, &k) != 0)
        return usage(c, "--kind '%s': expected read, write or admin", kind);
    if (!ttl)
        return usage(c, "--ttl DURATION is required: N followed by s, m, h or d (e.g. 24h), at most 366d");
    if (parse_ttl(ttl, &ms) != 0)
        return usage(c, "--ttl '%s': expected N followed by s, m, h or d (e.g. 24h), at most 366d", ttl);
    if (prod && !token_glob_valid(prod))
        return usage(c, "--product '%s' is not a glob DOMAIN/NAME of [a-z0-9-*]", prod);
    json_t *body = json_pack("{s:s,s:s,s:I}", "sub", sub, "kind", kind, "ttl_s", (json_int_t)(ms / 1000));
    if (prod)
        json_object_set_new(body, "product", json_string(prod));
    json_t *j = NULL;
    int rc = post_node(c, "/v1/tokens", body, &j);
    if (rc != TK_OK)
        return rc;
    const char *t = json_string_value(json_object_get(j, "token"));
    if (!t) {
        json_decref(j);
        return fail(c, "the node's reply carries no token");
    }
    if (opt(c, "json"))
        print_json(c, j);
    else
        fprintf(c->out, "%s\n", t);
    json_decref(j);
    return TK_OK;
}

static int run_revoke(tctx_t *c)
{
    if (!c->a.pos[0] || !*c->a.pos[0])
        return usage(c, "give the token or its id");
    const char *arg = c->a.pos[0];
    json_t *body = !strncmp(arg, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) ? json_pack("{s:s}", "token", arg)
                                                                       : json_pack("{s:s}", "id", arg);
    json_t *j = NULL;
    int rc = post_node(c, "/v1/tokens/revoke", body, &j);
    if (rc != TK_OK)
        return rc;
    if (opt(c, "json"))
        print_json(c, j);
    else
        fprintf(c->out, "revoked %s\n", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    return TK_OK;
}

/* ---------------------------------------------------------------- entry point */

int token_cmd_run(int argc, char **argv, FILE *out, FILE *err)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        FILE *f = argc < 2 ? err : out;
        fprintf(f, "usage: trib token COMMAND [OPTIONS] [TOKEN]\n");
        token_cmd_usage(f);
        fprintf(f, "\nRun 'trib token COMMAND --help' for a command's options and an example.\n");
        return argc < 2 ? TK_USAGE : TK_OK;
    }
    const tcmd_t *cmd = NULL;
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, argv[1]) == 0)
            cmd = &commands[i];
    if (!cmd) {
        fprintf(err, "trib: token: unknown command '%s' (show, attenuate, issue, revoke)\ntry 'trib token --help'\n", argv[1]);
        return TK_USAGE;
    }
    for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            command_help(cmd, out);
            return TK_OK;
        }
    tctx_t c = { .cmd = cmd, .out = out, .err = err };
    int talks = cmd->run == run_issue || cmd->run == run_revoke;
    char aerr[512];
    if (talks) { /* --token, --token-file, --cacert, $TRIB_TOKEN: the credentials sent */
        if (client_global_init(aerr, sizeof aerr) != 0 || client_auth_args(&argc, argv, aerr, sizeof aerr) < 0) {
            fprintf(err, "trib: token %s: %s\n", cmd->name, aerr);
            return TK_USAGE;
        }
    }
    int rc = parse_args(&c, argc - 2, argv + 2);
    rc = rc == TK_OK ? cmd->run(&c) : rc;
    if (talks)
        client_global_cleanup();
    return rc;
}
