/* storage/env.c - the LMDB environment: open/close, transactions, map growth, errors.
 *
 * Owns: creating and opening the environment and its named databases (refusing a data.mdb that is
 * empty or shorter than its last commit, which LMDB would start afresh or die of SIGBUS on), the
 * storage format marker, the map lock that makes mdb_env_set_mapsize safe while other threads use the
 * environment, growing the map on MDB_MAP_FULL, adopting a size grown by another process
 * (MDB_MAP_RESIZED), telling a full disk from other commit failures, and the per-thread last
 * error.
 * Must not: know what any database holds beyond the format marker. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include "storage/internal.h"

_Static_assert(sizeof(size_t) >= 8, "storage needs a 64-bit size_t for its map sizes");

#define DEFAULT_MAP      ((size_t)64 << 20)
#define DEFAULT_MAP_MAX  ((size_t)1 << 40)
#define MAX_READERS      512
#define MAX_ATTEMPTS     100        /* grow/adopt rounds before a write gives up */
#define FORMAT_KEY       "store.format"
#define FORMAT_VERSION   1u
#define FULL_BELOW       (1ull << 20)   /* free bytes under which an EIO commit is a full disk */

/* The calling thread's last storage error, for functions that take no err buffer, and its
 * cause when the caller acts on it (ENOSPC: the disk is full), else 0. */
static _Thread_local char tl_err[STORE_ERR_MAX];
static _Thread_local int tl_errno;
/* The map locks the calling thread holds shared, with their nesting depth. A store call
 * made from inside a store callback must not take the lock again: the lock prefers
 * writers (so growth is not starved by a stream of readers), and a second shared hold
 * would queue behind a waiting grower that waits for our first one. */
#define MAX_HELD 4
static _Thread_local struct { store_t *st; int depth; } tl_held[MAX_HELD];

/* ---------------------------------------------------------------- errors */

void store__err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tl_errno = 0;
    vsnprintf(tl_err, sizeof tl_err, fmt, ap);
    va_end(ap);
    if (err && errlen)
        snprintf(err, errlen, "%s", tl_err);
}

void store__mdb_err(store_t *st, char *err, size_t errlen, const char *what, int rc)
{
    store__err(err, errlen, "%s (%s): %s", what, st ? st->path : "?", mdb_strerror(rc));
}

int store__write_fail(store_t *st, char *err, size_t errlen, const char *what, int rc)
{
    if (rc == MDB_MAP_FULL)
        return rc;
    store__mdb_err(st, err, errlen, what, rc);
    return -1;
}

const char *store_last_error(void)
{
    return tl_err;
}

int store_last_errno(void)
{
    return tl_errno;
}

/* A commit that failed for want of disk space. LMDB writes the transaction's pages with
 * pwrite and reports a short write as EIO (only a write that could not start is ENOSPC), so
 * an EIO with (almost) nothing left on the data dir's filesystem is the disk being full, not
 * a failing device. Nothing of the transaction is stored: the meta page was not written. */
static int disk_full(store_t *st, int rc, unsigned long long *avail)
{
    struct statvfs sv;
    *avail = 0;
    if (rc != ENOSPC && rc != EDQUOT && rc != EFBIG && rc != EIO)
        return 0;
    if (statvfs(st->path, &sv) == 0)
        *avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
    return rc != EIO || *avail < FULL_BELOW;
}

/* Describes a failed mdb_txn_commit; a full disk says so (store_last_errno() == ENOSPC). */
static void commit_fail(store_t *st, char *err, size_t errlen, int rc)
{
    unsigned long long avail;
    if (!disk_full(st, rc, &avail)) {
        store__mdb_err(st, err, errlen, "mdb_txn_commit", rc);
        return;
    }
    store__err(err, errlen, "no space left on device: %s has %llu KiB free (%s); nothing of "
               "this write was stored, stored data is intact and still readable", st->path,
               avail >> 10, rc == EFBIG ? "file size limit" : rc == EDQUOT ? "quota" : "disk full");
    tl_errno = ENOSPC;
}

/* ---------------------------------------------------------------- map lock and growth */

/* The calling thread's hold on st's map lock, or NULL. */
static int *held(store_t *st)
{
    for (int i = 0; i < MAX_HELD; i++)
        if (tl_held[i].st == st && tl_held[i].depth > 0)
            return &tl_held[i].depth;
    return NULL;
}

static int lock_shared(store_t *st, char *err, size_t errlen)
{
    int *depth = held(st);
    if (depth) {
        ++*depth;
        return 0;
    }
    for (int i = 0; i < MAX_HELD; i++) {
        if (tl_held[i].depth == 0) {
            int rc = pthread_rwlock_rdlock(&st->map_lock);
            if (rc != 0) {
                store__err(err, errlen, "map lock (%s): %s", st->path, strerror(rc));
                return -1;
            }
            tl_held[i].st = st;
            tl_held[i].depth = 1;
            return 0;
        }
    }
    store__err(err, errlen, "%s: more than %d stores read in nested callbacks on one thread",
               st->path, MAX_HELD);
    return -1;
}

static void unlock_shared(store_t *st)
{
    int *depth = held(st);
    assert(depth);
    if (--*depth == 0)
        pthread_rwlock_unlock(&st->map_lock);
}

/* Refreshes st->map_size from LMDB. Caller holds the map lock exclusively. */
static void refresh_map_size(store_t *st)
{
    MDB_envinfo info;
    if (mdb_env_info(st->env, &info) == 0)
        st->map_size = info.me_mapsize;
}

/* Grows the map after a write saw MDB_MAP_FULL with the map at `seen` bytes (size 0:
 * adopt the size another process set, after MDB_MAP_RESIZED). Does nothing when another
 * thread has grown it meanwhile. */
static int map_grow(store_t *st, size_t seen, int adopt, char *err, size_t errlen)
{
    if (held(st)) {
        /* We would wait for our own shared hold: a store write from inside a callback. */
        store__err(err, errlen, "map of %s must grow, but this thread is inside a store read "
                   "(a store write from a store callback?)", st->path);
        return -1;
    }
    int rc = pthread_rwlock_wrlock(&st->map_lock);
    if (rc != 0) {
        store__err(err, errlen, "map lock (%s): %s", st->path, strerror(rc));
        return -1;
    }
    int ret = 0;
    if (adopt) {
        rc = mdb_env_set_mapsize(st->env, 0);
        if (rc != 0) {
            store__mdb_err(st, err, errlen, "mdb_env_set_mapsize(adopt)", rc);
            ret = -1;
        }
        refresh_map_size(st);
        if (st->map_size > st->map_max)
            st->map_max = st->map_size;   /* another process's ceiling was higher */
    } else if (st->map_size == seen) {
        if (seen >= st->map_max) {
            store__err(err, errlen, "map of %s is full at its ceiling of %zu bytes (map_max)",
                       st->path, st->map_max);
            ret = -1;
        } else {
            size_t next = seen > st->map_max / 2 ? st->map_max : seen * 2;
            rc = mdb_env_set_mapsize(st->env, next);
            if (rc != 0) {
                store__mdb_err(st, err, errlen, "mdb_env_set_mapsize(grow)", rc);
                ret = -1;
            }
            refresh_map_size(st);
        }
    }
    pthread_rwlock_unlock(&st->map_lock);
    return ret;
}

/* ---------------------------------------------------------------- transactions */

/* Begins a read transaction that sees exactly the last commit it names.
 *
 * LMDB 0.9 (mdb_txn_renew0) takes the last committed txnid N, then copies the roots from meta
 * page N & 1 without checking that the page still holds N: if this thread is descheduled between
 * the two while two more commits finish, the page holds N + 2's roots by then. The transaction
 * is consistent (N + 2's pages stay reserved: the reader slot says N), but newer than the one
 * this thread begins next, which sees N + 1: a read of records 1..3700 could be followed by one
 * that ends at 3600. Seen here under load (tests/test_storage.c, concurrent_writers_...: 1 run
 * in 400 failed; a bare LMDB test of three writers and three readers: 12 non-monotonic reads in
 * 200 rounds, 0 with this check in 250).
 *
 * The page is only overwritten by the commit after the next, and every commit of this process
 * is counted as it starts (store__write), so a transaction begun while the count did not move
 * holds the snapshot it names; else it is begun again. Begins take about a microsecond and
 * commits (fsync) far longer, so a second try is rare and a third rarer still; after
 * SNAPSHOT_TRIES the transaction is kept as LMDB gave it (consistent, maybe newer than it names),
 * counted (store_snapshot_giveups, /metrics) and logged at most once a minute. Commits by another
 * process are not counted (the agent is the store's only writer in normal use). */
#define SNAPSHOT_TRIES 64
#define SNAPSHOT_LOG_MS 60000

void (*store__snapshot_hook)(store_t *st);

static int begin_snapshot(store_t *st, MDB_txn **txn)
{
    for (int i = 0; i < SNAPSHOT_TRIES; i++) {
        uint_fast64_t before = atomic_load_explicit(&st->commits_started, memory_order_acquire);
        int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn);
        if (rc != 0)
            return rc;
        if (store__snapshot_hook != NULL)
            store__snapshot_hook(st);
        atomic_thread_fence(memory_order_acquire);   /* the meta copy is read before the count */
        if (atomic_load_explicit(&st->commits_started, memory_order_relaxed) == before)
            return 0;
        if (i + 1 < SNAPSHOT_TRIES)
            mdb_txn_abort(*txn);
    }
    atomic_fetch_add(&st->snapshot_giveups, 1);
    uint64_t held;
    if (log_limit(&st->snapshot_log, SNAPSHOT_LOG_MS, &held)) {
        char more[96];
        log_warn("store: a read kept LMDB's snapshot (txn %zu) after %d begins each saw a commit start: it may be "
                 "newer than it names, and a later read see less%s", mdb_txn_id(*txn), SNAPSHOT_TRIES,
                 log_held(more, sizeof more, held, "such reads"));
    }
    return 0;
}

uint64_t store_snapshot_giveups(store_t *st)
{
    return st ? (uint64_t)atomic_load(&st->snapshot_giveups) : 0;
}

int store__read_begin(store_t *st, MDB_txn **txn, char *err, size_t errlen)
{
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (lock_shared(st, err, errlen) != 0)
            return -1;
        int rc = begin_snapshot(st, txn);
        if (rc == 0)
            return 0;
        unlock_shared(st);
        if (rc != MDB_MAP_RESIZED) {
            store__mdb_err(st, err, errlen, "mdb_txn_begin(read)", rc);
            return -1;
        }
        if (map_grow(st, 0, 1, err, errlen) != 0)
            return -1;
    }
    store__err(err, errlen, "mdb_txn_begin(read) (%s): map keeps being resized", st->path);
    return -1;
}

void store__read_end(store_t *st, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    unlock_shared(st);
}

/* "<op>(<name>)" as an LMDB failure. */
static void scan_err(store_t *st, const char *op, const char *name, int rc)
{
    char what[64];
    snprintf(what, sizeof what, "%s(%s)", op, name);
    store__mdb_err(st, NULL, 0, what, rc);
}

int store__scan_begin(store_t *st, MDB_dbi dbi, const char *name, MDB_txn **txn, MDB_cursor **cur)
{
    if (store__read_begin(st, txn, NULL, 0) != 0)
        return -1;
    int rc = mdb_cursor_open(*txn, dbi, cur);
    if (rc != 0) {
        scan_err(st, "mdb_cursor_open", name, rc);
        store__read_end(st, *txn);
        return -1;
    }
    return 0;
}

int store__scan_end(store_t *st, MDB_txn *txn, MDB_cursor *cur, const char *name, int rc)
{
    mdb_cursor_close(cur);
    store__read_end(st, txn);
    if (rc == 0 || rc == MDB_NOTFOUND)
        return 0;
    scan_err(st, "mdb_cursor_get", name, rc);
    return -1;
}

int store__write(store_t *st, store_write_body body, void *ctx, char *err, size_t errlen)
{
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (lock_shared(st, err, errlen) != 0)
            return -1;
        size_t seen = st->map_size;
        MDB_txn *txn;
        int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
        if (rc != 0) {
            unlock_shared(st);
            if (rc != MDB_MAP_RESIZED) {
                store__mdb_err(st, err, errlen, "mdb_txn_begin(write)", rc);
                return -1;
            }
            if (map_grow(st, 0, 1, err, errlen) != 0)
                return -1;
            continue;
        }
        store__search_post_reset(st);      /* what an aborted attempt queued */
        store__search_gen_reset(st);
        rc = body(st, txn, ctx, err, errlen);
        if (rc == 0)
            rc = store__search_post_apply(st, txn, err, errlen);
        if (rc == 0)
            rc = store__search_gen_apply(st, txn, err, errlen);
        if (rc == 0) {
            atomic_fetch_add(&st->commits_started, 1);   /* before: see begin_snapshot */
            rc = mdb_txn_commit(txn);          /* frees txn, also on failure */
            if (rc != 0 && rc != MDB_MAP_FULL) {
                store__access_settle(0);
                unlock_shared(st);
                commit_fail(st, err, errlen, rc);
                return -1;
            }
        } else {
            mdb_txn_abort(txn);
        }
        store__access_settle(rc == 0);   /* the access index's counts: only what was committed */
        unlock_shared(st);
        if (rc != MDB_MAP_FULL) {
            assert(rc == 0 || rc == -1 || (rc >= STORE_NOTFOUND && rc <= STORE_RETIRED));
            return rc;                          /* 0, a STORE_* code, or -1 */
        }
        if (map_grow(st, seen, 0, err, errlen) != 0)
            return -1;
    }
    store__err(err, errlen, "write to %s gave up after %d map growths", st->path, MAX_ATTEMPTS);
    return -1;
}

/* ---------------------------------------------------------------- open / close */

static int open_dbi_flags(store_t *st, MDB_txn *txn, const char *name, unsigned flags,
                          MDB_dbi *dbi, char *err, size_t errlen)
{
    int rc = mdb_dbi_open(txn, name, MDB_CREATE | flags, dbi);
    if (rc == 0)
        return 0;
    char what[64];
    snprintf(what, sizeof what, "mdb_dbi_open(%s)", name);
    return store__write_fail(st, err, errlen, what, rc);
}

static int open_dbi(store_t *st, MDB_txn *txn, const char *name, MDB_dbi *dbi,
                    char *err, size_t errlen)
{
    return open_dbi_flags(st, txn, name, 0, dbi, err, errlen);
}

/* Posting lists: sorted fixed-size duplicates, read a page at a time. */
static int open_dbi_dup(store_t *st, MDB_txn *txn, const char *name, MDB_dbi *dbi,
                        char *err, size_t errlen)
{
    return open_dbi_flags(st, txn, name, MDB_DUPSORT | MDB_DUPFIXED, dbi, err, errlen);
}

/* Opens every named database and checks (or writes, when new) the format marker. */
static int open_body(store_t *st, MDB_txn *txn, void *ctx, char *err, size_t errlen)
{
    (void)ctx;
    int rc;
    if ((rc = open_dbi(st, txn, "meta", &st->meta, err, errlen)) != 0 ||
        (rc = open_dbi(st, txn, "catalog", &st->catalog, err, errlen)) != 0 ||
        (rc = open_dbi(st, txn, "catalog_heads", &st->heads, err, errlen)) != 0 ||
        (rc = open_dbi(st, txn, "products", &st->products, err, errlen)) != 0 ||
        (rc = open_dbi(st, txn, "records", &st->records, err, errlen)) != 0 ||
        (rc = open_dbi(st, txn, "members", &st->members, err, errlen)) != 0 ||
        (rc = open_dbi_dup(st, txn, "search_terms", &st->s_terms, err, errlen)) != 0 ||
        (rc = open_dbi_dup(st, txn, "search_facets", &st->s_facets, err, errlen)) != 0 ||
        (rc = open_dbi(st, txn, "search_docs", &st->s_docs, err, errlen)) != 0 ||
        (rc = open_dbi(st, txn, "search_ids", &st->s_ids, err, errlen)) != 0 ||
        (rc = open_dbi(st, txn, "search_delta", &st->s_delta, err, errlen)) != 0 ||
        (rc = open_dbi(st, txn, "access", &st->access, err, errlen)) != 0 ||
        (rc = open_dbi(st, txn, "history", &st->history, err, errlen)) != 0 ||
        (rc = open_dbi(st, txn, "record_schema", &st->rschema, err, errlen)) != 0 ||
        (rc = open_dbi(st, txn, "changes", &st->changes, err, errlen)) != 0 ||

        (rc = open_dbi(st, txn, "fedlog", &st->fedlog, err, errlen)) != 0)
        return rc;

    MDB_val k = { strlen(FORMAT_KEY), (void *)FORMAT_KEY }, v;
    rc = mdb_get(txn, st->meta, &k, &v);
    if (rc == 0) {
        if (v.mv_size != 4) {
            store__err(err, errlen, "%s: storage format marker has %zu bytes, expected 4",
                       st->path, v.mv_size);
            return -1;
        }
        const uint8_t *b = v.mv_data;
        uint32_t ver = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        if (ver != FORMAT_VERSION) {
            store__err(err, errlen, "%s: storage format %u, this build reads format %u",
                       st->path, ver, FORMAT_VERSION);
            return -1;
        }
        return 0;
    }
    if (rc != MDB_NOTFOUND)
        return store__write_fail(st, err, errlen, "mdb_get(meta, format)", rc);
    uint8_t b[4] = { 0, 0, 0, FORMAT_VERSION };
    v.mv_size = sizeof b;
    v.mv_data = b;
    rc = mdb_put(txn, st->meta, &k, &v, 0);
    return rc ? store__write_fail(st, err, errlen, "mdb_put(meta, format)", rc) : 0;
}

/* ---------------------------------------------------------------- damaged files */

#define DAMAGED_HINT "restore it from a backup (docs/deploy.md, \"Backup and restore\")"

/* A data.mdb that exists with no bytes: a copy or a disk that lost the file's content. LMDB
 * would make a new, empty store in it (a node with its old identity and none of its records). */
static int file_empty(const store_t *st, char *err, size_t errlen)
{
    char path[sizeof st->path + 16];
    struct stat sb;
    snprintf(path, sizeof path, "%s/data.mdb", st->path);
    if (stat(path, &sb) != 0 || sb.st_size != 0)
        return 0;
    store__err(err, errlen, "%s is empty (0 bytes), the store is lost: " DAMAGED_HINT
               ", or delete it to start empty (peers resend the catalog, not this node's records)", path);
    return -1;
}

/* A data.mdb shorter than the pages its last commit uses: LMDB maps the file and would die of
 * SIGBUS at the first read past its end. The meta page names the last page in use; every
 * page up to it was written (pwrite) before that meta page was. */
static int file_truncated(store_t *st, char *err, size_t errlen)
{
    char path[sizeof st->path + 16];
    struct stat sb;
    MDB_envinfo info;
    MDB_stat ms;
    snprintf(path, sizeof path, "%s/data.mdb", st->path);
    if (stat(path, &sb) != 0 || mdb_env_info(st->env, &info) != 0 || mdb_env_stat(st->env, &ms) != 0)
        return 0;
    unsigned long long need = ((unsigned long long)info.me_last_pgno + 1) * ms.ms_psize;
    if ((unsigned long long)sb.st_size >= need)
        return 0;
    store__err(err, errlen, "%s is truncated: %lld bytes, its last commit needs %llu (LMDB would "
               "crash reading past the end): " DAMAGED_HINT, path, (long long)sb.st_size, need);
    return -1;
}

store_t *store_open(const char *dir, const store_opts_t *opts, char *err, size_t errlen)
{
    if (!dir || !*dir) {
        store__err(err, errlen, "store_open: no data directory given");
        return NULL;
    }
    size_t map = opts && opts->map_size ? opts->map_size : DEFAULT_MAP;
    size_t max = opts && opts->map_max ? opts->map_max : DEFAULT_MAP_MAX;
    if (map > max) {
        store__err(err, errlen, "store_open(%s): map_size %zu exceeds map_max %zu", dir, map, max);
        return NULL;
    }
    store_t *st = calloc(1, sizeof *st);
    if (!st) {
        store__err(err, errlen, "store_open(%s): out of memory", dir);
        return NULL;
    }
    if (strlen(dir) >= sizeof st->path) {
        store__err(err, errlen, "store_open: data directory path too long (%zu bytes)", strlen(dir));
        free(st);
        return NULL;
    }
    strcpy(st->path, dir);
    st->map_max = max;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        store__err(err, errlen, "mkdir(%s): %s", dir, strerror(errno));
        free(st);
        return NULL;
    }
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* Growth first, so readers in a loop cannot starve it (see tl_held for nesting). */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&st->map_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) {
        store__err(err, errlen, "pthread_rwlock_init (%s): %s", dir, strerror(rc));
        free(st);
        return NULL;
    }

    rc = mdb_env_create(&st->env);
    if (rc != 0) {
        store__mdb_err(st, err, errlen, "mdb_env_create", rc);
        st->env = NULL;
        goto fail;
    }
    if ((rc = mdb_env_set_maxdbs(st->env, 32)) != 0) {
        store__mdb_err(st, err, errlen, "mdb_env_set_maxdbs", rc);
        goto fail;
    }
    if ((rc = mdb_env_set_maxreaders(st->env, MAX_READERS)) != 0) {
        store__mdb_err(st, err, errlen, "mdb_env_set_maxreaders", rc);
        goto fail;
    }
    if ((rc = mdb_env_set_mapsize(st->env, map)) != 0) {
        store__mdb_err(st, err, errlen, "mdb_env_set_mapsize", rc);
        goto fail;
    }
    /* MDB_NOTLS: read transactions belong to the txn object, not the thread (HTTP threads
     * and the gossip thread share the environment). Durable: no MDB_NOSYNC unless asked. */
    unsigned flags = MDB_NOTLS | (opts && opts->nosync ? MDB_NOSYNC : 0);
    if (file_empty(st, err, errlen) != 0)
        goto fail;
    if ((rc = mdb_env_open(st->env, dir, flags, 0600)) != 0) {
        if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
            store__err(err, errlen, "%s/data.mdb: %s: " DAMAGED_HINT, dir, mdb_strerror(rc));
        else
            store__mdb_err(st, err, errlen, "mdb_env_open", rc);
        goto fail;
    }
    if (file_truncated(st, err, errlen) != 0)
        goto fail;
    int dead = 0;
    if ((rc = mdb_reader_check(st->env, &dead)) != 0) {
        store__mdb_err(st, err, errlen, "mdb_reader_check", rc);
        goto fail;
    }
    refresh_map_size(st);   /* LMDB raises it to what the file already uses */
    if (st->map_size > st->map_max)
        st->map_max = st->map_size;
    if (store__write(st, open_body, NULL, err, errlen) != 0 ||
        store__search_open(st, opts && opts->no_search, err, errlen) != 0 ||
        store__history_open(st, err, errlen) != 0 ||
        store__changes_open(st, &st->changes_filled, err, errlen) != 0)
        goto fail;
    return st;

fail:
    if (st->env)
        mdb_env_close(st->env);
    pthread_rwlock_destroy(&st->map_lock);
    free(st);
    return NULL;
}

void store_close(store_t **sp)
{
    if (!sp || !*sp)
        return;
    store_t *st = *sp;
    store__search_close(st);
    store__search_post_free(st);
    store__search_gen_free(st);
    mdb_env_close(st->env);
    pthread_rwlock_destroy(&st->map_lock);
    free(st);
    *sp = NULL;
}

size_t store_map_size(store_t *st)
{
    if (!st)
        return 0;
    if (lock_shared(st, NULL, 0) != 0)
        return 0;
    size_t n = st->map_size;
    unlock_shared(st);
    return n;
}
