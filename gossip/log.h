/* gossip/log.h - one line per notable event, to stderr, with a UTC timestamp and a level.
 * Used by storage/, gossip/ and node/; thread-safe (one fprintf per line). Must not allocate per call. */
#ifndef TRIB_LOG_H
#define TRIB_LOG_H

#include <stddef.h>
#include <stdint.h>

enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_set_level(int level);
int log_level(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One kind of line a peer or client can cause (a refusal, a failure): written at most once per
 * interval, the lines held back in between counted into the next one written, so hostile input
 * cannot flood the log and no event goes unmentioned (its metric counts every one). A zeroed
 * log_limit_t is ready. Thread-safe: any number of threads may ask of the same limit. */
typedef struct {
    _Atomic uint64_t last_ms;    /* clock_ms of the last line written (0: none yet) */
    _Atomic uint64_t held;       /* lines held back since */
} log_limit_t;

/* 1: write the line now, and *held (may be NULL) is how many were held back since the last one
 * written; 0: hold this one back (counted). log_limit_at takes the time (clock_ms) from the caller. */
int log_limit(log_limit_t *l, uint64_t every_ms, uint64_t *held);
int log_limit_at(log_limit_t *l, uint64_t now_ms, uint64_t every_ms, uint64_t *held);

/* " (and N more WHAT since the last such line)" into buf, or "" when held is 0: the tail of a line
 * written under a log_limit. what may be "" ("and 3 more since ..."). Returns buf. */
const char *log_held(char *buf, size_t len, uint64_t held, const char *what);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_level() >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
