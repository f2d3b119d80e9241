/* gossip/intake.c - received catalog messages (see gossip_int.h): the bounded queue the loop fills,
 * the worker thread that verifies and stores entry frames off the loop, and own-domain sync.
 *
 * Owns: the queue of received catalog messages (chead/ctail/cbytes; over CATALOG_QUEUE_BYTES they
 * are dropped and counted, healed by gap requests and anti-entropy), handing consecutive entry
 * frames to the worker as one job and reaping its outcome, the worker thread itself, and deciding
 * when this node's copy of its own domain is current (own_synced) so publishing may start.
 * Must not: run on any thread but the loop (except the worker, which only runs repl_job_run and
 * wakes the loop), block the loop on the worker except at stop, touch SWIM state beyond picking
 * peers to ask, or handle membership or read messages. */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gossip/clock.h"
#include "gossip/fedlog.h"
#include "gossip/gossip_int.h"
#include "gossip/log.h"

#define CATALOG_BUDGET_MS 20     /* catalog work per loop turn */
#define OWN_ASK_MS 500           /* how often it asks meanwhile */
#define OWN_UNCERT_MS 30000      /* uncertified entries of our domain beyond our head keep publishing
                                    shut at most this long past OWN_SYNC_MS (own_sync_step) */
#define CATALOG_QUEUE_BYTES (16u << 20) /* received catalog messages waiting; more are dropped
                                           (counted) and healed by gap requests / anti-entropy */
#define CATALOG_BATCH_BYTES (4u << 20) /* entry frames verified and committed together */
#define COMMIT_GAP_FACTOR 4      /* the next job starts no sooner than this many times the last */
#define COMMIT_GAP_MAX_MS 100    /* one's duration after it started (at most this long): while entries
                                    stream in faster than commits complete, the frames that arrive
                                    meanwhile wait and go in one durable commit, so the worker commits
                                    at most about 1/(1+factor) of the time however slow the disk or
                                    busy the CPU; an entry after a quiet spell goes at once */
#define STREAM_HOLD_MS 200       /* while entries stream in (the last job held several entries, or */
#define STREAM_FILL_BYTES (64u << 10) /* frames arrived while it ran), the next job waits this long
                                    after the last one started, or until this many bytes of messages
                                    wait: a durable commit costs a receiver ~0.7 ms of CPU whatever
                                    it holds (the dirty pages of every index, two fdatasyncs), a
                                    quarter of its CPU per entry at ~15 entries a commit, a twentieth
                                    at ~100. It delays an entry by at most STREAM_HOLD_MS, only
                                    while a stream lasts: after a job of one entry with nothing
                                    waiting (a lone publish, or one publish after another) the next
                                    frame goes at once, as fast as before. */

void gossip__catalog_enqueue(gossip_t *g, transport_msg_t *m)
{
    cmsg_t *c = g->cbytes + m->body_len <= CATALOG_QUEUE_BYTES ? malloc(sizeof *c) : NULL;
    if (!c) {
        g->catalog_dropped++;
        transport_msg_free(m);
        return;
    }
    c->next = NULL;
    c->m = *m;                   /* takes the message */
    memset(m, 0, sizeof *m);
    if (g->ctail)
        g->ctail->next = c;
    else
        g->chead = c;
    g->ctail = c;
    g->cbytes += c->m.body_len;
}

static cmsg_t *catalog_pop(gossip_t *g)
{
    cmsg_t *c = g->chead;
    g->chead = c->next;
    if (!g->chead)
        g->ctail = NULL;
    g->cbytes -= c->m.body_len;
    return c;
}

/* Local readers learn of entries accepted since the last call, once for all of them. */
static void wake_readers(gossip_t *g)
{
    if (g->accepted_new && g->o.on_catalog)
        g->o.on_catalog(g->o.ctx);
    g->accepted_new = 0;
}

void *gossip__worker(void *arg)
{
    gossip_t *g = arg;
    pthread_mutex_lock(&g->wmu);
    for (;;) {
        while (!g->wstop && (!g->wjob || g->wdone))
            pthread_cond_wait(&g->wcv, &g->wmu);
        if (g->wstop)
            break;
        repl_job_t *j = g->wjob;
        pthread_mutex_unlock(&g->wmu);
        repl_job_run(g->repl, j);
        pthread_mutex_lock(&g->wmu);
        g->wdone = 1;
        pthread_cond_broadcast(&g->wcv); /* gossip__job_reap at stop waits on it */
        gossip__wake(g);
    }
    pthread_mutex_unlock(&g->wmu);
    return NULL;
}

/* Applies a finished job's outcomes on the loop. 1 when none is out any more. */
int gossip__job_reap(gossip_t *g, int wait)
{
    if (!g->wbusy)
        return 1;
    pthread_mutex_lock(&g->wmu);
    while (wait && !g->wdone)
        pthread_cond_wait(&g->wcv, &g->wmu);  /* only at stop; the loop is woken through gossip__wake() */
    int done = g->wdone;
    repl_job_t *j = g->wjob;
    if (done) {
        g->wjob = NULL;
        g->wdone = 0;
    }
    pthread_mutex_unlock(&g->wmu);
    if (!done)
        return 0;
    uint64_t took = clock_ms() - g->wstart_ms;
    g->wready_ms = g->wstart_ms + (took * COMMIT_GAP_FACTOR < COMMIT_GAP_MAX_MS ? took * COMMIT_GAP_FACTOR
                                                                               : COMMIT_GAP_MAX_MS);
    g->wnext_ms = g->wready_ms;
    int stream = g->chead || repl_job_entries(j) > 1;
    if (stream && g->wnext_ms < g->wstart_ms + STREAM_HOLD_MS)   /* let the next commit fill */
        g->wnext_ms = g->wstart_ms + STREAM_HOLD_MS;
    repl_job_finish(g->repl, j);
    wake_readers(g);
    for (size_t i = 0; i < g->nwbatch; i++) {
        transport_msg_free(&g->wbatch[i]->m);
        free(g->wbatch[i]);
    }
    g->nwbatch = 0;
    g->wbusy = 0;
    return 1;
}

/* Handles queued catalog messages in arrival order, for about CATALOG_BUDGET_MS: consecutive entry
 * frames (up to CATALOG_BATCH_BYTES) go to the worker as one job (verified there and stored in one
 * durable commit) while the loop goes on; other catalog messages wait for the job's outcome (a
 * digest must see its entries stored) and are handled here. 1 = more could be done now. */
int gossip__catalog_work(gossip_t *g)
{
    enum { MAXF = 64 };
    uint64_t end = clock_ms() + CATALOG_BUDGET_MS;
    while (g->chead) {
        if (!gossip__job_reap(g, 0))
            return 0;            /* the worker wakes us when the job is done */
        if (g->chead->m.type == TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES) {
            if (clock_ms() < gossip__catalog_deadline(g) && g->cbytes < CATALOG_BATCH_BYTES)
                return 0;        /* gossip__catalog_deadline wakes the loop for it */
            g->wstart_ms = clock_ms();
            size_t bytes = 0;
            const char *froms[MAXF];
            const uint8_t *senders[MAXF], *bodies[MAXF];
            size_t lens[MAXF];
            while (g->chead && g->nwbatch < MAXF && g->chead->m.type == TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES &&
                   (g->nwbatch == 0 || bytes + g->chead->m.body_len <= CATALOG_BATCH_BYTES)) {
                cmsg_t *c = catalog_pop(g);
                bytes += c->m.body_len;
                froms[g->nwbatch] = c->m.sender_addr;
                senders[g->nwbatch] = c->m.sender;
                bodies[g->nwbatch] = c->m.body ? c->m.body : (const uint8_t *)"";
                lens[g->nwbatch] = c->m.body_len;
                g->wbatch[g->nwbatch++] = c;
            }
            repl_job_t *j = repl_job_new(g->repl, froms, senders, bodies, lens, g->nwbatch);
            g->wbusy = 1;
            pthread_mutex_lock(&g->wmu);
            g->wjob = j;
            g->wdone = j == NULL;    /* out of memory: reaped (and dropped) at once */
            pthread_cond_broadcast(&g->wcv);
            pthread_mutex_unlock(&g->wmu);
            if (!j) {
                g->wbusy = 0;
                for (size_t i = 0; i < g->nwbatch; i++) {
                    transport_msg_free(&g->wbatch[i]->m);
                    free(g->wbatch[i]);
                }
                g->nwbatch = 0;
                pthread_mutex_lock(&g->wmu);
                g->wdone = 0;
                pthread_mutex_unlock(&g->wmu);
            }
            continue;
        }
        cmsg_t *c = catalog_pop(g);
        g->asker = c->m.sender;  /* answers are charged to it (answers.c) */
        repl_handle(g->repl, c->m.sender_addr, c->m.type, c->m.body, c->m.body_len);
        g->asker = NULL;
        wake_readers(g);
        transport_msg_free(&c->m);
        free(c);
        if (clock_ms() >= end)
            return g->chead != NULL;
    }
    gossip__job_reap(g, 0);
    return 0;
}

uint64_t gossip__catalog_deadline(const gossip_t *g)
{
    if (g->wbusy || !g->chead || g->chead->m.type != TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES)
        return UINT64_MAX;
    return g->cbytes >= STREAM_FILL_BYTES ? g->wready_ms : g->wnext_ms;
}

void gossip__catalog_clear(gossip_t *g)
{
    while (g->chead) {
        cmsg_t *c = g->chead;
        g->chead = c->next;
        transport_msg_free(&c->m);
        free(c);
    }
    g->ctail = NULL;
    g->cbytes = 0;
}

static void set_why(gossip_t *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_why(gossip_t *g, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&g->smu);
    va_start(ap, fmt);
    vsnprintf(g->own_why, sizeof g->own_why, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&g->smu);
}

/* The entries of our own domain fetched from peers (up to the peers' head) are theirs already: the
 * loop's push of our committed entries (push_committed) starts after them. */
static void skip_fetched(gossip_t *g, uint64_t peer_head, uint64_t own_head)
{
    uint64_t fetched = peer_head < own_head ? peer_head : own_head;
    if (fetched > g->pushed_seq)
        g->pushed_seq = fetched;
}

void gossip__own_uncertified(gossip_t *g, uint64_t seq)
{
    uint64_t was = atomic_load(&g->own_uncertified_seq);
    while (seq > was && !atomic_compare_exchange_weak(&g->own_uncertified_seq, &was, seq))
        ;
}

/* Until a peer's digest showed our own domain no further ahead than our copy (after we fetched what
 * it had), publishing waits: a node restored from an old copy of its data must not write a
 * different entry at a seq its peers hold. With no peer answering in OWN_SYNC_MS it goes ahead
 * and says it could not check.
 *
 * Chartered, two more rules:
 * - Entries of our domain beyond our head refused as uncertified (signed by a key whose certificate
 *   has not reached us, e.g. after a rotation) are our log's next entries if genuine: publishing
 *   waits for their key's certificate past OWN_SYNC_MS, asking the peers it asks for the log for
 *   their federation log too. But a relay of a genuine entry accepted it, so holds the certificate,
 *   and the federation log brings it within a few rounds: claims no certificate came for in
 *   OWN_UNCERT_MS more are unproven (any certified peer can push entries under a made-up key), and
 *   publishing goes on (counted, logged). Not renewable: more such entries later change nothing.
 * - A replacement key (own_replaces: prev_serial, nothing of the domain held) has no deadline
 *   until a peer has answered: seq 1 from it would fork an existing log. Its OWN_SYNC_MS starts at
 *   the first answer; a digest not knowing the domain does not open at once (that peer may not
 *   have learnt it yet); at the deadline with still no peer knowing it, it starts the log. */
void gossip__own_sync_step(gossip_t *g, uint64_t now)
{
    if (atomic_load(&g->own_synced))
        return;
    uint64_t peer_head, own_head;
    size_t heard = repl_own_heard(g->repl, &peer_head, &own_head);
    uint64_t refused = atomic_load(&g->own_uncertified_seq);
    if (heard && g->own_deadline == UINT64_MAX)
        g->own_deadline = now + OWN_SYNC_MS;
    int unknown = g->own_replaces && peer_head == 0;   /* nobody that answered knows our domain */
    if (heard && own_head >= peer_head && !unknown) {
        skip_fetched(g, peer_head, own_head);
        log_info("catalog: own domain '%s' is current (head %" PRIu64 ", peers' highest %" PRIu64
                 "): publishing enabled", g->domain, own_head, peer_head);
        atomic_store(&g->own_synced, 1);
        return;
    }
    int claims = refused > own_head;
    int unproven = claims && g->own_deadline != UINT64_MAX && now >= g->own_deadline + OWN_UNCERT_MS;
    if (now >= g->own_deadline && (!claims || unproven)) {
        skip_fetched(g, peer_head, own_head);
        /* logged before publishing opens: whoever sees a publish succeed finds the reason in the log */
        if (unproven) {
            atomic_fetch_add(&g->own_dismissed, 1);
            log_warn("catalog: own domain '%s': entries up to seq %" PRIu64 " (this node holds %" PRIu64 ") were refused "
                     "as uncertified and no certificate of their key came in %d s more, though peers were asked for "
                     "their federation log: taken as unproven claims, publishing goes on (if they were genuine the "
                     "log forks: see trib status; trib_catalog_own_claims_dismissed_total counts this)",
                     g->domain, refused, own_head, OWN_UNCERT_MS / 1000);
        } else if (unknown && heard)
            log_warn("catalog: own domain '%s': this node's key replaces an earlier one, and none of the %zu peer "
                     "answer(s) in %d s knew the domain's log: it starts the log at seq %" PRIu64, g->domain, heard,
                     OWN_SYNC_MS / 1000, own_head + 1);
        else if (heard)
            log_warn("catalog: own domain '%s': peers hold it up to seq %" PRIu64 " but this node reached only %"
                     PRIu64 " in %d s; publishing anyway (a fork is likely: see trib status)",
                     g->domain, peer_head, own_head, OWN_SYNC_MS / 1000);
        else
            log_warn("catalog: own domain '%s': no peer answered in %d s, so this node could not check that its "
                     "copy (head %" PRIu64 ") is current; publishing anyway", g->domain, OWN_SYNC_MS / 1000,
                     own_head);
        atomic_store(&g->own_synced, 1);
        return;
    }
    if (claims) {
        set_why(g, "own domain: this node holds seq %" PRIu64 ", and its entries up to seq %" PRIu64 " were refused as "
                "uncertified (no certificate of their key held yet); publishing waits for it, else the log would fork",
                own_head, refused);
        if (now >= g->own_deadline && !g->own_wait_logged) {
            g->own_wait_logged = 1;
            log_warn("catalog: own domain '%s': entries up to seq %" PRIu64 " (this node holds %" PRIu64 ") were "
                     "refused as uncertified; publishing waits past %d s until their key's certificate arrives, at "
                     "most %d s more (trib_trust_refused_total{kind=\"entry\",reason=\"uncertified\"} counts them)",
                     g->domain, refused, own_head, OWN_SYNC_MS / 1000, OWN_UNCERT_MS / 1000);
        }
    } else if (unknown && heard) {
        set_why(g, "this node's key replaces an earlier one of domain '%s' and no peer that answered knows the "
                "domain's log yet: it waits up to %d s after the first answer for one that does; retry shortly",
                g->domain, OWN_SYNC_MS / 1000);
    } else if (heard) {
        set_why(g, "this node is fetching its own domain's newer entries from its peers (it holds seq %" PRIu64
                ", they hold %" PRIu64 "); retry shortly", own_head, peer_head);
    }
    if (now < g->own_next_ask)
        return;
    g->own_next_ask = now + OWN_ASK_MS;
    const Trib__Member *peers[3];
    size_t n = swim_random_alive(g->swim, 3, peers);
    for (size_t i = 0; i < n; i++) {
        repl_ask(g->repl, peers[i]->addr);
        if (claims && g->o.fedlog)      /* the certificate of the claims' key, if a peer holds it */
            fedlog_sync(g->o.fedlog, peers[i]->addr);
    }
}

/* Chartered: this node may sign its domain's entries only while its own certificate holds by its
 * own clock (no skew allowance: peers allow 60 s, so what we sign is still accepted) and is not
 * revoked. 1, or 0 with why. */
static int own_cert_holds(gossip_t *g, char *why, size_t cap)
{
    int64_t now = clock_wall_ms(), not_after;
    char err[200] = "", when[32];
    uint8_t own[32];
    gossip__own_key(g, own, &not_after);   /* HTTP threads: a key rotation rewrites both */
    if (now > not_after) {
        trust_time_text(not_after, when);
        snprintf(why, cap, "this node's certificate for domain '%s' expired at %s: it may not sign the domain's "
                 "entries; get a new certificate (trib fed certify) and restart the node with it as --cert "
                 "(docs/operators.md §4b)", g->domain, when);
        return 0;
    }
    trust_verdict_t v = trust_admit_curve(g->trust, own, now, NULL, err, sizeof err);
    if (v != TRUST_OK) {
        snprintf(why, cap, "this node's certificate for domain '%s' does not hold (%s: %s): it may not sign the "
                 "domain's entries", g->domain, trust_verdict_name(v), err);
        return 0;
    }
    return 1;
}

int gossip_own_synced(gossip_t *g, char *why, size_t cap)
{
    if (g->trust && !own_cert_holds(g, why, cap))
        return -1;
    if (atomic_load(&g->own_synced))
        return 1;
    pthread_mutex_lock(&g->smu);
    snprintf(why, cap, "%s", g->own_why);
    pthread_mutex_unlock(&g->smu);
    return 0;
}

size_t gossip_forks(gossip_t *g, repl_fork_t *out, size_t max)
{
    pthread_mutex_lock(&g->smu);
    size_t n = g->nforks;
    for (size_t i = 0; i < n && i < max; i++)
        out[i] = g->forks[i];
    pthread_mutex_unlock(&g->smu);
    return n;
}
