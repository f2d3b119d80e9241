/* storage/changes.c - the node-local catalog change log behind GET /v1/catalog/changes.
 *
 * Owns: the changes database (BE64 local seq -> event bytes, seq 1, 2, 3 ... on this node only):
 * one row per catalog entry this node stores (its own and its peers', written in the catalog
 * append transaction by catalog.c, so a change is in the log exactly when it is in the catalog),
 * one row per access change the access index takes (storage/access.c, in the same transaction),
 * and rows other parts of the node add (a policy set coming into force) in their own transaction,
 * once per mark (store_changes_append_once: the mark, kept in meta, commits with the row).
 * Must not: interpret events (node/changes.c turns a row into the feed's JSON) or trim the log. */
#include <stdio.h>
#include <string.h>
#include "storage/internal.h"

/* The highest seq in the log (0: empty). */
static int last_key(store_t *st, MDB_txn *txn, uint64_t *last)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->changes, &cur);
    if (rc != 0) {
        store__mdb_err(st, NULL, 0, "mdb_cursor_open(changes)", rc);
        return -1;
    }
    MDB_val k, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    *last = rc == 0 && k.mv_size == 8 ? store__be64_get(k.mv_data) : 0;
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        store__mdb_err(st, NULL, 0, "mdb_cursor_get(changes)", rc);
        return -1;
    }
    return 0;
}

int store__changes_put(store_t *st, MDB_txn *txn, const void *ev, size_t len, char *err, size_t errlen)
{
    uint64_t last;
    if (last_key(st, txn, &last) != 0) {
        store__err(err, errlen, "%s", store_last_error());
        return -1;
    }
    uint8_t kb[8];
    store__be64_put(kb, last + 1);
    MDB_val k = { 8, kb }, v = { len, (void *)ev };
    int rc = mdb_put(txn, st->changes, &k, &v, MDB_APPEND);
    return rc ? store__write_fail(st, err, errlen, "mdb_put(changes)", rc) : 0;
}

/* A catalog row: names follow the product id rule, nothing to escape. */
int store__changes_catalog_row(char *out, size_t cap, const char *domain, uint64_t seq, const char *name,
                               int tombstone, int64_t time_ms, int backfill)
{
    int n = snprintf(out, cap,
                     "{\"type\":\"catalog\",\"domain\":\"%s\",\"seq\":%llu,\"product\":\"%s/%s\","
                     "\"tombstone\":%s,\"time_ms\":%lld%s}", domain, (unsigned long long)seq, domain, name,
                     tombstone ? "true" : "false", (long long)time_ms, backfill ? ",\"backfill\":true" : "");
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

int store__changes_catalog_of(const void *row, size_t len, char domain[STORE_NAME_MAX + 1], uint64_t *seq)
{
    char text[160];   /* the row's start holds both: its domain is at most STORE_NAME_MAX */
    unsigned long long s;
    size_t n = len < sizeof text - 1 ? len : sizeof text - 1;
    memcpy(text, row, n);
    text[n] = '\0';
    if (sscanf(text, "{\"type\":\"catalog\",\"domain\":\"%63[^\"]\",\"seq\":%llu", domain, &s) != 2)
        return 0;
    *seq = s;
    return 1;
}

typedef struct {
    const void *ev;
    size_t len;
    const char *key;          /* meta key of the mark, or NULL */
    const void *mark;
    size_t marklen;
    uint64_t seq;
} put_ctx;

static int put_body(store_t *st, MDB_txn *txn, void *vctx, char *err, size_t errlen)
{
    put_ctx *p = vctx;
    p->seq = 0;
    if (p->key) {   /* once per mark: the row and the mark commit together, or neither */
        MDB_val k = { strlen(p->key), (void *)p->key }, v;
        int rc = mdb_get(txn, st->meta, &k, &v);
        if (rc == 0 && v.mv_size == p->marklen && memcmp(v.mv_data, p->mark, p->marklen) == 0)
            return 0;   /* already noted */
        if (rc != 0 && rc != MDB_NOTFOUND)
            return store__write_fail(st, err, errlen, "mdb_get(meta, change mark)", rc);
        v = (MDB_val){ p->marklen, (void *)p->mark };
        if ((rc = mdb_put(txn, st->meta, &k, &v, 0)) != 0)
            return store__write_fail(st, err, errlen, "mdb_put(meta, change mark)", rc);
    }
    int rc = store__changes_put(st, txn, p->ev, p->len, err, errlen);
    if (rc == 0 && last_key(st, txn, &p->seq) != 0)
        return -1;
    return rc;
}

int store_changes_append(store_t *st, const void *ev, size_t len, uint64_t *seq, char *err, size_t errlen)
{
    if (!st || !ev || len == 0 || len > STORE_CHANGE_MAX) {
        store__err(err, errlen, "store_changes_append: %s", len > STORE_CHANGE_MAX ? "event too large" : "bad argument");
        return -1;
    }
    put_ctx p = { .ev = ev, .len = len };
    int rc = store__write(st, put_body, &p, err, errlen);
    if (rc == 0 && seq)
        *seq = p.seq;
    return rc;
}

int store_changes_append_once(store_t *st, const char *key, const void *mark, size_t marklen, const void *ev,
                              size_t len, uint64_t *seq, char *err, size_t errlen)
{
    if (!st || !key || !*key || strncmp(key, "store.", 6) == 0 || !mark || marklen == 0 || marklen > 1024 || !ev ||
        len == 0 || len > STORE_CHANGE_MAX) {
        store__err(err, errlen, "store_changes_append_once: %s",
                   len > STORE_CHANGE_MAX ? "event too large" : "bad argument");
        return -1;
    }
    put_ctx p = { .ev = ev, .len = len, .key = key, .mark = mark, .marklen = marklen };
    int rc = store__write(st, put_body, &p, err, errlen);
    if (rc == 0 && seq)
        *seq = p.seq;
    return rc;
}

int store_changes_last(store_t *st, uint64_t *last)
{
    MDB_txn *txn;
    if (!st || !last || store__read_begin(st, &txn, NULL, 0) != 0)
        return -1;
    int rc = last_key(st, txn, last);
    store__read_end(st, txn);
    return rc;
}

uint64_t store_changes_backfilled(store_t *st)
{
    return st ? st->changes_filled : 0;
}

long store_changes_read(store_t *st, uint64_t from, uint64_t limit, store_change_fn fn, void *ctx)
{
    if (!st || !fn) {
        store__err(NULL, 0, "store_changes_read: NULL argument");
        return -1;
    }
    MDB_txn *txn;
    MDB_cursor *cur;
    if (store__scan_begin(st, st->changes, "changes", &txn, &cur) != 0)
        return -1;
    uint8_t kb[8];
    store__be64_put(kb, from ? from : 1);
    MDB_val k = { 8, kb }, v;
    long count = 0;
    int rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if ((limit && (uint64_t)count >= limit) || k.mv_size != 8)
            break;
        count++;
        if (fn(ctx, store__be64_get(k.mv_data), v.mv_data, v.mv_size) != 0)
            break;
    }
    return store__scan_end(st, txn, cur, "changes", rc) ? -1 : count;
}
