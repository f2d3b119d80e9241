/* storage/search_doc.c - the search index's words and documents: the tokenizer, what one product
 * contributes to the index (built from its manifest), and the search_docs record it is kept as.
 *
 * Owns: splitting text into words (lowercase; punctuation, snake_case, kebab-case, dots and
 * camelCase humps; stopwords skipped), the per-product word cap, facet values, and the record's
 * encoding with a bounds-checked decoder (a record from disk is never trusted).
 * Must not: touch LMDB (search_index.c writes, search_query.c reads) or score anything. */
#include <assert.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "storage/search_int.h"

static const char *const stopwords[] = {
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it", "of",
    "on", "or", "that", "the", "this", "to", "with",
};

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

#define STOPWORD_MAX 4   /* the longest stopword's length: most words are longer, and never one */

static int stopword(const char *w, size_t len)
{
    if (len > STOPWORD_MAX)
        return 0;
    for (size_t i = 0; i < sizeof stopwords / sizeof *stopwords; i++)
        if (stopwords[i][0] == w[0] && strlen(stopwords[i]) == len && memcmp(stopwords[i], w, len) == 0)
            return 1;
    return 0;
}


/* Calls fn for each word of s[0..n) (lowercased, cut to TOKEN_MAX, stopwords skipped) until
 * fn returns non-zero, which is returned. */
int search__tokenize(const char *text, size_t n, search__tok_fn fn, void *ctx)
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
    search__tokenize(text, strlen(text), tok_collect, &t);
    if (t.full) {
        store__err(NULL, 0, "store_search_tokens: words of '%.40s' exceed %zu bytes", text, cap);
        return -1;
    }
    return t.count;
}



void search__buf_add(buf_t *b, const void *p, size_t n)
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

static void buf_u8(buf_t *b, unsigned v) { uint8_t x = (uint8_t)v; search__buf_add(b, &x, 1); }

/* A length-prefixed string (u8 length; callers cut to 255). */
void search__buf_str(buf_t *b, const char *s, size_t n)
{
    assert(n <= 255);
    buf_u8(b, (unsigned)n);
    search__buf_add(b, s, n);
}

/* ================================================================ documents */


void search__doc_free(doc_t *d)
{
    free(d->tags);
    free(d->terms);
    d->tags = NULL;
    d->terms = NULL;
}

/* Lowercase copy, cut to STORE_FACET_VALUE_MAX bytes (at a UTF-8 character boundary: facet
 * values are returned to clients as JSON); returns the length. */
size_t search__lower_copy(char *out, const char *s, size_t n)
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
    search__tokenize(text, strlen(text), field_word, &f);
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
    search__lower_copy(v, s, strlen(s));
    for (size_t i = 0; i < *n; i++)
        if (strcmp(list[i], v) == 0)
            return;
    strcpy(list[(*n)++], v);
}

/* The document of id from manifest m (retired overrides its status). */
int search__doc_from_manifest(doc_t *d, const char *id, const Trib__Manifest *m, int retired)
{
    memset(d, 0, sizeof *d);
    d->id = id;
    d->idlen = strlen(id);
    d->restricted = m->classification && strcmp(m->classification, "restricted") == 0;
    const char *status = retired ? "retired" : (m->status ? m->status : "");
    search__lower_copy(d->status, status, strlen(status));
    const char *cls = m->classification ? m->classification : "";
    search__lower_copy(d->classification, cls, strlen(cls));
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

int search__doc_encode(const doc_t *d, buf_t *b)
{
    buf_u8(b, REC_VERSION);
    buf_u8(b, d->restricted ? REC_RESTRICTED : 0);
    search__buf_str(b, d->id, d->idlen);
    search__buf_str(b, d->status, strlen(d->status));
    search__buf_str(b, d->classification, strlen(d->classification));
    buf_u8(b, (unsigned)d->ntags);
    for (size_t i = 0; i < d->ntags; i++)
        search__buf_str(b, d->tags[i], strlen(d->tags[i]));
    buf_u8(b, (unsigned)d->nowners);
    for (size_t i = 0; i < d->nowners; i++)
        search__buf_str(b, d->owners[i], strlen(d->owners[i]));
    uint8_t n2[2] = { (uint8_t)(d->nterms >> 8), (uint8_t)d->nterms };
    search__buf_add(b, n2, 2);
    for (size_t i = 0; i < d->nterms; i++) {
        search__buf_str(b, d->terms[i].w, d->terms[i].len);
        buf_u8(b, d->terms[i].mask);
    }
    return b->failed ? -1 : 0;
}


unsigned search__rd_u8(rd_t *r)
{
    if (r->bad || r->p >= r->end) {
        r->bad = 1;
        return 0;
    }
    return *r->p++;
}

/* A string: *s points into the record, returns its length. */
size_t search__rd_str(rd_t *r, const char **s)
{
    size_t n = search__rd_u8(r);
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        *s = "";
        return 0;
    }
    *s = (const char *)r->p;
    r->p += n;
    return n;
}


int search__rec_decode(const void *data, size_t len, rec_t *r)
{
    rd_t rd = { data, (const uint8_t *)data + len, 0 };
    if (search__rd_u8(&rd) != REC_VERSION)
        return -1;
    unsigned flags = search__rd_u8(&rd);
    if (flags & ~(unsigned)REC_RESTRICTED)
        return -1;
    r->restricted = (flags & REC_RESTRICTED) != 0;
    r->idlen = search__rd_str(&rd, &r->id);
    r->slen = search__rd_str(&rd, &r->status);
    r->clen = search__rd_str(&rd, &r->cls);
    r->ntags = search__rd_u8(&rd);
    for (size_t i = 0; i < r->ntags; i++)
        r->taglen[i] = search__rd_str(&rd, &r->tag[i]);
    r->nowners = search__rd_u8(&rd);
    if (r->nowners > 2)
        return -1;
    for (size_t i = 0; i < r->nowners; i++)
        r->ownerlen[i] = search__rd_str(&rd, &r->owner[i]);
    unsigned hi = search__rd_u8(&rd), lo = search__rd_u8(&rd);
    r->nterms = hi << 8 | lo;
    r->terms = rd;
    return rd.bad || r->idlen == 0 || r->idlen >= STORE_ID_MAX ? -1 : 0;
}

int search__rec_facets(const rec_t *r, search__facet_fn fn, void *ctx)
{
    const char *slash = memchr(r->id, '/', r->idlen);
    struct fv { char kind; const char *v; size_t n; } f[5 + 256 + 2];
    size_t nf = 0;
    f[nf++] = (struct fv){ 'a', "", 0 };
    f[nf++] = (struct fv){ 'd', r->id, slash ? (size_t)(slash - r->id) : r->idlen };
    f[nf++] = (struct fv){ 's', r->status, r->slen };
    if (r->clen)
        f[nf++] = (struct fv){ 'k', r->cls, r->clen };
    if (r->restricted)
        f[nf++] = (struct fv){ 'r', "", 0 };
    for (size_t i = 0; i < r->ntags; i++)
        f[nf++] = (struct fv){ 't', r->tag[i], r->taglen[i] };
    for (size_t i = 0; i < r->nowners; i++)
        f[nf++] = (struct fv){ 'o', r->owner[i], r->ownerlen[i] };
    for (size_t i = 0; i < nf; i++) {
        int rc = fn(ctx, f[i].kind, f[i].v, f[i].n > STORE_FACET_VALUE_MAX ? STORE_FACET_VALUE_MAX : f[i].n);
        if (rc)
            return rc;
    }
    return 0;
}
