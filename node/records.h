/* node/records.h - record validation: NDJSON bodies checked against a product's schema.
 *
 * Owns: splitting an NDJSON body into records, checking each against the schema (JSON object,
 * required fields present and not null, types match, date/timestamp in RFC 3339), and the
 * size limits. A body is accepted whole or refused whole.
 * Must not: store anything (the caller appends the accepted batch in one transaction). */
#ifndef TRIB_RECORDS_H
#define TRIB_RECORDS_H

#include <stddef.h>
#include "proto/tributary.pb-c.h"
#include "storage/store.h"

typedef struct {
    size_t max_body;      /* bytes in one request body   (default 64 MiB) */
    size_t max_record;    /* bytes in one record          (default 1 MiB) */
    size_t max_records;   /* records in one request       (default 100000) */
} records_limits_t;

extern const records_limits_t records_default_limits;

typedef struct record_schema record_schema_t;

record_schema_t *record_schema_new(const Trib__Manifest *m);
void record_schema_free(record_schema_t **sp);

/* Validates one record (one JSON object). err names the field: "amount_minor: expected integer". */
int record_validate(const record_schema_t *s, const char *data, size_t len, char *err, size_t errlen);

/* Splits body into records (blank lines skipped, trailing \r stripped), validating each.
 * On success *out (malloc'd array pointing into body) and *n. On failure returns -1 with
 * *status 413 (a limit) or 400 (bad record) and err "line 500: amount_minor: expected integer". */
int records_split(const record_schema_t *s, const char *body, size_t len,
                  const records_limits_t *lim, store_buf_t **out, size_t *n,
                  int *status, char *err, size_t errlen);

#endif
