/* node/workpool.h - a fixed set of threads running queued work, with a bounded queue.
 *
 * Owns: THREADS threads started once, a queue of at most QUEUE waiting items, refusing more
 * (the caller answers "busy" rather than wait), and a stop that refuses new work, lets what
 * was accepted run to its end and joins the threads.
 * Must not: block a submitter, or drop work it accepted. */
#ifndef TRIB_WORKPOOL_H
#define TRIB_WORKPOOL_H

#include <stddef.h>

typedef struct workpool workpool_t;
typedef void (*workpool_fn)(void *arg);

/* NULL with err when the threads cannot be started. */
workpool_t *workpool_new(int threads, size_t queue, char *err, size_t errlen);

/* Queues fn(arg) to run on one of the threads: 0, or -1 when QUEUE items already wait or the
 * pool is stopping (fn is then not called). Never blocks on the work. */
int workpool_submit(workpool_t *p, workpool_fn fn, void *arg);

/* Refuses new work, waits for everything accepted to have run, joins the threads. The pool
 * stays valid (submit answers -1) until workpool_free. */
void workpool_stop(workpool_t *p);
void workpool_free(workpool_t **p);

#endif
