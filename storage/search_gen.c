/* storage/search_gen.c - the search index's generation and the log of what each one changed, so
 * the columns queries count from (search_cache.c) can follow writes product by product.
 *
 * Owns: meta "store.search.gen" (bumped once by every transaction that writes the index, for
 * all the products it wrote, or once per compliance batch), the search_delta log (generation -> the docids
 * its write changed, or "anything may have": in the same transaction as the bump), trimming that
 * log to its last DELTA_KEEP generations, and reading it back for a range of generations.
 * Must not: write anything but the generation and the log, or read the index itself. */
#include <stdlib.h>
#include <string.h>
#include "storage/search_int.h"

#define GEN_KEY     "store.search.gen"
#define DELTA_KEEP  1024    /* generations the log keeps: columns older than that are read again */
#define DELTA_MAX   1024    /* docids one generation records; a larger write says "anything" */
#define DELTA_DOCS  'd'     /* log value: this tag, then big-endian u32 docids */
#define DELTA_ANY   'a'     /* log value: anything may have changed (a rebuild, a large batch) */

static void be64_put(uint8_t *out, uint64_t v)
{
    be32_put(out, (uint32_t)(v >> 32));
    be32_put(out + 4, (uint32_t)v);
}

static uint64_t be64_get(const uint8_t *in)
{
    return (uint64_t)be32_get(in) << 32 | be32_get(in + 4);
}

int search__gen_get(store_t *st, MDB_txn *txn, uint64_t *gen, char *err, size_t errlen)
{
    MDB_val k = { sizeof GEN_KEY - 1, (void *)GEN_KEY }, v;
    int rc = mdb_get(txn, st->meta, &k, &v);
    *gen = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc) {
        store__mdb_err(st, err, errlen, "mdb_get(meta, search gen)", rc);
        return -1;
    }
    if (v.mv_size != 8) {
        store__err(err, errlen, "meta: search generation of %zu bytes (%s)", v.mv_size, st->path);
        return -1;
    }
    *gen = be64_get(v.mv_data);
    return 0;
}

/* Drops the log's generations up to and including last. */
static int delta_trim(store_t *st, MDB_txn *txn, uint64_t last, char *err, size_t errlen)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->s_delta, &cur);
    if (rc)
        return store__write_fail(st, err, errlen, "mdb_cursor_open(search_delta)", rc);
    MDB_val k, v;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0 &&
           (k.mv_size != 8 || be64_get(k.mv_data) <= last))
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
    mdb_cursor_close(cur);
    return rc && rc != MDB_NOTFOUND ? store__write_fail(st, err, errlen, "trimming search_delta", rc) : 0;
}

int search__gen_bump(store_t *st, MDB_txn *txn, const uint32_t *docids, size_t n, char *err, size_t errlen)
{
    uint64_t gen;
    if (search__gen_get(st, txn, &gen, err, errlen) != 0)
        return -1;
    gen++;
    uint8_t kb[8];
    be64_put(kb, gen);
    MDB_val k = { sizeof GEN_KEY - 1, (void *)GEN_KEY }, v = { sizeof kb, kb };
    int rc = mdb_put(txn, st->meta, &k, &v, 0);
    if (rc)
        return store__write_fail(st, err, errlen, "mdb_put(meta, search gen)", rc);
    uint8_t rec[1 + DELTA_MAX * 4];
    size_t len = 1;
    rec[0] = DELTA_ANY;
    if (docids && n <= DELTA_MAX) {
        rec[0] = DELTA_DOCS;
        for (size_t i = 0; i < n; i++, len += 4)
            be32_put(rec + len, docids[i]);
    }
    MDB_val dk = { sizeof kb, kb }, dv = { len, rec };
    if ((rc = mdb_put(txn, st->s_delta, &dk, &dv, 0)) != 0)
        return store__write_fail(st, err, errlen, "mdb_put(search_delta)", rc);
    return gen > DELTA_KEEP ? delta_trim(st, txn, gen - DELTA_KEEP, err, errlen) : 0;
}

/* ---------------------------------------------------------------- once per transaction */

struct search_written {
    uint32_t *v;
    size_t n, cap;                 /* past DELTA_MAX: anything may have changed, none kept */
};

int search__gen_note(store_t *st, uint32_t docid, char *err, size_t errlen)
{
    struct search_written *w = st->written;
    if (!w && !(w = st->written = calloc(1, sizeof *w))) {
        store__err(err, errlen, "search: out of memory noting a write");
        return -1;
    }
    if (w->n < DELTA_MAX && w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        uint32_t *v = realloc(w->v, cap * sizeof *v);
        if (!v) {
            store__err(err, errlen, "search: out of memory noting a write");
            return -1;
        }
        w->v = v;
        w->cap = cap;
    }
    if (w->n < DELTA_MAX)
        w->v[w->n] = docid;
    w->n++;
    return 0;
}

int store__search_gen_apply(store_t *st, MDB_txn *txn, char *err, size_t errlen)
{
    struct search_written *w = st->written;
    if (!w || w->n == 0)
        return 0;
    int rc = search__gen_bump(st, txn, w->n <= DELTA_MAX ? w->v : NULL, w->n, err, errlen);
    w->n = 0;
    return rc;
}

void store__search_gen_reset(store_t *st)
{
    if (st->written)
        st->written->n = 0;
}

void store__search_gen_free(store_t *st)
{
    if (!st->written)
        return;
    free(st->written->v);
    free(st->written);
    st->written = NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int search__delta_read(store_t *st, MDB_txn *txn, uint64_t from, uint64_t to, size_t max, uint32_t **out,
                       size_t *nout, char *err, size_t errlen)
{
    *out = NULL;
    *nout = 0;
    if (to <= from || to - from > DELTA_KEEP)
        return 1;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->s_delta, &cur);
    if (rc) {
        store__mdb_err(st, err, errlen, "mdb_cursor_open(search_delta)", rc);
        return -1;
    }
    uint32_t *d = NULL;
    size_t n = 0, cap = 0;
    int ret = 0;
    uint8_t kb[8];
    be64_put(kb, from + 1);
    MDB_val k = { sizeof kb, kb }, v;
    for (uint64_t want = from + 1; want <= to && ret == 0; want++) {
        rc = mdb_cursor_get(cur, &k, &v, want == from + 1 ? MDB_SET_RANGE : MDB_NEXT);
        if (rc && rc != MDB_NOTFOUND) {
            store__mdb_err(st, err, errlen, "mdb_cursor_get(search_delta)", rc);
            ret = -1;
            break;
        }
        const uint8_t *p = v.mv_data;
        /* A missing generation (trimmed, or written by a build without the log), "anything", or a
         * value that is not a list: the log cannot say. */
        if (rc || k.mv_size != 8 || be64_get(k.mv_data) != want || v.mv_size < 1 || p[0] != DELTA_DOCS ||
            (v.mv_size - 1) % 4 || n + (v.mv_size - 1) / 4 > max) {
            ret = 1;
            break;
        }
        size_t add = (v.mv_size - 1) / 4;
        if (n + add > cap) {
            size_t c2 = cap ? cap * 2 : 64;
            while (c2 < n + add)
                c2 *= 2;
            uint32_t *t = realloc(d, c2 * sizeof *d);
            if (!t) {
                store__err(err, errlen, "search: out of memory reading the index log");
                ret = -1;
                break;
            }
            d = t;
            cap = c2;
        }
        for (size_t i = 0; i < add; i++)
            d[n++] = be32_get(p + 1 + 4 * i);
    }
    mdb_cursor_close(cur);
    if (ret) {
        free(d);
        return ret;
    }
    qsort(d, n, sizeof *d, cmp_u32);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || d[u - 1] != d[i])
            d[u++] = d[i];
    *out = d;
    *nout = u;
    return 0;
}
