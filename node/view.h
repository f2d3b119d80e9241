/* node/view.h - JSON views of the node's state for the HTTP API: status, members, products.
 * Must not: write anything. */
#ifndef TRIB_VIEW_H
#define TRIB_VIEW_H

#include <jansson.h>
#include "node/node.h"

/* GET /v1/products: the raw query parameters (NULL or "": absent). */
typedef struct {
    const char *q, *domain, *tag, *owner, *status;   /* search words; filters */
    const char *compliance;                          /* filter: compliant | non_compliant */
    const char *classification;                      /* filter: public | internal | confidential | restricted */
    const char *limit, *offset;                      /* paging (VIEW_LIMIT_DEFAULT, 0) */
    const char *authorization;                       /* the caller's header (NULL: none): a restricted
                                                        product it may not see matches and counts as
                                                        its stub (storage/search.h) */
} view_query_t;

#define VIEW_LIMIT_DEFAULT 100
#define VIEW_LIMIT_MAX     1000
#define VIEW_OFFSET_MAX    10000000
#define VIEW_FACET_MAX     100      /* values per facet, most frequent first; the domain facet: all */

json_t *view_status(node_t *a);
/* {"members": [...]} and, chartered, "uncertified": [...]: the nodes announced in the membership
 * without a certificate from the federation that holds now for their domain
 * (gossip_member_t.uncertified), each shaped as a member plus "trust" ("uncertified": none held
 * for the domain; else the verdict on the one held: "revoked", "expired" ...) and "detail" (why,
 * gossip_member_why): not members, so not listed among them nor counted in view_status's "members"
 * (which adds "uncertified": N when any). */
json_t *view_members(node_t *a);
/* A query parameter v that is a count: a non-negative decimal no greater than max, def when absent
 * or empty. 0, or -1 with err naming it ("limit: 'x' is not a non-negative integer"). */
int view_parse_count(const char *name, const char *v, size_t def, size_t max, size_t *out, char *err,
                     size_t errlen);
/* Checks every parameter of q: 0, or -1 with err naming the parameter (answer 400). */
int view_products_check(const view_query_t *q, char *err, size_t errlen);
/* Ranked search over the node's catalog replica (storage's search index): {"products": [summary
 * + "score", in rank order], "total", "offset", "limit", "facets": {"domain": {value: count},
 * "tag", "owner", "status", "compliance", "classification"}}. q must have passed view_products_check; NULL on a storage error. */
json_t *view_products(node_t *a, const view_query_t *q, char *err, size_t errlen);
/* Summary of p; full adds the manifest document and, on the owner, the last record seq. */
json_t *view_product(node_t *a, const store_product_t *p, int full);

/* Loads and decodes catalog entry domain|seq (both freed with view_free_entry). 0 or -1. */
int view_load_manifest(node_t *a, const char *domain, uint64_t seq, Trib__SignedEntry **se,
                       Trib__CatalogEntry **ce);
void view_free_entry(Trib__SignedEntry **se, Trib__CatalogEntry **ce);

#endif
