/* tests/test_budget.c - the per-peer answer budget (gossip/budget.c) on a clock the test drives:
 * refill at the rate, the burst cap, refusal below zero, log pacing, LRU eviction, many peers, and
 * several threads at once; and the cap over all keys (budget_cap): what any number of fresh keys
 * get together, its own log pacing, and a lone key never waiting on it. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "gossip/budget.h"

TestSuite(budget, .timeout = 60);

Test(budget, a_new_peer_starts_with_the_burst_and_refills_at_the_rate_up_to_the_burst)
{
    budget_t *b = budget_new(1000, 5000, 8);          /* 1000 B/s, burst 5000 B */
    cr_assert(b);
    cr_assert_float_eq(budget_left(b, "p", 0), 5000, 1e-9);
    cr_assert_eq(budget_ask(b, "p", 0, 1000, NULL), 1);
    budget_take(b, "p", 4000, 0);
    cr_assert_float_eq(budget_left(b, "p", 0), 1000, 1e-9);
    cr_assert_float_eq(budget_left(b, "p", 500), 1500, 1e-9);      /* 0.5 s at 1000 B/s */
    cr_assert_float_eq(budget_left(b, "p", 3500), 4500, 1e-9);
    cr_assert_float_eq(budget_left(b, "p", 60000), 5000, 1e-9);    /* capped at the burst */
    /* the cap holds however long the peer was idle: one burst, not the sum */
    budget_take(b, "p", 5000, 120000);
    cr_assert_float_eq(budget_left(b, "p", 120000), 0, 1e-9);
    budget_destroy(&b);
    cr_assert_null(b);
    budget_destroy(&b);                                 /* NULL accepted */
}

Test(budget, a_peer_is_refused_at_zero_and_below_until_it_refills_above_zero)
{
    budget_t *b = budget_new(1000, 2000, 8);
    cr_assert_eq(budget_ask(b, "p", 0, 60000, NULL), 1);
    budget_take(b, "p", 5000, 0);                       /* an admitted answer is sent whole: -3000 */
    cr_assert_float_eq(budget_left(b, "p", 0), -3000, 1e-9);
    uint64_t unlogged = 99;
    cr_assert_eq(budget_ask(b, "p", 0, 60000, &unlogged), -1, "the first refusal is logged");
    cr_assert_eq(unlogged, 0);
    cr_assert_eq(budget_ask(b, "p", 1000, 60000, NULL), 0);
    cr_assert_eq(budget_ask(b, "p", 2999, 60000, NULL), 0);
    cr_assert_eq(budget_ask(b, "p", 3000, 60000, NULL), 0, "exactly zero is still refused");
    cr_assert_eq(budget_ask(b, "p", 3001, 60000, NULL), 1);
    /* another peer is not touched by p's debt */
    cr_assert_eq(budget_ask(b, "q", 0, 60000, NULL), 1);
    budget_destroy(&b);
}

Test(budget, refusals_are_logged_once_per_peer_per_period_with_the_count_since)
{
    budget_t *b = budget_new(1, 1, 8);                  /* 1 B/s: stays spent for the test */
    budget_take(b, "p", 1000000, 0);
    budget_take(b, "q", 1000000, 0);
    uint64_t n = 0;
    cr_assert_eq(budget_ask(b, "p", 0, 10000, &n), -1);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(budget_ask(b, "p", 100 + i, 10000, NULL), 0);
    cr_assert_eq(budget_ask(b, "q", 200, 10000, &n), -1, "each peer has its own line");
    cr_assert_eq(budget_ask(b, "p", 9999, 10000, NULL), 0);
    cr_assert_eq(budget_ask(b, "p", 10000, 10000, &n), -1);
    cr_assert_eq(n, 6, "the line says how many were not logged since the last one");
    budget_destroy(&b);
}

Test(budget, the_least_recently_used_peer_is_forgotten_for_a_new_one)
{
    budget_t *b = budget_new(1000, 2000, 3);
    for (int i = 0; i < 3; i++) {
        char k[16];
        snprintf(k, sizeof k, "p%d", i);
        budget_take(b, k, 2000, 0);                    /* every one spent */
    }
    cr_assert_eq(budget_peers(b), 3);
    cr_assert_eq(budget_ask(b, "p0", 1, 1000, NULL), 1, "p0 refilled 1 byte: used most recently now");
    budget_take(b, "p0", 1, 1);
    cr_assert_eq(budget_ask(b, "new", 2, 1000, NULL), 1);       /* evicts p1, the least recently used */
    cr_assert_eq(budget_peers(b), 3);
    cr_assert_float_eq(budget_left(b, "p1", 2), 2000, 1e-9, "p1 was forgotten (a new slot starts full)");
    cr_assert(budget_left(b, "p0", 2) < 2, "p0 is still remembered, spent");
    cr_assert(budget_left(b, "p2", 2) < 3, "p2 is still remembered, spent");
    cr_assert_float_eq(budget_left(b, "new", 2), 2000, 1e-9);
    budget_destroy(&b);
}

Test(budget, many_peers_through_a_small_table_keep_their_own_buckets)
{
    enum { SLOTS = 64, PEERS = 20000 };
    budget_t *b = budget_new(100, 1000, SLOTS);
    uint64_t now = 0;
    /* a stream of distinct peers: the table stays bounded, every look-up finds the right one */
    for (int i = 0; i < PEERS; i++) {
        char k[32];
        snprintf(k, sizeof k, "10.0.%d.%d:7470", i / 256, i % 256);
        cr_assert_eq(budget_ask(b, k, now, 1000, NULL), 1);
        budget_take(b, k, (size_t)(i % 1000), now);
        cr_assert_float_eq(budget_left(b, k, now), 1000 - i % 1000, 1e-9);
        cr_assert_leq(budget_peers(b), SLOTS);
    }
    cr_assert_eq(budget_peers(b), SLOTS);
    /* the last SLOTS peers are all remembered, each with its own bucket */
    for (int i = PEERS - SLOTS; i < PEERS; i++) {
        char k[32];
        snprintf(k, sizeof k, "10.0.%d.%d:7470", i / 256, i % 256);
        cr_assert_float_eq(budget_left(b, k, now), 1000 - i % 1000, 1e-9, "peer %d", i);
    }
    /* a long key is cut, not overflowed: two keys equal in their first BUDGET_KEY_MAX share one */
    char l1[200], l2[200];
    memset(l1, 'a', sizeof l1 - 1);
    l1[sizeof l1 - 1] = 0;
    memcpy(l2, l1, sizeof l2);
    l2[150] = 'b';
    budget_take(b, l1, 500, now);
    cr_assert_float_eq(budget_left(b, l2, now), 500, 1e-9);
    budget_destroy(&b);
}

Test(budget, out_of_range_arguments_are_refused)
{
    cr_assert_null(budget_new(0, 10, 4));
    cr_assert_null(budget_new(-1, 10, 4));
    cr_assert_null(budget_new(10, 0.5, 4));
    cr_assert_null(budget_new(10, 10, 0));
}

typedef struct {
    budget_t *b;
    int id;
} worker_t;

static void *hammer(void *arg)
{
    worker_t *w = arg;
    char k[16];
    for (int i = 0; i < 20000; i++) {
        snprintf(k, sizeof k, "p%d", (w->id * 7 + i) % 100);
        if (budget_ask(w->b, k, 0, 1000, NULL) != 0)
            budget_take(w->b, k, 1, 0);
    }
    return NULL;
}

Test(budget, calls_from_several_threads_at_once_lose_nothing)
{
    budget_t *b = budget_new(1, 1e9, 128);              /* never refuses; no refill (time stands still) */
    pthread_t th[4];
    worker_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_t){b, i};
        cr_assert_eq(pthread_create(&th[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    double taken = 0;
    for (int p = 0; p < 100; p++) {
        char k[16];
        snprintf(k, sizeof k, "p%d", p);
        taken += 1e9 - budget_left(b, k, 0);
    }
    cr_assert_float_eq(taken, 4 * 20000, 1e-3, "every byte taken is in some bucket");
    budget_destroy(&b);
}

/* ------------------------------------------------------------------ the cap over all keys */

Test(budget, the_cap_refills_at_its_rate_up_to_its_burst_and_takes_every_key_s_answers)
{
    budget_t *b = budget_new(1000, 2000, 8);
    cr_assert_float_eq(budget_left(b, NULL, 0), 0, 1e-9, "no cap: nothing to tell");
    cr_assert_eq(budget_cap(b, 0, 10), -1);
    cr_assert_eq(budget_cap(b, -5, 10), -1);
    cr_assert_eq(budget_cap(b, 10, 0.5), -1);
    cr_assert_eq(budget_cap(b, 4000, 8000), 0);
    cr_assert_float_eq(budget_left(b, NULL, 0), 8000, 1e-9, "the cap starts full");
    cr_assert_eq(budget_ask(b, "p", 0, 1000, NULL), BUDGET_OK);
    budget_take(b, "p", 1500, 0);
    budget_take(b, "q", 1500, 0);
    cr_assert_float_eq(budget_left(b, NULL, 0), 5000, 1e-9, "both keys' answers are taken from the cap");
    cr_assert_float_eq(budget_left(b, "p", 0), 500, 1e-9, "and from each key's own");
    cr_assert_float_eq(budget_left(b, NULL, 500), 7000, 1e-9);         /* 0.5 s at 4000 B/s */
    cr_assert_float_eq(budget_left(b, NULL, 60000), 8000, 1e-9);       /* capped at its burst */
    budget_destroy(&b);
}

/* Each step of 10 ms, `fresh` keys never seen before ask and take `answer` bytes when let:
 * what an open-mode member minting keys gets. The bytes taken over seconds s. */
static double flood_fresh_keys(budget_t *b, int fresh, size_t answer, int secs, uint64_t *refused_cap)
{
    double taken = 0;
    int n = 0;
    for (uint64_t t = 0; t <= (uint64_t)secs * 1000; t += 10)
        for (int i = 0; i < fresh; i++) {
            char k[32];
            snprintf(k, sizeof k, "fresh%d", n++);
            int rc = budget_ask(b, k, t, 10000, NULL);
            if (rc == BUDGET_OK) {
                budget_take(b, k, answer, t);
                taken += (double)answer;
            } else {
                cr_assert(rc == BUDGET_CAP || rc == BUDGET_CAP_LOG, "a fresh key refused by its own bucket: %d", rc);
                ++*refused_cap;
            }
        }
    return taken;
}

Test(budget, any_number_of_fresh_keys_get_no_more_than_the_cap_together)
{
    /* a key's budget 1000 B/s, burst 2000; the cap 4000 B/s, burst 8000; answers of 1500 B */
    budget_t *b = budget_new(1000, 2000, 64);
    cr_assert_eq(budget_cap(b, 4000, 8000), 0);
    uint64_t refused = 0;
    double taken = flood_fresh_keys(b, 20, 1500, 10, &refused);   /* 20,020 keys in 10 s */
    /* the cap's burst, its refill over 10 s, and the one answer admitted last (sent whole); without
     * the cap each fresh key would get its answer: 30 MB */
    double most = 8000 + 4000 * 10 + 1500;
    cr_log_info("%.0f bytes taken by 20,020 fresh keys in 10 s (the cap allows %.0f), %llu refused by the cap",
                taken, most, (unsigned long long)refused);
    cr_assert_leq(taken, most, "%.0f bytes taken by fresh keys: past the cap's %.0f", taken, most);
    cr_assert_geq(taken, most - 2 * 1500 - 1500, "the cap is not spent in full (%.0f of %.0f)", taken, most);
    cr_assert_geq(refused, 19000);
    budget_destroy(&b);
}

Test(budget, a_refusal_by_the_cap_is_logged_once_per_interval_over_all_keys)
{
    budget_t *b = budget_new(1000, 2000, 256);
    cr_assert_eq(budget_cap(b, 1, 1), 0);                  /* 1 B/s: spent for the whole test */
    budget_take(b, "spender", 1000000, 0);
    budget_take(b, "spent", 1000000, 0);                   /* a key whose own bucket is spent too */
    uint64_t n = 99;
    cr_assert_eq(budget_ask(b, "k0", 0, 10000, &n), BUDGET_CAP_LOG, "the first refusal of the cap is logged");
    cr_assert_eq(n, 0);
    for (int i = 1; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        cr_assert_eq(budget_ask(b, k, (uint64_t)i * 50, 10000, NULL), BUDGET_CAP, "key %d: one line for all keys", i);
    }
    uint64_t own = 99;
    cr_assert_eq(budget_ask(b, "spent", 5000, 10000, &own), BUDGET_OWN_LOG,
                 "a key's own bucket is asked first, its refusals paced on their own");
    cr_assert_eq(own, 0);
    cr_assert_eq(budget_ask(b, "k0", 9999, 10000, NULL), BUDGET_CAP);
    cr_assert_eq(budget_ask(b, "k200", 10000, 10000, &n), BUDGET_CAP_LOG, "the next interval's line");
    cr_assert_eq(n, 100, "the refusals of all keys since the last line (%llu)", (unsigned long long)n);
    budget_destroy(&b);
}

Test(budget, a_lone_key_is_held_by_its_own_bucket_never_by_the_cap)
{
    /* the cap at four keys' rate and burst, as gossip/answers.c sets it: one key asking as fast as
     * it may (a node catching up) gets its own rate in full and never meets the cap */
    budget_t *b = budget_new(1000, 2000, 8);
    cr_assert_eq(budget_cap(b, 4000, 8000), 0);
    double taken = 0;
    for (uint64_t t = 0; t <= 60000; t += 10) {
        int rc = budget_ask(b, "joiner", t, 10000, NULL);
        cr_assert(rc != BUDGET_CAP && rc != BUDGET_CAP_LOG, "the lone key met the cap at %llu ms", (unsigned long long)t);
        if (rc == BUDGET_OK) {
            budget_take(b, "joiner", 700, t);
            taken += 700;
        }
    }
    cr_assert_geq(taken, 2000 + 1000 * 60 - 700, "%.0f bytes in 60 s: less than its own budget", taken);
    cr_assert_leq(taken, 2000 + 1000 * 60 + 700);
    budget_destroy(&b);
}
