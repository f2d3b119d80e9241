/* storage/history.c - the version history of every product and the schema version of its records.
 *
 * Owns two databases:
 *   history        id 0x00 BE(catalog seq) -> BE64 time_ms | signer (32) | version bytes: one row
 *                  per manifest entry of the product (every version ever published), written in the
 *                  catalog append transaction (catalog.c calls store__history_put), so it is built
 *                  alike from entries this node signs and entries a peer gossips: any node answers
 *                  history. A store made before this file had it is filled from the catalog on open.
 *   record_schema  id 0x00 BE(first record seq) -> BE64 manifest seq: an epoch of the records log.
 *                  Records from that seq on (to the next epoch) were validated against the record
 *                  schema of the manifest at that catalog seq: the product's schema_seq when they
 *                  were appended (storage/products.c), the manifest that brought the schema, so
 *                  versions that changed only other things (a title, a description, owners) start
 *                  no epoch and reads go on across them. Written in the records append transaction
 *                  only when it differs from the epoch before. Records stored before this file
 *                  existed have no epoch (their schema version is unknown, and reads say so).
 * Must not: decide what a version may be (node/node.c's gate and node/compat.c do) or verify
 * anything: it indexes what the catalog and records transactions hand it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "storage/internal.h"

#define MARKER_KEY "store.history"
#define HIST_FIXED (8 + STORE_KEY_LEN)

/* ================================================================ history rows */

int store__history_put(store_t *st, MDB_txn *txn, const char *id, uint64_t seq, int64_t time_ms,
                       const uint8_t signer[STORE_KEY_LEN], const char *version, char *err,
                       size_t errlen)
{
    size_t vlen = version ? strnlen(version, STORE_VERSION_MAX) : 0;
    uint8_t val[HIST_FIXED + STORE_VERSION_MAX];
    store__be64_put(val, (uint64_t)time_ms);
    memcpy(val + 8, signer, STORE_KEY_LEN);
    if (vlen)
        memcpy(val + HIST_FIXED, version, vlen);
    uint8_t kb[STORE_SEQKEY_MAX];
    MDB_val k = { store__seq_key(kb, id, strlen(id), seq), kb }, v = { HIST_FIXED + vlen, val };
    int rc = mdb_put(txn, st->history, &k, &v, 0);
    return rc ? store__write_fail(st, err, errlen, "mdb_put(history)", rc) : 0;
}

static int hist_decode(const MDB_val *v, uint64_t seq, store_version_t *out)
{
    if (v->mv_size < HIST_FIXED || v->mv_size > HIST_FIXED + STORE_VERSION_MAX)
        return -1;
    const uint8_t *b = v->mv_data;
    memset(out, 0, sizeof *out);
    out->seq = seq;
    out->time_ms = (int64_t)store__be64_get(b);
    memcpy(out->signer, b + 8, STORE_KEY_LEN);
    memcpy(out->version, b + HIST_FIXED, v->mv_size - HIST_FIXED);
    out->version[v->mv_size - HIST_FIXED] = '\0';
    return 0;
}

int store_history(store_t *st, const char *id, store_version_fn fn, void *ctx)
{
    if (!st || !fn || !store_valid_id(id)) {
        store__err(NULL, 0, "store_history: %s", !st || !fn ? "NULL argument" : "invalid product id");
        return -1;
    }
    size_t ilen = strlen(id);
    MDB_txn *txn;
    MDB_cursor *cur;
    if (store__scan_begin(st, st->history, "history", &txn, &cur) != 0)
        return -1;
    uint8_t kb[STORE_SEQKEY_MAX];
    MDB_val k = { store__seq_key(kb, id, ilen, 0), kb }, v;
    int rc, ret = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t seq;
        if (!store__seq_key_parse(&k, id, ilen, &seq))
            break;
        store_version_t row;
        if (hist_decode(&v, seq, &row) != 0) {
            store__err(NULL, 0, "history %s seq %llu: value of %zu bytes", id,
                       (unsigned long long)seq, v.mv_size);
            ret = -1;
            break;
        }
        if (fn(ctx, &row) != 0)
            break;
    }
    return store__scan_end(st, txn, cur, "history", rc) ? -1 : ret;
}

int store_history_get(store_t *st, const char *id, uint64_t seq, store_version_t *out)
{
    if (!st || !out || !store_valid_id(id)) {
        store__err(NULL, 0, "store_history_get: bad argument");
        return -1;
    }
    MDB_txn *txn;
    if (store__read_begin(st, &txn, NULL, 0) != 0)
        return -1;
    uint8_t kb[STORE_SEQKEY_MAX];
    MDB_val k = { store__seq_key(kb, id, strlen(id), seq), kb }, v;
    int rc = mdb_get(txn, st->history, &k, &v), ret;
    if (rc == MDB_NOTFOUND)
        ret = STORE_NOTFOUND;
    else if (rc != 0) {
        store__mdb_err(st, NULL, 0, "mdb_get(history)", rc);
        ret = -1;
    } else
        ret = hist_decode(&v, seq, out) == 0 ? 0 : -1;
    store__read_end(st, txn);
    return ret;
}

/* ================================================================ record epochs */

/* The epoch holding record seq: *mseq its manifest seq and *first its first record seq; 0, or
 * STORE_NOTFOUND when no epoch starts at or before seq. */
static int epoch_at(store_t *st, MDB_txn *txn, const char *id, size_t ilen, uint64_t seq,
                    uint64_t *first, uint64_t *mseq)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->rschema, &cur);
    if (rc != 0) {
        store__mdb_err(st, NULL, 0, "mdb_cursor_open(record_schema)", rc);
        return -1;
    }
    uint8_t kb[STORE_SEQKEY_MAX];
    MDB_val k = { store__seq_key(kb, id, ilen, seq == UINT64_MAX ? seq : seq + 1), kb }, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
    else if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    int ret = STORE_NOTFOUND;
    if (rc == 0 && store__seq_key_parse(&k, id, ilen, first) && *first <= seq && v.mv_size == 8) {
        *mseq = store__be64_get(v.mv_data);
        ret = 0;
    } else if (rc != 0 && rc != MDB_NOTFOUND) {
        store__mdb_err(st, NULL, 0, "mdb_cursor_get(record_schema)", rc);
        ret = -1;
    }
    mdb_cursor_close(cur);
    return ret;
}

int store__epoch_note(store_t *st, MDB_txn *txn, const char *id, uint64_t first_seq,
                      uint64_t manifest_seq, char *err, size_t errlen)
{
    size_t ilen = strlen(id);
    uint64_t at = 0, cur = 0;
    int rc = first_seq > 1 ? epoch_at(st, txn, id, ilen, first_seq - 1, &at, &cur) : STORE_NOTFOUND;
    if (rc == -1) {
        store__err(err, errlen, "%s", store_last_error());
        return -1;
    }
    if (rc == 0 && cur == manifest_seq)
        return 0;   /* same schema as the records before */
    uint8_t kb[STORE_SEQKEY_MAX], vb[8];
    store__be64_put(vb, manifest_seq);
    MDB_val k = { store__seq_key(kb, id, ilen, first_seq), kb }, v = { 8, vb };
    rc = mdb_put(txn, st->rschema, &k, &v, 0);
    return rc ? store__write_fail(st, err, errlen, "mdb_put(record_schema)", rc) : 0;
}

int store_record_epochs(store_t *st, const char *id, uint64_t from, uint64_t to,
                        store_epoch_fn fn, void *ctx)
{
    if (!st || !fn || !store_valid_id(id)) {
        store__err(NULL, 0, "store_record_epochs: bad argument");
        return -1;
    }
    size_t ilen = strlen(id);
    if (from == 0)
        from = 1;
    MDB_txn *txn;
    if (store__read_begin(st, &txn, NULL, 0) != 0)
        return -1;
    uint64_t first = 0, mseq = 0;
    int rc = epoch_at(st, txn, id, ilen, from, &first, &mseq), ret = 0, n = 0;
    if (rc == -1) {
        store__read_end(st, txn);
        return -1;
    }
    if (rc == STORE_NOTFOUND) {   /* records before any epoch: schema version unknown */
        n++;
        if (fn(ctx, from, 0) != 0)
            goto done;
    } else {
        n++;
        if (fn(ctx, from, mseq) != 0)
            goto done;
    }
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, st->rschema, &cur)) != 0) {
        store__mdb_err(st, NULL, 0, "mdb_cursor_open(record_schema)", rc);
        ret = -1;
        goto done;
    }
    uint8_t kb[STORE_SEQKEY_MAX];
    MDB_val k = { store__seq_key(kb, id, ilen, from + 1), kb }, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && n < STORE_EPOCHS_MAX;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t s;
        if (!store__seq_key_parse(&k, id, ilen, &s) || s > to || v.mv_size != 8)
            break;
        n++;
        if (fn(ctx, s, store__be64_get(v.mv_data)) != 0)
            break;
    }
    mdb_cursor_close(cur);
done:
    store__read_end(st, txn);
    return ret;
}

/* ================================================================ open: fill from the catalog */

static int fill_body(store_t *st, MDB_txn *txn, void *ctx, char *err, size_t errlen)
{
    (void)ctx;
    MDB_val mk = { strlen(MARKER_KEY), (void *)MARKER_KEY }, mv;
    int rc = mdb_get(txn, st->meta, &mk, &mv);
    if (rc == 0)
        return 0;
    if (rc != MDB_NOTFOUND)
        return store__write_fail(st, err, errlen, "mdb_get(meta, history)", rc);
    if ((rc = mdb_drop(txn, st->history, 0)) != 0)
        return store__write_fail(st, err, errlen, "mdb_drop(history)", rc);
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, st->catalog, &cur)) != 0)
        return store__write_fail(st, err, errlen, "mdb_cursor_open(catalog)", rc);
    MDB_val k, v;
    int ret = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && ret == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, v.mv_size, v.mv_data);
        Trib__CatalogEntry *ce = se ? trib__catalog_entry__unpack(NULL, se->body.len, se->body.data) : NULL;
        if (ce && ce->change_case == TRIB__CATALOG_ENTRY__CHANGE_MANIFEST && ce->manifest &&
            se->signer.len == STORE_KEY_LEN && ce->manifest->name && ce->domain) {
            char id[STORE_ID_MAX];
            snprintf(id, sizeof id, "%s/%s", ce->domain, ce->manifest->name);
            if (store_valid_id(id))
                ret = store__history_put(st, txn, id, ce->seq, ce->time_ms, se->signer.data,
                                         ce->manifest->version, err, errlen);
        }
        if (ce)
            trib__catalog_entry__free_unpacked(ce, NULL);
        if (se)
            trib__signed_entry__free_unpacked(se, NULL);
    }
    mdb_cursor_close(cur);
    if (ret)
        return ret;
    if (rc != MDB_NOTFOUND)
        return store__write_fail(st, err, errlen, "mdb_cursor_get(catalog)", rc);
    rc = mdb_put(txn, st->meta, &mk, &(MDB_val){ 1, "1" }, 0);
    return rc ? store__write_fail(st, err, errlen, "mdb_put(meta, history)", rc) : 0;
}

int store__history_open(store_t *st, char *err, size_t errlen)
{
    return store__write(st, fill_body, NULL, err, errlen);
}
