/* gossip/reads_relay.c - the relay side of routed reads: sessions to owners, the shared live feeds
 * with their rings, and the readers that HTTP threads pull NDJSON from (see reads.h).
 *
 * Owns: session_t and feed_t (every field under reads.mu), checking each batch an owner sends
 * (stream, sender, batch order, seqs, credit) before it is queued, the credit returned as readers
 * consume, stall detection, and the reads_reader_* API.
 * Must not: send or call the store (messages go into an outq the caller sends after unlocking),
 * hold reads.mu while copying into a reader's buffer, touch the owner's streams, or parse records
 * (they are opaque bytes followed by a newline). */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "gossip/clock.h"
#include "gossip/entry.h"
#include "gossip/log.h"
#include "gossip/reads_int.h"

#define STAGE_BYTES (256u * 1024u)   /* live reader: ring bytes copied out per step */
/* what an owner's schema version may hold: it goes into an HTTP header (X-Trib-Schema-Version) */
#define PRINTABLE " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"

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

/* ================================================================== state */

typedef struct rbatch {
    struct rbatch *next;
    Trib__ReadBatch *msg;
    uint64_t count;                 /* records (lines) in msg */
} rbatch_t;

typedef struct ring_rec {
    uint64_t seq;
    size_t len;
    char *data;
} ring_rec_t;

/* A feed's ring records from `first` on were validated against schema sc (until the next
 * segment's first: neighbours always differ). */
typedef struct segment {
    struct segment *next;
    uint64_t first;
    schema_t sc;
} segment_t;

/* One stream to an owner, seen from the relay. */
struct session {
    struct session *next;
    uint64_t id;
    uint8_t owner[32];
    char owner_addr[ADDR_MAX], owner_desc[DESC_MAX];
    feed_t *feed;                   /* set on a feed's upstream: the loop consumes its batches */
    char product[STORE_ID_MAX];
    uint64_t from, limit;
    int live, from_tail;
    uint32_t window;
    size_t max_bytes;               /* a batch's record bytes asked of the owner (0: the owner's own) */
    size_t promise;                 /* a range session: window x max_bytes, counted in r->promised */
    int need_open, credit_due;      /* asks for the loop */
    uint64_t last_heard, last_sent; /* ms */
    uint64_t expect_batch;          /* next batch_no */
    uint64_t next_seq;              /* next record seq expected (after the first batch) */
    uint64_t last_seq;              /* owner's last seq, from batch 1 */
    int opened, done, failed;
    reads_err_t e;                  /* when failed; e.status: the owner's refusal status or 0 */
    rbatch_t *qhead, *qtail;
    size_t qlen;
    uint64_t consumed, acked_sent;
    char *token;                    /* the consumer's token, forwarded in the ReadRequest */
    size_t token_len;
    uint8_t fkey[16];               /* hash of the owner's ReadBatch.fields_key (from batch 1) */
    schema_t sc;                    /* batch 1's schema: of record `from`, or the product's now */
    int moving;                     /* its owner left: waiting for its successor (nothing sent meanwhile) */
    int resume;                     /* a feed's upstream re-attached: the open resumes at from */
    int fresh;                      /* re-attached: the next batch is the new stream's first */
    uint64_t open_by;               /* ms: a reader waiting for the first reply waits until then */
    uint64_t asked;                 /* ms: the ReadRequest went out (its wait extended from there) */
    uint32_t open_ms;               /* the wait for the first reply (reads_open_t.open_timeout_ms) */
    pthread_cond_t cv;
};

/* An owner that left, followed to the key it handed its domain over to (found), or waited for
 * (stall_ms at most). Found moves are kept (MOVES_MAX, oldest dropped): a reader's later
 * sessions name the old key. */
struct move {
    struct move *next;
    uint8_t old[32], to[32];
    char domain[64], addr[ADDR_MAX], desc[DESC_MAX];
    int found;
    uint64_t since;                 /* ms: when the old key left */
};

#define MOVES_MAX 16

/* One shared live upstream per product on this relay, with a ring of recent records. */
struct feed {
    struct feed *next;
    char product[STORE_ID_MAX];
    uint8_t fkey[16];               /* the projection its subscribers share (session.fkey): the owner
                                       said each of them gets exactly these fields */
    session_t *up;
    int nsubs, linked;
    ring_rec_t *ring;
    size_t cap, head, count, bytes;
    uint64_t first, end;            /* the ring holds seqs [first, end) */
    segment_t *segs, *segs_tail;    /* the schema of the ring's records, oldest first */
};

/* ================================================================== relay sessions (mu held) */

static move_t *move_find(reads_t *r, const uint8_t old[32])
{
    for (move_t *m = r->moves; m; m = m->next)
        if (!memcmp(m->old, old, 32))
            return m;
    return NULL;
}

static void move_remove(reads_t *r, move_t *m)
{
    for (move_t **p = &r->moves; *p; p = &(*p)->next)
        if (*p == m) {
            *p = m->next;
            r->nmoves--;
            free(m);
            return;
        }
}

/* Starts waiting for the successor of owner old (of product's domain); NULL when no room. */
static move_t *move_add(reads_t *r, const uint8_t old[32], const char *product, uint64_t now)
{
    move_t *m = move_find(r, old);
    if (m)
        return m->found ? NULL : m;   /* a key that moved once does not move again: fail */
    if (r->nmoves >= MOVES_MAX) {     /* drop the oldest move already followed */
        move_t *drop = NULL;
        for (move_t *x = r->moves; x; x = x->next)
            if (x->found)
                drop = x;
        if (!drop)
            return NULL;
        move_remove(r, drop);
    }
    if (!(m = calloc(1, sizeof *m)))
        return NULL;
    memcpy(m->old, old, 32);
    snprintf(m->domain, sizeof m->domain, "%.*s", (int)strcspn(product, "/"), product);
    m->since = now;
    m->next = r->moves;
    r->moves = m;
    r->nmoves++;
    return m;
}

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
            r->promised -= s->promise;
            s->promise = 0;
            return;
        }
}

#define NARROW_BYTES ((size_t)64 << 10) /* a batch's bytes on a session opened with the budget spent */
#define NARROW_LOG_MS 10000             /* narrowed sessions are logged at most this often */

/* The relay's budget (mu held): a range session is promised window x batch_bytes of the bytes its
 * owner may send before its reader takes them, all sessions together relay_bytes at most (a
 * reader that takes nothing holds its promise). What is left gives s fewer batches in flight; with
 * none left, one batch of NARROW_BYTES (slower, never refused), counted and logged. */
static void session_budget(reads_t *r, session_t *s)
{
    size_t room = r->c.relay_bytes > r->promised ? r->c.relay_bytes - r->promised : 0;
    size_t full = r->c.batch_bytes ? r->c.batch_bytes : 1;
    size_t w = room / full;
    if (w >= 1) {
        s->window = w < s->window ? (uint32_t)w : s->window;
        s->max_bytes = full;
    } else {
        s->window = 1;
        s->max_bytes = NARROW_BYTES < full ? NARROW_BYTES : full;
        BUMP(r, relay_narrowed, 1);
        uint64_t held;
        if (log_limit(&r->narrow_log, NARROW_LOG_MS, &held))
            log_warn("reads: %" PRIu64 " routed reads opened with one batch of %zu bytes in flight: readers that "
                     "have not taken their batches hold the relay's budget (%zu of its %zu bytes promised)",
                     held + 1, s->max_bytes, r->promised, r->c.relay_bytes);
    }
    s->promise = (size_t)s->window * s->max_bytes;
    r->promised += s->promise;
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
    char detail[ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    reads__err_set(&s->e, status, kind, "%s", detail);
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
    if (o->token && o->token_len) {
        if (!(s->token = malloc(o->token_len))) {
            free(s);
            return NULL;
        }
        memcpy(s->token, o->token, o->token_len);
        s->token_len = o->token_len;
    }
    s->from = from ? from : 1;
    s->limit = limit;
    s->live = live;
    s->from_tail = from_tail;
    s->window = window;
    s->need_open = 1;
    s->expect_batch = 1;
    s->last_heard = s->last_sent = clock_ms();
    s->open_ms = o->open_timeout_ms && o->open_timeout_ms < r->c.open_timeout_ms ? o->open_timeout_ms
                                                                                 : r->c.open_timeout_ms;
    s->open_by = s->last_heard + s->open_ms;
    /* an owner key that moved (a reader opened with it before): its successor, or wait for it */
    for (int i = 0; i < MOVES_MAX && !s->moving; i++) {
        const move_t *m = move_find(r, s->owner);
        if (!m)
            break;
        if (!m->found) {
            s->moving = 1;
            s->open_by += r->c.stall_ms;
            break;
        }
        memcpy(s->owner, m->to, 32);
        snprintf(s->owner_addr, sizeof s->owner_addr, "%s", m->addr);
        snprintf(s->owner_desc, sizeof s->owner_desc, "%s", m->desc);
    }
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
    if (!s->done && !(s->failed && !strcmp(s->e.kind, "owner_lost")) && !s->need_open) {
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
    free(s->token);
    free(s);
}

/* Waits (mu held) until the owner's first reply, a failure or timeout_ms. 0 opened, -1 failed
 * or timed out (then s is failed with the reason). */
static int session_wait_open(reads_t *r, session_t *s, int timeout_ms)
{
    uint64_t start = clock_ms(), until = start + (uint64_t)timeout_ms;
    while (!s->opened && !s->failed) {
        /* a session whose owner is handing over to a new key (or was) is given the time to */
        uint64_t now = clock_ms(), end = until > s->open_by ? until : s->open_by;
        if (now >= end)
            break;
        struct timespec ts;
        deadline_ts(&ts, (int)(end - now));
        pthread_cond_timedwait(&s->cv, &r->mu, &ts);
    }
    if (s->opened && !s->failed)
        return 0;
    if (!s->failed) {
        BUMP(r, fail_open_timeout, 1);
        session_fail(r, s, 503, "owner_unreachable", "%s did not answer within %u ms", s->owner_desc,
                     (unsigned)(clock_ms() - start));   /* (longer than timeout_ms: owner_heard) */
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
    for (segment_t *g = f->segs, *n; g; g = n) {
        n = g->next;
        free(g);
    }
    f->segs = f->segs_tail = NULL;
}

/* The segment holding seq (in the ring), or NULL when the owner named no schema. */
static const segment_t *segment_at(const feed_t *f, uint64_t seq)
{
    const segment_t *g = f->segs;
    if (!g || seq < g->first)
        return NULL;
    while (g->next && g->next->first <= seq)
        g = g->next;
    return g;
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
    while (f->segs && f->segs->next && f->segs->next->first <= f->first) {
        segment_t *g = f->segs;
        f->segs = g->next;
        free(g);
    }
}

/* Appends the batch's records to the ring (they continue it, and its lines are whole: checked by
 * the caller). */
static int ring_take(reads_t *r, feed_t *f, const Trib__ReadBatch *b)
{
    if (b->lines.len == 0)
        return 0;
    if (b->schema_version && *b->schema_version &&
        (!f->segs_tail || f->segs_tail->sc.seq != b->schema_seq)) {
        segment_t *g = calloc(1, sizeof *g);
        if (!g)
            return -1;
        g->first = f->end;
        g->sc.told = 1;
        g->sc.seq = b->schema_seq;
        snprintf(g->sc.version, sizeof g->sc.version, "%s", b->schema_version);
        if (f->segs_tail)
            f->segs_tail->next = g;
        else
            f->segs = g;
        f->segs_tail = g;
    }
    const uint8_t *p = b->lines.data, *end = p + b->lines.len;
    for (const uint8_t *nl; p < end; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)(nl - p);
        char *d = malloc(len);
        if (!d)
            return -1;
        memcpy(d, p, len);
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
    char *token;                /* the consumer's token (forwarded with every session it opens) */
    size_t token_len;
    uint64_t last_probe;        /* live: when the owner last authorised this subscriber (ms) */
    uint8_t fkey[16];           /* live: the projection the owner gave this subscriber (its feed's) */
    session_t *s;               /* range session: the read itself, or a live catch-up */
    feed_t *feed;               /* live */
    uint64_t next;              /* live: next seq to deliver */
    uint64_t catchup_end;       /* live: seq the running catch-up stops before */
    Trib__ReadBatch *cur;       /* batch being copied out, from byte roff of its lines */
    size_t roff;
    char *stage;                /* live: records copied from the ring, as NDJSON */
    size_t slen, soff, scap;
    schema_t sc;                /* the schema of every record this read hands out (as a local read) */
    schema_t next_sc;           /* after READS_SCHEMA: the schema of records from seq change_at on */
    uint64_t change_at;
    uint64_t records;           /* records handed out (whole batches taken, ring records staged) */
};

/* The error of a reader's open that failed on session s (refused by the owner with its status,
 * not answered, or the owner lost meanwhile); def: the status when the owner gave none. */
static void open_err(reads_err_t *e, const session_t *s, int def)
{
    int lost = !strcmp(s->e.kind, "owner_lost");
    *e = s->e;
    e->status = s->e.status ? s->e.status : def;
    snprintf(e->kind, sizeof e->kind, "%s", lost ? "owner_unreachable" : s->e.status ? s->e.kind : "owner_error");
}

/* Hands e to a public caller's buffers. */
static void err_out(const reads_err_t *e, int *status, char *kind, size_t kindlen, char *err, size_t errlen)
{
    if (status)
        *status = e->status;
    snprintf(kind, kindlen, "%s", e->kind);
    snprintf(err, errlen, "%s", e->detail);
}

/* Copies the lines of rd->cur from roff into out. */
static size_t emit_batch(reads_reader_t *rd, char *out, size_t cap)
{
    const ProtobufCBinaryData *l = &rd->cur->lines;
    size_t n = l->len - rd->roff < cap ? l->len - rd->roff : cap;
    if (n == 0)
        return 0; /* an empty batch has no data pointer at all */
    memcpy(out, l->data + rd->roff, n);
    rd->roff += n;
    return n;
}

void reads__schema_of(schema_t *sc, const Trib__ReadBatch *b)
{
    sc->told = b->schema_version && *b->schema_version;
    sc->seq = sc->told ? b->schema_seq : 0;
    snprintf(sc->version, sizeof sc->version, "%s", sc->told ? b->schema_version : "");
}

int reads__schema_out(const schema_t *sc, const schema_t *next_sc, uint64_t change_at, int next, uint64_t *at,
                      uint64_t *mseq, char *version, size_t len)
{
    const schema_t *s = next ? next_sc : sc;
    if (!s->told)
        return -1;
    if (at)
        *at = change_at;
    *mseq = s->seq;
    snprintf(version, len, "%s", s->version);
    return 0;
}

/* True when records of schema sc may not go out in rd's answer: it ends before them, as a local
 * read does (node/stream.c), and rd->next_sc, rd->change_at say where and which. */
static int schema_ends(reads_reader_t *rd, const schema_t *sc, uint64_t at)
{
    if (!rd->sc.told || !sc->told || sc->seq == rd->sc.seq)
        return 0;
    rd->next_sc = *sc;
    rd->change_at = at;
    return 1;
}

/* Next bytes of the range session rd->s. */
static long range_next(reads_reader_t *rd, char *out, size_t cap, int timeout_ms, reads_err_t *e)
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
        if (timeout_ms > 0)
            deadline_ts(&ts, timeout_ms);
        pthread_mutex_lock(&r->mu);
        /* timeout 0 (an HTTP thread that never waits): no futex call for an empty queue */
        while (timeout_ms > 0 && !s->qhead && !s->failed && !s->done)
            if (pthread_cond_timedwait(&s->cv, &r->mu, &ts) == ETIMEDOUT)
                break;
        if (s->qhead) {
            rbatch_t *b = s->qhead;
            schema_t sc;
            reads__schema_of(&sc, b->msg);
            if (b->count && schema_ends(rd, &sc, b->msg->first_seq)) {
                pthread_mutex_unlock(&r->mu);   /* the batch stays queued: the read ends here */
                return READS_SCHEMA;
            }
            s->qhead = b->next;
            if (!s->qhead)
                s->qtail = NULL;
            s->qlen--;
            r->queued--;
            s->consumed++;
            /* Credit once a quarter of the window is consumed (not half): on a loaded machine the
             * credit's round trip (eight thread hand-offs) is long, and the owner must never wait
             * with the queue here running dry. */
            uint64_t quarter = s->window / 4 ? s->window / 4 : 1;
            if (!s->done && s->consumed - s->acked_sent >= quarter) {
                s->credit_due = 1;
                r->dirty = 1;
                wake = 1;
            }
            if (!s->qhead && s->need_open && s->opened) { /* re-attached: its open waited for this */
                r->dirty = 1;
                wake = 1;
            }
            pthread_mutex_unlock(&r->mu);
            if (wake)
                r->io.wake(r->io.ctx);
            rd->cur = b->msg;
            rd->roff = 0;
            rd->records += b->count;
            if (rd->live && b->count)
                rd->next = b->msg->first_seq + b->count;
            free(b);
            continue;
        }
        long ret = 0;
        if (s->failed) {
            *e = s->e;
            ret = READS_FAILED;
        } else if (s->done) {
            ret = READS_END;
        }
        pthread_mutex_unlock(&r->mu);
        return ret;
    }
}

/* 0 when a new session may open (mu held), else -1 with the refusal. */
static int relay_refuse(reads_t *r, reads_err_t *e)
{
    if (!r->shutting_down && r->nsessions < r->c.max_sessions)
        return 0;
    if (r->shutting_down)
        reads__err_set(e, 503, "shutting_down", "this node is shutting down");
    else
        reads__err_set(e, 503, "busy", "too many routed reads open on this node");
    return -1;
}

/* Opens a range session for rd and waits for its first reply (sc: its schema, or NULL); mu not
 * held. */
static int reader_open_range(reads_reader_t *rd, uint64_t from, uint64_t limit, uint64_t *last_seq, schema_t *sc,
                             reads_err_t *e)
{
    reads_t *r = rd->r;
    pthread_mutex_lock(&r->mu);
    if (relay_refuse(r, e) < 0) {
        pthread_mutex_unlock(&r->mu);
        return -1;
    }
    session_t *s = session_new(r, &rd->o, from, limit, 0, 0, r->c.window);
    if (s)
        session_budget(r, s);
    pthread_mutex_unlock(&r->mu);
    if (!s) {
        reads__err_set(e, 500, "internal", "out of memory");
        return -1;
    }
    r->io.wake(r->io.ctx);
    int wake = 0;
    pthread_mutex_lock(&r->mu);
    if (session_wait_open(r, s, (int)s->open_ms) < 0) {
        open_err(e, s, 502);
        session_release(r, s, &wake);
        pthread_mutex_unlock(&r->mu);
        if (wake)
            r->io.wake(r->io.ctx);
        return -1;
    }
    if (last_seq)
        *last_seq = s->last_seq;
    if (sc)
        *sc = s->sc;
    rd->s = s;
    pthread_mutex_unlock(&r->mu);
    return 0;
}

/* Asks the owner whether rd's token reads the product, and with which projection: a range read
 * past any seq, which the owner checks and answers "done" with no records. 0 yes (fkey: the
 * projection's key; sc, unless NULL: the product's schema now), -1 with e (the owner's refusal);
 * mu not held. */
static int reader_ask_owner(reads_reader_t *rd, uint8_t fkey[16], schema_t *sc, reads_err_t *e)
{
    rd->last_probe = clock_ms();
    if (reader_open_range(rd, UINT64_MAX - 1, 1, NULL, sc, e) < 0)
        return -1;
    int wake = 0;
    pthread_mutex_lock(&rd->r->mu);
    memcpy(fkey, rd->s->fkey, 16);
    session_release(rd->r, rd->s, &wake);
    pthread_mutex_unlock(&rd->r->mu);
    rd->s = NULL;
    if (wake)
        rd->r->io.wake(rd->r->io.ctx);
    return 0;
}

static feed_t *feed_find(reads_t *r, const reads_reader_t *rd, const uint8_t fkey[16])
{
    feed_t *f = r->feeds;
    for (; f; f = f->next)
        if (!strcmp(f->product, rd->product) && !memcmp(f->up->owner, rd->owner_id, 32) &&
            !memcmp(f->fkey, fkey, 16))
            break;
    return f;
}

/* Finds or opens the feed of rd's product for rd's projection and waits for it to be open; mu not
 * held. The owner authorises every subscriber first (its probe also names the fields it may
 * read): a feed is shared only by subscribers the owner projects alike (grants2). */
static int reader_join_feed(reads_reader_t *rd, uint64_t *last_seq, reads_err_t *e)
{
    reads_t *r = rd->r;
    int wake = 0;
    uint8_t fkey[16];
    schema_t now;   /* the product's schema now: a reader beyond the last record is told it */
    if (reader_ask_owner(rd, fkey, &now, e) < 0)
        return -1;
    memcpy(rd->fkey, fkey, 16);
    pthread_mutex_lock(&r->mu);
    feed_t *f = feed_find(r, rd, fkey);
    if (!f) {
        if (relay_refuse(r, e) < 0) {
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
            reads__err_set(e, 500, "internal", "out of memory");
            return -1;
        }
        snprintf(f->product, sizeof f->product, "%s", rd->product);
        memcpy(f->fkey, fkey, 16);
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
        open_err(e, s, 503);
        pthread_mutex_unlock(&r->mu);
        return -1; /* reads_reader_close leaves the feed */
    }
    if (last_seq)
        *last_seq = f->end - 1;
    /* The schema this answer names, as a local read: the first record's, or beyond the last
     * record the product's now. Below the ring the catch-up's first batch says it (opened now). */
    uint64_t end = f->first;
    const segment_t *g = rd->next < f->end ? segment_at(f, rd->next) : NULL;
    if (rd->next >= f->end)
        rd->sc = now;
    else if (g)
        rd->sc = g->sc;
    pthread_mutex_unlock(&r->mu);
    if (rd->next < end) {
        if (reader_open_range(rd, rd->next, end - rd->next, NULL, &rd->sc, e) < 0)
            return -1;
        rd->catchup_end = end;
    }
    return 0;
}

reads_reader_t *reads_reader_open(reads_t *r, const reads_open_t *o, uint64_t *last_seq, int *status, char *kind,
                                  size_t kindlen, char *err, size_t errlen)
{
    reads_err_t e = {0};
    reads_reader_t *rd = NULL;
    if (!entry_valid_product_id(o->product)) /* never on the wire */
        reads__err_set(&e, 400, "bad_id", "not a product id");
    else if (o->live && o->limit)
        reads__err_set(&e, 400, "bad_query", "limit: not supported on a stream");
    else if (!(rd = calloc(1, sizeof *rd)))
        reads__err_set(&e, 500, "internal", "out of memory");
    if (!rd) {
        err_out(&e, status, kind, kindlen, err, errlen);
        return NULL;
    }
    rd->r = r;
    memcpy(rd->owner_id, o->owner_id, 32);
    snprintf(rd->product, sizeof rd->product, "%s", o->product);
    snprintf(rd->owner_addr, sizeof rd->owner_addr, "%s", o->owner_addr);
    snprintf(rd->owner_desc, sizeof rd->owner_desc, "%s", o->owner_desc ? o->owner_desc : o->owner_addr);
    if (o->token && o->token_len) {
        if (!(rd->token = malloc(o->token_len))) {
            free(rd);
            reads__err_set(&e, 500, "internal", "out of memory");
            err_out(&e, status, kind, kindlen, err, errlen);
            return NULL;
        }
        memcpy(rd->token, o->token, o->token_len);
        rd->token_len = o->token_len;
    }
    rd->o = (reads_open_t){.product = rd->product, .owner_id = rd->owner_id, .owner_addr = rd->owner_addr,
                           .owner_desc = rd->owner_desc, .token = rd->token, .token_len = rd->token_len,
                           .open_timeout_ms = o->live ? 0 : o->open_timeout_ms};
    rd->live = o->live;
    rd->next = o->from ? o->from : 1;
    int rc = o->live ? reader_join_feed(rd, last_seq, &e)
                     : reader_open_range(rd, o->from, o->limit, last_seq, &rd->sc, &e);
    if (rc < 0) {
        err_out(&e, status, kind, kindlen, err, errlen);
        reads_reader_close(&rd);
        return NULL;
    }
    rd->last_probe = clock_ms(); /* the owner authorised this reader just now (its open or its probe) */
    return rd;
}

/* Copies ring records from rd->next into the stage (mu held), up to the first of another schema
 * than rd's. 1 when that one is next: nothing was staged and the read ends (READS_SCHEMA). */
static int stage_from_ring(reads_reader_t *rd, feed_t *f)
{
    rd->slen = rd->soff = 0;
    uint64_t stop = f->end;
    const segment_t *g = segment_at(f, rd->next);
    if (g) {
        if (schema_ends(rd, &g->sc, rd->next))
            return 1;
        if (g->next)
            stop = g->next->first;
    }
    while (rd->next < stop && rd->slen < STAGE_BYTES) {
        const ring_rec_t *rec = &f->ring[(f->head + (rd->next - f->first)) % f->cap];
        if (rd->slen + rec->len + 1 > rd->scap) {
            size_t cap = rd->scap ? rd->scap : 64 * 1024;
            while (cap < rd->slen + rec->len + 1)
                cap *= 2;
            char *b = realloc(rd->stage, cap);
            if (!b)
                return 0; /* deliver what is staged; try again next call */
            rd->stage = b;
            rd->scap = cap;
        }
        memcpy(rd->stage + rd->slen, rec->data, rec->len);
        rd->slen += rec->len;
        rd->stage[rd->slen++] = '\n';
        rd->next++;
        rd->records++;
    }
    return 0;
}

/* Asks the owner whether rd's token still reads the product with the feed's projection. 0 yes,
 * -1 with e (the owner's refusal, or "grant_changed": its fields are not the feed's any more). */
static int reader_probe(reads_reader_t *rd, reads_err_t *e)
{
    uint8_t fkey[16];
    if (reader_ask_owner(rd, fkey, NULL, e) < 0)
        return -1;
    if (memcmp(fkey, rd->fkey, 16) != 0) {
        reads__err_set(e, 403, "grant_changed", "the fields %s lets this token read of %s changed: open the stream again",
                       rd->owner_desc, rd->product);
        return -1;
    }
    return 0;
}

#define REPROBE_MS 2000 /* a subscriber of a shared feed is authorised again this often */

static long live_next(reads_reader_t *rd, char *out, size_t cap, int timeout_ms, reads_err_t *e)
{
    reads_t *r = rd->r;
    for (;;) {
        /* The owner decides for each subscriber: a revoked or expired token (or grant) ends this
         * subscriber's stream within REPROBE_MS while the feed goes on for the others. */
        if (!rd->s && rd->soff >= rd->slen && clock_ms() - rd->last_probe >= REPROBE_MS &&
            reader_probe(rd, e) < 0) {
            if (e->status == 503)
                snprintf(e->kind, sizeof e->kind, "owner_lost");
            e->status = 0;
            return READS_FAILED;
        }
        if (rd->soff < rd->slen) {
            size_t n = rd->slen - rd->soff < cap ? rd->slen - rd->soff : cap;
            memcpy(out, rd->stage + rd->soff, n);
            rd->soff += n;
            return (long)n;
        }
        if (rd->s) { /* catching up below the ring */
            long n = range_next(rd, out, cap, timeout_ms, e);
            if (n != READS_END)
                return n;
            int wake = 0;
            pthread_mutex_lock(&r->mu);
            session_release(r, rd->s, &wake);
            pthread_mutex_unlock(&r->mu);
            rd->s = NULL;
            if (rd->next < rd->catchup_end) {
                reads__err_set(e, 0, "owner_lost", "%s ended the records of %s at seq %" PRIu64 ", expected up to %" PRIu64,
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
                if (reader_open_range(rd, rd->next, end - rd->next, NULL, NULL, e) < 0) {
                    if (e->status == 503)
                        snprintf(e->kind, sizeof e->kind, "owner_lost");
                    return READS_FAILED;
                }
                rd->catchup_end = end;
                break;
            }
            if (rd->next < f->end) {
                int ends = stage_from_ring(rd, f);
                pthread_mutex_unlock(&r->mu);
                if (ends)
                    return READS_SCHEMA;
                break;
            }
            if (s->failed) {
                *e = s->e;
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

uint64_t reads_reader_records(const reads_reader_t *rd) { return rd->records; }

int reads_reader_schema(const reads_reader_t *rd, int next, uint64_t *at, uint64_t *mseq, char *version,
                        size_t len)
{
    return reads__schema_out(&rd->sc, &rd->next_sc, rd->change_at, next, at, mseq, version, len);
}

long reads_reader_next(reads_reader_t *rd, char *out, size_t cap, int timeout_ms, char *kind, size_t kindlen,
                       char *err, size_t errlen)
{
    assert(cap > 0);
    reads_err_t e = {0};
    long n = rd->live ? live_next(rd, out, cap, timeout_ms, &e) : range_next(rd, out, cap, timeout_ms, &e);
    if (n == READS_FAILED)
        err_out(&e, NULL, kind, kindlen, err, errlen);
    return n;
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
    free(rd->token);
    free(rd);
    *rdp = NULL;
}

/* ================================================================== the loop's side of sessions */

/* Credit for what the readers consumed, into q (mu held). */
static void add_credit(outq_t *q, session_t *s, uint64_t now)
{
    Trib__ReadCredit c = TRIB__READ_CREDIT__INIT;
    c.stream_id = s->id;
    c.credit = s->window;
    c.acked = s->consumed;
    s->acked_sent = s->consumed;
    s->credit_due = 0;
    s->last_sent = now;
    reads__outq_add(q, s->owner_addr, TRIB__MSG_TYPE__MSG_READ_CREDIT, s->id, &c.base);
}

/* What is wrong with the records of an owner's batch, or NULL with *count set to how many it
 * holds. Its lines must be whole and not empty; their seqs 1 or more and not wrapping (the first
 * batch of a from_tail stream sets first_seq freely). One pass of memchr: no copy, no allocation. */
static const char *batch_lines(const Trib__ReadBatch *b, uint64_t *count)
{
    *count = 0;
    if (b->n_records)
        return "records one by one (an older owner: both nodes must run this version)";
    if (b->lines.len == 0)
        return NULL;
    const uint8_t *p = b->lines.data, *end = p + b->lines.len;
    if (p < end && end[-1] != '\n')
        return "a record cut short (no newline at the end of its lines)";
    for (const uint8_t *nl; p < end; p = nl + 1, ++*count)
        if ((nl = memchr(p, '\n', (size_t)(end - p))) == p)
            return "an empty record";
    if (*count && (b->first_seq == 0 || *count > UINT64_MAX - b->first_seq))
        return "records with seqs out of range";
    return NULL;
}

void reads__refusal(const Trib__ReadBatch *b, int opened, const char *desc, reads_err_t *e)
{
    int status = b->status >= 400 && b->status <= 599 ? (int)b->status : 502;
    /* The owner's own code when it gave one (an access refusal: token_required ...), kept if it
     * is a short lowercase word; else named from the status. */
    int named = b->error_kind && *b->error_kind && strlen(b->error_kind) < KIND_MAX &&
                strspn(b->error_kind, "abcdefghijklmnopqrstuvwxyz_") == strlen(b->error_kind);
    const char *kind = named           ? b->error_kind
                       : status == 404 ? "not_found"
                       : status == 400 ? "bad_query"
                       : status == 410 ? "retired"
                       : status == 503 ? (opened ? "owner_lost" : "owner_unreachable")
                                       : "owner_error";
    if (opened)
        reads__err_set(e, 0, kind, "%s: %s", desc, b->error ? b->error : "error");
    else
        reads__err_set(e, status, kind, "%s", b->error ? b->error : "refused by the owner");
}

const char *reads__batch_check(const Trib__ReadBatch *b, uint64_t expect_batch, uint64_t expect_first,
                               const char *desc, uint64_t *count, reads_err_t *e)
{
    const char *bad = batch_lines(b, count);
    if (bad)
        reads__err_set(e, 0, "owner_lost", "%s sent %s", desc, bad);
    else if (b->batch_no != expect_batch || (*count && b->first_seq != expect_first))
        reads__err_set(e, 0, "owner_lost",
                       "the stream from %s lost a batch (expected batch %" PRIu64 " seq %" PRIu64 ", got batch %" PRIu64
                       " seq %" PRIu64 ")",
                       desc, expect_batch, expect_first, b->batch_no, b->first_seq);
    else if (b->schema_version && (strlen(b->schema_version) > STORE_VERSION_MAX ||
                                   strspn(b->schema_version, PRINTABLE) != strlen(b->schema_version)))
        reads__err_set(e, 0, "owner_lost", "%s sent a schema version that is not printable ASCII of at most %d bytes",
                       desc, STORE_VERSION_MAX);
    else
        return NULL;
    return e->detail;
}

/* The owner ended s with an error status (mu held): the status becomes the HTTP status of the
 * refused read when s was not open yet; only a 4xx/5xx is taken as is. */
static void session_refused(reads_t *r, session_t *s, const Trib__ReadBatch *b)
{
    reads_err_t e = {0};
    reads__refusal(b, s->opened, s->owner_desc, &e);
    if (!s->opened)
        BUMP(r, fail_refused, 1);
    session_fail(r, s, e.status, e.kind, "%s", e.detail);
    s->need_open = 0;
    s->done = 1; /* the owner ended the stream: no cancel */
}

/* Takes batch b of s (mu held): 1 when b was queued for the reader (it frees b), else 0. A
 * batch that breaks the stream's rules fails s with e and tells the owner to stop. */
static int session_take(reads_t *r, session_t *s, Trib__ReadBatch *b, uint64_t now, outq_t *q)
{
    BUMP(r, batches_recv, 1);
    if (b->done && b->status) {
        session_refused(r, s, b);
        return 0;
    }
    reads_err_t e = {0};
    uint64_t n;
    uint64_t expect_first = s->opened ? s->next_seq : s->from_tail ? b->first_seq : s->from;
    if (reads__batch_check(b, s->expect_batch, expect_first, s->owner_desc, &n, &e)) {
    } else if (!s->feed && s->qlen >= s->window) { /* the owner may not send beyond acked + window */
        BUMP(r, overrun, 1);
        reads__err_set(&e, 0, "owner_lost", "%s sent beyond the credit given", s->owner_desc);
    } else if (s->max_bytes && n > 1 && b->lines.len > s->max_bytes) { /* the budget counts on it */
        BUMP(r, overrun, 1);
        reads__err_set(&e, 0, "owner_lost", "%s sent a batch of %zu bytes, more than the %zu asked", s->owner_desc,
                       b->lines.len, s->max_bytes);
    }
    if (e.kind[0]) {
        session_fail(r, s, e.status, e.kind, "%s", e.detail);
        reads__outq_cancel(q, s->owner_addr, s->id);
        return 0;
    }
    if (s->fresh) { /* re-attached: the new key's stream must project as the old one did */
        s->fresh = 0;
        uint8_t k[16];
        const char *fk = b->fields_key ? b->fields_key : "";
        crypto_generichash(k, sizeof k, (const uint8_t *)fk, strlen(fk), NULL, 0);
        if (memcmp(k, s->fkey, sizeof k) != 0) {
            session_fail(r, s, 0, "grant_changed", "the fields %s lets this token read changed: open the stream again",
                         s->owner_desc);
            reads__outq_cancel(q, s->owner_addr, s->id);
            return 0;
        }
    }
    if (!s->opened) {
        s->opened = 1;
        s->last_seq = b->last_seq;
        const char *k = b->fields_key ? b->fields_key : "";
        crypto_generichash(s->fkey, sizeof s->fkey, (const uint8_t *)k, strlen(k), NULL, 0);
        if (s->feed && memcmp(s->fkey, s->feed->fkey, sizeof s->fkey) != 0) {
            /* the grant changed between the subscriber's probe and this open: never fill the ring
             * with records projected for anyone but the feed's subscribers */
            session_fail(r, s, 503, "grant_changed", "the fields %s lets this token read changed: open the stream again",
                         s->owner_desc);
            reads__outq_cancel(q, s->owner_addr, s->id);
            return 0;
        }
        reads__schema_of(&s->sc, b);
        s->next_seq = n ? b->first_seq : expect_first;
        if (s->feed)
            s->feed->first = s->feed->end = s->next_seq;
    }
    s->expect_batch++;
    s->next_seq += n;
    BUMP(r, records_recv, n);
    if (b->done && s->feed) /* a live upstream does not end by itself */
        session_fail(r, s, 0, "owner_lost", "%s ended the live stream", s->owner_desc);
    else if (b->done)
        s->done = 1;
    if (s->feed) {
        if (ring_take(r, s->feed, b) < 0)
            session_fail(r, s, 0, "internal", "out of memory for the live ring of %s", s->product);
        s->consumed++;
        if (s->consumed - s->acked_sent >= (s->window / 2 ? s->window / 2 : 1))
            add_credit(q, s, now);
        return 0;
    }
    rbatch_t *rb = malloc(sizeof *rb);
    if (!rb) {
        session_fail(r, s, 0, "internal", "out of memory");
        return 0;
    }
    rb->next = NULL;
    rb->msg = b;
    rb->count = n;
    if (s->qtail)
        s->qtail->next = rb;
    else
        s->qhead = rb;
    s->qtail = rb;
    s->qlen++;
    r->queued++;
    if (s->qlen > r->queued_hwm)
        r->queued_hwm = s->qlen;
    return 1;
}

/* A batch from owner came in (mu held): its sessions still waiting for their first reply are not
 * waiting on an owner that is gone but on one busy answering this node's other streams (their
 * requests queue behind those batches), so each waits on from now, for at most stall_ms beyond its
 * own wait. Under load 48 reads opened at once from one owner got 503 owner_unreachable after
 * open_timeout_ms while the owner was sending the others. */
static void owner_heard(reads_t *r, const uint8_t owner[32], uint64_t now)
{
    for (session_t *s = r->sessions; s; s = s->next) {
        if (s->opened || s->failed || s->done || s->need_open || s->moving || memcmp(s->owner, owner, 32))
            continue;
        uint64_t cap = s->asked + s->open_ms + r->c.stall_ms, by = now + s->open_ms;
        if (by > cap)
            by = cap;
        if (by > s->open_by)
            s->open_by = by;
        if (now < cap)
            s->last_heard = now;   /* word from its owner: not stalled (reads__relay_tick) */
    }
}

void reads__relay_batch(reads_t *r, uint64_t now, const uint8_t sender[32], const char *sender_addr,
                        Trib__ReadBatch *b, outq_t *q)
{
    int queued = 0;
    pthread_mutex_lock(&r->mu);
    owner_heard(r, sender, now);
    session_t *s = session_find(r, b->stream_id);
    if (!s) {
        if (!b->done)
            reads__outq_cancel(q, sender_addr, b->stream_id); /* a stream we no longer want */
    } else if (!memcmp(s->owner, sender, 32)) {
        s->last_heard = now;
        if (!s->failed && !s->done && b->batch_no != 0) { /* batch_no 0: a keepalive */
            queued = session_take(r, s, b, now, q);
            pthread_cond_broadcast(&s->cv);
        }
    }
    pthread_mutex_unlock(&r->mu);
    if (!queued)
        trib__read_batch__free_unpacked(b, NULL);
}

void reads__relay_drain(reads_t *r, uint64_t now, outq_t *q)
{
    if (!r->dirty)
        return;
    r->dirty = 0;
    for (session_t *s = r->sessions; s; s = s->next) {
        if (s->failed || s->done || s->moving)
            continue;
        if (s->need_open && s->qhead)
            continue;   /* re-attached: opens once its reader took what the old stream sent */
        if (s->need_open) {
            /* a new stream (or the new key's, re-attached): batches and credit count from 0 */
            s->expect_batch = 1;
            s->consumed = s->acked_sent = 0;
            s->credit_due = 0;
            s->open_by = now + s->open_ms;
            Trib__ReadRequest m = TRIB__READ_REQUEST__INIT;
            m.stream_id = s->id;
            m.product_id = s->product;
            m.from_seq = s->from;
            m.limit = s->limit;
            m.live = s->live;
            m.from_tail = s->from_tail;
            m.resume = s->resume;
            m.credit = s->window;
            m.max_bytes = s->max_bytes;
            m.token = (ProtobufCBinaryData){s->token_len, (uint8_t *)s->token};
            s->need_open = 0;
            s->asked = s->last_sent = s->last_heard = now;
            reads__outq_add(q, s->owner_addr, TRIB__MSG_TYPE__MSG_READ_REQ, s->id, &m.base);
        } else if (s->credit_due) {
            add_credit(q, s, now);
        }
    }
}

void reads__relay_tick(reads_t *r, uint64_t now, outq_t *q)
{
    pthread_mutex_lock(&r->mu);
    for (session_t *s = r->sessions; s; s = s->next) {
        if (s->failed || s->done || s->need_open || s->moving)
            continue;
        if (now - s->last_heard >= r->c.stall_ms) {
            session_fail(r, s, 503, "owner_lost", "no word from %s for %" PRIu64 " ms", s->owner_desc,
                         now - s->last_heard);
            reads__outq_cancel(q, s->owner_addr, s->id);
        } else if (now - s->last_sent >= r->c.keepalive_ms) {
            add_credit(q, s, now);
        }
    }
    pthread_mutex_unlock(&r->mu);
}

void reads__relay_peer_lost(reads_t *r, const uint8_t id[32], const char *state)
{
    uint64_t now = clock_ms();
    int follow = r->io.successor && !strcmp(state, "left");   /* a crash (dead) hands nothing over */
    pthread_mutex_lock(&r->mu);
    for (session_t *s = r->sessions; s; s = s->next) {
        if (memcmp(s->owner, id, 32) || s->failed || s->done)
            continue;
        if (follow && move_add(r, id, s->product, now)) {
            s->moving = 1;
            if (s->open_by < now + r->c.stall_ms + r->c.open_timeout_ms)
                s->open_by = now + r->c.stall_ms + r->c.open_timeout_ms;
        } else {
            session_fail(r, s, 503, "owner_lost", READS_OWNER_GONE_FMT, s->owner_desc, state);
        }
    }
    pthread_mutex_unlock(&r->mu);
}

int reads__relay_from(reads_t *r, const uint8_t id[32])
{
    int found = 0;
    pthread_mutex_lock(&r->mu);
    for (session_t *s = r->sessions; s && !found; s = s->next)
        found = !memcmp(s->owner, id, 32) && !s->failed && !s->done;
    pthread_mutex_unlock(&r->mu);
    return found;
}

size_t reads__relay_untrusted(reads_t *r, const uint8_t id[32], const char *detail)
{
    size_t n = 0;
    pthread_mutex_lock(&r->mu);
    for (session_t *s = r->sessions; s; s = s->next) {
        if (memcmp(s->owner, id, 32) || s->failed || s->done)
            continue;
        s->moving = 0;   /* no successor is waited for: the key is refused, not handed over */
        /* an answer begun ends with its error line; one not begun is the 503 a new read gets */
        session_fail(r, s, 503, s->opened ? "owner_lost" : "owner_unreachable", "%s", detail);
        s->need_open = 0;
        n++;
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* s's owner handed its domain over to m->to (mu held): s goes on as a new stream to that key, from
 * the first record it has not received (a feed from its ring's end), under a new stream id: the
 * old one (the same process, at the same address) is told to stop. */
static void session_reattach(reads_t *r, session_t *s, const move_t *m, uint64_t now, outq_t *q)
{
    if (!s->need_open)
        reads__outq_cancel(q, s->owner_addr, s->id);
    memcpy(s->owner, m->to, 32);
    snprintf(s->owner_addr, sizeof s->owner_addr, "%s", m->addr);
    snprintf(s->owner_desc, sizeof s->owner_desc, "%s", m->desc);
    s->id = r->next_id++;
    s->moving = 0;
    if (s->opened) {
        if (s->feed) {
            s->resume = 1;
        } else if (s->limit) {
            uint64_t got = s->next_seq - s->from;
            if (got >= s->limit) { /* all received: only the last batch's "done" was lost */
                s->done = 1;
                pthread_cond_broadcast(&s->cv);
                return;
            }
            s->limit -= got;
        }
        s->from = s->next_seq;
        s->fresh = 1;
    }
    s->need_open = 1;
    s->last_heard = s->last_sent = now;
    s->open_by = now + r->c.open_timeout_ms;
    r->dirty = 1;
    pthread_cond_broadcast(&s->cv);
}

void reads__relay_follow(reads_t *r, uint64_t now, outq_t *q)
{
    if (!r->io.successor)
        return;
    struct {
        uint8_t old[32];
        char domain[64];
    } ask[MOVES_MAX];
    int n = 0;
    pthread_mutex_lock(&r->mu);
    for (const move_t *m = r->moves; m && n < MOVES_MAX; m = m->next)
        if (!m->found) {
            memcpy(ask[n].old, m->old, 32);
            snprintf(ask[n].domain, sizeof ask[n].domain, "%s", m->domain);
            n++;
        }
    pthread_mutex_unlock(&r->mu);
    int wake = 0;
    for (int i = 0; i < n; i++) {
        uint8_t to[32];
        char addr[ADDR_MAX], desc[DESC_MAX];
        int found = r->io.successor(r->io.ctx, ask[i].domain, ask[i].old, to, addr, sizeof addr, desc, sizeof desc) == 1;
        pthread_mutex_lock(&r->mu);
        move_t *m = move_find(r, ask[i].old);
        if (m && !m->found && found) {
            m->found = 1;
            memcpy(m->to, to, 32);
            snprintf(m->addr, sizeof m->addr, "%s", addr);
            snprintf(m->desc, sizeof m->desc, "%s", desc);
            for (session_t *s = r->sessions; s; s = s->next)
                if (s->moving && !memcmp(s->owner, m->old, 32)) {
                    BUMP(r, followed, 1);
                    session_reattach(r, s, m, now, q);
                }
            if (!memcmp(to, m->old, 32))   /* the same key, back (a quick restart): nothing moved */
                move_remove(r, m);
            wake = 1;
        } else if (m && !m->found && now - m->since >= r->c.stall_ms) {
            for (session_t *s = r->sessions; s; s = s->next)
                if (s->moving && !memcmp(s->owner, m->old, 32)) {
                    s->moving = 0;
                    s->need_open = 0;
                    session_fail(r, s, 503, "owner_lost", READS_OWNER_GONE_FMT, s->owner_desc, "left");
                }
            move_remove(r, m);
        }
        pthread_mutex_unlock(&r->mu);
    }
    if (wake)
        r->io.wake(r->io.ctx);
}

void reads__relay_rekeyed(reads_t *r, uint64_t now, outq_t *q)
{
    for (session_t *s = r->sessions; s; s = s->next) {
        if (s->failed || s->done || s->moving || s->need_open)
            continue;                       /* a move re-opens it anyway; an open not sent goes as the new key */
        move_t same = {.found = 1};
        memcpy(same.to, s->owner, 32);
        snprintf(same.addr, sizeof same.addr, "%s", s->owner_addr);
        snprintf(same.desc, sizeof same.desc, "%s", s->owner_desc);
        session_reattach(r, s, &same, now, q);
    }
}

void reads__relay_free(reads_t *r)
{
    for (move_t *m = r->moves, *n; m; m = n) {
        n = m->next;
        free(m);
    }
    r->moves = NULL;
    r->nmoves = 0;
}

void reads__relay_shutdown(reads_t *r)
{
    pthread_mutex_lock(&r->mu);
    r->shutting_down = 1;
    for (session_t *s = r->sessions; s; s = s->next)
        session_fail(r, s, 503, "shutting_down", "this node is shutting down");
    pthread_mutex_unlock(&r->mu);
}

void reads__relay_open_failed(reads_t *r, uint64_t stream_id)
{
    pthread_mutex_lock(&r->mu);
    session_t *s = session_find(r, stream_id);
    if (s)
        session_fail(r, s, 503, "owner_unreachable", "cannot send to %s (peer queue full or address bad)",
                     s->owner_desc);
    pthread_mutex_unlock(&r->mu);
}

size_t reads__relay_ranges(const reads_t *r)
{
    size_t n = 0;
    for (const session_t *s = r->sessions; s; s = s->next)
        n += s->feed == NULL;
    return n;
}
