/* node/http_gov.h - the governance routes of the HTTP API (DESIGN §14): check, history, diff,
 * and the publish refusal body. node/http.c routes to these (one row and a three-line wrapper
 * each); everything else about them is here.
 * Must not: parse the route table or decide rights (node/http.c does). */
#ifndef TRIB_HTTP_GOV_H
#define TRIB_HTTP_GOV_H

#include <jansson.h>
#include <microhttpd.h>
#include "node/node.h"

typedef struct {
    node_t *n;
    struct MHD_Connection *c;
    const char *id;             /* "domain/name" of the path */
    const char *body;           /* request body (check), or NULL */
    size_t len;
    int route;                  /* http.c's route id, for the metrics */
} gov_call_t;

enum MHD_Result gov_check(const gov_call_t *g);      /* POST /v1/products/{id}/check */
enum MHD_Result gov_history(const gov_call_t *g);    /* GET  /v1/products/{id}/history */
enum MHD_Result gov_diff(const gov_call_t *g);       /* GET  /v1/products/{id}/diff?from=&to= */
/* GET /v1/catalog/changes?from=SEQ[&live=0][&domain=D][&product=ID]: the change feed as NDJSON */
enum MHD_Result gov_changes(const gov_call_t *g);

/* The body of a refused publish whose result carries a report: {"error","detail", and the
 * report's "mode","changes","required_bump","violations",...}. A new reference (NULL: none). */
json_t *gov_refusal_json(const node_result_t *r);

/* 1 when the query parameter is a true flag (1, true, yes). */
int gov_flag(struct MHD_Connection *c, const char *name);

#endif
