/* node/compat.h - schema compatibility and versioning of data products (DESIGN.md §14).
 *
 * Owns: the diff of two manifests of one product (each change with a path, a kind, its verdict
 * under reader-resolution semantics, and the version bump it needs), the compatibility modes
 * (BACKWARD, FORWARD, FULL, each also _TRANSITIVE, and NONE), the overall verdict of a new
 * manifest against the earlier versions, the version rule (versions only go up, by at least the
 * bump the changes need), and the JSON report for `POST /v1/products/{id}/check` and `trib diff`.
 * Must not: store, sign, evaluate policy sets, or know about HTTP.
 *
 * Semantics (research/governance-anchors.md C.1, as Avro and Confluent): a consumer reading with
 * schema R a record written under W ignores fields R does not name; a field of R the record lacks
 * reads as null if R's field is optional or has a `default`, else it is an error; a value must
 * match R's logicalType, with the promotions integer->number and date|timestamp->string.
 * BACKWARD = the new schema reads everything written under the old one; FORWARD = the old schema
 * reads what is written under the new one; FULL = both; _TRANSITIVE = against every earlier
 * version, not only the latest; NONE = no check, so every schema change needs a major version.
 *
 * What is compared (ODCS v3 property names): per property name, logicalType, required,
 * primaryKey (and the key's order: primaryKeyPosition, else schema order), unique, `default`,
 * `classification`, logicalTypeOptions (minimum/maximum and their exclusive forms - numbers, or
 * RFC 3339 dates/UTC timestamps as ODCS gives them -, minLength/maxLength, minItems/maxItems,
 * pattern, format, multipleOf, uniqueItems, and `enum`, which is ours: ODCS 3.1 has none),
 * nested `properties` of an object and `items` of an array, recursively; the product's
 * classification; everything else as annotation (title, description, tags, a property's
 * description, businessName and examples: patch) or metadata (owners, status, sla, ports,
 * compatibility, unknown options, any other field: minor). A `default` is our extension too
 * (C.2's "required with a default"). */
#ifndef TRIB_COMPAT_H
#define TRIB_COMPAT_H

#include <stddef.h>
#include <jansson.h>
#include "proto/tributary.pb-c.h"

typedef enum {
    COMPAT_BACKWARD,
    COMPAT_FORWARD,
    COMPAT_FULL,
    COMPAT_BACKWARD_TRANSITIVE,
    COMPAT_FORWARD_TRANSITIVE,
    COMPAT_FULL_TRANSITIVE,
    COMPAT_NONE,
} compat_mode_t;

#define COMPAT_DEFAULT_MODE COMPAT_BACKWARD_TRANSITIVE

typedef enum { COMPAT_BUMP_NONE, COMPAT_BUMP_PATCH, COMPAT_BUMP_MINOR, COMPAT_BUMP_MAJOR } compat_bump_t;

typedef enum {
    COMPAT_FIELD_ADDED_OPTIONAL,     /* or required with a default */
    COMPAT_FIELD_ADDED_REQUIRED,     /* required, no default */
    COMPAT_FIELD_REMOVED_OPTIONAL,   /* or required with a default */
    COMPAT_FIELD_REMOVED_REQUIRED,
    COMPAT_OPTIONAL_TO_REQUIRED,
    COMPAT_REQUIRED_TO_OPTIONAL,
    COMPAT_TYPE_WIDENED,             /* integer->number, date|timestamp->string */
    COMPAT_TYPE_NARROWED,            /* the reverse */
    COMPAT_TYPE_CHANGED,             /* any other logicalType change */
    COMPAT_PRIMARY_KEY_CHANGED,      /* added to / removed from / reordered in the key, key type */
    COMPAT_ENUM_VALUE_ADDED,
    COMPAT_ENUM_VALUE_REMOVED,
    COMPAT_CONSTRAINT_RELAXED,
    COMPAT_CONSTRAINT_TIGHTENED,
    COMPAT_CONSTRAINT_CHANGED,       /* neither looser nor tighter (pattern, format replaced) */
    COMPAT_DEFAULT_CHANGED,
    COMPAT_CLASSIFICATION_RAISED,
    COMPAT_CLASSIFICATION_LOWERED,
    COMPAT_METADATA_CHANGED,         /* owners, status, sla, ports, unknown fields: minor */
    COMPAT_ANNOTATION_CHANGED,       /* title, descriptions, tags, examples: patch */
} compat_kind_t;

#define COMPAT_MAX_AGAINST 16   /* versions named per change; the rest are counted */

typedef struct {
    char *path;          /* "schema.amount_minor.logicalType", "schema.payer.properties.iban" */
    compat_kind_t kind;
    char *from, *to;     /* old and new value as short text (JSON for non-strings), or NULL */
    int backward;        /* the new schema reads data written under the old one */
    int forward;         /* the old schema reads data written under the new one */
    compat_bump_t bump;  /* under the report's mode: patch, minor, or major when it breaks it */
    int breaking;        /* breaks the report's mode (against a version in the mode's scope) */
    char *against;       /* versions this change is seen against, latest first: "1.1.0, 1.0.0"
                            (the first COMPAT_MAX_AGAINST of them) */
    size_t n_against;    /* how many versions it is seen against, all counted */
    char *message;       /* one sentence for a person */
} compat_change_t;

typedef struct {
    compat_mode_t mode;
    char *from_version;  /* the latest earlier version */
    char *to_version;
    int compatible;      /* no change breaks the mode (always 1 under NONE) */
    compat_bump_t required;
    size_t n;
    compat_change_t *changes;   /* changes against the latest version, then breaking changes
                                   against older ones (transitive modes) */
} compat_report_t;

/* Compares next with the earlier versions of the same product, oldest first (earlier[n-1] is the
 * latest; non-transitive modes look only at it). Returns the report, or NULL with err when the
 * manifests are not comparable (different product, n == 0, no memory). */
compat_report_t *compat_check(const Trib__Manifest *const *earlier, size_t n,
                              const Trib__Manifest *next, compat_mode_t mode,
                              char *err, size_t errlen);
/* The same with the earlier versions' documents already parsed (docs[i]: manifest_document of
 * earlier[i], borrowed, or NULL to parse it here): a caller checking against many versions
 * keeps them (node/gate.c caches them by catalog seq; a document is never modified here). */
compat_report_t *compat_check_docs(const Trib__Manifest *const *earlier, json_t *const *docs, size_t n,
                                   const Trib__Manifest *next, compat_mode_t mode,
                                   char *err, size_t errlen);
/* What a check compares of a version, prepared once (node/compat_prep.c): its schema, each
 * property's canonical encoding and a table of names, so a property unchanged between two
 * versions is seen without walking either. Immutable and shared between threads by reference. */
typedef struct compat_prep compat_prep_t;

/* m's prepared schema (doc: m's document, borrowed, or NULL to parse it): a new reference, NULL
 * when out of memory. */
compat_prep_t *compat_prepare(const Trib__Manifest *m, json_t *doc);
compat_prep_t *compat_prep_ref(const compat_prep_t *p);   /* a new reference to p (NULL: NULL) */
void compat_prep_unref(compat_prep_t **p);                /* accepts NULL and *p == NULL */

/* One earlier version as a caller may have prepared it (node/gate.c caches doc and prep by
 * catalog seq: an entry never changes; nothing given is modified here). */
typedef struct {
    const Trib__Manifest *m;   /* required for the latest; an older one may be NULL when prep is given */
    const char *version;       /* NULL: m->version */
    json_t *doc;               /* m's manifest_document, borrowed, or NULL to parse it here */
    const compat_prep_t *prep; /* compat_prepare of it, borrowed, or NULL to build it here */
} compat_version_t;

/* compat_check_docs with prepared versions, and next's document already parsed (next_doc,
 * borrowed; NULL: parse it). */
compat_report_t *compat_check_versions(const compat_version_t *earlier, size_t n, const Trib__Manifest *next,
                                       json_t *next_doc, compat_mode_t mode, char *err, size_t errlen);
void compat_report_free(compat_report_t **rp);   /* accepts NULL and *rp == NULL */

/* The version rule for publishing next after the report's latest version: 0, or -1 with err:
 * malformed version; a downgrade; the same version with different content; a step smaller than
 * the required bump ("breaking change under BACKWARD_TRANSITIVE: ... needs a major version, e.g.
 * 2.0.0"). An unchanged manifest (report->n == 0) at the same version passes (publish then
 * answers `unchanged`). While the major is 0, a minor step is enough for a breaking change
 * (semver §4). */
int compat_version_check(const compat_report_t *r, char *err, size_t errlen);

/* The report for POST /v1/products/{id}/check and `trib diff` (publish is refused, 422, exactly
 * when version_ok is false; `compatible` alone says whether the mode holds, as Confluent's
 * is_compatible, and may be false for an accepted new major):
 * {"compatible", "mode", "from", "to", "required_bump", "version_ok", "version_error"?,
 *  "messages": [...breaking changes...], "changes": [{path, change, from?, to?, backward,
 *  forward, full, verdicts: {MODE: compatible under MODE, for every mode}, breaking (under the
 *  report's mode), bump, severity (error|warning|info), against_versions, against_count,
 *  message}]}.
 * A new reference, or NULL when out of memory. */
json_t *compat_report_json(const compat_report_t *r);

/* "BACKWARD_TRANSITIVE" <-> mode, case-sensitive as in the manifest; -1 for an unknown name. */
int compat_mode_parse(const char *s, compat_mode_t *out);
const char *compat_mode_name(compat_mode_t m);

/* The mode a manifest declares in its `compatibility` field (kept verbatim in document_json),
 * COMPAT_DEFAULT_MODE when it has none. -1 with err (and *out the default) for anything else:
 * "compatibility: \"backward\" is not a mode; expected one of BACKWARD, ...". */
int compat_manifest_mode(const Trib__Manifest *m, compat_mode_t *out, char *err, size_t errlen);
/* The same from the manifest's document already parsed (NULL: none, the default). */
int compat_doc_mode(const json_t *doc, compat_mode_t *out, char *err, size_t errlen);
const char *compat_bump_name(compat_bump_t b);   /* "none" "patch" "minor" "major" */
const char *compat_kind_name(compat_kind_t k);   /* "field_added_optional", "type_changed" ... */

#endif
