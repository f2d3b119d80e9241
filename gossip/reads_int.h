/* gossip/reads_int.h - what the three parts of routed reads share; included by gossip/reads*.c only.
 *
 *   reads.c        dispatch and lifecycle: messages in (reads_handle), the loop's turns (drain, pump,
 *                  tick), peer loss, append notices, metrics, new/shutdown/destroy, and the queue of
 *                  messages to send once the mutex is released.
 *   reads_owner.c  the owner side: streams this node serves from LMDB. Loop thread only, no mutex
 *                  (reads_serve: link threads, on a stream of their own, never r->streams).
 *   reads_relay.c  the relay side: sessions to owners, shared live feeds and their rings, and the
 *                  readers on HTTP threads. Every field of it is under reads.mu.
 *
 * Must not: be included outside gossip/reads*.c; declare anything either side could keep static. */
#ifndef TRIB_READS_INT_H
#define TRIB_READS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include "gossip/log.h"
#include "gossip/reads.h"
#include "storage/pager.h"
#include "proto/tributary.pb-c.h"

#define ADDR_MAX 64
#define DESC_MAX 400
#define ERR_MAX 512
#define KIND_MAX 32
#define MAX_WINDOW 256               /* a requester may not ask for more batches in flight */
#define NOTIFY_MAX 64

/* Why a read failed or was refused: the HTTP status (0 when the read already started), a kind
 * ("owner_lost" ...) and a detail made for a JSON error (printable ASCII only). */
typedef struct {
    int status;
    char kind[KIND_MAX];
    char detail[ERR_MAX];
} reads_err_t;

/* Sets e; the detail is cut to printable ASCII (it may carry an owner's bytes). */
void reads__err_set(reads_err_t *e, int status, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The schema version records were validated against, as the owner names it (ReadBatch.schema_*). */
typedef struct {
    int told;                       /* 0: the owner does not say (an older build) */
    uint64_t seq;                   /* the manifest's catalog seq (0: unknown) */
    char version[STORE_VERSION_MAX + 1];
} schema_t;

/* ---- the relay's checks of an owner's batches, on either path (reads_relay.c; no state) */
/* The schema batch b names (its records', or with none in batch 1 the product's now). */
void reads__schema_of(schema_t *sc, const Trib__ReadBatch *b);
/* A reader's schema answer (reads_reader_schema, lread_schema): sc, or next_sc from change_at on
 * when next. 0, or -1 when the owner did not say. */
int reads__schema_out(const schema_t *sc, const schema_t *next_sc, uint64_t change_at, int next, uint64_t *at,
                      uint64_t *mseq, char *version, size_t len);
/* NULL when b (not a refusal) may follow batch expect_batch - 1 of a stream whose next record is
 * expect_first, with *count its records; else what is wrong, in e (owner_lost, naming desc). */
const char *reads__batch_check(const Trib__ReadBatch *b, uint64_t expect_batch, uint64_t expect_first,
                               const char *desc, uint64_t *count, reads_err_t *e);
/* The error of an owner's refusal b (done with a status): before the read opened (opened 0) the
 * HTTP status and the code, after it a kind with status 0. */
void reads__refusal(const Trib__ReadBatch *b, int opened, const char *desc, reads_err_t *e);

/* ---- messages sent once the mutex is released (reads.c) */
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

void reads__outq_add(outq_t *q, const char *addr, int type, uint64_t id, const ProtobufCMessage *m);
void reads__outq_cancel(outq_t *q, const char *addr, uint64_t id);
/* Sends and frees q's messages (loop thread, mu not held); a failed open fails its session. */
void reads__send_all(reads_t *r, outq_t *q);

/* ---- the relay side's state (reads_relay.c; all under mu) */
typedef struct session session_t;
typedef struct feed feed_t;

typedef struct move move_t;         /* an owner's key hand-over the relay follows (reads_relay.c) */

typedef struct cancel {
    struct cancel *next;
    char addr[ADDR_MAX];
    uint64_t id;
} cancel_t;

/* ---- the owner side's state (reads_owner.c; loop thread only) */
typedef struct ostream ostream_t;

struct reads {
    store_t *st;
    char domain[64];
    reads_config_t c;
    size_t room;                    /* record bytes a batch may carry: max_msg less the slack */
    reads_io_t io;
    pthread_mutex_t mu;
    /* relay side (mu) */
    session_t *sessions;
    size_t nsessions;
    feed_t *feeds;
    size_t nfeeds, nsubs;
    cancel_t *cancels;
    move_t *moves;                  /* owners that left: being followed to their new key, or followed */
    size_t nmoves;
    uint64_t next_id;
    int dirty;                      /* a session wants an open or credit sent */
    int shutting_down;
    size_t queued, queued_hwm, ring_records;
    size_t promised;                /* bytes promised to range sessions (session_budget) */
    log_limit_t narrow_log;      /* sessions narrowed: a line per NARROW_LOG_MS */
    /* notifications of local appends (mu) */
    char notify[NOTIFY_MAX][STORE_ID_MAX];
    int nnotify, notify_all;
    /* owner side (loop only) */
    ostream_t *streams;
    store_page_t page;              /* the batch being read from the store */
    uint64_t next_tick;
    uint64_t owner_wake;            /* the first paused stream's retry (0: none paused) */
    log_limit_t paused_log;      /* owner streams paused: a line per PAUSE_LOG_MS */
    /* counters (any thread reads them) */
    reads_check_fn check;           /* the owner's access check (reads_set_owner_check), or NULL */
    void *check_ctx;
    reads_fields_fn fields_fn;      /* grants: the reader's field allow-list (reads_set_owner_fields) */
    reads_audit_open_fn audit_open; /* grants2: the owner's audit of routed reads (reads_set_owner_audit) */
    reads_audit_end_fn audit_end;
    atomic_uint_fast64_t owner_streams, owner_live, batches_sent, batches_recv, records_sent, records_recv,
        streams_expired, streams_refused, fail_owner_lost, fail_refused, fail_open_timeout, keepalives_sent,
        credits_sent, overrun, followed, owner_paused, relay_narrowed;
};

#define BUMP(r, field, n) atomic_fetch_add_explicit(&(r)->field, (n), memory_order_relaxed)

/* ---- owner side (reads_owner.c), loop thread */
void reads__owner_open(reads_t *r, uint64_t now, const uint8_t sender[32], const char *addr,
                       const Trib__ReadRequest *q);
void reads__owner_credit(reads_t *r, uint64_t now, const uint8_t sender[32], const char *addr,
                         const Trib__ReadCredit *m);
void reads__owner_cancel(reads_t *r, const uint8_t sender[32], uint64_t stream_id);
/* Live streams of these products (all: every live stream) may read again. */
void reads__owner_appended(reads_t *r, const char (*products)[STORE_ID_MAX], int n, int all);
int reads__owner_pump(reads_t *r, uint64_t now);
/* Idle expiry and keepalives; keepalives go into q. */
void reads__owner_tick(reads_t *r, uint64_t now, outq_t *q);
void reads__owner_peer_lost(reads_t *r, const uint8_t id[32]);
void reads__owner_free(reads_t *r);

/* ---- relay side (reads_relay.c); each takes mu itself unless it says so */
void reads__relay_batch(reads_t *r, uint64_t now, const uint8_t sender[32], const char *sender_addr,
                        Trib__ReadBatch *b, outq_t *q);   /* takes b */
/* Opens and credit the readers asked for go into q (mu held). */
void reads__relay_drain(reads_t *r, uint64_t now, outq_t *q);
/* Stall detection and credit keepalives into q. */
void reads__relay_tick(reads_t *r, uint64_t now, outq_t *q);
/* Sessions to owner id fail: it was declared dead or left (state). One that left may have handed
 * its domain over to a new key: with io.successor, its sessions wait (stall_ms at most) for
 * reads__relay_follow to find that key, and re-attach to it. */
void reads__relay_peer_lost(reads_t *r, const uint8_t id[32], const char *state);
/* 1 when a session to owner id is open (not failed, not done). */
int reads__relay_from(reads_t *r, const uint8_t id[32]);
/* Sessions to owner id fail at once with detail: its key no longer holds a certificate (revoked,
 * expired ...), so its answers are dropped. How many failed. */
size_t reads__relay_untrusted(reads_t *r, const uint8_t id[32], const char *detail);
/* Asks io.successor about owners that left, re-attaches their sessions or fails them once
 * stall_ms is over (loop thread, mu not held; messages into q). */
void reads__relay_follow(reads_t *r, uint64_t now, outq_t *q);
/* This node's own key changed (a live key rotation; mu held): its streams at their owners were
 * opened by the old key, and an owner keys streams by their requester, so each session goes on as
 * a new stream to the same owner from the first record it has not received. */
void reads__relay_rekeyed(reads_t *r, uint64_t now, outq_t *q);
/* Frees the moves (reads_destroy). */
void reads__relay_free(reads_t *r);
/* Every session fails with "shutting_down" and no new one opens. */
void reads__relay_shutdown(reads_t *r);
/* Session stream_id could not be opened: it fails with "owner_unreachable". */
void reads__relay_open_failed(reads_t *r, uint64_t stream_id);
/* Gauges of the relay side (mu held). */
size_t reads__relay_ranges(const reads_t *r);

#endif
