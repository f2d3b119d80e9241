/* gossip/verifymany.c - decoding many entries, or checking their signatures, split across the CPUs
 * (verifymany.h).
 *
 * The batch is cut into contiguous parts, one per thread; part 0 runs on the caller, the others on
 * helper threads started at the first large batch and kept (a thread per batch would give each
 * batch's entries a fresh malloc arena: measured +50 MiB RssAnon on a 100,000-entry catch-up).
 * entry_decode and entry_check_signature are thread-safe (libsodium; protobuf-c unpacks with the
 * default malloc allocator; no statics; each entry is one part's). One caller at a time uses the
 * helpers; another, or one whose helpers could not be started, does its batch (or the parts
 * without a helper) itself: every entry is done. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "gossip/verifymany.h"

typedef struct {
    verify_step_t step;
    const ProtobufCBinaryData *const *items;
    entry_t *const *es;
    size_t from, to;             /* this part: es[from, to) */
    size_t nbad;
    char err[256];               /* this part's last failure */
} part_t;

static atomic_int forced;        /* verify_many_set_threads; 0: the CPUs */

static struct {
    pthread_mutex_t call;        /* held by the caller using the helpers */
    pthread_mutex_t mu;          /* guards the fields below */
    pthread_cond_t go, done;
    pthread_t tid[VERIFY_THREADS_MAX];
    uint64_t gen0[VERIFY_THREADS_MAX]; /* gen when helper h started: it runs the batches after */
    size_t nhelpers;             /* helpers running: parts 1 .. nhelpers */
    part_t parts[VERIFY_THREADS_MAX];
    size_t nparts;               /* parts of the batch in hand (0: none) */
    size_t pending;              /* helpers' parts not done yet */
    uint64_t gen;                /* batches handed out */
    int stop;
    pid_t pid;                   /* the process the helpers run in (a forked child has none) */
} pool = {.call = PTHREAD_MUTEX_INITIALIZER, .mu = PTHREAD_MUTEX_INITIALIZER,
          .go = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

void verify_many_set_threads(int k) { atomic_store(&forced, k > 0 ? k : 0); }

static size_t threads(void)
{
    int k = atomic_load(&forced);
    if (k <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        k = cpus < 1 ? 1 : cpus > VERIFY_THREADS_MAX ? VERIFY_THREADS_MAX : (int)cpus;
    }
    return (size_t)(k > VERIFY_THREADS_MAX ? VERIFY_THREADS_MAX : k);
}

static void run_part(part_t *p)
{
    for (size_t i = p->from; i < p->to; i++)
        if ((p->step == VERIFY_DECODE
                 ? entry_decode(p->items[i]->data, p->items[i]->len, p->es[i], p->err, sizeof p->err)
                 : entry_check_signature(p->es[i], p->err, sizeof p->err)) != 0)
            p->nbad++;
}

/* Helper h (1 ..): runs part h of every batch that has one, until verify_many_stop. */
static void *helper(void *arg)
{
    size_t h = (size_t)(uintptr_t)arg;
    pthread_mutex_lock(&pool.mu);
    uint64_t seen = pool.gen0[h];
    for (;;) {
        while (pool.gen == seen && !pool.stop)
            pthread_cond_wait(&pool.go, &pool.mu);
        if (pool.stop)
            break;
        seen = pool.gen;
        if (h >= pool.nparts)
            continue;
        pthread_mutex_unlock(&pool.mu);
        run_part(&pool.parts[h]);
        pthread_mutex_lock(&pool.mu);
        if (--pool.pending == 0)
            pthread_cond_signal(&pool.done);
    }
    pthread_mutex_unlock(&pool.mu);
    return NULL;
}

/* A forked child inherits the pool's state but not its threads (pool.call held). */
static void forget_forked(void)
{
    if (pool.pid != getpid()) {
        pool.nhelpers = 0;
        pool.pid = getpid();
    }
}

/* Starts helpers up to k - 1 (pool.call held); how many parts the batch can have. */
static size_t helpers_up_to(size_t k)
{
    forget_forked();
    while (pool.nhelpers + 1 < k) {
        pthread_t t;
        pthread_mutex_lock(&pool.mu);
        pool.gen0[pool.nhelpers + 1] = pool.gen;
        int rc = pthread_create(&t, NULL, helper, (void *)(uintptr_t)(pool.nhelpers + 1));
        if (rc == 0)
            pool.tid[++pool.nhelpers] = t;
        pthread_mutex_unlock(&pool.mu);
        if (rc != 0)
            break;
    }
    return pool.nhelpers + 1 < k ? pool.nhelpers + 1 : k;
}

void verify_many_stop(void)
{
    pthread_mutex_lock(&pool.call);
    forget_forked();
    pthread_mutex_lock(&pool.mu);
    pool.stop = 1;
    pthread_cond_broadcast(&pool.go);
    pthread_mutex_unlock(&pool.mu);
    for (size_t h = 1; h <= pool.nhelpers; h++)
        pthread_join(pool.tid[h], NULL);
    pool.nhelpers = 0;
    pool.stop = 0;
    pthread_mutex_unlock(&pool.call);
}

size_t verify_many(verify_step_t step, const ProtobufCBinaryData *const *items, entry_t *const *es, size_t n,
                   char *err, size_t errlen)
{
    size_t k = n < VERIFY_SPLIT_MIN ? 1 : threads();
    int held = k > 1 && pthread_mutex_trylock(&pool.call) == 0;  /* else another caller has them */
    part_t one, *parts = &one;
    k = held ? helpers_up_to(k) : 1;
    if (held)
        parts = pool.parts;
    for (size_t t = 0; t < k; t++) {
        parts[t] = (part_t){.step = step, .items = items, .es = es, .from = n * t / k, .to = n * (t + 1) / k};
        parts[t].err[0] = '\0';
    }
    if (k > 1) {
        pthread_mutex_lock(&pool.mu);
        pool.nparts = k;
        pool.pending = k - 1;
        pool.gen++;
        pthread_cond_broadcast(&pool.go);
        pthread_mutex_unlock(&pool.mu);
    }
    run_part(&parts[0]);
    if (k > 1) {
        pthread_mutex_lock(&pool.mu);
        while (pool.pending)
            pthread_cond_wait(&pool.done, &pool.mu);
        pool.nparts = 0;
        pthread_mutex_unlock(&pool.mu);
    }
    size_t nbad = 0;
    for (size_t t = 0; t < k; t++) {
        nbad += parts[t].nbad;
        if (parts[t].nbad)
            snprintf(err, errlen, "%s", parts[t].err);   /* the last part with a failure wins */
    }
    if (held)
        pthread_mutex_unlock(&pool.call);
    return nbad;
}
