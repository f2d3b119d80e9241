/* node/ratelimit.h - token buckets for anonymous endpoints: one per client, one for all clients.
 *
 * A client's bucket is keyed by its address as a host can spend it (ratelimit_key): an IPv4
 * address, or the /64 prefix of an IPv6 address (a host picks any address in its /64 at will,
 * so a bucket per IPv6 address would be a fresh bucket per request). Each bucket holds burst
 * tokens refilled at rate per second; a request takes one from its client's bucket and one from
 * the global bucket, or is refused and takes none. The global bucket bounds what many clients
 * together (a distributed flood, a host with many /64s) can make the endpoint do. The table is
 * fixed (RATELIMIT_SLOTS, no allocation): a key not held takes a free slot or the least recently
 * used of its probe window, so a client with many keys costs others at most a fresh bucket, never
 * memory.
 * Threads: any (one mutex per table).
 * Must not: log or count (the caller does: it knows the endpoint). */
#ifndef TRIB_RATELIMIT_H
#define TRIB_RATELIMIT_H

#include <pthread.h>
#include <stdint.h>

#define RATELIMIT_SLOTS 512
#define RATELIMIT_KEY 48            /* an IPv6 address in text fits */

typedef struct {
    double tokens;
    uint64_t last_ms;               /* 0: not used yet (full) */
} ratelimit_bucket_t;

typedef struct {
    char key[RATELIMIT_KEY];
    ratelimit_bucket_t b;           /* b.last_ms 0: a free slot */
} ratelimit_slot_t;

typedef struct {
    pthread_mutex_t mu;
    double rate, burst;             /* a client's bucket: tokens per second, size */
    double all_rate, all_burst;     /* the global bucket's (rate 0: none) */
    ratelimit_bucket_t all;
    ratelimit_slot_t slot[RATELIMIT_SLOTS];
} ratelimit_t;

#define RATELIMIT_INIT(rate_, burst_, all_rate_, all_burst_)                                       \
    { .mu = PTHREAD_MUTEX_INITIALIZER, .rate = (rate_), .burst = (burst_), .all_rate = (all_rate_), \
      .all_burst = (all_burst_) }

/* The bucket key of a client address in text (as getnameinfo NI_NUMERICHOST writes it), into key:
 * an IPv4 address as it is; an IPv4-mapped IPv6 address (::ffff:a.b.c.d, a dual-stack socket's
 * IPv4 client) as its IPv4 address; any other IPv6 address as its /64 prefix ("2001:db8:1:2::/64",
 * a zone such as %eth0 dropped); anything else (not an address: "?") as it is, cut to fit.
 * Returns key. */
const char *ratelimit_key(const char *addr, char key[RATELIMIT_KEY]);

enum {
    RATELIMIT_OK = 0,
    RATELIMIT_CLIENT,               /* the client's bucket is empty */
    RATELIMIT_ALL,                  /* the global bucket is empty */
};

/* Takes a token from the bucket of client (an address: ratelimit_key) and one from the global
 * bucket at now_ms (a monotonic clock): RATELIMIT_OK, or RATELIMIT_CLIENT / RATELIMIT_ALL when
 * refused (nothing taken; *retry_ms, when not NULL, gets how long until that bucket holds a
 * token, at least 1). */
int ratelimit_take(ratelimit_t *r, const char *client, uint64_t now_ms, uint64_t *retry_ms);

/* ratelimit_take for a request that skips the global bucket (an operator's): the client's bucket
 * only. */
int ratelimit_take_own(ratelimit_t *r, const char *client, uint64_t now_ms, uint64_t *retry_ms);

#endif
