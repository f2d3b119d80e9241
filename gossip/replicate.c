/* gossip/replicate.c - catalog replication (DESIGN.md §4).
 *
 * Anti-entropy: A sends its digest {domain -> head seq} to B. B sends A, per domain, the entries A
 * lacks (in seq order, in frames under max_frame) and answers with its own digest (reply = true);
 * A then sends B what B lacks. Push: a new entry goes straight to a few peers, and each node that
 * accepts it as new forwards it once (the caller does, from the accepted callback), so an entry
 * spreads epidemically with every hop verified. An entry past a gap triggers a digest to its sender,
 * which answers with the missing range: gaps are re-requested, never skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gossip/entry.h"
#include "gossip/replicate.h"
#include "proto/tributary.pb-c.h"

#define MAX_DIGEST_HEADS 65536   /* a peer's digest longer than this is malformed */
#define MAX_FRAMES_PER_ANSWER 16 /* the rest follows in the next round */

struct replicate {
    store_t *st;
    catalog_t *cat;
    size_t max_frame;
    repl_io_t io;
    repl_stats_t stats;
};

replicate_t *repl_new(store_t *st, catalog_t *cat, size_t max_frame, const repl_io_t *io)
{
    replicate_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->st = st;
    r->cat = cat;
    r->max_frame = max_frame;
    r->io = *io;
    return r;
}

void repl_destroy(replicate_t **rp)
{
    if (rp && *rp) {
        free(*rp);
        *rp = NULL;
    }
}

const repl_stats_t *repl_stats(const replicate_t *r) { return &r->stats; }

/* ------------------------------------------------------------------ frames of entries */

typedef struct {
    replicate_t *r;
    const char *addr;
    ProtobufCBinaryData *items;
    size_t n, cap, bytes;
    int frames;
} frame_t;

static void frame_flush(frame_t *f)
{
    if (!f->n)
        return;
    Trib__CatalogEntries msg = TRIB__CATALOG_ENTRIES__INIT;
    msg.n_entries = f->n;
    msg.entries = f->items;
    size_t len = trib__catalog_entries__get_packed_size(&msg);
    uint8_t *buf = malloc(len);
    if (buf) {
        trib__catalog_entries__pack(&msg, buf);
        f->r->io.send(f->r->io.ctx, f->addr, TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, buf, len);
        f->r->stats.entries_sent += f->n;
        free(buf);
    }
    for (size_t i = 0; i < f->n; i++)
        free(f->items[i].data);
    f->n = 0;
    f->bytes = 0;
    f->frames++;
}

/* Copies one entry into the frame; flushes first when it would overflow. 1 = stop scanning. */
static int frame_add(void *ctx, uint64_t seq, const uint8_t *bytes, size_t len)
{
    (void)seq;
    frame_t *f = ctx;
    if (f->n && f->bytes + len + 8 > f->r->max_frame)
        frame_flush(f);
    if (f->frames >= MAX_FRAMES_PER_ANSWER)
        return 1;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        ProtobufCBinaryData *it = realloc(f->items, cap * sizeof *it);
        if (!it)
            return 1;
        f->items = it;
        f->cap = cap;
    }
    uint8_t *copy = malloc(len);
    if (!copy)
        return 1;
    memcpy(copy, bytes, len);
    f->items[f->n].data = copy;
    f->items[f->n].len = len;
    f->n++;
    f->bytes += len + 8;
    return 0;
}

void repl_push(replicate_t *r, const uint8_t *entry, size_t len, const char *const *addrs, size_t n)
{
    ProtobufCBinaryData item = {len, (uint8_t *)entry};
    Trib__CatalogEntries msg = TRIB__CATALOG_ENTRIES__INIT;
    msg.n_entries = 1;
    msg.entries = &item;
    size_t plen = trib__catalog_entries__get_packed_size(&msg);
    uint8_t *buf = malloc(plen);
    if (!buf)
        return;
    trib__catalog_entries__pack(&msg, buf);
    for (size_t i = 0; i < n; i++) {
        r->io.send(r->io.ctx, addrs[i], TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, buf, plen);
        r->stats.entries_sent++;
    }
    free(buf);
}

/* ------------------------------------------------------------------ digests */

typedef struct {
    Trib__DomainHead *heads;
    Trib__DomainHead **ptrs;
    char (*names)[64];
    size_t n, cap;
} digest_t;

static int digest_add(void *ctx, const char *domain, const store_head_t *h)
{
    digest_t *d = ctx;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 32;
        Trib__DomainHead *nh = realloc(d->heads, cap * sizeof *nh);
        if (!nh)
            return 1;
        d->heads = nh;
        char(*nn)[64] = realloc(d->names, cap * sizeof *nn);
        if (!nn)
            return 1;
        d->names = nn;
        d->cap = cap;
    }
    snprintf(d->names[d->n], sizeof d->names[0], "%s", domain);
    trib__domain_head__init(&d->heads[d->n]);
    d->heads[d->n].seq = h->seq;
    d->n++;
    return 0;
}

static void send_digest(replicate_t *r, const char *addr, int reply)
{
    digest_t d = {0};
    store_catalog_heads(r->st, digest_add, &d);
    d.ptrs = calloc(d.n ? d.n : 1, sizeof *d.ptrs);
    if (!d.ptrs)
        goto out;
    for (size_t i = 0; i < d.n; i++) {
        d.heads[i].domain = d.names[i]; /* names is stable now that adding is over */
        d.ptrs[i] = &d.heads[i];
    }
    Trib__CatalogDigest msg = TRIB__CATALOG_DIGEST__INIT;
    msg.n_heads = d.n;
    msg.heads = d.ptrs;
    msg.reply = reply;
    size_t len = trib__catalog_digest__get_packed_size(&msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf) {
        trib__catalog_digest__pack(&msg, buf);
        r->io.send(r->io.ctx, addr, TRIB__MSG_TYPE__MSG_CATALOG_DIGEST, buf, len);
        r->stats.digests_sent++;
        free(buf);
    }
out:
    free(d.ptrs);
    free(d.heads);
    free(d.names);
}

void repl_sync(replicate_t *r, const char *addr) { send_digest(r, addr, 0); }

/* Sends the peer, whose digest is msg, every entry it lacks of every domain we hold. */
typedef struct {
    replicate_t *r;
    const Trib__CatalogDigest *peer;
    frame_t *frame;
} lack_t;

static int send_lacking(void *ctx, const char *domain, const store_head_t *h)
{
    lack_t *l = ctx;
    uint64_t theirs = 0;
    for (size_t i = 0; i < l->peer->n_heads; i++)
        if (l->peer->heads[i]->domain && !strcmp(l->peer->heads[i]->domain, domain)) {
            theirs = l->peer->heads[i]->seq;
            break;
        }
    if (theirs >= h->seq)
        return 0;
    if (store_catalog_scan(l->r->st, domain, theirs + 1, (size_t)-1, frame_add, l->frame) < 0)
        return 0;
    return l->frame->frames >= MAX_FRAMES_PER_ANSWER;
}

static int handle_digest(replicate_t *r, const char *from, const uint8_t *body, size_t len)
{
    Trib__CatalogDigest *msg = trib__catalog_digest__unpack(NULL, len, body);
    if (!msg)
        return -1;
    if (msg->n_heads > MAX_DIGEST_HEADS) {
        trib__catalog_digest__free_unpacked(msg, NULL);
        return -1;
    }
    r->stats.digests_in++;
    frame_t f = {.r = r, .addr = from};
    lack_t l = {r, msg, &f};
    store_catalog_heads(r->st, send_lacking, &l);
    frame_flush(&f);
    for (size_t i = 0; i < f.n; i++)
        free(f.items[i].data);
    free(f.items);
    if (!msg->reply)
        send_digest(r, from, 1);
    trib__catalog_digest__free_unpacked(msg, NULL);
    return 0;
}

static int handle_entries(replicate_t *r, const char *from, const uint8_t *body, size_t len)
{
    Trib__CatalogEntries *msg = trib__catalog_entries__unpack(NULL, len, body);
    if (!msg)
        return -1;
    int gap = 0;
    for (size_t i = 0; i < msg->n_entries; i++) {
        char err[256];
        cat_result_t res = catalog_accept(r->cat, msg->entries[i].data, msg->entries[i].len, err, sizeof err);
        r->stats.entries[res]++;
        if (res == CAT_ACCEPTED && r->io.accepted)
            r->io.accepted(r->io.ctx, msg->entries[i].data, msg->entries[i].len);
        else if (res == CAT_GAP)
            gap = 1;
    }
    trib__catalog_entries__free_unpacked(msg, NULL);
    if (gap) /* ask the sender for what we lack */
        send_digest(r, from, 0);
    return 0;
}

int repl_handle(replicate_t *r, const char *from_addr, int type, const uint8_t *body, size_t len)
{
    int rc = -1;
    if (type == TRIB__MSG_TYPE__MSG_CATALOG_DIGEST)
        rc = handle_digest(r, from_addr, body, len);
    else if (type == TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES)
        rc = handle_entries(r, from_addr, body, len);
    if (rc < 0)
        r->stats.frames_malformed++;
    return rc;
}
