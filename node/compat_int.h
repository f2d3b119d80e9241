/* node/compat_int.h - what the two files of the compatibility check share; only node/compat*.c
 * include it (the public API is node/compat.h).
 *
 *   node/compat_diff.c  two manifests -> a change list: the kinds and their verdicts, the change
 *                       list and its helpers, the schema and manifest diff;
 *   node/compat.c       the modes, the report against the earlier versions (transitive too), the
 *                       version rule and the JSON report.
 *
 * Must not: grow into a second public API; everything here exists for those two files. */
#ifndef TRIB_COMPAT_INT_H
#define TRIB_COMPAT_INT_H

#include <stddef.h>
#include <string.h>
#include <jansson.h>

#include "node/compat.h"

/* What a kind of change needs: a schema change a minor or major bump by the mode's verdict, a
 * metadata change a minor one, an annotation a patch. */
enum { COMPAT_CLASS_SCHEMA, COMPAT_CLASS_METADATA, COMPAT_CLASS_ANNOTATION };
int compat_kind_class(compat_kind_t k);

/* A growing list of changes; oom is set by whatever failed to allocate, and the list stays
 * usable (what could not be stored is missing). */
typedef struct {
    compat_change_t *v;
    size_t n, cap;
    int oom;
} clist_t;

char *clist_strdup(clist_t *l, const char *s);                 /* NULL for NULL */
char *clist_printf(clist_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
compat_change_t *clist_push(clist_t *l);         /* a new zeroed slot at the end, or NULL */
void compat_change_clear(compat_change_t *c);    /* frees its strings and zeroes it */

/* A manifest prepared for diffing: its document and schema, built once per check. */
typedef struct {
    const Trib__Manifest *m;
    json_t *doc, *schema;
    json_t *index;       /* the schema's properties by name, built once (prepared sides bring it) */
} side_t;

void compat_side_init(clist_t *l, side_t *s, const Trib__Manifest *m);
/* The same with m's document already parsed (borrowed; NULL: parse it). */
void compat_side_init_doc(clist_t *l, side_t *s, const Trib__Manifest *m, json_t *doc);
/* The same with the prepared schema too (prep: compat_prepare's, borrowed; NULL: built from m and
 * doc). m may be NULL with prep (an older version of a transitive check, compared on its schema
 * only). */
void compat_side_init_prepared(clist_t *l, side_t *s, const Trib__Manifest *m, json_t *doc, json_t *prep);
/* {"schema": the schema as compared, "index": its properties by name}: what compat_schema gives
 * callers to cache. NULL (l->oom) when out of memory. */
json_t *compat_prepare(clist_t *l, const Trib__Manifest *m, const json_t *doc);
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
