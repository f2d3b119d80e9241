/* tests/test_access.c - access requests, grants, denials, revocations (DESIGN §13, issue 11 items 4
 * and 5): field projection (unit and bounded random input), the access index built from signed
 * entries in two domains' logs and replicated to a second store (replays, entries in the wrong
 * log, another subject, expiry), and the whole flow against real `trib agent` processes: a request
 * through growth's node for a product of payments, pending and granted on payments, seen on growth
 * by gossip, mine, revoke, deny, the audit log, the CLI, and hostile callers (no token, a tampered
 * token, another domain's token, a read token deciding, a second decision). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>
#include <zmq.h>

#include "gossip/catalog.h"
#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/entry.h"
#include "gossip/identity.h"
#include "gossip/log.h"
#include "gossip/token.h"
#include "node/audit.h"
#include "node/grants.h"
#include "storage/access.h"
#include "storage/project.h"
#include "storage/store.h"
#include "tests/harness.h"
#include "tests/peer_tools.h"

#define DAY_MS 86400000LL

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ================================================================ projection */

static const char *const TWO[] = {"txn_id", "amount_minor", NULL};

static void project_is(const char *in, const char *const *fields, const char *want)
{
    size_t len = strlen(in);
    char *out = malloc(len + 2);
    size_t n = project_record(in, len, fields, out);
    cr_assert_leq(n, len < 2 ? len : len, "projection of %s is longer than the record", in);
    out[n] = '\0';
    cr_assert_str_eq(out, want, "projection of %s", in);
    free(out);
}


/* text is a header line and rows-1 rows whose every column starts where its header does: a
 * header word at offset k (after the first) has a space before it and the start of a cell
 * (not a space) at k in every row. */
static void expect_aligned(const char *text, int rows)
{
    char *copy = strdup(text), *save = NULL, *lines[16];
    int n = 0;
    for (char *l = strtok_r(copy, "\n", &save); l && n < 16; l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    cr_assert_eq(n, rows, "%d lines, expected %d:\n%s", n, rows, text);
    const char *h = lines[0];
    for (size_t k = 1; h[k]; k++) {
        if (h[k] == ' ' || h[k - 1] != ' ')
            continue;   /* not the start of a header word */
        for (int r = 1; r < n; r++)
            cr_assert(strlen(lines[r]) > k && lines[r][k - 1] == ' ' && lines[r][k] != ' ',
                      "row %d is out of line with column '%.8s' (offset %zu):\n%s", r, h + k, k, text);
    }
    free(copy);
}

Test(project, keeps_allowed_members_as_written)
{
    project_is("{\"txn_id\":\"t1\",\"amount_minor\":120,\"currency\":\"EUR\"}", TWO,
               "{\"txn_id\":\"t1\",\"amount_minor\":120}");
    project_is("{ \"currency\" : \"EUR\" , \"amount_minor\" : 1.5e3 , \"txn_id\" : \"a,}\\\"b\" }", TWO,
               "{\"amount_minor\":1.5e3,\"txn_id\":\"a,}\\\"b\"}");
    project_is("{\"nested\":{\"txn_id\":1,\"x\":[1,{\"y\":\"}\"}]},\"txn_id\":[1,2]}", TWO, "{\"txn_id\":[1,2]}");
    project_is("{\"currency\":\"EUR\"}", TWO, "{}");
    project_is("{}", TWO, "{}");
    project_is("{\"txn\\u005fid\":1}", TWO, "{}");   /* an escaped name never matches: fails closed */
}

Test(project, malformed_records_project_to_nothing)
{
    const char *bad[] = {"", "[]", "{", "{\"a\"", "{\"a\":}", "{\"a\":1,}", "{\"a\":1} x", "\"txn_id\"",
                         "{\"txn_id\":1 \"amount_minor\":2}", "{\"txn_id\":\"unterminated}", "{\"txn_id\":[1,2}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t len = strlen(bad[i]);
        char out[64];
        size_t n = project_record(bad[i], len, TWO, out);
        cr_assert(n <= len, "case %zu", i);
        cr_assert(n == 0 || (n == 2 && memcmp(out, "{}", 2) == 0), "case %zu: '%s' projected to %.*s", i, bad[i],
                  (int)n, out);
    }
}

Test(project, ndjson_in_place)
{
    char buf[] = "{\"txn_id\":\"a\",\"pad\":\"xxxxxxxx\",\"amount_minor\":1}\n"
                 "{\"pad\":\"y\"}\n"
                 "{\"amount_minor\":2,\"txn_id\":\"b\"}\n";
    size_t n = project_ndjson(buf, strlen(buf), TWO);
    buf[n] = '\0';
    cr_assert_str_eq(buf, "{\"txn_id\":\"a\",\"amount_minor\":1}\n{}\n{\"amount_minor\":2,\"txn_id\":\"b\"}\n");
    char same[] = "{\"pad\":1}\n";
    cr_assert_eq(project_ndjson(same, strlen(same), NULL), strlen(same), "no allow-list: nothing changes");
}

/* Bounded random input: mutations of valid records and random bytes never read or write out of
 * bounds (run under make asan), never grow, and give a JSON object jansson accepts whenever the
 * input was one. */
Test(project, random_input)
{
    const char *seeds[] = {"{\"txn_id\":\"t\",\"amount_minor\":1,\"c\":{\"d\":[1,\"}\",null]},\"e\":true}",
                           "{\"a\":\"\\\\\",\"txn_id\":-0.5e-3,\"b\":[[[]]]}", "{}"};
    const char alphabet[] = "{}[]\":,\\ atxn_idm0123456789.-e\n";
    uint32_t x = 12345;
    for (int iter = 0; iter < 200000; iter++) {
        char in[128];
        size_t len;
        x = x * 1103515245u + 12345u;
        if (iter % 2) {
            const char *s = seeds[(x >> 8) % 3];
            len = strlen(s);
            memcpy(in, s, len);
            for (int k = 0; k < 3; k++) {
                x = x * 1103515245u + 12345u;
                in[(x >> 8) % len] = alphabet[(x >> 20) % (sizeof alphabet - 1)];
            }
        } else {
            len = (x >> 8) % sizeof in;
            for (size_t i = 0; i < len; i++) {
                x = x * 1103515245u + 12345u;
                in[i] = (x >> 24) % 4 ? alphabet[(x >> 16) % (sizeof alphabet - 1)] : (char)(x >> 8);
            }
        }
        char *exact = malloc(len ? len : 1);   /* exactly len bytes: ASan sees any overrun */
        memcpy(exact, in, len);
        char *out = malloc(len ? len : 1);
        size_t n = project_record(exact, len, TWO, out);
        cr_assert_leq(n, len);
        json_t *src = json_loadb(exact, len, JSON_DECODE_ANY, NULL);
        if (json_is_object(src)) {
            json_t *p = json_loadb(out, n, 0, NULL);
            cr_assert(json_is_object(p), "projection of a valid object is not one: %.*s -> %.*s", (int)len, exact,
                      (int)n, out);
            json_decref(p);
        }
        json_decref(src);
        free(exact);
        free(out);
    }
}

/* ================================================================ the index, in process */

static char dirs[2][64];
static store_t *stores[2];
static identity_t pay, gro;
static catalog_t *cpay, *cgro;   /* both sign into store 0; store 1 is a replica */

static void make_identity(identity_t *id, uint8_t seedbyte)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(id, 0, sizeof *id);
    memset(seed, seedbyte, sizeof seed);
    cr_assert_eq(crypto_sign_seed_keypair(id->pk, id->sk, seed), 0);
    identity_hex(id->pk, id->hex);
}

static void ix_setup(void)
{
    char err[256] = "";
    cr_assert_geq(sodium_init(), 0);
    log_set_level(LOG_WARN);   /* one info line per signed request otherwise */
    for (int i = 0; i < 2; i++) {
        snprintf(dirs[i], sizeof dirs[i], "/tmp/trib-access-XXXXXX");
        cr_assert_not_null(mkdtemp(dirs[i]));
        stores[i] = store_open(dirs[i], NULL, err, sizeof err);
        cr_assert_not_null(stores[i], "store_open: %s", err);
    }
    make_identity(&pay, 7);
    make_identity(&gro, 8);
    cpay = catalog_new(stores[0], &pay, "payments");
    cgro = catalog_new(stores[0], &gro, "growth");
    cr_assert(cpay && cgro);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void ix_teardown(void)
{
    catalog_destroy(&cpay);
    catalog_destroy(&cgro);
    for (int i = 0; i < 2; i++) {
        store_close(&stores[i]);
        if (dirs[i][0])
            nftw(dirs[i], rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    }
}

/* Signs a change into c's log; returns the SignedEntry bytes (caller frees). */
static uint8_t *sign_fields(catalog_t *c, Trib__AccessKind kind, const char *req, const char *grant,
                            const char *subject, int64_t expires, char **fields, size_t nfields, size_t *len)
{
    Trib__AccessChange a = TRIB__ACCESS_CHANGE__INIT;
    a.kind = kind;
    a.request_id = (char *)(req ? req : "");
    a.grant_id = (char *)(grant ? grant : "");
    a.product_id = "payments/settled";
    a.subject = (char *)(subject ? subject : "");
    a.purpose = "churn";
    a.fields = fields;
    a.n_fields = nfields;
    a.days = 30;
    a.expires_ms = expires;
    uint64_t seq;
    uint8_t *out = NULL;
    char err[256];
    cr_assert_eq(catalog_publish_access(c, &a, &seq, &out, len, err, sizeof err), 0, "publish: %s", err);
    return out;
}

/* The change with the allow-list txn_id, amount_minor. */
static uint8_t *sign_change(catalog_t *c, Trib__AccessKind kind, const char *req, const char *grant,
                            const char *subject, int64_t expires, size_t *len)
{
    char *fields[] = {"txn_id", "amount_minor"};
    return sign_fields(c, kind, req, grant, subject, expires, fields, 2, len);
}

/* The wall clock is 300 ms past *(int64_t *)ctx. */
static int past_300_ms(void *ctx)
{
    return wall_ms() > *(int64_t *)ctx + 300;
}

static int active(store_t *st, const char *subject, int64_t now, grant_info_t *gi)
{
    node_t n;
    memset(&n, 0, sizeof n);
    n.st = st;
    return grants_active(&n, subject, "payments/settled", now, gi);
}

typedef struct {
    uint8_t *bytes[32];
    size_t len[32];
    int n;
} held_t;

static void keep(held_t *h, uint8_t *b, const size_t *len)   /* len read after sign_change set it */
{
    h->bytes[h->n] = b;
    h->len[h->n++] = *len;
}

/* The actions of the change log's grant rows, in order, comma-separated, into buf. */
typedef struct {
    char buf[512];
} actions_t;

static int action_cb(void *ctx, uint64_t seq, const void *ev, size_t len)
{
    (void)seq;
    actions_t *a = ctx;
    json_t *j = json_loadb(ev, len, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "type"));
    if (type && !strcmp(type, "grant")) {
        cr_assert_str_eq(json_string_value(json_object_get(j, "product")), "payments/settled");
        cr_assert_null(json_object_get(j, "subject"), "a grant row names its subject: %.*s", (int)len,
                       (const char *)ev);
        size_t n = strlen(a->buf);
        snprintf(a->buf + n, sizeof a->buf - n, "%s%s", n ? "," : "", json_string_value(json_object_get(j, "action")));
    }
    json_decref(j);
    return 0;
}

static const char *grant_actions(store_t *st, actions_t *a)
{
    a->buf[0] = '\0';
    cr_assert_geq(store_changes_read(st, 1, 0, action_cb, a), 0);
    return a->buf;
}

#define REQ1 "req-00000000000000a1"
#define REQ2 "req-00000000000000a2"
#define GR1 "grant-00000000000000b1"
#define GR2 "grant-00000000000000b2"

Test(index, lifecycle_rules_and_replay, .init = ix_setup, .fini = ix_teardown)
{
    held_t h = {0};
    size_t len;
    int64_t now = wall_ms(), exp = now + 30 * DAY_MS;
    uint64_t idx0, ign0, idx, ign;
    store_access_counts(&idx0, &ign0);
    grant_info_t gi;

    /* a request in the requester's home log; the same id again, and one for another domain's
     * subject signed by growth: kept in the log, ignored by the index */
    keep(&h, sign_change(cgro, TRIB__ACCESS_KIND__ACCESS_REQUEST, REQ1, NULL, "alice@growth", 0, &len), &len);
    keep(&h, sign_change(cgro, TRIB__ACCESS_KIND__ACCESS_REQUEST, REQ1, NULL, "alice@growth", 0, &len), &len);
    keep(&h, sign_change(cgro, TRIB__ACCESS_KIND__ACCESS_REQUEST, REQ2, NULL, "bob@payments", 0, &len), &len);
    Trib__AccessRow *row = NULL;
    cr_assert_eq(store_access_get(stores[0], "r", REQ1, &row), 0);
    cr_assert_str_eq(row->change->subject, "alice@growth");
    trib__access_row__free_unpacked(row, NULL);
    cr_assert_eq(store_access_get(stores[0], "r", REQ2, &row), STORE_NOTFOUND, "a request signed outside the "
                 "subject's home domain is not indexed");

    /* a grant signed by growth for payments' product: ignored; no grant is active */
    keep(&h, sign_change(cgro, TRIB__ACCESS_KIND__ACCESS_GRANT, REQ1, GR2, "alice@growth", exp, &len), &len);
    cr_assert_eq(active(stores[0], "alice@growth", now, &gi), 0, "a grant from the requester's own log counts");

    /* the owner's grant: active for alice with the fields, not for bob, not once expired */
    keep(&h, sign_change(cpay, TRIB__ACCESS_KIND__ACCESS_GRANT, REQ1, GR1, "alice@growth", exp, &len), &len);
    cr_assert_eq(active(stores[0], "alice@growth", now, &gi), 1);
    cr_assert_str_eq(gi.grant_id, GR1);
    cr_assert_str_eq(gi.request_id, REQ1);
    cr_assert_eq(gi.nfields, 2);
    cr_assert_str_eq(gi.fields[0], "amount_minor");   /* sorted */
    cr_assert_str_eq(gi.fields[1], "txn_id");
    cr_assert_eq(gi.expires_ms, exp);
    cr_assert_eq(active(stores[0], "bob@growth", now, &gi), 0, "grant for another subject");
    cr_assert_eq(active(stores[0], "alice@payments", now, &gi), 0, "same local part, another domain");
    cr_assert_eq(active(stores[0], "alice@growth", exp, &gi), 0, "expired grant (at its expiry)");
    cr_assert_eq(active(stores[0], "alice@growth", exp - 1, &gi), 1);

    /* a second decision on the same request (a denial) changes nothing */
    keep(&h, sign_change(cpay, TRIB__ACCESS_KIND__ACCESS_DENY, REQ1, NULL, "alice@growth", 0, &len), &len);
    cr_assert_eq(store_access_get(stores[0], "d", REQ1, &row), 0);
    cr_assert_eq(row->change->kind, TRIB__ACCESS_KIND__ACCESS_GRANT);
    trib__access_row__free_unpacked(row, NULL);

    /* revoke; then the owner signs the same grant again (a replay of the revoked grant as a new
     * entry) and growth signs a revocation-free copy: it stays revoked */
    keep(&h, sign_change(cpay, TRIB__ACCESS_KIND__ACCESS_REVOKE, REQ1, GR1, "alice@growth", 0, &len), &len);
    cr_assert_eq(active(stores[0], "alice@growth", now, &gi), 0, "revoked grant still active");
    keep(&h, sign_change(cpay, TRIB__ACCESS_KIND__ACCESS_GRANT, REQ1, GR1, "alice@growth", exp, &len), &len);
    keep(&h, sign_change(cpay, TRIB__ACCESS_KIND__ACCESS_GRANT, REQ2, GR1, "alice@growth", exp, &len), &len);
    cr_assert_eq(active(stores[0], "alice@growth", now, &gi), 0, "a replayed grant revived a revoked one");
    cr_assert_eq(store_access_get(stores[0], "g", GR1, &row), 0);
    cr_assert(row->revoked);
    trib__access_row__free_unpacked(row, NULL);
    store_access_counts(&idx, &ign);
    cr_assert_eq(idx - idx0, 3, "indexed: request, grant, revoke (%llu)", (unsigned long long)(idx - idx0));
    cr_assert_eq(ign - ign0, 6, "ignored: dup request, foreign subject, foreign grant, second decision, two "
                 "replays (%llu)", (unsigned long long)(ign - ign0));
    /* the change feed: one row per change indexed, in the same transaction; none for the ignored */
    actions_t acts;
    cr_assert_str_eq(grant_actions(stores[0], &acts), "requested,granted,revoked");

    /* a replica that receives the same entries (by gossip) builds the same index; every entry a
     * second time is a duplicate and changes nothing */
    catalog_t *rep = catalog_new(stores[1], &gro, "growth");   /* accepting only: its identity is unused */
    cr_assert_not_null(rep);
    /* growth's entries first, then payments': the replica sees the grant after the request, as
     * gossip may deliver either log first */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < h.n; i++) {
            char err[256];
            cat_result_t r = catalog_accept(rep, h.bytes[i], h.len[i], err, sizeof err);
            cr_assert(r == CAT_ACCEPTED || r == CAT_DUPLICATE || r == CAT_GAP, "entry %d: %s: %s", i,
                      cat_result_name(r), err);
        }
    for (int i = 0; i < h.n; i++) {
        char err[256];
        cr_assert_eq(catalog_accept(rep, h.bytes[i], h.len[i], err, sizeof err), CAT_DUPLICATE, "replay %d", i);
    }
    cr_assert_eq(active(stores[1], "alice@growth", now, &gi), 0);
    cr_assert_eq(store_access_get(stores[1], "g", GR1, &row), 0);
    cr_assert(row->revoked, "the replica's grant is not revoked");
    trib__access_row__free_unpacked(row, NULL);
    cr_assert_eq(store_access_get(stores[1], "r", REQ2, &row), STORE_NOTFOUND);
    cr_assert_str_eq(grant_actions(stores[1], &acts), "requested,granted,revoked",
                     "the replica's feed, after every entry twice and a replay");
    catalog_destroy(&rep);
    for (int i = 0; i < h.n; i++)
        free(h.bytes[i]);
}

/* Several active grants to one subject on one product all count: the fields are the union of
 * their allow-lists (sorted), every field once one of them has none; the grant expiring last names
 * them; as each ends, the union narrows, and a read that began under the wider one is told
 * (grants_ended: grant_changed). */
Test(index, active_grants_add_up_and_narrow_as_each_ends, .init = ix_setup, .fini = ix_teardown)
{
    held_t h = {0};
    size_t len;
    int64_t now = wall_ms(), soon = now + DAY_MS, later = now + 30 * DAY_MS, latest = now + 60 * DAY_MS;
    grant_info_t gi, wide;
    char *f1[] = {"txn_id", "amount_minor"}, *f2[] = {"currency", "txn_id"};
    keep(&h, sign_fields(cpay, TRIB__ACCESS_KIND__ACCESS_GRANT, REQ1, GR1, "alice@growth", later, f1, 2, &len), &len);
    keep(&h, sign_fields(cpay, TRIB__ACCESS_KIND__ACCESS_GRANT, REQ2, GR2, "alice@growth", soon, f2, 2, &len), &len);
    cr_assert_eq(active(stores[0], "alice@growth", now, &gi), 1);
    cr_assert_eq(gi.nfields, 3, "the union of txn_id, amount_minor and currency, txn_id: %zu fields", gi.nfields);
    cr_assert_str_eq(gi.fields[0], "amount_minor");
    cr_assert_str_eq(gi.fields[1], "currency");
    cr_assert_str_eq(gi.fields[2], "txn_id");
    cr_assert_str_eq(gi.grant_id, GR1, "the grant expiring last names them");
    cr_assert_eq(gi.expires_ms, later);
    wide = gi;

    /* the shorter grant ends: its field goes, and a read that began with it is told */
    cr_assert_eq(active(stores[0], "alice@growth", soon, &gi), 1);
    cr_assert_eq(gi.nfields, 2);
    cr_assert_str_eq(gi.fields[0], "amount_minor");
    cr_assert_str_eq(gi.fields[1], "txn_id");
    node_t n;
    memset(&n, 0, sizeof n);
    n.st = stores[0];
    char why[512];
    cr_assert_null(grants_ended(&n, "alice@growth", "payments/settled", &wide, now, why, sizeof why));
    const char *kind = grants_ended(&n, "alice@growth", "payments/settled", &wide, soon, why, sizeof why);
    cr_assert(kind && !strcmp(kind, "grant_changed"), "%s: %s", kind ? kind : "(none)", why);
    cr_assert_null(grants_ended(&n, "alice@growth", "payments/settled", &gi, soon, why, sizeof why));
    /* more fields than a read began with: it goes on as it began (nothing is shown it may not see) */
    grant_info_t narrow = gi;
    cr_assert_null(grants_ended(&n, "alice@growth", "payments/settled", &narrow, now, why, sizeof why), "%s", why);
    cr_assert_eq(active(stores[0], "alice@growth", now, &gi), 1);
    cr_assert_eq(gi.ngrants, 2);
    cr_assert(strstr(gi.grants, GR1) && strstr(gi.grants, GR2), "both grants named: %s", gi.grants);

    /* a grant without an allow-list: every field while it holds */
    keep(&h, sign_fields(cpay, TRIB__ACCESS_KIND__ACCESS_GRANT, "req-00000000000000a3", "grant-00000000000000b3",
                         "alice@growth", latest, NULL, 0, &len), &len);
    cr_assert_eq(active(stores[0], "alice@growth", now, &gi), 1);
    cr_assert_eq(gi.nfields, 0, "a grant of every field: no projection, got %zu fields", gi.nfields);
    cr_assert_str_eq(gi.grant_id, "grant-00000000000000b3");
    cr_assert_eq(active(stores[0], "alice@growth", latest - 1, &gi), 1);
    cr_assert_eq(gi.nfields, 0);
    cr_assert_eq(active(stores[0], "alice@growth", latest, &gi), 0, "every grant has ended");
    for (int k = 0; k < h.n; k++)
        free(h.bytes[k]);
}

/* A union of more fields than an allow-list holds gives the fields of the grant expiring last
 * alone (as before grants added up), never fewer, whatever the grants' ids (a review found a
 * second grant of one field dropping one of the first grant's 64). */
Test(index, a_union_beyond_the_allow_list_limit_keeps_the_longest_grants_fields, .init = ix_setup,
     .fini = ix_teardown)
{
    held_t h = {0};
    size_t len;
    int64_t now = wall_ms();
    char *many[ACCESS_FIELDS_MAX], names[ACCESS_FIELDS_MAX][16], *one[] = {"currency"};
    for (int i = 0; i < ACCESS_FIELDS_MAX; i++) {
        snprintf(names[i], sizeof names[i], "f%02d", i);
        many[i] = names[i];
    }
    /* the one-field grant has the smaller id, so it is met first */
    keep(&h, sign_fields(cpay, TRIB__ACCESS_KIND__ACCESS_GRANT, REQ2, GR1, "alice@growth", now + DAY_MS, one, 1, &len),
         &len);
    keep(&h, sign_fields(cpay, TRIB__ACCESS_KIND__ACCESS_GRANT, REQ1, GR2, "alice@growth", now + 30 * DAY_MS, many,
                         ACCESS_FIELDS_MAX, &len), &len);
    grant_info_t gi;
    cr_assert_eq(active(stores[0], "alice@growth", now, &gi), 1);
    cr_assert_eq(gi.nfields, ACCESS_FIELDS_MAX, "%zu fields", gi.nfields);
    cr_assert_str_eq(gi.fields[0], "f00");
    cr_assert_str_eq(gi.fields[ACCESS_FIELDS_MAX - 1], "f63", "the longest grant's last field was dropped");
    cr_assert_str_eq(gi.grant_id, GR2);
    for (int k = 0; k < h.n; k++)
        free(h.bytes[k]);
}

/* The owner's read decision (what node/auth.c calls for confidential and restricted products) and
 * its audit: allowed with the grant's fields, refused without a token or a grant (restricted: 404),
 * expired and revoked grants refused, every decision in the audit log with no token in it. */
Test(index, read_decisions_are_audited, .init = ix_setup, .fini = ix_teardown)
{
    size_t len;
    int64_t now = wall_ms();
    free(sign_change(cgro, TRIB__ACCESS_KIND__ACCESS_REQUEST, REQ1, NULL, "alice@growth", 0, &len));
    free(sign_change(cpay, TRIB__ACCESS_KIND__ACCESS_GRANT, REQ1, GR1, "alice@growth", now + DAY_MS, &len));
    node_t n;
    memset(&n, 0, sizeof n);
    n.st = stores[0];
    snprintf(n.cfg.data, sizeof n.cfg.data, "%s", dirs[0]);
    snprintf(n.cfg.domain, sizeof n.cfg.domain, "payments");
    n.id = pay;
    grants_read_t d;
    cr_assert_eq(grants_check_read(&n, "public", NULL, NULL, NULL, "payments/settled", NULL, 0, &d), 1);
    cr_assert_eq(d.audited, 0, "public reads are not audited");
    cr_assert_eq(grants_check_read(&n, "confidential", "alice@growth", "growth", "tid-a", "payments/settled",
                                   "relayhex", 0, &d), 1);
    cr_assert(d.audited && d.allowed);
    cr_assert_str_eq(d.grant.grant_id, GR1);
    const char *fb[ACCESS_FIELDS_MAX + 1];
    const char *const *f = grants_fields(&d.grant, fb);
    cr_assert(f && !strcmp(f[0], "amount_minor") && !strcmp(f[1], "txn_id") && !f[2]);   /* sorted */
    grants_audit_served(&n, &d, 42);
    cr_assert_eq(grants_check_read(&n, "confidential", NULL, NULL, NULL, "payments/settled", NULL, 0, &d), 0);
    cr_assert_eq(d.status, 401);
    cr_assert_str_eq(d.code, "token_required");
    cr_assert_eq(grants_check_read(&n, "confidential", "bob@growth", "growth", "tid-b", "payments/settled", NULL, 1,
                                   &d), 0);
    cr_assert_eq(d.status, 403);
    cr_assert_str_eq(d.code, "grant_required");
    cr_assert_eq(grants_check_read(&n, "confidential", "alice@growth", "payments", "tid-x", "payments/settled", NULL,
                                   0, &d), 0, "a token of payments speaking for alice@growth rides her grant");
    cr_assert_eq(d.status, 403);
    cr_assert(strstr(d.detail, "issuer"), "%s", d.detail);
    cr_assert_eq(grants_check_read(&n, "restricted", "bob@growth", "growth", "tid-b", "payments/settled", NULL, 0,
                                   &d), 0);
    cr_assert_eq(d.status, 404, "restricted without a grant is not confirmed to exist");
    cr_assert_str_eq(d.code, "not_found");
    free(sign_change(cpay, TRIB__ACCESS_KIND__ACCESS_REVOKE, REQ1, GR1, "alice@growth", 0, &len));
    cr_assert_eq(grants_check_read(&n, "restricted", "alice@growth", "growth", "tid-a", "payments/settled", NULL, 0,
                                   &d), 0,
                 "a revoked grant still reads");
    char err[256];
    json_t *a = audit_read(&n, 100, err, sizeof err);
    cr_assert_not_null(a, "%s", err);
    cr_assert_eq(json_array_size(a), 6, "allowed + 5 refusals: %zu", json_array_size(a));
    json_t *e0 = json_array_get(a, 0);
    cr_assert(json_is_true(json_object_get(e0, "allowed")));
    cr_assert_eq(json_integer_value(json_object_get(e0, "records")), 42);
    cr_assert_str_eq(json_string_value(json_object_get(e0, "grant")), GR1);
    cr_assert_str_eq(json_string_value(json_object_get(e0, "entry_node")), "relayhex");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(a, 2), "action")), "stream");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(a, 4), "reason")), "not_found");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(a, 3), "subject")), "alice@growth");
    json_decref(a);
    json_t *one = audit_read(&n, 1, err, sizeof err);
    cr_assert_eq(json_array_size(one), 1, "limit keeps the newest");
    json_decref(one);
    char path[300];
    snprintf(path, sizeof path, "%s/audit.log", dirs[0]);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "audit.log mode %o", sb.st_mode & 0777);
}

/* States computed when read: a grant past its expiry is "expired" in mine and in the request. */
Test(index, expired_state_is_computed_when_read, .init = ix_setup, .fini = ix_teardown)
{
    size_t len;
    free(sign_change(cgro, TRIB__ACCESS_KIND__ACCESS_REQUEST, REQ1, NULL, "alice@growth", 0, &len));
    free(sign_change(cpay, TRIB__ACCESS_KIND__ACCESS_GRANT, REQ1, GR1, "alice@growth", wall_ms() - 1, &len));
    node_t n;
    memset(&n, 0, sizeof n);
    n.st = stores[0];
    snprintf(n.cfg.domain, sizeof n.cfg.domain, "growth");
    grants_caller_t who = {.subject = "alice@growth", .domain = "growth", .kind = TOKEN_KIND_READ};
    grants_result_t r;
    grants_mine(&n, &who, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(json_array_size(r.body), 2);
    for (size_t i = 0; i < 2; i++)
        cr_assert_str_eq(json_string_value(json_object_get(json_array_get(r.body, i), "state")), "expired");
    json_decref(r.body);
    grant_info_t gi;
    cr_assert_eq(active(stores[0], "alice@growth", wall_ms(), &gi), 0);
}

/* Bounded random request bodies (mutations of valid ones, and random bytes) into the request,
 * decision and revocation operations, in process: every answer is a known status with an error
 * kind, or a signed entry whose object carries id and state; nothing crashes (make asan). */
Test(index, random_request_bodies, .init = ix_setup, .fini = ix_teardown)
{
    Trib__SchemaProperty p1 = TRIB__SCHEMA_PROPERTY__INIT, p2 = TRIB__SCHEMA_PROPERTY__INIT;
    p1.name = "txn_id";
    p2.name = "amount_minor";
    Trib__SchemaProperty *props[] = {&p1, &p2};
    Trib__Manifest m = TRIB__MANIFEST__INIT;
    m.domain = "payments";
    m.name = "settled";
    m.version = "1.0.0";
    m.status = "active";
    m.classification = "confidential";   /* read with a grant: requests for it are taken */
    m.n_schema = 2;
    m.schema = props;
    uint64_t seq;
    char err[256];
    cr_assert_eq(catalog_publish(cpay, &m, NULL, &seq, NULL, NULL, err, sizeof err), 0, "%s", err);
    node_t n;
    memset(&n, 0, sizeof n);
    n.st = stores[0];
    n.cat = cgro;
    n.id = gro;
    snprintf(n.cfg.domain, sizeof n.cfg.domain, "growth");
    snprintf(n.cfg.data, sizeof n.cfg.data, "%s", dirs[0]);
    grants_caller_t who = {.subject = "alice@growth", .domain = "growth", .kind = TOKEN_KIND_ADMIN,
                           .scope = "growth/*", .token_id = "0123"};
    const char *seeds[] = {
        "{\"product\":\"payments/settled\",\"purpose\":\"p\",\"fields\":[\"txn_id\"],\"days\":3}",
        "{\"days\":30,\"reason\":\"no\"}", "{\"product\":\"payments/settled\",\"purpose\":\"x\"}"};
    const char alphabet[] = "{}[]\":,\\ 0123456789-.eaptxn_idmsurody\x01\xff";
    uint32_t x = 777;
    int created = 0;
    for (int iter = 0; iter < 3000; iter++) {
        char body[160];
        size_t len;
        x = x * 1103515245u + 12345u;
        const char *sd = seeds[(x >> 8) % 3];
        len = strlen(sd);
        memcpy(body, sd, len);
        int muts = (int)((x >> 12) % 4);
        for (int k = 0; k < muts; k++) {
            x = x * 1103515245u + 12345u;
            body[(x >> 8) % len] = alphabet[(x >> 20) % (sizeof alphabet - 1)];
        }
        grants_result_t r;
        int op = (int)((x >> 24) % 4);
        if (op == 0)
            grants_request(&n, &who, body, len, &r);
        else if (op == 1)
            grants_decide(&n, &who, iter % 2 ? REQ1 : "req-zz", iter % 3 == 0, body, len, &r);
        else if (op == 2)
            grants_revoke(&n, &who, GR1, body, len, &r);
        else
            grants_request(&n, &who, body, (x >> 9) % (len + 1), &r);   /* truncated */
        cr_assert(r.status == 201 || r.status == 200 || r.status == 400 || r.status == 403 || r.status == 404 ||
                  r.status == 409, "op %d on %.*s: %u %s", op, (int)len, body, r.status, r.detail);
        if (r.status == 201 || r.status == 200) {   /* 200: the same request, still pending, asked again */
            created++;
            cr_assert(json_is_string(json_object_get(r.body, "id")));
            cr_assert_str_eq(json_string_value(json_object_get(r.body, "state")), "requested");
            json_decref(r.body);
        } else {
            cr_assert(r.kind && *r.kind && r.detail[0], "a refusal names its kind and detail");
        }
    }
    cr_assert_gt(created, 10, "the valid seeds should make requests (%d)", created);
}

Test(index, malformed_access_entries_are_refused, .init = ix_setup, .fini = ix_teardown)
{
    Trib__AccessChange a = TRIB__ACCESS_CHANGE__INIT;
    a.kind = TRIB__ACCESS_KIND__ACCESS_REQUEST;
    a.request_id = "req-XYZ";
    a.product_id = "payments/settled";
    a.subject = "alice@growth";
    char err[256];
    cr_assert_neq(store_access_shape(&a, err, sizeof err), 0);
    cr_assert(strstr(err, "request_id"), "%s", err);
    a.request_id = REQ1;
    a.subject = "alice";
    cr_assert_neq(store_access_shape(&a, err, sizeof err), 0);
    a.subject = "alice@growth";
    a.purpose = "tab\there";
    cr_assert_neq(store_access_shape(&a, err, sizeof err), 0);
    a.purpose = "ok";
    a.days = 367;
    cr_assert_neq(store_access_shape(&a, err, sizeof err), 0);
    a.days = 1;
    a.kind = 9;
    cr_assert_neq(store_access_shape(&a, err, sizeof err), 0);
    a.kind = TRIB__ACCESS_KIND__ACCESS_REQUEST;
    cr_assert_eq(store_access_shape(&a, err, sizeof err), 0, "%s", err);
    /* such an entry, signed, is refused by entry_verify (as a malformed manifest is) */
    Trib__CatalogEntry ce = TRIB__CATALOG_ENTRY__INIT;
    ce.domain = "growth";
    ce.seq = 1;
    ce.time_ms = 1;
    ce.change_case = TRIB__CATALOG_ENTRY__CHANGE_ACCESS;
    a.subject = "not a subject";
    ce.access = &a;
    uint8_t *bytes;
    size_t len;
    cr_assert_eq(entry_sign(&gro, &ce, &bytes, &len), 0);
    entry_t v;
    cr_assert_neq(entry_verify(bytes, len, &v, err, sizeof err), 0);
    cr_assert(strstr(err, "subject"), "%s", err);
    free(bytes);
}

/* ================================================================ real processes */

#define FAST "--probe-interval-ms", "200", "--probe-timeout-ms", "100", "--suspicion-mult", "3", \
             "--gossip-interval-ms", "50", "--anti-entropy-ms", "300", "--retry-max-ms", "1000"

static h_node_t A, B;   /* payments (owner), growth (requester's home) */

/* method n's path with exactly token (NULL: none) and an optional JSON body: the reply as JSON, any
 * status (a refusal's error object too). */
static json_t *call(const char *method, h_node_t *n, const char *path, const char *token, const char *body,
                    long *status)
{
    json_t *j = h_call(method, n->url, path, token, body, status);
    cr_assert(*status, "%s %s%s: no reply", method, n->url, path);
    cr_assert_not_null(j, "%s %s%s: %ld, not JSON", method, n->url, path, *status);
    return j;
}

static char *issue(h_node_t *n, const char *subject, token_kind_t kind, const char *product, int64_t ttl_ms)
{
    char path[400], err[256];
    identity_t id;
    snprintf(path, sizeof path, "%s/identity.key", n->dir);
    cr_assert_eq(identity_load_file(path, &id, err, sizeof err), 0, "%s", err);
    int64_t now = wall_ms();
    token_spec_t sp = {.subject = subject, .kind = kind, .product = product, .issued_ms = now,
                       .expires_ms = now + ttl_ms};
    char *t = NULL;
    cr_assert_eq(token_issue(&id, n->domain, &sp, &t, err, sizeof err), 0, "%s", err);
    identity_wipe(&id);
    return t;
}

static void publish_settled(h_node_t *owner)
{
    const char *m = "{\"name\":\"settled\",\"domain\":\"payments\",\"version\":\"1.0.0\",\"status\":\"active\","
                    "\"classification\":\"confidential\","
                    "\"owners\":{\"business\":\"b@x.com\",\"technical\":\"t@x.com\"},"
                    "\"schema\":[{\"name\":\"txn_id\",\"logicalType\":\"string\",\"required\":true},"
                    "{\"name\":\"amount_minor\",\"logicalType\":\"integer\"},"
                    "{\"name\":\"currency\",\"logicalType\":\"string\"}]}";
    char url[256];
    snprintf(url, sizeof url, "%s/v1/products/payments/settled", owner->url);
    h_resp_t r;
    cr_assert_eq(h_http("PUT", url, "application/json", m, strlen(m), &r), 0);
    cr_assert(r.status == 201 || r.status == 200, "publish: %ld %s", r.status, r.body);
    h_resp_free(&r);
}

static void growth_sees_settled(void)
{
    cr_assert(h_wait_status(B.url, "/v1/products/payments/settled", NULL, 200, 20000),
              "growth never saw payments/settled");
}

/* A: payments, with payments/settled published; B: growth, joined through A, which has seen it. */
static void payments_and_growth(void)
{
    cr_assert_eq(h_node_start(&A, "payments", FAST, NULL), 0, "payments did not start");
    cr_assert_eq(h_node_start(&B, "growth", "--seed", A.peer, FAST, NULL), 0, "growth did not start");
    publish_settled(&A);
    growth_sees_settled();
    /* payments' entries can reach growth (pushed) before growth's member table lists payments'
     * node (in runs at load: up to 137 ms after the publish), and what growth says of payments' node
     * (the refusal naming where to decide, a read routed there) comes from that table */
    cr_assert(h_wait_member(B.url, "payments", "alive", NULL, 20000), "growth never saw payments' node alive");
}

typedef struct {
    h_node_t *n;
    const char *path, *token, *id, *state;
} seen_t;

/* The array at path (GET with token) holds an object with id (and state, when given). */
static int sees(void *ctx)
{
    seen_t *s = ctx;
    long st = 0;
    json_t *j = call("GET", s->n, s->path, s->token, NULL, &st);
    int ok = 0;
    size_t i;
    json_t *o;
    if (st == 200)
        json_array_foreach(j, i, o)
        {
            if (!strcmp(json_string_value(json_object_get(o, "id")), s->id) &&
                (!s->state || !strcmp(json_string_value(json_object_get(o, "state")), s->state)))
                ok = 1;
        }
    json_decref(j);
    return ok;
}

static const char *jstr(json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

/* Refusals for want of a credential are counted in trib_token_refused_total, the access routes'
 * other refusals in trib_access_refused_total: each refusal once, in one of them. */
static void expect_refusal(const char *method, h_node_t *n, const char *path, const char *token, const char *body,
                           long want_status, const char *want_code)
{
    const char *family = h_credential_code(want_code) ? "trib_token_refused_total" : "trib_access_refused_total";
    const char *other = h_credential_code(want_code) ? "trib_access_refused_total" : "trib_token_refused_total";
    char series[128];
    snprintf(series, sizeof series, "%s{reason=\"%s\"}", family, want_code);
    double before = h_metric(n->url, series), all = h_metric_sum(n->url, family), not_this = h_metric_sum(n->url, other);
    long st = 0;
    json_t *j = call(method, n, path, token, body, &st);
    cr_assert_eq(st, want_status, "%s %s: %ld %s, expected %ld", method, path, st, jstr(j, "detail"), want_status);
    cr_assert_str_eq(jstr(j, "error"), want_code, "%s %s: %s", method, path, jstr(j, "detail"));
    cr_assert(*jstr(j, "detail"), "a refusal says what is wrong");
    json_decref(j);
    cr_assert_eq(h_metric(n->url, series), before + 1, "%s not counted", series);
    cr_assert_eq(h_metric_sum(n->url, family), all + 1, "%s %s: %s counted more than once", method, path, family);
    cr_assert_eq(h_metric_sum(n->url, other), not_this, "%s %s (%s): counted in %s too", method, path, want_code, other);
    json_t *s = h_get_json(n->url, "/v1/status", NULL);
    cr_assert_not_null(s, "the node stopped serving after a refusal");
    json_decref(s);
}

Test(flow, request_grant_revoke_deny_across_nodes, .fini = h_cleanup_all, .timeout = 180)
{
    payments_and_growth();

    char *alice = issue(&B, "alice@growth", TOKEN_KIND_READ, NULL, 3600000);
    char *bob = issue(&B, "bob@growth", TOKEN_KIND_READ, NULL, 3600000);
    char *gadmin = issue(&B, "admin@growth", TOKEN_KIND_ADMIN, "growth/*", 3600000);
    char *padmin = issue(&A, "admin@payments", TOKEN_KIND_ADMIN, "payments/*", 3600000);
    char *pread = issue(&A, "maria@payments", TOKEN_KIND_READ, NULL, 3600000);

    /* refusals before anything: no token, a tampered token, a request through the wrong node */
    const char *ask = "{\"product\":\"payments/settled\",\"purpose\":\"churn model\","
                      "\"fields\":[\"txn_id\",\"amount_minor\"],\"days\":30}";
    expect_refusal("POST", &B, "/v1/access/requests", NULL, ask, 401, "token_required");
    char *tampered = strdup(alice);
    tampered[strlen(tampered) / 2] = tampered[strlen(tampered) / 2] == 'A' ? 'B' : 'A';
    expect_refusal("POST", &B, "/v1/access/requests", tampered, ask, 401, "token_invalid");
    free(tampered);
    expect_refusal("POST", &B, "/v1/access/requests", pread, ask, 403, "wrong_domain");   /* not B's domain */
    expect_refusal("POST", &B, "/v1/access/requests", alice,
                   "{\"product\":\"payments/settled\",\"purpose\":\"x\",\"fields\":[\"iban\"]}", 400, "bad_request");

    /* the request through growth's node */
    long st = 0;
    json_t *req = call("POST", &B, "/v1/access/requests", alice, ask, &st);
    cr_assert_eq(st, 201, "request: %ld %s", st, jstr(req, "detail"));
    cr_assert_str_eq(jstr(req, "state"), "requested");
    char rid[64];
    snprintf(rid, sizeof rid, "%s", jstr(req, "id"));
    cr_assert_str_eq(jstr(req, "subject"), "alice@growth");
    json_decref(req);

    /* pending on the owner, by gossip */
    seen_t pend = {&A, "/v1/access/requests?state=requested", padmin, rid, "requested"};
    cr_assert(h_wait(sees, &pend, 20000), "payments never listed request %s as pending", rid);
    /* a read without the grant yet: one grant refusal, counted once */
    expect_refusal("GET", &A, "/v1/products/payments/settled/records", alice, NULL, 403, "grant_required");

    /* hostile decisions: another domain's admin token, a read token of the owner's domain */
    char path[256];
    snprintf(path, sizeof path, "/v1/access/requests/%s/grant", rid);
    expect_refusal("POST", &A, path, gadmin, "{\"days\":30}", 403, "wrong_domain");
    expect_refusal("POST", &A, path, pread, "{\"days\":30}", 403, "kind_insufficient");
    expect_refusal("GET", &A, "/v1/access/requests?state=requested", alice, NULL, 403, "wrong_domain");
    expect_refusal("GET", &A, "/v1/access/requests?state=nonsense", padmin, NULL, 400, "bad_query");
    /* a decision on the requester's node: it does not own the product */
    snprintf(path, sizeof path, "/v1/access/requests/%s/grant", rid);
    expect_refusal("POST", &B, path, gadmin, "{\"days\":30}", 403, "wrong_domain");

    /* the grant */
    json_t *g = call("POST", &A, path, padmin, "{\"days\":30}", &st);
    cr_assert_eq(st, 200, "grant: %ld %s", st, jstr(g, "detail"));
    cr_assert_str_eq(jstr(g, "state"), "granted");
    cr_assert_str_eq(jstr(g, "request"), rid, "a grant names its request");
    cr_assert_str_eq(jstr(g, "subject"), "alice@growth");
    cr_assert_eq(json_array_size(json_object_get(g, "fields")), 2);
    int64_t exp = (int64_t)json_integer_value(json_object_get(g, "expires_ms"));
    cr_assert(exp > wall_ms() + 29 * DAY_MS && exp <= wall_ms() + 30 * DAY_MS + 60000, "expiry %lld",
              (long long)exp);
    char gid[64];
    snprintf(gid, sizeof gid, "%s", jstr(g, "id"));
    json_decref(g);
    expect_refusal("POST", &A, path, padmin, "{\"days\":30}", 409, "already_decided");

    /* seen on growth by gossip: the request granted and the grant in alice's list; not bob's */
    seen_t mine_req = {&B, "/v1/access/mine", alice, rid, "granted"};
    seen_t mine_grant = {&B, "/v1/access/mine", alice, gid, "granted"};
    cr_assert(h_wait(sees, &mine_req, 20000), "growth never saw request %s granted", rid);
    cr_assert(h_wait(sees, &mine_grant, 20000), "growth never saw grant %s", gid);
    seen_t bobs = {&B, "/v1/access/mine", bob, gid, NULL};
    cr_assert(!sees(&bobs), "bob sees alice's grant in his list");

    /* revoke, twice */
    snprintf(path, sizeof path, "/v1/access/grants/%s/revoke", gid);
    expect_refusal("POST", &A, path, gadmin, "{}", 403, "wrong_domain");
    g = call("POST", &A, path, padmin, "{\"reason\":\"project ended\"}", &st);
    cr_assert_eq(st, 200, "revoke: %ld %s", st, jstr(g, "detail"));
    cr_assert_str_eq(jstr(g, "state"), "revoked");
    json_decref(g);
    expect_refusal("POST", &A, path, padmin, "{}", 409, "already_revoked");
    seen_t mine_rev = {&B, "/v1/access/mine", alice, gid, "revoked"};
    cr_assert(h_wait(sees, &mine_rev, 20000), "growth never saw grant %s revoked", gid);

    /* deny a second request, through the CLI on both sides */
    char *out = NULL, *errout = NULL;
    int rc = h_trib(&B, NULL, &out, &errout, "access", "request", "payments/settled", "--purpose", "fraud study",
                    "--days", "7", "--token", alice, "--json", NULL);
    cr_assert_eq(rc, 0, "trib access request: %s", errout);
    json_t *r2 = json_loads(out, 0, NULL);
    cr_assert_str_eq(jstr(r2, "state"), "requested", "%s", out);
    char rid2[64];
    snprintf(rid2, sizeof rid2, "%s", jstr(r2, "id"));
    json_decref(r2);
    free(out);
    free(errout);
    seen_t pend2 = {&A, "/v1/access/requests?state=requested", padmin, rid2, "requested"};
    cr_assert(h_wait(sees, &pend2, 20000), "payments never listed request %s", rid2);
    rc = h_trib(&A, NULL, &out, &errout, "access", "pending", "--token", padmin, "--json", NULL);
    cr_assert_eq(rc, 0, "trib access pending: %s", errout);
    json_t *pj = json_loads(out, 0, NULL);
    cr_assert(json_is_array(pj), "pending --json is an array: %s", out);
    cr_assert_eq(json_array_size(pj), 1, "only the undecided request is pending: %s", out);
    json_decref(pj);
    free(out);
    free(errout);
    rc = h_trib(&A, NULL, &out, &errout, "access", "deny", rid2, "--reason", "use the aggregate", "--token", padmin,
                "--json", NULL);
    cr_assert_eq(rc, 0, "trib access deny: %s", errout);
    json_t *dj = json_loads(out, 0, NULL);
    cr_assert_str_eq(jstr(dj, "state"), "denied", "%s", out);
    cr_assert_str_eq(jstr(dj, "id"), rid2);
    json_decref(dj);
    free(out);
    free(errout);
    seen_t mine_den = {&B, "/v1/access/mine", alice, rid2, "denied"};
    cr_assert(h_wait(sees, &mine_den, 20000), "growth never saw request %s denied", rid2);
    rc = h_trib(&B, NULL, &out, &errout, "access", "mine", "--token", alice, "--json", NULL);
    cr_assert_eq(rc, 0, "trib access mine: %s", errout);
    json_t *mj = json_loads(out, 0, NULL);
    cr_assert(json_is_array(mj) && json_array_size(mj) == 3, "mine: two requests and one grant: %s", out);
    json_decref(mj);
    free(out);
    free(errout);
    /* as text: a table whose columns line up under their headers (rows of other lengths of id,
     * state and fields pushed every later column out of line) */
    rc = h_trib(&B, NULL, &out, &errout, "access", "mine", "--token", alice, NULL);
    cr_assert_eq(rc, 0, "trib access mine: %s", errout);
    expect_aligned(out, 4);
    free(out);
    free(errout);
    rc = h_trib(&B, NULL, &out, &errout, "access", "grant", rid2, "--token", alice, NULL);
    cr_assert_eq(rc, 1, "a read token granting through the requester's node must fail");
    cr_assert(strstr(errout, "403"), "%s", errout);
    free(out);
    free(errout);

    /* the audit log on the owner: alice's read refused there before the grant, then grant, revoke,
     * deny; admin only */
    json_t *au = call("GET", &A, "/v1/audit?limit=10", padmin, NULL, &st);
    cr_assert_eq(st, 200, "audit: %ld", st);
    cr_assert_eq(json_array_size(au), 4, "refused read, grant, revoke, deny: %zu events", json_array_size(au));
    json_t *refused = json_array_get(au, 0);
    cr_assert(!strcmp(jstr(refused, "action"), "read") && !strcmp(jstr(refused, "subject"), "alice@growth") &&
              json_is_false(json_object_get(refused, "allowed")) && !strcmp(jstr(refused, "reason"), "grant_required"),
              "the first event is not alice's refused read");
    const char *acts[] = {"grant", "revoke", "deny"};
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(au, i + 1);
        cr_assert_str_eq(jstr(e, "action"), acts[i]);
        cr_assert_str_eq(jstr(e, "product"), "payments/settled");
        cr_assert_str_eq(jstr(e, "subject"), "admin@payments");
        cr_assert_eq(strlen(jstr(e, "token_id")), 32, "the token's id, never the token");
    }
    json_decref(au);
    expect_refusal("GET", &A, "/v1/audit", pread, NULL, 403, "kind_insufficient");
    expect_refusal("GET", &A, "/v1/audit", NULL, NULL, 401, "token_required");
    expect_refusal("GET", &A, "/v1/audit?limit=0", padmin, NULL, 400, "bad_query");
    rc = h_trib(&A, NULL, &out, &errout, "audit", "--token", padmin, NULL);
    cr_assert_eq(rc, 0, "trib audit: %s", errout);
    cr_assert(strstr(out, "grant") && strstr(out, "revoke") && strstr(out, gid), "%s", out);
    cr_assert(!strstr(out, padmin), "a token reached the audit output");
    free(out);
    free(errout);
    /* alice is told her grant was revoked, when, by whom and why, on the owner and through growth
     * (the owner decides a routed read; her request denied since gives no grant); bob, who never held one, that he holds none */
    char want[256];
    snprintf(want, sizeof want, "your grant %s for payments/settled was revoked at 20", gid);
    h_node_t *via[] = {&A, &B};
    for (int k = 0; k < 2; k++) {
        g = call("GET", via[k], "/v1/products/payments/settled/records", alice, NULL, &st);
        const char *d = jstr(g, "detail");
        cr_assert(st == 403 && !strcmp(jstr(g, "error"), "grant_required") && strstr(d, want) &&
                  strstr(d, " by domain 'payments' (token ") && strstr(d, "(reason: project ended)"),
                  "alice's read on %s after the revocation: %ld %s", via[k]->domain, st, d);
        json_decref(g);
    }
    g = call("GET", &A, "/v1/products/payments/settled/records", bob, NULL, &st);
    cr_assert(st == 403 && strstr(jstr(g, "detail"), "bob@growth holds no active grant"), "bob: %ld %s", st,
              jstr(g, "detail"));
    json_decref(g);
    /* access entries are not products: listings, search and status count the one product */
    json_t *pl = h_get_json(B.url, "/v1/products", NULL);
    cr_assert_eq(json_integer_value(json_object_get(pl, "total")), 1, "growth lists other than one product");
    json_decref(pl);
    pl = h_get_json(A.url, "/v1/products?q=settled", NULL);
    cr_assert_eq(json_integer_value(json_object_get(pl, "total")), 1, "search on payments");
    json_decref(pl);
    json_t *ss = h_get_json(B.url, "/v1/status", NULL);
    cr_assert_eq(json_integer_value(json_object_get(ss, "products")), 1);
    cr_assert_geq(json_integer_value(json_object_get(json_object_get(ss, "digest"), "growth")), 2,
                  "growth's log holds its two requests");
    json_decref(ss);

    char *log = h_read_file(A.log, NULL);
    cr_assert(log && !strstr(log, padmin) && !strstr(log, alice), "a token reached the agent's log");
    free(log);

    free(alice);
    free(bob);
    free(gadmin);
    free(padmin);
    free(pread);
}

/* Only confidential and restricted products are read with a grant, and only by other domains: a
 * request for a public or internal one (the manifest's default), or for one of the requester's own
 * domain, would ask its owner for nothing. It is refused 409 no_grant_needed, counted, its detail
 * saying who may read it already and how. Before, each was taken (201) and waited for a decision
 * that could give nothing. */
Test(flow, a_request_for_a_product_that_needs_no_grant_is_refused, .fini = h_cleanup_all, .timeout = 120)
{
    cr_assert_eq(h_node_start(&A, "payments", FAST, NULL), 0, "payments did not start");
    publish_settled(&A);   /* confidential */
    static const char *const cls[] = {"public", "internal", NULL};   /* NULL: not written (internal) */
    for (int i = 0; i < 3; i++) {
        char m[600], url[256];
        snprintf(m, sizeof m, "{\"name\":\"open%d\",\"domain\":\"payments\",\"version\":\"1.0.0\",%s%s%s"
                 "\"owners\":{\"business\":\"b@x.com\",\"technical\":\"t@x.com\"},"
                 "\"schema\":[{\"name\":\"txn_id\",\"logicalType\":\"string\"}]}", i,
                 cls[i] ? "\"classification\":\"" : "", cls[i] ? cls[i] : "", cls[i] ? "\"," : "");
        snprintf(url, sizeof url, "%s/v1/products/payments/open%d", A.url, i);
        h_resp_t r;
        cr_assert_eq(h_http("PUT", url, "application/json", m, strlen(m), &r), 0);
        cr_assert(r.status == 201 || r.status == 200, "publish: %ld %s", r.status, r.body);
        h_resp_free(&r);
    }
    char *maria = issue(&A, "maria@payments", TOKEN_KIND_READ, NULL, 3600000);
    for (int i = 0; i < 3; i++) {
        char ask[200];
        snprintf(ask, sizeof ask, "{\"product\":\"payments/open%d\",\"purpose\":\"churn model\"}", i);
        expect_refusal("POST", &A, "/v1/access/requests", maria, ask, 409, "no_grant_needed");
        long st = 0;
        json_t *j = call("POST", &A, "/v1/access/requests", maria, ask, &st);
        const char *d = jstr(j, "detail");
        cr_expect(strstr(d, i == 0 ? "anyone may read" : "any valid token"), "open%d: %s", i, d);
        cr_expect(strstr(d, i == 0 ? "is public" : "is internal"), "open%d: %s", i, d);
        json_decref(j);
    }
    long st = 0;
    json_t *mine = call("GET", &A, "/v1/access/mine", maria, NULL, &st);
    cr_expect_eq(st, 200);
    cr_expect_eq(json_array_size(mine), 0, "a refused request was signed");
    json_decref(mine);
    /* a confidential product of her own domain: her tokens read it without a grant (another
     * domain's request for it is taken: decisions_asked_of_the_requesters_node_name_the_owners_node) */
    const char *own = "{\"product\":\"payments/settled\",\"purpose\":\"churn model\"}";
    expect_refusal("POST", &A, "/v1/access/requests", maria, own, 409, "no_grant_needed");
    json_t *req = call("POST", &A, "/v1/access/requests", maria, own, &st);
    cr_expect(strstr(jstr(req, "detail"), "of your own domain 'payments'"), "%s", jstr(req, "detail"));
    json_decref(req);
    mine = call("GET", &A, "/v1/access/mine", maria, NULL, &st);
    cr_expect_eq(json_array_size(mine), 0, "a refused request was signed");
    json_decref(mine);
    free(maria);
}

/* The same request asked again while the first waits (a double click, `trib access request` run
 * twice) is answered 200 with the first, `"existing": true`, and signs nothing: the owner has one
 * request to decide. Before, each was a new pending request (201, another id). Asked at once by
 * several clients, one is signed. Other fields, or the first decided, make a new request. */
typedef struct {
    const char *url, *token, *body;
    long status;
    char id[64];
} ask_t;

static void *ask_thread(void *v)
{
    ask_t *a = v;
    h_resp_t r;
    if (h_http_token("POST", a->url, "application/json", a->body, strlen(a->body), a->token, &r) == 0) {
        a->status = r.status;
        json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
        snprintf(a->id, sizeof a->id, "%s", jstr(j, "id"));
        json_decref(j);
    }
    h_resp_free(&r);
    return NULL;
}

static size_t count_requests(h_node_t *n, const char *token, const char *path)
{
    long st = 0;
    json_t *j = call("GET", n, path, token, NULL, &st);
    cr_assert_eq(st, 200, "GET %s: %ld", path, st);
    size_t k = json_array_size(j);
    json_decref(j);
    return k;
}

Test(flow, the_same_request_asked_again_is_answered_with_the_first, .fini = h_cleanup_all, .timeout = 180)
{
    payments_and_growth();
    char *alice = issue(&B, "alice@growth", TOKEN_KIND_READ, NULL, 3600000);
    char *padmin = issue(&A, "admin@payments", TOKEN_KIND_ADMIN, "payments/*", 3600000);
    const char *ask = "{\"product\":\"payments/settled\",\"purpose\":\"churn model\","
                      "\"fields\":[\"txn_id\",\"amount_minor\"],\"days\":30}";
    long st = 0;
    json_t *first = call("POST", &B, "/v1/access/requests", alice, ask, &st);
    cr_assert_eq(st, 201, "request: %ld %s", st, jstr(first, "detail"));
    char rid[64];
    snprintf(rid, sizeof rid, "%s", jstr(first, "id"));
    cr_assert(!json_object_get(first, "existing"), "a new request is not marked existing");
    json_decref(first);

    /* again, the fields in another order: the first, not a second row */
    const char *again = "{\"product\":\"payments/settled\",\"purpose\":\"churn model\","
                        "\"fields\":[\"amount_minor\",\"txn_id\"],\"days\":30}";
    json_t *j = call("POST", &B, "/v1/access/requests", alice, again, &st);
    cr_assert_eq(st, 200, "the same request again: %ld %s (expected 200 with the first)", st, jstr(j, "detail"));
    cr_assert_str_eq(jstr(j, "id"), rid, "the same request again got another id");
    cr_assert(json_is_true(json_object_get(j, "existing")), "the answer does not say it is the first request");
    cr_assert_str_eq(jstr(j, "state"), "requested");
    json_decref(j);

    /* several clients at once: still the one request */
    pthread_t t[4];
    ask_t a[4];
    char url[300];
    snprintf(url, sizeof url, "%s/v1/access/requests", B.url);
    for (int i = 0; i < 4; i++) {
        a[i] = (ask_t){.url = url, .token = alice, .body = ask};
        cr_assert_eq(pthread_create(&t[i], NULL, ask_thread, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(a[i].status, 200, "concurrent request %d: %ld", i, a[i].status);
        cr_assert_str_eq(a[i].id, rid, "concurrent request %d got another id", i);
    }

    /* the CLI run twice says so */
    char *out = NULL, *errout = NULL;
    int rc = h_trib(&B, NULL, &out, &errout, "access", "request", "payments/settled", "--purpose", "churn model",
                    "--fields", "txn_id,amount_minor", "--token", alice, NULL);
    cr_assert_eq(rc, 0, "trib access request again: %s", errout);
    cr_assert(strstr(out, rid), "the CLI does not show the first request: %s", out);
    cr_assert(strstr(errout, "you asked for this already") && strstr(errout, rid), "the CLI does not say so: %s",
              errout);
    free(out);
    free(errout);

    cr_assert_eq(count_requests(&B, alice, "/v1/access/mine"), 1, "alice holds more than one request");
    seen_t pend = {&A, "/v1/access/requests?state=requested", padmin, rid, "requested"};
    cr_assert(h_wait(sees, &pend, 20000), "payments never listed request %s as pending", rid);

    /* other fields are another request */
    j = call("POST", &B, "/v1/access/requests", alice,
             "{\"product\":\"payments/settled\",\"purpose\":\"churn model\",\"fields\":[\"txn_id\"],\"days\":30}", &st);
    cr_assert_eq(st, 201, "a request for other fields: %ld %s", st, jstr(j, "detail"));
    cr_assert_str_neq(jstr(j, "id"), rid);
    json_decref(j);

    /* once the first is decided (and its decision is on growth), asking again is a new request */
    char path[256];
    snprintf(path, sizeof path, "/v1/access/requests/%s/deny", rid);
    j = call("POST", &A, path, padmin, "{\"reason\":\"use the aggregate\"}", &st);
    cr_assert_eq(st, 200, "deny: %ld %s", st, jstr(j, "detail"));
    json_decref(j);
    seen_t denied = {&B, "/v1/access/mine", alice, rid, "denied"};
    cr_assert(h_wait(sees, &denied, 20000), "growth never saw request %s denied", rid);
    j = call("POST", &B, "/v1/access/requests", alice, ask, &st);
    cr_assert_eq(st, 201, "asked again after a denial: %ld %s", st, jstr(j, "detail"));
    cr_assert_str_neq(jstr(j, "id"), rid);
    json_decref(j);
    free(alice);
    free(padmin);
}

/* The owner's audit log holds every decision on its confidential data, whichever node the consumer
 * asked: a read refused on the owner itself (a client pointed at it, or `trib get` sent there by the
 * redirect) is logged as a refused read routed through another node is, with the owner as the node
 * asked. Only routed refusals were logged. */
static int audited(json_t *events, const char *action, const char *subject, const char *reason, const char *entry)
{
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        if (!strcmp(jstr(e, "action"), action) && !strcmp(jstr(e, "subject"), subject) &&
            !strcmp(jstr(e, "reason"), reason) && !strcmp(jstr(e, "entry_node"), entry) &&
            !strcmp(jstr(e, "product"), "payments/settled") && json_is_false(json_object_get(e, "allowed")))
            return 1;
    }
    return 0;
}

Test(flow, reads_refused_on_the_owner_itself_are_audited, .fini = h_cleanup_all, .timeout = 120)
{
    payments_and_growth();
    cr_assert(h_wait_member(A.url, "growth", "alive", NULL, 20000), "payments never saw growth's node alive");
    char *alice = issue(&B, "alice@growth", TOKEN_KIND_READ, NULL, 3600000);
    char *padmin = issue(&A, "admin@payments", TOKEN_KIND_ADMIN, "payments/*", 3600000);
    expect_refusal("GET", &A, "/v1/products/payments/settled/records", alice, NULL, 403, "grant_required");
    expect_refusal("GET", &A, "/v1/products/payments/settled/stream", NULL, NULL, 401, "token_required");
    json_t *s = h_get_json(A.url, "/v1/status", NULL);
    char self[80];
    snprintf(self, sizeof self, "%s", jstr(s, "node_id"));
    json_decref(s);
    long st = 0;
    json_t *au = call("GET", &A, "/v1/audit?limit=100", padmin, NULL, &st);
    cr_assert_eq(st, 200, "audit: %ld %s", st, jstr(au, "detail"));
    char *dump = json_dumps(au, JSON_COMPACT);
    cr_expect(audited(au, "read", "alice@growth", "grant_required", self),
              "alice's refused read on the owner is not in its audit log: %s", dump);
    cr_expect(audited(au, "stream", "", "token_required", self),
              "a refused stream without a token on the owner is not in its audit log: %s", dump);
    free(dump);
    json_decref(au);
    free(alice);
    free(padmin);
}

/* A refused read is audited once per 10 s for one (token id, node asked, product, reason): the same
 * refusal repeated is counted in trib_audit_refusals_held_total, not written again. Each was written:
 * anyone, with no token, could append a line per request (a few thousand a second) and rotate the
 * owner's audit history out of its 32 MiB in under a minute. */
static int audited_count(json_t *events, const char *action, const char *subject, const char *reason, const char *entry)
{
    int n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
        n += !strcmp(jstr(e, "action"), action) && !strcmp(jstr(e, "subject"), subject) &&
             !strcmp(jstr(e, "reason"), reason) && !strcmp(jstr(e, "entry_node"), entry) &&
             !strcmp(jstr(e, "product"), "payments/settled") && json_is_false(json_object_get(e, "allowed"));
    return n;
}

Test(flow, a_refused_read_repeated_is_audited_once, .fini = h_cleanup_all, .timeout = 120)
{
    payments_and_growth();
    char *alice = issue(&B, "alice@growth", TOKEN_KIND_READ, NULL, 3600000);
    char *padmin = issue(&A, "admin@payments", TOKEN_KIND_ADMIN, "payments/*", 3600000);
    double held0 = h_metric(A.url, "trib_audit_refusals_held_total");
    for (int i = 0; i < 25; i++) {
        long st = 0;
        json_decref(call("GET", &A, "/v1/products/payments/settled/stream", NULL, NULL, &st));
        cr_assert_eq(st, 401);
        json_decref(call("GET", &A, "/v1/products/payments/settled/records", alice, NULL, &st));
        cr_assert_eq(st, 403);
    }
    json_t *s = h_get_json(A.url, "/v1/status", NULL);
    char self[80];
    snprintf(self, sizeof self, "%s", jstr(s, "node_id"));
    json_decref(s);
    long st = 0;
    json_t *au = call("GET", &A, "/v1/audit?limit=1000", padmin, NULL, &st);
    cr_assert_eq(st, 200, "audit: %ld %s", st, jstr(au, "detail"));
    cr_expect_eq(audited_count(au, "stream", "", "token_required", self), 1, "25 refused streams without a token");
    cr_expect_eq(audited_count(au, "read", "alice@growth", "grant_required", self), 1, "25 refused reads of alice's");
    cr_expect_eq(h_metric(A.url, "trib_audit_refusals_held_total") - held0, 48);
    json_decref(au);
    free(alice);
    free(padmin);
}

/* The owner's admin asking the requester's node (any node answers reads, so $TRIB_NODE is often
 * not the owner's): the refusal says the decision belongs on the owner's node and names it, instead
 * of "only a token of domain 'growth' decides", which blamed a token that was the right one. */
static void refused_naming(h_node_t *n, const char *method, const char *path, const char *token,
                           const char *body, const char *owner_url)
{
    long st = 0;
    json_t *j = call(method, n, path, token, body, &st);
    cr_assert_eq(st, 403, "%s %s: %ld %s", method, path, st, jstr(j, "detail"));
    cr_assert_str_eq(jstr(j, "error"), "wrong_domain", "%s %s: %s", method, path, jstr(j, "detail"));
    cr_assert(strstr(jstr(j, "detail"), owner_url), "%s %s: the refusal does not name %s: %s", method, path,
              owner_url, jstr(j, "detail"));
    json_decref(j);
}

/* Polls for a 403 wrong_domain whose detail names want (h_wait's condition); the last detail seen
 * kept for the failure message. */
typedef struct {
    h_node_t *n;
    const char *path, *token, *want;
    char last[600];
} named_t;

static int names(void *ctx)
{
    named_t *c = ctx;
    long st = 0;
    json_t *j = call("GET", c->n, c->path, c->token, NULL, &st);
    snprintf(c->last, sizeof c->last, "%ld %s", st, jstr(j, "detail"));
    int ok = st == 403 && !strcmp(jstr(j, "error"), "wrong_domain") && strstr(jstr(j, "detail"), c->want);
    json_decref(j);
    return ok;
}

Test(flow, decisions_asked_of_the_requesters_node_name_the_owners_node, .fini = h_cleanup_all, .timeout = 180)
{
    payments_and_growth();
    char *alice = issue(&B, "alice@growth", TOKEN_KIND_READ, NULL, 3600000);
    char *padmin = issue(&A, "admin@payments", TOKEN_KIND_ADMIN, "payments/*", 3600000);
    char *gadmin = issue(&B, "admin@growth", TOKEN_KIND_ADMIN, "growth/*", 3600000);
    long st = 0;
    json_t *req = call("POST", &B, "/v1/access/requests", alice,
                       "{\"product\":\"payments/settled\",\"purpose\":\"churn\",\"fields\":[\"txn_id\"],\"days\":3}",
                       &st);
    cr_assert_eq(st, 201, "request: %ld %s", st, jstr(req, "detail"));
    char rid[64], path[256], hint[300];
    snprintf(rid, sizeof rid, "%s", jstr(req, "id"));
    json_decref(req);
    snprintf(hint, sizeof hint, "trib --node %s)", A.url);

    snprintf(path, sizeof path, "/v1/access/requests/%s/grant", rid);
    refused_naming(&B, "POST", path, padmin, "{\"days\":3}", hint);
    snprintf(path, sizeof path, "/v1/access/requests/%s/deny", rid);
    refused_naming(&B, "POST", path, padmin, "{}", hint);
    refused_naming(&B, "GET", "/v1/access/requests?state=requested", padmin, NULL, hint);
    /* the other way round: growth's admin listing on payments' node is sent to growth's (named
     * once payments holds growth's log, the request: the member holding growth's key) */
    seen_t pend = {&A, "/v1/access/requests?state=requested", padmin, rid, "requested"};
    cr_assert(h_wait(sees, &pend, 20000), "payments never listed request %s", rid);
    char ghint[300];
    snprintf(ghint, sizeof ghint, "trib --node %s)", B.url);
    refused_naming(&A, "GET", "/v1/access/requests?state=requested", gadmin, NULL, ghint);

    /* granted where it belongs; the revocation asked of growth's node is sent to payments' */
    snprintf(path, sizeof path, "/v1/access/requests/%s/grant", rid);
    json_t *g = call("POST", &A, path, padmin, "{\"days\":3}", &st);
    cr_assert_eq(st, 200, "grant: %ld %s", st, jstr(g, "detail"));
    char gid[64];
    snprintf(gid, sizeof gid, "%s", jstr(g, "id"));
    json_decref(g);
    seen_t mine = {&B, "/v1/access/mine", alice, gid, "granted"};
    cr_assert(h_wait(sees, &mine, 20000), "growth never saw grant %s", gid);
    snprintf(path, sizeof path, "/v1/access/grants/%s/revoke", gid);
    refused_naming(&B, "POST", path, padmin, "{}", hint);

    /* the CLI shows the node's words */
    char *out = NULL, *errout = NULL;
    int rc = h_trib(&B, NULL, &out, &errout, "access", "revoke", gid, "--token", padmin, NULL);
    cr_assert_eq(rc, 1, "revoke on the requester's node: %s", out);
    cr_assert(strstr(errout, hint), "trib access revoke does not name payments' node: %s", errout);
    free(out), free(errout);
    free(alice), free(padmin), free(gadmin);
}

/* The facet count of value under facet in a listing reply (0: absent). */
static json_int_t facet_of(json_t *reply, const char *facet, const char *value)
{
    return json_integer_value(json_object_get(json_object_get(json_object_get(reply, "facets"), facet), value));
}

/* DESIGN §13: a restricted product is a stub (id, domain, name, title, status, owners) to a caller
 * without a grant. A search must not tell that caller more: its tags are not in the facet counts,
 * and neither a tag filter nor the words of its tags or description find it. The product's own
 * domain (admin or read token) sees it in full; a valid token scoped elsewhere does not; deciding
 * a listing counts nothing as refused. */
Test(flow, search_facets_count_a_restricted_product_as_its_stub, .fini = h_cleanup_all, .timeout = 120)
{
    cr_assert_eq(h_node_start(&A, "payments", FAST, NULL), 0, "payments did not start");
    publish_settled(&A);
    const char *m = "{\"name\":\"deal-room\",\"domain\":\"payments\",\"version\":\"1.0.0\",\"status\":\"active\","
                    "\"classification\":\"restricted\",\"title\":\"Deal room\","
                    "\"description\":{\"purpose\":\"Takeover of Acme\"},\"tags\":[\"secret-merger\",\"finance\"],"
                    "\"owners\":{\"business\":\"b@x.com\",\"technical\":\"t@x.com\"},"
                    "\"schema\":[{\"name\":\"bid_eur\",\"logicalType\":\"integer\"}]}";
    long st = 0;
    json_t *j = call("PUT", &A, "/v1/products/payments/deal-room", A.token, m, &st);
    cr_assert(st == 201 || st == 200, "publish: %ld %s", st, jstr(j, "detail"));
    json_decref(j);
    char *pread = issue(&A, "maria@payments", TOKEN_KIND_READ, NULL, 3600000);
    char *scoped = issue(&A, "sam@payments", TOKEN_KIND_READ, "payments/settled", 3600000);
    double refused = h_metric(A.url, "trib_token_refused_total{reason=\"out_of_scope\"}");

    const char *blind[] = {NULL, scoped}, *full[] = {A.token, pread};
    for (int who = 0; who < 4; who++) {
        const char *token = who < 2 ? blind[who] : full[who - 2];
        int sees = who >= 2;
        j = call("GET", &A, "/v1/products", token, NULL, &st);
        cr_assert_eq(st, 200);
        cr_expect_eq(json_integer_value(json_object_get(j, "total")), 2, "caller %d: the stub is listed", who);
        cr_expect_eq(facet_of(j, "tag", "secret-merger"), sees ? 1 : 0, "caller %d: the restricted tag's count",
                     who);
        cr_expect_eq(facet_of(j, "tag", "finance"), sees ? 1 : 0, "caller %d", who);
        cr_expect_eq(facet_of(j, "owner", "b@x.com"), 2, "caller %d: owners are in the stub", who);
        json_decref(j);
        const char *probes[] = {"/v1/products?tag=secret-merger", "/v1/products?q=merger", "/v1/products?q=acme",
                                "/v1/products?q=bid_eur"};
        for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
            j = call("GET", &A, probes[i], token, NULL, &st);
            cr_expect_eq(json_integer_value(json_object_get(j, "total")), sees ? 1 : 0, "caller %d: %s", who,
                         probes[i]);
            cr_expect_eq(facet_of(j, "tag", "secret-merger"), sees ? 1 : 0, "caller %d: %s", who, probes[i]);
            json_decref(j);
        }
        j = call("GET", &A, "/v1/products?q=deal", token, NULL, &st);   /* the stub's title */
        cr_expect_eq(json_integer_value(json_object_get(j, "total")), 1, "caller %d: found by its title", who);
        cr_expect_eq(json_is_true(json_object_get(json_array_get(json_object_get(j, "products"), 0), "stub")),
                     !sees, "caller %d: a stub exactly when the facets hide it", who);
        json_decref(j);
    }
    cr_expect_eq(h_metric(A.url, "trib_token_refused_total{reason=\"out_of_scope\"}"), refused,
                 "a listing refused nothing");
    free(pread);
    free(scoped);
}

/* GET n's path with exactly token (NULL: none): the body (malloc'd) and *status. */
static char *get_text(h_node_t *n, const char *path, const char *token, long *status)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", n->url, path);
    h_resp_t r;
    cr_assert_eq(h_http_token("GET", url, NULL, NULL, 0, token, &r), 0, "GET %s", url);
    *status = r.status;
    return r.body;   /* h_resp_free frees only the body */
}

/* The read itself (issue 11 item 4 end to end): with node/auth.c merged, the owner checks the
 * forwarded token of a routed read with grants_check_read, projects with project_ndjson and audits;
 * a read through growth is then allowed with the grant and carries only its fields, refused
 * without one, and refused again within seconds of the revocation. Until the records route
 * enforces classification the test is skipped, saying so. Each routed read is audited on the owner. */
Test(flow, read_through_relay_projected_to_grant_fields, .fini = h_cleanup_all, .timeout = 180)
{
    cr_assert_eq(h_node_start(&A, "payments", FAST, NULL), 0, "payments did not start");
    publish_settled(&A);
    char *padmin = issue(&A, "admin@payments", TOKEN_KIND_ADMIN, "payments/*", 3600000);
    long st = 0;
    json_t *j = call("POST", &A, "/v1/products/payments/settled/records", padmin,
                     "{\"txn_id\":\"t1\",\"amount_minor\":100,\"currency\":\"EUR\"}\n"
                     "{\"txn_id\":\"t2\",\"amount_minor\":250,\"currency\":\"SEK\"}\n", &st);
    cr_assert_eq(st, 201, "append: %ld %s", st, jstr(j, "detail"));
    json_decref(j);
    free(get_text(&A, "/v1/products/payments/settled/records", NULL, &st));
    if (st == 200) {
        free(padmin);
        cr_skip_test("records of a confidential product are served without a token: classification is not "
                     "enforced on this build (node/auth.c not merged); grants_check_read, the projection and "
                     "the audit are covered by index/* and project/*");
    }
    cr_assert_eq(st, 401, "confidential read without a token: %ld", st);

    cr_assert_eq(h_node_start(&B, "growth", "--seed", A.peer, FAST, NULL), 0, "growth did not start");
    growth_sees_settled();
    char *alice = issue(&B, "alice@growth", TOKEN_KIND_READ, NULL, 3600000);
    char *bob = issue(&B, "bob@growth", TOKEN_KIND_READ, NULL, 3600000);
    j = call("POST", &B, "/v1/access/requests", alice,
             "{\"product\":\"payments/settled\",\"purpose\":\"churn\",\"fields\":[\"txn_id\",\"amount_minor\"]}",
             &st);
    cr_assert_eq(st, 201, "%s", jstr(j, "detail"));
    char rid[64], gid[64], path[256];
    snprintf(rid, sizeof rid, "%s", jstr(j, "id"));
    json_decref(j);
    seen_t pend = {&A, "/v1/access/requests?state=requested", padmin, rid, "requested"};
    cr_assert(h_wait(sees, &pend, 20000), "payments never listed %s", rid);
    const char *rpath = "/v1/products/payments/settled/records";
    cr_assert(h_wait_status(B.url, rpath, alice, 403, 20000), "alice reads through growth before any grant");
    snprintf(path, sizeof path, "/v1/access/requests/%s/grant", rid);
    j = call("POST", &A, path, padmin, "{\"days\":1}", &st);
    cr_assert_eq(st, 200, "%s", jstr(j, "detail"));
    snprintf(gid, sizeof gid, "%s", jstr(j, "id"));
    json_decref(j);

    /* through growth: allowed now, only txn_id and amount_minor (the owner projects) */
    char *body = NULL;
    cr_assert(h_wait_status(B.url, rpath, alice, 200, 10000), "alice cannot read through growth with her grant");
    body = get_text(&B, rpath, alice, &st);
    cr_assert_eq(st, 200, "alice's read through growth: %ld %s", st, body);
    int lines = 0, projected = 1;
    for (char *line = strtok(body, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        json_t *r = json_loads(line, 0, NULL);
        cr_assert(json_is_object(r), "not a record: %s", line);
        cr_assert(json_object_get(r, "txn_id") && json_object_get(r, "amount_minor"), "%s", line);
        projected &= json_object_size(r) == 2 && !json_object_get(r, "currency");
        cr_assert(projected, "not projected to the grant's fields: %s", line);
        json_decref(r);
    }
    cr_assert_eq(lines, 2);
    free(body);
    /* ... over the data link (gossip/linkserve.c): the owner's check, projection and audit on that path */
    cr_assert_gt(h_metric(B.url, "trib_read_routed_total{path=\"link\"}"), 0, "growth did not read over the link");
    cr_assert_eq(h_metric(B.url, "trib_read_routed_total{path=\"relay\"}"), 0, "growth fell back to the relay");
    /* on the owner itself, the same token: the same two fields */
    body = get_text(&A, rpath, alice, &st);
    cr_assert_eq(st, 200, "alice's read on payments: %ld %s", st, body);
    cr_assert(!strstr(body, "currency") && strstr(body, "amount_minor"), "not projected on the owner: %s", body);
    free(body);
    body = get_text(&B, rpath, bob, &st);
    cr_assert_eq(st, 403, "bob has no grant: %ld %s", st, body);
    cr_assert(strstr(body, "grant_required"), "%s", body);
    free(body);

    /* revoked: refused through growth within seconds */
    snprintf(path, sizeof path, "/v1/access/grants/%s/revoke", gid);
    j = call("POST", &A, path, padmin, "{}", &st);
    cr_assert_eq(st, 200, "%s", jstr(j, "detail"));
    json_decref(j);
    cr_assert(h_wait_status(B.url, rpath, alice, 403, 10000), "alice still reads through growth 10 s after the revocation");

    /* the owner's audit (grants2): each routed read decided on payments, with the entry node (growth),
     * the subject, the grant and the records served; the refusals with their code */
    json_t *bs = h_get_json(B.url, "/v1/status", NULL);
    const char *bid = jstr(bs, "node_id");
    cr_assert_eq(strlen(bid), 64, "growth's node id: %s", bid);
    json_t *au = call("GET", &A, "/v1/audit?limit=200", padmin, NULL, &st);
    cr_assert_eq(st, 200);
    int allowed = 0, refused = 0, revoked_seen = 0;
    size_t i;
    json_t *e;
    json_array_foreach(au, i, e)
    {
        if (strcmp(jstr(e, "action"), "read") != 0 || strcmp(jstr(e, "entry_node"), bid) != 0)
            continue;
        cr_assert_str_eq(jstr(e, "product"), "payments/settled");
        if (json_is_true(json_object_get(e, "allowed"))) {
            allowed++;
            cr_assert_eq(json_integer_value(json_object_get(e, "records")), 2, "records served: %s",
                         json_dumps(e, 0));
            cr_assert_str_eq(jstr(e, "grant"), gid);
            cr_assert_str_eq(jstr(e, "subject"), "alice@growth");
            cr_assert_eq(strlen(jstr(e, "token_id")), 32, "the token's id (never the token): %s", jstr(e, "token_id"));
        } else {
            refused++;
            cr_assert_str_eq(jstr(e, "reason"), "grant_required", "%s", json_dumps(e, 0));
            cr_assert_eq(json_integer_value(json_object_get(e, "records")), 0);
            revoked_seen += !strcmp(jstr(e, "subject"), "alice@growth");
        }
    }
    cr_assert_geq(allowed, 1, "allowed reads through growth audited on payments: %d", allowed);
    cr_assert_geq(revoked_seen, 1, "alice's refusals (before the grant, after the revocation) not audited");
    cr_assert_geq(refused, 2, "refused reads audited: %d", refused);
    json_decref(au);
    json_decref(bs);
    free(alice);
    free(bob);
    free(padmin);
}

/* ---------------------------------------------------------------- shared live feeds (grants2) */

/* A grant on payments/settled for the holder of tok (a growth token) to fields (a JSON array),
 * requested through growth and decided on payments; its grant id into gid. */
static void grant_fields(const char *tok, const char *padmin, const char *fields, char gid[64])
{
    char body[256], path[256], rid[64];
    long st = 0;
    snprintf(body, sizeof body, "{\"product\":\"payments/settled\",\"purpose\":\"feed\",\"fields\":%s}", fields);
    json_t *j = call("POST", &B, "/v1/access/requests", tok, body, &st);
    cr_assert_eq(st, 201, "%s", jstr(j, "detail"));
    snprintf(rid, sizeof rid, "%s", jstr(j, "id"));
    json_decref(j);
    seen_t pend = {&A, "/v1/access/requests?state=requested", padmin, rid, "requested"};
    cr_assert(h_wait(sees, &pend, 20000), "payments never listed %s", rid);
    snprintf(path, sizeof path, "/v1/access/requests/%s/grant", rid);
    j = call("POST", &A, path, padmin, "{\"days\":1}", &st);
    cr_assert_eq(st, 200, "%s", jstr(j, "detail"));
    snprintf(gid, 64, "%s", jstr(j, "id"));
    json_decref(j);
}

typedef struct {
    pid_t pid;
    char out[64], err[64];
} fsub_t;

/* `trib subscribe payments/settled --from 1` through node via with token, its output in files. */
static void fsub_start(fsub_t *s, h_node_t *via, const char *token)
{
    snprintf(s->out, sizeof s->out, "/tmp/trib-fsub-out-XXXXXX");
    snprintf(s->err, sizeof s->err, "/tmp/trib-fsub-err-XXXXXX");
    int fd = mkstemp(s->out), efd = mkstemp(s->err);
    cr_assert(fd >= 0 && efd >= 0);
    s->pid = fork();
    cr_assert_geq(s->pid, 0);
    if (s->pid == 0) {
        dup2(fd, 1);
        dup2(efd, 2);
        setenv("TRIB_NODE", via->url, 1);
        setenv("TRIB_TOKEN", token, 1);
        execl(h_trib_path(), h_trib_path(), "subscribe", "payments/settled", "--from", "1", (char *)NULL);
        _exit(127);
    }
    close(fd);
    close(efd);
}

static void fsub_stop(fsub_t *s)
{
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    unlink(s->out);
    unlink(s->err);
}

typedef struct {
    fsub_t *s;
    int want;
} fsub_lines_t;

static int fsub_has(void *ctx)
{
    fsub_lines_t *c = ctx;
    char *b = h_read_file(c->s->out, NULL);
    int n = 0;
    for (char *p = b; p && *p; p++)
        n += *p == '\n';
    free(b);
    return n >= c->want;
}

/* Every line of s's output is a record with exactly the fields in want (NULL-ended); n lines. */
static void fsub_projected(fsub_t *s, const char *who, const char *const *want, int n)
{
    char *b = h_read_file(s->out, NULL);
    cr_assert_not_null(b);
    int lines = 0;
    for (char *line = strtok(b, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        json_t *r = json_loads(line, 0, NULL);
        cr_assert(json_is_object(r), "%s: not a record: %s", who, line);
        size_t k = 0;
        for (; want[k]; k++)
            cr_assert(json_object_get(r, want[k]), "%s: record without its field %s: %s", who, want[k], line);
        cr_assert_eq(json_object_size(r), k, "%s received fields beyond its grant: %s", who, line);
        json_decref(r);
    }
    cr_assert_eq(lines, n, "%s: %d records, want %d", who, lines, n);
    free(b);
}

/* Asks for fields of payments/settled as alice through growth and has payments grant it for days. */
static void ask_and_grant(const char *alice, const char *padmin, const char *fields, int days)
{
    long st = 0;
    char body[256], path[256], rid[64];
    snprintf(body, sizeof body, "{\"product\":\"payments/settled\",\"purpose\":\"churn, %d days\",\"fields\":%s}",
             days, fields);
    json_t *j = call("POST", &B, "/v1/access/requests", alice, body, &st);
    cr_assert_eq(st, 201, "request %s: %ld %s", fields, st, jstr(j, "detail"));
    snprintf(rid, sizeof rid, "%s", jstr(j, "id"));
    json_decref(j);
    seen_t pend = {&A, "/v1/access/requests?state=requested", padmin, rid, "requested"};
    cr_assert(h_wait(sees, &pend, 20000), "payments never listed %s", rid);
    snprintf(path, sizeof path, "/v1/access/requests/%s/grant", rid);
    snprintf(body, sizeof body, "{\"days\":%d}", days);
    j = call("POST", &A, path, padmin, body, &st);
    cr_assert_eq(st, 200, "grant %s: %ld %s", fields, st, jstr(j, "detail"));
    json_decref(j);
}

/* 1 when body holds records, each with exactly the members want. */
static int records_have_only(const char *body, const char *const *want, size_t nwant)
{
    char *copy = strdup(body), *save = NULL;
    int lines = 0, ok = 1;
    for (char *line = strtok_r(copy, "\n", &save); line && ok; line = strtok_r(NULL, "\n", &save), lines++) {
        json_t *r = json_loads(line, 0, NULL);
        ok = json_is_object(r) && json_object_size(r) == nwant;
        for (size_t k = 0; ok && k < nwant; k++)
            ok = json_object_get(r, want[k]) != NULL;
        json_decref(r);
    }
    free(copy);
    return ok && lines > 0;
}

/* 1 when payments' audit holds an allowed read that names two grants and the union of their fields. */
static int audit_names_both_grants(void *padmin)
{
    long st = 0;
    json_t *au = call("GET", &A, "/v1/audit?limit=50", padmin, NULL, &st), *e;
    int both = 0;
    size_t i;
    if (st == 200)
        json_array_foreach(au, i, e) {   /* the audit is a JSON array of events */
            const char *g = jstr(e, "grant");
            both |= json_is_true(json_object_get(e, "allowed")) && g && strchr(g, ',') &&
                    strstr(jstr(e, "reason"), "union");
        }
    json_decref(au);
    return both;
}

/* Two grants of different fields to one reader both count, on the owner and through a relay: the
 * records carry the union (a new-user walkthrough found only the grant expiring last counted). */
Test(flow, two_grants_of_different_fields_give_their_union, .fini = h_cleanup_all, .timeout = 180)
{
    payments_and_growth();
    char *padmin = issue(&A, "admin@payments", TOKEN_KIND_ADMIN, "payments/*", 3600000);
    char *alice = issue(&B, "alice@growth", TOKEN_KIND_READ, NULL, 3600000);
    long st = 0;
    json_t *j = call("POST", &A, "/v1/products/payments/settled/records", padmin,
                     "{\"txn_id\":\"t1\",\"amount_minor\":100,\"currency\":\"EUR\"}\n", &st);
    cr_assert_eq(st, 201, "append: %ld %s", st, jstr(j, "detail"));
    json_decref(j);
    ask_and_grant(alice, padmin, "[\"txn_id\",\"amount_minor\"]", 30);
    ask_and_grant(alice, padmin, "[\"currency\"]", 10);
    static const char *const all3[] = {"txn_id", "amount_minor", "currency"};
    const char *rpath = "/v1/products/payments/settled/records";
    char *body = NULL;
    int ok = 0;
    for (long t0 = h_now_ms(); !ok && h_now_ms() - t0 < 20000;) {   /* growth learns the second grant */
        free(body);
        body = get_text(&B, rpath, alice, &st);
        ok = st == 200 && records_have_only(body, all3, 3);
    }
    cr_assert(ok, "through growth, not the union of both grants' fields: %ld %s", st, body);
    free(body);
    body = get_text(&A, rpath, alice, &st);
    cr_assert(st == 200 && records_have_only(body, all3, 3), "on payments, not the union: %ld %s", st, body);
    free(body);
    /* the owner's audit names both grants the read relied on (a read is audited once served,
     * which may come after its client has the last byte: waited for) */
    if (!h_wait(audit_names_both_grants, padmin, 20000)) {
        json_t *au = call("GET", &A, "/v1/audit?limit=50", padmin, NULL, &st);
        cr_assert_fail("no allowed read in the audit names both grants: %ld %s", st, json_dumps(au, 0));
    }
    free(alice);
    free(padmin);
}

/* Issue 11 "the owner decides" / field allow-lists: two growth consumers with grants on different
 * fields stream the same confidential product through growth (one relay, so the feed would be
 * shared): each only ever receives its own fields, in the catch-up and in the live part. */
Test(flow, shared_feed_projects_each_subscriber_to_its_own_grant, .fini = h_cleanup_all, .timeout = 180)
{
    cr_assert_eq(h_node_start(&A, "payments", FAST, NULL), 0, "payments did not start");
    publish_settled(&A);
    char *padmin = issue(&A, "admin@payments", TOKEN_KIND_ADMIN, "payments/*", 3600000);
    long st = 0;
    json_t *j = call("POST", &A, "/v1/products/payments/settled/records", padmin,
                     "{\"txn_id\":\"t1\",\"amount_minor\":100,\"currency\":\"EUR\"}\n", &st);
    cr_assert_eq(st, 201, "append: %ld %s", st, jstr(j, "detail"));
    json_decref(j);
    cr_assert_eq(h_node_start(&B, "growth", "--seed", A.peer, FAST, NULL), 0, "growth did not start");
    growth_sees_settled();
    char *alice = issue(&B, "alice@growth", TOKEN_KIND_READ, NULL, 3600000);
    char *carol = issue(&B, "carol@growth", TOKEN_KIND_READ, NULL, 3600000);
    char ga[64], gc[64];
    grant_fields(alice, padmin, "[\"txn_id\",\"amount_minor\"]", ga);
    grant_fields(carol, padmin, "[\"txn_id\",\"currency\"]", gc);
    const char *rpath = "/v1/products/payments/settled/records";
    cr_assert(h_wait_status(B.url, rpath, alice, 200, 10000) && h_wait_status(B.url, rpath, carol, 200, 10000),
              "the grants do not hold");

    /* alice first: the relay's feed opens with her token; carol joins after her */
    fsub_t sa, sc;
    fsub_start(&sa, &B, alice);
    fsub_lines_t la = {&sa, 1}, lc = {&sc, 1};
    cr_assert(h_wait(fsub_has, &la, 20000), "alice's stream did not start");
    fsub_start(&sc, &B, carol);
    cr_assert(h_wait(fsub_has, &lc, 20000), "carol's stream did not start");
    /* records appended now reach both through the relay's live side */
    for (int i = 2; i <= 4; i++) {
        char rec[128];
        snprintf(rec, sizeof rec, "{\"txn_id\":\"t%d\",\"amount_minor\":%d,\"currency\":\"SEK\"}\n", i, i * 100);
        j = call("POST", &A, "/v1/products/payments/settled/records", padmin, rec, &st);
        cr_assert_eq(st, 201, "append: %ld %s", st, jstr(j, "detail"));
        json_decref(j);
    }
    la.want = lc.want = 4;
    cr_assert(h_wait(fsub_has, &la, 20000), "alice's stream stopped");
    cr_assert(h_wait(fsub_has, &lc, 20000), "carol's stream stopped");
    static const char *const FA[] = {"txn_id", "amount_minor", NULL}, *const FC[] = {"txn_id", "currency", NULL};
    fsub_projected(&sa, "alice", FA, 4);
    fsub_projected(&sc, "carol", FC, 4);
    fsub_stop(&sa);
    fsub_stop(&sc);
    free(alice);
    free(carol);
    free(padmin);
}

/* ---------------------------------------------------------------- chartered: grants end with the certificate */

/* A token of domain signed by the identity in data dir dir (a node started with --data). */
static char *issue_in(const char *dir, const char *domain, const char *subject, token_kind_t kind, int64_t ttl_ms)
{
    char path[400], err[256];
    identity_t id;
    snprintf(path, sizeof path, "%s/identity.key", dir);
    cr_assert_eq(identity_load_file(path, &id, err, sizeof err), 0, "%s", err);
    int64_t now = wall_ms();
    token_spec_t sp = {.subject = subject, .kind = kind, .issued_ms = now, .expires_ms = now + ttl_ms};
    char *t = NULL;
    cr_assert_eq(token_issue(&id, domain, &sp, &t, err, sizeof err), 0, "%s", err);
    identity_wipe(&id);
    return t;
}

/* A federation of two roots in work (a mkdtemp'd dir): payments' node A (data dir da, its identity
 * into *ia, certified until about a_until_ms: the certificate's end into *a_until_ms) and growth's B
 * (db, certified for 90 days) seeded with A, both started chartered. */
static void chartered_pair(const char *work, char da[128], char db[128], identity_t *ia, int64_t *a_until_ms)
{
    char err[512], path[256], ca_path[160], cb_path[160];
    identity_t r1, r2, ib;
    make_identity(&r1, 41);
    make_identity(&r2, 42);
    charter_t ch;
    memset(&ch, 0, sizeof ch);
    randombytes_buf(ch.fed_id, FED_ID_LEN);
    memcpy(ch.keys[0].key, r1.pk, ID_PK_LEN);
    memcpy(ch.keys[1].key, r2.pk, ID_PK_LEN);
    ch.keys[0].role = ch.keys[1].role = CHARTER_ROLE_ROOT;
    ch.nkeys = 2;
    ch.threshold = 2;
    ch.issued_ms = wall_ms();
    const identity_t *roots[] = {&r1, &r2};
    cr_assert_eq(charter_sign(NULL, &ch, roots, 2, err, sizeof err), 0, "%s", err);
    snprintf(path, sizeof path, "%s/charter.json", work);
    json_t *cj = charter_to_json(&ch);
    cr_assert_eq(trust_file_write(path, cj, err, sizeof err), 0, "%s", err);
    json_decref(cj);
    int created = 0;
    snprintf(da, 128, "%s/a", work);
    snprintf(db, 128, "%s/b", work);
    cr_assert_eq(mkdir(da, 0700), 0);
    cr_assert_eq(mkdir(db, 0700), 0);
    cr_assert_eq(identity_load_or_create(da, ia, &created, err, sizeof err), 0, "%s", err);
    cr_assert_eq(identity_load_or_create(db, &ib, &created, err, sizeof err), 0, "%s", err);
    int64_t t = wall_ms();
    cert_t ca, cb;
    cr_assert_eq(cert_issue(&ch, "payments", ia->pk, t - DAY_MS, *a_until_ms, 0, roots, 2, &ca, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(cert_issue(&ch, "growth", ib.pk, t - DAY_MS, t + 90 * DAY_MS, 0, roots, 2, &cb, err, sizeof err), 0,
                 "%s", err);
    *a_until_ms = ca.not_after_ms;
    snprintf(ca_path, sizeof ca_path, "%s/a.cert", work);
    snprintf(cb_path, sizeof cb_path, "%s/b.cert", work);
    json_t *j = cert_to_json(&ca);
    cr_assert_eq(trust_file_write(ca_path, j, err, sizeof err), 0, "%s", err);
    json_decref(j);
    j = cert_to_json(&cb);
    cr_assert_eq(trust_file_write(cb_path, j, err, sizeof err), 0, "%s", err);
    json_decref(j);
    cert_free(&ca);
    cert_free(&cb);
    charter_free(&ch);

    cr_assert_eq(h_node_start(&A, "payments", "--data", da, "--charter", path, "--cert", ca_path, FAST, NULL), 0,
                 "chartered payments did not start; see %s", A.log);
    char seed[200];
    snprintf(seed, sizeof seed, "%s@%s", ia->hex, A.peer);
    cr_assert_eq(h_node_start(&B, "growth", "--data", db, "--charter", path, "--cert", cb_path, "--seed", seed, FAST,
                              NULL), 0, "chartered growth did not start; see %s", B.log);
}

/* Issue 11: "a grant never outlives its token's issuer's certificate (chartered)". payments' node
 * certificate ends in 2 days; a 30-day grant it decides expires with the certificate, and the reply
 * says so; the grant's entry carries that expiry to growth. */
Test(flow, chartered_grant_is_capped_at_the_owners_certificate, .fini = h_cleanup_all, .timeout = 180)
{
    char work[64] = "/tmp/trib-access-ch-XXXXXX", path[256], da[128], db[128];
    cr_assert_not_null(mkdtemp(work));
    identity_t ia;
    int64_t a_until = wall_ms() + 2 * DAY_MS;
    chartered_pair(work, da, db, &ia, &a_until);
    publish_settled(&A);
    growth_sees_settled();
    char *padmin = issue_in(da, "payments", "admin@payments", TOKEN_KIND_ADMIN, 3600000);
    char *alice = issue_in(db, "growth", "alice@growth", TOKEN_KIND_READ, 3600000);
    long st = 0;
    json_t *j = call("POST", &B, "/v1/access/requests", alice,
             "{\"product\":\"payments/settled\",\"purpose\":\"churn\",\"fields\":[\"txn_id\"],\"days\":30}", &st);
    cr_assert_eq(st, 201, "%s", jstr(j, "detail"));
    char rid[64], gid[64];
    snprintf(rid, sizeof rid, "%s", jstr(j, "id"));
    json_decref(j);
    seen_t pend = {&A, "/v1/access/requests?state=requested", padmin, rid, "requested"};
    cr_assert(h_wait(sees, &pend, 20000), "payments never listed %s", rid);
    char gpath[128];
    snprintf(gpath, sizeof gpath, "/v1/access/requests/%s/grant", rid);
    j = call("POST", &A, gpath, padmin, "{\"days\":30}", &st);
    cr_assert_eq(st, 200, "%s", jstr(j, "detail"));
    snprintf(gid, sizeof gid, "%s", jstr(j, "id"));
    cr_assert_eq(json_integer_value(json_object_get(j, "expires_ms")), a_until,
                 "a 30-day grant outlives payments' certificate (ends %lld): expires %lld", (long long)a_until,
                 (long long)json_integer_value(json_object_get(j, "expires_ms")));
    cr_assert(json_is_true(json_object_get(j, "capped_by_certificate")), "the reply does not say it was capped");
    cr_assert(strstr(jstr(j, "detail"), "certificate"), "the reply does not say why: %s", jstr(j, "detail"));
    /* and which certificate: its domain and serial (the one payments' status shows) */
    json_t *sa = h_get_json(A.url, "/v1/status", NULL);
    char which[80];
    snprintf(which, sizeof which, "certificate for domain 'payments' (serial %s)",
             json_string_value(json_object_get(sa, "cert_serial")) ?: "?");
    json_decref(sa);
    cr_expect(strstr(jstr(j, "detail"), which), "the reply does not name the certificate (%s): %s", which,
              jstr(j, "detail"));
    json_decref(j);
    /* growth's replica of the grant carries the same expiry */
    seen_t mine = {&B, "/v1/access/mine", alice, gid, "granted"};
    cr_assert(h_wait(sees, &mine, 20000), "growth never learned grant %s", gid);
    j = call("GET", &B, "/v1/access/mine", alice, NULL, &st);
    size_t i;
    json_t *o;
    int found = 0;
    json_array_foreach(j, i, o)
    {
        if (!strcmp(jstr(o, "id"), gid)) {
            found = 1;
            cr_assert_eq(json_integer_value(json_object_get(o, "expires_ms")), a_until);
        }
    }
    cr_assert(found);
    json_decref(j);
    free(padmin);
    free(alice);
    h_cleanup_all();
    snprintf(path, sizeof path, "rm -rf '%s'", work);
    cr_assert_eq(system(path), 0);
}

/* A wrong-domain access decision names the node to ask (docs/http-api.md). Open mode learns which
 * node holds a domain from its first catalog entry; chartered, the federation's certificates say
 * so from the start: growth's admin listing requests on payments' node is sent to growth's node
 * before anything of growth's reached payments. Before, the hint was missing until then. */
Test(flow, chartered_wrong_domain_names_the_certified_node_before_any_entry, .fini = h_cleanup_all, .timeout = 120)
{
    char work[64] = "/tmp/trib-access-cw-XXXXXX", path[256], da[128], db[128];
    cr_assert_not_null(mkdtemp(work));
    identity_t ia;
    int64_t a_until = wall_ms() + 30 * DAY_MS;
    chartered_pair(work, da, db, &ia, &a_until);
    cr_assert(h_wait_member(A.url, "growth", "alive", NULL, 20000), "payments never saw growth's node alive");
    char *gadmin = issue_in(db, "growth", "admin@growth", TOKEN_KIND_ADMIN, 3600000);
    json_t *st = h_get_json(A.url, "/v1/status", NULL);
    cr_assert(!json_object_get(json_object_get(st, "digest"), "growth"), "payments holds growth's log already");
    json_decref(st);
    /* growth's certificate reaches payments with its hello: poll until the refusal names the node */
    char hint[300];
    snprintf(hint, sizeof hint, "trib --node %s)", B.url);
    named_t nm = {&A, "/v1/access/requests?state=requested", gadmin, hint, {0}};
    int named = h_wait(names, &nm, 15000);
    cr_assert(named, "growth's listing on payments' node does not name growth's node: %s", nm.last);
    refused_naming(&A, "GET", "/v1/access/requests?state=requested", gadmin, NULL, hint);
    st = h_get_json(A.url, "/v1/status", NULL);
    cr_assert(!json_object_get(json_object_get(st, "digest"), "growth"), "named only once growth's log came");
    json_decref(st);
    free(gadmin);
    h_cleanup_all();
    snprintf(path, sizeof path, "rm -rf '%s'", work);
    cr_assert_eq(system(path), 0);
}

/* grants_active on a chartered owner: no grant is active once the node's certificate ended, even
 * one signed with a later expiry (before the cap existed, or by a node whose certificate was renewed
 * shorter); its reported expiry is never beyond the certificate. */
Test(index, grants_end_with_the_owners_certificate, .init = ix_setup, .fini = ix_teardown)
{
    size_t len;
    int64_t now = wall_ms();
    free(sign_change(cgro, TRIB__ACCESS_KIND__ACCESS_REQUEST, REQ1, NULL, "alice@growth", 0, &len));
    free(sign_change(cpay, TRIB__ACCESS_KIND__ACCESS_GRANT, REQ1, GR1, "alice@growth", now + 30 * DAY_MS, &len));
    node_t n;
    memset(&n, 0, sizeof n);
    n.st = stores[0];
    n.cert_not_after_ms = now + DAY_MS;
    grant_info_t gi;
    cr_assert_eq(grants_active(&n, "alice@growth", "payments/settled", now, &gi), 1);
    cr_assert_eq(gi.expires_ms, now + DAY_MS, "the grant is reported beyond the certificate");
    cr_assert_eq(grants_active(&n, "alice@growth", "payments/settled", now + DAY_MS, &gi), 0,
                 "a grant is active after its issuer's certificate ended");
    n.cert_not_after_ms = 0; /* open mode: the grant's own expiry */
    cr_assert_eq(grants_active(&n, "alice@growth", "payments/settled", now + DAY_MS, &gi), 1);
}

/* An audit log that cannot be appended to (here a directory in its place): every failure is
 * counted, but logged at most once per 10 s on the monotonic clock, those held back counted into
 * the next line. Before, a limiter of its own wrote a line for every second of the wall clock. */
Test(index, audit_append_failures_are_logged_on_log_limit, .init = ix_setup, .fini = ix_teardown)
{
    node_t n;
    memset(&n, 0, sizeof n);
    snprintf(n.cfg.data, sizeof n.cfg.data, "%s", dirs[0]);
    char path[600], logp[600];
    snprintf(path, sizeof path, "%s/audit.log", dirs[0]);
    cr_assert_eq(mkdir(path, 0700), 0, "%s", path);
    snprintf(logp, sizeof logp, "%s/stderr.txt", dirs[0]);
    fflush(stderr);
    int saved = dup(2), fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    audit_event_t e = {.time_ms = wall_ms(), .subject = "alice@growth", .product_id = "payments/settled",
                       .action = "read", .reason = "grant_required"};
    uint64_t w0, f0, w1, f1;
    audit_counts(&w0, &f0);
    /* failures across a change of the wall clock's second (the old limiter's interval), bounded */
    int64_t start = wall_ms() / 1000, deadline = wall_ms() + 3000;
    uint64_t tries = 0;
    while (wall_ms() / 1000 == start && wall_ms() < deadline) {
        audit_record(&n, &e);
        tries++;
        struct timespec ts = {0, 20 * 1000000L};   /* pacing, not synchronisation */
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < 3; i++, tries++)   /* and in the next second */
        audit_record(&n, &e);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    audit_counts(&w1, &f1);
    cr_assert_eq(f1 - f0, tries, "every failed append is counted: %llu of %llu", (unsigned long long)(f1 - f0),
                 (unsigned long long)tries);
    cr_assert_eq(w1, w0);
    size_t len;
    char *log = h_read_file(logp, &len);
    int lines = 0;
    for (const char *p = log; p && (p = strstr(p, "audit: cannot append to ")); p++)
        lines++;
    cr_assert_eq(lines, 1, "%llu failures over two wall-clock seconds logged %d lines:\n%s",
                 (unsigned long long)tries, lines, log ? log : "");
    free(log);
}

/* A new read after the reader's grant ended says how, in a live stream's words (grants_ended):
 * expired at T; ended at T with the owner's certificate (its domain and serial); revoked. Before,
 * all but a revocation read "alice@growth holds no active grant for it". A reader who never held
 * one is still told she holds none. */
Test(index, a_read_after_a_grant_ended_says_how, .init = ix_setup, .fini = ix_teardown)
{
    size_t len;
    int64_t now = wall_ms();
    free(sign_change(cgro, TRIB__ACCESS_KIND__ACCESS_REQUEST, REQ1, NULL, "alice@growth", 0, &len));
    free(sign_change(cpay, TRIB__ACCESS_KIND__ACCESS_GRANT, REQ1, GR1, "alice@growth", now + 300, &len));
    node_t n;
    memset(&n, 0, sizeof n);
    n.st = stores[0];
    snprintf(n.cfg.data, sizeof n.cfg.data, "%s", dirs[0]);
    snprintf(n.cfg.domain, sizeof n.cfg.domain, "payments");
    n.id = pay;
    const char *P = "payments/settled";
    grants_read_t d;
    char when[32], want[300];
    /* expired: when (polled past its expiry on the wall clock the node judges by) */
    cr_assert(h_wait(past_300_ms, &now, 5000), "the wall clock did not pass the grant's expiry");
    cr_assert_eq(grants_check_read(&n, "confidential", "alice@growth", "growth", "tid-a", P, NULL, 0, &d), 0);
    trust_time_text(now + 300, when);
    snprintf(want, sizeof want, "grant %s of alice@growth on %s expired at %s; trib access request %s to ask again",
             GR1, P, when, P);
    cr_assert(d.status == 403 && !strcmp(d.code, "grant_required") && strstr(d.detail, want), "%s", d.detail);
    /* bob never held one: he holds none */
    cr_assert_eq(grants_check_read(&n, "confidential", "bob@growth", "growth", "tid-b", P, NULL, 0, &d), 0);
    cr_assert(strstr(d.detail, "bob@growth holds no active grant"), "%s", d.detail);
    /* a grant of 30 days, ended with the owner's certificate: which, and when */
    free(sign_change(cgro, TRIB__ACCESS_KIND__ACCESS_REQUEST, REQ2, NULL, "alice@growth", 0, &len));
    free(sign_change(cpay, TRIB__ACCESS_KIND__ACCESS_GRANT, REQ2, GR2, "alice@growth", now + 30 * DAY_MS, &len));
    n.cert_not_after_ms = now + 100;
    n.cert_serial = 0x1a2b3c4d5e6f7081ULL;
    cr_assert_eq(grants_check_read(&n, "confidential", "alice@growth", "growth", "tid-a", P, NULL, 0, &d), 0);
    trust_time_text(now + 100, when);
    snprintf(want, sizeof want, "grant %s of alice@growth on %s ended at %s with this node's certificate for "
             "domain 'payments' (serial 1a2b3c4d5e6f7081), which expired then", GR2, P, when);
    cr_assert(d.status == 403 && strstr(d.detail, want), "%s", d.detail);
    /* revoked: by whom and when, as before */
    n.cert_not_after_ms = 0;
    free(sign_change(cpay, TRIB__ACCESS_KIND__ACCESS_REVOKE, REQ2, GR2, "alice@growth", 0, &len));
    cr_assert_eq(grants_check_read(&n, "confidential", "alice@growth", "growth", "tid-a", P, NULL, 0, &d), 0);
    snprintf(want, sizeof want, "your grant %s for %s was revoked at ", GR2, P);
    cr_assert(strstr(d.detail, want), "%s", d.detail);
}

/* A live read on a grant that stops holding ends with the words of its cause (node/stream.c puts
 * them in its last line, as {"error": kind, "detail": ...}): expired and when; ended with this
 * node's certificate, which, and when; revoked; the grants unreadable. Before, every cause but a
 * revocation read "grant G of S on P has expired". */
Test(index, a_grant_that_stops_holding_says_why, .init = ix_setup, .fini = ix_teardown)
{
    size_t len;
    int64_t now = wall_ms();
    free(sign_change(cgro, TRIB__ACCESS_KIND__ACCESS_REQUEST, REQ1, NULL, "alice@growth", 0, &len));
    free(sign_change(cpay, TRIB__ACCESS_KIND__ACCESS_GRANT, REQ1, GR1, "alice@growth", now + 30 * DAY_MS, &len));
    node_t n;
    memset(&n, 0, sizeof n);
    n.st = stores[0];
    snprintf(n.cfg.domain, sizeof n.cfg.domain, "payments");
    grant_info_t held;
    char out[512], when[32], want[256];
    const char *P = "payments/settled";
    cr_assert_eq(grants_active(&n, "alice@growth", P, now, &held), 1);
    cr_assert_null(grants_ended(&n, "alice@growth", P, &held, now, out, sizeof out), "an active grant ended");
    /* expired: when */
    const char *kind = grants_ended(&n, "alice@growth", P, &held, now + 30 * DAY_MS, out, sizeof out);
    trust_time_text(now + 30 * DAY_MS, when);
    snprintf(want, sizeof want, "grant %s of alice@growth on %s expired at %s", GR1, P, when);
    cr_assert(kind && !strcmp(kind, "grant_required") && strstr(out, want), "%s: %s", kind, out);
    cr_assert_null(strstr(out, "has expired"));
    /* ended with this node's certificate: which (its domain and serial, for the operator to renew),
     * and when */
    n.cert_not_after_ms = now + DAY_MS;
    n.cert_serial = 0x1a2b3c4d5e6f7081ULL;
    cr_assert_eq(grants_active(&n, "alice@growth", P, now, &held), 1);
    kind = grants_ended(&n, "alice@growth", P, &held, now + DAY_MS, out, sizeof out);
    trust_time_text(now + DAY_MS, when);
    snprintf(want, sizeof want, "grant %s of alice@growth on %s ended at %s with this node's certificate for "
             "domain 'payments' (serial 1a2b3c4d5e6f7081), which expired then", GR1, P, when);
    cr_assert(kind && !strcmp(kind, "grant_required") && strstr(out, want), "%s: %s", kind, out);
    /* a grant that expires before the certificate ends expired, whenever it is asked */
    held.expires_ms = now + 3600000;
    kind = grants_ended(&n, "alice@growth", P, &held, now + 2 * DAY_MS, out, sizeof out);
    trust_time_text(now + 3600000, when);
    snprintf(want, sizeof want, "on %s expired at %s", P, when);
    cr_assert(kind && strstr(out, want), "%s: %s", kind, out);
    /* the grants cannot be read: a storage error, not a grant's end */
    n.st = NULL;
    kind = grants_ended(&n, "alice@growth", P, &held, now, out, sizeof out);
    cr_assert(kind && !strcmp(kind, "storage") && strstr(out, "reading the grants of alice@growth on payments/settled "
              "failed on this node"), "%s: %s", kind, out);
    /* revoked: grants_revoked's words */
    n.st = stores[0];
    n.cert_not_after_ms = 0;
    free(sign_change(cpay, TRIB__ACCESS_KIND__ACCESS_REVOKE, REQ1, GR1, "alice@growth", 0, &len));
    kind = grants_ended(&n, "alice@growth", P, &held, now, out, sizeof out);
    snprintf(want, sizeof want, "your grant %s for %s was revoked at ", GR1, P);
    cr_assert(kind && !strcmp(kind, "grant_required") && strstr(out, want), "%s: %s", kind, out);
}

/* ================================================================ hostile peers */

/* The SignedEntry bytes of the grant entry with id gid in domain's log of the store in dir (the
 * agent stopped). */
static uint8_t *grant_entry_bytes(const char *dir, const char *domain, const char *gid, size_t *len)
{
    char err[256];
    store_t *st = store_open(dir, NULL, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    store_head_t head;
    cr_assert_eq(store_catalog_head(st, domain, &head), 0);
    uint8_t *found = NULL;
    for (uint64_t seq = 1; seq <= head.seq && !found; seq++) {
        uint8_t *b = NULL;
        size_t l = 0;
        cr_assert_eq(store_catalog_get(st, domain, seq, &b, &l), 0);
        entry_t v;
        cr_assert_eq(entry_verify(b, l, &v, err, sizeof err), 0, "%s", err);
        const Trib__CatalogEntry *e = v.entry;
        if (e->change_case == TRIB__CATALOG_ENTRY__CHANGE_ACCESS && e->access->kind == TRIB__ACCESS_KIND__ACCESS_GRANT &&
            !strcmp(e->access->grant_id, gid)) {
            found = b;
            *len = l;
        } else {
            free(b);
        }
        entry_free(&v);
    }
    store_close(&st);
    cr_assert_not_null(found, "no grant entry %s in %s's log", gid, domain);
    return found;
}

static void send_entries(peer_client_t *c, const identity_t *id, uint8_t *const *entries, const size_t *lens,
                         size_t n)
{
    ProtobufCBinaryData items[4];
    for (size_t i = 0; i < n; i++)
        items[i] = (ProtobufCBinaryData){lens[i], entries[i]};
    Trib__CatalogEntries msg = TRIB__CATALOG_ENTRIES__INIT;
    msg.n_entries = n;
    msg.entries = items;
    msg.final = 1;
    size_t blen = trib__catalog_entries__get_packed_size(&msg);
    uint8_t *body = malloc(blen);
    trib__catalog_entries__pack(&msg, body);
    peer_envelope_t env;
    peer_envelope_init(&env, id, "127.0.0.1:9", TRIB__MSG_TYPE__MSG_CATALOG_ENTRIES, body, blen);
    cr_assert_eq(peer_client_send_envelope(c, &env), 0);
    free(body);
}

typedef struct {
    h_node_t *n;
    const char *series;
    double want;
} metric_at_least_t;

static int metric_at_least(void *ctx)
{
    metric_at_least_t *m = ctx;
    return h_metric(m->n->url, m->series) >= m->want;
}

typedef struct {
    h_node_t *n;
    const char *series;
    double v;
} metric_read_t;

static int metric_read(void *ctx)
{
    metric_read_t *m = ctx;
    return (m->v = h_metric(m->n->url, m->series)) >= 0;
}

/* series at n now: h_metric answers -1 when /metrics does not (a loaded node), and a baseline of
 * -1 would let every "rose by one" wait below pass before anything was sent. */
static double metric_now(h_node_t *n, const char *series)
{
    metric_read_t m = {n, series, -1};
    cr_assert(h_wait(metric_read, &m, 15000), "%s/metrics did not answer for %s", n->url, series);
    return m.v;
}

static int log_says_ignored(void *ctx)
{
    char *log = h_read_file(((h_node_t *)ctx)->log, NULL);
    int ok = log && strstr(log, "ignored by the access index");
    free(log);
    return ok;
}

/* A peer replays the owner's revoked grant entry to growth's node, and signs a grant for payments'
 * product into a log of its own: the first is a duplicate, the second is kept in its log (a signed
 * log never stalls) but grants nothing; growth still shows the grant revoked and serves. */
Test(flow, replayed_and_foreign_grant_entries_from_a_peer, .fini = h_cleanup_all, .timeout = 180)
{
    payments_and_growth();
    char *alice = issue(&B, "alice@growth", TOKEN_KIND_READ, NULL, 3600000);
    char *padmin = issue(&A, "admin@payments", TOKEN_KIND_ADMIN, "payments/*", 3600000);
    long st = 0;
    json_t *j = call("POST", &B, "/v1/access/requests", alice,
                     "{\"product\":\"payments/settled\",\"purpose\":\"p\",\"fields\":[\"txn_id\"]}", &st);
    cr_assert_eq(st, 201, "%s", jstr(j, "detail"));
    char rid[64], gid[64], path[256];
    snprintf(rid, sizeof rid, "%s", jstr(j, "id"));
    json_decref(j);
    seen_t pend = {&A, "/v1/access/requests?state=requested", padmin, rid, "requested"};
    cr_assert(h_wait(sees, &pend, 20000), "payments never listed %s", rid);
    snprintf(path, sizeof path, "/v1/access/requests/%s/grant", rid);
    j = call("POST", &A, path, padmin, "{\"days\":2}", &st);
    cr_assert_eq(st, 200, "%s", jstr(j, "detail"));
    snprintf(gid, sizeof gid, "%s", jstr(j, "id"));
    json_decref(j);
    snprintf(path, sizeof path, "/v1/access/grants/%s/revoke", gid);
    j = call("POST", &A, path, padmin, "{}", &st);
    cr_assert_eq(st, 200, "%s", jstr(j, "detail"));
    json_decref(j);
    seen_t revoked = {&B, "/v1/access/mine", alice, gid, "revoked"};
    cr_assert(h_wait(sees, &revoked, 20000), "growth never saw %s revoked", gid);

    cr_assert_eq(h_node_stop(&A, SIGTERM), 0);
    size_t glen = 0;
    uint8_t *grant = grant_entry_bytes(A.dir, "payments", gid, &glen);

    /* mallory's own log, seq 1: a grant of payments/settled to alice, with a fresh grant id */
    identity_t mallory;
    peer_identity(&mallory);
    Trib__AccessChange a = TRIB__ACCESS_CHANGE__INIT;
    a.kind = TRIB__ACCESS_KIND__ACCESS_GRANT;
    a.request_id = "req-00000000000000ff";
    a.grant_id = "grant-00000000000000ff";
    a.product_id = "payments/settled";
    a.subject = "alice@growth";
    a.expires_ms = wall_ms() + DAY_MS;
    Trib__CatalogEntry ce = TRIB__CATALOG_ENTRY__INIT;
    ce.domain = "mallory";
    ce.seq = 1;
    ce.time_ms = wall_ms();
    ce.change_case = TRIB__CATALOG_ENTRY__CHANGE_ACCESS;
    ce.access = &a;
    uint8_t *forged = NULL;
    size_t flen = 0;
    cr_assert_eq(entry_sign(&mallory, &ce, &forged, &flen), 0);

    double dup0 = metric_now(&B, "trib_catalog_entries_total{result=\"duplicate\"}");
    double ign0 = metric_now(&B, "trib_access_entries_ignored_total");
    double acc0 = metric_now(&B, "trib_catalog_entries_total{result=\"accepted\"}");
    void *z = zmq_ctx_new();
    peer_client_t *pc = peer_client_new(z, B.peer, &mallory, NULL);
    cr_assert_not_null(pc);
    uint8_t *entries[] = {grant, forged};
    size_t lens[] = {glen, flen};
    send_entries(pc, &mallory, entries, lens, 2);
    metric_at_least_t m1 = {&B, "trib_catalog_entries_total{result=\"duplicate\"}", dup0 + 1};
    metric_at_least_t m2 = {&B, "trib_access_entries_ignored_total", ign0 + 1};
    cr_assert(h_wait(metric_at_least, &m1, 15000), "the replayed grant was not counted a duplicate");
    cr_assert(h_wait(metric_at_least, &m2, 15000), "the foreign grant was not counted ignored by the index");
    /* counted accepted when its commit is done, which can come after the index counted it ignored */
    metric_at_least_t m3 = {&B, "trib_catalog_entries_total{result=\"accepted\"}", acc0 + 1};
    cr_assert(h_wait(metric_at_least, &m3, 15000), "mallory's signed log entry is kept (a signed log never stalls)");
    peer_client_destroy(&pc);
    zmq_ctx_term(z);
    cr_assert(h_wait(log_says_ignored, &B, 10000), "growth did not log the ignored access entry");

    cr_assert(sees(&revoked), "the replay revived grant %s", gid);
    seen_t foreign = {&B, "/v1/access/mine", alice, "grant-00000000000000ff", NULL};
    cr_assert(!sees(&foreign), "a grant signed outside the product's domain is listed");
    json_t *s = h_get_json(B.url, "/v1/products/payments/settled", NULL);
    cr_assert_not_null(s, "growth stopped serving the catalog");
    json_decref(s);
    free(grant);
    free(forged);
    free(alice);
    free(padmin);
}

/* ---------------------------------------------------------------- restricted beyond the stub (issue 11) */

/* Words of the restricted product below that only a caller who may see it in full may learn: field
 * names, description, tags. */
static const char *const SECRETS[] = {"acme_board_vote", "bid_eur", "Takeover", "secret-merger", NULL};

static const char *secret_in(const char *text)
{
    for (size_t i = 0; text && SECRETS[i]; i++)
        if (strstr(text, SECRETS[i]))
            return SECRETS[i];
    return NULL;
}

/* method path at n with token (NULL: none) and body: the status, and the raw body (malloc'd). */
static char *raw_call(const char *method, h_node_t *n, const char *path, const char *token, const char *body,
                      long *status)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", n->url, path);
    h_resp_t r;
    cr_assert_eq(h_http_token(method, url, body ? "application/json" : NULL, body, body ? strlen(body) : 0, token, &r),
                 0, "%s %s", method, url);
    *status = r.status;
    return r.body ? r.body : strdup("");
}

#define DEAL "{\"name\":\"deal-room\",\"domain\":\"payments\",\"version\":\"%s\",\"status\":\"active\"," \
             "\"classification\":\"restricted\",\"title\":\"Deal room\",\"compatibility\":\"NONE\","         \
             "\"description\":{\"purpose\":\"Takeover of Acme\"},\"tags\":[\"secret-merger\"],"            \
             "\"owners\":{\"business\":\"nobody\",\"technical\":\"t@x.com\"},\"schema\":[%s]}"

typedef struct {
    h_node_t *n;
    const char *path, *token, *want;   /* want: a string the 200 body holds (NULL: any) */
} ok_wait_t;

static int answers_200(void *ctx)
{
    ok_wait_t *w = ctx;
    long st = 0;
    char *b = raw_call("GET", w->n, w->path, w->token, NULL, &st);
    int ok = st == 200 && (!w->want || strstr(b, w->want));
    free(b);
    return ok;
}

static int compliance_lists_deal_room(void *ctx)
{
    h_node_t *n = ctx;
    long st = 0;
    char *b = raw_call("GET", n, "/v1/compliance", A.token, NULL, &st);   /* the product's own domain */
    int ok = st == 200 && strstr(b, "payments/deal-room") != NULL;
    free(b);
    return ok;
}

/* A restricted product is its stub to a caller who may not see it in full, on every route and
 * every node: its history, a diff of two versions and a publish's dry run are 404 not_found
 * (counted as refused reads, as a read of its records); its events in the change feed and its
 * compliance are stubs or absent (a listing: nothing counted); an access request's fields are not
 * checked against its schema. Callers without sight: none, a token of another domain, a token of
 * its domain scoped to another product. With sight: its domain's admin and read tokens, and a
 * reader of another domain holding a grant. The product's field names, description and tags never
 * reach the former; the latter get the full answers. Fails on the code before this commit: the
 * diff named acme_board_vote to anyone. */
Test(flow, governance_routes_show_a_restricted_product_only_to_who_may_see_it, .fini = h_cleanup_all,
     .timeout = 180)
{
    char pol[512], body[2048];
    h_repo_path("examples/policies/company.yaml", pol, sizeof pol);
    cr_assert_eq(h_node_start(&A, "payments", FAST, NULL), 0, "payments did not start");
    cr_assert_eq(h_node_start(&B, "growth", "--seed", A.peer, "--policy", pol, FAST, NULL), 0, "growth did not start");
    publish_settled(&A);
    long st = 0;
    snprintf(body, sizeof body, DEAL, "1.0.0", "{\"name\":\"bid_eur\",\"logicalType\":\"integer\"}");
    json_t *j = call("PUT", &A, "/v1/products/payments/deal-room", A.token, body, &st);
    cr_assert(st == 201, "publish 1.0.0: %ld %s", st, jstr(j, "detail"));
    json_decref(j);
    snprintf(body, sizeof body, DEAL, "2.0.0",
             "{\"name\":\"bid_eur\",\"logicalType\":\"integer\"},{\"name\":\"acme_board_vote\",\"logicalType\":\"string\"}");
    j = call("PUT", &A, "/v1/products/payments/deal-room", A.token, body, &st);
    cr_assert(st == 200 || st == 201, "publish 2.0.0: %ld %s", st, jstr(j, "detail"));
    json_decref(j);
    ok_wait_t both = {&B, "/v1/products/payments/deal-room/history", A.token, "\"2.0.0\""};
    cr_assert(h_wait(answers_200, &both, 20000), "growth never held deal-room 2.0.0");
    cr_assert(h_wait(compliance_lists_deal_room, &B, 20000), "growth never judged deal-room under its policy set");

    char *gtok = issue(&B, "gail@growth", TOKEN_KIND_READ, NULL, 3600000);      /* another domain */
    char *scoped = issue(&A, "sam@payments", TOKEN_KIND_READ, "payments/settled", 3600000);
    char *pread = issue(&A, "maria@payments", TOKEN_KIND_READ, NULL, 3600000);
    char *granted = issue(&B, "gina@growth", TOKEN_KIND_READ, NULL, 3600000);

    /* an access request's fields tell nothing of the schema to a requester who may not see it */
    const char *probe[] = {"{\"product\":\"payments/deal-room\",\"purpose\":\"probe\",\"fields\":[\"acme_board_vote\"]}",
                           "{\"product\":\"payments/deal-room\",\"purpose\":\"probe\",\"fields\":[\"no_such_field\"]}"};
    for (int i = 0; i < 2; i++) {
        j = call("POST", &B, "/v1/access/requests", gtok, probe[i], &st);
        cr_expect_eq(st, 201, "request %d: %ld %s (a known and an unknown name answer alike)", i, st, jstr(j, "detail"));
        json_decref(j);
    }
    /* gina asks for the whole product and payments grants it */
    j = call("POST", &B, "/v1/access/requests", granted, "{\"product\":\"payments/deal-room\",\"purpose\":\"audit\"}",
             &st);
    cr_assert_eq(st, 201, "%s", jstr(j, "detail"));
    char rid[64], path[256];
    snprintf(rid, sizeof rid, "%s", jstr(j, "id"));
    json_decref(j);
    seen_t pend = {&A, "/v1/access/requests?state=requested", A.token, rid, "requested"};
    cr_assert(h_wait(sees, &pend, 20000), "payments never listed %s", rid);
    snprintf(path, sizeof path, "/v1/access/requests/%s/grant", rid);
    j = call("POST", &A, path, A.token, "{\"days\":1}", &st);
    cr_assert_eq(st, 200, "%s", jstr(j, "detail"));
    json_decref(j);
    ok_wait_t gw = {&B, "/v1/products/payments/deal-room/history", granted, NULL};
    cr_assert(h_wait(answers_200, &gw, 20000), "growth never let the grant's holder see deal-room's history");

    const char *check = "{\"name\":\"deal-room\",\"domain\":\"payments\",\"version\":\"3.0.0\",\"status\":\"active\","
                        "\"classification\":\"restricted\",\"title\":\"Deal room\",\"compatibility\":\"NONE\","
                        "\"owners\":{\"business\":\"nobody\",\"technical\":\"t@x.com\"},"
                        "\"schema\":[{\"name\":\"x\",\"logicalType\":\"string\"}]}";
    const char *blind[] = {NULL, gtok, scoped}, *full[] = {A.token, pread, granted};
    const char *reason[] = {"token_required", "grant_required", "out_of_scope"};
    h_node_t *nodes[] = {&A, &B};
    for (int who = 0; who < 6; who++) {
        int sees_it = who >= 3;
        const char *token = sees_it ? full[who - 3] : blind[who];
        for (int ni = 0; ni < 2; ni++) {
            h_node_t *n = nodes[ni];
            struct {
                const char *method, *path, *body;
            } routes[] = {
                {"GET", "/v1/products/payments/deal-room/diff?from=1.0.0&to=2.0.0", NULL},
                {"GET", "/v1/products/payments/deal-room/history", NULL},
                {"POST", "/v1/products/payments/deal-room/check", check},   /* the owner's node only */
            };
            for (size_t r = 0; r < sizeof routes / sizeof *routes; r++) {
                if (r == 2 && n != &A)
                    continue;
                char series[128];
                snprintf(series, sizeof series, "trib_token_refused_total{reason=\"%s\"}", reason[who % 3]);
                double before = sees_it ? 0 : h_metric(n->url, series);
                char *b = raw_call(routes[r].method, n, routes[r].path, token, routes[r].body, &st);
                if (sees_it) {
                    cr_expect_eq(st, 200, "caller %d at %s: %s %ld %s", who, n->domain, routes[r].path, st, b);
                    const char *want = r == 1 ? "\"2.0.0\"" : "acme_board_vote";   /* history: versions, counts */
                    cr_expect(strstr(b, want), "caller %d at %s: %s: %s", who, n->domain, routes[r].path, b);
                } else {
                    cr_expect_eq(st, 404, "caller %d at %s: %s %ld %s", who, n->domain, routes[r].path, st, b);
                    cr_expect(strstr(b, "\"not_found\""), "caller %d: %s", who, b);
                    cr_expect_null(secret_in(b), "caller %d at %s: %s names %s: %s", who, n->domain, routes[r].path,
                                   secret_in(b), b);
                    cr_expect_eq(h_metric(n->url, series), before + 1, "caller %d at %s: %s not counted in %s", who,
                                 n->domain, routes[r].path, series);
                }
                free(b);
            }
            /* a listing decides, refusing nothing: the feed and the compliance report */
            double refused = h_metric_sum(n->url, "trib_token_refused_total");
            char *b = raw_call("GET", n, "/v1/catalog/changes?live=0&product=payments/deal-room", token, NULL, &st);
            cr_expect_eq(st, 200, "caller %d at %s: feed %ld", who, n->domain, st);
            int lines = 0;
            for (char *line = b; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                json_t *ev = json_loadb(line, strcspn(line, "\n"), 0, NULL);
                cr_assert_not_null(ev, "feed line: %s", line);
                if (!json_object_get(ev, "product")) {   /* policy_changed: every product's, no stub */
                    json_decref(ev);
                    continue;
                }
                lines++;
                cr_expect_eq(json_is_true(json_object_get(ev, "stub")), !sees_it, "caller %d at %s: %s", who,
                             n->domain, line);
                const char *kind = json_string_value(json_object_get(ev, "event"));
                int grant = kind && !strcmp(kind, "grant_changed");
                cr_expect_eq(json_object_get(ev, "version") != NULL, sees_it && !grant, "caller %d at %s: %s", who,
                             n->domain, line);
                cr_expect_eq(json_object_get(ev, "action") != NULL, sees_it && grant, "caller %d at %s: %s", who,
                             n->domain, line);
                cr_expect_eq(json_object_get(ev, "change_class") != NULL, sees_it && json_object_get(ev, "previous"),
                             "caller %d at %s: %s", who, n->domain, line);
                json_decref(ev);
            }
            cr_expect_geq(lines, 2, "caller %d at %s: deal-room's events are in the feed: %s", who, n->domain, b);
            free(b);
            if (n == &B) {   /* the node with the policy set */
                b = raw_call("GET", n, "/v1/compliance", token, NULL, &st);
                cr_expect_eq(st, 200);
                cr_expect_eq(strstr(b, "payments/deal-room") != NULL, sees_it, "caller %d: compliance: %s", who, b);
                if (!sees_it)
                    cr_expect_null(secret_in(b), "caller %d: compliance names %s: %s", who, secret_in(b), b);
                else
                    cr_expect(strstr(b, "bid_eur") || strstr(b, "owners"), "caller %d: violations: %s", who, b);
                free(b);
            }
            cr_expect_eq(h_metric_sum(n->url, "trib_token_refused_total"), refused,
                         "caller %d at %s: a listing counted a refusal", who, n->domain);
            /* the manifest route: the stub, as before */
            b = raw_call("GET", n, "/v1/products/payments/deal-room", token, NULL, &st);
            cr_expect_eq(st, 200);
            cr_expect_eq(strstr(b, "\"stub\":true") != NULL, !sees_it, "caller %d at %s: %s", who, n->domain, b);
            if (!sees_it)
                cr_expect_null(secret_in(b), "caller %d at %s: the stub names %s", who, n->domain, secret_in(b));
            free(b);
        }
    }
    free(gtok);
    free(scoped);
    free(pread);
    free(granted);
}
