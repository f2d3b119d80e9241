/* gossip/reads_owner.c - the owner side of routed reads: streams of this node's products served to
 * relays, pumped from LMDB in batches under the requester's credit (see reads.h for the protocol).
 *
 * Owns: the stream table (open, credit, cancel, idle expiry, keepalives), reading a batch from the
 * store (one short read transaction per batch) and the refusals an owner sends (a last batch 1
 * with a status).
 * Threads: everything here runs on the gossip loop, which alone owns the stream table
 * (r->streams, r->page), except reads_serve and what it calls (owner_admit, the pump of one
 * stream, ostream_free), which run on the link server's threads on a stream of their own that is
 * never linked into the table: they read only the configuration, the store, the owner's
 * thread-safe callbacks and the atomic counters (owner_streams is the total over both paths).
 * Must not: touch r->streams or r->page off the loop, take reads.mu or touch the relay's
 * sessions, keep an LMDB transaction beyond one batch, or serve a product of another domain. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "gossip/clock.h"
#include "gossip/entry.h"
#include "gossip/log.h"
#include "gossip/reads_int.h"
#include "storage/project.h"

/* One stream served by this node. */
struct ostream {
    struct ostream *next;
    uint8_t peer[32];
    char peer_addr[ADDR_MAX];
    uint64_t id;
    char product[STORE_ID_MAX];
    uint64_t next_seq, remaining;   /* remaining UINT64_MAX: no limit */
    int live, waiting, dead;
    int feed;                       /* live from the tail: a relay's shared feed (its subscribers are
                                       checked one by one by the relay's probes, not by this token) */
    uint32_t window;
    size_t max_bytes;
    uint64_t sent, acked;
    uint64_t last_heard, last_sent;
    char **fields;                  /* grants: a grant's field allow-list (NULL-ended, malloc'd with its
                                       strings), set by the owner's read check; NULL: every field */
    uint8_t *token;                 /* the consumer's token as forwarded (live: checked again) */
    size_t token_len;
    uint64_t last_check;
    void *audit;                    /* grants2: the audit handle of this read (reads_set_owner_audit) */
    uint64_t served;                /* records sent */
    char why[KIND_MAX];             /* what ended it, when not its end ("token_revoked" ...) */
    uint64_t vseq;                  /* the schema version last named (ReadBatch.schema_*): its */
    char version[STORE_VERSION_MAX + 1];   /* manifest seq and version, looked up once per change */
    int unanswered;                 /* READ_REQ not answered yet (its first batch waits for the */
    uint64_t open_last, open_mseq;  /* transport's budget): the product's last seq and manifest then */
    uint64_t paused_until;          /* the transport held its budget: not pumped before this */
};

#define PAUSE_MS 20                 /* a stream the transport said "not now" to waits this long */
#define PAUSE_LOG_MS 10000          /* pauses are logged at most this often */

static void ostream_free(reads_t *r, ostream_t *s)
{
    if (s->audit && r->audit_end) /* the owner's audit: the records this read was served */
        r->audit_end(r->check_ctx, s->audit, s->served, s->why);
    free(s->token);
    for (size_t i = 0; s->fields && s->fields[i]; i++)
        free(s->fields[i]);
    free(s->fields);
    free(s);
}


/* Where a stream's batches go: the requester's address on the peer transport (the loop), or a
 * data link's emitter (reads_serve, any thread). */
typedef struct {
    const char *addr;
    reads_emit_fn emit;
    void *ctx;
} sink_t;

/* io.send, or for a batch of records (bulk) io.send_bulk: 0 handed on, -1 dropped, 1 not now. */
static int io_send(reads_t *r, int bulk, const char *addr, int type, const uint8_t *body, size_t len)
{
    return bulk && r->io.send_bulk ? r->io.send_bulk(r->io.ctx, addr, type, body, len)
                                   : r->io.send(r->io.ctx, addr, type, body, len);
}

/* Packs m and hands it to io.send (bulk: io.send_bulk) now (loop thread, mu not held). 0 handed
 * on, -1 dropped, 1 not now (bulk only). */
static int send_now(reads_t *r, const char *addr, int type, const ProtobufCMessage *m, int bulk)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -1; /* the peer notices through stall/keepalive timers */
    protobuf_c_message_pack(m, buf);
    int rc = io_send(r, bulk, addr, type, buf, len);
    free(buf);
    return rc;
}

/* Room kept in front of a page's records for the rest of its batch: ids, seqs and the schema version
 * (STORE_VERSION_MAX) fit; a longer fields key or an error's text go the way of send_now. */
#define PAGE_HEAD 512

/* Sends batch b, whose lines are page pg's records, without copying them: b's other fields are
 * packed into the page's head and the lines field (9) follows them, right in front of the records
 * (protobuf takes fields in any order). A batch with records goes as bulk: under the transport's
 * byte budgets. 0 handed on, -1 dropped, 1 not now. */
static int send_batch(reads_t *r, const char *addr, Trib__ReadBatch *b, store_page_t *pg)
{
    ProtobufCBinaryData lines = b->lines;
    int bulk = lines.len > 0;
    if (!pg || lines.len == 0 || lines.data != (uint8_t *)pg->buf + pg->head)
        return send_now(r, addr, TRIB__MSG_TYPE__MSG_READ_BATCH, &b->base, bulk);
    uint8_t key[11];   /* field 9, wire type 2 (length-delimited), then the length as a varint */
    size_t klen = 0;
    key[klen++] = 9 << 3 | 2;
    for (uint64_t v = lines.len; v; v >>= 7)
        key[klen++] = (uint8_t)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
    b->lines = (ProtobufCBinaryData){0, NULL};
    size_t hlen = protobuf_c_message_get_packed_size(&b->base);
    int rc;
    if (hlen + klen <= pg->head) {
        uint8_t *msg = lines.data - klen - hlen;
        protobuf_c_message_pack(&b->base, msg);
        memcpy(msg + hlen, key, klen);
        rc = io_send(r, 1, addr, TRIB__MSG_TYPE__MSG_READ_BATCH, msg, hlen + klen + lines.len);
    } else {
        b->lines = lines;
        rc = send_now(r, addr, TRIB__MSG_TYPE__MSG_READ_BATCH, &b->base, 1);
    }
    b->lines = lines;
    return rc;
}

/* Batch b (its lines in page pg, or pg NULL) to sink k. 0 handed on, -1 dropped (a link: lost), 1
 * not now (the peer transport's byte budget: nothing was sent). */
static int sink_send(reads_t *r, const sink_t *k, Trib__ReadBatch *b, store_page_t *pg)
{
    return k->emit ? k->emit(k->ctx, b) : send_batch(r, k->addr, b, pg);
}

/* Refuses or ends stream id of sink k: a last batch (batch_no) with status, error code (kind, or
 * NULL: the relay names it from the status) and error. */
static void reply_error_kind(reads_t *r, const sink_t *k, uint64_t id, uint64_t batch_no, uint32_t status,
                             const char *kind, const char *msg)
{
    Trib__ReadBatch b = TRIB__READ_BATCH__INIT;
    b.stream_id = id;
    b.done = 1;
    b.status = status;
    b.error = (char *)msg;
    b.error_kind = kind ? (char *)kind : "";
    b.batch_no = batch_no;
    sink_send(r, k, &b, NULL);
}

static void reply_error(reads_t *r, const sink_t *k, uint64_t id, uint32_t status, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void reply_error(reads_t *r, const sink_t *k, uint64_t id, uint32_t status, const char *fmt, ...)
{
    char msg[ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply_error_kind(r, k, id, 1, status, NULL, msg);
}

/* The owner's access check of a stream's token: 0 allowed, else -1 with the refusal filled. */
static int access_check(reads_t *r, const char *product, const uint8_t *token, size_t len, uint32_t *status,
                        char kind[KIND_MAX], char msg[ERR_MAX])
{
    if (!r->check)
        return 0;
    int st = 403;
    kind[0] = msg[0] = '\0';
    if (r->check(r->check_ctx, product, token, len, &st, kind, KIND_MAX, msg, ERR_MAX) == 0)
        return 0;
    *status = st >= 400 && st <= 599 ? (uint32_t)st : 403;
    return -1;
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
    if (s->live)                 /* live first: a scrape between the two sees live <= the total */
        atomic_fetch_sub(&r->owner_live, 1);
    atomic_fetch_sub(&r->owner_streams, 1);
}

/* grants: the owner projects records to the grant's fields before they leave it (storage/project.h).
 * 0, or -1 out of memory (the page unchanged: it must not be sent). */
static int project_page(const ostream_t *s, store_page_t *pg)
{
    size_t m = project_ndjson(pg->buf + pg->head, pg->len, (const char *const *)s->fields);
    if (m == (size_t)-1)
        return -1;
    pg->len = m;
    return 0;
}

/* The stream's projection as the relay sees it (ReadBatch.fields_key): "" every field, else "="
 * and the allow-list joined by ','. malloc'd; NULL out of memory. */
static char *fields_key(char **fields)
{
    size_t len = 2;
    for (size_t i = 0; fields && fields[i]; i++)
        len += strlen(fields[i]) + 1;
    char *k = malloc(len);
    if (!k)
        return NULL;
    k[0] = '\0';
    if (fields) {
        strcpy(k, "=");
        for (size_t i = 0; fields[i]; i++) {
            if (i)
                strcat(k, ",");
            strcat(k, fields[i]);
        }
    }
    return k;
}

/* Schema epochs (storage/history.c): the records of one batch were all validated against one
 * manifest, which the batch names (ReadBatch.schema_seq/_version), so a relay can tell its
 * readers exactly what a local read tells (node/stream.c). */
typedef struct {
    uint64_t at, cut;   /* the manifest of the first record; the seq where another starts (0: none) */
    int calls;
} epochs_t;

static int epoch_cb(void *ctx, uint64_t first, uint64_t mseq)
{
    epochs_t *e = ctx;
    if (e->calls++ == 0) {
        e->at = mseq;
        return 0;
    }
    if (mseq == e->at)
        return 0;
    e->cut = first;
    return 1;
}

/* Cuts page pg (n records) before the first record of another schema epoch than its first
 * record's, and names that epoch's manifest in b. Returns the records kept (n when the epochs
 * cannot be read: the page read reports storage failures). */
static long schema_cut(reads_t *r, ostream_t *s, store_page_t *pg, long n, Trib__ReadBatch *b)
{
    epochs_t e = {0};
    if (store_record_epochs(r->st, s->product, pg->first, pg->next - 1, epoch_cb, &e) != 0)
        return n;
    if (e.cut > pg->first && e.cut < pg->next) {
        uint64_t keep = e.cut - pg->first;
        const char *lines = pg->buf + pg->head, *p = lines;
        for (uint64_t i = 0; i < keep; i++) {
            const char *nl = memchr(p, '\n', pg->len - (size_t)(p - lines));
            if (!nl)
                return n;   /* fewer lines than records: leave the page whole */
            p = nl + 1;
        }
        pg->len = (size_t)(p - lines);
        pg->n = keep;
        pg->next = e.cut;
        pg->full = 1;   /* more records follow */
        n = (long)keep;
    }
    b->schema_seq = e.at;
    return n;
}

/* Names manifest mseq of s's product in b (looked up when it changes). */
static void schema_name(reads_t *r, ostream_t *s, uint64_t mseq, Trib__ReadBatch *b)
{
    if (!s->version[0] || s->vseq != mseq) {
        store_version_t v;
        if (mseq && store_history_get(r->st, s->product, mseq, &v) == 0)
            snprintf(s->version, sizeof s->version, "%s", v.version);
        else
            snprintf(s->version, sizeof s->version, "unknown");   /* as node/stream.c names it */
        s->vseq = mseq;
    }
    b->schema_seq = mseq;
    b->schema_version = s->version;
}

/* The transport said "not now" to a batch of s: s and every stream to the same address (they share
 * its budget: reading their next pages now would be in vain) wait PAUSE_MS, counted once, logged at
 * most once per PAUSE_LOG_MS with the pauses since. */
static void ostream_pause(reads_t *r, ostream_t *s, uint64_t now)
{
    s->paused_until = now + PAUSE_MS;
    for (ostream_t *o = r->streams; o; o = o->next)
        if (!strcmp(o->peer_addr, s->peer_addr))
            o->paused_until = now + PAUSE_MS;
    BUMP(r, owner_paused, 1);
    uint64_t held;
    if (log_limit_at(&r->paused_log, now, PAUSE_LOG_MS, &held))
        log_warn("reads: streams paused %" PRIu64 " times: ZeroMQ holds the byte budget of routed read batches "
                 "for a requester (stream %" PRIu64 " of %s, to %s) or for all of them; they go on as the "
                 "requesters read", held + 1, s->id, s->product, s->peer_addr);
}

/* Sends the next batch of s (credit is available). While s->unanswered it is the reply to READ_REQ
 * (naming the product's last seq, and its manifest then when the batch has no records). 1: the
 * transport said "not now" and nothing changed but s->paused_until. */
static int ostream_pump_one(reads_t *r, ostream_t *s, store_page_t *pg, const sink_t *k, uint64_t now)
{
    int first = s->unanswered;
    uint64_t last = s->open_last, head_mseq = s->open_mseq;
    /* Small batches first, doubling up to max_bytes: the first bytes reach the client sooner and
     * the stages (owner, both ZeroMQ I/O threads, relay, client) start overlapping early. */
    size_t ramp = (size_t)64 * 1024 << (s->sent < 4 ? 2 * s->sent : 8);
    uint64_t lim = r->c.batch_records;
    if (s->remaining != UINT64_MAX && s->remaining < lim)
        lim = s->remaining;
    pg->head = PAGE_HEAD;
    long n = store_page_read(r->st, s->product, s->next_seq, lim, ramp < s->max_bytes ? ramp : s->max_bytes, pg);
    Trib__ReadBatch b = TRIB__READ_BATCH__INIT;
    b.stream_id = s->id;
    b.first_seq = s->next_seq;
    if (n > 0)
        n = schema_cut(r, s, pg, n, &b);
    char msg[ERR_MAX];
    if (n < 0) {
        snprintf(msg, sizeof msg, "reading records of %s at seq %" PRIu64 " failed on the owner: %s", s->product,
                 s->next_seq, store_last_error());
        b.done = 1;
        b.status = 500;
        b.error = msg;
        n = 0;
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
            return 0;
        }
    } else if (pg->len > r->room) { /* one record alone, larger than a message may carry */
        snprintf(msg, sizeof msg, "record %" PRIu64 " of %s is larger than the peer message limit", pg->first,
                 s->product);
        b.done = 1;
        b.status = 500;
        b.error = msg;
        n = 0;
    } else if (s->fields && project_page(s, pg) != 0) {
        snprintf(msg, sizeof msg, "out of memory projecting records of %s to the grant's fields", s->product);
        b.done = 1;
        b.status = 500;
        b.error = msg;
        n = 0;
    } else {
        if (n > 0 || first)
            schema_name(r, s, n > 0 ? b.schema_seq : head_mseq, &b);
        b.lines = (ProtobufCBinaryData){pg->len, pg->buf ? (uint8_t *)pg->buf + pg->head : NULL};
        if (!s->live && ((s->remaining != UINT64_MAX && s->remaining == (uint64_t)n) || !pg->full))
            b.done = 1;
    }
    char *fkey = NULL;
    if (first) {
        b.last_seq = last;
        b.fields_key = fkey = fields_key(s->fields);
        if (!fkey) { /* never let a relay guess the projection: no key, no stream */
            snprintf(msg, sizeof msg, "out of memory on the owner");
            b.done = 1;
            b.status = 500;
            b.error = msg;
            b.lines = (ProtobufCBinaryData){0, NULL};
            b.fields_key = "";
            n = 0;
        }
    }
    b.batch_no = s->sent + 1;
    int rc = sink_send(r, k, &b, pg);
    free(fkey);
    if (rc == 1) {
        ostream_pause(r, s, now);
        return 1;
    }
    s->sent++;
    s->unanswered = 0;
    if (rc == 0) {
        BUMP(r, batches_sent, 1);
        BUMP(r, records_sent, (uint64_t)n);
        s->served += (uint64_t)n;
    }
    if (b.done && b.status && !s->why[0])
        snprintf(s->why, sizeof s->why, "error %u", (unsigned)b.status);
    s->last_sent = now;
    if (n > 0) {
        s->next_seq += (uint64_t)n;
        if (s->remaining != UINT64_MAX)
            s->remaining -= (uint64_t)n;
    }
    if (b.done)
        ostream_kill(r, s);
    return rc;
}

/* Checks request q of sender and makes its stream (not linked into r->streams, its first batch
 * unanswered), or refuses it to k (NULL). On the loop (k->addr) it
 * also refuses a duplicate stream id and more than max_streams_per_peer of the sender's streams
 * (it walks r->streams); on a link thread (k->emit) it does neither (the link server bounds links
 * per peer). The total is owner_streams on both. Otherwise store reads only; the owner's check,
 * fields and audit callbacks are thread-safe. */
static ostream_t *owner_admit(reads_t *r, uint64_t now, const uint8_t sender[32], const sink_t *k,
                              const Trib__ReadRequest *q)
{
    const char *pid = q->product_id ? q->product_id : "";
    if (!entry_valid_product_id(pid)) {
        BUMP(r, streams_refused, 1);
        reply_error(r, k, q->stream_id, 400, "not a product id");
        return NULL;
    }
    size_t dlen = (size_t)(strchr(pid, '/') - pid);
    if (dlen != strlen(r->domain) || memcmp(pid, r->domain, dlen) != 0) {
        BUMP(r, streams_refused, 1);
        reply_error(r, k, q->stream_id, 404, "%s is not owned by this node (domain '%s')", pid, r->domain);
        return NULL;
    }
    store_product_t p;
    int rc = store_product_get(r->st, pid, &p);
    if (rc != 0) {
        BUMP(r, streams_refused, 1);
        if (rc == STORE_NOTFOUND)
            reply_error(r, k, q->stream_id, 404, "no product %s on its owner", pid);
        else
            reply_error(r, k, q->stream_id, 500, "reading product %s failed on its owner", pid);
        return NULL;
    }
    uint32_t ast;
    char akind[KIND_MAX], amsg[ERR_MAX];
    /* a relay's authorisation probe of a feed subscriber: a range read past any seq (reads_relay.c) */
    int probe = q->from_seq == UINT64_MAX - 1 && q->limit == 1 && !q->live;
    if (access_check(r, pid, q->token.data, q->token.len, &ast, akind, amsg) < 0) {
        if (r->audit_open) /* the owner audits its refusal at once (no handle kept) */
            r->audit_open(r->check_ctx, pid, q->token.data, q->token.len, sender, q->live, probe, 0, akind);
        BUMP(r, streams_refused, 1);
        reply_error_kind(r, k, q->stream_id, 1, ast, akind, amsg);
        return NULL;
    }
    uint64_t from = q->from_seq ? q->from_seq : 1;
    if (q->live && q->limit) {
        BUMP(r, streams_refused, 1);
        reply_error(r, k, q->stream_id, 400, "limit: not supported on a live stream");
        return NULL;
    }
    if (q->limit && from - 1 > UINT64_MAX - q->limit) {
        BUMP(r, streams_refused, 1);
        reply_error(r, k, q->stream_id, 400, "from %" PRIu64 " + limit %" PRIu64 " is beyond the last seq",
                    from, q->limit);
        return NULL;
    }
    /* A data link (k->emit) carries one request at a time, so it has no duplicate ids, and its
     * streams per relay are bounded by the link server's links per peer: r->streams is the loop's
     * (walked and freed there), so a link thread must not read it. */
    size_t mine = 0;
    if (!k->emit) {
        if (ostream_find(r, sender, q->stream_id)) {
            BUMP(r, streams_refused, 1);
            reply_error(r, k, q->stream_id, 400, "stream %" PRIu64 " is already open", q->stream_id);
            return NULL;
        }
        for (ostream_t *s = r->streams; s; s = s->next)
            mine += !s->dead && !memcmp(s->peer, sender, 32);
    }
    /* the total over both paths: owner_streams, taken here (given back by ostream_kill, or below) */
    uint64_t total = atomic_fetch_add(&r->owner_streams, 1);
    if (total >= r->c.max_streams || mine >= r->c.max_streams_per_peer) {
        atomic_fetch_sub(&r->owner_streams, 1);
        BUMP(r, streams_refused, 1);
        reply_error(r, k, q->stream_id, 503, "the owner serves too many streams (%" PRIu64 ", %zu from this node)",
                    total, mine);
        return NULL;
    }
    uint64_t last = 0;
    ostream_t *s = NULL;
    if (store_records_last(r->st, pid, &last) < 0) {
        reply_error(r, k, q->stream_id, 500, "reading records of %s failed on its owner", pid);
    } else if (q->live && q->from_tail && p.retired) {
        BUMP(r, streams_refused, 1);
        reply_error(r, k, q->stream_id, 410, "%s is retired: it takes no new records", pid);
    } else if (!(s = calloc(1, sizeof *s))) {
        reply_error(r, k, q->stream_id, 500, "out of memory on the owner");
    }
    if (!s) {
        atomic_fetch_sub(&r->owner_streams, 1);
        return NULL;
    }
    memcpy(s->peer, sender, 32);
    snprintf(s->peer_addr, sizeof s->peer_addr, "%s", k->addr ? k->addr : "");
    s->id = q->stream_id;
    snprintf(s->product, sizeof s->product, "%s", pid);
    s->next_seq = q->live && q->from_tail && !q->resume ? last + 1 : from;   /* resume: a re-attached feed */
    s->remaining = q->limit ? q->limit : UINT64_MAX;
    s->live = q->live;
    s->feed = q->live && q->from_tail;
    s->window = q->credit < 1 ? 1 : q->credit > MAX_WINDOW ? MAX_WINDOW : q->credit;
    s->max_bytes = r->c.batch_bytes < r->room ? r->c.batch_bytes : r->room;
    if (q->max_bytes && q->max_bytes < s->max_bytes)
        s->max_bytes = q->max_bytes;
    s->last_heard = now;
    s->last_check = now;
    if (q->token.len) {
        if (!(s->token = malloc(q->token.len))) {
            free(s);
            atomic_fetch_sub(&r->owner_streams, 1);
            reply_error(r, k, q->stream_id, 500, "out of memory on the owner");
            return NULL;
        }
        memcpy(s->token, q->token.data, q->token.len);
        s->token_len = q->token.len;
    }
    if (r->fields_fn) /* grants: a grant's field allow-list, projected before records leave */
        s->fields = r->fields_fn(r->check_ctx, pid, q->token.data, q->token.len);
    if (r->audit_open) /* grants2: audited (with its records) when it ends */
        s->audit = r->audit_open(r->check_ctx, pid, q->token.data, q->token.len, sender, q->live, probe, 1, "");
    if (s->live)
        atomic_fetch_add(&r->owner_live, 1);
    s->unanswered = 1;
    s->open_last = last;
    s->open_mseq = store_product_schema_seq(&p);   /* beyond the end: the next records' epoch */
    return s;
}

void reads__owner_open(reads_t *r, uint64_t now, const uint8_t sender[32], const char *addr, const Trib__ReadRequest *q)
{
    sink_t k = {.addr = addr};
    ostream_t *s = owner_admit(r, now, sender, &k, q);
    if (!s)
        return;
    s->next = r->streams;
    r->streams = s;
    ostream_pump_one(r, s, &r->page, &k, now);
}

int reads_serve(reads_t *r, const uint8_t requester[32], const Trib__ReadRequest *q, size_t max_bytes,
                store_page_t *pg, reads_emit_fn emit, void *ctx)
{
    sink_t k = {.emit = emit, .ctx = ctx};
    uint64_t now = clock_ms();
    if (q->live) {
        BUMP(r, streams_refused, 1);
        reply_error(r, &k, q->stream_id, 400, "live: not served on a data link (the peer transport carries streams)");
        return 0;
    }
    ostream_t *s = owner_admit(r, now, requester, &k, q);
    if (!s)
        return 0;
    if (max_bytes && (!q->max_bytes || max_bytes < q->max_bytes))
        s->max_bytes = max_bytes < r->room ? max_bytes : r->room;
    int rc = ostream_pump_one(r, s, pg, &k, now);   /* a link's emitter never says "not now" */
    while (rc == 0 && !s->dead)
        rc = ostream_pump_one(r, s, pg, &k, clock_ms());
    if (rc != 0 && !s->why[0])
        snprintf(s->why, sizeof s->why, "link lost");
    ostream_kill(r, s);
    ostream_free(r, s);
    return rc;
}

static void owner_sweep(reads_t *r)
{
    for (ostream_t **p = &r->streams; *p;) {
        ostream_t *s = *p;
        if (s->dead) {
            *p = s->next;
            ostream_free(r, s);
        } else {
            p = &s->next;
        }
    }
}


void reads__owner_credit(reads_t *r, uint64_t now, const uint8_t sender[32], const char *addr,
                         const Trib__ReadCredit *m)
{
    ostream_t *s = ostream_find(r, sender, m->stream_id);
    if (!s) {
        reply_error(r, &(sink_t){.addr = addr}, m->stream_id, 503, "the owner has no such stream (restarted, or the stream expired)");
        return;
    }
    s->last_heard = now;
    if (m->acked > s->acked && m->acked <= s->sent)
        s->acked = m->acked;
    if (m->credit >= 1 && m->credit <= MAX_WINDOW)
        s->window = m->credit;
}

void reads__owner_cancel(reads_t *r, const uint8_t sender[32], uint64_t stream_id)
{
    ostream_t *s = ostream_find(r, sender, stream_id);
    if (s)
        ostream_kill(r, s);
}

void reads__owner_appended(reads_t *r, const char (*products)[STORE_ID_MAX], int n, int all)
{
    for (ostream_t *s = r->streams; s; s = s->next) {
        if (!s->live || !s->waiting)
            continue;
        int hit = all;
        for (int i = 0; i < n && !hit; i++)
            hit = !strcmp(products[i], s->product);
        if (hit)
            s->waiting = 0;
    }
}

static int ostream_ready(const ostream_t *s, uint64_t now)
{
    return !s->dead && !s->waiting && s->sent < s->acked + s->window && s->paused_until <= now;
}

int reads__owner_pump(reads_t *r, uint64_t now)
{
    uint32_t budget = r->c.pump_batches;
    int progress = 1;
    while (budget > 0 && progress) {
        progress = 0;
        for (ostream_t *s = r->streams; s && budget > 0; s = s->next)
            if (ostream_ready(s, now)) {
                ostream_pump_one(r, s, &r->page, &(sink_t){.addr = s->peer_addr}, now);
                budget--;
                progress = 1;
            }
    }
    owner_sweep(r);
    r->owner_wake = 0;
    int more = 0;
    for (ostream_t *s = r->streams; s; s = s->next) {
        more |= ostream_ready(s, now);
        if (s->paused_until > now && (!r->owner_wake || s->paused_until < r->owner_wake))
            r->owner_wake = s->paused_until;
    }
    return more;
}

/* Stream s expired: when no other stream goes to its address, what the transport still holds for
 * it (batches a silent requester never read) is dropped, so its byte budget and the total's do not
 * stay taken for ever. */
static void expired_drop(reads_t *r, const ostream_t *s)
{
    if (!r->io.drop_bulk)
        return;
    for (const ostream_t *o = r->streams; o; o = o->next)
        if (!o->dead && !strcmp(o->peer_addr, s->peer_addr))
            return;
    size_t n = r->io.drop_bulk(r->io.ctx, s->peer_addr);
    if (n)
        log_warn("reads: %zu bytes of routed read batches for %s dropped: its streams expired unread", n,
                 s->peer_addr);
}

void reads__owner_tick(reads_t *r, uint64_t now, outq_t *q)
{
    for (ostream_t *s = r->streams; s; s = s->next) {
        if (s->dead)
            continue;
        if (now - s->last_heard >= r->c.idle_expiry_ms) {
            BUMP(r, streams_expired, 1);
            ostream_kill(r, s);
            expired_drop(r, s);
            continue;
        }
        uint32_t ast;
        char akind[KIND_MAX], amsg[ERR_MAX];
        if (s->live && !s->feed && now - s->last_check >= r->c.keepalive_ms) { /* a revoked or expired token ends it */
            s->last_check = now;
            if (access_check(r, s->product, s->token, s->token_len, &ast, akind, amsg) < 0) {
                snprintf(s->why, sizeof s->why, "%s", akind);
                reply_error_kind(r, &(sink_t){.addr = s->peer_addr}, s->id, s->sent + 1, ast, akind, amsg);
                ostream_kill(r, s);
                continue;
            }
        }
        if (now - s->last_sent >= r->c.keepalive_ms) {
            Trib__ReadBatch b = TRIB__READ_BATCH__INIT;
            b.stream_id = s->id;
            reads__outq_add(q, s->peer_addr, TRIB__MSG_TYPE__MSG_READ_BATCH, s->id, &b.base);
            s->last_sent = now;
            BUMP(r, keepalives_sent, 1);
        }
    }
    owner_sweep(r);
}

void reads__owner_peer_lost(reads_t *r, const uint8_t id[32])
{
    for (ostream_t *s = r->streams; s; s = s->next)
        if (!memcmp(s->peer, id, 32))
            ostream_kill(r, s);
}

void reads__owner_free(reads_t *r)
{
    for (ostream_t *s = r->streams, *n; s; s = n) {
        n = s->next;
        ostream_free(r, s);
    }
    r->streams = NULL;
    store_page_free(&r->page);
}
