/* node/http.c - the HTTP/JSON API of docs/http-api.md, served by libmicrohttpd.
 *
 * Owns: the listening socket (one process per port), the route table (routes[]: method, path
 * pattern, route id, handler, body, required right; 404/405 and the metrics labels come from
 * it), request parsing (raw URI checked for control bytes, bodies bounded), JSON responses and
 * errors {"error","detail"}, and the checks before a records read or stream answers 200 (the
 * NDJSON itself is node/stream.c's). The write operations are node/node.c's: here only parsing
 * and result -> status.
 * Must not: hold an LMDB read transaction across a network write, block the gossip loop, or
 * wait on a pool thread for anything but this node's own storage (see http_start).
 * Threads: libmicrohttpd's epoll loop and pool; handlers run on the pool threads. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "gossip/clock.h"
#include "gossip/entry.h"
#include "gossip/gossip.h"
#include "gossip/textfile.h"
#include "gossip/log.h"
#include "gossip/reads.h"
#include "node/auth.h"
#include "node/errtext.h"
#include "node/http.h"
#include "node/grants.h"
#include "node/http_access.h"
#include "node/http_gov.h"
#include "node/known.h"
#include "node/http_fed.h"
#include "node/node.h"
#include "node/policy_node.h"
#include "node/manifest.h"
#include "node/metrics.h"
#include "node/records.h"
#include "node/redirect.h"
#include "node/rotate.h"
#include "node/stream.h"
#include "node/view.h"
#include "node/web.h"
#include "node/workpool.h"
#include "storage/store.h"

/* Route ids: the metrics label of each row of routes[] below ("other": no route). */
typedef enum {
    R_STATUS, R_MEMBERS, R_PRODUCTS, R_PRODUCT_GET, R_PRODUCT_PUT, R_PRODUCT_DELETE,
    R_RECORDS_POST, R_RECORDS_GET, R_STREAM, R_METRICS, R_WHOAMI, R_TOKENS, R_TOKENS_REVOKE,
    R_ACCESS, R_AUDIT,                                       /* access: node/http_access.c */
    R_CHECK, R_HISTORY, R_DIFF, R_CHANGES,                  /* governance: node/http_gov.c */
    R_POLICY_GET, R_POLICY_POST, R_COMPLIANCE,   /* policy: node/policy_node.c */
    R_FED_GET, R_FED_POST,                      /* federation: node/http_fed.c */
    R_WEB,                                      /* the web UI's files: node/web.c */
    R_KEY_ROTATE,                               /* key rotation: node/rotate.c */
    R_OTHER, R_COUNT
} route_t;

/* What a caller must hold for a route (DESIGN §13), enforced by allowed() with node/auth.c. */
typedef enum {
    RIGHT_PUBLIC,   /* the web UI's static files: open even with --require-token (the sign-in page) */
    RIGHT_NONE,     /* status, members, metrics, catalog search and manifests */
    RIGHT_READ,     /* records and streams: by the product's classification (checked in records_get,
                       by the owner: a routed read forwards the token) */
    RIGHT_WRITE,    /* publish, retire, append: a write/admin token of the product's own domain */
    RIGHT_TOKEN,    /* whoami: any valid token */
    RIGHT_ADMIN,    /* issue and revoke tokens: an admin token of this node's domain */
} right_t;

/* ------------------------------------------------------------------ requests */

#define HTTP_IDLE_S 15          /* a connection with nothing under way is closed after this */
#define HTTP_WRITE_S 300        /* ... and one receiving or storing a write request after this */

struct route;

typedef struct {
    int started;                /* the handler has seen the headers */
    char bad[256];              /* refused before routing (bad_status, bad_kind): answered at the end */
    unsigned bad_status;
    const char *bad_kind;
    const struct route *route;  /* the matched row, NULL: 404 or 405 (answered at the end) */
    char *body;
    size_t len, cap;
    int too_big;        /* body exceeded the limit: answered 413 at the end */
    int long_timeout;   /* the connection has HTTP_WRITE_S (a write) or --read-pause-ms (a read)
                           until this request is done */
    int op_done;        /* a write operation ran off the pool (ops below): its result is in res */
    node_result_t res;
    token_claims_t claims;  /* the caller's verified token, when the route needed one */
    char *uri;              /* the request target as sent (path and query): a redirect's Location */
} request_t;

static int unhex(int ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
         : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* The first control byte (or NUL) in s[0..len) once percent-decoded: its value, and in *as how it
 * was written; -1 when there is none. */
static int control_byte(const char *s, size_t len, char as[4])
{
    for (size_t i = 0; i < len; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '%' && i + 2 < len && unhex(s[i + 1]) >= 0 && unhex(s[i + 2]) >= 0) {
            ch = unhex(s[i + 1]) * 16 + unhex(s[i + 2]);
            if (ch < 0x20 || ch == 0x7f) {
                memcpy(as, s + i, 3);
                as[3] = '\0';
                return ch;
            }
            i += 2;
            continue;
        }
        if (ch < 0x20 || ch == 0x7f) {
            snprintf(as, 4, "raw");
            return ch;
        }
    }
    return -1;
}

/* Checks the raw URI (path and query, before libmicrohttpd decodes it and a NUL cuts it short):
 * a decoded control byte or NUL anywhere is refused, naming it and where. 0, or -1 with err. */
static int uri_check(const char *uri, char *err, size_t errlen)
{
    size_t plen = strcspn(uri, "?");
    char as[4];
    int ch = control_byte(uri, plen, as);
    if (ch >= 0) {
        snprintf(err, errlen, "the path %.*s holds the control byte 0x%02x (%s%s); a path takes no control bytes",
                 (int)(plen > 200 ? 200 : plen), uri, ch, ch ? "written " : "NUL, written ", as);
        return -1;
    }
    for (const char *q = uri[plen] ? uri + plen + 1 : uri + plen; *q;) {
        size_t n = strcspn(q, "&");
        size_t klen = strcspn(q, "=");
        if (klen > n)
            klen = n;
        if ((ch = control_byte(q, n, as)) >= 0) {
            char key[64];
            snprintf(key, sizeof key, "%.*s", (int)(klen < sizeof key ? klen : sizeof key - 1), q);
            for (char *k = key; *k; k++)
                if ((unsigned char)*k < 0x20 || *k == 0x7f || *k == '%')
                    *k = '?';
            snprintf(err, errlen,
                     "query parameter '%s' holds the control byte 0x%02x (%s%s); parameters take no control bytes",
                     key, ch, ch ? "written " : "NUL, written ", as);
            return -1;
        }
        q += n;
        if (*q == '&')
            q++;
    }
    return 0;
}

/* Limits of a request's head, under what libmicrohttpd can hold (its 32 KiB per connection): up to
 * them the refusal is ours, in the JSON error shape; past what the library holds it answers 414
 * or 431 itself, with its own HTML page (libmicrohttpd 0.9.75 has no hook for those bodies). */
#define HTTP_URI_MAX 4096
#define HTTP_HEADERS_MAX 8192

static void refuse(request_t *req, unsigned status, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void refuse(request_t *req, unsigned status, const char *kind, const char *fmt, ...)
{
    char detail[sizeof req->bad];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    memcpy(req->bad, detail, sizeof detail);
    req->bad_status = status;
    req->bad_kind = kind;
}

static enum MHD_Result add_header_len(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    *(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

/* libmicrohttpd's first look at a request: the raw URI. The request object starts here. */
static void *uri_seen(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls, (void)c;
    request_t *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    size_t len = strlen(uri);
    if (len > HTTP_URI_MAX)
        refuse(req, 414, "uri_too_long", "the request URI is %zu bytes, over the limit of %d", len, HTTP_URI_MAX);
    else if (uri_check(uri, req->bad, sizeof req->bad) < 0)
        refuse(req, 400, "bad_request", "%s", req->bad);
    else
        req->uri = strdup(uri);   /* NULL (out of memory): a read is relayed, never redirected */
    return req;
}

/* One request being answered: what the route table's handlers get. */
typedef struct {
    node_t *n;
    struct MHD_Connection *c;
    const char *method, *url;
    request_t *req;
    char domain[64], name[64], id[STORE_ID_MAX];   /* {domain}/{name} of the path, if any */
    int revive;                 /* publish: ?revive=1 */
    token_claims_t *claims;                          /* the caller's verified token (RIGHT_TOKEN, _WRITE, _ADMIN) */
} call_t;

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    request_t *r = *con_cls;
    rotate_done(c);   /* a key rotation's reply was sent: the agent restarts on the new key */
    if (r && r->long_timeout) /* back to the idle timeout between requests */
        MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)HTTP_IDLE_S);
    if (r) {
        node_result_clear(&r->res);
        free(r->body);
        free(r->uri);
        free(r);
        *con_cls = NULL;
    }
}

/* timing: a Server-Timing header value or NULL (the browser's Resource Timing shows it). */
static enum MHD_Result send_body_timed(struct MHD_Connection *c, route_t route, unsigned status, const char *ctype,
                                       char *body, size_t len, const char *timing)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    if (timing)
        MHD_add_response_header(resp, "Server-Timing", timing);
    if (status == 401)   /* RFC 7235: a 401 names the scheme it takes */
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    metrics_http(route, status);
    return ret;
}

static enum MHD_Result send_body(struct MHD_Connection *c, route_t route, unsigned status, const char *ctype,
                                 char *body, size_t len)
{
    return send_body_timed(c, route, status, ctype, body, len, NULL);
}

/* Sends j (stolen) as the JSON body; with t0 (CLOCK_MONOTONIC when the handler began), also a
 * Server-Timing header "app;dur=MS": the handler's time until the body was ready. */
static enum MHD_Result send_json_timed(struct MHD_Connection *c, route_t route, unsigned status, json_t *j,
                                       const struct timespec *t0)
{
    char why[300];   /* any route's "needs a token" to a caller who sent another scheme says so */
    const char *kind = status == 401 ? json_string_value(json_object_get(j, "error")) : NULL;
    if (kind && !strcmp(kind, "token_required") &&
        auth_scheme_problem(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"), why, sizeof why))
        json_object_set_new(j, "detail", json_string(why));
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s)
        return MHD_NO;
    size_t n = strlen(s);
    s[n] = '\0';
    char *body = realloc(s, n + 2);  /* end with a newline for curl users */
    if (!body) {
        free(s);
        return MHD_NO;
    }
    body[n] = '\n';
    char timing[40], *tv = NULL;
    if (t0) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
        snprintf(timing, sizeof timing, "app;dur=%.2f", ms);
        tv = timing;
    }
    return send_body_timed(c, route, status, "application/json", body, n + 1, tv);
}

static enum MHD_Result send_json(struct MHD_Connection *c, route_t route, unsigned status, json_t *j)
{
    return send_json_timed(c, route, status, j, NULL);
}

/* A 500 or 507 is the node failing, not the client (a 503 busy: the node overloaded): logged at once, then at most one line per
 * LOG_FAIL_EVERY_S seconds saying how many more there were (a full disk fails every write). */
#define LOG_FAIL_EVERY_S 10
static void log_failure(unsigned status, const char *kind, const char *detail)
{
    static log_limit_t limit;
    uint64_t held;
    char tail[96];
    if (log_limit(&limit, LOG_FAIL_EVERY_S * 1000u, &held))
        log_error("HTTP %u %s: %s%s", status, kind, detail, log_held(tail, sizeof tail, held, ""));
}

static enum MHD_Result send_error(struct MHD_Connection *c, route_t route, unsigned status, const char *kind,
                                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static enum MHD_Result send_error(struct MHD_Connection *c, route_t route, unsigned status, const char *kind,
                                  const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    errtext_utf8(detail);   /* it may quote the request (a path, a parameter): JSON takes UTF-8 only */
    if (status == 500 || status == 507)
        log_failure(status, kind, detail);
    return send_json(c, route, status, json_pack("{s:s,s:s}", "error", kind, "detail", detail));
}


/* Parses an optional unsigned query parameter; -1 on a malformed value. */
static int query_u64(struct MHD_Connection *c, const char *name, uint64_t def, uint64_t *out)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    *out = def;
    if (!v || !*v)
        return 0;
    if (!isdigit((unsigned char)v[0])) /* strtoull takes leading space and a sign ("\t-1" is 2^64 - 1) */
        return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end)
        return -1;
    *out = x;
    return 0;
}

/* ------------------------------------------------------------------ read handlers */

static enum MHD_Result h_status(call_t *k)
{
    return send_json(k->c, R_STATUS, 200, view_status(k->n));
}

static enum MHD_Result h_members(call_t *k)
{
    return send_json(k->c, R_MEMBERS, 200, view_members(k->n));
}

/* DESIGN §13: a restricted product is a stub (id, title, owners, classification) to a caller
 * without a grant on it; j (a product summary) is replaced in place when it must be. Returns j. */
static json_t *stub_if_restricted(call_t *k, json_t *j)
{
    const char *cls = json_string_value(json_object_get(j, "classification"));
    const char *id = json_string_value(json_object_get(j, "id"));
    if (!cls || strcmp(cls, "restricted") != 0 || !id ||
        auth_may_see(k->n, MHD_lookup_connection_value(k->c, MHD_HEADER_KIND, "Authorization"), id))
        return j;
    static const char *const keep[] = {"id", "domain", "name", "title", "status", "classification", "owners"};
    json_t *stub = json_object();
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        json_t *v = json_object_get(j, keep[i]);
        if (v)
            json_object_set(stub, keep[i], v);
    }
    json_object_set_new(stub, "stub", json_true());
    json_object_clear(j);
    json_object_update(j, stub);
    json_decref(stub);
    return j;
}

static enum MHD_Result h_products(call_t *k)
{
    struct timespec t0;   /* the search's own time goes out as Server-Timing (tests/ui/bench.mjs) */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    node_t *a = k->n;
    struct MHD_Connection *c = k->c;
    view_query_t q = {
        .q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "q"),
        .domain = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "domain"),
        .tag = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "tag"),
        .owner = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "owner"),
        .status = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status"),
        .compliance = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "compliance"),
        .classification = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "classification"),
        .limit = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit"),
        .offset = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "offset"),
        .authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
    };
    char err[256];
    if (view_products_check(&q, err, sizeof err) != 0)
        return send_error(c, R_PRODUCTS, 400, "bad_query", "%s", err);
    json_t *j = view_products(a, &q, err, sizeof err);
    if (!j)
        return send_error(c, R_PRODUCTS, 500, "storage", "%s", err);
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(j, "products"), i, item)
        stub_if_restricted(k, item);
    return send_json_timed(c, R_PRODUCTS, 200, j, &t0);
}

static enum MHD_Result h_product_get(call_t *k)
{
    node_t *a = k->n;
    struct MHD_Connection *c = k->c;
    const char *id = k->id;
    store_product_t p;
    int rc = store_product_get(a->st, id, &p);
    if (rc == STORE_NOTFOUND)
        return send_error(c, R_PRODUCT_GET, 404, "not_found", "no product %s in this node's catalog", id);
    if (rc != 0)
        return send_error(c, R_PRODUCT_GET, 500, "storage", "reading product %s failed", id);
    json_t *j = view_product(a, &p, 1);
    if (!j)
        return send_error(c, R_PRODUCT_GET, 500, "storage", "catalog entry of %s is unreadable", id);
    stub_if_restricted(k, j);
    return send_json(c, R_PRODUCT_GET, 200, j);
}

static enum MHD_Result queue_stream(struct MHD_Connection *c, route_t route, stream_t *s, uint64_t last)
{
    enum MHD_Result ret = stream_queue(c, s, last);
    if (ret == MHD_YES)
        metrics_http(route, 200);
    return ret;
}

/* A product of another domain: read it through its owner. */
static enum MHD_Result routed_get(node_t *a, struct MHD_Connection *c, route_t route, const char *id,
                                  const char *domain, uint64_t from, uint64_t limit, int live, int retired,
                                  const char *token, size_t token_len)
{
    if (!a->gossip)
        return send_error(c, route, 503, "owner_unreachable",
                          "%s is owned by domain '%s', and this node runs without federation", id, domain);
    char why[320];  /* its peers refuse a revoked node: no other domain's records come through it */
    if (gossip_own_trust(a->gossip, why, sizeof why) == TRUST_REVOKED)
        return send_error(c, route, 403, "node_revoked", "%s; its peers refuse this node, so it reads no other "
                          "domain's records: read %s through another node", why, id);
    uint64_t last = 0;
    int status = 500;
    char kind[64], detail[1024];
    /* a stream of a product retired here: its records from `from` as a range read, then the
     * "retired" line; none left to send is the owner's 410 (no record can come) */
    int ranged = live && retired;
    gossip_read_t *rd = gossip_read_open(a->gossip, id, from, limit, ranged ? 0 : live, token, token_len, &last,
                                         &status, kind, sizeof kind, detail, sizeof detail);
    if (!rd)
        return send_error(c, route, (unsigned)status, kind, "%s", detail);
    if (ranged && (from ? from : 1) > last) {
        gossip_read_close(&rd);
        return send_error(c, route, 410, "retired", "%s is retired: it takes no new records, and its last is seq "
                          "%" PRIu64, id, last);
    }
    stream_t *s = stream_new(a, c, id, from, limit, ranged ? 0 : live, rd);
    if (!s) {
        gossip_read_close(&rd);
        return MHD_NO;
    }
    if (ranged)
        stream_end_retired(s);
    return queue_stream(c, route, s, last);
}

/* A read of this node's own product refused here: audited as the owner audits a routed read it
 * refuses (http_access_audit_open keeps only confidential and restricted products), with this node
 * as the node the consumer asked. */
static void audit_refused_here(node_t *a, const char *id, const char *token, size_t tlen, int live, const char *kind)
{
    char hex[ID_HEX_LEN];
    uint8_t self[ID_PK_LEN];
    node_id_hex(a, hex);
    if (sodium_hex2bin(self, sizeof self, hex, strlen(hex), NULL, NULL, NULL) == 0)
        (void)http_access_audit_open(a, id, (const uint8_t *)token, token ? tlen : 0, self, live, 0, 0, kind);
}

/* A read's client (records, a stream) may take nothing for --read-pause-ms (2 min), not
 * HTTP_IDLE_S, and read on after: over a new data link when the read is routed and the owner cut
 * it meanwhile (docs/federation.md "Paused and slow clients"). A connection that takes nothing is
 * all libmicrohttpd can time: its timeout is of whole seconds, rounded up here. Back to
 * HTTP_IDLE_S once the request is done. */
static unsigned read_pause_s(const node_t *a)
{
    uint64_t s = (a->cfg.read_pause_ms + 999) / 1000;
    return (unsigned)(s < UINT_MAX ? s : UINT_MAX);
}

static void read_may_pause(call_t *k)
{
    MHD_set_connection_option(k->c, MHD_CONNECTION_OPTION_TIMEOUT, read_pause_s(k->n));
    k->req->long_timeout = 1;
}

static enum MHD_Result records_get(call_t *k, int live)
{
    node_t *a = k->n;
    struct MHD_Connection *c = k->c;
    const char *id = k->id, *domain = k->domain;
    route_t route = live ? R_STREAM : R_RECORDS_GET;
    uint64_t from, limit;
    if (query_u64(c, "from", 1, &from) < 0)
        return send_error(c, route, 400, "bad_query", "from: expected a record seq (a whole number >= 0)");
    if (query_u64(c, "limit", 0, &limit) < 0)
        return send_error(c, route, 400, "bad_query", "limit: expected a whole number >= 0 (0: no limit)");
    if (live && MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit"))
        return send_error(c, route, 400, "bad_query", "limit: not supported on a stream");
    if (limit && (from ? from : 1) - 1 > UINT64_MAX - limit)
        return send_error(c, route, 400, "bad_query", "from + limit: the range ends beyond the largest seq");
    read_may_pause(k);
    store_product_t p;
    int rc = store_product_get(a->st, id, &p);
    if (rc == STORE_NOTFOUND)
        return send_error(c, route, 404, "not_found", "no product %s in this node's catalog", id);
    if (rc != 0)
        return send_error(c, route, 500, "storage", "reading product %s failed", id);
    size_t tlen = 0;
    const char *token = auth_bearer(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"), &tlen);
    if (strcmp(domain, a->cfg.domain) != 0) { /* the owner checks the token: never this relay */
        struct MHD_Response *to = live ? NULL : redirect_to_owner(a, c, id, p.manifest_seq, k->req->uri);
        if (to) { /* asked for, and possible: the client reads from the owner itself */
            enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_TEMPORARY_REDIRECT, to);
            MHD_destroy_response(to);
            metrics_http(route, MHD_HTTP_TEMPORARY_REDIRECT);
            return ret;
        }
        return routed_get(a, c, route, id, domain, from, limit, live, p.retired, token, tlen);
    }
    char cls[16];
    auth_classification(a, id, p.manifest_seq, cls);
    auth_err_t ae;
    if (auth_read(a, token, tlen, id, cls, &ae) < 0) {
        audit_refused_here(a, id, token, tlen, live, ae.kind);
        return send_error(c, route, (unsigned)ae.status, ae.kind, "%s", ae.detail);
    }
    grants_read_t gd; /* grants: a grant's reader gets its fields only, and the read is audited */
    int granted = http_access_local_grant(a, id, cls, token, tlen, live, &gd);
    uint64_t last = 0;
    store_records_last(a->st, id, &last);
    /* a stream of a retired product sends its records from `from`, then the "retired" line
     * (stream.c); with none left to send (from now, or past the last) no record can come */
    if (live && p.retired && (from ? from : 1) > last)
        return send_error(c, route, 410, "retired", "%s is retired: it takes no new records, and its last is seq "
                          "%" PRIu64, id, last);
    stream_t *s = stream_new(a, c, id, from, limit, live, NULL);
    if (!s)
        return MHD_NO;
    if (live) /* out of memory fails closed: the stream's first check finds no token */
        (void)stream_set_token(s, token, tlen);
    if (granted && stream_set_grant(s, &gd) != 0)
        return MHD_NO; /* out of memory (s freed): never unprojected */
    return queue_stream(c, route, s, last);
}

static enum MHD_Result h_records_get(call_t *k) { return records_get(k, 0); }
static enum MHD_Result h_stream(call_t *k) { return records_get(k, 1); }

/* ------------------------------------------------------------------ write handlers */

/* Maps an operation's outcome to its HTTP status. */
static unsigned status_of(const node_result_t *r, unsigned ok_status)
{
    switch (r->code) {
    case NODE_OK: return ok_status;
    case NODE_BAD_INPUT: return 400;
    case NODE_WRONG_DOMAIN: return 403;
    case NODE_NOT_FOUND: return 404;
    case NODE_ALREADY_RETIRED: return 409;
    case NODE_RETIRED: return 410;
    case NODE_TOO_LARGE: return 413;
    case NODE_NO_SPACE: return 507; /* a retry can succeed once space is freed */
    case NODE_NOT_SYNCED: return 503; /* a retry succeeds once the peers have been asked */
    case NODE_NOT_CERTIFIED: return 403; /* node_revoked: no retry mends it, a certificate does */
    case NODE_REFUSED: return 422; /* the governance gate: incompatible, version_not_increased */
    case NODE_POLICY_VIOLATION: return 422;
    case NODE_DOMAIN_TAKEN: return 409; /* another node's key holds the domain: publish there */
    case NODE_FAILED: break;
    }
    return 500;
}

static enum MHD_Result send_result(struct MHD_Connection *c, route_t route, node_result_t *r)
{
    if (r->extra) {   /* e.g. policy_violation's "violations": every one, with rule, path, line */
        json_t *j = json_pack("{s:s,s:s}", "error", r->kind, "detail", r->detail);
        json_object_update(j, r->extra);
        json_decref(r->extra);
        r->extra = NULL;
        return send_json(c, route, status_of(r, 500), j);
    }
    return send_error(c, route, status_of(r, 500), r->kind, "%s", r->detail);
}

/* Write operations run off the pool: a pool thread is bound to its connections (libmicrohttpd
 * hands each connection to one of them), so a publish waiting there for its durable commit would
 * hold up the others on that thread and keep concurrent writers from sharing one commit. They
 * run on --write-workers threads of their own (32; node/workpool.c, started with the server; a
 * thread per operation spent ~10% of a publishing node's CPU creating threads), each waiting for
 * its commit, so up to that many writers share one. The connection is suspended meanwhile and
 * resumed when the result is in req->res; the handler is then called again and answers. At most
 * OPS_QUEUE_PER_WORKER per worker wait for one; beyond, or while the server stops, the request is
 * answered 503 busy with Retry-After (never held on the pool thread), counted in
 * trib_http_busy_total. */
#define OPS_QUEUE_PER_WORKER 16
#define OPS_RETRY_S "1"

typedef node_code_t (*op_fn)(call_t *k, node_result_t *r);
typedef struct {
    call_t k;
    op_fn fn;
} op_t;

static pthread_mutex_t ops_mu = PTHREAD_MUTEX_INITIALIZER;   /* orders a suspension before its resumption */
static workpool_t *ops;      /* set before the server starts, freed after it stopped */

static void op_main(void *arg)
{
    op_t *o = arg;
    o->fn(&o->k, &o->k.req->res);
    pthread_mutex_lock(&ops_mu);
    o->k.req->op_done = 1;
    MHD_resume_connection(o->k.c); /* after its suspension: that happened under ops_mu */
    pthread_mutex_unlock(&ops_mu);
    free(o);
}

/* Runs fn for k: 1 when queued for a worker (the handler returns MHD_YES and is called again
 * with the result), 0 when it ran here (no workers: the result is in k->req->res), -1 when the
 * workers are all busy and the queue full, or the server is stopping (answer with send_busy). */
static int op_run(call_t *k, op_fn fn)
{
    if (ops) {
        op_t *o = malloc(sizeof *o);
        if (!o)
            return -1;
        *o = (op_t){.k = *k, .fn = fn};
        pthread_mutex_lock(&ops_mu);
        int rc = workpool_submit(ops, op_main, o);
        if (rc == 0)
            MHD_suspend_connection(k->c);
        pthread_mutex_unlock(&ops_mu);
        if (rc == 0)
            return 1;
        free(o);
        return -1;
    }
    fn(k, &k->req->res);
    k->req->op_done = 1;
    return 0;
}

static enum MHD_Result send_busy(struct MHD_Connection *c, route_t route)
{
    static const char body[] = "{\"error\":\"busy\",\"detail\":\"every write worker is busy and " /* */
                               "the queue is full (or the node is stopping): retry shortly\"}\n";
    struct MHD_Response *resp = MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Retry-After", OPS_RETRY_S);
    log_failure(503, "busy", "write operations queue full or node stopping");
    enum MHD_Result ret = MHD_queue_response(c, 503, resp);
    MHD_destroy_response(resp);
    metrics_http(route, 503);
    metrics_http_busy();
    return ret;
}

static node_code_t op_publish(call_t *k, node_result_t *r)
{
    node_publish_opts_t o = {.revive = k->revive, .want_report = 1};
    return node_publish_ex(k->n, k->id, k->req->body ? k->req->body : "", k->req->len, &o, r);
}

static node_code_t op_retire(call_t *k, node_result_t *r) { return node_retire(k->n, k->id, r); }

static node_code_t op_append(call_t *k, node_result_t *r)
{
    return node_append(k->n, k->id, k->req->body ? k->req->body : "", k->req->len, r);
}

static enum MHD_Result h_product_put(call_t *k)
{
    k->revive = gov_flag(k->c, "revive");
    if (!k->req->op_done) {
        int q = op_run(k, op_publish);
        if (q)
            return q > 0 ? MHD_YES : send_busy(k->c, R_PRODUCT_PUT);
    }
    node_result_t *r = &k->req->res;
    json_t *j;
    if (r->code != NODE_OK) {
        if (!(j = gov_refusal_json(r)))   /* not the gate's refusal: error, detail (+ violations) */
            return send_result(k->c, R_PRODUCT_PUT, r);
    } else if (r->unchanged) {
        j = json_pack("{s:s,s:s,s:s,s:b}", "id", k->id, "result", "unchanged", "status", r->status, "created", 0);
    } else {
        char signer[ID_HEX_LEN];
        node_id_hex(k->n, signer);
        j = json_pack("{s:s,s:I,s:s,s:s,s:b}", "id", k->id, "catalog_seq", (json_int_t)r->catalog_seq,
                      "signer", signer, "status", r->status, "created", r->created);
    }
    if (j && r->extra) {   /* the policy set's violations (a refusal) or warnings (stored) */
        json_object_update(j, r->extra);
        json_decref(r->extra);
        r->extra = NULL;
    }
    unsigned status = r->code != NODE_OK ? status_of(r, 500) : r->created && !r->unchanged ? 201 : 200;
    return send_json(k->c, R_PRODUCT_PUT, status, j);
}

static enum MHD_Result h_product_delete(call_t *k)
{
    if (!k->req->op_done) {
        int q = op_run(k, op_retire);
        if (q)
            return q > 0 ? MHD_YES : send_busy(k->c, R_PRODUCT_DELETE);
    }
    node_result_t *r = &k->req->res;
    if (r->code != NODE_OK)
        return send_result(k->c, R_PRODUCT_DELETE, r);
    return send_json(k->c, R_PRODUCT_DELETE, 200,
                     json_pack("{s:s,s:I,s:s}", "id", k->id, "catalog_seq", (json_int_t)r->catalog_seq, "status",
                               "retired"));
}

static enum MHD_Result h_records_post(call_t *k)
{
    if (!k->req->op_done) {
        int q = op_run(k, op_append);
        if (q)
            return q > 0 ? MHD_YES : send_busy(k->c, R_RECORDS_POST);
    }
    node_result_t *r = &k->req->res;
    if (r->code != NODE_OK)
        return send_result(k->c, R_RECORDS_POST, r);
    return send_json(k->c, R_RECORDS_POST, 201,
                     json_pack("{s:s,s:I,s:I,s:I}", "id", k->id, "first_seq", (json_int_t)r->first_seq, "last_seq",
                               (json_int_t)r->last_seq, "count", (json_int_t)r->count));
}

/* ------------------------------------------------------------------ tokens */

static json_t *claims_json(const token_claims_t *c)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:s}", "id", c->id, "subject", c->subject, "domain", c->domain,
                     "kind", token_kind_name(c->kind), "scope", c->scope, "expires_ms", (json_int_t)c->expires_ms,
                     "state", auth_is_revoked(c) ? "revoked" : "valid");
}

static enum MHD_Result h_whoami(call_t *k)
{
    return send_json(k->c, R_WHOAMI, 200, claims_json(k->claims));
}

/* The request body as a JSON object of the keys in known only (node/known.h), or NULL with a 400
 * sent (*ret). */
static json_t *body_object(call_t *k, route_t route, const char *known, enum MHD_Result *ret)
{
    json_error_t je;
    /* a field given twice is refused, as every other body the node reads: jansson kept the last one,
     * so {"kind": "read", ..., "kind": "admin"} issued an admin token to a reader of the first */
    json_t *j = json_loadb(k->req->body ? k->req->body : "", k->req->len, JSON_REJECT_DUPLICATES, &je);
    if (!j || !json_is_object(j)) {
        if (j)
            *ret = send_error(k->c, route, 400, "bad_request", "the body must be a JSON object, not %s",
                              json_is_array(j) ? "an array" : "a single value");
        else
            *ret = send_error(k->c, route, 400, "bad_request", "the body must be a JSON object: %s (line %d, column %d)",
                              je.text, je.line, je.column);
        json_decref(j);
        return NULL;
    }
    const char *stray = known_stray_key(j, known);
    if (stray) {
        *ret = send_error(k->c, route, 400, "bad_request", "%.40s: unknown field (known: %s)", stray, known);
        json_decref(j);
        return NULL;
    }
    return j;
}

static enum MHD_Result h_tokens(call_t *k)
{
    enum MHD_Result ret;
    json_t *j = body_object(k, R_TOKENS, "sub, kind, ttl_s, product", &ret);
    if (!j)
        return ret;
    const char *sub = json_string_value(json_object_get(j, "sub"));
    const char *kind = json_string_value(json_object_get(j, "kind"));
    json_t *ttl = json_object_get(j, "ttl_s"), *prod = json_object_get(j, "product");
    token_kind_t tk;
    char err[300];
    ret = MHD_NO;
    if (!sub)
        ret = send_error(k->c, R_TOKENS, 400, "bad_request", "sub: a subject string is required (\"ci@%s\")",
                         k->n->cfg.domain);
    else if (!strrchr(sub, '@') || strcmp(strrchr(sub, '@') + 1, k->n->cfg.domain) != 0)
        ret = send_error(k->c, R_TOKENS, 400, "bad_request", "sub: '%.128s' is not a subject of this node's domain: give NAME@%s "
                         "(e.g. ci@%s); a domain issues tokens only for its own people and jobs",
                         sub, k->n->cfg.domain, k->n->cfg.domain);
    else if (!kind || token_kind_parse(kind, &tk) < 0)
        ret = send_error(k->c, R_TOKENS, 400, "bad_request", "kind: one of read, write, admin");
    else if (!json_is_integer(ttl) || json_integer_value(ttl) <= 0 ||
             json_integer_value(ttl) > TOKEN_TTL_MAX_MS / 1000)
        ret = send_error(k->c, R_TOKENS, 400, "bad_request", "ttl_s: seconds, 1 to %lld",
                         (long long)(TOKEN_TTL_MAX_MS / 1000));
    else if (prod && !json_is_string(prod))
        ret = send_error(k->c, R_TOKENS, 400, "bad_request", "product: a glob string (\"%s/settled-*\")",
                         k->n->cfg.domain);
    if (ret != MHD_NO || !sub || !kind) {
        json_decref(j);
        return ret;
    }
    int64_t now = clock_wall_ms();
    token_spec_t spec = {.subject = sub, .kind = tk, .product = json_string_value(prod), .issued_ms = now,
                         .expires_ms = now + json_integer_value(ttl) * 1000};
    char *t = NULL;
    identity_t me;
    node_identity(k->n, &me);
    int issued = token_issue(&me, k->n->cfg.domain, &spec, &t, err, sizeof err);
    identity_wipe(&me);
    if (issued < 0) {
        json_decref(j);
        return send_error(k->c, R_TOKENS, 400, "bad_request", "%s", err);
    }
    json_decref(j);
    token_claims_t c;
    token_inspect(t, strlen(t), now, &c, NULL, 0);
    auth_remember(&c);
    log_info("token %s issued to %s (%s, %s) by %s", c.id, c.subject, token_kind_name(c.kind), c.scope,
             k->claims->id);
    json_t *out = claims_json(&c);
    json_object_set_new(out, "token", json_string(t));
    sodium_memzero(t, strlen(t));
    free(t);
    return send_json(k->c, R_TOKENS, 201, out);
}

/* 1 when s is hex digits only (a token id or a revocation id as the node writes them). */
static int all_hex(const char *s)
{
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s))
            return 0;
    return 1;
}

static enum MHD_Result h_tokens_revoke(call_t *k)
{
    enum MHD_Result ret;
    json_t *j = body_object(k, R_TOKENS_REVOKE, "token, id", &ret);
    if (!j)
        return ret;
    const char *tok = json_string_value(json_object_get(j, "token"));
    const char *id = json_string_value(json_object_get(j, "id"));
    uint8_t sig[TOKEN_SIG_LEN];
    char err[300], label[TOKEN_ID_HEX + 8] = "";
    int found = 0;
    if (tok) {
        token_claims_t c;
        token_reason_t r = token_inspect(tok, strlen(tok), clock_wall_ms(), &c, err, sizeof err);
        if (r != TOKEN_OK && r != TOKEN_EXPIRED && r != TOKEN_NOT_YET_VALID) {
            json_decref(j);
            return send_error(k->c, R_TOKENS_REVOKE, 400, "token_invalid", "token: %s", err);
        }
        if (strcmp(c.domain, k->n->cfg.domain) != 0 || !node_own_key(k->n, c.issuer_key)) {
            json_decref(j);
            return send_error(k->c, R_TOKENS_REVOKE, 403, "wrong_domain",
                              "token %s was issued for domain '%s' by another key: only its issuer revokes it", c.id,
                              c.domain);
        }
        memcpy(sig, c.revocation_ids[c.nblocks - 1], TOKEN_SIG_LEN);
        snprintf(label, sizeof label, "%s", c.id);
        found = 1;
    } else if (id && strlen(id) == 2 * TOKEN_SIG_LEN && all_hex(id)) {
        size_t bl = 0;
        found = sodium_hex2bin(sig, sizeof sig, id, strlen(id), NULL, &bl, NULL) == 0 && bl == TOKEN_SIG_LEN;
        snprintf(label, sizeof label, "block %.16s...", id);
    } else if (id && strlen(id) == TOKEN_ID_HEX - 1 && all_hex(id)) {
        found = auth_find_id(id, sig) == 0;
        snprintf(label, sizeof label, "%.32s", id);
    } else if (id) {   /* neither form: a typo or a pasted fragment is told so, not "no such token" */
        ret = send_error(k->c, R_TOKENS_REVOKE, 400, "bad_request",
                         "id: '%.40s%s' is neither a token id (%d hex characters) nor a revocation id (%d hex "
                         "characters); or give {\"token\": TOKEN}", id, strlen(id) > 40 ? "..." : "",
                         TOKEN_ID_HEX - 1, 2 * TOKEN_SIG_LEN);
        json_decref(j);   /* id is j's */
        return ret;
    }
    json_decref(j);
    if (!tok && !id)
        return send_error(k->c, R_TOKENS_REVOKE, 400, "bad_request",
                          "give {\"token\": TOKEN} or {\"id\": ID} (a token id this node issued or saw, or a "
                          "128-hex revocation id)");
    if (!found)
        return send_error(k->c, R_TOKENS_REVOKE, 404, "not_found",
                          "no token with id %s issued or seen by this node; revoke with the token itself", label);
    int rv = auth_revoke(k->n, sig, label, err, sizeof err);
    char taken[1024];
    if (rv < 0 && node_domain_taken(k->n, taken, sizeof taken))   /* this node refuses it; nobody else hears */
        return send_error(k->c, R_TOKENS_REVOKE, 409, "domain_taken", "token %s is refused on this node, but its "
                          "revocation cannot be gossiped: %s", label, taken);
    if (rv < 0)
        return send_error(k->c, R_TOKENS_REVOKE, 500, "storage", "%s", err);
    if (rv == 1)   /* as a grant revoked twice: nothing new signed into the domain's log */
        return send_error(k->c, R_TOKENS_REVOKE, 409, "already_revoked",
                          "token %s was already revoked: every node refuses it once the revocation reaches it", label);
    char hex[2 * TOKEN_SIG_LEN + 1];
    token_revocation_hex(sig, hex);
    log_info("token %s revoked by %s", label, k->claims->id);
    return send_json(k->c, R_TOKENS_REVOKE, 200,
                     json_pack("{s:s,s:s,s:s}", "id", label, "revocation_id", hex, "state", "revoked"));
}

/* ------------------------------------------------------------------ access (node/http_access.c) */

static enum MHD_Result access_call(call_t *k, route_t route, access_op_t op)
{
    json_t *j = NULL;
    unsigned status = http_access(k->n, k->c, op, k->name, k->req->body ? k->req->body : "", k->req->len, &j);
    return j ? send_json(k->c, route, status, j) : MHD_NO;
}
static enum MHD_Result h_access_request(call_t *k) { return access_call(k, R_ACCESS, ACCESS_OP_REQUEST); }
static enum MHD_Result h_access_list(call_t *k) { return access_call(k, R_ACCESS, ACCESS_OP_LIST); }
static enum MHD_Result h_access_grant(call_t *k) { return access_call(k, R_ACCESS, ACCESS_OP_GRANT); }
static enum MHD_Result h_access_deny(call_t *k) { return access_call(k, R_ACCESS, ACCESS_OP_DENY); }
static enum MHD_Result h_access_revoke(call_t *k) { return access_call(k, R_ACCESS, ACCESS_OP_REVOKE); }
static enum MHD_Result h_access_mine(call_t *k) { return access_call(k, R_ACCESS, ACCESS_OP_MINE); }
static enum MHD_Result h_audit(call_t *k) { return access_call(k, R_AUDIT, ACCESS_OP_AUDIT); }

/* ------------------------------------------------------------------ routing */

static enum MHD_Result h_metrics(call_t *k);
static enum MHD_Result h_web(call_t *k) { return (enum MHD_Result)web_serve(k->c, k->url, R_WEB); }

/* Governance (node/http_gov.c). */
static enum MHD_Result gov(call_t *k, enum MHD_Result (*fn)(const gov_call_t *), route_t route)
{
    gov_call_t g = {.n = k->n, .c = k->c, .id = k->id, .body = k->req->body, .len = k->req->len, .route = route};
    return fn(&g);
}
static enum MHD_Result h_check(call_t *k) { return gov(k, gov_check, R_CHECK); }
static enum MHD_Result h_history(call_t *k) { return gov(k, gov_history, R_HISTORY); }
static enum MHD_Result h_diff(call_t *k) { return gov(k, gov_diff, R_DIFF); }
static enum MHD_Result h_changes(call_t *k) { return gov(k, gov_changes, R_CHANGES); }

/* ---- policy (node/policy_node.c builds the bodies) */
static enum MHD_Result h_policy_get(call_t *k) { return send_json(k->c, R_POLICY_GET, 200, policy_node_show(k->n)); }

static enum MHD_Result send_json_retry(struct MHD_Connection *c, route_t route, unsigned status, json_t *j,
                                       unsigned retry_s);

static enum MHD_Result h_policy_post(call_t *k)
{
    json_t *reply = NULL;
    unsigned retry_s;
    int status = policy_node_submit(k->n, k->req->body ? k->req->body : "", k->req->len, &reply, &retry_s);
    return retry_s ? send_json_retry(k->c, R_POLICY_POST, (unsigned)status, reply, retry_s)
                   : send_json(k->c, R_POLICY_POST, (unsigned)status, reply);
}

static int compliance_hides(void *ctx, const char *id) { return auth_viewer_hides(ctx, id); }

static enum MHD_Result h_compliance(call_t *k)
{
    const char *d = MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, "domain");
    if (d && *d && !store_valid_name(d, strlen(d)))   /* as the search and the change feed: never "none" */
        return send_error(k->c, R_COMPLIANCE, 400, "bad_query",
                          "domain: '%.70s' is not a valid domain name (" STORE_NAME_RULE ")", d);
    size_t offset, limit;
    char err[128];
    if (view_parse_count("offset", MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, "offset"), 0,
                         VIEW_OFFSET_MAX, &offset, err, sizeof err) != 0 ||
        view_parse_count("limit", MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, "limit"),
                         VIEW_LIMIT_DEFAULT, VIEW_LIMIT_MAX, &limit, err, sizeof err) != 0)
        return send_error(k->c, R_COMPLIANCE, 400, "bad_query", "%s", err);
    /* a restricted product's compliance is not in its stub (issue 11): a caller who may not see it
     * in full is not told of it, nor of its violations (they name its fields); decided before the
     * page is cut, so the counts and pages are the caller's own */
    auth_viewer_t v;
    auth_viewer_init(&v, k->n, MHD_lookup_connection_value(k->c, MHD_HEADER_KIND, "Authorization"));
    auth_viewer_grants(&v);   /* one grant lookup per report, not one per restricted product */
    json_t *j = policy_node_report(k->n, d && *d ? d : NULL, offset, limit, compliance_hides, &v);
    auth_viewer_done(&v);
    return send_json(k->c, R_COMPLIANCE, 200, j);
}

static enum MHD_Result h_fed_get(call_t *k)
{
    json_t *j = NULL;
    unsigned st = http_fed_show(k->n, &j);
    return send_json(k->c, R_FED_GET, st, j);
}

/* send_json for a 429, a 503 or a 409 busy: with Retry-After (seconds). */
static enum MHD_Result send_json_retry(struct MHD_Connection *c, route_t route, unsigned status, json_t *j,
                                       unsigned retry_s)
{
    char *s = json_dumps(j, JSON_COMPACT), v[16];
    json_decref(j);
    size_t n = s ? strlen(s) : 0;
    char *body = s ? realloc(s, n + 2) : NULL;
    struct MHD_Response *resp = NULL;
    if (body) {
        memcpy(body + n, "\n", 2);   /* end with a newline for curl users */
        resp = MHD_create_response_from_buffer(n + 1, body, MHD_RESPMEM_MUST_FREE);
    }
    if (!resp) {
        free(body ? body : s);
        return MHD_NO;
    }
    snprintf(v, sizeof v, "%u", retry_s ? retry_s : 1);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Retry-After", v);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    metrics_http(route, status);
    return ret;
}

static enum MHD_Result h_fed_post(call_t *k)
{
    json_t *j = NULL;
    char client[NI_MAXHOST] = "?";   /* the rate limit's key: the client's address */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(k->c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr)
        getnameinfo(ci->client_addr, ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                    : sizeof(struct sockaddr_in), client, sizeof client, NULL, 0, NI_NUMERICHOST);
    unsigned retry_s;
    const char *authz = MHD_lookup_connection_value(k->c, MHD_HEADER_KIND, "Authorization");
    unsigned st = http_fed_submit(k->n, client, authz, k->req->body, k->req->len, &j, &retry_s);
    return retry_s ? send_json_retry(k->c, R_FED_POST, st, j, retry_s) : send_json(k->c, R_FED_POST, st, j);
}

static enum MHD_Result h_key_rotate(call_t *k)
{
    json_t *j = NULL;
    unsigned retry_s;
    unsigned st = rotate_request(k->n, k->c, k->req->body, k->req->len, &j, &retry_s);
    return retry_s ? send_json_retry(k->c, R_KEY_ROTATE, st, j, retry_s) : send_json(k->c, R_KEY_ROTATE, st, j);
}

/* The API: one row per method and path. {domain} and {name} match one path segment each and must
 * form a product id. A path that matches no row is a 404; a path some row matches with another
 * method is a 405 listing the methods in Allow. Only rows with body set receive a request body
 * (bounded by --max-body-mb: 413 over it); the others' bodies are read and dropped. */
typedef enum MHD_Result (*handler_fn)(call_t *k);
typedef struct route {
    const char *method, *pattern;
    route_t id;
    const char *name;       /* metrics label */
    handler_fn fn;
    int body;
    right_t right;
    const char *params;     /* the query parameters it takes ("a, b"), each at most once; NULL: none
                               checked (a route that reads none) */
} route_row_t;

#define PRODUCT "/v1/products/{domain}/{name}"
static const route_row_t routes[] = {
    {"GET",    "/v1/status",          R_STATUS,         "status",         h_status,         0, RIGHT_NONE, NULL},
    {"GET",    "/v1/members",         R_MEMBERS,        "members",        h_members,        0, RIGHT_NONE, NULL},
    {"GET",    "/v1/products",        R_PRODUCTS,       "products",       h_products,       0, RIGHT_NONE,
     "q, domain, tag, owner, status, classification, compliance, limit, offset"},
    {"GET",    PRODUCT,               R_PRODUCT_GET,    "product_get",    h_product_get,    0, RIGHT_NONE, NULL},
    {"PUT",    PRODUCT,               R_PRODUCT_PUT,    "product_put",    h_product_put,    1, RIGHT_WRITE, "revive"},
    {"DELETE", PRODUCT,               R_PRODUCT_DELETE, "product_delete", h_product_delete, 0, RIGHT_WRITE, NULL},
    {"POST",   PRODUCT "/records",    R_RECORDS_POST,   "records_post",   h_records_post,   1, RIGHT_WRITE, NULL},
    {"GET",    PRODUCT "/records",    R_RECORDS_GET,    "records_get",    h_records_get,    0, RIGHT_READ, "from, limit"},
    {"GET",    PRODUCT "/stream",     R_STREAM,         "stream",         h_stream,         0, RIGHT_READ, "from, limit"},
    {"GET",    "/metrics",            R_METRICS,        "metrics",        h_metrics,        0, RIGHT_NONE, NULL},
    {"POST",   PRODUCT "/check",      R_CHECK,          "check",          h_check,          1, RIGHT_NONE, "revive"},
    {"GET",    PRODUCT "/history",    R_HISTORY,        "history",        h_history,        0, RIGHT_NONE, NULL},
    {"GET",    PRODUCT "/diff",       R_DIFF,           "diff",           h_diff,           0, RIGHT_NONE, "from, to"},
    {"GET",    "/v1/catalog/changes", R_CHANGES,        "changes",        h_changes,        0, RIGHT_NONE,
     "from, domain, product, live"},
    {"GET",    "/v1/whoami",          R_WHOAMI,         "whoami",         h_whoami,         0, RIGHT_TOKEN, NULL},
    {"POST",   "/v1/tokens",          R_TOKENS,         "tokens",         h_tokens,         1, RIGHT_ADMIN, NULL},
    {"POST",   "/v1/tokens/revoke",   R_TOKENS_REVOKE,  "tokens_revoke",  h_tokens_revoke,  1, RIGHT_ADMIN, NULL},
    /* access requests and grants: the caller's token is checked by node/http_access.c */
    {"POST",   "/v1/access/requests", R_ACCESS,         "access",         h_access_request, 1, RIGHT_NONE, NULL},
    {"GET",    "/v1/access/requests", R_ACCESS,         "access",         h_access_list,    0, RIGHT_NONE, "state"},
    {"POST",   "/v1/access/requests/{name}/grant", R_ACCESS, "access",    h_access_grant,   1, RIGHT_NONE, NULL},
    {"POST",   "/v1/access/requests/{name}/deny",  R_ACCESS, "access",    h_access_deny,    1, RIGHT_NONE, NULL},
    {"POST",   "/v1/access/grants/{name}/revoke",  R_ACCESS, "access",    h_access_revoke,  1, RIGHT_NONE, NULL},
    {"GET",    "/v1/access/mine",     R_ACCESS,         "access",         h_access_mine,    0, RIGHT_NONE, NULL},
    {"GET",    "/v1/audit",           R_AUDIT,          "audit",          h_audit,          0, RIGHT_NONE, "limit"},
    {"GET",    "/v1/policy",          R_POLICY_GET,     "policy_get",     h_policy_get,     0, RIGHT_NONE, NULL},
    {"POST",   "/v1/policy",          R_POLICY_POST,    "policy_post",    h_policy_post,    1, RIGHT_ADMIN, NULL},
    {"GET",    "/v1/compliance",      R_COMPLIANCE,     "compliance",     h_compliance,     0, RIGHT_NONE, "domain, offset, limit"},
    /* federation objects carry their roots' signatures: anyone may hand one in (node/http_fed.c) */
    {"GET",    "/v1/federation",      R_FED_GET,        "federation",     h_fed_get,        0, RIGHT_NONE, NULL},
    {"POST",   "/v1/federation/objects", R_FED_POST,    "federation_objects", h_fed_post,   1, RIGHT_NONE, NULL},
    {"POST",   "/v1/node/key/rotate", R_KEY_ROTATE,     "key_rotate",     h_key_rotate,     1, RIGHT_ADMIN, NULL},
    {"GET",    "/",                   R_WEB,            "web",            h_web,            0, RIGHT_PUBLIC, NULL},
    {"GET",    "/index.html",         R_WEB,            "web",            h_web,            0, RIGHT_PUBLIC, NULL},
    {"GET",    "/app.js",             R_WEB,            "web",            h_web,            0, RIGHT_PUBLIC, NULL},
    {"GET",    "/app.css",            R_WEB,            "web",            h_web,            0, RIGHT_PUBLIC, NULL},
    {"GET",    "/favicon.png",        R_WEB,            "web",            h_web,            0, RIGHT_PUBLIC, NULL},
};
#define NROUTES (sizeof routes / sizeof routes[0])

/* A route's query parameters: each one it takes at most once, and no other (a misspelt filter
 * would else be silently ignored: ?frm=100 read from seq 1, ?domian=x fed every domain). */
typedef struct { const char *known; const char *seen[16]; size_t nseen; char err[300]; } params_check_t;

static enum MHD_Result check_param(void *ctx, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind, (void)value;
    params_check_t *pc = ctx;
    if (!*key)   /* "?&from=1", "a=1&&b=2": an empty name is no misspelt parameter */
        return MHD_YES;
    if (!known_name(pc->known, key)) {
        snprintf(pc->err, sizeof pc->err, "%.40s: unknown parameter (known: %s)", key, pc->known);
        return MHD_NO;
    }
    for (size_t i = 0; i < pc->nseen; i++)
        if (strcmp(pc->seen[i], key) == 0) {
            snprintf(pc->err, sizeof pc->err, "%s: given more than once (each parameter takes one value)", key);
            return MHD_NO;
        }
    if (pc->nseen < sizeof pc->seen / sizeof pc->seen[0])
        pc->seen[pc->nseen++] = key;
    return MHD_YES;
}

/* The metrics label of each route id, from the table ("other" for R_OTHER). */
static const char *route_names[R_COUNT];

static void route_names_init(void)
{
    for (size_t i = 0; i < NROUTES; i++)
        route_names[routes[i].id] = routes[i].name;
    route_names[R_OTHER] = "other";
}

static enum MHD_Result h_metrics(call_t *k)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return MHD_NO;
    metrics_render(k->n, f, route_names, R_COUNT);
    auth_metrics_render(f);
    fclose(f);
    return send_body(k->c, R_METRICS, 200, "text/plain; version=0.0.4", buf, len);
}

/* Matches url against pattern exactly, copying {domain} and {name} into k. One rule for the whole
 * table: a path takes no trailing '/' (/metrics/, /v1/status/ and /app.js/ are no routes; dispatch
 * answers them 404 naming the route without it). */
static int match(const char *pattern, const char *url, call_t *k)
{
    const char *p = pattern, *u = url;
    while (*p) {
        if (*p == '{') {
            const char *pend = strchr(p, '}');
            size_t ulen = strcspn(u, "/");
            if (!pend || ulen == 0)
                return 0;
            char *dst = !strncmp(p, "{domain}", 8) ? k->domain : k->name;
            size_t cap = sizeof k->domain;
            size_t n = ulen < cap - 1 ? ulen : cap - 1; /* too long: the id check refuses it */
            memcpy(dst, u, n);
            dst[n] = '\0';
            if (ulen >= cap - 1)
                dst[0] = '\0';
            p = pend + 1;
            u += ulen;
            continue;
        }
        if (*p++ != *u++)
            return 0;
    }
    return !*u;
}

/* The row for method and url, or NULL; *path_known when another method's row has this path,
 * with their methods in allow. */
static const route_row_t *route_find(const char *method, const char *url, call_t *k, int *path_known,
                                     route_t *path_route, char *allow, size_t allowlen)
{
    const route_row_t *found = NULL;
    *path_known = 0;
    allow[0] = '\0';
    int head = !strcmp(method, "HEAD");
    for (size_t i = 0; i < NROUTES; i++) {
        if (!match(routes[i].pattern, url, k))
            continue;
        if (!*path_known)
            *path_route = routes[i].id;
        *path_known = 1;
        /* HEAD is GET without the body (RFC 9110 §9.3.2; libmicrohttpd sends no body), except on
         * the reads that stream records or the change feed: there it is a 405 */
        int head_ok = !strcmp(routes[i].method, "GET") && routes[i].id != R_RECORDS_GET &&
                      routes[i].id != R_STREAM && routes[i].id != R_CHANGES;
        size_t used = strlen(allow);
        snprintf(allow + used, allowlen - used, "%s%s%s", used ? ", " : "", routes[i].method,
                 head_ok ? ", HEAD" : "");
        if (!strcmp(routes[i].method, method) || (head && head_ok))
            found = &routes[i];
    }
    if (found)
        match(found->pattern, url, k);
    return found;
}

/* Whether the caller holds right for k (DESIGN §13; reads are decided in records_get, by the
 * owner). 1, or 0 with e; k->claims is the caller's verified token when one was needed. */
static int allowed(call_t *k, right_t right, auth_err_t *e)
{
    const char *h = MHD_lookup_connection_value(k->c, MHD_HEADER_KIND, "Authorization");
    k->claims = &k->req->claims;
    switch (right) {
    case RIGHT_PUBLIC:
        return 1;
    case RIGHT_NONE: /* discovery is open (DESIGN §13) unless --require-token 1 */
        if (k->n->cfg.require_token && !allowed(k, RIGHT_TOKEN, e)) {
            if (!strcmp(e->kind, "token_required"))   /* why this route wants one here: the node's option */
                snprintf(e->detail, sizeof e->detail, "this node runs with --require-token 1: every API request needs "
                         "a valid token (Authorization: Bearer trib1....; trib --token, --token-file or $TRIB_TOKEN)");
            return 0;
        }
        return 1;
    case RIGHT_READ:
        return 1;
    case RIGHT_WRITE:
        return auth_write(k->n, h, k->id, k->claims, e) == 0;
    case RIGHT_ADMIN:
        return auth_admin(k->n, h, k->claims, e) == 0;
    case RIGHT_TOKEN: {
        size_t len = 0;
        const char *t = auth_bearer(h, &len);
        if (!t) {
            snprintf(e->detail, sizeof e->detail, "this needs a token (Authorization: Bearer trib1....; trib --token, "
                     "--token-file or $TRIB_TOKEN)");
            e->status = 401;
            snprintf(e->kind, sizeof e->kind, "token_required");
            auth_count("token_required");
            return 0;
        }
        return auth_verify(k->n, t, len, k->claims, e) == 0;
    }
    }
    return 0;
}

/* The 404 of a path no row has. A known path written with a trailing '/' (/metrics/) is named
 * without it, with the methods it takes: the one rule of the table, told where it bites. */
static enum MHD_Result no_route(node_t *a, struct MHD_Connection *c, const char *method, const char *url)
{
    size_t len = strlen(url);
    if (len > 1 && url[len - 1] == '/' && len < 8192) {
        char *bare = strndup(url, len - 1), allow[64];
        call_t k = {.n = a, .c = c, .method = method, .url = bare};
        int known = 0;
        route_t r = R_OTHER;
        if (bare && (route_find(method, bare, &k, &known, &r, allow, sizeof allow) || known)) {
            enum MHD_Result ret = send_error(c, R_OTHER, 404, "not_found", "no route %s %.600s; paths take no "
                                             "trailing '/': the route is %.600s (%s); see docs/http-api.md",
                                             method, url, bare, allow);
            free(bare);
            return ret;
        }
        free(bare);
    }
    return send_error(c, R_OTHER, 404, "not_found", "no route %s %s; see docs/http-api.md", method, url);
}

static enum MHD_Result dispatch(node_t *a, struct MHD_Connection *c, const char *url, const char *method,
                                request_t *req)
{
    if (req->bad_status)
        return send_error(c, R_OTHER, req->bad_status, req->bad_kind, "%s", req->bad);
    call_t k = {.n = a, .c = c, .method = method, .url = url, .req = req};
    int path_known;
    route_t path_route = R_OTHER;
    char allow[64];
    const route_row_t *row = route_find(method, url, &k, &path_known, &path_route, allow, sizeof allow);
    if (!row && path_known) {
        struct MHD_Response *resp = NULL;
        char detail[1024];
        snprintf(detail, sizeof detail, "%.300s %.600s: allowed methods are %s", method, url, allow);
        errtext_utf8(detail);
        json_t *j = json_pack("{s:s,s:s}", "error", "method_not_allowed", "detail", detail);
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!s)
            return MHD_NO;
        size_t n = strlen(s);
        s[n] = '\0';
        char *body = realloc(s, n + 2);
        if (!body) {
            free(s);
            return MHD_NO;
        }
        body[n] = '\n';
        resp = MHD_create_response_from_buffer(n + 1, body, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
            free(body);
            return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", "application/json");
        MHD_add_response_header(resp, "Allow", allow);
        enum MHD_Result ret = MHD_queue_response(c, 405, resp);
        MHD_destroy_response(resp);
        metrics_http(path_route, 405);
        return ret;
    }
    if (!row)
        return no_route(a, c, method, url);
    if (strstr(row->pattern, "{domain}")) {
        if (!store_valid_name(k.domain, strlen(k.domain)) || !store_valid_name(k.name, strlen(k.name)))
            return send_error(c, row->id, 400, "bad_id",
                              "'%s/%s' is not a product id: domain and name are " STORE_NAME_RULE,
                              k.domain[0] ? k.domain : "(too long or empty)", k.name[0] ? k.name : "(too long or empty)");
        snprintf(k.id, sizeof k.id, "%s/%s", k.domain, k.name);
    }
    char why[320];  /* this node signs the domain's entries: with its key revoked or expired none can be written */
    trust_verdict_t own = row->right == RIGHT_WRITE && a->gossip ? gossip_own_trust(a->gossip, why, sizeof why)
                                                                   : TRUST_OK;
    if (own == TRUST_REVOKED || own == TRUST_EXPIRED)   /* expired: past the clock skew allowed, as peers see it */
        return send_error(c, row->id, 403, "node_revoked", "%s; this node can no longer write its domain's products "
                          "(see docs/operators.md, %s)", why,
                          own == TRUST_EXPIRED ? "§4b: restart it with a renewed --cert" : "revoking");
    auth_err_t ae;
    if (!req->op_done && !allowed(&k, row->right, &ae))
        return send_error(c, row->id, (unsigned)ae.status, ae.kind, "%s", ae.detail);
    k.claims = &req->claims;
    if (row->body && req->too_big)
        return send_error(c, row->id, 413, "too_large", "the body is over the limit of %zu bytes (--max-body-mb)",
                          a->limits.max_body);
    if (row->params && !req->op_done) {
        params_check_t pc = {.known = row->params};
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, check_param, &pc);
        if (pc.err[0]) {
            if (row->id == R_ACCESS || row->id == R_AUDIT)
                http_access_count_refusal("bad_query");   /* trib_access_refused_total, as its other 400s */
            return send_error(c, row->id, 400, "bad_query", "%s", pc.err);
        }
    }
    return row->fn(&k);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    node_t *a = cls;
    request_t *req = *con_cls;
    if (!req || !req->started) { /* first call: headers only (req from uri_seen) */
        if (!req && !(req = calloc(1, sizeof *req)))
            return MHD_NO;
        *con_cls = req;
        req->started = 1;
        size_t head = 0;
        MHD_get_connection_values(c, MHD_HEADER_KIND, add_header_len, &head);
        if (!req->bad_status && head > HTTP_HEADERS_MAX)
            refuse(req, 431, "headers_too_large", "the request headers are %zu bytes, over the limit of %d", head,
                   HTTP_HEADERS_MAX);
        if (req->bad_status)
            return MHD_YES; /* answered at the end; its body is dropped */
        call_t k = {0};
        int known;
        route_t r;
        char allow[64];
        req->route = route_find(method, url, &k, &known, &r, allow, sizeof allow);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && req->route && req->route->body && strtoull(cl, NULL, 10) > a->limits.max_body)
            req->too_big = 1;
        if (req->route && req->route->body) { /* a large write may be quiet while it is checked and stored */
            MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)HTTP_WRITE_S);
            req->long_timeout = 1;
        }
        return MHD_YES;
    }
    if (*upload_size) { /* body chunks: kept only for a route that takes a body */
        metrics_bytes_in(*upload_size);
        if (!req->route || !req->route->body) {
            *upload_size = 0;
            return MHD_YES;
        }
        if (!req->too_big && req->len + *upload_size > a->limits.max_body)
            req->too_big = 1;
        if (!req->too_big) {
            if (req->len + *upload_size + 1 > req->cap) {
                size_t cap = req->cap ? req->cap : 64 * 1024;
                while (cap < req->len + *upload_size + 1)
                    cap *= 2;
                char *b = realloc(req->body, cap);
                if (!b)
                    return MHD_NO;
                req->body = b;
                req->cap = cap;
            }
            memcpy(req->body + req->len, upload, *upload_size);
            req->len += *upload_size;
            req->body[req->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    /* The request is complete when libmicrohttpd calls with no upload buffer at all. A call with
     * a buffer and nothing in it is a body step that found no body bytes: 0.9.75 makes one after
     * "100 Continue" when the next pipelined request is already read (Content-Length 0, or the
     * body all in), and a response queued there fails (the connection was closed unanswered). */
    if (upload)
        return MHD_YES;
    return dispatch(a, c, url, method, req);
}

/* ------------------------------------------------------------------ lifecycle */

/* libmicrohttpd's own messages go to the log with its timestamp and level. A client can make it
 * say one line per refused request or connection (a header too big, over the connection limits):
 * each is counted (trib_http_server_messages_total), and at most one line per LOG_FAIL_EVERY_S
 * seconds gets through, saying how many did not. */

/* libmicrohttpd (0.9.75) logs every failed TLS handshake as "Error: received handshake message out
 * of context", with neither the client nor GnuTLS's reason; most often it is plain HTTP sent to the
 * HTTPS port. Said so instead, counted, and at most one line per LOG_FAIL_EVERY_S seconds. */
static void tls_failed(const node_t *a)
{
    static log_limit_t limit;
    uint64_t held;
    char tail[96];
    metrics_tls_failed();
    if (log_limit(&limit, LOG_FAIL_EVERY_S * 1000u, &held))
        log_warn("http: a TLS handshake failed on the HTTPS port %s: plain HTTP sent to it? clients must use "
                 "https://%s%s", a->cfg.http, a->cfg.http, log_held(tail, sizeof tail, held, ""));
}

static void mhd_log(void *cls, const char *fm, va_list ap)
{
    static log_limit_t limit;
    char line[512];
    vsnprintf(line, sizeof line, fm, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
        line[--n] = '\0';
    if (strstr(line, "handshake message out of context")) {
        tls_failed(cls);
        return;
    }
    metrics_http_server_message();
    uint64_t held;
    char tail[96];
    if (log_limit(&limit, LOG_FAIL_EVERY_S * 1000u, &held))
        log_warn("http: %s%s", line, log_held(tail, sizeof tail, held, "libmicrohttpd messages"));
}

/* The listening socket, bound by http_listen before the gossip loop starts and handed to
 * libmicrohttpd by http_start (which closes it at stop). */
static int listen_fd = -1;

int http_listen(node_t *a, char *err, size_t errlen)
{
    /* Before the gossip loop starts: its routed reads are checked by this node from the start. */
    if (auth_open(a, err, errlen) < 0)
        return -1;
    reads_set_owner_check(auth_owner_check, a);
    reads_set_owner_fields(http_access_owner_fields);   /* grants: project routed reads */
    reads_set_owner_audit(http_access_audit_open, http_access_audit_end);   /* grants2: audit them */
    char host[128];
    int port;
    if (config_split_addr(a->cfg.http, host, sizeof host, &port) < 0) {
        snprintf(err, errlen, "http: '%s' is not HOST:PORT", a->cfg.http);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", port);
    char bare[128];
    snprintf(bare, sizeof bare, "%s", host);
    if (bare[0] == '[') {
        memmove(bare, bare + 1, strlen(bare));
        bare[strlen(bare) - 1] = '\0';
    }
    int gai = getaddrinfo(bare, portstr, &hints, &ai);
    if (gai != 0) {
        snprintf(err, errlen, "http: cannot resolve '%s': %s", host, gai_strerror(gai));
        return -1;
    }
    /* SO_REUSEADDR only (a restart binds while old connections linger in TIME_WAIT); never
     * SO_REUSEPORT, with which a second process would share the port and split the requests. */
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        snprintf(err, errlen, "http: cannot listen on %s: %s%s", a->cfg.http, strerror(e),
                 e == EADDRINUSE ? " (another process, maybe another agent, holds this port: stop it or use "
                                   "another --http)"
                 : e == EADDRNOTAVAIL ? " (not an address of this host)" : "");
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    listen_fd = fd;
    return 0;
}

/* Serving (issue 8 B5): an epoll loop over a bounded pool of threads, not a thread per
 * connection, so idle connections cost a descriptor and a little memory, never a thread; one
 * address may hold HTTP_PER_IP connections (held by one client they leave room for everyone
 * else), and a connection quiet for HTTP_IDLE_S seconds (one that has not sent its headers, or a
 * keep-alive between requests) is closed. Streams with nothing to send are suspended
 * (node/stream.c), so they hold no thread either. */
#define HTTP_POOL 16            /* threads serving requests (each may wait on a durable commit) */
#define HTTP_CONNS 16384        /* connections at once (also bounded by the descriptor limit) */
#define HTTP_PER_IP 256         /* connections at once from one address */

/* A PEM file for TLS, whole (malloc'd, NUL-ended), or NULL with err. key: the file must not be
 * readable by group or others, as the node key and admin.token. */
static char *pem_read(const char *path, int key, char *err, size_t errlen)
{
    struct stat sb;
    if (key && stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 077)) {
        snprintf(err, errlen, "%s is readable by group or others (mode %03o): chmod 600 %s", path,
                 (unsigned)(sb.st_mode & 0777), path);
        return NULL;
    }
    size_t len;
    return textfile_read(path, key ? "a TLS key" : "a TLS certificate", 1u << 20, &len, err, errlen);
}

static char *tls_cert_pem, *tls_key_pem; /* held while libmicrohttpd serves */

int http_start(node_t *a, char *err, size_t errlen)
{
    if (listen_fd < 0 && http_listen(a, err, errlen) < 0)
        return -1;
    int tls = a->cfg.tls_cert[0] || a->cfg.tls_key[0];
    if (tls) {
        if (!a->cfg.tls_cert[0] || !a->cfg.tls_key[0]) {
            snprintf(err, errlen, "--tls-cert and --tls-key go together");
            return -1;
        }
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, errlen, "--tls-cert: this libmicrohttpd was built without TLS (GnuTLS)");
            return -1;
        }
        if (!(tls_cert_pem = pem_read(a->cfg.tls_cert, 0, err, errlen)) ||
            !(tls_key_pem = pem_read(a->cfg.tls_key, 1, err, errlen))) {
            free(tls_cert_pem);
            tls_cert_pem = NULL;
            return -1;
        }
    }
    route_names_init();
    unsigned conns = HTTP_CONNS;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < conns + 256)
        conns = rl.rlim_cur > 512 ? (unsigned)rl.rlim_cur - 256 : 256; /* LMDB, peers, logs keep the rest */
    if (a->cfg.http_threads && a->cfg.http_threads < conns)
        conns = (unsigned)a->cfg.http_threads;
    unsigned per_ip = HTTP_PER_IP < conns / 2 ? HTTP_PER_IP : conns / 2;
    if (stream_start(a, err, errlen) < 0) {
        close(listen_fd);
        listen_fd = -1;
        return -1;
    }
    char perr[200];
    int workers = (int)a->cfg.write_workers;   /* 1-1024 (node/config.c) */
    size_t queued = (size_t)workers * OPS_QUEUE_PER_WORKER;
    if (!(ops = workpool_new(workers, queued, perr, sizeof perr)))   /* writes then run on the pool threads */
        log_warn("http: write operations run on the serving threads (%s)", perr);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0);
    a->httpd = MHD_start_daemon(flags, 0, NULL, NULL, handler, a, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a,
                                MHD_OPTION_LISTEN_SOCKET, listen_fd,
                                MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_POOL,
                                MHD_OPTION_CONNECTION_LIMIT, conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_S,
                                MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
                                MHD_OPTION_URI_LOG_CALLBACK, uri_seen, NULL,
                                /* with TLS the two PEMs; without, the list ends here */
                                tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, tls_cert_pem,
                                MHD_OPTION_HTTPS_MEM_KEY, tls_key_pem, MHD_OPTION_END);
    if (!a->httpd) {
        snprintf(err, errlen, "http: cannot start serving on %s%s", a->cfg.http,
                 tls ? " (with TLS: are --tls-cert and --tls-key a matching PEM certificate and key?)" : "");
        workpool_free(&ops);
        free(tls_cert_pem);
        free(tls_key_pem);
        tls_cert_pem = tls_key_pem = NULL;
        stream_stop(a);
        close(listen_fd);
        listen_fd = -1;
        return -1;
    }
    listen_fd = -1; /* libmicrohttpd's now */
    char host[128];
    int hport;
    if (!tls && config_split_addr(a->cfg.http, host, sizeof host, &hport) == 0 && strncmp(host, "127.", 4) != 0 &&
        strcmp(host, "[::1]") != 0 && strcmp(host, "::1") != 0 && strcmp(host, "localhost") != 0)
        log_warn("HTTP on %s is plain HTTP beyond loopback: bearer tokens sent to it can be read on the way "
                 "(serve it with --tls-cert/--tls-key, or on loopback behind a TLS proxy)",
                 a->cfg.http);
    const char *shown = a->cfg.http_advertise[0] ? a->cfg.http_advertise : a->cfg.http;
    if (config_addr_wildcard(shown))   /* said once: http_start runs once per process */
        log_warn("HTTP advertised as %s is a wildcard address: other nodes list it in their members and cannot "
                 "send readers of this domain's products here (a wildcard is never redirected to); set "
                 "--http-advertise HOST:PORT, the address clients and other nodes reach this node's HTTP at",
                 shown);
    log_info("HTTP: %d threads (and %d for writes, %d queued at most), at most %u connections, %u per address, "
             "idle ones closed after %d s, a read's after %u s of its client taking nothing", HTTP_POOL,
             ops ? workers : 0, ops ? (int)queued : 0, conns, per_ip, HTTP_IDLE_S, read_pause_s(a));
    return 0;
}

void http_stop(node_t *a)
{
    if (listen_fd >= 0) { /* bound, never served */
        close(listen_fd);
        listen_fd = -1;
    }
    if (a->httpd) {
        stream_stop(a); /* streams end with their last line first */
        if (ops)        /* no connection may stay suspended under MHD_stop_daemon: the accepted */
            workpool_stop(ops);   /* operations end and resume theirs; new ones are answered 503 */
        MHD_stop_daemon(a->httpd);
        a->httpd = NULL;
        workpool_free(&ops);
        free(tls_cert_pem);
        free(tls_key_pem);
        tls_cert_pem = tls_key_pem = NULL;
    }
}
