/* gossip/reads.h - routed reads over the peer transport: the owner's streams, the relay's
 * sessions, and the relay's shared live feeds. Internal to gossip/: gossip.c drives the loop side
 * and exposes the reader side to HTTP threads as gossip_read_* (gossip.h).
 *
 * Owner side (loop thread only, but for reads_serve below): a table of streams {requester, stream id, product, next seq,
 * remaining, live, batches sent, acked, window}. A stream is pumped from LMDB in batches of
 * bounded bytes (a page of storage/pager.h: the records as NDJSON lines, sent as they are),
 * never more than `window` batches beyond what the requester acknowledged, on READ_REQ,
 * READ_CREDIT and local appends (reads_notify_append). Idle streams (no word from the requester
 * for idle_expiry_ms) are dropped; idle streams get a keepalive batch (batch_no 0). A batch holds
 * records of one schema epoch only (storage/history.c) and names it (schema_seq, schema_version).
 *
 * Relay side (HTTP threads + loop): a session is one stream to an owner. The loop checks each
 * batch's lines (whole, not empty, seqs in order) and queues it on the session (at most
 * `window` of them: the owner cannot send more), the HTTP thread copies them out and returns
 * credit. A live read shares one upstream stream per product (a feed) with a bounded ring of
 * recent records; each reader is a cursor that catches up with ordinary range sessions until it
 * reaches the ring, then follows it. Like a local read (node/stream.c), every reader hands out
 * records of one schema version, the one its answer names, and ends where the next would be of
 * another (READS_SCHEMA), the shared feed going on for the others.
 * Sessions fail with "owner_lost" when the owner is declared dead/left (reads_peer_lost), when
 * nothing arrives from it within stall_ms, or when a batch is missing; chartered, at once when its
 * key's certificate stops holding (reads_owner_untrusted). An owner that left because
 * it handed its domain over to a new key (a live key rotation: io.successor finds the new key
 * within stall_ms) is followed instead: its sessions re-attach to the new key, each a new stream
 * from the next seq it had not received (a feed resumes at its ring's end), and readers see
 * nothing of it but a pause: no record lost or repeated, no stream ended.
 *
 * Must not: block the loop (sends go through io.send, which never blocks), hold a lock across a
 * send or a store call made for a remote reader, or parse records (they are opaque bytes). */
#ifndef TRIB_READS_H
#define TRIB_READS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "proto/tributary.pb-c.h"
#include "storage/pager.h"
#include "storage/store.h"

typedef struct reads reads_t;
typedef struct reads_reader reads_reader_t;

typedef struct {
    void *ctx;
    /* Sends one message to a peer address; never blocks. 0 handed on, -1 dropped. Loop thread. */
    int (*send)(void *ctx, const char *addr, int type, const uint8_t *body, size_t len);
    /* The owner's batches of records: as send, under the transport's byte budgets (bytes it holds
     * for a requester not yet read, and for all of them), so 1 too: not now, nothing sent (the
     * stream pauses and tries again). NULL: send. Loop thread. */
    int (*send_bulk)(void *ctx, const char *addr, int type, const uint8_t *body, size_t len);
    /* The requester at addr went silent (its last stream expired) while batches may wait for it:
     * what the transport holds for it is dropped (bytes; 0 none). NULL: nothing. Loop thread. */
    size_t (*drop_bulk)(void *ctx, const char *addr);
    /* Makes the loop call reads_drain soon. Any thread. */
    void (*wake)(void *ctx);
    /* The member that continues owner `old` of domain after a key hand-over (its new key, alive,
     * that old handed the domain over to; or old itself, alive again): its id, address and a
     * description for messages. 1 found, 0 not (yet). NULL: never (open mode). Loop thread,
     * reads.mu not held. */
    int (*successor)(void *ctx, const char *domain, const uint8_t old[32], uint8_t next[32], char *addr,
                     size_t addrlen, char *desc, size_t desclen);
} reads_io_t;

typedef struct {
    uint32_t window;              /* batches in flight per range stream (8) */
    uint32_t feed_window;         /* batches in flight on a live feed's upstream (64) */
    size_t batch_bytes;           /* record bytes per batch (256 KiB; capped by max_msg) */
    uint32_t batch_records;       /* records per batch (4096) */
    size_t max_msg;               /* largest peer message (4 MiB) */
    uint32_t open_timeout_ms;     /* wait for the owner's first reply (2000) */
    uint32_t stall_ms;            /* a session hearing nothing for this long fails (3500) */
    uint32_t keepalive_ms;        /* both sides: say something after this much silence (1000) */
    uint32_t idle_expiry_ms;      /* owner: drop a stream not heard of for this long (10000) */
    uint32_t max_streams;         /* owner: open streams in all (1024) */
    uint32_t max_streams_per_peer;/* owner: open streams per requester (64) */
    uint32_t max_sessions;        /* relay: open sessions and feeds in all (1024) */
    size_t relay_bytes;           /* relay: batch bytes owners may send its range sessions before
                                     their readers take them, all together (32 MiB): a session is
                                     promised window x batch_bytes of it, or with none left one
                                     batch of 64 KiB */
    size_t ring_records;          /* feed ring: records kept (8192) */
    size_t ring_bytes;            /* feed ring: record bytes kept (8 MiB) */
    uint32_t pump_batches;        /* owner: batches sent per loop turn at most (32) */
} reads_config_t;

/* Fills c with the defaults above. */
void reads_config_default(reads_config_t *c);

/* domain: this node's domain (only its products are served). NULL on allocation failure. */
reads_t *reads_new(store_t *st, const char *domain, const reads_config_t *c, const reads_io_t *io);
/* Fails every session (readers see "shutting_down"), frees what the loop owns. Readers still
 * open must be closed (reads_reader_close) before reads_destroy: it asserts none are left. */
void reads_shutdown(reads_t *r);
void reads_destroy(reads_t **rp);

/* ---- loop thread */
/* A MSG_READ_* message from an authenticated peer. */
void reads_handle(reads_t *r, uint64_t now_ms, const uint8_t sender[32], const char *sender_addr, int type,
                  const uint8_t *body, size_t len);
/* Sends what readers asked for (opens, credit, cancels) and takes append notifications. */
void reads_drain(reads_t *r, uint64_t now_ms);
/* Owner: sends batches to streams that have credit and records, a bounded amount per call.
 * Returns 1 when work remains (poll again at once), else 0. */
int reads_pump(reads_t *r, uint64_t now_ms);
/* Keepalives, idle expiry, stall detection. */
void reads_tick(reads_t *r, uint64_t now_ms);
/* When reads_tick wants to run next (ms, same clock). */
uint64_t reads_next_deadline(const reads_t *r);
/* This node now speaks as another key (a live key rotation, on the loop): the reads it relays go
 * on under it (each a new stream from the first record not received). */
void reads_rekeyed(reads_t *r, uint64_t now_ms);
/* The detail of a read whose owner is dead or left (owner_desc, state): one wording for a new
 * read (503 owner_unreachable) and one cut midway (owner_lost), on every path (docs/http-api.md). */
#define READS_OWNER_GONE_FMT "%s is unreachable: its member state is %s"
/* A member was declared dead or left: fail sessions to it, drop its streams. state: "dead"... */
void reads_peer_lost(reads_t *r, const uint8_t id[32], const char *state);

/* Chartered: is a read relayed from owner id open? And: each such read ends now with detail (the
 * key's certificate no longer holds: its answers would be dropped): 503 owner_unreachable when its
 * answer has not begun, an owner_lost line after the last record when it has. How many ended. */
int reads_relays_from(reads_t *r, const uint8_t id[32]);
size_t reads_owner_untrusted(reads_t *r, const uint8_t id[32], const char *detail);

/* ---- any thread */
/* Records of product were committed on this node: live streams of it are pumped. */
void reads_notify_append(reads_t *r, const char *product);
/* Prometheus text of the read counters and gauges. */
void reads_metrics_render(reads_t *r, FILE *f);

/* ---- the owner's access check (DESIGN §13: the owner decides, never trusting the relay) */
/* 0 when the holder of token (len bytes, as the consumer sent it; len 0: none) may read product
 * (a product of this node's domain held in its catalog); else -1 with status (401, 403, 404),
 * kind (the contract's code: "token_required" ...) and detail. Runs on the gossip loop: it must
 * not block (the node's check uses its verified-token cache and one catalog read). */
typedef int (*reads_check_fn)(void *ctx, const char *product, const uint8_t *token, size_t len, int *status,
                              char *kind, size_t kindlen, char *detail, size_t detlen);
/* Process-wide (one node per process), set before the gossip loop starts; reads_t made after it
 * check every routed read they serve, on open and about once a second on a live stream (a
 * revoked or expired token ends the stream with its code). NULL fn: no check. */
void reads_set_owner_check(reads_check_fn fn, void *ctx);
/* grants: after the check allowed a stream, the fields its reader may receive (a grant's
 * allow-list) as a malloc'd NULL-ended array of malloc'd strings, or NULL for every field; the
 * owner projects each batch to them (storage/project.h). Same ctx as the check; set before the loop. */
typedef char **(*reads_fields_fn)(void *ctx, const char *product, const uint8_t *token, size_t len);
void reads_set_owner_fields(reads_fields_fn fn);
/* grants2: the owner's audit of routed reads (DESIGN §13: decisions on confidential/restricted data
 * are audited where they are made). open: called on every READ_REQ after the access check, with
 * the requester's node id (the entry node: the relay the consumer asked), whether it is live, a
 * relay's authorisation probe (no records), allowed, and the refusal's code; returns a handle the
 * owner keeps with the stream (NULL: nothing more to audit). end: the stream ended having served
 * records (why: "" or the code that ended it); it frees handle. Same ctx as the check. */
typedef void *(*reads_audit_open_fn)(void *ctx, const char *product, const uint8_t *token, size_t len,
                                     const uint8_t entry[32], int live, int probe, int allowed, const char *kind);
typedef void (*reads_audit_end_fn)(void *ctx, void *handle, uint64_t records, const char *why);
void reads_set_owner_audit(reads_audit_open_fn open, reads_audit_end_fn end);

/* ---- the owner over a data link (gossip/linkserve.c): any thread */
/* Sends batch b (a ReadBatch; its lines valid during the call) to the requester. 0 sent, -1 the
 * link is lost. */
typedef int (*reads_emit_fn)(void *ctx, const Trib__ReadBatch *b);
/* Serves range request q of requester (its node id: the entry node the audit names) on the calling
 * thread, exactly as a READ_REQ on the peer transport is served (the same access checks, refusals,
 * schema epochs, projection and audit), every batch at once: the link's own flow control (a blocking
 * send) paces it. Live requests are refused (400). Batches carry up to max_bytes of records (0:
 * the configured batch_bytes); pg is the caller's page buffer (reused across calls). One short
 * read transaction per batch. It never touches the loop's stream table: no duplicate-id check (a
 * link carries one request at a time) and no per-requester stream limit (the caller bounds its
 * links per requester); the owner's total (max_streams) counts these streams too. 0 served (or
 * refused), -1 the link was lost meanwhile. */
int reads_serve(reads_t *r, const uint8_t requester[32], const Trib__ReadRequest *q, size_t max_bytes,
                store_page_t *pg, reads_emit_fn emit, void *ctx);

/* ---- readers (HTTP threads) */
typedef struct {
    const char *product;          /* valid product id, owned by the owner below */
    uint64_t from, limit;         /* from 0 = 1; limit 0 = all (not with live) */
    int live;
    const uint8_t *owner_id;      /* 32 bytes */
    const char *owner_addr;
    const char *owner_desc;       /* "node 3f2a9c1b (payments) at 10.0.0.1:7470" for messages */
    const char *token;            /* the consumer's token text, forwarded as it is (NULL: none) */
    size_t token_len;
    uint32_t open_timeout_ms;     /* range: wait this long for the first reply (0, or more than the
                                     configured open_timeout_ms: the configured) */
} reads_open_t;

enum { READS_END = -1, READS_FAILED = -2, READS_SCHEMA = -3 };

/* Opens a read and waits (up to open_timeout_ms, or o->open_timeout_ms) for the owner's first reply. On success
 * *last_seq is the owner's last seq. NULL on failure with *status (400, 404, 410, 503, 500),
 * kind ("not_found", "owner_unreachable" ...) and a detail in err. */
reads_reader_t *reads_reader_open(reads_t *r, const reads_open_t *o, uint64_t *last_seq, int *status, char *kind,
                                  size_t kindlen, char *err, size_t errlen);
/* Copies the next NDJSON bytes (each record followed by '\n') into out, at most cap (> 0).
 * Returns the bytes copied (> 0), 0 when nothing came within timeout_ms, READS_END when a range
 * is complete, READS_FAILED with kind ("owner_lost" ...) and err when the read failed midway
 * (always between records), READS_SCHEMA when the next record was validated against another
 * schema than the read's (reads_reader_schema): the read ends there, as a local read does. */
long reads_reader_next(reads_reader_t *rd, char *out, size_t cap, int timeout_ms, char *kind, size_t kindlen,
                       char *err, size_t errlen);
/* The schema version (the manifest's catalog seq *mseq, 0: unknown, and its version text) of the
 * records this read hands out, as the owner named it: the first record's, or beyond the last
 * record the product's at open; next: after READS_SCHEMA, that of the records from seq *at on
 * (at may be NULL). 0, or -1 when the owner does not say (an older build). */
int reads_reader_schema(const reads_reader_t *rd, int next, uint64_t *at, uint64_t *mseq, char *version,
                        size_t len);
/* Records handed out so far, counted as reads_reader_next takes them (a batch when its first
 * bytes are copied out), so that callers need not count newlines. */
uint64_t reads_reader_records(const reads_reader_t *rd);
/* Ends the read (the owner is told to stop); accepts NULL, nulls *rdp. */
void reads_reader_close(reads_reader_t **rdp);

#endif
