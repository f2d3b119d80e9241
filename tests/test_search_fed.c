/* tests/test_search_fed.c - catalog search across three real `trib agent` processes: 300 products
 * published over HTTP on their owners' nodes, replicated everywhere, then the same table of
 * queries -> expected top hits, the same facet counts and the same total on every node; a
 * retire re-ranks everywhere; bad parameters are 400s naming the parameter; the CLI prints
 * the ranking and the facet line.
 * Must not: sleep to synchronise (it polls /v1/status with a deadline). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/harness.h"

TestSuite(search_fed, .fini = h_cleanup_all, .timeout = 240);

#define FAST "--probe-interval-ms", "200", "--probe-timeout-ms", "100", "--suspicion-mult", "2", \
             "--gossip-interval-ms", "50", "--anti-entropy-ms", "300", "--retry-max-ms", "1000"

#define PER_NODE 100
static const char *const domains[3] = { "payments", "growth", "listening" };

/* ---------------------------------------------------------------- HTTP */

static void put_manifest(h_node_t *n, json_t *m)
{
    char url[512], *body = json_dumps(m, JSON_COMPACT);
    cr_assert_not_null(body);
    snprintf(url, sizeof url, "%s/v1/products/%s/%s", n->url, json_string_value(json_object_get(m, "domain")),
             json_string_value(json_object_get(m, "name")));
    h_resp_t r;
    cr_assert_eq(h_http("PUT", url, "application/json", body, strlen(body), &r), 0, "PUT %s", url);
    cr_assert(r.status == 200 || r.status == 201, "PUT %s: %ld %.*s", url, r.status, (int)r.len, r.body);
    h_resp_free(&r);
    free(body);
}

/* ---------------------------------------------------------------- the catalog */

static const char *const colors[] = { "amber", "cobalt", "crimson", "jade", "onyx" };
static const char *const statuses[] = { "active", "active", "draft", "deprecated" };

/* Filler product i of domain d: words that the landmark queries below do not use. */
static json_t *filler(int d, int i)
{
    char name[64], title[128], purpose[256], owner[64], field[64];
    snprintf(name, sizeof name, "%s-dataset-%03d", colors[i % 5], i);
    snprintf(title, sizeof title, "%s dataset number %d", colors[(i + 1) % 5], i);
    snprintf(purpose, sizeof purpose, "Synthetic records of batch %d for the %s team.", i, domains[d]);
    snprintf(owner, sizeof owner, "owner%d@example.com", i % 4);
    snprintf(field, sizeof field, "%s_ref_%d", colors[(i + 2) % 5], i % 3);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:s},s:{s:s,s:s},s:[s,s],s:s,s:[{s:s,s:s}]}",
                     "name", name, "domain", domains[d], "version", "1.0.0", "status", statuses[i % 4],
                     "title", title, "description", "purpose", purpose,
                     "owners", "business", owner, "technical", "team-data@example.com",
                     "tags", colors[i % 5], i % 2 ? "odd" : "even",
                     "classification", "internal",
                     "schema", "name", field, "logicalType", "string");
}

/* Landmarks: the products the query table is about (each replaces a filler slot). */
typedef struct {
    int domain;
    const char *name, *title, *purpose, *tags[2], *business, *field;
} landmark_t;

static const landmark_t landmarks[] = {
    { 0, "settled-transactions", "Settled card transactions", "Every settled card payment, for finance.",
      { "finance", "cards" }, "maria.lopez@example.com", "txn_id" },
    { 0, "card-refunds", "Refunds", "Money returned to card holders.", { "cards", "refunds" },
      "maria.lopez@example.com", "refund_amount" },
    { 0, "ledger", "General ledger", "Double-entry bookkeeping; used by finance and audit.", { "accounting", "audit" },
      "cfo@example.com", "entry_id" },
    { 1, "finance-report", "Weekly growth report", "Aggregates for the board.", { "reporting", "kpi" },
      "li@example.com", "week" },
    { 1, "signup-funnel", "Signup funnel", "Each step of a new user's signup.", { "funnel", "finance" },
      "li@example.com", "funnel_step" },
    { 2, "track-plays", "Track plays", "Every play of a track with its settled royalty.", { "listening", "royalties" },
      "editorial@example.com", "track_id" },
};
#define NLANDMARKS (sizeof landmarks / sizeof *landmarks)

static json_t *landmark(const landmark_t *l)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:s},s:{s:s,s:s},s:[s,s],s:s,s:[{s:s,s:s}]}",
                     "name", l->name, "domain", domains[l->domain], "version", "2.0.0", "status", "active",
                     "title", l->title, "description", "purpose", l->purpose,
                     "owners", "business", l->business, "technical", "team-data@example.com",
                     "tags", l->tags[0], l->tags[1], "classification", "internal",
                     "schema", "name", l->field, "logicalType", "string");
}

typedef struct { h_node_t **nodes; long want; } count_cond_t;

static int all_have_count(void *ctx)
{
    count_cond_t *c = ctx;
    for (int i = 0; i < 3; i++) {
        json_t *j = h_get_json(c->nodes[i]->url, "/v1/products?limit=0", NULL);
        long total = j ? (long)json_integer_value(json_object_get(j, "total")) : -1;
        json_decref(j);
        if (total != c->want)
            return 0;
    }
    return 1;
}

typedef struct { h_node_t **nodes; const char *path; const char *top; } top_cond_t;

static int all_show_top(void *ctx)
{
    top_cond_t *c = ctx;
    for (int i = 0; i < 3; i++) {
        json_t *j = h_get_json(c->nodes[i]->url, c->path, NULL);
        const char *id = json_string_value(json_object_get(json_array_get(json_object_get(j, "products"), 0), "id"));
        int ok = id && strcmp(id, c->top) == 0;
        json_decref(j);
        if (!ok)
            return 0;
    }
    return 1;
}

static h_node_t A, B, C;
static h_node_t *nodes[3] = { &A, &B, &C };

/* Three nodes, 300 products (PER_NODE per domain, landmarks among them), replicated. */
static void start_and_publish(void)
{
    cr_assert_eq(h_node_start(&A, "payments", FAST, NULL), 0, "payments did not start");
    cr_assert_eq(h_node_start(&B, "growth", "--seed", A.peer, FAST, NULL), 0, "growth did not start");
    cr_assert_eq(h_node_start(&C, "listening", "--seed", A.peer, FAST, NULL), 0, "listening did not start");
    for (int d = 0; d < 3; d++) {
        int placed = 0;
        for (size_t l = 0; l < NLANDMARKS; l++)
            if (landmarks[l].domain == d) {
                json_t *m = landmark(&landmarks[l]);
                put_manifest(nodes[d], m);
                json_decref(m);
                placed++;
            }
        for (int i = placed; i < PER_NODE; i++) {
            json_t *m = filler(d, i);
            put_manifest(nodes[d], m);
            json_decref(m);
        }
    }
    count_cond_t cc = { nodes, 3 * PER_NODE };
    cr_assert(h_wait(all_have_count, &cc, 60000), "300 products did not reach every node");
}

/* ---------------------------------------------------------------- tests */

Test(search_fed, ranking_and_facets_are_the_same_on_every_node)
{
    start_and_publish();
    static const struct { const char *path, *top[3]; long total; } cases[] = {
        /* exact id, exact name */
        { "/v1/products?q=payments/ledger", { "payments/ledger" }, -1 },
        { "/v1/products?q=signup-funnel", { "growth/signup-funnel" }, 1 },
        { "/v1/products?q=finance%20report", { "growth/finance-report" }, -1 },
        /* name, then tags, then descriptions */
        { "/v1/products?q=finance", { "growth/finance-report", "payments/settled-transactions",
                                      "growth/signup-funnel" }, 4 },
        /* more words matched first; not all required */
        { "/v1/products?q=settled%20card", { "payments/settled-transactions", "payments/card-refunds",
                                             "listening/track-plays" }, 3 },
        /* schema field names, split */
        { "/v1/products?q=refund%20amount", { "payments/card-refunds" }, 1 },
        { "/v1/products?q=txn", { "payments/settled-transactions" }, 1 },
        /* owners */
        { "/v1/products?q=maria", { "payments/card-refunds", "payments/settled-transactions" }, 2 },
        /* prefix of the last word */
        { "/v1/products?q=royal", { "listening/track-plays" }, 1 },
        /* facets as filters */
        { "/v1/products?q=cards&domain=payments&tag=cards&owner=maria.lopez@example.com&status=active",
          { "payments/card-refunds", "payments/settled-transactions" }, 2 },
        { "/v1/products?domain=growth&tag=finance", { "growth/signup-funnel" }, 1 },
        { "/v1/products?tag=FINANCE&status=active", { "growth/signup-funnel", "payments/settled-transactions" }, 2 },
        /* filler: every fifth product per domain is amber-named */
        { "/v1/products?q=amber&domain=listening&status=draft", { NULL }, -1 },
        /* unknown facet values, unknown words: no hits */
        { "/v1/products?tag=nosuchtag", { NULL }, 0 },
        { "/v1/products?owner=nobody@example.com", { NULL }, 0 },
        { "/v1/products?domain=nosuchdomain", { NULL }, 0 },
        { "/v1/products?q=zebra", { NULL }, 0 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        json_t *first = NULL;
        for (int n = 0; n < 3; n++) {
            long st;
            json_t *j = h_get_json(nodes[n]->url, cases[c].path, &st);
            cr_assert_eq(st, 200, "%s on %s: %ld", cases[c].path, nodes[n]->domain, st);
            json_t *list = json_object_get(j, "products");
            for (int k = 0; k < 3 && cases[c].top[k]; k++) {
                const char *id = json_string_value(json_object_get(json_array_get(list, (size_t)k), "id"));
                cr_expect(id && !strcmp(id, cases[c].top[k]), "%s on %s: hit %d is %s, want %s", cases[c].path,
                          nodes[n]->domain, k, id ? id : "(none)", cases[c].top[k]);
            }
            long total = (long)json_integer_value(json_object_get(j, "total"));
            if (cases[c].total >= 0)
                cr_expect_eq(total, cases[c].total, "%s on %s: total %ld", cases[c].path, nodes[n]->domain, total);
            else
                cr_expect_gt(total, 0, "%s on %s: no hits", cases[c].path, nodes[n]->domain);
            /* the same answer everywhere (scores, order, facets) */
            if (!first)
                first = j;
            else {
                cr_expect(json_equal(json_object_get(first, "facets"), json_object_get(j, "facets")),
                          "%s: facets differ on %s", cases[c].path, nodes[n]->domain);
                size_t i;
                json_t *p;
                json_array_foreach(list, i, p) {
                    json_t *q = json_array_get(json_object_get(first, "products"), i);
                    cr_expect_str_eq(json_string_value(json_object_get(p, "id")),
                                     json_string_value(json_object_get(q, "id")), "%s: order differs on %s",
                                     cases[c].path, nodes[n]->domain);
                }
                json_decref(j);
            }
        }
        json_decref(first);
    }

    /* Facet counts of the whole catalog, on every node. */
    for (int n = 0; n < 3; n++) {
        json_t *j = h_get_json(nodes[n]->url, "/v1/products?limit=5", NULL);
        json_t *f = json_object_get(j, "facets");
        cr_expect_eq(json_integer_value(json_object_get(j, "total")), 300);
        cr_expect_eq(json_array_size(json_object_get(j, "products")), 5, "limit");
        for (int d = 0; d < 3; d++)
            cr_expect_eq(json_integer_value(json_object_get(json_object_get(f, "domain"), domains[d])), PER_NODE);
        /* fillers: i from (landmarks in the domain) to 99, status statuses[i % 4]; landmarks active */
        long active = 0, draft = 0, finance = 0;
        for (int d = 0; d < 3; d++) {
            int placed = 0;
            for (size_t l = 0; l < NLANDMARKS; l++)
                placed += landmarks[l].domain == d;
            active += placed;
            for (int i = placed; i < PER_NODE; i++) {
                active += !strcmp(statuses[i % 4], "active");
                draft += !strcmp(statuses[i % 4], "draft");
            }
        }
        for (size_t l = 0; l < NLANDMARKS; l++)
            finance += !strcmp(landmarks[l].tags[0], "finance") || !strcmp(landmarks[l].tags[1], "finance");
        json_t *status = json_object_get(f, "status");
        cr_expect_eq(json_integer_value(json_object_get(status, "active")), active, "active on %s", nodes[n]->domain);
        cr_expect_eq(json_integer_value(json_object_get(status, "draft")), draft, "draft on %s", nodes[n]->domain);
        cr_expect_eq(json_integer_value(json_object_get(json_object_get(f, "tag"), "finance")), finance);
        cr_expect_eq(json_integer_value(json_object_get(json_object_get(f, "owner"), "team-data@example.com")), 300);
        json_decref(j);
    }
}

Test(search_fed, retire_and_update_reindex_everywhere_and_bad_params_are_400)
{
    start_and_publish();
    /* Retire on the owner: listed as retired on every node, no longer active. */
    char url[256];
    snprintf(url, sizeof url, "%s/v1/products/payments/card-refunds", A.url);
    h_resp_t r;
    cr_assert_eq(h_http("DELETE", url, NULL, NULL, 0, &r), 0);
    cr_assert(r.status >= 200 && r.status < 300, "retire: %ld", r.status);
    h_resp_free(&r);
    top_cond_t tc = { nodes, "/v1/products?status=retired&q=refunds", "payments/card-refunds" };
    cr_assert(h_wait(all_show_top, &tc, 10000), "the retire did not reach every node's index");
    /* An update replaces the words: the old title no longer matches anywhere. */
    landmark_t l = landmarks[2];
    l.title = "Nominal ledger";
    l.purpose = "Bookkeeping, renamed.";
    json_t *m = landmark(&l);
    json_object_set_new(m, "version", json_string("2.0.1"));   /* versions only go up (a patch: annotations) */
    put_manifest(&A, m);
    json_decref(m);
    tc = (top_cond_t){ nodes, "/v1/products?q=nominal", "payments/ledger" };
    cr_assert(h_wait(all_show_top, &tc, 10000), "the update did not reach every node's index");
    for (int n = 0; n < 3; n++) {
        json_t *j = h_get_json(nodes[n]->url, "/v1/products?q=general", NULL);
        cr_expect_eq(json_integer_value(json_object_get(j, "total")), 0, "old title still matches on %s",
                     nodes[n]->domain);
        json_decref(j);
        j = h_get_json(nodes[n]->url, "/v1/products?q=refunds&status=active", NULL);
        cr_expect_eq(json_integer_value(json_object_get(j, "total")), 0, "retired still active on %s",
                     nodes[n]->domain);
        json_decref(j);
        /* the facet columns were read whole once, then followed the retire and the update */
        double whole = h_metric(nodes[n]->url, "trib_search_columns_total{how=\"read_whole\"}"),
               updated = h_metric(nodes[n]->url, "trib_search_columns_total{how=\"updated\"}");
        cr_expect_geq(whole, 1, "%s: columns read whole %.0f times", nodes[n]->domain, whole);
        cr_expect_geq(updated, 1, "%s: columns updated %.0f times (read whole %.0f)", nodes[n]->domain, updated,
                      whole);
    }

    /* Bad parameters: 400 naming the parameter, on any node. */
    char longq[700];
    memset(longq, 'a', sizeof longq - 1);
    longq[sizeof longq - 1] = '\0';
    char pq[800], pt[800];
    snprintf(pq, sizeof pq, "/v1/products?q=%s", longq);
    snprintf(pt, sizeof pt, "/v1/products?tag=%.300s", longq);
    const struct { const char *path, *param; } bad[] = {
        { "/v1/products?limit=abc", "limit" },
        { "/v1/products?limit=-1", "limit" },
        { "/v1/products?limit=100000", "limit" },
        { "/v1/products?offset=1.5", "offset" },
        { "/v1/products?status=gone", "status" },
        { "/v1/products?domain=Bad_Domain", "domain" },
        { pq, "q" },
        { "/v1/products?q=a1%20a2%20a3%20a4%20a5%20a6%20a7%20a8%20a9%20b1%20b2%20b3%20b4%20b5%20b6%20b7%20b8", "q" },
        { pt, "tag" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        long st;
        json_t *j = h_get_json(nodes[i % 3]->url, bad[i].path, &st);
        cr_expect_eq(st, 400, "%.60s: %ld", bad[i].path, st);
        const char *detail = json_string_value(json_object_get(j, "detail"));
        cr_expect(detail && !strncmp(detail, bad[i].param, strlen(bad[i].param)), "%.60s: detail %s",
                  bad[i].path, detail ? detail : "(none)");
        json_decref(j);
    }

    /* Paging: offset/limit walk the same ranking. */
    json_t *all = h_get_json(B.url, "/v1/products?q=amber&limit=1000", NULL);
    json_t *page = h_get_json(B.url, "/v1/products?q=amber&offset=10&limit=5", NULL);
    for (size_t i = 0; i < 5; i++)
        cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(page, "products"), i), "id")),
                         json_string_value(json_object_get(json_array_get(json_object_get(all, "products"), i + 10), "id")));
    json_decref(all);
    json_decref(page);

    /* The CLI keeps the ranking and prints the facet line. */
    char *out = NULL, *err = NULL;
    cr_assert_eq(h_trib(&C, NULL, &out, &err, "products", "finance", NULL), 0, "%s", err);
    const char *first = strstr(out, "growth/finance-report"), *later = strstr(out, "payments/settled-transactions");
    cr_expect(first && later && first < later, "ranking not kept: %s", out);
    cr_expect(strstr(out, "domain: "), "no facet line: %s", out);
    free(out);
    free(err);
}
