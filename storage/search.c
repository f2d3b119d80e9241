/* storage/search.c - the catalog search index: words and facets of every product's latest
 * manifest, kept in LMDB and updated in the catalog append transaction; ranked queries.
 *
 * Owns: the tokenizer (lowercase, split on punctuation, snake_case, kebab-case, dots and
 * camelCase), the databases search_terms (word -> docid|fields), search_facets
 * (kind+value -> docid), search_docs (docid -> what was indexed) and search_ids (product id ->
 * docid), their update on publish/retire, the rebuild of an index missing from an older
 * store, and store_search (scoring, filters, facet counts, ranked paging).
 * Must not: decide what an entry does to the products index (catalog.c does), hold a read
 * transaction beyond one query, or scan every manifest per query.
 *
 * Layout. Each product gets a docid (u32, 1, 2, 3... in arrival order; never reused: products
 * are never removed). Postings are DUPSORT|DUPFIXED lists sorted by big-endian docid, read a
 * page at a time (MDB_GET_MULTIPLE):
 *   search_terms   word                 -> docid(4) | field mask(1)
 *                  "=" lowercase name   -> docid(4) | F_EXACT          (exact-name lookup)
 *   search_facets  'a'                  -> docid(4)   every product
 *                  'd' domain, 't' tag, 'o' owner, 's' status (lowercase) -> docid(4)
 *   search_docs    docid                -> record: id, status, tags, owners, words+masks
 *                                          (what to remove when the product changes)
 *   search_ids     product id           -> docid
 * A query allocates one small slot per docid (8 bytes: 0.8 MB at 100k products) and a hit
 * bitmap, walks the postings of its words and filters, and ranks. Facet counts, and the id
 * order of tied hits, come from the hits' records when the hits are few, else from one sweep
 * of the facet postings / of search_ids, whichever the estimate says is cheaper. */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "storage/internal.h"

#define SEARCH_VERSION   1u
#define MARKER_KEY       "store.search"
#define TOKEN_MAX        64          /* longer words are cut to this many bytes */
#define DOC_TERMS_MAX    4096        /* distinct words indexed per product */
#define PREFIX_TERMS_MAX 32          /* words the last query word may extend to (prefix match) */
#define PREFIX_MIN       3           /* a last query word this long also matches as a prefix */
#define REC_VERSION      1

/* Field bits of a posting, and what a query word scores for the best field it hits. */
enum { F_NAME = 1, F_TAG = 2, F_TITLE = 4, F_OWNER = 8, F_SCHEMA = 16, F_DOMAIN = 32, F_DESC = 64,
       F_EXACT = 128 };
static const struct { unsigned bit, weight; } field_weight[] = {
    { F_NAME, 40 }, { F_TAG, 30 }, { F_TITLE, 20 }, { F_OWNER, 15 }, { F_SCHEMA, 10 },
    { F_DOMAIN, 8 }, { F_DESC, 5 },
};
#define WORD_HIT     100             /* per query word matched: more words beat better fields */
#define EXACT_BONUS  10000           /* the query is the product's id or name */

#define POST_LEN  5                  /* docid BE u32 | mask */
#define FACET_LEN 4                  /* docid BE u32 */

static const char *const stopwords[] = {
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it", "of",
    "on", "or", "that", "the", "this", "to", "with",
};

static const char facet_kind[STORE_FACETS] = { 'd', 't', 'o', 's' };

/* ================================================================ tokenizer */

static int is_word(unsigned char c) { return isalnum(c) || c >= 0x80; }
static int is_up(unsigned char c) { return c >= 'A' && c <= 'Z'; }
static int is_low(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

/* A camelCase boundary before s[i] (i > start of the word): "amountMinor", "HTTPServer". */
static int camel_break(const unsigned char *s, size_t i, size_t n)
{
    if (!is_up(s[i]))
        return 0;
    if (is_low(s[i - 1]))
        return 1;
    return is_up(s[i - 1]) && i + 1 < n && s[i + 1] >= 'a' && s[i + 1] <= 'z';
}

static int stopword(const char *w, size_t len)
{
    for (size_t i = 0; i < sizeof stopwords / sizeof *stopwords; i++)
        if (strlen(stopwords[i]) == len && memcmp(stopwords[i], w, len) == 0)
            return 1;
    return 0;
}

typedef int (*tok_fn)(void *ctx, const char *tok, size_t len);

/* Calls fn for each word of s[0..n) (lowercased, cut to TOKEN_MAX, stopwords skipped) until
 * fn returns non-zero, which is returned. */
static int tokenize(const char *text, size_t n, tok_fn fn, void *ctx)
{
    const unsigned char *s = (const unsigned char *)text;
    char buf[TOKEN_MAX];
    size_t i = 0;
    while (i < n) {
        while (i < n && !is_word(s[i]))
            i++;
        size_t start = i, len = 0;
        while (i < n && is_word(s[i]) && (i == start || !camel_break(s, i, n))) {
            if (len < TOKEN_MAX)
                buf[len++] = (char)tolower(s[i]);
            i++;
        }
        if (len && !stopword(buf, len)) {
            int rc = fn(ctx, buf, len);
            if (rc)
                return rc;
        }
    }
    return 0;
}

typedef struct { char *out; size_t cap, used; int count, full; } tok_out_t;

static int tok_collect(void *ctx, const char *tok, size_t len)
{
    tok_out_t *t = ctx;
    size_t need = len + (t->count ? 1 : 0);
    if (t->used + need + 1 > t->cap) {
        t->full = 1;
        return 1;
    }
    if (t->count)
        t->out[t->used++] = ' ';
    memcpy(t->out + t->used, tok, len);
    t->used += len;
    t->out[t->used] = '\0';
    t->count++;
    return 0;
}

int store_search_tokens(const char *text, char *out, size_t cap)
{
    if (!text || !out || cap == 0) {
        store__err(NULL, 0, "store_search_tokens: NULL argument");
        return -1;
    }
    out[0] = '\0';
    tok_out_t t = { out, cap, 0, 0, 0 };
    tokenize(text, strlen(text), tok_collect, &t);
    if (t.full) {
        store__err(NULL, 0, "store_search_tokens: words of '%.40s' exceed %zu bytes", text, cap);
        return -1;
    }
    return t.count;
}

/* ================================================================ bytes */

static void be32_put(uint8_t *out, uint32_t v)
{
    out[0] = (uint8_t)(v >> 24), out[1] = (uint8_t)(v >> 16), out[2] = (uint8_t)(v >> 8), out[3] = (uint8_t)v;
}

static uint32_t be32_get(const uint8_t *in)
{
    return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
}

/* A growable byte buffer; failed set once an allocation fails. */
typedef struct { uint8_t *b; size_t len, cap; int failed; } buf_t;

static void buf_add(buf_t *b, const void *p, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *nb = realloc(b->b, cap);
        if (!nb) {
            b->failed = 1;
            return;
        }
        b->b = nb;
        b->cap = cap;
    }
    memcpy(b->b + b->len, p, n);
    b->len += n;
}

static void buf_u8(buf_t *b, unsigned v) { uint8_t x = (uint8_t)v; buf_add(b, &x, 1); }

/* A length-prefixed string (u8 length; callers cut to 255). */
static void buf_str(buf_t *b, const char *s, size_t n)
{
    assert(n <= 255);
    buf_u8(b, (unsigned)n);
    buf_add(b, s, n);
}

/* ================================================================ documents */

/* w: '=' + name allowed; first: arrival order of the word's first occurrence (the fields are
 * added most important first, so the per-product cap keeps the earliest words). */
typedef struct { char w[TOKEN_MAX + 1]; uint8_t len, mask; uint16_t first; } term_t;

/* What one product contributes to the index, built from its manifest (or decoded back from
 * its search_docs record). Strings point into the manifest or the record copy. */
typedef struct {
    const char *id;
    size_t idlen;
    char status[STORE_FACET_VALUE_MAX + 1];
    size_t ntags, nowners, nterms, cap_terms;
    char (*tags)[STORE_FACET_VALUE_MAX + 1];
    char owners[2][STORE_FACET_VALUE_MAX + 1];
    term_t *terms;
    int oom;
} doc_t;

static void doc_free(doc_t *d)
{
    free(d->tags);
    free(d->terms);
    d->tags = NULL;
    d->terms = NULL;
}

/* Lowercase copy, cut to STORE_FACET_VALUE_MAX bytes (at a UTF-8 character boundary: facet
 * values are returned to clients as JSON); returns the length. */
static size_t lower_copy(char *out, const char *s, size_t n)
{
    if (n > STORE_FACET_VALUE_MAX) {
        n = STORE_FACET_VALUE_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;   /* s[n] continues the character s[n-1] began: drop that character */
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[n] = '\0';
    return n;
}

static void doc_term(doc_t *d, const char *w, size_t len, unsigned mask)
{
    if (d->nterms == d->cap_terms) {
        if (d->cap_terms >= DOC_TERMS_MAX * 4)
            return;   /* runaway input: the first words are indexed */
        size_t cap = d->cap_terms ? d->cap_terms * 2 : 64;
        term_t *t = realloc(d->terms, cap * sizeof *t);
        if (!t) {
            d->oom = 1;
            return;
        }
        d->terms = t;
        d->cap_terms = cap;
    }
    term_t *t = &d->terms[d->nterms++];
    if (len > TOKEN_MAX)
        len = TOKEN_MAX;
    memcpy(t->w, w, len);
    t->w[len] = '\0';
    t->len = (uint8_t)len;
    t->mask = (uint8_t)mask;
    t->first = (uint16_t)(d->nterms - 1);
}

typedef struct { doc_t *d; unsigned mask; } field_ctx_t;

static int field_word(void *ctx, const char *tok, size_t len)
{
    field_ctx_t *f = ctx;
    doc_term(f->d, tok, len, f->mask);
    return 0;
}

static void doc_field(doc_t *d, const char *text, unsigned mask)
{
    if (!text)
        return;
    field_ctx_t f = { d, mask };
    tokenize(text, strlen(text), field_word, &f);
}

/* By word, then by arrival: the first of a run of equal words is the earliest. */
static int cmp_term(const void *a, const void *b)
{
    const term_t *x = a, *y = b;
    int c = strcmp(x->w, y->w);
    return c ? c : (int)x->first - (int)y->first;
}

static int cmp_term_first(const void *a, const void *b)
{
    const term_t *x = a, *y = b;
    return (int)x->first - (int)y->first;
}

/* Sorts the words and merges duplicates (OR of their fields). Beyond DOC_TERMS_MAX distinct
 * words, keeps the DOC_TERMS_MAX that came first (not the first in word order, which would
 * let a long description push the name's words out). */
static void doc_merge_terms(doc_t *d)
{
    if (d->nterms == 0)
        return;
    qsort(d->terms, d->nterms, sizeof *d->terms, cmp_term);
    size_t o = 0;
    for (size_t i = 1; i < d->nterms; i++) {
        if (strcmp(d->terms[i].w, d->terms[o].w) == 0)
            d->terms[o].mask |= d->terms[i].mask;
        else
            d->terms[++o] = d->terms[i];
    }
    d->nterms = o + 1;
    if (d->nterms > DOC_TERMS_MAX) {
        qsort(d->terms, d->nterms, sizeof *d->terms, cmp_term_first);
        d->nterms = DOC_TERMS_MAX;
        qsort(d->terms, d->nterms, sizeof *d->terms, cmp_term);
    }
}

/* Appends s as a facet value (lowercased, cut) to list[0..*n) unless empty or already there. */
static void add_value(char (*list)[STORE_FACET_VALUE_MAX + 1], size_t *n, const char *s)
{
    if (!s || !*s)
        return;
    char v[STORE_FACET_VALUE_MAX + 1];
    lower_copy(v, s, strlen(s));
    for (size_t i = 0; i < *n; i++)
        if (strcmp(list[i], v) == 0)
            return;
    strcpy(list[(*n)++], v);
}

/* The document of id from manifest m (retired overrides its status). */
static int doc_from_manifest(doc_t *d, const char *id, const Trib__Manifest *m, int retired)
{
    memset(d, 0, sizeof *d);
    d->id = id;
    d->idlen = strlen(id);
    const char *status = retired ? "retired" : (m->status ? m->status : "");
    lower_copy(d->status, status, strlen(status));
    size_t ntags = m->n_tags > 255 ? 255 : m->n_tags;
    if (ntags && !(d->tags = calloc(ntags, sizeof *d->tags)))
        return -1;
    for (size_t i = 0; i < ntags; i++)
        add_value(d->tags, &d->ntags, m->tags[i]);
    add_value(d->owners, &d->nowners, m->owner_business);
    add_value(d->owners, &d->nowners, m->owner_technical);

    const char *slash = strchr(id, '/');
    assert(slash);
    char exact[TOKEN_MAX + 1];
    size_t nlen = strlen(slash + 1);
    exact[0] = '=';
    if (nlen + 1 <= TOKEN_MAX) {      /* names are at most 63 bytes: always */
        memcpy(exact + 1, slash + 1, nlen);
        doc_term(d, exact, nlen + 1, F_EXACT);
    }
    /* Most important fields first: past the cap, description words are the ones dropped. */
    doc_field(d, slash + 1, F_NAME);
    char dom[STORE_NAME_MAX + 1];
    size_t dl = (size_t)(slash - id);
    memcpy(dom, id, dl);
    dom[dl] = '\0';
    doc_field(d, dom, F_DOMAIN);
    for (size_t i = 0; i < m->n_tags; i++)
        doc_field(d, m->tags[i], F_TAG);
    doc_field(d, m->owner_business, F_OWNER);
    doc_field(d, m->owner_technical, F_OWNER);
    doc_field(d, m->title, F_TITLE);
    for (size_t i = 0; i < m->n_schema; i++)
        if (m->schema[i])
            doc_field(d, m->schema[i]->name, F_SCHEMA);
    doc_field(d, m->purpose, F_DESC);
    doc_field(d, m->usage, F_DESC);
    doc_field(d, m->limitations, F_DESC);
    for (size_t i = 0; i < m->n_schema; i++)
        if (m->schema[i])
            doc_field(d, m->schema[i]->description, F_DESC);
    if (d->oom)
        return -1;
    doc_merge_terms(d);
    return 0;
}

static int doc_encode(const doc_t *d, buf_t *b)
{
    buf_u8(b, REC_VERSION);
    buf_str(b, d->id, d->idlen);
    buf_str(b, d->status, strlen(d->status));
    buf_u8(b, (unsigned)d->ntags);
    for (size_t i = 0; i < d->ntags; i++)
        buf_str(b, d->tags[i], strlen(d->tags[i]));
    buf_u8(b, (unsigned)d->nowners);
    for (size_t i = 0; i < d->nowners; i++)
        buf_str(b, d->owners[i], strlen(d->owners[i]));
    uint8_t n2[2] = { (uint8_t)(d->nterms >> 8), (uint8_t)d->nterms };
    buf_add(b, n2, 2);
    for (size_t i = 0; i < d->nterms; i++) {
        buf_str(b, d->terms[i].w, d->terms[i].len);
        buf_u8(b, d->terms[i].mask);
    }
    return b->failed ? -1 : 0;
}

/* A bounds-checked reader over a search_docs record. */
typedef struct { const uint8_t *p, *end; int bad; } rd_t;

static unsigned rd_u8(rd_t *r)
{
    if (r->bad || r->p >= r->end) {
        r->bad = 1;
        return 0;
    }
    return *r->p++;
}

/* A string: *s points into the record, returns its length. */
static size_t rd_str(rd_t *r, const char **s)
{
    size_t n = rd_u8(r);
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        *s = "";
        return 0;
    }
    *s = (const char *)r->p;
    r->p += n;
    return n;
}

/* Decoded view of a record: the facet part always; the words from `terms` on demand. */
typedef struct {
    const char *id, *status;
    size_t idlen, slen, ntags, nowners, nterms;
    const char *tag[256];
    size_t taglen[256];
    const char *owner[2];
    size_t ownerlen[2];
    rd_t terms;                      /* positioned at the first word */
} rec_t;

static int rec_decode(const void *data, size_t len, rec_t *r)
{
    rd_t rd = { data, (const uint8_t *)data + len, 0 };
    if (rd_u8(&rd) != REC_VERSION)
        return -1;
    r->idlen = rd_str(&rd, &r->id);
    r->slen = rd_str(&rd, &r->status);
    r->ntags = rd_u8(&rd);
    for (size_t i = 0; i < r->ntags; i++)
        r->taglen[i] = rd_str(&rd, &r->tag[i]);
    r->nowners = rd_u8(&rd);
    if (r->nowners > 2)
        return -1;
    for (size_t i = 0; i < r->nowners; i++)
        r->ownerlen[i] = rd_str(&rd, &r->owner[i]);
    unsigned hi = rd_u8(&rd), lo = rd_u8(&rd);
    r->nterms = hi << 8 | lo;
    r->terms = rd;
    return rd.bad || r->idlen == 0 || r->idlen >= STORE_ID_MAX ? -1 : 0;
}

/* ================================================================ index writes */

static int put_posting(store_t *st, MDB_txn *txn, MDB_dbi dbi, const char *key, size_t klen,
                       const uint8_t *val, size_t vlen, char *err, size_t errlen)
{
    MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };
    int rc = mdb_put(txn, dbi, &k, &v, MDB_NODUPDATA);
    if (rc == MDB_KEYEXIST)
        return 0;
    return rc ? store__write_fail(st, err, errlen, "mdb_put(search)", rc) : 0;
}

static int del_posting(store_t *st, MDB_txn *txn, MDB_dbi dbi, const char *key, size_t klen,
                       const uint8_t *val, size_t vlen, char *err, size_t errlen)
{
    MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };
    int rc = mdb_del(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    return rc ? store__write_fail(st, err, errlen, "mdb_del(search)", rc) : 0;
}

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

/* Adds (op = put_posting) or removes (del_posting) every posting of a document given as a
 * decoded record. */
static int rec_postings(store_t *st, MDB_txn *txn, posting_op op, rec_t *r, uint32_t docid,
                        char *err, size_t errlen)
{
    int rc;
    const char *slash = memchr(r->id, '/', r->idlen);
    size_t dlen = slash ? (size_t)(slash - r->id) : r->idlen;
    if ((rc = facet_op(st, txn, op, 'a', "", 0, docid, err, errlen)) != 0 ||
        (rc = facet_op(st, txn, op, 'd', r->id, dlen, docid, err, errlen)) != 0 ||
        (rc = facet_op(st, txn, op, 's', r->status, r->slen, docid, err, errlen)) != 0)
        return rc;
    for (size_t i = 0; i < r->ntags; i++)
        if ((rc = facet_op(st, txn, op, 't', r->tag[i], r->taglen[i], docid, err, errlen)) != 0)
            return rc;
    for (size_t i = 0; i < r->nowners; i++)
        if ((rc = facet_op(st, txn, op, 'o', r->owner[i], r->ownerlen[i], docid, err, errlen)) != 0)
            return rc;
    rd_t rd = r->terms;
    for (size_t i = 0; i < r->nterms; i++) {
        const char *w;
        size_t n = rd_str(&rd, &w);
        unsigned mask = rd_u8(&rd);
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
static int doc_get(store_t *st, MDB_txn *txn, uint32_t docid, MDB_val *v, rec_t *r,
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
    if (rec_decode(v->mv_data, v->mv_size, r) != 0) {
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
    int rc = doc_get(st, txn, docid, &v, r, err, errlen);
    if (rc)
        return rc;
    if (!(*copy = malloc(v.mv_size))) {   /* decoded: at least a version byte */
        store__err(err, errlen, "search: out of memory");
        return -1;
    }
    memcpy(*copy, v.mv_data, v.mv_size);
    rc = rec_decode(*copy, v.mv_size, r);
    assert(rc == 0);
    return 0;
}

/* The docid of id: 0 with *docid set, STORE_NOTFOUND, or -1. */
static int docid_of(store_t *st, MDB_txn *txn, const char *id, size_t idlen, uint32_t *docid,
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
static int docid_end(store_t *st, MDB_txn *txn, uint32_t *end, char *err, size_t errlen)
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
    rc = rec_postings(st, txn, del_posting, &r, docid, err, errlen);
    free(copy);
    return rc;
}

/* Writes d's record and postings under docid. */
static int index_doc(store_t *st, MDB_txn *txn, const doc_t *d, uint32_t docid, char *err, size_t errlen)
{
    buf_t b = { 0 };
    if (doc_encode(d, &b) != 0) {
        free(b.b);
        store__err(err, errlen, "search: out of memory encoding %s", d->id);
        return -1;
    }
    rec_t r;
    int rc = rec_decode(b.b, b.len, &r);
    assert(rc == 0);
    rc = doc_put(st, txn, docid, &b, err, errlen);
    if (rc == 0)
        rc = rec_postings(st, txn, put_posting, &r, docid, err, errlen);
    free(b.b);
    return rc;
}

int store__search_put(store_t *st, MDB_txn *txn, const char *id, const Trib__Manifest *m,
                      int retired, char *err, size_t errlen)
{
    if (st->search_off)
        return 0;
    size_t idlen = strlen(id);
    uint32_t docid;
    int rc = docid_of(st, txn, id, idlen, &docid, err, errlen);
    if (rc == -1)
        return -1;
    if (rc == STORE_NOTFOUND) {
        if (docid_end(st, txn, &docid, err, errlen) != 0)
            return -1;
        uint8_t vb[4];
        be32_put(vb, docid);
        MDB_val k = { idlen, (void *)id }, v = { 4, vb };
        if ((rc = mdb_put(txn, st->s_ids, &k, &v, 0)) != 0)
            return store__write_fail(st, err, errlen, "mdb_put(search_ids)", rc);
    } else if ((rc = unindex(st, txn, docid, err, errlen)) != 0) {
        return rc;
    }
    doc_t d;
    if (doc_from_manifest(&d, id, m, retired) != 0) {
        doc_free(&d);
        store__err(err, errlen, "search: out of memory indexing %s", id);
        return -1;
    }
    rc = index_doc(st, txn, &d, docid, err, errlen);
    doc_free(&d);
    return rc;
}

int store__search_retire(store_t *st, MDB_txn *txn, const char *id, char *err, size_t errlen)
{
    if (st->search_off)
        return 0;
    uint32_t docid;
    int rc = docid_of(st, txn, id, strlen(id), &docid, err, errlen);
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
    if ((rc = facet_op(st, txn, del_posting, 's', r.status, r.slen, docid, err, errlen)) != 0 ||
        (rc = facet_op(st, txn, put_posting, 's', retired, sizeof retired - 1, docid, err, errlen)) != 0) {
        free(copy);
        return rc;
    }
    buf_t b = { 0 };
    const uint8_t *after_status = (const uint8_t *)r.status + r.slen;
    size_t head = (size_t)((const uint8_t *)r.status - copy) - 1;   /* version, id (before status len) */
    size_t total = (size_t)(r.terms.end - copy);
    buf_add(&b, copy, head);
    buf_str(&b, retired, sizeof retired - 1);
    buf_add(&b, after_status, total - (size_t)(after_status - copy));
    free(copy);
    if (b.failed) {
        free(b.b);
        store__err(err, errlen, "search: out of memory retiring %s", id);
        return -1;
    }
    rc = doc_put(st, txn, docid, &b, err, errlen);
    free(b.b);
    return rc;
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

/* Empties the search databases and indexes every product from its latest manifest. */
static int rebuild(store_t *st, MDB_txn *txn, char *err, size_t errlen)
{
    MDB_dbi dbs[] = { st->s_terms, st->s_facets, st->s_docs, st->s_ids };
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
        if (ce) {
            ret = store__search_put(st, txn, id, ce->manifest, p.retired, err, errlen);
            trib__catalog_entry__free_unpacked(ce, NULL);
        } else {
            /* Undecodable entry: index what the id says, so the product is still found. */
            Trib__Manifest m = TRIB__MANIFEST__INIT;
            ret = store__search_put(st, txn, id, &m, p.retired, err, errlen);
        }
    }
    mdb_cursor_close(cur);
    if (ret)
        return ret;
    if (rc != MDB_NOTFOUND)
        return store__write_fail(st, err, errlen, "mdb_cursor_get(products)", rc);
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
    st->search_off = 0;   /* rebuild writes through store__search_put */
    int rc = store__write(st, open_body, &disabled, err, errlen);
    st->search_off = disabled;
    return rc;
}

/* ================================================================ queries */

typedef struct {
    uint16_t score, wbest;
    uint8_t words, filt, wstamp, pad;
} slot_t;

typedef struct {
    store_t *st;
    MDB_txn *txn;
    MDB_cursor *terms, *facets;
    slot_t *slot;
    uint64_t *hit;                   /* bitmap of the hits: small, so sweeps stay in cache */
    uint32_t n;                      /* docids are < n */
    uint32_t *touched;
    size_t ntouched, cap_touched;
    int oom;
} q_t;

static int is_hit(const q_t *q, uint32_t d) { return d < q->n && (q->hit[d >> 6] >> (d & 63) & 1); }

/* Per-operation cost estimates (ns) for choosing between a lookup per hit and a sweep. */
#define COST_LOOKUP 700     /* mdb_get of a record and decoding it */
#define COST_POSTING 3      /* one posting of a sweep */
#define COST_WALK 60        /* one search_ids entry of a walk */

static unsigned weight_of(unsigned mask)
{
    unsigned best = 0, fields = 0;
    for (size_t i = 0; i < sizeof field_weight / sizeof *field_weight; i++)
        if (mask & field_weight[i].bit) {
            fields++;
            if (field_weight[i].weight > best)
                best = field_weight[i].weight;
        }
    return fields ? best + fields - 1 : 0;
}

/* Calls fn(ctx, values, count) for each page of the duplicates of key, values vlen bytes each.
 * Returns 0 (also when key is absent) or an LMDB code. */
typedef void (*page_fn)(q_t *q, const uint8_t *vals, size_t count, void *ctx);

static int each_page(q_t *q, MDB_cursor *cur, const void *key, size_t klen, size_t vlen,
                     page_fn fn, void *ctx)
{
    MDB_val k = { klen, (void *)key }, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET);
    if (rc)
        return rc == MDB_NOTFOUND ? 0 : rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_GET_MULTIPLE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_MULTIPLE)) {
        if (v.mv_size % vlen)
            return MDB_CORRUPTED;
        fn(q, v.mv_data, v.mv_size / vlen, ctx);
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static void page_filter(q_t *q, const uint8_t *vals, size_t count, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < count; i++) {
        uint32_t d = be32_get(vals + i * FACET_LEN);
        if (d < q->n)
            q->slot[d].filt++;
    }
}

typedef struct { uint8_t stamp; unsigned div; } word_ctx_t;

static void page_word(q_t *q, const uint8_t *vals, size_t count, void *vctx)
{
    word_ctx_t *w = vctx;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *p = vals + i * POST_LEN;
        uint32_t d = be32_get(p);
        if (d >= q->n)
            continue;
        unsigned wt = weight_of(p[4]) / w->div;
        slot_t *s = &q->slot[d];
        if (s->wstamp != w->stamp) {
            if (q->ntouched == q->cap_touched) {
                size_t cap = q->cap_touched ? q->cap_touched * 2 : 1024;
                uint32_t *t = realloc(q->touched, cap * sizeof *t);
                if (!t) {
                    q->oom = 1;
                    return;
                }
                q->touched = t;
                q->cap_touched = cap;
            }
            q->touched[q->ntouched++] = d;
            s->wstamp = w->stamp;
            s->wbest = (uint16_t)wt;
        } else if (wt > s->wbest) {
            s->wbest = (uint16_t)wt;
        }
    }
}

/* Scores one query word: its exact postings, and with prefix those of up to PREFIX_TERMS_MAX
 * longer words it begins (at half weight). Each matched doc gains WORD_HIT plus its best field
 * weight. 0, or -1 with err set. */
static int score_word(q_t *q, const char *w, size_t len, uint8_t stamp, int prefix,
                      char *err, size_t errlen)
{
    word_ctx_t wc = { stamp, 1 };
    q->ntouched = 0;
    int rc = each_page(q, q->terms, w, len, POST_LEN, page_word, &wc);
    if (rc == 0 && prefix && len >= PREFIX_MIN) {
        wc.div = 2;
        MDB_val k = { len, (void *)w }, v;
        int n = 0;
        for (rc = mdb_cursor_get(q->terms, &k, &v, MDB_SET_RANGE); rc == 0 && n < PREFIX_TERMS_MAX;
             rc = mdb_cursor_get(q->terms, &k, &v, MDB_NEXT_NODUP)) {
            if (k.mv_size < len || memcmp(k.mv_data, w, len) != 0)
                break;
            if (k.mv_size == len)
                continue;
            char key[TOKEN_MAX + 1];
            size_t kl = k.mv_size > TOKEN_MAX ? TOKEN_MAX : k.mv_size;
            memcpy(key, k.mv_data, kl);
            if ((rc = each_page(q, q->terms, key, kl, POST_LEN, page_word, &wc)) != 0)
                break;
            n++;
            /* each_page left the cursor on key's last duplicate: NEXT_NODUP moves on. */
        }
        if (rc == MDB_NOTFOUND || n == PREFIX_TERMS_MAX)
            rc = 0;
    }
    if (q->oom) {
        store__err(err, errlen, "search: out of memory scoring the query");
        return -1;
    }
    if (rc) {
        store__mdb_err(q->st, err, errlen, "search: reading search_terms", rc);
        return -1;
    }
    for (size_t i = 0; i < q->ntouched; i++) {
        slot_t *s = &q->slot[q->touched[i]];
        s->score = (uint16_t)(s->score + WORD_HIT + s->wbest);
        s->words++;
    }
    return 0;
}

static void page_exact(q_t *q, const uint8_t *vals, size_t count, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < count; i++) {
        uint32_t d = be32_get(vals + i * POST_LEN);
        if (d < q->n && q->slot[d].score < EXACT_BONUS) {
            q->slot[d].score = (uint16_t)(q->slot[d].score + EXACT_BONUS);
            q->slot[d].words = q->slot[d].words ? q->slot[d].words : 1;
        }
    }
}

/* Exact id or name: qn is the trimmed, lowercased query; joined its words with '-'.
 * 0, or -1 with err set. */
static int score_exact(q_t *q, const char *qn, const char *joined, char *err, size_t errlen)
{
    if (strchr(qn, '/')) {
        uint32_t d;
        int rc = docid_of(q->st, q->txn, qn, strlen(qn), &d, err, errlen);
        if (rc == 0) {
            uint8_t v[POST_LEN];
            be32_put(v, d);
            page_exact(q, v, 1, NULL);
        }
        return rc == -1 ? -1 : 0;
    }
    const char *forms[2] = { qn, joined };
    for (int i = 0; i < 2; i++) {
        if (i == 1 && strcmp(joined, qn) == 0)
            break;
        char key[TOKEN_MAX + 1];
        size_t n = strlen(forms[i]);
        if (n == 0 || n + 1 > TOKEN_MAX)
            continue;
        key[0] = '=';
        memcpy(key + 1, forms[i], n);
        int rc = each_page(q, q->terms, key, n + 1, POST_LEN, page_exact, NULL);
        if (rc) {
            store__mdb_err(q->st, err, errlen, "search: reading search_terms", rc);
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- facet counts */

typedef struct {
    int facet;
    const char *v;                   /* points into the txn's pages (or a key) */
    size_t len, count;
} fcount_t;

typedef struct { fcount_t *e; size_t n, cap, used; int oom; } ftable_t;

static uint64_t fhash(int facet, const char *v, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)facet;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)v[i]) * 1099511628211ull;
    return h;
}

static void ftable_add(ftable_t *t, int facet, const char *v, size_t n, size_t count)
{
    if (t->oom)
        return;
    if ((t->used + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        fcount_t *e = calloc(cap, sizeof *e);
        if (!e) {
            t->oom = 1;
            return;
        }
        for (size_t i = 0; i < t->cap; i++)
            if (t->e[i].v) {
                size_t j = fhash(t->e[i].facet, t->e[i].v, t->e[i].len) & (cap - 1);
                while (e[j].v)
                    j = (j + 1) & (cap - 1);
                e[j] = t->e[i];
            }
        free(t->e);
        t->e = e;
        t->cap = cap;
    }
    size_t j = fhash(facet, v, n) & (t->cap - 1);
    for (; t->e[j].v; j = (j + 1) & (t->cap - 1))
        if (t->e[j].facet == facet && t->e[j].len == n && memcmp(t->e[j].v, v, n) == 0) {
            t->e[j].count += count;
            return;
        }
    t->e[j] = (fcount_t){ facet, v, n, count };
    t->used++;
}

/* The record of a hit, decoded into r (pointing into the read transaction's pages): 0, or -1
 * with err set (a hit's record is missing only in a damaged index). */
static int hit_rec(q_t *q, uint32_t doc, rec_t *r, char *err, size_t errlen)
{
    MDB_val v;
    int rc = doc_get(q->st, q->txn, doc, &v, r, err, errlen);
    if (rc == STORE_NOTFOUND)
        store__err(err, errlen, "search_docs: no record for doc %u (%s)", doc, q->st->path);
    return rc ? -1 : 0;
}

/* Facet counts from the records of the hits (few hits). */
static int facets_from_records(q_t *q, const uint32_t *hits, size_t n, ftable_t *t, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        rec_t r;
        if (hit_rec(q, hits[i], &r, err, errlen) != 0)
            return -1;
        const char *slash = memchr(r.id, '/', r.idlen);
        ftable_add(t, STORE_FACET_DOMAIN, r.id, slash ? (size_t)(slash - r.id) : r.idlen, 1);
        ftable_add(t, STORE_FACET_STATUS, r.status, r.slen, 1);
        for (size_t j = 0; j < r.ntags; j++)
            ftable_add(t, STORE_FACET_TAG, r.tag[j], r.taglen[j], 1);
        for (size_t j = 0; j < r.nowners; j++)
            ftable_add(t, STORE_FACET_OWNER, r.owner[j], r.ownerlen[j], 1);
    }
    return t->oom ? -1 : 0;
}

static void page_count(q_t *q, const uint8_t *vals, size_t count, void *ctx)
{
    size_t *c = ctx;
    for (size_t i = 0; i < count; i++) {
        if (is_hit(q, be32_get(vals + i * FACET_LEN)))
            ++*c;
    }
}

/* Facet counts from one sweep of every facet posting (many hits). */
static int facets_from_postings(q_t *q, ftable_t *t, char *err, size_t errlen)
{
    MDB_val k = { 1, "b" }, v;   /* after 'a' (every product) */
    int rc;
    for (rc = mdb_cursor_get(q->facets, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(q->facets, &k, &v, MDB_NEXT_NODUP)) {
        const char *kd = k.mv_data;
        int facet = -1;
        for (int f = 0; f < STORE_FACETS; f++)
            if (k.mv_size >= 1 && kd[0] == facet_kind[f])
                facet = f;
        if (facet < 0)
            continue;
        size_t count = 0;
        /* each_page seeks k's own bytes (valid for the read transaction) and leaves the
         * cursor on its last duplicate: NEXT_NODUP moves on. */
        if ((rc = each_page(q, q->facets, kd, k.mv_size, FACET_LEN, page_count, &count)) != 0)
            break;
        if (count)
            ftable_add(t, facet, kd + 1, k.mv_size - 1, count);
    }
    if (rc != MDB_NOTFOUND) {
        store__mdb_err(q->st, err, errlen, "search: reading search_facets", rc);
        return -1;
    }
    return t->oom ? -1 : 0;
}

static int cmp_fcount(const void *a, const void *b)
{
    const fcount_t *x = a, *y = b;
    if (x->facet != y->facet)
        return x->facet - y->facet;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->v, y->v, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int facets_out(ftable_t *t, size_t max, store_result_t *out, char *err, size_t errlen)
{
    fcount_t *list = malloc((t->used ? t->used : 1) * sizeof *list);
    if (!list)
        goto oom;
    size_t n = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->e[i].v)
            list[n++] = t->e[i];
    qsort(list, n, sizeof *list, cmp_fcount);
    out->facets = calloc(n ? n : 1, sizeof *out->facets);
    if (!out->facets) {
        free(list);
        goto oom;
    }
    size_t per[STORE_FACETS] = { 0 };
    for (size_t i = 0; i < n; i++) {
        if (max && per[list[i].facet] >= max)
            continue;
        per[list[i].facet]++;
        store_facet_t *f = &out->facets[out->nfacets++];
        f->facet = list[i].facet;
        size_t len = list[i].len > STORE_FACET_VALUE_MAX ? STORE_FACET_VALUE_MAX : list[i].len;
        memcpy(f->value, list[i].v, len);
        f->value[len] = '\0';
        f->count = list[i].count;
    }
    free(list);
    return 0;
oom:
    store__err(err, errlen, "search: out of memory for facets");
    return -1;
}

/* ---------------------------------------------------------------- ranking */

typedef struct { uint32_t doc; uint16_t score; char id[STORE_ID_MAX]; } ranked_t;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return strcmp(x->id, y->id);
}

static int id_of(q_t *q, uint32_t doc, char id[STORE_ID_MAX], char *err, size_t errlen)
{
    rec_t r;
    if (hit_rec(q, doc, &r, err, errlen) != 0)
        return -1;
    memcpy(id, r.id, r.idlen);
    id[r.idlen] = '\0';
    return 0;
}

/* Fills out->hits with hits [offset, offset+limit) in (score desc, id asc) order.
 * hits[0..nh) are the hit docids. */
static int rank(q_t *q, const uint32_t *hits, size_t nh, size_t offset, size_t limit,
                store_result_t *out, char *err, size_t errlen)
{
    if (offset >= nh || limit == 0)
        return 0;
    size_t want = nh - offset < limit ? nh - offset : limit;
    size_t k = offset + want;                      /* best k in order are needed */
    /* The k-th best score (cut): every hit above it is in, hits at it are ordered by id. */
    uint32_t *hist = calloc(65536, sizeof *hist);
    if (!hist)
        goto oom;
    for (size_t i = 0; i < nh; i++)
        hist[q->slot[hits[i]].score]++;
    size_t above = 0;
    unsigned cut = 65535;
    for (;; cut--) {
        if (above + hist[cut] >= k)
            break;
        above += hist[cut];
        assert(cut > 0);
    }
    size_t ties = hist[cut];
    free(hist);
    /* Ties in id order: look up every tied hit's id, or walk search_ids (in id order) until
     * enough tied hits passed: about (k - above) * n / ties entries. */
    int lookup = (double)ties * COST_LOOKUP <= (double)(k - above) * q->n / (double)ties * COST_WALK;

    size_t cand = above + (lookup ? ties : k - above);
    ranked_t *r = malloc(cand * sizeof *r);
    if (!r)
        goto oom;
    size_t nr = 0;
    for (size_t i = 0; i < nh; i++) {
        uint16_t s = q->slot[hits[i]].score;
        if (s > cut || (s == cut && lookup)) {
            assert(nr < cand);
            r[nr].doc = hits[i];
            r[nr].score = s;
            if (id_of(q, hits[i], r[nr].id, err, errlen) != 0) {
                free(r);
                return -1;
            }
            nr++;
        }
    }
    if (!lookup) {
        /* Many ties: the first (k - above) of them in id order, by walking the ids. */
        MDB_cursor *cur;
        int rc = mdb_cursor_open(q->txn, q->st->s_ids, &cur);
        if (rc) {
            free(r);
            store__mdb_err(q->st, err, errlen, "mdb_cursor_open(search_ids)", rc);
            return -1;
        }
        MDB_val kk, v;
        for (rc = mdb_cursor_get(cur, &kk, &v, MDB_FIRST); rc == 0 && nr < cand;
             rc = mdb_cursor_get(cur, &kk, &v, MDB_NEXT)) {
            if (v.mv_size != 4 || kk.mv_size >= STORE_ID_MAX)
                continue;
            uint32_t d = be32_get(v.mv_data);
            if (!is_hit(q, d) || q->slot[d].score != cut)
                continue;
            r[nr].doc = d;
            r[nr].score = (uint16_t)cut;
            memcpy(r[nr].id, kk.mv_data, kk.mv_size);
            r[nr].id[kk.mv_size] = '\0';
            nr++;
        }
        mdb_cursor_close(cur);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            free(r);
            store__mdb_err(q->st, err, errlen, "mdb_cursor_get(search_ids)", rc);
            return -1;
        }
    }
    qsort(r, nr, sizeof *r, cmp_ranked);
    size_t end = nr < k ? nr : k;
    if (end > offset) {
        out->hits = calloc(end - offset, sizeof *out->hits);
        if (!out->hits) {
            free(r);
            goto oom;
        }
        for (size_t i = offset; i < end; i++) {
            store_hit_t *h = &out->hits[out->nhits++];
            memcpy(h->id, r[i].id, sizeof h->id);
            h->score = r[i].score;
        }
    }
    free(r);
    return 0;
oom:
    store__err(err, errlen, "search: out of memory ranking %zu hits", nh);
    return -1;
}

/* ---------------------------------------------------------------- store_search */

typedef struct { char w[STORE_SEARCH_WORDS][TOKEN_MAX + 1]; size_t len[STORE_SEARCH_WORDS], n; int over; } words_t;

static int collect_word(void *ctx, const char *tok, size_t len)
{
    words_t *w = ctx;
    for (size_t i = 0; i < w->n; i++)
        if (w->len[i] == len && memcmp(w->w[i], tok, len) == 0)
            return 0;
    if (w->n == STORE_SEARCH_WORDS) {
        w->over = 1;
        return 1;
    }
    memcpy(w->w[w->n], tok, len);
    w->w[w->n][len] = '\0';
    w->len[w->n++] = len;
    return 0;
}

static int empty(const char *s) { return !s || !*s; }

void store_result_free(store_result_t *r)
{
    if (!r)
        return;
    free(r->hits);
    free(r->facets);
    memset(r, 0, sizeof *r);
}

/* Validates q; fills words, the normalized query qn and its words joined with '-'. */
static int parse_query(const store_query_t *sq, words_t *w, char *qn, char *joined, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    qn[0] = joined[0] = '\0';
    static const char *const names[] = { "domain", "tag", "owner", "status" };
    const char *vals[] = { sq->domain, sq->tag, sq->owner, sq->status };
    for (int i = 0; i < 4; i++)
        if (vals[i] && strlen(vals[i]) > STORE_FACET_VALUE_MAX) {
            store__err(err, errlen, "%s: longer than %d bytes", names[i], STORE_FACET_VALUE_MAX);
            return -1;
        }
    if (empty(sq->q))
        return 0;
    size_t n = strlen(sq->q);
    if (n > STORE_SEARCH_QMAX) {
        store__err(err, errlen, "q: longer than %d bytes", STORE_SEARCH_QMAX);
        return -1;
    }
    tokenize(sq->q, n, collect_word, w);
    if (w->over) {
        store__err(err, errlen, "q: more than %d distinct words", STORE_SEARCH_WORDS);
        return -1;
    }
    const char *s = sq->q, *e = sq->q + n;
    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    for (const char *p = s; p < e; p++)
        *qn++ = (char)tolower((unsigned char)*p);
    *qn = '\0';
    for (size_t i = 0; i < w->n; i++) {
        if (i)
            *joined++ = '-';
        memcpy(joined, w->w[i], w->len[i]);
        joined += w->len[i];
    }
    *joined = '\0';
    return 0;
}

int store_search_check(const store_query_t *sq, char *err, size_t errlen)
{
    if (!sq) {
        store__err(err, errlen, "store_search_check: NULL argument");
        return -1;
    }
    words_t w;
    char qn[STORE_SEARCH_QMAX + 1], joined[STORE_SEARCH_WORDS * (TOKEN_MAX + 1) + 1];
    return parse_query(sq, &w, qn, joined, err, errlen);
}

static int search_txn(q_t *q, const store_query_t *sq, const words_t *w, const char *qn,
                      const char *joined, store_result_t *out, char *err, size_t errlen)
{
    int rc;
    if ((rc = mdb_cursor_open(q->txn, q->st->s_terms, &q->terms)) != 0 ||
        (rc = mdb_cursor_open(q->txn, q->st->s_facets, &q->facets)) != 0) {
        store__mdb_err(q->st, err, errlen, "mdb_cursor_open(search)", rc);
        return -1;
    }
    if (docid_end(q->st, q->txn, &q->n, err, errlen) != 0)
        return -1;
    if (!(q->slot = calloc(q->n, sizeof *q->slot)) || !(q->hit = calloc(q->n / 64 + 1, sizeof *q->hit))) {
        store__err(err, errlen, "search: out of memory for %u products", q->n);
        return -1;
    }
    /* Filters: a doc must appear in every one's postings. Without query and filters: all. */
    const char *fv[STORE_FACETS] = { sq->domain, sq->tag, sq->owner, sq->status };
    int nfilt = 0, has_q = !empty(sq->q);
    for (int f = 0; f < STORE_FACETS; f++) {
        if (empty(fv[f]))
            continue;
        char key[1 + STORE_FACET_VALUE_MAX];
        key[0] = facet_kind[f];
        size_t n = lower_copy(key + 1, fv[f], strlen(fv[f]));
        if ((rc = each_page(q, q->facets, key, n + 1, FACET_LEN, page_filter, NULL)) != 0)
            goto mdb_fail;
        nfilt++;
    }
    if (!has_q && nfilt == 0) {
        if ((rc = each_page(q, q->facets, "a", 1, FACET_LEN, page_filter, NULL)) != 0)
            goto mdb_fail;
        nfilt = 1;
    }
    if (has_q) {
        for (size_t i = 0; i < w->n; i++)
            if (score_word(q, w->w[i], w->len[i], (uint8_t)(i + 1), i + 1 == w->n, err, errlen) != 0)
                return -1;
        if (score_exact(q, qn, joined, err, errlen) != 0)
            return -1;
    }
    size_t nh = 0;
    uint32_t *hits = NULL;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t d = 1; d < q->n; d++) {
            slot_t *s = &q->slot[d];
            if ((nfilt && s->filt != nfilt) || (has_q && s->words == 0))
                continue;
            if (pass == 0) {
                q->hit[d >> 6] |= (uint64_t)1 << (d & 63);
                nh++;
            } else {
                hits[nh++] = d;
            }
        }
        if (pass == 0) {
            if (!(hits = malloc((nh ? nh : 1) * sizeof *hits))) {
                store__err(err, errlen, "search: out of memory for %zu hits", nh);
                return -1;
            }
            nh = 0;
        }
    }
    out->total = nh;
    ftable_t t = { 0 };
    int ret = 0;
    MDB_stat fs;
    if (nh > 0 && (rc = mdb_stat(q->txn, q->st->s_facets, &fs)) != 0) {
        store__mdb_err(q->st, err, errlen, "mdb_stat(search_facets)", rc);
        ret = -1;
    } else if (nh > 0) {
        ret = (double)nh * COST_LOOKUP <= (double)fs.ms_entries * COST_POSTING
            ? facets_from_records(q, hits, nh, &t, err, errlen)
            : facets_from_postings(q, &t, err, errlen);
        if (ret == 0)
            ret = facets_out(&t, sq->facet_max, out, err, errlen);
        if (ret == 0)
            ret = rank(q, hits, nh, sq->offset, sq->limit, out, err, errlen);
    }
    free(t.e);
    free(hits);
    if (ret && t.oom)
        store__err(err, errlen, "search: out of memory counting facets");
    return ret;
mdb_fail:
    store__mdb_err(q->st, err, errlen, "search: reading the index", rc);
    return -1;
}

int store_search(store_t *st, const store_query_t *sq, store_result_t *out, char *err, size_t errlen)
{
    if (!st || !sq || !out) {
        store__err(err, errlen, "store_search: NULL argument");
        return -1;
    }
    memset(out, 0, sizeof *out);
    if (st->search_off) {
        store__err(err, errlen, "store_search: the search index is off in this store (%s)", st->path);
        return -1;
    }
    words_t w;
    char qn[STORE_SEARCH_QMAX + 1], joined[STORE_SEARCH_WORDS * (TOKEN_MAX + 1) + 1];
    if (parse_query(sq, &w, qn, joined, err, errlen) != 0)
        return -1;
    q_t q = { .st = st };
    if (store__read_begin(st, &q.txn, err, errlen) != 0)
        return -1;
    int rc = search_txn(&q, sq, &w, qn, joined, out, err, errlen);
    if (q.terms)
        mdb_cursor_close(q.terms);
    if (q.facets)
        mdb_cursor_close(q.facets);
    store__read_end(st, q.txn);
    free(q.slot);
    free(q.hit);
    free(q.touched);
    if (rc != 0)
        store_result_free(out);
    return rc;
}

/* ---------------------------------------------------------------- size */

int store_search_size(store_t *st, store_search_size_t *out)
{
    if (!st || !out) {
        store__err(NULL, 0, "store_search_size: NULL argument");
        return -1;
    }
    memset(out, 0, sizeof *out);
    MDB_txn *txn;
    if (store__read_begin(st, &txn, NULL, 0) != 0)
        return -1;
    MDB_dbi dbs[] = { st->s_terms, st->s_facets, st->s_docs, st->s_ids };
    int ret = 0;
    for (size_t i = 0; i < sizeof dbs / sizeof *dbs; i++) {
        MDB_stat s;
        int rc = mdb_stat(txn, dbs[i], &s);
        if (rc) {
            store__mdb_err(st, NULL, 0, "mdb_stat(search)", rc);
            ret = -1;
            break;
        }
        out->bytes += (uint64_t)s.ms_psize * (s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages);
        if (dbs[i] == st->s_terms)
            out->postings = s.ms_entries;
        if (dbs[i] == st->s_ids)
            out->products = s.ms_entries;
    }
    store__read_end(st, txn);
    return ret;
}
