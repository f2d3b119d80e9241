/* bench/hidden.c - what restricted products cost a catalog search made with a token (DESIGN §13):
 * store_search asks, for every restricted product in the catalog, whether the caller sees it in
 * full (store_query_t.sees). Before: each answer looked the caller's grant up in the access index
 * (grants_active: a read transaction and a cursor per product). Now: the caller's active grants
 * are looked up once per search (grants_active_products, what auth_viewer_grants does) and each
 * answer is a binary search; and with store_query_t.sees_only (what view_products passes) only
 * the caller's candidates (its own domain's restricted products, its granted ones) are asked about
 * at all. All three are timed in the same run over the same store: the unfiltered
 * listing (limit 20), thread CPU time, median of ROUNDS; printed, never asserted.
 * Usage: bench/hidden [PRODUCTS [RESTRICTED [GRANTED]]] (default 10000 2000 20). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "gossip/catalog.h"
#include "gossip/log.h"
#include "node/grants.h"
#include "storage/access.h"
#include "storage/search.h"

#define ROUNDS 21
#define SUBJECT "ana@growth"

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench/hidden: %s: %s\n", what, err);
    exit(1);
}

typedef struct {
    node_t *n;
    int64_t now;
    char (*ids)[STORE_ID_MAX];
    long nids;
    long asked;
} viewer_t;

static int sees_lookup(void *ctx, const char *id)   /* before: a grant lookup per product */
{
    viewer_t *v = ctx;
    grant_info_t g;
    v->asked++;
    return grants_active(v->n, SUBJECT, id, v->now, &g) == 1;
}

static int id_cmp(const void *a, const void *b) { return strcmp(a, b); }

static int sees_once(void *ctx, const char *id)    /* now: the grants of the search, looked up once */
{
    viewer_t *v = ctx;
    v->asked++;
    return v->nids > 0 && bsearch(id, v->ids, (size_t)v->nids, sizeof *v->ids, id_cmp) != NULL;
}

static void access_entry(catalog_t *c, Trib__AccessKind kind, const char *req, const char *grant, const char *product,
                         int64_t exp)
{
    Trib__AccessChange a = TRIB__ACCESS_CHANGE__INIT;
    a.kind = kind;
    a.request_id = (char *)req;
    a.grant_id = (char *)grant;
    a.product_id = (char *)product;
    a.subject = SUBJECT;
    a.purpose = "bench";
    a.days = 30;
    a.expires_ms = exp;
    uint64_t seq;
    uint8_t *out = NULL;
    size_t len = 0;
    char err[256];
    if (catalog_publish_access(c, &a, &seq, &out, &len, err, sizeof err) != 0)
        die("access entry", err);
    free(out);
}

static size_t run(store_t *st, store_query_t *q, size_t *total);

static size_t search(store_t *st, viewer_t *v, int (*sees)(void *, const char *), size_t *total)
{
    store_query_t q = {.limit = 20, .sees = sees, .sees_ctx = v};
    return run(st, &q, total);
}

/* The caller is of domain growth (no restricted product there): candidates are its grants. */
static size_t search_only(store_t *st, viewer_t *v, size_t *total)
{
    store_query_t q = {.limit = 20, .sees = sees_once, .sees_ctx = v, .sees_only = 1, .sees_domain = "growth",
                       .sees_ids = (const char (*)[STORE_ID_MAX])v->ids, .nsees_ids = v->nids > 0 ? (size_t)v->nids : 0};
    return run(st, &q, total);
}

static size_t run(store_t *st, store_query_t *qp, size_t *total)
{
    store_query_t q = *qp;
    store_result_t r;
    char err[256];
    if (store_search(st, &q, &r, err, sizeof err) != 0)
        die("store_search", err);
    *total = r.total;
    size_t hits = r.nhits;
    store_result_free(&r);
    return hits;
}

int main(int argc, char **argv)
{
    long nprod = argc > 1 ? atol(argv[1]) : 10000, nres = argc > 2 ? atol(argv[2]) : 2000,
         ngrant = argc > 3 ? atol(argv[3]) : 20;
    if (sodium_init() < 0 || nprod < 1 || nres > nprod || ngrant > nres)
        return 1;
    log_set_level(LOG_WARN);
    char dir[] = "/tmp/trib-bench-hidden-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char err[256];
    store_opts_t so = {.nosync = 1};
    store_t *st = store_open(dir, &so, err, sizeof err);
    if (!st)
        die("store_open", err);
    identity_t pay, gro;
    uint8_t seed[32];
    memset(seed, 1, sizeof seed);
    crypto_sign_seed_keypair(pay.pk, pay.sk, seed);
    memset(seed, 2, sizeof seed);
    crypto_sign_seed_keypair(gro.pk, gro.sk, seed);
    catalog_t *cp = catalog_new(st, &pay, "payments"), *cg = catalog_new(st, &gro, "growth");
    fprintf(stderr, "bench/hidden: publishing %ld products (%ld restricted)...\n", nprod, nres);
    for (long i = 0; i < nprod; i++) {
        char name[64], title[64];
        snprintf(name, sizeof name, "product-%06ld", i);
        snprintf(title, sizeof title, "Product %ld", i);
        Trib__Manifest m = TRIB__MANIFEST__INIT;
        m.domain = "payments";
        m.name = name;
        m.version = "1.0.0";
        m.status = "active";
        m.title = title;
        m.purpose = "bench";
        m.owner_business = "a@example.com";
        m.owner_technical = "b@example.com";
        m.classification = i % (nprod / (nres ? nres : 1)) == 0 && i / (nprod / (nres ? nres : 1)) < nres
                               ? "restricted" : "internal";
        uint64_t seq;
        uint8_t *out = NULL;
        size_t len = 0;
        if (catalog_publish(cp, &m, NULL, &seq, &out, &len, err, sizeof err) != 0)
            die("catalog_publish", err);
        free(out);
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t t = (int64_t)now.tv_sec * 1000, step = nres ? nprod / nres : 1;
    for (long i = 0; i < ngrant; i++) {
        char req[32], grant[32], product[64];
        snprintf(req, sizeof req, "req-%016lx", (unsigned long)i);
        snprintf(grant, sizeof grant, "grant-%016lx", (unsigned long)i);
        snprintf(product, sizeof product, "payments/product-%06ld", i * step);
        access_entry(cg, TRIB__ACCESS_KIND__ACCESS_REQUEST, req, "", product, 0);
        access_entry(cp, TRIB__ACCESS_KIND__ACCESS_GRANT, req, grant, product, t + 86400000LL);
    }
    node_t n;
    memset(&n, 0, sizeof n);
    n.st = st;

    uint64_t before[ROUNDS], after[ROUNDS], only[ROUNDS];
    size_t tb = 0, ta = 0, hb = 0, ha = 0, to = 0, ho = 0;
    long asked_b = 0, asked_a = 0, asked_o = 0;
    for (int r = 0; r < ROUNDS; r++) {
        viewer_t v = {.n = &n, .now = t};
        uint64_t a = cpu_ns();
        hb = search(st, &v, sees_lookup, &tb);
        uint64_t b = cpu_ns();
        asked_b = v.asked;
        viewer_t w = {.n = &n, .now = t};
        w.nids = grants_active_products(&n, SUBJECT, t, &w.ids);
        ha = search(st, &w, sees_once, &ta);
        uint64_t c = cpu_ns();
        asked_a = w.asked;
        free(w.ids);
        viewer_t o = {.n = &n, .now = t};   /* and asked about its candidates only (sees_only) */
        o.nids = grants_active_products(&n, SUBJECT, t, &o.ids);
        ho = search_only(st, &o, &to);
        uint64_t d = cpu_ns();
        asked_o = o.asked;
        free(o.ids);
        before[r] = b - a, after[r] = c - b, only[r] = d - c;
    }
    qsort(before, ROUNDS, sizeof *before, cmp_u64);
    qsort(after, ROUNDS, sizeof *after, cmp_u64);
    qsort(only, ROUNDS, sizeof *only, cmp_u64);
    printf("== Search with a token, restricted products (DESIGN 13): bench/hidden %ld %ld %ld ==\n", nprod, nres, ngrant);
    printf("  listing, limit 20, %zu of %zu hits, %ld restricted asked about, %ld granted to the caller\n", hb, tb,
           asked_b, ngrant);
    printf("  a grant lookup per restricted product: %.2f ms per search (median of %d)\n", before[ROUNDS / 2] / 1e6,
           ROUNDS);
    printf("  the caller's grants looked up once:    %.2f ms per search (%.1fx less)\n", after[ROUNDS / 2] / 1e6,
           (double)before[ROUNDS / 2] / (double)(after[ROUNDS / 2] ? after[ROUNDS / 2] : 1));
    printf("  and asked about its candidates only:   %.2f ms per search (%.1fx less than the first; %ld asked)\n",
           only[ROUNDS / 2] / 1e6, (double)before[ROUNDS / 2] / (double)(only[ROUNDS / 2] ? only[ROUNDS / 2] : 1),
           asked_o);
    catalog_destroy(&cp);
    catalog_destroy(&cg);
    store_close(&st);
    nftw(dir, bench_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return tb == ta && hb == ha && tb == to && hb == ho && asked_a == asked_b ? 0 : 1;
}
