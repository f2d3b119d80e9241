/* tests/test_ratelimit.c - token buckets by client address (node/ratelimit.c): the burst, the
 * refill at the rate, keys apart, and many keys in a fixed table (synthetic clock: no waiting). */
#include <criterion/criterion.h>

#include <stdio.h>

#include "node/ratelimit.h"

Test(ratelimit, burst_then_rate_per_key)
{
    static ratelimit_t r = RATELIMIT_INIT(5.0, 30.0);
    uint64_t t = 1000;
    int ok = 0;
    for (int i = 0; i < 100; i++)
        ok += ratelimit_take(&r, "10.0.0.1", t);
    cr_expect_eq(ok, 30, "the burst: %d", ok);
    cr_expect(ratelimit_take(&r, "10.0.0.2", t), "another address has its own bucket");
    cr_expect_not(ratelimit_take(&r, "10.0.0.1", t + 100), "half a token after 100 ms");
    cr_expect(ratelimit_take(&r, "10.0.0.1", t + 200), "one token after 200 ms at 5/s");
    ok = 0;
    for (int i = 0; i < 100; i++)
        ok += ratelimit_take(&r, "10.0.0.1", t + 200 + 2000);
    cr_expect_eq(ok, 10, "2 s refill 10 tokens: %d", ok);
    ok = 0;
    for (int i = 0; i < 100; i++)
        ok += ratelimit_take(&r, "10.0.0.1", t + 3600 * 1000);
    cr_expect_eq(ok, 30, "a quiet hour refills the burst, no more: %d", ok);
}

Test(ratelimit, many_keys_stay_in_the_table)
{
    static ratelimit_t r = RATELIMIT_INIT(1.0, 2.0);
    char k[32];
    for (int i = 0; i < 20 * RATELIMIT_SLOTS; i++) {   /* every one new: a fresh bucket each */
        snprintf(k, sizeof k, "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
        cr_assert(ratelimit_take(&r, k, 1000 + (uint64_t)i), "key %s", k);
    }
    /* the last key used is held: its bucket goes on */
    cr_expect(ratelimit_take(&r, k, 1000 + 20 * RATELIMIT_SLOTS));
    cr_expect_not(ratelimit_take(&r, k, 1000 + 20 * RATELIMIT_SLOTS));
}
