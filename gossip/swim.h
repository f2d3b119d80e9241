/* gossip/swim.h - SWIM membership with Lifeguard, as a pure state machine.
 *
 * Owns: the member table (self included), failure detection (direct probe, k indirect probes,
 * suspicion with incarnation refutation), Lifeguard local health (awareness scales the probe
 * interval and timeout) and dynamic suspicion timeout, piggybacked updates with bounded
 * retransmits, join and periodic anti-entropy by push-pull, graceful leave, and retrying dead
 * and left members and seeds with exponential backoff so a partition heals on its own.
 * Must not: open sockets, start threads, read a clock or use real randomness. Time comes in as
 * milliseconds, randomness from a PRNG seeded by the caller, and every message leaves through
 * swim_io_t.send. Single-threaded: the caller serializes all calls on one swim_t.
 *
 * Wire (proto/tributary.proto, bodies only; the caller wraps them in an Envelope):
 *   Ping      probe_seq > 0: a probe, answered by Ack{probe_seq, target = own id}, only when
 *             target is our id (a restarted node at the same address with another id stays
 *             silent); its rider, if any, goes to io.rider_in after the Ack. probe_seq == 0:
 *             a gossip carrier, its updates applied, never answered.
 *             A relay's Ping carries origin/origin_addr (informational).
 *   Ack       target = who acknowledges, left out when that is the sender (a direct Ack). A
 *             relay forwards the target's Ack to the origin, naming the target.
 *   PingReq   "probe target at target_addr for me": the relay pings, then forwards the Ack, or
 *             sends a Nack when the target is silent for one probe timeout.
 *   PushPull  the full member list. join/periodic requests are answered once (reply = true);
 *             a reply is merged, never answered. Leave sends a reply carrying only self LEFT.
 * Claims about other members follow SWIM's order: a higher incarnation always wins; at equal
 * incarnation SUSPECT beats ALIVE, DEAD beats both, LEFT beats DEAD. Any non-ALIVE claim about
 * self at >= our incarnation is refuted by raising it. A member's address changes only with an
 * ALIVE at a higher incarnation. Unknown members are learnt only from ALIVE claims; a DEAD in a
 * push-pull is taken as SUSPECT (the accused gets its chance to refute).
 *
 * Beyond memberlist, three cheap pulls make bounded-retransmit gossip safe under loss:
 *  - a member we hold SUSPECT is probed first (up to 3 times while suspect) instead of the
 *    next round-robin member; the ping carries the accusation, so a live suspect answers;
 *  - a message that accuses us (even stale) is answered with our own state first, in the Ack
 *    or in a gossip Ping back; a forwarded Ack carries the target's state first;
 *  - a message from an unknown sender starts a push-pull with it (at most one per probe
 *    interval), so a node that missed a join learns it without waiting for anti-entropy.
 * Suspicion confirmations count distinct authenticated senders of the SUSPECT claim: Member
 * carries no "accuser" field, so a relay of someone else's suspicion counts as a confirmer.
 *
 * Signed membership (swim_sign_with; the agent turns it on in both modes): what a member says
 * of itself is signed by its own key (its id is its Ed25519 public key), so a peer can repeat
 * it but not invent it. Member.sig is the member's signature over its facts (id, incarnation,
 * domain, addr, http) as ALIVE, or as LEFT on a LEFT claim; a SUSPECT or DEAD claim carries the
 * member's ALIVE signature at that incarnation. A claim that would change what we hold about
 * another member is applied only when proven: ALIVE and LEFT always, SUSPECT and DEAD when they
 * name an incarnation above the one we hold (at the held one they are hearsay, as SWIM allows:
 * anyone may suspect, and the member refutes with a signed ALIVE at a higher incarnation, which
 * beats them). So nobody but X can make X "left", move X's address, or push X's incarnation out
 * of X's reach. An unproven claim about us is ignored, not refuted. A claim we already hold is
 * not verified again, so each fact costs one Ed25519 verify per node; after a forgery, the rest
 * of that message's claims that need proof are refused unverified. Refusals are counted by
 * reason and reported through io.refused. Without swim_sign_with, sig is neither made nor
 * checked (the simulations of test_swim.c). */
#ifndef TRIB_SWIM_H
#define TRIB_SWIM_H

#include <stddef.h>
#include <stdint.h>
#include "proto/tributary.pb-c.h"

#define SWIM_ID_LEN         32
#define SWIM_MAX_BODY       (1u << 20)  /* bodies larger than this are malformed (transport must allow it) */
#define SWIM_MAX_ADDR       255         /* addr, http, origin_addr, target_addr */
#define SWIM_MAX_DOMAIN     63
#define SWIM_MAX_SEEDS      64
#define SWIM_MAX_INDIRECT   16          /* cap on indirect_checks */
#define SWIM_RTT_BUCKETS    8
#define SWIM_MAX_RIDER      512         /* Ping.rider longer than this is malformed */
#define SWIM_NEW            (-1)        /* old_state passed to changed() for a newly learnt member */

typedef struct swim swim_t;

/* The defaults of the timings an operator can set (memberlist's LAN values), written once:
 * swim_config_default uses them, and node/config.c applies and shows them as the agent's
 * option defaults. Plain decimal literals, so they can be stringified. */
#define SWIM_DEFAULT_PROBE_INTERVAL_MS     1000
#define SWIM_DEFAULT_PROBE_TIMEOUT_MS      500
#define SWIM_DEFAULT_INDIRECT_CHECKS       3
#define SWIM_DEFAULT_SUSPICION_MULT        4
#define SWIM_DEFAULT_SUSPICION_MAX_MULT    6
#define SWIM_DEFAULT_GOSSIP_INTERVAL_MS    200
#define SWIM_DEFAULT_GOSSIP_NODES          3
#define SWIM_DEFAULT_PUSH_PULL_INTERVAL_MS 30000
#define SWIM_DEFAULT_RETRANSMIT_MULT       4
#define SWIM_DEFAULT_AWARENESS_MAX         8
#define SWIM_DEFAULT_RETRY_MAX_MS          60000

typedef struct {
    uint32_t probe_interval_ms;     /* 1000: one probe per interval (times awareness) */
    uint32_t probe_timeout_ms;      /* 500: direct ack wait before indirect probes (times awareness) */
    uint32_t indirect_checks;       /* 3: k relays asked on a missed direct ack */
    uint32_t suspicion_mult;        /* 4: min suspicion = mult * max(1, log10(N+1)) * probe interval */
    uint32_t suspicion_max_mult;    /* 6: suspicion starts at max_mult * min, shrinks with confirmations */
    uint32_t gossip_interval_ms;    /* 200 */
    uint32_t gossip_nodes;          /* 3: gossip targets per interval */
    uint32_t push_pull_interval_ms; /* 30000 (scaled up above 32 members); 0 disables */
    uint32_t retransmit_mult;       /* 4: each update is sent mult * ceil(log10(N+1)) times */
    uint32_t awareness_max;         /* 8: timeouts are scaled by (awareness + 1), awareness < max */
    uint32_t retry_base_ms;         /* 1000: first retry of a dead/left member or a seed */
    uint32_t retry_max_ms;          /* 60000: backoff doubles up to this */
    uint32_t max_piggyback_bytes;   /* 1400: byte budget of the updates on one Ping/Ack (their
                                       signatures, 66 bytes each, ride on top: swim_send.c) */
    uint32_t max_members;           /* 4096: member table cap (self included) */
    uint32_t gossip_to_dead_ms;     /* 30000: dead members still get gossip this long */
    uint64_t reap_ms;               /* 24 h: dead/left members are forgotten after this */
} swim_config_t;

typedef struct {
    void *ctx;
    /* Sends one message body to addr. to_id is the expected receiver id, NULL when unknown (a
     * seed). Must not block, may drop, must not call back into the swim_t. body is valid only
     * during the call. */
    void (*send)(void *ctx, const uint8_t *to_id, const char *addr, int msg_type,
                 const uint8_t *body, size_t len);
    /* A member was learnt (old_state SWIM_NEW) or its state, incarnation or address changed.
     * Optional. m is valid only during the call. */
    void (*changed)(void *ctx, const Trib__Member *m, int old_state);
    /* A dead/left member was reaped (forgotten), or evicted to make room. Optional. */
    void (*removed)(void *ctx, const uint8_t id[SWIM_ID_LEN]);
    /* The probe Ping about to go to to_id (an ALIVE member) may carry a rider: up to cap bytes
     * written into buf, opaque to SWIM. Returns the length, 0 for none. Optional. What rides
     * costs the bytes only, not a message (and TCP segment and ACK) of its own. */
    size_t (*rider_out)(void *ctx, const uint8_t *to_id, const char *addr, uint8_t *buf, size_t cap);
    /* A probe Ping addressed to us carried a rider (1..SWIM_MAX_RIDER bytes), after its Ack
     * went out. Optional; must not call back into the swim_t. b is valid only during the call. */
    void (*rider_in)(void *ctx, const uint8_t from[SWIM_ID_LEN], const char *from_addr, const uint8_t *b,
                     size_t len);
    /* Signed mode: a claim from `from` about member c was refused (reason: swim_refused_name).
     * Optional; for the caller's (rate-limited) log, the count is in swim_stats. */
    void (*refused)(void *ctx, const uint8_t from[SWIM_ID_LEN], const Trib__Member *c, int reason);
    /* Whether member id handed its place over to another key (chartered: a held hand-over signed
     * by id, gossip/trust.h): an ALIVE claim of a member not in the table is then not taken.
     * Optional; must not call back into the swim_t. */
    int (*retired)(void *ctx, const uint8_t id[SWIM_ID_LEN]);
} swim_io_t;

/* Why a claim was refused in signed mode (the label of trib_swim_claims_refused_total). */
enum {
    SWIM_REFUSED_UNSIGNED = 0,   /* needs the member's signature and carries none */
    SWIM_REFUSED_FORGED,         /* its signature does not verify against the member's id */
    SWIM_REFUSED_AFTER_FORGERY,  /* needs proof, in a message that already carried a forgery */
    SWIM_REFUSED_OVER_BUDGET,    /* needs proof, after SWIM_VERIFY_BUDGET checks in its message */
    SWIM_REFUSED_COUNT
};
const char *swim_refused_name(int reason);     /* "unsigned" "forged" "after_forgery" "over_budget" */
/* Signature checks one message may cost (a push-pull of thousands of fresh keys would hold the
 * loop for ~0.5 s); the claims past it are learnt later, from gossip or the next push-pull. */
#define SWIM_VERIFY_BUDGET 64

typedef struct {
    uint64_t probes;            /* probes started by us */
    uint64_t acks;              /* of those, answered (directly or through a relay) */
    uint64_t nacks;             /* nacks from relays we asked */
    uint64_t indirect_probes;   /* PingReqs we sent */
    uint64_t relayed;           /* PingReqs we served for others */
    uint64_t suspect_raised;    /* ALIVE members we suspected after a failed probe */
    uint64_t dead_declared;     /* suspicions that ran out here */
    uint64_t refuted;           /* times we raised our incarnation against a claim */
    uint64_t push_pulls;        /* push-pull requests sent (join, periodic, retry, stranger) */
    uint64_t push_pulls_same;   /* periodic openers received whose summary matched our table */
    uint64_t msgs_malformed;    /* bodies refused by swim_handle */
    uint64_t members_dropped;   /* new members not stored: table full of live members */
    uint64_t sigs_made;         /* signed mode: our own facts signed (one per incarnation) */
    uint64_t sigs_verified;     /* signed mode: Ed25519 verifies of others' claims */
    uint64_t claims_refused[SWIM_REFUSED_COUNT];
    /* signed mode: news about us (alive or left, at or above our incarnation) at another address:
     * another process with our key (a copy of the data dir running elsewhere) */
    uint64_t self_elsewhere;
    char last_self_elsewhere[SWIM_MAX_ADDR + 1];   /* the address the last one named */
    uint64_t rtt_count;                     /* direct acks measured */
    double rtt_sum_ms;
    uint64_t rtt_le[SWIM_RTT_BUCKETS];      /* cumulative: RTTs <= swim_rtt_bounds_ms[i] */
} swim_stats_t;

extern const uint32_t swim_rtt_bounds_ms[SWIM_RTT_BUCKETS];   /* 1 2 5 10 25 50 100 250 */

void swim_config_default(swim_config_t *c);

/* self: our id (32 bytes), addr (required), domain, http and incarnation (persist it and pass
 * the last one back at restart; refutation corrects a stale one anyway). Copied. Returns NULL
 * and says why in err on a bad config or self. */
swim_t *swim_new(const swim_config_t *cfg, const Trib__Member *self, const swim_io_t *io,
                 uint64_t rng_seed, char *err, size_t errlen);
void swim_destroy(swim_t **sp);

/* A seed address: sent a join push-pull at the next tick and retried with backoff while no
 * ALIVE member has that address. 0, or -1 for a bad address or too many seeds. */
int swim_add_seed(swim_t *s, const char *addr);
/* 1 when addr is one of the seeds added, else 0. */
int swim_is_seed(const swim_t *s, const char *addr);
/* The seeds added (this node's own address is never one: the caller skips it). */
size_t swim_seeds(const swim_t *s);
/* A member from the persisted list at restart: kept as DEAD (or LEFT) at its incarnation and
 * retried at once; self's entry only raises our incarnation. 0, or -1 if malformed/full. */
int swim_restore(swim_t *s, uint64_t now_ms, const Trib__Member *m);
/* 1 while a restored member is not yet heard of in this process: no news of it has come, and its
 * first two retries have not gone unanswered (the third, 3 x retry_base_ms on, finds them so). Its
 * DEAD or LEFT is then the last life's word, not this one's; a routed read waits for it (gossip.c). */
int swim_unconfirmed(const swim_t *s, const uint8_t id[SWIM_ID_LEN]);
size_t swim_unconfirmed_count(const swim_t *s);   /* how many members that is */
/* A push-pull to each of them now, outside their retry schedule (which it leaves as it is): someone
 * waits for word of one (a routed read). */
void swim_ask_unconfirmed(swim_t *s);

void swim_tick(swim_t *s, uint64_t now_ms);            /* runs due timers */
uint64_t swim_next_deadline(const swim_t *s);          /* UINT64_MAX when nothing is due */
/* One message from a peer. from is the transport-authenticated sender id, from_addr its
 * claimed reply address. Returns 0, or -1 for a malformed body (counted, nothing applied). */
int swim_handle(swim_t *s, uint64_t now_ms, const uint8_t from[SWIM_ID_LEN], const char *from_addr,
                int msg_type, const uint8_t *body, size_t len);
/* Marks self LEFT at a new incarnation and sends it to every member now. After it the node
 * neither probes, gossips nor answers. */
void swim_leave(swim_t *s, uint64_t now_ms);

void swim_foreach(const swim_t *s, void (*fn)(void *ctx, const Trib__Member *m), void *ctx);
/* Up to k distinct random ALIVE members other than self, into out; returns how many. */
size_t swim_random_alive(swim_t *s, size_t k, const Trib__Member **out);
const Trib__Member *swim_find(const swim_t *s, const uint8_t id[SWIM_ID_LEN]);
/* Signed mode from now on: sk is the Ed25519 secret key whose public half is our id (copied,
 * wiped by swim_destroy). Call before the first tick. 0, or -1 when sk is not our id's key. */
int swim_sign_with(swim_t *s, const uint8_t sk[64]);
/* A key rotation: this node is id from now on, at the same address. Its old id is announced as
 * left (peers drop it; in signed mode the old key signs it), the new one as alive, signed by sk
 * (id's secret key; NULL only when not signing). 0, or -1 (out of memory, or sk not id's key:
 * nothing changed). */
int swim_rekey(swim_t *s, const uint8_t id[SWIM_ID_LEN], const uint8_t *sk, uint64_t now_ms);
/* Member id handed its place over to another key (the caller holds the hand-over, signed by id:
 * its own word that it is gone, as good as its LEFT). It is LEFT here at once: never probed or
 * retried again, no ALIVE or suspicion of it taken any more; only its own signed LEFT still
 * replaces what we hold. A LEFT made here carries no LEFT signature of the member, so it is not
 * repeated to others (they learn the hand-over, or the member's own LEFT). changed() is not
 * called (nothing to store: a restart retires it again). 1 when it was not gone already, 0 else
 * (unknown, self, retired already). */
int swim_retire(swim_t *s, const uint8_t id[SWIM_ID_LEN], uint64_t now_ms);
const Trib__Member *swim_self(const swim_t *s);
size_t swim_count(const swim_t *s, int state);         /* members in state; all when state < 0 */
int swim_health(const swim_t *s);                      /* Lifeguard awareness, 0 = healthy */
const swim_stats_t *swim_stats(const swim_t *s);
const char *swim_state_name(int state);                /* "alive" "suspect" "dead" "left" */

#endif
