/* tests/test_federation.c - several real `trib agent` processes on loopback: join through a seed,
 * catalog propagation of publish and retire, failure detection (SIGKILL -> suspect -> dead),
 * rejoin and catch-up, graceful leave, and a late joiner catching up on 1,000 products. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/harness.h"

TestSuite(federation, .fini = h_cleanup_all, .timeout = 180);

/* Fast membership timings so failure detection takes a second or two, not tens. */
#define FAST "--probe-interval-ms", "200", "--probe-timeout-ms", "100", "--suspicion-mult", "2", \
             "--gossip-interval-ms", "50", "--anti-entropy-ms", "300", "--retry-max-ms", "1000"

/* State of the member with domain on node n's view, or "" when not listed. */
static const char *member_state(h_node_t *n, const char *domain, char *buf, size_t cap)
{
    buf[0] = '\0';
    json_t *j = h_get_json(n->url, "/v1/members", NULL);
    json_t *m;
    size_t i;
    json_array_foreach(json_object_get(j, "members"), i, m)
    {
        if (!strcmp(json_string_value(json_object_get(m, "domain")), domain))
            snprintf(buf, cap, "%s", json_string_value(json_object_get(m, "state")));
    }
    json_decref(j);
    return buf;
}

typedef struct {
    h_node_t **nodes;
    int n;
    const char *domain, *state;
    const char *product;
    int status_retired;
    long count;
} cond_t;

static int all_see_state(void *ctx)
{
    cond_t *c = ctx;
    char buf[32];
    for (int i = 0; i < c->n; i++)
        if (strcmp(member_state(c->nodes[i], c->domain, buf, sizeof buf), c->state) != 0)
            return 0;
    return 1;
}

static int all_alive(void *ctx)
{
    cond_t *c = ctx;
    for (int i = 0; i < c->n; i++) {
        json_t *j = h_get_json(c->nodes[i]->url, "/v1/status", NULL);
        long alive = (long)json_integer_value(json_object_get(json_object_get(j, "members"), "alive"));
        json_decref(j);
        if (alive != c->count)
            return 0;
    }
    return 1;
}

static int all_have_product(void *ctx)
{
    cond_t *c = ctx;
    for (int i = 0; i < c->n; i++) {
        char path[256];
        snprintf(path, sizeof path, "/v1/products/%s", c->product);
        json_t *j = h_get_json(c->nodes[i]->url, path, NULL);
        int ok = j && (!c->status_retired || !strcmp(json_string_value(json_object_get(j, "status")), "retired"));
        json_decref(j);
        if (!ok)
            return 0;
    }
    return 1;
}

static int all_have_count(void *ctx)
{
    cond_t *c = ctx;
    for (int i = 0; i < c->n; i++) {
        json_t *j = h_get_json(c->nodes[i]->url, "/v1/status", NULL);
        long p = (long)json_integer_value(json_object_get(j, "products"));
        json_decref(j);
        if (p != c->count)
            return 0;
    }
    return 1;
}

static void start3(h_node_t *a, h_node_t *b, h_node_t *c)
{
    cr_assert_eq(h_node_start(a, "payments", FAST, NULL), 0, "payments did not start");
    cr_assert_eq(h_node_start(b, "growth", "--seed", a->peer, FAST, NULL), 0, "growth did not start");
    cr_assert_eq(h_node_start(c, "listening", "--seed", a->peer, FAST, NULL), 0, "listening did not start");
    h_node_t *all[] = {a, b, c};
    cond_t cd = {.nodes = all, .n = 3, .count = 3};
    cr_assert(h_wait(all_alive, &cd, 15000), "three nodes did not all see three alive members");
}

static void publish(h_node_t *n, const char *file)
{
    char rel[256], path[512], *err = NULL;
    snprintf(rel, sizeof rel, "examples/%s", file);
    int rc = h_trib(n, NULL, NULL, &err, "publish", h_repo_path(rel, path, sizeof path), NULL);
    cr_assert_eq(rc, 0, "publish %s: %s", file, err);
    free(err);
}

Test(federation, three_nodes_join_and_list_each_other)
{
    h_node_t a, b, c;
    start3(&a, &b, &c);
    char *out = NULL, *err = NULL;
    cr_assert_eq(h_trib(&b, NULL, &out, &err, "members", NULL), 0, "%s", err);
    cr_assert(strstr(out, "payments") && strstr(out, "growth") && strstr(out, "listening"), "members: %s", out);
    cr_assert(strstr(out, a.peer), "members lacks the address of payments: %s", out);
    free(out);
    free(err);
}

/* An anti-entropy round opened by a peer found n's catalog identical (summary only). */
static int rounds_agree(void *ctx)
{
    h_node_t *n = ctx;
    char url[512];
    snprintf(url, sizeof url, "%s/metrics", n->url);
    h_resp_t r;
    if (h_http("GET", url, NULL, NULL, 0, &r) != 0)
        return 0;
    const char *m = r.body ? strstr(r.body, "trib_catalog_rounds_total{kind=\"agreed\"} ") : NULL;
    int ok = m && strtoull(m + strlen("trib_catalog_rounds_total{kind=\"agreed\"} "), NULL, 10) > 0;
    h_resp_free(&r);
    return ok;
}

Test(federation, publish_and_retire_propagate_with_same_signer_and_seq)
{
    h_node_t a, b, c;
    start3(&a, &b, &c);
    publish(&a, "settled-transactions.yaml");
    h_node_t *others[] = {&b, &c};
    cond_t cd = {.nodes = others, .n = 2, .product = "payments/settled-transactions"};
    cr_assert(h_wait(all_have_product, &cd, 5000), "publish did not reach every node");
    json_t *src = h_get_json(a.url, "/v1/products/payments/settled-transactions", NULL);
    for (int i = 0; i < 2; i++) {
        json_t *j = h_get_json(others[i]->url, "/v1/products/payments/settled-transactions", NULL);
        cr_assert_str_eq(json_string_value(json_object_get(j, "signer")),
                         json_string_value(json_object_get(src, "signer")));
        cr_assert_eq(json_integer_value(json_object_get(j, "catalog_seq")),
                     json_integer_value(json_object_get(src, "catalog_seq")));
        json_t *owner = json_object_get(j, "owner_node");
        cr_assert_str_eq(json_string_value(json_object_get(owner, "node_id")),
                         json_string_value(json_object_get(src, "signer")), "owner node is the signer's node");
        cr_assert_str_eq(json_string_value(json_object_get(owner, "state")), "alive");
        cr_assert_str_eq(json_string_value(json_object_get(owner, "http")),
                         json_string_value(json_object_get(json_object_get(src, "owner_node"), "http")));
        json_decref(j);
    }
    json_decref(src);
    char *err = NULL;
    cr_assert_eq(h_trib(&a, NULL, NULL, &err, "retire", "payments/settled-transactions", NULL), 0, "%s", err);
    free(err);
    cd.status_retired = 1;
    cr_assert(h_wait(all_have_product, &cd, 5000), "retire did not reach every node");
    /* Every node agrees on the digest. */
    json_t *s0 = h_get_json(a.url, "/v1/status", NULL);
    for (int i = 0; i < 2; i++) {
        json_t *s = h_get_json(others[i]->url, "/v1/status", NULL);
        cr_assert(json_equal(json_object_get(s0, "digest"), json_object_get(s, "digest")), "digests differ");
        json_decref(s);
    }
    json_decref(s0);
    /* Once they agree, anti-entropy rounds end at the summary: no digest exchange. */
    cr_assert(h_wait(rounds_agree, &a, 10000), "no anti-entropy round found the catalogs in agreement");
}

Test(federation, sigkill_is_detected_then_rejoin_catches_up)
{
    h_node_t a, b, c;
    start3(&a, &b, &c);
    h_node_stop(&b, SIGKILL);
    h_node_t *watchers[] = {&a, &c};
    cond_t cd = {.nodes = watchers, .n = 2, .domain = "growth", .state = "suspect"};
    long t0 = h_now_ms();
    int saw_suspect = h_wait(all_see_state, &cd, 10000);
    cd.state = "dead";
    cr_assert(h_wait(all_see_state, &cd, 15000), "growth was not marked dead");
    long detect_ms = h_now_ms() - t0;
    cr_log_info("SIGKILL -> dead on both peers in %ld ms (suspect seen: %d)", detect_ms, saw_suspect);

    publish(&a, "settled-transactions.yaml"); /* while growth is down */
    cr_assert_eq(h_node_restart(&b), 0, "growth did not restart");
    cd.state = "alive";
    cr_assert(h_wait(all_see_state, &cd, 15000), "growth did not rejoin");
    h_node_t *gb[] = {&b};
    cond_t cp = {.nodes = gb, .n = 1, .product = "payments/settled-transactions"};
    cr_assert(h_wait(all_have_product, &cp, 10000), "growth did not catch up after restart");
}

Test(federation, graceful_stop_shows_left)
{
    h_node_t a, b, c;
    start3(&a, &b, &c);
    cr_assert_eq(h_node_stop(&c, SIGTERM), 0);
    h_node_t *watchers[] = {&a, &b};
    cond_t cd = {.nodes = watchers, .n = 2, .domain = "listening", .state = "left"};
    cr_assert(h_wait(all_see_state, &cd, 3000), "SIGTERM did not show as left");
}

Test(federation, late_joiner_catches_up_on_1000_products)
{
    h_node_t a;
    cr_assert_eq(h_node_start(&a, "payments", FAST, NULL), 0);
    for (int i = 0; i < 1000; i++) {
        char body[512], url[256];
        int len = snprintf(body, sizeof body,
                           "{\"name\":\"p%04d\",\"domain\":\"payments\",\"version\":\"1.0.%d\","
                           "\"owners\":{\"business\":\"b@x.com\",\"technical\":\"t@x.com\"},"
                           "\"schema\":[{\"name\":\"id\",\"logicalType\":\"string\"}]}",
                           i, i);
        snprintf(url, sizeof url, "%s/v1/products/payments/p%04d", a.url, i);
        h_resp_t r;
        cr_assert_eq(h_http("PUT", url, "application/json", body, (size_t)len, &r), 0);
        cr_assert_eq(r.status, 201, "publish %d: %ld %s", i, r.status, r.body);
        h_resp_free(&r);
    }
    h_node_t b;
    cr_assert_eq(h_node_start(&b, "growth", "--seed", a.peer, FAST, NULL), 0);
    h_node_t *nb[] = {&b};
    cond_t cd = {.nodes = nb, .n = 1, .count = 1000};
    long t0 = h_now_ms();
    cr_assert(h_wait(all_have_count, &cd, 30000), "late joiner did not catch up on 1000 products");
    cr_log_info("late joiner caught up on 1000 products in %ld ms", h_now_ms() - t0);
}
