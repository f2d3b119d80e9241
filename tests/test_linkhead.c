/* tests/test_linkhead.c - a data link read's head first (ReadRequest.head_first, LINK_ADMIT in
 * gossip/linkserve.h): the owner admits the read in a frame of its own before reading records, the
 * relay opens the read on it and waits for batch 1 in its first lread_next. In process against a
 * scripted owner (the relay's side: admission then records, every refusal before it, a refusal
 * after it, a garbage or malformed admission, an admission and then no batch, silence or a close,
 * two admissions, an older owner that sends batch 1 at once, random admissions), and against a
 * real `trib agent` owner (it admits only a read that asks, and refuses before any admission). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "gossip/identity.h"
#include "gossip/link.h"
#include "gossip/linkserve.h"
#include "gossip/reads_link.h"
#include "proto/tributary.pb-c.h"
#include "tests/fixtures.h"
#include "tests/harness.h"
#include "tests/ledger.h"

TestSuite(linkhead, .fini = h_cleanup_all, .timeout = 120);

#define LINES "{\"id\":1}\n{\"id\":2}\n"

/* What the scripted owner sends after it read the request, in order. */
typedef enum {
    S_END = 0,
    S_ADMIT,            /* a proper admission: last_seq 42, schema 7 "1.2.0" */
    S_BATCH1,           /* batch 1: LINES from seq 1, done */
    S_REFUSE,           /* batch 1, done, 403 token_required (a refusal) */
    S_FAIL,             /* batch 1, done, 500 "disk on fire" (a failure after the admission) */
    S_ADMIT_GARBAGE,    /* LINK_ADMIT and bytes that are no ReadBatch */
    S_ADMIT_RECORDS,    /* an admission carrying records */
    S_ADMIT_STATUS,     /* an admission done with a status */
    S_ADMIT_OTHER,      /* an admission of another stream */
    S_ADMIT_RANDOM,     /* a proper admission with random bytes flipped, cut or added */
    S_HOLD,             /* nothing more until the test lets go (bounded) */
} step_t;

typedef struct {
    int lfd;
    link_keys_t keys;
    step_t steps[8];
    int head_first;     /* the request asked for it */
    int got_request;
    int release[2];     /* S_HOLD waits for a byte here */
    unsigned seed;
} owner_t;

static int allow_any(void *ctx, const uint8_t pk[32], const uint8_t *hello, size_t len, char *err, size_t errlen)
{
    (void)ctx, (void)pk, (void)hello, (void)len, (void)err, (void)errlen;
    return 0;
}

/* As an owner sends a batch (gossip/linkserve.c): the type, the other fields, the lines last. */
static void send_batch(link_t *l, int type, const Trib__ReadBatch *b)
{
    Trib__ReadBatch h = *b;
    h.lines = (ProtobufCBinaryData){0, NULL};
    size_t hl = trib__read_batch__get_packed_size(&h), n = 1 + hl + (b->lines.len ? 2 + b->lines.len : 0);
    cr_assert_lt(b->lines.len, 128);
    link_reason_t why;
    uint8_t *p = link_frame(l, n, &why);
    cr_assert_not_null(p);
    p[0] = (uint8_t)type;
    trib__read_batch__pack(&h, p + 1);
    if (b->lines.len) {
        p[1 + hl] = 9 << 3 | 2;
        p[2 + hl] = (uint8_t)b->lines.len;
        memcpy(p + 3 + hl, b->lines.data, b->lines.len);
    }
    link_send_frame(l, n, 3000, &why);   /* the relay may have closed already */
}

static void send_raw(link_t *l, const uint8_t *buf, size_t len)
{
    link_reason_t why;
    link_send(l, buf, len, 3000, &why);
}

/* One connection: the handshake, the request, then the script. */
static void *owner_main(void *arg)
{
    owner_t *o = arg;
    struct pollfd pf = {.fd = o->lfd, .events = POLLIN};
    int fd = poll(&pf, 1, 10000) == 1 ? accept(o->lfd, NULL, NULL) : -1;   /* bounded: a test must end */
    link_reason_t why;
    char err[200];
    link_t *l = fd < 0 ? NULL : link_accept(fd, &o->keys, allow_any, NULL, NULL, 0, LINK_MAX_FRAME, 5000, &why, err,
                                            sizeof err);
    const uint8_t *f;
    size_t len;
    if (!l || link_recv(l, &f, &len, 5000, &why) != 1 || len < 2 || f[0] != LINK_REQ) {
        link_close(&l);
        return NULL;
    }
    Trib__ReadRequest *q = trib__read_request__unpack(NULL, len - 1, f + 1);
    if (!q) {
        link_close(&l);
        return NULL;
    }
    o->got_request = 1;
    o->head_first = q->head_first;
    uint64_t id = q->stream_id;
    trib__read_request__free_unpacked(q, NULL);
    for (int i = 0; i < 8 && o->steps[i] != S_END; i++) {
        Trib__ReadBatch b = TRIB__READ_BATCH__INIT;
        b.stream_id = id;
        b.first_seq = 1;
        switch (o->steps[i]) {
        case S_ADMIT:
        case S_ADMIT_RECORDS:
        case S_ADMIT_STATUS:
        case S_ADMIT_OTHER:
        case S_ADMIT_RANDOM:
            b.last_seq = 42;
            b.schema_seq = 7;
            b.schema_version = "1.2.0";
            if (o->steps[i] == S_ADMIT_RECORDS)
                b.lines = (ProtobufCBinaryData){strlen(LINES), (uint8_t *)LINES};
            if (o->steps[i] == S_ADMIT_STATUS) {
                b.done = 1;
                b.status = 403;
                b.error = "no";
            }
            if (o->steps[i] == S_ADMIT_OTHER)
                b.stream_id = id + 1;
            if (o->steps[i] != S_ADMIT_RANDOM) {
                send_batch(l, LINK_ADMIT, &b);
                break;
            }
            {
                uint8_t buf[256];
                buf[0] = LINK_ADMIT;
                size_t n = 1 + trib__read_batch__pack(&b, buf + 1);
                unsigned r = rand_r(&o->seed);
                for (unsigned k = 0, flips = 1 + r % 4; k < flips; k++)
                    buf[1 + rand_r(&o->seed) % (n - 1)] ^= (uint8_t)(1 + rand_r(&o->seed) % 255);
                if (r & 16)
                    n = 1 + rand_r(&o->seed) % n;   /* cut */
                else if (r & 32)
                    for (size_t k = 0, add = rand_r(&o->seed) % 20; k < add && n < sizeof buf; k++)
                        buf[n++] = (uint8_t)rand_r(&o->seed);
                send_raw(l, buf, n);
            }
            break;
        case S_BATCH1:
            b.batch_no = 1;
            b.last_seq = 42;
            b.done = 1;
            b.schema_seq = 7;
            b.schema_version = "1.2.0";
            b.lines = (ProtobufCBinaryData){strlen(LINES), (uint8_t *)LINES};
            send_batch(l, LINK_BATCH, &b);
            break;
        case S_REFUSE:
        case S_FAIL:
            b.batch_no = 1;
            b.done = 1;
            b.status = o->steps[i] == S_REFUSE ? 403 : 500;
            b.error_kind = o->steps[i] == S_REFUSE ? "token_required" : "";
            b.error = o->steps[i] == S_REFUSE ? "a token is required" : "disk on fire";
            send_batch(l, LINK_BATCH, &b);
            break;
        case S_ADMIT_GARBAGE: {
            static const uint8_t junk[] = {LINK_ADMIT, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
            send_raw(l, junk, sizeof junk);
            break;
        }
        case S_HOLD: {
            struct pollfd p = {.fd = o->release[0], .events = POLLIN};
            poll(&p, 1, 10000);
            break;
        }
        default:
            break;
        }
    }
    link_close(&l);
    return NULL;
}

static identity_t owner_id, relay_id;

static void relay_keys(void *ctx, uint8_t id[32], uint8_t pk[32], uint8_t sk[32])
{
    (void)ctx;
    memcpy(id, relay_id.pk, 32);
    memcpy(pk, relay_id.curve_pk, 32);
    memcpy(sk, relay_id.curve_sk, 32);
}

/* A scripted owner listening on a free loopback port (its address in addr). */
static void owner_listen(owner_t *o, char *addr, size_t len)
{
    cr_assert_geq(sodium_init(), 0);
    fx_identity(&owner_id), fx_identity(&relay_id);
    int port = h_free_port();
    o->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int one = 1;
    setsockopt(o->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    cr_assert_eq(bind(o->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(o->lfd, 4), 0);
    memcpy(o->keys.pk, owner_id.curve_pk, 32);
    memcpy(o->keys.sk, owner_id.curve_sk, 32);
    link_prologue_open(NULL, o->keys.prologue);
    cr_assert_eq(pipe(o->release), 0);
    snprintf(addr, len, "127.0.0.1:%d", port);
}

static void owner_done(owner_t *o)
{
    close(o->lfd);
    close(o->release[0]);
    close(o->release[1]);
}

static linkpool_t *new_pool(void)
{
    linkpool_opts_t po = {.keys = relay_keys, .open_timeout_ms = 500, .stall_ms = 1000};
    link_prologue_open(NULL, po.prologue);
    linkpool_t *p = linkpool_new(&po);
    cr_assert_not_null(p);
    return p;
}

typedef struct {
    int rc, status;
    char kind[32], err[400];
    uint64_t last;
    lread_t *rd;
    pthread_t owner;    /* joined by done_with */
} opened_t;

/* lread_open on pool p against the owner at addr, with o's script run for the one connection. */
static void open_against(linkpool_t *p, owner_t *o, const char *addr, opened_t *out)
{
    memset(out, 0, sizeof *out);
    cr_assert_eq(pthread_create(&out->owner, NULL, owner_main, o), 0);
    reads_open_t ro = {.product = "payments/ledger", .limit = 10, .owner_id = owner_id.pk,
                       .owner_addr = "127.0.0.1:7470", .owner_desc = "the test owner"};
    out->rc = lread_open(p, &ro, addr, &out->rd, &out->last, &out->status, out->kind, sizeof out->kind, out->err,
                         sizeof out->err);
}

/* Ends r: the owner let go (a held script), the read closed, the owner's thread joined. */
static void done_with(owner_t *o, opened_t *r)
{
    if (write(o->release[1], "x", 1) != 1)
        cr_assert_fail("cannot release the owner");
    lread_close(&r->rd);
    pthread_join(r->owner, NULL);
    char c;
    struct pollfd p = {.fd = o->release[0], .events = POLLIN};
    while (poll(&p, 1, 0) == 1 && read(o->release[0], &c, 1) == 1)   /* unused releases */
        ;
}

/* The rest of rd: the bytes (in buf), and the end (READS_END, READS_FAILED with kind/err). */
static long read_all(lread_t *rd, char *buf, size_t cap, size_t *got, char *kind, char *err)
{
    *got = 0;
    for (int i = 0; i < 100; i++) {
        long n = lread_next(rd, buf + *got, cap - *got, 0, kind, 32, err, 400);
        if (n > 0) {
            *got += (size_t)n;
            continue;
        }
        if (n != 0)
            return n;
    }
    return 0;
}

static long metric_of(linkpool_t *p, const char *series)
{
    char *m = NULL;
    size_t mlen = 0;
    FILE *f = open_memstream(&m, &mlen);
    linkpool_metrics(p, f);
    fclose(f);
    const char *s = strstr(m, series);
    long v = s ? strtol(s + strlen(series), NULL, 10) : -1;
    free(m);
    return v;
}

/* ------------------------------------------------------------------ the relay, in process */

Test(linkhead, an_admission_opens_the_read_and_batch_1_follows_in_the_first_next)
{
    owner_t o = {.steps = {S_ADMIT, S_BATCH1}};
    char addr[64], buf[256], kind[32] = "", err[400] = "";
    owner_listen(&o, addr, sizeof addr);
    linkpool_t *p = new_pool();
    opened_t r;
    open_against(p, &o, addr, &r);
    cr_assert_eq(r.rc, 1, "not opened: %d %s %s", r.status, r.kind, r.err);
    cr_assert(o.head_first, "the relay's request did not ask for the head first");
    cr_assert_eq(r.last, 42);
    uint64_t mseq = 0;
    char v[64] = "";
    cr_assert_eq(lread_schema(r.rd, 0, NULL, &mseq, v, sizeof v), 0, "the admission's schema is not the read's");
    cr_assert_eq(mseq, 7);
    cr_assert_str_eq(v, "1.2.0");
    size_t got;
    long end = read_all(r.rd, buf, sizeof buf, &got, kind, err);
    cr_assert_eq(end, READS_END, "ended %ld %s: %s", end, kind, err);
    cr_assert_eq(got, strlen(LINES));
    cr_assert(!memcmp(buf, LINES, got));
    cr_assert_eq(lread_records(r.rd), 2);
    done_with(&o, &r);
    cr_assert_eq(metric_of(p, "\ntrib_link_pooled "), 1, "a cleanly ended read's link was not pooled");
    linkpool_free(&p);
    owner_done(&o);
}

Test(linkhead, an_older_owner_sending_batch_1_at_once_is_read_as_before)
{
    owner_t o = {.steps = {S_BATCH1}};
    char addr[64], buf[256], kind[32] = "", err[400] = "";
    owner_listen(&o, addr, sizeof addr);
    linkpool_t *p = new_pool();
    opened_t r;
    open_against(p, &o, addr, &r);
    cr_assert_eq(r.rc, 1, "not opened: %d %s %s", r.status, r.kind, r.err);
    cr_assert_eq(r.last, 42);
    size_t got;
    cr_assert_eq(read_all(r.rd, buf, sizeof buf, &got, kind, err), READS_END, "%s: %s", kind, err);
    cr_assert_eq(got, strlen(LINES));
    done_with(&o, &r);
    linkpool_free(&p);
    owner_done(&o);
}

Test(linkhead, a_refusal_before_the_admission_is_the_clients_status)
{
    owner_t o = {.steps = {S_REFUSE}};
    char addr[64];
    owner_listen(&o, addr, sizeof addr);
    linkpool_t *p = new_pool();
    opened_t r;
    open_against(p, &o, addr, &r);
    cr_assert_eq(r.rc, -1, "a refused read opened (%d)", r.rc);
    cr_assert_eq(r.status, 403);
    cr_assert_str_eq(r.kind, "token_required");
    done_with(&o, &r);
    linkpool_free(&p);
    owner_done(&o);
}

Test(linkhead, a_failure_after_the_admission_ends_the_read_with_its_error)
{
    owner_t o = {.steps = {S_ADMIT, S_FAIL}};
    char addr[64], buf[256], kind[32] = "", err[400] = "";
    owner_listen(&o, addr, sizeof addr);
    linkpool_t *p = new_pool();
    opened_t r;
    open_against(p, &o, addr, &r);
    cr_assert_eq(r.rc, 1, "not opened: %d %s %s", r.status, r.kind, r.err);
    size_t got;
    long end = read_all(r.rd, buf, sizeof buf, &got, kind, err);
    cr_assert_eq(end, READS_FAILED, "ended %ld", end);
    cr_assert_eq(got, 0);
    cr_assert_str_eq(kind, "owner_error");
    cr_assert(strstr(err, "disk on fire"), "%s", err);
    done_with(&o, &r);
    linkpool_free(&p);
    owner_done(&o);
}

Test(linkhead, an_admission_and_no_batch_ends_the_read_with_owner_lost)
{
    /* the owner holds the link silent, then closes it; either way no record and no hang */
    for (int close_it = 0; close_it < 2; close_it++) {
        owner_t o = {.steps = {S_ADMIT, close_it ? S_END : S_HOLD}};
        char addr[64], buf[256], kind[32] = "", err[400] = "";
        owner_listen(&o, addr, sizeof addr);
        linkpool_t *p = new_pool();
        opened_t r;
        open_against(p, &o, addr, &r);
        cr_assert_eq(r.rc, 1, "not opened: %d %s %s", r.status, r.kind, r.err);
        long t0 = h_now_ms();
        size_t got;
        long end = read_all(r.rd, buf, sizeof buf, &got, kind, err);
        cr_assert_eq(end, READS_FAILED, "%s: ended %ld", close_it ? "closed" : "silent", end);
        cr_assert_str_eq(kind, "owner_lost", "%s", err);
        cr_assert_lt(h_now_ms() - t0, 5000, "a silent owner held the read %ld ms", h_now_ms() - t0);
        done_with(&o, &r);
        cr_assert_eq(metric_of(p, "\ntrib_link_pooled "), 0, "a link mid-read was pooled");
        linkpool_free(&p);
        owner_done(&o);
    }
}

Test(linkhead, a_second_admission_is_not_a_batch_of_the_read)
{
    owner_t o = {.steps = {S_ADMIT, S_ADMIT, S_HOLD}};
    char addr[64], buf[256], kind[32] = "", err[400] = "";
    owner_listen(&o, addr, sizeof addr);
    linkpool_t *p = new_pool();
    opened_t r;
    open_against(p, &o, addr, &r);
    cr_assert_eq(r.rc, 1, "not opened: %d %s %s", r.status, r.kind, r.err);
    size_t got;
    cr_assert_eq(read_all(r.rd, buf, sizeof buf, &got, kind, err), READS_FAILED);
    cr_assert_str_eq(kind, "owner_lost", "%s", err);
    cr_assert(strstr(err, "not a batch"), "%s", err);
    done_with(&o, &r);
    linkpool_free(&p);
    owner_done(&o);
}

Test(linkhead, a_garbage_admission_is_a_failed_link_and_the_read_goes_over_the_peer_transport)
{
    static const step_t bad[] = {S_ADMIT_GARBAGE, S_ADMIT_OTHER};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        owner_t o = {.steps = {bad[i]}};
        char addr[64];
        owner_listen(&o, addr, sizeof addr);
        linkpool_t *p = new_pool();
        opened_t r;
        open_against(p, &o, addr, &r);
        cr_assert_eq(r.rc, 0, "step %d: opened (%d) on a garbage admission: %s", (int)bad[i], r.rc, r.err);
        cr_assert_eq(metric_of(p, "trib_link_dial_failed_total{reason=\"garbage\"} "), 1, "not counted");
        done_with(&o, &r);
        linkpool_free(&p);
        owner_done(&o);
    }
}

Test(linkhead, an_admission_with_records_or_a_status_is_refused_as_the_owners_error)
{
    static const step_t bad[] = {S_ADMIT_RECORDS, S_ADMIT_STATUS};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        owner_t o = {.steps = {bad[i]}};
        char addr[64];
        owner_listen(&o, addr, sizeof addr);
        linkpool_t *p = new_pool();
        opened_t r;
        open_against(p, &o, addr, &r);
        cr_assert_eq(r.rc, -1, "step %d: %d", (int)bad[i], r.rc);
        cr_assert_eq(r.status, 502, "step %d: %d %s %s", (int)bad[i], r.status, r.kind, r.err);
        cr_assert_str_eq(r.kind, "owner_unreachable");
        cr_assert(strstr(r.err, "not an admission"), "%s", r.err);
        cr_assert_eq(metric_of(p, "\ntrib_link_pooled "), 0);
        done_with(&o, &r);
        linkpool_free(&p);
        owner_done(&o);
    }
}

/* Random admissions (a proper one with bytes flipped, cut or added), then the link closes: the
 * relay opens, falls back or refuses, and an opened read ends; never a crash or a hang. */
Test(linkhead, random_admissions)
{
    owner_t o = {0};
    char addr[64], buf[256], kind[32], err[400];
    owner_listen(&o, addr, sizeof addr);
    int seen[3] = {0};
    for (unsigned i = 0; i < 150; i++) {
        o.steps[0] = S_ADMIT_RANDOM;
        o.steps[1] = S_END;
        o.seed = 1000 + i;
        o.got_request = 0;
        linkpool_t *p = new_pool();
        opened_t r;
        open_against(p, &o, addr, &r);
        cr_assert(r.rc >= -1 && r.rc <= 1, "%d", r.rc);
        seen[r.rc + 1]++;
        if (r.rc == 1) {
            size_t got;
            long end = read_all(r.rd, buf, sizeof buf, &got, kind, err);
            cr_assert_eq(end, READS_FAILED, "seed %u: a read with no batch ended %ld", o.seed, end);
            cr_assert_eq(got, 0);
        } else {
            cr_assert_null(r.rd);
        }
        done_with(&o, &r);
        linkpool_free(&p);
    }
    cr_assert(seen[1] > 0, "no random admission was refused as garbage (%d %d %d)", seen[0], seen[1], seen[2]);
    owner_done(&o);
}

/* ------------------------------------------------------------------ a real owner */

static void request(link_t *l, uint64_t id, const char *token, int head_first)
{
    Trib__ReadRequest q = TRIB__READ_REQUEST__INIT;
    q.stream_id = id;
    q.product_id = LEDGER_ID;
    q.from_seq = 3;
    q.limit = 5;
    q.credit = 1;
    q.head_first = head_first;
    if (token)
        q.token = (ProtobufCBinaryData){strlen(token), (uint8_t *)token};
    size_t n = 1 + trib__read_request__get_packed_size(&q);
    link_reason_t why;
    uint8_t *p = link_frame(l, n, &why);
    cr_assert_not_null(p);
    p[0] = LINK_REQ;
    trib__read_request__pack(&q, p + 1);
    cr_assert_eq(link_send_frame(l, n, 3000, &why), 0, "%s", link_reason_name(why));
}

/* The next frame of l: its type, and its ReadBatch in *b. */
static int frame(link_t *l, Trib__ReadBatch **b)
{
    const uint8_t *f;
    size_t len;
    link_reason_t why;
    cr_assert_eq(link_recv(l, &f, &len, 10000, &why), 1, "no frame: %s", link_reason_name(why));
    cr_assert_gt(len, 1);
    *b = trib__read_batch__unpack(NULL, len - 1, f + 1);
    cr_assert_not_null(*b, "not a ReadBatch");
    return f[0];
}

Test(linkhead, a_real_owner_admits_a_read_that_asks_before_its_records_and_refuses_before_any_admission)
{
    h_node_t a;
    int port = h_free_port();
    char listen[64], err[512];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    cr_assert_eq(h_node_start(&a, "payments", "--link-listen", listen, NULL), 0, "payments did not start");
    cr_assert_eq(ledger_publish(a.url, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ledger_append(a.url, 1, 10, 20, err, sizeof err), 0, "%s", err);
    json_t *s = h_get_json(a.url, "/v1/status", NULL);
    cr_assert_not_null(s);
    uint8_t aid[32];
    cr_assert_eq(identity_from_hex(json_string_value(json_object_get(s, "node_id")), aid), 0);
    json_decref(s);
    cr_assert_geq(sodium_init(), 0);
    identity_t me;
    fx_identity(&me);
    link_keys_t k;
    memcpy(k.pk, me.curve_pk, 32);
    memcpy(k.sk, me.curve_sk, 32);
    link_prologue_open("tributary", k.prologue);
    uint8_t spk[32];
    cr_assert_eq(crypto_sign_ed25519_pk_to_curve25519(spk, aid), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    link_reason_t why;
    link_t *l = link_dial(fd, &k, spk, me.pk, 32, LINK_MAX_FRAME, 3000, &why, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    Trib__ReadBatch *b;
    /* asked: the admission (no records, no status, the head's fields), then batch 1 */
    request(l, 11, a.token, 1);
    cr_assert_eq(frame(l, &b), LINK_ADMIT, "the owner did not admit the read first");
    cr_assert(b->stream_id == 11 && b->batch_no == 0 && !b->done && !b->status && !b->lines.len,
              "not an admission: stream %llu batch %llu done %d status %u lines %zu", (unsigned long long)b->stream_id,
              (unsigned long long)b->batch_no, b->done, b->status, b->lines.len);
    cr_assert_eq(b->last_seq, 10);
    cr_assert(b->schema_version && *b->schema_version, "the admission names no schema");
    char version[64];
    snprintf(version, sizeof version, "%s", b->schema_version);
    uint64_t mseq = b->schema_seq;
    trib__read_batch__free_unpacked(b, NULL);
    cr_assert_eq(frame(l, &b), LINK_BATCH);
    cr_assert(b->batch_no == 1 && b->done && b->first_seq == 3 && b->lines.len, "batch 1 is not the range");
    cr_assert_eq(b->schema_seq, mseq, "batch 1 names another schema than the admission");
    cr_assert_str_eq(b->schema_version, version);
    trib__read_batch__free_unpacked(b, NULL);
    /* not asked (an older relay): batch 1 at once */
    request(l, 12, a.token, 0);
    cr_assert_eq(frame(l, &b), LINK_BATCH, "an admission to a relay that did not ask");
    cr_assert(b->batch_no == 1 && b->done && b->lines.len);
    trib__read_batch__free_unpacked(b, NULL);
    /* refused (no token): the refusal, with no admission before it */
    request(l, 13, NULL, 1);
    cr_assert_eq(frame(l, &b), LINK_BATCH, "a refused read was admitted first");
    cr_assert(b->done && b->status >= 400, "not refused (status %u)", b->status);
    trib__read_batch__free_unpacked(b, NULL);
    link_close(&l);
    identity_wipe(&me);
}
