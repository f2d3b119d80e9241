/* gossip/verifymany.h - many entries decoded, or their signatures checked, across the CPUs.
 *
 * Owns: decoding a batch of received entries (a catch-up's frames), or checking the signatures of
 * those decoded, on up to VERIFY_THREADS_MAX threads: the caller does one part, helper threads
 * (started at the first large batch, kept until verify_many_stop) each other part. Small batches
 * stay on the calling thread.
 * Must not: decide anything but each entry's own verification (trust, binding and sequence are the
 * caller's, on its own thread, in arrival order). */
#ifndef TRIB_VERIFYMANY_H
#define TRIB_VERIFYMANY_H

#include <stddef.h>
#include "gossip/entry.h"

#define VERIFY_SPLIT_MIN 256     /* entries below which a batch is verified on the calling thread */
#define VERIFY_THREADS_MAX 4

/* What verify_many does to each entry: decode it (entry_decode(items[i]) into es[i]), or check the
 * signature of one decoded (entry_check_signature(es[i]): a failing entry is freed). */
typedef enum { VERIFY_DECODE, VERIFY_SIGNATURE } verify_step_t;

/* The step for every i < n: es[i]->entry is NULL when entry i failed (es[i] zeroed). items is
 * only read by VERIFY_DECODE. err gets the failure of the last (highest i) failing entry. Returns
 * the number of failures. */
size_t verify_many(verify_step_t step, const ProtobufCBinaryData *const *items, entry_t *const *es, size_t n,
                   char *err, size_t errlen);

/* Stops and joins the helpers (the next large batch starts them again). Not during a verify_many. */
void verify_many_stop(void);

/* The threads a large batch is split over: 0 (the default) follows the CPUs online (at most
 * VERIFY_THREADS_MAX, 1 on a one-CPU machine); k > 0 forces k (tests). */
void verify_many_set_threads(int k);

#endif
