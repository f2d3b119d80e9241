/* storage/fedlog.c - the federation log's objects (see storage/fedlog.h).
 *
 * Owns: the fedlog database: key = 32-byte hash, value = one kind byte + the object's bytes.
 * Must not: decode, verify or count the objects (gossip/fedlog.c does). */
#include <stdlib.h>
#include <string.h>
#include "storage/fedlog.h"
#include "storage/internal.h"

typedef struct {
    const store_fedlog_item_t *items;
    size_t n, added;
} put_ctx;

static int put_body(store_t *st, MDB_txn *txn, void *vctx, char *err, size_t errlen)
{
    put_ctx *p = vctx;
    p->added = 0;                          /* the body may run again after a map growth */
    for (size_t i = 0; i < p->n; i++) {
        const store_fedlog_item_t *it = &p->items[i];
        if (it->len == 0 || it->kind < 1 || it->kind > 255) {
            store__err(err, errlen, "store_fedlog_put: item %zu: kind %d, %zu bytes", i, it->kind, it->len);
            return -1;
        }
        MDB_val k = { STORE_HASH_LEN, (void *)it->hash }, v = { it->len + 1, NULL };
        int rc = mdb_put(txn, st->fedlog, &k, &v, MDB_NOOVERWRITE | MDB_RESERVE);
        if (rc == MDB_KEYEXIST)
            continue;
        if (rc != 0)
            return store__write_fail(st, err, errlen, "mdb_put(fedlog)", rc);
        uint8_t *dst = v.mv_data;
        dst[0] = (uint8_t)it->kind;
        memcpy(dst + 1, it->bytes, it->len);
        p->added++;
    }
    return 0;
}

int store_fedlog_put(store_t *st, const store_fedlog_item_t *items, size_t n, size_t *added)
{
    if (added)
        *added = 0;
    if (!st || (n && !items)) {
        store__err(NULL, 0, "store_fedlog_put: NULL argument");
        return -1;
    }
    if (n == 0)
        return 0;
    put_ctx p = { .items = items, .n = n };
    int rc = store__write(st, put_body, &p, NULL, 0);
    if (rc == 0 && added)
        *added = p.added;
    return rc == 0 ? 0 : -1;
}

int store_fedlog_get(store_t *st, const uint8_t hash[STORE_HASH_LEN], int *kind, uint8_t **bytes,
                     size_t *len)
{
    *bytes = NULL;
    *len = 0;
    MDB_txn *txn;
    if (store__read_begin(st, &txn, NULL, 0) != 0)
        return -1;
    MDB_val k = { STORE_HASH_LEN, (void *)hash }, v;
    int rc = mdb_get(txn, st->fedlog, &k, &v), ret = 0;
    if (rc == MDB_NOTFOUND) {
        ret = STORE_NOTFOUND;
    } else if (rc != 0) {
        store__mdb_err(st, NULL, 0, "mdb_get(fedlog)", rc);
        ret = -1;
    } else if (v.mv_size < 2) {
        store__err(NULL, 0, "fedlog: a stored object of %zu bytes", v.mv_size);
        ret = -1;
    } else {
        *bytes = malloc(v.mv_size - 1);
        if (!*bytes) {
            store__err(NULL, 0, "fedlog: out of memory");
            ret = -1;
        } else {
            *kind = ((const uint8_t *)v.mv_data)[0];
            memcpy(*bytes, (const uint8_t *)v.mv_data + 1, v.mv_size - 1);
            *len = v.mv_size - 1;
        }
    }
    store__read_end(st, txn);
    return ret;
}

int store_fedlog_each(store_t *st, store_fedlog_fn fn, void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    if (store__scan_begin(st, st->fedlog, "fedlog", &txn, &cur) != 0)
        return -1;
    MDB_val k, v;
    int rc, stop = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && !stop; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != STORE_HASH_LEN || v.mv_size < 2)
            continue;                       /* not written by store_fedlog_put: skipped */
        const uint8_t *d = v.mv_data;
        stop = fn(ctx, k.mv_data, d[0], d + 1, v.mv_size - 1);
    }
    if (store__scan_end(st, txn, cur, "fedlog", stop ? 0 : rc) != 0)
        return -1;
    return stop;
}
