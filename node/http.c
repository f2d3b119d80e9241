/* node/http.c - the HTTP/JSON API of docs/http-api.md, served by libmicrohttpd.
 *
 * Owns: routing, request bodies (bounded), JSON responses and errors {"error","detail"}, NDJSON
 * record reads (streamed from short LMDB read transactions, never buffered whole) and live streams,
 * both for this node's products and, relayed through the gossip loop from their owner
 * (gossip_read_*), for other domains' products. A read that fails after its 200 header ends with
 * one error line {"error": KIND, "detail": ...} (the CLI reports it).
 * Must not: hold an LMDB read transaction across a network write, or block the gossip loop.
 * Threads: one per connection (libmicrohttpd), so a live stream may wait on the agent's condvar. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gossip/clock.h"
#include "gossip/entry.h"
#include "gossip/gossip.h"
#include "gossip/log.h"
#include "node/agent.h"
#include "node/http.h"
#include "node/manifest.h"
#include "node/metrics.h"
#include "node/records.h"
#include "node/view.h"
#include "storage/pager.h"
#include "storage/store.h"

/* ------------------------------------------------------------------ requests */

typedef struct {
    char *body;
    size_t len, cap;
    int too_big;        /* body exceeded the limit: answered 413 at the end */
} request_t;

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    request_t *r = *con_cls;
    if (r) {
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

static enum MHD_Result send_body(struct MHD_Connection *c, route_t route, unsigned status, const char *ctype,
                                 char *body, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    metrics_http(route, status);
    return ret;
}

/* Sends j (stolen) as the JSON body. */
static enum MHD_Result send_json(struct MHD_Connection *c, route_t route, unsigned status, json_t *j)
{
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
    return send_body(c, route, status, "application/json", body, n + 1);
}

/* A 500 or 507 is the node failing, not the client: logged at once, then at most one line per
 * LOG_FAIL_EVERY_S seconds saying how many more there were (a full disk fails every write). */
#define LOG_FAIL_EVERY_S 10
static void log_failure(unsigned status, const char *kind, const char *detail)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static uint64_t last;
    static unsigned long quiet;
    uint64_t now = clock_ms();
    pthread_mutex_lock(&mu);
    int say = last == 0 || now - last >= LOG_FAIL_EVERY_S * 1000u;
    unsigned long more = quiet;
    if (say) {
        last = now;
        quiet = 0;
    } else {
        quiet++;
    }
    pthread_mutex_unlock(&mu);
    char also[64] = "";
    if (more)
        snprintf(also, sizeof also, " (and %lu more since the last such line)", more);
    if (say)
        log_error("HTTP %u %s: %s%s", status, kind, detail, also);
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
    if (status == 500 || status == 507)
        log_failure(status, kind, detail);
    return send_json(c, route, status, json_pack("{s:s,s:s}", "error", kind, "detail", detail));
}

/* A store write that failed: 507 when the disk is full (a retry can succeed once space is
 * freed; nothing was stored), else 500. */
static unsigned write_failed_status(void)
{
    return store_last_errno() == ENOSPC ? 507 : 500;
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

static enum MHD_Result h_status(agent_t *a, struct MHD_Connection *c)
{
    return send_json(c, R_STATUS, 200, view_status(a));
}

static enum MHD_Result h_members(agent_t *a, struct MHD_Connection *c)
{
    return send_json(c, R_MEMBERS, 200, view_members(a));
}

static enum MHD_Result h_products(agent_t *a, struct MHD_Connection *c)
{
    view_query_t q = {
        .q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "q"),
        .domain = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "domain"),
        .tag = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "tag"),
        .owner = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "owner"),
        .status = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status"),
        .limit = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit"),
        .offset = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "offset"),
    };
    char err[256];
    if (view_products_check(&q, err, sizeof err) != 0)
        return send_error(c, R_PRODUCTS, 400, "bad_query", "%s", err);
    json_t *j = view_products(a, &q, err, sizeof err);
    if (!j)
        return send_error(c, R_PRODUCTS, 500, "storage", "%s", err);
    return send_json(c, R_PRODUCTS, 200, j);
}

static enum MHD_Result h_product_get(agent_t *a, struct MHD_Connection *c, const char *id)
{
    store_product_t p;
    int rc = store_product_get(a->st, id, &p);
    if (rc == STORE_NOTFOUND)
        return send_error(c, R_PRODUCT_GET, 404, "not_found", "no product %s in this node's catalog", id);
    if (rc != 0)
        return send_error(c, R_PRODUCT_GET, 500, "storage", "reading product %s failed", id);
    json_t *j = view_product(a, &p, 1);
    if (!j)
        return send_error(c, R_PRODUCT_GET, 500, "storage", "catalog entry of %s is unreadable", id);
    return send_json(c, R_PRODUCT_GET, 200, j);
}

/* NDJSON reader state: pages of records copied out of short read transactions (local), or a
 * routed read relayed from the owner (rd). buf also carries the final error line. */
typedef struct {
    agent_t *a;
    char id[STORE_ID_MAX];
    uint64_t next, remaining;  /* next seq to read; records still allowed (UINT64_MAX: no limit) */
    int live;
    gossip_read_t *rd;         /* routed: the read through the owner */
    struct MHD_Connection *conn;
    int ended;                 /* the error line is in buf: end after it */
    int line_start;            /* routed: the bytes handed out so far end with a whole record */
    int counted;               /* in live_open (a live stream) */
    char *buf;
    size_t len, off, cap;
} reader_t;

static reader_t *reader_new(agent_t *a, struct MHD_Connection *c, const char *id, uint64_t from, uint64_t limit,
                            int live)
{
    reader_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->a = a;
    r->conn = c;
    snprintf(r->id, sizeof r->id, "%s", id);
    r->next = from ? from : 1;
    r->remaining = limit ? limit : UINT64_MAX;
    r->live = live;
    r->line_start = 1;
    return r;
}

/* Copies out what buf holds from off. */
static ssize_t reader_take(reader_t *r, char *out, size_t max)
{
    size_t n = r->len - r->off < max ? r->len - r->off : max;
    memcpy(out, r->buf + r->off, n);
    r->off += n;
    return (ssize_t)n;
}

static int node_stopping(agent_t *a)
{
    pthread_mutex_lock(&a->mu);
    int stopping = a->stopping;
    pthread_mutex_unlock(&a->mu);
    return stopping;
}

/* True when the client closed its connection: an idle live read notices it without writing
 * (libmicrohttpd only would on the next write), so a relayed upstream is not held for nobody. */
static int client_gone(const reader_t *r)
{
    const union MHD_ConnectionInfo *ci =
        r->conn ? MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD) : NULL;
    if (!ci)
        return 0;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Puts the line {"error": kind, "detail": detail} in r->buf and marks the read ended. */
static void reader_error_line(reader_t *r, const char *kind, const char *detail)
{
    r->len = r->off = 0;
    r->ended = 1;
    json_t *j = json_pack("{s:s,s:s}", "error", kind, "detail", detail);
    char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!line)
        return;
    size_t n = strlen(line);
    char *b = n + 1 <= r->cap ? r->buf : realloc(r->buf, n + 1);
    if (b) {
        if (b != r->buf) {
            r->buf = b;
            r->cap = n + 1;
        }
        memcpy(r->buf, line, n);
        r->buf[n] = '\n';
        r->len = n + 1;
    }
    free(line);
}

#define PAGE_RECORDS 4096
#define PAGE_BYTES (256 * 1024)

/* Fills the page from storage through the pager, which reuses r->buf; returns records added or -1. */
static long page_fill(reader_t *r)
{
    r->len = r->off = 0;
    if (r->remaining == 0)
        return 0;
    uint64_t lim = r->remaining < PAGE_RECORDS ? r->remaining : PAGE_RECORDS;
    store_page_t pg = {.buf = r->buf, .cap = r->cap};
    long n = store_page_read(r->a->st, r->id, r->next, lim, PAGE_BYTES, &pg);
    r->buf = pg.buf;
    r->cap = pg.cap;
    if (n <= 0)
        return n;
    r->len = pg.len;
    r->next = pg.next;
    if (r->remaining != UINT64_MAX)
        r->remaining -= (uint64_t)n;
    metrics_records_read((uint64_t)n);
    return n;
}

/* The node is stopping under a live stream: say so, since a clean end would look like the end of
 * the data to a client that then does not resume. */
static void reader_stopping(reader_t *r)
{
    reader_error_line(r, "shutting_down",
                      "this node is shutting down; resume with from = the seq after the last record received");
}

static ssize_t reader_cb(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    reader_t *r = cls;
    while (r->off == r->len) {
        if (r->remaining == 0 || r->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&r->a->mu);
        uint64_t gen = r->a->append_gen;
        int stopping = r->a->stopping;
        pthread_mutex_unlock(&r->a->mu);
        if (r->live && stopping) { /* between pages, so between records: also when not caught up */
            reader_stopping(r);
            break;
        }
        uint64_t at = r->next;
        long n = page_fill(r);
        if (n < 0) {
            char detail[512];
            snprintf(detail, sizeof detail, "reading records of %s at seq %" PRIu64 " failed: %s", r->id, at,
                     store_last_error());
            reader_error_line(r, "storage", detail);
            if (r->len == 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            break;
        }
        if (n > 0)
            break;
        if (!r->live)
            return MHD_CONTENT_READER_END_OF_STREAM;
        /* Live and caught up: a retired product takes no new records, so the stream ends here
         * with the same error line a relay gets from the owner. */
        store_product_t p;
        if (store_product_get(r->a->st, r->id, &p) == 0 && p.retired) {
            char detail[512];
            snprintf(detail, sizeof detail, "%s was retired: it takes no new records", r->id);
            reader_error_line(r, "retired", detail);
            break;
        }
        /* Live: wait for the next append or shutdown (seen at the top), then read again. */
        int gone = 0;
        pthread_mutex_lock(&r->a->mu);
        while (r->a->append_gen == gen && !r->a->stopping && !gone) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            if (pthread_cond_timedwait(&r->a->cv, &r->a->mu, &ts) == ETIMEDOUT) {
                pthread_mutex_unlock(&r->a->mu);
                gone = client_gone(r);
                pthread_mutex_lock(&r->a->mu);
            }
        }
        pthread_mutex_unlock(&r->a->mu);
        if (gone)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    return reader_take(r, out, max);
}

/* Routed reads: bytes come from the owner through the gossip loop. */
static ssize_t routed_cb(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    reader_t *r = cls;
    for (;;) {
        if (r->off < r->len)
            return reader_take(r, out, max);
        if (r->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        /* Checked before each read, not only when idle: a stream that never pauses for the
         * timeout below would otherwise be cut by MHD_stop_daemon without its last line. */
        if (r->line_start && node_stopping(r->a)) {
            reader_stopping(r);
            continue;
        }
        char kind[64], detail[1024];
        long n = gossip_read_next(r->rd, out, max, 1000, kind, sizeof kind, detail, sizeof detail);
        if (n > 0) {
            uint64_t lines = 0;
            for (const char *p = out, *end = out + n; (p = memchr(p, '\n', (size_t)(end - p))); p++)
                lines++;
            metrics_records_read(lines);
            r->line_start = out[n - 1] == '\n';
            return (ssize_t)n;
        }
        if (n == GOSSIP_READ_END)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (n == GOSSIP_READ_FAILED) {
            log_warn("routed read of %s failed: %s: %s", r->id, kind, detail);
            reader_error_line(r, kind, detail);
            if (r->len == 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        if (client_gone(r)) /* nothing within the timeout */
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

/* Live streams open now: at shutdown they get to send their last line before MHD closes them. */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t live_cv = PTHREAD_COND_INITIALIZER;
static int live_open;

static void reader_free(void *cls)
{
    reader_t *r = cls;
    if (r->counted) {
        pthread_mutex_lock(&live_mu);
        live_open--;
        pthread_cond_broadcast(&live_cv);
        pthread_mutex_unlock(&live_mu);
    }
    gossip_read_close(&r->rd);
    free(r->buf);
    free(r);
}

/* Queues the 200 NDJSON response of r (taken) read by cb, with the seq headers. */
static enum MHD_Result queue_ndjson(struct MHD_Connection *c, route_t route, reader_t *r,
                                    MHD_ContentReaderCallback cb, uint64_t last)
{
    if (r->live) {
        pthread_mutex_lock(&live_mu);
        live_open++;
        r->counted = 1;
        pthread_mutex_unlock(&live_mu);
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, cb, r, reader_free);
    if (!resp) {
        reader_free(r);
        return MHD_NO;
    }
    char hdr[32];
    MHD_add_response_header(resp, "Content-Type", "application/x-ndjson");
    snprintf(hdr, sizeof hdr, "%" PRIu64, r->next);
    MHD_add_response_header(resp, "Trib-First-Seq", hdr);
    snprintf(hdr, sizeof hdr, "%" PRIu64, last);
    MHD_add_response_header(resp, "Trib-Last-Seq", hdr);
    if (r->live)
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    metrics_http(route, 200);
    return ret;
}

/* A product of another domain: read it through its owner. */
static enum MHD_Result routed_get(agent_t *a, struct MHD_Connection *c, route_t route, const char *id,
                                  const char *domain, uint64_t from, uint64_t limit, int live)
{
    if (!a->gossip)
        return send_error(c, route, 503, "owner_unreachable",
                          "%s is owned by domain '%s', and this node runs without federation", id, domain);
    uint64_t last = 0;
    int status = 500;
    char kind[64], detail[1024];
    gossip_read_t *rd =
        gossip_read_open(a->gossip, id, from, limit, live, &last, &status, kind, sizeof kind, detail, sizeof detail);
    if (!rd)
        return send_error(c, route, (unsigned)status, kind, "%s", detail);
    reader_t *r = reader_new(a, c, id, from, limit, live);
    if (!r) {
        gossip_read_close(&rd);
        return MHD_NO;
    }
    r->rd = rd;
    return queue_ndjson(c, route, r, routed_cb, last);
}

static enum MHD_Result h_records_get(agent_t *a, struct MHD_Connection *c, const char *id, const char *domain,
                                     int live)
{
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
    store_product_t p;
    int rc = store_product_get(a->st, id, &p);
    if (rc == STORE_NOTFOUND)
        return send_error(c, route, 404, "not_found", "no product %s in this node's catalog", id);
    if (rc != 0)
        return send_error(c, route, 500, "storage", "reading product %s failed", id);
    if (strcmp(domain, a->cfg.domain) != 0)
        return routed_get(a, c, route, id, domain, from, limit, live);
    if (live && p.retired) /* as the owner answers a relay: no record can come */
        return send_error(c, route, 410, "retired", "%s is retired: it takes no new records", id);
    uint64_t last = 0;
    store_records_last(a->st, id, &last);
    reader_t *r = reader_new(a, c, id, from, limit, live);
    if (!r)
        return MHD_NO;
    return queue_ndjson(c, route, r, reader_cb, last);
}

/* ------------------------------------------------------------------ write handlers */

static enum MHD_Result h_product_put(agent_t *a, struct MHD_Connection *c, const char *id, request_t *req)
{
    char err[1024];
    Trib__Manifest *m = manifest_parse(req->body ? req->body : "", req->len, NULL, err, sizeof err);
    if (!m)
        return send_error(c, R_PRODUCT_PUT, 400, "bad_manifest", "%s", err);
    char body_id[STORE_ID_MAX];
    snprintf(body_id, sizeof body_id, "%s/%s", m->domain, m->name);
    enum MHD_Result ret;
    if (strcmp(body_id, id) != 0) {
        ret = send_error(c, R_PRODUCT_PUT, 400, "bad_manifest",
                         "the manifest describes %s but was sent to /v1/products/%s", body_id, id);
        goto out;
    }
    if (strcmp(m->domain, a->cfg.domain) != 0) {
        ret = send_error(c, R_PRODUCT_PUT, 403, "wrong_domain",
                         "domain: '%s' is not this node's domain '%s'; publish it on that domain's node",
                         m->domain, a->cfg.domain);
        goto out;
    }
    store_product_t old;
    int existed = store_product_get(a->st, id, &old) == 0;
    uint64_t seq;
    uint8_t *signed_bytes = NULL;
    size_t signed_len = 0;
    if (catalog_publish(a->cat, m, NULL, &seq, &signed_bytes, &signed_len, err, sizeof err) < 0) {
        ret = send_error(c, R_PRODUCT_PUT, write_failed_status(), "publish_failed", "%s", err);
        goto out;
    }
    agent_announce(a, signed_bytes, signed_len);
    free(signed_bytes);
    metrics_published();
    log_info("published %s version %s as catalog seq %" PRIu64, id, m->version, seq);
    agent_notify(a);
    ret = send_json(c, R_PRODUCT_PUT, existed ? 200 : 201,
                    json_pack("{s:s,s:I,s:s,s:s,s:b}", "id", id, "catalog_seq", (json_int_t)seq, "signer",
                              a->id.hex, "status", m->status, "created", !existed));
out:
    manifest_free(&m);
    return ret;
}

static enum MHD_Result h_product_delete(agent_t *a, struct MHD_Connection *c, const char *id, const char *domain,
                                        const char *name)
{
    if (strcmp(domain, a->cfg.domain) != 0)
        return send_error(c, R_PRODUCT_DELETE, 403, "wrong_domain",
                          "%s belongs to domain '%s'; only its own node ('%s' is this one) can retire it", id,
                          domain, a->cfg.domain);
    store_product_t p;
    int rc = store_product_get(a->st, id, &p);
    if (rc == STORE_NOTFOUND)
        return send_error(c, R_PRODUCT_DELETE, 404, "not_found", "no product %s", id);
    if (rc == 0 && p.retired)
        return send_error(c, R_PRODUCT_DELETE, 409, "already_retired", "%s is already retired", id);
    char err[512];
    uint64_t seq;
    uint8_t *signed_bytes = NULL;
    size_t signed_len = 0;
    if (catalog_publish(a->cat, NULL, name, &seq, &signed_bytes, &signed_len, err, sizeof err) < 0)
        return send_error(c, R_PRODUCT_DELETE, write_failed_status(), "retire_failed", "%s", err);
    agent_announce(a, signed_bytes, signed_len);
    free(signed_bytes);
    metrics_retired();
    log_info("retired %s as catalog seq %" PRIu64, id, seq);
    agent_notify(a);
    if (a->gossip)
        gossip_notify_append(a->gossip, id); /* remote live readers learn it ended */
    return send_json(c, R_PRODUCT_DELETE, 200,
                     json_pack("{s:s,s:I,s:s}", "id", id, "catalog_seq", (json_int_t)seq, "status", "retired"));
}

static enum MHD_Result h_records_post(agent_t *a, struct MHD_Connection *c, const char *id, const char *domain,
                                      request_t *req)
{
    if (req->too_big)
        return send_error(c, R_RECORDS_POST, 413, "too_large", "body is over the limit of %zu bytes",
                          a->limits.max_body);
    if (strcmp(domain, a->cfg.domain) != 0)
        return send_error(c, R_RECORDS_POST, 403, "wrong_domain",
                          "%s belongs to domain '%s'; records are appended on its own node", id, domain);
    store_product_t p;
    int rc = store_product_get(a->st, id, &p);
    if (rc == STORE_NOTFOUND)
        return send_error(c, R_RECORDS_POST, 404, "not_found", "no product %s; publish its manifest first", id);
    if (rc != 0)
        return send_error(c, R_RECORDS_POST, 500, "storage", "reading product %s failed", id);
    if (p.retired)
        return send_error(c, R_RECORDS_POST, 410, "retired", "%s is retired and takes no new records", id);
    Trib__Manifest *m = NULL;
    Trib__SignedEntry *se = NULL;
    Trib__CatalogEntry *ce = NULL;
    if (view_load_manifest(a, domain, p.manifest_seq, &se, &ce) < 0 || !(m = ce->manifest))
        return send_error(c, R_RECORDS_POST, 500, "storage", "manifest of %s is unreadable", id);
    record_schema_t *schema = record_schema_new(m);
    view_free_entry(&se, &ce);
    if (!schema)
        return send_error(c, R_RECORDS_POST, 500, "internal", "out of memory");
    char err[1024];
    store_buf_t *recs = NULL;
    size_t n = 0;
    int status = 400;
    enum MHD_Result ret;
    if (records_split(schema, req->body ? req->body : "", req->len, &a->limits, &recs, &n, &status, err,
                      sizeof err) < 0) {
        ret = send_error(c, R_RECORDS_POST, (unsigned)status,
                         status == 413 ? "too_large" : status >= 500 ? "internal" : "bad_record",
                         "%s; nothing was stored", err);
        goto out;
    }
    uint64_t first, last;
    rc = store_records_append(a->st, id, recs, n, &first, &last, err, sizeof err);
    if (rc == STORE_RETIRED)
        ret = send_error(c, R_RECORDS_POST, 410, "retired", "%s is retired and takes no new records", id);
    else if (rc == STORE_NOTFOUND)
        ret = send_error(c, R_RECORDS_POST, 404, "not_found", "no product %s", id);
    else if (rc != 0)
        ret = send_error(c, R_RECORDS_POST, write_failed_status(), "storage", "%s", err);
    else {
        metrics_records_appended(n);
        agent_notify(a);
        if (a->gossip)
            gossip_notify_append(a->gossip, id); /* remote live readers */
        ret = send_json(c, R_RECORDS_POST, 201,
                        json_pack("{s:s,s:I,s:I,s:I}", "id", id, "first_seq", (json_int_t)first, "last_seq",
                                  (json_int_t)last, "count", (json_int_t)n));
    }
out:
    free(recs);
    record_schema_free(&schema);
    return ret;
}

/* ------------------------------------------------------------------ routing */

static enum MHD_Result h_metrics(agent_t *a, struct MHD_Connection *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return MHD_NO;
    metrics_render(a, f);
    fclose(f);
    return send_body(c, R_METRICS, 200, "text/plain; version=0.0.4", buf, len);
}

static int method_is(const char *m, const char *want) { return strcmp(m, want) == 0; }

static enum MHD_Result bad_method(struct MHD_Connection *c, route_t r, const char *method, const char *url,
                                  const char *allowed)
{
    return send_error(c, r, 405, "method_not_allowed", "%s %s: allowed methods are %s", method, url, allowed);
}

static int has_body(const char *method)
{
    return method_is(method, "PUT") || method_is(method, "POST");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    agent_t *a = cls;
    request_t *req = *con_cls;
    if (!req) { /* first call: headers only */
        req = calloc(1, sizeof *req);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && has_body(method) && strtoull(cl, NULL, 10) > a->limits.max_body)
            req->too_big = 1;
        return MHD_YES;
    }
    if (*upload_size) { /* body chunks */
        metrics_bytes_in(*upload_size);
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

    /* Whole request received: route it. */
    if (!strcmp(url, "/metrics"))
        return method_is(method, "GET") ? h_metrics(a, c) : bad_method(c, R_METRICS, method, url, "GET");
    if (!strcmp(url, "/v1/status"))
        return method_is(method, "GET") ? h_status(a, c) : bad_method(c, R_STATUS, method, url, "GET");
    if (!strcmp(url, "/v1/members"))
        return method_is(method, "GET") ? h_members(a, c) : bad_method(c, R_MEMBERS, method, url, "GET");
    if (!strcmp(url, "/v1/products") || !strcmp(url, "/v1/products/"))
        return method_is(method, "GET") ? h_products(a, c) : bad_method(c, R_PRODUCTS, method, url, "GET");
    if (strncmp(url, "/v1/products/", 13) != 0)
        return send_error(c, R_OTHER, 404, "not_found", "no route %s %s; see docs/http-api.md", method, url);

    /* /v1/products/{domain}/{name}[/records|/stream] */
    const char *p = url + 13;
    const char *slash1 = strchr(p, '/');
    if (!slash1)
        return send_error(c, R_OTHER, 404, "not_found", "%s: expected /v1/products/{domain}/{name}", url);
    const char *slash2 = strchr(slash1 + 1, '/');
    size_t dlen = (size_t)(slash1 - p), nlen = slash2 ? (size_t)(slash2 - slash1 - 1) : strlen(slash1 + 1);
    const char *rest = slash2 ? slash2 : "";
    char domain[128], name[128], id[2 * 128 + 2];
    if (dlen >= sizeof domain || nlen >= sizeof name)
        return send_error(c, R_OTHER, 400, "bad_id", "product id in %s is too long", url);
    memcpy(domain, p, dlen);
    domain[dlen] = '\0';
    memcpy(name, slash1 + 1, nlen);
    name[nlen] = '\0';
    if (!entry_valid_name(domain) || !entry_valid_name(name))
        return send_error(c, R_OTHER, 400, "bad_id",
                          "'%s/%s' is not a product id: domain and name are " STORE_NAME_RULE, domain, name);
    snprintf(id, sizeof id, "%s/%s", domain, name);

    if (!*rest || !strcmp(rest, "/")) {
        if (method_is(method, "GET"))
            return h_product_get(a, c, id);
        if (method_is(method, "PUT")) {
            if (req->too_big)
                return send_error(c, R_PRODUCT_PUT, 413, "too_large", "manifest is over the limit of %zu bytes",
                                  a->limits.max_body);
            return h_product_put(a, c, id, req);
        }
        if (method_is(method, "DELETE"))
            return h_product_delete(a, c, id, domain, name);
        return bad_method(c, R_PRODUCT_GET, method, url, "GET, PUT, DELETE");
    }
    if (!strcmp(rest, "/records")) {
        if (method_is(method, "GET"))
            return h_records_get(a, c, id, domain, 0);
        if (method_is(method, "POST"))
            return h_records_post(a, c, id, domain, req);
        return bad_method(c, R_RECORDS_GET, method, url, "GET, POST");
    }
    if (!strcmp(rest, "/stream"))
        return method_is(method, "GET") ? h_records_get(a, c, id, domain, 1) : bad_method(c, R_STREAM, method, url, "GET");
    return send_error(c, R_OTHER, 404, "not_found", "no route %s %s; see docs/http-api.md", method, url);
}

/* ------------------------------------------------------------------ lifecycle */

int http_start(agent_t *a, char *err, size_t errlen)
{
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
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    unsigned limit = a->cfg.http_threads ? (unsigned)a->cfg.http_threads : 1024;
    a->httpd = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handler, a, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL, MHD_OPTION_CONNECTION_LIMIT,
                                limit, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300, MHD_OPTION_LISTENING_ADDRESS_REUSE,
                                (unsigned)1, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!a->httpd) {
        snprintf(err, errlen, "http: cannot listen on %s (in use, or not an address of this host)", a->cfg.http);
        return -1;
    }
    return 0;
}

void http_stop(agent_t *a)
{
    if (a->httpd) {
        /* The agent has set stopping and woken the readers: give live streams up to 2 s to send
         * their "shutting_down" line and finish, then close whatever is left. */
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 2;
        pthread_mutex_lock(&live_mu);
        while (live_open > 0 && pthread_cond_timedwait(&live_cv, &live_mu, &dl) == 0)
            ;
        pthread_mutex_unlock(&live_mu);
        MHD_stop_daemon(a->httpd);
        a->httpd = NULL;
    }
}
