/* gossip/memtrim.c - one rate limit, process-wide, for giving freed link buffers back to the system.
 * free() keeps them in malloc's arenas (the agent runs two: node/agent.c) and malloc_trim returns
 * the free chunks inside every arena and the top of the first. Without it an owner that served 60
 * links at once held ~130 MiB, and its relay ~40 MiB, more than idle for good (bench/linkmem).
 * Owns: the count of bytes freed since the last trim and the time of that trim.
 * Must not: trim more than once a second but at the end of a burst, or keep a lock while it trims. */
#include "gossip/memtrim.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>

#include "gossip/clock.h"

#define MEMTRIM_EVERY_MS 1000         /* at most this often ... */
#define MEMTRIM_MIN ((size_t)1 << 20) /* ... once this much was freed since */

static atomic_size_t freed;
static atomic_uint_fast64_t trimmed_at;   /* clock_ms of the last trim */

void memtrim_freed(size_t bytes) { atomic_fetch_add(&freed, bytes); }

void memtrim_maybe(int burst_end)
{
    uint64_t now = clock_ms(), last = atomic_load(&trimmed_at);
    if ((!burst_end && (atomic_load(&freed) < MEMTRIM_MIN || now - last < MEMTRIM_EVERY_MS)) ||
        !atomic_compare_exchange_strong(&trimmed_at, &last, now))
        return;                       /* (one caller trims: the clock is taken by compare-and-swap) */
    atomic_store(&freed, 0);
    malloc_trim(0);
}
