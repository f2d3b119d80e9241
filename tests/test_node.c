/* tests/test_node.c - the node's write operations called directly (node/node.c), as the HTTP
 * API and later the CLI-free callers use them: publish, retire and append on a node opened in a
 * temp dir, without HTTP and without the gossip loop.
 * Must not: start a process or touch the network. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/node.h"

static char dir[64];
static node_t node;

#define MANIFEST(domain, name) \
    "name: " name "\ndomain: " domain "\nversion: 1.0.0\ntitle: T\n" \
    "description: {purpose: p, usage: u, limitations: l}\n" \
    "owners: {business: b@example.com, technical: t}\n" \
    "schema:\n  - {name: id, logicalType: string, required: true}\n  - {name: n, logicalType: integer}\n"

static void setup(void)
{
    strcpy(dir, "/tmp/trib-node-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    memset(&node, 0, sizeof node);
    config_defaults(&node.cfg);
    snprintf(node.cfg.data, sizeof node.cfg.data, "%s", dir);
    snprintf(node.cfg.domain, sizeof node.cfg.domain, "payments");
    node.limits = records_default_limits;
    char err[512];
    cr_assert_eq(node_open(&node, err, sizeof err), 0, "node_open: %s", err);
}

static void teardown(void)
{
    node_close(&node);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(node, .init = setup, .fini = teardown, .timeout = 30);

static node_code_t publish(const char *id, const char *text, node_result_t *r)
{
    return node_publish(&node, id, text, strlen(text), r);
}

Test(node, publish_creates_then_updates_and_wakes_readers)
{
    node_result_t r;
    uint64_t gen = node.append_gen;
    cr_assert_eq(publish("payments/x", MANIFEST("payments", "x"), &r), NODE_OK, "%s", r.detail);
    cr_assert(r.created);
    cr_assert_eq(r.catalog_seq, 1);
    cr_assert_str_eq(r.status, "active");
    cr_assert_gt(node.append_gen, gen, "local readers were not woken");
    /* The same manifest again: a no-op (no entry), not an update. */
    cr_assert_eq(publish("payments/x", MANIFEST("payments", "x"), &r), NODE_OK, "%s", r.detail);
    cr_assert(r.unchanged);
    cr_assert_eq(r.catalog_seq, 0);
    store_product_t p;
    cr_assert_eq(store_product_get(node.st, "payments/x", &p), 0);
    cr_assert_eq(p.manifest_seq, 1);
    /* A new minor version (an optional field) updates it. */
    const char *v11 = "name: x\ndomain: payments\nversion: 1.1.0\ntitle: T\n"
                      "description: {purpose: p, usage: u, limitations: l}\n"
                      "owners: {business: b@example.com, technical: t}\n"
                      "schema:\n  - {name: id, logicalType: string, required: true}\n"
                      "  - {name: n, logicalType: integer}\n  - {name: note, logicalType: string}\n";
    cr_assert_eq(publish("payments/x", v11, &r), NODE_OK, "%s", r.detail);
    cr_assert_not(r.created);
    cr_assert_not(r.unchanged);
    cr_assert_eq(r.catalog_seq, 2);
    cr_assert_eq(store_product_get(node.st, "payments/x", &p), 0);
    cr_assert_eq(p.manifest_seq, 2);
}

Test(node, publish_refuses_what_is_not_this_nodes)
{
    node_result_t r;
    cr_assert_eq(publish("growth/x", MANIFEST("growth", "x"), &r), NODE_WRONG_DOMAIN);
    cr_assert_str_eq(r.kind, "wrong_domain");
    cr_assert(strstr(r.detail, "'growth'"), "%s", r.detail);
    cr_assert_eq(publish("payments/y", MANIFEST("payments", "x"), &r), NODE_BAD_INPUT);
    cr_assert(strstr(r.detail, "describes payments/x"), "%s", r.detail);
    cr_assert_eq(publish("payments/x", "name: x\n", &r), NODE_BAD_INPUT);
    cr_assert_str_eq(r.kind, "bad_manifest");
    store_product_t p;
    cr_assert_eq(store_product_get(node.st, "payments/x", &p), STORE_NOTFOUND, "a refused publish stored something");
}

Test(node, append_checks_records_and_stores_them_all_or_nothing)
{
    node_result_t r;
    const char *recs = "{\"id\":\"a\",\"n\":1}\n{\"id\":\"b\"}\n";
    cr_assert_eq(node_append(&node, "payments/x", recs, strlen(recs), &r), NODE_NOT_FOUND);
    cr_assert_eq(publish("payments/x", MANIFEST("payments", "x"), &r), NODE_OK, "%s", r.detail);
    cr_assert_eq(node_append(&node, "payments/x", recs, strlen(recs), &r), NODE_OK, "%s", r.detail);
    cr_assert_eq(r.first_seq, 1);
    cr_assert_eq(r.last_seq, 2);
    cr_assert_eq(r.count, 2);
    const char *bad = "{\"id\":\"c\"}\n{\"n\":\"two\"}\n";
    cr_assert_eq(node_append(&node, "payments/x", bad, strlen(bad), &r), NODE_BAD_INPUT);
    cr_assert(strstr(r.detail, "line 2"), "%s", r.detail);
    uint64_t last = 0;
    store_records_last(node.st, "payments/x", &last);
    cr_assert_eq(last, 2, "a refused batch stored records");
    cr_assert_eq(node_append(&node, "growth/x", recs, strlen(recs), &r), NODE_WRONG_DOMAIN);
}

Test(node, retire_ends_appends_once)
{
    node_result_t r;
    cr_assert_eq(node_retire(&node, "payments/x", &r), NODE_NOT_FOUND);
    cr_assert_eq(publish("payments/x", MANIFEST("payments", "x"), &r), NODE_OK, "%s", r.detail);
    cr_assert_eq(node_retire(&node, "payments/x", &r), NODE_OK, "%s", r.detail);
    cr_assert_eq(r.catalog_seq, 2);
    cr_assert_eq(node_retire(&node, "payments/x", &r), NODE_ALREADY_RETIRED);
    const char *recs = "{\"id\":\"a\"}\n";
    cr_assert_eq(node_append(&node, "payments/x", recs, strlen(recs), &r), NODE_RETIRED);
    cr_assert_str_eq(r.kind, "retired");
    cr_assert_eq(node_retire(&node, "growth/x", &r), NODE_WRONG_DOMAIN);
    cr_assert_eq(node_retire(&node, "payments/X", &r), NODE_BAD_INPUT);
}

Test(node, publish_refuses_a_manifest_with_a_nul_byte)
{
    node_result_t r;
    const char text[] = MANIFEST("payments", "x") "\0garbage";
    cr_assert_eq(node_publish(&node, "payments/x", text, sizeof text - 1, &r), NODE_BAD_INPUT);
    char want[64];
    snprintf(want, sizeof want, "NUL byte at offset %zu", strlen(text));
    cr_assert(strstr(r.detail, want), "%s", r.detail);
}
