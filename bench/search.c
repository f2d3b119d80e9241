/* bench/search.c - catalog search latency over a large synthetic catalog, in process.
 *
 * Indexes N synthetic products (default 100,000) through store_catalog_append, exactly as a
 * replica stores gossiped entries (one write transaction per entry, index updated inside it),
 * into a temp store opened with nosync (a bulk load: durability is not what is measured), then
 * times store_search over a fixed mix of queries (single word, multi-word, word + facet filters,
 * filters alone, exact id, a word prefix as typed, and the unfiltered listing) and prints p50/p99 per kind and overall,
 * the user CPU per query, and index size. Then, apart from those figures, it times a single-word
 * query right after each of WRITES more appended products, then after each of WRITES updates of
 * existing products, then after each of BATCHES runs of BATCH appends: the first query of a new
 * index generation updates the index columns by what changed since (storage/search_cache.c).
 *
 * Usage: search [N] [QUERIES]      prints the figures on stdout; progress on stderr.
 * Must not: include lmdb.h (it measures storage's API), or leave its temp store behind. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>
#include "storage/search.h"

#define VOCAB   2000
#define TAGS    200
#define OWNERS  500
#define FIELDS  300
#define DOMAINS 40
#define SAMPLES 1024   /* product ids kept for the exact-id queries */
#define WRITES  20     /* appends, then updates, each followed by one timed query, after the mix */
#define BATCH   200    /* appends followed by one timed query, */
#define BATCHES 5      /* this many times, after those */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* Zipf-ish pick: low indexes far more often (like real words), never above n-1. */
static uint32_t skewed(uint32_t n)
{
    uint32_t a = rnd(n), b = rnd(n);
    return a < b ? a : b;
}

/* Pronounceable synthetic word number i < 65536 ("kavomita"): four syllables from a bijection
 * of i, so distinct i give distinct words and prefixes spread like a natural vocabulary's. */
static void word(uint32_t i, char *out)
{
    static const char *syl[] = { "ka", "vo", "mi", "ta", "ren", "lu", "so", "pe", "dar", "ni",
                                 "go", "fe", "zu", "bal", "tri", "ox" };
    uint32_t x = (i * 40503u) & 0xffff;   /* odd multiplier: a permutation of 0..65535 */
    int n = 0;
    for (int k = 0; k < 4; k++, x >>= 4)
        n += sprintf(out + n, "%s", syl[x & 15]);
}

static double user_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec * 1e3 + (double)ru.ru_utime.tv_usec / 1e3;
}

static char domains[DOMAINS][32];
static char sample[SAMPLES][STORE_ID_MAX];
static uint32_t sample_every = 1, sample_below;   /* which of the loaded products are sampled */

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench search: %s: %s\n", what, err);
    exit(1);
}

/* Product i: domain, name, a title of 3 words, a purpose of 12, 2-3 tags, 2 owners, 6 fields. */
static void make_product(uint32_t i, Trib__Manifest *m, char *buf)
{
    char *p = buf;
    char w[32];
    const char *dom = domains[i % DOMAINS];
    m->domain = (char *)dom;
    m->name = p;
    word(skewed(VOCAB), w);
    p += sprintf(p, "%s-%u", w, i) + 1;
    m->title = p;
    for (int k = 0; k < 3; k++) {
        word(skewed(VOCAB), w);
        p += sprintf(p, "%s%s", k ? " " : "", w);
    }
    p++;
    m->purpose = p;
    for (int k = 0; k < 12; k++) {
        word(skewed(VOCAB), w);
        p += sprintf(p, "%s%s", k ? " " : "", w);
    }
    p++;
    m->n_tags = 2 + rnd(2);
    for (size_t k = 0; k < m->n_tags; k++) {
        m->tags[k] = p;
        word(skewed(TAGS) + 7000, w);
        p += sprintf(p, "t-%s", w) + 1;
    }
    m->owner_business = p;
    word(skewed(OWNERS) + 9000, w);
    p += sprintf(p, "%s.person@example.com", w) + 1;
    m->owner_technical = p;
    p += sprintf(p, "%s-data@example.com", dom) + 1;
    for (size_t k = 0; k < m->n_schema; k++) {
        m->schema[k]->name = p;
        word(skewed(FIELDS) + 5000, w);
        p += sprintf(p, "%s_id%zu", w, k) + 1;
    }
    uint32_t s = rnd(10);
    m->status = s < 7 ? "active" : s < 8 ? "draft" : s < 9 ? "deprecated" : "retired";
    m->version = "1.0.0";
}

typedef struct { const char *name; uint64_t *ns; size_t n; } kind_t;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double pct(uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)v[i] / 1e6;
}

/* Times the fixed mix of nq queries over the n products loaded in load_s seconds; prints the
 * figures and returns the overall p99 in ms. */
static double run_queries(store_t *st, uint32_t n, size_t nq, double load_s)
{
    enum { K_WORD, K_PREFIX, K_MULTI, K_FACET, K_FILTER, K_EXACT, K_LIST, NKINDS };
    static const char *const names[NKINDS] = { "single word", "word prefix", "multi-word",
                                               "word+facets", "facets only", "exact id", "list all" };
    uint64_t *lat[NKINDS + 1];
    size_t cnt[NKINDS + 1] = { 0 };
    for (int k = 0; k <= NKINDS; k++)
        if (!(lat[k] = calloc(nq, sizeof *lat[k])))
            die("calloc", "out of memory");
    size_t hits_total = 0;
    char err[256];
    double user0 = user_ms();
    for (size_t qi = 0; qi < nq; qi++) {
        int kind = (int)(qi % 10);
        kind = kind < 2 ? K_WORD : kind < 3 ? K_PREFIX : kind < 5 ? K_MULTI : kind < 7 ? K_FACET
             : kind < 8 ? K_FILTER : kind < 9 ? K_EXACT : K_LIST;
        char q[256] = "", w[32], tag[48], owner[64], id[160];
        store_query_t sq = { .limit = 20, .facet_max = 20 };
        switch (kind) {
        case K_WORD:
            word(skewed(VOCAB), q);
            sq.q = q;
            break;
        case K_PREFIX:
            word(skewed(VOCAB), q);
            q[3 + rnd(3)] = '\0';   /* the first 3-5 letters, as typed */
            sq.q = q;
            break;
        case K_MULTI:
            for (int k = 0; k < 3; k++) {
                word(skewed(VOCAB), w);
                snprintf(q + strlen(q), sizeof q - strlen(q), "%s%s", k ? " " : "", w);
            }
            sq.q = q;
            break;
        case K_FACET:
            word(skewed(VOCAB), q);
            sq.q = q;
            sq.domain = domains[rnd(DOMAINS)];
            sq.status = "active";
            break;
        case K_FILTER:
            word(skewed(TAGS) + 7000, w);
            snprintf(tag, sizeof tag, "t-%s", w);
            word(skewed(OWNERS) + 9000, w);
            snprintf(owner, sizeof owner, "%s.person@example.com", w);
            sq.tag = tag;
            if (qi % 20 < 10)
                sq.owner = owner;
            else
                sq.status = "active";
            break;
        case K_EXACT:
            snprintf(id, sizeof id, "%s", sample[rnd(SAMPLES)]);
            sq.q = id;
            break;
        case K_LIST:
        default:
            break;
        }
        store_result_t r;
        uint64_t a = now_ns();
        if (store_search(st, &sq, &r, err, sizeof err) != 0)
            die("store_search", err);
        uint64_t dt = now_ns() - a;
        if (kind == K_EXACT && (r.nhits == 0 || strcmp(r.hits[0].id, id) != 0))
            die("exact id", "not the first hit");
        hits_total += r.total;
        store_result_free(&r);
        lat[kind][cnt[kind]++] = dt;
        lat[NKINDS][cnt[NKINDS]++] = dt;
    }
    double user = user_ms() - user0;
    store_search_size_t sz;
    if (store_search_size(st, &sz) != 0)
        die("store_search_size", store_last_error());

    for (int k = 0; k <= NKINDS; k++)
        qsort(lat[k], cnt[k], sizeof *lat[k], cmp_u64);
    double p99 = pct(lat[NKINDS], cnt[NKINDS], 0.99);
    printf("search  %u products  p50 %.2f ms  p99 %.2f ms  (target p99 < 5 ms)%s\n", n,
           pct(lat[NKINDS], cnt[NKINDS], 0.50), p99, p99 < 5.0 ? "" : "  MISSED");
    for (int k = 0; k < NKINDS; k++)
        printf("  %-12s %5zu queries  p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", names[k], cnt[k],
               pct(lat[k], cnt[k], 0.50), pct(lat[k], cnt[k], 0.99), pct(lat[k], cnt[k], 1.0));
    printf("  index %.1f MiB (%llu word postings), %zu queries, %.0f hits/query avg; "
           "indexed at %.0f products/s (one txn per entry, nosync)\n",
           (double)sz.bytes / 1048576.0, (unsigned long long)sz.postings, nq,
           (double)hits_total / (double)nq, (double)n / load_s);
    printf("  user CPU %.3f ms per query\n", user / (double)nq);

    for (int k = 0; k <= NKINDS; k++)
        free(lat[k]);
    return p99;
}

/* Appends product i (of domain i % DOMAINS) as a replica stores a gossiped entry: one write
 * transaction, the index updated inside it. name: another name for it (an update of that product
 * of the domain), NULL for its own. The sampled ids are kept. */
static void append(store_t *st, uint32_t i, const char *name)
{
    static uint64_t seq[DOMAINS];
    static uint8_t hash[DOMAINS][STORE_HASH_LEN];
    static const uint8_t key[STORE_KEY_LEN] = { 0xbe, 0x4c };
    static uint8_t body[8192], signed_bytes[8400];
    Trib__SchemaProperty props[6], *pp[6];
    char *tags[4], buf[4096], err[256];
    Trib__Manifest m = TRIB__MANIFEST__INIT;
    for (int k = 0; k < 6; k++) {
        trib__schema_property__init(&props[k]);
        props[k].logical_type = "string";
        pp[k] = &props[k];
    }
    m.schema = pp;
    m.n_schema = 6;
    m.tags = tags;
    make_product(i, &m, buf);
    if (name)
        m.name = (char *)name;
    int d = (int)(i % DOMAINS);
    Trib__CatalogEntry e = TRIB__CATALOG_ENTRY__INIT;
    e.domain = domains[d];
    e.seq = ++seq[d];
    e.time_ms = 1700000000000 + i;
    if (e.seq > 1) {
        e.prev_hash.data = hash[d];
        e.prev_hash.len = STORE_HASH_LEN;
    }
    e.change_case = TRIB__CATALOG_ENTRY__CHANGE_MANIFEST;
    e.manifest = &m;
    size_t bn = trib__catalog_entry__pack(&e, body);
    Trib__SignedEntry se = TRIB__SIGNED_ENTRY__INIT;
    se.body.data = body;
    se.body.len = bn;
    se.signer.data = (uint8_t *)key;
    se.signer.len = STORE_KEY_LEN;
    size_t sn = trib__signed_entry__pack(&se, signed_bytes);
    uint8_t h[STORE_HASH_LEN] = { 0 };
    memcpy(h, &i, sizeof i);   /* storage trusts the hash it is given: any distinct bytes */
    if (store_catalog_append(st, &e, h, key, signed_bytes, sn, err, sizeof err) != 0)
        die("store_catalog_append", err);
    memcpy(hash[d], h, STORE_HASH_LEN);
    if (!name && i < sample_below && (i % sample_every == 0 || i < SAMPLES))
        snprintf(sample[i % SAMPLES], sizeof sample[0], "%s/%s", m.domain, m.name);
}

/* One single-word query (page of 20, 20 values per facet), timed in ns. */
static uint64_t timed_query(store_t *st)
{
    char q[32], err[256];
    word(skewed(VOCAB), q);
    store_query_t sq = { .q = q, .limit = 20, .facet_max = 20 };
    store_result_t r;
    uint64_t a = now_ns();
    if (store_search(st, &sq, &r, err, sizeof err) != 0)
        die("store_search", err);
    uint64_t dt = now_ns() - a;
    store_result_free(&r);
    return dt;
}

int main(int argc, char **argv)
{
    uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 100000;
    size_t nq = argc > 2 ? strtoul(argv[2], NULL, 10) : 3000;
    if (n < 100 || n > 10000000 || nq < 10 || nq > 1000000) {
        fprintf(stderr, "usage: search [N 100..10000000] [QUERIES 10..1000000]\n");
        return 2;
    }
    for (int d = 0; d < DOMAINS; d++) {
        char w[32];
        word((uint32_t)d + 30000, w);
        snprintf(domains[d], sizeof domains[d], "%s", w);
    }
    char dir[] = "/tmp/trib-bench-search-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp", "failed");
    char err[256];
    store_opts_t o = { .map_size = (size_t)1 << 30, .nosync = 1 };
    store_t *st = store_open(dir, &o, err, sizeof err);
    if (!st)
        die("store_open", err);

    /* ---- load, the mix, then queries after writes */
    uint64_t t0 = now_ns();
    double p99 = 0;
    sample_every = n / SAMPLES + 1;
    sample_below = n;
    for (uint32_t i = 0; i < n; i++) {
        append(st, i, NULL);
        if ((i + 1) % 20000 == 0)
            fprintf(stderr, "bench search: indexed %u products\n", i + 1);
    }
    p99 = run_queries(st, n, nq, (double)(now_ns() - t0) / 1e9);
    uint64_t after_write[WRITES], after_update[WRITES], after_batch[BATCHES];
    uint32_t next = n;
    for (int w = 0; w < WRITES; w++) {   /* a new product */
        append(st, next++, NULL);
        after_write[w] = timed_query(st);
    }
    for (int w = 0; w < WRITES; w++) {   /* a new manifest of a sampled product: any facet may change */
        char id[STORE_ID_MAX];
        snprintf(id, sizeof id, "%s", sample[rnd(SAMPLES)]);
        char *slash = strchr(id, '/');
        *slash = '\0';
        uint32_t d = 0;
        while (d < DOMAINS - 1 && strcmp(domains[d], id) != 0)
            d++;
        next += (d + DOMAINS - next % DOMAINS) % DOMAINS;   /* a product number of its domain */
        append(st, next++, slash + 1);
        after_update[w] = timed_query(st);
    }
    for (int b = 0; b < BATCHES; b++) {
        for (int k = 0; k < BATCH; k++)
            append(st, next++, NULL);
        after_batch[b] = timed_query(st);
    }
    qsort(after_write, WRITES, sizeof *after_write, cmp_u64);
    qsort(after_update, WRITES, sizeof *after_update, cmp_u64);
    qsort(after_batch, BATCHES, sizeof *after_batch, cmp_u64);
    printf("  a query right after a write (%d writes, each a new index generation): p50 %.2f ms  max %.2f ms\n",
           WRITES, pct(after_write, WRITES, 0.5), pct(after_write, WRITES, 1.0));
    printf("  ... right after an update of a product (%d updates): p50 %.2f ms  max %.2f ms\n",
           WRITES, pct(after_update, WRITES, 0.5), pct(after_update, WRITES, 1.0));
    printf("  ... right after %d new products (%d times): p50 %.2f ms  max %.2f ms\n",
           BATCH, BATCHES, pct(after_batch, BATCHES, 0.5), pct(after_batch, BATCHES, 1.0));
    store_search_size_t sz;
    if (store_search_size(st, &sz) != 0)
        die("store_search_size", store_last_error());
    printf("  facet columns: %llu generations read whole, %llu updated from an older one\n",
           (unsigned long long)sz.column_builds, (unsigned long long)sz.column_updates);

    store_close(&st);
    char p[128];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
    return p99 < 5.0 ? 0 : 1;
}
