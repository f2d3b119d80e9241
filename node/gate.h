/* node/gate.h - the governance gate of publish, and the version views built on the same history
 * (DESIGN.md §14).
 *
 * Owns: loading a product's retained versions (storage's history index -> the manifests in the
 * catalog), the gate's decision for a new manifest (retired needs revive, unchanged is a no-op,
 * versions only go up, the compatibility mode holds or the major goes up) with its report, and
 * the JSON of `GET .../history` and `GET .../diff`.
 * Must not: sign, store, speak HTTP, or evaluate policy sets (node/policy*, called from
 * node_publish next to the gate). */
#ifndef TRIB_GATE_H
#define TRIB_GATE_H

#include <jansson.h>
#include "node/compat.h"
#include "node/node.h"

/* Every retained version of a product, oldest first (catalog order). */
typedef struct {
    size_t n;
    store_version_t *rows;
    Trib__SignedEntry **se;
    Trib__CatalogEntry **ce;
    const Trib__Manifest **m;      /* m[i] = ce[i]->manifest (NULL when unreadable) */
    json_t **doc;                  /* m[i]'s document, parsed once per node (a cache by catalog
                                      seq: an entry never changes); NULL when it has none */
    compat_prep_t **prep;          /* the schema a check compares (compat_prepare), cached alike */
} gate_versions_t;

/* 0, or -1 with err. A product without history has n == 0. */
int gate_versions_load(node_t *n, const char *id, gate_versions_t *out, char *err, size_t errlen);
void gate_versions_free(gate_versions_t *v);

/* The gate for manifest m of product id (its domain this node's; doc: m's manifest_document,
 * borrowed, parsed once by the caller for the gate and the policy check, or NULL to parse it
 * here). Fills r on a refusal and
 * returns its code; NODE_OK with r->unchanged when m equals the latest manifest. *report (when
 * report != NULL) receives the check report {"ok","mode","id","version","latest","created",
 * "changes","required_bump","violations",...}. */
node_code_t gate_check(node_t *n, const char *id, const Trib__Manifest *m, json_t *doc, int revive,
                       node_result_t *r, json_t **report);

/* Manifest m (doc: its document, borrowed) was just stored as id's entry at catalog seq: the next
 * check of id compares with it without reading or parsing it again. */
void gate_published(node_t *n, const char *id, uint64_t seq, const Trib__Manifest *m, json_t *doc);

/* GET /v1/products/{id}/history: {"id","versions":[{"version","seq","time_ms","signer",
 * "change_class","breaking","mode"}]} (change_class: initial|patch|minor|major against the
 * version before). NULL with *status (404/500) and err. */
json_t *gate_history_json(node_t *n, const char *id, int *status, char *err, size_t errlen);

/* GET /v1/products/{id}/diff?from=V1&to=V2: the compat report of V2 against V1 under V2's mode
 * (non-transitive), plus "verdicts" per change for every mode. NULL with *status and err. */
json_t *gate_diff_json(node_t *n, const char *id, const char *from, const char *to, int *status,
                       char *err, size_t errlen);

#endif
