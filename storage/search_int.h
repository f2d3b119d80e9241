/* storage/search_int.h - what the parts of the search index share; included by
 * storage/search_*.c only.
 *
 *   search_doc.c    the tokenizer, a product's document (words, fields, facet values) built from its
 *                   manifest, and the search_docs record it is stored as (encode / bounds-checked decode).
 *   search_index.c  index writes inside the catalog append transaction (publish, retire), the docid
 *                   lookups, and the rebuild of an index missing from an older store.
 *   search_post.c   the posting changes of a write transaction, queued and written together in key
 *                   order before it commits.
 *   search_query.c  store_search: parsing and checking a query, scoring, filters, facet counts,
 *                   ranked paging; store_search_size.
 *   search_gen.c    the index generation, and the log of the docids each generation changed.
 *   search_cache.c  the columns queries count facets and order ties by (each product's facet
 *                   values, its place in id order), kept in memory per generation and updated
 *                   from an older generation's by what the log says changed.
 *
 * Must not: be included outside storage/search_*.c (and the tests of its parts), or declare what
 * one part could keep static.
 *
 * Layout. Each product gets a docid (u32, 1, 2, 3... in arrival order; never reused: products
 * are never removed). Postings are DUPSORT|DUPFIXED lists sorted by big-endian docid, read a
 * page at a time (MDB_GET_MULTIPLE):
 *   search_terms   word                 -> docid(4) | field mask(1)
 *                  "=" lowercase name   -> docid(4) | F_EXACT          (exact-name lookup)
 *   search_facets  'a'                  -> docid(4)   every product
 *                  'd' domain, 't' tag, 'o' owner, 's' status, 'k' classification (lowercase)
 *                                       -> docid(4)
 *                  'r'                  -> docid(4)   restricted products (DESIGN §13)
 *   search_docs    docid                -> record: flags, id, status, classification, tags, owners,
 *                                          words+masks
 *                                          (what to remove when the product changes)
 *   search_ids     product id           -> docid
 *   search_delta gen (u64 BE)          -> 'd' then the docids (u32 BE) that generation's write
 *                                          changed, or 'a': anything may have (a rebuild, a batch
 *                                          of over 1,024); the last 1,024 generations are kept
 *   meta "store.search.gen"            -> u64 BE, bumped by every transaction that writes the index
 *                                          (once, for all the products it writes)
 * A query allocates one small slot per docid (8 bytes: 0.8 MB at 100k products) and a hit
 * bitmap, walks the postings of its words and filters, and ranks. Facet counts, and the id
 * order of tied hits, come from the columns of the index's generation (search_cache.c): each
 * product's facet values and its place in id order, in chunks of 256 products (4 bytes per facet
 * posting and 12 per product in memory). The first query of a store reads them from
 * search_facets and search_ids; a query of a later generation copies the chunks of the products
 * the log says changed since a generation the store keeps, and re-reads those products' records
 * (their other chunks are shared). The columns a query uses are of its snapshot's generation,
 * never another's.
 * A restricted product is a stub (id, domain, name, title, status, classification, owners) to a
 * caller without a
 * grant: to such a caller it is found only by those fields' words and filters, and counts only in
 * those facets (store_query_t.sees). */
#ifndef TRIB_SEARCH_INT_H
#define TRIB_SEARCH_INT_H

#include "storage/internal.h"
#include "storage/search.h"

#define SEARCH_VERSION   3u          /* 2: the restricted flag and its 'r' postings; 3: classification */
#define MARKER_KEY       "store.search"
#define TOKEN_MAX        64          /* longer words are cut to this many bytes */
#define DOC_TERMS_MAX    4096        /* distinct words indexed per product */
#define REC_VERSION      3           /* 3: classification after status */
#define REC_RESTRICTED   1           /* record flag: classification restricted */

/* Field bits of a posting (what a query word scores for each: search_query.c). */
enum { F_NAME = 1, F_TAG = 2, F_TITLE = 4, F_OWNER = 8, F_SCHEMA = 16, F_DOMAIN = 32, F_DESC = 64,
       F_EXACT = 128 };
/* What a stub shows: the only fields a hidden restricted product is found by. */
#define F_STUB (F_NAME | F_TITLE | F_OWNER | F_DOMAIN | F_EXACT)

/* The search_facets key kind of each STORE_FACET_*, in that order. */
#define FACET_KINDS "dtosck"

#define POST_LEN  5                  /* docid BE u32 | mask */
#define FACET_LEN 4                  /* docid BE u32 */

static inline void be32_put(uint8_t *out, uint32_t v)
{
    out[0] = (uint8_t)(v >> 24), out[1] = (uint8_t)(v >> 16), out[2] = (uint8_t)(v >> 8), out[3] = (uint8_t)v;
}

static inline uint32_t be32_get(const uint8_t *in)
{
    return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
}

/* ---- search_doc.c */
typedef int (*search__tok_fn)(void *ctx, const char *tok, size_t len);

/* A growable byte buffer; failed set once an allocation fails. */
typedef struct { uint8_t *b; size_t len, cap; int failed; } buf_t;

/* w: '=' + name allowed; first: arrival order of the word's first occurrence (the fields are
 * added most important first, so the per-product cap keeps the earliest words). */
typedef struct { char w[TOKEN_MAX + 1]; uint8_t len, mask; uint16_t first; } term_t;

/* What one product contributes to the index, built from its manifest (or decoded back from
 * its search_docs record). Strings point into the manifest or the record copy. */
typedef struct {
    const char *id;
    size_t idlen;
    int restricted;
    char status[STORE_FACET_VALUE_MAX + 1];
    char classification[STORE_FACET_VALUE_MAX + 1];
    size_t ntags, nowners, nterms, cap_terms;
    char (*tags)[STORE_FACET_VALUE_MAX + 1];
    char owners[2][STORE_FACET_VALUE_MAX + 1];
    term_t *terms;
    int oom;
} doc_t;

/* A bounds-checked reader over a search_docs record. */
typedef struct { const uint8_t *p, *end; int bad; } rd_t;

/* Decoded view of a record: the facet part always; the words from `terms` on demand. */
typedef struct {
    const char *id, *status, *cls;
    int restricted;
    size_t idlen, slen, clen, ntags, nowners, nterms;
    const char *tag[256];
    size_t taglen[256];
    const char *owner[2];
    size_t ownerlen[2];
    rd_t terms;                      /* positioned at the first word */
} rec_t;

/* Calls fn for each word of text[0..n) (lowercased, cut to TOKEN_MAX, stopwords skipped) until
 * fn returns non-zero, which is returned. */
int search__tokenize(const char *text, size_t n, search__tok_fn fn, void *ctx);
/* Lowercase copy, cut to STORE_FACET_VALUE_MAX bytes at a UTF-8 boundary; returns the length. */
size_t search__lower_copy(char *out, const char *s, size_t n);
void search__buf_add(buf_t *b, const void *p, size_t n);
void search__buf_str(buf_t *b, const char *s, size_t n);   /* u8 length, then the bytes (n <= 255) */
/* Calls fn for each facet posting of record r (kind, value cut to STORE_FACET_VALUE_MAX bytes), the
 * compliance facet aside (it is not in the record), until fn returns non-zero, which is returned. */
typedef int (*search__facet_fn)(void *ctx, char kind, const char *v, size_t n);
int search__rec_facets(const rec_t *r, search__facet_fn fn, void *ctx);
/* The document of id from manifest m (retired overrides its status); 0 or -1 (out of memory).
 * Freed with search__doc_free either way. */
int search__doc_from_manifest(doc_t *d, const char *id, const Trib__Manifest *m, int retired);
void search__doc_free(doc_t *d);
int search__doc_encode(const doc_t *d, buf_t *b);
unsigned search__rd_u8(rd_t *r);
size_t search__rd_str(rd_t *r, const char **s);
/* Decodes a search_docs record (r points into data); 0 or -1 when it is not one. */
int search__rec_decode(const void *data, size_t len, rec_t *r);

/* ---- search_index.c: lookups that queries share */
extern const char *const search__compliance[2];   /* the compliance facet's values */
/* The record of docid, in *v (the transaction's pages), decoded into r. 0, STORE_NOTFOUND, -1. */
int search__doc_get(store_t *st, MDB_txn *txn, uint32_t docid, MDB_val *v, rec_t *r, char *err, size_t errlen);
/* The docid of id: 0 with *docid set, STORE_NOTFOUND, or -1. */
int search__docid_of(store_t *st, MDB_txn *txn, const char *id, size_t idlen, uint32_t *docid, char *err,
                     size_t errlen);
/* One past the highest docid in use (1 when none). */
int search__docid_end(store_t *st, MDB_txn *txn, uint32_t *end, char *err, size_t errlen);

/* ---- search_post.c: posting changes (dbi s_terms or s_facets), queued in the write transaction
 * and written in key order before it commits (store__search_post_apply). add puts the posting
 * (kept when it exists), del removes it (nothing when it does not). 0, MDB_MAP_FULL or -1. */
int search__post_add(store_t *st, MDB_txn *txn, MDB_dbi dbi, const char *key, size_t klen,
                     const uint8_t *val, size_t vlen, char *err, size_t errlen);
int search__post_del(store_t *st, MDB_txn *txn, MDB_dbi dbi, const char *key, size_t klen,
                     const uint8_t *val, size_t vlen, char *err, size_t errlen);

/* ---- search_gen.c: the generation, and the log of what each changed */
/* The generation of txn's snapshot (0 before the first write). 0, or -1 with err. */
int search__gen_get(store_t *st, MDB_txn *txn, uint64_t *gen, char *err, size_t errlen);
/* Bumps it in a write transaction that changes the index, logging the n docids the write
 * changed (docids NULL: anything may have, as after a rebuild). 0, MDB_MAP_FULL or -1. */
int search__gen_bump(store_t *st, MDB_txn *txn, const uint32_t *docids, size_t n, char *err, size_t errlen);
/* Notes that the open write transaction indexed docid: its generation is bumped once, for all
 * it noted, before it commits (store__search_gen_apply). 0, or -1 out of memory. */
int search__gen_note(store_t *st, uint32_t docid, char *err, size_t errlen);
/* The docids generations (from, to] changed, as txn's snapshot logs them: sorted, unique, in a
 * malloc'd *out. 0; 1 when the log cannot say (a generation missing or trimmed, one that says
 * anything may have changed, more than max docids); -1 with err. */
int search__delta_read(store_t *st, MDB_txn *txn, uint64_t from, uint64_t to, size_t max, uint32_t **out,
                       size_t *nout, char *err, size_t errlen);

/* ---- search_cache.c: the columns of one generation */
#define SEARCH_CHUNK 256             /* docids per chunk of the columns */
typedef struct { int facet; size_t len; char *s; } search_value_t;   /* a facet value (s NUL-ended) */
/* The columns of docids [i * SEARCH_CHUNK, (i + 1) * SEARCH_CHUNK): shared by every generation that
 * did not change them; a generation that does makes its own copy. */
typedef struct search_chunk {
    atomic_int refs;
    uint32_t off[SEARCH_CHUNK + 1];  /* the chunk's i-th doc has values val[off[i] .. off[i + 1]) */
    uint64_t rank[SEARCH_CHUNK];     /* place in id order: greater for a greater id; 0: no id */
    uint32_t val[];                  /* indexes into the generation's values */
} search_chunk_t;
typedef struct search_cache {
    uint64_t gen;                    /* the index generation it is of */
    uint32_t n;                      /* docids are < n */
    search_chunk_t **chunk;          /* (n + SEARCH_CHUNK - 1) / SEARCH_CHUNK */
    search_value_t *values;          /* nvalues (the strings are dict's) */
    uint32_t *total;                 /* nvalues: how many products have each */
    size_t nvalues, nlive;           /* nlive: values some product has */
    struct search_dict *dict;        /* every value of the generations updated from one read */
    int refs;                        /* guarded by search_cache.c's lock */
} search_cache_t;

/* Doc d's values (*count of them) and its place in id order, in columns c (d < c->n). */
static inline const uint32_t *search__cache_vals(const search_cache_t *c, uint32_t d, uint32_t *count)
{
    const search_chunk_t *k = c->chunk[d / SEARCH_CHUNK];
    *count = k->off[d % SEARCH_CHUNK + 1] - k->off[d % SEARCH_CHUNK];
    return k->val + k->off[d % SEARCH_CHUNK];
}

static inline uint64_t search__cache_rank(const search_cache_t *c, uint32_t d)
{
    return c->chunk[d / SEARCH_CHUNK]->rank[d % SEARCH_CHUNK];
}

/* The columns of txn's snapshot (docids < n): kept by the store when of a recent generation,
 * else updated from an older generation's by what the log says changed since, else read whole
 * (kept by the store when newer than those it keeps). NULL with err set on failure; release with
 * search__cache_release. */
search_cache_t *search__cache_get(store_t *st, MDB_txn *txn, uint32_t n, char *err, size_t errlen);
void search__cache_release(search_cache_t *c);   /* accepts NULL */
/* How many generations' columns were read whole, and how many updated from older ones. */
void search__cache_counts(store_t *st, uint64_t *builds, uint64_t *updates);

#endif
