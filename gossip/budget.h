/* gossip/budget.h - per-peer answer budget: a token bucket of bytes per peer key.
 *
 * Owns: the buckets (rate bytes/s, burst bytes; a new peer starts full), a bounded table of peers
 * (the least recently used is forgotten for a new one) and the per-peer pacing of refusal log lines.
 * Must not: read a clock (callers pass monotonic milliseconds, so tests drive time), send, or know
 * what is answered. Thread-safe: every call takes the budget's lock.
 *
 * Use: budget_ask before answering a peer (0 = no answer now), budget_take with the bytes the answer
 * actually sent. An admitted answer is sent whole, so a bucket may go below zero by at most one
 * answer; the peer is refused until it has refilled above zero. */
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

/* May key be answered at now_ms? 1 yes; 0 no (refused; counted); -1 no, and this is the first
 * refusal of key in log_ms: the caller logs one line, *unlogged (may be NULL) the refusals of key
 * since the last such line. */
int budget_ask(budget_t *b, const char *key, uint64_t now_ms, uint64_t log_ms, uint64_t *unlogged);
/* Takes bytes (an answer sent) from key's bucket. */
void budget_take(budget_t *b, const char *key, size_t bytes, uint64_t now_ms);
/* key's bytes left at now_ms (burst for a peer not remembered). */
double budget_left(budget_t *b, const char *key, uint64_t now_ms);
/* Peers remembered now. */
size_t budget_peers(budget_t *b);

#endif
