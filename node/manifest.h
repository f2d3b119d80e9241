/* node/manifest.h - data product manifests: YAML or JSON text -> validated Manifest.
 *
 * Owns: parsing (libfyaml for YAML, jansson for JSON), the field rules of DESIGN.md §8, and
 * keeping the whole document (unknown fields verbatim) as JSON in document_json.
 * Must not: sign, store or know about the network. */
#ifndef TRIB_MANIFEST_H
#define TRIB_MANIFEST_H

#include <stddef.h>
#include <jansson.h>
#include "proto/tributary.pb-c.h"

#define MANIFEST_MAX_BYTES      (1u << 20)            /* manifest text, YAML or JSON */
#define MANIFEST_MAX_ENCODED    ((1u << 20) - 8192)   /* packed Manifest: fits a signed entry */
#define MANIFEST_MAX_PROPERTIES 1000                  /* schema properties */

/* Parses and validates text (YAML, or JSON which is YAML too). node_domain, when non-NULL,
 * is the only domain accepted. On error returns NULL and err names the field and, where the
 * parser gives one, the line: "owners.business: required (line 12)". Free with manifest_free.
 * YAML scalars are typed by the YAML 1.2 core schema (plain 12 -> integer, "12" -> string);
 * aliases are expanded, merge keys (<<) refused. Text starting with '{' is read as JSON first
 * (errors then carry no line). Paths index lists from 0: "schema[2].logicalType". Status
 * defaults to active, classification to internal; document_json keeps the text as written.
 * Everything is malloc'd here: never call trib__manifest__free_unpacked on the result. */
Trib__Manifest *manifest_parse(const char *text, size_t len, const char *node_domain,
                               char *err, size_t errlen);
void manifest_free(Trib__Manifest **mp);              /* accepts NULL and *mp == NULL */

/* The manifest as the author wrote it (a new reference to a JSON object; json_decref it). */
json_t *manifest_document(const Trib__Manifest *m);

/* True for the sets of DESIGN.md §8 (names: entry_valid_name). */
int manifest_valid_semver(const char *s);
int manifest_valid_status(const char *s);
int manifest_valid_classification(const char *s);
int manifest_valid_logical_type(const char *s);

#endif
