/* storage/search_cache.c - the search index's columns in memory: each product's facet values and
 * its place in id order, read once from search_facets and search_ids and shared by the queries
 * of every thread until the index changes (layout in search_int.h).
 *
 * Owns: the index generation (meta "store.search.gen", bumped by every transaction that writes
 * the index), building the columns of one generation, and handing them to queries.
 * Must not: write anything but the generation, or be trusted by a query whose snapshot is of
 * another generation. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "storage/search_int.h"

#define GEN_KEY "store.search.gen"

/* Guards every store's cache pointer, its building flag and the caches' reference counts (held for
 * pointer work only); cache_done wakes the queries that wait for a build. */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cache_done = PTHREAD_COND_INITIALIZER;

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
    *gen = (uint64_t)be32_get(v.mv_data) << 32 | be32_get((const uint8_t *)v.mv_data + 4);
    return 0;
}

int search__gen_bump(store_t *st, MDB_txn *txn, char *err, size_t errlen)
{
    uint64_t gen;
    if (search__gen_get(st, txn, &gen, err, errlen) != 0)
        return -1;
    gen++;
    uint8_t b[8];
    be32_put(b, (uint32_t)(gen >> 32));
    be32_put(b + 4, (uint32_t)gen);
    MDB_val k = { sizeof GEN_KEY - 1, (void *)GEN_KEY }, v = { sizeof b, b };
    int rc = mdb_put(txn, st->meta, &k, &v, 0);
    return rc ? store__write_fail(st, err, errlen, "mdb_put(meta, search gen)", rc) : 0;
}

static void cache_free(search_cache_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nvalues; i++)
        free(c->values[i].s);
    free(c->values);
    free(c->total);
    free(c->off);
    free(c->val);
    free(c->idrank);
    free(c);
}

/* One sweep of the facet postings of snapshot txn: the first (val NULL) counts each doc's values
 * into c->off[d + 1] and reads the values; the second writes each doc's values from pos[d] on. */
static int sweep(store_t *st, MDB_txn *txn, search_cache_t *c, uint32_t *pos, int *oom)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->s_facets, &cur);
    if (rc)
        return rc;
    size_t cap_values = c->nvalues, value = 0;
    MDB_val k = { 1, "b" }, v;   /* after 'a' (every product) */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP)) {
        int facet = -1;
        for (int f = 0; f < STORE_FACETS && k.mv_size >= 1; f++)
            if (((const char *)k.mv_data)[0] == FACET_KINDS[f])
                facet = f;
        if (facet < 0)
            continue;
        if (!pos) {
            if (c->nvalues == cap_values) {
                cap_values = cap_values ? cap_values * 2 : 256;
                void *p = realloc(c->values, cap_values * sizeof *c->values);
                if (!p)
                    goto oom;
                c->values = p;
            }
            size_t len = k.mv_size - 1;
            char *s = malloc(len + 1);
            if (!s)
                goto oom;
            memcpy(s, (const char *)k.mv_data + 1, len);
            s[len] = '\0';
            c->values[c->nvalues++] = (search_value_t){ facet, len, s };
        } else if (value >= c->nvalues) {
            rc = MDB_CORRUPTED;   /* not the snapshot of the first sweep */
            break;
        }
        /* NEXT_NODUP left the cursor on the key's first duplicate: read its pages from there. */
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_GET_MULTIPLE); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_MULTIPLE)) {
            if (v.mv_size % FACET_LEN) {
                rc = MDB_CORRUPTED;
                break;
            }
            const uint8_t *p = v.mv_data;
            for (size_t i = 0; i < v.mv_size / FACET_LEN; i++) {
                uint32_t d = be32_get(p + i * FACET_LEN);
                if (d >= c->n)
                    continue;
                if (pos) {
                    c->val[pos[d]++] = (uint32_t)value;
                    c->total[value]++;
                } else {
                    c->off[d + 1]++;
                }
            }
        }
        if (rc != MDB_NOTFOUND)
            break;
        value++;
        /* NEXT_MULTIPLE ended on the key's last duplicate: NEXT_NODUP moves on. */
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
oom:
    mdb_cursor_close(cur);
    *oom = 1;
    return -1;
}

/* Reads every facet posting and the id order of snapshot txn into a new cache of generation gen
 * for docids < n. NULL with err set on failure. */
static search_cache_t *cache_build(store_t *st, MDB_txn *txn, uint64_t gen, uint32_t n, char *err, size_t errlen)
{
    search_cache_t *c = calloc(1, sizeof *c);
    uint32_t *pos = NULL;
    MDB_cursor *cur = NULL;
    int rc = 0, oom = 0;
    if (!c || !(c->off = calloc((size_t)n + 1, sizeof *c->off)) || !(c->idrank = calloc(n ? n : 1, sizeof *c->idrank)))
        goto oom;
    c->gen = gen;
    c->n = n;
    if ((rc = sweep(st, txn, c, NULL, &oom)) != 0)
        goto fail_rc;
    for (uint32_t d = 0; d < n; d++)
        c->off[d + 1] += c->off[d];
    if (!(c->val = malloc((c->off[n] ? c->off[n] : 1) * sizeof *c->val)) ||
        !(c->total = calloc(c->nvalues ? c->nvalues : 1, sizeof *c->total)) ||
        !(pos = malloc(((size_t)n + 1) * sizeof *pos)))
        goto oom;
    memcpy(pos, c->off, ((size_t)n + 1) * sizeof *pos);
    if ((rc = sweep(st, txn, c, pos, &oom)) != 0)
        goto fail_rc;
    free(pos);
    pos = NULL;
    /* The id order: search_ids is keyed by id, in byte order (strcmp's for ids). */
    if ((rc = mdb_cursor_open(txn, st->s_ids, &cur)) != 0)
        goto fail_rc;
    MDB_val k, v;
    uint32_t rank = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size != 4)
            continue;
        uint32_t d = be32_get(v.mv_data);
        if (d < n)
            c->idrank[d] = ++rank;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        goto fail_rc;
    return c;
fail_rc:
    if (!oom) {
        store__mdb_err(st, err, errlen, "search: reading the index columns", rc);
        goto fail;
    }
oom:
    store__err(err, errlen, "search: out of memory for the index columns of %u products", n);
fail:
    free(pos);
    cache_free(c);
    return NULL;
}

search_cache_t *search__cache_get(store_t *st, MDB_txn *txn, uint32_t n, char *err, size_t errlen)
{
    uint64_t gen;
    if (search__gen_get(st, txn, &gen, err, errlen) != 0)
        return NULL;
    pthread_mutex_lock(&cache_lock);
    search_cache_t *c;
    /* One build at a time: the queries that find the columns stale while another thread builds
     * them wait for that build (most want the same generation) instead of each building a copy
     * (16 HTTP threads after one write: 16 copies of ~3.4 MB at 100,000 products, and 16 times the
     * CPU); one that then still finds them of another generation builds its own. */
    for (;;) {
        c = st->scache;
        if (c && c->gen == gen && c->n == n) {
            c->refs++;
            pthread_mutex_unlock(&cache_lock);
            return c;
        }
        if (!st->scache_building)
            break;
        pthread_cond_wait(&cache_done, &cache_lock);
    }
    st->scache_building = 1;
    pthread_mutex_unlock(&cache_lock);
    c = cache_build(st, txn, gen, n, err, errlen);
    pthread_mutex_lock(&cache_lock);
    st->scache_building = 0;
    pthread_cond_broadcast(&cache_done);
    if (c) {
        c->refs = 1;                     /* the caller's */
        search_cache_t *old = st->scache;
        if (!old || old->gen < gen) {   /* a newer generation: the store keeps it */
            c->refs++;                   /* the store's */
            st->scache = c;
            if (old && --old->refs == 0)
                cache_free(old);
        }
    }
    pthread_mutex_unlock(&cache_lock);
    return c;
}

void search__cache_release(search_cache_t *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&cache_lock);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&cache_lock);
    if (last)
        cache_free(c);
}

void store__search_close(store_t *st)
{
    search__cache_release(st->scache);
    st->scache = NULL;
}
