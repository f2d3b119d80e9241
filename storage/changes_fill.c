/* storage/changes_fill.c - fills the change log from the catalog on open, once.
 *
 * A store whose catalog holds entries the change log has no row for (made before the log existed,
 * or by a build that kept the log without this fill) gets one row per such product entry,
 * appended after the rows it has (a seq, once handed out, keeps naming the same event), marked
 * "backfill":true, in the catalog's order: across domains by entry time (then domain, then seq),
 * each domain's entries in seq order.
 *
 * Which entries lack a row (rows: store__changes_catalog_row, read back by store__changes_catalog_of):
 * since the log exists, catalog.c writes a row in the transaction of
 * every product entry, and a domain's entries arrive in seq order, so the rows of a domain start
 * at some seq and cover every product entry from there; the entries below the first seq the log
 * names (every entry, when it names none) are the missing ones.
 *
 * The work is planned once (meta "store.changes.fill": per domain the next seq to look at and the
 * first seq not to) and done in transactions of FILL_BATCH rows, each committing its rows with the
 * plan's progress, so a fill stopped half-way resumes where it was and never writes a row twice;
 * meta "store.changes" marks it done (a new store gets the mark at once).
 * Must not: interpret events beyond naming the product (node/changes.c does) or run after open. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "storage/internal.h"

#define MARKER_KEY "store.changes"
#define PLAN_KEY   "store.changes.fill"
#define FILL_BATCH 2000           /* rows per transaction */

typedef struct {
    char domain[STORE_NAME_MAX + 1];
    uint64_t next, end;           /* seqs [next, end) are still to look at */
    int have;                     /* the next product entry is loaded into the fields below */
    uint64_t seq;
    int64_t time_ms;
    char name[STORE_NAME_MAX + 1];
    int tombstone;
} dom_t;

typedef struct {
    dom_t *d;
    size_t n, cap;
    int done;                     /* out: the fill is complete (marker written) */
    uint64_t rows;                /* out: rows written by the last batch */
} plan_t;

static int marker_get(store_t *st, MDB_txn *txn, const char *key, MDB_val *v, char *err, size_t errlen)
{
    MDB_val k = { strlen(key), (void *)key };
    int rc = mdb_get(txn, st->meta, &k, v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store__write_fail(st, err, errlen, "mdb_get(meta, changes)", rc);
    return rc;
}

static dom_t *dom_add(plan_t *p, const char *domain, size_t dlen)
{
    if (dlen == 0 || dlen > STORE_NAME_MAX)
        return NULL;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        dom_t *nd = realloc(p->d, cap * sizeof *nd);
        if (!nd)
            return NULL;
        p->d = nd;
        p->cap = cap;
    }
    dom_t *d = &p->d[p->n++];
    memset(d, 0, sizeof *d);
    memcpy(d->domain, domain, dlen);
    return d;
}

/* ---------------------------------------------------------------- the plan in meta */

static int plan_save(store_t *st, MDB_txn *txn, const plan_t *p, char *err, size_t errlen)
{
    size_t len = 0;
    for (size_t i = 0; i < p->n; i++)
        len += 1 + strlen(p->d[i].domain) + 16;
    uint8_t *b = malloc(len ? len : 1), *w = b;
    if (!b) {
        store__err(err, errlen, "change log fill: out of memory");
        return -1;
    }
    for (size_t i = 0; i < p->n; i++) {
        size_t dl = strlen(p->d[i].domain);
        *w++ = (uint8_t)dl;
        memcpy(w, p->d[i].domain, dl);
        w += dl;
        store__be64_put(w, p->d[i].next);
        store__be64_put(w + 8, p->d[i].end);
        w += 16;
    }
    MDB_val k = { strlen(PLAN_KEY), PLAN_KEY }, v = { len, b };
    int rc = mdb_put(txn, st->meta, &k, &v, 0);
    free(b);
    return rc ? store__write_fail(st, err, errlen, "mdb_put(meta, changes fill)", rc) : 0;
}

static int plan_load(const MDB_val *v, plan_t *p, char *err, size_t errlen)
{
    const uint8_t *b = v->mv_data, *e = b + v->mv_size;
    while (b < e) {
        size_t dl = *b++;
        dom_t *d = (size_t)(e - b) >= dl + 16 ? dom_add(p, (const char *)b, dl) : NULL;
        if (!d) {
            store__err(err, errlen, "meta %s: malformed or out of memory", PLAN_KEY);
            return -1;
        }
        d->next = store__be64_get(b + dl);
        d->end = store__be64_get(b + dl + 8);
        b += dl + 16;
    }
    return 0;
}

/* ---------------------------------------------------------------- making the plan */

/* The last catalog seq of domain (0: none). */
static int last_seq(store_t *st, MDB_cursor *cur, const char *domain, uint64_t *last, char *err, size_t errlen)
{
    size_t dl = strlen(domain);
    uint8_t kb[STORE_SEQKEY_MAX];
    MDB_val k = { store__seq_key(kb, domain, dl, UINT64_MAX), kb }, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
    else if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    *last = 0;
    if (rc == 0 && !store__seq_key_parse(&k, domain, dl, last))
        *last = 0;
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store__write_fail(st, err, errlen, "mdb_cursor_get(catalog)", rc);
    return 0;
}

/* Every domain with a catalog, end = its last seq + 1; then end = the first seq the change log
 * names for it, where it names one. */
static int plan_make(store_t *st, MDB_txn *txn, plan_t *p, char *err, size_t errlen)
{
    MDB_cursor *hc = NULL, *cc = NULL;
    int rc = mdb_cursor_open(txn, st->heads, &hc);
    if (rc == 0)
        rc = mdb_cursor_open(txn, st->catalog, &cc);
    if (rc != 0) {
        if (hc)
            mdb_cursor_close(hc);
        return store__write_fail(st, err, errlen, "mdb_cursor_open(catalog)", rc);
    }
    MDB_val k, v;
    int ret = 0;
    for (rc = mdb_cursor_get(hc, &k, &v, MDB_FIRST); rc == 0 && ret == 0; rc = mdb_cursor_get(hc, &k, &v, MDB_NEXT)) {
        dom_t *d = dom_add(p, k.mv_data, k.mv_size);
        if (!d) {
            store__err(err, errlen, "change log fill: catalog_heads key of %zu bytes, or out of memory", k.mv_size);
            ret = -1;
            break;
        }
        uint64_t last;
        if ((ret = last_seq(st, cc, d->domain, &last, err, errlen)) != 0)
            break;
        d->next = 1;
        d->end = last + 1;
    }
    mdb_cursor_close(cc);
    mdb_cursor_close(hc);
    if (ret)
        return ret;
    if (rc != MDB_NOTFOUND)
        return store__write_fail(st, err, errlen, "mdb_cursor_get(catalog_heads)", rc);

    /* The change log: the first row of each domain (rows are catalog.c's fixed format). */
    MDB_cursor *lc;
    if ((rc = mdb_cursor_open(txn, st->changes, &lc)) != 0)
        return store__write_fail(st, err, errlen, "mdb_cursor_open(changes)", rc);
    size_t found = 0;
    for (rc = mdb_cursor_get(lc, &k, &v, MDB_FIRST); rc == 0 && found < p->n; rc = mdb_cursor_get(lc, &k, &v, MDB_NEXT)) {
        char domain[STORE_NAME_MAX + 1];
        uint64_t seq;
        if (!store__changes_catalog_of(v.mv_data, v.mv_size, domain, &seq))
            continue;
        for (size_t i = 0; i < p->n; i++)
            if (strcmp(p->d[i].domain, domain) == 0) {
                if (!p->d[i].have) {   /* 'have' marks "named by the log" while planning */
                    p->d[i].have = 1;
                    p->d[i].end = seq < p->d[i].end ? seq : p->d[i].end;
                    found++;
                }
                break;
            }
    }
    mdb_cursor_close(lc);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store__write_fail(st, err, errlen, "mdb_cursor_get(changes)", rc);
    size_t keep = 0;   /* domains with nothing missing leave the plan */
    for (size_t i = 0; i < p->n; i++) {
        p->d[i].have = 0;
        if (p->d[i].next < p->d[i].end)
            p->d[keep++] = p->d[i];
    }
    p->n = keep;
    return 0;
}

/* ---------------------------------------------------------------- filling */

/* Loads d's next product entry below d->end (d->have = 0 when none is left; d->next moves past
 * the entries that change no product: grants, token revocations). */
static int load_next(store_t *st, MDB_cursor *cur, dom_t *d, char *err, size_t errlen)
{
    d->have = 0;
    if (d->next >= d->end)
        return 0;
    size_t dl = strlen(d->domain);
    uint8_t kb[STORE_SEQKEY_MAX];
    MDB_val k = { store__seq_key(kb, d->domain, dl, d->next), kb }, v;
    int rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t seq;
        if (!store__seq_key_parse(&k, d->domain, dl, &seq) || seq >= d->end)
            break;
        d->next = seq + 1;
        Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, v.mv_size, v.mv_data);
        Trib__CatalogEntry *ce = se ? trib__catalog_entry__unpack(NULL, se->body.len, se->body.data) : NULL;
        const char *name = NULL;
        if (ce && ce->change_case == TRIB__CATALOG_ENTRY__CHANGE_MANIFEST && ce->manifest)
            name = ce->manifest->name;
        else if (ce && ce->change_case == TRIB__CATALOG_ENTRY__CHANGE_TOMBSTONE && ce->tombstone)
            name = ce->tombstone->name;
        if (name && store_valid_name(name, strnlen(name, STORE_NAME_MAX + 1))) {
            d->have = 1;
            d->seq = seq;
            d->time_ms = ce->time_ms;
            d->tombstone = ce->change_case == TRIB__CATALOG_ENTRY__CHANGE_TOMBSTONE;
            snprintf(d->name, sizeof d->name, "%s", name);
        }
        if (ce)
            trib__catalog_entry__free_unpacked(ce, NULL);
        if (se)
            trib__signed_entry__free_unpacked(se, NULL);
        if (d->have)
            return 0;
    }
    if (rc == MDB_NOTFOUND || rc == 0) {
        d->next = d->end;   /* the rest of the range holds no product entry */
        return 0;
    }
    return store__write_fail(st, err, errlen, "mdb_cursor_get(catalog)", rc);
}

/* The domain whose loaded entry comes first: time, then domain, then seq. NULL: none left. */
static dom_t *first_of(plan_t *p)
{
    dom_t *best = NULL;
    for (size_t i = 0; i < p->n; i++) {
        dom_t *d = &p->d[i];
        if (!d->have)
            continue;
        if (!best || d->time_ms < best->time_ms ||
            (d->time_ms == best->time_ms && strcmp(d->domain, best->domain) < 0))
            best = d;
    }
    return best;
}

/* One transaction: the plan (made now when there is none), then up to FILL_BATCH rows. */
static int batch_body(store_t *st, MDB_txn *txn, void *ctx, char *err, size_t errlen)
{
    plan_t *p = ctx;
    p->n = 0;
    p->done = 0;
    p->rows = 0;
    MDB_val v;
    int rc = marker_get(st, txn, MARKER_KEY, &v, err, errlen);
    if (rc == 0) {
        p->done = 1;
        return 0;
    }
    if (rc != MDB_NOTFOUND)
        return rc;
    rc = marker_get(st, txn, PLAN_KEY, &v, err, errlen);
    if (rc == 0)
        rc = plan_load(&v, p, err, errlen);
    else if (rc == MDB_NOTFOUND)
        rc = plan_make(st, txn, p, err, errlen);
    if (rc != 0)
        return rc;
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, st->catalog, &cur)) != 0)
        return store__write_fail(st, err, errlen, "mdb_cursor_open(catalog)", rc);
    for (size_t i = 0; i < p->n && rc == 0; i++)
        rc = load_next(st, cur, &p->d[i], err, errlen);
    dom_t *d;
    while (rc == 0 && p->rows < FILL_BATCH && (d = first_of(p)) != NULL) {
        char ev[512];
        int evn = store__changes_catalog_row(ev, sizeof ev, d->domain, d->seq, d->name, d->tombstone, d->time_ms, 1);
        if (evn < 0) {
            store__err(err, errlen, "change log fill: the row of %s seq %llu does not fit", d->domain,
                       (unsigned long long)d->seq);
            rc = -1;
        } else if ((rc = store__changes_put(st, txn, ev, (size_t)evn, err, errlen)) == 0) {
            p->rows++;
            rc = load_next(st, cur, d, err, errlen);
        }
    }
    mdb_cursor_close(cur);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < p->n; i++)
        if (p->d[i].have)
            p->d[i].next = p->d[i].seq;   /* loaded, not written: look at it again next time */
    if (first_of(p) != NULL)
        return plan_save(st, txn, p, err, errlen);
    MDB_val pk = { strlen(PLAN_KEY), PLAN_KEY }, mk = { strlen(MARKER_KEY), MARKER_KEY };
    rc = mdb_del(txn, st->meta, &pk, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store__write_fail(st, err, errlen, "mdb_del(meta, changes fill)", rc);
    rc = mdb_put(txn, st->meta, &mk, &(MDB_val){ 1, "1" }, 0);
    if (rc != 0)
        return store__write_fail(st, err, errlen, "mdb_put(meta, changes)", rc);
    p->done = 1;
    return 0;
}

int store__changes_open(store_t *st, uint64_t *filled, char *err, size_t errlen)
{
    plan_t p = {0};
    uint64_t rows = 0;
    int rc;
    do {
        rc = store__write(st, batch_body, &p, err, errlen);
        rows += p.rows;
    } while (rc == 0 && !p.done);
    free(p.d);
    if (filled)
        *filled = rows;
    return rc ? -1 : 0;
}
