/* node/changes.h - the catalog change feed of GET /v1/catalog/changes and `trib watch`.
 *
 * Owns: turning the node-local change log (storage/changes.c) into feed events - published,
 * new_version (with its change class), breaking, deprecated, retired, and the events other parts
 * of the node note (policy_changed, grant_changed) - and the NDJSON pages the live stream sends.
 * Must not: write the catalog, wait, or speak HTTP (node/stream.c streams the pages). */
#ifndef TRIB_CHANGES_H
#define TRIB_CHANGES_H

#include <jansson.h>
#include <stdint.h>
#include "node/node.h"

/* Adds an event to this node's feed and wakes its watchers: event is the kind ("policy_changed"),
 * product the id it is about (NULL: none; its domain is the filter's), detail any JSON object
 * merged into the event (borrowed; NULL: none). once non-NULL: only when the last event of this
 * kind noted another once (kept with the row, in one transaction: a restart or a replay that
 * changes nothing adds nothing). The event's local seq, or 0 when already noted or it could not
 * be stored (logged). Grant changes need no note: storage/access.c logs each one it indexes. */
uint64_t changes_note(node_t *n, const char *event, const char *product, json_t *detail, const char *once);

/* The feed event of log row seq (raw: the stored bytes), or NULL when the row cannot be read.
 * {"seq", "event", "product"?, "domain"?, "version"?, "previous"?, "change_class"?, "breaking"?,
 *  "catalog_seq"?, "time_ms"?, "backfilled"? (true: a row store_open added for an entry stored
 *  before the log existed, after the rows it had), "action"? (grant_changed), ...}. A new reference. */
json_t *changes_event(node_t *n, uint64_t seq, const void *raw, size_t len);

/* Appends to buf (*len of *cap, realloc'd) the NDJSON lines of the events from seq from on, at
 * most max rows read, keeping those of domain and product (NULL or "": all) and those about no
 * product or domain in particular (policy_changed: every product's concern). An event of a
 * product hides(ctx, product) says 1 for (a restricted product the caller may not see in full;
 * hides NULL: none) is its stub: seq, event (new_version and breaking read "changed"), product,
 * domain, catalog_seq, status, time_ms, backfilled, "stub": true. *next is the seq after the
 * last row read. The rows read, or -1 (storage). */
typedef int (*changes_hides_fn)(void *ctx, const char *product);
long changes_page(node_t *n, uint64_t from, uint64_t max, const char *domain, const char *product,
                  changes_hides_fn hides, void *hides_ctx, char **buf, size_t *len, size_t *cap, uint64_t *next);

#endif
