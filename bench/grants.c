/* bench/grants.c - what grants add to a read of confidential data on the owner (issue 11 items 4, 5):
 * the grants_active lookup (one subject's grant among N others' in the access index) beside one
 * Ed25519 verify (what a token check costs per block), and projecting a page of records to a
 * grant's two fields beside copying the page. Thread CPU time, so other load on a shared machine
 * counts less; ratios are printed, never asserted. Usage: bench/grants [GRANTS] (default 10000). */
#include <inttypes.h>
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
#include "storage/project.h"

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sign(catalog_t *c, Trib__AccessKind kind, const char *req, const char *grant, const char *subject,
                 int64_t exp)
{
    Trib__AccessChange a = TRIB__ACCESS_CHANGE__INIT;
    char *fields[] = {"txn_id", "amount_minor"};
    a.kind = kind;
    a.request_id = (char *)req;
    a.grant_id = (char *)grant;
    a.product_id = "payments/settled";
    a.subject = (char *)subject;
    a.purpose = "bench";
    a.fields = fields;
    a.n_fields = 2;
    a.days = 30;
    a.expires_ms = exp;
    uint64_t seq;
    uint8_t *out = NULL;
    size_t len = 0;
    char err[256];
    if (catalog_publish_access(c, &a, &seq, &out, &len, err, sizeof err) != 0) {
        fprintf(stderr, "bench/grants: %s\n", err);
        exit(1);
    }
    free(out);
}

int main(int argc, char **argv)
{
    long ngrants = argc > 1 ? atol(argv[1]) : 10000;
    if (sodium_init() < 0 || ngrants < 1)
        return 1;
    log_set_level(LOG_WARN);
    char dir[] = "/tmp/trib-bench-grants-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char err[256];
    store_opts_t so = {.nosync = 1};
    store_t *st = store_open(dir, &so, err, sizeof err);
    if (!st) {
        fprintf(stderr, "bench/grants: %s\n", err);
        return 1;
    }
    identity_t pay, gro;
    uint8_t seed[32];
    memset(seed, 1, sizeof seed);
    crypto_sign_seed_keypair(pay.pk, pay.sk, seed);
    memset(seed, 2, sizeof seed);
    crypto_sign_seed_keypair(gro.pk, gro.sk, seed);
    catalog_t *cp = catalog_new(st, &pay, "payments"), *cg = catalog_new(st, &gro, "growth");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t exp = (int64_t)now.tv_sec * 1000 + 86400000LL;
    for (long i = 0; i < ngrants; i++) {
        char req[32], grant[32], subject[64];
        snprintf(req, sizeof req, "req-%016lx", (unsigned long)i);
        snprintf(grant, sizeof grant, "grant-%016lx", (unsigned long)i);
        snprintf(subject, sizeof subject, "user%ld@growth", i);
        sign(cg, TRIB__ACCESS_KIND__ACCESS_REQUEST, req, "", subject, 0);
        sign(cp, TRIB__ACCESS_KIND__ACCESS_GRANT, req, grant, subject, exp);
    }
    node_t n;
    memset(&n, 0, sizeof n);
    n.st = st;

    /* grants_active against Ed25519 verify */
    enum { LOOKUPS = 20000 };
    grant_info_t gi;
    long found = 0;
    uint64_t t0 = cpu_ns();
    for (int i = 0; i < LOOKUPS; i++) {
        char subject[64];
        snprintf(subject, sizeof subject, "user%ld@growth", (long)(i % ngrants));
        found += grants_active(&n, subject, "payments/settled", exp - 1000, &gi) == 1;
    }
    uint64_t lookup = cpu_ns() - t0;
    uint8_t msg[200], sig[64];
    memset(msg, 7, sizeof msg);
    crypto_sign_detached(sig, NULL, msg, sizeof msg, pay.sk);
    long ok = 0;
    t0 = cpu_ns();
    for (int i = 0; i < LOOKUPS; i++)
        ok += crypto_sign_verify_detached(sig, msg, sizeof msg, pay.pk) == 0;
    uint64_t verify = cpu_ns() - t0;

    /* projecting a page of records (8 fields, keep 2) against copying it */
    enum { RECORDS = 4096 };
    const char *rec = "{\"txn_id\":\"t-000123\",\"amount_minor\":12345,\"currency\":\"EUR\",\"merchant\":\"m-77\","
                      "\"card\":\"4111********1111\",\"country\":\"SE\",\"settled_at\":\"2026-12-05T06:00:00Z\","
                      "\"note\":\"nothing\"}\n";
    size_t rl = strlen(rec), plen = rl * RECORDS;
    char *page = malloc(plen), *work = malloc(plen), *copy = malloc(plen);
    for (int i = 0; i < RECORDS; i++)
        memcpy(page + (size_t)i * rl, rec, rl);
    const char *const two[] = {"txn_id", "amount_minor", NULL};
    enum { ROUNDS = 50 };
    size_t out = 0;
    uint64_t proj = 0, cp_ns = 0;
    for (int r = 0; r < ROUNDS; r++) {
        memcpy(work, page, plen);
        t0 = cpu_ns();
        out = project_ndjson(work, plen, two);
        proj += cpu_ns() - t0;
        t0 = cpu_ns();
        memcpy(copy, page, plen);
        cp_ns += cpu_ns() - t0;
    }
    printf("== Grants (issue 11 items 4, 5): bench/grants ==\n");
    printf("  grants_active, 1 grant among %ld in the access index: %.1f us per lookup (%ld/%d found)\n", ngrants,
           lookup / 1e3 / LOOKUPS, found, LOOKUPS);
    printf("  Ed25519 verify of 200 bytes: %.1f us (%ld ok); a lookup costs %.2fx a verify\n", verify / 1e3 / LOOKUPS,
           ok, (double)lookup / (double)verify);
    printf("  projecting a page of %d records (%zu bytes, 8 fields -> 2, %zu bytes out): %.2f ms; %.1fx a copy "
           "of the page, %.4fx an Ed25519 verify per record\n",
           RECORDS, plen, out, proj / 1e6 / ROUNDS, (double)proj / (double)(cp_ns ? cp_ns : 1),
           ((double)proj / ROUNDS / RECORDS) / ((double)verify / LOOKUPS));
    free(page);
    free(work);
    free(copy);
    catalog_destroy(&cp);
    catalog_destroy(&cg);
    store_close(&st);
    nftw(dir, bench_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return found == LOOKUPS ? 0 : 1;
}
