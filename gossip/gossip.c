/* gossip/gossip.c - the federation actor (see gossip.h).
 *
 * One thread, one zmq_poll: the ROUTER (and ZAP) sockets of the transport plus an eventfd that
 * other threads signal. Each turn: run due SWIM timers, start an anti-entropy round when due,
 * dispatch received messages by type (membership -> swim, reads -> reads, at once), push this
 * node's newly committed entries, handle queued catalog messages for at most CATALOG_BUDGET_MS,
 * pump routed read streams (bounded per turn), then publish a fresh member snapshot if anything
 * changed.
 * Membership is never starved by catalog traffic: SWIM messages travel on a connection of their
 * own per peer (transport priority_types), are handled as soon as they are read, and catalog
 * messages (which verify and commit) wait in a bounded queue worked off in time-boxed slices, so a
 * turn never outlasts a probe timeout however much catalog traffic arrives. Nor by the store: the
 * loop never writes LMDB (member changes go to the saver, membersave.c; entries to intake.c's
 * worker; federation objects to fedlog_commit.c's), so another thread's write transaction or a
 * slow fsync never holds a probe's answer.
 *
 * Owns: the loop thread, the callbacks given to transport, SWIM, replication and reads, pushing
 * this node's committed entries in seq order (push_committed), collecting member changes for the
 * saver (membersave.c, which writes them and the incarnation to LMDB on its own thread), the
 * member and stats snapshots (under smu), lifecycle and the public API of gossip.h except
 * gossip_metrics_render (gossip_metrics.c) and gossip_own_synced / gossip_forks (intake.c).
 * Must not: verify or store received catalog entries on the loop (intake.c's worker does), wait on
 * a client, write LMDB, or read it for anything but catalog heads and its own new entries. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>
#include "gossip/clock.h"
#include "gossip/entry.h"
#include "gossip/certwait.h"
#include "gossip/fedlog.h"
#include "gossip/gossip.h"
#include "gossip/gossip_int.h"
#include "gossip/link.h"
#include "gossip/linkserve.h"
#include "gossip/log.h"
#include "gossip/membersave.h"
#include "gossip/reads.h"
#include "gossip/reads_link.h"
#include "gossip/replicate.h"
#include "gossip/roster.h"
#include "gossip/transport.h"
#include "storage/store.h"

#define PUSH_BATCH 256           /* own entries per push (frames are cut by size in replicate.c) */
#define PUSH_BYTES (4u << 20)    /* ... and bytes */
#define PUSH_ROUNDS 4            /* pushes per loop turn; more continue on the next turn */
#define PUSH_PACE_MS 100         /* while publishers are concurrent (the last push carried more than
                                    one entry: group commit joined several publishes), the next push
                                    goes no sooner than this after it, with everything committed
                                    meanwhile: one frame per member per 100 ms instead of one per
                                    group commit (each frame costs every member a wake-up, a CURVE
                                    box, a poll and a hand-over to its accept worker, and the origin
                                    as much per member). A push of one entry is never paced: a lone
                                    publish, or one publisher after another, goes out at once. */
#define FED_LIGHT_MAX (4u << 10) /* a FedSync body up to this travels on the priority lane: the buckets
                                    (3 KiB), a summary answered with every hash of a small set (2.2 KiB
                                    at most), a want, a handful of certificates; a larger object
                                    batch goes bulk, so a revocation push never queues behind more
                                    than one such message per sync step */
#define FRAME_MAX (256u << 10)   /* CatalogEntries body bound: one frame's verify + commit stays
                                    well inside CATALOG_BUDGET_MS-sized slices */

/* ------------------------------------------------------------------ callbacks */

static void swim_send(void *ctx, const uint8_t *to_id, const char *addr, int type, const uint8_t *body, size_t len)
{
    gossip_t *g = ctx;
    if (g->trust && to_id) /* chartered: the server key of addr is its node's own */
        transport_set_peer(g->tr, addr, to_id, TRANSPORT_PEER_CLAIM);
    transport_send(g->tr, addr, type, body, len);
}

/* Anti-entropy rides on SWIM: the openers of a due round (our catalog summary and federation-log
 * summary) go on the next probe Ping, to the member probed, instead of as two messages of their own
 * to random peers. On TCP each message of its own costs a segment, its ACK and ~90 bytes of
 * envelope and CURVE framing; riding costs ~60 bytes on a Ping that is sent anyway. */
static size_t swim_rider_out(void *ctx, const uint8_t *to_id, const char *addr, uint8_t *buf, size_t cap)
{
    gossip_t *g = ctx;
    if (!g->ae_due)
        return 0;
    g->ae_due = 0;
    uint8_t cs[64], fs[64];
    Trib__AntiEntropy ae = TRIB__ANTI_ENTROPY__INIT;
    /* Not while received entries wait: our digest would ask again for what is queued. */
    if (!g->chead)
        ae.catalog_summary = (ProtobufCBinaryData){repl_sync_opener(g->repl, addr, cs, sizeof cs), cs};
    if (g->o.fedlog)
        ae.fed_sync = (ProtobufCBinaryData){fedlog_sync_opener(g->o.fedlog, fs, sizeof fs), fs};
    size_t len = trib__anti_entropy__get_packed_size(&ae);
    return len && len <= cap ? trib__anti_entropy__pack(&ae, buf) : 0;
}

/* A rider's openers, handled as the messages they stand for would be. */
static void swim_rider_in(void *ctx, const uint8_t *from, const char *from_addr, const uint8_t *b, size_t len)
{
    gossip_t *g = ctx;
    Trib__AntiEntropy *ae = trib__anti_entropy__unpack(NULL, len, b);
    if (!ae) {
        g->riders_malformed++;
        return;
    }
    /* A catalog summary waits for nothing queued: dropped while entries wait (the next round asks again). */
    g->asker = from;             /* answers are charged to it (answers.c) */
    if (ae->catalog_summary.len && !g->chead && !g->wbusy)
        repl_handle(g->repl, from_addr, TRIB__MSG_TYPE__MSG_CATALOG_SUMMARY, ae->catalog_summary.data,
                    ae->catalog_summary.len);
    if (ae->fed_sync.len && g->o.fedlog)
        fedlog_handle(g->o.fedlog, from_addr, TRIB__MSG_TYPE__MSG_FED_SYNC, ae->fed_sync.data, ae->fed_sync.len);
    g->asker = NULL;
    trib__anti_entropy__free_unpacked(ae, NULL);
}

#define SAVE_MS 1000
#define JOIN_RETRY_MS 2000           /* the round at start asked again after this, while nothing is heard */
#define JOIN_RETRIES 4
#define UNSAVED_MAX 8192             /* changes collected at most: a longer backlog is handed over at
                                        once, or, while the saver still saves the previous batch,
                                        kept to the newest change of each member (membersave_compact) */

/* Hands the member changes and our incarnation collected since the last hand-over to the saver
 * (membersave.c), which writes them off the loop; while it still saves the previous batch they
 * stay, and what comes meanwhile joins them: one batch out at a time, so the store never holds an
 * earlier change of a member over a later one. Never waits, but at stop (wait). */
static void save_members(gossip_t *g, int wait)
{
    if ((!g->nunsaved && !g->self_inc) || !membersave_offer(g->saver, g->unsaved, g->nunsaved, g->self_inc, wait))
        return;
    g->unsaved = NULL;
    g->nunsaved = g->capunsaved = g->ncompacted = 0;
    g->self_inc = 0;
}

/* Queues one change (member NULL: a removal); takes member. */
static void unsaved_add(gossip_t *g, const uint8_t id[ID_PK_LEN], uint8_t *member, size_t len)
{
    if (g->nunsaved >= UNSAVED_MAX)
        save_members(g, 0);
    if (g->nunsaved >= UNSAVED_MAX && g->nunsaved > g->ncompacted)
        g->nunsaved = g->ncompacted = membersave_compact(g->unsaved, g->nunsaved);
    if (g->nunsaved >= UNSAVED_MAX) {   /* as many members changed while the saver was held: a change
                                           of one of them replaces its last, any other is lost */
        for (size_t i = 0; i < g->nunsaved; i++)
            if (!memcmp(g->unsaved[i].id, id, ID_PK_LEN)) {
                free((void *)g->unsaved[i].member);
                g->unsaved[i].member = member;
                g->unsaved[i].len = len;
                return;
            }
        free(member);
        g->members_unsaved++;
        return;
    }
    if (g->nunsaved == g->capunsaved) {
        size_t cap = g->capunsaved ? g->capunsaved * 2 : 64;
        store_member_change_t *p = realloc(g->unsaved, cap * sizeof *p);
        if (!p) {
            free(member);
            g->members_unsaved++;
            return;
        }
        g->unsaved = p;
        g->capunsaved = cap;
    }
    store_member_change_t *c = &g->unsaved[g->nunsaved++];
    memcpy(c->id, id, ID_PK_LEN);
    c->member = member;
    c->len = len;
}

static int handover(void *ctx, const char *domain, const uint8_t *from, const uint8_t *to)
{
    gossip_t *g = ctx;
    return trust_handover(g->trust, domain, from, to);
}

/* Catalog messages this node has heard (round openers, digests, entries of any outcome). */
static uint64_t join_heard_now(const gossip_t *g)
{
    const repl_stats_t *st = repl_stats(g->repl);
    uint64_t n = st->summaries_in + st->digests_in;
    for (int i = 0; i < CAT_RESULT_COUNT; i++)
        n += st->entries[i];
    return n;
}

/* The round at start is one message each way, and either can be lost: an answer queued on the
 * connection a peer was replacing as this node came back (a restart right after the others marked
 * it dead) never came, and the next round was an anti-entropy period away (a minute, where set
 * so). While nothing of the catalog has been heard since, it is asked again, JOIN_RETRY_MS apart,
 * JOIN_RETRIES times at most; anything heard ends it (a second round while the first's answer
 * streams in would fetch what it brings twice). */
static void join_retry(gossip_t *g, uint64_t now)
{
    if (!g->join_synced || g->join_retries >= JOIN_RETRIES || now < g->join_sync_ms + JOIN_RETRY_MS)
        return;
    uint64_t heard = join_heard_now(g);
    if (heard != g->join_heard || g->chead) {
        g->join_retries = JOIN_RETRIES;   /* answered, or catalog traffic flows: anti-entropy goes on */
        return;
    }
    g->join_retries++;
    g->join_sync_ms = now;
    log_debug("catalog: nothing heard %u ms after the round at start with %s: asked again (%d of %d)",
              (unsigned)JOIN_RETRY_MS, g->join_addr, g->join_retries, JOIN_RETRIES);
    repl_sync(g->repl, g->join_addr);
}

static void member_changed(void *ctx, const Trib__Member *m, int old_state)
{
    gossip_t *g = ctx;
    g->dirty = 1;
    char hex[ID_HEX_LEN] = "?";
    if (m->id.len == ID_PK_LEN)
        identity_hex(m->id.data, hex);
    if (old_state != (int)m->state && m->id.len == ID_PK_LEN &&
        (m->state == TRIB__MEMBER_STATE__DEAD || m->state == TRIB__MEMBER_STATE__LEFT))
        reads_peer_lost(g->reads, m->id.data, swim_state_name((int)m->state));
    if (old_state != (int)m->state)
        log_info("member %s (%s) at %s: %s -> %s (incarnation %" PRIu64 ")", m->domain, hex, m->addr,
                 old_state == SWIM_NEW ? "new" : swim_state_name(old_state), swim_state_name((int)m->state),
                 m->incarnation);
    if (m->id.len != ID_PK_LEN)
        return;
    gossip__seeds_member(g, m);
    /* a member entry is a claim, as anyone may gossip it: it binds an address with no key, and
     * replaces one only as transport_set_peer allows (a rotated node: gossip__rebind) */
    if (g->trust && m->addr && m->state == TRIB__MEMBER_STATE__ALIVE)
        transport_set_peer(g->tr, m->addr, m->id.data, TRANSPORT_PEER_CLAIM);
    if (!memcmp(m->id.data, g->id.pk, ID_PK_LEN)) {
        g->self_inc = m->incarnation ? m->incarnation : g->self_inc;
        return;
    }
    if (m->state == TRIB__MEMBER_STATE__ALIVE)
        g->warm_due = 1;         /* its priority connection opens on the loop (conns.c) */
    gossip__conns_member(g, m, old_state);
    if (m->state == TRIB__MEMBER_STATE__ALIVE && old_state != TRIB__MEMBER_STATE__ALIVE &&
        old_state != TRIB__MEMBER_STATE__SUSPECT)
        gossip__member_back(g, m->id.data);   /* our pushes meanwhile went on without it (returned.c) */
    /* A member (back) in sight may have missed pushes (a revocation): compare federation logs now,
     * not at the next anti-entropy round (one summary message when they agree). Only a node that
     * holds something starts it: a join of empty logs opens no extra connections. Members first in
     * sight start at most one round per anti-entropy period: a joiner learns the whole table at
     * once from its seed (the seed first), and one round with any settled member brings it the
     * log; a round with each of them, and each of them with it, made a chartered federation of N
     * nodes joining at once exchange ~5 N^2 sync messages (every log holds its node's own
     * certificate, so every pair differed) on as many extra connections, and its probes timed out. */
    uint32_t held = 0;
    uint8_t sum[TRUST_HASH_LEN];
    uint64_t now = clock_ms();
    int first = old_state == SWIM_NEW;
    if (g->o.fedlog && m->addr && m->state == TRIB__MEMBER_STATE__ALIVE && old_state != (int)m->state &&
        old_state != TRIB__MEMBER_STATE__SUSPECT &&
        (!first || !g->fed_new_sync_ms || now - g->fed_new_sync_ms >= g->o.anti_entropy_ms) &&
        (fedlog_summary(g->o.fedlog, &held, sum), held > 0)) {
        if (first)
            g->fed_new_sync_ms = now;
        fedlog_sync(g->o.fedlog, m->addr);
    }
    /* A node just started asks for the catalog at once, not at its first anti-entropy round (a
     * random member, anti_entropy_ms on: 20 nodes joining at once had an entry their seed held
     * ~7 s after they had every member, the time an epidemic of such rounds takes to reach them
     * all): of the first seed seen alive (the first member seen may be another joiner, holding
     * nothing yet), or of the first member seen alive when it has no seeds (a restart from its
     * stored members). One round in a process's life: a second one at once, with another peer,
     * made a catch-up of 100,000 entries receive 95 % of them twice. */
    if (!g->join_synced && m->addr && m->state == TRIB__MEMBER_STATE__ALIVE && old_state != (int)m->state &&
        !g->chead && (swim_seeds(g->swim) == 0 || swim_is_seed(g->swim, m->addr))) {
        g->join_synced = 1;
        log_debug("catalog: a first round at once with %s at %s, %s", m->domain, m->addr,
                  swim_seeds(g->swim) ? "a seed seen alive" : "the first member seen alive");
        snprintf(g->join_addr, sizeof g->join_addr, "%s", m->addr);
        g->join_sync_ms = clock_ms();
        g->join_heard = join_heard_now(g);
        repl_sync(g->repl, m->addr);
    }
    size_t len = trib__member__get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return;
    trib__member__pack(m, buf);
    unsaved_add(g, m->id.data, buf, len);
}

/* swim_io_t.retired: chartered, a held hand-over signed by id gives its domain to another key. */
static int member_retired(void *ctx, const uint8_t id[SWIM_ID_LEN])
{
    gossip_t *g = ctx;
    return g->trust && trust_handed_over(g->trust, id);
}

typedef struct {
    gossip_t *g;
    uint8_t (*ids)[ID_PK_LEN];
    size_t n, cap;
} retire_t;

static void retire_one(void *ctx, const Trib__Member *m)
{
    retire_t *r = ctx;
    if (m->id.len != ID_PK_LEN || !member_retired(r->g, m->id.data) || r->n == r->cap)
        return;
    memcpy(r->ids[r->n++], m->id.data, ID_PK_LEN);
}

/* A hand-over newly held (or held at start, the members restored): the old key's entry is left
 * here at once (swim_retire), not when its own LEFT reaches us or our probes of it fail. Until
 * then its ALIVE entry went on being gossiped and probed, and a LEFT or DEAD one retried, each a
 * claim of its address by the key that gave it up (refused, trib_peer_keys_total{event=
 * "refused_retired"}): 17-91 per peer over a soak of 4-9 rotations. */
void gossip__retire_handed_over(gossip_t *g)
{
    if (!g->trust || !trust_rotation_count(g->trust))
        return;
    retire_t r = {g, NULL, 0, swim_count(g->swim, -1)};
    if (!(r.ids = malloc(r.cap * sizeof *r.ids)))
        return;
    swim_foreach(g->swim, retire_one, &r);
    uint64_t now = clock_ms();
    for (size_t i = 0; i < r.n; i++)
        if (swim_retire(g->swim, r.ids[i], now)) {
            g->dirty = 1;
            reads_peer_lost(g->reads, r.ids[i], "left");
            char hex[ID_HEX_LEN];
            identity_hex(r.ids[i], hex);
            log_info("member %.16s...: left (its key handed over to another)", hex);
        }
    free(r.ids);
}

/* A member claim refused for want of its member's signature: one line a second at most (a
 * hostile peer cannot flood the log; trib_swim_claims_refused_total counts every one). */
static void member_claim_refused(void *ctx, const uint8_t *from, const Trib__Member *c, int reason)
{
    gossip_t *g = ctx;
    uint64_t held;
    if (!log_limit(&g->swim_refused_log, 1000, &held))
        return;
    char fhex[ID_HEX_LEN], chex[ID_HEX_LEN], tail[96];
    identity_hex(from, fhex);
    identity_hex(c->id.data, chex);
    log_warn("gossip: refused a member claim from %.16s...: %s %.16s... (%s) at %s, incarnation %" PRIu64
             ": %s signature of the member%s", fhex, swim_state_name((int)c->state), chex, c->domain, c->addr,
             c->incarnation,
             reason == SWIM_REFUSED_UNSIGNED ? "no" : reason == SWIM_REFUSED_FORGED ? "not the"
             : reason == SWIM_REFUSED_OVER_BUDGET ? "unchecked (over the per-message budget)"
                                                  : "unchecked, after a forged",
             log_held(tail, sizeof tail, held, "refused"));
}

static void member_removed(void *ctx, const uint8_t id[SWIM_ID_LEN])
{
    gossip_t *g = ctx;
    g->dirty = 1;
    unsaved_add(g, id, NULL, 0);
}

static void repl_send(void *ctx, const char *addr, int type, const uint8_t *body, size_t len)
{
    gossip_t *g = ctx;
    transport_send(g->tr, addr, type, body, len);
}

static int reads_send(void *ctx, const char *addr, int type, const uint8_t *body, size_t len)
{
    gossip_t *g = ctx;
    return transport_send(g->tr, addr, type, body, len);
}

static int reads_send_bulk(void *ctx, const char *addr, int type, const uint8_t *body, size_t len)
{
    gossip_t *g = ctx;
    return transport_send_bulk(g->tr, addr, type, body, len);
}

static size_t reads_drop_bulk(void *ctx, const char *addr)
{
    gossip_t *g = ctx;
    return transport_drop_bulk(g->tr, addr);
}

static void reads_wake(void *ctx) { gossip__wake(ctx); }

/* The alive member of domain whose key old handed the domain over to (chartered: a held hand-over
 * or a continuing certificate), out of the latest snapshot. 1 found, 0 none (yet). */
static int successor_of(gossip_t *g, const char *domain, const uint8_t old[32], gossip_member_t *out)
{
    int found = 0;
    pthread_mutex_lock(&g->smu);
    for (size_t i = 0; i < g->nsnap && !found; i++) {
        const gossip_member_t *m = &g->snap[i];
        if (m->self || m->uncertified || m->state != TRIB__MEMBER_STATE__ALIVE || strcmp(m->domain, domain) != 0 ||
            !memcmp(m->id, old, 32) || trust_handover(g->trust, domain, old, m->id) != 1)
            continue;
        *out = *m;
        found = 1;
    }
    pthread_mutex_unlock(&g->smu);
    return found;
}

/* reads_io_t.successor: routed reads follow an owner's live key rotation (gossip/reads.h). */
static int reads_successor(void *ctx, const char *domain, const uint8_t old[32], uint8_t next[32], char *addr,
                           size_t addrlen, char *desc, size_t desclen)
{
    gossip_t *g = ctx;
    gossip_member_t m;
    const Trib__Member *back = swim_find(g->swim, old);   /* the loop's own view, not the snapshot */
    int came_back = back && back->state == TRIB__MEMBER_STATE__ALIVE && back->addr;
    if (came_back) {   /* it left and came back, still certified for the domain (not revoked meanwhile) */
        char why[400];
        memcpy(m.id, old, 32);
        snprintf(m.domain, sizeof m.domain, "%s", domain);
        snprintf(m.addr, sizeof m.addr, "%s", back->addr);
        came_back = gossip_member_why(g, &m, why, sizeof why) == TRUST_OK;
    }
    if (!came_back && !successor_of(g, domain, old, &m))
        return 0;
    char hex[ID_HEX_LEN];
    identity_hex(m.id, hex);
    memcpy(next, m.id, 32);
    snprintf(addr, addrlen, "%s", m.addr);
    snprintf(desc, desclen, "owner node %.12s (domain %s) at %s", hex, m.domain, m.addr);
    return 1;
}

/* Up to gossip_nodes random alive peers: the fan-out of pushes and of forwarding. */
static size_t fanout_peers(void *ctx, const char **addrs, size_t max)
{
    gossip_t *g = ctx;
    const Trib__Member *peers[64];
    size_t k = g->o.swim.gossip_nodes < max ? g->o.swim.gossip_nodes : max;
    size_t n = swim_random_alive(g->swim, k < 64 ? k : 64, peers);
    for (size_t i = 0; i < n; i++)
        addrs[i] = peers[i]->addr;
    return n;
}

/* A new entry of this node goes straight to every alive member (up to ORIGIN_PUSH_MAX): catalog
 * changes are rare (a team publishes a few times a day), so one verified hop to everyone is cheap
 * and the fastest. Forwarding on accept (to gossip_nodes peers) and anti-entropy cover loss and
 * larger federations. */
#define ORIGIN_PUSH_MAX 256

/* The queued entries, together in frames, to every alive member (marked final: not forwarded)
 * when they are all listed; beyond ORIGIN_PUSH_MAX members, to that many and forwarded. */
static void push_entries(gossip_t *g, const uint8_t *const *entries, const size_t *lens, size_t n)
{
    const Trib__Member *peers[ORIGIN_PUSH_MAX];
    const char *addrs[ORIGIN_PUSH_MAX];
    size_t alive = swim_count(g->swim, TRIB__MEMBER_STATE__ALIVE) + swim_count(g->swim, TRIB__MEMBER_STATE__SUSPECT);
    size_t np = swim_random_alive(g->swim, ORIGIN_PUSH_MAX, peers);
    for (size_t i = 0; i < np; i++)
        addrs[i] = peers[i]->addr;
    if (alive <= ORIGIN_PUSH_MAX + 1) {
        repl_push_all(g->repl, entries, lens, n, addrs, np);
        return;
    }
    for (size_t i = 0; i < n; i++)
        repl_push(g->repl, entries[i], lens[i], addrs, np);
}

/* Every alive member (up to max): where federation objects are pushed. */
/* The federation log's pushes (revocations first) go to every alive or suspect member: a member
 * a busy moment made suspect is most likely alive, and skipping it left it to anti-entropy. */
typedef struct {
    const gossip_t *g;
    const char **addrs;
    size_t n, max;
} peers_ctx_t;

static void reachable_one(void *ctx, const Trib__Member *m)
{
    peers_ctx_t *p = ctx;
    if (p->n < p->max && m->addr && m->id.len == ID_PK_LEN && memcmp(m->id.data, p->g->id.pk, ID_PK_LEN) &&
        (m->state == TRIB__MEMBER_STATE__ALIVE || m->state == TRIB__MEMBER_STATE__SUSPECT))
        p->addrs[p->n++] = m->addr;
}

static size_t all_peers(void *ctx, const char **addrs, size_t max)
{
    gossip_t *g = ctx;
    peers_ctx_t p = {.g = g, .addrs = addrs, .max = max};
    swim_foreach(g->swim, reachable_one, &p);
    return p.n;
}

static uint64_t repl_now(void *ctx)
{
    (void)ctx;
    return clock_ms();
}

/* An entry from a peer was accepted (replicate forwards it itself): readers are woken once per
 * job of entries, when it is reaped (intake.c), not once per entry. */
static void entry_accepted(void *ctx, const uint8_t *entry, size_t len)
{
    gossip_t *g = ctx;
    (void)entry, (void)len;
    g->accepted_new = 1;
}

/* The entries a job of the intake worker stored, decoded: to the node's catalog follower. */
static void entries_stored(void *ctx, const Trib__CatalogEntry *const *entries, size_t n)
{
    gossip_t *g = ctx;
    if (g->o.on_stored)
        g->o.on_stored(g->o.ctx, entries, n);
}

/* ------------------------------------------------------------------ snapshot */

typedef struct {
    gossip_t *g;
    gossip_member_t *list;
    size_t n, cap;
} snap_ctx_t;

static void snap_one(void *ctx, const Trib__Member *m)
{
    snap_ctx_t *s = ctx;
    if (s->n == s->cap)
        return;
    gossip_member_t *o = &s->list[s->n++];
    memset(o, 0, sizeof *o);
    if (m->id.len == 32)
        memcpy(o->id, m->id.data, 32);
    snprintf(o->domain, sizeof o->domain, "%s", m->domain ? m->domain : "");
    snprintf(o->addr, sizeof o->addr, "%s", m->addr ? m->addr : "");
    snprintf(o->http, sizeof o->http, "%s", m->http ? m->http : "");
    snprintf(o->link, sizeof o->link, "%s", m->link ? m->link : "");
    o->incarnation = m->incarnation;
    o->state = (int)m->state;
    o->self = !memcmp(o->id, s->g->id.pk, 32);
    o->unconfirmed = swim_unconfirmed(s->g->swim, o->id);
    gossip__member_cert(s->g, o);
}

/* Open mode: a conflicting domain claim is logged when first seen (chartered mode never admits an
 * uncertified twin). */
static void log_conflict(void *ctx, size_t nth, const gossip_member_t *x, const gossip_member_t *y)
{
    gossip_t *g = ctx;
    if (g->trust || nth <= g->conflicts_logged)
        return;
    char a[ID_HEX_LEN], b[ID_HEX_LEN];
    identity_hex(x->id, a);
    identity_hex(y->id, b);
    log_warn("CONFLICT: domain '%s' is claimed by two nodes, %.16s... at %s and %.16s... at %s; the catalog "
             "keeps the key it saw first for this domain (open mode: trust on first use); run a chartered "
             "federation (--charter) to make domain ownership provable", x->domain, a, x->addr, b, y->addr);
}

static void publish_snapshot(gossip_t *g)
{
    size_t cap = swim_count(g->swim, -1);
    snap_ctx_t s = {g, calloc(cap ? cap : 1, sizeof(gossip_member_t)), 0, cap};
    if (!s.list)
        return;
    /* judged again from the first instant a verdict may change (a certificate's start or end, a
     * revocation taking effect, an overlap's end: gossip__own_cert_check) */
    g->snap_judged_ms = clock_wall_ms();
    g->snap_redo_ms = g->trust ? trust_next_change(g->trust, g->snap_judged_ms) : 0;
    swim_foreach(g->swim, snap_one, &s);
    roster_sort(s.list, s.n);
    s.n = roster_drop_handed_over(g->trust, s.list, s.n);
    g->conflicts_logged = roster_mark_conflicts(s.list, s.n, log_conflict, g);
    /* the members by state as the snapshot lists them (trib_members, as /v1/status counts them):
     * a key handed over to its successor is dropped above, an uncertified one counted apart */
    size_t uncert[4] = {0}, members[4] = {0};
    for (size_t i = 0; i < s.n; i++)
        if (s.list[i].state >= 0 && s.list[i].state < 4)
            (s.list[i].uncertified ? uncert : members)[s.list[i].state]++;
    g->snap_unconfirmed = swim_unconfirmed_count(g->swim);
    pthread_mutex_lock(&g->smu);
    free(g->snap);
    g->snap = s.list;
    g->nsnap = s.n;
    memcpy(g->uncert, uncert, sizeof uncert);
    memcpy(g->snap_counts, members, sizeof members);
    pthread_cond_broadcast(&g->snapcv);
    pthread_mutex_unlock(&g->smu);
    g->dirty = 0;
    gossip__owners_untrusted(g);
}

/* A read waiting for word of an unconfirmed owner has the loop ask it (and any other unconfirmed
 * member) this often: the retry at the node's start often goes before the connection is up, and
 * the next one only retry_base_ms later. */
#define ASK_UNCONFIRMED_MS 200

#define HANDSHAKE_LOG_MS 10000

/* Failed handshakes (a peer with another federation secret, or not a Tributary node) are logged,
 * at most once per HANDSHAKE_LOG_MS with the count since the last line: they are otherwise silent,
 * and a node that cannot talk to anyone looks like a one-member federation. */
static void log_handshakes(gossip_t *g, const transport_stats_t *ts)
{
    uint64_t in = ts->handshake_failed_in - g->hs_in, out = ts->handshake_failed_out - g->hs_out, now = clock_ms();
    if (!in && !out)
        return;
    if (g->hs_log_ms && now - g->hs_log_ms < HANDSHAKE_LOG_MS)
        return;
    g->hs_log_ms = now;
    g->hs_in = ts->handshake_failed_in;
    g->hs_out = ts->handshake_failed_out;
    log_warn("peer transport: %" PRIu64 " handshake(s) failed (%" PRIu64 " of connections to peers, %" PRIu64
             " of incoming ones); the last, with %s: %s", in + out, out, in, ts->last_handshake_peer,
             ts->last_handshake_error);
}

/* Refused claims of a peer's address (another node's key there) are logged at most once per
 * HANDSHAKE_LOG_MS, with the count since the last line. */
static void log_key_claims(gossip_t *g, const transport_stats_t *ts)
{
    uint64_t n = ts->peer_key_refused - g->claims_logged, now = clock_ms();
    if (!n || (g->claims_log_ms && now - g->claims_log_ms < HANDSHAKE_LOG_MS))
        return;
    g->claims_log_ms = now;
    g->claims_logged = ts->peer_key_refused;
    log_warn("peer transport: refused %" PRIu64 " claim(s) of a peer address held by another node's key (the "
             "address keeps its key; a certified peer advertising an address not its own?); the last: %s", n,
             ts->last_key_claim);
}

/* Our own key announced alive at another address (swim_stats.self_elsewhere): another agent runs
 * with this node's key, most often on a copy of its data dir (a backup restored on a spare machine
 * while this node runs). Both refute each other, so peers follow whichever spoke last, and when the
 * copy stops they take this node as left until the next push-pull: said at error, at most once per
 * HANDSHAKE_LOG_MS, with the count since the last line. */
static void log_self_elsewhere(gossip_t *g, const swim_stats_t *ss)
{
    uint64_t n = ss->self_elsewhere - g->twins_logged, now = clock_ms();
    if (!n || (g->twins_log_ms && now - g->twins_log_ms < HANDSHAKE_LOG_MS))
        return;
    g->twins_log_ms = now;
    g->twins_logged = ss->self_elsewhere;
    log_error("membership: another agent runs with this node's key (%.16s...): it announces this node alive at %s, "
              "not %s (%" PRIu64 " time(s) since the last line); a copy of this data dir started elsewhere? Peers "
              "follow whichever of the two spoke last, and take this node as left when the copy stops: stop the "
              "copy (one running agent per data dir and its copies, docs/deploy.md \"Backup and restore\")",
              g->id.hex, ss->last_self_elsewhere, g->advertise, n);
}

static void publish_stats(gossip_t *g)
{
    log_handshakes(g, transport_stats(g->tr));
    log_key_claims(g, transport_stats(g->tr));
    log_self_elsewhere(g, swim_stats(g->swim));
    gossip__own_cert_check(g);
    gossip__uncertified_check(g);
    gossip__hello_store(g, atomic_load(&g->stop));
    pthread_mutex_lock(&g->smu);
    g->swim_stats = *swim_stats(g->swim);
    g->repl_stats = *repl_stats(g->repl);
    g->tr_stats = *transport_stats(g->tr);
    g->tr_bulk_pub = transport_bulk_bytes(g->tr);
    g->uncert_pub = 0;
    for (int s = 0; s < 4; s++) {   /* the snapshot's: an uncertified or handed-over key is no member */
        g->counts[s] = g->snap_counts[s];
        g->uncert_pub += g->uncert[s];
    }
    g->health = swim_health(g->swim);
    g->catalog_dropped_pub = g->catalog_dropped;
    g->riders_malformed_pub = g->riders_malformed;
    g->conns_closed_gone_pub = g->conns_closed_gone;
    g->nforks = repl_forks(g->repl, g->forks, REPL_FORKS_MAX);
    membersave_stats(g->saver, &g->msave_stats);
    g->members_unsaved_pub = g->members_unsaved;
    pthread_mutex_unlock(&g->smu);
}

/* ------------------------------------------------------------------ the loop */

static int is_swim_type(int t)
{
    return t == TRIB__MSG_TYPE__MSG_PING || t == TRIB__MSG_TYPE__MSG_ACK || t == TRIB__MSG_TYPE__MSG_PING_REQ ||
           t == TRIB__MSG_TYPE__MSG_NACK || t == TRIB__MSG_TYPE__MSG_PUSH_PULL;
}

static int is_fed_type(int t)
{
    return t == TRIB__MSG_TYPE__MSG_FED_PUSH || t == TRIB__MSG_TYPE__MSG_FED_SYNC;
}

static int is_read_type(int t)
{
    return t == TRIB__MSG_TYPE__MSG_READ_REQ || t == TRIB__MSG_TYPE__MSG_READ_BATCH ||
           t == TRIB__MSG_TYPE__MSG_READ_CREDIT || t == TRIB__MSG_TYPE__MSG_READ_CANCEL;
}

/* Entries read from the store for one push: copies, in seq order. */
typedef struct {
    uint8_t *entries[PUSH_BATCH];
    size_t lens[PUSH_BATCH], n;
    uint64_t last;
} push_read_t;

static int push_read(void *ctx, uint64_t seq, const uint8_t *bytes, size_t len)
{
    push_read_t *p = ctx;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return 1;
    memcpy(copy, bytes, len);
    p->entries[p->n] = copy;
    p->lens[p->n++] = len;
    p->last = seq;
    return p->n == PUSH_BATCH;
}

/* Pushes this node's entries committed since the last push, in seq order, read from the store (an
 * announcement only rings the bell): concurrent publishes are committed together and announced by
 * their threads in any order, some late when a thread waits for a CPU; reading the committed head
 * pushes every entry once, in order and together (one frame per push, not one per thread), and
 * never as a gap its receivers would have to ask for again. The loop calls it when announced, but
 * after a push of several entries not before push_next_ms (PUSH_PACE_MS). */
static void push_committed(gossip_t *g)
{
    size_t pushed = 0;
    int round;
    g->push_due = 0;
    for (round = 0; round < PUSH_ROUNDS; round++) {
        store_head_t h;
        if (store_catalog_head(g->st, g->domain, &h) != 0 || h.seq <= g->pushed_seq)
            break;
        push_read_t p = {.n = 0};
        store_catalog_scan(g->st, g->domain, g->pushed_seq + 1, PUSH_BYTES, push_read, &p);
        if (p.n) {
            push_entries(g, (const uint8_t *const *)p.entries, p.lens, p.n);
            g->pushed_seq = p.last;
            pushed += p.n;
        }
        for (size_t i = 0; i < p.n; i++)
            free(p.entries[i]);
        if (!p.n)
            break;               /* unreadable: anti-entropy carries them */
    }
    if (pushed)
        g->push_next_ms = pushed > 1 ? clock_ms() + PUSH_PACE_MS : 0;
    if (round < PUSH_ROUNDS)
        return;
    g->push_next_ms = 0;             /* more: the next turn goes on, after membership's messages */
    atomic_store(&g->announced, 1);
    gossip__wake(g);
}

/* A rotation asked by gossip_rekey, on the loop, in one turn (no message goes out meanwhile):
 * first what can fail, each undone if a later one fails: the certificate presented (the previous
 * one is kept for that), the listener (transport_rekey restores the old key itself), the caller's
 * commit. Only then membership (the old key left, the new one alive: peers hear of the new key
 * from here on) and our own id. */
static void rekey_step(gossip_t *g)
{
    pthread_mutex_lock(&g->rkmu);
    if (!g->rk_pending) {
        pthread_mutex_unlock(&g->rkmu);
        return;
    }
    char err[300] = "", e2[200];
    cert_t c;
    int rc = -1;
    const uint8_t *prev = g->rk_hello ? g->rk_hello : g->o.cert;   /* presented until now */
    size_t prev_len = g->rk_hello ? g->rk_hello_len : g->o.cert_len;
    uint8_t *copy = malloc(g->rk_len ? g->rk_len : 1);
    identity_t old = g->id;
    if (!copy || cert_parse(g->rk_cert, g->rk_len, &c, err, sizeof err) != 0) {
        if (!err[0])
            snprintf(err, sizeof err, "out of memory");
        free(copy);
        goto out;
    }
    if (transport_set_hello(g->tr, g->rk_cert, g->rk_len, gossip__hello, g) != 0) {
        snprintf(err, sizeof err, "the new certificate is too large to present");
        goto undo;
    }
    if ((rc = transport_rekey(g->tr, g->rk_id, err, sizeof err)) != 0)
        goto undo_hello;            /* -2: not listening at all */
    if (g->rk_commit && g->rk_commit(g->rk_ctx, err, sizeof err) != 0) {
        rc = -1;
        if (transport_rekey(g->tr, &old, e2, sizeof e2) != 0) {   /* on neither key whole */
            size_t n = strlen(err);
            snprintf(err + n, sizeof err - n, "; back to the old key: %s", e2);
            rc = -2;
        }
        goto undo_hello;
    }
    g->id = *g->rk_id;              /* committed */
    memcpy(copy, g->rk_cert, g->rk_len);
    free(g->rk_hello);
    g->rk_hello = copy;
    g->rk_hello_len = g->rk_len;
    g->own_not_after_ms = c.not_after_ms;
    cert_free(&c);
    g->dirty = 1;
    g->warm_due = 1;                /* connections made as the old key are gone */
    rc = 0;
    reads_rekeyed(g->reads, clock_ms());   /* streams the old key opened at their owners */
    linkpool_flush(g->pool);               /* links made as the old key (new ones dial as this one) */
    if (swim_rekey(g->swim, g->id.pk, g->id.sk, clock_ms()) != 0) {   /* out of memory: the restart makes it whole */
        snprintf(err, sizeof err, "out of memory announcing the new key");
        rc = -2;
    }
    log_info("gossip: now speaking as %.16s... on %s", g->id.hex, g->advertise);
    goto out;
undo_hello:
    if (transport_set_hello(g->tr, prev, prev_len, gossip__hello, g) != 0)
        log_error("gossip: undoing a key rotation: cannot present the previous certificate again (out of memory)");
undo:
    log_error("gossip: the key rotation to %.16s... was not made (%s): still speaking as %.16s...", g->rk_id->hex,
              err, g->id.hex);
    cert_free(&c);
    free(copy);
out:
    identity_wipe(&old);
    g->rk_rc = rc;
    snprintf(g->rk_err, sizeof g->rk_err, "%s", err);
    g->rk_pending = 0;
    g->rk_done = 1;
    pthread_cond_broadcast(&g->rkcv);
    pthread_mutex_unlock(&g->rkmu);
}

void gossip__own_key(gossip_t *g, uint8_t curve_pk[32], int64_t *not_after_ms)
{
    pthread_mutex_lock(&g->rkmu);
    memcpy(curve_pk, g->id.curve_pk, 32);
    if (not_after_ms)
        *not_after_ms = g->own_not_after_ms;
    pthread_mutex_unlock(&g->rkmu);
}

int gossip_rekey(gossip_t *g, const identity_t *id, const uint8_t *cert, size_t len, gossip_commit_fn commit,
                 void *ctx, char *err, size_t errlen)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    pthread_mutex_lock(&g->rkmu);
    g->rk_id = id;
    g->rk_cert = cert;
    g->rk_len = len;
    g->rk_commit = commit;
    g->rk_ctx = ctx;
    g->rk_done = 0;
    g->rk_pending = 1;
    gossip__wake(g);
    while (!g->rk_done && pthread_cond_timedwait(&g->rkcv, &g->rkmu, &dl) == 0)
        ;
    int rc = g->rk_done ? g->rk_rc : -1;
    if (!g->rk_done) {
        g->rk_pending = 0;          /* not taken: nothing changed */
        snprintf(err, errlen, "the gossip loop did not take the new key within 5 s");
    } else if (rc != 0)
        snprintf(err, errlen, "%s", g->rk_err);
    pthread_mutex_unlock(&g->rkmu);
    return rc;
}

static void *loop(void *arg)
{
    gossip_t *g = arg;
    uint64_t next_ae = clock_ms() + g->o.anti_entropy_ms, next_stats = 0, next_save = 0;
    zmq_pollitem_t items[8];
    int more = 0; /* routed reads have batches ready to send: poll without waiting */
    while (!atomic_load(&g->stop)) {
        uint64_t now = clock_ms();
        swim_tick(g->swim, now);
        reads_tick(g->reads, now);
        if (now >= next_ae) {
            const Trib__Member *peer;
            /* The last round found no probe to ride (probing slowed, or a short anti-entropy
             * period): it goes alone, as messages of its own to a random peer. */
            if (g->ae_due && !g->chead && swim_random_alive(g->swim, 1, &peer) == 1)
                repl_sync(g->repl, peer->addr);
            if (g->ae_due && g->o.fedlog && swim_random_alive(g->swim, 1, &peer) == 1)
                fedlog_sync(g->o.fedlog, peer->addr);
            g->ae_due = 1;
            next_ae = now + g->o.anti_entropy_ms;
        }
        join_retry(g, now);
        if (g->ngone)
            gossip__conns_step(g);
        if (g->warm_due && now >= g->warm_next_ms)
            gossip__warm_step(g, now);
        if (atomic_load(&g->ask_unconfirmed) && now >= g->asked_unconfirmed_ms + ASK_UNCONFIRMED_MS) {
            atomic_store(&g->ask_unconfirmed, 0);
            g->asked_unconfirmed_ms = now;
            swim_ask_unconfirmed(g->swim);
        }
        if (g->dirty || swim_unconfirmed_count(g->swim) != g->snap_unconfirmed)
            publish_snapshot(g);
        if (now >= next_stats) {
            gossip__seeds_step(g, now);
            publish_stats(g);
            next_stats = now + 250;
        }
        if (now >= next_save) {
            save_members(g, 0);
            next_save = now + SAVE_MS;
        }
        uint64_t deadline = swim_next_deadline(g->swim);
        if (!atomic_load(&g->own_synced) && g->own_next_ask < deadline)
            deadline = g->own_next_ask;
        if (next_ae < deadline)
            deadline = next_ae;
        if (g->join_synced && g->join_retries < JOIN_RETRIES && g->join_sync_ms + JOIN_RETRY_MS < deadline)
            deadline = g->join_sync_ms + JOIN_RETRY_MS;
        if (next_stats < deadline)
            deadline = next_stats;
        if (next_save < deadline)
            deadline = next_save;
        if (reads_next_deadline(g->reads) < deadline)
            deadline = reads_next_deadline(g->reads);
        if (gossip__catalog_deadline(g) < deadline)
            deadline = gossip__catalog_deadline(g);
        if (g->push_due && g->push_next_ms < deadline)
            deadline = g->push_next_ms;
        if (g->warm_due && g->warm_next_ms < deadline)
            deadline = g->warm_next_ms;
        if (certwait_deadline(g->certwait) < deadline)
            deadline = certwait_deadline(g->certwait);
        now = clock_ms();
        long timeout = more || deadline <= now ? 0 : (long)(deadline - now);
        int n = transport_pollitems(g->tr, items, 7);
        items[n] = (zmq_pollitem_t){.socket = NULL, .fd = g->efd, .events = ZMQ_POLLIN};
        int rc = zmq_poll(items, n + 1, timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            log_error("gossip: zmq_poll: %s", zmq_strerror(errno));
            break;
        }
        if (items[n].revents & ZMQ_POLLIN) {
            uint64_t v;
            if (read(g->efd, &v, sizeof v) < 0 && errno != EAGAIN)
                log_warn("gossip: eventfd read: %s", strerror(errno));
            if (atomic_exchange(&g->announced, 0))
                g->push_due = 1;
            rekey_step(g);
            reads_drain(g->reads, clock_ms());
        }
        if (g->push_due && clock_ms() >= g->push_next_ms)
            push_committed(g);
        if (g->o.fedlog)
            fedlog_tick(g->o.fedlog);
        if (g->certwait)
            gossip__certwait_step(g, clock_ms());
        /* Bounded per turn so timers keep running under a flood. */
        transport_msg_t m;
        for (int budget = 0; budget < 1024 && transport_recv(g->tr, &m) == 1; budget++) {
            uint64_t t = clock_ms();
            if (is_swim_type(m.type))
                swim_handle(g->swim, t, m.sender, m.sender_addr, m.type, m.body, m.body_len);
            else if (is_read_type(m.type))
                reads_handle(g->reads, t, m.sender, m.sender_addr, m.type, m.body, m.body_len);
            else if (is_fed_type(m.type)) {    /* federation objects: at once, ahead of the catalog */
                g->asker = m.sender;
                if (g->o.fedlog)
                    fedlog_handle(g->o.fedlog, m.sender_addr, m.type, m.body, m.body_len);
                g->asker = NULL;
            }
            else
                gossip__catalog_enqueue(g, &m);
            transport_msg_free(&m);
        }
        more = gossip__catalog_work(g);
        gossip__own_sync_step(g, clock_ms());
        more |= reads_pump(g->reads, clock_ms());
    }
    gossip__job_reap(g, 1);
    /* Graceful leave: tell everyone, give the sockets a moment to flush. */
    swim_leave(g->swim, clock_ms());
    save_members(g, 1);          /* destroy() waits until the saver has saved it */
    publish_snapshot(g);
    publish_stats(g);
    return NULL;
}

/* ------------------------------------------------------------------ data links */

/* This node's static key pair now, for the link server's handshakes (a rotation changes it). */
static void owner_keys(void *ctx, uint8_t pk[32], uint8_t sk[32])
{
    gossip_t *g = ctx;
    pthread_mutex_lock(&g->rkmu);
    memcpy(pk, g->id.curve_pk, 32);
    memcpy(sk, g->id.curve_sk, 32);
    pthread_mutex_unlock(&g->rkmu);
}

/* ... and its node id, for the links the relay dials. */
static void relay_keys(void *ctx, uint8_t id[32], uint8_t pk[32], uint8_t sk[32])
{
    gossip_t *g = ctx;
    pthread_mutex_lock(&g->rkmu);
    memcpy(id, g->id.pk, 32);
    memcpy(pk, g->id.curve_pk, 32);
    memcpy(sk, g->id.curve_sk, 32);
    pthread_mutex_unlock(&g->rkmu);
}

/* The relay's link pool, and the owner's link server unless off; g->link: what we gossip. */
static int start_links(gossip_t *g, const gossip_opts_t *o, const reads_config_t *rc, char *err, size_t errlen)
{
    g->read_open_ms = rc->open_timeout_ms;
    linkpool_opts_t po = {.keys = relay_keys, .ctx = g, .open_timeout_ms = rc->open_timeout_ms,
                          .stall_ms = rc->stall_ms, .reads = g->reads};
    if (o->charter)
        link_prologue_charter(o->charter->fed_id, po.prologue);
    else
        link_prologue_open(o->federation_secret, po.prologue);
    if (!(g->pool = linkpool_new(&po))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!o->link_listen || !*o->link_listen || !strcmp(o->link_listen, "off"))
        return 0;
    linkserve_opts_t so = {.listen = o->link_listen, .max_links = o->link_max, .trust = g->trust,
                           .max_per_peer = rc->max_streams_per_peer, .send_ms = o->link_send_ms,
                           .min_rate = o->link_min_rate, .keys = owner_keys, .ctx = g, .reads = g->reads};
    memcpy(so.prologue, po.prologue, 32);
    if (!(g->links = linkserve_start(&so, err, errlen)))
        return -1;
    if (o->link_advertise && *o->link_advertise)
        snprintf(g->link, sizeof g->link, "%s", o->link_advertise);
    else   /* the advertised peer host, the bound port */
        snprintf(g->link, sizeof g->link, "%.*s:%d", (int)(strrchr(g->advertise, ':') - g->advertise), g->advertise,
                 linkserve_port(g->links));
    const char *colon = strrchr(o->link_listen, ':');   /* the bound port: --link-listen may ask for any (:0) */
    log_info("link: serving routed reads on %.*s:%d (advertised as %s); dialing with %s, taking both protocols",
             (int)(colon ? (size_t)(colon - o->link_listen) : strlen(o->link_listen)), o->link_listen,
             linkserve_port(g->links), g->link, link_suite_name(LINK_SUITE_AUTO));
    return 0;
}

/* ------------------------------------------------------------------ lifecycle */

typedef struct {
    swim_t *swim;
    int restored;
} restore_ctx_t;

static int restore_one(void *ctx, const uint8_t *bytes, size_t len)
{
    restore_ctx_t *r = ctx;
    Trib__Member *m = trib__member__unpack(NULL, len, bytes);
    if (!m)
        return 0; /* skip a damaged record; the member will be relearnt */
    if (swim_restore(r->swim, clock_ms(), m) == 0)
        r->restored++;
    trib__member__free_unpacked(m, NULL);
    return 0;
}

static void destroy(gossip_t *g)
{
    if (g->wstarted) {
        pthread_mutex_lock(&g->wmu);
        g->wstop = 1;
        pthread_cond_broadcast(&g->wcv);
        pthread_mutex_unlock(&g->wmu);
        pthread_join(g->wthread, NULL);
    }
    for (int i = 0; i < g->nhcert; i++)   /* queued if the loop never stopped cleanly */
        free(g->hcert[i]);
    if (g->o.fedlog)
        fedlog_attach(g->o.fedlog, NULL);
    linkserve_stop(&g->links);   /* before the reads its threads serve from */
    reads_shutdown(g->reads);
    linkpool_shutdown(g->pool);
    reads_destroy(&g->reads);
    linkpool_free(&g->pool);
    gossip__catalog_clear(g);
    repl_destroy(&g->repl);
    gossip__answers_free(g);
    swim_destroy(&g->swim);
    transport_destroy(&g->tr);
    if (g->zctx)
        zmq_ctx_term(g->zctx);
    if (g->efd >= 0)
        close(g->efd);
    membersave_destroy(&g->saver);   /* before the store closes: saves the last batch */
    free(g->snap);
    for (size_t i = 0; i < g->nunsaved; i++) /* the loop handed them over when it ran */
        free((void *)g->unsaved[i].member);
    free(g->unsaved);
    pthread_mutex_destroy(&g->smu);
    pthread_cond_destroy(&g->snapcv);
    pthread_mutex_destroy(&g->wmu);
    pthread_cond_destroy(&g->wcv);
    identity_wipe(&g->id);
    if (g->own_trust)
        trust_destroy(&g->trust);
    curvememo_free(&g->curvememo);
    certwait_free(&g->certwait);
    pthread_mutex_destroy(&g->tcmu);
    pthread_mutex_destroy(&g->rkmu);
    pthread_cond_destroy(&g->rkcv);
    free(g->rk_hello);
    free(g);
}

gossip_t *gossip_start(store_t *st, catalog_t *cat, const identity_t *id, const gossip_opts_t *o, char *err,
                       size_t errlen)
{
    gossip_t *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->efd = -1;
    pthread_mutex_init(&g->smu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->snapcv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&g->wmu, NULL);
    pthread_cond_init(&g->wcv, NULL);
    pthread_mutex_init(&g->tcmu, NULL);
    pthread_mutex_init(&g->rkmu, NULL);
    pthread_cond_init(&g->rkcv, NULL);
    g->st = st;
    g->cat = cat;
    g->id = *id;
    g->o = *o;
    snprintf(g->listen, sizeof g->listen, "%s", o->listen);
    snprintf(g->advertise, sizeof g->advertise, "%s", o->advertise && *o->advertise ? o->advertise : o->listen);
    snprintf(g->http, sizeof g->http, "%s", o->http ? o->http : "");
    snprintf(g->domain, sizeof g->domain, "%s", o->domain);
    g->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    g->zctx = zmq_ctx_new();
    if (g->efd < 0 || !g->zctx) {
        snprintf(err, errlen, "gossip: cannot create eventfd or ZeroMQ context: %s", strerror(errno));
        goto fail;
    }
    if (!(g->saver = membersave_new(st))) {   /* first: restoring members may queue changes */
        snprintf(err, errlen, "gossip: cannot start the member saver");
        goto fail;
    }
    if (o->charter) { /* chartered: the trust store, holding our own certificate first */
        char terr[300];
        cert_t own;
        int added;
        g->trust = o->trust;
        if (!g->trust && (g->own_trust = 1) && !(g->trust = trust_new(o->charter))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        if (!o->cert || cert_parse(o->cert, o->cert_len, &own, terr, sizeof terr) != 0 ||
            trust_offer_cert(g->trust, o->cert, o->cert_len, &added, terr, sizeof terr) != TRUST_OK) {
            snprintf(err, errlen, "this node's certificate is not valid under the charter: %s", o->cert ? terr : "none");
            goto fail;
        }
        g->own_not_after_ms = own.not_after_ms;
        g->own_replaces = own.prev_serial != 0;
        cert_free(&own);
        g->curvememo = curvememo_new();   /* NULL (out of memory): every conversion done again */
        if (!(g->certwait = certwait_new())) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    transport_opts_t to;
    transport_opts_default(&to);
    to.per_node_keys = g->trust != NULL;
    to.max_msg = o->max_msg;
    to.federation_secret = o->federation_secret;
    to.advertise = g->advertise;
    to.priority_types = 1u << TRIB__MSG_TYPE__MSG_PING | 1u << TRIB__MSG_TYPE__MSG_ACK |
                        1u << TRIB__MSG_TYPE__MSG_PING_REQ | 1u << TRIB__MSG_TYPE__MSG_NACK |
                        1u << TRIB__MSG_TYPE__MSG_PUSH_PULL | 1u << TRIB__MSG_TYPE__MSG_FED_PUSH;
    /* A federation-log sync step goes with them when small (a summary, the buckets, a few hashes or
     * certificates): while a federation joins, each sync otherwise opened the pair's second
     * connection in both directions. A few KiB at most, one reply per message received, so the
     * membership messages behind it wait microseconds; object batches above it take the bulk lane. */
    to.light_types = 1u << TRIB__MSG_TYPE__MSG_FED_SYNC;
    to.light_max = FED_LIGHT_MAX;
    to.max_peers *= 2;           /* two DEALERs per peer */
    g->tr = transport_new(g->zctx, id, g->listen, &to, err, errlen);
    if (!g->tr)
        goto fail;
    if (g->trust) {
        transport_set_allow(g->tr, gossip__zap_allow, g);
        transport_set_rebind(g->tr, gossip__rebind, g);
        if (transport_set_hello(g->tr, o->cert, o->cert_len, gossip__hello, g) != 0) {
            snprintf(err, errlen, "this node's certificate (%zu bytes) is too large to present", o->cert_len);
            goto fail;
        }
    }

    reads_config_t rcfg;
    reads_config_default(&rcfg);
    rcfg.max_msg = o->max_msg;
    reads_io_t reio = {.ctx = g, .send = reads_send, .send_bulk = reads_send_bulk, .drop_bulk = reads_drop_bulk,
                       .wake = reads_wake, .successor = g->trust ? reads_successor : NULL};
    g->reads = reads_new(st, g->domain, &rcfg, &reio);
    if (!g->reads) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (start_links(g, o, &rcfg, err, errlen) != 0)
        goto fail;

    char inc[24] = "0";
    size_t inclen = 0;
    if (store_meta_get(st, "incarnation", inc, sizeof inc - 1, &inclen) == 0)
        inc[inclen] = '\0';
    Trib__Member self = TRIB__MEMBER__INIT;
    self.id.data = (uint8_t *)id->pk;
    self.id.len = ID_PK_LEN;
    self.domain = g->domain;
    self.addr = g->advertise;
    self.http = g->http;
    self.link = g->link;
    /* One above the last life's: its peers may hold it dead or left at that one (a leave they got,
     * a kill they noticed), and an ALIVE at the same incarnation would not outbid them: the node
     * would be unseen until it heard of it and refuted, and a node that cannot hear them (its
     * replies go elsewhere) never would. Saved at once, so a second restart is above this one. */
    self.incarnation = strtoull(inc, NULL, 10);
    if (self.incarnation < UINT64_MAX)
        self.incarnation++;
    snprintf(inc, sizeof inc, "%" PRIu64, self.incarnation);
    if (store_meta_put(st, "incarnation", inc, strlen(inc)) != 0)
        log_warn("gossip: could not save this node's incarnation (%" PRIu64 "): a restart may come back at it",
                 self.incarnation);
    swim_io_t sio = {.ctx = g, .send = swim_send, .changed = member_changed, .removed = member_removed,
                     .rider_out = swim_rider_out, .rider_in = swim_rider_in, .refused = member_claim_refused,
                     .retired = member_retired};
    uint64_t seed;
    randombytes_buf(&seed, sizeof seed);
    g->swim = swim_new(&o->swim, &self, &sio, seed, err, errlen);
    if (!g->swim)
        goto fail;
    /* Members sign what they say of themselves, in both modes (swim.h): one signature per
     * incarnation, one verify per fact per node. */
    if (swim_sign_with(g->swim, id->sk) != 0) {
        snprintf(err, errlen, "the node key cannot sign membership updates");
        goto fail;
    }
    repl_io_t rio = {.ctx = g, .send = repl_send, .peers = fanout_peers, .accepted = entry_accepted,
                     .stored = entries_stored,
                     .now = repl_now, .answers_final = 1, .entry_ok = g->trust ? gossip__entry_ok : NULL,
                     .handover = g->trust ? handover : NULL, .answer_ok = gossip__answer_ok_catalog,
                     .answered = gossip__answered_catalog, .got_pushes = gossip__asker_got_pushes,
                     .asker = gossip__answer_asker};
    size_t frame = o->max_msg > 4096 ? o->max_msg - 1024 : o->max_msg;
    if (frame > FRAME_MAX)
        frame = FRAME_MAX;
    g->repl = repl_new(st, cat, frame, &rio);
    if (!g->repl || gossip__answers_init(g, o->answer_rate) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    repl_set_own(g->repl, g->domain);
    restore_ctx_t rc = {g->swim, 0};
    store_members(st, restore_one, &rc);
    for (size_t i = 0; i < o->nseeds; i++) {
        const char *at = strchr(o->seeds[i], '@'), *addr = at ? at + 1 : o->seeds[i];
        char idhex[ID_HEX_LEN] = "";
        uint8_t pk[ID_PK_LEN];
        if (at && (size_t)(at - o->seeds[i]) < sizeof idhex)
            memcpy(idhex, o->seeds[i], (size_t)(at - o->seeds[i]));
        if (at && identity_from_hex(idhex, pk) != 0) {
            snprintf(err, errlen, "seed '%s': '%.*s' is not a node id (64 hex characters, as 'trib identity' prints)",
                     o->seeds[i], (int)(at - o->seeds[i]) > 80 ? 80 : (int)(at - o->seeds[i]), o->seeds[i]);
            goto fail;
        }
        if (g->trust && !at) {
            snprintf(err, errlen, "seed '%s': in a chartered federation a seed is NODE_ID@HOST:PORT (each node has its "
                     "own CURVE key; 'trib identity --data DIR' on the seed's machine prints its NODE_ID)", o->seeds[i]);
            goto fail;
        }
        if (!strcmp(addr, g->advertise) || (at && !memcmp(pk, g->id.pk, ID_PK_LEN)))
            continue;   /* this node itself */
        if ((g->trust && transport_set_peer(g->tr, addr, pk, TRANSPORT_PEER_PROVEN) != 0) ||
            swim_add_seed(g->swim, addr) < 0) {
            snprintf(err, errlen, "seed '%s' is not a usable HOST:PORT", o->seeds[i]);
            goto fail;
        }
        gossip__seeds_add(g, o->seeds[i], addr, at ? pk : NULL);
    }
    publish_snapshot(g);
    /* also the first trust check (gossip__own_cert_check): a restored member whose key a held
     * hand-over retired is left before the loop's first round, or that round would retry it (a
     * claim of its address by the key that gave it up; test_rotate a_restarted_peer_...) */
    publish_stats(g);
    /* Nobody to ask (a first node: no seed, no stored member), or nothing of ours held yet (a new
     * node): nothing of ours can be ahead of us. Except a replacement key (chartered, prev_serial)
     * holding nothing: it takes over a domain whose log its peers may hold, and waits for them. */
    store_head_t own;
    int have_own = store_catalog_head(st, g->domain, &own) == 0;
    g->pushed_seq = have_own ? own.seq : 0;
    g->own_replaces = g->own_replaces && !have_own;
    int alone = !g->own_replaces && ((o->nseeds == 0 && rc.restored == 0) || !have_own);
    atomic_store(&g->own_synced, alone);
    g->own_deadline = g->own_replaces ? UINT64_MAX : clock_ms() + OWN_SYNC_MS;
    if (g->own_replaces)
        snprintf(g->own_why, sizeof g->own_why,
                 "this node's certificate replaces an earlier key of domain '%s' and it holds none of its log: "
                 "publishing waits until a peer answers with the domain's head and it has fetched it (seq 1 now "
                 "would fork the log); no peer has answered yet", g->domain);
    else
        snprintf(g->own_why, sizeof g->own_why,
                 "this node just started and is asking its peers for its own domain's head before it publishes "
                 "(at most %d s); retry shortly", OWN_SYNC_MS / 1000);
    if (o->fedlog) {
        fedlog_io_t fio = {.ctx = g, .send = repl_send, .peers = all_peers, .wake = reads_wake,
                           .max_frame = frame, .own_thread = 1, .answer_ok = gossip__answer_ok_trust,
                           .answered = gossip__answered_trust};
        fedlog_attach(o->fedlog, &fio);
    }
    if (pthread_create(&g->wthread, NULL, gossip__worker, g) != 0) {
        snprintf(err, errlen, "gossip: cannot start the catalog worker");
        goto fail;
    }
    g->wstarted = 1;
    if (pthread_create(&g->thread, NULL, loop, g) != 0) {
        snprintf(err, errlen, "gossip: cannot start thread");
        goto fail;
    }
    log_info("gossip on %s (advertised as %s), %zu seed(s), %d stored member(s)", g->listen, g->advertise,
             o->nseeds, rc.restored);
    return g;
fail:
    destroy(g);
    return NULL;
}

void gossip_reads_shutdown(gossip_t *g)
{
    pthread_mutex_lock(&g->smu);
    g->snap_stopping = 1;        /* a read waiting for word of its owner goes on now (gossip_read_open) */
    pthread_cond_broadcast(&g->snapcv);
    pthread_mutex_unlock(&g->smu);
    reads_shutdown(g->reads);
    linkpool_shutdown(g->pool);
}

const char *gossip_link_addr(gossip_t *g) { return g ? g->link : ""; }

struct fedlog *gossip_fedlog(gossip_t *g) { return g ? g->o.fedlog : NULL; }

void gossip_notify_append(gossip_t *g, const char *product)
{
    if (g && product)
        reads_notify_append(g->reads, product);
}

void gossip__wake(gossip_t *g)
{
    uint64_t one = 1;
    if (write(g->efd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_warn("gossip: eventfd write: %s", strerror(errno));
}

void gossip_stop(gossip_t **gp)
{
    if (!gp || !*gp)
        return;
    gossip_t *g = *gp;
    atomic_store(&g->stop, 1);
    gossip__wake(g);
    pthread_join(g->thread, NULL);
    destroy(g);
    *gp = NULL;
}

void gossip_announce(gossip_t *g, const uint8_t *entry, size_t len)
{
    (void)entry, (void)len;      /* committed: the loop reads it from the store (push_committed) */
    atomic_store(&g->announced, 1);
    gossip__wake(g);
}

size_t gossip_members(gossip_t *g, gossip_member_t **out)
{
    pthread_mutex_lock(&g->smu);
    size_t n = g->nsnap;
    *out = malloc((n ? n : 1) * sizeof **out);
    if (*out)
        memcpy(*out, g->snap, n * sizeof **out);
    else
        n = 0;
    pthread_mutex_unlock(&g->smu);
    return n;
}

/* ------------------------------------------------------------------ routed reads */


/* A routed read: over a data link (l) or the peer transport (z). */
struct gossip_read {
    lread_t *l;
    reads_reader_t *z;
};

/* The member that owns domain: the one holding the domain's bound key, else any other member
 * announcing the domain. 2 found the bound key (or its successor), 1 only another member, 0 none.
 * Chartered: a member not certified for the domain now (gossip_member_t.uncertified) is none: its
 * replies would be dropped, the client waiting for a timeout. Such a member is copied into
 * *claimant (when not NULL; the one holding the bound key if it is one; id zeroed when none). */
static int owner_lookup(gossip_t *g, const char *domain, gossip_member_t *out, gossip_member_t *claimant)
{
    store_head_t head;
    int have_key = store_catalog_head(g->st, domain, &head) == 0;
    int found = 0, claimed = 0;
    if (claimant)
        memset(claimant->id, 0, sizeof claimant->id);
    pthread_mutex_lock(&g->smu);
    for (size_t i = 0; i < g->nsnap; i++) {
        const gossip_member_t *m = &g->snap[i];
        if (m->self || strcmp(m->domain, domain) != 0)
            continue;
        int bound = have_key && !memcmp(m->id, head.key, 32);
        if (m->uncertified) {   /* the domain's bound key named first: the owner it was */
            if (claimant && (!claimed || bound))
                *claimant = *m;
            claimed = 1;
            continue;
        }
        if (!found || bound) {
            *out = *m;
            found = 1 + bound;
        }
        if (bound)
            break;
    }
    pthread_mutex_unlock(&g->smu);
    /* the bound key left, having handed the domain over (a live key rotation, before the new key
     * signs an entry): the member that continues it owns the domain now */
    gossip_member_t next;
    if (found == 2 && g->trust && (out->state == TRIB__MEMBER_STATE__LEFT || out->state == TRIB__MEMBER_STATE__DEAD) &&
        successor_of(g, domain, out->id, &next))
        *out = next;
    return found;
}

static const uint8_t no_id[32];

/* The owner of product's domain into *out: 0. -1 when none is known, with the 503's detail in err;
 * chartered, a member announcing the domain uncertified is named there, and the refusal counted. */
static int find_owner(gossip_t *g, const char *product, const char *domain, gossip_member_t *out, char *err,
                      size_t errlen)
{
    gossip_member_t claimant;
    if (owner_lookup(g, domain, out, &claimant))
        return 0;
    if (!g->trust) {
        snprintf(err, errlen, "%s is owned by domain '%s', and no node of that domain is a member known here",
                 product, domain);
        return -1;
    }
    if (!memcmp(claimant.id, no_id, 32)) {
        snprintf(err, errlen, "%s is owned by domain '%s', and no node certified for domain '%s' is known here",
                 product, domain, domain);
        return -1;
    }
    char hex[ID_HEX_LEN], why[400];
    identity_hex(claimant.id, hex);
    trust_verdict_t v = gossip_member_why(g, &claimant, why, sizeof why);
    snprintf(err, errlen, "%s is owned by domain '%s', and no node certified for domain '%s' is known here: node "
             "%.12s at %s announces it, but %s (not a member; trib members lists it under \"not members\")", product,
             domain, domain, hex, claimant.addr, why);
    gossip__owner_refused(g, v == TRUST_OK ? TRUST_UNCERTIFIED : v, err);
    return -1;
}

int gossip_read_owner(gossip_t *g, const char *domain, gossip_member_t *out)
{
    if (!g || !domain)
        return -1;
    gossip_member_t claimant;
    int found = owner_lookup(g, domain, out, &claimant);
    return found == 2 ? 0 : found == 1 ? -2 : g->trust && memcmp(claimant.id, no_id, 32) ? -3 : -1;
}

/* Has the loop ask the unconfirmed members now, then waits for the next member snapshot, until
 * ASK_UNCONFIRMED_MS from now or the monotonic until_ms, whichever is first. -1 when until_ms has
 * passed or reads shut down, else 0 (look again). */
static int wait_snapshot(gossip_t *g, uint64_t until_ms)
{
    uint64_t now = clock_ms();
    if (now >= until_ms)
        return -1;
    atomic_store(&g->ask_unconfirmed, 1);
    gossip__wake(g);
    uint64_t at = now + ASK_UNCONFIRMED_MS < until_ms ? now + ASK_UNCONFIRMED_MS : until_ms;
    struct timespec ts = {.tv_sec = (time_t)(at / 1000), .tv_nsec = (long)(at % 1000) * 1000000L};
    pthread_mutex_lock(&g->smu);
    int stopping = g->snap_stopping;
    if (!stopping)
        pthread_cond_timedwait(&g->snapcv, &g->smu, &ts);
    pthread_mutex_unlock(&g->smu);
    return stopping ? -1 : 0;
}

static const char *member_state_now(gossip_t *g, const uint8_t id[32])
{
    const char *state = "unknown (no longer listed)";
    pthread_mutex_lock(&g->smu);
    for (size_t i = 0; i < g->nsnap; i++)
        if (!memcmp(g->snap[i].id, id, 32))
            state = swim_state_name(g->snap[i].state);
    pthread_mutex_unlock(&g->smu);
    return state;
}

gossip_read_t *gossip_read_open(gossip_t *g, const char *product, uint64_t from, uint64_t limit, int live,
                                const char *token, size_t token_len, uint64_t *last_seq, int *status, char *kind, size_t kindlen, char *err,
                                size_t errlen)
{
    if (!entry_valid_product_id(product)) {
        *status = 400;
        snprintf(kind, kindlen, "bad_id");
        snprintf(err, errlen, "not a product id: domain and name are " STORE_NAME_RULE);
        return NULL;
    }
    char domain[64];
    snprintf(domain, sizeof domain, "%.*s", (int)(strchr(product, '/') - product), product);
    gossip_member_t owner;
    uint64_t t0 = clock_ms();
    int found = find_owner(g, product, domain, &owner, err, errlen);
    /* An owner dead or left only in the member list this node stored in its last life (it just
     * restarted, and the owner has not answered yet): a false "unreachable". The read waits for
     * word of it, within its wait for the owner's first reply, asking it every ASK_UNCONFIRMED_MS;
     * one that answers none of its first two retries (swim_unconfirmed) is dead to this life too, and
     * refused at once from then on. */
    if (found == 0 && owner.unconfirmed)
        atomic_fetch_add(&g->owner_waits, 1);
    while (found == 0 && owner.unconfirmed && clock_ms() < t0 + g->read_open_ms &&
           wait_snapshot(g, t0 + g->read_open_ms) == 0)
        found = find_owner(g, product, domain, &owner, err, errlen);
    if (found < 0) {
        *status = 503;
        snprintf(kind, kindlen, "owner_unreachable");
        return NULL;
    }
    char hex[ID_HEX_LEN], desc[400];
    identity_hex(owner.id, hex);
    snprintf(desc, sizeof desc, "owner node %.12s (domain %s) at %s", hex, owner.domain, owner.addr);
    if (owner.state == TRIB__MEMBER_STATE__DEAD || owner.state == TRIB__MEMBER_STATE__LEFT) {
        *status = 503;
        snprintf(kind, kindlen, "owner_unreachable");
        snprintf(err, errlen, READS_OWNER_GONE_FMT, desc, swim_state_name(owner.state));
        return NULL;
    }
    reads_open_t o = {.product = product, .from = from, .limit = limit, .live = live, .owner_id = owner.id,
                      .owner_addr = owner.addr, .owner_desc = desc, .token = token, .token_len = token_len};
    gossip_read_t *rd = calloc(1, sizeof *rd);
    if (!rd) {
        *status = 500;
        snprintf(kind, kindlen, "internal");
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int rc = live ? 0 : lread_open(g->pool, &o, owner.link, &rd->l, last_seq, status, kind, kindlen, err, errlen);
    if (rc == 0) {               /* no link: over the peer transport */
        if (!live)
            linkpool_count_relay(g->pool);
        /* within the same wait for the owner's first reply: a link that took long to fail (an owner
         * that accepts and never answers) leaves the relay the rest, but never less than a second */
        uint64_t spent = clock_ms() - t0;
        o.open_timeout_ms = spent + 1000 < g->read_open_ms ? (uint32_t)(g->read_open_ms - spent) : 1000;
        rd->z = reads_reader_open(g->reads, &o, last_seq, status, kind, kindlen, err, errlen);
    }
    if (!rd->z && !rd->l) {
        free(rd);
        rd = NULL;
        if (*status == 503 && !strstr(err, "member state")) {
            size_t n = strlen(err);
            if (n < errlen)
                snprintf(err + n, errlen - n, "; its member state is %s", member_state_now(g, owner.id));
        }
    }
    return rd;
}

long gossip_read_next(gossip_read_t *rd, char *out, size_t cap, int timeout_ms, char *kind, size_t kindlen,
                      char *err, size_t errlen)
{
    return rd->l ? lread_next(rd->l, out, cap, timeout_ms, kind, kindlen, err, errlen)
                 : reads_reader_next(rd->z, out, cap, timeout_ms, kind, kindlen, err, errlen);
}

void gossip_read_close(gossip_read_t **rdp)
{
    if (!rdp || !*rdp)
        return;
    lread_close(&(*rdp)->l);
    reads_reader_close(&(*rdp)->z);
    free(*rdp);
    *rdp = NULL;
}

uint64_t gossip_read_records(const gossip_read_t *rd)
{
    return rd->l ? lread_records(rd->l) : reads_reader_records(rd->z);
}

int gossip_read_schema(const gossip_read_t *rd, int next, uint64_t *at, uint64_t *mseq, char *version, size_t len)
{
    return rd->l ? lread_schema(rd->l, next, at, mseq, version, len)
                 : reads_reader_schema(rd->z, next, at, mseq, version, len);
}
