/* node/http_fed.h - the federation endpoints' handlers (DESIGN.md §12): POST /v1/federation/objects
 * and GET /v1/federation. node/http.c's route table calls them and sends what they return.
 * Must not: touch MHD or answer the connection itself. */
#ifndef TRIB_HTTP_FED_H
#define TRIB_HTTP_FED_H

#include <jansson.h>
#include <stddef.h>
#include "node/node.h"

/* A trust object file (as written by `trib fed certify|revoke|update`, or a policy set) submitted
 * to this node: verified, stored and gossiped. Returns the HTTP status; *reply a new reference:
 * 201 {"result":"added","kind","hash"}, 200 {"result":"held",...}, or an error object
 * {"error","detail"} with 400 malformed|kind_mismatch|unknown_kind, 403 forged|below_threshold|
 * wrong_federation, 409 stale_version|version_gap|broken_chain|open_mode, 422 policy_refused,
 * 413 too_large, 507 fedlog_full, 503 not_ready, 500 storage. */
unsigned http_fed_submit(node_t *n, const char *body, size_t len, json_t **reply);
/* The node's federation view: mode, charter, certificates, revocations, counts. */
unsigned http_fed_show(node_t *n, json_t **reply);

#endif
