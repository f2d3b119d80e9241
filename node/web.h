/* node/web.h - the web UI's static files (web/), embedded at build time, served at "/". */
#ifndef TRIB_WEB_H
#define TRIB_WEB_H

#include <stddef.h>

struct MHD_Connection;

/* One embedded file (build/web_assets.c, written by web/embed.sh). */
typedef struct {
    const char *path;           /* "/app.js" */
    const char *ctype;          /* Content-Type */
    const unsigned char *data;
    size_t len;
} web_asset_t;

extern const web_asset_t web_assets[];
extern const size_t web_nassets;

/* Whether an If-None-Match header value (untrusted: any bytes, NULL when absent) names etag (a
 * quoted tag, "\"hex\""): a comma-separated list whose entries may carry W/ (compared weakly, as
 * RFC 9110 asks for If-None-Match), or "*". Reads only up to the header's NUL. */
int web_etag_matches(const char *inm, const char *etag);

/* Answers GET url ("/" is /index.html) with the embedded file: ETag, If-None-Match -> 304,
 * Cache-Control, CSP and nosniff; 404 JSON for a file that is not there. Counts the answer under
 * route id route in the metrics. Returns libmicrohttpd's result. */
int web_serve(struct MHD_Connection *c, const char *url, unsigned route);

#endif
