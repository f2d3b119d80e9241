/* tests/test_catalog.c - gossip/catalog: publishing own entries and accepting peers', on real stores.
 *
 * Owns: unit tests of catalog_publish / catalog_accept / cat_result_name against temp LMDB
 * stores (mkdtemp under /tmp, removed after): chaining, retire rules, group commit (many threads,
 * refusals inside a batch, the store's batch append), replication in order, and every refusal class (duplicate, gap, wrong key, forged, bad chain) leaving the replica
 * unchanged.
 * Must not: use the network or depend on other tests. */
#include <criterion/criterion.h>

#include <ftw.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gossip/catalog.h"
#include "gossip/entry.h"

/* ---------------------------------------------------------------- fixture */

#define NSTORES 3

static char dirs[NSTORES][64];
static store_t *stores[NSTORES];
static identity_t pay, lis, mallory;
static catalog_t *cpay;      /* payments node, store 0 */
static catalog_t *clis;      /* listening node, store 1: the replica under test */

static void make_identity(identity_t *id, uint8_t seedbyte)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(id, 0, sizeof *id);
    memset(seed, seedbyte, sizeof seed);
    cr_assert_eq(crypto_sign_seed_keypair(id->pk, id->sk, seed), 0);
    identity_hex(id->pk, id->hex);
}

static void setup(void)
{
    char err[256] = "";
    cr_assert_geq(sodium_init(), 0);
    for (int i = 0; i < NSTORES; i++) {
        snprintf(dirs[i], sizeof dirs[i], "/tmp/trib-catalog-XXXXXX");
        cr_assert_not_null(mkdtemp(dirs[i]));
        stores[i] = store_open(dirs[i], NULL, err, sizeof err);
        cr_assert_not_null(stores[i], "store_open: %s", err);
    }
    make_identity(&pay, 1);
    make_identity(&lis, 2);
    make_identity(&mallory, 3);
    cpay = catalog_new(stores[0], &pay, "payments");
    clis = catalog_new(stores[1], &lis, "listening");
    cr_assert_not_null(cpay);
    cr_assert_not_null(clis);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    catalog_destroy(&cpay);
    catalog_destroy(&clis);
    for (int i = 0; i < NSTORES; i++) {
        store_close(&stores[i]);
        if (dirs[i][0])
            nftw(dirs[i], rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    }
}

TestSuite(catalog, .init = setup, .fini = teardown);

/* ---------------------------------------------------------------- helpers */

static Trib__Manifest manifest(const char *domain, const char *name)
{
    Trib__Manifest m = TRIB__MANIFEST__INIT;
    m.domain = (char *)domain;
    m.name = (char *)name;
    m.version = "1.0.0";
    m.status = "active";
    m.title = (char *)name;
    return m;
}

static uint64_t publish_ok(catalog_t *c, const char *domain, const char *name)
{
    Trib__Manifest m = manifest(domain, name);
    uint64_t seq = 0;
    char err[256] = "";
    cr_assert_eq(catalog_publish(c, &m, NULL, &seq, NULL, NULL, err, sizeof err), 0, "publish %s: %s", name, err);
    return seq;
}

static uint64_t retire_ok(catalog_t *c, const char *name)
{
    uint64_t seq = 0;
    char err[256] = "";
    cr_assert_eq(catalog_publish(c, NULL, name, &seq, NULL, NULL, err, sizeof err), 0, "retire %s: %s", name, err);
    return seq;
}

/* The stored SignedEntry bytes at domain|seq (malloc'd). */
static uint8_t *stored(store_t *st, const char *domain, uint64_t seq, size_t *len)
{
    uint8_t *out = NULL;
    cr_assert_eq(store_catalog_get(st, domain, seq, &out, len), 0, "%s seq %llu not stored", domain,
                 (unsigned long long)seq);
    return out;
}

static store_head_t head_of(store_t *st, const char *domain)
{
    store_head_t h;
    memset(&h, 0, sizeof h);
    int rc = store_catalog_head(st, domain, &h);
    cr_assert(rc == 0 || rc == STORE_NOTFOUND, "store_catalog_head: %d", rc);
    return h;
}

static void assert_head(store_t *st, const char *domain, uint64_t seq, const store_head_t *want)
{
    store_head_t h = head_of(st, domain);
    cr_assert_eq(h.seq, seq, "%s head seq %llu, expected %llu", domain, (unsigned long long)h.seq,
                 (unsigned long long)seq);
    if (want)
        cr_assert_arr_eq(&h, want, sizeof h);
}

/* Accepts the entry at domain|seq of store src into catalog c, expecting r. */
static void accept_from(catalog_t *c, store_t *src, const char *domain, uint64_t seq, cat_result_t r)
{
    size_t len;
    char err[256] = "";
    uint8_t *bytes = stored(src, domain, seq, &len);
    cat_result_t got = catalog_accept(c, bytes, len, err, sizeof err);
    cr_assert_eq(got, r, "%s seq %llu: %s, expected %s (%s)", domain, (unsigned long long)seq,
                 cat_result_name(got), cat_result_name(r), err);
    if (r != CAT_ACCEPTED)
        cr_assert_neq(err[0], '\0', "a refusal names its reason");
    free(bytes);
}

/* Signs an arbitrary entry for domain with id (bypassing catalog_publish's checks). */
static uint8_t *forge(const identity_t *id, const char *domain, uint64_t seq, const uint8_t *prev,
                      const char *name, size_t *len)
{
    Trib__CatalogEntry ce = TRIB__CATALOG_ENTRY__INIT;
    Trib__Manifest m = manifest(domain, name);
    uint8_t *bytes;
    ce.domain = (char *)domain;
    ce.seq = seq;
    if (prev) {
        ce.prev_hash.data = (uint8_t *)prev;
        ce.prev_hash.len = 32;
    }
    ce.time_ms = 1;
    ce.change_case = TRIB__CATALOG_ENTRY__CHANGE_MANIFEST;
    ce.manifest = &m;
    cr_assert_eq(entry_sign(id, &ce, &bytes, len), 0);
    return bytes;
}

/* ---------------------------------------------------------------- results */

Test(catalog, result_names)
{
    static const char *const want[CAT_RESULT_COUNT] = {
        "accepted", "duplicate", "gap", "bad_signature", "wrong_key", "bad_chain", "error"};
    for (int i = 0; i < CAT_RESULT_COUNT; i++)
        cr_assert_str_eq(cat_result_name((cat_result_t)i), want[i]);
    cr_assert_str_eq(cat_result_name(CAT_RESULT_COUNT), "unknown");
    cr_assert_str_eq(cat_result_name((cat_result_t)-1), "unknown");
}

Test(catalog, new_refuses_bad_arguments)
{
    cr_assert_null(catalog_new(stores[2], &pay, "Payments"));
    cr_assert_null(catalog_new(stores[2], &pay, ""));
    cr_assert_null(catalog_new(stores[2], &pay, NULL));
    cr_assert_null(catalog_new(NULL, &pay, "payments"));
    cr_assert_null(catalog_new(stores[2], NULL, "payments"));
    catalog_t *c = NULL;
    catalog_destroy(&c);
    catalog_destroy(NULL);
}

/* ---------------------------------------------------------------- publish */

Test(catalog, publish_chains_seq_and_prev_hash)
{
    const char *names[] = {"settled-transactions", "refunds", "chargebacks"};
    uint8_t *returned[3];
    size_t returned_len[3];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t before = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;

    for (int i = 0; i < 3; i++) {
        Trib__Manifest m = manifest("payments", names[i]);
        uint64_t seq = 0;
        char err[256] = "";
        cr_assert_eq(catalog_publish(cpay, &m, NULL, &seq, &returned[i], &returned_len[i], err, sizeof err),
                     0, "%s", err);
        cr_assert_eq(seq, (uint64_t)i + 1);
        cr_assert_not_null(returned[i]);
    }

    uint8_t prev_hash[32];
    for (uint64_t seq = 1; seq <= 3; seq++) {
        size_t len;
        uint8_t *bytes = stored(stores[0], "payments", seq, &len);
        cr_assert_eq(len, returned_len[seq - 1]);
        cr_assert_arr_eq(bytes, returned[seq - 1], len, "returned bytes are the stored bytes");
        entry_t e;
        char err[256] = "";
        cr_assert_eq(entry_verify(bytes, len, &e, err, sizeof err), 0, "%s", err);
        cr_assert_str_eq(e.entry->domain, "payments");
        cr_assert_eq(e.entry->seq, seq);
        cr_assert_arr_eq(e.signed_entry->signer.data, pay.pk, 32);
        cr_assert_eq(e.entry->change_case, TRIB__CATALOG_ENTRY__CHANGE_MANIFEST);
        cr_assert_str_eq(e.entry->manifest->name, names[seq - 1]);
        cr_assert_geq(e.entry->time_ms, before);
        cr_assert_lt(e.entry->time_ms, before + 60000);
        if (seq == 1) {
            cr_assert_eq(e.entry->prev_hash.len, 0);
        } else {
            cr_assert_eq(e.entry->prev_hash.len, 32);
            cr_assert_arr_eq(e.entry->prev_hash.data, prev_hash, 32, "seq %llu chains to seq %llu",
                             (unsigned long long)seq, (unsigned long long)seq - 1);
        }
        entry_hash(e.signed_entry->body.data, e.signed_entry->body.len, prev_hash);
        cr_assert_arr_eq(e.hash, prev_hash, 32);
        entry_free(&e);
        free(bytes);
    }
    store_head_t h = head_of(stores[0], "payments");
    cr_assert_eq(h.seq, 3);
    cr_assert_arr_eq(h.key, pay.pk, 32, "the domain is bound to the publisher's key");
    cr_assert_arr_eq(h.hash, prev_hash, 32, "the head hash is the hash of the last body");

    store_product_t p;
    cr_assert_eq(store_product_get(stores[0], "payments/refunds", &p), 0);
    cr_assert_eq(p.manifest_seq, 2);
    cr_assert_eq(p.retired, 0);
    for (int i = 0; i < 3; i++)
        free(returned[i]);
}

Test(catalog, republish_updates_the_product)
{
    cr_assert_eq(publish_ok(cpay, "payments", "refunds"), 1);
    cr_assert_eq(publish_ok(cpay, "payments", "other"), 2);
    cr_assert_eq(publish_ok(cpay, "payments", "refunds"), 3);
    store_product_t p;
    cr_assert_eq(store_product_get(stores[0], "payments/refunds", &p), 0);
    cr_assert_eq(p.manifest_seq, 3);
    cr_assert_eq(p.last_seq, 3);
}

Test(catalog, retire_makes_the_product_retired)
{
    cr_assert_eq(publish_ok(cpay, "payments", "refunds"), 1);
    cr_assert_eq(retire_ok(cpay, "refunds"), 2);

    store_product_t p;
    cr_assert_eq(store_product_get(stores[0], "payments/refunds", &p), 0);
    cr_assert_eq(p.retired, 1);
    cr_assert_eq(p.last_seq, 2);
    cr_assert_eq(p.manifest_seq, 1);

    size_t len;
    uint8_t *bytes = stored(stores[0], "payments", 2, &len);
    entry_t e;
    char err[256] = "";
    cr_assert_eq(entry_verify(bytes, len, &e, err, sizeof err), 0, "%s", err);
    cr_assert_eq(e.entry->change_case, TRIB__CATALOG_ENTRY__CHANGE_TOMBSTONE);
    cr_assert_str_eq(e.entry->tombstone->name, "refunds");
    cr_assert_eq(e.entry->prev_hash.len, 32);
    entry_free(&e);
    free(bytes);
}

Test(catalog, publish_refusals_change_nothing)
{
    cr_assert_eq(publish_ok(cpay, "payments", "refunds"), 1);
    cr_assert_eq(retire_ok(cpay, "refunds"), 2);
    store_head_t before = head_of(stores[0], "payments");

    Trib__Manifest foreign = manifest("listening", "plays");
    Trib__Manifest badname = manifest("payments", "Refunds!");
    const struct {
        const Trib__Manifest *m;
        const char *retire;
        const char *want;
    } cases[] = {
        {NULL, "refunds", "payments/refunds is already retired"},
        {NULL, "nope", "payments/nope is not a known product"},
        {NULL, "Bad/Name", "product name 'Bad/Name' is not valid"},
        {&foreign, NULL, "manifest domain 'listening' is not this node's domain 'payments'"},
        {&badname, NULL, "product name 'Refunds!' is not valid"},
        {NULL, NULL, "give a manifest or a name to retire, not neither"},
        {&foreign, "refunds", "not both"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t seq = 99;
        uint8_t *out = (uint8_t *)1;
        size_t outlen = 1;
        char err[256] = "";
        cr_assert_eq(catalog_publish(cpay, cases[i].m, cases[i].retire, &seq, &out, &outlen, err, sizeof err),
                     -1, "case %zu accepted", i);
        cr_assert(strstr(err, cases[i].want) != NULL, "case %zu: expected '%s', got '%s'", i, cases[i].want, err);
        cr_assert_null(out);
        cr_assert_eq(outlen, 0);
        assert_head(stores[0], "payments", 2, &before);
    }
    store_head_t none = head_of(stores[0], "listening");
    cr_assert_eq(none.seq, 0, "nothing was written for the foreign domain");
}

Test(catalog, publish_refused_when_the_domain_is_bound_to_another_key)
{
    cr_assert_eq(publish_ok(cpay, "payments", "refunds"), 1);
    catalog_t *impostor = catalog_new(stores[0], &mallory, "payments");
    cr_assert_not_null(impostor);
    Trib__Manifest m = manifest("payments", "refunds");
    uint64_t seq = 0;
    char err[256] = "";
    int rc = catalog_publish(impostor, &m, NULL, &seq, NULL, NULL, err, sizeof err);
    catalog_destroy(&impostor);
    cr_assert_null(impostor);
    cr_assert_eq(rc, -1);
    cr_assert(strstr(err, "bound to another node's key") != NULL, "got '%s'", err);
    cr_assert(strstr(err, pay.hex) != NULL, "names the bound key: '%s'", err);
    assert_head(stores[0], "payments", 1, NULL);
}

/* Two threads publishing at once still produce one gap-free chain. */
typedef struct { catalog_t *c; const char *prefix; int n; int failed; } pub_args_t;

static void *publisher(void *arg)
{
    pub_args_t *a = arg;
    for (int i = 0; i < a->n; i++) {
        char name[32], err[256];
        snprintf(name, sizeof name, "%s-%d", a->prefix, i);
        Trib__Manifest m = manifest("payments", name);
        uint64_t seq;
        if (catalog_publish(a->c, &m, NULL, &seq, NULL, NULL, err, sizeof err) != 0)
            a->failed++;
    }
    return NULL;
}

Test(catalog, concurrent_publishers_keep_one_chain)
{
    enum { PER = 25 };
    pthread_t t1, t2;
    pub_args_t a1 = {cpay, "left", PER, 0}, a2 = {cpay, "right", PER, 0};
    cr_assert_eq(pthread_create(&t1, NULL, publisher, &a1), 0);
    cr_assert_eq(pthread_create(&t2, NULL, publisher, &a2), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    cr_assert_eq(a1.failed + a2.failed, 0);
    assert_head(stores[0], "payments", 2 * PER, NULL);
    /* The whole log replicates in order, so every prev_hash matched. */
    for (uint64_t seq = 1; seq <= 2 * PER; seq++)
        accept_from(clis, stores[0], "payments", seq, CAT_ACCEPTED);
}

/* Group commit: many threads at once. Each caller's result is its own entry (seq, bytes), the
 * seqs are 1..N without gaps or repeats, the chain replicates, several entries share a commit
 * (the threads wait on a real fsync, /tmp), and everything is there after the store is reopened. */
enum { GC_THREADS = 16, GC_EACH = 40 };

typedef struct {
    catalog_t *c;
    int id;
    uint64_t seq[GC_EACH];
    uint8_t *bytes[GC_EACH];
    size_t len[GC_EACH];
    char err[256];
    int failed;
} gc_thread_t;

static void *gc_publisher(void *arg)
{
    gc_thread_t *t = arg;
    for (int i = 0; i < GC_EACH; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%d-p%d", t->id, i);
        Trib__Manifest m = manifest("payments", name);
        if (catalog_publish(t->c, &m, NULL, &t->seq[i], &t->bytes[i], &t->len[i], t->err, sizeof t->err) != 0)
            t->failed++;
    }
    return NULL;
}

Test(catalog, group_commit_many_threads_one_chain_each_gets_its_own_entry)
{
    enum { TOTAL = GC_THREADS * GC_EACH };
    static gc_thread_t th[GC_THREADS];
    pthread_t tid[GC_THREADS];
    for (int i = 0; i < GC_THREADS; i++) {
        th[i] = (gc_thread_t){.c = cpay, .id = i};
        cr_assert_eq(pthread_create(&tid[i], NULL, gc_publisher, &th[i]), 0);
    }
    for (int i = 0; i < GC_THREADS; i++)
        pthread_join(tid[i], NULL);

    static int owner[TOTAL + 1];
    memset(owner, 0, sizeof owner);
    for (int i = 0; i < GC_THREADS; i++) {
        cr_assert_eq(th[i].failed, 0, "thread %d: %s", i, th[i].err);
        for (int k = 0; k < GC_EACH; k++) {
            uint64_t seq = th[i].seq[k];
            cr_assert(seq >= 1 && seq <= TOTAL, "seq %llu out of 1..%d", (unsigned long long)seq, TOTAL);
            cr_assert_eq(owner[seq], 0, "seq %llu given to two callers", (unsigned long long)seq);
            owner[seq] = i + 1;
            if (k > 0)
                cr_assert_gt(seq, th[i].seq[k - 1], "one caller's publishes keep their order");
            /* The caller's bytes are what is stored under its seq, and name its product. */
            size_t len;
            uint8_t *b = stored(stores[0], "payments", seq, &len);
            cr_assert_eq(len, th[i].len[k]);
            cr_assert_arr_eq(b, th[i].bytes[k], len, "seq %llu: returned bytes differ from stored", (unsigned long long)seq);
            entry_t e;
            char err[256] = "";
            cr_assert_eq(entry_verify(b, len, &e, err, sizeof err), 0, "%s", err);
            char want[32];
            snprintf(want, sizeof want, "t%d-p%d", i, k);
            cr_assert_str_eq(e.entry->manifest->name, want);
            entry_free(&e);
            free(b);
        }
    }
    assert_head(stores[0], "payments", TOTAL, NULL);
    /* The whole log replicates in seq order: every prev_hash matches. */
    for (uint64_t seq = 1; seq <= TOTAL; seq++)
        accept_from(clis, stores[0], "payments", seq, CAT_ACCEPTED);

    catalog_stats_t st;
    catalog_stats(cpay, &st);
    cr_assert_eq(st.published, TOTAL);
    cr_assert(st.commits >= 1 && st.commits <= TOTAL);
    fprintf(stderr, "group commit: %d publishes from %d threads in %llu commits (%.1f per commit)\n", TOTAL,
            GC_THREADS, (unsigned long long)st.commits, (double)TOTAL / (double)st.commits);

    /* Durable: a reopened store holds the same head and the same bytes. */
    store_head_t before = head_of(stores[0], "payments");
    catalog_destroy(&cpay);
    store_close(&stores[0]);
    char err[256] = "";
    stores[0] = store_open(dirs[0], NULL, err, sizeof err);
    cr_assert_not_null(stores[0], "reopen: %s", err);
    assert_head(stores[0], "payments", TOTAL, &before);
    for (int i = 0; i < GC_THREADS; i++)
        for (int k = 0; k < GC_EACH; k++) {
            size_t len;
            uint8_t *b = stored(stores[0], "payments", th[i].seq[k], &len);
            cr_assert_eq(len, th[i].len[k]);
            cr_assert_arr_eq(b, th[i].bytes[k], len);
            free(b);
            free(th[i].bytes[k]);
        }
}

/* One batch (catalog_publish_many queues them together: one leader, one commit) mixing good and
 * refused changes: each refused one gets its own error and no seq, the others are stored with
 * contiguous seqs on one chain. Retires see the products published and retired earlier in the
 * same batch, before any of it is stored. */
Test(catalog, group_commit_a_refused_change_fails_only_itself)
{
    cr_assert_eq(publish_ok(cpay, "payments", "old"), 1);
    catalog_stats_t s0, s1;
    catalog_stats(cpay, &s0);
    Trib__Manifest a = manifest("payments", "alpha"), b = manifest("payments", "beta");
    Trib__Manifest foreign = manifest("listening", "plays"), bad = manifest("payments", "Bad!");
    Trib__Manifest a_retired = manifest("payments", "alpha");
    a_retired.status = "retired";
    catalog_change_t ch[] = {
        {.manifest = &a},                  /* seq 2 */
        {.manifest = &foreign},            /* refused: another domain */
        {.retire_name = "nope"},           /* refused: unknown product */
        {.manifest = &b},                  /* seq 3 */
        {.retire_name = "alpha"},          /* seq 4: alpha was published in this batch */
        {.retire_name = "alpha"},          /* refused: retired in this batch */
        {.manifest = &a},                  /* seq 5: republished */
        {.manifest = &bad},                /* refused: bad name */
        {.retire_name = "old"},            /* seq 6: from the store */
        {.retire_name = "old"},            /* refused */
        {.manifest = &a_retired},          /* seq 7: a manifest saying retired ... */
        {.retire_name = "alpha"},          /* refused: ... counts as retired */
        {.manifest = NULL},                /* refused: neither */
        {.manifest = &b},                  /* seq 8 */
    };
    const uint64_t want_seq[] = {2, 0, 0, 3, 4, 0, 5, 0, 6, 0, 7, 0, 0, 8};
    const char *want_err[] = {NULL, "is not this node's domain", "payments/nope is not a known product", NULL, NULL,
                              "payments/alpha is already retired", NULL, "product name 'Bad!' is not valid", NULL,
                              "payments/old is already retired", NULL, "payments/alpha is already retired",
                              "not neither", NULL};
    size_t n = sizeof ch / sizeof ch[0];
    cr_assert_eq(catalog_publish_many(cpay, ch, n), 7);
    catalog_stats(cpay, &s1);
    cr_assert_eq(s1.commits - s0.commits, 1, "one batch, one commit");
    cr_assert_eq(s1.published - s0.published, 7);
    for (size_t i = 0; i < n; i++) {
        if (want_err[i]) {
            cr_assert_eq(ch[i].rc, -1, "change %zu accepted", i);
            cr_assert(strstr(ch[i].err, want_err[i]) != NULL, "change %zu: expected '%s', got '%s'", i, want_err[i],
                      ch[i].err);
            cr_assert_null(ch[i].signed_bytes);
            continue;
        }
        cr_assert_eq(ch[i].rc, 0, "change %zu: %s", i, ch[i].err);
        cr_assert_eq(ch[i].seq, want_seq[i], "change %zu seq %llu", i, (unsigned long long)ch[i].seq);
        size_t len;
        uint8_t *st = stored(stores[0], "payments", ch[i].seq, &len);
        cr_assert_eq(len, ch[i].signed_len);
        cr_assert_arr_eq(st, ch[i].signed_bytes, len);
        free(st);
        free(ch[i].signed_bytes);
    }
    assert_head(stores[0], "payments", 8, NULL);
    for (uint64_t seq = 1; seq <= 8; seq++)
        accept_from(clis, stores[0], "payments", seq, CAT_ACCEPTED);
    store_product_t p;
    cr_assert_eq(store_product_get(stores[0], "payments/alpha", &p), 0);
    cr_assert_eq(p.retired, 1);
    cr_assert_eq(p.manifest_seq, 7);
    cr_assert_eq(store_product_get(stores[0], "payments/old", &p), 0);
    cr_assert_eq(p.retired, 1);
    cr_assert_eq(store_product_get(stores[0], "payments/beta", &p), 0);
    cr_assert_eq(p.manifest_seq, 8);
}

/* The store's batch append: an entry it refuses (a duplicate seq, as when a racing writer got there
 * first; a gap; an entry without a change) is skipped with its own result and text, and the
 * entries around it are stored in the same transaction. */
Test(catalog, store_append_many_skips_a_refused_entry_and_stores_the_rest)
{
    enum { K = 4 };
    uint8_t *b[K];
    size_t len[K];
    entry_t e[K];
    uint8_t prev[32];
    for (int i = 0; i < K; i++) {
        char name[16], err[256] = "";
        snprintf(name, sizeof name, "p%d", i);
        b[i] = forge(&pay, "payments", (uint64_t)i + 1, i ? prev : NULL, name, &len[i]);
        cr_assert_eq(entry_verify(b[i], len[i], &e[i], err, sizeof err), 0, "%s", err);
        memcpy(prev, e[i].hash, 32);
    }
    Trib__CatalogEntry nameless = *e[2].entry;
    nameless.change_case = TRIB__CATALOG_ENTRY__CHANGE__NOT_SET;
#define ITEM(E, B) {(E).entry, (E).hash, pay.pk, (B), 0, 0, NULL, NULL}
    store_append_t items[] = {
        ITEM(e[0], b[0]),
        {e[3].entry, e[3].hash, pay.pk, b[3], len[3], 0, NULL, NULL},   /* seq 4 before 2 and 3: gap */
        {e[1].entry, e[1].hash, pay.pk, b[1], len[1], 0, NULL, NULL},
        {e[1].entry, e[1].hash, pay.pk, b[1], len[1], 0, NULL, NULL},   /* seq 2 again: duplicate */
        {&nameless, e[2].hash, pay.pk, b[2], len[2], 0, NULL, NULL},    /* refused before any transaction */
        {e[2].entry, e[2].hash, pay.pk, b[2], len[2], 0, NULL, NULL},
        {e[3].entry, e[3].hash, pay.pk, b[3], len[3], 0, NULL, NULL},
    };
#undef ITEM
    items[0].len = len[0];
    const int want[] = {0, STORE_GAP, 0, STORE_DUP, -1, 0, 0};
    const char *want_text[] = {NULL, "seq 4: gap after head 1", NULL, "seq 2: already held", "neither manifest nor tombstone",
                               NULL, NULL};
    char texts[7][256], err[256] = "";
    cr_assert_eq(store_catalog_append_many(stores[1], items, 7, texts[0], sizeof texts[0], err, sizeof err), 4, "%s",
                 err);
    for (int i = 0; i < 7; i++) {
        cr_assert_eq(items[i].rc, want[i], "item %d: rc %d (%s)", i, items[i].rc, texts[i]);
        if (want_text[i])
            cr_assert(strstr(texts[i], want_text[i]) != NULL, "item %d: expected '%s', got '%s'", i, want_text[i],
                      texts[i]);
    }
    store_head_t h = head_of(stores[1], "payments");
    cr_assert_eq(h.seq, 4);
    cr_assert_arr_eq(h.hash, e[3].hash, 32);
    for (uint64_t seq = 1; seq <= 4; seq++) {
        size_t l;
        uint8_t *got = stored(stores[1], "payments", seq, &l);
        cr_assert_eq(l, len[seq - 1]);
        cr_assert_arr_eq(got, b[seq - 1], l);
        free(got);
    }
    for (int i = 0; i < K; i++) {
        entry_free(&e[i]);
        free(b[i]);
    }
}

/* A frame of entries is accepted in one transaction, each with its own outcome: the good ones are
 * stored even when a forged, a duplicate and a gapped entry sit between them. */
Test(catalog, accept_many_gives_each_entry_its_own_outcome)
{
    for (int i = 0; i < 4; i++)
        publish_ok(cpay, "payments", "refunds");
    size_t len[5];
    uint8_t *b[5];
    for (int i = 0; i < 4; i++)
        b[i] = stored(stores[0], "payments", (uint64_t)i + 1, &len[i]);
    b[4] = malloc(len[1]);
    memcpy(b[4], b[1], len[1]);
    b[4][len[1] - 1] ^= 0x01;                         /* seq 2 with a broken signature */
    len[4] = len[1];
    ProtobufCBinaryData in[] = {{len[0], b[0]}, {len[3], b[3]}, {len[4], b[4]}, {len[1], b[1]},
                                {len[1], b[1]}, {len[2], b[2]}};
    const cat_result_t want[] = {CAT_ACCEPTED, CAT_GAP, CAT_BAD_SIGNATURE, CAT_ACCEPTED, CAT_DUPLICATE, CAT_ACCEPTED};
    cat_result_t res[6];
    char errs[6][256];
    cr_assert_eq(catalog_accept_many(clis, in, 6, res, errs[0], sizeof errs[0]), 3);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(res[i], want[i], "entry %d: %s, expected %s (%s)", i, cat_result_name(res[i]),
                     cat_result_name(want[i]), errs[i]);
        cr_assert_eq(errs[i][0] == '\0', want[i] == CAT_ACCEPTED, "entry %d text '%s'", i, errs[i]);
    }
    store_head_t src = head_of(stores[0], "payments");
    (void)src;
    assert_head(stores[1], "payments", 3, NULL);
    accept_from(clis, stores[0], "payments", 4, CAT_ACCEPTED);
    assert_head(stores[1], "payments", 4, &src);
    for (int i = 0; i < 5; i++)
        free(b[i]);
}

/* ---------------------------------------------------------------- accept */

Test(catalog, accept_replicates_in_order)
{
    uint8_t *out[4];
    size_t outlen[4];
    uint64_t seq;
    char err[256] = "";
    Trib__Manifest m1 = manifest("payments", "settled-transactions");
    Trib__Manifest m2 = manifest("payments", "refunds");
    cr_assert_eq(catalog_publish(cpay, &m1, NULL, &seq, &out[0], &outlen[0], err, sizeof err), 0, "%s", err);
    cr_assert_eq(catalog_publish(cpay, &m2, NULL, &seq, &out[1], &outlen[1], err, sizeof err), 0, "%s", err);
    cr_assert_eq(catalog_publish(cpay, &m1, NULL, &seq, &out[2], &outlen[2], err, sizeof err), 0, "%s", err);
    cr_assert_eq(catalog_publish(cpay, NULL, "refunds", &seq, &out[3], &outlen[3], err, sizeof err), 0, "%s", err);
    cr_assert_eq(seq, 4);

    for (int i = 0; i < 4; i++) {
        cat_result_t r = catalog_accept(clis, out[i], outlen[i], err, sizeof err);
        cr_assert_eq(r, CAT_ACCEPTED, "seq %d: %s (%s)", i + 1, cat_result_name(r), err);
        free(out[i]);
    }
    /* The replica holds the same bytes and the same head. */
    store_head_t src = head_of(stores[0], "payments");
    assert_head(stores[1], "payments", 4, &src);
    for (uint64_t s = 1; s <= 4; s++) {
        size_t la, lb;
        uint8_t *a = stored(stores[0], "payments", s, &la);
        uint8_t *b = stored(stores[1], "payments", s, &lb);
        cr_assert_eq(la, lb);
        cr_assert_arr_eq(a, b, la);
        free(a);
        free(b);
    }
    store_product_t p;
    cr_assert_eq(store_product_get(stores[1], "payments/refunds", &p), 0);
    cr_assert_eq(p.retired, 1);
    cr_assert_eq(store_product_get(stores[1], "payments/settled-transactions", &p), 0);
    cr_assert_eq(p.manifest_seq, 3);
    cr_assert_eq(p.retired, 0);

    /* Both domains live side by side in the replica. */
    cr_assert_eq(publish_ok(clis, "listening", "plays"), 1);
    assert_head(stores[1], "listening", 1, NULL);
    assert_head(stores[1], "payments", 4, &src);
}

Test(catalog, replay_is_a_duplicate_and_changes_nothing)
{
    for (int i = 0; i < 3; i++)
        publish_ok(cpay, "payments", "refunds");
    for (uint64_t s = 1; s <= 3; s++)
        accept_from(clis, stores[0], "payments", s, CAT_ACCEPTED);
    store_head_t before = head_of(stores[1], "payments");
    size_t l2;
    uint8_t *b2 = stored(stores[1], "payments", 2, &l2);

    for (uint64_t s = 1; s <= 3; s++)
        accept_from(clis, stores[0], "payments", s, CAT_DUPLICATE);
    /* An echo of a node's own entry back to it is a duplicate too. */
    accept_from(cpay, stores[0], "payments", 3, CAT_DUPLICATE);

    assert_head(stores[1], "payments", 3, &before);
    size_t l2b;
    uint8_t *b2b = stored(stores[1], "payments", 2, &l2b);
    cr_assert_eq(l2, l2b);
    cr_assert_arr_eq(b2, b2b, l2);
    uint8_t *none = NULL;
    size_t nlen = 0;
    cr_assert_eq(store_catalog_get(stores[1], "payments", 4, &none, &nlen), STORE_NOTFOUND);
    free(b2);
    free(b2b);
}

/* A byte-identical copy of a held entry is a duplicate without its signature being checked again
 * (it was checked when stored; most receptions under epidemic push are such copies). Shown with an
 * entry put into the store directly with a broken signature: its copy is a duplicate, while any
 * other bytes at a held seq are still verified and refused as what they are. */
Test(catalog, copy_of_a_held_entry_is_a_duplicate_without_verifying)
{
    publish_ok(cpay, "payments", "refunds");
    accept_from(clis, stores[0], "payments", 1, CAT_ACCEPTED);
    size_t len;
    uint8_t *real = stored(stores[0], "payments", 1, &len);
    entry_t e;
    char err[256] = "";
    cr_assert_eq(entry_verify(real, len, &e, err, sizeof err), 0, "%s", err);

    /* seq 1 in store 2, stored with its signature broken (the store itself verifies nothing) */
    Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, len, real);
    cr_assert_not_null(se);
    se->signature.data[0] ^= 0x01;
    size_t blen = trib__signed_entry__get_packed_size(se);
    uint8_t *broken = malloc(blen);
    trib__signed_entry__pack(se, broken);
    cr_assert_eq(store_catalog_append(stores[2], e.entry, e.hash, pay.pk, broken, blen, err, sizeof err), 0, "%s", err);
    catalog_t *c2 = catalog_new(stores[2], &lis, "listening");
    cr_assert_not_null(c2);
    cr_assert_eq(catalog_accept(c2, broken, blen, err, sizeof err), CAT_DUPLICATE, "%s", err);
    cr_assert(strstr(err, "payments seq 1: already held") != NULL, "got '%s'", err);
    /* the real entry at the same seq differs in bytes: verified, then a duplicate by seq */
    cr_assert_eq(catalog_accept(c2, real, len, err, sizeof err), CAT_DUPLICATE, "%s", err);
    /* and in the honest replica, a tampered copy of a held entry is still a bad signature */
    cr_assert_eq(catalog_accept(clis, broken, blen, err, sizeof err), CAT_BAD_SIGNATURE, "%s", err);
    catalog_destroy(&c2);
    trib__signed_entry__free_unpacked(se, NULL);
    entry_free(&e);
    free(broken);
    free(real);
}

Test(catalog, gap_is_refused_until_filled)
{
    for (int i = 0; i < 4; i++)
        publish_ok(cpay, "payments", "refunds");
    accept_from(clis, stores[0], "payments", 3, CAT_GAP);     /* nothing held yet */
    assert_head(stores[1], "payments", 0, NULL);
    accept_from(clis, stores[0], "payments", 1, CAT_ACCEPTED);
    store_head_t h1 = head_of(stores[1], "payments");
    accept_from(clis, stores[0], "payments", 3, CAT_GAP);
    accept_from(clis, stores[0], "payments", 4, CAT_GAP);
    assert_head(stores[1], "payments", 1, &h1);
    accept_from(clis, stores[0], "payments", 2, CAT_ACCEPTED);
    accept_from(clis, stores[0], "payments", 3, CAT_ACCEPTED);
    accept_from(clis, stores[0], "payments", 4, CAT_ACCEPTED);
    store_head_t src = head_of(stores[0], "payments");
    assert_head(stores[1], "payments", 4, &src);
}

Test(catalog, another_key_for_a_bound_domain_is_wrong_key)
{
    publish_ok(cpay, "payments", "refunds");
    accept_from(clis, stores[0], "payments", 1, CAT_ACCEPTED);
    store_head_t before = head_of(stores[1], "payments");

    /* mallory runs her own "payments" node (store 2) and gossips its first entry */
    catalog_t *cmal = catalog_new(stores[2], &mallory, "payments");
    cr_assert_not_null(cmal);
    publish_ok(cmal, "payments", "refunds");
    publish_ok(cmal, "payments", "refunds");
    catalog_destroy(&cmal);
    accept_from(clis, stores[2], "payments", 1, CAT_WRONG_KEY);
    accept_from(clis, stores[2], "payments", 2, CAT_WRONG_KEY);

    /* and a seq 2 that chains perfectly onto the real seq 1, but signed by her */
    size_t len;
    char err[256] = "";
    uint8_t *bytes = forge(&mallory, "payments", 2, before.hash, "refunds", &len);
    cr_assert_eq(catalog_accept(clis, bytes, len, err, sizeof err), CAT_WRONG_KEY, "%s", err);
    cr_assert(strstr(err, mallory.hex) != NULL, "names the signer: '%s'", err);
    free(bytes);

    assert_head(stores[1], "payments", 1, &before);
    /* the real owner's next entry still goes through */
    publish_ok(cpay, "payments", "refunds");
    accept_from(clis, stores[0], "payments", 2, CAT_ACCEPTED);
}

Test(catalog, forged_entry_is_bad_signature)
{
    publish_ok(cpay, "payments", "refunds");
    publish_ok(cpay, "payments", "settled-transactions");
    accept_from(clis, stores[0], "payments", 1, CAT_ACCEPTED);
    store_head_t before = head_of(stores[1], "payments");

    size_t len;
    uint8_t *real = stored(stores[0], "payments", 2, &len);
    uint8_t *copy = malloc(len);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            char err[256] = "";
            memcpy(copy, real, len);
            copy[i] ^= (uint8_t)(1u << bit);
            cat_result_t r = catalog_accept(clis, copy, len, err, sizeof err);
            cr_assert_eq(r, CAT_BAD_SIGNATURE, "byte %zu bit %d: %s (%s)", i, bit, cat_result_name(r), err);
        }
    }
    assert_head(stores[1], "payments", 1, &before);

    /* a body altered and re-signed by nobody: the signer field still names the owner */
    Trib__SignedEntry *se = trib__signed_entry__unpack(NULL, len, real);
    cr_assert_not_null(se);
    se->body.data[se->body.len - 1] ^= 0x01;
    size_t flen = trib__signed_entry__get_packed_size(se);
    uint8_t *forged = malloc(flen);
    trib__signed_entry__pack(se, forged);
    char err[256] = "";
    cr_assert_eq(catalog_accept(clis, forged, flen, err, sizeof err), CAT_BAD_SIGNATURE);
    cr_assert_str_eq(err, "signature does not verify");
    cr_assert_eq(catalog_accept(clis, NULL, 0, err, sizeof err), CAT_BAD_SIGNATURE);
    trib__signed_entry__free_unpacked(se, NULL);
    free(forged);

    accept_from(clis, stores[0], "payments", 2, CAT_ACCEPTED);
    free(copy);
    free(real);
}

Test(catalog, wrong_prev_hash_is_bad_chain)
{
    publish_ok(cpay, "payments", "refunds");
    accept_from(clis, stores[0], "payments", 1, CAT_ACCEPTED);
    store_head_t before = head_of(stores[1], "payments");

    /* correctly signed by the owner, right seq, wrong prev_hash */
    uint8_t wrong[32];
    memcpy(wrong, before.hash, sizeof wrong);
    wrong[31] ^= 0x80;
    size_t len;
    char err[256] = "";
    uint8_t *bytes = forge(&pay, "payments", 2, wrong, "refunds", &len);
    cr_assert_eq(catalog_accept(clis, bytes, len, err, sizeof err), CAT_BAD_CHAIN, "%s", err);
    cr_assert(strstr(err, "prev_hash") != NULL, "got '%s'", err);
    free(bytes);
    assert_head(stores[1], "payments", 1, &before);

    /* the right prev_hash from the same key is accepted */
    bytes = forge(&pay, "payments", 2, before.hash, "refunds", &len);
    cr_assert_eq(catalog_accept(clis, bytes, len, err, sizeof err), CAT_ACCEPTED, "%s", err);
    free(bytes);
    assert_head(stores[1], "payments", 2, NULL);
}
