/* node/policy_node.h - the policy set at work on a running node (DESIGN §14): the check at
 * publish, compliance of every product in the catalog replica, and the policy endpoints.
 *
 * A background thread follows the catalog (every domain's log, in seq order, as entries are
 * accepted from peers or published here) and evaluates each manifest with the set in force at
 * the entry's time (`now` = the entry's time_ms, so every node reaches the same verdict);
 * a product with an error violation is non_compliant, never dropped. When a new set comes into
 * force it re-checks every product in chunks, yielding between them, so the node stays
 * answerable. Results are kept in memory and rebuilt from the catalog at start.
 * Must not: refuse or drop a peer's entry, block the gossip loop or an HTTP thread on a
 * re-check, or hold an LMDB transaction while evaluating. */
#ifndef TRIB_POLICY_NODE_H
#define TRIB_POLICY_NODE_H

#include <jansson.h>
#include <stdio.h>

#include "gossip/charter.h"
#include "node/node.h"

/* Opens the set in force (DATA/policy.signed; verified against ch when given), applies the
 * operator's --policy FILE (open mode; may be "" for none) and starts the compliance thread.
 * ch (chartered mode) must outlive the node. 0 or -1 with err. */
int policy_node_start(node_t *n, const charter_t *ch, const char *policy_file, char *err, size_t errlen);
/* Stops the thread and frees everything; accepts a node without policy. */
void policy_node_stop(node_t *n);
/* Entries from peers just stored durably, decoded, in the order stored (the gossip intake
 * worker's, gossip.h on_stored): each one next in its domain's log after those the thread has
 * followed is followed here (the first SCAN_BATCH), so the thread need not read it back and decode
 * it again; the others are left to the thread. Does not wait: while a catch-up runs, all are. */
void policy_node_stored(node_t *n, const Trib__CatalogEntry *const *entries, size_t k);

/* The check at publish (owner node): NODE_OK (warnings, if any, in r->extra "warnings"), or
 * NODE_POLICY_VIOLATION with r->kind "policy_violation", r->detail and r->extra
 * {"violations": [...], "policy_version": V}. NODE_OK when no set is in force. The set is the one
 * in effect now (policy_store_get_at): a set whose effective_from is still to come is not
 * enforced yet, as on accept. The retire and grant checks do the same. doc: m's manifest_document
 * (borrowed; NULL: parsed here). text, len: the manifest as sent (NULL: none), for the line of each
 * violation's path ("manifest_line"). dry_run: a check (trib check), not counted as a refused publish. */
node_code_t policy_node_check_publish(node_t *n, const Trib__Manifest *m, const json_t *doc, const char *text,
                                      size_t len, int dry_run, node_result_t *r);

/* For the grants code, before it grants: 1 when a grant of days on a product of classification
 * breaks an error rule of the set in force (*violations: the list, a new reference), 0 when it
 * does not or no set is in force, -1 out of memory. */
int policy_node_grant_check(node_t *n, const char *classification, int64_t days, json_t **violations);

/* The check at retire (owner node): the transition rules into "retired" (e.g. deprecated for
 * 60 days first). NODE_OK, or NODE_POLICY_VIOLATION as at publish. */
node_code_t policy_node_check_retire(node_t *n, const char *id, node_result_t *r);

/* The product's "compliance" object for product JSON ({"state", "policy_version", "violations"}),
 * NULL when no set is in force. New reference. */
json_t *policy_node_compliance(node_t *n, const char *id);

/* GET /v1/compliance[?domain=D&offset=&limit=]: the non-compliant products (of domain D, NULL: all)
 * in id order, counted ("non_compliant", and per domain in "by_domain"), with the violations of the
 * page [offset, offset+limit) alone, grouped by domain ("domains"). hides(ctx, id) 1: the caller
 * may not see id, which is then neither listed nor counted (NULL: all shown); it is asked only of
 * products whose latest manifest is classified restricted. */
json_t *policy_node_report(node_t *n, const char *domain, size_t offset, size_t limit,
                           int (*hides)(void *ctx, const char *id), void *hides_ctx);
/* GET /v1/policy: the set in force, version, signers. */
json_t *policy_node_show(node_t *n);
/* POST /v1/policy: body is a signed set's file (JSON, kind trib.policy) or, in open mode only,
 * the YAML. Returns the HTTP status; *reply is the body (success or {"error","detail"});
 * *retry_after_s: the Retry-After of a 503 (the federation log's loop did not take the set in
 * time), else 0. */
int policy_node_submit(node_t *n, const char *body, size_t len, json_t **reply, unsigned *retry_after_s);
/* Wires a chartered node's federation log f and the policy both ways (once, after
 * policy_node_start, before HTTP serves): f's policy hook is policy_node_fedlog, and operators'
 * signed sets (policy_node_submit) are offered to f. Without it a signed set is refused 503 busy
 * (with *retry_after_s): an operator's set is in force only once the federation log stored it. */
struct fedlog;
void policy_node_attach(node_t *n, struct fedlog *f);
/* The federation log's policy hook (gossip/fedlog.h: fedlog_policy_fn, ctx the node_t) for
 * signed sets (TrustSigned bytes), at each FEDLOG_POLICY_* step: CHECK and OPERATOR verify only
 * (0 when the set would be held: newer than the set in force, older (history: a peer's arriving
 * late, so every node judges an entry with the same set) or of its version (the tie-break));
 * PEER puts a peer's set in force (or in the history) at once; STORED puts a set in force once
 * its commit is durable (an operator's is in force only then) and writes its files (a failed
 * commit calls nothing: an operator's set stays out of force; a peer's stays in force until
 * restart). A set put in force wakes the compliance thread to re-check
 * every product. 0, or -1 with err. */
int policy_node_fedlog(void *ctx, const uint8_t *bytes, size_t len, int step, char *err, size_t errlen);

/* Prometheus lines (trib_policy_*). */
void policy_node_metrics(node_t *n, FILE *f);

#endif
