/* gossip/verifymany.c - entry_verify over many entries, split across the CPUs (verifymany.h).
 *
 * The batch is cut into contiguous parts, one per thread; part 0 runs on the caller. entry_verify
 * is thread-safe (libsodium; protobuf-c unpacks with the default malloc allocator; no statics).
 * When a thread cannot be started its part runs on the caller: every entry is verified. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "gossip/verifymany.h"

typedef struct {
    const ProtobufCBinaryData *const *items;
    size_t from, to;             /* this part: items[from, to) */
    entry_t *out;
    size_t nbad;
    char err[256];               /* this part's last failure */
} part_t;

static atomic_int forced;        /* verify_many_set_threads; 0: the CPUs */

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

static void *run_part(void *arg)
{
    part_t *p = arg;
    for (size_t i = p->from; i < p->to; i++)
        if (entry_verify(p->items[i]->data, p->items[i]->len, &p->out[i], p->err, sizeof p->err) != 0)
            p->nbad++;
    return NULL;
}

size_t verify_many(const ProtobufCBinaryData *const *items, size_t n, entry_t *out, char *err, size_t errlen)
{
    part_t parts[VERIFY_THREADS_MAX];
    pthread_t tid[VERIFY_THREADS_MAX];
    int started[VERIFY_THREADS_MAX] = {0};
    size_t k = n < VERIFY_SPLIT_MIN ? 1 : threads();
    for (size_t t = 0; t < k; t++) {
        parts[t] = (part_t){.items = items, .from = n * t / k, .to = n * (t + 1) / k, .out = out};
        parts[t].err[0] = '\0';
    }
    for (size_t t = 1; t < k; t++)
        started[t] = pthread_create(&tid[t], NULL, run_part, &parts[t]) == 0;
    run_part(&parts[0]);
    size_t nbad = 0;
    for (size_t t = 0; t < k; t++) {
        if (t > 0 && started[t])
            pthread_join(tid[t], NULL);
        else if (t > 0)
            run_part(&parts[t]);     /* no thread: verified here */
        nbad += parts[t].nbad;
        if (parts[t].nbad)
            snprintf(err, errlen, "%s", parts[t].err);   /* the last part with a failure wins */
    }
    return nbad;
}
