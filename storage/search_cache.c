/* storage/search_cache.c - the search index's columns in memory: each product's facet values and
 * its place in id order, shared by the queries of every thread (layout in search_int.h). The first
 * query of a store reads them whole from search_facets and search_ids; a query of a later
 * generation updates the columns of an older one the store keeps by the products the log
 * (search_gen.c) says changed since, copying only the chunks those products are in.
 *
 * Owns: building the columns of one generation (read whole, or updated copy-on-write per chunk of
 * SEARCH_CHUNK products), the values the generations updated from one read share (search_dict_t),
 * the few generations a store keeps (STORE_SCACHE_KEEP), and handing them to queries.
 * Must not: write to the store, change columns a query may hold, or hand a query the columns of
 * another generation than its snapshot's. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "storage/search_int.h"

#define UPDATE_SHARE 64                    /* update when at most 1/64 of the products changed (a */
#define UPDATE_MIN   64                    /* changed product costs ~50 read whole), or this many */
#define DEAD_VALUES  1024                  /* values no product has, past the live ones, that a read
                                              whole sheds */
#define RANK_STEP    ((uint64_t)1 << 32)   /* the most a new id's rank is past the one before it */

/* Guards every store's kept columns, its building flag and the columns' reference counts (held for
 * pointer work only); cache_done wakes the queries that wait for a build. */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cache_done = PTHREAD_COND_INITIALIZER;

/* ================================================================ values */

/* Every value of the generations updated from one read whole, each at a fixed index. Added to only
 * by the thread that builds columns (one at a time per store: st->scache_building), and read by it
 * alone: a generation copies the entries it needs (the strings stay here, never changed). */
typedef struct search_dict {
    atomic_int refs;                 /* the generations that use it */
    search_value_t *v;
    size_t n, cap;
    uint32_t *slot;                  /* open addressing on (facet, value): index + 1, 0 empty */
    size_t nslot;                    /* a power of two, at least twice n */
} search_dict_t;

static uint32_t value_hash(int facet, const char *s, size_t len)
{
    uint32_t h = 2166136261u ^ (uint32_t)facet;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static void dict_release(search_dict_t *d)
{
    if (!d || atomic_fetch_sub(&d->refs, 1) != 1)
        return;
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i].s);
    free(d->v);
    free(d->slot);
    free(d);
}

/* A hash table of nslot slots over d's values. 0, or -1 out of memory. */
static int dict_rehash(search_dict_t *d, size_t nslot)
{
    uint32_t *slot = calloc(nslot, sizeof *slot);
    if (!slot)
        return -1;
    for (size_t i = 0; i < d->n; i++) {
        size_t j = value_hash(d->v[i].facet, d->v[i].s, d->v[i].len) & (nslot - 1);
        while (slot[j])
            j = (j + 1) & (nslot - 1);
        slot[j] = (uint32_t)i + 1;
    }
    free(d->slot);
    d->slot = slot;
    d->nslot = nslot;
    return 0;
}

/* The index of value (facet, s[0..len)) in d, added when new. 0, or -1 out of memory. */
static int dict_index(search_dict_t *d, int facet, const char *s, size_t len, uint32_t *index)
{
    if ((d->n + 1) * 2 > d->nslot && dict_rehash(d, d->nslot ? d->nslot * 2 : 1024) != 0)
        return -1;
    size_t j = value_hash(facet, s, len) & (d->nslot - 1);
    for (; d->slot[j]; j = (j + 1) & (d->nslot - 1)) {
        const search_value_t *v = &d->v[d->slot[j] - 1];
        if (v->facet == facet && v->len == len && memcmp(v->s, s, len) == 0) {
            *index = d->slot[j] - 1;
            return 0;
        }
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        search_value_t *v = realloc(d->v, cap * sizeof *v);
        if (!v)
            return -1;
        d->v = v;
        d->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, s, len);
    copy[len] = '\0';
    d->v[d->n] = (search_value_t){ facet, len, copy };
    d->slot[j] = (uint32_t)d->n + 1;
    *index = (uint32_t)d->n++;
    return 0;
}

/* ================================================================ chunks and columns */

static size_t nchunks(uint32_t n)
{
    return ((size_t)n + SEARCH_CHUNK - 1) / SEARCH_CHUNK;
}

/* A chunk with room for nval values, its offsets and ranks 0. */
static search_chunk_t *chunk_new(size_t nval)
{
    search_chunk_t *k = malloc(sizeof *k + (nval ? nval : 1) * sizeof *k->val);
    if (!k)
        return NULL;
    atomic_init(&k->refs, 1);
    memset(k->off, 0, sizeof k->off);
    memset(k->rank, 0, sizeof k->rank);
    return k;
}

static void chunk_release(search_chunk_t *k)
{
    if (k && atomic_fetch_sub(&k->refs, 1) == 1)
        free(k);
}

static void cache_free(search_cache_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->chunk && i < nchunks(c->n); i++)
        chunk_release(c->chunk[i]);
    free(c->chunk);
    free(c->values);
    free(c->total);
    dict_release(c->dict);
    free(c);
}

/* Columns of generation gen for docids < n using dict (a reference taken), with a copy of its
 * values, totals 0 and no chunks yet. NULL out of memory. */
static search_cache_t *cache_new(uint64_t gen, uint32_t n, search_dict_t *dict)
{
    search_cache_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    atomic_fetch_add(&dict->refs, 1);
    c->dict = dict;
    c->gen = gen;
    c->n = n;
    c->nvalues = dict->n;
    if (!(c->chunk = calloc(nchunks(n) ? nchunks(n) : 1, sizeof *c->chunk)) ||
        !(c->values = malloc((c->nvalues ? c->nvalues : 1) * sizeof *c->values)) ||
        !(c->total = calloc(c->nvalues ? c->nvalues : 1, sizeof *c->total))) {
        cache_free(c);
        return NULL;
    }
    if (c->nvalues)
        memcpy(c->values, dict->v, c->nvalues * sizeof *c->values);
    return c;
}

static void count_live(search_cache_t *c)
{
    c->nlive = 0;
    for (size_t v = 0; v < c->nvalues; v++)
        c->nlive += c->total[v] != 0;
}

/* ================================================================ read whole */

/* Every doc's values as flat arrays, as two sweeps of the facet postings read them. */
typedef struct {
    uint32_t n;
    uint32_t *off;                   /* n + 1: doc d's values are val[off[d] .. off[d + 1]) */
    uint32_t *val;
    search_dict_t *dict;
    uint32_t *total;
} flat_t;

/* One sweep of the facet postings of snapshot txn: the first (pos NULL) counts each doc's values
 * into f->off[d + 1] and adds the values to f->dict; the second writes each doc's values from
 * pos[d] on. */
static int sweep(store_t *st, MDB_txn *txn, flat_t *f, uint32_t *pos, int *oom)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->s_facets, &cur);
    if (rc)
        return rc;
    size_t value = 0;
    MDB_val k = { 1, "b" }, v;   /* after 'a' (every product) */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP)) {
        int facet = -1;
        for (int i = 0; i < STORE_FACETS && k.mv_size >= 1; i++)
            if (((const char *)k.mv_data)[0] == FACET_KINDS[i])
                facet = i;
        if (facet < 0)
            continue;
        uint32_t index;
        if (!pos) {
            if (dict_index(f->dict, facet, (const char *)k.mv_data + 1, k.mv_size - 1, &index) != 0)
                goto oom;
            if (index != value) {
                rc = MDB_CORRUPTED;   /* the same value under two keys: never */
                break;
            }
        } else if (value >= f->dict->n) {
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
                if (d >= f->n)
                    continue;
                if (pos) {
                    f->val[pos[d]++] = (uint32_t)value;
                    f->total[value]++;
                } else {
                    f->off[d + 1]++;
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

/* Cuts the flat columns f into c's chunks. 0, or -1 out of memory. */
static int chunk_flat(search_cache_t *c, const flat_t *f)
{
    for (size_t ci = 0; ci < nchunks(c->n); ci++) {
        uint32_t lo = (uint32_t)(ci * SEARCH_CHUNK), hi = c->n - lo < SEARCH_CHUNK ? c->n : lo + SEARCH_CHUNK;
        search_chunk_t *k = c->chunk[ci] = chunk_new(f->off[hi] - f->off[lo]);
        if (!k)
            return -1;
        memcpy(k->val, f->val + f->off[lo], (f->off[hi] - f->off[lo]) * sizeof *k->val);
        for (uint32_t i = 0; i <= SEARCH_CHUNK; i++)
            k->off[i] = f->off[lo + i < hi ? lo + i : hi] - f->off[lo];
    }
    return 0;
}

/* Ranks every doc of snapshot txn in id order (search_ids is keyed by id, in byte order: strcmp's),
 * spread evenly over 64 bits so that ids added later fit between. An LMDB code. */
static int rank_ids(store_t *st, MDB_txn *txn, search_cache_t *c)
{
    MDB_stat s;
    MDB_cursor *cur;
    int rc = mdb_stat(txn, st->s_ids, &s);
    if (rc || (rc = mdb_cursor_open(txn, st->s_ids, &cur)) != 0)
        return rc;
    uint64_t step = UINT64_MAX / ((uint64_t)s.ms_entries + 1), rank = 0;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size != 4)
            continue;
        uint32_t d = be32_get(v.mv_data);
        if (d < c->n && rank < UINT64_MAX - step)
            c->chunk[d / SEARCH_CHUNK]->rank[d % SEARCH_CHUNK] = rank += step;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Reads every facet posting and the id order of snapshot txn into new columns of generation gen
 * for docids < n. NULL with err set on failure. */
static search_cache_t *cache_build(store_t *st, MDB_txn *txn, uint64_t gen, uint32_t n, char *err, size_t errlen)
{
    flat_t f = { .n = n };
    search_cache_t *c = NULL;
    uint32_t *pos = NULL;
    int rc = 0, oom = 0;
    if (!(f.dict = calloc(1, sizeof *f.dict)) || !(f.off = calloc((size_t)n + 1, sizeof *f.off)))
        goto oom;
    atomic_init(&f.dict->refs, 1);
    if ((rc = sweep(st, txn, &f, NULL, &oom)) != 0)
        goto fail_rc;
    for (uint32_t d = 0; d < n; d++)
        f.off[d + 1] += f.off[d];
    if (!(f.val = malloc((f.off[n] ? f.off[n] : 1) * sizeof *f.val)) ||
        !(f.total = calloc(f.dict->n ? f.dict->n : 1, sizeof *f.total)) ||
        !(pos = malloc(((size_t)n + 1) * sizeof *pos)))
        goto oom;
    memcpy(pos, f.off, ((size_t)n + 1) * sizeof *pos);
    if ((rc = sweep(st, txn, &f, pos, &oom)) != 0)
        goto fail_rc;
    if (!(c = cache_new(gen, n, f.dict)) || chunk_flat(c, &f) != 0)
        goto oom;
    memcpy(c->total, f.total, c->nvalues * sizeof *c->total);
    count_live(c);
    if ((rc = rank_ids(st, txn, c)) != 0)
        goto fail_rc;
    goto done;
fail_rc:
    if (!oom) {
        store__mdb_err(st, err, errlen, "search: reading the index columns", rc);
        goto fail;
    }
oom:
    store__err(err, errlen, "search: out of memory for the index columns of %u products", n);
fail:
    cache_free(c);
    c = NULL;
done:
    free(pos);
    free(f.off);
    free(f.val);
    free(f.total);
    dict_release(f.dict);
    return c;
}

/* ================================================================ update from an older generation */

/* The values of the changed docs, read from their records: doc t[i]'s are val[at[i] .. at[i + 1]). */
typedef struct {
    search_dict_t *dict;
    uint32_t *val;
    size_t n, cap;
    int oom;
} vals_t;

static int vals_add(vals_t *b, uint32_t v)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        uint32_t *p = realloc(b->val, cap * sizeof *p);
        if (!p) {
            b->oom = 1;
            return -1;
        }
        b->val = p;
        b->cap = cap;
    }
    b->val[b->n++] = v;
    return 0;
}

static int vals_facet(vals_t *b, int facet, const char *s, size_t len)
{
    uint32_t index;
    if (dict_index(b->dict, facet, s, len, &index) != 0) {
        b->oom = 1;
        return -1;
    }
    return vals_add(b, index);
}

/* search__rec_facets' callback: the facets the columns count (not 'a' or 'r'). */
static int rec_value(void *ctx, char kind, const char *v, size_t n)
{
    const char *k = strchr(FACET_KINDS, kind);
    return k && kind ? vals_facet(ctx, (int)(k - FACET_KINDS), v, n) : 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Doc d's values in snapshot txn, appended to b (sorted, each once); its id copied to id (""
 * when it has no record). 0, or -1 with err set. */
static int doc_values(store_t *st, MDB_txn *txn, MDB_cursor *facets, uint32_t d, vals_t *b,
                      char id[STORE_ID_MAX], char *err, size_t errlen)
{
    size_t from = b->n;
    MDB_val v;
    rec_t r;
    id[0] = '\0';
    int rc = search__doc_get(st, txn, d, &v, &r, err, errlen);
    if (rc == -1)
        return -1;
    if (rc == 0) {
        memcpy(id, r.id, r.idlen);
        id[r.idlen] = '\0';
        search__rec_facets(&r, rec_value, b);
    }
    for (int j = 0; j < 2 && !b->oom; j++) {
        char key[32];
        size_t len = strlen(search__compliance[j]);
        key[0] = FACET_KINDS[STORE_FACET_COMPLIANCE];
        memcpy(key + 1, search__compliance[j], len);
        uint8_t be[FACET_LEN];
        be32_put(be, d);
        MDB_val k = { len + 1, key }, dv = { sizeof be, be };
        rc = mdb_cursor_get(facets, &k, &dv, MDB_GET_BOTH);
        if (rc == 0)
            vals_facet(b, STORE_FACET_COMPLIANCE, search__compliance[j], len);
        else if (rc != MDB_NOTFOUND) {
            store__mdb_err(st, err, errlen, "search: reading search_facets", rc);
            return -1;
        }
    }
    if (b->oom) {
        store__err(err, errlen, "search: out of memory for the index columns");
        return -1;
    }
    qsort(b->val + from, b->n - from, sizeof *b->val, cmp_u32);
    size_t u = from;
    for (size_t i = from; i < b->n; i++)
        if (u == from || b->val[u - 1] != b->val[i])
            b->val[u++] = b->val[i];
    b->n = u;
    return 0;
}

typedef struct { const char *id; uint32_t doc; } newid_t;

static int cmp_newid(const void *a, const void *b)
{
    return strcmp(((const newid_t *)a)->id, ((const newid_t *)b)->id);
}

static uint32_t docid_val(const MDB_val *v)
{
    return v->mv_size == 4 ? be32_get(v->mv_data) : 0;
}

/* Ranks the run of new ids from first on (each of doc >= from, so c's alone and unranked) up to the
 * next ranked id, spread over the gap between the ranks of the ids before and after it, in the
 * id order of cur's snapshot. 0; 1 when it cannot (no room in the gap, or the id is not where its
 * record says): the columns must be read whole; -1 with the LMDB code in *lmdb. */
static int rank_run(MDB_cursor *cur, search_cache_t *c, uint32_t from, const newid_t *first, uint32_t *run,
                    size_t cap, int *lmdb)
{
    MDB_val k = { strlen(first->id), (void *)first->id }, v;
    uint64_t before = 0, after = UINT64_MAX;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET);
    if (rc)
        goto out;
    if (docid_val(&v) != first->doc)
        return 1;
    if ((rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) == 0) {
        uint32_t p = docid_val(&v);
        if (p == 0 || p >= c->n || !(before = search__cache_rank(c, p)))
            return 1;
    } else if (rc != MDB_NOTFOUND) {
        goto out;
    }
    k = (MDB_val){ strlen(first->id), (void *)first->id };
    if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET)) != 0)
        goto out;
    size_t m = 0;
    run[m++] = first->doc;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        uint32_t e = docid_val(&v);
        if (e == 0 || e >= c->n)
            return 1;
        if (e < from || search__cache_rank(c, e)) {
            after = search__cache_rank(c, e);
            break;
        }
        if (m == cap)
            return 1;
        run[m++] = e;
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        goto out;
    uint64_t step = after > before ? (after - before) / (m + 1) : 0;
    if (step == 0)
        return 1;   /* no room: reading whole spreads every rank again */
    if (step > RANK_STEP)
        step = RANK_STEP;
    for (size_t j = 0; j < m; j++)
        c->chunk[run[j] / SEARCH_CHUNK]->rank[run[j] % SEARCH_CHUNK] = before + step * (j + 1);
    return 0;
out:
    if (rc == MDB_NOTFOUND)
        return 1;
    *lmdb = rc;
    return -1;
}

/* Ranks the new docs ids[0..nids) (docids >= from, new since the generation c is updated from)
 * between their neighbours in id order, in snapshot txn. 0; 1 when the columns must be read whole
 * instead; -1 with err. */
static int rank_new(store_t *st, MDB_txn *txn, search_cache_t *c, uint32_t from, newid_t *ids, size_t nids,
                    char *err, size_t errlen)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->s_ids, &cur);
    if (rc) {
        store__mdb_err(st, err, errlen, "mdb_cursor_open(search_ids)", rc);
        return -1;
    }
    uint32_t *run = malloc(nids * sizeof *run);
    int ret = run ? 0 : -1;
    if (!run)
        store__err(err, errlen, "search: out of memory ranking %zu new products", nids);
    qsort(ids, nids, sizeof *ids, cmp_newid);
    /* In id order, so the id before each run is ranked already. */
    for (size_t i = 0; i < nids && ret == 0; i++)
        if (!search__cache_rank(c, ids[i].doc) && (ret = rank_run(cur, c, from, &ids[i], run, nids, &rc)) == -1)
            store__mdb_err(st, err, errlen, "search: reading search_ids", rc);
    mdb_cursor_close(cur);
    free(run);
    return ret;
}

/* The columns of generation gen (docids < n, snapshot txn) from base's, the older generation's, and
 * the docids changed[0..nchanged) (sorted) that the log says changed since: the chunks of the
 * changed docs and of the docs new since are copied with those docs' values read again; the other
 * chunks are shared with base. NULL when they cannot be (then they are read whole). */
static search_cache_t *cache_update(store_t *st, MDB_txn *txn, const search_cache_t *base, uint64_t gen,
                                    uint32_t n, const uint32_t *changed, size_t nchanged, char *err,
                                    size_t errlen)
{
    if (n < base->n || (nchanged && changed[nchanged - 1] >= n))
        return NULL;
    /* t: the changed docs, then every doc new since base (sorted, each once). */
    size_t nt = 0, nnew = n - base->n, nids = 0, cap = nchanged + nnew;
    uint32_t *t = malloc((cap ? cap : 1) * sizeof *t), *at = malloc((cap + 1) * sizeof *at);
    char (*id)[STORE_ID_MAX] = malloc((nnew ? nnew : 1) * sizeof *id);
    newid_t *ids = malloc((nnew ? nnew : 1) * sizeof *ids);
    vals_t b = { .dict = base->dict };
    search_cache_t *c = NULL;
    MDB_cursor *facets = NULL;
    int rc;
    if (!t || !at || !id || !ids) {
        store__err(err, errlen, "search: out of memory updating the index columns");
        goto fail;
    }
    for (size_t i = 0; i < nchanged && changed[i] < base->n; i++)
        t[nt++] = changed[i];
    for (uint32_t d = base->n; d < n; d++)
        t[nt++] = d;
    if ((rc = mdb_cursor_open(txn, st->s_facets, &facets)) != 0) {
        store__mdb_err(st, err, errlen, "mdb_cursor_open(search_facets)", rc);
        goto fail;
    }
    for (size_t i = 0; i < nt; i++) {
        at[i] = (uint32_t)b.n;
        char scratch[STORE_ID_MAX];
        char *idp = t[i] >= base->n ? id[t[i] - base->n] : scratch;
        if (doc_values(st, txn, facets, t[i], &b, idp, err, errlen) != 0)
            goto fail;
        if (t[i] >= base->n && idp[0])
            ids[nids++] = (newid_t){ idp, t[i] };
    }
    at[nt] = (uint32_t)b.n;
    if (!(c = cache_new(gen, n, base->dict))) {
        store__err(err, errlen, "search: out of memory updating the index columns");
        goto fail;
    }
    memcpy(c->total, base->total, base->nvalues * sizeof *c->total);
    for (size_t i = 0; i < nt; i++) {
        uint32_t cnt = 0;
        const uint32_t *old = t[i] < base->n ? search__cache_vals(base, t[i], &cnt) : NULL;
        for (uint32_t j = 0; j < cnt; j++)
            c->total[old[j]]--;
        for (uint32_t j = at[i]; j < at[i + 1]; j++)
            c->total[b.val[j]]++;
    }
    count_live(c);
    /* Each chunk without a changed doc is base's; the others are copied with the new values. */
    for (size_t ci = 0, ti = 0; ci < nchunks(n); ci++) {
        uint32_t lo = (uint32_t)(ci * SEARCH_CHUNK), hi = n - lo < SEARCH_CHUNK ? n : lo + SEARCH_CHUNK;
        if (ti == nt || t[ti] >= hi) {
            c->chunk[ci] = base->chunk[ci];
            atomic_fetch_add(&c->chunk[ci]->refs, 1);
            continue;
        }
        size_t size = 0, tj = ti;
        for (uint32_t d = lo; d < hi; d++) {
            uint32_t cnt;
            if (tj < nt && t[tj] == d) {
                size += at[tj + 1] - at[tj];
                tj++;
            } else {
                search__cache_vals(base, d, &cnt);
                size += cnt;
            }
        }
        search_chunk_t *k = c->chunk[ci] = chunk_new(size);
        if (!k) {
            store__err(err, errlen, "search: out of memory updating the index columns");
            goto fail;
        }
        uint32_t pos = 0;
        for (uint32_t d = lo; d < hi; d++) {
            uint32_t cnt;
            const uint32_t *v;
            k->off[d - lo] = pos;
            if (ti < nt && t[ti] == d) {
                v = b.val + at[ti];
                cnt = at[ti + 1] - at[ti];
                ti++;
            } else {
                v = search__cache_vals(base, d, &cnt);
            }
            memcpy(k->val + pos, v, cnt * sizeof *v);
            pos += cnt;
            k->rank[d - lo] = d < base->n ? search__cache_rank(base, d) : 0;
        }
        for (uint32_t i = hi - lo; i <= SEARCH_CHUNK; i++)
            k->off[i] = pos;
    }
    if (nids && (rc = rank_new(st, txn, c, base->n, ids, nids, err, errlen)) != 0)
        goto fail;
    goto done;
fail:
    cache_free(c);
    c = NULL;
done:
    if (facets)
        mdb_cursor_close(facets);
    free(t);
    free(at);
    free(id);
    free(ids);
    free(b.val);
    return c;
}

/* ================================================================ the generations a store keeps */

/* The kept columns of generation gen (NULL: none). Under cache_lock. */
static search_cache_t *kept(store_t *st, uint64_t gen, uint32_t n)
{
    for (int i = 0; i < STORE_SCACHE_KEEP; i++)
        if (st->scache[i] && st->scache[i]->gen == gen && st->scache[i]->n == n)
            return st->scache[i];
    return NULL;
}

/* The newest kept columns older than gen, to update from (NULL: none). Under cache_lock. */
static search_cache_t *kept_before(store_t *st, uint64_t gen, uint32_t n)
{
    search_cache_t *best = NULL;
    for (int i = 0; i < STORE_SCACHE_KEEP; i++) {
        search_cache_t *c = st->scache[i];
        if (c && c->gen < gen && c->n <= n && (!best || c->gen > best->gen))
            best = c;
    }
    return best;
}

/* Keeps c (a reference taken) in place of the oldest kept, when there is room or c is newer. Under
 * cache_lock; returns the columns dropped, to release. */
static search_cache_t *keep(store_t *st, search_cache_t *c)
{
    int slot = 0;
    for (int i = 1; i < STORE_SCACHE_KEEP; i++)
        if (!st->scache[i] || (st->scache[slot] && st->scache[i]->gen < st->scache[slot]->gen))
            slot = i;
    search_cache_t *old = st->scache[slot];
    if (old && old->gen > c->gen)
        return NULL;
    c->refs++;
    st->scache[slot] = c;
    return old;
}

search_cache_t *search__cache_get(store_t *st, MDB_txn *txn, uint32_t n, char *err, size_t errlen)
{
    uint64_t gen;
    if (search__gen_get(st, txn, &gen, err, errlen) != 0)
        return NULL;
    pthread_mutex_lock(&cache_lock);
    search_cache_t *c, *base;
    /* One build at a time: the queries that find no columns of their generation while another
     * thread builds wait for that build (most want the same generation) instead of each building
     * a copy; one that then still finds none builds its own. */
    for (;;) {
        if ((c = kept(st, gen, n)) != NULL) {
            c->refs++;
            pthread_mutex_unlock(&cache_lock);
            return c;
        }
        if (!st->scache_building)
            break;
        pthread_cond_wait(&cache_done, &cache_lock);
    }
    st->scache_building = 1;
    if ((base = kept_before(st, gen, n)) != NULL)
        base->refs++;
    pthread_mutex_unlock(&cache_lock);
    c = NULL;
    /* Updated from the newest older generation kept, when the log names few enough changed docs
     * and the values no product has any more are few; else read whole. */
    if (base && base->nvalues <= 2 * base->nlive + DEAD_VALUES) {
        uint32_t *changed;
        size_t nchanged;
        if (search__delta_read(st, txn, base->gen, gen, n / UPDATE_SHARE + UPDATE_MIN, &changed, &nchanged, err, errlen) == 0)
            c = cache_update(st, txn, base, gen, n, changed, nchanged, err, errlen);
        free(changed);
    }
    int updated = c != NULL;
    if (!c)
        c = cache_build(st, txn, gen, n, err, errlen);
    pthread_mutex_lock(&cache_lock);
    st->scache_building = 0;
    pthread_cond_broadcast(&cache_done);
    search_cache_t *drop = NULL;
    if (c) {
        c->refs = 1;   /* the caller's */
        drop = keep(st, c);
        if (updated)
            st->scache_updates++;
        else
            st->scache_builds++;
    }
    int free_base = base && --base->refs == 0, free_drop = drop && --drop->refs == 0;
    pthread_mutex_unlock(&cache_lock);
    if (free_base)
        cache_free(base);
    if (free_drop)
        cache_free(drop);
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

void search__cache_counts(store_t *st, uint64_t *builds, uint64_t *updates)
{
    pthread_mutex_lock(&cache_lock);
    *builds = st->scache_builds;
    *updates = st->scache_updates;
    pthread_mutex_unlock(&cache_lock);
}

void store__search_close(store_t *st)
{
    for (int i = 0; i < STORE_SCACHE_KEEP; i++) {
        search__cache_release(st->scache[i]);
        st->scache[i] = NULL;
    }
}
