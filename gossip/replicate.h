/* gossip/replicate.h - catalog replication: push of new entries and Scuttlebutt-style anti-entropy.
 *
 * Owns: building and answering CatalogDigest / CatalogEntries messages, verifying every received
 * entry (entry_verify) and storing the verified entries of one frame in one write transaction
 * (store_catalog_append_batch checks binding, seq and chain), re-requesting on gaps, and counting
 * every outcome. Peers are addresses; choosing them is the caller's (the gossip loop).
 * Must not: own sockets or threads. Single-threaded: call it from the gossip loop only. */
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
} repl_io_t;

typedef struct {
    uint64_t entries[CAT_RESULT_COUNT];   /* received entries by outcome */
    uint64_t entries_sent;                /* every entry sent, per peer ... */
    uint64_t entries_pushed;              /* ... of which pushed or forwarded (not answers) */
    uint64_t digests_sent, digests_in, frames_malformed;
    uint64_t wants_sent, wants_in;        /* gap re-requests (MSG_CATALOG_WANT) */
    uint64_t summaries_sent, summaries_in, summaries_same;  /* round openers; same = nothing to do */
    uint64_t answers_deferred;            /* domains left out of a digest answer: pushes in flight */
    uint64_t answers_cut;                 /* answers cut at their size bound (the peer pulls the rest) */
    uint64_t batches, batch_errors;       /* write transactions of accepted entries; failed ones */
    uint64_t entries_over_cap;            /* entries past a received frame's cap, ignored */
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
/* Handles a MSG_CATALOG_* message (DIGEST, ENTRIES, WANT or SUMMARY). Returns 0, or -1 when the body is malformed (counted). */
int repl_handle(replicate_t *r, const char *from_addr, int type, const uint8_t *body, size_t len);
/* Handles n MSG_CATALOG_ENTRIES bodies (from froms[i]) as one: every entry verified, the verified
 * ones of all the frames stored in one write transaction, in order. 0, or -1 when a body was
 * malformed (counted; the others are handled). */
int repl_handle_entries(replicate_t *r, const char *const *froms, const uint8_t *const *bodies,
                        const size_t *lens, size_t n);
const repl_stats_t *repl_stats(const replicate_t *r);

#endif
