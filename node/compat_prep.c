/* node/compat_prep.c - a schema prepared for comparison: built once per version (node/gate.c
 * caches it by catalog seq), then compared with many new versions.
 *
 * Owns: the schema as compared (compat_schema_of's mappings), each property's name, whether it
 * is the first of its name, and its canonical encoding (equal encodings => json_equal, so a
 * property unchanged between two versions is seen without walking either tree), a table of the
 * names, the key fields in key order, and the reference count.
 * Must not: decide what changed (node/compat_diff.c does, and walks the trees only where the
 * encodings differ), or be modified once built: it is shared between threads. */
#include "node/compat_int.h"
#include "node/manifest.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ENC_DEPTH 80   /* deeper than the manifest parser allows: encoding gives up (no summary) */

typedef struct {
    unsigned char *p;
    size_t n, cap;
    int bad;
} buf_t;

static void put(buf_t *b, const void *s, size_t n)
{
    if (b->bad)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *np = realloc(b->p, cap);
        if (np == NULL) {
            b->bad = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void put_len(buf_t *b, char tag, size_t n)
{
    uint64_t v = n;
    put(b, &tag, 1);
    put(b, &v, sizeof v);
}

typedef struct {
    const char *k;
    size_t len;
    const json_t *v;
} kv_t;

static int kv_cmp(const void *a, const void *b)
{
    const kv_t *x = a, *y = b;
    int c = memcmp(x->k, y->k, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* A self-delimiting encoding of v, one per JSON value (object keys sorted, exact bytes, numbers
 * by type and bits): two values with the same encoding are json_equal. (The converse fails only
 * for reals 0.0 and -0.0: callers then compare the trees, as without an encoding.) */
static void enc(buf_t *b, const json_t *v, int depth)
{
    if (depth > ENC_DEPTH) {
        b->bad = 1;
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        kv_t stack[16], *kv = n <= 16 ? stack : malloc(n * sizeof *kv);
        if (kv == NULL) {
            b->bad = 1;
            return;
        }
        const char *k;
        size_t klen;
        json_t *x;
        json_object_keylen_foreach((json_t *)v, k, klen, x) {
            if (i < n)
                kv[i++] = (kv_t){k, klen, x};
        }
        qsort(kv, i, sizeof *kv, kv_cmp);
        put_len(b, 'o', i);
        for (size_t j = 0; j < i && !b->bad; j++) {
            put_len(b, 'k', kv[j].len);
            put(b, kv[j].k, kv[j].len);
            enc(b, kv[j].v, depth + 1);
        }
        if (kv != stack)
            free(kv);
        return;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        put_len(b, 'a', n);
        for (size_t i = 0; i < n && !b->bad; i++)
            enc(b, json_array_get(v, i), depth + 1);
        return;
    }
    case JSON_STRING:
        put_len(b, 's', json_string_length(v));
        put(b, json_string_value(v), json_string_length(v));
        return;
    case JSON_INTEGER: {
        json_int_t x = json_integer_value(v);
        put(b, "i", 1);
        put(b, &x, sizeof x);
        return;
    }
    case JSON_REAL: {
        double x = json_real_value(v);
        put(b, "r", 1);
        put(b, &x, sizeof x);
        return;
    }
    case JSON_TRUE: put(b, "t", 1); return;
    case JSON_FALSE: put(b, "f", 1); return;
    case JSON_NULL: put(b, "n", 1); return;
    }
    b->bad = 1;
}

static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

long compat_prep_find(const compat_prep_t *p, const char *name)
{
    if (p == NULL || name == NULL || p->nslots == 0)
        return -1;
    uint32_t h = hash_name(name);
    for (size_t s = h & (p->nslots - 1);; s = (s + 1) & (p->nslots - 1)) {
        int32_t i = p->slots[s];
        if (i < 0)
            return -1;
        if (p->prop[i].hash == h && strcmp(p->prop[i].name, name) == 0)
            return i;
    }
}

int compat_prep_same(const compat_prep_t *a, size_t i, const compat_prep_t *b, size_t j)
{
    const struct compat_prop *x = &a->prop[i], *y = &b->prop[j];
    return x->enc != NULL && y->enc != NULL && x->enc_len == y->enc_len && memcmp(x->enc, y->enc, x->enc_len) == 0;
}

compat_prep_t *compat_prep_build(clist_t *l, const Trib__Manifest *m, const json_t *doc)
{
    compat_prep_t *p = calloc(1, sizeof *p);
    if (p == NULL) {
        l->oom = 1;
        return NULL;
    }
    atomic_init(&p->refs, 1);
    p->schema = compat_schema_of(l, m, doc);
    p->n = json_array_size(p->schema);
    p->key_order = p->schema ? compat_key_order(l, p->schema) : NULL;
    size_t nslots = 8;
    while (nslots < p->n * 2)
        nslots *= 2;
    p->prop = calloc(p->n ? p->n : 1, sizeof *p->prop);
    p->slots = malloc(nslots * sizeof *p->slots);
    if (p->schema == NULL || p->key_order == NULL || p->prop == NULL || p->slots == NULL) {
        l->oom = 1;
        compat_prep_unref(&p);
        return NULL;
    }
    p->nslots = nslots;
    for (size_t s = 0; s < nslots; s++)
        p->slots[s] = -1;
    buf_t b = {0};
    size_t *off = calloc(p->n ? p->n : 1, sizeof *off);
    if (off == NULL)
        b.bad = 1;
    for (size_t i = 0; i < p->n; i++) {
        const json_t *e = json_array_get(p->schema, i);
        const json_t *nm = json_object_get(e, "name");
        struct compat_prop *x = &p->prop[i];
        x->name = json_is_object(e) && json_is_string(nm) ? json_string_value(nm) : NULL;
        if (x->name != NULL && compat_prep_find(p, x->name) < 0) {   /* the first of its name */
            x->first = 1;
            x->hash = hash_name(x->name);
            size_t s = x->hash & (nslots - 1);
            while (p->slots[s] >= 0)
                s = (s + 1) & (nslots - 1);
            p->slots[s] = (int32_t)i;
        }
        if (off != NULL)
            off[i] = b.n;
        enc(&b, e, 0);
    }
    size_t encoded = b.n, *noff = off != NULL ? calloc(p->n ? p->n : 1, sizeof *noff) : NULL;
    for (size_t i = 0; noff != NULL && i < p->n; i++)   /* the names beside: a lookup reads one block */
        if (p->prop[i].first) {
            noff[i] = b.n;
            put(&b, p->prop[i].name, strlen(p->prop[i].name) + 1);
        }
    if (!b.bad && noff != NULL) {   /* else no encodings: every comparison walks the trees, as it did */
        p->pool = b.p;
        for (size_t i = 0; i < p->n; i++) {
            p->prop[i].enc = p->pool + off[i];
            p->prop[i].enc_len = (i + 1 < p->n ? off[i + 1] : encoded) - off[i];
            if (p->prop[i].first)
                p->prop[i].name = (const char *)p->pool + noff[i];
        }
    } else
        free(b.p);
    free(off);
    free(noff);
    return p;
}

compat_prep_t *compat_prepare(const Trib__Manifest *m, json_t *doc)
{
    if (m == NULL)
        return NULL;
    clist_t l = {0};
    json_t *own = doc != NULL ? NULL : manifest_document(m);
    compat_prep_t *p = compat_prep_build(&l, m, doc != NULL ? doc : own);
    json_decref(own);
    if (l.oom)
        compat_prep_unref(&p);
    return p;
}

compat_prep_t *compat_prep_ref(const compat_prep_t *p)
{
    compat_prep_t *q = (compat_prep_t *)p;   /* the count is the only thing that changes */
    if (q != NULL)
        atomic_fetch_add(&q->refs, 1);
    return q;
}

void compat_prep_unref(compat_prep_t **pp)
{
    if (pp == NULL || *pp == NULL)
        return;
    compat_prep_t *p = *pp;
    *pp = NULL;
    if (atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    json_decref(p->schema);
    free(p->key_order);
    free(p->prop);
    free(p->slots);
    free(p->pool);
    free(p);
}
