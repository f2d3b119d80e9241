/* storage/access.c - the access index (storage/access.h): rows built from AccessChange entries
 * inside the catalog append transaction, and reading them back.
 *
 * Owns: the "access" database, its key layout, the indexing rules of access.h, the change-log
 * row of each change indexed (storage/changes.c), and the shape check of an AccessChange
 * (shared with gossip/entry.c).
 * Must not: verify signatures, decide who may ask (node/grants.c), or read the clock: expiry is
 * the reader's. */
#include "storage/access.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "storage/internal.h"

#define KEY_MAX (2 + 160 + 1 + STORE_ID_MAX + 1 + ACCESS_ID_MAX)

/* Counted once the write transaction commits (store__access_settle): the body runs again after a
 * map growth or a failed item, and a reader of the counts (the metric, the log line that follows
 * it) sees an entry only once it is stored. The pending counts are the writing thread's own. */
static atomic_ullong n_indexed, n_ignored;
static _Thread_local uint64_t tl_indexed, tl_ignored;

void store__access_settle(int committed)
{
    if (committed) {
        if (tl_indexed)
            atomic_fetch_add(&n_indexed, tl_indexed);
        if (tl_ignored)
            atomic_fetch_add(&n_ignored, tl_ignored);
    }
    tl_indexed = tl_ignored = 0;
}

void store_access_counts(uint64_t *indexed, uint64_t *ignored)
{
    if (indexed)
        *indexed = atomic_load(&n_indexed);
    if (ignored)
        *ignored = atomic_load(&n_ignored);
}

/* ---------------------------------------------------------------- shape */

int store_access_valid_id(const char *id, const char *prefix)
{
    if (!id || !prefix)
        return 0;
    size_t pl = strlen(prefix);
    if (strncmp(id, prefix, pl) != 0 || strlen(id) != pl + 16)
        return 0;
    for (const char *p = id + pl; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

int store_access_subject_domain(const char *subject, char domain[64])
{
    if (!subject)
        return 0;
    const char *at = strchr(subject, '@');
    if (!at || at == subject || at - subject > 64)
        return 0;
    for (const char *p = subject; p < at; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
            return 0;
    size_t dl = strnlen(at + 1, 64);
    if (!store_valid_name(at + 1, dl) || at[1 + dl] != '\0')
        return 0;
    memcpy(domain, at + 1, dl);
    domain[dl] = '\0';
    return 1;
}

static int text_ok(const char *s, size_t max)
{
    if (!s)
        return 1;
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

int store_access_shape(const Trib__AccessChange *a, char *err, size_t errlen)
{
    char dom[64];
    if (!a) {
        store__err(err, errlen, "access change: empty");
        return -1;
    }
    if (a->kind < TRIB__ACCESS_KIND__ACCESS_REQUEST || a->kind > TRIB__ACCESS_KIND__ACCESS_REVOKE) {
        store__err(err, errlen, "access change: kind %d is not request, grant, deny or revoke", (int)a->kind);
        return -1;
    }
    if (a->kind != TRIB__ACCESS_KIND__ACCESS_REVOKE && !store_access_valid_id(a->request_id, "req-")) {
        store__err(err, errlen, "access change: request_id is not req- and 16 hex characters");
        return -1;
    }
    if ((a->kind == TRIB__ACCESS_KIND__ACCESS_GRANT || a->kind == TRIB__ACCESS_KIND__ACCESS_REVOKE) &&
        !store_access_valid_id(a->grant_id, "grant-")) {
        store__err(err, errlen, "access change: grant_id is not grant- and 16 hex characters");
        return -1;
    }
    if (!store_valid_id(a->product_id)) {
        store__err(err, errlen, "access change: product_id is not domain/name (" STORE_NAME_RULE ")");
        return -1;
    }
    if (a->kind != TRIB__ACCESS_KIND__ACCESS_REVOKE && !store_access_subject_domain(a->subject, dom)) {
        store__err(err, errlen, "access change: subject is not local@domain");
        return -1;
    }
    if (!text_ok(a->purpose, ACCESS_TEXT_MAX) || !text_ok(a->reason, ACCESS_TEXT_MAX) ||
        !text_ok(a->token_id, 64)) {
        store__err(err, errlen, "access change: purpose, reason or token_id over %d bytes or with control bytes",
                   ACCESS_TEXT_MAX);
        return -1;
    }
    if (a->n_fields > ACCESS_FIELDS_MAX || a->n_operations > 8) {
        store__err(err, errlen, "access change: %zu fields and %zu operations, at most %d and 8", a->n_fields,
                   a->n_operations, ACCESS_FIELDS_MAX);
        return -1;
    }
    for (size_t i = 0; i < a->n_fields; i++)
        if (!a->fields[i] || !a->fields[i][0] || !text_ok(a->fields[i], 64)) {
            store__err(err, errlen, "access change: fields[%zu] is empty, over 64 bytes or has control bytes", i);
            return -1;
        }
    for (size_t i = 0; i < a->n_operations; i++)
        if (!a->operations[i] || !text_ok(a->operations[i], 16)) {
            store__err(err, errlen, "access change: operations[%zu] is over 16 bytes or has control bytes", i);
            return -1;
        }
    if (a->days > ACCESS_DAYS_MAX) {
        store__err(err, errlen, "access change: %u days, at most %d", a->days, ACCESS_DAYS_MAX);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- rows */

static size_t row_key(uint8_t out[KEY_MAX], const char *kind, const char *id)
{
    size_t kl = strlen(kind), il = strnlen(id, ACCESS_ID_MAX);
    memcpy(out, kind, kl);
    out[kl] = '/';
    memcpy(out + kl + 1, id, il);
    return kl + 1 + il;
}

static size_t subject_key(uint8_t out[KEY_MAX], const char *subject, const char *product, const char *grant)
{
    size_t n = 0, l;
    memcpy(out, "s/", 2);
    n = 2;
    l = strnlen(subject, 160);
    memcpy(out + n, subject, l);
    n += l;
    out[n++] = 0;
    if (!product)
        return n;   /* every product of subject: the prefix "s/<subject>\0" */
    l = strnlen(product, STORE_ID_MAX);
    memcpy(out + n, product, l);
    n += l;
    out[n++] = 0;
    if (grant) {
        l = strnlen(grant, ACCESS_ID_MAX);
        memcpy(out + n, grant, l);
        n += l;
    }
    return n;
}

static int exists(store_t *st, MDB_txn *txn, const char *kind, const char *id, int *rc_out)
{
    uint8_t kb[KEY_MAX];
    MDB_val k = { row_key(kb, kind, id), kb }, v;
    int rc = mdb_get(txn, st->access, &k, &v);
    *rc_out = rc == MDB_NOTFOUND ? 0 : rc;
    return rc == 0;
}

static int put_row(store_t *st, MDB_txn *txn, const char *kind, const char *id, const Trib__AccessRow *row,
                   char *err, size_t errlen)
{
    uint8_t kb[KEY_MAX];
    size_t n = trib__access_row__get_packed_size(row);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        store__err(err, errlen, "access index: out of memory");
        return -1;
    }
    trib__access_row__pack(row, buf);
    MDB_val k = { row_key(kb, kind, id), kb }, v = { n, buf };
    int rc = mdb_put(txn, st->access, &k, &v, 0);
    free(buf);
    return rc ? store__write_fail(st, err, errlen, "mdb_put(access)", rc) : 0;
}

static int get_row(store_t *st, MDB_txn *txn, const char *kind, const char *id, Trib__AccessRow **out,
                   char *err, size_t errlen)
{
    uint8_t kb[KEY_MAX];
    MDB_val k = { row_key(kb, kind, id), kb }, v;
    int rc = mdb_get(txn, st->access, &k, &v);
    if (rc == MDB_NOTFOUND)
        return STORE_NOTFOUND;
    if (rc != 0) {
        store__mdb_err(st, err, errlen, "mdb_get(access)", rc);
        return -1;
    }
    *out = trib__access_row__unpack(NULL, v.mv_size, v.mv_data);
    if (!*out) {
        store__err(err, errlen, "access index: undecodable row %s/%s", kind, id);
        return -1;
    }
    return 0;
}

/* The domain of product id "domain/name" into d. */
static void product_domain(const char *id, char d[64])
{
    size_t n = strcspn(id, "/");
    if (n > 63)
        n = 63;
    memcpy(d, id, n);
    d[n] = '\0';
}

static int ignore(void)
{
    tl_ignored++;
    return 0;
}

int store__access_apply(store_t *st, MDB_txn *txn, const Trib__CatalogEntry *e, char *err, size_t errlen)
{
    const Trib__AccessChange *a = e->access;
    if (!a || store_access_shape(a, NULL, 0) != 0)
        return ignore();
    char pdom[64], sdom[64];
    product_domain(a->product_id, pdom);
    Trib__AccessRow row = TRIB__ACCESS_ROW__INIT;
    row.change = (Trib__AccessChange *)a;   /* only read by pack */
    row.domain = e->domain;
    row.seq = e->seq;
    row.time_ms = e->time_ms;
    int rc = 0;
    switch (a->kind) {
    case TRIB__ACCESS_KIND__ACCESS_REQUEST:
        if (!store_access_subject_domain(a->subject, sdom) || strcmp(sdom, e->domain) != 0)
            return ignore();        /* a request is signed by the requester's home */
        if (exists(st, txn, "r", a->request_id, &rc) || rc)
            return rc ? store__write_fail(st, err, errlen, "mdb_get(access)", rc) : ignore();
        if ((rc = put_row(st, txn, "r", a->request_id, &row, err, errlen)) != 0)
            return rc;
        break;
    case TRIB__ACCESS_KIND__ACCESS_GRANT:
    case TRIB__ACCESS_KIND__ACCESS_DENY:
        if (strcmp(pdom, e->domain) != 0)
            return ignore();        /* only the product's owner decides */
        if (exists(st, txn, "d", a->request_id, &rc) || rc)
            return rc ? store__write_fail(st, err, errlen, "mdb_get(access)", rc) : ignore();
        if (a->kind == TRIB__ACCESS_KIND__ACCESS_GRANT) {
            if (exists(st, txn, "g", a->grant_id, &rc) || rc)   /* a replayed grant never revives */
                return rc ? store__write_fail(st, err, errlen, "mdb_get(access)", rc) : ignore();
            if ((rc = put_row(st, txn, "g", a->grant_id, &row, err, errlen)) != 0)
                return rc;
            uint8_t kb[KEY_MAX];
            MDB_val k = { subject_key(kb, a->subject, a->product_id, a->grant_id), kb }, v = { 0, "" };
            if ((rc = mdb_put(txn, st->access, &k, &v, 0)) != 0)
                return store__write_fail(st, err, errlen, "mdb_put(access)", rc);
        }
        if ((rc = put_row(st, txn, "d", a->request_id, &row, err, errlen)) != 0)
            return rc;
        break;
    case TRIB__ACCESS_KIND__ACCESS_REVOKE: {
        Trib__AccessRow *g = NULL;
        rc = get_row(st, txn, "g", a->grant_id, &g, err, errlen);
        if (rc == STORE_NOTFOUND)
            return ignore();
        if (rc != 0)
            return -1;
        if (strcmp(pdom, e->domain) != 0 || !g->change || strcmp(g->change->product_id, a->product_id) != 0 ||
            g->revoked) {
            trib__access_row__free_unpacked(g, NULL);
            return ignore();        /* another domain's, or already revoked: nothing changes */
        }
        g->revoked = 1;
        g->revoked_ms = e->time_ms;
        g->revoke_seq = e->seq;
        char *reason = g->revoke_reason;
        g->revoke_reason = a->reason ? a->reason : "";
        rc = put_row(st, txn, "g", a->grant_id, g, err, errlen);
        g->revoke_reason = reason;
        trib__access_row__free_unpacked(g, NULL);
        if (rc != 0)
            return rc;
        break;
    }
    default:
        return ignore();
    }
    /* The change feed's row, in this transaction: one per change indexed, none for one ignored
     * (a replay, a second decision). Only the kind of change and the product: who asked, what was
     * granted and why are for the access routes (node/changes.c shows no more to anyone). */
    static const char *const action[] = {
        [TRIB__ACCESS_KIND__ACCESS_REQUEST] = "requested", [TRIB__ACCESS_KIND__ACCESS_GRANT] = "granted",
        [TRIB__ACCESS_KIND__ACCESS_DENY] = "denied", [TRIB__ACCESS_KIND__ACCESS_REVOKE] = "revoked",
    };
    char ev[256];   /* product_id follows the id rule (store_access_shape): nothing to escape */
    int evn = snprintf(ev, sizeof ev, "{\"type\":\"grant\",\"action\":\"%s\",\"product\":\"%s\",\"time_ms\":%lld}",
                       action[a->kind], a->product_id, (long long)e->time_ms);
    if (evn < 0 || (size_t)evn >= sizeof ev) {
        snprintf(err, errlen, "access change for product '%.64s': its change-feed row is too long", a->product_id);
        return -1;
    }
    if ((rc = store__changes_put(st, txn, ev, (size_t)evn, err, errlen)) != 0)
        return rc;
    tl_indexed++;
    return 0;
}

/* ---------------------------------------------------------------- reads */

int store_access_get(store_t *st, const char *kind, const char *id, Trib__AccessRow **out)
{
    if (!st || !kind || !id || !out || strlen(kind) != 1) {
        store__err(NULL, 0, "store_access_get: bad argument");
        return -1;
    }
    MDB_txn *txn;
    if (store__read_begin(st, &txn, NULL, 0) != 0)
        return -1;
    int rc = get_row(st, txn, kind, id, out, NULL, 0);
    store__read_end(st, txn);
    return rc;
}

int store_access_scan(store_t *st, const char *kind, store_access_fn fn, void *ctx)
{
    if (!st || !kind || !fn || strlen(kind) != 1) {
        store__err(NULL, 0, "store_access_scan: bad argument");
        return -1;
    }
    char prefix[2] = { kind[0], '/' };
    MDB_txn *txn;
    MDB_cursor *cur;
    if (store__scan_begin(st, st->access, "access", &txn, &cur) != 0)
        return -1;
    MDB_val k = { 2, prefix }, v;
    int ret = 0;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 2 || memcmp(k.mv_data, prefix, 2) != 0)
            break;
        Trib__AccessRow *row = trib__access_row__unpack(NULL, v.mv_size, v.mv_data);
        if (!row || !row->change) {
            if (row)
                trib__access_row__free_unpacked(row, NULL);
            continue;   /* never written so: skipped, not fatal */
        }
        int stop = fn(ctx, row);
        trib__access_row__free_unpacked(row, NULL);
        if (stop)
            break;
    }
    return store__scan_end(st, txn, cur, "access", rc) ? -1 : ret;
}

int store_access_grants_of(store_t *st, const char *subject, const char *product_id, store_access_fn fn, void *ctx)
{
    if (!st || !subject || !fn || strlen(subject) > 160 || (product_id && strlen(product_id) >= STORE_ID_MAX)) {
        store__err(NULL, 0, "store_access_grants_of: bad argument");
        return -1;
    }
    uint8_t pb[KEY_MAX];
    size_t plen = subject_key(pb, subject, product_id, NULL);
    MDB_txn *txn;
    MDB_cursor *cur;
    if (store__scan_begin(st, st->access, "access", &txn, &cur) != 0)
        return -1;
    MDB_val k = { plen, pb }, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size <= plen || memcmp(k.mv_data, pb, plen) != 0)
            break;
        char gid[ACCESS_ID_MAX];
        const char *g = (const char *)k.mv_data + plen;
        size_t gl = k.mv_size - plen;
        if (!product_id) {   /* the key goes on "<product>\0<grant id>" */
            const char *z = memchr(g, 0, gl);
            if (!z)
                continue;
            gl -= (size_t)(z + 1 - g);
            g = z + 1;
        }
        if (gl >= sizeof gid)
            continue;
        memcpy(gid, g, gl);
        gid[gl] = '\0';
        Trib__AccessRow *row = NULL;
        if (get_row(st, txn, "g", gid, &row, NULL, 0) != 0)
            continue;
        int stop = row->change ? fn(ctx, row) : 0;
        trib__access_row__free_unpacked(row, NULL);
        if (stop)
            break;
    }
    return store__scan_end(st, txn, cur, "access", rc);
}
