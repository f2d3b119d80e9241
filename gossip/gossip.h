/* gossip/gossip.h - the federation actor: one thread that owns the peer transport, SWIM membership
 * and catalog replication, driven by one zmq_poll loop whose timeout is the next timer deadline.
 *
 * Other threads talk to it only through the calls below: gossip_announce says a new local entry
 * was committed (the loop pushes it to peers), gossip_members copies a snapshot of the member table,
 * gossip_metrics_render reads counters, gossip_read_* read products owned by other nodes through
 * their owner (gossip/reads.h has the protocol) and gossip_notify_append tells the loop that local
 * records were committed (live streams of other nodes follow them). The loop never waits on a
 * client.
 * Must not: parse manifests or records, or serve HTTP. */
#ifndef TRIB_GOSSIP_H
#define TRIB_GOSSIP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "gossip/catalog.h"
#include "gossip/identity.h"
#include "gossip/replicate.h"
#include "gossip/swim.h"
#include "gossip/trust.h"
#include "storage/store.h"

typedef struct gossip gossip_t;

typedef struct {
    const char *listen;             /* HOST:PORT to bind */
    const char *advertise;          /* HOST:PORT peers reach us at (default listen) */
    const char *http;               /* our HTTP address, gossiped for humans and routing */
    const char *domain;
    const char *federation_secret;  /* open mode only */
    /* The data link (gossip/linkserve.h): HOST:PORT to serve routed range reads on (port 0: a free
     * one), NULL or "off": none (relays read over the peer transport); link_advertise: the address
     * gossiped in our member claim (default: advertise's host and the bound port); link_max: links
     * served at once (0: 256); link_send_ms, link_min_rate: a read's relay may fall link_send_ms behind
     * taking it at link_min_rate bytes/s (0: 10 min, 64 KiB/s; linkserve_opts_t). */
    const char *link_listen, *link_advertise;
    unsigned link_max;
    uint32_t link_send_ms, link_min_rate;
    /* Chartered mode when charter is set: the anchor (verified) and this node's own certificate
     * (TrustSigned bytes, already checked against the charter for this node's key and domain).
     * Peers are then admitted only with certificates (gossip/zap.c), every received entry is
     * checked with trust_entry_ok, and CURVE keys are per node: seeds are NODE_ID@HOST:PORT. */
    const charter_t *charter;
    const uint8_t *cert;
    size_t cert_len;
    /* The store to use (shared with the federation log; not destroyed by gossip), or NULL: a new
     * one from charter. */
    trust_t *trust;
    /* HOST:PORT, or NODE_ID@HOST:PORT (required in chartered mode) */
    const char *const *seeds;
    size_t nseeds;
    swim_config_t swim;
    uint32_t anti_entropy_ms;       /* catalog digest exchange with one random peer */
    size_t max_msg;                 /* largest peer message */
    /* Bytes per second of answers (catalog entries, federation-log hashes and objects) one peer may
     * ask for, burst 2 s of it (gossip/answers.c); a peer past it is not answered until it refills.
     * All peers together get at most ANSWER_NODE_PEERS (4) times the rate and burst (the node's cap).
     * 0: no budget, no cap. */
    double answer_rate;
    struct fedlog *fedlog;          /* the federation log to replicate (gossip/fedlog.h), or NULL */
    /* Called on the loop thread when entries from peers were accepted (wake readers). */
    void (*on_catalog)(void *ctx);
    /* Called on the intake worker thread with the entries from peers one durable commit stored,
     * decoded, in the order stored (replicate.h's io.stored; borrowed for the call), before
     * on_catalog. NULL: none. */
    void (*on_stored)(void *ctx, const Trib__CatalogEntry *const *entries, size_t n);
    /* Chartered: called on the loop thread when the federation log holds a certificate it did not
     * at the last check (also once at start); must not block (node/rotate.c posts it elsewhere). */
    void (*on_certs)(void *ctx);
    void *ctx;
} gossip_opts_t;

gossip_t *gossip_start(store_t *st, catalog_t *cat, const identity_t *id, const gossip_opts_t *o, char *err,
                       size_t errlen);
/* The federation log given in the options (NULL if none). */
struct fedlog *gossip_fedlog(gossip_t *g);
/* Broadcasts LEFT (graceful leave), stops the thread, closes sockets. Accepts NULL. */
void gossip_stop(gossip_t **gp);
/* A new entry of this node was committed: the loop pushes it (with every other entry committed
 * since its last push, read from the store, in seq order). Any thread; never blocks. */
void gossip_announce(gossip_t *g, const uint8_t *entry, size_t len);

typedef struct {
    uint8_t id[32];
    char domain[64], addr[256], http[256];
    char link[256];                 /* its data link address (gossip/linkserve.c), "" none */
    uint64_t incarnation;
    int state;                      /* TRIB__MEMBER_STATE__* */
    int self;
    /* chartered mode: a held, valid certificate of this key for this domain */
    int verified;
    char cert_serial[17];
    int64_t cert_expires_ms;
    /* chartered mode, not verified: why the key is not admitted now (trust_verdict_name: revoked,
     * expired, uncertified ...); empty when verified or in open mode */
    char refused[24];
    /* open mode: another member claims the same domain with another key (shown, never merged) */
    int conflict;
    /* chartered mode, never self: no certificate from the federation that holds now for the domain
     * it announces (none of its key is held, or only one for another domain: wrong_domain; or its
     * certificate is revoked, expired, not yet valid ...: refused says which). Not a member: it gets
     * no connection, no routed read is sent to it, member counts leave it out, and views list it
     * apart as such. A node joining reads so here until its certificate reaches this node (by its
     * hello); a certificate renewed or issued again makes it a member at once. */
    int uncertified;
    /* dead or left as restored from the store at start, and not yet heard of since (swim_unconfirmed):
     * the last life's word; a routed read to it waits for it to be heard of (gossip_read_open) */
    int unconfirmed;
} gossip_member_t;

/* Chartered: why m (an uncertified member, above) is not a member, judged now, as a person reads
 * it: "no certificate from the federation for domain D", "its key is certified by the federation
 * for another domain, not for domain D", "certificate S of D: it is revoked from T by the
 * federation's roots (reason: R)", "certificate S of D expired at T" ... Returns the verdict
 * (TRUST_UNCERTIFIED, TRUST_WRONG_DOMAIN, TRUST_REVOKED, TRUST_EXPIRED ...; TRUST_OK when its
 * certificate holds now after all). Any thread. */
trust_verdict_t gossip_member_why(gossip_t *g, const gossip_member_t *m, char *why, size_t cap);

/* Chartered: -1 (with why) while this node's own certificate is expired by its clock or revoked:
 * its writes are refused 403 node_revoked (no retry mends it). 1 when this node's copy of its own domain is known current, so it may publish: a peer's digest
 * showed no later entry than it holds (after fetching them), or no peer could be asked (a first
 * node), or no peer answered within 10 s (logged). 0 meanwhile, with why (for a 503) filled:
 * GOSSIP_WHY_MAX bytes hold every reason. */
enum { GOSSIP_WHY_MAX = 400 };
int gossip_own_synced(gossip_t *g, char *why, size_t cap);
/* The largest difference between our clock and a connecting peer's seen since start, ms (0 in
 * open mode, where hellos carry no time). */
int64_t gossip_clock_skew_max_ms(gossip_t *g);
/* Chartered: whether this node's own certificate holds now by its clock: TRUST_OK, or the verdict
 * (TRUST_REVOKED, TRUST_EXPIRED ...) with why (naming the revocation's serial and time when
 * revoked). TRUST_OK in open mode. Any thread. */
trust_verdict_t gossip_own_trust(gossip_t *g, char *why, size_t cap);
/* Forks seen (two different entries signed by a domain's key at one seq); copies up to max. */
size_t gossip_forks(gossip_t *g, repl_fork_t *out, size_t max);

/* ---- trust (chartered mode). The node's trust store, NULL in open mode: the one the node was
 * started with (gossip_opts_t.trust), or made by gossip_start from the charter. Every trust_* call
 * locks the store itself (gossip/trust.h), so any thread may ask it questions; pointers into it
 * are used between trust_read_lock and unlock. The federation log offers it certificates,
 * revocations, charter updates and hand-overs: connections and entries are judged by them from the
 * next message on. */
trust_t *gossip_trust(gossip_t *g);

/* A key rotation, live (chartered), in one turn of the loop: it presents cert (this key's
 * certificate, TrustSigned bytes, already held by the trust store) and listens as id
 * (transport_rekey), then calls commit (the caller's point of no return: 0, or -1 with err), then
 * announces the old key as left and the new one alive at the same address and speaks as id.
 * Waits for the loop (5 s at most). All or nothing: 0 switched; -1 with err, the loop still on its
 * previous key and certificate and commit failed or never called; -2 with err when the loop could
 * not be made whole either way (not listening, or out of memory after commit): the caller
 * restarts the agent. */
typedef int (*gossip_commit_fn)(void *ctx, char *err, size_t errlen);
int gossip_rekey(gossip_t *g, const identity_t *id, const uint8_t *cert, size_t len, gossip_commit_fn commit,
                 void *ctx, char *err, size_t errlen);

/* The seeds this node was started with that it has not reached SEEDS_WARN_MS (10 s) after start
 * and since (the ones the log warned about: gossip/seeds.c), as given, into out[0..max): how
 * many. Any thread. */
#define GOSSIP_SEED_TEXT 136   /* a seed as given: NODE_ID@ + a peer address (63) + NUL */
size_t gossip_seeds_unreached(gossip_t *g, char (*out)[GOSSIP_SEED_TEXT], size_t max);

/* The data link address this node gossips ("" when it serves none). */
const char *gossip_link_addr(gossip_t *g);
/* A copy of the member table (self first); *out malloc'd, returns the count. */
size_t gossip_members(gossip_t *g, gossip_member_t **out);
/* Prometheus text: members by state, messages and bytes, entries by outcome, probe RTT, reads. */
void gossip_metrics_render(gossip_t *g, FILE *f);

/* ---- routed reads: any thread (HTTP); each call may block its caller, never the loop. */
typedef struct gossip_read gossip_read_t;
enum { GOSSIP_READ_END = -1, GOSSIP_READ_FAILED = -2, GOSSIP_READ_SCHEMA = -3 };

/* The member holding domain's bound key (its successor during a live key rotation), copied into
 * *out as the member table holds it now: 0. -2 when only other members announce domain (the
 * relay would pick one; in open mode anyone may announce any domain, so never name it to a
 * client), -3 (chartered) when only members not certified for domain now announce it (none is
 * ever an owner: gossip_member_t.uncertified), -1 when no member of domain is known. Any thread. */
int gossip_read_owner(gossip_t *g, const char *domain, gossip_member_t *out);
/* Opens a read of product (a valid id of another domain) through its owner node, found by the
 * product's domain in the member table (the domain's bound key preferred). A range read goes over
 * a data link to the owner when its member claim names one (gossip/reads_link.h), else, or when
 * the link cannot be had, over the peer transport. Waits for the owner's first reply (2 s at most;
 * an owner dead only in the member list restored at this node's start is waited for within it,
 * gossip_member_t.unconfirmed). from 0 = 1; limit 0 = all; live = follow new records (limit 0), over
 * one upstream per product shared by this node's live readers. On success *last_seq is the
 * owner's last seq. NULL on failure with *status and kind: 404 not_found, 400 bad_query/bad_id,
 * 410 retired, 503 owner_unreachable (detail names the owner node id prefix, address and member
 * state; chartered, at once when no member certified for the domain is known: it names a member
 * that announces the domain uncertified and why, counted in trib_trust_refused_total{kind="owner"}),
 * 500/502 otherwise, and the detail in err. */
/* token (len bytes, NULL: none): the consumer's token, forwarded as it is for the owner to check
 * (a refusal comes back with the owner's status and code: 401 token_required ...). */
gossip_read_t *gossip_read_open(gossip_t *g, const char *product, uint64_t from, uint64_t limit, int live,
                                const char *token, size_t token_len, uint64_t *last_seq, int *status, char *kind, size_t kindlen, char *err,
                                size_t errlen);
/* Copies the next NDJSON bytes (records, each followed by '\n') into out (cap > 0): returns the
 * count, 0 when nothing arrived within timeout_ms, GOSSIP_READ_END when the range is complete,
 * GOSSIP_READ_FAILED with kind ("owner_lost" ...) and err when the read failed midway (always at
 * a line boundary). */
long gossip_read_next(gossip_read_t *rd, char *out, size_t cap, int timeout_ms, char *kind, size_t kindlen,
                      char *err, size_t errlen);
/* GOSSIP_READ_SCHEMA from gossip_read_next: the next record (seq *at) was validated against
 * another schema than the read's; the read ends there, as a local one. gossip_read_schema: the
 * schema of the records the read hands out (next 0) or of those from *at on (next 1): the
 * manifest's catalog seq (0: unknown) and version. 0, or -1 when the owner does not say. */
int gossip_read_schema(const gossip_read_t *rd, int next, uint64_t *at, uint64_t *mseq, char *version, size_t len);
/* Ends a read (the owner is told); accepts NULL, nulls *rdp. Close every read before gossip_stop. */
void gossip_read_close(gossip_read_t **rdp);
/* Records gossip_read_next has handed out so far (counted per batch: callers need not scan). */
uint64_t gossip_read_records(const gossip_read_t *rd);
/* Records of product (this node's) were committed: remote live readers get them now. */
void gossip_notify_append(gossip_t *g, const char *product);
/* The node is stopping: every relayed read ends now with "shutting_down" (waking the HTTP
 * threads that wait on them) and no new one opens. Any thread; gossip_stop still follows. */
void gossip_reads_shutdown(gossip_t *g);

#endif
