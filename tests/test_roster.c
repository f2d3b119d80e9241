/* tests/test_roster.c - the member list the loop shows (gossip/roster.h), on made-up lists: conflict
 * marking against the pairwise rule it replaced, on random lists (self inside or outside a domain
 * with twins, dead and left members); the hand-over drop on a trust store where keys continue
 * each other by a certificate's prev_serial, self among them. */
#include <criterion/criterion.h>

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/cert.h"
#include "gossip/charter.h"
#include "gossip/roster.h"
#include "gossip/trust.h"
#include "tests/fixtures.h"

#define DAY_MS 86400000LL

static void member(gossip_member_t *m, const char *domain, const uint8_t id[32], int state, int self)
{
    memset(m, 0, sizeof *m);
    memcpy(m->id, id, 32);
    snprintf(m->domain, sizeof m->domain, "%s", domain);
    m->state = state;
    m->self = self;
}

/* The rule as it was: every pair of live members of one domain with different keys. */
static void conflicts_pairwise(gossip_member_t *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (!strcmp(l[i].domain, l[j].domain) && memcmp(l[i].id, l[j].id, 32) &&
                l[i].state < TRIB__MEMBER_STATE__DEAD && l[j].state < TRIB__MEMBER_STATE__DEAD)
                l[i].conflict = l[j].conflict = 1;
}

Test(roster, conflicts_match_the_pairwise_rule_on_random_lists)
{
    static const char *const domains[] = {"a", "b", "c", "d", "e", "f"};
    unsigned seed = 12345;
    for (int round = 0; round < 500; round++) {
        size_t n = 1 + (size_t)(rand_r(&seed) % 40);
        gossip_member_t l[40], ref[40];
        for (size_t i = 0; i < n; i++) {
            uint8_t id[32] = {0};
            id[0] = (uint8_t)(rand_r(&seed) % 8);   /* small key space: equal keys happen too */
            id[1] = (uint8_t)i;
            if (rand_r(&seed) % 5 == 0)
                id[1] = 0;
            member(&l[i], domains[rand_r(&seed) % 6], id, rand_r(&seed) % 4, i == 0 && round % 2);
        }
        roster_sort(l, n);
        memcpy(ref, l, sizeof ref[0] * n);
        conflicts_pairwise(ref, n);
        size_t pairs = roster_mark_conflicts(l, n, NULL, NULL);
        size_t marked = 0;
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(l[i].conflict, ref[i].conflict, "round %d member %zu (domain %s, self %d, state %d)", round,
                         i, l[i].domain, l[i].self, l[i].state);
            marked += l[i].conflict;
        }
        cr_assert_eq(pairs > 0, marked > 0, "round %d: %zu pairs for %zu marked", round, pairs, marked);
    }
}

typedef struct {
    size_t calls;
    int self_first;
} pairs_t;

static void count_pair(void *ctx, size_t nth, const gossip_member_t *a, const gossip_member_t *b)
{
    pairs_t *p = ctx;
    cr_assert_eq(nth, ++p->calls);
    cr_assert(!b->self, "self is always a pair's first member");
    if (nth == 1)
        p->self_first = a->self;
}

Test(roster, a_conflict_with_self_is_reported_first)
{
    gossip_member_t l[4];
    uint8_t k1[32] = {1}, k2[32] = {2}, k3[32] = {3}, k4[32] = {4};
    member(&l[0], "pay", k3, 0, 0);
    member(&l[1], "pay", k1, 0, 0);
    member(&l[2], "zed", k2, 0, 1);
    member(&l[3], "zed", k4, 1, 0);
    roster_sort(l, 4);
    pairs_t p = {0};
    cr_assert_eq(roster_mark_conflicts(l, 4, count_pair, &p), 2);
    cr_assert_eq(p.calls, 2);
    cr_assert(p.self_first, "the pair with self does not come first");
}

static identity_t R1, R2;
static charter_t ch;

static void issue(trust_t *t, const char *domain, const identity_t *id, uint64_t prev, uint64_t *serial)
{
    const identity_t *roots[] = {&R1, &R2};
    char err[256];
    cert_t c;
    int64_t now = fx_now_ms();
    cr_assert_eq(cert_issue(&ch, domain, id->pk, now - DAY_MS, now + DAY_MS, prev, roots, 2, &c, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(trust_offer_cert(t, c.bytes, c.len, NULL, err, sizeof err), TRUST_OK, "%s", err);
    *serial = c.serial;
    cert_free(&c);
}

/* pay: k1 -> k2 -> k3 (each re-certified with the one before as prev_serial), self is k3; ops: k4
 * and an unrelated twin k5 (kept); web: k6 -> k7 and self is not there. */
Test(roster, keys_a_member_continues_are_dropped_and_the_rest_kept)
{
    cr_assert_geq(sodium_init(), 0);
    fx_identity(&R1), fx_identity(&R2);
    const identity_t *roots[] = {&R1, &R2};
    char err[256];
    memset(&ch, 0, sizeof ch);
    randombytes_buf(ch.fed_id, FED_ID_LEN);
    memcpy(ch.keys[0].key, R1.pk, 32), memcpy(ch.keys[1].key, R2.pk, 32);
    ch.keys[0].role = ch.keys[1].role = CHARTER_ROLE_ROOT;
    ch.nkeys = 2, ch.threshold = 2, ch.issued_ms = fx_now_ms();
    cr_assert_eq(charter_sign(NULL, &ch, roots, 2, err, sizeof err), 0, "%s", err);
    trust_t *t = trust_new(&ch);
    identity_t k[8];
    for (int i = 1; i < 8; i++)
        fx_identity(&k[i]);
    uint64_t s1, s2, s3, s4, s5, s6, s7;
    issue(t, "pay", &k[1], 0, &s1);
    issue(t, "pay", &k[2], s1, &s2);
    issue(t, "pay", &k[3], s2, &s3);
    issue(t, "ops", &k[4], 0, &s4);
    issue(t, "ops", &k[5], 0, &s5);
    issue(t, "web", &k[6], 0, &s6);
    issue(t, "web", &k[7], s6, &s7);
    gossip_member_t l[7];
    member(&l[0], "web", k[7].pk, 0, 0);
    member(&l[1], "pay", k[1].pk, 3, 0);
    member(&l[2], "ops", k[4].pk, 0, 0);
    member(&l[3], "pay", k[3].pk, 0, 1);
    member(&l[4], "web", k[6].pk, 0, 0);
    member(&l[5], "pay", k[2].pk, 0, 0);
    member(&l[6], "ops", k[5].pk, 0, 0);
    roster_sort(l, 7);
    size_t n = roster_drop_handed_over(t, l, 7);
    cr_assert_eq(n, 4, "%zu members kept, not 4", n);
    const uint8_t *want[] = {k[3].pk, NULL, NULL, NULL};
    cr_assert(l[0].self && !memcmp(l[0].id, want[0], 32), "self is not first");
    int ops = 0, web7 = 0;
    for (size_t i = 1; i < n; i++) {
        cr_assert(strcmp(l[i].domain, "pay"), "a past key of self's domain was kept");
        ops += !strcmp(l[i].domain, "ops");
        web7 += !memcmp(l[i].id, k[7].pk, 32);
    }
    cr_assert_eq(ops, 2, "twins of ops (no continuation) must both stay");
    cr_assert_eq(web7, 1, "web's newer key is not the one kept");
    cr_assert_eq(roster_drop_handed_over(NULL, l, n), n, "open mode drops nothing");
    trust_destroy(&t);
    charter_free(&ch);
}
