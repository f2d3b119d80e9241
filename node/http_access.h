/* node/http_access.h - the handlers of /v1/access and /v1/audit (DESIGN §13, docs/http-api.md).
 *
 * Owns: the caller's identity from "Authorization: Bearer trib1.…", refusals with their codes and
 * counts, and mapping each route to
 * node/grants.c and node/audit.c. node/http.c keeps only the route rows and one call.
 * Must not: sign or index anything itself, or print a token (only its id).
 * Tokens are verified by node/auth.c (auth_verify: cache, issuer keys, revocations). */
#ifndef TRIB_HTTP_ACCESS_H
#define TRIB_HTTP_ACCESS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct node;
struct MHD_Connection;

typedef enum {
    ACCESS_OP_REQUEST,     /* POST /v1/access/requests */
    ACCESS_OP_LIST,        /* GET  /v1/access/requests?state= */
    ACCESS_OP_GRANT,       /* POST /v1/access/requests/{id}/grant */
    ACCESS_OP_DENY,        /* POST /v1/access/requests/{id}/deny */
    ACCESS_OP_REVOKE,      /* POST /v1/access/grants/{id}/revoke */
    ACCESS_OP_MINE,        /* GET  /v1/access/mine */
    ACCESS_OP_AUDIT,       /* GET  /v1/audit?limit=N */
} access_op_t;

/* Answers op: returns the HTTP status and sets *out to the JSON body (a reply or an error object
 * {"error","detail"}). seg is the {id} path segment (or ""), body the request body. */
unsigned http_access(struct node *n, struct MHD_Connection *c, access_op_t op, const char *seg, const char *body,
                     size_t len, json_t **out);

/* grants, the owner side of a routed read (gossip/reads.h reads_fields_fn; ctx is the node): the
 * field allow-list of the active grant the token's subject holds on product when the product is
 * confidential or restricted and the token is of another domain, else NULL (every field). */
char **http_access_owner_fields(void *ctx, const char *product, const uint8_t *token, size_t len);

/* grants2, the owner's audit of routed reads (gossip/reads.h reads_audit_open_fn / _end_fn; ctx is
 * the node): reads of confidential and restricted products are audited with the subject, token
 * id, grant, records served and the entry node (the relay the consumer asked); a refusal at once,
 * an allowed read when it ends. A relay's authorisation probe of a feed subscriber is audited when
 * refused, and when allowed once per subscriber and entry node every PROBE_AUDIT_MS. */
void *http_access_audit_open(void *ctx, const char *product, const uint8_t *token, size_t len, const uint8_t entry[32],
                             int live, int probe, int allowed, const char *kind);
void http_access_audit_end(void *ctx, void *handle, uint64_t records, const char *why);

/* grants, a local read on the owner that node/auth.c allowed: 1 when it relies on a grant (the
 * token is another domain's, the product confidential or restricted), with *out for
 * stream_set_grant (projection to the grant's fields, audit with the records served); else 0. */
struct grants_read_s;
int http_access_local_grant(struct node *n, const char *product, const char *cls, const char *token, size_t len,
                            int live, struct grants_read_s *out);

/* Counts an access route's refusal of kind (one of trib_access_refused_total's reasons) that
 * node/http.c made before http_access ran (a query parameter it does not take). */
void http_access_count_refusal(const char *kind);

/* Refusals by reason since start, for /metrics (trib_access_refused_total{reason}). */
void http_access_metrics(FILE *f);

#endif
