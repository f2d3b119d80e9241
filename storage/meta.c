/* storage/meta.c - small named values (format version, domain, counters).
 *
 * Owns: the meta database's public get/put. Keys starting with "store." are storage's own
 * (the format marker) and are refused to callers.
 * Must not: interpret the values it holds. */
#include <string.h>
#include "storage/internal.h"

#define META_KEY_MAX 255
#define RESERVED     "store."

/* Length of a usable meta key, or 0. */
static size_t key_len(const char *key)
{
    if (!key)
        return 0;
    size_t n = strnlen(key, META_KEY_MAX + 1);
    return n > META_KEY_MAX ? 0 : n;
}

int store_meta_get(store_t *st, const char *key, void *buf, size_t cap, size_t *len)
{
    size_t klen = key_len(key);
    if (!st || !len || !klen || (cap && !buf)) {
        store__err(NULL, 0, "store_meta_get: %s", klen ? "NULL argument" : "invalid key");
        return -1;
    }
    MDB_txn *txn;
    if (store__read_begin(st, &txn, NULL, 0) != 0)
        return -1;
    MDB_val k = { klen, (void *)key }, v;
    int rc = mdb_get(txn, st->meta, &k, &v), ret = 0;
    if (rc == MDB_NOTFOUND) {
        ret = STORE_NOTFOUND;
    } else if (rc != 0) {
        store__mdb_err(st, NULL, 0, "mdb_get(meta)", rc);
        ret = -1;
    } else {
        *len = v.mv_size;
        if (v.mv_size > cap) {
            store__err(NULL, 0, "meta %s: value of %zu bytes, buffer holds %zu", key, v.mv_size, cap);
            ret = -1;
        } else if (v.mv_size) {
            memcpy(buf, v.mv_data, v.mv_size);
        }
    }
    store__read_end(st, txn);
    return ret;
}

typedef struct {
    const char *key;
    size_t klen;
    const void *val;
    size_t len;
} put_ctx;

static int put_body(store_t *st, MDB_txn *txn, void *vctx, char *err, size_t errlen)
{
    const put_ctx *p = vctx;
    MDB_val k = { p->klen, (void *)p->key }, v = { p->len, (void *)p->val };
    int rc = mdb_put(txn, st->meta, &k, &v, 0);
    return rc ? store__write_fail(st, err, errlen, "mdb_put(meta)", rc) : 0;
}

int store_meta_put(store_t *st, const char *key, const void *val, size_t len)
{
    put_ctx p = { .key = key, .klen = key_len(key), .val = val, .len = len };
    if (!st || !p.klen || (len && !val)) {
        store__err(NULL, 0, "store_meta_put: %s", p.klen ? "NULL argument" : "invalid key");
        return -1;
    }
    if (strncmp(key, RESERVED, strlen(RESERVED)) == 0) {
        store__err(NULL, 0, "store_meta_put: key %s is reserved for storage", key);
        return -1;
    }
    return store__write(st, put_body, &p, NULL, 0);
}
