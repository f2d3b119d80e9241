/* node/records.h - record validation: NDJSON bodies checked against a product's schema
 * (node/records.c: one record; node/records_body.c: a body of them).
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
    size_t threads;       /* validation threads for large bodies: 0 = online CPUs (at most 8),
                             1 = the caller's thread only (default 0) */
} records_limits_t;

extern const records_limits_t records_default_limits;

typedef struct record_schema record_schema_t;

/* Copies names, types and required flags from m. A logicalType this version does not know
 * accepts any value. NULL on allocation failure or m == NULL. */
record_schema_t *record_schema_new(const Trib__Manifest *m);
void record_schema_free(record_schema_t **sp);

/* Validates one record (one JSON object, duplicate keys refused). err names the field and what
 * was expected and got: "amount_minor: expected integer, got string". A required property must
 * be present and not null; an optional one may be absent or null; unknown properties are kept.
 * Malformed JSON: "invalid JSON: trailing garbage (column 9)" (columns count characters from 1).
 * When a record has several problems, malformed JSON wins, then the first property in schema
 * order. */
int record_validate(const record_schema_t *s, const char *data, size_t len, char *err, size_t errlen);

/* The same check with its state kept from record to record (one validator per thread, as
 * records_split uses it): no allocation per record. err is not made UTF-8-safe here. */
typedef struct record_validator record_validator_t;
record_validator_t *record_validator_new(const record_schema_t *s);   /* NULL on OOM */
int record_validator_check(record_validator_t *v, const char *data, size_t len, char *err,
                           size_t errlen);
int record_validator_oom(const record_validator_t *v);   /* the last check failed for memory */
void record_validator_free(record_validator_t **vp);

/* Splits body into records (blank lines skipped, trailing \r stripped), validating each.
 * On success *out (malloc'd array pointing into body) and *n. On failure returns -1 with
 * *status 413 (a limit) or 400 (bad record, or no records at all; 500 only when out of memory)
 * and err "line 500: amount_minor: expected integer, got string". Lines count from 1, blank ones
 * included. lim == NULL means records_default_limits. */
int records_split(const record_schema_t *s, const char *body, size_t len,
                  const records_limits_t *lim, store_buf_t **out, size_t *n,
                  int *status, char *err, size_t errlen);

/* RFC 3339 full-date "YYYY-MM-DD" (a real calendar date) and date-time
 * "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" ('t', 'z' and ' ' accepted, second 60 allowed). */
int records_valid_date(const char *s, size_t n);
int records_valid_timestamp(const char *s, size_t n);

#endif
