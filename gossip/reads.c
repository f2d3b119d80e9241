/* gossip/reads.c - routed reads over the peer transport: dispatch and lifecycle (see reads.h for the
 * protocol and roles, reads_int.h for how the work is split between the files).
 *
 * Owns: decoding MSG_READ_{REQ,BATCH,CREDIT,CANCEL} and handing each to its side, the loop's turns
 * (drain, pump, tick), append notices, peer loss, the queue of messages sent once reads.mu is
 * released, the read metrics, and reads_new/shutdown/destroy.
 * Must not: keep state of either side (the owner's streams live in reads_owner.c, the relay's
 * sessions in reads_relay.c), send while holding reads.mu, or block the loop. */
#include <assert.h>
#include <inttypes.h>
#include <malloc.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gossip/clock.h"
#include "gossip/reads_int.h"

#define MSG_SLACK (64u * 1024u)      /* room for the envelope and batch fields in max_msg (at most half) */
#define HEAP_MAX (8 << 20)           /* malloc: blocks up to this size come from the heap (2 x max_msg) */
#define TRIM_KEEP (16 << 20)         /* malloc: free memory an arena keeps before returning it */

/* ================================================================== helpers */

void reads__err_set(reads_err_t *e, int status, const char *kind, const char *fmt, ...)
{
    e->status = status;
    snprintf(e->kind, sizeof e->kind, "%s", kind);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof e->detail, fmt, ap);
    va_end(ap);
    /* The detail may carry an owner's text (any bytes, cut at ERR_MAX perhaps inside a UTF-8
     * sequence); it ends up in a JSON error, which must be valid UTF-8. */
    for (char *c = e->detail; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?';
}

void reads__outq_add(outq_t *q, const char *addr, int type, uint64_t id, const ProtobufCMessage *m)
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

void reads__outq_cancel(outq_t *q, const char *addr, uint64_t id)
{
    Trib__ReadCancel c = TRIB__READ_CANCEL__INIT;
    c.stream_id = id;
    reads__outq_add(q, addr, TRIB__MSG_TYPE__MSG_READ_CANCEL, id, &c.base);
}

void reads__send_all(reads_t *r, outq_t *q)
{
    for (outmsg_t *o = q->head, *n; o; o = n) {
        n = o->next;
        int rc = r->io.send(r->io.ctx, o->addr, o->type, o->body, o->len);
        if (o->type == TRIB__MSG_TYPE__MSG_READ_CREDIT && rc == 0)
            BUMP(r, credits_sent, 1);
        if (rc < 0 && o->type == TRIB__MSG_TYPE__MSG_READ_REQ)
            reads__relay_open_failed(r, o->stream_id);
        free(o);
    }
    q->head = q->tail = NULL;
}

/* ================================================================== loop side */

void reads_handle(reads_t *r, uint64_t now, const uint8_t sender[32], const char *sender_addr, int type,
                  const uint8_t *body, size_t len)
{
    outq_t q = {0};
    switch (type) {
    case TRIB__MSG_TYPE__MSG_READ_REQ: {
        Trib__ReadRequest *m = trib__read_request__unpack(NULL, len, body);
        if (!m)
            return;
        reads__owner_open(r, now, sender, sender_addr, m);
        trib__read_request__free_unpacked(m, NULL);
        break;
    }
    case TRIB__MSG_TYPE__MSG_READ_BATCH: {
        Trib__ReadBatch *m = trib__read_batch__unpack(NULL, len, body);
        if (!m)
            return;
        reads__relay_batch(r, now, sender, sender_addr, m, &q); /* takes m */
        break;
    }
    case TRIB__MSG_TYPE__MSG_READ_CREDIT: {
        Trib__ReadCredit *m = trib__read_credit__unpack(NULL, len, body);
        if (!m)
            return;
        reads__owner_credit(r, now, sender, sender_addr, m);
        trib__read_credit__free_unpacked(m, NULL);
        break;
    }
    case TRIB__MSG_TYPE__MSG_READ_CANCEL: {
        Trib__ReadCancel *m = trib__read_cancel__unpack(NULL, len, body);
        if (!m)
            return;
        reads__owner_cancel(r, sender, m->stream_id);
        trib__read_cancel__free_unpacked(m, NULL);
        break;
    }
    default:
        break;
    }
    reads__send_all(r, &q);
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
        reads__outq_cancel(&q, c->addr, c->id);
        free(c);
    }
    r->cancels = NULL;
    reads__relay_drain(r, now, &q);
    pthread_mutex_unlock(&r->mu);
    reads__send_all(r, &q);
    reads__owner_appended(r, (const char (*)[STORE_ID_MAX])notify, nnotify, all);
}

int reads_pump(reads_t *r, uint64_t now) { return reads__owner_pump(r, now); }

void reads_tick(reads_t *r, uint64_t now)
{
    if (now < r->next_tick)
        return;
    r->next_tick = now + (r->c.keepalive_ms / 4 ? r->c.keepalive_ms / 4 : 1);
    outq_t q = {0};
    reads__owner_tick(r, now, &q);
    reads__relay_follow(r, now, &q);
    reads__relay_tick(r, now, &q);
    reads__send_all(r, &q);
}

uint64_t reads_next_deadline(const reads_t *r)
{
    return r->owner_wake && r->owner_wake < r->next_tick ? r->owner_wake : r->next_tick;
}

void reads_rekeyed(reads_t *r, uint64_t now)
{
    outq_t q = {0};
    pthread_mutex_lock(&r->mu);
    reads__relay_rekeyed(r, now, &q);
    pthread_mutex_unlock(&r->mu);
    reads__send_all(r, &q);
}

void reads_peer_lost(reads_t *r, const uint8_t id[32], const char *state)
{
    reads__owner_peer_lost(r, id);
    reads__relay_peer_lost(r, id, state);
}

int reads_relays_from(reads_t *r, const uint8_t id[32]) { return reads__relay_from(r, id); }

size_t reads_owner_untrusted(reads_t *r, const uint8_t id[32], const char *detail)
{
    return reads__relay_untrusted(r, id, detail);
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
    size_t sessions = reads__relay_ranges(r), feeds = r->nfeeds, subs = r->nsubs, queued = r->queued,
           hwm = r->queued_hwm, ring = r->ring_records, promised = r->promised;
    pthread_mutex_unlock(&r->mu);
    uint64_t os = atomic_load(&r->owner_streams), ol = atomic_load(&r->owner_live);
    fprintf(f,
            "# HELP trib_read_owner_streams Routed read streams this node serves as owner, by kind.\n"
            "# TYPE trib_read_owner_streams gauge\n"
            "trib_read_owner_streams{kind=\"range\"} %" PRIu64 "\ntrib_read_owner_streams{kind=\"live\"} %" PRIu64 "\n",
            os > ol ? os - ol : 0, ol);   /* two loads, not one snapshot: never below 0 */
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
            "# TYPE trib_read_relay_queued_batches_max gauge\ntrib_read_relay_queued_batches_max %zu\n"
            "# HELP trib_read_relay_promised_bytes Batch bytes owners may send this node's routed range reads before "
            "their readers take them (at most the relay budget, plus 64 KiB per read opened beyond it).\n"
            "# TYPE trib_read_relay_promised_bytes gauge\ntrib_read_relay_promised_bytes %zu\n",
            sessions, feeds, subs, ring, queued, hwm, promised);
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
            "trib_read_events_total{event=\"credit_overrun\"} %" PRIu64 "\n"
            "trib_read_events_total{event=\"owner_key_followed\"} %" PRIu64 "\n"
            "trib_read_events_total{event=\"owner_paused\"} %" PRIu64 "\n"
            "trib_read_events_total{event=\"relay_narrowed\"} %" PRIu64 "\n",
            (uint64_t)atomic_load(&r->streams_expired), (uint64_t)atomic_load(&r->streams_refused),
            (uint64_t)atomic_load(&r->fail_owner_lost), (uint64_t)atomic_load(&r->fail_refused),
            (uint64_t)atomic_load(&r->fail_open_timeout), (uint64_t)atomic_load(&r->keepalives_sent),
            (uint64_t)atomic_load(&r->credits_sent), (uint64_t)atomic_load(&r->overrun),
            (uint64_t)atomic_load(&r->followed), (uint64_t)atomic_load(&r->owner_paused),
            (uint64_t)atomic_load(&r->relay_narrowed));
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
        .relay_bytes = (size_t)32 << 20,
        .ring_records = 8192,
        .ring_bytes = 8u << 20,
        .pump_batches = 32,
    };
}

static reads_check_fn owner_check;
static void *owner_check_ctx;

static reads_fields_fn owner_fields;
static reads_audit_open_fn owner_audit_open;
static reads_audit_end_fn owner_audit_end;

void reads_set_owner_audit(reads_audit_open_fn open, reads_audit_end_fn end)
{
    owner_audit_open = open;
    owner_audit_end = end;
}

void reads_set_owner_fields(reads_fields_fn fn)
{
    owner_fields = fn;
}

void reads_set_owner_check(reads_check_fn fn, void *ctx)
{
    owner_check = fn;
    owner_check_ctx = ctx;
}

reads_t *reads_new(store_t *st, const char *domain, const reads_config_t *c, const reads_io_t *io)
{
    reads_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    /* Batches of up to max_msg bytes pass through three threads (ZeroMQ's I/O thread, the loop,
     * an HTTP thread), each in a fresh buffer. With glibc's defaults such buffers are mmap'd, or
     * trimmed back to the kernel when freed, so every batch faulted its pages in again: about a
     * third of the relay's CPU. Fixed thresholds keep them in the heap (at most TRIM_KEEP of free
     * memory held per arena). */
    mallopt(M_MMAP_THRESHOLD, HEAP_MAX);
    mallopt(M_TRIM_THRESHOLD, TRIM_KEEP);
    r->st = st;
    r->check = owner_check;
    r->check_ctx = owner_check_ctx;
    r->fields_fn = owner_fields;
    r->audit_open = owner_audit_open;
    r->audit_end = owner_audit_end;
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
    reads__relay_shutdown(r);
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
    reads__owner_free(r);
    reads__relay_free(r);
    pthread_mutex_destroy(&r->mu);
    free(r);
    *rp = NULL;
}
