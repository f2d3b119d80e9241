/* storage/search_query.c - store_search: ranked queries, filters and facet counts over the index
 * (layout in search_int.h), in one short read transaction per query.
 *
 * Owns: query parsing and its limits (store_search_check), scoring (field weights, exact and
 * prefix matches), filters, facet counts (from the index columns, search_cache.c), ranked
 * paging (the best offset+limit hits kept in a heap), store_search_size.
 * Must not: write to the store, hold the read transaction beyond one query, or scan every
 * manifest per query. */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "storage/search_int.h"

#define PREFIX_TERMS_MAX 32          /* words the last query word may extend to (prefix match) */
#define PREFIX_MIN       3           /* a last query word this long also matches as a prefix */

/* What a query word scores for the best field it hits. */
static const struct { unsigned bit, weight; } field_weight[] = {
    { F_NAME, 40 }, { F_TAG, 30 }, { F_TITLE, 20 }, { F_OWNER, 15 }, { F_SCHEMA, 10 },
    { F_DOMAIN, 8 }, { F_DESC, 5 },
};
#define WORD_HIT     100             /* per query word matched: more words beat better fields */
#define EXACT_NAME   10000           /* the query is the product's name (typed as words or not) */
#define EXACT_ID     20000           /* ... its id (typed with '/' or as words): above a name elsewhere */
_Static_assert(STORE_SEARCH_WORDS * (WORD_HIT + 40) < EXACT_NAME, "word scores stay below the exact bonuses");

static const int facet_in_stub[STORE_FACETS] = { 1, 0, 1, 1, 0, 1 };   /* a restricted product's stub shows */

/* ================================================================ queries */

typedef struct {
    uint16_t score, wbest;
    uint8_t words, filt, wstamp, hidden;     /* hidden: a restricted product this caller sees as a stub */
} slot_t;

typedef struct {
    store_t *st;
    MDB_txn *txn;
    MDB_cursor *terms, *facets;
    slot_t *slot;
    uint64_t *hit;                   /* bitmap of the hits */
    uint32_t n;                      /* docids are < n */
    uint32_t *touched;
    size_t ntouched, cap_touched;
    size_t nhidden;
    int oom;
} q_t;

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

/* ctx non-NULL: a filter on what a stub does not show (hidden products never pass it). */
static void page_filter(q_t *q, const uint8_t *vals, size_t count, void *ctx)
{
    for (size_t i = 0; i < count; i++) {
        uint32_t d = be32_get(vals + i * FACET_LEN);
        if (d < q->n && !(ctx && q->slot[d].hidden))
            q->slot[d].filt++;
    }
}

static void page_restricted(q_t *q, const uint8_t *vals, size_t count, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < count; i++) {
        uint32_t d = be32_get(vals + i * FACET_LEN);
        if (d < q->n && !q->slot[d].hidden) {
            q->slot[d].hidden = 1;
            q->nhidden++;
        }
    }
}

/* The record of a hit, decoded into r (pointing into the read transaction's pages): 0, or -1
 * with err set (a hit's record is missing only in a damaged index). */
static int hit_rec(q_t *q, uint32_t doc, rec_t *r, char *err, size_t errlen)
{
    MDB_val v;
    int rc = search__doc_get(q->st, q->txn, doc, &v, r, err, errlen);
    if (rc == STORE_NOTFOUND)
        store__err(err, errlen, "search_docs: no record for doc %u (%s)", doc, q->st->path);
    return rc ? -1 : 0;
}

/* Appends doc d to q->touched. 0, or -1 out of memory (q->oom set). */
static int touch(q_t *q, uint32_t d)
{
    if (q->ntouched == q->cap_touched) {
        size_t cap = q->cap_touched ? q->cap_touched * 2 : 1024;
        uint32_t *t = realloc(q->touched, cap * sizeof *t);
        if (!t) {
            q->oom = 1;
            return -1;
        }
        q->touched = t;
        q->cap_touched = cap;
    }
    q->touched[q->ntouched++] = d;
    return 0;
}

/* Keeps the hidden docs of a page in q->touched: the candidates sees is asked about. */
static void page_candidate(q_t *q, const uint8_t *vals, size_t count, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < count; i++) {
        uint32_t d = be32_get(vals + i * FACET_LEN);
        if (d >= q->n || !q->slot[d].hidden)
            continue;
        if (touch(q, d) != 0)
            return;
    }
}

/* Asks sees about hidden doc d; shows it in full when it says 1. 0, or -1 with err set. */
static int ask(q_t *q, const store_query_t *sq, uint32_t d, char *err, size_t errlen)
{
    if (!q->slot[d].hidden)
        return 0;
    rec_t r;
    char id[STORE_ID_MAX];
    if (hit_rec(q, d, &r, err, errlen) != 0)
        return -1;
    memcpy(id, r.id, r.idlen);
    id[r.idlen] = '\0';
    if (sq->sees(sq->sees_ctx, id)) {
        q->slot[d].hidden = 0;
        q->nhidden--;
    }
    return 0;
}

/* Marks the restricted products the caller may not see in full (sq->sees says which it may; with
 * sq->sees_only, only the candidates it names are asked about). */
static int mark_hidden(q_t *q, const store_query_t *sq, char *err, size_t errlen)
{
    int rc = each_page(q, q->facets, "r", 1, FACET_LEN, page_restricted, NULL);
    if (rc) {
        store__mdb_err(q->st, err, errlen, "search: reading search_facets", rc);
        return -1;
    }
    if (!sq->sees || !q->nhidden)
        return 0;
    if (!sq->sees_only) {
        for (uint32_t d = 1; q->nhidden && d < q->n; d++)
            if (ask(q, sq, d, err, errlen) != 0)
                return -1;
        return 0;
    }
    q->ntouched = 0;
    if (sq->sees_domain && *sq->sees_domain) {
        char key[1 + STORE_FACET_VALUE_MAX];
        key[0] = 'd';
        size_t n = search__lower_copy(key + 1, sq->sees_domain, strnlen(sq->sees_domain, STORE_FACET_VALUE_MAX));
        if ((rc = each_page(q, q->facets, key, n + 1, FACET_LEN, page_candidate, NULL)) != 0) {
            store__mdb_err(q->st, err, errlen, "search: reading search_facets", rc);
            return -1;
        }
    }
    for (size_t i = 0; i < sq->nsees_ids && sq->sees_ids; i++) {
        uint32_t d;
        rc = search__docid_of(q->st, q->txn, sq->sees_ids[i], strnlen(sq->sees_ids[i], STORE_ID_MAX), &d, err, errlen);
        if (rc == STORE_NOTFOUND)
            continue;
        if (rc != 0)
            return -1;
        uint8_t be[FACET_LEN];
        be32_put(be, d);
        page_candidate(q, be, 1, NULL);
    }
    if (q->oom) {
        store__err(err, errlen, "search: out of memory");
        return -1;
    }
    for (size_t i = 0; i < q->ntouched; i++)
        if (ask(q, sq, q->touched[i], err, errlen) != 0)
            return -1;
    q->ntouched = 0;
    return 0;
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
        slot_t *s = &q->slot[d];
        unsigned mask = s->hidden ? p[4] & F_STUB : p[4];
        if (!mask)
            continue;   /* a word of what the stub does not show */
        unsigned wt = weight_of(mask) / w->div;
        if (s->wstamp != w->stamp) {
            if (touch(q, d) != 0)
                return;
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

/* The docs in vals get the exact bonus *ctx (EXACT_NAME or EXACT_ID): a product keeps the higher
 * of the two it earns, on top of its word score (below EXACT_NAME), whatever the order. */
static void page_exact(q_t *q, const uint8_t *vals, size_t count, void *ctx)
{
    unsigned bonus = *(const unsigned *)ctx;
    for (size_t i = 0; i < count; i++) {
        uint32_t d = be32_get(vals + i * POST_LEN);
        if (d >= q->n)
            continue;
        slot_t *s = &q->slot[d];
        unsigned words = s->score % EXACT_NAME;
        if (bonus > s->score - words) {
            s->score = (uint16_t)(words + bonus);
            s->words = s->words ? s->words : 1;
        }
    }
}

/* The product whose id is id (len bytes), if any, gets the id bonus. 0, or -1 with err set. */
static int exact_id(q_t *q, const char *id, size_t len, char *err, size_t errlen)
{
    static const unsigned bonus = EXACT_ID;
    uint32_t d;
    int rc = search__docid_of(q->st, q->txn, id, len, &d, err, errlen);
    if (rc == 0) {
        uint8_t v[POST_LEN];
        be32_put(v, d);
        page_exact(q, v, 1, (void *)&bonus);
    }
    return rc == -1 ? -1 : 0;
}

/* The query as typed (q, trimmed, as sent), in the form of an id or a name: every word as typed
 * (stopwords and repeats too), lowercased, a camelCase step ("ordersDaily") and each run of other
 * characters (a no-break space too) one '-', none at either end (ids are [a-z0-9-]). 0 with out
 * set, or -1 when the query cannot be one: another letter beyond ASCII, or longer than an id. */
static int typed_form(const char *q, char out[STORE_ID_MAX])
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)q; *p; p++) {
        int nbsp = p[0] == 0xc2 && p[1] == 0xa0;
        if (*p >= 0x80 && !nbsp)
            return -1;
        p += nbsp;
        int step = isupper(*p) && n > 0 && p > (const unsigned char *)q && (islower(p[-1]) || isdigit(p[-1]));
        if (isalnum(*p) && !step) {
            if (n + 1 >= STORE_ID_MAX)
                return -1;
            out[n++] = (char)tolower(*p);
        } else if (step) {
            if (n + 2 >= STORE_ID_MAX)
                return -1;
            out[n++] = '-';
            out[n++] = (char)tolower(*p);
        } else if (n > 0 && out[n - 1] != '-') {
            if (n + 1 >= STORE_ID_MAX)
                return -1;
            out[n++] = '-';
        }
    }
    while (n > 0 && out[n - 1] == '-')
        n--;
    out[n] = '\0';
    return 0;
}

/* Exact id or name: qn is the trimmed, lowercased query, typed the query as sent. An id typed
 * with '/' is looked up as such; else the query as typed (typed_form: "billing orders daily" for billing/orders-daily) is
 * cut into a domain and a name at each '-' and looked up (EXACT_ID), and is also a name (EXACT_NAME),
 * as is qn itself. 0, or -1 with err set. */
static int score_exact(q_t *q, const char *qn, const char *typed, char *err, size_t errlen)
{
    if (strchr(qn, '/'))
        return exact_id(q, qn, strlen(qn), err, errlen);
    char id[STORE_ID_MAX];
    if (typed_form(typed, id) != 0)
        id[0] = '\0';
    size_t il = strlen(id);
    for (size_t i = 1; i + 1 < il; i++) {
        if (id[i] != '-')
            continue;
        id[i] = '/';
        if (exact_id(q, id, il, err, errlen) != 0)
            return -1;
        id[i] = '-';
    }
    const char *forms[2] = { qn, id };
    for (int i = 0; i < 2; i++) {
        if (i == 1 && strcmp(id, qn) == 0)
            break;
        char key[TOKEN_MAX + 1];
        size_t n = strlen(forms[i]);
        if (n == 0 || n + 1 > TOKEN_MAX)
            continue;
        key[0] = '=';
        memcpy(key + 1, forms[i], n);
        static const unsigned bonus = EXACT_NAME;
        int rc = each_page(q, q->terms, key, n + 1, POST_LEN, page_exact, (void *)&bonus);
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
    const char *v;
    size_t len, count;
} fcount_t;

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

/* Facet counts over the hits hits[0..nh), from the columns c: a hidden hit counts only in what
 * its stub shows. The values of each facet by count desc (ties by value), at most max each.
 * When most products are hits, each value's products less the ones that do not count. */
static int facets_count(q_t *q, const search_cache_t *c, const uint32_t *hits, size_t nh, size_t max,
                        size_t max_domain, store_result_t *out, char *err, size_t errlen)
{
    size_t *count = calloc(c->nvalues ? c->nvalues : 1, sizeof *count);
    fcount_t *list = malloc((c->nvalues ? c->nvalues : 1) * sizeof *list);
    if (!count || !list)
        goto oom;
    uint32_t nv;
    const uint32_t *val;
    if (nh > c->n / 2) {
        for (size_t v = 0; v < c->nvalues; v++)
            count[v] = c->total[v];
        for (uint32_t lo = 0; lo < c->n; lo += SEARCH_CHUNK) {   /* a chunk at a time */
            const search_chunk_t *k = c->chunk[lo / SEARCH_CHUNK];
            for (uint32_t i = 0; i < SEARCH_CHUNK && lo + i < c->n; i++) {
                uint32_t d = lo + i;
                int hit = q->hit[d >> 6] >> (d & 63) & 1;
                if (hit && !q->slot[d].hidden)
                    continue;
                for (uint32_t j = k->off[i]; j < k->off[i + 1]; j++)
                    if (!hit || !facet_in_stub[c->values[k->val[j]].facet])
                        count[k->val[j]]--;
            }
        }
    } else {
        for (size_t i = 0; i < nh; i++) {
            uint32_t d = hits[i];
            int hidden = q->slot[d].hidden;
            val = search__cache_vals(c, d, &nv);
            for (uint32_t j = 0; j < nv; j++)
                if (!hidden || facet_in_stub[c->values[val[j]].facet])
                    count[val[j]]++;
        }
    }
    size_t n = 0;
    for (size_t v = 0; v < c->nvalues; v++)
        if (count[v])
            list[n++] = (fcount_t){ c->values[v].facet, c->values[v].s, c->values[v].len, count[v] };
    free(count);
    count = NULL;
    qsort(list, n, sizeof *list, cmp_fcount);
    out->facets = calloc(n ? n : 1, sizeof *out->facets);
    if (!out->facets)
        goto oom;
    size_t per[STORE_FACETS] = { 0 };
    for (size_t i = 0; i < n; i++) {
        size_t cap = list[i].facet == STORE_FACET_DOMAIN ? max_domain : max;
        if (cap && per[list[i].facet] >= cap)
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
    free(count);
    free(list);
    store__err(err, errlen, "search: out of memory for facets");
    return -1;
}

/* ---------------------------------------------------------------- ranking */

/* A hit's place in the ranking: score desc, then id asc (the id's rank in id order). */
typedef struct { uint64_t rank; uint32_t doc; uint16_t score; } ranked_t;

/* 1 when a ranks after b. */
static int worse(const ranked_t *a, const ranked_t *b)
{
    return a->score != b->score ? a->score < b->score : a->rank > b->rank;
}

static int cmp_ranked(const void *a, const void *b)
{
    return worse(a, b) - worse(b, a);
}

/* Max-heap of the best hits so far: h[0] is the worst of them. */
static void sift_down(ranked_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && worse(&h[l], &h[m]))
            m = l;
        if (l + 1 < n && worse(&h[l + 1], &h[m]))
            m = l + 1;
        if (m == i)
            return;
        ranked_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void sift_up(ranked_t *h, size_t i)
{
    while (i > 0 && worse(&h[i], &h[(i - 1) / 2])) {
        ranked_t t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

/* Fills out->hits with hits [offset, offset+limit) in (score desc, id asc) order, keeping only
 * the best offset+limit of the hits hits[0..nh) on the way; the ids of those alone are read. */
static int rank(q_t *q, const search_cache_t *c, const uint32_t *hits, size_t nh, size_t offset, size_t limit,
                store_result_t *out, char *err, size_t errlen)
{
    if (offset >= nh || limit == 0)
        return 0;
    size_t want = nh - offset < limit ? nh - offset : limit;
    size_t k = offset + want, nr = 0;              /* best k in order are needed */
    ranked_t *h = malloc(k * sizeof *h);
    if (!h)
        goto oom;
    for (size_t i = 0; i < nh; i++) {
        ranked_t r = { search__cache_rank(c, hits[i]), hits[i], q->slot[hits[i]].score };
        if (nr < k) {
            h[nr] = r;
            sift_up(h, nr++);
        } else if (worse(&h[0], &r)) {
            h[0] = r;
            sift_down(h, nr, 0);
        }
    }
    qsort(h, nr, sizeof *h, cmp_ranked);
    if (!(out->hits = calloc(want, sizeof *out->hits))) {
        free(h);
        goto oom;
    }
    for (size_t i = offset; i < nr; i++) {
        store_hit_t *hit = &out->hits[out->nhits++];
        rec_t r;
        if (hit_rec(q, h[i].doc, &r, err, errlen) != 0) {
            free(h);
            return -1;
        }
        memcpy(hit->id, r.id, r.idlen);
        hit->id[r.idlen] = '\0';
        hit->score = q->slot[h[i].doc].score;
    }
    free(h);
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

/* Validates q; fills words and the normalized query qn. */
static int parse_query(const store_query_t *sq, words_t *w, char *qn, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    qn[0] = '\0';
    static const char *const names[STORE_FACETS] = { "domain", "tag", "owner", "status", "compliance",
                                                     "classification" };
    const char *vals[STORE_FACETS] = { sq->domain, sq->tag, sq->owner, sq->status, sq->compliance,
                                       sq->classification };
    for (int i = 0; i < STORE_FACETS; i++)
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
    search__tokenize(sq->q, n, collect_word, w);
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
    return 0;
}

int store_search_check(const store_query_t *sq, char *err, size_t errlen)
{
    if (!sq) {
        store__err(err, errlen, "store_search_check: NULL argument");
        return -1;
    }
    words_t w;
    char qn[STORE_SEARCH_QMAX + 1];
    return parse_query(sq, &w, qn, err, errlen);
}

static int search_txn(q_t *q, const store_query_t *sq, const words_t *w, const char *qn, store_result_t *out,
                      char *err, size_t errlen)
{
    int rc;
    if ((rc = mdb_cursor_open(q->txn, q->st->s_terms, &q->terms)) != 0 ||
        (rc = mdb_cursor_open(q->txn, q->st->s_facets, &q->facets)) != 0) {
        store__mdb_err(q->st, err, errlen, "mdb_cursor_open(search)", rc);
        return -1;
    }
    if (search__docid_end(q->st, q->txn, &q->n, err, errlen) != 0)
        return -1;
    if (!(q->slot = calloc(q->n, sizeof *q->slot)) || !(q->hit = calloc(q->n / 64 + 1, sizeof *q->hit))) {
        store__err(err, errlen, "search: out of memory for %u products", q->n);
        return -1;
    }
    if (mark_hidden(q, sq, err, errlen) != 0)
        return -1;
    /* Filters: a doc must appear in every one's postings. Without query and filters: all. */
    const char *fv[STORE_FACETS] = { sq->domain, sq->tag, sq->owner, sq->status, sq->compliance,
                                     sq->classification };
    int nfilt = 0, has_q = !empty(sq->q);
    for (int f = 0; f < STORE_FACETS; f++) {
        if (empty(fv[f]))
            continue;
        char key[1 + STORE_FACET_VALUE_MAX];
        key[0] = FACET_KINDS[f];
        size_t n = search__lower_copy(key + 1, fv[f], strlen(fv[f]));
        void *stub_hides = facet_in_stub[f] ? NULL : q;
        if ((rc = each_page(q, q->facets, key, n + 1, FACET_LEN, page_filter, stub_hides)) != 0)
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
        if (score_exact(q, qn, sq->q, err, errlen) != 0)
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
    int ret = 0;
    if (nh > 0) {
        search_cache_t *c = search__cache_get(q->st, q->txn, q->n, err, errlen);
        ret = c ? facets_count(q, c, hits, nh, sq->facet_max, sq->facet_max_domain, out, err, errlen) : -1;
        if (ret == 0)
            ret = rank(q, c, hits, nh, sq->offset, sq->limit, out, err, errlen);
        search__cache_release(c);
    }
    free(hits);
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
    char qn[STORE_SEARCH_QMAX + 1];
    if (parse_query(sq, &w, qn, err, errlen) != 0)
        return -1;
    q_t q = { .st = st };
    if (store__read_begin(st, &q.txn, err, errlen) != 0)
        return -1;
    int rc = search_txn(&q, sq, &w, qn, out, err, errlen);
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
    MDB_dbi dbs[] = { st->s_terms, st->s_facets, st->s_docs, st->s_ids, st->s_delta };
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
    search__cache_counts(st, &out->column_builds, &out->column_updates);
    return ret;
}

