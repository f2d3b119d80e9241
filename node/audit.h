/* node/audit.h - the owner's local audit log of decisions on confidential and restricted data
 * (DESIGN §13): who (subject, token id), which grant, which product, how many records, through
 * which node, allowed or refused and why. Also the owner's access decisions (grant, deny, revoke).
 *
 * Owns: DATA/audit.log, append-only NDJSON (one line per event, mode 0600), rotated to
 * DATA/audit.log.1 when it passes AUDIT_ROTATE_BYTES (so at most twice that is kept), and
 * reading the newest events back for GET /v1/audit.
 * Must not: log a token (only its id), block on anything but its own file, or be replicated:
 * the audit stays on the owner. */
#ifndef TRIB_AUDIT_H
#define TRIB_AUDIT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct node;

#define AUDIT_ROTATE_BYTES (16u << 20)
#define AUDIT_LIMIT_MAX 10000

typedef struct {
    int64_t time_ms;
    const char *subject;       /* the token's subject, or NULL/"" without a token */
    const char *token_id;      /* never the token */
    const char *grant_id;      /* the grant relied on, or NULL */
    const char *product_id;
    const char *entry_node;    /* hex id of the node the consumer asked (a relay, or this node) */
    const char *action;        /* "read", "stream", "grant", "deny", "revoke" */
    uint64_t records;          /* records served */
    int allowed;
    const char *reason;        /* why refused ("grant_required", ...) or a note */
} audit_event_t;

/* Appends e to the node's audit log (thread-safe); a write failure is logged (rate-limited) and
 * counted, never fatal. */
void audit_record(struct node *n, const audit_event_t *e);

/* The newest `limit` events (1..AUDIT_LIMIT_MAX), newest last, as a JSON array; NULL on error. */
json_t *audit_read(struct node *n, size_t limit, char *err, size_t errlen);

/* Events appended and append failures since start (for /metrics). */
void audit_counts(uint64_t *written, uint64_t *failed);

#endif
