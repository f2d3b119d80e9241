/* bench/roster.c - what one member snapshot costs the gossip loop (gossip/roster.h): ordering the
 * members, dropping the keys a newer key of their domain continues (chartered: a walk back through
 * hand-overs and certificates per member) and marking conflicting claims (open mode), at MEMBERS
 * members and CERTS certificates held. The loop does this on every membership change.
 *
 * The federation: MEMBERS members, one key per member; every tenth domain rotated its key once, so
 * its old key (dead) and its new key are both members; every key holds a chain of renewals
 * (certificates naming the one before as prev_serial) up to CERTS in all, and every rotation a
 * hand-over. Also the per-member certificate lookup a snapshot makes (gossip__member_cert: CURVE
 * conversion and trust_admit_info), with the conversion done every time (as before) and
 * remembered across snapshots (gossip/curvememo.h, as now), and the conversion alone. Thread CPU time, median of ROUNDS; printed, never asserted.
 * Usage: bench/roster [MEMBERS [CERTS]] (default 1000 10000). */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/curvememo.h"
#include "gossip/edcurve.h"
#include "gossip/roster.h"
#include "gossip/trust.h"

#define ROUNDS 15
#define DAY_MS 86400000LL

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

static double median_us(uint64_t *ns, int n)
{
    qsort(ns, (size_t)n, sizeof *ns, cmp_u64);
    return (double)ns[n / 2] / 1e3;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench/roster: %s: %s\n", what, err);
    exit(1);
}

static void offer(trust_t *t, const cert_t *c)
{
    char err[256];
    if (trust_offer_cert(t, c->bytes, c->len, NULL, err, sizeof err) != TRUST_OK)
        die("offering a certificate", err);
}

int main(int argc, char **argv)
{
    long members = argc > 1 ? atol(argv[1]) : 1000, certs = argc > 2 ? atol(argv[2]) : 10000;
    if (sodium_init() < 0 || members < 10 || certs < members)
        return 1;
    char err[256];
    identity_t r1, r2;
    crypto_sign_keypair(r1.pk, r1.sk);
    crypto_sign_keypair(r2.pk, r2.sk);
    const identity_t *roots[] = {&r1, &r2};
    charter_t ch;
    memset(&ch, 0, sizeof ch);
    randombytes_buf(ch.fed_id, FED_ID_LEN);
    memcpy(ch.keys[0].key, r1.pk, ID_PK_LEN);
    memcpy(ch.keys[1].key, r2.pk, ID_PK_LEN);
    ch.keys[0].role = ch.keys[1].role = CHARTER_ROLE_ROOT;
    ch.nkeys = 2;
    ch.threshold = 2;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t t0 = (int64_t)now.tv_sec * 1000;
    ch.issued_ms = t0;
    if (charter_sign(NULL, &ch, roots, 2, err, sizeof err) != 0)
        die("charter", err);
    trust_t *t = trust_new(&ch);
    gossip_member_t *list = calloc((size_t)members, sizeof *list), *work = calloc((size_t)members, sizeof *work);
    if (!t || !list || !work)
        return 1;

    /* members: domain i/1 for most, pairs (old key, new key) for every tenth domain */
    long per_key = certs / members, issued = 0, ndom = 0;
    fprintf(stderr, "bench/roster: issuing %ld certificates for %ld members...\n", certs, members);
    for (long m = 0; m < members; ndom++) {
        int pair = ndom % 10 == 0 && m + 1 < members;
        uint64_t last = 0;
        for (int k = 0; k <= pair; k++, m++) {
            gossip_member_t *o = &list[m];
            identity_t id;
            crypto_sign_keypair(id.pk, id.sk);
            memcpy(o->id, id.pk, 32);
            snprintf(o->domain, sizeof o->domain, "domain-%05ld", ndom);
            snprintf(o->addr, sizeof o->addr, "10.0.%ld.%ld:7470", m / 250, m % 250);
            o->state = pair && k == 0 ? 3 /* dead: the rotated-away key */ : 0;
            o->self = m == 0;
            long n = per_key + (m < certs % members);
            for (long c = 0; c < n; c++, issued++) {
                cert_t ce;
                if (cert_issue(&ch, o->domain, id.pk, t0 - DAY_MS, t0 + 90 * DAY_MS, last, roots, 2, &ce, err,
                               sizeof err) != 0)
                    die("certificate", err);
                offer(t, &ce);
                last = ce.serial;   /* the next renewal (or the new key) continues this one */
                cert_free(&ce);
            }
        }
    }
    fprintf(stderr, "bench/roster: %zu certificates held, %ld domains\n", trust_cert_count(t), ndom);

    curvememo_t *memo = curvememo_new();
    if (!memo)
        return 1;
    uint64_t drop[ROUNDS], conf[ROUNDS], sort[ROUNDS], look[ROUNDS], memo_look[ROUNDS], conv[ROUNDS];
    size_t kept = 0, pairs = 0;
    for (int r = 0; r < ROUNDS; r++) {
        memcpy(work, list, (size_t)members * sizeof *work);
        uint64_t a = cpu_ns();
        roster_sort(work, (size_t)members);
        uint64_t b = cpu_ns();
        kept = roster_drop_handed_over(t, work, (size_t)members);
        uint64_t c = cpu_ns();
        memcpy(work, list, (size_t)members * sizeof *work);   /* open mode: both keys of a pair alive */
        for (long m = 0; m < members; m++)
            work[m].state = 0;
        roster_sort(work, (size_t)members);
        uint64_t c2 = cpu_ns();
        pairs = roster_mark_conflicts(work, (size_t)members, NULL, NULL);
        uint64_t d = cpu_ns();
        for (long m = 0; m < members; m++) {   /* what gossip__member_cert did per member */
            uint8_t curve[32];
            trust_info_t info;
            if (edcurve_pk(curve, list[m].id) == 0)
                trust_admit_info(t, curve, t0, &info, NULL, 0);
        }
        uint64_t e = cpu_ns();
        for (long m = 0; m < members; m++) {   /* what it does now: the memo is kept across snapshots */
            uint8_t curve[32];
            trust_info_t info;
            if (curvememo_pk(memo, curve, list[m].id) == 0)
                trust_admit_info(t, curve, t0, &info, NULL, 0);
        }
        uint64_t f = cpu_ns();
        for (long m = 0; m < members; m++) {
            uint8_t curve[32];
            edcurve_pk(curve, list[m].id);
        }
        uint64_t g = cpu_ns();
        sort[r] = b - a, drop[r] = c - b, conf[r] = d - c2, look[r] = e - d, memo_look[r] = f - e, conv[r] = g - f;
    }
    printf("== Member snapshot on the gossip loop: bench/roster %ld %ld ==\n", members, certs);
    printf("  %ld members (%ld domains, %zu kept: every tenth domain's rotated-away key dropped), %zu certificates\n",
           members, ndom, kept, trust_cert_count(t));
    printf("  roster_drop_handed_over: %.0f us per snapshot (median of %d)\n", median_us(drop, ROUNDS), ROUNDS);
    printf("  roster_mark_conflicts:   %.0f us (open mode, both keys of a pair alive: %zu conflicting pairs)\n", median_us(conf, ROUNDS), pairs);
    printf("  roster_sort:             %.0f us\n", median_us(sort, ROUNDS));
    uint64_t hits, misses;
    curvememo_counts(memo, &hits, &misses);
    printf("  certificate lookup of every member (gossip__member_cert): %.0f us converting every key "
           "(before), %.0f us with the conversions remembered (now; %" PRIu64 " conversions in %d rounds)\n",
           median_us(look, ROUNDS), median_us(memo_look, ROUNDS), misses, ROUNDS);
    printf("    of which the CURVE conversion of every key (edcurve_pk): %.0f us\n", median_us(conv, ROUNDS));
    curvememo_free(&memo);
    free(list);
    free(work);
    trust_destroy(&t);
    charter_free(&ch);
    return 0;
}
