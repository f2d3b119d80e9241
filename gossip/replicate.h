/* gossip/replicate.h - catalog replication: push of new entries and Scuttlebutt-style anti-entropy.
 *
 * Owns: building and answering CatalogDigest / CatalogEntries messages, verifying every received
 * entry (entry_decode, then its signature: a large job's on several threads, gossip/verifymany.h)
 * but byte-identical copies of entries the store holds (verified when stored: duplicates), and
 * storing the verified entries of one frame in one write transaction (store_catalog_append_many
 * checks binding, seq and chain), re-requesting on gaps, and counting every outcome. Peers are
 * addresses; choosing them is the caller's (the gossip loop).
 * Must not: own sockets or long-lived threads. Single-threaded: call it from the gossip loop only. */
#ifndef TRIB_REPLICATE_H
#define TRIB_REPLICATE_H

#include <stddef.h>
#include <stdint.h>
#include "gossip/catalog.h"

typedef struct replicate replicate_t;

typedef struct {
    void *ctx;
    /* Sends one message (type MSG_CATALOG_*) to a peer address; must not block. */
    void (*send)(void *ctx, const char *addr, int type, const uint8_t *body, size_t len);
    /* Fills addrs with up to max random live peers (the push fan-out); returns how many. The
     * strings must stay valid until the next call. NULL: accepted entries are not forwarded. */
    size_t (*peers)(void *ctx, const char **addrs, size_t max);
    /* An entry from a peer was accepted (new to this node): wake readers. */
    void (*accepted)(void *ctx, const uint8_t *entry, size_t len);
    /* Monotonic milliseconds. NULL: no domain counts as active (see repl_push_all), so digest
     * answers never wait (what a simulation without a clock gets). */
    uint64_t (*now)(void *ctx);
    /* Answers (to digests and gap requests) are marked final: their receiver does not forward
     * them. Set it where pushes go to every member (repl_push_all): answers then only fill the
     * asker's own holes, and forwarding them would only duplicate pushes in flight. */
    int answers_final;
    /* Chartered mode: may this entry (its signature verified) be stored? Called on the thread
     * that runs repl_job_run; it counts and logs its own refusals (counted here too, in
     * entries_untrusted). from: the address of the peer that sent it. NULL: every verified entry may. */
    int (*entry_ok)(void *ctx, const Trib__CatalogEntry *e, const uint8_t signer[32], const char *from);
    /* The entries one job stored (accepted, new to this node), decoded, in the order stored: called
     * on the thread that runs repl_job_run, after their durable commit, so a follower of the catalog
     * can take them as they are instead of reading them back and decoding them again. Borrowed for
     * the call. NULL: none told. */
    void (*stored)(void *ctx, const Trib__CatalogEntry *const *entries, size_t n);
    /* Chartered mode: may a domain's log move from the key of its head to signer (a held key
     * hand-over)? store_append_t.handover; called inside the store's write transaction. */
    int (*handover)(void *ctx, const char *domain, const uint8_t *from, const uint8_t *to);
    /* The answers' budget (a peer must not get megabytes for a few bytes as often as it asks):
     * may the peer whose message is being handled (its reply address addr) be answered now? 1 yes,
     * 0 no (it counts and logs the refusal). Asked before answering a summary, digest or gap
     * request; answered is then told the bytes each message of the answer took. NULL: always. */
    int (*answer_ok)(void *ctx, const char *addr);
    void (*answered)(void *ctx, const char *addr, size_t bytes);
    /* Did the peer whose digest is being answered (its reply address addr) get this node's pushes
     * of the last REPL_ACTIVE_MS? 1: it is a member the pushes went to, so the answer leaves out
     * the domains being pushed; 0: it was away (dead, left, unknown, or back only since), so it is
     * sent what it lacks of them too. NULL: 1. */
    int (*got_pushes)(void *ctx, const char *addr);
    /* Names the node key (32 bytes) of the peer that answer_ok and answered are about to be asked
     * about, where the caller cannot: a cut answer's `more`, followed in repl_job_finish with a
     * digest charged to the frame's sender (repl_job_new's senders); NULL after. NULL hook: none. */
    void (*asker)(void *ctx, const uint8_t *key);
} repl_io_t;

/* How long a domain counts as being pushed after it changed (digest answers leave it out). */
#define REPL_ACTIVE_MS 2000

typedef struct {
    uint64_t entries[CAT_RESULT_COUNT];   /* received entries by outcome */
    uint64_t entries_sent;                /* every entry sent, per peer ... */
    uint64_t entries_pushed;              /* ... of which pushed or forwarded (not answers) */
    uint64_t digests_sent, digests_in, frames_malformed;
    uint64_t wants_sent, wants_in;        /* gap re-requests (MSG_CATALOG_WANT) */
    uint64_t summaries_sent, summaries_in, summaries_same;  /* round openers; same = nothing to do */
    uint64_t answers_deferred;            /* domains left out of a digest answer: pushes in flight */
    uint64_t answers_cut;                 /* answers cut at their size bound (the peer pulls the rest) */
    uint64_t more_refused;                /* `more` frames not followed: no pull with (nor gap request to)
                                             their sender outstanding, or not part of an answer */
    uint64_t pulls_ended;                 /* pulls ended by their answer's last part (CatalogEntries.last) */
    uint64_t batches, batch_errors;       /* write transactions of accepted entries; failed ones */
    uint64_t entries_over_cap;            /* entries past a received frame's cap, ignored */
    uint64_t forks;                       /* distinct forks (domain, seq) seen */
    uint64_t entries_untrusted;           /* verified but refused by io.entry_ok */
    uint64_t copies_unverified;           /* duplicates byte-identical to a held entry (verified when
                                           * stored): dropped without a second signature check */
    uint64_t verify_us, store_us;         /* time spent verifying received entries, storing them */
} repl_stats_t;

/* max_frame bounds the body of one CatalogEntries message. */
replicate_t *repl_new(store_t *st, catalog_t *cat, size_t max_frame, const repl_io_t *io);
void repl_destroy(replicate_t **rp);

/* Sends entry (a serialized SignedEntry) to each address; receivers forward what they accept. */
void repl_push(replicate_t *r, const uint8_t *entry, size_t len, const char *const *addrs, size_t n);
/* Sends the n entries (this node's, in seq order) in frames to every address, marked final: the
 * caller lists every alive member, so receivers do not forward them. Their domain counts as active
 * for a second: digest answers leave it out meanwhile (the push is in flight; answering it again
 * would only duplicate it), gap requests are still answered. */
void repl_push_all(replicate_t *r, const uint8_t *const *entries, const size_t *lens, size_t n,
                   const char *const *addrs, size_t naddrs);
/* Starts an anti-entropy round with one peer: sends it a summary (hash) of our digest. */
void repl_sync(replicate_t *r, const char *addr);
/* repl_sync without the sending: the MSG_CATALOG_SUMMARY body into buf (cap >= 64 is enough), for
 * the caller to carry to addr some other way. Its length, or 0 when there is nothing to carry
 * (the pull in progress with addr is this round, or our digest went to addr itself). */
size_t repl_sync_opener(replicate_t *r, const char *addr, uint8_t *buf, size_t cap);
/* Handles a MSG_CATALOG_* message (DIGEST, ENTRIES, WANT or SUMMARY). Returns 0, or -1 when the body is malformed (counted). */
int repl_handle(replicate_t *r, const char *from_addr, int type, const uint8_t *body, size_t len);
/* Handles n MSG_CATALOG_ENTRIES bodies (from froms[i]) as one: every entry verified, the verified
 * ones of all the frames stored in one write transaction, in order. 0, or -1 when a body was
 * malformed (counted; the others are handled). */
int repl_handle_entries(replicate_t *r, const char *const *froms, const uint8_t *const *bodies,
                        const size_t *lens, size_t n);

/* The same in three steps, so the costly middle can run on another thread: new (loop thread)
 * unpacks the bodies (which must stay valid until finish; senders[i], when senders is not NULL,
 * the node key of froms[i]'s sender, is copied: io.asker is told it when a `more` is followed); run (any one thread at a
 * time; it touches only the job and the store) verifies every entry and stores the verified ones in
 * one write transaction; finish (loop thread) applies the outcomes (counts, logs, forks, forwards,
 * gap requests, pulls) and frees the job. NULL when out of memory. */
typedef struct repl_job repl_job_t;
repl_job_t *repl_job_new(replicate_t *r, const char *const *froms, const uint8_t *const *senders,
                         const uint8_t *const *bodies, const size_t *lens, size_t n);
void repl_job_run(replicate_t *r, repl_job_t *j);
int repl_job_finish(replicate_t *r, repl_job_t *j);
/* The entries the job's frames hold (as unpacked by repl_job_new). */
size_t repl_job_entries(const repl_job_t *j);
const repl_stats_t *repl_stats(const replicate_t *r);

/* ---- own domain: is this node's copy of its own log current? (a node restored from a backup
 * must not publish at a seq its peers already hold). */
/* Names this node's domain (before any message is handled). */
void repl_set_own(replicate_t *r, const char *domain);
/* Asks addr for its head of our own domain and the entries of it we lack (our head of it alone,
 * only_listed: not the rest of the catalog, which the rounds bring). The peer answers with its
 * heads of the listed domains (only_listed, reply), pull in progress with us or not. */
void repl_ask(replicate_t *r, const char *addr);
/* Asks addr for the entries of domain we lack (our head of it alone, only_listed): a key's
 * certificate came after its entries were met (certwait.h). Answered at once, even while the domain
 * is being pushed. */
void repl_ask_domain(replicate_t *r, const char *addr, const char *domain);
/* Peers' digests that told us of our domain (any whole digest, or one listing it) since start;
 * *peer_head the highest head they hold for our domain, *own_head ours. */
size_t repl_own_heard(replicate_t *r, uint64_t *peer_head, uint64_t *own_head);

/* A fork: two different validly signed entries of one domain at one seq (seen as a duplicate seq
 * with other bytes, or a next entry whose prev_hash is not our head's hash). */
typedef struct {
    char domain[64];
    uint64_t seq;                /* the seq (for a chain break: the entry that does not chain) */
    char from[64];               /* the peer that sent the other entry */
} repl_fork_t;
/* Copies up to max recorded forks (the first REPL_FORKS_MAX distinct ones) into out; returns the
 * number recorded. */
#define REPL_FORKS_MAX 64
size_t repl_forks(const replicate_t *r, repl_fork_t *out, size_t max);

#endif
