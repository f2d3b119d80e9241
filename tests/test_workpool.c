/* tests/test_workpool.c - node/workpool: fixed threads, bounded queue, clean stop.
 *
 * Owns: everything accepted runs exactly once; with every thread held and the queue full, a
 * submit is refused at once (not blocked) and the work refused never runs; stop refuses new work,
 * lets the accepted work run to its end, and joins. Workers are held on a gate (condition
 * variable), never timed.
 * Must not: sleep as synchronisation. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>

#include "node/workpool.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int open_gate, started;
static atomic_int ran;

static void count(void *arg) { atomic_fetch_add(&ran, *(int *)arg); }

static void held(void *arg)
{
    pthread_mutex_lock(&mu);
    started++;
    pthread_cond_broadcast(&cv);
    while (!open_gate)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    count(arg);
}

Test(workpool, runs_everything_accepted_once)
{
    char err[200];
    workpool_t *p = workpool_new(4, 10000, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    atomic_store(&ran, 0);
    int one = 1;
    for (int i = 0; i < 10000; i++)
        cr_assert_eq(workpool_submit(p, count, &one), 0, "item %d refused with room in the queue", i);
    workpool_stop(p);
    cr_assert_eq(atomic_load(&ran), 10000);
    cr_assert_eq(workpool_submit(p, count, &one), -1, "accepted after stop");
    workpool_free(&p);
    cr_assert_null(p);
}

Test(workpool, full_queue_refuses_at_once_and_stop_runs_what_it_accepted)
{
    enum { THREADS = 3, QUEUE = 5 };
    char err[200];
    workpool_t *p = workpool_new(THREADS, QUEUE, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    atomic_store(&ran, 0);
    open_gate = started = 0;
    int one = 1, never = 1000;
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(workpool_submit(p, held, &one), 0);
    pthread_mutex_lock(&mu);   /* every thread holds one: nothing more is taken off the queue */
    while (started < THREADS)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < QUEUE; i++)
        cr_assert_eq(workpool_submit(p, count, &one), 0, "queued %d of %d", i + 1, QUEUE);
    cr_assert_eq(workpool_submit(p, count, &never), -1, "a submit beyond the queue was accepted");
    pthread_mutex_lock(&mu);
    open_gate = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    workpool_stop(p);   /* waits for the held and the queued ones */
    cr_assert_eq(atomic_load(&ran), THREADS + QUEUE, "refused work ran, or accepted work did not");
    workpool_free(&p);
}
