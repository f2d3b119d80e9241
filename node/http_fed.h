/* node/http_fed.h - the federation endpoints' handlers (DESIGN.md §12): POST /v1/federation/objects
 * and GET /v1/federation. node/http.c's route table calls them and sends what they return.
 * Must not: touch MHD or answer the connection itself. */
#ifndef TRIB_HTTP_FED_H
#define TRIB_HTTP_FED_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include "node/node.h"

/* A trust object file (as written by `trib fed certify|revoke|update`, or a policy set) submitted
 * to this node by client (its address, as getnameinfo writes it), rate limited before anything is
 * parsed: FED_SUBMIT_RATE per second after a burst of FED_SUBMIT_BURST per client (an IPv4
 * address, an IPv6 /64: node/ratelimit.h), and FED_SUBMIT_ALL_RATE after FED_SUBMIT_ALL_BURST for
 * all clients together (an operator's request skips the latter: from this host's 127.0.0.1 or ::1,
 * or with authz, its Authorization header, holding a valid admin token of this node's domain; a
 * flood of many clients cannot hold back a revocation); beyond either 429 rate_limited with *retry_after_s (seconds, for the
 * Retry-After header), counted by bucket and logged at most every 10 s.
 * Then verified, stored and gossiped. Returns the HTTP status; *reply a new reference:
 * 201 {"result":"added","kind","hash"}, 200 {"result":"held",...}, or an error object
 * {"error","detail"} with 400 malformed|kind_mismatch|unknown_kind, 403 forged|below_threshold|
 * wrong_federation (a hand-over's: uncertified|wrong_domain|revoked|expired|not_yet_valid|rotated),
 * 409 stale_version|version_gap|broken_chain|open_mode, 422 policy_refused, 413 too_large,
 * 429 rate_limited, 507 fedlog_full, 503 busy (the federation log not running yet, or its loop
 * did not take the object in time: *retry_after_s FED_RETRY_S), 500 storage; every refusal but
 * 429 and 503 counted in trib_fedlog_refused_total. *retry_after_s is 0 on every answer but 429
 * and 503. */
#define FED_RETRY_S 5            /* Retry-After of a 503 busy (as POST /v1/policy's) */
#define FED_SUBMIT_RATE 5.0
#define FED_SUBMIT_BURST 30.0
#define FED_SUBMIT_ALL_RATE 50.0
#define FED_SUBMIT_ALL_BURST 200.0
unsigned http_fed_submit(node_t *n, const char *client, const char *authz, const char *body, size_t len,
                         json_t **reply, unsigned *retry_after_s);
/* trib_fed_submit_rate_limited_total{bucket="client"|"all"}. */
void http_fed_metrics(FILE *f);
/* The node's federation view: mode, charter, certificates, revocations, counts. */
unsigned http_fed_show(node_t *n, json_t **reply);

#endif
