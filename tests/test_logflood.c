/* tests/test_logflood.c - hostile input cannot flood the log: a real `trib agent` gets bursts of
 * 500 of one kind of bad input at a time (a peer's garbage, oversize, forged and replayed messages
 * over the ZeroMQ transport, and a fork past those the node remembers sent again and again;
 * garbage on the peer and data-link ports; HTTP requests without a token, with a garbage,
 * foreign-domain or expired one, with a bad body, for no such product, the same manifest again, a
 * header too big; a live stream's owner refusing it under 100 readers) and for each its stderr
 * gains at most BURST_LINES lines, and one more for each second the burst took (the shortest
 * interval of a limited line is 1 s; a slow machine or a sanitizer stretches a burst), /metrics
 * counts every one, and the node still answers /v1/status. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>
#include "gossip/entry.h"
#include "gossip/identity.h"
#include "gossip/replicate.h"
#include "gossip/token.h"
#include "tests/fixtures.h"
#include "tests/harness.h"
#include "tests/ledger.h"
#include "tests/peer_tools.h"

#define BURST 500        /* bad inputs of one kind, sent as fast as the node takes them */
#define BURST_LINES 3    /* lines the log may gain from one burst, and one a second it takes */

static void *zctx;
static peer_client_t *pc;   /* the test's hostile peer: closed here too when an assertion ends a test,
                             * else zmq_ctx_term waits for its queued frames forever */
static void teardown(void)
{
    h_cleanup_all();
    peer_client_destroy(&pc);
    if (zctx)
        zmq_ctx_term(zctx);
    zctx = NULL;
}
static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    zctx = zmq_ctx_new();
}
TestSuite(logflood, .init = setup, .fini = teardown, .timeout = 150);

/* ------------------------------------------------------------------ the log and the metrics */

/* Lines of n's stderr holding has (NULL: every line). */
static size_t log_lines(const h_node_t *n, const char *has)
{
    size_t len = 0, k = 0;
    char *s = h_read_file(n->log, &len);
    for (char *p = s, *e; p && p < s + len; p = e + 1) {
        if (!(e = memchr(p, '\n', (size_t)(s + len - p))))
            e = s + len;
        *e = '\0';
        k += !has || strstr(p, has) != NULL;
    }
    free(s);
    return k;
}

/* The lines of n's stderr after the first `from` (for a failure message; malloc'd). */
static char *log_tail(const h_node_t *n, size_t from)
{
    size_t len = 0;
    char *s = h_read_file(n->log, &len), *p = s;
    for (size_t i = 0; p && i < from && (p = memchr(p, '\n', (size_t)(s + len - p))); i++)
        p++;
    char *out = strdup(p ? p : "");
    free(s);
    return out;
}

typedef struct {
    const h_node_t *n;
    const char *series;   /* a series ('name{label="v"}'), or a family summed when it has no '{' */
    double want;
    double got;
} metric_cond_t;

static double metric(const h_node_t *n, const char *series)
{
    return strchr(series, '{') ? h_metric(n->url, series) : h_metric_sum(n->url, series);
}

static int metric_reaches(void *ctx)
{
    metric_cond_t *m = ctx;
    return (m->got = metric(m->n, m->series)) >= m->want;
}

/* Waits until series counted `more` since `base`. */
static void wait_counted(const h_node_t *n, const char *series, double base, double more)
{
    metric_cond_t m = {n, series, base + more, 0};
    cr_assert(h_wait(metric_reaches, &m, 20000), "%s counted %.0f of %.0f", series, m.got - base, more);
}

static void still_serves(const h_node_t *n)
{
    long st = 0;
    json_t *j = h_get_json(n->url, "/v1/status", &st);
    cr_assert_eq(st, 200, "%s stopped serving /v1/status", n->domain);
    json_decref(j);
}

/* Where a burst starts: n's log lines holding has (NULL: all), and the time. */
typedef struct {
    const h_node_t *n;
    const char *has;
    size_t lines;
    long t0;
} mark_t;

static mark_t mark(const h_node_t *n, const char *has)
{
    return (mark_t){n, has, log_lines(n, has), h_now_ms()};
}

/* After a burst of `sent` of `what` (counted by then): at most BURST_LINES new lines since m, and one more
 * for each second since. */
static void few_lines(mark_t m, int sent, const char *what)
{
    still_serves(m.n);   /* a round trip after the last one counted: its line, if any, is written */
    long took = h_now_ms() - m.t0;
    size_t now = log_lines(m.n, m.has), most = BURST_LINES + (size_t)(took / 1000);
    if (now - m.lines > most) {
        char *t = log_tail(m.n, m.has ? 0 : m.lines), msg[3300];
        snprintf(msg, sizeof msg, "%s", t);
        free(t);
        cr_assert_fail("%s: %d of them wrote %zu log lines in %ld ms (at most %zu):\n%s", what, sent,
                       now - m.lines, took, most, msg);
    }
}

/* ------------------------------------------------------------------ a hostile peer */

static void publish_ledger(h_node_t *n)
{
    char err[512];
    cr_assert_eq(ledger_publish(n->url, err, sizeof err), 0, "%s", err);
}

/* CatalogEntries{entry} as one envelope body (malloc'd). */
static uint8_t *entries_body(const uint8_t *entry, size_t len, size_t *blen)
{
    ProtobufCBinaryData item = {len, (uint8_t *)entry};
    Trib__CatalogEntries msg = TRIB__CATALOG_ENTRIES__INIT;
    msg.n_entries = 1;
    msg.entries = &item;
    *blen = trib__catalog_entries__get_packed_size(&msg);
    uint8_t *body = malloc(*blen);
    trib__catalog_entries__pack(&msg, body);
    return body;
}

typedef struct {
    const char *what;
    const char *series;
    int raw;                  /* send `frame` as it is, not an envelope */
    const uint8_t *frame;
    size_t len;
    peer_envelope_t env;
} peer_class_t;

/* Sends c BURST times in rounds the node's queue takes whole (each round counted before the next). */
static void peer_burst(h_node_t *n, const peer_class_t *c)
{
    mark_t m = mark(n, NULL);
    double base = metric(n, c->series);
    uint8_t *packed = NULL;
    size_t plen = 0;
    if (!c->raw)
        cr_assert_eq(peer_envelope_pack(&c->env, &packed, &plen), 0);
    for (int sent = 0; sent < BURST;) {
        for (int i = 0; i < 100 && sent < BURST; i++, sent++)
            cr_assert_eq(peer_client_send_raw(pc, c->raw ? c->frame : packed, c->raw ? c->len : plen), 0);
        wait_counted(n, c->series, base, sent);
    }
    free(packed);
    few_lines(m, BURST, c->what);
}

Test(logflood, a_hostile_peer_is_counted_and_logged_at_most_once_per_interval)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", "--max-msg-kb", "64", NULL), 0);
    publish_ledger(&n);
    identity_t evil, victim;
    peer_identity(&evil);
    peer_identity(&victim);
    pc = peer_client_new(zctx, n.peer, &evil, NULL);
    cr_assert(pc);

    uint8_t junk[512];
    randombytes_buf(junk, sizeof junk);
    size_t big = 64 * 1024 + 100;
    uint8_t *huge = calloc(1, big);
    /* entries: the peer's own domain's first (taken once, then replayed), its second with one bit
     * of the signature flipped (forged), and the node's own domain claimed by the peer's key */
    size_t rlen, flen, wlen, b1, b2, b3;
    uint8_t *mine = fx_manifest_entry(&evil, "evil", "first", "replayed", 1, NULL, &rlen);
    uint8_t *good = fx_manifest_entry(&evil, "evil", "second", "forged", 2, NULL, &flen);
    Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, flen, good);
    cr_assert(se);
    se->signature.data[7] ^= 0x10;
    uint8_t *forged = malloc(trib__signed_entry__get_packed_size(se));
    flen = trib__signed_entry__pack(se, forged);
    trib__signed_entry__free_unpacked(se, NULL);
    uint8_t prev[32] = {0};
    uint8_t *wrong = fx_manifest_entry(&evil, "payments", "hijack", "wrong", 2, prev, &wlen);
    uint8_t *fbody = entries_body(forged, flen, &b1), *wbody = entries_body(wrong, wlen, &b2),
            *rbody = entries_body(mine, rlen, &b3);

    peer_class_t cls[] = {
        {"random bytes", "trib_gossip_dropped_total{reason=\"undecodable\"}", 1, junk, sizeof junk, {0}},
        {"oversize frames", "trib_gossip_dropped_total{reason=\"oversize\"}", 1, huge, big, {0}},
        {"a wrong protocol version", "trib_gossip_dropped_total{reason=\"bad_version\"}", 0, NULL, 0, {0}},
        {"a spoofed sender", "trib_gossip_dropped_total{reason=\"spoofed_sender\"}", 0, NULL, 0, {0}},
        {"a garbage catalog body", "trib_gossip_dropped_total{reason=\"malformed_catalog\"}", 0, NULL, 0, {0}},
        {"forged entries", "trib_catalog_entries_total{result=\"bad_signature\"}", 0, NULL, 0, {0}},
        {"entries of another key", "trib_catalog_entries_total{result=\"wrong_key\"}", 0, NULL, 0, {0}},
        {"replayed entries", "trib_catalog_entries_total{result=\"duplicate\"}", 0, NULL, 0, {0}},
    };
    peer_envelope_init(&cls[2].env, &evil, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_PING, NULL, 0);
    cls[2].env.version = 99;
    peer_envelope_init(&cls[3].env, &evil, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_PING, NULL, 0);
    cls[3].env.sender = victim.pk;
    peer_envelope_init(&cls[4].env, &evil, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, junk, sizeof junk);
    peer_envelope_init(&cls[5].env, &evil, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, fbody, b1);
    peer_envelope_init(&cls[6].env, &evil, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, wbody, b2);
    peer_envelope_init(&cls[7].env, &evil, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, rbody, b3);

    /* the replayed entry, taken once before it is replayed */
    double acc = h_metric(n.url, "trib_catalog_entries_total{result=\"accepted\"}");
    peer_envelope_t first;
    peer_envelope_init(&first, &evil, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, rbody, b3);
    cr_assert_eq(peer_client_send_envelope(pc, &first), 0);
    wait_counted(&n, "trib_catalog_entries_total{result=\"accepted\"}", acc, 1);

    for (size_t i = 0; i < sizeof cls / sizeof cls[0]; i++)
        peer_burst(&n, &cls[i]);

    free(huge), free(good), free(forged), free(wrong), free(mine), free(fbody), free(wbody), free(rbody);
    peer_client_destroy(&pc);
}

/* The chaining hash of a signed entry (entry_hash of its body). */
static void chain_hash(const uint8_t *entry, size_t len, uint8_t out[32])
{
    Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, len, entry);
    cr_assert(se);
    entry_hash(se->body.data, se->body.len, out);
    trib__signed_entry__free_unpacked(se, NULL);
}

static void send_entry(const identity_t *id, const uint8_t *entry, size_t len)
{
    size_t blen;
    uint8_t *body = entries_body(entry, len, &blen);
    peer_envelope_t env;
    peer_envelope_init(&env, id, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, body, blen);
    cr_assert_eq(peer_client_send_envelope(pc, &env), 0);
    free(body);
}

#define FORKED (REPL_FORKS_MAX + 1)

/* A domain's key signs a second entry at each of its seqs: each fork is logged once while the node
 * can remember it (REPL_FORKS_MAX); one past those, sent again and again, is not a line each time. */
Test(logflood, forks_past_the_remembered_ones_are_logged_at_most_once_per_interval)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    identity_t evil;
    peer_identity(&evil);
    pc = peer_client_new(zctx, n.peer, &evil, NULL);
    cr_assert(pc);
    /* the domain 'evil', seq 1..FORKED, taken on first use; then another entry at each seq */
    uint8_t prev[FORKED + 1][32];
    double acc = h_metric(n.url, "trib_catalog_entries_total{result=\"accepted\"}");
    for (uint64_t seq = 1; seq <= FORKED; seq++) {
        size_t len;
        uint8_t *e = fx_manifest_entry(&evil, "evil", "first", "one", seq, seq > 1 ? prev[seq - 1] : NULL, &len);
        chain_hash(e, len, prev[seq]);
        send_entry(&evil, e, len);
        free(e);
    }
    wait_counted(&n, "trib_catalog_entries_total{result=\"accepted\"}", acc, FORKED);
    size_t flen = 0;
    uint8_t *fork = NULL;
    for (uint64_t seq = 1; seq <= FORKED; seq++) {
        free(fork);
        fork = fx_manifest_entry(&evil, "evil", "first", "two", seq, seq > 1 ? prev[seq - 1] : NULL, &flen);
        send_entry(&evil, fork, flen);
    }
    wait_counted(&n, "trib_catalog_forks_total", 0, FORKED);
    cr_assert_eq(log_lines(&n, "FORK of domain 'evil'"), FORKED, "each fork is logged once");
    /* the last, past the remembered ones, again and again */
    mark_t m = mark(&n, NULL);
    for (int sent = 0; sent < BURST;) {
        for (int i = 0; i < 100 && sent < BURST; i++, sent++)
            send_entry(&evil, fork, flen);
        wait_counted(&n, "trib_catalog_forks_total", FORKED, sent);
    }
    few_lines(m, BURST, "a fork sent again");
    free(fork);
    peer_client_destroy(&pc);
}

/* ------------------------------------------------------------------ raw TCP */

/* Connects to 127.0.0.1:port, sends len bytes, and reads until the node closes (or 5 s). */
static void tcp_once(int port, const void *data, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect to port %d", port);
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, (const char *)data + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;   /* the node closed it already: refused */
        off += (size_t)w;
    }
    char buf[4096];
    while (recv(fd, buf, sizeof buf, 0) > 0)
        ;
    close(fd);
}

static void tcp_burst(const h_node_t *n, int port, const void *data, size_t len, const char *series,
                      const char *what)
{
    mark_t m = mark(n, NULL);
    double base = metric(n, series);
    for (int i = 0; i < BURST; i++)
        tcp_once(port, data, len);
    wait_counted(n, series, base, BURST);
    few_lines(m, BURST, what);
}

Test(logflood, garbage_on_the_peer_and_data_link_ports_is_counted_and_logged_at_most_once_per_interval)
{
    h_node_t n;
    int link = h_free_port();
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", link);
    cr_assert_eq(h_node_start(&n, "payments", "--link-listen", listen, NULL), 0);
    uint8_t junk[300];
    randombytes_buf(junk, sizeof junk);
    junk[0] = 0x42;   /* neither a ZMTP greeting nor a Tributary link */
    int peer = atoi(strchr(n.peer, ':') + 1);
    tcp_burst(&n, peer, junk, sizeof junk, "trib_gossip_dropped_total{reason=\"handshake_failed_in\"}",
              "garbage on the peer port");
    tcp_burst(&n, link, junk, sizeof junk, "trib_link_refused_total", "garbage on the data-link port");
}

/* ------------------------------------------------------------------ HTTP */

typedef struct {
    const char *what;
    const char *method, *path, *body;
    const char *token;        /* NULL: none */
    const char *series;       /* what counts each */
    long ok;                  /* the status each gets (0: any 4xx) */
} http_class_t;

static void http_burst(const h_node_t *n, const http_class_t *c)
{
    mark_t m = mark(n, NULL);
    double base = metric(n, c->series);
    char url[300];
    snprintf(url, sizeof url, "%s%s", n->url, c->path);
    for (int i = 0; i < BURST; i++) {
        h_resp_t r;
        cr_assert_eq(h_http_token(c->method, url, c->body ? "application/json" : NULL, c->body,
                                  c->body ? strlen(c->body) : 0, c->token, &r), 0);
        cr_assert(c->ok ? r.status == c->ok : r.status >= 400 && r.status < 500, "%s: %ld %s", c->what, r.status,
                  r.body);
        h_resp_free(&r);
    }
    wait_counted(n, c->series, base, BURST);
    few_lines(m, BURST, c->what);
}

/* A token of the node's own key: for domain, valid from from_ms to until_ms (malloc'd). */
static char *own_token(const h_node_t *n, const char *domain, int64_t from_ms, int64_t until_ms)
{
    identity_t me;
    char err[300], *t = NULL;
    cr_assert_eq(identity_load_or_create(n->dir, &me, NULL, err, sizeof err), 0, "%s", err);
    token_spec_t spec = {.subject = "mallory@payments", .kind = TOKEN_KIND_ADMIN, .issued_ms = from_ms,
                         .expires_ms = until_ms};
    cr_assert_eq(token_issue(&me, domain, &spec, &t, err, sizeof err), 0, "%s", err);
    identity_wipe(&me);
    return t;
}

Test(logflood, bad_http_requests_and_tokens_are_counted_and_logged_at_most_once_per_interval)
{
    h_node_t n;
    cr_assert_eq(h_node_start(&n, "payments", NULL), 0);
    publish_ledger(&n);
    long now = (long)time(NULL) * 1000;
    char *expired = own_token(&n, "payments", now - 7200000, now - 3600000);
    char *foreign = own_token(&n, "growth", now - 1000, now + 3600000);
    const char *manifest = "{\"name\":\"ledger\",\"domain\":\"payments\",\"version\":\"2.0.0\"}";
    const char *ledger = "{\"name\":\"ledger\",\"domain\":\"payments\",\"version\":\"1.0.0\",\"status\":\"active\","
                         "\"owners\":{\"business\":\"b@x.com\",\"technical\":\"t@x.com\"},"
                         "\"schema\":[{\"name\":\"id\",\"logicalType\":\"integer\",\"required\":true},"
                         "{\"name\":\"pad\",\"logicalType\":\"string\"}]}";   /* tests/ledger.c's, as published */
    http_class_t cls[] = {
        {"writes without a token", "PUT", "/v1/products/payments/ledger", manifest, NULL,
         "trib_token_refused_total", 0},
        {"writes with a garbage token", "PUT", "/v1/products/payments/ledger", manifest, "trib1.garbage",
         "trib_token_refused_total", 0},
        {"writes with another domain's token", "PUT", "/v1/products/payments/ledger", manifest, foreign,
         "trib_token_refused_total", 0},
        {"writes with an expired token", "PUT", "/v1/products/payments/ledger", manifest, expired,
         "trib_token_refused_total", 0},
        {"bad JSON bodies", "PUT", "/v1/products/payments/ledger", "{\"name\": tru", n.token,
         "trib_http_requests_total", 0},
        {"reads of no such product", "GET", "/v1/products/payments/nope/records", NULL, n.token,
         "trib_http_requests_total", 0},
        {"the same manifest again", "PUT", "/v1/products/payments/ledger", ledger, n.token,
         "trib_publish_unchanged_total", 200},
    };
    for (size_t i = 0; i < sizeof cls / sizeof cls[0]; i++)
        http_burst(&n, &cls[i]);

    /* a header too big: refused (431) by libmicrohttpd before the node sees the request */
    size_t hl = 200 * 1024;
    char *req = malloc(hl + 100);
    int k = snprintf(req, 100, "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + k, 'a', hl);
    memcpy(req + k + hl, "\r\n\r\n", 4);
    tcp_burst(&n, n.http_port, req, (size_t)k + hl + 4, "trib_http_server_messages_total", "headers too big");
    free(req);
    free(expired);
    free(foreign);
}

/* ------------------------------------------------------------------ a routed stream's owner */

#define READERS 100

/* A live stream of the ledger from n, as raw HTTP/1.0 (it ends when the node closes it). */
static int stream_open(const h_node_t *n)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)n->http_port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char req[4800];
    int len = snprintf(req, sizeof req, "GET /v1/products/" LEDGER_ID "/stream HTTP/1.0\r\nHost: x\r\n"
                       "Authorization: Bearer %s\r\n\r\n", n->token);
    cr_assert_eq(write(fd, req, (size_t)len), len);
    return fd;
}

Test(logflood, an_owner_refusing_many_live_streams_is_logged_at_most_once_per_interval)
{
    h_node_t a, b;
    cr_assert_eq(h_node_start(&a, "payments", NULL), 0);
    cr_assert_eq(h_node_start(&b, "growth", "--seed", a.peer, NULL), 0);
    cr_assert(h_wait_member(b.url, "payments", "alive", NULL, 15000), "growth does not see payments");
    publish_ledger(&a);
    cr_assert(h_wait_status(b.url, "/v1/products/" LEDGER_ID, NULL, 200, 15000), "growth did not learn the ledger");
    char err[300];
    cr_assert_eq(ledger_append(a.url, 1, 1, 1, err, sizeof err), 0, "%s", err);

    int fds[READERS];
    for (int i = 0; i < READERS; i++)
        fds[i] = stream_open(&b);
    metric_cond_t all = {&b, "trib_read_feed_subscribers", READERS, 0};
    cr_assert(h_wait(metric_reaches, &all, 20000), "%.0f of %d readers follow the feed", all.got, READERS);
    mark_t m = mark(&b, "routed read of");
    /* the owner retires the ledger: it refuses the feed, and with it every stream */
    h_resp_t r;
    char url[300];
    snprintf(url, sizeof url, "%s/v1/products/" LEDGER_ID, a.url);
    cr_assert_eq(h_http("DELETE", url, NULL, NULL, 0, &r), 0);
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    h_resp_free(&r);
    for (int i = 0; i < READERS; i++) {
        char buf[8192];
        size_t got = 0;
        ssize_t k;
        while ((k = read(fds[i], buf + got, sizeof buf - 1 - got)) > 0 && got + 1 < sizeof buf - 1)
            got += (size_t)k;
        buf[got] = '\0';
        close(fds[i]);
        cr_assert(strstr(buf, "\"error\":\"retired\""), "reader %d did not get the owner's refusal: %s", i, buf);
    }
    few_lines(m, READERS, "live streams refused by their owner");
    cr_assert_eq(h_metric(b.url, "trib_http_routed_failed_total"), READERS);
    cr_assert_eq(h_metric(b.url, "trib_http_requests_total{route=\"stream\",status=\"200\"}"), READERS);
}
