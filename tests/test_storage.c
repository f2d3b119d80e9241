/* tests/test_storage.c - the storage layer against a real LMDB environment in a temp dir.
 *
 * Covers: open/close/reopen, a damaged data.mdb (empty, truncated) refused at open, meta, catalog append checks (and that a refusal changes
 * nothing), scan order and byte bound, heads, the products index, record logs, map growth
 * (single thread, concurrent threads, ceiling, write from a callback), crash recovery of
 * the record seq, members, argument validation, and a read snapshot given up (through env.c's test hook).
 * Must not: depend on gossip/ or node/ (entries are built here with the protobuf-c INIT
 * macros; hashes and signatures are arbitrary bytes: storage verifies neither). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "storage/internal.h"
#include "storage/store.h"

/* ---------------------------------------------------------------- fixture */

#define TINY_MAP ((size_t)32 << 10)   /* a few LMDB pages: every test using it grows the map */

static char dir[64];
static store_t *st;
static char err[256];

static void rm_dir(void)
{
    const char *files[] = { "data.mdb", "lock.mdb" };
    char p[128];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

static store_t *open_with(size_t map, size_t max)
{
    store_opts_t o = { .map_size = map, .map_max = max };
    store_t *s = store_open(dir, &o, err, sizeof err);
    cr_assert_not_null(s, "store_open: %s", err);
    return s;
}

static void setup(void)
{
    strcpy(dir, "/tmp/trib-store-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    st = open_with(0, 0);
}

static void teardown(void)
{
    store_close(&st);
    rm_dir();
}

static void reopen(void)
{
    store_close(&st);
    cr_assert_null(st);
    st = open_with(0, 0);
}

/* ---------------------------------------------------------------- catalog helpers */

static const uint8_t KEY_A[STORE_KEY_LEN] = { 0xA1, 0xA2, 0xA3 };
static const uint8_t KEY_B[STORE_KEY_LEN] = { 0xB1, 0xB2, 0xB3 };

/* A test "hash" for (domain, seq): distinct per entry. */
static void test_hash(const char *domain, uint64_t seq, uint8_t out[STORE_HASH_LEN])
{
    memset(out, 0, STORE_HASH_LEN);
    snprintf((char *)out, STORE_HASH_LEN, "%s#%llu", domain, (unsigned long long)seq);
}

typedef struct {
    const char *domain;
    uint64_t seq;
    const char *name;          /* product */
    const char *status;        /* manifest status; NULL: tombstone */
    int64_t time_ms;
    const uint8_t *signer;     /* NULL: KEY_A */
    int prev;                  /* 0: correct prev_hash; 1: wrong; 2: empty */
    const char *mdomain;       /* manifest domain; NULL: same as entry */
    size_t pad;                /* extra bytes in the stored value */
} ent_t;

/* Builds the entry, "signs" it (the stored bytes are the packed entry plus padding),
 * and appends it. */
static int append(const ent_t *t)
{
    Trib__Manifest m = TRIB__MANIFEST__INIT;
    Trib__Tombstone ts = TRIB__TOMBSTONE__INIT;
    Trib__CatalogEntry e = TRIB__CATALOG_ENTRY__INIT;
    uint8_t prev[STORE_HASH_LEN], hash[STORE_HASH_LEN];
    e.domain = (char *)t->domain;
    e.seq = t->seq;
    e.time_ms = t->time_ms;
    if (t->prev == 0 && t->seq > 1) {
        test_hash(t->domain, t->seq - 1, prev);
        e.prev_hash.data = prev;
        e.prev_hash.len = sizeof prev;
    } else if (t->prev == 1) {
        memset(prev, 0x5a, sizeof prev);
        e.prev_hash.data = prev;
        e.prev_hash.len = sizeof prev;
    }
    if (t->status) {
        m.domain = (char *)(t->mdomain ? t->mdomain : t->domain);
        m.name = (char *)t->name;
        m.status = (char *)t->status;
        m.version = "1.0.0";
        e.change_case = TRIB__CATALOG_ENTRY__CHANGE_MANIFEST;
        e.manifest = &m;
    } else {
        ts.name = (char *)t->name;
        ts.reason = "test";
        e.change_case = TRIB__CATALOG_ENTRY__CHANGE_TOMBSTONE;
        e.tombstone = &ts;
    }
    size_t n = trib__catalog_entry__get_packed_size(&e);
    uint8_t *bytes = calloc(1, n + t->pad);
    cr_assert_not_null(bytes);
    trib__catalog_entry__pack(&e, bytes);
    test_hash(t->domain, t->seq, hash);
    int rc = store_catalog_append(st, &e, hash, t->signer ? t->signer : KEY_A, bytes, n + t->pad,
                                  err, sizeof err);
    free(bytes);
    return rc;
}

static void publish(const char *domain, uint64_t seq, const char *name)
{
    ent_t t = { .domain = domain, .seq = seq, .name = name, .status = "active", .time_ms = 1000 + (int64_t)seq };
    int rc = append(&t);
    cr_assert_eq(rc, 0, "append %s/%s seq %llu: rc %d %s", domain, name, (unsigned long long)seq, rc, err);
}

/* Decodes the stored bytes of domain|seq back into an entry and checks seq and domain. */
static void check_stored(const char *domain, uint64_t seq)
{
    uint8_t *b = NULL;
    size_t len = 0;
    cr_assert_eq(store_catalog_get(st, domain, seq, &b, &len), 0, "get %s %llu", domain, (unsigned long long)seq);
    Trib__CatalogEntry *e = trib__catalog_entry__unpack(NULL, len, b);
    cr_assert_not_null(e);
    cr_expect_str_eq(e->domain, domain);
    cr_expect_eq(e->seq, seq);
    trib__catalog_entry__free_unpacked(e, NULL);
    free(b);
}

/* ---------------------------------------------------------------- open / meta */

TestSuite(storage, .init = setup, .fini = teardown, .timeout = 60);

Test(storage, close_accepts_null)
{
    store_close(NULL);
    store_t *none = NULL;
    store_close(&none);
    cr_assert_null(none);
}

Test(storage, open_refuses_bad_arguments)
{
    store_opts_t o = { .map_size = 1 << 20, .map_max = 1 << 16 };
    cr_assert_null(store_open(NULL, NULL, err, sizeof err));
    cr_assert_null(store_open("", NULL, err, sizeof err));
    cr_assert_null(store_open(dir, &o, err, sizeof err));
    cr_assert(strstr(err, "map_max"), "err: %s", err);
    cr_assert_null(store_open("/proc/no/such/dir", NULL, err, sizeof err));
    cr_assert(strstr(err, "/proc/no/such/dir"), "err names the path: %s", err);
}

Test(storage, reopen_keeps_data)
{
    cr_assert_eq(store_meta_put(st, "domain", "payments", 8), 0, "%s", store_last_error());
    publish("payments", 1, "settled");
    reopen();
    char buf[16];
    size_t len = 0;
    cr_assert_eq(store_meta_get(st, "domain", buf, sizeof buf, &len), 0);
    cr_assert_eq(len, 8);
    cr_assert_eq(memcmp(buf, "payments", 8), 0);
    store_head_t h;
    cr_assert_eq(store_catalog_head(st, "payments", &h), 0);
    cr_assert_eq(h.seq, 1);
    check_stored("payments", 1);
    store_product_t p;
    cr_assert_eq(store_product_get(st, "payments/settled", &p), 0);
}

Test(storage, meta_get_put)
{
    char buf[8];
    size_t len = 99;
    cr_assert_eq(store_meta_get(st, "absent", buf, sizeof buf, &len), STORE_NOTFOUND);
    cr_assert_eq(store_meta_put(st, "n", "abc", 3), 0);
    cr_assert_eq(store_meta_get(st, "n", buf, sizeof buf, &len), 0);
    cr_assert_eq(len, 3);
    cr_assert_eq(memcmp(buf, "abc", 3), 0);
    cr_assert_eq(store_meta_put(st, "n", "0123456789", 10), 0);   /* overwrite */
    cr_assert_eq(store_meta_get(st, "n", buf, sizeof buf, &len), -1);  /* too big for buf */
    cr_assert_eq(len, 10);
    cr_assert(strstr(store_last_error(), "buffer"), "%s", store_last_error());
    cr_assert_eq(store_meta_get(st, "n", NULL, 0, &len), -1);        /* length probe */
    cr_assert_eq(len, 10);
    cr_assert_eq(store_meta_put(st, "empty", NULL, 0), 0);
    cr_assert_eq(store_meta_get(st, "empty", buf, sizeof buf, &len), 0);
    cr_assert_eq(len, 0);
    /* storage's own keys and bad keys are refused */
    cr_assert_eq(store_meta_put(st, "store.format", "x", 1), -1);
    cr_assert_eq(store_meta_put(st, "", "x", 1), -1);
    cr_assert_eq(store_meta_put(st, NULL, "x", 1), -1);
    cr_assert_eq(store_meta_put(st, "k", NULL, 1), -1);
    cr_assert_eq(store_meta_get(st, NULL, buf, sizeof buf, &len), -1);
}

/* ---------------------------------------------------------------- catalog */

Test(storage, catalog_append_in_order)
{
    store_head_t h;
    cr_assert_eq(store_catalog_head(st, "payments", &h), STORE_NOTFOUND);
    for (uint64_t s = 1; s <= 3; s++)
        publish("payments", s, "settled");
    cr_assert_eq(store_catalog_head(st, "payments", &h), 0);
    uint8_t want[STORE_HASH_LEN];
    test_hash("payments", 3, want);
    cr_assert_eq(h.seq, 3);
    cr_assert_eq(memcmp(h.hash, want, STORE_HASH_LEN), 0);
    cr_assert_eq(memcmp(h.key, KEY_A, STORE_KEY_LEN), 0);
    for (uint64_t s = 1; s <= 3; s++)
        check_stored("payments", s);
    uint8_t *b = (uint8_t *)"sentinel";
    size_t len = 7;
    cr_assert_eq(store_catalog_get(st, "payments", 4, &b, &len), STORE_NOTFOUND);
    cr_assert_null(b);
    cr_assert_eq(store_catalog_get(st, "other", 1, &b, &len), STORE_NOTFOUND);
}

typedef struct {
    const char *what;
    ent_t e;
    int want;
    const char *err_has;
} refusal_t;

static int count_products(void *ctx, const store_product_t *p)
{
    (*(int *)ctx)++;
    return 0;
}

Test(storage, catalog_refusals_change_nothing)
{
    publish("payments", 1, "settled");
    publish("payments", 2, "settled");
    static const refusal_t cases[] = {
        { "duplicate of head", { "payments", 2, "settled", "active", 5, NULL, 0, NULL, 0 }, STORE_DUP, "already" },
        { "older duplicate",   { "payments", 1, "settled", "active", 5, NULL, 2, NULL, 0 }, STORE_DUP, "already" },
        { "gap",               { "payments", 4, "settled", "active", 5, NULL, 0, NULL, 0 }, STORE_GAP, "gap" },
        { "far gap",           { "payments", 1000, "x", "active", 5, NULL, 0, NULL, 0 }, STORE_GAP, "gap" },
        { "bad prev_hash",     { "payments", 3, "settled", "active", 5, NULL, 1, NULL, 0 }, STORE_BADPREV, "prev_hash" },
        { "empty prev_hash",   { "payments", 3, "settled", "active", 5, NULL, 2, NULL, 0 }, STORE_BADPREV, "prev_hash" },
        { "other signer",      { "payments", 3, "settled", "active", 5, KEY_B, 0, NULL, 0 }, STORE_BADKEY, "signer" },
        { "other signer dup",  { "payments", 2, "settled", "active", 5, KEY_B, 0, NULL, 0 }, STORE_BADKEY, "signer" },
        { "new domain gap",    { "listening", 2, "plays", "active", 5, NULL, 0, NULL, 0 }, STORE_GAP, "gap" },
        { "seq 1 with prev",   { "listening", 1, "plays", "active", 5, NULL, 1, NULL, 0 }, STORE_BADPREV, "prev_hash" },
        { "manifest of other domain", { "payments", 3, "settled", "active", 5, NULL, 0, "growth", 0 }, -1, "domain" },
        { "bad domain",        { "Payments", 3, "settled", "active", 5, NULL, 0, NULL, 0 }, -1, "domain" },
        { "bad name",          { "payments", 3, "-settled", "active", 5, NULL, 0, NULL, 0 }, -1, "name" },
        { "seq 0",             { "payments", 0, "settled", "active", 5, NULL, 2, NULL, 0 }, -1, "seq 0" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const refusal_t *c = &cases[i];
        err[0] = 0;
        int rc = append(&c->e);
        cr_expect_eq(rc, c->want, "%s: rc %d, want %d (%s)", c->what, rc, c->want, err);
        cr_expect(strstr(err, c->err_has), "%s: err \"%s\" lacks \"%s\"", c->what, err, c->err_has);

        store_head_t h;
        cr_assert_eq(store_catalog_head(st, "payments", &h), 0);
        cr_expect_eq(h.seq, 2, "%s moved the head", c->what);
        cr_expect_eq(memcmp(h.key, KEY_A, STORE_KEY_LEN), 0, "%s rebound the domain", c->what);
        cr_expect_eq(store_catalog_head(st, "listening", &h), STORE_NOTFOUND, "%s", c->what);
        uint8_t *b;
        size_t len;
        cr_expect_eq(store_catalog_get(st, "payments", 3, &b, &len), STORE_NOTFOUND, "%s", c->what);
        store_product_t p;
        cr_assert_eq(store_product_get(st, "payments/settled", &p), 0);
        cr_expect_eq(p.last_seq, 2, "%s touched the index", c->what);
        cr_expect_eq(p.retired, 0, "%s", c->what);
        int n = 0;
        cr_assert_eq(store_products(st, NULL, count_products, &n), 0);
        cr_expect_eq(n, 1, "%s added a product", c->what);
        uint64_t count = 0;
        cr_assert_eq(store_products_count(st, &count), 0);
        cr_expect_eq(count, 1, "%s: the index's count disagrees with a scan", c->what);
    }
    /* no change: neither manifest nor tombstone */
    Trib__CatalogEntry e = TRIB__CATALOG_ENTRY__INIT;
    uint8_t hash[STORE_HASH_LEN] = { 0 }, bytes[1] = { 0 };
    e.domain = "payments";
    e.seq = 3;
    cr_expect_eq(store_catalog_append(st, &e, hash, KEY_A, bytes, 1, err, sizeof err), -1);
    cr_expect(strstr(err, "neither"), "%s", err);
    cr_expect_eq(store_catalog_append(st, NULL, hash, KEY_A, bytes, 1, err, sizeof err), -1);
    cr_expect_eq(store_catalog_append(st, &e, hash, KEY_A, bytes, 0, err, sizeof err), -1);
    /* and the next good entry still goes in */
    publish("payments", 3, "settled");
}

typedef struct {
    int n;
    uint64_t seqs[16];
    size_t bytes;
    int stop_after;            /* 0: never */
} scan_t;

static int on_entry(void *ctx, uint64_t seq, const uint8_t *b, size_t len)
{
    scan_t *s = ctx;
    cr_assert_lt(s->n, 16);
    s->seqs[s->n++] = seq;
    s->bytes += len;
    return s->stop_after && s->n >= s->stop_after;
}

Test(storage, catalog_scan_order_and_bound)
{
    /* neighbour domains whose names share a prefix must not leak into the scan */
    publish("pay", 1, "a");
    publish("pay-x", 1, "a");
    size_t sizes[6] = { 0 };
    for (uint64_t s = 1; s <= 5; s++) {
        ent_t t = { "payments", s, "settled", "active", 7, NULL, 0, NULL, 100 * s };
        cr_assert_eq(append(&t), 0, "%s", err);
        uint8_t *b;
        cr_assert_eq(store_catalog_get(st, "payments", s, &b, &sizes[s]), 0);
        free(b);
    }
    publish("paymentsx", 1, "a");

    scan_t sc = { 0 };
    cr_assert_eq(store_catalog_scan(st, "payments", 1, SIZE_MAX, on_entry, &sc), 5);
    for (int i = 0; i < 5; i++)
        cr_expect_eq(sc.seqs[i], (uint64_t)i + 1);

    memset(&sc, 0, sizeof sc);
    cr_assert_eq(store_catalog_scan(st, "payments", 0, SIZE_MAX, on_entry, &sc), 5);

    memset(&sc, 0, sizeof sc);
    cr_assert_eq(store_catalog_scan(st, "payments", 3, SIZE_MAX, on_entry, &sc), 3);
    cr_expect_eq(sc.seqs[0], 3);
    cr_expect_eq(sc.seqs[2], 5);

    /* exactly the first three fit; one byte less: two */
    size_t three = sizes[1] + sizes[2] + sizes[3];
    memset(&sc, 0, sizeof sc);
    cr_assert_eq(store_catalog_scan(st, "payments", 1, three, on_entry, &sc), 3);
    cr_expect_eq(sc.bytes, three);
    memset(&sc, 0, sizeof sc);
    cr_assert_eq(store_catalog_scan(st, "payments", 1, three - 1, on_entry, &sc), 2);
    cr_expect_leq(sc.bytes, three - 1);

    /* the first entry is always passed, even over the bound */
    memset(&sc, 0, sizeof sc);
    cr_assert_eq(store_catalog_scan(st, "payments", 2, 1, on_entry, &sc), 1);
    cr_expect_eq(sc.seqs[0], 2);
    memset(&sc, 0, sizeof sc);
    cr_assert_eq(store_catalog_scan(st, "payments", 1, 0, on_entry, &sc), 1);

    /* fn stops it */
    memset(&sc, 0, sizeof sc);
    sc.stop_after = 2;
    cr_assert_eq(store_catalog_scan(st, "payments", 1, SIZE_MAX, on_entry, &sc), 2);

    /* past the head, unknown domain, bad arguments */
    memset(&sc, 0, sizeof sc);
    cr_assert_eq(store_catalog_scan(st, "payments", 6, SIZE_MAX, on_entry, &sc), 0);
    cr_assert_eq(store_catalog_scan(st, "nosuch", 1, SIZE_MAX, on_entry, &sc), 0);
    cr_assert_eq(store_catalog_scan(st, "payments", 1, SIZE_MAX, NULL, &sc), -1);
    cr_assert_eq(store_catalog_scan(st, "bad/domain", 1, SIZE_MAX, on_entry, &sc), -1);
    cr_assert_eq(sc.n, 0);
}

typedef struct {
    int n;
    char domains[8][64];
    uint64_t seqs[8];
} heads_t;

static int on_head(void *ctx, const char *domain, const store_head_t *h)
{
    heads_t *hs = ctx;
    cr_assert_lt(hs->n, 8);
    snprintf(hs->domains[hs->n], sizeof hs->domains[0], "%s", domain);
    hs->seqs[hs->n++] = h->seq;
    return 0;
}

Test(storage, catalog_heads_listing)
{
    heads_t hs = { 0 };
    cr_assert_eq(store_catalog_heads(st, on_head, &hs), 0);
    cr_assert_eq(hs.n, 0);
    publish("payments", 1, "a");
    publish("growth", 1, "a");
    publish("growth", 2, "b");
    ent_t t = { .domain = "listening", .seq = 1, .name = "plays", .status = "active", .signer = KEY_B };
    cr_assert_eq(append(&t), 0, "%s", err);
    publish("payments", 2, "a");
    publish("payments", 3, "a");

    cr_assert_eq(store_catalog_heads(st, on_head, &hs), 0);
    cr_assert_eq(hs.n, 3);
    const char *want[] = { "growth", "listening", "payments" };
    const uint64_t seqs[] = { 2, 1, 3 };
    for (int i = 0; i < 3; i++) {
        cr_expect_str_eq(hs.domains[i], want[i]);
        cr_expect_eq(hs.seqs[i], seqs[i], "%s", want[i]);
    }
    store_head_t h;
    cr_assert_eq(store_catalog_head(st, "listening", &h), 0);
    cr_expect_eq(memcmp(h.key, KEY_B, STORE_KEY_LEN), 0, "seq 1 binds its signer");
    cr_assert_eq(store_catalog_heads(st, NULL, &hs), -1);
}

/* ---------------------------------------------------------------- products index */

typedef struct {
    int n;
    char ids[8][STORE_ID_MAX];
} ids_t;

static int on_product(void *ctx, const store_product_t *p)
{
    ids_t *x = ctx;
    cr_assert_lt(x->n, 8);
    memcpy(x->ids[x->n++], p->id, STORE_ID_MAX);
    return 0;
}

Test(storage, products_index_publish_update_retire)
{
    store_product_t p;
    cr_assert_eq(store_product_get(st, "payments/settled", &p), STORE_NOTFOUND);

    publish("payments", 1, "settled");                          /* publish */
    cr_assert_eq(store_product_get(st, "payments/settled", &p), 0);
    cr_expect_str_eq(p.id, "payments/settled");
    cr_expect_eq(p.manifest_seq, 1);
    cr_expect_eq(p.last_seq, 1);
    cr_expect_eq(p.retired, 0);
    cr_expect_eq(p.updated_ms, 1001);

    publish("payments", 2, "refunds");                          /* another product */
    publish("payments", 3, "settled");                          /* update */
    cr_assert_eq(store_product_get(st, "payments/settled", &p), 0);
    cr_expect_eq(p.manifest_seq, 3);
    cr_expect_eq(p.last_seq, 3);
    cr_expect_eq(p.updated_ms, 1003);

    ent_t tomb = { .domain = "payments", .seq = 4, .name = "settled", .time_ms = 2222 };
    cr_assert_eq(append(&tomb), 0, "%s", err);                 /* retire */
    cr_assert_eq(store_product_get(st, "payments/settled", &p), 0);
    cr_expect_eq(p.manifest_seq, 3, "a tombstone keeps the manifest");
    cr_expect_eq(p.last_seq, 4);
    cr_expect_eq(p.retired, 1);
    cr_expect_eq(p.updated_ms, 2222);
    cr_assert_eq(store_product_get(st, "payments/refunds", &p), 0);
    cr_expect_eq(p.retired, 0);
    cr_expect_eq(p.last_seq, 2);

    ent_t st_retired = { "payments", 5, "refunds", "retired", 3333, NULL, 0, NULL, 0 };
    cr_assert_eq(append(&st_retired), 0, "%s", err);           /* manifest with status retired */
    cr_assert_eq(store_product_get(st, "payments/refunds", &p), 0);
    cr_expect_eq(p.retired, 1);
    cr_expect_eq(p.manifest_seq, 5);

    publish("payments", 6, "settled");                          /* re-publish revives */
    cr_assert_eq(store_product_get(st, "payments/settled", &p), 0);
    cr_expect_eq(p.retired, 0);
    cr_expect_eq(p.manifest_seq, 6);

    /* listing: all in id order, or one domain (prefix neighbours excluded) */
    publish("pay", 1, "z");
    publish("payments-eu", 1, "a");
    ids_t all = { 0 }, one = { 0 };
    cr_assert_eq(store_products(st, NULL, on_product, &all), 0);
    const char *want_all[] = { "pay/z", "payments-eu/a", "payments/refunds", "payments/settled" };
    cr_assert_eq(all.n, 4);
    for (int i = 0; i < 4; i++)
        cr_expect_str_eq(all.ids[i], want_all[i]);
    cr_assert_eq(store_products(st, "payments", on_product, &one), 0);
    cr_assert_eq(one.n, 2);
    cr_expect_str_eq(one.ids[0], "payments/refunds");
    cr_expect_str_eq(one.ids[1], "payments/settled");
    memset(&one, 0, sizeof one);
    cr_assert_eq(store_products(st, "nosuch", on_product, &one), 0);
    cr_assert_eq(one.n, 0);
    cr_assert_eq(store_products(st, "Bad", on_product, &one), -1);
    cr_assert_eq(store_product_get(st, "payments", &p), -1);
    cr_assert_eq(store_product_get(st, "payments/", &p), -1);
    cr_assert_eq(store_product_get(st, NULL, &p), -1);
}

/* ---------------------------------------------------------------- records */

typedef struct {
    long n;
    uint64_t first, last;
    int ordered;
    int stop_after;
    const char *id;             /* expected record text prefix "<id>:" */
} rd_t;

static int on_record(void *ctx, uint64_t seq, const void *data, size_t len)
{
    rd_t *r = ctx;
    char want[256];
    int n = snprintf(want, sizeof want, "{\"p\":\"%s\",\"seq\":%llu}", r->id, (unsigned long long)seq);
    if (len != (size_t)n || memcmp(data, want, len) != 0)
        r->ordered = 0;
    if (r->n == 0)
        r->first = seq;
    else if (seq != r->last + 1)
        r->ordered = 0;
    r->last = seq;
    r->n++;
    return r->stop_after && r->n >= r->stop_after;
}

/* Appends records from..to of product id, each "{"p":"<id>","seq":N}". */
static int put_records(store_t *s, const char *id, uint64_t from, uint64_t to, uint64_t *first, uint64_t *last)
{
    size_t n = (size_t)(to - from + 1);
    store_buf_t *b = calloc(n, sizeof *b);
    char (*txt)[256] = calloc(n, sizeof *txt);
    cr_assert(b && txt);
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(txt[i], sizeof txt[i], "{\"p\":\"%s\",\"seq\":%llu}", id,
                           (unsigned long long)(from + i));
        b[i].data = txt[i];
        b[i].len = (size_t)len;
    }
    int rc = store_records_append(s, id, b, n, first, last, err, sizeof err);
    free(b);
    free(txt);
    return rc;
}

static rd_t read_all(const char *id, uint64_t from, uint64_t limit, long *count)
{
    rd_t r = { .ordered = 1, .id = id };
    *count = store_records_read(st, id, from, limit, on_record, &r);
    return r;
}

Test(storage, records_append_read)
{
    uint64_t first = 0, last = 0;
    cr_assert_eq(put_records(st, "payments/settled", 1, 3, &first, &last), STORE_NOTFOUND);
    cr_expect(strstr(err, "no such product"), "%s", err);
    publish("payments", 1, "settled");
    publish("payments", 2, "settledx");        /* neighbour whose id extends ours */

    uint64_t l = 99;
    cr_assert_eq(store_records_last(st, "payments/settled", &l), 0);
    cr_assert_eq(l, 0);
    cr_assert_eq(put_records(st, "payments/settled", 1, 3, &first, &last), 0, "%s", err);
    cr_expect_eq(first, 1);
    cr_expect_eq(last, 3);
    cr_assert_eq(put_records(st, "payments/settledx", 1, 4, &first, &last), 0, "%s", err);
    cr_assert_eq(put_records(st, "payments/settled", 4, 5, &first, &last), 0, "%s", err);
    cr_expect_eq(first, 4);
    cr_expect_eq(last, 5);
    cr_assert_eq(store_records_last(st, "payments/settled", &l), 0);
    cr_assert_eq(l, 5);
    cr_assert_eq(store_records_last(st, "payments/settledx", &l), 0);
    cr_assert_eq(l, 4);

    long n;
    rd_t r = read_all("payments/settled", 1, 0, &n);
    cr_expect_eq(n, 5);
    cr_expect_eq(r.n, 5);
    cr_expect(r.ordered, "records out of order or wrong content");
    cr_expect_eq(r.first, 1);
    cr_expect_eq(r.last, 5);

    static const struct { uint64_t from, limit; long n; uint64_t first, last; } pages[] = {
        { 0, 0, 5, 1, 5 }, { 2, 2, 2, 2, 3 }, { 4, 10, 2, 4, 5 }, { 5, 1, 1, 5, 5 },
        { 6, 0, 0, 0, 0 }, { 1, 1, 1, 1, 1 }, { UINT64_MAX, 0, 0, 0, 0 },
    };
    for (size_t i = 0; i < sizeof pages / sizeof *pages; i++) {
        r = read_all("payments/settled", pages[i].from, pages[i].limit, &n);
        cr_expect_eq(n, pages[i].n, "page %zu: %ld", i, n);
        cr_expect(r.ordered, "page %zu", i);
        if (n) {
            cr_expect_eq(r.first, pages[i].first, "page %zu", i);
            cr_expect_eq(r.last, pages[i].last, "page %zu", i);
        }
    }
    r = (rd_t){ .ordered = 1, .id = "payments/settled", .stop_after = 2 };
    cr_expect_eq(store_records_read(st, "payments/settled", 1, 0, on_record, &r), 2);

    r = read_all("payments/settledx", 1, 0, &n);
    cr_expect_eq(n, 4);
    cr_expect(r.ordered);
    r = read_all("payments/nosuch", 1, 0, &n);
    cr_expect_eq(n, 0);
}

Test(storage, records_retired_and_bad_input_refused)
{
    uint64_t first = 0, last = 0;
    publish("payments", 1, "settled");
    cr_assert_eq(put_records(st, "payments/settled", 1, 2, &first, &last), 0, "%s", err);
    ent_t tomb = { .domain = "payments", .seq = 2, .name = "settled" };
    cr_assert_eq(append(&tomb), 0, "%s", err);
    first = last = 77;
    cr_assert_eq(put_records(st, "payments/settled", 3, 3, &first, &last), STORE_RETIRED);
    cr_expect(strstr(err, "retired"), "%s", err);
    cr_expect_eq(first, 77, "outputs untouched on refusal");
    uint64_t l;
    cr_assert_eq(store_records_last(st, "payments/settled", &l), 0);
    cr_assert_eq(l, 2);
    long n;
    rd_t r = read_all("payments/settled", 1, 0, &n);
    cr_expect_eq(n, 2, "a retired product's records stay readable");
    cr_expect(r.ordered);

    publish("payments", 3, "open");
    store_buf_t ok = { "{}", 2 }, empty = { "", 0 }, null = { NULL, 3 };
    store_buf_t mixed[] = { ok, empty };
    char longid[STORE_ID_MAX + 10];
    memset(longid, 'a', sizeof longid);
    longid[70] = '/';
    longid[sizeof longid - 1] = 0;
    cr_expect_eq(store_records_append(st, "payments/open", &ok, 0, &first, &last, err, sizeof err), -1);
    cr_expect_eq(store_records_append(st, "payments/open", NULL, 1, &first, &last, err, sizeof err), -1);
    cr_expect_eq(store_records_append(st, "payments/open", mixed, 2, &first, &last, err, sizeof err), -1);
    cr_expect_eq(store_records_append(st, "payments/open", &null, 1, &first, &last, err, sizeof err), -1);
    cr_expect_eq(store_records_append(st, NULL, &ok, 1, &first, &last, err, sizeof err), -1);
    cr_expect_eq(store_records_append(st, "payments", &ok, 1, &first, &last, err, sizeof err), -1);
    cr_expect_eq(store_records_append(st, longid, &ok, 1, &first, &last, err, sizeof err), -1);
    cr_expect_eq(store_records_append(st, "payments/open", &ok, 1, NULL, &last, err, sizeof err), -1);
    cr_expect_eq(store_records_read(st, longid, 1, 0, on_record, &r), -1);
    cr_expect_eq(store_records_read(st, "payments/open", 1, 0, NULL, &r), -1);
    cr_expect_eq(store_records_last(st, "x", &l), -1);
    cr_assert_eq(store_records_last(st, "payments/open", &l), 0);
    cr_expect_eq(l, 0, "a refused batch stores nothing");
}

Test(storage, records_reopen_continues_seq)
{
    uint64_t first, last;
    publish("payments", 1, "settled");
    cr_assert_eq(put_records(st, "payments/settled", 1, 10, &first, &last), 0, "%s", err);
    reopen();
    cr_assert_eq(put_records(st, "payments/settled", 11, 12, &first, &last), 0, "%s", err);
    cr_expect_eq(first, 11);
    cr_expect_eq(last, 12);
    long n;
    rd_t r = read_all("payments/settled", 1, 0, &n);
    cr_expect_eq(n, 12);
    cr_expect(r.ordered);
}

/* ---------------------------------------------------------------- other processes */

/* A child's work: returns 'k' on success, another letter naming the failed step. go_fd,
 * when >= 0, is read once before starting. */
typedef char (*child_fn)(int go_fd);

/* Forks a child running fn; the caller must hold no environment open across the fork.
 * The child's verdict comes back over a pipe, not as its exit code (which tools such as
 * valgrind replace); *verdict_fd is that pipe's read end. */
static pid_t spawn(child_fn fn, int go_fd, int *verdict_fd)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(p[0]);
        char v = fn(go_fd);
        _exit(write(p[1], &v, 1) == 1 ? 0 : 1);   /* no store_close: a "crash" */
    }
    close(p[1]);
    *verdict_fd = p[0];
    return pid;
}

/* Waits for the child; its verdict, or 0 when it died without one. */
static char child_verdict(pid_t pid, int verdict_fd)
{
    char v = 0;
    if (read(verdict_fd, &v, 1) != 1)
        v = 0;
    close(verdict_fd);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return v;
}

/* Publishes payments/settled and appends records 1..n in batches of 500 (n % 500 == 0 or
 * n < 500), without closing the store. */
static char publish_and_fill(uint64_t n)
{
    store_opts_t o = { .map_size = TINY_MAP, .map_max = (size_t)256 << 20 };
    store_t *s = store_open(dir, &o, err, sizeof err);
    if (!s)
        return 'o';
    st = s;
    ent_t t = { .domain = "payments", .seq = 1, .name = "settled", .status = "active" };
    if (append(&t) != 0)
        return 'a';
    for (uint64_t from = 1; from <= n; from += 500) {
        uint64_t to = from + 499 < n ? from + 499 : n, f, l;
        if (put_records(s, "payments/settled", from, to, &f, &l) != 0 || f != from || l != to)
            return 'r';
    }
    return 'k';
}

static char crash_child(int go_fd)
{
    return publish_and_fill(7);
}

Test(storage, records_seq_right_after_crash)
{
    store_close(&st);
    int vfd;
    pid_t pid = spawn(crash_child, -1, &vfd);
    char v = child_verdict(pid, vfd);
    cr_assert_eq(v, 'k', "child failed at step '%c'", v ? v : '?');
    st = open_with(0, 0);
    uint64_t first, last;
    cr_assert_eq(store_records_last(st, "payments/settled", &last), 0);
    cr_assert_eq(last, 7);
    cr_assert_eq(put_records(st, "payments/settled", 8, 8, &first, &last), 0, "%s", err);
    cr_expect_eq(first, 8);
}

/* ---------------------------------------------------------------- map growth */

/* A data.mdb cut short (a copy that stopped, a disk that lost its end) is refused at open,
 * naming the file and what to do: LMDB maps the file and would die of SIGBUS reading past its
 * end. An empty one is refused too, not made into a new store under the node's old identity. */
static void damage_and_reopen(off_t size, const char *want)
{
    publish("payments", 1, "settled");
    uint64_t first, last;
    cr_assert_eq(put_records(st, "payments/settled", 1, 5000, &first, &last), 0, "%s", err);
    store_close(&st);
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    cr_assert_eq(truncate(path, size), 0);
    store_t *s = store_open(dir, NULL, err, sizeof err);
    if (s)
        store_close(&s);
    cr_assert_null(s, "a data.mdb of %lld bytes was opened", (long long)size);
    cr_assert(strstr(err, path) && strstr(err, want) && strstr(err, "restore it from a backup"), "%s", err);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_size, size, "the refused file is left as it was");
}

Test(storage, truncated_data_file_is_refused_at_open)
{
    damage_and_reopen(3 * 4096, "truncated");
}

Test(storage, empty_data_file_is_refused_at_open)
{
    damage_and_reopen(0, "empty (0 bytes)");
}

Test(storage, map_grows_on_full)
{
    store_close(&st);
    st = open_with(TINY_MAP, (size_t)256 << 20);
    size_t start = store_map_size(st);
    cr_assert_lt(start, (size_t)1 << 20, "map starts small: %zu", start);
    publish("payments", 1, "settled");
    uint64_t first, last, next = 1;
    for (int batch = 0; batch < 40; batch++) {       /* 40 x 500 records of ~40 bytes */
        cr_assert_eq(put_records(st, "payments/settled", next, next + 499, &first, &last), 0,
                     "batch %d: %s", batch, err);
        cr_assert_eq(first, next);
        next = last + 1;
    }
    size_t grown = store_map_size(st);
    cr_assert_geq(grown, start * 8, "map grew several times: %zu -> %zu", start, grown);
    /* catalog writes grow it too */
    for (uint64_t s = 2; s <= 30; s++) {
        ent_t t = { "payments", s, "settled", "active", 1, NULL, 0, NULL, 8000 };
        cr_assert_eq(append(&t), 0, "seq %llu: %s", (unsigned long long)s, err);
    }
    long n;
    rd_t r = read_all("payments/settled", 1, 0, &n);
    cr_assert_eq(n, 20000);
    cr_assert(r.ordered);
    reopen();
    r = read_all("payments/settled", 1, 0, &n);
    cr_assert_eq(n, 20000);
    cr_assert(r.ordered);
    store_head_t h;
    cr_assert_eq(store_catalog_head(st, "payments", &h), 0);
    cr_assert_eq(h.seq, 30);
}

Test(storage, map_stops_at_ceiling)
{
    store_close(&st);
    st = open_with(TINY_MAP, (size_t)256 << 10);
    publish("payments", 1, "settled");
    uint64_t first, last, next = 1;
    int rc = 0, batches = 0;
    while (batches < 1000 && (rc = put_records(st, "payments/settled", next, next + 99, &first, &last)) == 0) {
        next = last + 1;
        batches++;
    }
    cr_assert_eq(rc, -1, "append must fail once map_max is reached");
    cr_expect(strstr(err, "map_max"), "%s", err);
    cr_expect_eq(store_map_size(st), (size_t)256 << 10);
    long n;
    rd_t r = read_all("payments/settled", 1, 0, &n);
    cr_expect_eq(n, (long)(next - 1), "what was committed stays readable");
    cr_expect(r.ordered);
    cr_expect_gt(n, 0);
}

static int append_from_callback(void *ctx, uint64_t seq, const void *data, size_t len)
{
    static char big[1 << 20];
    memset(big, 'x', sizeof big);
    store_buf_t b = { big, sizeof big };
    uint64_t first, last;
    *(int *)ctx = store_records_append(st, "payments/settled", &b, 1, &first, &last, err, sizeof err);
    return 1;
}

Test(storage, write_needing_growth_inside_callback_fails_not_deadlocks)
{
    store_close(&st);
    st = open_with(TINY_MAP, (size_t)64 << 20);
    publish("payments", 1, "settled");
    uint64_t first, last;
    cr_assert_eq(put_records(st, "payments/settled", 1, 1, &first, &last), 0, "%s", err);
    int rc = 0;
    cr_assert_eq(store_records_read(st, "payments/settled", 1, 0, append_from_callback, &rc), 1);
    cr_assert_eq(rc, -1);
    cr_expect(strstr(err, "callback"), "%s", err);
    /* outside a callback the same write grows the map and succeeds */
    static char big[1 << 20];
    store_buf_t b = { big, sizeof big };
    memset(big, 'y', sizeof big);
    cr_assert_eq(store_records_append(st, "payments/settled", &b, 1, &first, &last, err, sizeof err), 0, "%s", err);
    cr_expect_eq(first, 2);
}

/* The other process: waits for go, then grows the map well past the parent's. */
static char resize_child(int go_fd)
{
    char c;
    if (read(go_fd, &c, 1) != 1)
        return 'g';
    return publish_and_fill(10000);
}

Test(storage, map_resized_by_another_process_is_adopted)
{
    int go[2], vfd;
    char c = 'g';
    cr_assert_eq(pipe(go), 0);
    store_close(&st);
    pid_t pid = spawn(resize_child, go[0], &vfd);
    close(go[0]);
    st = open_with(TINY_MAP, (size_t)256 << 20);
    size_t before = store_map_size(st);
    cr_assert_eq(write(go[1], &c, 1), 1);
    close(go[1]);
    char v = child_verdict(pid, vfd);
    cr_assert_eq(v, 'k', "child failed at step '%c'", v ? v : '?');
    uint64_t last = 0, first;
    cr_assert_eq(store_records_last(st, "payments/settled", &last), 0, "%s", store_last_error());
    cr_assert_eq(last, 10000);
    cr_assert_gt(store_map_size(st), before * 8, "adopted the other process's map size");
    cr_assert_eq(put_records(st, "payments/settled", 10001, 10001, &first, &last), 0, "%s", err);
    long n;
    rd_t r = read_all("payments/settled", 1, 0, &n);
    cr_assert_eq(n, 10001);
    cr_assert(r.ordered);
}

#define WRITERS 3
#define READERS 3
#define WBATCHES 40
#define WBATCH 100

static atomic_int writers_left;

static void *writer(void *arg)
{
    const char *id = arg;
    uint64_t first, last;
    for (uint64_t b = 0; b < WBATCHES; b++) {
        char e[256];
        size_t n = WBATCH;
        store_buf_t recs[WBATCH];
        char txt[WBATCH][96];
        for (size_t i = 0; i < n; i++) {
            int len = snprintf(txt[i], sizeof txt[i], "{\"p\":\"%s\",\"seq\":%llu}", id,
                               (unsigned long long)(b * WBATCH + i + 1));
            recs[i] = (store_buf_t){ txt[i], (size_t)len };
        }
        if (store_records_append(st, id, recs, n, &first, &last, e, sizeof e) != 0 ||
            first != b * WBATCH + 1) {
            atomic_fetch_sub(&writers_left, 1);
            return (void *)1;      /* non-NULL: failure */
        }
    }
    atomic_fetch_sub(&writers_left, 1);
    return NULL;
}

/* Reads inside a read callback (nesting must not deadlock with a waiting map growth). */
static int nested_read(void *ctx, uint64_t seq, const void *data, size_t len)
{
    uint64_t last = 0;
    if (store_records_last(st, ctx, &last) != 0 || last < seq)
        return -1;
    return 1;
}

/* The first bad read any reader saw, described, for the failure message. */
static char first_bad[256];
static atomic_int bad_said;

static void bad_read(intptr_t *bad, const char *fmt, ...)
{
    ++*bad;
    if (atomic_exchange(&bad_said, 1))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(first_bad, sizeof first_bad, fmt, ap);
    va_end(ap);
}

static void *reader(void *arg)
{
    const char *ids[] = { "payments/w0", "payments/w1", "payments/w2" };
    intptr_t bad = 0;
    do {
        for (int i = 0; i < WRITERS; i++) {
            /* Batches are atomic: a reader sees whole batches only, at the head of the log
             * and at its tail. Pages stay small so the readers' work does not grow with
             * the log (the test must stay quick under valgrind). */
            rd_t r = { .ordered = 1, .id = ids[i] };
            long n = store_records_read(st, ids[i], 1, 2 * WBATCH, on_record, &r);
            if (n < 0 || !r.ordered || (n > 0 && r.first != 1) || n % WBATCH != 0)
                bad_read(&bad, "%s head read: n %ld, ordered %d, first %llu, last %llu (%s)", ids[i], n, r.ordered,
                         (unsigned long long)r.first, (unsigned long long)r.last, n < 0 ? store_last_error() : "");
            uint64_t last = 0;
            if (store_records_last(st, ids[i], &last) != 0 || last % WBATCH != 0)
                bad_read(&bad, "%s last seq %llu (%s)", ids[i], (unsigned long long)last, store_last_error());
            /* the tail read is a later txn: it may see more, never less, and ends on a batch */
            uint64_t from = last > WBATCH ? last - WBATCH + 1 : 1;
            r = (rd_t){ .ordered = 1, .id = ids[i] };
            n = store_records_read(st, ids[i], from, 0, on_record, &r);
            if (n < 0 || !r.ordered || (last > 0 && n == 0) ||
                (n > 0 && (r.first != from || r.last < last || r.last % WBATCH != 0)))
                bad_read(&bad, "%s tail read from %llu (last %llu): n %ld, ordered %d, first %llu, last %llu (%s)", ids[i],
                         (unsigned long long)from, (unsigned long long)last, n, r.ordered,
                         (unsigned long long)r.first, (unsigned long long)r.last, n < 0 ? store_last_error() : "");
            if (store_records_read(st, ids[i], 1, 1, nested_read, (void *)ids[i]) < 0)
                bad_read(&bad, "%s nested read failed (%s)", ids[i], store_last_error());
        }
    } while (atomic_load(&writers_left) > 0);
    return (void *)bad;
}

Test(storage, concurrent_writers_and_readers_through_growth)
{
    store_close(&st);
    st = open_with(TINY_MAP, (size_t)256 << 20);
    const char *ids[WRITERS] = { "payments/w0", "payments/w1", "payments/w2" };
    const char *names[WRITERS] = { "w0", "w1", "w2" };
    for (int i = 0; i < WRITERS; i++)
        publish("payments", (uint64_t)i + 1, names[i]);
    size_t start = store_map_size(st);
    atomic_store(&writers_left, WRITERS);
    pthread_t w[WRITERS], r[READERS];
    for (int i = 0; i < READERS; i++)
        cr_assert_eq(pthread_create(&r[i], NULL, reader, NULL), 0);
    for (int i = 0; i < WRITERS; i++)
        cr_assert_eq(pthread_create(&w[i], NULL, writer, (void *)ids[i]), 0);
    for (int i = 0; i < WRITERS; i++) {
        void *res;
        pthread_join(w[i], &res);
        cr_expect_null(res, "writer %d failed", i);
    }
    for (int i = 0; i < READERS; i++) {
        void *res;
        pthread_join(r[i], &res);
        cr_expect_eq((intptr_t)res, 0, "reader %d saw %ld bad reads; the first any reader saw: %s", i,
                     (long)(intptr_t)res, first_bad);
    }
    cr_expect_gt(store_map_size(st), start * 4);
    for (int i = 0; i < WRITERS; i++) {
        long n;
        rd_t rr = read_all(ids[i], 1, 0, &n);
        cr_expect_eq(n, WBATCHES * WBATCH, "%s", ids[i]);
        cr_expect(rr.ordered, "%s", ids[i]);
    }
}

static int get_manifest(void *ctx, const store_product_t *p)
{
    uint8_t *b;
    size_t len;
    const char *slash = strchr(p->id, '/');
    char domain[64];
    snprintf(domain, sizeof domain, "%.*s", (int)(slash - p->id), p->id);
    if (store_catalog_get(st, domain, p->manifest_seq, &b, &len) == 0) {
        free(b);
        (*(int *)ctx)++;
    }
    return 0;
}

Test(storage, nested_reads_in_callbacks)
{
    publish("payments", 1, "a");
    publish("payments", 2, "b");
    int got = 0;
    cr_assert_eq(store_products(st, NULL, get_manifest, &got), 0);
    cr_assert_eq(got, 2);
}

/* ---------------------------------------------------------------- members */

typedef struct {
    int n;
    char seen[8][16];
} mem_t;

static int on_member(void *ctx, const uint8_t *m, size_t len)
{
    mem_t *x = ctx;
    cr_assert_lt(x->n, 8);
    cr_assert_lt(len, 16);
    memcpy(x->seen[x->n], m, len);
    x->seen[x->n++][len] = 0;
    return 0;
}

Test(storage, members_put_del_list)
{
    uint8_t a[STORE_KEY_LEN] = { 1 }, b[STORE_KEY_LEN] = { 2 }, c[STORE_KEY_LEN] = { 3 };
    mem_t m = { 0 };
    cr_assert_eq(store_members(st, on_member, &m), 0);
    cr_assert_eq(m.n, 0);
    cr_assert_eq(store_member_put(st, c, (const uint8_t *)"carol", 5), 0);
    cr_assert_eq(store_member_put(st, a, (const uint8_t *)"alice", 5), 0);
    cr_assert_eq(store_member_put(st, b, (const uint8_t *)"bob", 3), 0);
    cr_assert_eq(store_member_put(st, a, (const uint8_t *)"alice2", 6), 0);   /* replace */
    cr_assert_eq(store_members(st, on_member, &m), 0);
    cr_assert_eq(m.n, 3);
    cr_expect_str_eq(m.seen[0], "alice2");
    cr_expect_str_eq(m.seen[1], "bob");
    cr_expect_str_eq(m.seen[2], "carol");
    cr_assert_eq(store_member_del(st, b), 0);
    cr_assert_eq(store_member_del(st, b), STORE_NOTFOUND);
    memset(&m, 0, sizeof m);
    reopen();
    cr_assert_eq(store_members(st, on_member, &m), 0);
    cr_assert_eq(m.n, 2);
    cr_expect_str_eq(m.seen[0], "alice2");
    cr_expect_str_eq(m.seen[1], "carol");
    cr_assert_eq(store_member_put(st, a, NULL, 3), -1);
    cr_assert_eq(store_member_put(st, a, (const uint8_t *)"x", 0), -1);
    cr_assert_eq(store_member_put(st, NULL, (const uint8_t *)"x", 1), -1);
    cr_assert_eq(store_members(st, NULL, &m), -1);
}

Test(storage, members_save_applies_changes_in_order_in_one_commit)
{
    store_member_change_t ch[5] = {
        {.id = {1}, .member = (const uint8_t *)"alice", .len = 5},
        {.id = {2}, .member = (const uint8_t *)"bob", .len = 3},
        {.id = {1}, .member = (const uint8_t *)"alice2", .len = 6}, /* later wins */
        {.id = {2}, .member = NULL},                                /* removed */
        {.id = {9}, .member = NULL},                                /* absent: no error */
    };
    cr_assert_eq(store_members_save(st, ch, 5), 0, "%s", store_last_error());
    mem_t m = {0};
    reopen();
    cr_assert_eq(store_members(st, on_member, &m), 0);
    cr_assert_eq(m.n, 1);
    cr_expect_str_eq(m.seen[0], "alice2");
    store_member_change_t empty = {.id = {3}, .member = (const uint8_t *)"x", .len = 0};
    cr_assert_eq(store_members_save(st, &empty, 1), -1);
    cr_assert_eq(store_members_save(st, NULL, 1), -1);
    cr_assert_eq(store_members_save(st, NULL, 0), 0);
}

/* ---------------------------------------------------------------- snapshot give-up */

static void commit_starts(store_t *s)   /* as if another thread's commit started during each begin */
{
    atomic_fetch_add(&s->commits_started, 1);
}

/* A read whose snapshot begins kept seeing commits start gave up after 64 tries without a word: it
 * is now counted (store_snapshot_giveups, /metrics) and logged at most once a minute. The read itself
 * still answers. The hook makes every try see a commit start. */
Test(storage, a_read_that_gives_up_on_its_snapshot_is_counted_and_logged_once)
{
    char buf[8];
    size_t len = 0;
    cr_assert_eq(store_meta_put(st, "k", "v1", 2), 0);
    cr_assert_eq(store_meta_get(st, "k", buf, sizeof buf, &len), 0);
    cr_assert_eq(store_snapshot_giveups(st), 0, "a read with no commit starting gave up");

    fflush(stderr);
    int saved = dup(2);
    FILE *cap = tmpfile();
    cr_assert(saved >= 0 && cap != NULL);
    dup2(fileno(cap), 2);
    store__snapshot_hook = commit_starts;
    int rc1 = store_meta_get(st, "k", buf, sizeof buf, &len);
    int rc2 = store_meta_get(st, "k", buf, sizeof buf, &len);
    store__snapshot_hook = NULL;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    cr_expect_eq(rc1, 0);
    cr_expect_eq(rc2, 0);
    cr_expect(len == 2 && memcmp(buf, "v1", 2) == 0);
    cr_expect_eq(store_snapshot_giveups(st), 2);

    char log[2048] = "";
    rewind(cap);
    size_t n = fread(log, 1, sizeof log - 1, cap);
    log[n] = '\0';
    fclose(cap);
    int lines = 0;
    for (const char *p = log; (p = strstr(p, "store: a read kept LMDB's snapshot")) != NULL; p++)
        lines++;
    cr_expect_eq(lines, 1, "want one line for two give-ups within a minute, got:\n%s", log);
    cr_expect(strstr(log, "after 64 begins each saw a commit start"), "%s", log);
}
