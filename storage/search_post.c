/* storage/search_post.c - the posting writes of the open write transaction, applied together in
 * key order (layout in search_int.h).
 *
 * Owns: the queue of posting additions and removals search_index.c makes (search__post_add,
 * search__post_del), applying it through one cursor per posting database, sorted by database,
 * key and value (each posting's own changes in the order they were made), and emptying it.
 * Why: a batch of N products writes ~25 postings each, most under keys the others share ('a',
 * the domain, the status, common words). One mdb_put each descends the tree from the root every
 * time; in key order through one cursor most land on the page the cursor is already on.
 * Must not: be read through (no posting read may happen in a write transaction while some are
 * queued: none does, queries read snapshots), outlive the transaction (store__write applies it
 * before the commit, store__search_post_apply, and empties it at every begin), or grow without
 * bound (applied at once when POST_MAX changes wait, as in a rebuild or a large catch-up). */
#include <stdlib.h>
#include <string.h>
#include "storage/search_int.h"

#define POST_MAX 65536                /* queued changes applied at once */
#define POST_KEY_BYTES (4u << 20)     /* or once their keys hold this many bytes */

typedef struct {
    uint64_t pre;                     /* the key's first 8 bytes, big-endian, zero-padded */
    uint64_t vnum;                    /* the value (fixed size per database), big-endian */
    uint32_t ord;                     /* order made: ties keep it */
    uint32_t koff;                    /* key: keys[koff .. koff + klen) */
    uint16_t klen;
    uint8_t facets, del, vlen;
    uint8_t val[POST_LEN];
} post_t;

struct search_post {
    post_t *v;
    size_t n, cap;
    char *keys;
    size_t kn, kcap;
};

void store__search_post_reset(store_t *st)
{
    if (st->post) {
        st->post->n = 0;
        st->post->kn = 0;
    }
}

void store__search_post_free(store_t *st)
{
    if (!st->post)
        return;
    free(st->post->v);
    free(st->post->keys);
    free(st->post);
    st->post = NULL;
}

/* Database, then key (as LMDB orders them: bytes, then length), value, order made. Keys and
 * values are compared as numbers first: most comparisons end there. */
static int cmp_post(const void *a, const void *b, void *ctx)
{
    const post_t *x = a, *y = b;
    if (x->facets != y->facets)
        return x->facets < y->facets ? -1 : 1;
    if (x->pre != y->pre)
        return x->pre < y->pre ? -1 : 1;
    if (x->klen > 8 && y->klen > 8) {
        const char *keys = ctx;
        size_t n = (x->klen < y->klen ? x->klen : y->klen) - 8u;
        int c = memcmp(keys + x->koff + 8, keys + y->koff + 8, n);
        if (c)
            return c;
    }
    if (x->klen != y->klen)
        return x->klen < y->klen ? -1 : 1;
    if (x->vnum != y->vnum)
        return x->vnum < y->vnum ? -1 : 1;
    return x->ord < y->ord ? -1 : x->ord > y->ord;
}

static uint64_t be_num(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v = v << 8 | (i < n ? b[i] : 0);
    return v;
}

static int apply_one(store_t *st, MDB_cursor *cur, const post_t *p, char *err, size_t errlen)
{
    MDB_val k = { p->klen, st->post->keys + p->koff }, v = { p->vlen, (void *)p->val };
    if (!p->del) {
        int rc = mdb_cursor_put(cur, &k, &v, MDB_NODUPDATA);
        if (rc == MDB_KEYEXIST)
            return 0;
        return rc ? store__write_fail(st, err, errlen, "mdb_cursor_put(search)", rc) : 0;
    }
    int rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc == 0)
        rc = mdb_cursor_del(cur, 0);
    return rc ? store__write_fail(st, err, errlen, "mdb_cursor_del(search)", rc) : 0;
}

int store__search_post_apply(store_t *st, MDB_txn *txn, char *err, size_t errlen)
{
    struct search_post *q = st->post;
    if (!q || q->n == 0)
        return 0;
    qsort_r(q->v, q->n, sizeof *q->v, cmp_post, q->keys);
    MDB_cursor *cur[2] = { NULL, NULL };
    int rc = 0;
    for (size_t i = 0; i < q->n && rc == 0; i++) {
        const post_t *p = &q->v[i];
        MDB_dbi dbi = p->facets ? st->s_facets : st->s_terms;
        if (!cur[p->facets] && (rc = mdb_cursor_open(txn, dbi, &cur[p->facets])) != 0) {
            rc = store__write_fail(st, err, errlen, "mdb_cursor_open(search)", rc);
            break;
        }
        rc = apply_one(st, cur[p->facets], p, err, errlen);
    }
    for (int i = 0; i < 2; i++)
        if (cur[i])
            mdb_cursor_close(cur[i]);
    store__search_post_reset(st);
    return rc;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    void *n = realloc(*p, c * size);
    if (!n)
        return -1;
    *p = n;
    *cap = c;
    return 0;
}

static int queue(store_t *st, MDB_txn *txn, MDB_dbi dbi, int del, const char *key, size_t klen,
                 const uint8_t *val, size_t vlen, char *err, size_t errlen)
{
    /* What LMDB would refuse is refused here, so it is the entry indexing it that fails (catalog.c
     * refuses that one alone), not the transaction's commit. */
    if (klen == 0 || klen > (size_t)mdb_env_get_maxkeysize(st->env) || vlen == 0 || vlen > POST_LEN ||
        (dbi != st->s_terms && dbi != st->s_facets)) {
        store__err(err, errlen, "search: posting of a %zu-byte key and a %zu-byte value (%s)", klen, vlen,
                   st->path);
        return -1;
    }
    if (!st->post && !(st->post = calloc(1, sizeof *st->post))) {
        store__err(err, errlen, "search: out of memory queueing postings");
        return -1;
    }
    struct search_post *q = st->post;
    if (q->n >= POST_MAX || q->kn + klen > POST_KEY_BYTES) {
        int rc = store__search_post_apply(st, txn, err, errlen);
        if (rc)
            return rc;
    }
    if (grow((void **)&q->v, &q->cap, q->n + 1, sizeof *q->v) != 0 ||
        grow((void **)&q->keys, &q->kcap, q->kn + klen, 1) != 0) {
        store__err(err, errlen, "search: out of memory queueing postings");
        return -1;
    }
    post_t *p = &q->v[q->n];
    *p = (post_t){ .pre = be_num(key, klen), .vnum = be_num(val, vlen), .ord = (uint32_t)q->n,
                   .koff = (uint32_t)q->kn, .klen = (uint16_t)klen, .facets = dbi == st->s_facets,
                   .del = (uint8_t)del, .vlen = (uint8_t)vlen };
    memcpy(p->val, val, vlen);
    memcpy(q->keys + q->kn, key, klen);
    q->kn += klen;
    q->n++;
    return 0;
}

int search__post_add(store_t *st, MDB_txn *txn, MDB_dbi dbi, const char *key, size_t klen,
                     const uint8_t *val, size_t vlen, char *err, size_t errlen)
{
    return queue(st, txn, dbi, 0, key, klen, val, vlen, err, errlen);
}

int search__post_del(store_t *st, MDB_txn *txn, MDB_dbi dbi, const char *key, size_t klen,
                     const uint8_t *val, size_t vlen, char *err, size_t errlen)
{
    return queue(st, txn, dbi, 1, key, klen, val, vlen, err, errlen);
}
