/* node/ratelimit.h - token buckets by client address, for anonymous endpoints.
 *
 * Each key (a client address) has a bucket of burst tokens refilled at rate per second; a request
 * takes one or is refused. The table is fixed (RATELIMIT_SLOTS, no allocation): a key not held
 * takes a free slot or the least recently used of its probe window, so a client with many
 * addresses costs others at most a fresh bucket, never memory.
 * Threads: any (one mutex per table).
 * Must not: log or count (the caller does: it knows the endpoint). */
#ifndef TRIB_RATELIMIT_H
#define TRIB_RATELIMIT_H

#include <pthread.h>
#include <stdint.h>

#define RATELIMIT_SLOTS 512
#define RATELIMIT_KEY 48            /* an IPv6 address in text fits */

typedef struct {
    char key[RATELIMIT_KEY];
    double tokens;
    uint64_t last_ms;
} ratelimit_slot_t;

typedef struct {
    pthread_mutex_t mu;
    double rate, burst;             /* tokens per second, bucket size */
    ratelimit_slot_t slot[RATELIMIT_SLOTS];
} ratelimit_t;

#define RATELIMIT_INIT(rate_, burst_) { .mu = PTHREAD_MUTEX_INITIALIZER, .rate = (rate_), .burst = (burst_) }

/* Takes a token of key's bucket at now_ms (a monotonic clock): 1 allowed, 0 refused. */
int ratelimit_take(ratelimit_t *r, const char *key, uint64_t now_ms);

#endif
