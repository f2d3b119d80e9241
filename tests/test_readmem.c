/* tests/test_readmem.c - routed reads' memory against hostile readers, on real `trib agent`s.
 *
 * A requester that opens many streams with the largest credit and then reads nothing must not
 * grow the owner's memory beyond its byte budget (gossip/reads_owner.c, docs/operators.md); slow
 * HTTP readers through a relay must not grow the relay's beyond its queue budget; data links whose
 * relays read nothing must not grow the owner's beyond the links' budget (gossip/linkserve.c). Each
 * test checks that other readers are still served meanwhile. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <zmq.h>
#include "gossip/identity.h"
#include "gossip/link.h"
#include "gossip/linkserve.h"
#include <sodium.h>
#include <jansson.h>
#include "gossip/transport.h"
#include "proto/tributary.pb-c.h"
#include "tests/harness.h"
#include "tests/ledger.h"
#include "tests/peer_tools.h"

TestSuite(readmem, .fini = h_cleanup_all, .timeout = 240);

#define STEADY "--probe-interval-ms", "1000", "--probe-timeout-ms", "500", "--suspicion-mult", "4", \
               "--gossip-interval-ms", "50", "--anti-entropy-ms", "300", "--retry-max-ms", "1000"
#define PRODUCT LEDGER_ID

#ifdef __SANITIZE_ADDRESS__
#define RSS_SAYS 0   /* ASan's allocator keeps freed memory in quarantine: RSS says nothing there */
#define RECORDS 16000   /* ~16 MB: a whole routed read within the harness's 60 s there */
#else
#define RSS_SAYS 1
#define RECORDS 64000   /* ~64 MB */
#endif

static long vm_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kib = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

/* ~rec records of ~1 KiB from seq 1. */
static void big_product(h_node_t *a, long rec)
{
    char err[512];
    cr_assert_eq(ledger_publish(a->url, err, sizeof err), 0, "%s", err);
    for (long i = 0; i < rec; i += 8000)
        cr_assert_eq(ledger_append(a->url, 1 + i, rec - i < 8000 ? rec - i : 8000, 1000, err, sizeof err), 0, "%s",
                     err);
}

/* The owner's sent batches stopped growing: the same count on two looks 1.5 s apart (a keepalive
 * period and a half: the owner pumps every loop turn, so a stream with credit sends within it). */
typedef struct {
    h_node_t *n;
    double sent;
    long at;
} still_t;

static int sends_still(void *ctx)
{
    still_t *c = ctx;
    double sent = h_metric(c->n->url, "trib_read_batches_total{dir=\"sent\"}");
    if (sent != c->sent) {
        c->sent = sent;
        c->at = h_now_ms();
        return 0;
    }
    return h_now_ms() - c->at >= 1500;
}

typedef struct {
    h_node_t *n;
    const char *series;
    double want;
} metric_cond_t;

static int metric_is(void *ctx)
{
    metric_cond_t *c = ctx;
    return h_metric(c->n->url, c->series) == c->want;
}

static int metric_at_least(void *ctx)
{
    metric_cond_t *c = ctx;
    return h_metric(c->n->url, c->series) >= c->want;
}

/* A hostile requester: a ZeroMQ ROUTER that completes the CURVE handshake of the owner's
 * connection (the federation's server key) and then never reads, with the smallest queues, and a
 * client that asks the owner for n streams of the whole product with the largest credit, each
 * answered to the ROUTER. */
typedef struct {
    void *z, *sink;
    peer_client_t *c;
    identity_t me;
    char addr[64];
} hostile_t;

static void hostile_open(hostile_t *h, h_node_t *owner, int n)
{
    h->z = zmq_ctx_new();
    h->sink = zmq_socket(h->z, ZMQ_ROUTER);
    uint8_t fpk[32], fsk[32];
    transport_federation_keys(TRANSPORT_DEFAULT_SECRET, fpk, fsk);
    int one = 1, small = 4096, zero = 0;
    cr_assert_eq(zmq_setsockopt(h->sink, ZMQ_CURVE_SERVER, &one, sizeof one), 0);
    cr_assert_eq(zmq_setsockopt(h->sink, ZMQ_CURVE_SECRETKEY, fsk, 32), 0);
    cr_assert_eq(zmq_setsockopt(h->sink, ZMQ_RCVHWM, &one, sizeof one), 0);
    cr_assert_eq(zmq_setsockopt(h->sink, ZMQ_RCVBUF, &small, sizeof small), 0);
    cr_assert_eq(zmq_setsockopt(h->sink, ZMQ_LINGER, &zero, sizeof zero), 0);
    int port = h_free_port();
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    cr_assert_eq(zmq_bind(h->sink, ep), 0, "bind %s: %s", ep, zmq_strerror(zmq_errno()));
    snprintf(h->addr, sizeof h->addr, "127.0.0.1:%d", port);
    peer_identity(&h->me);
    h->c = peer_client_new(h->z, owner->peer, &h->me, NULL);
    cr_assert_not_null(h->c);
    for (int i = 0; i < n; i++) {
        Trib__ReadRequest q = TRIB__READ_REQUEST__INIT;
        q.stream_id = 1000 + (uint64_t)i;
        q.product_id = PRODUCT;
        q.from_seq = 1;
        q.credit = 1u << 20;   /* the owner takes its largest window */
        q.token = (ProtobufCBinaryData){strlen(owner->token), (uint8_t *)owner->token};
        size_t len = trib__read_request__get_packed_size(&q);
        uint8_t *buf = malloc(len);
        trib__read_request__pack(&q, buf);
        peer_envelope_t e;
        peer_envelope_init(&e, &h->me, h->addr, TRIB__MSG_TYPE__MSG_READ_REQ, buf, len);
        e.seq = 1 + (uint64_t)i;
        cr_assert_eq(peer_client_send_envelope(h->c, &e), 0);
        free(buf);
    }
}

static void hostile_close(hostile_t *h)
{
    peer_client_destroy(&h->c);
    zmq_close(h->sink);
    zmq_ctx_term(h->z);
    identity_wipe(&h->me);
}

/* A routed read of the whole product through relay b (its owner reached over the peer transport),
 * as HTTP/1.0 over a raw socket, counting the records as they come (no body kept: h_http's body
 * grows by realloc, which ASan makes copy the whole body each time): its records. */
static long relay_read(h_node_t *b)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 60};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)b->http_port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char req[4800];
    int len = snprintf(req, sizeof req,
                       "GET /v1/products/" PRODUCT "/records HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n",
                       b->token);
    cr_assert_eq(write(fd, req, (size_t)len), len);
    static char buf[1 << 16];
    char head[256] = "";
    size_t hlen = 0;
    long n = 0, t0 = h_now_ms();
    int in_body = 0, crlf = 0;   /* crlf: how much of "\r\n\r\n" the header's end has seen */
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        cr_assert_geq(r, 0, "a routed read failed after %ld ms, %ld records received", h_now_ms() - t0, n);
        if (r == 0)
            break;
        for (ssize_t i = 0; i < r; i++) {
            if (in_body) {
                n += buf[i] == '\n';
                continue;
            }
            if (hlen + 1 < sizeof head)
                head[hlen++] = buf[i];
            crlf = buf[i] == (crlf % 2 ? '\n' : '\r') ? crlf + 1 : buf[i] == '\r';
            in_body = crlf == 4;
        }
    }
    close(fd);
    cr_assert(!strncmp(head, "HTTP/1.0 200", 12) || !strncmp(head, "HTTP/1.1 200", 12),
              "a routed read while the owner is under attack: %.120s", head);
    return n;
}

/* One requester that opens 64 streams of a ~64 MB product (and 16 more, refused: its share of the
 * owner's streams) with the largest credit and never reads them: the owner's RssAnon grows by the transport's byte budget for one peer (32 MiB) and the
 * queues' slack, not by what the streams' credit allows (64 x 256 batches: on the old code +470
 * MiB, all ZeroMQ's send queue of 1000 batches), and a relay's reader is served meanwhile. */
Test(readmem, a_requester_that_reads_nothing_holds_a_bounded_share_of_the_owners_memory)
{
    h_node_t a, b;
    cr_assert_eq(h_node_start(&a, "payments", STEADY, "--link-listen", "off", NULL), 0, "payments did not start");
    cr_assert_eq(h_node_start(&b, "growth", "--seed", a.peer, STEADY, NULL), 0, "growth did not start");
    cr_assert(h_wait_member(b.url, "payments", "alive", NULL, 15000), "growth does not see payments");
    big_product(&a, RECORDS);
    cr_assert(h_wait_status(b.url, "/v1/products/" PRODUCT, NULL, 200, 10000), "growth did not learn the product");
    long t0 = h_now_ms();
    cr_assert_eq(relay_read(&b), RECORDS);   /* the owner's own set-up for routed reads is not counted */
    cr_log_info("a routed read of %d records over the peer transport: %ld ms", RECORDS, h_now_ms() - t0);
    long anon0 = h_rss_anon_kib(a.pid), rss0 = vm_rss_kib(a.pid);
    cr_assert_gt(anon0, 0);
    hostile_t h;
    hostile_open(&h, &a, 64 + 16);   /* one requester's share of the owner's 1024 streams: 64 (a sixteenth) */
    still_t st = {&a, -1, 0};
    cr_assert(h_wait(sends_still, &st, 60000), "the owner never stopped sending (%g batches)", st.sent);
    long anon1 = h_rss_anon_kib(a.pid), rss1 = vm_rss_kib(a.pid);
    cr_log_info("a requester reading nothing, 64 streams: owner sent %g batches (%g records); RssAnon %ld -> %ld KiB "
                "(%+ld), VmRSS %ld -> %ld KiB (%+ld); ZeroMQ holds %g bytes, %g sends refused",
                st.sent, h_metric(a.url, "trib_read_records_total{dir=\"sent\"}"), anon0, anon1, anon1 - anon0, rss0,
                rss1, rss1 - rss0, h_metric(a.url, "trib_gossip_bulk_queued_bytes"),
                h_metric(a.url, "trib_gossip_bulk_busy_total"));
    cr_assert(!RSS_SAYS || anon1 - anon0 < 64 * 1024,
              "a requester that reads nothing grew the owner's RssAnon by %ld KiB (%ld -> %ld)", anon1 - anon0, anon0,
              anon1);
    cr_assert_leq(h_metric(a.url, "trib_gossip_bulk_queued_bytes"), 33.0 * 1024 * 1024);
    cr_assert_gt(h_metric(a.url, "trib_gossip_bulk_busy_total"), 0, "the owner was never refused by its budget");
    cr_assert_gt(h_metric(a.url, "trib_read_events_total{event=\"owner_paused\"}"), 0);
    cr_assert_leq(h_metric(a.url, "trib_read_owner_streams{kind=\"range\"}"), 64);   /* (they expire after 10 s) */
    cr_assert_eq(h_metric(a.url, "trib_read_events_total{event=\"stream_refused\"}"), 16);
    /* Another requester is served in full meanwhile (its own peer budget; the total has room). */
    cr_assert_eq(relay_read(&b), RECORDS);
    /* The requester says nothing more: its streams expire, and what ZeroMQ held for it is dropped
     * (the budgets taken for ever by a silent requester would stop every routed read at last). */
    metric_cond_t gone = {&a, "trib_gossip_bulk_queued_bytes", 0};
    cr_assert(h_wait(metric_is, &gone, 30000), "the owner still holds %g bytes for a requester gone silent",
              h_metric(a.url, "trib_gossip_bulk_queued_bytes"));
    /* once or twice: its streams' expiry, and the 10 s stall of its connection, each close one
     * (whichever comes first; the owner's streams dial the requester again in between) */
    cr_assert_geq(h_metric(a.url, "trib_gossip_bulk_dropped_total"), 1);
    cr_assert_eq(relay_read(&b), RECORDS);
    hostile_close(&h);
}

/* The hostile requester cancels its n streams (ids as hostile_open's): they end at once, so none
 * of them ever expires. */
static void hostile_cancel(hostile_t *h, int n)
{
    for (int i = 0; i < n; i++) {
        Trib__ReadCancel c = TRIB__READ_CANCEL__INIT;
        c.stream_id = 1000 + (uint64_t)i;
        uint8_t buf[32];
        size_t len = trib__read_cancel__pack(&c, buf);
        peer_envelope_t e;
        peer_envelope_init(&e, &h->me, h->addr, TRIB__MSG_TYPE__MSG_READ_CANCEL, buf, len);
        e.seq = 1000 + (uint64_t)i;
        cr_assert_eq(peer_client_send_envelope(h->c, &e), 0);
    }
}

/* A requester that fills its budget, then ends its streams itself (cancels them; streams that
 * finish are the same) and goes silent: no stream of its expires, yet what ZeroMQ holds for it,
 * which it will never read, must not keep its budget and the total's for as long as its connection
 * stays open (on the old code: held for good, only an expiry dropped it). */
Test(readmem, a_requester_that_ends_its_streams_and_reads_nothing_does_not_hold_the_budget_for_good)
{
    h_node_t a;
    cr_assert_eq(h_node_start(&a, "payments", STEADY, "--link-listen", "off", NULL), 0, "payments did not start");
    big_product(&a, RECORDS);
    hostile_t h;
    hostile_open(&h, &a, 64);
    still_t st = {&a, -1, 0};
    cr_assert(h_wait(sends_still, &st, 60000), "the owner never stopped sending (%g batches)", st.sent);
    double held = h_metric(a.url, "trib_gossip_bulk_queued_bytes");
    cr_assert_gt(held, 1024.0 * 1024, "the requester holds only %g bytes: nothing to test", held);
    hostile_cancel(&h, 64);
    metric_cond_t gone = {&a, "trib_read_owner_streams{kind=\"range\"}", 0};
    cr_assert(h_wait(metric_is, &gone, 10000), "the cancels did not end the streams (%g open)",
              h_metric(a.url, "trib_read_owner_streams{kind=\"range\"}"));
    cr_assert_eq(h_metric(a.url, "trib_read_events_total{event=\"stream_expired\"}"), 0);
    gone = (metric_cond_t){&a, "trib_gossip_bulk_queued_bytes", 0};
    cr_assert(h_wait(metric_is, &gone, 30000), "the owner still holds %g bytes for a requester whose streams ended "
              "and that reads nothing", h_metric(a.url, "trib_gossip_bulk_queued_bytes"));
    cr_assert_eq(h_metric(a.url, "trib_gossip_bulk_dropped_total"), 1);
    hostile_close(&h);
}

/* 48 HTTP readers of a ~64 MB product through a relay (its owner reached over the peer transport)
 * that read nothing: the relay's RssAnon grows by its budget of promised batches (32 MiB) and one
 * 64 KiB batch for each read opened beyond it, not by each read's window of 512 KiB batches (on
 * the old code +336 MiB with 64 readers: 512 batches queued), and another reader is served in full
 * meanwhile. */
Test(readmem, readers_that_read_nothing_hold_a_bounded_share_of_the_relays_memory)
{
    h_node_t a, b;
    cr_assert_eq(h_node_start(&a, "payments", STEADY, "--link-listen", "off", NULL), 0, "payments did not start");
    cr_assert_eq(h_node_start(&b, "growth", "--seed", a.peer, STEADY, NULL), 0, "growth did not start");
    cr_assert(h_wait_member(b.url, "payments", "alive", NULL, 15000), "growth does not see payments");
    enum { N = 48 };   /* the owner serves 64 streams per relay: one left for the reader below */
    big_product(&a, RECORDS);
    cr_assert(h_wait_status(b.url, "/v1/products/" PRODUCT, NULL, 200, 10000), "growth did not learn the product");
    cr_assert_eq(relay_read(&b), RECORDS);   /* the relay's own set-up for routed reads is not counted */
    long anon0 = h_rss_anon_kib(b.pid), rss0 = vm_rss_kib(b.pid);
    cr_assert_gt(anon0, 0);
    int fd[N];
    for (int i = 0; i < N; i++)
        cr_assert_geq(fd[i] = h_slow_get(&b, "/v1/products/" PRODUCT "/records", NULL), 0, "reader %d: cannot reach growth", i);
    metric_cond_t open = {&b, "trib_read_relay_sessions", N};
    cr_assert(h_wait(metric_is, &open, 30000), "%g of %d routed reads open", h_metric(b.url, "trib_read_relay_sessions"),
              N);
    still_t st = {&a, -1, 0};
    cr_assert(h_wait(sends_still, &st, 60000), "the owner never stopped sending (%g batches)", st.sent);
    long anon1 = h_rss_anon_kib(b.pid), rss1 = vm_rss_kib(b.pid);
    double promised = h_metric(b.url, "trib_read_relay_promised_bytes");
    cr_log_info("%d readers reading nothing through a relay: owner sent %g batches, relay queues %g (%g bytes "
                "promised, %g reads narrowed); relay RssAnon %ld -> %ld KiB (%+ld), VmRSS %ld -> %ld KiB (%+ld)",
                N, st.sent, h_metric(b.url, "trib_read_relay_queued_batches"), promised,
                h_metric(b.url, "trib_read_events_total{event=\"relay_narrowed\"}"), anon0, anon1, anon1 - anon0,
                rss0, rss1, rss1 - rss0);
    /* the budget, the batch each reader has out of the queue, and the HTTP library's 256 KiB
     * buffer of each answer (node/stream.c ROUTED_BLOCK): ~58 MiB seen */
    cr_assert(!RSS_SAYS || anon1 - anon0 < 80 * 1024,
              "%d readers that read nothing grew the relay's RssAnon by %ld KiB (%ld -> %ld)", N, anon1 - anon0, anon0,
              anon1);
    cr_assert_leq(promised, (32.0 + N * 0.0625) * 1024 * 1024);
    cr_assert_gt(h_metric(b.url, "trib_read_events_total{event=\"relay_narrowed\"}"), 0);
    cr_assert_eq(relay_read(&b), RECORDS);   /* another reader, served in full (narrowed) meanwhile */
    for (int i = 0; i < N; i++)
        close(fd[i]);
    metric_cond_t none = {&b, "trib_read_relay_promised_bytes", 0};
    cr_assert(h_wait(metric_is, &none, 30000), "the relay still promises %g bytes once its readers left",
              h_metric(b.url, "trib_read_relay_promised_bytes"));
}

/* A data link to the owner as me (the handshake's hello: my node id). */
static link_t *link_to(int port, const uint8_t spk[32], const identity_t *me, int small)
{
    link_keys_t k;
    memcpy(k.pk, me->curve_pk, 32);
    memcpy(k.sk, me->curve_sk, 32);
    link_prologue_open("tributary", k.prologue);
    int fd = small ? h_connect_small(port) : socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(fd >= 0 && (small || connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0), "cannot reach the owner's link port");
    char err[300];
    link_reason_t why;
    link_t *l = link_dial(fd, &k, spk, me->pk, 32, LINK_MAX_FRAME, 3000, &why, err, sizeof err);
    cr_assert_not_null(l, "link: %s", err);
    return l;
}

static void link_ask(link_t *l, uint64_t id, const char *token)
{
    Trib__ReadRequest q = TRIB__READ_REQUEST__INIT;
    q.stream_id = id;
    q.product_id = PRODUCT;
    q.from_seq = 1;
    q.credit = 1;
    q.token = (ProtobufCBinaryData){strlen(token), (uint8_t *)token};
    link_reason_t why;
    size_t len = 1 + trib__read_request__get_packed_size(&q);
    uint8_t *f = link_frame(l, len, &why);
    cr_assert_not_null(f);
    f[0] = LINK_REQ;
    trib__read_request__pack(&q, f + 1);
    cr_assert_eq(link_send_frame(l, len, 3000, &why), 0, "send: %s", link_reason_name(why));
}

/* The owner's link server, as a node that dials it: its port and static key. */
typedef struct {
    h_node_t *n;
    int port;
    uint8_t spk[32];
} owner_t;

static void owner_links_start(owner_t *o, h_node_t *a)
{
    o->n = a;
    o->port = h_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", o->port);
    cr_assert_eq(h_node_start(a, "payments", STEADY, "--link-listen", listen, NULL), 0, "payments did not start");
    big_product(a, RECORDS);
    json_t *js = h_get_json(a->url, "/v1/status", NULL);
    uint8_t aid[32];
    cr_assert_not_null(js);
    cr_assert_eq(identity_from_hex(json_string_value(json_object_get(js, "node_id")), aid), 0);
    json_decref(js);
    cr_assert_eq(crypto_sign_ed25519_pk_to_curve25519(o->spk, aid), 0);
}

/* Another node reads the whole product over a link of its own: its records. */
static long link_read_all(owner_t *o, const identity_t *me)
{
    link_t *l = link_to(o->port, o->spk, me, 0);
    link_ask(l, 1, o->n->token);
    long records = 0;
    for (int done = 0; !done;) {
        const uint8_t *f;
        size_t len;
        link_reason_t why;
        cr_assert_eq(link_recv(l, &f, &len, 10000, &why), 1, "the other reader: %s", link_reason_name(why));
        Trib__ReadBatch *bt = len > 1 && f[0] == LINK_BATCH ? trib__read_batch__unpack(NULL, len - 1, f + 1) : NULL;
        cr_assert_not_null(bt);
        cr_assert_eq(bt->status, 0, "the other reader was refused: %s", bt->error);
        for (size_t i = 0; i < bt->lines.len; i++)
            records += bt->lines.data[i] == '\n';
        done = bt->done;
        trib__read_batch__free_unpacked(bt, NULL);
    }
    link_close(&l);
    return records;
}

/* nkeys nodes open per links each to the owner, each asking for the whole product, and read
 * nothing: the owner's RssAnon growth (KiB) once it stopped sending. The links stay open in l. */
static long links_reading_nothing(owner_t *o, int nkeys, int per, link_t **l)
{
    long anon0 = h_rss_anon_kib(o->n->pid), rss0 = vm_rss_kib(o->n->pid);
    cr_assert_gt(anon0, 0);
    for (int k = 0; k < nkeys; k++) {
        identity_t me;
        peer_identity(&me);
        for (int i = 0; i < per; i++) {
            l[k * per + i] = link_to(o->port, o->spk, &me, 1);
            link_ask(l[k * per + i], 10 + (uint64_t)i, o->n->token);
        }
        identity_wipe(&me);
    }
    metric_cond_t asked = {o->n, "trib_link_requests_total", nkeys * per};   /* every read began */
    cr_assert(h_wait(metric_at_least, &asked, 30000), "%g of %d reads began",
              h_metric(o->n->url, "trib_link_requests_total"), nkeys * per);
    still_t st = {o->n, -1, 0};
    cr_assert(h_wait(sends_still, &st, 60000), "the owner never stopped sending (%g batches)", st.sent);
    long anon1 = h_rss_anon_kib(o->n->pid), rss1 = vm_rss_kib(o->n->pid);
    cr_log_info("%d nodes x %d links reading nothing: the owner sent %g batches, %g reads narrowed, %g bytes of batch "
                "room held; RssAnon %ld -> %ld KiB (%+ld), VmRSS %ld -> %ld KiB (%+ld)",
                nkeys, per, st.sent, h_metric(o->n->url, "trib_read_link_narrowed_total"),
                h_metric(o->n->url, "trib_read_link_promised_bytes"), anon0, anon1, anon1 - anon0, rss0, rss1,
                rss1 - rss0);
    return anon1 - anon0;
}

/* Over data links TCP is the flow control, and a link whose relay reads nothing holds its owner
 * thread (~28 KiB of stack touched) and its read's page and frame (~1 MiB each) until
 * --link-send-ms (docs/federation.md "Paused and slow clients"): on the old code 64 links of one
 * node cost the owner ~2.2 MiB each (+141 MiB). Now a node's reads hold 22 MiB of batch room at
 * most, its other reads go with narrow batches (~128 KiB), and its 64 links grow the owner's
 * RssAnon by less than 32 MiB (+21 MiB seen); another node's read is served in full batches and in
 * full meanwhile. */
Test(readmem, links_of_one_node_that_read_nothing_hold_at_most_its_share_of_the_links_budget)
{
    h_node_t a;
    owner_t o;
    owner_links_start(&o, &a);
    enum { N = 64 };
    link_t *l[N];
    long grew = links_reading_nothing(&o, 1, N, l);
    cr_assert(!RSS_SAYS || grew < 32 * 1024, "%d links of one node that read nothing grew the owner's RssAnon by %ld "
              "KiB", N, grew);
    cr_assert_leq(h_metric(a.url, "trib_read_link_promised_bytes"), 22.0 * 1024 * 1024);
    double narrowed = h_metric(a.url, "trib_read_link_narrowed_total");
    cr_assert_geq(narrowed, N - 22 / 2, "%g of %d reads narrowed", narrowed, N);
    identity_t other;
    peer_identity(&other);
    cr_assert_eq(link_read_all(&o, &other), RECORDS);
    cr_assert_eq(h_metric(a.url, "trib_read_link_narrowed_total"), narrowed, "another node's read was narrowed");
    for (int i = 0; i < N; i++)
        link_close(&l[i]);
    metric_cond_t none = {&a, "trib_read_link_promised_bytes", 0};
    cr_assert(h_wait(metric_is, &none, 10000), "%g bytes of batch room held once the links closed",
              h_metric(a.url, "trib_read_link_promised_bytes"));
    identity_wipe(&other);
}

/* All nodes together: 8 nodes of 30 links each (240 of the 256 links) that read nothing hold 88 MiB
 * of batch room at most, and grow the owner's RssAnon by ~128 MiB at most (on the old code ~2.2 MiB
 * a link: +510 MiB seen); another node's read is served in full meanwhile (narrow: the budget is held). */
Test(readmem, links_of_many_nodes_that_read_nothing_hold_at_most_the_links_budget)
{
    h_node_t a;
    owner_t o;
    owner_links_start(&o, &a);
    enum { KEYS = 8, PER = 30, N = KEYS * PER };
    link_t *l[N];
    long grew = links_reading_nothing(&o, KEYS, PER, l);
    cr_assert(!RSS_SAYS || grew < 128 * 1024, "%d links of %d nodes that read nothing grew the owner's RssAnon by "
              "%ld KiB", N, KEYS, grew);
    cr_assert_leq(h_metric(a.url, "trib_read_link_promised_bytes"), 88.0 * 1024 * 1024);
    cr_assert_gt(h_metric(a.url, "trib_read_link_narrowed_total"), 0);
    identity_t other;
    peer_identity(&other);
    cr_assert_eq(link_read_all(&o, &other), RECORDS);
    for (int i = 0; i < N; i++)
        link_close(&l[i]);
    identity_wipe(&other);
}
