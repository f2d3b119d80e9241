/* storage/records.c - product record logs: product id 0x00 BE-seq -> record bytes.
 *
 * Owns: appending a batch of records in one write transaction (after checking, in it, that
 * the product is indexed and not retired), the last seq of a product (derived from the
 * stored keys, so it is right after a crash), and paged reads in one short read txn each.
 * Must not: parse or validate record contents (node/records.c does). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "storage/internal.h"

/* Length of a valid product id, or 0. */
static size_t id_len(const char *id)
{
    return store_valid_id(id) ? strlen(id) : 0;
}

/* Highest stored seq of product id (0 when none), by seeking just past its keys: every
 * key "id 0x00 seq" sorts before "id 0x01". */
static int last_seq(store_t *st, MDB_txn *txn, const char *id, size_t ilen, uint64_t *last,
                    char *err, size_t errlen)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->records, &cur);
    if (rc != 0) {
        store__mdb_err(st, err, errlen, "mdb_cursor_open(records)", rc);
        return -1;
    }
    uint8_t kb[STORE_ID_MAX + 1];
    memcpy(kb, id, ilen);
    kb[ilen] = 1;
    MDB_val k = { ilen + 1, kb }, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
    else if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    *last = 0;
    int ret = 0;
    if (rc == 0) {
        if (!store__seq_key_parse(&k, id, ilen, last))
            *last = 0;   /* the key before belongs to another product */
    } else if (rc != MDB_NOTFOUND) {
        store__mdb_err(st, err, errlen, "mdb_cursor_get(records)", rc);
        ret = -1;
    }
    mdb_cursor_close(cur);
    return ret;
}

typedef struct {
    const char *id;
    size_t ilen;
    const store_buf_t *recs;
    size_t n;
    uint64_t manifest_seq;  /* 0: any (store_records_append), else the manifest validated against */
    uint64_t first, last;   /* outputs */
} append_ctx;

static int append_body(store_t *st, MDB_txn *txn, void *vctx, char *err, size_t errlen)
{
    append_ctx *a = vctx;
    store_product_t p;
    int rc = store__product_load(st, txn, a->id, &p, err, errlen);
    if (rc == STORE_NOTFOUND)
        store__err(err, errlen, "records %s: no such product", a->id);
    if (rc != 0)
        return rc;
    if (p.retired) {
        store__err(err, errlen, "records %s: product is retired", a->id);
        return STORE_RETIRED;
    }
    if (a->manifest_seq && p.manifest_seq != a->manifest_seq) {
        store__err(err, errlen, "records %s: the manifest changed (catalog seq %llu, validated against %llu)",
                   a->id, (unsigned long long)p.manifest_seq, (unsigned long long)a->manifest_seq);
        return STORE_STALE;
    }
    uint64_t last;
    if (last_seq(st, txn, a->id, a->ilen, &last, err, errlen) != 0)
        return -1;
    if (a->manifest_seq &&
        (rc = store__epoch_note(st, txn, a->id, last + 1, store_product_schema_seq(&p), err, errlen)) != 0)
        return rc;
    if (a->n > UINT64_MAX - last) {
        store__err(err, errlen, "records %s: seq would overflow", a->id);
        return -1;
    }
    for (size_t i = 0; i < a->n; i++) {
        uint8_t kb[STORE_SEQKEY_MAX];
        MDB_val k = { store__seq_key(kb, a->id, a->ilen, last + 1 + i), kb };
        MDB_val v = { a->recs[i].len, (void *)a->recs[i].data };
        rc = mdb_put(txn, st->records, &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) {
            store__err(err, errlen, "records %s: seq %llu already stored (%s corrupt?)",
                       a->id, (unsigned long long)(last + 1 + i), st->path);
            return -1;
        }
        if (rc != 0)
            return store__write_fail(st, err, errlen, "mdb_put(records)", rc);
    }
    a->first = last + 1;
    a->last = last + a->n;
    return 0;
}

int store_records_append(store_t *st, const char *id, const store_buf_t *recs, size_t n,
                         uint64_t *first, uint64_t *last, char *err, size_t errlen)
{
    return store_records_append_at(st, id, 0, recs, n, first, last, err, errlen);
}

int store_records_append_at(store_t *st, const char *id, uint64_t manifest_seq, const store_buf_t *recs,
                            size_t n, uint64_t *first, uint64_t *last, char *err, size_t errlen)
{
    if (!st || !recs || n == 0 || !first || !last) {
        store__err(err, errlen, "store_records_append: NULL argument or no records");
        return -1;
    }
    append_ctx a = { .id = id, .ilen = id_len(id), .recs = recs, .n = n, .manifest_seq = manifest_seq };
    if (!a.ilen) {
        store__err(err, errlen, "store_records_append: invalid product id");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!recs[i].data || recs[i].len == 0) {
            store__err(err, errlen, "records %s: record %zu of the batch is empty", id, i);
            return -1;
        }
    }
    int rc = store__write(st, append_body, &a, err, errlen);
    if (rc == 0) {
        *first = a.first;
        *last = a.last;
    } else if (rc == -1 && store_last_errno() == ENOSPC && err && errlen) {
        char why[STORE_ERR_MAX];                  /* say what was being written */
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "appending %zu record%s to %s: %s", n, n == 1 ? "" : "s", id, why);
    }
    return rc;
}

int store_records_last(store_t *st, const char *id, uint64_t *last)
{
    size_t ilen = id_len(id);
    if (!st || !last || !ilen) {
        store__err(NULL, 0, "store_records_last: %s", ilen ? "NULL argument" : "invalid product id");
        return -1;
    }
    MDB_txn *txn;
    if (store__read_begin(st, &txn, NULL, 0) != 0)
        return -1;
    int rc = last_seq(st, txn, id, ilen, last, NULL, 0);
    store__read_end(st, txn);
    return rc;
}

long store_records_read(store_t *st, const char *id, uint64_t from, uint64_t limit,
                        store_record_fn fn, void *ctx)
{
    size_t ilen = id_len(id);
    if (!st || !fn || !ilen) {
        store__err(NULL, 0, "store_records_read: %s", ilen ? "NULL argument" : "invalid product id");
        return -1;
    }
    MDB_txn *txn;
    MDB_cursor *cur;
    if (store__scan_begin(st, st->records, "records", &txn, &cur) != 0)
        return -1;
    uint8_t kb[STORE_SEQKEY_MAX];
    MDB_val k = { store__seq_key(kb, id, ilen, from), kb }, v;
    int rc;
    long count = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t seq;
        if ((limit && (uint64_t)count >= limit) || !store__seq_key_parse(&k, id, ilen, &seq))
            break;
        count++;
        if (fn(ctx, seq, v.mv_data, v.mv_size) != 0)
            break;
    }
    return store__scan_end(st, txn, cur, "records", rc) ? -1 : count;
}
