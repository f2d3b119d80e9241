/* node/cli_render.c - the `trib` commands' replies as text: the members, products and schema
 * tables, the facet line, a product's page, the status page, and the one-line answers to
 * publish, retire and put (DESIGN.md §10: a human table by default, --json for machines).
 *
 * Owns: choosing what of a reply is shown and in which order, and how values read in a cell
 * (strings bare, lists joined, absent "-"); every cell goes through node/cli_table.c, which
 * neutralises control characters, so nothing a node sends can drive the terminal.
 * Must not: make requests, parse arguments, or write anything but c->out (and failures through
 * cli_fail). It emits no colour or other escape codes: its output is the same on a terminal
 * and in a file. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "node/cmd_policy.h"
#include "node/cli_internal.h"
#include "node/cli_table.h"

#define TITLE_MAX 60
#define OWNER_MAX 40

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

static int print_table(cli_ctx_t *c, cli_table_t *t, const char *indent)
{
    int rc = cli_table_print(t, c->out, indent);
    cli_table_destroy(&t);
    return rc == 0 ? CLI_OK : cli_fail(c, "writing output failed");
}

int cli_print_json(cli_ctx_t *c, json_t *j)
{
    if (json_dumpf(j, c->out, JSON_INDENT(2) | JSON_ENCODE_ANY) != 0 || fputc('\n', c->out) == EOF)
        return cli_fail(c, "writing output failed");
    return CLI_OK;
}

/* ================================================================ members */

static int cmp_members(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int r = strcmp(str_or(x, "domain", ""), str_or(y, "domain", ""));
    return r ? r : strcmp(str_or(x, "node_id", ""), str_or(y, "node_id", ""));
}

/* Chartered: the nodes announced without a certificate from the federation that holds now (not
 * members: the node lists them apart, node/view.h; none held, revoked, expired ...), under the
 * members, saying why; nothing when there are none. Calm words: a node that is joining is one of
 * them until its certificate (its hello) arrives. */
static int render_uncertified(cli_ctx_t *c, json_t *list)
{
    size_t n = json_array_size(list);
    if (n == 0)
        return CLI_OK;
    static const char *const hdr[] = { "DOMAIN", "NODE", "ADDRESS", "STATE", "WHY" };
    cli_table_t *t = cli_table_new(5, hdr);
    if (!t)
        return cli_fail(c, "out of memory");
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(list, i);
        char node[13];
        short_id(str_or(m, "node_id", "-"), node);
        const char *row[] = { str_or(m, "domain", "-"), node, str_or(m, "addr", "-"), str_or(m, "state", "-"),
                              str_or(m, "detail", "no certificate from the federation") };
        bad |= cli_table_add(t, row) != 0;
    }
    if (bad) {
        cli_table_destroy(&t);
        return cli_fail(c, "out of memory");
    }
    fprintf(c->out, "\nnot members: %zu node%s announced without a certificate from the federation that holds now "
            "(none, revoked or expired: WHY says; a node that is joining is listed here until its certificate reaches "
            "this node)\n", n, n == 1 ? "" : "s");
    return print_table(c, t, "  ");
}

int cli_render_members(cli_ctx_t *c, json_t *j, const char *id)
{
    (void)id;
    json_t *list = json_object_get(j, "members");
    size_t n = json_array_size(list);
    json_t **sorted = calloc(n ? n : 1, sizeof *sorted);
    static const char *const hdr[] = { "DOMAIN", "NODE", "ADDRESS", "HTTP", "STATE", "INC", "TRUST" };
    cli_table_t *t = cli_table_new(7, hdr);
    if (!sorted || !t) {
        free(sorted);
        cli_table_destroy(&t);
        return cli_fail(c, "out of memory");
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
        /* trust: certificate serial and expiry date (chartered), a conflicting claim of the
         * domain (open mode), why a chartered member's key is refused now (revoked, expired ...),
         * or unverified (trust on first use, or no certificate held) */
        char trust[64];
        const char *exp = str_or(m, "cert_expires", "");
        if (json_is_true(json_object_get(m, "conflict")))
            snprintf(trust, sizeof trust, "CONFLICT: domain claimed twice");
        else if (json_is_true(json_object_get(m, "verified")))
            snprintf(trust, sizeof trust, "cert %.16s until %.10s", str_or(m, "cert_serial", "?"), exp);
        else if (json_is_string(json_object_get(m, "trust_refused")) && strcmp(str_or(m, "trust_refused", ""), "uncertified"))
            snprintf(trust, sizeof trust, "%s", str_or(m, "trust_refused", "")); /* revoked, expired ... */
        else
            snprintf(trust, sizeof trust, "unverified");
        const char *row[] = { str_or(m, "domain", "-"), nodecol, str_or(m, "addr", "-"),
                              str_or(m, "http", "-"), str_or(m, "state", "-"), inc, trust };
        if (cli_table_add(t, row) != 0)
            bad = 1;
    }
    free(sorted);
    if (bad) {
        cli_table_destroy(&t);
        return cli_fail(c, "out of memory");
    }
    int rc = CLI_OK;
    if (n == 0) {
        cli_table_destroy(&t);
        fprintf(c->out, "no members known\n");
    } else {
        rc = print_table(c, t, NULL);
    }
    return rc == CLI_OK ? render_uncertified(c, json_object_get(j, "uncertified")) : rc;
}

/* ================================================================ products */

/* "domain: payments 3, growth 2 | status: active 4 | classification: internal 4 | tag: cards 3, ..." from the
 * reply's facets (most frequent first, as the node sends them), or nothing without facets. */
static void print_facets(cli_ctx_t *c, json_t *facets)
{
    static const char *const shown[] = { "domain", "status", "classification", "tag", "compliance" };
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

int cli_render_products(cli_ctx_t *c, json_t *j, const char *id)
{
    (void)id;
    int filtered = c->npos > 0 || cli_opt(c, "domain") || cli_opt(c, "tag") ||
                   cli_opt(c, "owner") || cli_opt(c, "status") || cli_opt(c, "classification") ||
                   cli_opt(c, "compliance");
    json_t *list = json_object_get(j, "products");
    size_t n = json_array_size(list);
    json_t *tv = json_object_get(j, "total");
    long long total = json_is_integer(tv) ? (long long)json_integer_value(tv) : (long long)n;
    if (n == 0 && total == 0) {
        fprintf(c->out, filtered ? "no products match\n" : "no products\n");
        return CLI_OK;
    }
    if (n == 0) {   /* --limit 0, or --offset past the hits: there are some, none on this page */
        fprintf(c->out, "(0 of %lld shown)\n", total);
        print_facets(c, json_object_get(j, "facets"));
        return CLI_OK;
    }
    static const char *const hdr[] = { "ID", "VERSION", "STATUS", "OWNER", "TITLE" };
    cli_table_t *t = cli_table_new(5, hdr);
    if (!t)
        return cli_fail(c, "out of memory");
    cli_table_set_max(t, 3, OWNER_MAX);
    cli_table_set_max(t, 4, TITLE_MAX);
    int bad = 0, stubs = 0;
    for (size_t i = 0; i < n; i++) {   /* the node's rank order */
        json_t *p = json_array_get(list, i);
        int stub = json_is_true(json_object_get(p, "stub"));   /* restricted, and no grant: what it holds */
        stubs += stub;
        const char *row[] = { str_or(p, "id", "-"), stub ? "(restricted)" : str_or(p, "version", "-"),
                              str_or(p, "status", "-"),
                              str_or(json_object_get(p, "owners"), "business", "-"),
                              str_or(p, "title", "") };
        if (cli_table_add(t, row) != 0)
            bad = 1;
    }
    if (bad) {
        cli_table_destroy(&t);
        return cli_fail(c, "out of memory");
    }
    int rc = print_table(c, t, NULL);
    if (rc == CLI_OK && total > (long long)n)
        fprintf(c->out, "(%zu of %lld shown)\n", n, total);
    if (rc == CLI_OK && stubs)
        fprintf(c->out, "(restricted): without a grant on it, a restricted product shows only its id, title, owners\n"
                        "and classification; trib show ID says how to ask its owner\n");
    if (rc == CLI_OK)
        print_facets(c, json_object_get(j, "facets"));
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

static int show_schema(cli_ctx_t *c, json_t *schema)
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
        return cli_fail(c, "out of memory");
    json_array_foreach(schema, i, p) {
        const char *row[] = {
            str_or(p, "name", "-"), str_or(p, "logicalType", "-"),
            json_is_true(json_object_get(p, "required")) ? "yes" : "no",
            json_is_true(json_object_get(p, "primaryKey")) ? "yes" : "",
            str_or(p, "description", ""),
        };
        if (cli_table_add(t, row) != 0) {
            cli_table_destroy(&t);
            return cli_fail(c, "out of memory");
        }
    }
    fprintf(c->out, "\nschema\n");
    return print_table(c, t, "  ");
}

int cli_render_product(cli_ctx_t *c, json_t *j, const char *id)
{
    json_t *m = json_object_get(j, "manifest");
    cli_table_t *t = cli_table_new(2, NULL);
    if (!t)
        return cli_fail(c, "out of memory");
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
        /* chartered: the owner's key judged now (the "trust" row is of the signer when it signed) */
        const char *ot = str_or(on, "trust", "");
        size_t used = strlen(owner_text);
        if (*ot && strcmp(ot, "verified") != 0)
            snprintf(owner_text + used, sizeof owner_text - used, "; %s: %s, reads of it are refused", ot,
                     str_or(on, "detail", "its certificate does not hold now"));
        else if (*ot)
            snprintf(owner_text + used, sizeof owner_text - used, "; certified now");
    }
    static const struct { const char *label, *key; } head[] = {
        { "id", "id" }, { "title", "title" }, { "version", "version" }, { "status", "status" },
        { "classification", "classification" }, { "owners", NULL }, { "tags", "tags" },
        { "catalog seq", "catalog_seq" }, { "manifest seq", "manifest_seq" }, { "signer", "signer" },
        { "owner node", NULL }, { "updated", "updated" }, { "records", "records" },
    };
    int bad = 0;
    /* a restricted product shown to a caller without a grant: only what the stub holds */
    int stub = json_is_true(json_object_get(j, "stub"));
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
        if (!v && (stub || !strcmp(head[i].key, "records") || !strcmp(head[i].key, "manifest_seq")))
            continue;                         /* only the owning node knows the record count */
        char *cells[] = { strdup(head[i].label), value_text(v) };
        bad = table_add_owned(t, cells, 2) != 0;
    }
    json_t *vf = json_object_get(j, "verified");   /* trust: chartered signer certified, or not */
    if (!bad && json_is_boolean(vf)) {
        const char *row[] = { "trust", json_is_true(vf) ? "verified (signer certified for the domain when it signed)"
                                                        : "unverified (open mode: trust on first use)" };
        bad = cli_table_add(t, row) != 0;
    }
    static const char *const shown[] = { "id", "domain", "name", "title", "version", "status",
                                         "classification", "owners", "tags", "catalog_seq",
                                         "manifest_seq", "signer", "owner_node", "updated",
                                         "records", "manifest", "compliance", "verified", "stub", NULL };
    if (!bad)
        bad = add_other_fields(t, j, shown) != 0;
    if (bad) {
        cli_table_destroy(&t);
        return cli_fail(c, "out of memory");
    }
    int rc = print_table(c, t, NULL);
    if (rc == CLI_OK && stub) {
        char *pid = cli_text_clean(str_or(j, "id", id), 200);
        fprintf(c->out, "\nrestricted: without a grant on it, this is all the catalog shows you and its records are\n"
                        "not served; ask its owner: trib access request %s --purpose TEXT\n", pid ? pid : "ID");
        free(pid);
    }
    if (rc == CLI_OK)
        policy_cmd_print_compliance(c->out, json_object_get(j, "compliance"));   /* policy set in force */
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
            return cli_fail(c, "out of memory");
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
        return cli_fail(c, "out of memory");
    }
    if (cli_table_rows(t) == 0) {
        cli_table_destroy(&t);
        return CLI_OK;
    }
    fprintf(c->out, "\nother fields\n");
    return print_table(c, t, "  ");
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

int cli_render_status(cli_ctx_t *c, json_t *j, const char *id)
{
    char uptime[64] = "-", products[64] = "-", members[256] = "";
    json_t *v = json_object_get(j, "uptime_s");
    if (json_is_integer(v))
        format_uptime((long long)json_integer_value(v), uptime, sizeof uptime);
    v = json_object_get(j, "products");
    if (json_is_integer(v))
        snprintf(products, sizeof products, "%lld", (long long)json_integer_value(v));
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
        return cli_fail(c, "out of memory");
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
                                         "uptime_s", "products", "members", "digest", NULL };
    if (bad || add_other_fields(t, j, shown) != 0) {
        cli_table_destroy(&t);
        return cli_fail(c, "out of memory");
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
        return cli_fail(c, "out of memory");
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
        return cli_fail(c, "out of memory");
    }
    fputc('\n', c->out);
    return print_table(c, t, NULL);
}


/* ================================================================ write replies */

int cli_render_published(cli_ctx_t *c, json_t *j, const char *id)
{
    if (strcmp(str_or(j, "result", ""), "unchanged") == 0) {
        fprintf(c->out, "published %s: unchanged (the same manifest as the latest version); no new entry\n",
                str_or(j, "id", id));
        return CLI_OK;
    }
    fprintf(c->out, "published %s: %s, catalog seq %lld\n", str_or(j, "id", id),
            json_is_true(json_object_get(j, "created")) ? "created" : "updated",
            (long long)json_integer_value(json_object_get(j, "catalog_seq")));
    policy_cmd_print_warnings(c->out, j);   /* the policy set's warnings, stored and shown */
    return CLI_OK;
}

int cli_render_retired(cli_ctx_t *c, json_t *j, const char *id)
{
    fprintf(c->out, "retired %s: catalog seq %lld\n", str_or(j, "id", id),
            (long long)json_integer_value(json_object_get(j, "catalog_seq")));
    return CLI_OK;
}

int cli_render_appended(cli_ctx_t *c, json_t *j, const char *id)
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
