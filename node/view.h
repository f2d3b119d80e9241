/* node/view.h - JSON views of the node's state for the HTTP API: status, members, products.
 * Must not: write anything. */
#ifndef TRIB_VIEW_H
#define TRIB_VIEW_H

#include <jansson.h>
#include "node/agent.h"

typedef struct {
    const char *q, *domain, *tag, *owner, *status;   /* NULL or "" = no filter */
} view_query_t;

json_t *view_status(agent_t *a);
json_t *view_members(agent_t *a);
json_t *view_products(agent_t *a, const view_query_t *q, char *err, size_t errlen);
/* Summary of p; full adds the manifest document and, on the owner, the last record seq. */
json_t *view_product(agent_t *a, const store_product_t *p, int full);

/* Loads and decodes catalog entry domain|seq (both freed with view_free_entry). 0 or -1. */
int view_load_manifest(agent_t *a, const char *domain, uint64_t seq, Trib__SignedEntry **se,
                       Trib__CatalogEntry **ce);
void view_free_entry(Trib__SignedEntry **se, Trib__CatalogEntry **ce);

#endif
