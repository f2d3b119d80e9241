/* node/http.h - the HTTP API server (docs/http-api.md). */
#ifndef TRIB_HTTP_H
#define TRIB_HTTP_H

#include <stddef.h>

struct node;
int http_start(struct node *n, char *err, size_t errlen);   /* listens on a->cfg.http */
void http_stop(struct node *n);

#endif
