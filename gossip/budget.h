/* gossip/budget.h - per-peer answer budget: a token bucket of bytes per peer key, and optionally a
 * cap: one more bucket over all keys' answers together.
 *
 * Owns: the buckets (rate bytes/s, burst bytes; a new peer starts full), a bounded table of peers
 * (the least recently used is forgotten for a new one), the cap's bucket, and the pacing of refusal
 * log lines (a key's own: per key; the cap's: over all keys).
 * Must not: read a clock (callers pass monotonic milliseconds, so tests drive time), send, or know
 * what is answered. Thread-safe: every call takes the budget's lock.
 *
 * Use: budget_ask before answering a peer (anything but BUDGET_OK: no answer now), budget_take with the bytes the answer
 * actually sent. An admitted answer is sent whole, so a bucket may go below zero by at most one
 * answer; the peer is refused until it has refilled above zero. With a cap, a key is answered only
 * while both its bucket and the cap have bytes left, and every answer is taken from both: however
 * many keys ask (an open federation's members may mint any number), the answers of all of them
 * together stay within the cap's rate. */
#ifndef TRIB_BUDGET_H
#define TRIB_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#define BUDGET_KEY_MAX 64                 /* longer keys are cut */

typedef struct budget budget_t;

/* rate bytes per second (> 0), burst bytes (>= 1), slots peers remembered (>= 1). NULL when out of
 * memory or an argument is out of range. */
budget_t *budget_new(double rate, double burst, size_t slots);
void budget_destroy(budget_t **bp);
/* Sets the cap: rate bytes per second (> 0), burst bytes (>= 1); it starts full. 0, or -1 (out of
 * range: no change). */
int budget_cap(budget_t *b, double rate, double burst);

/* budget_ask's answers: yes; no by key's own bucket; no by the cap (whichever is spent first: key's
 * own is asked first). *_LOG: no, and the first such refusal in log_ms (key's own: the first of key;
 * the cap's: the first of any key), so the caller logs one line. */
enum { BUDGET_OK = 1, BUDGET_OWN = 0, BUDGET_OWN_LOG = -1, BUDGET_CAP = 2, BUDGET_CAP_LOG = -2 };

/* May key be answered at now_ms? BUDGET_OK (1) yes, else a refusal (counted): see above. With a
 * *_LOG answer, *unlogged (may be NULL) is the refusals of its kind (key's own: of key; the cap's:
 * of all keys) since the last such line. */
int budget_ask(budget_t *b, const char *key, uint64_t now_ms, uint64_t log_ms, uint64_t *unlogged);
/* Takes bytes (an answer sent) from key's bucket and the cap's. */
void budget_take(budget_t *b, const char *key, size_t bytes, uint64_t now_ms);
/* key's bytes left at now_ms (burst for a peer not remembered); key NULL: the cap's (0 if none). */
double budget_left(budget_t *b, const char *key, uint64_t now_ms);
/* Peers remembered now. */
size_t budget_peers(budget_t *b);

#endif
