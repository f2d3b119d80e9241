/* node/metrics.h - Prometheus counters of the node and the text exporter for GET /metrics.
 * Counters are atomics, bumped from any thread. Must not: take locks on hot paths. */
#ifndef TRIB_METRICS_H
#define TRIB_METRICS_H

#include <stdint.h>
#include <stdio.h>

typedef enum {
    R_STATUS, R_MEMBERS, R_PRODUCTS, R_PRODUCT_GET, R_PRODUCT_PUT, R_PRODUCT_DELETE,
    R_RECORDS_POST, R_RECORDS_GET, R_STREAM, R_METRICS, R_OTHER, R_COUNT
} route_t;

struct node;

void metrics_http(route_t r, unsigned status);
void metrics_records_appended(uint64_t n);
void metrics_records_read(uint64_t n);
void metrics_published(void);
void metrics_retired(void);
void metrics_bytes_in(uint64_t n);
/* Writes the whole exposition (node counters, storage, gossip) to f. */
void metrics_render(struct node *n, FILE *f);

#endif
