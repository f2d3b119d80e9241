/* node/metrics.h - Prometheus counters of the node and the text exporter for GET /metrics.
 * Counters are atomics, bumped from any thread. Must not: take locks on hot paths. */
#ifndef TRIB_METRICS_H
#define TRIB_METRICS_H

#include <stdint.h>
#include <stdio.h>

#define METRICS_ROUTES_MAX 32   /* HTTP route ids (node/http.c routes[]) */

struct node;

/* Counts one answer of route id r (< METRICS_ROUTES_MAX) with status. */
void metrics_http(unsigned r, unsigned status);
void metrics_records_appended(uint64_t n);
void metrics_records_read(uint64_t n);
void metrics_published(void);
void metrics_retired(void);
/* A publish the governance gate refused ("incompatible", "version_not_increased", "retired") or
 * found unchanged ("unchanged"); other reasons are not counted here. */
void metrics_gate(const char *reason);
void metrics_bytes_in(uint64_t n);
/* A write request answered 503 busy: every write worker busy and their queue full. */
void metrics_http_busy(void);
/* A connection to the HTTPS port whose TLS handshake failed (plain HTTP sent to it, most often). */
void metrics_tls_failed(void);
/* A message of libmicrohttpd's own (a request or connection it refused before the node saw it: a
 * header too big, over the connection limits; its errors). */
void metrics_http_server_message(void);
/* A routed read or live stream that failed after it began (node/stream.c: its error line sent). */
void metrics_routed_failed(void);
/* Writes the whole exposition (node counters, storage, gossip) to f; route_names[r] labels the
 * requests of route id r (nroutes of them). */
void metrics_render(struct node *n, FILE *f, const char *const *route_names, unsigned nroutes);

#endif
