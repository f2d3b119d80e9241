/* tests/test_search.c - the storage search index against a real LMDB environment in a temp dir.
 *
 * Covers: the tokenizer (snake, kebab, dotted, camelCase, email, case, stopwords, long words),
 * ranking over a synthetic catalog built through store_catalog_append, facet counts (both the
 * few-hits and the many-hits way of counting), filters and unknown filter values, re-indexing on
 * update and retire (old words no longer match), a tombstone for a never-published product,
 * paging with ties in id order, query validation, and the rebuild of an index missing from an
 * older store (opened with no_search, as an older build would have written it).
 * Must not: depend on gossip/ or node/ (entries are built with the protobuf-c INIT macros;
 * hashes and signatures are arbitrary bytes: storage verifies neither). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <lmdb.h>
#include "storage/search.h"
#include "storage/search_int.h"   /* the columns, compared with reading them whole */

/* ---------------------------------------------------------------- fixture */

static char dir[64];
static store_t *st;
static char err[256];

static store_t *open_store(int no_search, int nosync)
{
    store_opts_t o = { .no_search = no_search, .nosync = nosync };
    store_t *s = store_open(dir, &o, err, sizeof err);
    cr_assert_not_null(s, "store_open: %s", err);
    return s;
}

static void setup(void)
{
    strcpy(dir, "/tmp/trib-search-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    st = open_store(0, 1);
}

static void teardown(void)
{
    store_close(&st);
    char p[128];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
}

TestSuite(search, .init = setup, .fini = teardown, .timeout = 60);

/* ---------------------------------------------------------------- entries */

static const uint8_t KEY[STORE_KEY_LEN] = { 0x5e, 0xa7, 0xc4 };

static void test_hash(const char *domain, uint64_t seq, uint8_t out[STORE_HASH_LEN])
{
    memset(out, 0, STORE_HASH_LEN);
    snprintf((char *)out, STORE_HASH_LEN, "%s#%llu", domain, (unsigned long long)seq);
}

/* Entries held for one store_catalog_append_many (batch_begin .. batch_commit), as a peer's
 * batch of received entries is stored: one write transaction. */
#define BATCH_MAX 16
static struct {
    int on;
    size_t n;
    store_append_t it[BATCH_MAX];
    Trib__SignedEntry *se[BATCH_MAX];
    Trib__CatalogEntry *ce[BATCH_MAX];
    uint8_t *bytes[BATCH_MAX];
    uint8_t hash[BATCH_MAX][STORE_HASH_LEN];
} batch;

/* The next seq of domain: its head + 1 (after the entries of it the batch holds). */
static uint64_t next_seq(const char *domain)
{
    store_head_t h;
    int rc = store_catalog_head(st, domain, &h);
    cr_assert(rc == 0 || rc == STORE_NOTFOUND, "head %s: %s", domain, store_last_error());
    uint64_t held = 0;
    for (size_t i = 0; batch.on && i < batch.n; i++)
        held += strcmp(batch.ce[i]->domain, domain) == 0;
    return (rc == 0 ? h.seq + 1 : 1) + held;
}

typedef struct {
    const char *id;          /* domain/name */
    const char *title, *purpose;
    const char *tags;        /* comma-separated */
    const char *business, *technical;
    const char *status;      /* NULL: active */
    const char *schema;      /* comma-separated property names */
} prod_t;

static size_t split(const char *list, char *buf, size_t cap, char **out, size_t max)
{
    size_t n = 0;
    if (!list)
        return 0;
    snprintf(buf, cap, "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save))
        out[n++] = t;
    return n;
}

/* Wraps e as a SignedEntry (as gossip/ stores it: the rebuild decodes these bytes), appends. */
static int append_entry(Trib__CatalogEntry *e)
{
    uint8_t prev[STORE_HASH_LEN], hash[STORE_HASH_LEN];
    if (e->seq > 1) {
        test_hash(e->domain, e->seq - 1, prev);
        e->prev_hash.data = prev;
        e->prev_hash.len = sizeof prev;
    }
    size_t bn = trib__catalog_entry__get_packed_size(e);
    uint8_t *body = malloc(bn);
    cr_assert_not_null(body);
    trib__catalog_entry__pack(e, body);
    Trib__SignedEntry se = TRIB__SIGNED_ENTRY__INIT;
    uint8_t sig[64] = { 1 };
    se.body.data = body;
    se.body.len = bn;
    se.signature.data = sig;
    se.signature.len = sizeof sig;
    se.signer.data = (uint8_t *)KEY;
    se.signer.len = STORE_KEY_LEN;
    size_t sn = trib__signed_entry__get_packed_size(&se);
    uint8_t *bytes = malloc(sn);
    cr_assert_not_null(bytes);
    trib__signed_entry__pack(&se, bytes);
    test_hash(e->domain, e->seq, hash);
    if (batch.on) {              /* held: decoded from the bytes, as a receiver holds it */
        cr_assert_lt(batch.n, BATCH_MAX);
        size_t i = batch.n++;
        batch.bytes[i] = bytes;
        batch.se[i] = trib__signed_entry__unpack(NULL, sn, bytes);
        cr_assert_not_null(batch.se[i]);
        batch.ce[i] = trib__catalog_entry__unpack(NULL, batch.se[i]->body.len, batch.se[i]->body.data);
        cr_assert_not_null(batch.ce[i]);
        memcpy(batch.hash[i], hash, sizeof hash);
        batch.it[i] = (store_append_t){ .entry = batch.ce[i], .hash = batch.hash[i], .signer = KEY,
                                        .signed_bytes = bytes, .len = sn };
        free(body);
        return 0;
    }
    int rc = store_catalog_append(st, e, hash, KEY, bytes, sn, err, sizeof err);
    free(bytes);
    free(body);
    return rc;
}

static void batch_begin(void)
{
    memset(&batch, 0, sizeof batch);
    batch.on = 1;
}

/* Stores the held entries in one transaction; each must be stored. */
static void batch_commit(void)
{
    long got = store_catalog_append_many(st, batch.it, batch.n, NULL, 0, err, sizeof err);
    cr_assert_eq(got, (long)batch.n, "append_many: %ld of %zu: %s", got, batch.n, err);
    for (size_t i = 0; i < batch.n; i++) {
        cr_expect_eq(batch.it[i].rc, 0, "item %zu", i);
        trib__catalog_entry__free_unpacked(batch.ce[i], NULL);
        trib__signed_entry__free_unpacked(batch.se[i], NULL);
        free(batch.bytes[i]);
    }
    memset(&batch, 0, sizeof batch);
}

/* Publishes p with classification cls (NULL: none, which is internal). */
static void publish_as(const prod_t *p, const char *cls)
{
    char domain[64], name[64];
    const char *slash = strchr(p->id, '/');
    cr_assert_not_null(slash);
    snprintf(domain, sizeof domain, "%.*s", (int)(slash - p->id), p->id);
    snprintf(name, sizeof name, "%s", slash + 1);
    char tagbuf[512], schemabuf[512];
    char *tags[32], *props[32];
    Trib__SchemaProperty sp[32], *spp[32];
    Trib__Manifest m = TRIB__MANIFEST__INIT;
    m.domain = domain;
    m.name = name;
    m.version = "1.0.0";
    m.status = (char *)(p->status ? p->status : "active");
    m.title = (char *)(p->title ? p->title : "");
    m.purpose = (char *)(p->purpose ? p->purpose : "");
    m.owner_business = (char *)(p->business ? p->business : "owner@example.com");
    m.owner_technical = (char *)(p->technical ? p->technical : "team-data");
    m.classification = (char *)(cls ? cls : "");
    m.n_tags = split(p->tags, tagbuf, sizeof tagbuf, tags, 32);
    m.tags = tags;
    m.n_schema = split(p->schema, schemabuf, sizeof schemabuf, props, 32);
    for (size_t i = 0; i < m.n_schema; i++) {
        trib__schema_property__init(&sp[i]);
        sp[i].name = props[i];
        sp[i].logical_type = "string";
        spp[i] = &sp[i];
    }
    m.schema = spp;
    Trib__CatalogEntry e = TRIB__CATALOG_ENTRY__INIT;
    e.domain = domain;
    e.seq = next_seq(domain);
    e.time_ms = 1700000000000;
    e.change_case = TRIB__CATALOG_ENTRY__CHANGE_MANIFEST;
    e.manifest = &m;
    int rc = append_entry(&e);
    cr_assert_eq(rc, 0, "publish %s: rc %d %s", p->id, rc, err);
}

static void publish(const prod_t *p) { publish_as(p, NULL); }

static int retire(const char *id)
{
    char domain[64], name[64];
    const char *slash = strchr(id, '/');
    snprintf(domain, sizeof domain, "%.*s", (int)(slash - id), id);
    snprintf(name, sizeof name, "%s", slash + 1);
    Trib__Tombstone ts = TRIB__TOMBSTONE__INIT;
    ts.name = name;
    ts.reason = "test";
    Trib__CatalogEntry e = TRIB__CATALOG_ENTRY__INIT;
    e.domain = domain;
    e.seq = next_seq(domain);
    e.change_case = TRIB__CATALOG_ENTRY__CHANGE_TOMBSTONE;
    e.tombstone = &ts;
    return append_entry(&e);
}

/* ---------------------------------------------------------------- queries */

typedef struct {
    const char *q, *domain, *tag, *owner, *status, *classification;
} query_t;

static store_result_t run(const query_t *qq, size_t limit)
{
    store_query_t q = { .q = qq->q, .domain = qq->domain, .tag = qq->tag, .owner = qq->owner,
                        .status = qq->status, .classification = qq->classification, .limit = limit };
    store_result_t r;
    int rc = store_search(st, &q, &r, err, sizeof err);
    cr_assert_eq(rc, 0, "search '%s': %s", qq->q ? qq->q : "", err);
    return r;
}

/* The hit ids, space-separated. */
static void hit_list(const store_result_t *r, char *out, size_t cap)
{
    out[0] = '\0';
    for (size_t i = 0; i < r->nhits; i++) {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%s", i ? " " : "", r->hits[i].id);
    }
}

static size_t facet_count(const store_result_t *r, int facet, const char *value)
{
    for (size_t i = 0; i < r->nfacets; i++)
        if (r->facets[i].facet == facet && strcmp(r->facets[i].value, value) == 0)
            return r->facets[i].count;
    return 0;
}

static size_t facet_values(const store_result_t *r, int facet)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nfacets; i++)
        n += r->facets[i].facet == facet;
    return n;
}

/* ---------------------------------------------------------------- tokenizer */

Test(search, tokenizer_table)
{
    static const struct { const char *in, *want; int n; } cases[] = {
        { "settled_transactions", "settled transactions", 2 },
        { "settled-transactions", "settled transactions", 2 },
        { "payments.settled.v2", "payments settled v2", 3 },
        { "amountMinor", "amount minor", 2 },
        { "HTTPServerLog", "http server log", 3 },
        { "txn_ID", "txn id", 2 },
        { "Maria.Lopez@Example.com", "maria lopez example com", 4 },
        { "The purpose of a product, for finance!", "purpose product finance", 3 },
        { "sha256 q4 2024", "sha256 q4 2024", 3 },
        { "  --__..  ", "", 0 },
        { "", "", 0 },
        { "Café crème", "café crème", 2 },
        { "payments/settled-transactions", "payments settled transactions", 3 },
        { "That THIS with from, these froms", "these froms", 2 },   /* the longest stopwords */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[256];
        int n = store_search_tokens(cases[i].in, out, sizeof out);
        cr_expect_eq(n, cases[i].n, "'%s': %d words (%s)", cases[i].in, n, out);
        cr_expect_str_eq(out, cases[i].want, "'%s'", cases[i].in);
    }
    /* A word longer than 64 bytes is cut; an output buffer too small is an error. */
    char longw[100], out[128];
    memset(longw, 'x', 99);
    longw[99] = '\0';
    cr_expect_eq(store_search_tokens(longw, out, sizeof out), 1);
    cr_expect_eq(strlen(out), 64);
    cr_expect_eq(store_search_tokens("alpha beta", out, 6), -1);
    cr_expect_eq(store_search_tokens(NULL, out, sizeof out), -1);
}

/* ---------------------------------------------------------------- ranking */

static const prod_t catalog[] = {
    { "payments/settled-transactions", "Settled card transactions", "Every card transaction once settled, for finance and fraud.",
      "finance,cards", "maria.lopez@example.com", "payments-data@example.com", NULL, "txn_id,amount_minor,currency,settled_at" },
    { "payments/refunds", "Card refunds", "Refunds issued to card holders.",
      "cards", "maria.lopez@example.com", "payments-data@example.com", NULL, "refund_id,txn_id,amount_minor" },
    { "payments/chargebacks", "Chargebacks", "Disputed transactions reported by issuers.",
      "fraud,cards", "ana@example.com", "payments-data@example.com", "deprecated", "case_id,txn_id" },
    { "finance/ledger", "General ledger", "Double-entry bookkeeping of the company.",
      "accounting", "cfo@example.com", "finance-eng", NULL, "entry_id,account,amount" },
    { "finance/budget-plan", "Budget plan", "Yearly plan per cost center.",
      "planning", "cfo@example.com", "finance-eng", "draft", "cost_center,amount" },
    { "growth/signups", "Signups", "New accounts, with their acquisition channel. Finance uses it for CAC.",
      "funnel", "li@example.com", "growth-eng", NULL, "user_id,channel,signed_up_at" },
    { "growth/finance-report", "Weekly report", "Aggregates for the board.",
      "reporting", "li@example.com", "growth-eng", NULL, "week,revenue" },
    { "listening/track-plays", "Track plays", "Every play of a track.",
      "listening,streams", "editorial@example.com", "listening-data@example.com", NULL, "play_id,track_id,currency_code" },
};

static void load_catalog(void)
{
    for (size_t i = 0; i < sizeof catalog / sizeof *catalog; i++)
        publish(&catalog[i]);
}

Test(search, ranking_table)
{
    load_catalog();
    static const struct { query_t q; const char *top; } cases[] = {
        /* exact id, exact name (also spelled with spaces) first */
        { { .q = "payments/refunds" }, "payments/refunds" },
        { { .q = "settled-transactions" }, "payments/settled-transactions payments/chargebacks" },
        { { .q = "finance report" }, "growth/finance-report" },
        /* name beats tag beats description; the domain counts a little */
        { { .q = "finance" }, "growth/finance-report payments/settled-transactions finance/budget-plan finance/ledger growth/signups" },
        { { .q = "cards" }, "payments/chargebacks payments/refunds payments/settled-transactions" },
        /* more words matched ranks higher; not all words are required (refunds has only
         * "card"); only the last word matches as a prefix ("card" -> the tag "cards") */
        { { .q = "card fraud" }, "payments/settled-transactions payments/chargebacks payments/refunds" },
        { { .q = "fraud card" }, "payments/chargebacks payments/settled-transactions payments/refunds" },
        /* schema field names, split snake_case */
        { { .q = "amount minor" }, "payments/refunds payments/settled-transactions" },
        { { .q = "currency" }, "listening/track-plays payments/settled-transactions" },   /* tie: id order */
        /* owners */
        { { .q = "maria" }, "payments/refunds payments/settled-transactions" },
        /* prefix of a word, case-insensitive */
        { { .q = "Charge" }, "payments/chargebacks" },
        /* filters alone: every match, in id order */
        { { .domain = "finance" }, "finance/budget-plan finance/ledger" },
        { { .tag = "CARDS", .status = "active" }, "payments/refunds payments/settled-transactions" },
        { { .q = "transactions", .domain = "payments", .tag = "cards", .owner = "maria.lopez@example.com", .status = "active" }, "payments/settled-transactions" },
        { { .owner = "payments-data@example.com", .status = "deprecated" }, "payments/chargebacks" },
        /* unknown facet values and unknown words: no hits */
        { { .domain = "nosuchdomain" }, "" },
        { { .q = "finance", .tag = "nosuchtag" }, "" },
        { { .owner = "nobody@example.com" }, "" },
        { { .q = "zebra" }, "" },
        { { .q = "the of and" }, "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        store_result_t r = run(&cases[i].q, 100);
        char got[1024];
        hit_list(&r, got, sizeof got);
        cr_expect_eq(strncmp(got, cases[i].top, strlen(cases[i].top)), 0,
                     "case %zu ('%s'): got [%s], want prefix [%s]", i, cases[i].q.q ? cases[i].q.q : "",
                     got, cases[i].top);
        if (!*cases[i].top)
            cr_expect_eq(r.total, 0, "case %zu: total %zu", i, r.total);
        cr_expect_eq(r.total, r.nhits, "case %zu", i);
        for (size_t j = 1; j < r.nhits; j++)
            cr_expect_geq(r.hits[j - 1].score, r.hits[j].score, "case %zu: scores not descending", i);
        store_result_free(&r);
    }
}

Test(search, exact_match_outranks_everything)
{
    load_catalog();
    store_result_t r = run(&(query_t){ .q = "signups" }, 100);
    cr_assert_geq(r.nhits, 1);
    cr_expect_str_eq(r.hits[0].id, "growth/signups");
    cr_expect_geq(r.hits[0].score, 10000);
    store_result_free(&r);
    /* A multi-word query: the doc matching both words first, then the single-word ones. */
    r = run(&(query_t){ .q = "track currency" }, 100);
    cr_assert_geq(r.nhits, 2);
    cr_expect_str_eq(r.hits[0].id, "listening/track-plays");
    cr_expect_str_eq(r.hits[1].id, "payments/settled-transactions");
    cr_expect_gt(r.hits[0].score, r.hits[1].score + 90);
    store_result_free(&r);
}

/* An id typed as words ("billing orders daily") is the exact id billing/orders-daily: first,
 * before billing-us/orders-daily, which matches every word as well and sorts first by id
 * ('-' < '/'); at company scale the same name lives in many domains (a region each). */
Test(search, an_id_typed_as_words_outranks_the_same_name_elsewhere)
{
    publish(&(prod_t){ .id = "billing/orders-daily", .title = "Daily orders of billing" });
    publish(&(prod_t){ .id = "billing-us/orders-daily", .title = "Daily orders of billing-us" });
    publish(&(prod_t){ .id = "billing-us/orders", .title = "Orders of billing-us" });
    const char *qs[] = { "billing orders daily", "Billing Orders-Daily", "billing orders_daily" };
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        store_result_t r = run(&(query_t){ .q = qs[i] }, 100);
        cr_assert_geq(r.nhits, 2);
        cr_expect_str_eq(r.hits[0].id, "billing/orders-daily", "'%s' ranked %s first", qs[i], r.hits[0].id);
        cr_expect_geq(r.hits[0].score, 20000);
        cr_expect_lt(r.hits[1].score, 10000);
        store_result_free(&r);
    }
    store_result_t r = run(&(query_t){ .q = "billing us orders daily" }, 100);
    cr_assert_geq(r.nhits, 1);
    cr_expect_str_eq(r.hits[0].id, "billing-us/orders-daily");
    store_result_free(&r);
    /* the id as typed, stopwords and repeats too: "by" and the second "fin" are part of it (a
     * hostile review: the words' set gave fin/orders-region the bonus for fin/orders-by-region) */
    publish(&(prod_t){ .id = "fin/orders-by-region", .title = "Orders by region" });
    publish(&(prod_t){ .id = "fin/orders-region", .title = "Orders region" });
    publish(&(prod_t){ .id = "fin/fin-report", .title = "Fin report" });
    publish(&(prod_t){ .id = "fin/report", .title = "Report" });
    static const char *const typed[][2] = { { "fin orders by region", "fin/orders-by-region" },
                                            { "fin fin report", "fin/fin-report" } };
    for (size_t i = 0; i < 2; i++) {
        r = run(&(query_t){ .q = typed[i][0] }, 100);
        cr_assert_geq(r.nhits, 2);
        cr_expect_str_eq(r.hits[0].id, typed[i][1], "'%s' ranked %s first", typed[i][0], r.hits[0].id);
        cr_expect_lt(r.hits[1].score, 20000, "'%s': %s has the id bonus too", typed[i][0], r.hits[1].id);
        store_result_free(&r);
    }
    /* a name typed exactly, or as words, is that name: not another name with the same set of words
     * (orders-area for orders-by-area; report for the-report); a letter beyond ASCII or a query
     * longer than an id names none (café is no "caf") */
    publish(&(prod_t){ .id = "ops/orders-by-area", .title = "Orders by area" });
    publish(&(prod_t){ .id = "ops/orders-area", .title = "Orders area" });
    publish(&(prod_t){ .id = "caf/orders", .title = "Orders" });
    static const char *const named[][2] = { { "orders-by-area", "ops/orders-by-area" },
                                            { "orders by area", "ops/orders-by-area" } };
    for (size_t i = 0; i < 2; i++) {
        r = run(&(query_t){ .q = named[i][0] }, 100);
        cr_assert_geq(r.nhits, 2);
        cr_expect_str_eq(r.hits[0].id, named[i][1], "'%s' ranked %s first", named[i][0], r.hits[0].id);
        cr_expect_lt(r.hits[1].score, 10000, "'%s': %s has a bonus too", named[i][0], r.hits[1].id);
        store_result_free(&r);
    }
    /* camelCase and a no-break space separate words as the words' tokenizer does (a review:
     * "ordersDaily" had lost its exact name) */
    publish(&(prod_t){ .id = "ops/orders-daily", .title = "Orders daily" });
    publish(&(prod_t){ .id = "ops/daily-orders", .title = "Daily orders" });
    static const char *const camel[][2] = { { "ordersDaily", "" }, { "OrdersDaily", "" }, { "orders\xc2\xa0" "daily", "" } };
    for (size_t i = 0; i < 3; i++) {
        r = run(&(query_t){ .q = camel[i][0] }, 100);
        cr_assert_geq(r.nhits, 1, "'%s' found nothing", camel[i][0]);
        for (size_t h = 0; h < r.nhits; h++) {   /* every product named orders-daily (several domains) has it */
            int is_named = strstr(r.hits[h].id, "/orders-daily") != NULL;
            cr_expect(is_named ? r.hits[h].score >= 10000 : r.hits[h].score < 10000, "'%s': %s scored %u", camel[i][0],
                      r.hits[h].id, r.hits[h].score);
        }
        store_result_free(&r);
    }
    r = run(&(query_t){ .q = "caf\xc3\xa9 orders" }, 100);
    for (size_t i = 0; i < r.nhits; i++)
        cr_expect_lt(r.hits[i].score, 10000, "'café orders' gave %s a bonus", r.hits[i].id);
    store_result_free(&r);
    /* a product elsewhere whose name is the whole query (ops/fin-orders-daily for "fin orders
     * daily") is an exact name, below the exact id */
    publish(&(prod_t){ .id = "fin/orders-daily", .title = "Daily orders" });
    publish(&(prod_t){ .id = "ops/fin-orders-daily", .title = "Fin orders daily, daily orders of fin for ops" });
    r = run(&(query_t){ .q = "fin orders daily" }, 100);
    cr_assert_geq(r.nhits, 2);
    cr_expect_str_eq(r.hits[0].id, "fin/orders-daily");
    cr_expect_str_eq(r.hits[1].id, "ops/fin-orders-daily");
    cr_expect(r.hits[1].score >= 10000 && r.hits[1].score < 20000, "the exact name's score: %u", r.hits[1].score);
    store_result_free(&r);
}

/* ---------------------------------------------------------------- facets */

Test(search, facet_counts)
{
    load_catalog();
    store_result_t r = run(&(query_t){ .q = 0 }, 100);
    cr_expect_eq(r.total, 8);
    cr_expect_eq(facet_count(&r, STORE_FACET_DOMAIN, "payments"), 3);
    cr_expect_eq(facet_count(&r, STORE_FACET_DOMAIN, "finance"), 2);
    cr_expect_eq(facet_count(&r, STORE_FACET_DOMAIN, "growth"), 2);
    cr_expect_eq(facet_count(&r, STORE_FACET_DOMAIN, "listening"), 1);
    cr_expect_eq(facet_values(&r, STORE_FACET_DOMAIN), 4);
    cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "cards"), 3);
    cr_expect_eq(facet_count(&r, STORE_FACET_OWNER, "maria.lopez@example.com"), 2);
    cr_expect_eq(facet_count(&r, STORE_FACET_OWNER, "payments-data@example.com"), 3);
    cr_expect_eq(facet_count(&r, STORE_FACET_STATUS, "active"), 6);
    cr_expect_eq(facet_count(&r, STORE_FACET_STATUS, "draft"), 1);
    cr_expect_eq(facet_count(&r, STORE_FACET_STATUS, "deprecated"), 1);
    /* grouped by facet, highest count first */
    cr_expect_eq(r.facets[0].facet, STORE_FACET_DOMAIN);
    cr_expect_str_eq(r.facets[0].value, "payments");
    store_result_free(&r);

    /* over the hits of a query and filter only */
    r = run(&(query_t){ .q = "card", .status = "active" }, 1);
    cr_expect_eq(r.total, 2);
    cr_expect_eq(r.nhits, 1, "limit 1");
    cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "cards"), 2);
    cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "finance"), 1);
    cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "fraud"), 0);
    cr_expect_eq(facet_values(&r, STORE_FACET_STATUS), 1);
    store_result_free(&r);

    /* facet_max keeps the most frequent values per facet, facet_max_domain the domain facet's */
    store_query_t q = { .facet_max = 1, .facet_max_domain = 1, .limit = 10 };
    cr_assert_eq(store_search(st, &q, &r, err, sizeof err), 0, "%s", err);
    cr_expect_eq(facet_values(&r, STORE_FACET_DOMAIN), 1);
    cr_expect_str_eq(r.facets[0].value, "payments");
    store_result_free(&r);
    q.facet_max_domain = 0;   /* every domain, the other facets still cut at facet_max */
    cr_assert_eq(store_search(st, &q, &r, err, sizeof err), 0, "%s", err);
    cr_expect_eq(facet_values(&r, STORE_FACET_DOMAIN), 4);
    cr_expect_eq(facet_values(&r, STORE_FACET_TAG), 1);
    store_result_free(&r);
}

/* Many hits take the sweep over facet postings; few take the hits' records: both give the
 * counts computed here from how the products were made. */
Test(search, facet_counts_many_and_few_hits)
{
    char id[64], title[64], tags[64];
    for (int i = 0; i < 600; i++) {
        snprintf(id, sizeof id, "d%d/p%03d", i % 5, i);
        snprintf(title, sizeof title, "product %d %s", i, i % 2 ? "odd" : "even");
        snprintf(tags, sizeof tags, "t%d,all", i % 7);
        publish(&(prod_t){ id, title, "", tags, i % 3 ? "a@x" : "b@x", NULL, i % 4 ? NULL : "draft", NULL });
    }
    static const query_t queries[] = {
        { .q = "product" },                 /* 600 hits: sweep */
        { .q = "odd" },                     /* 300 hits: sweep */
        { .q = "product", .domain = "d1" }, /* 120 hits: records */
        { .q = "even", .domain = "d2" },    /* 60 hits: records */
    };
    for (size_t c = 0; c < sizeof queries / sizeof *queries; c++) {
        size_t total = 0, t3 = 0, bx = 0, draft = 0, d2 = 0;
        for (int i = 0; i < 600; i++) {
            int hit = (!strcmp(queries[c].q, "product") || !strcmp(queries[c].q, i % 2 ? "odd" : "even")) &&
                      (!queries[c].domain || i % 5 == queries[c].domain[1] - '0');
            if (!hit)
                continue;
            total++;
            t3 += i % 7 == 3;
            bx += i % 3 == 0;
            draft += i % 4 == 0;
            d2 += i % 5 == 2;
        }
        store_result_t r = run(&queries[c], 10);
        cr_expect_eq(r.total, total, "query %zu: %zu hits, want %zu", c, r.total, total);
        cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "all"), total, "query %zu", c);
        cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "t3"), t3, "query %zu", c);
        cr_expect_eq(facet_count(&r, STORE_FACET_OWNER, "b@x"), bx, "query %zu", c);
        cr_expect_eq(facet_count(&r, STORE_FACET_OWNER, "team-data"), total, "query %zu", c);
        cr_expect_eq(facet_count(&r, STORE_FACET_STATUS, "draft"), draft, "query %zu", c);
        cr_expect_eq(facet_count(&r, STORE_FACET_STATUS, "active"), total - draft, "query %zu", c);
        cr_expect_eq(facet_count(&r, STORE_FACET_DOMAIN, "d2"), d2, "query %zu", c);
        store_result_free(&r);
    }
}

/* ---------------------------------------------------------------- restricted products */

static int sees_none(void *ctx, const char *id) { (void)ctx, (void)id; return 0; }
static int sees_all(void *ctx, const char *id) { (void)ctx, (void)id; return 1; }
static int sees_one(void *ctx, const char *id) { return strcmp(ctx, id) == 0; }

static store_result_t run_as(const query_t *qq, const char *compliance, int (*sees)(void *, const char *),
                             void *ctx)
{
    store_query_t q = { .q = qq->q, .domain = qq->domain, .tag = qq->tag, .owner = qq->owner,
                        .status = qq->status, .classification = qq->classification, .compliance = compliance,
                        .limit = 10, .sees = sees, .sees_ctx = ctx };
    store_result_t r;
    cr_assert_eq(store_search(st, &q, &r, err, sizeof err), 0, "search '%s': %s", qq->q ? qq->q : "", err);
    return r;
}

/* DESIGN §13: a restricted product is a stub (id, domain, name, title, status, owners) to a caller
 * who may not see it in full. Such a caller must learn nothing else of it from a search: not its
 * tags or compliance from the facet counts, nor from a tag or compliance filter, nor from the
 * words of its tags, schema or description matching. Both ways of counting facets (many hits:
 * the postings sweep; few: the hits' records); a caller who may see it (sees) gets it all. */
Test(search, restricted_products_count_as_their_stub)
{
    char id[64], title[64], tags[64];
    const char *ids[60], *states[60];
    char idbuf[60][64];
    for (int i = 0; i < 600; i++) {
        int r = i % 10 == 0;
        snprintf(id, sizeof id, "d%d/p%03d", i % 5, i);
        snprintf(title, sizeof title, "product %d", i);
        snprintf(tags, sizeof tags, "%s,all", r ? "secret-merger" : "open");
        publish_as(&(prod_t){ id, title, r ? "takeover of acme" : "", tags, "a@x", NULL, NULL,
                              r ? "dealroom" : "txn_id" }, r ? "restricted" : "internal");
        if (r) {
            snprintf(idbuf[i / 10], sizeof idbuf[0], "%s", id);
            ids[i / 10] = idbuf[i / 10];
            states[i / 10] = "non_compliant";
        }
    }
    cr_assert_eq(store_search_set_compliance(st, ids, states, 60, err, sizeof err), 0, "%s", err);
    static const query_t queries[] = {
        { .q = "product" },                   /* 600 hits: sweep */
        { .q = "product", .domain = "d0" },   /* 120 hits, 60 of them restricted: records */
    };
    for (size_t c = 0; c < 2; c++) {
        size_t total = c ? 120 : 600, restricted = 60;
        store_result_t r = run_as(&queries[c], NULL, NULL, NULL);   /* no sees: no restricted product in full */
        cr_expect_eq(r.total, total, "query %zu: a stub is found by its title", c);
        cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "secret-merger"), 0, "query %zu: a stub's tag counted", c);
        cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "all"), total - restricted, "query %zu", c);
        cr_expect_eq(facet_count(&r, STORE_FACET_COMPLIANCE, "non_compliant"), 0, "query %zu", c);
        cr_expect_eq(facet_count(&r, STORE_FACET_OWNER, "a@x"), total, "query %zu: owners are in the stub", c);
        cr_expect_eq(facet_count(&r, STORE_FACET_STATUS, "active"), total, "query %zu", c);
        cr_expect_eq(facet_count(&r, STORE_FACET_DOMAIN, "d0"), c ? total : 120, "query %zu", c);
        cr_expect_eq(facet_count(&r, STORE_FACET_CLASSIFICATION, "restricted"), restricted,
                     "query %zu: the stub shows its classification", c);
        cr_expect_eq(facet_count(&r, STORE_FACET_CLASSIFICATION, "internal"), total - restricted, "query %zu", c);
        store_result_free(&r);
        r = run_as(&queries[c], NULL, sees_none, NULL);
        cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "secret-merger"), 0, "query %zu: sees none", c);
        store_result_free(&r);
        r = run_as(&queries[c], NULL, sees_all, NULL);
        cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "secret-merger"), restricted, "query %zu: sees all", c);
        cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "all"), total, "query %zu", c);
        cr_expect_eq(facet_count(&r, STORE_FACET_COMPLIANCE, "non_compliant"), restricted, "query %zu", c);
        store_result_free(&r);
        r = run_as(&queries[c], NULL, sees_one, "d0/p010");
        cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "secret-merger"), 1, "query %zu: sees one", c);
        store_result_free(&r);
    }
    /* Words and filters of what a stub does not show find nothing; what it shows still does. */
    static const query_t hidden[] = {
        { .q = "secret" }, { .q = "merger" }, { .q = "acme" }, { .q = "dealroom" }, { .tag = "secret-merger" },
    };
    for (size_t c = 0; c < sizeof hidden / sizeof *hidden; c++) {
        store_result_t r = run_as(&hidden[c], NULL, NULL, NULL);
        cr_expect_eq(r.total, 0, "case %zu: %zu hits through what the stub hides", c, r.total);
        store_result_free(&r);
        r = run_as(&hidden[c], NULL, sees_all, NULL);
        cr_expect_eq(r.total, 60, "case %zu: a caller who may see them", c);
        store_result_free(&r);
        r = run_as(&hidden[c], NULL, sees_one, "d0/p590");
        cr_expect_eq(r.total, 1, "case %zu: the one the caller may see", c);
        store_result_free(&r);
    }
    store_result_t r = run_as(&(query_t){ 0 }, "non_compliant", NULL, NULL);
    cr_expect_eq(r.total, 0, "the compliance filter finds stubs");
    store_result_free(&r);
    /* The classification filter passes a stub (it shows its classification), not with what it hides. */
    r = run_as(&(query_t){ .classification = "restricted" }, NULL, NULL, NULL);
    cr_expect_eq(r.total, 60, "the classification filter finds stubs");
    cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "secret-merger"), 0);
    cr_expect_eq(facet_count(&r, STORE_FACET_CLASSIFICATION, "restricted"), 60);
    store_result_free(&r);
    r = run_as(&(query_t){ .classification = "restricted", .tag = "secret-merger" }, NULL, NULL, NULL);
    cr_expect_eq(r.total, 0, "nor with a filter of what the stub hides");
    store_result_free(&r);
    r = run_as(&(query_t){ .classification = "restricted", .tag = "secret-merger" }, NULL, sees_all, NULL);
    cr_expect_eq(r.total, 60);
    store_result_free(&r);
    r = run_as(&(query_t){ .q = "p010" }, NULL, NULL, NULL);
    cr_expect_eq(r.total, 1, "a stub is found by its name");
    store_result_free(&r);
    r = run_as(&(query_t){ .q = "d0/p010" }, NULL, NULL, NULL);
    cr_expect(r.nhits && !strcmp(r.hits[0].id, "d0/p010") && r.hits[0].score >= 10000, "and by its id");
    store_result_free(&r);

    /* No longer restricted: found and counted in full by anyone. */
    publish_as(&(prod_t){ "d0/p010", "product 10", "takeover of acme", "secret-merger", "a@x", NULL, NULL, NULL },
               "confidential");
    r = run_as(&(query_t){ .tag = "secret-merger" }, NULL, NULL, NULL);
    cr_expect_eq(r.total, 1, "reclassified: the tag filter finds it");
    cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "secret-merger"), 1);
    cr_expect_eq(facet_count(&r, STORE_FACET_CLASSIFICATION, "confidential"), 1);
    cr_expect_eq(facet_count(&r, STORE_FACET_CLASSIFICATION, "restricted"), 0);
    store_result_free(&r);
    r = run_as(&(query_t){ .classification = "restricted" }, NULL, NULL, NULL);
    cr_expect_eq(r.total, 59, "reclassified: no longer restricted");
    store_result_free(&r);
}

/* The classification facet counts the manifests' classifications (none: no value) over all hits,
 * on both counting paths, and the filter keeps one; an update or a retirement moves or keeps it. */
Test(search, classification_facet_and_filter)
{
    static const char *const cls[] = { "public", "internal", "confidential", "public", "" };
    char id[64];
    for (int i = 0; i < 500; i++) {
        snprintf(id, sizeof id, "d%d/p%03d", i % 2, i);
        publish_as(&(prod_t){ .id = id, .title = "product", .tags = i < 5 ? "few" : "many" }, cls[i % 5]);
    }
    static const query_t queries[] = { { .q = "product" }, { .tag = "few" } };   /* sweep, records */
    for (size_t c = 0; c < 2; c++) {
        size_t per = c ? 1 : 100;
        store_result_t r = run(&queries[c], 10);
        cr_expect_eq(facet_count(&r, STORE_FACET_CLASSIFICATION, "public"), 2 * per, "query %zu", c);
        cr_expect_eq(facet_count(&r, STORE_FACET_CLASSIFICATION, "internal"), per, "query %zu", c);
        cr_expect_eq(facet_count(&r, STORE_FACET_CLASSIFICATION, "confidential"), per, "query %zu", c);
        cr_expect_eq(facet_values(&r, STORE_FACET_CLASSIFICATION), 3, "query %zu: no value for none", c);
        cr_expect_eq(r.nfacets && r.facets[0].facet == STORE_FACET_DOMAIN, 1, "grouped by facet");
        store_result_free(&r);
    }
    static const struct { query_t q; size_t total; } cases[] = {
        { { .classification = "public" }, 200 }, { { .classification = "PUBLIC" }, 200 },
        { { .classification = "confidential", .domain = "d0" }, 50 },
        { { .classification = "confidential", .tag = "few", .domain = "d1" }, 0 },
        { { .classification = "restricted" }, 0 },   /* well-formed, nobody has it */
        { { .classification = "internal", .tag = "few" }, 1 },
        { { .q = "product", .classification = "internal" }, 100 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        store_result_t r = run(&cases[i].q, 10);
        cr_expect_eq(r.total, cases[i].total, "case %zu: %zu hits", i, r.total);
        if (r.total)
            cr_expect_eq(facet_values(&r, STORE_FACET_CLASSIFICATION), 1, "case %zu: the filtered value only", i);
        store_result_free(&r);
    }
    publish_as(&(prod_t){ .id = "d0/p000", .title = "product", .tags = "few" }, "restricted");   /* was public */
    cr_assert_eq(retire("d1/p001"), 0, "%s", err);                              /* internal, retired */
    store_result_t r = run_as(&(query_t){ .tag = "few" }, NULL, sees_all, NULL);
    cr_expect_eq(facet_count(&r, STORE_FACET_CLASSIFICATION, "public"), 1);
    cr_expect_eq(facet_count(&r, STORE_FACET_CLASSIFICATION, "restricted"), 1);
    cr_expect_eq(facet_count(&r, STORE_FACET_CLASSIFICATION, "internal"), 1, "a retired product keeps it");
    cr_expect_eq(facet_count(&r, STORE_FACET_STATUS, "retired"), 1);
    store_result_free(&r);
    r = run(&(query_t){ .classification = "public" }, 10);
    cr_expect_eq(r.total, 199, "the old value's posting is gone");
    store_result_free(&r);
}

/* ---------------------------------------------------------------- updates */

Test(search, update_reindexes)
{
    publish(&(prod_t){ .id = "payments/tx", .title = "Alpha transactions", .purpose = "Nightly export.", .tags = "legacy", .business = "old@example.com" });
    store_result_t r = run(&(query_t){ .q = "alpha" }, 10);
    cr_expect_eq(r.total, 1);
    store_result_free(&r);
    publish(&(prod_t){ .id = "payments/tx", .title = "Beta transactions", .purpose = "Hourly export.", .tags = "modern", .business = "new@example.com" });
    static const struct { query_t q; size_t total; } cases[] = {
        { { .q = "alpha" }, 0 }, { { .q = "nightly" }, 0 }, { { .tag = "legacy" }, 0 },
        { { .owner = "old@example.com" }, 0 },
        { { .q = "beta" }, 1 }, { { .q = "hourly" }, 1 }, { { .tag = "modern" }, 1 },
        { { .owner = "new@example.com" }, 1 }, { { .q = "transactions" }, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        r = run(&cases[i].q, 10);
        cr_expect_eq(r.total, cases[i].total, "case %zu: %zu hits", i, r.total);
        store_result_free(&r);
    }
    r = run(&(query_t){ .q = 0 }, 10);
    cr_expect_eq(r.total, 1, "an update is the same product");
    cr_expect_eq(facet_values(&r, STORE_FACET_TAG), 1);
    store_result_free(&r);
}

/* One write transaction that indexes a product, re-indexes it, retires it and publishes it again
 * (as a receiver stores a batch of a domain's entries) leaves the postings of the last manifest
 * only: the index's writes of a transaction land in the order they were made, whatever order they
 * are written in. */
Test(search, one_batch_reindexing_a_product_keeps_the_last_manifest_only)
{
    publish(&(prod_t){ .id = "payments/tx", .title = "Alpha transactions", .tags = "legacy" });
    store_search_size_t before;
    cr_assert_eq(store_search_size(st, &before), 0);
    batch_begin();
    publish(&(prod_t){ .id = "payments/tx", .title = "Beta transactions", .tags = "modern" });
    publish(&(prod_t){ .id = "payments/new", .title = "Gamma", .tags = "modern" });
    cr_assert_eq(retire("payments/tx"), 0);
    publish(&(prod_t){ .id = "payments/tx", .title = "Alpha transactions", .tags = "legacy,again" });
    publish(&(prod_t){ .id = "payments/new", .title = "Delta", .tags = "fresh" });
    batch_commit();
    static const struct { query_t q; const char *hits; } cases[] = {
        { { .q = "alpha" }, "payments/tx" }, { { .q = "beta" }, "" }, { { .q = "gamma" }, "" },
        { { .q = "delta" }, "payments/new" }, { { .tag = "legacy" }, "payments/tx" },
        { { .tag = "again" }, "payments/tx" }, { { .tag = "modern" }, "" },
        { { .tag = "fresh" }, "payments/new" }, { { .status = "retired" }, "" },
        { { .status = "active" }, "payments/new payments/tx" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        store_result_t r = run(&cases[i].q, 10);
        char got[256];
        hit_list(&r, got, sizeof got);
        cr_expect_str_eq(got, cases[i].hits, "case %zu", i);
        store_result_free(&r);
    }
    store_result_t r = run(&(query_t){ .q = 0 }, 10);
    cr_expect_eq(facet_values(&r, STORE_FACET_TAG), 3, "legacy, again, fresh");
    cr_expect_eq(facet_values(&r, STORE_FACET_STATUS), 1, "active only");
    store_result_free(&r);
}

/* An index rebuilt in one transaction of more posting writes than are held at once (65,536) is
 * the index the products' publishes built one at a time. */
Test(search, a_rebuild_of_many_postings_equals_the_index_built_by_publishes)
{
    enum { N = 3000 };
    char id[64], title[96], tags[64];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "d%d/product-%d", i % 7, i);
        snprintf(title, sizeof title, "widget w%d of series s%d batch b%d", i, i % 13, i % 101);
        snprintf(tags, sizeof tags, "t%d,shared", i % 17);
        publish(&(prod_t){ .id = id, .title = title, .purpose = "common words in every product",
                           .tags = tags, .schema = "amount,currency,at" });
    }
    store_search_size_t built, rebuilt;
    cr_assert_eq(store_search_size(st, &built), 0);
    cr_assert_gt(built.postings, 65536, "%llu postings", (unsigned long long)built.postings);
    store_close(&st);
    st = open_store(1, 1);       /* off: drops the marker, so the next open rebuilds */
    store_close(&st);
    st = open_store(0, 1);
    cr_assert_eq(store_search_size(st, &rebuilt), 0);
    cr_expect_eq(rebuilt.postings, built.postings);
    cr_expect_eq(rebuilt.products, (uint64_t)N);
    static const struct { query_t q; size_t total; } cases[] = {
        { { .q = "w1234" }, 1 }, { { .q = "s5" }, (N + 12 - 5) / 13 }, { { .q = "common" }, N },
        { { .tag = "t3" }, (N + 16 - 3) / 17 }, { { .tag = "shared" }, N }, { { .domain = "d6" }, N / 7 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        store_result_t r = run(&cases[i].q, 1);
        cr_expect_eq(r.total, cases[i].total, "case %zu: %zu hits", i, r.total);
        store_result_free(&r);
    }
}

Test(search, retire_sets_status_and_keeps_listing)
{
    load_catalog();
    cr_assert_eq(retire("payments/refunds"), 0, "%s", err);
    store_result_t r = run(&(query_t){ .status = "retired" }, 10);
    char got[512];
    hit_list(&r, got, sizeof got);
    cr_expect_str_eq(got, "payments/refunds");
    store_result_free(&r);
    r = run(&(query_t){ .q = "refunds", .status = "active" }, 10);
    cr_expect_eq(r.total, 0, "no longer active");
    store_result_free(&r);
    r = run(&(query_t){ .q = "refunds" }, 10);
    cr_expect_eq(r.total, 1, "retired products stay listed");
    cr_expect_eq(facet_count(&r, STORE_FACET_STATUS, "retired"), 1);
    store_result_free(&r);
    /* retiring twice changes nothing; a manifest with status retired also counts as retired */
    cr_assert_eq(retire("payments/refunds"), 0, "%s", err);
    publish(&(prod_t){ .id = "finance/old", .title = "Old", .purpose = "", .status = "retired" });
    r = run(&(query_t){ .q = 0 }, 10);
    cr_expect_eq(facet_count(&r, STORE_FACET_STATUS, "retired"), 2);
    store_result_free(&r);
}

Test(search, tombstone_of_unknown_product_moves_the_head)
{
    publish(&(prod_t){ .id = "payments/a", .title = "A" });
    cr_assert_eq(retire("payments/never-published"), 0, "rc: %s", err);
    store_head_t h;
    cr_assert_eq(store_catalog_head(st, "payments", &h), 0);
    cr_expect_eq(h.seq, 2, "the head moved past the tombstone");
    store_product_t p;
    cr_expect_eq(store_product_get(st, "payments/never-published", &p), STORE_NOTFOUND);
    publish(&(prod_t){ .id = "payments/b", .title = "B" });   /* the log goes on */
    cr_assert_eq(store_catalog_head(st, "payments", &h), 0);
    cr_expect_eq(h.seq, 3);
    store_result_t r = run(&(query_t){ .q = 0 }, 10);
    cr_expect_eq(r.total, 2);
    store_result_free(&r);
}

/* ---------------------------------------------------------------- paging */

Test(search, paging_orders_ties_by_id)
{
    /* 5000 products: a listing's ties exceed the lookup bound and are walked in id order. */
    char id[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "d%d/p%05d", (i * 7919) % 13, (i * 104729) % 5000);
        publish(&(prod_t){ .id = id, .title = "thing" });
    }
    static const struct { const char *q; size_t offset, limit; } pages[] = {
        { NULL, 0, 5 }, { NULL, 4990, 20 }, { "thing", 2500, 7 }, { NULL, 5000, 5 },
    };
    for (size_t c = 0; c < sizeof pages / sizeof *pages; c++) {
        store_query_t q = { .q = pages[c].q, .offset = pages[c].offset, .limit = pages[c].limit };
        store_result_t r;
        cr_assert_eq(store_search(st, &q, &r, err, sizeof err), 0, "%s", err);
        cr_expect_eq(r.total, 5000);
        size_t want = pages[c].offset >= 5000 ? 0
                    : (5000 - pages[c].offset < pages[c].limit ? 5000 - pages[c].offset : pages[c].limit);
        cr_expect_eq(r.nhits, want, "page %zu: %zu hits", c, r.nhits);
        /* ids in order d0..d12, names p00000..p04999: the n-th id in order is computable */
        for (size_t i = 1; i < r.nhits; i++)
            cr_expect_lt(strcmp(r.hits[i - 1].id, r.hits[i].id), 0, "page %zu not in id order", c);
        store_result_free(&r);
    }
    /* The first page is the smallest ids overall. */
    store_query_t q = { .limit = 2 };
    store_result_t r;
    cr_assert_eq(store_search(st, &q, &r, err, sizeof err), 0);
    cr_expect_str_eq(r.hits[0].id, "d0/p00000");
    store_result_free(&r);
}

Test(search, limit_zero_counts_only)
{
    load_catalog();
    store_query_t q = { .q = "cards", .limit = 0 };
    store_result_t r;
    cr_assert_eq(store_search(st, &q, &r, err, sizeof err), 0);
    cr_expect_eq(r.total, 3);
    cr_expect_eq(r.nhits, 0);
    cr_expect_gt(r.nfacets, 0);
    store_result_free(&r);
    store_result_free(NULL);
}

Test(search, empty_store)
{
    store_result_t r = run(&(query_t){ .q = "anything" }, 10);
    cr_expect_eq(r.total, 0);
    cr_expect_eq(r.nhits, 0);
    cr_expect_eq(r.nfacets, 0);
    store_result_free(&r);
    r = run(&(query_t){ .q = 0 }, 10);
    cr_expect_eq(r.total, 0);
    store_result_free(&r);
}

/* ---------------------------------------------------------------- validation */

Test(search, bad_queries_name_the_parameter)
{
    char big[600];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char many[400] = "";
    for (int i = 0; i < 17; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "w%d ", i);
    static const char *words16 = "a1 a2 a3 a4 a5 a6 a7 a8 a9 b1 b2 b3 b4 b5 b6 b7 a1 a1";
    const struct { store_query_t q; const char *want; } cases[] = {
        { { .q = big }, "q:" },
        { { .q = many }, "q:" },
        { { .tag = big }, "tag:" },
        { { .owner = big }, "owner:" },
        { { .domain = big }, "domain:" },
        { { .status = big }, "status:" },
        { { .classification = big }, "classification:" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        store_result_t r;
        err[0] = '\0';
        cr_expect_eq(store_search(st, &cases[i].q, &r, err, sizeof err), -1, "case %zu", i);
        cr_expect(strncmp(err, cases[i].want, strlen(cases[i].want)) == 0, "case %zu: %s", i, err);
        cr_expect_eq(r.nhits, 0);
    }
    store_query_t ok = { .q = words16 };   /* 16 distinct words (repeats do not count) */
    store_result_t r;
    cr_expect_eq(store_search(st, &ok, &r, err, sizeof err), 0, "%s", err);
    store_result_free(&r);
    cr_expect_eq(store_search(NULL, &ok, &r, err, sizeof err), -1);
    cr_expect_eq(store_search(st, NULL, &r, err, sizeof err), -1);
}

/* ---------------------------------------------------------------- rebuild */

Test(search, older_store_is_indexed_on_open)
{
    /* An older build wrote this store: no index maintained, no marker. */
    store_close(&st);
    st = open_store(1, 1);
    load_catalog();
    publish(&(prod_t){ .id = "payments/refunds", .title = "Card refunds v2", .purpose = "Now with partial refunds.", .tags = "cards,partial" });
    cr_assert_eq(retire("finance/ledger"), 0, "%s", err);
    store_result_t r;
    store_query_t q = { .q = "x" };
    cr_expect_eq(store_search(st, &q, &r, err, sizeof err), -1, "no index while off");
    cr_expect(strstr(err, "search index"), "%s", err);

    store_close(&st);
    st = open_store(0, 1);
    r = run(&(query_t){ .q = 0 }, 100);
    cr_expect_eq(r.total, 8, "every product indexed on open");
    cr_expect_eq(facet_count(&r, STORE_FACET_STATUS, "retired"), 1);
    cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "partial"), 1);
    store_result_free(&r);
    r = run(&(query_t){ .q = "partial" }, 10);
    cr_expect_eq(r.total, 1);
    cr_expect_str_eq(r.nhits ? r.hits[0].id : "", "payments/refunds");
    store_result_free(&r);
    r = run(&(query_t){ .q = "holders" }, 10);   /* words of the replaced manifest */
    cr_expect_eq(r.total, 0);
    store_result_free(&r);

    /* Index on, then off for a while (updates missed), then on: rebuilt again, not stale. */
    store_close(&st);
    st = open_store(1, 1);
    publish(&(prod_t){ .id = "payments/refunds", .title = "Card refunds v3", .purpose = "Reversals.", .tags = "cards" });
    store_close(&st);
    st = open_store(0, 1);
    r = run(&(query_t){ .q = "partial" }, 10);
    cr_expect_eq(r.total, 0, "stale words gone after the rebuild");
    store_result_free(&r);
    r = run(&(query_t){ .q = "reversals" }, 10);
    cr_expect_eq(r.total, 1);
    store_result_free(&r);

    /* A normal reopen keeps the index (and does not need to rebuild it). */
    store_close(&st);
    st = open_store(0, 1);
    r = run(&(query_t){ .q = "reversals" }, 10);
    cr_expect_eq(r.total, 1);
    store_result_free(&r);
    store_search_size_t sz;
    cr_assert_eq(store_search_size(st, &sz), 0);
    cr_expect_eq(sz.products, 8);
    cr_expect_gt(sz.bytes, 0);
    cr_expect_gt(sz.postings, 8);
}

/* A data dir whose index an older build wrote (marker version 2: no classification postings)
 * is rebuilt on open, so the classification facet and filter work on it at once. */
Test(search, index_of_an_older_version_is_rebuilt_on_open)
{
    publish_as(&(prod_t){ .id = "payments/tx", .title = "tx" }, "confidential");
    publish_as(&(prod_t){ .id = "payments/refunds", .title = "refunds" }, "public");
    store_close(&st);
    /* What version 2 left: the marker at 2 and no 'k' postings. */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, facets;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 32), 0);
    cr_assert_eq(mdb_env_open(env, dir, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    cr_assert_eq(mdb_dbi_open(txn, "search_facets", MDB_DUPSORT | MDB_DUPFIXED, &facets), 0);
    uint8_t v2[4] = { 0, 0, 0, 2 };
    MDB_val k = { strlen("store.search"), "store.search" }, v = { 4, v2 };
    cr_assert_eq(mdb_put(txn, meta, &k, &v, 0), 0);
    static const char *const keys[] = { "kconfidential", "kpublic" };
    for (size_t i = 0; i < 2; i++) {
        MDB_val fk = { strlen(keys[i]), (void *)keys[i] };
        cr_assert_eq(mdb_del(txn, facets, &fk, NULL), 0, "%s", keys[i]);
    }
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    st = open_store(0, 1);
    store_result_t r = run(&(query_t){ 0 }, 10);
    cr_expect_eq(facet_count(&r, STORE_FACET_CLASSIFICATION, "confidential"), 1, "rebuilt on open");
    cr_expect_eq(facet_count(&r, STORE_FACET_CLASSIFICATION, "public"), 1);
    store_result_free(&r);
    r = run(&(query_t){ .classification = "public" }, 10);
    cr_expect_eq(r.total, 1);
    store_result_free(&r);
}

/* ---------------------------------------------------------------- input bounds */

/* A product with more distinct words than the per-product cap keeps its name, domain, tags
 * and owners searchable: the cap drops description words, not the words that sort last. */
Test(search, word_cap_keeps_name_tags_and_owners)
{
    size_t cap = 5000 * 7 + 1;
    char *purpose = malloc(cap);
    cr_assert_not_null(purpose);
    purpose[0] = '\0';
    for (int i = 0; i < 5000; i++)
        snprintf(purpose + strlen(purpose), cap - strlen(purpose), "w%04d ", i);
    publish(&(prod_t){ .id = "zz/zebra-sales", .title = "Yak", .purpose = purpose, .tags = "zulu",
                       .business = "zoe@example.com", .schema = "zone_code" });
    free(purpose);
    static const struct { query_t q; size_t total; } cases[] = {
        { { .q = "zebra" }, 1 }, { { .q = "zebra sales" }, 1 }, { { .q = "zulu" }, 1 },
        { { .q = "zoe" }, 1 }, { { .q = "zz" }, 1 }, { { .q = "yak" }, 1 }, { { .q = "zone" }, 1 },
        { { .q = "w0000" }, 1 },                 /* the first description words are kept */
        { { .q = "w4999" }, 0 },                 /* beyond the cap */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        store_result_t r = run(&cases[i].q, 10);
        cr_expect_eq(r.total, cases[i].total, "'%s': %zu hits", cases[i].q.q, r.total);
        store_result_free(&r);
    }
    store_result_t r = run(&(query_t){ .q = "zebra-sales" }, 10);
    cr_expect_geq(r.nhits ? r.hits[0].score : 0, 10000, "exact name still matched");
    store_result_free(&r);
}

/* A query of STORE_SEARCH_QMAX bytes with a slash (the form of an id) is valid: no match. */
Test(search, long_query_with_slash_is_no_error)
{
    load_catalog();
    char q[STORE_SEARCH_QMAX + 1];
    memset(q, 'b', STORE_SEARCH_QMAX);
    memcpy(q, "payments/", 9);
    q[STORE_SEARCH_QMAX] = '\0';
    store_result_t r = run(&(query_t){ .q = q }, 10);
    cr_expect_eq(r.total, 3, "the word payments matches, the id nothing");
    store_result_free(&r);
}

/* A peer's tag longer than a facet value is cut whole characters at a time: the value stays
 * valid UTF-8 (it is returned in JSON), and filtering by it finds the product. */
Test(search, long_facet_value_cut_at_a_character)
{
    char tag[2 * 200 + 1] = "";
    for (int i = 0; i < 200; i++)
        strcat(tag, "\xc3\xa9");   /* é: 400 bytes, the cut at 255 falls inside one */
    publish(&(prod_t){ .id = "payments/accents", .title = "Accents", .tags = tag });
    store_result_t r = run(&(query_t){ .q = 0 }, 10);
    const char *v = NULL;
    for (size_t i = 0; i < r.nfacets; i++)
        if (r.facets[i].facet == STORE_FACET_TAG)
            v = r.facets[i].value;
    cr_assert_not_null(v);
    cr_expect_eq(strlen(v), 254, "127 whole characters");
    cr_expect_eq(strncmp(v, tag, 254), 0);
    char filter[STORE_FACET_VALUE_MAX + 1];
    snprintf(filter, sizeof filter, "%s", v);
    store_result_free(&r);
    r = run(&(query_t){ .tag = filter }, 10);
    cr_expect_eq(r.total, 1);
    store_result_free(&r);
}

static int sees_counting(void *ctx, const char *id)
{
    (void)id;
    ++*(int *)ctx;
    return 1;
}

/* With sees_only, sees is asked about the caller's candidates alone (its domain's restricted
 * products and the ids it names), so every other restricted product stays a stub however sees
 * would answer: what view_products relies on to ask nothing per product the caller cannot see. */
Test(search, sees_only_asks_about_the_candidates_alone)
{
    char id[64], title[64];
    for (int i = 0; i < 200; i++) {
        int r = i % 10 == 0;   /* all in d0 (i % 5 == 0) */
        snprintf(id, sizeof id, "d%d/p%03d", i % 5, i);
        snprintf(title, sizeof title, "product %d", i);
        publish_as(&(prod_t){ id, title, "", r ? "secret-merger,all" : "open,all", "a@x", NULL, NULL, "txn_id" },
                   r ? "restricted" : "internal");
    }
    static const char granted[3][STORE_ID_MAX] = {"d0/p010", "d0/p020", "d3/p003"};   /* the last is not restricted */
    struct {
        const char *domain;
        size_t nids;
        size_t shown, asked;
    } cases[] = { { "d1", 3, 2, 2 }, { "d0", 0, 20, 20 }, { NULL, 0, 0, 0 }, { "d0", 3, 20, 20 } };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int asked = 0;
        store_query_t q = { .q = "product", .limit = 10, .sees = sees_counting, .sees_ctx = &asked, .sees_only = 1,
                            .sees_domain = cases[c].domain, .sees_ids = granted, .nsees_ids = cases[c].nids };
        store_result_t r;
        cr_assert_eq(store_search(st, &q, &r, err, sizeof err), 0, "%s", err);
        cr_expect_eq(r.total, 200);
        cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "secret-merger"), cases[c].shown, "case %zu: shown in full", c);
        cr_expect_eq((size_t)asked, cases[c].asked, "case %zu: sees asked %d times", c, asked);
        store_result_free(&r);
    }
}

/* ---------------------------------------------------------------- facets and order vs. a model */

#define MODEL_N   240
#define MODEL_MAX 800                /* the random writes' (over three chunks of the columns) */
typedef struct { char id[32], title[64], tags[64], business[64]; const char *status, *cls, *compliance; } model_t;
static model_t model[MODEL_MAX];
static size_t model_n;               /* published */

static size_t page_size = 7;         /* of the pages check_against_model compares with the whole */

static const model_t *model_of(const char *id)
{
    for (size_t i = 0; i < model_n; i++)
        if (strcmp(model[i].id, id) == 0)
            return &model[i];
    cr_assert_fail("hit %s is no product", id);
    return NULL;
}

/* Each value's count over the hits of the full ranking, as the model says (a restricted product,
 * hidden here, counts only in what its stub shows), must be the facet's; the ranking must be by
 * score then id, and every page a slice of it. */
static void check_against_model(const query_t *qq, const char *what)
{
    store_query_t q = { .q = qq->q, .tag = qq->tag, .status = qq->status, .limit = MODEL_MAX };
    store_result_t all;
    cr_assert_eq(store_search(st, &q, &all, err, sizeof err), 0, "%s: %s", what, err);
    cr_assert_eq(all.nhits, all.total, "%s", what);
    for (size_t i = 1; i < all.nhits; i++)
        cr_expect(all.hits[i - 1].score > all.hits[i].score ||
                  (all.hits[i - 1].score == all.hits[i].score && strcmp(all.hits[i - 1].id, all.hits[i].id) < 0),
                  "%s: %s before %s", what, all.hits[i - 1].id, all.hits[i].id);
    static const struct { int facet; const char *value; } values[] = {
        { STORE_FACET_DOMAIN, "d0" }, { STORE_FACET_DOMAIN, "d1" }, { STORE_FACET_DOMAIN, "d2" },
        { STORE_FACET_DOMAIN, "d3" }, { STORE_FACET_DOMAIN, "d4" },
        { STORE_FACET_STATUS, "active" }, { STORE_FACET_STATUS, "draft" }, { STORE_FACET_STATUS, "deprecated" },
        { STORE_FACET_STATUS, "retired" },
        { STORE_FACET_CLASSIFICATION, "internal" }, { STORE_FACET_CLASSIFICATION, "public" },
        { STORE_FACET_CLASSIFICATION, "restricted" },
        { STORE_FACET_OWNER, "team-data" }, { STORE_FACET_OWNER, "o0@example.com" }, { STORE_FACET_OWNER, "o1@example.com" },
        { STORE_FACET_OWNER, "o2@example.com" }, { STORE_FACET_OWNER, "o3@example.com" },
        { STORE_FACET_OWNER, "o4@example.com" }, { STORE_FACET_OWNER, "o5@example.com" },
        { STORE_FACET_TAG, "t0" }, { STORE_FACET_TAG, "t1" }, { STORE_FACET_TAG, "t2" }, { STORE_FACET_TAG, "t3" },
        { STORE_FACET_TAG, "t4" }, { STORE_FACET_TAG, "t5" }, { STORE_FACET_TAG, "t6" }, { STORE_FACET_TAG, "fresh" },
        { STORE_FACET_COMPLIANCE, "compliant" }, { STORE_FACET_COMPLIANCE, "non_compliant" },
    };
    const model_t **hm = malloc((all.nhits ? all.nhits : 1) * sizeof *hm);
    cr_assert_not_null(hm);
    for (size_t i = 0; i < all.nhits; i++)
        hm[i] = model_of(all.hits[i].id);
    size_t nonzero = 0;
    for (size_t f = 0; f < sizeof values / sizeof *values; f++) {
        size_t want = 0;
        const char *v = values[f].value;
        for (size_t i = 0; i < all.nhits; i++) {
            const model_t *m = hm[i];
            int hidden = strcmp(m->cls, "restricted") == 0;
            char dom[32], t[72], tv[32];
            snprintf(dom, sizeof dom, "%.*s", (int)(strchr(m->id, '/') - m->id), m->id);
            snprintf(t, sizeof t, ",%s,", m->tags);
            snprintf(tv, sizeof tv, ",%s,", v);
            switch (values[f].facet) {
            case STORE_FACET_DOMAIN: want += strcmp(dom, v) == 0; break;
            case STORE_FACET_STATUS: want += strcmp(m->status, v) == 0; break;
            case STORE_FACET_CLASSIFICATION: want += strcmp(m->cls, v) == 0; break;
            case STORE_FACET_OWNER: want += strcmp(m->business, v) == 0 || strcmp("team-data", v) == 0; break;
            case STORE_FACET_TAG: want += !hidden && strstr(t, tv) != NULL; break;
            case STORE_FACET_COMPLIANCE: want += !hidden && strcmp(m->compliance, v) == 0; break;
            }
        }
        nonzero += want > 0;
        size_t got = facet_count(&all, values[f].facet, v);
        cr_expect_eq(got, want, "%s: facet %d %s counts %zu, the model %zu", what, values[f].facet, v, got, want);
    }
    free(hm);
    cr_expect_eq(all.nfacets, nonzero, "%s: %zu facet values, the model %zu", what, all.nfacets, nonzero);
    for (size_t off = 0; off < all.total + page_size; off += page_size) {
        q.offset = off;
        q.limit = page_size;
        store_result_t page;
        cr_assert_eq(store_search(st, &q, &page, err, sizeof err), 0, "%s: %s", what, err);
        cr_expect_eq(page.total, all.total, "%s", what);
        for (size_t i = 0; i < page.nhits; i++) {
            cr_expect_str_eq(page.hits[i].id, all.hits[off + i].id, "%s: offset %zu", what, off + i);
            cr_expect_eq(page.hits[i].score, all.hits[off + i].score, "%s", what);
        }
        cr_expect_eq(page.nhits, off >= all.total ? 0 : (all.total - off < page_size ? all.total - off : page_size), "%s",
                     what);
        store_result_free(&page);
    }
    store_result_free(&all);
}

static const char *const words[] = { "river", "stone", "lake", "storm", "hill" };
static const char *const statuses[] = { "active", "draft", "deprecated" };
static const char *const classes[] = { "internal", "public", "restricted", "internal" };

/* Random fields for model product m from x. */
static void model_fill(model_t *m, uint32_t x)
{
    snprintf(m->title, sizeof m->title, "%s %s", words[(x >> 8) % 5], words[(x >> 12) % 5]);
    snprintf(m->tags, sizeof m->tags, "t%u,t%u", (x >> 16) % 4, 4 + (x >> 20) % 3);
    snprintf(m->business, sizeof m->business, "o%u@example.com", (x >> 24) % 6);
    m->status = statuses[(x >> 4) % 3];
    m->cls = classes[(x >> 6) % 4];
}

static void model_publish(model_t *m)
{
    publish_as(&(prod_t){ .id = m->id, .title = m->title, .tags = m->tags, .business = m->business,
                          .technical = "team-data", .status = m->status }, m->cls);
}

static void check_all(const char *when)
{
    static const query_t qs[] = { { .q = NULL }, { .q = "river" }, { .q = "river stone" }, { .q = "sto" },
                                  { .tag = "t1" }, { .q = "lake", .status = "draft" }, { .q = "d3/p007" } };
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s, query %zu", when, i);
        check_against_model(&qs[i], what);
    }
}

/* Facet counts and the order of hits, checked against a model of the catalog after each kind of
 * write to the index (the columns queries count from must follow every one). */
Test(search, facets_and_order_follow_every_write)
{
    uint32_t x = 12345;
    for (size_t i = 0; i < MODEL_N; i++) {
        model_t *m = &model[i];
        snprintf(m->id, sizeof m->id, "d%zu/p%03zu", (i * 7) % 5, (i * 37) % MODEL_N);
        x = x * 1103515245u + 12345u;
        model_fill(m, x);
        m->compliance = "";
        model_publish(m);
        model_n = i + 1;
    }
    check_all("loaded");
    model[5].status = "retired";
    cr_assert_eq(retire(model[5].id), 0, "%s", err);
    check_all("after a retire");
    const char *ids[MODEL_N / 3], *states[MODEL_N / 3];
    for (size_t i = 0; i < MODEL_N / 3; i++) {
        model[i * 3].compliance = i % 2 ? "compliant" : "non_compliant";
        ids[i] = model[i * 3].id;
        states[i] = model[i * 3].compliance;
    }
    cr_assert_eq(store_search_set_compliance(st, ids, states, MODEL_N / 3, err, sizeof err), 0, "%s", err);
    check_all("after compliance");
    snprintf(model[9].tags, sizeof model[9].tags, "t1,fresh");
    snprintf(model[9].title, sizeof model[9].title, "stone");
    model[9].cls = "public";
    model_publish(&model[9]);
    check_all("after an update");
}

/* Queries on other threads while products arrive: each sees its snapshot whole (every hit in
 * exactly one domain count), whichever generation's columns it finds or reads. */
static atomic_int writes_done;

static void *query_loop(void *arg)
{
    size_t *bad = arg;
    for (int i = 0; i < 400 && !(atomic_load(&writes_done) && i >= 20); i++) {
        store_query_t q = { .q = (i % 2) ? "thing" : NULL, .limit = 3 };
        store_result_t r;
        if (store_search(st, &q, &r, err, sizeof err) != 0) {
            (*bad)++;
            continue;
        }
        size_t sum = 0;
        for (size_t f = 0; f < r.nfacets; f++)
            if (r.facets[f].facet == STORE_FACET_DOMAIN)
                sum += r.facets[f].count;
        if (sum != r.total || (r.total && r.nhits == 0))
            (*bad)++;
        store_result_free(&r);
    }
    return NULL;
}

Test(search, queries_on_threads_while_products_arrive)
{
    pthread_t th[2];
    size_t bad[2] = { 0, 0 };
    atomic_store(&writes_done, 0);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, query_loop, &bad[i]), 0);
    char id[64];
    for (int i = 0; i < 150; i++) {
        snprintf(id, sizeof id, "d%d/p%03d", i % 4, i);
        publish(&(prod_t){ .id = id, .title = "thing" });
    }
    atomic_store(&writes_done, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    cr_expect_eq(bad[0] + bad[1], 0, "%zu inconsistent results", bad[0] + bad[1]);
    store_result_t r = run(&(query_t){ .q = NULL }, 3);
    cr_expect_eq(r.total, 150);
    store_result_free(&r);
}

/* ---------------------------------------------------------------- the columns follow writes */

static uint32_t lcg(uint32_t x) { return x * 1103515245u + 12345u; }

/* The model check of a listing (every tie in id order), a word and a tag filter. */
static void check_some(const char *when)
{
    static const query_t qs[] = { { .q = NULL }, { .q = "stone" }, { .tag = "t1" } };
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
        char what[96];
        snprintf(what, sizeof what, "%s, query %zu", when, i);
        check_against_model(&qs[i], what);
    }
}

static void check_columns_updated(uint64_t builds, uint64_t min_updates)
{
    store_search_size_t sz;
    cr_assert_eq(store_search_size(st, &sz), 0);
    cr_expect_eq(sz.column_builds, builds, "columns read whole %llu times, not %llu",
                 (unsigned long long)sz.column_builds, (unsigned long long)builds);
    cr_expect_geq(sz.column_updates, min_updates, "columns updated %llu times, fewer than %llu",
                  (unsigned long long)sz.column_updates, (unsigned long long)min_updates);
}

/* One random write of model products: an update (any field may change), a new product, a retire,
 * a compliance batch, two updates, or a new product and an update. */
static void random_write(uint32_t x)
{
    static const char *const compliance[] = { "compliant", "non_compliant", "" };
    model_t *m = &model[(x >> 3) % model_n];
    switch (x % 8) {
    case 0: case 1: case 2:   /* an update: any field may change */
        model_fill(m, lcg(x ^ 0x5bd1e995u));
        model_publish(m);
        break;
    case 3:                   /* a new product */
        if (model_n < MODEL_MAX)
            model_publish(&model[model_n++]);
        break;
    case 4:
        m->status = "retired";
        cr_assert_eq(retire(m->id), 0, "%s", err);
        break;
    case 5: {                 /* a compliance batch */
        const char *ids[40], *states[40];
        size_t n = 1 + (x >> 9) % 40;
        for (size_t i = 0; i < n; i++) {
            model_t *c = &model[lcg(x + (uint32_t)i) % model_n];
            c->compliance = compliance[(x >> (i % 16)) % 3];
            ids[i] = c->id;
            states[i] = c->compliance;
        }
        cr_assert_eq(store_search_set_compliance(st, ids, states, n, err, sizeof err), 0, "%s", err);
        break;
    }
    case 6:                   /* two generations before the next query */
        model_fill(m, lcg(x ^ 0x27d4eb2du));
        model_publish(m);
        m = &model[(x >> 11) % model_n];
        model_fill(m, lcg(x ^ 0x165667b1u));
        model_publish(m);
        break;
    case 7:                   /* a new product and an update in one */
        if (model_n < MODEL_MAX)
            model_publish(&model[model_n++]);
        model_fill(m, lcg(x ^ 0x9e3779b9u));
        model_publish(m);
        break;
    }
}

/* Random writes of every kind, a query between each and the next, against the model: each
 * generation's columns are updated from the one before (never read whole again) and must count
 * and order exactly as the model says. */
/* Fills every model product from seed x and publishes the first n. Returns the next seed. */
static uint32_t model_load(uint32_t x, size_t n)
{
    for (size_t i = 0; i < MODEL_MAX; i++) {
        snprintf(model[i].id, sizeof model[i].id, "d%zu/p%03zu", (i * 7) % 5, (i * 37) % MODEL_MAX);
        model_fill(&model[i], x = lcg(x));
        model[i].compliance = "";
    }
    for (; model_n < n; model_n++)
        model_publish(&model[model_n]);
    return x;
}

Test(search, facets_and_order_follow_random_writes)
{
    uint32_t x = model_load(4242, 600);
    page_size = 97;
    check_some("loaded");
    int writes = 0;
    for (int w = 0; w < 160; w++) {
        x = lcg(x);
        char when[64];
        snprintf(when, sizeof when, "write %d (kind %u)", w, x % 8);
        random_write(x);
        writes++;
        check_some(when);
    }
    check_all("after the random writes");
    check_columns_updated(1, (uint64_t)writes / 2);
}

/* New ids in runs between the same two older ones, ascending and then descending, a listing
 * between each: each new id ranks between its neighbours in the columns updated (no read whole)
 * until a gap between two ranks runs out (descending halves the gap each time), when the columns
 * are read whole and every rank spread again. Ties stay in id order throughout. */
Test(search, ties_stay_in_id_order_as_runs_of_ids_arrive)
{
    uint32_t x = 99;
    for (; model_n < 40; model_n++) {
        model_t *m = &model[model_n];
        snprintf(m->id, sizeof m->id, "d%zu/p%03zu", model_n % 5, model_n);
        model_fill(m, x = lcg(x));
        m->compliance = "";
        model_publish(m);
    }
    check_against_model(&(query_t){ .q = NULL }, "loaded");
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < 40; i++) {
            model_t *m = &model[model_n];
            snprintf(m->id, sizeof m->id, "d2/%c%03d", pass ? 'r' : 'q', pass ? 39 - i : i);
            model_fill(m, x = lcg(x));
            m->compliance = "";
            model_publish(m);
            model_n++;
            char when[64];
            snprintf(when, sizeof when, "%s %s", pass ? "descending" : "ascending", m->id);
            check_against_model(&(query_t){ .q = NULL }, when);
            if (pass == 0 && i == 39)
                check_columns_updated(1, 40);
        }
    store_search_size_t sz;
    cr_assert_eq(store_search_size(st, &sz), 0);
    cr_expect_geq(sz.column_builds, 2, "the descending run never ran out of room between two ranks");
    cr_expect_geq(sz.column_updates, 70);
    /* Runs of five new ids in one generation step, published in and against id order (docids in
     * the opposite order to the ids), beside an older id and at the end of the id order. */
    for (int b = 0; b < 8; b++) {
        for (int i = 0; i < 5; i++) {
            model_t *m = &model[model_n++];
            int k = b % 2 ? 4 - i : i;
            snprintf(m->id, sizeof m->id, b < 4 ? "d2/s%d%d" : "d4/z%d%d", b, k);
            model_fill(m, x = lcg(x));
            m->compliance = "";
            model_publish(m);
        }
        char when[64];
        snprintf(when, sizeof when, "run %d of five", b);
        check_against_model(&(query_t){ .q = NULL }, when);
    }
    store_search_size_t after;
    cr_assert_eq(store_search_size(st, &after), 0);
    cr_expect_eq(after.column_builds, sz.column_builds, "a run of five ids read the columns whole");
}

/* Queries on threads while a writer moves products between tags "ta" and "tb": a query filtered
 * by one must count each hit under it and none under the other, whichever generation its snapshot
 * is of and whichever columns it gets (kept, updated from an older generation's, read whole). */
static void *flip_query_loop(void *arg)
{
    size_t *bad = arg;
    char e[256];
    for (int i = 0; i < 5000 && !(atomic_load(&writes_done) && i >= 20); i++) {
        const char *tag = i % 2 ? "ta" : "tb", *other = i % 2 ? "tb" : "ta";
        store_query_t q = { .tag = i % 3 ? tag : NULL, .limit = 3 };
        store_result_t r;
        if (store_search(st, &q, &r, e, sizeof e) != 0) {
            (*bad)++;
            continue;
        }
        size_t a = facet_count(&r, STORE_FACET_TAG, tag), b = facet_count(&r, STORE_FACET_TAG, other);
        if (q.tag ? a != r.total || b != 0 : a + b != r.total)
            (*bad)++;
        store_result_free(&r);
    }
    return NULL;
}

Test(search, facets_match_the_snapshot_while_products_change)
{
    enum { N = 120 };
    char id[64], tags[N];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "d%d/p%03d", i % 4, i);
        tags[i] = i % 2;
        publish(&(prod_t){ .id = id, .title = "thing", .tags = tags[i] ? "ta" : "tb" });
    }
    pthread_t th[2];
    size_t bad[2] = { 0, 0 };
    atomic_store(&writes_done, 0);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, flip_query_loop, &bad[i]), 0);
    uint32_t x = 7;
    for (int w = 0; w < 300; w++) {
        int i = (int)((x = lcg(x)) >> 8) % N;
        tags[i] = !tags[i];
        snprintf(id, sizeof id, "d%d/p%03d", i % 4, i);
        publish(&(prod_t){ .id = id, .title = "thing", .tags = tags[i] ? "ta" : "tb" });
    }
    atomic_store(&writes_done, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    cr_expect_eq(bad[0] + bad[1], 0, "%zu results counted from columns of another generation", bad[0] + bad[1]);
    size_t ta = 0;
    for (int i = 0; i < N; i++)
        ta += tags[i];
    store_result_t r = run(&(query_t){ .tag = "ta" }, 3);
    cr_expect_eq(r.total, ta);
    cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "ta"), ta);
    store_result_free(&r);
}

/* ---------------------------------------------------------------- the columns, from inside */

static _Thread_local const search_cache_t *dumped;   /* cmp_rank's columns: columns_text runs on threads too */

static int cmp_value(const void *a, const void *b)
{
    const search_value_t *x = *(const search_value_t *const *)a, *y = *(const search_value_t *const *)b;
    return x->facet != y->facet ? x->facet - y->facet : strcmp(x->s, y->s);
}

static int cmp_rank(const void *a, const void *b)
{
    uint64_t x = search__cache_rank(dumped, *(const uint32_t *)a), y = search__cache_rank(dumped, *(const uint32_t *)b);
    return (x > y) - (x < y);
}

/* Columns c as text: each doc's values, the docs in rank order, each value's total. */
static char *columns_text(const search_cache_t *c)
{
    char *buf;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    fprintf(f, "generation %llu, docids < %u\n", (unsigned long long)c->gen, c->n);
    const search_value_t *v[300];
    for (uint32_t d = 1; d < c->n; d++) {
        uint32_t nv;
        const uint32_t *val = search__cache_vals(c, d, &nv);
        cr_assert_leq(nv, 300);
        for (uint32_t j = 0; j < nv; j++)
            v[j] = &c->values[val[j]];
        qsort(v, nv, sizeof *v, cmp_value);
        fprintf(f, "doc %u:", d);
        for (uint32_t j = 0; j < nv; j++)
            fprintf(f, " %d=%s", v[j]->facet, v[j]->s);
        fprintf(f, "\n");
    }
    uint32_t *order = malloc(c->n * sizeof *order);
    cr_assert_not_null(order);
    for (uint32_t d = 1; d < c->n; d++)
        order[d - 1] = d;
    dumped = c;
    qsort(order, c->n - 1, sizeof *order, cmp_rank);
    fprintf(f, "id order:");
    for (uint32_t i = 0; i + 1 < c->n; i++)
        fprintf(f, " %u", order[i]);
    free(order);
    fprintf(f, "\n");
    const search_value_t **live = malloc((c->nvalues ? c->nvalues : 1) * sizeof *live);
    size_t nlive = 0;
    for (size_t i = 0; i < c->nvalues; i++)
        if (c->total[i])
            live[nlive++] = &c->values[i];
    qsort(live, nlive, sizeof *live, cmp_value);
    for (size_t i = 0; i < nlive; i++)
        fprintf(f, "total %d=%s %u\n", live[i]->facet, live[i]->s, c->total[live[i] - c->values]);
    free(live);
    fclose(f);
    return buf;
}

/* The columns the store hands a query of snapshot txn, as text. */
static char *columns_of(MDB_txn *txn, uint64_t *gen)
{
    uint32_t n;
    cr_assert_eq(search__docid_end(st, txn, &n, err, sizeof err), 0, "%s", err);
    search_cache_t *c = search__cache_get(st, txn, n, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    char *text = columns_text(c);
    if (gen)
        *gen = c->gen;
    search__cache_release(c);
    return text;
}

static char *columns_now(void)
{
    MDB_txn *txn;
    cr_assert_eq(store__read_begin(st, &txn, err, sizeof err), 0, "%s", err);
    char *text = columns_of(txn, NULL);
    store__read_end(st, txn);
    return text;
}

/* The first line where a and b differ, in the failure message. */
static void expect_same_text(const char *a, const char *b, const char *what)
{
    size_t i = 0, line = 0;
    while (a[i] && a[i] == b[i])
        i++;
    if (!a[i] && !b[i])
        return;
    while (i > 0 && a[i - 1] != '\n')
        i--;
    for (size_t j = 0; j < i; j++)
        line += a[j] == '\n';
    cr_expect_fail("%s: line %zu differs:\n  %.200s\n  %.200s", what, line + 1, a + i, b + i);
}

static void list_all(void)
{
    store_result_t r = run(&(query_t){ .q = NULL }, 1);
    store_result_free(&r);
}

/* Chains of updated columns (several random writes, a query after each few) are, value for value,
 * rank order for rank order, what reading the same snapshot whole gives (a store opened again reads
 * its first columns whole). */
Test(search, updated_columns_equal_columns_read_whole)
{
    uint32_t x = model_load(777, 500);
    list_all();
    for (int round = 0; round < 10; round++) {
        for (int step = 0; step < 6; step++) {
            for (uint32_t w = 0; w < 1 + (x >> 7) % 4; w++)
                random_write(x = lcg(x));
            list_all();
        }
        char *updated = columns_now(), what[64];
        check_columns_updated(1, 6);
        store_close(&st);
        st = open_store(0, 1);
        char *whole = columns_now();
        check_columns_updated(1, 0);
        snprintf(what, sizeof what, "round %d", round);
        expect_same_text(updated, whole, what);
        free(updated);
        free(whole);
    }
}

/* A query whose snapshot is older than the store's newest columns gets the columns of its own
 * generation: kept ones while the store keeps them, then read whole for it (and not kept in place
 * of the newer ones). */
Test(search, an_old_snapshot_gets_the_columns_of_its_generation)
{
    char id[32];
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "d%d/p%03d", i % 4, i);
        publish(&(prod_t){ .id = id, .title = "thing", .tags = i % 2 ? "ta" : "tb" });
    }
    list_all();
    MDB_txn *old;
    cr_assert_eq(store__read_begin(st, &old, err, sizeof err), 0, "%s", err);
    uint64_t gen0, gen;
    char *then = columns_of(old, &gen0);
    for (int round = 0; round < STORE_SCACHE_KEEP + 2; round++) {
        snprintf(id, sizeof id, "d%d/p%03d", round % 4, round);
        publish(&(prod_t){ .id = id, .title = "thing", .tags = round % 2 ? "tb" : "ta" });   /* moved */
        snprintf(id, sizeof id, "d9/new%d", round);
        publish(&(prod_t){ .id = id, .title = "thing", .tags = "tc" });
        list_all();
        char *now = columns_of(old, &gen), what[64];
        cr_expect_eq(gen, gen0, "round %d: columns of generation %llu for a snapshot of %llu", round,
                     (unsigned long long)gen, (unsigned long long)gen0);
        snprintf(what, sizeof what, "round %d", round);
        expect_same_text(then, now, what);
        free(now);
    }
    store__read_end(st, old);
    free(then);
    for (int i = 0; i < STORE_SCACHE_KEEP; i++)
        cr_expect(st->scache[i] && st->scache[i]->gen > gen0, "newer columns were dropped for an old snapshot's");
    store_search_size_t before, after;
    cr_assert_eq(store_search_size(st, &before), 0);
    list_all();
    cr_assert_eq(store_search_size(st, &after), 0);
    cr_expect(after.column_builds == before.column_builds && after.column_updates == before.column_updates,
              "the newest columns were dropped for an old snapshot's");
}

/* Ways the log cannot say what changed since the kept columns: each makes the next query read the
 * columns whole (it would count a moved product under its old tag otherwise), and the log serves
 * the writes after it again. */
static int drop_logged(store_t *s, MDB_txn *txn, void *ctx, char *e, size_t el)
{
    (void)ctx;
    uint64_t gen;
    if (search__gen_get(s, txn, &gen, e, el) != 0)
        return -1;
    uint8_t kb[8];
    be32_put(kb, (uint32_t)(gen >> 32));
    be32_put(kb + 4, (uint32_t)gen);
    MDB_val k = { sizeof kb, kb };
    int rc = mdb_del(txn, s->s_delta, &k, NULL);
    static const uint32_t none[1];
    return rc ? rc : search__gen_bump(s, txn, none, 0, e, el);   /* the gap in the middle */
}

static int bump_anything(store_t *s, MDB_txn *txn, void *ctx, char *e, size_t el)
{
    (void)ctx;
    return search__gen_bump(s, txn, NULL, 0, e, el);
}

static int bump_empty(store_t *s, MDB_txn *txn, void *ctx, char *e, size_t el)
{
    static const uint32_t none[1];
    for (int i = 0; i < *(const int *)ctx; i++)
        if (search__gen_bump(s, txn, none, 0, e, el) != 0)
            return -1;
    return 0;
}

Test(search, a_gap_in_the_log_reads_the_columns_whole)
{
    enum { N = 40 };
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "d%d/p%03d", i % 4, i);
        publish(&(prod_t){ .id = id, .title = "thing", .tags = "ta" });
    }
    list_all();
    int many = 1100, few = 3;
    const struct { const char *what; store_write_body body; int *n; } cases[] = {
        { "its generation's entry deleted, one after it", drop_logged, NULL },
        { "a generation that says anything may have changed", bump_anything, NULL },
        { "more generations than the log keeps", bump_empty, &many },
        { "a few generations that change nothing (no gap)", bump_empty, &few },
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        store_search_size_t before, after;
        cr_assert_eq(store_search_size(st, &before), 0);
        snprintf(id, sizeof id, "d%zu/p%03zu", c % 4, c);
        publish(&(prod_t){ .id = id, .title = "thing", .tags = "tb" });
        cr_assert_eq(store__write(st, cases[c].body, cases[c].n, err, sizeof err), 0, "%s", err);
        store_result_t r = run(&(query_t){ .tag = "ta" }, 1);
        cr_expect_eq(r.total, N - 1 - c, "%s", cases[c].what);
        cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "ta"), r.total, "%s: a moved product counted", cases[c].what);
        cr_expect_eq(facet_count(&r, STORE_FACET_TAG, "tb"), 0, "%s: a moved product counted", cases[c].what);
        store_result_free(&r);
        cr_assert_eq(store_search_size(st, &after), 0);
        int whole = cases[c].body != bump_empty || cases[c].n == &many;
        cr_expect_eq(after.column_builds, before.column_builds + whole, "%s: read whole %llu times", cases[c].what,
                     (unsigned long long)(after.column_builds - before.column_builds));
        snprintf(id, sizeof id, "d%zu/p%03zu", (c + 1) % 4, c + 1);
        publish(&(prod_t){ .id = id, .title = "thing", .tags = "tc" });
        list_all();
        store_search_size_t next;
        cr_assert_eq(store_search_size(st, &next), 0);
        cr_expect_eq(next.column_updates, after.column_updates + 1, "%s: the log serves the next write", cases[c].what);
    }
}

/* ---------------------------------------------------------------- the columns against the postings */

typedef struct { int facet; char s[STORE_FACET_VALUE_MAX + 1]; } posted_t;

static int cmp_posted(const void *a, const void *b)
{
    const posted_t *x = a, *y = b;
    return x->facet != y->facet ? x->facet - y->facet : strcmp(x->s, y->s);
}

/* What columns_text prints for the columns of snapshot txn (generation gen), read straight from
 * its search_facets and search_ids with none of search_cache.c's code: each doc's values, the docs
 * in id order, each value's total. */
static char *postings_text(MDB_txn *txn, uint64_t gen)
{
    uint32_t n;
    char e[256];
    cr_assert_eq(search__docid_end(st, txn, &n, e, sizeof e), 0, "%s", e);
    posted_t **per = calloc(n, sizeof *per), *tv = NULL;
    size_t *cnt = calloc(n, sizeof *cnt), ntv = 0;
    uint32_t *tot = NULL;
    cr_assert(per && cnt);
    MDB_cursor *cur;
    MDB_val k, v;
    cr_assert_eq(mdb_cursor_open(txn, st->s_facets, &cur), 0);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const char *kind = k.mv_size ? memchr(FACET_KINDS, *(const char *)k.mv_data, strlen(FACET_KINDS)) : NULL;
        uint32_t d = be32_get(v.mv_data);
        if (!kind || d >= n)
            continue;
        posted_t o = { (int)(kind - FACET_KINDS), "" };
        memcpy(o.s, (const char *)k.mv_data + 1, k.mv_size - 1);
        per[d] = realloc(per[d], (cnt[d] + 1) * sizeof **per);   /* keys in order: a new key, a new value */
        if (!ntv || cmp_posted(&tv[ntv - 1], &o) != 0) {
            tv = realloc(tv, (ntv + 1) * sizeof *tv);
            tot = realloc(tot, (ntv + 1) * sizeof *tot);
            cr_assert(tv && tot);
            tv[ntv] = o;
            tot[ntv++] = 0;
        }
        cr_assert_not_null(per[d]);
        per[d][cnt[d]++] = o;
        tot[ntv - 1]++;
    }
    mdb_cursor_close(cur);
    char *buf;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    fprintf(f, "generation %llu, docids < %u\n", (unsigned long long)gen, n);
    for (uint32_t d = 1; d < n; d++) {
        qsort(per[d], cnt[d], sizeof **per, cmp_posted);
        fprintf(f, "doc %u:", d);
        for (size_t j = 0; j < cnt[d]; j++)
            fprintf(f, " %d=%s", per[d][j].facet, per[d][j].s);
        fprintf(f, "\n");
        free(per[d]);
    }
    fprintf(f, "id order:");
    cr_assert_eq(mdb_cursor_open(txn, st->s_ids, &cur), 0);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if (be32_get(v.mv_data) < n)
            fprintf(f, " %u", be32_get(v.mv_data));
    mdb_cursor_close(cur);
    fprintf(f, "\n");
    size_t *order = malloc((ntv ? ntv : 1) * sizeof *order);   /* by facet, then value (not key order) */
    cr_assert_not_null(order);
    for (size_t i = 0; i < ntv; i++)
        order[i] = i;
    for (size_t i = 1; i < ntv; i++)
        for (size_t j = i; j > 0 && cmp_posted(&tv[order[j - 1]], &tv[order[j]]) > 0; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (size_t i = 0; i < ntv; i++)
        fprintf(f, "total %d=%s %u\n", tv[order[i]].facet, tv[order[i]].s, tot[order[i]]);
    fclose(f);
    free(order), free(per), free(cnt), free(tv), free(tot);
    return buf;
}

/* The columns a query of the store's newest snapshot gets are its postings. */
static void expect_columns_are_the_postings(const char *what)
{
    MDB_txn *txn;
    cr_assert_eq(store__read_begin(st, &txn, err, sizeof err), 0, "%s", err);
    uint64_t gen;
    char *got = columns_of(txn, &gen), *want = postings_text(txn, gen);
    store__read_end(st, txn);
    expect_same_text(got, want, what);
    free(got);
    free(want);
}

static atomic_int checked, differ;
static char first_diff[1024];

/* Until the writes are done: the columns of a new snapshot, whichever way the store got them, are
 * compared with its postings. */
static void *postings_loop(void *arg)
{
    (void)arg;
    char e[256];
    while (!atomic_load(&writes_done)) {
        MDB_txn *txn;
        uint32_t n;
        search_cache_t *c = NULL;
        if (store__read_begin(st, &txn, e, sizeof e) != 0) {
            atomic_fetch_add(&differ, 1);
            continue;
        }
        if (search__docid_end(st, txn, &n, e, sizeof e) != 0 || !(c = search__cache_get(st, txn, n, e, sizeof e))) {
            atomic_fetch_add(&differ, 1);
            store__read_end(st, txn);
            continue;
        }
        char *got = columns_text(c), *want = postings_text(txn, c->gen);
        search__cache_release(c);
        store__read_end(st, txn);
        if (strcmp(got, want) != 0 && atomic_fetch_add(&differ, 1) == 0) {
            size_t i = 0;
            while (got[i] == want[i])
                i++;
            while (i > 0 && got[i - 1] != '\n')
                i--;
            snprintf(first_diff, sizeof first_diff, "columns:  %.400s\npostings: %.400s", got + i, want + i);
        }
        atomic_fetch_add(&checked, 1);
        free(got);
        free(want);
    }
    return NULL;
}

/* Three threads take snapshots while random writes of every kind go on (a check between every two
 * writes): the columns each gets (kept, updated from an older generation's, or read whole, for its
 * own snapshot or an older one's) are, value for value and in id order, what its postings say. */
Test(search, columns_are_the_postings_under_concurrent_writes)
{
    uint32_t x = model_load(31337, 500);
    pthread_t th[3];
    atomic_store(&writes_done, 0);
    atomic_store(&checked, 0);
    atomic_store(&differ, 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, postings_loop, NULL), 0);
    for (int w = 0; w < 1200; w++) {
        random_write(x = lcg(x));
        int seen = atomic_load(&checked);
        for (time_t end = time(NULL) + 10; w % 2 && atomic_load(&checked) == seen && time(NULL) < end;)
            sched_yield();
    }
    atomic_store(&writes_done, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    store_search_size_t sz;
    cr_assert_eq(store_search_size(st, &sz), 0);
    cr_expect_eq(atomic_load(&differ), 0, "%d of %d snapshots' columns are not their postings; the first:\n%s",
                 atomic_load(&differ), atomic_load(&checked), first_diff);
    cr_expect_geq(atomic_load(&checked), 500);
    cr_expect_geq(sz.column_updates, 100, "columns updated %llu times (read whole %llu)",
                  (unsigned long long)sz.column_updates, (unsigned long long)sz.column_builds);
}

/* A writer process killed (SIGKILL) in the middle of its random writes: the store opened again has
 * the log end at its generation, its first columns (read whole) are its postings, and the log
 * serves the writes after it (each query's columns updated, and still the postings). */
Test(search, a_writer_killed_mid_write_leaves_the_log_and_generation_agreeing)
{
    uint32_t x = model_load(2024, 400);
    list_all();
    for (int round = 0; round < 2; round++) {
        store_close(&st);
        int fd[2];
        cr_assert_eq(pipe(fd), 0);
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {   /* durable writes, a byte down the pipe after each */
            close(fd[0]);
            st = open_store(0, 0);
            for (uint32_t y = x + 17u * (uint32_t)round;;) {
                random_write(y = lcg(y));
                if (write(fd[1], "w", 1) != 1)
                    _exit(1);
            }
        }
        close(fd[1]);
        char b;
        for (int k = 0; k < 40 + 37 * round; k++)
            cr_assert_eq(read(fd[0], &b, 1), 1, "the writer died");
        kill(pid, SIGKILL);
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        close(fd[0]);
        cr_assert(WIFSIGNALED(status));
        st = open_store(0, 1);
        MDB_txn *txn;
        uint64_t gen;
        MDB_cursor *cur;
        MDB_val k, v;
        cr_assert_eq(store__read_begin(st, &txn, err, sizeof err), 0, "%s", err);
        cr_assert_eq(search__gen_get(st, txn, &gen, err, sizeof err), 0, "%s", err);
        cr_assert_eq(mdb_cursor_open(txn, st->s_delta, &cur), 0);
        cr_assert_eq(mdb_cursor_get(cur, &k, &v, MDB_LAST), 0);
        uint64_t last = (uint64_t)be32_get(k.mv_data) << 32 | be32_get((const uint8_t *)k.mv_data + 4);
        mdb_cursor_close(cur);
        store__read_end(st, txn);
        cr_expect_eq(last, gen, "round %d: the log ends at %llu, the generation is %llu", round,
                     (unsigned long long)last, (unsigned long long)gen);
        char what[64];
        snprintf(what, sizeof what, "round %d, opened again", round);
        expect_columns_are_the_postings(what);
        for (int w = 0; w < 30; w++) {
            random_write(x = lcg(x));
            snprintf(what, sizeof what, "round %d, write %d after", round, w);
            expect_columns_are_the_postings(what);
        }
        store_search_size_t sz;
        cr_assert_eq(store_search_size(st, &sz), 0);
        cr_expect_eq(sz.column_builds, 1, "round %d: read whole %llu times", round, (unsigned long long)sz.column_builds);
        cr_expect_geq(sz.column_updates, 15, "round %d", round);
    }
}
