/* node/metrics.c - node counters and their Prometheus text exposition (format 0.0.4; the line
 * shapes are gossip/prom.c's). */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "gossip/gossip.h"
#include "gossip/prom.h"
#include "node/node.h"
#include "node/http_access.h"
#include "node/http_fed.h"
#include "node/metrics.h"
#include "storage/search.h"
#include "node/policy_node.h"
#include "node/redirect.h"
#include "node/rotate.h"

#define MAX_STATUS 600

static atomic_uint_fast64_t http_req[METRICS_ROUTES_MAX][MAX_STATUS];
static atomic_uint_fast64_t records_appended, records_read, published, retired, bytes_in, http_busy, tls_failed,
    server_messages, routed_failed;

void metrics_http(unsigned r, unsigned status)
{
    if (r < METRICS_ROUTES_MAX && status < MAX_STATUS)
        atomic_fetch_add_explicit(&http_req[r][status], 1, memory_order_relaxed);
}
void metrics_records_appended(uint64_t n) { atomic_fetch_add_explicit(&records_appended, n, memory_order_relaxed); }
void metrics_records_read(uint64_t n) { atomic_fetch_add_explicit(&records_read, n, memory_order_relaxed); }
void metrics_published(void) { atomic_fetch_add_explicit(&published, 1, memory_order_relaxed); }
void metrics_retired(void) { atomic_fetch_add_explicit(&retired, 1, memory_order_relaxed); }
/* The governance gate's refusals of publishes (node/gate.c), by reason, and no-op publishes. */
static const char *const gate_reasons[] = {"incompatible", "version_not_increased", "retired", "unchanged"};
#define GATE_REASONS (sizeof gate_reasons / sizeof gate_reasons[0])
static atomic_uint_fast64_t gate_count[GATE_REASONS];
void metrics_gate(const char *reason)
{
    for (size_t i = 0; reason && i < GATE_REASONS; i++)
        if (strcmp(reason, gate_reasons[i]) == 0)
            atomic_fetch_add_explicit(&gate_count[i], 1, memory_order_relaxed);
}
void metrics_bytes_in(uint64_t n) { atomic_fetch_add_explicit(&bytes_in, n, memory_order_relaxed); }
void metrics_http_busy(void) { atomic_fetch_add_explicit(&http_busy, 1, memory_order_relaxed); }
void metrics_tls_failed(void) { atomic_fetch_add_explicit(&tls_failed, 1, memory_order_relaxed); }
void metrics_http_server_message(void) { atomic_fetch_add_explicit(&server_messages, 1, memory_order_relaxed); }
void metrics_routed_failed(void) { atomic_fetch_add_explicit(&routed_failed, 1, memory_order_relaxed); }

void metrics_render(node_t *a, FILE *f, const char *const *route_names, unsigned nroutes)
{
    prom_family(f, "trib_http_requests_total", "counter", "HTTP requests by route and status.");
    for (unsigned r = 0; r < nroutes && r < METRICS_ROUTES_MAX; r++)
        for (int s = 0; s < MAX_STATUS; s++) {
            uint64_t v = atomic_load_explicit(&http_req[r][s], memory_order_relaxed);
            char labels[64];
            if (!v)
                continue;
            snprintf(labels, sizeof labels, "route=\"%s\",status=\"%d\"", route_names[r] ? route_names[r] : "other", s);
            prom_sample(f, "trib_http_requests_total", labels, v);
        }
    prom_counter(f, "trib_records_appended_total", "Records appended to this node's products.",
                 atomic_load(&records_appended));
    prom_counter(f, "trib_records_read_total", "Records served to readers.", atomic_load(&records_read));
    prom_counter(f, "trib_products_published_total",
                 "Publishes (create or update) accepted on this node.", atomic_load(&published));
    prom_counter(f, "trib_products_retired_total", "Retires accepted on this node.", atomic_load(&retired));
    prom_family(f, "trib_publish_refused_total", "counter",
                "Publishes the governance gate refused, by reason (422 incompatible, version_not_increased; 409 retired).");
    for (size_t i = 0; i < GATE_REASONS - 1; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "reason=\"%s\"", gate_reasons[i]);
        prom_sample(f, "trib_publish_refused_total", labels, atomic_load(&gate_count[i]));
    }
    prom_counter(f, "trib_publish_unchanged_total", "Publishes of the latest manifest again: no-ops, no entry.",
                 atomic_load(&gate_count[GATE_REASONS - 1]));
    prom_counter(f, "trib_http_request_bytes_total", "Request body bytes received.", atomic_load(&bytes_in));
    prom_counter(f, "trib_http_busy_total",
                 "Write requests answered 503 busy: every write worker busy and their queue full (--write-workers).",
                 atomic_load(&http_busy));
    prom_counter(f, "trib_http_tls_failed_total",
                 "Connections to the HTTPS port whose TLS handshake failed (most often plain HTTP sent to it).",
                 atomic_load(&tls_failed));
    prom_counter(f, "trib_http_server_messages_total",
                 "Messages of libmicrohttpd's own: requests and connections it refused before the node saw them "
                 "(a header too big, over the connection limits) and its errors; logged at most once per 10 s.",
                 atomic_load(&server_messages));
    prom_counter(f, "trib_http_routed_failed_total",
                 "Routed reads and live streams of another node's product that failed after they began (the "
                 "owner refused them or was lost midway: an error line ended them); logged at most once per 10 s.",
                 atomic_load(&routed_failed));
    uint64_t nproducts = 0;   /* LMDB's own count, as /v1/status: a scrape reads no product */
    store_products_count(a->st, &nproducts);
    prom_gauge(f, "trib_catalog_products", "Products in this node's catalog replica.", nproducts);
    prom_gauge(f, "trib_lmdb_map_size_bytes", "Current LMDB map size.", store_map_size(a->st));
    prom_counter(f, "trib_lmdb_snapshot_giveups_total",
                 "Reads that began their LMDB snapshot 64 times, a commit of this node starting each time, and "
                 "kept the last (consistent, maybe newer than it names); logged at most once a minute.",
                 store_snapshot_giveups(a->st));
    store_search_size_t ss;
    if (store_search_size(a->st, &ss) == 0) {
        prom_family(f, "trib_search_columns_total", "counter",
                    "Search facet columns made for a new index generation: read whole (first query, a gap in "
                    "the change log, many products changed) or updated from an older generation's by what "
                    "changed.");
        prom_sample(f, "trib_search_columns_total", "how=\"read_whole\"", ss.column_builds);
        prom_sample(f, "trib_search_columns_total", "how=\"updated\"", ss.column_updates);
    }
    prom_gauge(f, "trib_uptime_seconds", "Seconds since the agent started.",
               (uint64_t)(time(NULL) - a->started));
    prom_gauge(f, "trib_unclean_start",
               "1 when the previous agent on this data dir did not stop cleanly (killed, crashed, power cut).",
               a->unclean_pid != 0);
    http_access_metrics(f);
    http_fed_metrics(f);
    redirect_metrics(f);         /* trib_http_redirect* (node/redirect.c) */
    if (a->gossip)
        gossip_metrics_render(a->gossip, f);
    policy_node_metrics(a, f);   /* trib_policy_* (node/policy_node.c) */
    rotate_metrics(a, f);        /* trib_key_rotation_* (node/rotate.c) */
}
