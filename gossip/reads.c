/* gossip/reads.c - routed reads over the peer transport (see reads.h for the protocol and roles).
 *
 * Owns: the owner's stream table (loop thread only), the relay's sessions, feeds and rings (under
 * one mutex, shared by the loop and HTTP threads), the messages MSG_READ_{REQ,BATCH,CREDIT,CANCEL},
 * and the read counters.
 * Must not: block the loop, send while holding the mutex, keep an LMDB transaction beyond one
 * batch, or read records of another domain's products from the store (those live on their owner).
 *
 * Sections: helpers, relay sessions, feeds, readers (HTTP threads), owner streams, the loop side
 * (handle, drain, pump, tick), metrics, lifecycle. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gossip/clock.h"
#include "gossip/entry.h"
#include "gossip/reads.h"
#include "proto/tributary.pb-c.h"

#define ADDR_MAX 64
#define DESC_MAX 400
#define ERR_MAX 512
#define KIND_MAX 32
#define STAGE_BYTES (256u * 1024u)   /* live reader: ring bytes copied out per step */
#define MAX_WINDOW 256               /* a requester may not ask for more batches in flight */
#define MSG_SLACK (64u * 1024u)      /* room for the envelope and batch fields in max_msg (at most half) */

/* ================================================================== helpers */

static void deadline_ts(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

/* A message to send once the mutex is released. */
typedef struct outmsg {
    struct outmsg *next;
    char addr[ADDR_MAX];
    int type;
    uint64_t stream_id;     /* for failing the session when an open cannot be sent */
    size_t len;
    uint8_t body[];
} outmsg_t;

typedef struct {
    outmsg_t *head, *tail;
} outq_t;

static void outq_add(outq_t *q, const char *addr, int type, uint64_t id, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    outmsg_t *o = malloc(sizeof *o + (len ? len : 1));
    if (!o)
        return; /* the peer notices through stall/keepalive timers */
    o->next = NULL;
    snprintf(o->addr, sizeof o->addr, "%s", addr);
    o->type = type;
    o->stream_id = id;
    o->len = protobuf_c_message_pack(m, o->body);
    if (q->tail)
        q->tail->next = o;
    else
        q->head = o;
    q->tail = o;
}

static void outq_cancel(outq_t *q, const char *addr, uint64_t id)
{
    Trib__ReadCancel c = TRIB__READ_CANCEL__INIT;
    c.stream_id = id;
    outq_add(q, addr, TRIB__MSG_TYPE__MSG_READ_CANCEL, id, &c.base);
}

/* ================================================================== state */

typedef struct rbatch {
    struct rbatch *next;
    Trib__ReadBatch *msg;
} rbatch_t;

typedef struct ring_rec {
    uint64_t seq;
    size_t len;
    char *data;
} ring_rec_t;

struct feed;

/* One stream to an owner, seen from the relay. Every field is under reads.mu. */
typedef struct session {
    struct session *next;
    uint64_t id;
    uint8_t owner[32];
    char owner_addr[ADDR_MAX], owner_desc[DESC_MAX];
    struct feed *feed;              /* set on a feed's upstream: the loop consumes its batches */
    char product[STORE_ID_MAX];
    uint64_t from, limit;
    int live, from_tail;
    uint32_t window;
    int need_open, credit_due;      /* asks for the loop */
    uint64_t last_heard, last_sent; /* ms */
    uint64_t expect_batch;          /* next batch_no */
    uint64_t next_seq;              /* next record seq expected (after the first batch) */
    uint64_t last_seq;              /* owner's last seq, from batch 1 */
    int opened, done, failed;
    int status;                     /* refusal status of the owner (first batch) or 0 */
    char kind[KIND_MAX], err[ERR_MAX];
    rbatch_t *qhead, *qtail;
    size_t qlen;
    uint64_t consumed, acked_sent;
    pthread_cond_t cv;
} session_t;

/* One shared live upstream per product on this relay, with a ring of recent records. */
typedef struct feed {
    struct feed *next;
    char product[STORE_ID_MAX];
    session_t *up;
    int nsubs, linked;
    ring_rec_t *ring;
    size_t cap, head, count, bytes;
    uint64_t first, end;            /* the ring holds seqs [first, end) */
} feed_t;

typedef struct cancel {
    struct cancel *next;
    char addr[ADDR_MAX];
    uint64_t id;
} cancel_t;

/* One stream served by this node (the owner). Loop thread only. */
typedef struct ostream {
    struct ostream *next;
    uint8_t peer[32];
    char peer_addr[ADDR_MAX];
    uint64_t id;
    char product[STORE_ID_MAX];
    uint64_t next_seq, remaining;   /* remaining UINT64_MAX: no limit */
    int live, waiting, dead;
    uint32_t window;
    size_t max_bytes;
    uint64_t sent, acked;
    uint64_t last_heard, last_sent;
} ostream_t;

#define NOTIFY_MAX 64

struct reads {
    store_t *st;
    char domain[64];
    reads_config_t c;
    size_t room;                    /* record bytes a batch may carry: max_msg less MSG_SLACK */
    reads_io_t io;
    pthread_mutex_t mu;
    /* relay side (mu) */
    session_t *sessions;
    size_t nsessions;
    feed_t *feeds;
    size_t nfeeds, nsubs;
    cancel_t *cancels;
    uint64_t next_id;
    int dirty;                      /* a session wants an open or credit sent */
    int shutting_down;
    size_t queued, queued_hwm, ring_records;
    /* notifications of local appends (mu) */
    char notify[NOTIFY_MAX][STORE_ID_MAX];
    int nnotify, notify_all;
    /* owner side (loop only) */
    ostream_t *streams;
    uint64_t next_tick;
    /* counters (any thread reads them) */
    atomic_uint_fast64_t owner_streams, owner_live, batches_sent, batches_recv, records_sent, records_recv,
        streams_expired, streams_refused, fail_owner_lost, fail_refused, fail_open_timeout, keepalives_sent,
        credits_sent, overrun;
};

#define BUMP(r, field, n) atomic_fetch_add_explicit(&(r)->field, (n), memory_order_relaxed)

/* ================================================================== relay sessions (mu held) */

static session_t *session_find(reads_t *r, uint64_t id)
{
    for (session_t *s = r->sessions; s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

static void session_unlink(reads_t *r, session_t *s)
{
    for (session_t **p = &r->sessions; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            r->nsessions--;
            return;
        }
}

static void feed_unlink(reads_t *r, feed_t *f)
{
    if (!f->linked)
        return;
    for (feed_t **p = &r->feeds; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            r->nfeeds--;
            break;
        }
    f->linked = 0;
}

/* Marks s failed (first failure wins) and wakes its readers. A failed feed stops taking new
 * subscribers: the next one opens a fresh upstream. */
static void session_fail(reads_t *r, session_t *s, int status, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void session_fail(reads_t *r, session_t *s, int status, const char *kind, const char *fmt, ...)
{
    if (s->failed || s->done)
        return;
    s->failed = 1;
    s->status = status;
    snprintf(s->kind, sizeof s->kind, "%s", kind);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    /* The detail may carry an owner's text (any bytes, cut at ERR_MAX perhaps inside a UTF-8
     * sequence); it ends up in a JSON error, which must be valid UTF-8. */
    for (char *c = s->err; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?';
    if (!strcmp(kind, "owner_lost"))
        BUMP(r, fail_owner_lost, 1);
    if (s->feed)
        feed_unlink(r, s->feed);
    pthread_cond_broadcast(&s->cv);
}

static session_t *session_new(reads_t *r, const reads_open_t *o, uint64_t from, uint64_t limit, int live,
                              int from_tail, uint32_t window)
{
    session_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->id = r->next_id++;
    memcpy(s->owner, o->owner_id, 32);
    snprintf(s->owner_addr, sizeof s->owner_addr, "%s", o->owner_addr);
    snprintf(s->owner_desc, sizeof s->owner_desc, "%s", o->owner_desc ? o->owner_desc : o->owner_addr);
    snprintf(s->product, sizeof s->product, "%s", o->product);
    s->from = from ? from : 1;
    s->limit = limit;
    s->live = live;
    s->from_tail = from_tail;
    s->window = window;
    s->need_open = 1;
    s->expect_batch = 1;
    s->last_heard = s->last_sent = clock_ms();
    cond_init_mono(&s->cv);
    s->next = r->sessions;
    r->sessions = s;
    r->nsessions++;
    r->dirty = 1;
    return s;
}

/* Unlinks and frees s; tells the owner to stop unless the stream already ended. */
static void session_release(reads_t *r, session_t *s, int *wake)
{
    session_unlink(r, s);
    if (!s->done && !(s->failed && !strcmp(s->kind, "owner_lost")) && !s->need_open) {
        cancel_t *c = malloc(sizeof *c);
        if (c) {
            snprintf(c->addr, sizeof c->addr, "%s", s->owner_addr);
            c->id = s->id;
            c->next = r->cancels;
            r->cancels = c;
            *wake = 1;
        }
    }
    for (rbatch_t *b = s->qhead, *n; b; b = n) {
        n = b->next;
        trib__read_batch__free_unpacked(b->msg, NULL);
        free(b);
    }
    r->queued -= s->qlen;
    pthread_cond_destroy(&s->cv);
    free(s);
}

/* Waits (mu held) until the owner's first reply, a failure or timeout_ms. 0 opened, -1 failed
 * or timed out (then s is failed with the reason). */
static int session_wait_open(reads_t *r, session_t *s, int timeout_ms)
{
    struct timespec ts;
    deadline_ts(&ts, timeout_ms);
    while (!s->opened && !s->failed)
        if (pthread_cond_timedwait(&s->cv, &r->mu, &ts) == ETIMEDOUT)
            break;
    if (s->opened && !s->failed)
        return 0;
    if (!s->failed) {
        BUMP(r, fail_open_timeout, 1);
        session_fail(r, s, 503, "owner_unreachable", "%s did not answer within %u ms", s->owner_desc,
                     (unsigned)timeout_ms);
        s->need_open = 0;
    }
    return -1;
}

/* ================================================================== feeds (mu held) */

static void ring_free(feed_t *f)
{
    for (size_t i = 0; i < f->count; i++)
        free(f->ring[(f->head + i) % f->cap].data);
    free(f->ring);
    f->ring = NULL;
    f->count = f->bytes = 0;
}

static void ring_drop_oldest(reads_t *r, feed_t *f)
{
    ring_rec_t *o = &f->ring[f->head];
    f->bytes -= o->len;
    free(o->data);
    o->data = NULL;
    f->head = (f->head + 1) % f->cap;
    f->count--;
    f->first++;
    r->ring_records--;
}

/* Appends the batch's records to the ring (they continue it: checked by the caller). */
static int ring_take(reads_t *r, feed_t *f, const Trib__ReadBatch *b)
{
    for (size_t i = 0; i < b->n_records; i++) {
        size_t len = b->records[i].len;
        char *d = malloc(len);
        if (!d)
            return -1;
        memcpy(d, b->records[i].data, len);
        while (f->count > 0 && (f->count == f->cap || f->bytes + len > r->c.ring_bytes))
            ring_drop_oldest(r, f);
        ring_rec_t *slot = &f->ring[(f->head + f->count) % f->cap];
        slot->seq = f->end;
        slot->len = len;
        slot->data = d;
        f->count++;
        f->bytes += len;
        f->end++;
        r->ring_records++;
    }
    return 0;
}

static void feed_release(reads_t *r, feed_t *f, int *wake)
{
    feed_unlink(r, f);
    r->ring_records -= f->count;
    ring_free(f);
    session_release(r, f->up, wake);
    free(f);
}

/* ================================================================== readers (HTTP threads) */

struct reads_reader {
    reads_t *r;
    reads_open_t o;
    uint8_t owner_id[32];
    char product[STORE_ID_MAX], owner_addr[ADDR_MAX], owner_desc[DESC_MAX];
    int live;
    session_t *s;               /* range session: the read itself, or a live catch-up */
    feed_t *feed;               /* live */
    uint64_t next;              /* live: next seq to deliver */
    uint64_t catchup_end;       /* live: seq the running catch-up stops before */
    Trib__ReadBatch *cur;       /* batch being copied out */
    size_t ri, roff;
    char *stage;                /* live: records copied from the ring, as NDJSON */
    size_t slen, soff, scap;
};

static void copy_err(char *kind, size_t kindlen, char *err, size_t errlen, const char *k, const char *e)
{
    snprintf(kind, kindlen, "%s", k);
    snprintf(err, errlen, "%s", e);
}

/* Copies records of rd->cur (from ri/roff) as NDJSON into out. */
static size_t emit_batch(reads_reader_t *rd, char *out, size_t cap)
{
    size_t n = 0;
    Trib__ReadBatch *b = rd->cur;
    while (n < cap && rd->ri < b->n_records) {
        const ProtobufCBinaryData *rec = &b->records[rd->ri];
        if (rd->roff < rec->len) {
            size_t k = rec->len - rd->roff < cap - n ? rec->len - rd->roff : cap - n;
            memcpy(out + n, rec->data + rd->roff, k);
            n += k;
            rd->roff += k;
        } else {
            out[n++] = '\n';
            rd->ri++;
            rd->roff = 0;
        }
    }
    return n;
}

/* Next bytes of the range session rd->s. */
static long range_next(reads_reader_t *rd, char *out, size_t cap, int timeout_ms, char *kind, size_t kindlen,
                       char *err, size_t errlen)
{
    reads_t *r = rd->r;
    for (;;) {
        if (rd->cur) {
            size_t n = emit_batch(rd, out, cap);
            if (n > 0)
                return (long)n;
            trib__read_batch__free_unpacked(rd->cur, NULL);
            rd->cur = NULL;
        }
        session_t *s = rd->s;
        int wake = 0;
        struct timespec ts;
        deadline_ts(&ts, timeout_ms);
        pthread_mutex_lock(&r->mu);
        while (!s->qhead && !s->failed && !s->done)
            if (pthread_cond_timedwait(&s->cv, &r->mu, &ts) == ETIMEDOUT)
                break;
        if (s->qhead) {
            rbatch_t *b = s->qhead;
            s->qhead = b->next;
            if (!s->qhead)
                s->qtail = NULL;
            s->qlen--;
            r->queued--;
            s->consumed++;
            uint64_t half = s->window / 2 ? s->window / 2 : 1;
            if (!s->done && s->consumed - s->acked_sent >= half) {
                s->credit_due = 1;
                r->dirty = 1;
                wake = 1;
            }
            pthread_mutex_unlock(&r->mu);
            if (wake)
                r->io.wake(r->io.ctx);
            rd->cur = b->msg;
            rd->ri = rd->roff = 0;
            if (rd->live && b->msg->n_records)
                rd->next = b->msg->first_seq + b->msg->n_records;
            free(b);
            continue;
        }
        long ret = 0;
        if (s->failed) {
            copy_err(kind, kindlen, err, errlen, s->kind, s->err);
            ret = READS_FAILED;
        } else if (s->done) {
            ret = READS_END;
        }
        pthread_mutex_unlock(&r->mu);
        return ret;
    }
}

/* 0 when a new session may open (mu held), else -1 with the refusal. */
static int relay_refuse(reads_t *r, int *status, char *kind, size_t kindlen, char *err, size_t errlen)
{
    if (!r->shutting_down && r->nsessions < r->c.max_sessions)
        return 0;
    *status = 503;
    copy_err(kind, kindlen, err, errlen, r->shutting_down ? "shutting_down" : "busy",
             r->shutting_down ? "this node is shutting down" : "too many routed reads open on this node");
    return -1;
}

/* Opens a range session for rd and waits for its first reply; mu not held. */
static int reader_open_range(reads_reader_t *rd, uint64_t from, uint64_t limit, uint64_t *last_seq, int *status,
                             char *kind, size_t kindlen, char *err, size_t errlen)
{
    reads_t *r = rd->r;
    pthread_mutex_lock(&r->mu);
    if (relay_refuse(r, status, kind, kindlen, err, errlen) < 0) {
        pthread_mutex_unlock(&r->mu);
        return -1;
    }
    session_t *s = session_new(r, &rd->o, from, limit, 0, 0, r->c.window);
    pthread_mutex_unlock(&r->mu);
    if (!s) {
        *status = 500;
        copy_err(kind, kindlen, err, errlen, "internal", "out of memory");
        return -1;
    }
    r->io.wake(r->io.ctx);
    int wake = 0;
    pthread_mutex_lock(&r->mu);
    if (session_wait_open(r, s, (int)r->c.open_timeout_ms) < 0) {
        /* Refused by the owner (its status), not answered, or the owner was lost meanwhile. */
        *status = s->status ? s->status : 502;
        int lost = !strcmp(s->kind, "owner_lost");
        copy_err(kind, kindlen, err, errlen, lost ? "owner_unreachable" : s->status ? s->kind : "owner_error", s->err);
        session_release(r, s, &wake);
        pthread_mutex_unlock(&r->mu);
        if (wake)
            r->io.wake(r->io.ctx);
        return -1;
    }
    if (last_seq)
        *last_seq = s->last_seq;
    rd->s = s;
    pthread_mutex_unlock(&r->mu);
    return 0;
}

/* Finds or opens the feed of rd's product and waits for it to be open; mu not held. */
static int reader_join_feed(reads_reader_t *rd, uint64_t *last_seq, int *status, char *kind, size_t kindlen,
                            char *err, size_t errlen)
{
    reads_t *r = rd->r;
    int wake = 0;
    pthread_mutex_lock(&r->mu);
    feed_t *f = NULL;
    for (f = r->feeds; f; f = f->next)
        if (!strcmp(f->product, rd->product) && !memcmp(f->up->owner, rd->owner_id, 32))
            break;
    if (!f) {
        if (relay_refuse(r, status, kind, kindlen, err, errlen) < 0) {
            pthread_mutex_unlock(&r->mu);
            return -1;
        }
        f = calloc(1, sizeof *f);
        ring_rec_t *ring = calloc(r->c.ring_records, sizeof *ring);
        session_t *s = f && ring ? session_new(r, &rd->o, 0, 0, 1, 1, r->c.feed_window) : NULL;
        if (!s) {
            free(f);
            free(ring);
            pthread_mutex_unlock(&r->mu);
            *status = 500;
            copy_err(kind, kindlen, err, errlen, "internal", "out of memory");
            return -1;
        }
        snprintf(f->product, sizeof f->product, "%s", rd->product);
        f->up = s;
        s->feed = f;
        f->ring = ring;
        f->cap = r->c.ring_records;
        f->linked = 1;
        f->next = r->feeds;
        r->feeds = f;
        r->nfeeds++;
        wake = 1;
    }
    f->nsubs++;
    r->nsubs++;
    rd->feed = f;
    pthread_mutex_unlock(&r->mu);
    if (wake)
        r->io.wake(r->io.ctx);
    pthread_mutex_lock(&r->mu);
    session_t *s = f->up;
    if (session_wait_open(r, s, (int)r->c.open_timeout_ms) < 0) {
        *status = s->status ? s->status : 503;
        int lost = !strcmp(s->kind, "owner_lost");
        copy_err(kind, kindlen, err, errlen, lost ? "owner_unreachable" : s->status ? s->kind : "owner_error", s->err);
        pthread_mutex_unlock(&r->mu);
        return -1; /* reads_reader_close leaves the feed */
    }
    if (last_seq)
        *last_seq = f->end - 1;
    pthread_mutex_unlock(&r->mu);
    return 0;
}

reads_reader_t *reads_reader_open(reads_t *r, const reads_open_t *o, uint64_t *last_seq, int *status, char *kind,
                                  size_t kindlen, char *err, size_t errlen)
{
    if (!entry_valid_product_id(o->product)) { /* never on the wire */
        *status = 400;
        copy_err(kind, kindlen, err, errlen, "bad_id", "not a product id");
        return NULL;
    }
    if (o->live && o->limit) {
        *status = 400;
        copy_err(kind, kindlen, err, errlen, "bad_query", "limit: not supported on a stream");
        return NULL;
    }
    reads_reader_t *rd = calloc(1, sizeof *rd);
    if (!rd) {
        *status = 500;
        copy_err(kind, kindlen, err, errlen, "internal", "out of memory");
        return NULL;
    }
    rd->r = r;
    memcpy(rd->owner_id, o->owner_id, 32);
    snprintf(rd->product, sizeof rd->product, "%s", o->product);
    snprintf(rd->owner_addr, sizeof rd->owner_addr, "%s", o->owner_addr);
    snprintf(rd->owner_desc, sizeof rd->owner_desc, "%s", o->owner_desc ? o->owner_desc : o->owner_addr);
    rd->o = (reads_open_t){.product = rd->product, .owner_id = rd->owner_id, .owner_addr = rd->owner_addr,
                           .owner_desc = rd->owner_desc};
    rd->live = o->live;
    int rc = o->live ? reader_join_feed(rd, last_seq, status, kind, kindlen, err, errlen)
                     : reader_open_range(rd, o->from, o->limit, last_seq, status, kind, kindlen, err, errlen);
    if (rc < 0) {
        reads_reader_close(&rd);
        return NULL;
    }
    rd->next = o->from ? o->from : 1;
    return rd;
}

/* Copies ring records from rd->next into the stage (mu held). */
static void stage_from_ring(reads_reader_t *rd, feed_t *f)
{
    rd->slen = rd->soff = 0;
    while (rd->next < f->end && rd->slen < STAGE_BYTES) {
        const ring_rec_t *rec = &f->ring[(f->head + (rd->next - f->first)) % f->cap];
        if (rd->slen + rec->len + 1 > rd->scap) {
            size_t cap = rd->scap ? rd->scap : 64 * 1024;
            while (cap < rd->slen + rec->len + 1)
                cap *= 2;
            char *b = realloc(rd->stage, cap);
            if (!b)
                return; /* deliver what is staged; try again next call */
            rd->stage = b;
            rd->scap = cap;
        }
        memcpy(rd->stage + rd->slen, rec->data, rec->len);
        rd->slen += rec->len;
        rd->stage[rd->slen++] = '\n';
        rd->next++;
    }
}

static long live_next(reads_reader_t *rd, char *out, size_t cap, int timeout_ms, char *kind, size_t kindlen,
                      char *err, size_t errlen)
{
    reads_t *r = rd->r;
    for (;;) {
        if (rd->soff < rd->slen) {
            size_t n = rd->slen - rd->soff < cap ? rd->slen - rd->soff : cap;
            memcpy(out, rd->stage + rd->soff, n);
            rd->soff += n;
            return (long)n;
        }
        if (rd->s) { /* catching up below the ring */
            long n = range_next(rd, out, cap, timeout_ms, kind, kindlen, err, errlen);
            if (n != READS_END)
                return n;
            int wake = 0;
            pthread_mutex_lock(&r->mu);
            session_release(r, rd->s, &wake);
            pthread_mutex_unlock(&r->mu);
            rd->s = NULL;
            if (rd->next < rd->catchup_end) {
                copy_err(kind, kindlen, err, errlen, "owner_lost", "");
                snprintf(err, errlen, "%s ended the records of %s at seq %" PRIu64 ", expected up to %" PRIu64,
                         rd->owner_desc, rd->product, rd->next - 1, rd->catchup_end - 1);
                return READS_FAILED;
            }
            continue;
        }
        feed_t *f = rd->feed;
        session_t *s = f->up;
        struct timespec ts;
        deadline_ts(&ts, timeout_ms);
        pthread_mutex_lock(&r->mu);
        for (;;) {
            if (rd->next < f->first) {
                uint64_t end = f->first;
                pthread_mutex_unlock(&r->mu);
                int status;
                if (reader_open_range(rd, rd->next, end - rd->next, NULL, &status, kind, kindlen, err, errlen) < 0) {
                    if (status == 503)
                        snprintf(kind, kindlen, "owner_lost");
                    return READS_FAILED;
                }
                rd->catchup_end = end;
                break;
            }
            if (rd->next < f->end) {
                stage_from_ring(rd, f);
                pthread_mutex_unlock(&r->mu);
                break;
            }
            if (s->failed) {
                copy_err(kind, kindlen, err, errlen, s->kind, s->err);
                pthread_mutex_unlock(&r->mu);
                return READS_FAILED;
            }
            if (pthread_cond_timedwait(&s->cv, &r->mu, &ts) == ETIMEDOUT) {
                pthread_mutex_unlock(&r->mu);
                return 0;
            }
        }
    }
}

long reads_reader_next(reads_reader_t *rd, char *out, size_t cap, int timeout_ms, char *kind, size_t kindlen,
                       char *err, size_t errlen)
{
    assert(cap > 0);
    return rd->live ? live_next(rd, out, cap, timeout_ms, kind, kindlen, err, errlen)
                    : range_next(rd, out, cap, timeout_ms, kind, kindlen, err, errlen);
}

void reads_reader_close(reads_reader_t **rdp)
{
    if (!rdp || !*rdp)
        return;
    reads_reader_t *rd = *rdp;
    reads_t *r = rd->r;
    int wake = 0;
    pthread_mutex_lock(&r->mu);
    if (rd->s)
        session_release(r, rd->s, &wake);
    if (rd->feed) {
        r->nsubs--;
        if (--rd->feed->nsubs == 0)
            feed_release(r, rd->feed, &wake);
    }
    pthread_mutex_unlock(&r->mu);
    if (wake)
        r->io.wake(r->io.ctx);
    if (rd->cur)
        trib__read_batch__free_unpacked(rd->cur, NULL);
    free(rd->stage);
    free(rd);
    *rdp = NULL;
}

/* ================================================================== owner streams (loop thread) */

/* Packs m and hands it to io.send now (loop thread, mu not held). 0 handed on, -1 dropped. */
static int send_now(reads_t *r, const char *addr, int type, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -1; /* the peer notices through stall/keepalive timers */
    protobuf_c_message_pack(m, buf);
    int rc = r->io.send(r->io.ctx, addr, type, buf, len);
    free(buf);
    return rc;
}

/* Refuses or ends stream id of addr: a last batch 1 with status and error. */
static void reply_error(reads_t *r, const char *addr, uint64_t id, uint32_t status, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void reply_error(reads_t *r, const char *addr, uint64_t id, uint32_t status, const char *fmt, ...)
{
    char msg[ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    Trib__ReadBatch b = TRIB__READ_BATCH__INIT;
    b.stream_id = id;
    b.done = 1;
    b.status = status;
    b.error = msg;
    b.batch_no = 1;
    send_now(r, addr, TRIB__MSG_TYPE__MSG_READ_BATCH, &b.base);
}

static ostream_t *ostream_find(reads_t *r, const uint8_t peer[32], uint64_t id)
{
    for (ostream_t *s = r->streams; s; s = s->next)
        if (!s->dead && s->id == id && !memcmp(s->peer, peer, 32))
            return s;
    return NULL;
}

static void ostream_kill(reads_t *r, ostream_t *s)
{
    if (s->dead)
        return;
    s->dead = 1;
    atomic_fetch_sub(&r->owner_streams, 1);
    if (s->live)
        atomic_fetch_sub(&r->owner_live, 1);
}

typedef struct {
    uint8_t *buf;
    size_t len, cap, max_bytes;
    size_t *offs, *lens;
    size_t n, ncap;
    uint64_t first;
    int full;
} collect_t;

static int collect_rec(void *ctx, uint64_t seq, const void *data, size_t len)
{
    collect_t *c = ctx;
    if (c->n == 0)
        c->first = seq;
    if (c->len + len > c->cap) {
        size_t cap = c->cap ? c->cap : 64 * 1024;
        while (cap < c->len + len)
            cap *= 2;
        uint8_t *b = realloc(c->buf, cap);
        if (!b)
            return -1;
        c->buf = b;
        c->cap = cap;
    }
    if (c->n == c->ncap) {
        size_t ncap = c->ncap ? c->ncap * 2 : 256;
        size_t *o = realloc(c->offs, ncap * sizeof *o), *l = o ? realloc(c->lens, ncap * sizeof *l) : NULL;
        if (o)
            c->offs = o;
        if (!l)
            return -1;
        c->lens = l;
        c->ncap = ncap;
    }
    memcpy(c->buf + c->len, data, len);
    c->offs[c->n] = c->len;
    c->lens[c->n] = len;
    c->n++;
    c->len += len;
    if (c->len >= c->max_bytes) {
        c->full = 1;
        return 1;
    }
    return 0;
}

/* Sends the next batch of s (credit is available). first: this is the reply to READ_REQ. */
static void ostream_pump_one(reads_t *r, ostream_t *s, uint64_t now, int first, uint64_t last)
{
    /* Small batches first, doubling up to max_bytes: the first bytes reach the client sooner and
     * the stages (owner, both ZeroMQ I/O threads, relay, client) start overlapping early. */
    size_t ramp = (size_t)64 * 1024 << (s->sent < 4 ? 2 * s->sent : 8);
    collect_t c = {.max_bytes = ramp < s->max_bytes ? ramp : s->max_bytes};
    uint64_t lim = r->c.batch_records;
    if (s->remaining != UINT64_MAX && s->remaining < lim)
        lim = s->remaining;
    long n = lim ? store_records_read(r->st, s->product, s->next_seq, lim, collect_rec, &c) : 0;
    int failed = n < 0 || (size_t)n != c.n;
    if (!failed && n > 1 && c.len > r->room) {
        /* The record that filled the batch took it past the message limit: it opens the next one. */
        n--;
        c.len = c.offs[n];
    }
    Trib__ReadBatch b = TRIB__READ_BATCH__INIT;
    b.stream_id = s->id;
    b.first_seq = s->next_seq;
    char msg[ERR_MAX];
    if (failed) {
        snprintf(msg, sizeof msg, "reading records of %s at seq %" PRIu64 " failed on the owner: %s", s->product,
                 s->next_seq, n < 0 ? store_last_error() : "out of memory");
        b.done = 1;
        b.status = 500;
        b.error = msg;
    } else if (n == 0 && s->live && !first) {
        /* Caught up: wait for an append, unless none can come. */
        store_product_t p;
        if (store_product_get(r->st, s->product, &p) == 0 && p.retired) {
            snprintf(msg, sizeof msg, "%s was retired: it takes no new records", s->product);
            b.done = 1;
            b.status = 410;
            b.error = msg;
        } else {
            s->waiting = 1;
            goto out;
        }
    } else if (c.len > r->room) {
        snprintf(msg, sizeof msg, "record %" PRIu64 " of %s is larger than the peer message limit", c.first,
                 s->product);
        b.done = 1;
        b.status = 500;
        b.error = msg;
        n = 0;
    } else {
        b.n_records = (size_t)n;
        b.records = n ? malloc((size_t)n * sizeof *b.records) : NULL;
        if (n && !b.records) {
            snprintf(msg, sizeof msg, "out of memory on the owner");
            b.done = 1, b.status = 500, b.error = msg, b.n_records = 0, n = 0;
        }
        for (long i = 0; i < n; i++)
            b.records[i] = (ProtobufCBinaryData){c.lens[i], c.buf + c.offs[i]};
        if (!s->live && ((s->remaining != UINT64_MAX && s->remaining == (uint64_t)n) || ((uint64_t)n < lim && !c.full)))
            b.done = 1;
    }
    if (first)
        b.last_seq = last;
    b.batch_no = ++s->sent;
    if (send_now(r, s->peer_addr, TRIB__MSG_TYPE__MSG_READ_BATCH, &b.base) == 0) {
        BUMP(r, batches_sent, 1);
        BUMP(r, records_sent, b.n_records);
    }
    s->last_sent = now;
    if (b.n_records) {
        s->next_seq += b.n_records;
        if (s->remaining != UINT64_MAX)
            s->remaining -= b.n_records;
    }
    if (b.done)
        ostream_kill(r, s);
    free(b.records);
out:
    free(c.buf);
    free(c.offs);
    free(c.lens);
}

static void owner_open(reads_t *r, uint64_t now, const uint8_t sender[32], const char *addr,
                       const Trib__ReadRequest *q)
{
    const char *pid = q->product_id ? q->product_id : "";
    if (!entry_valid_product_id(pid)) {
        BUMP(r, streams_refused, 1);
        reply_error(r, addr, q->stream_id, 400, "not a product id");
        return;
    }
    size_t dlen = (size_t)(strchr(pid, '/') - pid);
    if (dlen != strlen(r->domain) || memcmp(pid, r->domain, dlen) != 0) {
        BUMP(r, streams_refused, 1);
        reply_error(r, addr, q->stream_id, 404, "%s is not owned by this node (domain '%s')", pid, r->domain);
        return;
    }
    store_product_t p;
    int rc = store_product_get(r->st, pid, &p);
    if (rc != 0) {
        BUMP(r, streams_refused, 1);
        if (rc == STORE_NOTFOUND)
            reply_error(r, addr, q->stream_id, 404, "no product %s on its owner", pid);
        else
            reply_error(r, addr, q->stream_id, 500, "reading product %s failed on its owner", pid);
        return;
    }
    uint64_t from = q->from_seq ? q->from_seq : 1;
    if (q->live && q->limit) {
        BUMP(r, streams_refused, 1);
        reply_error(r, addr, q->stream_id, 400, "limit: not supported on a live stream");
        return;
    }
    if (q->limit && from - 1 > UINT64_MAX - q->limit) {
        BUMP(r, streams_refused, 1);
        reply_error(r, addr, q->stream_id, 400, "from %" PRIu64 " + limit %" PRIu64 " is beyond the last seq",
                    from, q->limit);
        return;
    }
    if (ostream_find(r, sender, q->stream_id)) {
        BUMP(r, streams_refused, 1);
        reply_error(r, addr, q->stream_id, 400, "stream %" PRIu64 " is already open", q->stream_id);
        return;
    }
    size_t total = 0, mine = 0;
    for (ostream_t *s = r->streams; s; s = s->next)
        if (!s->dead) {
            total++;
            mine += !memcmp(s->peer, sender, 32);
        }
    if (total >= r->c.max_streams || mine >= r->c.max_streams_per_peer) {
        BUMP(r, streams_refused, 1);
        reply_error(r, addr, q->stream_id, 503, "the owner serves too many streams (%zu, %zu from this node)", total,
                    mine);
        return;
    }
    uint64_t last = 0;
    if (store_records_last(r->st, pid, &last) < 0) {
        reply_error(r, addr, q->stream_id, 500, "reading records of %s failed on its owner", pid);
        return;
    }
    if (q->live && q->from_tail && p.retired) {
        BUMP(r, streams_refused, 1);
        reply_error(r, addr, q->stream_id, 410, "%s is retired: it takes no new records", pid);
        return;
    }
    ostream_t *s = calloc(1, sizeof *s);
    if (!s) {
        reply_error(r, addr, q->stream_id, 500, "out of memory on the owner");
        return;
    }
    memcpy(s->peer, sender, 32);
    snprintf(s->peer_addr, sizeof s->peer_addr, "%s", addr);
    s->id = q->stream_id;
    snprintf(s->product, sizeof s->product, "%s", pid);
    s->next_seq = q->live && q->from_tail ? last + 1 : from;
    s->remaining = q->limit ? q->limit : UINT64_MAX;
    s->live = q->live;
    s->window = q->credit < 1 ? 1 : q->credit > MAX_WINDOW ? MAX_WINDOW : q->credit;
    s->max_bytes = r->c.batch_bytes < r->room ? r->c.batch_bytes : r->room;
    if (q->max_bytes && q->max_bytes < s->max_bytes)
        s->max_bytes = q->max_bytes;
    s->last_heard = now;
    s->next = r->streams;
    r->streams = s;
    atomic_fetch_add(&r->owner_streams, 1);
    if (s->live)
        atomic_fetch_add(&r->owner_live, 1);
    ostream_pump_one(r, s, now, 1, last);
}

static void owner_sweep(reads_t *r)
{
    for (ostream_t **p = &r->streams; *p;) {
        ostream_t *s = *p;
        if (s->dead) {
            *p = s->next;
            free(s);
        } else {
            p = &s->next;
        }
    }
}

/* ================================================================== loop side */

static void send_all(reads_t *r, outq_t *q)
{
    for (outmsg_t *o = q->head, *n; o; o = n) {
        n = o->next;
        int rc = r->io.send(r->io.ctx, o->addr, o->type, o->body, o->len);
        if (o->type == TRIB__MSG_TYPE__MSG_READ_CREDIT && rc == 0)
            BUMP(r, credits_sent, 1);
        if (rc < 0 && o->type == TRIB__MSG_TYPE__MSG_READ_REQ) {
            pthread_mutex_lock(&r->mu);
            session_t *s = session_find(r, o->stream_id);
            if (s)
                session_fail(r, s, 503, "owner_unreachable", "cannot send to %s (peer queue full or address bad)",
                             s->owner_desc);
            pthread_mutex_unlock(&r->mu);
        }
        free(o);
    }
    q->head = q->tail = NULL;
}

static void add_credit(outq_t *q, session_t *s, uint64_t now)
{
    Trib__ReadCredit c = TRIB__READ_CREDIT__INIT;
    c.stream_id = s->id;
    c.credit = s->window;
    c.acked = s->consumed;
    s->acked_sent = s->consumed;
    s->credit_due = 0;
    s->last_sent = now;
    outq_add(q, s->owner_addr, TRIB__MSG_TYPE__MSG_READ_CREDIT, s->id, &c.base);
}

/* What is wrong with the records of an owner's batch, or NULL. Their seqs must be 1 or more and
 * not wrap (the first batch of a from_tail stream sets first_seq freely), records not empty. */
static const char *batch_malformed(const Trib__ReadBatch *b)
{
    if (b->n_records && (b->first_seq == 0 || b->n_records > UINT64_MAX - b->first_seq))
        return "records with seqs out of range";
    for (size_t i = 0; i < b->n_records; i++)
        if (b->records[i].len == 0)
            return "an empty record";
    return NULL;
}

static void relay_batch(reads_t *r, uint64_t now, const uint8_t sender[32], const char *sender_addr,
                        Trib__ReadBatch *b, outq_t *q)
{
    pthread_mutex_lock(&r->mu);
    session_t *s = session_find(r, b->stream_id);
    if (!s || memcmp(s->owner, sender, 32) != 0) {
        pthread_mutex_unlock(&r->mu);
        if (!s && !b->done)
            outq_cancel(q, sender_addr, b->stream_id); /* a stream we no longer want */
        trib__read_batch__free_unpacked(b, NULL);
        return;
    }
    s->last_heard = now;
    if (s->failed || s->done || b->batch_no == 0) {
        pthread_mutex_unlock(&r->mu);
        trib__read_batch__free_unpacked(b, NULL);
        return;
    }
    BUMP(r, batches_recv, 1);
    if (b->done && b->status) {
        /* The status becomes the HTTP status of the refused read: only a 4xx/5xx is taken as is. */
        int status = b->status >= 400 && b->status <= 599 ? (int)b->status : 502;
        const char *kind = status == 404   ? "not_found"
                           : status == 400 ? "bad_query"
                           : status == 410 ? "retired"
                           : status == 503 ? (s->opened ? "owner_lost" : "owner_unreachable")
                                           : "owner_error";
        if (s->opened) {
            session_fail(r, s, 0, kind, "%s: %s", s->owner_desc, b->error ? b->error : "error");
        } else {
            BUMP(r, fail_refused, 1);
            session_fail(r, s, status, kind, "%s", b->error ? b->error : "refused by the owner");
        }
        s->need_open = 0;
        s->done = 1; /* the owner ended the stream: no cancel */
        pthread_mutex_unlock(&r->mu);
        trib__read_batch__free_unpacked(b, NULL);
        return;
    }
    uint64_t expect_first = s->opened ? s->next_seq : s->from_tail ? b->first_seq : s->from;
    if (b->batch_no != s->expect_batch || (b->n_records && b->first_seq != expect_first)) {
        session_fail(r, s, 0, "owner_lost",
                     "the stream from %s lost a batch (expected batch %" PRIu64 " seq %" PRIu64 ", got batch %" PRIu64
                     " seq %" PRIu64 ")",
                     s->owner_desc, s->expect_batch, expect_first, b->batch_no, b->first_seq);
        outq_cancel(q, s->owner_addr, s->id);
        pthread_mutex_unlock(&r->mu);
        trib__read_batch__free_unpacked(b, NULL);
        return;
    }
    const char *bad = batch_malformed(b);
    if (bad) {
        session_fail(r, s, 0, "owner_lost", "%s sent %s", s->owner_desc, bad);
        outq_cancel(q, s->owner_addr, s->id);
        pthread_mutex_unlock(&r->mu);
        trib__read_batch__free_unpacked(b, NULL);
        return;
    }
    if (!s->opened) {
        s->opened = 1;
        s->last_seq = b->last_seq;
        s->next_seq = b->n_records ? b->first_seq : expect_first;
        if (s->feed)
            s->feed->first = s->feed->end = s->next_seq;
    }
    s->expect_batch++;
    s->next_seq += b->n_records;
    BUMP(r, records_recv, b->n_records);
    if (b->done) {
        s->done = 1;
        if (s->feed) { /* a live upstream does not end by itself */
            s->done = 0;
            session_fail(r, s, 0, "owner_lost", "%s ended the live stream", s->owner_desc);
        }
    }
    if (s->feed) {
        if (ring_take(r, s->feed, b) < 0)
            session_fail(r, s, 0, "internal", "out of memory for the live ring of %s", s->product);
        s->consumed++;
        if (s->consumed - s->acked_sent >= (s->window / 2 ? s->window / 2 : 1))
            add_credit(q, s, now);
        trib__read_batch__free_unpacked(b, NULL);
    } else if (s->qlen >= s->window) { /* the owner may not send beyond acked + window */
        BUMP(r, overrun, 1);
        session_fail(r, s, 0, "owner_lost", "%s sent beyond the credit given", s->owner_desc);
        outq_cancel(q, s->owner_addr, s->id);
        trib__read_batch__free_unpacked(b, NULL);
    } else {
        rbatch_t *rb = malloc(sizeof *rb);
        if (!rb) {
            session_fail(r, s, 0, "internal", "out of memory");
            trib__read_batch__free_unpacked(b, NULL);
        } else {
            rb->next = NULL;
            rb->msg = b;
            if (s->qtail)
                s->qtail->next = rb;
            else
                s->qhead = rb;
            s->qtail = rb;
            s->qlen++;
            r->queued++;
            if (s->qlen > r->queued_hwm)
                r->queued_hwm = s->qlen;
        }
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&r->mu);
}

void reads_handle(reads_t *r, uint64_t now, const uint8_t sender[32], const char *sender_addr, int type,
                  const uint8_t *body, size_t len)
{
    outq_t q = {0};
    switch (type) {
    case TRIB__MSG_TYPE__MSG_READ_REQ: {
        Trib__ReadRequest *m = trib__read_request__unpack(NULL, len, body);
        if (!m)
            return;
        owner_open(r, now, sender, sender_addr, m);
        trib__read_request__free_unpacked(m, NULL);
        break;
    }
    case TRIB__MSG_TYPE__MSG_READ_BATCH: {
        Trib__ReadBatch *m = trib__read_batch__unpack(NULL, len, body);
        if (!m)
            return;
        relay_batch(r, now, sender, sender_addr, m, &q); /* frees m */
        break;
    }
    case TRIB__MSG_TYPE__MSG_READ_CREDIT: {
        Trib__ReadCredit *m = trib__read_credit__unpack(NULL, len, body);
        if (!m)
            return;
        ostream_t *s = ostream_find(r, sender, m->stream_id);
        if (s) {
            s->last_heard = now;
            if (m->acked > s->acked && m->acked <= s->sent)
                s->acked = m->acked;
            if (m->credit >= 1 && m->credit <= MAX_WINDOW)
                s->window = m->credit;
        } else {
            reply_error(r, sender_addr, m->stream_id, 503,
                        "the owner has no such stream (restarted, or the stream expired)");
        }
        trib__read_credit__free_unpacked(m, NULL);
        break;
    }
    case TRIB__MSG_TYPE__MSG_READ_CANCEL: {
        Trib__ReadCancel *m = trib__read_cancel__unpack(NULL, len, body);
        if (!m)
            return;
        ostream_t *s = ostream_find(r, sender, m->stream_id);
        if (s)
            ostream_kill(r, s);
        trib__read_cancel__free_unpacked(m, NULL);
        break;
    }
    default:
        break;
    }
    send_all(r, &q);
}

void reads_drain(reads_t *r, uint64_t now)
{
    outq_t q = {0};
    char notify[NOTIFY_MAX][STORE_ID_MAX];
    int nnotify, all;
    pthread_mutex_lock(&r->mu);
    nnotify = r->nnotify;
    all = r->notify_all;
    memcpy(notify, r->notify, (size_t)nnotify * sizeof notify[0]);
    r->nnotify = r->notify_all = 0;
    for (cancel_t *c = r->cancels, *n; c; c = n) {
        n = c->next;
        outq_cancel(&q, c->addr, c->id);
        free(c);
    }
    r->cancels = NULL;
    if (r->dirty) {
        r->dirty = 0;
        for (session_t *s = r->sessions; s; s = s->next) {
            if (s->failed || s->done)
                continue;
            if (s->need_open) {
                Trib__ReadRequest m = TRIB__READ_REQUEST__INIT;
                m.stream_id = s->id;
                m.product_id = s->product;
                m.from_seq = s->from;
                m.limit = s->limit;
                m.live = s->live;
                m.from_tail = s->from_tail;
                m.credit = s->window;
                s->need_open = 0;
                s->last_sent = s->last_heard = now;
                outq_add(&q, s->owner_addr, TRIB__MSG_TYPE__MSG_READ_REQ, s->id, &m.base);
            } else if (s->credit_due) {
                add_credit(&q, s, now);
            }
        }
    }
    pthread_mutex_unlock(&r->mu);
    send_all(r, &q);
    for (ostream_t *s = r->streams; s; s = s->next) {
        if (!s->live || !s->waiting)
            continue;
        int hit = all;
        for (int i = 0; i < nnotify && !hit; i++)
            hit = !strcmp(notify[i], s->product);
        if (hit)
            s->waiting = 0;
    }
}

static int ostream_ready(const ostream_t *s)
{
    return !s->dead && !s->waiting && s->sent < s->acked + s->window;
}

int reads_pump(reads_t *r, uint64_t now)
{
    uint32_t budget = r->c.pump_batches;
    int progress = 1;
    while (budget > 0 && progress) {
        progress = 0;
        for (ostream_t *s = r->streams; s && budget > 0; s = s->next)
            if (ostream_ready(s)) {
                ostream_pump_one(r, s, now, 0, 0);
                budget--;
                progress = 1;
            }
    }
    owner_sweep(r);
    for (ostream_t *s = r->streams; s; s = s->next)
        if (ostream_ready(s))
            return 1;
    return 0;
}

void reads_tick(reads_t *r, uint64_t now)
{
    if (now < r->next_tick)
        return;
    r->next_tick = now + (r->c.keepalive_ms / 4 ? r->c.keepalive_ms / 4 : 1);
    outq_t q = {0};
    for (ostream_t *s = r->streams; s; s = s->next) {
        if (s->dead)
            continue;
        if (now - s->last_heard >= r->c.idle_expiry_ms) {
            BUMP(r, streams_expired, 1);
            ostream_kill(r, s);
        } else if (now - s->last_sent >= r->c.keepalive_ms) {
            Trib__ReadBatch b = TRIB__READ_BATCH__INIT;
            b.stream_id = s->id;
            outq_add(&q, s->peer_addr, TRIB__MSG_TYPE__MSG_READ_BATCH, s->id, &b.base);
            s->last_sent = now;
            BUMP(r, keepalives_sent, 1);
        }
    }
    owner_sweep(r);
    pthread_mutex_lock(&r->mu);
    for (session_t *s = r->sessions; s; s = s->next) {
        if (s->failed || s->done || s->need_open)
            continue;
        if (now - s->last_heard >= r->c.stall_ms) {
            session_fail(r, s, 503, "owner_lost", "no word from %s for %" PRIu64 " ms", s->owner_desc,
                         now - s->last_heard);
            outq_cancel(&q, s->owner_addr, s->id);
        } else if (now - s->last_sent >= r->c.keepalive_ms) {
            add_credit(&q, s, now);
        }
    }
    pthread_mutex_unlock(&r->mu);
    send_all(r, &q);
}

uint64_t reads_next_deadline(const reads_t *r) { return r->next_tick; }

void reads_peer_lost(reads_t *r, const uint8_t id[32], const char *state)
{
    for (ostream_t *s = r->streams; s; s = s->next)
        if (!memcmp(s->peer, id, 32))
            ostream_kill(r, s);
    pthread_mutex_lock(&r->mu);
    for (session_t *s = r->sessions; s; s = s->next)
        if (!memcmp(s->owner, id, 32))
            session_fail(r, s, 503, "owner_lost", "%s is unreachable: its member state is %s", s->owner_desc, state);
    pthread_mutex_unlock(&r->mu);
}

void reads_notify_append(reads_t *r, const char *product)
{
    pthread_mutex_lock(&r->mu);
    int have = r->notify_all;
    for (int i = 0; i < r->nnotify && !have; i++)
        have = !strcmp(r->notify[i], product);
    if (!have) {
        if (r->nnotify < NOTIFY_MAX)
            snprintf(r->notify[r->nnotify++], STORE_ID_MAX, "%s", product);
        else
            r->notify_all = 1;
    }
    pthread_mutex_unlock(&r->mu);
    r->io.wake(r->io.ctx);
}

/* ================================================================== metrics */

void reads_metrics_render(reads_t *r, FILE *f)
{
    pthread_mutex_lock(&r->mu);
    size_t ranges = 0;
    for (const session_t *x = r->sessions; x; x = x->next)
        ranges += x->feed == NULL;
    size_t sessions = ranges, feeds = r->nfeeds, subs = r->nsubs, queued = r->queued,
           hwm = r->queued_hwm, ring = r->ring_records;
    pthread_mutex_unlock(&r->mu);
    uint64_t os = atomic_load(&r->owner_streams), ol = atomic_load(&r->owner_live);
    fprintf(f,
            "# HELP trib_read_owner_streams Routed read streams this node serves as owner, by kind.\n"
            "# TYPE trib_read_owner_streams gauge\n"
            "trib_read_owner_streams{kind=\"range\"} %" PRIu64 "\ntrib_read_owner_streams{kind=\"live\"} %" PRIu64 "\n",
            os - ol, ol);
    fprintf(f,
            "# HELP trib_read_relay_sessions Routed range reads this node relays from an owner.\n"
            "# TYPE trib_read_relay_sessions gauge\ntrib_read_relay_sessions %zu\n"
            "# HELP trib_read_feeds Live upstream subscriptions (one per product) this node holds.\n"
            "# TYPE trib_read_feeds gauge\ntrib_read_feeds %zu\n"
            "# HELP trib_read_feed_subscribers Live readers on this node following a feed.\n"
            "# TYPE trib_read_feed_subscribers gauge\ntrib_read_feed_subscribers %zu\n"
            "# HELP trib_read_feed_ring_records Records held in the feeds' rings.\n"
            "# TYPE trib_read_feed_ring_records gauge\ntrib_read_feed_ring_records %zu\n"
            "# HELP trib_read_relay_queued_batches Batches received from owners not yet sent to clients.\n"
            "# TYPE trib_read_relay_queued_batches gauge\ntrib_read_relay_queued_batches %zu\n"
            "# HELP trib_read_relay_queued_batches_max Most batches ever queued on one relay session.\n"
            "# TYPE trib_read_relay_queued_batches_max gauge\ntrib_read_relay_queued_batches_max %zu\n",
            sessions, feeds, subs, ring, queued, hwm);
    fprintf(f,
            "# HELP trib_read_batches_total Routed read batches, sent as owner or received as relay.\n"
            "# TYPE trib_read_batches_total counter\n"
            "trib_read_batches_total{dir=\"sent\"} %" PRIu64 "\ntrib_read_batches_total{dir=\"received\"} %" PRIu64 "\n"
            "# HELP trib_read_records_total Routed read records, sent as owner or received as relay.\n"
            "# TYPE trib_read_records_total counter\n"
            "trib_read_records_total{dir=\"sent\"} %" PRIu64 "\ntrib_read_records_total{dir=\"received\"} %" PRIu64 "\n",
            (uint64_t)atomic_load(&r->batches_sent), (uint64_t)atomic_load(&r->batches_recv),
            (uint64_t)atomic_load(&r->records_sent), (uint64_t)atomic_load(&r->records_recv));
    fprintf(f,
            "# HELP trib_read_events_total Routed read events.\n# TYPE trib_read_events_total counter\n"
            "trib_read_events_total{event=\"stream_expired\"} %" PRIu64 "\n"
            "trib_read_events_total{event=\"stream_refused\"} %" PRIu64 "\n"
            "trib_read_events_total{event=\"owner_lost\"} %" PRIu64 "\n"
            "trib_read_events_total{event=\"refused_by_owner\"} %" PRIu64 "\n"
            "trib_read_events_total{event=\"open_timeout\"} %" PRIu64 "\n"
            "trib_read_events_total{event=\"keepalive_sent\"} %" PRIu64 "\n"
            "trib_read_events_total{event=\"credit_sent\"} %" PRIu64 "\n"
            "trib_read_events_total{event=\"credit_overrun\"} %" PRIu64 "\n",
            (uint64_t)atomic_load(&r->streams_expired), (uint64_t)atomic_load(&r->streams_refused),
            (uint64_t)atomic_load(&r->fail_owner_lost), (uint64_t)atomic_load(&r->fail_refused),
            (uint64_t)atomic_load(&r->fail_open_timeout), (uint64_t)atomic_load(&r->keepalives_sent),
            (uint64_t)atomic_load(&r->credits_sent), (uint64_t)atomic_load(&r->overrun));
}

/* ================================================================== lifecycle */

void reads_config_default(reads_config_t *c)
{
    *c = (reads_config_t){
        .window = 8,
        .feed_window = 64,
        .batch_bytes = 512 * 1024,
        .batch_records = 4096,
        .max_msg = 4u << 20,
        .open_timeout_ms = 2000,
        .stall_ms = 3500,
        .keepalive_ms = 1000,
        .idle_expiry_ms = 10000,
        .max_streams = 1024,
        .max_streams_per_peer = 64,
        .max_sessions = 1024,
        .ring_records = 8192,
        .ring_bytes = 8u << 20,
        .pump_batches = 32,
    };
}

reads_t *reads_new(store_t *st, const char *domain, const reads_config_t *c, const reads_io_t *io)
{
    reads_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->st = st;
    snprintf(r->domain, sizeof r->domain, "%s", domain);
    if (c)
        r->c = *c;
    else
        reads_config_default(&r->c);
    assert(r->c.window >= 1 && r->c.window <= MAX_WINDOW && r->c.feed_window >= 1 && r->c.feed_window <= MAX_WINDOW);
    assert(r->c.ring_records >= 1 && r->c.batch_records >= 1 && r->c.pump_batches >= 1);
    r->room = r->c.max_msg - (r->c.max_msg / 2 < MSG_SLACK ? r->c.max_msg / 2 : MSG_SLACK);
    r->io = *io;
    pthread_mutex_init(&r->mu, NULL);
    randombytes_buf(&r->next_id, sizeof r->next_id); /* a restarted relay does not reuse ids */
    r->next_id >>= 1;
    r->next_tick = clock_ms();
    return r;
}

void reads_shutdown(reads_t *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->shutting_down = 1;
    for (session_t *s = r->sessions; s; s = s->next)
        session_fail(r, s, 503, "shutting_down", "this node is shutting down");
    pthread_mutex_unlock(&r->mu);
}

void reads_destroy(reads_t **rp)
{
    if (!rp || !*rp)
        return;
    reads_t *r = *rp;
    assert(r->sessions == NULL && r->feeds == NULL);
    for (cancel_t *c = r->cancels, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    for (ostream_t *s = r->streams, *n; s; s = n) {
        n = s->next;
        free(s);
    }
    pthread_mutex_destroy(&r->mu);
    free(r);
    *rp = NULL;
}
