/* node/metrics.c - node counters and the Prometheus text exposition (format 0.0.4). */
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include "gossip/gossip.h"
#include "node/agent.h"
#include "node/metrics.h"

#define MAX_STATUS 600

static const char *route_names[R_COUNT] = {
    "status", "members", "products", "product_get", "product_put", "product_delete",
    "records_post", "records_get", "stream", "metrics", "other",
};

static atomic_uint_fast64_t http_req[R_COUNT][MAX_STATUS];
static atomic_uint_fast64_t records_appended, records_read, published, retired, bytes_in;

void metrics_http(route_t r, unsigned status)
{
    if (r < R_COUNT && status < MAX_STATUS)
        atomic_fetch_add_explicit(&http_req[r][status], 1, memory_order_relaxed);
}
void metrics_records_appended(uint64_t n) { atomic_fetch_add_explicit(&records_appended, n, memory_order_relaxed); }
void metrics_records_read(uint64_t n) { atomic_fetch_add_explicit(&records_read, n, memory_order_relaxed); }
void metrics_published(void) { atomic_fetch_add_explicit(&published, 1, memory_order_relaxed); }
void metrics_retired(void) { atomic_fetch_add_explicit(&retired, 1, memory_order_relaxed); }
void metrics_bytes_in(uint64_t n) { atomic_fetch_add_explicit(&bytes_in, n, memory_order_relaxed); }

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, (unsigned long long)v);
}

static int count_product(void *ctx, const store_product_t *p)
{
    (void)p;
    ++*(uint64_t *)ctx;
    return 0;
}

void metrics_render(agent_t *a, FILE *f)
{
    fprintf(f, "# HELP trib_http_requests_total HTTP requests by route and status.\n"
               "# TYPE trib_http_requests_total counter\n");
    for (int r = 0; r < R_COUNT; r++)
        for (int s = 0; s < MAX_STATUS; s++) {
            uint64_t v = atomic_load_explicit(&http_req[r][s], memory_order_relaxed);
            if (v)
                fprintf(f, "trib_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n", route_names[r], s,
                        (unsigned long long)v);
        }
    counter(f, "trib_records_appended_total", "Records appended to this node's products.",
            atomic_load(&records_appended));
    counter(f, "trib_records_read_total", "Records served to readers.", atomic_load(&records_read));
    counter(f, "trib_products_published_total", "Publishes (create or update) accepted on this node.",
            atomic_load(&published));
    counter(f, "trib_products_retired_total", "Retires accepted on this node.", atomic_load(&retired));
    counter(f, "trib_http_request_bytes_total", "Request body bytes received.", atomic_load(&bytes_in));
    uint64_t nproducts = 0;
    store_products(a->st, NULL, count_product, &nproducts);
    fprintf(f, "# HELP trib_catalog_products Products in this node's catalog replica.\n"
               "# TYPE trib_catalog_products gauge\ntrib_catalog_products %llu\n",
            (unsigned long long)nproducts);
    fprintf(f, "# HELP trib_lmdb_map_size_bytes Current LMDB map size.\n"
               "# TYPE trib_lmdb_map_size_bytes gauge\ntrib_lmdb_map_size_bytes %zu\n",
            store_map_size(a->st));
    fprintf(f, "# HELP trib_uptime_seconds Seconds since the agent started.\n"
               "# TYPE trib_uptime_seconds gauge\ntrib_uptime_seconds %lld\n",
            (long long)(time(NULL) - a->started));
    if (a->gossip)
        gossip_metrics_render(a->gossip, f);
}
