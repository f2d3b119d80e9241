/* node/grants.h - access requests, grants, denials and revocations (DESIGN §13), and the
 * question the read check asks: does this subject hold an active grant for this product?
 *
 * Owns: the operations behind /v1/access endpoints (each signs one AccessChange entry into this node's
 * own log through catalog_publish_access and hands it to the gossip loop), the rules of who may
 * sign what (a request in the requester's home domain, decisions in the product's domain, one
 * decision per request, no revival of a revoked grant), the JSON of requests and grants with
 * their state computed at `now` (granted grants past their expiry are "expired"), and
 * grants_active for the token check of a read (node/grants.c signs and lists; node/grants_read.c
 * answers reads).
 * Must not: parse HTTP or tokens (node/http_access.c does), or project records (storage/project.h).
 * The index these read is storage/access.c's. */
#ifndef TRIB_GRANTS_H
#define TRIB_GRANTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "node/node.h"
#include "storage/access.h"

#define GRANTS_NAMED_MAX 8   /* active grants an audit line names; more are counted */

/* A reader's active grants on a product, as the read check needs them: the fields they give
 * (nfields == 0: every field) and the grant expiring last (id, request, expiry). */
typedef struct {
    char grant_id[ACCESS_ID_MAX];
    char request_id[ACCESS_ID_MAX];
    char fields[ACCESS_FIELDS_MAX][65];
    size_t nfields;
    int64_t expires_ms;
    size_t ngrants;            /* active grants counted (>= 1 when found) */
    char grants[GRANTS_NAMED_MAX * ACCESS_ID_MAX + 24];   /* their ids, comma-separated (audit) */
} grant_info_t;

/* 1 when subject ("alice@growth", a verified token's subject whose issuer domain is the part
 * after '@') holds a grant on product_id that is neither revoked nor expired at now_ms, with *out
 * filled: the fields are the union of every active grant's allow-list, sorted (none, every field,
 * when one of them has none; the grant expiring last's alone, as before grants added up, when the
 * union has more than ACCESS_FIELDS_MAX), the grant id, request and expiry the ones of the grant
 * expiring last, grants every one's id; 0 when none; -1 on a storage error. Only the
 * owner's copy of the index is authoritative at read time: call it on the owner (local reads and
 * the owner side of routed reads). */
int grants_active(node_t *n, const char *subject, const char *product_id, int64_t now_ms, grant_info_t *out);

/* When the grant subject was given on product_id last (the latest grant row the owner signed) is
 * revoked, says so into out: "your grant G for P was revoked at T by domain 'D' (token K) (reason:
 * R)", and returns 1; 0 otherwise (no grant, or the latest is not revoked). For a refused read:
 * call it only once grants_active found none. */
int grants_revoked(node_t *n, const char *subject, const char *product_id, char *out, size_t cap);

/* Why a read that relied on grant `held` (grants_active's when the read began) may not go on at
 * now_ms: NULL while subject still holds active grants on product_id that give every field held
 * gave (more is fine: the read goes on as it began); "grant_changed" when a field held gave is not
 * given any more (one of several grants ended); else the error kind, with
 * the words a client reads in out: "grant_required" when the grant was revoked (grants_revoked's
 * words), ended with this node's certificate (chartered: which, and when it expired), or expired
 * (when); "storage" when the grants could not be read (store_last_error's words). */
const char *grants_ended(node_t *n, const char *subject, const char *product_id, const grant_info_t *held,
                         int64_t now_ms, char *out, size_t cap);

/* For a read refused for want of an active grant (call it only once grants_active found none):
 * when the grant subject was given on product_id last has ended, says how into out, in the words
 * grants_ended gives a live stream (revoked: when, by whom, why; expired at T; ended at T with this
 * node's certificate, its domain and serial), and returns 1; 0 when subject never held one here or
 * the node cannot tell. */
int grants_lapsed(node_t *n, const char *subject, const char *product_id, int64_t now_ms, char *out, size_t cap);

/* The products subject holds an active grant on at now_ms, by grants_active's rule for each, for a
 * caller asking about many products at once (a search): *out (malloc'd; free it) gets them sorted
 * by strcmp, one id per STORE_ID_MAX bytes. Returns how many, or -1 on a storage error. */
long grants_active_products(node_t *n, const char *subject, int64_t now_ms, char (**out)[STORE_ID_MAX]);

/* 1 when now gives every field held gives (grants_active's sorted unions), else 0. */
int grants_fields_cover(const grant_info_t *now, const grant_info_t *held);

/* The fields of info as a NULL-ended array of pointers into info (for storage/project.h); a
 * grant without an allow-list gives NULL (no projection). */
const char *const *grants_fields(const grant_info_t *info, const char *buf[ACCESS_FIELDS_MAX + 1]);

/* ---- reads of confidential and restricted products (DESIGN §13), decided on the owner */

/* A read decision: what grants_check_read found, carried to the end of the read for its audit. */
typedef struct grants_read_s {
    int allowed;             /* 1: serve, projected to grant.fields when grant.nfields > 0 */
    int audited;             /* confidential or restricted: the read is audited (stream.c at its end) */
    unsigned status;         /* refused: 401, 403 or 404 (restricted is never confirmed to exist) */
    const char *code;        /* refused: "token_required", "grant_required", "not_found", "storage" */
    char detail[512];        /* room for how a grant ended (grants_lapsed) */
    grant_info_t grant;
    char subject[129], token_id[33], product_id[STORE_ID_MAX], entry_node[65], action[8];
} grants_read_t;

/* The owner's decision on a read of product_id (of this node's domain) whose manifest says
 * classification, by subject (a verified token's subject, or NULL without a token) of a token
 * issued by issuer_domain, through the node entry_node (hex id; this node's for a local read).
 * public and internal are allowed here (whether internal needs a token is node/auth.c's);
 * confidential and restricted need subject, a subject of the issuer's own domain ("x@D" issued by
 * D: another domain cannot speak for D's people) and an active grant: refusals are audited at once,
 * an allowed read when it ends (grants_audit_served). Returns out->allowed. */
int grants_check_read(node_t *n, const char *classification, const char *subject, const char *issuer_domain,
                      const char *token_id, const char *product_id, const char *entry_node, int live,
                      grants_read_t *out);
/* Audits an allowed read that served `records` records (no-op when !d->audited). */
void grants_audit_served(node_t *n, const grants_read_t *d, uint64_t records);
/* The classification of product_id from its latest manifest into out ("" when unset). 0 or -1. */
int grants_classification(node_t *n, const char *product_id, char out[16]);

/* Who is asking, from a verified token (node/http_access.c fills it). */
typedef struct {
    char subject[129];
    char domain[64];         /* the token's issuer domain */
    int kind;                /* token_kind_t */
    char scope[130];
    char token_id[33];
} grants_caller_t;

/* The outcome of an operation: HTTP-like status, the error kind ("not_found"...) and detail, or
 * on success (2xx) the JSON body (stolen by the caller). */
typedef struct {
    unsigned status;
    const char *kind;
    char detail[512];
    json_t *body;
} grants_result_t;

/* POST /v1/access/requests: body {"product","purpose","fields":[..],"days"}. The caller's token must
 * be of this node's domain (requests are signed into the requester's home log), and the product
 * confidential or restricted (the others are read without a grant: 409 no_grant_needed). */
void grants_request(node_t *n, const grants_caller_t *who, const char *body, size_t len, grants_result_t *r);
/* POST /v1/access/requests/{id}/grant {"days"} or /deny {"reason"}: a write/admin token of this
 * node's domain, and the request's product must be this node's. */
void grants_decide(node_t *n, const grants_caller_t *who, const char *request_id, int grant, const char *body,
                   size_t len, grants_result_t *r);
/* POST /v1/access/grants/{id}/revoke {"reason"?}. */
void grants_revoke(node_t *n, const grants_caller_t *who, const char *grant_id, const char *body, size_t len,
                   grants_result_t *r);
/* GET /v1/access/requests?state=S: requests for this node's products (state NULL: all). */
void grants_list(node_t *n, const grants_caller_t *who, const char *state, grants_result_t *r);
/* GET /v1/access/mine: the caller's requests and grants, as this node's replica knows them. */
void grants_mine(node_t *n, const grants_caller_t *who, grants_result_t *r);

#endif
