/* node/compat_int.h - what the two files of the compatibility check share; only node/compat*.c
 * include it (the public API is node/compat.h).
 *
 *   node/compat_diff.c  two manifests -> a change list: the kinds and their verdicts, the change
 *                       list and its helpers, the schema and manifest diff;
 *   node/compat.c       the modes, the report against the earlier versions (transitive too), the
 *                       version rule and the JSON report;
 *   node/compat_prep.c  a version's schema prepared once for many comparisons (encodings, names).
 *
 * Must not: grow into a second public API; everything here exists for those two files. */
#ifndef TRIB_COMPAT_INT_H
#define TRIB_COMPAT_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <jansson.h>

#include "node/compat.h"

/* What a kind of change needs: a schema change a minor or major bump by the mode's verdict, a
 * metadata change a minor one, an annotation a patch. */
enum { COMPAT_CLASS_SCHEMA, COMPAT_CLASS_METADATA, COMPAT_CLASS_ANNOTATION };
int compat_kind_class(compat_kind_t k);

/* A growing list of changes; oom is set by whatever failed to allocate, and the list stays
 * usable (what could not be stored is missing). keep (optional): asked about each change before
 * it is stored (c's strings borrowed); 0 drops it (a transitive check's older versions keep only
 * what can matter: node/compat.c). */
typedef struct {
    compat_change_t *v;
    size_t n, cap;
    int oom;
    int (*keep)(void *ctx, const compat_change_t *c);
    void *keep_ctx;
} clist_t;

char *clist_strdup(clist_t *l, const char *s);                 /* NULL for NULL */
char *clist_printf(clist_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
compat_change_t *clist_push(clist_t *l);         /* a new zeroed slot at the end, or NULL */
void compat_change_clear(compat_change_t *c);    /* frees its strings and zeroes it */

/* A prepared schema (node/compat_prep.c), immutable once built but for refs. */
struct compat_prop {
    const char *name;            /* in schema; NULL: not a mapping with a string name */
    uint32_t hash;               /* of name, when first */
    int first;                   /* the first mapping of its name (the one compared) */
    const unsigned char *enc;    /* canonical encoding (in pool), NULL when none */
    size_t enc_len;
};
struct compat_prep {
    atomic_uint refs;
    json_t *schema;              /* compat_schema_of */
    char *key_order;             /* compat_key_order of schema */
    size_t n;                    /* json_array_size(schema) */
    struct compat_prop *prop;    /* [n] */
    int32_t *slots;              /* names: open addressing, index into prop or -1 */
    size_t nslots;               /* a power of two */
    unsigned char *pool;
};

compat_prep_t *compat_prep_build(clist_t *l, const Trib__Manifest *m, const json_t *doc);
/* The index of the first mapping named name, or -1. */
long compat_prep_find(const compat_prep_t *p, const char *name);
/* a's property i and b's property j have the same encoding (so are json_equal). */
int compat_prep_same(const compat_prep_t *a, size_t i, const compat_prep_t *b, size_t j);
/* The key's fields in key order ("a, b"), malloc'd; NULL (l->oom) when out of memory. */
char *compat_key_order(clist_t *l, const json_t *schema);

/* A manifest prepared for diffing: its document and prepared schema, built once per check. */
typedef struct {
    const Trib__Manifest *m;
    json_t *doc;
    compat_prep_t *prep;
} side_t;

/* s for m (doc: m's document, borrowed, NULL: parsed here unless prep is given and m is NULL;
 * prep: borrowed, NULL: built from m). m may be NULL with prep (an older version of a
 * transitive check, compared on its schema only). */
void compat_side_init_prepared(clist_t *l, side_t *s, const Trib__Manifest *m, json_t *doc,
                               const compat_prep_t *prep);
json_t *compat_schema_of(clist_t *l, const Trib__Manifest *m, const json_t *doc);
void compat_side_clear(side_t *s);

/* Appends to l every change from os (the earlier version) to ns, with its backward and forward
 * verdicts; breaking, bump and against are left for the caller. */
void compat_diff_manifests(clist_t *l, const side_t *os, const side_t *ns);
/* Only the schema part of compat_diff_manifests: what can break a mode (older versions of a
 * _TRANSITIVE check need nothing else: metadata and annotations never break one). */
void compat_diff_schema(clist_t *l, const side_t *os, const side_t *ns);

/* Two strings equal, NULL counting as "". */
static inline int compat_str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

#endif
