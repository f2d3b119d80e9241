/* storage/store.h - the node's LMDB environment and every named database in it.
 *
 * Owns: environment open/close, map growth on MDB_MAP_FULL, reader check, and the
 * databases meta, catalog, catalog_heads, products, records, members.
 * Must not: touch the network, verify signatures, or parse JSON/YAML. Nothing outside
 * storage/ includes lmdb.h. Callers get copies or callback views valid during the call.
 *
 * Return codes: 0 success; STORE_NOTFOUND when a key is absent; the STORE_* codes below
 * where the caller acts differently; -1 for an error described in the caller's err buffer
 * (functions without one describe it in store_last_error()).
 * Thread-safe: one store_t serves every thread. Callbacks run inside a short read
 * transaction; they must not write to the store (a write needing map growth then fails). */
#ifndef TRIB_STORE_H
#define TRIB_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "proto/tributary.pb-c.h"

typedef struct store store_t;

enum {
    STORE_NOTFOUND = 1,   /* key absent */
    STORE_DUP      = 2,   /* catalog entry at or below the head: already held */
    STORE_GAP      = 3,   /* catalog entry beyond head+1: earlier ones missing */
    STORE_BADPREV  = 4,   /* prev_hash does not match the head's hash */
    STORE_BADKEY   = 5,   /* signer is not the key bound to the domain */
    STORE_RETIRED  = 6,   /* product retired: no new records */
    STORE_STALE    = 7,   /* records validated against a manifest that is no longer the latest */
};

#define STORE_HASH_LEN 32
#define STORE_KEY_LEN  32
#define STORE_ID_MAX   128   /* "domain/name" incl. NUL: 63 + 1 + 63 + 1 */

/* ---- names (DESIGN.md §8): the one implementation of the rule for domain and product names,
 * and the rule's text, which every message about a bad name quotes. */
#define STORE_NAME_RULE "[a-z0-9][a-z0-9-]{0,62}"
int store_valid_name(const char *s, size_t len);   /* the len bytes at s (no NUL needed) */
int store_valid_id(const char *id);                /* "domain/name", NUL-terminated */

typedef struct {
    size_t map_size;      /* initial map size in bytes (0: 64 MiB) */
    size_t map_max;       /* growth ceiling in bytes (0: 1 TiB) */
    int nosync;           /* MDB_NOSYNC: commits not flushed (bulk loads, benchmarks; a crash
                           * may lose the last commits) */
    int no_search;        /* do not maintain the search index (as an older build did): the next
                           * open without it rebuilds the index; store_search fails meanwhile */
} store_opts_t;

store_t *store_open(const char *dir, const store_opts_t *opts, char *err, size_t errlen);
void store_close(store_t **sp);                       /* accepts NULL and *sp == NULL */
size_t store_map_size(store_t *st);                   /* current map size, for metrics/tests */
/* Reads that began LMDB's snapshot SNAPSHOT_TRIES (64) times, a commit starting each time, and kept
 * the last (consistent, maybe one commit newer than it names); logged at most once a minute. */
uint64_t store_snapshot_giveups(store_t *st);
const char *store_last_error(void);                   /* calling thread's last error text */
/* The cause of the calling thread's last -1 when a caller acts on it, else 0: ENOSPC when a
 * write failed because the data dir's filesystem is full (or its quota or file size limit is
 * reached); nothing of that write was stored, and reads go on working. */
int store_last_errno(void);

/* ---- meta: small named values (format version, domain, counters). Keys "store.*" are
 * storage's own. get sets *len to the stored length; -1 when it exceeds cap. */
int store_meta_get(store_t *st, const char *key, void *buf, size_t cap, size_t *len);
int store_meta_put(store_t *st, const char *key, const void *val, size_t len);

/* ---- catalog: per-domain signed logs */
typedef struct {
    uint8_t key[STORE_KEY_LEN];    /* Ed25519 key bound to the domain (first seen) */
    uint64_t seq;                  /* highest contiguous seq held */
    uint8_t hash[STORE_HASH_LEN];  /* BLAKE2b-256 of that entry's body */
} store_head_t;

int store_catalog_head(store_t *st, const char *domain, store_head_t *out);

/* Appends one verified entry in one write transaction: checks, against the stored head,
 * that seq == head+1 (else STORE_DUP / STORE_GAP), that entry->prev_hash equals the head
 * hash (STORE_BADPREV; empty for seq 1) and that signer is the bound key (STORE_BADKEY;
 * seq 1 binds it; checked first, so a forged duplicate is BADKEY). Stores signed (the
 * serialized SignedEntry) under domain|seq, moves the head to {seq, hash}, and updates the
 * products index and the search index from entry's manifest/tombstone. A tombstone for a
 * product the log never published is accepted into the log (the head moves: a validly signed
 * log must never stall a replica) but changes no product.
 * Names must follow the product id rule, and a manifest's domain must be the entry's. */
int store_catalog_append(store_t *st, const Trib__CatalogEntry *entry,
                         const uint8_t hash[STORE_HASH_LEN], const uint8_t signer[STORE_KEY_LEN],
                         const uint8_t *signed_bytes, size_t signed_len, char *err, size_t errlen);

/* One entry of a batch: a verified entry, the hash of its body, its signer and its SignedEntry
 * bytes; rc is the result store_catalog_append would give it (0 stored, a STORE_* code, -1). */
typedef struct {
    const Trib__CatalogEntry *entry;
    const uint8_t *hash;           /* STORE_HASH_LEN bytes */
    const uint8_t *signer;         /* STORE_KEY_LEN bytes */
    const uint8_t *signed_bytes;
    size_t len;
    int rc;                        /* out */
    /* A signer that is not the key of the domain's head is refused (STORE_BADKEY) unless this says
     * the log may move from that key to signer (a held key hand-over, gossip/trust.h
     * trust_handover): then the head is bound to signer from this entry on. NULL: never. Called
     * inside the write transaction: it must not touch the store. */
    int (*handover)(void *ctx, const char *domain, const uint8_t *from, const uint8_t *to);
    void *handover_ctx;
} store_append_t;

/* Appends items in order in one write transaction (one durable commit), each checked as
 * store_catalog_append checks one, against the head the items before it left. A refused item
 * (rc != 0; its text at errs + i * errlen when errs != NULL) is skipped and the others go on; an
 * item whose write fails is refused alone (-1) and the transaction is run again without it.
 * Returns how many items were stored, or -1 when the transaction itself failed (every item not
 * refused before then has rc -1; err says why). */
long store_catalog_append_many(store_t *st, store_append_t *items, size_t n, char *errs, size_t errlen,
                               char *err, size_t err_len);

/* Calls fn for entries of domain with seq >= from, in seq order, while fn returns 0 and
 * the total bytes passed stay <= max_bytes (the first entry is always passed). Returns
 * the number of entries passed, or -1. */
typedef int (*store_entry_fn)(void *ctx, uint64_t seq, const uint8_t *signed_bytes, size_t len);
int store_catalog_scan(store_t *st, const char *domain, uint64_t from, size_t max_bytes,
                       store_entry_fn fn, void *ctx);

/* Copies the SignedEntry bytes at domain|seq into a malloc'd buffer (*out, *len). */
int store_catalog_get(store_t *st, const char *domain, uint64_t seq, uint8_t **out, size_t *len);

/* Received bytes and the place they claim (store_catalog_holds). */
typedef struct {
    const char *domain;          /* NULL: nothing claimed, never held */
    uint64_t seq;
    const uint8_t *bytes;
    size_t len;
} store_copy_t;

/* held[i] = 1 when the catalog holds exactly q[i].bytes at q[i].domain|seq, else 0, for every
 * i < n, in one read transaction. Returns 0, or -1 (err says why; held all 0). */
int store_catalog_holds(store_t *st, const store_copy_t *q, size_t n, unsigned char *held, char *err, size_t errlen);

/* Calls fn(ctx, domain, head) for every domain, in domain order, until fn returns
 * non-zero. Returns 0 or -1 (likewise store_products and store_members). */
typedef int (*store_head_fn)(void *ctx, const char *domain, const store_head_t *head);
int store_catalog_heads(store_t *st, store_head_fn fn, void *ctx);

/* ---- products index: id "domain/name" -> latest manifest entry */
typedef struct {
    char id[STORE_ID_MAX];
    uint64_t manifest_seq, last_seq;
    int retired;
    int64_t updated_ms;
    /* The record schema (each property's name, logical type, required and primary key: what
     * records are validated against) of the latest manifest is the one the manifest at catalog
     * seq schema_seq brought: a version that changed only other things (a title, a description,
     * owners) keeps it, so records appended under it stay in that schema epoch and reads do not
     * end there (storage/history.c). 0 in a row written before it was kept: use manifest_seq. */
    uint64_t schema_seq;
    uint8_t schema_fp[16];
    int has_schema_fp;
} store_product_t;

/* The schema epoch records appended now get: p->schema_seq, or p->manifest_seq in an old row. */
uint64_t store_product_schema_seq(const store_product_t *p);

int store_product_get(store_t *st, const char *id, store_product_t *out);
/* Calls fn for every product in id order (domain == NULL) or of one domain. */
typedef int (*store_product_fn)(void *ctx, const store_product_t *p);
int store_products(store_t *st, const char *domain, store_product_fn fn, void *ctx);
/* How many products the index holds (retired ones included), read from LMDB's own count: O(1). */
int store_products_count(store_t *st, uint64_t *out);

/* ---- version history (storage/history.c): every manifest entry of a product, oldest first,
 * from this node's own log and from peers' alike. */
#define STORE_VERSION_MAX 256          /* bytes of a version kept (node/manifest.c's limit) */
typedef struct {
    uint64_t seq;                      /* catalog seq of the entry holding this manifest */
    int64_t time_ms;                   /* signed at (the entry's time) */
    uint8_t signer[STORE_KEY_LEN];
    char version[STORE_VERSION_MAX + 1];
} store_version_t;
typedef int (*store_version_fn)(void *ctx, const store_version_t *v);
int store_history(store_t *st, const char *id, store_version_fn fn, void *ctx);   /* 0 or -1 */
/* The history row of the manifest at catalog seq: 0, STORE_NOTFOUND or -1. */
int store_history_get(store_t *st, const char *id, uint64_t seq, store_version_t *out);

/* Schema epochs of a product's records: fn(ctx, first_seq, manifest_seq) for the epoch holding
 * record `from` (first_seq given as `from`; manifest_seq 0 = records stored before epochs were
 * kept: schema version unknown), then every epoch starting in (from, to], at most
 * STORE_EPOCHS_MAX in all. 0 or -1. */
#define STORE_EPOCHS_MAX 64
typedef int (*store_epoch_fn)(void *ctx, uint64_t first_seq, uint64_t manifest_seq);
int store_record_epochs(store_t *st, const char *id, uint64_t from, uint64_t to,
                        store_epoch_fn fn, void *ctx);

/* ---- the node-local change log (storage/changes.c): seq 1, 2, 3 ... on this node. Every
 * catalog entry stored adds a row {"type":"catalog","domain","seq","product","tombstone",
 * "time_ms"} in its own transaction, and every access change the access index takes (storage/
 * access.h) a row {"type":"grant","action":"requested|granted|denied|revoked","product","time_ms"}
 * (one indexed, never one ignored: a replay adds none); store_changes_append adds any other event
 * (bytes as given, at most STORE_CHANGE_MAX). */
#define STORE_CHANGE_MAX (64 * 1024)
int store_changes_append(store_t *st, const void *ev, size_t len, uint64_t *seq, char *err, size_t errlen);
/* The same, once per mark: appends ev and sets meta key (not "store.*") to mark (1..1024 bytes) in one
 * transaction, unless key already holds mark (then nothing is written and *seq is 0). */
int store_changes_append_once(store_t *st, const char *key, const void *mark, size_t marklen, const void *ev,
                              size_t len, uint64_t *seq, char *err, size_t errlen);
int store_changes_last(store_t *st, uint64_t *last);       /* 0 when empty; 0 or -1 */
/* Rows store_open added for catalog entries the log lacked (a store made before the log, or by a
 * build without this fill): appended after the rows it had, in catalog order (entry time across
 * domains, seq within one), with "backfill":true; done once per store. */
uint64_t store_changes_backfilled(store_t *st);
/* Calls fn for rows with seq >= from, at most limit (0: all), in one short read transaction,
 * stopping when fn returns non-zero. The count passed, or -1. */
typedef int (*store_change_fn)(void *ctx, uint64_t seq, const void *ev, size_t len);
long store_changes_read(store_t *st, uint64_t from, uint64_t limit, store_change_fn fn, void *ctx);

/* ---- search: see storage/search.h */

/* ---- records: product id|seq -> record bytes (a JSON document, as received) */
typedef struct { const void *data; size_t len; } store_buf_t;

/* Appends n records in one write transaction after checking, in that transaction, that
 * the product exists in the index (STORE_NOTFOUND) and is not retired (STORE_RETIRED).
 * On success *first and *last are the seqs given (1-based, no gaps). */
int store_records_append(store_t *st, const char *id, const store_buf_t *recs, size_t n,
                         uint64_t *first, uint64_t *last, char *err, size_t errlen);
/* The same, for records validated against the manifest at catalog seq manifest_seq: refused
 * with STORE_STALE (nothing stored) when the product's manifest is no longer that one (a publish
 * came in between: validate again), else the batch's schema epoch is noted (storage/history.c). */
int store_records_append_at(store_t *st, const char *id, uint64_t manifest_seq, const store_buf_t *recs,
                            size_t n, uint64_t *first, uint64_t *last, char *err, size_t errlen);
int store_records_last(store_t *st, const char *id, uint64_t *last);  /* 0 when none */
/* Calls fn for records with seq >= from, at most limit of them (0: no limit), in one short
 * read transaction, stopping early when fn returns non-zero. Returns the count passed to fn
 * (including the one that stopped it) or -1; an unknown product simply has no records. */
typedef int (*store_record_fn)(void *ctx, uint64_t seq, const void *data, size_t len);
long store_records_read(store_t *st, const char *id, uint64_t from, uint64_t limit,
                        store_record_fn fn, void *ctx);

/* ---- members: node id -> serialized Member */
int store_member_put(store_t *st, const uint8_t id[STORE_KEY_LEN], const uint8_t *member, size_t len);
int store_member_del(store_t *st, const uint8_t id[STORE_KEY_LEN]);
/* Many changes in one write transaction (one commit), in order: member != NULL puts it,
 * member == NULL deletes id (absent ids are no error). */
typedef struct {
    uint8_t id[STORE_KEY_LEN];
    const uint8_t *member;
    size_t len;
} store_member_change_t;
int store_members_save(store_t *st, const store_member_change_t *ch, size_t n);
typedef int (*store_member_fn)(void *ctx, const uint8_t *member, size_t len);
int store_members(store_t *st, store_member_fn fn, void *ctx);

#endif
