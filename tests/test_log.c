/* tests/test_log.c - the log's rate limit (gossip/log.h, log_limit): one line per interval, the
 * lines held back counted into the next one written, exactly, with many threads asking at once;
 * and the tail that says so (log_held). On a clock the test drives (log_limit_at). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>
#include "gossip/log.h"

TestSuite(log, .timeout = 60);

Test(log, the_first_line_is_written_and_the_next_held_until_the_interval_has_passed)
{
    log_limit_t l = {0};
    uint64_t held = 99;
    cr_assert_eq(log_limit_at(&l, 5000, 1000, &held), 1, "the first line of its kind is written");
    cr_assert_eq(held, 0);
    for (uint64_t t = 5000; t < 6000; t += 100)
        cr_assert_eq(log_limit_at(&l, t, 1000, &held), 0, "held at %llu ms", (unsigned long long)t);
    cr_assert_eq(log_limit_at(&l, 5999, 1000, NULL), 0);
    cr_assert_eq(log_limit_at(&l, 6000, 1000, &held), 1, "written once the interval has passed");
    cr_assert_eq(held, 11, "the line counts those held back since the last (%llu)", (unsigned long long)held);
    cr_assert_eq(log_limit_at(&l, 9000, 1000, &held), 1);
    cr_assert_eq(held, 0, "nothing was held in between");
}

Test(log, a_clock_at_zero_still_limits)
{
    log_limit_t l = {0};
    cr_assert_eq(log_limit_at(&l, 0, 1000, NULL), 1);
    cr_assert_eq(log_limit_at(&l, 0, 1000, NULL), 0, "a line at 0 ms counts as written");
    cr_assert_eq(log_limit_at(&l, 500, 1000, NULL), 0);
}

Test(log, each_limit_is_its_own)
{
    log_limit_t a = {0}, b = {0};
    cr_assert_eq(log_limit_at(&a, 100, 1000, NULL), 1);
    cr_assert_eq(log_limit_at(&b, 100, 1000, NULL), 1, "another kind of line is not held by the first");
    cr_assert_eq(log_limit_at(&a, 200, 1000, NULL), 0);
}

#define THREADS 8
#define ASKS 40000
#define SPAN_MS 400          /* the asks' clock runs over 400 ms, in 10 ms intervals: 40 of them */

typedef struct {
    log_limit_t *l;
    pthread_barrier_t *start;
    uint64_t written, held;
} asker_t;

static void *ask(void *arg)
{
    asker_t *a = arg;
    pthread_barrier_wait(a->start);
    for (int i = 0; i < ASKS; i++) {
        uint64_t h = 0;
        if (log_limit_at(a->l, 1000 + (uint64_t)i * SPAN_MS / ASKS, 10, &h)) {
            a->written++;
            a->held += h;
        }
    }
    return NULL;
}

Test(log, threads_asking_at_once_get_one_line_per_interval_and_every_held_line_is_counted)
{
    for (int round = 0; round < 20; round++) {
        log_limit_t l = {0};
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, THREADS);
        asker_t a[THREADS] = {0};
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++) {
            a[i].l = &l;
            a[i].start = &start;
            cr_assert_eq(pthread_create(&t[i], NULL, ask, &a[i]), 0);
        }
        uint64_t written = 0, held = 0;
        for (int i = 0; i < THREADS; i++) {
            pthread_join(t[i], NULL);
            written += a[i].written;
            held += a[i].held;
        }
        pthread_barrier_destroy(&start);
        /* a line is written only 10 ms after the last one written, whichever thread asks */
        cr_assert(written >= 1 && written <= SPAN_MS / 10 + 1, "at most one line per interval: %llu lines in %d",
                  (unsigned long long)written, SPAN_MS / 10);
        uint64_t h = 0;
        cr_assert_eq(log_limit_at(&l, 1000 + SPAN_MS + 10, 10, &h), 1);
        cr_assert_eq(held + h + written, (uint64_t)THREADS * ASKS, "every line is written or counted once held "
                     "(%llu + %llu)", (unsigned long long)written, (unsigned long long)(held + h));
    }
}

Test(log, the_tail_says_how_many_were_held_back_or_nothing)
{
    char buf[96];
    cr_assert_str_empty(log_held(buf, sizeof buf, 0, "refusals"));
    cr_assert_str_eq(log_held(buf, sizeof buf, 3, "refusals"), " (and 3 more refusals since the last such line)");
    cr_assert_str_eq(log_held(buf, sizeof buf, 1, ""), " (and 1 more since the last such line)");
    cr_assert_str_eq(log_held(buf, sizeof buf, 2, NULL), " (and 2 more since the last such line)");
    char small[8];
    log_held(small, sizeof small, 12345, "refusals");
    cr_assert_eq(strlen(small), sizeof small - 1, "cut to the buffer, terminated");
}
