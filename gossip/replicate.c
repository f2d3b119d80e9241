/* gossip/replicate.c - catalog replication (DESIGN.md §4).
 *
 * Anti-entropy: A opens a round with a summary (a hash of its digest); when B's digest hashes the
 * same, the round ends there, so an idle federation's anti-entropy costs one small message per
 * round whatever the catalog's size. Otherwise B sends its digest {domain -> head seq}; A sends B,
 * per domain, the entries B lacks (in seq order, in frames under max_frame) and answers with its
 * own digest (reply = true); B then sends A what A lacks. Push: a new entry goes straight to a few peers, and each node that
 * accepts entries as new forwards them once, all the entries of one received frame together in one
 * frame to the same few peers (so a run of entries arrives in order, not scattered into gaps), and
 * an entry spreads epidemically with every hop verified.
 * Gaps: an entry past our head asks its sender for just the gapped domains from our head on
 * (MSG_CATALOG_WANT, answered with entries only). While a request for a domain at a given head is
 * outstanding no other is sent; it is forgotten when the head moves or at the next anti-entropy
 * round, so a lost request is retried. Gaps are re-requested, never skipped, and the cost of
 * healing stays linear in what is missing. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gossip/clock.h"
#include "gossip/entry.h"
#include "gossip/log.h"
#include "gossip/replicate.h"
#include "proto/tributary.pb-c.h"

#define MAX_DIGEST_HEADS 65536   /* a peer's digest longer than this is malformed */
#define MAX_FRAMES_PER_ANSWER 16 /* the rest follows in the next round */
#define MAX_FANOUT 64
#define MAX_WANTS 1024           /* outstanding gap requests remembered (one per domain) */

typedef struct {
    char domain[64];
    uint64_t head;               /* our head when we asked */
} want_t;

struct replicate {
    store_t *st;
    catalog_t *cat;
    size_t max_frame;
    repl_io_t io;
    repl_stats_t stats;
    want_t wants[MAX_WANTS];
    size_t nwants;
    /* Refusals are logged at most once a second per outcome; the rest are counted in the next line. */
    uint64_t logged_at[CAT_RESULT_COUNT], unlogged[CAT_RESULT_COUNT];
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

#define SUMMARY_LEN 16

typedef struct {
    crypto_generichash_state st;
    uint32_t n;
} summary_t;

static int summary_add(void *ctx, const char *domain, const store_head_t *h)
{
    summary_t *s = ctx;
    uint8_t seq[8];
    for (int i = 0; i < 8; i++)
        seq[i] = (uint8_t)(h->seq >> (56 - 8 * i));
    crypto_generichash_update(&s->st, (const uint8_t *)domain, strlen(domain) + 1);
    crypto_generichash_update(&s->st, seq, sizeof seq);
    crypto_generichash_update(&s->st, h->hash, STORE_HASH_LEN);
    s->n++;
    return 0;
}

/* The hash of our digest (every domain's head seq and hash, in domain order). 0 or -1. */
static int summary(replicate_t *r, uint8_t out[SUMMARY_LEN], uint32_t *domains)
{
    summary_t s = {.n = 0};
    crypto_generichash_init(&s.st, NULL, 0, SUMMARY_LEN);
    if (store_catalog_heads(r->st, summary_add, &s) != 0)
        return -1;
    crypto_generichash_final(&s.st, out, SUMMARY_LEN);
    *domains = s.n;
    return 0;
}

void repl_sync(replicate_t *r, const char *addr)
{
    r->nwants = 0; /* a request lost before this round gets asked again */
    uint8_t h[SUMMARY_LEN];
    Trib__CatalogSummary msg = TRIB__CATALOG_SUMMARY__INIT;
    if (summary(r, h, &msg.domains) != 0) {
        send_digest(r, addr, 0);
        return;
    }
    msg.hash.data = h;
    msg.hash.len = sizeof h;
    uint8_t buf[64];
    size_t len = trib__catalog_summary__get_packed_size(&msg);
    if (len > sizeof buf)
        return;
    trib__catalog_summary__pack(&msg, buf);
    r->io.send(r->io.ctx, addr, TRIB__MSG_TYPE__MSG_CATALOG_SUMMARY, buf, len);
    r->stats.summaries_sent++;
}

/* A round's opener: nothing to do when our digests agree, else our digest starts the exchange. */
static int handle_summary(replicate_t *r, const char *from, const uint8_t *body, size_t len)
{
    Trib__CatalogSummary *msg = trib__catalog_summary__unpack(NULL, len, body);
    if (!msg)
        return -1;
    int bad = msg->hash.len != SUMMARY_LEN;
    uint8_t h[SUMMARY_LEN];
    uint32_t domains;
    if (!bad) {
        r->stats.summaries_in++;
        if (summary(r, h, &domains) == 0 && domains == msg->domains && !memcmp(h, msg->hash.data, SUMMARY_LEN))
            r->stats.summaries_same++;
        else
            send_digest(r, from, 0);
    }
    trib__catalog_summary__free_unpacked(msg, NULL);
    return bad ? -1 : 0;
}

/* Sends the peer, whose digest is msg (heads sorted by domain), every entry it lacks of every domain
 * we hold. */
typedef struct {
    replicate_t *r;
    const Trib__CatalogDigest *peer;
    frame_t *frame;
} lack_t;

static int head_cmp(const void *a, const void *b)
{
    const Trib__DomainHead *x = *(Trib__DomainHead *const *)a, *y = *(Trib__DomainHead *const *)b;
    return strcmp(x->domain ? x->domain : "", y->domain ? y->domain : "");
}

static int send_lacking(void *ctx, const char *domain, const store_head_t *h)
{
    lack_t *l = ctx;
    Trib__DomainHead key = {.domain = (char *)domain}, *kp = &key, **hit;
    hit = l->peer->n_heads ? bsearch(&kp, l->peer->heads, l->peer->n_heads, sizeof *l->peer->heads, head_cmp)
                           : NULL;
    uint64_t theirs = hit ? (*hit)->seq : 0;
    if (theirs >= h->seq)
        return 0;
    if (store_catalog_scan(l->r->st, domain, theirs + 1, (size_t)-1, frame_add, l->frame) < 0)
        return 0;
    return l->frame->frames >= MAX_FRAMES_PER_ANSWER;
}

/* A received CatalogDigest body, or NULL when it does not decode or lists too many heads. */
static Trib__CatalogDigest *digest_unpack(const uint8_t *body, size_t len)
{
    Trib__CatalogDigest *msg = trib__catalog_digest__unpack(NULL, len, body);
    if (msg && msg->n_heads > MAX_DIGEST_HEADS) {
        trib__catalog_digest__free_unpacked(msg, NULL);
        return NULL;
    }
    return msg;
}

/* Sends what is left in the frame and frees it. */
static void frame_finish(frame_t *f)
{
    frame_flush(f);
    for (size_t i = 0; i < f->n; i++)
        free(f->items[i].data);
    free(f->items);
}

static int handle_digest(replicate_t *r, const char *from, const uint8_t *body, size_t len)
{
    Trib__CatalogDigest *msg = digest_unpack(body, len);
    if (!msg)
        return -1;
    r->stats.digests_in++;
    /* Sorted once, looked up per domain we hold: a scan per domain would cost the loop domains x heads
     * (up to MAX_DIGEST_HEADS) string compares for one message. */
    if (msg->n_heads)                                  /* heads is NULL when empty */
        qsort(msg->heads, msg->n_heads, sizeof *msg->heads, head_cmp);
    frame_t f = {.r = r, .addr = from};
    lack_t l = {r, msg, &f};
    store_catalog_heads(r->st, send_lacking, &l);
    frame_finish(&f);
    if (!msg->reply)
        send_digest(r, from, 1);
    trib__catalog_digest__free_unpacked(msg, NULL);
    return 0;
}

/* Packs entries into frames under max_frame and sends each frame to every address. */
static void send_entries(replicate_t *r, const ProtobufCBinaryData *items, size_t n, const char *const *addrs,
                         size_t naddrs, int push)
{
    size_t i = 0;
    while (i < n && naddrs) {
        size_t j = i, bytes = 0;
        while (j < n && (j == i || bytes + items[j].len + 8 <= r->max_frame))
            bytes += items[j++].len + 8;
        Trib__CatalogEntries msg = TRIB__CATALOG_ENTRIES__INIT;
        msg.n_entries = j - i;
        msg.entries = (ProtobufCBinaryData *)&items[i];
        size_t len = trib__catalog_entries__get_packed_size(&msg);
        uint8_t *buf = malloc(len);
        if (!buf)
            return;
        trib__catalog_entries__pack(&msg, buf);
        for (size_t k = 0; k < naddrs; k++) {
            r->io.send(r->io.ctx, addrs[k], TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, buf, len);
            r->stats.entries_sent += j - i;
            if (push)
                r->stats.entries_pushed += j - i;
        }
        free(buf);
        i = j;
    }
}

void repl_push(replicate_t *r, const uint8_t *entry, size_t len, const char *const *addrs, size_t n)
{
    ProtobufCBinaryData item = {len, (uint8_t *)entry};
    send_entries(r, &item, 1, addrs, n, 1);
}

/* Forwards the entries accepted from one frame, together, to a few peers other than its sender. */
static void forward(replicate_t *r, const char *from, const ProtobufCBinaryData *items, size_t n)
{
    if (!n || !r->io.peers)
        return;
    const char *got[MAX_FANOUT], *addrs[MAX_FANOUT];
    size_t ng = r->io.peers(r->io.ctx, got, MAX_FANOUT), na = 0;
    for (size_t i = 0; i < ng; i++)
        if (strcmp(got[i], from) != 0)
            addrs[na++] = got[i];
    send_entries(r, items, n, addrs, na, 1);
}

/* The domain a (signed) entry claims, or -1 when it does not decode (it was counted already). */
static int entry_domain(const ProtobufCBinaryData *item, char *out, size_t cap)
{
    Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, item->len, item->data);
    if (!se)
        return -1;
    Trib__CatalogEntry *ce = trib__catalog_entry__unpack(NULL, se->body.len, se->body.data);
    int rc = ce && ce->domain && ce->domain[0] ? 0 : -1;
    if (!rc)
        snprintf(out, cap, "%s", ce->domain);
    if (ce)
        trib__catalog_entry__free_unpacked(ce, NULL);
    trib__signed_entry__free_unpacked(se, NULL);
    return rc;
}

/* Whether to ask for domain at head now: not while the same request is outstanding. */
static int want_new(replicate_t *r, const char *domain, uint64_t head)
{
    for (size_t i = 0; i < r->nwants; i++)
        if (!strcmp(r->wants[i].domain, domain)) {
            if (r->wants[i].head == head)
                return 0;
            r->wants[i].head = head;
            return 1;
        }
    if (r->nwants == MAX_WANTS) /* forget the oldest */
        memmove(r->wants, r->wants + 1, --r->nwants * sizeof r->wants[0]);
    snprintf(r->wants[r->nwants].domain, sizeof r->wants[0].domain, "%s", domain);
    r->wants[r->nwants++].head = head;
    return 1;
}

/* Asks from for the gapped domains of these entries, from our heads on. */
static void request_gaps(replicate_t *r, const char *from, const ProtobufCBinaryData *items, size_t n)
{
    Trib__DomainHead heads[16], *ptrs[16];
    char names[16][64];
    size_t nh = 0;
    for (size_t i = 0; i < n && nh < 16; i++) {
        char domain[64];
        if (entry_domain(&items[i], domain, sizeof domain) < 0)
            continue;
        int seen = 0;
        for (size_t k = 0; k < nh && !seen; k++)
            seen = !strcmp(names[k], domain);
        store_head_t h = {0};
        if (seen || store_catalog_head(r->st, domain, &h) < 0 || !want_new(r, domain, h.seq))
            continue;
        snprintf(names[nh], sizeof names[nh], "%s", domain);
        trib__domain_head__init(&heads[nh]);
        heads[nh].domain = names[nh];
        heads[nh].seq = h.seq;
        ptrs[nh] = &heads[nh];
        nh++;
    }
    if (!nh)
        return;
    Trib__CatalogDigest msg = TRIB__CATALOG_DIGEST__INIT;
    msg.n_heads = nh;
    msg.heads = ptrs;
    size_t len = trib__catalog_digest__get_packed_size(&msg);
    uint8_t *buf = malloc(len);
    if (!buf)
        return;
    trib__catalog_digest__pack(&msg, buf);
    r->io.send(r->io.ctx, from, TRIB__MSG_TYPE__MSG_CATALOG_WANT, buf, len);
    r->stats.wants_sent++;
    free(buf);
}

/* One line per refused entry (forged, wrong key, broken chain, storage error), rate-limited so a
 * hostile peer cannot flood the log; every refusal is counted in the stats regardless. */
static void log_refusal(replicate_t *r, cat_result_t res, const char *from, const char *err)
{
    uint64_t now = clock_ms();
    if (r->logged_at[res] && now - r->logged_at[res] < 1000) {
        r->unlogged[res]++;
        return;
    }
    r->logged_at[res] = now ? now : 1;
    if (r->unlogged[res])
        log_warn("catalog: refused an entry from %s: %s: %s (and %llu more %s since the last such line)", from,
                 cat_result_name(res), err, (unsigned long long)r->unlogged[res], cat_result_name(res));
    else
        log_warn("catalog: refused an entry from %s: %s: %s", from, cat_result_name(res), err);
    r->unlogged[res] = 0;
}

static void log_accepted(const char *from, const ProtobufCBinaryData *item)
{
    if (log_level() < LOG_DEBUG)
        return;
    Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, item->len, item->data);
    Trib__CatalogEntry *ce = se ? trib__catalog_entry__unpack(NULL, se->body.len, se->body.data) : NULL;
    if (ce)
        log_debug("catalog: accepted %s seq %llu from %s", ce->domain, (unsigned long long)ce->seq, from);
    if (ce)
        trib__catalog_entry__free_unpacked(ce, NULL);
    if (se)
        trib__signed_entry__free_unpacked(se, NULL);
}

static int handle_entries(replicate_t *r, const char *from, const uint8_t *body, size_t len)
{
    Trib__CatalogEntries *msg = trib__catalog_entries__unpack(NULL, len, body);
    if (!msg)
        return -1;
    ProtobufCBinaryData *ok = calloc(msg->n_entries ? msg->n_entries : 1, sizeof *ok);
    ProtobufCBinaryData *gaps = calloc(msg->n_entries ? msg->n_entries : 1, sizeof *gaps);
    size_t nok = 0, ngaps = 0;
    for (size_t i = 0; i < msg->n_entries; i++) {
        char err[256];
        cat_result_t res = catalog_accept(r->cat, msg->entries[i].data, msg->entries[i].len, err, sizeof err);
        r->stats.entries[res]++;
        if (res == CAT_ACCEPTED) {
            log_accepted(from, &msg->entries[i]);
            if (ok)
                ok[nok++] = msg->entries[i];
            if (r->io.accepted)
                r->io.accepted(r->io.ctx, msg->entries[i].data, msg->entries[i].len);
        } else if (res == CAT_GAP) {
            if (gaps)
                gaps[ngaps++] = msg->entries[i];
        } else if (res != CAT_DUPLICATE) {
            log_refusal(r, res, from, err);
        }
    }
    forward(r, from, ok, nok); /* forward once: only entries new to us get here */
    request_gaps(r, from, gaps, ngaps);
    free(ok);
    free(gaps);
    trib__catalog_entries__free_unpacked(msg, NULL);
    return 0;
}

/* A peer lacks entries of the listed domains after the listed seqs: send them (no digest back). */
static int handle_want(replicate_t *r, const char *from, const uint8_t *body, size_t len)
{
    Trib__CatalogDigest *msg = digest_unpack(body, len);
    if (!msg)
        return -1;
    r->stats.wants_in++;
    frame_t f = {.r = r, .addr = from};
    for (size_t i = 0; i < msg->n_heads && f.frames < MAX_FRAMES_PER_ANSWER; i++) {
        const char *domain = msg->heads[i]->domain;
        store_head_t h;
        if (!domain || store_catalog_head(r->st, domain, &h) != 0 || h.seq <= msg->heads[i]->seq)
            continue;
        store_catalog_scan(r->st, domain, msg->heads[i]->seq + 1, (size_t)-1, frame_add, &f);
    }
    frame_finish(&f);
    trib__catalog_digest__free_unpacked(msg, NULL);
    return 0;
}

int repl_handle(replicate_t *r, const char *from_addr, int type, const uint8_t *body, size_t len)
{
    int rc = -1;
    if (type == TRIB__MSG_TYPE__MSG_CATALOG_DIGEST)
        rc = handle_digest(r, from_addr, body, len);
    else if (type == TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES)
        rc = handle_entries(r, from_addr, body, len);
    else if (type == TRIB__MSG_TYPE__MSG_CATALOG_WANT)
        rc = handle_want(r, from_addr, body, len);
    else if (type == TRIB__MSG_TYPE__MSG_CATALOG_SUMMARY)
        rc = handle_summary(r, from_addr, body, len);
    if (rc < 0)
        r->stats.frames_malformed++;
    return rc;
}
