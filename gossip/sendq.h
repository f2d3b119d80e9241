/* gossip/sendq.h - bytes ZeroMQ holds on our behalf: a message made here counts its size in a
 * counter (and the counter's parent) from the moment it is made until ZeroMQ frees it, which is
 * when its bytes were written to the kernel, or when it was dropped (a pipe closed, a send given up).
 * So a sender can see how much of its memory a slow receiver holds in ZeroMQ's queues, which
 * ZeroMQ itself bounds only in messages (ZMQ_SNDHWM), not bytes.
 *
 * Owns: the counters, shared with ZeroMQ's I/O threads (atomic; each freed by its last holder: the
 * caller's reference and one per counted message still held, so a counter outlives its socket).
 * Must not: know sockets, peers or message types. */
#ifndef TRIB_SENDQ_H
#define TRIB_SENDQ_H

#include <stddef.h>
#include <zmq.h>

typedef struct sendq sendq_t;

/* A counter at 0; what it counts is also counted in parent (NULL: none; the new counter holds a
 * reference to it). NULL when out of memory. */
sendq_t *sendq_new(sendq_t *parent);
/* Drops the caller's reference (messages still held keep the counter alive); accepts NULL, nulls *qp. */
void sendq_release(sendq_t **qp);
/* Bytes of q's messages ZeroMQ holds now. Any thread. */
size_t sendq_bytes(const sendq_t *q);
/* Bytes of q's messages ZeroMQ has let go of so far (it only grows): whether a receiver takes any. */
size_t sendq_freed(const sendq_t *q);
/* Initialises msg with size bytes (its data to fill), counted in q until ZeroMQ frees it; it is
 * then a message like any other (zmq_msg_send, zmq_msg_close). 0, or -1 out of memory. */
int sendq_msg(sendq_t *q, zmq_msg_t *msg, size_t size);

#endif
