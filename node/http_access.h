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

/* Refusals by reason since start, for /metrics (trib_access_refused_total{reason}). */
void http_access_metrics(FILE *f);

#endif
