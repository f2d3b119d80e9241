/* storage/search_int.h - what the three parts of the search index share; included by
 * storage/search_*.c only.
 *
 *   search_doc.c    the tokenizer, a product's document (words, fields, facet values) built from its
 *                   manifest, and the search_docs record it is stored as (encode / bounds-checked decode).
 *   search_index.c  index writes inside the catalog append transaction (publish, retire), the docid
 *                   lookups, and the rebuild of an index missing from an older store.
 *   search_query.c  store_search: parsing and checking a query, scoring, filters, facet counts,
 *                   ranked paging; store_search_size.
 *   search_cache.c  the index generation, and the columns queries count facets and order ties by
 *                   (each product's facet values, its place in id order), kept in memory per
 *                   generation.
 *
 * Must not: be included outside storage/search_*.c, or declare what one part could keep static.
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
 *   meta "store.search.gen"            -> u64 BE, bumped by every transaction that writes the index
 * A query allocates one small slot per docid (8 bytes: 0.8 MB at 100k products) and a hit
 * bitmap, walks the postings of its words and filters, and ranks. Facet counts, and the id
 * order of tied hits, come from the columns of the index's generation (search_cache.c): each
 * product's facet values and its place in id order, read from search_facets and search_ids by
 * the first query of a generation (4 bytes per facet posting and 8 per product in memory)
 * and shared by the later ones, whose snapshot must be of the same generation.
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
/* The record of docid, in *v (the transaction's pages), decoded into r. 0, STORE_NOTFOUND, -1. */
int search__doc_get(store_t *st, MDB_txn *txn, uint32_t docid, MDB_val *v, rec_t *r, char *err, size_t errlen);
/* The docid of id: 0 with *docid set, STORE_NOTFOUND, or -1. */
int search__docid_of(store_t *st, MDB_txn *txn, const char *id, size_t idlen, uint32_t *docid, char *err,
                     size_t errlen);
/* One past the highest docid in use (1 when none). */
int search__docid_end(store_t *st, MDB_txn *txn, uint32_t *end, char *err, size_t errlen);

/* ---- search_cache.c: the generation, and the columns of one */
typedef struct { int facet; size_t len; char *s; } search_value_t;   /* a facet value (s NUL-ended) */
typedef struct search_cache {
    uint64_t gen;                    /* the index generation it was read at */
    uint32_t n;                      /* docids are < n */
    uint32_t *off;                   /* n + 1: doc d's values are val[off[d] .. off[d + 1]) */
    uint32_t *val;                   /* indexes into values */
    uint32_t *idrank;                /* n: 1, 2, 3... in id order (0: no id) */
    search_value_t *values;
    uint32_t *total;                 /* nvalues: how many products have each */
    size_t nvalues;
    int refs;                        /* guarded by search_cache.c's lock */
} search_cache_t;

/* The generation of txn's snapshot (0 before the first write). 0, or -1 with err. */
int search__gen_get(store_t *st, MDB_txn *txn, uint64_t *gen, char *err, size_t errlen);
/* Bumps it, in a write transaction that changes the index. 0, MDB_MAP_FULL or -1. */
int search__gen_bump(store_t *st, MDB_txn *txn, char *err, size_t errlen);
/* The columns of txn's snapshot (docids < n): the store's, when of its generation, else read
 * now (and kept by the store when newer than its own). NULL with err set on failure; release
 * with search__cache_release. */
search_cache_t *search__cache_get(store_t *st, MDB_txn *txn, uint32_t n, char *err, size_t errlen);
void search__cache_release(search_cache_t *c);   /* accepts NULL */

#endif
