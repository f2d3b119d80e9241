/* node/workpool.c - fixed threads, bounded queue (see node/workpool.h). */
#include "node/workpool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    workpool_fn fn;
    void *arg;
} item_t;

struct workpool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    item_t *q;                  /* ring of cap items: head first, n queued */
    size_t cap, head, n;
    int stopping, nthreads;
    pthread_t *th;
};

static void *worker(void *arg)
{
    workpool_t *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->n == 0 && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->n == 0)   /* stopping, and nothing accepted is left */
            break;
        item_t it = p->q[p->head];
        p->head = (p->head + 1) % p->cap;
        p->n--;
        pthread_mutex_unlock(&p->mu);
        it.fn(it.arg);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

workpool_t *workpool_new(int threads, size_t queue, char *err, size_t errlen)
{
    workpool_t *p = calloc(1, sizeof *p);
    if (!p || threads < 1 || queue < 1 || !(p->q = calloc(queue, sizeof *p->q)) ||
        !(p->th = calloc((size_t)threads, sizeof *p->th))) {
        snprintf(err, errlen, "work pool: out of memory");
        if (p) {
            free(p->q);
            free(p);
        }
        return NULL;
    }
    p->cap = queue;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (; p->nthreads < threads; p->nthreads++) {
        int rc = pthread_create(&p->th[p->nthreads], NULL, worker, p);
        if (rc != 0) {
            snprintf(err, errlen, "work pool: cannot start thread %d of %d: %s", p->nthreads + 1, threads,
                     strerror(rc));
            workpool_stop(p);
            workpool_free(&p);
            return NULL;
        }
    }
    return p;
}

int workpool_submit(workpool_t *p, workpool_fn fn, void *arg)
{
    pthread_mutex_lock(&p->mu);
    int ok = !p->stopping && p->n < p->cap;
    if (ok) {
        p->q[(p->head + p->n) % p->cap] = (item_t){fn, arg};
        p->n++;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return ok ? 0 : -1;
}

void workpool_stop(workpool_t *p)
{
    pthread_mutex_lock(&p->mu);
    int was = p->stopping;
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (!was)
        for (int i = 0; i < p->nthreads; i++)
            pthread_join(p->th[i], NULL);
}

void workpool_free(workpool_t **pp)
{
    workpool_t *p = *pp;
    if (!p)
        return;
    workpool_stop(p);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->q);
    free(p->th);
    free(p);
    *pp = NULL;
}
