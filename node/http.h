/* node/http.h - the HTTP API server (docs/http-api.md). */
#ifndef TRIB_HTTP_H
#define TRIB_HTTP_H

#include <stddef.h>

struct agent;
int http_start(struct agent *a, char *err, size_t errlen);   /* listens on a->cfg.http */
void http_stop(struct agent *a);

#endif
