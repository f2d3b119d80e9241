/* tests/test_ratelimit.c - token buckets for anonymous endpoints (node/ratelimit.c): a client's
 * key (IPv4 address, IPv6 /64, IPv4-mapped IPv6 as IPv4), the burst, the refill at the rate,
 * clients apart, many clients in a fixed table, the global bucket over all clients, and when to
 * retry (synthetic clock: no waiting). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/ratelimit.h"

/* 1 when a request of client at t is let through. */
static int take(ratelimit_t *r, const char *client, uint64_t t)
{
    return ratelimit_take(r, client, t, NULL) == RATELIMIT_OK;
}

Test(ratelimit, burst_then_rate_per_key)
{
    static ratelimit_t r = RATELIMIT_INIT(5.0, 30.0, 0, 0);
    uint64_t t = 1000;
    int ok = 0;
    for (int i = 0; i < 100; i++)
        ok += take(&r, "10.0.0.1", t);
    cr_expect_eq(ok, 30, "the burst: %d", ok);
    cr_expect(take(&r, "10.0.0.2", t), "another address has its own bucket");
    cr_expect_not(take(&r, "10.0.0.1", t + 100), "half a token after 100 ms");
    cr_expect(take(&r, "10.0.0.1", t + 200), "one token after 200 ms at 5/s");
    ok = 0;
    for (int i = 0; i < 100; i++)
        ok += take(&r, "10.0.0.1", t + 200 + 2000);
    cr_expect_eq(ok, 10, "2 s refill 10 tokens: %d", ok);
    ok = 0;
    for (int i = 0; i < 100; i++)
        ok += take(&r, "10.0.0.1", t + 3600 * 1000);
    cr_expect_eq(ok, 30, "a quiet hour refills the burst, no more: %d", ok);
}

Test(ratelimit, many_keys_stay_in_the_table)
{
    static ratelimit_t r = RATELIMIT_INIT(1.0, 2.0, 0, 0);
    char k[32];
    for (int i = 0; i < 20 * RATELIMIT_SLOTS; i++) {   /* every one new: a fresh bucket each */
        snprintf(k, sizeof k, "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
        cr_assert(take(&r, k, 1000 + (uint64_t)i), "key %s", k);
    }
    /* the last key used is held: its bucket goes on */
    cr_expect(take(&r, k, 1000 + 20 * RATELIMIT_SLOTS));
    cr_expect_not(take(&r, k, 1000 + 20 * RATELIMIT_SLOTS));
}

/* ---------------------------------------------------------------- the client's key */

Test(ratelimit, the_key_of_a_client_address)
{
    static const struct {
        const char *addr, *key;
    } cases[] = {
        {"10.0.0.1", "10.0.0.1"},
        {"192.0.2.255", "192.0.2.255"},
        {"2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},   /* an IPv6 address: its /64 */
        {"2001:db8:1:2::1", "2001:db8:1:2::/64"},
        {"2001:DB8:1:2:0:0:0:FFFF", "2001:db8:1:2::/64"},             /* any spelling: one key */
        {"2001:db8:1:3::1", "2001:db8:1:3::/64"},                     /* the next /64: another */
        {"2001:db8::1", "2001:db8::/64"},
        {"fe80::1%eth0", "fe80::/64"},                                 /* a zone is dropped */
        {"::1", "::/64"},
        {"::ffff:192.0.2.7", "192.0.2.7"},                             /* IPv4-mapped: the IPv4 address */
        {"::FFFF:192.0.2.7", "192.0.2.7"},
        {"::ffff:c000:207", "192.0.2.7"},                              /* the same, in hex */
        {"::ffff:1:192.0.2.7", "::/64"},                               /* not mapped: an IPv6 /64 */
        {"?", "?"},                                                    /* not an address: as it is */
        {"", ""},
        {"10.0.0.256", "10.0.0.256"},
        {"2001:db8::1::2", "2001:db8::1::2"},
    };
    char key[RATELIMIT_KEY];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        cr_expect_str_eq(ratelimit_key(cases[i].addr, key), cases[i].key, "the key of '%s'", cases[i].addr);
    cr_expect_str_eq(ratelimit_key(NULL, key), "");
    char longer[200];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    cr_expect_eq(strlen(ratelimit_key(longer, key)), RATELIMIT_KEY - 1, "cut to fit");
}

/* Client addresses are the peer's socket address as getnameinfo prints it, not bytes a client
 * chooses; still, the key of any string is a terminated string that fits, and the same each time. */
Test(ratelimit, the_key_of_random_text_is_bounded)
{
    static const char alphabet[] = "0123456789abcdefABCDEF:.%/fx ";
    srand(20261205);
    char in[120], key[RATELIMIT_KEY], again[RATELIMIT_KEY];
    for (int i = 0; i < 100000; i++) {
        size_t n = (size_t)rand() % sizeof in;
        for (size_t j = 0; j < n; j++)
            in[j] = alphabet[(size_t)rand() % (sizeof alphabet - 1)];
        in[n] = '\0';
        ratelimit_key(in, key);
        cr_assert_lt(strnlen(key, sizeof key), sizeof key, "'%s': no terminator", in);
        cr_assert_str_eq(ratelimit_key(in, again), key, "'%s': not the same key twice", in);
    }
}

Test(ratelimit, ipv6_clients_are_limited_per_64)
{
    static ratelimit_t r = RATELIMIT_INIT(5.0, 30.0, 0, 0);
    char a[64];
    int ok = 0;
    for (int i = 0; i < 100; i++) {      /* a fresh address of one /64 for every request */
        snprintf(a, sizeof a, "2001:db8:aa:bb:%x:%x::%x", i, i * 7, i + 1);
        ok += take(&r, a, 1000);
    }
    cr_expect_eq(ok, 30, "one /64, new addresses: %d passed, not the burst of 30", ok);
    uint64_t retry = 0;
    cr_expect_eq(ratelimit_take(&r, "2001:db8:aa:bb::99", 1000, &retry), RATELIMIT_CLIENT);
    cr_expect_eq(retry, 200, "a token comes in %llu ms, not 200 (5/s)", (unsigned long long)retry);
    cr_expect(take(&r, "2001:db8:aa:bc::1", 1000), "the next /64 has a bucket of its own");
    /* an IPv4 client seen through a dual-stack socket is the same client as seen over IPv4 */
    ok = 0;
    for (int i = 0; i < 20; i++)
        ok += take(&r, "192.0.2.1", 1000);
    for (int i = 0; i < 20; i++)
        ok += take(&r, "::ffff:192.0.2.1", 1000);
    cr_expect_eq(ok, 30, "192.0.2.1 and ::ffff:192.0.2.1: %d passed, not one burst of 30", ok);
}

/* ---------------------------------------------------------------- all clients together */

Test(ratelimit, the_global_bucket_bounds_many_clients)
{
    static ratelimit_t r = RATELIMIT_INIT(5.0, 30.0, 50.0, 200.0);
    char a[32];
    int ok = 0, all = 0, other = 0;
    uint64_t retry = 0;
    for (int i = 0; i < 1000; i++) {     /* 1000 clients, one request each, at once */
        snprintf(a, sizeof a, "10.1.%d.%d", i >> 8, i & 255);
        int rc = ratelimit_take(&r, a, 1000, &retry);
        ok += rc == RATELIMIT_OK;
        all += rc == RATELIMIT_ALL;
        other += rc != RATELIMIT_OK && rc != RATELIMIT_ALL;
    }
    cr_expect_eq(ok, 200, "%d of 1000 clients passed: the global burst is 200", ok);
    cr_expect_eq(all, 800);
    cr_expect_eq(other, 0);
    cr_expect_eq(retry, 20, "a global token comes in %llu ms, not 20 (50/s)", (unsigned long long)retry);
    /* a second later: the global rate, whoever asks */
    ok = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(a, sizeof a, "10.2.%d.%d", i >> 8, i & 255);
        ok += take(&r, a, 2000);
    }
    cr_expect_eq(ok, 50, "%d passed in the next second: the global rate is 50/s", ok);
}

Test(ratelimit, a_refusal_takes_no_token)
{
    static ratelimit_t r = RATELIMIT_INIT(0.001, 30.0, 50.0, 40.0);   /* a client's tokens do not come back */
    int ok = 0;
    for (int i = 0; i < 100; i++)        /* one client: its 30, and 70 refused by its own bucket */
        ok += take(&r, "10.0.0.1", 1000);
    cr_expect_eq(ok, 30);
    ok = 0;
    for (int i = 0; i < 100; i++)        /* the global bucket lost 30 to it, none to its refusals */
        ok += take(&r, "10.0.0.2", 1000);
    cr_expect_eq(ok, 10, "%d passed: 40 - 30 global tokens were left", ok);
    /* refused by the global bucket, a client keeps its own tokens */
    cr_expect_eq(ratelimit_take(&r, "10.0.0.3", 1000, NULL), RATELIMIT_ALL);
    ok = 0;
    for (int i = 0; i < 100; i++)        /* a second later the global bucket is full again (40) */
        ok += take(&r, "10.0.0.3", 2000);
    cr_expect_eq(ok, 30, "%d passed: its bucket lost a token to a refusal", ok);
}

/* An operator's request (ratelimit_take_own) skips the global bucket, not its own, and takes
 * nothing from the global one. */
Test(ratelimit, take_own_skips_only_the_global_bucket)
{
    static ratelimit_t r = RATELIMIT_INIT(0.001, 5.0, 0.001, 10.0);   /* nothing comes back */
    char a[32];
    int ok = 0;
    for (int i = 0; i < 20; i++) {
        snprintf(a, sizeof a, "10.3.0.%d", i);
        ok += take(&r, a, 1000);
    }
    cr_expect_eq(ok, 10, "%d passed: the global burst is 10", ok);
    cr_expect_eq(ratelimit_take(&r, "10.3.1.1", 1000, NULL), RATELIMIT_ALL);
    ok = 0;
    for (int i = 0; i < 10; i++)
        ok += ratelimit_take_own(&r, "10.3.1.1", 1000, NULL) == RATELIMIT_OK;
    cr_expect_eq(ok, 5, "%d passed: its own burst is 5", ok);
    uint64_t retry = 0;
    cr_expect_eq(ratelimit_take_own(&r, "10.3.1.1", 1000, &retry), RATELIMIT_CLIENT);
    cr_expect_gt(retry, 0);
    cr_expect_eq(ratelimit_take(&r, "10.3.1.2", 1000, NULL), RATELIMIT_ALL, "the global bucket refilled");
}
