/* gossip/verifymany.h - entry_verify over many entries, split across the CPUs.
 *
 * Owns: verifying a batch of received entries (a catch-up's frames) on up to VERIFY_THREADS_MAX
 * threads: the caller verifies one part, helper threads (started at the first large batch, kept
 * until verify_many_stop) each other part. Small batches stay on the calling thread.
 * Must not: decide anything but each entry's own verification (trust, binding and sequence are the
 * caller's, on its own thread, in arrival order). */
#ifndef TRIB_VERIFYMANY_H
#define TRIB_VERIFYMANY_H

#include <stddef.h>
#include "gossip/entry.h"

#define VERIFY_SPLIT_MIN 256     /* entries below which a batch is verified on the calling thread */
#define VERIFY_THREADS_MAX 4

/* entry_verify(items[i]) into out[i] for every i < n: out[i].entry is NULL when entry i failed
 * (out[i] zeroed). err gets the failure of the last (highest i) failing entry. Returns the number
 * of failures. */
size_t verify_many(const ProtobufCBinaryData *const *items, size_t n, entry_t *out, char *err, size_t errlen);

/* Stops and joins the helpers (the next large batch starts them again). Not during a verify_many. */
void verify_many_stop(void);

/* The threads a large batch is split over: 0 (the default) follows the CPUs online (at most
 * VERIFY_THREADS_MAX, 1 on a one-CPU machine); k > 0 forces k (tests). */
void verify_many_set_threads(int k);

#endif
