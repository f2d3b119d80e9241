/* tests/test_linkread.c - routed range reads over the data link (gossip/linkserve.c on the owner,
 * gossip/reads_link.c on the relay), as real `trib agent` processes on loopback: the bytes and
 * headers of a direct read, the owner's refusals, the peer transport when the owner serves no
 * link or its link cannot be reached (counted), the owner lost mid-read, and hostile links (not a
 * link, another federation, a spoofed hello, an uncertified key, a silent connection, too many at
 * once), each refused, counted, and the node serving on. Test-side clients speak gossip/link.h. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/identity.h"
#include "gossip/link.h"
#include "gossip/linkserve.h"
#include "gossip/reads_link.h"
#include "gossip/token.h"
#include "gossip/trust.h"
#include "proto/tributary.pb-c.h"
#include "tests/fixtures.h"
#include "tests/harness.h"
#include "tests/ledger.h"

TestSuite(linkread, .fini = h_cleanup_all, .timeout = 180);

#define FAST "--probe-interval-ms", "200", "--probe-timeout-ms", "100", "--suspicion-mult", "3", \
             "--gossip-interval-ms", "50", "--anti-entropy-ms", "300", "--retry-max-ms", "1000"
/* SWIM at the product's own timings (a probe answered within 500 ms, a suspicion refuted within 4 s),
 * gossip as fast as FAST's: for a test whose load keeps a node's loop from answering within FAST's
 * 100 ms and refuting within its 600 ms on a machine shared with other tests (48 routed reads at
 * once, the suite on one core: the relay held the owner dead for a second, and reads were refused). */
#define STEADY "--probe-interval-ms", "1000", "--probe-timeout-ms", "500", "--suspicion-mult", "4", \
               "--gossip-interval-ms", "50", "--anti-entropy-ms", "300", "--retry-max-ms", "1000"
#define PRODUCT LEDGER_ID
#define RECORDS_PATH "/v1/products/" PRODUCT "/records"
#define DAY_MS 86400000LL

/* ------------------------------------------------------------------ helpers */

static void publish_ledger(h_node_t *owner)
{
    char err[512];
    cr_assert_eq(ledger_publish(owner->url, err, sizeof err), 0, "%s", err);
}

/* Appends records id = first .. first+n-1, each with pad bytes of padding. */
static void post_records(h_node_t *owner, long first, long n, size_t pad)
{
    char err[512];
    cr_assert_eq(ledger_append(owner->url, first, n, pad, err, sizeof err), 0, "%s", err);
}

/* Appends records of ~1 KiB from id first on, in posts of 8,000, more than the sockets from the
 * owner to the relay's client can hold (at least 32,000): the relay's link receive buffer grows
 * up to tcp_rmem's limit (32 MiB on some hosts: 32,000 records once fit in it whole, and the owner
 * never waited), the owner's send buffer and the relay's to its client up to tcp_wmem's, and 8 MiB
 * for the relay's own (a batch at a time). A read of them that is not taken keeps the owner
 * waiting in its send. The number appended. */
static long post_beyond_sockets(h_node_t *owner, long first)
{
    long rmax = h_tcp_buf_max("tcp_rmem"), wmax = h_tcp_buf_max("tcp_wmem");
    cr_assert(rmax > 0 && wmax > 0, "cannot read /proc/sys/net/ipv4/tcp_rmem and tcp_wmem");
    long bytes = rmax + 2 * wmax + (8L << 20);
    long posts = bytes / (8000L * 1000) + 1;
    if (posts < 4)
        posts = 4;
    for (long i = 0; i < posts; i++)
        post_records(owner, first + i * 8000L, 8000, 1000);
    return posts * 8000;
}

/* b sees a alive, a publishes the ledger (and nrec records), b learns it. */
static void pair_joined(h_node_t *a, h_node_t *b, long nrec)
{
    cr_assert(h_wait_member(b->url, "payments", "alive", NULL, 15000), "growth does not see payments");
    publish_ledger(a);
    if (nrec)
        post_records(a, 1, nrec, 80);
    cr_assert(h_wait_status(b->url, "/v1/products/" PRODUCT, NULL, 200, 15000), "growth did not learn the ledger");
}

/* Owner payments (with extra args, NULL-ended, at most 6) and relay growth; the ledger published,
 * nrec records of 100 bytes appended, growth knowing both. */
static void pair(h_node_t *a, h_node_t *b, long nrec, const char *x1, const char *x2, const char *x3,
                 const char *x4)
{
    int rc = x3 ? h_node_start(a, "payments", x1, x2, x3, x4, FAST, NULL)
             : x1 ? h_node_start(a, "payments", x1, x2, FAST, NULL)
                  : h_node_start(a, "payments", FAST, NULL);
    cr_assert_eq(rc, 0, "payments did not start");
    cr_assert_eq(h_node_start(b, "growth", "--seed", a->peer, FAST, NULL), 0, "growth did not start");
    pair_joined(a, b, nrec);
}

/* A raw HTTP/1.0 GET (with token, NULL: none): the status, the named headers' lines (in *hdrs,
 * in order, "" for a missing one) and the body. */
typedef struct {
    long status;
    char hdrs[512];
    char *body;
    size_t len;
} raw_t;

static void raw_get(h_node_t *n, const char *path, const char *token, raw_t *out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)n->http_port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[4800];
    int len = token ? snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", path,
                               token)
                    : snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
    cr_assert_eq(write(fd, req, (size_t)len), len);
    size_t cap = 1 << 20, got = 0;
    char *b = malloc(cap);
    for (ssize_t r; (r = read(fd, b + got, cap - got - 1)) > 0;) {
        got += (size_t)r;
        if (cap - got < 65536)
            b = realloc(b, cap *= 2);
    }
    close(fd);
    b[got] = '\0';
    char *end = strstr(b, "\r\n\r\n");
    cr_assert(end, "no HTTP header in %zu bytes", got);
    *end = '\0';
    out->status = strtol(b + 9, NULL, 10);
    out->hdrs[0] = '\0';
    static const char *const names[] = {"Content-Type:", "Trib-First-Seq:", "Trib-Last-Seq:",
                                        "X-Trib-Schema-Version:", "X-Trib-Schema-Seq:"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *h = strcasestr(b, names[i]);
        size_t l = h ? strcspn(h, "\r") : 0;
        size_t o = strlen(out->hdrs);
        snprintf(out->hdrs + o, sizeof out->hdrs - o, "%.*s|", (int)l, h ? h : "");
    }
    out->len = got - (size_t)(end + 4 - b);
    out->body = malloc(out->len + 1);
    memcpy(out->body, end + 4, out->len);
    out->body[out->len] = '\0';
    free(b);
}

static double metric(h_node_t *n, const char *series) { return h_metric(n->url, series); }

#define LINK_READS "trib_read_routed_total{path=\"link\"}"
#define RELAY_READS "trib_read_routed_total{path=\"relay\"}"

/* A routed read through b equals the direct read on a, bytes and headers. */
static void same_as_direct(h_node_t *a, h_node_t *b, const char *path)
{
    raw_t d, r;
    raw_get(a, path, a->token, &d);
    raw_get(b, path, b->token, &r);
    cr_assert_eq(d.status, 200, "direct: %ld %s", d.status, d.body);
    cr_assert_eq(r.status, 200, "routed: %ld %s", r.status, r.body);
    cr_assert_str_eq(r.hdrs, d.hdrs, "%s: headers differ", path);
    cr_assert_eq(r.len, d.len, "%s: %zu bytes routed, %zu direct", path, r.len, d.len);
    cr_assert(memcmp(r.body, d.body, d.len) == 0, "%s: bytes differ", path);
    free(d.body);
    free(r.body);
}

/* The node answers and a routed read through relay works (bytes as direct). */
static void still_serves(h_node_t *owner, h_node_t *relay)
{
    json_t *s = h_get_json(owner->url, "/v1/status", NULL);
    cr_assert_not_null(s, "the owner stopped serving");
    json_decref(s);
    same_as_direct(owner, relay, RECORDS_PATH "?from=3&limit=5");
}

static void node_id(h_node_t *n, uint8_t id[32])
{
    json_t *s = h_get_json(n->url, "/v1/status", NULL);
    cr_assert_not_null(s);
    cr_assert_eq(identity_from_hex(json_string_value(json_object_get(s, "node_id")), id), 0);
    json_decref(s);
}

static int tcp_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect to the link port %d", port);
    return fd;
}

/* A test-side link to the owner (server id) at port as identity me, with hello and prologue. */
static link_t *dial_as(int port, const uint8_t server_id[32], const identity_t *me, const uint8_t *hello,
                       size_t hello_len, const uint8_t prologue[32], link_reason_t *why, char *err, size_t errlen)
{
    link_keys_t k;
    memcpy(k.pk, me->curve_pk, 32);
    memcpy(k.sk, me->curve_sk, 32);
    memcpy(k.prologue, prologue, 32);
    uint8_t spk[32];
    cr_assert_eq(crypto_sign_ed25519_pk_to_curve25519(spk, server_id), 0);
    return link_dial(tcp_to(port), &k, spk, hello, hello_len, LINK_MAX_FRAME, 3000, why, err, errlen);
}

/* After a refused handshake the owner closes the connection: the dialler sees it end. */
static int closed_by_peer(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char buf[256];
    long until = h_now_ms() + ms;
    while (h_now_ms() < until) {
        if (poll(&p, 1, 100) > 0) {
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0)
                return 1;
        }
    }
    return 0;
}

/* 1 when the owner answers a request on l (a refusal: no token), 0 when it closes l instead. */
static int served(link_t *l)
{
    Trib__ReadRequest q = TRIB__READ_REQUEST__INIT;
    q.stream_id = 1;
    q.product_id = PRODUCT;
    size_t n = 1 + trib__read_request__get_packed_size(&q);
    link_reason_t why;
    uint8_t *p = link_frame(l, n, &why);
    cr_assert_not_null(p);
    p[0] = LINK_REQ;
    trib__read_request__pack(&q, p + 1);
    if (link_send_frame(l, n, 3000, &why) != 0)
        return 0;
    const uint8_t *f;
    size_t len;
    int rc = link_recv(l, &f, &len, 10000, &why);
    cr_assert_neq(rc, 0, "neither an answer nor a close within 10 s");
    return rc == 1 && len > 1 && f[0] == LINK_BATCH;
}

/* A request on a test-side link (the ledger, no token): the owner answers with its refusal, a
 * done batch with a status. Proves the link live to the owner (its first frame decrypts). */
static void request_on(link_t *l)
{
    Trib__ReadRequest q = TRIB__READ_REQUEST__INIT;
    q.stream_id = 1;
    q.product_id = PRODUCT;
    size_t n = 1 + trib__read_request__get_packed_size(&q);
    link_reason_t why;
    uint8_t *p = link_frame(l, n, &why);
    cr_assert_not_null(p);
    p[0] = LINK_REQ;
    trib__read_request__pack(&q, p + 1);
    cr_assert_eq(link_send_frame(l, n, 3000, &why), 0, "%s", link_reason_name(why));
    const uint8_t *f;
    size_t len;
    cr_assert_eq(link_recv(l, &f, &len, 10000, &why), 1, "no answer: %s", link_reason_name(why));
    cr_assert(len > 1 && f[0] == LINK_BATCH, "not a batch");
    Trib__ReadBatch *b = trib__read_batch__unpack(NULL, len - 1, f + 1);
    cr_assert_not_null(b);
    cr_assert(b->done && b->status, "a read without a token was not refused");
    trib__read_batch__free_unpacked(b, NULL);
}

typedef struct {
    h_node_t *n;
    const char *series;
    double want;
} at_least_t;

static int reached(void *ctx)
{
    at_least_t *c = ctx;
    return h_metric(c->n->url, c->series) >= c->want;
}

static void wait_metric(h_node_t *n, const char *series, double want, int ms)
{
    at_least_t c = {n, series, want};
    cr_assert(h_wait(reached, &c, ms), "%s: %s is %g, want >= %g", n->domain, series, h_metric(n->url, series), want);
}

/* A response's records: 1 when its body is records {"id": first, ...} one after another, each
 * once, then at most one error line (its kind in kind, its detail in detail; "" without one); *n
 * the records, *next the id after the last. 0 (why in detail) when it is not. */
static int records_then(const char *resp, size_t len, long first, long *n, long *next, char *kind, size_t kindlen,
                        char *detail, size_t detlen)
{
    *n = 0;
    *next = first;
    kind[0] = detail[0] = '\0';
    const char *p = strstr(resp, "\r\n\r\n"), *end = resp + len;
    if (!p || strncmp(resp + 9, "200", 3) != 0) {
        snprintf(detail, detlen, "no 200 header: %.80s", resp);
        return 0;
    }
    for (p += 4; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            snprintf(detail, detlen, "a line cut short after id %ld", *next - 1);
            return 0;
        }
        if (kind[0]) {
            snprintf(detail, detlen, "a line after the error line");
            return 0;
        }
        if (!strncmp(p, "{\"error\"", 8)) {
            json_t *j = json_loadb(p, (size_t)(nl - p), 0, NULL);
            snprintf(kind, kindlen, "%s", j ? json_string_value(json_object_get(j, "error")) : "?");
            snprintf(detail, detlen, "%s", j ? json_string_value(json_object_get(j, "detail")) : "?");
            json_decref(j);
        } else if (strncmp(p, "{\"id\":", 6) != 0 || strtol(p + 6, NULL, 10) != *next) {
            snprintf(detail, detlen, "after id %ld: %.60s", *next - 1, p);
            return 0;
        } else {
            ++*n;
            ++*next;
        }
        p = nl + 1;
    }
    return 1;
}

/* ------------------------------------------------------------------ the path */

Test(linkread, a_routed_read_goes_over_the_link_with_the_direct_reads_bytes_and_headers)
{
    h_node_t a, b;
    pair(&a, &b, 20000, NULL, NULL, NULL, NULL);
    same_as_direct(&a, &b, RECORDS_PATH);
    cr_assert_eq(metric(&b, LINK_READS), 1, "the read did not go over the link");
    cr_assert_eq(metric(&b, RELAY_READS), 0);
    cr_assert_eq(metric(&a, "trib_link_accepted_total"), 1);
    cr_assert_eq(metric(&a, "trib_gossip_messages_total{dir=\"in\",type=\"MSG_READ_REQ\"}"), 0,
                 "a request went over the peer transport");
    /* ranges, an empty one, beyond the end: each as direct; the link is reused from the pool */
    static const char *const paths[] = {RECORDS_PATH "?from=19990", RECORDS_PATH "?from=5&limit=7",
                                        RECORDS_PATH "?from=20001", RECORDS_PATH "?from=99999&limit=3",
                                        RECORDS_PATH "?limit=1"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
        same_as_direct(&a, &b, paths[i]);
    cr_assert_eq(metric(&b, LINK_READS), 6);
    cr_assert_geq(metric(&b, "trib_link_reused_total"), 5, "each read dialled anew");
    cr_assert_eq(metric(&a, "trib_link_accepted_total"), 1, "each read dialled anew");
    /* live streams stay on the peer transport */
    cr_assert_eq(metric(&b, "trib_link_dial_failed_total{reason=\"connect\"}"), 0);
}

/* The relay's --link-cipher picks the protocol of the links it dials; the owner takes either. A
 * relay dialling with ChaChaPoly and one with AESGCM read the same bytes as the direct read, each
 * over the link, and the owner counts which protocol each link came with. */
Test(linkread, relays_dialling_with_either_cipher_read_the_direct_reads_bytes)
{
    h_node_t a, b, c;
    cr_assert_eq(h_node_start(&a, "payments", "--link-cipher", "aesgcm", FAST, NULL), 0, "payments did not start");
    cr_assert_eq(h_node_start(&b, "growth", "--seed", a.peer, "--link-cipher", "chachapoly", FAST, NULL), 0);
    pair_joined(&a, &b, 3000);
    same_as_direct(&a, &b, RECORDS_PATH);
    cr_assert_eq(metric(&b, LINK_READS), 1, "the read did not go over the link");
    cr_assert_eq(metric(&a, "trib_link_accepted_total"), 1);
    cr_assert_eq(metric(&a, "trib_link_accepted_aesgcm_total"), 0, "growth dialled with AESGCM");
    cr_assert_eq(h_node_start(&c, "search", "--seed", a.peer, "--link-cipher", "aesgcm", FAST, NULL), 0);
    cr_assert(h_wait_status(c.url, "/v1/products/" PRODUCT, NULL, 200, 15000), "search did not learn the ledger");
    same_as_direct(&a, &c, RECORDS_PATH);
    same_as_direct(&a, &c, RECORDS_PATH "?from=2990");
    cr_assert_eq(metric(&c, LINK_READS), 2, "the reads did not go over the link");
    cr_assert_eq(metric(&a, "trib_link_accepted_total"), 2);
    cr_assert_eq(metric(&a, "trib_link_accepted_aesgcm_total"), 1, "search did not dial with AESGCM");
}

Test(linkread, the_owners_refusals_come_over_the_link_as_on_the_owner)
{
    h_node_t a, b;
    pair(&a, &b, 10, NULL, NULL, NULL, NULL);
    char path[400], err[256];
    identity_t bid;
    snprintf(path, sizeof path, "%s/identity.key", b.dir);
    cr_assert_eq(identity_load_file(path, &bid, err, sizeof err), 0, "%s", err);
    int64_t now = fx_now_ms();
    token_spec_t sp = {.subject = "eve@growth", .kind = TOKEN_KIND_READ, .product = "payments/other",
                       .issued_ms = now, .expires_ms = now + 3600000};
    char *scoped = NULL;
    cr_assert_eq(token_issue(&bid, "growth", &sp, &scoped, err, sizeof err), 0, "%s", err);
    identity_wipe(&bid);
    const char *tokens[] = {NULL, "trib1.garbage", scoped};
    int seen403 = 0, seen401 = 0;
    double links = metric(&b, LINK_READS);
    for (size_t i = 0; i < sizeof tokens / sizeof *tokens; i++) {
        raw_t d, r;
        raw_get(&a, RECORDS_PATH, tokens[i], &d);
        raw_get(&b, RECORDS_PATH, tokens[i], &r);
        cr_assert(d.status == 401 || d.status == 403, "direct with token %zu: %ld %s", i, d.status, d.body);
        cr_assert_eq(r.status, d.status, "token %zu: routed %ld (%s), direct %ld (%s)", i, r.status, r.body, d.status,
                     d.body);
        json_t *jd = json_loads(d.body, 0, NULL), *jr = json_loads(r.body, 0, NULL);
        cr_assert_str_eq(json_string_value(json_object_get(jr, "error")),
                         json_string_value(json_object_get(jd, "error")), "token %zu", i);
        seen401 += d.status == 401;
        seen403 += d.status == 403;
        json_decref(jd), json_decref(jr);
        free(d.body), free(r.body);
    }
    free(scoped);
    cr_assert(seen401 && seen403, "the cases did not cover 401 and 403");
    cr_assert_eq(metric(&b, LINK_READS), links + 3, "the refusals did not come over the link");
    cr_assert_eq(metric(&b, RELAY_READS), 0);
    cr_assert_eq(metric(&b, "trib_link_reused_total"), 2, "a refused read does not leave its link unusable");
    still_serves(&a, &b);
}

Test(linkread, with_the_owners_link_off_reads_go_over_the_peer_transport)
{
    h_node_t a, b;
    pair(&a, &b, 3000, "--link-listen", "off", NULL, NULL);
    same_as_direct(&a, &b, RECORDS_PATH);
    same_as_direct(&a, &b, RECORDS_PATH "?from=10&limit=10");
    cr_assert_eq(metric(&b, RELAY_READS), 2);
    cr_assert_eq(metric(&b, LINK_READS), 0);
    wait_metric(&a, "trib_gossip_messages_total{dir=\"in\",type=\"MSG_READ_REQ\"}", 2, 5000);
    char *log = h_read_file(a.log, NULL);
    int serving = log && strstr(log, "link: serving") != NULL;
    free(log);
    cr_assert(!serving, "the owner serves a link");
}

Test(linkread, an_unreachable_link_falls_back_to_the_peer_transport_and_is_counted)
{
    h_node_t a, b;
    int dead = h_free_port();   /* nothing listens there */
    char adv[64];
    snprintf(adv, sizeof adv, "127.0.0.1:%d", dead);
    pair(&a, &b, 3000, "--link-advertise", adv, NULL, NULL);
    same_as_direct(&a, &b, RECORDS_PATH);
    cr_assert_eq(metric(&b, "trib_link_dial_failed_total{reason=\"connect\"}"), 1);
    cr_assert_eq(metric(&b, RELAY_READS), 1);
    cr_assert_eq(metric(&b, LINK_READS), 0);
    /* not tried again at once: the next read goes straight over the peer transport */
    same_as_direct(&a, &b, RECORDS_PATH "?from=7&limit=3");
    cr_assert_eq(metric(&b, "trib_link_dial_failed_total{reason=\"connect\"}"), 1, "dialled again at once");
    cr_assert_eq(metric(&b, RELAY_READS), 2);
}

/* Reads fd until its end or an error into *b (n bytes held, *cap its size, grown as needed:
 * the reads are sized by the host's socket buffers), '\0'-ended. */
static void read_to_end(int fd, char **b, size_t *cap, size_t *n)
{
    for (ssize_t r;;) {
        if (*cap - *n < (1 << 20)) {
            char *nb = realloc(*b, *cap * 2);
            cr_assert_not_null(nb);
            *b = nb;
            *cap *= 2;
        }
        if ((r = read(fd, *b + *n, *cap - *n - 1)) <= 0)
            break;
        *n += (size_t)r;
    }
    (*b)[*n] = '\0';
}

/* ------------------------------------------------------------------ the owner lost */

Test(linkread, the_owner_killed_mid_read_ends_the_read_with_owner_lost)
{
    h_node_t a, b;
    pair(&a, &b, 0, NULL, NULL, NULL, NULL);
    post_beyond_sockets(&a, 1);
    int fd = h_slow_get(&b, RECORDS_PATH, NULL);
    cr_assert_geq(fd, 0, "cannot reach growth");
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t cap = 64 << 20, got = 0;
    char *body = malloc(cap);
    cr_assert_not_null(body);
    /* the answer has begun (its header is sent once the first batch reached the relay over the
     * link): only then is the owner killed, else the relay may fall back to the peer transport */
    long t0 = h_now_ms();
    int header = 0;
    for (ssize_t r; !header && h_now_ms() - t0 < 20000 && (r = read(fd, body + got, cap - got - 1)) > 0;) {
        got += (size_t)r;
        body[got] = '\0';
        header = strstr(body, "\r\n\r\n") != NULL;
    }
    int started = header && !strncmp(body + 9, "200", 3);
    if (!started)
        free(body);
    cr_assert(started, "the read did not begin (with a 200) within 20 s");
    cr_assert_eq(metric(&a, "trib_link_requests_total"), 1, "the read is not served over the link");
    cr_assert_eq(h_node_stop(&a, SIGKILL), 128 + SIGKILL);
    t0 = h_now_ms();
    read_to_end(fd, &body, &cap, &got);
    close(fd);
    long took = h_now_ms() - t0;
    long n, next;
    char kind[64], detail[600];
    int ok = records_then(body, got, 1, &n, &next, kind, sizeof kind, detail, sizeof detail);
    free(body);
    cr_assert(took < 25000, "the read hung after the owner died");
    cr_assert(ok, "%s", detail);
    cr_assert_str_eq(kind, "owner_lost", "the read did not end with an owner_lost line: '%s' %s", kind, detail);
    /* its link lost, the relay asked for a new one (the port refuses): the line says where to go on */
    char again[64];
    snprintf(again, sizeof again, "read again from seq %ld:", next);
    cr_assert(strstr(detail, again) && strstr(detail, "lost 1 time "), "%s (after %ld records)", detail, n);
    cr_assert_eq(metric(&b, "trib_read_link_resume_failed_total{reason=\"link\"}"), 1);
    cr_assert_eq(metric(&b, LINK_READS), 1);
}

/* Over a link TCP is the flow control: a client that pauses stops the owner's thread in its send.
 * Within --link-send-ms (8 s here; 10 min by default) the read goes on whole once the client
 * reads again; paused beyond it, the read ends with owner_lost and the owner counts the link lost. */
static char *read_rest(int fd, size_t *len)
{
    size_t cap = 64 << 20, n = 0;
    char *b = malloc(cap);
    cr_assert_not_null(b);
    read_to_end(fd, &b, &cap, &n);
    *len = n;
    return b;
}

static int paused_get_as(h_node_t *b, const char *token)
{
    int fd = h_slow_get(b, RECORDS_PATH, token);
    cr_assert_geq(fd, 0, "cannot reach %s", b->domain);
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static int paused_get(h_node_t *b) { return paused_get_as(b, b->token); }

/* The rest of the response on fd (closed after) as records from id 1: their count, and the error
 * line after them in kind and detail ("" without one); asserts that is what the body is. */
static long records_of_rest(int fd, char *kind, size_t kindlen, char *detail, size_t detlen)
{
    size_t len;
    char *resp = read_rest(fd, &len);
    close(fd);
    long n, next;
    int ok = records_then(resp, len, 1, &n, &next, kind, kindlen, detail, detlen);
    free(resp);
    cr_assert(ok, "%s", detail);
    return n;
}

Test(linkread, a_paused_client_keeps_its_read_within_the_send_timeout)
{
    h_node_t a, b;
    pair(&a, &b, 0, "--link-send-ms", "8000", NULL, NULL);
    long nrec = post_beyond_sockets(&a, 1);
    /* paused 1 s (an eighth of the timeout: margin for a loaded machine), then read: whole */
    int fd = paused_get(&b);
    wait_metric(&a, "trib_link_requests_total", 1, 10000);
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);        /* the client's pause: the scenario, not a synchronisation */
    size_t len;
    char *resp = read_rest(fd, &len);
    close(fd);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += resp[i] == '\n';
    int whole = len > 2 && strstr(resp, "\r\n\r\n") && !strstr(resp, "owner_lost");
    free(resp);
    cr_assert(whole, "a client paused 1 s lost its read");
    cr_assert_geq(lines, (size_t)nrec, "%zu lines of %ld records", lines, nrec);
    cr_assert_eq(metric(&a, "trib_link_lost_total"), 0);
    cr_assert_eq(metric(&b, "trib_read_link_resumed_total"), 0, "the link was replaced");
}

/* Paused longer than HTTP's idle timeout (15 s, node/http.c HTTP_IDLE_S), a range read's client
 * keeps its read, routed and direct: its connection has --read-pause-ms (2 min by default) while
 * the read goes on. (It was closed after 15 s in the middle of a record, with no error line.) */
Test(linkread, a_client_paused_past_the_http_idle_timeout_keeps_its_read_routed_and_direct, .timeout = 240)
{
    h_node_t a, b;
    pair(&a, &b, 0, "--link-send-ms", "60000", NULL, NULL);
    long nrec = post_beyond_sockets(&a, 1);
    int routed = paused_get(&b), direct = paused_get(&a);
    wait_metric(&a, "trib_link_requests_total", 1, 10000);
    struct timespec ts = {25, 0};
    nanosleep(&ts, NULL);        /* the clients' pause: the scenario, not a synchronisation */
    char kind[64], detail[600];
    long n = records_of_rest(routed, kind, sizeof kind, detail, sizeof detail);
    cr_assert_str_eq(kind, "", "the routed read ended with %s: %s (after %ld records)", kind, detail, n);
    cr_assert_eq(n, nrec, "routed: %ld records of %ld", n, nrec);
    n = records_of_rest(direct, kind, sizeof kind, detail, sizeof detail);
    cr_assert_str_eq(kind, "", "the direct read ended with %s: %s (after %ld records)", kind, detail, n);
    cr_assert_eq(n, nrec, "direct: %ld records of %ld", n, nrec);
    cr_assert_eq(metric(&a, "trib_link_lost_total"), 0);
    cr_assert_eq(metric(&b, "trib_read_link_resumed_total"), 0, "the link was replaced");
}

/* Paused beyond --link-send-ms (2 s here) the owner cuts the read's link ("slow"), and the relay,
 * once its client reads on, asks for the rest over a new link, from the record after the last it
 * got: the client gets every record once, in order, with no error line. */
Test(linkread, a_client_paused_beyond_the_send_timeout_gets_its_read_whole_over_a_new_link)
{
    h_node_t a, b;
    pair(&a, &b, 0, "--link-send-ms", "2000", NULL, NULL);
    long nrec = post_beyond_sockets(&a, 1);
    int fd = paused_get(&b);
    wait_metric(&a, "trib_link_requests_total", 1, 10000);   /* over the link */
    /* paused until the owner gave up its send */
    wait_metric(&a, "trib_link_refused_total{reason=\"slow\"}", 1, 30000);
    char kind[64], detail[600];
    long n = records_of_rest(fd, kind, sizeof kind, detail, sizeof detail);
    cr_assert_str_eq(kind, "", "the read ended with %s: %s (after %ld records)", kind, detail, n);
    cr_assert_eq(n, nrec, "%ld records of %ld", n, nrec);
    cr_assert_geq(metric(&b, "trib_read_link_resumed_total"), 1, "the read was not resumed");
    cr_assert_geq(metric(&a, "trib_link_requests_total"), 2, "not asked again over a new link");
    cr_assert_eq(metric(&b, LINK_READS), 1, "a resume counted as another read");
    cr_assert_eq(metric(&b, RELAY_READS), 0);
}

/* A token revoked between the owner's cut and the relay's new request: the owner refuses it, and
 * the read ends with the refusal after the records it had, never goes on silently. */
Test(linkread, a_token_revoked_before_the_resume_ends_the_read_with_the_refusal)
{
    h_node_t a, b;
    pair(&a, &b, 0, "--link-send-ms", "2000", NULL, NULL);
    long nrec = post_beyond_sockets(&a, 1);
    char path[400], err[256];
    identity_t bid;
    snprintf(path, sizeof path, "%s/identity.key", b.dir);
    cr_assert_eq(identity_load_file(path, &bid, err, sizeof err), 0, "%s", err);
    int64_t now = fx_now_ms();
    token_spec_t sp = {.subject = "eve@growth", .kind = TOKEN_KIND_READ, .product = PRODUCT,
                       .issued_ms = now, .expires_ms = now + 3600000};
    char *tok = NULL;
    cr_assert_eq(token_issue(&bid, "growth", &sp, &tok, err, sizeof err), 0, "%s", err);
    identity_wipe(&bid);
    int fd = paused_get_as(&b, tok);
    wait_metric(&a, "trib_link_requests_total", 1, 10000);
    wait_metric(&a, "trib_link_refused_total{reason=\"slow\"}", 1, 30000);
    /* cut; revoked at its issuer, and the owner knows it, before the client reads on */
    char body[4400];
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", tok);
    long st = 0;
    json_t *j = h_call("POST", b.url, "/v1/tokens/revoke", b.token, body, &st);
    json_decref(j);
    cr_assert_eq(st, 200, "revoke: %ld", st);
    cr_assert(h_wait_status(a.url, RECORDS_PATH "?limit=1", tok, 401, 20000), "the owner did not learn the revocation");
    char kind[64], detail[600];
    long n = records_of_rest(fd, kind, sizeof kind, detail, sizeof detail);
    free(tok);
    cr_assert_str_eq(kind, "token_revoked", "the read ended with '%s': %s (after %ld records)", kind, detail, n);
    cr_assert_lt(n, nrec, "the revoked read was served whole");
    cr_assert_eq(metric(&b, "trib_read_link_resume_failed_total{reason=\"refused\"}"), 1);
    cr_assert_eq(metric(&b, "trib_read_link_resumed_total"), 0);
}

/* A client that goes away mid-read leaves the relay's link half-read: the relay closes it (the
 * owner's send fails: counted lost) rather than pooling it, and the next read dials anew. */
Test(linkread, a_client_closing_early_closes_the_link_instead_of_pooling_it)
{
    h_node_t a, b;
    pair(&a, &b, 0, NULL, NULL, NULL, NULL);
    post_beyond_sockets(&a, 1);
    int fd = paused_get(&b);
    char buf[4096];
    cr_assert_gt(read(fd, buf, sizeof buf), 0, "no answer");
    close(fd);                   /* gone, mid-read */
    wait_metric(&a, "trib_link_lost_total", 1, 20000);
    cr_assert_eq(metric(&b, "trib_link_pooled"), 0, "a half-read link went back to the pool");
    double reused = metric(&b, "trib_link_reused_total");
    same_as_direct(&a, &b, RECORDS_PATH "?from=3&limit=5");
    cr_assert_eq(metric(&b, "trib_link_reused_total"), reused, "a half-read link was reused");
    cr_assert_eq(metric(&a, "trib_link_accepted_total"), 2, "the next read did not dial anew");
}

/* Live reads share a feed over the peer transport: a /stream read never opens a link, and is
 * counted on neither path of trib_read_routed_total (a range read's). */
Test(linkread, a_live_read_does_not_use_the_link)
{
    h_node_t a, b;
    pair(&a, &b, 20, NULL, NULL, NULL, NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)b.http_port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char req[4800];
    int len = snprintf(req, sizeof req, "GET /v1/products/" PRODUCT "/stream?from=1 HTTP/1.0\r\nHost: x\r\n"
                       "Authorization: Bearer %s\r\n\r\n", b.token);
    cr_assert_eq(write(fd, req, (size_t)len), len);
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    static char got[1 << 20];
    size_t n = 0;
    while (n < sizeof got - 1 && !strstr(got, "\"id\":20,")) {   /* the 20 records so far, live */
        ssize_t r = read(fd, got + n, sizeof got - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        got[n] = '\0';
    }
    close(fd);
    cr_assert(strstr(got, "\"id\":20,"), "the live read did not deliver: %.200s", got);
    cr_assert_eq(metric(&b, LINK_READS), 0, "a live read went over the link");
    cr_assert_eq(metric(&b, RELAY_READS), 0, "a live read counted as a routed range read");
    cr_assert_eq(metric(&a, "trib_link_accepted_total"), 0, "a live read opened a link");
    cr_assert_eq(metric(&a, "trib_link_requests_total"), 0);
}

/* ------------------------------------------------------------------ hostile links */

Test(linkread, hostile_links_are_refused_counted_and_the_node_serves_on, .timeout = 240)
{
    h_node_t a, b;
    int port = h_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    pair(&a, &b, 100, "--link-listen", listen, "--link-max", "3");
    uint8_t aid[32], open_prologue[32], other[32];
    node_id(&a, aid);
    link_prologue_open("tributary", open_prologue);   /* the tests' federation: the default secret */
    link_prologue_open("another federation", other);
    still_serves(&a, &b);

    /* not a link at all */
    int fd = tcp_to(port);
    const char junk[] = "GET / HTTP/1.0\r\n\r\n\x01\x02\x03 not a link";
    cr_assert_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    cr_assert(closed_by_peer(fd, 5000), "garbage: the owner kept the connection");
    close(fd);
    wait_metric(&a, "trib_link_refused_total{reason=\"garbage\"}", 1, 5000);
    still_serves(&a, &b);

    /* another federation's prologue */
    identity_t me;
    fx_identity(&me);
    link_reason_t why;
    char err[300];
    link_t *l = dial_as(port, aid, &me, me.pk, 32, other, &why, err, sizeof err);
    cr_assert_null(l, "a handshake of another federation completed");
    wait_metric(&a, "trib_link_refused_total{reason=\"handshake\"}", 1, 5000);
    still_serves(&a, &b);

    /* a hello naming another node than the key proven (growth's id, our key) */
    uint8_t bid[32];
    node_id(&b, bid);
    l = dial_as(port, aid, &me, bid, 32, open_prologue, &why, err, sizeof err);
    if (l) {   /* the initiator may finish its half before the refusal: the owner closes at once */
        cr_assert(closed_by_peer(link_fd(l), 5000), "spoofed: the owner kept the link");
        link_close(&l);
    }
    wait_metric(&a, "trib_link_refused_total{reason=\"spoofed\"}", 1, 5000);
    cr_assert_eq(metric(&a, "trib_link_accepted_total"), 1, "a spoofed hello was admitted");
    still_serves(&a, &b);

    /* the same key saying who it is: admitted (the control), accepted once its request decrypts */
    l = dial_as(port, aid, &me, me.pk, 32, open_prologue, &why, err, sizeof err);
    cr_assert_not_null(l, "an honest stranger of the federation: %s", err);
    request_on(l);
    link_close(&l);
    wait_metric(&a, "trib_link_accepted_total", 2, 5000);

    /* silent connections: at most 32 handshakes under way, apart from the links; beyond, closed
     * at once (busy). Each holds its place for the handshake deadline (2 s) only, so under load
     * early ones may time out before the later ones are accepted: 48 in a burst, and what is
     * asserted is that some were refused as busy, at most 16, and every one was refused */
    double busy = metric(&a, "trib_link_refused_total{reason=\"busy\"}");
    double timeouts = metric(&a, "trib_link_refused_total{reason=\"timeout\"}");
    enum { NSILENT = 48 };
    int silent[NSILENT];
    for (int i = 0; i < NSILENT; i++)
        silent[i] = tcp_to(port);
    wait_metric(&a, "trib_link_refused_total{reason=\"busy\"}", busy + 1, 10000);
    long t0 = h_now_ms();
    for (int i = 0; i < NSILENT; i++) {
        cr_assert(closed_by_peer(silent[i], 10000), "a silent connection was not closed");
        close(silent[i]);
    }
    cr_assert(h_now_ms() - t0 < 8000, "silent connections held for %ld ms", h_now_ms() - t0);
    double nbusy = metric(&a, "trib_link_refused_total{reason=\"busy\"}") - busy;
    cr_assert_leq(nbusy, NSILENT - 32, "%g of %d refused as busy: fewer than 32 handshakes were let be", nbusy,
                  (int)NSILENT);
    wait_metric(&a, "trib_link_refused_total{reason=\"timeout\"}", timeouts + NSILENT - nbusy, 5000);
    double links = metric(&b, LINK_READS);
    still_serves(&a, &b);
    cr_assert_eq(metric(&b, LINK_READS), links + 1, "reads no longer go over the link");

    /* admitted links beyond --link-max (3, one of them growth's pooled link perhaps), each of
     * another node (one node holds a quarter of them, 1 at least): busy */
    busy = metric(&a, "trib_link_refused_total{reason=\"busy\"}");
    link_t *held[4] = {0};
    identity_t ids[4];
    int n = 0, over = 0;
    for (; n < 4 && !over; n++) {
        fx_identity(&ids[n]);
        held[n] = dial_as(port, aid, &ids[n], ids[n].pk, 32, open_prologue, &why, err, sizeof err);
        over = !held[n] || !served(held[n]);
    }
    cr_assert(over, "more than --link-max links were served");
    wait_metric(&a, "trib_link_refused_total{reason=\"busy\"}", busy + 1, 5000);
    cr_assert_eq(metric(&a, "trib_link_refused_total{reason=\"per_peer\"}"), 0);
    for (int i = 0; i < n; i++)
        link_close(&held[i]), identity_wipe(&ids[i]);
    still_serves(&a, &b);
    identity_wipe(&me);
}

/* One node id holds 64 admitted links at most (each a thread of the owner's; the owner leaves
 * the per-requester bound of link reads to the link server): the 65th is closed, counted
 * per_peer; another node's link is served meanwhile. */
Test(linkread, one_node_holds_64_links_at_most)
{
    h_node_t a, b;
    int port = h_free_port();
    char listen[64], err[300];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    pair(&a, &b, 10, "--link-listen", listen, NULL, NULL);
    uint8_t aid[32], prologue[32];
    node_id(&a, aid);
    link_prologue_open("tributary", prologue);
    identity_t me, other;
    fx_identity(&me), fx_identity(&other);
    link_reason_t why;
    enum { N = 65 };
    link_t *held[N] = {0};
    for (int i = 0; i < N - 1; i++) {
        held[i] = dial_as(port, aid, &me, me.pk, 32, prologue, &why, err, sizeof err);
        cr_assert_not_null(held[i], "link %d: %s", i, err);
        cr_assert(served(held[i]), "link %d of one node was not served", i);
    }
    held[N - 1] = dial_as(port, aid, &me, me.pk, 32, prologue, &why, err, sizeof err);
    cr_assert(!held[N - 1] || !served(held[N - 1]), "a 65th link of one node was served");
    wait_metric(&a, "trib_link_refused_total{reason=\"per_peer\"}", 1, 5000);
    link_t *l = dial_as(port, aid, &other, other.pk, 32, prologue, &why, err, sizeof err);
    cr_assert_not_null(l, "another node: %s", err);
    cr_assert(served(l), "another node's link was not served");
    link_close(&l);
    for (int i = 0; i < N; i++)
        link_close(&held[i]);
    still_serves(&a, &b);
    identity_wipe(&me), identity_wipe(&other);
}

/* A node's share is a quarter of --link-max (64 at most): with --link-max 8 a node holds 2 links,
 * its third is refused per_peer (the relay told so, sealed), and 3 other nodes hold the other 6
 * (on the old code the first node took all 8: another node's link was refused busy). */
Test(linkread, one_node_holds_a_quarter_of_link_max_at_most)
{
    h_node_t a, b;
    int port = h_free_port();
    char listen[64], err[300];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    pair(&a, &b, 10, "--link-listen", listen, "--link-max", "8");
    uint8_t aid[32], prologue[32];
    node_id(&a, aid);
    link_prologue_open("tributary", prologue);
    enum { NODES = 4, SHARE = 2 };
    identity_t ids[NODES];
    link_t *held[NODES][SHARE + 1] = {{0}};
    link_reason_t why;
    for (int k = 0; k < NODES; k++) {
        fx_identity(&ids[k]);
        for (int i = 0; i < SHARE; i++) {   /* one after another: each admitted before the next comes */
            held[k][i] = dial_as(port, aid, &ids[k], ids[k].pk, 32, prologue, &why, err, sizeof err);
            cr_assert_not_null(held[k][i], "node %d, link %d: %s", k, i, err);
            cr_assert(served(held[k][i]), "node %d's link %d (of its share of %d) was not served", k, i, SHARE);
        }
        if (k == 0) {
            held[0][SHARE] = dial_as(port, aid, &ids[0], ids[0].pk, 32, prologue, &why, err, sizeof err);
            cr_assert(!held[0][SHARE] || !served(held[0][SHARE]), "a node was served more than a quarter of "
                      "--link-max");
            wait_metric(&a, "trib_link_refused_total{reason=\"per_peer\"}", 1, 5000);
        }
    }
    cr_assert_eq(metric(&a, "trib_link_refused_total{reason=\"busy\"}"), 0);
    for (int k = 0; k < NODES; k++) {
        for (int i = 0; i <= SHARE; i++)
            link_close(&held[k][i]);
        identity_wipe(&ids[k]);
    }
    still_serves(&a, &b);
}

/* An attacker replays a recorded message 1 (growth's... here a stranger's, captured off the wire):
 * link_accept completes (IK cannot tell), but the replayer can send no frame that decrypts. The
 * owner gives the first request the handshake deadline (2 s), not the 30 s idle, then frees the
 * slot, counts no_request, and never counts the link accepted. */
Test(linkread, a_replayed_message_1_frees_its_slot_within_the_handshake_deadline_and_is_counted)
{
    h_node_t a, b;
    int port = h_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    pair(&a, &b, 10, "--link-listen", listen, NULL, NULL);
    uint8_t aid[32], prologue[32], spk[32];
    node_id(&a, aid);
    cr_assert_eq(crypto_sign_ed25519_pk_to_curve25519(spk, aid), 0);
    link_prologue_open("tributary", prologue);
    identity_t victim;
    fx_identity(&victim);
    /* the victim's message 1, captured: its dial to a socket nobody answers times out */
    int fds[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    link_keys_t k;
    memcpy(k.pk, victim.curve_pk, 32), memcpy(k.sk, victim.curve_sk, 32), memcpy(k.prologue, prologue, 32);
    link_reason_t why;
    char err[300];
    cr_assert_null(link_dial(fds[0], &k, spk, victim.pk, 32, LINK_MAX_FRAME, 100, &why, err, sizeof err));
    uint8_t m1[600];
    ssize_t n = read(fds[1], m1, sizeof m1);
    close(fds[1]);
    cr_assert_gt(n, 10, "nothing captured");
    double accepted = metric(&a, "trib_link_accepted_total");
    for (int rep = 1; rep <= 2; rep++) {   /* the attacker has only the bytes */
        int fd = tcp_to(port);
        long t0 = h_now_ms();
        cr_assert_eq(write(fd, m1, (size_t)n), n);
        cr_assert(closed_by_peer(fd, 20000), "replay %d: the owner kept the link", rep);
        long took = h_now_ms() - t0;
        close(fd);
        cr_assert_lt(took, 2000 + 4000, "replay %d: the slot was held %ld ms (handshake deadline 2000)", rep, took);
        wait_metric(&a, "trib_link_refused_total{reason=\"no_request\"}", rep, 5000);
    }
    cr_assert_eq(metric(&a, "trib_link_accepted_total"), accepted, "a replayed message 1 was counted accepted");
    cr_assert_eq(metric(&a, "trib_link_open"), 0);
    still_serves(&a, &b);
    identity_wipe(&victim);
}

/* A relay's request frame past the owner's receive limit (LINK_REQ_MAX: requests are small; an
 * admitted relay could otherwise make every owner link hold a LINK_MAX_FRAME buffer): refused
 * before its body is read, counted, and the node serves on. */
Test(linkread, a_request_frame_past_the_owners_limit_is_refused_and_counted)
{
    h_node_t a, b;
    int port = h_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    pair(&a, &b, 10, "--link-listen", listen, NULL, NULL);
    uint8_t aid[32], prologue[32];
    node_id(&a, aid);
    link_prologue_open("tributary", prologue);
    identity_t me;
    fx_identity(&me);
    link_reason_t why;
    char err[300];
    link_t *l = dial_as(port, aid, &me, me.pk, 32, prologue, &why, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    size_t n = LINK_REQ_MAX + 1;
    uint8_t *p = link_frame(l, n, &why);
    cr_assert_not_null(p);
    memset(p, 0, n);
    p[0] = LINK_REQ;
    link_send_frame(l, n, 3000, &why);   /* the owner may close before it took all of it */
    cr_assert(closed_by_peer(link_fd(l), 5000), "oversize: the owner kept the link");
    link_close(&l);
    wait_metric(&a, "trib_link_refused_total{reason=\"oversize\"}", 1, 5000);
    cr_assert_eq(metric(&a, "trib_link_refused_total{reason=\"bad_frame\"}"), 0, "its body was read");
    still_serves(&a, &b);
    identity_wipe(&me);
}

/* A range request on l for the ledger from its first record, as many as there are (token: the
 * consumer's), sent whole. */
static void send_range(link_t *l, uint64_t stream_id, const char *token)
{
    Trib__ReadRequest q = TRIB__READ_REQUEST__INIT;
    q.stream_id = stream_id;
    q.product_id = PRODUCT;
    q.from_seq = 1;
    q.credit = 1;
    q.token = (ProtobufCBinaryData){strlen(token), (uint8_t *)token};
    link_reason_t why;
    size_t n = 1 + trib__read_request__get_packed_size(&q);
    uint8_t *f = link_frame(l, n, &why);
    cr_assert_not_null(f);
    f[0] = LINK_REQ;
    trib__read_request__pack(&q, f + 1);
    cr_assert_eq(link_send_frame(l, n, 3000, &why), 0, "send: %s", link_reason_name(why));
}

/* ------------------------------------------------------------------ slow relays, refusals, idle links */

/* A test-side link whose socket takes little at a time (a receive buffer of 4 KiB), to read slowly. */
static link_t *dial_small_window(int port, const uint8_t server_id[32], const identity_t *me)
{
    int fd = h_connect_small(port);
    cr_assert_geq(fd, 0, "cannot reach the owner's link port");
    link_keys_t k;
    memcpy(k.pk, me->curve_pk, 32), memcpy(k.sk, me->curve_sk, 32);
    link_prologue_open("tributary", k.prologue);
    uint8_t spk[32];
    cr_assert_eq(crypto_sign_ed25519_pk_to_curve25519(spk, server_id), 0);
    link_reason_t why;
    char err[300];
    link_t *l = link_dial(fd, &k, spk, me->pk, 32, LINK_MAX_FRAME, 3000, &why, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    return l;
}

/* A relay (here an admitted stranger) that takes a long read at ~400 KiB/s, 4 KiB every 10 ms, fast
 * enough that every 1 MiB batch leaves within --link-send-ms (8 s: what alone bounded a read before,
 * so such a trickle held the owner's thread for as long as it liked), but below --link-min-rate
 * (1 MiB/s here): it falls behind by a second every ~2.5 s, and once 8 s behind its link is closed,
 * counted slow (and lost), logged; not before 8 s (the allowance a paused client is given), and the
 * node serves a normal read on. */
Test(linkread, a_relay_trickling_below_the_min_rate_loses_its_link_as_slow, .timeout = 240)
{
    h_node_t a, b;
    int port = h_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    cr_assert_eq(h_node_start(&a, "payments", "--link-listen", listen, "--link-send-ms", "8000", "--link-min-rate",
                              "1048576", FAST, NULL), 0, "payments did not start");
    cr_assert_eq(h_node_start(&b, "growth", "--seed", a.peer, FAST, NULL), 0, "growth did not start");
    cr_assert(h_wait_member(b.url, "payments", "alive", NULL, 15000), "growth does not see payments");
    publish_ledger(&a);
    post_beyond_sockets(&a, 1);   /* 32 MiB or more: 80 s or more at the trickle's rate */
    cr_assert(h_wait_status(b.url, "/v1/products/" PRODUCT, NULL, 200, 15000), "growth did not learn the ledger");
    uint8_t aid[32];
    node_id(&a, aid);
    identity_t me;
    fx_identity(&me);
    link_t *l = dial_small_window(port, aid, &me);
    long t0 = h_now_ms();
    send_range(l, 5, a.token);
    static char buf[4096];
    size_t got = 0;
    int closed = 0;
    struct timespec tick = {0, 10 * 1000000L};   /* the trickle's pace: the scenario, not a synchronisation */
    while (!closed && h_now_ms() - t0 < 45000) {
        nanosleep(&tick, NULL);
        ssize_t r = recv(link_fd(l), buf, sizeof buf, 0);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            closed = 1;
    }
    long took = h_now_ms() - t0;
    link_close(&l);
    cr_assert(closed, "a relay taking its read at %zu bytes/s held its link for %ld ms (%zu bytes)",
              got * 1000 / (size_t)took, took, got);
    cr_assert_geq(took, 8000, "the link was closed after %ld ms, before the 8 s allowance", took);
    cr_assert_lt(got, (size_t)30 << 20, "the read was served whole (%zu bytes)", got);
    wait_metric(&a, "trib_link_refused_total{reason=\"slow\"}", 1, 5000);
    cr_assert_geq(metric(&a, "trib_link_lost_total"), 1);
    char *log = h_read_file(a.log, NULL);
    int logged = log && strstr(log, "refused a link (slow)");
    free(log);
    cr_assert(logged, "the slow relay was not logged");
    still_serves(&a, &b);
    cr_assert_eq(metric(&a, "trib_link_refused_total{reason=\"slow\"}"), 1, "a normal read counted slow");
    identity_wipe(&me);
}

/* An owner over --link-max answers the relay's request with its refusal, sealed under the link's
 * keys: the relay counts busy (not a failed dial), reads over the peer transport meanwhile, and
 * dials again after the owner's retry-after (1 s), not after the 10 s a failure costs. */
Test(linkread, an_owner_at_its_link_limit_says_busy_and_the_relay_comes_back_after_its_retry_after)
{
    h_node_t a, b;
    int port = h_free_port();
    char listen[64], err[300];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    pair(&a, &b, 20, "--link-listen", listen, "--link-max", "1");
    uint8_t aid[32], prologue[32];
    node_id(&a, aid);
    link_prologue_open("tributary", prologue);
    identity_t me;
    fx_identity(&me);
    link_reason_t why;
    link_t *held = dial_as(port, aid, &me, me.pk, 32, prologue, &why, err, sizeof err);   /* the only slot */
    cr_assert_not_null(held, "%s", err);
    request_on(held);
    same_as_direct(&a, &b, RECORDS_PATH "?from=3&limit=5");   /* over the peer transport */
    long refused_at = h_now_ms();
    cr_assert_eq(metric(&b, "trib_link_dial_failed_total{reason=\"busy\"}"), 1, "the relay did not count busy");
    cr_assert_eq(metric(&b, "trib_link_dial_failed_total{reason=\"no_answer\"}"), 0);
    cr_assert_eq(metric(&b, "trib_link_dial_failed_total{reason=\"handshake\"}"), 0);
    cr_assert_eq(metric(&b, LINK_READS), 0);
    cr_assert_eq(metric(&b, RELAY_READS), 1);
    wait_metric(&a, "trib_link_refused_total{reason=\"busy\"}", 1, 5000);
    link_close(&held);           /* the slot frees */
    wait_metric(&a, "trib_link_open", 0, 5000);
    while (metric(&b, LINK_READS) == 0 && h_now_ms() - refused_at < 8000) {
        struct timespec ts = {0, 200 * 1000000L};   /* a read every 200 ms: the client's pace */
        nanosleep(&ts, NULL);
        same_as_direct(&a, &b, RECORDS_PATH "?from=3&limit=5");
    }
    long back = h_now_ms() - refused_at;
    cr_assert_eq(metric(&b, LINK_READS), 1, "no read went over the link within %ld ms of the owner's busy", back);
    cr_assert_eq(metric(&b, "trib_link_dial_failed_total{reason=\"busy\"}"), 1);
    identity_wipe(&me);
}

/* Opens n links (into l, left open) to the owner whose link server listens on port, as me, and
 * reads the whole ledger over each with token (stream 10 + i): 3 batches at least, none refused. */
static void read_whole_over(int port, const uint8_t aid[32], const uint8_t prologue[32], const identity_t *me,
                            const char *token, link_t **l, int n)
{
    char err[300];
    link_reason_t why;
    for (int i = 0; i < n; i++) {
        l[i] = dial_as(port, aid, me, me->pk, 32, prologue, &why, err, sizeof err);
        cr_assert_not_null(l[i], "link %d: %s", i, err);
        send_range(l[i], 10 + (uint64_t)i, token);
        int done = 0, batches = 0;
        while (!done) {
            const uint8_t *f;
            size_t len;
            cr_assert_eq(link_recv(l[i], &f, &len, 10000, &why), 1, "link %d: %s", i, link_reason_name(why));
            Trib__ReadBatch *bt = len > 1 && f[0] == LINK_BATCH ? trib__read_batch__unpack(NULL, len - 1, f + 1) : NULL;
            cr_assert_not_null(bt);
            cr_assert_eq(bt->status, 0, "link %d: refused", i);
            done = bt->done;
            batches += bt->batch_no != 0;
            trib__read_batch__free_unpacked(bt, NULL);
        }
        cr_assert_geq(batches, 3, "link %d: %d batches", i, batches);
    }
}

/* Idle links hold no batch's room, on either end: 24 links that each read ~3 MiB (1 MiB batches)
 * and then idle hold less than 4 KiB of buffers each on the owner (each kept its batch's frame and
 * page before: ~2 MiB a link, half a GiB at --link-max), and the relay's pooled link after a routed
 * read of the same holds less than 4 KiB (it kept its receive buffer, a batch's size, before). */
Test(linkread, idle_links_keep_no_batch_buffers_on_either_end, .timeout = 240)
{
    h_node_t a, b;
    int port = h_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    pair(&a, &b, 0, "--link-listen", listen, NULL, NULL);
    post_records(&a, 1, 3000, 1000);
    uint8_t aid[32], prologue[32];
    node_id(&a, aid);
    link_prologue_open("tributary", prologue);
    identity_t me;
    fx_identity(&me);
    enum { N = 24 };
    link_t *l[N];
    read_whole_over(port, aid, prologue, &me, a.token, l, N);
    wait_metric(&a, "trib_link_open", N, 5000);
    double held = metric(&a, "trib_link_idle_buffer_bytes");
    cr_assert_lt(held, N * 4096.0, "%d idle links hold %.0f bytes of buffers on the owner", N, held);
    for (int i = 0; i < N; i++)
        link_close(&l[i]);
    raw_t r;
    raw_get(&b, RECORDS_PATH, b.token, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_gt(r.len, (size_t)2 << 20, "%zu bytes", r.len);
    free(r.body);
    cr_assert_eq(metric(&b, LINK_READS), 1);
    cr_assert_eq(metric(&b, "trib_link_pooled"), 1, "the relay's link did not go back to its pool");
    held = metric(&b, "trib_link_pooled_buffer_bytes");
    cr_assert_lt(held, 4096.0, "the relay's pooled link holds %.0f bytes of buffers", held);
    identity_wipe(&me);
}

#ifdef __SANITIZE_ADDRESS__
#define RSS_SAYS 0   /* ASan's allocator keeps freed memory in quarantine: RSS says nothing there */
#else
#define RSS_SAYS 1
#endif

typedef struct {
    h_node_t *n;
    long bound, last;            /* KiB */
} rss_below_t;

static int rss_below(void *ctx)
{
    rss_below_t *c = ctx;
    c->last = h_rss_anon_kib(c->n->pid);
    return c->last > 0 && c->last <= c->bound;
}

static int no_link_open(void *ctx) { return metric(ctx, "trib_link_open") == 0; }

/* Many links at once, each of which built full 1 MiB batches on its own thread, then idle: the
 * owner's RssAnon comes back within 16 MiB of what it was before them, while they stay open and
 * once they closed. (glibc gave each thread its own arena, up to 16 here, each keeping what its
 * links freed: on the old code ~+100 MiB stayed.) The links are the test's own, held open, so the
 * threads live at once however loaded the machine is. */
Test(linkread, an_owner_gives_back_the_memory_of_many_links_once_they_idle, .timeout = 240)
{
    h_node_t a;
    int port = h_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    cr_assert_eq(h_node_start(&a, "payments", "--link-listen", listen, FAST, NULL), 0, "payments did not start");
    publish_ledger(&a);
    post_records(&a, 1, 3000, 1000);   /* ~3 MB: batches of 1 MiB */
    uint8_t aid[32], prologue[32];
    node_id(&a, aid);
    link_prologue_open("tributary", prologue);
    identity_t me;
    fx_identity(&me);
    long rss0 = h_rss_anon_kib(a.pid);
    cr_assert_gt(rss0, 0);
    enum { N = 32 };
    link_t *l[N];
    read_whole_over(port, aid, prologue, &me, a.token, l, N);
    wait_metric(&a, "trib_link_open", N, 5000);
    rss_below_t c = {&a, rss0 + 16 * 1024, 0};
    cr_assert(!RSS_SAYS || h_wait(rss_below, &c, 10000),
              "%d idle links: the owner's RssAnon is %ld KiB, %+ld KiB over its %ld before", N, c.last, c.last - rss0, rss0);
    for (int i = 0; i < N; i++)
        link_close(&l[i]);
    cr_assert(h_wait(no_link_open, &a, 10000), "the owner still serves %g links", metric(&a, "trib_link_open"));
    cr_assert(!RSS_SAYS || h_wait(rss_below, &c, 10000),
              "links closed: the owner's RssAnon is %ld KiB, %+ld KiB over its %ld before", c.last, c.last - rss0, rss0);
    cr_log_info("owner RssAnon: %ld KiB before, %ld KiB after %d links", rss0, h_rss_anon_kib(a.pid), N);
    identity_wipe(&me);
}

/* Many routed reads at once through a relay, each over its own data link with 1 MiB frames: once
 * they end, the relay's RssAnon comes back within 24 MiB of what it was before them (the freed
 * frame buffers stayed in its malloc arenas: on the old code +32 MiB). Not less: malloc_trim cannot
 * return the top of the second arena, which keeps up to TRIM_KEEP (16 MiB, gossip/reads.c) by
 * design, and which thread allocated there varies from run to run (+0.5 to +13.7 MiB seen). The
 * reads are the test's own requests, all sent before any is read, so they are open at once however
 * loaded the machine is; each is read to its end. */
Test(linkread, a_relay_gives_back_the_memory_of_many_reads_once_they_end, .timeout = 240)
{
    h_node_t a, b;
    cr_assert_eq(h_node_start(&a, "payments", STEADY, NULL), 0, "payments did not start");
    cr_assert_eq(h_node_start(&b, "growth", "--seed", a.peer, STEADY, NULL), 0, "growth did not start");
    pair_joined(&a, &b, 0);
    post_records(&a, 1, 3000, 1000);   /* ~3 MB: frames of 1 MiB */
    raw_t r;
    raw_get(&b, RECORDS_PATH, b.token, &r);   /* one read first: the relay's own set-up is not counted */
    cr_assert_eq(r.status, 200);
    free(r.body);
    long rss0 = h_rss_anon_kib(b.pid);
    cr_assert_gt(rss0, 0);
    enum { N = 48 };
    int fd[N];
    size_t got[N];
    static char head[N][320];   /* each answer's first bytes: what a short one said */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)b.http_port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    char req[4800];
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n",
                       RECORDS_PATH, b.token);
    for (int i = 0; i < N; i++) {
        fd[i] = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_eq(connect(fd[i], (struct sockaddr *)&sa, sizeof sa), 0);
        cr_assert_eq(write(fd[i], req, (size_t)len), len);
        got[i] = 0;
    }
    static char sink[1 << 16];
    for (int open = N; open > 0;) {   /* every read to its end (Connection: close) */
        struct pollfd p[N];
        for (int i = 0; i < N; i++)
            p[i] = (struct pollfd){.fd = fd[i], .events = POLLIN};
        cr_assert_gt(poll(p, N, 30000), 0, "%d routed reads stalled", open);
        for (int i = 0; i < N; i++) {
            if (fd[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(fd[i], sink, sizeof sink);
            if (n > 0) {
                if (got[i] < sizeof head[i] - 1)
                    memcpy(head[i] + got[i], sink, (size_t)n < sizeof head[i] - 1 - got[i] ? (size_t)n : sizeof head[i] - 1 - got[i]);
                got[i] += (size_t)n;
                continue;
            }
            close(fd[i]);
            fd[i] = -1;
            open--;
        }
    }
    for (int i = 0; i < N; i++)
        cr_assert_gt(got[i], (size_t)2 << 20, "read %d got %zu bytes: %s", i, got[i], head[i]);
    cr_assert_geq(metric(&b, LINK_READS), N + 1, "the reads did not go over data links");
    rss_below_t c = {&b, rss0 + 24 * 1024, 0};
    cr_assert(!RSS_SAYS || h_wait(rss_below, &c, 10000),
              "%d routed reads ended: the relay's RssAnon is %ld KiB, %+ld KiB over its %ld before", N, c.last,
              c.last - rss0, rss0);
    cr_log_info("relay RssAnon: %ld KiB before, %ld KiB after %d reads", rss0, h_rss_anon_kib(b.pid), N);
}

/* CPU seconds (user + system) process pid has used, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *st = h_read_file(path, NULL);
    cr_assert_not_null(st);
    const char *p = strrchr(st, ')');
    long ut = 0, sy = 0;
    cr_assert(p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &sy) == 2);
    free(st);
    return ut + sy;
}

/* Out of descriptors (EMFILE), the acceptor waits instead of spinning on a connection it cannot
 * take: counted (accept), and once descriptors are back the link serves again. */
Test(linkread, an_owner_out_of_descriptors_does_not_spin_and_serves_again_after)
{
    h_node_t a, b;
    int port = h_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    pair(&a, &b, 10, "--link-listen", listen, NULL, NULL);
    /* the lowest descriptor number free in the owner: its limit, so that nothing more opens */
    char path[64];
    int lowest = 0;
    for (;; lowest++) {
        snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)a.pid, lowest);
        if (access(path, F_OK) != 0)
            break;
    }
    struct rlimit old, low = {.rlim_cur = (rlim_t)lowest, .rlim_max = RLIM_INFINITY};
    cr_assert_eq(prlimit(a.pid, RLIMIT_NOFILE, NULL, &old), 0);
    low.rlim_max = old.rlim_max;
    cr_assert_eq(prlimit(a.pid, RLIMIT_NOFILE, &low, NULL), 0, "prlimit: %s", strerror(errno));
    int fd = tcp_to(port);       /* queued: the owner cannot accept it */
    long c0 = cpu_ticks(a.pid), t0 = h_now_ms();
    struct timespec ts = {1, 500000000};
    nanosleep(&ts, NULL);        /* a measuring window, not a synchronisation */
    long used = cpu_ticks(a.pid) - c0, ms = h_now_ms() - t0;
    cr_assert_eq(prlimit(a.pid, RLIMIT_NOFILE, &old, NULL), 0);
    long hz = sysconf(_SC_CLK_TCK);
    cr_assert_lt(used * 1000 / hz, ms / 2, "the owner used %ld ms of CPU in %ld ms out of descriptors", used * 1000 / hz,
                 ms);
    close(fd);
    wait_metric(&a, "trib_link_refused_total{reason=\"accept\"}", 1, 5000);
    double links = metric(&b, LINK_READS);
    still_serves(&a, &b);
    cr_assert_eq(metric(&b, LINK_READS), links + 1, "reads no longer go over the link");
}

/* ------------------------------------------------------------------ chartered */

static identity_t R1, R2;
static charter_t ch;
static char work[64], chpath[128];

static void fed_setup(void)
{
    char err[300];
    cr_assert_geq(sodium_init(), 0);
    fx_identity(&R1), fx_identity(&R2);
    const identity_t *roots[] = {&R1, &R2};
    cr_assert_eq(fx_charter(&ch, roots, 2, 2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(fx_charter_dir(&ch, "linkread", work, sizeof work, chpath, sizeof chpath, err, sizeof err), 0, "%s",
                 err);
}

static void fed_teardown(void)
{
    h_cleanup_all();
    charter_free(&ch);
    fx_rmdir(work);
}

/* A data dir with an identity and a certificate of domain for it (work/NAME.cert). */
static void certified(const char *name, const char *domain, char *dir, size_t cap, identity_t *id)
{
    char err[300];
    snprintf(dir, cap, "%s/%s", work, name);
    cr_assert_eq(mkdir(dir, 0700), 0, "mkdir %s", dir);
    int created = 0;
    cr_assert_eq(identity_load_or_create(dir, id, &created, err, sizeof err), 0, "%s", err);
    const identity_t *const roots[] = {&R1, &R2};
    cert_t c;
    int64_t t = fx_now_ms();
    cr_assert_eq(cert_issue(&ch, domain, id->pk, t - DAY_MS, t + 90 * DAY_MS, 0, roots, 2, &c, err, sizeof err), 0,
                 "%s", err);
    char path[256];
    snprintf(path, sizeof path, "%s/%s.cert", work, name);
    json_t *j = cert_to_json(&c);
    cr_assert_eq(trust_file_write(path, j, err, sizeof err), 0, "%s", err);
    json_decref(j);
    cert_free(&c);
}

Test(linkread, chartered_links_admit_certified_keys_only, .init = fed_setup, .fini = fed_teardown, .timeout = 240)
{
    char da[256], db[256], ca[300], cb[300], listen[64];
    identity_t ia, ib;
    certified("a", "payments", da, sizeof da, &ia);
    certified("b", "growth", db, sizeof db, &ib);
    snprintf(ca, sizeof ca, "%s/a.cert", work);
    snprintf(cb, sizeof cb, "%s/b.cert", work);
    int port = h_free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    h_node_t a, b;
    cr_assert_eq(h_node_start(&a, "payments", "--data", da, "--charter", chpath, "--cert", ca, "--link-listen", listen,
                              FAST, NULL),
                 0, "payments did not start; see %s", a.log);
    char seed[200];
    snprintf(seed, sizeof seed, "%s@%s", ia.hex, a.peer);
    cr_assert_eq(h_node_start(&b, "growth", "--data", db, "--charter", chpath, "--cert", cb, "--seed", seed, FAST,
                              NULL),
                 0, "growth did not start; see %s", b.log);
    cr_assert(h_wait_member(b.url, "payments", "alive", NULL, 20000), "growth does not see payments");
    publish_ledger(&a);
    post_records(&a, 1, 500, 80);
    cr_assert(h_wait_status(b.url, "/v1/products/" PRODUCT, NULL, 200, 20000), "growth did not learn the ledger");
    same_as_direct(&a, &b, RECORDS_PATH);
    cr_assert_eq(metric(&b, LINK_READS), 1, "a chartered routed read did not go over the link");
    cr_assert_eq(metric(&a, "trib_link_accepted_total"), 1);

    /* a key the roots never certified, saying who it is, in the charter's federation */
    identity_t me;
    fx_identity(&me);
    uint8_t fed[32], open_prologue[32];
    link_prologue_charter(ch.fed_id, fed);
    link_prologue_open(NULL, open_prologue);
    link_reason_t why;
    char err[300];
    link_t *l = dial_as(port, ia.pk, &me, me.pk, 32, fed, &why, err, sizeof err);
    if (l) {
        cr_assert(closed_by_peer(link_fd(l), 5000), "not admitted: the owner kept the link");
        link_close(&l);
    }
    wait_metric(&a, "trib_link_refused_total{reason=\"not_admitted\"}", 1, 5000);
    /* a certified key (growth's) naming itself by its id with the sign bit flipped: the same X25519
     * key, another id (it would go to the audit as the entry node) */
    uint8_t flipped[32];
    memcpy(flipped, ib.pk, 32);
    flipped[31] ^= 0x80;
    l = dial_as(port, ia.pk, &ib, flipped, 32, fed, &why, err, sizeof err);
    if (l) {
        cr_assert(closed_by_peer(link_fd(l), 5000), "a flipped id: the owner kept the link");
        link_close(&l);
    }
    wait_metric(&a, "trib_link_refused_total{reason=\"spoofed\"}", 1, 5000);
    /* the open federation's prologue does not open a chartered owner's link */
    l = dial_as(port, ia.pk, &me, me.pk, 32, open_prologue, &why, err, sizeof err);
    cr_assert_null(l, "an open-mode handshake completed with a chartered owner");
    wait_metric(&a, "trib_link_refused_total{reason=\"handshake\"}", 1, 5000);
    cr_assert_eq(metric(&a, "trib_link_accepted_total"), 1, "a stranger was admitted");
    still_serves(&a, &b);
    cr_assert_eq(metric(&b, LINK_READS), 2);
    identity_wipe(&me), identity_wipe(&ia), identity_wipe(&ib);
}

/* A relay revoked while it holds a link reads no more over it: the owner asks its trust store
 * again before every request (as the peer transport's zap does for every message) and once a second
 * while a read goes on, closes the link and counts not_admitted; a read under way ends, and the
 * relay's later reads get no records over any link. */
Test(linkread, a_relay_revoked_while_holding_a_link_reads_no_more_over_it, .init = fed_setup, .fini = fed_teardown,
     .timeout = 240)
{
    char da[256], db[256], ca[300], cb[300], listen[64], err[300];
    identity_t ia, ib;
    certified("a", "payments", da, sizeof da, &ia);
    certified("b", "growth", db, sizeof db, &ib);
    snprintf(ca, sizeof ca, "%s/a.cert", work);
    snprintf(cb, sizeof cb, "%s/b.cert", work);
    int port = h_free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    h_node_t a, b;
    cr_assert_eq(h_node_start(&a, "payments", "--data", da, "--charter", chpath, "--cert", ca, "--link-listen", listen,
                              FAST, NULL), 0, "payments did not start");
    char seed[200];
    snprintf(seed, sizeof seed, "%s@%s", ia.hex, a.peer);
    cr_assert_eq(h_node_start(&b, "growth", "--data", db, "--charter", chpath, "--cert", cb, "--seed", seed, FAST,
                              NULL), 0, "growth did not start");
    cr_assert(h_wait_member(b.url, "payments", "alive", NULL, 20000), "growth does not see payments");
    publish_ledger(&a);
    post_records(&a, 1, 50, 80);
    cr_assert(h_wait_status(b.url, "/v1/products/" PRODUCT, NULL, 200, 20000), "growth did not learn the ledger");
    raw_t r;
    raw_get(&b, RECORDS_PATH "?limit=5", a.token, &r);
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    free(r.body);
    cr_assert_eq(metric(&b, LINK_READS), 1);
    cr_assert_eq(metric(&b, "trib_link_pooled"), 1, "growth's link did not go back to its pool");
    /* growth's key holds a second link of its own, admitted before the revocation */
    uint8_t fed[32];
    link_prologue_charter(ch.fed_id, fed);
    link_reason_t why;
    link_t *held = dial_as(port, ia.pk, &ib, ib.pk, 32, fed, &why, err, sizeof err);
    cr_assert_not_null(held, "growth's own link before the revocation: %s", err);
    request_on(held);            /* live, and served: a refusal (no token) */
    /* and a third with a read under way when the revocation lands: a range larger than the
     * sockets hold, not read on until the owner knows of the revocation */
    post_beyond_sockets(&a, 51);
    link_t *mid = dial_as(port, ia.pk, &ib, ib.pk, 32, fed, &why, err, sizeof err);
    cr_assert_not_null(mid, "growth's third link before the revocation: %s", err);
    send_range(mid, 78, a.token);
    const uint8_t *fr;
    size_t len;
    cr_assert_eq(link_recv(mid, &fr, &len, 10000, &why), 1, "the long read did not start: %s", link_reason_name(why));
    const identity_t *roots[] = {&R1, &R2};
    revocation_t rv;
    cr_assert_eq(revocation_issue(&ch, 1, 0, ib.pk, fx_now_ms(), "test", roots, 2, &rv, err, sizeof err), 0, "%s", err);
    char path[300];
    snprintf(path, sizeof path, "%s/rev.json", work);
    json_t *j = revocation_to_json(&rv);
    cr_assert_eq(trust_file_write(path, j, err, sizeof err), 0, "%s", err);
    json_decref(j);
    revocation_free(&rv);
    char *o = NULL, *e = NULL;
    cr_assert_eq(h_trib(&a, NULL, &o, &e, "fed", "submit", path, "--node", a.url, NULL), 0, "%s %s", o, e);
    free(o), free(e);
    wait_metric(&a, "trib_trust_refused_total{kind=\"connect\",reason=\"revoked\"}", 1, 15000);
    /* the read under way ends within seconds (what the sockets held, a second's batches more), not
     * whole. The client reads slowly, 1 MiB per 150 ms (the scenario, not a synchronisation: read
     * at once, a revocation landing within the owner's first second went unseen till the end) */
    long t0 = h_now_ms();
    int rc, done = 0;
    size_t got = 0, paced = 0;
    struct timespec pause = {0, 150 * 1000000L};
    while (!done && (rc = link_recv(mid, &fr, &len, 10000, &why)) == 1) {
        if ((paced += len) >= 1 << 20) {
            paced = 0;
            nanosleep(&pause, NULL);
        }
        Trib__ReadBatch *bt = len > 1 && fr[0] == LINK_BATCH ? trib__read_batch__unpack(NULL, len - 1, fr + 1) : NULL;
        cr_assert_not_null(bt, "not a batch (%zu bytes)", len);
        done = bt->done;
        got += bt->lines.len;
        trib__read_batch__free_unpacked(bt, NULL);
    }
    cr_assert(!done, "a revoked relay's read under way was served whole (%zu bytes)", got);
    cr_assert_eq(rc, -1, "the owner kept a revoked relay's read open (rc %d, %zu bytes so far)", rc, got);
    cr_assert_lt(h_now_ms() - t0, 10000, "a revoked relay's read went on for %ld ms", h_now_ms() - t0);
    link_close(&mid);
    wait_metric(&a, "trib_link_refused_total{reason=\"not_admitted\"}", 1, 5000);
    double req0 = metric(&a, "trib_link_requests_total");
    /* a request on the held link: no batch of records comes back, the link closes */
    send_range(held, 77, a.token);
    rc = link_recv(held, &fr, &len, 10000, &why);
    cr_assert_eq(rc, -1, "the owner answered a revoked relay's request on its held link (rc %d, %zu bytes)", rc, len);
    link_close(&held);
    wait_metric(&a, "trib_link_refused_total{reason=\"not_admitted\"}", 2, 5000);
    /* growth's pooled link and any new one: no records for it */
    for (int i = 0; i < 2; i++) {
        raw_get(&b, RECORDS_PATH "?limit=5", a.token, &r);
        cr_assert_neq(r.status, 200, "read %d after the revocation was served: %.200s", i, r.body);
        free(r.body);
    }
    cr_assert_eq(metric(&a, "trib_link_requests_total"), req0, "the owner served a revoked relay over a link");
    raw_get(&a, RECORDS_PATH "?limit=5", a.token, &r);
    cr_assert_eq(r.status, 200, "the owner stopped serving: %ld", r.status);
    free(r.body);
    identity_wipe(&ia), identity_wipe(&ib);
}

/* GET /v1/members at base lists payments' key as refused for its revocation. */
static int member_revoked(void *base)
{
    json_t *j = h_get_json(base, "/v1/members", NULL);
    int yes = 0;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(j, "uncertified"), i, m)   /* a revoked node is no member: listed apart */
        yes |= !strcmp(json_string_value(json_object_get(m, "domain")) ?: "", "payments") &&
               !strcmp(json_string_value(json_object_get(m, "trust_refused")) ?: "", "revoked");
    json_decref(j);
    return yes;
}

/* GET /v1/status at base says trust revoked. */
static int knows_itself_revoked(void *base)
{
    json_t *j = h_get_json(base, "/v1/status", NULL);
    int yes = !strcmp(json_string_value(json_object_get(j, "trust")) ?: "", "revoked");
    json_decref(j);
    return yes;
}

/* An owner revoked (a compromised host) is read from no more: a relay that holds the revocation
 * sends it neither the request nor the reader's token (the owner would still take both: the relay
 * itself is admitted there), and says why, naming the revocation. Before, the relay went on reading
 * through the revoked owner until it turned dead (~5 s), forwarding every reader's token to it. */
Test(linkread, a_revoked_owner_is_sent_no_read_and_the_relay_says_why, .init = fed_setup, .fini = fed_teardown,
     .timeout = 240)
{
    char da[256], db[256], ca[300], cb[300], err[300];
    identity_t ia, ib;
    certified("a", "payments", da, sizeof da, &ia);
    certified("b", "growth", db, sizeof db, &ib);
    snprintf(ca, sizeof ca, "%s/a.cert", work);
    snprintf(cb, sizeof cb, "%s/b.cert", work);
    h_node_t a, b;
    cr_assert_eq(h_node_start(&a, "payments", "--data", da, "--charter", chpath, "--cert", ca, FAST, NULL), 0,
                 "payments did not start");
    char seed[200];
    snprintf(seed, sizeof seed, "%s@%s", ia.hex, a.peer);
    cr_assert_eq(h_node_start(&b, "growth", "--data", db, "--charter", chpath, "--cert", cb, "--seed", seed, FAST,
                              NULL), 0, "growth did not start");
    cr_assert(h_wait_member(b.url, "payments", "alive", NULL, 20000), "growth does not see payments");
    publish_ledger(&a);
    post_records(&a, 1, 50, 80);
    cr_assert(h_wait_status(b.url, "/v1/products/" PRODUCT, NULL, 200, 20000), "growth did not learn the ledger");
    char *gm = fx_read_example("growth-experiments.yaml", NULL), url[300];
    cr_assert_not_null(gm);
    snprintf(url, sizeof url, "%s/v1/products/growth/growth-experiments", b.url);
    h_resp_t pr;
    cr_assert_eq(h_http("PUT", url, "application/yaml", gm, strlen(gm), &pr), 0);
    cr_assert_eq(pr.status, 201, "publish on growth: %ld %s", pr.status, pr.body);
    h_resp_free(&pr);
    free(gm);
    cr_assert(h_wait_status(a.url, "/v1/products/growth/growth-experiments", NULL, 200, 20000),
              "payments did not learn growth's product");
    raw_t r;
    raw_get(&b, RECORDS_PATH "?limit=5", b.token, &r);   /* a reader of growth, through growth */
    cr_assert_eq(r.status, 200, "before the revocation: %ld %s", r.status, r.body);
    free(r.body);
    double served = metric(&a, "trib_link_requests_total");

    const identity_t *roots[] = {&R1, &R2};
    revocation_t rv;
    cr_assert_eq(revocation_issue(&ch, 1, 0, ia.pk, fx_now_ms(), "host compromised", roots, 2, &rv, err, sizeof err),
                 0, "%s", err);
    char path[300];
    snprintf(path, sizeof path, "%s/rev-a.json", work);
    json_t *j = revocation_to_json(&rv);
    cr_assert_eq(trust_file_write(path, j, err, sizeof err), 0, "%s", err);
    json_decref(j);
    revocation_free(&rv);
    char *o = NULL, *e = NULL;
    cr_assert_eq(h_trib(&b, NULL, &o, &e, "fed", "submit", path, "--node", b.url, NULL), 0, "%s %s", o, e);
    free(o), free(e);
    /* the relay holds the revocation: its member table says so */
    cr_assert(h_wait(member_revoked, b.url, 10000), "growth's member table does not show payments revoked");
    for (int i = 0; i < 2; i++) {
        raw_get(&b, RECORDS_PATH "?limit=5", b.token, &r);
        cr_assert_eq(r.status, 503, "read %d of a revoked owner's product: %ld %.300s", i, r.status, r.body);
        cr_assert(strstr(r.body, "owner_unreachable") && strstr(r.body, "revoked"),
                  "the refusal does not say the owner is revoked: %.300s", r.body);
        free(r.body);
    }
    cr_assert_eq(metric(&a, "trib_link_requests_total"), served, "the relay sent a read to the revoked owner");
    /* the revoked node itself, asked for another domain's records: its peers refuse it, and it
     * says so at once (before: a relay attempt and a 503 after 2 s, "did not answer") */
    cr_assert(h_wait(knows_itself_revoked, a.url, 10000), "payments never learnt of its revocation");
    long t0 = h_now_ms();
    raw_get(&a, "/v1/products/growth/growth-experiments/records?limit=1", a.token, &r);
    cr_assert_eq(r.status, 403, "a revoked node reading growth's records: %ld %.300s", r.status, r.body);
    cr_assert(strstr(r.body, "node_revoked") && strstr(r.body, "through another node"), "%.300s", r.body);
    cr_assert_lt(h_now_ms() - t0, 1500, "the refusal took %ld ms", h_now_ms() - t0);
    free(r.body);
    identity_wipe(&ia), identity_wipe(&ib);
}

/* ------------------------------------------------------------------ the relay's pool, in process */

typedef struct {
    int lfd;
    link_keys_t keys;
    link_t *l;
} responder_t;

static int allow_any(void *ctx, const uint8_t pk[32], const uint8_t *hello, size_t len, char *err, size_t errlen)
{
    (void)ctx, (void)pk, (void)hello, (void)len, (void)err, (void)errlen;
    return 0;
}

/* Takes one connection and completes its handshake; answers nothing. */
static void *respond(void *arg)
{
    responder_t *r = arg;
    struct pollfd p = {.fd = r->lfd, .events = POLLIN};
    int fd = poll(&p, 1, 10000) == 1 ? accept(r->lfd, NULL, NULL) : -1;   /* bounded: a test must end */
    link_reason_t why;
    char err[200];
    r->l = fd < 0 ? NULL : link_accept(fd, &r->keys, allow_any, NULL, NULL, 0, LINK_MAX_FRAME, 5000, &why, err, sizeof err);
    return NULL;
}

static linkpool_t *shut_pool;
static identity_t relay_id;

/* The relay's keys, asked for in the middle of its dial: the node shuts down right then. */
static void keys_then_shutdown(void *ctx, uint8_t id[32], uint8_t pk[32], uint8_t sk[32])
{
    (void)ctx;
    memcpy(id, relay_id.pk, 32);
    memcpy(pk, relay_id.curve_pk, 32);
    memcpy(sk, relay_id.curve_sk, 32);
    linkpool_shutdown(shut_pool);
}

/* linkpool_shutdown while a reader dials does not reach it (it is not active yet): once its link is
 * up the reader must see the shutdown and fail, not send its request and start streaming. */
Test(linkpool, a_reader_dialling_while_the_node_shuts_down_fails_with_shutting_down)
{
    cr_assert_geq(sodium_init(), 0);
    identity_t owner;
    fx_identity(&owner), fx_identity(&relay_id);
    uint8_t prologue[32];
    link_prologue_open(NULL, prologue);
    int port = h_free_port();
    responder_t r = {.lfd = h_listen(port, 4)};
    cr_assert_geq(r.lfd, 0, "cannot listen on 127.0.0.1:%d", port);
    memcpy(r.keys.pk, owner.curve_pk, 32);
    memcpy(r.keys.sk, owner.curve_sk, 32);
    memcpy(r.keys.prologue, prologue, 32);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, respond, &r), 0);
    linkpool_opts_t po = {.keys = keys_then_shutdown, .open_timeout_ms = 1000, .stall_ms = 1000};
    memcpy(po.prologue, prologue, 32);
    shut_pool = linkpool_new(&po);
    cr_assert_not_null(shut_pool);
    reads_open_t o = {.product = PRODUCT, .owner_id = owner.pk, .owner_addr = "127.0.0.1:7470",
                      .owner_desc = "the test owner"};
    char addr[64], kind[32] = "", err[300] = "";
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    lread_t *rd = NULL;
    uint64_t last;
    int status = 0;
    int rc = lread_open(shut_pool, &o, addr, &rd, &last, &status, kind, sizeof kind, err, sizeof err);
    pthread_join(t, NULL);
    cr_assert_not_null(r.l, "the test's responder did not complete the handshake");
    cr_assert_eq(rc, -1, "the read opened (%d) after the shutdown", rc);
    cr_assert_str_eq(kind, "shutting_down", "%d %s: %s", status, kind, err);
    cr_assert_eq(status, 503);
    link_close(&r.l);
    close(r.lfd);
    linkpool_free(&shut_pool);
    identity_wipe(&owner), identity_wipe(&relay_id);
}

/* A member claim's link address is checked before it is dialled: HOST:PORT only (counted bad_addr),
 * and a loopback address only for an owner whose peer address is loopback too (counted loopback):
 * a claim must not make relays dial their own machine. */
Test(linkpool, claimed_link_addresses_are_checked_before_any_dial)
{
    cr_assert(link_addr_ok("10.0.0.1:7471"));
    cr_assert(link_addr_ok("[::1]:7471"));
    cr_assert(link_addr_ok("a-rather-long-host-name.of-a-pod.in-a-namespace.svc.cluster.local:7471"));
    char longest[300];
    memset(longest, 'a', 249);
    strcpy(longest + 249, ":7471");   /* 254 characters */
    cr_assert(link_addr_ok(longest));
    memset(longest, 'a', 251);
    strcpy(longest + 251, ":7471");   /* 256 */
    cr_assert(!link_addr_ok(longest));
    const char *bad[] = {"", "host", ":7471", "host:", "host:0", "host:65536", "host:12x", "a b:7471", "a/b:7471",
                         "[::1:7471", "[]:7471", "[g::1]:7471", "host:7471\n", "h\x01:1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert(!link_addr_ok(bad[i]), "'%s' taken as a link address", bad[i]);

    cr_assert_geq(sodium_init(), 0);
    identity_t owner;
    fx_identity(&owner), fx_identity(&relay_id);
    int port = h_free_port();
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(lfd, 4), 0);
    shut_pool = NULL;            /* keys_then_shutdown shuts nothing down */
    linkpool_opts_t po = {.keys = keys_then_shutdown, .open_timeout_ms = 500, .stall_ms = 500};
    linkpool_t *p = linkpool_new(&po);
    cr_assert_not_null(p);
    char addr[64], kind[32], err[300];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    lread_t *rd = NULL;
    uint64_t last;
    int status;
    reads_open_t o = {.product = PRODUCT, .owner_id = owner.pk, .owner_addr = "10.0.0.1:7470", .owner_desc = "owner"};
    cr_assert_eq(lread_open(p, &o, addr, &rd, &last, &status, kind, sizeof kind, err, sizeof err), 0);
    /* the unspecified addresses reach this host as well (connect() takes them for loopback) */
    const char *local[] = {"0", "0.0.0.0", "[::]", "[::ffff:0.0.0.0]"};
    for (size_t i = 0; i < sizeof local / sizeof *local; i++) {
        char a2[64];
        snprintf(a2, sizeof a2, "%s:%d", local[i], port);
        cr_assert_eq(lread_open(p, &o, a2, &rd, &last, &status, kind, sizeof kind, err, sizeof err), 0);
    }
    cr_assert_eq(lread_open(p, &o, "not an address", &rd, &last, &status, kind, sizeof kind, err, sizeof err), 0);
    cr_assert_lt(accept(lfd, NULL, NULL), 0, "a loopback link address was dialled for an owner that is not local");
    char *m = NULL;
    size_t mlen = 0;
    FILE *f = open_memstream(&m, &mlen);
    linkpool_metrics(p, f);
    fclose(f);
    const char *lb = strstr(m, "reason=\"loopback\"} "), *ba = strstr(m, "reason=\"bad_addr\"} ");
    long nlb = lb ? strtol(lb + strlen("reason=\"loopback\"} "), NULL, 10) : -1;
    long nba = ba ? strtol(ba + strlen("reason=\"bad_addr\"} "), NULL, 10) : -1;
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", m);
    free(m);
    cr_assert(nlb == 5 && nba == 1, "not counted (loopback %ld of 5, bad_addr %ld of 1): %s", nlb, nba, copy);
    /* an owner on this host (its peer address loopback): dialled */
    linkpool_free(&p);
    p = linkpool_new(&po);
    o.owner_addr = "127.0.0.1:7470";
    lread_open(p, &o, addr, &rd, &last, &status, kind, sizeof kind, err, sizeof err);   /* no handshake answers */
    int fd = accept(lfd, NULL, NULL);
    cr_assert_geq(fd, 0, "a local owner's loopback link was not dialled");
    close(fd);
    linkpool_free(&p);
    close(lfd);
    identity_wipe(&owner), identity_wipe(&relay_id);
}

/* A link address as long as a claim carries (70 characters here) reaches the relay whole. */
Test(linkread, a_long_link_address_reaches_the_relay_whole)
{
    h_node_t a, b;
    const char *adv = "a-rather-long-host-name.of-a-pod.in-a-namespace.svc.cluster.local:7471";   /* 70 chars */
    pair(&a, &b, 10, "--link-advertise", adv, NULL, NULL);
    raw_t r;
    raw_get(&b, RECORDS_PATH "?limit=3", b.token, &r);
    free(r.body);
    cr_assert_eq(r.status, 200, "the read did not fall back to the peer transport");
    char *log = h_read_file(b.log, NULL);
    const char *l = log ? strstr(log, "link: no data link") : NULL;
    char line[400] = "";
    if (l)
        snprintf(line, sizeof line, "%.*s", (int)strcspn(l, "\n"), l);
    int whole = l && strstr(line, adv) != NULL;
    free(log);
    cr_assert(whole, "the relay dialled another address than the one advertised: %s", line);
}

/* ------------------------------------------------------------------ link_split (untrusted bytes) */

/* A batch frame's message as the owner's link server builds it: the other fields, then the lines. */
static size_t pack_lines_last(const Trib__ReadBatch *b, uint8_t *out)
{
    Trib__ReadBatch h = *b;
    h.lines = (ProtobufCBinaryData){0, NULL};
    size_t n = trib__read_batch__pack(&h, out);
    if (b->lines.len) {
        out[n++] = 9 << 3 | 2;
        for (uint64_t v = b->lines.len; v; v >>= 7)
            out[n++] = (uint8_t)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
        memcpy(out + n, b->lines.data, b->lines.len);
        n += b->lines.len;
    }
    return n;
}

Test(linksplit, batches_as_owners_send_them_split_into_their_fields_and_lines)
{
    static uint8_t lines[300000], msg[400000];
    for (size_t i = 0; i < sizeof lines; i++)
        lines[i] = i % 50 == 49 ? '\n' : (uint8_t)('a' + i % 26);
    size_t sizes[] = {0, 1, 50, 127, 128, 16383, 16384, 300000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        Trib__ReadBatch b = TRIB__READ_BATCH__INIT;
        b.stream_id = 77 + i;
        b.first_seq = 1000 * i;
        b.batch_no = i + 1;
        b.done = i & 1;
        b.schema_version = "1.2.3";
        b.schema_seq = 9;
        b.fields_key = i & 2 ? "=a,b" : "";
        b.lines = (ProtobufCBinaryData){sizes[i], lines};
        size_t n = pack_lines_last(&b, msg), hlen, off;
        cr_assert_eq(link_split(msg, n, &hlen, &off), 0, "size %zu", sizes[i]);
        cr_assert_eq(n - off, sizes[i]);
        cr_assert(memcmp(msg + off, lines, sizes[i]) == 0);
        Trib__ReadBatch *h = trib__read_batch__unpack(NULL, hlen, msg);
        cr_assert_not_null(h);
        cr_assert_eq(h->stream_id, b.stream_id);
        cr_assert_eq(h->batch_no, b.batch_no);
        cr_assert_eq(h->first_seq, b.first_seq);
        cr_assert_eq(h->done, b.done);
        cr_assert_str_eq(h->schema_version, "1.2.3");
        cr_assert_str_eq(h->fields_key, b.fields_key);
        cr_assert_eq(h->lines.len, 0);
        trib__read_batch__free_unpacked(h, NULL);
    }
    /* lines not last (protobuf-c's own order puts fields 10..13 after them): refused, not misread */
    Trib__ReadBatch b = TRIB__READ_BATCH__INIT;
    b.lines = (ProtobufCBinaryData){10, lines};
    b.schema_version = "1.0.0";
    size_t n = trib__read_batch__pack(&b, msg), hlen, off;
    cr_assert_eq(link_split(msg, n, &hlen, &off), -1);
}

/* Random bytes, and owners' batches with random damage: link_split never reads outside msg, and
 * whatever it accepts, protobuf-c reads alike (the other fields from the header, the lines as the
 * span), whenever protobuf-c takes the whole message at all. */
Test(linksplit, random_input)
{
    static uint8_t msg[4096];
    uint8_t lines[600];
    for (size_t i = 0; i < sizeof lines; i++)
        lines[i] = i % 30 == 29 ? '\n' : 'x';
    uint32_t accepted = 0, checked = 0;
    for (int iter = 0; iter < 200000; iter++) {
        size_t n;
        if (iter & 1) {
            n = randombytes_uniform(sizeof msg);
            randombytes_buf(msg, n);
        } else {
            Trib__ReadBatch b = TRIB__READ_BATCH__INIT;
            b.stream_id = randombytes_random();
            b.batch_no = randombytes_uniform(5);
            b.schema_version = "2.0.0";
            b.lines = (ProtobufCBinaryData){randombytes_uniform(sizeof lines), lines};
            n = pack_lines_last(&b, msg);
            for (uint32_t k = randombytes_uniform(4); k > 0; k--)   /* damage: flip, cut */
                msg[randombytes_uniform((uint32_t)n)] ^= (uint8_t)(1 + randombytes_uniform(255));
            if (randombytes_uniform(4) == 0)
                n = randombytes_uniform((uint32_t)n + 1);
        }
        /* a copy of exactly n bytes on the heap: ASan sees any read past it */
        uint8_t *m = malloc(n ? n : 1);
        memcpy(m, msg, n);
        size_t hlen = 12345, off = 12345;
        if (link_split(m, n, &hlen, &off) == 0) {
            accepted++;
            cr_assert(hlen <= off && off <= n, "hlen %zu off %zu n %zu", hlen, off, n);
            Trib__ReadBatch *full = trib__read_batch__unpack(NULL, n, m);
            if (full) {
                checked++;
                Trib__ReadBatch *h = trib__read_batch__unpack(NULL, hlen, m);
                cr_assert_not_null(h, "protobuf-c takes the whole but not its header");
                cr_assert_eq(full->lines.len, n - off);
                cr_assert(n == off || memcmp(full->lines.data, m + off, n - off) == 0);
                cr_assert_eq(h->stream_id, full->stream_id);
                cr_assert_eq(h->batch_no, full->batch_no);
                cr_assert_eq(h->first_seq, full->first_seq);
                cr_assert_eq(h->lines.len, 0);
                trib__read_batch__free_unpacked(h, NULL);
                trib__read_batch__free_unpacked(full, NULL);
            }
        }
        free(m);
    }
    cr_assert_gt(checked, 1000, "the damaged batches rarely parse: %u accepted, %u checked", accepted, checked);
}

/* ------------------------------------------------------------------ LINK_REFUSE frames (a frame's bytes) */

/* The owner's refusal frames read back as made; random and damaged frames (short, long, another
 * type, another reason) are refused, never read past their length, and only well-formed ones taken. */
Test(linkrefuse, refusals_read_back_and_random_frames_are_refused)
{
    static const int reasons[] = {LINK_REFUSE_BUSY, LINK_REFUSE_PER_PEER};
    static const uint32_t retries[] = {0, 1, LINK_RETRY_MS, 0x01020304u, UINT32_MAX};
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < sizeof retries / sizeof *retries; j++) {
            uint8_t f[LINK_REFUSE_LEN];
            link_refusal(f, reasons[i], retries[j]);
            int reason = 0;
            uint32_t retry = 7;
            cr_assert_eq(link_refusal_parse(f, sizeof f, &reason, &retry), 0);
            cr_assert_eq(reason, reasons[i]);
            cr_assert_eq(retry, retries[j]);
            cr_assert_eq(link_refusal_parse(f, sizeof f - 1, &reason, &retry), -1, "a cut refusal was taken");
        }
    uint32_t taken = 0;
    for (int iter = 0; iter < 200000; iter++) {
        size_t n = randombytes_uniform(12);
        uint8_t *f = malloc(n ? n : 1);   /* exactly n bytes on the heap: ASan sees any read past it */
        randombytes_buf(f, n);
        if (n && randombytes_uniform(2))
            f[0] = LINK_REFUSE;
        if (n > 1 && randombytes_uniform(2))
            f[1] = (uint8_t)(1 + randombytes_uniform(3));
        int reason = -1;
        uint32_t retry = 0;
        int ok = link_refusal_parse(f, n, &reason, &retry) == 0;
        int want = n == LINK_REFUSE_LEN && f[0] == LINK_REFUSE && (f[1] == LINK_REFUSE_BUSY || f[1] == LINK_REFUSE_PER_PEER);
        cr_assert_eq(ok, want, "%zu bytes, type %d reason %d: taken %d", n, n ? f[0] : -1, n > 1 ? f[1] : -1, ok);
        if (ok) {
            taken++;
            cr_assert_eq(reason, f[1]);
            cr_assert_eq(retry, (uint32_t)f[2] << 24 | (uint32_t)f[3] << 16 | (uint32_t)f[4] << 8 | f[5]);
        }
        free(f);
    }
    cr_assert_gt(taken, 1000, "well-formed refusals rarely drawn: %u", taken);
}

/* ------------------------------------------------------------------ an owner cut mid-read (in process) */

/* Serves a read per connection, two connections at most: the first gets records 1-2 (the read goes
 * on) and is closed, as an owner restarting would; the next gets a done batch of one record from
 * the seq asked. */
static void *serve_then_close(void *arg)
{
    responder_t *r = arg;
    for (int c = 0; c < 2; c++) {
        struct pollfd p = {.fd = r->lfd, .events = POLLIN};
        int fd = poll(&p, 1, 10000) == 1 ? accept(r->lfd, NULL, NULL) : -1;   /* bounded: a test must end */
        if (fd < 0)
            return NULL;
        link_reason_t why;
        char err[200];
        link_t *l = link_accept(fd, &r->keys, allow_any, NULL, NULL, 0, LINK_MAX_FRAME, 5000, &why, err, sizeof err);
        const uint8_t *f;
        size_t len;
        Trib__ReadRequest *q = NULL;
        if (l && link_recv(l, &f, &len, 5000, &why) == 1 && len > 1 && f[0] == LINK_REQ)
            q = trib__read_request__unpack(NULL, len - 1, f + 1);
        if (q) {
            Trib__ReadBatch b = TRIB__READ_BATCH__INIT;
            b.stream_id = q->stream_id;
            b.batch_no = 1;
            b.first_seq = q->from_seq;
            b.last_seq = 3;
            b.done = c == 1;
            b.lines = c == 0 ? (ProtobufCBinaryData){6, (uint8_t *)"r1\nr2\n"} : (ProtobufCBinaryData){3, (uint8_t *)"r3\n"};
            uint8_t msg[256];
            size_t n = pack_lines_last(&b, msg);
            uint8_t *out = link_frame(l, n + 1, &why);
            if (out) {
                out[0] = LINK_BATCH;
                memcpy(out + 1, msg, n);
                link_send_frame(l, n + 1, 5000, &why);
            }
            trib__read_request__free_unpacked(q, NULL);
        }
        link_close(&l);
    }
    return NULL;
}

static linkpool_t *cut_pool;
static uint8_t cut_owner[32];
static int cut_dials;
static size_t cut_reads;

/* The relay's keys, asked for in the middle of each dial: at the second (the read going on over a
 * new link) the owner stops holding a certificate, as gossip__owners_untrusted says then. */
static void keys_then_cut(void *ctx, uint8_t id[32], uint8_t pk[32], uint8_t sk[32])
{
    (void)ctx;
    memcpy(id, relay_id.pk, 32);
    memcpy(pk, relay_id.curve_pk, 32);
    memcpy(sk, relay_id.curve_sk, 32);
    if (++cut_dials == 2)
        cut_reads = linkpool_untrusted(cut_pool, cut_owner, "the owner's certificate was revoked");
}

/* A read whose link was lost is not among the reads linkpool_untrusted reached while it dialled a
 * new one, so the cut was lost and the read went on with the owner's records over the new link.
 * It ends with owner_lost and the trust detail instead, counted as one read cut. */
Test(linkpool, an_owner_cut_while_its_read_dials_a_new_link_is_not_read_from)
{
    cr_assert_geq(sodium_init(), 0);
    identity_t owner;
    fx_identity(&owner), fx_identity(&relay_id);
    memcpy(cut_owner, owner.pk, 32);
    uint8_t prologue[32];
    link_prologue_open(NULL, prologue);
    int port = h_free_port();
    responder_t r = {.lfd = h_listen(port, 4)};
    cr_assert_geq(r.lfd, 0, "cannot listen on 127.0.0.1:%d", port);
    memcpy(r.keys.pk, owner.curve_pk, 32);
    memcpy(r.keys.sk, owner.curve_sk, 32);
    memcpy(r.keys.prologue, prologue, 32);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, serve_then_close, &r), 0);
    linkpool_opts_t po = {.keys = keys_then_cut, .open_timeout_ms = 2000, .stall_ms = 3000};
    memcpy(po.prologue, prologue, 32);
    cut_pool = linkpool_new(&po);
    cr_assert_not_null(cut_pool);
    reads_open_t o = {.product = PRODUCT, .owner_id = owner.pk, .owner_addr = "127.0.0.1:7470",
                      .owner_desc = "the test owner"};
    char addr[64], kind[32] = "", err[600] = "", buf[256];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    lread_t *rd = NULL;
    uint64_t last;
    int status = 0;
    cr_assert_eq(lread_open(cut_pool, &o, addr, &rd, &last, &status, kind, sizeof kind, err, sizeof err), 1,
                 "%d %s: %s", status, kind, err);
    long n = lread_next(rd, buf, sizeof buf, 3000, kind, sizeof kind, err, sizeof err);
    cr_assert_eq(n, 6, "the first batch: %ld", n);
    n = lread_next(rd, buf, sizeof buf, 3000, kind, sizeof kind, err, sizeof err);
    cr_assert_eq(cut_dials, 2, "the read did not dial again (%d dials)", cut_dials);
    cr_assert_eq(n, READS_FAILED, "the read went on from the cut owner: %ld bytes (%.*s)", n,
                 n > 0 ? (int)n : 0, buf);
    cr_assert_str_eq(kind, "owner_lost");
    cr_assert_str_eq(err, "the owner's certificate was revoked");
    cr_assert_eq(cut_reads, 1, "the cut reached %zu reads", cut_reads);
    lread_close(&rd);
    pthread_join(t, NULL);
    close(r.lfd);
    linkpool_free(&cut_pool);
    identity_wipe(&owner), identity_wipe(&relay_id);
}

static int cut_lfd = -1;

/* The relay's keys, asked for in the middle of the dial: the owner stops holding a certificate
 * then, and its listener goes away, so the handshake fails (a connection queued on a listening
 * socket that closes is reset). */
static void keys_cut_then_fail(void *ctx, uint8_t id[32], uint8_t pk[32], uint8_t sk[32])
{
    (void)ctx;
    memcpy(id, relay_id.pk, 32);
    memcpy(pk, relay_id.curve_pk, 32);
    memcpy(sk, relay_id.curve_sk, 32);
    cut_reads = linkpool_untrusted(cut_pool, cut_owner, "the owner's certificate was revoked");
    close(cut_lfd);
    cut_lfd = -1;
}

/* A read cut while it dials its first link, whose dial then fails, is refused: lread_open said
 * "no link" (0) and the caller opened the read over the peer transport instead, from the owner the
 * cut had just refused, where no later cut reached it. */
Test(linkpool, an_owner_cut_while_a_failing_dial_opens_its_read_is_not_read_over_the_relay)
{
    cr_assert_geq(sodium_init(), 0);
    identity_t owner;
    fx_identity(&owner), fx_identity(&relay_id);
    memcpy(cut_owner, owner.pk, 32);
    uint8_t prologue[32];
    link_prologue_open(NULL, prologue);
    int port = h_free_port();
    cut_lfd = h_listen(port, 4);
    cr_assert_geq(cut_lfd, 0, "cannot listen on 127.0.0.1:%d", port);
    cut_reads = 0;
    linkpool_opts_t po = {.keys = keys_cut_then_fail, .open_timeout_ms = 2000, .stall_ms = 3000};
    memcpy(po.prologue, prologue, 32);
    cut_pool = linkpool_new(&po);
    cr_assert_not_null(cut_pool);
    reads_open_t o = {.product = PRODUCT, .owner_id = owner.pk, .owner_addr = "127.0.0.1:7470",
                      .owner_desc = "the test owner"};
    char addr[64], kind[32] = "", err[600] = "";
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    lread_t *rd = NULL;
    uint64_t last;
    int status = 0;
    int rc = lread_open(cut_pool, &o, addr, &rd, &last, &status, kind, sizeof kind, err, sizeof err);
    cr_assert_eq(cut_reads, 1, "the cut reached %zu reads", cut_reads);
    cr_assert_eq(rc, -1, "the read of a cut owner was left to the relay (%d)", rc);
    cr_assert_null(rd);
    cr_assert_eq(status, 503);
    cr_assert_str_eq(kind, "owner_unreachable");
    cr_assert_str_eq(err, "the owner's certificate was revoked");
    if (cut_lfd >= 0)
        close(cut_lfd);
    linkpool_free(&cut_pool);
    identity_wipe(&owner), identity_wipe(&relay_id);
}
