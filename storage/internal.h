/* storage/internal.h - what the storage files share: the store struct, transaction
 * wrappers, key layout and error helpers.
 *
 * Owns: the private layout of store_t and the key encodings of every named database.
 * Must not: be included from outside storage/ (it includes lmdb.h). */
#ifndef TRIB_STORE_INTERNAL_H
#define TRIB_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>
#include "gossip/log.h"
#include "storage/store.h"

#define STORE_NAME_MAX 63              /* domain or product name, without NUL */
#define STORE_ERR_MAX  256
#define STORE_SCACHE_KEEP 4            /* generations of search columns a store keeps */

struct store {
    MDB_env *env;
    MDB_dbi meta, catalog, heads, products, records, members;
    MDB_dbi s_terms, s_facets, s_docs, s_ids, s_delta;   /* search index (search_*.c) */
    /* The index columns of the latest generations queries used, in no order (search_cache.c). */
    struct search_cache *scache[STORE_SCACHE_KEEP];
    int scache_building;               /* a thread builds the columns now: the others wait for it */
    uint64_t scache_builds, scache_updates;   /* columns read whole / updated from older ones */
    MDB_dbi access;                    /* access requests and grants (access.c) */
    MDB_dbi history, rschema;          /* version history, record schema epochs (history.c) */
    MDB_dbi changes;                   /* the node-local change log (changes.c) */
    MDB_dbi fedlog;                    /* federation log objects (fedlog.c) */
    uint64_t changes_filled;           /* change-log rows filled from the catalog at open (changes_fill.c) */
    int search_off;                    /* store_opts_t.no_search: index not maintained */
    struct search_post *post;          /* posting changes of the open write txn (search_post.c) */
    struct search_written *written;    /* docids the open write txn indexed (search_gen.c) */
    /* Held shared by every transaction of this process, exclusively while the map is
     * resized: mdb_env_set_mapsize needs no transaction active in the process. */
    pthread_rwlock_t map_lock;
    size_t map_size;                   /* guarded by map_lock */
    size_t map_max;
    /* Commits this process has started (store__write, just before mdb_txn_commit): a read
     * transaction begun while none started is exactly the snapshot its txnid names (env.c,
     * store__read_begin). */
    atomic_uint_fast64_t commits_started;
    /* Reads that kept LMDB's snapshot after SNAPSHOT_TRIES begins saw commits start (env.c). */
    atomic_uint_fast64_t snapshot_giveups;
    log_limit_t snapshot_log;
    char path[512];
};

/* Tests only: called in every begin of a read snapshot between mdb_txn_begin and the second
 * look at commits_started (NULL: none), so a test can make every try see a commit start. */
extern void (*store__snapshot_hook)(store_t *st);

/* ---- errors: written to err (when given) and to the calling thread's last error */
void store__err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Describes an LMDB failure: "<what> (<path>): <mdb_strerror(rc)>". */
void store__mdb_err(store_t *st, char *err, size_t errlen, const char *what, int rc);

/* ---- transactions
 * A write body returns 0 to commit, MDB_MAP_FULL to have the map grown and the whole body
 * run again in a new transaction, or anything else (a STORE_* code, or -1 with err set) to
 * abort and return that. The body may run more than once: it must derive everything from
 * the transaction and write its outputs only through ctx. */
typedef int (*store_write_body)(store_t *st, MDB_txn *txn, void *ctx, char *err, size_t errlen);
int store__write(store_t *st, store_write_body body, void *ctx, char *err, size_t errlen);

/* A read transaction: begin takes the map lock shared; end aborts the txn and releases it.
 * Keep what happens in between short. */
int store__read_begin(store_t *st, MDB_txn **txn, char *err, size_t errlen);
void store__read_end(store_t *st, MDB_txn *txn);

/* A read transaction with a cursor on dbi (name: the database, for errors): 0, or -1 with the
 * thread's last error set and nothing left open. */
int store__scan_begin(store_t *st, MDB_dbi dbi, const char *name, MDB_txn **txn, MDB_cursor **cur);
/* Closes what store__scan_begin opened. rc is the scan's last mdb_cursor_get result: 0 or
 * MDB_NOTFOUND give 0, anything else -1 (described in the thread's last error). */
int store__scan_end(store_t *st, MDB_txn *txn, MDB_cursor *cur, const char *name, int rc);

/* Passes an LMDB result of a write body on: MDB_MAP_FULL as is (so the map grows),
 * others described in err as -1. */
int store__write_fail(store_t *st, char *err, size_t errlen, const char *what, int rc);

/* ---- keys (the name rule is public: store_valid_name, store_valid_id in store.h) */

#define STORE_SEQKEY_MAX (STORE_ID_MAX + 8)

/* prefix bytes + 0x00 + big-endian seq; returns the key length. prefix is a valid
 * domain or id, so it holds no NUL and the 0x00 ends it unambiguously. */
size_t store__seq_key(uint8_t out[STORE_SEQKEY_MAX], const char *prefix, size_t plen, uint64_t seq);
/* Reads the seq of a key written by store__seq_key with that prefix; 0 when k is not one. */
int store__seq_key_parse(const MDB_val *k, const char *prefix, size_t plen, uint64_t *seq);

void store__be64_put(uint8_t out[8], uint64_t v);
uint64_t store__be64_get(const uint8_t in[8]);

/* ---- products index, inside a transaction (products.c) */
int store__product_load(store_t *st, MDB_txn *txn, const char *id, store_product_t *out,
                        char *err, size_t errlen);   /* 0, STORE_NOTFOUND or -1 */
int store__product_save(store_t *st, MDB_txn *txn, const store_product_t *p,
                        char *err, size_t errlen);   /* 0, MDB_MAP_FULL or -1 */

/* ---- search index, inside the catalog append transaction (search.c). Each returns 0,
 * MDB_MAP_FULL or -1. put (re)indexes id from its latest manifest m (retired: its status is
 * "retired"); retire marks an indexed product retired (no-op when not indexed). */
int store__search_put(store_t *st, MDB_txn *txn, const char *id, const Trib__Manifest *m,
                      int retired, char *err, size_t errlen);
int store__search_retire(store_t *st, MDB_txn *txn, const char *id, char *err, size_t errlen);
/* After the databases are open: rebuilds the index when the store has none of this version
 * (created by an older build, or opened with no_search); with disabled, drops the marker so
 * the next open rebuilds, and leaves the index unmaintained. 0 or -1. */
int store__search_open(store_t *st, int disabled, char *err, size_t errlen);
/* Frees what queries kept in memory (search_cache.c); at store_close. */
void store__search_close(store_t *st);
/* The posting changes the write transaction's body queued (search_post.c): apply writes them
 * (store__write, before the commit: 0, MDB_MAP_FULL or -1), reset forgets them (at every
 * begin), free releases the queue (store_close). */
int store__search_post_apply(store_t *st, MDB_txn *txn, char *err, size_t errlen);
void store__search_post_reset(store_t *st);
void store__search_post_free(store_t *st);
/* The docids the write transaction's body indexed (search_gen.c, search__gen_note): apply bumps
 * the generation once for all of them (store__write, after the postings, before the commit: 0,
 * MDB_MAP_FULL or -1), reset forgets them (at every begin), free releases the list (store_close). */
int store__search_gen_apply(store_t *st, MDB_txn *txn, char *err, size_t errlen);
void store__search_gen_reset(store_t *st);
void store__search_gen_free(store_t *st);

/* ---- access index, inside the catalog append transaction (access.c): indexes entry e's
 * AccessChange by the rules of storage/access.h. 0, MDB_MAP_FULL or -1. */
int store__access_apply(store_t *st, MDB_txn *txn, const Trib__CatalogEntry *e, char *err, size_t errlen);
/* Ends the calling thread's write transaction for the access counts (store_access_counts): what
 * store__access_apply indexed or ignored in it is counted if it committed, forgotten if not. */
void store__access_settle(int committed);
/* ---- version history and record epochs, inside a caller's write transaction (history.c).
 * Each returns 0, MDB_MAP_FULL or -1. */
int store__history_put(store_t *st, MDB_txn *txn, const char *id, uint64_t seq, int64_t time_ms,
                       const uint8_t signer[STORE_KEY_LEN], const char *version, char *err,
                       size_t errlen);
int store__epoch_note(store_t *st, MDB_txn *txn, const char *id, uint64_t first_seq,
                      uint64_t manifest_seq, char *err, size_t errlen);
/* Adds a row to the change log inside a caller's write transaction (changes.c). */
int store__changes_put(store_t *st, MDB_txn *txn, const void *ev, size_t len, char *err, size_t errlen);
/* After the databases are open: fills the history from the catalog when the store has none. */
int store__history_open(store_t *st, char *err, size_t errlen);
/* After the databases are open: adds the change-log rows the catalog's entries lack, once, in
 * bounded transactions (changes_fill.c); *filled: how many. 0 or -1. */
int store__changes_open(store_t *st, uint64_t *filled, char *err, size_t errlen);
/* The change-log row of a product entry of the catalog (changes.c), written by catalog.c at append and
 * by changes_fill.c (backfill 1) when it fills the log: its length in out, or -1 when it does not fit. */
int store__changes_catalog_row(char *out, size_t cap, const char *domain, uint64_t seq, const char *name,
                               int tombstone, int64_t time_ms, int backfill);
/* The domain and catalog seq of such a row: 1, or 0 when the row is not one. */
int store__changes_catalog_of(const void *row, size_t len, char domain[STORE_NAME_MAX + 1], uint64_t *seq);

#endif
