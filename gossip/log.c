/* gossip/log.c - stderr event log: "2026-11-24T17:00:00.123Z info  message". */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
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
