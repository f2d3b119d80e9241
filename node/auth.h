/* node/auth.h - who may do what on this node (DESIGN §13): bearer tokens checked against the
 * issuing domain's key, a cache of verified tokens, the revocations this node holds, and the
 * decisions for writes, admin operations and reads by classification, with the refusal codes of
 * the HTTP contract (401 token_required|token_invalid|token_expired|token_revoked, 403
 * wrong_domain|kind_insufficient|out_of_scope|grant_required, 404 not_found for restricted).
 *
 * Owns: DATA/admin.token (written on first start, 0600; the node refuses to start when it or the
 * key file is readable by group or others), node_token_key (whose key a domain is: open mode),
 * the verified-token cache (keyed by a BLAKE2b hash of the token text, bounded; expiry, and on a
 * chartered node the issuer key's standing in the trust store, checked on every use), the
 * revocation set, the check a routed read's owner makes on the forwarded token,
 * and trib_token_refused_total{reason}.
 * Must not: log or count a token's text (only its id), parse HTTP, or decide grants (the seam
 * auth_grant_active calls the grants helper). Process-wide state: one node per process. */
#ifndef TRIB_AUTH_H
#define TRIB_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "gossip/token.h"
#include "node/node.h"

/* The admin token's lifetime: the bootstrap credential, like a root password kept 0600 in the
 * data dir. 365 days (under TOKEN_TTL_MAX_MS); a new one is written by deleting the file and
 * restarting (the old one keeps working until it expires or is revoked). */
#define AUTH_ADMIN_TTL_MS (365LL * 86400000LL)

/* A refusal: HTTP status, contract code and a detail saying what is missing. */
typedef struct {
    int status;
    char kind[32];
    char detail[640];   /* room for how a grant ended (grants_lapsed) after the product and class */
} auth_err_t;

/* At start (before serving): checks DATA/identity.key's mode, writes DATA/admin.token on the
 * first start or checks its mode. 0, or -1 with err. */
int auth_open(node_t *n, char *err, size_t errlen);
/* Issues an admin token of this node's domain signed by id (the node's key, or the key a rotation
 * switches to) and writes it to path (mode 0600; path must not exist). 0, or -1 with err. */
int auth_write_admin_token(node_t *n, const identity_t *id, const char *path, char *err, size_t errlen);

/* open mode: 1 when key may issue tokens for domain: this node's key for its own domain, else
 * the key bound to the domain in the catalog, else (no entry of the domain held yet) the key of a
 * live member announcing that domain. The trust helper routes this to certified keys. */
int node_token_key(void *ctx, const char *domain, const uint8_t key[ID_PK_LEN], int64_t now_ms);

/* Verifies token text (len bytes) at now: cache, then token_verify with node_token_key, then the
 * revocation set. 0 with *c, or -1 with e (401 token_invalid|token_expired|token_revoked) and
 * the refusal counted. */
int auth_verify(node_t *n, const char *text, size_t len, token_claims_t *c, auth_err_t *e);

/* auth_verify for a token a decision already checked (an audit's subject, a grant's fields):
 * nothing is counted as refused. 0 with *c, -1 when the token is absent or not valid. */
int auth_claims(node_t *n, const char *text, size_t len, token_claims_t *c);

/* The token of an "Authorization" header value ("Bearer trib1.…"), or NULL when absent; *len. */
const char *auth_bearer(const char *header, size_t *len);
/* 1 when header (NULL: none) is there but holds no Bearer token (another scheme: "Basic ...";
 * "Bearer" alone), with out saying so and what to send; 0 otherwise (none, empty, a token). */
int auth_scheme_problem(const char *header, char *out, size_t cap);

/* A write (publish, retire, append) of product_id presented at this node. 0 allowed. */
int auth_write(node_t *n, const char *header, const char *product_id, token_claims_t *c, auth_err_t *e);
/* An admin operation of this node's domain (issue, revoke). 0 allowed. */
int auth_admin(node_t *n, const char *header, token_claims_t *c, auth_err_t *e);

/* A read of product_id of classification cls (NULL/"" = internal) by the holder of token
 * (len bytes; NULL: none): public open; internal any valid token; confidential and restricted a
 * valid token and an active grant, or a token of the product's own domain (restricted refusals
 * are 404 not_found). The token's scope must cover the product. 0 allowed. */
int auth_read(node_t *n, const char *token, size_t len, const char *product_id, const char *cls, auth_err_t *e);

/* 1 when the caller (Authorization header value, NULL: none) may see restricted product_id in
 * full (a valid token and an active grant); nothing is counted as refused. */
int auth_may_see(node_t *n, const char *header, const char *product_id);
/* The same for many products (a search): the caller's token verified once by auth_viewer_init,
 * then auth_viewer_sees(viewer, id) per product (store_query_t.sees). */
typedef struct {
    node_t *n;
    int valid;
    token_claims_t c;
    char (*granted)[STORE_ID_MAX];   /* auth_viewer_grants: the products the caller holds grants on */
    long ngranted;                   /* -1: not loaded (a grant lookup per product asked) */
} auth_viewer_t;
void auth_viewer_init(auth_viewer_t *v, node_t *n, const char *header);
void auth_viewer_token(auth_viewer_t *v, node_t *n, const char *token, size_t len); /* the token itself */
/* For a viewer about to ask of many products (a search): its active grants looked up once, now,
 * instead of once per product asked; auth_viewer_done frees them. A storage error leaves the
 * lookup per product. */
void auth_viewer_grants(auth_viewer_t *v);
void auth_viewer_done(auth_viewer_t *v);
int auth_viewer_sees(void *viewer, const char *product_id);
/* 1 when product_id is restricted in this node's catalog and the viewer may not see it in full
 * (a listing or feed then shows only its stub); nothing is counted as refused. */
int auth_viewer_hides(auth_viewer_t *v, const char *product_id);

/* A per-product view beyond the stub (history, diff, a publish's dry run) by the caller holding
 * header: 0 when the product is not restricted here or the caller may see it in full; else -1 with
 * e = 404 not_found "no <what> of <id> for this caller", the refusal counted as for a read. */
int auth_product_view(node_t *n, const char *header, const char *product_id, const char *what, auth_err_t *e);

/* The classification of a product held in the catalog ("internal" when unreadable). */
void auth_classification(node_t *n, const char *product_id, uint64_t manifest_seq, char out[16]);

/* The owner's check of a routed read (reads_check_fn, gossip/reads.h); ctx is the node_t. */
int auth_owner_check(void *ctx, const char *product, const uint8_t *token, size_t len, int *status, char *kind,
                     size_t kindlen, char *detail, size_t detlen);

/* Tokens this node issued or verified, by id: fills the last block's signature. 0 found, -1 not. */
int auth_find_id(const char *id, uint8_t sig[TOKEN_SIG_LEN]);
void auth_remember(const token_claims_t *c);

/* Revokes block sig of a token of this node's domain: held from now on, kept in
 * DATA/revoked.tokens (loaded by auth_open), and written as a signed TokenRevocation entry into
 * the domain's catalog log (gossiped: every node refuses the token within a second of receiving
 * it). 0, 1 when it was revoked already (nothing written: its entry is in the log), or -1 with
 * err (the local revocation holds even then, and a call again writes the entry). */
int auth_revoke(node_t *n, const uint8_t sig[TOKEN_SIG_LEN], const char *token_id, char *err, size_t errlen);

/* THE SEAM to the grants helper (node/grants.h grants_active): 1 when subject holds an active
 * grant on product_id. Until the grants work is merged it says no. */
int auth_grant_active(node_t *n, const char *subject, const char *product_id);

/* Revocations: adds a block signature of this node's domain to the set; 1 when the claims' chain
 * holds a block revoked by the token's own domain (from its log's TokenRevocation entries, read
 * incrementally every 250 ms at most, or this node's file). */
void auth_revoke_add(const uint8_t sig[TOKEN_SIG_LEN]);
int auth_is_revoked(const token_claims_t *c);

/* Counts a refusal in trib_token_refused_total{reason} when reason is one of its codes
 * (token_required, token_invalid, token_expired, token_revoked, wrong_domain, kind_insufficient,
 * out_of_scope, grant_required): 1 counted, 0 not one of them. Every refusal for want of a
 * credential is counted here once, whichever route refused it (node/http_access.c counts the
 * access routes' other refusals in trib_access_refused_total). */
int auth_count(const char *reason);
/* Prometheus text: trib_token_refused_total{reason}, trib_token_verify_total{result} */
void auth_metrics_render(FILE *f);

/* Field `want` (length-delimited) at the top level of protobuf bytes m[0..len): 1 with its bytes
 * (within m), 0 when absent or malformed. Used to skip catalog entries that are not revocations
 * without decoding them; bounded, never reads outside m. */
int auth_pb_field(const uint8_t *m, size_t len, uint32_t want, const uint8_t **out, size_t *outlen);

#endif
