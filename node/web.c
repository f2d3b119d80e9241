/* node/web.c - serves the web UI (web/, embedded into the binary by web/embed.sh) at "/".
 *
 * Owns: finding an embedded file by path, its ETag (BLAKE2b-128 of its bytes, computed once), the
 * conditional answer (If-None-Match -> 304) and the security headers of every static answer.
 * Must not: read files from disk at run time, serve anything that is not embedded, or answer an
 * API path (node/http.c routes those; this file only gets the rows it is given there).
 * Threads: any pool thread; the ETags are computed once under pthread_once. */
#include <microhttpd.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include "node/metrics.h"
#include "node/web.h"

#define WEB_MAX_ASSETS 32
#define ETAG_BYTES 16

/* The policy of every UI answer: only this origin's scripts, styles, images and API; no inline
 * script or style; never framed (clickjacking); no plugins; forms post only here. */
#define WEB_CSP "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
                "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "    \
                "frame-ancestors 'none'"

static char etags[WEB_MAX_ASSETS][2 * ETAG_BYTES + 3]; /* "\"hex\"" */
static pthread_once_t etags_once = PTHREAD_ONCE_INIT;

static void etags_init(void)
{
    for (size_t i = 0; i < web_nassets && i < WEB_MAX_ASSETS; i++) {
        unsigned char h[ETAG_BYTES];
        char hex[2 * ETAG_BYTES + 1];
        crypto_generichash(h, sizeof h, web_assets[i].data, web_assets[i].len, NULL, 0);
        sodium_bin2hex(hex, sizeof hex, h, sizeof h);
        snprintf(etags[i], sizeof etags[i], "\"%s\"", hex);
    }
}

int web_etag_matches(const char *inm, const char *etag)
{
    if (!inm)
        return 0;
    size_t elen = strlen(etag);
    for (const char *p = inm; *p;) {
        p += strspn(p, " \t,");
        if (!strncmp(p, "W/", 2))
            p += 2;
        size_t n = strcspn(p, ",");
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if ((n == 1 && *p == '*') || (n == elen && !memcmp(p, etag, n)))
            return 1;
        p += strcspn(p, ",");
    }
    return 0;
}

static void security_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "Content-Security-Policy", WEB_CSP);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    /* Revalidate every time: a node upgraded in place must not leave an old app.js running with a
     * new index.html; the 304 keeps that cheap. */
    MHD_add_response_header(r, "Cache-Control", "no-cache");
}

int web_serve(struct MHD_Connection *c, const char *url, unsigned route)
{
    pthread_once(&etags_once, etags_init);
    const char *path = !strcmp(url, "/") ? "/index.html" : url;
    const web_asset_t *a = NULL;
    size_t i;
    for (i = 0; i < web_nassets && i < WEB_MAX_ASSETS; i++)
        if (!strcmp(web_assets[i].path, path)) {
            a = &web_assets[i];
            break;
        }
    unsigned status;
    struct MHD_Response *r;
    if (!a) {
        static const char nf[] = "{\"error\":\"not_found\",\"detail\":\"no such file of the web UI\"}\n";
        status = MHD_HTTP_NOT_FOUND;
        r = MHD_create_response_from_buffer(sizeof nf - 1, (void *)nf, MHD_RESPMEM_PERSISTENT);
        if (r)
            MHD_add_response_header(r, "Content-Type", "application/json");
    } else if (web_etag_matches(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match"), etags[i])) {
        status = MHD_HTTP_NOT_MODIFIED;
        r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (r)
            MHD_add_response_header(r, "ETag", etags[i]);
    } else {
        status = MHD_HTTP_OK;
        r = MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
        if (r) {
            MHD_add_response_header(r, "Content-Type", a->ctype);
            MHD_add_response_header(r, "ETag", etags[i]);
        }
    }
    if (!r)
        return MHD_NO;
    security_headers(r);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    metrics_http(route, status);
    return ret;
}
