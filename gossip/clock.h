/* gossip/clock.h - the one monotonic millisecond clock: timeouts, intervals, deadlines and rate
 * limits in gossip/ and node/. Must not: be stored or sent (it restarts with the machine);
 * catalog entries carry wall-clock time instead. */
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

#endif
