/* gossip/swim_int.h - what the parts of SWIM share; included by gossip/swim*.c only.
 *
 *   swim.c        the protocol: state transitions, suspicion (Lifeguard), probing, the handlers of
 *                 every peer body, timers and the public API (swim.h).
 *   swim_table.c  the member table: lookup by id, insert with eviction, removal, the piggyback
 *                 queue, random picks, the table summary and the read-only snapshots.
 *   swim_send.c   encoding: packing a body and handing it to io.send, choosing the updates
 *                 piggybacked on a Ping or Ack, push-pull bodies.
 *   swim_sig.c    signed membership: signing our own facts, proving others' claims (verify
 *                 once per fact), the refusal counts.
 *
 * Must not: be included outside gossip/swim*.c; declare anything one part could keep static. */
#ifndef TRIB_SWIM_INT_H
#define TRIB_SWIM_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "gossip/swim.h"

#define ALIVE   TRIB__MEMBER_STATE__ALIVE
#define SUSPECT TRIB__MEMBER_STATE__SUSPECT
#define DEAD    TRIB__MEMBER_STATE__DEAD
#define LEFT    TRIB__MEMBER_STATE__LEFT
#define NSTATES 4

#define MAX_PIGGY        64     /* updates on one Ping/Ack we send */
#define MAX_UPDATES_IN   1024   /* updates on one Ping/Ack we accept */
#define MAX_RELAYS       64     /* indirect probes in flight on behalf of others */
#define MAX_CONFIRM      16     /* suspicion confirmations tracked */
#define MAX_GOSSIP_NODES 64
#define MIN_ELEM_BYTES   36     /* smallest encoded Member on the wire: id + tags */
#define VERIFY_PROBES    3      /* priority probes of a member we hold suspect on others' word */
#define SUMMARY_LEN      16
/* A restored member is unconfirmed until this many retries went unanswered: the first goes as the
 * node starts, often before its connection is up (a message to a peer not yet connected is dropped) */
#define SWIM_RESTORED_ASKS 2

/* ================================================================ types */

typedef struct {
    uint64_t start, deadline, min_ms, max_ms;
    uint32_t k, n;                          /* confirmations wanted, confirmations seen */
    uint32_t nwho;
    uint8_t who[MAX_CONFIRM + 1][SWIM_ID_LEN];   /* who[0]: the first accuser (never counted) */
} susp_t;

typedef struct {
    Trib__Member pub;           /* what callers see; pub.id.data = id, strings owned */
    uint8_t id[SWIM_ID_LEN];
    uint64_t state_ms;          /* when the state last changed (for reaping, gossip to the dead) */
    susp_t *susp;               /* while SUSPECT */
    uint64_t retry_at;          /* DEAD/LEFT: next push-pull attempt; 0 = none */
    uint32_t retry_backoff;
    uint8_t verify;             /* SUSPECT: priority probes still owed to it */
    bool queued;                /* in the piggyback queue */
    uint32_t tx;                /* times sent since queued */
    uint64_t picked;            /* round stamp while choosing updates */
    uint64_t esz_inc;           /* elem_size cache, valid for this incarnation and state */
    int esz_state;              /* (the strings change only with the incarnation) */
    size_t esz;
    size_t bsz;                 /* of it, what counts against the piggyback budget (no signature) */
    bool has_sig;               /* pub.sig = sig: the member's own signature of what we hold */
    bool retired;               /* handed over to another key (swim_retire): never ALIVE again */
    bool quiet;                 /* LEFT by swim_retire, without its LEFT signature: not repeated */
    uint8_t restored;           /* from the store, no news of it since (swim_unconfirmed): 1 + the
                                   retries sent; 0 heard of, or SWIM_RESTORED_ASKS retries unanswered */
    uint8_t sig[64];
} member_t;

typedef struct {
    uint64_t seq, origin_seq, deadline;
    uint8_t origin[SWIM_ID_LEN], target[SWIM_ID_LEN];
    char origin_addr[SWIM_MAX_ADDR + 1];
} relay_t;

typedef struct {
    char addr[SWIM_MAX_ADDR + 1];
    uint64_t retry_at;
    uint32_t backoff;
} seed_t;

typedef struct {
    bool active, indirect_done;
    uint64_t seq, sent, indirect_at, end;
    uint8_t target[SWIM_ID_LEN];
    uint32_t nrelays, nacks;
    uint8_t relays[SWIM_MAX_INDIRECT][SWIM_ID_LEN];
    bool nacked[SWIM_MAX_INDIRECT];
} probe_t;

struct swim {
    swim_config_t cfg;
    swim_io_t io;
    uint64_t rng, hseed;
    member_t *self;

    member_t **list;            /* probe order (shuffled), self included */
    size_t n, cap;              /* cap of list, bq, tmp and pubs */
    size_t probe_idx;
    member_t **tab;             /* open-addressing index by id */
    size_t tabcap;
    size_t count[NSTATES];

    member_t **bq;              /* piggyback queue, oldest first */
    size_t nbq;
    uint64_t round;

    member_t **tmp;             /* scratch for random picks */
    Trib__Member **pubs;        /* scratch for push-pull bodies */
    uint8_t *buf;               /* scratch for packing */
    size_t bufcap;

    probe_t probe;
    relay_t relays[MAX_RELAYS];
    size_t nrelays;
    seed_t seeds[SWIM_MAX_SEEDS];
    size_t nseeds;

    uint64_t seq;               /* probe sequence numbers; 0 is the gossip carrier */
    uint64_t next_probe, next_gossip, next_push_pull;
    uint64_t next_stranger;     /* rate limit of push-pulls with unknown senders */
    uint64_t deadline;
    int awareness;
    bool started, left;
    bool remind;                /* the message being handled accused us: tell the sender */
    bool signing;               /* signed mode (swim_sign_with) */
    bool forged;                /* the message being handled carried a forgery */
    uint32_t verifies;          /* signature checks the message being handled cost */
    size_t nrestored;           /* members with restored set */
    const uint8_t *from;        /* its sender (for io.refused) */
    uint8_t sk[64];             /* our Ed25519 secret key in signed mode */
    swim_stats_t st;
};

/* ================================================================ small helpers */

/* m is heard of (news of it, or its first retries unanswered): no longer swim_unconfirmed. */
static inline void swim__confirmed(swim_t *s, member_t *m)
{
    if (m->restored) {
        m->restored = 0;
        s->nrestored--;
    }
}

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rng_next(swim_t *s)            /* splitmix64 */
{
    s->rng += 0x9e3779b97f4a7c15ULL;
    return mix64(s->rng);
}

static inline uint64_t rng_below(swim_t *s, uint64_t n)
{
    return n ? rng_next(s) % n : 0;
}

static inline uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }

static inline bool is_gone(int state) { return state == DEAD || state == LEFT; }

static inline bool id_eq(const uint8_t *a, const uint8_t *b) { return memcmp(a, b, SWIM_ID_LEN) == 0; }

/* ================================================================ member table (swim_table.c) */

member_t *swim__find(const swim_t *s, const uint8_t *id);
void swim__tab_put(swim_t *s, member_t *m);
/* Grows list, bq, tmp, pubs and the index to hold `want` members. */
int swim__ensure_cap(swim_t *s, size_t want);
member_t *swim__member_new(const Trib__Member *c);
void swim__member_free(member_t *m);
/* Whether swim__member_add has room (a free slot, or a dead/left member to evict). */
bool swim__room(const swim_t *s);
/* Adds a member built from claim c (validated). NULL when the table is full of live members. */
member_t *swim__member_add(swim_t *s, const Trib__Member *c);
/* Removes m from the table (reap or eviction). */
void swim__member_remove(swim_t *s, member_t *m);
/* Queues m's current state for piggybacking as the newest, never-sent update. */
void swim__bq_push(swim_t *s, member_t *m);
void swim__bq_drop(swim_t *s, member_t *m);              /* out of the piggyback queue */
/* Replaces *dst with a copy of src ("" for NULL) unless equal; -1 when out of memory. */
int swim__set_str(char **dst, const char *src);
/* Up to k distinct random members passing `want`, other than self and `skip`. */
size_t swim__pick_random(swim_t *s, bool (*want)(const swim_t *, const member_t *, uint64_t),
                         uint64_t now, const uint8_t *skip, size_t k, member_t **out);
bool swim__want_alive(const swim_t *s, const member_t *m, uint64_t now);
bool swim__want_gossip(const swim_t *s, const member_t *m, uint64_t now);
/* An order-free hash of the member table. */
void swim__table_summary(const swim_t *s, uint8_t out[SUMMARY_LEN]);

/* ================================================================ signatures (swim_sig.c) */

/* Signs m's current facts (as LEFT when it is LEFT, else ALIVE) with sk into m->sig. m is self
 * (or the old self in a rekey). No-op when not signing. */
void swim__sign(swim_t *s, member_t *m, const uint8_t sk[64]);
/* In signed mode: may claim c, which would change what we hold, be applied? True when it
 * carries its member's valid signature of its facts as `kind` (ALIVE or LEFT); false counts
 * and reports the refusal. Always true when not signing. Ask only about news (one verify per
 * fact per node). */
bool swim__proven(swim_t *s, const Trib__Member *c, int kind);
/* Takes claim c's signature (if any) as m's; the caller takes the facts it covers. */
void swim__take_sig(member_t *m, const Trib__Member *c);
/* True when sk signs for id (a signature made with it verifies against id). */
bool swim__key_ok(const uint8_t sk[64], const uint8_t id[SWIM_ID_LEN]);

/* ================================================================ sending (swim_send.c) */

void swim__send_msg(swim_t *s, const uint8_t *to_id, const char *addr, int type,
                    const ProtobufCMessage *msg);
void swim__send_ping(swim_t *s, member_t *about, const uint8_t *to_id, const char *addr,
                     uint64_t seq, const uint8_t *origin, const char *origin_addr);
/* A probe Ping of our own, carrying what io.rider_out gives for an ALIVE target. */
void swim__send_probe(swim_t *s, member_t *m, uint64_t seq);
void swim__send_ack(swim_t *s, member_t *about, member_t *vouch, const uint8_t *to_id,
                    const char *addr, uint64_t seq, const uint8_t *target);
void swim__send_push_pull(swim_t *s, const uint8_t *to_id, const char *addr, bool join, bool reply);
/* The periodic push-pull opens with the summary of our table only. */
void swim__send_summary(swim_t *s, const uint8_t *to_id, const char *addr);

#endif
