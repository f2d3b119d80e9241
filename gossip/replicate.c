/* gossip/replicate.c - catalog replication (DESIGN.md §4).
 *
 * Anti-entropy: A opens a round with a summary (a hash of its digest); when B's digest hashes the
 * same, the round ends there, so an idle federation's anti-entropy costs one small message per
 * round whatever the catalog's size. Otherwise B sends its digest {domain -> head seq}; A sends B,
 * per domain, the entries B lacks (in seq order, in frames under max_frame) and answers with its
 * own digest (reply = true); B then sends A what A lacks. An answer is bounded (ANSWER_MAX_BYTES,
 * MAX_FRAMES_PER_ANSWER); one cut short says so (more), and the receiver, once it has stored it,
 * pulls the next part with its digest (reply = true): a catch-up runs at the receiver's pace, with
 * one answer in flight per peer, never a backlog queued in memory.
 * Pulls: a node that sent a peer its whole digest (asking for all it lacks) holds a pull with it:
 * no other round with that peer until the answer is in. The answer's last part says so (last; an
 * empty answer is one empty frame marked so) and ends the pull; an older peer marks nothing, and
 * its pull expires PULL_MS after its last part. A `more` is followed only in a part of an answer
 * while a pull with (or a gap request to) its sender is outstanding, and the digest it makes us
 * send is charged to the sender's answer budget: else any peer naming another's address (open
 * mode) could make us send digests at will and hold our pull with that peer open for good.
 * Push: the gossip loop sends a node's new entries to every alive member at once, marked final
 * (repl_push_all): nobody forwards them, so each member receives each entry once. While a domain's
 * entries are being pushed (it changed in the last ACTIVE_MS, and went to at least one member)
 * answers to whole digests leave it out: the pushes are in flight, and answering them again would
 * only send each a second time (a question about some domains alone is answered in full). Not to a
 * peer the pushes did not reach (io.got_pushes: one that was dead, or came back meanwhile): it is
 * sent what it lacks at once. repl_push
 * (to a few peers, unmarked) makes each node that accepts entries as new forward them once, all the
 * entries of one received frame together in one frame to the same few peers (so a run of entries
 * arrives in order, not scattered into gaps), and an entry spreads epidemically with every hop
 * verified.
 * Accepting: every entry of a frame is verified (signature, shape) on its own, then all the verified
 * ones are stored in one write transaction (one durable commit per frame, not per entry), each
 * checked against the head the entries before it left.
 * Gaps: an entry past our head asks its sender for just the gapped domains from our head on
 * (MSG_CATALOG_WANT, answered with entries only). While a request for a domain at a given head is
 * outstanding no other is sent; it is forgotten when the head moves or at the next anti-entropy
 * round, so a lost request is retried. Gaps are re-requested, never skipped, and the cost of
 * healing stays linear in what is missing.
 * Budget: an answer (to a summary, digest or gap request) is sent only while the asker has budget
 * left (io.answer_ok: gossip/budget.h, a token bucket of bytes per peer), and the bytes it took are
 * charged (io.answered); a peer that asks again and again is refused until its bucket refills.
 * Refused, an honest puller's chain stops: its pull expires (PULL_MS) and its next round asks again. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gossip/clock.h"
#include "gossip/entry.h"
#include "gossip/identity.h"
#include "gossip/log.h"
#include "gossip/replicate.h"
#include "gossip/verifymany.h"
#include "storage/access.h"
#include "proto/tributary.pb-c.h"

#define MAX_DIGEST_HEADS 65536   /* a peer's digest longer than this is malformed */
#define MAX_FRAMES_PER_ANSWER 16 /* the rest follows in the next pull */
#define MAX_FANOUT 64
#define MAX_WANTS 1024           /* outstanding gap requests remembered (one per domain) */
#define ANSWER_MAX_BYTES (4u << 20) /* entries in one answer; the peer pulls the rest */
#define FRAME_MAX_ENTRIES 1024   /* entries handled per received frame (bounds the time one frame
                                    holds the loop); more are ignored, counted, and fetched again
                                    by gap requests or anti-entropy. Frames we send hold fewer. */
#define PULL_SLOTS 64            /* peers a pull may be outstanding with */
#define PULL_MS 5000             /* an unanswered pull is forgotten after this (or at our next round
                                    without a clock) */
#define PULL_EXTEND_MS 30000     /* the parts of its answer keep a pull this long past its request
                                    at most: a peer marking every frame an answer must not keep our
                                    rounds with it shut for good */
#define LISTED_MAX 64            /* domains of a question (only_listed) answered with our heads; a
                                    node asks about its own domain alone */
#define ACTIVE_MS REPL_ACTIVE_MS /* a domain changed this recently is being pushed */
#define ACTIVE_SLOTS 4096        /* domains whose last change is remembered (a lost slot costs only
                                    an answer sent early) */

typedef struct {
    char domain[64];
    uint64_t at_ms;
} active_t;

typedef struct {
    char domain[64];
    uint64_t head;               /* our head when we asked */
    char addr[64];               /* whom we asked */
} want_t;

struct replicate {
    store_t *st;
    catalog_t *cat;
    size_t max_frame;
    repl_io_t io;
    repl_stats_t stats;
    want_t wants[MAX_WANTS];
    size_t nwants;
    active_t active[ACTIVE_SLOTS];
    struct {
        char addr[64];
        uint64_t at_ms;          /* when we pulled, or its answer's last part came (0: free slot) */
        uint64_t asked_ms;       /* when we pulled: parts extend it only PULL_EXTEND_MS past this */
        uint64_t ask;            /* the digest's CatalogDigest.ask: the answer's last part names it */
    } pulls[PULL_SLOTS];         /* peers we are pulling a cut answer from: one chain per peer */
    char own[64];                /* this node's domain */
    size_t own_heard;            /* peers' digests received */
    uint64_t own_peer_head;      /* the highest head of our domain in them */
    repl_fork_t forks[REPL_FORKS_MAX];
    size_t nforks;
    /* Refusals are logged at most once a second per outcome; the rest are counted in the next line. */
    log_limit_t refusal_log[CAT_RESULT_COUNT];
    log_limit_t fork_log;        /* forks past REPL_FORKS_MAX: a line a second at most */
    log_limit_t more_log;        /* `more` frames not followed: a line a second at most */
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
        verify_many_stop();      /* the helpers repl_job_run may have started */
        free(*rp);
        *rp = NULL;
    }
}

const repl_stats_t *repl_stats(const replicate_t *r) { return &r->stats; }

/* ------------------------------------------------------------------ own domain, forks */

void repl_set_own(replicate_t *r, const char *domain) { snprintf(r->own, sizeof r->own, "%s", domain); }

size_t repl_own_heard(replicate_t *r, uint64_t *peer_head, uint64_t *own_head)
{
    store_head_t h = {0};
    *own_head = r->own[0] && store_catalog_head(r->st, r->own, &h) == 0 ? h.seq : 0;
    *peer_head = r->own_peer_head;
    return r->own_heard;
}

size_t repl_forks(const replicate_t *r, repl_fork_t *out, size_t max)
{
    for (size_t i = 0; i < r->nforks && i < max; i++)
        out[i] = r->forks[i];
    return r->nforks;
}

/* Records and logs (once per domain and seq) a fork of domain at seq that from's entry shows. Past
 * REPL_FORKS_MAX recorded, none is known again: those are logged at most once a second (a domain's
 * key can sign forks at will, and peers send them again and again), every one counted. */
static void note_fork(replicate_t *r, const char *domain, uint64_t seq, const char *from, const char *how)
{
    for (size_t i = 0; i < r->nforks; i++)
        if (r->forks[i].seq == seq && !strcmp(r->forks[i].domain, domain))
            return;
    r->stats.forks++;
    uint64_t held = 0;
    char tail[96];
    int say = 1;
    if (r->nforks < REPL_FORKS_MAX) {
        repl_fork_t *f = &r->forks[r->nforks++];
        snprintf(f->domain, sizeof f->domain, "%s", domain);
        snprintf(f->from, sizeof f->from, "%s", from);
        f->seq = seq;
    } else {
        say = log_limit(&r->fork_log, 1000, &held);
    }
    if (say)
        log_error("catalog: FORK of domain '%s' at seq %llu: %s sent an entry signed by the domain's key that %s "
                  "(was the domain's node restored from an old copy of its data and published again?). This node "
                  "keeps its own entry; the domain's catalog stays split until its owner resolves it.%s",
                  domain, (unsigned long long)seq, from, how,
                  log_held(tail, sizeof tail, held, "forks"));
    /* The evidence goes back: our entry at that seq shows the sender the fork too (it sees a duplicate
     * seq with other bytes), so every node holding either side learns of both. */
    uint8_t *ours = NULL;
    size_t len = 0;
    if (store_catalog_get(r->st, domain, seq, &ours, &len) == 0) {
        ProtobufCBinaryData item = {len, ours};
        Trib__CatalogEntries msg = TRIB__CATALOG_ENTRIES__INIT;
        msg.n_entries = 1;
        msg.entries = &item;
        msg.final = 1;
        size_t blen = trib__catalog_entries__get_packed_size(&msg);
        uint8_t *buf = malloc(blen);
        if (buf) {
            trib__catalog_entries__pack(&msg, buf);
            r->io.send(r->io.ctx, from, TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, buf, blen);
            r->stats.entries_sent++;
            free(buf);
        }
    }
    free(ours);
}

/* A duplicate seq: a fork when its bytes are not the entry we hold at that seq. */
static void check_duplicate(replicate_t *r, const char *from, const Trib__CatalogEntry *e,
                            const ProtobufCBinaryData *item)
{
    uint8_t *held = NULL;
    size_t len = 0;
    if (store_catalog_get(r->st, e->domain, e->seq, &held, &len) == 0 &&
        (len != item->len || memcmp(held, item->data, len) != 0))
        note_fork(r, e->domain, e->seq, from, "differs from the one this node holds at that seq");
    free(held);
}

/* ------------------------------------------------------------------ pulls in progress */

/* The slot of addr's outstanding pull, or -1. */
static int pull_find(replicate_t *r, const char *addr)
{
    uint64_t now = r->io.now ? r->io.now(r->io.ctx) : 0;
    for (int i = 0; i < PULL_SLOTS; i++)
        if (r->pulls[i].at_ms && !strcmp(r->pulls[i].addr, addr)) {
            if (r->io.now && now - r->pulls[i].at_ms >= PULL_MS) {
                r->pulls[i].at_ms = 0;
                return -1;
            }
            return i;
        }
    return -1;
}

/* A new CatalogDigest.ask: random (a peer naming another's address cannot guess it), its top bit
 * set: never 0, and always as long packed (frames cut as before, simulations stay deterministic). */
static uint64_t new_ask(void)
{
    uint64_t a;
    randombytes_buf(&a, sizeof a);
    return a | (uint64_t)1 << 63;
}

static void pull_set(replicate_t *r, const char *addr, uint64_t ask)
{
    int i = pull_find(r, addr);
    for (int k = 0; i < 0 && k < PULL_SLOTS; k++)
        if (!r->pulls[k].at_ms)
            i = k;
    if (i < 0)
        i = (int)(r->stats.digests_sent % PULL_SLOTS); /* all busy: reuse one */
    snprintf(r->pulls[i].addr, sizeof r->pulls[i].addr, "%s", addr);
    r->pulls[i].at_ms = r->io.now ? r->io.now(r->io.ctx) : 1;
    if (!r->pulls[i].at_ms)
        r->pulls[i].at_ms = 1;
    r->pulls[i].asked_ms = r->pulls[i].at_ms;
    r->pulls[i].ask = ask;
}

/* A part of addr's answer came: its pull lasts PULL_MS from now, unless it was asked for more than
 * PULL_EXTEND_MS ago (a hostile peer may mark any frame an answer). */
static void pull_extend(replicate_t *r, const char *addr)
{
    int i = pull_find(r, addr);
    uint64_t now = r->io.now ? r->io.now(r->io.ctx) : 0;
    if (i >= 0 && now && now - r->pulls[i].asked_ms < PULL_EXTEND_MS)
        r->pulls[i].at_ms = now;
}

/* The last part of addr's answer to the digest that asked ask came: the pull is over, a round with
 * addr may start. Another answer's last part (a late one, or one made up) ends nothing. */
static void pull_end(replicate_t *r, const char *addr, uint64_t ask)
{
    int i = pull_find(r, addr);
    if (i >= 0 && r->pulls[i].ask == ask) {
        r->pulls[i].at_ms = 0;
        r->stats.pulls_ended++;
    }
}

/* ------------------------------------------------------------------ active domains */

static active_t *active_slot(replicate_t *r, const char *domain)
{
    uint64_t h = 1469598103934665603ull;                  /* FNV-1a */
    for (const char *p = domain; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return &r->active[h % ACTIVE_SLOTS];
}

static void mark_active(replicate_t *r, const char *domain)
{
    if (!r->io.now)
        return;
    active_t *a = active_slot(r, domain);
    snprintf(a->domain, sizeof a->domain, "%s", domain);
    a->at_ms = r->io.now(r->io.ctx);
}

/* Whether domain's entries are being pushed now (it changed in the last ACTIVE_MS). */
static int is_active(replicate_t *r, const char *domain)
{
    if (!r->io.now)
        return 0;
    const active_t *a = active_slot(r, domain);
    return a->at_ms && !strcmp(a->domain, domain) && r->io.now(r->io.ctx) - a->at_ms < ACTIVE_MS;
}

/* ------------------------------------------------------------------ the answers' budget */

/* Whether the peer whose message is being handled may be answered now (io.answer_ok, which counts
 * and logs a refusal). */
static int answer_ok(replicate_t *r, const char *addr)
{
    return !r->io.answer_ok || r->io.answer_ok(r->io.ctx, addr);
}

static void answered(replicate_t *r, const char *addr, size_t bytes)
{
    if (r->io.answered)
        r->io.answered(r->io.ctx, addr, bytes);
}

/* ------------------------------------------------------------------ frames of entries */

typedef struct {
    replicate_t *r;
    const char *addr;
    ProtobufCBinaryData *items;
    size_t n, cap, bytes, total;
    int frames;
    int cut;                     /* the answer's bound was reached: entries were left out */
    int whole;                   /* an answer to a whole digest: its last part is marked (last) */
    uint64_t ask;                /* the digest's ask, repeated in every part */
    int last;                    /* this flush is the answer's last part: sent even when empty */
} frame_t;

static void frame_flush(frame_t *f)
{
    if (!f->n && !f->last)
        return;
    Trib__CatalogEntries msg = TRIB__CATALOG_ENTRIES__INIT;
    msg.n_entries = f->n;
    msg.entries = f->items;
    msg.more = f->cut;
    msg.last = f->last;
    msg.ask = f->ask;
    msg.answer = 1;
    msg.final = f->r->io.answers_final;
    size_t len = trib__catalog_entries__get_packed_size(&msg);
    uint8_t *buf = malloc(len);
    if (buf) {
        trib__catalog_entries__pack(&msg, buf);
        f->r->io.send(f->r->io.ctx, f->addr, TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, buf, len);
        answered(f->r, f->addr, len);
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
    if (f->frames >= MAX_FRAMES_PER_ANSWER || (f->total && f->total + len + 8 > ANSWER_MAX_BYTES)) {
        f->cut = 1;              /* the last frame (still unsent) tells the peer to pull the rest */
        return 1;
    }
    if (f->n && (f->bytes + len + 8 > f->r->max_frame || f->n == FRAME_MAX_ENTRIES))
        frame_flush(f);
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
    f->total += len + 8;
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

/* Sends addr our digest (ask: its CatalogDigest.ask, 0 none); returns its length (0: none sent). */
static size_t send_digest(replicate_t *r, const char *addr, int reply, uint64_t ask)
{
    size_t sent = 0;
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
    msg.ask = ask;
    size_t len = trib__catalog_digest__get_packed_size(&msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf) {
        trib__catalog_digest__pack(&msg, buf);
        r->io.send(r->io.ctx, addr, TRIB__MSG_TYPE__MSG_CATALOG_DIGEST, buf, len);
        r->stats.digests_sent++;
        sent = len;
        free(buf);
    }
out:
    free(d.ptrs);
    free(d.heads);
    free(d.names);
    return sent;
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

/* Sends addr a digest of our heads of the n domains (0 for one we hold nothing of), only_listed:
 * asking about them alone, or (reply) answering such a question. Returns its length (0: none sent). */
static size_t send_listed(replicate_t *r, const char *addr, char *const *domains, size_t n, int reply)
{
    Trib__DomainHead *heads = calloc(n ? n : 1, sizeof *heads);
    Trib__DomainHead **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    size_t len = 0, k = 0;
    uint8_t *buf = NULL;
    if (!heads || !ptrs)
        goto out;
    for (size_t i = 0; i < n; i++) {
        store_head_t h = {0};
        int rc = domains[i] ? store_catalog_head(r->st, domains[i], &h) : -1;
        if (rc != 0 && rc != STORE_NOTFOUND)
            continue;            /* not a domain name */
        trib__domain_head__init(&heads[k]);
        heads[k].domain = domains[i];
        heads[k].seq = rc == 0 ? h.seq : 0;
        ptrs[k] = &heads[k];
        k++;
    }
    Trib__CatalogDigest msg = TRIB__CATALOG_DIGEST__INIT;
    msg.n_heads = k;
    msg.heads = ptrs;
    msg.reply = reply;
    msg.only_listed = 1;
    len = trib__catalog_digest__get_packed_size(&msg);
    if (!(buf = malloc(len ? len : 1))) {
        len = 0;
        goto out;
    }
    trib__catalog_digest__pack(&msg, buf);
    r->io.send(r->io.ctx, addr, TRIB__MSG_TYPE__MSG_CATALOG_DIGEST, buf, len);
    r->stats.digests_sent++;
out:
    free(buf);
    free(ptrs);
    free(heads);
    return len;
}

void repl_ask(replicate_t *r, const char *addr)
{
    char *own = r->own;
    send_listed(r, addr, &own, r->own[0] ? 1 : 0, 0);
}

void repl_ask_domain(replicate_t *r, const char *addr, const char *domain)
{
    char *d = (char *)domain;
    send_listed(r, addr, &d, 1, 0);
}

size_t repl_sync_opener(replicate_t *r, const char *addr, uint8_t *buf, size_t cap)
{
    r->nwants = 0; /* a request lost before this round gets asked again */
    if (!r->io.now)
        memset(r->pulls, 0, sizeof r->pulls); /* no clock: a lost pull is retried by this round */
    else if (pull_find(r, addr) >= 0)
        return 0;  /* the pull in progress is this round */
    uint8_t h[SUMMARY_LEN];
    Trib__CatalogSummary msg = TRIB__CATALOG_SUMMARY__INIT;
    if (summary(r, h, &msg.domains) != 0) {
        send_digest(r, addr, 0, 0);
        return 0;
    }
    msg.hash.data = h;
    msg.hash.len = sizeof h;
    size_t len = trib__catalog_summary__get_packed_size(&msg);
    if (len > cap)
        return 0;
    trib__catalog_summary__pack(&msg, buf);
    r->stats.summaries_sent++;
    return len;
}

void repl_sync(replicate_t *r, const char *addr)
{
    uint8_t buf[64];
    size_t len = repl_sync_opener(r, addr, buf, sizeof buf);
    if (len)
        r->io.send(r->io.ctx, addr, TRIB__MSG_TYPE__MSG_CATALOG_SUMMARY, buf, len);
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
        else if (pull_find(r, from) < 0 && answer_ok(r, from)) { /* else the pull in progress is this round */
            uint64_t ask = new_ask();
            answered(r, from, send_digest(r, from, 0, ask));
            pull_set(r, from, ask);   /* our digest asks for all we lack, as below (handle_digest) */
        }
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
    int got_pushes;              /* the peer got our pushes in flight (io.got_pushes) */
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
    if (!hit && l->peer->only_listed)   /* a question about the listed domains only */
        return 0;
    uint64_t theirs = hit ? (*hit)->seq : 0;
    if (theirs >= h->seq)
        return 0;
    if (l->got_pushes && !l->peer->only_listed && is_active(l->r, domain)) {   /* else: now */
        l->r->stats.answers_deferred++;
        return 0;
    }
    if (store_catalog_scan(l->r->st, domain, theirs + 1, (size_t)-1, frame_add, l->frame) < 0)
        return 0;
    return l->frame->cut;
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

/* Sends what is left in the frame (an answer to a whole digest: marked its last part unless cut,
 * even empty) and frees it. */
static void frame_finish(frame_t *f)
{
    f->r->stats.answers_cut += f->cut;
    f->last = f->whole && !f->cut;
    frame_flush(f);              /* never empty when cut: a cut comes after an entry was added */
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
    if (r->own[0]) {
        Trib__DomainHead key = {.domain = r->own}, *kp = &key, **hit;
        hit = msg->n_heads ? bsearch(&kp, msg->heads, msg->n_heads, sizeof *msg->heads, head_cmp) : NULL;
        if (hit || !msg->only_listed)   /* a question about other domains says nothing of ours */
            r->own_heard++;
        if (hit && (*hit)->seq > r->own_peer_head)
            r->own_peer_head = (*hit)->seq;
    }
    /* What the digest told us of our own domain is kept above; the answer waits for the budget */
    if (answer_ok(r, from)) {
        frame_t f = {.r = r, .addr = from, .whole = !msg->only_listed, .ask = msg->ask}; /* the asker holds a pull */
        lack_t l = {r, msg, &f, !r->io.got_pushes || r->io.got_pushes(r->io.ctx, from)};
        store_catalog_heads(r->st, send_lacking, &l);
        frame_finish(&f);
        if (!msg->reply && msg->only_listed) {
            /* a question about some domains (a starting node's about its own): our heads of them
             * alone, whatever pull is in progress with the asker (it learns where its own domain
             * stands from them, and is sent only what we lack of those domains back) */
            char *domains[LISTED_MAX];
            size_t n = msg->n_heads < LISTED_MAX ? msg->n_heads : LISTED_MAX;
            for (size_t i = 0; i < n; i++)
                domains[i] = msg->heads[i]->domain;
            answered(r, from, send_listed(r, from, domains, n, 1));
        } else if (!msg->reply && pull_find(r, from) < 0) { /* else the pull in progress brings it */
            uint64_t ask = new_ask();
            answered(r, from, send_digest(r, from, 1, ask));
            /* our digest asks for all we lack: its answer may stream for seconds, and a round
             * opened meanwhile (our worker busy verifying, the queue empty for a moment) would ask
             * again for what is on its way */
            pull_set(r, from, ask);
        }
    }
    trib__catalog_digest__free_unpacked(msg, NULL);
    return 0;
}

/* Packs entries into frames under max_frame and sends each frame to every address. */
static void send_entries(replicate_t *r, const ProtobufCBinaryData *items, size_t n, const char *const *addrs,
                         size_t naddrs, int push, int to_all)
{
    size_t i = 0;
    while (i < n && naddrs) {
        size_t j = i, bytes = 0;
        while (j < n && j - i < FRAME_MAX_ENTRIES && (j == i || bytes + items[j].len + 8 <= r->max_frame))
            bytes += items[j++].len + 8;
        Trib__CatalogEntries msg = TRIB__CATALOG_ENTRIES__INIT;
        msg.n_entries = j - i;
        msg.entries = (ProtobufCBinaryData *)&items[i];
        msg.final = to_all;
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

static int entry_domain(const ProtobufCBinaryData *item, char *out, size_t cap);

void repl_push(replicate_t *r, const uint8_t *entry, size_t len, const char *const *addrs, size_t n)
{
    ProtobufCBinaryData item = {len, (uint8_t *)entry};
    char domain[64];
    if (n && entry_domain(&item, domain, sizeof domain) == 0)   /* sent to nobody: nothing in flight */
        mark_active(r, domain);
    send_entries(r, &item, 1, addrs, n, 1, 0);
}

void repl_push_all(replicate_t *r, const uint8_t *const *entries, const size_t *lens, size_t n,
                   const char *const *addrs, size_t naddrs)
{
    if (!n)
        return;
    ProtobufCBinaryData *items = malloc(n * sizeof *items);
    if (!items)
        return;                  /* anti-entropy carries them */
    char domain[64] = "", last[64] = "";
    for (size_t i = 0; i < n; i++) {
        items[i] = (ProtobufCBinaryData){lens[i], (uint8_t *)entries[i]};
        /* pushed to nobody (no member alive yet): nothing in flight, and a member that comes
         * asks for them with its first round, answered at once */
        if (naddrs && entry_domain(&items[i], domain, sizeof domain) == 0 && strcmp(domain, last) != 0) {
            mark_active(r, domain);
            memcpy(last, domain, sizeof last);
        }
    }
    send_entries(r, items, n, addrs, naddrs, 1, 1);
    free(items);
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
    send_entries(r, items, n, addrs, na, 1, 0);
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

/* Whether to ask addr for domain at head now: not while the same request is outstanding. */
static int want_new(replicate_t *r, const char *domain, uint64_t head, const char *addr)
{
    size_t i = 0;
    while (i < r->nwants && strcmp(r->wants[i].domain, domain) != 0)
        i++;
    if (i < r->nwants && r->wants[i].head == head)
        return 0;
    if (i == r->nwants) {
        if (r->nwants == MAX_WANTS) /* forget the oldest */
            memmove(r->wants, r->wants + 1, --r->nwants * sizeof r->wants[0]);
        i = r->nwants++;
        snprintf(r->wants[i].domain, sizeof r->wants[0].domain, "%s", domain);
    }
    r->wants[i].head = head;
    snprintf(r->wants[i].addr, sizeof r->wants[0].addr, "%s", addr);
    return 1;
}

/* Whether a gap request to addr is outstanding (its answer may be cut: its `more` is followed). */
static int want_to(const replicate_t *r, const char *addr)
{
    for (size_t i = 0; i < r->nwants; i++)
        if (!strcmp(r->wants[i].addr, addr))
            return 1;
    return 0;
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
        if (seen || store_catalog_head(r->st, domain, &h) < 0 || !want_new(r, domain, h.seq, from))
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
    uint64_t held;
    char tail[96];
    if (log_limit(&r->refusal_log[res], 1000, &held))
        log_warn("catalog: refused an entry from %s: %s: %s%s", from, cat_result_name(res), err,
                 log_held(tail, sizeof tail, held, cat_result_name(res)));
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

static cat_result_t store_result(int rc)
{
    switch (rc) {
    case 0: return CAT_ACCEPTED;
    case STORE_DUP: return CAT_DUPLICATE;
    case STORE_GAP: return CAT_GAP;
    case STORE_BADKEY: return CAT_WRONG_KEY;
    case STORE_BADPREV: return CAT_BAD_CHAIN;
    default: return CAT_ERROR;
    }
}

/* One received CatalogEntries message and what became of its entries. */
typedef struct {
    char from[64];
    uint8_t key[32];             /* the sender's node key (has_key) */
    int has_key;
    Trib__CatalogEntries *msg;
    size_t n;                    /* entries handled: at most FRAME_MAX_ENTRIES */
    ProtobufCBinaryData *ok, *gaps;
    size_t nok, ngaps;
} inframe_t;

/* Frames handled as one: unpacked by repl_job_new (loop), verified and stored by repl_job_run (any
 * thread: it touches only the job and the store), outcomes applied by repl_job_finish (loop). */
struct repl_job {
    inframe_t *fr;
    size_t nfr, n, nv;
    int malformed;
    entry_t *v;                  /* verified entries, in arrival order */
    const ProtobufCBinaryData **its;  /* every entry, in arrival order */
    entry_t *hv;                 /* entry k decoded (entry_decode), then verified unless held */
    entry_t **vk;                /* the decoded ones not held (verify_many's input) */
    unsigned char *held;         /* entry k is a byte-identical copy of one the store holds */
    size_t nheld;
    store_append_t *items;
    size_t *src, *srcf;          /* entry index and frame of each verified entry */
    size_t nbad;                 /* entries whose verification failed */
    size_t nuntrusted;           /* verified, refused by io.entry_ok */
    size_t *bad, *badf;
    char bad_err[256];           /* the last verification failure */
    int store_rc;
    char store_err[256];
    uint64_t verify_us, store_us;
};

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

repl_job_t *repl_job_new(replicate_t *r, const char *const *froms, const uint8_t *const *senders,
                         const uint8_t *const *bodies, const size_t *lens, size_t n)
{
    repl_job_t *j = calloc(1, sizeof *j);
    if (!j || !(j->fr = calloc(n ? n : 1, sizeof *j->fr))) {
        free(j);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        Trib__CatalogEntries *msg = trib__catalog_entries__unpack(NULL, lens[i], bodies[i]);
        if (!msg) {
            j->malformed++;
            continue;
        }
        size_t ne = msg->n_entries;
        if (ne > FRAME_MAX_ENTRIES) {
            r->stats.entries_over_cap += ne - FRAME_MAX_ENTRIES;
            ne = FRAME_MAX_ENTRIES;
        }
        inframe_t *f = &j->fr[j->nfr];
        *f = (inframe_t){.msg = msg, .n = ne, .ok = calloc(ne ? ne : 1, sizeof(ProtobufCBinaryData)),
                         .gaps = calloc(ne ? ne : 1, sizeof(ProtobufCBinaryData))};
        snprintf(f->from, sizeof f->from, "%s", froms[i]);
        if (senders && senders[i]) {
            memcpy(f->key, senders[i], sizeof f->key);
            f->has_key = 1;
        }
        if (!f->ok || !f->gaps) {
            r->stats.entries[CAT_ERROR] += ne;
            free(f->ok);
            free(f->gaps);
            trib__catalog_entries__free_unpacked(msg, NULL);
            continue;
        }
        j->n += ne;
        j->nfr++;
    }
    size_t n1 = j->n ? j->n : 1;
    j->v = calloc(n1, sizeof *j->v);
    j->items = calloc(n1, sizeof *j->items);
    j->src = calloc(n1, sizeof *j->src);
    j->srcf = calloc(n1, sizeof *j->srcf);
    j->bad = calloc(n1, sizeof *j->bad);
    j->badf = calloc(n1, sizeof *j->badf);
    j->its = calloc(n1, sizeof *j->its);
    j->vk = calloc(n1, sizeof *j->vk);
    j->held = calloc(n1, 1);
    j->hv = calloc(n1, sizeof *j->hv);
    if (!j->v || !j->items || !j->src || !j->srcf || !j->bad || !j->badf || !j->its || !j->vk || !j->held ||
        !j->hv) {
        r->stats.entries[CAT_ERROR] += j->n;
        j->n = 0;                /* nothing verified: the frames are still finished and freed */
    }
    return j;
}

/* Hands io.stored the entries the job's commit stored, in order. */
static void tell_stored(replicate_t *r, repl_job_t *j)
{
    const Trib__CatalogEntry **es = malloc(j->nv * sizeof *es);
    size_t n = 0;
    for (size_t k = 0; es && k < j->nv; k++)
        if (j->items[k].rc == 0)
            es[n++] = j->v[k].entry;
    if (n)
        r->io.stored(r->io.ctx, es, n);
    free(es);   /* out of memory: none told, the follower reads them back */
}

/* Marks in j->held the m entries of the job that are byte-identical copies of entries the store
 * holds (each verified when it was stored): in epidemic push most receptions are such copies, and
 * they need no second signature check. Each entry is decoded (j->hv[k]) but not verified yet, so
 * what it claims is only a lookup key: a copy is held when the store holds exactly its bytes at
 * the domain and seq it claims; anything else, a forgery of a held seq included, is verified. When
 * the lookup cannot be made, nothing is held and every entry is verified. */
static void find_held(replicate_t *r, repl_job_t *j, size_t m)
{
    store_copy_t *q = calloc(m ? m : 1, sizeof *q);
    if (!q)
        return;
    for (size_t k = 0; k < m; k++) {
        q[k] = (store_copy_t){.bytes = j->its[k]->data, .len = j->its[k]->len};
        if (j->hv[k].entry) {
            q[k].domain = j->hv[k].entry->domain;
            q[k].seq = j->hv[k].entry->seq;
        }
    }
    store_catalog_holds(r->st, q, m, j->held, NULL, 0);   /* failed: none held */
    free(q);
}

/* Decodes every entry of the frames, finds those held byte for byte, verifies the signatures of
 * the others (a large job on several threads: verify_many), then, in arrival order on this
 * thread, asks io.entry_ok (held copies too: a revocation since may say no) and stores the
 * verified ones of all of them in one write transaction (each checked against the head the ones
 * before it left). */
void repl_job_run(replicate_t *r, repl_job_t *j)
{
    uint64_t t0 = mono_us();
    const ProtobufCBinaryData **its = j->its;
    size_t m = 0, q = 0;
    for (size_t f = 0; f < j->nfr && j->n; f++)
        for (size_t i = 0; i < j->fr[f].n; i++)
            its[m++] = &j->fr[f].msg->entries[i];
    for (size_t k = 0; k < m; k++)
        j->vk[k] = &j->hv[k];
    if (m && verify_many(VERIFY_DECODE, its, j->vk, m, j->bad_err, sizeof j->bad_err) < m)
        find_held(r, j, m);
    for (size_t k = 0; k < m; k++)
        if (j->hv[k].entry && !j->held[k])
            j->vk[q++] = &j->hv[k];
    verify_many(VERIFY_SIGNATURE, NULL, j->vk, q, j->bad_err, sizeof j->bad_err);  /* a failing one freed */
    m = 0;
    for (size_t f = 0; f < j->nfr && j->n; f++)
        for (size_t i = 0; i < j->fr[f].n; i++) {
            const ProtobufCBinaryData *it = its[m];
            entry_t *h = &j->hv[m];
            if (j->held[m++]) {  /* trusted still? (a revocation or a new charter may say no) */
                if (r->io.entry_ok &&
                    !r->io.entry_ok(r->io.ctx, h->entry, h->signed_entry->signer.data, j->fr[f].from))
                    j->nuntrusted++;
                else
                    j->nheld++;
                entry_free(h);
                continue;
            }
            if (!h->entry) {     /* not decoded, or its signature does not verify */
                j->badf[j->nbad] = f;
                j->bad[j->nbad++] = i;
                continue;
            }
            entry_t *v = &j->v[j->nv];
            *v = *h;             /* moved: hv keeps no pointer to it */
            memset(h, 0, sizeof *h);
            if (r->io.entry_ok &&
                !r->io.entry_ok(r->io.ctx, v->entry, v->signed_entry->signer.data, j->fr[f].from)) {
                entry_free(v);
                j->nuntrusted++;
                continue;
            }
            j->items[j->nv] = (store_append_t){.entry = v->entry, .hash = v->hash,
                                               .signer = v->signed_entry->signer.data,
                                               .signed_bytes = it->data, .len = it->len,
                                               .handover = r->io.handover, .handover_ctx = r->io.ctx};
            j->srcf[j->nv] = f;
            j->src[j->nv++] = i;
        }
    uint64_t t1 = mono_us(), ignored = 0;
    store_access_counts(NULL, &ignored);
    if (j->nv)
        j->store_rc = store_catalog_append_many(r->st, j->items, j->nv, NULL, 0, j->store_err,
                                                sizeof j->store_err) < 0 ? -1 : 0;
    catalog_log_ignored_access(ignored);   /* grants: access entries kept but not indexed */
    j->verify_us = t1 - t0;
    j->store_us = mono_us() - t1;
    if (j->nv && j->store_rc == 0 && r->io.stored)
        tell_stored(r, j);
}

/* A `more` frame not followed: counted, logged at most once a second (with how many were not since). */
static void log_more_refused(replicate_t *r, const char *from, const char *why)
{
    r->stats.more_refused++;
    uint64_t held;
    char tail[96];
    if (log_limit(&r->more_log, 1000, &held))
        log_warn("catalog: not following a 'more' frame from %s: %s (trib_catalog_more_refused_total counts them "
                 "all)%s", from, why, log_held(tail, sizeof tail, held, "such frames"));
}

/* An answer cut short (more): pull the rest from our new heads with our digest, charged to the
 * frame's sender's answer budget; no other round with that peer meanwhile. Only a part of an answer
 * we are waiting for: a pull with its sender (or a gap request to it) outstanding. */
static void follow_more(replicate_t *r, const inframe_t *fr)
{
    if (!fr->msg->answer) {
        log_more_refused(r, fr->from, "the frame is no part of an answer");
        return;
    }
    if (pull_find(r, fr->from) < 0 && !want_to(r, fr->from)) {
        log_more_refused(r, fr->from, "no pull from (nor gap request to) that address is outstanding");
        return;
    }
    if (r->io.asker)
        r->io.asker(r->io.ctx, fr->has_key ? fr->key : NULL);
    if (answer_ok(r, fr->from)) {   /* refused: the chain stops, the pull expires, a round asks again */
        uint64_t ask = new_ask();
        answered(r, fr->from, send_digest(r, fr->from, 1, ask));
        pull_set(r, fr->from, ask);
    }
    if (r->io.asker)
        r->io.asker(r->io.ctx, NULL);
}

/* Sorts the outcomes per frame (accepted entries into ok, gapped ones into gaps, refusals counted and
 * logged, forks noted), then forwards, asks for gaps and pulls cut answers; frees the job. Returns
 * the number of malformed frames. */
int repl_job_finish(replicate_t *r, repl_job_t *j)
{
    char err[256];
    r->stats.verify_us += j->verify_us;
    r->stats.store_us += j->store_us;
    r->stats.entries_untrusted += j->nuntrusted;
    r->stats.entries[CAT_DUPLICATE] += j->nheld;
    r->stats.copies_unverified += j->nheld;
    for (size_t k = 0; k < j->nbad; k++) {
        r->stats.entries[CAT_BAD_SIGNATURE]++;
        log_refusal(r, CAT_BAD_SIGNATURE, j->fr[j->badf[k]].from, j->bad_err);
    }
    if (j->nv) {
        r->stats.batches++;
        if (j->store_rc != 0) {
            r->stats.batch_errors++;
            r->stats.entries[CAT_ERROR] += j->nv;
            log_refusal(r, CAT_ERROR, j->fr[j->srcf[0]].from, j->store_err);
        }
    }
    const char *marked = NULL;   /* the domain the last accepted entry marked active (same time) */
    for (size_t k = 0; k < j->nv && j->store_rc == 0; k++) {
        inframe_t *f = &j->fr[j->srcf[k]];
        const ProtobufCBinaryData *item = &f->msg->entries[j->src[k]];
        const Trib__CatalogEntry *e = j->v[k].entry;
        cat_result_t res = store_result(j->items[k].rc);
        r->stats.entries[res]++;
        if (res == CAT_ACCEPTED) {
            log_accepted(f->from, item);
            if (!marked || strcmp(marked, e->domain) != 0)
                mark_active(r, marked = e->domain);
            f->ok[f->nok++] = *item;
            if (r->io.accepted)
                r->io.accepted(r->io.ctx, item->data, item->len);
        } else if (res == CAT_GAP) {
            f->gaps[f->ngaps++] = *item;
        } else if (res == CAT_DUPLICATE) {
            check_duplicate(r, f->from, e, item);
        } else {
            if (res == CAT_BAD_CHAIN)     /* signed by the bound key (BADKEY is checked first) */
                note_fork(r, e->domain, e->seq - 1, f->from,
                          "does not chain on the entry this node holds before it");
            char hex[ID_HEX_LEN];
            identity_hex(j->v[k].signed_entry->signer.data, hex);
            if (res == CAT_WRONG_KEY)
                snprintf(err, sizeof err, "domain '%s' is bound to another key, not signer %s", e->domain, hex);
            else
                snprintf(err, sizeof err, "%s seq %llu: %s", e->domain, (unsigned long long)e->seq,
                         res == CAT_BAD_CHAIN ? "prev_hash does not match the hash of the entry before"
                                              : "refused by the store");
            log_refusal(r, res, f->from, err);
        }
    }
    for (size_t f = 0; f < j->nfr; f++) {
        inframe_t *fr = &j->fr[f];
        if (!fr->msg->final)
            forward(r, fr->from, fr->ok, fr->nok); /* forward once: only entries new to us */
        request_gaps(r, fr->from, fr->gaps, fr->ngaps);
        if (fr->msg->more) {
            follow_more(r, fr);
        } else if (fr->msg->answer && fr->msg->last) {
            pull_end(r, fr->from, fr->msg->ask);   /* the whole answer is in (and stored): rounds may start */
        } else if (fr->msg->answer) {
            /* the answer is still coming: the pull lasts PULL_MS after its last part. A push is no
             * part of it: pushing every second, the peer held a pull whose answer was lost open for
             * PULL_EXTEND_MS, no round with it meanwhile (an older peer marks nothing: its answer
             * holds the pull PULL_MS from the request only) */
            pull_extend(r, fr->from);
        }
        free(fr->ok);
        free(fr->gaps);
        trib__catalog_entries__free_unpacked(fr->msg, NULL);
    }
    for (size_t k = 0; k < j->nv; k++)
        entry_free(&j->v[k]);
    int bad = j->malformed;
    free(j->v);
    free(j->items);
    free(j->src);
    free(j->srcf);
    free(j->bad);
    free(j->badf);
    free(j->its);
    free(j->vk);
    free(j->held);
    free(j->hv);
    free(j->fr);
    free(j);
    r->stats.frames_malformed += (uint64_t)bad;
    return bad;
}

size_t repl_job_entries(const repl_job_t *j) { return j->n; }

/* Unpacks, verifies, stores and finishes the frames on this thread. Malformed ones are counted. */
static int handle_entries_many(replicate_t *r, const char *const *froms, const uint8_t *const *bodies,
                               const size_t *lens, size_t n)
{
    repl_job_t *j = repl_job_new(r, froms, NULL, bodies, lens, n);
    if (!j) {
        r->stats.entries[CAT_ERROR] += n;
        return 0;
    }
    repl_job_run(r, j);
    return repl_job_finish(r, j);
}

int repl_handle_entries(replicate_t *r, const char *const *froms, const uint8_t *const *bodies,
                        const size_t *lens, size_t n)
{
    return handle_entries_many(r, froms, bodies, lens, n) ? -1 : 0;
}

static int handle_entries(replicate_t *r, const char *from, const uint8_t *body, size_t len)
{
    int bad = handle_entries_many(r, &from, &body, &len, 1);
    r->stats.frames_malformed -= (uint64_t)bad; /* repl_handle counts it */
    return bad ? -1 : 0;
}

/* A peer lacks entries of the listed domains after the listed seqs: send them (no digest back). */
static int handle_want(replicate_t *r, const char *from, const uint8_t *body, size_t len)
{
    Trib__CatalogDigest *msg = digest_unpack(body, len);
    if (!msg)
        return -1;
    r->stats.wants_in++;
    frame_t f = {.r = r, .addr = from};
    size_t n = answer_ok(r, from) ? msg->n_heads : 0;
    for (size_t i = 0; i < n && !f.cut; i++) {
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
