/* node/http.h - the HTTP API server (docs/http-api.md). */
#ifndef TRIB_HTTP_H
#define TRIB_HTTP_H

#include <stddef.h>

struct node;
/* Binds and listens on n->cfg.http (a port in use is an error naming it); call before the
 * gossip loop starts so a second agent fails before it joins anyone. */
int http_listen(struct node *n, char *err, size_t errlen);
int http_start(struct node *n, char *err, size_t errlen);   /* serves on what http_listen bound */
void http_stop(struct node *n);

#endif
