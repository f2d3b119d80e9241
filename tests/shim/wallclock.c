/* tests/shim/wallclock.c - a wall clock a test can step: preloaded into an agent (LD_PRELOAD, built
 * as build/tests/wallclock.so), it adds to every CLOCK_REALTIME reading the milliseconds written in
 * the file $TRIB_TEST_WALL_FILE ("-60000": a minute back), read again at most every 10 ms.
 * CLOCK_MONOTONIC and every other clock are left alone. Used by test_chartered.
 * Must not: be linked into a test binary or the agent (only preloaded). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static _Atomic long long offset_ms, next_read_ns;

int clock_gettime(clockid_t id, struct timespec *ts)
{
    static _Atomic(clock_gettime_fn) real;
    clock_gettime_fn f = atomic_load(&real);
    if (f == NULL) {
        f = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
        atomic_store(&real, f);
    }
    int rc = f(id, ts);
    const char *path = getenv("TRIB_TEST_WALL_FILE");
    if (rc != 0 || (id != CLOCK_REALTIME && id != CLOCK_REALTIME_COARSE) || path == NULL)
        return rc;
    struct timespec m;
    f(CLOCK_MONOTONIC, &m);
    long long now = (long long)m.tv_sec * 1000000000LL + m.tv_nsec;
    if (now >= atomic_load(&next_read_ns)) {
        atomic_store(&next_read_ns, now + 10000000LL);
        FILE *in = fopen(path, "r");
        long long v;
        if (in != NULL) {
            if (fscanf(in, "%lld", &v) == 1)
                atomic_store(&offset_ms, v);
            fclose(in);
        }
    }
    long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + atomic_load(&offset_ms) * 1000000LL;
    ts->tv_sec = (time_t)(ns / 1000000000LL);
    ts->tv_nsec = (long)(ns % 1000000000LL);
    return rc;
}
