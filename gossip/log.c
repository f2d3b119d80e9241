/* gossip/log.c - stderr event log: "2026-11-24T17:00:00.123Z info  message". */
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include "gossip/clock.h"
#include "gossip/log.h"

static atomic_int level = LOG_INFO;
static const char *names[] = {"error", "warn ", "info ", "debug"};

void log_set_level(int l) { atomic_store(&level, l); }
int log_level(void) { return atomic_load(&level); }

void log_msg(int l, const char *fmt, ...)
{
    if (l > atomic_load(&level))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[1024];
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     names[l < 0 ? 0 : l > 3 ? 3 : l]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

int log_limit_at(log_limit_t *l, uint64_t now_ms, uint64_t every_ms, uint64_t *held)
{
    uint64_t now = now_ms ? now_ms : 1, last = atomic_load(&l->last_ms);
    /* one writer per interval: the thread whose exchange wins; the others count themselves held (so
     * does a thread whose clock reading is older than the last line's) */
    if ((last && (now < last || now - last < every_ms)) || !atomic_compare_exchange_strong(&l->last_ms, &last, now)) {
        atomic_fetch_add(&l->held, 1);
        return 0;
    }
    uint64_t n = atomic_exchange(&l->held, 0);
    if (held)
        *held = n;
    return 1;
}

int log_limit(log_limit_t *l, uint64_t every_ms, uint64_t *held)
{
    return log_limit_at(l, clock_ms(), every_ms, held);
}

const char *log_held(char *buf, size_t len, uint64_t held, const char *what)
{
    if (!len)
        return buf;
    buf[0] = 0;
    if (held)
        snprintf(buf, len, " (and %" PRIu64 " more%s%s since the last such line)", held, what && *what ? " " : "",
                 what ? what : "");
    return buf;
}
