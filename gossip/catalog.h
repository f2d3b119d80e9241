/* gossip/catalog.h - the node's catalog replica: local publishing and accepting peers' entries.
 *
 * Owns: appending this node's own signed entries (next seq, prev_hash from the head, sign,
 * store), and accepting an entry from a peer (verify, then store_catalog_append's checks),
 * classifying every refusal so it can be counted.
 * Must not: speak to the network (the replication loop does) or parse YAML/JSON. */
#ifndef TRIB_CATALOG_H
#define TRIB_CATALOG_H

#include <stddef.h>
#include <stdint.h>
#include "storage/store.h"
#include "gossip/identity.h"

typedef enum {
    CAT_ACCEPTED = 0,
    CAT_DUPLICATE,      /* already held (replay or echo): dropped silently */
    CAT_GAP,            /* earlier entries missing: hold off and re-request */
    CAT_BAD_SIGNATURE,  /* undecodable, malformed or signature does not verify */
    CAT_WRONG_KEY,      /* domain bound to another key */
    CAT_BAD_CHAIN,      /* prev_hash does not match */
    CAT_ERROR,          /* local storage error */
    CAT_RESULT_COUNT
} cat_result_t;

const char *cat_result_name(cat_result_t r);          /* "accepted", "bad_signature" ... */

typedef struct catalog catalog_t;

catalog_t *catalog_new(store_t *st, const identity_t *id, const char *domain);
void catalog_destroy(catalog_t **cp);

/* Whether a domain's log, whose head `from` signed, may continue under key `to` (a held key
 * hand-over: chartered mode's trust_handover). Set once before the catalog is shared; without it
 * a log stays bound to the key of its first entry. Called inside store write transactions. */
typedef int (*catalog_handover_fn)(void *ctx, const char *domain, const uint8_t *from, const uint8_t *to);
void catalog_set_handover(catalog_t *c, catalog_handover_fn fn, void *ctx);
/* A key rotation: entries are signed by id (copied) from the next batch on; a batch being signed
 * finishes under the old key first. Any thread. */
void catalog_set_identity(catalog_t *c, const identity_t *id);

/* Appends this node's entry carrying manifest m (a publish) or a tombstone for name (a
 * retire, when m == NULL), and returns once it is durably stored. Thread-safe, by group commit:
 * concurrent callers queue and one of them appends up to CATALOG_BATCH_MAX queued entries, in
 * arrival order, in one durable transaction; seqs and the prev_hash chain are as if one at a
 * time, and a refused change takes no seq and fails only its own caller. On success returns 0,
 * *seq is the new entry's seq and, when out != NULL, *out and *outlen the SignedEntry bytes
 * (malloc'd) to hand to the gossip loop. */
int catalog_publish(catalog_t *c, const Trib__Manifest *m, const char *retire_name,
                    uint64_t *seq, uint8_t **out, size_t *outlen, char *err, size_t errlen);
/* Appends this node's TokenRevocation entry (auth, issue 11: not a product change) the same way;
 * *out and *outlen are the SignedEntry bytes for the gossip loop (malloc'd). 0 or -1 with err. */
int catalog_publish_revocation(catalog_t *c, const Trib__TokenRevocation *rev, uint64_t *seq, uint8_t **out,
                               size_t *outlen, char *err, size_t errlen);

/* After catalog_publish returned -1 on this thread: the errno of the storage failure behind it
 * (ENOSPC: the disk is full), also when another caller's thread wrote the batch; 0 for a refusal. */
int catalog_publish_errno(void);
/* After catalog_publish* returned -1 on this thread: 1 when the change was refused because the
 * domain's log is bound to another node's key (open mode: the first key seen for a domain keeps
 * it; chartered: no held hand-over to this node's key), also when another caller's thread wrote
 * the batch; 0 for any other failure (storage, signing, the change's own checks). */
int catalog_publish_wrong_key(void);
/* 1 when this node's domain's log is bound to another node's key and no hand-over to this one is
 * held (a publish would be refused so, catalog_publish_wrong_key); 0 otherwise. Any thread. */
int catalog_bound_elsewhere(catalog_t *c);

/* Appends this node's entry carrying access change a (a request, grant, denial or revocation:
 * not a product change), as catalog_publish does; *out and *outlen are the SignedEntry bytes
 * (malloc'd) for the gossip loop. Who may sign what is the caller's check (node/grants.c). */
int catalog_publish_access(catalog_t *c, const Trib__AccessChange *a, uint64_t *seq, uint8_t **out, size_t *outlen,
                           char *err, size_t errlen);

#define CATALOG_BATCH_MAX 128

/* Many changes at once, queued together (so they share commits), each with its own result. */
typedef struct {
    const Trib__Manifest *manifest;  /* a publish, or NULL and: */
    const char *retire_name;         /* a retire */
    int rc;                          /* out: 0, or -1 with err */
    uint64_t seq;                    /* out */
    uint8_t *signed_bytes;           /* out: malloc'd SignedEntry (the caller frees it), or NULL */
    size_t signed_len;
    char err[256];
} catalog_change_t;

/* Publishes ch[0..n) in order as catalog_publish does each; returns how many failed. */
size_t catalog_publish_many(catalog_t *c, catalog_change_t *ch, size_t n);

/* Entries this catalog_t published and the durable transactions that stored them. */
typedef struct { uint64_t published, commits; } catalog_stats_t;
void catalog_stats(catalog_t *c, catalog_stats_t *out);

/* Verifies and stores one SignedEntry received from a peer. A byte-identical copy of an entry
 * already held is CAT_DUPLICATE without a signature check (it was verified when stored). */
cat_result_t catalog_accept(catalog_t *c, const uint8_t *bytes, size_t len, char *err, size_t errlen);

/* Accepts in[0..n) (SignedEntry bytes, e.g. one received frame) as catalog_accept does each, in
 * order, storing all the accepted ones in one durable transaction. res[i] is entry i's outcome and,
 * when errs != NULL, errs + i * errlen its text (empty when accepted). Returns how many were
 * accepted. */
size_t catalog_accept_many(catalog_t *c, const ProtobufCBinaryData *in, size_t n, cat_result_t *res, char *errs,
                           size_t errlen);

/* After storing peers' entries: when the access index ignored some since its ignored count was
 * `before` (store_access_counts), says so in the log, at most once per 10 s. */
void catalog_log_ignored_access(uint64_t before);

#endif
