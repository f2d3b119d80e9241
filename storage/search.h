/* storage/search.h - the catalog search API: ranked full-text search and facets over the products'
 * latest manifests (storage/search_*.c implement it; the index is kept in the node's LMDB store).
 *
 * Must not: grow into the storage API at large (store.h has that); callers that do not search
 * do not include this. */
#ifndef TRIB_SEARCH_H
#define TRIB_SEARCH_H

#include <stddef.h>
#include <stdint.h>
#include "storage/store.h"

/* Ranked full-text search and facets over the products' latest manifests,
 * indexed in the append transaction (so each node searches its own replica).
 * Indexed words: name, title, description (purpose, usage, limitations), tags, owners, schema
 * property names and descriptions, domain. Words are split at anything but letters and digits
 * (so snake_case, kebab-case, dotted.names and emails split) and at camelCase humps, then
 * lowercased; a few English stopwords are skipped; bytes >= 0x80 count as letters.
 * Ranking (score, higher first; ties in id order):
 *   EXACT 10000 when the query is a product's id, or its name (also written with spaces for
 *   dashes); then per distinct query word matched 100 plus the best field it matched:
 *   name 40, tag 30, title 20, owner 15, schema field 10, domain 8, description 5 (+1 per
 *   further field). The query's last word, when 3+ letters, also matches words it begins (half
 *   the field weight): search as you type.
 *   So more words matched beat better fields, and a document need not match every word.
 * Filters: exact value, case-insensitive (stored lowercase); a value nobody has gives no hits.
 * Facets: counts of each domain, tag, owner (business and technical), status, compliance and
 * classification value over all hits, highest count first (ties by value); status "retired" for
 * retired products; compliance as the node's policy check last set it (store_search_set_compliance).
 * Restricted products (DESIGN §13) are stubs to a caller who may not see them in full: to that
 * caller such a product matches only by the words of its name, title, owners and domain (and its
 * exact id or name), passes only the domain, owner, status and classification filters, and counts
 * only in the domain, owner, status and classification facets (what its stub shows). Whether the caller sees one is asked of sees(sees_ctx, id)
 * once per restricted product per query (with sees_only, once per candidate); sees NULL: the caller sees none
 * in full. */
#define STORE_SEARCH_QMAX     512   /* bytes of q */
#define STORE_SEARCH_WORDS    16    /* distinct words of q */
#define STORE_FACET_VALUE_MAX 255   /* longer facet values are indexed cut to this (whole UTF-8 characters) */

enum { STORE_FACET_DOMAIN, STORE_FACET_TAG, STORE_FACET_OWNER, STORE_FACET_STATUS, STORE_FACET_COMPLIANCE,
       STORE_FACET_CLASSIFICATION, STORE_FACETS };

typedef struct {
    const char *q;                               /* words; NULL or "": no query (all match) */
    const char *domain, *tag, *owner, *status;   /* NULL or "": no filter */
    const char *compliance;                      /* "compliant" | "non_compliant" (policy), NULL: any */
    const char *classification;                  /* the manifest's classification, NULL or "": any */
    size_t offset, limit;                        /* hits [offset, offset+limit) of the ranking */
    size_t facet_max;                            /* values per facet (0: all) but the domain facet */
    size_t facet_max_domain;                     /* the domain facet's values (0: all) */
    int (*sees)(void *ctx, const char *id);      /* 1: restricted id shown in full (NULL: none is) */
    void *sees_ctx;
    /* With sees, when sees_only is 1: sees can say 1 only of restricted products of domain
     * sees_domain (NULL: of none) and of the nsees_ids ids in sees_ids, so it is asked of those
     * alone (the others are stubs without a record read or a question each). */
    int sees_only;
    const char *sees_domain;
    const char (*sees_ids)[STORE_ID_MAX];
    size_t nsees_ids;
} store_query_t;

typedef struct {
    char id[STORE_ID_MAX];
    unsigned score;
} store_hit_t;

typedef struct {
    int facet;                                   /* STORE_FACET_* */
    char value[STORE_FACET_VALUE_MAX + 1];
    size_t count;
} store_facet_t;

typedef struct {
    size_t total;                                /* hits after query and filters */
    store_hit_t *hits;                           /* nhits <= limit, in rank order */
    size_t nhits;
    store_facet_t *facets;                       /* grouped by facet, count desc */
    size_t nfacets;
} store_result_t;

/* One short read transaction. -1 with err naming the parameter for a bad query (q longer
 * than STORE_SEARCH_QMAX or with more than STORE_SEARCH_WORDS words, a filter value longer
 * than STORE_FACET_VALUE_MAX), or on a storage error. out is freed with store_result_free. */
int store_search(store_t *st, const store_query_t *q, store_result_t *out, char *err, size_t errlen);
void store_result_free(store_result_t *r);       /* accepts NULL; leaves *r empty */
/* The parameter checks of store_search alone (no storage access): 0, or -1 with err. */
int store_search_check(const store_query_t *q, char *err, size_t errlen);

/* The words the index makes of text, joined with single spaces into out; returns how many,
 * or -1 when out is too small. (What a query word must equal to match exactly.) */
int store_search_tokens(const char *text, char *out, size_t cap);

/* The compliance facet (DESIGN §14): sets each product ids[i]'s value to states[i]
 * ("compliant", "non_compliant", or "" for none), in one write transaction. The value is the
 * node's verdict, not part of the manifest: it survives re-indexing of a new manifest until set
 * again. Unknown ids are skipped. 0, or -1 with err. */
int store_search_set_compliance(store_t *st, const char *const *ids, const char *const *states, size_t n,
                                char *err, size_t errlen);

typedef struct {
    uint64_t bytes, postings, products;          /* index pages in bytes, word postings, products */
    uint64_t column_builds, column_updates;      /* generations whose facet columns this store_t read
                                                    whole, and updated from an older one's */
} store_search_size_t;
int store_search_size(store_t *st, store_search_size_t *out);

#endif
