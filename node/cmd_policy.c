/* node/cmd_policy.c - `trib policy test|sign|submit|show` and `trib compliance`.
 *
 * Owns: their option table (parsed by node/cli_opts.c; a repeatable --key for sign), reading policy
 * files, the text forms of a test run, a set in force and a compliance report, and the lines that show a
 * product's compliance and a publish's violations.
 * Must not: evaluate anything itself (node/policy.c does), or print a secret key. */
#include "node/cmd_policy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gossip/charter.h"
#include "gossip/clock.h"
#include "gossip/identity.h"
#include "gossip/textfile.h"
#include "node/cli.h"
#include "node/cli_opts.h"
#include "node/cli_table.h"
#include "node/client.h"
#include "node/policy.h"
#include "node/policy_store.h"

enum { P_OK = 0, P_FAIL = 1, P_USAGE = 2 };

#define MAX_KEYS OPTS_VALS         /* --key given at most this often */
#define MAX_REPLY_SHOWN 2000

typedef struct {
    const char *cmd;                 /* "policy test", "compliance", ... */
    FILE *out, *err;
    const char *node, *charter, *out_path, *domain, *file, *limit, *offset;
    const char *keys[MAX_KEYS];
    size_t nkeys;
    int json;
    const char *pos[4];
    size_t npos;
} pctx_t;

static int fail(pctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(pctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(c->err, "trib: %s: ", c->cmd);
    vfprintf(c->err, fmt, ap);
    fputc('\n', c->err);
    va_end(ap);
    return P_FAIL;
}

static int usage(pctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage(pctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(c->err, "trib: %s: ", c->cmd);
    vfprintf(c->err, fmt, ap);
    fprintf(c->err, "\ntry 'trib %s --help'\n", c->cmd);
    va_end(ap);
    return P_USAGE;
}

static const struct {
    const char *name, *synopsis, *about, *example;
} helps[] = {
    { "policy test", "FILE.yaml [--json]",
      "Parses the policy set in FILE and runs its own tests (each `manifest` with `expect: {pass:\n"
      "true}` or `expect: {fail: [rule ids]}`) with the evaluator every node runs. Exit 1 when the\n"
      "set is malformed (the error names the line) or a test fails.",
      "trib policy test examples/policies/company.yaml" },
    { "policy sign", "--charter charter.json --key gov1.key [--key gov2.key ...] FILE.yaml --out NAME.policy",
      "Signs the policy set in FILE (its tests must pass) with governance keys of the charter: at\n"
      "least its governance threshold of distinct keys. Writes NAME.policy (refuses to overwrite),\n"
      "which `trib policy submit` sends to any node.",
      "trib policy sign --charter charter.json --key gov1.key examples/policies/company.yaml --out company.policy" },
    { "policy submit", "FILE [--node URL] [--token T] [--json]",
      "Sends a signed policy set (NAME.policy) to a node, which verifies it against its charter and\n"
      "puts it in force if it is newer. A node in open mode takes the YAML itself (FILE.yaml) from\n"
      "its operator instead. Needs an admin token of the node's domain (--token, --token-file,\n"
      "$TRIB_TOKEN). Every product is then re-checked in the background.",
      "trib policy submit company.policy --node http://127.0.0.1:7480" },
    { "policy show", "[--node URL] [--json] | --file NAME.policy [--charter charter.json]",
      "Shows the policy set in force on a node: version, signers, rules, where it came from. With\n"
      "--file, shows a signed set file offline; with --charter too, verifies it as a node would\n"
      "(exit 1 when it would be refused).",
      "trib policy show --file company.policy --charter charter.json" },
    { "compliance", "[--domain D] [--limit N] [--offset N] [--node URL] [--json]",
      "Lists the products that break the policy set in force, by domain, with their violations,\n"
      "a page at a time (100 products by default, in id order; the line under it says how to get\n"
      "the next). Any node answers from its catalog replica.",
      "trib compliance --domain payments" },
};

static void help(pctx_t *c)
{
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++)
        if (strcmp(helps[i].name, c->cmd) == 0)
            fprintf(c->out, "usage: trib %s %s\n\n%s\n\nexample:\n  %s\n", helps[i].name, helps[i].synopsis,
                    helps[i].about, helps[i].example);
}

void policy_cmd_usage(FILE *f)
{
    fprintf(f, "\nGovernance (policy sets, DESIGN §14):\n"
               "  %-10s %s\n  %-10s %s\n",
            "policy", "test | sign | submit | show a policy set (trib policy CMD --help)",
            "compliance", "list products that break the policy set in force");
}

int policy_cmd_is(const char *name)
{
    return name && (strcmp(name, "policy") == 0 || strcmp(name, "compliance") == 0);
}

static const opts_row_t options[] = {
    { "node", "URL", 0, "the node to ask (default $TRIB_NODE, else " CLI_DEFAULT_NODE ")" },
    { "charter", "FILE", 0, "the federation's charter" },
    { "key", "FILE", 1, "a governance key to sign with (repeatable)" },
    { "out", "FILE", 0, "where to write the signed set" },
    { "file", "FILE", 0, "a signed set file to show" },
    { "domain", "D", 0, "only products of domain D" },
    { "limit", "N", 0, "compliance: show at most N products (default 100, at most 1000)" },
    { "offset", "N", 0, "compliance: skip the first N products (in id order)" },
    { "json", NULL, 0, "print JSON" },
    { NULL, NULL, 0, NULL },
};

/* The options (node/cli_opts.c's parser) into c; -h/--help before "--" prints the help (-1). */
static int parse(pctx_t *c, int argc, char **argv)
{
    for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            help(c);
            return -1;
        }
    opts_t o;
    char msg[256];
    if (opts_parse(&o, options, 4, argc, argv, msg, sizeof msg) != 0)
        return usage(c, "%s", msg);
    c->node = opts_get(&o, "node");
    c->charter = opts_get(&o, "charter");
    c->out_path = opts_get(&o, "out");
    c->domain = opts_get(&o, "domain");
    c->limit = opts_get(&o, "limit");
    c->offset = opts_get(&o, "offset");
    c->file = opts_get(&o, "file");
    c->json = opts_get(&o, "json") != NULL;
    const char *const *keys = opts_all(&o, "key", &c->nkeys);
    for (size_t i = 0; i < c->nkeys; i++)
        c->keys[i] = keys[i];
    for (c->npos = 0; c->npos < o.npos; c->npos++)
        c->pos[c->npos] = o.pos[c->npos];
    return 0;
}

/* FILE ("-": stdin), at most max bytes (what: the kind of file, for the size refusal). */
static char *read_all(pctx_t *c, const char *path, const char *what, size_t max, size_t *len)
{
    char err[700];
    char *buf = strcmp(path, "-") == 0 ? textfile_read_stream(stdin, "stdin", what, max, len, err, sizeof err)
                                       : textfile_read(path, what, max, len, err, sizeof err);
    if (!buf)
        fail(c, "%s", err);
    return buf;
}

/* ================================================================ test */

static int run_test(pctx_t *c)
{
    if (c->npos != 1)
        return usage(c, "expected one FILE");
    size_t len;
    char *text = read_all(c, c->pos[0], "a policy set", POLICY_MAX_BYTES, &len);
    if (!text)
        return P_FAIL;
    char err[700];
    policy_set_t *ps = policy_parse(text, len, err, sizeof err);
    free(text);
    if (!ps)
        return fail(c, "%s: %s", c->pos[0], err);
    json_t *results = NULL;
    int rc = policy_run_tests(ps, &results, err, sizeof err);
    size_t n = json_array_size(results), passed = 0;
    for (size_t i = 0; i < n; i++)
        passed += json_is_true(json_object_get(json_array_get(results, i), "ok"));
    if (c->json) {
        json_t *j = json_pack("{s:I,s:I,s:I,s:I,s:o}", "version", (json_int_t)policy_version(ps), "rules",
                              (json_int_t)policy_nrules(ps), "tests", (json_int_t)n, "passed", (json_int_t)passed,
                              "results", results);
        char *s = json_dumps(j, JSON_INDENT(2));
        fprintf(c->out, "%s\n", s ? s : "{}");
        free(s);
        json_decref(j);
    } else {
        for (size_t i = 0; i < n; i++) {
            json_t *r = json_array_get(results, i);
            int ok = json_is_true(json_object_get(r, "ok"));
            fprintf(c->out, "%s tests[%zu] (line %lld)%s%s\n", ok ? "ok  " : "FAIL", i,
                    (long long)json_integer_value(json_object_get(r, "line")), ok ? "" : ": ",
                    ok ? "" : json_string_value(json_object_get(r, "why")));
        }
        fprintf(c->out, "policy set version %llu: %zu rules, %zu tests, %zu passed\n",
                (unsigned long long)policy_version(ps), policy_nrules(ps), n, passed);
        json_decref(results);
    }
    policy_free(&ps);
    if (rc != 0)
        return fail(c, "%s: %s", c->pos[0], err);
    return P_OK;
}

/* ================================================================ sign */

static int run_sign(pctx_t *c)
{
    if (c->npos != 1 || !c->charter || !c->nkeys || !c->out_path)
        return usage(c, "expected --charter FILE, at least one --key FILE, the policy FILE and --out FILE");
    char err[700];
    charter_t ch;
    identity_t ids[MAX_KEYS];
    const identity_t *keys[MAX_KEYS];
    size_t nids = 0;
    uint8_t *env = NULL;
    size_t envlen = 0;
    int rc = P_FAIL;
    memset(&ch, 0, sizeof ch);
    if (charter_load(c->charter, &ch, err, sizeof err) != TRUST_OK)
        return fail(c, "%s", err);
    size_t len;
    char *text = read_all(c, c->pos[0], "a policy set", POLICY_MAX_BYTES, &len);
    if (!text)
        goto out;
    for (; nids < c->nkeys; nids++) {
        if (identity_load_file(c->keys[nids], &ids[nids], err, sizeof err) != 0) {
            fail(c, "%s", err);
            goto out;
        }
        keys[nids] = &ids[nids];
    }
    if (policy_sign(text, len, &ch, keys, nids, clock_wall_ms(), &env, &envlen, err, sizeof err) != 0) {
        fail(c, "%s: %s", c->pos[0], err);
        goto out;
    }
    policy_signed_t s;
    if (policy_verify(env, envlen, &ch, &s, err, sizeof err) != 0) {
        fail(c, "the signed set does not verify: %s", err);
        goto out;
    }
    json_t *j = policy_signed_json(&s, env, envlen);
    if (!j || trust_file_write(c->out_path, j, err, sizeof err) != 0) {
        if (j)
            fail(c, "%s", err);
        else
            fail(c, "out of memory");
        json_decref(j);
        policy_signed_free(&s);
        goto out;
    }
    json_decref(j);
    fprintf(c->out, "signed policy set version %llu (%zu rules) with %zu governance key%s: %s\n",
            (unsigned long long)s.info.version, policy_nrules(s.ps), s.info.nsigners, s.info.nsigners == 1 ? "" : "s",
            c->out_path);
    policy_signed_free(&s);
    rc = P_OK;
out:
    for (size_t i = 0; i < nids; i++)
        identity_wipe(&ids[i]);
    free(env);
    free(text);
    charter_free(&ch);
    return rc;
}

/* ================================================================ talking to a node */

static int request(pctx_t *c, const char *method, const char *path, const char *const *query, const char *body,
                   size_t len, json_t **reply)
{
    char base[1024], err[512];
    const char *node = c->node ? c->node : getenv("TRIB_NODE");
    if (!node || !*node)
        node = CLI_DEFAULT_NODE;
    *reply = NULL;
    if (client_base_url(node, 7480, base, sizeof base, err, sizeof err) != 0)
        return usage(c, "--node %s: %s", node, err);
    if (client_global_init(err, sizeof err) != 0)
        return fail(c, "%s", err);
    client_req_t rq = { .method = method, .path = path, .query = query, .body = body, .body_len = len,
                        .content_type = body ? (body[0] == '{' ? "application/json" : "application/yaml") : NULL,
                        .upload_len = -1 };
    client_reply_t rep = { 0 };
    int rc = client_request(base, &rq, &rep, err, sizeof err);
    client_global_cleanup();
    if (rc != 0) {
        client_reply_free(&rep);
        return fail(c, "%s", err);
    }
    json_error_t je;
    json_t *j = json_loadb(rep.body ? rep.body : "", rep.len, 0, &je);
    if (rep.status < 200 || rep.status >= 300) {
        const char *kind = json_string_value(json_object_get(j, "error"));
        const char *detail = json_string_value(json_object_get(j, "detail"));
        if (kind)
            fail(c, "%ld %s: %.*s", rep.status, kind, MAX_REPLY_SHOWN, detail ? detail : "");
        else
            fail(c, "%ld from %s", rep.status, base);
        json_decref(j);
        client_reply_free(&rep);
        return P_FAIL;
    }
    client_reply_free(&rep);
    if (!j)
        return fail(c, "the node's reply is not JSON");
    *reply = j;
    return P_OK;
}

static int print_json(pctx_t *c, json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2));
    fprintf(c->out, "%s\n", s ? s : "null");
    free(s);
    return P_OK;
}

static void print_set(pctx_t *c, json_t *j)
{
    long long v = (long long)json_integer_value(json_object_get(j, "version"));
    if (v == 0) {
        fprintf(c->out, "no policy set in force\n");
        return;
    }
    /* the source of a signed set is "signed": said once, not "(signed, signed)" */
    const char *how = json_is_true(json_object_get(j, "signed")) ? "signed" : "unsigned";
    const char *source = json_string_value(json_object_get(j, "source"));
    int say_source = source && *source && strcmp(source, how) != 0;
    fprintf(c->out, "policy set version %lld in force (%s%s%s)\n", v, how, say_source ? ", " : "",
            say_source ? source : "");
    fprintf(c->out, "  rules      %lld\n  tests      %lld\n", (long long)json_integer_value(json_object_get(j, "rules")),
            (long long)json_integer_value(json_object_get(j, "tests")));
    const char *eff = json_string_value(json_object_get(j, "effective"));
    if (eff && *eff)
        fprintf(c->out, "  effective  %s\n", eff);
    json_t *signers = json_object_get(j, "signers");
    for (size_t i = 0; i < json_array_size(signers); i++)
        fprintf(c->out, "  %-10s %s\n", i ? "" : "signed by", json_string_value(json_array_get(signers, i)));
}

static int run_submit(pctx_t *c)
{
    if (c->npos != 1)
        return usage(c, "expected one FILE (NAME.policy, or the YAML for a node in open mode)");
    size_t len;
    char *body = read_all(c, c->pos[0], "a policy file", 2 * TRUST_FILE_MAX, &len);
    if (!body)
        return P_FAIL;
    json_t *j = NULL;
    int rc = request(c, "POST", "/v1/policy", NULL, body, len, &j);
    free(body);
    if (rc != P_OK)
        return rc;
    if (c->json)
        print_json(c, j);
    else
        print_set(c, j);
    json_decref(j);
    return P_OK;
}

static int run_show(pctx_t *c)
{
    if (c->file) {
        json_t *obj = NULL;
        uint8_t *bytes = NULL;
        size_t len = 0;
        char err[700];
        if (trust_file_read(c->file, TRUST_KIND_POLICY, &obj, &bytes, &len, err, sizeof err) != 0)
            return fail(c, "%s", err);
        policy_signed_t s;
        charter_t ch;
        memset(&ch, 0, sizeof ch);
        if (c->charter && charter_load(c->charter, &ch, err, sizeof err) != TRUST_OK) {
            free(bytes);
            json_decref(obj);
            return fail(c, "%s", err);
        }
        int rc = c->charter ? policy_verify(bytes, len, &ch, &s, err, sizeof err)
                            : policy_decode(bytes, len, &s, err, sizeof err);
        charter_free(&ch);
        json_t *view = rc == 0 ? policy_signed_json(&s, bytes, len) : NULL;
        free(bytes);
        if (rc == 0 && (!view || trust_file_matches(c->file, obj, view, err, sizeof err) != 0)) {
            if (!view)
                snprintf(err, sizeof err, "out of memory");
            rc = -1;
            policy_signed_free(&s);
        }
        json_decref(view);
        json_decref(obj);
        if (rc != 0)
            return fail(c, "%s: %s", c->file, err);
        fprintf(c->out, "policy set version %llu, %zu rules, %zu tests, signed by %zu key%s (%s)\n",
                (unsigned long long)s.info.version, policy_nrules(s.ps), policy_ntests(s.ps), s.info.nsigners,
                s.info.nsigners == 1 ? "" : "s",
                c->charter ? "verified against the charter: governance threshold met, tests pass"
                           : "signatures not checked: give --charter to verify");
        policy_signed_free(&s);
        return P_OK;
    }
    json_t *j = NULL;
    int rc = request(c, "GET", "/v1/policy", NULL, NULL, 0, &j);
    if (rc != P_OK)
        return rc;
    if (c->json) {
        print_json(c, j);
    } else {
        print_set(c, j);
        const char *text = json_string_value(json_object_get(j, "text"));   /* the rules themselves, as written */
        if (text && *text)
            fprintf(c->out, "\n%s%s", text, text[strlen(text) - 1] == '\n' ? "" : "\n");
    }
    json_decref(j);
    return P_OK;
}

/* v's field key, or dflt when absent or not a string. */
static const char *vstr(json_t *v, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(v, key));
    return s ? s : dflt;
}

void policy_cmd_print_violation_list(FILE *f, json_t *list, const char *indent)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *v = json_array_get(list, i);
        json_t *line = json_object_get(v, "line"), *mline = json_object_get(v, "manifest_line");
        /* the node's words, cleaned for a terminal (no control characters, bounded) */
        char *path = cli_text_clean(vstr(v, "path", ""), 120), *msg = cli_text_clean(vstr(v, "message", ""), 400),
             *rule = cli_text_clean(vstr(v, "rule", "?"), 80), *sev = cli_text_clean(vstr(v, "severity", "error"), 16);
        fprintf(f, "%s%-7s %s", indent, sev ? sev : "", path ? path : "");
        if (json_is_integer(mline))
            fprintf(f, " (manifest line %lld)", (long long)json_integer_value(mline));
        fprintf(f, ": %s; rule %s", msg ? msg : "", rule ? rule : "");
        if (json_is_integer(line))
            fprintf(f, " (policy line %lld)", (long long)json_integer_value(line));
        fprintf(f, "%s\n", json_is_true(json_object_get(v, "grace")) ? " [grace]" : "");
        free(path), free(msg), free(rule), free(sev);
    }
}

/* Under a page that is not the whole report: how many it shows, and how to ask for the next. */
static void print_page(pctx_t *c, json_t *j, size_t shown)
{
    long long total = (long long)json_integer_value(json_object_get(j, "non_compliant"));
    long long offset = (long long)json_integer_value(json_object_get(j, "offset"));
    if (offset == 0 && (long long)shown >= total)
        return;
    fprintf(c->out, "\n(%zu of %lld shown", shown, total);
    if (shown)
        fprintf(c->out, ", %lld to %lld in id order", offset + 1, offset + (long long)shown);
    if (shown && offset + (long long)shown < total)   /* the same page size: the hint repeats --limit */
        fprintf(c->out, "; --offset %lld%s%s for the next", offset + (long long)shown, c->limit ? " --limit " : "",
                c->limit ? c->limit : "");
    fprintf(c->out, ")\n");
}

static int run_compliance(pctx_t *c)
{
    const char *query[] = { "domain", c->domain, "limit", c->limit, "offset", c->offset, NULL };
    json_t *j = NULL;
    int rc = request(c, "GET", "/v1/compliance", query, NULL, 0, &j);
    if (rc != P_OK)
        return rc;
    if (c->json) {
        print_json(c, j);
        json_decref(j);
        return P_OK;
    }
    long long v = (long long)json_integer_value(json_object_get(j, "policy_version"));
    if (v == 0) {
        fprintf(c->out, "no policy set in force\n");
        json_decref(j);
        return P_OK;
    }
    fprintf(c->out, "policy set version %lld: %lld of %lld products non-compliant%s\n", v,
            (long long)json_integer_value(json_object_get(j, "non_compliant")),
            (long long)json_integer_value(json_object_get(j, "products")),
            json_is_true(json_object_get(j, "pending")) ? " (re-check under way)" : "");
    const char *dom;
    json_t *list;
    size_t shown = 0;
    json_object_foreach(json_object_get(j, "domains"), dom, list) {
        fprintf(c->out, "\n%s\n", dom);
        for (size_t i = 0; i < json_array_size(list); i++, shown++) {
            json_t *p = json_array_get(list, i);
            fprintf(c->out, "  %s\n", json_string_value(json_object_get(p, "id")));
            policy_cmd_print_violation_list(c->out, json_object_get(p, "violations"), "    ");
        }
    }
    print_page(c, j, shown);
    json_decref(j);
    return P_OK;
}

void policy_cmd_print_compliance(FILE *out, json_t *cp)
{
    if (!json_is_object(cp))
        return;
    json_t *vs = json_object_get(cp, "violations");
    fprintf(out, "\ncompliance\n  %s under policy set version %lld\n", json_string_value(json_object_get(cp, "state")),
            (long long)json_integer_value(json_object_get(cp, "policy_version")));
    policy_cmd_print_violation_list(out, vs, "  ");
}

void policy_cmd_print_warnings(FILE *out, json_t *reply)
{
    json_t *ws = json_object_get(reply, "warnings");
    if (json_array_size(ws) == 0)
        return;
    fprintf(out, "%zu policy warning%s (policy set version %lld):\n", json_array_size(ws),
            json_array_size(ws) == 1 ? "" : "s", (long long)json_integer_value(json_object_get(reply, "policy_version")));
    policy_cmd_print_violation_list(out, ws, "  ");
}

void policy_cmd_print_violations(FILE *err, json_t *reply)
{
    json_t *vs = json_object_get(reply, "violations");
    if (json_array_size(vs) > 0)
        policy_cmd_print_violation_list(err, vs, "  ");
}

const char *policy_cmd_refusal_count(json_t *reply, const char *detail, char *buf, size_t cap)
{
    json_t *vs = json_object_get(reply, "violations");
    size_t errors = 0, i;
    const char *first = NULL;
    json_t *v;
    json_array_foreach(vs, i, v)
        if (strcmp(vstr(v, "severity", "error"), "error") == 0 && errors++ == 0)
            first = vstr(v, "message", "");
    if (!detail || !first || !*first || !strstr(detail, first))
        return NULL;
    json_t *pv = json_object_get(reply, "policy_version");
    char under[64] = "";
    if (json_is_integer(pv))
        snprintf(under, sizeof under, " under policy set version %lld", (long long)json_integer_value(pv));
    snprintf(buf, cap, "%zu error%s%s", errors, errors == 1 ? "" : "s", under);
    return buf;
}

int policy_cmd_run(int argc, char **argv, FILE *out, FILE *err)
{
    static const struct {
        const char *name;
        int (*run)(pctx_t *c);
    } subs[] = { { "test", run_test }, { "sign", run_sign }, { "submit", run_submit }, { "show", run_show } };
    pctx_t c = { .out = out, .err = err };
    char cmd[32];
    int first = 1;
    int (*run)(pctx_t *) = NULL;
    if (strcmp(argv[0], "compliance") == 0) {
        snprintf(cmd, sizeof cmd, "compliance");
        run = run_compliance;
    } else {
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
            fprintf(argc < 2 ? err : out, "usage: trib policy test|sign|submit|show ...\n");
            for (size_t i = 0; i < sizeof helps / sizeof helps[0] - 1; i++)
                fprintf(argc < 2 ? err : out, "  trib %s %s\n", helps[i].name, helps[i].synopsis);
            return argc < 2 ? P_USAGE : P_OK;
        }
        for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
            if (strcmp(argv[1], subs[i].name) == 0)
                run = subs[i].run;
        if (!run) {
            fprintf(err, "trib: policy: unknown command '%s' (test, sign, submit, show)\n", argv[1]);
            return P_USAGE;
        }
        snprintf(cmd, sizeof cmd, "policy %s", argv[1]);
        first = 2;
    }
    c.cmd = cmd;
    char aerr[512];   /* --token, --token-file, --cacert, $TRIB_TOKEN (node/client.c) */
    if (client_auth_args(&argc, argv, aerr, sizeof aerr) < 0)
        return usage(&c, "%s", aerr);
    int rc = parse(&c, argc - first, argv + first);
    if (rc < 0)
        return P_OK;   /* --help */
    if (rc != 0)
        return rc;
    return run(&c);
}
