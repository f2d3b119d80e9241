/* storage/products.c - the products index: product id "domain/name" -> ProductRef.
 *
 * Owns: encoding the index value (a serialized Trib__ProductRef), loading and saving it
 * inside a caller's transaction, and the read API (one product, or all / one domain's).
 * Must not: decide how an entry changes the index (catalog.c does, in its append
 * transaction) or write outside a transaction it is given. */
#include <assert.h>
#include <string.h>
#include "storage/internal.h"

#define REF_MAX 96   /* 3 u64 varints, 1 i64 varint, 1 bool, 16 bytes, 6 tags: < 64 bytes */

/* Decodes the index value v of key id into out. */
static int decode(const MDB_val *k, const MDB_val *v, store_product_t *out, char *err, size_t errlen)
{
    if (k->mv_size == 0 || k->mv_size >= STORE_ID_MAX) {
        store__err(err, errlen, "products index: key of %zu bytes", k->mv_size);
        return -1;
    }
    Trib__ProductRef *ref = trib__product_ref__unpack(NULL, v->mv_size, v->mv_data);
    if (!ref) {
        store__err(err, errlen, "products index: undecodable value for %.*s",
                   (int)k->mv_size, (const char *)k->mv_data);
        return -1;
    }
    memset(out, 0, sizeof *out);
    memcpy(out->id, k->mv_data, k->mv_size);
    out->id[k->mv_size] = 0;
    out->manifest_seq = ref->manifest_seq;
    out->last_seq = ref->last_seq;
    out->retired = ref->retired ? 1 : 0;
    out->updated_ms = ref->updated_ms;
    out->schema_seq = ref->schema_seq;
    if (ref->schema_fp.len == sizeof out->schema_fp) {
        memcpy(out->schema_fp, ref->schema_fp.data, sizeof out->schema_fp);
        out->has_schema_fp = 1;
    }
    trib__product_ref__free_unpacked(ref, NULL);
    return 0;
}

int store__product_load(store_t *st, MDB_txn *txn, const char *id, store_product_t *out,
                        char *err, size_t errlen)
{
    MDB_val k = { strlen(id), (void *)id }, v;
    int rc = mdb_get(txn, st->products, &k, &v);
    if (rc == MDB_NOTFOUND)
        return STORE_NOTFOUND;
    if (rc != 0) {
        store__mdb_err(st, err, errlen, "mdb_get(products)", rc);
        return -1;
    }
    return decode(&k, &v, out, err, errlen);
}

int store__product_save(store_t *st, MDB_txn *txn, const store_product_t *p,
                        char *err, size_t errlen)
{
    Trib__ProductRef ref = TRIB__PRODUCT_REF__INIT;
    ref.manifest_seq = p->manifest_seq;
    ref.last_seq = p->last_seq;
    ref.retired = p->retired != 0;
    ref.updated_ms = p->updated_ms;
    ref.schema_seq = p->schema_seq;
    if (p->has_schema_fp)
        ref.schema_fp = (ProtobufCBinaryData){sizeof p->schema_fp, (uint8_t *)p->schema_fp};
    uint8_t buf[REF_MAX];
    size_t n = trib__product_ref__get_packed_size(&ref);
    assert(n <= sizeof buf);
    trib__product_ref__pack(&ref, buf);
    MDB_val k = { strlen(p->id), (void *)p->id }, v = { n, buf };
    int rc = mdb_put(txn, st->products, &k, &v, 0);
    return rc ? store__write_fail(st, err, errlen, "mdb_put(products)", rc) : 0;
}

uint64_t store_product_schema_seq(const store_product_t *p)
{
    return p->schema_seq ? p->schema_seq : p->manifest_seq;
}

int store_product_get(store_t *st, const char *id, store_product_t *out)
{
    if (!st || !out || !store_valid_id(id)) {
        store__err(NULL, 0, "store_product_get: %s", !st || !out ? "NULL argument" : "invalid product id");
        return -1;
    }
    MDB_txn *txn;
    if (store__read_begin(st, &txn, NULL, 0) != 0)
        return -1;
    int rc = store__product_load(st, txn, id, out, NULL, 0);
    store__read_end(st, txn);
    return rc;
}

int store_products(store_t *st, const char *domain, store_product_fn fn, void *ctx)
{
    char prefix[STORE_NAME_MAX + 2];
    size_t plen = 0;
    if (!st || !fn) {
        store__err(NULL, 0, "store_products: NULL argument");
        return -1;
    }
    if (domain) {
        plen = strnlen(domain, STORE_NAME_MAX + 1);
        if (!store_valid_name(domain, plen)) {
            store__err(NULL, 0, "store_products: invalid domain");
            return -1;
        }
        memcpy(prefix, domain, plen);
        prefix[plen++] = '/';
    }
    MDB_txn *txn;
    MDB_cursor *cur;
    if (store__scan_begin(st, st->products, "products", &txn, &cur) != 0)
        return -1;
    MDB_val k = { plen, prefix }, v;
    int ret = 0;
    int rc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
            break;
        store_product_t p;
        if (decode(&k, &v, &p, NULL, 0) != 0) {
            ret = -1;
            break;
        }
        if (fn(ctx, &p) != 0)
            break;
    }
    return store__scan_end(st, txn, cur, "products", rc) ? -1 : ret;
}

int store_products_count(store_t *st, uint64_t *out)
{
    if (!st || !out) {
        store__err(NULL, 0, "store_products_count: NULL argument");
        return -1;
    }
    MDB_txn *txn;
    if (store__read_begin(st, &txn, NULL, 0) != 0)
        return -1;
    MDB_stat s;
    int rc = mdb_stat(txn, st->products, &s);
    store__read_end(st, txn);
    if (rc != 0) {
        store__mdb_err(st, NULL, 0, "mdb_stat(products)", rc);
        return -1;
    }
    *out = (uint64_t)s.ms_entries;
    return 0;
}
