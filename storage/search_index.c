/* storage/search_index.c - writes to the search index, inside the catalog append transaction, and
 * the rebuild of an index an older store lacks (layout in search_int.h).
 *
 * Owns: docids (assigned in arrival order, never reused), postings of words and facets, the
 * search_docs record of each product, retiring (status facet swap), the index version marker in
 * meta, bumping the index generation with what each write changed (search_gen.c),
 * the docid lookups queries share, and the compliance facet the node's policy check sets.
 * Must not: decide what an entry does to the products index (catalog.c does), open transactions
 * of its own beyond store__search_open's one, or rank anything. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "storage/search_int.h"

/* ================================================================ index writes */

typedef int (*posting_op)(store_t *, MDB_txn *, MDB_dbi, const char *, size_t, const uint8_t *,
                          size_t, char *, size_t);

/* Facet posting kind+value for docid, added or removed by op. */
static int facet_op(store_t *st, MDB_txn *txn, posting_op op, char kind, const char *v, size_t n,
                    uint32_t docid, char *err, size_t errlen)
{
    char key[1 + STORE_FACET_VALUE_MAX];
    if (n > STORE_FACET_VALUE_MAX)
        n = STORE_FACET_VALUE_MAX;
    key[0] = kind;
    memcpy(key + 1, v, n);
    uint8_t val[FACET_LEN];
    be32_put(val, docid);
    return op(st, txn, st->s_facets, key, n + 1, val, sizeof val, err, errlen);
}

typedef struct {
    store_t *st;
    MDB_txn *txn;
    posting_op op;
    uint32_t docid;
    char *err;
    size_t errlen;
} facet_ctx_t;

static int facet_each(void *vctx, char kind, const char *v, size_t n)
{
    facet_ctx_t *f = vctx;
    return facet_op(f->st, f->txn, f->op, kind, v, n, f->docid, f->err, f->errlen);
}

/* Adds (op = search__post_add) or removes (search__post_del) every posting of a document given as a
 * decoded record. */
static int rec_postings(store_t *st, MDB_txn *txn, posting_op op, rec_t *r, uint32_t docid,
                        char *err, size_t errlen)
{
    facet_ctx_t fc = { st, txn, op, docid, err, errlen };
    int rc = search__rec_facets(r, facet_each, &fc);
    if (rc)
        return rc;
    rd_t rd = r->terms;
    for (size_t i = 0; i < r->nterms; i++) {
        const char *w;
        size_t n = search__rd_str(&rd, &w);
        unsigned mask = search__rd_u8(&rd);
        if (rd.bad || n == 0) {
            store__err(err, errlen, "search_docs: record of doc %u is truncated", docid);
            return -1;
        }
        uint8_t val[POST_LEN];
        be32_put(val, docid);
        val[4] = (uint8_t)mask;
        if ((rc = op(st, txn, st->s_terms, w, n, val, sizeof val, err, errlen)) != 0)
            return rc;
    }
    return 0;
}

/* The record of docid, in *v (the transaction's pages), decoded into r (pointing into them).
 * 0, STORE_NOTFOUND, or -1. */
int search__doc_get(store_t *st, MDB_txn *txn, uint32_t docid, MDB_val *v, rec_t *r,
                   char *err, size_t errlen)
{
    uint8_t kb[4];
    be32_put(kb, docid);
    MDB_val k = { sizeof kb, kb };
    int rc = mdb_get(txn, st->s_docs, &k, v);
    if (rc == MDB_NOTFOUND)
        return STORE_NOTFOUND;
    if (rc) {
        store__mdb_err(st, err, errlen, "mdb_get(search_docs)", rc);
        return -1;
    }
    if (search__rec_decode(v->mv_data, v->mv_size, r) != 0) {
        store__err(err, errlen, "search_docs: undecodable record of doc %u (%s)", docid, st->path);
        return -1;
    }
    return 0;
}

/* Writes rec as the record of docid. 0, MDB_MAP_FULL or -1. */
static int doc_put(store_t *st, MDB_txn *txn, uint32_t docid, const buf_t *rec, char *err, size_t errlen)
{
    uint8_t kb[4];
    be32_put(kb, docid);
    MDB_val k = { sizeof kb, kb }, v = { rec->len, rec->b };
    int rc = mdb_put(txn, st->s_docs, &k, &v, 0);
    return rc ? store__write_fail(st, err, errlen, "mdb_put(search_docs)", rc) : 0;
}

/* Loads the record of docid into a malloc'd copy (*copy: the page may move once this write
 * transaction writes) and decodes the copy into r. 0, STORE_NOTFOUND or -1. */
static int rec_load(store_t *st, MDB_txn *txn, uint32_t docid, uint8_t **copy, rec_t *r,
                    char *err, size_t errlen)
{
    MDB_val v;
    *copy = NULL;
    int rc = search__doc_get(st, txn, docid, &v, r, err, errlen);
    if (rc)
        return rc;
    if (!(*copy = malloc(v.mv_size))) {   /* decoded: at least a version byte */
        store__err(err, errlen, "search: out of memory");
        return -1;
    }
    memcpy(*copy, v.mv_data, v.mv_size);
    rc = search__rec_decode(*copy, v.mv_size, r);
    assert(rc == 0);
    return 0;
}

/* The docid of id: 0 with *docid set, STORE_NOTFOUND, or -1. */
int search__docid_of(store_t *st, MDB_txn *txn, const char *id, size_t idlen, uint32_t *docid,
                    char *err, size_t errlen)
{
    MDB_val k = { idlen, (void *)id }, v;
    int rc = mdb_get(txn, st->s_ids, &k, &v);
    if (rc == MDB_NOTFOUND)
        return STORE_NOTFOUND;
    if (rc) {
        store__mdb_err(st, err, errlen, "mdb_get(search_ids)", rc);
        return -1;
    }
    if (v.mv_size != 4) {
        store__err(err, errlen, "search_ids: value of %zu bytes for %s", v.mv_size, id);
        return -1;
    }
    *docid = be32_get(v.mv_data);
    return 0;
}

/* One past the highest docid in use (1 when none). */
int search__docid_end(store_t *st, MDB_txn *txn, uint32_t *end, char *err, size_t errlen)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->s_docs, &cur);
    if (rc) {
        store__mdb_err(st, err, errlen, "mdb_cursor_open(search_docs)", rc);
        return -1;
    }
    MDB_val k, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    *end = 1;
    if (rc == 0 && k.mv_size == 4)
        *end = be32_get(k.mv_data) + 1;
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        store__mdb_err(st, err, errlen, "mdb_cursor_get(search_docs)", rc);
        return -1;
    }
    if (*end == 0) {
        store__err(err, errlen, "search: docids exhausted (%s)", st->path);
        return -1;
    }
    return 0;
}

/* Removes the postings of docid's current record (if any). */
static int unindex(store_t *st, MDB_txn *txn, uint32_t docid, char *err, size_t errlen)
{
    uint8_t *copy;
    rec_t r;
    int rc = rec_load(st, txn, docid, &copy, &r, err, errlen);
    if (rc == STORE_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    rc = rec_postings(st, txn, search__post_del, &r, docid, err, errlen);
    free(copy);
    return rc;
}

/* Writes d's record and postings under docid. */
static int index_doc(store_t *st, MDB_txn *txn, const doc_t *d, uint32_t docid, char *err, size_t errlen)
{
    buf_t b = { 0 };
    if (search__doc_encode(d, &b) != 0) {
        free(b.b);
        store__err(err, errlen, "search: out of memory encoding %s", d->id);
        return -1;
    }
    rec_t r;
    int rc = search__rec_decode(b.b, b.len, &r);
    assert(rc == 0);
    rc = doc_put(st, txn, docid, &b, err, errlen);
    if (rc == 0)
        rc = rec_postings(st, txn, search__post_add, &r, docid, err, errlen);
    free(b.b);
    return rc;
}

/* Indexes id's manifest m under its docid (a new one for a new id), in *docid. */
static int put_product(store_t *st, MDB_txn *txn, const char *id, const Trib__Manifest *m, int retired,
                       uint32_t *docid, char *err, size_t errlen)
{
    size_t idlen = strlen(id);
    int rc = search__docid_of(st, txn, id, idlen, docid, err, errlen);
    if (rc == -1)
        return -1;
    if (rc == STORE_NOTFOUND) {
        if (search__docid_end(st, txn, docid, err, errlen) != 0)
            return -1;
        uint8_t vb[4];
        be32_put(vb, *docid);
        MDB_val k = { idlen, (void *)id }, v = { 4, vb };
        if ((rc = mdb_put(txn, st->s_ids, &k, &v, 0)) != 0)
            return store__write_fail(st, err, errlen, "mdb_put(search_ids)", rc);
    } else if ((rc = unindex(st, txn, *docid, err, errlen)) != 0) {
        return rc;
    }
    doc_t d;
    if (search__doc_from_manifest(&d, id, m, retired) != 0) {
        search__doc_free(&d);
        store__err(err, errlen, "search: out of memory indexing %s", id);
        return -1;
    }
    rc = index_doc(st, txn, &d, *docid, err, errlen);
    search__doc_free(&d);
    return rc;
}

int store__search_put(store_t *st, MDB_txn *txn, const char *id, const Trib__Manifest *m,
                      int retired, char *err, size_t errlen)
{
    if (st->search_off)
        return 0;
    uint32_t docid;
    int rc = put_product(st, txn, id, m, retired, &docid, err, errlen);
    return rc ? rc : search__gen_note(st, docid, err, errlen);
}

int store__search_retire(store_t *st, MDB_txn *txn, const char *id, char *err, size_t errlen)
{
    if (st->search_off)
        return 0;
    uint32_t docid;
    int rc = search__docid_of(st, txn, id, strlen(id), &docid, err, errlen);
    if (rc == STORE_NOTFOUND)
        return 0;   /* nothing indexed: nothing to change */
    if (rc)
        return rc;
    uint8_t *copy;
    rec_t r;
    if ((rc = rec_load(st, txn, docid, &copy, &r, err, errlen)) != 0)
        return rc == STORE_NOTFOUND ? 0 : rc;
    static const char retired[] = "retired";
    if (r.slen == sizeof retired - 1 && memcmp(r.status, retired, r.slen) == 0) {
        free(copy);
        return 0;
    }
    /* Same record with status "retired": swap the status facet, rewrite the record. */
    if ((rc = facet_op(st, txn, search__post_del, 's', r.status, r.slen, docid, err, errlen)) != 0 ||
        (rc = facet_op(st, txn, search__post_add, 's', retired, sizeof retired - 1, docid, err, errlen)) != 0) {
        free(copy);
        return rc;
    }
    buf_t b = { 0 };
    const uint8_t *after_status = (const uint8_t *)r.status + r.slen;
    size_t head = (size_t)((const uint8_t *)r.status - copy) - 1;   /* version, flags, id (before status len) */
    size_t total = (size_t)(r.terms.end - copy);
    search__buf_add(&b, copy, head);
    search__buf_str(&b, retired, sizeof retired - 1);
    search__buf_add(&b, after_status, total - (size_t)(after_status - copy));
    free(copy);
    if (b.failed) {
        free(b.b);
        store__err(err, errlen, "search: out of memory retiring %s", id);
        return -1;
    }
    rc = doc_put(st, txn, docid, &b, err, errlen);
    free(b.b);
    return rc ? rc : search__gen_note(st, docid, err, errlen);
}

/* ================================================================ open and rebuild */

/* The manifest stored at domain|seq, decoded (SignedEntry -> CatalogEntry); NULL when the
 * stored bytes are not one. Free with trib__catalog_entry__free_unpacked. */
static Trib__CatalogEntry *load_entry(store_t *st, MDB_txn *txn, const char *id, uint64_t seq)
{
    const char *slash = strchr(id, '/');
    uint8_t kb[STORE_SEQKEY_MAX];
    MDB_val k = { store__seq_key(kb, id, (size_t)(slash - id), seq), kb }, v;
    if (mdb_get(txn, st->catalog, &k, &v) != 0)
        return NULL;
    Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, v.mv_size, v.mv_data);
    if (!se)
        return NULL;
    Trib__CatalogEntry *ce = trib__catalog_entry__unpack(NULL, se->body.len, se->body.data);
    trib__signed_entry__free_unpacked(se, NULL);
    if (ce && (ce->change_case != TRIB__CATALOG_ENTRY__CHANGE_MANIFEST || !ce->manifest)) {
        trib__catalog_entry__free_unpacked(ce, NULL);
        return NULL;
    }
    return ce;
}

static int marker_put(store_t *st, MDB_txn *txn, char *err, size_t errlen)
{
    uint8_t b[4];
    be32_put(b, SEARCH_VERSION);
    MDB_val k = { strlen(MARKER_KEY), (void *)MARKER_KEY }, v = { 4, b };
    int rc = mdb_put(txn, st->meta, &k, &v, 0);
    return rc ? store__write_fail(st, err, errlen, "mdb_put(meta, search)", rc) : 0;
}

/* Empties the search databases and indexes every product from its latest manifest; the new
 * generation says anything may have changed (docids are new). */
static int rebuild(store_t *st, MDB_txn *txn, char *err, size_t errlen)
{
    MDB_dbi dbs[] = { st->s_terms, st->s_facets, st->s_docs, st->s_ids, st->s_delta };
    int rc;
    for (size_t i = 0; i < sizeof dbs / sizeof *dbs; i++)
        if ((rc = mdb_drop(txn, dbs[i], 0)) != 0)
            return store__write_fail(st, err, errlen, "mdb_drop(search)", rc);
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, st->products, &cur)) != 0)
        return store__write_fail(st, err, errlen, "mdb_cursor_open(products)", rc);
    MDB_val k, v;
    int ret = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && ret == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char id[STORE_ID_MAX];
        if (k.mv_size == 0 || k.mv_size >= STORE_ID_MAX)
            continue;
        memcpy(id, k.mv_data, k.mv_size);
        id[k.mv_size] = '\0';
        store_product_t p;
        if (!store_valid_id(id) || store__product_load(st, txn, id, &p, NULL, 0) != 0)
            continue;   /* not ours to repair here: the products index reports it on read */
        Trib__CatalogEntry *ce = load_entry(st, txn, id, p.manifest_seq);
        uint32_t docid;
        if (ce) {
            ret = put_product(st, txn, id, ce->manifest, p.retired, &docid, err, errlen);
            trib__catalog_entry__free_unpacked(ce, NULL);
        } else {
            /* Undecodable entry: index what the id says, so the product is still found. */
            Trib__Manifest m = TRIB__MANIFEST__INIT;
            ret = put_product(st, txn, id, &m, p.retired, &docid, err, errlen);
        }
    }
    mdb_cursor_close(cur);
    if (ret)
        return ret;
    if (rc != MDB_NOTFOUND)
        return store__write_fail(st, err, errlen, "mdb_cursor_get(products)", rc);
    if ((rc = search__gen_bump(st, txn, NULL, 0, err, errlen)) != 0)   /* also when no product was indexed */
        return rc;
    return marker_put(st, txn, err, errlen);
}

static int open_body(store_t *st, MDB_txn *txn, void *ctx, char *err, size_t errlen)
{
    int disabled = *(const int *)ctx;
    MDB_val k = { strlen(MARKER_KEY), (void *)MARKER_KEY }, v;
    int rc = mdb_get(txn, st->meta, &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store__write_fail(st, err, errlen, "mdb_get(meta, search)", rc);
    int current = rc == 0 && v.mv_size == 4 && be32_get(v.mv_data) == SEARCH_VERSION;
    if (disabled) {
        if (rc == 0 && (rc = mdb_del(txn, st->meta, &k, NULL)) != 0)
            return store__write_fail(st, err, errlen, "mdb_del(meta, search)", rc);
        return 0;
    }
    return current ? 0 : rebuild(st, txn, err, errlen);
}

int store__search_open(store_t *st, int disabled, char *err, size_t errlen)
{
    st->search_off = 0;
    int rc = store__write(st, open_body, &disabled, err, errlen);
    st->search_off = disabled;
    return rc;
}


/* ================================================================ compliance facet */

typedef struct {
    const char *const *ids, *const *states;
    size_t n;
} comp_ctx_t;

const char *const search__compliance[2] = { "compliant", "non_compliant" };

/* Sets each known product's compliance postings; the new generation names the docids. */
static int set_compliance_body(store_t *st, MDB_txn *txn, void *ctx, char *err, size_t errlen)
{
    comp_ctx_t *c = ctx;
    uint32_t *docids = malloc(c->n * sizeof *docids);
    size_t nd = 0;
    int rc = 0;
    if (!docids) {
        store__err(err, errlen, "search: out of memory setting compliance of %zu products", c->n);
        return -1;
    }
    for (size_t i = 0; i < c->n && rc == 0; i++) {
        uint32_t docid;
        rc = search__docid_of(st, txn, c->ids[i], strlen(c->ids[i]), &docid, err, errlen);
        if (rc == STORE_NOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc)
            break;
        for (size_t j = 0; j < 2 && rc == 0; j++) {
            int keep = strcmp(search__compliance[j], c->states[i]) == 0;
            rc = facet_op(st, txn, keep ? search__post_add : search__post_del, 'c', search__compliance[j],
                          strlen(search__compliance[j]), docid, err, errlen);
        }
        docids[nd++] = docid;
    }
    if (rc == 0)
        rc = search__gen_bump(st, txn, docids, nd, err, errlen);
    free(docids);
    return rc;
}

int store_search_set_compliance(store_t *st, const char *const *ids, const char *const *states, size_t n,
                                char *err, size_t errlen)
{
    if (!st || (n && (!ids || !states))) {
        store__err(err, errlen, "store_search_set_compliance: NULL argument");
        return -1;
    }
    if (n == 0)
        return 0;
    comp_ctx_t c = { ids, states, n };
    return store__write(st, set_compliance_body, &c, err, errlen) ? -1 : 0;
}
