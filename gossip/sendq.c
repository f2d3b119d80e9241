/* gossip/sendq.c - counted ZeroMQ messages (see sendq.h).
 *
 * A message's buffer carries a header in front of its data: the counter and its size. ZeroMQ calls
 * msg_freed with the header as hint, on whichever thread drops its last reference to the data. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include "gossip/sendq.h"

struct sendq {
    atomic_size_t bytes;
    atomic_size_t freed;
    atomic_size_t refs;
    sendq_t *parent;
};

typedef struct {
    sendq_t *q;
    size_t size;
    max_align_t align_;         /* the data that follows is aligned as malloc's */
} head_t;

sendq_t *sendq_new(sendq_t *parent)
{
    sendq_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    atomic_init(&q->bytes, 0);
    atomic_init(&q->freed, 0);
    atomic_init(&q->refs, 1);
    q->parent = parent;
    if (parent)
        atomic_fetch_add(&parent->refs, 1);
    return q;
}

static void unref(sendq_t *q)
{
    while (q && atomic_fetch_sub(&q->refs, 1) == 1) {
        sendq_t *p = q->parent;
        free(q);
        q = p;
    }
}

void sendq_release(sendq_t **qp)
{
    if (!qp || !*qp)
        return;
    unref(*qp);
    *qp = NULL;
}

size_t sendq_bytes(const sendq_t *q)
{
    return atomic_load_explicit(&((sendq_t *)q)->bytes, memory_order_relaxed);
}

size_t sendq_freed(const sendq_t *q)
{
    return atomic_load_explicit(&((sendq_t *)q)->freed, memory_order_relaxed);
}

static void msg_freed(void *data, void *hint)
{
    (void)data;
    head_t *h = hint;
    for (sendq_t *q = h->q; q; q = q->parent) {
        atomic_fetch_add(&q->freed, h->size);
        atomic_fetch_sub(&q->bytes, h->size);
    }
    unref(h->q);
    free(h);
}

int sendq_msg(sendq_t *q, zmq_msg_t *msg, size_t size)
{
    head_t *h = malloc(sizeof *h + (size ? size : 1));
    if (!h)
        return -1;
    h->q = q;
    h->size = size;
    if (zmq_msg_init_data(msg, h + 1, size, msg_freed, h) != 0) {
        free(h);
        return -1;
    }
    atomic_fetch_add(&q->refs, 1);
    for (sendq_t *p = q; p; p = p->parent)
        atomic_fetch_add(&p->bytes, size);
    return 0;
}
