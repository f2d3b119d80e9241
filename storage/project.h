/* storage/project.h - field projection of JSON records (DESIGN §13: the owner projects records to
 * a grant's field allow-list before they leave it).
 *
 * A record is one JSON object (node/records.c checked it on write); its projection keeps, in their
 * order and as their exact bytes, the top-level members whose name is in the allow-list, and drops
 * the others. Bytes that are not one JSON object (never stored so, but never trusted) project to
 * "{}": the allow-list fails closed. Pure functions over bytes, bounded by the input (no recursion),
 * so every reader of records can call them: node/stream.c (local reads) and
 * gossip/reads_owner.c (the owner side of routed reads) on a store_page_t's NDJSON.
 * Must not: allocate per record beyond one scratch buffer, or parse values. */
#ifndef TRIB_PROJECT_H
#define TRIB_PROJECT_H

#include <stddef.h>

/* Projects rec[0..len) to the names in fields (NULL-ended; a member matches when its name, as
 * written, equals one). out must hold len bytes (a projection is never longer; "{}" needs 2).
 * Returns the projection's length. */
size_t project_record(const char *rec, size_t len, const char *const *fields, char *out);

/* Projects every line of an NDJSON buffer in place (each record followed by '\n'); returns the
 * new length (<= len). fields NULL: nothing changes. -1 (as size_t: (size_t)-1) when out of memory,
 * buf then unchanged. */
size_t project_ndjson(char *buf, size_t len, const char *const *fields);

#endif
