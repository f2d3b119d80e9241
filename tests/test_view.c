/* tests/test_view.c - the HTTP API's JSON views of the catalog replica (node/view.c).
 *
 * Owns: views of catalog entries appended to a real store in a temp dir, signed by an
 * in-memory peer identity, as a peer's entries arrive: a manifest whose text is not UTF-8
 * (entry_verify checks only the shape) still shows, and does not fail the whole listing.
 * Must not: start a node or touch the network. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gossip/entry.h"
#include "node/view.h"
#include "tests/peer_tools.h"

static char dir[64];
static node_t node;

static void setup(void)
{
    strcpy(dir, "/tmp/trib-view-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char err[256];
    node.st = store_open(dir, &(store_opts_t){ .nosync = 1 }, err, sizeof err);
    cr_assert_not_null(node.st, "store_open: %s", err);
    snprintf(node.cfg.domain, sizeof node.cfg.domain, "local");
    peer_identity(&node.id);
}

static void teardown(void)
{
    store_close(&node.st);
    char p[128];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
}

TestSuite(view, .init = setup, .fini = teardown, .timeout = 30);

/* Signs m as seq 1 of its domain with a fresh peer key and appends it, as replication does. */
static void append_peer_manifest(Trib__Manifest *m)
{
    identity_t peer;
    peer_identity(&peer);
    Trib__CatalogEntry ce = TRIB__CATALOG_ENTRY__INIT;
    ce.domain = m->domain;
    ce.seq = 1;
    ce.change_case = TRIB__CATALOG_ENTRY__CHANGE_MANIFEST;
    ce.manifest = m;
    uint8_t *bytes;
    size_t len;
    cr_assert_eq(entry_sign(&peer, &ce, &bytes, &len), 0);
    entry_t e;
    char err[256];
    cr_assert_eq(entry_verify(bytes, len, &e, err, sizeof err), 0, "%s", err);
    cr_assert_eq(store_catalog_append(node.st, e.entry, e.hash, peer.pk, bytes, len, err, sizeof err), 0,
                 "%s", err);
    entry_free(&e);
    free(bytes);
}

Test(view, peer_text_that_is_not_utf8_shows_and_keeps_the_listing)
{
    Trib__SchemaProperty prop = TRIB__SCHEMA_PROPERTY__INIT;
    prop.name = "id";
    prop.logical_type = "string";
    Trib__SchemaProperty *props[] = { &prop };
    char *tags[] = { "ok", "bad\xff" };
    Trib__Manifest m = TRIB__MANIFEST__INIT;
    m.domain = "remote";
    m.name = "p1";
    m.version = "1.0.0";
    m.status = "active";
    m.classification = "internal";
    m.title = "caf\xe9 \xff title";   /* Latin-1, not UTF-8 */
    m.owner_business = "a@x.io";
    m.owner_technical = "b\x80@x.io";
    m.n_tags = 2;
    m.tags = tags;
    m.n_schema = 1;
    m.schema = props;
    append_peer_manifest(&m);

    store_product_t p;
    cr_assert_eq(store_product_get(node.st, "remote/p1", &p), 0);
    json_t *j = view_product(&node, &p, 1);
    cr_assert_not_null(j, "a product with non-UTF-8 text has no view");
    cr_expect_str_eq(json_string_value(json_object_get(j, "title")), "caf? ? title");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j, "owners"), "technical")), "b?@x.io");
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(j, "tags"), 1)), "bad?");
    cr_expect_str_eq(json_string_value(json_object_get(j, "version")), "1.0.0");
    json_decref(j);

    char err[256] = "";
    json_t *list = view_products(&node, &(view_query_t){ 0 }, err, sizeof err);
    cr_assert_not_null(list, "the listing failed: %s", err);
    cr_expect_eq(json_array_size(json_object_get(list, "products")), 1);
    json_decref(list);
}

/* The mesh overview of the web UI counts every domain's products from the search's domain facet:
 * a company with more domains than VIEW_FACET_MAX must still see each of them (the least
 * published last), while tags and owners stay at the VIEW_FACET_MAX most frequent. */
Test(view, domain_facet_lists_every_domain_beyond_the_facet_cap)
{
    enum { DOMAINS = VIEW_FACET_MAX + 20 };
    Trib__SchemaProperty prop = TRIB__SCHEMA_PROPERTY__INIT;
    prop.name = "id";
    prop.logical_type = "string";
    Trib__SchemaProperty *props[] = { &prop };
    for (int d = 0; d < DOMAINS; d++) {
        char domain[32], tag[32], *tags[] = { tag };
        snprintf(domain, sizeof domain, "dom%03d", d);
        snprintf(tag, sizeof tag, "tag%03d", d);
        Trib__Manifest m = TRIB__MANIFEST__INIT;
        m.domain = domain;
        m.name = "p1";
        m.version = "1.0.0";
        m.status = "active";
        m.classification = "internal";
        m.title = "a product";
        m.owner_business = "a@x.io";
        m.owner_technical = "b@x.io";
        m.n_tags = 1;
        m.tags = tags;
        m.n_schema = 1;
        m.schema = props;
        append_peer_manifest(&m);
    }
    char err[256] = "";
    json_t *list = view_products(&node, &(view_query_t){ .limit = "0" }, err, sizeof err);
    cr_assert_not_null(list, "the listing failed: %s", err);
    cr_expect_eq(json_integer_value(json_object_get(list, "total")), DOMAINS);
    json_t *facets = json_object_get(list, "facets");
    cr_expect_eq(json_object_size(json_object_get(facets, "domain")), DOMAINS,
                 "the domain facet names %zu of %d domains", json_object_size(json_object_get(facets, "domain")),
                 DOMAINS);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(facets, "domain"), "dom119")), 1);
    cr_expect_eq(json_object_size(json_object_get(facets, "tag")), VIEW_FACET_MAX);
    json_decref(list);
}
