/* tests/test_contract.c - where README.md and docs/http-api.md describe a reply, a real agent
 * gives that reply: the fields of /v1/status (read from the docs' own example), read ranges past
 * the end, and filter values that match nothing versus malformed ones.
 *
 * Owns: keeping the documents and the node in agreement on those points; the behaviour itself
 * is tested where it is built (test_agent, test_search_fed). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"

#define RECORDS "/v1/products/payments/settled-transactions/records"

TestSuite(contract, .fini = h_cleanup_all, .timeout = 120);

static h_node_t node;

/* One agent with the example product and its 20 example records. */
static void start(void)
{
    cr_assert_eq(h_node_start(&node, "payments", NULL), 0);
    char m[512], r[512], *out = NULL;
    cr_assert_eq(h_trib(&node, NULL, &out, NULL, "publish",
                        h_repo_path("examples/settled-transactions.yaml", m, sizeof m), NULL), 0);
    free(out);
    cr_assert_eq(h_trib(&node, NULL, &out, NULL, "put", "payments/settled-transactions",
                        h_repo_path("examples/settled-transactions.ndjson", r, sizeof r), NULL), 0);
    cr_assert(out && strstr(out, "seq 1..20"), "%s", out ? out : "");
    free(out);
}

/* The JSON example that follows `marker` in docs/http-api.md. */
static json_t *doc_example(const char *marker)
{
    char path[512];
    char *doc = h_read_file(h_repo_path("docs/http-api.md", path, sizeof path), NULL);
    cr_assert_not_null(doc, "cannot read docs/http-api.md");
    const char *at = strstr(doc, marker);
    cr_assert_not_null(at, "docs/http-api.md has no '%s'", marker);
    const char *open = strstr(at, "```json\n");
    cr_assert_not_null(open);
    open += 8;
    const char *close = strstr(open, "```");
    cr_assert_not_null(close);
    json_error_t je;
    json_t *j = json_loadb(open, (size_t)(close - open), 0, &je);
    cr_assert_not_null(j, "the example after '%s' is not JSON: %s", marker, je.text);
    free(doc);
    return j;
}

static long get(const char *path, h_resp_t *r)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", node.url, path);
    cr_assert_eq(h_http("GET", url, NULL, NULL, 0, r), 0, "GET %s", url);
    return r->status;
}

static size_t lines(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

Test(contract, status_has_the_fields_the_docs_show, .init = start)
{
    json_t *doc = doc_example("`GET /v1/status`");
    h_resp_t r;
    cr_assert_eq(get("/v1/status", &r), 200);
    json_t *live = json_loads(r.body, 0, NULL);
    h_resp_free(&r);
    cr_assert_not_null(live);
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v)
        cr_expect(json_object_get(live, k), "docs show '%s' in /v1/status; the node sends none", k);
    json_object_foreach(live, k, v)
        cr_expect(json_object_get(doc, k), "the node sends '%s' in /v1/status; the docs do not show it",
                  k);
    cr_expect_eq(json_integer_value(json_object_get(live, "products")), 1);
    json_decref(doc);
    json_decref(live);
}

Test(contract, reads_past_the_end_are_200_with_what_exists, .init = start)
{
    static const struct {
        const char *query;
        size_t lines;
        const char *first;   /* Trib-First-Seq */
    } cases[] = {
        { "?from=18&limit=10", 3, "18" },    /* from + limit past the end: clipped */
        { "?from=21", 0, "21" },             /* just past the last seq: empty */
        { "?from=1000&limit=5", 0, "1000" },
        { "?from=0", 20, "1" },              /* 0 is read as 1 */
        { "?limit=0", 20, "1" },             /* 0 means all */
        { "?from=5&limit=2", 2, "5" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        h_resp_t r;
        char path[256];
        snprintf(path, sizeof path, RECORDS "%s", cases[i].query);
        cr_expect_eq(get(path, &r), 200, "%s: %ld %s", cases[i].query, r.status, r.body);
        cr_expect_eq(lines(r.body), cases[i].lines, "%s: %zu lines", cases[i].query, lines(r.body));
        cr_expect_str_eq(r.first_seq, cases[i].first, "%s", cases[i].query);
        h_resp_free(&r);
    }
}

Test(contract, unknown_filter_values_match_nothing_malformed_ones_are_400, .init = start)
{
    static const char *const none[] = {
        "/v1/products?tag=nosuchtag", "/v1/products?domain=nosuchdomain",
        "/v1/products?owner=nobody@example.com", "/v1/products?status=deprecated",
        "/v1/products?classification=restricted", "/v1/products?classification=public",
    };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        h_resp_t r;
        cr_expect_eq(get(none[i], &r), 200, "%s: %ld", none[i], r.status);
        json_t *j = json_loads(r.body, 0, NULL);
        cr_expect_eq(json_integer_value(json_object_get(j, "total")), 0, "%s: %s", none[i], r.body);
        json_decref(j);
        h_resp_free(&r);
    }
    char longtag[400] = "/v1/products?tag=";
    memset(longtag + strlen(longtag), 'x', 300);
    static const struct { const char *path, *param; } bad[] = {
        { "/v1/products?status=actve", "status" },
        { "/v1/products?domain=Payments", "domain" },
        { NULL, "tag" },
        { "/v1/products?classification=secret", "classification: 'secret' is not one of public, internal, "
                                                "confidential, restricted" },
        { "/v1/products?classification=Internal", "classification" },
        { "/v1/products?classificaton=internal", "classificaton: unknown parameter" },
        { "/v1/products?q=x&colour=red", "colour: unknown parameter (known: q, domain, tag, owner, status, "
                                         "classification, compliance, limit, offset)" },
        { "/v1/products?status=active&status=draft", "status: given more than once" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *path = bad[i].path ? bad[i].path : longtag;
        h_resp_t r;
        cr_expect_eq(get(path, &r), 400, "%.60s: %ld", path, r.status);
        cr_expect(strstr(r.body, "\"bad_query\""), "%.60s: %s", path, r.body);
        json_t *j = json_loads(r.body, 0, NULL);
        const char *d = json_string_value(json_object_get(j, "detail"));
        cr_expect(d && strncmp(d, bad[i].param, strlen(bad[i].param)) == 0, "%.60s: %s", path,
                  r.body);
        json_decref(j);
        h_resp_free(&r);
    }
    /* The CLI says the same, as an error naming the option. */
    char *err = NULL;
    cr_expect_eq(h_trib(&node, NULL, NULL, &err, "products", "--status", "actve", NULL), 1);
    cr_expect(err && strstr(err, "400") && strstr(err, "status: 'actve'"), "%s", err ? err : "");
    free(err);
    err = NULL;
    cr_expect_eq(h_trib(&node, NULL, NULL, &err, "products", "--classification", "secret", NULL), 1);
    cr_expect(err && strstr(err, "400") && strstr(err, "classification: 'secret'"), "%s", err ? err : "");
    free(err);
}

/* The classification facet counts the hits per classification, and its filter keeps one. */
Test(contract, classification_facet_counts_and_filters, .init = start)
{
    h_resp_t r;
    cr_assert_eq(get("/v1/products?classification=internal", &r), 200, "%s", r.body);
    json_t *j = json_loads(r.body, 0, NULL);
    cr_expect_eq(json_integer_value(json_object_get(j, "total")), 1, "%s", r.body);
    json_t *f = json_object_get(json_object_get(j, "facets"), "classification");
    cr_expect(json_is_object(f) && json_object_size(f) == 1, "%s", r.body);
    cr_expect_eq(json_integer_value(json_object_get(f, "internal")), 1, "%s", r.body);
    json_decref(j);
    h_resp_free(&r);
    char *out = NULL;
    cr_expect_eq(h_trib(&node, NULL, &out, NULL, "products", "--classification", "internal", NULL), 0);
    cr_expect(out && strstr(out, "payments/settled-transactions") && strstr(out, "classification: internal 1"),
              "%s", out ? out : "");
    free(out);
    out = NULL;
    cr_expect_eq(h_trib(&node, NULL, &out, NULL, "products", "--classification", "public", NULL), 0);
    cr_expect(out && strstr(out, "no products match"), "%s", out ? out : "");
    free(out);
}

/* Every route that takes query parameters refuses one it does not take, or one given twice, as the
 * search does: 400 bad_query naming it, nothing done. They were ignored: ?frm=19 read from seq 1,
 * ?domian=growth fed every domain's changes, ?stat=requested listed every request, ?reviv=1 was a
 * publish without revive, and from=19&from=1 took one of the two. */
Test(contract, every_route_refuses_a_parameter_it_does_not_take, .init = start)
{
    static const struct { const char *method, *path, *detail; } bad[] = {
        { "GET", RECORDS "?frm=19", "frm: unknown parameter (known: from, limit)" },
        { "GET", RECORDS "?from=19&from=1", "from: given more than once" },
        { "GET", RECORDS "?from=19&limt=1", "limt: unknown parameter" },
        { "GET", "/v1/products/payments/settled-transactions/stream?form=19", "form: unknown parameter" },
        { "GET", "/v1/catalog/changes?live=0&domian=growth", "domian: unknown parameter (known: from, domain, "
                                                              "product, live)" },
        { "GET", "/v1/compliance?domian=growth", "domian: unknown parameter (known: domain, offset, limit)" },
        { "GET", "/v1/products/payments/settled-transactions/diff?from=1.0.0&to=1.0.0&mode=FULL",
          "mode: unknown parameter (known: from, to)" },
        { "GET", "/v1/access/requests?stat=requested", "stat: unknown parameter (known: state)" },
        { "GET", "/v1/audit?lmit=3", "lmit: unknown parameter (known: limit)" },
        { "PUT", "/v1/products/payments/settled-transactions?reviv=1", "reviv: unknown parameter (known: revive)" },
        { "POST", "/v1/products/payments/settled-transactions/check?reviv=1", "reviv: unknown parameter" },
    };
    char body[4096], path[512];
    FILE *f = fopen(h_repo_path("examples/settled-transactions.yaml", path, sizeof path), "r");
    cr_assert_not_null(f);
    size_t blen = fread(body, 1, sizeof body - 1, f);
    fclose(f);
    body[blen] = '\0';
    double access0 = h_metric(node.url, "trib_access_refused_total{reason=\"bad_query\"}");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char url[1024];
        snprintf(url, sizeof url, "%s%s", node.url, bad[i].path);
        int has_body = !strcmp(bad[i].method, "PUT") || !strcmp(bad[i].method, "POST");
        h_resp_t r;
        cr_assert_eq(h_http(bad[i].method, url, has_body ? "application/yaml" : NULL, has_body ? body : NULL,
                            has_body ? blen : 0, &r), 0, "%s %s", bad[i].method, bad[i].path);
        cr_expect_eq(r.status, 400, "%s %s: %ld %s", bad[i].method, bad[i].path, r.status, r.body);
        json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
        const char *e = json_string_value(json_object_get(j, "error"));
        const char *d = json_string_value(json_object_get(j, "detail"));
        cr_expect(e && !strcmp(e, "bad_query"), "%s %s: %s", bad[i].method, bad[i].path, r.body);
        cr_expect(d && !strncmp(d, bad[i].detail, strlen(bad[i].detail)), "%s %s: %s", bad[i].method, bad[i].path,
                  r.body);
        json_decref(j);
        h_resp_free(&r);
    }
    /* the access routes' refusals are counted where their other 400s are */
    cr_expect_eq(h_metric(node.url, "trib_access_refused_total{reason=\"bad_query\"}"), access0 + 2);
    /* the refused PUT stored nothing: the product is still at its first catalog entry */
    json_t *p = h_get_json(node.url, "/v1/products/payments/settled-transactions", NULL);
    cr_expect_eq(json_integer_value(json_object_get(p, "catalog_seq")), 1, "a refused PUT was stored");
    json_decref(p);
    /* what they take still works, also between empty '&'s (no name, nothing misspelt) */
    h_resp_t r;
    cr_expect_eq(get(RECORDS "?from=19&limit=1", &r), 200, "%s", r.body);
    cr_expect_str_eq(r.first_seq, "19");
    h_resp_free(&r);
    cr_expect_eq(get(RECORDS "?&from=19&&limit=1&", &r), 200, "%s", r.body);
    cr_expect_str_eq(r.first_seq, "19");
    h_resp_free(&r);
    cr_expect_eq(get("/v1/catalog/changes?from=1&live=0&domain=payments&product=payments/settled-transactions", &r),
                 200, "%s", r.body);
    h_resp_free(&r);
}

/* A malformed domain (or product id) filter is the same 400 in the same words on every route that
 * filters by it: the search said "domain: 'X' is not a valid domain name (...)", the change feed
 * "domain: not a domain name (...)", and the compliance report took it and answered 200 with no
 * product, as for a domain nobody has. */
Test(contract, a_malformed_domain_filter_is_one_error_everywhere, .init = start)
{
    static const char *const paths[] = { "/v1/products?domain=Bad_D", "/v1/catalog/changes?live=0&domain=Bad_D",
                                         "/v1/compliance?domain=Bad_D" };
    const char *want = "domain: 'Bad_D' is not a valid domain name ([a-z0-9][a-z0-9-]{0,62})";
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        h_resp_t r;
        cr_expect_eq(get(paths[i], &r), 400, "%s: %ld %s", paths[i], r.status, r.body);
        json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
        cr_expect_str_eq(json_string_value(json_object_get(j, "error")), "bad_query", "%s: %s", paths[i], r.body);
        cr_expect_str_eq(json_string_value(json_object_get(j, "detail")), want, "%s", paths[i]);
        json_decref(j);
        h_resp_free(&r);
    }
    h_resp_t r;
    cr_expect_eq(get("/v1/catalog/changes?live=0&product=payments", &r), 400, "%s", r.body);
    cr_expect(r.body && strstr(r.body, "product: 'payments' is not a product id"), "%s", r.body);
    h_resp_free(&r);
    char *err = NULL;
    cr_expect_eq(h_trib(&node, NULL, NULL, &err, "compliance", "--domain", "Bad_D", NULL), 1);
    cr_expect(err && strstr(err, "400 bad_query: domain: 'Bad_D'"), "%s", err ? err : "");
    free(err);
}

/* A field given twice in the body of /v1/tokens or /v1/tokens/revoke is a 400 naming it, as in every
 * other body the node reads (access, policy, federation objects, manifests): jansson kept the last
 * one, so {"kind": "read", "ttl_s": 60, "kind": "admin"} issued an admin token (a reviewer or a proxy
 * reading the first saw a read token). A body that is JSON but no object says what it is. */
Test(contract, a_body_field_given_twice_is_refused, .init = start)
{
    static const struct { const char *path, *body, *detail; } bad[] = {
        { "/v1/tokens", "{\"sub\":\"ci@payments\",\"kind\":\"read\",\"ttl_s\":60,\"kind\":\"admin\"}",
          "duplicate object key near '\"kind\"'" },
        { "/v1/tokens/revoke", "{\"id\":\"00000000000000000000000000000000\",\"id\":\"x\"}",
          "duplicate object key near '\"id\"'" },
        { "/v1/tokens", "[1]", "the body must be a JSON object, not an array" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char url[512];
        snprintf(url, sizeof url, "%s%s", node.url, bad[i].path);
        h_resp_t r;
        cr_assert_eq(h_http("POST", url, "application/json", bad[i].body, strlen(bad[i].body), &r), 0);
        cr_expect_eq(r.status, 400, "%s: %ld %s", bad[i].path, r.status, r.body);
        json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
        const char *d = json_string_value(json_object_get(j, "detail"));
        cr_expect(d && strstr(d, bad[i].detail), "%s: %s", bad[i].path, r.body);
        json_decref(j);
        h_resp_free(&r);
    }
}

/* The small JSON bodies (a token to issue or revoke, an access request, grant, denial or revocation)
 * take the fields the docs name and no other: one they do not know is a 400 naming it, nothing done.
 * They were ignored: {"prodcut": "payments/x"} issued a token for every product of the domain (a
 * misspelt narrowing widened it), {"feilds": [...]} asked for every field, {"dayz": 3} granted 30. */
Test(contract, a_body_field_a_route_does_not_take_is_refused, .init = start)
{
    static const struct { const char *path, *body, *detail; } bad[] = {
        { "/v1/tokens", "{\"sub\":\"ci@payments\",\"kind\":\"read\",\"ttl_s\":60,\"prodcut\":\"payments/x\"}",
          "prodcut: unknown field (known: sub, kind, ttl_s, product)" },
        { "/v1/tokens/revoke", "{\"tokn\":\"trib1.x\"}", "tokn: unknown field (known: token, id)" },
        { "/v1/access/requests", "{\"product\":\"payments/settled-transactions\",\"purpose\":\"x\",\"feilds\":[\"txn_id\"]}",
          "feilds: unknown field (known: product, purpose, fields, days)" },
        { "/v1/access/requests/req-0123456789abcdef/grant", "{\"dayz\":3}", "dayz: unknown field (known: days)" },
        { "/v1/access/requests/req-0123456789abcdef/deny", "{\"reasn\":\"no\"}", "reasn: unknown field (known: reason)" },
        { "/v1/access/grants/grant-0123456789abcdef/revoke", "{\"reasn\":\"no\"}",
          "reasn: unknown field (known: reason)" },
    };
    json_t *st = h_get_json(node.url, "/v1/status", NULL);
    json_int_t seq0 = json_integer_value(json_object_get(json_object_get(st, "digest"), "payments"));
    json_decref(st);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char url[512];
        snprintf(url, sizeof url, "%s%s", node.url, bad[i].path);
        h_resp_t r;
        cr_assert_eq(h_http("POST", url, "application/json", bad[i].body, strlen(bad[i].body), &r), 0);
        cr_expect_eq(r.status, 400, "%s: %ld %s", bad[i].path, r.status, r.body);
        json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
        cr_expect_str_eq(json_string_value(json_object_get(j, "error")), "bad_request", "%s: %s", bad[i].path, r.body);
        cr_expect_str_eq(json_string_value(json_object_get(j, "detail")), bad[i].detail, "%s", bad[i].path);
        json_decref(j);
        h_resp_free(&r);
    }
    st = h_get_json(node.url, "/v1/status", NULL);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(st, "digest"), "payments")), seq0,
                 "a refused body signed an entry");
    json_decref(st);
    /* the fields they take still work */
    char url[512];
    snprintf(url, sizeof url, "%s/v1/tokens", node.url);
    const char *ok = "{\"sub\":\"ci@payments\",\"kind\":\"read\",\"ttl_s\":60,\"product\":\"payments/settled-*\"}";
    h_resp_t r;
    cr_assert_eq(h_http("POST", url, "application/json", ok, strlen(ok), &r), 0);
    cr_expect_eq(r.status, 201, "%s", r.body);
    cr_expect(r.body && strstr(r.body, "\"scope\":\"payments/settled-*\""), "%s", r.body);
    h_resp_free(&r);
}
