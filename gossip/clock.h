/* gossip/clock.h - the node's two millisecond clocks, for gossip/ and node/: clock_ms (monotonic)
 * for timeouts, intervals, deadlines and rate limits, and clock_wall_ms (the Unix epoch) for every
 * time that is stored, signed, sent or compared with one that was (entries, certificates, tokens,
 * grants, audit). Must not: store or send clock_ms (it restarts with the machine). */
#ifndef TRIB_CLOCK_H
#define TRIB_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds since an arbitrary point (CLOCK_MONOTONIC): only differences mean anything. */
static inline uint64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Milliseconds since the Unix epoch (CLOCK_REALTIME): may jump when the clock is set. */
static inline int64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
